#!/bin/sh
# SPDX-License-Identifier: MIT
# certctl sync against the real daemon: the files it writes (bytes, modes,
# no temp files left), one reload per change, none for unchanged content,
# one for a burst inside the debounce window, failed and timed-out reload
# commands acked as failed and shown by the subscribers route and
# `certctl subscribers`, --signal with --pid-file and --pid, surviving a
# certd restart, a delete that leaves the files, and exit 0 on SIGTERM.
# No sync here has --verify: a reload that went through is acked
# `requested` (not confirmed), never `ok` (nginx.sh and haproxy.sh check
# --verify against real servers).
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"
C=/openapi/v1/teams/acme/certificates

# Everything started here is stopped on exit, even after a failure (and
# even when $T has gone: nothing here depends on its files, and set -e no
# longer applies).
PIDS=
sync_cleanup() {
	st=$?
	set +e
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do
			sleep 0.1; n=$((n + 1)); done
		kill -KILL "$p" 2>/dev/null || true
	done
	cleanup "$st"
}
trap sync_cleanup EXIT
trap 'exit 1' HUP INT TERM

# wait_until TENTHS CMD...: run CMD every 0.1 s until it succeeds, at most
# TENTHS times.
wait_until() {
	_wt=$1; shift
	while ! "$@"; do
		_wt=$((_wt - 1))
		[ "$_wt" -gt 0 ] || return 1
		sleep 0.1
	done
}

# sub_field FIELD NAME: FIELD of the subscriber NAME in the last response.
sub_field() {
	_i=0
	while _nm=$(jget "list.$_i.name" 2>/dev/null); do
		if [ "$_nm" = "$2" ]; then jget "list.$_i.$1"; return 0; fi
		_i=$((_i + 1))
	done
	return 1
}

# acked NAME REVISION|any STATUS: certd lists NAME with that last ack.
acked() {
	req GET "$C/1/subscribers"
	[ "$STATUS" = 200 ] || return 1
	_rev=$(sub_field revision "$1") || return 1
	[ "$2" = any ] || [ "$_rev" = "$2" ] || return 1
	[ "$(sub_field status "$1")" = "$3" ]
}

# start_sync NAME ARGS...: certctl sync in the background, log $T/NAME.log.
start_sync() {
	_log=$T/$1.log; shift
	"$CERTCTL" sync "$@" 2> "$_log" &
	PIDS="$PIDS $!"
	LAST_SYNC=$!
}

# count FILE: its number of lines, 0 when absent.
count() { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

same() {	# FILE EXPECTED DESCRIPTION
	if cmp -s "$1" "$2"; then ok "$3"; else not_ok "$3: $1 differs"; fi
}
mode_is() {	# FILE MODE DESCRIPTION
	m=$(stat -c %a "$1" 2>/dev/null || echo none)
	if [ "$m" = "$2" ]; then ok "$3"; else not_ok "$3: mode $m, want $2"; fi
}
check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}

# put_cert CHAIN KEY: update certificate 1 over REST; revision in $REV.
put_cert() {
	body "$T/u" certificate=@"$1" private_key=@"$2"
	req PUT "$C/1" "$T/u"
	REV=$(jget revision 2>/dev/null || echo none)
}

RSA=$PKI/leaf-rsa.chain.pem
RSA_KEY=$PKI/leaf-rsa.key
RSA2=$T/rsa2.chain.pem
RSA2_KEY=$PKI/leaf-rsa2.key
cat "$PKI/leaf-rsa2.pem" "$PKI/int.pem" > "$RSA2"

body "$T/c1" alias=web certificate=@"$RSA" private_key=@"$RSA_KEY" \
    certificate_type=server
req POST "$C" "$T/c1"
expect 200 "create the certificate to follow"
REV=$(jget revision)

# --- the first state, written at once -----------------------------------------
O=$T/files; mkdir -p "$O"
RELOADS=$T/reloads
start_sync main acme --id 1 --cert-file "$O/cert.pem" --key-file "$O/key.pem" \
    --chain-file "$O/chain.pem" --bundle-file "$O/bundle.pem" \
    --exec "echo reload >> '$RELOADS'" --debounce 700 --name main
MAIN=$LAST_SYNC
check "the current state is written and acked at start" \
    wait_until 100 acked main "$REV" requested
