#!/bin/sh
# SPDX-License-Identifier: MIT
# Limits under load: 1,000 idle REST connections, slowloris-style partial
# requests, 1,000 idle Unix-socket connections and partial frames do not
# stop certd serving others; the timeouts end them; SIGTERM still stops
# certd promptly with all of that open; running out of descriptors does
# not kill certd.  The connections come from tests/integration/loadpeer
# (one process, poll-based).  About 70 s.
. "$(dirname "$0")/lib.sh"

LOADPEER="$CERTD_BUILDDIR/tests/integration/loadpeer"
PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
[ -x "$LOADPEER" ] || { echo "loadpeer not built at $LOADPEER" >&2; exit 99; }
[ -d /proc/self/fd ] || { echo "ok - # SKIP needs /proc"; exit 77; }

# About 2,600 descriptors in certd at the peak: raise the soft limit.
nofile=$(ulimit -S -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt 4096 ]; then
	ulimit -S -n 4096 2>/dev/null || ulimit -n 4096 2>/dev/null ||
	    ulimit -S -n "$(ulimit -H -n)" 2>/dev/null || true
	nofile=$(ulimit -S -n)
fi
if [ "$nofile" != unlimited ] && [ "$nofile" -lt 3000 ]; then
	echo "ok - # SKIP open-file limit $nofile, need 3000"
	exit 77
fi

BOUND=5			# seconds any one request may take under load
PEERS=
trap 'st=$?; for p in $PEERS; do kill "$p" 2>/dev/null || true; done; (exit $st); cleanup' EXIT
trap 'exit 1' HUP INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# loadpeer NAME ARGS...: start a loadpeer in the background, output in
# $T/NAME.lp.
loadpeer() {
	name=$1; shift
	"$LOADPEER" "$@" > "$T/$name.lp" 2> "$T/$name.err" &
	PEERS="$PEERS $!"
	eval "LP_$name=\$!"
}

