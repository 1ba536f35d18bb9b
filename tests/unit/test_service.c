/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for service.c, the one place where create, update, delete and
 * rollback are decided.  A real store on a temporary data directory, a hub
 * fed by it and the service run on their own event_base; certificates come
 * from tests/pki/gen-pki.sh ($CERTD_PKI_DIR when the harness set it, else
 * tests/pki-out when it is there, else generated here from $CERTD_SRCDIR).
 * Covered: the order of the checks, the field rules, the merge of an update
 * onto the stored record, alias uniqueness against the head view, updates
 * that change nothing (no write, completed from the loop), the reuse of the
 * stored certificate's metadata, rollback, deletion of a certificate a
 * writer's watch binds, paging and the audit lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
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

#include "certd/constants.h"
#include "cert.h"
#include "err.h"
#include "hub.h"
#include "record.h"
#include "service.h"
#include "store.h"

/* Where the store stands (store_get_pos), as a value. */
static struct store_pos
pos(const struct store *s)
{
	struct store_pos	p;

	store_get_pos(s, &p);
	return p;
}

/* ------------------------------------------------------------------ */
/* The PKI                                                             */

struct pem {
	char	*s;
	size_t	 len;
};

static char	*pki_dir;
static char	*pki_tmp;	/* generated here: removed at the end */

static struct pem	ec_crt, ec_key, rsa_crt, rsa_key, rsa_p8, rsa_chain;
static struct pem	expired_crt, expired_key, notyet_crt, notyet_key;
static struct pem	other_key, garbage_crt;

