/* SPDX-License-Identifier: MIT */
/*
 * Fleet-wide subscribers (doc/fleet.md): every host publishes its live
 * watches, each with its filter and last ack, under P/acks/<node>/<serial>
 * attached to a lease of its own, and reads every other host's back, so
 * that the subscribers of a certificate can be listed on any host.  Under
 * the same lease it publishes P/nodes/<node>: the ids of the fleet keys
 * it holds, which a key rotation checks.
 *
 * Publishing: the hub says when a watch came, went or acked; a moment
 * later (FLEET_ACKS_DELAY_MS, so that a burst of acks is one write) the
 * hub's watches are compared with what etcd holds of this host's, and the
 * difference is one transaction of puts (under the lease) and deletes.
 * The lease is kept alive every third of its TTL; one found expired (etcd
 * was away longer than the TTL: the keys went with it) is granted again
 * and everything published again.  A host that dies drops out when its
 * lease expires, FLEET_LEASE_TTL_S seconds later.
 *
 * Reading: one range of P/acks/, then a watch from the range's revision
 * + 1, into a table of the other hosts' watches; the subscribers view is
 * read from it, so it answers at once and goes on answering, with what
 * was last known, while etcd is away.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "certd/constants.h"
#include "err.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_int.h"
#include "hub.h"
#include "json.h"
#include "log.h"

#define FLEET_LEASE_TTL_S	10
#define FLEET_ACKS_DELAY_MS	50	/* a burst of hub changes, one write */
#define FLEET_ACKS_RETRY_MS	1000
#define FLEET_ACKS_TXN_OPS	100	/* etcd refuses more than 128 */

/* A key of this host's in etcd and the value it holds there. */
struct acks_pub {
	char		*key;
	char		*value;
	bool		 seen;		/* among the hub's watches now */
};

/* Another host's watch, as its value says. */
struct acks_remote {
	char			*key;
	char			*node;
	char			*name;
	char			*team;		/* NULL: every team */
	uint64_t		*ids;
	char			**aliases;
	uint64_t		 uid, pid, watch;
	struct hub_filter	 filter;
	struct hub_ack		 ack;
	bool			 acked;
};

/* One change of a flush: put key = value, or delete key (value NULL). */
struct acks_change {
	char		*key;
	char		*value;
};

struct fleet_acks {
	struct fleet		*f;
	struct hub		*hub;
	uint64_t		 lease;		/* 0: none */
	uint64_t		 flush_lease;	/* the flush in flight's */
	bool			 failing;	/* the last flush failed */
	bool			 granting;
	struct event		*keepalive;
	struct event		*flush;
	bool			 flushing;
	struct acks_pub		*pub;
	size_t			 n_pub, cap_pub;
	struct acks_change	*chg;		/* the flush in flight */
	size_t			 n_chg, cap_chg;

	struct etcd_watch	*watch;
	struct event		*reread;	/* frees the watch, reads */
	bool			 reading;
	struct acks_remote	*rem;
	size_t			 n_rem, cap_rem;
};

static void	acks_grant(struct fleet_acks *a);
static void	acks_read(struct fleet_acks *a);

static void
acks_after(struct event *ev, unsigned ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/* Grow *v (of *cap elements of size sz) to hold n + 1; -1: no memory. */
static int
acks_grow(void **v, size_t *cap, size_t n, size_t sz)
{
	void	*nv;
	size_t	 c = *cap != 0 ? *cap * 2 : 16;

	if (n < *cap)
		return 0;
	if ((nv = realloc(*v, c * sz)) == NULL)
		return -1;
	*v = nv;
	*cap = c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* This host's watches, published                                      */

/* A watch's value: what another host shows of it. */
static char *
acks_value(const struct hub_subscriber *s)
{
	struct json_w		*w = json_w_new();
	const struct hub_ack	*k = s->ack;
	const char		*buf;
	char			*out = NULL;
	size_t			 i, len;

	json_w_obj(w);
	json_w_kstr(w, "node", s->node);
	json_w_kstr(w, "name", s->name);
	json_w_kuint(w, "uid", s->uid);
	json_w_kint(w, "pid", s->pid);
	json_w_kuint(w, "watch", s->watch);
	json_w_kstr(w, "team", s->filter.team);
	json_w_key(w, "ids");
	json_w_arr(w);
	for (i = 0; i < s->filter.n_ids; i++)
		json_w_uint(w, s->filter.ids[i]);
	json_w_arr_end(w);
	json_w_key(w, "aliases");
	json_w_arr(w);
	for (i = 0; i < s->filter.n_aliases; i++)
		json_w_str(w, s->filter.aliases[i]);
	json_w_arr_end(w);
	if (k != NULL) {
		json_w_key(w, "ack");
		json_w_obj(w);
		json_w_kuint(w, "revision", k->revision);
		json_w_kstr(w, "status", hub_ack_status_name(k->status));
		json_w_kstr(w, "detail", k->detail);
		json_w_kint(w, "at", k->at);
		json_w_kstr(w, "served", k->served);
		json_w_kint(w, "verified_at", k->verified_at);
		json_w_obj_end(w);
	}
	json_w_obj_end(w);
	if (json_w_done(w, &buf, &len) == 0 &&
	    (out = malloc(len + 1)) != NULL) {
		memcpy(out, buf, len);
		out[len] = '\0';
	}
	json_w_free(w);
	return out;
}

static struct acks_pub *
acks_pub_find(struct fleet_acks *a, const char *key)
{
	size_t	i;

	for (i = 0; i < a->n_pub; i++)
		if (strcmp(a->pub[i].key, key) == 0)
			return &a->pub[i];
	return NULL;
}

/* Queue a change for the flush; takes key and value. */
static void
acks_change(struct fleet_acks *a, char *key, char *value)
{
	if (key == NULL || a->n_chg >= FLEET_ACKS_TXN_OPS ||
	    acks_grow((void **)&a->chg, &a->cap_chg, a->n_chg,
	    sizeof(*a->chg)) != 0) {
		free(key);
		free(value);
		return;
	}
	a->chg[a->n_chg].key = key;
	a->chg[a->n_chg++].value = value;
}

/* key = value (taken) wanted in etcd: a put unless it holds that. */
static void
acks_want(struct fleet_acks *a, const char *key, char *value)
{
	struct acks_pub		*p;

	if ((p = acks_pub_find(a, key)) != NULL) {
		p->seen = true;
		if (strcmp(p->value, value) == 0) {
			free(value);
			return;
		}
	}
	acks_change(a, strdup(key), value);
}

/* A watch of the hub, published. */
static void
acks_collect(const struct hub_subscriber *s, void *arg)
{
	struct fleet_acks	*a = arg;
	char			 key[FLEET_KEY_MAX];
	char			*value;

	if (fleet_key(a->f, key, sizeof(key), "/acks/%s/%016" PRIx64,
	    a->f->node, s->serial) != 0 && (value = acks_value(s)) != NULL)
		acks_want(a, key, value);
}

/*
 * This node in P/nodes/<node>: the ids of the keys it holds, which a
 * rotation checks (fleet_rekey.c).
 */
static void
acks_node(struct fleet_acks *a)
{
	char	key[FLEET_KEY_MAX], ids[FLEET_RING_MAX * 20], *value;
	struct json_w *w;
	const char *buf;
	size_t	len;

	if (fleet_key(a->f, key, sizeof(key), "/nodes/%s", a->f->node) == 0)
		return;
	fleet_keys_ids(a->f, ids, sizeof(ids));
	w = json_w_new();
	json_w_obj(w);
	json_w_kstr(w, "node", a->f->node);
	json_w_kstr(w, "keys", ids);
	json_w_obj_end(w);
	if (json_w_done(w, &buf, &len) == 0 &&
	    (value = strndup(buf, len)) != NULL)
		acks_want(a, key, value);
	json_w_free(w);
}

static void
acks_chg_clear(struct fleet_acks *a)
{
	size_t	i;

	for (i = 0; i < a->n_chg; i++) {
		free(a->chg[i].key);
		free(a->chg[i].value);
	}
	a->n_chg = 0;
}

/* The flush committed: etcd holds what it wrote. */
static void
acks_chg_apply(struct fleet_acks *a)
{
	struct acks_change	*c;
	struct acks_pub		*p;

	for (c = a->chg; c < a->chg + a->n_chg; c++) {
		if ((p = acks_pub_find(a, c->key)) == NULL) {
			if (c->value == NULL || acks_grow((void **)&a->pub,
			    &a->cap_pub, a->n_pub, sizeof(*a->pub)) != 0)
				continue;
			p = &a->pub[a->n_pub++];
			p->key = c->key;
			p->value = c->value;
			c->key = c->value = NULL;
			continue;
		}
		free(p->value);
		if ((p->value = c->value) == NULL) {
			free(p->key);
			*p = a->pub[--a->n_pub];
		}
		c->value = NULL;
	}
	acks_chg_clear(a);
}

static void
acks_flush_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_acks	*a = arg;

	a->flushing = false;
	if (r->err == CERTD_ERR_SHUTDOWN || a->f->stopping) {
		acks_chg_clear(a);
		return;
	}
	if (a->lease != a->flush_lease) {
		/* written under a lease lost since: everything again */
		acks_chg_clear(a);
		acks_after(a->flush, 0);
		return;
	}
	if (r->err != 0) {
		/* once per outage: the retries go on every second */
		if (!a->failing)
			log_warn("fleet: publishing this host's subscribers: "
			    "%s (trying again)", r->why);
		a->failing = true;
		acks_chg_clear(a);
		acks_after(a->flush, FLEET_ACKS_RETRY_MS);
		return;
	}
	if (a->failing)
		log_info("fleet: this host's subscribers published again");
	a->failing = false;
	/* a full flush leaves more: go on */
	if (a->n_chg == FLEET_ACKS_TXN_OPS)
		acks_after(a->flush, 0);
	acks_chg_apply(a);
}

/* Bring etcd's copy of this host's watches in line with the hub. */
static void
acks_flush(evutil_socket_t fd, short what, void *arg)
{
	struct fleet_acks	*a = arg;
	struct etcd_txn		*t;
	size_t			 i;

	(void)fd;
	(void)what;
	if (a->flushing || a->lease == 0 || a->f->stopping)
		return;		/* the reply, or the grant, flushes again */
	for (i = 0; i < a->n_pub; i++)
		a->pub[i].seen = false;
	acks_node(a);
	hub_foreach_subscriber(a->hub, acks_collect, a);
	for (i = 0; i < a->n_pub; i++)
		if (!a->pub[i].seen)
			acks_change(a, strdup(a->pub[i].key), NULL);
	if (a->n_chg == 0)
		return;
	if ((t = etcd_txn_new()) == NULL) {
		acks_chg_clear(a);
		acks_after(a->flush, FLEET_ACKS_RETRY_MS);
		return;
	}
	for (i = 0; i < a->n_chg; i++) {
		if (a->chg[i].value != NULL)
			etcd_txn_put_lease(t, a->chg[i].key,
			    strlen(a->chg[i].key), a->chg[i].value,
			    strlen(a->chg[i].value), a->lease);
		else
			etcd_txn_delete(t, false, a->chg[i].key,
			    strlen(a->chg[i].key));
	}
	a->flushing = true;
	a->flush_lease = a->lease;
	if (etcd_txn_commit(a->f->etcd, t, acks_flush_cb, a) != 0) {
		a->flushing = false;
		acks_chg_clear(a);
		acks_after(a->flush, FLEET_ACKS_RETRY_MS);
	}
}

/* The hub's watches changed. */
static void
acks_changed(void *arg)
{
	struct fleet_acks	*a = arg;

	if (!evtimer_pending(a->flush, NULL))
		acks_after(a->flush, FLEET_ACKS_DELAY_MS);
}

/* ------------------------------------------------------------------ */
/* The lease                                                           */

/* The lease and the keys under it are gone: all of them again. */
static void
acks_lease_lost(struct fleet_acks *a)
{
	size_t	i;

	log_warn("fleet: lease %" PRIx64 " expired: publishing this host's "
	    "subscribers again", a->lease);
	a->lease = 0;
	for (i = 0; i < a->n_pub; i++) {
		free(a->pub[i].key);
		free(a->pub[i].value);
	}
	a->n_pub = 0;
	acks_grant(a);
}

static void
acks_keepalive_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_acks	*a = arg;

	if (r->err == CERTD_ERR_SHUTDOWN || a->f->stopping)
		return;
	/* the answer for the lease in use, not for one lost before it */
	if (r->err == 0 && r->ttl == 0 && a->lease != 0 &&
	    r->lease == a->lease)
		acks_lease_lost(a);
	/* else: etcd away, tried again at the next tick */
}

static void
acks_tick(evutil_socket_t fd, short what, void *arg)
{
	struct fleet_acks	*a = arg;

	(void)fd;
	(void)what;
	acks_after(a->keepalive, FLEET_LEASE_TTL_S * 1000 / 3);
	if (a->lease != 0)
		(void)etcd_lease_keepalive(a->f->etcd, a->lease,
		    acks_keepalive_cb, a);
	else
		acks_grant(a);
	if (a->watch == NULL && !a->reading &&
	    !evtimer_pending(a->reread, NULL))
		acks_read(a);
}

static void
acks_grant_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_acks	*a = arg;

	a->granting = false;
	if (r->err == CERTD_ERR_SHUTDOWN || a->f->stopping)
		return;
	if (r->err != 0 || r->lease == 0)
		return;		/* the next tick asks again */
	a->lease = r->lease;
	acks_after(a->flush, 0);
}

static void
acks_grant(struct fleet_acks *a)
{
	if (a->granting || a->lease != 0)
		return;
	a->granting = true;
	if (etcd_lease_grant(a->f->etcd, FLEET_LEASE_TTL_S, acks_grant_cb,
	    a) != 0)
		a->granting = false;
}

/* ------------------------------------------------------------------ */
/* The other hosts' watches                                            */

static void
acks_remote_clear(struct acks_remote *x)
{
	size_t	i;

	for (i = 0; x->aliases != NULL && i < x->filter.n_aliases; i++)
		free(x->aliases[i]);
	free(x->aliases);
	free(x->ids);
	free(x->team);
	free(x->name);
	free(x->node);
	free(x->key);
	memset(x, 0, sizeof(*x));
}

