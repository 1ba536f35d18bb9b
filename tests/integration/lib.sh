# SPDX-License-Identifier: MIT
# Shared helpers of the integration tests: start the real certd on a
# temporary data dir and a kernel-chosen loopback port, wait until it is
# ready (failing fast if it died), talk to it with curl, stop it with
# SIGTERM and check its exit status.  Source it; set -eu is in force.

set -eu

: "${CERTD_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${CERTD_BUILDDIR:=$CERTD_SRCDIR}"
: "${CERTD_PKI_DIR:=$CERTD_BUILDDIR/tests/pki-out}"
CERTD="$CERTD_BUILDDIR/certd"
CERTCTL="$CERTD_BUILDDIR/certctl"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
PKI="$CERTD_PKI_DIR"

[ -x "$CERTD" ] || { echo "certd not built at $CERTD" >&2; exit 99; }
[ -f "$PKI/.done" ] || sh "$CERTD_SRCDIR/tests/pki/gen-pki.sh" "$PKI"

# Files the tests write are nobody else's to change: certd refuses a token
# file or configuration that group or others may write.  Data directories
# are made mode 0700 (mkdir -m 700), as certd requires.
umask 022
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-test.XXXXXX")
chmod 755 "$T"
CERTD_PID=
PASS=0
FAIL=0

