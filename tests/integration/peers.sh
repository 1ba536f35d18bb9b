#!/bin/sh
# SPDX-License-Identifier: MIT
# Socket peers cannot interfere with each other.  Each peer runs under a
# numeric uid of its own (setpriv; no passwd entry needed) with the [acl]
# rights of its own, and performs an attack one peer could make on another:
#   a) a reader's watch naming a certificate blocks a writer's DELETE;
#   b) a reader watches and acks under a name another uid uses (nginx-www);
#   c) a peer without any grant uses ops other than hello and ping;
#   d) non-admin uids fill every connection slot and lock root out;
#   e) one uid's watch filters take the daemon's memory;
#   f) a grant revoked by SIGHUP leaves the peer's watches (and bindings) on.
. "$(dirname "$0")/lib.sh"

if ! nobody_ok; then
	ok "# SKIP not root: cannot run socket peers under other uids"
	finish
	exit 0
fi

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
READER=4001 WRITER=4002 READER2=4003 OTHER=4004
acl() {	# the [acl] section; $1: the writer's perms, $2: 4004's line
	cat <<CONF
[certd]
socket_group = nogroup
ctl_max_conns = 16
ctl_max_conns_per_uid = 8
ctl_idle_timeout = 30
[acl]
uid $READER = teams=web perms=read
uid $WRITER = teams=web perms=$1
uid $READER2 = teams=web perms=read
$2
CONF
}
acl read,write "uid $OTHER = teams=other perms=read" > "$T/certd.conf"
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/web/certificates

# as UID ARGS...: sockpeer as UID (group nogroup, the socket's group).
as() { u=$1; shift; setpriv --reuid="$u" --regid=nogroup --clear-groups "$PEER" "$@"; }

# expect_line FILE PATTERN DESCRIPTION: a line of FILE matches PATTERN.
expect_line() {
	if grep -q -- "$2" "$1"; then ok "$3"; else
		not_ok "$3: no line matching $2 in: $(head -c 600 "$1")"
	fi
}
no_line() {
	if grep -q -- "$2" "$1"; then not_ok "$3: $(grep -- "$2" "$1" | head -c 600)"
	else ok "$3"; fi
}

# wait_for PATTERN COUNT FILE...: until COUNT lines of the FILEs match (10 s).
wait_for() {
	pat=$1 want=$2; shift 2
	i=0
	while [ "$(cat "$@" 2>/dev/null | grep -c -- "$pat" || true)" -lt "$want" ] &&
	    [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

# create ALIAS [TEAM]: a certificate, its id in $ID.
create() {
	body "$T/c" alias="$1" certificate=@"$PKI/leaf-rsa.chain.pem" \
	    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
	req POST "/openapi/v1/teams/${2:-web}/certificates" "$T/c"
	expect 200 "create $1"
	ID=$(jget id)
}

# --- a) a watch binds against DELETE only for a peer allowed to write -------
create www; WWW=$ID
create api; API=$ID
create bound; BOUND=$ID
setpriv --reuid=$READER --regid=nogroup --clear-groups "$PEER" -s -n 1 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$WWW]}" > "$T/a.r" &
P=$!
wait_for '"watch":1' 1 "$T/a.r"
expect_line "$T/a.r" '"id":1,"ok":true' "a reader may watch a certificate by id"
req DELETE "$C/$WWW"
expect 204 "a reader's watch does not block the writer's DELETE"
kill $P 2>/dev/null || true; wait $P 2>/dev/null || true
setpriv --reuid=$WRITER --regid=nogroup --clear-groups "$PEER" -s -n 1 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$API]}" > "$T/a.w" &
P=$!
wait_for '"watch":1' 1 "$T/a.w"
req DELETE "$C/$API"
expect_error 400 "the certificate is still in use" "a writer's watch still binds"
as $READER "$S" "{\"id\":2,\"op\":\"delete\",\"team\":\"web\",\"cert_id\":$API}" > "$T/o"
expect_line "$T/o" '"code":403,"msg":"permission denied"},"id":2' "a reader may not delete"
kill $P 2>/dev/null || true; wait $P 2>/dev/null || true

