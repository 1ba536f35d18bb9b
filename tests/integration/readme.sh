#!/bin/sh
# SPDX-License-Identifier: MIT
# README.md's five-minute tour runs as written, top to bottom, against a
# fresh certd started by `contrib/dev.sh start` (run's last step: token,
# example body, banner, certd), on a scratch directory and a kernel-chosen
# port.  The tour's commands are taken from README.md itself: the ```sh
# blocks of the "Five-minute tour" section, each after an HTML comment
# `<!-- tour -->` (every sh block of the section must have one, so none goes
# untested), and run in order in one shell whose working directory holds
# var/ (the data dir) and ./certctl; the block after
# `<!-- tour: set by the test -->` may only set TOKEN and API, which the
# test sets itself (TOKEN from dev.sh's banner).  A command is a line and
# its continuations (a line ending in \, | , && or ||); a comment line right
# after a command that shows JSON (`# {...}`) or a status (`# 204`) is the
# output the command must print.  Then: `contrib/dev.sh run` a second time
# says "already running" and exits 1 before it installs, builds or touches
# var/tokens; var/ is 0700 and var/tokens 0600 whatever the caller's umask.
. "$(dirname "$0")/lib.sh"

README="$CERTD_SRCDIR/README.md"
DEV="$CERTD_SRCDIR/contrib/dev.sh"
W="$T/tour"		# the tour's working directory
R="$T/run"		# commands, outputs, statuses
mkdir -p "$W" "$R"
ln -s "$CERTCTL" "$W/certctl"

# --- extract the tour ----------------------------------------------------------
# Writes $R/set (lines of the "set by the test" block), $R/cmd.N, $R/exp.N
# (expected output, when the README shows one) and $R/n (command count);
# prints "unmarked" for a sh block of the section without a marker.
awk -v R="$R" '
function flush() {
	if (cmd != "") { n++; printf "%s", cmd > (R "/cmd." n); close(R "/cmd." n) }
	cmd = ""; cont = 0
}
/^## / { if (in_tour) { flush(); exit } }
/^## Five-minute tour/ { in_tour = 1; next }
!in_tour { next }
/^<!-- tour -->$/ { mark = "run"; next }
/^<!-- tour: set by the test -->$/ { mark = "set"; next }
/^```sh$/ { if (mark == "") print "unmarked"; block = mark; mark = ""; next }
/^```$/ { if (block == "run") flush(); block = ""; next }
block == "set" { print > (R "/set"); next }
block != "run" { next }
{
	if (cont) { cmd = cmd $0 "\n"
	} else if ($0 ~ /^[ \t]*$/) { last = ""; next
	} else if ($0 ~ /^#/) {
		out = substr($0, 3)
		if (last != "" && (out ~ /^[{[]/ || out ~ /^[0-9]+$/)) {
			print out > (R "/exp." n); close(R "/exp." n)
		}
		last = ""; next
	} else { flush(); cmd = $0 "\n" }
	last = cmd
	cont = ($0 ~ /(\\|\||&&|\|\|)[ \t]*$/)
	if (!cont) { flush(); last = "x" }
}
END { flush(); print n > (R "/n") }
' "$README" > "$R/unmarked"
N=$(cat "$R/n")
[ -s "$R/unmarked" ] && not_ok "every sh block of the tour has a tour marker" ||
    ok "every sh block of the tour has a tour marker"
[ "${N:-0}" -ge 10 ] && ok "the tour has $N commands" || not_ok "tour commands: ${N:-none}"
if [ -f "$R/set" ] && ! grep -v -e '^[ \t]*$' -e '^[ \t]*#' "$R/set" |
    grep -q -v -E '^(TOKEN|API)=' && grep -q '^TOKEN=' "$R/set" &&
    grep -q '^API=' "$R/set"; then
	ok "the block the test replaces only sets TOKEN and API"
else
	not_ok "set block: $(cat "$R/set" 2>/dev/null || echo absent)"
fi

# --- certd as contrib/dev.sh run starts it ------------------------------------
# (umask 0: dev.sh must make var/ and its files private by itself)
(
	umask 000
	cd "$W" && CERTD_DEV_VAR="$W/var" CERTD_DEV_LISTEN=127.0.0.1:0 \
	    CERTD_DEV_BUILDDIR="$CERTD_BUILDDIR" exec sh "$DEV" start
) > "$T/banner" 2> "$T/dev.log" &
CERTD_PID=$!		# dev.sh start execs certd: its pid
LOG="$T/dev.log"
i=0
while ! grep -q 'certd ready' "$LOG" 2>/dev/null; do
	if ! kill -0 "$CERTD_PID" 2>/dev/null || [ $i -gt 200 ]; then
		echo "Bail out! dev.sh start did not start certd: $(tail -n 5 "$LOG")"
		CERTD_PID=
		exit 1
	fi
	i=$((i + 1)); sleep 0.1
done
PORT=$(sed -n 's/.*certd ready listen=[^ ]*:\([0-9]*\) .*/\1/p' "$LOG")
BASE="http://127.0.0.1:$PORT"
TOKEN=$(sed -n 's/^  TOKEN=//p' "$T/banner")
API="$BASE/openapi/v1/teams/demo/certificates"
case $TOKEN in
ctk_*) ok "dev.sh start printed a token" ;;
*) not_ok "no token in the banner: $(cat "$T/banner")" ;;
esac
[ "$(stat -c %a "$W/var")" = 700 ] && [ "$(stat -c %a "$W/var/tokens")" = 600 ] &&
    [ "$(stat -c %a "$W/var/example/key.pem")" = 600 ] &&
    ok "var 0700, var/tokens and the example key 0600 under umask 000" ||
    not_ok "modes: $(stat -c '%a %n' "$W/var" "$W/var/tokens" "$W/var/example/key.pem")"

