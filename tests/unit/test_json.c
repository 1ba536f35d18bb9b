/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/json.c.  The body parser: what it keeps of a request
 * body (the top-level members, their kinds and values) and, case by case,
 * what it refuses beyond yajl's own lexer (bytes that are not UTF-8, half
 * surrogate pairs, \u0000, keys twice in one object, integers outside
 * int64, nesting past JSON_DEPTH_MAX) and with it (RFC 8259 syntax); each
 * refusal is CERTD_ERR_BAD_REQUEST with "is not valid JSON: ..." or "must
 * be a JSON object".  The writer: its exact bytes, and the calls that must
 * make json_w_done fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "certd/constants.h"
#include "json.h"

#define WHY_INVALID	"is not valid JSON:"
#define WHY_OBJECT	"must be a JSON object"

/* A JSON text, and its length when it holds a NUL byte (else 0). */
struct text {
	const char	*s;
	size_t		 len;
};

/* s as printable ASCII, for a failure message (one buffer: one use). */
static const char *
show(const char *s, size_t len)
{
	static char	out[512];
	size_t		i, o = 0;

	for (i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char	c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static size_t
text_len(const struct text *t)
{
	return t->len != 0 ? t->len : strlen(t->s);
}

/* Parse what must be accepted into *b (the caller frees it). */
static void
accept(const char *s, size_t len, struct json_body *b)
{
	char	why[256] = "";
	int	rv;

	rv = json_body_parse(s, len, b, why, sizeof(why));
	if (rv != 0) {
		json_body_free(b);
		fail_msg("%s: refused (%d, %s)", show(s, len), rv, why);
	}
}

/* What must be refused, with why "must be a JSON object" or not. */
static void
refuse(const char *s, size_t len, int not_object)
{
	struct json_body	b;
	char			why[256] = "";
	int			rv;

	rv = json_body_parse(s, len, &b, why, sizeof(why));
	json_body_free(&b);
	if (rv != CERTD_ERR_BAD_REQUEST)
		fail_msg("%s: returned %d, not CERTD_ERR_BAD_REQUEST (%s)",
		    show(s, len), rv, why);
	if (not_object ? strcmp(why, WHY_OBJECT) != 0 :
	    strncmp(why, WHY_INVALID, strlen(WHY_INVALID)) != 0)
		fail_msg("%s: why is \"%s\"", show(s, len), why);
}

static void
refuse_all(const struct text *t, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		refuse(t[i].s, text_len(&t[i]), 0);
}

/* The member key of b, which must be there. */
static const struct json_member *
member(const struct json_body *b, const char *key)
{
	const struct json_member	*m = json_body_get(b, key);

	if (m == NULL)
		fail_msg("no member %s", key);
	return m;
}

/* Accept a one-member object {"a":...} and return that member's string. */
static void
accept_a_string(const char *s, const char *want, size_t want_len)
{
	struct json_body		 b;
	const struct json_member	*m;

	accept(s, strlen(s), &b);
	assert_int_equal(b.n, 1);
	m = member(&b, "a");
	assert_int_equal(m->kind, JSON_STRING);
	assert_int_equal(m->len, want_len);
	assert_memory_equal(m->s, want, want_len);
	assert_int_equal(m->s[m->len], '\0');
	json_body_free(&b);
}

/* --- the body parser -------------------------------------------------- */

static void
test_body_objects(void **state)
{
	struct json_body	b;
	const char		*plain = "{\"alias\":\"web\",\"n\":1}";
	const char		*nested = " {\"o\":{\"x\":[1,{\"y\":2}],\"z\":{}},"
	    "\"a\":[1,[2,[]],{\"k\":\"v\"}],\"s\":\"t\"} ";

	(void)state;
	accept(plain, strlen(plain), &b);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.members[0].key, "alias");
	assert_string_equal(b.members[1].key, "n");
	assert_int_equal(member(&b, "alias")->kind, JSON_STRING);
	assert_string_equal(member(&b, "alias")->s, "web");
	assert_int_equal(member(&b, "n")->kind, JSON_INT);
	assert_int_equal(member(&b, "n")->i, 1);
	assert_null(json_body_get(&b, "nope"));
	json_body_free(&b);

	accept("{}", 2, &b);
	assert_int_equal(b.n, 0);
	assert_null(json_body_get(&b, "a"));
	json_body_free(&b);

	/* Nested values are kept only as their kind; their keys are not
	   members. */
	accept(nested, strlen(nested), &b);
	assert_int_equal(b.n, 3);
	assert_string_equal(b.members[0].key, "o");
	assert_string_equal(b.members[1].key, "a");
	assert_string_equal(b.members[2].key, "s");
	assert_int_equal(member(&b, "o")->kind, JSON_OBJECT);
	assert_int_equal(member(&b, "a")->kind, JSON_ARRAY);
	assert_int_equal(member(&b, "s")->kind, JSON_STRING);
	assert_string_equal(member(&b, "s")->s, "t");
	assert_null(json_body_get(&b, "x"));
	assert_null(json_body_get(&b, "y"));
	assert_null(json_body_get(&b, "k"));
	json_body_free(&b);
}

static void
test_body_kinds(void **state)
{
	struct json_body	b;
	const char		*s = "{\"n\":null,\"t\":true,\"f\":false,"
	    "\"i\":-42,\"z\":0,\"r\":1.5,\"e\":1e3,\"ne\":-2E-2,"
	    "\"s\":\"hi\",\"empty\":\"\"}";

	(void)state;
	accept(s, strlen(s), &b);
	assert_int_equal(b.n, 10);
	assert_int_equal(member(&b, "n")->kind, JSON_NULL);
	assert_int_equal(member(&b, "t")->kind, JSON_BOOL);
	assert_int_equal(member(&b, "t")->i, 1);
	assert_int_equal(member(&b, "f")->kind, JSON_BOOL);
	assert_int_equal(member(&b, "f")->i, 0);
	assert_int_equal(member(&b, "i")->kind, JSON_INT);
	assert_int_equal(member(&b, "i")->i, -42);
	assert_int_equal(member(&b, "z")->kind, JSON_INT);
	assert_int_equal(member(&b, "z")->i, 0);
	assert_int_equal(member(&b, "r")->kind, JSON_REAL);
	assert_int_equal(member(&b, "e")->kind, JSON_REAL);
	assert_int_equal(member(&b, "ne")->kind, JSON_REAL);
	assert_int_equal(member(&b, "s")->kind, JSON_STRING);
	assert_string_equal(member(&b, "s")->s, "hi");
	assert_int_equal(member(&b, "s")->len, 2);
	assert_int_equal(member(&b, "empty")->kind, JSON_STRING);
	assert_string_equal(member(&b, "empty")->s, "");
	assert_int_equal(member(&b, "empty")->len, 0);
	json_body_free(&b);
}

static void
test_body_int64_max(void **state)
{
	struct json_body	b;
	const char		*s = "{\"i\":9223372036854775807}";

	(void)state;
	accept(s, strlen(s), &b);
	assert_int_equal(member(&b, "i")->kind, JSON_INT);
	assert_true(member(&b, "i")->i == INT64_MAX);
	json_body_free(&b);
}

/*
 * INT64_MIN is inside int64.  yajl 2.1's own integer event accumulates the
 * magnitude in a positive long long and calls it an overflow; json.c reads
 * numbers from their text instead.
 */
static void
test_body_int64_min(void **state)
{
	struct json_body	b;
	const char		*s = "{\"i\":-9223372036854775808}";

	(void)state;
	accept(s, strlen(s), &b);
	assert_int_equal(member(&b, "i")->kind, JSON_INT);
	assert_true(member(&b, "i")->i == INT64_MIN);
	json_body_free(&b);
}

static void
test_body_numbers_refused(void **state)
{
	static const struct text	t[] = {
		{ "{\"i\":9223372036854775808}", 0 },
		{ "{\"i\":-9223372036854775809}", 0 },
		{ "{\"i\":99999999999999999999999}", 0 },
		{ "{\"r\":1e400}", 0 },
		{ "{\"r\":-1e400}", 0 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
}

/* Reals: a long one read whole; underflow to zero taken, as jansson did. */
static void
test_body_reals(void **state)
{
	static const char	long_real[] = "{\"r\":0.0000000000000000000"
	    "00000000000000000000000000000000000000000000000000000000000001}";
	struct json_body	b;

	(void)state;
	accept(long_real, strlen(long_real), &b);
	assert_int_equal(member(&b, "r")->kind, JSON_REAL);
	json_body_free(&b);
	accept("{\"r\":1e-400,\"s\":-0.5e2}", 23, &b);
	assert_int_equal(member(&b, "r")->kind, JSON_REAL);
	assert_int_equal(member(&b, "s")->kind, JSON_REAL);
	json_body_free(&b);
}

/* Where the text ended too soon, the place is its end. */
static void
test_body_where(void **state)
{
	struct json_body	b;
	char			why[256];

	(void)state;
	assert_int_equal(json_body_parse("{\"a\":1", 6, &b, why, sizeof(why)),
	    CERTD_ERR_BAD_REQUEST);
	json_body_free(&b);
	assert_non_null(strstr(why, "(line 1, column 7)"));
	assert_int_equal(json_body_parse("{\n\"a\":\n", 7, &b, why,
	    sizeof(why)), CERTD_ERR_BAD_REQUEST);
	json_body_free(&b);
	assert_non_null(strstr(why, "(line 3, column 1)"));
	assert_int_equal(json_body_parse("{\"a\":1,\"a\":2}", 13, &b, why,
	    sizeof(why)), CERTD_ERR_BAD_REQUEST);
	json_body_free(&b);
	assert_non_null(strstr(why, "duplicate object key"));
}

static void
test_body_duplicates(void **state)
{
	struct json_body	b;
	const char		*sib = "{\"o\":{\"x\":1},\"p\":{\"x\":2},"
	    "\"x\":[{\"x\":1},{\"x\":2}]}";
	const char		*inner = "{\"a\":{\"a\":{\"a\":1}}}";
	static const struct text t[] = {
		{ "{\"a\":1,\"a\":2}", 0 },
		{ "{\"a\":1,\"b\":2,\"a\":1}", 0 },
		{ "{\"o\":{\"x\":1,\"x\":2}}", 0 },
		{ "{\"o\":{\"p\":{\"x\":1,\"y\":[],\"x\":2}}}", 0 },
		{ "{\"a\":[{\"x\":1,\"x\":2}]}", 0 },
		{ "{\"a\":[1,{\"y\":1},{\"x\":1,\"x\":2}]}", 0 },
		/* equal after decoding */
		{ "{\"a\":1,\"\\u0061\":2}", 0 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));

	/* The same key in sibling objects, or at other depths: no duplicate. */
	accept(sib, strlen(sib), &b);
	assert_int_equal(b.n, 3);
	json_body_free(&b);
	accept(inner, strlen(inner), &b);
	assert_int_equal(b.n, 1);
	json_body_free(&b);
}

static void
test_body_nul(void **state)
{
	static const struct text	t[] = {
		{ "{\"a\":\"x\\u0000y\"}", 0 },
		{ "{\"a\":\"\\u0000\"}", 0 },
		{ "{\"a\\u0000\":1}", 0 },
		{ "{\"o\":{\"k\\u0000\":1}}", 0 },
		{ "{\"a\":[\"\\u0000\"]}", 0 },
		/* a raw NUL byte, too */
		{ "{\"a\":\"x\0y\"}", 11 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
}

static void
test_body_utf8(void **state)
{
	static const struct text	t[] = {
		{ "{\"a\":\"\xc0\x80\"}", 0 },		/* overlong NUL */
		{ "{\"a\":\"\xc1\xbf\"}", 0 },		/* overlong */
		{ "{\"a\":\"\xe0\x80\xaf\"}", 0 },	/* overlong */
		{ "{\"a\":\"\xed\xa0\x80\"}", 0 },	/* U+D800 encoded */
		{ "{\"a\":\"\xed\xbf\xbf\"}", 0 },	/* U+DFFF encoded */
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", 0 },	/* U+110000 */
		{ "{\"a\":\"\xf5\x80\x80\x80\"}", 0 },	/* F5 */
		{ "{\"a\":\"\xf5\"}", 0 },
		{ "{\"a\":\"\xff\"}", 0 },
		{ "{\"a\":\"\x80\"}", 0 },		/* a lone continuation */
		{ "{\"a\":\"\xc3\"}", 0 },		/* cut short */
		{ "{\"\xed\xa0\x80\":1}", 0 },		/* in a key */
		{ "{\"a\":1}\xc0\x80", 0 },		/* outside a string */
	};
	struct json_body	b;
	const char		*ok = "{\"a\":\"\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}";

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
	/* The edges that are UTF-8: U+E9, U+20AC, U+1F600, U+10FFFF. */
	accept(ok, strlen(ok), &b);
	assert_int_equal(member(&b, "a")->len, 13);
	json_body_free(&b);
}

static void
test_body_surrogates(void **state)
{
	static const struct text	t[] = {
		{ "{\"a\":\"\\ud800\"}", 0 },
		{ "{\"a\":\"\\udc00\"}", 0 },
		{ "{\"a\":\"\\ud800\\u0041\"}", 0 },
		{ "{\"a\":\"\\ud800x\"}", 0 },
		{ "{\"a\":\"\\ud800\\ud800\"}", 0 },
		{ "{\"a\":\"\\ude00\\ud83d\"}", 0 },	/* the wrong order */
		{ "{\"a\":\"x\\uDBFF\"}", 0 },
		{ "{\"\\ud800\":1}", 0 },		/* in a key */
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));

	/* A pair decodes to its code point. */
	accept_a_string("{\"a\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", 4);
	accept_a_string("{\"a\":\"\\uD83D\\uDE00\"}", "\xf0\x9f\x98\x80", 4);
	/* An escaped backslash, then the text ud800: no escape at all. */
	accept_a_string("{\"a\":\"\\\\ud800\"}", "\\ud800", 6);
	accept_a_string("{\"a\":\"\\\\\\\\ud800\"}", "\\\\ud800", 7);
}

static void
test_body_control(void **state)
{
	static const struct text	t[] = {
		{ "{\"a\":\"x\x01y\"}", 0 },
		{ "{\"a\":\"x\ny\"}", 0 },
		{ "{\"a\":\"x\ty\"}", 0 },
		{ "{\"a\":\"\x1f\"}", 0 },
		{ "{\"a\x01\":1}", 0 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
	/* Escaped, they are text. */
	accept_a_string("{\"a\":\"x\\u0001\\n\\t\"}", "x\x01\n\t", 4);
}

static void
test_body_syntax(void **state)
{
	static const struct text	t[] = {
		{ "{\"a\":01}", 0 },			/* leading zero */
		{ "{\"a\":-01}", 0 },
		{ "{\"a\":1,}", 0 },			/* trailing comma */
		{ "{\"a\":[1,]}", 0 },
		{ "{\"a\":1/* c */}", 0 },		/* comments */
		{ "{\"a\":1}// c", 0 },
		{ "{\"a\":NaN}", 0 },
		{ "{\"a\":Infinity}", 0 },
		{ "{'a':1}", 0 },			/* single quotes */
		{ "{\"a\":'b'}", 0 },
		{ "{\"a\":1}x", 0 },			/* trailing garbage */
		{ "{\"a\":1}}", 0 },
		{ "{\"a\":1}{\"b\":2}", 0 },		/* two values */
		{ "{\"a\":1} {}", 0 },
		{ "{\"a\":1.}", 0 },
		{ "{\"a\":.5}", 0 },
		{ "{\"a\":+1}", 0 },
		{ "{\"a\":1e}", 0 },
		{ "{a:1}", 0 },				/* bare key */
		{ "{\"a\":\"\\x41\"}", 0 },		/* unknown escape */
		{ "{\"a\":\"\\u12\"}", 0 },		/* short \u */
		{ "{\"a\":1", 0 },			/* cut short */
		{ "{\"a\":\"b", 0 },
		{ "not json", 0 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
}

static void
test_body_not_object(void **state)
{
	static const char	*t[] = {
		"[]", "[{\"a\":1}]", "\"s\"", "1", "-1.5", "true", "null",
		" [1] ",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		refuse(t[i], strlen(t[i]), 1);
}

/* {"a": then depth - 1 containers (arrays or objects), then closed. */
static char *
nested(size_t depth, int objects)
{
	size_t	 i, n = depth - 1;
	char	*s = malloc(8 + n * 6), *p = s;

	assert_non_null(s);
	p += sprintf(p, "{\"a\":");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s", objects ? "{\"a\":" : "[");
	if (objects)
		*p++ = '1';
	for (i = 0; i < n; i++)
		*p++ = objects ? '}' : ']';
	*p++ = '}';
	*p = '\0';
	return s;
}

static void
test_body_depth(void **state)
{
	struct json_body	 b;
	char			*s;
	int			 objects;

	(void)state;
	for (objects = 0; objects <= 1; objects++) {
		s = nested(JSON_DEPTH_MAX, objects);
		accept(s, strlen(s), &b);
		assert_int_equal(b.n, 1);
		assert_int_equal(member(&b, "a")->kind, objects ? JSON_OBJECT :
		    JSON_ARRAY);
		json_body_free(&b);
		free(s);
		s = nested(JSON_DEPTH_MAX + 1, objects);
		refuse(s, strlen(s), 0);
		free(s);
	}
	assert_int_equal(JSON_DEPTH_MAX, 512);
}

static void
test_body_empty(void **state)
{
	static const struct text	t[] = {
		{ " \t\r\n ", 0 },
		{ " ", 0 },
		{ "", 0 },
	};

	(void)state;
	refuse_all(t, sizeof(t) / sizeof(t[0]));
}

/* --- the writer ------------------------------------------------------- */

static void
test_w_bytes(void **state)
{
	struct json_w	*w;
	const char	*buf;
	size_t		 len;
	const char	*want = "{\"s\":\"a\\nb\\\"c\\\\d\\u0001e\\t\xc3\xa9"
	    "\xe2\x82\xac/\",\"neg\":-5,\"zero\":0,"
	    "\"min\":-9223372036854775808,\"max\":9223372036854775807,"
	    "\"t\":true,\"f\":false,\"z\":null,\"nul\":null,"
	    "\"arr\":[1,\"x\",[],{},{\"k\":\"v\"},true,null],\"n\":\"ab\","
	    "\"\xc3\xa9\\n\":\"\"}";

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_kstr(w, "s", "a\nb\"c\\d\x01" "e\t\xc3\xa9\xe2\x82\xac/");
	json_w_kint(w, "neg", -5);
	json_w_kint(w, "zero", 0);
	json_w_kint(w, "min", INT64_MIN);
	json_w_kint(w, "max", INT64_MAX);
	json_w_kbool(w, "t", 1);
	json_w_kbool(w, "f", 0);
	json_w_key(w, "z");
	json_w_null(w);
	json_w_kstr(w, "nul", NULL);
	json_w_key(w, "arr");
	json_w_arr(w);
	json_w_int(w, 1);
	json_w_str(w, "x");
	json_w_arr(w);
	json_w_arr_end(w);
	json_w_obj(w);
	json_w_obj_end(w);
	json_w_obj(w);
	json_w_kstr(w, "k", "v");
	json_w_obj_end(w);
	json_w_bool(w, 7);
	json_w_str(w, NULL);
	json_w_arr_end(w);
	json_w_key(w, "n");
	json_w_strn(w, "abc", 2);
	json_w_kstr(w, "\xc3\xa9\n", "");
	json_w_obj_end(w);
	assert_int_equal(json_w_done(w, &buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	json_w_free(w);
	json_w_free(NULL);
}

/* json_w_done must fail; frees w. */
static void
w_fails(struct json_w *w)
{
	const char	*buf = "x", *out;
	size_t		 len = 1;
	int		 rv;

	rv = json_w_done(w, &buf, &len);
	if (rv == 0) {
		out = show(buf, len);
		json_w_free(w);
		fail_msg("json_w_done succeeded: %s", out);
	}
	json_w_free(w);
	assert_int_equal(rv, CERTD_ERR_INTERNAL);
	assert_null(buf);
	assert_int_equal(len, 0);
}

static void
test_w_not_utf8(void **state)
{
	struct json_w	*w;

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_kstr(w, "s", "ok\xff");
	json_w_obj_end(w);
	w_fails(w);

	/* In a key; and what follows the failure does not clear it. */
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_kstr(w, "\xc3", "v");
	json_w_kstr(w, "b", "fine");
	json_w_obj_end(w);
	w_fails(w);
}

/*
 * The writer refuses what the parser refuses: overlong forms, encoded
 * surrogates, code points above U+10FFFF, F5..F7 lead bytes (yajl_gen's
 * own check looks only at the shape of a sequence).
 */
static void
test_w_not_utf8_shape(void **state)
{
	static const char	*bad[] = {
		"\xc0\x80", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80",
	};
	struct json_w	*w;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(w = json_w_new());
		json_w_obj(w);
		json_w_kstr(w, "s", bad[i]);
		json_w_obj_end(w);
		w_fails(w);
	}
}

/* A value where a key is due. */
static void
test_w_value_for_key(void **state)
{
	struct json_w	*w;

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_int(w, 1);
	json_w_obj_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_kint(w, "a", 1);
	json_w_arr(w);
	json_w_arr_end(w);
	json_w_obj_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_null(w);
	json_w_obj_end(w);
	w_fails(w);
}

/* Closing what was never opened; a second text after the first. */
static void
test_w_after_end(void **state)
{
	struct json_w	*w;

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_obj_end(w);
	json_w_obj(w);
	json_w_obj_end(w);
	w_fails(w);
}

/*
 * A key where a value is due fails ({"a":"b"} from two keys, ["a"], {"a"}):
 * yajl_gen cannot tell a key from a string value, the writer can.
 */
static void
test_w_key_for_value(void **state)
{
	struct json_w	*w;

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_key(w, "a");
	json_w_key(w, "b");
	json_w_obj_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_arr(w);
	json_w_key(w, "a");
	json_w_arr_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_key(w, "a");
	json_w_obj_end(w);
	w_fails(w);
}

/*
 * A close that does not match what is open ({] and [}), and text that is
 * not whole ({, or nothing), fail: yajl_gen writes them.
 */
static void
test_w_unbalanced(void **state)
{
	struct json_w	*w;

	(void)state;
	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_arr_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_arr(w);
	json_w_obj_end(w);
	w_fails(w);

	assert_non_null(w = json_w_new());
	json_w_obj(w);
	json_w_kint(w, "a", 1);
	w_fails(w);

	assert_non_null(w = json_w_new());
	w_fails(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_objects),
		cmocka_unit_test(test_body_kinds),
		cmocka_unit_test(test_body_int64_max),
		cmocka_unit_test(test_body_int64_min),
		cmocka_unit_test(test_body_numbers_refused),
		cmocka_unit_test(test_body_reals),
		cmocka_unit_test(test_body_where),
		cmocka_unit_test(test_body_duplicates),
		cmocka_unit_test(test_body_nul),
		cmocka_unit_test(test_body_utf8),
		cmocka_unit_test(test_body_surrogates),
		cmocka_unit_test(test_body_control),
		cmocka_unit_test(test_body_syntax),
		cmocka_unit_test(test_body_not_object),
		cmocka_unit_test(test_body_depth),
		cmocka_unit_test(test_body_empty),
		cmocka_unit_test(test_w_bytes),
		cmocka_unit_test(test_w_not_utf8),
		cmocka_unit_test(test_w_not_utf8_shape),
		cmocka_unit_test(test_w_value_for_key),
		cmocka_unit_test(test_w_after_end),
		cmocka_unit_test(test_w_key_for_value),
		cmocka_unit_test(test_w_unbalanced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
