/* SPDX-License-Identifier: MIT */
/*
 * What fleet.c (the key, the state, the writes) and fleet_mirror.c (the
 * store kept in step with etcd) share.  Private to src/fleet*.c.
 */
#ifndef CERTD_FLEET_INT_H
#define CERTD_FLEET_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "record.h"

#define FLEET_KEY_MAX		(CERTD_TEAM_MAX + CERTD_ALIAS_BYTES_MAX + 96)
#define FLEET_PREFIX_MAX	64
#define FLEET_ETCD_TIMEOUT_MS	9000	/* one try; etcd's own is 7 s */
#define FLEET_BACKOFF_MIN_MS	500
#define FLEET_BACKOFF_MAX_MS	10000
#define FLEET_ID_BLOCK		64	/* ids a node takes from P/next_id */
#define FLEET_RING_MAX		4	/* [fleet] key and keyring */

enum fleet_state {
	FLEET_CONNECTING,	/* the key ids being read */
	FLEET_SYNCING,		/* the mirror catching up */
	FLEET_UP,
	FLEET_DOWN,		/* etcd out of reach: retrying */
};

/* A version as a full sync finds it: P/h/<id>/<base>, or P/r/<id>. */
struct fleet_item {
	uint64_t	id;
	uint64_t	mod_rev;
	uint64_t	base;		/* of a history key */
	bool		hist;
};

struct fleet_op;
struct fleet_acks;
struct fleet_rekey;
struct etcd_kv;
struct etcd_reply;
struct etcd_txn;

/* A key of the ring (fleet_keys.c) and its id. */
struct fleet_ringkey {
	unsigned char	key[CERT_SEAL_KEY_LEN];
	unsigned char	kid[RECORD_KEY_ID_LEN];
	char		kid_hex[2 * RECORD_KEY_ID_LEN + 1];
};

struct fleet {
	struct event_base	*base;
	struct store		*store;
	struct etcd		*etcd;
	char			*prefix;
	size_t			 plen;
	char			*node;
	char			*key_path;
	struct fleet_ringkey	 ring[FLEET_RING_MAX];	/* [0]: [fleet] key */
	size_t			 n_ring;
	const struct fleet_ringkey *seal;	/* the fleet's sealing key */
	uint64_t		 keys_rev;	/* P/meta/keys' mod_revision */
	struct fleet_rekey	*rekey;		/* a rotation running */
	uint64_t		 cluster_id;
	enum fleet_state	 state;
	int64_t			 since;		/* of the state */
	bool			 key_checked;
	bool			 fatal;		/* the key is not the fleet's */
	bool			 stopping;
	char			 why[320];
	struct event		*retry;		/* back-off */
	unsigned		 backoff_ms;
	TAILQ_HEAD(, fleet_op)	 ops;		/* writes in flight */
	uint64_t		 id_next;	/* ids this node took from */
	uint64_t		 id_end;	/* P/next_id: [id_next, id_end) */
	bool			 id_busy;	/* taking a block */

	/* fleet_mirror.c */
	struct etcd_watch	*watch;
	struct event		*watch_end;	/* frees the watch, acts */
	int			 watch_err;
	uint64_t		 target;	/* up once applied */
	uint64_t		 sync_rev;	/* a full sync reads at it */
	bool			 sync_records;	/* listing P/r/, after P/h/ */
	unsigned		 sync_gen;	/* of the full sync running */
	char			 broken[160];	/* a version not mirrored */
	struct fleet_item	*items;
	size_t			 n_items, cap_items, next_item;

	struct fleet_acks	*acks;		/* fleet_acks.c */
};

/* prefix + the formatted suffix into buf; its length, or 0 if too long. */
size_t	fleet_key(const struct fleet *f, char *buf, size_t len,
	    const char *fmt, ...) __attribute__((__format__(__printf__, 4, 5)));
/* fleet.c: text from etcd for a message, printable ASCII, the rest ? */
const char *fleet_text(const unsigned char *p, size_t n, char *buf,
	    size_t len);
/* fleet_keys.c: the ring from the key files (keyring: FILE[,FILE]) */
int	fleet_keys_load(struct fleet *f, const char *key_path,
	    const char *keyring, char *err, size_t errlen);
void	fleet_keys_wipe(struct fleet *f);
/* The key ids and the start check; then fleet_mirror_start. */
void	fleet_keys_read(struct fleet *f);
/* Whether id hex kid is among the comma-separated ids in list. */
bool	fleet_keys_listed(const char *kid, const unsigned char *list,
	    size_t len);
/* P/meta/keys as a write found it: -1 when its sealing key is not held. */
int	fleet_keys_update(struct fleet *f, const struct etcd_kv *kv);
/* A write's compare of P/meta/keys, and the range of it on failure. */
void	fleet_keys_cmp(const struct fleet *f, struct etcd_txn *t);
/* P/meta/keys among a reply's kvs, or NULL. */
const struct etcd_kv *fleet_keys_kv(const struct fleet *f,
	    const struct etcd_reply *r);
/* The ring's key ids, comma-separated, into buf; their length. */
size_t	fleet_keys_ids(const struct fleet *f, char *buf, size_t len);
/* rec for etcd, its key sealed with the sealing key and bound to rev. */
int	fleet_keys_seal(const struct fleet *f, struct cert_record *rec,
	    uint64_t rev, char **buf, size_t *len);
/* The ring's key that sealed v (not opened), or NULL: none of ours. */
const struct fleet_ringkey *fleet_keys_sealer(const struct fleet *f,
	    const unsigned char *v, size_t len);
/* The same, sealed with key k of the ring. */
int	fleet_keys_seal_by(const struct fleet_ringkey *k,
	    struct cert_record *rec, uint64_t rev, char **buf, size_t *len);
/*
 * A record as etcd holds it, its key opened with the ring's key it was
 * sealed with (*by, when by is not NULL; NULL: none of ours).
 */
int	fleet_keys_open(const struct fleet *f, const unsigned char *v,
	    size_t len, struct cert_record **out,
	    const struct fleet_ringkey **by);
/* etcd out of reach (why): serve the mirror, try again after a while. */
void	fleet_down(struct fleet *f, const char *why);
/* In step with etcd. */
void	fleet_up(struct fleet *f);
/* (Re)connect: key ids, then the mirror. */
void	fleet_connect(struct fleet *f);

/* fleet_mirror.c */
void	fleet_mirror_start(struct fleet *f);
void	fleet_mirror_stop(struct fleet *f);
/* The mirror reached revision: up, if that is where etcd was. */
void	fleet_mirror_applied(struct fleet *f, uint64_t revision);

/* fleet_acks.c: this host's subscribers published, the others' read */
int	fleet_acks_new(struct fleet *f);
/* Up: the lease, the publishing and the reading start (once). */
void	fleet_acks_start(struct fleet *f);
void	fleet_acks_stop(struct fleet *f);
void	fleet_acks_free(struct fleet *f);

#endif