/* A file of the PKI into a buffer of exactly its size plus a NUL. */
static int
pem_load(struct pem *p, const char *name)
{
	char	 path[PATH_MAX];
	FILE	*f;
	long	 n;

	snprintf(path, sizeof(path), "%s/%s", pki_dir, name);
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (p->s = calloc(1, (size_t)n + 1)) == NULL ||
	    fread(p->s, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p->len = (size_t)n;
	return 0;
}

static int
group_setup(void **state)
{
	const char	*dir = getenv("CERTD_PKI_DIR"), *src;
	char		 tmpl[PATH_MAX], cmd[2 * PATH_MAX + 64];

	(void)state;
	if (dir != NULL && *dir != '\0')
		pki_dir = strdup(dir);
	else if (access("tests/pki-out/.done", F_OK) == 0)
		pki_dir = strdup("tests/pki-out");
	else {
		if ((src = getenv("CERTD_SRCDIR")) == NULL || *src == '\0')
			src = ".";
		snprintf(tmpl, sizeof(tmpl), "%s/certd-test-svc-pki.XXXXXX",
		    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(tmpl) == NULL)
			return -1;
		if ((pki_tmp = strdup(tmpl)) == NULL)
			return -1;
		pki_dir = strdup(tmpl);
		snprintf(cmd, sizeof(cmd), "sh '%s/tests/pki/gen-pki.sh' '%s'",
		    src, tmpl);
		if (system(cmd) != 0) {
			fprintf(stderr, "%s failed\n", cmd);
			return -1;
		}
	}
	if (pki_dir == NULL)
		return -1;
	return pem_load(&ec_crt, "leaf-ec.pem") || pem_load(&ec_key,
	    "leaf-ec.key") || pem_load(&rsa_crt, "leaf-rsa.pem") ||
	    pem_load(&rsa_key, "leaf-rsa.key") || pem_load(&rsa_p8,
	    "leaf-rsa-pkcs8.key") || pem_load(&rsa_chain,
	    "leaf-rsa.chain.pem") || pem_load(&expired_crt, "expired.pem") ||
	    pem_load(&expired_key, "expired.key") || pem_load(&notyet_crt,
	    "notyet.pem") || pem_load(&notyet_key, "notyet.key") ||
	    pem_load(&other_key, "other.key") || pem_load(&garbage_crt,
	    "garbage.pem") ? -1 : 0;
}

static int
group_teardown(void **state)
{
	struct pem	*all[] = { &ec_crt, &ec_key, &rsa_crt, &rsa_key,
			    &rsa_p8, &rsa_chain, &expired_crt, &expired_key,
			    &notyet_crt, &notyet_key, &other_key,
			    &garbage_crt };
	char		 cmd[PATH_MAX + 16];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free(all[i]->s);
	if (pki_tmp != NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", pki_tmp);
	}
	free(pki_tmp);
	free(pki_dir);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The fixture                                                         */

struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct store		*store;
	struct hub		*hub;
	struct service		*svc;
};

static void
publish(const struct store_change *ch, void *arg)
{
	hub_publish(arg, ch);
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[512];

	assert_non_null(f = calloc(1, sizeof(*f)));
	snprintf(f->dir, sizeof(f->dir), "/tmp/certd-test-svc.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(f->base = event_base_new());
	if ((f->store = store_open(f->base, f->dir, err, sizeof(err))) == NULL)
		fail_msg("store_open: %s", err);
	assert_non_null(f->hub = hub_new(f->store));
	store_set_change_cb(f->store, publish, f->hub);
	assert_non_null(f->svc = service_new(f->base, f->store, f->hub));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 cmd[128];

	service_free(f->svc);
	hub_free(f->hub);
	store_free(f->store);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

/* What a completion was given. */
struct done {
	int		 called;
	int		 err;
	int		 has_rec;
	uint64_t	 id;
	uint64_t	 rev;
	uint64_t	 rev_now;	/* service_revision during the call */
	struct service	*svc;
	char		 alias[300];
};

static void
on_done(int err, const struct cert_record *rec, void *arg)
{
	struct done	*d = arg;

	d->called++;
	d->err = err;
	d->has_rec = rec != NULL;
	d->id = rec != NULL ? rec->id : 0;
	d->rev = rec != NULL ? rec->revision : 0;
	d->rev_now = d->svc != NULL ? service_revision(d->svc) : 0;
	snprintf(d->alias, sizeof(d->alias), "%s",
	    rec != NULL && rec->alias != NULL ? rec->alias : "");
}

static void
wait_done(struct fixture *f, struct done *d)
{
	while (d->called == 0)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	assert_int_equal(d->called, 1);
}

/* Turn the loop without blocking: what is due runs. */
static void
turn(struct fixture *f)
{
	int	i;

	for (i = 0; i < 3; i++)
		assert_int_not_equal(event_base_loop(f->base,
		    EVLOOP_NONBLOCK), -1);
}

static struct service_field
fld(const char *s)
{
	struct service_field	v = { s, s != NULL ? strlen(s) : 0 };

	return v;
}

static struct service_field
fpem(const struct pem *p)
{
	struct service_field	v = { p != NULL ? p->s : NULL,
				    p != NULL ? p->len : 0 };

	return v;
}

static struct service_put_req
req(const char *team, uint64_t id, const char *alias, const struct pem *crt,
    const struct pem *key, const char *type)
{
	struct service_put_req	r;

	memset(&r, 0, sizeof(r));
	r.who = "token:test";
	r.team = team;
	r.id = id;
	r.alias = fld(alias);
	r.certificate = fpem(crt);
	r.private_key = fpem(key);
	r.cert_type = fld(type);
	return r;
}

/* A fresh completion record for a call, and no reason yet. */
static void
arm(struct fixture *f, struct done *d, struct service_why *why)
{
	memset(d, 0, sizeof(*d));
	d->svc = f->svc;
	memset(why, 0, sizeof(*why));
}

/*
 * After a service call that returned rv: the completion never ran inside
 * the call; when accepted, wait for it; when refused, check it never
 * comes.  Returns rv.
 */
static int
settle(struct fixture *f, struct done *d, int rv)
{
	assert_int_equal(d->called, 0);
	if (rv == 0)
		wait_done(f, d);
	else {
		turn(f);
		assert_int_equal(d->called, 0);
	}
	return rv;
}

static int
put(struct fixture *f, const struct service_put_req *r, struct done *d,
    struct service_why *why)
{
	arm(f, d, why);
	return settle(f, d, service_put(f->svc, r, on_done, d, why));
}

static int
del(struct fixture *f, const char *team, uint64_t id, int force,
    struct done *d, struct service_why *why)
{
	arm(f, d, why);
	return settle(f, d, service_delete(f->svc, "token:test", team, id,
	    force, on_done, d, why));
}

static int
rollback(struct fixture *f, const char *team, uint64_t id, uint64_t rev,
    struct done *d, struct service_why *why)
{
	arm(f, d, why);
	return settle(f, d, service_rollback(f->svc, "token:test", team, id,
	    rev, on_done, d, why));
}

/* Create and wait: the new id. */
static uint64_t
create(struct fixture *f, const char *team, const char *alias,
    const struct pem *crt, const struct pem *key)
{
	struct service_put_req	r;
	struct service_why	why;
	struct done		d;
	int			rv;

	r = req(team, 0, alias, crt, key, "server");
	if ((rv = put(f, &r, &d, &why)) != 0)
		fail_msg("create %s/%s: %d %s %s", team, alias, rv,
		    why.field ? why.field : "-", why.reason ? why.reason : "-");
	assert_int_equal(d.err, 0);
	assert_int_not_equal(d.id, 0);
	return d.id;
}

/* Update and wait; must be accepted and succeed.  The completion's rev. */
static uint64_t
update(struct fixture *f, const struct service_put_req *r)
{
	struct service_why	why;
	struct done		d;
	int			rv;

	if ((rv = put(f, r, &d, &why)) != 0)
		fail_msg("update %llu: %d %s %s", (unsigned long long)r->id, rv,
		    why.field ? why.field : "-", why.reason ? why.reason : "-");
	assert_int_equal(d.err, 0);
	assert_int_equal(d.id, r->id);
	return d.rev;
}

/* The revisions of a certificate's history, newest first. */
struct revs {
	size_t		n;
	uint64_t	rev[32];
};

static int
on_version(const struct cert_record *rec, void *arg)
{
	struct revs	*r = arg;

	assert_null(rec->private_key);
	assert_true(r->n < 32);
	r->rev[r->n++] = rec->revision;
	return 0;
}

static size_t
history(struct fixture *f, const char *team, uint64_t id, struct revs *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(service_history(f->svc, team, id, on_version, r), 0);
	return r->n;
}

static void
assert_why(const struct service_why *why, const char *field, const char *reason)
{
	if (field == NULL)
		assert_null(why->field);
	else {
		assert_non_null(why->field);
		assert_string_equal(why->field, field);
	}
	if (reason == NULL)
		assert_null(why->reason);
	else {
		assert_non_null(why->reason);
		assert_string_equal(why->reason, reason);
	}
}

/* Put rec straight into the store (no service checks) and wait. */
static uint64_t
store_raw(struct fixture *f, struct cert_record *rec)
{
	struct done	d = { 0 };

	assert_int_equal(store_put(f->store, rec, on_done, &d), 0);
	wait_done(f, &d);
	assert_int_equal(d.err, 0);
	return d.rev;
}

/* A record of team with the given PEM bytes and metadata. */
static struct cert_record *
raw_record(struct fixture *f, const char *team, uint64_t id,
    const char *alias, const char *crt, const char *key,
    const struct cert_meta *meta)
{
	struct cert_record	*rec;

	assert_non_null(rec = record_new());
	rec->id = id != 0 ? id : store_next_id(f->store);
	assert_non_null(rec->team = strdup(team));
	assert_non_null(rec->alias = strdup(alias));
	assert_non_null(rec->cert_type = strdup("server"));
	assert_non_null(rec->certificate = strdup(crt));
	rec->certificate_len = strlen(crt);
	assert_non_null(rec->private_key = strdup(key));
	rec->private_key_len = strlen(key);
	rec->created_at = 1700000000;
	rec->updated_at = 1700000000;
	assert_int_equal(cert_meta_copy(&rec->meta, meta), 0);
	return rec;
}

/* PEM text with every LF made CRLF. */
static struct pem
crlf(const struct pem *p)
{
	struct pem	o;
	size_t		i, j = 0;

	assert_non_null(o.s = malloc(2 * p->len + 1));
	for (i = 0; i < p->len; i++) {
		if (p->s[i] == '\n')
			o.s[j++] = '\r';
		o.s[j++] = p->s[i];
	}
	o.s[j] = '\0';
	o.len = j;
	return o;
}

/* ------------------------------------------------------------------ */
/* Create and the order of the checks                                  */

/*
 * A create is accepted, completes later on the loop, and stores the
 * fields as given (certtool writes PEM in certd's normal form), the
 * metadata of the certificate and the times.
 */
static void
test_create(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct service_put_req	 r = req("team-a", 0, "web", &ec_crt,
				    &ec_key, "server");
	struct service_why	 why;
	struct done		 d;
	struct revs		 h;
	uint64_t		 rev0 = service_revision(f->svc), id0;
	int64_t			 t0 = (int64_t)time(NULL);

	assert_int_equal(put(f, &r, &d, &why), 0);
	assert_int_equal(d.err, 0);
	assert_true(d.has_rec);
	assert_int_equal(d.rev, rev0 + 1);
	assert_int_equal(d.rev_now, d.rev);
	assert_int_equal(service_revision(f->svc), rev0 + 1);
	assert_string_equal(d.alias, "web");

	assert_non_null(rec = service_get(f->svc, "team-a", d.id));
	assert_int_equal(service_get_alias(f->svc, "team-a", "web")->revision,
	    rec->revision);
	assert_null(service_get(f->svc, "team-b", d.id));
	assert_null(service_get_alias(f->svc, "team-b", "web"));
	assert_string_equal(rec->team, "team-a");
	assert_string_equal(rec->cert_type, "server");
	assert_int_equal(rec->certificate_len, ec_crt.len);
	assert_memory_equal(rec->certificate, ec_crt.s, ec_crt.len);
	assert_int_equal(rec->private_key_len, ec_key.len);
	assert_memory_equal(rec->private_key, ec_key.s, ec_key.len);
	assert_true(rec->created_at >= t0 && rec->created_at <= t0 + 5);
	assert_int_equal(rec->updated_at, rec->created_at);
	assert_string_equal(rec->meta.subject_cn, "ec.example.test");
	assert_string_equal(rec->meta.key_algorithm, "ECDSA");
	assert_int_equal(rec->meta.chain_len, 1);
	assert_int_equal(strlen(rec->meta.fingerprint), CERT_FINGERPRINT_LEN);
	assert_int_equal(history(f, "team-a", d.id, &h), 1);
	assert_int_equal(h.rev[0], d.rev);

	/* ids are never reused and grow (rec was lent: gone once the loop ran) */
	id0 = rec->id;
	r.alias = fld("api");
	assert_int_equal(put(f, &r, &d, &why), 0);
	assert_true(d.id > id0);
}

/* A create needs every field, and names the first one missing. */
static void
test_required_fields(void **state)
{
	struct fixture		*f = *state;
	struct service_put_req	 r = req("t", 0, NULL, NULL, NULL, NULL);
	struct service_why	 why;
	struct done		 d;
	uint64_t		 rev0 = service_revision(f->svc);

	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "alias", "is required");
	r.alias = fld("web");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "private_key", "is required");
	r.private_key = fpem(&ec_key);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "certificate", "is required");
	r.certificate = fpem(&ec_crt);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "certificate_type", "is required");
	/* an empty value is given, and then checked as such */
	r.cert_type = fld("");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "certificate_type", "must not be empty");
	assert_int_equal(service_revision(f->svc), rev0);
	assert_int_equal(pos(f->store).count, 0);
}

