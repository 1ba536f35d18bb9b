/* SPDX-License-Identifier: MIT */
/*
 * The fleet's keys (doc/fleet.md, "Keys"): the keyring a node holds, the
 * key ids etcd lists in P/meta/keys, and sealing and opening records with
 * them.
 *
 * A node holds its [fleet] key (ring[0]) and the keys of its keyring.
 * P/meta/keys lists the fleet's key ids, comma-separated; the first is
 * the sealing key: every record is sealed with it, and a node must hold
 * it to start.  A node whose own key is not listed yet adds it at the end
 * (it holds the sealing key, so it is of the fleet): the first step of a
 * rotation.  Every write compares P/meta/keys' mod_revision with the one
 * the node last read, so a write is never sealed with a key the fleet has
 * stopped sealing with; a write that finds the list changed reads it
 * again (fleet_keys_update) and is tried again.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "cert.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_int.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "util.h"

#define FLEET_KID_HEX	(2 * RECORD_KEY_ID_LEN)

/* One key file into the ring; err says why not. */
static int
fleet_ring_add(struct fleet *f, const char *path, const char *what,
    char *err, size_t errlen)
{
	struct fleet_ringkey	*k;
	unsigned char		 hash[32];
	size_t			 i;

	if (f->n_ring == FLEET_RING_MAX) {
		snprintf(err, errlen, "more than %d fleet keys",
		    FLEET_RING_MAX);
		return -1;
	}
	k = &f->ring[f->n_ring];
	if (store_key_file_read(path, what, k->key, err, errlen) != 0)
		return -1;
	/* its id as a master key's: the first bytes of its SHA-256 */
	if (cert_sha256(k->key, sizeof(k->key), hash) != 0) {
		snprintf(err, errlen, "cannot hash the fleet key %s", path);
		return -1;
	}
	memcpy(k->kid, hash, sizeof(k->kid));
	util_hex(k->kid, sizeof(k->kid), k->kid_hex);
	for (i = 0; i < f->n_ring; i++)
		if (memcmp(f->ring[i].kid, k->kid, sizeof(k->kid)) == 0) {
			snprintf(err, errlen, "fleet key %s is there twice "
			    "(key id %s)", path, k->kid_hex);
			return -1;
		}
	f->n_ring++;
	return 0;
}

int
fleet_keys_load(struct fleet *f, const char *key_path, const char *keyring,
    char *err, size_t errlen)
{
	const char	*p, *comma;
	char		 path[4096];
	size_t		 len;

	if (fleet_ring_add(f, key_path, "fleet key", err, errlen) != 0)
		return -1;
	for (p = keyring; p != NULL && *p != '\0'; p = comma + 1) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(path)) {
			snprintf(err, errlen, "[fleet] keyring: want "
			    "FILE[,FILE]");
			return -1;
		}
		memcpy(path, p, len);
		path[len] = '\0';
		if (fleet_ring_add(f, path, "fleet keyring key", err,
		    errlen) != 0)
			return -1;
		if (comma == NULL)
			break;
	}
	f->seal = &f->ring[0];
	return 0;
}

void
fleet_keys_wipe(struct fleet *f)
{
	util_wipe(f->ring, sizeof(f->ring));
	f->n_ring = 0;
	f->seal = NULL;
}

/* The ring's key of id hex (FLEET_KID_HEX characters at p), or NULL. */
static const struct fleet_ringkey *
fleet_ring_hex(const struct fleet *f, const unsigned char *p, size_t len)
{
	size_t	i;

	for (i = 0; len == FLEET_KID_HEX && i < f->n_ring; i++)
		if (memcmp(f->ring[i].kid_hex, p, FLEET_KID_HEX) == 0)
			return &f->ring[i];
	return NULL;
}

/* Whether id hex kid is among the comma-separated ids in list. */
bool
fleet_keys_listed(const char *kid, const unsigned char *list, size_t len)
{
	size_t	i = 0, k = strlen(kid);

	while (i < len) {
		if (i + k <= len && memcmp(list + i, kid, k) == 0 &&
		    (i + k == len || list[i + k] == ','))
			return true;
		while (i < len && list[i] != ',')
			i++;
		i++;
	}
	return false;
}

/* The length of the first id of list. */
static size_t
fleet_list_first(const unsigned char *list, size_t len)
{
	const unsigned char	*c = memchr(list, ',', len);

	return c != NULL ? (size_t)(c - list) : len;
}

