/* SPDX-License-Identifier: MIT */
/*
 * The certificate record and its on-disk msgpack encoding.  A record is a
 * map with short string keys ("v", "id", "rev", "team", "alias", "type",
 * "cert", "key", "created", "updated", "meta"); the metadata extracted by
 * cert.c is a nested map.  Decoding treats its input as hostile: it reads
 * the buffer field by field with proto.c's bounds-checked cursor, without
 * msgpack-c (so a corrupt length prefix cannot make it allocate gigabytes:
 * a count is never more than the bytes left), every field is type- and
 * size-checked, required fields must be present exactly once, and unknown
 * keys are skipped so that later schema versions can add fields.
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

/* The value of meta key k (klen bytes); unknown keys are skipped. */
static int
record_decode_meta_field(struct proto_cur *c, const char *k, size_t klen,
    struct cert_meta *m, unsigned *seen)
{
	uint64_t	 u;
	char		*fp = NULL;
	int		 err;

	if (record_key_is(k, klen, "cn")) {
		if ((err = record_seen(seen, M_CN)) == 0)
			err = record_get_str(c, RECORD_TEXT_BYTES, true,
			    &m->subject_cn);
	} else if (record_key_is(k, klen, "sans")) {
		if ((err = record_seen(seen, M_SANS)) == 0)
			err = record_decode_sans(c, m);
	} else if (record_key_is(k, klen, "icn")) {
		if ((err = record_seen(seen, M_ICN)) == 0)
			err = record_get_str(c, RECORD_TEXT_BYTES, true,
			    &m->issuer_cn);
	} else if (record_key_is(k, klen, "idn")) {
		if ((err = record_seen(seen, M_IDN)) == 0)
			err = record_get_str(c, RECORD_TEXT_BYTES, true,
			    &m->issuer_dn);
	} else if (record_key_is(k, klen, "serial")) {
		if ((err = record_seen(seen, M_SERIAL)) == 0)
			err = record_get_str(c, RECORD_TEXT_BYTES, true,
			    &m->serial);
	} else if (record_key_is(k, klen, "nb")) {
		if ((err = record_seen(seen, M_NB)) == 0)
			err = record_get_i64(c, &m->not_before);
	} else if (record_key_is(k, klen, "na")) {
		if ((err = record_seen(seen, M_NA)) == 0)
			err = record_get_i64(c, &m->not_after);
	} else if (record_key_is(k, klen, "fp")) {
		if ((err = record_seen(seen, M_FP)) == 0)
			err = record_get_str(c, CERT_FINGERPRINT_LEN, false,
			    &fp);
		if (err == 0)
			memcpy(m->fingerprint, fp, strlen(fp) + 1);
		free(fp);
	} else if (record_key_is(k, klen, "kalg")) {
		if ((err = record_seen(seen, M_KALG)) == 0)
			err = record_get_str(c, RECORD_TEXT_BYTES, true,
			    &m->key_algorithm);
	} else if (record_key_is(k, klen, "kbits")) {
		if ((err = record_seen(seen, M_KBITS)) == 0 &&
		    (err = record_get_u64(c, UINT_MAX, &u)) == 0)
			m->key_bits = (unsigned)u;
	} else if (record_key_is(k, klen, "chain")) {
		if ((err = record_seen(seen, M_CHAIN)) == 0 &&
		    (err = record_get_u64(c, UINT_MAX, &u)) == 0)
			m->chain_len = (unsigned)u;
	} else {
		/* written by a later version: skipped */
		proto_cur_skip(c, RECORD_DEPTH_MAX - 2, 0);
		err = c->error != NULL ? CERTD_ERR_STORAGE : 0;
	}
	return err;
}

static int
record_decode_meta(struct proto_cur *c, struct cert_meta *m)
{
	const char	*k;
	size_t		 klen;
	unsigned	 seen = 0;
	uint64_t	 n, i;
	int		 err = 0;

	n = proto_cur_map(c);
	for (i = 0; i < n && err == 0; i++) {
		k = proto_cur_str(c, &klen);
		err = c->error != NULL ? CERTD_ERR_STORAGE :
		    record_decode_meta_field(c, k, klen, m, &seen);
	}
	return err == 0 && c->error != NULL ? CERTD_ERR_STORAGE : err;
}