# --- b) a subscriber name belongs to the uid that first used it -------------
"$PEER" -s -n 1 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$API],\"name\":\"nginx-www\"}" \
    > "$T/b.root" &
ROOTW=$!
wait_for '"watch":1' 1 "$T/b.root"
as $READER "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$API],\"name\":\"nginx-www\"}" \
    "{\"id\":2,\"op\":\"ack\",\"watch\":1,\"revision\":99,\"status\":\"ok\",\"detail\":\"reloaded\"}" \
    > "$T/o"
expect_line "$T/o" '"code":403,"field":"name","msg":"permission denied","reason":"[^"]*belongs to another uid[^"]*"},"id":1' \
    "a reader cannot watch under root's subscriber name"
expect_line "$T/o" '"code":404,"msg":"watch not found"},"id":2' "nor ack under it"
req GET "$C/$API/subscribers"
expect 200 "subscribers of the certificate"
expect_json list.0.name nginx-www "root's watch is listed"
expect_json list.0.uid 0 "with root's uid"
expect_json list.0.pid "$ROOTW" "and its pid"
expect_json list.0.status pending "nobody acked for it"
jget list.1 > /dev/null 2>&1 && not_ok "a second subscriber: $(head -c 400 "$T/out")" ||
    ok "the reader is not listed under the name"
kill $ROOTW 2>/dev/null || true; wait $ROOTW 2>/dev/null || true

# A name a reader used first is the reader's: another reader cannot use it...
setpriv --reuid=$READER --regid=nogroup --clear-groups "$PEER" -s -n 3 -t 30000 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$BOUND],\"name\":\"haproxy\"}" \
    > "$T/b.owner" &
OWNER=$!
wait_for '"watch":1' 1 "$T/b.owner"
as $READER2 "$S" '{"id":1,"op":"watch","team":"web","name":"haproxy"}' > "$T/o"
expect_line "$T/o" '"code":403,"field":"name".*belongs to another uid.*"id":1' \
    "another uid cannot take a name in use"
req GET "$C/$BOUND/subscribers"
expect_json list.0.uid $READER "the subscribers view shows the owner's uid"
expect_json list.0.pid $OWNER "and its pid"
# ...and the name outlives the owner's watch, for the daemon's life.
as $READER "$S" '{"id":1,"op":"watch","team":"web","name":"cache"}' \
    '{"id":2,"op":"unwatch","watch":1}' > /dev/null
as $READER2 "$S" '{"id":1,"op":"watch","team":"web","name":"cache"}' > "$T/o"
expect_line "$T/o" '"code":403,"field":"name".*"id":1' "a name stays its first uid's after it is unused"
# An admin may take any name over: the other uid's watches under it end.
"$PEER" -n 1 "$S" '{"id":1,"op":"watch","team":"web","name":"haproxy"}' > "$T/o"
expect_line "$T/o" '"id":1,"ok":true' "root takes a reader's name over"
wait_for '"code":403' 1 "$T/b.owner"
expect_line "$T/b.owner" '"code":403,"msg":"permission denied","reason":"[^"]*taken over[^"]*"},"id":0,"ok":false,"watch":1' \
    "the reader's watch under the name ends with an error frame"
as $READER "$S" '{"id":1,"op":"watch","team":"web","name":"haproxy"}' > "$T/o"
expect_line "$T/o" '"code":403,"field":"name".*"id":1' "the former owner cannot use it again"
kill $OWNER 2>/dev/null || true; wait $OWNER 2>/dev/null || true

