#!/bin/sh
# SPDX-License-Identifier: MIT
# Expiry warnings: a certificate inside a threshold of its notAfter gets one
# log warning and one "expiring" event per threshold and version, and an
# update starts over; a write inside a threshold gets them at once.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
# The test leaves are valid for about 365 days: thresholds of 500 and 400
# days are both crossed, 10 days is not.
printf '[certd]\nexpiry_warn_days = 10,500,400\nexpiry_scan_interval = 1\n' > "$T/c.conf"
start_certd "$D" --config "$T/c.conf"
S="$D/certd.sock"
C=/openapi/v1/teams/exp/certificates

"$PEER" -n 6 -t 20000 "$S" '{"id":1,"op":"watch","team":"exp"}' > "$T/w" &
W=$!
sleep 0.3
body "$T/c" alias=soon certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c"; expect 200 "create"
sleep 2.5
n=$(grep -c 'certificate expiring team=exp id=1 alias=soon' "$LOG" || true)
[ "$n" = 1 ] && ok "one warning per version, for the threshold crossed last" ||
    not_ok "warnings: $n: $(grep expiring "$LOG")"
grep -q 'threshold_days=400' "$LOG" && ok "the warning names the smallest crossed threshold" ||
    not_ok "threshold: $(grep expiring "$LOG")"
body "$T/u" certificate_type=client
req PUT "$C/1" "$T/u"; expect 200 "update"
sleep 2.5
kill $W 2>/dev/null || true; wait $W 2>/dev/null || true
[ "$(grep -c '"event":"expiring"' "$T/w")" = 2 ] && ok "an expiring event per version" ||
    not_ok "events: $(grep -c expiring "$T/w"): $(cat "$T/w")"
grep '"event":"expiring"' "$T/w" | head -n 1 | grep -q '"alias":"soon".*"not_after":[0-9]' &&
    ok "the event names the certificate and its notAfter" || not_ok "event: $(cat "$T/w")"
grep '"event":"expiring"' "$T/w" | grep -q PRIVATE && not_ok "key in the event" ||
    ok "no key material in expiring events"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"

# --- visible on the write ------------------------------------------------------
# Default thresholds (30, 7 and 1 days) and scan interval (an hour; the scan
# at start-up finds an empty store): a certificate valid for 2 days raises
# "expiring" on the write that stores it, whichever way it comes (REST
# create, socket put, REST update, rollback), right after its "put", and
# the metrics count it at once.
D2="$T/data2"; mkdir -p -m 700 "$D2"; cp "$D/tokens" "$D2/tokens"
certtool --generate-privkey --key-type ecdsa --no-text --outfile "$T/short.key" 2>/dev/null
printf 'cn = short.example.test\ndns_name = short.example.test\nexpiration_days = 2\ntls_www_server\n' \
    > "$T/short.tmpl"
certtool --generate-self-signed --no-text --load-privkey "$T/short.key" \
    --template "$T/short.tmpl" --outfile "$T/short.pem" 2>/dev/null
start_certd "$D2"
S="$D2/certd.sock"
C=/openapi/v1/teams/soon/certificates
"$PEER" -n 30 -t 15000 "$S" '{"id":1,"op":"watch","team":"soon"}' > "$T/w2" &
W=$!
sleep 0.3

# expiring_after N ALIAS DESCRIPTION: within 2 s the watch has N expiring
# events, the last for ALIAS, and the frame before it is the put of the
# same revision.  (sockpeer prints a frame's JSON as is: events with PEM
# span lines; the put's "event" member ends its last line.)
expiring_after() {
	i=0
	while [ "$(grep -c '"event":"expiring"' "$T/w2")" -lt "$1" ] && [ $i -lt 20 ]; do
		sleep 0.1; i=$((i + 1))
	done
	n=$(grep -c '"event":"expiring"' "$T/w2" || true)
	last=$(grep '"event":"expiring"' "$T/w2" | tail -n 1)
	rev=$(printf '%s' "$last" | sed -n 's/.*"event":"expiring","revision":\([0-9]*\),.*/\1/p')
	before=$(grep -B 1 '"event":"expiring"' "$T/w2" | tail -n 2 | head -n 1)
	if [ "$n" = "$1" ] && printf '%s' "$last" | grep -q "{\"alias\":\"$2\"" &&
	    printf '%s' "$before" | grep -q "\"event\":\"put\",\"revision\":$rev,"; then
		ok "$3"
	else
		not_ok "$3: $n expiring events: $(grep -e '"event"' "$T/w2" | sed 's/.*"event"/"event"/')"
	fi
}

body "$T/s" alias=a certificate=@"$T/short.pem" private_key=@"$T/short.key" \
    certificate_type=server
req POST "$C" "$T/s"; expect 200 "create a certificate valid for 2 days"
expiring_after 1 a "REST create: expiring right after the put"
grep -q 'certificate expiring team=soon id=1 alias=a .*days_left=[12] threshold_days=7' "$LOG" &&
    ok "... and the warning, naming the 7-day threshold" ||
    not_ok "warning: $(grep 'certificate expiring' "$LOG" | tail -n 2)"
req GET /metrics
grep -q '^certd_certificates_expiring{days="30"} 1$' "$T/out" &&
    grep -q '^certd_certificates_expiring{days="7"} 1$' "$T/out" &&
    grep -q '^certd_certificates_expiring{days="1"} 0$' "$T/out" &&
    grep -q '^certd_certificates_expired 0$' "$T/out" &&
    ok "the metrics count it at once, by threshold" ||
    not_ok "metrics: $(grep 'certd_certificates_expir' "$T/out")"
secs=$(sed -n 's/^certd_certificate_expiry_seconds{team="soon",id="1",alias="a"} //p' "$T/out")
[ -n "$secs" ] && [ "$secs" -gt 86400 ] && [ "$secs" -le 172800 ] &&
    ok "its expiry gauge says under 2 days ($secs s)" || not_ok "expiry seconds: '$secs'"

"$JTOOL" make id:=1 op=put team=soon alias=b certificate=@"$T/short.pem" \
    private_key=@"$T/short.key" certificate_type=server > "$T/p.json"
"$PEER" "$S" @"$T/p.json" > "$T/o"
grep -q '"ok":true' "$T/o" && ok "socket put" || not_ok "socket put: $(cat "$T/o")"
expiring_after 2 b "socket put: expiring right after the put"

body "$T/l" alias=c certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/l"; expect 200 "create a certificate valid for a year"
body "$T/u" certificate=@"$T/short.pem" private_key=@"$T/short.key"
req PUT "$C/3" "$T/u"; expect 200 "update it to the 2-day certificate"
short_rev=$(jget revision)
expiring_after 3 c "REST update: expiring right after the put"
body "$T/u" certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key"
req PUT "$C/3" "$T/u"; expect 200 "renew it"
printf '{"revision":%s}' "$short_rev" > "$T/rb"
req POST "$C/3/rollback" "$T/rb"; expect 200 "roll it back to the 2-day version"
expiring_after 4 c "rollback: expiring right after the put (not for the renewal)"
kill $W 2>/dev/null; wait $W 2>/dev/null || true
[ "$(grep -c '"event":"expiring"' "$T/w2")" = 4 ] &&
    [ "$(grep -c 'certificate expiring team=soon' "$LOG")" = 4 ] &&
    ok "one expiring event and warning per write, none twice" ||
    not_ok "events: $(grep -c expiring "$T/w2"), warnings: $(grep -c 'certificate expiring team=soon' "$LOG")"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
