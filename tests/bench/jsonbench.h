/* SPDX-License-Identifier: MIT */
/*
 * jsonbench's libraries (jsonbench.c): each decodes a PUT body into its
 * four string fields and encodes a certificate's reply, as certd must.
 * One file a library: their headers cannot share a file (jansson's and
 * json-c's both declare json_type).
 */
#ifndef JSONBENCH_H
#define JSONBENCH_H

#include <stddef.h>
#include <stdint.h>

/* The reply: TeamCertificatesR, as http_certs.c writes it. */
struct jb_reply {
	uint64_t	 id;
	const char	*alias;
	const char	*private_key;
	const char	*certificate;
	const char	*type;
	uint64_t	 revision;
	const char	*not_before;
	const char	*not_after;
	const char	*fingerprint;
	const char	*issued_to[2];
	int		 expired;
};

struct jb_lib {
	const char	*name;
	/*
	 * What it checks of the body beyond the grammar, for the table:
	 * duplicate keys, UTF-8, \u0000, surrogate escapes.
	 */
	const char	*checks;
	/* Decode and read alias, certificate, private_key and
	 * certificate_type: their total length, or -1. */
	long		(*decode)(const char *body, size_t len);
	/* Encode r: the length written into out (cap bytes), or 0. */
	size_t		(*encode)(const struct jb_reply *r, char *out,
			    size_t cap);
};

extern const struct jb_lib	jb_certd, jb_jansson, jb_jsonc, jb_cjson;

#endif
