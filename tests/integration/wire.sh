#!/bin/sh
# SPDX-License-Identifier: MIT
# Requests that a proxy in front of certd and certd itself could read
# differently, sent raw: two Authorization headers, a NUL in a header value
# (libevent kept "TOKEN<NUL>junk" as TOKEN), folded lines, a
# Transfer-Encoding other than chunked beside a Content-Length (a request
# smuggled behind the body), malformed chunked bodies (libevent answered
# 413 with an HTML page).  Each is answered once, 400 with the envelope
# naming what was wrong, and nothing behind it is read; well-formed
# chunked and pipelined requests still work, over TLS too.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/acme/certificates

RAW="$CERTD_BUILDDIR/tests/integration/rawhttp"

# raw [FILE...]: send $T/req (or each FILE, the next once the last was
# answered) as it is on one connection, answers in $T/resp; the status of
# the first answer in $STATUS, its body in $T/out, answers in $NRESP.
raw() {
	[ $# -gt 0 ] || set -- "$T/req"
	if [ -n "${TLS_PORT:-}" ]; then
		# gnutls-cli stops at the end of its input: keep it open
		{ cat "$@"; sleep 1; } | timeout 10 gnutls-cli --insecure \
		    -p "$TLS_PORT" 127.0.0.1 > "$T/resp" 2> /dev/null || true
	else
		timeout 20 "$RAW" "$PORT" "$@" > "$T/resp" || true
	fi
	# a JSON body ends without a newline: the next status line follows it
	NRESP=$(grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] ' "$T/resp" | wc -l)
	STATUS=$(sed -n 's/^HTTP\/1\.1 \([0-9]*\) .*/\1/p' "$T/resp" | head -n 1)
	: "${STATUS:=000}"
	tr -d '\r' < "$T/resp" | sed -n '/^HTTP\/1\.1 /,$p' | sed '1,/^$/d' |
	    sed -n '1{s/HTTP\/1\.1 [0-9][0-9][0-9] .*//;p;}' > "$T/out"
	echo "$STATUS raw" >> "$T/statuses"
}

# refused FIELD DESCRIPTION: one answer, the 400 envelope naming FIELD (for
# the body, its chunked encoding).
refused() {
	if [ "$NRESP" = 1 ] && [ "$STATUS" = 400 ] &&
	    [ "$(jget code 2>/dev/null)" = 400 ] &&
	    [ "$(jget data.bean.field 2>/dev/null)" = "$1" ] &&
	    { [ "$1" != body ] || jget data.bean.reason | grep -q chunk; }; then
		ok "$2: 400 naming $1 ($(jget data.bean.reason))"
	else
		not_ok "$2: $NRESP answers, first $STATUS: $(tr '\r\n' '  ' < "$T/resp" | head -c 400)"
	fi
}

AUTH="Authorization: $TOKEN"
H="Host: x\r\nConnection: close"

# --- Authorization --------------------------------------------------------------
printf "GET $C HTTP/1.1\r\n$H\r\n$AUTH\r\nAuthorization: ctk_junk\r\n\r\n" > "$T/req"
raw; refused Authorization "two Authorization headers, the good one first"
printf "GET $C HTTP/1.1\r\n$H\r\nAuthorization: ctk_junk\r\n$AUTH\r\n\r\n" > "$T/req"
raw; refused Authorization "two Authorization headers, the good one last"
printf "GET $C HTTP/1.1\r\n$H\r\nauthorization: Bearer $TOKEN\r\nAUTHORIZATION: $TOKEN\r\n\r\n" > "$T/req"
raw; refused Authorization "two Authorization headers, in other cases"
printf "GET $C HTTP/1.1\r\n$H\r\n$AUTH\r\n\r\n" > "$T/req"
raw; [ "$STATUS" = 200 ] && ok "one Authorization header is fine" ||
    not_ok "one Authorization header: $STATUS"

# --- NUL bytes in the head ------------------------------------------------------------
printf "GET $C HTTP/1.1\r\n$H\r\n$AUTH\000junk\r\n\r\n" > "$T/req"
raw; refused headers "a NUL after the token in Authorization"
printf "GET $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\nX-Note: a\000b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" > "$T/req"
raw; refused headers "a NUL in another header; the request behind it is not read"
printf "GET $C HTTP/1.1\r\n$H\r\n$AUTH\r\nX\000: 1\r\n\r\n" > "$T/req"
raw; refused headers "a NUL in a header name"

# --- folded lines, white space before a colon --------------------------------------
printf "GET $C HTTP/1.1\r\n$H\r\nAuthorization: ctk_junk\r\n $TOKEN\r\n\r\n" > "$T/req"
raw; refused headers "a folded Authorization"
printf "POST $C HTTP/1.1\r\n$H\r\n$AUTH\r\nContent-Length : 2\r\n\r\n{}" > "$T/req"
raw; refused headers "white space before the colon of Content-Length"

# --- Transfer-Encoding and Content-Length: nothing smuggled --------------------------
printf "POST $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" > "$T/req"
raw; refused Transfer-Encoding "Transfer-Encoding other than chunked, a request behind"
printf "POST $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" > "$T/req"
raw; refused Transfer-Encoding "Content-Length with Transfer-Encoding: chunked"
printf "POST $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" > "$T/req"
raw; refused Transfer-Encoding "Transfer-Encoding twice"

# --- malformed chunked bodies ----------------------------------------------------------
body "$T/c1" alias=web certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=server
LEN=$(wc -c < "$T/c1")
# chunked_post BEFORE AFTER: a chunked POST of $T/c1 in one chunk, with
# BEFORE in front of the size line and AFTER in place of the CRLF and the
# last chunk that end it.
chunked_post() {
	{ printf "POST $C HTTP/1.1\r\n$H\r\n$AUTH\r\nTransfer-Encoding: chunked\r\n\r\n"
	  printf "$1%x\r\n" "$LEN"; cat "$T/c1"; printf "$2"; } > "$T/req"
}
chunked_post "" "\r\n0\r\n\r\n"
cp "$T/req" "$T/good-chunked"
chunked_post "zz" "\r\n0\r\n\r\n"
cp "$T/req" "$T/bad-chunked"
raw; refused body "a chunk size that is not hex"
{ printf "POST $C HTTP/1.1\r\n$H\r\n$AUTH\r\nTransfer-Encoding: chunked\r\n\r\n"
  printf "%x;ext=1\r\n" "$LEN"; cat "$T/c1"; printf "\r\n0\r\n\r\n"; } > "$T/req"
raw; refused body "a chunk extension"
chunked_post "" "XY\r\n0\r\n\r\n"
raw; refused body "a chunk longer than its size"
chunked_post "" "\r\n0\r\nX-Trailer: 1\r\n\r\n"
raw; refused body "a trailer field"
chunked_post "" "\r\n00000000000000001\r\na\r\n0\r\n\r\n"
raw; refused body "a chunk size of 17 hex digits"
req GET "$C"
expect_json total 0 "no refused body was stored"

# --- well-formed chunked bodies still work -------------------------------------------
cp "$T/good-chunked" "$T/req"
raw; [ "$STATUS" = 200 ] && [ "$(jget alias)" = web ] &&
    ok "a well-formed chunked POST creates" || not_ok "chunked POST: $STATUS $(head -c 300 "$T/out")"
# in 100-byte chunks with LF line ends, then the next request, pipelined
{ printf "PUT $C/1 HTTP/1.1\nHost: x\n$AUTH\nTransfer-Encoding: chunked\n\n"
  body "$T/u" certificate_type=edge
  split -b 100 "$T/u" "$T/part."
  for p in "$T"/part.*; do printf '%x\n' "$(wc -c < "$p")"; cat "$p"; printf '\n'; done
  printf '0\n\n'
  printf "GET $C/1 HTTP/1.1\r\n$H\r\n$AUTH\r\n\r\n"; } > "$T/req"
raw; [ "$NRESP" = 2 ] && [ "$STATUS" = 200 ] && [ "$(jget certificate_type)" = edge ] &&
    [ "$(grep -ao 'HTTP/1\.1 200 ' "$T/resp" | wc -l)" = 2 ] &&
    ok "small chunks, LF line ends, then a second request" ||
    not_ok "small chunks: $NRESP answers, $STATUS $(head -c 300 "$T/out")"
body "$T/u" certificate_type=client
code=$(curl -s -o "$T/out" -w '%{http_code}' -H "$AUTH" -H 'Transfer-Encoding: chunked' \
    -X PUT --data-binary @"$T/u" "$BASE$C/1")
[ "$code" = 200 ] && [ "$(jget certificate_type)" = client ] &&
    ok "curl's own chunked PUT" || not_ok "curl chunked: $code $(head -c 300 "$T/out")"

# --- pipelining ---------------------------------------------------------------------------
printf "GET $C/1 HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\nGET $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\nGET /healthz HTTP/1.1\r\n$H\r\n\r\n" > "$T/req"
raw; [ "$NRESP" = 3 ] && [ "$(grep -ao 'HTTP/1\.1 200 ' "$T/resp" | wc -l)" = 3 ] &&
    ok "three pipelined requests, three answers" ||
    not_ok "pipelined: $(grep -ao 'HTTP/1\.1 [0-9]* ' "$T/resp" | tr '\n' ' ')"
printf "GET $C/1 HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\nGET $C HTTP/1.1\r\nHost: x\r\n$AUTH\r\nX: \000\r\n\r\nGET /healthz HTTP/1.1\r\n$H\r\n\r\n" > "$T/req"
raw; [ "$NRESP" = 2 ] && [ "$STATUS" = 200 ] &&
    grep -aq 'HTTP/1\.1 400 ' "$T/resp" &&
    ok "pipelined: the good request answered, the bad one 400, the rest unread" ||
    not_ok "pipelined with a bad one: $(grep -ao 'HTTP/1\.1 [0-9]* ' "$T/resp" | tr '\n' ' ')"
# one request, answered, then a bad one on the same connection
printf "GET $C/1 HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\n" > "$T/req1"
printf "GET $C HTTP/1.1\r\nHost: x\r\n$AUTH\000\r\n\r\nGET /healthz HTTP/1.1\r\n$H\r\n\r\n" > "$T/req2"
raw "$T/req1" "$T/req2"
[ "$NRESP" = 2 ] && [ "$STATUS" = 200 ] &&
    grep -aq 'HTTP/1\.1 400 ' "$T/resp" && grep -q '"field":"headers"' "$T/resp" &&
    ok "keep-alive: the second request's NUL gets the 400" ||
    not_ok "keep-alive then a bad one: $(grep -ao 'HTTP/1\.1 [0-9]* ' "$T/resp" | tr '\n' ' ')"

check_alive
req GET /healthz; expect 200 "healthz after all that"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"

# --- the same over TLS -------------------------------------------------------------------
if command -v gnutls-cli > /dev/null; then
	D2="$T/tls"; mkdir -p -m 700 "$D2"; cp "$D/tokens" "$D2/tokens"
	SCHEME=https CURL_TLS="--cacert $PKI/ca.pem"
	start_certd "$D2" --socket "$T/tls.sock" \
	    --tls-cert "$PKI/leaf-rsa.chain.pem" --tls-key "$PKI/leaf-rsa.key"
	TLS_PORT=$PORT
	cp "$T/bad-chunked" "$T/req"
	raw; refused body "TLS: a chunk size that is not hex"
	printf "GET $C HTTP/1.1\r\n$H\r\n$AUTH\000junk\r\n\r\n" > "$T/req"
	raw; refused headers "TLS: a NUL after the token"
	cp "$T/good-chunked" "$T/req"
	raw; [ "$STATUS" = 200 ] && ok "TLS: a well-formed chunked POST creates" ||
	    not_ok "TLS chunked POST: $STATUS $(head -c 300 "$T/resp")"
	stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
else
	ok "TLS # SKIP no gnutls-cli"
fi
finish
