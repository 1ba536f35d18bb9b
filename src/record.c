/* SPDX-License-Identifier: MIT */
/*
 * The certificate record and its on-disk msgpack encoding.  A record is a
 * map with short string keys ("v", "id", "rev", "team", "alias", "type",
 * "cert", "key", "created", "updated", "meta"); the metadata extracted by
 * cert.c is a nested map.  Decoding treats its input as hostile: the buffer
 * is walked once with a bounds-checked cursor before msgpack-c sees it (so a
 * corrupt length prefix cannot make it allocate gigabytes), every field is
 * type- and size-checked, required fields must be present exactly once, and
 * unknown keys are skipped so that later schema versions can add fields.
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
	if (rec->private_key != NULL) {
		util_wipe(rec->private_key, rec->private_key_len);
		free(rec->private_key);
	}
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

/*
 * Walk one msgpack object spanning exactly buf[0..len) without allocating.
 * Every container must fit in what is left (each element takes at least
 * one byte), so msgpack-c's up-front allocation of n elements stays within
 * a small multiple of len.  Returns true when the structure is sound.
 */
static bool
record_precheck(const unsigned char *p, size_t len)
{
	size_t		pos = 0, todo = 1, skip, n;
	unsigned char	c;

#define NEED(k)	do { if ((k) > len - pos) return false; } while (0)
#define BE16()	(((size_t)p[pos] << 8) | p[pos + 1])
#define BE32()	(((size_t)p[pos] << 24) | ((size_t)p[pos + 1] << 16) | \
		    ((size_t)p[pos + 2] << 8) | p[pos + 3])

	while (todo > 0) {
		NEED(1);
		c = p[pos++];
		todo--;
		skip = 0;
		n = 0;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 ||
		    c == 0xc3)
			;				/* fixint, nil, bool */
		else if (c >= 0x80 && c <= 0x8f)
			n = 2 * (size_t)(c & 0x0f);	/* fixmap */
		else if (c >= 0x90 && c <= 0x9f)
			n = c & 0x0f;			/* fixarray */
		else if (c >= 0xa0 && c <= 0xbf)
			skip = c & 0x1f;		/* fixstr */
		else switch (c) {
		case 0xcc: case 0xd0:
			skip = 1;
			break;
		case 0xcd: case 0xd1:
			skip = 2;
			break;
		case 0xca: case 0xce: case 0xd2:
			skip = 4;
			break;
		case 0xcb: case 0xcf: case 0xd3:
			skip = 8;
			break;
		case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
			skip = 1 + ((size_t)1 << (c - 0xd4));	/* fixext */
			break;
		case 0xc4: case 0xd9:	/* bin8, str8 */
			NEED(1);
			skip = p[pos++];
			break;
		case 0xc5: case 0xda:	/* bin16, str16 */
			NEED(2);
			skip = BE16();
			pos += 2;
			break;
		case 0xc6: case 0xdb:	/* bin32, str32 */
			NEED(4);
			skip = BE32();
			pos += 4;
			break;
		case 0xc7:		/* ext8 */
			NEED(1);
			skip = 1 + (size_t)p[pos++];
			break;
		case 0xc8:		/* ext16 */
			NEED(2);
			skip = 1 + BE16();
			pos += 2;
			break;
		case 0xc9:		/* ext32 */
			NEED(4);
			skip = 1 + BE32();
			pos += 4;
			break;
		case 0xdc:		/* array16 */
			NEED(2);
			n = BE16();
			pos += 2;
			break;
		case 0xdd:		/* array32 */
			NEED(4);
			n = BE32();
			pos += 4;
			break;
		case 0xde:		/* map16 */
			NEED(2);
			n = 2 * BE16();
			pos += 2;
			break;
		case 0xdf:		/* map32 */
			NEED(4);
			n = 2 * BE32();
			pos += 4;
			break;
		default:		/* 0xc1: never used */
			return false;
		}
		NEED(skip);
		pos += skip;
		/* todo never exceeds the bytes left, so this cannot overflow */
		NEED(todo + n);
		todo += n;
	}
