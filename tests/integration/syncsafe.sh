#!/bin/sh
# SPDX-License-Identifier: MIT
# Root's certctl sync never touches a file outside its target.  As nobody,
# plant what would redirect root's writes: a chain.pem symlink to a
# root-only file in a directory nobody owns, a symlinked directory to a
# root-only directory, a hard link, and pid files that name a root process;
# then run root's `certctl sync ... --owner nobody` against each and check
# that the victims keep their owner, mode and bytes, that nothing appears in
# the root-only directory, that no root process is signalled, and that
# certctl says why it refused.  A root-owned 0755 directory still works as
# before.  Needs root and setpriv (nobody's side).
. "$(dirname "$0")/lib.sh"

if ! nobody_ok; then
	echo "ok - certctl sync target safety # SKIP needs root, setpriv and a build nobody can reach"
	exit 0
fi

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
export CERTD_SOCKET="$D/certd.sock"
C=/openapi/v1/teams/acme/certificates

PIDS=
safe_cleanup() {
	st=$?
	set +e
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
	cleanup "$st"
}
trap safe_cleanup EXIT
trap 'exit 1' HUP INT TERM

check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# A leaf without a chain: --chain-file is then empty, as the victim is.
body "$T/c1" alias=web certificate=@"$PKI/leaf-rsa.pem" \
    private_key=@"$PKI/leaf-rsa.key" certificate_type=server
req POST "$C" "$T/c1"
expect 200 "create a certificate with no chain"

# The victims: a root-only empty file (as /etc/subuid can be), a root-only
# directory, and a root process.
VICTIM=$T/subuid; : > "$VICTIM"; chmod 600 "$VICTIM"
ROOTONLY=$T/rootonly; mkdir -m 700 "$ROOTONLY"
sleep 300 &
VICTIM_PID=$!
PIDS="$PIDS $VICTIM_PID"
echo "$VICTIM_PID" > "$T/root.pid"
victim_state() { stat -c '%u:%g:%a:%s' "$VICTIM"; }
BEFORE=$(victim_state)

# run_sync NAME ARGS...: root's certctl sync, stderr in $T/NAME.log, until
# it exits or acks a revision (10 s at most); its exit status, or
# "running" (then stopped), in $ST.
run_sync() {
	_log=$T/$1.log; shift
	"$CERTCTL" sync acme --id 1 --debounce 1 "$@" 2> "$_log" &
	_p=$!
	PIDS="$PIDS $_p"
	_n=0
	while kill -0 "$_p" 2>/dev/null && [ $_n -lt 100 ] &&
	    ! grep -q 'revision [0-9]*: \(ok\|requested\|failed\)' "$_log"; do
		sleep 0.1; _n=$((_n + 1))
	done
	sleep 0.2	# an ok is logged before nothing else is done
	if kill -0 "$_p" 2>/dev/null; then
		ST=running
		kill -TERM "$_p" 2>/dev/null || true
		_n=0
		while kill -0 "$_p" 2>/dev/null && [ $_n -lt 30 ]; do
			sleep 0.1; _n=$((_n + 1)); done
		kill -KILL "$_p" 2>/dev/null || true
		wait "$_p" 2>/dev/null || true
	else
		ST=0; wait "$_p" || ST=$?
	fi
}
victim_intact() {	# DESCRIPTION
	check "$1: the victim file keeps owner, mode and bytes" \
	    [ "$(victim_state)" = "$BEFORE" ]
	check "$1: nothing is created in the root-only directory" \
	    [ -z "$(ls -A "$ROOTONLY")" ]
	check "$1: the root process was not signalled" kill -0 "$VICTIM_PID"
}
refused_at_start() {	# NAME PATTERN DESCRIPTION
	if [ "$ST" = 2 ] && grep -q "$2" "$T/$1.log"; then ok "$3"; else
		not_ok "$3: status $ST, stderr: $(head -c 300 "$T/$1.log")"
	fi
}
refused_apply() {	# NAME PATTERN DESCRIPTION
	if grep -q "revision [0-9]*: failed: .*$2" "$T/$1.log"; then ok "$3"
	else not_ok "$3: status $ST, stderr: $(head -c 300 "$T/$1.log")"; fi
}

