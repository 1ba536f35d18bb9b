#!/bin/sh
# SPDX-License-Identifier: MIT
# The libcertd GnuTLS reloader end to end, through contrib's reload-demo
# against the real certd: the first certificate is served, a REST update
# reaches new handshakes without restarting the server, a TLS connection
# opened before the change keeps working (and keeps its certificate), the
# change is acked to certd (subscribers), the threaded reloader does the
# same, and a reloader without the key permission acks "failed".
. "$(dirname "$0")/lib.sh"

DEMO="$CERTD_BUILDDIR/reload-demo"
[ -x "$DEMO" ] || { echo "reload-demo not built at $DEMO" >&2; exit 99; }
for tool in gnutls-cli certtool curl od; do
	command -v "$tool" > /dev/null || { echo "# SKIP: no $tool"; exit 77; }
done

# Everything started here dies with the test, whatever happens; a pid
# leaves the list once reaped (certd's is lib.sh's).
PIDS=
forget() { PIDS=$(echo " $PIDS " | sed "s/ $1 / /"); }
reload_cleanup() {
	st=$?
	exec 3>&- 2>/dev/null || true
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
	cleanup "$st"
}
trap reload_cleanup EXIT

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
cat > "$T/certd.conf" <<CONF
[certd]
socket_group = nogroup
[acl]
user nobody = teams=acme perms=read
CONF
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/acme/certificates

# fp FILE: SHA-256 fingerprint of the first certificate of FILE, lower hex.
fp() { certtool --fingerprint --hash sha256 --infile "$1" 2>/dev/null | tr -d ':' | tr 'A-F' 'a-f'; }
FP1=$(fp "$PKI/leaf-rsa.pem")
FP2=$(fp "$PKI/leaf-ec.pem")

# presented PORT: fingerprint of the certificate a new handshake presents.
presented() {
	gnutls-cli --insecure --print-cert -p "$1" 127.0.0.1 < /dev/null \
	    2>/dev/null | awk '/-----BEGIN CERTIFICATE-----/ { n++ } n == 1 { print }
	    /-----END CERTIFICATE-----/ && n == 1 { exit }' > "$T/peer.pem"
	[ -s "$T/peer.pem" ] && fp "$T/peer.pem"
}

# wait_presented PORT FP: poll new handshakes until they present FP (10 s).
wait_presented() {
	i=0
	while [ "$(presented "$1" || true)" != "$2" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || return 1
		sleep 0.1
	done
}

# start_demo NAME ARGS...: start reload-demo on a random free port in
# 20000-60000 (another one when taken) and wait for "ready"; sets
# DEMO_PID and DEMO_PORT.
start_demo() {
	name=$1; shift
	tries=0
	while :; do
		tries=$((tries + 1))
		DEMO_PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40001))
		"$DEMO" -s "$S" --team acme --port "$DEMO_PORT" "$@" \
		    > "$T/$name.out" 2> "$T/$name.err" 3>&- &
		DEMO_PID=$!
		PIDS="$PIDS $DEMO_PID"
		i=0
		while ! grep -q '^ready$' "$T/$name.out" 2>/dev/null; do
			if ! kill -0 "$DEMO_PID" 2>/dev/null; then
				wait "$DEMO_PID" 2>/dev/null || true
				forget "$DEMO_PID"
				break
			fi
			i=$((i + 1))
			if [ "$i" -gt 100 ]; then
				echo "# $name not ready after 10 s:" >&2
				sed 's/^/#   /' "$T/$name.err" >&2
				return 1
			fi
			sleep 0.1
		done
		grep -q '^ready$' "$T/$name.out" 2>/dev/null && return 0
		if grep -q 'listen on' "$T/$name.err" && [ "$tries" -lt 10 ]; then
			continue	# port taken: another one
		fi
		echo "# $name died:" >&2
		sed 's/^/#   /' "$T/$name.err" >&2
		return 1
	done
}

# sub FIELD NAME: FIELD of the subscriber called NAME of certificate $ID.
sub() {
	req GET "$C/$ID/subscribers"
	j=0
	while n=$(jget "list.$j.name" 2>/dev/null); do
		if [ "$n" = "$2" ]; then jget "list.$j.$1"; return; fi
		j=$((j + 1))
	done
	echo '<absent>'
}