#undef NEED
#undef BE16
#undef BE32
	return pos == len;
}

static bool
record_key_is(const msgpack_object *k, const char *name)
{
	size_t	len = strlen(name);

	return k->via.str.size == len && memcmp(k->via.str.ptr, name, len) == 0;
}

/*
 * A text field: str of at most max bytes without NUL bytes, copied into
 * *dst.  nil is accepted (and leaves *dst NULL) when nil_ok.
 */
static int
record_get_str(const msgpack_object *o, size_t max, bool nil_ok, char **dst)
{
	if (*dst != NULL)
		return CERTD_ERR_STORAGE;	/* duplicate key */
	if (o->type == MSGPACK_OBJECT_NIL && nil_ok)
		return 0;
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
		return CERTD_ERR_STORAGE;
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return CERTD_ERR_STORAGE;
	return record_copy_bytes(dst, o->via.str.ptr, o->via.str.size);
}

/* PEM or sealed bytes: str or bin of at most max bytes. */
static int
record_get_blob(const msgpack_object *o, size_t max, char **dst, size_t *len)
{
	const char	*ptr;
	size_t		 size;

	if (*dst != NULL)
		return CERTD_ERR_STORAGE;
	if (o->type == MSGPACK_OBJECT_STR) {
		ptr = o->via.str.ptr;
		size = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		ptr = o->via.bin.ptr;
		size = o->via.bin.size;
	} else
		return CERTD_ERR_STORAGE;
	if (size > max)
		return CERTD_ERR_STORAGE;
	*len = size;
	return record_copy_bytes(dst, size > 0 ? ptr : "", size);
}

static int
record_get_u64(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return CERTD_ERR_STORAGE;
	*v = o->via.u64;
	return 0;
}

static int
record_get_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else
		return CERTD_ERR_STORAGE;
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
record_decode_sans(const msgpack_object *o, struct cert_meta *m)
{
	uint32_t	i;
	int		err;

	if (o->type != MSGPACK_OBJECT_ARRAY)
		return CERTD_ERR_STORAGE;
	if (o->via.array.size == 0)
		return 0;
	m->sans = calloc(o->via.array.size, sizeof(*m->sans));
	if (m->sans == NULL)
		return CERTD_ERR_NOMEM;
	for (i = 0; i < o->via.array.size; i++) {
		/* count as we go so that cert_meta_clear frees what exists */
		m->n_sans = i + 1;
		err = record_get_str(&o->via.array.ptr[i], RECORD_TEXT_BYTES,
		    false, &m->sans[i]);
		if (err != 0)
			return err;
	}
	return 0;
}

