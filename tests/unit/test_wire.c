/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of http_wire.c: what reaches evhttp of a connection's bytes,
 * fed at once and a byte at a time, and the stand-ins for refused
 * requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http_wire.h"

#define STAND_IN_HEAD	"GET / HTTP/1.1\r\n\r\n"
#define STAND_IN_END	"\r\n0\r\n\r\n"

struct run {
	char		out[40000];
	size_t		len;
	uint64_t	refused;
	const char	*field, *reason;
	size_t		left;		/* bytes still held in src */
};

/* Feed n bytes of in, in pieces of step bytes (0: at once). */
static void
feed(const char *in, size_t n, size_t step, struct run *r)
{
	struct http_wire	*w = http_wire_new();
	struct evbuffer		*src = evbuffer_new(), *dst = evbuffer_new();
	size_t			 off = 0, k;

	assert_non_null(w);
	memset(r, 0, sizeof(*r));
	do {
		k = step == 0 || n - off < step ? n - off : step;
		assert_int_equal(evbuffer_add(src, in + off, k), 0);
		off += k;
		assert_int_equal(http_wire_pass(w, src, dst), 0);
	} while (off < n);
	r->len = evbuffer_get_length(dst);
	assert_true(r->len < sizeof(r->out));
	evbuffer_remove(dst, r->out, r->len);
	r->refused = http_wire_refused(w, &r->field, &r->reason);
	r->left = evbuffer_get_length(src);
	http_wire_free(w);
	evbuffer_free(src);
	evbuffer_free(dst);
}

/* The same bytes reach evhttp at once and a byte at a time. */
static void
passes(const char *in, size_t n, const char *want, size_t want_len,
    size_t held)
{
	struct run	r;
	size_t		step;

	for (step = 0; step <= 1; step++) {
		feed(in, n, step, &r);
		if (r.len != want_len || memcmp(r.out, want, want_len) != 0)
			fail_msg("step %zu: passed %zu bytes, want %zu: %.*s",
			    step, r.len, want_len, (int)r.len, r.out);
		assert_int_equal(r.refused, 0);
		assert_int_equal(r.left, held);
	}
}

#define PASSES(in, want, held) \
	passes(in, sizeof(in) - 1, want, sizeof(want) - 1, held)

/*
 * in is refused as its request number nth, with field and a reason holding
 * why; evhttp gets want (what went before, and the stand-in), no more.
 */
static void
refused(const char *in, size_t n, uint64_t nth, const char *field,
    const char *why, const char *want, size_t want_len)
{
	struct run	r;
	size_t		step;

	for (step = 0; step <= 1; step++) {
		feed(in, n, step, &r);
		if (r.refused != nth || r.field == NULL ||
		    strcmp(r.field, field) != 0 || strstr(r.reason, why) == NULL)
			fail_msg("step %zu: refused %llu (%s: %s), want %llu "
			    "(%s: ...%s...)", step,
			    (unsigned long long)r.refused,
			    r.field != NULL ? r.field : "-",
			    r.reason != NULL ? r.reason : "-",
			    (unsigned long long)nth, field, why);
		if (r.len != want_len || memcmp(r.out, want, want_len) != 0)
			fail_msg("step %zu: passed %.*s", step, (int)r.len,
			    r.out);
		assert_int_equal(r.left, 0);
	}
}

#define REFUSED(in, nth, field, why, want) \
	refused(in, sizeof(in) - 1, nth, field, why, want, sizeof(want) - 1)

