/* SPDX-License-Identifier: MIT */
/*
 * Certificate decisions.  A request is checked in a fixed order so that a
 * client always learns about the first thing wrong with it, as the error
 * table of the API promises: fields, then (for an update) the record's
 * existence (for a rollback, then the version's), then the certificate
 * checks in cert_check's order, then alias uniqueness.  Decisions are
 * taken against the store's head view, so two requests in flight cannot
 * both take one alias; nothing is written before every check passed.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cert.h"
#include "certd/constants.h"
#include "err.h"
#include "hub.h"
#include "log.h"
#include "pem.h"
#include "fleet.h"
#include "service.h"
#include "store.h"
#include "util.h"

/* A completion without the store: an update that changes nothing. */
struct now_item {
	char			 team[CERTD_TEAM_MAX + 1];
	uint64_t		 id;
	service_done_cb		 cb;
	void			*arg;
	STAILQ_ENTRY(now_item)	 entry;
};

struct service {
	struct event_base	*base;
	struct store		*store;
	struct hub		*hub;
	struct fleet		*fleet;		/* fleet mode: writes go there */
	uint64_t		 refused[SERVICE_REASONS];	/* by cert_check error */
	/* Updates that changed nothing, in the order they were taken. */
	STAILQ_HEAD(now_list, now_item) now;
	struct event		*ev_now;	/* active while now is not empty */
	int			 stopped;	/* service_stop ran: no loop */
};

const char *const service_reason_names[SERVICE_REASONS] = {
	"certificate_invalid", "certificate_expired", "certificate_not_yet_valid",
	"key_invalid", "key_mismatch", "chain_invalid",
};

/* Count a validation failure (cert_check's errors are consecutive). */
static int
refused(struct service *svc, int rv)
{
	int	i = CERTD_ERR_CERT_INVALID - rv;

	if (i >= 0 && i < SERVICE_REASONS)
		svc->refused[i]++;
	return rv;
}

uint64_t
service_validation_failures(const struct service *svc, int reason)
{
	return svc->refused[reason];
}

static void	now_run(struct service *);
static void	now_cb(evutil_socket_t, short, void *);

struct service *
service_new(struct event_base *base, struct store *store, struct hub *hub)
{
	struct service	*svc;

	if ((svc = calloc(1, sizeof(*svc))) == NULL)
		return NULL;
	svc->base = base;
	svc->store = store;
	svc->hub = hub;
	STAILQ_INIT(&svc->now);
	if ((svc->ev_now = event_new(base, -1, 0, now_cb, svc)) == NULL) {
		free(svc);
		return NULL;
	}
	return svc;
}

void
service_set_fleet(struct service *svc, struct fleet *fleet)
{
	svc->fleet = fleet;
}

/*
 * Submit a put of rec (owned from now on) built on base (NULL: a create):
 * to the fleet in fleet mode, else to the store, which takes the next id
 * for a create.
 */
static int
submit_put(struct service *svc, struct cert_record *rec,
    const struct cert_record *base, service_done_cb cb, void *arg)
{
	if (svc->fleet != NULL)
		return fleet_put(svc->fleet, rec, base != NULL ?
		    base->revision : 0, cb, arg);
	if (rec->id == 0)
		rec->id = store_next_id(svc->store);
	return store_put(svc->store, rec, cb, arg);
}

const char *
service_fleet_state(const struct service *svc, int64_t *since,
    uint64_t *revision)
{
	if (svc->fleet == NULL)
		return NULL;
	*revision = store_revision(svc->store);
	return fleet_state(svc->fleet, since);
}

void
service_stop(struct service *svc)
{
	if (svc == NULL)
		return;
	while (!STAILQ_EMPTY(&svc->now))
		now_run(svc);
	svc->stopped = 1;
}

