/* SPDX-License-Identifier: MIT */
/*
 * Request framing, checked before evhttp reads it.  evhttp 2.1 is lenient
 * where a proxy in front of certd may read the bytes differently, and has
 * no hook to answer what it refuses: it keeps a header value up to a NUL
 * byte (so "Authorization: TOKEN<NUL>junk" authenticated as TOKEN), joins
 * folded lines, ignores a Transfer-Encoding other than "chunked" and frames
 * the body by Content-Length instead, and answers a chunked body it cannot
 * parse with 413 and its own HTML page.  2.1 has no hook for either: no
 * callback before the headers are parsed, nor one for the error page
 * (evhttp_set_newreqcb and evhttp_set_errorcb came with 2.2), and a
 * request's error callback is called for outgoing requests only.
 *
 * So http_conn.c's filter, which sits between the socket and evhttp, hands
 * the bytes through this file, which lets a request go on only once it has
 * seen that it is framed as evhttp will read it:
 *  - a head goes whole, at its blank line, when it has no NUL byte, no
 *    folded line, no white space before a colon, every line a "name:
 *    value" one, at most CERTD_HEADERS_MAX bytes of lines (evhttp's own
 *    count and limit), at most one Content-Length (digits only) or one
 *    Transfer-Encoding (exactly "chunked"), not both;
 *  - a body of Content-Length bytes goes as it comes (HEAD and TRACE have
 *    none, as evhttp reads them);
 *  - a chunked body goes a chunk at a time in RFC 9112's syntax without
 *    extensions: a size line of 1-16 hex digits, the data, CRLF; the last
 *    chunk and the empty line that must follow it (no trailer fields) go
 *    together.  Lines end in CRLF or LF, as evhttp reads them.
 *
 * A request that breaks a rule is refused.  evhttp must still deliver a
 * request for the router to answer with the envelope (http.c asks
 * http_conn_refused), so it gets a stand-in that it completes at once:
 *  - for a head, "GET / HTTP/1.1" and a blank line in its place;
 *  - in a chunked body, CRLF "0" CRLF CRLF where it went wrong.  Everything
 *    passed before was whole, so evhttp waits for a chunk-size line: it
 *    skips the empty line, reads the last chunk and an empty trailer.
 * Nothing after the stand-in reaches evhttp, and the router's answer, 400,
 * closes the connection.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "certd/constants.h"
#include "http_wire.h"

#define WIRE_NAME_MAX	17	/* "transfer-encoding", the longest we read */
#define WIRE_VALUE_MAX	24	/* enough for 19 digits or "chunked" */
#define WIRE_SIZE_DIGITS 16	/* hex digits of a chunk size */
#define WIRE_MOVE_MAX	(1 << 30)	/* evbuffer_remove_buffer's int */

enum wire_state {
	W_HEAD,		/* a request head: held until whole */
	W_BODY,		/* Content-Length bytes: passed as they come */
	W_SIZE,		/* a chunk-size line: held */
	W_DATA,		/* chunk data: passed as it comes */
	W_DATA_END,	/* the CRLF after chunk data: held */
	W_TRAILER,	/* the empty line after the last chunk: held with it */
	W_REFUSED,	/* every byte dropped */
};

enum step {
	STEP_MORE,	/* hold the byte; go on */
	STEP_PASS,	/* every held byte, this one included, may go */
	STEP_REFUSE,	/* the request breaks a rule (field, reason set) */
};

/* What is known of the head being read.  Zero is a head not yet begun. */
struct wire_head {
	int		 begun;
	size_t		 len;		/* bytes of whole lines without EOLs */
	size_t		 line_no;	/* 0: the request line */
	size_t		 line_len;	/* bytes of this line so far */
	int		 cr;		/* the last byte was a CR */
	int		 in_value;	/* past this line's colon */
	char		 name[WIRE_NAME_MAX];	/* lowercase, while it fits */
	size_t		 name_len;
	char		 value[WIRE_VALUE_MAX];	/* after leading spaces */
	size_t		 value_len;
	char		 method[6];	/* while it fits */
	size_t		 method_len;
	int		 method_done;
	unsigned	 n_length;	/* Content-Length lines */
	unsigned	 n_coding;	/* Transfer-Encoding lines */
	uint64_t	 length;
};