/* The rules of alias and certificate_type, and the size limits. */
static void
test_field_rules(void **state)
{
	static const char bidi[] = "must not contain bidirectional control "
	    "characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 "
	    "to U+2069)";
	static const char zw[] = "must not contain zero-width characters "
	    "(U+200B to U+200D, U+2060, U+FEFF)";
	static const char ctl[] = "must not contain control characters";
	static const struct {
		const char	*alias;
		const char	*reason;	/* NULL: accepted */
		const char	*stored;
	} cases[] = {
		{ " \t\r\n", "must not be empty", NULL },
		{ "", "must not be empty", NULL },
		{ "a\tb", ctl, NULL },
		{ "a\x01", ctl, NULL },
		{ "a\x7f" "b", ctl, NULL },
		{ "a\xc2\x85" "b", ctl, NULL },		/* U+0085, C1 */
		{ "a\xc2\x9f", ctl, NULL },		/* U+009F */
		{ "\xff", "must be valid UTF-8", NULL },
		{ "a\xc3", "must be valid UTF-8", NULL },
		{ "\xc0\xaf", "must be valid UTF-8", NULL }, /* overlong */
		{ "\xed\xa0\x80", "must be valid UTF-8", NULL }, /* U+D800 */
		{ "a\xd8\x9c", bidi, NULL },		/* U+061C */
		{ "\xe2\x80\x8e", bidi, NULL },		/* U+200E */
		{ "\xe2\x80\x8f", bidi, NULL },
		{ "x\xe2\x80\xaa", bidi, NULL },	/* U+202A */
		{ "x\xe2\x80\xae", bidi, NULL },	/* U+202E */
		{ "\xe2\x81\xa6y", bidi, NULL },	/* U+2066 */
		{ "\xe2\x81\xa9y", bidi, NULL },	/* U+2069 */
		{ "w\xe2\x80\x8b" "eb", zw, NULL },	/* U+200B */
		{ "w\xe2\x80\x8d" "eb", zw, NULL },	/* U+200D */
		{ "w\xe2\x81\xa0" "eb", zw, NULL },	/* U+2060 */
		{ "\xef\xbb\xbfweb", zw, NULL },	/* U+FEFF */
		/* neighbours of the refused ranges are fine */
		{ "a\xc2\xa0" "b", NULL, "a\xc2\xa0" "b" },	/* U+00A0 */
		{ "\xe2\x80\x90", NULL, "\xe2\x80\x90" },	/* U+2010 */
		{ "\xe2\x80\xaf", NULL, "\xe2\x80\xaf" },	/* U+202F */
		{ "\xe2\x81\xaa", NULL, "\xe2\x81\xaa" },	/* U+206A */
		{ "\xf0\x9f\x94\x92", NULL, "\xf0\x9f\x94\x92" },
		{ "  web \t\r\n", NULL, "web" },
		{ "a b", NULL, "a b" },
	};
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 name[300];
	size_t			 i;
	int			 rv;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = req("t", 0, cases[i].alias, &ec_crt, &ec_key, "server");
		rv = put(f, &r, &d, &why);
		if (cases[i].reason != NULL) {
			if (rv != CERTD_ERR_BAD_REQUEST)
				fail_msg("case %zu accepted (%d)", i, rv);
			assert_why(&why, "alias", cases[i].reason);
			continue;
		}
		if (rv != 0)
			fail_msg("case %zu refused: %s", i, why.reason);
		assert_non_null(rec = service_get(f->svc, "t", d.id));
		assert_string_equal(rec->alias, cases[i].stored);
		/* the type follows the same rules */
		r = req("t", d.id, NULL, NULL, NULL, cases[i].alias);
		assert_int_equal(update(f, &r), d.rev + 1);
		assert_string_equal(service_get(f->svc, "t", d.id)->cert_type,
		    cases[i].stored);
	}
	r = req("t", 0, "x", &ec_crt, &ec_key, "a\x01");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "certificate_type", ctl);

	/* 64 characters of alias, 32 of type, counted in code points */
	memset(name, 0, sizeof(name));
	for (i = 0; i < 64; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	r = req("t", 0, name, &ec_crt, &ec_key, "server");
	assert_int_equal(put(f, &r, &d, &why), 0);
	memcpy(name + 128, "e", 2);
	r = req("t", 0, name, &ec_crt, &ec_key, "server");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "alias", "must be at most 64 characters");
	memset(name, 0, sizeof(name));
	for (i = 0; i < 32; i++)
		memcpy(name + 3 * i, "\xe2\x82\xac", 3);
	r = req("t", 0, "euro", &ec_crt, &ec_key, name);
	assert_int_equal(put(f, &r, &d, &why), 0);
	memcpy(name + 96, "e", 2);
	r = req("t", 0, "euro2", &ec_crt, &ec_key, name);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "certificate_type", "must be at most 32 characters");

	/* sizes, before anything is read */
	{
		struct pem	big;

		assert_non_null(big.s = malloc(CERTD_CERT_MAX + 1));
		memset(big.s, 'A', CERTD_CERT_MAX + 1);
		big.len = CERTD_CERT_MAX + 1;
		r = req("t", 0, "big", &big, &ec_key, "server");
		assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
		assert_why(&why, "certificate", "must be at most 65536 bytes");
		big.len = CERTD_KEY_MAX + 1;
		r = req("t", 0, "big", &ec_crt, &big, "server");
		assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
		assert_why(&why, "private_key", "must be at most 16384 bytes");
		/* within the limit, it is read and refused as a certificate */
		big.len = CERTD_CERT_MAX;
		r = req("t", 0, "big", &big, &ec_key, "server");
		assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_CERT_INVALID);
		assert_string_equal(why.field, "certificate");
		free(big.s);
	}
}

/*
 * The certificate checks, in cert_check's order and with its reasons,
 * blamed on the right field, and counted by reason.
 */
static void
test_certificate_checks(void **state)
{
	static const struct {
		const struct pem	*crt, *key;
		int			 rv;
		const char		*field;
	} cases[] = {
		{ &garbage_crt, &ec_key, CERTD_ERR_CERT_INVALID,
		    "certificate" },
		{ &expired_crt, &expired_key, CERTD_ERR_CERT_EXPIRED,
		    "certificate" },
		{ &notyet_crt, &notyet_key, CERTD_ERR_CERT_NOT_YET,
		    "certificate" },
		{ &ec_crt, &other_key, CERTD_ERR_KEY_MISMATCH, "private_key" },
		{ &ec_crt, &ec_crt, CERTD_ERR_KEY_INVALID, "private_key" },
		/* the dates come before the key */
		{ &expired_crt, &other_key, CERTD_ERR_CERT_EXPIRED,
		    "certificate" },
		{ &expired_crt, &ec_crt, CERTD_ERR_CERT_EXPIRED,
		    "certificate" },
	};
	struct fixture		*f = *state;
	struct cert_meta	 meta;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 want[CERT_WHY_MAX];
	uint64_t		 before[SERVICE_REASONS];
	size_t			 i;
	int			 k, rv;

	assert_string_equal(service_reason_names[0], "certificate_invalid");
	assert_string_equal(service_reason_names[1], "certificate_expired");
	assert_string_equal(service_reason_names[2],
	    "certificate_not_yet_valid");
	assert_string_equal(service_reason_names[3], "key_invalid");
	assert_string_equal(service_reason_names[4], "key_mismatch");
	assert_string_equal(service_reason_names[5], "chain_invalid");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (k = 0; k < SERVICE_REASONS; k++)
			before[k] = service_validation_failures(f->svc, k);
		r = req("t", 0, "web", cases[i].crt, cases[i].key, "server");
		rv = put(f, &r, &d, &why);
		if (rv != cases[i].rv)
			fail_msg("case %zu: %d, wanted %d", i, rv, cases[i].rv);
		assert_non_null(why.field);
		assert_string_equal(why.field, cases[i].field);
		/* cert_check's own reason, word for word */
		memset(&meta, 0, sizeof(meta));
		assert_int_equal(cert_check(cases[i].crt->s, cases[i].crt->len,
		    cases[i].key->s, cases[i].key->len, (int64_t)time(NULL),
		    &meta, want, sizeof(want)), rv);
		assert_non_null(why.reason);
		assert_ptr_equal(why.reason, why.buf);
		assert_string_equal(why.reason, want);
		for (k = 0; k < SERVICE_REASONS; k++)
			assert_int_equal(service_validation_failures(f->svc, k),
			    before[k] + (k == CERTD_ERR_CERT_INVALID - rv));
	}
	assert_int_equal(pos(f->store).count, 0);

	/* a chain is fine, and counted as one */
	r = req("t", 0, "chain", &rsa_chain, &rsa_key, "server");
	assert_int_equal(put(f, &r, &d, &why), 0);
	assert_int_equal(service_get(f->svc, "t", d.id)->meta.chain_len, 2);
}

/*
 * Fields first, then the record's existence, then the certificate, then
 * the alias: a client learns about the first thing wrong.
 */
