#!/bin/sh
# SPDX-License-Identifier: MIT
# The event loop's thread is the only one that takes signals.  Stopping
# under write load: SIGTERM and SIGINT at once (the second signal
# forces the stop) while PUTs of two versions of a certificate stream in
# over 16 connections and four more clients read none of their answers,
# five times over.  Each stop exits 0 with requests
# still in flight in the REST worker and the store (the sanitizer build
# catches a use of what daemon_close already freed, and a leak), and the
# restarted certd serves the certificate whole, at a revision no older than
# the last one a client was told about.  Two different signals, because two
# of the same sent together may reach certd as one.  When certd takes them in
# two turns of its loop, PUTs read in between are answered 503 "shutting
# down"; when the graceful stop ends before the second signal, the cycle is
# a graceful one, and at least one of the five must be forced.
. "$(dirname "$0")/lib.sh"

LOADPEER="$CERTD_BUILDDIR/tests/integration/loadpeer"
[ -x "$LOADPEER" ] || { echo "loadpeer not built at $LOADPEER" >&2; exit 99; }

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/acme/certificates

body "$T/a" alias=stop-a certificate=@"$PKI/leaf-ec.pem" \
    private_key=@"$PKI/leaf-ec.key" certificate_type=server
body "$T/b" alias=stop-b certificate=@"$PKI/leaf-rsa.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/a"
expect 200 "create the certificate"
ID=$(jget id)
# 40 more, so that one page of the list is about 100 KB.
n=1
while [ $n -le 40 ]; do
	body "$T/m" alias="more$n" certificate=@"$PKI/leaf-rsa.pem" \
	    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
	req POST "$C" "$T/m"
	[ "$STATUS" = 200 ] || break
	n=$((n + 1))
done
[ $n -gt 40 ] && ok "40 more certificates" || not_ok "certificate $n: $STATUS"

# Signals are the event loop's: every other thread (the REST worker, the
# store's writer, RocksDB's) has HUP, INT and TERM blocked, and SIGSEGV
# open, so that a fault in it is reported (by the sanitizers) as it is.
if [ -d "/proc/$CERTD_PID/task" ]; then
	names= open= deaf=
	for t in /proc/"$CERTD_PID"/task/*; do
		# A thread may end between the listing and the reading.
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		names="$names $comm"
		[ "${t##*/}" = "$CERTD_PID" ] && continue
		blk=$(awk '/^SigBlk:/ { print $2 }' "$t/status" 2>/dev/null) || continue
		[ -n "$blk" ] || continue
		low=$(printf '%s' "$blk" | tail -c 4)
		[ $((0x$low & 0x4003)) = $((0x4003)) ] || open="$open $comm"
		[ $((0x$low & 0x400)) = 0 ] || deaf="$deaf $comm"
	done
	missing=
	for want in certd-worker certd-writer certd-admin; do
		case " $names " in
		*" $want "*) ;;
		*) missing="$missing $want" ;;
		esac
	done
	[ -z "$missing" ] && ok "threads:$names" ||
	    not_ok "no$missing among the threads:$names"
	[ -z "$open" ] && ok "only the loop's thread takes signals" ||
	    not_ok "threads that take signals besides the loop's:$open"
	[ -z "$deaf" ] && ok "no thread blocks SIGSEGV" ||
	    not_ok "threads with SIGSEGV blocked:$deaf"
fi

LOADERS=
trap 'st=$?; for p in $LOADERS; do kill "$p" 2>/dev/null; done; (exit $st); cleanup' EXIT
trap 'exit 1' HUP INT TERM

# load: 20,000 PUTs of each version, 8 at a time each, from two curls (URL
# globbing in the fragment, which curl does not send); the status and the
# body of every answer in $T/load.a and $T/load.b.
load() {
	for v in a b; do
		curl -s -Z --parallel-max 8 -X PUT -H "Authorization: $TOKEN" \
		    -H 'Content-Type: application/json' --data-binary "@$T/$v" \
		    -w '\n%{http_code}\n' "$BASE$C/$ID#[1-20000]" \
		    > "$T/load.$v" 2>&1 &
		LOADERS="$LOADERS $!"
	done
	# Four clients that ask for the list again and again and read none of
	# it: answers certd has still to write when it stops.
	"$LOADPEER" -f -n 4 -h 60 -p "GET $C?page_size=50 HTTP/1.1\r\nHost: certd\r\nAuthorization: $TOKEN\r\n\r\n" \
	    "tcp:127.0.0.1:$PORT" > "$T/flood" 2>&1 &
	LOADERS="$LOADERS $!"
}

