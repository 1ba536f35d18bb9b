#!/bin/sh
# SPDX-License-Identifier: MIT
# Developer entry points on Debian 12 (the two commands of README.md):
#
#   contrib/dev.sh run    install dependencies, build, run certd in the
#                         foreground on ./var and print how to call it
#   contrib/dev.sh test   install dependencies, build with -Werror and run
#                         the whole test suite (make check, the unit tests
#                         again under valgrind, make install)
#   contrib/dev.sh sanitize  the same suite built with AddressSanitizer and
#                         UndefinedBehaviorSanitizer, in a scratch clone
#
# Dependencies come from Debian's packages; apt-get runs only when one is
# missing, through sudo when not root.
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config \
libevent-dev libgnutls28-dev libmsgpack-dev librocksdb-dev libjansson-dev \
libisal-dev \
libcmocka-dev gnutls-bin openssl curl util-linux nginx-light haproxy valgrind strace"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

deps() {
	missing=
	for p in $PACKAGES; do
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

run() {
	deps
	build "--disable-silent-rules"
	# certd refuses a data dir others can enter and a token file others
	# can write (certd.8, PERMISSIONS): 0700 and 0600 whatever the umask.
	mkdir -p var/example
	chmod 700 var
	tokens=var/tokens
	[ -f "$tokens" ] || : > "$tokens"
	out=$(./certctl token new --name dev --teams '*' --role write)
	token=$(printf '%s\n' "$out" | sed -n 1p)
	grep -v '^dev ' "$tokens" > "$tokens.new" || true
	printf '%s\n' "$out" | sed -n 2p >> "$tokens.new"
	chmod 600 "$tokens.new"
	mv "$tokens.new" "$tokens"

	ex=var/example
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

	api=http://127.0.0.1:7070/openapi/v1/teams/demo/certificates
	cat <<MSG

certd is starting on http://127.0.0.1:7070 with its data in ./var.
A write token for every team was just added to var/tokens:

  TOKEN=$token

Create a certificate, update it, list it (from another shell in $top;
certctl and libcertd look for /run/certd/certd.sock, where the installed
service listens, unless CERTD_SOCKET says otherwise):

  export CERTD_SOCKET=$top/var/certd.sock
  ID=\$(curl -s -H "Authorization: \$TOKEN" -X POST \\
      --data-binary @var/example/create.json $api \\
      | sed -n 's/.*"id":\\([0-9]*\\).*/\\1/p'); echo "created id \$ID"
  curl -s -H "Authorization: \$TOKEN" -X PUT -d '{"certificate_type":"client"}' \\
      $api/\$ID; echo
  curl -s -H "Authorization: \$TOKEN" $api; echo
  ./certctl list demo

Stop certd with Ctrl-C.

MSG
	exec ./certd
}

test_all() {
	deps
	build "--enable-werror"
	if ! make -j"$jobs" check; then
		for log in tests/unit/*.log tests/integration/*.log; do
			[ -f "$log" ] || continue
			grep -q -e '^not ok' -e 'FAILED' -e 'ERROR' "$log" 2>/dev/null || continue
			echo "==== $log"
			tail -n 60 "$log"
		done
		exit 1
	fi
	make check-valgrind
	install_check
	pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
	fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
	echo "tests: $pass passed, $fail failed; unit tests valgrind-clean; install check passed"
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
			for log in tests/unit/*.log tests/integration/*.log; do
				grep -q -e '^not ok' -e 'FAILED' -e 'ERROR' -e 'Sanitizer' \
				    "$log" 2>/dev/null || continue
				echo "==== $log"; tail -n 60 "$log"
			done
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
test)	test_all ;;
sanitize) sanitize ;;
deps)	deps ;;
*)	echo "usage: contrib/dev.sh run|test|sanitize|deps" >&2; exit 2 ;;
esac
