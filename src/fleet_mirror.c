/* SPDX-License-Identifier: MIT */
/*
 * The mirror (doc/fleet.md): this host's store kept in step with the
 * fleet's records in etcd, P/r/<id>.  One watch on P/r/ from the store's
 * revision + 1 applies each event as the store's own write at the event's
 * revision (store_put_at, store_delete_at), so revisions mean the same
 * change on every host and the store's change callback pushes it to this
 * host's subscribers as a local write would be.  An event the store
 * already has (its revision is not above the store's) is skipped: a watch
 * started again replays from where the store is.
 *
 * When etcd has compacted past the store's revision (the watch ends with
 * CERTD_ERR_NO_REVISION), a full sync reads the fleet at one revision R:
 * the keys of the versions (P/h/, then P/r/ for records written before
 * there was P/h/) and their mod_revisions, page by page, then the versions
 * the store lacks, oldest first, each put at its own revision, so that the
 * store's history has them too (a P/r/ key is the newest P/h/ one's
 * version, at the same revision: skipped as already there); what the store
 * holds and the fleet no longer does is deleted at R (or the store's
 * revision, if that is later), and the change log up to there is given
 * up, so that a watcher resuming from before gets resync.  The watch then
 * goes on from R + 1.
 *
 * "Up" is when the store has applied the newest record revision etcd had
 * when the mirror started (target), read before the watch starts.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "certd/constants.h"
#include "err.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_int.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "util.h"

#define FLEET_SYNC_PAGE		500	/* keys a full sync reads at a time */
#define FLEET_ID_HEX		16

static void	fleet_watch_begin(struct fleet *f, uint64_t from);
static void	fleet_sync_begin(struct fleet *f);
static void	fleet_quick_check(struct fleet *f);

/* 16 lowercase hex digits at p into *out; -1 if they are not. */
static int
fleet_hex16(const unsigned char *p, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	for (i = 0; i < FLEET_ID_HEX; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			v = v << 4 | (uint64_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v = v << 4 | (uint64_t)(p[i] - 'a' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* The id of a record key (P/r/ and 16 hex digits), or 0. */
static uint64_t
fleet_record_id(const struct fleet *f, const unsigned char *k, size_t len)
{
	uint64_t	id;

	if (len != f->plen + 3 + FLEET_ID_HEX ||
	    memcmp(k, f->prefix, f->plen) != 0 ||
	    memcmp(k + f->plen, "/r/", 3) != 0 ||
	    fleet_hex16(k + f->plen + 3, &id) != 0)
		return 0;
	return id;
}

/* The id and base of a history key (P/h/<16 hex>/<16 hex>); -1 if not one. */
static int
fleet_hist_key(const struct fleet *f, const unsigned char *k, size_t len,
    uint64_t *id, uint64_t *base)
{
	const unsigned char	*p = k + f->plen + 3;

	if (len != f->plen + 3 + 2 * FLEET_ID_HEX + 1 ||
	    memcmp(k, f->prefix, f->plen) != 0 ||
	    memcmp(k + f->plen, "/h/", 3) != 0 || p[FLEET_ID_HEX] != '/' ||
	    fleet_hex16(p, id) != 0 || *id == 0 ||
	    fleet_hex16(p + FLEET_ID_HEX + 1, base) != 0)
		return -1;
	return 0;
}

/* The range of every history key: [P/h/, P/h0). */
static void
fleet_history_range(const struct fleet *f, char *from, size_t *flen,
    char *to, size_t *tlen)
{
	*flen = fleet_key(f, from, FLEET_KEY_MAX, "/h/");
	*tlen = fleet_key(f, to, FLEET_KEY_MAX, "/h0");
}

/* The range of every record key: [P/r/, P/r0). */
static void
fleet_records_range(const struct fleet *f, char *from, size_t *flen,
    char *to, size_t *tlen)
{
	*flen = fleet_key(f, from, FLEET_KEY_MAX, "/r/");
	*tlen = fleet_key(f, to, FLEET_KEY_MAX, "/r0");
}

/* A mirror write failed: the store is failing; start again later. */
static void
fleet_mirror_done(int err, const struct cert_record *rec, void *arg)
{
	struct fleet	*f = arg;

	(void)rec;
	if (err == 0 || f->stopping)
		return;
	log_error("fleet: the mirror cannot write this host's store (%s): "
	    "its watch starts again from the store's revision", err_msg(err));
	fleet_mirror_stop(f);
	fleet_down(f, "the local store failed a write");
}

/* A version could not be mirrored (f->broken says why): down, retrying. */
static void
fleet_mirror_broken(struct fleet *f)
{
	char	why[sizeof(f->broken)];

	snprintf(why, sizeof(why), "%s", f->broken);
	f->broken[0] = '\0';
	log_error("fleet: %s: the mirror stops there", why);
	fleet_mirror_stop(f);
	fleet_down(f, why);
}

/* Put the record v of id at revision rev; false when it cannot be read. */
static bool
fleet_apply_put(struct fleet *f, uint64_t id, const unsigned char *v,
    size_t len, uint64_t rev)
{
	struct cert_record	*rec;
	int			 err;

	if ((err = fleet_keys_open(f, v, len, &rec, NULL)) != 0 ||
	    rec->id != id) {
		/*
		 * Skipping it would leave the mirror behind for good (the
		 * watch moves on): stop, and say why until it opens.
		 */
		snprintf(f->broken, sizeof(f->broken), "record %" PRIu64
		    " at revision %" PRIu64 " does not %s", id, rev, err == 0 ?
		    "hold its own id" : "decode or open with this node's "
		    "fleet keys");
		record_free(rec);
		return false;
	}
	if ((err = store_put_at(f->store, rec, rev, fleet_mirror_done, f))
	    != 0) {
		log_error("fleet: record %" PRIu64 " at revision %" PRIu64
		    " refused by the store (%d)", id, rev, err);
		return false;
	}
	return true;
}

/* Delete id (of whatever team holds it) at revision rev. */
static void
fleet_apply_delete(struct fleet *f, uint64_t id, uint64_t rev)
{
	const char	*team = store_head_team(f->store, id);
	char		 copy[CERTD_TEAM_MAX + 1];

	if (team == NULL)
		return;		/* never mirrored: nothing to delete */
	snprintf(copy, sizeof(copy), "%s", team);
	if (store_delete_at(f->store, copy, id, rev, fleet_mirror_done, f)
	    != 0)
		log_error("fleet: delete of %" PRIu64 " at revision %" PRIu64
		    " refused by the store", id, rev);
}

static void
fleet_watch_cb(int err, uint64_t compact_rev, const struct etcd_event *ev,
    size_t n, uint64_t revision, void *arg)
{
	struct fleet	*f = arg;
	uint64_t	 id, rev;
	size_t		 i;

	(void)revision;
	if (err != 0) {
		/* not freed from its own callback: watch_end does */
		f->watch_err = err;
		(void)compact_rev;
		event_active(f->watch_end, EV_TIMEOUT, 0);
		return;
	}
	for (i = 0; i < n; i++) {
		rev = ev[i].kv.mod_rev;
		if ((id = fleet_record_id(f, ev[i].kv.key, ev[i].kv.key_len)) == 0 ||
		    rev <= store_head_revision(f->store))
			continue;
		if (ev[i].is_delete)
			fleet_apply_delete(f, id, rev);
		else if (!fleet_apply_put(f, id, ev[i].kv.value,
		    ev[i].kv.value_len, rev)) {
			/* freed from the timer, not from its own callback */
			f->watch_err = CERTD_ERR_STORAGE;
			event_active(f->watch_end, EV_TIMEOUT, 0);
			return;
		}
	}
}

/*
 * etcd compacted past the store's revision.  Often nothing of P/r/ changed
 * since: the other keys (acks, leases, ids) moved etcd's revision, and the
 * watch, idle for 50 s, was started again from the store's.  When etcd
 * holds as many records as the store and none newer than it, the store is
 * the fleet at the range's revision: watch on from there.  Else a full
 * sync (a record deleted shows in the count, one written in the newest
 * mod_revision).
 */
static void
fleet_quick_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet		*f = arg;
	struct store_pos	 pos;

	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	store_get_pos(f->store, &pos);
	if (store_head_revision(f->store) == pos.revision &&
	    r->count == pos.count &&
	    (r->n_kvs == 0 || r->kvs[0].mod_rev <= pos.revision)) {
		log_debug("fleet: compacted, but the store holds the fleet's "
		    "%zu records: watching from revision %" PRIu64,
		    pos.count, r->revision + 1);
		fleet_watch_begin(f, r->revision + 1);
		return;
	}
	log_warn("fleet: etcd compacted past revision %" PRIu64 ": full sync",
	    pos.revision);
	fleet_sync_begin(f);
}

static void
fleet_quick_check(struct fleet *f)
{
	char	from[FLEET_KEY_MAX], to[FLEET_KEY_MAX];
	size_t	flen, tlen;

	fleet_records_range(f, from, &flen, to, &tlen);
	if (etcd_range(f->etcd, from, flen, to, tlen, 0, 1,
	    ETCD_KEYS_ONLY | ETCD_NEWEST_MOD, fleet_quick_cb, f) != 0)
		fleet_down(f, "out of memory");
}

/* The watch ended (watch_err): free it, then sync or wait and retry. */
static void
fleet_watch_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fleet	*f = arg;

	(void)fd;
	(void)what;
	etcd_watch_free(f->watch);
	f->watch = NULL;
	if (f->stopping)
		return;
	if (f->broken[0] != '\0') {
		fleet_mirror_broken(f);
		return;
	}
	if (f->watch_err == CERTD_ERR_NO_REVISION)
		fleet_quick_check(f);
	else
		/* idle past the client's timeout, or broke: watch again */
		fleet_mirror_start(f);
}

static void
fleet_watch_begin(struct fleet *f, uint64_t from)
{
	char	lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t	llen, hlen;

	fleet_records_range(f, lo, &llen, hi, &hlen);
	etcd_watch_free(f->watch);
	if ((f->watch = etcd_watch_new(f->etcd, lo, llen, hi, hlen, from,
	    fleet_watch_cb, f)) == NULL) {
		fleet_down(f, "cannot start the watch");
		return;
	}
	fleet_mirror_applied(f, store_revision(f->store));
}

void
fleet_mirror_applied(struct fleet *f, uint64_t revision)
{
	if (f->state != FLEET_UP && f->watch != NULL && revision >= f->target)
		fleet_up(f);
}

/* ------------------------------------------------------------------ */
/* Full sync                                                           */

static int
fleet_item_by_mod(const void *a, const void *b)
{
	const struct fleet_item	*x = a, *y = b;

	return x->mod_rev < y->mod_rev ? -1 : x->mod_rev > y->mod_rev;
}

static int
fleet_item_by_id(const void *a, const void *b)
{
	const struct fleet_item	*x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* By id; a record's history keys by base, then its P/r/ key. */
static int
fleet_item_by_key(const void *a, const void *b)
{
	const struct fleet_item	*x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->hist != y->hist)
		return x->hist ? -1 : 1;
	return x->base < y->base ? -1 : x->base > y->base;
}

/*
 * The revision of each version of one record, items [h, r): its history
 * keys by base, then r its P/r/ key (NULL: none).  A history key's
 * mod_revision is its version's revision until a rotation re-seals it in
 * place; the chain of bases is not touched by that: a version's revision
 * is the base of the next newer one, and the newest's is the record's
 * (P/r/, written in the same transaction), which then is that version:
 * dropped (revision 0, never fetched).  History without a record (left by
 * a node from before P/h/, or by hand) is no record: its items lose their
 * id, so that the store's copy counts as gone.  A record newer than its
 * newest history key (written by a node from before P/h/) stays itself.
 */
static void
fleet_sync_chain_one(struct fleet_item *h, struct fleet_item *end,
    struct fleet_item *r)
{
	struct fleet_item	*it;

	for (it = h; it < end; it++) {
		if (r == NULL) {
			it->id = 0;
			it->mod_rev = 0;
		} else if (it + 1 < end)
			it->mod_rev = it[1].base;
		else if (it->mod_rev == r->mod_rev)
			r->mod_rev = 0;		/* the same version */
	}
}

static void
fleet_sync_chain(struct fleet *f)
{
	struct fleet_item	*it = f->items, *end = f->items + f->n_items;
	struct fleet_item	*g, *r;

	qsort(f->items, f->n_items, sizeof(*f->items), fleet_item_by_key);
	while (it < end) {
		for (g = it; g < end && g->id == it->id && g->hist; g++)
			;
		r = g < end && g->id == it->id ? g : NULL;
		fleet_sync_chain_one(it, g, r);
		it = r != NULL ? r + 1 : g;
	}
}

struct fleet_gone {
	const struct fleet	*f;
	uint64_t		*ids;
	size_t			 n, cap;
	bool			 nomem;
};

/* A record of the store that the fleet no longer holds, noted. */
static int
fleet_gone_one(const struct store_meta *m, void *arg)
{
	struct fleet_gone	*g = arg;
	struct fleet_item	 key = { .id = m->id };
	uint64_t		*v;

	if (bsearch(&key, g->f->items, g->f->n_items, sizeof(key),
	    fleet_item_by_id) != NULL)
		return 0;
	if (g->n == g->cap) {
		g->cap = g->cap != 0 ? g->cap * 2 : 64;
		if ((v = realloc(g->ids, g->cap * sizeof(*v))) == NULL) {
			g->nomem = true;
			return -1;
		}
		g->ids = v;
	}
	g->ids[g->n++] = m->id;
	return 0;
}

/* Every record fetched: delete what is gone, then watch from sync_rev. */
static void
fleet_sync_finish(struct fleet *f)
{
	struct fleet_gone	g = { f, NULL, 0, 0, false };
	uint64_t		rev;
	size_t			i;

	qsort(f->items, f->n_items, sizeof(*f->items), fleet_item_by_id);
	store_foreach(f->store, NULL, fleet_gone_one, &g);
	if (g.nomem) {
		free(g.ids);
		fleet_down(f, "out of memory syncing");
		return;
	}
	rev = store_head_revision(f->store) > f->sync_rev ?
	    store_head_revision(f->store) : f->sync_rev;
	for (i = 0; i < g.n; i++)
		fleet_apply_delete(f, g.ids[i], rev);
	free(g.ids);
	/* the gap does not replay: a watcher resuming from before resyncs */
	store_log_forget(f->store, store_head_revision(f->store));
	log_info("fleet: full sync at revision %" PRIu64 ": %zu records, "
	    "%zu gone", f->sync_rev, f->n_items, g.n);
	f->target = store_head_revision(f->store);
	fleet_watch_begin(f, f->sync_rev + 1);
}

/*
 * A request of a full sync carries the sync's generation: an answer that
 * comes after the sync was given up (the mirror stopped on a failed store
 * write, or a new sync began) is dropped, not applied to the items of
 * another one.
 */
struct fleet_sync_req {
	struct fleet	*f;
	unsigned	 gen;
};

static int
fleet_sync_range(struct fleet *f, const char *from, size_t flen,
    const char *to, size_t tlen, uint64_t limit, unsigned flags, etcd_cb cb)
{
	struct fleet_sync_req	*q;

	if ((q = malloc(sizeof(*q))) == NULL)
		return CERTD_ERR_NOMEM;
	q->f = f;
	q->gen = f->sync_gen;
	if (etcd_range(f->etcd, from, flen, to, tlen, f->sync_rev, limit,
	    flags, cb, q) != 0) {
		free(q);
		return CERTD_ERR_NOMEM;
	}
	return 0;
}

/* The fleet of a sync request's answer, or NULL: that sync is over. */
static struct fleet *
fleet_sync_of(void *arg)
{
	struct fleet_sync_req	*q = arg;
	struct fleet		*f = q->f;
	bool			 live = q->gen == f->sync_gen;

	free(q);
	return live ? f : NULL;
}

static void	fleet_sync_fetch(struct fleet *f);

static void
fleet_sync_fetch_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet		*f = fleet_sync_of(arg);
	const struct fleet_item	*it;

	if (f == NULL)
		return;
	it = &f->items[f->next_item];
	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	/* gone by sync_rev cannot be: read at it */
	if (r->n_kvs == 1 && !fleet_apply_put(f, it->id, r->kvs[0].value,
	    r->kvs[0].value_len, it->mod_rev)) {
		fleet_mirror_broken(f);
		return;
	}
	f->next_item++;
	fleet_sync_fetch(f);
}

/* The next record the store lacks, oldest first; then finish. */
static void
fleet_sync_fetch(struct fleet *f)
{
	const struct fleet_item	*it;
	char			 key[FLEET_KEY_MAX];
	size_t			 klen;

	while (f->next_item < f->n_items &&
	    f->items[f->next_item].mod_rev <= store_head_revision(f->store))
		f->next_item++;
	if (f->next_item == f->n_items) {
		fleet_sync_finish(f);
		return;
	}
	it = &f->items[f->next_item];
	klen = it->hist ? fleet_key(f, key, sizeof(key), "/h/%016" PRIx64
	    "/%016" PRIx64, it->id, it->base) : fleet_key(f, key, sizeof(key),
	    "/r/%016" PRIx64, it->id);
	if (fleet_sync_range(f, key, klen, NULL, 0, 0, 0,
	    fleet_sync_fetch_cb) != 0)
		fleet_down(f, "out of memory syncing");
}

static void
fleet_sync_page_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet		*f = fleet_sync_of(arg);
	struct fleet_item	*v;
	char			 from[FLEET_KEY_MAX], to[FLEET_KEY_MAX];
	size_t			 flen, tlen, i;
	uint64_t		 id, base = 0;

	if (f == NULL)
		return;
	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	if (f->sync_rev == 0)
		f->sync_rev = r->revision;
	for (i = 0; i < r->n_kvs; i++) {
		if (f->sync_records ? (id = fleet_record_id(f, r->kvs[i].key,
		    r->kvs[i].key_len)) == 0 : fleet_hist_key(f,
		    r->kvs[i].key, r->kvs[i].key_len, &id, &base) != 0)
			continue;
		if (f->n_items == f->cap_items) {
			f->cap_items = f->cap_items != 0 ? f->cap_items * 2 :
			    FLEET_SYNC_PAGE;
			if ((v = realloc(f->items, f->cap_items *
			    sizeof(*v))) == NULL) {
				fleet_down(f, "out of memory syncing");
				return;
			}
			f->items = v;
		}
		v = &f->items[f->n_items++];
		v->id = id;
		v->mod_rev = r->kvs[i].mod_rev;
		v->base = base;
		v->hist = !f->sync_records;
	}
	if ((!r->more || r->n_kvs == 0) && !f->sync_records) {
		/* the history listed: now the records */
		f->sync_records = true;
		fleet_records_range(f, from, &flen, to, &tlen);
		if (fleet_sync_range(f, from, flen, to, tlen, FLEET_SYNC_PAGE,
		    ETCD_KEYS_ONLY, fleet_sync_page_cb) != 0)
			fleet_down(f, "out of memory syncing");
		return;
	}
	if (!r->more || r->n_kvs == 0) {
		/* each version at its revision, oldest first */
		fleet_sync_chain(f);
		qsort(f->items, f->n_items, sizeof(*f->items),
		    fleet_item_by_mod);
		f->next_item = 0;
		fleet_sync_fetch(f);
		return;
	}
	/* the next page: from just after the last key */
	if (f->sync_records)
		fleet_records_range(f, from, &flen, to, &tlen);
	else
		fleet_history_range(f, from, &flen, to, &tlen);
	flen = r->kvs[r->n_kvs - 1].key_len;
	if (flen + 1 > sizeof(from)) {
		fleet_down(f, "a record key too long");
		return;
	}
	memcpy(from, r->kvs[r->n_kvs - 1].key, flen);
	from[flen++] = '\0';
	if (fleet_sync_range(f, from, flen, to, tlen, FLEET_SYNC_PAGE,
	    ETCD_KEYS_ONLY, fleet_sync_page_cb) != 0)
		fleet_down(f, "out of memory syncing");
}