# wait_line NAME WORD SECS: wait until loadpeer NAME printed its WORD line.
wait_line() {
	i=0
	while ! grep -q "^$2 " "$T/$1.lp" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

# lp NAME KEY: value of KEY in the last line loadpeer NAME printed.
lp() {
	v=$(tail -n 1 "$T/$1.lp" 2>/dev/null | sed -n "s/.* $2=\([-0-9]*\).*/\1/p")
	echo "${v:--1}"
}

# expect_ready NAME N DESCRIPTION: all N connections of NAME were made.
expect_ready() {
	if wait_line "$1" ready 30 && [ "$(lp "$1" connected)" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3: $(cat "$T/$1.lp" "$T/$1.err" 2>/dev/null)"
	fi
}

# finish_peer NAME SECS: wait for loadpeer NAME to end (bounded).
finish_peer() {
	eval "pid=\$LP_$1"
	wait_line "$1" done "$2" || { kill "$pid" 2>/dev/null || true; }
	wait "$pid" 2>/dev/null || true
	wait_line "$1" done 5 || true
}

# fds: certd's open sockets (RocksDB opens and closes files of its own).
fds() { ls -l "/proc/$CERTD_PID/fd" 2>/dev/null | grep -c 'socket:'; }

# settled_fds: fds once it has held still for half a second (5 s at most):
# the connection of start_certd's /healthz check stays open on certd's side
# until certd has read the client's close, which under a sanitizer and a
# parallel make check can come after the first reading.
settled_fds() {
	last=$(fds) same=0 i=0
	while [ $same -lt 5 ] && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
		n=$(fds)
		if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
	done
	echo "$last"
}

# treq METHOD PATH [BODY_FILE]: request bounded by $BOUND seconds; body in
# $T/out, status in $STATUS, seconds in $SECS.
MAXLAT=0
treq() {
	method=$1 path=$2 b=${3:-}
	set -- -s --path-as-is -m "$BOUND" -o "$T/out" \
	    -w '%{http_code} %{time_total}' -X "$method" -H "Authorization: $TOKEN"
	[ -n "$b" ] && set -- "$@" -H 'Content-Type: application/json' \
	    --data-binary "@$b"
	r=$(curl "$@" "$BASE$path") || r="000 $BOUND"
	STATUS=${r%% *} SECS=${r#* }
	MAXLAT=$(echo "$MAXLAT $SECS" | awk '{ print ($2 > $1 ? $2 : $1) }')
	echo "$STATUS $method $path" >> "$T/statuses"
}

# prompt STATUS DESCRIPTION: the last request answered STATUS within BOUND.
prompt() {
	if [ "$STATUS" = "$1" ] &&
	    awk -v s="$SECS" -v b="$BOUND" 'BEGIN { exit !(s < b) }'; then
		ok "$2 (${SECS}s)"
	else
		not_ok "$2: expected $1 within ${BOUND}s, got $STATUS after ${SECS}s: $(head -c 200 "$T/out" 2>/dev/null)"
	fi
}

# rest_round LABEL: healthz, list, create and get, each prompt.
N_CREATED=0
rest_round() {
	treq GET /healthz; prompt 200 "$1: GET /healthz"
	treq GET "$C?page_size=5"; prompt 200 "$1: GET list"
	N_CREATED=$((N_CREATED + 1))
	body "$T/c" alias="load$N_CREATED" certificate=@"$PKI/leaf-ec.pem" \
	    private_key=@"$PKI/leaf-ec.key" certificate_type=server
	treq POST "$C" "$T/c"; prompt 200 "$1: POST create"
	LAST_ID=$(jget id 2>/dev/null || echo 0)
	treq GET "$C/$LAST_ID"; prompt 200 "$1: GET the new certificate"
}

# speer DESCRIPTION PATTERN JSON...: a socket request from a fresh peer
# answers a line matching PATTERN within BOUND.
speer() {
	desc=$1 pat=$2; shift 2
	t0=$(now_ms)
	"$PEER" -t $((BOUND * 1000)) "$S" "$@" > "$T/sp" 2>&1 || true
	ms=$(($(now_ms) - t0))
	if grep -q -- "$pat" "$T/sp" && [ $ms -lt $((BOUND * 1000)) ]; then
		ok "$desc (${ms} ms)"
	else
		not_ok "$desc: after ${ms} ms: $(head -c 300 "$T/sp")"
	fi
}

# metric NAME: its value from /metrics.
metric() {
	curl -s -m "$BOUND" -H "Authorization: $TOKEN" "$BASE/metrics" |
	    awk -v m="$1" '$1 == m { print $2 }'
}

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
cat > "$T/certd.conf" <<CONF
[certd]
ctl_max_conns = 2000
ctl_max_conns_per_uid = 2000
ctl_idle_timeout = 12
CONF
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/acme/certificates
TCP="tcp:127.0.0.1:$PORT"
echo "# open-file limit $nofile, certd pid $CERTD_PID, port $PORT"
base_fds=$(settled_fds)

# --- 1. 1,000 idle REST connections ------------------------------------------
loadpeer idle -n 1000 -h 50 -x "$TCP"
expect_ready idle 1000 "1,000 idle TCP connections made"
i=0
while [ "$(fds)" -lt $((base_fds + 1000)) ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
[ "$(fds)" -ge $((base_fds + 1000)) ] &&
    ok "certd accepted them ($(fds) sockets open)" ||
    not_ok "certd holds $(fds) sockets, expected $((base_fds + 1000))"
rest_round "1,000 idle"

# --- 2. slowloris: partial request line, endless headers, slow body ----------
loadpeer line -n 80 -h 42 -x -p 'GET /openapi/v1/teams/acme/certificates' \
    -d 'a' "$TCP"
loadpeer hdrs -n 80 -h 42 -x -p 'GET /healthz HTTP/1.1\r\nHost: x\r\n' \
    -d 'X-Slow: 1\r\n' "$TCP"
loadpeer slowbody -n 40 -h 42 -x \
    -p "POST $C HTTP/1.1\r\nHost: x\r\nAuthorization: $TOKEN\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"alias\":\"" \
    -d 'x' "$TCP"
SLOW_START=$(now_ms)
expect_ready line 80 "80 connections dripping a request line"
expect_ready hdrs 80 "80 connections dripping header lines"
expect_ready slowbody 40 "40 connections dripping a body"
sleep 3		# let a few bytes drip
[ "$(fds)" -ge $((base_fds + 1200)) ] &&
    ok "certd holds the idle and the slow connections ($(fds) sockets)" ||
    not_ok "certd holds $(fds) sockets, expected $((base_fds + 1200))"
n=$(metric certd_http_connections)
[ "$n" -ge 1200 ] && ok "certd_http_connections counts them from accept ($n)" ||
    not_ok "certd_http_connections is $n, expected at least 1200"
rest_round "slowloris"

# --- 2b. clients that hang up before their answer ----------------------------
# 100 connections each send a whole PUT and close at once, while the write
# is still in flight, five times over; certd must answer everyone else and
# must not touch a connection that is gone (an early version of the
# connection layer crashed here, in libevent's finalizer).
body "$T/upd" certificate_type=client
len=$(wc -c < "$T/upd")
esc=$(sed 's/\\/\\\\/g' "$T/upd")
for round in 1 2 3 4 5; do
	loadpeer hangup$round -n 100 -h 0 \
	    -p "PUT $C/$LAST_ID HTTP/1.1\r\nHost: x\r\nAuthorization: $TOKEN\r\nContent-Type: application/json\r\nContent-Length: $len\r\n\r\n$esc" \
	    "$TCP"
	finish_peer hangup$round 20
done
check_alive
treq GET "$C/$LAST_ID"; prompt 200 "GET after 500 PUTs whose clients hung up"
[ "$(jget certificate_type)" = client ] && ok "the hung-up PUTs were applied" ||
    not_ok "certificate_type is $(jget certificate_type)"

# --- 2c. clients that pipeline requests and read no answer -------------------
# evhttp keeps reading while it writes a reply; certd must not keep what
# such clients send (it closes one once more than a request's worth waits
# unanswered) nor stop answering others.
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$CERTD_PID/status"; }
rss0=$(rss)
loadpeer flood -n 20 -f -x -h 10 -p 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' "$TCP"
wait_line flood ready 10 || true
sleep 3
treq GET /healthz; prompt 200 "GET /healthz while 20 clients flood"
finish_peer flood 15
rss1=$(rss)
echo "# flood: $(tail -n 1 "$T/flood.lp")"
[ "$(lp flood sent)" -gt 1000000 ] && ok "the flooding clients sent $(lp flood sent) bytes" ||
    not_ok "flood: $(tail -n 1 "$T/flood.lp")"
if nm -D "$CERTD" 2>/dev/null | grep -q __asan_init; then
	ok "# SKIP RSS check under AddressSanitizer, which holds freed memory ($rss0 to $rss1 kB)"
elif [ $((rss1 - rss0)) -lt 65536 ]; then
	ok "certd's RSS grew by $((rss1 - rss0)) KiB, under 64 MiB"
else
	not_ok "certd's RSS grew from $rss0 to $rss1 KiB"
fi

# --- 3. 1,000 idle socket connections and partial frames ---------------------
"$PEER" -n 2 -t 30000 "$S" '{"id":1,"op":"watch","team":"acme"}' > "$T/watch" &
WATCH=$!; PEERS="$PEERS $WATCH"
loadpeer sidle -n 1000 -h 30 -x "unix:$S"
loadpeer shdr -n 100 -h 30 -x -p '\x00\x00' "unix:$S"
loadpeer spart -n 100 -h 30 -x -p '\x00\x00\x00\x64\x82\xa2id\x01\xa2op\xa4ping' "unix:$S"
loadpeer sdrip -n 50 -h 60 -p '\x00\x00\x00\x64' -d '\xc0' "unix:$S"
SOCK_START=$(now_ms)
expect_ready sidle 1000 "1,000 idle socket connections made"
expect_ready shdr 100 "100 socket connections sent 2 bytes of a header"
expect_ready spart 100 "100 socket connections sent 13 of 100 announced bytes"
expect_ready sdrip 50 "50 socket connections drip a frame"
i=0
while [ "$(metric certd_socket_connections)" != 1251 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
n=$(metric certd_socket_connections)
[ "$n" = 1251 ] && ok "certd holds 1,251 socket connections" ||
    not_ok "certd_socket_connections is $n, expected 1251"
speer "socket ping under load" '"result":"pong"' '{"id":1,"op":"ping"}'
speer "socket get under load" '"id":2,"ok":true' \
    "{\"id\":2,\"op\":\"get\",\"team\":\"acme\",\"cert_id\":$LAST_ID}"
rest_round "socket load"
i=0
while [ "$(grep -c '"event":"put"' "$T/watch")" -lt 1 ] && [ $i -lt $((BOUND * 10)) ]; do
	sleep 0.1; i=$((i + 1))
done
grep -q "\"alias\":\"load$N_CREATED\".*\"event\":\"put\"" "$T/watch" &&
    ok "the watcher got the event of the REST create under load" ||
    not_ok "watcher: $(head -c 400 "$T/watch")"
check_alive

# ctl_idle_timeout (12 s) ends the idle and the stalled partial frames; a
# connection that keeps sending bytes is not idle (doc/protocol.md).
for p in sidle shdr spart; do
	finish_peer "$p" 25
	n=$(lp "$p" connected)
	if [ "$(lp "$p" closed)" = "$n" ] && [ "$(lp "$p" first_close_ms)" -ge 11000 ] &&
	    [ "$(lp "$p" last_close_ms)" -le 20000 ]; then
		ok "$p: all $n closed by ctl_idle_timeout ($(lp "$p" first_close_ms)-$(lp "$p" last_close_ms) ms)"
	else
		not_ok "$p: closed by the idle timeout: $(tail -n 1 "$T/$p.lp")"
	fi
done
n=$(metric certd_socket_connections)
echo "# socket connections after the idle timeout: $n (50 dripping + watcher)"
[ "$n" -le 51 ] && ok "socket connections released ($n left)" ||
    not_ok "certd_socket_connections is $n after the idle timeout"
speer "socket ping after the idle timeout" '"result":"pong"' '{"id":1,"op":"ping"}'

# --- the REST timeout: idle connections closed after 30 s --------------------
finish_peer idle 40
if [ "$(lp idle closed)" = 1000 ] && [ "$(lp idle first_close_ms)" -ge 25000 ] &&
    [ "$(lp idle last_close_ms)" -le 40000 ]; then
	ok "1,000 idle TCP connections closed by the 30 s timeout ($(lp idle first_close_ms)-$(lp idle last_close_ms) ms)"
else
	not_ok "idle TCP connections and the timeout: $(tail -n 1 "$T/idle.lp")"
fi
# doc/api.md: "read and write timeout 30 s per request".
for p in line hdrs slowbody; do
	finish_peer "$p" $((45 - ($(now_ms) - SLOW_START) / 1000))
	n=$(lp "$p" connected)
	if [ "$(lp "$p" closed)" = "$n" ] && [ "$(lp "$p" first_close_ms)" -ge 25000 ] &&
	    [ "$(lp "$p" last_close_ms)" -le 40000 ]; then
		ok "$p: all $n closed by the 30 s request timeout ($(lp "$p" first_close_ms)-$(lp "$p" last_close_ms) ms)"
	else
		not_ok "$p: slowloris connections closed by the 30 s request timeout: $(tail -n 1 "$T/$p.lp")"
	fi
done
wait "$WATCH" 2>/dev/null || true

# --- 4. SIGTERM with all kinds of connections open ----------------------------
loadpeer eidle -n 300 -h 60 "$TCP"
loadpeer eslow -n 50 -h 60 -p 'GET /healthz HTTP/1.1\r\n' -d 'X: y\r\n' "$TCP"
loadpeer esidle -n 300 -h 60 "unix:$S"
"$PEER" -s -n 1 "$S" '{"id":1,"op":"watch","team":"acme","since":0}' > /dev/null &
PEERS="$PEERS $!"
expect_ready eidle 300 "300 more idle TCP connections"
expect_ready eslow 50 "50 more slowloris connections"
expect_ready esidle 300 "300 more idle socket connections"
sleep 1
treq GET /healthz; prompt 200 "healthz before SIGTERM"
check_alive
echo "# certd holds $(fds) sockets before SIGTERM; max REST latency ${MAXLAT}s"
t0=$(now_ms)
kill -TERM "$CERTD_PID"
i=0
while kill -0 "$CERTD_PID" 2>/dev/null && [ $i -lt 150 ]; do
	sleep 0.1; i=$((i + 1))
done
ms=$(($(now_ms) - t0))
kill -KILL "$CERTD_PID" 2>/dev/null || true	# not stopped in 15 s
st=0; wait "$CERTD_PID" || st=$?
CERTD_PID=
[ "$st" = 0 ] && ok "SIGTERM exits 0 with ~1,000 connections open" ||
    not_ok "SIGTERM exit status $st"
[ $ms -lt 10000 ] && ok "stopped in $ms ms (under the 10 s grace)" ||
    not_ok "stopped after $ms ms"
grep -q 'stopping without waiting' "$LOG" &&
    not_ok "certd waited out the whole grace" || ok "no client held up the stop"
for p in sdrip eidle eslow esidle; do
	kill "$(eval echo "\$LP_$p")" 2>/dev/null || true
done

# --- 5. out of descriptors -------------------------------------------------
# certd with a limit of 64 descriptors, soft and hard (certd raises the soft
# one to the hard one): accept fails with EMFILE; certd must live through it
# and serve again once descriptors are free.
LOWFD=64
printf '#!/bin/sh\nulimit -n %s\nexec "%s" "$@"\n' "$LOWFD" "$CERTD" > "$T/certd-lowfd"
chmod +x "$T/certd-lowfd"
REAL_CERTD=$CERTD
CERTD="$T/certd-lowfd"
# healthy_within SECS: healthz answers 200 within SECS (certd pauses accept).
healthy_within() {
	i=0
	while [ $i -lt "$1" ]; do
		[ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] &&
		    return 0
		sleep 0.5; i=$((i + 1))
	done
	return 1
}
start_certd "$D" --socket "$S" --config "$T/certd.conf"
echo "# certd pid $CERTD_PID with a limit of $(awk '/Max open files/ {print $4}' "/proc/$CERTD_PID/limits") descriptors"
loadpeer fdtcp -n 150 -h 3 -t 300 "tcp:127.0.0.1:$PORT"
wait_line fdtcp ready 20 || true
sleep 1
if kill -0 "$CERTD_PID" 2>/dev/null; then
	ok "certd lives through EMFILE on the REST listener"
else
	not_ok "certd lives through EMFILE on the REST listener (it died: $(tail -n 1 "$LOG"))"
fi
finish_peer fdtcp 10
if kill -0 "$CERTD_PID" 2>/dev/null; then
	healthy_within 10 && ok "REST answers again once descriptors are free" ||
	    not_ok "REST does not answer after EMFILE"
	stop_certd TERM && ok "SIGTERM exits 0 after EMFILE" ||
	    not_ok "SIGTERM exit status after EMFILE"
else
	wait "$CERTD_PID" 2>/dev/null || true
	CERTD_PID=
fi
start_certd "$D" --socket "$S" --config "$T/certd.conf"
loadpeer fdunix -n 150 -h 3 -t 300 "unix:$S"
wait_line fdunix ready 20 || true
sleep 1
kill -0 "$CERTD_PID" 2>/dev/null && ok "certd lives through EMFILE on the socket" ||
    not_ok "certd died on EMFILE on the socket: $(tail -n 1 "$LOG")"
finish_peer fdunix 10
if kill -0 "$CERTD_PID" 2>/dev/null; then
	i=0
	until "$PEER" -t 1000 "$S" '{"id":1,"op":"ping"}' 2>&1 | grep -q pong; do
		i=$((i + 1)); [ $i -ge 10 ] && break; sleep 0.5
	done
	[ $i -lt 10 ] && ok "the socket answers again once descriptors are free" ||
	    not_ok "the socket does not answer after EMFILE"
	healthy_within 10 && ok "REST answers after EMFILE on the socket" ||
	    not_ok "REST does not answer after EMFILE on the socket"
	stop_certd TERM && ok "SIGTERM exits 0 after EMFILE on the socket" ||
	    not_ok "SIGTERM exit status after EMFILE on the socket"
fi
CERTD=$REAL_CERTD

finish
