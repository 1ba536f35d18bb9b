/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the URL router and the list query parser.  Input: one
 * byte choosing the method, then a request target "PATH[?QUERY]" (cut at the
 * first NUL, as a C string reaches the router).  The path goes through
 * http_match and, when it names a team resource, http_match_ids; the query
 * through http_query_check (against what the route takes) and
 * http_certs_paging.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "certd/constants.h"
#include "http.h"
#include "http_certs.h"
#include "service.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int methods[] = {
	EVHTTP_REQ_GET, EVHTTP_REQ_POST, EVHTTP_REQ_HEAD, EVHTTP_REQ_PUT,
	EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS, EVHTTP_REQ_TRACE,
	EVHTTP_REQ_CONNECT, EVHTTP_REQ_PATCH,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_match	 m;
	struct http_query_err	 qe;
	char			 team[CERTD_TEAM_MAX + 1];
	char			*target, *query;
	struct service_why	 why;
	uint64_t		 id, page, page_size;
	size_t			 len, i;
	int			 method, rv;

	if (size < 1)
		return 0;
	method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	data++;
	size--;
	len = strnlen((const char *)data, size);
	/* Exactly len + 1 bytes, so that ASan catches a read past the end. */
	if ((target = malloc(len + 1)) == NULL)
		return 0;
	memcpy(target, data, len);
	target[len] = '\0';
	if ((query = strchr(target, '?')) != NULL)
		*query++ = '\0';

	rv = http_match(target, method, &m);
	if (rv == 0 && m.team != NULL) {
		if (http_match_ids(&m, team, &id) == 0 &&
		    strlen(team) != m.team_len)
			__builtin_trap();
	}
	if (m.params == NULL)
		__builtin_trap();
	if (http_query_check(query, m.params, &qe) != 0) {
		/* What names the parameter is shown in JSON: printable. */
		if (qe.field[0] == '\0' || qe.reason[0] == '\0')
			__builtin_trap();
		for (i = 0; qe.field[i] != '\0'; i++)
			if (qe.field[i] <= 0x20 || qe.field[i] >= 0x7f ||
			    qe.field[i] == '"' || qe.field[i] == '\\')
				__builtin_trap();
	}

	if (http_certs_paging(query, &page, &page_size, &why) == 0) {
		if (page == 0 || page_size == 0 ||
		    page_size > CERTD_PAGE_SIZE_MAX)
			__builtin_trap();
	} else if (why.field == NULL || why.reason == NULL)
		__builtin_trap();
	free(target);
	return 0;
}
