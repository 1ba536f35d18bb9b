#!/bin/sh
# SPDX-License-Identifier: MIT
# Durable PUT benchmark of certd's REST API, run on demand (not by make
# check), with etcd measured side by side in the same run (SPEC section 7:
# validated, durable PUT throughput at least 3x etcd's).
#
#   1. certd: a fresh daemon on a temporary data dir; N_CERTS certificates
#      (leaf-rsa.chain.pem + leaf-rsa.key from tests/pki/gen-pki.sh) are
#      created in team "bench".  wrk (tests/bench/put.lua) then sends PUT
#      /openapi/v1/teams/bench/certificates/ID with the full body (alias,
#      certificate, private_key, certificate_type), certificate_type
#      flipping client/server per certificate, so every request is
#      validated (GnuTLS parse + key match) and written with a synced
#      RocksDB write.  One run per connection count in CONNS.
#   2. etcd: the Debian etcd-server, started on loopback on a temporary data
#      dir with its defaults (WAL fsync per commit), gets POST /v3/kv/put
#      through its JSON gateway, N_CERTS keys, a value as large as certd's
#      request body.  Same connection counts, same wrk settings.
#   3. the floor (tests/bench/floor.c): evhttp and certd's JSON alone, FLOOR_PROCS
#      processes (default: one per CPU) with one event loop each on one
#      port, sent certd's requests; each body is decoded and the answer
#      encoded, nothing validated or stored.  The most certd could do with
#      the SPEC's libraries on this machine.  FLOOR=0 leaves it out.
#
# Each run is preceded by a WARMUP-second wrk run that is not recorded.
# Every run is checked: no wrk errors and no answer >= 400, and the server
# revision advanced by at least the number of answered requests (so each
# PUT was a real write; at most the in-flight ones at the end may be extra).
#
# Usage: tests/bench/put.sh   (as root if wrk or etcd-server must be
# installed with apt-get).  Knobs (environment): CONNS="32 128" THREADS=2
# DURATION=15 WARMUP=3 N_CERTS=128, ALT_CERT=1 (a PUT to client also swaps
# in leaf-rsa2.pem and its key, a PUT to server leaf-rsa.chain.pem and its
# key, so that the certificate itself changes too), PERF_DIR=DIR (record
# certd with perf during each measured run into DIR/perf-put-cCONNS.data;
# perf slows certd, don't use those numbers), PERF_ARGS (default -g; use
# "--call-graph dwarf -F 499" for usable stacks, certd is built without
# frame pointers), CHAINS=N (N >= 2: every PUT validated: N RSA-2048
# leaves of the test intermediate, each with its own key, and each target's
# PUTs go through them in turn, so that no PUT reuses a validation; the
# issue-18 workload is CHAINS=64), KEEP_TMP=1, ETCD=0 (certd alone, no ratio: for A/B runs
# of two certd builds, alternated in one session; CERTD_BUILDDIR picks the
# build).
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${CONNS:=32 128}"
: "${THREADS:=2}"
: "${DURATION:=15}"
: "${WARMUP:=3}"
: "${N_CERTS:=128}"
: "${ALT_CERT:=}"
: "${CHAINS:=0}"
: "${PERF_DIR:=}"
: "${PERF_ARGS:=-g}"
: "${ETCD:=1}"
: "${FLOOR:=1}"
: "${FLOOR_PROCS:=$(nproc)}"
CERTD="$CERTD_BUILDDIR/certd"
CERTCTL="$CERTD_BUILDDIR/certctl"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
LUA="$SRC/tests/bench/put.lua"
TEAM=bench

T=$(mktemp -d "${TMPDIR:-/tmp}/certd-putbench.XXXXXX")
chmod 755 "$T"
CERTD_PID=
ETCD_PID=
FLOOR_PID=
PERF_PID=
WRK_PID=

