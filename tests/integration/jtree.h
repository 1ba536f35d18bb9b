/* SPDX-License-Identifier: MIT */
/*
 * jtree: JSON read into a yajl tree as the jansson versions of the test
 * tools read it, shared by jtool and sockpeer (the scripts compare what they
 * print byte for byte).  Beyond what yajl_tree_parse refuses, it refuses what
 * jansson refused: a NUL byte; UTF-8 that is malformed, overlong, a surrogate
 * or above U+10FFFF (json_utf8_ok); integers outside long long and reals that
 * overflow a double.  yajl still takes comments, cuts a string at \u0000 and
 * reads an unpaired surrogate escape as '?', where jansson refused all
 * three; no script sends those.
 */
#ifndef CERTD_JTREE_H
#define CERTD_JTREE_H

#include <stddef.h>

#include <yajl/yajl_tree.h>

/* jtree_parse: only an object or an array at the top (json_loads without
 * JSON_DECODE_ANY); without it, any value. */
#define JTREE_CONTAINER	0x1

/*
 * The file at path in a buffer the caller frees, its *len bytes followed by
 * a NUL; or NULL, errno as the call that failed left it.
 */
char	*jtree_slurp(const char *path, size_t *len);

/*
 * The tree of len bytes of text (text[len] must be the NUL that
 * yajl_tree_parse stops at), which the caller frees with yajl_tree_free;
 * or NULL with one line saying why in err.
 */
yajl_val jtree_parse(const char *text, size_t len, int flags, char *err,
	    size_t errlen);

/*
 * Number v as jansson read it: an integer in *ll (*is_int set) unless its
 * text has a fraction or an exponent, then a real in *d.  -1 when jansson
 * refused it (an integer out of range, a real that overflows); jtree_parse
 * refused those.
 */
int	jtree_number(yajl_val v, int *is_int, long long *ll, double *d);

#endif
