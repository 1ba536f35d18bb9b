/* SPDX-License-Identifier: MIT */
/*
 * The subscription hub: watches, fan-out of committed changes, replay from
 * the change log, back-pressure with coalescing, bindings and acks.
 *
 * The hub knows nothing of sockets: a subscriber connection is a hub_conn
 * whose owner (ctl.c) supplies how to queue bytes, how many are queued, and
 * what the peer may see.  Frames are built here once per change and per
 * (with key, without key) variant; only the small event header differs per
 * watch.
 */
#ifndef CERTD_HUB_H
#define CERTD_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "certd/constants.h"
#include "record.h"
#include "store.h"

struct hub;
struct hub_conn;

/* What the hub needs from a connection's owner. */
struct hub_conn_ops {
	/* Queue a whole frame; returns 0 or -1 (the connection is failing). */
	int	(*send)(void *ctx, const void *frame, size_t len);
	/* Bytes queued and not yet written to the peer. */
	size_t	(*queued)(void *ctx);
	/*
	 * Whether the peer may read team's certificates (team NULL: those of
	 * some team), write them, read their keys.  Asked at the time of use,
	 * so that a reload that changes the peer's rights applies at once.
	 */
	int	(*may_read)(void *ctx, const char *team);
	int	(*may_key)(void *ctx, const char *team);
	int	(*may_write)(void *ctx, const char *team);
	/*
	 * Give up on a subscriber whose backlog of coalesced events (one per
	 * certificate and watch, at most CERTD_WATCHES_MAX watches) outgrew
	 * CERTD_BACKLOG_MAX bytes: it resumes with since when it comes back.
	 * The connection must not be freed inside this call.
	 */
	void	(*drop)(void *ctx, const char *why);
};

/* A watch's filter; see doc/protocol.md.  ids/aliases need a team. */
struct hub_filter {
	const char		 *team;		/* NULL: every readable team */
	const uint64_t		 *ids;
	size_t			  n_ids;
	const char *const	 *aliases;	/* NUL-terminated */
	size_t			  n_aliases;
	const char		 *name;		/* the subscriber's name, or NULL */
};

/*
 * Why hub_watch_add refused a watch: field is a static string or NULL,
 * reason a static string or buf (a refusal that states a limit).  One
 * non-admin uid may hold, over all its connections, CERTD_UID_FILTER_MAX
 * bytes of watch filters (each watch, its team, ids and aliases, with the
 * allocator's overhead) and CERTD_UID_NAMES_MAX subscriber names (a name
 * stays its uid's for the hub's life); admins are not counted.
 */
struct hub_refusal {
	const char	*field;
	const char	*reason;
	char		 buf[160];
};

/* One subscriber of a certificate, as hub_subscribers reports it. */
struct hub_subscriber {
	const char		*node;		/* fleet mode: the host; else NULL */
	const char		*name;		/* "" when the watch gave none */
	unsigned long		 uid;
	long			 pid;
	uint64_t		 watch;
	uint64_t		 serial;	/* unique in this hub's life */
	struct hub_filter	 filter;	/* what it watches */
	const struct hub_ack	*ack;		/* NULL: no ack yet */
};

typedef void	(*hub_subscriber_cb)(const struct hub_subscriber *sub,
		    void *arg);

/*
 * What a subscriber reported (op `ack`, doc/protocol.md): ok (the server
 * was seen presenting the certificate, or nothing needed checking),
 * failed, or requested (done on the subscriber's side, a reload asked
 * for, but not confirmed).
 */
enum hub_ack_status {
	HUB_ACK_FAILED,
	HUB_ACK_OK,
	HUB_ACK_REQUESTED,
};

/* The last ack of a watch. */
struct hub_ack {
	uint64_t		 revision;
	enum hub_ack_status	 status;
	char			 detail[CERTD_ACK_DETAIL_MAX + 1];
	/* The leaf a TLS check saw served ("" none), and when (0: no check). */
	char			 served[CERTD_FINGERPRINT_LEN + 1];
	int64_t			 verified_at;	/* Unix seconds */
	int64_t			 at;	/* Unix seconds; 0: never acked */
};

/* "ok", "failed" or "requested". */
const char	*hub_ack_status_name(enum hub_ack_status status);

/* Counters since start, and the watches and backlog of now. */
struct hub_stats {
	uint64_t	events_sent;		/* frames queued to peers */
	uint64_t	events_deferred;	/* went to a backlog */
	uint64_t	events_coalesced;	/* replaced by a newer one */
	uint64_t	subscribers_dropped;
	uint64_t	acks_ok;		/* acks received, by outcome */
	uint64_t	acks_failed;
	uint64_t	acks_requested;
	size_t		watches;
	size_t		backlog;
	size_t		subscribers_failed;	/* live watches whose last ack failed */
};

void		 hub_get_stats(const struct hub *hub, struct hub_stats *out);

struct hub	*hub_new(struct store *store);
void		 hub_free(struct hub *hub);

/* Store change listener: fan a committed change out to matching watches. */
void		 hub_publish(struct hub *hub, const struct store_change *ch);

/*
 * Tell the watchers of rec that it expires soon: an "expiring" event with
 * the record's revision (no key, no PEM).
 */
