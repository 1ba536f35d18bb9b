#!/bin/sh
# SPDX-License-Identifier: MIT
# Keys at rest: no private key, in any form, in any file of the data
# directory (RocksDB WAL, SST, MANIFEST, OPTIONS and LOG files included)
# after creates, updates, deletes and restarts: neither the PEM header, nor
# a base64 line of any key used, nor the key's DER bytes.  The scan is first
# run on a control directory that does hold keys, to prove it can fail.
# Then the master key file (mode 0600, 32 bytes) and the start-up refusals
# around it: too open, missing, wrong size, not the store's key.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
C=/openapi/v1/teams/acme/certificates
KEYS="leaf-rsa.key leaf-ec.key leaf-ed25519.key leaf-rsa2.key leaf-ec384.key"

# hexof FILE: the bytes as " xx xx ...", one line, so that a match of
# another byte string written the same way is always byte-aligned.
hexof() { od -An -v -tx1 "$1" | tr -d '\n'; }

# Patterns, one per line: every base64 line of every key's PEM body (long
# enough not to turn up by chance), the hex of every key's DER, and the hex
# of a 32-byte slice from its middle (bytes 16..47, in case only part of it
# were written).
P="$T/patterns"; mkdir "$P"
: > "$P/b64"; : > "$P/der"
for k in $KEYS; do
	grep -v -e '-----' "$PKI/$k" > "$P/$k.b64"
	base64 -d < "$P/$k.b64" > "$P/$k.der"
	awk 'length($0) >= 16' "$P/$k.b64" >> "$P/b64"
	hex=$(hexof "$P/$k.der")
	printf '%s\n' "$hex" >> "$P/der"
	printf '%s\n' "$hex" | cut -c49-144 >> "$P/der"
done
[ "$(wc -l < "$P/b64")" -gt 40 ] && [ "$(wc -l < "$P/der")" -eq 10 ] ||
    { echo "patterns not built" >&2; exit 99; }

# scan FILE...: count the files that hold a PEM header, a base64 line, DER
# bytes, into PEM_HITS, B64_HITS, DER_HITS; name each hit.
scan() {
	PEM_HITS=0 B64_HITS=0 DER_HITS=0
	for f in "$@"; do
		[ -f "$f" ] || continue
		if [ "$(grep -a -c -F -e 'PRIVATE KEY' "$f")" -gt 0 ]; then
			PEM_HITS=$((PEM_HITS + 1)); echo "# PEM header in $f"
		fi
		if [ "$(grep -a -c -F -f "$P/b64" "$f")" -gt 0 ]; then
			B64_HITS=$((B64_HITS + 1)); echo "# base64 of a key in $f"
		fi
		if [ "$(hexof "$f" | grep -c -F -f "$P/der")" -gt 0 ]; then
			DER_HITS=$((DER_HITS + 1)); echo "# DER of a key in $f"
		fi
	done
}

# scan_dir DIR WHEN: every file under DIR is clean.
scan_dir() {
	find "$1" -type f > "$T/files"
	n=$(wc -l < "$T/files")
	# shellcheck disable=SC2046 # the data dir has no blanks in names
	scan $(cat "$T/files")
	if [ "$PEM_HITS$B64_HITS$DER_HITS" = 000 ] && [ "$n" -gt 5 ]; then
		ok "no private key in any of the $n files of the data dir $2"
	else
		not_ok "private key material in the data dir $2 (files: $n)"
	fi
}

# The control: a PEM key, and a DER key alone, must be found.
mkdir "$T/control"
cp "$PKI/leaf-ec.key" "$T/control/pem"
cp "$P/leaf-rsa.key.der" "$T/control/der"
{ head -c 100 /dev/urandom; cat "$P/leaf-ed25519.key.der"; } \
    > "$T/control/der-inside"
scan "$T/control/pem"
[ "$PEM_HITS" = 1 ] && [ "$B64_HITS" = 1 ] && [ "$DER_HITS" = 0 ] &&
    ok "control: the scan finds a PEM key" ||
    not_ok "control: PEM key not found ($PEM_HITS $B64_HITS $DER_HITS)"
scan "$T/control/der" "$T/control/der-inside"
[ "$PEM_HITS" = 0 ] && [ "$DER_HITS" = 2 ] &&
    ok "control: the scan finds DER keys, also inside other bytes" ||
    not_ok "control: DER key not found ($PEM_HITS $B64_HITS $DER_HITS)"