void
service_free(struct service *svc)
{
	if (svc == NULL)
		return;
	service_stop(svc);
	event_free(svc->ev_now);
	free(svc);
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Why valid UTF-8 text s could make a person misread it, or NULL: it holds
 * a bidirectional control (Unicode's Bidi_Control set: U+061C, U+200E,
 * U+200F, U+202A-U+202E, U+2066-U+2069), which can show a name's characters
 * in another order than they are compared in, or a zero-width character
 * (U+200B-U+200D, U+2060, U+FEFF), with which two names that compare
 * unequal look the same.
 */
static const char *
invisible(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		uint32_t	cp;
		size_t		n;

		if (p[0] < 0x80) {
			p++;
			continue;
		}
		if ((p[0] & 0xe0) == 0xc0) {
			cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			n = 2;
		} else if ((p[0] & 0xf0) == 0xe0) {
			cp = (uint32_t)(p[0] & 0x0f) << 12 |
			    (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
			n = 3;
		} else
			n = 4;		/* all above U+FFFF are fine here */
		p += n;
		if (n == 4)
			continue;
		if (cp == 0x061c || cp == 0x200e || cp == 0x200f ||
		    (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069))
			return "must not contain bidirectional control "
			    "characters (U+061C, U+200E, U+200F, U+202A to "
			    "U+202E, U+2066 to U+2069)";
		if ((cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 ||
		    cp == 0xfeff)
			return "must not contain zero-width characters "
			    "(U+200B to U+200D, U+2060, U+FEFF)";
	}
	return NULL;
}

/*
 * Check and trim a short text field (alias, certificate_type) in place of
 * its service_field.  max is in characters.  REST and the socket both
 * come through here (service_put), so they refuse the same names.
 */
static int
check_name(struct service_field *f, const char *name, size_t max,
    struct service_why *why)
{
	size_t	i;

	while (f->len > 0 && is_space(f->s[0])) {
		f->s++;
		f->len--;
	}
	while (f->len > 0 && is_space(f->s[f->len - 1]))
		f->len--;
	why->field = name;
	if (f->len == 0) {
		why->reason = "must not be empty";
		return CERTD_ERR_BAD_REQUEST;
	}
	for (i = 0; i < f->len; i++) {
		unsigned char c = (unsigned char)f->s[i];

		/* C0, DEL, and C1 (U+0080 to U+009F: C2 80 to C2 9F) */
		if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < f->len &&
		    (unsigned char)f->s[i + 1] >= 0x80 &&
		    (unsigned char)f->s[i + 1] <= 0x9f)) {
			why->reason = "must not contain control characters";
			return CERTD_ERR_BAD_REQUEST;
		}
	}
	if (!util_utf8_valid(f->s, f->len)) {
		why->reason = "must be valid UTF-8";
		return CERTD_ERR_BAD_REQUEST;
	}
	if ((why->reason = invisible(f->s, f->len)) != NULL)
		return CERTD_ERR_BAD_REQUEST;
	if (util_utf8_len(f->s, f->len) > max) {
		snprintf(why->buf, sizeof(why->buf),
		    "must be at most %zu characters", max);
		why->reason = why->buf;
		return CERTD_ERR_BAD_REQUEST;
	}
	why->field = NULL;
	return 0;
}

/* Field rules of SPEC section 2, on a copy of the request. */
static int
check_fields(struct service_put_req *r, int create, struct service_why *why)
{
	int	rv;

	if (create) {
		why->reason = "is required";
		if ((why->field = r->alias.s == NULL ? "alias" :
		    r->private_key.s == NULL ? "private_key" :
		    r->certificate.s == NULL ? "certificate" :
		    r->cert_type.s == NULL ? "certificate_type" : NULL) != NULL)
			return CERTD_ERR_BAD_REQUEST;
		why->reason = NULL;
	}
	if (r->alias.s != NULL &&
	    (rv = check_name(&r->alias, "alias", CERTD_ALIAS_MAX, why)) != 0)
		return rv;
	if (r->cert_type.s != NULL && (rv = check_name(&r->cert_type,
	    "certificate_type", CERTD_TYPE_MAX, why)) != 0)
		return rv;
	if (r->certificate.s != NULL && r->certificate.len > CERTD_CERT_MAX) {
		why->field = "certificate";
		snprintf(why->buf, sizeof(why->buf), "must be at most %d bytes",
		    CERTD_CERT_MAX);
		why->reason = why->buf;
		return CERTD_ERR_BAD_REQUEST;
	}
	if (r->private_key.s != NULL && r->private_key.len > CERTD_KEY_MAX) {
		why->field = "private_key";
		snprintf(why->buf, sizeof(why->buf), "must be at most %d bytes",
		    CERTD_KEY_MAX);
		why->reason = why->buf;
		return CERTD_ERR_BAD_REQUEST;
	}
	return 0;
}

int
service_page_check(uint64_t page, uint64_t page_size,
    struct service_why *why)
{
	why->field = why->reason = NULL;
	if (page == 0) {
		why->field = "page";
		why->reason = "must be an integer >= 1";
		return CERTD_ERR_BAD_REQUEST;
	}
	if (page_size == 0 || page_size > CERTD_PAGE_SIZE_MAX) {
		why->field = "page_size";
		snprintf(why->buf, sizeof(why->buf),
		    "must be an integer from 1 to %d", CERTD_PAGE_SIZE_MAX);
		why->reason = why->buf;
		return CERTD_ERR_BAD_REQUEST;
	}
	return 0;
}

