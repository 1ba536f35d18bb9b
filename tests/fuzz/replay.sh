#!/bin/sh
# SPDX-License-Identifier: MIT
# make check: replay each fuzz target's seed corpus, tests/fuzz/corpus/NAME,
# through tests/fuzz/replay_NAME (the target linked without libFuzzer).
# Fails if any target crashes, trips a sanitizer or finds no inputs.
srcdir=${CERTD_SRCDIR:-.}
builddir=${CERTD_BUILDDIR:-.}
rc=0
for name in cert body route frame wire; do
	"$builddir/tests/fuzz/replay_$name" "$srcdir/tests/fuzz/corpus/$name" ||
	    { echo "FAIL: fuzz target $name" >&2; rc=1; }
done
exit $rc