cleanup() {
	set +e
	[ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null && wait "$WRK_PID"
	[ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID"
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	[ -n "$ETCD_PID" ] && kill -KILL "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID"
	[ -n "$FLOOR_PID" ] && kill -KILL "$FLOOR_PID" 2>/dev/null && wait "$FLOOR_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else
		echo "# temporary files kept in $T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "# $*"; }
die() { echo "put.sh: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------
need=
command -v wrk > /dev/null || need="$need wrk"
[ "$ETCD" = 0 ] || command -v etcd > /dev/null || need="$need etcd-server"
if [ -n "$need" ]; then
	[ "$(id -u)" = 0 ] || die "missing:$need; run as root to install them"
	say "installing$need"
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q $need; } > "$T/apt.log" 2>&1 ||
	    { tail -n 20 "$T/apt.log" >&2; die "apt-get failed"; }
	# The Debian package may start its own etcd (systemd); ours has its
	# own ports and data dir, so that one does not matter.
fi
[ -x "$CERTD" ] && [ -x "$CERTCTL" ] || (cd "$CERTD_BUILDDIR" && make certd certctl)
[ -x "$JTOOL" ] || (cd "$CERTD_BUILDDIR" && make tests/integration/jtool)
command -v curl > /dev/null || die "curl is needed"
sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
    { tail -n 20 "$T/pki.log" >&2; die "gen-pki.sh failed"; }
# CHAINS=N: N leaves of the test intermediate (two certtool runs at a time),
# their bodies (alias %%ALIAS%%) in $T/chains/K.json, listed in chains.list.
if [ "$CHAINS" -ge 2 ]; then
	mkdir -p "$T/chains"
	from=$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S UTC')
	until=$(date -u -d '+364 days' '+%Y-%m-%d %H:%M:%S UTC')
	chain() {
		printf 'cn = "c%s.example.test"\ndns_name = "c%s.example.test"\n' \
		    "$1" "$1" > "$T/chains/$1.tmpl"
		printf 'activation_date = "%s"\nexpiration_date = "%s"\n' \
		    "$from" "$until" >> "$T/chains/$1.tmpl"
		printf 'signing_key\nencryption_key\ntls_www_server\n' \
		    >> "$T/chains/$1.tmpl"
		certtool --generate-privkey --no-text --key-type rsa --bits 2048 \
		    --outfile "$T/chains/$1.key" 2>/dev/null &&
		certtool --generate-certificate --no-text \
		    --load-privkey "$T/chains/$1.key" --template "$T/chains/$1.tmpl" \
		    --load-ca-certificate "$T/pki/int.pem" \
		    --load-ca-privkey "$T/pki/int.key" \
		    --outfile "$T/chains/$1.leaf" 2>/dev/null &&
		cat "$T/chains/$1.leaf" "$T/pki/int.pem" > "$T/chains/$1.pem" &&
		"$JTOOL" make alias=%%ALIAS%% certificate=@"$T/chains/$1.pem" \
		    private_key=@"$T/chains/$1.key" certificate_type=server \
		    > "$T/chains/$1.json"
	}
	k=1
	while [ "$k" -le "$CHAINS" ]; do
		chain "$k" & chain "$((k + 1))" & wait
		k=$((k + 2))
	done
	k=1; : > "$T/chains.list"
	while [ "$k" -le "$CHAINS" ]; do
		[ -s "$T/chains/$k.json" ] || die "cannot make chain $k"
		echo "$T/chains/$k.json" >> "$T/chains.list"; k=$((k + 1))
	done
fi

# cpu_ticks "PID...": user + system clock ticks used so far by the PIDs.
cpu_ticks() {
	for p in $1; do sed 's/.*) //' "/proc/$p/stat"; done |
	    awk '{ n += $12 + $13 } END { print n }'
}
HZ=$(getconf CLK_TCK)
# io_bytes "PID...": bytes the PIDs have caused to be written to storage
# (/proc/PID/io write_bytes), their sum.
io_bytes() {
	for p in $1; do sed -n 's/^write_bytes: //p' "/proc/$p/io"; done |
	    awk '{ n += $1 } END { printf "%.0f\n", n }'
}
# thread_ticks PID: "NAME TICKS" per thread name of PID (threads of one
# name summed; RocksDB names its pools rocksdb:low and rocksdb:high).
thread_ticks() {
	for t in /proc/"$1"/task/*; do
		printf '%s ' "$(tr ' ' _ < "$t/comm")"
		sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }'
	done 2>/dev/null | awk '{ n[$1] += $2 } END { for (k in n) print k, n[k] }' | sort
}
# result KEY FILE: the value of KEY on the RESULT line of FILE.
result() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }
# child_secs FILE: user + system seconds of this shell's waited-for
# children, from the output of `times` (run in this shell, not in a
# subshell, whose children are others) in FILE.
child_secs() {
	sed -n 2p "$1" | sed 's/m/ /g; s/s//g' |
	    awk '{ printf "%.3f", $1 * 60 + $2 + $3 * 60 + $4 }'
}

# run_wrk NAME CONNS PID URL LUA-ARGS...: warm up, then one measured run
# into $T/NAME-cCONNS.out; appends the server's CPU per request (us) to
# the RESULT line.
run_wrk() {
	name=$1 c=$2 pid=$3 url=$4; shift 4
	revision_$name > /dev/null
	wrk -t"$THREADS" -c"$c" -d"${WARMUP}s" --timeout 10s -s "$LUA" "$url" -- \
	    "$THREADS" "$@" > "$T/$name-c$c.warmup" 2>&1 ||
	    { cat "$T/$name-c$c.warmup" >&2; die "wrk warm-up failed"; }
	out="$T/$name-c$c.out"
	if [ -n "$PERF_DIR" ] && [ "$name" = certd ]; then
		perf record $PERF_ARGS -o "$PERF_DIR/perf-put-c$c.data" -p "$pid" \
		    > "$T/perf.log" 2>&1 &
		PERF_PID=$!
		sleep 0.5
	fi
	rev0=$(revision_$name); [ -n "$rev0" ] || die "$name: no revision"
	c0=$(cpu_ticks "$pid")
	io0=$(io_bytes "$pid")
	[ "$name" != certd ] || thread_ticks "$pid" > "$T/threads0"
	times > "$T/times"; w0=$(child_secs "$T/times")
	wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --timeout 10s --latency -s "$LUA" "$url" -- \
	    "$THREADS" "$@" > "$out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || { WRK_PID=; cat "$out" >&2; die "wrk failed"; }
	WRK_PID=
	c1=$(cpu_ticks "$pid")
	io1=$(io_bytes "$pid")
	[ "$name" != certd ] || thread_ticks "$pid" > "$T/threads1"
	times > "$T/times"; w1=$(child_secs "$T/times")
	if [ -n "$PERF_PID" ]; then
		kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
	fi
	sleep 0.5	# let the requests in flight at the end commit
	rev1=$(revision_$name); [ -n "$rev1" ] || die "$name: no revision"
	sed 's/^/    /' "$out"
	grep -q '^RESULT ' "$out" || die "no RESULT line from wrk"
	n=$(result requests "$out")
	errs=0
	for k in status_errors connect_errors read_errors write_errors timeouts; do
		v=$(result "$k" "$out")
		[ "$v" = 0 ] || { echo "put.sh: $name c=$c: $k=$v" >&2; errs=1; }
	done
	[ "$errs" = 0 ] || die "$name c=$c: wrk reported errors (see above)"
	writes=$((rev1 - rev0))
	[ "$writes" -ge "$n" ] && [ "$writes" -le $((n + 2 * c)) ] ||
	    die "$name c=$c: $n answers but the revision moved by $writes"
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v n="$n" \
	    'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
	wcpu=$(awk -v a="$w0" -v b="$w1" -v n="$n" \
	    'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
	wb=$(awk -v a="$io0" -v b="$io1" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / n }')
	sed -i "s/^RESULT .*/& writes=$writes server_cpu_us=$cpu client_cpu_us=$wcpu write_bytes_per_req=$wb/" "$out"
	if [ "$name" = certd ]; then
		# CPU per request by thread: the event loop (certd), the REST
		# worker, the store's writer, RocksDB's flush and compaction.
		join -a 2 "$T/threads0" "$T/threads1" | awk -v hz="$HZ" -v n="$n" '
			NF == 2 { $3 = $2; $2 = 0 }
			{ printf "%s%s=%.1f", sep, $1, ($3 - $2) / hz * 1e6 / n; sep = " " }
			END { print "" }' > "$T/threads"
		say "certd c=$c: CPU per request by thread (us): $(cat "$T/threads")"
		sed -i "s/^RESULT .*/& threads_us=$(tr ' ' , < "$T/threads")/" "$out"
	fi
	say "$name c=$c: $n requests answered 2xx, revision +$writes," \
	    "CPU per request: server ${cpu} us, wrk ${wcpu} us"
}

# --- certd -------------------------------------------------------------------
D="$T/data"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
out=$("$CERTCTL" token new --name bench --teams '*' --role write)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$T/certd.sock" --log-level info \
    2> "$LOG" &
CERTD_PID=$!
i=0
until grep -q 'certd ready' "$LOG"; do
	kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; CERTD_PID=; die "certd died"; }
	i=$((i + 1)); [ "$i" -le 200 ] || die "certd not ready after 20 s"
	sleep 0.1
done
PORT=$(grep 'certd ready' "$LOG" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
[ -n "$PORT" ] || die "no port in the ready line: $(grep 'certd ready' "$LOG")"
URL="http://127.0.0.1:$PORT"
API="/openapi/v1/teams/$TEAM/certificates"

CERT="$T/pki/leaf-rsa.chain.pem" KEY="$T/pki/leaf-rsa.key"
"$JTOOL" make alias=%%ALIAS%% certificate=@"$CERT" private_key=@"$KEY" \
    certificate_type=%%TYPE%% > "$T/template-server.json"
if [ -n "$ALT_CERT" ]; then
	"$JTOOL" make alias=%%ALIAS%% certificate=@"$T/pki/leaf-rsa2.pem" \
	    private_key=@"$T/pki/leaf-rsa2.key" certificate_type=%%TYPE%% \
	    > "$T/template-client.json"
else
	cp "$T/template-server.json" "$T/template-client.json"
fi
: > "$T/targets"
k=1
while [ "$k" -le "$N_CERTS" ]; do
	"$JTOOL" make alias="put-$k" certificate=@"$CERT" private_key=@"$KEY" \
	    certificate_type=server > "$T/create.json"
	code=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: $TOKEN" \
	    -H 'Content-Type: application/json' -X POST --data-binary @"$T/create.json" \
	    "$URL$API")
	[ "$code" = 200 ] || die "create answered $code: $(head -c 300 "$T/out")"
	[ "$k" = 1 ] && cp "$T/out" "$T/reply.json"	# a PUT's answer, too
	echo "$("$JTOOL" get "$T/out" id) put-$k server" >> "$T/targets"
	k=$((k + 1))
done
# The two request bodies of certificate 1; their size is the etcd value size.
sed 's/%%ALIAS%%/put-1/; s/%%TYPE%%/client/' "$T/template-client.json" > "$T/value-a"
sed 's/%%ALIAS%%/put-1/; s/%%TYPE%%/server/' "$T/template-server.json" > "$T/value-b"
BODY=$(wc -c < "$T/value-b")
[ -z "$ALT_CERT" ] || BODY="$(wc -c < "$T/value-a")/$BODY"

# The floor under certd's CPU per PUT: certd's JSON code (src/json.c)
# decoding this body and encoding the answer, on one thread (json.sh
# compares the libraries).
gcc -O2 -Wall -Wextra -D_GNU_SOURCE -I"$SRC/src" -I"$SRC/include" \
    -o "$T/jsonbench" "$SRC/tests/bench/jsonbench.c" "$SRC/src/json.c" \
    "$SRC/src/util.c" $(pkg-config --cflags --libs yajl) ||
    die "cannot build jsonbench"
"$T/jsonbench" "$T/value-b" 20000 > "$T/json.out" || die "jsonbench failed"
say "JSON per PUT: decode $(result decode_us "$T/json.out") us" \
    "($(result request_bytes "$T/json.out") B), encode $(result encode_us "$T/json.out") us" \
    "($(result reply_bytes "$T/json.out") B)"

# revision_certd: print the store revision (the highest record revision:
# every write in this benchmark changes one of the records) and rewrite
# $T/targets as "ID ALIAS TYPE" with each record's stored certificate_type,
# so that put.lua's first PUT of each record flips it.
revision_certd() {
	set --
	while read -r id alias type; do set -- "$@" "$URL$API/$id"; done < "$T/targets"
	curl -s -w '\n' -H "Authorization: $TOKEN" "$@" > "$T/records"
	sed 's/.*"id":\([0-9]*\).*/\1/' "$T/records" > "$T/records.id"
	sed 's/.*"alias":"\([^"]*\)".*/\1/' "$T/records" > "$T/records.alias"
	sed 's/.*"certificate_type":"\([^"]*\)".*/\1/' "$T/records" > "$T/records.type"
	paste -d ' ' "$T/records.id" "$T/records.alias" "$T/records.type" > "$T/targets.new"
	[ "$(grep -c '^[0-9]* put-[0-9]* \(client\|server\)$' "$T/targets.new")" = "$N_CERTS" ] ||
	    die "cannot read the records back: $(head -c 300 "$T/records")"
	mv "$T/targets.new" "$T/targets"
	grep -o '"revision":[0-9]*' "$T/records" | cut -d: -f2 | sort -n | tail -n 1
}
revision_certd > /dev/null

say "certd $("$CERTD" --version 2>/dev/null | head -n 1 || true) pid $CERTD_PID on $URL," \
    "$N_CERTS certificates, request body $BODY bytes${ALT_CERT:+, certificate alternates}" \
    "$([ "$CHAINS" -lt 2 ] || echo ", every PUT one of $CHAINS chains")"
for c in $CONNS; do
	say "certd: wrk -t$THREADS -c$c -d${DURATION}s PUT $API/{id}"
	if [ "$CHAINS" -ge 2 ]; then
		run_wrk certd "$c" "$CERTD_PID" "$URL" certd "$TOKEN" \
		    "$T/targets" -list "$T/chains.list"
	else
		run_wrk certd "$c" "$CERTD_PID" "$URL" certd "$TOKEN" \
		    "$T/targets" "$T/template-client.json" "$T/template-server.json"
	fi
done
kill -TERM "$CERTD_PID"; wait "$CERTD_PID" || die "certd exited with $?"; CERTD_PID=

if [ "$ETCD" = 0 ]; then
	echo
	for c in $CONNS; do
		echo "RESULT server=certd conns=$c $(sed -n 's/^RESULT //p' "$T/certd-c$c.out")"
	done
	echo "RESULT json $(sed -n 's/^RESULT //p' "$T/json.out" | tail -n 1)"
	exit 0
fi

# --- etcd --------------------------------------------------------------------
# wait_http PID URL NAME: wait (20 s at most) until URL answers; false if
# PID exits first (its port may have been taken: the caller retries).
wait_http() {
	i=0
	until curl -sf -o /dev/null "$2"; do
		kill -0 "$1" 2>/dev/null || return 1
		i=$((i + 1)); [ "$i" -le 200 ] || die "$3 not ready after 20 s"
		sleep 0.1
	done
}
ETCD_VERSION=$(etcd --version | sed -n 's/^etcd Version: //p')
case $ETCD_VERSION in
3.3.*)	GW=/v3beta/kv/put ;;
*)	GW=/v3/kv/put ;;
esac
# free_port: a random loopback port nobody listens on right now.
free_port() {
	while :; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40001))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}
