/* SPDX-License-Identifier: MIT */
/*
 * Fleet mode (fleet.h, doc/fleet.md): the fleet key, the connection's
 * state, and the writes.  fleet_mirror.c keeps the store in step with
 * etcd.
 *
 * A write is one etcd transaction that compares what it builds on:
 *   create  the alias key absent; puts P/r/<id>, P/a/<team>/<alias>.  The
 *           id is this node's: it takes them from P/next_id FLEET_ID_BLOCK
 *           at a time, by a transaction compared on its mod_revision
 *           (fleet_ids_take), so that creates do not contend on it
 *   update  P/r/<id>'s mod_revision (the version it merged onto); a
 *           rename also the new alias key absent, and moves the alias
 *   delete  P/r/<id>'s mod_revision; deletes it and its alias
 * When a compare fails the failure branch reads the keys compared, and
 * the write is tried again on what it found (an update on the version
 * another writer made: both stay in history, in commit order), or ends: the alias is another certificate's (412), the
 * certificate is gone (404).  A committed write completes once the
 * mirror has applied its revision, so the node that took it reads it
 * back at once.
 *
 * Records in etcd are record_encode's, the key sealed under the fleet key
 * with the record's team, id and "rev" as associated data; "rev" is the
 * revision the write built on (0 for a create), which the compare makes
 * unique to this write.  etcd never sees a key in clear.
 */
#include <sys/queue.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "certd/constants.h"
#include "cert.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_int.h"
#include "log.h"
#include "perm.h"
#include "record.h"
#include "store.h"
#include "util.h"

#define FLEET_TRIES		16	/* a write's transactions at most */
#define FLEET_MIRROR_WAIT_S	10	/* a committed write waits for the mirror */

/* ------------------------------------------------------------------ */
/* Keys of the keyspace                                                */

/*
 * At most len - 1 bytes of text read from etcd into buf, for a message:
 * what is not printable ASCII becomes '?', so that no line of the log is
 * forged by whoever may write etcd.
 */
const char *
fleet_text(const unsigned char *p, size_t n, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < n && i + 1 < len; i++)
		buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* prefix + suffix into buf, NUL-terminated; its length, or 0 if too long. */
