/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for record.c, beyond the round trip and random garbage that
 * test_store.c covers: the exact bytes of the on-disk encoding (a change of
 * format must be a decision, not an accident), every field at its limits
 * and one past them, every field of the wrong type, missing or given twice,
 * the schema versions (1 with the key in clear, 2 sealed, anything else
 * refused), unknown keys carrying a value of every msgpack type (skipped,
 * and refused when cut at any length), containers that claim more than
 * the buffer holds, and the binding of a sealed key to its team, id and
 * revision.  Records are built by hand with msgpack-c's packer, so each
 * test says exactly which bytes it feeds the decoder.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "certd/constants.h"
#include "cert.h"
#include "record.h"

/* ------------------------------------------------------------------ */
/* A record as a list of keys and packed values                        */

#define KV_MAX	32

struct kv {
	char		 key[16];
	unsigned char	*val;	/* a packed msgpack value, owned */
	size_t		 len;
};

struct doc {
	struct kv	kv[KV_MAX];
	size_t		n;
};

static void
doc_clear(struct doc *d)
{
	size_t	i;

	for (i = 0; i < d->n; i++)
		free(d->kv[i].val);
	d->n = 0;
}

/* Append key with the value bytes p[0..len). */
static void
kv_raw(struct doc *d, const char *key, const void *p, size_t len)
{
	struct kv	*kv;

	assert_true(d->n < KV_MAX);
	kv = &d->kv[d->n++];
	assert_true(strlen(key) < sizeof(kv->key));
	snprintf(kv->key, sizeof(kv->key), "%s", key);
	assert_non_null(kv->val = malloc(len > 0 ? len : 1));
	memcpy(kv->val, p, len);
	kv->len = len;
}

/* A value being packed. */
struct val {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
};

static msgpack_packer *
val_begin(struct val *v)
{
	msgpack_sbuffer_init(&v->sb);
	msgpack_packer_init(&v->pk, &v->sb, msgpack_sbuffer_write);
	return &v->pk;
}

/* Append the value packed into v as key's, and free v. */
static void
kv_end(struct doc *d, const char *key, struct val *v)
{
	kv_raw(d, key, v->sb.data, v->sb.size);
	msgpack_sbuffer_destroy(&v->sb);
}

static void
kv_uint(struct doc *d, const char *key, uint64_t u)
{
	struct val	v;

	msgpack_pack_uint64(val_begin(&v), u);
	kv_end(d, key, &v);
}

static void
kv_int(struct doc *d, const char *key, int64_t i)
{
	struct val	v;

	msgpack_pack_int64(val_begin(&v), i);
	kv_end(d, key, &v);
}

static void
kv_strn(struct doc *d, const char *key, const char *s, size_t len)
{
	struct val	v;

	msgpack_pack_str(val_begin(&v), len);
	msgpack_pack_str_body(&v.pk, s, len);
	kv_end(d, key, &v);
}

static void
kv_str(struct doc *d, const char *key, const char *s)
{
	kv_strn(d, key, s, strlen(s));
}

static void
kv_bin(struct doc *d, const char *key, const void *p, size_t len)
{
	struct val	v;

	msgpack_pack_bin(val_begin(&v), len);
	msgpack_pack_bin_body(&v.pk, p, len);
	kv_end(d, key, &v);
}

static void
kv_nil(struct doc *d, const char *key)
{
	kv_raw(d, key, "\xc0", 1);
}

/* A string of len bytes of c (no NUL inside). */
static void
kv_fill(struct doc *d, const char *key, int c, size_t len, int bin)
{
	char	*p;

	assert_non_null(p = malloc(len > 0 ? len : 1));
	memset(p, c, len);
	if (bin)
		kv_bin(d, key, p, len);
	else
		kv_strn(d, key, p, len);
	free(p);
}

static struct kv *
doc_find(struct doc *d, const char *key)
{
	size_t	i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->kv[i].key, key) == 0)
			return &d->kv[i];
	return NULL;
}

/* Remove key (it must be there). */
static void
doc_del(struct doc *d, const char *key)
{
	struct kv	*kv = doc_find(d, key);
	size_t		 i;

	assert_non_null(kv);
	i = (size_t)(kv - d->kv);
	free(kv->val);
	memmove(&d->kv[i], &d->kv[i + 1], (d->n - i - 1) * sizeof(d->kv[0]));
	d->n--;
}

/* Append key once more with the value it has (it must be there). */
static void
doc_dup_key(struct doc *d, const char *key)
{
	struct kv	*kv = doc_find(d, key);

	assert_non_null(kv);
	kv_raw(d, key, kv->val, kv->len);
}

/* Pack d as a map: malloc'd bytes in *buf. */
static void
doc_pack(const struct doc *d, char **buf, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	size_t		i;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, d->n);
	for (i = 0; i < d->n; i++) {
		msgpack_pack_str(&pk, strlen(d->kv[i].key));
		msgpack_pack_str_body(&pk, d->kv[i].key, strlen(d->kv[i].key));
		msgpack_sbuffer_write(&sb, (const char *)d->kv[i].val,
		    d->kv[i].len);
	}
	*len = sb.size;
	*buf = msgpack_sbuffer_release(&sb);
	msgpack_sbuffer_destroy(&sb);
}

/* Nest sub as the map value of key in d (sub is cleared). */
static void
kv_doc(struct doc *d, const char *key, struct doc *sub)
{
	char	*buf;
	size_t	 len;

	doc_pack(sub, &buf, &len);
	kv_raw(d, key, buf, len);
	free(buf);
	doc_clear(sub);
}

#define FP_HEX	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define PEM_C	"-----BEGIN CERTIFICATE-----\nQUJD\n" \
		"-----END CERTIFICATE-----\n"
#define PEM_K	"-----BEGIN PRIVATE KEY-----\nS0VZ\n" \
		"-----END PRIVATE KEY-----\n"