tries=0
while :; do
	tries=$((tries + 1))
	EPORT=$(free_port); PPORT=$(free_port)
	[ "$EPORT" != "$PPORT" ] || continue
	rm -rf "$T/etcd"
	etcd --name bench --data-dir "$T/etcd" \
	    --listen-client-urls "http://127.0.0.1:$EPORT" \
	    --advertise-client-urls "http://127.0.0.1:$EPORT" \
	    --listen-peer-urls "http://127.0.0.1:$PPORT" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
	    --initial-cluster "bench=http://127.0.0.1:$PPORT" \
	    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
	    --log-level warn > "$T/etcd.log" 2>&1 &
	ETCD_PID=$!
	wait_http "$ETCD_PID" "http://127.0.0.1:$EPORT/health" etcd && break
	wait "$ETCD_PID" || true; ETCD_PID=
	grep -q 'address already in use' "$T/etcd.log" && [ "$tries" -lt 10 ] && continue
	tail -n 20 "$T/etcd.log" >&2; die "etcd did not start"
done
EURL="http://127.0.0.1:$EPORT"

# revision_etcd: the header revision of a range request.
revision_etcd() {
	curl -s -X POST -d '{"key":"AA=="}' "$EURL/v3/kv/range" |
	    sed -n 's/.*"revision":"\{0,1\}\([0-9]*\).*/\1/p'
}
[ -n "$(revision_etcd)" ] || die "cannot read etcd's revision"

