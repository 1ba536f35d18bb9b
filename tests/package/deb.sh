#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian package as an operator gets it (doc/packaging.md): build it
# from a clone of the committed tree (dpkg-buildpackage -us -uc -b, one
# build, no test suite), check it with lintian (no error), install the
# three .debs, check the user, files, owners and modes, start the
# installed certd as the user certd on a temporary data dir, verify the
# installed units with systemd-analyze, then purge and check that nothing
# is left but the data dir (and the user: Debian keeps system users).
#
# Not in make check: it needs root and installs and purges the packages
# certd, libcertd1 and libcertd-dev on this machine.  contrib/dev.sh test
# (and so CI) runs it after the install check; contrib/dev.sh package runs
# it alone.  Both install its tools first (dev.sh's PACKAGING list); the
# build dependencies come from debian/control (apt-get build-dep).  A run
# leaves the machine as it found it, whatever fails: the packages purged,
# and the user certd, /var/lib/certd and /run/certd removed if the run made
# them.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@" > /dev/null; then ok "$_d"; else not_ok "$_d"; fi
}
# is PATH "MODE OWNER GROUP": the file's mode, owner and group.
is() {
	_got=$(stat -c '%a %U %G' "$1" 2>/dev/null || echo missing)
	if [ "$_got" = "$2" ]; then ok "$1 is $2"; else not_ok "$1 is $_got, not $2"; fi
}

if [ "$(id -u)" -ne 0 ]; then
	echo "ok - Debian package # SKIP needs root (it installs and purges the certd packages)"
	echo "0 passed, 0 failed"
	exit 0
fi
for tool in dpkg-buildpackage dh lintian git apt-get setpriv curl cc; do
	command -v "$tool" > /dev/null 2>&1 && continue
	echo "deb.sh: $tool is missing: run contrib/dev.sh package (installs the tools)" >&2
	exit 1
done
PKGS="certd libcertd-dev libcertd1"
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -v 'not-installed'; then
		echo "deb.sh: the package $p is on this machine; this test would replace" \
		    "and purge it: dpkg --purge $PKGS first" >&2
		exit 1
	fi
done

W=$(mktemp -d /tmp/certd-deb.XXXXXX)
chmod 755 "$W"	# certd, run as its user, reaches its data dir below
had_user=no; getent passwd certd > /dev/null && had_user=yes
had_var=no; [ -e /var/lib/certd ] && had_var=yes
had_run=no; [ -e /run/certd ] && had_run=yes
CERTD_PID=