size_t
fleet_key(const struct fleet *f, char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (f->plen >= len)
		return 0;
	memcpy(buf, f->prefix, f->plen);
	va_start(ap, fmt);
	n = vsnprintf(buf + f->plen, len - f->plen, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len - f->plen ? 0 : f->plen + (size_t)n;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

enum fleet_op_kind { FLEET_PUT, FLEET_DELETE };

struct fleet_op {
	TAILQ_ENTRY(fleet_op)	 entry;
	struct fleet		*f;
	enum fleet_op_kind	 kind;
	struct cert_record	*rec;		/* put: as written; delete: gone */
	uint64_t		 base_rev;	/* 0: a create */
	char			*old_alias;	/* update: the alias at base */
	bool			 wants_id;	/* a create waiting for a block */
	unsigned		 tries;
	uint64_t		 revision;	/* committed at */
	struct event		*timer;		/* the wait for the mirror */
	service_done_cb		 cb;
	void			*arg;
};

static void	fleet_op_step(struct fleet_op *op);

static void
fleet_op_free(struct fleet_op *op)
{
	TAILQ_REMOVE(&op->f->ops, op, entry);
	if (op->timer != NULL)
		event_free(op->timer);
	record_free(op->rec);
	free(op->old_alias);
	free(op);
}

/* The write ends: its callback, then it goes. */
static void
fleet_op_end(struct fleet_op *op, int err)
{
	if (err == 0 && op->kind == FLEET_PUT)
		op->rec->revision = op->revision;
	op->cb(err, err == 0 ? op->rec : NULL, op->arg);
	fleet_op_free(op);
}

/* An etcd error as a write's: cluster unavailable, or no memory. */
static int
fleet_etcd_err(const struct fleet *f, const struct etcd_reply *r)
{
	if (r->err == CERTD_ERR_SHUTDOWN || f->stopping)
		return CERTD_ERR_SHUTDOWN;
	log_warn("fleet: write failed: %s", r->why);
	return r->err == CERTD_ERR_NOMEM ? CERTD_ERR_NOMEM : CERTD_ERR_CLUSTER;
}

static void
fleet_op_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fleet_op	*op = arg;

	(void)fd;
	(void)what;
	log_warn("fleet: revision %" PRIu64 " committed, but the mirror has "
	    "not applied it after %d s: answered all the same",
	    op->revision, FLEET_MIRROR_WAIT_S);
	fleet_op_end(op, 0);
}

/* Committed at revision: wait until the mirror has it. */
static void
fleet_op_committed(struct fleet_op *op, uint64_t revision)
{
	struct timeval	tv = { FLEET_MIRROR_WAIT_S, 0 };

	op->revision = revision;
	if (store_revision(op->f->store) >= revision) {
		fleet_op_end(op, 0);
		return;
	}
	if ((op->timer = evtimer_new(op->f->base, fleet_op_timeout, op)) ==
	    NULL || evtimer_add(op->timer, &tv) != 0)
		fleet_op_end(op, 0);	/* committed: say so now */
}

void
fleet_applied(struct fleet *f, uint64_t revision)
{
	struct fleet_op	*op, *next;

	for (op = TAILQ_FIRST(&f->ops); op != NULL; op = next) {
		next = TAILQ_NEXT(op, entry);
		if (op->revision != 0 && op->revision <= revision)
			fleet_op_end(op, 0);
	}
	fleet_mirror_applied(f, revision);
}

/* The kv of key (klen bytes) in r's kvs, or NULL. */
static const struct etcd_kv *
fleet_kv(const struct etcd_reply *r, const char *key, size_t klen)
{
	size_t	i;

	for (i = 0; i < r->n_kvs; i++)
		if (r->kvs[i].key_len == klen &&
		    memcmp(r->kvs[i].key, key, klen) == 0)
			return &r->kvs[i];
	return NULL;
}

/* A transaction's answer: committed, or compares that failed. */
static void
fleet_op_txn_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_op		*op = arg;
	struct fleet		*f = op->f;
	const struct etcd_kv	*kv;
	char			 rkey[FLEET_KEY_MAX], akey[FLEET_KEY_MAX];
	size_t			 rlen, alen;
	uint64_t		 owner;

	if (r->err != 0) {
		fleet_op_end(op, fleet_etcd_err(f, r));
		return;
	}
	if (r->succeeded) {
		fleet_op_committed(op, r->revision);
		return;
	}
	/* the fleet's key list changed: seal with what it says now */
	if ((kv = fleet_keys_kv(f, r)) != NULL && kv->mod_rev != f->keys_rev &&
	    fleet_keys_update(f, kv) != 0) {
		fleet_op_end(op, CERTD_ERR_CLUSTER);
		return;
	}
	rlen = fleet_key(f, rkey, sizeof(rkey), "/r/%016" PRIx64, op->rec->id);
	alen = fleet_key(f, akey, sizeof(akey), "/a/%s/%s", op->rec->team,
	    op->rec->alias);
	/* the alias is another certificate's */
	if (op->kind == FLEET_PUT &&
	    (kv = fleet_kv(r, akey, alen)) != NULL &&
	    (util_parse_u64((const char *)kv->value, kv->value_len,
	    UINT64_MAX, &owner)
	    != 0 || owner != op->rec->id)) {
		fleet_op_end(op, CERTD_ERR_ALIAS_EXISTS);
		return;
	}
	if (op->base_rev != 0) {
		/* an update or delete: gone, or built on what is there now */
		if ((kv = fleet_kv(r, rkey, rlen)) == NULL) {
			fleet_op_end(op, CERTD_ERR_NOT_FOUND);
			return;
		}
		op->base_rev = kv->mod_rev;
	}
	if (++op->tries >= FLEET_TRIES) {
		fleet_op_end(op, CERTD_ERR_CLUSTER);
		return;
	}
	fleet_op_step(op);
}

/* Counts versions, newest first, to the keep-th: its revision. */
struct fleet_cut {
	uint64_t	keep, seen, rev;
};

static int
fleet_cut_one(const struct cert_record *rec, void *arg)
{
	struct fleet_cut	*c = arg;

	if (++c->seen < c->keep)
		return 0;
	c->rev = rec->revision;
	return 1;
}