say "etcd $ETCD_VERSION pid $ETCD_PID on $EURL, POST $GW, $N_CERTS keys," \
    "value $BODY bytes (base64 in the JSON body)"
for c in $CONNS; do
	say "etcd: wrk -t$THREADS -c$c -d${DURATION}s POST $GW"
	run_wrk etcd "$c" "$ETCD_PID" "$EURL" etcd "$GW" "$N_CERTS" "$T/value-a" "$T/value-b"
done
kill -TERM "$ETCD_PID"; { wait "$ETCD_PID"; } 2> /dev/null || true; ETCD_PID=

# --- floor -------------------------------------------------------------------
# tests/bench/floor.c: evhttp and certd's JSON alone (read the body, decode it,
# encode the answer; no validation, no storage), FLOOR_PROCS event loops in
# as many processes on one port, sent certd's requests.  What certd could
# do at best with the SPEC's libraries on this machine.
SERVERS="certd etcd"
if [ "$FLOOR" != 0 ]; then
	SERVERS="certd etcd floor"
	gcc -O2 -Wall -Wextra -D_GNU_SOURCE -I"$SRC/src" -I"$SRC/include" \
	    -o "$T/floor" "$SRC/tests/bench/floor.c" "$SRC/src/json.c" \
	    "$SRC/src/util.c" "$SRC/src/cert.c" "$SRC/src/pem.c" \
	    $(pkg-config --cflags --libs libevent yajl gnutls) ||
	    die "cannot build floor"
	# With CHAINS, the floor validates too (the validation floor).
	FLOOR_MODE=; [ "$CHAINS" -lt 2 ] || FLOOR_MODE=validate
	tries=0
	while :; do
		tries=$((tries + 1))
		FPORT=$(free_port)
		"$T/floor" "$FPORT" "$FLOOR_PROCS" $FLOOR_MODE > "$T/floor.log" 2>&1 &
		FLOOR_PID=$!
		wait_http "$FLOOR_PID" "http://127.0.0.1:$FPORT/" floor && break
		wait "$FLOOR_PID" || true; FLOOR_PID=
		grep -q 'in use' "$T/floor.log" && [ "$tries" -lt 10 ] && continue
		cat "$T/floor.log" >&2; die "floor did not start"
	done
	FURL="http://127.0.0.1:$FPORT"
	# revision_floor: the PUTs the floor's processes have answered.
	revision_floor() { curl -sf "$FURL/"; }
	pids="$FLOOR_PID $(pgrep -P "$FLOOR_PID" | tr '\n' ' ')"
	say "floor pids $pids on $FURL, $FLOOR_PROCS processes, certd's requests${FLOOR_MODE:+, validated}"
	for c in $CONNS; do
		say "floor: wrk -t$THREADS -c$c -d${DURATION}s PUT $API/{id}"
		if [ "$CHAINS" -ge 2 ]; then
			run_wrk floor "$c" "$pids" "$FURL" certd "$TOKEN" \
			    "$T/targets" -list "$T/chains.list"
		else
			run_wrk floor "$c" "$pids" "$FURL" certd "$TOKEN" \
			    "$T/targets" "$T/template-client.json" \
			    "$T/template-server.json"
		fi
	done
	kill -TERM "$FLOOR_PID"; { wait "$FLOOR_PID"; } 2> /dev/null || true; FLOOR_PID=
