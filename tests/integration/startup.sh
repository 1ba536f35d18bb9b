#!/bin/sh
# SPDX-License-Identifier: MIT
# Start-up and shutdown: every refusal is one line on stderr naming the
# cause with a non-zero exit, never a crash or a half-started daemon;
# SIGTERM and SIGINT exit 0.
. "$(dirname "$0")/lib.sh"

# refuse DESCRIPTION PATTERN ARGS...: certd must exit non-zero at once with
# exactly one stderr line matching PATTERN.
refuse() {
	desc=$1 pat=$2; shift 2
	status=0
	timeout 10 "$CERTD" "$@" > "$T/stdout" 2> "$T/stderr" || status=$?
	lines=$(wc -l < "$T/stderr")
	if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -lt 128 ] &&
	    [ "$lines" -eq 1 ] && grep -q -- "$pat" "$T/stderr"; then
		ok "$desc"
	else
		not_ok "$desc: exit $status, stderr: $(cat "$T/stderr")"
	fi
}

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")

"$CERTD" --help | grep -q 'usage: certd' && ok "--help" || not_ok "--help"
"$CERTD" --version | grep -q '^certd ' && ok "--version" || not_ok "--version"

refuse "unknown flag" "unknown option --bogus" --bogus
refuse "flag without value" "needs a value" --data-dir
refuse "stray argument" "unexpected argument" --data-dir "$D" stray
refuse "bad listen address" "listen must be HOST:PORT" --data-dir "$D" --listen nowhere
refuse "bad port" "listen must be HOST:PORT" --data-dir "$D" --listen 127.0.0.1:70000
refuse "bad log level" "log_level must be" --data-dir "$D" --log-level loud
refuse "bad log target" "log_target must be stderr or syslog" --data-dir "$D" --log-target file
refuse "missing config file" "cannot read config $T/none.conf" --config "$T/none.conf"
refuse "config file is a directory" "config $T is not a regular file" --config "$T"
printf '[certd]\nfrobnicate = 1\n' > "$T/bad.conf"
refuse "unknown config key" "bad.conf:2: unknown setting" --config "$T/bad.conf"
printf 'data_dir = x\n' > "$T/bad2.conf"
refuse "key outside [certd]" "bad2.conf:1: expected key = value" --config "$T/bad2.conf"
refuse "missing explicit token file" "cannot read token file $T/nope" \
    --data-dir "$D" --token-file "$T/nope"
printf '# ok\nadmin sha256:%s teams=* role=write\nbroken line here\n' \
    "$(printf '%064d' 0)" > "$T/badtokens"
refuse "malformed token line names the line" "badtokens:3:" \
    --data-dir "$D" --token-file "$T/badtokens"
printf 'x sha256:%s teams=* role=admin\n' "$(printf '%064d' 0)" > "$T/badrole"
refuse "bad role" "badrole:1: role must be read or write" \
    --data-dir "$D" --token-file "$T/badrole"
printf 'x sha256:abc teams=* role=read\n' > "$T/badhash"
refuse "bad hash" "badhash:1: hash must be" --data-dir "$D" --token-file "$T/badhash"
: > "$T/file"
refuse "data dir under a file" "cannot create data directory" --data-dir "$T/file/sub"
mkdir -p "$T/ro"; chmod 755 "$T/ro"
if nobody_ok; then
	status=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$CERTD" --data-dir "$T/ro" --listen 127.0.0.1:0 2> "$T/stderr" || status=$?
	[ "$status" -ne 0 ] && grep -q "not writable" "$T/stderr" &&
	    [ "$(wc -l < "$T/stderr")" -eq 1 ] && ok "unwritable data dir" ||
	    not_ok "unwritable data dir: $status $(cat "$T/stderr")"
elif [ "$(id -u)" != 0 ]; then
	chmod 555 "$T/ro"
	refuse "unwritable data dir" "not writable" --data-dir "$T/ro" --listen 127.0.0.1:0
