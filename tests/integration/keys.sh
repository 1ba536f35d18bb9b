#!/bin/sh
# SPDX-License-Identifier: MIT
# Least privilege for private keys over REST (token keys=yes|no): a read
# token without keys= gets every field of a certificate but the key (an
# empty private_key); keys=yes gives it the key; a write token with
# keys=no gets no key back on GET, nor on the replies to its own POST, PUT
# and rollback; list and history never carry keys; bad keys= values stop
# start-up with the line number.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
C=/openapi/v1/teams/acme/certificates

# token NAME TEAMS ROLE KEYS FILE: a token line (without keys= when KEYS is
# "-", as lines were written before keys= existed) into FILE; the token.
token() {
	out=$("$CERTCTL" token new --name "$1" --teams "$2" --role "$3" \
	    $([ "$4" = - ] || echo "--keys $4"))
	if [ "$4" = - ]; then
		printf '%s\n' "$out" | sed -n '2{s/ keys=[a-z]*$//;p;}' >> "$5"
	else
		printf '%s\n' "$out" | sed -n 2p >> "$5"
	fi
	printf '%s\n' "$out" | sed -n 1p
}

# key_is WANT DESCRIPTION: private_key of the last reply is WANT ("" or a
# file's PEM), and the certificate is there either way.
key_is() {
	got=$(jget private_key 2>/dev/null || echo '<absent>')
	if [ "$got" = "$1" ] && [ -n "$(jget certificate)" ] &&
	    [ -n "$(jget fingerprint_sha256)" ]; then
		ok "$2"
	else
		not_ok "$2: private_key '$(printf '%s' "$got" | head -c 40)'"
	fi
}

no_key_member() {
	if grep -q -e PRIVATE -e '"private_key"' "$T/out"; then
		not_ok "$1: $(head -c 300 "$T/out")"
	else
		ok "$1"
	fi
}

# --- tokens as they were written before keys= ------------------------------------
TOKEN=$(token admin '*' write - "$D/tokens")
RO=$(token reader '*' read - "$D/tokens")
grep -q keys= "$D/tokens" && not_ok "old-style lines" || ok "old-style lines"
start_certd "$D"

body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c1"; expect 200 "write token creates"
key_is "$(cat "$PKI/leaf-rsa.key")" "a write token without keys= gets the key back"
ID=$(jget id || echo 1)

req GET "$C/$ID" "" "$RO"; expect 200 "read token GET"
key_is "" "a read token without keys= gets an empty private_key"
[ "$(jget certificate)" = "$(cat "$PKI/leaf-rsa.chain.pem")" ] &&
    ok "the read token still gets the certificate" ||
    not_ok "certificate for the read token"
grep -q PRIVATE "$T/out" && not_ok "key text in the read token's reply" ||
    ok "no key text anywhere in the read token's reply"
hlen=$(curl -s -I -H "Authorization: $RO" "$BASE$C/$ID" |
    tr -d '\r' | sed -n 's/^Content-Length: //Ip')
[ "$hlen" = "$(wc -c < "$T/out")" ] && ok "HEAD announces the keyless length" ||
    not_ok "HEAD Content-Length '$hlen', GET $(wc -c < "$T/out")"
req GET "$C/$ID" "" "$TOKEN"
key_is "$(cat "$PKI/leaf-rsa.key")" "a write token without keys= GETs the key"

# list and history: no key member for anyone
for t in "$TOKEN" "$RO"; do
	req GET "$C" "" "$t"; expect 200 "list"
	no_key_member "list carries no key"
	req GET "$C/$ID/history" "" "$t"; expect 200 "history"
	no_key_member "history carries no key"
done

# --- keys=yes and keys=no -------------------------------------------------------------
RK=$(token reader-keys '*' read yes "$D/tokens")
WN=$(token deployer '*' write no "$D/tokens")
grep -q '^reader-keys .* role=read keys=yes$' "$D/tokens" &&
    grep -q '^deployer .* role=write keys=no$' "$D/tokens" &&
    ok "certctl token new --keys writes keys=" ||
    not_ok "token lines: $(cut -c1-12,80- "$D/tokens")"
hup_wait
grep -q 'reloaded configuration tokens=4' "$LOG" && ok "SIGHUP takes keys= lines" ||
    not_ok "reload: $(grep reload "$LOG" | tail -n 1)"

req GET "$C/$ID" "" "$RK"; expect 200 "keys=yes read token GET"
key_is "$(cat "$PKI/leaf-rsa.key")" "a read token with keys=yes gets the key"

req GET "$C/$ID" "" "$WN"; expect 200 "keys=no write token GET"
key_is "" "a write token with keys=no gets an empty private_key"

body "$T/u" certificate_type=edge
req PUT "$C/$ID" "$T/u" "$WN"; expect 200 "keys=no write token PUT without a key"
key_is "" "its PUT reply does not show the stored key"
body "$T/u" certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key"
req PUT "$C/$ID" "$T/u" "$WN"; expect 200 "keys=no write token PUT with a key"
key_is "" "its PUT reply does not echo the key it sent"
body "$T/c2" alias=api certificate=@"$PKI/leaf-rsa2.pem" \
    private_key=@"$PKI/leaf-rsa2.key" certificate_type=server
req POST "$C" "$T/c2" "$WN"; expect 200 "keys=no write token POST"
key_is "" "its POST reply does not echo the key"
body "$T/rb" revision:=1
req POST "$C/$ID/rollback" "$T/rb" "$WN"; expect 200 "keys=no write token rollback"
key_is "" "its rollback reply does not show the restored key"
req GET "$C/$ID" "" "$TOKEN"
key_is "$(cat "$PKI/leaf-rsa.key")" "the rollback restored the key (keys=yes sees it)"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"

# --- bad keys= lines ---------------------------------------------------------------
# refuse DESCRIPTION PATTERN LINE: certd will not start on a token file
# holding LINE as its second line, and says PATTERN.
refuse() {
	printf '# t\n%s\n' "$3" > "$T/bad"; chmod 600 "$T/bad"
	status=0
	timeout 20 "$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --token-file "$T/bad" \
	    > /dev/null 2> "$T/err" & pid=$!
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ] && grep -q -- "$2" "$T/err"; then ok "$1"; else
		not_ok "$1: exit $status, $(cat "$T/err")"
	fi
}
H=$(printf '%064d' 0)
refuse "keys=maybe is refused with the line" "bad:2: keys must be yes or no" \
    "x sha256:$H teams=* role=read keys=maybe"
refuse "keys= given twice is refused with the line" "bad:2: expected" \
    "x sha256:$H teams=* keys=no role=read keys=no"
refuse "keys= without role= is refused" "bad:2: expected teams" \
    "x sha256:$H teams=* keys=yes"

status=0
"$CERTCTL" token new --name x --teams '*' --role read --keys maybe > "$T/o" 2>&1 ||
    status=$?
[ "$status" = 2 ] && grep -q "keys must be yes or no" "$T/o" &&
    ok "certctl token new --keys maybe fails" || not_ok "--keys maybe: $status $(cat "$T/o")"
finish