same "$O/cert.pem" "$RSA" "cert-file holds leaf and chain as stored"
same "$O/key.pem" "$RSA_KEY" "key-file holds the key"
same "$O/chain.pem" "$PKI/int.pem" "chain-file holds the chain after the leaf"
cat "$RSA" "$RSA_KEY" > "$T/bundle.want"
same "$O/bundle.pem" "$T/bundle.want" "bundle-file holds certificates then key"
mode_is "$O/cert.pem" 644 "cert-file mode 0644"
mode_is "$O/chain.pem" 644 "chain-file mode 0644"
mode_is "$O/key.pem" 600 "key-file mode 0600"
mode_is "$O/bundle.pem" 600 "bundle-file mode 0600"
check "the reload ran once at start" [ "$(count "$RELOADS")" = 1 ]
check "no temp file left behind" [ -z "$(ls -A "$O" | grep '^\.' || true)" ]

# --- a change: the files change, one reload -----------------------------------
put_cert "$RSA2" "$RSA2_KEY"
expect 200 "PUT a new certificate and key"
check "the change is applied and acked ok" wait_until 100 acked main "$REV" requested
same "$O/cert.pem" "$RSA2" "cert-file follows the change"
same "$O/key.pem" "$RSA2_KEY" "key-file follows the change"
same "$O/chain.pem" "$PKI/int.pem" "chain-file follows the change"
check "the reload ran exactly once for the change" [ "$(count "$RELOADS")" = 2 ]
req GET "$C/1/subscribers"
check "the ack says the command ran, not confirmed" \
    [ "$(sub_field detail main)" = "reload command exited 0; not confirmed (no --verify)" ]

# --- unchanged content: no write, no reload, still acked ----------------------
inode=$(stat -c %i "$O/cert.pem")
put_cert "$RSA2" "$RSA2_KEY"
expect 200 "PUT the identical certificate again"
body "$T/t" certificate_type=client
req PUT "$C/1" "$T/t"
expect 200 "PUT a new type (a new revision, the same files)"
REV=$(jget revision)
check "the unchanged revision is acked ok" wait_until 100 acked main "$REV" requested
req GET "$C/1/subscribers"
check "the ack says unchanged" \
    [ "$(sub_field detail main)" = "unchanged; not confirmed (no --verify)" ]
check "no reload for unchanged content" [ "$(count "$RELOADS")" = 2 ]
check "no file rewritten for unchanged content" \
    [ "$(stat -c %i "$O/cert.pem")" = "$inode" ]

# --- a burst inside the debounce window: one reload ---------------------------
put_cert "$RSA" "$RSA_KEY"; r1=$STATUS
put_cert "$RSA2" "$RSA2_KEY"; r2=$STATUS
put_cert "$RSA" "$RSA_KEY"; r3=$STATUS
check "three quick PUTs" [ "$r1$r2$r3" = 200200200 ]
check "the burst is acked at its last revision" \
    wait_until 100 acked main "$REV" requested
check "one reload for the burst" [ "$(count "$RELOADS")" = 3 ]
same "$O/cert.pem" "$RSA" "the latest of the burst is on disk"
same "$O/key.pem" "$RSA_KEY" "with its key"
check "the log says the burst was coalesced" grep -q 'replaces revision' "$T/main.log"

# --- a failing reload command ----------------------------------------------------
mkdir -p "$T/out2"
start_sync failing acme --id 1 --cert-file "$T/out2/cert.pem" \
    --key-file "$T/out2/key.pem" \
    --exec "[ -f '$T/fixed' ] && exit 0; echo boom >&2; exit 3" \
    --name failing
FAILING=$LAST_SYNC
check "a failing command is acked failed" \
    wait_until 100 acked failing "$REV" failed
req GET "$C/1/subscribers"
detail=$(sub_field detail failing || true)
case $detail in
*"exit 3"*boom*) ok "the detail has the exit status and stderr" ;;
*) not_ok "failed detail: '$detail'" ;;
esac
check "the other subscriber is still requested" [ "$(sub_field status main)" = requested ]
status=0
"$CERTCTL" subscribers acme 1 > "$T/o" 2> "$T/e" || status=$?
check "certctl subscribers exits 0" [ $status = 0 ]
check "certctl subscribers shows the failure" \
    grep -q 'failing .* failed .*exit 3: boom' "$T/o"
check "certctl subscribers shows main requested" grep -q 'main .* requested ' "$T/o"
status=0
"$CERTCTL" --json subscribers acme 1 > "$T/o" 2> "$T/e" || status=$?
check "certctl --json subscribers exits 0" [ $status = 0 ]
check "--json has the failed ack" \
    grep -q '"name":"failing",[^}]*"status":"failed","detail":"exit 3: boom"' "$T/o"