else
	ok "# SKIP root cannot be refused a directory, and nobody cannot reach certd here"
fi

start_certd "$D"
ok "certd starts and answers /healthz"
refuse "second certd on the same data dir" "in use by another certd (pid $CERTD_PID)" \
    --data-dir "$D" --listen 127.0.0.1:0
D2="$T/data2"; mkdir -p -m 700 "$D2"
refuse "port in use" "cannot listen on 127.0.0.1:$PORT: Address already in use" \
    --data-dir "$D2" --listen "127.0.0.1:$PORT"
[ -S "$D/certd.sock" ] || true
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"

# The default token file is created (mode 0600) when absent.
D3="$T/data3"
start_certd "$D3"
[ "$(stat -c %a "$D3/tokens")" = 600 ] && ok "default token file created 0600" ||
    not_ok "default token file mode $(stat -c %a "$D3/tokens")"
req GET /openapi/v1/teams/a/certificates "" "anything"
expect_error 401 "unauthorized" "no tokens: 401"
stop_certd INT && ok "SIGINT exits 0" || not_ok "SIGINT exits 0"

# Config file values, and flags over the file.
printf '[certd]\n# comment\ndata_dir = %s\nlisten = 127.0.0.1:1\nlog_level = warn\n' \
    "$D" > "$T/good.conf"
start_certd "$D" --config "$T/good.conf" --listen 127.0.0.1:0 --log-level info
ok "config file with flags over it"
req GET /openapi/v1/teams/a/certificates
expect 200 "token from the data dir of the config"
stop_certd TERM && ok "SIGTERM exits 0 (config)" || not_ok "SIGTERM exits 0 (config)"

# In-flight requests finish on SIGTERM: every create is answered 200 or its
# connection refused, and every 200 is there after a restart.
start_certd "$D"
i=0; : > "$T/codes"
while [ $i -lt 20 ]; do
	body "$T/c$i" alias="w$i" certificate=@"$PKI/leaf-rsa.pem" \
	    private_key=@"$PKI/leaf-rsa.key" certificate_type=s
	i=$((i + 1))
done
i=0
while [ $i -lt 20 ]; do
	curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: $TOKEN" \
	    --data-binary @"$T/c$i" -X POST "$BASE/openapi/v1/teams/load/certificates" \
	    >> "$T/codes" &
	i=$((i + 1))
done
sleep 0.05
stop_certd TERM && ok "SIGTERM under load exits 0" || not_ok "SIGTERM under load exits 0"
wait
if grep -qv -e '^200$' -e '^000$' -e '^503$' "$T/codes"; then
	not_ok "requests during shutdown: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
else
	ok "requests during shutdown: $(grep -c '^200$' "$T/codes") answered 200, the rest 503 or refused"
fi
start_certd "$D"
req GET "/openapi/v1/teams/load/certificates?page_size=100"
expect_json total "$(grep -c '^200$' "$T/codes")" "every acknowledged create is stored"
stop_certd TERM

# The sample configuration loads, and a comment after a value is no part
# of it (contrib/certd.conf comments its values so).
: > "$T/sample-tokens"; chmod 600 "$T/sample-tokens"
# (A copy: the checkout may belong to another uid than the one testing, and
# certd refuses a configuration that is neither root's nor its own.)
cp "$CERTD_SRCDIR/contrib/certd.conf" "$T/sample.conf"
start_certd "$T/sample-data" --config "$T/sample.conf" \
    --socket "$T/sample.sock" --token-file "$T/sample-tokens"
ok "certd starts with contrib/certd.conf"
stop_certd TERM
printf '[certd]   # the daemon\nhistory_keep = 7   # a comment\nframe_max = 65536\t; another\n' \
    > "$T/commented.conf"
if start_certd "$T/commented" --config "$T/commented.conf"; then
	ok "a comment after a value is cut off (numbers with one parse)"
else
	not_ok "a config with comments after values: $(tail -n 2 "$LOG")"
fi
stop_certd TERM
finish
