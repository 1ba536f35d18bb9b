#!/bin/sh
# SPDX-License-Identifier: MIT
# HTTPS and mutual TLS on the REST listener: plain HTTP only on loopback
# unless allowed; the listener certificate from files (read again on
# SIGHUP) or held in certd (taken up when it changes); keep-alive and
# "Connection: close" replies whole over TLS; client certificates required
# with tls_client_ca, verified against it, and mapped to a token identity
# by their subject.
. "$(dirname "$0")/lib.sh"

command -v gnutls-cli > /dev/null || { echo "ok - # SKIP no gnutls-cli"; exit 77; }

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
C=/openapi/v1/teams/acme/certificates

# Client certificates, made now: two from the test root (one mapped to a
# token by its subject, one not) and one from another root.
client() {	# NAME CN ISSUER
	certtool --generate-privkey --no-text --key-type ecdsa --curve secp256r1 \
	    --outfile "$T/$1.key" 2> /dev/null
	printf 'cn = "%s"\norganization = "certd"\ntls_www_client\nsigning_key\nexpiration_days = 30\n' \
	    "$2" > "$T/$1.tmpl"
	certtool --generate-certificate --no-text --load-privkey "$T/$1.key" \
	    --template "$T/$1.tmpl" --load-ca-certificate "$PKI/$3.pem" \
	    --load-ca-privkey "$PKI/$3.key" --outfile "$T/$1.pem" 2> /dev/null
}
client ops "ops client" ca
client unmapped "someone else" ca
client stranger "ops client" other-ca
subject=$(certtool -i --infile "$T/ops.pem" | sed -n 's/^[[:space:]]*Subject: //p')
[ "$subject" = "CN=ops client,O=certd" ] && ok "client subject as certtool prints it: $subject" ||
    not_ok "client subject: $subject"
printf 'ops subject:"%s" teams=acme role=write\n' "$subject" >> "$D/tokens"
# A subject longer than the audit log once kept (95 bytes).
certtool --generate-privkey --no-text --key-type ecdsa --curve secp256r1 \
    --outfile "$T/long.key" 2> /dev/null
printf '%s\n' 'cn = "ops long"' 'unit = "Platform Engineering and Site Reliability"' \
    'organization = "Example Corporation of Certificate Holders"' \
    'locality = "San Francisco"' 'state = "California"' 'country = US' \
    tls_www_client signing_key 'expiration_days = 30' > "$T/long.tmpl"
certtool --generate-certificate --no-text --load-privkey "$T/long.key" \
    --template "$T/long.tmpl" --load-ca-certificate "$PKI/ca.pem" \
    --load-ca-privkey "$PKI/ca.key" --outfile "$T/long.pem" 2> /dev/null
long_subject=$(certtool -i --infile "$T/long.pem" | sed -n 's/^[[:space:]]*Subject: //p')
[ "${#long_subject}" -gt 120 ] && ok "a long client subject (${#long_subject} bytes)" ||
    not_ok "long subject: $long_subject"
printf 'long subject:"%s" teams=acme role=write\n' "$long_subject" >> "$D/tokens"

# served_cn: the CN of the certificate the listener presents now.
served_cn() {
	gnutls-cli --insecure --print-cert -p "$PORT" 127.0.0.1 < /dev/null 2> /dev/null |
	    sed -n 's/^ *- subject `CN=\([^,'"'"']*\).*/\1/p' | head -n 1
}

# --- plain HTTP stays on loopback ------------------------------------------
if "$CERTD" --data-dir "$T/plain" --listen 0.0.0.0:0 > "$T/plain.out" 2>&1; then
	not_ok "plain HTTP on 0.0.0.0 started"
else
	grep -q "refusing plain HTTP on 0.0.0.0" "$T/plain.out" &&
	    ok "plain HTTP on 0.0.0.0 is refused: $(tail -n 1 "$T/plain.out")" ||
	    not_ok "refusal message: $(cat "$T/plain.out")"