static void
std_meta(struct doc *m)
{
	struct val	v;

	kv_str(m, "cn", "www.example.test");
	msgpack_pack_array(val_begin(&v), 2);
	msgpack_pack_str(&v.pk, 16);
	msgpack_pack_str_body(&v.pk, "www.example.test", 16);
	msgpack_pack_str(&v.pk, 9);
	msgpack_pack_str_body(&v.pk, "192.0.2.1", 9);
	kv_end(m, "sans", &v);
	kv_str(m, "icn", "Test CA");
	kv_str(m, "idn", "CN=Test CA,O=certd");
	kv_str(m, "serial", "01ab");
	kv_int(m, "nb", -5);
	kv_int(m, "na", 2000000000);
	kv_str(m, "fp", FP_HEX);
	kv_str(m, "kalg", "ECDSA");
	kv_uint(m, "kbits", 256);
	kv_uint(m, "chain", 2);
}

static const unsigned char std_box[40] =
    "0123456789abcdefghijklmnopqrstuvwxyzABC";
static const unsigned char std_kid[RECORD_KEY_ID_LEN] = "kid-001";

/*
 * A valid record of `version` (2: sealed "key" and "kid"; 1: "key" in
 * clear), meta given by std_meta unless meta is not NULL (then it is used,
 * and cleared).
 */
static void
std_doc(struct doc *d, int version, struct doc *meta)
{
	struct doc	m = { .n = 0 };

	memset(d, 0, sizeof(*d));
	kv_uint(d, "v", (uint64_t)version);
	kv_uint(d, "id", 7);
	kv_uint(d, "rev", 9);
	kv_str(d, "team", "team-a");
	kv_str(d, "alias", "web");
	kv_str(d, "type", "server");
	kv_str(d, "cert", PEM_C);
	if (version >= 2) {
		kv_bin(d, "key", std_box, sizeof(std_box));
		kv_bin(d, "kid", std_kid, sizeof(std_kid));
	} else
		kv_str(d, "key", PEM_K);
	kv_int(d, "created", 1700000000);
	kv_int(d, "updated", 1700000001);
	if (meta == NULL) {
		std_meta(&m);
		meta = &m;
	}
	kv_doc(d, "meta", meta);
}

/* Decode d; on success check the fields std_doc wrote and free. */
static int
decode_doc(const struct doc *d)
{
	struct cert_record	*r = (struct cert_record *)1;
	struct record_sealed	 sk;
	char			*buf;
	size_t			 len;
	int			 err;

	doc_pack(d, &buf, &len);
	memset(&sk, 0xa5, sizeof(sk));	/* zeroed on failure */
	err = record_decode(buf, len, &r, &sk);
	free(buf);
	if (err != 0) {
		assert_null(r);
		assert_null(sk.box);
		assert_int_equal(sk.box_len, 0);
		return err;
	}
	assert_non_null(r);
	record_free(r);
	record_sealed_clear(&sk);
	return 0;
}

static void
expect_refused(const struct doc *d, const char *what)
{
	int	err = decode_doc(d);

	if (err != CERTD_ERR_STORAGE)
		fail_msg("%s: decoded with %d, wanted CERTD_ERR_STORAGE", what,
		    err);
}

static void
expect_ok(const struct doc *d, const char *what)
{
	int	err = decode_doc(d);

	if (err != 0)
		fail_msg("%s: refused with %d, wanted 0", what, err);
}

/* ------------------------------------------------------------------ */
/* The encoding                                                        */

static const unsigned char test_mkey[CERT_SEAL_KEY_LEN] =
    "0123456789abcdef0123456789abcde";

/*
 * The exact bytes of a small record: a map of 12 in this key order, the
 * smallest msgpack form of every number, the box and the key id as bin,
 * and a meta map of 11 with nil for absent strings.  This is the on-disk
 * format of schema 2: whoever changes a byte of it changes what older
 * databases hold.
 */
static void
test_encode_exact_bytes(void **state)
{
	static const unsigned char want_head[] =
	    "\x8c"
	    "\xa1v\x02"
	    "\xa2id\x01"
	    "\xa3rev\x02"
	    "\xa4team\xa1t"
	    "\xa5" "alias\xa1" "a"
	    "\xa4type\xa1s"
	    "\xa4" "cert\xa1" "C"
	    "\xa3key\xc4\x1c";
	static const unsigned char want_tail[] =
	    "\xa3kid\xc4\x08" "kid-001\0"
	    "\xa7" "created\x03"
	    "\xa7updated\xff"
	    "\xa4meta\x8b"
	    "\xa2" "cn\xc0"
	    "\xa4sans\x90"
	    "\xa3icn\xc0"
	    "\xa3idn\xc0"
	    "\xa6serial\xc0"
	    "\xa2nb\x00"
	    "\xa2na\xd3\x80\x00\x00\x00\x00\x00\x00\x00"
	    "\xa2" "fp\xa0"
	    "\xa4kalg\xc0"
	    "\xa5kbits\xcd\x01\x00"
	    "\xa5" "chain\x00";
	struct cert_record	*r;
	struct record_sealed	 sk;
	unsigned char		 box[CERT_SEAL_OVERHEAD];
	char			*buf;
	size_t			 len, i, hl = sizeof(want_head) - 1;

	(void)state;
	assert_non_null(r = record_new());
	r->id = 1;
	r->revision = 2;
	assert_non_null(r->team = strdup("t"));
	assert_non_null(r->alias = strdup("a"));
	assert_non_null(r->cert_type = strdup("s"));
	assert_non_null(r->certificate = strdup("C"));
	r->certificate_len = 1;
	r->created_at = 3;
	r->updated_at = -1;
	r->meta.not_after = INT64_MIN;
	r->meta.key_bits = 256;
	for (i = 0; i < sizeof(box); i++)
		box[i] = (unsigned char)i;
	memset(&sk, 0, sizeof(sk));
	memcpy(sk.key_id, "kid-001", 8);
	sk.box = box;
	sk.box_len = sizeof(box);
	assert_int_equal(record_encode(r, &sk, &buf, &len), 0);
	assert_int_equal(len, hl + sizeof(box) + sizeof(want_tail) - 1);
	assert_memory_equal(buf, want_head, hl);
	assert_memory_equal(buf + hl, box, sizeof(box));
	assert_memory_equal(buf + hl + sizeof(box), want_tail,
	    sizeof(want_tail) - 1);
	free(buf);
	record_free(r);
}

