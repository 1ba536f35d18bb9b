#!/bin/sh
# SPDX-License-Identifier: MIT
#
# gen-pki.sh OUTDIR: generate the test PKI with certtool (gnutls-bin).
#
# Test certificates are made here at test time, never checked in.  The run
# is idempotent (OUTDIR/.done marks a complete set; concurrent runs for the
# same OUTDIR serialise on OUTDIR/.lock), silent on success, and on failure
# prints the failing certtool output and exits non-zero.  Validity windows
# are "yesterday + 1 year" except expired.pem and notyet.pem, which use
# fixed dates.  Files (NAME.pem certificate, NAME.key private key):
#
#   ca.pem ca.key           root CA, RSA 2048, CN=certd Test Root
#   int.pem int.key         intermediate CA signed by ca,
#                           CN=certd Test Intermediate
#   leaf-rsa.pem/.key       RSA 2048 (PKCS#1 key), signed by int,
#                           CN=www.example.test, SANs DNS www.example.test,
#                           DNS example.test, IP 127.0.0.1, IP 10.0.0.1
#   leaf-rsa.chain.pem      leaf-rsa + int
#   leaf-rsa.full.pem       leaf-rsa + int + ca
#   leaf-rsa-pkcs8.key      leaf-rsa.key as unencrypted PKCS#8
#   leaf-rsa2.pem/.key      RSA leaf, CN=api.example.test
#   leaf-ec.pem/.key        ECDSA P-256, SEC1 key, CN=ec.example.test
#   leaf-ec384.pem/.key     ECDSA P-384, PKCS#8 key, CN=ec384.example.test
#   leaf-ec521.pem/.key     ECDSA P-521, PKCS#8 key, CN=ec521.example.test
#   leaf-ed25519.pem/.key   Ed25519, PKCS#8 key, CN=ed25519.example.test
#   leaf-ed448.pem/.key     Ed448, PKCS#8 key, CN=ed448.example.test
#   leaf-nocn.pem/.key      subject O=certd only, SAN DNS nocn.example.test
#   leaf-longsan.pem/.key   ECDSA P-256, SANs DNS longsan.example.test,
#                           DNS alt.longsan.example.test, a 600+ byte URI,
#                           IP ::1 (certtool's order)
#   expired.pem/.key        2020-01-01 00:00:00 to 2021-01-01 00:00:00 UTC
#   notyet.pem/.key         2099-01-01 00:00:00 to 2100-01-01 00:00:00 UTC
#   encrypted.key           leaf-rsa.key as PKCS#8 encrypted with "secret"
#   encrypted-empty.key     leaf-rsa.key as PKCS#8 encrypted with ""
#   other.key               an unrelated RSA key
#   other-ca.pem/.key       a second root CA, CN=certd Other Root
#   forged-int.pem/.key     int's subject DN, another key, signed by other-ca
#   chain-reversed.pem      int + leaf-rsa
#   chain-wrong-issuer.pem  leaf-rsa + other-ca
#   chain-bad-sig.pem       leaf-rsa + forged-int
#   self.pem self.key       self-signed leaf, CN=self.example.test
#   garbage.pem             leaf-rsa.pem and int.pem without its BEGIN line
#   mixed.pem               leaf-rsa.pem followed by leaf-rsa.key

set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
mkdir -p "$out"
[ -e "$out/.done" ] && exit 0

command -v certtool >/dev/null 2>&1 || {
	echo "$0: certtool not found (install gnutls-bin)" >&2
	exit 1
}

if command -v flock >/dev/null 2>&1; then
	exec 9>"$out/.lock"
	flock 9
	[ -e "$out/.done" ] && exit 0
fi

# certtool reads template dates in the local time zone.
TZ=UTC
export TZ