cleanup() {
	status=$?
	if [ -n "$CERTD_PID" ] && kill -0 "$CERTD_PID" 2>/dev/null; then
		kill -KILL "$CERTD_PID" 2>/dev/null || true
	fi
	for p in $PKGS; do
		if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -v 'not-installed'; then
			# shellcheck disable=SC2086 # a list of packages
			dpkg --purge $PKGS > /dev/null 2>&1 || true
			break
		fi
	done
	if [ "$had_user" = no ] && getent passwd certd > /dev/null; then
		userdel certd 2>/dev/null || true
	fi
	if [ "$had_user" = no ] && getent group certd > /dev/null; then
		groupdel certd 2>/dev/null || true
	fi
	[ "$had_var" = yes ] || rmdir /var/lib/certd 2>/dev/null || true
	[ "$had_run" = yes ] || rmdir /run/certd 2>/dev/null || true
	rm -rf "$W"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# --- build ---------------------------------------------------------------------
git clone -q "$top" "$W/certd"
cd "$W/certd"
if [ ! -f debian/control ]; then
	not_ok "the committed tree has no debian/control"
	exit 1
fi
if ! dpkg-checkbuilddeps > /dev/null 2>&1; then
	echo "# installing the build dependencies of debian/control"
	if ! DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$W/certd/" \
	    > "$W/build-dep.log" 2>&1; then
		not_ok "apt-get build-dep: $(tail -n 5 "$W/build-dep.log")"
		exit 1
	fi
fi
check "debian/control lists every build dependency" dpkg-checkbuilddeps
if DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=2" \
    dpkg-buildpackage -us -uc -b > "$W/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b"
else
	not_ok "dpkg-buildpackage -us -uc -b"
	tail -n 40 "$W/build.log"
	exit 1
fi
cd "$W"
ver=$(dpkg-parsechangelog -l certd/debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for p in $PKGS; do
	check "built ${p}_${ver}_$arch.deb" [ -f "${p}_${ver}_$arch.deb" ]
done

# --- lintian ----------------------------------------------------------------------
# Errors fail; the warnings and notes left are explained in doc/packaging.md.
if lintian -I --fail-on error "certd_${ver}_$arch.changes" > lintian.log 2>&1; then
	ok "lintian: no error ($(grep -c '^W:' lintian.log || true) warnings)"
else
	not_ok "lintian found errors"
fi
grep -e '^[EWI]:' lintian.log | sed 's/^/#   /' || true

# --- install ----------------------------------------------------------------------
if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$W/certd_${ver}_$arch.deb" "$W/libcertd1_${ver}_$arch.deb" \
    "$W/libcertd-dev_${ver}_$arch.deb" > install.log 2>&1; then
	ok "apt-get install of the three packages"
else
	not_ok "apt-get install: $(tail -n 5 install.log)"
	exit 1
fi
for p in $PKGS; do dpkg -L "$p"; done | sort -u > files

check "the user certd exists" getent passwd certd
check "the group certd exists" getent group certd
check "certd's home is /var/lib/certd, no login shell" \
    sh -c 'getent passwd certd | grep -q ":/var/lib/certd:/usr/sbin/nologin$"'
is /etc/certd/tokens "640 root certd"
is /etc/certd/certd.conf "644 root root"
is /var/lib/certd "700 certd certd"
is /run/certd "755 certd certd"
conffiles=$(dpkg-query -W -f='${Conffiles}' certd)
for f in /etc/certd/certd.conf /etc/certd/tokens; do
	check "$f is a conffile" sh -c "printf '%s\n' '$conffiles' | grep -q '^ $f '"
done
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
for u in certd.service certd-sync@.service; do
	check "$unitdir/$u installed" grep -qx "$unitdir/$u" files
done
check "certd.service runs /usr/bin/certd --config /etc/certd/certd.conf" \
    grep -qx 'ExecStart=/usr/bin/certd --config /etc/certd/certd.conf' "$unitdir/certd.service"
check "certd-sync@.service runs /usr/bin/certctl" \
    grep -q '^ExecStart=/usr/bin/certctl sync ' "$unitdir/certd-sync@.service"
check "no unit names /usr/local" sh -c "! grep -l /usr/local '$unitdir/certd.service' '$unitdir/certd-sync@.service'"
check "certd.service is enabled (not started)" \
    [ -L /etc/systemd/system/multi-user.target.wants/certd.service ]
is /usr/lib/sysusers.d/certd.conf "644 root root"
is /usr/lib/tmpfiles.d/certd.conf "644 root root"
is /usr/bin/certd "755 root root"
is /usr/bin/certctl "755 root root"
is /usr/share/man/man8/certd.8.gz "644 root root"
lib=/usr/lib/$ma/libcertd.so.1
check "$lib installed" [ -f "$lib" ]
check "its SONAME is libcertd.so.1" \
    sh -c "objdump -p '$lib' | grep -q 'SONAME *libcertd.so.1$'"
check "libcertd.pc says $ver" [ "$(pkg-config --modversion libcertd)" = "$ver" ]
# shellcheck disable=SC2046 # pkg-config prints several words
check "contrib/examples/ping.c builds against the installed libcertd" \
    cc -Wall -Werror "$top/contrib/examples/ping.c" -o ping $(pkg-config --cflags --libs libcertd)
check "and loads libcertd.so.1 from /usr/lib/$ma" \
    sh -c "ldd ./ping | grep -q 'libcertd.so.1 => [^ ]*lib/$ma/libcertd.so.1 '"

# --- the installed certd, as the user certd ------------------------------------------
# The installed certd.conf and token file (0640 root:certd): certd must
# accept their owners and modes; a private data dir, socket and port.
install -d -m 700 -o certd -g certd "$W/data"
install -d -m 755 -o certd -g certd "$W/run"
setpriv --reuid=certd --regid=certd --init-groups /usr/bin/certd \
    --config /etc/certd/certd.conf --data-dir "$W/data" \
    --listen 127.0.0.1:0 --socket "$W/run/certd.sock" > certd.log 2>&1 &
CERTD_PID=$!
port=
i=0
while [ $i -lt 200 ]; do
	port=$(sed -n 's/.*certd ready.* listen=[^ ]*:\([0-9]*\) .*/\1/p' certd.log)
	[ -n "$port" ] && break
	kill -0 "$CERTD_PID" 2>/dev/null || break
	sleep 0.1; i=$((i + 1))
done
if [ -n "$port" ]; then
	ok "the installed certd starts as certd with /etc/certd/certd.conf and /etc/certd/tokens"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
	check "GET /healthz answers 200 (got $code)" [ "$code" = 200 ]
	check "the installed certctl (root) accepts certd's user on the socket" \
	    /usr/bin/certctl -s "$W/run/certd.sock" ping
	check "the libcertd example pings it" ./ping "$W/run/certd.sock"
	kill -TERM "$CERTD_PID"
	st=0; wait "$CERTD_PID" || st=$?
	CERTD_PID=
	check "SIGTERM stops it with status 0 (got $st)" [ "$st" -eq 0 ]
else
	not_ok "the installed certd did not start: $(tail -n 5 certd.log)"
fi

# --- systemd-analyze verify ---------------------------------------------------------
if command -v systemd-analyze > /dev/null 2>&1; then
	if systemd-analyze verify "$unitdir/certd.service" "certd-sync@test.service" \
	    > verify.log 2>&1; then
		ok "systemd-analyze verify passes the installed units"
	else
		not_ok "systemd-analyze verify: $(head -c 600 verify.log)"
	fi
else
	ok "systemd-analyze verify # SKIP systemd-analyze is not installed"
fi

# --- purge ----------------------------------------------------------------------------
# shellcheck disable=SC2086 # a list of packages
if dpkg --purge $PKGS > purge.log 2>&1; then
	ok "dpkg --purge $PKGS"
else
	not_ok "dpkg --purge: $(tail -n 5 purge.log)"
fi
left=
while read -r f; do
	[ -d "$f" ] && continue		# shared directories stay (/lib is a link)
	if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done < files
check "every file of the packages is gone${left:+ (left:$left)}" [ -z "$left" ]
check "/etc/certd is gone" [ ! -e /etc/certd ]
check "/run/certd is gone" [ ! -e /run/certd ]
check "the enablement link is gone" \
    [ ! -e /etc/systemd/system/multi-user.target.wants/certd.service ]
check "/var/lib/certd, the data dir, is kept" [ -d /var/lib/certd ]
check "the user certd is kept (Debian keeps system users)" getent passwd certd

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