/*
 * The history ops of op's write (doc/fleet.md): the version as
 * P/h/<id>/<base_rev> (its revision is that key's mod_revision), and the
 * versions beyond the store's history_keep dropped.  With the version
 * written, the keep newest are it and the keep - 1 newest before it; the
 * oldest of those is keyed by the revision of the keep-th newest before
 * it, cut, and every key below cut goes.  A delete drops them all.
 */
static void
fleet_history_ops(struct fleet_op *op, struct etcd_txn *t, const char *val,
    size_t vlen)
{
	struct fleet		*f = op->f;
	const struct cert_record *rec = op->rec;
	struct fleet_cut	 cut = { store_history_keep(f->store), 0, 0 };
	char			 lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t			 llen, hlen;

	llen = fleet_key(f, lo, sizeof(lo), "/h/%016" PRIx64 "/", rec->id);
	if (op->kind == FLEET_DELETE) {
		hlen = fleet_key(f, hi, sizeof(hi), "/h/%016" PRIx64 "0",
		    rec->id);
		etcd_txn_delete_range(t, lo, llen, hi, hlen);
		return;
	}
	hlen = fleet_key(f, hi, sizeof(hi), "/h/%016" PRIx64 "/%016" PRIx64,
	    rec->id, op->base_rev);
	etcd_txn_put(t, false, hi, hlen, val, vlen);
	if (op->base_rev == 0 || store_history(f->store, rec->team, rec->id,
	    fleet_cut_one, &cut) != 0 || cut.rev == 0)
		return;
	hlen = fleet_key(f, hi, sizeof(hi), "/h/%016" PRIx64 "/%016" PRIx64,
	    rec->id, cut.rev);
	etcd_txn_delete_range(t, lo, llen, hi, hlen);
}

/* The transaction of op, on base_rev (0: a create). */
static int
fleet_op_txn(struct fleet_op *op)
{
	struct fleet		*f = op->f;
	struct cert_record	*rec = op->rec;
	struct etcd_txn		*t;
	char			 rkey[FLEET_KEY_MAX], akey[FLEET_KEY_MAX];
	char			 okey[FLEET_KEY_MAX];
	char			 idbuf[24], *val = NULL;
	size_t			 rlen, alen, olen = 0, vlen;
	bool			 rename;
	int			 err;

	rlen = fleet_key(f, rkey, sizeof(rkey), "/r/%016" PRIx64, rec->id);
	alen = fleet_key(f, akey, sizeof(akey), "/a/%s/%s", rec->team,
	    rec->alias);
	rename = op->old_alias != NULL && strcmp(op->old_alias, rec->alias) != 0;
	if (op->old_alias != NULL)
		olen = fleet_key(f, okey, sizeof(okey), "/a/%s/%s", rec->team,
		    op->old_alias);
	if (rlen == 0 || alen == 0 ||
	    (op->old_alias != NULL && olen == 0))
		return CERTD_ERR_BAD_REQUEST;	/* names too long for a key */
	if ((t = etcd_txn_new()) == NULL)
		return CERTD_ERR_NOMEM;
	fleet_keys_cmp(f, t);	/* sealed with the fleet's sealing key */
	if (op->kind == FLEET_DELETE) {
		etcd_txn_cmp(t, ETCD_CMP_MOD, rkey, rlen, op->base_rev);
		etcd_txn_delete(t, false, rkey, rlen);
		etcd_txn_delete(t, false, akey, alen);
		fleet_history_ops(op, t, NULL, 0);
		etcd_txn_range(t, true, rkey, rlen);
		return etcd_txn_commit(f->etcd, t, fleet_op_txn_cb, op);
	}
	if ((err = fleet_keys_seal(f, rec, op->base_rev, &val, &vlen)) != 0) {
		etcd_txn_free(t);
		return err;
	}
	/* a create's id is this node's own (fleet_ids_take): no compare */
	if (op->base_rev != 0)
		etcd_txn_cmp(t, ETCD_CMP_MOD, rkey, rlen, op->base_rev);
	if (op->base_rev == 0 || rename)
		etcd_txn_cmp(t, ETCD_CMP_CREATE, akey, alen, 0);
	etcd_txn_put(t, false, rkey, rlen, val, vlen);
	if (op->base_rev == 0 || rename) {
		snprintf(idbuf, sizeof(idbuf), "%" PRIu64, rec->id);
		etcd_txn_put(t, false, akey, alen, idbuf, strlen(idbuf));
	}
	if (rename)
		etcd_txn_delete(t, false, okey, olen);
	fleet_history_ops(op, t, val, vlen);
	etcd_txn_range(t, true, rkey, rlen);
	etcd_txn_range(t, true, akey, alen);
	util_wipe(val, vlen);	/* sealed; wiped all the same */
	free(val);
	return etcd_txn_commit(f->etcd, t, fleet_op_txn_cb, op);
}

