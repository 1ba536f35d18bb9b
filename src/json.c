/* SPDX-License-Identifier: MIT */
/*
 * JSON in and out on yajl (json.h).  yajl was chosen by measurement
 * (tests/bench/jsonbench.c, doc/performance.md): its event parser reads a
 * PUT body about seven times faster than jansson, and it is the only
 * Debian C library measured that lexes strictly (jansson aside).  What it
 * lets through is checked here, before and while it parses:
 *
 * - before: the whole text is well-formed UTF-8 (RFC 3629; yajl only looks
 *   at the shape of a sequence), and every \u escape of a surrogate is one
 *   half of a pair (yajl turns a lone high half into '?', and a high half
 *   followed by any \u escape into some other code point);
 * - while: its events build the top-level members, refuse \u0000 and keys
 *   seen twice in one object (each object's keys are sorted when it
 *   closes), and bound the depth.
 *
 * The raw scans need no string context: outside strings a valid text has
 * no backslash, and inside one a backslash always starts a two-character
 * escape or a \uXXXX.  On text that is not valid, they may speak first;
 * the answer is the same 400.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "certd/constants.h"
#include "json.h"
#include "util.h"

/* --- yajl's memory, wiped when freed -------------------------------- */

union wipe_hdr {
	size_t		size;
	max_align_t	align;
};

