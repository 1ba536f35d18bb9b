#!/bin/sh
# SPDX-License-Identifier: MIT
# nginx reload benchmark, run on demand (not by make check): how long after
# a REST PUT of a new certificate is acknowledged does a real nginx, fed by
# `certctl sync ... --signal HUP --pid-file` (contrib/nginx/certd-sync.conf,
# set up as in tests/integration/nginx.sh), present it to new handshakes.
# Alternates two RSA certificates N_CHANGES times.  Each change is one run
# of tests/bench/reloadbench.c with N=1: it does the PUT, takes t0 when the
# whole response is read, then makes full TLS handshakes back to back until
# one presents the new certificate (SHA-256 fingerprint compare).  Between
# changes the script waits, outside the measurement, until sync has acked
# the change and nginx's old workers have exited, so that an old worker
# that still accepts cannot answer the next change with the certificate it
# is waiting for.
#
# Usage: tests/bench/nginx.sh   Knobs (environment): N_CHANGES=50,
# DEBOUNCE (certctl sync --debounce MS; unset: certctl's default, 200),
# KEEP_TMP=1.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N_CHANGES:=50}"
: "${DEBOUNCE:=}"
CERTD="$CERTD_BUILDDIR/certd"
CERTCTL="$CERTD_BUILDDIR/certctl"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
TEAM=bench

for tool in nginx gcc pkg-config curl od; do
	command -v "$tool" > /dev/null 2>&1 ||
	    { echo "$tool not installed" >&2; exit 1; }