fi

# --- summary -----------------------------------------------------------------
echo
echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
    "wrk -t$THREADS -d${DURATION}s, body $BODY B)"
printf '%-6s %-6s %10s %9s %9s %9s %11s %11s\n' server conns "req/s" "p50 ms" "p99 ms" \
    "max ms" "CPU us/req" "wrk us/req"
for c in $CONNS; do
	for s in $SERVERS; do
		f="$T/$s-c$c.out"
		printf '%-6s %-6s %10s %9s %9s %9s %11s %11s\n' "$s" "$c" "$(result rps "$f")" \
		    "$(result p50_ms "$f")" "$(result p99_ms "$f")" "$(result max_ms "$f")" \
		    "$(result server_cpu_us "$f")" "$(result client_cpu_us "$f")"
	done
done
echo
# Issue 18's targets: every PUT validated (CHAINS): 1.5x etcd, certd's p99
# below etcd's p99, and 0.6 of the validation floor; the certificate's own
# bytes with metadata changing: 3x etcd, certd's p99 below etcd's p50.
if [ "$CHAINS" -ge 2 ]; then
	WORKLOAD=validated NEED=1.5 PEER=p99_ms
else
	WORKLOAD=metadata NEED=3 PEER=p50_ms
fi
printf '%-6s %16s %26s %8s\n' conns "certd/etcd req/s" \
    "certd p99 < etcd ${PEER%_ms} (ms)" target
