#!/bin/sh
# SPDX-License-Identifier: MIT
# certctl for scripts: history and rollback, --help of every command and
# --version, exit status by class (0 ok, 1 refused, 2 usage, 3 certd not
# reached, 4 certd failed) with --json errors as one {"code","msg"} object
# on stdout, one time format (RFC 3339 UTC with Z, Unix seconds beside it
# in *_unix) in REST, --json, watch and list output while Rainbond's
# end_data keeps its own, list columns aligned by display width with a CJK
# alias, and sync saying at each retry that the socket is not there.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"
C=/openapi/v1/teams/acme/certificates
RFC3339='^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z$'
CJK=$(printf '\347\275\221\347\253\231\350\257\201\344\271\246')	# 网站证书: 8 cells, 12 bytes

# run DESCRIPTION EXPECTED_STATUS ARGS...: certctl's exit status; output in
# $T/o and $T/e.
run() {
	desc=$1 want=$2; shift 2
	status=0
	"$CERTCTL" "$@" > "$T/o" 2> "$T/e" || status=$?
	if [ "$status" = "$want" ]; then ok "$desc"; else
		not_ok "$desc: exit $status (want $want), stdout $(head -c 300 "$T/o"), stderr $(head -c 300 "$T/e")"
	fi
}
has() {	# FILE PATTERN DESCRIPTION
	if grep -q -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no $2 in $(head -c 400 "$1")"
	fi
}
# is_time VALUE DESCRIPTION: VALUE is RFC 3339 UTC with Z.
is_time() {
	if printf '%s\n' "$1" | grep -q "$RFC3339"; then ok "$2"; else
		not_ok "$2: '$1' is not RFC 3339 UTC"
	fi
}
# same_time STRING UNIX DESCRIPTION: the two say the same second.
same_time() {
	if [ -n "$2" ] && [ "$(date -u -d "@$2" +%Y-%m-%dT%H:%M:%SZ)" = "$1" ]; then
		ok "$3"
	else
		not_ok "$3: '$1' and '$2' differ"
	fi
}
# json_error CODE MSG DESCRIPTION: stdout ($T/o) is exactly one line, the
# object {"code":CODE,"msg":MSG...}, and stderr is empty.
json_error() {
	if [ "$(wc -l < "$T/o")" = 1 ] && [ "$(jget_o code)" = "$1" ] &&
	    jget_o msg | grep -q -- "$2" &&
	    grep -q '^{"code":[0-9]*,"msg":"[^"]*"}$' "$T/o" && [ ! -s "$T/e" ]; then
		ok "$3"
	else
		not_ok "$3: stdout $(head -c 300 "$T/o"), stderr $(head -c 300 "$T/e")"
	fi
}
jget_o() { "$JTOOL" get "$T/o" "$1" 2>/dev/null; }

# --- --version, and --help of every command ------------------------------------
run "certctl --version" 0 --version
has "$T/o" '^certctl [0-9][0-9.]*$' "--version prints certctl and its version"
status=0
"$CERTD" --version > "$T/o" 2> "$T/e" || status=$?
[ $status = 0 ] && grep -q '^certd [0-9][0-9.]*$' "$T/o" &&
    ok "certd --version" || not_ok "certd --version: $status $(cat "$T/o" "$T/e")"
for cmd in ping get list put delete history rollback rekey backup watch \
    subscribers sync token; do
	run "certctl $cmd --help exits 0" 0 "$cmd" --help
	if head -n 1 "$T/o" | grep -q "^usage: certctl $cmd" && [ ! -s "$T/e" ]; then
		ok "... and prints its usage"
	else
		not_ok "$cmd --help printed: $(head -c 200 "$T/o") $(head -c 200 "$T/e")"
	fi
done
run "certctl token new --help" 0 token new --help
has "$T/o" "^usage: certctl token new --name" "... the usage of token new"
run "certctl get acme 1 -h: help wins over the arguments" 0 get acme 1 -h
has "$T/o" "^usage: certctl get TEAM ID" "... the usage of get"
run "certctl help rollback" 0 help rollback
has "$T/o" "^usage: certctl rollback TEAM ID REVISION" "... the usage of rollback"