done
case $N_CHANGES in ''|*[!0-9]*) echo "N_CHANGES is a number" >&2; exit 2 ;; esac
[ "$N_CHANGES" -ge 1 ] && [ "$N_CHANGES" -le 1000 ] ||
    { echo "N_CHANGES is 1 to 1000" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/certd-bench.XXXXXX")
chmod 755 "$T"
CERTD_PID=
SYNC_PID=
NGINX=

stop_pid() {	# PID: TERM, up to 5 s, then KILL
	kill -TERM "$1" 2>/dev/null || return 0
	_n=0
	while kill -0 "$1" 2>/dev/null && [ $_n -lt 50 ]; do
		sleep 0.1; _n=$((_n + 1)); done
	kill -KILL "$1" 2>/dev/null || true
}
stop_nginx() {
	[ -n "$NGINX" ] || return 0
	# The workers, by parent pid, in case the master has to be killed.
	workers=$(ps -o pid= --ppid "$NGINX" 2>/dev/null || true)
	stop_pid "$NGINX"
	for p in $workers; do stop_pid "$p"; done
	wait "$NGINX" 2>/dev/null || true
	NGINX=
}
cleanup() {
	set +e
	[ -n "$SYNC_PID" ] && stop_pid "$SYNC_PID" && wait "$SYNC_PID" 2>/dev/null
	stop_nginx
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else
		echo "# temporary files kept in $T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

say() { echo "# $*"; }
fail() { echo "nginx.sh: $*" >&2; exit 1; }

# wait_until TENTHS CMD...: run CMD every 0.1 s until it succeeds, at most
# TENTHS times.
wait_until() {
	_wt=$1; shift
	while ! "$@"; do
		_wt=$((_wt - 1))
		[ "$_wt" -gt 0 ] || return 1
		sleep 0.1
	done
}

# --- prerequisites -----------------------------------------------------------
[ -x "$CERTD" ] && [ -x "$CERTCTL" ] || (cd "$CERTD_BUILDDIR" && make certd certctl)
[ -x "$JTOOL" ] || (cd "$CERTD_BUILDDIR" && make tests/integration/jtool)
BENCH="$T/reloadbench"
gcc -O2 -g -Wall -Wextra -D_GNU_SOURCE -o "$BENCH" "$SRC/tests/bench/reloadbench.c" \
    $(pkg-config --cflags --libs gnutls)
sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
    { tail -n 20 "$T/pki.log" >&2; exit 1; }
A_CERT=leaf-rsa.chain.pem A_KEY=leaf-rsa.key
B_CERT=leaf-rsa2.pem B_KEY=leaf-rsa2.key

# --- certd -------------------------------------------------------------------
D="$T/data"; S="$T/certd.sock"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
out=$("$CERTCTL" token new --name bench --teams '*' --role write)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$S" --log-level info 2> "$LOG" &
CERTD_PID=$!
i=0
until grep -q 'certd ready' "$LOG"; do
	kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; CERTD_PID=; exit 1; }
	i=$((i + 1)); [ "$i" -le 200 ] || fail "certd not ready after 20 s"
	sleep 0.1
done
PORT=$(grep 'certd ready' "$LOG" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
BASE=http://127.0.0.1:$PORT
API=/openapi/v1/teams/$TEAM/certificates

# get PATH: GET with the token into $T/out; fails unless 200.
get() {
	[ "$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: $TOKEN" \
	    "$BASE$1")" = 200 ]
}

"$JTOOL" make alias=www certificate=@"$T/pki/$A_CERT" private_key=@"$T/pki/$A_KEY" \
    certificate_type=server > "$T/create.json"
"$JTOOL" make certificate=@"$T/pki/$A_CERT" private_key=@"$T/pki/$A_KEY" > "$T/a.json"
"$JTOOL" make certificate=@"$T/pki/$B_CERT" private_key=@"$T/pki/$B_KEY" > "$T/b.json"
code=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' -X POST --data-binary @"$T/create.json" \
    "$BASE$API")
[ "$code" = 200 ] || fail "create answered $code: $(head -c 300 "$T/out")"
ID=$("$JTOOL" get "$T/out" id)

# --- certctl sync ------------------------------------------------------------
# First, as in tests/integration/nginx.sh: it writes the files nginx needs
# to start.  Its first signal finds no pid file yet and is acked failed.
PREFIX=$T/nginx
mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/certd"
CERTD_SOCKET=$S "$CERTCTL" sync "$TEAM" --alias www \
    --cert-file "$PREFIX/certd/fullchain.pem" \
    --key-file "$PREFIX/certd/privkey.pem" --signal HUP \
    --pid-file "$PREFIX/nginx.pid" ${DEBOUNCE:+--debounce "$DEBOUNCE"} \
    --name nginx-www 2> "$T/sync.log" &
SYNC_PID=$!
wait_until 100 test -s "$PREFIX/certd/privkey.pem" ||
    fail "sync did not write the files: $(tail -n 3 "$T/sync.log")"

# --- nginx -------------------------------------------------------------------
# The contrib server block with this run's port and directory, inside an
# http block with every path under PREFIX.
write_conf() {
	sed -e "s|listen 443 ssl;|listen 127.0.0.1:$1 ssl;|" \
	    -e "s|/etc/nginx/certd/www|$PREFIX/certd|g" \
	    "$SRC/contrib/nginx/certd-sync.conf" > "$PREFIX/server.conf"
	user=
	[ "$(id -u)" = 0 ] && user="user root;"
	cat > "$PREFIX/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $PREFIX/nginx.pid;
error_log $PREFIX/logs/error.log notice;
events { worker_connections 256; }
http {
	access_log $PREFIX/logs/access.log;
	client_body_temp_path $PREFIX/tmp/body;
	proxy_temp_path $PREFIX/tmp/proxy;
	fastcgi_temp_path $PREFIX/tmp/fastcgi;
	uwsgi_temp_path $PREFIX/tmp/uwsgi;
	scgi_temp_path $PREFIX/tmp/scgi;
	include $PREFIX/server.conf;
}
EOF
}
answers() { curl -sk --max-time 1 -o /dev/null "https://127.0.0.1:$NPORT/"; }
nginx_up() {
	kill -0 "$NGINX" 2>/dev/null || return 0	# died: stop waiting
	test -s "$PREFIX/nginx.pid" && answers
}

# A random loopback port in 20000-59999; another on a bind failure.
tries=0
while :; do
	tries=$((tries + 1))
	NPORT=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
	if answers || [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
	    "http://127.0.0.1:$NPORT/" 2>/dev/null)" != 000 ]; then
		[ $tries -lt 20 ] && continue	# taken
		fail "no free port found"
	fi
	write_conf "$NPORT"
	grep -q "listen 127.0.0.1:$NPORT ssl;" "$PREFIX/server.conf" &&
	    grep -q "$PREFIX/certd/privkey.pem" "$PREFIX/server.conf" ||
	    fail "the contrib snippet no longer has the lines this script edits"
	: > "$PREFIX/stderr.log"
	: > "$PREFIX/logs/error.log"
	nginx -p "$PREFIX/" -c "$PREFIX/nginx.conf" -e stderr \
	    2>> "$PREFIX/stderr.log" &
	NGINX=$!
	wait_until 100 nginx_up || true
	kill -0 "$NGINX" 2>/dev/null && answers && break
	stop_nginx
	if [ $tries -ge 5 ] || ! grep -q 'in use' "$PREFIX/stderr.log" \
	    "$PREFIX/logs/error.log" 2>/dev/null; then
		fail "nginx did not start: $(tail -n 3 "$PREFIX/stderr.log" \
		    "$PREFIX/logs/error.log" 2>/dev/null)"
	fi
done
MASTER=$(cat "$PREFIX/nginx.pid")

# quiet: sync has acked the certificate's current revision ok (failed
# for the first revision, whose signal came before nginx had a pid file)
# and nginx's master has a single worker left (the old ones have exited).
quiet() {
	get "$API/$ID" || return 1
	rev=$("$JTOOL" get "$T/out" revision 2>/dev/null) || return 1
	get "$API/$ID/subscribers" || return 1
	[ "$("$JTOOL" get "$T/out" list.0.revision 2>/dev/null)" = "$rev" ] &&
	    { [ "$i" = 1 ] ||
	    [ "$("$JTOOL" get "$T/out" list.0.status 2>/dev/null)" = ok ]; } &&
	    [ "$(ps -o pid= --ppid "$MASTER" | wc -l)" -eq 1 ]
}

say "certd pid $CERTD_PID, sync pid $SYNC_PID (debounce ${DEBOUNCE:-default}), nginx" \
    "$(nginx -v 2>&1 | sed 's|.*/||') master $MASTER on 127.0.0.1:$NPORT," \
    "certificates $A_CERT <-> $B_CERT, $N_CHANGES changes"

# --- the changes -------------------------------------------------------------
# reloadbench with N=1 PUTs its second body: odd changes go to B, even ones
# back to A.  Its start-up is before the PUT, outside t1 - t0.
: > "$T/lat"
i=0
while [ "$i" -lt "$N_CHANGES" ]; do
	i=$((i + 1))
	wait_until 300 quiet || fail "change $i: nginx not quiet after 30 s" \
	    "(workers: $(ps -o pid= --ppid "$MASTER" | wc -l);" \
	    "sync: $(tail -n 1 "$T/sync.log"))"
	if [ $((i % 2)) = 1 ]; then set -- "$T/a.json" "$T/b.json"; else
		set -- "$T/b.json" "$T/a.json"; fi
	"$BENCH" "$PORT" "$TOKEN" "$API/$ID" "$1" "$2" "$NPORT" 1 > "$T/one.out" ||
	    fail "change $i: reloadbench failed"
	line=$(grep '^change ' "$T/one.out") || fail "change $i: no result"
	ms=$(printf '%s\n' "$line" | sed -n 's/^change *1: \([0-9.]*\) ms, \([0-9]*\) handshake.*/\1/p')
	hs=$(printf '%s\n' "$line" | sed -n 's/^change *1: \([0-9.]*\) ms, \([0-9]*\) handshake.*/\2/p')
	hms=$(sed -n 's/^RESULT .* handshake_ms=\([0-9.]*\) .*/\1/p' "$T/one.out")
	[ -n "$ms" ] && [ -n "$hs" ] && [ -n "$hms" ] || fail "change $i: cannot parse: $line"
	echo "$ms $hs $hms" >> "$T/lat"
	printf 'change %3d: %s ms, %s handshakes\n' "$i" "$ms" "$hs"
done
i=$((i + 1))
wait_until 300 quiet || fail "nginx not quiet after the last change"

# --- summary -----------------------------------------------------------------
[ "$(cat "$PREFIX/nginx.pid")" = "$MASTER" ] && kill -0 "$MASTER" ||
    fail "nginx's master changed: restarted rather than reloaded"
if grep -q '\[emerg\]\|\[alert\]' "$PREFIX/logs/error.log" "$PREFIX/stderr.log"; then
	fail "nginx logged: $(grep '\[emerg\]\|\[alert\]' "$PREFIX/logs/error.log" \
	    "$PREFIX/stderr.log" | head -n 3)"
fi
reloads=$(grep -c 'SIGHUP) received' "$PREFIX/logs/error.log" || true)
sort -n -k1,1 "$T/lat" | awk -v reloads="$reloads" '
	{ v[NR] = $1; sum += $1; hs += $2; if ($2 > mh) mh = $2
	  hsum += $3 * $2; if ($2 == 1) first++ }
	function pct(p,   k) { k = int(p / 100 * NR + 0.999999); if (k < 1) k = 1
	  return v[k] }
	END {
	  printf "PUT acknowledged -> nginx presents the new certificate, %d changes: " \
	      "p50 %.2f ms, p99 %.2f ms, max %.2f ms, min %.2f ms, mean %.2f ms\n",
	      NR, pct(50), pct(99), v[NR], v[1], sum / NR
	  printf "handshakes: mean %.2f ms over %d; per change mean %.1f, most %d; " \
	      "new certificate on the first handshake after the ack: %d/%d; " \
	      "nginx reloads logged: %d\n", hsum / hs, hs, hs / NR, mh, first, NR, reloads
	  printf "RESULT changes=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f min_ms=%.3f " \
	      "mean_ms=%.3f handshake_ms=%.3f max_polls=%d first=%d reloads=%d\n",
	      NR, pct(50), pct(99), v[NR], v[1], sum / NR, hsum / hs, mh, first, reloads
	}'

kill -TERM "$SYNC_PID"; wait "$SYNC_PID" || fail "sync exited $?"; SYNC_PID=
stop_nginx
kill -TERM "$CERTD_PID"; wait "$CERTD_PID" || fail "certd exited $?"; CERTD_PID=