for c in $CONNS; do
	a="$T/certd-c$c.out" b="$T/etcd-c$c.out"
	ratio=$(awk -v x="$(result rps "$a")" -v y="$(result rps "$b")" 'BEGIN { printf "%.2f", x / y }')
	p99=$(result p99_ms "$a") pp=$(result "$PEER" "$b")
	lat=$(awk -v x="$p99" -v y="$pp" 'BEGIN { print (x < y) ? "yes" : "no" }')
	fr=
	[ "$FLOOR" = 0 ] || fr=$(awk -v x="$(result rps "$a")" \
	    -v y="$(result rps "$T/floor-c$c.out")" 'BEGIN { printf "%.2f", x / y }')
	met=$(awk -v r="$ratio" -v l="$lat" -v n="$NEED" -v f="$fr" -v w="$WORKLOAD" \
	    'BEGIN { print (r >= n && l == "yes" && (w != "validated" || f == "" ||
	    f >= 0.6)) ? "met" : "missed" }')
	printf '%-6s %16s %26s %8s\n' "$c" "$ratio" "$lat ($p99 vs $pp)" "$met"
	echo "RESULT target workload=$WORKLOAD conns=$c ratio=$ratio need=$NEED" \
	    "p99_ms=$p99 etcd_$PEER=$pp floor_ratio=${fr:--} met=$met" >> "$T/targets.out"