static void	fleet_ids_take(struct fleet *f);

/* Creates waiting for an id go on, or fail with err. */
static void
fleet_ids_wake(struct fleet *f, int err)
{
	struct fleet_op	*op, *next;

	for (op = TAILQ_FIRST(&f->ops); op != NULL; op = next) {
		next = TAILQ_NEXT(op, entry);
		if (!op->wants_id)
			continue;
		op->wants_id = false;
		if (err != 0)
			fleet_op_end(op, err);
		else
			fleet_op_step(op);
	}
}

/* The block's transaction answered: ours, or taken by another node. */
static void
fleet_ids_txn_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet	*f = arg;

	f->id_busy = false;
	if (r->err != 0) {
		fleet_ids_wake(f, fleet_etcd_err(f, r));
		return;
	}
	if (!r->succeeded) {
		fleet_ids_take(f);	/* another node took it: the next */
		return;
	}
	f->id_next = f->id_end - FLEET_ID_BLOCK;
	fleet_ids_wake(f, 0);
}

/* P/next_id read: take the block from it, compared on its mod_revision. */
static void
fleet_ids_read_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet	*f = arg;
	struct etcd_txn	*t;
	char		 nkey[FLEET_KEY_MAX], buf[24];
	size_t		 nlen = fleet_key(f, nkey, sizeof(nkey), "/next_id");
	uint64_t	 id = 1, mod = 0;

	if (r->err != 0) {
		f->id_busy = false;
		fleet_ids_wake(f, fleet_etcd_err(f, r));
		return;
	}
	if (r->n_kvs == 1) {
		if (util_parse_u64((const char *)r->kvs[0].value,
		    r->kvs[0].value_len, UINT64_MAX - FLEET_ID_BLOCK, &id) != 0 ||
		    id == 0) {
			log_error("fleet: %s/next_id holds no id", f->prefix);
			f->id_busy = false;
			fleet_ids_wake(f, CERTD_ERR_INTERNAL);
			return;
		}
		mod = r->kvs[0].mod_rev;
	}
	f->id_end = id + FLEET_ID_BLOCK;	/* id_next follows on success */
	snprintf(buf, sizeof(buf), "%" PRIu64, f->id_end);
	if ((t = etcd_txn_new()) == NULL) {
		f->id_busy = false;
		fleet_ids_wake(f, CERTD_ERR_NOMEM);
		return;
	}
	etcd_txn_cmp(t, ETCD_CMP_MOD, nkey, nlen, mod);	/* 0: absent */
	etcd_txn_put(t, false, nkey, nlen, buf, strlen(buf));
	if (etcd_txn_commit(f->etcd, t, fleet_ids_txn_cb, f) != 0) {
		f->id_busy = false;
		fleet_ids_wake(f, CERTD_ERR_NOMEM);
	}
}

/*
 * Take the next block of FLEET_ID_BLOCK ids from P/next_id: creates on
 * this node then need no compare on it, and nodes contend once a block.
 */
static void
fleet_ids_take(struct fleet *f)
{
	char	nkey[FLEET_KEY_MAX];
	size_t	nlen = fleet_key(f, nkey, sizeof(nkey), "/next_id");

	f->id_busy = true;
	f->id_next = f->id_end = 0;
	if (etcd_range(f->etcd, nkey, nlen, NULL, 0, 0, 0, 0, fleet_ids_read_cb,
	    f) != 0) {
		f->id_busy = false;
		fleet_ids_wake(f, CERTD_ERR_NOMEM);
	}
}