void		 hub_expiring(struct hub *hub, const struct cert_record *rec);

/*
 * Whether a live watch binds the certificate: names its id, or its alias in
 * its team, and belongs to a peer that may write the team (a reader's watch
 * never blocks a writer).
 */
int		 hub_is_bound(const struct hub *hub, const char *team,
		    uint64_t id, const char *alias);

/*
 * A subscriber connection.  out_limit is the number of queued bytes above
 * which events are coalesced instead of queued.  hub_conn_free ends its
 * watches (and so their bindings).
 */
struct hub_conn	*hub_conn_new(struct hub *hub, const struct hub_conn_ops *ops,
		    void *ctx, size_t out_limit);

/*
 * Who is on the other end: for hub_subscribers, subscriber names and the
 * per-uid budgets (admin: root or certd's uid, never counted).  Set before
 * the first watch.
 */
void		 hub_conn_set_peer(struct hub_conn *hc, unsigned long uid,
		    long pid, int admin);
void		 hub_conn_free(struct hub_conn *hc);

/* Output room was made: send coalesced events while there is room. */
void		 hub_conn_drain(struct hub_conn *hc);

/* Number of watches of the connection / events waiting in its backlog. */
size_t		 hub_conn_watches(const struct hub_conn *hc);
size_t		 hub_conn_backlog(const struct hub_conn *hc);

/*
 * Add a watch.  Copies the filter.  *watch gets its id (per connection, from
 * 1) and *revision the committed revision it starts after.  The caller
 * answers the request, then calls hub_watch_replay before returning to the
 * loop, so that nothing comes between the answer and the replay.
 *
 * A name belongs to the first uid that watches with it, for the hub's life.
 * Refused with CERTD_ERR_FORBIDDEN and *why filled: a name that belongs to
 * another uid (or to the admins), a new name past CERTD_UID_NAMES_MAX, a
 * filter past the uid's CERTD_UID_FILTER_MAX.  An admin may use any name: one
 * that belonged to a non-admin uid becomes the admins', and that uid's
 * live watches under it end (hub_conn_recheck's error frame).
 * Returns 0, CERTD_ERR_NOMEM or CERTD_ERR_FORBIDDEN.
 */
int		 hub_watch_add(struct hub_conn *hc, const struct hub_filter *f,
		    uint64_t *watch, uint64_t *revision,
		    struct hub_refusal *why);

/*
 * After the peer's rights changed (a reload): end every watch of hc whose
 * team the peer may no longer read (a watch without a team: when it may
 * read none), each with an error frame
 * {"id":0,"ok":false,"watch":W,"error":{"code":403,...}}.  Bindings follow
 * may_write by themselves.  Returns how many watches ended.
 */
size_t		 hub_conn_recheck(struct hub_conn *hc);

/*
 * Replay for a watch just added: nothing without since; the current state
 * for since 0; changes after since from the change log, or resync and the
 * current state when since is older than the log, newer than the store's
 * revision, or of another epoch than the store's (store_get_pos) (epoch 0: not known,
 * taken to be this store's).  Returns 0 or a CERTD_ERR_*
 * (CERTD_ERR_STORAGE when the log cannot be read).
 */
int		 hub_watch_replay(struct hub_conn *hc, uint64_t watch,
		    int has_since, uint64_t since, uint64_t epoch);

/* Remove a watch.  CERTD_ERR_NOT_FOUND when the connection has none such. */
int		 hub_unwatch(struct hub_conn *hc, uint64_t watch);

/*
 * Record ack (its at is ignored: the time now is kept) as the last ack of
 * the watch.  CERTD_ERR_NOT_FOUND for an unknown watch.
 */
int		 hub_ack(struct hub_conn *hc, uint64_t watch,
		    const struct hub_ack *ack);

/*
 * Call cb for every live watch that receives the changes of the
 * certificate (team, id, alias), with its connection's peer and last ack.
 * Returns how many there were.
 */
size_t		 hub_subscribers(const struct hub *hub, const char *team,
		    uint64_t id, const char *alias, hub_subscriber_cb cb,
		    void *arg);

/* The last ack of a watch, or NULL. */
/*
 * Every live watch of the hub, with its filter and last ack (fleet mode
 * publishes them, fleet_acks.c).
 */
void		 hub_foreach_subscriber(const struct hub *hub,
		    hub_subscriber_cb cb, void *arg);
/*
 * changed(arg) runs after a watch was added, acked or ended; node is the
 * name hub_subscribers gives this host (fleet mode; NULL otherwise).
 */
void		 hub_set_observer(struct hub *hub, const char *node,
		    void (*changed)(void *arg), void *arg);
/* Whether a watch with filter f receives certificate id (alias) of team. */
int		 hub_filter_matches(const struct hub_filter *f,
		    const char *team, uint64_t id, const char *alias);

const struct hub_ack *hub_watch_ack(const struct hub_conn *hc,
		    uint64_t watch);

/*
 * Pack a cert map (doc/protocol.md) of rec, with the private key when
 * with_key.  Shared by events and by the socket's get/put results.
 */
void		 hub_pack_cert(msgpack_packer *pk, const struct cert_record *rec,
		    int with_key);

#endif