fi
"$CERTD" --data-dir "$T/plain" --listen 0.0.0.0:0 --allow-plain-http \
    > "$T/plain.out" 2>&1 &
P=$!
i=0
until grep -q 'certd ready' "$T/plain.out" || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'certd ready listen=0.0.0.0:[0-9]* tls=no' "$T/plain.out" &&
    ok "--allow-plain-http lets it listen on 0.0.0.0" ||
    not_ok "allow-plain-http: $(tail -n 2 "$T/plain.out")"
kill -TERM "$P"; wait "$P" || true
"$CERTD" --data-dir "$T/plain" --tls-key "$PKI/leaf-rsa.key" > "$T/plain.out" 2>&1 &&
    not_ok "tls_key without tls_cert started" ||
    { grep -q "need tls_cert" "$T/plain.out" && ok "tls_key without tls_cert is refused" ||
      not_ok "tls_key alone: $(cat "$T/plain.out")"; }
"$CERTD" --data-dir "$T/plain" --tls-cert "$PKI/leaf-rsa.pem" --tls-key "$PKI/other.key" \
    > "$T/plain.out" 2>&1 && not_ok "a mismatched listener key started" ||
    { grep -q "tls_cert .* and tls_key .*: " "$T/plain.out" &&
      ok "a listener key that does not match is refused: $(tail -n 1 "$T/plain.out")" ||
      not_ok "mismatched key: $(cat "$T/plain.out")"; }

# --- HTTPS from files --------------------------------------------------------
cp "$PKI/leaf-rsa.chain.pem" "$T/rest.pem"
cp "$PKI/leaf-rsa.key" "$T/rest.key"
SCHEME=https CURL_TLS="--cacert $PKI/ca.pem"
start_certd "$D" --socket "$S" --tls-cert "$T/rest.pem" --tls-key "$T/rest.key"
grep -q "certd ready listen=127.0.0.1:$PORT tls=yes" "$LOG" &&
    ok "ready line says tls=yes" || not_ok "ready line: $(grep 'certd ready' "$LOG")"
req GET /healthz; expect 200 "GET /healthz over HTTPS, server certificate verified"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz") || true
[ "$code" != 200 ] && ok "plain HTTP to the TLS port gets no answer ($code)" ||
    not_ok "plain HTTP answered 200 on the TLS port"
check_alive

body "$T/c" alias=web certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c"; expect 200 "POST over HTTPS with a token"
ID=$(jget id)
req GET "$C/$ID"
expect_json private_key "$(cat "$PKI/leaf-ec.key")" "GET over HTTPS returns the key whole"

# Many requests on one connection: 120 creates then a list, one curl.
: > "$T/many.cfg"
n=0
while [ $n -lt 120 ]; do
	n=$((n + 1))
	body "$T/m$n" alias="many$n" certificate=@"$PKI/leaf-ec.pem" \
	    private_key=@"$PKI/leaf-ec.key" certificate_type=server
	printf 'cacert = "%s"\nurl = "%s%s"\nrequest = "POST"\nheader = "Authorization: %s"\nheader = "Content-Type: application/json"\ndata-binary = "@%s"\noutput = "%s"\nnext\n' \
	    "$PKI/ca.pem" "$BASE" "$C" "$TOKEN" "$T/m$n" "/dev/null" >> "$T/many.cfg"
done
printf 'cacert = "%s"\nurl = "%s%s?page_size=200"\nheader = "Authorization: %s"\noutput = "%s"\n' \
    "$PKI/ca.pem" "$BASE" "$C" "$TOKEN" "$T/out" >> "$T/many.cfg"
curl -s -v -K "$T/many.cfg" > /dev/null 2> "$T/many.err" || true
n=$(grep -c '^< HTTP/1.1 200 OK' "$T/many.err" || true)
[ "$n" = 121 ] && ok "121 requests on a keep-alive TLS connection answered 200" ||
    not_ok "keep-alive: $n answered 200: $(grep '^< HTTP' "$T/many.err" | sort | uniq -c)"