status=0
"$CERTCTL" subscribers acme 99 > "$T/o" 2> "$T/e" || status=$?
check "certctl subscribers of a missing certificate exits 1" [ $status = 1 ]
check "... with certd's message" grep -q 'certificate not found' "$T/e"
# The failed reload is run again after a back-off, with no new change: once
# the command can succeed, the same revision is acked ok.
: > "$T/fixed"
check "the failed reload is tried again and then acked ok" \
    wait_until 150 acked failing "$REV" requested
req GET "$C/1/subscribers"
check "... as the command ran" \
    [ "$(sub_field detail failing)" = "reload command exited 0; not confirmed (no --verify)" ]
check "the log says it tried again" grep -q 'revision [0-9]*: trying again' "$T/failing.log"
kill -TERM "$FAILING"
status=0; wait "$FAILING" || status=$?
check "sync exits 0 on SIGTERM" [ $status = 0 ]

# --- a file that cannot be written: acked failed, no reload ---------------------
start_sync unwritable acme --id 1 --cert-file "$T/missing-dir/cert.pem" \
    --key-file "$T/out3-key.pem" --exec "echo x >> '$T/unwritable.reloads'" \
    --name unwritable
UNWRITABLE=$LAST_SYNC
check "a file that cannot be written is acked failed" \
    wait_until 100 acked unwritable "$REV" failed
req GET "$C/1/subscribers"
case $(sub_field detail unwritable) in
*"missing-dir"*"No such file or directory"*) ok "the detail names the file and why" ;;
*) not_ok "write failure detail: $(sub_field detail unwritable)" ;;
esac
check "no reload after a failed write" [ "$(count "$T/unwritable.reloads")" = 0 ]
# The failed write is tried again with no new change: once the directory
# exists, the files are written and the server reloaded, once.
mkdir "$T/missing-dir"
check "the failed write is tried again and then acked ok" \
    wait_until 150 acked unwritable "$REV" requested
same "$T/missing-dir/cert.pem" "$RSA" "... the certificate written"
same "$T/out3-key.pem" "$RSA_KEY" "... with its key"
check "... and one reload" [ "$(count "$T/unwritable.reloads")" = 1 ]
kill -TERM "$UNWRITABLE"; wait "$UNWRITABLE" || true

# --- a reload command that hangs: killed with its process group ----------------
mkdir -p "$T/out3"
start_sync slow acme --id 1 --cert-file "$T/out3/cert.pem" \
    --key-file "$T/out3/key.pem" --timeout 1 --name slow \
    --exec "sleep 30 & echo \$! >> '$T/slow.pids'; wait"
SLOW=$LAST_SYNC
check "a command over --timeout is acked failed" \
    wait_until 100 acked slow "$REV" failed
req GET "$C/1/subscribers"
check "the detail says timeout" \
    [ "$(sub_field detail slow)" = "timeout after 1 s" ]
check "the command's process group was killed" \
    wait_until 30 eval '! kill -0 "$(head -n 1 "$T/slow.pids")" 2>/dev/null'
kill -TERM "$SLOW"; wait "$SLOW" || true
# a retry's command that was running is left to finish on its own
kill $(cat "$T/slow.pids") 2>/dev/null || true

# --- --signal HUP --pid-file --------------------------------------------------------
cat > "$T/hup.sh" <<'EOF'
trap 'echo hup >> "$1.count"' HUP
trap 'exit 0' TERM
echo $$ > "$1.pid"
while :; do sleep 0.1; done
EOF
sh "$T/hup.sh" "$T/hup" &
HUP=$!
PIDS="$PIDS $HUP"
wait_until 50 test -s "$T/hup.pid" || not_ok "the HUP counter did not start"
mkdir -p "$T/out4"
start_sync hupper acme --alias web --cert-file "$T/out4/cert.pem" \
    --key-file "$T/out4/key.pem" --signal HUP --pid-file "$T/hup.pid" \
    --debounce 100
HUPPER=$LAST_SYNC
check "the default name is sync-ALIAS, acked ok after the signal" \
    wait_until 100 acked sync-web "$REV" requested
check "the process in the pid file got one SIGHUP" \
    wait_until 50 eval '[ "$(count "$T/hup.count")" = 1 ]'
req GET "$C/1/subscribers"
case $(sub_field detail sync-web) in
*SIGHUP*) ok "the detail names the signal" ;;
*) not_ok "signal detail: $(sub_field detail sync-web)" ;;
esac

sh -c 'exit 0' &
DEAD=$!
wait "$DEAD" || true
mkdir -p "$T/out5"
start_sync deadpid acme --id 1 --cert-file "$T/out5/cert.pem" \
    --key-file "$T/out5/key.pem" --signal HUP --pid "$DEAD" --name deadpid
