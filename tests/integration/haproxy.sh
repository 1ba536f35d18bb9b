#!/bin/sh
# SPDX-License-Identifier: MIT
# certctl sync feeding a real haproxy through the bundle file, with the
# frontend of contrib/haproxy/certd.cfg and the soft reload it documents
# (--exec: a new haproxy takes the listeners over with -x and stops the old
# one with -sf): after each REST change haproxy presents the new
# certificate (read with gnutls-cli, compared by SHA-256 fingerprint), a
# client loop running through three changes sees no failed request, the
# old processes finish, and a reload that fails is acked failed with
# haproxy's message while the old process keeps serving.  Without --verify
# a reload that went through is acked `requested`, not `ok`.  Then
# haproxy in master-worker mode (-W), reloaded with SIGUSR2 and checked
# with --verify: `ok` with the new leaf's fingerprint once served; a
# configuration the master refuses (it keeps the old worker, the signal
# itself succeeds: the old ack said ok) is `failed` with the OLD leaf's
# fingerprint; fixed, the retry is `ok`.
. "$(dirname "$0")/lib.sh"

for tool in haproxy gnutls-cli certtool timeout od; do
	command -v "$tool" > /dev/null 2>&1 ||
	    { echo "# $tool not installed: skipped"; exit 77; }
done

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"
C=/openapi/v1/teams/web/certificates
H=$T/haproxy
mkdir -p "$H/certd"
CFG=$H/haproxy.cfg
PIDF=$H/haproxy.pid
SOCK=$H/admin.sock
HIST=$H/pids			# every haproxy pid this test started

# Everything started here is stopped on exit, even after a failure (and
# even when $T has gone: the pids are in variables too, and set -e no
# longer applies).  HPIDS collects haproxy pids as the test sees them; the
# reload command also appends each new one to $HIST.
PIDS=
HPIDS=
stop_pid() {	# PID: TERM, up to 5 s, then KILL
	kill -TERM "$1" 2>/dev/null || return 0
	_n=0
	while kill -0 "$1" 2>/dev/null && [ $_n -lt 50 ]; do
		sleep 0.1; _n=$((_n + 1)); done
	kill -KILL "$1" 2>/dev/null || true
}
stop_haproxy() {
	for p in $HPIDS $(cat "$HIST" "$PIDF" 2>/dev/null); do
		stop_pid "$p"
	done
	HPIDS=
	rm -f "$HIST"
}
# track_haproxy: note the pid in the pid file now.
track_haproxy() { HPIDS="$HPIDS $(cat "$PIDF" 2>/dev/null || true)"; }
haproxy_cleanup() {
	st=$?
	set +e
	touch "$T/stop-clients" 2>/dev/null
	for p in $PIDS; do stop_pid "$p"; done
	stop_haproxy
	cleanup "$st"
}
trap haproxy_cleanup EXIT
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

# presents FINGERPRINT: the certificate haproxy sends has it.
presents() {
	timeout 5 gnutls-cli --insecure --print-cert -p "$HPORT" 127.0.0.1 \
	    < /dev/null 2> /dev/null |
	    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END/q;}' \
	    > "$T/presented.pem"
	[ -s "$T/presented.pem" ] && [ "$(fingerprint "$T/presented.pem")" = "$1" ]
}
# settled FINGERPRINT: three handshakes in a row present it.
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

