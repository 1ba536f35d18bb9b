#!/bin/sh
# SPDX-License-Identifier: MIT
# The Unix-socket protocol against the real daemon: watchers receive REST
# changes, socket puts validate like REST, resume with since, resync after
# the log was trimmed, acks (ok, failed, requested, the check they may
# carry, shown by REST, the socket and certctl), bindings, hostile frames,
# a stuck subscriber, and a peer that is not allowed.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
cat > "$T/certd.conf" <<CONF
[certd]
log_retain = 5
socket_group = nogroup
ctl_out_limit = 65536
ctl_idle_timeout = 2
ctl_max_conns_per_uid = 8
[acl]
user nobody = teams=pub perms=read
CONF
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/acme/certificates

# expect_line FILE PATTERN DESCRIPTION: a line of FILE matches PATTERN.
expect_line() {
	if grep -q -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no line matching $2 in: $(head -c 600 "$1")"
	fi
}

[ "$(stat -c %a "$S")" = 660 ] && ok "socket mode 0660" ||
    not_ok "socket mode $(stat -c %a "$S")"
[ "$(stat -c %G "$S")" = nogroup ] && ok "socket group from the config" ||
    not_ok "socket group $(stat -c %G "$S")"

"$PEER" "$S" '{"id":1,"op":"hello"}' > "$T/o"
expect_line "$T/o" '"admin":true' "root is an admin"
expect_line "$T/o" '"version":1' "hello reports protocol version 1"
HELLO_EPOCH=$(sed -n 's/.*"epoch":\([0-9]*\).*/\1/p' "$T/o")

# --- a watcher receives REST changes ------------------------------------------
"$PEER" -n 4 -t 10000 "$S" '{"id":1,"op":"watch","team":"acme"}' > "$T/w1" &
W1=$!
sleep 0.3
body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c1"; expect 200 "REST create"
body "$T/u1" certificate_type=client
req PUT "$C/1" "$T/u1"; expect 200 "REST update"
req DELETE "$C/1"; expect 204 "REST delete"
wait $W1 || true
expect_line "$T/w1" '"id":1,"ok":true,"result":{"epoch":[1-9][0-9]*,"revision":0,"watch":1}' "watch answered"
expect_line "$T/w1" "\"epoch\":${HELLO_EPOCH:-none}," "the watch result's epoch is hello's"
expect_line "$T/w1" '"event":"put","revision":1,"team":"acme"' "put event for the REST create"
expect_line "$T/w1" '"certificate_type":"client".*"event":"put","revision":2' "put event for the REST update"
expect_line "$T/w1" '"event":"delete","revision":3' "delete event for the REST delete"
expect_line "$T/w1" '"private_key":"-----BEGIN RSA PRIVATE KEY' "admin watcher gets the key"
[ "$(grep -c event "$T/w1")" = 3 ] && ok "exactly three events" ||
    not_ok "events: $(grep -c event "$T/w1")"

# --- socket put validates like REST ------------------------------------------
put_json() {	# ID ALIAS CERT KEY
	"$JTOOL" make id:="$1" op=put team=acme alias="$2" certificate=@"$PKI/$3" \
	    private_key=@"$PKI/$4" certificate_type=server
}
"$PEER" "$S" "$(put_json 1 old expired.pem expired.key)" \
    "$(put_json 2 bad leaf-rsa.pem other.key)" \
    "$(put_json 3 chain chain-reversed.pem int.key)" \
    "$(put_json 4 good leaf-ec.pem leaf-ec.key)" \
    "$(put_json 5 good leaf-ec384.pem leaf-ec384.key)" \
    '{"id":6,"op":"put","team":"acme","alias":"x"}' \
    '{"id":7,"op":"put","team":"acme","alias":5}' > "$T/o"
