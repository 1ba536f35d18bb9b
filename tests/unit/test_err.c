/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the error table (err.c): every row's three conversions (the
 * REST status, the socket error code, what libcertd returns) agree with
 * each other, with the CERTD_E_* numbers clients compare against, and with
 * what doc/api.md and doc/protocol.md tell clients.  The docs are read from
 * $CERTD_SRCDIR (make check sets it), else from the current directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "certd/certd.h"
#include "err.h"
#include "http.h"

/* The last code of enum certd_error; the enum is contiguous from -1. */
#define LAST_ERR	CERTD_ERR_CLUSTER

static const struct err_row *
row_of_msg(const char *msg, size_t len)
{
	const struct err_row	*rows;
	size_t			 n, i;

	rows = err_rows(&n);
	for (i = 0; i < n; i++)
		if (strlen(rows[i].msg) == len &&
		    memcmp(rows[i].msg, msg, len) == 0)
			return &rows[i];
	return NULL;
}

static char *
slurp_doc(const char *name)
{
	const char	*src = getenv("CERTD_SRCDIR");
	char		 path[4096], *buf;
	FILE		*f;
	long		 len;

	snprintf(path, sizeof(path), "%s/doc/%s",
	    src != NULL && *src != '\0' ? src : ".", name);
	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/*
 * The text of a "## title" section (up to the next "## "), cut in place:
 * doc ends there.
 */
static char *
section(char *doc, const char *title)
{
	char	 head[128], *s, *end;

	snprintf(head, sizeof(head), "\n## %s\n", title);
	if ((s = strstr(doc, head)) == NULL)
		fail_msg("no section \"%s\"", title);
	s += strlen(head);
	if ((end = strstr(s, "\n## ")) != NULL)
		end[1] = '\0';
	return s;
}

/* The line of text holding needle, copied into out; 0 when none. */
static int
line_with(const char *text, const char *needle, char *out, size_t outlen)
{
	const char	*p = strstr(text, needle), *b, *e;

	if (p == NULL)
		return 0;
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	if ((e = strchr(p, '\n')) == NULL)
		e = p + strlen(p);
	snprintf(out, outlen, "%.*s", (int)(e - b), b);
	return 1;
}

static int
is_status(const char *s, size_t len)
{
	return len == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' &&
	    s[1] <= '9' && s[2] >= '0' && s[2] <= '9';
}

/*
 * Every "| NNN | MSG |" of the tables in text whose MSG is a row's msg:
 * the row must be sent at door and its code there be NNN.  Returns the
 * pairs seen.
 */
static size_t
check_table_pairs(const char *text, unsigned door)
{
	const char	*line = text, *c[16], *end;
	size_t		 clen[16], n, i, seen = 0;

	for (; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		const char *p = line;

		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		if (*line != '|')
			continue;
		/* The cells, trimmed. */
		for (n = 0; p < end && n < 16; n++) {
			const char *q = memchr(p + 1, '|', (size_t)(end - p - 1));

			if (q == NULL)
				break;
			c[n] = p + 1;
			while (c[n] < q && *c[n] == ' ')
				c[n]++;
			clen[n] = (size_t)(q - c[n]);
			while (clen[n] > 0 && c[n][clen[n] - 1] == ' ')
				clen[n]--;
			p = q;
		}
		for (i = 0; i + 1 < n; i++) {
			const struct err_row *r;
			int code;

			if (!is_status(c[i], clen[i]) ||
			    (r = row_of_msg(c[i + 1], clen[i + 1])) == NULL)
				continue;
			code = atoi(c[i]);
			if ((r->doors & door) == 0)
				fail_msg("\"%s\" is documented at a door that "
				    "does not send it", r->msg);
			if (code != (door == ERR_REST ? r->http : r->socket))
				fail_msg("\"%s\" is documented as %d", r->msg,
				    code);
			seen++;
		}
	}
	return seen;
}

/*
 * Every {"code": N, "msg": "MSG in text (blanks or none after the colons):
 * the row whose msg MSG is (or begins, up to a colon: "malformed frame:
 * REASON") must be sent at door with code N.  Returns the examples seen.
 */
static size_t
check_json_examples(const char *text, unsigned door)
{
	const char	*p = text, *m, *e, *colon;
	size_t		 seen = 0;
	int		 code;

	while ((p = strstr(p, "\"code\":")) != NULL) {
		const struct err_row *r;

		p += strlen("\"code\":");
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			continue;		/* "code": C, a placeholder */
		code = atoi(p);
		if ((m = strstr(p, "\"msg\":")) == NULL || m - p > 8)
			continue;
		m += strlen("\"msg\":");
		while (*m == ' ')
			m++;
		if (*m++ != '"' || (e = strchr(m, '"')) == NULL)
			continue;
		colon = memchr(m, ':', (size_t)(e - m));
		r = row_of_msg(m, (size_t)((colon != NULL ? colon : e) - m));
		if (r == NULL)
			fail_msg("an example says msg \"%.*s\", which no row has",
			    (int)(e - m), m);
		if ((r->doors & door) == 0 ||
		    code != (door == ERR_REST ? r->http : r->socket))
			fail_msg("an example gives \"%s\" code %d", r->msg,
			    code);
		seen++;
	}
	return seen;
}

/* The name of a CERTD_E_* of constants.h, as protocol.md writes it. */
static const char *
client_name(int client)
{
	switch (client) {
	case CERTD_E_BAD_REQUEST:	return "CERTD_E_BAD_REQUEST";
	case CERTD_E_UNAUTHORIZED:	return "CERTD_E_UNAUTHORIZED";
	case CERTD_E_FORBIDDEN:		return "CERTD_E_FORBIDDEN";
	case CERTD_E_NOT_FOUND:		return "CERTD_E_NOT_FOUND";
	case CERTD_E_METHOD:		return "CERTD_E_METHOD";
	case CERTD_E_PRECONDITION:	return "CERTD_E_PRECONDITION";
	case CERTD_E_TOO_LARGE:		return "CERTD_E_TOO_LARGE";
	case CERTD_E_UNAVAILABLE:	return "CERTD_E_UNAVAILABLE";
	default:			return NULL;
	}
}

/* Each row: its accessors, and the three numbers agree. */
static void
test_rows(void **state)
{
	const struct err_row	*rows;
	size_t			 n, i, j, k;
	int			 err;

	(void)state;
	rows = err_rows(&n);
	assert_int_equal(n, 1 - LAST_ERR);
	for (i = 0; i < n; i++) {
		const struct err_row *r = &rows[i];

		err = r->err;
		assert_true(err <= 0 && err >= LAST_ERR);
		for (j = i + 1; j < n; j++) {
			assert_int_not_equal(rows[j].err, err);
			assert_string_not_equal(rows[j].msg, r->msg);
		}
		assert_int_equal(err_http_status(err), r->http);
		assert_int_equal(err_socket_code(err), r->socket);
		assert_int_equal(err_client_code(err), r->client);
		assert_ptr_equal(err_msg(err), r->msg);
		assert_ptr_equal(err_msg_show(err), r->msg_show);
		assert_true(r->msg[0] != '\0' && r->msg_show[0] != '\0');
		assert_true(r->doors != 0 &&
		    (r->doors & ~(unsigned)(ERR_REST | ERR_SOCKET)) == 0);
		/* Every status is one /metrics counts by name. */
		for (k = 0; k < HTTP_STATUSES - 1; k++)
			if (http_statuses[k] == r->http)
				break;
		assert_true(k < HTTP_STATUSES - 1);
		if (err == CERTD_OK) {
			assert_int_equal(r->http, 200);
			assert_int_equal(r->socket, 0);
			assert_int_equal(r->client, 0);
			continue;
		}
		/* A socket error frame says what REST would, as a status. */
		assert_true(r->http >= 400 && r->http <= 599);
		assert_int_equal(r->socket, r->http);
		/* libcertd returns the code negated, by a CERTD_E_* name. */
		assert_int_equal(r->client, -r->socket);
		assert_non_null(client_name(r->client));
	}
}

/* A code not in the table is answered as an internal error. */
static void
test_unknown(void **state)
{
	static const int	 unknown[] = { 1, LAST_ERR - 1, -1000, -400 };
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_int_equal(err_http_status(unknown[i]), 503);
		assert_int_equal(err_socket_code(unknown[i]), 503);
		assert_int_equal(err_client_code(unknown[i]),
		    CERTD_E_UNAVAILABLE);
		assert_string_equal(err_msg(unknown[i]), "internal error");
	}
}

