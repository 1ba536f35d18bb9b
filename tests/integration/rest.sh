#!/bin/sh
# SPDX-License-Identifier: MIT
# The REST API end to end: every route, merge semantics, paging, team
# scoping, roles and tokens, against the real daemon.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
RO=$(new_token reader '*' read "$D/tokens")
TEAMB=$(new_token teamb 'b-team,other' write "$D/tokens")
start_certd "$D"

C=/openapi/v1/teams/acme/certificates

# --- create -----------------------------------------------------------------
body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c1"
expect 200 "POST creates"
expect_json id 1 "first id is 1"
expect_json alias web "alias echoed"
expect_json certificate_type server "type echoed"
[ "$(jget certificate)" = "$(cat "$PKI/leaf-rsa.chain.pem")" ] &&
    ok "certificate returned as PEM" || not_ok "certificate returned as PEM"
[ "$(jget private_key)" = "$(cat "$PKI/leaf-rsa.key")" ] &&
    ok "private key returned as PEM" || not_ok "private key returned as PEM"
expect_json revision 1 "revision 1"
expect_json has_expired false "has_expired false"
expect_json issued_to '["www.example.test","example.test","10.0.0.1"]' \
    "issued_to: SANs without 127.0.0.1, CN already there"
fp=$(certtool --fingerprint --hash sha256 --infile "$PKI/leaf-rsa.pem" 2>/dev/null |
    tr -d ':' | tr 'A-F' 'a-f')
expect_json fingerprint_sha256 "$fp" "fingerprint is SHA-256 of the leaf"

body "$T/c2" alias=" api " certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=" server "
req POST "$C" "$T/c2"
expect 200 "POST EC certificate"
expect_json id 2 "second id is 2"
expect_json alias api "alias trimmed"
expect_json certificate_type server "type trimmed"

body "$T/c3" alias=nocn certificate=@"$PKI/leaf-nocn.pem" \
    private_key=@"$PKI/leaf-nocn.key" certificate_type=server
req POST "$C" "$T/c3"
expect 200 "POST certificate without CN"

# --- get ----------------------------------------------------------------------
req GET "$C/1"
expect 200 "GET by id"
expect_json alias web "GET returns the record"
req GET "$C/2" "" "Bearer $TOKEN"
expect 200 "Bearer token accepted"
req GET "$C/2" "" "$RO"
expect 200 "read token may GET"

# --- list ---------------------------------------------------------------------
req GET "$C"
expect 200 "list"
expect_json total 3 "list total"
expect_json page 1 "default page"
expect_json page_size 10 "default page_size"
expect_json list.0.id 1 "ordered by id"
expect_json list.1.id 2 "ordered by id (2)"
expect_json list.0.issued_by "certd Test Intermediate" "issued_by is the issuer CN"
expect_json list.1.issued_to '["ec.example.test"]' "issued_to adds nothing when CN is a SAN"
expect_json list.2.issued_to '["nocn.example.test"]' "issued_to without CN"
end=$(certtool -i --infile "$PKI/leaf-rsa.pem" 2>/dev/null | sed -n 's/.*Not After: //p')
want=$(date -u -d "$end" +%Y-%m-%dT%H:%M:%S)
expect_json list.0.end_data "$want" "end_data is notAfter in UTC"
expect_json list.0.has_expired false "list has_expired"
jget list.0.private_key > /dev/null 2>&1 && not_ok "list leaks the key" ||
    ok "list items carry no key"
jget list.0.certificate > /dev/null 2>&1 && not_ok "list carries PEM" ||
    ok "list items carry no PEM"
req GET "$C?page=2&page_size=2"
expect 200 "second page"
expect_json list '[{"id":3,"alias":"nocn","certificate_type":"server","issued_to":["nocn.example.test"],"issued_by":"certd Test Intermediate","end_data":"'"$(jget list.0.end_data)"'","has_expired":false}]' \
    "page 2 of size 2 holds the third record"
expect_json total 3 "total on page 2"
req GET "$C?page=9&page_size=500"
expect 200 "page past the end"
expect_json list '[]' "page past the end is empty"
req GET "/openapi/v1/teams/empty/certificates"
expect_json total 0 "a team with nothing"

# --- update (merge) -----------------------------------------------------------
body "$T/u1" certificate_type=client
req PUT "$C/1" "$T/u1"
expect 200 "PUT with one field"
expect_json certificate_type client "PUT changes the field"
expect_json alias web "PUT keeps omitted alias"
[ "$(jget certificate)" = "$(cat "$PKI/leaf-rsa.chain.pem")" ] &&
    ok "PUT keeps omitted certificate" || not_ok "PUT keeps omitted certificate"
