#!/bin/sh
# SPDX-License-Identifier: MIT
# Fleet mode over TLS (doc/fleet.md): an etcd member that serves only
# https:// and requires client certificates (--client-cert-auth), all
# generated here with certtool.  A node with the CA and a client pair
# ([fleet] ca, cert, key_file as flags) joins and writes; a node without
# a client certificate, and one that does not trust etcd's CA, stay
# disconnected and say why, answering writes 503 while serving reads; a
# client certificate without its key, or with a key others may read, is
# refused at start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/fleetlib.sh"
command -v certtool > /dev/null || { echo "# certtool not installed" >&2; exit 77; }
ETCD_TLS_PID=
trap 'st=$?; for p in $NODE_PIDS $ETCD_TLS_PID; do kill -KILL "$p" 2>/dev/null || true; done; cleanup $st' EXIT

# --- a PKI for etcd and its clients ----------------------------------------
P=$T/pki; mkdir -m 700 "$P"
pair() {	# NAME CA_PREFIX TEMPLATE_LINES...
	name=$1 ca=$2; shift 2
	printf '%s\n' "$@" > "$P/$name.tmpl"
	certtool --generate-privkey --key-type ecdsa --outfile "$P/$name.key" 2> /dev/null &&
	    certtool --generate-certificate --load-privkey "$P/$name.key" \
	    --load-ca-certificate "$ca.pem" --load-ca-privkey "$ca.key" \
	    --template "$P/$name.tmpl" --outfile "$P/$name.pem" 2> /dev/null &&
	    chmod 600 "$P/$name.key"
}
# etcd's JSON gateway dials etcd's own gRPC with the server pair: it must
# be good for client authentication too.
pair etcd "$PKI/ca" 'cn = etcd' 'ip_address = 127.0.0.1' 'tls_www_server' \
    'tls_www_client' 'expiration_days = 2' &&
pair client "$PKI/ca" 'cn = certd-node' 'tls_www_client' 'expiration_days = 2' &&
    ok "certtool made etcd's and the nodes' pairs" || { not_ok "certtool"; finish; exit 1; }

TLS="--cacert $PKI/ca.pem --cert $P/client.pem --key $P/client.key"
etcd_ok() {
	# shellcheck disable=SC2086 # TLS is a list of options
	curl -s $TLS -X POST -d '{"key":"AA=="}' "$ETCD_URLS/v3/kv/range" |
	    grep -q '"header"'
}
# free ports are free when looked at: another test may take one first
for try in 1 2 3 4 5; do
	CPORT=$(free_port) PPORT=$(free_port)
	rm -rf "$T/etcd"
	etcd --name m1 --data-dir "$T/etcd" \
	    --listen-client-urls "https://127.0.0.1:$CPORT" \
	    --advertise-client-urls "https://127.0.0.1:$CPORT" \
	    --listen-peer-urls "http://127.0.0.1:$PPORT" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
	    --initial-cluster "m1=http://127.0.0.1:$PPORT" \
	    --cert-file "$P/etcd.pem" --key-file "$P/etcd.key" \
	    --client-cert-auth --trusted-ca-file "$PKI/ca.pem" \
	    > "$T/etcd.log" 2>&1 &
	ETCD_TLS_PID=$!
	ETCD_URLS=https://127.0.0.1:$CPORT
	k=0
	until etcd_ok; do
		kill -0 "$ETCD_TLS_PID" 2>/dev/null || break
		k=$((k + 1)); [ $k -lt 100 ] || break; sleep 0.1
	done
	etcd_ok && break
	kill -KILL "$ETCD_TLS_PID" 2>/dev/null || true
	wait "$ETCD_TLS_PID" 2>/dev/null || true
	grep -q 'address already in use' "$T/etcd.log" || break
done
etcd_ok && ok "etcd serves https:// only, with client certificates" ||
    { not_ok "etcd did not start: $(tail -n 3 "$T/etcd.log")"; finish; exit 1; }
curl -s --cacert "$PKI/ca.pem" -X POST -d '{"key":"AA=="}' \
    "$ETCD_URLS/v3/kv/range" > "$T/nocert" 2>&1 || true
! grep -q '"header"' "$T/nocert" && ok "(etcd refuses a client without a certificate)" ||
    not_ok "etcd answered a client without a certificate"