# --- history and rollback ------------------------------------------------------
run "put with a CJK alias" 0 put acme --alias "$CJK" --type server \
    --cert "$PKI/leaf-rsa.pem" --key "$PKI/leaf-rsa.key"
run "put web" 0 put acme --alias web --type client \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
req GET "$C/1"; expect 200 "GET the first version"
R1=$(jget revision); FP1=$(jget fingerprint_sha256)
run "put a new certificate into id 1" 0 put acme --id 1 \
    --cert "$PKI/leaf-rsa2.pem" --key "$PKI/leaf-rsa2.key"
req GET "$C/1"; R3=$(jget revision); FP3=$(jget fingerprint_sha256)
[ "$FP1" != "$FP3" ] && ok "the update changed the certificate" ||
    not_ok "fingerprints: $FP1 $FP3"

run "history" 0 history acme 1
[ "$(wc -l < "$T/o")" = 3 ] && ok "history: a heading and two versions" ||
    not_ok "history: $(cat "$T/o")"
has "$T/o" "^REVISION UPDATED_AT  *ALIAS  *TYPE  *NOT_AFTER  *FINGERPRINT$" \
    "history has its heading"
sed -n 2p "$T/o" | grep -q "^$R3 .*Z $CJK server .*Z $(echo "$FP3" | cut -c 1-16)$" &&
    ok "history's first line is the current version" ||
    not_ok "history line 2: $(sed -n 2p "$T/o")"
sed -n 3p "$T/o" | grep -q "^$R1 .*$(echo "$FP1" | cut -c 1-16)$" &&
    ok "history's second line is the first version" ||
    not_ok "history line 3: $(sed -n 3p "$T/o")"
run "history --json" 0 --json history acme 1
cp "$T/o" "$T/hist.json"
[ "$(jget_o list.0.revision)" = "$R3" ] && [ "$(jget_o list.1.revision)" = "$R1" ] &&
    [ "$(jget_o list.1.fingerprint_sha256)" = "$FP1" ] &&
    [ "$(jget_o list.0.alias)" = "$CJK" ] &&
    [ "$(jget_o list.0.certificate_type)" = server ] &&
    ok "history --json lists both versions, newest first" ||
    not_ok "history --json: $(cat "$T/o")"
is_time "$(jget_o list.0.not_after)" "history --json not_after is RFC 3339"
is_time "$(jget_o list.0.updated_at)" "history --json updated_at is RFC 3339"
same_time "$(jget_o list.0.not_after)" "$(jget_o list.0.not_after_unix)" \
    "... with not_after_unix beside it"
same_time "$(jget_o list.0.updated_at)" "$(jget_o list.0.updated_at_unix)" \
    "... and updated_at_unix"
req GET "$C/1/history"; expect 200 "REST history"
[ "$(jget list.0.not_after)" = "$("$JTOOL" get "$T/hist.json" list.0.not_after)" ] &&
    [ "$(jget list.1.updated_at)" = "$("$JTOOL" get "$T/hist.json" list.1.updated_at)" ] &&
    ok "REST and certctl show the same times" ||
    not_ok "REST history $(head -c 300 "$T/out")"
is_time "$(jget list.0.updated_at)" "REST history updated_at is RFC 3339"
is_time "$(jget list.0.not_after)" "REST history not_after is RFC 3339"

run "rollback to the first version" 0 rollback acme 1 "$R1"
req GET "$C/1"; R4=$(jget revision)
[ "$(jget fingerprint_sha256)" = "$FP1" ] && [ "$R4" -gt "$R3" ] &&
    ok "the first certificate is current again, as a new revision" ||
    not_ok "after rollback: revision $R4 fingerprint $(jget fingerprint_sha256)"
has "$T/o" "^rolled back 1 $CJK to revision $R1 (now revision $R4)$" \
    "rollback says what it did"
run "rollback --json to the second version" 0 --json rollback acme 1 "$R3"
[ "$(jget_o id)" = 1 ] && [ "$(jget_o team)" = acme ] &&
    [ "$(jget_o fingerprint_sha256)" = "$FP3" ] &&
    [ "$(jget_o revision)" -gt "$R4" ] && ! grep -q 'PRIVATE KEY' "$T/o" &&
    ok "rollback --json prints the stored record, without the key" ||
    not_ok "rollback --json: $(cat "$T/o")"
