/* SPDX-License-Identifier: MIT */
/*
 * The certificate record and its on-disk msgpack encoding.  A record is a
 * map with short string keys ("v", "id", "rev", "team", "alias", "type",
 * "cert", "key", "created", "updated", "meta"); the metadata extracted by
 * cert.c is a nested map.  Decoding treats its input as hostile: it reads
 * the buffer field by field with proto.c's bounds-checked cursor, without
 * msgpack-c (so a corrupt length prefix cannot make it allocate gigabytes:
 * a count is never more than the bytes left); a table of the keys
 * (record_fields, meta_fields) says how each value is read and where it
 * goes.  Every field is type- and size-checked, required fields must be
 * present exactly once, and unknown keys are skipped so that later schema
 * versions can add fields.
 * Buffers that held the private key are wiped before they are freed; the
 * encoder sizes its output in a first pass so that it never reallocates a
 * buffer holding key material.
 *
 * Schema 2 writes "key" as the sealed box (bin) and "kid", the id of the
 * master key that sealed it (bin, RECORD_KEY_ID_LEN bytes); schema 1 wrote
 * "key" in clear and had no "kid".  The encoder writes only schema 2: there
 * is no way to put a key on disk in clear.  The associated data of a box is
 * RECORD_AAD_MAGIC "\0" team "\0" be64(id) be64(revision).
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "certd/constants.h"
#include "cert.h"
#include "proto.h"
#include "record.h"
#include "util.h"

/*
 * Bytes, not characters: alias and type limits are in UTF-8 code points,
 * and the decoder only needs a bound that keeps corrupt input small.
 */
#define RECORD_TEAM_BYTES	CERTD_TEAM_MAX
#define RECORD_ALIAS_BYTES	(4 * CERTD_ALIAS_MAX)
#define RECORD_TYPE_BYTES	(4 * CERTD_TYPE_MAX)
#define RECORD_TEXT_BYTES	4096	/* one metadata string (CN, DN...) */
#define RECORD_AAD_MAX		(sizeof(RECORD_AAD_MAGIC) + \
				    RECORD_TEAM_BYTES + 1 + 16)
/*
 * Containers nested in a record, the record's own map included: what
 * msgpack-c read when it decoded records (MSGPACK_EMBED_STACK_SIZE), so
 * that an unknown field of a later version is skipped as before.
 */
#define RECORD_DEPTH_MAX	32

