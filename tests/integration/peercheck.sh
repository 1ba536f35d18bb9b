#!/bin/sh
# SPDX-License-Identifier: MIT
# Clients check who they talk to (SO_PEERCRED).  The attack: nobody runs a
# real certd of their own and listens on a socket that root's certctl is
# pointed at.  Before the check, root's `certctl put` handed nobody the
# private key and root's `certctl sync` wrote nobody's key and certificate.
# Now certctl (put, get, list, watch, sync) and libcertd (the reloader of
# reload-demo) refuse that server right after connect, before any request,
# and name the socket, the server's uid and what they expected; sync and
# the reloader say so at every retry.  CERTD_SERVER_UID (a name or a
# number) makes them accept it; a certd running as root is accepted by a
# client running as nobody.
. "$(dirname "$0")/lib.sh"

if ! nobody_ok; then
	echo "ok - peer checks # SKIP needs root, setpriv and a build nobody can run"
	exit 0
fi
DEMO="$CERTD_BUILDDIR/reload-demo"
[ -x "$DEMO" ] || { echo "reload-demo not built at $DEMO" >&2; exit 99; }

# pick_port: a loopback port below the kernel's ephemeral range (32768 and
# up, where outgoing connections of the tests running beside this one take
# theirs) on which nothing answers.
pick_port() {
	while :; do
		_p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000))
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
		    "http://127.0.0.1:$_p/" 2>/dev/null)" = 000 ] && break
	done
	echo "$_p"
}
DEMO_PORT=$(pick_port)
AS_NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
NOBODY_UID=$(id -u nobody)

# Everything started here dies with the test.
PIDS=
peer_cleanup() {
	st=$?
	set +e
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	cleanup "$st"
}
trap peer_cleanup EXIT
trap 'exit 1' HUP INT TERM

