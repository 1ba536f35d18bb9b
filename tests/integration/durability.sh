#!/bin/sh
# SPDX-License-Identifier: MIT
# Durability around the store: a backup taken while certd runs restores
# into a new data dir with the same records; master key rotation keeps
# every record readable across a restart; a full disk answers 503 to
# writes while reads keep working, and certd recovers by itself when space
# returns.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
C=/openapi/v1/teams/dur/certificates
start_certd "$D"
S="$D/certd.sock"

mk() {	# ALIAS CERT KEY
	body "$T/b" alias="$1" certificate=@"$PKI/$2" private_key=@"$PKI/$3" \
	    certificate_type=server
	req POST "$C" "$T/b"
}
mk one leaf-rsa.pem leaf-rsa.key; expect 200 "create one"
mk two leaf-ec.pem leaf-ec.key; expect 200 "create two"
mk three leaf-ed25519.pem leaf-ed25519.key; expect 200 "create three"
req GET "$C/2"; cp "$T/out" "$T/two.before"

# --- backup while running, restore into a new data dir -----------------------
# A watcher follows team dur throughout (libcertd, reconnecting): it must not
# resume inside the restored store as if it were the one it followed.  It
# goes through dropproxy, which cuts its second connection (its first to the
# restored store) right after the watch result, before the resync.
"$CERTD_BUILDDIR/tests/integration/dropproxy" "$T/proxy.sock" "$S" 2 \
    2> "$T/proxy.err" &