static int
field_equals(const struct service_field *f, const char *s, size_t len)
{
	return f->s == NULL || (f->len == len && memcmp(f->s, s, len) == 0);
}

static char *
field_dup(const struct service_field *f, const char *keep, size_t keep_len,
    size_t *lenp)
{
	const char	*s = f->s != NULL ? f->s : keep;
	size_t		 len = f->s != NULL ? f->len : keep_len;
	char		*p;

	if ((p = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return p;
}

/* No record where one was looked for: absent, or unreadable. */
static int
not_found(const struct service *svc)
{
	return store_read_failed(svc->store) ? CERTD_ERR_STORAGE :
	    CERTD_ERR_NOT_FOUND;
}

/* Is rec (of the head view) the committed record, no write pending? */
static int
committed(const struct service *svc, const struct cert_record *rec)
{
	const struct store_meta	*m = store_meta_get(svc->store, rec->team,
				    rec->id);

	return m != NULL && m->revision == rec->revision;
}

/* Complete every update that changed nothing, in order. */
static void
now_run(struct service *svc)
{
	struct now_list		 due = STAILQ_HEAD_INITIALIZER(due);
	struct now_item		*n;
	const struct cert_record *rec;

	/* Those a callback adds wait for the next turn. */
	STAILQ_CONCAT(&due, &svc->now);
	while ((n = STAILQ_FIRST(&due)) != NULL) {
		STAILQ_REMOVE_HEAD(&due, entry);
		rec = store_get(svc->store, n->team, n->id);
		n->cb(rec != NULL ? 0 : not_found(svc), rec, n->arg);
		free(n);
	}
}

static void
now_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	now_run(arg);
}

/*
 * Complete an update that changes nothing, later, from the loop (or from
 * service_stop, when the loop has stopped turning).  After service_stop
 * nothing would run it: refused with CERTD_ERR_SHUTDOWN.
 */
static int
complete_unchanged(struct service *svc, const struct cert_record *cur,
    service_done_cb cb, void *arg)
{
	struct now_item	*n;

	if (svc->stopped)
		return CERTD_ERR_SHUTDOWN;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return CERTD_ERR_NOMEM;
	snprintf(n->team, sizeof(n->team), "%s", cur->team);
	n->id = cur->id;
	n->cb = cb;
	n->arg = arg;
	if (STAILQ_EMPTY(&svc->now))
		event_active(svc->ev_now, EV_TIMEOUT, 0);
	STAILQ_INSERT_TAIL(&svc->now, n, entry);
	return 0;
}

/* Equal bytes, in time that does not depend on where they differ. */
static int
same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char	d = 0;
	size_t		i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* 412, naming the certificate of the team that holds the alias. */
static int
alias_taken(uint64_t owner, struct service_why *why)
{
	snprintf(why->buf, sizeof(why->buf), "is taken by certificate %llu "
	    "of the team", (unsigned long long)owner);
	why->field = "alias";
	why->reason = why->buf;
	return CERTD_ERR_ALIAS_EXISTS;
}

/*
 * The normal forms (pem_normalize) of a request's certificate and
 * key, which are what is compared, checked and stored.
 */
struct put_pem {
	char	*cert;		/* NULL: absent, or normal already */
	size_t	 cert_len;
	char	*key;		/* likewise; wiped when freed */
	size_t	 key_len;
	int	 key_err;	/* the key's blocks did not read: see normalize */
	char	 key_why[SERVICE_WHY_MAX];
};

static void
put_pem_clear(struct put_pem *pem)
{
	free(pem->cert);
	if (pem->key != NULL) {
		util_wipe(pem->key, pem->key_len);
		free(pem->key);
	}
	pem->cert = pem->key = NULL;
}

/*
 * Point r's certificate and key at their normal forms in *pem.  A
 * certificate whose blocks do not read is refused here (it is the first
 * certificate check); a key that does not is left as it came, for
 * cert_check to refuse in the order of the error table, after the
 * certificate's dates.
 */
static int
normalize(struct service_put_req *r, struct put_pem *pem,
    struct service_why *why)
{
	int	rv;

	if (r->certificate.s != NULL) {
		if ((rv = pem_normalize(r->certificate.s,
		    r->certificate.len, PEM_CHAIN, &pem->cert, &pem->cert_len,
		    why->buf, sizeof(why->buf))) != 0) {
			if (rv != CERTD_ERR_NOMEM) {
				why->field = "certificate";
				why->reason = why->buf;
			}
			return rv;
		}
		if (pem->cert != NULL) {
			r->certificate.s = pem->cert;
			r->certificate.len = pem->cert_len;
		}
	}
	if (r->private_key.s != NULL) {
		rv = pem_normalize(r->private_key.s, r->private_key.len,
		    PEM_KEY, &pem->key, &pem->key_len, pem->key_why,
		    sizeof(pem->key_why));
		if (rv == CERTD_ERR_NOMEM)
			return rv;
		pem->key_err = rv;
		if (pem->key != NULL) {
			r->private_key.s = pem->key;
			r->private_key.len = pem->key_len;
		}
	}
	return 0;
}

/* The field a certificate check's error blames. */
static void
check_failed(int rv, struct service_why *why)
{
	if (rv == 0 || rv == CERTD_ERR_NOMEM)
		return;
	why->field = rv == CERTD_ERR_KEY_INVALID ||
	    rv == CERTD_ERR_KEY_MISMATCH ? "private_key" : "certificate";
	why->reason = why->buf;
}

/*
 * Metadata checked before, and the leaf's validity window now, as
 * cert_check orders it: a copy of known into *meta, or the time error.
 */
static int
still_valid(const struct cert_meta *known, int64_t now,
    struct cert_meta *meta, struct service_why *why)
{
	int	rv;

	rv = known->not_after < now ? CERTD_ERR_CERT_EXPIRED :
	    known->not_before > now ? CERTD_ERR_CERT_NOT_YET : 0;
	if (rv != 0)
		cert_time_why(rv, known, why->buf, sizeof(why->buf));
	else
		rv = cert_meta_copy(meta, known);
	check_failed(rv, why);
	return rv;
}

/*
 * Validate the certificate and key an update leaves in place.  When both
 * are byte for byte the ones of the head record, which passed cert_check
 * when they were stored, cert_check would reach the same verdict but for
 * the clock: their metadata is reused and only the validity window is
 * checked again.  Anything else is checked whole.
 */
static int
validate(const struct cert_record *base, const struct service_put_req *r,
    int64_t now, const struct put_pem *pem, struct cert_meta *meta,
    struct service_why *why)
{
	const char	*cert = r->certificate.s, *key = r->private_key.s;
	size_t		 cert_len = r->certificate.len, key_len = r->private_key.len;
	int		 rv;

	if (base != NULL && (cert == NULL || same_secret(cert, cert_len,
	    base->certificate, base->certificate_len)) &&
	    (key == NULL || same_secret(key, key_len, base->private_key,
	    base->private_key_len)))
		return still_valid(&base->meta, now, meta, why);
	rv = cert_check(cert != NULL ? cert : base->certificate,
	    cert != NULL ? cert_len : base->certificate_len,
	    key != NULL ? key : base->private_key,
	    key != NULL ? key_len : base->private_key_len, now, meta,
	    why->buf, sizeof(why->buf));
	if (rv == 0 && pem->key_err != 0) {
		/* Read as it came, but its normal form is not storable. */
		cert_meta_clear(meta);
		snprintf(why->buf, sizeof(why->buf), "%s", pem->key_why);
		rv = pem->key_err;
	}
	check_failed(rv, why);
	return rv;
}

/* --- the certificate check, off the loop ------------------------------- */

struct service_pair {
	char			*cert;
	size_t			 cert_len;
	char			*key;		/* wiped when freed */
	size_t			 key_len;
};

struct service_pair *
service_pair_copy(struct service *svc, const char *team, uint64_t id)
{
	const struct cert_record	*rec;
	struct service_pair		*p;

	if ((rec = store_head_get(svc->store, team, id)) == NULL ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->cert = malloc(rec->certificate_len)) == NULL ||
	    (p->key = malloc(rec->private_key_len)) == NULL) {
		service_pair_free(p);
		return NULL;
	}
	memcpy(p->cert, rec->certificate, rec->certificate_len);
	p->cert_len = rec->certificate_len;
	memcpy(p->key, rec->private_key, rec->private_key_len);
	p->key_len = rec->private_key_len;
	return p;
}

