#!/bin/sh
# SPDX-License-Identifier: MIT
#
# fleet.sh: issue 19 point 8.  Three etcd members and NODES certd nodes
# (20) on loopback, one socket subscriber per node: the time from a put on
# node 1 to the last node's subscriber delivery (p50/p99 over CHANGES
# changes, sockbench fanout over every node's socket); then fleet write
# throughput (creates and updates over node 1's socket, sockbench update)
# beside etcd's own transactions of the same value size (curl's parallel
# POSTs to /v3/kv/txn), in the same run.
#
# Usage: tests/bench/fleet.sh (etcd-server installed, or run as root).
# Knobs: NODES=20 CHANGES=200 COUNT=200 ROUNDS=2 CONNS=8 CERTD_BUILDDIR
# KEEP_TMP=1.  Run it with nothing else running on the machine.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${NODES:=20}"
: "${CHANGES:=200}"
: "${COUNT:=200}"
: "${ROUNDS:=2}"
: "${CONNS:=8}"
CERTD="$CERTD_BUILDDIR/certd"
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-fleet.XXXXXX")
ETCD_N=0 NODE_PIDS=
say() { echo "# $*"; }
die() { echo "fleet.sh: $*" >&2; exit 1; }
cleanup() {
	set +e
	for p in $NODE_PIDS; do kill -KILL "$p" 2>/dev/null; done
	etcd_cleanup
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# kept $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$SRC/tests/bench/lib.sh"
bench_need etcd etcd-server
[ -x "$CERTD" ] || die "no $CERTD: build certd first"
# shellcheck source=../integration/etcdlib.sh
. "$SRC/tests/integration/etcdlib.sh"
bench_sockbench
bench_pki

etcd_cluster 3 || die "etcd cluster did not start"
say "etcd $(etcd --version 2>/dev/null | head -n 1 | awk '{print $3}'), 3 members: $ETCD_URLS"
head -c 32 /dev/urandom > "$T/fleet.key"; chmod 600 "$T/fleet.key"
out=$("$CERTD_BUILDDIR/certctl" token new --name bench --teams '*' --role write)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$T/tokens"; chmod 600 "$T/tokens"

# the nodes, started a few at a time
SOCKS= i=1
while [ "$i" -le "$NODES" ]; do
	d="$T/n$i"; mkdir -m 700 "$d"; cp "$T/tokens" "$d/tokens"
	"$CERTD" --data-dir "$d" --listen 127.0.0.1:0 --log-level warn \
	    --etcd "$ETCD_URLS" --fleet-key "$T/fleet.key" --node "n$i" \
	    2> "$T/n$i.log" &
	NODE_PIDS="$NODE_PIDS $!"
	SOCKS="${SOCKS:+$SOCKS,}$d/certd.sock"
	i=$((i + 1))
done
for i in $(seq 1 "$NODES"); do
	k=0
	until [ -S "$T/n$i/certd.sock" ]; do
		k=$((k + 1)); [ "$k" -lt 600 ] || die "node $i not ready: $(tail -n 3 "$T/n$i.log")"
		sleep 0.1
	done
done
say "$NODES certd nodes up"

# --- fleet writes: creates, then updates, over node 1's socket ---------------
leaf2() {	# a second RSA leaf of the test intermediate, so updates change bytes
	certtool --generate-privkey --key-type rsa --bits 2048 --outfile "$T/l2.key" > /dev/null 2>&1
	printf 'cn = "fleet.example.test"\ndns_name = "fleet.example.test"\nexpiration_days = 30\ntls_www_server\n' > "$T/l2.tmpl"
	certtool --generate-certificate --load-privkey "$T/l2.key" \
	    --load-ca-certificate "$T/pki/int.pem" --load-ca-privkey "$T/pki/int.key" \
	    --template "$T/l2.tmpl" --outfile "$T/l2.pem" > /dev/null 2>&1
	cat "$T/l2.pem" "$T/pki/int.pem" > "$T/l2.chain.pem"
}
leaf2
say "writes: $COUNT creates then $ROUNDS rounds of updates, $CONNS connections, on node 1"
"$BENCH" update "$T/n1/certd.sock" "$CONNS" "$COUNT" 1 "$ROUNDS" \
    "$T/pki/leaf-rsa.chain.pem" "$T/pki/leaf-rsa.key" "$T/l2.chain.pem" "$T/l2.key" |
    tee "$T/update.out"
result() { sed -n "s/^RESULT .*\<$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }
ID=$(result update_sample_id "$T/update.out")
[ -n "$ID" ] || die "no certificate made"
CREATE_RPS=$(result create_rps "$T/update.out")
UPDATE_RPS=$(result update_rps "$T/update.out")
sleep 2	# every mirror catches up

# --- a put on node 1 to the last node's subscriber ---------------------------
say "fan-out: one subscriber on each of the $NODES nodes, $CHANGES changes"
"$BENCH" fanout "$SOCKS" "$NODES" "$CHANGES" t0 "$ID" | tee "$T/fanout.out"
grep -q '^RESULT fanout_subs=' "$T/fanout.out" || die "fanout failed"
P50=$(result fanout_sent_p50_ms "$T/fanout.out")
P99=$(result fanout_sent_p99_ms "$T/fanout.out")
ORDER=$(result fanout_order_errors "$T/fanout.out")

# --- etcd's own transactions of the same size --------------------------------
VLEN=$(( $(wc -c < "$T/pki/leaf-rsa.chain.pem") + $(wc -c < "$T/pki/leaf-rsa.key") + 400 ))
V=$(head -c "$VLEN" /dev/urandom | base64 -w0)
printf '{"compare":[],"success":[{"request_put":{"key":"%s","value":"%s"}}]}' \
    "$(printf '/bench/raw' | base64 -w0)" "$V" > "$T/txn.json"
N_RAW=$(( COUNT * (ROUNDS + 1) ))
t0=$(date +%s%N)
curl -s --no-progress-meter -Z --parallel-max "$CONNS" -o /dev/null -X POST --data-binary @"$T/txn.json" \
    "$ETCD_URL_1/v3/kv/txn#[1-$N_RAW]" || die "etcd txns failed"
t1=$(date +%s%N)
RAW_RPS=$(awk -v n="$N_RAW" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')

echo
echo "== fleet: $NODES nodes, 3 etcd members ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs)"
printf '%-56s %12s %12s\n' metric value target
printf '%-56s %12s %12s\n' "put on node 1 -> last node's subscriber, p50 ms" "$P50" -
printf '%-56s %12s %12s\n' "put on node 1 -> last node's subscriber, p99 ms" "$P99" "< 100"
printf '%-56s %12s %12s\n' "events out of order or missing" "${ORDER:-?}" 0
printf '%-56s %12s %12s\n' "fleet creates/s ($CONNS conns, node 1)" "$CREATE_RPS" -
printf '%-56s %12s %12s\n' "fleet updates/s ($CONNS conns, node 1)" "$UPDATE_RPS" -
printf '%-56s %12s %12s\n' "etcd txns/s, same value size (curl, $CONNS parallel)" "$RAW_RPS" -
echo "RESULT fleet nodes=$NODES changes=$CHANGES p50_ms=$P50 p99_ms=$P99 order_errors=${ORDER:-} create_rps=$CREATE_RPS update_rps=$UPDATE_RPS etcd_txn_rps=$RAW_RPS value_bytes=$VLEN"
