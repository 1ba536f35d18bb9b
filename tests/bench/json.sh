#!/bin/sh
# SPDX-License-Identifier: MIT
#
# json.sh: the JSON libraries side by side on certd's own PUT body and
# reply (tests/bench/jsonbench.c), one thread, two rounds; the table
# doc/performance.md records and the choice of yajl rests on.
#
# Usage: tests/bench/json.sh   (as root it installs the candidates'
#        -dev packages with apt-get when missing: libjansson-dev,
#        libjson-c-dev, libcjson-dev, libyajl-dev; none of them but yajl
#        is needed to build certd)
# Knobs: N=20000 (iterations a round), CERTD_BUILDDIR (for jtool).
# Run it with nothing else running on the machine.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${CERTD_BUILDDIR:=$SRC}"
: "${N:=20000}"
JTOOL="$CERTD_BUILDDIR/tests/integration/jtool"
T=$(mktemp -d "${TMPDIR:-/tmp}/certd-jsonbench.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
die() { echo "json.sh: $*" >&2; exit 1; }

[ -x "$JTOOL" ] || die "no $JTOOL: build certd first (make check TESTS=)"
need=
for pc in jansson:libjansson-dev json-c:libjson-c-dev libcjson:libcjson-dev \
    yajl:libyajl-dev; do
	pkg-config --exists "${pc%%:*}" || need="$need ${pc#*:}"
done
if [ -n "$need" ]; then
	[ "$(id -u)" = 0 ] || die "missing:$need; run as root to install them"
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q $need; } > "$T/apt.log" 2>&1 ||
	    { tail -n 20 "$T/apt.log" >&2; die "apt-get failed"; }
fi

# The body of put.sh: an RSA-2048 leaf with its intermediate, and its key.
sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
    { tail -n 20 "$T/pki.log" >&2; die "gen-pki.sh failed"; }
"$JTOOL" make alias=put-1 certificate=@"$T/pki/leaf-rsa.chain.pem" \
    private_key=@"$T/pki/leaf-rsa.key" certificate_type=server > "$T/body.json"

gcc -O2 -Wall -Wextra -D_GNU_SOURCE -DJB_ALL -I"$SRC/src" -I"$SRC/include" \
    -o "$T/jsonbench" "$SRC/tests/bench/jsonbench.c" \
    "$SRC/tests/bench/jsonbench_jansson.c" "$SRC/tests/bench/jsonbench_jsonc.c" \
    "$SRC/tests/bench/jsonbench_cjson.c" "$SRC/src/json.c" "$SRC/src/util.c" \
    $(pkg-config --cflags --libs yajl jansson json-c libcjson) ||
    die "cannot build jsonbench"
"$T/jsonbench" "$T/body.json" "$N" > "$T/out" || die "jsonbench failed"
cat "$T/out"

# One row a library: the slower of its two rounds, and jansson's ratio.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
echo
printf '| %-26s | %-13s | %-13s | %s |\n' library "decode (µs)" \
    "encode (µs)" "checks beyond the grammar"
echo "| --- | --- | --- | --- |"
sed -n 's/^RESULT lib="\([^"]*\)".*/\1/p' "$T/out" | awk '!seen[$0]++' |
while read -r lib; do
	rows=$(grep -F "lib=\"$lib\"" "$T/out")
	d=$(echo "$rows" | field decode_us | sort -n | tr '\n' ' ' |
	    awk '{print $1 "–" $2}')
	e=$(echo "$rows" | field encode_us | sort -n | tr '\n' ' ' |
	    awk '{print $1 "–" $2}')
	checks=$(echo "$rows" | head -n 1 | sed 's/.*checks="\([^"]*\)".*/\1/')
	printf '| %-26s | %-13s | %-13s | %s |\n' "$lib" "$d" "$e" "$checks"
done
echo
echo "body $(wc -c < "$T/body.json") bytes, $N iterations a round, two rounds"