conns=$(grep -c 'Connected to 127.0.0.1' "$T/many.err" || true)
[ "$conns" = 1 ] && ok "all of them on one connection" ||
    not_ok "curl connected $conns times"
expect_json total 121 "the list over TLS counts them all"

# "Connection: close" and HTTP/1.0 (which evhttp ends by closing, with no
# Content-Length): the reply is whole before the close.
for v in "-H Connection:close" "--http1.0"; do
	# shellcheck disable=SC2086 # $v is two words
	curl -s --cacert "$PKI/ca.pem" $v -H "Authorization: $TOKEN" \
	    -D "$T/hdr" -o "$T/out" "$BASE$C?page_size=200"
	len=$(sed -n 's/^Content-Length: \([0-9]*\).*/\1/ip' "$T/hdr" | tr -d '\r')
	got=$(wc -c < "$T/out")
	if [ "${len:-$got}" = "$got" ] && [ "$got" -gt 16384 ] &&
	    [ "$(jget total)" = 121 ] && [ "$(jget list.120.alias)" = many120 ]; then
		ok "$v: a ${got}-byte reply arrives whole before the close"
	else
		not_ok "$v: Content-Length $len, received $got"
	fi
done

# SIGHUP reads the certificate files again; a bad pair is refused whole.
[ "$(served_cn)" = "www.example.test" ] && ok "the listener presents leaf-rsa" ||
    not_ok "served CN: $(served_cn)"
cp "$PKI/leaf-ec.pem" "$T/rest.pem"
hup_wait
grep -q "reload failed.*tls_cert" "$LOG" &&
    ok "SIGHUP with a certificate that does not match the key is refused" ||
    not_ok "bad pair reload: $(tail -n 2 "$LOG")"
[ "$(served_cn)" = "www.example.test" ] && ok "the old certificate stays" ||
    not_ok "served CN after a refused reload: $(served_cn)"
cp "$PKI/leaf-ec.key" "$T/rest.key"
hup_wait
[ "$(served_cn)" = "ec.example.test" ] && ok "after SIGHUP new handshakes get the new certificate" ||
    not_ok "served CN after SIGHUP: $(served_cn)"
stop_certd && ok "SIGTERM exits 0 (TLS listener)" || not_ok "SIGTERM exit status"

# --- mutual TLS ----------------------------------------------------------------
cp "$PKI/leaf-rsa.chain.pem" "$T/rest.pem"
cp "$PKI/leaf-rsa.key" "$T/rest.key"
NO_HEALTHZ=1	# start_certd's healthz has no client certificate
start_certd "$D" --socket "$S" --tls-cert "$T/rest.pem" --tls-key "$T/rest.key" \
    --tls-client-ca "$PKI/ca.pem"
code=$(curl -s -m 5 --cacert "$PKI/ca.pem" -o /dev/null -w '%{http_code}' "$BASE/healthz") || true
[ "$code" = 000 ] && ok "no client certificate: the handshake fails" ||
    not_ok "no client certificate got $code"
CURL_TLS="--cacert $PKI/ca.pem --cert $T/stranger.pem --key $T/stranger.key"
req GET /healthz
[ "$STATUS" = 000 ] && ok "a client certificate of another CA: the handshake fails" ||
    not_ok "stranger got $STATUS"
sed -i '$ d' "$T/statuses"

CURL_TLS="--cacert $PKI/ca.pem --cert $PKI/leaf-rsa.chain.pem --key $PKI/leaf-rsa.key"
req GET /healthz
[ "$STATUS" = 000 ] && ok "a certificate of that CA meant for servers only: the handshake fails" ||
    not_ok "server-purpose client certificate got $STATUS"
sed -i '$ d' "$T/statuses"

