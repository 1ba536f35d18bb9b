/* SPDX-License-Identifier: MIT */
/*
 * Subscriptions and fan-out.  Every committed change reaches hub_publish
 * once, in revision order (store.c guarantees it); the hub turns it into one
 * event frame per matching watch.  The cert map of a change is packed once
 * with the key and once without, lazily; a watch's frame is a small header
 * followed by those bytes.
 *
 * Back-pressure: a connection whose queued output is over its limit gets no
 * more bytes.  Its events wait in a backlog that holds at most one event per
 * (watch, certificate): a newer event for the same certificate replaces the
 * older one and moves to the tail, so the backlog stays in revision order
 * and its size is bounded by the number of certificates, however many
 * changes happen.  Once the backlog is non-empty every new event goes
 * through it, so events never overtake each other.  A hash on (watch,
 * certificate) finds the event to replace, so a backlog of n events costs
 * O(1) per new event, not O(n): a subscriber that replays a large team and
 * reads nothing must not make the loop quadratic.
 *
 * Replay and live delivery cannot interleave wrongly: both run on the loop,
 * a watch starts after the committed revision R of its creation, replay
 * sends only revisions <= R and live delivery only revisions > R.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certd/constants.h"
#include "hub.h"
#include "proto.h"

struct hub_watch {
	TAILQ_ENTRY(hub_watch)	 entry;		/* hc->watches */
	struct hub_conn		*hc;
	uint64_t		 id;
	char			*team;		/* NULL: every readable team */
	uint64_t		*ids;
	size_t			 n_ids;
	char			**aliases;
	size_t			 n_aliases;
	char			 name[HUB_NAME_MAX + 1];
	struct hub_ack		 ack;
};

/* An event waiting for output room; frame is a whole frame. */
struct hub_pending {
	TAILQ_ENTRY(hub_pending) entry;
	struct hub_pending	*hnext;		/* hc->slots chain */
	uint64_t		 watch;
	uint64_t		 cert_id;	/* 0: resync, never coalesced */
	char			*frame;
	size_t			 len;
};

struct hub_conn {
	TAILQ_ENTRY(hub_conn)	 entry;		/* hub->conns */
	struct hub		*hub;
	const struct hub_conn_ops *ops;
	void			*ctx;
	size_t			 out_limit;
	unsigned long		 uid;		/* peer, for hub_subscribers */
	long			 pid;
	uint64_t		 next_watch;
	TAILQ_HEAD(, hub_watch)	 watches;
	TAILQ_HEAD(, hub_pending) backlog;	/* revision order */
	size_t			 n_backlog;
	size_t			 backlog_bytes;
	struct hub_pending	**slots;	/* by (watch, cert_id) */
	size_t			 n_slots;	/* 0 or a power of two */
	size_t			 n_indexed;	/* with a cert_id */
	int			 dropped;	/* gave up on it: deliver nothing */
};

/* The cert map bytes of the change being published, packed on demand. */
struct hub_cert_cache {
	const struct cert_record *rec;
	msgpack_sbuffer		 with_key;
	msgpack_sbuffer		 without_key;
	int			 have_with;
	int			 have_without;
};

struct hub {
	struct store		*store;
	struct hub_stats	 stats;
	TAILQ_HEAD(, hub_conn)	 conns;
	msgpack_sbuffer		 frame;		/* scratch for one frame */
	struct hub_cert_cache	 cache;
};

struct hub *
hub_new(struct store *store)
{
	struct hub	*hub;

	if ((hub = calloc(1, sizeof(*hub))) == NULL)
		return NULL;
	hub->store = store;
	TAILQ_INIT(&hub->conns);
	msgpack_sbuffer_init(&hub->frame);
	msgpack_sbuffer_init(&hub->cache.with_key);
	msgpack_sbuffer_init(&hub->cache.without_key);
	return hub;
}

