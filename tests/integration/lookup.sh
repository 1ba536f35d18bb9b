#!/bin/sh
# SPDX-License-Identifier: MIT
# REST lookups a console needs (issue 16, point 4): GET ...?alias=A finds
# the team's certificate of that alias in the list envelope; a query
# parameter a route does not take, or one given twice, is a 400 naming it
# on every route instead of being ignored; a trailing slash names the same
# resource as none.
. "$(dirname "$0")/lib.sh"

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
C=/openapi/v1/teams/acme/certificates

post() {	# ALIAS CERT KEY
	body "$T/b" alias="$1" certificate=@"$PKI/$2" private_key=@"$PKI/$3" \
	    certificate_type=server
	req POST "$C" "$T/b"
	expect 200 "create $1"
}
post www leaf-rsa.pem leaf-rsa.key
WWW=$(jget id)
post "证书 ec" leaf-ec.pem leaf-ec.key
EC=$(jget id)
body "$T/b" alias=other certificate=@"$PKI/leaf-ec384.pem" \
    private_key=@"$PKI/leaf-ec384.key" certificate_type=server
req POST /openapi/v1/teams/beta/certificates "$T/b"
expect 200 "create in another team"

# --- ?alias= -------------------------------------------------------------------
req GET "$C?alias=www"
expect 200 "lookup by alias"
expect_json total 1 "alias: total 1"
expect_json list.0.id "$WWW" "alias: the certificate of that alias"
expect_json list.0.alias www "alias: its alias"
jget list.1 > /dev/null 2>&1 && not_ok "alias: one item only" || ok "alias: one item only"
expect_json page 1 "alias: the list envelope's page"
req GET "$C?alias=%E8%AF%81%E4%B9%A6%20ec"
expect_json list.0.id "$EC" "alias: UTF-8, percent-encoded"
req GET "$C?alias=%20www%20"
expect_json list.0.id "$WWW" "alias: white space around it trimmed, as a write trims it"
req GET "$C?alias=nope"
expect 200 "alias: no match is not an error"
expect_json total 0 "alias: no match, total 0"
expect_json list '[]' "alias: no match, empty list"
req GET "$C?alias=WWW"
expect_json total 0 "alias: compared exactly"
req GET "$C?alias=other"
expect_json total 0 "alias: of another team, not found"
req GET "$C?alias=www&page=2"
expect_json total 1 "alias with page 2: total 1"
expect_json list '[]' "alias with page 2: empty page"
req GET "$C?alias="
expect_error 400 "invalid request" "alias: empty"
expect_json data.bean.field alias "alias: empty names alias"

# --- unknown and repeated parameters: 400 naming them, on every route ---------
unknown() {	# METHOD PATH FIELD DESCRIPTION [BODY]
	req "$1" "$2" "${5:-}"
	expect_error 400 "invalid request" "$4"
	expect_json data.bean.field "$3" "$4: names $3"
}
unknown GET "$C?pgae=2" pgae "list: a misspelt page"
unknown GET "$C?page=1&page=2" page "list: page twice"
unknown GET "$C?alias=www&alias=x" alias "list: alias twice"
unknown GET "$C/$WWW?force=true" force "get: force is DELETE's"
unknown GET "$C/$WWW?x=1" x "get: an unknown parameter"
unknown GET "$C/$WWW/history?page=2" page "history takes no paging"
unknown GET "$C/$WWW/subscribers?watch=1" watch "subscribers: an unknown parameter"
echo '{"revision":1}' > "$T/rb"
unknown POST "$C/$WWW/rollback?dry_run=1" dry_run "rollback: an unknown parameter" "$T/rb"
unknown PUT "$C/$WWW?alias=x" alias "update: a query parameter" "$T/rb"
unknown POST "$C?validate_only=1" validate_only "create: a query parameter" "$T/b"
req GET "$C?alias=x" "" "not-a-token"
expect_error 401 unauthorized "a query is checked after the token"
unknown DELETE "$C/$WWW?forse=1" forse "delete: a misspelt force"
req GET "$C/$WWW"
expect 200 "the refused DELETE deleted nothing"
unknown GET "/healthz?probe=1" probe "healthz: an unknown parameter"
unknown GET "/metrics?x=1" x "metrics: an unknown parameter"
req GET "$C?p%61ge=1"
expect_json data.bean.field 'p%61ge' "a name is shown as sent"
req GET "$C?page"
expect_json data.bean.field query "a parameter without a value names the query"

# --- trailing slash ---------------------------------------------------------
req GET "$C/"
expect 200 "list with a trailing slash"
expect_json total 2 "list with a trailing slash: the list"
req GET "$C/?alias=www"
expect_json list.0.id "$WWW" "a trailing slash and a query"
req GET "$C/$WWW/"
expect 200 "get with a trailing slash"
expect_json alias www "get with a trailing slash: the certificate"
req GET "$C/$WWW/history/"
expect 200 "history with a trailing slash"
req GET "$C/$WWW/subscribers/"
expect 200 "subscribers with a trailing slash"
req GET /healthz/
expect 200 "healthz with a trailing slash"
body "$T/u" certificate_type=client
req PUT "$C/$WWW/" "$T/u"
expect_json certificate_type client "update with a trailing slash"
req GET "$C//"
expect_error 404 "certificate not found" "two slashes are not one"
req DELETE "$C/$WWW/?force=true"
expect 204 "delete with a trailing slash and force"
req GET "$C/$WWW"
expect_error 404 "certificate not found" "deleted"

check_alive
stop_certd && ok "certd exits 0 on SIGTERM" || not_ok "certd exit status"
finish
