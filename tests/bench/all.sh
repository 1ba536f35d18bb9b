#!/bin/sh
# SPDX-License-Identifier: MIT
#
# all.sh: every benchmark of issue 18 in one go, and one table: each
# figure, its peer measured in the same run, the ratio and the target.
#
#   1. json.sh: the JSON libraries on certd's PUT body (table only).
#   2. put.sh CHAINS=64: every PUT validated (64 RSA-2048 chains), against
#      etcd's JSON gateway and the validation floor, 32 and 128 connections.
#   3. put.sh: the stored certificate with metadata changing, against etcd.
#   4. socket.sh: fan-out to 1,000 subscribers of one team, and socket GET
#      against redis GET.
#   5. scale.sh: 100,000 certificates in 100 teams: restart to /healthz,
#      resident set, socket GET of random ids against redis at that size.
#   6. datadir.sh: the data dir of 10,000 certificates updated 10 times,
#      every version kept, after a full compaction, against the payload of
#      the live versions and the history.
#   7. fleet.sh (issue 19): 3 etcd members and 20 certd nodes: a put on
#      one node to the last node's subscriber, and fleet writes beside
#      etcd's own transactions of the same size.
#
# Usage: tests/bench/all.sh   (as root the first time: the benchmarks
# install wrk, etcd-server, redis, rocksdb-tools and the JSON libraries
# with apt-get).
# Knobs: DURATION=10 (seconds a measured run), CERTD_BUILDDIR.  Run it with
# nothing else running on the machine.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${DURATION:=10}"
export CERTD_BUILDDIR
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-allbench.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
start=$(date +%s)
say() { echo "# $*" >&2; }
die() { echo "all.sh: $*" >&2; exit 1; }

say "json.sh"
sh "$SRC/tests/bench/json.sh" > "$T/json.log" 2>&1 || { cat "$T/json.log"; die "json.sh failed"; }
say "put.sh CHAINS=64 (every PUT validated)"
CHAINS=64 ETCD=1 FLOOR=1 CONNS="32 128" DURATION="$DURATION" WARMUP=2 \
    sh "$SRC/tests/bench/put.sh" > "$T/validated.log" 2>&1 ||
    { tail -n 30 "$T/validated.log"; die "put.sh CHAINS=64 failed"; }
say "put.sh (metadata changing)"
ETCD=1 FLOOR=0 CONNS="32 128" DURATION="$DURATION" WARMUP=2 \
    sh "$SRC/tests/bench/put.sh" > "$T/metadata.log" 2>&1 ||
    { tail -n 30 "$T/metadata.log"; die "put.sh failed"; }
say "socket.sh (fan-out to 1000, GET against redis)"
N_SUBS=1000 N_CHANGES=200 GET_SECONDS="$DURATION" \
    sh "$SRC/tests/bench/socket.sh" > "$T/socket.log" 2>&1 ||
    { tail -n 30 "$T/socket.log"; die "socket.sh failed"; }
say "scale.sh (100,000 certificates)"
GET_SECONDS="$DURATION" sh "$SRC/tests/bench/scale.sh" > "$T/scale.log" 2>&1 ||
    { tail -n 30 "$T/scale.log"; die "scale.sh failed"; }
say "datadir.sh (10,000 certificates x 10 updates, compacted)"
sh "$SRC/tests/bench/datadir.sh" > "$T/datadir.log" 2>&1 ||
    { tail -n 30 "$T/datadir.log"; die "datadir.sh failed"; }
say "fleet.sh (3 etcd members, 20 certd nodes)"
sh "$SRC/tests/bench/fleet.sh" > "$T/fleet.log" 2>&1 ||
    { tail -n 30 "$T/fleet.log"; die "fleet.sh failed"; }

# v FILE SELECTOR KEY: KEY's value on the RESULT lines of FILE that match
# SELECTOR (a fixed string), the last one.
v() { grep "^RESULT.*$2" "$1" | sed -n "s/.* $3=\([^ ]*\).*/\1/p" | tail -n 1; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? "met" : "missed" }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0) ? "met" : "missed" }'; }

echo
echo "== issue 18 benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
    "$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs," \
    "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1))"
