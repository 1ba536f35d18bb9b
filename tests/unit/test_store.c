/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for record.c and store.c: the record encoding (round trip,
 * every truncation, garbage, versions), and the store against a real
 * RocksDB in a temporary directory with its own event_base: the two views,
 * alias handling, paging, persistence across reopen, group commit order,
 * the single-process lock, write failures, a 10,000-record reload, and the
 * change log (retention, scans, never reporting what is not applied yet);
 * keys at rest (sealed records, the master key file and its refusals, the
 * upgrade of schema 1 records, rotation with crashes at every step), backup,
 * and recovery after failed writes; history (the last N versions, trimmed
 * also within one batch, dropped with the certificate, kept across reopen
 * and rotation, seeded when an older database is upgraded); a damaged
 * write-ahead log (refused, recovered point-in-time) and a torn one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif

#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <fcntl.h>
#include <msgpack.h>
/* only to build a schema 1 database as an older certd left it */
#include <rocksdb/c.h>

#include "certd/constants.h"
#include "cert.h"
#include "record.h"
#include "store.h"
#include "store_test.h"
#include "util.h"

/* Where the store stands (store_get_pos), as a value. */
static struct store_pos
pos(const struct store *s)
{
	struct store_pos	p;

	store_get_pos(s, &p);
	return p;
}

struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct store		*s;
};

struct done {
	int		called;
	int		err;
	uint64_t	id;
	uint64_t	rev;
	int		order;		/* global completion sequence */
};

#define CHANGES_MAX	256

struct change_log {
	size_t		n;
	int		kind[CHANGES_MAX];
	uint64_t	rev[CHANGES_MAX];
	uint64_t	old_id[CHANGES_MAX];
	uint64_t	new_id[CHANGES_MAX];
};

static int	seq;

/* ------------------------------------------------------------------ */

static char *
xstrdup(const char *s)
{
	char	*d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A record with every field set; `pad` bytes of filler in the PEM. */
static struct cert_record *
mkrec(const char *team, const char *alias, uint64_t id, size_t pad)
{
	struct cert_record	*r;
	char			 buf[128];
	size_t			 i;

	assert_non_null(r = record_new());
	r->id = id;
	r->team = xstrdup(team);
	r->alias = xstrdup(alias);
	r->cert_type = xstrdup("server");
	assert_non_null(r->certificate = malloc(pad + 128));
	i = (size_t)snprintf(r->certificate, 128,
	    "-----BEGIN CERTIFICATE-----\n%s/%llu\n", alias,
	    (unsigned long long)id);
	memset(r->certificate + i, 'A', pad);
	i += pad;
	i += (size_t)snprintf(r->certificate + i, 64,
	    "\n-----END CERTIFICATE-----\n");
	r->certificate_len = i;
	snprintf(buf, sizeof(buf), "-----BEGIN PRIVATE KEY-----\nK%llu\n"
	    "-----END PRIVATE KEY-----\n", (unsigned long long)id);
	r->private_key = xstrdup(buf);
	r->private_key_len = strlen(buf);
	r->created_at = 1700000000 + (int64_t)id;
	r->updated_at = r->created_at + 1;
	r->meta.subject_cn = xstrdup(alias);
	assert_non_null(r->meta.sans = calloc(2, sizeof(char *)));
	r->meta.sans[0] = xstrdup("www.example.org");
	r->meta.sans[1] = xstrdup("192.0.2.1");
	r->meta.n_sans = 2;
	r->meta.issuer_cn = xstrdup("Test CA");
	r->meta.issuer_dn = xstrdup("CN=Test CA,O=certd");
	r->meta.serial = xstrdup("01ab");
	r->meta.not_before = -5;
	r->meta.not_after = 2000000000;
	memset(r->meta.fingerprint, 'f', CERT_FINGERPRINT_LEN);
	r->meta.fingerprint[0] = '0' + (char)(id % 10);
	r->meta.key_algorithm = xstrdup("ECDSA");
	r->meta.key_bits = 256;
	r->meta.chain_len = 2;
	return r;
}

static void
assert_opt_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_rec_equal(const struct cert_record *a, const struct cert_record *b)
{
	size_t	i;

	assert_int_equal(a->id, b->id);
	assert_int_equal(a->revision, b->revision);
	assert_string_equal(a->team, b->team);
	assert_string_equal(a->alias, b->alias);
	assert_string_equal(a->cert_type, b->cert_type);
	assert_int_equal(a->certificate_len, b->certificate_len);
	assert_memory_equal(a->certificate, b->certificate,
	    a->certificate_len);
	assert_int_equal(a->private_key_len, b->private_key_len);
	assert_memory_equal(a->private_key, b->private_key,
	    a->private_key_len);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->updated_at, b->updated_at);
	assert_opt_str_equal(a->meta.subject_cn, b->meta.subject_cn);
	assert_int_equal(a->meta.n_sans, b->meta.n_sans);
	for (i = 0; i < a->meta.n_sans; i++)
		assert_string_equal(a->meta.sans[i], b->meta.sans[i]);
	assert_opt_str_equal(a->meta.issuer_cn, b->meta.issuer_cn);
	assert_opt_str_equal(a->meta.issuer_dn, b->meta.issuer_dn);
	assert_opt_str_equal(a->meta.serial, b->meta.serial);
	assert_int_equal(a->meta.not_before, b->meta.not_before);
	assert_int_equal(a->meta.not_after, b->meta.not_after);
	assert_string_equal(a->meta.fingerprint, b->meta.fingerprint);
	assert_opt_str_equal(a->meta.key_algorithm, b->meta.key_algorithm);
	assert_int_equal(a->meta.key_bits, b->meta.key_bits);
	assert_int_equal(a->meta.chain_len, b->meta.chain_len);
}

static void
done_cb(int err, const struct cert_record *rec, void *arg)
{
	struct done	*d = arg;

	d->called++;
	d->err = err;
	d->id = rec != NULL ? rec->id : 0;
	d->rev = rec != NULL ? rec->revision : 0;
	d->order = ++seq;
}

static void
change_cb(const struct store_change *ch, void *arg)
{
	struct change_log	*cl = arg;

	assert_true(cl->n < CHANGES_MAX);
	cl->kind[cl->n] = ch->kind;
	cl->rev[cl->n] = ch->revision;
	cl->old_id[cl->n] = ch->old != NULL ? ch->old->id : 0;
	cl->new_id[cl->n] = ch->rec != NULL ? ch->rec->id : 0;
	cl->n++;
}

/* Run the loop until d->called (every one of n). */
static void
run_until(struct event_base *base, struct done *d, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		while (d[i].called == 0)
			assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
}

static struct store *
reopen(struct fixture *f)
{
	char	err[256];

	store_free(f->s);
	f->s = store_open(f->base, f->dir, err, sizeof(err));
	if (f->s == NULL)
		fail_msg("store_open: %s", err);
	return f->s;
}

/* Put a fresh record and wait for it to commit; returns its id. */
static uint64_t
put_new(struct fixture *f, const char *team, const char *alias)
{
	struct done	d = { 0 };
	uint64_t	id = store_next_id(f->s);

	assert_int_equal(store_put(f->s, mkrec(team, alias, id, 64), done_cb,
	    &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.id, id);
	return id;
}

/* Remove the test directory: <dir>/db/<files>, nothing deeper. */
static void
rm_tree(const char *path, int depth)
{
	struct dirent	*de;
	DIR		*d;
	char		 sub[PATH_MAX];

	if (depth < 3 && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
			    de->d_name) >= sizeof(sub))
				continue;
			rm_tree(sub, depth + 1);
		}
		closedir(d);
	}
	remove(path);
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[256];

	assert_non_null(f = calloc(1, sizeof(*f)));
	snprintf(f->dir, sizeof(f->dir), "/tmp/certd-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(f->base = event_base_new());
	f->s = store_open(f->base, f->dir, err, sizeof(err));
	if (f->s == NULL)
		fail_msg("store_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	store_free(f->s);
	event_base_free(f->base);
	rm_tree(f->dir, 0);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* record.c                                                            */

/* 31 and 7 characters and their NUL */
static const unsigned char test_key[CERT_SEAL_KEY_LEN] =
    "0123456789abcdef0123456789abcde";
static const unsigned char test_kid[RECORD_KEY_ID_LEN] = "kid-001";

/* Decode, check the key id, open the box: what the store does at load. */
static int
decode_open(const char *buf, size_t len, struct cert_record **out)
{
	struct record_sealed	sk;
	int			err;

	if ((err = record_decode(buf, len, out, &sk)) != 0) {
		assert_null(*out);
		assert_null(sk.box);
		return err;
	}
	if (sk.box != NULL) {
		assert_memory_equal(sk.key_id, test_kid, RECORD_KEY_ID_LEN);
		assert_null((*out)->private_key);
		err = record_unseal(*out, &sk, test_key);
		record_sealed_clear(&sk);
	}
	return err;
}

/* Seal under the test key and encode. */
static void
encode_sealed(const struct cert_record *r, char **buf, size_t *len)
{
	struct record_sealed	sk;

	assert_int_equal(record_seal(r, test_key, test_kid, &sk), 0);
	assert_int_equal(record_encode(r, &sk, buf, len), 0);
	record_sealed_clear(&sk);
	assert_null(sk.box);
}

static void
test_record_roundtrip(void **state)
{
	struct cert_record	*r, *d, *dup;
	char			*buf, *copy;
	size_t			 len, i;

	(void)state;
	r = mkrec("team-a", "web", 42, 3000);
	r->revision = 7;
	encode_sealed(r, &buf, &len);
	/* the encoding holds no part of the key in clear */
	assert_null(memmem(buf, len, "PRIVATE KEY", 11));
	assert_null(memmem(buf, len, "\nK42\n", 5));
	assert_int_equal(decode_open(buf, len, &d), 0);
	assert_rec_equal(r, d);
	assert_non_null(dup = record_dup(d));
	assert_rec_equal(r, dup);
	record_free(d);

	/* there is no encoding without a sealed key */
	assert_int_equal(record_encode(r, NULL, &copy, &i), CERTD_ERR_INTERNAL);

	/* every truncation is refused, not misread */
	for (i = 0; i < len; i++) {
		assert_non_null(copy = malloc(i + 1));
		memcpy(copy, buf, i);
		assert_int_equal(decode_open(i > 0 ? copy : NULL, i, &d),
		    CERTD_ERR_STORAGE);
		assert_null(d);
		free(copy);
	}

	/* trailing garbage */
	assert_non_null(copy = malloc(len + 1));
	memcpy(copy, buf, len);
	copy[len] = '\0';
	assert_int_equal(decode_open(copy, len + 1, &d), CERTD_ERR_STORAGE);

	/* a later schema version is refused: map, "v" key, then value */
	assert_int_equal((unsigned char)copy[0], 0x8c);
	assert_int_equal(copy[3], RECORD_SCHEMA_VERSION);
	copy[3] = RECORD_SCHEMA_VERSION + 1;
	assert_int_equal(decode_open(copy, len, &d), CERTD_ERR_STORAGE);
	free(copy);

	/* an unknown key is skipped: one more map entry "zz": 1 */
	assert_non_null(copy = malloc(len + 4));
	memcpy(copy, buf, len);
	copy[0] = (char)0x8d;
	memcpy(copy + len, "\xa2zz\x01", 4);
	assert_int_equal(decode_open(copy, len + 4, &d), 0);
	assert_rec_equal(r, d);
	record_free(d);
	free(copy);

	util_wipe(buf, len);
	free(buf);
	record_free(dup);
	record_free(r);
}

static void
test_record_garbage(void **state)
{
	static const char *const bad[] = {
		"\xdd\xff\xff\xff\xff",		/* array32 of 4G elements */
		"\xdf\xff\xff\xff\xff",		/* map32 of 4G pairs */
		"\xdb\xff\xff\xff\xff",		/* str32 of 4 GiB */
		"\xc1",				/* never used */
		"\x81\xa1v\x01",		/* only a version */
		"\x81\x01\x01",			/* integer key */
		"\x92\x01\x02",			/* array, not map */
		"\x81\xa1v\xa1x",		/* version is a string */
		"\x82\xa1v\x01\xa1v\x01",	/* duplicate key */
	};
	static const size_t	 badlen[] = { 5, 5, 5, 1, 4, 3, 3, 5, 7 };
	struct cert_record	*d;
	unsigned char		 buf[512];
	unsigned		 seed = 12345;
	size_t			 i, j, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(decode_open(bad[i], badlen[i], &d),
		    CERTD_ERR_STORAGE);
		assert_null(d);
	}
	for (i = 0; i < 20000; i++) {
		len = 1 + (size_t)rand_r(&seed) % sizeof(buf);
		for (j = 0; j < len; j++)
			buf[j] = (unsigned char)rand_r(&seed);
		if (i % 2 == 0)
			buf[0] = (unsigned char)(0x80 | (i % 16));   /* a map */
		assert_int_equal(decode_open((char *)buf, len, &d),
		    CERTD_ERR_STORAGE);
	}
}

/* ------------------------------------------------------------------ */
/* store.c                                                             */

static void
test_put_get(void **state)
{
	struct fixture			*f = *state;
	struct change_log		 cl = { 0 };
	struct done			 d = { 0 };
	const struct cert_record	*r;
	struct cert_record		*want;
	uint64_t			 id;

	store_set_change_cb(f->s, change_cb, &cl);
	assert_int_equal(store_revision(f->s), 0);
	id = store_next_id(f->s);
	assert_int_equal(id, 1);
	want = mkrec("t1", "web", id, 100);
	assert_int_equal(store_put(f->s, record_dup(want), done_cb, &d), 0);

	/* head view at once, committed view only after completion */
	assert_int_equal(d.called, 0);
	assert_null(store_get(f->s, "t1", id));
	assert_null(store_get_alias(f->s, "t1", "web"));
	assert_non_null(store_head_get(f->s, "t1", id));
	assert_null(store_head_get(f->s, "t2", id));
	assert_int_equal(store_head_alias(f->s, "t1", "web"), id);
	assert_int_equal(store_head_alias(f->s, "t2", "web"), 0);
	assert_int_equal(pos(f->s).count, 0);
	assert_int_equal(store_revision(f->s), 0);

	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.rev, 1);
	assert_int_equal(store_revision(f->s), 1);
	assert_int_equal(pos(f->s).count, 1);
	assert_non_null(r = store_get(f->s, "t1", id));
	/* a record read again is a copy of the same version */
	assert_rec_equal(store_get_alias(f->s, "t1", "web"), r);
	assert_null(store_get(f->s, "t2", id));
	want->revision = 1;
	assert_rec_equal(want, r);

	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.kind[0], STORE_PUT);
	assert_int_equal(cl.rev[0], 1);
	assert_int_equal(cl.old_id[0], 0);
	assert_int_equal(cl.new_id[0], id);
	record_free(want);

	/* store_put refuses what the head view forbids, and frees rec */
	assert_int_equal(store_put(f->s, mkrec("t1", "web", store_next_id(f->s),
	    1), done_cb, &d), CERTD_ERR_ALIAS_EXISTS);
	assert_int_equal(store_put(f->s, mkrec("t2", "web", id, 1), done_cb,
	    &d), CERTD_ERR_INTERNAL);	/* id of another team */
	assert_int_equal(store_put(f->s, mkrec("t1", "x", 999, 1), done_cb,
	    &d), CERTD_ERR_INTERNAL);	/* id never reserved */
	assert_int_equal(store_delete(f->s, "t2", id, done_cb, &d),
	    CERTD_ERR_NOT_FOUND);
	assert_int_equal(d.called, 1);
	store_set_change_cb(f->s, NULL, NULL);
}

