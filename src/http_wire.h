/* SPDX-License-Identifier: MIT */
/*
 * The bytes of a REST connection, checked on their way to evhttp: request
 * framing in strict HTTP/1.1, so that evhttp and anything in front of certd
 * read the same requests, and a refusal that the router answers with the
 * envelope (see http_wire.c for the rules and for how evhttp is made to
 * deliver a refused request).  Pure: no I/O, no evhttp.
 */
#ifndef CERTD_HTTP_WIRE_H
#define CERTD_HTTP_WIRE_H

#include <stdint.h>

struct evbuffer;
struct http_wire;

/* One a connection; NULL when out of memory.  _free accepts NULL. */
struct http_wire	*http_wire_new(void);
void			 http_wire_free(struct http_wire *w);

/*
 * Move from src to dst what evhttp may read: whole request heads, bodies,
 * and chunked bodies a chunk at a time.  What is not yet whole stays at the
 * front of src for the next call (src must be drained by nobody else).  On
 * a refusal src is emptied, dst gets a stand-in that evhttp completes as a
 * request, and every later byte is dropped.  Returns 0, or -1 when out of
 * memory.
 */
int			 http_wire_pass(struct http_wire *w,
			    struct evbuffer *src, struct evbuffer *dst);

/*
 * The refused request, numbered from 1 in the connection's order (the
 * number of requests evhttp dispatched on the connection when it is the one
 * being dispatched), or 0; *field and *reason for the envelope.
 */
uint64_t		 http_wire_refused(const struct http_wire *w,
			    const char **field, const char **reason);

#endif