# acked REVISION STATUS [NAME]: sync's last ack (NAME: haproxy-www).
acked() {
	req GET "$C/1/subscribers"
	[ "$STATUS" = 200 ] &&
	    [ "$(sub_field revision "${3:-haproxy-www}" 2>/dev/null)" = "$1" ] &&
	    [ "$(sub_field status "${3:-haproxy-www}" 2>/dev/null)" = "$2" ]
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
expect 200 "create the certificate haproxy serves"

# The configuration: a global section with the stats socket the soft
# reload needs, and the contrib frontend with this test's port and paths.
write_conf() {
	cat > "$CFG" <<EOF
global
	maxconn 256
	stats socket $SOCK mode 600 level admin expose-fd listeners

defaults
	mode http
	timeout connect 5s
	timeout client 10s
	timeout server 10s
	timeout http-request 5s

EOF
	sed -e "s|bind :443 ssl|bind 127.0.0.1:$1 ssl|" \
	    -e "s|/etc/haproxy/certd|$H/certd|g" \
	    "$CERTD_SRCDIR/contrib/haproxy/certd.cfg" >> "$CFG"
}

# The reload of contrib/haproxy/certd.cfg; the test also notes the new pid.
RELOAD="haproxy -f '$CFG' -p '$PIDF' -D -x '$SOCK' -sf \$(cat '$PIDF') && cat '$PIDF' >> '$HIST'"

# sync first: it writes the bundle haproxy starts with.  Its first reload
# finds no haproxy yet and is acked failed; that is expected.
"$CERTCTL" sync web --alias www --cert-file "$H/certd/www.crt" \
    --key-file "$H/certd/www.key" --bundle-file "$H/certd/www.pem" \
    --exec "$RELOAD" --timeout 20 --debounce 100 --name haproxy-www \
    2> "$T/sync.log" &
SYNC=$!
PIDS="$PIDS $SYNC"
check "sync writes the bundle haproxy starts with" \
    wait_until 100 test -s "$H/certd/www.pem"
check "its first reload (no haproxy yet) is over" \
    wait_until 100 grep -q 'revision 1: failed' "$T/sync.log"

answers() { curl -sk --max-time 1 -o /dev/null "https://127.0.0.1:$HPORT/"; }

# A random loopback port in 20000-60000; another on a bind failure.
tries=0
while :; do
	tries=$((tries + 1))
	HPORT=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
	    "http://127.0.0.1:$HPORT/" 2>/dev/null)" != 000 ]; then
		[ $tries -lt 20 ] && continue	# taken
		not_ok "no free port found"; finish; exit 1
	fi
	write_conf "$HPORT"
	grep -q "bind 127.0.0.1:$HPORT ssl crt $H/certd/www.pem" "$CFG" || {
		not_ok "the contrib frontend no longer has the line the test edits"
		finish; exit 1; }
	rm -f "$PIDF"
	status=0
	haproxy -f "$CFG" -p "$PIDF" -D > "$H/start.log" 2>&1 || status=$?
	[ -s "$PIDF" ] && cat "$PIDF" >> "$HIST"
	track_haproxy
	if [ $status = 0 ] && wait_until 50 answers; then break; fi
	stop_haproxy
	if [ $tries -ge 5 ] || ! grep -q 'cannot bind' "$H/start.log"; then
		not_ok "haproxy did not start: $(tail -n 3 "$H/start.log")"
		finish; exit 1
	fi
done
ok "haproxy listens with ssl on 127.0.0.1:$HPORT"
check "haproxy presents the certificate sync wrote" settled "$FP_RSA"
FIRST=$(cat "$PIDF")

# Sequential requests until told to stop, at least 200, at most 5000.
client_loop() {
	i=0
	while [ $i -lt 5000 ]; do
		[ $i -ge 200 ] && [ -f "$T/stop-clients" ] && break
		code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' \
		    "https://127.0.0.1:$HPORT/" 2>/dev/null) || true
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
	check "change $n: sync writes it, reloads haproxy, acks requested" \
	    wait_until 150 acked "$REV" requested
	track_haproxy
	check "change $n: haproxy presents it within 10 s" \
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

req GET "$C/1/subscribers"
check "without --verify the ack says the command ran, not confirmed" \
    eval '[ "$(jget list.0.name)" = haproxy-www ] &&
    [ "$(jget list.0.detail)" = "reload command exited 0; not confirmed (no --verify)" ]'
CURRENT=$(cat "$PIDF")
check "each reload started a new haproxy" \
    eval '[ "$CURRENT" != "$FIRST" ] && [ "$(wc -l < "$HIST")" -ge 4 ]'
# old_gone: of the processes started, only the current one still runs.
old_gone() {
	for p in $(cat "$HIST"); do
		[ "$p" = "$CURRENT" ] && continue
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}
check "the old haproxy processes finish and exit" wait_until 100 old_gone
check "the current one runs" kill -0 "$CURRENT"

# A reload that fails: a configuration haproxy refuses.  The old process
# keeps serving the last good certificate; the ack carries haproxy's words.
cp "$CFG" "$CFG.good"
echo "	this-is-not-a-keyword" >> "$CFG"
put_cert "$RSA" "$PKI/leaf-rsa.key"
expect 200 "PUT while the haproxy configuration is broken"
check "the failed reload is acked failed" wait_until 150 acked "$REV" failed
req GET "$C/1/subscribers"
case $(jget list.0.detail) in
"exit "[1-9]*:*) ok "the detail has the exit status and haproxy's message" ;;
*) not_ok "failed reload detail: $(jget list.0.detail)" ;;
esac
check "the old haproxy keeps serving" settled "$FP_RSA2"
cp "$CFG.good" "$CFG"

