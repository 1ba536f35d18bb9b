#!/bin/sh
# SPDX-License-Identifier: MIT
# History and rollback against the real daemon: the last 10 versions
# newest first, rollback as a new revision pushed to socket watchers, the
# refusals (a version that expired since, one trimmed or never made, an
# alias taken meanwhile, a read token, malformed bodies), the socket ops,
# and the history surviving a restart.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
RO=$(new_token reader '*' read "$D/tokens")
cat > "$T/certd.conf" <<CONF
[certd]
socket_group = nogroup
[acl]
user nobody = teams=acme perms=read
CONF
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/acme/certificates

# expect_line FILE PATTERN DESCRIPTION: a line of FILE matches PATTERN.
expect_line() {
	if grep -q -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no line matching $2 in: $(head -c 600 "$1")"
	fi
}

# --- 12 updates: the 10 newest versions, newest first ------------------------
body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=t0
req POST "$C" "$T/c1"; expect 200 "create"
ID=$(jget id)
i=1
while [ $i -le 12 ]; do
	body "$T/u" certificate_type="t$i"
	req PUT "$C/$ID" "$T/u"
	[ "$STATUS" = 200 ] || not_ok "update $i: $STATUS"
	i=$((i + 1))
done
req GET "$C/$ID/history"; expect 200 "GET history"
expect_json list.0.revision 13 "newest first: the current revision"
expect_json list.0.certificate_type t12 "newest version's content"
expect_json list.9.revision 4 "the tenth is revision 4"
expect_json list.9.certificate_type t3 "the tenth version's content"
expect_json list.10 '<absent>' "nothing older than the tenth"
expect_json list.0.alias web "items carry the alias"
fp=$(certtool --fingerprint --hash sha256 --infile "$PKI/leaf-rsa.pem" 2>/dev/null |
    tr -d ':' | tr 'A-F' 'a-f')
expect_json list.3.fingerprint_sha256 "$fp" "items carry the fingerprint"
end=$(certtool -i --infile "$PKI/leaf-rsa.pem" 2>/dev/null | sed -n 's/.*Not After: //p')
expect_json list.0.not_after "$(date -u -d "$end" +%Y-%m-%dT%H:%M:%SZ)" \
    "not_after in UTC with Z"
jget list.0.updated_at | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' &&
    ok "updated_at in UTC with Z" || not_ok "updated_at: $(jget list.0.updated_at)"
grep -q -e 'PRIVATE' -e 'BEGIN CERT' -e '"private_key"' -e '"certificate"' "$T/out" &&
    not_ok "history carries key or PEM" || ok "history carries no key or PEM"
hlen=$(curl -s -I -H "Authorization: $TOKEN" "$BASE$C/$ID/history" |
    tr -d '\r' | sed -n 's/^Content-Length: //Ip')
[ "$hlen" = "$(wc -c < "$T/out")" ] && ok "HEAD history announces the GET length" ||
    not_ok "HEAD history Content-Length '$hlen'"

# --- rollback ----------------------------------------------------------------
body "$T/u" alias=web2 certificate=@"$PKI/leaf-rsa2.pem" \
    private_key=@"$PKI/leaf-rsa2.key"
req PUT "$C/$ID" "$T/u"; expect 200 "update to another certificate (rev 14)"
"$PEER" -n 2 -t 10000 "$S" '{"id":1,"op":"watch","team":"acme"}' > "$T/w1" &
W1=$!
sleep 0.3
body "$T/rb" revision:=5
req POST "$C/$ID/rollback" "$T/rb"; expect 200 "rollback to revision 5"
expect_json revision 15 "rollback makes a new revision"
expect_json alias web "rollback restores the alias"
expect_json certificate_type t4 "rollback restores the type"
[ "$(jget certificate)" = "$(cat "$PKI/leaf-rsa.chain.pem")" ] &&
    ok "rollback restores the certificate" || not_ok "rollback restores the certificate"
[ "$(jget private_key)" = "$(cat "$PKI/leaf-rsa.key")" ] &&
    ok "rollback restores the key" || not_ok "rollback restores the key"
expect_json fingerprint_sha256 "$fp" "metadata follows the restored certificate"
req GET "$C/$ID"
expect_json revision 15 "GET sees the rollback"
expect_json certificate_type t4 "GET sees the restored content"
wait $W1 || true
expect_line "$T/w1" '"certificate_type":"t4".*"event":"put","revision":15' \
    "a socket watcher receives the rollback as a put"
req GET "$C/$ID/history"
expect_json list.0.revision 15 "the rollback heads the history"
expect_json list.1.revision 14 "the version it replaced follows"
expect_json list.9.revision 6 "still 10 versions"