/* x from the value v of a P/acks/ key; -1 if it is not one. */
static int
acks_remote_parse(struct acks_remote *x, const struct json_tree *v)
{
	const struct json_tree	*ids = json_tree_get(v, "ids");
	const struct json_tree	*al = json_tree_get(v, "aliases");
	const struct json_tree	*k = json_tree_get(v, "ack");
	const char		*s;
	uint64_t		 t;
	size_t			 i;

	if ((s = json_tree_str(json_tree_get(v, "node"))) == NULL ||
	    (x->node = strdup(s)) == NULL ||
	    (x->name = strdup((s = json_tree_str(json_tree_get(v, "name")))
	    != NULL ? s : "")) == NULL ||
	    ((s = json_tree_str(json_tree_get(v, "team"))) != NULL &&
	    (x->team = strdup(s)) == NULL) ||
	    json_tree_u64(json_tree_get(v, "watch"), &x->watch) != 0)
		return -1;
	(void)json_tree_u64(json_tree_get(v, "uid"), &x->uid);
	(void)json_tree_u64(json_tree_get(v, "pid"), &x->pid);
	if (json_tree_len(ids) > 0 &&
	    (x->ids = calloc(json_tree_len(ids), sizeof(*x->ids))) == NULL)
		return -1;
	for (i = 0; i < json_tree_len(ids); i++)
		if (json_tree_u64(json_tree_at(ids, i),
		    &x->ids[x->filter.n_ids++]) != 0)
			return -1;
	if (json_tree_len(al) > 0 && (x->aliases = calloc(json_tree_len(al),
	    sizeof(*x->aliases))) == NULL)
		return -1;
	for (i = 0; i < json_tree_len(al); i++)
		if ((s = json_tree_str(json_tree_at(al, i))) == NULL ||
		    (x->aliases[x->filter.n_aliases++] = strdup(s)) == NULL)
			return -1;
	x->filter.team = x->team;
	x->filter.ids = x->ids;
	x->filter.aliases = (const char *const *)x->aliases;
	x->filter.name = x->name;
	if (k == NULL)
		return 0;
	x->acked = true;
	(void)json_tree_u64(json_tree_get(k, "revision"), &x->ack.revision);
	s = json_tree_str(json_tree_get(k, "status"));
	x->ack.status = s == NULL ? HUB_ACK_FAILED : strcmp(s, "ok") == 0 ?
	    HUB_ACK_OK : strcmp(s, "requested") == 0 ? HUB_ACK_REQUESTED :
	    HUB_ACK_FAILED;
	if ((s = json_tree_str(json_tree_get(k, "detail"))) != NULL)
		snprintf(x->ack.detail, sizeof(x->ack.detail), "%s", s);
	if ((s = json_tree_str(json_tree_get(k, "served"))) != NULL)
		snprintf(x->ack.served, sizeof(x->ack.served), "%s", s);
	if (json_tree_u64(json_tree_get(k, "at"), &t) == 0)
		x->ack.at = (int64_t)t;
	if (json_tree_u64(json_tree_get(k, "verified_at"), &t) == 0)
		x->ack.verified_at = (int64_t)t;
	return 0;
}