static int
record_decode_meta(const msgpack_object *o, struct cert_meta *m)
{
	const msgpack_object_kv	*kv;
	const msgpack_object	*k, *v;
	unsigned		 seen = 0;
	uint64_t		 u;
	char			*fp = NULL;
	uint32_t		 i;
	int			 err = 0;

	if (o->type != MSGPACK_OBJECT_MAP)
		return CERTD_ERR_STORAGE;
	for (i = 0; i < o->via.map.size && err == 0; i++) {
		kv = &o->via.map.ptr[i];
		k = &kv->key;
		v = &kv->val;
		if (k->type != MSGPACK_OBJECT_STR) {
			err = CERTD_ERR_STORAGE;
		} else if (record_key_is(k, "cn")) {
			if ((err = record_seen(&seen, M_CN)) == 0)
				err = record_get_str(v, RECORD_TEXT_BYTES,
				    true, &m->subject_cn);
		} else if (record_key_is(k, "sans")) {
			if ((err = record_seen(&seen, M_SANS)) == 0)
				err = record_decode_sans(v, m);
		} else if (record_key_is(k, "icn")) {
			if ((err = record_seen(&seen, M_ICN)) == 0)
				err = record_get_str(v, RECORD_TEXT_BYTES,
				    true, &m->issuer_cn);
		} else if (record_key_is(k, "idn")) {
			if ((err = record_seen(&seen, M_IDN)) == 0)
				err = record_get_str(v, RECORD_TEXT_BYTES,
				    true, &m->issuer_dn);
		} else if (record_key_is(k, "serial")) {
			if ((err = record_seen(&seen, M_SERIAL)) == 0)
				err = record_get_str(v, RECORD_TEXT_BYTES,
				    true, &m->serial);
		} else if (record_key_is(k, "nb")) {
			if ((err = record_seen(&seen, M_NB)) == 0)
				err = record_get_i64(v, &m->not_before);
		} else if (record_key_is(k, "na")) {
			if ((err = record_seen(&seen, M_NA)) == 0)
				err = record_get_i64(v, &m->not_after);
		} else if (record_key_is(k, "fp")) {
			if ((err = record_seen(&seen, M_FP)) == 0)
				err = record_get_str(v, CERT_FINGERPRINT_LEN,
				    false, &fp);
			if (err == 0) {
				memcpy(m->fingerprint, fp, strlen(fp) + 1);
				free(fp);
				fp = NULL;
			}
		} else if (record_key_is(k, "kalg")) {
			if ((err = record_seen(&seen, M_KALG)) == 0)
				err = record_get_str(v, RECORD_TEXT_BYTES,
				    true, &m->key_algorithm);
		} else if (record_key_is(k, "kbits")) {
			if ((err = record_seen(&seen, M_KBITS)) == 0 &&
			    (err = record_get_u64(v, UINT_MAX, &u)) == 0)
				m->key_bits = (unsigned)u;
		} else if (record_key_is(k, "chain")) {
			if ((err = record_seen(&seen, M_CHAIN)) == 0 &&
			    (err = record_get_u64(v, UINT_MAX, &u)) == 0)
				m->chain_len = (unsigned)u;
		}
		/* unknown keys: written by a later version, skipped */
	}
	free(fp);
	return err;
}

/* Schema 2 "key": the box, bin of a sane size. */
static int
record_get_box(const msgpack_object *o, struct record_sealed *sk)
{
	if (o->type != MSGPACK_OBJECT_BIN ||
	    o->via.bin.size < CERT_SEAL_OVERHEAD ||
	    o->via.bin.size > CERTD_KEY_MAX + CERT_SEAL_OVERHEAD)
		return CERTD_ERR_STORAGE;
	if ((sk->box = malloc(o->via.bin.size)) == NULL)
		return CERTD_ERR_NOMEM;
	memcpy(sk->box, o->via.bin.ptr, o->via.bin.size);
	sk->box_len = o->via.bin.size;
	return 0;
}

static int
record_get_kid(const msgpack_object *o, struct record_sealed *sk)
{
	if (o->type != MSGPACK_OBJECT_BIN ||
	    o->via.bin.size != RECORD_KEY_ID_LEN)
		return CERTD_ERR_STORAGE;
	memcpy(sk->key_id, o->via.bin.ptr, RECORD_KEY_ID_LEN);
	return 0;
}

static int
record_decode_obj(const msgpack_object *o, struct cert_record *rec,
    struct record_sealed *sk)
{
	const msgpack_object_kv	*kv;
	const msgpack_object	*k, *v;
	unsigned		 seen = 0;
	uint64_t		 version = 0;
	uint32_t		 i;
	int			 err = 0;

	if (o->type != MSGPACK_OBJECT_MAP)
		return CERTD_ERR_STORAGE;