DEADPID=$LAST_SYNC
check "a signal to a dead pid is acked failed" \
    wait_until 100 acked deadpid "$REV" failed
sleep 1.5	# a retry would come after 1 s
check "a pid found gone is not signalled again (--pid: no retry)" \
    [ "$(grep -c 'SIGHUP to pid' "$T/deadpid.log")" = 1 ]
req GET "$C/1/subscribers"
case $(sub_field detail deadpid) in
*"No such process"*) ok "the detail says No such process" ;;
*) not_ok "dead pid detail: $(sub_field detail deadpid)" ;;
esac
kill -TERM "$DEADPID"; wait "$DEADPID" || true

# A pid file naming a process that is gone: tried again, without signalling
# that pid, until the file is written anew (the server started again).
echo "$DEAD" > "$T/gone.pid"
mkdir -p "$T/out8"
start_sync gonepid acme --id 1 --cert-file "$T/out8/cert.pem" \
    --key-file "$T/out8/key.pem" --signal HUP --pid-file "$T/gone.pid" \
    --name gonepid
GONEPID=$LAST_SYNC
check "a stale pid file is acked failed" \
    wait_until 100 acked gonepid "$REV" failed
check "the retry does not signal the gone pid again" \
    wait_until 50 grep -q "pid $DEAD is gone" "$T/gonepid.log"
check "... once only" [ "$(grep -c 'SIGHUP to pid' "$T/gonepid.log")" = 1 ]
sh "$T/hup.sh" "$T/hup2" &
HUP2=$!
PIDS="$PIDS $HUP2"
wait_until 50 test -s "$T/hup2.pid" || not_ok "the second HUP counter did not start"
cp "$T/hup2.pid" "$T/gone.pid"
check "once the pid file names the server again, it is signalled" \
    wait_until 100 acked gonepid "$REV" requested
check "... one SIGHUP" \
    wait_until 50 eval '[ "$(count "$T/hup2.count")" = 1 ]'
kill -TERM "$GONEPID"; wait "$GONEPID" || true
kill -TERM "$HUP2"; wait "$HUP2" || true

# --- certd restarts: sync stays, resumes, applies the next change -------------
lines=$(wc -l < "$T/main.log")
stop_certd TERM && ok "certd stops with subscribers attached" ||
    not_ok "certd stop"
check "sync notices certd went away" wait_until 50 eval \
    'tail -n +"$((lines + 1))" "$T/main.log" | grep -q disconnected'
sleep 0.5
check "sync keeps running while certd is down" kill -0 "$MAIN"
check "... all of them" kill -0 "$HUPPER"
start_certd "$D"
check "after the reconnect certd shows the last ack again" \
    wait_until 150 acked main "$REV" requested
check "the replay after the reconnect did not signal again" \
    wait_until 100 acked sync-web "$REV" requested
check "... no second SIGHUP" [ "$(count "$T/hup.count")" = 1 ]
put_cert "$RSA2" "$RSA2_KEY"
expect 200 "PUT after the restart"
check "the change after the restart is applied" \
    wait_until 150 acked main "$REV" requested
same "$O/cert.pem" "$RSA2" "cert-file has the change after the restart"
check "one reload for it" [ "$(count "$RELOADS")" = 4 ]
check "the signal follower applies it too" \
    wait_until 100 acked sync-web "$REV" requested
check "... with one more SIGHUP" \
    wait_until 50 eval '[ "$(count "$T/hup.count")" = 2 ]'
same "$T/out4/cert.pem" "$RSA2" "... and its files"

# --- deleted while sync was away: its failed apply is not tried again ---------
# A sync that has seen no live change resumes with the whole state, which
# leaves a deleted certificate out (no delete event): what it owed a retry
# goes with it.
body "$T/aw" alias=away certificate=@"$RSA" private_key=@"$RSA_KEY" \
    certificate_type=server
req POST "$C" "$T/aw"
expect 200 "create a certificate for a failing sync"
AWAY_ID=$(jget id); AWAY_REV=$(jget revision)
mkdir -p "$T/out7"
start_sync away acme --id "$AWAY_ID" --cert-file "$T/out7/cert.pem" \
    --key-file "$T/out7/key.pem" --exec "echo run >> '$T/away.runs'; exit 3"
AWAY=$LAST_SYNC
check "its reload fails" \
    wait_until 100 grep -q "revision $AWAY_REV: failed" "$T/away.log"
stop_certd TERM
start_certd "$D" --socket "$T/other.sock"
req DELETE "$C/$AWAY_ID?force=true"
expect 204 "delete it while the sync is away"
stop_certd TERM
start_certd "$D"
check "the sync comes back to the whole state" \
    wait_until 150 grep -q 'the current state follows' "$T/away.log"