echo
row figure certd peer ratio target result
row --- --- --- --- --- ---
J=$(grep 'certd (yajl' "$T/json.log" | grep -v '^RESULT' | head -n 1 | cut -d'|' -f3,4 | tr -s ' ' | tr '|' ',')
JJ=$(grep 'jansson' "$T/json.log" | grep -v '^RESULT' | head -n 1 | cut -d'|' -f3,4 | tr -s ' ' | tr '|' ',')
row "JSON decode, encode of a PUT (us)" "$J" "jansson: $JJ" - "faster than jansson" "see doc"
for c in 32 128; do
	f=$T/validated.log
	a=$(v "$f" "server=certd conns=$c " rps) e=$(v "$f" "server=etcd conns=$c " rps)
	fl=$(v "$f" "server=floor conns=$c " rps)
	row "validated PUT req/s, $c conns" "$a" "etcd $e" "$(ratio "$a" "$e")" ">= 1.5" "$(atleast "$(ratio "$a" "$e")" 1.5)"
	row "validated PUT req/s, $c conns" "$a" "floor $fl" "$(ratio "$a" "$fl")" ">= 0.6" "$(atleast "$(ratio "$a" "$fl")" 0.6)"
	a=$(v "$f" "server=certd conns=$c " p99_ms) e=$(v "$f" "server=etcd conns=$c " p99_ms)
	row "validated PUT p99 ms, $c conns" "$a" "etcd p99 $e" "$(ratio "$a" "$e")" "< etcd p99" "$(below "$a" "$e")"
	f=$T/metadata.log
	a=$(v "$f" "server=certd conns=$c " rps) e=$(v "$f" "server=etcd conns=$c " rps)
	row "metadata PUT req/s, $c conns" "$a" "etcd $e" "$(ratio "$a" "$e")" ">= 3" "$(atleast "$(ratio "$a" "$e")" 3)"
	a=$(v "$f" "server=certd conns=$c " p99_ms) e=$(v "$f" "server=etcd conns=$c " p50_ms)
	row "metadata PUT p99 ms, $c conns" "$a" "etcd p50 $e" "$(ratio "$a" "$e")" "< etcd p50" "$(below "$a" "$e")"
	a=$(v "$f" "server=certd conns=$c " write_bytes_per_req)
	b=$(grep -o 'body [0-9]* B' "$f" | head -n 1 | tr -dc 0-9)
	row "bytes written per metadata PUT, $c conns" "$a" "body $b" "$(ratio "$a" "$b")" "<= 3" "$(awk -v r="$(ratio "$a" "$b")" 'BEGIN { print (r + 0 <= 3) ? "met" : "missed" }')"
done
f=$T/socket.log
a=$(v "$f" fanout_sent fanout_sent_p99_ms)
row "fan-out to 1000, put sent to last delivery p99 ms" "$a" - - "<= 10" "$(awk -v a="$a" 'BEGIN { print (a + 0 <= 10) ? "met" : "missed" }')"
a=$(v "$f" fanout_order_errors fanout_order_errors)
row "fan-out, events out of order or missing" "$a" - - 0 "$( [ "$a" = 0 ] && echo met || echo missed)"
f=$T/scale.log
a=$(v "$f" "scale " start_ms)
row "100,000 certificates: restart to /healthz ms" "$a" - - "< 1000" "$(below "$a" 1000)"
for k in start listed gets; do
	a=$(awk -v k="$(v "$f" "scale " rss_${k}_kb)" 'BEGIN { printf "%.1f", k / 1024 }')
	row "100,000 certificates: RSS MiB after $k" "$a" - - "< 64" "$(below "$a" 64)"
done
a=$(v "$f" "scale " get_rps) r=$(v "$f" "scale " redis_rps)
row "socket GET of random ids, 100,000 certs, req/s" "$a" "redis $r" "$(ratio "$a" "$r")" ">= 1" "$(atleast "$(ratio "$a" "$r")" 1)"
f=$T/datadir.log
a=$(v "$f" "datadir " data_bytes) p=$(v "$f" "datadir " payload_bytes)
row "data dir of $(v "$f" "datadir " n) certs x $(v "$f" "datadir " updates) updates, compacted, bytes" \
    "$a" "payload $p" "$(ratio "$a" "$p")" "<= 2" \
    "$(awk -v r="$(ratio "$a" "$p")" 'BEGIN { print (r + 0 <= 2) ? "met" : "missed" }')"
f=$T/fleet.log
a=$(v "$f" "fleet " p99_ms)
row "fleet of $(v "$f" "fleet " nodes): put to the last node's subscriber p99 ms" "$a" \
    "p50 $(v "$f" "fleet " p50_ms)" - "< 100" "$(below "$a" 100)"
a=$(v "$f" "fleet " update_rps) e=$(v "$f" "fleet " etcd_txn_rps)
row "fleet updates/s (node 1's socket)" "$a" "etcd txn $e" "$(ratio "$a" "$e")" - -
echo
echo "all.sh took $(( $(date +%s) - start )) s"
for l in validated metadata; do
	echo "RESULT-LOG $l"; grep '^RESULT' "$T/$l.log"
done
grep '^RESULT' "$T/socket.log" "$T/scale.log" "$T/datadir.log" "$T/fleet.log"