int
fleet_keys_update(struct fleet *f, const struct etcd_kv *kv)
{
	const struct fleet_ringkey	*k;
	char				 text[65];
	size_t				 n;

	n = fleet_list_first(kv->value, kv->value_len);
	if ((k = fleet_ring_hex(f, kv->value, n)) == NULL) {
		log_error("fleet: the fleet seals with key %s, which this "
		    "node does not hold: writes refused (add it to [fleet] "
		    "key or keyring, and restart)",
		    fleet_text(kv->value, n, text, sizeof(text)));
		return -1;
	}
	if (k != f->seal)
		log_info("fleet: sealing with key %s from now on",
		    k->kid_hex);
	f->seal = k;
	f->keys_rev = kv->mod_rev;
	return 0;
}

void
fleet_keys_cmp(const struct fleet *f, struct etcd_txn *t)
{
	char	key[FLEET_KEY_MAX];
	size_t	klen = fleet_key(f, key, sizeof(key), "/meta/keys");

	etcd_txn_cmp(t, ETCD_CMP_MOD, key, klen, f->keys_rev);
	etcd_txn_range(t, true, key, klen);
}

const struct etcd_kv *
fleet_keys_kv(const struct fleet *f, const struct etcd_reply *r)
{
	char	key[FLEET_KEY_MAX];
	size_t	klen = fleet_key(f, key, sizeof(key), "/meta/keys"), i;

	for (i = 0; i < r->n_kvs; i++)
		if (r->kvs[i].key_len == klen &&
		    memcmp(r->kvs[i].key, key, klen) == 0)
			return &r->kvs[i];
	return NULL;
}

size_t
fleet_keys_ids(const struct fleet *f, char *buf, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < f->n_ring && n + FLEET_KID_HEX + 2 <= len; i++) {
		if (i > 0)
			buf[n++] = ',';
		memcpy(buf + n, f->ring[i].kid_hex, FLEET_KID_HEX);
		n += FLEET_KID_HEX;
	}
	buf[n] = '\0';
	return n;
}

/* ------------------------------------------------------------------ */
/* Sealing                                                             */

int
fleet_keys_seal(const struct fleet *f, struct cert_record *rec, uint64_t rev,
    char **buf, size_t *len)
{
	return fleet_keys_seal_by(f->seal, rec, rev, buf, len);
}

int
fleet_keys_seal_by(const struct fleet_ringkey *k, struct cert_record *rec,
    uint64_t rev, char **buf, size_t *len)
{
	struct record_sealed	sk;
	uint64_t		saved = rec->revision;
	int			err;

	rec->revision = rev;
	if ((err = record_seal(rec, k->key, k->kid, &sk)) == 0)
		err = record_encode(rec, &sk, buf, len);
	record_sealed_clear(&sk);
	rec->revision = saved;
	return err;
}

const struct fleet_ringkey *
fleet_keys_sealer(const struct fleet *f, const unsigned char *v, size_t len)
{
	const struct fleet_ringkey	*k = NULL;
	struct cert_record		*rec;
	struct record_sealed		 sk;
	size_t				 i;

	if (record_decode((const char *)v, len, &rec, &sk) != 0)
		return NULL;
	for (i = 0; sk.box != NULL && k == NULL && i < f->n_ring; i++)
		if (memcmp(sk.key_id, f->ring[i].kid, RECORD_KEY_ID_LEN) == 0)
			k = &f->ring[i];
	record_sealed_clear(&sk);
	record_free(rec);
	return k;
}

int
fleet_keys_open(const struct fleet *f, const unsigned char *v, size_t len,
    struct cert_record **out, const struct fleet_ringkey **by)
{
	struct record_sealed		 sk;
	const struct fleet_ringkey	*k = NULL;
	size_t				 i;
	int				 err;

	if ((err = record_decode((const char *)v, len, out, &sk)) != 0)
		return err;
	for (i = 0; sk.box != NULL && k == NULL && i < f->n_ring; i++)
		if (memcmp(sk.key_id, f->ring[i].kid, RECORD_KEY_ID_LEN) == 0)
			k = &f->ring[i];
	if (k == NULL)
		err = CERTD_ERR_STORAGE;	/* in clear, or not ours */
	else
		err = record_unseal(*out, &sk, k->key);
	record_sealed_clear(&sk);
	if (err != 0) {
		record_free(*out);
		*out = NULL;
	}
	if (by != NULL)
		*by = k;
	return err;
}

