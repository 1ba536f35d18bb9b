#!/bin/sh
# SPDX-License-Identifier: MIT
# Fleet-wide subscribers (doc/fleet.md): two certd nodes of one fleet
# (three etcd members), each with a real nginx kept by `certctl sync
# --verify` on its own node.  A PUT on node 1 reaches both nginx
# instances, which then present the new certificate; the subscribers view
# on node 1 (REST) and on node 2 (certctl subscribers) shows both hosts'
# syncs with the revision and the fingerprint each nginx presents; a node
# killed drops out of the view when its etcd lease expires.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/fleetlib.sh"
for tool in nginx gnutls-cli certtool; do
	command -v "$tool" > /dev/null 2>&1 ||
	    { echo "# $tool not installed: skipped"; exit 77; }
done
SYNCS= NGINXES=
stop_all() {
	# (set -e: a pid already gone must not end the trap here)
	for p in $SYNCS $NODE_PIDS; do kill -KILL "$p" 2>/dev/null || true; done
	for p in $NGINXES; do
		w=$(ps -o pid= --ppid "$p" 2>/dev/null || true)
		kill -KILL "$p" $w 2>/dev/null || true
	done
}
trap 'st=$?; stop_all; etcd_cleanup; cleanup $st' EXIT

check() {	# DESCRIPTION CMD...
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}
wait_until() {	# TENTHS CMD...
	_wt=$1; shift
	while ! "$@"; do
		_wt=$((_wt - 1)); [ "$_wt" -gt 0 ] || return 1; sleep 0.1
	done
}
fingerprint() { certtool --fingerprint --hash sha256 --infile "$1" 2>/dev/null; }
presents() {	# PORT FINGERPRINT
	timeout 5 gnutls-cli --insecure --print-cert -p "$1" 127.0.0.1 \
	    < /dev/null 2> /dev/null |
	    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END/q;}' \
	    > "$T/presented.pem"
	[ -s "$T/presented.pem" ] && [ "$(fingerprint "$T/presented.pem")" = "$2" ]
}

etcd_cluster 3 && ok "three etcd members" || { not_ok "etcd cluster"; finish; exit 1; }
fleet_setup
for n in 1 2; do
	start_node $n && ok "node $n joined the fleet" || { not_ok "node $n did not start"; finish; exit 1; }
done

RSA2=$T/rsa2.chain.pem
cat "$PKI/leaf-rsa2.pem" "$PKI/int.pem" > "$RSA2"
FP_RSA2=$(fingerprint "$PKI/leaf-rsa2.pem")
on 1
mk www leaf-rsa.chain.pem leaf-rsa.key
req POST "$C" "$T/b"
expect 200 "create www on node 1"
ID=$(jget id)

# start_nginx N: certctl sync on node N's socket writes the files, then
# an nginx on its own port serves them; NPORT_N.
start_nginx() {
	P="$T/ng$1"; mkdir -p "$P/logs" "$P/tmp" "$P/certd"
	port=$(free_port)
	eval "NPORT_$1=$port SOCK=\$SOCK_$1"
	CERTD_SOCKET=$SOCK "$CERTCTL" sync acme --alias www \
	    --cert-file "$P/certd/fullchain.pem" --key-file "$P/certd/privkey.pem" \
	    --signal HUP --pid-file "$P/nginx.pid" --debounce 100 \
	    --name "nginx-n$1" --verify "127.0.0.1:$port,www.example.com" \
	    --verify-timeout 3 2> "$T/sync$1.log" &
	SYNCS="$SYNCS $!"
	eval "SYNC_$1=$!"
	wait_until 100 test -s "$P/certd/privkey.pem" || return 1
	sed -e "s|listen 443 ssl;|listen 127.0.0.1:$port ssl;|" \
	    -e "s|/etc/nginx/certd/www|$P/certd|g" \
	    "$CERTD_SRCDIR/contrib/nginx/certd-sync.conf" > "$P/server.conf"
	nginx_conf "$P"
	nginx -p "$P/" -c "$P/nginx.conf" -e stderr 2> "$P/stderr.log" &
	ng=$!
	NGINXES="$NGINXES $ng"
	wait_until 100 test -s "$P/nginx.pid" && return 0
	# the port was taken after free_port looked: another one
	eval "kill -KILL \$SYNC_$1 $ng 2>/dev/null || true"
	grep -q 'in use' "$P/stderr.log" "$P/logs/error.log" 2>/dev/null &&
	    return 2
	return 1
}
nginx_up() {	# N: up to five ports
	for _try in 1 2 3 4 5; do
		start_nginx "$1" && return 0
		[ $? -eq 2 ] || return 1
		rm -rf "$T/ng$1"
	done
	return 1
}
for n in 1 2; do
	check "nginx $n started, fed by certctl sync on node $n" nginx_up $n
done

# --- one PUT on node 1: both hosts' nginx present it ---------------------
body "$T/u" certificate=@"$RSA2" private_key=@"$PKI/leaf-rsa2.key"
req PUT "$C/$ID" "$T/u"
expect 200 "update www on node 1"
REV=$(jget revision)
for n in 1 2; do
	eval "port=\$NPORT_$n"
	check "nginx on host $n presents the new certificate" \
	    wait_until 150 presents "$port" "$FP_RSA2"
done

# view_has NODE NAME: the last response lists NAME on NODE, acked ok at
# $REV with nginx presenting the new leaf.
view_has() {
	i=0
	while node=$(jget "list.$i.node" 2>/dev/null); do
		if [ "$node" = "$1" ] && [ "$(jget "list.$i.name")" = "$2" ]; then
			[ "$(jget "list.$i.revision")" = "$REV" ] &&
			    [ "$(jget "list.$i.status")" = ok ] &&
			    [ "$(jget "list.$i.served_fingerprint_sha256")" = "$FP_RSA2" ]
			return
		fi
		i=$((i + 1))
	done
	return 1
}
rest_view() {
	req GET "$C/$ID/subscribers" && [ "$STATUS" = 200 ] &&
	    view_has n1 nginx-n1 && view_has n2 nginx-n2
}
on 1
check "node 1's REST view shows both hosts' nginx at revision $REV, ok, serving the new leaf" \
    wait_until 150 rest_view
on 2
check "so does node 2's" wait_until 50 rest_view
ctl_view() {
	CERTD_SOCKET=$SOCK_1 "$CERTCTL" subscribers acme "$ID" --json > "$T/out" &&
	    view_has n1 nginx-n1 && view_has n2 nginx-n2
}
check "certctl subscribers on node 1's socket shows both" wait_until 50 ctl_view
CERTD_SOCKET=$SOCK_2 "$CERTCTL" subscribers acme "$ID" > "$T/table"
check "the table names the node of each row" \
    grep -q "^n1 .*nginx-n1" "$T/table"
check "(and the other host's)" grep -q "^n2 .*nginx-n2" "$T/table"

# --- a host that dies drops out when its lease expires ---------------------
kill -KILL "$SYNC_2" "$PID_2"
gone() {
	req GET "$C/$ID/subscribers" && [ "$STATUS" = 200 ] &&
	    ! grep -q nginx-n2 "$T/out" && grep -q nginx-n1 "$T/out"
}
on 1
check "node 2 killed: node 1's view drops it within its lease (10 s)" \
    wait_until 250 gone

kill -TERM "$PID_1"; wait "$PID_1" && ok "node 1 stops cleanly" || not_ok "node 1 exit"
finish
