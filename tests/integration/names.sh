#!/bin/sh
# SPDX-License-Identifier: MIT
# Names a person cannot be fooled by: an alias or certificate type with a
# bidirectional control (which shows "www.<U+202E>gnp.exe" as
# "www.exe.png") or a zero-width character (which makes "w<U+200B>ww" look
# like "www", a second certificate beside the real one) is refused with a
# 400 naming the field, over REST and over the Unix socket alike, here by
# an unprivileged local user that the ACL lets write.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
S="$T/certd.sock"
TOKEN=$(new_token admin '*' write "$D/tokens")
cat > "$T/certd.conf" <<CONF
[certd]
socket_group = nogroup
[acl]
user nobody = teams=acme perms=read,write
CONF
start_certd "$D" --socket "$S" --config "$T/certd.conf"
C=/openapi/v1/teams/acme/certificates

# refused FIELD DESCRIPTION: the last reply is the 400 envelope naming FIELD,
# its reason says which kind of character.
refused() {
	expect_error 400 "invalid request" "$2"
	expect_json data.bean.field "$1" "$2: names $1"
	case $(jget data.bean.reason 2>/dev/null) in
	*bidirectional*|*zero-width*) ok "$2: the reason says why" ;;
	*) not_ok "$2: reason $(jget data.bean.reason 2>/dev/null)" ;;
	esac
}

# utf8 HEX: the UTF-8 bytes of code point U+HEX (below U+10000).
utf8() {
	u=$((0x$1))
	if [ "$u" -lt 2048 ]; then
		set -- $((0xc0 | u >> 6)) $((0x80 | (u & 0x3f)))
	else
		set -- $((0xe0 | u >> 12)) $((0x80 | (u >> 6 & 0x3f))) \
		    $((0x80 | (u & 0x3f)))
	fi
	for b in "$@"; do printf "\\$(printf %o "$b")"; done
}

good="certificate=@$PKI/leaf-ec.pem private_key=@$PKI/leaf-ec.key"
for cp in 202a 202b 202c 202d 202e 2066 2067 2068 2069 200e 200f 061c \
    200b 200c 200d 2060 feff; do
	c=$(utf8 "$cp")
	body "$T/b" alias="www.${c}gnp.exe" $good certificate_type=server
	req POST "$C" "$T/b"; refused alias "alias with U+$cp"
done
body "$T/b" alias="$(printf '\357\273\277')www" $good certificate_type=server
req POST "$C" "$T/b"; refused alias "alias starting with a byte-order mark"
body "$T/b" alias=www $good certificate_type="$(printf 'ser\342\200\213ver')"
req POST "$C" "$T/b"; refused certificate_type "certificate_type with U+200B"

# Letters of right-to-left scripts, and characters near the refused ones,
# are names like any other.
body "$T/b" alias="$(printf '\327\251\327\234\327\225\327\235')" $good certificate_type=server
req POST "$C" "$T/b"; expect 200 "a Hebrew alias is accepted"
ID=$(jget id 2>/dev/null || echo 1)
STORED=1
body "$T/b" alias="a$(printf '\342\200\220')b" $good certificate_type="$(printf '\342\200\224')"
req POST "$C" "$T/b"; expect 200 "U+2010 and U+2014 (dashes) are accepted"
STORED=2
body "$T/b" certificate_type="$(printf 'x\342\200\256')"
req PUT "$C/$ID" "$T/b"; refused certificate_type "PUT of a type with U+202E"
body "$T/b" alias="$(printf '\342\201\246')x"
req PUT "$C/$ID" "$T/b"; refused alias "PUT of an alias with U+2066"
req GET "$C/$ID"
expect_json alias "$(printf '\327\251\327\234\327\225\327\235')" "the refused PUTs changed nothing"

# --- the socket: the same rule, the same field ----------------------------------
cp "$PKI/leaf-ec.pem" "$PKI/leaf-ec.key" "$T/"; chmod 644 "$T/leaf-ec.pem" "$T/leaf-ec.key"
# certctl_put DESCRIPTION FIELD ALIAS TYPE [AS...]: certctl put, expected to
# fail naming FIELD and the reason.
certctl_put() {
	desc=$1 field=$2 alias=$3 type=$4; shift 4
	status=0
	"$@" "$CERTCTL" -s "$S" put acme --alias "$alias" --type "$type" \
	    --cert "$T/leaf-ec.pem" --key "$T/leaf-ec.key" > "$T/o" 2> "$T/e" ||
	    status=$?
	if [ "$status" = 1 ] && grep -q "($field: must not contain" "$T/e" &&
	    grep -q -e bidirectional -e zero-width "$T/e"; then
		ok "$desc"
	else
		not_ok "$desc: exit $status: $(cat "$T/e")"
	fi
}
certctl_put "certctl put (root) of an alias with U+202E" alias \
    "www.$(printf '\342\200\256')gnp.exe" server
certctl_put "certctl put (root) of a type with U+FEFF" certificate_type \
    www "$(printf 'server\357\273\277')"
if nobody_ok; then
	chmod 755 "$T"; chmod 666 "$S"
	certctl_put "certctl put as nobody of an alias with U+200D" alias \
	    "w$(printf '\342\200\215')ww" server \
	    setpriv --reuid=nobody --regid=nogroup --clear-groups
	status=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$CERTCTL" -s "$S" \
	    put acme --alias "nobody-www" --type server --cert "$T/leaf-ec.pem" \
	    --key "$T/leaf-ec.key" > "$T/o" 2> "$T/e" || status=$?
	STORED=3
	[ "$status" = 0 ] && ok "nobody may put a plain alias (the ACL works)" ||
	    not_ok "nobody put: $status $(cat "$T/e")"
	chmod 660 "$S"
else
	ok "certctl put as nobody # SKIP not root or no setpriv"
fi

req GET "$C?page_size=500"
expect_json total "$STORED" "only the accepted names were stored"
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
