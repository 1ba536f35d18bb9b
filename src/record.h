/* SPDX-License-Identifier: MIT */
/*
 * The certificate record: what certd stores for one certificate, and its
 * msgpack encoding on disk.  The encoding is a map that carries a schema
 * version ("v"), so later versions can read what earlier ones wrote.
 *
 * Schema 1 held the private key in clear.  Schema 2 holds it sealed
 * (AES-256-GCM, see cert_seal) under the store's master key, with the id of
 * that key, and with associated data that binds the box to the record's
 * team, id and revision: a box moved to another record, or replayed from an
 * older revision, does not open.  In memory a record always holds the key
 * in clear; only the encoding is sealed.
 */
#ifndef CERTD_RECORD_H
#define CERTD_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"

#define RECORD_SCHEMA_VERSION	2	/* 1: key in clear, 2: key sealed */
#define RECORD_KEY_ID_LEN	8	/* first bytes of SHA-256(master key) */
#define RECORD_AAD_MAGIC	"certd-key-v1"

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
 * A private key as stored: the box cert_seal made (nonce | ciphertext |
 * tag, owned) and the id of the master key that sealed it.  box is NULL
 * when there is none (a schema 1 record).
 */
struct record_sealed {
	unsigned char	 key_id[RECORD_KEY_ID_LEN];
	unsigned char	*box;
	size_t		 box_len;
};

/* Wipe and free the box and zero the struct.  Accepts a zeroed struct. */
void	record_sealed_clear(struct record_sealed *sk);

/*
 * Seal rec's private key under master key `mkey` (whose id is `key_id`),
 * binding it to rec's team, id and revision: set the revision first.
 * Fills *sk (the caller clears it).  Returns 0, CERTD_ERR_NOMEM or
 * CERTD_ERR_INTERNAL.
 */
int	record_seal(const struct cert_record *rec,
	    const unsigned char mkey[CERT_SEAL_KEY_LEN],
	    const unsigned char key_id[RECORD_KEY_ID_LEN],
	    struct record_sealed *sk);

/*
 * Open sk under mkey and set rec->private_key (rec has none yet).  The id
 * in sk is not checked here.  Returns 0, CERTD_ERR_STORAGE when the box
 * does not open (wrong key, or it belongs to another record or revision),
 * or CERTD_ERR_NOMEM.
 */
int	record_unseal(struct cert_record *rec, const struct record_sealed *sk,
	    const unsigned char mkey[CERT_SEAL_KEY_LEN]);

/*
 * Encode to msgpack, current schema: everything of rec but its private key,
 * and the sealed key sk instead.  *buf is malloc'd; it holds no key in
 * clear, but the caller wipes it all the same (util_wipe) before freeing.
 * Returns 0, CERTD_ERR_NOMEM, or CERTD_ERR_INTERNAL when sk has no box.
 */
int	record_encode(const struct cert_record *rec,
	    const struct record_sealed *sk, char **buf, size_t *len);

/*
 * Decode what record_encode wrote, of any schema version up to the current.
 * Returns 0 and a new record in *out; for schema 2 the record has no
 * private key and *sk receives the sealed one (record_unseal opens it), for
 * schema 1 the record holds the key in clear and sk->box is NULL.  The
 * caller clears *sk.  Returns CERTD_ERR_STORAGE for malformed or
 * unknown-version input, or CERTD_ERR_NOMEM; *out is NULL and *sk zeroed
 * then.
 */
int	record_decode(const char *buf, size_t len, struct cert_record **out,
	    struct record_sealed *sk);

#endif
