#!/bin/sh
# SPDX-License-Identifier: MIT
# Durability across restarts: records, ids, aliases and revisions survive a
# restart in the middle of a session, and ids are never reused.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/acme/certificates

body "$T/a" alias=one certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/a"; expect 200 "create one"
body "$T/b" alias=two certificate=@"$PKI/leaf-ed25519.pem" \
    private_key=@"$PKI/leaf-ed25519.key" certificate_type=server
req POST "$C" "$T/b"; expect 200 "create two"
body "$T/c" alias=three certificate=@"$PKI/leaf-ec384.pem" \
    private_key=@"$PKI/leaf-ec384.key" certificate_type=server
req POST "$C" "$T/c"; expect 200 "create three"
req DELETE "$C/3"; expect 204 "delete three"
req GET "$C/1"; cp "$T/out" "$T/one.before"

stop_certd TERM && ok "stop" || not_ok "stop"
start_certd "$D"

req GET "$C/1"
expect 200 "record survives the restart"
cmp -s "$T/out" "$T/one.before" && ok "record identical after restart" ||
    not_ok "record changed across restart: $(head -c 200 "$T/out")"
req GET "$C/2"
expect_json alias two "second record survives"
expect_json revision 2 "revision survives"
req GET "$C/3"
expect_error 404 "certificate not found" "deleted record stays deleted"
req GET "$C"
expect_json total 2 "list after restart"
req POST "$C" "$T/a"
expect_error 412 "certificate name already exists" "alias index survives"
req POST "$C" "$T/c"
expect 200 "deleted alias is free"
expect_json id 4 "ids are not reused after restart"
expect_json revision 5 "revisions continue after restart"

# A SIGKILL right after acknowledged writes loses none of them.
body "$T/d" alias=four certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=server
req POST "$C" "$T/d"; expect 200 "create four"
kill -KILL "$CERTD_PID"; wait "$CERTD_PID" 2>/dev/null || true; CERTD_PID=
start_certd "$D"
req GET "$C/5"
expect_json alias four "acknowledged write survives SIGKILL"
stop_certd TERM && ok "stop" || not_ok "stop"
finish