expect_line "$T/o" '"code":400,"field":"certificate","msg":"the certificate has been expired","reason":"certificate 1, the leaf (CN=expired.example.test), expired at 2021-01-01T00:00:00Z"},"id":1' "socket put: expired, and which certificate"
expect_line "$T/o" '"field":"private_key","msg":"the certificate key pair mismatch","reason":"is not the key of the leaf, certificate 1 (CN=www.example.test).*"id":2' "socket put: mismatch"
expect_line "$T/o" '"field":"certificate","msg":"the certificate chain is invalid","reason":"certificate 1 (CN=certd Test Intermediate) is not issued by.*"id":3' "socket put: chain"
expect_line "$T/o" '"id":4,"ok":true' "socket put: create"
expect_line "$T/o" '"code":412,"field":"alias","msg":"certificate name already exists","reason":"is taken by certificate [0-9]* of the team"},"id":5' "socket put: alias taken"
expect_line "$T/o" '"field":"private_key".*"reason":"is required"},"id":6' "socket put: missing field"
expect_line "$T/o" '"field":"alias".*"reason":"must be a string"},"id":7' "socket put: wrong type"
req GET "$C?page_size=100"
expect_json total 1 "REST sees the socket's create"
GOOD=$(jget list.0.id)

# --- pipelined requests are done in the order sent ----------------------------
# A put's certificate check runs off the loop; what the connection sends
# after it waits for it.  A put then a delete of one certificate: the put is
# applied, then the delete (the other way round the put would find nothing).
"$PEER" "$S" "$(put_json 1 order leaf-ec.pem leaf-ec.key)" > "$T/o"
ORDER=$("$JTOOL" get "$T/o" result.id)
"$PEER" "$S" "$("$JTOOL" make id:=1 op=put team=acme cert_id:="$ORDER" \
    certificate=@"$PKI/leaf-ec384.pem" private_key=@"$PKI/leaf-ec384.key")" \
    "{\"id\":2,\"op\":\"delete\",\"team\":\"acme\",\"cert_id\":$ORDER,\"force\":true}" \
    > "$T/o"
expect_line "$T/o" '"id":1,"ok":true' "pipelined put then delete: the put is applied first"
expect_line "$T/o" '"id":2,"ok":true' "pipelined put then delete: then the delete"
req GET "$C/$ORDER"
expect_error 404 "certificate not found" "pipelined put then delete: gone at the end"
req GET "$C?page_size=100"	# what follows reads this list

