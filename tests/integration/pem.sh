#!/bin/sh
# SPDX-License-Identifier: MIT
# The PEM users really have (issue 16, point 5): what `openssl pkcs12 -in
# x.pfx -nodes` writes (Bag Attributes, subject= and issuer= lines before
# each block), CRLF files, a chain that ends in its root, and the EC
# PARAMETERS block of `openssl ecparam -genkey` are accepted over REST and
# the Unix socket, and stored as the blocks alone, in normal form: what GET
# returns.  What is not a certificate is still refused, naming the line.
. "$(dirname "$0")/lib.sh"

if ! command -v openssl > /dev/null; then
	echo "ok - openssl output # SKIP openssl not installed (Debian: openssl)"
	exit 0
fi

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D" --socket "$S"
C=/openapi/v1/teams/acme/certificates

# The IIS / Windows store export: a pfx of leaf-rsa with its chain and
# root, read out by openssl as users paste it.
cat "$PKI/int.pem" "$PKI/ca.pem" > "$T/cas.pem"
openssl pkcs12 -export -in "$PKI/leaf-rsa.pem" -inkey "$PKI/leaf-rsa.key" \
    -certfile "$T/cas.pem" -name "www export" -passout pass:x -out "$T/x.pfx"
openssl pkcs12 -in "$T/x.pfx" -passin pass:x -nodes -nokeys > "$T/certs.txt"
openssl pkcs12 -in "$T/x.pfx" -passin pass:x -nodes -nocerts > "$T/key.txt"
openssl pkcs12 -in "$T/x.pfx" -passin pass:x -nodes > "$T/all.txt"
grep -q '^Bag Attributes' "$T/certs.txt" && grep -q '^subject=' "$T/certs.txt" &&
    grep -q '^Key Attributes' "$T/key.txt" &&
    ok "openssl pkcs12 -nodes writes text around the blocks" ||
    not_ok "openssl output: $(head -c 300 "$T/certs.txt")"

# post ALIAS CERTFILE KEYFILE: POST from files (any bytes, as JSON text).
post() {
	body "$T/b" alias="$1" certificate=@"$2" private_key=@"$3" \
	    certificate_type=server
	req POST "$C" "$T/b"
}

# --- the pfx export, as certificate and key ------------------------------------
post iis "$T/certs.txt" "$T/key.txt"
expect 200 "openssl pkcs12 output is accepted as certificate and key"
ID=$(jget id)
expect_json fingerprint_sha256 "$(openssl x509 -in "$PKI/leaf-rsa.pem" -outform DER |
    sha256sum | cut -d' ' -f1)" "the leaf is the first certificate"
req GET "$C/$ID"
# jget prints the string and a newline; the stored text ends in one.
jget certificate > "$T/got"
printf '\n' | cat "$PKI/leaf-rsa.full.pem" - > "$T/want"
cmp -s "$T/got" "$T/want" && ok "stored as the three blocks only, in normal form, root last" ||
    not_ok "stored certificate: $(diff "$T/got" "$T/want" | head -n 8)"
jget private_key > "$T/gotkey"
head -n 1 "$T/gotkey" | grep -qx -- '-----BEGIN PRIVATE KEY-----' &&
    ! grep -q Attributes "$T/gotkey" &&
    ok "the key stored as its block only" || not_ok "stored key: $(head -n 3 "$T/gotkey")"
sed '$d' "$T/gotkey" > "$T/k.pem"
openssl pkey -in "$PKI/leaf-rsa.key" -pubout > "$T/leafpub"
openssl pkey -in "$T/k.pem" -pubout | cmp -s - "$T/leafpub" &&
    ok "the stored key is the leaf's" || not_ok "stored key is another"
! grep -q "$(printf '\r')" "$T/got" && ok "no CR in what is stored" || not_ok "CR stored"

# The same certificate again, byte for byte as before: nothing changes.
REV=$(jget revision)
body "$T/b" certificate=@"$T/certs.txt" private_key=@"$T/key.txt"
req PUT "$C/$ID" "$T/b"
expect_json revision "$REV" "the same export again writes nothing (compared in normal form)"

# --- CRLF, as saved on Windows ------------------------------------------------------
sed 's/$/\r/' "$T/certs.txt" > "$T/certs-crlf.txt"
sed 's/$/\r/' "$PKI/leaf-ec.key" > "$T/ec-crlf.key"
sed 's/$/\r/' "$PKI/leaf-ec.pem" > "$T/ec-crlf.pem"
post crlf "$T/ec-crlf.pem" "$T/ec-crlf.key"
expect 200 "CRLF files are accepted"
jget certificate > "$T/got"
printf '\n' | cat "$PKI/leaf-ec.pem" - > "$T/want"
cmp -s "$T/got" "$T/want" && ok "CRLF stored as LF" || not_ok "CRLF stored: $(od -c "$T/got" | head -n 3)"
jget private_key > "$T/got"
printf '\n' | cat "$PKI/leaf-ec.key" - > "$T/want"
cmp -s "$T/got" "$T/want" && ok "a CRLF key stored as LF" || not_ok "CRLF key stored"
body "$T/b" certificate=@"$T/certs-crlf.txt"
req PUT "$C/$ID" "$T/b"
expect_json revision "$REV" "the pfx export with CRLF is the same certificate"

