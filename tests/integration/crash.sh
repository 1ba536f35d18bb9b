#!/bin/sh
# SPDX-License-Identifier: MIT
# Crash safety: concurrent writers, certd killed with SIGKILL at random
# moments over several cycles.  After each restart every acknowledged write
# is present and intact, and whatever else is there is whole (a write that
# was durable but whose answer was lost), never half-written.
. "$(dirname "$0")/lib.sh"

CYCLES=${CRASH_CYCLES:-5}
WRITERS=4
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
C=/openapi/v1/teams/crash/certificates
body "$T/ec" alias=x certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
CERT_EC=$(cat "$PKI/leaf-ec.pem")

# writer CYCLE N: create crash-CYCLE-N-i until certd stops answering; log
# "alias id" of every acknowledged create to $T/ack.CYCLE.N.
writer() {
	i=0
	: > "$T/ack.$1.$2"
	while :; do
		a="c$1-w$2-$i"
		"$JTOOL" make alias="$a" certificate=@"$PKI/leaf-ec.pem" \
		    private_key=@"$PKI/leaf-ec.key" certificate_type="t$i" > "$T/b.$1.$2"
		code=$(curl -s -o "$T/r.$1.$2" -w '%{http_code}' -H "Authorization: $TOKEN" \
		    --data-binary @"$T/b.$1.$2" "$BASE$C" 2>/dev/null) || code=000
		case $code in
		200)	echo "$a $("$JTOOL" get "$T/r.$1.$2" id)" >> "$T/ack.$1.$2" ;;
		000|503) return 0 ;;
		*)	echo "unexpected $code" >> "$T/ack.$1.$2.err"; return 0 ;;
		esac
		i=$((i + 1))
	done
}

cycle=1
start_certd "$D"
while [ $cycle -le "$CYCLES" ]; do
	n=1
	while [ $n -le $WRITERS ]; do
		writer $cycle $n &
		n=$((n + 1))
	done
	# a random moment between 0.2 and 0.8 s into the writes
	sleep "$(awk -v s="$$$cycle" 'BEGIN { srand(s); printf "%.2f", 0.2 + 0.6 * rand() }')"
	kill -KILL "$CERTD_PID"
	wait "$CERTD_PID" 2>/dev/null || true
	CERTD_PID=
	wait
	start_certd "$D"

	# Every acknowledged create is there, whole, under its id.
	acked=0 missing=0
	for f in "$T"/ack.$cycle.*; do
		while read -r alias id; do
			acked=$((acked + 1))
			req GET "$C/$id"
			if [ "$STATUS" != 200 ] || [ "$(jget alias)" != "$alias" ] ||
			    [ "$(jget certificate)" != "$CERT_EC" ]; then
				missing=$((missing + 1))
				echo "# lost or damaged: $alias id $id ($STATUS)"
			fi
		done < "$f"
	done
	[ $missing -eq 0 ] && ok "cycle $cycle: all $acked acknowledged writes present and intact" ||
	    not_ok "cycle $cycle: $missing of $acked acknowledged writes lost"
	[ -n "$(cat "$T"/ack.$cycle.*.err 2>/dev/null)" ] &&
	    not_ok "cycle $cycle: $(cat "$T"/ack.$cycle.*.err | sort | uniq -c)"

	# Everything stored is whole: list it all and check each record.
	page=1 bad=0 total=0
	while :; do
		req GET "$C?page=$page&page_size=500"
		cp "$T/out" "$T/list"
		n=$("$JTOOL" get "$T/list" list | grep -o '"id":' | wc -l)
		[ "$n" -eq 0 ] && break
		k=0
		while [ $k -lt "$n" ]; do
			id=$("$JTOOL" get "$T/list" "list.$k.id")
			req GET "$C/$id"
			[ "$STATUS" = 200 ] && [ "$(jget certificate)" = "$CERT_EC" ] &&
			    jget private_key | grep -q 'PRIVATE KEY' || bad=$((bad + 1))
			k=$((k + 1)); total=$((total + 1))
		done
		page=$((page + 1))
	done
	[ $bad -eq 0 ] && ok "cycle $cycle: all $total stored records are whole" ||
	    not_ok "cycle $cycle: $bad of $total records damaged"
	cycle=$((cycle + 1))
done

stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