# --- resume with since, resync after the log was trimmed ----------------------
rev0=$(jget list.0.id >/dev/null; "$PEER" "$S" '{"id":1,"op":"hello"}' |
    sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
body "$T/u2" certificate_type=t2
req PUT "$C/$GOOD" "$T/u2"; expect 200 "update after rev $rev0"
"$PEER" -n 2 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"since\":$rev0}" > "$T/o"
expect_line "$T/o" "\"event\":\"put\",\"revision\":$((rev0 + 1))" "since replays the change after it"
[ "$(grep -c event "$T/o")" = 1 ] && ok "since replays nothing older" ||
    not_ok "since replay: $(cat "$T/o")"
for i in 1 2 3 4 5 6 7; do
	body "$T/u3" certificate_type="t$i$i"
	req PUT "$C/$GOOD" "$T/u3"
done
"$PEER" -n 3 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"since\":$rev0}" > "$T/o"
expect_line "$T/o" '"event":"resync"' "since older than the log: resync"
expect_line "$T/o" '"certificate_type":"t77".*"event":"put"' "then the current state"
# A revision this store never reached (the client followed another store, or
# this one was restored from an older backup): resync too.
"$PEER" -n 3 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"since\":$((rev0 + 1000))}" > "$T/o"
expect_line "$T/o" '"event":"resync"' "since beyond the head: resync"
expect_line "$T/o" '"certificate_type":"t77".*"event":"put"' "then the current state"

# --- acks: ok, failed, requested, and the check an ack may carry ---------------
# frames FILE N: wait (5 s at most) until FILE holds N frames.
frames() {
	_n=0
	while [ $_n -lt 50 ]; do
		_c=$(cat "$1" 2>/dev/null | grep -c '"id":' || true)
		[ "${_c:-0}" -ge "$2" ] && return 0
		sleep 0.1; _n=$((_n + 1))
	done
}
FPA=$(printf '%064d' 0 | tr 0 a)
"$PEER" -s -n 5 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"ids\":[$GOOD],\"name\":\"acker\"}" \
    '{"id":2,"op":"ack","watch":1,"revision":7,"status":"maybe"}' \
    "{\"id\":3,\"op\":\"ack\",\"watch\":1,\"revision\":7,\"status\":\"ok\",\"served_fingerprint_sha256\":\"$(printf '%064d' 0 | tr 0 A)\"}" \
    '{"id":4,"op":"ack","watch":1,"revision":7,"status":"failed","verified_at_unix":0}' \
    '{"id":5,"op":"ack","watch":1,"revision":7,"status":"requested","detail":"reload requested"}' \
    > "$T/ack1" &
ACK=$!
frames "$T/ack1" 5
expect_line "$T/ack1" '"field":"status",[^}]*"reason":"must be ok, failed or requested"},"id":2' \
    "an ack status other than ok, failed or requested is 400"
expect_line "$T/ack1" '"field":"served_fingerprint_sha256",[^}]*64 lowercase hex[^}]*},"id":3' \
    "a served fingerprint that is not 64 lowercase hex digits is 400"
expect_line "$T/ack1" '"field":"verified_at_unix".*"id":4' "verified_at_unix 0 is 400"
expect_line "$T/ack1" '"id":5,"ok":true' "status requested is accepted"
req GET "$C/$GOOD/subscribers"
expect_json list.0.status requested "REST shows status requested"
expect_json list.0.served_fingerprint_sha256 null "... no served fingerprint without a check"
expect_json list.0.verified_at null "... nor verified_at"
"$PEER" "$S" "{\"id\":1,\"op\":\"subscribers\",\"team\":\"acme\",\"cert_id\":$GOOD}" > "$T/o"
expect_line "$T/o" '"status":"requested"' "the socket shows status requested"
grep -q verified "$T/o" && not_ok "check fields without a check: $(cat "$T/o")" ||
    ok "... and no check fields"
kill $ACK; wait $ACK 2>/dev/null || true
"$PEER" -s -n 3 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"ids\":[$GOOD],\"name\":\"acker\"}" \
    "{\"id\":2,\"op\":\"ack\",\"watch\":1,\"revision\":8,\"status\":\"failed\",\"detail\":\"not served\",\"served_fingerprint_sha256\":\"$FPA\",\"verified_at_unix\":1796000000}" \
    '{"id":3,"op":"ack","watch":1,"revision":9,"status":"failed","verified_at_unix":1796000001}' \
    > "$T/ack2" &
ACK=$!
frames "$T/ack2" 3
expect_line "$T/ack2" '"id":3,"ok":true' "acks with a check are accepted"
req GET "$C/$GOOD/subscribers"
expect_json list.0.revision 9 "REST shows the last ack"
expect_json list.0.served_fingerprint_sha256 null "... a check that saw nothing served: null"
expect_json list.0.verified_at 2026-11-30T00:53:21Z "... verified_at in RFC 3339 UTC"
kill $ACK; wait $ACK 2>/dev/null || true
"$PEER" -s -n 2 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"ids\":[$GOOD],\"name\":\"acker\"}" \
    "{\"id\":2,\"op\":\"ack\",\"watch\":1,\"revision\":8,\"status\":\"ok\",\"served_fingerprint_sha256\":\"$FPA\",\"verified_at_unix\":1796000000}" \
    > "$T/ack3" &
ACK=$!
frames "$T/ack3" 2
req GET "$C/$GOOD/subscribers"
expect_json list.0.status ok "REST: ok after a check"
expect_json list.0.served_fingerprint_sha256 "$FPA" "... with the served fingerprint"
expect_json list.0.verified_at 2026-11-30T00:53:20Z "... and when"
"$PEER" "$S" "{\"id\":1,\"op\":\"subscribers\",\"team\":\"acme\",\"cert_id\":$GOOD}" > "$T/o"
expect_line "$T/o" "\"served_fingerprint_sha256\":\"$FPA\",\"status\":\"ok\",\"uid\":0,\"verified_at\":\"2026-11-30T00:53:20Z\",\"verified_at_unix\":1796000000" \
    "the socket shows the check too"
"$CERTCTL" -s "$S" --json subscribers acme "$GOOD" > "$T/o"
expect_line "$T/o" "\"served_fingerprint_sha256\":\"$FPA\",\"verified_at\":\"2026-11-30T00:53:20Z\"" \
    "certctl --json subscribers shows it"
kill $ACK; wait $ACK 2>/dev/null || true
sleep 0.2

# --- bindings -------------------------------------------------------------------
"$PEER" -s -n 1 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"acme\",\"ids\":[$GOOD]}" > "$T/bind" &
BIND=$!
sleep 0.3
req DELETE "$C/$GOOD"
expect_error 400 "the certificate is still in use" "DELETE of a bound certificate"
"$PEER" "$S" "{\"id\":9,\"op\":\"delete\",\"team\":\"acme\",\"cert_id\":$GOOD}" > "$T/o"
expect_line "$T/o" '"msg":"the certificate is still in use"},"id":9' "socket delete of a bound certificate"
kill $BIND; wait $BIND 2>/dev/null || true
sleep 0.2
req PUT "$C/$GOOD" "$T/u1"; expect 200 "binding ends with the connection"
"$PEER" -s -n 1 "$S" '{"id":1,"op":"watch","team":"acme","aliases":["good"]}' > /dev/null &
BIND=$!
sleep 0.3
req DELETE "$C/$GOOD"
expect_error 400 "the certificate is still in use" "bound by alias"
req DELETE "$C/$GOOD?force=true"
expect 204 "forced DELETE of a bound certificate"
kill $BIND; wait $BIND 2>/dev/null || true

# --- hostile frames -----------------------------------------------------------
"$PEER" -n 1 "$S" raw:00000000 > "$T/o"
expect_line "$T/o" '"code":400,"msg":"empty frame"' "zero-length frame"
"$PEER" -n 2 "$S" raw:7fffffff > "$T/o"
expect_line "$T/o" '"code":413,"msg":"frame too large"' "huge length refused from the header"
expect_line "$T/o" '^EOF' "connection closed after a too-large frame"
"$PEER" -n 2 "$S" raw:0000000391a161 > "$T/o"
expect_line "$T/o" '"msg":"malformed frame: not a map"' "non-map frame"
"$PEER" -n 2 "$S" raw:0000000481a16901 > "$T/o"
expect_line "$T/o" '"msg":"malformed frame: id and op are required"' "frame without op"
"$PEER" -n 2 "$S" raw:00000006dd7fffffff00 > "$T/o"
expect_line "$T/o" '"code":400' "array announcing 2^31 elements"
"$PEER" -n 2 "$S" raw:000000088181818181818181 > "$T/o"
expect_line "$T/o" '"code":400' "nesting without end"
"$PEER" -n 1 -t 1000 "$S" junk:100000 > "$T/o" || true
"$PEER" -n 1 -t 1000 "$S" raw:000010 > "$T/o" || true	# a partial header, then gone
i=0
while [ $i -lt 20 ]; do
	"$PEER" -n 1 -t 500 "$S" "junk:$((i * 997 + 13))" > /dev/null || true
	i=$((i + 1))
done
check_alive
"$PEER" "$S" '{"id":1,"op":"ping"}' > "$T/o"
expect_line "$T/o" '"result":"pong"' "still serving the socket after junk"
req GET "$C"; expect 200 "still serving REST after junk"

# --- a stuck subscriber while 300 writes proceed ------------------------------
"$PEER" -s -n 1 "$S" '{"id":1,"op":"watch","team":"load","since":0}' > /dev/null &
STUCK=$!
"$PEER" -n 302 -t 60000 "$S" '{"id":1,"op":"watch","team":"load"}' > "$T/live" &
LIVE=$!
sleep 0.3
body "$T/l" alias=l certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST /openapi/v1/teams/load/certificates "$T/l"; expect 200 "create under a stuck subscriber"
LID=$(jget id)
i=0; failed=0
while [ $i -lt 300 ]; do
	body "$T/l" certificate_type="type$i"
	req PUT "/openapi/v1/teams/load/certificates/$LID" "$T/l"
	[ "$STATUS" = 200 ] || failed=$((failed + 1))
	i=$((i + 1))
done
[ $failed -eq 0 ] && ok "300 writes succeeded with a stuck subscriber" ||
    not_ok "$failed of 300 writes failed"
wait $LIVE || true
[ "$(grep -c '"event":"put"' "$T/live")" = 301 ] && ok "a reading subscriber got all 301 events" ||
    not_ok "reading subscriber got $(grep -c '"event":"put"' "$T/live") events"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$CERTD_PID/status")
if nm -D "$CERTD" 2>/dev/null | grep -q __asan_init; then
	ok "# SKIP RSS check under AddressSanitizer (${rss} kB)"
else
	[ "$rss" -lt 200000 ] && ok "certd RSS ${rss} kB with a stuck subscriber" ||
	    not_ok "certd RSS ${rss} kB"
fi
kill $STUCK; wait $STUCK 2>/dev/null || true
check_alive

# --- idle timeout and connection caps -------------------------------------------
"$PEER" -n 1 -t 6000 "$S" > "$T/o"
expect_line "$T/o" '^EOF' "a connection that sends nothing is closed after ctl_idle_timeout"
i=0; pids=
while [ $i -lt 8 ]; do
	"$PEER" -s -n 1 "$S" '{"id":1,"op":"watch","team":"cap"}' > "$T/cap.$i" &
	pids="$pids $!"
	i=$((i + 1))
done
i=0
while [ "$(cat "$T"/cap.* | grep -c '"watch":1')" -lt 8 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
"$PEER" -n 1 "$S" '{"id":1,"op":"ping"}' > "$T/o"
expect_line "$T/o" '"code":503,"msg":"too many connections"' "the ninth connection of one uid is refused"
kill $pids; wait $pids 2>/dev/null || true
sleep 0.2
"$PEER" "$S" '{"id":1,"op":"ping"}' > "$T/o"
expect_line "$T/o" '"result":"pong"' "connections are accepted again below the cap"

# --- a peer that is not allowed -----------------------------------------------
if nobody_ok; then
	chmod 755 "$T"
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$PEER" "$@"; }
	as_nobody "$S" '{"id":1,"op":"hello"}' '{"id":2,"op":"list","team":"acme"}' \
	    '{"id":3,"op":"put","team":"pub","alias":"a","certificate":"x","private_key":"y","certificate_type":"z"}' \
	    '{"id":4,"op":"watch"}' '{"id":5,"op":"list","team":"pub"}' > "$T/o"
	expect_line "$T/o" '"admin":false' "nobody is not an admin"
	expect_line "$T/o" '"code":403,"msg":"permission denied"},"id":2' "nobody may not list acme"
	expect_line "$T/o" '"code":403,"msg":"permission denied"},"id":3' "nobody may not write pub"
	expect_line "$T/o" '"id":5,"ok":true' "the ACL lets nobody list pub"
else
	ok "# SKIP not root: cannot run a peer as nobody"
fi

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
[ -e "$S" ] && not_ok "socket file left behind" || ok "socket file removed on exit"
finish
