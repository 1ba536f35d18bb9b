/* SPDX-License-Identifier: MIT */
/*
 * JSON in and out, on yajl: the one module that calls it.
 *
 * In: a request body is one JSON text, strict RFC 8259 (yajl's lexer and
 * parser), and also refused here for what yajl lets through: bytes that
 * are not UTF-8 (overlong forms, surrogates, above U+10FFFF), \u escapes
 * that are not a well-formed surrogate pair, \u0000, a key twice in one
 * object (at any depth), nesting deeper than JSON_DEPTH_MAX, integers
 * outside int64 (yajl: "integer overflow").  What is kept is the top-level
 * object's members; nested values are checked and then only typed.
 *
 * Out: a writer that appends compact JSON to a buffer (yajl_gen), keys in
 * call order, strings checked for UTF-8.  A failed call is remembered and
 * reported by json_w_done.  Every call takes a NULL writer (json_w_new
 * without memory) and does nothing; json_w_done reports it.
 *
 * Key text passes through both: every buffer yajl allocates for them is
 * wiped when freed, and so is what json_body keeps.
 */
#ifndef CERTD_JSON_H
#define CERTD_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX	512

enum json_kind {
	JSON_NULL,
	JSON_BOOL,	/* i: 0 or 1 */
	JSON_INT,	/* i */
	JSON_REAL,	/* a number with a fraction or an exponent */
	JSON_STRING,	/* s, len: NUL-terminated, no NUL inside */
	JSON_OBJECT,
	JSON_ARRAY,
};

struct json_member {
	const char	*key;		/* NUL-terminated */
	enum json_kind	 kind;
	const char	*s;
	size_t		 len;
	int64_t		 i;
};

struct json_body {
	struct json_member	*members;	/* in body order */
	size_t			 n;
	char			*text;		/* keys and strings */
	size_t			 text_len;
};

/*
 * Parse len bytes of data, which must be a JSON object, into *b (free it
 * with json_body_free, also after a failure).  Returns 0; CERTD_ERR_NOMEM;
 * or CERTD_ERR_BAD_REQUEST with why set to "is not valid JSON: WHAT (line
 * L, column C)" or "must be a JSON object".
 */
int	json_body_parse(const char *data, size_t len, struct json_body *b,
	    char *why, size_t whylen);
/* The member named key, or NULL. */
const struct json_member *json_body_get(const struct json_body *b,
	    const char *key);
/* Wipe and free what b holds; b may be zeroed or half-made. */
void	json_body_free(struct json_body *b);

/* Whether len bytes at s are well-formed UTF-8 (RFC 3629). */
int	json_utf8_ok(const char *s, size_t len);

struct json_w;
/* A writer, or NULL without memory. */
struct json_w	*json_w_new(void);
void		 json_w_free(struct json_w *w);
void		 json_w_obj(struct json_w *w);
void		 json_w_obj_end(struct json_w *w);
void		 json_w_arr(struct json_w *w);
void		 json_w_arr_end(struct json_w *w);
void		 json_w_key(struct json_w *w, const char *key);
/* A string; NULL writes null. */
void		 json_w_str(struct json_w *w, const char *s);
void		 json_w_strn(struct json_w *w, const char *s, size_t len);
void		 json_w_int(struct json_w *w, int64_t v);
void		 json_w_uint(struct json_w *w, uint64_t v);
void		 json_w_bool(struct json_w *w, int v);
void		 json_w_null(struct json_w *w);
/* A member: json_w_key, then the value. */
void		 json_w_kstr(struct json_w *w, const char *key, const char *s);
void		 json_w_kint(struct json_w *w, const char *key, int64_t v);
void		 json_w_kuint(struct json_w *w, const char *key, uint64_t v);
void		 json_w_kbool(struct json_w *w, const char *key, int v);
/*
 * The text written so far, in *buf and *len (valid until the next call on
 * w).  Returns 0, or CERTD_ERR_NOMEM (w NULL) or CERTD_ERR_INTERNAL when
 * a call failed (no memory; a string that is not UTF-8, a key where a
 * value was due): nothing of it may be sent.
 */
int		 json_w_done(struct json_w *w, const char **buf, size_t *len);

/*
 * A reply of a peer certd talks to (etcd's JSON gateway): parsed whole
 * into a tree (yajl_tree), read by path.  Not for client input: the
 * request checks above are json_body's.  Values are borrowed from the
 * tree.
 */
struct json_tree;
/* len bytes of data as a tree, or NULL with the reason in why. */
struct json_tree *json_tree_parse(const char *data, size_t len, char *why,
	    size_t whylen);
void		 json_tree_free(struct json_tree *t);
/* Member key of object v, or NULL (v NULL or not an object: NULL too). */
const struct json_tree *json_tree_get(const struct json_tree *v,
	    const char *key);
/* Elements of array v (0 when v is NULL or not an array), and one of them. */
size_t		 json_tree_len(const struct json_tree *v);
const struct json_tree *json_tree_at(const struct json_tree *v, size_t i);
/* String v, or NULL. */
const char	*json_tree_str(const struct json_tree *v);
/* v is true. */
int		 json_tree_true(const struct json_tree *v);
/*
 * Unsigned integer v, a number or a string of digits (etcd writes 64-bit
 * integers as strings) into *out: 0, or -1 when v is anything else.
 */
int		 json_tree_u64(const struct json_tree *v, uint64_t *out);

#endif
