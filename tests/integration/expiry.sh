#!/bin/sh
# SPDX-License-Identifier: MIT
# Expiry warnings: a certificate inside a threshold of its notAfter gets one
# log warning and one "expiring" event per threshold and version, and an
# update starts over.
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
finish