static void
test_check_order(void **state)
{
	struct fixture		*f = *state;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	uint64_t		 id = create(f, "t", "web", &ec_crt, &ec_key);

	r = req("t", id + 100, "", &garbage_crt, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "alias", "must not be empty");
	r = req("t", id + 100, "web", &garbage_crt, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_NOT_FOUND);
	assert_why(&why, NULL, NULL);
	/* a certificate of another team is not found either */
	r = req("u", id, "web", &garbage_crt, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_NOT_FOUND);
	/* a bad certificate under a taken alias: the certificate first */
	r = req("t", 0, "web", &expired_crt, &expired_key, "server");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_CERT_EXPIRED);
	assert_string_equal(why.field, "certificate");
	r = req("t", 0, "web", &ec_crt, &ec_key, "server");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_ALIAS_EXISTS);
	assert_string_equal(why.field, "alias");
	assert_int_equal(pos(f->store).count, 1);
}

/*
 * A check made off the loop (service_precheck) gives the verdict, the
 * field and the reason the loop's own check gives, in the same order
 * after the field rules and the record's existence; one made for other
 * bytes is not used.
 */
static void
test_precheck(void **state)
{
	static const struct {
		const struct pem	*crt, *key;
		int			 rv;
	} cases[] = {
		{ &garbage_crt, &ec_key, CERTD_ERR_CERT_INVALID },
		{ &expired_crt, &expired_key, CERTD_ERR_CERT_EXPIRED },
		{ &notyet_crt, &notyet_key, CERTD_ERR_CERT_NOT_YET },
		{ &ec_crt, &other_key, CERTD_ERR_KEY_MISMATCH },
		{ &ec_crt, &ec_crt, CERTD_ERR_KEY_INVALID },
		{ &rsa_chain, &rsa_key, 0 },
	};
	struct fixture		*f = *state;
	struct service_precheck	*pc;
	struct service_pair	*pair;
	struct service_put_req	 r, plain;
	struct service_why	 why, want;
	struct done		 d;
	char			*copy;
	uint64_t		 id, rev;
	size_t			 i;
	int			 rv;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		plain = req("t", 0, "plain", cases[i].crt, cases[i].key,
		    "server");
		assert_int_equal(put(f, &plain, &d, &want), cases[i].rv);
		r = req("t", 0, "pre", cases[i].crt, cases[i].key, "server");
		assert_non_null(pc = service_precheck(&r, NULL));
		r.pre = pc;
		rv = put(f, &r, &d, &why);
		service_precheck_free(pc);
		if (rv != cases[i].rv)
			fail_msg("case %zu: %d, wanted %d", i, rv, cases[i].rv);
		if (rv == 0) {
			assert_int_equal(service_get(f->svc, "t", d.id)->
			    meta.chain_len, 2);
			continue;
		}
		assert_string_equal(why.field, want.field);
		assert_ptr_equal(why.reason, why.buf);
		assert_string_equal(why.reason, want.reason);
	}
	/* without a key or a certificate there is nothing to check yet */
	r = req("t", 0, "x", &ec_crt, NULL, "server");
	assert_null(service_precheck(&r, NULL));

	/* field rules, then existence, then the check */
	r = req("t", 0, "", &expired_crt, &expired_key, "server");
	assert_non_null(pc = service_precheck(&r, NULL));
	r.pre = pc;
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "alias", "must not be empty");
	r.alias = fld("web");
	r.id = 999999;
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_NOT_FOUND);
	service_precheck_free(pc);

	/* made for other bytes (the same text elsewhere): not used */
	r = req("t", 0, "other", &expired_crt, &expired_key, "server");
	assert_non_null(pc = service_precheck(&r, NULL));
	assert_non_null(copy = strndup(ec_crt.s, ec_crt.len));
	r = req("t", 0, "other", &ec_crt, &ec_key, "server");
	r.certificate.s = copy;
	r.pre = pc;
	assert_int_equal(put(f, &r, &d, &why), 0);
	service_precheck_free(pc);
	free(copy);

	/*
	 * An update that carries the stored bytes: nothing checked off the
	 * loop, and nothing written (the update changes nothing).  When the
	 * record changed since the pair was copied, the loop checks in full.
	 */
	id = create(f, "t", "same", &ec_crt, &ec_key);
	rev = service_revision(f->svc);
	assert_non_null(pair = service_pair_copy(f->svc, "t", id));
	assert_null(service_pair_copy(f->svc, "t", id + 1000));
	r = req("t", id, NULL, &ec_crt, &ec_key, NULL);
	assert_non_null(pc = service_precheck(&r, pair));
	r.pre = pc;
	assert_int_equal(put(f, &r, &d, &why), 0);
	assert_int_equal(service_revision(f->svc), rev);
	r = req("t", id, NULL, &rsa_chain, &rsa_key, NULL);
	assert_int_equal(put(f, &r, &d, &why), 0);	/* changed since */
	r = req("t", id, NULL, &ec_crt, &expired_key, NULL);
	r.pre = NULL;
	service_precheck_free(pc);
	assert_non_null(pc = service_precheck(&r, pair));
	r.pre = pc;
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_KEY_MISMATCH);
	service_precheck_free(pc);
	r = req("t", id, NULL, &ec_crt, &ec_key, NULL);
	assert_non_null(pc = service_precheck(&r, pair));
	r.pre = pc;
	assert_int_equal(put(f, &r, &d, &why), 0);	/* checked in full */
	assert_int_equal(service_get(f->svc, "t", id)->meta.chain_len, 1);
	service_precheck_free(pc);
	service_pair_free(pair);
}

/* ------------------------------------------------------------------ */
/* Updates                                                             */

/* An update changes the fields it names and keeps the others. */
static void
test_merge(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 fp[CERT_FINGERPRINT_LEN + 1];
	uint64_t		 id, rev;
	int64_t			 created;

	id = create(f, "t", "web", &ec_crt, &ec_key);
	rec = service_get(f->svc, "t", id);
	created = rec->created_at;
	rev = rec->revision;
	memcpy(fp, rec->meta.fingerprint, sizeof(fp));

	/* the alias alone */
	r = req("t", id, "api", NULL, NULL, NULL);
	assert_int_equal(update(f, &r), rev + 1);
	rec = service_get(f->svc, "t", id);
	assert_string_equal(rec->alias, "api");
	assert_string_equal(rec->cert_type, "server");
	assert_memory_equal(rec->certificate, ec_crt.s, ec_crt.len);
	assert_memory_equal(rec->private_key, ec_key.s, ec_key.len);
	assert_string_equal(rec->meta.fingerprint, fp);
	assert_int_equal(rec->created_at, created);
	assert_true(rec->updated_at >= created);
	assert_null(service_get_alias(f->svc, "t", "web"));
	assert_int_equal(service_get_alias(f->svc, "t", "api")->revision,
	    rec->revision);

	/* the type alone */
	r = req("t", id, NULL, NULL, NULL, "client");
	assert_int_equal(update(f, &r), rev + 2);
	rec = service_get(f->svc, "t", id);
	assert_string_equal(rec->alias, "api");
	assert_string_equal(rec->cert_type, "client");

	/* a new pair: alias and type stay, the metadata is the new one's */
	r = req("t", id, NULL, &rsa_crt, &rsa_key, NULL);
	assert_int_equal(update(f, &r), rev + 3);
	rec = service_get(f->svc, "t", id);
	assert_string_equal(rec->alias, "api");
	assert_string_equal(rec->cert_type, "client");
	assert_int_equal(rec->certificate_len, rsa_crt.len);
	assert_memory_equal(rec->certificate, rsa_crt.s, rsa_crt.len);
	assert_int_equal(rec->private_key_len, rsa_key.len);
	assert_memory_equal(rec->private_key, rsa_key.s, rsa_key.len);
	assert_string_equal(rec->meta.subject_cn, "www.example.test");
	assert_string_equal(rec->meta.key_algorithm, "RSA");
	assert_string_not_equal(rec->meta.fingerprint, fp);
	assert_int_equal(rec->created_at, created);

	/* a certificate alone is checked against the stored key */
	r = req("t", id, NULL, &ec_crt, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_KEY_MISMATCH);
	assert_string_equal(why.field, "private_key");
	/* a key alone against the stored certificate */
	r = req("t", id, NULL, NULL, &ec_key, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_KEY_MISMATCH);
	r = req("t", id, NULL, NULL, &rsa_p8, NULL);
	assert_int_equal(update(f, &r), rev + 4);
	/* nothing of a refused update was kept */
	assert_int_equal(service_revision(f->svc), rev + 4);
	rec = service_get(f->svc, "t", id);
	assert_memory_equal(rec->certificate, rsa_crt.s, rsa_crt.len);
	assert_memory_equal(rec->private_key, rsa_p8.s, rsa_p8.len);

	/* the history holds every version */
	{
		struct revs	h;

		assert_int_equal(history(f, "t", id, &h), 5);
		assert_int_equal(h.rev[0], rev + 4);
		assert_int_equal(h.rev[4], rev);
	}
}

