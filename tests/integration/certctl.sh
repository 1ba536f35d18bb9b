#!/bin/sh
# SPDX-License-Identifier: MIT
# Every certctl command against the real daemon over its socket, through
# libcertd: output, exit status and error messages.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"

# run DESCRIPTION EXPECTED_STATUS ARGS...: certctl's exit status; output in $T/o.
run() {
	desc=$1 want=$2; shift 2
	status=0
	"$CERTCTL" "$@" > "$T/o" 2> "$T/e" || status=$?
	if [ "$status" = "$want" ]; then ok "$desc"; else
		not_ok "$desc: exit $status, stdout $(head -c 300 "$T/o"), stderr $(cat "$T/e")"
	fi
}
has() {	# FILE PATTERN DESCRIPTION
	if grep -q -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no $2 in $(head -c 400 "$1")"
	fi
}

run "ping" 0 ping
run "ping --json" 0 --json ping
has "$T/o" '"revision"' "ping --json prints the revision"
run "ping on a socket that is not there" 3 -s "$T/none.sock" ping
has "$T/e" '^certctl: ' "one-line error naming certctl"

"$CERTCTL" watch acme > "$T/watch" 2>&1 &
WATCH=$!
i=0; while ! grep -q connected "$T/watch" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1)); done
has "$T/watch" connected "watch reports it is connected"

run "put creates" 0 put acme --alias web --type server \
    --cert "$PKI/leaf-rsa.chain.pem" --key "$PKI/leaf-rsa.key"
run "put --json" 0 --json put acme --alias api --type server \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
has "$T/o" '"id":2' "put --json prints the record"
run "put with the key on stdin" 0 put acme --alias edge --type server \
    --cert "$PKI/leaf-ed25519.pem" --key - < "$PKI/leaf-ed25519.key"
run "put of an expired certificate" 1 put acme --alias old --type server \
    --cert "$PKI/expired.pem" --key "$PKI/expired.key"
has "$T/e" "the certificate has been expired" "the server's message is shown"
run "put of a taken alias" 1 put acme --alias web --type server \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
has "$T/e" "412" "412 for a taken alias"
run "put --id updates one field" 0 put acme --id 1 --type client
run "put without required options" 2 put acme --alias x

run "get by id" 0 get acme 1
has "$T/o" "client" "get shows the updated type"
run "get --cert" 0 get acme 1 --cert
cmp -s "$T/o" "$PKI/leaf-rsa.chain.pem" && ok "get --cert prints exactly the PEM" ||
    not_ok "get --cert output differs"
run "get --key" 0 get acme 1 --key
cmp -s "$T/o" "$PKI/leaf-rsa.key" && ok "get --key prints exactly the key" ||
    not_ok "get --key output differs"
run "get --alias" 0 --json get acme --alias api
has "$T/o" '"alias":"api"' "get --alias finds it"
run "get of a missing id" 1 get acme 99
has "$T/e" "certificate not found" "404 message"

run "list" 0 list acme
has "$T/o" "web" "list shows web"
has "$T/o" "edge" "list shows edge"
run "list --json paging" 0 --json list acme --page 2 --page-size 2
has "$T/o" '"total":3' "list --json total"
has "$T/o" '"alias":"edge"' "second page holds the third"
run "list with a bad page size" 1 list acme --page-size 501

"$CERTCTL" watch acme --id 3 > "$T/bound" 2>&1 &
BOUND=$!
i=0; while ! grep -q connected "$T/bound" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1)); done
run "delete of a bound certificate" 1 delete acme 3
has "$T/e" "still in use" "still in use"
run "delete --force" 0 delete acme 3 --force
kill $BOUND 2>/dev/null || true; wait $BOUND 2>/dev/null || true
run "delete" 0 delete acme 2

sleep 0.3
kill -TERM $WATCH
status=0; wait $WATCH || status=$?
[ $status -eq 0 ] && ok "watch exits 0 on SIGTERM" || not_ok "watch exit $status"
[ "$(grep -c '"event":"put"' "$T/watch")" = 4 ] && ok "watch printed the 4 puts" ||
    not_ok "watch puts: $(cat "$T/watch")"
[ "$(grep -c '"event":"delete"' "$T/watch")" = 2 ] && ok "watch printed the 2 deletes" ||
    not_ok "watch deletes: $(cat "$T/watch")"
grep -q 'PRIVATE KEY' "$T/watch" && not_ok "watch printed key material" ||
    ok "watch prints no key without --with-pem"

"$CERTCTL" watch acme --since 0 > "$T/since" 2>&1 &
W=$!
sleep 1; kill -TERM $W; wait $W 2>/dev/null || true
[ "$(grep -c '"event":"put"' "$T/since")" = 1 ] && ok "one current certificate replayed" ||
    not_ok "replay: $(cat "$T/since")"

run "rekey" 0 rekey
has "$T/o" "master key rotated, key id [0-9a-f]\{16\}" "rekey prints the new key id"
run "rekey --fleet without fleet mode: refused" 1 rekey --fleet
has "$T/e" "400 invalid request: certd runs in single-host mode" "... saying why"
run "backup to a relative dir" 0 backup "$T/bk-rel"
run "get after rekey" 0 get acme 1 --key
cmp -s "$T/o" "$PKI/leaf-rsa.key" && ok "key readable after rekey" || not_ok "key after rekey"
(cd "$T" && "$CERTCTL" backup bk2 > "$T/o" 2>&1) && [ -f "$T/bk2/master.key" ] &&
    ok "backup DIR is relative to the caller" || not_ok "relative backup: $(cat "$T/o")"
# Refused (4xx, exit 1) or failed (5xx, exit 4): the class of certd's answer.
status=0
"$CERTCTL" backup "$T/bk2" > "$T/o" 2> "$T/e" || status=$?
case "$status $(cat "$T/e")" in
"1 certctl: 4"[0-9][0-9]" "*|"4 certctl: 5"[0-9][0-9]" "*)
	ok "backup into a used dir: exit $status for $(cut -c 10-13 "$T/e")" ;;
*)	not_ok "backup into a used dir: exit $status: $(cat "$T/e")" ;;
esac
if nobody_ok; then
	chmod 755 "$T" "$D"; chmod 666 "$CERTD_SOCKET"
	status=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$CERTCTL" rekey \
	    > "$T/o" 2> "$T/e" || status=$?
	[ $status -eq 1 ] && grep -q "403" "$T/e" && ok "rekey is for admins only" ||
	    not_ok "rekey as nobody: $status $(cat "$T/e")"
	chmod 660 "$CERTD_SOCKET"; chmod 700 "$D"
fi

run "token new" 0 token new --name ci --teams 'a,b' --role read
[ "$(wc -l < "$T/o")" = 2 ] && grep -q '^ci sha256:[0-9a-f]\{64\} teams=a,b role=read keys=no$' "$T/o" &&
    ok "token new prints a token and its line" || not_ok "token new: $(cat "$T/o")"
run "token new with a bad role" 2 token new --name ci --teams a --role admin
run "unknown command" 2 frobnicate
run "help" 0 help

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