kill -TERM "$SYNC"
status=0; wait "$SYNC" || status=$?
check "sync exits 0 on SIGTERM" [ $status = 0 ]
stop_haproxy

# --- master-worker, SIGUSR2 and --verify ------------------------------------------
# verified REVISION STATUS FINGERPRINT: haproxy-verify's last ack is STATUS
# for REVISION, after a check that saw FINGERPRINT served.
verified() {
	acked "$1" "$2" haproxy-verify &&
	    [ "$(sub_field served_fingerprint_sha256 haproxy-verify)" = "$3" ] &&
	    sub_field verified_at haproxy-verify | grep -q '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$'
}
status=0
haproxy -W -D -f "$CFG" -p "$PIDF" > "$H/mw.log" 2>&1 || status=$?
[ -s "$PIDF" ] && cat "$PIDF" >> "$HIST"
track_haproxy
check "haproxy starts in master-worker mode" \
    eval '[ $status = 0 ] && wait_until 50 answers'
MW=$(cat "$PIDF")
check "it serves the bundle on disk (the last PUT's)" settled "$FP_RSA"
"$CERTCTL" sync web --alias www --cert-file "$H/certd/www.crt" \
    --key-file "$H/certd/www.key" --bundle-file "$H/certd/www.pem" \
    --signal USR2 --pid-file "$PIDF" --debounce 100 --name haproxy-verify \
    --verify "127.0.0.1:$HPORT" --verify-timeout 3 2> "$T/verify.log" &
VSYNC=$!
PIDS="$PIDS $VSYNC"
check "--verify at start: what haproxy serves is acked ok" \
    wait_until 100 verified "$REV" ok "$FP_RSA"
put_cert "$RSA2" "$PKI/leaf-rsa2.key"
expect 200 "--verify: PUT a new certificate"
check "--verify: acked ok once haproxy presents the new leaf" \
    wait_until 100 verified "$REV" ok "$FP_RSA2"
case $(sub_field detail haproxy-verify) in
"reload requested (SIGUSR2 to pid $MW); served at 127.0.0.1:$HPORT after "*)
	ok "... the detail names the USR2 and where it is served" ;;
*) not_ok "ok detail: $(sub_field detail haproxy-verify)" ;;
esac
check "... and haproxy does present it" settled "$FP_RSA2"

echo "	this-is-not-a-keyword" >> "$CFG"
put_cert "$RSA" "$PKI/leaf-rsa.key"
expect 200 "--verify: PUT while the haproxy configuration is broken"
check "--verify: the refused reload is acked failed" \
    wait_until 100 acked "$REV" failed haproxy-verify
check "... served_fingerprint_sha256 is the OLD leaf" \
    verified "$REV" failed "$FP_RSA2"
case $(sub_field detail haproxy-verify) in
*"not served within 3 s: 127.0.0.1:$HPORT presents another certificate, sha256 $FP_RSA2") 
	ok "... the detail names the target and the old fingerprint" ;;
*) not_ok "failed detail: $(sub_field detail haproxy-verify)" ;;
esac
check "the master is the same and still serves the old certificate" \
    eval '[ "$(cat "$PIDF")" = "$MW" ] && settled "$FP_RSA2"'
check "sync tries the failed revision again" \
    wait_until 100 grep -q "revision $REV: trying again" "$T/verify.log"
cp "$CFG.good" "$CFG"
check "with the configuration fixed, a retry is acked ok with the new leaf" \
    wait_until 200 verified "$REV" ok "$FP_RSA"
check "... which haproxy presents" settled "$FP_RSA"
kill -TERM "$VSYNC"
status=0; wait "$VSYNC" || status=$?
check "sync --verify exits 0 on SIGTERM" [ $status = 0 ]

stop_haproxy
stop_certd TERM && ok "certd exits 0 on SIGTERM" || not_ok "certd exit status"
finish