# wait_sub NAME STATUS REVISION: until NAME acked REVISION with STATUS (10 s).
wait_sub() {
	i=0
	while [ "$(sub status "$1")" != "$2" ] || [ "$(sub revision "$1")" != "$3" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || return 1
		sleep 0.1
	done
}

# --- the first certificate -------------------------------------------------------
body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c1"
expect 200 "create the certificate"
ID=$(jget id)
REV1=$(jget revision)

if start_demo demo --alias web; then ok "reload-demo ready"; else
	not_ok "reload-demo ready"; finish; exit 1
fi
PID=$DEMO_PID DPORT=$DEMO_PORT
[ "$(presented "$DPORT")" = "$FP1" ] && ok "new handshakes present the first certificate" ||
    not_ok "first certificate: presented $(presented "$DPORT"), want $FP1"
code=$(curl -sk -o "$T/body" -w '%{http_code}' "https://127.0.0.1:$DPORT/") || code=000
[ "$code" = 200 ] && [ "$(cat "$T/body")" = ok ] && ok "HTTPS answers ok" ||
    not_ok "HTTPS: $code $(head -c 100 "$T/body")"
wait_sub reload-demo ok "$REV1" && ok "subscribers: reload-demo acked revision $REV1" ||
    not_ok "subscribers before the change: $(cat "$T/out")"

# --- a connection opened before the change --------------------------------------
mkfifo "$T/fifo"
gnutls-cli --insecure -p "$DPORT" 127.0.0.1 < "$T/fifo" > "$T/old.out" 2> "$T/old.err" &
OLD=$!
PIDS="$PIDS $OLD"
exec 3> "$T/fifo"	# its only writer: children are started with 3>&-
# answers N: wait until the old connection has N responses (5 s).
answers() {
	i=0
	while [ "$(grep -c '^ok' "$T/old.out" 2>/dev/null)" -lt "$1" ]; do
		i=$((i + 1))
		[ "$i" -le 50 ] || return 1
		sleep 0.1
	done
}
printf 'GET / HTTP/1.1\r\nHost: demo\r\n\r\n' >&3
answers 1 && ok "old connection: first request answered" ||
    not_ok "old connection: no answer: $(tail -n 5 "$T/old.out") $(cat "$T/old.err")"

# --- a threaded reloader beside it ----------------------------------------------
if start_demo thread --alias web --thread --name reload-demo-thread; then
	ok "reload-demo --thread ready"
else
	not_ok "reload-demo --thread ready"
fi
TPID=$DEMO_PID TPORT=$DEMO_PORT

# --- the change --------------------------------------------------------------------
body "$T/c2" certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key"
req PUT "$C/$ID" "$T/c2"
expect 200 "PUT a new certificate and key"
REV2=$(jget revision)
[ "$REV2" -gt "$REV1" ] && ok "the PUT made revision $REV2" || not_ok "revision $REV2"
wait_presented "$DPORT" "$FP2" && ok "new handshakes present the new certificate" ||
    not_ok "new certificate not presented: $(presented "$DPORT"), want $FP2"
kill -0 "$PID" 2>/dev/null && ok "reload-demo kept running (pid $PID)" ||
    not_ok "reload-demo died: $(cat "$T/demo.err")"
grep -q "serving revision $REV2 " "$T/demo.err" && ok "reload-demo reported the swap" ||
    not_ok "no swap reported: $(cat "$T/demo.err")"

printf 'GET / HTTP/1.1\r\nHost: demo\r\n\r\n' >&3
answers 2 && ok "old connection still answers ok after the change" ||
    not_ok "old connection after the change: $(tail -n 5 "$T/old.out") $(cat "$T/old.err")"
tr -d '\r' < "$T/old.out" | sed -n 's/^X-Cert-Sha256: //p' > "$T/old.fps"
[ "$(sed -n 2p "$T/old.fps")" = "$FP1" ] &&
    ok "the old session still holds the certificate it was made with" ||
    not_ok "old session certificate: $(cat "$T/old.fps")"
curl -sk -D "$T/hdr" -o /dev/null "https://127.0.0.1:$DPORT/" || true
tr -d '\r' < "$T/hdr" | grep -q "^X-Cert-Sha256: $FP2$" &&
    ok "a new connection's session holds the new certificate" ||
    not_ok "new session: $(cat "$T/hdr")"
exec 3>&-
status=0; wait "$OLD" || status=$?
forget "$OLD"
[ "$status" = 0 ] && ok "old connection closed cleanly" || not_ok "gnutls-cli exit $status"

wait_sub reload-demo ok "$REV2" && ok "subscribers: reload-demo acked revision $REV2 ok" ||
    not_ok "subscribers after the change: $(cat "$T/out")"
[ "$(sub pid reload-demo)" = "$PID" ] && ok "the ack came from the same reload-demo process" ||
    not_ok "subscriber pid $(sub pid reload-demo), want $PID"
[ "$(sub detail reload-demo)" = reloaded ] && ok "ack detail is reloaded" ||
    not_ok "ack detail: $(sub detail reload-demo)"

wait_presented "$TPORT" "$FP2" && ok "threaded reloader: new certificate presented" ||
    not_ok "threaded reloader still presents $(presented "$TPORT")"
wait_sub reload-demo-thread ok "$REV2" && ok "threaded reloader acked revision $REV2" ||
    not_ok "threaded subscriber: $(cat "$T/out")"

# --- back again, by id this time -----------------------------------------------
req PUT "$C/$ID" "$T/c1"
expect 200 "PUT the first certificate back"
REV3=$(jget revision)
wait_presented "$DPORT" "$FP1" && ok "swapped back without a restart" ||
    not_ok "not swapped back: $(presented "$DPORT")"
wait_sub reload-demo ok "$REV3" && ok "acked revision $REV3" ||
    not_ok "subscribers: $(cat "$T/out")"

# --- certd restarts under a running reload-demo ----------------------------------
stop_certd TERM && ok "certd stops" || not_ok "certd stops"
[ "$(presented "$DPORT")" = "$FP1" ] && ok "still serving while certd is down" ||
    not_ok "while certd is down: $(presented "$DPORT")"
start_certd "$D" --socket "$S" --config "$T/certd.conf"
wait_sub reload-demo ok "$REV3" && ok "after certd restarts the new watch shows the last ack" ||
    not_ok "subscribers after the restart: $(cat "$T/out")"
req PUT "$C/$ID" "$T/c2"
expect 200 "PUT after the restart"
REV4=$(jget revision)
wait_presented "$DPORT" "$FP2" && ok "changes after the restart are followed" ||
    not_ok "after the restart: $(presented "$DPORT")"
wait_sub reload-demo ok "$REV4" && ok "and acked (revision $REV4)" ||
    not_ok "subscribers: $(cat "$T/out")"
REV3=$REV4

# --- a reloader without the key permission --------------------------------------
if nobody_ok; then
	chmod 755 "$T"
	# A port in use (reload-demo's): it must fail before watching.
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$DEMO" -s "$S" \
	    --team acme --id "$ID" --port "$DPORT" --name nokey \
	    > "$T/nokey.out" 2> "$T/nokey.err" 3>&- &
	NOKEY=$!
	PIDS="$PIDS $NOKEY"
	status=0; wait "$NOKEY" || status=$?
	forget "$NOKEY"
	[ "$status" = 1 ] && grep -q 'listen on' "$T/nokey.err" &&
	    ok "reload-demo fails cleanly on a port in use" ||
	    not_ok "listen failure: exit $status $(cat "$T/nokey.err")"
	NPORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40001))
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$DEMO" -s "$S" \
	    --team acme --id "$ID" --port "$NPORT" --name nokey \
	    > "$T/nokey.out" 2> "$T/nokey.err" 3>&- &
	NOKEY=$!
	PIDS="$PIDS $NOKEY"
	if wait_sub nokey failed "$REV3"; then
		ok "without the key permission the change is acked failed"
		sub detail nokey | grep -q 'private key' && ok "the detail names the missing key" ||
		    not_ok "detail: $(sub detail nokey)"
	elif grep -q 'listen on' "$T/nokey.err"; then
		ok "# SKIP port $NPORT taken"
		NOKEY_GONE=1	# it exited 1 on its own, as it should
	else
		not_ok "nokey subscriber: $(cat "$T/out") $(cat "$T/nokey.err")"
	fi
	grep -q '^ready$' "$T/nokey.out" && not_ok "nokey reported ready" ||
	    ok "nothing is served without a key"
	kill -TERM "$NOKEY" 2>/dev/null || true
	status=0; wait "$NOKEY" || status=$?
	forget "$NOKEY"
	if [ -n "${NOKEY_GONE:-}" ]; then
		ok "# SKIP nokey did not listen"
	else
		[ "$status" = 0 ] && ok "nokey exits 0 on SIGTERM" ||
		    not_ok "nokey exit $status"
	fi