body "$T/rb" revision:=15
req POST "$C/$ID/rollback" "$T/rb"; expect 200 "rollback to the current content"
expect_json revision 15 "an unchanged rollback writes nothing"

# --- refusals ----------------------------------------------------------------
body "$T/rb" revision:=2
req POST "$C/$ID/rollback" "$T/rb"
expect_error 404 "revision not found" "a trimmed revision"
expect_json data.bean.field revision "the envelope names revision"
body "$T/rb" revision:=999
req POST "$C/$ID/rollback" "$T/rb"
expect_error 404 "revision not found" "a revision never made"
req POST "$C/999/rollback" "$T/rb"
expect_error 404 "certificate not found" "rollback of an unknown certificate"
req POST "/openapi/v1/teams/other/certificates/$ID/rollback" "$T/rb"
expect_error 404 "certificate not found" "rollback under another team"
req GET "$C/999/history"
expect_error 404 "certificate not found" "history of an unknown certificate"
req GET "/openapi/v1/teams/other/certificates/$ID/history"
expect_error 404 "certificate not found" "history under another team"

body "$T/rb" revision:=14
req POST "$C/$ID/rollback" "$T/rb" "$RO"
expect_error 403 "permission denied" "a read token may not roll back"
req GET "$C/$ID/history" "" "$RO"
expect 200 "a read token may read the history"

body "$T/c2" alias=web2 certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=server
req POST "$C" "$T/c2"; expect 200 "another certificate takes alias web2"
OTHER=$(jget id)
req POST "$C/$ID/rollback" "$T/rb"
expect_error 412 "certificate name already exists" \
    "rollback to an alias taken meanwhile"
req GET "$C/$ID"
expect_json revision 15 "a refused rollback writes nothing"

for b in '{}' '{"revision":"5"}' '{"revision":-1}' '{"revision":5.0}' \
    '{"revision":null}' '{"revision":[5]}'; do
	printf '%s' "$b" > "$T/rb"
	req POST "$C/$ID/rollback" "$T/rb"
	if [ "$STATUS" = 400 ] && [ "$(jget data.bean.field)" = revision ]; then
		ok "body $b: 400 naming revision"
	else
		not_ok "body $b: $STATUS $(head -c 200 "$T/out")"
	fi
done
: > "$T/rb"
req POST "$C/$ID/rollback" "$T/rb"
expect_json data.bean.field body "an empty body is refused"
printf '[5]' > "$T/rb"
req POST "$C/$ID/rollback" "$T/rb"
expect_json data.bean.field body "a body that is no object"
req GET "$C/$ID/rollback"
expect_error 405 "method not allowed" "GET on rollback"
req PUT "$C/$ID/history"
expect_error 405 "method not allowed" "PUT on history"

# --- a version that expired since it was stored -------------------------------
# A certificate that expires seconds from now: valid when stored, expired
# by the time it is rolled back to.
certtool --generate-privkey --key-type ecdsa --curve secp256r1 \
    --no-text --outfile "$T/short.key" > /dev/null 2>&1
cat > "$T/short.tmpl" <<TMPL
cn = "short.example.test"
dns_name = "short.example.test"
activation_date = "$(date -u -d '-1 min' '+%Y-%m-%d %H:%M:%S') UTC"
expiration_date = "$(date -u -d '+3 sec' '+%Y-%m-%d %H:%M:%S') UTC"
signing_key
tls_www_server
TMPL
certtool --generate-self-signed --load-privkey "$T/short.key" \
    --template "$T/short.tmpl" --outfile "$T/short.pem" > "$T/certtool.out" 2>&1 ||
    { cat "$T/certtool.out" >&2; exit 99; }
SHORT_UNTIL=$(($(date +%s) + 3))
body "$T/c3" alias=short certificate=@"$T/short.pem" \
    private_key=@"$T/short.key" certificate_type=server
req POST "$C" "$T/c3"; expect 200 "store a certificate valid for seconds"
SID=$(jget id); SREV=$(jget revision)
body "$T/u" certificate=@"$PKI/leaf-ed25519.pem" \
    private_key=@"$PKI/leaf-ed25519.key"
req PUT "$C/$SID" "$T/u"; expect 200 "replace it by a lasting one"
while [ "$(date +%s)" -le "$SHORT_UNTIL" ]; do sleep 0.5; done
body "$T/rb" revision:="$SREV"
req POST "$C/$SID/rollback" "$T/rb"
expect_error 400 "the certificate has been expired" \
    "rollback to a version expired since is refused"

