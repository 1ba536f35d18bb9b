#!/bin/sh
# SPDX-License-Identifier: MIT
# A damaged write-ahead log never costs acknowledged writes in silence.
# Three hundred acknowledged writes, certd killed so that the log still
# holds them, one byte flipped in its middle: start-up refuses with the
# file, the offset and the last good revision, and changes nothing.
# `--recover point-in-time` then starts from that revision in a new epoch
# (a watcher resuming from it gets a resync), says what was lost, and keeps
# the damaged log aside.  A torn last record (the log cut short, as a write
# that never finished leaves it) still starts, as before.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
C=/openapi/v1/teams/wal/certificates
N=300

epoch() { sed -n 's/.*certd ready.* epoch=\([0-9]*\) .*/\1/p' "$LOG" | tail -n 1; }
# the write-ahead log holding the writes: the largest one
wal() { ls -S "$D"/db/*.log | head -n 1; }
sums() { (cd "$D/db" && sha256sum -- *) ; }

# puts FROM TO: create w$FROM..w$TO in one socket connection (pipelined).
puts() {
	i=$1 last=$2
	set --
	while [ "$i" -le "$last" ]; do
		set -- "$@" "$("$JTOOL" make id:="$i" op=put team=wal alias="w$i" \
		    certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
		    certificate_type=server)"
		i=$((i + 1))
	done
	"$PEER" -t 30000 "$S" "$@" > "$T/acks"
	grep -c '"ok":true' "$T/acks" || true
}

# once OUT ARGS...: run certd, expecting it to stop by itself (10 s at most).
once() {
	out=$1; shift
	status=0
	timeout 10 "$CERTD" --data-dir "$D" --listen 127.0.0.1:0 --socket "$S" \
	    "$@" > /dev/null 2> "$out" || status=$?
}

start_certd "$D" --socket "$S"
E1=$(epoch)
acked=$(puts 1 $N)
[ "$acked" = $N ] && ok "$N writes acknowledged" || not_ok "acknowledged: $acked of $N"
kill -KILL "$CERTD_PID"; wait "$CERTD_PID" 2>/dev/null || true; CERTD_PID=

# The writes are in the log, not in a table file (8 MiB write buffer).
W=$(wal); size=$(stat -c %s "$W")
[ "$size" -gt 200000 ] && [ -z "$(ls "$D"/db/*.sst 2>/dev/null)" ] &&
    ok "the log holds the writes ($size bytes, no table file)" ||
    not_ok "log $W: $size bytes; $(ls "$D/db")"

# --- one byte flipped in the middle of the log -----------------------------------
F=$(( (size / 2) / 32768 * 32768 + 1000 ))
byte=$(od -An -tu1 -j "$F" -N 1 "$W" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 0xff)))" |
    dd of="$W" bs=1 seek="$F" count=1 conv=notrunc 2> /dev/null
cp "$W" "$T/damaged.log"
sums > "$T/sums.before"

once "$T/refused"
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$(wc -l < "$T/refused")" -eq 1 ]; then
	ok "start-up refuses a damaged log (exit $status, one line)"
else
	not_ok "damaged log: exit $status: $(head -c 600 "$T/refused")"
fi
line=$(cat "$T/refused")
off=$(printf '%s\n' "$line" | sed -n "s|.*write-ahead log $W is damaged at offset \\([0-9]*\\) .*|\\1|p")
R=$(printf '%s\n' "$line" | sed -n 's/.*the last good revision is \([0-9]*\),.*/\1/p')
[ -n "$off" ] && [ "$off" -le "$F" ] && [ "$F" -lt $((off + 32768)) ] &&
    ok "the error names the log and the offset ($off, flipped $F)" ||
    not_ok "file and offset: $line"
[ -n "$R" ] && [ "$R" -gt 0 ] && [ "$R" -lt $N ] &&
    ok "the error names the last good revision ($R)" ||
    not_ok "last good revision: $line"
printf '%s\n' "$line" | grep -q "revisions $((R + 1)) to $N" &&
    printf '%s\n' "$line" | grep -q 'nothing was changed' &&
    printf '%s\n' "$line" | grep -q -- '--recover point-in-time' &&
    ok "... what a replay would lose, and the way out" || not_ok "the rest of: $line"
sums > "$T/sums.after"
cmp -s "$T/sums.before" "$T/sums.after" && ok "the database is untouched" ||
    not_ok "the database changed: $(diff "$T/sums.before" "$T/sums.after" | head -n 6)"
once "$T/refused2"
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] && cmp -s "$T/refused" "$T/refused2" &&
    ok "and refuses again, the same way" || not_ok "second start: exit $status"
once "$T/badflag" --recover everything
[ "$status" = 2 ] && grep -q 'the one recovery is point-in-time' "$T/badflag" &&
    ok "--recover takes point-in-time only" || not_ok "--recover everything: $status $(cat "$T/badflag")"