/*
 * The numbers libcertd's callers compare with (certd.h: "-400, -403,
 * -404, -412, -413, -503... are the server's error codes negated"), and
 * the local ones, which must never meet them.
 */
static void
test_client_numbers(void **state)
{
	(void)state;
	assert_int_equal(CERTD_E_BAD_REQUEST, -400);
	assert_int_equal(CERTD_E_UNAUTHORIZED, -401);
	assert_int_equal(CERTD_E_FORBIDDEN, -403);
	assert_int_equal(CERTD_E_NOT_FOUND, -404);
	assert_int_equal(CERTD_E_METHOD, -405);
	assert_int_equal(CERTD_E_PRECONDITION, -412);
	assert_int_equal(CERTD_E_TOO_LARGE, -413);
	assert_int_equal(CERTD_E_UNAVAILABLE, -503);
	assert_int_equal(CERTD_E_IO, -1);
	assert_int_equal(CERTD_E_PROTO, -2);
	assert_int_equal(CERTD_E_NOMEM, -3);
	assert_int_equal(CERTD_E_INVAL, -4);
	assert_int_equal(CERTD_E_PEER, -5);
}

/*
 * doc/api.md: every row REST sends is in its tables with its status (and
 * its msg_show where the table has that column); nothing its tables or
 * examples list has another status or belongs to the socket alone.
 */
