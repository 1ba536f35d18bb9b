#!/bin/sh
# SPDX-License-Identifier: MIT
#
# scale.sh: certd with N certificates (100,000 by default) across TEAMS
# teams (100), against issue 18's point 3: process start to /healthz,
# resident set after start, after listing every team page by page and
# after random socket GETs, and socket GET of random ids beside redis GET
# of as many keys of the same payload size, in the same run.
#
# Usage: tests/bench/scale.sh   (as root if redis must be installed).
# Knobs: N=100000 TEAMS=100 GET_CONNS=32 GET_SECONDS=10 CERTD_BUILDDIR,
# KEEP_TMP=1.  Run it with nothing else running on the machine.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N:=100000}"
: "${TEAMS:=100}"
: "${GET_CONNS:=32}"
: "${GET_SECONDS:=10}"
CERTD="$CERTD_BUILDDIR/certd"
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-scale.XXXXXX")
CERTD_PID= REDIS_PID=
cleanup() {
	set +e
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	[ -n "$REDIS_PID" ] && kill -KILL "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# kept $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "# $*"; }
die() { echo "scale.sh: $*" >&2; exit 1; }
rss_kb() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

. "$SRC/tests/bench/lib.sh"
bench_need redis-server redis-server redis-tools
bench_need redis-benchmark redis-server redis-tools
[ -x "$CERTD" ] || die "no $CERTD: build certd first"
bench_pki
bench_sockbench

D="$T/data"; S="$T/certd.sock"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
out=$("$CERTD_BUILDDIR/certctl" token new --name bench --teams '*' --role read)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
# start_certd: start certd, wait for /healthz; sets CERTD_PID, PORT,
# START_MS (exec to the first 200 of /healthz).
start_certd() {
	: > "$LOG"
	t0=$(now_ms)
	"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$S" \
	    --log-level info 2> "$LOG" &
	CERTD_PID=$!
	PORT=
	while :; do
		kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; die "certd died"; }
		[ -n "$PORT" ] || PORT=$(sed -n 's/.*certd ready listen=[^ ]*:\([0-9]*\) .*/\1/p' "$LOG")
		[ -n "$PORT" ] && curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
		[ $(( $(now_ms) - t0 )) -lt 120000 ] || die "certd not ready after 120 s"
		sleep 0.005
	done
	START_MS=$(( $(now_ms) - t0 ))
}
stop_certd() { kill -TERM "$CERTD_PID"; wait "$CERTD_PID" || die "certd exited $?"; CERTD_PID=; }

start_certd
say "creating $N certificates in $TEAMS teams (leaf-rsa.chain.pem + key, over the socket)"
"$BENCH" create "$S" 16 "$N" "$TEAMS" "$T/pki/leaf-rsa.chain.pem" \
    "$T/pki/leaf-rsa.key" | tee "$T/create.out"
RSS_CREATED=$(rss_kb "$CERTD_PID")
stop_certd
DATA_KB=$(du -sk "$D" | cut -f1)

start_certd
RSS_START=$(rss_kb "$CERTD_PID")
say "restart with $N certificates: /healthz after $START_MS ms, RSS $RSS_START kB"

# Every team, page by page (500 a page); the ids become the GET list.
: > "$T/list"
t=0
while [ "$t" -lt "$TEAMS" ]; do
	p=1
	while :; do
		curl -sf -H "Authorization: $TOKEN" \
		    "http://127.0.0.1:$PORT/openapi/v1/teams/t$t/certificates?page=$p&page_size=500" \
		    > "$T/page" || die "list t$t page $p failed"
		n=$(grep -o '"id":[0-9]*' "$T/page" | tee "$T/ids" | wc -l)
		sed "s/\"id\":/t$t /" "$T/ids" >> "$T/list"
		[ "$n" -eq 500 ] || break
		p=$((p + 1))
	done
	t=$((t + 1))
done
LISTED=$(wc -l < "$T/list")
[ "$LISTED" -eq "$N" ] || die "listed $LISTED certificates, not $N"
RSS_LISTED=$(rss_kb "$CERTD_PID")
say "listed all $LISTED: RSS $RSS_LISTED kB"

