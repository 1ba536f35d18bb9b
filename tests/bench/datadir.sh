#!/bin/sh
# SPDX-License-Identifier: MIT
#
# datadir.sh: the size of certd's data dir against issue 18's point 4: N
# certificates (10,000 by default) across TEAMS teams (100), each updated
# UPDATES times (10) with every version kept (history_keep = UPDATES + 1,
# the current one included), at most 2x the payload of the live versions
# plus the history, after a full compaction.
#
# certd gets the puts over its socket (sockbench update, CONNS at a time):
# the creates, then UPDATES rounds that update every certificate once.
# The versions hold CHAINS RSA-2048 leaves of the test intermediate, each
# with its own key (made here with certtool), in turn: version r of the
# k-th certificate holds chain and key r+k mod CHAINS, so that no update
# repeats the bytes it replaces.  The payload is what was sent: the PEM of
# chain and key, alias and type of every version (sockbench counts it).
# certd is then stopped with SIGTERM, its RocksDB compacted in full with
# `ldb compact` (Debian's rocksdb-tools, with the options certd left in
# the database), and the data dir measured with du -sb.  certd is started
# once more on the compacted dir and must list UPDATES + 1 versions of a
# certificate in its history.
#
# Usage: tests/bench/datadir.sh   (as root if rocksdb-tools must be
# installed).  Knobs: N=10000 TEAMS=100 UPDATES=10 CHAINS=UPDATES+1
# (at least 2) CONNS=16 CERTD_BUILDDIR, KEEP_TMP=1.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N:=10000}"
: "${TEAMS:=100}"
: "${UPDATES:=10}"
: "${CHAINS:=$((UPDATES + 1))}"
: "${CONNS:=16}"
CERTD="$CERTD_BUILDDIR/certd"
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-datadir.XXXXXX")
CERTD_PID=
cleanup() {
	set +e
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# kept $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "# $*"; }
die() { echo "datadir.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

[ "$CHAINS" -ge 2 ] || die "CHAINS must be at least 2"
[ "$UPDATES" -ge 1 ] && [ "$UPDATES" -lt 1000 ] || die "UPDATES must be 1..999"
. "$SRC/tests/bench/lib.sh"
bench_need ldb rocksdb-tools
[ -x "$CERTD" ] || die "no $CERTD: build certd first"
bench_pki
bench_sockbench

# CHAINS leaves of the test intermediate (two certtool runs at a time, as
# put.sh does): $T/chains/K.pem (leaf + intermediate) and K.key.
say "making $CHAINS RSA-2048 chains and keys"
mkdir -p "$T/chains"
from=$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S UTC')
until=$(date -u -d '+364 days' '+%Y-%m-%d %H:%M:%S UTC')
chain() {
	printf 'cn = "v%s.example.test"\ndns_name = "v%s.example.test"\n' \
	    "$1" "$1" > "$T/chains/$1.tmpl"
	printf 'activation_date = "%s"\nexpiration_date = "%s"\n' \
	    "$from" "$until" >> "$T/chains/$1.tmpl"
	printf 'signing_key\nencryption_key\ntls_www_server\n' >> "$T/chains/$1.tmpl"
	certtool --generate-privkey --no-text --key-type rsa --bits 2048 \
	    --outfile "$T/chains/$1.key" 2>/dev/null &&
	certtool --generate-certificate --no-text \
	    --load-privkey "$T/chains/$1.key" --template "$T/chains/$1.tmpl" \
	    --load-ca-certificate "$T/pki/int.pem" --load-ca-privkey "$T/pki/int.key" \
	    --outfile "$T/chains/$1.leaf" 2>/dev/null &&
	cat "$T/chains/$1.leaf" "$T/pki/int.pem" > "$T/chains/$1.pem"
}
k=1
while [ "$k" -le "$CHAINS" ]; do
	chain "$k" & chain "$((k + 1))" & wait
	k=$((k + 2))
done
PAIRS=
k=1
while [ "$k" -le "$CHAINS" ]; do
	[ -s "$T/chains/$k.pem" ] && [ -s "$T/chains/$k.key" ] || die "certtool failed for chain $k"
	PAIRS="$PAIRS $T/chains/$k.pem $T/chains/$k.key"
	k=$((k + 1))
done

D="$T/data"; S="$T/certd.sock"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
printf '[certd]\nhistory_keep = %s\n' "$((UPDATES + 1))" > "$T/certd.conf"
out=$("$CERTD_BUILDDIR/certctl" token new --name bench --teams '*' --role read)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
# start_certd: start certd, wait for /healthz; sets CERTD_PID and PORT.
start_certd() {
	: > "$LOG"
	t0=$(now_ms)
	"$CERTD" --config "$T/certd.conf" --data-dir "$D" --listen 127.0.0.1:0 \
	    --socket "$S" --log-level info 2> "$LOG" &
	CERTD_PID=$!
	PORT=
	while :; do
		kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; die "certd died"; }
		[ -n "$PORT" ] || PORT=$(sed -n 's/.*certd ready listen=[^ ]*:\([0-9]*\) .*/\1/p' "$LOG")
		[ -n "$PORT" ] && curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
		[ $(( $(now_ms) - t0 )) -lt 120000 ] || die "certd not ready after 120 s"
		sleep 0.005
	done
}
stop_certd() { kill -TERM "$CERTD_PID"; wait "$CERTD_PID" || die "certd exited $?"; CERTD_PID=; }
sum_sizes() { find "$D/db" -maxdepth 1 -type f -name "$1" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

start_certd
say "creating $N certificates in $TEAMS teams, then updating each $UPDATES times" \
    "(history_keep $((UPDATES + 1)), $CHAINS chains in turn, $CONNS connections)"
# shellcheck disable=SC2086 # PAIRS is a list of temporary paths
"$BENCH" update "$S" "$CONNS" "$N" "$TEAMS" "$UPDATES" $PAIRS | tee "$T/update.out"
result() { sed -n "s/^RESULT .*\<$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }
PAYLOAD=$(result update_payload "$T/update.out")
LIVE=$(result update_live "$T/update.out")
HISTORY=$(result update_history "$T/update.out")
SAMPLE=$(result update_sample_id "$T/update.out")
[ -n "$PAYLOAD" ] && [ "$PAYLOAD" -gt 0 ] || die "sockbench reported no payload"
stop_certd

[ -d "$D/db" ] || die "no database in $D: $(ls "$D")"
say "data dir after the run: $(ls "$D" | tr '\n' ' ')"
DATA_BEFORE=$(du -sb "$D" | cut -f1)
DB_BEFORE=$(du -sb "$D/db" | cut -f1)
say "before compaction: data dir $DATA_BEFORE bytes, db $DB_BEFORE"
t0=$(now_ms)
ldb --db="$D/db" compact > "$T/ldb.log" 2>&1 || { cat "$T/ldb.log" >&2; die "ldb compact failed"; }
COMPACT_MS=$(( $(now_ms) - t0 ))
DATA=$(du -sb "$D" | cut -f1)
DB=$(du -sb "$D/db" | cut -f1)
SST=$(sum_sizes '*.sst')
WAL=$(sum_sizes '*.log')
say "after ldb compact ($COMPACT_MS ms): data dir $DATA bytes, db $DB: tables $SST, WAL $WAL"
ls -l "$D/db" > "$T/db.ls"

# The compacted dir still serves the whole history.
start_certd
curl -sf -H "Authorization: $TOKEN" \
    "http://127.0.0.1:$PORT/openapi/v1/teams/t0/certificates/$SAMPLE/history" \
    > "$T/history" || die "history of t0/$SAMPLE failed"
VERSIONS=$(grep -o '"revision":[0-9]*' "$T/history" | wc -l)
[ "$VERSIONS" -eq "$((UPDATES + 1))" ] ||
    die "t0/$SAMPLE has $VERSIONS versions in its history, not $((UPDATES + 1))"
say "restarted on the compacted dir: t0/$SAMPLE lists $VERSIONS versions"
stop_certd

RATIO=$(awk -v a="$DATA" -v b="$PAYLOAD" 'BEGIN { printf "%.2f", a / b }')
MET=$(awk -v r="$RATIO" 'BEGIN { print (r + 0 <= 2) ? "met" : "missed" }')
echo
echo "== datadir: $N certificates in $TEAMS teams x $UPDATES updates," \
    "history_keep $((UPDATES + 1)) ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs)"
printf '%-44s %14s %14s\n' metric value target
printf '%-44s %14s %14s\n' "create, certificates/s (socket, $CONNS conns)" "$(result create_rps "$T/update.out")" -
printf '%-44s %14s %14s\n' "update, puts/s (socket, $CONNS conns)" "$(result update_rps "$T/update.out")" -
printf '%-44s %14s %14s\n' "payload of the current versions, bytes" "$LIVE" -
printf '%-44s %14s %14s\n' "payload of the older versions, bytes" "$HISTORY" -
printf '%-44s %14s %14s\n' "payload, live + history, bytes" "$PAYLOAD" -
printf '%-44s %14s %14s\n' "data dir before compaction, bytes" "$DATA_BEFORE" -
printf '%-44s %14s %14s\n' "data dir after compaction, bytes" "$DATA" -
printf '%-44s %14s %14s\n' "  of which db (tables $SST, WAL $WAL)" "$DB" -
printf '%-44s %14s %14s\n' "ratio data dir / payload" "$RATIO" "<= 2"
echo "RESULT datadir n=$N teams=$TEAMS updates=$UPDATES chains=$CHAINS" \
    "payload_bytes=$PAYLOAD live_bytes=$LIVE history_bytes=$HISTORY" \
    "data_bytes=$DATA db_bytes=$DB sst_bytes=$SST wal_bytes=$WAL" \
    "data_bytes_before=$DATA_BEFORE db_bytes_before=$DB_BEFORE compact_ms=$COMPACT_MS" \
    "ratio=$RATIO result=$MET create_rps=$(result create_rps "$T/update.out")" \
    "update_rps=$(result update_rps "$T/update.out")"