# --- nobody's own directory with chain.pem -> the victim -----------------------
N=$T/nobody; mkdir -m 755 "$N"; chown nobody:nogroup "$N"
as_nobody mkdir "$N/a"
as_nobody ln -s "$VICTIM" "$N/a/chain.pem"
run_sync link --cert-file "$N/a/cert.pem" --key-file "$N/a/key.pem" \
    --chain-file "$N/a/chain.pem" --owner nobody
victim_intact "chain.pem symlink in nobody's directory"
refused_at_start link "directory $N/a is owned by uid 65534" \
    "... refused at start: the directory is nobody's"
check "... nothing written there" [ ! -e "$N/a/key.pem" ]

# --- a symlinked directory: www -> the root-only directory ------------------------
as_nobody ln -s "$ROOTONLY" "$N/www"
run_sync dirlink --cert-file "$N/www/cert.pem" --key-file "$N/www/key.pem" \
    --owner nobody
victim_intact "www -> root-only directory"
refused_at_start dirlink "$N/www.*symbolic link" \
    "... refused at start: a symbolic link in the path"

# --- a hard link to the victim ----------------------------------------------------
# With fs.protected_hardlinks nobody cannot link a file it does not own: the
# attack is then tried in its own directory only if the kernel allows it.
if as_nobody ln "$VICTIM" "$N/a/hard.pem" 2>/dev/null; then
	run_sync hard --cert-file "$N/a/c.pem" --key-file "$N/a/k.pem" \
	    --chain-file "$N/a/hard.pem" --owner nobody
	victim_intact "hard link planted by nobody"
	refused_at_start hard "owned by uid 65534" "... refused at start"
else
	ok "nobody cannot hard-link the victim (fs.protected_hardlinks)"
fi

# --- what was planted before the directory became root's ---------------------------
# A directory nobody no longer writes may still hold a link or a fifo left
# from before: sync must refuse each such file, not follow or open it.
R=$T/rootdir; mkdir -m 755 "$R"
mkdir -m 755 "$R/sym" "$R/hard" "$R/fifo" "$R/dir"
ln -s "$VICTIM" "$R/sym/chain.pem"
ln "$VICTIM" "$R/hard/chain.pem"
mkfifo "$R/fifo/cert.pem"
mkdir "$R/dir/cert.pem"
run_sync rsym --cert-file "$R/sym/cert.pem" --key-file "$R/sym/key.pem" \
    --chain-file "$R/sym/chain.pem" --owner nobody
victim_intact "a chain.pem symlink in a root directory"
refused_apply rsym "$R/sym/chain.pem.*symbolic link" \
    "... refused with the reason, acked failed"
check "... and no file of the set written" [ ! -e "$R/sym/key.pem" ]
run_sync rhard --cert-file "$R/hard/cert.pem" --key-file "$R/hard/key.pem" \
    --chain-file "$R/hard/chain.pem" --owner nobody
victim_intact "a chain.pem hard link in a root directory"
refused_apply rhard "$R/hard/chain.pem.*2 hard links" \
    "... refused with the reason, acked failed"
run_sync rfifo --cert-file "$R/fifo/cert.pem" --key-file "$R/fifo/key.pem" \
    --owner nobody
refused_apply rfifo "$R/fifo/cert.pem.*not a regular file" \
    "a fifo as target: refused (not opened, no hang)"
check "... the fifo is left as it was" [ -p "$R/fifo/cert.pem" ]
run_sync rdir --cert-file "$R/dir/cert.pem" --key-file "$R/dir/key.pem"
refused_apply rdir "$R/dir/cert.pem.*not a regular file" \
    "a directory as target: refused"

# --- target directories writable by others -------------------------------------------
mkdir -m 1777 "$T/sticky"
run_sync sticky --cert-file "$T/sticky/cert.pem" --key-file "$T/sticky/key.pem"
refused_at_start sticky "directory $T/sticky must not be writable by group or others" \
    "a world-writable sticky directory is refused at start"