/* Schema 2 "key": the box, bin of a sane size. */
static int
record_get_box(struct proto_cur *c, struct record_sealed *sk)
{
	const void	*p;
	size_t		 len;

	p = proto_cur_bin(c, &len);
	if (c->error != NULL || len < CERT_SEAL_OVERHEAD ||
	    len > CERTD_KEY_MAX + CERT_SEAL_OVERHEAD)
		return CERTD_ERR_STORAGE;
	if ((sk->box = malloc(len)) == NULL)
		return CERTD_ERR_NOMEM;
	memcpy(sk->box, p, len);
	sk->box_len = len;
	return 0;
}

static int
record_get_kid(struct proto_cur *c, struct record_sealed *sk)
{
	const void	*p;
	size_t		 len;

	p = proto_cur_bin(c, &len);
	if (c->error != NULL || len != RECORD_KEY_ID_LEN)
		return CERTD_ERR_STORAGE;
	memcpy(sk->key_id, p, RECORD_KEY_ID_LEN);
	return 0;
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

/* The value of record key k (klen bytes) of schema version. */
static int
record_decode_field(struct proto_cur *c, const char *k, size_t klen,
    uint64_t version, struct cert_record *rec, struct record_sealed *sk,
    unsigned *seen)
{
	int	err;

	if (record_key_is(k, klen, "id")) {
		if ((err = record_seen(seen, F_ID)) == 0)
			err = record_get_u64(c, UINT64_MAX, &rec->id);
		if (err == 0 && rec->id == 0)
			err = CERTD_ERR_STORAGE;
	} else if (record_key_is(k, klen, "rev")) {
		if ((err = record_seen(seen, F_REV)) == 0)
			err = record_get_u64(c, UINT64_MAX, &rec->revision);
	} else if (record_key_is(k, klen, "team")) {
		if ((err = record_seen(seen, F_TEAM)) == 0)
			err = record_get_str(c, RECORD_TEAM_BYTES, false,
			    &rec->team);
		if (err == 0 && rec->team[0] == '\0')
			err = CERTD_ERR_STORAGE;
	} else if (record_key_is(k, klen, "alias")) {
		if ((err = record_seen(seen, F_ALIAS)) == 0)
			err = record_get_str(c, RECORD_ALIAS_BYTES, false,
			    &rec->alias);
		if (err == 0 && rec->alias[0] == '\0')
			err = CERTD_ERR_STORAGE;
	} else if (record_key_is(k, klen, "type")) {
		if ((err = record_seen(seen, F_TYPE)) == 0)
			err = record_get_str(c, RECORD_TYPE_BYTES, false,
			    &rec->cert_type);
	} else if (record_key_is(k, klen, "cert")) {
		if ((err = record_seen(seen, F_CERT)) == 0)
			err = record_get_blob(c, CERTD_CERT_MAX,
			    &rec->certificate, &rec->certificate_len);
	} else if (record_key_is(k, klen, "key")) {
		if ((err = record_seen(seen, F_KEY)) == 0)
			err = version >= 2 ? record_get_box(c, sk) :
			    record_get_blob(c, CERTD_KEY_MAX,
			    &rec->private_key, &rec->private_key_len);
	} else if (record_key_is(k, klen, "kid") && version >= 2) {
		if ((err = record_seen(seen, F_KID)) == 0)
			err = record_get_kid(c, sk);
	} else if (record_key_is(k, klen, "created")) {
		if ((err = record_seen(seen, F_CREATED)) == 0)
			err = record_get_i64(c, &rec->created_at);
	} else if (record_key_is(k, klen, "updated")) {
		if ((err = record_seen(seen, F_UPDATED)) == 0)
			err = record_get_i64(c, &rec->updated_at);
	} else if (record_key_is(k, klen, "meta")) {
		if ((err = record_seen(seen, F_META)) == 0)
			err = record_decode_meta(c, &rec->meta);
	} else {
		/* "v", read by record_version; unknown keys: skipped */
		proto_cur_skip(c, RECORD_DEPTH_MAX - 1, 0);
		err = c->error != NULL ? CERTD_ERR_STORAGE : 0;
	}
	return err;
}

static int
record_decode_obj(struct proto_cur *c, struct cert_record *rec,
    struct record_sealed *sk)
{
	const char	*k;
	size_t		 klen;
	unsigned	 seen = 0;
	uint64_t	 version = 0, n, i;
	int		 err;

	if ((err = record_version(c, &seen, &version)) != 0)
		return err;
	n = proto_cur_map(c);
	for (i = 0; i < n && err == 0; i++) {
		k = proto_cur_str(c, &klen);
		err = c->error != NULL ? CERTD_ERR_STORAGE :
		    record_decode_field(c, k, klen, version, rec, sk, &seen);
	}
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