/*
 * Every field at the edge of what it may hold comes back as it went in:
 * the largest ids and times, negative times, the longest team, alias,
 * type, certificate and key, empty and absent metadata strings, a long
 * list of names.
 */
static void
test_roundtrip_limits(void **state)
{
	struct cert_record	*r, *d;
	struct record_sealed	 sk, sk2;
	char			*buf;
	size_t			 len, i;

	(void)state;
	assert_non_null(r = record_new());
	r->id = UINT64_MAX;
	r->revision = UINT64_MAX;
	assert_non_null(r->team = malloc(CERTD_TEAM_MAX + 1));
	memset(r->team, 't', CERTD_TEAM_MAX);
	r->team[CERTD_TEAM_MAX] = '\0';
	/* 64 characters of 4 bytes: the 256-byte bound of the decoder */
	assert_non_null(r->alias = malloc(4 * CERTD_ALIAS_MAX + 1));
	for (i = 0; i < CERTD_ALIAS_MAX; i++)
		memcpy(r->alias + 4 * i, "\xf0\x9f\x94\x92", 4);
	r->alias[4 * CERTD_ALIAS_MAX] = '\0';
	assert_non_null(r->cert_type = malloc(4 * CERTD_TYPE_MAX + 1));
	for (i = 0; i < CERTD_TYPE_MAX; i++)
		memcpy(r->cert_type + 4 * i, "\xf0\x9f\x94\x91", 4);
	r->cert_type[4 * CERTD_TYPE_MAX] = '\0';
	r->certificate_len = CERTD_CERT_MAX;
	assert_non_null(r->certificate = malloc(CERTD_CERT_MAX + 1));
	memset(r->certificate, 'C', CERTD_CERT_MAX);
	r->certificate[CERTD_CERT_MAX] = '\0';
	r->private_key_len = CERTD_KEY_MAX;
	assert_non_null(r->private_key = malloc(CERTD_KEY_MAX + 1));
	memset(r->private_key, 'K', CERTD_KEY_MAX);
	r->private_key[CERTD_KEY_MAX] = '\0';
	r->created_at = INT64_MIN;
	r->updated_at = INT64_MAX;
	assert_non_null(r->meta.subject_cn = strdup(""));
	r->meta.n_sans = 100;
	assert_non_null(r->meta.sans = calloc(100, sizeof(char *)));
	for (i = 0; i < 100; i++) {
		assert_non_null(r->meta.sans[i] = malloc(4097));
		memset(r->meta.sans[i], 'a' + (int)(i % 26), 4096);
		r->meta.sans[i][i == 0 ? 4096 : i] = '\0';
	}
	r->meta.issuer_cn = NULL;
	assert_non_null(r->meta.issuer_dn = strdup("CN=\xc3\xa9"));
	r->meta.serial = NULL;
	r->meta.not_before = INT64_MIN;
	r->meta.not_after = INT64_MAX;
	memcpy(r->meta.fingerprint, FP_HEX, CERT_FINGERPRINT_LEN + 1);
	r->meta.key_algorithm = NULL;
	r->meta.key_bits = UINT_MAX;
	r->meta.chain_len = UINT_MAX;

	assert_int_equal(record_seal(r, test_mkey, std_kid, &sk), 0);
	assert_int_equal(sk.box_len, CERTD_KEY_MAX + CERT_SEAL_OVERHEAD);
	assert_int_equal(record_encode(r, &sk, &buf, &len), 0);
	record_sealed_clear(&sk);
	assert_int_equal(record_decode(buf, len, &d, &sk2), 0);
	assert_memory_equal(sk2.key_id, std_kid, RECORD_KEY_ID_LEN);
	assert_null(d->private_key);
	assert_int_equal(record_unseal(d, &sk2, test_mkey), 0);
	record_sealed_clear(&sk2);

	assert_true(d->id == UINT64_MAX);
	assert_true(d->revision == UINT64_MAX);
	assert_string_equal(d->team, r->team);
	assert_string_equal(d->alias, r->alias);
	assert_string_equal(d->cert_type, r->cert_type);
	assert_int_equal(d->certificate_len, CERTD_CERT_MAX);
	assert_memory_equal(d->certificate, r->certificate, CERTD_CERT_MAX);
	assert_int_equal(d->private_key_len, CERTD_KEY_MAX);
	assert_memory_equal(d->private_key, r->private_key, CERTD_KEY_MAX);
	assert_true(d->created_at == INT64_MIN);
	assert_true(d->updated_at == INT64_MAX);
	assert_string_equal(d->meta.subject_cn, "");
	assert_int_equal(d->meta.n_sans, 100);
	for (i = 0; i < 100; i++)
		assert_string_equal(d->meta.sans[i], r->meta.sans[i]);
	assert_null(d->meta.issuer_cn);
	assert_string_equal(d->meta.issuer_dn, "CN=\xc3\xa9");
	assert_null(d->meta.serial);
	assert_true(d->meta.not_before == INT64_MIN);
	assert_true(d->meta.not_after == INT64_MAX);
	assert_string_equal(d->meta.fingerprint, FP_HEX);
	assert_null(d->meta.key_algorithm);
	assert_int_equal(d->meta.key_bits, UINT_MAX);
	assert_int_equal(d->meta.chain_len, UINT_MAX);
	record_free(d);
	free(buf);
	record_free(r);
}

/*
 * An absent certificate encodes as an empty one; no names as an empty
 * list.  And what the encoder refuses: no box, or one shorter than the
 * seal's overhead (*buf stays NULL).
 */