CURL_TLS="--cacert $PKI/ca.pem --cert $T/ops.pem --key $T/ops.key"
req GET /healthz; expect 200 "healthz with a verified client certificate"
body "$T/c" alias=mtls certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c" ""; expect 200 "the mapped client certificate writes without a token"
MID=$(jget id)
grep ' audit ' "$LOG" | grep "op=create" | grep -q "who=.*cert:CN=ops client,O=certd.*id=$MID " &&
    ok "the audit line names the client certificate subject" ||
    not_ok "audit: $(grep ' audit ' "$LOG" | tail -n 1)"
CURL_TLS="--cacert $PKI/ca.pem --cert $T/long.pem --key $T/long.key"
body "$T/c" alias=mtls-long certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c" ""; expect 200 "the long subject writes too"
LID=$(jget id)
grep ' audit ' "$LOG" | grep "op=create" | grep -F "id=$LID " |
    grep -qF "who=\"cert:$long_subject\" " &&
    ok "the audit line holds the whole long subject" ||
    not_ok "audit of the long subject: $(grep ' audit ' "$LOG" | tail -n 1)"
CURL_TLS="--cacert $PKI/ca.pem --cert $T/ops.pem --key $T/ops.key"
req GET /openapi/v1/teams/other/certificates "" ""
[ "$STATUS" = 404 ] || [ "$STATUS" = 403 ] && ok "its token's teams still apply ($STATUS for another team)" ||
    not_ok "another team: $STATUS"

CURL_TLS="--cacert $PKI/ca.pem --cert $T/unmapped.pem --key $T/unmapped.key"
req GET "$C" "" ""; expect_error 401 "unauthorized" "an unmapped client certificate needs a token"
req GET "$C"; expect 200 "an unmapped client certificate with a token"
stop_certd && ok "SIGTERM exits 0 (mutual TLS)" || not_ok "SIGTERM exit status"

# --- the listener certificate held in certd ------------------------------------
D2="$T/data2"; mkdir -p -m 700 "$D2"
cp "$D/tokens" "$D2/tokens"
S2="$T/certd2.sock"
CURL_TLS="--cacert $PKI/ca.pem"
start_certd "$D2" --socket "$S2" --tls-cert certd:infra/listener
grep -q "tls listener waits for its certificate: certd holds no certificate infra/listener" "$LOG" &&
    ok "a listener certificate not yet in certd is waited for" ||
    not_ok "wait line: $(grep tls "$LOG" | tail -n 2)"
rc=0
code=$(curl -s -m 5 --cacert "$PKI/ca.pem" -o /dev/null -w '%{http_code}' "$BASE/healthz") || rc=$?
[ "$code" = 000 ] && [ "$rc" != 28 ] &&
    ok "no handshake before it is stored: closed at once (curl exit $rc)" ||
    not_ok "before the certificate: got $code, curl exit $rc"
"$CERTCTL" -s "$S2" put infra --alias listener --type server \
    --cert "$PKI/leaf-rsa.chain.pem" --key "$PKI/leaf-rsa.key" > "$T/put" 2>&1 ||
    not_ok "certctl put: $(cat "$T/put")"
req GET /healthz; expect 200 "HTTPS with the certificate certd holds, once stored"
"$CERTCTL" -s "$S2" --json get infra --alias listener > "$T/out"
LID=$(jget id)
"$CERTCTL" -s "$S2" put infra --id "$LID" --cert "$PKI/leaf-rsa2.pem" \
    --key "$PKI/leaf-rsa2.key" > "$T/put" 2>&1 || not_ok "certctl update: $(cat "$T/put")"
i=0
while [ "$(served_cn)" != "api.example.test" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(served_cn)" = "api.example.test" ] &&
    ok "an update of that certificate reaches new handshakes without a restart" ||
    not_ok "served CN after the update: $(served_cn)"
grep -q "tls listener certificate infra/listener now revision" "$LOG" &&
    ok "the swap is logged" || not_ok "no swap line"
stop_certd && ok "SIGTERM exits 0 (certificate held in certd)" || not_ok "SIGTERM exit status"
NO_HEALTHZ=

finish
