/* SPDX-License-Identifier: MIT */
/*
 * PEM text as certd reads and stores it, without GnuTLS: the block
 * scanner, what a certificate text and a key text may hold, and their
 * normal form.  We find the block boundaries ourselves, so that any block
 * in the certificate text that is not a CERTIFICATE block, any block in the
 * key text besides exactly one private key block, or a damaged block, is
 * refused before GnuTLS sees it (explanatory text around the blocks, RFC
 * 7468 section 2, is skipped), and so that cert.c hands GnuTLS only exact,
 * length-bounded slices of the caller's buffers.  The blocks' base64 is
 * checked for its alphabet only; decoding it is GnuTLS's, in cert.c.
 * Nothing here is allocated but pem_normalize's output, and a refusal's
 * reason names a line, a block's position or label, never key text.
 */

#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "pem.h"
#include "util.h"

#define PEM_BEGIN	"-----BEGIN "
#define PEM_END		"-----END "
#define PEM_DASHES	"-----"
#define PEM_LABEL_MAX	64

/*
 * Where and why a text failed, for the reason a client is told: `at' is
 * the offending byte (its line is counted from `text').
 */
struct pem_err {
	const char	*text;
	const char	*at;
	const char	*what;		/* static */
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

static int
is_label_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ';
}

static int
has_prefix(const char *p, const char *end, const char *prefix)
{
	size_t	len = strlen(prefix);

	return (size_t)(end - p) >= len && memcmp(p, prefix, len) == 0;
}

/* Stop at `at' with `what'; returns -1 for pem_next's callers. */
static int
pem_fail(struct pem_err *e, const char *at, const char *what)
{
	e->at = at;
	e->what = what;
	return -1;
}

/* 1-based line number of e->at in e->text. */
static unsigned
pem_line(const struct pem_err *e)
{
	const char	*p;
	unsigned	 n = 1;

	for (p = e->text; p < e->at; p++)
		if (*p == '\n')
			n++;
	return n;
}

/*
 * One line of explanatory text outside the blocks, [p, eol): RFC 7468
 * section 2 lets it stand before, between and after them (`openssl pkcs12
 * -nodes' writes "Bag Attributes", "subject=..." and "issuer=..." lines).
 * It is skipped, with any bytes but control characters (tab and CR
 * excepted): OpenSSL prints a friendlyName in whatever bytes it decodes.
 * Refused, as the remains of a damaged block rather than prose: a line
 * holding "-----" (a boundary not at the start of its line, an END line
 * without its BEGIN, a mangled marker), and a line of 40 or more base64
 * characters, some of them letters or digits (a body without its BEGIN
 * line; a run of "=" is an underline, as in curl's CA bundle).
 */
static int
pem_text_line(const char *p, const char *eol, struct pem_err *e)
{
	const char	*q;
	size_t		 b64 = 0;
	int		 only_b64 = 1, alnum = 0;

	for (q = p; q < eol; q++) {
		unsigned char	c = (unsigned char)*q;

		if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
			return pem_fail(e, q, "a control character outside "
			    "the PEM blocks (is this PEM text?)");
		if (is_base64(*q)) {
			b64++;
			if (*q != '=' && *q != '+' && *q != '/')
				alnum = 1;
		} else if (c != '\r')
			only_b64 = 0;
	}
	if (eol - p >= 5 && memmem(p, (size_t)(eol - p), PEM_DASHES,
	    strlen(PEM_DASHES)) != NULL)
		return pem_fail(e, p, "a damaged PEM boundary (\"-----\" "
		    "that starts no BEGIN line, or an END line without its "
		    "BEGIN)");
	if (only_b64 && alnum && b64 >= 40)
		return pem_fail(e, p, "base64 outside the PEM blocks (a "
		    "block that lost its BEGIN line?)");
	return 0;
}

/*
 * Take the next PEM block from [*pp, end), skipping white space and
 * explanatory text (pem_text_line).  Returns 1 and advances *pp past the
 * block, 0 when nothing but such text is left, -1 on anything else, with
 * *e saying where and what: text that is not explanatory, a malformed
 * marker, a mismatched END label, no END line, or a body that holds more
 * than base64 and white space (which also refuses RFC 1421 headers such as
 * "Proc-Type: 4,ENCRYPTED").
 */
static int
pem_next(const char **pp, const char *end, struct pem_block *b,
    struct pem_err *e)
{
	const char	*p = *pp, *q;

	for (;;) {
		while (p < end && is_space(*p))
			p++;
		if (p == end) {
			*pp = p;
			return 0;
		}
		if (has_prefix(p, end, PEM_BEGIN))
			break;
		if ((q = memchr(p, '\n', (size_t)(end - p))) == NULL)
			q = end;
		if (pem_text_line(p, q, e) != 0)
			return -1;
		p = q;
	}
	b->start = p;
	p += strlen(PEM_BEGIN);
	b->label = p;
	while (p < end && is_label_char(*p) && p - b->label <= PEM_LABEL_MAX)
		p++;
	b->label_len = p - b->label;
	if (b->label_len == 0 || !has_prefix(p, end, PEM_DASHES))
		return pem_fail(e, b->start, "a malformed BEGIN line");
	p += strlen(PEM_DASHES);