/* Alias uniqueness: per team, exact, against the head view. */
static void
test_alias_conflicts(void **state)
{
	struct fixture		*f = *state;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d, d2;
	char			 want[128];
	uint64_t		 a, b, c;
	int			 rv;

	a = create(f, "t1", "web", &ec_crt, &ec_key);
	snprintf(want, sizeof(want), "is taken by certificate %llu of the team",
	    (unsigned long long)a);
	r = req("t1", 0, "web", &rsa_crt, &rsa_key, "server");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_ALIAS_EXISTS);
	assert_why(&why, "alias", want);
	assert_ptr_equal(why.reason, why.buf);
	/* trimmed before it is compared */
	r.alias = fld(" web\t");
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_ALIAS_EXISTS);
	/* another team has its own aliases */
	c = create(f, "t2", "web", &rsa_crt, &rsa_key);
	assert_int_not_equal(c, a);
	/* aliases compare byte for byte: "Web" is another alias */
	b = create(f, "t1", "Web", &rsa_crt, &rsa_key);

	/* a rename onto a taken alias is refused; onto its own is not */
	r = req("t1", b, "web", NULL, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_ALIAS_EXISTS);
	assert_why(&why, "alias", want);
	r = req("t1", a, "web", NULL, NULL, "client");
	update(f, &r);

	/* freed by a rename */
	r = req("t1", a, "web2", NULL, NULL, NULL);
	update(f, &r);
	c = create(f, "t1", "web", &rsa_crt, &rsa_key);
	/* freed by a delete */
	assert_int_equal(del(f, "t1", c, 0, &d, &why), 0);
	c = create(f, "t1", "web", &rsa_crt, &rsa_key);

	/*
	 * In flight: the head view decides.  A delete and a rename not yet
	 * written already free their alias; a create not yet written
	 * already holds its own.
	 */
	memset(&d, 0, sizeof(d));
	assert_int_equal(service_delete(f->svc, "x", "t1", c, 0, on_done, &d,
	    &why), 0);
	memset(&d2, 0, sizeof(d2));
	r = req("t1", a, "web3", NULL, NULL, NULL);
	assert_int_equal(service_put(f->svc, &r, on_done, &d2, &why), 0);
	{
		struct done	d3 = { 0 }, d4 = { 0 }, d5 = { 0 };

		r = req("t1", 0, "web", &ec_crt, &ec_key, "server");
		assert_int_equal(service_put(f->svc, &r, on_done, &d3, &why),
		    0);
		r = req("t1", 0, "web2", &ec_crt, &ec_key, "server");
		assert_int_equal(service_put(f->svc, &r, on_done, &d4, &why),
		    0);
		r = req("t1", 0, "web", &rsa_crt, &rsa_key, "server");
		rv = service_put(f->svc, &r, on_done, &d5, &why);
		assert_int_equal(rv, CERTD_ERR_ALIAS_EXISTS);
		wait_done(f, &d);
		wait_done(f, &d2);
		wait_done(f, &d3);
		wait_done(f, &d4);
		assert_int_equal(d.err, 0);
		assert_int_equal(d2.err, 0);
		assert_int_equal(d3.err, 0);
		assert_int_equal(d4.err, 0);
		snprintf(want, sizeof(want), "is taken by certificate %llu of "
		    "the team", (unsigned long long)d3.id);
		assert_why(&why, "alias", want);
		assert_int_equal(service_get_alias(f->svc, "t1", "web")->id,
		    d3.id);
		assert_int_equal(service_get_alias(f->svc, "t1", "web2")->id,
		    d4.id);
		assert_int_equal(service_get_alias(f->svc, "t1", "web3")->id,
		    a);
		turn(f);
		assert_int_equal(d5.called, 0);
	}
}

/*
 * An update that changes nothing writes nothing: no revision, no version,
 * completed from the loop with the current record.  What is compared is
 * the normal form of the PEM, so CRLF line ends change nothing; a key in
 * another encoding is other bytes, so it does.
 */
static void
test_unchanged(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	struct revs		 h;
	struct pem		 crt2 = crlf(&ec_crt), key2 = crlf(&ec_key);
	uint64_t		 id, rev;

	id = create(f, "t", "web", &ec_crt, &ec_key);
	rev = service_revision(f->svc);

	r = req("t", id, "web", &ec_crt, &ec_key, "server");
	memset(&d, 0, sizeof(d));
	d.svc = f->svc;
	assert_int_equal(service_put(f->svc, &r, on_done, &d, &why), 0);
	assert_int_equal(d.called, 0);		/* later, not now */
	wait_done(f, &d);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.id, id);
	assert_int_equal(d.rev, rev);
	assert_int_equal(service_revision(f->svc), rev);

	/* no field at all */
	r = req("t", id, NULL, NULL, NULL, NULL);
	assert_int_equal(update(f, &r), rev);
	/* the alias as it is, with blanks around it */
	r = req("t", id, "  web ", NULL, NULL, NULL);
	assert_int_equal(update(f, &r), rev);
	/* CRLF: the same normal form */
	r = req("t", id, NULL, &crt2, &key2, "server");
	assert_int_equal(update(f, &r), rev);
	assert_int_equal(service_revision(f->svc), rev);
	assert_int_equal(history(f, "t", id, &h), 1);

	/* a create in CRLF is stored in the normal form */
	r = req("t", 0, "crlf", &crt2, &key2, "server");
	assert_int_equal(put(f, &r, &d, &why), 0);
	rec = service_get(f->svc, "t", d.id);
	assert_int_equal(rec->certificate_len, ec_crt.len);
	assert_memory_equal(rec->certificate, ec_crt.s, ec_crt.len);
	assert_int_equal(rec->private_key_len, ec_key.len);
	assert_memory_equal(rec->private_key, ec_key.s, ec_key.len);
	rev = service_revision(f->svc);

	/* the same RSA key as PKCS#1 then PKCS#8: other bytes, a write */
	id = create(f, "t", "rsa", &rsa_crt, &rsa_key);
	r = req("t", id, NULL, NULL, &rsa_p8, NULL);
	assert_int_equal(update(f, &r), rev + 2);
	rec = service_get(f->svc, "t", id);
	assert_int_equal(rec->private_key_len, rsa_p8.len);
	assert_memory_equal(rec->private_key, rsa_p8.s, rsa_p8.len);

	/*
	 * Against what is committed: the same update twice in flight is two
	 * writes (the second is unchanged only against the first, which is
	 * not committed yet), completed in order.
	 */
	{
		struct done	d1 = { 0 }, d2 = { 0 };

		r = req("t", id, "rsa2", NULL, NULL, NULL);
		assert_int_equal(service_put(f->svc, &r, on_done, &d1, &why),
		    0);
		assert_int_equal(service_put(f->svc, &r, on_done, &d2, &why),
		    0);
		wait_done(f, &d1);
		wait_done(f, &d2);
		assert_int_equal(d1.rev, rev + 3);
		assert_int_equal(d2.rev, rev + 4);
		assert_int_equal(history(f, "t", id, &h), 4);
	}
	free(crt2.s);
	free(key2.s);
}

/*
 * When an update leaves the certificate and key byte for byte as stored,
 * their stored metadata is reused and only the dates are checked again:
 * shown with a record put straight into the store, whose PEM would not
 * pass cert_check at all.  Anything else is checked whole.
 */
