# SPDX-License-Identifier: MIT
# A real etcd cluster on loopback for the tests (Debian's etcd-server):
# etcd_cluster N starts N members on random free ports under $T/etcd and
# waits until the cluster has a leader; ETCD_URLS is their client URLs,
# comma-separated, ETCD_URL_i and ETCD_PID_i those of member i.
# etcd_kill i stops member i (SIGKILL), etcd_restart i starts it again.  Source it after lib.sh; the EXIT
# trap must call etcd_cleanup.

command -v etcd > /dev/null || { echo "# etcd not installed (etcd-server)" >&2; exit 77; }
ETCD_N=0

# free_port: a random loopback port nobody listens on right now.
free_port() {
	while :; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40001))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}

etcd_cluster() {
	n=$1 tries=0
	while :; do
		tries=$((tries + 1))
		i=1 cluster= ETCD_URLS=
		while [ "$i" -le "$n" ]; do
			eval "ETCD_CPORT_$i=$(free_port) ETCD_PPORT_$i=$(free_port)"
			eval "cluster=\"\${cluster:+\$cluster,}m$i=http://127.0.0.1:\$ETCD_PPORT_$i\""
			eval "ETCD_URL_$i=http://127.0.0.1:\$ETCD_CPORT_$i"
			eval "ETCD_URLS=\"\${ETCD_URLS:+\$ETCD_URLS,}\$ETCD_URL_$i\""
			i=$((i + 1))
		done
		rm -rf "$T/etcd"
		mkdir -p "$T/etcd"
		ETCD_CLUSTER=$cluster
		i=1
		while [ "$i" -le "$n" ]; do
			etcd_restart "$i"
			i=$((i + 1))
		done
		ETCD_N=$n
		# a leader: a write through member 1 goes through
		k=0
		while [ "$k" -lt 100 ]; do
			curl -sf -m 2 -X POST -d '{"key":"AA==","value":"AA=="}' \
			    "$ETCD_URL_1/v3/kv/put" > /dev/null 2>&1 && return 0
			sleep 0.2; k=$((k + 1))
		done
		etcd_cleanup
		if grep -q 'address already in use' "$T"/etcd/m*.log && [ "$tries" -lt 5 ]; then
			continue
		fi
		tail -n 5 "$T"/etcd/m*.log >&2
		echo "# etcd cluster did not start" >&2
		return 1
	done
}

# etcd_restart i: start member i (again, on its data and ports).
etcd_restart() {
	eval "cport=\$ETCD_CPORT_$1 pport=\$ETCD_PPORT_$1"
	etcd --name "m$1" --data-dir "$T/etcd/m$1" \
	    --listen-client-urls "http://127.0.0.1:$cport" \
	    --advertise-client-urls "http://127.0.0.1:$cport" \
	    --listen-peer-urls "http://127.0.0.1:$pport" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
	    --initial-cluster-token "certd-test-$$" \
	    --log-level warn >> "$T/etcd/m$1.log" 2>&1 &
	eval "ETCD_PID_$1=$!"
}

etcd_kill() {
	eval "pid=\${ETCD_PID_$1:-}"
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	eval "ETCD_PID_$1="
}

etcd_cleanup() {
	i=1
	while [ "$i" -le "$ETCD_N" ]; do etcd_kill "$i"; i=$((i + 1)); done
}