sleep 0.5
n1=$(count "$T/away.runs")
sleep 5
check "no more tries for the deleted certificate ($n1 runs)" \
    [ "$(count "$T/away.runs")" = "$n1" ]
kill -TERM "$AWAY"; wait "$AWAY" || true

# --- renamed away from the followed alias, with new content --------------------
body "$T/ren" alias=web-old certificate=@"$RSA" private_key=@"$RSA_KEY"
req PUT "$C/1" "$T/ren"
expect 200 "rename the certificate away from alias web, with new content"
REV=$(jget revision)
check "the id follower applies it" wait_until 150 acked main "$REV" requested
same "$O/cert.pem" "$RSA" "... its cert-file has the new content"
# (No longer bound to it, sync-web is not among certificate 1's subscribers.)
check "the alias follower logs that the certificate left the alias" \
    wait_until 100 grep -q 'left the alias (now web-old)' "$T/hupper.log"
same "$T/out4/cert.pem" "$RSA2" "... its files keep the last certificate of the alias"
same "$T/out4/key.pem" "$RSA2_KEY" "... key included"
check "... and no SIGHUP for it" [ "$(count "$T/hup.count")" = 2 ]

# --- delete: files kept ----------------------------------------------------------
req DELETE "$C/1?force=true"
expect 204 "DELETE the certificate (forced: sync binds it)"
check "sync logs the delete and keeps the files" \
    wait_until 100 grep -q 'deleted; files kept' "$T/main.log"
same "$O/cert.pem" "$RSA" "cert-file still there after the delete"
same "$O/key.pem" "$RSA_KEY" "key-file still there after the delete"
check "no reload for the delete" [ "$(count "$RELOADS")" = 5 ]

# --- a delete acked while an older revision's reload still runs ----------------
# The delete's ack stays the last one: the reload's outcome, when it comes,
# is logged and not sent over it.
body "$T/s2" alias=slow certificate=@"$RSA" private_key=@"$RSA_KEY" certificate_type=s
req POST "$C" "$T/s2"
expect 200 "create a second certificate"
ID2=$(jget id)
mkdir -p "$T/out6"
start_sync slow acme --id "$ID2" --cert-file "$T/out6/cert.pem" \
    --key-file "$T/out6/key.pem" --exec 'sleep 3' --debounce 100 --name slow
SLOW=$LAST_SYNC
check "the slow sync applies the certificate" \
    wait_until 100 grep -q 'requested: reload command exited 0' "$T/slow.log"
body "$T/s3" certificate=@"$RSA2" private_key=@"$RSA2_KEY"
req PUT "$C/$ID2" "$T/s3"
expect 200 "change it"
PREV=$(jget revision)
sleep 1		# debounced, written, and the 3 s reload running
req DELETE "$C/$ID2?force=true"
expect 204 "delete it while its reload runs"
check "the late outcome of the older revision is logged, not acked" \
    wait_until 100 grep -q "revision $PREV: requested: reload command exited 0; not confirmed (no --verify) (not acked: revision [0-9]* was acked since)" \
    "$T/slow.log"
kill -TERM "$SLOW"; wait "$SLOW" || true

kill -TERM "$MAIN"
status=0; wait "$MAIN" || status=$?
check "main sync exits 0 on SIGTERM" [ $status = 0 ]
kill -HUP "$HUPPER"
status=0; wait "$HUPPER" || status=$?
check "a sync exits 0 on SIGHUP too" [ $status = 0 ]
check "... saying so" grep -q 'stopping on SIGHUP' "$T/hupper.log"
if grep -q 'PRIVATE KEY' "$T"/*.log; then not_ok "a log holds key material"
else ok "no key material in any log"; fi

status=0
"$CERTCTL" sync acme --id 1 --cert-file "$O/c" > "$T/o" 2> "$T/e" || status=$?
check "sync without --key-file is a usage error" [ $status = 2 ]
status=0
"$CERTCTL" sync acme --id 1 --cert-file "$O/c" --key-file "$O/./c" \
    > "$T/o" 2> "$T/e" || status=$?
check "one file spelt two ways is a usage error" [ $status = 2 ]
check "... naming both" grep -q 'name the same file' "$T/e"
status=0
"$CERTCTL" sync acme --id 1 --cert-file "$O/c" --key-file "$O/k" \
    --exec true --signal HUP --pid 1 > "$T/o" 2> "$T/e" || status=$?
check "--exec with --signal is a usage error" [ $status = 2 ]

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