	/* The BEGIN marker ends its line. */
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	if (p == end || *p != '\n')
		return pem_fail(e, p, "text after the BEGIN marker on its line");

	/* Body: base64 and white space up to the END marker. */
	b->body = p;
	for (; p < end; p++) {
		if (*p == '-' && has_prefix(p, end, PEM_END))
			break;
		if (*p == '-' && has_prefix(p, end, PEM_BEGIN))
			return pem_fail(e, b->start, "a block without its END "
			    "line (the next BEGIN line comes first)");
		if (!is_base64(*p) && !is_space(*p))
			return pem_fail(e, p, "a block's body holds more than "
			    "base64 (headers such as Proc-Type, or text)");
	}
	if (p == end)
		return pem_fail(e, b->start, "a block without its END line");
	b->body_len = p - b->body;
	q = p + strlen(PEM_END);
	if ((size_t)(end - q) < b->label_len ||
	    memcmp(q, b->label, b->label_len) != 0 ||
	    !has_prefix(q + b->label_len, end, PEM_DASHES))
		return pem_fail(e, p, "the END line does not match the BEGIN "
		    "line");
	q += b->label_len + strlen(PEM_DASHES);
	if (q < end && !is_space(*q))
		return pem_fail(e, q, "text after the END marker on its line");
	b->len = q - b->start;
	*pp = q;
	return 1;
}

static int
label_is(const struct pem_block *b, const char *label)
{
	return b->label_len == strlen(label) &&
	    memcmp(b->label, label, b->label_len) == 0;
}

/*
 * Where the blocks of a field's text of len bytes (at most max) may start:
 * past a UTF-8 byte order mark, as Windows editors save text.  NULL, with
 * why, when the text is empty or too long.
 */
static const char *
pem_start(const char *text, size_t len, size_t max, char *why, size_t whylen)
{
	if (text == NULL || len == 0) {
		util_fmt(why, whylen, "is empty");
		return NULL;
	}
	if (len > max) {
		util_fmt(why, whylen, "must be at most %zu bytes", max);
		return NULL;
	}
	return has_prefix(text, text + len, "\xef\xbb\xbf") ? text + 3 : text;
}

static int
label_is_key(const struct pem_block *b)
{
	static const char	 suffix[] = "PRIVATE KEY";
	size_t			 n = sizeof(suffix) - 1;

	return b->label_len >= n &&
	    memcmp(b->label + b->label_len - n, suffix, n) == 0;
}

int
pem_chain_blocks(const char *text, size_t len, struct pem_block *v,
    unsigned *n, char *why, size_t whylen)
{
	struct pem_err		 e = { text, NULL, NULL };
	struct pem_block	 b;
	const char		*p, *end;
	int			 r;

	*n = 0;
	if ((p = pem_start(text, len, CERTD_CERT_MAX, why, whylen)) == NULL)
		return CERTD_ERR_CERT_INVALID;
	end = text + len;
	while ((r = pem_next(&p, end, &b, &e)) == 1) {
		if (!label_is(&b, "CERTIFICATE")) {
			e.at = b.start;
			util_fmt(why, whylen, "line %u: block %u is %.*s, not "
			    "CERTIFICATE%s", pem_line(&e), *n + 1,
			    (int)b.label_len, b.label, label_is_key(&b) ?
			    " (a private key goes in private_key)" : "");
			return CERTD_ERR_CERT_INVALID;
		}
		if (*n == CERTD_CHAIN_MAX) {
			util_fmt(why, whylen, "holds more than %d certificates",
			    CERTD_CHAIN_MAX);
			return CERTD_ERR_CERT_INVALID;
		}
		v[(*n)++] = b;
	}
	if (r < 0) {
		util_fmt(why, whylen, "line %u: %s", pem_line(&e), e.what);
		return CERTD_ERR_CERT_INVALID;
	}
	if (*n == 0) {
		util_fmt(why, whylen, "holds no PEM block "
		    "(-----BEGIN CERTIFICATE-----)");
		return CERTD_ERR_CERT_INVALID;
	}
	return 0;
}