/* Output of the encoder: first a counting pass (buf NULL), then the copy. */
struct record_out {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

struct cert_record *
record_new(void)
{
	return calloc(1, sizeof(struct cert_record));
}

void
record_free(struct cert_record *rec)
{
	if (rec == NULL)
		return;
	util_wipe(rec->private_key, rec->private_key_len);
	free(rec->private_key);
	free(rec->team);
	free(rec->alias);
	free(rec->cert_type);
	free(rec->certificate);
	cert_meta_clear(&rec->meta);
	free(rec);
}

/* Copy len bytes into a new NUL-terminated buffer; NULL stays NULL. */
static int
record_copy_bytes(char **dst, const char *src, size_t len)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	if (len == SIZE_MAX || (*dst = malloc(len + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	return 0;
}

static int
record_copy_str(char **dst, const char *src)
{
	return record_copy_bytes(dst, src, src != NULL ? strlen(src) : 0);
}

struct cert_record *
record_dup(const struct cert_record *rec)
{
	struct cert_record	*d;

	if ((d = record_new()) == NULL)
		return NULL;
	d->id = rec->id;
	d->revision = rec->revision;
	d->created_at = rec->created_at;
	d->updated_at = rec->updated_at;
	d->certificate_len = rec->certificate_len;
	d->private_key_len = rec->private_key_len;
	if (record_copy_str(&d->team, rec->team) != 0 ||
	    record_copy_str(&d->alias, rec->alias) != 0 ||
	    record_copy_str(&d->cert_type, rec->cert_type) != 0 ||
	    record_copy_bytes(&d->certificate, rec->certificate,
	    rec->certificate_len) != 0 ||
	    record_copy_bytes(&d->private_key, rec->private_key,
	    rec->private_key_len) != 0 ||
	    cert_meta_copy(&d->meta, &rec->meta) != 0) {
		record_free(d);
		return NULL;
	}
	return d;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static int
record_out_write(void *data, const char *buf, size_t len)
{
	struct record_out	*o = data;

	if (o->buf != NULL) {
		if (len > o->cap - o->len)
			return -1;	/* the passes disagree: cannot be */
		memcpy(o->buf + o->len, buf, len);
	}
	o->len += len;
	return 0;
}

static void
record_pack_str(msgpack_packer *pk, const char *s)
{
	size_t	len = s != NULL ? strlen(s) : 0;

	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s != NULL ? s : "", len);
}

/* A string value that may be absent: nil when NULL. */
static void
record_pack_opt_str(msgpack_packer *pk, const char *s)
{
	if (s == NULL)
		msgpack_pack_nil(pk);
	else
		record_pack_str(pk, s);
}

static void
record_pack_key(msgpack_packer *pk, const char *key)
{
	record_pack_str(pk, key);
}

static void
record_pack_meta(msgpack_packer *pk, const struct cert_meta *m)
{
	size_t	i;

	msgpack_pack_map(pk, 11);
	record_pack_key(pk, "cn");
	record_pack_opt_str(pk, m->subject_cn);
	record_pack_key(pk, "sans");
	msgpack_pack_array(pk, m->sans != NULL ? m->n_sans : 0);
	for (i = 0; m->sans != NULL && i < m->n_sans; i++)
		record_pack_str(pk, m->sans[i]);
	record_pack_key(pk, "icn");
	record_pack_opt_str(pk, m->issuer_cn);
	record_pack_key(pk, "idn");
	record_pack_opt_str(pk, m->issuer_dn);
	record_pack_key(pk, "serial");
	record_pack_opt_str(pk, m->serial);
	record_pack_key(pk, "nb");
	msgpack_pack_int64(pk, m->not_before);
	record_pack_key(pk, "na");
	msgpack_pack_int64(pk, m->not_after);
	record_pack_key(pk, "fp");
	record_pack_str(pk, m->fingerprint);
	record_pack_key(pk, "kalg");
	record_pack_opt_str(pk, m->key_algorithm);
	record_pack_key(pk, "kbits");
	msgpack_pack_unsigned_int(pk, m->key_bits);
	record_pack_key(pk, "chain");
	msgpack_pack_unsigned_int(pk, m->chain_len);
}

static void
record_pack(msgpack_packer *pk, const struct cert_record *rec,
    const struct record_sealed *sk)
{
	size_t	clen = rec->certificate != NULL ? rec->certificate_len : 0;

	msgpack_pack_map(pk, 12);
	record_pack_key(pk, "v");
	msgpack_pack_uint64(pk, RECORD_SCHEMA_VERSION);
	record_pack_key(pk, "id");
	msgpack_pack_uint64(pk, rec->id);
	record_pack_key(pk, "rev");
	msgpack_pack_uint64(pk, rec->revision);
	record_pack_key(pk, "team");
	record_pack_str(pk, rec->team);
	record_pack_key(pk, "alias");
	record_pack_str(pk, rec->alias);
	record_pack_key(pk, "type");
	record_pack_str(pk, rec->cert_type);
	record_pack_key(pk, "cert");
	msgpack_pack_str(pk, clen);
	msgpack_pack_str_body(pk, clen > 0 ? rec->certificate : "", clen);
	record_pack_key(pk, "key");
	msgpack_pack_bin(pk, sk->box_len);
	msgpack_pack_bin_body(pk, sk->box, sk->box_len);
	record_pack_key(pk, "kid");
	msgpack_pack_bin(pk, RECORD_KEY_ID_LEN);
	msgpack_pack_bin_body(pk, sk->key_id, RECORD_KEY_ID_LEN);
	record_pack_key(pk, "created");
	msgpack_pack_int64(pk, rec->created_at);
	record_pack_key(pk, "updated");
	msgpack_pack_int64(pk, rec->updated_at);
	record_pack_key(pk, "meta");
	record_pack_meta(pk, &rec->meta);
}

int
record_encode(const struct cert_record *rec, const struct record_sealed *sk,
    char **buf, size_t *len)
{
	struct record_out	 o;
	msgpack_packer		 pk;

	*buf = NULL;
	*len = 0;
	if (sk == NULL || sk->box == NULL || sk->box_len < CERT_SEAL_OVERHEAD)
		return CERTD_ERR_INTERNAL;

	memset(&o, 0, sizeof(o));
	msgpack_packer_init(&pk, &o, record_out_write);
	record_pack(&pk, rec, sk);

	o.cap = o.len;
	o.len = 0;
	if ((o.buf = malloc(o.cap > 0 ? o.cap : 1)) == NULL)
		return CERTD_ERR_NOMEM;
	record_pack(&pk, rec, sk);
	if (o.len != o.cap) {
		util_wipe(o.buf, o.cap);
		free(o.buf);
		return CERTD_ERR_INTERNAL;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sealing                                                             */

void
record_sealed_clear(struct record_sealed *sk)
{
	if (sk->box != NULL) {
		util_wipe(sk->box, sk->box_len);
		free(sk->box);
	}
	memset(sk, 0, sizeof(*sk));
}

/* The associated data of rec's box into buf[RECORD_AAD_MAX]. */
static int
record_aad(const struct cert_record *rec, unsigned char *buf, size_t *len)
{
	size_t	tl;

	if (rec->team == NULL || (tl = strlen(rec->team)) > RECORD_TEAM_BYTES)
		return CERTD_ERR_INTERNAL;
	memcpy(buf, RECORD_AAD_MAGIC, sizeof(RECORD_AAD_MAGIC));
	*len = sizeof(RECORD_AAD_MAGIC);
	memcpy(buf + *len, rec->team, tl + 1);
	*len += tl + 1;
	util_be64_put(buf + *len, rec->id);
	util_be64_put(buf + *len + 8, rec->revision);
	*len += 16;
	return 0;
}

int
record_seal(const struct cert_record *rec,
    const unsigned char mkey[CERT_SEAL_KEY_LEN],
    const unsigned char key_id[RECORD_KEY_ID_LEN], struct record_sealed *sk)
{
	unsigned char	aad[RECORD_AAD_MAX];
	size_t		aadlen;
	int		err;

	memset(sk, 0, sizeof(*sk));
	if ((err = record_aad(rec, aad, &aadlen)) != 0)
		return err;
	if ((err = cert_seal(mkey, aad, aadlen, rec->private_key,
	    rec->private_key != NULL ? rec->private_key_len : 0, &sk->box,
	    &sk->box_len)) != 0)
		return err;
	memcpy(sk->key_id, key_id, RECORD_KEY_ID_LEN);
	return 0;
}

int
record_unseal(struct cert_record *rec, const struct record_sealed *sk,
    const unsigned char mkey[CERT_SEAL_KEY_LEN])
{
	unsigned char	aad[RECORD_AAD_MAX];
	size_t		aadlen;
	int		err;

	if (rec->private_key != NULL || sk->box == NULL)
		return CERTD_ERR_INTERNAL;
	if ((err = record_aad(rec, aad, &aadlen)) != 0)
		return err;
	return cert_unseal(mkey, aad, aadlen, sk->box, sk->box_len,
	    &rec->private_key, &rec->private_key_len);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

static bool
record_key_is(const char *k, size_t klen, const char *name)
{
	size_t	len = strlen(name);

	return klen == len && memcmp(k, name, len) == 0;
}

/*
 * A text field: str of at most max bytes without NUL bytes, copied into
 * *dst.  nil is accepted (and leaves *dst NULL) when nil_ok.
 */
static int
record_get_str(struct proto_cur *c, size_t max, bool nil_ok, char **dst)
{
	const char	*s;
	size_t		 len;

	if (*dst != NULL)
		return CERTD_ERR_STORAGE;	/* duplicate key */
	if (nil_ok && proto_cur_nil(c))
		return 0;
	s = proto_cur_str(c, &len);
	if (c->error != NULL || len > max || memchr(s, '\0', len) != NULL)
		return CERTD_ERR_STORAGE;
	return record_copy_bytes(dst, s, len);
}

/* PEM or sealed bytes: str or bin of at most max bytes. */
static int
record_get_blob(struct proto_cur *c, size_t max, char **dst, size_t *len)
{
	const void	*ptr;
	size_t		 size;

	if (*dst != NULL)
		return CERTD_ERR_STORAGE;
	if (proto_cur_type(c) == PROTO_T_BIN)
		ptr = proto_cur_bin(c, &size);
	else
		ptr = proto_cur_str(c, &size);
	if (c->error != NULL || size > max)
		return CERTD_ERR_STORAGE;
	*len = size;
	return record_copy_bytes(dst, size > 0 ? ptr : "", size);
}

static int
record_get_u64(struct proto_cur *c, uint64_t max, uint64_t *v)
{
	uint64_t	u = proto_cur_uint(c);

	if (c->error != NULL || u > max)
		return CERTD_ERR_STORAGE;
	*v = u;
	return 0;
}

static int
record_get_i64(struct proto_cur *c, int64_t *v)
{
	int64_t	i = proto_cur_int(c);

	if (c->error != NULL)
		return CERTD_ERR_STORAGE;
	*v = i;
	return 0;
}

/* Bits for the fields seen, to refuse duplicates and missing ones. */
enum {
	F_V = 1 << 0, F_ID = 1 << 1, F_REV = 1 << 2, F_TEAM = 1 << 3,
	F_ALIAS = 1 << 4, F_TYPE = 1 << 5, F_CERT = 1 << 6, F_KEY = 1 << 7,
	F_CREATED = 1 << 8, F_UPDATED = 1 << 9, F_META = 1 << 10,
	F_REQUIRED = (1 << 11) - 1,
	F_KID = 1 << 11,		/* schema 2 */
};

enum {
	M_CN = 1 << 0, M_SANS = 1 << 1, M_ICN = 1 << 2, M_IDN = 1 << 3,
	M_SERIAL = 1 << 4, M_NB = 1 << 5, M_NA = 1 << 6, M_FP = 1 << 7,
	M_KALG = 1 << 8, M_KBITS = 1 << 9, M_CHAIN = 1 << 10,
};

/* Mark field `bit` seen; a second occurrence is corrupt input. */
static int
record_seen(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return CERTD_ERR_STORAGE;
	*seen |= bit;
	return 0;
}

static int
record_decode_sans(struct proto_cur *c, struct cert_meta *m)
{
	uint64_t	n, i;
	int		err;

	n = proto_cur_array(c);		/* no more than the bytes left */
	if (c->error != NULL)
		return CERTD_ERR_STORAGE;
	if (n == 0)
		return 0;
	m->sans = calloc((size_t)n, sizeof(*m->sans));
	if (m->sans == NULL)
		return CERTD_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		/* count as we go so that cert_meta_clear frees what exists */
		m->n_sans = (size_t)i + 1;
		err = record_get_str(c, RECORD_TEXT_BYTES, false, &m->sans[i]);
		if (err != 0)
			return err;
	}
	return 0;
}

/* A bin of min to max bytes: its *len bytes, or NULL. */
static const void *
record_get_bin(struct proto_cur *c, size_t min, size_t max, size_t *len)
{
	const void	*p = proto_cur_bin(c, len);

	return c->error != NULL || *len < min || *len > max ? NULL : p;
}

/* Schema 2 "key": the box, bin of a sane size. */
static int
record_get_box(struct proto_cur *c, struct record_sealed *sk)
{
	const void	*p;
	size_t		 len;

	p = record_get_bin(c, CERT_SEAL_OVERHEAD,
	    CERTD_KEY_MAX + CERT_SEAL_OVERHEAD, &len);
	if (p == NULL)
		return CERTD_ERR_STORAGE;
	if ((sk->box = malloc(len)) == NULL)
		return CERTD_ERR_NOMEM;
	memcpy(sk->box, p, len);
	sk->box_len = len;
	return 0;
}

/*
 * How the value of a key is read (record_get_field).  The strings are
 * copied, without NUL bytes; a second value of a key is corrupt input.
 */
enum record_kind {
	K_SKIP,		/* "v", read first by record_version */
	K_ID,		/* uint64_t, not 0 */
	K_U64,		/* uint64_t */
	K_UINT,		/* unsigned, at most max */
	K_I64,		/* int64_t */
	K_NAME,		/* str of 1 to max bytes */
	K_STR,		/* str of up to max bytes */
	K_TEXT,		/* str of up to max bytes, or nil (NULL) */
	K_FP,		/* str of up to max bytes into a char array */
	K_CERT,		/* the PEM: str or bin of up to max bytes */
	K_KEY,		/* schema 2: the box; schema 1: the PEM as K_CERT */
	K_KID,		/* schema 2: the master key's id, bin of max bytes */
	K_SANS,		/* array of str */
	K_META,		/* the map of meta_fields */
};

/*
 * A key of a record's map or of its "meta" map: its seen bit (F_* or
 * M_*), how its value is read, the largest size or value, and where it
 * goes: at off in struct cert_record (struct cert_meta for meta's keys),
 * or where its kind says.
 */
struct record_field {
	const char		*key;
	unsigned		 bit;
	enum record_kind	 kind;
	uint64_t		 max;
	size_t			 off;
};

#define REC(m)		offsetof(struct cert_record, m)
#define META(m)		offsetof(struct cert_meta, m)
#define NFIELDS(t)	(sizeof(t) / sizeof((t)[0]))

static const struct record_field record_fields[] = {
	{ "v", F_V, K_SKIP, 0, 0 },
	{ "id", F_ID, K_ID, UINT64_MAX, REC(id) },
	{ "rev", F_REV, K_U64, UINT64_MAX, REC(revision) },
	{ "team", F_TEAM, K_NAME, RECORD_TEAM_BYTES, REC(team) },
	{ "alias", F_ALIAS, K_NAME, RECORD_ALIAS_BYTES, REC(alias) },
	{ "type", F_TYPE, K_STR, RECORD_TYPE_BYTES, REC(cert_type) },
	{ "cert", F_CERT, K_CERT, CERTD_CERT_MAX, 0 },
	{ "key", F_KEY, K_KEY, CERTD_KEY_MAX, 0 },
	{ "kid", F_KID, K_KID, RECORD_KEY_ID_LEN, 0 },
	{ "created", F_CREATED, K_I64, 0, REC(created_at) },
	{ "updated", F_UPDATED, K_I64, 0, REC(updated_at) },
	{ "meta", F_META, K_META, 0, REC(meta) },
};

static const struct record_field meta_fields[] = {
	{ "cn", M_CN, K_TEXT, RECORD_TEXT_BYTES, META(subject_cn) },
	{ "sans", M_SANS, K_SANS, RECORD_TEXT_BYTES, 0 },
	{ "icn", M_ICN, K_TEXT, RECORD_TEXT_BYTES, META(issuer_cn) },
	{ "idn", M_IDN, K_TEXT, RECORD_TEXT_BYTES, META(issuer_dn) },
	{ "serial", M_SERIAL, K_TEXT, RECORD_TEXT_BYTES, META(serial) },
	{ "nb", M_NB, K_I64, 0, META(not_before) },
	{ "na", M_NA, K_I64, 0, META(not_after) },
	{ "fp", M_FP, K_FP, CERT_FINGERPRINT_LEN, META(fingerprint) },
	{ "kalg", M_KALG, K_TEXT, RECORD_TEXT_BYTES, META(key_algorithm) },
	{ "kbits", M_KBITS, K_UINT, UINT_MAX, META(key_bits) },
	{ "chain", M_CHAIN, K_UINT, UINT_MAX, META(chain_len) },
};

static int	record_decode_map(struct proto_cur *,
		    const struct record_field *, size_t, int, void *, uint64_t,
		    struct record_sealed *, unsigned *);

/*
 * The value of field f into the struct at base (a cert_record, or the
 * cert_meta of meta's keys), or into sk.
 */
static int
record_get_field(struct proto_cur *c, const struct record_field *f,
    void *base, uint64_t version, struct record_sealed *sk)
{
	struct cert_record	*rec = base;	/* K_CERT, K_KEY: a record's */
	unsigned char		*at = (unsigned char *)base + f->off;
	const void		*p;
	char			*fp = NULL;
	size_t			 len;
	uint64_t		 u;
	unsigned		 seen = 0;
	int			 err;

	switch (f->kind) {
	case K_SKIP:		/* record_decode_map skips it */
		break;
	case K_ID:
		err = record_get_u64(c, f->max, (uint64_t *)at);
		return err == 0 && *(uint64_t *)at == 0 ? CERTD_ERR_STORAGE :
		    err;
	case K_U64:
		return record_get_u64(c, f->max, (uint64_t *)at);
	case K_UINT:
		if ((err = record_get_u64(c, f->max, &u)) == 0)
			*(unsigned *)at = (unsigned)u;
		return err;
	case K_I64:
		return record_get_i64(c, (int64_t *)at);
	case K_NAME:
		err = record_get_str(c, f->max, false, (char **)at);
		return err == 0 && **(char **)at == '\0' ? CERTD_ERR_STORAGE :
		    err;
	case K_STR:
	case K_TEXT:
		return record_get_str(c, f->max, f->kind == K_TEXT,
		    (char **)at);
	case K_FP:
		if ((err = record_get_str(c, f->max, false, &fp)) == 0)
			memcpy(at, fp, strlen(fp) + 1);
		free(fp);
		return err;
	case K_CERT:
		return record_get_blob(c, f->max, &rec->certificate,
		    &rec->certificate_len);
	case K_KEY:
		return version >= 2 ? record_get_box(c, sk) :
		    record_get_blob(c, f->max, &rec->private_key,
		    &rec->private_key_len);
	case K_KID:
		if ((p = record_get_bin(c, f->max, f->max, &len)) == NULL)
			return CERTD_ERR_STORAGE;
		memcpy(sk->key_id, p, RECORD_KEY_ID_LEN);
		return 0;
	case K_SANS:
		return record_decode_sans(c, base);
	case K_META:
		err = record_decode_map(c, meta_fields, NFIELDS(meta_fields),
		    RECORD_DEPTH_MAX - 2, at, version, sk, &seen);
		return err == 0 && c->error != NULL ? CERTD_ERR_STORAGE : err;
	}
	return CERTD_ERR_INTERNAL;
}

/*
 * The map at c, whose keys are those of fields (n of them) and any other,
 * written by a later version and skipped with containers nested depth
 * deep at most.  Values go into base (record_get_field); the bits of the
 * keys seen into *seen.  "kid" is a key of schema 2 only: before, it is
 * another key.
 */
static int
record_decode_map(struct proto_cur *c, const struct record_field *fields,
    size_t n, int depth, void *base, uint64_t version,
    struct record_sealed *sk, unsigned *seen)
{
	const struct record_field	*f;
	const char			*k;
	size_t				 klen;
	uint64_t			 count, i;
	int				 err = 0;

	count = proto_cur_map(c);
	for (i = 0; i < count && err == 0; i++) {
		k = proto_cur_str(c, &klen);
		if (c->error != NULL)
			return CERTD_ERR_STORAGE;
		for (f = fields; f < fields + n; f++)
			if (record_key_is(k, klen, f->key))
				break;
		if (f == fields + n || f->kind == K_SKIP ||
		    (f->kind == K_KID && version < 2)) {
			proto_cur_skip(c, depth, 0);
			err = c->error != NULL ? CERTD_ERR_STORAGE : 0;
		} else if ((err = record_seen(seen, f->bit)) == 0)
			err = record_get_field(c, f, base, version, sk);
	}
	return err;
}

/*
 * The schema version, which decides how to read the rest: a first pass
 * over the map at c (c itself does not move).
 */
static int
record_version(const struct proto_cur *start, unsigned *seen,
    uint64_t *version)
{
	struct proto_cur	 c = *start;
	const char		*k;
	size_t			 klen;
	uint64_t		 n, i;
	int			 err = 0;

	n = proto_cur_map(&c);
	for (i = 0; i < n && err == 0; i++) {
		k = proto_cur_str(&c, &klen);
		if (c.error != NULL)
			break;
		if (!record_key_is(k, klen, "v"))
			proto_cur_skip(&c, RECORD_DEPTH_MAX - 1, 0);
		else if ((err = record_seen(seen, F_V)) == 0)
			err = record_get_u64(&c, UINT64_MAX, version);
	}
	if (err == 0 && c.error != NULL)
		err = CERTD_ERR_STORAGE;
	if (err == 0 && (*version < 1 || *version > RECORD_SCHEMA_VERSION))
		err = CERTD_ERR_STORAGE;
	return err;
}

static int
record_decode_obj(struct proto_cur *c, struct cert_record *rec,
    struct record_sealed *sk)
{
	unsigned	 seen = 0;
	uint64_t	 version = 0;
	int		 err;

	if ((err = record_version(c, &seen, &version)) != 0)
		return err;
	err = record_decode_map(c, record_fields, NFIELDS(record_fields),
	    RECORD_DEPTH_MAX - 1, rec, version, sk, &seen);
	if (err == 0 && (c->error != NULL || proto_cur_left(c) != 0))
		err = CERTD_ERR_STORAGE;	/* or trailing bytes */
	if (err == 0 && (seen & F_REQUIRED) != F_REQUIRED)
		err = CERTD_ERR_STORAGE;
	if (err == 0 && version >= 2 && !(seen & F_KID))
		err = CERTD_ERR_STORAGE;
	return err;
}

int
record_decode(const char *buf, size_t len, struct cert_record **out,
    struct record_sealed *sk)
{
	struct proto_cur	 c;
	struct cert_record	*rec;
	int			 err;

	*out = NULL;
	memset(sk, 0, sizeof(*sk));
	if (buf == NULL || len == 0)
		return CERTD_ERR_STORAGE;
	if ((rec = record_new()) == NULL)
		return CERTD_ERR_NOMEM;
	proto_cur_init(&c, buf, len);
	if ((err = record_decode_obj(&c, rec, sk)) != 0) {
		record_sealed_clear(sk);
		record_free(rec);
		return err;
	}
	*out = rec;
	return 0;
}