# --- run the tour -------------------------------------------------------------
{
	printf 'TOKEN=%s\nAPI=%s\n' "$TOKEN" "$API"
	i=1
	while [ $i -le "$N" ]; do
		printf '{\n%s} > "%s/out.%d" 2> "%s/err.%d"\necho $? > "%s/rc.%d"\n' \
		    "$(cat "$R/cmd.$i")
" "$R" $i "$R" $i "$R" $i
		i=$((i + 1))
	done
} > "$R/tour.sh"
(cd "$W" && timeout 60 sh "$R/tour.sh") || not_ok "the tour script: exit $?"
sleep 0.5	# the background watch prints its last event

i=1 bad=
while [ $i -le "$N" ]; do
	[ "$(cat "$R/rc.$i" 2>/dev/null)" = 0 ] ||
	    bad="$bad [$(head -n 1 "$R/cmd.$i"): exit $(cat "$R/rc.$i" 2>/dev/null || echo none): $(head -c 200 "$R/err.$i")]"
	i=$((i + 1))
done
[ -z "$bad" ] && ok "every tour command exits 0" || not_ok "commands failed:$bad"

# cmd PATTERN: the number of the first command whose text matches (grep -E).
cmd() {
	j=1
	while [ $j -le "$N" ]; do
		grep -q -E -- "$1" "$R/cmd.$j" && { echo $j; return 0; }
		j=$((j + 1))
	done
	echo 0
}
out() { cat "$R/out.$1" 2>/dev/null; }

i=1 bad= n=0
while [ $i -le "$N" ]; do
	if [ -f "$R/exp.$i" ]; then
		n=$((n + 1))
		[ "$(out $i)" = "$(cat "$R/exp.$i")" ] ||
		    bad="$bad [$(head -n 1 "$R/cmd.$i"): README shows $(cat "$R/exp.$i"), got $(out $i)]"
	fi
	i=$((i + 1))
done
[ $n -ge 2 ] && [ -z "$bad" ] && ok "the $n outputs the README shows are what the commands print" ||
    not_ok "outputs ($n):$bad"

c=$(cmd 'X POST --data-binary @var/example/create.json')
ID=$(out "$c" | sed -n 's/^created id \([0-9][0-9]*\)$/\1/p')
[ "$c" != 0 ] && [ -n "$ID" ] && ok "the create answers an id ($ID)" ||
    not_ok "create (command $c): $(out "$c")"
c=$(cmd 'X PUT .*\$API/\$ID')
out "$c" | grep -q "^{\"id\":$ID,.*\"certificate_type\":\"client\"" &&
    ok "the update changes the type of that id" || not_ok "update (command $c): $(out "$c" | head -c 300)"