void
service_pair_free(struct service_pair *p)
{
	if (p == NULL)
		return;
	if (p->key != NULL)
		util_wipe(p->key, p->key_len);
	free(p->key);
	free(p->cert);
	free(p);
}

struct service_precheck {
	int			 unchanged;	/* the stored bytes: no check */
	const char		*cert;		/* the bytes it was made for */
	size_t			 cert_len;
	const char		*key;
	size_t			 key_len;
	struct put_pem		 pem;		/* their normal forms */
	int			 norm_rv;	/* normalize's verdict */
	int			 rv;		/* then validate's */
	struct cert_meta	 meta;
	struct service_why	 why;
};

struct service_precheck *
service_precheck(const struct service_put_req *req,
    const struct service_pair *stored)
{
	struct service_precheck	*pc;
	struct service_put_req	 r = *req;

	if (r.certificate.s == NULL || r.private_key.s == NULL ||
	    (pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	pc->cert = r.certificate.s;
	pc->cert_len = r.certificate.len;
	pc->key = r.private_key.s;
	pc->key_len = r.private_key.len;
	pc->norm_rv = normalize(&r, &pc->pem, &pc->why);
	if (pc->norm_rv == 0 && stored != NULL &&
	    same_secret(r.certificate.s, r.certificate.len, stored->cert,
	    stored->cert_len) && same_secret(r.private_key.s,
	    r.private_key.len, stored->key, stored->key_len))
		pc->unchanged = 1;
	else if (pc->norm_rv == 0)
		pc->rv = validate(NULL, &r, (int64_t)time(NULL), &pc->pem,
		    &pc->meta, &pc->why);
	if (pc->norm_rv == CERTD_ERR_NOMEM || pc->rv == CERTD_ERR_NOMEM) {
		service_precheck_free(pc);
		return NULL;
	}
	return pc;
}

void
service_precheck_free(struct service_precheck *pc)
{
	if (pc == NULL)
		return;
	put_pem_clear(&pc->pem);
	cert_meta_clear(&pc->meta);
	free(pc);
}

/* A verdict of pc into why, whose reason may point into its own buf. */
static int
pc_refuse(const struct service_precheck *pc, int rv, struct service_why *why)
{
	memcpy(why->buf, pc->why.buf, sizeof(why->buf));
	why->field = pc->why.field;
	why->reason = pc->why.reason == pc->why.buf ? why->buf :
	    pc->why.reason;
	return rv;
}

/*
 * The certificate and key of r into their normal forms (in *pem, or pc's)
 * and checked: from r->pre when it was made for these bytes, else here.
 */
static int
prepare(const struct cert_record *base, struct service_put_req *r,
    int64_t now, struct put_pem *pem, struct cert_meta *meta,
    struct service_why *why)
{
	const struct service_precheck	*pc = r->pre;
	int				 rv;

	if (pc == NULL || pc->cert != r->certificate.s ||
	    pc->cert_len != r->certificate.len || pc->key != r->private_key.s ||
	    pc->key_len != r->private_key.len) {
		if ((rv = normalize(r, pem, why)) != 0)
			return rv;
		return validate(base, r, now, pem, meta, why);
	}
	if (pc->norm_rv != 0)
		return pc_refuse(pc, pc->norm_rv, why);
	if (pc->pem.cert != NULL) {
		r->certificate.s = pc->pem.cert;
		r->certificate.len = pc->pem.cert_len;
	}
	if (pc->pem.key != NULL) {
		r->private_key.s = pc->pem.key;
		r->private_key.len = pc->pem.key_len;
	}
	if (pc->unchanged)	/* the stored bytes when it was received */
		return validate(base, r, now, &pc->pem, meta, why);
	if (pc->rv != 0)
		return pc_refuse(pc, pc->rv, why);
	return still_valid(&pc->meta, now, meta, why);
}

static int
do_put(struct service *svc, const struct service_put_req *req,
    service_done_cb cb, void *arg, struct service_why *why)
{
	struct service_put_req	 r = *req;
	const struct cert_record *base = NULL;
	struct cert_record	*rec = NULL;
	struct cert_meta	 meta;
	struct put_pem		 pem;
	int64_t			 now = (int64_t)time(NULL);
	uint64_t		 owner;
	char			*alias = NULL;
	int			 rv;

	memset(&meta, 0, sizeof(meta));
	memset(&pem, 0, sizeof(pem));
	why->field = why->reason = NULL;
	if ((rv = check_fields(&r, r.id == 0, why)) != 0)
		return rv;
	if (r.id != 0 &&
	    (base = store_head_get(svc->store, r.team, r.id)) == NULL)
		return not_found(svc);

	if ((rv = prepare(base, &r, now, &pem, &meta, why)) != 0) {
		refused(svc, rv);
		goto out;
	}

	if ((alias = field_dup(&r.alias, base ? base->alias : NULL,
	    base ? strlen(base->alias) : 0, NULL)) == NULL) {
		rv = CERTD_ERR_NOMEM;
		goto out;
	}
	owner = store_head_alias(svc->store, r.team, alias);
	if (owner != 0 && owner != r.id) {
		rv = alias_taken(owner, why);
		goto out;
	}

	if (base != NULL && committed(svc, base) &&
	    field_equals(&r.alias, base->alias, strlen(base->alias)) &&
	    field_equals(&r.cert_type, base->cert_type,
	    strlen(base->cert_type)) &&
	    field_equals(&r.certificate, base->certificate,
	    base->certificate_len) &&
	    field_equals(&r.private_key, base->private_key,
	    base->private_key_len)) {
		rv = complete_unchanged(svc, base, cb, arg);
		goto out;
	}

	if ((rec = record_new()) == NULL) {
		rv = CERTD_ERR_NOMEM;
		goto out;
	}
	rec->alias = alias;
	alias = NULL;
	rec->team = strdup(r.team);
	rec->cert_type = field_dup(&r.cert_type,
	    base ? base->cert_type : NULL,
	    base ? strlen(base->cert_type) : 0, NULL);
	rec->certificate = field_dup(&r.certificate,
	    base ? base->certificate : NULL,
	    base ? base->certificate_len : 0, &rec->certificate_len);
	rec->private_key = field_dup(&r.private_key,
	    base ? base->private_key : NULL,
	    base ? base->private_key_len : 0, &rec->private_key_len);
	if (rec->team == NULL || rec->cert_type == NULL ||
	    rec->certificate == NULL || rec->private_key == NULL) {
		rv = CERTD_ERR_NOMEM;
		goto out;
	}
	rec->meta = meta;
	memset(&meta, 0, sizeof(meta));
	rec->created_at = base != NULL ? base->created_at : now;
	rec->updated_at = now;
	rec->id = base != NULL ? base->id : 0;	/* 0: submit_put's to take */

	rv = submit_put(svc, rec, base, cb, arg);
	rec = NULL;	/* the store owns it, also on failure */
out:
	record_free(rec);
	free(alias);
	cert_meta_clear(&meta);
	put_pem_clear(&pem);
	return rv;
}

static int
do_delete(struct service *svc, const char *team, uint64_t id, int force,
    service_done_cb cb, void *arg, struct service_why *why)
{
	const struct store_meta	*rec;

	why->field = why->reason = NULL;
	if ((rec = store_head_meta(svc->store, team, id)) == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (!force && svc->hub != NULL &&
	    hub_is_bound(svc->hub, team, id, rec->alias))
		return CERTD_ERR_IN_USE;
	if (svc->fleet != NULL)
		return fleet_delete(svc->fleet, team, id, rec->alias,
		    rec->revision, cb, arg);
	return store_delete(svc->store, team, id, cb, arg);
}

static int
same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* A new record of team holding the content of version v of cur. */
static struct cert_record *
rollback_record(const struct cert_record *cur, const struct cert_record *v,
    struct cert_meta *meta, int64_t now)
{
	struct cert_record	*rec;

	if ((rec = record_dup(v)) == NULL)
		return NULL;
	cert_meta_clear(&rec->meta);
	rec->meta = *meta;		/* as checked now */
	memset(meta, 0, sizeof(*meta));
	rec->id = cur->id;
	rec->revision = 0;
	rec->created_at = cur->created_at;
	rec->updated_at = now;
	return rec;
}

/* The alias and type of a kept version, by the rules of check_name. */
static int
check_version_names(const struct cert_record *v, struct service_why *why)
{
	struct service_field	alias = { v->alias, strlen(v->alias) };
	struct service_field	type = { v->cert_type, strlen(v->cert_type) };
	int			rv;

	if ((rv = check_name(&alias, "alias", CERTD_ALIAS_MAX, why)) != 0)
		return rv;
	return check_name(&type, "certificate_type", CERTD_TYPE_MAX, why);
}

static int
do_rollback(struct service *svc, const char *team, uint64_t id,
    uint64_t revision, service_done_cb cb, void *arg, struct service_why *why)
{
	const struct cert_record *base;
	struct cert_record	*old = NULL, *rec = NULL;
	struct cert_meta	 meta;
	int64_t			 now = (int64_t)time(NULL);
	uint64_t		 owner;
	int			 rv;

	memset(&meta, 0, sizeof(meta));
	why->field = why->reason = NULL;
	if ((base = store_head_get(svc->store, team, id)) == NULL)
		return not_found(svc);
	if ((rv = store_history_get(svc->store, team, id, revision, &old))
	    != 0) {
		if (rv != CERTD_ERR_NOT_FOUND)
			return rv;
		why->field = "revision";
		why->reason = "is not in the certificate's history";
		return CERTD_ERR_NO_REVISION;
	}
	/*
	 * A version is validated again, now, as any update would be: its
	 * names too (a version stored before a rule existed may break it).
	 */
	if ((rv = check_version_names(old, why)) != 0)
		goto out;
	rv = cert_check(old->certificate, old->certificate_len,
	    old->private_key, old->private_key_len, now, &meta, why->buf,
	    sizeof(why->buf));
	if (rv != 0) {
		check_failed(rv, why);
		refused(svc, rv);
		goto out;
	}
	owner = store_head_alias(svc->store, team, old->alias);
	if (owner != 0 && owner != id) {
		rv = alias_taken(owner, why);
		goto out;
	}
	if (committed(svc, base) &&
	    strcmp(old->alias, base->alias) == 0 &&
	    strcmp(old->cert_type, base->cert_type) == 0 &&
	    same_bytes(old->certificate, old->certificate_len,
	    base->certificate, base->certificate_len) &&
	    same_bytes(old->private_key, old->private_key_len,
	    base->private_key, base->private_key_len)) {
		rv = complete_unchanged(svc, base, cb, arg);
		goto out;
	}
	if ((rec = rollback_record(base, old, &meta, now)) == NULL) {
		rv = CERTD_ERR_NOMEM;
		goto out;
	}
	rv = submit_put(svc, rec, base, cb, arg);
out:
	record_free(old);
	cert_meta_clear(&meta);
	return rv;
}

int
service_history(struct service *svc, const char *team, uint64_t id,
    int (*cb)(const struct cert_record *rec, void *arg), void *arg)
{
	return store_history(svc->store, team, id, cb, arg);
}

const struct cert_record *
service_get(struct service *svc, const char *team, uint64_t id)
{
	return store_get(svc->store, team, id);
}

int
service_read_failed(const struct service *svc)
{
	return store_read_failed(svc->store);
}

const struct cert_record *
service_get_alias(struct service *svc, const char *team, const char *alias)
{
	return store_get_alias(svc->store, team, alias);
}

int
service_subscribers(struct service *svc, const char *team, uint64_t id,
    void (*cb)(const struct hub_subscriber *sub, void *arg), void *arg)
{
	const struct store_meta	*rec = store_meta_get(svc->store, team, id);

	if (rec == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (svc->hub != NULL)
		hub_subscribers(svc->hub, team, id, rec->alias, cb, arg);
	if (svc->fleet != NULL)
		fleet_subscribers(svc->fleet, team, id, rec->alias, cb, arg);
	return 0;
}

/* --- audit ------------------------------------------------------------ */

/*
 * An audited mutation: who asked for what on which certificate, and how it
 * ended.  Wraps the caller's completion so the outcome is logged once the
 * store has answered.  Never holds key material.
 */
struct audit {
	service_done_cb	 cb;
	void		*arg;
	const char	*op;
	char		 who[SERVICE_WHO_MAX + 1];
	char		 team[CERTD_TEAM_MAX + 1];
	uint64_t	 id;
	char		 alias[CERTD_ALIAS_MAX * 4 + 1];
	char		 old_fp[CERT_FINGERPRINT_LEN + 1];
};

static struct audit *
audit_new(struct service *svc, const char *op, const char *who,
    const char *team, uint64_t id, service_done_cb cb, void *arg)
{
	struct audit			*a;
	const struct store_meta		*cur;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cb = cb;
	a->arg = arg;
	a->op = op;
	snprintf(a->who, sizeof(a->who), "%s", who != NULL ? who : "?");
	snprintf(a->team, sizeof(a->team), "%s", team != NULL ? team : "-");
	a->id = id;
	if (team != NULL && id != 0 &&
	    (cur = store_head_meta(svc->store, team, id)) != NULL) {
		snprintf(a->alias, sizeof(a->alias), "%s", cur->alias);
		snprintf(a->old_fp, sizeof(a->old_fp), "%s", cur->fingerprint);
	}
	return a;
}

/* One audit line; outcome "ok", "refused" (never written) or "failed". */
static void
audit_log(const struct audit *a, const struct cert_record *rec, int err,
    const char *outcome)
{
	char		 qwho[4 * SERVICE_WHO_MAX + 3], qalias[600], qerr[200];
	const char	*alias = rec != NULL && rec->alias != NULL ? rec->alias :
			    a->alias;
	int		 gone = strncmp(a->op, "delete", 6) == 0 || rec == NULL;

	log_audit("op=%s who=%s team=%s id=%llu alias=%s old_fp=%s new_fp=%s "
	    "outcome=%s error=%s", a->op, log_quote(a->who, qwho, sizeof(qwho)),
	    a->team, (unsigned long long)(rec != NULL ? rec->id : a->id),
	    alias[0] != '\0' ? log_quote(alias, qalias, sizeof(qalias)) : "-",
	    a->old_fp[0] != '\0' ? a->old_fp : "-",
	    gone ? "-" : rec->meta.fingerprint, outcome,
	    err == 0 ? "-" : log_quote(err_msg(err), qerr, sizeof(qerr)));
}

static void
audit_done(int err, const struct cert_record *rec, void *arg)
{
	struct audit	*a = arg;

	audit_log(a, rec, err, err == 0 ? "ok" : "failed");
	a->cb(err, rec, a->arg);
	free(a);
}

/* After the synchronous part: log and drop a refused request. */
static int
audit_refused(struct audit *a, int rv)
{
	if (rv != 0) {
		audit_log(a, NULL, rv, "refused");
		free(a);
	}
	return rv;
}

int
service_put(struct service *svc, const struct service_put_req *req,
    service_done_cb cb, void *arg, struct service_why *why)
{
	struct audit	*a;

	why->field = why->reason = NULL;
	if ((a = audit_new(svc, req->id == 0 ? "create" : "update", req->who,
	    req->team, req->id, cb, arg)) == NULL)
		return CERTD_ERR_NOMEM;
	if (req->id == 0 && req->alias.s != NULL)
		snprintf(a->alias, sizeof(a->alias), "%.*s",
		    (int)(req->alias.len < sizeof(a->alias) - 1 ?
		    req->alias.len : sizeof(a->alias) - 1), req->alias.s);
	return audit_refused(a, do_put(svc, req, audit_done, a, why));
}

int
service_delete(struct service *svc, const char *who, const char *team,
    uint64_t id, int force, service_done_cb cb, void *arg,
    struct service_why *why)
{
	struct audit	*a;

	why->field = why->reason = NULL;
	if ((a = audit_new(svc, force ? "delete-forced" : "delete", who, team,
	    id, cb, arg)) == NULL)
		return CERTD_ERR_NOMEM;
	return audit_refused(a, do_delete(svc, team, id, force, audit_done, a,
	    why));
}

int
service_rollback(struct service *svc, const char *who, const char *team,
    uint64_t id, uint64_t revision, service_done_cb cb, void *arg,
    struct service_why *why)
{
	struct audit	*a;

	why->field = why->reason = NULL;
	if ((a = audit_new(svc, "rollback", who, team, id, cb, arg)) == NULL)
		return CERTD_ERR_NOMEM;
	return audit_refused(a, do_rollback(svc, team, id, revision,
	    audit_done, a, why));
}

int
service_rekey(struct service *svc, const char *who, service_done_cb cb,
    void *arg)
{
	struct audit	*a;

	if ((a = audit_new(svc, "rekey", who, NULL, 0, cb, arg)) == NULL)
		return CERTD_ERR_NOMEM;
	return audit_refused(a, store_rekey(svc->store, audit_done, a));
}

const char *
service_rekey_why(struct service *svc, int fleet)
{
	if (fleet)
		return svc->fleet != NULL ? fleet_rekey_why(svc->fleet) :
		    "certd runs in single-host mode (no --etcd)";
	return store_rekey_why(svc->store);
}

void
service_key_id(struct service *svc, int fleet, char hex[17])
{
	if (fleet && svc->fleet != NULL)
		snprintf(hex, 17, "%s", fleet_key_id(svc->fleet));
	else
		store_key_id(svc->store, hex);
}

int
service_fleet_rekey(struct service *svc, const char *who,
    service_done_cb cb, void *arg)
{
	struct audit	*a;

	if (svc->fleet == NULL)
		return CERTD_ERR_BAD_REQUEST;
	if ((a = audit_new(svc, "rekey-fleet", who, NULL, 0, cb, arg)) ==
	    NULL)
		return CERTD_ERR_NOMEM;
	return audit_refused(a, fleet_rekey(svc->fleet, audit_done, a));
}

int
service_backup(struct service *svc, const char *dir, char *errbuf,
    size_t errlen)
{
	return store_backup(svc->store, dir, errbuf, errlen);
}

uint64_t
service_revision(struct service *svc)
{
	return store_revision(svc->store);
}

uint64_t
service_epoch(struct service *svc)
{
	struct store_pos	pos;

	store_get_pos(svc->store, &pos);
	return pos.epoch;
}

size_t
service_list(struct service *svc, const char *team, size_t page,
    size_t page_size, const struct cert_record **out, size_t *total)
{
	size_t	offset = SIZE_MAX;

	/* Past the end for a page service_page_check refuses, never a
	 * division by zero. */
	if (page >= 1 && page_size > 0 && page - 1 <= SIZE_MAX / page_size)
		offset = (page - 1) * page_size;
	return store_list(svc->store, team, offset, page_size, out, total);
}
