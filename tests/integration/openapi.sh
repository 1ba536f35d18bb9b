#!/bin/sh
# SPDX-License-Identifier: MIT
# doc/openapi.yaml describes the REST API that certd serves:
#  - its paths and methods are exactly those of src/http.c's route table
#    (and /healthz, /metrics), read from the C source, so neither can drift
#    (always);
#  - it is a valid OpenAPI 3.0 document: the OpenAPI Initiative's JSON
#    Schema for 3.0 (Debian: openapi-specification) with python3-jsonschema,
#    plus what a schema cannot say (every $ref resolves, every {param} of a
#    path is declared, operationIds are unique);
#  - certd's real answers, for every operation and the error statuses a
#    client meets, have a status the operation lists and a body its schema
#    accepts.
# The last two need python3-jsonschema and openapi-specification (in
# contrib/dev.sh's PACKAGES); without them they SKIP, saying so.
. "$(dirname "$0")/lib.sh"

SPEC="$CERTD_SRCDIR/doc/openapi.yaml"
HTTP_C="$CERTD_SRCDIR/src/http.c"
OAS_SCHEMA=/usr/share/openapi-specification/schemas/v3.0/schema.json
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3	# Debian's, with its packages

# --- the route table against the paths ----------------------------------------
# "METHOD PATH" for every route of src/http.c: the resource table
# ({ HTTP_ROUTE_X, has_id, sub, "ALLOW", ...}) under PREFIX, and the two
# fixed paths with the methods http_match and healthz() allow.
prefix=$(sed -n 's/^static const char[ \t]*PREFIX\[\] = "\(.*\)";/\1/p' "$HTTP_C")
{
	sed -n 's/^[ \t]*{ HTTP_ROUTE_[A-Z]*, \([01]\), \(NULL\|"[a-z]*"\), "\([A-Z, ]*\)",.*/\1 \2 \3/p' \
	    "$HTTP_C" | while read -r has_id sub allow; do
		path="${prefix}{team_id}/certificates"
		[ "$has_id" = 1 ] && path="$path/{certificate_id}"
		[ "$sub" != NULL ] && path="$path/$(echo "$sub" | tr -d '"')"
		for m in $(echo "$allow" | tr -d ','); do echo "$m $path"; done
	done
	for p in healthz metrics; do
		grep -q "is_word(path, len, \"/$p\")" "$HTTP_C" || continue
		case $p in
		healthz) allow=$(sed -n '/^healthz(/,/^}/s/.*"Allow", "\([A-Z, ]*\)".*/\1/p' "$HTTP_C") ;;
		metrics) allow=$(sed -n 's/.*m->allow = "\([A-Z, ]*\)", CERTD_ERR_METHOD.*/\1/p' "$HTTP_C") ;;
		esac
		for m in $(echo "$allow" | tr -d ','); do echo "$m /$p"; done
	done
} | sort > "$T/routes.c"
# "METHOD PATH" for every operation of the description.
awk '
/^paths:/ { inp = 1; next }
/^[a-z]/ { inp = 0 }
inp && /^  \/[^ ]*:$/ { path = $1; sub(/:$/, "", path); next }
inp && /^    (get|put|post|delete|head|patch|options|trace):/ {
	m = $1; sub(/:$/, "", m); print toupper(m), path
}' "$SPEC" | sort > "$T/routes.yaml"
n=$(wc -l < "$T/routes.c")
if [ "$n" -lt 12 ] || [ -z "$prefix" ]; then
	not_ok "read src/http.c's route table: $n routes, prefix '$prefix' (did its form change?)"
elif cmp -s "$T/routes.c" "$T/routes.yaml"; then
	ok "openapi.yaml has exactly the $n routes and methods of src/http.c"
else
	not_ok "routes differ (< src/http.c, > openapi.yaml): $(diff "$T/routes.c" "$T/routes.yaml" | grep '^[<>]' | tr '\n' ';')"
fi

if ! "$PY" -c 'import yaml, jsonschema' 2>/dev/null || [ ! -f "$OAS_SCHEMA" ]; then
	ok "OpenAPI 3.0 schema validation # SKIP needs python3-yaml, python3-jsonschema and openapi-specification"
	ok "certd's answers against the description # SKIP the same"
	finish
	exit $?
fi

# --- the document --------------------------------------------------------------
"$PY" - "$SPEC" "$OAS_SCHEMA" > "$T/doc" 2>&1 <<'PY' || true
import json, re, sys, yaml, jsonschema

spec = yaml.safe_load(open(sys.argv[1]))
schema = json.load(open(sys.argv[2]))
problems = []
v = jsonschema.Draft4Validator(schema)
for e in sorted(v.iter_errors(spec), key=lambda e: list(e.path)):
    problems.append("schema: %s: %s" % ("/".join(map(str, e.path)), e.message[:200]))

