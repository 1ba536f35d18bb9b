#!/bin/sh
# SPDX-License-Identifier: MIT
# The etcd client (src/etcd.c) against a real three-member etcd cluster on
# loopback: transactions and their compares, ranges, watches in order and
# after a compaction, fail-over between endpoints (tests/unit/test_etcd.c);
# then two members killed: writes fail within 10 s saying why, reads that
# need no quorum still work.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
trap 'st=$?; etcd_cleanup; cleanup $st' EXIT

TEST_ETCD="$CERTD_BUILDDIR/tests/unit/test_etcd"
[ -x "$TEST_ETCD" ] || { echo "# $TEST_ETCD not built (cmocka)" >&2; exit 77; }

etcd_cluster 3 && ok "three etcd members on $ETCD_URLS" ||
    { not_ok "etcd cluster"; finish; exit 1; }

run() {
	if ETCD_ENDPOINTS=$1 ETCD_MODE=$2 "$TEST_ETCD" > "$T/unit.$3" 2>&1; then
		ok "$3: $(grep -c '^\[       OK' "$T/unit.$3") client tests pass"
	else
		not_ok "$3: $(grep -e FAILED -e 'error:' -e '^\[  ERROR' "$T/unit.$3" | head -n 5)"
	fi
	grep -q '^\[  SKIPPED \]' "$T/unit.$3" || true
}
run "$ETCD_URLS" "" "cluster"

etcd_kill 2
etcd_kill 3
run "$ETCD_URL_1" quorum "quorum lost"
# the quorum test ran, not skipped
grep -q '^\[       OK \] test_quorum_lost' "$T/unit.quorum lost" &&
    ok "the write without quorum failed in time" ||
    not_ok "test_quorum_lost did not run: $(cat "$T/unit.quorum lost" | head -n 20)"
finish