else
	ok "# SKIP not root: cannot run a peer without the key permission"
fi

# --- renamed away from the alias, with new content ------------------------------
# The reloaders follow alias web: they keep serving its last certificate.
body "$T/c5" alias=web-old certificate=@"$PKI/leaf-rsa.chain.pem" \
    private_key=@"$PKI/leaf-rsa.key"
req PUT "$C/$ID" "$T/c5"
expect 200 "rename the certificate away from alias web, with new content"
REV5=$(jget revision)
i=0
until grep -q "certificate $ID .*revision $REV5" "$T/demo.err" || [ $i -ge 100 ]; do
	sleep 0.1; i=$((i + 1))
done
grep -q "certificate $ID .*revision $REV5" "$T/demo.err" &&
    ok "reload-demo reports that the certificate left" ||
    not_ok "no report of the rename: $(tail -n 3 "$T/demo.err")"
[ "$(presented "$DPORT")" = "$FP2" ] && ok "... and still serves alias web's last certificate" ||
    not_ok "after the rename it presents $(presented "$DPORT"), want $FP2"
grep -q "serving revision $REV5 " "$T/demo.err" && not_ok "reload-demo swapped to the renamed one" ||
    ok "... without swapping to the renamed certificate"

# --- shut down ---------------------------------------------------------------------
for p in "$PID" "$TPID"; do
	kill -TERM "$p"
	status=0; wait "$p" || status=$?
	forget "$p"
	[ "$status" = 0 ] && ok "reload-demo (pid $p) exits 0 on SIGTERM" ||
	    not_ok "reload-demo (pid $p) exit $status"
done
stop_certd TERM && ok "certd exits 0 on SIGTERM" || not_ok "certd exits 0 on SIGTERM"
finish