/* The next try of op: a create first takes an id of this node's block. */
static void
fleet_op_step(struct fleet_op *op)
{
	struct fleet	*f = op->f;
	int		 err;

	if (op->kind == FLEET_PUT && op->rec->id == 0) {
		if (f->id_next == 0 || f->id_next >= f->id_end) {
			op->wants_id = true;
			if (!f->id_busy)
				fleet_ids_take(f);
			return;
		}
		op->rec->id = f->id_next++;
	}
	if ((err = fleet_op_txn(op)) != 0)
		fleet_op_end(op, err);
}

static struct fleet_op *
fleet_op_new(struct fleet *f, enum fleet_op_kind kind, uint64_t base_rev,
    service_done_cb cb, void *arg)
{
	struct fleet_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->f = f;
	op->kind = kind;
	op->base_rev = base_rev;
	op->cb = cb;
	op->arg = arg;
	TAILQ_INSERT_TAIL(&f->ops, op, entry);
	return op;
}

/* Writes need a fleet whose key was checked; etcd may be away. */
static int
fleet_writable(const struct fleet *f)
{
	return f->key_checked ? 0 : CERTD_ERR_CLUSTER;
}

int
fleet_put(struct fleet *f, struct cert_record *rec, uint64_t base_rev,
    service_done_cb cb, void *arg)
{
	const struct store_meta	*m;
	struct fleet_op		*op;
	int			 err;

	if ((err = fleet_writable(f)) != 0 ||
	    (op = fleet_op_new(f, FLEET_PUT, base_rev, cb, arg)) == NULL) {
		record_free(rec);
		return err != 0 ? err : CERTD_ERR_NOMEM;
	}
	op->rec = rec;
	if (base_rev != 0) {
		if ((m = store_head_meta(f->store, rec->team, rec->id)) ==
		    NULL || (op->old_alias = strdup(m->alias)) == NULL) {
			fleet_op_free(op);
			return m == NULL ? CERTD_ERR_NOT_FOUND : CERTD_ERR_NOMEM;
		}
	}
	/* cb never runs inside this call: the first step is a request */
	fleet_op_step(op);
	return 0;
}

int
fleet_delete(struct fleet *f, const char *team, uint64_t id,
    const char *alias, uint64_t base_rev, service_done_cb cb, void *arg)
{
	struct fleet_op	*op;
	int		 err;

	if ((err = fleet_writable(f)) != 0)
		return err;
	if ((op = fleet_op_new(f, FLEET_DELETE, base_rev, cb, arg)) == NULL ||
	    (op->rec = record_new()) == NULL ||
	    (op->rec->team = strdup(team)) == NULL ||
	    (op->rec->alias = strdup(alias)) == NULL) {
		if (op != NULL)
			fleet_op_free(op);
		return CERTD_ERR_NOMEM;
	}
	op->rec->id = id;
	fleet_op_step(op);
	return 0;
}

/* ------------------------------------------------------------------ */
/* State, retries                                                      */

static void
fleet_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fleet	*f = arg;

	(void)fd;
	(void)what;
	fleet_connect(f);
}

void
fleet_down(struct fleet *f, const char *why)
{
	struct timeval	tv;

	if (f->stopping)
		return;
	if (f->state != FLEET_DOWN) {
		log_warn("fleet: etcd out of reach (%s): serving from this "
		    "host's mirror, writes refused until it is back", why);
		f->state = FLEET_DOWN;
		f->since = (int64_t)time(NULL);
	}
	f->backoff_ms = f->backoff_ms == 0 ? FLEET_BACKOFF_MIN_MS :
	    f->backoff_ms * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS :
	    f->backoff_ms * 2;
	tv.tv_sec = f->backoff_ms / 1000;
	tv.tv_usec = (f->backoff_ms % 1000) * 1000;
	evtimer_add(f->retry, &tv);
}

void
fleet_up(struct fleet *f)
{
	if (f->state != FLEET_UP) {
		log_info("fleet: up, mirror at revision %" PRIu64,
		    store_revision(f->store));
		f->state = FLEET_UP;
		f->since = (int64_t)time(NULL);
	}
	f->backoff_ms = 0;
	fleet_acks_start(f);
}

/* (Re)connect: the key ids first, then the mirror. */
void
fleet_connect(struct fleet *f)
{
	/* down stays down (and logged once) until etcd answers */
	if (f->fatal)
		return;
	/* the keys again: they may have rotated while etcd was away */
	fleet_keys_read(f);
}