static void
test_encode_edges(void **state)
{
	struct cert_record	*r, *d;
	struct record_sealed	 sk, sk2;
	unsigned char		 box[CERT_SEAL_OVERHEAD];
	char			*buf = (char *)1;
	size_t			 len = 99;

	(void)state;
	assert_non_null(r = record_new());
	r->id = 3;
	assert_non_null(r->team = strdup("t"));
	assert_non_null(r->alias = strdup("a"));
	assert_non_null(r->cert_type = strdup(""));
	memset(box, 0, sizeof(box));
	memset(&sk, 0, sizeof(sk));

	assert_int_equal(record_encode(r, NULL, &buf, &len),
	    CERTD_ERR_INTERNAL);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(record_encode(r, &sk, &buf, &len), CERTD_ERR_INTERNAL);
	sk.box = box;
	sk.box_len = CERT_SEAL_OVERHEAD - 1;
	assert_int_equal(record_encode(r, &sk, &buf, &len), CERTD_ERR_INTERNAL);
	assert_null(buf);

	sk.box_len = CERT_SEAL_OVERHEAD;
	assert_int_equal(record_encode(r, &sk, &buf, &len), 0);
	assert_int_equal(record_decode(buf, len, &d, &sk2), 0);
	assert_non_null(d->certificate);
	assert_int_equal(d->certificate_len, 0);
	assert_string_equal(d->cert_type, "");
	assert_null(d->meta.sans);
	assert_int_equal(d->meta.n_sans, 0);
	assert_int_equal(sk2.box_len, CERT_SEAL_OVERHEAD);
	record_sealed_clear(&sk2);
	assert_null(sk2.box);
	record_free(d);
	free(buf);
	record_free(r);
	record_free(NULL);
	record_sealed_clear(&sk2);	/* a zeroed struct */
}

/* record_dup copies deep, keeps NULL fields NULL and lengths exact. */
static void
test_dup(void **state)
{
	struct cert_record	*r, *d;

	(void)state;
	assert_non_null(r = record_new());
	r->id = 5;
	r->revision = 6;
	r->created_at = -7;
	r->updated_at = 8;
	assert_non_null(r->team = strdup("t"));
	/* bytes with a NUL inside: the length is what counts */
	assert_non_null(r->certificate = malloc(4));
	memcpy(r->certificate, "a\0b", 4);
	r->certificate_len = 3;
	assert_non_null(r->meta.sans = calloc(1, sizeof(char *)));
	assert_non_null(r->meta.sans[0] = strdup("x"));
	r->meta.n_sans = 1;
	r->meta.key_bits = 9;

	assert_non_null(d = record_dup(r));
	assert_int_equal(d->id, 5);
	assert_int_equal(d->revision, 6);
	assert_int_equal(d->created_at, -7);
	assert_int_equal(d->updated_at, 8);
	assert_string_equal(d->team, "t");
	assert_ptr_not_equal(d->team, r->team);
	assert_null(d->alias);
	assert_null(d->cert_type);
	assert_null(d->private_key);
	assert_int_equal(d->certificate_len, 3);
	assert_memory_equal(d->certificate, "a\0b", 4);
	assert_ptr_not_equal(d->meta.sans, r->meta.sans);
	assert_string_equal(d->meta.sans[0], "x");
	assert_int_equal(d->meta.key_bits, 9);
	record_free(d);
	record_free(r);
}

/* ------------------------------------------------------------------ */
/* Sealing                                                             */

/*
 * A box opens only for the record it was sealed for: same master key,
 * team, id and revision, and not one byte changed.
 */
static void
test_seal_binding(void **state)
{
	static const unsigned char other_key[CERT_SEAL_KEY_LEN] =
	    "0123456789abcdef0123456789abcdX";
	struct cert_record	*r, *o;
	struct record_sealed	 sk, bad;
	char			*long_team;

	(void)state;
	assert_non_null(r = record_new());
	r->id = 11;
	r->revision = 12;
	assert_non_null(r->team = strdup("team-a"));
	assert_non_null(r->private_key = strdup(PEM_K));
	r->private_key_len = strlen(PEM_K);
	assert_int_equal(record_seal(r, test_mkey, std_kid, &sk), 0);
	assert_memory_equal(sk.key_id, std_kid, RECORD_KEY_ID_LEN);
	assert_int_equal(sk.box_len, strlen(PEM_K) + CERT_SEAL_OVERHEAD);
	assert_null(memmem(sk.box, sk.box_len, "PRIVATE", 7));

	/* the record it belongs to: opens, and the key is NUL-terminated */
	assert_non_null(o = record_new());
	o->id = 11;
	o->revision = 12;
	assert_non_null(o->team = strdup("team-a"));
	assert_int_equal(record_unseal(o, &sk, test_mkey), 0);
	assert_int_equal(o->private_key_len, strlen(PEM_K));
	assert_string_equal(o->private_key, PEM_K);
	/* a record that has a key already is a caller's mistake */
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_INTERNAL);
	free(o->private_key);
	o->private_key = NULL;

	assert_int_equal(record_unseal(o, &sk, other_key), CERTD_ERR_STORAGE);
	assert_null(o->private_key);
	o->revision = 13;
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_STORAGE);
	o->revision = 12;
	o->id = 10;
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_STORAGE);
	o->id = 11;
	free(o->team);
	assert_non_null(o->team = strdup("team-b"));
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_STORAGE);
	/* "team-a" + id must not read as "team-" + other bytes */
	free(o->team);
	assert_non_null(o->team = strdup("team-"));
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_STORAGE);
	free(o->team);
	assert_non_null(o->team = strdup("team-a"));
	sk.box[sk.box_len / 2] ^= 1;
	assert_int_equal(record_unseal(o, &sk, test_mkey), CERTD_ERR_STORAGE);
	sk.box[sk.box_len / 2] ^= 1;
	assert_int_equal(record_unseal(o, &sk, test_mkey), 0);

	/* no box (a schema 1 record) is not opened */
	memset(&bad, 0, sizeof(bad));
	free(o->private_key);
	o->private_key = NULL;
	assert_int_equal(record_unseal(o, &bad, test_mkey), CERTD_ERR_INTERNAL);

	/* a team past the limit, or none, cannot be bound */
	assert_non_null(long_team = malloc(CERTD_TEAM_MAX + 2));
	memset(long_team, 'x', CERTD_TEAM_MAX + 1);
	long_team[CERTD_TEAM_MAX + 1] = '\0';
	free(r->team);
	r->team = long_team;
	assert_int_equal(record_seal(r, test_mkey, std_kid, &bad),
	    CERTD_ERR_INTERNAL);
	assert_null(bad.box);
	free(r->team);
	r->team = NULL;
	assert_int_equal(record_seal(r, test_mkey, std_kid, &bad),
	    CERTD_ERR_INTERNAL);

	record_sealed_clear(&sk);
	record_free(o);
	record_free(r);
}

