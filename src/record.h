/* SPDX-License-Identifier: MIT */
/*
 * The certificate record: what certd stores for one certificate, and its
 * msgpack encoding on disk.  The encoding is a map that carries a schema
 * version ("v"), so later versions can read what earlier ones wrote.
 */
#ifndef CERTD_RECORD_H
#define CERTD_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"

#define RECORD_SCHEMA_VERSION	1

/*
 * A record is immutable once handed to the store: an update is a new record
 * that replaces the old one.  Strings are NUL-terminated and owned.
 */
struct cert_record {
	uint64_t	 id;		/* daemon-wide, from 1, never reused */
	uint64_t	 revision;	/* store revision of the write that made it */
	char		*team;
	char		*alias;
	char		*cert_type;
	char		*certificate;	/* PEM chain, leaf first */
	size_t		 certificate_len;
	char		*private_key;	/* PEM; wiped on free */
	size_t		 private_key_len;
	int64_t		 created_at;	/* Unix seconds */
	int64_t		 updated_at;
	struct cert_meta meta;
};

/* A zeroed record, or NULL. */
struct cert_record	*record_new(void);

/* Wipes the private key and frees everything.  Accepts NULL. */
void			 record_free(struct cert_record *rec);

/* Deep copy, or NULL on allocation failure. */
struct cert_record	*record_dup(const struct cert_record *rec);

/*
 * Encode to msgpack.  *buf is malloc'd and holds key material: the caller
 * wipes it (cert_wipe) and frees it.  Returns 0 or CERTD_ERR_NOMEM.
 */
int	record_encode(const struct cert_record *rec, char **buf, size_t *len);

/*
 * Decode what record_encode wrote (any schema version up to the current).
 * Returns 0 and a new record in *out, or CERTD_ERR_STORAGE for malformed or
 * unknown-version input, or CERTD_ERR_NOMEM.
 */
int	record_decode(const char *buf, size_t len, struct cert_record **out);

#endif