PROXY_PID=$!
i=0; while [ ! -S "$T/proxy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
"$CERTCTL" -s "$T/proxy.sock" watch dur --reconnect > "$T/watch" 2> "$T/watch.err" &
WATCH_PID=$!
trap 'st=$?; kill "$WATCH_PID" "$PROXY_PID" 2>/dev/null || true; cleanup "$st"' EXIT
wait_watch() {	# PATTERN COUNT: wait (20 s at most) for COUNT lines matching
	i=0
	while [ "$(grep -c -e "$1" "$T/watch" || true)" -lt "$2" ] && [ $i -lt 200 ]; do
		sleep 0.1; i=$((i + 1))
	done
	[ "$(grep -c -e "$1" "$T/watch" || true)" -ge "$2" ]
}
wait_watch '"event":"connected"' 1 || not_ok "watcher did not connect: $(cat "$T/watch.err")"
epoch() { sed -n 's/.*certd ready.* epoch=\([0-9a-f]*\) .*/\1/p' "$LOG" | tail -n 1; }
E1=$(epoch)
# The backup's fsyncs happen on the admin worker, never on the loop's thread
# (the loop never waits on the disk): strace shows which thread made them.
STRACE_PID=
if [ "$(id -u)" = 0 ] && command -v strace > /dev/null; then
	strace -f -qq -e trace=fsync,fdatasync -o "$T/strace" -p "$CERTD_PID" 2> /dev/null &
	STRACE_PID=$!
	sleep 0.5
fi
"$PEER" "$S" "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/backup\"}" > "$T/o"
grep -q '"id":1,"ok":true' "$T/o" && ok "backup op" || not_ok "backup: $(cat "$T/o")"
if [ -n "$STRACE_PID" ]; then
	kill "$STRACE_PID" 2>/dev/null || true
	wait "$STRACE_PID" 2>/dev/null || true
	# Lines are "TID syscall(...)": none from the loop's thread (TID = PID).
	syncs=$(grep -c 'sync(' "$T/strace" || true)
	onloop=$(grep -c "^$CERTD_PID " "$T/strace" || true)
	[ "$syncs" -gt 0 ] && [ "$onloop" = 0 ] &&
	    ok "the backup's $syncs fsyncs are off the loop's thread" ||
	    not_ok "backup fsyncs: $syncs, on the loop's thread: $onloop"
else
	ok "# SKIP strace needs root and strace"
fi
[ "$(stat -c %a "$T/backup/master.key")" = 600 ] && ok "backup key file is 0600" ||
    not_ok "backup key mode $(stat -c %a "$T/backup/master.key")"
mk four leaf-ec384.pem leaf-ec384.key; expect 200 "create after the backup"
wait_watch '"revision":4' 1 || not_ok "watcher missed revision 4: $(cat "$T/watch")"
"$PEER" "$S" '{"id":1,"op":"backup","dir":"relative"}' > "$T/o"
grep -q '"field":"dir"' "$T/o" && ok "backup refuses a relative dir" ||
    not_ok "relative backup: $(cat "$T/o")"
stop_certd TERM

cp "$D/tokens" "$T/backup/tokens"
start_certd "$T/backup"
req GET "$C"
expect_json total 3 "restored data dir holds the records of the backup"
req GET "$C/2"
cmp -s "$T/out" "$T/two.before" && ok "restored record identical, key included" ||
    not_ok "restored record differs"
stop_certd TERM

# The restored store takes writes of its own past the revision the watcher
# holds (4) before the watcher can reach it: on another socket.  Then it
# comes up on the watcher's socket.  Its revisions 4 and 5 are not the old
# store's 4: the watcher must be told to start over (resync and the state),
# not replayed revision 5 alone, also when its first connection there drops
# between the watch result and the resync.
start_certd "$T/backup" --socket "$T/other.sock"
E2=$(epoch)
[ -n "$E1" ] && [ -n "$E2" ] && [ "$E1" != "$E2" ] &&
    ok "the restored store has an epoch of its own ($E1 -> $E2)" ||
    not_ok "epochs: before $E1, restored $E2"
mk five leaf-ec.pem leaf-ec.key; expect 200 "create in the restored store"
mk six leaf-rsa.pem leaf-rsa.key; expect 200 "another one"
stop_certd TERM
start_certd "$T/backup" --socket "$S"
[ "$(epoch)" = "$E2" ] && ok "the epoch survives a restart" ||
    not_ok "epoch after a restart: $(epoch), was $E2"
wait_watch '"event":"resync"' 1 &&
    ok "a watcher of the old store resuming in the restored one gets resync" ||
    not_ok "no resync after the restore: $(tr '\n' ' ' < "$T/watch" | cut -c1-600)"
grep -q 'connection 2: certd.s first frame only' "$T/proxy.err" &&
    [ "$(grep -c '"event":"connected"' "$T/watch")" -ge 3 ] &&
    ok "... after its first connection there dropped before the resync" ||
    not_ok "the drop did not happen: $(cat "$T/proxy.err")"
wait_watch '"alias":"six"' 1 && wait_watch '"alias":"two"' 1 &&
    ok "and then the restored store's state" ||
    not_ok "state after resync: $(tr '\n' ' ' < "$T/watch" | cut -c1-600)"
# Past the state, a live change; then a plain restart resumes without one.
mk seven leaf-ec.pem leaf-ec.key; expect 200 "create seven"
wait_watch '"alias":"seven"' 1 || not_ok "watcher missed seven"
stop_certd TERM
start_certd "$T/backup" --socket "$S"
mk eight leaf-ec.pem leaf-ec.key; expect 200 "create eight"
wait_watch '"alias":"eight"' 1 && [ "$(grep -c '"event":"resync"' "$T/watch")" = 1 ] &&
    ok "across a plain restart the watcher resumes, no resync" ||
    not_ok "after a plain restart: $(tr '\n' ' ' < "$T/watch" | cut -c1-900)"
kill "$WATCH_PID" "$PROXY_PID" 2>/dev/null || true
wait "$WATCH_PID" "$PROXY_PID" 2>/dev/null || true
stop_certd TERM

# --- master key rotation --------------------------------------------------------
start_certd "$D"
old=$(sed -n 's/.*key_id=\([0-9a-f]*\).*/\1/p' "$LOG" | tail -n 1)
"$PEER" "$S" '{"id":1,"op":"rekey"}' > "$T/o"
new=$(sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p' "$T/o")
[ -n "$new" ] && [ "$new" != "$old" ] && ok "rekey answers a new key id" ||
    not_ok "rekey: $(cat "$T/o") (old $old)"
# A master key that is a symbolic link: the rotation replaces its target.
stop_certd TERM
mkdir -p "$T/keys"; chmod 700 "$T/keys"
mv "$D/master.key" "$T/keys/real.key"
ln -s "$T/keys/real.key" "$D/master.key"
start_certd "$D"
"$PEER" "$S" '{"id":1,"op":"rekey"}' > "$T/o"
new=$(sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p' "$T/o")
[ -L "$D/master.key" ] && [ "$(readlink "$D/master.key")" = "$T/keys/real.key" ] &&
    [ "$(stat -c %a "$T/keys/real.key")" = 600 ] && [ ! -e "$T/keys/real.key.new" ] &&
    ok "a rotation through a symlinked key replaces the target, not the link" ||
    not_ok "symlinked key after rekey: $(ls -l "$D/master.key" "$T/keys" 2>&1 | tr '\n' ' ')"
stop_certd TERM
start_certd "$D"
grep -q "key_id=$new" "$LOG" && ok "restart through the link uses the new key" ||
    not_ok "key id after a rotation through the link"

# Two rotations at once (pipelined, both pending together): each answers the
# key it put in force, and the later one's is the key after a restart.
"$PEER" -n 2 "$S" '{"id":1,"op":"rekey"}' '{"id":2,"op":"rekey"}' > "$T/o"
k1=$(grep '"id":1' "$T/o" | sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p')
k2=$(grep '"id":2' "$T/o" | sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p')
[ -n "$k1" ] && [ -n "$k2" ] && [ "$k1" != "$k2" ] && [ "$k1" != "$new" ] &&
    ok "two rotations at once answer two key ids" ||
    not_ok "two rotations: $(cat "$T/o") (before: $new)"
new=$k2

# A rotation whose last step cannot happen (the key file's name is taken
# by a directory, as a bind-mounted key would refuse it): the new key is in
# force and kept in master.key.new, certd says so, and the next rotation
# is refused until that step is done, never overwriting master.key.new.
# (The key is still the symbolic link made above: K is its target.)
K=$(readlink -f "$D/master.key")
mv "$K" "$T/key.before"
mkdir "$K"; : > "$K/x"
"$PEER" "$S" '{"id":1,"op":"rekey"}' > "$T/o"
k3=$(sed -n 's/.*"key_id":"\([0-9a-f]*\)".*/\1/p' "$T/o")
[ -n "$k3" ] && [ "$k3" != "$new" ] && grep -q "master key rotated key_id=$k3: the new key is in force, but .*has not replaced" "$LOG" &&
    ok "a rotation whose rename fails is in force and logged" ||
    not_ok "rotation, rename failing: $(cat "$T/o"); $(grep rotat "$LOG" | tail -n 1)"
cp "$K.new" "$T/key.k3"
"$PEER" "$S" '{"id":1,"op":"rekey"}' > "$T/o"
grep -q '"code":503' "$T/o" && grep -q 'last rotation is not finished' "$T/o" &&
    cmp -s "$K.new" "$T/key.k3" &&
    ok "the next rotation is refused with the reason, master.key.new kept" ||
    not_ok "second rotation while the rename is pending: $(cat "$T/o")"
rm -r "$K"
body "$T/b" certificate_type=client; req PUT "$C/3" "$T/b"
expect 200 "a write once the obstacle is gone"
req GET "$C/3"; cp "$T/out" "$T/three.k3"
cmp -s "$K" "$T/key.k3" && [ ! -e "$K.new" ] &&
    [ "$(stat -c %a "$K")" = 600 ] &&
    ok "... finishes the rotation's rename first" ||
    not_ok "key files after the pending rename: $(ls -l "$(dirname "$K")" | tr '\n' ' ')"
new=$k3
# A backup copies the key the store is sealed under, or nothing.
cp "$K" "$T/key.k3"
head -c 32 /dev/urandom > "$T/other.key"; chmod 600 "$T/other.key"
cp "$T/other.key" "$K"
"$PEER" "$S" "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/badkeybackup\"}" > "$T/o"
grep -q '"code":503' "$T/o" && grep -q 'not the key the database is sealed under' "$T/o" &&
    [ ! -e "$T/badkeybackup/db" ] && [ ! -e "$T/badkeybackup/master.key" ] &&
    ok "a backup refuses a master key file replaced under certd" ||
    not_ok "backup with a replaced key file: $(cat "$T/o"); $(ls -A "$T/badkeybackup" 2>&1)"
cp "$T/key.k3" "$K"
# A bind-mounted key file (a container's secret) can never be replaced by
# a rename: the rotation is refused up front, the key stays in force.
if [ "$(id -u)" = 0 ] && cp "$K" "$T/bound.key" &&
    mount --bind "$T/bound.key" "$K" 2>/dev/null; then
	# A write pipelined behind it is not failed with it.
	"$PEER" -n 2 "$S" '{"id":1,"op":"rekey"}' \
	    '{"id":2,"op":"put","team":"dur","cert_id":3,"certificate_type":"client"}' > "$T/o"
	umount "$K"
	grep '"id":1' "$T/o" | grep -q '"code":503' && grep -q 'is a mount point' "$T/o" &&
	    grep -q "rotation refused: .*is a mount point" "$LOG" &&
	    [ ! -e "$K.new" ] &&
	    ok "a rotation of a bind-mounted key is refused up front" ||
	    not_ok "rotation of a bind-mounted key: $(cat "$T/o"); $(grep rotat "$LOG" | tail -n 1)"
	grep '"id":2' "$T/o" | grep -q '"ok":true' &&
	    ok "... and a write behind it is not failed with it" ||
	    not_ok "write behind a refused rotation: $(cat "$T/o")"
else
	ok "# SKIP cannot bind-mount a file here"
fi
stop_certd TERM
start_certd "$D"
grep -q "key_id=$new" "$LOG" && ok "restart uses the newest key" || not_ok "key id after restart"
req GET "$C/3"
cmp -s "$T/out" "$T/three.k3" && ok "the record written with the pending rename reads back" ||
    not_ok "record 3 after the pending rename and a restart"
# A backup holds the store's file lock through its fsyncs; writes do not
# wait for it (only a rotation does).  With each of its fsyncs slowed to
# 0.5 s, a write made meanwhile is answered while the backup still runs.
if [ "$(id -u)" = 0 ] && command -v strace > /dev/null; then
	A= i=0	# the admin thread; under the sanitizers it can take a moment
	while [ -z "$A" ] && [ $i -lt 50 ]; do
		A=$(for t in /proc/"$CERTD_PID"/task/*; do
			[ "$(cat "$t/comm" 2>/dev/null)" = certd-admin ] &&
			    basename "$t"; done || true)
		[ -n "$A" ] || sleep 0.1
		i=$((i + 1))
	done
	strace -qq -e trace=fsync,fdatasync -e inject=fsync:delay_enter=500000 \
	    -e inject=fdatasync:delay_enter=500000 -o /dev/null -p "$A" 2> /dev/null &
	SP=$!
	sleep 0.5
	"$PEER" -t 60000 "$S" "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/slowbackup\"}" \
	    > "$T/bo" &
	BP=$!
	sleep 0.3
	body "$T/b" certificate_type=server; req PUT "$C/3" "$T/b"
	[ "$STATUS" = 200 ] && kill -0 "$BP" 2>/dev/null &&
	    ok "a write during a slow backup is answered while it runs" ||
	    not_ok "write during a slow backup: $STATUS; backup: $(cat "$T/bo")"
	wait "$BP" || true
	kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
	grep -q '"ok":true' "$T/bo" && ok "... and the backup completes" ||
	    not_ok "slow backup: $(cat "$T/bo")"
else
	ok "# SKIP strace needs root and strace"
fi
req GET "$C/2"
cmp -s "$T/out" "$T/two.before" && ok "records readable after rotation and restart" ||
    not_ok "record after rotation differs"
stop_certd TERM
chmod 640 "$D/master.key"
status=0
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 2> "$T/e" || status=$?
[ $status -ne 0 ] && grep -q "must not be readable by group or others" "$T/e" &&
    ok "a master key readable by the group is refused" || not_ok "key mode: $(cat "$T/e")"
chmod 600 "$D/master.key"
mv "$D/master.key" "$T/key.away"
status=0
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 2> "$T/e" || status=$?
[ $status -ne 0 ] && grep -q "is missing" "$T/e" && ok "a missing master key is refused" ||
    not_ok "missing key: $(cat "$T/e")"
head -c 32 /dev/urandom > "$D/master.key"; chmod 600 "$D/master.key"
status=0
"$CERTD" --data-dir "$D" --listen 127.0.0.1:0 2> "$T/e" || status=$?
[ $status -ne 0 ] && grep -q "does not decrypt" "$T/e" && ok "a wrong master key is refused" ||
    not_ok "wrong key: $(cat "$T/e")"
mv "$T/key.away" "$D/master.key"
# A FIFO planted as the key is refused, not waited on.
mv "$D/master.key" "$T/key.away"; mkfifo -m 600 "$D/master.key"
status=0
timeout 10 "$CERTD" --data-dir "$D" --listen 127.0.0.1:0 2> "$T/e" || status=$?
[ $status = 1 ] && grep -q "is not a regular file" "$T/e" && ok "a FIFO as the master key is refused" ||
    not_ok "FIFO key: exit $status: $(cat "$T/e")"
rm "$D/master.key"; mv "$T/key.away" "$D/master.key"
# A new store's key is written whole: a stale master.key.tmp of a crash is
# replaced, and none is left.
mkdir -p -m 700 "$T/fresh"; : > "$T/fresh/master.key.tmp"; cp "$D/tokens" "$T/fresh/tokens"
start_certd "$T/fresh"
[ "$(stat -c %s "$T/fresh/master.key")" = 32 ] && [ ! -e "$T/fresh/master.key.tmp" ] &&
    ok "a new master key is written whole, over a stale .tmp" ||
    not_ok "new key: $(ls -l "$T/fresh" | tr '\n' ' ')"
stop_certd TERM

# --- disk full ---------------------------------------------------------------------
M="$T/mnt"; mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=8m tmpfs "$M" 2>/dev/null; then
	UNMOUNT=$M
	mkdir -p -m 700 "$M/data"
	cp "$D/tokens" "$M/data/tokens"
	start_certd "$M/data"
	mk a leaf-ec.pem leaf-ec.key; expect 200 "create on the small disk"
	dd if=/dev/zero of="$M/filler" bs=4k 2>/dev/null || true	# to the last block
	mk b leaf-rsa.pem leaf-rsa.key; allow_5xx
	expect_error 503 "storage unavailable" "write on a full disk"
	req GET /metrics
	grep -q '^certd_store_writable 0$' "$T/out" && ok "metrics: the store is not writable" ||
	    not_ok "certd_store_writable on a full disk: $(grep store_writable "$T/out")"
	req GET "$C/1"; expect 200 "reads work on a full disk"
	req GET "$C"; expect_json total 1 "nothing half-written"
	# A backup flushes the memtable into the store first (RocksDB 7.8
	# would abort on the full disk): refused, and certd runs on.
	"$PEER" "$M/data/certd.sock" \
	    "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/fullbackup\"}" > "$T/o" || true
	grep -q '503' "$T/o" && grep -q 'bytes free' "$T/o" && kill -0 "$CERTD_PID" &&
	    ok "a backup on a full disk is refused, certd runs on" ||
	    not_ok "backup on a full disk: $(cat "$T/o"), certd: $(tail -n 3 "$LOG")"
	[ ! -e "$T/fullbackup/db" ] && ok "... and leaves no copy behind" ||
	    not_ok "backup on a full disk left $(ls "$T/fullbackup")"
	# Full for longer than RocksDB's periodic flush of its info log
	# (db/LOG): RocksDB 7.8 aborted at the log's next line, once space
	# was back, unless that log holds nothing but fatal errors.
	sleep 11
	rm -f "$M/filler"
	i=0
	while :; do
		mk b leaf-rsa.pem leaf-rsa.key; allow_5xx
		[ "$STATUS" = 200 ] || [ $i -ge 20 ] && break
		i=$((i + 1)); sleep 0.2
	done
	expect 200 "writes work again once space returns"
	req GET /metrics
	grep -q '^certd_store_writable 1$' "$T/out" && ok "metrics: writable again" ||
	    not_ok "certd_store_writable after the full disk: $(grep store_writable "$T/out")"
	"$PEER" "$M/data/certd.sock" '{"id":1,"op":"rekey"}' > "$T/o"
	grep -q '"key_id"' "$T/o" && kill -0 "$CERTD_PID" &&
	    ok "a rotation (flush and compaction) after the full disk" ||
	    not_ok "rotation after the full disk: $(cat "$T/o"); $(tail -n 2 "$LOG")"
	stop_certd TERM && ok "SIGTERM after the full disk exits 0" ||
	    not_ok "SIGTERM after the full disk: exit $status"
	start_certd "$M/data"
	req GET "$C"; expect_json total 2 "both records after a restart"
	stop_certd TERM
	# Start-up on a full disk: RocksDB 7.8 would abort replaying its log;
	# certd refuses with one line instead, and starts once space returns.
	dd if=/dev/zero of="$M/filler" bs=64k 2>/dev/null || true
	status=0
	"$CERTD" --data-dir "$M/data" --listen 127.0.0.1:0 --socket "$M/data/s.sock" \
	    2> "$T/e" || status=$?
	[ $status = 1 ] && [ "$(wc -l < "$T/e")" = 1 ] && grep -q "bytes free" "$T/e" &&
	    ok "start-up on a full disk is refused in one line" ||
	    not_ok "start-up on a full disk: exit $status: $(head -c 400 "$T/e")"
	rm -f "$M/filler"
	start_certd "$M/data"
	req GET "$C"; expect_json total 2 "both records once space returns"
	# A rotation needs room for its batch in the log and a table file
	# and for rewriting every table file: with 48 records and 2 MiB free,
	# writes go on but a rotation is refused up front, with the reason.
	i=3
	while [ $i -le 48 ]; do mk "r$i" leaf-rsa.pem leaf-rsa.key; i=$((i + 1)); done
	expect 200 "48 records on the small disk"
	avail=$(df -B1 --output=avail "$M" | tail -n 1)
	dd if=/dev/zero of="$M/filler" bs=1024 count=$(( (avail - 2097152) / 1024 )) 2>/dev/null
	"$PEER" "$M/data/certd.sock" '{"id":1,"op":"rekey"}' > "$T/o"
	grep -q '"code":503' "$T/o" && grep -q 'not enough free space for a rotation' "$T/o" &&
	    ok "a rotation without room for it is refused up front: $(sed -n "s/.*\"reason\":\"\([^\"]*\)\".*/\1/p" "$T/o")" ||
	    not_ok "rotation with 2 MiB free: $(cat "$T/o")"
	body "$T/b" certificate_type=client; req PUT "$C/1" "$T/b"
	expect 200 "... and writes go on"
	rm -f "$M/filler"
	"$PEER" "$M/data/certd.sock" '{"id":1,"op":"rekey"}' > "$T/o"
	grep -q '"key_id"' "$T/o" && ok "the rotation once there is room" ||
	    not_ok "rotation with room: $(cat "$T/o")"
	stop_certd TERM
	start_certd "$M/data"
	req GET "$C"; expect_json total 48 "all 48 records after the rotation and a restart"
	stop_certd TERM
	umount "$M" && UNMOUNT=
	# A background flush that fails for room puts RocksDB in error: the
	# next write fails and its reopen is not tried until the logs fit.
	# The open handle keeps serving the history and replays meanwhile.
	mount -t tmpfs -o size=24m tmpfs "$M" && UNMOUNT=$M
	mkdir -p -m 700 "$M/data"; cp "$D/tokens" "$M/data/tokens"
	start_certd "$M/data"
	mk a leaf-rsa.pem leaf-rsa.key; expect 200 "create on a 24 MiB disk"
	avail=$(df -k --output=avail "$M" | tail -n 1)
	dd if=/dev/zero of="$M/filler" bs=1k count=$((avail - 3000)) 2>/dev/null
	n=0 failed=0
	while [ $n -lt 30 ] && [ $failed = 0 ]; do
		set --
		i=0
		while [ $i -lt 50 ]; do
			set -- "$@" "$("$JTOOL" make id:=$i op=put team=dur alias=f$n-$i \
			    certificate=@"$PKI/leaf-rsa.full.pem" private_key=@"$PKI/leaf-rsa.key" \
			    certificate_type=server)"
			i=$((i + 1))
		done
		"$PEER" -n 50 -t 20000 "$M/data/certd.sock" "$@" > "$T/o" 2>&1
		failed=$(grep -c '"code":503' "$T/o" || true)
		n=$((n + 1))
	done
	[ "$failed" -gt 0 ] && ok "writes fail once the disk is nearly full" ||
	    not_ok "no write failed on the nearly full disk"
	req GET "$C/1/history"; expect 200 "the history reads while writes fail"
	"$PEER" "$M/data/certd.sock" '{"id":1,"op":"watch","team":"dur","since":1}' > "$T/o"
	grep -q '"ok":true' "$T/o" && ! grep -q 'replay failed' "$T/o" &&
	    ok "a watch replays while writes fail" || not_ok "replay: $(head -c 300 "$T/o")"
	rm -f "$M/filler"
	body "$T/b" certificate_type=client; req PUT "$C/1" "$T/b"
	expect 200 "a write once space returns"
	stop_certd TERM
	umount "$M" && UNMOUNT=
else
	ok "# SKIP cannot mount a tmpfs here"
fi
finish