# --- the socket ops ---------------------------------------------------------------
"$PEER" "$S" "{\"id\":1,\"op\":\"history\",\"team\":\"acme\",\"cert_id\":$ID}" \
    "{\"id\":2,\"op\":\"rollback\",\"team\":\"acme\",\"cert_id\":$ID,\"revision\":13}" \
    "{\"id\":3,\"op\":\"rollback\",\"team\":\"acme\",\"cert_id\":$ID,\"revision\":1}" \
    "{\"id\":4,\"op\":\"rollback\",\"team\":\"acme\",\"cert_id\":$ID}" \
    "{\"id\":5,\"op\":\"history\",\"team\":\"acme\",\"cert_id\":999}" \
    "{\"id\":6,\"op\":\"history\",\"team\":\"acme\"}" > "$T/o"
expect_line "$T/o" '"id":1,"ok":true,"result":{"list":\[{"alias":"web","certificate_type":"t4","fingerprint_sha256":"'"$fp"'","not_after":[0-9]*,"revision":15,"updated_at":[0-9]*},{"alias":"web2"' \
    "socket history: newest first, times as integers"
grep '^{"id":1,' "$T/o" | grep -q -e PRIVATE -e '"certificate"' &&
    not_ok "socket history carries PEM" || ok "socket history carries no PEM"
expect_line "$T/o" '"id":2,"ok":true,"result":{"alias":"web",.*"certificate_type":"t12".*"private_key":"-----BEGIN RSA PRIVATE KEY.*"revision":19}' \
    "socket rollback: the cert map with key for an admin"
expect_line "$T/o" '"code":404,"field":"revision","msg":"revision not found","reason":"[^"]*"},"id":3' \
    "socket rollback to a trimmed revision"
expect_line "$T/o" '"field":"revision","msg":"invalid request","reason":"is required"},"id":4' \
    "socket rollback without revision"
expect_line "$T/o" '"code":404,"msg":"certificate not found"},"id":5' \
    "socket history of an unknown certificate"
expect_line "$T/o" '"field":"cert_id".*"reason":"is required"},"id":6' \
    "socket history without cert_id"
req GET "$C/$ID"
expect_json revision 19 "REST sees the socket's rollback"
expect_json certificate_type t12 "with the restored content"

if nobody_ok; then
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$PEER" "$@"; }
	as_nobody "$S" "{\"id\":1,\"op\":\"history\",\"team\":\"acme\",\"cert_id\":$ID}" \
	    "{\"id\":2,\"op\":\"rollback\",\"team\":\"acme\",\"cert_id\":$ID,\"revision\":15}" > "$T/o"
	expect_line "$T/o" '"id":1,"ok":true' "read permission lists the history"
	expect_line "$T/o" '"code":403,"msg":"permission denied"},"id":2' \
	    "rollback needs write permission"
else
	ok "# SKIP not root: cannot run a peer as nobody"
fi

# --- the history survives a restart --------------------------------------------
req GET "$C/$ID/history"
cp "$T/out" "$T/history.mid"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
start_certd "$D" --socket "$S" --config "$T/certd.conf"
req GET "$C/$ID/history"; expect 200 "history after a restart"
cmp -s "$T/out" "$T/history.mid" && ok "history unchanged by the restart" ||
    not_ok "history changed: $(head -c 300 "$T/out")"
expect_json list.0.revision 19 "the newest version after the restart"
body "$T/rb" revision:=15
req POST "$C/$ID/rollback" "$T/rb"; expect 200 "rollback after a restart"
expect_json certificate_type t4 "restores the version kept across the restart"
expect_json revision 20 "as a new revision"
req DELETE "$C/$OTHER"; expect 204 "delete"
req GET "$C/$OTHER/history"
expect_error 404 "certificate not found" "no history after a delete"

# History pipelined behind a delete on one connection: while the delete is
# on disk but not yet applied, the certificate still shows, its versions
# are gone.  Each answer is the versions or 404, never an empty list.
body "$T/c" alias=doomed certificate=@"$PKI/leaf-rsa.pem" private_key=@"$PKI/leaf-rsa.key" \
    certificate_type=server
empty=0
for try in 1 2; do
	req POST "$C" "$T/c"; DOOMED=$(jget id)
	set -- "{\"id\":1,\"op\":\"delete\",\"team\":\"acme\",\"cert_id\":$DOOMED,\"force\":true}"
	i=2
	while [ $i -le 2000 ]; do
		set -- "$@" "{\"id\":$i,\"op\":\"history\",\"team\":\"acme\",\"cert_id\":$DOOMED}"
		i=$((i + 1))
	done
	"$PEER" -t 10000 "$S" "$@" > "$T/o"
	empty=$((empty + $(grep -c '"list":\[\]' "$T/o" || true)))
done
[ "$empty" = 0 ] &&
    ok "history behind a delete: the versions or 404, never an empty list" ||
    not_ok "history behind a delete answered $empty empty lists"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
