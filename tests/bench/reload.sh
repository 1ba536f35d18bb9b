#!/bin/sh
# SPDX-License-Identifier: MIT
# Hot-reload benchmark, run on demand (not by make check): how long after a
# REST PUT of a new certificate is acknowledged does reload-demo (the
# libcertd GnuTLS reloader) present it to new handshakes.  Alternates two
# certificates N_CHANGES times; tests/bench/reloadbench.c does the PUTs and
# the handshakes (no process start-up inside the measurement).
#
# Usage: tests/bench/reload.sh   (as root or as certd's own uid: the
# reloader needs the key permission).  Knobs (environment): N_CHANGES=50,
# CERTS=rsa (leaf-rsa.chain.pem <-> leaf-rsa2.pem) or ec (leaf-ec.pem <->
# leaf-ec384.pem), THREAD=1 (reload-demo --thread), KEEP_TMP=1.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N_CHANGES:=50}"
: "${CERTS:=rsa}"
: "${THREAD:=}"
CERTD="$CERTD_BUILDDIR/certd"
DEMO="$CERTD_BUILDDIR/reload-demo"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
TEAM=bench

T=$(mktemp -d "${TMPDIR:-/tmp}/certd-bench.XXXXXX")
chmod 755 "$T"
CERTD_PID=
DEMO_PID=

cleanup() {
	set +e
	[ -n "$DEMO_PID" ] && kill -KILL "$DEMO_PID" 2>/dev/null && wait "$DEMO_PID"
	[ -n "$CERTD_PID" ] && kill -KILL "$CERTD_PID" 2>/dev/null && wait "$CERTD_PID"
	if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else
		echo "# temporary files kept in $T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "# $*"; }

# --- prerequisites -----------------------------------------------------------
[ -x "$CERTD" ] && [ -x "$DEMO" ] || (cd "$CERTD_BUILDDIR" && make certd reload-demo)
[ -x "$JTOOL" ] || (cd "$CERTD_BUILDDIR" && make tests/integration/jtool)
BENCH="$T/reloadbench"
gcc -O2 -g -Wall -Wextra -D_GNU_SOURCE -o "$BENCH" "$SRC/tests/bench/reloadbench.c" \
    $(pkg-config --cflags --libs gnutls)
sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
    { tail -n 20 "$T/pki.log" >&2; exit 1; }
case $CERTS in
rsa)	A_CERT=leaf-rsa.chain.pem A_KEY=leaf-rsa.key
	B_CERT=leaf-rsa2.pem B_KEY=leaf-rsa2.key ;;
ec)	A_CERT=leaf-ec.pem A_KEY=leaf-ec.key
	B_CERT=leaf-ec384.pem B_KEY=leaf-ec384.key ;;
*)	echo "CERTS is rsa or ec" >&2; exit 2 ;;
esac

# --- certd -------------------------------------------------------------------
D="$T/data"; S="$T/certd.sock"; LOG="$T/certd.log"
mkdir -p -m 700 "$D"
out=$("$CERTD_BUILDDIR/certctl" token new --name bench --teams '*' --role write)
TOKEN=$(printf '%s\n' "$out" | sed -n 1p)
printf '%s\n' "$out" | sed -n 2p > "$D/tokens"
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$S" --log-level info 2> "$LOG" &
CERTD_PID=$!
i=0
until grep -q 'certd ready' "$LOG"; do
	kill -0 "$CERTD_PID" 2>/dev/null || { tail -n 5 "$LOG" >&2; CERTD_PID=; exit 1; }
	i=$((i + 1)); [ "$i" -le 200 ] || { echo "certd not ready after 20 s" >&2; exit 1; }
	sleep 0.1
done
PORT=$(grep 'certd ready' "$LOG" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
API=/openapi/v1/teams/$TEAM/certificates

"$JTOOL" make alias=web certificate=@"$T/pki/$A_CERT" private_key=@"$T/pki/$A_KEY" \
    certificate_type=server > "$T/create.json"
"$JTOOL" make certificate=@"$T/pki/$A_CERT" private_key=@"$T/pki/$A_KEY" > "$T/a.json"
"$JTOOL" make certificate=@"$T/pki/$B_CERT" private_key=@"$T/pki/$B_KEY" > "$T/b.json"
code=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' -X POST --data-binary @"$T/create.json" \
    "http://127.0.0.1:$PORT$API")
[ "$code" = 200 ] || { echo "create answered $code: $(head -c 300 "$T/out")" >&2; exit 1; }
ID=$("$JTOOL" get "$T/out" id)

# --- reload-demo -------------------------------------------------------------
tries=0
while :; do
	tries=$((tries + 1))
	DPORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40001))
	"$DEMO" -s "$S" --team "$TEAM" --alias web --port "$DPORT" ${THREAD:+--thread} \
	    > "$T/demo.out" 2> "$T/demo.err" &
	DEMO_PID=$!
	i=0
	until grep -q '^ready$' "$T/demo.out" || ! kill -0 "$DEMO_PID" 2>/dev/null; do
		i=$((i + 1)); [ "$i" -le 100 ] || { echo "reload-demo not ready" >&2; exit 1; }
		sleep 0.1
	done
	grep -q '^ready$' "$T/demo.out" && break
	wait "$DEMO_PID" || true; DEMO_PID=
	grep -q 'listen on' "$T/demo.err" && [ "$tries" -lt 10 ] && continue
	cat "$T/demo.err" >&2; exit 1
done
say "certd pid $CERTD_PID, reload-demo pid $DEMO_PID on 127.0.0.1:$DPORT${THREAD:+ (--thread)}," \
    "certificates $A_CERT <-> $B_CERT, $N_CHANGES changes"

"$BENCH" "$PORT" "$TOKEN" "$API/$ID" "$T/a.json" "$T/b.json" "$DPORT" "$N_CHANGES" |
    tee "$T/bench.out"
grep -q '^RESULT ' "$T/bench.out" || { echo "reloadbench failed" >&2; exit 1; }
[ "$(grep -c 'serving revision' "$T/demo.err")" -eq $((N_CHANGES + 1)) ] ||
    { echo "reload-demo did not report every swap" >&2; exit 1; }

kill -TERM "$DEMO_PID"; wait "$DEMO_PID"; DEMO_PID=
kill -TERM "$CERTD_PID"; wait "$CERTD_PID"; CERTD_PID=