/* ------------------------------------------------------------------ */
/* The check at start                                                  */

/* The key list written (the first node's, or this node's key added). */
static void
fleet_keys_made_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet	*f = arg;

	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	if (r->succeeded)
		log_info("fleet: key id %s listed as a key of the fleet",
		    f->ring[0].kid_hex);
	fleet_keys_read(f);	/* what is there now, either way */
}

/* P/meta/keys := list (its mod_revision was mod; 0: absent), then read. */
static void
fleet_keys_write(struct fleet *f, uint64_t mod, const char *list,
    size_t len)
{
	struct etcd_txn	*t;
	char		 key[FLEET_KEY_MAX];
	size_t		 klen = fleet_key(f, key, sizeof(key), "/meta/keys");

	if ((t = etcd_txn_new()) == NULL) {
		fleet_down(f, "out of memory");
		return;
	}
	if (mod == 0)
		etcd_txn_cmp(t, ETCD_CMP_CREATE, key, klen, 0);
	else
		etcd_txn_cmp(t, ETCD_CMP_MOD, key, klen, mod);
	etcd_txn_put(t, false, key, klen, list, len);
	if (etcd_txn_commit(f->etcd, t, fleet_keys_made_cb, f) != 0)
		fleet_down(f, "out of memory");
}

/* A node that cannot open what the fleet seals stops, saying why. */
static void
fleet_keys_fatal(struct fleet *f, const struct etcd_kv *kv)
{
	char	text[201];

	snprintf(f->why, sizeof(f->why), "fleet key %s (key id %s) is not "
	    "the fleet's sealing key at %s, nor is any key of the keyring "
	    "(the fleet's key ids, the sealing key first: %s)",
	    f->key_path, f->ring[0].kid_hex, f->prefix,
	    fleet_text(kv->value, kv->value_len, text, sizeof(text)));
	if (f->key_checked) {
		/* running: serve the mirror, say why, try again */
		fleet_down(f, f->why);
		return;
	}
	f->fatal = true;
	log_error("fleet: %s", f->why);
}

static void
fleet_keys_cb(const struct etcd_reply *r, void *arg)
{
	struct fleet		*f = arg;
	const struct etcd_kv	*kv;
	char			*list;

	if (r->err != 0) {
		fleet_down(f, r->why);
		return;
	}
	f->cluster_id = r->cluster_id;
	if (store_set_epoch(f->store, f->cluster_id) != 0) {
		fleet_down(f, "cannot record the fleet's epoch in the store");
		return;
	}
	if (r->n_kvs == 0) {
		/* the first node: its key is the fleet's */
		fleet_keys_write(f, 0, f->ring[0].kid_hex, FLEET_KID_HEX);
		return;
	}
	kv = &r->kvs[0];
	if (fleet_ring_hex(f, kv->value, fleet_list_first(kv->value,
	    kv->value_len)) == NULL) {
		fleet_keys_fatal(f, kv);
		return;
	}
	if (!fleet_keys_listed(f->ring[0].kid_hex, kv->value, kv->value_len)) {
		/* a rotation's first step: this node's key joins the list */
		if ((list = malloc(kv->value_len + FLEET_KID_HEX + 2)) ==
		    NULL) {
			fleet_down(f, "out of memory");
			return;
		}
		memcpy(list, kv->value, kv->value_len);
		list[kv->value_len] = ',';
		memcpy(list + kv->value_len + 1, f->ring[0].kid_hex,
		    FLEET_KID_HEX);
		fleet_keys_write(f, kv->mod_rev, list,
		    kv->value_len + 1 + FLEET_KID_HEX);
		free(list);
		return;
	}
	(void)fleet_keys_update(f, kv);
	f->key_checked = true;
	fleet_mirror_start(f);
}

void
fleet_keys_read(struct fleet *f)
{
	char	key[FLEET_KEY_MAX];
	size_t	klen = fleet_key(f, key, sizeof(key), "/meta/keys");

	if (etcd_range(f->etcd, key, klen, NULL, 0, 0, 0, 0, fleet_keys_cb,
	    f) != 0)
		fleet_down(f, "out of memory");
}