check "... nothing written there" [ -z "$(ls -A "$T/sticky")" ]
mkdir -m 775 "$T/grp"; chgrp nogroup "$T/grp"
run_sync grp --cert-file "$T/grp/cert.pem" --key-file "$T/grp/key.pem"
refused_at_start grp "directory $T/grp must not be writable by group or others" \
    "a group-writable directory is refused at start"

# --- pid files that would make root signal its own processes ---------------------------
# (Each with its own files: a sync that finds them unchanged does not reload.)
P=$T/piddir; mkdir -m 755 "$P" "$P/o1" "$P/o2" "$P/o3"
: > "$P/srv.pid"; chown nobody:nogroup "$P/srv.pid"
as_nobody sh -c "echo $VICTIM_PID > '$P/srv.pid'"
run_sync pidown --cert-file "$P/o1/cert.pem" --key-file "$P/o1/key.pem" \
    --signal TERM --pid-file "$P/srv.pid"
victim_intact "a pid file nobody owns naming a root process"
refused_apply pidown "pid file $P/srv.pid.*owned by uid 65534" \
    "... refused with the reason"
ln -s "$T/root.pid" "$P/link.pid"
run_sync pidlink --cert-file "$P/o2/cert.pem" --key-file "$P/o2/key.pem" \
    --signal TERM --pid-file "$P/link.pid"
victim_intact "a pid file that is a symlink to a root pid file"
refused_apply pidlink "pid file $P/link.pid.*symbolic link" \
    "... refused with the reason"
as_nobody ln -s "$T/root.pid" "$N/x.pid"
run_sync pidnobody --cert-file "$P/o3/cert.pem" --key-file "$P/o3/key.pem" \
    --signal TERM --pid-file "$N/x.pid"
victim_intact "a pid file symlink nobody planted in its directory"
refused_at_start pidnobody "directory $N is owned by uid 65534" \
    "... refused at start: the pid file's directory is nobody's"

# --- a root-owned 0755 directory works as before -----------------------------------------
G=$T/good; mkdir -m 755 "$G"
sh -c 'trap "echo hup >> \"$1\"" HUP; echo $$ > "$2"; while :; do sleep 0.1; done' \
    sh "$T/hups" "$G/srv.pid" &
SRV=$!
PIDS="$PIDS $SRV"
while [ ! -s "$G/srv.pid" ]; do sleep 0.1; done
run_sync good --cert-file "$G/cert.pem" --key-file "$G/key.pem" \
    --chain-file "$G/chain.pem" --owner nobody --signal HUP \
    --pid-file "$G/srv.pid"
check "a root 0755 directory: acked requested (no --verify)" \
    grep -q 'revision [0-9]*: requested: reload requested (SIGHUP' "$T/good.log"
check "... the certificate written" cmp -s "$G/cert.pem" "$PKI/leaf-rsa.pem"
check "... the key written" cmp -s "$G/key.pem" "$PKI/leaf-rsa.key"
check "... the empty chain written" [ -f "$G/chain.pem" ] && [ ! -s "$G/chain.pem" ]
check "... owner nobody, modes 644 and 600" [ "$(stat -c '%U %a' "$G/cert.pem" \
    "$G/key.pem" "$G/chain.pem" | tr '\n' ' ')" = "nobody 644 nobody 600 nobody 644 " ]
check "... the server was signalled" [ -s "$T/hups" ]
check "... no temp file left" [ -z "$(ls -A "$G" | grep '^\.' || true)" ]
# A relative path, resolved from the working directory.
(cd "$G" && run_sync rel --cert-file cert.pem --key-file key.pem) || true
check "a relative path in a root directory: acked requested" \
    grep -q 'revision [0-9]*: requested' "$T/rel.log"
kill -TERM "$SRV" 2>/dev/null || true

check "the root process survived every attack" kill -0 "$VICTIM_PID"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish