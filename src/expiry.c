/* SPDX-License-Identifier: MIT */
/*
 * Expiry warnings.  The scan walks the committed records; for each it counts
 * the thresholds its remaining validity has crossed and warns when that
 * count grew since the last warning for the same version of the record (an
 * update, with a new notAfter, starts over).  Every committed write is
 * checked the same way at once (expiry_changed), so a certificate stored
 * inside a threshold is warned about on that write, not at the next scan.
 * What was warned is kept in an array sorted by id, rebuilt by every scan
 * and kept current by the writes: the scan runs rarely (hourly by default)
 * and is linear in the number of certificates.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "expiry.h"
#include "hub.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define DAY	86400

/* The warnings given for one certificate version. */
struct expiry_seen {
	uint64_t	id;
	uint64_t	revision;
	unsigned	level;		/* thresholds crossed and warned */
};

struct expiry {
	struct event_base	*base;
	struct store		*store;
	struct hub		*hub;
	unsigned		 days[CERTD_EXPIRY_THRESHOLDS_MAX];	/* largest first */
	size_t			 n_days;
	unsigned		 interval;
	struct event		*ev;
	struct expiry_seen	*seen;		/* sorted by id */
	size_t			 n_seen;
	size_t			 soon;
};

/* One scan in progress. */
struct expiry_scan {
	struct expiry		*ex;
	int64_t			 now;
	struct expiry_seen	*next;
	size_t			 n;
	size_t			 cap;
	size_t			 soon;
};

static int
by_id(const void *a, const void *b)
{
	const struct expiry_seen *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static unsigned
crossed(const struct expiry *ex, int64_t left)
{
	unsigned	n = 0;
	size_t		i;

	for (i = 0; i < ex->n_days; i++)
		if (left < (int64_t)ex->days[i] * DAY)
			n++;
	return n;
}

/* Log the warning for rec (level thresholds crossed); tell its watchers. */
static void
warn_expiring(struct expiry *ex, const struct cert_record *rec, int64_t left,
    unsigned level)
{
	char	when[24], q[300];

	util_time_iso(rec->meta.not_after, 1, when);
	log_warn("certificate expiring team=%s id=%llu alias=%s "
	    "not_after=%s days_left=%lld threshold_days=%u", rec->team,
	    (unsigned long long)rec->id, log_quote(rec->alias, q, sizeof(q)),
	    when, (long long)(left >= 0 ? left / DAY : -1 - (-left - 1) / DAY),
	    ex->days[level - 1]);
	hub_expiring(ex->hub, rec);
}

static struct expiry_seen *
seen_find(const struct expiry *ex, uint64_t id)
{
	struct expiry_seen	key;

	key.id = id;
	return ex->n_seen > 0 ? bsearch(&key, ex->seen, ex->n_seen,
	    sizeof(*ex->seen), by_id) : NULL;
}

static int
scan_one(const struct store_meta *m, void *arg)
{
	struct expiry_scan	*sc = arg;
	struct expiry		*ex = sc->ex;
	struct expiry_seen	*prev, *v;
	struct cert_record	 rec;
	int64_t			 left = m->not_after - sc->now;
	unsigned		 level = crossed(ex, left), before = 0;

	if (level == 0)
		return 0;
	if (level == ex->n_days)
		sc->soon++;
	prev = seen_find(ex, m->id);
	if (prev != NULL && prev->revision == m->revision)
		before = prev->level;
	if (level > before) {
		store_meta_record(m, &rec);
		warn_expiring(ex, &rec, left, level);
	}
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;

		if ((v = realloc(sc->next, cap * sizeof(*v))) == NULL)
			return 0;	/* warned again next scan: harmless */
		sc->next = v;
		sc->cap = cap;
	}
	sc->next[sc->n].id = m->id;
	sc->next[sc->n].revision = m->revision;
	sc->next[sc->n].level = level > before ? level : before;
	sc->n++;
	return 0;
}

static void
scan(evutil_socket_t fd, short what, void *arg)
{
	struct expiry		*ex = arg;
	struct expiry_scan	 sc;
	struct timeval		 tv = { ex->interval, 0 };

	(void)fd;
	(void)what;
	memset(&sc, 0, sizeof(sc));
	sc.ex = ex;
	sc.now = (int64_t)time(NULL);
	if (ex->n_days > 0)
		store_foreach(ex->store, NULL, scan_one, &sc);
	if (sc.n > 1)
		qsort(sc.next, sc.n, sizeof(*sc.next), by_id);
	free(ex->seen);
	ex->seen = sc.next;
	ex->n_seen = sc.n;
	ex->soon = sc.soon;
	evtimer_add(ex->ev, &tv);
}

static int
desc(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x > y ? -1 : x < y;
}

void
expiry_configure(struct expiry *ex, const unsigned *days, size_t n_days,
    unsigned interval)
{
	struct timeval	tv = { interval, 0 };

	if (n_days > CERTD_EXPIRY_THRESHOLDS_MAX)
		n_days = CERTD_EXPIRY_THRESHOLDS_MAX;
	memcpy(ex->days, days, n_days * sizeof(*days));
	ex->n_days = n_days;
	qsort(ex->days, ex->n_days, sizeof(*ex->days), desc);
	if (interval != ex->interval) {
		ex->interval = interval;
		evtimer_add(ex->ev, &tv);
	}
}

struct expiry *
expiry_new(struct event_base *base, struct store *store, struct hub *hub,
    const unsigned *days, size_t n_days, unsigned interval)
{
	struct expiry	*ex;
	struct timeval	 now = { 0, 0 };

	if ((ex = calloc(1, sizeof(*ex))) == NULL)
		return NULL;
	ex->base = base;
	ex->store = store;
	ex->hub = hub;
	if ((ex->ev = evtimer_new(base, scan, ex)) == NULL) {
		free(ex);
		return NULL;
	}
	ex->interval = interval;
	expiry_configure(ex, days, n_days, interval);
	evtimer_add(ex->ev, &now);	/* first scan as soon as the loop runs */
	return ex;
}

void
expiry_free(struct expiry *ex)
{
	if (ex == NULL)
		return;
	event_free(ex->ev);
	free(ex->seen);
	free(ex);
}

/* Forget what was warned for id (deleted, or out of every threshold). */
static void
seen_remove(struct expiry *ex, uint64_t id)
{
	struct expiry_seen	*e = seen_find(ex, id);
	size_t			 i;

	if (e == NULL)
		return;
	i = (size_t)(e - ex->seen);
	memmove(e, e + 1, (ex->n_seen - i - 1) * sizeof(*e));
	ex->n_seen--;
}

/*
 * Note that rec was warned at level.  On allocation failure the next scan
 * warns again, which is harmless.
 */
static void
seen_set(struct expiry *ex, const struct cert_record *rec, unsigned level)
{
	struct expiry_seen	*e = seen_find(ex, rec->id), *v;
	size_t			 i;

	if (e == NULL) {
		if ((v = realloc(ex->seen, (ex->n_seen + 1) * sizeof(*v))) ==
		    NULL)
			return;
		ex->seen = v;
		for (i = ex->n_seen; i > 0 && v[i - 1].id > rec->id; i--)
			;
		memmove(&v[i + 1], &v[i], (ex->n_seen - i) * sizeof(*v));
		ex->n_seen++;
		e = &v[i];
		e->id = rec->id;
	}
	e->revision = rec->revision;
	e->level = level;
}

void
expiry_changed(struct expiry *ex, const struct store_change *ch)
{
	const struct cert_record	*rec = ch->rec;
	const struct expiry_seen	*prev;
	int64_t				 left;
	unsigned			 level;

	if (ch->kind == STORE_DELETE || rec == NULL) {
		if (ch->old != NULL)
			seen_remove(ex, ch->old->id);
		return;
	}
	left = rec->meta.not_after - (int64_t)time(NULL);
	if ((level = crossed(ex, left)) == 0) {
		seen_remove(ex, rec->id);	/* renewed */
		return;
	}
	prev = seen_find(ex, rec->id);
	if (prev != NULL && prev->revision == rec->revision &&
	    prev->level >= level)
		return;
	warn_expiring(ex, rec, left, level);
	seen_set(ex, rec, level);
}

const unsigned *
expiry_days(const struct expiry *ex, size_t *n)
{
	*n = ex->n_days;
	return ex->days;
}

size_t
expiry_count(const struct expiry *ex)
{
	return ex->soon;
}