static void
test_heads_and_bodies(void **state)
{
	(void)state;
	/* a head goes whole, at its blank line; LF alone ends lines too */
	PASSES("GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	PASSES("GET /a HTTP/1.1\r\nHost: x\r\n", "", 26);
	PASSES("GET /a HTTP/1.1\nHost: x\n\n", "GET /a HTTP/1.1\nHost: x\n\n", 0);
	/* a body by Content-Length, then the next request */
	PASSES("POST / HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabcGET / HTTP/1.1"
	    "\r\n\r\n", "POST / HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabcGET / "
	    "HTTP/1.1\r\n\r\n", 0);
	/* a part of a body goes as it comes */
	PASSES("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabcd",
	    "PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabcd", 0);
	/* HEAD has no body whatever it says: evhttp reads the next request */
	PASSES("HEAD / HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /",
	    "HEAD / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 5);
	/* a NUL in a body is the body's business (JSON refuses it) */
	PASSES("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\0x",
	    "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\0x", 0);
	/* other headers may hold anything but NUL, CR LF */
	PASSES("GET / HTTP/1.1\r\nX-A: \t\001\177:\r\n\r\n",
	    "GET / HTTP/1.1\r\nX-A: \t\001\177:\r\n\r\n", 0);
}

static void
test_chunked(void **state)
{
	(void)state;
	PASSES("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n00A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n00A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	    0);
	PASSES("POST / HTTP/1.1\nTransfer-Encoding:  Chunked \n\n"
	    "3\nabc\n0\n\n", "POST / HTTP/1.1\nTransfer-Encoding:  Chunked \n\n"
	    "3\nabc\n0\n\n", 0);
	/* the last chunk waits for the empty line that ends the body */
	PASSES("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nab\r\n0\r\n", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n2\r\nab\r\n", 3);
	/* a size line is held until whole; data goes as it comes */
	PASSES("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
	PASSES("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nabc",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nabc", 0);
}

#define CH	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"

static void
test_chunked_refused(void **state)
{
	(void)state;
	REFUSED(CH "zz\r\nab\r\n0\r\n\r\n", 1, "body", "not hex digits",
	    CH STAND_IN_END);
	REFUSED(CH "2;ext=1\r\nab\r\n0\r\n\r\n", 1, "body", "extensions",
	    CH STAND_IN_END);
	REFUSED(CH "2 \r\nab\r\n0\r\n\r\n", 1, "body", "not hex digits",
	    CH STAND_IN_END);
	REFUSED(CH "+2\r\nab\r\n0\r\n\r\n", 1, "body", "not hex digits",
	    CH STAND_IN_END);
	REFUSED(CH "\r\n2\r\nab\r\n0\r\n\r\n", 1, "body", "malformed",
	    CH STAND_IN_END);
	REFUSED(CH "2\r\r\nab\r\n0\r\n\r\n", 1, "body", "malformed",
	    CH STAND_IN_END);
	REFUSED(CH "00000000000000001\r\na\r\n0\r\n\r\n", 1, "body",
	    "over 16 hex digits", CH STAND_IN_END);
	/* data longer than its size: what passed was whole */
	REFUSED(CH "2\r\nabc\r\n0\r\n\r\n", 1, "body", "longer than its size",
	    CH "2\r\nab" STAND_IN_END);
	REFUSED(CH "2\r\nab\rx0\r\n\r\n", 1, "body", "longer than its size",
	    CH "2\r\nab" STAND_IN_END);
	/* trailer fields */
	REFUSED(CH "2\r\nab\r\n0\r\nX-T: 1\r\n\r\n", 1, "body", "trailer",
	    CH "2\r\nab\r\n" STAND_IN_END);
	/* the second request of the connection; nothing after it passes */
	REFUSED("GET / HTTP/1.1\r\n\r\n" CH "q\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
	    2, "body", "not hex", "GET / HTTP/1.1\r\n\r\n" CH STAND_IN_END);
}

#define GET	"GET /a HTTP/1.1\r\n"

static void
test_heads_refused(void **state)
{
	(void)state;
	REFUSED(GET "Authorization: ctk_1\0junk\r\n\r\n", 1, "headers",
	    "NUL byte", STAND_IN_HEAD);
	REFUSED("GET /a\0 HTTP/1.1\r\n\r\n", 1, "headers", "NUL byte",
	    STAND_IN_HEAD);
	REFUSED(GET "X\0: 1\r\n\r\n", 1, "headers", "NUL byte", STAND_IN_HEAD);
	REFUSED(GET "Authorization: a\r\n b\r\n\r\n", 1, "headers", "folded",
	    STAND_IN_HEAD);
	REFUSED(GET "Authorization: a\r\n\tb\r\n\r\n", 1, "headers", "folded",
	    STAND_IN_HEAD);
	REFUSED(GET "Content-Length : 5\r\n\r\n", 1, "headers", "white space",
	    STAND_IN_HEAD);
	REFUSED(GET "nocolon\r\n\r\n", 1, "headers", "a name, a colon",
	    STAND_IN_HEAD);
	REFUSED(GET ": empty name\r\n\r\n", 1, "headers", "a name",
	    STAND_IN_HEAD);
	REFUSED(GET "Transfer-Encoding: gzip, chunked\r\n\r\n", 1,
	    "Transfer-Encoding", "must be chunked", STAND_IN_HEAD);
	REFUSED(GET "Transfer-Encoding: \tchunked\r\n\r\n", 1,
	    "Transfer-Encoding", "must be chunked", STAND_IN_HEAD);
	REFUSED(GET "Transfer-Encoding: chunked\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n", 1, "Transfer-Encoding", "once", STAND_IN_HEAD);
	REFUSED(GET "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	    1, "Transfer-Encoding", "Content-Length", STAND_IN_HEAD);
	REFUSED(GET "Content-Length: 1\r\ncontent-length: 1\r\n\r\n", 1,
	    "Content-Length", "once", STAND_IN_HEAD);
	REFUSED(GET "Content-Length: +1\r\n\r\n", 1, "Content-Length",
	    "decimal", STAND_IN_HEAD);
	REFUSED(GET "Content-Length: 1 1\r\n\r\n", 1, "Content-Length",
	    "decimal", STAND_IN_HEAD);
	REFUSED(GET "Content-Length: 12345678901234567890\r\n\r\n", 1,
	    "Content-Length", "decimal", STAND_IN_HEAD);
	REFUSED("\r\nGET / HTTP/1.1\r\n\r\n", 1, "request", "request line",
	    STAND_IN_HEAD);
	/* the second request of a connection */
	REFUSED("GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "\r\nxGET /\0 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 3, "headers",
	    "NUL", "GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1"
	    "\r\n\r\nx" STAND_IN_HEAD);
}

/* Heads of evhttp's size limit: 16384 bytes of lines, EOLs not counted. */
static void
test_head_size(void **state)
{
	static char	in[17000];
	size_t		n;
	struct run	r;

	(void)state;
	/* "GET / HTTP/1.1" (14) + "X: " (3) + value + "" = 16384 */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nX: ");
	memset(in + n, 'a', 16384 - 17);
	n += 16384 - 17;
	memcpy(in + n, "\r\n\r\n", 4);
	n += 4;
	feed(in, n, 0, &r);
	assert_int_equal(r.refused, 0);
	assert_int_equal(r.len, n);
	/* one byte more */
	memmove(in + 20, in + 19, n - 19);
	n++;
	feed(in, n, 0, &r);
	assert_int_equal(r.refused, 1);
	assert_string_equal(r.field, "headers");
	assert_int_equal(r.len, sizeof(STAND_IN_HEAD) - 1);
	/* refused before the line ends */
	feed(in, 16390, 0, &r);
	assert_int_equal(r.refused, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heads_and_bodies),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_chunked_refused),
		cmocka_unit_test(test_heads_refused),
		cmocka_unit_test(test_head_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