static void
test_metadata_reuse(void **state)
{
	static const char fake_crt[] =
	    "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
	static const char fake_key[] =
	    "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct cert_meta	 meta;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 want[CERT_WHY_MAX];
	uint64_t		 id, rev;
	int64_t			 now = (int64_t)time(NULL);

	memset(&meta, 0, sizeof(meta));
	meta.subject_cn = (char *)(uintptr_t)"fake.example.test";
	meta.not_before = now - 3600;
	meta.not_after = now + 86400;
	memset(meta.fingerprint, 'f', CERT_FINGERPRINT_LEN);
	meta.key_bits = 123;

	/* valid dates: a rename is accepted with the stored metadata */
	id = store_next_id(f->store);
	store_raw(f, raw_record(f, "t", id, "fake", fake_crt, fake_key, &meta));
	r = req("t", id, "fake2", NULL, NULL, NULL);
	rev = update(f, &r);
	rec = service_get(f->svc, "t", id);
	assert_int_equal(rec->revision, rev);
	assert_string_equal(rec->alias, "fake2");
	/* an update keeps the creation time and sets its own */
	assert_int_equal(rec->created_at, 1700000000);
	assert_true(rec->updated_at >= now && rec->updated_at <= now + 5);
	assert_string_equal(rec->meta.fingerprint, meta.fingerprint);
	assert_string_equal(rec->meta.subject_cn, "fake.example.test");
	assert_int_equal(rec->meta.key_bits, 123);
	/* so is the same PEM given again, with a new type */
	r = req("t", id, NULL, &(struct pem){ (char *)(uintptr_t)fake_crt,
	    sizeof(fake_crt) - 1 }, &(struct pem){ (char *)(uintptr_t)fake_key,
	    sizeof(fake_key) - 1 }, "other");
	assert_int_equal(update(f, &r), rev + 1);
	/* a new key makes a whole check, which the fake fails */
	r = req("t", id, NULL, NULL, &ec_key, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_CERT_INVALID);
	assert_string_equal(why.field, "certificate");

	/* the dates are checked again, with cert_check's words */
	meta.not_after = now - 10;
	id = store_next_id(f->store);
	store_raw(f, raw_record(f, "t", id, "old", fake_crt, fake_key, &meta));
	r = req("t", id, "old2", NULL, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_CERT_EXPIRED);
	cert_time_why(CERTD_ERR_CERT_EXPIRED, &meta, want, sizeof(want));
	assert_why(&why, "certificate", want);
	assert_non_null(strstr(want, "fake.example.test"));
	meta.not_before = now + 3600;
	meta.not_after = now + 7200;
	id = store_next_id(f->store);
	store_raw(f, raw_record(f, "t", id, "new", fake_crt, fake_key, &meta));
	r = req("t", id, "new2", NULL, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_CERT_NOT_YET);
	cert_time_why(CERTD_ERR_CERT_NOT_YET, &meta, want, sizeof(want));
	assert_why(&why, "certificate", want);
}

/* ------------------------------------------------------------------ */
/* Rollback                                                            */

static void
test_rollback(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	struct revs		 h;
	uint64_t		 id, other, r1, r2, r3, r4;
	int64_t			 created;

	id = create(f, "t", "web", &ec_crt, &ec_key);
	rec = service_get(f->svc, "t", id);
	r1 = rec->revision;
	created = rec->created_at;
	r = req("t", id, "web2", NULL, NULL, "client");
	r2 = update(f, &r);
	r = req("t", id, NULL, &rsa_crt, &rsa_key, NULL);
	r3 = update(f, &r);
	other = create(f, "t", "other", &ec_crt, &ec_key);

	/* back to the first version: its content as a new revision */
	assert_int_equal(rollback(f, "t", id, r1, &d, &why), 0);
	assert_int_equal(d.err, 0);
	r4 = d.rev;
	assert_int_equal(r4, r3 + 2);
	assert_int_equal(d.rev_now, r4);
	rec = service_get(f->svc, "t", id);
	assert_int_equal(rec->revision, r4);
	assert_string_equal(rec->alias, "web");
	assert_string_equal(rec->cert_type, "server");
	assert_int_equal(rec->certificate_len, ec_crt.len);
	assert_memory_equal(rec->certificate, ec_crt.s, ec_crt.len);
	assert_int_equal(rec->private_key_len, ec_key.len);
	assert_memory_equal(rec->private_key, ec_key.s, ec_key.len);
	assert_string_equal(rec->meta.subject_cn, "ec.example.test");
	assert_int_equal(rec->created_at, created);
	assert_int_equal(service_get_alias(f->svc, "t", "web")->revision,
	    rec->revision);
	assert_int_equal(history(f, "t", id, &h), 4);
	assert_int_equal(h.rev[0], r4);
	assert_int_equal(h.rev[1], r3);
	assert_int_equal(h.rev[2], r2);
	assert_int_equal(h.rev[3], r1);

	/* to the version that is current, or one of the same content */
	assert_int_equal(rollback(f, "t", id, r4, &d, &why), 0);
	assert_int_equal(d.rev, r4);
	assert_int_equal(rollback(f, "t", id, r1, &d, &why), 0);
	assert_int_equal(d.rev, r4);
	assert_int_equal(service_revision(f->svc), r4);

	/* to r2: alias and type of r2, certificate of r2 (still ec) */
	assert_int_equal(rollback(f, "t", id, r2, &d, &why), 0);
	assert_int_equal(d.rev, r4 + 1);
	rec = service_get(f->svc, "t", id);
	assert_string_equal(rec->alias, "web2");
	assert_string_equal(rec->cert_type, "client");
	assert_memory_equal(rec->certificate, ec_crt.s, ec_crt.len);

	/* versions that are not there */
	assert_int_equal(rollback(f, "t", id, 9999, &d, &why),
	    CERTD_ERR_NO_REVISION);
	assert_why(&why, "revision", "is not in the certificate's history");
	assert_int_equal(rollback(f, "t", id, 0, &d, &why),
	    CERTD_ERR_NO_REVISION);
	/* another certificate's version */
	assert_int_equal(rollback(f, "t", id, r3 + 1, &d, &why),
	    CERTD_ERR_NO_REVISION);
	assert_int_equal(service_get(f->svc, "t", other)->revision, r3 + 1);
	/* certificates that are not there */
	assert_int_equal(rollback(f, "t", 9999, r1, &d, &why),
	    CERTD_ERR_NOT_FOUND);
	assert_why(&why, NULL, NULL);
	assert_int_equal(rollback(f, "u", id, r1, &d, &why),
	    CERTD_ERR_NOT_FOUND);

	/* the version's alias taken meanwhile */
	r = req("t", other, "web", NULL, NULL, NULL);
	update(f, &r);
	assert_int_equal(rollback(f, "t", id, r1, &d, &why),
	    CERTD_ERR_ALIAS_EXISTS);
	{
		char	want[128];

		snprintf(want, sizeof(want), "is taken by certificate %llu "
		    "of the team", (unsigned long long)other);
		assert_why(&why, "alias", want);
	}
	assert_int_equal(service_get(f->svc, "t", id)->revision, r4 + 1);

	/* deleted: no history left to roll back to, also while in flight */
	memset(&d, 0, sizeof(d));
	assert_int_equal(service_delete(f->svc, "x", "t", id, 0, on_done, &d,
	    &why), 0);
	{
		struct done	d2 = { 0 };

		assert_int_equal(service_rollback(f->svc, "x", "t", id, r2,
		    on_done, &d2, &why), CERTD_ERR_NOT_FOUND);
		wait_done(f, &d);
		assert_int_equal(d.err, 0);
		assert_int_equal(rollback(f, "t", id, r2, &d2, &why),
		    CERTD_ERR_NOT_FOUND);
		assert_int_equal(service_history(f->svc, "t", id, on_version,
		    &h), CERTD_ERR_NOT_FOUND);
	}
}

/*
 * A version is checked again as an update would be: an expired
 * certificate is refused (and counted), and so is a name that breaks a
 * rule made after the version was stored.  What it keeps of the current
 * record: the creation time.
 */