def walk(node, where):
    if isinstance(node, dict):
        for k, x in node.items():
            if k == "$ref":
                if not isinstance(x, str) or not x.startswith("#/"):
                    problems.append("%s: $ref %r is not local" % (where, x))
                    continue
                t = spec
                for part in x[2:].split("/"):
                    if not isinstance(t, dict) or part not in t:
                        problems.append("%s: $ref %s does not resolve" % (where, x))
                        break
                    t = t[part]
            else:
                walk(x, where + "/" + str(k))
    elif isinstance(node, list):
        for i, x in enumerate(node):
            walk(x, "%s/%d" % (where, i))
walk(spec, "")

def resolve(p):
    while isinstance(p, dict) and "$ref" in p:
        t = spec
        for part in p["$ref"][2:].split("/"):
            t = t[part]
        p = t
    return p

ops = set()
for path, item in spec.get("paths", {}).items():
    common = [resolve(p) for p in item.get("parameters", [])]
    for method, op in item.items():
        if method == "parameters":
            continue
        oid = op.get("operationId")
        if oid in ops:
            problems.append("operationId %s twice" % oid)
        ops.add(oid)
        params = common + [resolve(p) for p in op.get("parameters", [])]
        declared = {p["name"] for p in params if p.get("in") == "path"}
        for name in re.findall(r"\{([^}]*)\}", path):
            if name not in declared:
                problems.append("%s %s: path parameter %s not declared" % (method, path, name))
        for p in params:
            if p.get("in") == "path" and not p.get("required"):
                problems.append("%s %s: path parameter %s not required" % (method, path, p["name"]))
            if p.get("in") == "path" and p["name"] not in re.findall(r"\{([^}]*)\}", path):
                problems.append("%s %s: parameter %s is not in the path" % (method, path, p["name"]))
for p in problems:
    print("problem:", p)
print("operations:", len(ops))
PY
if grep -q '^problem:' "$T/doc" || ! grep -q '^operations:' "$T/doc"; then
	not_ok "openapi.yaml: $(head -n 10 "$T/doc")"
else
	ok "a valid OpenAPI 3.0 document, $(sed -n 's/^operations: //p' "$T/doc") operations, every \$ref and path parameter in place"
fi

