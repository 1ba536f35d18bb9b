#!/bin/sh
# SPDX-License-Identifier: MIT
# GET /metrics: Prometheus text with requests by route and status, latency
# histograms, validation failures by reason, store writes and batches,
# connections, watches and events, acks and failed subscribers, whether the
# store writes, seconds to expiry per certificate and counts by threshold.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
SCOPED=$(new_token scoped 'acme' read "$D/tokens")
start_certd "$D"
S="$D/certd.sock"
C=/openapi/v1/teams/acme/certificates

"$PEER" -s -n 1 "$S" '{"id":1,"op":"watch","team":"acme"}' > /dev/null &
W=$!
sleep 0.3
body "$T/c" alias='we"b' certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c"; expect 200 "create"
body "$T/x" alias=old certificate=@"$PKI/expired.pem" private_key=@"$PKI/expired.key" \
    certificate_type=server
req POST "$C" "$T/x"; expect 400 "expired"
req GET "$C/99"; expect 404 "missing"

# A subscriber that reports a failed reload, and stays.
"$PEER" -s -n 2 "$S" '{"id":1,"op":"watch","team":"acme","ids":[1],"name":"web"}' \
    '{"id":2,"op":"ack","watch":1,"revision":1,"status":"failed","detail":"nginx -t failed"}' \
    > "$T/ack" &
A=$!
i=0
while ! grep -q '"id":2,"ok":true' "$T/ack" && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done

req GET /metrics "" ""; expect_error 401 "unauthorized" "metrics need a token"
req GET /metrics "" "$SCOPED"; expect_error 403 "permission denied" "metrics need teams=*"
req GET /metrics
expect 200 "metrics"
M="$T/out"
has() {	# PATTERN DESCRIPTION
	if grep -q -- "$1" "$M"; then ok "$2"; else not_ok "$2: no $1"; fi
}
has '^certd_http_requests_total{route="certificates",code="200"} 1$' "requests by route and status"
has '^certd_http_requests_total{route="certificate",code="404"} 1$' "a 404 counted"
has '^certd_http_request_duration_seconds_bucket{route="certificates",le="+Inf"} 2$' "latency histogram"
has '^certd_validation_failures_total{reason="certificate_expired"} 1$' "validation failures by reason"
has '^certd_store_batch_size_count [1-9]' "store batches"
has '^certd_store_write_seconds_bucket{le="+Inf"} [1-9]' "store write latency"
has '^certd_certificates 1$' "certificates stored"
has '^certd_socket_connections 2$' "socket connections"
has '^certd_watches 2$' "watches"
has '^certd_events_sent_total 1$' "events pushed"
has '^certd_events_coalesced_total 0$' "events coalesced"
has '^certd_certificate_expiry_seconds{team="acme",id="1",alias="we\\"b"} [0-9]' \
    "seconds to expiry per certificate, alias escaped"
has '^# TYPE certd_http_request_duration_seconds histogram$' "types declared"
has '^certd_store_writable 1$' "the store is writable"
has '^certd_acks_total{status="failed"} 1$' "acks by status"
has '^certd_acks_total{status="ok"} 0$' "acks by status (ok)"
has '^certd_subscribers_failed 1$' "subscribers whose last ack failed"
has '^certd_certificates_expiring{days="30"} 0$' "certificates expiring, by threshold"
has '^certd_certificates_expired 0$' "certificates expired"
kill $A 2>/dev/null || true; wait $A 2>/dev/null || true
sleep 0.2
req GET /metrics
has '^certd_subscribers_failed 0$' "a failed subscriber that left is no longer counted"
kill $W 2>/dev/null || true; wait $W 2>/dev/null || true
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
