#!/bin/sh
# SPDX-License-Identifier: MIT
# Unix-socket benchmark of certd, run on demand (not by make check), with
# redis measured side by side in the same run (SPEC section 7):
#
#   1. fan-out: N_SUBS subscribers watch one team; one connection updates a
#      certificate N_CHANGES times, one at a time; latency from the put's
#      response (and from sending it) to the last subscriber's event.
#   2. get: GET_CONNS connections in a closed loop of socket `get` for
#      GET_SECONDS; requests/s and the response payload size.
#   3. redis: redis-benchmark GET over a Unix socket, GET_CONNS connections,
#      of a stored value as large as certd's get response payload.
#
# Usage: tests/bench/socket.sh   (as root: installs redis with apt-get if
# it is missing).  Knobs (environment): N_SUBS=1000 N_CHANGES=200
# GET_CONNS=32 GET_SECONDS=10 REDIS_REQUESTS (default: about GET_SECONDS of
# work at the measured certd rate, at least 200000), PERF_DIR=DIR (record
# certd with perf during each phase into DIR/perf-fanout.data and
# DIR/perf-get.data), KEEP_TMP=1.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N_SUBS:=1000}"
: "${N_CHANGES:=200}"
: "${GET_CONNS:=32}"
: "${GET_SECONDS:=10}"
: "${REDIS_REQUESTS:=}"
: "${PERF_DIR:=}"
CERTD="$CERTD_BUILDDIR/certd"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
TEAM=bench

T=$(mktemp -d "${TMPDIR:-/tmp}/certd-bench.XXXXXX")
chmod 755 "$T"
CERTD_PID=
REDIS_PID=
PERF_PID=

cleanup() {
	set +e
	[ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID"
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	[ -n "$REDIS_PID" ] && kill -KILL "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else
		echo "# temporary files kept in $T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "# $*"; }

# --- prerequisites -----------------------------------------------------------
[ -x "$CERTD" ] || (cd "$CERTD_BUILDDIR" && make certd)
[ -x "$JTOOL" ] || (cd "$CERTD_BUILDDIR" && make tests/integration/jtool)
if ! command -v redis-server > /dev/null || ! command -v redis-benchmark > /dev/null; then
	[ "$(id -u)" = 0 ] || { echo "redis-server/redis-tools missing; run as root to install" >&2; exit 1; }
	say "installing redis-server redis-tools"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools > "$T/apt.log" 2>&1; then
		apt-get update -q >> "$T/apt.log" 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >> "$T/apt.log" 2>&1 ||
		    { tail -n 20 "$T/apt.log" >&2; exit 1; }
	fi
fi
BENCH="$T/sockbench"
gcc -O2 -g -Wall -Wextra -o "$BENCH" "$SRC/src/proto.c" "$SRC/src/util.c" \
    "$SRC/tests/bench/sockbench.c" \
    -I"$SRC/include" -I"$SRC/src" $(pkg-config --cflags --libs msgpack)
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N_SUBS + 256)) ] ||
    ulimit -n $((N_SUBS + 256))
sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
    { tail -n 20 "$T/pki.log" >&2; exit 1; }

# --- certd -------------------------------------------------------------------
D="$T/data"; S="$T/certd.sock"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
if out=$("$CERTD_BUILDDIR/certctl" token new --name bench --teams '*' --role write 2>/dev/null) &&
    [ "$(printf '%s\n' "$out" | wc -l)" -ge 2 ]; then
	TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
	printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
else	# certctl unavailable: the token-file line format of doc/api.md
	TOKEN=ctk_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	echo "bench sha256:$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1) teams=* role=write" > "$D/tokens"
fi
MAXC=$((N_SUBS + 64)); [ "$MAXC" -ge 2000 ] || MAXC=2000
cat > "$T/certd.conf" <<CONF
[certd]
ctl_max_conns = $MAXC
ctl_max_conns_per_uid = $MAXC
CONF
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$S" \
    --config "$T/certd.conf" --log-level info 2> "$LOG" &
CERTD_PID=$!
i=0
until grep -q 'certd ready' "$LOG"; do
	kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; CERTD_PID=; exit 1; }
	i=$((i + 1)); [ "$i" -le 200 ] || { echo "certd not ready after 20 s" >&2; exit 1; }
	sleep 0.1
done
PORT=$(grep 'certd ready' "$LOG" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
BASE="http://127.0.0.1:$PORT/openapi/v1/teams/$TEAM/certificates"

"$JTOOL" make alias=bench certificate=@"$T/pki/leaf-rsa.chain.pem" \
    private_key=@"$T/pki/leaf-rsa.key" certificate_type=server > "$T/create.json"
code=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' -X POST --data-binary @"$T/create.json" "$BASE")
[ "$code" = 200 ] || { echo "create answered $code: $(head -c 300 "$T/out")" >&2; exit 1; }
ID=$("$JTOOL" get "$T/out" id)
say "certd $("$CERTD" --version 2>&1 | head -n 1), pid $CERTD_PID, certificate $TEAM/$ID (leaf-rsa.chain.pem + key)"

perf_start() {
	[ -n "$PERF_DIR" ] || return 0
	mkdir -p "$PERF_DIR"
	perf record -q -g -p "$CERTD_PID" -o "$PERF_DIR/perf-$1.data" > /dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
}
perf_stop() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
}

