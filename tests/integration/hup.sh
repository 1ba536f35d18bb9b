#!/bin/sh
# SPDX-License-Identifier: MIT
# SIGHUP: the config and the token file are read again, checked whole and
# swapped in only when good; connections and watches survive it.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
S="$T/certd.sock"
printf '[certd]\nsocket_group = nogroup\n' > "$T/certd.conf"
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/hup/certificates

"$PEER" -n 2 -t 15000 "$S" '{"id":1,"op":"watch","team":"hup"}' > "$T/w" &
W=$!
sleep 0.3

# A token added to the file works after SIGHUP.
NEW=$(new_token later 'hup' write "$D/tokens")
req GET "$C" "" "$NEW"; expect_error 401 "unauthorized" "a new token before SIGHUP"
hup_wait
grep -q "reloaded configuration tokens=2" "$LOG" && ok "SIGHUP reloaded two tokens" ||
    not_ok "reload line: $(tail -n 2 "$LOG")"
req GET "$C" "" "$NEW"; expect 200 "the new token after SIGHUP"

# A broken token file is refused whole; the running tokens stay.
cp "$D/tokens" "$T/tokens.good"
echo "broken line" >> "$D/tokens"
hup_wait
grep -q "reload failed, keeping the running configuration: .*tokens:3:" "$LOG" &&
    ok "a malformed token file is logged with its line" || not_ok "bad tokens: $(tail -n 2 "$LOG")"
req GET "$C" "" "$NEW"; expect 200 "tokens unchanged after a failed reload"
cp "$T/tokens.good" "$D/tokens"

# A broken config is refused; a good ACL change applies.
printf '[certd]\nbogus = 1\n' > "$T/certd.conf"
hup_wait
grep -q "reload failed.*unknown setting" "$LOG" && ok "a bad config is refused" ||
    not_ok "bad config: $(tail -n 2 "$LOG")"
if nobody_ok; then
	chmod 755 "$T"
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$PEER" "$@"; }
	as_nobody "$S" '{"id":1,"op":"list","team":"hup"}' > "$T/o"
	grep -q '"code":403' "$T/o" && ok "nobody has no rights before" || not_ok "$(cat "$T/o")"
	printf '[certd]\nsocket_group = nogroup\n[acl]\nuser nobody = teams=hup perms=read\n' \
	    > "$T/certd.conf"
	hup_wait
	as_nobody "$S" '{"id":1,"op":"list","team":"hup"}' > "$T/o"
	grep -q '"id":1,"ok":true' "$T/o" && ok "an ACL added by SIGHUP applies" ||
	    not_ok "acl after HUP: $(cat "$T/o")"
fi

# The watch opened before all this is still there and hears a change.
body "$T/c" alias=a certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/c"; expect 200 "create after the reloads"
wait $W || true
grep -q '"event":"put"' "$T/w" && ok "a watch survives SIGHUP" || not_ok "watch: $(cat "$T/w")"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