int
pem_key_block(const char *text, size_t len, struct pem_block *b, char *why,
    size_t whylen)
{
	struct pem_err		 e = { text, NULL, NULL };
	struct pem_block	 extra;
	const char		*p, *end;
	int			 r;

	if ((p = pem_start(text, len, CERTD_KEY_MAX, why, whylen)) == NULL)
		return CERTD_ERR_KEY_INVALID;
	end = text + len;
	if ((r = pem_next(&p, end, b, &e)) == 1 &&
	    label_is(b, "EC PARAMETERS") &&
	    ((r = pem_next(&p, end, b, &e)) == 0 ||
	    (r == 1 && !label_is(b, "EC PRIVATE KEY")))) {
		util_fmt(why, whylen, "an EC PARAMETERS block must be followed "
		    "by an EC PRIVATE KEY block");
		return CERTD_ERR_KEY_INVALID;
	}
	if (r == 0) {
		util_fmt(why, whylen, "holds no PEM block "
		    "(-----BEGIN PRIVATE KEY-----)");
		return CERTD_ERR_KEY_INVALID;
	}
	if (r == 1 && (r = pem_next(&p, end, &extra, &e)) == 1) {
		e.at = extra.start;
		util_fmt(why, whylen, "line %u: a second block (%.*s): give "
		    "exactly one private key", pem_line(&e),
		    (int)extra.label_len, extra.label);
		return CERTD_ERR_KEY_INVALID;
	}
	if (r < 0) {
		util_fmt(why, whylen, "line %u: %s", pem_line(&e), e.what);
		return CERTD_ERR_KEY_INVALID;
	}
	if (label_is(b, "ENCRYPTED PRIVATE KEY")) {
		util_fmt(why, whylen, "is encrypted: certd takes unencrypted "
		    "keys (openssl pkey -in KEY -out PLAIN)");
		return CERTD_ERR_KEY_INVALID;
	}
	if (!label_is(b, "RSA PRIVATE KEY") &&
	    !label_is(b, "EC PRIVATE KEY") && !label_is(b, "PRIVATE KEY")) {
		util_fmt(why, whylen,
		    "is a %.*s block, not RSA PRIVATE KEY, EC "
		    "PRIVATE KEY or PRIVATE KEY", (int)b->label_len, b->label);
		return CERTD_ERR_KEY_INVALID;
	}
	return 0;
}

/*
 * Normal form, written or only measured (buf NULL), noting whether it is
 * the original text byte for byte.
 */
struct pem_out {
	char		*buf;
	size_t		 len;
	const char	*orig;
	size_t		 orig_len;
	int		 same;
};

static void
out_put(struct pem_out *o, const char *s, size_t n)
{
	if (o->same && (o->len + n > o->orig_len ||
	    memcmp(o->orig + o->len, s, n) != 0))
		o->same = 0;
	if (o->buf != NULL)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* One block: its markers on lines of their own, base64 in lines of 64. */
static void
out_block(struct pem_out *o, const struct pem_block *b)
{
	const char	*p = b->body, *end = b->body + b->body_len, *q;
	char		 line[65];
	size_t		 k, n = 0;

	out_put(o, PEM_BEGIN, strlen(PEM_BEGIN));
	out_put(o, b->label, b->label_len);
	out_put(o, PEM_DASHES "\n", strlen(PEM_DASHES) + 1);
	while (p < end) {
		if (is_space(*p)) {
			p++;
			continue;
		}
		for (q = p + 1; q < end && !is_space(*q); q++)
			;
		for (; p < q; p += k) {		/* the run [p, q) */
			k = (size_t)(q - p) < 64 - n ? (size_t)(q - p) : 64 - n;
			memcpy(line + n, p, k);
			if ((n += k) == 64) {
				line[n++] = '\n';
				out_put(o, line, n);
				n = 0;
			}
		}
	}
	if (n > 0) {
		line[n++] = '\n';
		out_put(o, line, n);
	}
	util_wipe(line, sizeof(line));	/* it may have held key text */
	out_put(o, PEM_END, strlen(PEM_END));
	out_put(o, b->label, b->label_len);
	out_put(o, PEM_DASHES "\n", strlen(PEM_DASHES) + 1);
}

int
pem_normalize(const char *text, size_t len, int kind, char **out,
    size_t *outlen, char *why, size_t whylen)
{
	struct pem_block	 v[CERTD_CHAIN_MAX];
	struct pem_out		 o;
	unsigned		 n = 1, i;
	size_t			 max;
	int			 rv, bad;

	*out = NULL;
	*outlen = 0;
	util_fmt(why, whylen, "%s", "");
	memset(v, 0, sizeof(v));
	if (kind == PEM_KEY) {
		bad = CERTD_ERR_KEY_INVALID;
		max = CERTD_KEY_MAX;
		rv = pem_key_block(text, len, &v[0], why, whylen);
	} else {
		bad = CERTD_ERR_CERT_INVALID;
		max = CERTD_CERT_MAX;
		rv = pem_chain_blocks(text, len, v, &n, why, whylen);
	}
	if (rv != 0)
		return rv;
	memset(&o, 0, sizeof(o));
	o.orig = text;
	o.orig_len = len;
	o.same = 1;
	for (i = 0; i < n; i++)
		out_block(&o, &v[i]);
	if (o.same && o.len == len)
		return 0;		/* normal already: use the text */
	if (o.len > max) {
		util_fmt(why, whylen,
		    "is %zu bytes once normalized (the blocks "
		    "only, base64 in lines of 64), over %zu", o.len, max);
		return bad;
	}
	if ((o.buf = malloc(o.len + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	o.len = 0;
	o.same = 0;
	for (i = 0; i < n; i++)
		out_block(&o, &v[i]);
	o.buf[o.len] = '\0';
	*out = o.buf;
	*outlen = o.len;
	return 0;
}