static struct acks_remote *
acks_remote_find(struct fleet_acks *a, const unsigned char *key, size_t len)
{
	size_t	i;

	for (i = 0; i < a->n_rem; i++)
		if (strlen(a->rem[i].key) == len &&
		    memcmp(a->rem[i].key, key, len) == 0)
			return &a->rem[i];
	return NULL;
}

static void
acks_remote_drop(struct fleet_acks *a, const struct etcd_kv *kv)
{
	struct acks_remote	*x = acks_remote_find(a, kv->key, kv->key_len);

	if (x == NULL)
		return;
	acks_remote_clear(x);
	*x = a->rem[--a->n_rem];
}

/* A put of a P/acks/ key: this host's own are the hub's to show. */
static void
acks_remote_put(struct fleet_acks *a, const struct etcd_kv *kv)
{
	struct acks_remote	 x;
	struct json_tree	*t;
	char			 why[128];

	acks_remote_drop(a, kv);
	memset(&x, 0, sizeof(x));
	if ((t = json_tree_parse((const char *)kv->value, kv->value_len, why,
	    sizeof(why))) == NULL)
		return;
	if ((x.key = strndup((const char *)kv->key, kv->key_len)) == NULL ||
	    acks_remote_parse(&x, t) != 0 ||
	    strcmp(x.node, a->f->node) == 0 ||
	    acks_grow((void **)&a->rem, &a->cap_rem, a->n_rem,
	    sizeof(*a->rem)) != 0)
		acks_remote_clear(&x);
	else
		a->rem[a->n_rem++] = x;
	json_tree_free(t);
}

static void
acks_watch_cb(int err, uint64_t compact_rev, const struct etcd_event *ev,
    size_t n, uint64_t revision, void *arg)
{
	struct fleet_acks	*a = arg;
	size_t			 i;

	(void)compact_rev;
	(void)revision;
	if (err != 0) {
		/* freed and read again from the timer, not from here */
		if (!a->f->stopping)
			acks_after(a->reread, err == CERTD_ERR_NO_REVISION ?
			    0 : FLEET_ACKS_RETRY_MS);
		return;
	}
	for (i = 0; i < n; i++)
		if (ev[i].is_delete)
			acks_remote_drop(a, &ev[i].kv);
		else
			acks_remote_put(a, &ev[i].kv);
}

/* [P/acks/, P/acks0). */
static void
acks_range(const struct fleet_acks *a, char *lo, size_t *llen, char *hi,
    size_t *hlen)
{
	*llen = fleet_key(a->f, lo, FLEET_KEY_MAX, "/acks/");
	*hlen = fleet_key(a->f, hi, FLEET_KEY_MAX, "/acks0");
}

