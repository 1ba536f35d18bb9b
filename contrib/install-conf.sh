#!/bin/sh
# SPDX-License-Identifier: MIT
# The last step of make install (install-data-hook in Makefile.am):
#
#   install-conf.sh CONF CONFDIR USER SYSUSERSDIR TMPFILESDIR BINDIR
#
# puts CONF as $DESTDIR/CONFDIR/certd.conf (0644) and a token file without
# a token as $DESTDIR/CONFDIR/tokens (0640), each only when no file of that
# name exists: an operator's configuration and tokens are never replaced.
# As root on the live system (DESTDIR empty) it then does what the Debian
# package's postinst does: creates USER's user and group (systemd-sysusers
# on SYSUSERSDIR/certd.conf), certd's directories (systemd-tmpfiles on
# TMPFILESDIR/certd.conf) and gives a token file it created the group USER
# (root:USER 0640: certd, running as USER, reads it; only root writes it, as
# certd requires).  Otherwise it says what it skipped.
set -eu

conf=$1 confdir=$2 user=$3 sysusersdir=$4 tmpfilesdir=$5 bindir=$6
dest=${DESTDIR:-}
d=$dest$confdir

say() { echo "install-conf: $*"; }

[ -d "$d" ] || { mkdir -p "$d"; chmod 755 "$d"; }

if [ -e "$d/certd.conf" ] || [ -L "$d/certd.conf" ]; then
	say "kept the existing $d/certd.conf (the new sample is $conf)"
else
	cp "$conf" "$d/certd.conf.tmp"
	chmod 644 "$d/certd.conf.tmp"
	mv "$d/certd.conf.tmp" "$d/certd.conf"
	say "installed $d/certd.conf"
fi

new_tokens=
if [ -e "$d/tokens" ] || [ -L "$d/tokens" ]; then
	say "kept the existing $d/tokens"
else
	(
		umask 077
		printf '%s\n' \
		    "# certd tokens: NAME sha256:HEX teams=*|TEAM[,TEAM...] role=read|write [keys=yes|no]" \
		    "# Add one with: certctl token new --name NAME --teams '*' --role write" \
		    > "$d/tokens.tmp"
	)
	chmod 640 "$d/tokens.tmp"
	mv "$d/tokens.tmp" "$d/tokens"
	new_tokens=yes
	say "installed $d/tokens (no token yet)"
fi

live=yes
if [ -n "$dest" ]; then
	live=no
	why="DESTDIR is set"
elif [ "$(id -u)" -ne 0 ]; then
	live=no
	why="not run as root"
fi
if [ "$live" = no ]; then
	say "$why: the user $user and certd's directories are not made"
	if [ -n "$new_tokens" ]; then
		say "$why: chown skipped, $d/tokens is $(id -un):$(id -gn);" \
		    "on the target run chown root:$user $confdir/tokens (certd reads it as $user)"
	fi
	exit 0
fi

if [ -n "$sysusersdir" ] && [ -f "$sysusersdir/certd.conf" ] &&
    command -v systemd-sysusers > /dev/null 2>&1; then
	systemd-sysusers "$sysusersdir/certd.conf"
fi
if ! getent group "$user" > /dev/null 2>&1; then
	say "there is no group $user and no systemd-sysusers to make it:" \
	    "create the system user and group $user"
	[ -z "$new_tokens" ] || say "then chown root:$user $d/tokens"
	exit 0
fi
say "user and group $user are there"
if [ -n "$tmpfilesdir" ] && [ -f "$tmpfilesdir/certd.conf" ] &&
    command -v systemd-tmpfiles > /dev/null 2>&1; then
	systemd-tmpfiles --create "$tmpfilesdir/certd.conf"
	say "made certd's directories ($tmpfilesdir/certd.conf)"
fi
if [ -n "$new_tokens" ]; then
	chown "root:$user" "$d/tokens"
	say "$d/tokens is root:$user, mode 0640"
fi
say "next: add a token ($bindir/certctl token new ...) to $d/tokens, then systemctl daemon-reload; systemctl enable --now certd"