static void
test_update_alias(void **state)
{
	struct fixture			*f = *state;
	struct change_log		 cl = { 0 };
	struct done			 d = { 0 };
	struct cert_record		*upd;
	const struct cert_record	*r;
	uint64_t			 id, id2;

	id = put_new(f, "t1", "old");
	store_set_change_cb(f->s, change_cb, &cl);
	upd = mkrec("t1", "new", id, 10);
	free(upd->cert_type);
	upd->cert_type = xstrdup("client");
	assert_int_equal(store_put(f->s, upd, done_cb, &d), 0);
	assert_int_equal(store_head_alias(f->s, "t1", "old"), 0);
	assert_int_equal(store_head_alias(f->s, "t1", "new"), id);
	assert_non_null(store_get_alias(f->s, "t1", "old"));
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);

	assert_null(store_get_alias(f->s, "t1", "old"));
	assert_non_null(r = store_get_alias(f->s, "t1", "new"));
	assert_int_equal(r->id, id);
	assert_string_equal(r->cert_type, "client");
	assert_int_equal(pos(f->s).count, 1);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.old_id[0], id);
	assert_int_equal(cl.new_id[0], id);
	store_set_change_cb(f->s, NULL, NULL);

	/* the old alias is free again, also after a reopen */
	id2 = put_new(f, "t1", "old");
	reopen(f);
	assert_int_equal(store_get_alias(f->s, "t1", "old")->id, id2);
	assert_int_equal(store_get_alias(f->s, "t1", "new")->id, id);
	assert_int_equal(pos(f->s).count, 2);
}

static void
test_delete(void **state)
{
	struct fixture	*f = *state;
	struct change_log cl = { 0 };
	struct done	 d = { 0 };
	uint64_t	 a, b;

	a = put_new(f, "t1", "a");
	b = put_new(f, "t1", "b");
	store_set_change_cb(f->s, change_cb, &cl);
	assert_int_equal(store_delete(f->s, "t1", a, done_cb, &d), 0);
	assert_null(store_head_get(f->s, "t1", a));
	assert_int_equal(store_head_alias(f->s, "t1", "a"), 0);
	assert_non_null(store_get(f->s, "t1", a));
	/* deleting it twice is refused against the head view */
	assert_int_equal(store_delete(f->s, "t1", a, done_cb, &d),
	    CERTD_ERR_NOT_FOUND);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.id, a);		/* the record deleted */
	assert_null(store_get(f->s, "t1", a));
	assert_null(store_get_alias(f->s, "t1", "a"));
	assert_int_equal(pos(f->s).count, 1);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.kind[0], STORE_DELETE);
	assert_int_equal(cl.old_id[0], a);
	assert_int_equal(cl.new_id[0], 0);
	assert_int_equal(cl.rev[0], store_revision(f->s));
	store_set_change_cb(f->s, NULL, NULL);

	reopen(f);
	assert_null(store_get(f->s, "t1", a));
	assert_int_equal(store_get(f->s, "t1", b)->id, b);
	assert_int_equal(pos(f->s).count, 1);

	/* deleting the highest id must not hand it out again after reopen */
	d.called = 0;
	assert_int_equal(store_delete(f->s, "t1", b, done_cb, &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
	reopen(f);
	assert_int_equal(pos(f->s).count, 0);
	assert_int_equal(store_next_id(f->s), b + 1);
}

static void
test_list_paging(void **state)
{
	struct fixture			*f = *state;
	const struct cert_record	*out[8];
	uint64_t			 ids_a[10], ids_b[5];
	char				 alias[16];
	size_t				 i, n, total, ia = 0, ib = 0;

	for (i = 0; i < 15; i++) {
		snprintf(alias, sizeof(alias), "c%zu", i);
		if (i % 3 == 2)
			ids_b[ib++] = put_new(f, "B", alias);
		else
			ids_a[ia++] = put_new(f, "A", alias);
	}
	for (int round = 0; round < 2; round++) {
		n = store_list(f->s, "A", 0, 4, out, &total);
		assert_int_equal(n, 4);
		assert_int_equal(total, 10);
		for (i = 0; i < n; i++)
			assert_int_equal(out[i]->id, ids_a[i]);
		n = store_list(f->s, "A", 8, 4, out, &total);
		assert_int_equal(n, 2);
		assert_int_equal(out[0]->id, ids_a[8]);
		assert_int_equal(out[1]->id, ids_a[9]);
		assert_int_equal(store_list(f->s, "A", 10, 4, out, &total), 0);
		assert_int_equal(total, 10);
		n = store_list(f->s, "B", 1, 8, out, &total);
		assert_int_equal(n, 4);
		assert_int_equal(total, 5);
		for (i = 0; i < n; i++) {
			assert_int_equal(out[i]->id, ids_b[i + 1]);
			assert_string_equal(out[i]->team, "B");
		}
		assert_int_equal(store_list(f->s, "C", 0, 8, out, &total), 0);
		assert_int_equal(total, 0);
		reopen(f);
	}
}

static void
test_reopen_persists(void **state)
{
	struct fixture		*f = *state;
	struct cert_record	*want[3];
	struct done		 d[3] = { { 0 } };
	uint64_t		 id, rev, del;
	int			 i;

	del = put_new(f, "t1", "gone");
	for (i = 0; i < 3; i++) {
		id = store_next_id(f->s);
		want[i] = mkrec(i == 1 ? "t2" : "t1", i == 0 ? "x" : "y", id,
		    2000);
		assert_int_equal(store_put(f->s, record_dup(want[i]), done_cb,
		    &d[i]), 0);
	}
	run_until(f->base, d, 3);
	assert_int_equal(store_delete(f->s, "t1", del, done_cb, &d[0]), 0);
	d[0].called = 0;
	run_until(f->base, d, 1);
	/* reserved but never used: must not come back either */
	id = store_next_id(f->s);
	rev = store_revision(f->s);
	assert_int_equal(rev, 5);

	reopen(f);
	assert_int_equal(store_revision(f->s), rev);
	assert_int_equal(pos(f->s).count, 3);
	assert_null(store_get(f->s, "t1", del));
	for (i = 0; i < 3; i++) {
		want[i]->revision = (uint64_t)i + 2;
		assert_rec_equal(want[i], store_get(f->s, want[i]->team,
		    want[i]->id));
		assert_rec_equal(store_get_alias(f->s, want[i]->team,
		    want[i]->alias), store_get(f->s, want[i]->team,
		    want[i]->id));
		record_free(want[i]);
	}
	assert_true(store_next_id(f->s) >= id);

	/* the next write continues the revision sequence */
	put_new(f, "t1", "after");
	assert_int_equal(store_revision(f->s), rev + 1);
	reopen(f);
	assert_int_equal(store_revision(f->s), rev + 1);
}

static void
test_pending_alias(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[4] = { { 0 } };
	uint64_t	 a, b, c;

	a = store_next_id(f->s);
	b = store_next_id(f->s);
	assert_int_equal(store_put(f->s, mkrec("t", "x", a, 1), done_cb,
	    &d[0]), 0);
	/* b cannot take x while a's create is in flight */
	assert_int_equal(store_head_alias(f->s, "t", "x"), a);
	assert_int_equal(store_put(f->s, mkrec("t", "x", b, 1), done_cb,
	    &d[1]), CERTD_ERR_ALIAS_EXISTS);
	/* a pending rename of a frees x for b, still before any commit */
	assert_int_equal(store_put(f->s, mkrec("t", "y", a, 1), done_cb,
	    &d[1]), 0);
	assert_int_equal(store_head_alias(f->s, "t", "x"), 0);
	assert_int_equal(store_head_alias(f->s, "t", "y"), a);
	assert_int_equal(store_put(f->s, mkrec("t", "x", b, 1), done_cb,
	    &d[2]), 0);
	assert_int_equal(store_head_alias(f->s, "t", "x"), b);
	/* and a pending delete of b frees it once more */
	assert_int_equal(store_delete(f->s, "t", b, done_cb, &d[3]), 0);
	assert_int_equal(store_head_alias(f->s, "t", "x"), 0);
	assert_null(store_head_get(f->s, "t", b));
	assert_int_equal(store_head_get(f->s, "t", a)->id, a);
	assert_string_equal(store_head_get(f->s, "t", a)->alias, "y");

	run_until(f->base, d, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(d[i].err, 0);
	assert_int_equal(store_get_alias(f->s, "t", "y")->id, a);
	assert_null(store_get_alias(f->s, "t", "x"));
	assert_null(store_get(f->s, "t", b));
	c = put_new(f, "t", "x");
	reopen(f);
	assert_int_equal(store_get_alias(f->s, "t", "x")->id, c);
	assert_int_equal(pos(f->s).count, 2);
}

static void
test_group_commit(void **state)
{
	struct fixture		*f = *state;
	struct change_log	 cl = { 0 };
	struct done		 d[100] = { { 0 } };
	char			 alias[16];
	uint64_t		 first = store_revision(f->s) + 1;
	int			 i, base_seq;

	store_set_change_cb(f->s, change_cb, &cl);
	base_seq = seq;
	for (i = 0; i < 100; i++) {
		snprintf(alias, sizeof(alias), "g%d", i);
		assert_int_equal(store_put(f->s, mkrec(i % 2 ? "odd" : "even",
		    alias, store_next_id(f->s), 500), done_cb, &d[i]), 0);
	}
	/* nothing completes inside store_put */
	for (i = 0; i < 100; i++)
		assert_int_equal(d[i].called, 0);
	run_until(f->base, d, 100);
	for (i = 0; i < 100; i++) {
		assert_int_equal(d[i].called, 1);
		assert_int_equal(d[i].err, 0);
		assert_int_equal(d[i].rev, first + (uint64_t)i);
		assert_int_equal(d[i].order, base_seq + i + 1);
		assert_int_equal(cl.rev[i], first + (uint64_t)i);
		assert_int_equal(cl.new_id[i], d[i].id);
	}
	assert_int_equal(cl.n, 100);
	assert_int_equal(pos(f->s).count, 100);
	assert_int_equal(store_revision(f->s), first + 99);
	store_set_change_cb(f->s, NULL, NULL);
}

static void
test_free_drains(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[10] = { { 0 } };
	char		 alias[16];
	int		 i;

	for (i = 0; i < 10; i++) {
		snprintf(alias, sizeof(alias), "f%d", i);
		assert_int_equal(store_put(f->s, mkrec("t", alias,
		    store_next_id(f->s), 10), done_cb, &d[i]), 0);
	}
	store_free(f->s);
	f->s = NULL;
	for (i = 0; i < 10; i++) {
		assert_int_equal(d[i].called, 1);
		assert_int_equal(d[i].err, 0);
	}
	reopen(f);
	assert_int_equal(pos(f->s).count, 10);
	assert_int_equal(store_revision(f->s), 10);
}

static void
test_double_open(void **state)
{
	struct fixture	*f = *state;
	struct store	*s2;
	char		 err[512];

	s2 = store_open(f->base, f->dir, err, sizeof(err));
	assert_null(s2);
	assert_non_null(strstr(err, "in use by another process"));
	assert_null(strchr(err, '\n'));
	printf("# second open: %s\n", err);

	/* an unwritable place fails with a reason, too */
	s2 = store_open(f->base, "/nonexistent/certd", err, sizeof(err));
	assert_null(s2);
	assert_non_null(strstr(err, "/nonexistent/certd/db"));
}

struct resubmit {
	struct fixture	*f;
	struct done	 d;		/* the op submitted from a callback */
	int		 submitted;
};

static void
fail_then_resubmit(int err, const struct cert_record *rec, void *arg)
{
	struct resubmit	*rs = arg;

	assert_int_equal(err, CERTD_ERR_STORAGE);
	assert_null(rec);
	/* the failed ops are out of the head view already */
	assert_null(store_head_get(rs->f->s, "t", 2));
	assert_int_equal(store_put(rs->f->s, mkrec("t", "from-cb",
	    store_next_id(rs->f->s), 1), done_cb, &rs->d), 0);
	rs->submitted = 1;
}

static void
test_write_failure(void **state)
{
	struct fixture			*f = *state;
	struct change_log		 cl = { 0 };
	struct resubmit			 rs = { .f = f };
	struct done			 d[4] = { { 0 } };
	struct cert_record		*upd;
	const struct cert_record	*r;
	uint64_t			 a, b, rev;

	a = put_new(f, "t", "a");
	rev = store_revision(f->s);
	store_set_change_cb(f->s, change_cb, &cl);

	store_fail_next_writes(f->s, 1);
	b = store_next_id(f->s);
	assert_int_equal(b, 2);
	assert_int_equal(store_put(f->s, mkrec("t", "b", b, 1),
	    fail_then_resubmit, &rs), 0);
	upd = mkrec("t", "a2", a, 1);
	assert_int_equal(store_put(f->s, upd, done_cb, &d[0]), 0);
	assert_int_equal(store_delete(f->s, "t", b, done_cb, &d[1]), 0);
	assert_int_equal(store_put(f->s, mkrec("t", "c",
	    store_next_id(f->s), 1), done_cb, &d[2]), 0);

	run_until(f->base, d, 3);
	assert_true(rs.submitted);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].err, CERTD_ERR_STORAGE);
	assert_int_equal(cl.n, 0);
	assert_int_equal(store_revision(f->s), rev);
	assert_null(store_get(f->s, "t", b));
	assert_non_null(r = store_get(f->s, "t", a));
	assert_string_equal(r->alias, "a");
	assert_string_equal(store_head_get(f->s, "t", a)->alias, "a");
	assert_int_equal(store_head_alias(f->s, "t", "a2"), 0);
	assert_int_equal(pos(f->s).count, 1);

	/* the op submitted from the failure callback goes through */
	run_until(f->base, &rs.d, 1);
	assert_int_equal(rs.d.err, 0);
	assert_true(rs.d.rev > rev);
	assert_int_equal(cl.n, 1);
	store_set_change_cb(f->s, NULL, NULL);

	/* and so do later writes */
	put_new(f, "t", "a2");
	reopen(f);
	assert_int_equal(pos(f->s).count, 3);
	assert_null(store_get(f->s, "t", b));
	assert_string_equal(store_get(f->s, "t", a)->alias, "a");
	assert_non_null(store_get_alias(f->s, "t", "from-cb"));
}

