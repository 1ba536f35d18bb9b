#!/bin/sh
# SPDX-License-Identifier: MIT
# The shipped systemd units can do what their own examples ask: every
# directory that an example run under a unit writes (certctl sync's
# --cert-file, --key-file, --chain-file and --bundle-file in the unit's
# comments and in contrib/nginx and contrib/haproxy for certd-sync@;
# data_dir and the socket of contrib/certd.conf, and the backup directory
# in the unit's comments, for certd) is writable under the unit's
# ProtectSystem=, ProtectHome= and PrivateTmp= (a ReadWritePaths= entry or
# a StateDirectory=/RuntimeDirectory= covers it, or it lies outside the
# protected trees), and every file it only reads (--pid-file,
# CERTD_SOCKET, token_file) is visible.  When systemd-analyze is
# installed, the units also pass `systemd-analyze verify`.
. "$(dirname "$0")/lib.sh"

U=$CERTD_SRCDIR/contrib/systemd
CONTRIB=$CERTD_SRCDIR/contrib

check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}

# vals UNIT KEY: the words of every KEY= line of UNIT, one per line.
vals() { sed -n "s/^$2=//p" "$1" | tr ' \t' '\n\n' | sed '/^$/d'; }

# under PATH TREE: PATH is TREE or lies beneath it.
under() {
	[ "$2" = / ] && return 0
	case $1 in "$2" | "$2"/*) return 0 ;; esac
	return 1
}

# rw_paths UNIT: what UNIT may write despite its protections.
rw_paths() {
	vals "$1" ReadWritePaths | sed 's/^[-+]*//'
	vals "$1" StateDirectory | sed 's|^|/var/lib/|'
	vals "$1" RuntimeDirectory | sed 's|^|/run/|'
	vals "$1" CacheDirectory | sed 's|^|/var/cache/|'
	vals "$1" LogsDirectory | sed 's|^|/var/log/|'
}

# hidden UNIT: the trees UNIT cannot see at all, or sees privately.
hidden() {
	case $(vals "$1" ProtectHome | tail -n 1) in
	yes | true | on | 1 | tmpfs) echo /home /root /run/user ;;
	esac
	case $(vals "$1" PrivateTmp | tail -n 1) in
	yes | true | on | 1) echo /tmp /var/tmp ;;
	esac
	vals "$1" InaccessiblePaths | sed 's/^[-+]*//'
}

# readonly UNIT: the trees UNIT sees read-only.
readonly_trees() {
	case $(vals "$1" ProtectSystem | tail -n 1) in
	yes | true | on | 1) echo /usr /boot /efi ;;
	full) echo /usr /boot /efi /etc ;;
	strict) echo / ;;
	esac
	case $(vals "$1" ProtectHome | tail -n 1) in
	read-only) echo /home /root /run/user ;;
	esac
	vals "$1" ReadOnlyPaths | sed 's/^[-+]*//'
}

# writable UNIT PATH WHY: check that UNIT may write in directory PATH.
writable() {
	for t in $(hidden "$1"); do
		if under "$2" "$t"; then
			not_ok "$(basename "$1"): $2 ($3) lies in $t, hidden or private under the unit"
			return
		fi
	done
	for rw in $(rw_paths "$1"); do
		if under "$2" "$rw"; then
			ok "$(basename "$1"): $2 ($3) is writable (covered by $rw)"
			return
		fi
	done
	for t in $(readonly_trees "$1"); do
		if under "$2" "$t"; then
			not_ok "$(basename "$1"): $2 ($3) is read-only under the unit (in $t; no ReadWritePaths= covers it)"
			return
		fi
	done
	ok "$(basename "$1"): $2 ($3) lies outside the protected trees"
}

# visible UNIT PATH WHY: check that UNIT can read PATH.
visible() {
	for t in $(hidden "$1"); do
		if under "$2" "$t"; then
			not_ok "$(basename "$1"): $2 ($3) lies in $t, hidden or private under the unit"
			return
		fi
	done
	ok "$(basename "$1"): $2 ($3) is visible"
}

# opt_values OPTION FILE...: every absolute path given to OPTION in FILEs.
opt_values() {
	_o=$1; shift
	cat "$@" | grep -o -- "$_o[= ]/[^ \\\\']*" | sed "s/^$_o[= ]//" | sort -u
}

# conf_value KEY: the value of KEY in contrib/certd.conf (comments cut).
conf_value() {
	sed -n "s/^$1[ \t]*=[ \t]*\([^ \t#]*\).*/\1/p" "$CONTRIB/certd.conf"
}

# --- certd-sync@.service: the files certctl sync writes -------------------------
S=$U/certd-sync@.service
SRC="$S $CONTRIB/nginx/certd-sync.conf $CONTRIB/haproxy/certd.cfg"
n=0
for opt in --cert-file --key-file --chain-file --bundle-file; do
	# shellcheck disable=SC2086 # SRC is a list of files
	for f in $(opt_values "$opt" $SRC); do
		writable "$S" "$(dirname "$f")" "$opt $f"
		n=$((n + 1))
	done
done
check "certd-sync@.service: the examples name files to write ($n)" [ "$n" -ge 3 ]
# shellcheck disable=SC2086
for f in $(opt_values --pid-file $SRC); do visible "$S" "$f" "--pid-file"; done
for f in $(opt_values CERTD_SOCKET "$S"); do visible "$S" "$f" "CERTD_SOCKET"; done

# --- certd.service: its data, its socket, its backups ------------------------------
D=$U/certd.service
data=$(conf_value data_dir)
sock=$(conf_value socket)
if [ -n "$data" ] && [ -n "$sock" ]; then ok "contrib/certd.conf names data_dir and socket"
else not_ok "contrib/certd.conf names data_dir and socket"; fi
writable "$D" "$data" "data_dir"
writable "$D" "$(dirname "$sock")" "socket $sock"
for f in $(opt_values "certctl backup" "$D"); do
	writable "$D" "$f" "certctl backup"
done
check "certd.service: its comments name a backup directory" \
    [ -n "$(opt_values "certctl backup" "$D")" ]
tok=$(conf_value token_file)
[ -z "$tok" ] || visible "$D" "$tok" "token_file"

# --- systemd-analyze verify, when it is there ----------------------------------------
if command -v systemd-analyze > /dev/null 2>&1; then
	V=$T/units; mkdir -p "$V"
	# The shipped paths of the binaries are not installed here: the built
	# ones stand in; a template needs an instance.
	sed "s|/usr/local/bin/|$CERTD_BUILDDIR/|" "$D" > "$V/certd.service"
	sed "s|/usr/local/bin/|$CERTD_BUILDDIR/|" "$S" > "$V/certd-sync@test.service"
	if (cd "$V" && systemd-analyze verify --man=no ./certd.service \
	    ./certd-sync@test.service) > "$T/verify" 2>&1; then
		ok "systemd-analyze verify passes both units"
	else
		not_ok "systemd-analyze verify: $(head -c 600 "$T/verify")"
	fi
else
	ok "systemd-analyze verify # SKIP systemd-analyze is not installed"
fi
finish
