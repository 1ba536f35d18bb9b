#!/bin/sh
# SPDX-License-Identifier: MIT
# Developer entry points on Debian 12 (the two commands of README.md):
#
#   contrib/dev.sh run    install dependencies, build, run certd in the
#                         foreground on ./var and print how to call it
#   contrib/dev.sh start  run's last step alone, in a tree already built:
#                         a fresh write token in var/tokens, an example
#                         body in var/example/create.json, the banner, then
#                         certd in the foreground
#   contrib/dev.sh test   install dependencies, build with -Werror and run
#                         the whole test suite (make check, the unit tests
#                         again under valgrind, make install)
#   contrib/dev.sh sanitize  the same suite built with AddressSanitizer and
#                         UndefinedBehaviorSanitizer, in a scratch clone
#   contrib/dev.sh package   build the Debian package from a clone of the
#                         committed tree, install, run and purge it
#                         (tests/package/deb.sh, root only; dev.sh test
#                         runs it too)
#
# run and start first look whether a certd already holds the data dir (its
# lock, var/certd.lock, is flock'ed and holds its pid): if one does they say
# so and exit 1 before they install, build or touch var/tokens.
#
# Dependencies come from Debian's packages; apt-get runs only when one is
# missing, through sudo when not root.
#
# Environment of run and start (tests/integration/readme.sh sets them to
# run the README's tour on a scratch directory; the README needs none):
#   CERTD_DEV_VAR       the data dir (default: var in the source tree)
#   CERTD_DEV_LISTEN    the HTTP address (default 127.0.0.1:7070; with port
#                       0 the kernel picks one, and certd's "certd ready"
#                       log line names it)
#   CERTD_DEV_BUILDDIR  where certd and certctl are built (default: the
#                       source tree, where run builds them)
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config \
libevent-dev libgnutls28-dev libmsgpack-dev librocksdb-dev libyajl-dev \
libisal-dev nettle-dev libcurl4-gnutls-dev etcd-server \
libcmocka-dev gnutls-bin openssl curl util-linux nginx-light haproxy valgrind strace \
python3-yaml python3-jsonschema openapi-specification"
# The package check's tools (its build dependencies come from debian/control).
PACKAGING="debhelper dpkg-dev lintian fakeroot git binutils"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# deps [PACKAGE...]: install those missing of the packages (default $PACKAGES).
deps() {
	# shellcheck disable=SC2086 # a list of packages
	[ $# -gt 0 ] || set -- $PACKAGES
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "dev.sh: installing$missing" >&2
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
	    --no-install-recommends $missing
}

build() {
	[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
	if [ ! -f Makefile ] || ! grep -q -- "$1" config.status 2>/dev/null; then
		./configure $1
	fi
	make -j"$jobs"
}

# JSON string of a PEM file (PEM has no quotes or backslashes).
pem_json() {
	awk '{ printf "%s\\n", $0 }' "$1"
}

# Where run and start work: the data dir, the HTTP address, the programs.
dev_var=${CERTD_DEV_VAR:-var}	# relative to the tree: a short socket path
dev_listen=${CERTD_DEV_LISTEN:-127.0.0.1:7070}
dev_bin=${CERTD_DEV_BUILDDIR:-$top}

# not_running: exit 1, saying so, when a certd holds the data dir.  certd
# flocks certd.lock and writes its pid there; flock(1) -n exits 1 while it
# runs.  A lock file that is not there, or that nobody holds, is fine.
not_running() {
	lock=$dev_var/certd.lock
	[ -f "$lock" ] || return 0
	held=0
	flock -n "$lock" true 2>/dev/null || held=$?
	[ "$held" = 1 ] || return 0	# free, or unreadable: certd will say
	pid=$(head -n 1 "$lock" 2>/dev/null || true)
	echo "dev.sh: certd is already running on $dev_var (pid ${pid:-unknown});" \
	    "stop it (Ctrl-C in its shell, or kill ${pid:-it}) first" >&2
	exit 1
}

# prepare: the data dir (0700), a fresh write token for every team in its
# token file (0600; an older "dev" token is replaced), and an example
# certificate with its request body.  Sets $token.  certd refuses a data dir
# others can enter and a token file others can write (certd.8,
# PERMISSIONS), so files are made under umask 077 whatever the caller's.
prepare() {
	old_umask=$(umask)
	umask 077
	mkdir -p "$dev_var/example"
	chmod 700 "$dev_var"
	tokens=$dev_var/tokens
	out=$("$dev_bin/certctl" token new --name dev --teams '*' --role write)
	token=$(printf '%s\n' "$out" | sed -n 1p)
	{ grep -v '^dev ' "$tokens" 2>/dev/null || true
	  printf '%s\n' "$out" | sed -n 2p; } > "$tokens.new"
	chmod 600 "$tokens.new"
	mv "$tokens.new" "$tokens"

	ex=$dev_var/example
	if [ ! -f "$ex/cert.pem" ]; then
		certtool --generate-privkey --key-type ecdsa --no-text --outfile "$ex/key.pem" \
		    2>/dev/null
		printf 'cn = localhost\ndns_name = localhost\nexpiration_days = 365\ntls_www_server\n' \
		    > "$ex/cert.tmpl"
		certtool --generate-self-signed --no-text --load-privkey "$ex/key.pem" \
		    --template "$ex/cert.tmpl" --outfile "$ex/cert.pem" 2>/dev/null
	fi
	printf '{"alias":"example-%s","certificate":"%s","private_key":"%s","certificate_type":"server"}\n' \
	    "$(date +%s)" "$(pem_json "$ex/cert.pem")" "$(pem_json "$ex/key.pem")" \
	    > "$ex/create.json"
	umask "$old_umask"
}

# start: prepare, say how to call certd, run it in the foreground.
start() {
	not_running
	prepare
	abs=$(cd "$dev_var" && pwd)
	api=http://$dev_listen/openapi/v1/teams/demo/certificates
	where=http://$dev_listen
	case $dev_listen in
	*:0)	where="$dev_listen (port 0: certd's \"certd ready\" line names its port)" ;;
	esac
	cat <<MSG

certd is starting on $where with its data in $abs.
A write token for every team was just added to $abs/tokens:

  TOKEN=$token

Create a certificate, update it, list it (from another shell in $top;
certctl and libcertd look for /run/certd/certd.sock, where the installed
service listens, unless CERTD_SOCKET says otherwise; README.md has the
whole tour):

  export CERTD_SOCKET=$abs/certd.sock
  API=$api
  ID=\$(curl -s -H "Authorization: \$TOKEN" -X POST \\
      --data-binary @$abs/example/create.json \$API |
      sed -n 's/^{"id":\\([0-9]*\\),.*/\\1/p'); echo "created id \$ID"
  curl -s -H "Authorization: \$TOKEN" -X PUT -d '{"certificate_type":"client"}' \\
      \$API/\$ID; echo
  curl -s -H "Authorization: \$TOKEN" \$API; echo
  $dev_bin/certctl list demo

Stop certd with Ctrl-C.

MSG
	exec "$dev_bin/certd" --data-dir "$dev_var" --listen "$dev_listen"
}

run() {
	not_running	# before anything is installed, built or written
	deps
	build "--disable-silent-rules"
	start
}

# The log of every test that automake counted as failed (its .trs says
# FAIL or ERROR): its failed checks first, then its last lines.
show_failed() {
	for trs in tests/*/*.trs; do
		grep -q -e '^:test-result: FAIL' -e '^:test-result: ERROR' \
		    "$trs" 2>/dev/null || continue
		log=${trs%.trs}.log
		echo "==== $log"
		grep -e '^not ok' -e 'Sanitizer' -e 'runtime error' "$log" |
		    head -n 20
		echo "---- last lines"
		tail -n 60 "$log"
	done
}

test_all() {
	deps
	build "--enable-werror"
	if ! make -j"$jobs" check; then
		show_failed
		exit 1
	fi
	make check-valgrind
	install_check
	package_check
	pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
	fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
	echo "tests: $pass passed, $fail failed; unit tests valgrind-clean; install and package checks passed"
}

package_only() {
	# shellcheck disable=SC2086 # a list of packages
	deps $PACKAGING
	sh tests/package/deb.sh
}

# The Debian package, built from a clone of the committed tree, installed,
# run and purged (tests/package/deb.sh; it needs root and says so otherwise).
package_check() {
	# shellcheck disable=SC2086 # a list of packages
	[ "$(id -u)" -eq 0 ] && deps $PACKAGING
	sh tests/package/deb.sh > package.log 2>&1 || {
		cat package.log; echo "FAIL: package check (tests/package/deb.sh)"; exit 1; }
	grep -e '^not ok' -e '# SKIP' package.log || true
	echo "PASS: package check ($(tail -n 1 package.log))"
}

# make install into a scratch root, then build the libcertd example against
# the installed header, library and pkg-config file.
install_check() {
	dest=$(mktemp -d)
	make install DESTDIR="$dest" > "$dest.log" 2>&1 || { cat "$dest.log"; exit 1; }
	pc="$dest/usr/local/lib/pkgconfig"
	flags=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$pc" \
	    pkg-config --cflags --libs libcertd)
	cc -Wall -Werror contrib/examples/ping.c -o "$dest/ping" $flags
	for f in bin/certd bin/certctl include/certd/certd.h lib/libcertd.so \
	    share/man/man1/certctl.1; do
		[ -e "$dest/usr/local/$f" ] || { echo "install: $f missing"; exit 1; }
	done
	# The service files, with configure's paths (doc/packaging.md).
	units=$(sed -n 's/^systemdsystemunitdir = //p' Makefile)
	sysusers=$(sed -n 's/^sysusersdir = //p' Makefile)
	tmpfiles=$(sed -n 's/^tmpfilesdir = //p' Makefile)
	for f in ${units:+$units/certd.service $units/certd-sync@.service} \
	    ${sysusers:+$sysusers/certd.conf} ${tmpfiles:+$tmpfiles/certd.conf} \
	    /etc/certd/certd.conf; do
		[ -f "$dest$f" ] || { echo "install: $f missing"; exit 1; }
	done
	[ -z "$units" ] || grep -q '^ExecStart=/usr/local/bin/certd --config /etc/certd/certd.conf$' \
	    "$dest$units/certd.service" || { echo "install: certd.service's ExecStart"; exit 1; }
	[ "$(stat -c %a "$dest/etc/certd/tokens")" = 640 ] ||
	    { echo "install: /etc/certd/tokens is not mode 0640"; exit 1; }
	grep -q 'DESTDIR is set: chown skipped' "$dest.log" ||
	    { echo "install: no word of the chown skipped under DESTDIR"; exit 1; }
	echo "PASS: install check (make install, libcertd example built)"
	rm -rf "$dest" "$dest.log"
}

# make check of a clean clone built with ASan and UBSan (CI's second lane).
sanitize() {
	deps
	dir=$(mktemp -d)
	chmod 755 "$dir"	# the tests run some programs as nobody
	git clone -q "$top" "$dir/src"
	(
		cd "$dir/src"
		autoreconf -fi > /dev/null 2>&1
		./configure --enable-werror --with-sanitizer=address,undefined \
		    CFLAGS="-g -O1" > configure.log 2>&1 || { cat configure.log; exit 1; }
		make -j"$jobs" > build.log 2>&1 || { tail -n 40 build.log; exit 1; }
		if ! make -j"$jobs" check > check.log 2>&1; then
			# No test result at all: the test programs did not build.
			grep -E '^(PASS|FAIL|ERROR)' check.log ||
			    tail -n 40 check.log
			show_failed
			exit 1
		fi
		pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
		fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
		echo "sanitizers: $pass passed, $fail failed"
	) || { rm -rf "$dir"; exit 1; }
	rm -rf "$dir"
}

case ${1:-} in
run)	run ;;
start)	start ;;
test)	test_all ;;
sanitize) sanitize ;;
package) package_only ;;
deps)	deps ;;
*)	echo "usage: contrib/dev.sh run|start|test|sanitize|package|deps" >&2; exit 2 ;;
esac