/* Frames and cert maps hold keys: wipe scratch buffers before freeing. */
static void
sbuffer_wipe_destroy(msgpack_sbuffer *sb)
{
	if (sb->data != NULL)
		memset(sb->data, 0, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

void
hub_free(struct hub *hub)
{
	struct hub_conn	*hc;

	if (hub == NULL)
		return;
	while ((hc = TAILQ_FIRST(&hub->conns)) != NULL)
		hub_conn_free(hc);
	sbuffer_wipe_destroy(&hub->frame);
	sbuffer_wipe_destroy(&hub->cache.with_key);
	sbuffer_wipe_destroy(&hub->cache.without_key);
	free(hub);
}

void
hub_pack_cert(msgpack_packer *pk, const struct cert_record *rec, int with_key)
{
	msgpack_pack_map(pk, with_key ? 8 : 7);
	proto_kv_uint(pk, "id", rec->id);
	proto_kv_str(pk, "alias", rec->alias);
	proto_kv_str(pk, "certificate_type", rec->cert_type);
	proto_kv_strn(pk, "certificate", rec->certificate,
	    rec->certificate_len);
	if (with_key)
		proto_kv_strn(pk, "private_key", rec->private_key,
		    rec->private_key_len);
	proto_kv_uint(pk, "revision", rec->revision);
	proto_kv_int(pk, "not_after", rec->meta.not_after);
	proto_kv_str(pk, "fingerprint_sha256", rec->meta.fingerprint);
}

/* The cert map of rec, from the cache. */
static const msgpack_sbuffer *
cached_cert(struct hub *hub, const struct cert_record *rec, int with_key)
{
	struct hub_cert_cache	*c = &hub->cache;
	msgpack_sbuffer		*sb = with_key ? &c->with_key : &c->without_key;
	int			*have = with_key ? &c->have_with : &c->have_without;
	msgpack_packer		 pk;

	if (c->rec != rec) {
		c->rec = rec;
		c->have_with = c->have_without = 0;
	}
	if (!*have) {
		if (sb->data != NULL)
			memset(sb->data, 0, sb->size);
		msgpack_sbuffer_clear(sb);
		msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
		hub_pack_cert(&pk, rec, with_key);
		*have = 1;
	}
	return sb;
}

static void
cache_forget(struct hub *hub)
{
	struct hub_cert_cache	*c = &hub->cache;

	if (c->with_key.data != NULL)
		memset(c->with_key.data, 0, c->with_key.size);
	msgpack_sbuffer_clear(&c->with_key);
	msgpack_sbuffer_clear(&c->without_key);
	c->rec = NULL;
	c->have_with = c->have_without = 0;
}

/* --- delivery ---------------------------------------------------------- */

static int
has_room(const struct hub_conn *hc)
{
	return hc->ops->queued(hc->ctx) < hc->out_limit;
}

static size_t
pending_slot(const struct hub_conn *hc, uint64_t watch, uint64_t cert_id)
{
	uint64_t	h = watch * UINT64_C(0x9e3779b97f4a7c15) ^
			    cert_id * UINT64_C(0xc2b2ae3d27d4eb4f);

	return (size_t)(h ^ h >> 31) & (hc->n_slots - 1);
}

/* The backlog's event of (watch, cert_id), or NULL. */
static struct hub_pending *
pending_find(const struct hub_conn *hc, uint64_t watch, uint64_t cert_id)
{
	struct hub_pending	*p;

	if (hc->n_slots == 0)
		return NULL;
	for (p = hc->slots[pending_slot(hc, watch, cert_id)]; p != NULL;
	    p = p->hnext)
		if (p->watch == watch && p->cert_id == cert_id)
			return p;
	return NULL;
}

static void
pending_link(struct hub_conn *hc, struct hub_pending *p)
{
	struct hub_pending	**slot;

	slot = &hc->slots[pending_slot(hc, p->watch, p->cert_id)];
	p->hnext = *slot;
	*slot = p;
}

/*
 * Index p (one with a cert_id), growing the table to keep chains short.
 * Without memory for a table p stays out of it: it is then not replaced by
 * a newer event, which is slower for the peer, never wrong.
 */
static void
pending_index(struct hub_conn *hc, struct hub_pending *p)
{
	struct hub_pending	**old = hc->slots, *q;
	size_t			  n = hc->n_slots ? hc->n_slots * 2 : 64;

	if (hc->n_indexed >= hc->n_slots) {
		if ((hc->slots = calloc(n, sizeof(*hc->slots))) == NULL) {
			hc->slots = old;
			if (old == NULL)
				return;
		} else {
			free(old);
			hc->n_slots = n;
			hc->n_indexed = 0;
			TAILQ_FOREACH(q, &hc->backlog, entry)
				if (q->cert_id != 0 && q != p) {
					pending_link(hc, q);
					hc->n_indexed++;
				}
		}
	}
	pending_link(hc, p);
	hc->n_indexed++;
}

/* Unlink p from hc's backlog. */
static void
pending_remove(struct hub_conn *hc, struct hub_pending *p)
{
	struct hub_pending	**pp;

	TAILQ_REMOVE(&hc->backlog, p, entry);
	hc->n_backlog--;
	hc->backlog_bytes -= p->len;
	if (p->cert_id == 0 || hc->n_slots == 0)
		return;
	for (pp = &hc->slots[pending_slot(hc, p->watch, p->cert_id)];
	    *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == p) {
			*pp = p->hnext;
			hc->n_indexed--;
			break;
		}
}

static void
pending_free(struct hub_pending *p)
{
	if (p == NULL)
		return;
	memset(p->frame, 0, p->len);
	free(p->frame);
	free(p);
}

/* Deliver one finished frame to hc, or coalesce it into the backlog. */
static void
deliver(struct hub_conn *hc, uint64_t watch, uint64_t cert_id,
    const char *frame, size_t len)
{
	struct hub_pending	*p;

	if (hc->dropped)
		return;
	if (TAILQ_EMPTY(&hc->backlog) && has_room(hc)) {
		hc->ops->send(hc->ctx, frame, len);
		hc->hub->stats.events_sent++;
		return;
	}
	hc->hub->stats.events_deferred++;
	if (cert_id != 0 && (p = pending_find(hc, watch, cert_id)) != NULL) {
		pending_remove(hc, p);
		pending_free(p);
		hc->hub->stats.events_coalesced++;
	}
	if (hc->backlog_bytes + len > HUB_BACKLOG_MAX) {
		hc->dropped = 1;
		hc->hub->stats.subscribers_dropped++;
		hc->ops->drop(hc->ctx, "subscriber too slow");
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->frame = malloc(len)) == NULL) {
		/*
		 * Out of memory: dropping the event would leave the peer
		 * with a wrong state, so queue it past the limit instead.
		 */
		free(p);
		hc->ops->send(hc->ctx, frame, len);
		return;
	}
	memcpy(p->frame, frame, len);
	p->len = len;
	p->watch = watch;
	p->cert_id = cert_id;
	TAILQ_INSERT_TAIL(&hc->backlog, p, entry);
	hc->n_backlog++;
	hc->backlog_bytes += len;
	if (cert_id != 0)
		pending_index(hc, p);
}

void
hub_conn_drain(struct hub_conn *hc)
{
	struct hub_pending	*p;

	while ((p = TAILQ_FIRST(&hc->backlog)) != NULL && has_room(hc) &&
	    !hc->dropped) {
		pending_remove(hc, p);
		hc->ops->send(hc->ctx, p->frame, p->len);
		hc->hub->stats.events_sent++;
		pending_free(p);
	}
}

/*
 * Build the frame of one event into hub->frame: kind "put" with the cert map
 * of rec, "delete" with {id, alias}, "expiring" with {id, alias, not_after,
 * fingerprint_sha256}, "resync" alone.
 */
static int
build_event(struct hub *hub, const char *kind, uint64_t watch,
    uint64_t revision, const char *team, const struct cert_record *rec,
    int with_key)
{
	msgpack_packer		 pk;
	const msgpack_sbuffer	*cert;

	if (hub->frame.data != NULL)
		memset(hub->frame.data, 0, hub->frame.size);
	proto_begin(&hub->frame, &pk);
	msgpack_pack_map(&pk, rec != NULL ? 5 : 3);
	proto_kv_str(&pk, "event", kind);
	proto_kv_uint(&pk, "watch", watch);
	proto_kv_uint(&pk, "revision", revision);
	if (rec != NULL) {
		proto_kv_str(&pk, "team", team);
		proto_pack_cstr(&pk, "cert");
		if (strcmp(kind, "put") == 0) {
			cert = cached_cert(hub, rec, with_key);
			msgpack_sbuffer_write(&hub->frame, cert->data, cert->size);
		} else if (strcmp(kind, "expiring") == 0) {
			msgpack_pack_map(&pk, 4);
			proto_kv_uint(&pk, "id", rec->id);
			proto_kv_str(&pk, "alias", rec->alias);
			proto_kv_int(&pk, "not_after", rec->meta.not_after);
			proto_kv_str(&pk, "fingerprint_sha256",
			    rec->meta.fingerprint);
		} else {
			msgpack_pack_map(&pk, 2);
			proto_kv_uint(&pk, "id", rec->id);
			proto_kv_str(&pk, "alias", rec->alias);
		}
	}
	return proto_end(&hub->frame, (size_t)-1);
}

static int
cmp_id(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_alias(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The filters are sorted (watch_new): a publish costs O(log n) a watch. */
static int
contains_id(const struct hub_watch *w, uint64_t id)
{
	return w->n_ids > 0 &&
	    bsearch(&id, w->ids, w->n_ids, sizeof(*w->ids), cmp_id) != NULL;
}

static int
contains_alias(const struct hub_watch *w, const char *alias)
{
	return alias != NULL && w->n_aliases > 0 &&
	    bsearch(&alias, w->aliases, w->n_aliases, sizeof(*w->aliases),
	    cmp_alias) != NULL;
}

/*
 * Whether w wants a change of (team, id) whose alias is alias (and was
 * old_alias before it, for a rename).
 */
static int
matches(const struct hub_watch *w, const char *team, uint64_t id,
    const char *alias, const char *old_alias)
{
	if (w->team != NULL) {
		if (strcmp(w->team, team) != 0)
			return 0;
	} else if (!w->hc->ops->may_read(w->hc->ctx, team))
		return 0;
	if (w->n_ids == 0 && w->n_aliases == 0)
		return 1;
	return contains_id(w, id) || contains_alias(w, alias) ||
	    contains_alias(w, old_alias);
}

/* Send the event of one change to one watch. */
static void
send_change(struct hub *hub, struct hub_watch *w, const char *kind,
    uint64_t revision, const struct cert_record *rec)
{
	struct hub_conn	*hc = w->hc;
	int		 with_key;

	with_key = strcmp(kind, "put") == 0 &&
	    hc->ops->may_key(hc->ctx, rec->team);
	if (build_event(hub, kind, w->id, revision, rec->team, rec,
	    with_key) != 0)
		return;
	deliver(hc, w->id, rec->id, hub->frame.data, hub->frame.size);
}

void
hub_publish(struct hub *hub, const struct store_change *ch)
{
	const struct cert_record *rec = ch->rec != NULL ? ch->rec : ch->old;
	const char		*kind = ch->kind == STORE_PUT ? "put" : "delete";
	const char		*old_alias = ch->old != NULL ? ch->old->alias : NULL;
	struct hub_conn		*hc;
	struct hub_watch	*w;

	TAILQ_FOREACH(hc, &hub->conns, entry) {
		TAILQ_FOREACH(w, &hc->watches, entry) {
			if (matches(w, rec->team, rec->id, rec->alias,
			    old_alias))
				send_change(hub, w, kind, ch->revision, rec);
		}
	}
	cache_forget(hub);
}

void
hub_expiring(struct hub *hub, const struct cert_record *rec)
{
	struct hub_conn		*hc;
	struct hub_watch	*w;

	TAILQ_FOREACH(hc, &hub->conns, entry) {
		TAILQ_FOREACH(w, &hc->watches, entry) {
			if (!matches(w, rec->team, rec->id, rec->alias, NULL) ||
			    build_event(hub, "expiring", w->id, rec->revision,
			    rec->team, rec, 0) != 0)
				continue;
			/* cert id 0: never coalesced away by a later put */
			deliver(hc, w->id, 0, hub->frame.data, hub->frame.size);
		}
	}
}

int
hub_is_bound(const struct hub *hub, const char *team, uint64_t id,
    const char *alias)
{
	const struct hub_conn	*hc;
	const struct hub_watch	*w;

	TAILQ_FOREACH(hc, &hub->conns, entry) {
		TAILQ_FOREACH(w, &hc->watches, entry) {
			if (w->team != NULL && strcmp(w->team, team) == 0 &&
			    (contains_id(w, id) || contains_alias(w, alias)))
				return 1;
		}
	}
	return 0;
}

/* --- connections and watches ----------------------------------------- */

struct hub_conn *
hub_conn_new(struct hub *hub, const struct hub_conn_ops *ops, void *ctx,
    size_t out_limit)
{
	struct hub_conn	*hc;

	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	hc->hub = hub;
	hc->ops = ops;
	hc->ctx = ctx;
	hc->out_limit = out_limit;
	TAILQ_INIT(&hc->watches);
	TAILQ_INIT(&hc->backlog);
	TAILQ_INSERT_TAIL(&hub->conns, hc, entry);
	return hc;
}

static void
watch_free(struct hub_watch *w)
{
	size_t	i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n_aliases; i++)
		free(w->aliases[i]);
	free(w->aliases);
	free(w->ids);
	free(w->team);
	free(w);
}

void
hub_conn_free(struct hub_conn *hc)
{
	struct hub_watch	*w;
	struct hub_pending	*p;

	if (hc == NULL)
		return;
	while ((w = TAILQ_FIRST(&hc->watches)) != NULL) {
		TAILQ_REMOVE(&hc->watches, w, entry);
		watch_free(w);
	}
	while ((p = TAILQ_FIRST(&hc->backlog)) != NULL) {
		TAILQ_REMOVE(&hc->backlog, p, entry);
		pending_free(p);
	}
	free(hc->slots);
	TAILQ_REMOVE(&hc->hub->conns, hc, entry);
	free(hc);
}

void
hub_get_stats(const struct hub *hub, struct hub_stats *out)
{
	const struct hub_conn	*hc;

	*out = hub->stats;
	out->watches = 0;
	out->backlog = 0;
	TAILQ_FOREACH(hc, &hub->conns, entry) {
		out->watches += hub_conn_watches(hc);
		out->backlog += hc->n_backlog;
	}
}

void
hub_conn_set_peer(struct hub_conn *hc, unsigned long uid, long pid)
{
	hc->uid = uid;
	hc->pid = pid;
}

size_t
hub_subscribers(const struct hub *hub, const char *team, uint64_t id,
    const char *alias, hub_subscriber_cb cb, void *arg)
{
	const struct hub_conn	*hc;
	const struct hub_watch	*w;
	struct hub_subscriber	 sub;
	size_t			 n = 0;

	TAILQ_FOREACH(hc, &hub->conns, entry) {
		TAILQ_FOREACH(w, &hc->watches, entry) {
			if (!matches(w, team, id, alias, NULL))
				continue;
			sub.name = w->name;
			sub.uid = hc->uid;
			sub.pid = hc->pid;
			sub.watch = w->id;
			sub.ack = w->ack.at != 0 ? &w->ack : NULL;
			cb(&sub, arg);
			n++;
		}
	}
	return n;
}

size_t
hub_conn_watches(const struct hub_conn *hc)
{
	const struct hub_watch	*w;
	size_t			 n = 0;

	TAILQ_FOREACH(w, &hc->watches, entry)
		n++;
	return n;
}

size_t
hub_conn_backlog(const struct hub_conn *hc)
{
	return hc->n_backlog;
}

static struct hub_watch *
find_watch(const struct hub_conn *hc, uint64_t id)
{
	struct hub_watch	*w;

	TAILQ_FOREACH(w, &hc->watches, entry)
		if (w->id == id)
			return w;
	return NULL;
}

int
hub_watch_add(struct hub_conn *hc, const struct hub_filter *f,
    uint64_t *watch, uint64_t *revision)
{
	struct hub_watch	*w;
	size_t			 i;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return CERTD_ERR_NOMEM;
	w->hc = hc;
	if ((f->team != NULL && (w->team = strdup(f->team)) == NULL) ||
	    (f->n_ids > 0 &&
	    (w->ids = calloc(f->n_ids, sizeof(*w->ids))) == NULL) ||
	    (f->n_aliases > 0 &&
	    (w->aliases = calloc(f->n_aliases, sizeof(*w->aliases))) == NULL))
		goto nomem;
	if (f->n_ids > 0)
		memcpy(w->ids, f->ids, f->n_ids * sizeof(*w->ids));
	w->n_ids = f->n_ids;
	for (i = 0; i < f->n_aliases; i++) {
		if ((w->aliases[i] = strdup(f->aliases[i])) == NULL)
			goto nomem;
		w->n_aliases++;
	}
	if (w->n_ids > 1)
		qsort(w->ids, w->n_ids, sizeof(*w->ids), cmp_id);
	if (w->n_aliases > 1)
		qsort(w->aliases, w->n_aliases, sizeof(*w->aliases), cmp_alias);
	if (f->name != NULL)
		snprintf(w->name, sizeof(w->name), "%s", f->name);
	w->id = ++hc->next_watch;
	TAILQ_INSERT_TAIL(&hc->watches, w, entry);
	*watch = w->id;
	*revision = store_revision(hc->hub->store);
	return 0;
nomem:
	watch_free(w);
	return CERTD_ERR_NOMEM;
}

int
hub_unwatch(struct hub_conn *hc, uint64_t watch)
{
	struct hub_watch	*w = find_watch(hc, watch);
	struct hub_pending	*p, *next;

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	TAILQ_REMOVE(&hc->watches, w, entry);
	watch_free(w);
	for (p = TAILQ_FIRST(&hc->backlog); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->watch == watch) {
			pending_remove(hc, p);
			pending_free(p);
		}
	}
	return 0;
}

int
hub_ack(struct hub_conn *hc, uint64_t watch, uint64_t revision, int ok,
    const char *detail, size_t detail_len)
{
	struct hub_watch	*w = find_watch(hc, watch);

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	w->ack.revision = revision;
	w->ack.ok = ok;
	if (detail_len >= sizeof(w->ack.detail))
		detail_len = sizeof(w->ack.detail) - 1;
	if (detail != NULL)
		memcpy(w->ack.detail, detail, detail_len);
	w->ack.detail[detail != NULL ? detail_len : 0] = '\0';
	w->ack.at = (int64_t)time(NULL);
	return 0;
}

const struct hub_ack *
hub_watch_ack(const struct hub_conn *hc, uint64_t watch)
{
	const struct hub_watch	*w = find_watch(hc, watch);

	return w != NULL && w->ack.at != 0 ? &w->ack : NULL;
}

/* --- replay -------------------------------------------------------------- */

/* One replayed event: a current record (put) or a logged delete. */
struct replay_item {
	uint64_t			 revision;
	const struct cert_record	*rec;		/* put */
	struct cert_record		*gone;		/* delete: id, team, alias */
};

struct replay {
	struct hub_watch	*w;
	uint64_t		 since;
	struct replay_item	*v;
	size_t			 n;
	size_t			 cap;
	int			 err;
};

static int
replay_push(struct replay *r, uint64_t revision, const struct cert_record *rec,
    struct cert_record *gone)
{
	struct replay_item	*v;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;

		if ((v = realloc(r->v, cap * sizeof(*v))) == NULL) {
			r->err = CERTD_ERR_NOMEM;
			return -1;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].revision = revision;
	r->v[r->n].rec = rec;
	r->v[r->n].gone = gone;
	r->n++;
	return 0;
}

static int
replay_record(const struct cert_record *rec, void *arg)
{
	struct replay	*r = arg;

	if (rec->revision <= r->since ||
	    !matches(r->w, rec->team, rec->id, rec->alias, NULL))
		return 0;
	return replay_push(r, rec->revision, rec, NULL);
}

static int
replay_log(const struct store_log_entry *e, void *arg)
{
	struct replay		*r = arg;
	struct cert_record	*gone;

	if (e->kind != STORE_DELETE ||
	    !matches(r->w, e->team, e->id, e->alias, NULL))
		return 0;
	if ((gone = record_new()) == NULL ||
	    (gone->team = strdup(e->team)) == NULL ||
	    (gone->alias = strdup(e->alias)) == NULL) {
		record_free(gone);
		r->err = CERTD_ERR_NOMEM;
		return -1;
	}
	gone->id = e->id;
	return replay_push(r, e->revision, NULL, gone);
}

static int
by_revision(const void *a, const void *b)
{
	const struct replay_item *x = a, *y = b;

	return x->revision < y->revision ? -1 : x->revision > y->revision;
}

int
hub_watch_replay(struct hub_conn *hc, uint64_t watch, int has_since,
    uint64_t since, uint64_t epoch)
{
	struct hub		*hub = hc->hub;
	struct hub_watch	*w = find_watch(hc, watch);
	struct replay		 r;
	size_t			 i;
	int			 rv = 0;

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (!has_since)
		return 0;
	memset(&r, 0, sizeof(r));
	r.w = w;
	r.since = since;
	/*
	 * Changes after since are gone from the log, since is a revision this
	 * store never reached, or it is one of another store's (another
	 * epoch: the client saw the store this one was restored from, or
	 * another one): start over.
	 */
	if (since > store_revision(hub->store) ||
	    (since > 0 && epoch != 0 && epoch != store_epoch(hub->store)) ||
	    (since > 0 && since < store_revision(hub->store) &&
	    since + 1 < store_log_first(hub->store))) {
		if (build_event(hub, "resync", w->id,
		    store_revision(hub->store), NULL, NULL, 0) == 0)
			deliver(hc, w->id, 0, hub->frame.data, hub->frame.size);
		r.since = 0;
	}
	store_foreach(hub->store, w->team, replay_record, &r);
	if (r.err == 0 && r.since > 0 &&
	    store_log_scan(hub->store, r.since, replay_log, &r) != 0 &&
	    r.err == 0)
		r.err = CERTD_ERR_STORAGE;
	if ((rv = r.err) != 0)
		goto out;
	if (r.n > 1)
		qsort(r.v, r.n, sizeof(*r.v), by_revision);
	for (i = 0; i < r.n; i++) {
		if (r.v[i].rec != NULL)
			send_change(hub, w, "put", r.v[i].revision, r.v[i].rec);
		else
			send_change(hub, w, "delete", r.v[i].revision,
			    r.v[i].gone);
		cache_forget(hub);
	}
out:
	for (i = 0; i < r.n; i++)
		record_free(r.v[i].gone);
	free(r.v);
	return rv;
}