tmp=$(mktemp -d "${TMPDIR:-/tmp}/certd-pki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log

# run CMD...: run quietly, show the output only when it fails.
run() {
	if ! "$@" >"$log" 2>&1 </dev/null; then
		echo "$0: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

# genkey NAME TYPE [CURVE]
genkey() {
	case $2 in
	rsa)	run certtool --generate-privkey --no-text --key-type rsa \
		    --bits 2048 --outfile "$tmp/$1.key" ;;
	ecdsa)	run certtool --generate-privkey --no-text \
		    --key-type ecdsa --curve "$3" --outfile "$tmp/$1.key" ;;
	*)	run certtool --generate-privkey --no-text --key-type "$2" \
		    --outfile "$tmp/$1.key" ;;
	esac
}

# tmpl NAME LINE...: write the template for NAME.
tmpl() {
	t=$tmp/$1.tmpl
	shift
	: >"$t"
	for l in "$@"; do
		printf '%s\n' "$l" >>"$t"
	done
}

# selfsign NAME: self-signed certificate from NAME.key and NAME.tmpl.
selfsign() {
	run certtool --generate-self-signed --no-text \
	    --load-privkey "$tmp/$1.key" --template "$tmp/$1.tmpl" \
	    --outfile "$tmp/$1.pem"
}

# sign NAME ISSUER: certificate for NAME.key signed by ISSUER.
sign() {
	run certtool --generate-certificate --no-text \
	    --load-privkey "$tmp/$1.key" --template "$tmp/$1.tmpl" \
	    --load-ca-certificate "$tmp/$2.pem" \
	    --load-ca-privkey "$tmp/$2.key" \
	    --outfile "$tmp/$1.pem"
}

from=$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S UTC')
until=$(date -u -d '+364 days' '+%Y-%m-%d %H:%M:%S UTC')
ca_until=$(date -u -d '+3650 days' '+%Y-%m-%d %H:%M:%S UTC')
leaf_validity="activation_date = \"$from\""
leaf_expiry="expiration_date = \"$until\""
ca_validity="activation_date = \"$from\""
ca_expiry="expiration_date = \"$ca_until\""
leaf_usage="signing_key
encryption_key
tls_www_server"

# Roots and intermediates.
genkey ca rsa
tmpl ca 'cn = "certd Test Root"' 'organization = "certd"' \
    "$ca_validity" "$ca_expiry" ca cert_signing_key crl_signing_key
selfsign ca

genkey int rsa
tmpl int 'cn = "certd Test Intermediate"' 'organization = "certd"' \
    "$ca_validity" "$ca_expiry" ca cert_signing_key crl_signing_key
sign int ca

genkey other-ca rsa
tmpl other-ca 'cn = "certd Other Root"' 'organization = "certd"' \
    "$ca_validity" "$ca_expiry" ca cert_signing_key crl_signing_key
selfsign other-ca

# Same subject DN as int, different key and issuer.  certtool derives the
# subject key id from the key, so the leaf's authority key id no longer
# matches either; the unit test also tampers with a leaf signature to reach
# the pure signature failure.
genkey forged-int rsa
cp "$tmp/int.tmpl" "$tmp/forged-int.tmpl"
sign forged-int other-ca

# Leaves.
genkey leaf-rsa rsa
tmpl leaf-rsa 'cn = "www.example.test"' \
    'dns_name = "www.example.test"' 'dns_name = "example.test"' \
    'ip_address = "127.0.0.1"' 'ip_address = "10.0.0.1"' \
    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
sign leaf-rsa int

genkey leaf-rsa2 rsa
tmpl leaf-rsa2 'cn = "api.example.test"' 'dns_name = "api.example.test"' \
    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
sign leaf-rsa2 int

# leaf NAME TYPE [CURVE]: leaf signed by int, CN and DNS SAN NAME.example.test.
leaf() {
	genkey "leaf-$1" "$2" "${3:-}"
	tmpl "leaf-$1" "cn = \"$1.example.test\"" \
	    "dns_name = \"$1.example.test\"" \
	    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
	sign "leaf-$1" int
}
leaf ec ecdsa secp256r1
leaf ec384 ecdsa secp384r1
leaf ec521 ecdsa secp521r1
leaf ed25519 ed25519
leaf ed448 ed448

