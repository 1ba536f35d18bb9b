/* SPDX-License-Identifier: MIT */
/*
 * Fleet key rotation (doc/fleet.md, "Keys"): `certctl rekey --fleet` on a
 * node whose [fleet] key is the new key (the old one in its keyring).
 *
 *  1. Every live node (P/nodes/, under their leases) must hold the new
 *     key, or nothing is done: a node that cannot open what is sealed
 *     from step 2 on would stop mirroring.
 *  2. P/meta/keys puts the new key's id first: from then on every write,
 *     on every node, seals with it (writes compare P/meta/keys).
 *  3. Every record is read, one at a time, page by page: the history
 *     keys sealed with another key are sealed again in place (in
 *     transactions of at most FLEET_REKEY_OPS puts), then the record
 *     itself, as a new version on top of the one it read, with its
 *     history key and trim, in one transaction.  Each compares the
 *     record's mod_revision with the one read: a record written meanwhile
 *     is read again.
 *  4. P/meta/keys lists the new key only.  The old key can leave the
 *     keyrings.
 *
 * Nothing stops: writes go on, each sealed with the key in force.  A
 * re-sealed record is a new revision, pushed to subscribers like any
 * write (certctl sync finds its files unchanged and does not reload).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "err.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_int.h"
#include "json.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "util.h"

#define FLEET_REKEY_PAGE	64	/* record ids listed at a time */
#define FLEET_REKEY_OPS		32	/* puts in one transaction: under
					   etcd's 1.5 MiB request limit */
#define FLEET_REKEY_TRIES	16	/* of one step that lost a race */

/* A key and value copied out of a reply. */
struct rekey_kv {
	char		*key;
	size_t		 key_len;
	unsigned char	*value;
	size_t		 value_len;
	uint64_t	 base;		/* a history key's */
};

struct fleet_rekey {
	struct fleet			*f;
	service_done_cb			 cb;
	void				*arg;
	const struct fleet_ringkey	*target;
	unsigned			 tries;
	uint64_t			 resealed;
	char				 from[FLEET_KEY_MAX];	/* next page */
	size_t				 flen;
	uint64_t			*ids;	/* this page's */
	size_t				 n_ids, next_id;
	/* the record in hand */
	struct rekey_kv			 rec;
	uint64_t			 mod;
	struct rekey_kv			*hist;
	size_t				 n_hist, next_hist;
	bool				 rec_sent;	/* its last txn */
	bool				 finishing;	/* step 4 */
	char				 why[256];
};

static void	rekey_list(struct fleet_rekey *k);
static void	rekey_page(struct fleet_rekey *k);
static void	rekey_record(struct fleet_rekey *k);
static void	rekey_history(struct fleet_rekey *k);