is_time "$(jget_o not_after)" "rollback --json not_after is RFC 3339"
run "rollback to a revision not kept" 1 rollback acme 1 999
has "$T/e" "^certctl: 404 revision not found" "... is certd's 404"
run "rollback of a missing certificate" 1 rollback acme 99 1
has "$T/e" "certificate not found" "... says so"
run "history of a missing certificate" 1 history acme 99
run "rollback without a revision" 2 rollback acme 1
has "$T/e" "certctl rollback --help" "... points at rollback --help"

# --- exit status by class, and --json errors -----------------------------------
run "0: ping" 0 ping
run "1: get of a missing id (404)" 1 get acme 99
run "1: put of a taken alias (412)" 1 put acme --alias web --type server \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
has "$T/e" "^certctl: 412 " "... certd's 412"
run "1: list with a bad page size (400)" 1 list acme --page-size 501
run "2: a missing argument" 2 get acme
run "2: an unknown option" 2 list acme --bogus
run "2: an unknown command" 2 frobnicate
run "2: a file that cannot be read" 2 put acme --alias x --type server \
    --cert "$T/no-such.pem" --key "$PKI/leaf-ec.key"
run "2: token new with a bad role" 2 token new --name ci --teams a --role admin
run "3: no socket" 3 -s "$T/none.sock" ping
has "$T/e" "^certctl: connect $T/none.sock: No such file or directory" "... says why"
: > "$T/plain.sock"
run "3: nothing listening" 3 -s "$T/plain.sock" list acme
run "3: watch with no socket" 3 -s "$T/none.sock" watch acme
# 503: certd refuses a backup while its master key file is not the key the
# store is sealed under (replaced under it).
cp "$D/master.key" "$T/master.key.saved"
head -c 32 /dev/urandom > "$D/master.key"
run "4: a 503 from certd" 4 backup "$T/bk503"
has "$T/e" "^certctl: 503 storage unavailable" "... certd's 503"
run "--json 503" 4 --json backup "$T/bk503"
json_error 503 "storage unavailable" "--json 503: one error object on stdout"
cp "$T/master.key.saved" "$D/master.key"
run "the backup works with the right key" 0 backup "$T/bk-ok"

run "--json 404" 1 --json get acme 99
if [ "$(cat "$T/o")" = '{"code":404,"msg":"certificate not found"}' ] && [ ! -s "$T/e" ]; then
	ok "--json 404 is exactly {code, msg} on stdout, nothing on stderr"
else
	not_ok "--json 404: stdout $(cat "$T/o") stderr $(cat "$T/e")"
fi
run "--json 412" 1 --json put acme --alias web --type server \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
json_error 412 "certificate name already exists" "--json 412 error object"
run "--json usage error, --json after the bad option" 2 list acme --bogus --json
json_error 2 "unknown option --bogus" "--json usage error object (code 2)"
run "--json no socket" 3 --json -s "$T/none.sock" get acme 1
json_error 3 "No such file or directory" "--json unreachable error object (code 3)"
run "--json watch with no socket" 3 --json -s "$T/none.sock" watch acme
tail -n 1 "$T/o" > "$T/o.last"; mv "$T/o.last" "$T/o"
json_error 3 "No such file or directory" "--json watch ends with the error object"

# --- one time format ------------------------------------------------------------
req GET "$C/1"; expect 200 "REST GET"
is_time "$(jget not_before)" "REST not_before is RFC 3339"
is_time "$(jget not_after)" "REST not_after is RFC 3339"
NA=$(jget not_after)
req GET "$C?page=1&page_size=10"; expect 200 "REST list"
END=$(jget list.0.end_data)
printf '%s\n' "$END" | grep -q '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]$' &&
    [ "$END" = "${NA%Z}" ] && ok "end_data stays Rainbond's YYYY-MM-DDTHH:MM:SS, no Z" ||
    not_ok "end_data '$END' (not_after $NA)"

run "get --json" 0 --json get acme 1
[ "$(jget_o not_after)" = "$NA" ] && ok "get --json not_after is REST's RFC 3339 time" ||
    not_ok "get --json not_after: $(jget_o not_after), REST $NA"
