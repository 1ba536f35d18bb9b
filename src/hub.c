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
 *
 * Peers cannot interfere with each other: a subscriber name belongs to the
 * first uid that used it (a hash of names, kept for the hub's life), each
 * non-admin uid has an account of the filter bytes its live watches hold
 * and of the names it owns, and a watch binds a certificate against
 * deletion only while its peer may write the certificate's team.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certd/constants.h"
#include "err.h"
#include "hub.h"
#include "proto.h"
#include "util.h"

/* What one allocation costs beyond its bytes (glibc's chunk header). */
#define HUB_ALLOC_OVERHEAD	16

struct hub_watch {
	TAILQ_ENTRY(hub_watch)	 entry;		/* hc->watches */
	struct hub_conn		*hc;
	uint64_t		 id;
	char			*team;		/* NULL: every readable team */
	uint64_t		*ids;
	size_t			 n_ids;
	char			**aliases;
	size_t			 n_aliases;
	char			 name[CERTD_WATCH_NAME_MAX + 1];
	struct hub_ack		 ack;
	size_t			 cost;		/* bytes charged to the uid */
	uint64_t		 serial;	/* hub->next_serial */
};

/* A subscriber name and whose it is; never freed before the hub. */
struct hub_name {
	struct hub_name		*next;		/* hub->names chain */
	unsigned long		 uid;		/* the non-admin owner */
	int			 admin;		/* the admins' (uid unused) */
	char			 name[CERTD_WATCH_NAME_MAX + 1];
};

/*
 * What one non-admin uid holds.  Exists while it holds something: freed
 * when both counts are back to 0.
 */
struct hub_account {
	LIST_ENTRY(hub_account)	 entry;		/* hub->accounts */
	unsigned long		 uid;
	size_t			 filter_bytes;	/* sum of its watches' cost */
	size_t			 names;		/* hub_names it owns */
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
	int			 admin;		/* not counted, may use any name */
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
	struct hub_name		**names;	/* by name hash */
	size_t			 n_name_slots;	/* 0 or a power of two */
	size_t			 n_names;
	LIST_HEAD(, hub_account) accounts;
	uint64_t		 next_serial;
	const char		*node;		/* hub_set_observer */
	void			(*changed)(void *);
	void			*changed_arg;
};

/* A watch came, went or acked. */
static void
observe(const struct hub *hub)
{
	if (hub->changed != NULL)
		hub->changed(hub->changed_arg);
}

struct hub *
hub_new(struct store *store)
{
	struct hub	*hub;

	if ((hub = calloc(1, sizeof(*hub))) == NULL)
		return NULL;
	hub->store = store;
	TAILQ_INIT(&hub->conns);
	LIST_INIT(&hub->accounts);
	msgpack_sbuffer_init(&hub->frame);
	msgpack_sbuffer_init(&hub->cache.with_key);
	msgpack_sbuffer_init(&hub->cache.without_key);
	return hub;
}

/* Frames and cert maps hold keys: wipe scratch buffers before freeing. */
static void
sbuffer_wipe_destroy(msgpack_sbuffer *sb)
{
	util_wipe(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

void
hub_free(struct hub *hub)
{
	struct hub_conn		*hc;
	struct hub_name		*n;
	struct hub_account	*a;
	size_t			 i;

	if (hub == NULL)
		return;
	while ((hc = TAILQ_FIRST(&hub->conns)) != NULL)
		hub_conn_free(hc);
	for (i = 0; i < hub->n_name_slots; i++)
		while ((n = hub->names[i]) != NULL) {
			hub->names[i] = n->next;
			free(n);
		}
	free(hub->names);
	while ((a = LIST_FIRST(&hub->accounts)) != NULL) {
		LIST_REMOVE(a, entry);
		free(a);
	}
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
	if (hc->backlog_bytes + len > CERTD_BACKLOG_MAX) {
		hc->dropped = 1;
		hc->hub->stats.subscribers_dropped++;
		hc->ops->drop(hc->ctx, err_msg(CERTD_ERR_TOO_SLOW));
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
			    (contains_id(w, id) || contains_alias(w, alias)) &&
			    hc->ops->may_write(hc->ctx, team))
				return 1;
		}
	}
	return 0;
}

/* --- accounts and names ------------------------------------------------ */

/* The account of a non-admin uid; created when create, else NULL. */
static struct hub_account *
account_get(struct hub *hub, unsigned long uid, int create)
{
	struct hub_account	*a;

	LIST_FOREACH(a, &hub->accounts, entry)
		if (a->uid == uid)
			return a;
	if (!create || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->uid = uid;
	LIST_INSERT_HEAD(&hub->accounts, a, entry);
	return a;
}

/* Free an account that holds nothing any more.  Accepts NULL. */
static void
account_put(struct hub_account *a)
{
	if (a != NULL && a->filter_bytes == 0 && a->names == 0) {
		LIST_REMOVE(a, entry);
		free(a);
	}
}

/* What a watch with filter f holds, allocator overhead included. */
static size_t
filter_cost(const struct hub_filter *f)
{
	size_t	cost = sizeof(struct hub_watch) + HUB_ALLOC_OVERHEAD, i;

	if (f->team != NULL)
		cost += strlen(f->team) + 1 + HUB_ALLOC_OVERHEAD;
	if (f->n_ids > 0)
		cost += f->n_ids * sizeof(uint64_t) + HUB_ALLOC_OVERHEAD;
	if (f->n_aliases > 0)
		cost += f->n_aliases * sizeof(char *) + HUB_ALLOC_OVERHEAD;
	for (i = 0; i < f->n_aliases; i++)
		cost += strlen(f->aliases[i]) + 1 + HUB_ALLOC_OVERHEAD;
	return cost;
}

static size_t
name_slot(size_t n_slots, const char *name)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);	/* FNV-1a */

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * UINT64_C(0x100000001b3);
	return (size_t)(h ^ h >> 32) & (n_slots - 1);
}