# --- c) a peer without any grant may hello and ping, nothing else ----------
as nobody "$S" '{"id":1,"op":"hello"}' '{"id":2,"op":"ping"}' \
    '{"id":3,"op":"watch"}' '{"id":4,"op":"watch","name":"squat"}' \
    '{"id":5,"op":"list","team":"web"}' \
    "{\"id\":6,\"op\":\"get\",\"team\":\"web\",\"cert_id\":$API}" \
    "{\"id\":7,\"op\":\"subscribers\",\"team\":\"web\",\"cert_id\":$API}" \
    '{"id":8,"op":"ack","watch":1,"revision":1,"status":"ok"}' \
    '{"id":9,"op":"unwatch","watch":1}' \
    "{\"id\":10,\"op\":\"history\",\"team\":\"web\",\"cert_id\":$API}" \
    "{\"id\":11,\"op\":\"delete\",\"team\":\"web\",\"cert_id\":$API}" \
    '{"id":12,"op":"put","team":"web","alias":"a","certificate":"x","private_key":"y","certificate_type":"z"}' \
    "{\"id\":13,\"op\":\"rollback\",\"team\":\"web\",\"cert_id\":$API,\"revision\":1}" \
    '{"id":14,"op":"rekey"}' "{\"id\":15,\"op\":\"backup\",\"dir\":\"$T/bk\"}" \
    '{"id":16,"op":"frobnicate"}' > "$T/c.o"
expect_line "$T/c.o" '"id":1,"ok":true,"result":{"admin":false' "a peer without a grant may hello"
expect_line "$T/c.o" '"id":2,"ok":true,"result":"pong"' "and ping"
i=3; denied=0
while [ $i -le 16 ]; do
	if grep -q "\"code\":403,\"msg\":\"permission denied\",\"reason\":\"[^\"]*no grant[^\"]*\"},\"id\":$i,\"ok\":false" "$T/c.o"; then
		denied=$((denied + 1))
	else
		not_ok "op $i of a peer without a grant: $(grep "\"id\":$i," "$T/c.o" | head -c 300)"
	fi
	i=$((i + 1))
done
[ $denied -eq 14 ] && ok "every other op of a peer without a grant: 403 naming the cause"
[ -e "$T/bk" ] && not_ok "a backup was written for a peer without a grant" ||
    ok "nothing else happens (no backup written)"
as $READER "$S" '{"id":1,"op":"watch","team":"web","name":"squat"}' > "$T/o"
expect_line "$T/o" '"id":1,"ok":true' "a refused peer claimed no name"

# --- d) connection slots kept for admins -------------------------------------
# ctl_max_conns 16: non-admins share 8 of them, the other 8 are root's.
i=0; pids=
while [ $i -lt 8 ]; do
	setpriv --reuid=$READER --regid=nogroup --clear-groups "$PEER" -s -n 1 "$S" \
	    '{"id":1,"op":"watch","team":"web"}' > "$T/d.r.$i" &
	pids="$pids $!"
	i=$((i + 1))
done
wait_for '"watch":1' 8 "$T"/d.r.*
i=0
while [ $i -lt 8 ]; do
	setpriv --reuid=$WRITER --regid=nogroup --clear-groups "$PEER" -s -n 1 "$S" \
	    '{"id":1,"op":"watch","team":"web"}' > "$T/d.w.$i" &
	pids="$pids $!"
	i=$((i + 1))
done
wait_for '"id":' 8 "$T"/d.w.*
expect_line "$T/d.r.7" '"id":1,"ok":true' "one uid fills the non-admin share"
[ "$(cat "$T"/d.w.* | grep -c '"code":503,"msg":"too many connections","reason":"[^"]*admins[^"]*"')" = 8 ] &&
    ok "another uid over the non-admin share gets 503 naming the reservation" ||
    not_ok "second uid: $(cat "$T"/d.w.* | head -c 400)"
"$PEER" "$S" '{"id":1,"op":"ping"}' '{"id":2,"op":"hello"}' > "$T/o"
expect_line "$T/o" '"result":"pong"' "root still connects with every non-admin slot taken"
kill $pids 2>/dev/null || true; wait $pids 2>/dev/null || true
check_alive

# --- e) one uid's watch filters have a budget -------------------------------
# 64 watches a connection, 1,024 aliases of 200 bytes each: 13 MB a connection.
awk 'BEGIN { s = sprintf("%200s", ""); gsub(/ /, "a", s);
	printf "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"aliases\":[";
	for (i = 0; i < 1024; i++) printf "%s\"%s%04d\"", i ? "," : "", substr(s, 5), i;
	printf "]}\n" }' > "$T/big.json"