done
if [ "$FLOOR" != 0 ]; then
	echo
	printf '%-6s %16s %26s %16s\n' conns "floor/etcd req/s" "floor p99 < etcd p50 (ms)" \
	    "certd/floor req/s"
	for c in $CONNS; do
		a="$T/floor-c$c.out" b="$T/etcd-c$c.out" d="$T/certd-c$c.out"
		fr=$(awk -v x="$(result rps "$a")" -v y="$(result rps "$b")" 'BEGIN { printf "%.2f", x / y }')
		cr=$(awk -v x="$(result rps "$d")" -v y="$(result rps "$a")" 'BEGIN { printf "%.2f", x / y }')
		p99=$(result p99_ms "$a") p50=$(result p50_ms "$b")
		lat=$(awk -v x="$p99" -v y="$p50" 'BEGIN { print (x < y) ? "yes" : "no" }')
		printf '%-6s %16s %26s %16s\n' "$c" "$fr" "$lat ($p99 vs $p50)" "$cr"
	done
fi
echo
# What 3x etcd leaves per PUT: all of the machine's CPU time, shared by
# certd, wrk and the kernel, divided by the target rate.
J=$(awk -v a="$(result decode_us "$T/json.out")" -v b="$(result encode_us "$T/json.out")" \
    'BEGIN { printf "%.1f", a + b }')
for c in $CONNS; do
	f=
	[ "$FLOOR" = 0 ] || f=$(result server_cpu_us "$T/floor-c$c.out")
	awk -v n="$(nproc)" -v e="$(result rps "$T/etcd-c$c.out")" -v j="$J" -v c="$c" \
	    -v s="$(result server_cpu_us "$T/certd-c$c.out")" -v f="$f" \
	    -v w="$(result client_cpu_us "$T/certd-c$c.out")" \
	    -v t="$(result threads_us "$T/certd-c$c.out")" 'BEGIN {
		b = n * 1e6 / (3 * e)
		printf "conns %s: 3x etcd is %.0f req/s, %.0f us of CPU per PUT for " \
		    "certd, wrk and the kernel together; JSON alone %s us, " \
		    "certd took %s us, wrk %s us\n", c, 3 * e, b, j, s, w
		# storage: the store writer and the RocksDB threads
		k = split(t, kv, ",")
		for (i = 1; i <= k; i++) {
			split(kv[i], p, "=")
			if (p[1] == "certd-writer" || p[1] ~ /^rocksdb:/)
				st += p[2]
		}
		if (f != "")
			printf "conns %s: after the floor (%s us) and wrk, 3x etcd leaves " \
			    "%.0f us per PUT to validate, seal and store it; the certd " \
			    "writer and RocksDB threads took %.1f us\n", c, f, b - f - w, st
	}'
done
for c in $CONNS; do
	for s in $SERVERS; do
		echo "RESULT server=$s conns=$c $(sed -n 's/^RESULT //p' "$T/$s-c$c.out")"
	done
done
echo "RESULT json $(sed -n 's/^RESULT //p' "$T/json.out" | tail -n 1)"
cat "$T/targets.out"