SOCKBENCH_SERVER_PID=$CERTD_PID "$BENCH" get "$S" "$GET_CONNS" "$GET_SECONDS" \
    @"$T/list" | tee "$T/get.out"
RSS_GETS=$(rss_kb "$CERTD_PID")
result() { sed -n "s/^RESULT .*\<$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }
GET_RPS=$(result get_rps "$T/get.out")
SIZE=$(result get_payload "$T/get.out")
stop_certd

# redis: N keys key:000000000000.. of SIZE bytes, GETs of random ones.
redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --appendonly no \
    --daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
i=0
until redis-cli -s "$T/redis.sock" ping 2>/dev/null | grep -q PONG; do
	kill -0 "$REDIS_PID" 2>/dev/null || die "redis died"
	i=$((i + 1)); [ "$i" -le 100 ] || die "redis not ready"
	sleep 0.1
done
awk -v n="$N" -v size="$SIZE" 'BEGIN {
	v = sprintf("%*s", size, ""); gsub(/ /, "x", v)
	for (i = 0; i < n; i++) {
		k = sprintf("key:%012d", i)
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
	}
}' | redis-cli -s "$T/redis.sock" --pipe > "$T/redis-fill.log" 2>&1 ||
    { cat "$T/redis-fill.log" >&2; die "cannot fill redis"; }
[ "$(redis-cli -s "$T/redis.sock" dbsize)" = "$N" ] || die "redis holds $(redis-cli -s "$T/redis.sock" dbsize) keys"
RN=$(awk -v r="$GET_RPS" -v s="$GET_SECONDS" 'BEGIN { n = int(r * s); if (n < 200000) n = 200000; print n }')
redis-benchmark -s "$T/redis.sock" -t get -r "$N" -c "$GET_CONNS" -n "$RN" -q \
    2>&1 | tr '\r' '\n' | grep -v '^ *$' | tail -n 1 | tee "$T/redis.out"
MISSES=$(redis-cli -s "$T/redis.sock" info stats | tr -d '\r' | sed -n 's/^keyspace_misses://p')
[ "$MISSES" = 0 ] || die "redis GET missed $MISSES times"
REDIS_RPS=$(sed -n 's/.*GET: *\([0-9.]*\) requests per second.*/\1/p' "$T/redis.out" | tail -n 1)
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" || true; REDIS_PID=

MIB() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "== scale: $N certificates in $TEAMS teams ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs)"
printf '%-44s %14s %14s\n' metric value target
printf '%-44s %14s %14s\n' "create, certificates/s (socket, 16 conns)" "$(result create_rps "$T/create.out")" -
printf '%-44s %14s %14s\n' "data dir, MiB" "$(MIB "$DATA_KB")" -
printf '%-44s %14s %14s\n' "RSS after creating them, MiB" "$(MIB "$RSS_CREATED")" -
printf '%-44s %14s %14s\n' "restart to /healthz, ms" "$START_MS" "< 1000"
printf '%-44s %14s %14s\n' "RSS after start, MiB" "$(MIB "$RSS_START")" "< 64"
printf '%-44s %14s %14s\n' "RSS after listing every team, MiB" "$(MIB "$RSS_LISTED")" "< 64"
printf '%-44s %14s %14s\n' "RSS after ${GET_SECONDS} s of random GETs, MiB" "$(MIB "$RSS_GETS")" "< 64"
printf '%-44s %14s %14s\n' "socket GET of random ids, req/s" "$GET_RPS" -
printf '%-44s %14s %14s\n' "redis GET of random keys ($N), req/s" "$REDIS_RPS" -
printf '%-44s %14s %14s\n' "ratio certd/redis" \
    "$(awk -v a="$GET_RPS" -v b="$REDIS_RPS" 'BEGIN { printf "%.2f", a / b }')" ">= 1"
echo "RESULT scale n=$N teams=$TEAMS start_ms=$START_MS rss_start_kb=$RSS_START" \
    "rss_listed_kb=$RSS_LISTED rss_gets_kb=$RSS_GETS rss_created_kb=$RSS_CREATED" \
    "data_kb=$DATA_KB get_rps=$GET_RPS redis_rps=$REDIS_RPS payload=$SIZE"