static void
test_rollback_checks(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	struct cert_meta	 meta;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 want[CERT_WHY_MAX];
	uint64_t		 id, rx, expired0;
	int64_t			 now = (int64_t)time(NULL);

	/* a version of 2020, stored when it was valid */
	memset(&meta, 0, sizeof(meta));
	assert_int_equal(cert_check(expired_crt.s, expired_crt.len,
	    expired_key.s, expired_key.len, 1590000000, &meta, NULL, 0), 0);
	id = store_next_id(f->store);
	rx = store_raw(f, raw_record(f, "t", id, "then", expired_crt.s,
	    expired_key.s, &meta));
	r = req("t", id, NULL, &ec_crt, &ec_key, NULL);
	update(f, &r);
	expired0 = service_validation_failures(f->svc, 1);
	assert_int_equal(rollback(f, "t", id, rx, &d, &why),
	    CERTD_ERR_CERT_EXPIRED);
	cert_time_why(CERTD_ERR_CERT_EXPIRED, &meta, want, sizeof(want));
	assert_why(&why, "certificate", want);
	assert_int_equal(service_validation_failures(f->svc, 1), expired0 + 1);
	cert_meta_clear(&meta);

	/* a version whose alias holds a zero-width space */
	assert_int_equal(cert_check(ec_crt.s, ec_crt.len, ec_key.s, ec_key.len,
	    now, &meta, NULL, 0), 0);
	id = store_next_id(f->store);
	rx = store_raw(f, raw_record(f, "t", id, "w\xe2\x80\x8b" "eb",
	    ec_crt.s, ec_key.s, &meta));
	r = req("t", id, "web", NULL, NULL, NULL);
	update(f, &r);
	assert_int_equal(rollback(f, "t", id, rx, &d, &why),
	    CERTD_ERR_BAD_REQUEST);
	assert_why(&why, "alias", "must not contain zero-width characters "
	    "(U+200B to U+200D, U+2060, U+FEFF)");

	/* a rollback keeps the creation time and sets its own */
	id = store_next_id(f->store);
	rx = store_raw(f, raw_record(f, "t", id, "kept", ec_crt.s, ec_key.s,
	    &meta));
	r = req("t", id, "kept2", NULL, NULL, NULL);
	update(f, &r);
	assert_int_equal(rollback(f, "t", id, rx, &d, &why), 0);
	rec = service_get(f->svc, "t", id);
	assert_string_equal(rec->alias, "kept");
	assert_int_equal(rec->created_at, 1700000000);
	assert_true(rec->updated_at >= now && rec->updated_at <= now + 5);
	cert_meta_clear(&meta);
}

/* ------------------------------------------------------------------ */
/* Delete and bindings                                                 */

/* A subscriber connection that records nothing. */
struct peer {
	int	write;
};

static int
peer_send(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	(void)frame;
	(void)len;
	return 0;
}

static size_t
peer_queued(void *ctx)
{
	(void)ctx;
	return 0;
}

static int
peer_yes(void *ctx, const char *team)
{
	(void)ctx;
	(void)team;
	return 1;
}

static int
peer_may_write(void *ctx, const char *team)
{
	(void)team;
	return ((struct peer *)ctx)->write;
}

static void
peer_drop(void *ctx, const char *why)
{
	(void)ctx;
	fail_msg("dropped: %s", why);
}

static const struct hub_conn_ops peer_ops = {
	.send = peer_send,
	.queued = peer_queued,
	.may_read = peer_yes,
	.may_key = peer_yes,
	.may_write = peer_may_write,
	.drop = peer_drop,
};

static uint64_t
watch(struct hub_conn *hc, const char *team, const uint64_t *id,
    const char *alias, const char *name)
{
	const char		*aliases[1] = { alias };
	struct hub_filter	 flt = { team, id, id != NULL ? 1 : 0,
				    alias != NULL ? aliases : NULL,
				    alias != NULL ? 1 : 0, name };
	struct hub_refusal	 why;
	uint64_t		 w, rev;

	assert_int_equal(hub_watch_add(hc, &flt, &w, &rev, &why), 0);
	return w;
}

struct subs {
	size_t		n;
	char		name[4][CERTD_WATCH_NAME_MAX + 1];
	unsigned long	uid[4];
};

static void
on_subscriber(const struct hub_subscriber *sub, void *arg)
{
	struct subs	*s = arg;

	assert_true(s->n < 4);
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", sub->name);
	s->uid[s->n++] = sub->uid;
}

/*
 * A certificate that a writer's watch names (by id or by alias) is not
 * deleted unless forced; a reader's watch, a team-wide watch and a watch
 * of another team do not bind; a binding ends with its watch.
 */
