#!/bin/sh
# SPDX-License-Identifier: MIT
# Fleet key rotation (doc/fleet.md, "Keys") against a real etcd and three
# certd nodes: a node restarted with a new key and the old one in its
# keyring adds the new key's id, while the fleet goes on sealing with the
# old key; `certctl rekey --fleet` is refused while a node lacks the new
# key, then re-seals every record and every history entry in etcd with
# it, while another node writes, and drops the old id; a node with only the old key is refused at
# start, and a new node with only the new key syncs the whole fleet,
# history included, after a compaction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/fleetlib.sh"
trap 'st=$?; for p in $NODE_PIDS; do kill -KILL "$p" 2>/dev/null || true; done; etcd_cleanup; cleanup $st' EXIT

etcd_cluster 1 && ok "an etcd member" || { not_ok "etcd"; finish; exit 1; }
fleet_setup
K1=$T/fleet.key K2=$T/k2.key
head -c 32 /dev/urandom > "$K2"; chmod 600 "$K2"
kid() { sha256sum "$1" | cut -c1-16; }
ID1=$(kid "$K1") ID2=$(kid "$K2")

# etcd_get KEY: the value of KEY in etcd, decoded
etcd_get() {
	curl -s -X POST -d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\"}" \
	    "$ETCD_URL_1/v3/kv/range" | sed -n 's/.*"value":"\([^"]*\)".*/\1/p' |
	    base64 -d
}
# sealed_with: for every record and history value of etcd, the key id it
# names (8 bytes in the msgpack), one line each: "r ID" / "h ID"
sealed_with() {
	curl -s -X POST -d "{\"key\":\"$(printf /certd/ | base64 -w0)\",\"range_end\":\"$(printf /certd0 | base64 -w0)\"}" \
	    "$ETCD_URL_1/v3/kv/range" > "$T/all"
	grep -o '"key":"[^"]*","create_revision":"[0-9]*","mod_revision":"[0-9]*","version":"[0-9]*","value":"[^"]*"' "$T/all" |
	while IFS= read -r kv; do
		k=$(printf '%s' "$kv" | cut -d'"' -f4 | base64 -d)
		case "$k" in /certd/r/*) t=r ;; /certd/h/*) t=h ;; *) continue ;; esac
		hex=$(printf '%s' "$kv" | sed 's/.*"value":"\([^"]*\)"/\1/' | base64 -d | od -An -tx1 -v | tr -d ' \n')
		for id in "$ID1" "$ID2"; do
			case "$hex" in *"$id"*) echo "$t $id" ;; esac
		done
	done
}

for n in 1 2; do start_node $n || { not_ok "node $n"; finish; exit 1; }; done
on 1
mk www leaf-rsa.chain.pem leaf-rsa.key; req POST "$C" "$T/b"; WWW=$(jget id)
mk api leaf-ec.pem leaf-ec.key; req POST "$C" "$T/b"; API=$(jget id)
for t in a b c; do body "$T/u" certificate_type="$t"; req PUT "$C/$WWW" "$T/u"; done
expect 200 "two certificates, one with four versions"
# more records, so that the rotation below takes a while
i=0
while [ $i -lt 30 ]; do
	mk "m$i" leaf-ec.pem leaf-ec.key; req POST "$C" "$T/b"
	[ "$STATUS" = 200 ] || not_ok "create m$i: $STATUS"
	i=$((i + 1))
done
[ "$(etcd_get /certd/meta/keys)" = "$ID1" ] && ok "the fleet's key list: $ID1" ||
    not_ok "meta/keys: $(etcd_get /certd/meta/keys)"

# --- 1. node 2 gets the new key, the old one in its keyring ----------------
kill -TERM "$PID_2"; wait "$PID_2" || true
start_node 2 --fleet-key "$K2" --fleet-keyring "$K1" &&
    ok "node 2 restarted with the new key and the old in its keyring" ||
    not_ok "node 2 restart: $(tail -n 2 "$T/n2.log")"
[ "$(etcd_get /certd/meta/keys)" = "$ID1,$ID2" ] &&
    ok "node 2 added the new key's id, after the sealing key's" ||
    not_ok "meta/keys: $(etcd_get /certd/meta/keys)"
on 2; body "$T/u" certificate_type=d; req PUT "$C/$WWW" "$T/u"
expect 200 "a write on node 2 meanwhile"
sealed_with > "$T/s1"
! grep -q "$ID2" "$T/s1" && grep -q "^r $ID1" "$T/s1" &&
    ok "the fleet still seals with the old key only" ||
    not_ok "sealed: $(sort "$T/s1" | uniq -c | tr '\n' ' ')"

# --- 2. refused while node 1 lacks the new key -------------------------------
if CERTD_SOCKET=$SOCK_2 "$CERTCTL" rekey --fleet > "$T/rk" 2>&1; then
	not_ok "rekey --fleet with node 1 lacking the key: $(cat "$T/rk")"
else
	grep -q "node n1 does not hold key $ID2" "$T/rk" &&
	    ok "rekey --fleet refused: $(head -c 120 "$T/rk")" ||
	    not_ok "refusal: $(cat "$T/rk")"
fi
[ "$(etcd_get /certd/meta/keys)" = "$ID1,$ID2" ] && ok "(nothing changed)" ||
    not_ok "meta/keys after the refusal: $(etcd_get /certd/meta/keys)"

# --- 3. node 1 too; the rotation ---------------------------------------------
kill -TERM "$PID_1"; wait "$PID_1" || true
start_node 1 --fleet-key "$K2" --fleet-keyring "$K1" && ok "node 1 restarted with both keys" ||
    not_ok "node 1 restart"
sleep 0.5	# its lease and P/nodes/n1
# writes on node 2 all through the rotation
(
	on 2; i=0
	while [ $i -lt 40 ]; do
		body "$T/w" certificate_type="w$i"; req PUT "$C/$WWW" "$T/w"
		echo "$STATUS" >> "$T/wst"; i=$((i + 1))
	done
) &
WRITER=$!
if CERTD_SOCKET=$SOCK_1 "$CERTCTL" rekey --fleet > "$T/rk" 2>&1; then
	grep -q "$ID2" "$T/rk" && ok "certctl rekey --fleet: $(cat "$T/rk")" ||
	    not_ok "rekey output: $(cat "$T/rk")"
else
	not_ok "rekey --fleet failed: $(cat "$T/rk")"
fi
wait "$WRITER"
[ "$(grep -c '^200$' "$T/wst")" = 40 ] &&
    ok "40 writes on node 2 during the rotation: all 200" ||
    not_ok "writes during the rotation: $(sort "$T/wst" | uniq -c | tr '\n' ' ')"
grep -q 'key rotated' "$T/n1.log" && ok "(node 1 logged the rotation: $(grep -o '([0-9]* re-sealed)' "$T/n1.log"))" ||
    not_ok "no rotation line in node 1's log"
[ "$(etcd_get /certd/meta/keys)" = "$ID2" ] && ok "the fleet's key list is the new key alone" ||
    not_ok "meta/keys: $(etcd_get /certd/meta/keys)"
sealed_with > "$T/s2"
! grep -q "$ID1" "$T/s2" && grep -q "^r $ID2" "$T/s2" && grep -q "^h $ID2" "$T/s2" &&
    ok "every record and history value in etcd is sealed with the new key ($(wc -l < "$T/s2") values)" ||
    not_ok "sealed: $(sort "$T/s2" | uniq -c | tr '\n' ' ')"
on 2; req GET "$C/$WWW"; expect 200 "node 2 reads what was re-sealed"
[ "$(jget certificate_type)" = w39 ] && ok "(the last write's: certificate_type w39)" || not_ok "type: $(jget certificate_type)"
body "$T/u" certificate_type=e; req PUT "$C/$WWW" "$T/u"; expect 200 "node 2 writes after the rotation"
REV=$(jget revision)
wait_for 1 "$C/$WWW" revision "$REV" && ok "node 1 mirrors it" || not_ok "node 1 at $(jget revision)"

# --- 4. the old key alone is refused; the new key alone syncs everything -----
if "$CERTD" --data-dir "$T/n9" --listen 127.0.0.1:0 --etcd "$ETCD_URLS" \
    --fleet-key "$K1" --node n9 > "$T/e9" 2>&1; then
	not_ok "a node with the old key only started"
else
	grep -q "not the fleet's sealing key" "$T/e9" &&
	    ok "a node with the old key only is refused: $(tail -n 1 "$T/e9" | cut -c1-110)" ||
	    not_ok "refusal: $(tail -n 2 "$T/e9")"
fi
on 1; req GET /healthz; R=$(jget fleet.revision)
curl -s -o /dev/null -X POST -d "{\"revision\":\"$R\"}" "$ETCD_URL_1/v3/kv/compaction"
start_node 3 --fleet-key "$K2" && ok "a new node with the new key only" || not_ok "node 3"
grep -q 'full sync at revision' "$T/n3.log" && ok "node 3 did a full sync (compacted)" ||
    not_ok "no full sync in node 3's log"
revs() { req GET "$C/$WWW/history"; grep -o '"revision":[0-9]*' "$T/out" | cut -d: -f2 | tr '\n' ' '; }
on 1; H1=$(revs); on 3; H3=$(revs)
[ -n "$H1" ] && [ "$H3" = "$H1" ] && ok "node 3's history of www is node 1's: $H3" ||
    not_ok "history: node 1 $H1, node 3 $H3"
on 3; req GET "$C/$API"; expect 200 "node 3 serves the other certificate"

for n in 1 2 3; do eval "kill -TERM \$PID_$n; wait \$PID_$n" && ok "node $n stops cleanly" || not_ok "node $n exit"; done
NODE_PIDS=
finish