static void
test_ten_thousand(void **state)
{
	struct fixture	*f = *state;
	struct done	*d;
	struct timespec	 t0, t1;
	char		 alias[32], team[16];
	size_t		 i, j, n = 10000, chunk = 1000;

	assert_non_null(d = calloc(n, sizeof(*d)));
	for (i = 0; i < n; i += chunk) {
		for (j = i; j < i + chunk; j++) {
			snprintf(team, sizeof(team), "team%zu", j % 20);
			snprintf(alias, sizeof(alias), "cert-%zu", j);
			assert_int_equal(store_put(f->s, mkrec(team, alias,
			    store_next_id(f->s), 2500), done_cb, &d[j]), 0);
		}
		run_until(f->base, d + i, chunk);
	}
	for (i = 0; i < n; i++)
		assert_int_equal(d[i].err, 0);
	free(d);

	store_free(f->s);
	f->s = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	reopen(f);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# reopen of %zu records: %.1f ms\n", n,
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_int_equal(pos(f->s).count, n);
	assert_int_equal(store_revision(f->s), n);
	assert_int_equal(store_get_alias(f->s, "team7", "cert-4567")->id,
	    4568);

	/* a rotation of them all: one batch, then a compaction */
	{
		struct done	dr = { 0 };

		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(store_rekey(f->s, done_cb, &dr), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("# rekey of %zu records, on the loop: %.1f ms\n", n,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
		run_until(f->base, &dr, 1);
		assert_int_equal(dr.err, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("# rekey of %zu records, in all: %.1f ms\n", n,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
	reopen(f);
	assert_int_equal(pos(f->s).count, n);
}

/* ------------------------------------------------------------------ */
/* Change log                                                          */

#define SCAN_MAX	128

struct scan {
	size_t		n;
	size_t		stop_after;	/* 0: never stop */
	uint64_t	rev[SCAN_MAX];
	int		kind[SCAN_MAX];
	uint64_t	id[SCAN_MAX];
	char		team[SCAN_MAX][32];
	char		alias[SCAN_MAX][32];
};

static int
scan_cb(const struct store_log_entry *e, void *arg)
{
	struct scan	*sc = arg;

	assert_true(sc->n < SCAN_MAX);
	/* strictly increasing */
	if (sc->n > 0)
		assert_true(e->revision > sc->rev[sc->n - 1]);
	sc->rev[sc->n] = e->revision;
	sc->kind[sc->n] = e->kind;
	sc->id[sc->n] = e->id;
	snprintf(sc->team[sc->n], sizeof(sc->team[0]), "%s", e->team);
	snprintf(sc->alias[sc->n], sizeof(sc->alias[0]), "%s", e->alias);
	sc->n++;
	return sc->stop_after != 0 && sc->n >= sc->stop_after;
}

static void
scan(struct store *s, uint64_t since, struct scan *sc)
{
	size_t	stop = sc->stop_after;

	memset(sc, 0, sizeof(*sc));
	sc->stop_after = stop;
	assert_int_equal(store_log_scan(s, since, scan_cb, sc), 0);
}

static void
assert_entry(const struct scan *sc, size_t i, uint64_t rev, int kind,
    uint64_t id, const char *team, const char *alias)
{
	assert_true(i < sc->n);
	assert_int_equal(sc->rev[i], rev);
	assert_int_equal(sc->kind[i], kind);
	assert_int_equal(sc->id[i], id);
	assert_string_equal(sc->team[i], team);
	assert_string_equal(sc->alias[i], alias);
}

static void
delete_one(struct fixture *f, const char *team, uint64_t id)
{
	struct done	d = { 0 };

	assert_int_equal(store_delete(f->s, team, id, done_cb, &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
}

static void
update_alias(struct fixture *f, const char *team, uint64_t id,
    const char *alias)
{
	struct done	d = { 0 };

	assert_int_equal(store_put(f->s, mkrec(team, alias, id, 8), done_cb,
	    &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
}

static void
test_log_retain(void **state)
{
	struct fixture	*f = *state;
	struct scan	 sc = { 0 };
	struct done	 d[30] = { { 0 } };
	uint64_t	 ids[20], i;
	char		 alias[16];

	/* an empty log starts after the last revision */
	assert_int_equal(pos(f->s).log_first, 1);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 0);

	store_set_log_retain(f->s, 5);
	for (i = 0; i < 20; i++) {
		snprintf(alias, sizeof(alias), "r%llu", (unsigned long long)i);
		ids[i] = put_new(f, "t", alias);
		assert_int_equal(pos(f->s).log_first,
		    i + 1 > 5 ? i + 1 - 5 + 1 : 1);
	}
	assert_int_equal(store_revision(f->s), 20);
	assert_int_equal(pos(f->s).log_first, 16);
	for (int round = 0; round < 2; round++) {
		scan(f->s, 0, &sc);
		assert_int_equal(sc.n, 5);
		for (i = 0; i < 5; i++) {
			snprintf(alias, sizeof(alias), "r%llu",
			    (unsigned long long)i + 15);
			assert_entry(&sc, i, 16 + i, STORE_PUT, ids[15 + i],
			    "t", alias);
		}
		/* the trim was on disk: reopen finds the same first entry */
		reopen(f);
		assert_int_equal(pos(f->s).log_first, 16);
		assert_int_equal(store_revision(f->s), 20);
		assert_int_equal(pos(f->s).count, 20);
	}
	scan(f->s, 17, &sc);
	assert_int_equal(sc.n, 3);
	assert_int_equal(sc.rev[0], 18);

	/* default retention after reopen: nothing more is trimmed */
	put_new(f, "t", "more");
	assert_int_equal(pos(f->s).log_first, 16);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 6);

	/*
	 * A group of 30: the trim point moves on submission, and a batch
	 * trims entries written in the same batch.
	 */
	store_set_log_retain(f->s, 3);
	for (i = 0; i < 30; i++) {
		snprintf(alias, sizeof(alias), "g%llu", (unsigned long long)i);
		assert_int_equal(store_put(f->s, mkrec("g", alias,
		    store_next_id(f->s), 8), done_cb, &d[i]), 0);
	}
	assert_int_equal(store_revision(f->s), 21);
	assert_int_equal(pos(f->s).log_first, 51 - 3 + 1);
	run_until(f->base, d, 30);
	assert_int_equal(store_revision(f->s), 51);
	assert_int_equal(pos(f->s).log_first, 49);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 3);
	assert_int_equal(sc.rev[0], 49);
	assert_int_equal(sc.rev[2], 51);
	assert_string_equal(sc.alias[2], "g29");
	reopen(f);
	assert_int_equal(pos(f->s).log_first, 49);

	/* retention 0 is taken as 1: the log always holds the last change */
	store_set_log_retain(f->s, 0);
	put_new(f, "g", "last");
	assert_int_equal(pos(f->s).log_first, 52);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 1);
	assert_entry(&sc, 0, 52, STORE_PUT, store_get_alias(f->s, "g",
	    "last")->id, "g", "last");
	reopen(f);
	assert_int_equal(pos(f->s).log_first, 52);
}

static void
test_log_scan(void **state)
{
	struct fixture	*f = *state;
	struct scan	 sc = { 0 };
	uint64_t	 a, b, c, rev;

	a = put_new(f, "t1", "a");			/* 1 */
	b = put_new(f, "t2", "b");			/* 2 */
	update_alias(f, "t1", a, "a2");			/* 3 */
	c = put_new(f, "t1", "a");			/* 4: old alias reused */
	delete_one(f, "t1", a);				/* 5 */
	update_alias(f, "t2", b, "b");			/* 6: same alias */
	delete_one(f, "t2", b);				/* 7 */
	rev = store_revision(f->s);
	assert_int_equal(rev, 7);

	for (int round = 0; round < 2; round++) {
		scan(f->s, 0, &sc);
		assert_int_equal(sc.n, 7);
		assert_entry(&sc, 0, 1, STORE_PUT, a, "t1", "a");
		assert_entry(&sc, 1, 2, STORE_PUT, b, "t2", "b");
		assert_entry(&sc, 2, 3, STORE_PUT, a, "t1", "a2");
		assert_entry(&sc, 3, 4, STORE_PUT, c, "t1", "a");
		assert_entry(&sc, 4, 5, STORE_DELETE, a, "t1", "a2");
		assert_entry(&sc, 5, 6, STORE_PUT, b, "t2", "b");
		assert_entry(&sc, 6, 7, STORE_DELETE, b, "t2", "b");
		reopen(f);
	}

	/* from the middle, past the end, and stopped by the callback */
	scan(f->s, 4, &sc);
	assert_int_equal(sc.n, 3);
	assert_entry(&sc, 0, 5, STORE_DELETE, a, "t1", "a2");
	scan(f->s, 6, &sc);
	assert_int_equal(sc.n, 1);
	assert_int_equal(sc.rev[0], 7);
	scan(f->s, 7, &sc);
	assert_int_equal(sc.n, 0);
	scan(f->s, UINT64_MAX, &sc);
	assert_int_equal(sc.n, 0);
	sc.stop_after = 2;
	scan(f->s, 1, &sc);
	assert_int_equal(sc.n, 2);
	assert_int_equal(sc.rev[1], 3);
	sc.stop_after = 0;

	/* revisions of failed writes are skipped, never logged */
	store_fail_next_writes(f->s, 1);
	{
		struct done	d = { 0 };

		assert_int_equal(store_put(f->s, mkrec("t1", "lost",
		    store_next_id(f->s), 1), done_cb, &d), 0);
		run_until(f->base, &d, 1);
		assert_int_equal(d.err, CERTD_ERR_STORAGE);
	}
	assert_int_equal(store_revision(f->s), 7);
	put_new(f, "t1", "kept");			/* 9 */
	scan(f->s, 6, &sc);
	assert_int_equal(sc.n, 2);
	assert_int_equal(sc.rev[0], 7);
	assert_int_equal(sc.rev[1], 9);
	assert_string_equal(sc.alias[1], "kept");
}

struct pending {
	struct fixture	*f;
	struct done	 d;
	uint64_t	 committed;	/* store_revision() before any landed */
	int		 kind;
	uint64_t	 id;
	const char	*team;
	const char	*alias;
};

/* Inside a completion: its own change is the newest the log reports. */
static void
pending_done(int err, const struct cert_record *rec, void *arg)
{
	struct pending	*p = arg;
	struct scan	 sc = { 0 };
	uint64_t	 rev = store_revision(p->f->s);

	done_cb(err, rec, &p->d);
	assert_int_equal(err, 0);
	p->d.rev = rev;
	scan(p->f->s, p->committed, &sc);
	assert_int_equal(sc.n, rev - p->committed);
	assert_entry(&sc, sc.n - 1, rev, p->kind, p->id, p->team, p->alias);
}

static void
test_log_scan_pending(void **state)
{
	struct fixture		*f = *state;
	static struct pending	 p[12];	/* teardown completes them on failure */
	static char		 alias[12][16];
	struct scan		 sc = { 0 };
	uint64_t		 del, committed;
	int			 i, tries;

	del = put_new(f, "t", "doomed");
	put_new(f, "t", "kept");
	committed = store_revision(f->s);
	assert_int_equal(committed, 2);

	memset(p, 0, sizeof(p));
	for (i = 0; i < 12; i++) {
		p[i].f = f;
		p[i].committed = committed;
		p[i].team = "t";
		if (i == 5) {
			p[i].kind = STORE_DELETE;
			p[i].id = del;
			p[i].alias = "doomed";
			assert_int_equal(store_delete(f->s, "t", del,
			    pending_done, &p[i]), 0);
			continue;
		}
		snprintf(alias[i], sizeof(alias[i]), "p%d", i);
		p[i].kind = STORE_PUT;
		p[i].id = store_next_id(f->s);
		p[i].alias = alias[i];
		assert_int_equal(store_put(f->s, mkrec("t", alias[i], p[i].id,
		    8), pending_done, &p[i]), 0);
	}

	/*
	 * Without running the loop, give the writer time to put them on
	 * disk: the scan must still stop at the committed revision.
	 */
	for (tries = 0; tries < 20; tries++) {
		usleep(20 * 1000);
		scan(f->s, 0, &sc);
		assert_int_equal(sc.n, 2);
		assert_int_equal(sc.rev[1], committed);
		scan(f->s, committed, &sc);
		assert_int_equal(sc.n, 0);
	}
	assert_int_equal(store_revision(f->s), committed);

	for (i = 0; i < 12; i++)
		while (p[i].d.called == 0)
			assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE),
			    0);
	for (i = 0; i < 12; i++)
		assert_int_equal(p[i].d.rev, committed + 1 + (uint64_t)i);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 14);
	assert_entry(&sc, 7, 8, STORE_DELETE, del, "t", "doomed");
}

/*
 * What store_pos.log_first promises, checked for every `since` it covers: the
 * scan returns each committed revision after since (no failed writes here).
 */
static void
assert_log_complete(struct store *s)
{
	struct scan	sc = { 0 };
	uint64_t	since, rev = store_revision(s), i;

	for (since = pos(s).log_first - 1; since < rev; since++) {
		scan(s, since, &sc);
		assert_int_equal(sc.n, rev - since);
		for (i = 0; i < sc.n; i++)
			assert_int_equal(sc.rev[i], since + 1 + i);
	}
}

static void
test_log_trim_in_flight(void **state)
{
	struct fixture		*f = *state;
	static struct done	 d[5];	/* teardown completes them on failure */
	char			 alias[16];
	int			 i, tries;

	memset(d, 0, sizeof(d));
	store_set_log_retain(f->s, 3);
	for (i = 0; i < 10; i++) {
		snprintf(alias, sizeof(alias), "a%d", i);
		put_new(f, "t", alias);
	}
	assert_int_equal(pos(f->s).log_first, 8);
	assert_log_complete(f->s);

	/*
	 * Writes 11..15 will trim up to 12, committed entries 8..10
	 * included, while the loop still sits at revision 10: log_first
	 * must not promise them any more.
	 */
	for (i = 0; i < 5; i++) {
		snprintf(alias, sizeof(alias), "b%d", i);
		assert_int_equal(store_put(f->s, mkrec("t", alias,
		    store_next_id(f->s), 8), done_cb, &d[i]), 0);
	}
	assert_int_equal(pos(f->s).log_first, 13);
	for (tries = 0; tries < 10; tries++) {
		usleep(20 * 1000);	/* the writer trims meanwhile */
		assert_int_equal(store_revision(f->s), 10);
		assert_log_complete(f->s);
	}
	run_until(f->base, d, 5);
	assert_int_equal(pos(f->s).log_first, 13);
	assert_log_complete(f->s);
}

static void
test_log_retain_deletes(void **state)
{
	struct fixture	*f = *state;
	struct scan	 sc = { 0 };
	struct done	 d = { 0 };
	uint64_t	 a, b, c;

	store_set_log_retain(f->s, 3);
	a = put_new(f, "t", "a");			/* 1 */
	b = put_new(f, "t", "b");			/* 2 */
	c = put_new(f, "u", "c");			/* 3 */
	delete_one(f, "t", a);				/* 4 */
	update_alias(f, "t", b, "b2");			/* 5 */
	delete_one(f, "u", c);				/* 6 */
	assert_int_equal(pos(f->s).log_first, 4);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 3);
	assert_entry(&sc, 0, 4, STORE_DELETE, a, "t", "a");
	assert_entry(&sc, 1, 5, STORE_PUT, b, "t", "b2");
	assert_entry(&sc, 2, 6, STORE_DELETE, c, "u", "c");

	reopen(f);
	store_set_log_retain(f->s, 3);
	assert_int_equal(pos(f->s).log_first, 4);
	assert_int_equal(pos(f->s).count, 1);
	assert_null(store_get(f->s, "t", a));
	assert_null(store_get(f->s, "u", c));
	assert_string_equal(store_get(f->s, "t", b)->alias, "b2");

	/*
	 * A failed write trims nothing, but log_first rose when it was
	 * submitted (the writer could have trimmed): it stays a safe lower
	 * bound, and the next write trims what the failed one would have.
	 */
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_delete(f->s, "t", b, done_cb, &d), 0);	/* 7 */
	assert_int_equal(pos(f->s).log_first, 5);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, CERTD_ERR_STORAGE);
	assert_int_equal(pos(f->s).log_first, 5);
	scan(f->s, 4, &sc);
	assert_int_equal(sc.n, 2);
	delete_one(f, "t", b);				/* 8 */
	assert_int_equal(pos(f->s).log_first, 6);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 2);
	assert_entry(&sc, 0, 6, STORE_DELETE, c, "u", "c");
	assert_entry(&sc, 1, 8, STORE_DELETE, b, "t", "b2");
	assert_int_equal(pos(f->s).count, 0);
	reopen(f);
	assert_int_equal(pos(f->s).log_first, 6);
	assert_int_equal(store_revision(f->s), 8);
}

