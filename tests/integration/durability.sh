#!/bin/sh
# SPDX-License-Identifier: MIT
# Durability around the store: a backup taken while certd runs restores
# into a new data dir with the same records; master key rotation keeps
# every record readable across a restart; a full disk answers 503 to
# writes while reads keep working, and certd recovers by itself when space
# returns.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
D="$T/data"; mkdir -p "$D"
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
stop_certd TERM
start_certd "$D"
grep -q "key_id=$new" "$LOG" && ok "restart uses the newest key" || not_ok "key id after restart"
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

# --- disk full ---------------------------------------------------------------------
M="$T/mnt"; mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=8m tmpfs "$M" 2>/dev/null; then
	UNMOUNT=$M
	mkdir -p "$M/data"
	cp "$D/tokens" "$M/data/tokens"
	start_certd "$M/data"
	mk a leaf-ec.pem leaf-ec.key; expect 200 "create on the small disk"
	dd if=/dev/zero of="$M/filler" bs=64k 2>/dev/null || true
	mk b leaf-rsa.pem leaf-rsa.key; allow_5xx
	expect_error 503 "storage unavailable" "write on a full disk"
	req GET "$C/1"; expect 200 "reads work on a full disk"
	req GET "$C"; expect_json total 1 "nothing half-written"
	rm -f "$M/filler"
	i=0
	while :; do
		mk b leaf-rsa.pem leaf-rsa.key; allow_5xx
		[ "$STATUS" = 200 ] || [ $i -ge 20 ] && break
		i=$((i + 1)); sleep 0.2
	done
	expect 200 "writes work again once space returns"
	stop_certd TERM
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
	stop_certd TERM
	umount "$M" && UNMOUNT=
else
	ok "# SKIP cannot mount a tmpfs here"
fi
finish