# --- fan-out -----------------------------------------------------------------
say "fanout: $N_SUBS subscribers, $N_CHANGES changes"
perf_start fanout
"$BENCH" fanout "$S" "$N_SUBS" "$N_CHANGES" "$TEAM" "$ID" | tee "$T/fanout.out"
perf_stop
grep -q '^RESULT fanout_subs=' "$T/fanout.out" || { echo "fanout failed" >&2; exit 1; }
# The subscribers are gone once sockbench exited; give certd a moment.
sleep 1

# --- certd get ---------------------------------------------------------------
say "get: $GET_CONNS connections, $GET_SECONDS s"
perf_start get
SOCKBENCH_SERVER_PID=$CERTD_PID \
    "$BENCH" get "$S" "$GET_CONNS" "$GET_SECONDS" "$TEAM" "$ID" | tee "$T/get.out"
perf_stop
grep -q '^RESULT get_conns=.* get_errors=0' "$T/get.out" || { echo "get failed" >&2; exit 1; }
kill -TERM "$CERTD_PID"; wait "$CERTD_PID" || true; CERTD_PID=

# result KEY FILE: value of KEY in the RESULT lines of FILE.
result() { sed -n "s/^RESULT .*\<$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }
GET_RPS=$(result get_rps "$T/get.out")
SIZE=$(result get_payload "$T/get.out")

# --- redis -------------------------------------------------------------------
redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --appendonly no \
    --daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
i=0
until redis-cli -s "$T/redis.sock" ping 2>/dev/null | grep -q PONG; do
	kill -0 "$REDIS_PID" 2>/dev/null || { tail -n 5 "$T/redis.log" >&2; REDIS_PID=; exit 1; }
	i=$((i + 1)); [ "$i" -le 100 ] || { echo "redis not ready" >&2; exit 1; }
	sleep 0.1
done
N=${REDIS_REQUESTS:-$(awk -v r="$GET_RPS" -v s="$GET_SECONDS" \
    'BEGIN { n = int(r * s); if (n < 200000) n = 200000; print n }')}
say "redis $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'): redis-benchmark -t get -c $GET_CONNS -d $SIZE -n $N"
# redis-benchmark's GET test reads the key "key:__rand_int__" and never
# writes it (-d only sizes SET values): store a SIZE-byte value there first,
# or every GET would answer nil.
head -c "$SIZE" /dev/zero | tr '\0' x |
    redis-cli -s "$T/redis.sock" -x set 'key:__rand_int__' > /dev/null
[ "$(redis-cli -s "$T/redis.sock" strlen 'key:__rand_int__')" = "$SIZE" ] ||
    { echo "could not store the redis value" >&2; exit 1; }
# cpu_ticks PID: user + system clock ticks used so far by PID.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
C0=$(cpu_ticks "$REDIS_PID")
redis-benchmark -s "$T/redis.sock" -t get -c "$GET_CONNS" -d "$SIZE" -n "$N" -q \
    2>&1 | tr '\r' '\n' | grep -v '^ *$' | tail -n 1 | tee "$T/redis.out"
C1=$(cpu_ticks "$REDIS_PID")
REDIS_US=$(awk -v a="$C0" -v b="$C1" -v hz="$(getconf CLK_TCK)" -v n="$N" \
    'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
MISSES=$(redis-cli -s "$T/redis.sock" info stats | tr -d '\r' | sed -n 's/^keyspace_misses://p')
[ "$MISSES" = 0 ] || { echo "redis GET missed $MISSES times" >&2; exit 1; }
REDIS_RPS=$(sed -n 's/.*GET: *\([0-9.]*\) requests per second.*/\1/p' "$T/redis.out" | tail -n 1)
[ -n "$REDIS_RPS" ] || { echo "could not read redis-benchmark output" >&2; exit 1; }
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" || true; REDIS_PID=

# --- summary -----------------------------------------------------------------
F="$T/fanout.out"
echo
echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1))"
printf '%-52s %12s\n' "metric" "value"
printf '%-52s %12s\n' "certd socket GET req/s ($GET_CONNS conns, ${SIZE} B payload)" "$GET_RPS"
printf '%-52s %12s\n' "redis GET req/s ($GET_CONNS conns, -d $SIZE)" "$REDIS_RPS"
printf '%-52s %12s\n' "ratio certd/redis" "$(awk -v a="$GET_RPS" -v b="$REDIS_RPS" 'BEGIN { printf "%.2f", a / b }')"
printf '%-52s %12s\n' "certd server CPU per GET, us" "$(result get_server_cpu_us "$T/get.out")"
printf '%-52s %12s\n' "redis server CPU per GET, us" "$REDIS_US"
printf '%-52s %12s\n' "fanout to $N_SUBS subs, response->last: p50 ms" "$(result fanout_ack_p50_ms "$F")"
printf '%-52s %12s\n' "fanout to $N_SUBS subs, response->last: p99 ms" "$(result fanout_ack_p99_ms "$F")"
printf '%-52s %12s\n' "fanout to $N_SUBS subs, response->last: max ms" "$(result fanout_ack_max_ms "$F")"
printf '%-52s %12s\n' "fanout to $N_SUBS subs, put sent->last: p50 ms" "$(result fanout_sent_p50_ms "$F")"
printf '%-52s %12s\n' "fanout to $N_SUBS subs, put sent->last: p99 ms" "$(result fanout_sent_p99_ms "$F")"
printf '%-52s %12s\n' "socket put round trip: p50 ms" "$(result put_rtt_p50_ms "$F")"
printf '%-52s %12s\n' "fanout first->last delivery: p99 ms" "$(result fanout_spread_p99_ms "$F")"
printf '%-52s %12s\n' "bench client CPU per change (reading $N_SUBS events) ms" "$(result fanout_client_cpu_ms "$F")"