struct own_rev {
	struct fixture	*f;
	struct done	 d;
	uint64_t	 rev_in_cb;	/* store_revision() in the completion */
	uint64_t	 changes_seen;	/* change callbacks run before it */
};

static uint64_t	own_changes;

static void
own_change(const struct store_change *ch, void *arg)
{
	struct fixture	*f = arg;

	assert_int_equal(store_revision(f->s), ch->revision);
	own_changes++;
}

static void
own_done(int err, const struct cert_record *rec, void *arg)
{
	struct own_rev	*o = arg;

	done_cb(err, rec, &o->d);
	o->rev_in_cb = store_revision(o->f->s);
	o->changes_seen = own_changes;
}

static void
test_done_revision(void **state)
{
	struct fixture	*f = *state;
	struct own_rev	 o[6];
	struct scan	 sc = { 0 };
	uint64_t	 a, b, c, first;
	int		 i;

	a = put_new(f, "t", "a");
	b = put_new(f, "t", "b");
	first = store_revision(f->s) + 1;
	own_changes = 0;
	store_set_change_cb(f->s, own_change, f);
	memset(o, 0, sizeof(o));
	for (i = 0; i < 6; i++)
		o[i].f = f;

	/* submitted together: likely one batch, applied one op at a time */
	assert_int_equal(store_delete(f->s, "t", a, own_done, &o[0]), 0);
	c = store_next_id(f->s);
	assert_int_equal(store_put(f->s, mkrec("t", "a", c, 1), own_done,
	    &o[1]), 0);
	assert_int_equal(store_put(f->s, mkrec("t", "b2", b, 1), own_done,
	    &o[2]), 0);
	assert_int_equal(store_delete(f->s, "t", b, own_done, &o[3]), 0);
	assert_int_equal(store_put(f->s, mkrec("u", "x", store_next_id(f->s),
	    1), own_done, &o[4]), 0);
	assert_int_equal(store_delete(f->s, "t", c, own_done, &o[5]), 0);
	for (i = 0; i < 6; i++)
		while (o[i].d.called == 0)
			assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE),
			    0);
	for (i = 0; i < 6; i++) {
		assert_int_equal(o[i].d.err, 0);
		assert_int_equal(o[i].rev_in_cb, first + (uint64_t)i);
		/* its own change ran before it, the next one's did not */
		assert_int_equal(o[i].changes_seen, (uint64_t)i + 1);
	}
	/* a delete's completion gets the deleted record (older revision) */
	assert_int_equal(o[0].d.id, a);
	assert_int_equal(o[0].d.rev, 1);

	/* what the completion saw is the revision the log holds */
	scan(f->s, first - 1, &sc);
	assert_int_equal(sc.n, 6);
	assert_entry(&sc, 0, o[0].rev_in_cb, STORE_DELETE, a, "t", "a");
	assert_entry(&sc, 3, o[3].rev_in_cb, STORE_DELETE, b, "t", "b2");
	assert_entry(&sc, 1, o[1].rev_in_cb, STORE_PUT, c, "t", "a");
	assert_entry(&sc, 5, o[5].rev_in_cb, STORE_DELETE, c, "t", "a");
	store_set_change_cb(f->s, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Keys at rest                                                        */

/* Does any file under path (three levels down) contain the bytes? */
static bool
tree_contains(const char *path, const void *needle, size_t nlen, int depth)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	FILE		*fp;
	char		 sub[PATH_MAX], *buf;
	bool		 found = false;

	if (lstat(path, &st) != 0)
		return false;
	if (S_ISDIR(st.st_mode)) {
		if (depth >= 3 || (d = opendir(path)) == NULL)
			return false;
		while (!found && (de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			found = tree_contains(sub, needle, nlen, depth + 1);
		}
		closedir(d);
		return found;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return false;
	assert_non_null(buf = malloc((size_t)st.st_size));
	assert_non_null(fp = fopen(path, "rb"));
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, fp), st.st_size);
	fclose(fp);
	found = memmem(buf, (size_t)st.st_size, needle, nlen) != NULL;
	free(buf);
	return found;
}