set --; i=0
while [ $i -lt 64 ]; do set -- "$@" "@$T/big.json"; i=$((i + 1)); done
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$CERTD_PID/status")
# Both connections stay open (-s) while the daemon is measured.
setpriv --reuid=$READER2 --regid=nogroup --clear-groups "$PEER" -s -t 30000 "$S" "$@" > "$T/e.1" &
E1=$!
setpriv --reuid=$READER2 --regid=nogroup --clear-groups "$PEER" -s -t 30000 "$S" "$@" > "$T/e.2" &
E2=$!
i=0
while [ "$(cat "$T/e.1" "$T/e.2" | grep -c '"id":1,')" -lt 128 ] && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$CERTD_PID/status")
n_ok=$(cat "$T/e.1" "$T/e.2" | grep -c '"ok":true' || true)
n_no=$(cat "$T/e.1" "$T/e.2" | grep -c '"code":403,"msg":"permission denied","reason":"[^"]*budget[^"]*"' || true)
[ "$n_ok" -ge 1 ] && [ "$n_ok" -le 16 ] && [ $((n_ok + n_no)) = 128 ] &&
    ok "watches past the uid's filter budget are refused ($n_ok taken, $n_no refused)" ||
    not_ok "filter budget: $n_ok taken, $n_no refused: $(grep -v '"ok":true' "$T/e.1" | head -c 300)"
if nm -D "$CERTD" 2>/dev/null | grep -q __asan_init; then
	ok "# SKIP RSS check under AddressSanitizer"
else
	[ $((rss1 - rss0)) -lt 20000 ] && ok "certd RSS grew $((rss1 - rss0)) kB" ||
	    not_ok "certd RSS grew from $rss0 to $rss1 kB"
fi
kill $E1 $E2 2>/dev/null || true; wait $E1 $E2 2>/dev/null || true
s300=$(printf '%300s' '' | tr ' ' a)
as $READER2 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"aliases\":[\"$s300\"]}" > "$T/o"
expect_line "$T/o" '"code":400,"field":"aliases"' "an alias no certificate can have is refused"
check_alive

# --- f) SIGHUP that revokes a grant ends the peer's watches -----------------
create kept; KEPT=$ID
setpriv --reuid=$OTHER --regid=nogroup --clear-groups "$PEER" -n 2 -t 15000 "$S" \
    '{"id":1,"op":"watch","team":"other"}' > "$T/f.o" &
FO=$!
setpriv --reuid=$WRITER --regid=nogroup --clear-groups "$PEER" -n 2 -t 15000 "$S" \
    "{\"id\":1,\"op\":\"watch\",\"team\":\"web\",\"ids\":[$KEPT]}" > "$T/f.w" &
FW=$!
setpriv --reuid=$READER --regid=nogroup --clear-groups "$PEER" -n 2 -t 4000 "$S" \
    '{"id":1,"op":"watch","team":"web"}' > "$T/f.r" &
FR=$!
wait_for '"watch":1' 3 "$T/f.o" "$T/f.w" "$T/f.r"
req DELETE "$C/$KEPT"
expect_error 400 "the certificate is still in use" "the writer's watch binds before SIGHUP"
acl read "" > "$T/certd.conf"
hup_wait
wait $FO || true
expect_line "$T/f.o" '"code":403,"msg":"permission denied","reason":"[^"]*revoked[^"]*"},"id":0,"ok":false,"watch":1' \
    "a revoked grant ends the peer's watch with an error frame"
req DELETE "$C/$KEPT"
expect 204 "a revoked write permission ends the binding"
wait $FW $FR || true
expect_line "$T/f.w" '"event":"delete"' "the watch that kept read goes on"
no_line "$T/f.r" '"ok":false' "a peer whose grant stays is not touched"
as $OTHER "$S" '{"id":1,"op":"watch","team":"other"}' > "$T/o"
expect_line "$T/o" '"code":403.*no grant' "the revoked peer cannot watch again"
check_alive

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