/* ------------------------------------------------------------------ */
/* Decoding what a hand builds                                         */

/* The documents std_doc builds decode, into exactly those fields. */
static void
test_decode_std(void **state)
{
	struct doc		 d;
	struct cert_record	*r;
	struct record_sealed	 sk;
	char			*buf;
	size_t			 len;

	(void)state;
	std_doc(&d, 2, NULL);
	doc_pack(&d, &buf, &len);
	assert_int_equal(record_decode(buf, len, &r, &sk), 0);
	assert_int_equal(r->id, 7);
	assert_int_equal(r->revision, 9);
	assert_string_equal(r->team, "team-a");
	assert_string_equal(r->alias, "web");
	assert_string_equal(r->cert_type, "server");
	assert_int_equal(r->certificate_len, strlen(PEM_C));
	assert_string_equal(r->certificate, PEM_C);
	assert_null(r->private_key);
	assert_int_equal(r->private_key_len, 0);
	assert_int_equal(r->created_at, 1700000000);
	assert_int_equal(r->updated_at, 1700000001);
	assert_string_equal(r->meta.subject_cn, "www.example.test");
	assert_int_equal(r->meta.n_sans, 2);
	assert_string_equal(r->meta.sans[0], "www.example.test");
	assert_string_equal(r->meta.sans[1], "192.0.2.1");
	assert_string_equal(r->meta.issuer_cn, "Test CA");
	assert_string_equal(r->meta.issuer_dn, "CN=Test CA,O=certd");
	assert_string_equal(r->meta.serial, "01ab");
	assert_int_equal(r->meta.not_before, -5);
	assert_int_equal(r->meta.not_after, 2000000000);
	assert_string_equal(r->meta.fingerprint, FP_HEX);
	assert_string_equal(r->meta.key_algorithm, "ECDSA");
	assert_int_equal(r->meta.key_bits, 256);
	assert_int_equal(r->meta.chain_len, 2);
	assert_int_equal(sk.box_len, sizeof(std_box));
	assert_memory_equal(sk.box, std_box, sizeof(std_box));
	assert_memory_equal(sk.key_id, std_kid, RECORD_KEY_ID_LEN);
	record_sealed_clear(&sk);
	record_free(r);
	free(buf);
	doc_clear(&d);

	/* schema 1: the key in clear, no box */
	std_doc(&d, 1, NULL);
	doc_pack(&d, &buf, &len);
	memset(&sk, 0x5a, sizeof(sk));
	assert_int_equal(record_decode(buf, len, &r, &sk), 0);
	assert_null(sk.box);
	assert_int_equal(sk.box_len, 0);
	assert_int_equal(r->private_key_len, strlen(PEM_K));
	assert_string_equal(r->private_key, PEM_K);
	record_free(r);
	free(buf);
	doc_clear(&d);
}

/* The schema version: 1 and 2 only, once, an unsigned integer, anywhere. */
static void
test_decode_versions(void **state)
{
	struct doc	d;

	(void)state;
	std_doc(&d, 0, NULL);
	expect_refused(&d, "v 0");
	doc_clear(&d);
	std_doc(&d, RECORD_SCHEMA_VERSION + 1, NULL);
	expect_refused(&d, "v 3");
	doc_clear(&d);
	std_doc(&d, 255, NULL);
	expect_refused(&d, "v 255");
	doc_clear(&d);

	std_doc(&d, 2, NULL);
	doc_del(&d, "v");
	expect_refused(&d, "no v");
	kv_int(&d, "v", -2);
	expect_refused(&d, "v -2");
	doc_del(&d, "v");
	kv_str(&d, "v", "2");
	expect_refused(&d, "v \"2\"");
	doc_del(&d, "v");
	kv_raw(&d, "v", "\xca\x40\x00\x00\x00", 5);	/* float 2.0 */
	expect_refused(&d, "v float");
	doc_del(&d, "v");
	kv_uint(&d, "v", 2);	/* last in the map: still read first */
	expect_ok(&d, "v last");
	doc_dup_key(&d, "v");
	expect_refused(&d, "v twice");
	doc_clear(&d);

	/* schema 2 needs its key id and a sealed key */
	std_doc(&d, 2, NULL);
	doc_del(&d, "kid");
	expect_refused(&d, "v 2 without kid");
	doc_clear(&d);
	std_doc(&d, 2, NULL);
	doc_del(&d, "key");
	kv_str(&d, "key", PEM_K);
	expect_refused(&d, "v 2 with the key in clear");
	doc_clear(&d);
	/* schema 1 ignores a kid it did not know */
	std_doc(&d, 1, NULL);
	kv_nil(&d, "kid");
	expect_ok(&d, "v 1 with a nil kid");
	doc_clear(&d);
	std_doc(&d, 1, NULL);
	doc_del(&d, "key");
	kv_bin(&d, "key", PEM_K, strlen(PEM_K));
	expect_ok(&d, "v 1 with the key as bin");
	doc_del(&d, "key");
	kv_fill(&d, "key", 'k', CERTD_KEY_MAX, 0);
	expect_ok(&d, "v 1 key of CERTD_KEY_MAX");
	doc_del(&d, "key");
	kv_fill(&d, "key", 'k', CERTD_KEY_MAX + 1, 0);
	expect_refused(&d, "v 1 key over CERTD_KEY_MAX");
	doc_clear(&d);
}

static const char *const top_keys[] = {
	"v", "id", "rev", "team", "alias", "type", "cert", "key", "kid",
	"created", "updated", "meta",
};
static const char *const meta_keys[] = {
	"cn", "sans", "icn", "idn", "serial", "nb", "na", "fp", "kalg",
	"kbits", "chain",
};
#define NTOP	(sizeof(top_keys) / sizeof(top_keys[0]))
#define NMETA	(sizeof(meta_keys) / sizeof(meta_keys[0]))

