#!/bin/sh
# SPDX-License-Identifier: MIT
# The house rules of doc/architecture.md that a script can check, on the
# sources as they are: no .c file of src/ over FILE_MAX lines, no function
# over FUNC_MAX lines (from the line with its name to its closing brace),
# and every function that is not static carries its room's prefix: the
# file's name (store_writer.c: store_writer_*), or the module's (store_*,
# the part before the first underscore) when the module's public header
# src/MODULE.h declares it; libcertd's rooms export certd_*, and a
# program's file has main.
. "$(dirname "$0")/lib.sh"

FILE_MAX=1500
FUNC_MAX=120
S=$CERTD_SRCDIR/src

for f in "$S"/*.c; do
	n=$(wc -l < "$f")
	[ "$n" -le $FILE_MAX ] || not_ok "$(basename "$f") has $n lines (at most $FILE_MAX)"
done
ok "every src/*.c checked against $FILE_MAX lines"

long=$(awk -v lim=$FUNC_MAX '
FNR == 1 { start = 0 }
/^[A-Za-z_][A-Za-z0-9_]*\(/ { name = $0; sub(/\(.*/, "", name); start = FNR }
/^}/ {
	if (start && FNR - start + 1 > lim)
		printf "%s:%s %d lines\n", FILENAME, name, FNR - start + 1
	start = 0
}' "$S"/*.c | sed "s|$S/||")
if [ -z "$long" ]; then
	ok "no function over $FUNC_MAX lines"
else
	not_ok "functions over $FUNC_MAX lines: $long"
fi

# Non-static definitions: a line that starts with a lower-case name and
# "(", whose previous line (the return type) does not say static and is
# not part of a macro (log.c defines its functions with one).
bad=
for f in "$S"/*.c; do
	base=$(basename "$f" .c)
	mod=${base%%_*}
	for fn in $(awk '
	/^[a-z][a-z0-9_]*\(/ {
		if (prev !~ /(^|[ \t])static([ \t]|$)/ && prev !~ /\\$/) {
			n = $0; sub(/\(.*/, "", n); print n
		}
	}
	{ prev = $0 }' "$f"); do
		case $fn in
		"$base"_* | "$base") continue ;;
		main) [ "$base" = main ] || [ "$base" = certctl ] && continue ;;
		certd_*) case $base in client* | reloader) continue ;; esac ;;
		esac
		case $fn in
		"$mod"_*)
			grep -qw "$fn" "$S/$mod.h" 2>/dev/null && continue ;;
		esac
		bad="$bad $base.c:$fn"
	done
done
if [ -z "$bad" ]; then
	ok "every exported function carries its room's prefix"
else
	not_ok "functions outside their room's prefix:$bad"
fi
finish
