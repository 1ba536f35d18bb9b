/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the request framer (http_wire.c).  Input: one byte giving
 * a piece size (1 to 256), then a connection's bytes.  They are passed once
 * whole and once in pieces of that size: what reaches evhttp, and the
 * refusal, must not depend on how the bytes arrived, a refused stream ends
 * in a stand-in, and nothing is held back without bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "certd/constants.h"
#include "http_wire.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	struct evbuffer	*dst;
	uint64_t	 refused;
	const char	*field, *reason;
	size_t		 held;
};

static int
run(const uint8_t *data, size_t size, size_t piece, struct out *o)
{
	struct http_wire	*w = http_wire_new();
	struct evbuffer		*src = evbuffer_new();
	size_t			 off = 0, k;

	o->dst = evbuffer_new();
	if (w == NULL || src == NULL || o->dst == NULL)
		return -1;
	while (off < size) {
		k = size - off < piece ? size - off : piece;
		if (evbuffer_add(src, data + off, k) != 0 ||
		    http_wire_pass(w, src, o->dst) != 0)
			return -1;
		off += k;
		/* held: a head of at most 16 KiB with its EOLs, or a line */
		if (evbuffer_get_length(src) > 3 * CERTD_HEADERS_MAX + 4)
			__builtin_trap();
	}
	o->refused = http_wire_refused(w, &o->field, &o->reason);
	o->held = evbuffer_get_length(src);
	http_wire_free(w);
	evbuffer_free(src);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out	a, b;
	size_t		la, lb;

	if (size < 1)
		return 0;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (run(data + 1, size - 1, size, &a) == 0 &&
	    run(data + 1, size - 1, (size_t)data[0] + 1, &b) == 0) {
		la = evbuffer_get_length(a.dst);
		lb = evbuffer_get_length(b.dst);
		if (la != lb || a.refused != b.refused || a.held != b.held ||
		    (la > 0 && memcmp(evbuffer_pullup(a.dst, -1),
		    evbuffer_pullup(b.dst, -1), la) != 0))
			__builtin_trap();
		if (a.refused != 0 && (a.field == NULL || a.reason == NULL ||
		    a.held != 0))
			__builtin_trap();
	}
	if (a.dst != NULL)
		evbuffer_free(a.dst);
	if (b.dst != NULL)
		evbuffer_free(b.dst);
	return 0;
}
