#!/bin/sh
# SPDX-License-Identifier: MIT
# libcertd.so exports what include/certd/*.h declares and nothing else.
# Everything it is made of is compiled with -fvisibility=hidden, the client
# API marked CERTD_API; the libraries it shares with the daemon and certctl
# (libcertd_common: proto, cert, pem, util) must stay inside.  So every
# defined dynamic symbol (nm -D --defined-only) must be declared in one of
# the public headers, comments left out, and every function the headers
# declare with CERTD_API must be defined.  The library checked is the build
# tree's, or $1 (an installed copy: make install DESTDIR=...).
. "$(dirname "$0")/lib.sh"

LIB=${1:-$CERTD_BUILDDIR/.libs/libcertd.so}
command -v nm > /dev/null 2>&1 || { echo "# nm not found: skipped"; exit 77; }
[ -e "$LIB" ] || { echo "# no $LIB (a static build?): skipped"; exit 77; }

# The headers as one line, comments removed: what they declare.
cat "$CERTD_SRCDIR"/include/certd/*.h | tr '\n' ' ' |
    sed 's|/\*[^*]*\*\{1,\}\([^/*][^*]*\*\{1,\}\)*/| |g' > "$T/decl"

# Defined symbols of any kind but absolute ones (version nodes).
nm -D --defined-only "$LIB" | awk 'NF == 3 && $2 != "A" { print $3 }' |
    sed 's/@.*//' | sort -u > "$T/syms"
n=$(wc -l < "$T/syms")
[ "$n" -gt 0 ] && ok "libcertd exports $n symbols" || not_ok "nm -D found no symbol in $LIB"

stray=
while read -r sym; do
	grep -Eq "(^|[^A-Za-z0-9_])$sym[[:space:]]*[(;[]" "$T/decl" ||
	    stray="$stray $sym"
done < "$T/syms"
[ -z "$stray" ] && ok "every exported symbol is declared in include/certd" ||
    not_ok "exported but not declared in include/certd:$stray"

missing=
for fn in $(grep -Eo 'CERTD_API[^;(]*[(]' "$T/decl" |
    sed 's/[[:space:]]*($//; s/.*[^A-Za-z0-9_]//' | grep '^certd_'); do
	grep -qx "$fn" "$T/syms" || missing="$missing $fn"
done
[ -z "$missing" ] && ok "every CERTD_API function is exported" ||
    not_ok "declared CERTD_API but not exported:$missing"

finish
