/* SPDX-License-Identifier: MIT */
/* jsonbench: json-c, its strictest tokener. */
#include <string.h>

#include <json-c/json.h>

#include "jsonbench.h"

static const char *const fields[] = {
	"alias", "certificate", "private_key", "certificate_type"
};

static long
decode(const char *body, size_t len)
{
	struct json_tokener	*tok = json_tokener_new();
	json_object		*root, *v;
	long			 n = 0;
	size_t			 i;

	if (tok == NULL)
		return -1;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (root == NULL)
		return -1;
	for (i = 0; i < 4; i++)
		if (json_object_object_get_ex(root, fields[i], &v))
			n += json_object_get_string_len(v);
	json_object_put(root);
	return n;
}

static size_t
encode(const struct jb_reply *r, char *out, size_t cap)
{
	json_object	*o = json_object_new_object(), *a;
	const char	*s;
	size_t		 n;

	json_object_object_add(o, "id", json_object_new_int64((int64_t)r->id));
	json_object_object_add(o, "alias", json_object_new_string(r->alias));
	json_object_object_add(o, "private_key",
	    json_object_new_string(r->private_key));
	json_object_object_add(o, "certificate",
	    json_object_new_string(r->certificate));
	json_object_object_add(o, "certificate_type",
	    json_object_new_string(r->type));
	json_object_object_add(o, "revision",
	    json_object_new_int64((int64_t)r->revision));
	json_object_object_add(o, "not_before",
	    json_object_new_string(r->not_before));
	json_object_object_add(o, "not_after",
	    json_object_new_string(r->not_after));
	json_object_object_add(o, "fingerprint_sha256",
	    json_object_new_string(r->fingerprint));
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string(r->issued_to[0]));
	json_object_array_add(a, json_object_new_string(r->issued_to[1]));
	json_object_object_add(o, "issued_to", a);
	json_object_object_add(o, "has_expired",
	    json_object_new_boolean(r->expired));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (n > cap)
		n = 0;
	else
		memcpy(out, s, n);
	json_object_put(o);
	return n;
}

const struct jb_lib jb_jsonc = {
	"json-c 0.16", "UTF-8 (loosely); takes NaN, '1.', control "
	"characters, single quotes; keeps the last duplicate", decode, encode
};