static void
rekey_kv_clear(struct rekey_kv *kv)
{
	free(kv->key);
	if (kv->value != NULL)
		util_wipe(kv->value, kv->value_len);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int
rekey_kv_copy(struct rekey_kv *dst, const struct etcd_kv *src)
{
	memset(dst, 0, sizeof(*dst));
	if ((dst->key = malloc(src->key_len + 1)) == NULL ||
	    (dst->value = malloc(src->value_len + 1)) == NULL) {
		free(dst->key);
		dst->key = NULL;
		return -1;
	}
	memcpy(dst->key, src->key, src->key_len);
	dst->key[src->key_len] = '\0';
	dst->key_len = src->key_len;
	memcpy(dst->value, src->value, src->value_len);
	dst->value_len = src->value_len;
	return 0;
}

static void
rekey_hist_clear(struct fleet_rekey *k)
{
	while (k->n_hist > 0)
		rekey_kv_clear(&k->hist[--k->n_hist]);
	free(k->hist);
	k->hist = NULL;
	k->next_hist = 0;
	rekey_kv_clear(&k->rec);
}

/* The rotation ends: the callback, then it goes. */
static void
rekey_end(struct fleet_rekey *k, int err, const char *why)
{
	struct fleet	*f = k->f;

	if (why != NULL)
		snprintf(k->why, sizeof(k->why), "%s", why);
	if (err == 0)
		log_info("fleet: key rotated: key id %s seals every record "
		    "(%" PRIu64 " re-sealed)", k->target->kid_hex, k->resealed);
	else
		log_error("fleet: key rotation to key id %s stopped: %s",
		    k->target->kid_hex, k->why);
	k->cb(err, NULL, k->arg);
	rekey_hist_clear(k);
	free(k->ids);
	free(k);
	f->rekey = NULL;
}

/* An etcd failure of a step: stop, saying what etcd said. */
static bool
rekey_failed(struct fleet_rekey *k, const struct etcd_reply *r)
{
	if (r->err == 0)
		return false;
	rekey_end(k, r->err == CERTD_ERR_SHUTDOWN ? CERTD_ERR_SHUTDOWN :
	    CERTD_ERR_CLUSTER, r->why);
	return true;
}

/* A step lost a race: again, a few times. */
static bool
rekey_retry(struct fleet_rekey *k)
{
	if (++k->tries < FLEET_REKEY_TRIES)
		return true;
	rekey_end(k, CERTD_ERR_CLUSTER, "the fleet kept changing under the "
	    "rotation: try again");
	return false;
}

/* Whether v (a record as etcd holds it) is sealed with the target. */
static bool
rekey_sealed_by_target(const struct fleet_rekey *k, const unsigned char *v,
    size_t len)
{
	return fleet_keys_sealer(k->f, v, len) == k->target;
}

/* ------------------------------------------------------------------ */
/* 1. Every live node holds the new key                                */

static void
rekey_nodes_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	struct json_tree	*t;
	const char		*node, *keys;
	char			 why[128], nbuf[65], kbuf[100];
	size_t			 i;
	bool			 holds;

	if (rekey_failed(k, r))
		return;
	for (i = 0; i < r->n_kvs; i++) {
		if ((t = json_tree_parse((const char *)r->kvs[i].value,
		    r->kvs[i].value_len, why, sizeof(why))) == NULL)
			continue;
		node = json_tree_str(json_tree_get(t, "node"));
		keys = json_tree_str(json_tree_get(t, "keys"));
		holds = keys != NULL && fleet_keys_listed(k->target->kid_hex,
		    (const unsigned char *)keys, strlen(keys));
		if (!holds) {
			snprintf(k->why, sizeof(k->why), "node %s does not "
			    "hold key %s (it holds %s): give it the key in "
			    "[fleet] key or keyring and restart it first",
			    node != NULL ? fleet_text((const unsigned char *)
			    node, strlen(node), nbuf, sizeof(nbuf)) : "?",
			    k->target->kid_hex, keys != NULL ? fleet_text(
			    (const unsigned char *)keys, strlen(keys), kbuf,
			    sizeof(kbuf)) : "nothing");
			json_tree_free(t);
			rekey_end(k, CERTD_ERR_CLUSTER, NULL);
			return;
		}
		json_tree_free(t);
	}
	k->tries = 0;
	rekey_list(k);
}

/* ------------------------------------------------------------------ */
/* 2. and 4. P/meta/keys                                               */

static void	rekey_listed_cb(const struct etcd_reply *r, void *arg);

