/* SPDX-License-Identifier: MIT */
/*
 * jtree: the one copy of what jtool and sockpeer need to read JSON as
 * their jansson versions did: a file into a NUL-terminated buffer, a text
 * into a yajl tree with jansson's refusals, a number from its text.  See
 * jtree.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "json.h"

#include "jtree.h"

char *
jtree_slurp(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "rb");
	char	*buf = NULL;
	long	 n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	if (f != NULL)
		fclose(f);
	return buf;
}

int
jtree_number(yajl_val v, int *is_int, long long *ll, double *d)
{
	const char	*s = v->u.number.r;

	errno = 0;
	if ((*is_int = strpbrk(s, ".eE") == NULL)) {
		*ll = strtoll(s, NULL, 10);
		return errno == ERANGE ? -1 : 0;
	}
	*d = strtod(s, NULL);
	return errno == ERANGE && fabs(*d) == HUGE_VAL ? -1 : 0;
}

static int
numbers_ok(yajl_val v)
{
	long long	ll;
	double		d;
	size_t		i;
	int		is_int;

	if (YAJL_IS_OBJECT(v)) {
		for (i = 0; i < v->u.object.len; i++)
			if (!numbers_ok(v->u.object.values[i]))
				return 0;
	} else if (YAJL_IS_ARRAY(v)) {
		for (i = 0; i < v->u.array.len; i++)
			if (!numbers_ok(v->u.array.values[i]))
				return 0;
	} else if (YAJL_IS_NUMBER(v))
		return jtree_number(v, &is_int, &ll, &d) == 0;
	return 1;
}

yajl_val
jtree_parse(const char *text, size_t len, int flags, char *err, size_t errlen)
{
	yajl_val	v;

	if (memchr(text, '\0', len) != NULL ||
	    !json_utf8_ok(text, len)) {
		snprintf(err, errlen, "invalid UTF-8 or NUL byte");
		return NULL;
	}
	err[0] = '\0';
	if ((v = yajl_tree_parse(text, err, errlen)) == NULL) {
		err[strcspn(err, "\n")] = '\0';	/* yajl adds a picture */
		return NULL;
	}
	if ((flags & JTREE_CONTAINER) && !YAJL_IS_OBJECT(v) &&
	    !YAJL_IS_ARRAY(v))
		snprintf(err, errlen, "'[' or '{' expected");
	else if (!numbers_ok(v))
		snprintf(err, errlen, "number out of range");
	else
		return v;
	yajl_tree_free(v);
	return NULL;
}
