#!/bin/sh
# SPDX-License-Identifier: MIT
# Permissions, checked as master.key's always were: start-up and SIGHUP
# refuse, with the reason, a data directory that others can reach or that
# is not certd's, a token file or configuration that others can write or
# that belongs to another uid, and a master key of another uid; certd
# follows no link in its data directory, and backs up into no directory
# that someone else may change.  Each case performs the careless setup, or
# the attack of a local unprivileged user (nobody) that it invites.
. "$(dirname "$0")/lib.sh"

PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
C=/openapi/v1/teams/perms/certificates

# refuse DESCRIPTION TEXT ARGS...: certd exits non-zero at once with one
# line on stderr that holds TEXT.
refuse() {
	desc=$1 text=$2; shift 2
	status=0
	timeout 20 "$CERTD" --listen 127.0.0.1:0 "$@" > /dev/null 2> "$T/stderr" ||
	    status=$?
	if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -lt 128 ] &&
	    [ "$(wc -l < "$T/stderr")" -eq 1 ] && grep -q -F -e "$text" "$T/stderr"
	then
		ok "$desc"
	else
		not_ok "$desc: exit $status, stderr: $(cat "$T/stderr")"
	fi
}

# reload_is WHAT DESCRIPTION: send SIGHUP; WHAT is "ok", or the text the
# error line of the refused reload must hold.
reload_is() {
	hup_wait
	last=$(grep -e 'reloaded configuration' -e 'reload failed' "$LOG" | tail -n 1)
	case $1:$last in
	ok:*"reloaded configuration"*) ok "$2" ;;
	ok:*) not_ok "$2: $last" ;;
	*:*" error reload failed, keeping the running configuration: $1"*) ok "$2" ;;
	*) not_ok "$2: $last" ;;
	esac
}

# as_nobody CMD...: run CMD as nobody (only when nobody_ok).
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

ME=$(id -u)
if nobody_ok; then NOBODY=$(id -u nobody); else NOBODY=; fi

# --- the data directory ------------------------------------------------------
mkdir -m 755 "$T/open"
refuse "a data directory of mode 0755 is refused" \
    "data directory $T/open must not be accessible by group or others (mode 0755)" \
    --data-dir "$T/open"
if [ -n "$NOBODY" ]; then
	mkdir -m 700 "$T/theirs"; chown nobody "$T/theirs"
	refuse "a data directory owned by nobody is refused (certd runs as root)" \
	    "data directory $T/theirs is owned by uid $NOBODY; it must be owned by uid $ME" \
	    --data-dir "$T/theirs"
else
	ok "# SKIP not root: cannot give a data directory to nobody"
fi

# --- a lock file planted as a link: refused, its target untouched ----------
D="$T/data"; mkdir -m 700 "$D"
printf 'precious bytes\n' > "$T/victim"; cp "$T/victim" "$T/victim.orig"
ln -s "$T/victim" "$D/certd.lock"
refuse "a certd.lock that is a symbolic link is refused" \
    "lock file $D/certd.lock is a symbolic link, which certd does not follow there" \
    --data-dir "$D"
cmp -s "$T/victim" "$T/victim.orig" && ok "the link's target was not truncated" ||
    not_ok "the link's target changed: $(od -c "$T/victim" | head -n 2)"
rm "$D/certd.lock"

# --- token files -----------------------------------------------------------
TOKEN=$(new_token admin '*' write "$D/tokens")
chmod 666 "$D/tokens"
refuse "a token file writable by others is refused at start-up" \
    "token file $D/tokens must not be writable by group or others (mode 0666)" \
    --data-dir "$D"
chmod 600 "$D/tokens"
mv "$D/tokens" "$T/tokens.real"; ln -s "$T/tokens.real" "$D/tokens"
refuse "a token file in the data directory that is a link is refused" \
    "token file $D/tokens is a symbolic link" --data-dir "$D"
rm "$D/tokens"; mv "$T/tokens.real" "$D/tokens"
if [ -n "$NOBODY" ]; then
	cp "$D/tokens" "$T/tokens.nobody"; chown nobody "$T/tokens.nobody"
	refuse "a token file owned by nobody is refused at start-up" \
	    "token file $T/tokens.nobody is owned by uid $NOBODY; it must be owned by root or uid $ME" \
	    --data-dir "$D" --token-file "$T/tokens.nobody"
else
	ok "# SKIP not root: cannot give a token file to nobody"
fi

# A running certd: the token file and the configuration outside the data
# directory (where nobody can reach them), the socket open to nogroup.
cp "$D/tokens" "$T/tokens"; chmod 644 "$T/tokens"
printf '[certd]\nsocket_group = nogroup\n' > "$T/certd.conf"
S="$T/perms.sock"
start_certd "$D" --socket "$S" --token-file "$T/tokens" --config "$T/certd.conf"
req GET "$C"; expect 200 "the admin token works"
reload_is ok "a reload with every file in order is accepted"