# --- --recover point-in-time -------------------------------------------------------
start_certd "$D" --socket "$S" --recover point-in-time
E2=$(epoch)
grep -q "error store: recovered point-in-time from damaged write-ahead log $W (checksum mismatch at offset $off): kept revisions up to $R; lost revisions $((R + 1)) to $N" "$LOG" &&
    ok "the recovery logs what was lost" ||
    not_ok "recovery log: $(grep 'store:' "$LOG" | tail -n 3)"
K=$(ls "$D"/lost-*-"$(basename "$W")" 2>/dev/null | head -n 1)
[ -n "$K" ] && grep -q "the damaged logs are kept as $K (mode 0600)" "$LOG" &&
    [ "$(stat -c %a "$K")" = 600 ] && cmp -s "$K" "$T/damaged.log" &&
    ok "the damaged log is kept, whole, mode 0600 ($(basename "$K"))" ||
    not_ok "kept log: '$K' $(ls -l "$D")"
[ -n "$K" ] && [ "$(grep -a -c -F -e 'PRIVATE KEY' "$K")" = 0 ] &&
    [ "$(grep -a -c -F -e 'BEGIN CERTIFICATE' "$K")" -gt 0 ] &&
    ok "the kept log holds no private key in clear" || not_ok "keys in clear in $K"
[ -n "$E2" ] && [ "$E2" != "$E1" ] && ok "a new epoch ($E1 -> $E2)" ||
    not_ok "epoch $E1 -> $E2"
"$PEER" "$S" '{"id":1,"op":"hello"}' > "$T/o"
grep -q "\"epoch\":$E2[,}]" "$T/o" && grep -q "\"revision\":$R[,}]" "$T/o" &&
    ok "hello: revision $R, the new epoch" || not_ok "hello: $(cat "$T/o")"
"$PEER" -n 2 "$S" "{\"id\":1,\"op\":\"watch\",\"team\":\"wal\",\"since\":$R,\"epoch\":$E1}" > "$T/o"
grep -q '"event":"resync"' "$T/o" &&
    ok "a watcher resuming from revision $R of the old epoch gets resync" ||
    not_ok "resume: $(head -c 400 "$T/o")"
req GET "$C?page=1&page_size=500"
expect_json total "$R" "the $R certificates up to revision $R are listed"
req GET "$C/1"; expect_json alias w1 "the first one is served"
req GET "$C/$R"; expect_json alias "w$R" "the last one kept is served"
CERT=$(cat "$PKI/leaf-ec.pem")
[ "$(jget certificate)" = "$CERT" ] && jget private_key | grep -q 'PRIVATE KEY' &&
    ok "... whole, key included" || not_ok "record $R damaged"
req GET "$C/$((R + 1))"; expect 404 "the first lost one is not"
body "$T/b" alias=after certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST "$C" "$T/b"; expect_json revision $((R + 1)) "writes go on from revision $((R + 1))"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"

start_certd "$D" --socket "$S"
[ "$(epoch)" = "$E2" ] && [ "$(grep -c 'recovered point-in-time' "$LOG")" = 1 ] &&
    ok "a plain restart afterwards keeps the new epoch" || not_ok "epoch after restart: $(epoch)"
stop_certd TERM
once "$T/nothing" --recover point-in-time
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] &&
    grep -q "nothing to recover: the write-ahead logs in $D/db are whole" "$T/nothing" &&
    ok "--recover with nothing to recover refuses (a one-time act)" ||
    not_ok "needless --recover: exit $status $(cat "$T/nothing")"

# --- a torn last record: still starts -------------------------------------------
start_certd "$D" --socket "$S"
acked=0	# one batch each: only the last one is torn
for i in $(seq 1001 1020); do acked=$((acked + $(puts "$i" "$i"))); done
[ "$acked" = 20 ] && ok "20 more writes, one at a time" || not_ok "acknowledged: $acked of 20"
kill -KILL "$CERTD_PID"; wait "$CERTD_PID" 2>/dev/null || true; CERTD_PID=
W=$(wal); size=$(stat -c %s "$W")
truncate -s $((size - 100)) "$W"
start_certd "$D" --socket "$S"
grep -q "warn store: write-ahead log $W ends in a torn record" "$LOG" &&
    ok "a torn last record is dropped with a warning" || not_ok "torn tail: $(tail -n 3 "$LOG")"
rev=$(sed -n 's/.*certd ready.* revision=\([0-9]*\) .*/\1/p' "$LOG" | tail -n 1)
[ "$(epoch)" = "$E2" ] && [ "$rev" = $((R + 20)) ] &&
    ok "it starts without the write that never finished (revision $rev, same epoch)" ||
    not_ok "after the torn tail: revision $rev, epoch $(epoch)"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
