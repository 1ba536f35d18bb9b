/* SPDX-License-Identifier: MIT */
/*
 * jtool: JSON helper for the integration scripts, on yajl.
 *
 *	jtool get FILE PATH	print the value at PATH (a.b.0.c); strings raw,
 *				other values as compact JSON; exit 1 if absent
 *	jtool make ARG...	print an object built from key=text,
 *				key=@file (file contents) and key:=json
 *
 * The scripts compare its output byte for byte, so it prints what the jansson
 * version printed: compact, keys in the order first seen, a repeated key in
 * its first place with its last value, integers as integers.  It refuses what
 * jansson refused (exit 2): UTF-8 that is malformed, overlong, a surrogate or
 * above U+10FFFF, a NUL byte in a file, integers outside long long.
 * Differences, none of which a script meets: reals are printed as written
 * (1.50, 1e3) where jansson printed its rendering of the double (1.5,
 * 1000.0); yajl_tree_parse takes comments, cuts a string at \u0000 and reads
 * an unpaired surrogate escape as '?', where jansson refused all three.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "json.h"

#include "jtree.h"

/* One member of the object that make builds: text, or a parsed value. */
struct member {
	char		*key;
	char		*text;		/* when tree is NULL; may hold NULs */
	size_t		 len;
	yajl_val	 tree;
};

/* The file at path, NUL-terminated; exit 2 when it cannot be read. */
static char *
slurp(const char *path, size_t *len)
{
	char	*buf = jtree_slurp(path, len);

	if (buf == NULL) {
		fprintf(stderr, "jtool: cannot read %s\n", path);
		exit(2);
	}
	return buf;
}

/* The member under key; a repeated key means its last value, as in jansson. */
static yajl_val
member(yajl_val o, const char *key)
{
	size_t	i = o->u.object.len;

	while (i-- > 0)
		if (strcmp(o->u.object.keys[i], key) == 0)
			return o->u.object.values[i];
	return NULL;
}

static yajl_gen
gen_new(void)
{
	yajl_gen	g = yajl_gen_alloc(NULL);

	if (g == NULL) {
		fprintf(stderr, "jtool: out of memory\n");
		exit(2);
	}
	yajl_gen_config(g, yajl_gen_beautify, 0);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_config(g, yajl_gen_escape_solidus, 0);
	return g;
}

/*
 * Write what g holds when st says all went well, and free g.  yajl_gen
 * refuses nesting of YAJL_MAX_DEPTH (128) levels, which jansson printed;
 * nothing certd sends comes near.
 */
static int
gen_flush(yajl_gen g, yajl_gen_status st)
{
	const unsigned char	*out;
	size_t			 len;

	if (st == yajl_gen_status_ok)
		st = yajl_gen_get_buf(g, &out, &len);
	if (st == yajl_gen_status_ok)
		fwrite(out, 1, len, stdout);
	else
		fprintf(stderr, "jtool: cannot print the JSON (yajl_gen status %d)\n",
		    (int)st);
	yajl_gen_free(g);
	return st == yajl_gen_status_ok ? 0 : 2;
}

static yajl_gen_status
gen_value(yajl_gen g, yajl_val v)
{
	yajl_gen_status	 st = yajl_gen_status_ok;
	const char	*s;
	long long	 ll;
	double		 d;
	size_t		 i, j;
	int		 is_int;

	switch (v->type) {
	case yajl_t_object:
		st = yajl_gen_map_open(g);
		for (i = 0; i < v->u.object.len && st == yajl_gen_status_ok; i++) {
			s = v->u.object.keys[i];
			for (j = 0; j < i && strcmp(v->u.object.keys[j], s) != 0; j++)
				;
			if (j < i)	/* printed in its first place */
				continue;
			if ((st = yajl_gen_string(g, (const unsigned char *)s,
			    strlen(s))) == yajl_gen_status_ok)
				st = gen_value(g, member(v, s));
		}
		return st != yajl_gen_status_ok ? st : yajl_gen_map_close(g);
	case yajl_t_array:
		st = yajl_gen_array_open(g);
		for (i = 0; i < v->u.array.len && st == yajl_gen_status_ok; i++)
			st = gen_value(g, v->u.array.values[i]);
		return st != yajl_gen_status_ok ? st : yajl_gen_array_close(g);
	case yajl_t_string:
		s = v->u.string;
		return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
	case yajl_t_number:
		s = v->u.number.r;
		/* jtree_parse refused what is out of range */
		(void)jtree_number(v, &is_int, &ll, &d);
		return is_int ? yajl_gen_integer(g, ll) :
		    yajl_gen_number(g, s, strlen(s));
	case yajl_t_true:
		return yajl_gen_bool(g, 1);
	case yajl_t_false:
		return yajl_gen_bool(g, 0);
	default:
		return yajl_gen_null(g);
	}
}