# A careless chmod 666 of the token file; nobody adds a write token of
# their own and waits for the next SIGHUP.
chmod 666 "$T/tokens"
out=$("$CERTCTL" token new --name mallory --teams '*' --role write)
EVIL=$(printf '%s\n' "$out" | sed -n 1p)
LINE=$(printf '%s\n' "$out" | sed -n 2p)
if [ -n "$NOBODY" ]; then
	as_nobody sh -c 'printf "%s\n" "$1" >> "$2"' sh "$LINE" "$T/tokens" &&
	    ok "nobody appended a token to the 0666 file" || not_ok "nobody cannot append"
else
	printf '%s\n' "$LINE" >> "$T/tokens"
	ok "# SKIP not root: the token is appended by this uid, not by nobody"
fi
reload_is "token file $T/tokens must not be writable by group or others (mode 0666)" \
    "SIGHUP refuses a token file writable by others, with the reason"
req GET "$C" "" "$EVIL"; expect_error 401 "unauthorized" "the planted token is not in force"
req GET "$C"; expect 200 "the tokens in force before stay"
chmod 644 "$T/tokens"
grep -v '^mallory ' "$T/tokens" > "$T/tokens.new"; cat "$T/tokens.new" > "$T/tokens"
if [ -n "$NOBODY" ]; then
	chown nobody "$T/tokens"
	reload_is "token file $T/tokens is owned by uid $NOBODY" \
	    "SIGHUP refuses a token file owned by nobody"
	chown 0 "$T/tokens"
fi

# The configuration grants socket rights: the same rule as the token file.
if [ -n "$NOBODY" ]; then
	chmod 755 "$T"
	as_nobody "$PEER" "$S" '{"id":1,"op":"list","team":"perms"}' > "$T/o"
	grep -q '"code":403' "$T/o" && ok "nobody has no socket rights" || not_ok "$(cat "$T/o")"
	chmod 666 "$T/certd.conf"
	as_nobody sh -c 'printf "[certd]\nsocket_group = nogroup\n[acl]\nuser nobody = teams=* perms=read,write,key\n" > "$1"' \
	    sh "$T/certd.conf"
	reload_is "config $T/certd.conf must not be writable by group or others (mode 0666)" \
	    "SIGHUP refuses a configuration writable by others"
	as_nobody "$PEER" "$S" '{"id":1,"op":"list","team":"perms"}' > "$T/o"
	grep -q '"code":403' "$T/o" && ok "nobody's ACL is not in force" ||
	    not_ok "nobody after the refused reload: $(cat "$T/o")"
	chmod 644 "$T/certd.conf"; chown nobody "$T/certd.conf"
	reload_is "config $T/certd.conf is owned by uid $NOBODY" \
	    "SIGHUP refuses a configuration owned by nobody"
	printf '[certd]\nsocket_group = nogroup\n' > "$T/certd.conf"
	chown 0 "$T/certd.conf"
else
	ok "# SKIP not root: nobody cannot rewrite the configuration"
fi

# The data directory and the master key are checked again on SIGHUP.
chmod 750 "$D"
reload_is "data directory $D must not be accessible by group or others (mode 0750)" \
    "SIGHUP refuses a data directory opened to the group"
chmod 700 "$D"
if [ -n "$NOBODY" ]; then
	chown nobody "$D/master.key"
	reload_is "master key $D/master.key is owned by uid $NOBODY" \
	    "SIGHUP refuses a master key owned by nobody"
	chown 0 "$D/master.key"
	# A backup into a directory that nobody owns: nobody could swap its
	# entries while root's certd writes there by name.
	mkdir -m 700 "$T/bk-nobody"; chown nobody "$T/bk-nobody"
	"$PEER" "$S" "{\"id\":1,\"op\":\"backup\",\"dir\":\"$T/bk-nobody\"}" > "$T/o"
	grep -q "backup directory $T/bk-nobody is owned by uid $NOBODY" "$T/o" &&
	    [ -z "$(ls -A "$T/bk-nobody")" ] &&
	    ok "a backup into a directory owned by nobody is refused" ||
	    not_ok "backup into nobody's directory: $(cat "$T/o"); $(ls -A "$T/bk-nobody")"
fi
reload_is ok "the reload is accepted again once every file is in order"
req GET "$C"; expect 200 "the admin token still works"
stop_certd TERM && ok "stop" || not_ok "stop"
[ ! -e "$S" ] && ok "the socket file is removed at stop" || not_ok "socket left behind"

if [ -n "$NOBODY" ]; then
	chown nobody "$D/master.key"
	refuse "a master key owned by nobody is refused at start-up" \
	    "master key $D/master.key is owned by uid $NOBODY; it must be owned by uid $ME" \
	    --data-dir "$D"
	chown 0 "$D/master.key"
	cp "$T/certd.conf" "$T/theirs.conf"; chown nobody "$T/theirs.conf"
	refuse "a configuration owned by nobody is refused at start-up" \
	    "config $T/theirs.conf is owned by uid $NOBODY; it must be owned by root or uid $ME" \
	    --data-dir "$D" --config "$T/theirs.conf"
else
	ok "# SKIP not root: cannot give the master key to nobody"
fi
chmod 664 "$T/certd.conf"
refuse "a group-writable configuration is refused at start-up" \
    "config $T/certd.conf must not be writable by group or others (mode 0664)" \
    --data-dir "$D" --config "$T/certd.conf"
finish
