#!/bin/sh
# SPDX-License-Identifier: MIT
# The audit log: one structured line per mutation (create, update, delete,
# rollback, rekey) and per refused token, naming who, what and how it
# ended, and never any key material.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token deploy '*' write "$D/tokens")
start_certd "$D"
S="$D/certd.sock"
C=/openapi/v1/teams/aud/certificates

audit() {	# PATTERN DESCRIPTION
	if grep ' audit ' "$LOG" | grep -q -- "$1"; then ok "$2"; else
		not_ok "$2: no audit line matching $1 in: $(grep ' audit ' "$LOG" | tail -n 3)"
	fi
}

body "$T/c" alias="my web" certificate=@"$PKI/leaf-rsa.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c"; expect 200 "create"
fp1=$(jget fingerprint_sha256)
audit "op=create who=token:deploy team=aud id=1 alias=\"my web\" old_fp=- new_fp=$fp1 outcome=ok error=-" \
    "create: who, team, id, quoted alias, fingerprints, outcome"
body "$T/u" certificate=@"$PKI/leaf-rsa2.pem" private_key=@"$PKI/leaf-rsa2.key"
req PUT "$C/1" "$T/u"; expect 200 "update"
fp2=$(jget fingerprint_sha256)
audit "op=update who=token:deploy team=aud id=1 .* old_fp=$fp1 new_fp=$fp2 outcome=ok" \
    "update: old and new fingerprints"
body "$T/x" certificate=@"$PKI/expired.pem" private_key=@"$PKI/expired.key"
req PUT "$C/1" "$T/x"; expect 400 "expired update"
audit "op=update .* outcome=refused error=\"the certificate has been expired\"" \
    "a refused update is audited with the reason"
body "$T/r" revision:=1
req POST "$C/1/rollback" "$T/r"; expect 200 "rollback"
audit "op=rollback who=token:deploy team=aud id=1 .* old_fp=$fp2 new_fp=$fp1 outcome=ok" \
    "rollback"
"$PEER" "$S" '{"id":1,"op":"delete","team":"aud","cert_id":1}' > /dev/null
audit "op=delete who=uid:$(id -u),pid:[0-9]* team=aud id=1 .* old_fp=$fp1 new_fp=- outcome=ok" \
    "a delete over the socket names the peer"
"$PEER" "$S" '{"id":1,"op":"rekey"}' > /dev/null
audit "op=rekey who=uid:$(id -u),pid:[0-9]* team=- .* outcome=ok" "rekey"
req GET "$C" "" "ctk_bogus"; expect 401 "unknown token"
audit "op=auth who=http:127.0.0.1:[0-9]* path=$C outcome=denied error=unknown-token" \
    "a refused token is audited"
req GET "$C" "" ""
audit "op=auth .* error=no-token" "a missing token is audited"

# No key material anywhere in the log.
leaked=0
for k in leaf-rsa.key leaf-rsa2.key; do
	grep -v -- '-----' "$PKI/$k" | while read -r line; do
		grep -qF -- "$line" "$LOG" && echo leak
	done | grep -q leak && leaked=1
done
grep -q "PRIVATE KEY" "$LOG" && leaked=1
[ $leaked -eq 0 ] && ok "no key material in the log" || not_ok "key material in the log"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