# key_is ID KEYFILE: the record serves this key.
key_is() {
	req GET "$C/$1"
	if [ "$STATUS" = 200 ] && [ "$(jget private_key)" = "$(cat "$PKI/$2")" ]
	then ok "record $1 serves its key $3"; else
		not_ok "record $1 key $3: $STATUS"
	fi
}

start_certd "$D"
K="$D/master.key"
if [ -f "$K" ] && [ "$(stat -c %a "$K")" = 600 ] &&
    [ "$(stat -c %s "$K")" = 32 ]; then
	ok "master key created, mode 0600, 32 bytes"
else
	not_ok "master key: $(ls -l "$K" 2>&1)"
fi

body "$T/a" alias=one certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/a"; expect 200 "create one (RSA)"
body "$T/b" alias=two certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=server
req POST "$C" "$T/b"; expect 200 "create two (EC)"
body "$T/c" alias=three certificate=@"$PKI/leaf-ed25519.pem" \
    private_key=@"$PKI/leaf-ed25519.key" certificate_type=server
req POST "$C" "$T/c"; expect 200 "create three (Ed25519)"
body "$T/u" certificate=@"$PKI/leaf-rsa2.pem" private_key=@"$PKI/leaf-rsa2.key"
req PUT "$C/1" "$T/u"; expect 200 "update one to another key"
req DELETE "$C/2"; expect 204 "delete two"
key_is 1 leaf-rsa2.key "after the update"
scan_dir "$D" "while running"

stop_certd TERM && ok "stop" || not_ok "stop"
scan_dir "$D" "after a clean stop"

start_certd "$D"
key_is 1 leaf-rsa2.key "after a restart"
key_is 3 leaf-ed25519.key "after a restart"
body "$T/d" alias=four certificate=@"$PKI/leaf-ec384.pem" \
    private_key=@"$PKI/leaf-ec384.key" certificate_type=server
req POST "$C" "$T/d"; expect 200 "create four (EC P-384) after the restart"
body "$T/u3" certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key"
req PUT "$C/3" "$T/u3"; expect 200 "update three to the RSA key"
scan_dir "$D" "after writes following a restart"
kill -KILL "$CERTD_PID"; wait "$CERTD_PID" 2>/dev/null || true; CERTD_PID=
scan_dir "$D" "after SIGKILL (WAL only)"
start_certd "$D"
key_is 3 leaf-rsa.key "after SIGKILL"
key_is 4 leaf-ec384.key "after SIGKILL"
stop_certd TERM && ok "stop" || not_ok "stop"
scan_dir "$D" "after the last restart"
scan "$LOG"
[ "$PEM_HITS$B64_HITS$DER_HITS" = 000 ] &&
    ok "the certd log holds no key material" ||
    not_ok "the certd log holds key material"

# start_fails WANT DESCRIPTION: start-up ends non-zero with one line
# naming the cause.
start_fails() {
	status=0
	timeout 20 "$CERTD" --data-dir "$D" --listen 127.0.0.1:0 \
	    2> "$T/err" > /dev/null || status=$?
	if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] &&
	    [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q -F -e "$1" "$T/err"
	then ok "$2: $(cat "$T/err")"; else
		not_ok "$2: exit $status: $(head -c 300 "$T/err")"
	fi
}

cp "$K" "$T/key.saved"
chmod 640 "$K"
start_fails "master key $K must not be readable by group or others (mode 0640)" \
    "a group-readable key is refused"
chmod 600 "$K"
mv "$K" "$T/key.moved"
start_fails "master key $K is missing" "a missing key is refused"
[ -e "$K" ] && not_ok "a new key was made over the records" ||
    ok "no new key is made while records are sealed"
head -c 32 /dev/urandom > "$K"; chmod 600 "$K"
start_fails "master key $K does not decrypt record" "a wrong key is refused"
head -c 31 "$T/key.saved" > "$K"
start_fails "master key $K must be 32 bytes" "a short key is refused"
cp "$T/key.saved" "$K"; chmod 600 "$K"
cmp -s "$K" "$T/key.saved" && ok "refusals left the key alone" ||
    not_ok "key changed"

start_certd "$D"
key_is 4 leaf-ec384.key "with the key restored"
stop_certd TERM && ok "stop" || not_ok "stop"
scan_dir "$D" "at the end"
finish
