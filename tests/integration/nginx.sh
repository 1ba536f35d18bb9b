#!/bin/sh
# SPDX-License-Identifier: MIT
# certctl sync feeding a real nginx, configured with
# contrib/nginx/certd-sync.conf and reloaded with SIGHUP through its pid
# file: after each REST change nginx presents the new certificate (read
# with gnutls-cli, compared by SHA-256 fingerprint), and a client loop
# running through three changes sees no failed request.  Without --verify
# each reload is acked `requested`, not `ok`.  With --verify the ack says
# what nginx presents: `ok` with the new leaf's fingerprint once nginx
# serves it; `failed` with the OLD leaf's fingerprint when nginx refused
# the reload (an unknown directive in its configuration) and went on
# serving the old one; `ok` again by itself once the configuration is
# fixed.  The README's pre-check (--exec 'nginx -t && nginx -s reload')
# keeps a broken configuration from reaching nginx at all.
. "$(dirname "$0")/lib.sh"

for tool in nginx gnutls-cli certtool timeout od; do
	command -v "$tool" > /dev/null 2>&1 ||
	    { echo "# $tool not installed: skipped"; exit 77; }
done

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"
C=/openapi/v1/teams/web/certificates
PREFIX=$T/nginx
mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/certd"

# Everything started here is stopped on exit, even after a failure (and
# even when $T has gone: the pids are in variables, and set -e no longer
# applies).
PIDS=
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
nginx_cleanup() {
	st=$?
	set +e
	touch "$T/stop-clients" 2>/dev/null
	for p in $PIDS; do stop_pid "$p"; done
	stop_nginx
	cleanup "$st"
}
trap nginx_cleanup EXIT
trap 'exit 1' HUP INT TERM

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
check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}
fingerprint() { certtool --fingerprint --hash sha256 --infile "$1" 2>/dev/null; }

# presents FINGERPRINT: the certificate nginx sends has it.
presents() {
	timeout 5 gnutls-cli --insecure --print-cert -p "$NPORT" 127.0.0.1 \
	    < /dev/null 2> /dev/null |
	    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END/q;}' \
	    > "$T/presented.pem"
	[ -s "$T/presented.pem" ] && [ "$(fingerprint "$T/presented.pem")" = "$1" ]
}

# settled FINGERPRINT: three handshakes in a row present it (after a
# reload, old workers may still accept for a moment: sync's --verify saw
# the new leaf on one handshake, the checks after an ack wait until nginx
# presents it three times in a row, as the changes above do).
settled() { presents "$1" && presents "$1" && presents "$1"; }

# sub_field FIELD NAME: FIELD of the subscriber NAME in the last response.
sub_field() {
	_i=0
	while _nm=$(jget "list.$_i.name" 2>/dev/null); do
		if [ "$_nm" = "$2" ]; then jget "list.$_i.$1"; return 0; fi
		_i=$((_i + 1))
	done
	return 1
}

# acked REVISION [STATUS [NAME]]: sync's last ack (default: requested, by
# nginx-www, the sync without --verify).
acked() {
	req GET "$C/1/subscribers"
	[ "$STATUS" = 200 ] &&
	    [ "$(sub_field revision "${3:-nginx-www}" 2>/dev/null)" = "$1" ] &&
	    [ "$(sub_field status "${3:-nginx-www}" 2>/dev/null)" = "${2:-requested}" ]
}

# put_cert CHAIN KEY: update certificate 1 over REST; revision in $REV.
put_cert() {
	body "$T/u" certificate=@"$1" private_key=@"$2"
	req PUT "$C/1" "$T/u"
	REV=$(jget revision 2>/dev/null || echo none)
}

RSA=$PKI/leaf-rsa.chain.pem
RSA2=$T/rsa2.chain.pem
cat "$PKI/leaf-rsa2.pem" "$PKI/int.pem" > "$RSA2"
FP_RSA=$(fingerprint "$PKI/leaf-rsa.pem")
FP_RSA2=$(fingerprint "$PKI/leaf-rsa2.pem")

body "$T/c1" alias=www certificate=@"$RSA" private_key=@"$PKI/leaf-rsa.key" \
    certificate_type=server