# --- certd's answers -----------------------------------------------------------
# Each request appends "METHOD TEMPLATE STATUS FILE" to the manifest; the
# checker finds the operation, the status in its responses and the schema.
D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
READER=$(new_token reader 'web' read "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/web/certificates
TC="$prefix{team_id}/certificates"
TI="$TC/{certificate_id}"
k=0
# call METHOD PATH TEMPLATE [BODY [TOKEN]]
call() {
	k=$((k + 1))
	if [ "$1" = HEAD ]; then	# curl -X HEAD would wait for the body
		tok=${5-$TOKEN}
		STATUS=$(curl -s -I -o /dev/null -w '%{http_code}' \
		    ${tok:+-H "Authorization: $tok"} "$BASE$2") || STATUS=000
		: > "$T/out"
	else
		req "$1" "$2" "${4:-}" "${5-$TOKEN}"
	fi
	cp "$T/out" "$T/body.$k"
	echo "$1 $3 $STATUS $T/body.$k" >> "$T/manifest"
}
PEER="$CERTD_BUILDDIR/tests/integration/sockpeer"
body "$T/c" alias=www certificate=@"$PKI/leaf-rsa.chain.pem" private_key=@"$PKI/leaf-rsa.key" \
    certificate_type=server
call POST "$C" "$TC" "$T/c"
call POST "$C" "$TC" "$T/c"					# 412
body "$T/x" alias=x; call POST "$C" "$TC" "$T/x"		# 400
call POST "$C" "$TC" "$T/c" "$READER"				# 403
call GET "$C" "$TC" "" ""					# 401
call GET "$C?page=1&page_size=5" "$TC"
call GET "$C?page=0" "$TC"					# 400
call GET "$C?alias=www" "$TC"
call GET "$C?colour=red" "$TC"					# 400
call GET /openapi/v1/teams/other/certificates "$TC" "" "$READER"	# 404
call HEAD "$C" "$TC"
call GET "$C/1" "$TI"
call GET "$C/1" "$TI" "" "$READER"
call HEAD "$C/1" "$TI"
call GET "$C/99" "$TI"						# 404
body "$T/u" certificate_type=client; call PUT "$C/1" "$TI" "$T/u"
call GET "$C/1/history" "$TI/history"
call HEAD "$C/1/history" "$TI/history"
"$PEER" -s -n 2 "$D/certd.sock" '{"id":1,"op":"watch","team":"web","ids":[1],"name":"web-1"}' \
    '{"id":2,"op":"ack","watch":1,"revision":2,"status":"ok","detail":"reloaded"}' > "$T/peer" &
P=$!
i=0
while ! grep -q '"id":2,"ok":true' "$T/peer" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
call GET "$C/1/subscribers" "$TI/subscribers"
grep -q '"name":"web-1".*"status":"ok".*"at":"' "$T/out" && ok "a subscriber with its ack, to check" ||
    not_ok "subscribers: $(cat "$T/out")"
call HEAD "$C/1/subscribers" "$TI/subscribers"
call DELETE "$C/1" "$TI"					# 400 in use
kill $P; wait $P 2>/dev/null || true
printf '{"revision":1}' > "$T/rb"; call POST "$C/1/rollback" "$TI/rollback" "$T/rb"
printf '{"revision":77}' > "$T/rb"; call POST "$C/1/rollback" "$TI/rollback" "$T/rb"	# 404
call DELETE "$C/1?force=true" "$TI"
call GET /healthz /healthz "" ""
call HEAD /healthz /healthz "" ""
call GET /metrics /metrics
call HEAD /metrics /metrics
call GET /metrics /metrics "" "$READER"				# 403
head -c 140000 /dev/zero | tr '\0' 'a' > "$T/big"
call POST "$C" "$TC" "$T/big"					# 413

"$PY" - "$SPEC" "$T/manifest" > "$T/answers" 2>&1 <<'PY' || true
import copy, json, sys, yaml, jsonschema

spec = yaml.safe_load(open(sys.argv[1]))

def resolve(p):
    while isinstance(p, dict) and "$ref" in p:
        t = spec
        for part in p["$ref"][2:].split("/"):
            t = t[part]
        p = t
    return p

def to_json_schema(s):
    """An OpenAPI 3.0 schema object as JSON Schema draft 4 (refs inlined)."""
    s = copy.deepcopy(resolve(s))
    if isinstance(s, dict):
        nullable = s.pop("nullable", False)
        for k in ("description", "format", "example", "default"):
            s.pop(k, None)
        for k in ("properties",):
            if k in s:
                s[k] = {n: to_json_schema(x) for n, x in s[k].items()}
        for k in ("items", "additionalProperties", "not"):
            if isinstance(s.get(k), dict):
                s[k] = to_json_schema(s[k])
        for k in ("allOf", "anyOf", "oneOf"):
            if k in s:
                s[k] = [to_json_schema(x) for x in s[k]]
        if nullable:
            s = {"anyOf": [s, {"type": "null"}]}
    return s

bad, n = [], 0
for line in open(sys.argv[2]):
    method, template, status, path = line.split()
    n += 1
    op = spec["paths"].get(template, {}).get(method.lower())
    if op is None:
        bad.append("%s %s: no such operation" % (method, template))
        continue
    resp = op.get("responses", {}).get(status)
    if resp is None:
        bad.append("%s %s answered %s, which it does not list" % (method, template, status))
        continue
    resp = resolve(resp)
    body = open(path, "rb").read()
    content = resp.get("content")
    if method == "HEAD" or not content:
        if body:
            bad.append("%s %s %s: a body the description does not have" % (method, template, status))
        continue
    if "application/json" in content:
        try:
            doc = json.loads(body)
        except ValueError:
            bad.append("%s %s %s: not JSON: %r" % (method, template, status, body[:100]))
            continue
        schema = to_json_schema(content["application/json"]["schema"])
        for e in jsonschema.Draft4Validator(schema).iter_errors(doc):
            bad.append("%s %s %s: %s at %s" % (method, template, status, e.message[:160],
                                              "/".join(map(str, e.path))))
        if isinstance(doc, dict) and "code" in doc and str(doc["code"]) != status:
            bad.append("%s %s %s: code %s" % (method, template, status, doc["code"]))
    elif not body:
        bad.append("%s %s %s: empty body" % (method, template, status))
for b in bad:
    print("problem:", b)
print("answers:", n)
PY
if grep -q '^problem:' "$T/answers" || ! grep -q '^answers:' "$T/answers"; then
	not_ok "answers against openapi.yaml: $(head -n 12 "$T/answers" | tr '\n' ';')"
else
	ok "$(sed -n 's/^answers: //p' "$T/answers") answers of certd have a listed status and a body the description accepts"
fi
# Every operation was exercised.
cut -d' ' -f1,2 "$T/manifest" | sort -u > "$T/called"
comm -23 "$T/routes.yaml" "$T/called" > "$T/uncalled"
[ -s "$T/uncalled" ] && not_ok "operations not exercised: $(tr '\n' ';' < "$T/uncalled")" ||
    ok "every operation of the description was exercised"
# 5xx are fine here only as the description says (none expected).
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