const char *
fleet_state(const struct fleet *f, int64_t *since)
{
	*since = f->since;
	switch (f->state) {
	case FLEET_UP:
		return "up";
	case FLEET_CONNECTING:
	case FLEET_SYNCING:
		return "syncing";
	default:
		return "disconnected";
	}
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

/*
 * The etcd client key opens etcd to whoever reads it (every record, the
 * fleet's writes): owned by root or certd's user, nothing for group or
 * others, as the master key.  libcurl reads it by name afterwards.
 */
static int
fleet_key_file_ok(const char *path, char *err, size_t errlen)
{
	int	fd;

	if ((fd = perm_openat(AT_FDCWD, path, path, "etcd client key",
	    O_RDONLY, 0, PERM_OWNER_ROOT | PERM_PRIVATE, err, errlen)) < 0)
		return -1;
	close(fd);
	return 0;
}

struct fleet *
fleet_new(struct event_base *base, struct store *store,
    const struct fleet_options *o, char *err, size_t errlen)
{
	struct fleet	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->base = base;
	f->store = store;
	TAILQ_INIT(&f->ops);
	f->state = FLEET_CONNECTING;
	f->since = (int64_t)time(NULL);
	if ((f->prefix = strdup(o->prefix)) == NULL ||
	    (f->node = strdup(o->node)) == NULL ||
	    (f->key_path = strdup(o->key_path)) == NULL ||
	    (f->retry = evtimer_new(base, fleet_retry_cb, f)) == NULL ||
	    fleet_acks_new(f) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	f->plen = strlen(f->prefix);
	if (f->plen == 0 || f->prefix[0] != '/' ||
	    f->prefix[f->plen - 1] == '/' || f->plen > FLEET_PREFIX_MAX) {
		snprintf(err, errlen, "etcd prefix %s: want /NAME, at most %d "
		    "bytes, no / at the end", f->prefix, FLEET_PREFIX_MAX);
		goto fail;
	}
	if (fleet_keys_load(f, o->key_path, o->keyring, err, errlen) != 0)
		goto fail;
	if ((o->tls.cert == NULL) != (o->tls.key == NULL)) {
		snprintf(err, errlen, "[fleet] cert and key_file (--etcd-cert, "
		    "--etcd-key) go together: the client certificate and its "
		    "key");
		goto fail;
	}
	if (o->tls.key != NULL && fleet_key_file_ok(o->tls.key, err,
	    errlen) != 0)
		goto fail;
	if ((f->etcd = etcd_new(base, o->etcd, FLEET_ETCD_TIMEOUT_MS,
	    &o->tls, err, errlen)) == NULL)
		goto fail;
	return f;
fail:
	fleet_free(f);
	return NULL;
}

int
fleet_start(struct fleet *f, unsigned timeout_s, char *err, size_t errlen)
{
	time_t	t0 = time(NULL);

	fleet_connect(f);
	while (!f->fatal && f->state != FLEET_UP &&
	    time(NULL) - t0 < (time_t)timeout_s)
		event_base_loop(f->base, EVLOOP_ONCE);
	if (f->fatal) {
		snprintf(err, errlen, "%s", f->why);
		return -1;
	}
	if (f->state != FLEET_UP)
		log_warn("fleet: not in step with etcd after %u s: serving "
		    "from this host's mirror (revision %" PRIu64 ") meanwhile",
		    timeout_s, store_revision(f->store));
	return 0;
}

void
fleet_free(struct fleet *f)
{
	struct fleet_op	*op;

	if (f == NULL)
		return;
	/* requests in flight complete first, shutting down: nothing new */
	f->stopping = true;
	fleet_mirror_stop(f);
	fleet_acks_stop(f);
	etcd_free(f->etcd);
	fleet_acks_free(f);
	while ((op = TAILQ_FIRST(&f->ops)) != NULL)
		fleet_op_end(op, CERTD_ERR_SHUTDOWN);
	if (f->retry != NULL)
		event_free(f->retry);
	fleet_keys_wipe(f);
	free(f->prefix);
	free(f->node);
	free(f->key_path);
	free(f);
}