/* Entries of dir, "." and ".." left out. */
static int
dir_entries(const char *dir)
{
	struct dirent	*e;
	DIR		*d;
	int		 n = 0;

	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static bool
dir_has(const char *dir, const char *text)
{
	return tree_contains(dir, text, strlen(text), 0);
}

static void
file_write(const char *path, const void *data, size_t len, mode_t mode)
{
	int	fd;

	unlink(path);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static size_t
file_read(const char *path, void *buf, size_t cap)
{
	FILE	*fp;
	size_t	 n;

	assert_non_null(fp = fopen(path, "rb"));
	n = fread(buf, 1, cap, fp);
	fclose(fp);
	return n;
}

static bool
file_exists(const char *path)
{
	struct stat	st;

	return lstat(path, &st) == 0;
}

static void
kpath(const struct fixture *f, char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "%s/master.key%s", f->dir, suffix);
}

/* store_open must fail with a one-line reason containing want. */
static void
open_fails(struct fixture *f, const char *want)
{
	struct store	*s;
	char		 err[512];

	err[0] = '\0';
	s = store_open(f->base, f->dir, err, sizeof(err));
	assert_null(s);
	if (strstr(err, want) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", want, err);
	assert_null(strchr(err, '\n'));
	printf("# refused: %s\n", err);
}

static void
test_at_rest(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;
	char		 path[PATH_MAX], hex[STORE_KEY_ID_HEX + 1];
	uint64_t	 a, b, c;

	a = put_new(f, "t", "a");
	b = put_new(f, "t", "b");
	c = put_new(f, "u", "c");
	update_alias(f, "t", a, "a2");
	delete_one(f, "u", c);
	store_key_id(f->s, hex);
	assert_int_equal(strlen(hex), STORE_KEY_ID_HEX);

	/* the key file: 0600, 32 bytes */
	kpath(f, path, sizeof(path), "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, CERT_SEAL_KEY_LEN);

	for (int round = 0; round < 2; round++) {
		/* nothing in clear, while running and after a restart */
		assert_false(dir_has(f->dir, "PRIVATE KEY"));
		assert_false(dir_has(f->dir, "\nK1\n"));
		assert_false(dir_has(f->dir, "\nK2\n"));
		assert_false(dir_has(f->dir, "\nK3\n"));
		reopen(f);
	}
	assert_string_equal(store_get(f->s, "t", a)->private_key,
	    "-----BEGIN PRIVATE KEY-----\nK1\n-----END PRIVATE KEY-----\n");
	assert_int_equal(store_get(f->s, "t", b)->private_key_len,
	    strlen(store_get(f->s, "t", b)->private_key));
	assert_null(store_get(f->s, "u", c));

	/* the scan can fail: a file with the key in clear is found */
	snprintf(path, sizeof(path), "%s/control", f->dir);
	file_write(path, "x\nK2\n-----END PRIVATE KEY-----\n", 31, 0600);
	assert_true(dir_has(f->dir, "PRIVATE KEY"));
	assert_true(dir_has(f->dir, "\nK2\n"));
	unlink(path);
}

static void
test_key_refusals(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 key[64] = { 0 }, other[CERT_SEAL_KEY_LEN];
	char		 path[PATH_MAX];
	char		 before[STORE_KEY_ID_HEX + 1];
	char		 after[STORE_KEY_ID_HEX + 1];
	uint64_t	 id;

	id = put_new(f, "t", "a");
	assert_int_equal(id, 1);
	store_free(f->s);
	f->s = NULL;
	kpath(f, path, sizeof(path), "");
	assert_int_equal(file_read(path, key, sizeof(key)), CERT_SEAL_KEY_LEN);

	assert_int_equal(chmod(path, 0640), 0);
	open_fails(f, "must not be readable by group or others (mode 0640)");
	assert_int_equal(chmod(path, 0604), 0);
	open_fails(f, "must not be readable by group or others (mode 0604)");
	assert_int_equal(chmod(path, 0600), 0);

	memcpy(other, key, sizeof(other));
	other[5] ^= 1;
	file_write(path, other, sizeof(other), 0600);
	open_fails(f, "does not decrypt record 1");
	file_write(path, key, 16, 0600);
	open_fails(f, "must be 32 bytes, not 16");
	file_write(path, key, CERT_SEAL_KEY_LEN + 1, 0600);
	open_fails(f, "must be 32 bytes");

	unlink(path);
	open_fails(f, "is missing");
	assert_false(file_exists(path));	/* not recreated */

	file_write(path, key, CERT_SEAL_KEY_LEN, 0600);
	reopen(f);
	assert_non_null(store_get(f->s, "t", id));
	store_key_id(f->s, before);

	/* an empty store gets a new key when its key is gone */
	delete_one(f, "t", id);
	store_free(f->s);
	f->s = NULL;
	unlink(path);
	reopen(f);
	store_key_id(f->s, after);
	assert_string_not_equal(before, after);
	assert_true(file_exists(path));

	/* and a key that is not the store's is refused even so */
	store_free(f->s);
	f->s = NULL;
	file_write(path, other, sizeof(other), 0600);
	open_fails(f, "is not the key of this store");
	file_write(path, key, CERT_SEAL_KEY_LEN, 0600);
	open_fails(f, "is not the key of this store");
}

/* A schema 1 record, packed as certd before sealing wrote it. */
static void
pack_v1(msgpack_sbuffer *sb, uint64_t id, const char *team, const char *alias,
    const char *key)
{
	msgpack_packer	pk;
	const char	*cert = "-----BEGIN CERTIFICATE-----\nv1\n"
			    "-----END CERTIFICATE-----\n";

#define PSTR(s)	do { msgpack_pack_str(&pk, strlen(s));			\
		    msgpack_pack_str_body(&pk, s, strlen(s)); } while (0)
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 11);
	PSTR("v");	msgpack_pack_uint64(&pk, 1);
	PSTR("id");	msgpack_pack_uint64(&pk, id);
	PSTR("rev");	msgpack_pack_uint64(&pk, id);
	PSTR("team");	PSTR(team);
	PSTR("alias");	PSTR(alias);
	PSTR("type");	PSTR("server");
	PSTR("cert");	PSTR(cert);
	PSTR("key");	msgpack_pack_bin(&pk, strlen(key));
	msgpack_pack_bin_body(&pk, key, strlen(key));
	PSTR("created"); msgpack_pack_int64(&pk, 1700000000);
	PSTR("updated"); msgpack_pack_int64(&pk, 1700000001);
	PSTR("meta");	msgpack_pack_map(&pk, 1);
	PSTR("cn");	PSTR(alias);
#undef PSTR
}

static void
test_v1_upgrade(void **state)
{
	struct fixture		*f = *state;
	rocksdb_options_t	*o;
	rocksdb_writeoptions_t	*wo;
	rocksdb_t		*db;
	msgpack_sbuffer		 sb;
	const struct cert_record *r;
	char			 path[PATH_MAX], k[9], v[8], *err = NULL;
	char			 key[2][96];
	uint64_t		 id;

	/* a database as certd 1 left it: keys in clear */
	store_free(f->s);
	f->s = NULL;
	rm_tree(f->dir, 0);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/db", f->dir);
	o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(o, 1);
	wo = rocksdb_writeoptions_create();
	db = rocksdb_open(o, path, &err);
	assert_null(err);
#define BE64(p, x) do { for (int i_ = 0; i_ < 8; i_++)			\
		(p)[i_] = (char)((uint64_t)(x) >> (56 - 8 * i_)); } while (0)
	BE64(v, 1);
	rocksdb_put(db, wo, "m:schema", 8, v, 8, &err);
	BE64(v, 3);
	rocksdb_put(db, wo, "m:next_id", 9, v, 8, &err);
	BE64(v, 2);
	rocksdb_put(db, wo, "m:revision", 10, v, 8, &err);
	for (id = 1; id <= 2; id++) {
		snprintf(key[id - 1], sizeof(key[0]), "-----BEGIN PRIVATE "
		    "KEY-----\nV1SECRET%llu\n-----END PRIVATE KEY-----\n",
		    (unsigned long long)id);
		pack_v1(&sb, id, "t", id == 1 ? "a" : "b", key[id - 1]);
		k[0] = 'r';
		BE64(k + 1, id);
		rocksdb_put(db, wo, k, 9, sb.data, sb.size, &err);
		msgpack_sbuffer_destroy(&sb);
		BE64(v, id);
		rocksdb_put(db, wo, id == 1 ? "at\0a" : "at\0b", 4, v, 8,
		    &err);
	}
#undef BE64
	assert_null(err);
	rocksdb_close(db);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
	assert_true(dir_has(f->dir, "V1SECRET1"));	/* the scan works */

	/* opened: loaded, a key made, every record sealed, files purged */
	reopen(f);
	assert_int_equal(pos(f->s).count, 2);
	for (id = 1; id <= 2; id++) {
		assert_non_null(r = store_get(f->s, "t", id));
		assert_string_equal(r->private_key, key[id - 1]);
		assert_int_equal(r->revision, id);
		assert_string_equal(r->meta.subject_cn, id == 1 ? "a" : "b");
	}
	kpath(f, path, sizeof(path), "");
	assert_true(file_exists(path));
	assert_false(dir_has(f->dir, "V1SECRET"));
	assert_false(dir_has(f->dir, "PRIVATE KEY"));
	/* the marker says so, so that an older certd refuses the database */
	store_free(f->s);
	f->s = NULL;
	o = rocksdb_options_create();
	snprintf(path, sizeof(path), "%s/db", f->dir);
	db = rocksdb_open_for_read_only(o, path, 0, &err);
	assert_null(err);
	{
		rocksdb_readoptions_t	*ro = rocksdb_readoptions_create();
		char			*val;
		size_t			 vlen;

		val = rocksdb_get(db, ro, "m:schema", 8, &vlen, &err);
		assert_null(err);
		assert_int_equal(vlen, 8);
		assert_memory_equal(val, "\0\0\0\0\0\0\0\4", 8);
		rocksdb_free(val);
		rocksdb_readoptions_destroy(ro);
	}
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	reopen(f);
	assert_string_equal(store_get(f->s, "t", 2)->private_key, key[1]);
	/* the current versions became the history */
	{
		struct cert_record	*hv;

		assert_int_equal(store_history_get(f->s, "t", 2, 2, &hv), 0);
		assert_string_equal(hv->private_key, key[1]);
		record_free(hv);
	}
	assert_int_equal(put_new(f, "t", "c"), 3);
	assert_false(dir_has(f->dir, "PRIVATE KEY"));
}