UNMOUNT=
# cleanup [STATUS]: the EXIT trap; a script's own trap that does more first
# passes the status it found on entry (its commands have changed $? since).
cleanup() {
	status=${1:-$?}
	if [ -n "$CERTD_PID" ] && kill -0 "$CERTD_PID" 2>/dev/null; then
		kill -KILL "$CERTD_PID" 2>/dev/null || true
	fi
	if [ -n "$UNMOUNT" ]; then
		umount "$UNMOUNT" 2>/dev/null || true
	fi
	if [ "$FAIL" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then
		rm -rf "$T"
	else
		echo "# temporary files kept in $T" >&2
	fi
	exit "$status"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() {
	FAIL=$((FAIL + 1))
	echo "not ok - $*"
	if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
		echo "# last lines of the certd log:"; tail -n 5 "$LOG" | sed 's/^/#   /'
	fi
}

# finish: print the summary line and exit with the right status.
finish() {
	if grep -q '^5' "$T/statuses" 2>/dev/null; then
		not_ok "answered 5xx: $(grep '^5' "$T/statuses" | head -n 3)"
	elif [ -f "$T/statuses" ]; then
		ok "no request answered 5xx"
	fi
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

# new_token NAME TEAMS ROLE FILE: append a token line to FILE, print the token.
new_token() {
	out=$("$CERTCTL" token new --name "$1" --teams "$2" --role "$3")
	printf '%s\n' "$out" | sed -n 2p >> "$4"
	printf '%s\n' "$out" | sed -n 1p
}

# start_certd DATA_DIR [EXTRA ARGS...]: start certd in the background,
# wait for readiness, set CERTD_PID, PORT, BASE, LOG.  SCHEME=https and
# CURL_TLS (curl options) for a TLS listener; NO_HEALTHZ=1 skips the
# healthz check.
start_certd() {
	dir=$1; shift
	LOG="$T/certd.log"
	: >> "$LOG"
	lines=$(wc -l < "$LOG")
	"$CERTD" --data-dir "$dir" --listen 127.0.0.1:0 --log-level debug "$@" \
	    2>> "$LOG" &
	CERTD_PID=$!
	i=0
	while :; do
		if ! kill -0 "$CERTD_PID" 2>/dev/null; then
			wait "$CERTD_PID" || true
			echo "certd died during start-up:" >&2
			tail -n 5 "$LOG" >&2
			CERTD_PID=
			return 1
		fi
		ready=$(tail -n +"$((lines + 1))" "$LOG" | grep 'certd ready' || true)
		[ -n "$ready" ] && break
		i=$((i + 1))
		if [ "$i" -gt 200 ]; then
			echo "certd not ready after 20 s" >&2
			return 1
		fi
		sleep 0.1
	done
	PORT=$(printf '%s\n' "$ready" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
	BASE="${SCHEME:-http}://127.0.0.1:$PORT"
	[ -n "${NO_HEALTHZ:-}" ] && return 0
	# shellcheck disable=SC2086 # CURL_TLS is a list of options
	code=$(curl -s ${CURL_TLS:-} -o /dev/null -w '%{http_code}' "$BASE/healthz")
	[ "$code" = 200 ] || { echo "healthz answered $code" >&2; return 1; }
}

# hup_wait: send certd SIGHUP and wait (5 s at most) for the log line that
# says how the reload went.
hup_wait() {
	before=$(grep -c -e 'reloaded configuration' -e 'reload failed' "$LOG" || true)
	kill -HUP "$CERTD_PID"
	i=0
	while [ "$(grep -c -e 'reloaded configuration' -e 'reload failed' "$LOG" || true)" = "$before" ] &&
	    [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}

# stop_certd [SIGNAL]: stop certd and check that it exits 0.
stop_certd() {
	sig=${1:-TERM}
	kill -"$sig" "$CERTD_PID"
	status=0
	wait "$CERTD_PID" || status=$?
	CERTD_PID=
	return "$status"
}

# req METHOD PATH [BODY_FILE] [TOKEN]: HTTP request; body in $T/out,
# status in $STATUS.  TOKEN defaults to $TOKEN; CURL_TLS options apply.
req() {
	method=$1 path=$2 body=${3:-} tok=${4-${TOKEN:-}}
	# shellcheck disable=SC2086 # CURL_TLS is a list of options
	set -- -s ${CURL_TLS:-} --path-as-is -o "$T/out" -w '%{http_code}' \
	    -X "$method"
	[ -n "$tok" ] && set -- "$@" -H "Authorization: $tok"
	[ -n "$body" ] && set -- "$@" -H 'Content-Type: application/json' \
	    --data-binary "@$body"
	STATUS=$(curl "$@" "$BASE$path") || STATUS=000
	echo "$STATUS $method $path" >> "$T/statuses"
}

# nobody_ok: the tests can run programs as nobody (root, setpriv, and a
# build directory that nobody may reach).
nobody_ok() {
	[ "$(id -u)" = 0 ] && command -v setpriv > /dev/null &&
	    setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    test -x "$CERTD" 2>/dev/null
}

# allow_5xx: the last request was meant to get a 5xx (a full disk, say).
allow_5xx() { sed -i '$ s/^5/allowed-5/' "$T/statuses"; }

# jget PATH: value at PATH of the last response body.
jget() { "$JTOOL" get "$T/out" "$1"; }

# expect STATUS DESCRIPTION: check the last status.
expect() {
	if [ "$STATUS" = "$1" ]; then ok "$2"; else
		not_ok "$2: expected $1, got $STATUS: $(head -c 300 "$T/out")"
	fi
}

# expect_json PATH VALUE DESCRIPTION
expect_json() {
	got=$(jget "$1" 2>/dev/null || echo '<absent>')
	if [ "$got" = "$2" ]; then ok "$3"; else
		not_ok "$3: $1 expected '$2', got '$got'"
	fi
}

# expect_error STATUS MSG DESCRIPTION: status and the envelope.
expect_error() {
	if [ "$STATUS" = "$1" ] && [ "$(jget code 2>/dev/null)" = "$1" ] &&
	    [ "$(jget msg 2>/dev/null)" = "$2" ] &&
	    jget msg_show > /dev/null 2>&1 && jget data.bean > /dev/null 2>&1 &&
	    [ "$(jget data.list 2>/dev/null)" = "[]" ]; then
		ok "$3"
	else
		not_ok "$3: expected $1 \"$2\", got $STATUS: $(head -c 300 "$T/out")"
	fi
}

# body FILE ARGS...: write a JSON object (see jtool make) to FILE.
body() { f=$1; shift; "$JTOOL" make "$@" > "$f"; }

# check_alive: certd still runs.
check_alive() {
	if kill -0 "$CERTD_PID" 2>/dev/null; then ok "certd still running"; else
		not_ok "certd died"
	fi
}

# nginx_conf DIR: DIR/nginx.conf, a foreground nginx with every path under
# DIR, serving what DIR/server.conf says (nginx.sh, fleetsync.sh).
nginx_conf() {
	_user=
	[ "$(id -u)" = 0 ] && _user="user root;"
	cat > "$1/nginx.conf" <<EOF
$_user
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log notice;
events { worker_connections 256; }
http {
	access_log $1/logs/access.log;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
	include $1/server.conf;
}
EOF
}
