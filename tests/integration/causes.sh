#!/bin/sh
# SPDX-License-Identifier: MIT
# Errors that name the real cause (issue 16, point 6): a chain given leaf
# last or intermediate first is the chain error, not "key pair mismatch";
# every validation error's data.bean carries field and reason (which
# certificate of the chain, which check), over REST and the socket; a
# backup into a directory that already holds one is 412, not 503.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D" --socket "$S"
C=/openapi/v1/teams/acme/certificates

# post CERTFILES KEYFILE: POST the concatenated PKI files.
post() {
	: > "$T/c"
	for f in $1; do cat "$PKI/$f" >> "$T/c"; done
	body "$T/b" alias=x certificate=@"$T/c" private_key=@"$PKI/$2" \
	    certificate_type=server
	req POST "$C" "$T/b"
}

# cause STATUS MSG FIELD REASON-PART DESCRIPTION: the last reply, with a
# bean naming FIELD and a reason holding REASON-PART.
cause() {
	expect_error "$1" "$2" "$5"
	expect_json data.bean.field "$3" "$5: field $3"
	case $(jget data.bean.reason 2>/dev/null) in
	*"$4"*) ok "$5: the reason names it" ;;
	*) not_ok "$5: reason '$(jget data.bean.reason 2>/dev/null)' lacks '$4'" ;;
	esac
}

# --- a chain out of order: the chain error ------------------------------------
post "ca.pem int.pem leaf-rsa.pem" leaf-rsa.key
cause 400 "the certificate chain is invalid" certificate \
    "certificate 3 (CN=www.example.test) holds the private key's public key, so it is the leaf: the leaf must come first" \
    "leaf last"
post "int.pem leaf-rsa.pem" leaf-rsa.key
cause 400 "the certificate chain is invalid" certificate \
    "certificate 2 (CN=www.example.test) holds the private key" "intermediate first"
post "int.pem leaf-rsa.pem ca.pem" leaf-rsa.key
cause 400 "the certificate chain is invalid" certificate \
    "certificate 2 (CN=www.example.test)" "intermediate first, root last"

# --- every row of the error table names field and reason ---------------------
post "garbage.pem" leaf-rsa.key
cause 400 "the certificate is invalid" certificate "line 22: base64 outside" "damaged block"
post "mixed.pem" leaf-rsa.key
cause 400 "the certificate is invalid" certificate \
    "block 2 is RSA PRIVATE KEY, not CERTIFICATE" "a key in the certificate"
post "expired.pem" expired.key
cause 400 "the certificate has been expired" certificate \
    "certificate 1, the leaf (CN=expired.example.test), expired at 2021-01-01T00:00:00Z" "expired"
post "notyet.pem" notyet.key
cause 400 "the certificate is not yet valid" certificate \
    "is valid from 2099-01-01T00:00:00Z" "not yet valid"
post "leaf-rsa.pem" encrypted.key
cause 400 "the private key is invalid" private_key "is encrypted" "encrypted key"
body "$T/b" alias=y certificate=@"$PKI/leaf-rsa.pem" private_key="nope" certificate_type=s
req POST "$C" "$T/b"
cause 400 "the private key is invalid" private_key "holds no PEM block" "not a key"
post "leaf-rsa.chain.pem" int.key
cause 400 "the certificate key pair mismatch" private_key \
    "is the key of certificate 2 (CN=certd Test Intermediate), not of the leaf, certificate 1 (CN=www.example.test)" \
    "the intermediate's key"
post "leaf-rsa.pem" other.key
cause 400 "the certificate key pair mismatch" private_key \
    "is not the key of the leaf, certificate 1 (CN=www.example.test)" "a stranger's key"
post "chain-wrong-issuer.pem" leaf-rsa.key
cause 400 "the certificate chain is invalid" certificate \
    "certificate 1 (CN=www.example.test) is not issued by the next one, certificate 2 (CN=certd Other Root)" \
    "wrong issuer"
post "leaf-rsa.pem leaf-rsa2.pem" leaf-rsa.key
cause 400 "the certificate chain is invalid" certificate \
    "is not issued by the next one, certificate 2 (CN=api.example.test)" "a leaf as issuer"
post "leaf-ec.pem" leaf-ec.key
expect 200 "a first certificate"
body "$T/b" alias=x certificate=@"$PKI/leaf-ec384.pem" \
    private_key=@"$PKI/leaf-ec384.key" certificate_type=server
req POST "$C" "$T/b"
cause 412 "certificate name already exists" alias "is taken by certificate" "alias taken"

# The socket carries the same field and reason.
"$CERTD_BUILDDIR/tests/integration/sockpeer" "$S" "$("$JTOOL" make id:=1 op=put \
    team=acme alias=z certificate=@"$PKI/chain-reversed.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server)" > "$T/o"
grep -q '"field":"certificate","msg":"the certificate chain is invalid","reason":"certificate 2 (CN=www.example.test) holds' "$T/o" &&
    ok "socket put: the chain error, with field and reason" || not_ok "socket put: $(cat "$T/o")"
"$CERTCTL" -s "$S" put acme --alias z --type server --cert "$PKI/chain-reversed.pem" \
    --key "$PKI/leaf-rsa.key" > "$T/o" 2>&1 && not_ok "certctl put of a reversed chain" ||
    { grep -q "the certificate chain is invalid (certificate: certificate 2 (CN=www.example.test) holds" "$T/o" &&
    ok "certctl put says which certificate" || not_ok "certctl put: $(cat "$T/o")"; }

# --- backup into a directory that holds one: 412 -------------------------------
"$CERTCTL" -s "$S" backup "$T/bk" > "$T/o" 2>&1 && ok "a backup" || not_ok "backup: $(cat "$T/o")"
"$CERTD_BUILDDIR/tests/integration/sockpeer" "$S" \
    "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/bk\"}" > "$T/o"
grep -q '"code":412,"field":"dir","msg":"backup already exists","reason":"backup directory .* already holds a backup (db)"' "$T/o" &&
    ok "a second backup into it: 412 naming dir and why" || not_ok "second backup: $(cat "$T/o")"
status=0
"$CERTCTL" -s "$S" backup "$T/bk" > "$T/o" 2>&1 || status=$?
[ "$status" != 0 ] && grep -q "backup already exists (dir: backup directory $T/bk already holds a backup (db))" "$T/o" &&
    ok "certctl backup into it: refused, saying so (exit $status)" ||
    not_ok "certctl backup into a used dir: exit $status: $(cat "$T/o")"
grep -q "storage unavailable" "$T/o" && not_ok "not a storage failure" || ok "not a storage failure"
rm -rf "$T/bk/db"
"$CERTD_BUILDDIR/tests/integration/sockpeer" "$S" \
    "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/bk\"}" > "$T/o"
grep -q '"code":412.*already holds a backup (master.key)' "$T/o" &&
    ok "a key file alone is a backup too" || not_ok "key file only: $(cat "$T/o")"

check_alive
stop_certd && ok "certd exits 0 on SIGTERM" || not_ok "certd exit status"
finish