static struct hub_name *
name_find(const struct hub *hub, const char *name)
{
	struct hub_name	*n;

	if (hub->n_name_slots == 0)
		return NULL;
	for (n = hub->names[name_slot(hub->n_name_slots, name)]; n != NULL;
	    n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/*
 * Record a new name, growing the table to keep chains short (without
 * memory for a larger table, chains just grow).  Returns NULL on NOMEM.
 */
static struct hub_name *
name_add(struct hub *hub, const char *name, unsigned long uid, int admin)
{
	struct hub_name	**slots, *n, *next;
	size_t		  size = hub->n_name_slots ? hub->n_name_slots * 2 : 64;
	size_t		  i;

	if (hub->n_names >= hub->n_name_slots &&
	    (slots = calloc(size, sizeof(*slots))) != NULL) {
		for (i = 0; i < hub->n_name_slots; i++)
			for (n = hub->names[i]; n != NULL; n = next) {
				next = n->next;
				n->next = slots[name_slot(size, n->name)];
				slots[name_slot(size, n->name)] = n;
			}
		free(hub->names);
		hub->names = slots;
		hub->n_name_slots = size;
	}
	if (hub->n_name_slots == 0 || (n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->uid = uid;
	n->admin = admin;
	n->next = hub->names[name_slot(hub->n_name_slots, name)];
	hub->names[name_slot(hub->n_name_slots, name)] = n;
	hub->n_names++;
	return n;
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

/* Give back what w held to its uid's account. */
static void
watch_refund(struct hub_conn *hc, struct hub_watch *w)
{
	struct hub_account	*a;

	if (hc->admin || w->cost == 0 ||
	    (a = account_get(hc->hub, hc->uid, 0)) == NULL)
		return;
	a->filter_bytes -= w->cost < a->filter_bytes ? w->cost :
	    a->filter_bytes;
	w->cost = 0;
	account_put(a);
}

/* Take w out of hc with its pending events, and free it. */
static void
watch_remove(struct hub_conn *hc, struct hub_watch *w)
{
	struct hub_pending	*p, *next;
	uint64_t		 id = w->id;

	TAILQ_REMOVE(&hc->watches, w, entry);
	watch_refund(hc, w);
	watch_free(w);
	observe(hc->hub);
	for (p = TAILQ_FIRST(&hc->backlog); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->watch == id) {
			pending_remove(hc, p);
			pending_free(p);
		}
	}
}

/*
 * End watch w with an error frame 403 naming the reason, after whatever
 * hc's backlog still holds (never coalesced: cert id 0).
 */
static void
watch_end(struct hub_conn *hc, struct hub_watch *w, const char *reason)
{
	struct hub	*hub = hc->hub;
	msgpack_packer	 pk;
	uint64_t	 id = w->id;

	watch_remove(hc, w);
	if (hub->frame.data != NULL)
		memset(hub->frame.data, 0, hub->frame.size);
	proto_begin(&hub->frame, &pk);
	msgpack_pack_map(&pk, 4);
	proto_kv_uint(&pk, "id", 0);
	proto_kv_bool(&pk, "ok", 0);
	proto_kv_uint(&pk, "watch", id);
	proto_pack_cstr(&pk, "error");
	msgpack_pack_map(&pk, 3);
	proto_kv_int(&pk, "code", err_socket_code(CERTD_ERR_FORBIDDEN));
	proto_kv_str(&pk, "msg", err_msg(CERTD_ERR_FORBIDDEN));
	proto_kv_str(&pk, "reason", reason);
	if (proto_end(&hub->frame, (size_t)-1) == 0)
		deliver(hc, id, 0, hub->frame.data, hub->frame.size);
}

void
hub_conn_free(struct hub_conn *hc)
{
	struct hub_watch	*w;
	struct hub_pending	*p;
	int			 had = 0;

	if (hc == NULL)
		return;
	while ((w = TAILQ_FIRST(&hc->watches)) != NULL) {
		TAILQ_REMOVE(&hc->watches, w, entry);
		watch_refund(hc, w);
		watch_free(w);
		had = 1;
	}
	while ((p = TAILQ_FIRST(&hc->backlog)) != NULL) {
		TAILQ_REMOVE(&hc->backlog, p, entry);
		pending_free(p);
	}
	free(hc->slots);
	TAILQ_REMOVE(&hc->hub->conns, hc, entry);
	if (had)
		observe(hc->hub);
	free(hc);
}

void
hub_get_stats(const struct hub *hub, struct hub_stats *out)
{
	const struct hub_conn	*hc;
	const struct hub_watch	*w;

	*out = hub->stats;
	out->watches = 0;
	out->backlog = 0;
	out->subscribers_failed = 0;
	TAILQ_FOREACH(hc, &hub->conns, entry) {
		out->watches += hub_conn_watches(hc);
		out->backlog += hc->n_backlog;
		TAILQ_FOREACH(w, &hc->watches, entry)
			if (w->ack.at != 0 &&
			    w->ack.status == HUB_ACK_FAILED)
				out->subscribers_failed++;
	}
}

void
hub_conn_set_peer(struct hub_conn *hc, unsigned long uid, long pid,
    int admin)
{
	hc->uid = uid;
	hc->pid = pid;
	hc->admin = admin != 0;
}

size_t
hub_conn_recheck(struct hub_conn *hc)
{
	struct hub_watch	*w, *next;
	size_t			 n = 0;

	if (hc->admin)
		return 0;
	for (w = TAILQ_FIRST(&hc->watches); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (hc->ops->may_read(hc->ctx, w->team))
			continue;
		watch_end(hc, w, w->team != NULL ?
		    "a reload revoked this peer's read permission on the "
		    "watch's team" :
		    "a reload revoked this peer's read permission on every team");
		n++;
	}
	return n;
}

/* w as the subscriber hub_subscribers reports. */
static void
sub_fill(const struct hub *hub, const struct hub_conn *hc,
    const struct hub_watch *w, struct hub_subscriber *sub)
{
	sub->node = hub->node;
	sub->name = w->name;
	sub->uid = hc->uid;
	sub->pid = hc->pid;
	sub->watch = w->id;
	sub->serial = w->serial;
	sub->filter.team = w->team;
	sub->filter.ids = w->ids;
	sub->filter.n_ids = w->n_ids;
	sub->filter.aliases = (const char *const *)w->aliases;
	sub->filter.n_aliases = w->n_aliases;
	sub->filter.name = w->name;
	sub->ack = w->ack.at != 0 ? &w->ack : NULL;
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
			sub_fill(hub, hc, w, &sub);
			cb(&sub, arg);
			n++;
		}
	}
	return n;
}

void
hub_foreach_subscriber(const struct hub *hub, hub_subscriber_cb cb,
    void *arg)
{
	const struct hub_conn	*hc;
	const struct hub_watch	*w;
	struct hub_subscriber	 sub;

	TAILQ_FOREACH(hc, &hub->conns, entry)
		TAILQ_FOREACH(w, &hc->watches, entry) {
			sub_fill(hub, hc, w, &sub);
			cb(&sub, arg);
		}
}

void
hub_set_observer(struct hub *hub, const char *node,
    void (*changed)(void *arg), void *arg)
{
	hub->node = node;
	hub->changed = changed;
	hub->changed_arg = arg;
}

/*
 * A filter of another host's watch: a watch of every team is taken to
 * read this one (its host checked the peer's permission).
 */
int
hub_filter_matches(const struct hub_filter *f, const char *team,
    uint64_t id, const char *alias)
{
	size_t	i;

	if (f->team != NULL && strcmp(f->team, team) != 0)
		return 0;
	if (f->n_ids == 0 && f->n_aliases == 0)
		return 1;
	for (i = 0; i < f->n_ids; i++)
		if (f->ids[i] == id)
			return 1;
	for (i = 0; alias != NULL && i < f->n_aliases; i++)
		if (strcmp(f->aliases[i], alias) == 0)
			return 1;
	return 0;
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

#define HUB_WHY_NAME_TAKEN \
	"the subscriber name belongs to another uid (a name is the first " \
	"uid's to use it until certd restarts)"

/*
 * Whether hc may watch under name n (NULL: a new name) and with a filter of
 * cost, charged to account a (NULL for an admin).  Fills why.
 */
static int
watch_allowed(const struct hub_conn *hc, const struct hub_name *n,
    int new_name, const struct hub_account *a, size_t cost,
    struct hub_refusal *why)
{
	if (hc->admin)
		return 0;
	if (n != NULL && (n->admin || n->uid != hc->uid)) {
		why->field = "name";
		why->reason = HUB_WHY_NAME_TAKEN;
		return CERTD_ERR_FORBIDDEN;
	}
	if (new_name && a->names >= CERTD_UID_NAMES_MAX) {
		why->field = "name";
		snprintf(why->buf, sizeof(why->buf), "this uid already owns %d "
		    "subscriber names, the most one uid may (names are kept "
		    "until certd restarts)", CERTD_UID_NAMES_MAX);
		why->reason = why->buf;
		return CERTD_ERR_FORBIDDEN;
	}
	if (cost > CERTD_UID_FILTER_MAX - a->filter_bytes) {
		snprintf(why->buf, sizeof(why->buf), "over this uid's watch "
		    "filter budget: the watches of one uid hold at most %u MiB "
		    "of ids and aliases", CERTD_UID_FILTER_MAX / (1024 * 1024));
		why->reason = why->buf;
		return CERTD_ERR_FORBIDDEN;
	}
	return 0;
}

/*
 * Give name n to the admins: the live watches other peers hold under it
 * end, and its former owner no longer counts it.
 */
static void
name_take_over(struct hub *hub, struct hub_name *n)
{
	struct hub_account	*a = account_get(hub, n->uid, 0);
	struct hub_conn		*hc;
	struct hub_watch	*w, *next;

	if (a != NULL && a->names > 0) {
		a->names--;
		account_put(a);
	}
	n->admin = 1;
	TAILQ_FOREACH(hc, &hub->conns, entry) {
		if (hc->admin)
			continue;
		for (w = TAILQ_FIRST(&hc->watches); w != NULL; w = next) {
			next = TAILQ_NEXT(w, entry);
			if (strcmp(w->name, n->name) == 0)
				watch_end(hc, w, "the subscriber name was taken "
				    "over by an admin (root or certd's uid)");
		}
	}
}

/* Claim f->name for hc: new, or taken over by an admin.  0 or NOMEM. */
static int
name_claim(struct hub_conn *hc, struct hub_name *n, const char *name,
    struct hub_account *a)
{
	if (n == NULL) {
		if (name_add(hc->hub, name, hc->uid, hc->admin) == NULL)
			return CERTD_ERR_NOMEM;
		if (a != NULL)
			a->names++;
	} else if (hc->admin && !n->admin)
		name_take_over(hc->hub, n);
	return 0;
}

int
hub_watch_add(struct hub_conn *hc, const struct hub_filter *f,
    uint64_t *watch, uint64_t *revision, struct hub_refusal *why)
{
	struct hub_watch	*w;
	struct hub_account	*a = NULL;
	struct hub_name		*n = NULL;
	size_t			 i, cost = filter_cost(f);
	int			 rv;

	why->field = why->reason = NULL;
	if (!hc->admin && (a = account_get(hc->hub, hc->uid, 1)) == NULL)
		return CERTD_ERR_NOMEM;
	if (f->name != NULL)
		n = name_find(hc->hub, f->name);
	if ((rv = watch_allowed(hc, n, f->name != NULL && n == NULL, a, cost,
	    why)) != 0) {
		account_put(a);
		return rv;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto nomem;
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
	if (f->name != NULL) {
		if (name_claim(hc, n, f->name, a) != 0)
			goto nomem;
		snprintf(w->name, sizeof(w->name), "%s", f->name);
	}
	if (a != NULL) {
		a->filter_bytes += cost;
		w->cost = cost;
	}
	w->id = ++hc->next_watch;
	w->serial = ++hc->hub->next_serial;
	TAILQ_INSERT_TAIL(&hc->watches, w, entry);
	*watch = w->id;
	*revision = store_revision(hc->hub->store);
	observe(hc->hub);
	return 0;
nomem:
	watch_free(w);
	account_put(a);
	return CERTD_ERR_NOMEM;
}

int
hub_unwatch(struct hub_conn *hc, uint64_t watch)
{
	struct hub_watch	*w = find_watch(hc, watch);

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	watch_remove(hc, w);
	return 0;
}

const char *
hub_ack_status_name(enum hub_ack_status status)
{
	switch (status) {
	case HUB_ACK_OK:
		return "ok";
	case HUB_ACK_REQUESTED:
		return "requested";
	case HUB_ACK_FAILED:
		break;
	}
	return "failed";
}

int
hub_ack(struct hub_conn *hc, uint64_t watch, const struct hub_ack *ack)
{
	struct hub_watch	*w = find_watch(hc, watch);

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	w->ack = *ack;
	w->ack.detail[sizeof(w->ack.detail) - 1] = '\0';
	w->ack.served[sizeof(w->ack.served) - 1] = '\0';
	w->ack.at = (int64_t)time(NULL);
	switch (ack->status) {
	case HUB_ACK_OK:
		hc->hub->stats.acks_ok++;
		break;
	case HUB_ACK_REQUESTED:
		hc->hub->stats.acks_requested++;
		break;
	case HUB_ACK_FAILED:
		hc->hub->stats.acks_failed++;
		break;
	}
	observe(hc->hub);
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
	struct store		*store;
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
replay_record(const struct store_meta *m, void *arg)
{
	struct replay			*r = arg;
	const struct cert_record	*rec;

	if (m->revision <= r->since ||
	    !matches(r->w, m->team, m->id, m->alias, NULL))
		return 0;
	/* lent by the store until the loop runs again: the replay is done */
	if ((rec = store_get(r->store, m->team, m->id)) == NULL) {
		r->err = CERTD_ERR_STORAGE;
		return -1;
	}
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
	struct store_pos	 pos;
	size_t			 i;
	int			 rv = 0;

	if (w == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (!has_since)
		return 0;
	memset(&r, 0, sizeof(r));
	r.store = hub->store;
	r.w = w;
	r.since = since;
	/*
	 * Changes after since are gone from the log, since is a revision this
	 * store never reached, or it is one of another store's (another
	 * epoch: the client saw the store this one was restored from, or
	 * another one): start over.
	 */
	store_get_pos(hub->store, &pos);
	if (since > pos.revision ||
	    (since > 0 && epoch != 0 && epoch != pos.epoch) ||
	    (since > 0 && since < pos.revision &&
	    since + 1 < pos.log_first)) {
		if (build_event(hub, "resync", w->id, pos.revision, NULL,
		    NULL, 0) == 0)
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