# --- openssl ecparam -genkey ----------------------------------------------------------
openssl ecparam -genkey -name prime256v1 -out "$T/ecp.key"
openssl req -new -x509 -key "$T/ecp.key" -subj /CN=ecparam.example.test \
    -days 2 -out "$T/ecp.pem"
head -n 1 "$T/ecp.key" | grep -q 'EC PARAMETERS' && ok "ecparam writes EC PARAMETERS first" ||
    not_ok "ecparam output: $(head -n 1 "$T/ecp.key")"
post ecparam "$T/ecp.pem" "$T/ecp.key"
expect 200 "an openssl ecparam -genkey key is accepted"
jget private_key > "$T/got"
head -n 1 "$T/got" | grep -qx -- '-----BEGIN EC PRIVATE KEY-----' &&
    ! grep -q PARAMETERS "$T/got" && ok "stored without its EC PARAMETERS block" ||
    not_ok "ecparam key stored: $(head -n 2 "$T/got")"

# --- over the Unix socket, the same ---------------------------------------------------
# A friendlyName of CJK characters: OpenSSL 3.0 prints it in bytes that are
# not UTF-8 (so no JSON client can send them); certctl sends the file as is.
openssl pkcs12 -export -in "$PKI/leaf-rsa.pem" -inkey "$PKI/leaf-rsa.key" \
    -certfile "$T/cas.pem" -name "证书" -passout pass:x -out "$T/y.pfx"
openssl pkcs12 -in "$T/y.pfx" -passin pass:x -nodes -nokeys |
    sed 's/$/\r/' > "$T/certs-cjk.txt"
openssl pkcs12 -in "$T/y.pfx" -passin pass:x -nodes -nocerts > "$T/key-cjk.txt"
grep -q friendlyName "$T/certs-cjk.txt" && ok "a friendlyName line in the export" ||
    not_ok "no friendlyName: $(head -n 3 "$T/certs-cjk.txt")"
"$CERTCTL" -s "$S" put acme --alias sock --type server --cert "$T/certs-cjk.txt" \
    --key "$T/key-cjk.txt" > "$T/o" 2>&1 && ok "certctl put of the pfx export (CRLF)" ||
    not_ok "certctl put: $(cat "$T/o")"
req GET "$C?alias=sock"
SOCK=$(jget list.0.id)
req GET "$C/$SOCK"
jget certificate > "$T/got"
printf '\n' | cat "$PKI/leaf-rsa.full.pem" - > "$T/want"
cmp -s "$T/got" "$T/want" && ok "socket put stores the normal form" ||
    not_ok "socket stored: $(diff "$T/got" "$T/want" | head -n 5)"

# --- still refused ---------------------------------------------------------------------
post whole "$T/all.txt" "$T/key.txt"
expect_error 400 "the certificate is invalid" "the whole export (key included) as certificate"
expect_json data.bean.field certificate "names the certificate"
case $(jget data.bean.reason) in
*"is PRIVATE KEY, not CERTIFICATE (a private key goes in private_key)"*)
	ok "the reason says a key is in the certificate" ;;
*) not_ok "reason: $(jget data.bean.reason)" ;;
esac
post whole2 "$T/certs.txt" "$T/all.txt"
expect_error 400 "the private key is invalid" "the whole export as key"
expect_json data.bean.field private_key "names the key"
printf 'Bag Attributes\nsubject=CN = www.example.test\n' > "$T/noblock"
post noblock "$T/noblock" "$T/key.txt"
expect_error 400 "the certificate is invalid" "text with no block"
post damaged "$PKI/garbage.pem" "$PKI/leaf-rsa.key"
expect_error 400 "the certificate is invalid" "a block that lost its BEGIN line"
case $(jget data.bean.reason) in
line\ 22:*) ok "the reason names the line" ;;
*) not_ok "reason: $(jget data.bean.reason)" ;;
esac
sed 's/CERTIFICATE-----/TRUSTED CERTIFICATE-----/' "$PKI/leaf-rsa.pem" > "$T/trusted"
post trusted "$T/trusted" "$PKI/leaf-rsa.key"
expect_error 400 "the certificate is invalid" "a TRUSTED CERTIFICATE block"

check_alive
stop_certd && ok "certd exits 0 on SIGTERM" || not_ok "certd exit status"
finish