c=$(cmd '"\$API\?page=1')
out "$c" | grep -q "\"list\":\[{\"id\":$ID,.*\"total\":1" &&
    ok "the list shows it" || not_ok "list (command $c): $(out "$c" | head -c 300)"
c=$(cmd '^curl -s -H "Authorization: \$TOKEN" \$API/\$ID$')
out "$c" | grep -q "^{\"id\":$ID," && out "$c" | grep -q 'BEGIN CERTIFICATE' &&
    out "$c" | grep -q 'PRIVATE KEY' &&
    ok "the GET returns it, with PEM and key" || not_ok "get (command $c): $(out "$c" | head -c 300)"
c=$(cmd 'X DELETE \$API/\$ID')
[ "$c" != 0 ] && [ "$(out "$c")" = 204 ] && ok "the delete is 204" ||
    not_ok "delete (command $c): $(out "$c")"

c=$(cmd 'certctl list demo')
out "$c" | grep -q 'example-socket' && ok "certctl list shows the socket's certificate" ||
    not_ok "certctl list (command $c): $(out "$c")"
c=$(cmd 'certctl get demo \$SID --cert')
[ "$(out "$c" | head -n 1)" = "-----BEGIN CERTIFICATE-----" ] &&
    cmp -s "$R/out.$c" "$W/var/example/cert.pem" &&
    ok "certctl get --cert prints the certificate PEM" ||
    not_ok "certctl get (command $c): $(out "$c" | head -n 3)"
c=$(cmd 'certctl put demo --id \$SID')
out "$c" | grep -q '^updated [0-9][0-9]* example-socket (revision [0-9]*)$' &&
    ok "certctl put --id updates it" || not_ok "certctl put --id (command $c): $(out "$c")"
# The watch replays the team's certificates (--since 0), then follows: it
# sees the socket's certificate (live, or replayed when it connected after
# the put) and its delete, three certctl runs later.
c=$(cmd 'certctl watch demo')
w=$(out "$c")
printf '%s\n' "$w" | grep -q '"event":"put".*"alias":"example-socket"' &&
    printf '%s\n' "$w" | grep -q '"event":"delete".*"alias":"example-socket"' &&
    ok "certctl watch shows the socket part's certificate and its delete" ||
    not_ok "watch (command $c): $w"
req GET "/openapi/v1/teams/demo/certificates" "" "$TOKEN"
expect_json total 0 "the tour leaves no certificate behind"

# --- a second run while certd runs --------------------------------------------
# A copy of dev.sh in a scratch tree: were the check to come too late, run
# would build there (and fail), not in the tree under test.
mkdir -p "$T/top/contrib"
cp "$DEV" "$T/top/contrib/dev.sh"
before=$(stat -c '%i %s %Y' "$W/var/tokens"; md5sum < "$W/var/tokens")
status=0
CERTD_DEV_VAR="$W/var" CERTD_DEV_BUILDDIR="$CERTD_BUILDDIR" \
    timeout 120 sh "$T/top/contrib/dev.sh" run > "$T/run2.out" 2> "$T/run2.err" ||
    status=$?
pid=$(cat "$W/var/certd.lock")
[ $status = 1 ] && grep -q "certd is already running on $W/var (pid $pid)" "$T/run2.err" &&
    ok "dev.sh run while certd runs: exit 1, \"already running\", its pid" ||
    not_ok "second run: exit $status: $(head -c 300 "$T/run2.err")"
[ "$(stat -c '%i %s %Y' "$W/var/tokens"; md5sum < "$W/var/tokens")" = "$before" ] &&
    [ ! -e "$W/var/tokens.new" ] &&
    ok "... before touching var/tokens" || not_ok "var/tokens changed by the second run"
[ ! -e "$T/top/configure" ] && [ ! -s "$T/run2.out" ] &&
    ok "... and before installing or building anything" ||
    not_ok "second run went on: $(head -c 300 "$T/run2.out")"
status=0
CERTD_DEV_VAR="$W/var" CERTD_DEV_BUILDDIR="$CERTD_BUILDDIR" \
    sh "$DEV" start > /dev/null 2> "$T/start2.err" || status=$?
[ $status = 1 ] && grep -q 'already running' "$T/start2.err" &&
    ok "dev.sh start while certd runs: the same" ||
    not_ok "second start: exit $status: $(head -c 300 "$T/start2.err")"

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