fleet_setup
health() {	# NODE STATE
	on "$1"; req GET /healthz; [ "$(jget fleet.state 2>/dev/null)" = "$2" ]
}

# --- the CA and a client pair: in the fleet --------------------------------
start_node 1 --etcd-ca "$PKI/ca.pem" --etcd-cert "$P/client.pem" \
    --etcd-key "$P/client.key" && ok "node 1 started" ||
    { not_ok "node 1 did not start"; finish; exit 1; }
health 1 up && ok "node 1 is up in the fleet over TLS" ||
    not_ok "node 1: $(cat "$T/out")"
on 1
mk www leaf-rsa.chain.pem leaf-rsa.key
req POST "$C" "$T/b"
expect 200 "a create through etcd over TLS"
# shellcheck disable=SC2086
curl -s $TLS -X POST -d '{"key":"L2NlcnRkL3Iv","range_end":"L2NlcnRkL3Iw","count_only":true}' \
    "$ETCD_URLS/v3/kv/range" > "$T/count"
grep -q '"count":"1"' "$T/count" && ok "etcd holds the record" ||
    not_ok "etcd's /certd/r/ count: $(cat "$T/count")"

# --- no client certificate; a CA that did not sign etcd's ------------------
start_node 2 --etcd-ca "$PKI/ca.pem" && ok "node 2 (no client certificate) starts from its mirror" ||
    not_ok "node 2 did not start"
health 2 disconnected && ok "node 2 is disconnected" || not_ok "node 2: $(cat "$T/out")"
on 2
mk api leaf-ec.pem leaf-ec.key
req POST "$C" "$T/b"
expect_error 503 "cluster unavailable" "node 2's write: 503"
sed -i '/^503 POST/d' "$T/statuses"	# that one was meant
grep -q "fleet: etcd out of reach" "$T/n2.log" &&
    ok "node 2 logs why: $(grep -m1 'fleet: etcd out of reach' "$T/n2.log" | sed 's/.*the last: //' | cut -c1-100)" ||
    not_ok "node 2 did not log why"
start_node 3 --etcd-ca "$PKI/other-ca.pem" && ok "node 3 (other CA) starts from its mirror" ||
    not_ok "node 3 did not start"
health 3 disconnected && ok "node 3 does not trust etcd: disconnected" ||
    not_ok "node 3: $(cat "$T/out")"
grep -q "fleet: etcd out of reach.*\(certificate\|verif\|issuer\)" "$T/n3.log" &&
    ok "node 3's log names the certificate check" ||
    not_ok "node 3's log: $(grep -m1 'out of reach' "$T/n3.log")"

# --- an etcd client key that others may read --------------------------------
cp "$P/client.key" "$T/open.key"; chmod 644 "$T/open.key"
if "$CERTD" --data-dir "$T/n5" --listen 127.0.0.1:0 --etcd "$ETCD_URLS" \
    --fleet-key "$T/fleet.key" --etcd-cert "$P/client.pem" \
    --etcd-key "$T/open.key" > "$T/e5" 2>&1; then
	not_ok "an etcd client key of mode 0644 was taken"
else
	grep -q "etcd client key" "$T/e5" &&
	    ok "an etcd client key others may read is refused: $(tail -n 1 "$T/e5" | cut -c1-110)" ||
	    not_ok "wrong message: $(tail -n 2 "$T/e5")"
fi

# --- a client certificate without its key ----------------------------------
if "$CERTD" --data-dir "$T/n4" --listen 127.0.0.1:0 --etcd "$ETCD_URLS" \
    --fleet-key "$T/fleet.key" --etcd-cert "$P/client.pem" > "$T/e4" 2>&1; then
	not_ok "a certificate without a key was taken"
else
	grep -q "cert and key_file" "$T/e4" && ok "a certificate without its key is refused: $(tail -n 1 "$T/e4" | cut -c1-100)" ||
	    not_ok "wrong message: $(tail -n 2 "$T/e4")"
fi

for n in 1 2 3; do eval "kill -TERM \$PID_$n; wait \$PID_$n" && ok "node $n stops cleanly" || not_ok "node $n exit"; done
NODE_PIDS=
finish