	/* the version decides how to read the rest: find it first */
	for (i = 0; i < o->via.map.size; i++) {
		kv = &o->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    record_key_is(&kv->key, "v")) {
			if ((err = record_seen(&seen, F_V)) != 0 ||
			    (err = record_get_u64(&kv->val, UINT64_MAX,
			    &version)) != 0)
				return err;
		}
	}
	if (version < 1 || version > RECORD_SCHEMA_VERSION)
		return CERTD_ERR_STORAGE;

	for (i = 0; i < o->via.map.size && err == 0; i++) {
		kv = &o->via.map.ptr[i];
		k = &kv->key;
		v = &kv->val;
		if (k->type != MSGPACK_OBJECT_STR) {
			err = CERTD_ERR_STORAGE;
		} else if (record_key_is(k, "id")) {
			if ((err = record_seen(&seen, F_ID)) == 0)
				err = record_get_u64(v, UINT64_MAX, &rec->id);
			if (err == 0 && rec->id == 0)
				err = CERTD_ERR_STORAGE;
		} else if (record_key_is(k, "rev")) {
			if ((err = record_seen(&seen, F_REV)) == 0)
				err = record_get_u64(v, UINT64_MAX,
				    &rec->revision);
		} else if (record_key_is(k, "team")) {
			if ((err = record_seen(&seen, F_TEAM)) == 0)
				err = record_get_str(v, RECORD_TEAM_BYTES,
				    false, &rec->team);
			if (err == 0 && rec->team[0] == '\0')
				err = CERTD_ERR_STORAGE;
		} else if (record_key_is(k, "alias")) {
			if ((err = record_seen(&seen, F_ALIAS)) == 0)
				err = record_get_str(v, RECORD_ALIAS_BYTES,
				    false, &rec->alias);
			if (err == 0 && rec->alias[0] == '\0')
				err = CERTD_ERR_STORAGE;
		} else if (record_key_is(k, "type")) {
			if ((err = record_seen(&seen, F_TYPE)) == 0)
				err = record_get_str(v, RECORD_TYPE_BYTES,
				    false, &rec->cert_type);
		} else if (record_key_is(k, "cert")) {
			if ((err = record_seen(&seen, F_CERT)) == 0)
				err = record_get_blob(v, CERTD_CERT_MAX,
				    &rec->certificate, &rec->certificate_len);
		} else if (record_key_is(k, "key")) {
			if ((err = record_seen(&seen, F_KEY)) == 0)
				err = version >= 2 ? record_get_box(v, sk) :
				    record_get_blob(v, CERTD_KEY_MAX,
				    &rec->private_key, &rec->private_key_len);
		} else if (record_key_is(k, "kid") && version >= 2) {
			if ((err = record_seen(&seen, F_KID)) == 0)
				err = record_get_kid(v, sk);
		} else if (record_key_is(k, "created")) {
			if ((err = record_seen(&seen, F_CREATED)) == 0)
				err = record_get_i64(v, &rec->created_at);
		} else if (record_key_is(k, "updated")) {
			if ((err = record_seen(&seen, F_UPDATED)) == 0)
				err = record_get_i64(v, &rec->updated_at);
		} else if (record_key_is(k, "meta")) {
			if ((err = record_seen(&seen, F_META)) == 0)
				err = record_decode_meta(v, &rec->meta);
		}
		/* "v" was read above; unknown keys are skipped */
	}
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
	msgpack_unpacked	 up;
	struct cert_record	*rec = NULL;
	size_t			 off = 0;
	int			 err;

	*out = NULL;
	memset(sk, 0, sizeof(*sk));
	if (buf == NULL || len == 0 ||
	    !record_precheck((const unsigned char *)buf, len))
		return CERTD_ERR_STORAGE;

	msgpack_unpacked_init(&up);
	switch (msgpack_unpack_next(&up, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		err = CERTD_ERR_NOMEM;
		goto out;
	default:
		err = CERTD_ERR_STORAGE;
		goto out;
	}
	if (off != len) {
		err = CERTD_ERR_STORAGE;	/* trailing bytes */
		goto out;
	}
	if ((rec = record_new()) == NULL) {
		err = CERTD_ERR_NOMEM;
		goto out;
	}
	if ((err = record_decode_obj(&up.data, rec, sk)) == 0) {
		*out = rec;
		rec = NULL;
	} else
		record_sealed_clear(sk);
out:
	/* str and bin objects point into buf: the zone holds no key copy */
	msgpack_unpacked_destroy(&up);
	record_free(rec);
	return err;
}