static void
unhex(const char *hex, unsigned char *out)
{
	unsigned	v;
	size_t		i;

	for (i = 0; i < RECORD_KEY_ID_LEN; i++) {
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

static void
test_rekey(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[4] = { { 0 } };
	unsigned char	 k0[64], k1[64];
	char		 path[PATH_MAX], newp[PATH_MAX];
	char		 kid0[STORE_KEY_ID_HEX + 1];
	char		 kid1[STORE_KEY_ID_HEX + 1];
	unsigned char	 bin0[RECORD_KEY_ID_LEN], bin1[RECORD_KEY_ID_LEN];
	uint64_t	 a, b, c, e;

	a = put_new(f, "t", "a");
	b = put_new(f, "t", "b");
	e = put_new(f, "t", "e");
	store_key_id(f->s, kid0);
	kpath(f, path, sizeof(path), "");
	kpath(f, newp, sizeof(newp), ".new");
	assert_int_equal(file_read(path, k0, sizeof(k0)), CERT_SEAL_KEY_LEN);

	/* in flight around the rotation: before, the rotation, after */
	c = store_next_id(f->s);
	assert_int_equal(store_put(f->s, mkrec("t", "c", c, 8), done_cb,
	    &d[0]), 0);
	assert_int_equal(store_delete(f->s, "t", e, done_cb, &d[1]), 0);
	assert_int_equal(store_rekey(f->s, done_cb, &d[2]), 0);
	store_key_id(f->s, kid1);
	assert_string_not_equal(kid0, kid1);	/* new writes: new key */
	unhex(kid0, bin0);
	unhex(kid1, bin1);
	assert_int_equal(store_put(f->s, mkrec("t", "a2", a, 8), done_cb,
	    &d[3]), 0);
	run_until(f->base, d, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(d[i].err, 0);
	assert_int_equal(d[2].id, 0);		/* no record */
	assert_int_equal(store_revision(f->s), 6);	/* none consumed */

	assert_int_equal(file_read(path, k1, sizeof(k1)), CERT_SEAL_KEY_LEN);
	assert_memory_not_equal(k0, k1, CERT_SEAL_KEY_LEN);
	assert_false(file_exists(newp));
	assert_false(dir_has(f->dir, "PRIVATE KEY"));
	/* no box of the old key survives in the files: its id is gone */
	assert_false(tree_contains(f->dir, bin0, sizeof(bin0), 0));
	assert_true(tree_contains(f->dir, bin1, sizeof(bin1), 0));

	reopen(f);
	store_key_id(f->s, kid0);
	assert_string_equal(kid0, kid1);
	assert_int_equal(pos(f->s).count, 3);
	assert_string_equal(store_get(f->s, "t", a)->alias, "a2");
	assert_null(store_get(f->s, "t", e));
	assert_non_null(strstr(store_get(f->s, "t", b)->private_key, "\nK2\n"));
	assert_non_null(strstr(store_get(f->s, "t", c)->private_key, "\nK4\n"));

	/* the old key opens nothing any more */
	store_free(f->s);
	f->s = NULL;
	file_write(path, k0, CERT_SEAL_KEY_LEN, 0600);
	open_fails(f, "does not decrypt record");
	file_write(path, k1, CERT_SEAL_KEY_LEN, 0600);
	reopen(f);

	/* twice in a row, with nothing in between */
	memset(d, 0, sizeof(d));
	assert_int_equal(store_rekey(f->s, done_cb, &d[0]), 0);
	assert_int_equal(store_rekey(f->s, done_cb, &d[1]), 0);
	run_until(f->base, d, 2);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	store_key_id(f->s, kid1);
	reopen(f);
	store_key_id(f->s, kid0);
	assert_string_equal(kid0, kid1);
	assert_int_equal(pos(f->s).count, 3);
}

/* Simulated crashes after each step of a rotation, and torn key files. */
static void
test_rekey_crash(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[2];
	unsigned char	 k0[64], junk[CERT_SEAL_KEY_LEN];
	char		 path[PATH_MAX], newp[PATH_MAX];
	char		 kid0[STORE_KEY_ID_HEX + 1];
	char		 kid1[STORE_KEY_ID_HEX + 1];
	uint64_t	 a, b;
	int		 step;

	a = put_new(f, "t", "a");
	b = put_new(f, "u", "b");
	kpath(f, path, sizeof(path), "");
	kpath(f, newp, sizeof(newp), ".new");
	for (step = 1; step <= 3; step++) {
		store_key_id(f->s, kid0);
		assert_int_equal(file_read(path, k0, sizeof(k0)),
		    CERT_SEAL_KEY_LEN);
		memset(d, 0, sizeof(d));
		store_test_crash_rekey(f->s, step);
		assert_int_equal(store_rekey(f->s, done_cb, &d[0]), 0);
		assert_int_equal(store_put(f->s, mkrec("t", "lost",
		    store_next_id(f->s), 8), done_cb, &d[1]), 0);
		run_until(f->base, d, 2);
		assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
		assert_int_equal(d[1].err, CERTD_ERR_STORAGE);
		/* "crashed": nothing gets written any more */
		memset(d, 0, sizeof(d));
		assert_int_equal(store_put(f->s, mkrec("t", "lost",
		    store_next_id(f->s), 8), done_cb, &d[0]), 0);
		run_until(f->base, d, 1);
		assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
		store_free(f->s);
		f->s = NULL;
		assert_int_equal(file_exists(newp), step < 3);

		reopen(f);
		assert_false(file_exists(newp));
		store_key_id(f->s, kid1);
		if (step == 1)	/* before the batch: the old key stays */
			assert_string_equal(kid0, kid1);
		else		/* after it: the new key, rename finished */
			assert_string_not_equal(kid0, kid1);
		assert_int_equal(pos(f->s).count, 2);
		assert_null(store_get_alias(f->s, "t", "lost"));
		assert_non_null(strstr(store_get(f->s, "t", a)->private_key,
		    "\nK1\n"));
		assert_non_null(strstr(store_get(f->s, "u", b)->private_key,
		    "\nK2\n"));
		reopen(f);
		assert_int_equal(pos(f->s).count, 2);
	}

	/* a .new torn while written, or never committed, is dropped */
	store_key_id(f->s, kid0);
	store_free(f->s);
	f->s = NULL;
	file_write(newp, "short", 5, 0600);
	reopen(f);
	assert_false(file_exists(newp));
	assert_int_equal(cert_random(junk, sizeof(junk)), 0);
	store_free(f->s);
	f->s = NULL;
	file_write(newp, junk, sizeof(junk), 0644);
	reopen(f);
	assert_false(file_exists(newp));
	store_key_id(f->s, kid1);
	assert_string_equal(kid0, kid1);
	assert_int_equal(pos(f->s).count, 2);
}

static void
test_rekey_write_failure(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[3] = { { 0 } };
	char		 newp[PATH_MAX];
	char		 kid0[STORE_KEY_ID_HEX + 1];
	char		 kid1[STORE_KEY_ID_HEX + 1];
	uint64_t	 a;

	a = put_new(f, "t", "a");
	store_key_id(f->s, kid0);
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_rekey(f->s, done_cb, &d[0]), 0);
	/* sealed under the new key: fails with the rotation */
	assert_int_equal(store_put(f->s, mkrec("t", "b", store_next_id(f->s),
	    8), done_cb, &d[1]), 0);
	run_until(f->base, d, 2);
	assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
	assert_int_equal(d[1].err, CERTD_ERR_STORAGE);
	store_key_id(f->s, kid1);
	assert_string_equal(kid0, kid1);	/* back to the old key */
	kpath(f, newp, sizeof(newp), ".new");
	assert_false(file_exists(newp));

	put_new(f, "t", "c");
	reopen(f);
	assert_int_equal(pos(f->s).count, 2);
	assert_non_null(store_get(f->s, "t", a));
	store_key_id(f->s, kid1);
	assert_string_equal(kid0, kid1);
}

static void
test_backup(void **state)
{
	struct fixture			*f = *state;
	struct fixture			 b;
	struct done			 d = { 0 };
	struct stat			 st;
	const struct cert_record	*r;
	char				 err[512], path[PATH_MAX];
	uint64_t			 ids[3], late, epoch;
	int				 i, fd;

	memset(&b, 0, sizeof(b));
	snprintf(b.dir, sizeof(b.dir), "/tmp/certd-test-backup-XXXXXX");
	assert_non_null(mkdtemp(b.dir));
	b.base = f->base;

	ids[0] = put_new(f, "t", "a");
	ids[1] = put_new(f, "t", "b");
	ids[2] = put_new(f, "u", "c");
	/* a write in flight: in the copy or not, never half */
	late = store_next_id(f->s);
	assert_int_equal(store_put(f->s, mkrec("t", "late", late, 8), done_cb,
	    &d), 0);
	assert_int_equal(store_backup(f->s, b.dir, err, sizeof(err)), 0);
	run_until(f->base, &d, 1);
	/* A second backup into it: the client's mistake, not the store's. */
	assert_int_equal(store_backup(f->s, b.dir, err, sizeof(err)),
	    CERTD_ERR_BACKUP_EXISTS);
	assert_non_null(strstr(err, "already holds a backup (db)"));

	snprintf(path, sizeof(path), "%s/master.key", b.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_false(dir_has(b.dir, "PRIVATE KEY"));
	snprintf(path, sizeof(path), "%s/db/CERTD-BACKUP", b.dir);
	assert_int_equal(stat(path, &st), 0);	/* marked as a copy */

	/* the copy is a data directory of its own */
	b.s = store_open(b.base, b.dir, err, sizeof(err));
	if (b.s == NULL)
		fail_msg("opening the backup: %s", err);
	for (i = 0; i < 3; i++) {
		r = store_get(f->s, i == 2 ? "u" : "t", ids[i]);
		assert_rec_equal(r, store_get(b.s, r->team, r->id));
	}
	assert_true(pos(b.s).count == 3 || pos(b.s).count == 4);
	assert_int_equal(store_next_id(b.s) >= late, 1);
	/*
	 * The copy counts its revisions in an epoch of its own, made when it
	 * is first opened and kept from then on; the original keeps its own.
	 */
	epoch = pos(b.s).epoch;
	assert_int_not_equal(epoch, 0);
	assert_int_not_equal(epoch, pos(f->s).epoch);
	assert_int_not_equal(stat(path, &st), 0);	/* the mark is gone */
	store_free(b.s);
	b.s = store_open(b.base, b.dir, err, sizeof(err));
	assert_non_null(b.s);
	assert_int_equal(pos(b.s).epoch, epoch);
	store_free(b.s);
	epoch = pos(f->s).epoch;
	reopen(f);
	assert_int_equal(pos(f->s).epoch, epoch);

	/* after a rotation the copy has the new key */
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_rekey(f->s, done_cb, &d), 0);
	run_until(f->base, &d, 1);
	rm_tree(b.dir, 0);
	assert_int_equal(store_backup(f->s, b.dir, err, sizeof(err)), 0);
	b.s = store_open(b.base, b.dir, err, sizeof(err));
	if (b.s == NULL)
		fail_msg("opening the backup: %s", err);
	assert_int_equal(pos(b.s).count, 4);
	assert_rec_equal(store_get(f->s, "t", late), store_get(b.s, "t", late));
	store_free(b.s);
	rm_tree(b.dir, 0);

	/* a backup that fails after its checkpoint leaves none behind */
	store_test_fail_backup(f->s);
	assert_int_equal(store_backup(f->s, b.dir, err, sizeof(err)),
	    CERTD_ERR_STORAGE);
	assert_non_null(strstr(err, "after its checkpoint"));
	snprintf(path, sizeof(path), "%s/db", b.dir);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/master.key", b.dir);
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(dir_entries(b.dir), 0);	/* staging gone too */
	/* files of others in dir stay: the copy is staged in its own */
	snprintf(path, sizeof(path), "%s/db.part", b.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/db.part/000001.sst", b.dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_backup(f->s, b.dir, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(dir_entries(b.dir), 3);	/* db, master.key, db.part */
	snprintf(path, sizeof(path), "%s/db/CERTD-BACKUP", b.dir);
	assert_int_equal(stat(path, &st), 0);
	rm_tree(b.dir, 0);
}

static void
test_reopen_after_failure(void **state)
{
	struct fixture	*f = *state;
	struct done	 d = { 0 };
	struct scan	 sc = { 0 };
	uint64_t	 a;

	a = put_new(f, "t", "a");
	assert_int_equal(store_reopens(f->s), 0);
	store_fail_next_writes(f->s, 2);
	for (int i = 0; i < 2; i++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(store_put(f->s, mkrec("t", "b",
		    store_next_id(f->s), 8), done_cb, &d), 0);
		run_until(f->base, &d, 1);
		assert_int_equal(d.err, CERTD_ERR_STORAGE);
		/* reopened before the next write (or idle, after 1 s) */
		assert_in_range(store_reopens(f->s), (unsigned)i,
		    (unsigned)i + 1);
	}
	/* reads never stopped */
	assert_non_null(store_get(f->s, "t", a));
	put_new(f, "t", "b");
	assert_int_equal(store_reopens(f->s), 2);
	scan(f->s, 0, &sc);
	assert_int_equal(sc.n, 2);
	reopen(f);
	assert_int_equal(pos(f->s).count, 2);
	assert_int_equal(store_revision(f->s), 4);
}

/* Idle after a failed write, the writer reopens the database by itself. */
static void
test_reopen_without_write(void **state)
{
	struct fixture	*f = *state;
	struct done	 d = { 0 };
	int		 i;

	put_new(f, "t", "a");
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_put(f->s, mkrec("t", "b", store_next_id(f->s),
	    8), done_cb, &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, CERTD_ERR_STORAGE);
	for (i = 0; i < 200 && store_reopens(f->s) == 0; i++)
		usleep(50 * 1000);
	assert_int_equal(store_reopens(f->s), 1);
	put_new(f, "t", "b");
	assert_int_equal(store_reopens(f->s), 1);
}

/* ------------------------------------------------------------------ */
/* History                                                             */

#define VERSIONS_MAX	64

struct versions {
	size_t		n;
	uint64_t	rev[VERSIONS_MAX];
	char		alias[VERSIONS_MAX][32];
	size_t		stop_after;
};

static int
versions_cb(const struct cert_record *rec, void *arg)
{
	struct versions	*v = arg;

	assert_true(v->n < VERSIONS_MAX);
	assert_null(rec->private_key);	/* the list opens no box */
	v->rev[v->n] = rec->revision;
	snprintf(v->alias[v->n], sizeof(v->alias[0]), "%s", rec->alias);
	v->n++;
	return v->stop_after != 0 && v->n >= v->stop_after;
}

/* The history of (team, id): its revisions, newest first, must be revs. */
static void
assert_history(struct fixture *f, const char *team, uint64_t id,
    const uint64_t *revs, size_t n)
{
	struct versions	v;
	size_t		i;

	memset(&v, 0, sizeof(v));
	assert_int_equal(store_history(f->s, team, id, versions_cb, &v), 0);
	if (v.n != n)
		fail_msg("history of %llu: %zu versions, expected %zu",
		    (unsigned long long)id, v.n, n);
	for (i = 0; i < n; i++)
		assert_int_equal(v.rev[i], revs[i]);
}

/* A version of record id: alias and private key name the version. */
static struct cert_record *
mkver(const char *team, uint64_t id, unsigned n)
{
	struct cert_record	*r;
	char			 alias[32], key[96];

	snprintf(alias, sizeof(alias), "v%u", n);
	r = mkrec(team, alias, id, 8);
	snprintf(key, sizeof(key), "-----BEGIN PRIVATE KEY-----\nK%llu-v%u\n"
	    "-----END PRIVATE KEY-----\n", (unsigned long long)id, n);
	free(r->private_key);
	r->private_key = xstrdup(key);
	r->private_key_len = strlen(key);
	return r;
}

static void
put_ver(struct fixture *f, const char *team, uint64_t id, unsigned n)
{
	struct done	d = { 0 };

	assert_int_equal(store_put(f->s, mkver(team, id, n), done_cb, &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);
}

/* Version `rev` of id opens, and is version n. */
static void
assert_version(struct fixture *f, const char *team, uint64_t id,
    uint64_t rev, unsigned n)
{
	struct cert_record	*r;
	char			 want[96];

	assert_int_equal(store_history_get(f->s, team, id, rev, &r), 0);
	assert_int_equal(r->id, id);
	assert_int_equal(r->revision, rev);
	assert_string_equal(r->team, team);
	snprintf(want, sizeof(want), "v%u", n);
	assert_string_equal(r->alias, want);
	snprintf(want, sizeof(want), "-----BEGIN PRIVATE KEY-----\nK%llu-v%u\n"
	    "-----END PRIVATE KEY-----\n", (unsigned long long)id, n);
	assert_string_equal(r->private_key, want);
	assert_int_equal(r->private_key_len, strlen(want));
	record_free(r);
}

static void
assert_no_version(struct fixture *f, const char *team, uint64_t id,
    uint64_t rev)
{
	struct cert_record	*r = (struct cert_record *)&r;

	assert_int_equal(store_history_get(f->s, team, id, rev, &r),
	    CERTD_ERR_NOT_FOUND);
	assert_null(r);
}

static void
test_history_keep(void **state)
{
	struct fixture	*f = *state;
	struct versions	 v;
	uint64_t	 a, b;
	unsigned	 i;

	a = store_next_id(f->s);
	for (i = 1; i <= 12; i++)		/* revisions 1..12 */
		put_ver(f, "t", a, i);
	{
		const uint64_t want[] = { 12, 11, 10, 9, 8, 7, 6, 5, 4, 3 };

		assert_history(f, "t", a, want, 10);	/* the default */
	}
	assert_version(f, "t", a, 12, 12);
	assert_version(f, "t", a, 3, 3);
	assert_no_version(f, "t", a, 2);
	assert_no_version(f, "t", a, 1);
	assert_no_version(f, "t", a, 13);	/* not made yet */
	assert_no_version(f, "t", a, 0);

	/* another team does not see it, by list or by revision */
	memset(&v, 0, sizeof(v));
	assert_int_equal(store_history(f->s, "u", a, versions_cb, &v),
	    CERTD_ERR_NOT_FOUND);
	assert_int_equal(v.n, 0);
	assert_no_version(f, "u", a, 12);
	assert_int_equal(store_history(f->s, "t", a + 100, versions_cb, &v),
	    CERTD_ERR_NOT_FOUND);

	/* a callback that stops */
	memset(&v, 0, sizeof(v));
	v.stop_after = 2;
	assert_int_equal(store_history(f->s, "t", a, versions_cb, &v), 0);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.alias[0], "v12");
	assert_string_equal(v.alias[1], "v11");

	/* a smaller setting trims the surplus at the next put */
	store_set_history_keep(f->s, 3);
	put_ver(f, "t", a, 13);			/* 13 */
	{
		const uint64_t want[] = { 13, 12, 11 };

		assert_history(f, "t", a, want, 3);
	}
	assert_no_version(f, "t", a, 10);
	assert_no_version(f, "t", a, 4);

	/* other ids keep their own */
	b = store_next_id(f->s);
	put_ver(f, "t", b, 1);			/* 14 */
	put_ver(f, "t", b, 2);			/* 15 */
	{
		const uint64_t wa[] = { 13, 12, 11 }, wb[] = { 15, 14 };

		assert_history(f, "t", a, wa, 3);
		assert_history(f, "t", b, wb, 2);
	}

	/* 1 keeps just the current version */
	store_set_history_keep(f->s, 0);	/* counts as 1 */
	put_ver(f, "t", b, 3);			/* 16 */
	{
		const uint64_t want[] = { 16 };

		assert_history(f, "t", b, want, 1);
	}

	/* it survives a restart, with the setting back at its default */
	reopen(f);
	{
		const uint64_t wa[] = { 13, 12, 11 }, wb[] = { 16 };

		assert_history(f, "t", a, wa, 3);
		assert_history(f, "t", b, wb, 1);
	}
	assert_version(f, "t", a, 11, 11);
	put_ver(f, "t", b, 4);			/* 17 */
	{
		const uint64_t want[] = { 17, 16 };

		assert_history(f, "t", b, want, 2);
	}
	assert_false(dir_has(f->dir, "PRIVATE KEY"));
}

/* Many puts of one id in one batch: trimmed in the batch itself. */
static void
test_history_batch(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[40];
	struct versions	 v;
	uint64_t	 a, b;
	unsigned	 i;

	memset(d, 0, sizeof(d));
	store_set_history_keep(f->s, 3);
	a = store_next_id(f->s);
	b = store_next_id(f->s);
	/* interleaved, all submitted before the loop runs */
	for (i = 0; i < 40; i++)
		assert_int_equal(store_put(f->s, mkver("t", i % 4 == 3 ? b : a,
		    i + 1), done_cb, &d[i]), 0);
	/* nothing committed: nothing to see yet */
	memset(&v, 0, sizeof(v));
	assert_int_equal(store_history(f->s, "t", a, versions_cb, &v),
	    CERTD_ERR_NOT_FOUND);
	run_until(f->base, d, 40);
	for (i = 0; i < 40; i++)
		assert_int_equal(d[i].err, 0);
	{
		const uint64_t wa[] = { 39, 38, 37 }, wb[] = { 40, 36, 32 };

		assert_history(f, "t", a, wa, 3);
		assert_history(f, "t", b, wb, 3);
	}
	for (i = 1; i <= 36; i++)
		if (i != 32 && i != 36)
			assert_no_version(f, "t", i % 4 == 0 ? b : a, i);
	assert_version(f, "t", b, 32, 32);

	/* a larger setting in the middle of a batch, then a smaller one */
	memset(d, 0, sizeof(d));
	store_set_history_keep(f->s, 5);
	for (i = 0; i < 4; i++)			/* 41..44 */
		assert_int_equal(store_put(f->s, mkver("t", a, 41 + i),
		    done_cb, &d[i]), 0);
	store_set_history_keep(f->s, 2);
	assert_int_equal(store_put(f->s, mkver("t", a, 45), done_cb, &d[4]),
	    0);					/* 45 */
	run_until(f->base, d, 5);
	{
		const uint64_t want[] = { 45, 44 };

		assert_history(f, "t", a, want, 2);
	}
	for (i = 37; i <= 43; i++)
		assert_no_version(f, "t", a, i);

	/* written but not applied: not reported (pending is above rev) */
	memset(d, 0, sizeof(d));
	assert_int_equal(store_put(f->s, mkver("t", a, 46), done_cb, &d[0]),
	    0);
	{
		const uint64_t want[] = { 45, 44 };

		assert_history(f, "t", a, want, 2);
	}
	assert_no_version(f, "t", a, 46);
	run_until(f->base, d, 1);
	{
		const uint64_t want[] = { 46, 45 };

		assert_history(f, "t", a, want, 2);
	}
}

/*
 * A batch that fails to write leaves no trace in the trim: the versions
 * kept afterwards are those on disk, however the failure fell.
 */
static void
test_history_failed_write(void **state)
{
	struct fixture	*f = *state;
	struct done	 d = { 0 };
	uint64_t	 a;
	unsigned	 i;

	store_set_history_keep(f->s, 3);
	a = store_next_id(f->s);
	for (i = 1; i <= 4; i++)		/* revisions 1..4 */
		put_ver(f, "t", a, i);
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_put(f->s, mkver("t", a, 5), done_cb, &d), 0);
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, CERTD_ERR_STORAGE);	/* revision 5 lost */
	{
		const uint64_t want[] = { 4, 3, 2 };

		assert_history(f, "t", a, want, 3);
	}
	put_ver(f, "t", a, 6);			/* 6 */
	put_ver(f, "t", a, 7);			/* 7 */
	{
		const uint64_t want[] = { 7, 6, 4 };

		assert_history(f, "t", a, want, 3);
	}
	assert_no_version(f, "t", a, 3);
	assert_no_version(f, "t", a, 5);
	reopen(f);
	store_set_history_keep(f->s, 3);
	put_ver(f, "t", a, 8);			/* 8 */
	{
		const uint64_t want[] = { 8, 7, 6 };

		assert_history(f, "t", a, want, 3);
	}
	assert_no_version(f, "t", a, 4);
}

static void
test_history_delete(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[3];
	struct versions	 v;
	uint64_t	 a, b, c;

	a = store_next_id(f->s);
	put_ver(f, "t", a, 1);			/* 1 */
	put_ver(f, "t", a, 2);			/* 2 */
	b = store_next_id(f->s);
	put_ver(f, "t", b, 1);			/* 3 */
	delete_one(f, "t", a);			/* 4 */
	memset(&v, 0, sizeof(v));
	assert_int_equal(store_history(f->s, "t", a, versions_cb, &v),
	    CERTD_ERR_NOT_FOUND);
	assert_no_version(f, "t", a, 1);
	assert_no_version(f, "t", a, 2);
	assert_version(f, "t", b, 3, 1);	/* the neighbour stays */

	/* put and delete of one id in one batch */
	memset(d, 0, sizeof(d));
	c = store_next_id(f->s);
	assert_int_equal(store_put(f->s, mkver("w", c, 1), done_cb, &d[0]),
	    0);				/* 5 */
	assert_int_equal(store_put(f->s, mkver("w", c, 2), done_cb, &d[1]),
	    0);				/* 6 */
	assert_int_equal(store_delete(f->s, "w", c, done_cb, &d[2]), 0);
	run_until(f->base, d, 3);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	assert_int_equal(d[2].err, 0);
	assert_no_version(f, "w", c, 5);
	assert_no_version(f, "w", c, 6);

	reopen(f);
	assert_no_version(f, "t", a, 2);
	assert_no_version(f, "w", c, 6);
	assert_version(f, "t", b, 3, 1);

	/* a failed write leaves no version behind */
	memset(d, 0, sizeof(d));
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_put(f->s, mkver("t", b, 2), done_cb, &d[0]),
	    0);
	run_until(f->base, d, 1);
	assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
	put_ver(f, "t", b, 3);
	{
		const uint64_t want[] = { 9, 3 };

		assert_history(f, "t", b, want, 2);
	}
	assert_no_version(f, "t", b, 8);
}