# run DESCRIPTION EXPECTED_STATUS CMD...: exit status; output in $T/o, $T/e.
run() {
	desc=$1 want=$2; shift 2
	status=0
	"$@" > "$T/o" 2> "$T/e" < /dev/null || status=$?
	if [ "$status" = "$want" ]; then ok "$desc"; else
		not_ok "$desc: exit $status, stdout $(head -c 300 "$T/o"), stderr $(head -c 300 "$T/e")"
	fi
}
has() {	# FILE PATTERN DESCRIPTION
	if grep -q -- "$2" "$1" 2>/dev/null; then ok "$3"; else
		not_ok "$3: no '$2' in $(head -c 400 "$1" 2>/dev/null)"
	fi
}
hasnt() {	# FILE PATTERN DESCRIPTION
	if grep -q -- "$2" "$1" 2>/dev/null; then
		not_ok "$3: '$2' in $(head -c 400 "$1")"
	else ok "$3"; fi
}
# wait_for FILE PATTERN TENTHS: until PATTERN shows in FILE.
wait_for() {
	_n=$3
	until grep -q -- "$2" "$1" 2>/dev/null; do
		_n=$((_n - 1)); [ "$_n" -gt 0 ] || return 1; sleep 0.1
	done
}
# bg LOG CMD...: CMD in the background, stderr in LOG, pid in $BG.
bg() {
	_log=$1; shift
	"$@" > "$_log.out" 2> "$_log" < /dev/null &
	BG=$!
	PIDS="$PIDS $BG"
}
# stop PID: SIGKILL and reap.
stop() { kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# --- nobody's own certd, on nobody's socket -----------------------------------
E="$T/evil"; ED="$E/data"; ES="$E/certd.sock"
mkdir -p "$ED"
ETOKEN=$(new_token evil '*' write "$ED/tokens")
cp "$PKI/leaf-rsa.chain.pem" "$PKI/leaf-rsa.key" "$E/"
chown -R nobody:nogroup "$E"; chmod 700 "$ED"; chmod 600 "$ED/tokens"
cat > "$T/certd-as-nobody" <<EOF
#!/bin/sh
exec $AS_NOBODY "$CERTD" "\$@"
EOF
chmod 755 "$T/certd-as-nobody"
REAL_CERTD=$CERTD
CERTD="$T/certd-as-nobody"
start_certd "$ED" --socket "$ES"
CERTD=$REAL_CERTD
EVIL_PID=$CERTD_PID; EVIL_BASE=$BASE; CERTD_PID=
PIDS="$PIDS $EVIL_PID"
owner=$(stat -c %u "$ES")
[ "$owner" = "$NOBODY_UID" ] && ok "nobody's certd listens on $ES" ||
    not_ok "the socket is owned by uid $owner"

# evil_total: how many certificates nobody's certd holds in team acme.
evil_total() {
	BASE=$EVIL_BASE req GET "/openapi/v1/teams/acme/certificates" "" "$ETOKEN"
	jget total 2>/dev/null || echo "?"
}
REFUSED="certd at $ES runs as uid $NOBODY_UID"

# --- root's certctl refuses it ----------------------------------------------------
unset CERTD_SERVER_UID
run "root's certctl put to nobody's certd is refused" 3 \
    "$CERTCTL" -s "$ES" put acme --alias www --type server \
    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
echo "# certctl said: $(head -n 1 "$T/e")"
has "$T/e" "$REFUSED" "the refusal names the socket and the server's uid"
has "$T/e" "expected root" "... and what was expected"
[ "$(evil_total)" = 0 ] && ok "nobody's certd received no certificate" ||
    not_ok "nobody's certd holds $(evil_total) certificate(s) from root's put"
grep -q 'op=create' "$LOG" &&
    not_ok "nobody's certd logged a create" || ok "nobody's certd logged no create"
run "root's certctl get is refused" 3 "$CERTCTL" -s "$ES" get acme 1
has "$T/e" "$REFUSED" "get says why"
run "root's certctl list is refused" 3 "$CERTCTL" -s "$ES" list acme
has "$T/e" "$REFUSED" "list says why"
run "root's certctl ping is refused" 3 "$CERTCTL" -s "$ES" ping
run "root's certctl watch is refused" 3 timeout 10 "$CERTCTL" -s "$ES" watch acme
has "$T/e" "$REFUSED" "watch says why"
run "CERTD_SOCKET is checked the same way" 3 env CERTD_SOCKET="$ES" "$CERTCTL" ping
has "$T/e" "$REFUSED" "... with the same message"
run "a CERTD_SERVER_UID that names no user does not help" 3 \
    env CERTD_SERVER_UID=no-such-user-here "$CERTCTL" -s "$ES" ping
has "$T/e" "no-such-user-here" "... and the message names it"
echo "# certctl said: $(head -n 1 "$T/e")"

# nobody puts a certificate and key of their own, for root's sync to take.
run "nobody's certctl talks to nobody's certd (the caller's own uid)" 0 \
    $AS_NOBODY "$CERTCTL" -s "$ES" put acme --alias evil --type server \
    --cert "$E/leaf-rsa.chain.pem" --key "$E/leaf-rsa.key"

# root's sync: refused at every retry, writes nothing.
O="$T/files"; mkdir -p "$O"
bg "$T/sync.log" "$CERTCTL" -s "$ES" sync acme --alias evil \
    --cert-file "$O/cert.pem" --key-file "$O/key.pem" --name root-sync
SYNC=$BG
sleep 2
n=$(grep -c -- "$REFUSED" "$T/sync.log" || true)
echo "# sync said: $(grep -m 1 -- "$REFUSED" "$T/sync.log")"
[ "$n" -ge 2 ] && ok "root's sync logs the refusal at each retry ($n times)" ||
    not_ok "root's sync logged the refusal $n times: $(head -c 400 "$T/sync.log")"
kill -0 "$SYNC" 2>/dev/null && ok "... and keeps retrying" ||
    not_ok "sync ended: $(tail -n 3 "$T/sync.log")"
stop "$SYNC"
[ -z "$(ls -A "$O")" ] && ok "root's sync wrote no file" ||
    not_ok "root's sync wrote $(ls "$O") from nobody's certd"

# libcertd: the GnuTLS reloader of reload-demo, as root.
bg "$T/demo.log" "$DEMO" -s "$ES" --team acme --alias evil --port "$DEMO_PORT"
DEMO_PID=$BG
if wait_for "$T/demo.log" "$REFUSED" 50; then
	ok "libcertd's reloader refuses nobody's certd"
else
	not_ok "reloader: $(head -c 400 "$T/demo.log")"
fi
sleep 1
n=$(grep -c -- "$REFUSED" "$T/demo.log" || true)
[ "$n" -ge 2 ] && ok "... at each retry ($n times)" ||
    not_ok "the reloader reported the refusal $n times"
hasnt "$T/demo.log" "serving revision" "the reloader did not load nobody's key"
stop "$DEMO_PID"

# --- accepted when nobody is the configured certd user ------------------------------
for who in nobody "$NOBODY_UID"; do
	run "put with CERTD_SERVER_UID=$who is accepted" 0 \
	    env CERTD_SERVER_UID="$who" "$CERTCTL" -s "$ES" put acme \
	    --alias "www-$who" --type server \
	    --cert "$PKI/leaf-ec.pem" --key "$PKI/leaf-ec.key"
	run "get with CERTD_SERVER_UID=$who is accepted" 0 \
	    env CERTD_SERVER_UID="$who" "$CERTCTL" -s "$ES" get acme --alias evil
	run "list with CERTD_SERVER_UID=$who is accepted" 0 \
	    env CERTD_SERVER_UID="$who" "$CERTCTL" -s "$ES" list acme
done
[ "$(evil_total)" = 3 ] && ok "nobody's certd received the accepted puts" ||
    not_ok "nobody's certd holds $(evil_total), want 3"

bg "$T/sync2.log" env CERTD_SERVER_UID="$NOBODY_UID" "$CERTCTL" -s "$ES" sync \
    acme --alias evil --cert-file "$O/cert.pem" --key-file "$O/key.pem" \
    --name root-sync
SYNC=$BG
n=0; while [ ! -f "$O/key.pem" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
cmp -s "$O/key.pem" "$PKI/leaf-rsa.key" &&
    ok "sync with CERTD_SERVER_UID=$NOBODY_UID writes the files" ||
    not_ok "sync with CERTD_SERVER_UID: $(tail -n 3 "$T/sync2.log")"
stop "$SYNC"

DEMO_PORT=$(pick_port)
bg "$T/demo2.log" env CERTD_SERVER_UID=nobody "$DEMO" -s "$ES" --team acme \
    --alias evil --port "$DEMO_PORT"
DEMO_PID=$BG
wait_for "$T/demo2.log" "watching" 50 &&
    ok "the reloader with CERTD_SERVER_UID=nobody connects" ||
    not_ok "reloader: $(head -c 400 "$T/demo2.log")"
stop "$DEMO_PID"

# --- a certd running as root is accepted by everyone --------------------------------
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
chmod 666 "$D/certd.sock"; chmod 755 "$D"
run "nobody's certctl accepts root's certd" 0 \
    $AS_NOBODY "$CERTCTL" -s "$D/certd.sock" ping
run "root's certctl accepts root's certd (its own uid)" 0 \
    "$CERTCTL" -s "$D/certd.sock" ping
run "a CERTD_SERVER_UID of another user does not stop root from being accepted" 0 \
    env CERTD_SERVER_UID=nobody $AS_NOBODY "$CERTCTL" -s "$D/certd.sock" ping
stop_certd && ok "root's certd exits 0" || not_ok "root's certd exit status"

CERTD_PID=$EVIL_PID
stop_certd && ok "nobody's certd exits 0" || not_ok "nobody's certd exit status"
finish