forced=0
cycle=1
while [ $cycle -le 5 ]; do
	load
	# Wait until PUTs are being answered: then some are always in flight.
	i=0
	until [ "$(cat "$T/load.a" "$T/load.b" | grep -c '^200$')" -ge 20 ] ||
	    [ $i -ge 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	[ $i -lt 100 ] || echo "# cycle $cycle: fewer than 20 PUTs answered in 10 s"
	before=$(grep -c 'second signal' "$LOG" || true)
	kill -TERM "$CERTD_PID"; kill -INT "$CERTD_PID" 2>/dev/null || true
	# A stop that hangs is a failure, not a stalled test run.
	(sleep 60; kill -KILL "$CERTD_PID" 2>/dev/null) &
	watchdog=$!
	status=0
	wait "$CERTD_PID" || status=$?
	kill "$watchdog" 2>/dev/null || true
	wait "$watchdog" 2>/dev/null || true
	CERTD_PID=
	for p in $LOADERS; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	LOADERS=
	answered=$(cat "$T/load.a" "$T/load.b" | grep -c '^200$' || true)
	[ "$status" = 0 ] && ok "cycle $cycle: forced stop under load exits 0 ($answered PUTs answered 200)" ||
	    not_ok "cycle $cycle: forced stop exit status $status: $(grep -m 3 -e ERROR -e Sanitizer -e 'runtime error' "$LOG")"
	# 000: curl's word for a connection closed by the stop, unanswered;
	# 503: read between the two signals, each with its "shutting down".
	other=$(cat "$T/load.a" "$T/load.b" | grep -E '^[0-9]{3}$' |
	    grep -v -e '^200$' -e '^000$' -e '^503$' | sort | uniq -c | tr '\n' ' ')
	n503=$(cat "$T/load.a" "$T/load.b" | grep -c '^503$' || true)
	nshut=$(cat "$T/load.a" "$T/load.b" | grep -o '"shutting down"' | wc -l)
	if [ -n "$other" ]; then
		not_ok "cycle $cycle: PUTs answered $other"
	elif [ "$nshut" -lt "$n503" ]; then
		not_ok "cycle $cycle: $n503 PUTs answered 503, only $nshut of them \"shutting down\""
	else
		ok "cycle $cycle: every PUT answered was answered 200 (or 503 shutting down: $n503)"
	fi
	if [ "$(grep -c 'second signal' "$LOG" || true)" -gt "$before" ]; then
		forced=$((forced + 1))
		ok "cycle $cycle: it was the forced stop"
	else
		ok "cycle $cycle: the graceful stop ended before the second signal"
	fi
	# The highest revision any client was told about.
	told=$(cat "$T/load.a" "$T/load.b" | grep -o '"revision": *[0-9]*' | grep -o '[0-9]*$' |
	    sort -n | tail -n 1)

	start_certd "$D"
	req GET "$C/$ID"
	if [ "$STATUS" = 200 ] && [ "$(jget revision)" -ge "${told:-0}" ] &&
	    expr "$(jget alias)" : 'stop-[ab]$' > /dev/null; then
		ok "cycle $cycle: restarted, revision $(jget revision) (last answered: ${told:-none})"
	else
		not_ok "cycle $cycle: after restart GET answered $STATUS revision $(jget revision 2>/dev/null) (last answered: ${told:-none})"
	fi
	cycle=$((cycle + 1))
done

[ "$forced" -ge 1 ] && ok "$forced of 5 stops were forced" ||
    not_ok "none of the 5 stops was forced: certd never logged the second signal"
stop_certd TERM && ok "SIGTERM exits 0 at the end" || not_ok "SIGTERM exit status"
if grep -q -e 'AddressSanitizer' -e 'runtime error' "$LOG"; then
	not_ok "sanitizer report in the certd log: $(grep -m 3 -e AddressSanitizer -e 'runtime error' "$LOG")"
else
	ok "no sanitizer report in the certd log"
fi
finish