same_time "$(jget_o not_after)" "$(jget_o not_after_unix)" "get --json not_after_unix"
run "get" 0 get acme 1
has "$T/o" "^not_after  *$NA$" "get shows not_after in RFC 3339"
run "list --json" 0 --json list acme
is_time "$(jget_o list.0.not_after)" "list --json not_after is RFC 3339"
same_time "$(jget_o list.1.not_after)" "$(jget_o list.1.not_after_unix)" \
    "list --json not_after_unix"

"$CERTCTL" watch acme --since 0 > "$T/w" 2> "$T/w.err" &
W=$!
i=0; while [ "$(grep -c '"event":"put"' "$T/w" || true)" -lt 2 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1)); done
kill -TERM $W; wait $W 2>/dev/null || true
[ "$(grep -c '"event":"put"' "$T/w")" = 2 ] &&
    [ "$(grep -c '"not_after":"[0-9-]*T[0-9:]*Z","not_after_unix":[0-9]*,' "$T/w")" = 2 ] &&
    ok "watch prints not_after in RFC 3339 with not_after_unix" ||
    not_ok "watch: $(cat "$T/w")"

# A subscriber's ack time: REST and certctl subscribers.
mkdir -p "$T/s"
"$CERTCTL" sync acme --id 2 --cert-file "$T/s/c.pem" --key-file "$T/s/k.pem" \
    --name s1 2> "$T/sync.log" &
SYNC=$!
i=0; while ! "$CERTCTL" --json subscribers acme 2 2>/dev/null |
    grep -q '"name":"s1"[^}]*"revision":[1-9]' && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1)); done
req GET "$C/2/subscribers"; expect 200 "REST subscribers"
is_time "$(jget list.0.at)" "REST subscribers at is RFC 3339"
run "subscribers --json" 0 --json subscribers acme 2
is_time "$(jget_o list.0.at)" "subscribers --json at is RFC 3339"
same_time "$(jget_o list.0.at)" "$(jget_o list.0.at_unix)" "... with at_unix"
kill -TERM $SYNC; wait $SYNC 2>/dev/null || true

# --- list aligns by display width ----------------------------------------------
# width TEXT: display cells (GNU wc -L counts wcwidth under a UTF-8 locale).
width() { printf '%s\n' "$1" | LC_ALL=C.UTF-8 wc -L; }
run "list" 0 list acme
H=$(sed -n 1p "$T/o"); L1=$(sed -n 2p "$T/o"); L2=$(sed -n 3p "$T/o")
printf '%s\n' "$L1" | grep -q "$CJK" && ok "the CJK alias is listed" ||
    not_ok "list: $(cat "$T/o")"
th=$(width "${H%%TYPE*}"); t1=$(width "${L1%%server*}"); t2=$(width "${L2%%client*}")
nh=$(width "${H%%NOT_AFTER*}"); n1=$(width "${L1%%"$NA"*}")
[ "$th" = "$t1" ] && [ "$th" = "$t2" ] && [ "$nh" = "$n1" ] &&
    ok "list columns line up in display cells with a CJK alias" ||
    not_ok "TYPE at cells $th/$t1/$t2, NOT_AFTER at $nh/$n1: $(cat "$T/o")"
run "history" 0 history acme 1
H=$(sed -n 1p "$T/o"); L1=$(sed -n 2p "$T/o")
[ "$(width "${H%%TYPE*}")" = "$(width "${L1%%server*}")" ] &&
    ok "history columns line up too" || not_ok "history: $(cat "$T/o")"

# --- sync says at each retry that the socket is not there -------------------------
"$CERTCTL" -s "$T/none.sock" sync acme --id 1 --cert-file "$T/s/c1.pem" \
    --key-file "$T/s/k1.pem" 2> "$T/nosock.log" &
SYNC=$!
sleep 2.5
kill -0 $SYNC 2>/dev/null && ok "sync keeps retrying on a missing socket" ||
    not_ok "sync ended: $(cat "$T/nosock.log")"
kill -TERM $SYNC; wait $SYNC 2>/dev/null || true
n=$(grep -c "connect $T/none.sock: No such file or directory" "$T/nosock.log" || true)
[ "$n" -ge 3 ] && ok "sync says the socket is missing at each retry ($n times)" ||
    not_ok "sync said it $n times: $(cat "$T/nosock.log")"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