req POST "$C" "$T/c1"
expect 200 "create the certificate nginx serves"

# sync first: it writes the files nginx needs to start.  Its first signal
# finds no pid file yet and is acked failed; that is expected.
"$CERTCTL" sync web --alias www --cert-file "$PREFIX/certd/fullchain.pem" \
    --key-file "$PREFIX/certd/privkey.pem" --signal HUP \
    --pid-file "$PREFIX/nginx.pid" --debounce 100 --name nginx-www \
    2> "$T/sync.log" &
SYNC=$!
PIDS="$PIDS $SYNC"
check "sync writes the files nginx starts with" \
    wait_until 100 test -s "$PREFIX/certd/privkey.pem"

# The configuration: the contrib server block with this test's port and
# directory, inside an http block with every path under PREFIX.
write_conf() {
	sed -e "s|listen 443 ssl;|listen 127.0.0.1:$1 ssl;|" \
	    -e "s|/etc/nginx/certd/www|$PREFIX/certd|g" \
	    "$CERTD_SRCDIR/contrib/nginx/certd-sync.conf" > "$PREFIX/server.conf"
	nginx_conf "$PREFIX"
}

answers() { curl -sk --max-time 1 -o /dev/null "https://127.0.0.1:$NPORT/"; }
nginx_up() {
	kill -0 "$NGINX" 2>/dev/null || return 0	# died: stop waiting
	test -s "$PREFIX/nginx.pid" && answers
}

# A random loopback port in 20000-60000; another on a bind failure.
tries=0
while :; do
	tries=$((tries + 1))
	NPORT=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
	if answers || [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
	    "http://127.0.0.1:$NPORT/" 2>/dev/null)" != 000 ]; then
		[ $tries -lt 20 ] && continue	# taken
		not_ok "no free port found"; finish; exit 1
	fi
	write_conf "$NPORT"
	grep -q "listen 127.0.0.1:$NPORT ssl;" "$PREFIX/server.conf" &&
	    grep -q "$PREFIX/certd/privkey.pem" "$PREFIX/server.conf" || {
		not_ok "the contrib snippet no longer has the lines the test edits"
		finish; exit 1; }
	: > "$PREFIX/stderr.log"
	: > "$PREFIX/logs/error.log"		# only this attempt's lines
	nginx -p "$PREFIX/" -c "$PREFIX/nginx.conf" -e stderr \
	    2>> "$PREFIX/stderr.log" &
	NGINX=$!
	wait_until 100 nginx_up
	kill -0 "$NGINX" 2>/dev/null && answers && break
	stop_nginx
	if [ $tries -ge 5 ] || ! grep -q 'in use' "$PREFIX/stderr.log" \
	    "$PREFIX/logs/error.log" 2>/dev/null; then
		not_ok "nginx did not start: $(tail -n 3 "$PREFIX/stderr.log" \
		    "$PREFIX/logs/error.log" 2>/dev/null)"
		finish; exit 1
	fi
done
ok "nginx listens with ssl on 127.0.0.1:$NPORT"
check "nginx presents the certificate sync wrote" settled "$FP_RSA"
MASTER=$(cat "$PREFIX/nginx.pid")

# Sequential requests until told to stop, at least 200, at most 5000.
client_loop() {
	i=0
	while [ $i -lt 5000 ]; do
		[ $i -ge 200 ] && [ -f "$T/stop-clients" ] && break
		code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' \
		    "https://127.0.0.1:$NPORT/" 2>/dev/null) || true
		echo "${code:-000}" >> "$T/clients"
		i=$((i + 1))
	done
}
client_loop &
CLIENTS=$!
PIDS="$PIDS $CLIENTS"
wait_until 100 test -s "$T/clients"
before=$(wc -l < "$T/clients")

n=0
for change in "$RSA2 $PKI/leaf-rsa2.key $FP_RSA2" \
    "$RSA $PKI/leaf-rsa.key $FP_RSA" "$RSA2 $PKI/leaf-rsa2.key $FP_RSA2"; do
	n=$((n + 1))
	set -- $change
	put_cert "$1" "$2"
	expect 200 "change $n: PUT a new certificate"
	check "change $n: sync writes it, signals nginx, acks requested" \
	    wait_until 100 acked "$REV"
	check "change $n: nginx presents it within 10 s" \
	    wait_until 100 settled "$3"
