#!/bin/sh
# SPDX-License-Identifier: MIT
# Every row of the API's error table, field errors, and malformed input a
# new user would try: each gets the right status and the envelope, none a
# 5xx, and the daemon keeps serving.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/acme/certificates

# post ALIAS CERT KEY: POST a certificate built from PKI files.
post() {
	body "$T/b" alias="$1" certificate=@"$PKI/$2" private_key=@"$PKI/$3" \
	    certificate_type=server
	req POST "$C" "$T/b"
}

# --- the error table, in its order ------------------------------------------
post bad garbage.pem leaf-rsa.key
expect_error 400 "the certificate is invalid" "a damaged block after the first"
post bad mixed.pem leaf-rsa.key
expect_error 400 "the certificate is invalid" "a key block inside the certificate"
body "$T/b" alias=x certificate="hello" private_key=@"$PKI/leaf-rsa.key" certificate_type=s
req POST "$C" "$T/b"
expect_error 400 "the certificate is invalid" "not PEM at all"
post bad expired.pem expired.key
expect_error 400 "the certificate has been expired" "expired leaf"
post bad notyet.pem notyet.key
expect_error 400 "the certificate is not yet valid" "not-yet-valid leaf"
post bad expired.pem other.key
expect_error 400 "the certificate has been expired" "expiry is checked before the key"
body "$T/b" alias=x certificate=@"$PKI/leaf-rsa.pem" private_key="nope" certificate_type=s
req POST "$C" "$T/b"
expect_error 400 "the private key is invalid" "key does not parse"
post bad leaf-rsa.pem encrypted.key
expect_error 400 "the private key is invalid" "encrypted key refused"
post bad leaf-rsa.pem other.key
expect_error 400 "the certificate key pair mismatch" "key of another certificate"
post bad chain-reversed.pem int.key
expect_error 400 "the certificate chain is invalid" "chain out of order"
post bad chain-wrong-issuer.pem leaf-rsa.key
expect_error 400 "the certificate chain is invalid" "link not issued by the next"
post bad chain-bad-sig.pem leaf-rsa.key
expect_error 400 "the certificate chain is invalid" "link not signed by the next"
post web leaf-rsa.full.pem leaf-rsa.key
expect 200 "a full chain up to the root is accepted"
post web leaf-ec.pem leaf-ec.key
expect_error 412 "certificate name already exists" "alias taken"
req GET "$C/99"
expect_error 404 "certificate not found" "unknown id"
req PUT "$C/99" "$T/b"
expect_error 404 "certificate not found" "PUT of an unknown id"
req DELETE "$C/99"
expect_error 404 "certificate not found" "DELETE of an unknown id"
req GET "/openapi/v1/teams/a%20b/certificates"
expect_error 404 "no found team" "team id with a space"
req GET "/openapi/v1/teams/$(printf 'a%.0s' $(seq 65))/certificates"
expect_error 404 "no found team" "team id over 64 characters"
# "still in use" needs a subscriber binding the certificate: see the
# socket tests.

# --- nothing stored was touched -------------------------------------------------
req GET "$C"
expect_json total 1 "failed requests stored nothing"

# --- field errors ---------------------------------------------------------------
field() {	# STATUS FIELD DESCRIPTION
	if [ "$STATUS" = "$1" ] && [ "$(jget data.bean.field 2>/dev/null)" = "$2" ] &&
	    [ "$(jget code)" = "$1" ]; then
		ok "$3"
	else
		not_ok "$3: expected $1 naming $2, got $STATUS $(head -c 300 "$T/out")"
	fi
}
good="certificate=@$PKI/leaf-ec.pem private_key=@$PKI/leaf-ec.key"
body "$T/b" $good certificate_type=s
req POST "$C" "$T/b"; field 400 alias "POST without alias"
body "$T/b" alias=a certificate=@"$PKI/leaf-ec.pem" certificate_type=s
req POST "$C" "$T/b"; field 400 private_key "POST without private_key"
body "$T/b" alias=a private_key=@"$PKI/leaf-ec.key" certificate_type=s
req POST "$C" "$T/b"; field 400 certificate "POST without certificate"
body "$T/b" alias=a $good
req POST "$C" "$T/b"; field 400 certificate_type "POST without certificate_type"
body "$T/b" alias:=5 $good certificate_type=s
req POST "$C" "$T/b"; field 400 alias "alias of the wrong type"
body "$T/b" alias=a certificate:='["x"]' private_key=@"$PKI/leaf-ec.key" certificate_type=s
req POST "$C" "$T/b"; field 400 certificate "certificate of the wrong type"
body "$T/b" alias=a certificate=@"$PKI/leaf-ec.pem" private_key:=true certificate_type=s
req POST "$C" "$T/b"; field 400 private_key "private_key of the wrong type"
body "$T/b" alias=a $good certificate_type:='{}'
req POST "$C" "$T/b"; field 400 certificate_type "certificate_type of the wrong type"
body "$T/b" alias="   " $good certificate_type=s
req POST "$C" "$T/b"; field 400 alias "blank alias"
body "$T/b" alias=a $good certificate_type=""
req POST "$C" "$T/b"; field 400 certificate_type "empty certificate_type"
body "$T/b" alias="$(printf 'x%.0s' $(seq 65))" $good certificate_type=s
req POST "$C" "$T/b"; field 400 alias "alias of 65 characters"
body "$T/b" alias="$(printf '证%.0s' $(seq 64))" $good certificate_type=s
req POST "$C" "$T/b"
expect 200 "alias of 64 Chinese characters (more than 64 bytes) is accepted"
body "$T/b" alias=t $good certificate_type="$(printf 'y%.0s' $(seq 33))"
req POST "$C" "$T/b"; field 400 certificate_type "certificate_type of 33 characters"
head -c 70000 /dev/zero | tr '\0' 'A' > "$T/big"
body "$T/b" alias=a certificate=@"$T/big" private_key=@"$PKI/leaf-ec.key" certificate_type=s
req POST "$C" "$T/b"; field 400 certificate "certificate over 64 KiB"
body "$T/b" alias=a certificate=@"$PKI/leaf-ec.pem" private_key=@"$T/big" certificate_type=s
req POST "$C" "$T/b"; field 400 private_key "private key over 16 KiB"
body "$T/b" alias="a$(printf '\001')b" $good certificate_type=s
req POST "$C" "$T/b"; field 400 alias "control character in alias"
body "$T/b" alias=ok2 $good certificate_type=s unknown=1 other:='[1,2]'
req POST "$C" "$T/b"
expect 200 "unknown fields are ignored"

