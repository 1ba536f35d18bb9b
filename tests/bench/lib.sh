# SPDX-License-Identifier: MIT
# What the benchmarks share: installing a missing tool, the test PKI and
# sockbench, built into $T.  Source it after setting SRC, T and die().

# bench_need CMD PACKAGE...: install PACKAGEs (root only) unless CMD is there.
bench_need() {
	cmd=$1; shift
	command -v "$cmd" > /dev/null && return 0
	[ "$(id -u)" = 0 ] || die "$cmd missing; run as root to install $*"
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install \
	    -y -q "$@"; } > "$T/apt.log" 2>&1 ||
	    { tail -n 20 "$T/apt.log" >&2; die "apt-get failed"; }
}

# bench_pki: the test PKI (certtool, at run time) in $T/pki.
bench_pki() {
	sh "$SRC/tests/pki/gen-pki.sh" "$T/pki" > "$T/pki.log" 2>&1 ||
	    { tail -n 20 "$T/pki.log" >&2; die "gen-pki.sh failed"; }
}

# bench_sockbench: build tests/bench/sockbench.c into $BENCH ($T/sockbench).
bench_sockbench() {
	BENCH="$T/sockbench"
	gcc -O2 -Wall -Wextra -D_GNU_SOURCE -o "$BENCH" "$SRC/src/proto.c" \
	    "$SRC/src/util.c" "$SRC/tests/bench/sockbench.c" -I"$SRC/include" \
	    -I"$SRC/src" $(pkg-config --cflags --libs msgpack) ||
	    die "cannot build sockbench"
}