/* P/meta/keys (mod_revision mod) := list, then rekey_listed_cb. */
static void
rekey_list_write(struct fleet_rekey *k, uint64_t mod, const char *list,
    size_t len)
{
	struct fleet	*f = k->f;
	struct etcd_txn	*t;
	char		 key[FLEET_KEY_MAX];
	size_t		 klen = fleet_key(f, key, sizeof(key), "/meta/keys");

	if ((t = etcd_txn_new()) == NULL) {
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
		return;
	}
	etcd_txn_cmp(t, ETCD_CMP_MOD, key, klen, mod);
	etcd_txn_put(t, false, key, klen, list, len);
	etcd_txn_range(t, true, key, klen);
	if (etcd_txn_commit(f->etcd, t, rekey_listed_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

/*
 * The list written (step 2: the target first; step 4: the target alone),
 * or changed meanwhile (a node added its key): from step 2 again.
 */
static void
rekey_listed_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;

	if (rekey_failed(k, r))
		return;
	if (!r->succeeded) {
		if (rekey_retry(k)) {
			k->finishing = false;
			rekey_list(k);
		}
		return;
	}
	k->f->seal = k->target;
	k->f->keys_rev = r->revision;
	if (k->finishing) {
		rekey_end(k, 0, NULL);
		return;
	}
	log_info("fleet: key id %s seals from now on; re-sealing the records",
	    k->target->kid_hex);
	k->tries = 0;
	k->flen = fleet_key(k->f, k->from, sizeof(k->from), "/r/");
	rekey_page(k);
}

static void
rekey_list_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	const struct etcd_kv	*kv;
	const unsigned char	*p, *end, *comma;
	char			 list[FLEET_RING_MAX * 64 + 64];
	size_t			 n, len;

	if (rekey_failed(k, r))
		return;
	if (r->n_kvs != 1) {
		rekey_end(k, CERTD_ERR_CLUSTER, "the fleet has no key list");
		return;
	}
	kv = &r->kvs[0];
	/* the target, then the others in their order */
	len = (size_t)snprintf(list, sizeof(list), "%s", k->target->kid_hex);
	for (p = kv->value, end = p + kv->value_len; p < end; p += n + 1) {
		comma = memchr(p, ',', (size_t)(end - p));
		n = (size_t)((comma != NULL ? comma : end) - p);
		if (n == strlen(k->target->kid_hex) &&
		    memcmp(p, k->target->kid_hex, n) == 0)
			continue;
		if (len + n + 2 > sizeof(list)) {
			rekey_end(k, CERTD_ERR_CLUSTER, "the fleet's key list "
			    "is too long");
			return;
		}
		list[len++] = ',';
		memcpy(list + len, p, n);
		len += n;
	}
	if (len == kv->value_len && memcmp(list, kv->value, len) == 0) {
		/* already first (a rotation that stopped half-way) */
		struct etcd_reply	again = *r;

		again.succeeded = true;
		again.revision = kv->mod_rev;
		rekey_listed_cb(&again, k);
		return;
	}
	rekey_list_write(k, kv->mod_rev, list, len);
}

static void
rekey_list(struct fleet_rekey *k)
{
	char	key[FLEET_KEY_MAX];
	size_t	klen = fleet_key(k->f, key, sizeof(key), "/meta/keys");

	if (etcd_range(k->f->etcd, key, klen, NULL, 0, 0, 0, 0,
	    rekey_list_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

/* 4. Every record is sealed with the target: the list is it alone. */
static void
rekey_finish(struct fleet_rekey *k)
{
	k->finishing = true;
	rekey_list_write(k, k->f->keys_rev, k->target->kid_hex,
	    strlen(k->target->kid_hex));
}

/* ------------------------------------------------------------------ */
/* 3. The records, page by page, one at a time                         */

static void
rekey_page_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	const struct etcd_kv	*kv;
	size_t			 i;
	uint64_t		 id;
	char			 hex[17], *end;

	if (rekey_failed(k, r))
		return;
	free(k->ids);
	k->n_ids = k->next_id = 0;
	if ((k->ids = calloc(r->n_kvs + 1, sizeof(*k->ids))) == NULL) {
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
		return;
	}
	for (i = 0; i < r->n_kvs; i++) {
		kv = &r->kvs[i];
		if (kv->key_len != k->f->plen + 3 + 16)
			continue;
		memcpy(hex, kv->key + k->f->plen + 3, 16);
		hex[16] = '\0';
		if ((id = strtoull(hex, &end, 16)) != 0 && *end == '\0')
			k->ids[k->n_ids++] = id;
	}
	if (r->n_kvs == 0 || !r->more) {
		k->flen = 0;	/* the last page */
	} else {
		/* the next page: from just after this one's last key */
		kv = &r->kvs[r->n_kvs - 1];
		if (kv->key_len + 1 > sizeof(k->from)) {
			rekey_end(k, CERTD_ERR_CLUSTER, "a key too long");
			return;
		}
		memcpy(k->from, kv->key, kv->key_len);
		k->from[kv->key_len] = '\0';
		k->flen = kv->key_len + 1;
	}
	rekey_record(k);
}

static void
rekey_page(struct fleet_rekey *k)
{
	char	to[FLEET_KEY_MAX];
	size_t	tlen = fleet_key(k->f, to, sizeof(to), "/r0");

	if (k->flen == 0) {
		rekey_finish(k);
		return;
	}
	if (etcd_range(k->f->etcd, k->from, k->flen, to, tlen, 0,
	    FLEET_REKEY_PAGE, ETCD_KEYS_ONLY, rekey_page_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

/* The record in hand is done: the next one, or the next page. */
static void
rekey_next(struct fleet_rekey *k)
{
	rekey_hist_clear(k);
	k->rec_sent = false;
	k->tries = 0;
	k->next_id++;
	rekey_record(k);
}

static void	rekey_commit(struct fleet_rekey *k);

static void
rekey_hist_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	size_t			 i, p = k->f->plen + 3 + 17;
	char			 hex[17], *end;

	if (rekey_failed(k, r))
		return;
	if (r->n_kvs > 0 &&
	    (k->hist = calloc(r->n_kvs, sizeof(*k->hist))) == NULL) {
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
		return;
	}
	for (i = 0; i < r->n_kvs; i++) {
		if (r->kvs[i].key_len != p + 16)
			continue;
		if (rekey_kv_copy(&k->hist[k->n_hist], &r->kvs[i]) != 0) {
			rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
			return;
		}
		memcpy(hex, r->kvs[i].key + p, 16);
		hex[16] = '\0';
		k->hist[k->n_hist++].base = strtoull(hex, &end, 16);
	}
	rekey_history(k);
}

static void
rekey_rec_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	char			 lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t			 llen, hlen;
	uint64_t		 id = k->ids[k->next_id];

	if (rekey_failed(k, r))
		return;
	if (r->n_kvs != 1) {		/* deleted meanwhile */
		rekey_next(k);
		return;
	}
	if (rekey_kv_copy(&k->rec, &r->kvs[0]) != 0) {
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
		return;
	}
	k->mod = r->kvs[0].mod_rev;
	/* read after the record: a write in between fails the compare */
	llen = fleet_key(k->f, lo, sizeof(lo), "/h/%016" PRIx64 "/", id);
	hlen = fleet_key(k->f, hi, sizeof(hi), "/h/%016" PRIx64 "0", id);
	if (etcd_range(k->f->etcd, lo, llen, hi, hlen, 0, 0, 0,
	    rekey_hist_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

static void
rekey_record(struct fleet_rekey *k)
{
	char	key[FLEET_KEY_MAX];
	size_t	klen;

	if (k->next_id >= k->n_ids) {
		rekey_page(k);
		return;
	}
	klen = fleet_key(k->f, key, sizeof(key), "/r/%016" PRIx64,
	    k->ids[k->next_id]);
	if (etcd_range(k->f->etcd, key, klen, NULL, 0, 0, 0, 0, rekey_rec_cb,
	    k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

static void
rekey_step_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet_rekey	*k = arg;
	const struct etcd_kv	*kv;
	const unsigned char	*comma;
	size_t			 n;

	if (rekey_failed(k, r))
		return;
	if (!r->succeeded && (kv = fleet_keys_kv(k->f, r)) != NULL &&
	    kv->mod_rev != k->f->keys_rev) {
		/* the list changed: another rotation, or a node's key added */
		comma = memchr(kv->value, ',', kv->value_len);
		n = comma != NULL ? (size_t)(comma - kv->value) :
		    kv->value_len;
		if (n != strlen(k->target->kid_hex) ||
		    memcmp(kv->value, k->target->kid_hex, n) != 0) {
			rekey_end(k, CERTD_ERR_CLUSTER, "another rotation put "
			    "another key first: this one stops");
			return;
		}
		k->f->keys_rev = kv->mod_rev;
	}
	if (!r->succeeded) {
		/* written meanwhile: read it again */
		rekey_hist_clear(k);
		k->rec_sent = false;
		if (rekey_retry(k))
			rekey_record(k);
		return;
	}
	if (!k->rec_sent) {
		rekey_history(k);	/* more history, then the record */
		return;
	}
	k->resealed++;
	rekey_next(k);
}

/* v sealed again with the target, bound to rev, into a put of t. */
static int
rekey_put(struct fleet_rekey *k, struct etcd_txn *t, const char *key,
    size_t klen, const unsigned char *v, size_t vlen, uint64_t rev)
{
	struct cert_record	*rec;
	char			*buf;
	size_t			 len;
	int			 err;

	if ((err = fleet_keys_open(k->f, v, vlen, &rec, NULL)) != 0) {
		snprintf(k->why, sizeof(k->why), "%s does not open with a key "
		    "of this node", key);
		return err;
	}
	err = fleet_keys_seal_by(k->target, rec, rev, &buf, &len);
	record_free(rec);
	if (err != 0)
		return err;
	etcd_txn_put(t, false, key, klen, buf, len);
	util_wipe(buf, len);
	free(buf);
	return 0;
}

/* The compare every step of a record makes: its version is the one read. */
static struct etcd_txn *
rekey_txn(struct fleet_rekey *k)
{
	struct etcd_txn	*t;
	char		 key[FLEET_KEY_MAX];
	size_t		 klen = fleet_key(k->f, key, sizeof(key),
			    "/r/%016" PRIx64, k->ids[k->next_id]);

	if ((t = etcd_txn_new()) != NULL) {
		etcd_txn_cmp(t, ETCD_CMP_MOD, key, klen, k->mod);
		/* the list still puts the target first */
		fleet_keys_cmp(k->f, t);
	}
	return t;
}

/* The history keys sealed with another key, in place, a batch at a time. */
static void
rekey_history(struct fleet_rekey *k)
{
	struct etcd_txn		*t = NULL;
	const struct rekey_kv	*h;
	size_t			 n = 0;

	for (; k->next_hist < k->n_hist && n < FLEET_REKEY_OPS;
	    k->next_hist++) {
		h = &k->hist[k->next_hist];
		if (rekey_sealed_by_target(k, h->value, h->value_len))
			continue;
		if ((t == NULL && (t = rekey_txn(k)) == NULL) ||
		    rekey_put(k, t, h->key, h->key_len, h->value,
		    h->value_len, h->base) != 0) {
			etcd_txn_free(t);
			rekey_end(k, CERTD_ERR_CLUSTER, k->why[0] != '\0' ?
			    NULL : "out of memory");
			return;
		}
		n++;
	}
	if (t == NULL) {
		rekey_commit(k);
		return;
	}
	if (etcd_txn_commit(k->f->etcd, t, rekey_step_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

/*
 * The record, sealed again as a new version on the one read, with its
 * history key and the history trimmed to history_keep, as a write does
 * (fleet.c, fleet_history_ops); a record already sealed with the target
 * is left alone.
 */
static void
rekey_commit(struct fleet_rekey *k)
{
	struct fleet	*f = k->f;
	struct etcd_txn	*t;
	uint64_t	 id = k->ids[k->next_id], keep, cut;
	char		 hkey[FLEET_KEY_MAX], lo[FLEET_KEY_MAX];
	size_t		 hlen, llen, idx;

	if (rekey_sealed_by_target(k, k->rec.value, k->rec.value_len)) {
		rekey_next(k);
		return;
	}
	hlen = fleet_key(f, hkey, sizeof(hkey), "/h/%016" PRIx64 "/%016"
	    PRIx64, id, k->mod);
	if ((t = rekey_txn(k)) == NULL ||
	    rekey_put(k, t, k->rec.key, k->rec.key_len, k->rec.value,
	    k->rec.value_len, k->mod) != 0 ||
	    rekey_put(k, t, hkey, hlen, k->rec.value, k->rec.value_len,
	    k->mod) != 0) {
		etcd_txn_free(t);
		rekey_end(k, CERTD_ERR_CLUSTER, k->why[0] != '\0' ? NULL :
		    "out of memory");
		return;
	}
	keep = store_history_keep(f->store);
	if (k->n_hist + 1 > keep) {
		idx = k->n_hist + 1 - keep;
		cut = idx < k->n_hist ? k->hist[idx].base : k->mod;
		llen = fleet_key(f, lo, sizeof(lo), "/h/%016" PRIx64 "/", id);
		hlen = fleet_key(f, hkey, sizeof(hkey), "/h/%016" PRIx64
		    "/%016" PRIx64, id, cut);
		etcd_txn_delete_range(t, lo, llen, hkey, hlen);
	}
	k->next_hist = k->n_hist;
	k->rec_sent = true;
	if (etcd_txn_commit(f->etcd, t, rekey_step_cb, k) != 0)
		rekey_end(k, CERTD_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ */
/* The start                                                           */

int
fleet_rekey(struct fleet *f, service_done_cb cb, void *arg)
{
	struct fleet_rekey	*k;
	char			 lo[FLEET_KEY_MAX], hi[FLEET_KEY_MAX];
	size_t			 llen, hlen;

	if (f->rekey != NULL) {
		snprintf(f->why, sizeof(f->why), "a key rotation is running");
		return CERTD_ERR_CLUSTER;
	}
	if (f->state != FLEET_UP) {
		snprintf(f->why, sizeof(f->why), "not in step with etcd");
		return CERTD_ERR_CLUSTER;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return CERTD_ERR_NOMEM;
	k->f = f;
	k->cb = cb;
	k->arg = arg;
	k->target = &f->ring[0];
	f->rekey = k;
	log_info("fleet: key rotation to key id %s (this node's [fleet] key)",
	    k->target->kid_hex);
	llen = fleet_key(f, lo, sizeof(lo), "/nodes/");
	hlen = fleet_key(f, hi, sizeof(hi), "/nodes0");
	if (etcd_range(f->etcd, lo, llen, hi, hlen, 0, 0, 0, rekey_nodes_cb,
	    k) != 0) {
		free(k);
		f->rekey = NULL;
		return CERTD_ERR_NOMEM;
	}
	return 0;
}

const char *
fleet_rekey_why(const struct fleet *f)
{
	if (f->rekey != NULL)
		return f->rekey->why[0] != '\0' ? f->rekey->why : NULL;
	return f->why[0] != '\0' ? f->why : NULL;
}

const char *
fleet_key_id(const struct fleet *f)
{
	return f->ring[0].kid_hex;
}