static void
test_history_rekey(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[3];
	unsigned char	 bin0[RECORD_KEY_ID_LEN];
	char		 kid0[STORE_KEY_ID_HEX + 1];
	uint64_t	 a, b;

	a = store_next_id(f->s);
	put_ver(f, "t", a, 1);			/* 1 */
	put_ver(f, "t", a, 2);			/* 2 */
	put_ver(f, "t", a, 3);			/* 3 */
	b = store_next_id(f->s);
	put_ver(f, "u", b, 1);			/* 4 */
	store_key_id(f->s, kid0);
	unhex(kid0, bin0);

	/* a put before the rotation, one after; readable throughout */
	memset(d, 0, sizeof(d));
	assert_int_equal(store_put(f->s, mkver("t", a, 4), done_cb, &d[0]),
	    0);					/* 5, old key */
	assert_int_equal(store_rekey(f->s, done_cb, &d[1]), 0);
	assert_version(f, "t", a, 1, 1);	/* the old key, still pending */
	assert_int_equal(store_put(f->s, mkver("u", b, 2), done_cb, &d[2]),
	    0);					/* 6, new key */
	run_until(f->base, d, 3);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	assert_int_equal(d[2].err, 0);
	assert_version(f, "t", a, 1, 1);
	assert_version(f, "t", a, 5, 4);
	assert_version(f, "u", b, 6, 2);
	/* no box of the old key anywhere: the history was re-sealed too */
	assert_false(tree_contains(f->dir, bin0, sizeof(bin0), 0));

	reopen(f);
	{
		const uint64_t wa[] = { 5, 3, 2, 1 }, wb[] = { 6, 4 };

		assert_history(f, "t", a, wa, 4);
		assert_history(f, "u", b, wb, 2);
	}
	assert_version(f, "t", a, 2, 2);
	assert_version(f, "u", b, 4, 1);

	/* a rotation that fails keeps the old key for the history too */
	memset(d, 0, sizeof(d));
	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_rekey(f->s, done_cb, &d[0]), 0);
	run_until(f->base, d, 1);
	assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
	assert_version(f, "t", a, 3, 3);
	reopen(f);
	assert_version(f, "t", a, 3, 3);
	assert_false(dir_has(f->dir, "PRIVATE KEY"));
}

/* Delete one key of the closed store's database. */
static void
db_delete(struct fixture *f, const char *key, size_t klen)
{
	rocksdb_options_t	*o = rocksdb_options_create();
	rocksdb_writeoptions_t	*wo = rocksdb_writeoptions_create();
	rocksdb_t		*db;
	char			 path[PATH_MAX], *err = NULL;

	snprintf(path, sizeof(path), "%s/db", f->dir);
	db = rocksdb_open(o, path, &err);
	assert_null(err);
	rocksdb_delete(db, wo, key, klen, &err);
	assert_null(err);
	rocksdb_close(db);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
}

/*
 * Records are read from disk: one whose current version is gone is a
 * storage failure of its reads (not "not found"), while its index entry
 * and the other records still serve; the first record's is checked at
 * open.
 */
static void
test_read_failure(void **state)
{
	struct fixture			*f = *state;
	const struct cert_record	*page[4];
	const struct store_meta		*m;
	char				 hk[17];
	size_t				 total;
	uint64_t			 a, b;
	int				 i;

	a = put_new(f, "t", "a");			/* revision 1 */
	b = put_new(f, "t", "b");			/* revision 2 */
	store_free(f->s);
	f->s = NULL;
	hk[0] = 'h';
	for (i = 0; i < 8; i++)
		hk[1 + i] = (char)(b >> (56 - 8 * i));
	memset(hk + 9, 0, 8);
	hk[16] = 2;
	db_delete(f, hk, sizeof(hk));

	reopen(f);
	assert_non_null(m = store_meta_get(f->s, "t", b));
	assert_int_equal(m->revision, 2);
	assert_string_equal(m->alias, "b");
	assert_null(store_get(f->s, "t", b));
	assert_true(store_read_failed(f->s));
	assert_null(store_get_alias(f->s, "t", "b"));
	assert_true(store_read_failed(f->s));
	assert_non_null(store_get(f->s, "t", a));
	assert_false(store_read_failed(f->s));
	assert_null(store_get(f->s, "t", 99));
	assert_false(store_read_failed(f->s));	/* absent, not unreadable */
	/* a page stops short at the record it cannot read */
	assert_int_equal(store_list(f->s, "t", 0, 4, page, &total), 1);
	assert_int_equal(total, 2);
	assert_int_equal(page[0]->id, a);
	assert_null(page[0]->private_key);	/* lists never carry keys */
	assert_true(store_read_failed(f->s));

	/* the first record's version is read at open */
	store_free(f->s);
	f->s = NULL;
	for (i = 0; i < 8; i++)
		hk[1 + i] = (char)(a >> (56 - 8 * i));
	hk[16] = 1;
	db_delete(f, hk, sizeof(hk));
	open_fails(f, "the current version of record 1 is missing");
}

/*
 * The writer trims history as it writes, before the loop applies the
 * batch: with one version kept, the committed version is gone from disk
 * while the committed view still names it.  Reads then get the version
 * that replaced it (on disk already), and a delete on disk reads as gone.
 */