# certtool writes SEC1 for ECDSA; the spec wants PKCS#8 for P-384/P-521.
for n in leaf-ec384 leaf-ec521; do
	run certtool --to-p8 --no-text --password= \
	    --load-privkey "$tmp/$n.key" --outfile "$tmp/$n.p8"
	mv "$tmp/$n.p8" "$tmp/$n.key"
done

genkey leaf-nocn rsa
tmpl leaf-nocn 'organization = "certd"' 'dns_name = "nocn.example.test"' \
    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
sign leaf-nocn int

# A URI SAN longer than cert.c's first SAN buffer, and an IPv6 address.
long=$(printf '%0600d' 0)
genkey leaf-longsan ecdsa secp256r1
tmpl leaf-longsan 'cn = "longsan.example.test"' \
    'dns_name = "longsan.example.test"' \
    "uri = \"https://longsan.example.test/$long\"" \
    'dns_name = "alt.longsan.example.test"' 'ip_address = "::1"' \
    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
sign leaf-longsan int

genkey expired rsa
tmpl expired 'cn = "expired.example.test"' 'dns_name = "expired.example.test"' \
    'activation_date = "2020-01-01 00:00:00 UTC"' \
    'expiration_date = "2021-01-01 00:00:00 UTC"' "$leaf_usage"
sign expired int

genkey notyet rsa
tmpl notyet 'cn = "notyet.example.test"' 'dns_name = "notyet.example.test"' \
    'activation_date = "2099-01-01 00:00:00 UTC"' \
    'expiration_date = "2100-01-01 00:00:00 UTC"' "$leaf_usage"
sign notyet int

genkey self rsa
tmpl self 'cn = "self.example.test"' 'dns_name = "self.example.test"' \
    "$leaf_validity" "$leaf_expiry" "$leaf_usage"
selfsign self

genkey other rsa

# Key encodings of leaf-rsa.key.
run certtool --to-p8 --no-text --password= \
    --load-privkey "$tmp/leaf-rsa.key" --outfile "$tmp/leaf-rsa-pkcs8.key"
run certtool --to-p8 --no-text --password=secret \
    --load-privkey "$tmp/leaf-rsa.key" --outfile "$tmp/encrypted.key"
run certtool --to-p8 --no-text --empty-password \
    --load-privkey "$tmp/leaf-rsa.key" --outfile "$tmp/encrypted-empty.key"

# Bundles.
cat "$tmp/leaf-rsa.pem" "$tmp/int.pem" >"$tmp/leaf-rsa.chain.pem"
cat "$tmp/leaf-rsa.pem" "$tmp/int.pem" "$tmp/ca.pem" >"$tmp/leaf-rsa.full.pem"
cat "$tmp/int.pem" "$tmp/leaf-rsa.pem" >"$tmp/chain-reversed.pem"
cat "$tmp/leaf-rsa.pem" "$tmp/other-ca.pem" >"$tmp/chain-wrong-issuer.pem"
cat "$tmp/leaf-rsa.pem" "$tmp/forged-int.pem" >"$tmp/chain-bad-sig.pem"
# A damaged block: int.pem without its BEGIN line.  (Text alone around the
# blocks is explanatory text, RFC 7468 section 2, and accepted.)
{ cat "$tmp/leaf-rsa.pem"; sed 1d "$tmp/int.pem"; } >"$tmp/garbage.pem"
cat "$tmp/leaf-rsa.pem" "$tmp/leaf-rsa.key" >"$tmp/mixed.pem"

rm -f "$tmp"/*.tmpl "$log"
for f in "$tmp"/*; do
	mv -f "$f" "$out/"
done
chmod 600 "$out"/*.key
: >"$out/.done"