static void
fleet_sync_begin(struct fleet *f)
{
	char	from[FLEET_KEY_MAX], to[FLEET_KEY_MAX];
	size_t	flen, tlen;

	f->state = FLEET_SYNCING;
	f->sync_gen++;
	f->sync_rev = 0;
	f->sync_records = false;
	f->n_items = f->next_item = 0;
	fleet_history_range(f, from, &flen, to, &tlen);
	if (fleet_sync_range(f, from, flen, to, tlen, FLEET_SYNC_PAGE,
	    ETCD_KEYS_ONLY, fleet_sync_page_cb) != 0)
		fleet_down(f, "out of memory syncing");
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

/* The newest record revision etcd holds: where "up" is. */
static void
fleet_target_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet	*f = arg;

	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	if (f->state == FLEET_DOWN) {
		/* etcd answers again */
		f->state = FLEET_SYNCING;
		f->since = (int64_t)time(NULL);
	}
	f->target = r->n_kvs == 1 ? r->kvs[0].mod_rev : 0;
	fleet_watch_begin(f, store_revision(f->store) + 1);
}

void
fleet_mirror_start(struct fleet *f)
{
	char	from[FLEET_KEY_MAX], to[FLEET_KEY_MAX];
	size_t	flen, tlen;

	if (f->watch_end == NULL &&
	    (f->watch_end = event_new(f->base, -1, 0, fleet_watch_end_cb, f))
	    == NULL) {
		fleet_down(f, "out of memory");
		return;
	}
	if (f->state == FLEET_CONNECTING)
		f->state = FLEET_SYNCING;
	fleet_records_range(f, from, &flen, to, &tlen);
	if (etcd_range(f->etcd, from, flen, to, tlen, 0, 1,
	    ETCD_KEYS_ONLY | ETCD_NEWEST_MOD, fleet_target_cb, f) != 0)
		fleet_down(f, "out of memory");
}

void
fleet_mirror_stop(struct fleet *f)
{
	etcd_watch_free(f->watch);
	f->watch = NULL;
	if (f->watch_end != NULL) {
		event_free(f->watch_end);
		f->watch_end = NULL;
	}
	free(f->items);
	f->items = NULL;
	f->n_items = f->cap_items = f->next_item = 0;
	f->sync_gen++;		/* a sync's answers still coming: dropped */
}