static void
test_read_replaced(void **state)
{
	struct fixture			*f = *state;
	const struct cert_record	*r;
	struct store_stats		 st;
	struct done			 d = { 0 };
	uint64_t			 id, batches;
	int				 i;

	store_set_history_keep(f->s, 1);
	id = store_next_id(f->s);
	put_ver(f, "t", id, 1);				/* revision 1 */
	store_get_stats(f->s, &st);
	batches = st.batches;
	assert_int_equal(store_put(f->s, mkver("t", id, 2), done_cb, &d), 0);
	for (i = 0; i < 5000 && st.batches == batches; i++) {
		usleep(1000);			/* written, the loop not run */
		store_get_stats(f->s, &st);
	}
	assert_int_equal(st.batches, batches + 1);
	assert_int_equal(store_meta_get(f->s, "t", id)->revision, 1);
	assert_non_null(r = store_get(f->s, "t", id));
	assert_false(store_read_failed(f->s));
	assert_int_equal(r->revision, 2);
	assert_string_equal(r->alias, "v2");
	assert_non_null(strstr(r->private_key, "-v2\n"));
	run_until(f->base, &d, 1);
	assert_int_equal(d.err, 0);

	memset(&d, 0, sizeof(d));
	assert_int_equal(store_delete(f->s, "t", id, done_cb, &d), 0);
	for (i = 0; i < 5000 && st.batches == batches + 1; i++) {
		usleep(1000);
		store_get_stats(f->s, &st);
	}
	assert_non_null(store_meta_get(f->s, "t", id));
	assert_null(store_get(f->s, "t", id));
	assert_false(store_read_failed(f->s));	/* gone, not unreadable */
	run_until(f->base, &d, 1);
	assert_null(store_meta_get(f->s, "t", id));
}

/*
 * A mirror's writes: another store's revisions (with gaps) and ids; a
 * revision that does not move forward is refused; a resync's deletes may
 * share one revision; all of it survives a restart.
 */
static void
test_put_at(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[4] = { { 0 } };
	const uint64_t	 want[] = { 15, 10 };

	assert_int_equal(store_put_at(f->s, mkver("t", 42, 1), 10, done_cb,
	    &d[0]), 0);
	assert_int_equal(store_head_revision(f->s), 10);
	assert_true(store_next_id(f->s) > 42);
	assert_int_equal(store_put_at(f->s, mkver("t", 42, 2), 10, done_cb,
	    &d[1]), CERTD_ERR_INTERNAL);
	assert_int_equal(store_put_at(f->s, mkver("t", 42, 2), 15, done_cb,
	    &d[1]), 0);
	assert_int_equal(store_put_at(f->s, mkver("t", 7, 1), 16, done_cb,
	    &d[2]), 0);
	run_until(f->base, d, 3);
	assert_int_equal(d[0].err, 0);
	assert_int_equal(d[1].err, 0);
	assert_int_equal(store_revision(f->s), 16);
	assert_int_equal(store_get(f->s, "t", 42)->revision, 15);
	assert_history(f, "t", 42, want, 2);
	assert_int_equal(store_delete_at(f->s, "t", 42, 14, done_cb, &d[3]),
	    CERTD_ERR_INTERNAL);
	assert_int_equal(store_delete_at(f->s, "t", 42, 20, done_cb, &d[3]),
	    0);
	assert_int_equal(store_delete_at(f->s, "t", 7, 20, done_cb, &d[0]),
	    0);
	d[0].called = 0;
	run_until(f->base, &d[3], 1);
	run_until(f->base, &d[0], 1);
	assert_int_equal(store_revision(f->s), 20);
	assert_null(store_meta_get(f->s, "t", 42));
	assert_null(store_meta_get(f->s, "t", 7));
	reopen(f);
	assert_int_equal(store_revision(f->s), 20);
	assert_int_equal(pos(f->s).count, 0);
	assert_true(store_next_id(f->s) > 42);
}

/*
 * A mirror's write that failed is written again at its own revision (the
 * head view falls back to what committed), unlike a local write, whose
 * revision is never given again.
 */
static void
test_put_at_failed(void **state)
{
	struct fixture	*f = *state;
	struct done	 d[2] = { { 0 } };

	store_fail_next_writes(f->s, 1);
	assert_int_equal(store_put_at(f->s, mkver("t", 42, 1), 10, done_cb,
	    &d[0]), 0);
	run_until(f->base, d, 1);
	assert_int_equal(d[0].err, CERTD_ERR_STORAGE);
	assert_int_equal(store_head_revision(f->s), store_revision(f->s));
	assert_int_equal(store_put_at(f->s, mkver("t", 42, 1), 10, done_cb,
	    &d[1]), 0);
	run_until(f->base, &d[1], 1);
	assert_int_equal(d[1].err, 0);
	assert_int_equal(store_revision(f->s), 10);
	assert_int_equal(store_meta_get(f->s, "t", 42)->revision, 10);
}

/* A schema 2 database (no history) gets its current versions as history. */
static void
test_history_upgrade(void **state)
{
	struct fixture		*f = *state;
	rocksdb_options_t	*o;
	rocksdb_writeoptions_t	*wo;
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	rocksdb_t		*db;
	char			 path[PATH_MAX], *err = NULL;
	const char		*k;
	size_t			 klen, n = 0;
	uint64_t		 a, b;

	a = store_next_id(f->s);
	put_ver(f, "t", a, 1);			/* 1 */
	put_ver(f, "t", a, 2);			/* 2 */
	b = store_next_id(f->s);
	put_ver(f, "t", b, 1);			/* 3 */
	store_free(f->s);
	f->s = NULL;

	/* as certd with schema 2 left it: no "h" keys, marker 2 */
	snprintf(path, sizeof(path), "%s/db", f->dir);
	o = rocksdb_options_create();
	wo = rocksdb_writeoptions_create();
	ro = rocksdb_readoptions_create();
	db = rocksdb_open(o, path, &err);
	assert_null(err);
	rocksdb_put(db, wo, "m:schema", 8, "\0\0\0\0\0\0\0\2", 8, &err);
	assert_null(err);
	{
		rocksdb_writebatch_t	*wb = rocksdb_writebatch_create();
		char			 hk[17], *hv;
		const char		*iv;
		size_t			 ilen, hlen;

		/* each "r" holds its whole current version again */
		it = rocksdb_create_iterator(db, ro);
		for (rocksdb_iter_seek(it, "r", 1); rocksdb_iter_valid(it);
		    rocksdb_iter_next(it)) {
			k = rocksdb_iter_key(it, &klen);
			if (k[0] != 'r')
				break;
			iv = rocksdb_iter_value(it, &ilen);
			assert_true(ilen > 8);
			hk[0] = 'h';
			memcpy(hk + 1, k + 1, 8);
			memcpy(hk + 9, iv, 8);	/* its revision */
			hv = rocksdb_get(db, ro, hk, sizeof(hk), &hlen, &err);
			assert_null(err);
			assert_non_null(hv);
			rocksdb_writebatch_put(wb, k, klen, hv, hlen);
			rocksdb_free(hv);
		}
		rocksdb_iter_destroy(it);
		rocksdb_writebatch_delete_range(wb, "h", 1, "i", 1);
		rocksdb_write(db, wo, wb, &err);
		rocksdb_writebatch_destroy(wb);
		assert_null(err);
	}
	it = rocksdb_create_iterator(db, ro);
	for (rocksdb_iter_seek(it, "h", 1); rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (k[0] == 'h')
			n++;
	}
	rocksdb_iter_destroy(it);
	assert_int_equal(n, 0);
	rocksdb_close(db);
	rocksdb_readoptions_destroy(ro);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);

	reopen(f);
	{
		const uint64_t wa[] = { 2 }, wb[] = { 3 };

		assert_history(f, "t", a, wa, 1);
		assert_history(f, "t", b, wb, 1);
	}
	assert_version(f, "t", a, 2, 2);
	put_ver(f, "t", a, 3);			/* 4 */
	{
		const uint64_t want[] = { 4, 2 };

		assert_history(f, "t", a, want, 2);
	}
}

/* ------------------------------------------------------------------ */
/* A damaged write-ahead log                                           */

/* The largest write-ahead log of the store, into path; its size. */
static off_t
wal_path(const struct fixture *f, char *path, size_t len)
{
	struct dirent	*de;
	struct stat	 st;
	char		 db[96], p[PATH_MAX];
	off_t		 best = -1;
	DIR		*d;
	size_t		 n;

	snprintf(db, sizeof(db), "%s/db", f->dir);
	assert_non_null(d = opendir(db));
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".log") != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", db, de->d_name);
		if (stat(p, &st) == 0 && st.st_size > best) {
			best = st.st_size;
			snprintf(path, len, "%s", p);
		}
	}
	closedir(d);
	assert_true(best >= 0);
	return best;
}

static char *
slurp(const char *path, off_t size)
{
	char	*buf;
	int	 fd;

	assert_non_null(buf = malloc((size_t)size));
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(read(fd, buf, (size_t)size), (ssize_t)size);
	close(fd);
	return buf;
}

/*
 * One flipped byte in the middle of the log: the open refuses, names the
 * log, the offset and the last good revision, and changes nothing.  A
 * point-in-time recovery keeps the revisions up to it, in a new epoch,
 * with the log copied aside; asked for again, there is nothing to recover.
 * A log cut short in its last record (a torn tail) opens.
 */
static void
test_wal_damage(void **state)
{
	struct fixture		*f = *state;
	struct store_options	 so = { .recover = STORE_RECOVER_POINT_IN_TIME };
	struct dirent		*de;
	struct done		 d = { 0 };
	unsigned long long	 good = 0, off = 0;
	char			 err[1024], log[PATH_MAX], *before, *after, *p;
	uint64_t		 epoch, id;
	off_t			 size, flip;
	unsigned char		 b;
	int			 fd, i, kept = 0;
	DIR			*dir;

	for (i = 1; i <= 60; i++) {
		char	alias[16];

		snprintf(alias, sizeof(alias), "a%d", i);
		memset(&d, 0, sizeof(d));
		id = store_next_id(f->s);
		assert_int_equal(store_put(f->s, mkrec("t", alias, id, 3000),
		    done_cb, &d), 0);
		run_until(f->base, &d, 1);
		assert_int_equal(d.err, 0);
	}
	assert_int_equal(store_revision(f->s), 60);
	epoch = pos(f->s).epoch;
	store_free(f->s);
	f->s = NULL;

	size = wal_path(f, log, sizeof(log));
	assert_true(size > 150000);
	flip = (size / 2) / 32768 * 32768 + 1000;
	assert_true((fd = open(log, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &b, 1, flip), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, flip), 1);
	close(fd);
	before = slurp(log, size);

	assert_null(store_open(f->base, f->dir, err, sizeof(err)));
	assert_non_null(p = strstr(err, "write-ahead log "));
	assert_non_null(strstr(err, log));
	assert_non_null(p = strstr(err, " is damaged at offset "));
	assert_int_equal(sscanf(p, " is damaged at offset %llu", &off), 1);
	assert_true(off <= (unsigned long long)flip &&
	    (unsigned long long)flip < off + 32768);
	assert_non_null(p = strstr(err, "the last good revision is "));
	assert_int_equal(sscanf(p, "the last good revision is %llu", &good),
	    1);
	assert_true(good > 0 && good < 60);
	assert_non_null(strstr(err, "nothing was changed"));
	assert_int_equal(wal_path(f, log, sizeof(log)), size);
	after = slurp(log, size);
	assert_memory_equal(before, after, (size_t)size);
	free(after);

	f->s = store_open_opts(f->base, f->dir, &so, err, sizeof(err));
	if (f->s == NULL)
		fail_msg("recovery: %s", err);
	assert_int_equal(store_revision(f->s), good);
	assert_int_equal(pos(f->s).count, good);
	assert_non_null(store_get(f->s, "t", good));
	assert_null(store_get(f->s, "t", good + 1));
	assert_int_not_equal(pos(f->s).epoch, epoch);
	epoch = pos(f->s).epoch;
	assert_non_null(dir = opendir(f->dir));
	while ((de = readdir(dir)) != NULL)
		if (strncmp(de->d_name, "lost-", 5) == 0) {
			char	path[PATH_MAX];
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", f->dir,
			    de->d_name);
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_mode & 07777, 0600);
			assert_int_equal(st.st_size, size);
			after = slurp(path, size);
			assert_memory_equal(before, after, (size_t)size);
			free(after);
			kept++;
		}
	closedir(dir);
	assert_int_equal(kept, 1);
	free(before);
	put_new(f, "t", "after");
	assert_int_equal(store_revision(f->s), good + 1);

	reopen(f);
	assert_int_equal(pos(f->s).epoch, epoch);
	assert_int_equal(store_revision(f->s), good + 1);
	store_free(f->s);
	assert_null(f->s = store_open_opts(f->base, f->dir, &so, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "nothing to recover"));

	/* a torn tail: the write that never finished is dropped */
	assert_non_null(f->s = store_open(f->base, f->dir, err, sizeof(err)));
	put_new(f, "t", "x1");
	put_new(f, "t", "x2");
	store_free(f->s);
	size = wal_path(f, log, sizeof(log));
	assert_int_equal(truncate(log, size - 10), 0);
	assert_non_null(f->s = store_open(f->base, f->dir, err, sizeof(err)));
	assert_int_equal(store_revision(f->s), good + 2);
	assert_int_equal(pos(f->s).epoch, epoch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_garbage),
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_alias, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_paging, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pending_alias, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_drains, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_double_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_retain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_scan, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_scan_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_trim_in_flight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_retain_deletes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_done_revision, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_at_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_v1_upgrade, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_crash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rekey_write_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_failure,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_without_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_keep, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_history_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_history_failed_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_delete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_history_rekey, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_put_at, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_at_failed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_replaced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_history_upgrade, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wal_damage, setup,
		    teardown),
	};

	alarm(300);	/* a lost completion hangs the loop: fail instead */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
