/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the REST body decoder: http_certs_body_parse, then the
 * field reader http_certs_fields.  Input: one byte whose low bit is
 * empty_ok, then the body.
 */
#include <stdint.h>
#include <string.h>

#include "http_certs.h"
#include "json.h"
#include "service.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
touch(const struct service_field *f)
{
	/* Every byte the service will read, and the terminator json.c adds. */
	if (f->s != NULL && f->s[f->len] != '\0')
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_body b;
	struct service_put_req req;
	char		 reason[128];
	int		 empty_ok;

	if (size < 1)
		return 0;
	empty_ok = data[0] & 1;
	if (http_certs_body_parse((const char *)data + 1, size - 1, empty_ok,
	    &b, reason, sizeof(reason)) != 0) {
		/* The reason must be a terminated string. */
		(void)strlen(reason);
		json_body_free(&b);
		return 0;
	}
	memset(&req, 0, sizeof(req));
	if (http_certs_fields(&b, &req) == NULL) {
		touch(&req.alias);
		touch(&req.certificate);
		touch(&req.private_key);
		touch(&req.cert_type);
	}
	json_body_free(&b);
	return 0;
}