static void
test_delete_bindings(void **state)
{
	struct fixture		*f = *state;
	struct peer		 writer = { 1 }, reader = { 0 };
	struct hub_conn		*hw, *hr;
	struct service_why	 why;
	struct done		 d;
	struct subs		 s;
	uint64_t		 a, b, c, w;
	uint64_t		 rev;

	hw = hub_conn_new(f->hub, &peer_ops, &writer, 1 << 20);
	hr = hub_conn_new(f->hub, &peer_ops, &reader, 1 << 20);
	assert_non_null(hw);
	assert_non_null(hr);
	hub_conn_set_peer(hw, 5001, 42, 0);
	hub_conn_set_peer(hr, 5002, 43, 0);
	a = create(f, "t", "web", &ec_crt, &ec_key);
	b = create(f, "t", "api", &ec_crt, &ec_key);
	c = create(f, "t", "db", &ec_crt, &ec_key);

	/* a writer names a by id */
	watch(hw, "t", &a, NULL, "deployer");
	rev = service_revision(f->svc);
	memset(&why, 0x55, sizeof(why));
	assert_int_equal(del(f, "t", a, 0, &d, &why), CERTD_ERR_IN_USE);
	assert_why(&why, NULL, NULL);
	assert_non_null(service_get(f->svc, "t", a));
	assert_int_equal(service_revision(f->svc), rev);
	memset(&s, 0, sizeof(s));
	assert_int_equal(service_subscribers(f->svc, "t", a, on_subscriber,
	    &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.name[0], "deployer");
	assert_int_equal(s.uid[0], 5001);
	assert_int_equal(service_subscribers(f->svc, "t", 9999, on_subscriber,
	    &s), CERTD_ERR_NOT_FOUND);
	/* forced: deleted, and the completion has the record that was */
	assert_int_equal(del(f, "t", a, 1, &d, &why), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.id, a);
	assert_string_equal(d.alias, "web");
	assert_int_equal(d.rev_now, rev + 1);
	assert_null(service_get(f->svc, "t", a));

	/* a writer names b by alias; a reader names it by id */
	w = watch(hw, "t", NULL, "api", NULL);
	watch(hr, "t", &b, NULL, NULL);
	assert_int_equal(del(f, "t", b, 0, &d, &why), CERTD_ERR_IN_USE);
	/* the writer's watch ends: the reader's does not bind */
	assert_int_equal(hub_unwatch(hw, w), 0);
	assert_int_equal(del(f, "t", b, 0, &d, &why), 0);
	assert_int_equal(d.id, b);

	/* team-wide and other-team watches of a writer do not bind */
	watch(hw, "t", NULL, NULL, NULL);
	watch(hw, "u", &c, "db", NULL);
	assert_int_equal(del(f, "t", c, 0, &d, &why), 0);

	/* the binding follows the alias the certificate holds now */
	a = create(f, "t", "web", &ec_crt, &ec_key);
	w = watch(hw, "t", NULL, "web", NULL);
	{
		struct service_put_req	r;

		r = req("t", a, "web-old", NULL, NULL, NULL);
		update(f, &r);
	}
	assert_int_equal(del(f, "t", a, 0, &d, &why), 0);

	/* a writer that may no longer write binds nothing */
	a = create(f, "t", "web", &ec_crt, &ec_key);
	assert_int_equal(del(f, "t", a, 0, &d, &why), CERTD_ERR_IN_USE);
	writer.write = 0;
	assert_int_equal(del(f, "t", a, 0, &d, &why), 0);
	writer.write = 1;

	/* not found, also when a delete of it is in flight */
	assert_int_equal(del(f, "t", 9999, 0, &d, &why), CERTD_ERR_NOT_FOUND);
	a = create(f, "t", "gone", &ec_crt, &ec_key);
	memset(&d, 0, sizeof(d));
	assert_int_equal(service_delete(f->svc, "x", "t", a, 0, on_done, &d,
	    &why), 0);
	{
		struct done	d2 = { 0 };

		assert_int_equal(service_delete(f->svc, "x", "t", a, 1,
		    on_done, &d2, &why), CERTD_ERR_NOT_FOUND);
		wait_done(f, &d);
		assert_int_equal(d.err, 0);
		turn(f);
		assert_int_equal(d2.called, 0);
	}
	hub_conn_free(hr);
	hub_conn_free(hw);
	assert_int_equal(pos(f->store).count, 0);
}

/* Without a hub nothing is ever bound. */
static void
test_delete_without_hub(void **state)
{
	struct fixture	*f = *state;
	struct service	*svc = f->svc;
	struct service_why why;
	struct done	 d;
	uint64_t	 id = create(f, "t", "web", &ec_crt, &ec_key);
	struct peer	 writer = { 1 };
	struct hub_conn	*hw;

	hw = hub_conn_new(f->hub, &peer_ops, &writer, 1 << 20);
	watch(hw, "t", &id, NULL, NULL);
	assert_int_equal(del(f, "t", id, 0, &d, &why), CERTD_ERR_IN_USE);
	service_free(svc);
	assert_non_null(f->svc = service_new(f->base, f->store, NULL));
	assert_int_equal(del(f, "t", id, 0, &d, &why), 0);
	hub_conn_free(hw);
}

/* ------------------------------------------------------------------ */
/* Paging, the loop's end, the audit log                               */

static void
test_list(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *out[8];
	uint64_t		 ids[5];
	size_t			 total, i;
	char			 alias[8];

	for (i = 0; i < 5; i++) {
		snprintf(alias, sizeof(alias), "c%zu", i);
		ids[i] = create(f, "t", alias, &ec_crt, &ec_key);
	}
	create(f, "u", "c0", &ec_crt, &ec_key);
	assert_int_equal(service_list(f->svc, "t", 1, 2, out, &total), 2);
	assert_int_equal(total, 5);
	assert_int_equal(out[0]->id, ids[0]);
	assert_int_equal(out[1]->id, ids[1]);
	assert_int_equal(service_list(f->svc, "t", 3, 2, out, &total), 1);
	assert_int_equal(out[0]->id, ids[4]);
	assert_int_equal(service_list(f->svc, "t", 4, 2, out, &total), 0);
	assert_int_equal(total, 5);
	assert_int_equal(service_list(f->svc, "t", 1, 8, out, &total), 5);
	assert_int_equal(service_list(f->svc, "t", 0, 2, out, &total), 0);
	assert_int_equal(service_list(f->svc, "t", SIZE_MAX, 500, out, &total),
	    0);
	assert_int_equal(service_list(f->svc, "t", SIZE_MAX / 2, 3, out,
	    &total), 0);
	assert_int_equal(total, 5);
	assert_int_equal(service_list(f->svc, "none", 1, 8, out, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(service_list(f->svc, "u", 1, 8, out, &total), 1);
}

/*
 * page_size 0 once evaluated SIZE_MAX / 0 in service_list: GCC folded it
 * away in a plain build, a build with --with-sanitizer=undefined stopped
 * there.  REST and the socket refuse it first (service_page_check), and
 * service_list answers no record (the sanitizer lane runs this test too).
 */
static void
test_list_page_size_zero(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *out[1];
	size_t			 total = 0;

	create(f, "t", "web", &ec_crt, &ec_key);
	assert_int_equal(service_list(f->svc, "t", 1, 0, out, &total), 0);
	assert_int_equal(total, 1);
	assert_int_equal(service_list(f->svc, "t", 0, 0, out, &total), 0);
	assert_int_equal(service_list(f->svc, "t", 0, 10, out, &total), 0);
}

/*
 * After service_stop an update or rollback that changes nothing is
 * refused (no loop would complete it); one that changes something still
 * goes to the store.  The small wrappers answer for the store.
 */
static void
test_after_stop(void **state)
{
	struct fixture		*f = *state;
	struct service_put_req	 r;
	struct service_why	 why;
	struct done		 d;
	char			 hex[17], hex2[17];
	uint64_t		 id = create(f, "t", "web", &ec_crt, &ec_key);
	uint64_t		 rev = service_revision(f->svc);

	service_stop(f->svc);
	r = req("t", id, "web", NULL, NULL, NULL);
	assert_int_equal(put(f, &r, &d, &why), CERTD_ERR_SHUTDOWN);
	assert_int_equal(rollback(f, "t", id, rev, &d, &why),
	    CERTD_ERR_SHUTDOWN);
	r = req("t", id, "web2", NULL, NULL, NULL);
	assert_int_equal(update(f, &r), rev + 1);
	assert_int_equal(rollback(f, "t", id, rev, &d, &why), 0);
	assert_int_equal(d.rev, rev + 2);
	service_stop(f->svc);		/* twice is fine */

	assert_int_equal(service_revision(f->svc), store_revision(f->store));
	assert_int_equal(service_epoch(f->svc), pos(f->store).epoch);
	service_key_id(f->svc, 0, hex);
	store_key_id(f->store, hex2);
	assert_string_equal(hex, hex2);
	assert_int_equal(strlen(hex), 16);
	service_stop(NULL);
	service_free(NULL);
}

/* Read what fd 2 got into a file while fn ran. */
static char *
capture_stderr(void (*fn)(struct fixture *), struct fixture *f)
{
	char	 path[96], *buf;
	int	 fd, saved;
	FILE	*in;
	long	 n;

	snprintf(path, sizeof(path), "%s/stderr.log", f->dir);
	fflush(stderr);
	assert_true((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_true((saved = dup(2)) >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	fn(f);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	assert_non_null(in = fopen(path, "r"));
	fseek(in, 0, SEEK_END);
	n = ftell(in);
	rewind(in);
	assert_non_null(buf = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, in), (size_t)n);
	fclose(in);
	return buf;
}

static uint64_t	audit_id;

static void
audited(struct fixture *f)
{
	struct service_put_req	r;
	struct service_why	why;
	struct done		d;

	r = req("t", 0, "web", &ec_crt, &ec_key, "server");
	r.who = "token:ci \"x\"";
	audit_id = d.id = 0;
	if (put(f, &r, &d, &why) == 0)
		audit_id = d.id;
	put(f, &r, &d, &why);			/* refused: alias taken */
	del(f, "t", audit_id, 1, &d, &why);
}

/* One audit line per decision, quoting the client, never the key. */
static void
test_audit(void **state)
{
	struct fixture		*f = *state;
	const struct cert_record *rec;
	char			*log, want[512];
	char			 fp[CERT_FINGERPRINT_LEN + 1];
	size_t			 n = 0;
	const char		*p;

	log = capture_stderr(audited, f);
	assert_int_not_equal(audit_id, 0);
	for (p = log; (p = strstr(p, " audit ")) != NULL; p++)
		n++;
	assert_int_equal(n, 3);
	assert_null(strstr(log, "PRIVATE KEY"));
	assert_null(memmem(log, strlen(log), ec_key.s + 40, 16));
	assert_null(strstr(log, "BEGIN"));
	/* the fingerprint of the certificate, from a second create */
	{
		struct service_put_req	r;
		struct service_why	why;
		struct done		d;

		r = req("t", 0, "fp", &ec_crt, &ec_key, "x");
		assert_int_equal(put(f, &r, &d, &why), 0);
		rec = service_get(f->svc, "t", d.id);
		memcpy(fp, rec->meta.fingerprint, sizeof(fp));
	}
	snprintf(want, sizeof(want), "op=create who=\"token:ci \\\"x\\\"\" "
	    "team=t id=%llu alias=web old_fp=- new_fp=%s outcome=ok error=-",
	    (unsigned long long)audit_id, fp);
	if (strstr(log, want) == NULL)
		fail_msg("no \"%s\" in:\n%s", want, log);
	snprintf(want, sizeof(want), "op=create who=\"token:ci \\\"x\\\"\" "
	    "team=t id=0 alias=web old_fp=- new_fp=- outcome=refused "
	    "error=\"%s\"", err_msg(CERTD_ERR_ALIAS_EXISTS));
	if (strstr(log, want) == NULL)
		fail_msg("no \"%s\" in:\n%s", want, log);
	snprintf(want, sizeof(want), "op=delete-forced who=token:test team=t "
	    "id=%llu alias=web old_fp=%s new_fp=- outcome=ok error=-",
	    (unsigned long long)audit_id, fp);
	if (strstr(log, want) == NULL)
		fail_msg("no \"%s\" in:\n%s", want, log);
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_create),
		T(test_required_fields),
		T(test_field_rules),
		T(test_certificate_checks),
		T(test_precheck),
		T(test_check_order),
		T(test_merge),
		T(test_alias_conflicts),
		T(test_unchanged),
		T(test_metadata_reuse),
		T(test_rollback),
		T(test_rollback_checks),
		T(test_delete_bindings),
		T(test_delete_without_hub),
		T(test_list),
		T(test_list_page_size_zero),
		T(test_after_stop),
		T(test_audit),
#undef T
	};

	alarm(300);	/* a lost completion hangs the loop: fail instead */
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