/* Every field is required once; meta's fields are optional but once. */
static void
test_decode_missing_and_twice(void **state)
{
	struct doc	d, m;
	size_t		i;
	char		what[64];

	(void)state;
	for (i = 0; i < NTOP; i++) {
		std_doc(&d, 2, NULL);
		doc_del(&d, top_keys[i]);
		snprintf(what, sizeof(what), "without %s", top_keys[i]);
		expect_refused(&d, what);
		doc_clear(&d);

		std_doc(&d, 2, NULL);
		doc_dup_key(&d, top_keys[i]);
		snprintf(what, sizeof(what), "%s twice", top_keys[i]);
		expect_refused(&d, what);
		doc_clear(&d);
	}
	for (i = 0; i < NMETA; i++) {
		memset(&m, 0, sizeof(m));
		std_meta(&m);
		doc_del(&m, meta_keys[i]);
		std_doc(&d, 2, &m);
		snprintf(what, sizeof(what), "meta without %s", meta_keys[i]);
		expect_ok(&d, what);
		doc_clear(&d);

		memset(&m, 0, sizeof(m));
		std_meta(&m);
		doc_dup_key(&m, meta_keys[i]);
		std_doc(&d, 2, &m);
		snprintf(what, sizeof(what), "meta %s twice", meta_keys[i]);
		expect_refused(&d, what);
		doc_clear(&d);
	}
	/* an empty meta map is a record without metadata */
	memset(&m, 0, sizeof(m));
	std_doc(&d, 2, &m);
	expect_ok(&d, "empty meta");
	doc_clear(&d);
}

/* Set top-level key (replaced or added) to the value bytes v; expect ok. */
static void
try_top(const char *key, const void *v, size_t len, int ok)
{
	struct doc	d;
	char		what[96];

	std_doc(&d, 2, NULL);
	if (doc_find(&d, key) != NULL)
		doc_del(&d, key);
	kv_raw(&d, key, v, len);
	snprintf(what, sizeof(what), "%s = %zu bytes starting %02x", key, len,
	    len > 0 ? *(const unsigned char *)v : 0);
	if (ok)
		expect_ok(&d, what);
	else
		expect_refused(&d, what);
	doc_clear(&d);
}

/* The same inside meta. */
static void
try_meta(const char *key, const void *v, size_t len, int ok)
{
	struct doc	d, m;
	char		what[96];

	memset(&m, 0, sizeof(m));
	std_meta(&m);
	if (doc_find(&m, key) != NULL)
		doc_del(&m, key);
	kv_raw(&m, key, v, len);
	std_doc(&d, 2, &m);
	snprintf(what, sizeof(what), "meta %s = %zu bytes starting %02x", key,
	    len, len > 0 ? *(const unsigned char *)v : 0);
	if (ok)
		expect_ok(&d, what);
	else
		expect_refused(&d, what);
	doc_clear(&d);
}

#define TRY_TOP(k, v, ok)	try_top(k, v, sizeof(v) - 1, ok)
#define TRY_META(k, v, ok)	try_meta(k, v, sizeof(v) - 1, ok)

