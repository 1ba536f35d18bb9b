/* SPDX-License-Identifier: MIT */
/* jsonbench: jansson, as certd used it until issue 18. */
#include <string.h>

#include <jansson.h>

#include "jsonbench.h"

static const char *const fields[] = {
	"alias", "certificate", "private_key", "certificate_type"
};

static long
decode(const char *body, size_t len)
{
	json_error_t	 err;
	json_t		*root, *v;
	long		 n = 0;
	size_t		 i;

	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err)) ==
	    NULL)
		return -1;
	for (i = 0; i < 4; i++)
		if ((v = json_object_get(root, fields[i])) != NULL)
			n += (long)json_string_length(v);
	json_decref(root);
	return n;
}

static size_t
encode(const struct jb_reply *r, char *out, size_t cap)
{
	json_t	*o;
	size_t	 n;

	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, "
	    "s:[s, s], s:b}", "id", (json_int_t)r->id, "alias", r->alias,
	    "private_key", r->private_key, "certificate", r->certificate,
	    "certificate_type", r->type, "revision", (json_int_t)r->revision,
	    "not_before", r->not_before, "not_after", r->not_after,
	    "fingerprint_sha256", r->fingerprint, "issued_to", r->issued_to[0],
	    r->issued_to[1], "has_expired", r->expired);
	if (o == NULL)
		return 0;
	n = json_dumpb(o, out, cap, JSON_COMPACT);
	json_decref(o);
	return n <= cap ? n : 0;
}

const struct jb_lib jb_jansson = {
	"jansson 2.14", "duplicates, UTF-8, \\u0000, surrogates", decode,
	encode
};