expect_json revision 4 "PUT makes a new revision"

body "$T/u2" alias=web2 certificate=@"$PKI/leaf-rsa2.pem" \
    private_key=@"$PKI/leaf-rsa2.key"
req PUT "$C/1" "$T/u2"
expect 200 "PUT replaces certificate and key"
expect_json issued_to '["api.example.test"]' "metadata follows the new certificate"
expect_json alias web2 "PUT renames"
rev=$(jget revision)
req PUT "$C/1" "$T/u2"
expect 200 "PUT with identical content"
expect_json revision "$rev" "identical PUT writes nothing"
body "$T/u3" certificate=@"$PKI/leaf-rsa.pem"
req PUT "$C/1" "$T/u3"
expect 400 "PUT of a certificate that does not match the kept key"
req GET "$C/1"
expect_json alias web2 "failed PUT left the record alone"

body "$T/web" alias=web certificate=@"$PKI/leaf-rsa.pem" \
    private_key=@"$PKI/leaf-rsa-pkcs8.key" certificate_type=server
req POST "$C" "$T/web"
expect 200 "old alias is free again after rename"
expect_json id 4 "ids keep counting"
req PUT "$C/4" "$T/c2"
expect_error 412 "certificate name already exists" "PUT to a taken alias"

# --- team scoping -------------------------------------------------------------
req GET "/openapi/v1/teams/b-team/certificates/1" "" "$TEAMB"
expect_error 404 "certificate not found" "id of team acme is 404 under team b-team"
req GET "$C/1" "" "$TEAMB"
expect_error 404 "no found team" "team outside the token"
req GET "$C" "" "$TEAMB"
expect_error 404 "no found team" "list of a team outside the token"
body "$T/b1" alias=web certificate=@"$PKI/leaf-rsa.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "/openapi/v1/teams/b-team/certificates" "$T/b1" "$TEAMB"
expect 200 "same alias in another team"
expect_json id 5 "ids are one daemon-wide sequence"
req GET "/openapi/v1/teams/b-team/certificates" "" "$TEAMB"
expect_json total 1 "teams see only their records"

# --- roles and tokens -----------------------------------------------------------
req POST "$C" "$T/c1" "$RO"
expect_error 403 "permission denied" "read token may not POST"
req PUT "$C/1" "$T/u1" "$RO"
expect_error 403 "permission denied" "read token may not PUT"
req DELETE "$C/1" "" "$RO"
expect_error 403 "permission denied" "read token may not DELETE"
req GET "$C/1" "" ""
expect_error 401 "unauthorized" "no token"
req GET "$C/1" "" "ctk_0000000000000000000000000000000000000000000000000000000000000000"
expect_error 401 "unauthorized" "unknown token"
req GET "$C/1" "" "Bearer ${TOKEN}x"
expect_error 401 "unauthorized" "token with a byte more"

# --- delete ---------------------------------------------------------------------
req DELETE "$C/2"
expect 204 "DELETE answers 204"
[ -s "$T/out" ] && not_ok "DELETE body is empty" || ok "DELETE body is empty"
req GET "$C/2"
expect_error 404 "certificate not found" "deleted record is gone"
req DELETE "$C/2"
expect_error 404 "certificate not found" "second DELETE"
req POST "$C" "$T/c2"
expect 200 "create after delete"
expect_json id 6 "ids are not reused"
req DELETE "$C/6?force=true"
expect 204 "DELETE with force=true"

req GET /healthz "" ""
expect 200 "healthz needs no token"

# HEAD: headers only, with the length of the GET body, and the connection
# stays usable (a body without a length would corrupt the next response).
len=$(curl -s -H "Authorization: $TOKEN" "$BASE$C/1" | wc -c)
hlen=$(curl -s -I -H "Authorization: $TOKEN" "$BASE$C/1" |
    tr -d '\r' | sed -n 's/^Content-Length: //Ip')
[ "$hlen" = "$len" ] && ok "HEAD announces the GET length" ||
    not_ok "HEAD Content-Length '$hlen', GET body $len"
curl -s -o /dev/null -I -H "Authorization: $TOKEN" "$BASE$C/1" \
    -o "$T/second" -w '%{http_code}\n' "$BASE/healthz" > "$T/codes2"
[ "$(tr -d '\n' < "$T/codes2")" = 200200 ] && ok "HEAD then GET on one connection" ||
    not_ok "HEAD then GET: $(cat "$T/codes2")"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