done
during=$(( $(wc -l < "$T/clients") - before ))
touch "$T/stop-clients"
check "the client loop ends" wait_until 600 eval '! kill -0 "$CLIENTS" 2>/dev/null'
total=$(wc -l < "$T/clients")
failed=$(grep -vc '^200$' "$T/clients" || true)
check "the clients sent $total requests, $during during the changes" \
    eval '[ "$total" -ge 200 ] && [ "$during" -ge 1 ]'
if [ "$failed" = 0 ]; then ok "no request failed through 3 changes"; else
	not_ok "$failed of $total requests failed: $(grep -v '^200$' "$T/clients" | sort | uniq -c | tr '\n' ' ')"
fi

# What sync reported, and that nginx reloaded rather than restarted.
req GET "$C/1/subscribers"
check "without --verify the last change is acked requested, not ok" \
    eval '[ "$(jget list.0.name)" = nginx-www ] &&
    [ "$(jget list.0.revision)" = "$REV" ] && [ "$(jget list.0.status)" = requested ]'
case $(jget list.0.detail) in
"reload requested (SIGHUP to pid $MASTER); not confirmed (no --verify)")
	ok "the ack names the HUP to nginx's master, not confirmed" ;;
*) not_ok "detail: $(jget list.0.detail)" ;;
esac
check "... and carries no check" eval '[ "$(jget list.0.verified_at)" = null ] &&
    [ "$(jget list.0.served_fingerprint_sha256)" = null ]'
check "nginx's master is the same process (reloaded, not restarted)" \
    eval '[ "$(cat "$PREFIX/nginx.pid")" = "$MASTER" ] && kill -0 "$MASTER"'
if grep -q '\[emerg\]\|\[alert\]' "$PREFIX/logs/error.log" "$PREFIX/stderr.log"; then
	not_ok "nginx logged: $(grep '\[emerg\]\|\[alert\]' "$PREFIX/logs/error.log" "$PREFIX/stderr.log" | head -n 3)"
else
	ok "nginx logged no emerg or alert"
fi

kill -TERM "$SYNC"
status=0; wait "$SYNC" || status=$?
check "sync exits 0 on SIGTERM" [ $status = 0 ]

# --- --verify: the ack says which certificate nginx presents ---------------------
# verified NAME REVISION STATUS FINGERPRINT: NAME's last ack is STATUS for
# REVISION, after a check that saw FINGERPRINT served.
verified() {
	acked "$2" "$3" "$1" &&
	    [ "$(sub_field served_fingerprint_sha256 "$1")" = "$4" ] &&
	    sub_field verified_at "$1" | grep -q '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$'
}
# detail_has NAME TEXT: NAME's last ack detail (in the last response) has TEXT.
detail_has() {
	case $(sub_field detail "$1") in
	*"$2"*) return 0 ;;
	*) echo "# detail: $(sub_field detail "$1")"; return 1 ;;
	esac
}
conf_break() {	# an unknown directive: nginx refuses the whole reload
	cp "$PREFIX/server.conf" "$PREFIX/server.conf.good"
	echo "certd_test_no_such_directive on;" >> "$PREFIX/server.conf"
}
conf_fix() { cp "$PREFIX/server.conf.good" "$PREFIX/server.conf"; }

"$CERTCTL" sync web --alias www --cert-file "$PREFIX/certd/fullchain.pem" \
    --key-file "$PREFIX/certd/privkey.pem" --signal HUP \
    --pid-file "$PREFIX/nginx.pid" --debounce 100 --name nginx-verify \
    --verify "127.0.0.1:$NPORT,www.example.com" --verify-timeout 3 \
    2> "$T/verify.log" &
VSYNC=$!
PIDS="$PIDS $VSYNC"
check "--verify at start: the files nginx already serves are acked ok" \
    wait_until 100 verified nginx-verify "$REV" ok "$FP_RSA2"
check "... detail: unchanged, served" detail_has nginx-verify \
    "unchanged; served at 127.0.0.1:$NPORT,www.example.com after "