struct http_wire {
	enum wire_state	 state;
	size_t		 held;		/* front bytes of src seen, not passed */
	uint64_t	 left;		/* W_BODY, W_DATA: bytes to pass */
	uint64_t	 requests;	/* heads begun */
	uint64_t	 refused;	/* the refused request's number, or 0 */
	const char	*field;
	const char	*reason;	/* static, or why */
	char		 why[48];	/* a reason that states a limit */
	struct wire_head h;
	unsigned	 digits;	/* W_SIZE */
	uint64_t	 size;
	int		 cr;		/* W_SIZE, W_DATA_END, W_TRAILER */
};

struct http_wire *
http_wire_new(void)
{
	return calloc(1, sizeof(struct http_wire));
}

void
http_wire_free(struct http_wire *w)
{
	free(w);
}

uint64_t
http_wire_refused(const struct http_wire *w, const char **field,
    const char **reason)
{
	*field = w->field;
	*reason = w->reason;
	return w->refused;
}

static enum step
refuse(struct http_wire *w, const char *field, const char *reason)
{
	w->field = field;
	w->reason = reason;
	return STEP_REFUSE;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int
is_name(const struct wire_head *h, const char *name)
{
	return h->name_len == strlen(name) &&
	    memcmp(h->name, name, h->name_len) == 0;
}

/* A header line is whole: the two that frame the body are checked. */
static enum step
header_done(struct http_wire *w)
{
	struct wire_head	*h = &w->h;
	size_t			 n = h->value_len, i;

	if (n <= WIRE_VALUE_MAX)	/* trailing white space, as evhttp */
		while (n > 0 && (h->value[n - 1] == ' ' ||
		    h->value[n - 1] == '\t'))
			n--;
	if (is_name(h, "content-length")) {
		h->n_length++;
		if (n == 0 || n > 19)
			return refuse(w, "Content-Length",
			    "must be a decimal number");
		for (h->length = 0, i = 0; i < n; i++) {
			if (h->value[i] < '0' || h->value[i] > '9')
				return refuse(w, "Content-Length",
				    "must be a decimal number");
			h->length = h->length * 10 + (uint64_t)(h->value[i] -
			    '0');
		}
	} else if (is_name(h, "transfer-encoding")) {
		h->n_coding++;
		for (i = 0; n == 7 && i < n && lower(h->value[i]) ==
		    "chunked"[i]; i++)
			;
		if (n != 7 || i != 7)
			return refuse(w, "Transfer-Encoding",
			    "must be chunked, the only transfer coding read");
	}
	return STEP_MORE;
}

/* The blank line: how the body is framed, and the head may go. */
static enum step
head_done(struct http_wire *w)
{
	struct wire_head	*h = &w->h;
	int			 no_body;

	if (h->n_length > 1)
		return refuse(w, "Content-Length", "must be given once");
	if (h->n_coding > 1)
		return refuse(w, "Transfer-Encoding", "must be given once");
	if (h->n_coding > 0 && h->n_length > 0)
		return refuse(w, "Transfer-Encoding",
		    "must not come with Content-Length");
	/* evhttp reads no body for these, whatever the headers say */
	no_body = (h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0) ||
	    (h->method_len == 5 && memcmp(h->method, "TRACE", 5) == 0);
	if (no_body || (h->n_coding == 0 && h->length == 0))
		w->state = W_HEAD;
	else if (h->n_coding > 0) {
		w->state = W_SIZE;
		w->digits = 0;
		w->size = 0;
		w->cr = 0;
	} else {
		w->state = W_BODY;
		w->left = h->length;
	}
	memset(h, 0, sizeof(*h));
	return STEP_PASS;
}

/* A line of the head is whole (its EOL not counted). */
static enum step
line_done(struct http_wire *w)
{
	struct wire_head	*h = &w->h;
	enum step		 rv = STEP_MORE;

	if (h->line_no == 0 && h->line_len == 0)
		return refuse(w, "request", "must begin with a request line");
	if (h->line_no > 0 && h->line_len == 0)
		return head_done(w);
	if (h->line_no > 0 && !h->in_value)
		return refuse(w, "headers", "must each be a name, a colon "
		    "and a value");
	if (h->line_no > 0 && (rv = header_done(w)) != STEP_MORE)
		return rv;
	h->len += h->line_len;
	h->line_no++;
	h->line_len = 0;
	h->in_value = 0;
	h->name_len = 0;
	h->value_len = 0;
	return STEP_MORE;
}

/* A byte of a line of the head, not its EOL. */
static enum step
line_byte(struct http_wire *w, unsigned char c)
{
	struct wire_head	*h = &w->h;

	h->line_len++;
	if (h->len + h->line_len > CERTD_HEADERS_MAX) {
		snprintf(w->why, sizeof(w->why), "must be at most %d bytes",
		    CERTD_HEADERS_MAX);
		return refuse(w, "headers", w->why);
	}
	if (h->line_no == 0) {
		if (c == ' ')
			h->method_done = 1;
		else if (!h->method_done && h->method_len++ <
		    sizeof(h->method))
			h->method[h->method_len - 1] = (char)c;
		return STEP_MORE;
	}
	if (h->line_len == 1 && (c == ' ' || c == '\t'))
		return refuse(w, "headers", "must not be folded over lines");
	if (!h->in_value) {
		if (c == ':')
			h->in_value = h->name_len > 0 ? 1 : 0;
		else if (c == ' ' || c == '\t')
			return refuse(w, "headers",
			    "must have no white space before the colon");
		else if (h->name_len++ < WIRE_NAME_MAX)
			h->name[h->name_len - 1] = (char)lower(c);
		if (c == ':' && !h->in_value)
			return refuse(w, "headers", "must each have a name");
		return STEP_MORE;
	}
	if (h->value_len == 0 && c == ' ')	/* evhttp skips them */
		return STEP_MORE;
	if (h->value_len++ < WIRE_VALUE_MAX)
		h->value[h->value_len - 1] = (char)c;
	return STEP_MORE;
}

static enum step
head_byte(struct http_wire *w, unsigned char c)
{
	struct wire_head	*h = &w->h;
	enum step		 rv;

	if (!h->begun) {
		h->begun = 1;
		w->requests++;
	}
	if (c == '\0')
		return refuse(w, "headers", "must not contain a NUL byte");
	if (c == '\n') {		/* LF or CRLF ends a line, as evhttp */
		h->cr = 0;
		return line_done(w);
	}
	if (h->cr) {			/* a CR inside a line is part of it */
		h->cr = 0;
		if ((rv = line_byte(w, '\r')) != STEP_MORE)
			return rv;
	}
	if (c == '\r') {
		h->cr = 1;
		return STEP_MORE;
	}
	return line_byte(w, c);
}

static enum step
size_byte(struct http_wire *w, unsigned char c)
{
	int	d;

	if (c == '\n' && w->digits > 0) {
		w->cr = 0;
		w->digits = 0;
		if (w->size == 0) {	/* held until the empty line */
			w->state = W_TRAILER;
			return STEP_MORE;
		}
		w->state = W_DATA;
		w->left = w->size;
		w->size = 0;
		return STEP_PASS;
	}
	if (w->cr || (c == '\r' && w->digits == 0))
		return refuse(w, "body", "is chunked with a malformed chunk-size "
		    "line");
	if (c == '\r') {
		w->cr = 1;
		return STEP_MORE;
	}
	if ((d = hex_digit(c)) < 0)
		return refuse(w, "body", "is chunked with a chunk size that is "
		    "not hex digits alone (extensions are not accepted)");
	if (w->digits == WIRE_SIZE_DIGITS)
		return refuse(w, "body", "is chunked with a chunk size of over "
		    "16 hex digits");
	w->size = w->size << 4 | (uint64_t)d;
	w->digits++;
	return STEP_MORE;
}

/* The CRLF (or LF) that ends chunk data, or the chunked body. */
static enum step
eol_byte(struct http_wire *w, unsigned char c)
{
	if (c == '\r' && !w->cr) {
		w->cr = 1;
		return STEP_MORE;
	}
	if (c != '\n') {
		if (w->state == W_TRAILER)
			return refuse(w, "body", "is chunked with trailer "
			    "fields, which are not accepted");
		return refuse(w, "body", "is chunked with a chunk longer than "
		    "its size");
	}
	w->cr = 0;
	w->state = w->state == W_TRAILER ? W_HEAD : W_SIZE;
	return STEP_PASS;
}

static enum step
step(struct http_wire *w, unsigned char c)
{
	switch (w->state) {
	case W_HEAD:
		return head_byte(w, c);
	case W_SIZE:
		return size_byte(w, c);
	case W_DATA_END:
	case W_TRAILER:
		return eol_byte(w, c);
	default:
		return STEP_PASS;	/* not reached: passed in bulk */
	}
}

/* Look at the bytes of src after the held ones, up to the first step. */
static enum step
scan(struct http_wire *w, struct evbuffer *src, size_t len)
{
	struct evbuffer_ptr	 pos;
	struct evbuffer_iovec	 v[4];
	const unsigned char	*p;
	enum step		 rv;
	int			 n, i;
	size_t			 j;

	while (w->held < len) {
		if (evbuffer_ptr_set(src, &pos, w->held, EVBUFFER_PTR_SET) != 0 ||
		    (n = evbuffer_peek(src, (ev_ssize_t)(len - w->held), &pos,
		    v, 4)) <= 0)
			return STEP_MORE;	/* not reached: len is there */
		for (i = 0; i < n && i < 4; i++) {
			p = v[i].iov_base;
			for (j = 0; j < v[i].iov_len && w->held < len; j++) {
				w->held++;
				if ((rv = step(w, p[j])) != STEP_MORE)
					return rv;
			}
		}
	}
	return STEP_MORE;
}

int
http_wire_pass(struct http_wire *w, struct evbuffer *src,
    struct evbuffer *dst)
{
	static const char	head[] = "GET / HTTP/1.1\r\n\r\n";
	static const char	last[] = "\r\n0\r\n\r\n";
	size_t			len, n;
	enum step		rv;

	for (;;) {
		len = evbuffer_get_length(src);
		if (w->state == W_REFUSED) {
			evbuffer_drain(src, len);
			return 0;
		}
		if (w->state == W_BODY || w->state == W_DATA) {
			n = len < w->left ? len : (size_t)w->left;
			if (n > WIRE_MOVE_MAX)
				n = WIRE_MOVE_MAX;
			if (n == 0)
				return 0;
			if (evbuffer_remove_buffer(src, dst, n) != (int)n)
				return -1;
			if ((w->left -= n) == 0)
				w->state = w->state == W_BODY ? W_HEAD :
				    W_DATA_END;
			continue;
		}
		if ((rv = scan(w, src, len)) == STEP_MORE)
			return 0;
		if (rv == STEP_PASS) {
			if (evbuffer_remove_buffer(src, dst, w->held) !=
			    (int)w->held)
				return -1;
			w->held = 0;
			continue;
		}
		w->refused = w->requests;
		evbuffer_drain(src, len);
		w->held = 0;
		n = w->state == W_HEAD;
		w->state = W_REFUSED;
		return n ? evbuffer_add(dst, head, sizeof(head) - 1) :
		    evbuffer_add(dst, last, sizeof(last) - 1);
	}
}
