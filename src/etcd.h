/* SPDX-License-Identifier: MIT */
/*
 * An etcd v3 client for the event loop, through etcd's JSON gateway
 * (grpc-gateway: POST /v3/kv/range, /v3/kv/txn, /v3/watch, /v3/lease/...),
 * over HTTP/1.1 or TLS (etcd_wire.c: libcurl with GnuTLS on the loop).
 * doc/fleet.md says why the gateway and not gRPC.
 *
 * Keys and values are bytes (base64 on the wire, nettle's coder); 64-bit
 * integers travel as decimal strings.  A client knows several endpoints
 * and fails over: a request that cannot reach one is sent to the next,
 * each once, within the client's timeout per try; then it fails with
 * CERTD_ERR_STORAGE and the reason.  One that a member answers
 * "unavailable" (no leader, no quorum) fails at once, since a write may
 * still commit, and the requests after it go to the next member.  A
 * reply's callback runs on the loop.
 */
#ifndef CERTD_ETCD_H
#define CERTD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct etcd;
struct etcd_txn;
struct etcd_watch;

#define ETCD_WHY_MAX	256

/* A key and its value, as etcd keeps them. */
struct etcd_kv {
	const unsigned char	*key;
	size_t			 key_len;
	const unsigned char	*value;
	size_t			 value_len;
	uint64_t		 create_rev;
	uint64_t		 mod_rev;
	uint64_t		 version;
};

/*
 * A reply.  err 0: revision and cluster_id from its header; kvs: what the
 * range read (a txn: its range ops', one after the other), count and more
 * as etcd says (a txn: its first range op's);
 * succeeded: a txn's compares held.  err CERTD_ERR_STORAGE or
 * CERTD_ERR_NOMEM: why says what failed.  Borrowed for the callback.
 */
struct etcd_reply {
	int			 err;
	char			 why[ETCD_WHY_MAX];
	uint64_t		 revision;
	uint64_t		 cluster_id;
	const struct etcd_kv	*kvs;
	size_t			 n_kvs;
	uint64_t		 count;
	bool			 more;
	bool			 succeeded;
	uint64_t		 lease;		/* a lease's ID */
	uint64_t		 ttl;		/* its TTL, s; 0: expired */
};

typedef void	(*etcd_cb)(const struct etcd_reply *r, void *arg);

/*
 * TLS to https:// endpoints: the CA bundle that signed etcd's certificate
 * (NULL: the system's), and a client certificate and its key (PEM files;
 * NULL: none), for etcd's --client-cert-auth.
 */
struct etcd_tls {
	const char	*ca;
	const char	*cert;
	const char	*key;
};

/*
 * A client of the endpoints in csv ("http://host:port,..." or https://;
 * host a name or an IPv4 address, or [IPv6]), each try given timeout_ms.
 * tls NULL: none.  NULL with the reason in err.
 */
struct etcd	*etcd_new(struct event_base *base, const char *csv,
		    unsigned timeout_ms, const struct etcd_tls *tls, char *err,
		    size_t errlen);
/* Pending requests complete with CERTD_ERR_SHUTDOWN first.  NULL: nothing. */
void		 etcd_free(struct etcd *e);

/*
 * Read key (end NULL), or the range [key, end) (end "\0" with end_len 1:
 * every key from key on), at revision rev (0: the newest).  limit 0: all.
 * Flags: ETCD_SERIALIZABLE, answered by the member asked without quorum
 * (a read that keeps working while the cluster has none; maybe stale);
 * ETCD_KEYS_ONLY, no values; ETCD_NEWEST_MOD, the keys by mod_revision,
 * newest first (else by key).
 */
#define ETCD_SERIALIZABLE	0x1
#define ETCD_KEYS_ONLY		0x2
#define ETCD_NEWEST_MOD		0x4
int		 etcd_range(struct etcd *e, const void *key, size_t key_len,
		    const void *end, size_t end_len, uint64_t rev,
		    uint64_t limit, unsigned flags, etcd_cb cb, void *arg);

/*
 * A transaction: compares, then the ops of success or of failure.  Build
 * it, then commit it (which frees it).  A compare or op that cannot be
 * recorded (no memory) fails the commit.
 */
enum etcd_cmp {
	ETCD_CMP_MOD,		/* key's mod_revision == rev (0: absent) */
	ETCD_CMP_CREATE,	/* key's create_revision == rev (0: absent) */
};
struct etcd_txn	*etcd_txn_new(void);
void		 etcd_txn_free(struct etcd_txn *t);
void		 etcd_txn_cmp(struct etcd_txn *t, enum etcd_cmp what,
		    const void *key, size_t key_len, uint64_t rev);
/* An op of the success branch (on_failure false) or of the failure one. */
void		 etcd_txn_put(struct etcd_txn *t, bool on_failure,
		    const void *key, size_t key_len, const void *value,
		    size_t value_len);
void		 etcd_txn_delete(struct etcd_txn *t, bool on_failure,
		    const void *key, size_t key_len);
/* A delete of the success branch of every key in [key, end). */
void		 etcd_txn_delete_range(struct etcd_txn *t, const void *key,
		    size_t key_len, const void *end, size_t end_len);
void		 etcd_txn_range(struct etcd_txn *t, bool on_failure,
		    const void *key, size_t key_len);
/* A put of the success branch attached to lease (etcd_lease_grant). */
void		 etcd_txn_put_lease(struct etcd_txn *t, const void *key,
		    size_t key_len, const void *value, size_t value_len,
		    uint64_t lease);
int		 etcd_txn_commit(struct etcd *e, struct etcd_txn *t,
		    etcd_cb cb, void *arg);

/*
 * Leases: grant one of ttl_s seconds (the reply's lease and ttl), keep
 * lease alive for another TTL (the reply's ttl; 0: it had expired and is
 * gone, with the keys attached to it), revoke it (its keys are deleted).
 */
int		 etcd_lease_grant(struct etcd *e, unsigned ttl_s, etcd_cb cb,
		    void *arg);
int		 etcd_lease_keepalive(struct etcd *e, uint64_t lease,
		    etcd_cb cb, void *arg);
int		 etcd_lease_revoke(struct etcd *e, uint64_t lease, etcd_cb cb,
		    void *arg);

/*
 * A watch of the range [key, end) (end as etcd_range's) from start_rev.
 * cb gets each batch of events in order (delete: value empty), with the
 * revision of the batch's header.  It ends once, with err:
 * CERTD_ERR_NO_REVISION and compact_rev when etcd compacted past start_rev
 * (read the range again, then watch from there), CERTD_ERR_STORAGE when
 * the stream broke or stayed idle for libevent's HTTP timeout (50 s: a
 * partition shows); then free it (not from the callback) and watch again.
 */
struct etcd_event {
	bool			 is_delete;
	struct etcd_kv		 kv;
};
typedef void	(*etcd_watch_cb)(int err, uint64_t compact_rev,
		    const struct etcd_event *ev, size_t n, uint64_t revision,
		    void *arg);
struct etcd_watch *etcd_watch_new(struct etcd *e, const void *key,
		    size_t key_len, const void *end, size_t end_len,
		    uint64_t start_rev, etcd_watch_cb cb, void *arg);
void		 etcd_watch_free(struct etcd_watch *w);

#endif