static void *
wipe_malloc(void *ctx, size_t size)
{
	union wipe_hdr	*h;

	(void)ctx;
	if (size > SIZE_MAX - sizeof(*h) ||
	    (h = malloc(sizeof(*h) + size)) == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

static void
wipe_free(void *ctx, void *p)
{
	union wipe_hdr	*h;

	(void)ctx;
	if (p == NULL)
		return;
	h = (union wipe_hdr *)p - 1;
	util_wipe(p, h->size);
	free(h);
}

static void *
wipe_realloc(void *ctx, void *p, size_t size)
{
	size_t	 old;
	void	*n;

	if ((n = wipe_malloc(ctx, size)) == NULL || p == NULL)
		return n;
	old = ((union wipe_hdr *)p - 1)->size;
	memcpy(n, p, old < size ? old : size);
	wipe_free(ctx, p);
	return n;
}

static yajl_alloc_funcs wipe_funcs = {
	wipe_malloc, wipe_realloc, wipe_free, NULL
};

/* --- what yajl lets through, on the raw text ------------------------- */

/* The offset of the first byte that is not well-formed UTF-8, or len. */
static size_t
utf8_bad(const unsigned char *p, size_t len)
{
	uint64_t	w;
	uint32_t	cp, min;
	size_t		i = 0, n, k;

	while (i < len) {
		if (len - i >= 8) {		/* ASCII, eight bytes at a time */
			memcpy(&w, p + i, 8);
			if ((w & 0x8080808080808080ULL) == 0) {
				i += 8;
				continue;
			}
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 1, cp = p[i] & 0x1f, min = 0x80;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			n = 2, cp = p[i] & 0x0f, min = 0x800;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			n = 3, cp = p[i] & 0x07, min = 0x10000;
		else
			return i;
		if (len - i <= n)
			return i;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

int
json_utf8_ok(const char *s, size_t len)
{
	return utf8_bad((const unsigned char *)s, len) == len;
}

/* The four hex digits at p (end bounds them), or -1. */
static long
hex4(const char *p, const char *end)
{
	long	v = 0;
	int	i, d;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			d = (p[i] | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* The offset of the first \u escape of half a surrogate pair, or len. */
static size_t
escape_bad(const char *p, size_t len)
{
	const char	*q = p, *end = p + len, *bs;
	long		 v, lo;

	while ((bs = memchr(q, '\\', (size_t)(end - q))) != NULL) {
		if (end - bs < 2)
			break;			/* yajl tells */
		if (bs[1] != 'u') {
			q = bs + 2;
			continue;
		}
		q = bs + 6;
		if ((v = hex4(bs + 2, end)) < 0)
			break;			/* yajl tells */
		if (v >= 0xdc00 && v <= 0xdfff)
			return (size_t)(bs - p);
		if (v < 0xd800 || v > 0xdbff)
			continue;
		if (end - bs < 12 || bs[6] != '\\' || bs[7] != 'u' ||
		    (lo = hex4(bs + 8, end)) < 0xdc00 || lo > 0xdfff)
			return (size_t)(bs - p);
		q = bs + 12;
	}
	return len;
}

/* --- the event parser ------------------------------------------------- */

struct key {
	const char	*s;
	size_t		 len;
	size_t		 at;		/* offset in the text, after it */
};

struct frame {
	size_t		 first_key;	/* SIZE_MAX: an array */
	size_t		 keys_used;	/* of keys_text, when it opened */
};

struct parse {
	yajl_handle		 h;
	struct json_body	*b;
	size_t			 cap;		/* of b->members */
	struct key		*keys;		/* of the open objects */
	size_t			 n_keys, keys_cap;
	char			*keys_text;	/* len + 1: keys never outgrow
						   the text they come from */
	size_t			 keys_used;
	struct frame		 frame[JSON_DEPTH_MAX];
	size_t			 depth;
	int			 top;		/* enum json_kind, or -1 */
	const char		*err;		/* why we stopped yajl */
	size_t			 err_at;
	int			 nomem;
};

static int
parse_fail(struct parse *p, const char *err)
{
	p->err = err;
	p->err_at = yajl_get_bytes_consumed(p->h);
	return 0;
}

/* A copy of s into b->text (len + 1 bytes: never outgrown). */
static const char *
body_copy(struct json_body *b, const unsigned char *s, size_t len)
{
	char	*c = b->text + b->text_len;

	memcpy(c, s, len);
	c[len] = '\0';
	b->text_len += len + 1;
	return c;
}

/*
 * A value starts: at the top, its kind; as a member of the top-level
 * object, the member's.  Returns that member, or NULL.
 */
static struct json_member *
value(struct parse *p, enum json_kind kind)
{
	struct json_member	*m;

	if (p->depth == 0)
		p->top = (int)kind;
	if (p->depth != 1 || p->top != JSON_OBJECT || p->b->n == 0)
		return NULL;
	m = &p->b->members[p->b->n - 1];
	m->kind = kind;
	return m;
}

static int
on_null(void *ctx)
{
	value(ctx, JSON_NULL);
	return 1;
}

static int
on_bool(void *ctx, int v)
{
	struct json_member	*m = value(ctx, JSON_BOOL);

	if (m != NULL)
		m->i = v != 0;
	return 1;
}

/*
 * A number, from its text (yajl has checked its grammar): an integer must
 * fit int64 (yajl's own integer event refuses INT64_MIN), a real a finite
 * double.  strtod reads '.' as the C locale does: certd never sets
 * LC_NUMERIC, and certctl sets LC_CTYPE only.
 */
static int
on_number(void *ctx, const char *s, size_t len)
{
	struct parse		*p = ctx;
	struct json_member	*m;
	char			 small[64], *t = small, *end;
	int			 real = memchr(s, '.', len) != NULL ||
				    memchr(s, 'e', len) != NULL ||
				    memchr(s, 'E', len) != NULL;
	long long		 i = 0;
	double			 d = 0;

	if (len >= sizeof(small) && (t = malloc(len + 1)) == NULL) {
		p->nomem = 1;
		return 0;
	}
	memcpy(t, s, len);
	t[len] = '\0';
	errno = 0;
	if (real)
		d = strtod(t, &end);
	else
		i = strtoll(t, &end, 10);
	if (t != small)
		free(t);
	if (errno == ERANGE && (!real || d != 0))
		return parse_fail(p, real ? "number out of range" :
		    "integer overflow");
	if ((m = value(p, real ? JSON_REAL : JSON_INT)) != NULL)
		m->i = i;
	return 1;
}

static int
on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct parse		*p = ctx;
	struct json_member	*m;

	if (len > 0 && memchr(s, '\0', len) != NULL)
		return parse_fail(p, "\\u0000 is not allowed");
	if ((m = value(p, JSON_STRING)) != NULL) {
		m->s = body_copy(p->b, s, len);
		m->len = len;
	}
	return 1;
}

static int
open_frame(struct parse *p, enum json_kind kind)
{
	struct frame	*f;

	value(p, kind);
	if (p->depth == JSON_DEPTH_MAX)
		return parse_fail(p, "nested too deeply");
	f = &p->frame[p->depth++];
	f->first_key = kind == JSON_OBJECT ? p->n_keys : SIZE_MAX;
	f->keys_used = p->keys_used;
	return 1;
}

static int
on_start_map(void *ctx)
{
	return open_frame(ctx, JSON_OBJECT);
}

static int
on_start_array(void *ctx)
{
	return open_frame(ctx, JSON_ARRAY);
}

static int
on_key(void *ctx, const unsigned char *s, size_t len)
{
	struct parse		*p = ctx;
	struct json_member	*m;
	struct key		*k;
	size_t			 cap;

	if (len > 0 && memchr(s, '\0', len) != NULL)
		return parse_fail(p, "\\u0000 is not allowed");
	if (p->n_keys == p->keys_cap) {
		cap = p->keys_cap == 0 ? 16 : p->keys_cap * 2;
		if ((k = reallocarray(p->keys, cap, sizeof(*k))) == NULL) {
			p->nomem = 1;
			return 0;
		}
		p->keys = k;
		p->keys_cap = cap;
	}
	k = &p->keys[p->n_keys++];
	k->s = p->keys_text + p->keys_used;
	k->len = len;
	k->at = yajl_get_bytes_consumed(p->h);
	memcpy(p->keys_text + p->keys_used, s, len);
	p->keys_used += len;
	if (p->depth != 1)
		return 1;
	if (p->b->n == p->cap) {
		cap = p->cap == 0 ? 8 : p->cap * 2;
		if ((m = reallocarray(p->b->members, cap, sizeof(*m))) == NULL) {
			p->nomem = 1;
			return 0;
		}
		p->b->members = m;
		p->cap = cap;
	}
	m = &p->b->members[p->b->n++];
	memset(m, 0, sizeof(*m));
	m->key = body_copy(p->b, s, len);
	return 1;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct key	*x = a, *y = b;
	int			 c;

	c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	if (c != 0 || x->len == y->len)
		return c != 0 ? c : (x->at > y->at) - (x->at < y->at);
	return x->len < y->len ? -1 : 1;
}

/* The object closes: no key twice; its keys leave the stack. */
static int
on_end_map(void *ctx)
{
	struct parse	*p = ctx;
	struct frame	*f = &p->frame[--p->depth];
	struct key	*k = p->keys + f->first_key;
	size_t		 n = p->n_keys - f->first_key, i;

	if (n > 1)
		qsort(k, n, sizeof(*k), key_cmp);
	for (i = 1; i < n; i++)
		if (k[i].len == k[i - 1].len &&
		    memcmp(k[i].s, k[i - 1].s, k[i].len) == 0) {
			p->err = "duplicate object key";
			p->err_at = k[i].at;
			return 0;
		}
	p->n_keys = f->first_key;
	p->keys_used = f->keys_used;
	return 1;
}

static int
on_end_array(void *ctx)
{
	((struct parse *)ctx)->depth--;
	return 1;
}

static const yajl_callbacks parse_events = {
	on_null, on_bool, NULL, NULL, on_number, on_string, on_start_map,
	on_key, on_end_map, on_start_array, on_end_array
};

/* "is not valid JSON: WHAT (line L, column C)", at byte offset at. */
static void
invalid(const char *data, size_t len, size_t at, const char *what,
    char *why, size_t whylen)
{
	size_t	i, line = 1, col = 1;

	for (i = 0; i < at && i < len; i++, col++)
		if (data[i] == '\n')
			line++, col = 0;
	util_fmt(why, whylen, "is not valid JSON: %s (line %zu, column %zu)",
	    what, line, col);
}

/*
 * yajl's own error, without its trailing new line; at the end of the text
 * when the text ended too soon (at_end).
 */
static void
yajl_why(struct parse *p, const char *data, size_t len, int at_end,
    char *why, size_t whylen)
{
	unsigned char	*e;
	char		 what[128];
	size_t		 n;

	e = yajl_get_error(p->h, 0, (const unsigned char *)data, len);
	util_fmt(what, sizeof(what), "%s", e != NULL ? (char *)e : "?");
	if (e != NULL)
		yajl_free_error(p->h, e);
	n = strlen(what);
	while (n > 0 && (what[n - 1] == '\n' || what[n - 1] == ' '))
		what[--n] = '\0';
	invalid(data, len, at_end ? len : yajl_get_bytes_consumed(p->h), what,
	    why, whylen);
}

static int
parse_run(struct parse *p, const char *data, size_t len, char *why,
    size_t whylen)
{
	yajl_status	st;
	int		at_end = 0;

	p->h = yajl_alloc(&parse_events, &wipe_funcs, p);
	if (p->h == NULL ||
	    !yajl_config(p->h, yajl_dont_validate_strings, 1))
		return CERTD_ERR_NOMEM;
	st = yajl_parse(p->h, (const unsigned char *)data, len);
	if (st == yajl_status_ok) {
		st = yajl_complete_parse(p->h);
		at_end = 1;
	}
	if (p->nomem)
		return CERTD_ERR_NOMEM;
	if (p->err != NULL)
		invalid(data, len, p->err_at, p->err, why, whylen);
	else if (st != yajl_status_ok)
		yajl_why(p, data, len, at_end, why, whylen);
	else if (p->top != JSON_OBJECT)
		util_fmt(why, whylen, "must be a JSON object");
	else
		return 0;
	return CERTD_ERR_BAD_REQUEST;
}

int
json_body_parse(const char *data, size_t len, struct json_body *b,
    char *why, size_t whylen)
{
	struct parse	p;
	size_t		at;
	int		rv;

	memset(b, 0, sizeof(*b));
	if ((at = utf8_bad((const unsigned char *)data, len)) != len) {
		invalid(data, len, at, "invalid UTF-8", why, whylen);
		return CERTD_ERR_BAD_REQUEST;
	}
	if ((at = escape_bad(data, len)) != len) {
		invalid(data, len, at, "a \\u escape of half a surrogate pair",
		    why, whylen);
		return CERTD_ERR_BAD_REQUEST;
	}
	memset(&p, 0, sizeof(p));
	p.b = b;
	p.top = -1;
	if ((b->text = malloc(len + 1)) == NULL ||
	    (p.keys_text = malloc(len + 1)) == NULL) {
		free(b->text);
		b->text = NULL;
		return CERTD_ERR_NOMEM;
	}
	rv = parse_run(&p, data, len, why, whylen);
	if (p.h != NULL)
		yajl_free(p.h);
	util_wipe(p.keys_text, p.keys_used);
	free(p.keys_text);
	free(p.keys);
	return rv;
}

const struct json_member *
json_body_get(const struct json_body *b, const char *key)
{
	size_t	i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->members[i].key, key) == 0)
			return &b->members[i];
	return NULL;
}

void
json_body_free(struct json_body *b)
{
	if (b->text != NULL)
		util_wipe(b->text, b->text_len);
	free(b->text);
	free(b->members);
	memset(b, 0, sizeof(*b));
}

/* --- the writer -------------------------------------------------------- */

/*
 * The writer keeps its own account of the grammar (yajl_gen writes a key
 * where a value is due, and closes what is not open): the containers open,
 * whether a key is due in the innermost, and whether the one top-level
 * value is whole.
 */
struct json_w {
	yajl_gen	g;
	int		err;
	size_t		depth;
	unsigned char	obj[JSON_DEPTH_MAX];	/* 1: an object */
	int		key_due;
	int		whole;
};

struct json_w *
json_w_new(void)
{
	struct json_w	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((w->g = yajl_gen_alloc(&wipe_funcs)) == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void
json_w_free(struct json_w *w)
{
	if (w == NULL)
		return;
	yajl_gen_free(w->g);
	free(w);
}

/* Remember the first failure; 0 when w can go on. */
static int
w_fail(struct json_w *w)
{
	if (w->err == 0)
		w->err = CERTD_ERR_INTERNAL;
	return -1;
}

/* A value may start here: 0, or -1 (w failed). */
static int
w_value(struct json_w *w)
{
	if (w->err != 0 || w->whole ||
	    (w->depth > 0 && w->obj[w->depth - 1] && w->key_due))
		return w_fail(w);
	return 0;
}

/* A value is whole: a key is due next in an object; the top is done. */
static void
w_done(struct json_w *w, yajl_gen_status st)
{
	if (st != yajl_gen_status_ok) {
		w_fail(w);
		return;
	}
	if (w->depth == 0)
		w->whole = 1;
	else
		w->key_due = w->obj[w->depth - 1];
}

static void
w_open(struct json_w *w, int obj)
{
	yajl_gen_status	st;

	if (w == NULL || w_value(w) != 0)
		return;
	if (w->depth == JSON_DEPTH_MAX) {
		w_fail(w);
		return;
	}
	st = obj ? yajl_gen_map_open(w->g) : yajl_gen_array_open(w->g);
	if (st != yajl_gen_status_ok) {
		w_fail(w);
		return;
	}
	w->obj[w->depth++] = (unsigned char)obj;
	w->key_due = obj;
}

static void
w_close(struct json_w *w, int obj)
{
	if (w == NULL || w->err != 0)
		return;
	if (w->depth == 0 || w->obj[w->depth - 1] != obj ||
	    (obj && !w->key_due)) {
		w_fail(w);
		return;
	}
	w->depth--;
	w_done(w, obj ? yajl_gen_map_close(w->g) :
	    yajl_gen_array_close(w->g));
}

void
json_w_obj(struct json_w *w)
{
	w_open(w, 1);
}

void
json_w_obj_end(struct json_w *w)
{
	w_close(w, 1);
}

void
json_w_arr(struct json_w *w)
{
	w_open(w, 0);
}

void
json_w_arr_end(struct json_w *w)
{
	w_close(w, 0);
}

/* s as a JSON string, if it is UTF-8 (the parser's own check). */
static yajl_gen_status
w_string(struct json_w *w, const char *s, size_t len)
{
	if (utf8_bad((const unsigned char *)s, len) != len)
		return yajl_gen_invalid_string;
	return yajl_gen_string(w->g, (const unsigned char *)s, len);
}

void
json_w_key(struct json_w *w, const char *key)
{
	if (w == NULL || w->err != 0)
		return;
	if (w->depth == 0 || !w->obj[w->depth - 1] || !w->key_due ||
	    w_string(w, key, strlen(key)) != yajl_gen_status_ok) {
		w_fail(w);
		return;
	}
	w->key_due = 0;
}

void
json_w_strn(struct json_w *w, const char *s, size_t len)
{
	if (w != NULL && w_value(w) == 0)
		w_done(w, w_string(w, s, len));
}

void
json_w_str(struct json_w *w, const char *s)
{
	if (s == NULL)
		json_w_null(w);
	else
		json_w_strn(w, s, strlen(s));
}

void
json_w_int(struct json_w *w, int64_t v)
{
	if (w != NULL && w_value(w) == 0)
		w_done(w, yajl_gen_integer(w->g, (long long)v));
}

/* Every uint64 exact: JSON's integers have no bound of their own. */
void
json_w_uint(struct json_w *w, uint64_t v)
{
	char	buf[24];
	int	n;

	n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	if (w != NULL && w_value(w) == 0)
		w_done(w, yajl_gen_number(w->g, buf, (size_t)n));
}

void
json_w_bool(struct json_w *w, int v)
{
	if (w != NULL && w_value(w) == 0)
		w_done(w, yajl_gen_bool(w->g, v != 0));
}

void
json_w_null(struct json_w *w)
{
	if (w != NULL && w_value(w) == 0)
		w_done(w, yajl_gen_null(w->g));
}

void
json_w_kstr(struct json_w *w, const char *key, const char *s)
{
	json_w_key(w, key);
	json_w_str(w, s);
}

void
json_w_kint(struct json_w *w, const char *key, int64_t v)
{
	json_w_key(w, key);
	json_w_int(w, v);
}

void
json_w_kuint(struct json_w *w, const char *key, uint64_t v)
{
	json_w_key(w, key);
	json_w_uint(w, v);
}

void
json_w_kbool(struct json_w *w, const char *key, int v)
{
	json_w_key(w, key);
	json_w_bool(w, v);
}

int
json_w_done(struct json_w *w, const char **buf, size_t *len)
{
	const unsigned char	*b;

	*buf = NULL;
	*len = 0;
	if (w == NULL)
		return CERTD_ERR_NOMEM;
	if (w->err == 0 && (!w->whole ||
	    yajl_gen_get_buf(w->g, &b, len) != yajl_gen_status_ok))
		w_fail(w);
	if (w->err != 0) {
		*len = 0;
		return w->err;
	}
	*buf = (const char *)b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Trees: a peer's replies                                             */

/* The tree is yajl's: struct json_tree is never defined, only cast. */
#define TREE(v)		((yajl_val)(uintptr_t)(v))

struct json_tree *
json_tree_parse(const char *data, size_t len, char *why, size_t whylen)
{
	yajl_val	 v;
	char		*text, err[160];

	if ((text = malloc(len + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	memcpy(text, data, len);
	text[len] = '\0';
	err[0] = '\0';
	v = yajl_tree_parse(text, err, sizeof(err));
	free(text);
	if (v == NULL)
		snprintf(why, whylen, "is not valid JSON: %s", err[0] != '\0' ?
		    err : "?");
	return (struct json_tree *)(void *)v;
}

void
json_tree_free(struct json_tree *t)
{
	yajl_tree_free(TREE(t));
}

const struct json_tree *
json_tree_get(const struct json_tree *v, const char *key)
{
	yajl_val	o = TREE(v);
	size_t		i;

	if (o == NULL || !YAJL_IS_OBJECT(o))
		return NULL;
	for (i = 0; i < o->u.object.len; i++)
		if (strcmp(o->u.object.keys[i], key) == 0)
			return (const struct json_tree *)(void *)
			    o->u.object.values[i];
	return NULL;
}

size_t
json_tree_len(const struct json_tree *v)
{
	yajl_val	a = TREE(v);

	return a != NULL && YAJL_IS_ARRAY(a) ? a->u.array.len : 0;
}

const struct json_tree *
json_tree_at(const struct json_tree *v, size_t i)
{
	yajl_val	a = TREE(v);

	return i < json_tree_len(v) ?
	    (const struct json_tree *)(void *)a->u.array.values[i] : NULL;
}

const char *
json_tree_str(const struct json_tree *v)
{
	yajl_val	s = TREE(v);

	return s != NULL && YAJL_IS_STRING(s) ? s->u.string : NULL;
}

int
json_tree_true(const struct json_tree *v)
{
	return v != NULL && YAJL_IS_TRUE(TREE(v));
}

int
json_tree_u64(const struct json_tree *v, uint64_t *out)
{
	yajl_val	 n = TREE(v);
	const char	*p;
	char		*end;

	if (n == NULL)
		return -1;
	if (YAJL_IS_INTEGER(n)) {
		if (YAJL_GET_INTEGER(n) < 0)
			return -1;
		*out = (uint64_t)YAJL_GET_INTEGER(n);
		return 0;
	}
	if (!YAJL_IS_STRING(n) || (p = n->u.string)[0] < '0' || p[0] > '9')
		return -1;
	errno = 0;
	*out = strtoull(p, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}