put_cert "$RSA" "$PKI/leaf-rsa.key"
expect 200 "--verify: PUT a new certificate"
check "--verify: acked ok once nginx presents the new leaf" \
    wait_until 100 verified nginx-verify "$REV" ok "$FP_RSA"
check "... detail: the HUP, then where it is served" detail_has nginx-verify \
    "reload requested (SIGHUP to pid $MASTER); served at 127.0.0.1:$NPORT,www.example.com"
check "... and nginx does present it" \
    wait_until 50 settled "$FP_RSA"

# A configuration nginx refuses: SIGHUP is delivered (the old ack said ok),
# nginx logs [emerg] and keeps serving the old certificate.
conf_break
put_cert "$RSA2" "$PKI/leaf-rsa2.key"
expect 200 "--verify: PUT while the nginx configuration is broken"
check "--verify: the refused reload is acked failed" \
    wait_until 100 acked "$REV" failed nginx-verify
check "... served_fingerprint_sha256 is the OLD leaf" \
    verified nginx-verify "$REV" failed "$FP_RSA"
check "... and the detail names the target and the old fingerprint" \
    detail_has nginx-verify "not served within 3 s: 127.0.0.1:$NPORT,www.example.com presents another certificate, sha256 $FP_RSA"
check "nginx did refuse the reload" \
    grep -q 'unknown directive "certd_test_no_such_directive"' \
    "$PREFIX/logs/error.log" "$PREFIX/stderr.log"
check "nginx still presents the old certificate" settled "$FP_RSA"
check "sync tries the failed revision again" \
    wait_until 100 grep -q "revision $REV: trying again" "$T/verify.log"
conf_fix
check "with the configuration fixed, a retry is acked ok with the new leaf" \
    wait_until 200 verified nginx-verify "$REV" ok "$FP_RSA2"
check "... which nginx presents" \
    wait_until 50 settled "$FP_RSA2"
kill -TERM "$VSYNC"
status=0; wait "$VSYNC" || status=$?
check "sync --verify exits 0 on SIGTERM" [ $status = 0 ]

# The pre-check of README.md: nginx -t first, so a broken configuration
# never reaches nginx; the ack has nginx -t's words.
NGX="nginx -p '$PREFIX/' -c '$PREFIX/nginx.conf'"
"$CERTCTL" sync web --alias www --cert-file "$PREFIX/certd/fullchain.pem" \
    --key-file "$PREFIX/certd/privkey.pem" --debounce 100 \
    --exec "$NGX -t -q && $NGX -s reload" --name nginx-precheck \
    --verify "127.0.0.1:$NPORT,www.example.com" --verify-timeout 3 \
    2> "$T/precheck.log" &
PSYNC=$!
PIDS="$PIDS $PSYNC"
check "--exec pre-check: the current state is acked ok" \
    wait_until 100 verified nginx-precheck "$REV" ok "$FP_RSA2"
conf_break
hups=$(grep -c 'signal 1 (SIGHUP) received' "$PREFIX/logs/error.log" || true)
put_cert "$RSA" "$PKI/leaf-rsa.key"
expect 200 "--exec pre-check: PUT while the configuration is broken"
check "--exec pre-check: acked failed" \
    wait_until 100 acked "$REV" failed nginx-precheck
check "... with nginx -t's verdict" detail_has nginx-precheck "test failed"
check "... and no check ran (nothing was reloaded)" \
    eval '[ "$(sub_field verified_at nginx-precheck)" = null ]'
check "nginx was not signalled" \
    [ "$(grep -c 'signal 1 (SIGHUP) received' "$PREFIX/logs/error.log" || true)" = "$hups" ]
conf_fix
check "with the configuration fixed, the retry is acked ok" \
    wait_until 200 verified nginx-precheck "$REV" ok "$FP_RSA"
check "... and nginx presents it" \
    wait_until 50 settled "$FP_RSA"
check "nginx's master is still the same process" \
    eval '[ "$(cat "$PREFIX/nginx.pid")" = "$MASTER" ] && kill -0 "$MASTER"'
kill -TERM "$PSYNC"; wait "$PSYNC" || true

stop_nginx
stop_certd TERM && ok "certd exits 0 on SIGTERM" || not_ok "certd exit status"
finish
