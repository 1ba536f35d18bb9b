/* SPDX-License-Identifier: MIT */
/*
 * What the files of the Unix-socket control share, and nothing outside
 * them sees: the listener (struct ctl), a connection with its explicit
 * state (struct ctl_conn), a request being dispatched and one waiting for
 * the store.  ctl.c owns connections, framing, replies and the references
 * that waiting requests hold; ctl_ops.c decodes requests and runs the ops;
 * ctl_watch.c the ops of subscribers (watch, unwatch, ack, subscribers).
 */
#ifndef CERTD_CTL_INT_H
#define CERTD_CTL_INT_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "certd/constants.h"
#include "ctl.h"

struct bufferevent;
struct event;
struct evconnlistener;
struct hub_conn;
struct hub_conn_ops;
struct service_field;
struct workq;

#define CTL_ACCEPT_RETRY	1	/* seconds to pause accept on EMFILE */

enum ctl_state {
	CTL_OPEN,		/* reading requests */
	CTL_CLOSING,		/* last frame queued; close once written */
	CTL_CLOSED,		/* socket gone; waiting for references */
};

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;		/* ctl->conns or ctl->dead */
	struct ctl		*ctl;
	struct bufferevent	*bev;		/* NULL once CLOSED */
	struct event		*ev_free;	/* frees the struct from the loop */
	struct event		*ev_close;	/* closes it from the loop */
	enum ctl_state		 state;
	int			 doomed;	/* close scheduled: send nothing more */
	unsigned		 refs;		/* 1 while not CLOSED + waiting requests */
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	int			 admin;
	/* The primary group and the supplementary ones. */
	unsigned long		 gids[CERTD_PEER_GROUPS_MAX];
	size_t			 n_gids;
	struct hub_conn		*hc;		/* NULL until the first watch */
	int			 held;		/* a put is being checked: the
						   frames after it wait */
	msgpack_sbuffer		 sb;		/* scratch for replies */
};

/* A request waiting for the store. */
struct ctl_wait {
	struct ctl_conn		*conn;
	uint64_t		 id;
	int			 with_key;
	int			 may_read;	/* else the result is {id, revision} */
	char			 key_id[17];	/* rekey: the key it put in force */
	int			 fleet;		/* rekey: of the fleet key */
};

struct ctl {
	struct event_base	*base;
	struct workq		*admin;		/* backups, off the loop */
	struct workq		*check;		/* puts' certificate checks */
	struct service		*svc;
	struct hub		*hub;
	const struct config	*cfg;
	struct evconnlistener	*listener;
	struct event		*ev_accept;	/* resumes accept after EMFILE */
	int			 stopping;
	char			*path;
	dev_t			 sock_dev;	/* the socket file bound at path */
	ino_t			 sock_ino;	/* 0 until it is known */
	uid_t			 self_uid;
	TAILQ_HEAD(, ctl_conn)	 conns;		/* OPEN and CLOSING */
	TAILQ_HEAD(, ctl_conn)	 dead;		/* CLOSED, references left */
	size_t			 n_conns;
	size_t			 waiting;	/* requests waiting for the store */
	ctl_drained_cb		 drained_cb;
	void			*drained_arg;
};

/* A request being dispatched. */
struct ctl_req {
	struct ctl_conn		*conn;
	const msgpack_object	*map;
	uint64_t		 id;
	char			 team[CERTD_TEAM_MAX + 1];
};

/* --- ctl.c: connections and replies ------------------------------------ */

/* The peer's permissions (ACL_*) in team; team NULL: in any team. */
unsigned	 ctl_conn_perms(const struct ctl_conn *conn, const char *team);

/*
 * A frame-level failure: an error frame with id 0 for err (CERTD_ERR_*;
 * msg, or the table's when NULL), then the connection closes once it is
 * written.
 */
void		 ctl_conn_fail(struct ctl_conn *conn, int err,
		    const char *msg);

/* Idle timeout only while the connection has no watch. */
void		 ctl_conn_set_idle(struct ctl_conn *conn);

/* How the hub queues to a connection and asks its rights (hub_conn_new). */
extern const struct hub_conn_ops ctl_conn_hub_ops;

/* An error frame for request id: err (CERTD_ERR_*), field and reason. */
void		 ctl_reply_error(struct ctl_conn *conn, uint64_t id, int err,
		    const char *field, const char *reason);

/*
 * Start {"id":id,"ok":true,"result": ... in conn's scratch buffer; the
 * caller packs the result with pk, then ctl_reply_end queues the frame.
 */
void		 ctl_reply_begin(struct ctl_conn *conn, uint64_t id,
		    msgpack_packer *pk);
void		 ctl_reply_end(struct ctl_conn *conn, uint64_t id);

/* The answer "ok" with a nil result. */
void		 ctl_reply_nil(struct ctl_conn *conn, uint64_t id);

/*
 * Request r will wait for the store: the wait holds a reference on the
 * connection and counts for ctl_shutdown's drain until ctl_wait_done.
 * Answers "out of memory" and returns NULL when it cannot be had.
 */
struct ctl_wait	*ctl_wait_new(struct ctl_req *r, int with_key);

/*
 * Hold conn's frames while a put of it is checked off the loop, so that
 * what it sends next is done after the put, as it was sent; release
 * dispatches what came meanwhile.
 */
void		 ctl_conn_hold(struct ctl_conn *conn);
void		 ctl_conn_release(struct ctl_conn *conn);

/* The wait is over, answered or not: drop its reference, free w. */
void		 ctl_wait_done(struct ctl_wait *w);

/* --- ctl_ops.c: requests ------------------------------------------------ */

/*
 * Handle one frame payload, buf[0..len): check it, find its op, run it.
 * Returns -1 when the connection must stop.
 */
int		 ctl_ops_dispatch(struct ctl_conn *conn, const char *buf,
		    size_t len);

/*
 * The getters of request fields.  Each answers a missing (when required)
 * or mistyped field with an error frame and returns -1; 0 otherwise.
 * ctl_ops_bad_field answers a field error and returns -1.
 */
int		 ctl_ops_bad_field(struct ctl_req *r, const char *field,
		    const char *reason);
int		 ctl_ops_get_str(struct ctl_req *r, const char *key,
		    int required, struct service_field *f);
int		 ctl_ops_get_uint(struct ctl_req *r, const char *key,
		    int required, uint64_t *out, int *present);

/*
 * The request's team into r->team (required unless optional), checked for
 * the permissions in need.  Replies and returns -1 on failure.
 */
int		 ctl_ops_get_team(struct ctl_req *r, unsigned need,
		    int optional);

/* --- ctl_watch.c: subscribers ------------------------------------------- */

/* The ops watch, unwatch, ack and subscribers; each answers r. */
void		 ctl_watch_op_watch(struct ctl_req *r);
void		 ctl_watch_op_unwatch(struct ctl_req *r);
void		 ctl_watch_op_ack(struct ctl_req *r);
void		 ctl_watch_op_subscribers(struct ctl_req *r);

#endif