static void
test_api_doc(void **state)
{
	const struct err_row	*rows;
	char			*doc = slurp_doc("api.md"), needle[160];
	size_t			 n, i;

	(void)state;
	assert_true(check_json_examples(doc, ERR_REST) > 0);
	assert_true(check_table_pairs(doc, ERR_REST) > 0);
	rows = err_rows(&n);
	for (i = 0; i < n; i++) {
		const char *at, *cell;
		size_t len;

		if (rows[i].err == CERTD_OK || !(rows[i].doors & ERR_REST))
			continue;
		snprintf(needle, sizeof(needle), "| %d | %s |", rows[i].http,
		    rows[i].msg);
		if (strstr(doc, needle) == NULL)
			fail_msg("doc/api.md does not list %s", needle);
		/* A msg_show column, where there is one, says msg_show. */
		for (at = doc; (at = strstr(at, needle)) != NULL; at = cell) {
			cell = at + strlen(needle);
			while (*cell == ' ')
				cell++;
			if ((unsigned char)*cell < 0x80)
				continue;
			for (len = 0; cell[len] != ' ' && cell[len] != '|' &&
			    cell[len] != '\n' && cell[len] != '\0'; len++)
				;
			if (len != strlen(rows[i].msg_show) ||
			    memcmp(cell, rows[i].msg_show, len) != 0)
				fail_msg("doc/api.md gives %s msg_show %.*s",
				    needle, (int)len, cell);
		}
	}
	free(doc);
}

/*
 * doc/protocol.md: its "Error codes" table lists exactly the rows the
 * socket sends, each with its code and libcertd's return (name and
 * number), and its examples of error frames agree.
 */
static void
test_protocol_doc(void **state)
{
	const struct err_row	*rows;
	char			*doc = slurp_doc("protocol.md"), *codes;
	char			 needle[160], line[4096], ret[64];
	size_t			 n, i, want = 0;

	(void)state;
	assert_true(check_json_examples(doc, ERR_SOCKET) > 0);
	assert_true(check_table_pairs(doc, ERR_SOCKET) > 0);
	codes = section(doc, "Error codes");
	rows = err_rows(&n);
	for (i = 0; i < n; i++) {
		if (rows[i].err == CERTD_OK || !(rows[i].doors & ERR_SOCKET))
			continue;
		want++;
		snprintf(needle, sizeof(needle), "| %d | %s |",
		    rows[i].socket, rows[i].msg);
		if (!line_with(codes, needle, line, sizeof(line)))
			fail_msg("doc/protocol.md does not list %s", needle);
		snprintf(ret, sizeof(ret), "`%s` (%d)",
		    client_name(rows[i].client), rows[i].client);
		if (strstr(line, ret) == NULL)
			fail_msg("doc/protocol.md: %s does not say %s", needle,
			    ret);
	}
	assert_int_equal(check_table_pairs(codes, ERR_SOCKET), want);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_client_numbers),
		cmocka_unit_test(test_api_doc),
		cmocka_unit_test(test_protocol_doc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
