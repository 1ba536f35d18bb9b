/* SPDX-License-Identifier: MIT */
/* jsonbench: cJSON. */
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonbench.h"

static const char *const fields[] = {
	"alias", "certificate", "private_key", "certificate_type"
};

static long
decode(const char *body, size_t len)
{
	const char	*end;
	cJSON		*root, *v;
	long		 n = 0;
	size_t		 i;

	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root == NULL || end != body + len) {
		cJSON_Delete(root);
		return -1;
	}
	for (i = 0; i < 4; i++)
		if ((v = cJSON_GetObjectItemCaseSensitive(root, fields[i])) !=
		    NULL && cJSON_IsString(v))
			n += (long)strlen(v->valuestring);
	cJSON_Delete(root);
	return n;
}

static size_t
encode(const struct jb_reply *r, char *out, size_t cap)
{
	cJSON	*o = cJSON_CreateObject();
	size_t	 n = 0;

	cJSON_AddNumberToObject(o, "id", (double)r->id);
	cJSON_AddStringToObject(o, "alias", r->alias);
	cJSON_AddStringToObject(o, "private_key", r->private_key);
	cJSON_AddStringToObject(o, "certificate", r->certificate);
	cJSON_AddStringToObject(o, "certificate_type", r->type);
	cJSON_AddNumberToObject(o, "revision", (double)r->revision);
	cJSON_AddStringToObject(o, "not_before", r->not_before);
	cJSON_AddStringToObject(o, "not_after", r->not_after);
	cJSON_AddStringToObject(o, "fingerprint_sha256", r->fingerprint);
	cJSON_AddItemToObject(o, "issued_to",
	    cJSON_CreateStringArray(r->issued_to, 2));
	cJSON_AddBoolToObject(o, "has_expired", r->expired);
	if (cJSON_PrintPreallocated(o, out, (int)cap, 0))
		n = strlen(out);
	cJSON_Delete(o);
	return n;
}

const struct jb_lib jb_cjson = {
	"cJSON 1.7.15", "none: takes duplicates, any bytes, leading zeros, "
	"'1.', control characters; numbers are doubles", decode, encode
};