# --- malformed bodies -------------------------------------------------------------
printf '{"alias":' > "$T/b"
req POST "$C" "$T/b"; field 400 body "truncated JSON"
printf '[1,2,3]' > "$T/b"
req POST "$C" "$T/b"; field 400 body "JSON array body"
printf '"str"' > "$T/b"
req POST "$C" "$T/b"; field 400 body "JSON string body"
printf '{"alias":"a","alias":"b"}' > "$T/b"
req POST "$C" "$T/b"; field 400 body "duplicate keys"
printf '{"alias":"a\\u0000b"}' > "$T/b"
req POST "$C" "$T/b"; field 400 body "NUL escape in a string"
printf '\377\376{}' > "$T/b"
req POST "$C" "$T/b"; field 400 body "invalid UTF-8"
req POST "$C" ""
field 400 body "POST without a body"
: > "$T/empty"
req PUT "$C/1" "$T/empty"
expect 200 "PUT with an empty body changes nothing"
head -c 140000 /dev/zero | tr '\0' ' ' > "$T/huge"
req POST "$C" "$T/huge"
expect_error 413 "request body too large" "body over 128 KiB"
head -c 2000000 /dev/zero | tr '\0' ' ' > "$T/huger"
req POST "$C" "$T/huger"
[ "$STATUS" = 413 ] && ok "body of 2 MB refused with 413" ||
    not_ok "body of 2 MB: got $STATUS"

# --- odd paths, methods, paging -------------------------------------------------
for p in / /openapi /openapi/v1/teams /openapi/v1/teams/acme \
    /openapi/v1/teams/acme/certificate "$C/1/x" "$C//" "/openapi/v1/teams//certificates" \
    "/openapi/v1/teams/acme/certificates/1/../2" "/healthz/x"; do
	req GET "$p"
	case $STATUS in 404|400) ok "GET $p is $STATUS";;
	*) not_ok "GET $p: got $STATUS";; esac
done
for id in abc -1 0 1.5 01 99999999999999999999999 " 1" "1%00"; do
	req GET "$C/$(printf '%s' "$id" | sed 's/ /%20/g')"
	expect_error 404 "certificate not found" "certificate_id '$id'"
done
req PATCH "$C/1"
expect_error 405 "method not allowed" "PATCH"
req POST "$C/1" "$T/b"
expect_error 405 "method not allowed" "POST to a certificate"
req DELETE "$C"
expect_error 405 "method not allowed" "DELETE of the collection"
for q in page=0 page=-1 page=x page=1.5 "page=" page_size=0 page_size=501 \
    page_size=abc "page_size=1e3" "page=99999999999999999999999" \
    page=9223372036854775808 page=18446744073709551615; do
	req GET "$C?$q"
	expect 400 "paging $q"
	expect_json data.bean.field "${q%%=*}" "paging $q names the parameter"
done
req GET "$C?page_size=10%00"
expect 400 "an encoded NUL in the query"
expect_json data.bean.field query "an encoded NUL names the query"
req GET "$C?page=9223372036854775807&page_size=500"
expect 200 "the largest page number"
expect_json list '[]' "the largest page is empty"
expect_json page 9223372036854775807 "the largest page is echoed as it was asked"
req GET "$C?page_size=500"
expect 200 "page_size 500"
req DELETE "$C/1?force=maybe"
expect 400 "force must be a boolean"

# --- raw junk on the socket ------------------------------------------------------
printf 'GARBAGE\r\n\r\n' | curl -s -m 2 "telnet://127.0.0.1:$PORT" > /dev/null 2>&1 || true
printf 'GET / HTTP/1.1\r\nHost: x\r\nX: %s\r\n\r\n' "$(head -c 40000 /dev/zero | tr '\0' a)" |
    curl -s -m 2 "telnet://127.0.0.1:$PORT" > /dev/null 2>&1 || true
check_alive
req GET "$C"
expect 200 "still serving after junk"

# Two Content-Length headers: a request smuggled behind the body one of them
# frames is never read; one answer, 400, and the connection closes.
printf 'POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' \
    "$C" "$TOKEN" | curl -s -m 5 "telnet://127.0.0.1:$PORT" > "$T/smuggle" 2>&1 || true
if [ "$(grep -c '^HTTP/1.1 ' "$T/smuggle")" = 1 ] &&
    grep -q '^HTTP/1.1 400 ' "$T/smuggle" && grep -q '"field":"Content-Length"' "$T/smuggle"; then
	ok "two Content-Length headers: one 400, the request behind them unread"
else
	not_ok "two Content-Length headers: $(tr '\r\n' '  ' < "$T/smuggle" | head -c 600)"
fi

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
