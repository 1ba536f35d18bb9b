# SPDX-License-Identifier: MIT
# certd nodes of one fleet for the tests, after lib.sh and etcdlib.sh:
# fleet_setup writes the fleet key and an admin token ($TOKEN) every node
# shares; start_node I starts node nI on its own data dir against
# $ETCD_URLS.  The EXIT trap must kill $NODE_PIDS.
NODE_PIDS=
C=/openapi/v1/teams/acme/certificates

fleet_setup() {
	head -c 32 /dev/urandom > "$T/fleet.key"; chmod 600 "$T/fleet.key"
	: > "$T/tokens"; chmod 600 "$T/tokens"
	TOKEN=$(new_token admin '*' write "$T/tokens")
}

# start_node I [ARGS...]: certd node I on its own data dir, log and port;
# sets BASE_I, PID_I, SOCK_I.
start_node() {
	n=$1; shift
	d="$T/n$n"
	[ -d "$d" ] || { mkdir -m 700 "$d"; cp "$T/tokens" "$d/tokens"; chmod 600 "$d/tokens"; }
	log="$T/n$n.log"; : >> "$log"
	lines=$(wc -l < "$log")
	"$CERTD" --data-dir "$d" --listen 127.0.0.1:0 --log-level debug \
	    --etcd "$ETCD_URLS" --fleet-key "$T/fleet.key" --node "n$n" "$@" \
	    2>> "$log" &
	eval "PID_$n=$!"
	NODE_PIDS="$NODE_PIDS $!"
	k=0
	while :; do
		eval "pid=\$PID_$n"
		kill -0 "$pid" 2>/dev/null || { tail -n 3 "$log" >&2; return 1; }
		ready=$(tail -n +"$((lines + 1))" "$log" | grep 'certd ready' || true)
		[ -n "$ready" ] && break
		k=$((k + 1)); [ "$k" -lt 300 ] || return 1
		sleep 0.1
	done
	port=$(printf '%s\n' "$ready" | sed -n 's/.*listen=[^ ]*:\([0-9]*\) .*/\1/p')
	eval "BASE_$n=http://127.0.0.1:$port SOCK_$n=$d/certd.sock"
}
on() { eval "BASE=\$BASE_$1"; }
kill_node() { eval "kill -KILL \$PID_$1; wait \$PID_$1 2>/dev/null || true"; }
# wait_for NODE PATH FIELD VALUE: poll until the JSON at FIELD is VALUE (10 s).
wait_for() {
	on "$1"; k=0
	while [ "$k" -lt 100 ]; do
		req GET "$2"
		[ "$STATUS" = 200 ] && [ "$(jget "$3" 2>/dev/null)" = "$4" ] && return 0
		sleep 0.1; k=$((k + 1))
	done
	return 1
}
mk() {	# ALIAS CERT KEY
	body "$T/b" alias="$1" certificate=@"$PKI/$2" private_key=@"$PKI/$3" \
	    certificate_type=server
}