static int
get(const char *file, const char *path)
{
	yajl_val	 root, v;
	yajl_gen	 g;
	char		 err[1024], *text, *p, *save = NULL, *seg;
	size_t		 len, i;
	int		 rv = 0;

	text = slurp(file, &len);
	root = jtree_parse(text, len, 0, err, sizeof(err));
	free(text);
	if (root == NULL) {
		fprintf(stderr, "jtool: %s: %s\n", file, err);
		return 2;
	}
	p = strdup(path);
	v = root;
	for (seg = strtok_r(p, ".", &save); seg != NULL && v != NULL;
	    seg = strtok_r(NULL, ".", &save)) {
		if (YAJL_IS_ARRAY(v)) {
			i = strtoul(seg, NULL, 10);
			v = i < v->u.array.len ? v->u.array.values[i] : NULL;
		} else if (YAJL_IS_OBJECT(v))
			v = member(v, seg);
		else
			v = NULL;
	}
	if (v == NULL)
		rv = 1;
	else if (YAJL_IS_STRING(v))
		fputs(v->u.string, stdout);
	else {
		g = gen_new();
		rv = gen_flush(g, gen_value(g, v));
	}
	if (rv == 0)
		putchar('\n');
	yajl_tree_free(root);
	free(p);
	return rv;
}

static void
member_clear(struct member *m)
{
	free(m->key);
	free(m->text);
	yajl_tree_free(m->tree);
	memset(m, 0, sizeof(*m));
}

static int
make(int argc, char *argv[])
{
	struct member	*m = calloc((size_t)argc + 1, sizeof(*m)), nm;
	yajl_gen	 g;
	yajl_gen_status	 st;
	size_t		 n = 0, j;
	char		 err[1024];
	int		 i, rv = 0;

	if (m == NULL) {
		fprintf(stderr, "jtool: out of memory\n");
		return 2;
	}
	for (i = 0; i < argc; i++) {
		char	*eq = strchr(argv[i], '=');

		if (eq == NULL) {
			fprintf(stderr, "jtool: bad argument %s\n", argv[i]);
			rv = 2;
			goto out;
		}
		memset(&nm, 0, sizeof(nm));
		if (eq > argv[i] && eq[-1] == ':') {
			nm.key = strndup(argv[i], (size_t)(eq - 1 - argv[i]));
			nm.tree = jtree_parse(eq + 1, strlen(eq + 1), 0, err,
			    sizeof(err));
		} else {
			nm.key = strndup(argv[i], (size_t)(eq - argv[i]));
			if (eq[1] == '@')
				nm.text = slurp(eq + 2, &nm.len);
			else
				nm.text = strdup(eq + 1), nm.len = strlen(eq + 1);
			if (!json_utf8_ok(nm.text, nm.len)) {
				free(nm.text);
				nm.text = NULL;
			}
		}
		if (nm.tree == NULL && nm.text == NULL) {
			member_clear(&nm);
			fprintf(stderr, "jtool: bad value in %s\n", argv[i]);
			rv = 2;
			goto out;
		}
		/* jansson's json_object_set_new dropped a key that is not UTF-8. */
		if (!json_utf8_ok(nm.key, strlen(nm.key))) {
			member_clear(&nm);
			continue;
		}
		for (j = 0; j < n && strcmp(m[j].key, nm.key) != 0; j++)
			;
		if (j < n)	/* a repeated key keeps its first place */
			member_clear(&m[j]);
		else
			n++;
		m[j] = nm;
	}
	g = gen_new();
	st = yajl_gen_map_open(g);
	for (j = 0; j < n && st == yajl_gen_status_ok; j++) {
		st = yajl_gen_string(g, (unsigned char *)m[j].key,
		    strlen(m[j].key));
		if (st == yajl_gen_status_ok)
			st = m[j].tree != NULL ? gen_value(g, m[j].tree) :
			    yajl_gen_string(g, (unsigned char *)m[j].text,
			    m[j].len);
	}
	rv = gen_flush(g, st != yajl_gen_status_ok ? st : yajl_gen_map_close(g));
out:
	for (j = 0; j < n; j++)
		member_clear(&m[j]);
	free(m);
	return rv;
}

int
main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "get") == 0)
		return get(argv[2], argv[3]);
	if (argc >= 2 && strcmp(argv[1], "make") == 0)
		return make(argc - 2, argv + 2);
	fprintf(stderr, "usage: jtool get FILE PATH | jtool make K=V|K=@FILE|K:=JSON...\n");
	return 2;
}