/* Values of the wrong type or out of range, field by field. */
static void
test_decode_wrong_types(void **state)
{
	(void)state;
	/* id: a positive integer, 0 is no id */
	TRY_TOP("id", "\x00", 0);
	TRY_TOP("id", "\xff", 0);			/* -1 */
	TRY_TOP("id", "\xa1" "1", 0);
	TRY_TOP("id", "\xc0", 0);
	TRY_TOP("id", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 1);
	/* rev: 0 is fine (a record not yet written) */
	TRY_TOP("rev", "\x00", 1);
	TRY_TOP("rev", "\xd0\x80", 0);
	TRY_TOP("rev", "\xc3", 0);
	/* text: str only, not empty for team and alias, no NUL */
	TRY_TOP("team", "\x05", 0);
	TRY_TOP("team", "\xc4\x01t", 0);		/* bin */
	TRY_TOP("team", "\xc0", 0);
	TRY_TOP("team", "\xa0", 0);
	TRY_TOP("team", "\xa3t\0t", 0);
	TRY_TOP("alias", "\xa0", 0);
	TRY_TOP("alias", "\xc0", 0);
	TRY_TOP("alias", "\xa3" "a\0b", 0);
	TRY_TOP("alias", "\x91\xa1" "a", 0);
	TRY_TOP("type", "\xa0", 1);			/* may be empty */
	TRY_TOP("type", "\xc0", 0);
	TRY_TOP("type", "\x01", 0);
	/* cert: str or bin */
	TRY_TOP("cert", "\xc4\x01" "C", 1);
	TRY_TOP("cert", "\xa0", 1);
	TRY_TOP("cert", "\xc0", 0);
	TRY_TOP("cert", "\x01", 0);
	/* schema 2 key: bin of at least the seal's overhead */
	TRY_TOP("key", "\xc4\x1b" "123456789012345678901234567", 0);
	TRY_TOP("key", "\xc4\x1c" "1234567890123456789012345678", 1);
	TRY_TOP("key", "\xa0", 0);
	TRY_TOP("key", "\xc0", 0);
	/* kid: bin of exactly 8 */
	TRY_TOP("kid", "\xc4\x07" "1234567", 0);
	TRY_TOP("kid", "\xc4\x09" "123456789", 0);
	TRY_TOP("kid", "\xa8" "12345678", 0);
	TRY_TOP("kid", "\xc4\x08" "1234567\0", 1);
	/* times: any int64 */
	TRY_TOP("created", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 1);
	TRY_TOP("created", "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 1);
	TRY_TOP("created", "\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 0);
	TRY_TOP("updated", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 0);
	TRY_TOP("updated", "\xa1" "1", 0);
	TRY_TOP("updated", "\xc0", 0);
	/* meta: a map */
	TRY_TOP("meta", "\x90", 0);
	TRY_TOP("meta", "\xc0", 0);
	TRY_TOP("meta", "\xa0", 0);

	/* metadata strings: nil allowed where absent makes sense */
	TRY_META("cn", "\xc0", 1);
	TRY_META("cn", "\x01", 0);
	TRY_META("cn", "\xa2" "a\0", 0);
	TRY_META("icn", "\xc0", 1);
	TRY_META("icn", "\xc4\x01" "a", 0);
	TRY_META("idn", "\xc0", 1);
	TRY_META("idn", "\x90", 0);
	TRY_META("serial", "\xc0", 1);
	TRY_META("serial", "\xc3", 0);
	TRY_META("kalg", "\xc0", 1);
	TRY_META("kalg", "\x00", 0);
	/* fingerprint: str of at most 64, never nil */
	TRY_META("fp", "\xc0", 0);
	TRY_META("fp", "\xa0", 1);
	TRY_META("fp", "\x05", 0);
	/* names: an array of strings, none nil */
	TRY_META("sans", "\x90", 1);
	TRY_META("sans", "\x91\xc0", 0);
	TRY_META("sans", "\x92\xa1" "a\x01", 0);
	TRY_META("sans", "\x91\xa2" "a\0", 0);
	TRY_META("sans", "\xa1" "a", 0);
	TRY_META("sans", "\xc0", 0);
	/* numbers */
	TRY_META("nb", "\xa1" "1", 0);
	TRY_META("na", "\xc0", 0);
	TRY_META("na", "\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 0);
	TRY_META("kbits", "\xce\xff\xff\xff\xff", 1);
	TRY_META("kbits", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 0);
	TRY_META("kbits", "\xff", 0);
	TRY_META("chain", "\xce\xff\xff\xff\xff", 1);
	TRY_META("chain", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 0);
	TRY_META("chain", "\xa1" "2", 0);
}

/* Each size bound, at the bound and one past it. */
static void
test_decode_sizes(void **state)
{
	static const struct {
		const char	*key;
		size_t		 max;
		int		 bin;
	} top[] = {
		{ "team", CERTD_TEAM_MAX, 0 },
		{ "alias", 4 * CERTD_ALIAS_MAX, 0 },
		{ "type", 4 * CERTD_TYPE_MAX, 0 },
		{ "cert", CERTD_CERT_MAX, 0 },
		{ "cert", CERTD_CERT_MAX, 1 },
		{ "key", CERTD_KEY_MAX + CERT_SEAL_OVERHEAD, 1 },
	};
	static const char *const text[] = { "cn", "icn", "idn", "serial",
	    "kalg" };
	struct doc	d, m;
	size_t		i, extra;
	char		what[64];

	(void)state;
	for (i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		for (extra = 0; extra <= 1; extra++) {
			std_doc(&d, 2, NULL);
			doc_del(&d, top[i].key);
			kv_fill(&d, top[i].key, 'x', top[i].max + extra,
			    top[i].bin);
			snprintf(what, sizeof(what), "%s of %zu bytes",
			    top[i].key, top[i].max + extra);
			if (extra)
				expect_refused(&d, what);
			else
				expect_ok(&d, what);
			doc_clear(&d);
		}
	/* metadata strings: 4096 bytes each; the fingerprint 64 */
	for (i = 0; i <= sizeof(text) / sizeof(text[0]); i++)
		for (extra = 0; extra <= 1; extra++) {
			const char *k = i < 5 ? text[i] : "fp";
			size_t max = i < 5 ? 4096 : CERT_FINGERPRINT_LEN;

			memset(&m, 0, sizeof(m));
			std_meta(&m);
			doc_del(&m, k);
			kv_fill(&m, k, 'a', max + extra, 0);
			std_doc(&d, 2, &m);
			snprintf(what, sizeof(what), "meta %s of %zu bytes", k,
			    max + extra);
			if (extra)
				expect_refused(&d, what);
			else
				expect_ok(&d, what);
			doc_clear(&d);
		}
}

/*
 * Unknown keys, at the top and in meta, are skipped whatever their value:
 * every msgpack type in every length encoding.  The record decodes as if
 * they were not there, and cut anywhere it is refused (the walk before
 * msgpack-c sizes each of these values right).  A non-string key is
 * refused, and so is the one byte msgpack never uses.
 */
static void
test_decode_unknown_keys(void **state)
{
	static const struct {
		const char	*v;
		size_t		 len;
	} vals[] = {
#define V(s)	{ s, sizeof(s) - 1 }
		V("\xc0"), V("\xc2"), V("\xc3"), V("\x05"), V("\x7f"),
		V("\xe0"), V("\xff"),
		V("\xcc\xff"), V("\xcd\xff\xff"), V("\xce\xff\xff\xff\xff"),
		V("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
		V("\xd0\x80"), V("\xd1\x80\x00"), V("\xd2\x80\x00\x00\x00"),
		V("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
		V("\xca\x3f\x80\x00\x00"),
		V("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
		V("\xa0"), V("\xa3" "abc"), V("\xd9\x03" "abc"),
		V("\xda\x00\x03" "abc"), V("\xdb\x00\x00\x00\x03" "abc"),
		V("\xc4\x00"), V("\xc4\x02\x01\x02"), V("\xc5\x00\x02\x01\x02"),
		V("\xc6\x00\x00\x00\x02\x01\x02"),
		V("\x90"), V("\x92\x01\x02"), V("\xdc\x00\x02\x01\x02"),
		V("\xdd\x00\x00\x00\x02\x01\x02"),
		V("\x80"), V("\x81\x01\x02"), V("\xde\x00\x01\x01\x02"),
		V("\xdf\x00\x00\x00\x01\x01\x02"),
		V("\xd4\x01\xaa"), V("\xd5\x01\xaa\xbb"),
		V("\xd6\x01\xaa\xbb\xcc\xdd"),
		V("\xd7\x01\x01\x02\x03\x04\x05\x06\x07\x08"),
		V("\xd8\x01" "0123456789abcdef"),
		V("\xc7\x00\x01"), V("\xc7\x03\x01" "abc"),
		V("\xc8\x00\x03\x01" "abc"),
		V("\xc9\x00\x00\x00\x03\x01" "abc"),
		/* nested: [{"x": [nil, true]}, {1: "v"}] */
		V("\x92\x81\xa1x\x92\xc0\xc3\x81\x01\xa1v"),
#undef V
	};
	struct cert_record	*r;
	struct record_sealed	 sk;
	struct doc		 d, m;
	char			*buf, what[64];
	size_t			 i, len, cut;
	int			 where;

	(void)state;
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		for (where = 0; where < 2; where++) {
			memset(&m, 0, sizeof(m));
			std_meta(&m);
			if (where == 1)
				kv_raw(&m, "zz", vals[i].v, vals[i].len);
			std_doc(&d, 2, &m);
			if (where == 0)
				kv_raw(&d, "later-field", vals[i].v,
				    vals[i].len);
			doc_pack(&d, &buf, &len);
			snprintf(what, sizeof(what), "unknown %s key, value "
			    "%zu (%02x)", where ? "meta" : "top", i,
			    (unsigned char)vals[i].v[0]);
			if (record_decode(buf, len, &r, &sk) != 0)
				fail_msg("%s: refused", what);
			assert_string_equal(r->alias, "web");
			assert_string_equal(r->meta.fingerprint, FP_HEX);
			assert_int_equal(r->meta.chain_len, 2);
			record_free(r);
			record_sealed_clear(&sk);
			for (cut = 0; cut < len; cut++)
				if (record_decode(cut > 0 ? buf : NULL, cut,
				    &r, &sk) != CERTD_ERR_STORAGE)
					fail_msg("%s: cut at %zu of %zu not "
					    "refused", what, cut, len);
			free(buf);
			doc_clear(&d);
		}

	/* keys must be strings, at the top and in meta */
	std_doc(&d, 2, NULL);
	doc_pack(&d, &buf, &len);
	assert_non_null(buf = realloc(buf, len + 2));
	assert_int_equal((unsigned char)buf[0], 0x8c);
	buf[0] = (char)0x8d;
	memcpy(buf + len, "\x01\x01", 2);		/* 1: 1 */
	assert_int_equal(record_decode(buf, len + 2, &r, &sk),
	    CERTD_ERR_STORAGE);
	memcpy(buf + len, "\xc4\x01", 2);		/* bin key */
	assert_non_null(buf = realloc(buf, len + 4));
	memcpy(buf + len + 2, "v\x01", 2);
	assert_int_equal(record_decode(buf, len + 4, &r, &sk),
	    CERTD_ERR_STORAGE);
	free(buf);
	doc_clear(&d);
	/* meta {"cn": nil, 2: 2}; with a string key it decodes */
	try_top("meta", "\x82\xa2" "cn\xc0\x02\x02", 7, 0);
	try_top("meta", "\x82\xa2" "cn\xc0\xa1q\x02", 8, 1);

	/* 0xc1 is never used, also as a skipped value */
	try_top("zz", "\xc1", 1, 0);
	try_meta("zz", "\xc1", 1, 0);
}

/*
 * Containers and strings that claim more than the buffer holds are
 * refused before msgpack-c sees them (it would size its allocation by
 * the claim); what fits exactly is fine.
 */
static void
test_decode_overclaim(void **state)
{
	static const struct {
		const char	*v;
		size_t		 len;
		int		 ok;
	} vals[] = {
#define V(s, ok)	{ s, sizeof(s) - 1, ok }
		V("\xdd\xff\xff\xff\xff", 0),
		V("\xdf\xff\xff\xff\xff", 0),
		V("\xdc\xff\xff", 0),
		V("\xde\xff\xff", 0),
		V("\x9f\x01\x02", 0),
		V("\x8f\x01\x02", 0),
		V("\xdb\xff\xff\xff\xff" "abc", 0),
		V("\xc6\xff\xff\xff\xff" "abc", 0),
		V("\xc9\xff\xff\xff\xff\x01" "abc", 0),
		V("\xd8\x01" "short", 0),
		/* each element takes a byte: 3 nils in 3 bytes fit */
		V("\x93\xc0\xc0\xc0", 1),
		V("\xdc\x00\x03\xc0\xc0\xc0", 1),
		/* nested claims that only add up to too much */
		V("\x92\xdc\xff\xff\x01", 0),
		V("\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0", 1),
#undef V
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		try_top("zz", vals[i].v, vals[i].len, vals[i].ok);
}

/* The buffer holds one record and nothing else. */
static void
test_decode_framing(void **state)
{
	struct cert_record	*r = (struct cert_record *)1;
	struct record_sealed	 sk;
	struct doc		 d;
	char			*buf;
	size_t			 len;

	(void)state;
	assert_int_equal(record_decode(NULL, 0, &r, &sk), CERTD_ERR_STORAGE);
	assert_null(r);
	assert_int_equal(record_decode("", 0, &r, &sk), CERTD_ERR_STORAGE);
	assert_int_equal(record_decode(NULL, 12, &r, &sk), CERTD_ERR_STORAGE);
	/* a record that is not a map */
	assert_int_equal(record_decode("\xc0", 1, &r, &sk), CERTD_ERR_STORAGE);
	assert_int_equal(record_decode("\xa1v", 2, &r, &sk), CERTD_ERR_STORAGE);
	assert_int_equal(record_decode("\x80", 1, &r, &sk), CERTD_ERR_STORAGE);

	std_doc(&d, 2, NULL);
	doc_pack(&d, &buf, &len);
	/* two records back to back */
	assert_non_null(buf = realloc(buf, 2 * len));
	memcpy(buf + len, buf, len);
	assert_int_equal(record_decode(buf, 2 * len, &r, &sk),
	    CERTD_ERR_STORAGE);
	assert_null(r);
	assert_null(sk.box);
	/* the first of them alone is fine */
	assert_int_equal(record_decode(buf, len, &r, &sk), 0);
	record_free(r);
	record_sealed_clear(&sk);
	/* a map of 12 that says 13 */
	buf[0] = (char)0x8d;
	assert_int_equal(record_decode(buf, len, &r, &sk), CERTD_ERR_STORAGE);
	/* and 11: "meta" is left over */
	buf[0] = (char)0x8b;
	assert_int_equal(record_decode(buf, len, &r, &sk), CERTD_ERR_STORAGE);
	free(buf);
	doc_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_exact_bytes),
		cmocka_unit_test(test_roundtrip_limits),
		cmocka_unit_test(test_encode_edges),
		cmocka_unit_test(test_dup),
		cmocka_unit_test(test_seal_binding),
		cmocka_unit_test(test_decode_std),
		cmocka_unit_test(test_decode_versions),
		cmocka_unit_test(test_decode_missing_and_twice),
		cmocka_unit_test(test_decode_wrong_types),
		cmocka_unit_test(test_decode_sizes),
		cmocka_unit_test(test_decode_unknown_keys),
		cmocka_unit_test(test_decode_overclaim),
		cmocka_unit_test(test_decode_framing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