static void
acks_read_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_acks	*a = arg;
	char			 lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t			 i, llen, hlen;

	a->reading = false;
	if (r->err == CERTD_ERR_SHUTDOWN || a->f->stopping)
		return;
	if (r->err != 0)
		return;		/* the next tick reads again */
	while (a->n_rem > 0)
		acks_remote_clear(&a->rem[--a->n_rem]);
	for (i = 0; i < r->n_kvs; i++)
		acks_remote_put(a, &r->kvs[i]);
	acks_range(a, lo, &llen, hi, &hlen);
	a->watch = etcd_watch_new(a->f->etcd, lo, llen, hi, hlen,
	    r->revision + 1, acks_watch_cb, a);
}

static void
acks_read(struct fleet_acks *a)
{
	char	lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t	llen, hlen;

	acks_range(a, lo, &llen, hi, &hlen);
	a->reading = true;
	if (etcd_range(a->f->etcd, lo, llen, hi, hlen, 0, 0, 0, acks_read_cb,
	    a) != 0)
		a->reading = false;
}

static void
acks_reread(evutil_socket_t fd, short what, void *arg)
{
	struct fleet_acks	*a = arg;

	(void)fd;
	(void)what;
	etcd_watch_free(a->watch);
	a->watch = NULL;
	if (!a->reading)
		acks_read(a);
}

/* ------------------------------------------------------------------ */
/* Life cycle, the view                                                */

int
fleet_acks_new(struct fleet *f)
{
	struct fleet_acks	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	a->f = f;
	f->acks = a;
	if ((a->keepalive = evtimer_new(f->base, acks_tick, a)) == NULL ||
	    (a->flush = evtimer_new(f->base, acks_flush, a)) == NULL ||
	    (a->reread = evtimer_new(f->base, acks_reread, a)) == NULL)
		return -1;
	return 0;
}

void
fleet_set_hub(struct fleet *f, struct hub *hub)
{
	f->acks->hub = hub;
	hub_set_observer(hub, f->node, acks_changed, f->acks);
}

void
fleet_acks_start(struct fleet *f)
{
	struct fleet_acks	*a = f->acks;

	if (a->hub == NULL || evtimer_pending(a->keepalive, NULL))
		return;
	acks_tick(-1, 0, a);
}

/* Before etcd_free, whose pending requests then end with SHUTDOWN. */
void
fleet_acks_stop(struct fleet *f)
{
	struct fleet_acks	*a = f->acks;

	if (a == NULL)
		return;
	if (a->hub != NULL)
		hub_set_observer(a->hub, NULL, NULL, NULL);
	etcd_watch_free(a->watch);
	a->watch = NULL;
}

void
fleet_acks_free(struct fleet *f)
{
	struct fleet_acks	*a = f->acks;
	size_t			 i;

	if (a == NULL)
		return;
	if (a->keepalive != NULL)
		event_free(a->keepalive);
	if (a->flush != NULL)
		event_free(a->flush);
	if (a->reread != NULL)
		event_free(a->reread);
	for (i = 0; i < a->n_pub; i++) {
		free(a->pub[i].key);
		free(a->pub[i].value);
	}
	free(a->pub);
	acks_chg_clear(a);
	free(a->chg);
	while (a->n_rem > 0)
		acks_remote_clear(&a->rem[--a->n_rem]);
	free(a->rem);
	free(a);
	f->acks = NULL;
}

size_t
fleet_subscribers(const struct fleet *f, const char *team, uint64_t id,
    const char *alias, hub_subscriber_cb cb, void *arg)
{
	const struct acks_remote	*x;
	struct hub_subscriber		 sub;
	size_t				 n = 0;

	for (x = f->acks->rem; x < f->acks->rem + f->acks->n_rem; x++) {
		if (!hub_filter_matches(&x->filter, team, id, alias))
			continue;
		memset(&sub, 0, sizeof(sub));
		sub.node = x->node;
		sub.name = x->name;
		sub.uid = (unsigned long)x->uid;
		sub.pid = (long)x->pid;
		sub.watch = x->watch;
		sub.filter = x->filter;
		sub.ack = x->acked ? &x->ack : NULL;
		cb(&sub, arg);
		n++;
	}
	return n;
}
