/* SPDX-License-Identifier: MIT */
/*
 * Unix-socket listener and connections (doc/protocol.md).
 *
 * A connection is a struct with an explicit state and one read callback
 * that loops over the complete frames in its input buffer.  Every frame is
 * checked by proto.c before it is looked at; a malformed one gets an error
 * frame and the connection moves to CLOSING (no more reading, closed once
 * the error frame is written).  Requests that wait for the store hold a
 * reference on their connection; a closed connection is freed from the loop
 * once the last reference is gone, never inside its own callback.
 *
 * Peers are identified with SO_PEERCRED when they connect.  root and certd's
 * own uid are admins; anyone else gets what the config's [acl] grants, asked
 * again at each use so that a reload applies at once.  A peer no rule names
 * may only say hello and ping.  The last CTL_ADMIN_SLOTS connections are
 * kept for admins, so that other uids, whatever their number, never lock
 * root out.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl.h"
#include "err.h"
#include "hub.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "util.h"
#include "workq.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define CTL_GROUPS_MAX		64
#define CTL_CLOSE_TIMEOUT	5	/* seconds to flush a last error frame */
#define CTL_WATCHES_MAX		64	/* watches per connection */
#define CTL_FILTER_MAX		1024	/* ids or aliases per watch */
#define CTL_ACCEPT_RETRY	1	/* seconds to pause accept on EMFILE */
#define CTL_ADMIN_SLOTS		8	/* of ctl_max_conns, admins' only */
#define CTL_ALIAS_BYTES		(CERTD_ALIAS_MAX * 4)	/* UTF-8, at most */

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
	unsigned long		 gids[CTL_GROUPS_MAX];	/* primary and supplementary */
	size_t			 n_gids;
	struct hub_conn		*hc;		/* NULL until the first watch */
	msgpack_sbuffer		 sb;		/* scratch for replies */
};

/* A request waiting for the store. */
struct ctl_wait {
	struct ctl_conn		*conn;
	uint64_t		 id;
	int			 with_key;
	int			 may_read;	/* else the result is {id, revision} */
	char			 key_id[17];	/* rekey: the key it put in force */
};

struct ctl {
	struct event_base	*base;
	struct workq		*admin;		/* backups, off the loop */
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

static void	conn_close(struct ctl_conn *conn);

/* --- connection life --------------------------------------------------- */

static void
conn_destroy(struct ctl_conn *conn)
{
	if (conn->ev_free != NULL)
		event_free(conn->ev_free);
	if (conn->ev_close != NULL)
		event_free(conn->ev_close);
	if (conn->sb.data != NULL)
		memset(conn->sb.data, 0, conn->sb.alloc);
	msgpack_sbuffer_destroy(&conn->sb);
	free(conn);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn	*conn = arg;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&conn->ctl->dead, conn, entry);
	conn_destroy(conn);
}

static void
conn_unref(struct ctl_conn *conn)
{
	if (--conn->refs == 0)
		event_active(conn->ev_free, EV_TIMEOUT, 0);
}

static void
check_drained(struct ctl *ctl)
{
	if (ctl->drained_cb != NULL && ctl->waiting == 0) {
		ctl_drained_cb	cb = ctl->drained_cb;

		ctl->drained_cb = NULL;
		cb(ctl->drained_arg);
	}
}

static void
conn_close(struct ctl_conn *conn)
{
	struct ctl	*ctl = conn->ctl;

	if (conn->state == CTL_CLOSED)
		return;
	conn->state = CTL_CLOSED;
	hub_conn_free(conn->hc);	/* ends watches and bindings */
	conn->hc = NULL;
	bufferevent_free(conn->bev);
	conn->bev = NULL;
	TAILQ_REMOVE(&ctl->conns, conn, entry);
	ctl->n_conns--;
	TAILQ_INSERT_TAIL(&ctl->dead, conn, entry);
	conn_unref(conn);
}

static void
conn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_close(arg);
}

/*
 * Close from the loop, not from here: the caller may be in the middle of a
 * fan-out over this connection's watches, or of its read callback.
 */
static void
conn_close_later(struct ctl_conn *conn)
{
	if (conn->state == CTL_CLOSED || conn->doomed)
		return;
	conn->doomed = 1;
	bufferevent_disable(conn->bev, EV_READ);
	event_active(conn->ev_close, EV_TIMEOUT, 0);
}

static size_t
conn_queued(void *ctx)
{
	struct ctl_conn	*conn = ctx;

	return conn->bev != NULL ?
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) : 0;
}

/*
 * Queue a whole frame.  Replies are never dropped, but a peer that lets
 * them pile up past four times the output limit is cut off.
 */
static int
conn_send(void *ctx, const void *frame, size_t len)
{
	struct ctl_conn	*conn = ctx;

	if (conn->state == CTL_CLOSED || conn->doomed)
		return -1;
	if (conn_queued(conn) + len > 4 * conn->ctl->cfg->ctl_out_limit) {
		log_warn("ctl closing a peer that does not read uid=%lu pid=%ld",
		    (unsigned long)conn->uid, (long)conn->pid);
		conn_close_later(conn);
		return -1;
	}
	if (evbuffer_add(bufferevent_get_output(conn->bev), frame, len) != 0) {
		conn_close_later(conn);
		return -1;
	}
	return 0;
}

/* The peer's permissions in team; team NULL: in any team. */
static unsigned
conn_perms(const struct ctl_conn *conn, const char *team)
{
	if (conn->admin)
		return ACL_READ | ACL_WRITE | ACL_KEY;
	if (team == NULL)
		return config_acl_any(conn->ctl->cfg, conn->uid, conn->gids,
		    conn->n_gids);
	return config_acl_perms(conn->ctl->cfg, conn->uid, conn->gids,
	    conn->n_gids, team);
}

static int
conn_may_read(void *ctx, const char *team)
{
	return (conn_perms(ctx, team) & ACL_READ) != 0;
}

static int
conn_may_write(void *ctx, const char *team)
{
	return (conn_perms(ctx, team) & ACL_WRITE) != 0;
}

static int
conn_may_key(void *ctx, const char *team)
{
	return (conn_perms(ctx, team) & ACL_KEY) != 0;
}

static void	conn_fail(struct ctl_conn *conn, int code, const char *msg);

static void
conn_drop(void *ctx, const char *why)
{
	struct ctl_conn	*conn = ctx;

	log_warn("ctl dropping a subscriber uid=%lu pid=%ld: %s",
	    (unsigned long)conn->uid, (long)conn->pid, why);
	conn_fail(conn, 503, why);
}

static const struct hub_conn_ops conn_hub_ops = {
	.send = conn_send,
	.queued = conn_queued,
	.may_read = conn_may_read,
	.may_key = conn_may_key,
	.may_write = conn_may_write,
	.drop = conn_drop,
};

/* Idle timeout only while the connection has no watch. */
static void
conn_set_idle(struct ctl_conn *conn)
{
	struct timeval	tv = { conn->ctl->cfg->ctl_idle_timeout, 0 };

	if (conn->hc != NULL && hub_conn_watches(conn->hc) > 0)
		bufferevent_set_timeouts(conn->bev, NULL, NULL);
	else
		bufferevent_set_timeouts(conn->bev, &tv, NULL);
}

/* The peer, for the audit log. */
static const char *
who(const struct ctl_conn *conn)
{
	static char	buf[64];	/* copied at once by the service */

	snprintf(buf, sizeof(buf), "uid:%lu,pid:%ld", (unsigned long)conn->uid,
	    (long)conn->pid);
	return buf;
}

/* --- replies --------------------------------------------------------------- */

static void
reply_error(struct ctl_conn *conn, uint64_t id, int err, const char *field,
    const char *reason)
{
	if (conn->sb.data != NULL)
		memset(conn->sb.data, 0, conn->sb.size);
	if (proto_error_frame(&conn->sb, id, err_status(err), err_msg(err),
	    field, reason) == 0)
		conn_send(conn, conn->sb.data, conn->sb.size);
}

/* Start {"id":id,"ok":true,"result": ...; the caller packs the result. */
static void
reply_begin(struct ctl_conn *conn, uint64_t id, msgpack_packer *pk)
{
	if (conn->sb.data != NULL)
		memset(conn->sb.data, 0, conn->sb.size);
	proto_begin(&conn->sb, pk);
	msgpack_pack_map(pk, 3);
	proto_kv_uint(pk, "id", id);
	proto_kv_bool(pk, "ok", 1);
	proto_pack_cstr(pk, "result");
}

static void
reply_end(struct ctl_conn *conn, uint64_t id)
{
	if (proto_end(&conn->sb, (size_t)-1) != 0) {
		reply_error(conn, id, CERTD_ERR_INTERNAL, NULL, NULL);
		return;
	}
	conn_send(conn, conn->sb.data, conn->sb.size);
}

static void
reply_nil(struct ctl_conn *conn, uint64_t id)
{
	msgpack_packer	pk;

	reply_begin(conn, id, &pk);
	msgpack_pack_nil(&pk);
	reply_end(conn, id);
}

/* A frame-level failure: error frame with id 0, then close. */
static void
conn_fail(struct ctl_conn *conn, int code, const char *msg)
{
	struct timeval	tv = { CTL_CLOSE_TIMEOUT, 0 };

	if (conn->state != CTL_OPEN || conn->doomed)
		return;
	if (conn->sb.data != NULL)
		memset(conn->sb.data, 0, conn->sb.size);
	if (proto_error_frame(&conn->sb, 0, code, msg, NULL, NULL) == 0)
		conn_send(conn, conn->sb.data, conn->sb.size);
	if (conn->doomed)
		return;
	conn->state = CTL_CLOSING;
	bufferevent_disable(conn->bev, EV_READ);
	bufferevent_set_timeouts(conn->bev, NULL, &tv);
	if (conn_queued(conn) == 0)
		conn_close_later(conn);
}

/* --- request fields ------------------------------------------------------- */

/* A request being dispatched. */
struct ctl_req {
	struct ctl_conn		*conn;
	const msgpack_object	*map;
	uint64_t		 id;
	char			 team[CERTD_TEAM_MAX + 1];
};

/* Field error reply; returns -1 for the caller to return. */
static int
bad_field(struct ctl_req *r, const char *field, const char *reason)
{
	reply_error(r->conn, r->id, CERTD_ERR_BAD_REQUEST, field, reason);
	return -1;
}

static int
get_str(struct ctl_req *r, const char *key, int required, struct svc_field *f)
{
	int	rv = proto_get_str(r->map, key, &f->s, &f->len);

	if (rv < 0)
		return bad_field(r, key, "must be a string");
	if (rv == 0) {
		f->s = NULL;
		f->len = 0;
		if (required)
			return bad_field(r, key, "is required");
	}
	return 0;
}

static int
get_uint(struct ctl_req *r, const char *key, int required, uint64_t *out,
    int *present)
{
	int	rv = proto_get_uint(r->map, key, out);

	if (rv < 0)
		return bad_field(r, key, "must be an unsigned integer");
	if (rv == 0 && required)
		return bad_field(r, key, "is required");
	if (present != NULL)
		*present = rv == 1;
	return 0;
}

/*
 * The request's team (required unless optional), checked for the
 * permissions in need.  Replies and returns -1 on failure.
 */
static int
get_team(struct ctl_req *r, unsigned need, int optional)
{
	struct svc_field	f;

	if (get_str(r, "team", !optional, &f) != 0)
		return -1;
	if (f.s == NULL) {
		r->team[0] = '\0';
		return 0;
	}
	if (!util_team_valid(f.s, f.len))
		return bad_field(r, "team", "must be 1-64 of [A-Za-z0-9_.-]");
	memcpy(r->team, f.s, f.len);
	r->team[f.len] = '\0';
	if ((conn_perms(r->conn, r->team) & need) != need) {
		reply_error(r->conn, r->id, CERTD_ERR_FORBIDDEN, NULL, NULL);
		return -1;
	}
	return 0;
}

/* --- ops ------------------------------------------------------------------ */

static void
op_hello(struct ctl_req *r)
{
	struct ctl_conn	*conn = r->conn;
	msgpack_packer	 pk;
	uint64_t	 version;

	if (get_uint(r, "version", 0, &version, NULL) != 0)
		return;
	reply_begin(conn, r->id, &pk);
	msgpack_pack_map(&pk, 7);
	proto_kv_uint(&pk, "version", PROTO_VERSION);
	proto_kv_str(&pk, "server", "certd " PACKAGE_VERSION);
	proto_kv_uint(&pk, "frame_max", conn->ctl->cfg->frame_max);
	proto_kv_uint(&pk, "revision",
	    service_revision(conn->ctl->svc));
	proto_kv_uint(&pk, "epoch", service_epoch(conn->ctl->svc));
	proto_kv_uint(&pk, "uid", conn->uid);
	proto_kv_bool(&pk, "admin", conn->admin);
	reply_end(conn, r->id);
}

static void
op_ping(struct ctl_req *r)
{
	msgpack_packer	pk;

	reply_begin(r->conn, r->id, &pk);
	proto_pack_cstr(&pk, "pong");
	reply_end(r->conn, r->id);
}

static void
reply_cert(struct ctl_conn *conn, uint64_t id, const struct cert_record *rec,
    int with_key)
{
	msgpack_packer	pk;

	reply_begin(conn, id, &pk);
	hub_pack_cert(&pk, rec, with_key);
	reply_end(conn, id);
}

static void
op_get(struct ctl_req *r)
{
	const struct cert_record *rec;
	struct svc_field	 alias;
	uint64_t		 cert_id;
	int			 has_id;
	char			 name[CERTD_ALIAS_MAX * 4 + 1];

	if (get_team(r, ACL_READ, 0) != 0 ||
	    get_uint(r, "cert_id", 0, &cert_id, &has_id) != 0 ||
	    get_str(r, "alias", 0, &alias) != 0)
		return;
	if (has_id)
		rec = service_get(r->conn->ctl->svc, r->team, cert_id);
	else if (alias.s != NULL) {
		if (alias.len >= sizeof(name) || memchr(alias.s, '\0',
		    alias.len) != NULL)
			rec = NULL;
		else {
			memcpy(name, alias.s, alias.len);
			name[alias.len] = '\0';
			rec = service_get_alias(r->conn->ctl->svc, r->team, name);
		}
	} else {
		bad_field(r, "cert_id", "cert_id or alias is required");
		return;
	}
	if (rec == NULL) {
		reply_error(r->conn, r->id, CERTD_ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	reply_cert(r->conn, r->id, rec,
	    (conn_perms(r->conn, r->team) & ACL_KEY) != 0);
}

static void
op_list(struct ctl_req *r)
{
	const struct cert_record *page[CERTD_PAGE_SIZE_MAX];
	msgpack_packer		 pk;
	uint64_t		 pno = 1, psize = CERTD_PAGE_SIZE_DEFAULT;
	size_t			 n, total, i;

	if (get_team(r, ACL_READ, 0) != 0 ||
	    get_uint(r, "page", 0, &pno, NULL) != 0 ||
	    get_uint(r, "page_size", 0, &psize, NULL) != 0)
		return;
	if (pno == 0) {
		bad_field(r, "page", "must be an integer >= 1");
		return;
	}
	if (psize == 0 || psize > CERTD_PAGE_SIZE_MAX) {
		bad_field(r, "page_size", "must be an integer from 1 to 500");
		return;
	}
	n = service_list(r->conn->ctl->svc, r->team, (size_t)pno,
	    (size_t)psize, page, &total);
	reply_begin(r->conn, r->id, &pk);
	msgpack_pack_map(&pk, 4);
	proto_pack_cstr(&pk, "list");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		msgpack_pack_map(&pk, 6);
		proto_kv_uint(&pk, "id", page[i]->id);
		proto_kv_str(&pk, "alias", page[i]->alias);
		proto_kv_str(&pk, "certificate_type", page[i]->cert_type);
		proto_kv_uint(&pk, "revision", page[i]->revision);
		proto_kv_int(&pk, "not_after", page[i]->meta.not_after);
		proto_kv_str(&pk, "fingerprint_sha256",
		    page[i]->meta.fingerprint);
	}
	proto_kv_uint(&pk, "page", pno);
	proto_kv_uint(&pk, "page_size", psize);
	proto_kv_uint(&pk, "total", total);
	reply_end(r->conn, r->id);
}

static struct ctl_wait *
wait_new(struct ctl_req *r, int with_key)
{
	struct ctl_wait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->conn = r->conn;
	w->id = r->id;
	w->with_key = with_key;
	r->conn->refs++;
	r->conn->ctl->waiting++;
	return w;
}

static void
wait_done(struct ctl_wait *w)
{
	struct ctl	*ctl = w->conn->ctl;

	conn_unref(w->conn);
	free(w);
	ctl->waiting--;
	check_drained(ctl);
}

static void
put_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;

	if (w->conn->state != CTL_CLOSED) {
		if (err != 0)
			reply_error(w->conn, w->id, err, NULL, NULL);
		else if (w->may_read)
			reply_cert(w->conn, w->id, rec, w->with_key);
		else {
			msgpack_packer	pk;

			reply_begin(w->conn, w->id, &pk);
			msgpack_pack_map(&pk, 2);
			proto_kv_uint(&pk, "id", rec->id);
			proto_kv_uint(&pk, "revision", rec->revision);
			reply_end(w->conn, w->id);
		}
	}
	wait_done(w);
}

static void
op_put(struct ctl_req *r)
{
	struct svc_put		 req;
	struct svc_error	 why;
	struct ctl_wait		*w;
	int			 rv;

	memset(&req, 0, sizeof(req));
	if (get_team(r, ACL_WRITE, 0) != 0 ||
	    get_uint(r, "cert_id", 0, &req.id, NULL) != 0 ||
	    get_str(r, "alias", 0, &req.alias) != 0 ||
	    get_str(r, "certificate", 0, &req.certificate) != 0 ||
	    get_str(r, "private_key", 0, &req.private_key) != 0 ||
	    get_str(r, "certificate_type", 0, &req.cert_type) != 0)
		return;
	req.team = r->team;
	if ((w = wait_new(r, (conn_perms(r->conn, r->team) & ACL_KEY) != 0)) ==
	    NULL) {
		reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	w->may_read = (conn_perms(r->conn, r->team) & ACL_READ) != 0;
	req.who = who(r->conn);
	if ((rv = service_put(r->conn->ctl->svc, &req, put_done, w,
	    &why)) != 0) {
		reply_error(r->conn, r->id, rv, why.field, why.reason);
		wait_done(w);
	}
}

static void
op_rollback(struct ctl_req *r)
{
	struct svc_error	 why;
	struct ctl_wait		*w;
	uint64_t		 cert_id, revision;
	unsigned		 perms;
	int			 rv;

	if (get_team(r, ACL_WRITE, 0) != 0 ||
	    get_uint(r, "cert_id", 1, &cert_id, NULL) != 0 ||
	    get_uint(r, "revision", 1, &revision, NULL) != 0)
		return;
	perms = conn_perms(r->conn, r->team);
	if ((w = wait_new(r, (perms & ACL_KEY) != 0)) == NULL) {
		reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	w->may_read = (perms & ACL_READ) != 0;
	if ((rv = service_rollback(r->conn->ctl->svc,
	    who(r->conn), r->team, cert_id,
	    revision, put_done, w, &why)) != 0) {
		reply_error(r->conn, r->id, rv, why.field, why.reason);
		wait_done(w);
	}
}

/* History items, packed apart first: their number is known at the end. */
struct ctl_versions {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	size_t		n;
	int		failed;		/* out of memory: sb not whole */
};

static int
versions_write(void *data, const char *buf, size_t len)
{
	struct ctl_versions	*v = data;

	if (v->failed || msgpack_sbuffer_write(&v->sb, buf, len) != 0) {
		v->failed = 1;
		return -1;
	}
	return 0;
}

static int
pack_version(const struct cert_record *rec, void *arg)
{
	struct ctl_versions	*v = arg;

	msgpack_pack_map(&v->pk, 6);
	proto_kv_uint(&v->pk, "revision", rec->revision);
	proto_kv_str(&v->pk, "alias", rec->alias);
	proto_kv_str(&v->pk, "certificate_type", rec->cert_type);
	proto_kv_int(&v->pk, "not_after", rec->meta.not_after);
	proto_kv_str(&v->pk, "fingerprint_sha256", rec->meta.fingerprint);
	proto_kv_int(&v->pk, "updated_at", rec->updated_at);
	v->n++;
	return v->failed;
}

static void
op_history(struct ctl_req *r)
{
	struct ctl_versions	v;
	msgpack_packer		pk;
	uint64_t		cert_id;
	int			rv;

	if (get_team(r, ACL_READ, 0) != 0 ||
	    get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	memset(&v, 0, sizeof(v));
	msgpack_sbuffer_init(&v.sb);
	msgpack_packer_init(&v.pk, &v, versions_write);
	rv = service_history(r->conn->ctl->svc, r->team, cert_id,
	    pack_version, &v);
	if (rv == 0 && v.failed)
		rv = CERTD_ERR_NOMEM;
	if (rv != 0)
		reply_error(r->conn, r->id, rv, NULL, NULL);
	else {
		reply_begin(r->conn, r->id, &pk);
		msgpack_pack_map(&pk, 1);
		proto_pack_cstr(&pk, "list");
		msgpack_pack_array(&pk, v.n);
		if (v.sb.size > 0)
			(void)pk.callback(pk.data, v.sb.data, v.sb.size);
		reply_end(r->conn, r->id);
	}
	msgpack_sbuffer_destroy(&v.sb);
}

static void
delete_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;
	msgpack_packer	 pk;

	if (w->conn->state != CTL_CLOSED) {
		if (err != 0)
			reply_error(w->conn, w->id, err, NULL, NULL);
		else {
			reply_begin(w->conn, w->id, &pk);
			msgpack_pack_map(&pk, 1);
			proto_kv_uint(&pk, "id", rec->id);
			reply_end(w->conn, w->id);
		}
	}
	wait_done(w);
}

static void
op_delete(struct ctl_req *r)
{
	struct svc_error	 why;
	struct ctl_wait		*w;
	uint64_t		 cert_id;
	int			 force = 0, rv;

	if (get_team(r, ACL_WRITE, 0) != 0 ||
	    get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	if (proto_get_bool(r->map, "force", &force) < 0) {
		bad_field(r, "force", "must be a boolean");
		return;
	}
	if ((w = wait_new(r, 0)) == NULL) {
		reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	if ((rv = service_delete(r->conn->ctl->svc,
	    who(r->conn), r->team, cert_id, force,
	    delete_done, w, &why)) != 0) {
		reply_error(r->conn, r->id, rv, why.field, why.reason);
		wait_done(w);
	}
}

/*
 * The ids and aliases of a watch request into f (counts) and *idv, *av
 * (the caller's to free, also on failure).  Returns 0, or -1 once the
 * error is answered.
 */
static int
watch_lists(struct ctl_req *r, const msgpack_object_array *ids,
    const msgpack_object_array *aliases, struct hub_filter *f,
    uint64_t **idv, char ***av)
{
	size_t	i;

	if (ids != NULL && ids->size > 0 &&
	    (*idv = calloc(ids->size, sizeof(**idv))) == NULL)
		goto nomem;
	for (i = 0; ids != NULL && i < ids->size; i++) {
		if (ids->ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			bad_field(r, "ids", "must be an array of unsigned integers");
			return -1;
		}
		(*idv)[f->n_ids++] = ids->ptr[i].via.u64;
	}
	if (aliases != NULL && aliases->size > 0 &&
	    (*av = calloc(aliases->size, sizeof(**av))) == NULL)
		goto nomem;
	for (i = 0; aliases != NULL && i < aliases->size; i++) {
		const msgpack_object *o = &aliases->ptr[i];

		if (o->type != MSGPACK_OBJECT_STR ||
		    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			bad_field(r, "aliases", "must be an array of strings");
			return -1;
		}
		if (o->via.str.size > CTL_ALIAS_BYTES) {
			bad_field(r, "aliases", "each at most 256 bytes (64 "
			    "characters), the longest an alias can be");
			return -1;
		}
		if (((*av)[i] = strndup(o->via.str.ptr, o->via.str.size)) ==
		    NULL)
			goto nomem;
		f->n_aliases++;
	}
	return 0;
nomem:
	reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
	return -1;
}

static void
op_watch(struct ctl_req *r)
{
	struct ctl_conn			*conn = r->conn;
	const msgpack_object_array	*ids = NULL, *aliases = NULL;
	struct hub_filter		 f;
	struct hub_refusal		 why;
	struct svc_field		 name;
	char				 namebuf[HUB_NAME_MAX + 1];
	uint64_t			*idv = NULL, since = 0, epoch = 0;
	uint64_t			 watch, rev;
	char				**av = NULL;
	msgpack_packer			 pk;
	size_t				 i;
	int				 has_since = 0, rv;

	memset(&f, 0, sizeof(f));
	if (get_team(r, ACL_READ, 1) != 0 ||
	    get_uint(r, "since", 0, &since, &has_since) != 0 ||
	    get_uint(r, "epoch", 0, &epoch, NULL) != 0 ||
	    get_str(r, "name", 0, &name) != 0)
		return;
	if (name.s != NULL) {
		if (name.len == 0 || name.len > HUB_NAME_MAX ||
		    !util_utf8_valid(name.s, name.len) ||
		    memchr(name.s, '\0', name.len) != NULL) {
			bad_field(r, "name", "must be 1-64 bytes of UTF-8");
			return;
		}
		memcpy(namebuf, name.s, name.len);
		namebuf[name.len] = '\0';
		f.name = namebuf;
	}
	if (proto_get_array(r->map, "ids", &ids) < 0) {
		bad_field(r, "ids", "must be an array of unsigned integers");
		return;
	}
	if (proto_get_array(r->map, "aliases", &aliases) < 0) {
		bad_field(r, "aliases", "must be an array of strings");
		return;
	}
	if (r->team[0] == '\0' && ((ids != NULL && ids->size > 0) ||
	    (aliases != NULL && aliases->size > 0))) {
		bad_field(r, "team", "is required with ids or aliases");
		return;
	}
	if ((ids != NULL && ids->size > CTL_FILTER_MAX) ||
	    (aliases != NULL && aliases->size > CTL_FILTER_MAX)) {
		bad_field(r, ids != NULL && ids->size > CTL_FILTER_MAX ? "ids" :
		    "aliases", "at most 1024 entries");
		return;
	}
	if (conn->hc != NULL && hub_conn_watches(conn->hc) >= CTL_WATCHES_MAX) {
		bad_field(r, "watch", "at most 64 watches per connection");
		return;
	}
	if (watch_lists(r, ids, aliases, &f, &idv, &av) != 0)
		goto out;
	f.team = r->team[0] != '\0' ? r->team : NULL;
	f.ids = idv;
	f.aliases = (const char *const *)av;

	if (conn->hc == NULL) {
		if ((conn->hc = hub_conn_new(conn->ctl->hub, &conn_hub_ops, conn,
		    conn->ctl->cfg->ctl_out_limit)) == NULL)
			goto nomem;
		hub_conn_set_peer(conn->hc, conn->uid, conn->pid, conn->admin);
	}
	if ((rv = hub_watch_add(conn->hc, &f, &watch, &rev, &why)) != 0) {
		if (why.reason != NULL)
			log_warn("ctl watch refused uid=%lu pid=%ld: %s",
			    (unsigned long)conn->uid, (long)conn->pid,
			    why.reason);
		reply_error(conn, r->id, rv, why.field, why.reason);
		goto out;
	}
	conn_set_idle(conn);
	reply_begin(conn, r->id, &pk);
	msgpack_pack_map(&pk, 3);
	proto_kv_uint(&pk, "watch", watch);
	proto_kv_uint(&pk, "revision", rev);
	proto_kv_uint(&pk, "epoch", service_epoch(conn->ctl->svc));
	reply_end(conn, r->id);
	if (conn->state != CTL_CLOSED &&
	    (rv = hub_watch_replay(conn->hc, watch, has_since, since, epoch))
	    != 0) {
		log_error("ctl watch replay failed watch=%llu err=%d",
		    (unsigned long long)watch, rv);
		conn_fail(conn, err_status(rv), "replay failed");
	}
	goto out;
nomem:
	reply_error(conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
out:
	for (i = 0; i < f.n_aliases; i++)
		free(av[i]);
	free(av);
	free(idv);
}

static void
op_unwatch(struct ctl_req *r)
{
	uint64_t	watch;
	int		rv;

	if (get_uint(r, "watch", 1, &watch, NULL) != 0)
		return;
	rv = r->conn->hc != NULL ? hub_unwatch(r->conn->hc, watch) :
	    CERTD_ERR_NOT_FOUND;
	if (rv == CERTD_ERR_NOT_FOUND) {
		reply_error(r->conn, r->id, CERTD_ERR_NO_WATCH, NULL, NULL);
		return;
	}
	conn_set_idle(r->conn);
	reply_nil(r->conn, r->id);
}

/* The status of an ack: ok, failed or requested; -1 when none of them. */
static int
ack_status(const struct svc_field *f)
{
	static const struct {
		const char		*name;
		enum hub_ack_status	 status;
	} names[] = {
		{ "ok", HUB_ACK_OK },
		{ "failed", HUB_ACK_FAILED },
		{ "requested", HUB_ACK_REQUESTED },
	};
	size_t	i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f->len == strlen(names[i].name) &&
		    memcmp(f->s, names[i].name, f->len) == 0)
			return (int)names[i].status;
	return -1;
}

/*
 * The TLS check an ack may carry: served_fingerprint_sha256 (64 lowercase
 * hex digits) and verified_at_unix (Unix seconds; certd's time now when
 * only the fingerprint came).  Replies and returns -1 when malformed.
 */
static int
ack_verify_fields(struct ctl_req *r, struct hub_ack *a)
{
	struct svc_field	fp;
	uint64_t		at = 0;
	size_t			i;
	int			has_at;

	if (get_str(r, "served_fingerprint_sha256", 0, &fp) != 0 ||
	    get_uint(r, "verified_at_unix", 0, &at, &has_at) != 0)
		return -1;
	if (has_at && (at == 0 || at > INT64_MAX))
		return bad_field(r, "verified_at_unix",
		    "must be Unix seconds after 1970");
	if (fp.s != NULL) {
		for (i = 0; i < fp.len; i++)
			if (!((fp.s[i] >= '0' && fp.s[i] <= '9') ||
			    (fp.s[i] >= 'a' && fp.s[i] <= 'f')))
				break;
		if (fp.len != CERTD_FINGERPRINT_LEN || i != fp.len)
			return bad_field(r, "served_fingerprint_sha256",
			    "must be 64 lowercase hex digits (SHA-256)");
		memcpy(a->served, fp.s, fp.len);
		a->served[fp.len] = '\0';
		if (!has_at)
			at = (uint64_t)time(NULL);
	}
	a->verified_at = (int64_t)at;
	return 0;
}

static void
op_ack(struct ctl_req *r)
{
	struct svc_field	status, detail;
	struct hub_ack		ack;
	uint64_t		watch;
	int			st;

	memset(&ack, 0, sizeof(ack));
	if (get_uint(r, "watch", 1, &watch, NULL) != 0 ||
	    get_uint(r, "revision", 1, &ack.revision, NULL) != 0 ||
	    get_str(r, "status", 1, &status) != 0 ||
	    get_str(r, "detail", 0, &detail) != 0)
		return;
	if ((st = ack_status(&status)) < 0) {
		bad_field(r, "status", "must be ok, failed or requested");
		return;
	}
	ack.status = (enum hub_ack_status)st;
	if (detail.s != NULL && (!util_utf8_valid(detail.s, detail.len) ||
	    memchr(detail.s, '\0', detail.len) != NULL)) {
		bad_field(r, "detail", "must be UTF-8 text");
		return;
	}
	if (ack_verify_fields(r, &ack) != 0)
		return;
	/* Keep the whole characters that fit. */
	if (detail.len >= HUB_DETAIL_MAX) {
		detail.len = HUB_DETAIL_MAX - 1;
		while (detail.len > 0 &&
		    ((unsigned char)detail.s[detail.len] & 0xc0) == 0x80)
			detail.len--;
	}
	if (detail.s != NULL)
		memcpy(ack.detail, detail.s, detail.len);
	ack.detail[detail.len] = '\0';
	if (r->conn->hc == NULL || hub_ack(r->conn->hc, watch, &ack) != 0) {
		reply_error(r->conn, r->id, CERTD_ERR_NO_WATCH, NULL, NULL);
		return;
	}
	reply_nil(r->conn, r->id);
}

/*
 * A subscriber of the `subscribers` result; the fields of a TLS check
 * only when its last ack carried one.
 */
static void
pack_subscriber(const struct hub_subscriber *sub, void *arg)
{
	msgpack_packer		*pk = arg;
	const struct hub_ack	*a = sub->ack;
	char			 at[24];
	int			 verified = a != NULL && a->verified_at != 0;

	msgpack_pack_map(pk, 8 + (verified ? 2 + (*a->served != '\0') : 0));
	proto_kv_str(pk, "name", sub->name);
	proto_kv_uint(pk, "uid", sub->uid);
	proto_kv_int(pk, "pid", sub->pid);
	proto_kv_uint(pk, "watch", sub->watch);
	if (a != NULL) {
		proto_kv_uint(pk, "revision", a->revision);
		proto_kv_str(pk, "status", hub_ack_status_name(a->status));
		proto_kv_str(pk, "detail", a->detail);
		proto_kv_int(pk, "at", a->at);
	} else {
		proto_kv_uint(pk, "revision", 0);
		proto_kv_str(pk, "status", "pending");
		proto_kv_str(pk, "detail", "");
		proto_kv_int(pk, "at", 0);
	}
	if (!verified)
		return;
	if (*a->served != '\0')
		proto_kv_str(pk, "served_fingerprint_sha256", a->served);
	util_time_iso(a->verified_at, 1, at);
	proto_kv_str(pk, "verified_at", at);
	proto_kv_int(pk, "verified_at_unix", a->verified_at);
}

static void
count_subscriber(const struct hub_subscriber *sub, void *arg)
{
	(void)sub;
	(*(size_t *)arg)++;
}

static void
op_subscribers(struct ctl_req *r)
{
	msgpack_packer	pk;
	uint64_t	cert_id;
	size_t		n = 0;

	if (get_team(r, ACL_READ, 0) != 0 ||
	    get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	if (service_subscribers(r->conn->ctl->svc, r->team, cert_id,
	    count_subscriber, &n) != 0) {
		reply_error(r->conn, r->id, CERTD_ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	reply_begin(r->conn, r->id, &pk);
	msgpack_pack_map(&pk, 1);
	proto_pack_cstr(&pk, "list");
	msgpack_pack_array(&pk, n);
	service_subscribers(r->conn->ctl->svc, r->team, cert_id,
	    pack_subscriber, &pk);
	reply_end(r->conn, r->id);
}

/* Admin ops: root and certd's own uid only. */
static int
need_admin(struct ctl_req *r)
{
	if (r->conn->admin)
		return 0;
	reply_error(r->conn, r->id, CERTD_ERR_FORBIDDEN, NULL, NULL);
	return -1;
}

static void
rekey_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;
	msgpack_packer	 pk;
	const char	*kid = w->key_id;
	const char	*why = service_rekey_why(w->conn->ctl->svc);
	char		 kept[17];

	(void)rec;
	if (err == 0 && why == NULL)
		log_info("master key rotated key_id=%s", kid);
	else if (err == 0)
		log_error("master key rotated key_id=%s: %s", kid, why);
	else {
		service_key_id(w->conn->ctl->svc, kept);
		log_error("master key rotation failed, key_id=%s stays: %s",
		    kept, why != NULL ? why : err_msg(err));
	}
	if (w->conn->state != CTL_CLOSED) {
		if (err != 0)
			reply_error(w->conn, w->id, err, NULL, why);
		else {
			reply_begin(w->conn, w->id, &pk);
			msgpack_pack_map(&pk, 1);
			proto_kv_str(&pk, "key_id", kid);
			reply_end(w->conn, w->id);
		}
	}
	wait_done(w);
}

static void
op_rekey(struct ctl_req *r)
{
	struct ctl_wait	*w;
	const char	*why;
	int		 rv;

	if (need_admin(r) != 0)
		return;
	if ((w = wait_new(r, 0)) == NULL) {
		reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	if ((rv = service_rekey(r->conn->ctl->svc,
	    who(r->conn), rekey_done, w)) != 0) {
		why = service_rekey_why(r->conn->ctl->svc);
		log_error("master key rotation refused: %s",
		    why != NULL ? why : err_msg(rv));
		reply_error(r->conn, r->id, rv, NULL, why);
		wait_done(w);
		return;
	}
	/*
	 * The store switched to this rotation's key on submission: its id,
	 * now, not at completion, when a later rotation may have switched
	 * again (or a failed one switched back).
	 */
	service_key_id(r->conn->ctl->svc, w->key_id);
}

/*
 * A backup: a checkpoint, hard links or copies of table files, and fsyncs.
 * It runs on the admin worker (store_backup takes the store's file locks),
 * so that the loop never waits on the disk; the answer comes back to it.
 */
struct backup_job {
	struct workq_job	 job;
	struct ctl_wait		*w;
	struct service		*svc;
	int			 rv;
	char			 path[4096];
	char			 why[512];
};

/* On the admin worker. */
static void
backup_run(struct workq_job *job)
{
	struct backup_job	*b = (struct backup_job *)job;

	b->rv = service_backup(b->svc, b->path, b->why, sizeof(b->why));
}

/* Back on the loop. */
static void
backup_done(struct workq_job *job)
{
	struct backup_job	*b = (struct backup_job *)job;
	struct ctl_wait		*w = b->w;

	if (b->rv != 0)
		log_error("backup failed dir=%s: %s", b->path, b->why);
	else
		log_info("backup written dir=%s", b->path);
	if (w->conn->state != CTL_CLOSED) {
		if (b->rv != 0)
			reply_error(w->conn, w->id, b->rv, "dir", b->why);
		else
			reply_nil(w->conn, w->id);
	}
	wait_done(w);
	free(b);
}

static void
op_backup(struct ctl_req *r)
{
	struct svc_field	 dir;
	struct backup_job	*b;

	if (need_admin(r) != 0 || get_str(r, "dir", 1, &dir) != 0)
		return;
	if (dir.len == 0 || dir.len >= sizeof(b->path) || dir.s[0] != '/' ||
	    memchr(dir.s, '\0', dir.len) != NULL) {
		bad_field(r, "dir", "must be an absolute path");
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->w = wait_new(r, 0)) == NULL) {
		free(b);
		reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	b->job.run = backup_run;
	b->job.done = backup_done;
	b->svc = r->conn->ctl->svc;
	memcpy(b->path, dir.s, dir.len);
	b->path[dir.len] = '\0';
	workq_submit(r->conn->ctl->admin, &b->job);
}

/* The first CTL_OPEN_OPS ops are open to peers without any grant. */
#define CTL_OPEN_OPS	2
#define CTL_WHY_NO_GRANT \
	"this peer has no grant: no rule of certd's [acl] names its uid or " \
	"groups, and only hello and ping are open to it"

static const struct {
	const char	*name;
	void		(*fn)(struct ctl_req *);
} ctl_ops[] = {
	{ "hello",	op_hello },	/* open */
	{ "ping",	op_ping },	/* open */
	{ "get",	op_get },
	{ "list",	op_list },
	{ "put",	op_put },
	{ "delete",	op_delete },
	{ "watch",	op_watch },
	{ "unwatch",	op_unwatch },
	{ "ack",	op_ack },
	{ "subscribers", op_subscribers },
	{ "history",	op_history },
	{ "rollback",	op_rollback },
	{ "rekey",	op_rekey },
	{ "backup",	op_backup },
};

/* Handle one frame payload.  Returns -1 when the connection must stop. */
static int
dispatch(struct ctl_conn *conn, const char *buf, size_t len)
{
	msgpack_unpacked	 msg;
	struct ctl_req		 r;
	const char		*reason, *op;
	char			 why[96];
	size_t			 op_len, i;
	int			 rv = 0;

	msgpack_unpacked_init(&msg);
	if (proto_decode(buf, len, &msg, &reason) != 0) {
		snprintf(why, sizeof(why), "malformed frame: %s", reason);
		conn_fail(conn, 400, why);
		rv = -1;
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.conn = conn;
	r.map = &msg.data;
	if (proto_get_uint(r.map, "id", &r.id) != 1 ||
	    proto_get_str(r.map, "op", &op, &op_len) != 1) {
		conn_fail(conn, 400, "malformed frame: id and op are required");
		rv = -1;
		goto out;
	}
	for (i = 0; i < sizeof(ctl_ops) / sizeof(ctl_ops[0]); i++) {
		if (strlen(ctl_ops[i].name) != op_len ||
		    memcmp(ctl_ops[i].name, op, op_len) != 0)
			continue;
		if (i >= CTL_OPEN_OPS && conn_perms(conn, NULL) == 0) {
			reply_error(conn, r.id, CERTD_ERR_FORBIDDEN, NULL,
			    CTL_WHY_NO_GRANT);
			goto out;
		}
		ctl_ops[i].fn(&r);
		goto out;
	}
	if (conn_perms(conn, NULL) == 0) {
		reply_error(conn, r.id, CERTD_ERR_FORBIDDEN, NULL,
		    CTL_WHY_NO_GRANT);
		goto out;
	}
	reply_error(conn, r.id, CERTD_ERR_BAD_REQUEST, "op", "unknown op");
out:
	msgpack_unpacked_destroy(&msg);
	return rv;
}

/* --- bufferevent callbacks ------------------------------------------------ */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn	*conn = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	unsigned char	*p;
	size_t		 avail, len;
	int		 rc;

	while (conn->state == CTL_OPEN) {
		avail = evbuffer_get_length(in);
		if (avail < PROTO_HEADER_LEN)
			break;
		p = evbuffer_pullup(in, PROTO_HEADER_LEN);
		rc = proto_frame_peek(p, avail, conn->ctl->cfg->frame_max, &len);
		if (rc == 0)
			break;
		if (rc < 0) {
			conn_fail(conn, rc == -1 ? 400 : 413, rc == -1 ?
			    "empty frame" : "frame too large");
			break;
		}
		p = evbuffer_pullup(in, (ev_ssize_t)(PROTO_HEADER_LEN + len));
		if (p == NULL) {
			conn_fail(conn, 503, "out of memory");
			break;
		}
		rc = dispatch(conn, (const char *)p + PROTO_HEADER_LEN, len);
		/* Requests may carry key text: wipe it from the buffer. */
		if (conn->state != CTL_CLOSED) {
			memset(p, 0, PROTO_HEADER_LEN + len);
			evbuffer_drain(in, PROTO_HEADER_LEN + len);
		}
		if (rc != 0)
			break;
	}
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn	*conn = arg;

	if (conn->state == CTL_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_close(conn);
		return;
	}
	if (conn->hc != NULL)
		hub_conn_drain(conn->hc);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn	*conn = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_debug("ctl connection timed out uid=%lu pid=%ld",
		    (unsigned long)conn->uid, (long)conn->pid);
	conn_close(conn);
}

/* --- accepting -------------------------------------------------------------- */

/* Primary and supplementary groups of the peer's uid. */
static void
peer_groups(struct ctl_conn *conn)
{
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];
	gid_t		 groups[CTL_GROUPS_MAX];
	int		 n = CTL_GROUPS_MAX, i;

	conn->gids[0] = conn->gid;
	conn->n_gids = 1;
	if (getpwuid_r(conn->uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		n = CTL_GROUPS_MAX;
	for (i = 0; i < n && conn->n_gids < CTL_GROUPS_MAX; i++)
		if (groups[i] != conn->gid)
			conn->gids[conn->n_gids++] = groups[i];
}

/* Refuse a connection over a cap: best-effort error frame, close. */
static void
refuse(int fd, const char *reason)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	if (proto_error_frame(&sb, 0, 503, "too many connections", NULL,
	    reason) == 0 &&
	    send(fd, sb.data, sb.size, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("ctl refuse: %s", strerror(errno));
	msgpack_sbuffer_destroy(&sb);
	close(fd);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct ctl	*ctl = arg;
	struct ctl_conn	*conn, *c;
	struct ucred	 cred;
	socklen_t	 credlen = sizeof(cred);
	size_t		 same_uid = 0, reserved, max = ctl->cfg->ctl_max_conns;
	const char	*why = NULL;
	int		 admin;

	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0) {
		log_warn("ctl SO_PEERCRED failed: %s", strerror(errno));
		close(fd);
		return;
	}
	admin = cred.uid == 0 || cred.uid == ctl->self_uid;
	/* Half of a small cap at most, so that non-admins get some. */
	reserved = max > 2 * CTL_ADMIN_SLOTS ? CTL_ADMIN_SLOTS : max / 2;
	TAILQ_FOREACH(c, &ctl->conns, entry)
		same_uid += c->uid == cred.uid;
	if (same_uid >= ctl->cfg->ctl_max_conns_per_uid)
		why = "this uid holds ctl_max_conns_per_uid connections";
	else if (admin && ctl->n_conns >= max)
		why = "all ctl_max_conns connections are in use";
	else if (!admin && ctl->n_conns + reserved >= max)
		why = "the connections left are kept for admins (root and "
		    "certd's uid)";
	if (why != NULL) {
		log_warn("ctl too many connections uid=%lu pid=%ld: %s",
		    (unsigned long)cred.uid, (long)cred.pid, why);
		refuse(fd, why);
		return;
	}
	if ((conn = calloc(1, sizeof(*conn))) == NULL ||
	    (conn->ev_free = event_new(ctl->base, -1, 0, conn_free_cb,
	    conn)) == NULL ||
	    (conn->ev_close = event_new(ctl->base, -1, 0, conn_close_cb,
	    conn)) == NULL ||
	    (conn->bev = bufferevent_socket_new(ctl->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		if (conn != NULL) {
			msgpack_sbuffer_init(&conn->sb);
			conn_destroy(conn);
		}
		close(fd);
		return;
	}
	conn->ctl = ctl;
	conn->state = CTL_OPEN;
	conn->refs = 1;
	conn->uid = cred.uid;
	conn->gid = cred.gid;
	conn->pid = cred.pid;
	conn->admin = admin;
	msgpack_sbuffer_init(&conn->sb);
	peer_groups(conn);
	TAILQ_INSERT_TAIL(&ctl->conns, conn, entry);
	ctl->n_conns++;

	bufferevent_setcb(conn->bev, conn_read_cb, conn_write_cb,
	    conn_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE,
	    ctl->cfg->ctl_out_limit / 2, 0);
	conn_set_idle(conn);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	log_debug("ctl connection uid=%lu pid=%ld admin=%d",
	    (unsigned long)conn->uid, (long)conn->pid, conn->admin);
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct ctl	*ctl = arg;

	(void)fd;
	(void)what;
	if (!ctl->stopping)
		evconnlistener_enable(ctl->listener);
}

/*
 * accept failed for a reason other than a transient one (EMFILE, ENFILE,
 * ENOBUFS): pause accepting for a second instead of spinning on it.
 */
static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct ctl	*ctl = arg;
	struct timeval	 tv = { CTL_ACCEPT_RETRY, 0 };

	log_warn("ctl accept failed, pausing %d s: %s", CTL_ACCEPT_RETRY,
	    strerror(errno));
	evconnlistener_disable(l);
	evtimer_add(ctl->ev_accept, &tv);
}

/*
 * A socket file at path: remove it when it is a socket nobody listens on,
 * refuse otherwise.
 */
static int
clear_stale(const char *path, char *errbuf, size_t errlen)
{
	struct sockaddr_un	sun;
	struct stat		st;
	int			fd, rv;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(errbuf, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rv = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rv == 0) {
		snprintf(errbuf, errlen, "socket %s is in use by another process",
		    path);
		return -1;
	}
	if (unlink(path) != 0) {
		snprintf(errbuf, errlen, "cannot remove stale socket %s: %s",
		    path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Remove the socket file at ctl->path, only when it is the one certd bound
 * (or, before that is known, a socket): a name that someone replaced is
 * theirs, not certd's to remove.
 */
static void
socket_unlink(const struct ctl *ctl)
{
	struct stat	st;

	if (lstat(ctl->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    (ctl->sock_ino == 0 ||
	    (st.st_dev == ctl->sock_dev && st.st_ino == ctl->sock_ino)))
		(void)unlink(ctl->path);
}

/*
 * Give the socket file just bound its mode (0660, which the umask around
 * bind already gave unless a default ACL interferes) and group, on the
 * file itself: opened O_PATH | O_NOFOLLOW and checked to be a socket, so
 * a name replaced meanwhile (by a link to another file) is refused, never
 * changed.  Records the file's identity for socket_unlink.
 */
static int
socket_file_set(struct ctl *ctl, const struct config *cfg, char *errbuf,
    size_t errlen)
{
	struct group	*gr = NULL;
	struct stat	 st;
	char		 proc[64];
	int		 fd, rv = -1;

	if (cfg->socket_group != NULL &&
	    (gr = getgrnam(cfg->socket_group)) == NULL) {
		snprintf(errbuf, errlen, "unknown socket_group %s",
		    cfg->socket_group);
		return -1;
	}
	if ((fd = open(ctl->path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		snprintf(errbuf, errlen, "cannot open socket %s: %s", ctl->path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(errbuf, errlen, "socket %s was replaced by another "
		    "file after bind", ctl->path);
		goto out;
	}
	ctl->sock_dev = st.st_dev;
	ctl->sock_ino = st.st_ino;
	/* chmod through the descriptor: the magic link is that very file */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((st.st_mode & 07777) != 0660 && chmod(proc, 0660) != 0) {
		snprintf(errbuf, errlen, "cannot chmod socket %s: %s",
		    ctl->path, strerror(errno));
		goto out;
	}
	if (gr != NULL && fchownat(fd, "", (uid_t)-1, gr->gr_gid,
	    AT_EMPTY_PATH) != 0) {
		snprintf(errbuf, errlen, "cannot chown socket %s: %s",
		    ctl->path, strerror(errno));
		goto out;
	}
	rv = 0;
out:
	if (fd >= 0)
		close(fd);
	return rv;
}

struct ctl *
ctl_new(struct event_base *base, struct service *svc, struct hub *hub,
    const struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	struct ctl		*ctl;
	struct sockaddr_un	 sun;
	mode_t			 old;
	int			 fd = -1;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "socket path too long: %s", path);
		return NULL;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	ctl->base = base;
	ctl->svc = svc;
	ctl->hub = hub;
	if ((ctl->admin = workq_new(base, "certd-admin")) == NULL) {
		snprintf(errbuf, errlen, "cannot start the admin worker");
		goto fail;
	}
	ctl->cfg = cfg;
	ctl->self_uid = geteuid();
	TAILQ_INIT(&ctl->conns);
	TAILQ_INIT(&ctl->dead);

	errbuf[0] = '\0';
	if (clear_stale(path, errbuf, errlen) != 0) {
		if (errbuf[0] == '\0')
			snprintf(errbuf, errlen, "cannot use socket %s: %s", path,
			    strerror(errno));
		goto fail;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0) {
		snprintf(errbuf, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		snprintf(errbuf, errlen, "cannot bind socket %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	umask(old);
	if (socket_file_set(ctl, cfg, errbuf, errlen) != 0)
		goto fail_unlink;
	if ((ctl->ev_accept = evtimer_new(base, accept_resume, ctl)) == NULL ||
	    (ctl->listener = evconnlistener_new(base, accept_cb, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd)) == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s: %s", path,
		    strerror(errno));
		goto fail_unlink;
	}
	evconnlistener_set_error_cb(ctl->listener, accept_error);
	return ctl;
fail_unlink:
	socket_unlink(ctl);
fail:
	if (fd >= 0)
		close(fd);
	if (ctl != NULL) {
		workq_free(ctl->admin);
		if (ctl->ev_accept != NULL)
			event_free(ctl->ev_accept);
		free(ctl->path);
		free(ctl);
	}
	return NULL;
}

void
ctl_free(struct ctl *ctl)
{
	struct ctl_conn	*conn;

	if (ctl == NULL)
		return;
	workq_free(ctl->admin);
	if (ctl->listener != NULL) {
		evconnlistener_free(ctl->listener);
		socket_unlink(ctl);
	}
	if (ctl->ev_accept != NULL)
		event_free(ctl->ev_accept);
	while ((conn = TAILQ_FIRST(&ctl->conns)) != NULL)
		conn_close(conn);
	/* The loop has stopped: free what it would have freed. */
	while ((conn = TAILQ_FIRST(&ctl->dead)) != NULL) {
		TAILQ_REMOVE(&ctl->dead, conn, entry);
		conn_destroy(conn);
	}
	free(ctl->path);
	free(ctl);
}

void
ctl_stop_work(struct ctl *ctl)
{
	if (ctl != NULL)
		workq_stop(ctl->admin);
}

void
ctl_set_config(struct ctl *ctl, const struct config *cfg)
{
	struct ctl_conn	*conn;
	size_t		 n;

	ctl->cfg = cfg;
	/* Rights are asked at each use; watches must be ended here. */
	TAILQ_FOREACH(conn, &ctl->conns, entry) {
		if (conn->hc == NULL || (n = hub_conn_recheck(conn->hc)) == 0)
			continue;
		log_warn("ctl reload revoked a peer's read permission, ended "
		    "%zu watch(es) uid=%lu pid=%ld", n,
		    (unsigned long)conn->uid, (long)conn->pid);
		if (conn->state == CTL_OPEN && !conn->doomed)
			conn_set_idle(conn);
	}
}

void
ctl_shutdown(struct ctl *ctl, ctl_drained_cb cb, void *arg)
{
	struct ctl_conn	*conn;

	ctl->stopping = 1;
	if (ctl->listener != NULL)
		evconnlistener_disable(ctl->listener);
	/* No new requests; those already read finish and are answered. */
	TAILQ_FOREACH(conn, &ctl->conns, entry)
		bufferevent_disable(conn->bev, EV_READ);
	ctl->drained_cb = cb;
	ctl->drained_arg = arg;
	check_drained(ctl);
}

size_t
ctl_conns(const struct ctl *ctl)
{
	return ctl->n_conns;
}

size_t
ctl_unsent(const struct ctl *ctl)
{
	const struct ctl_conn	*conn;
	size_t			 n = 0;

	TAILQ_FOREACH(conn, &ctl->conns, entry)
		n += conn_queued((void *)conn);
	return n;
}
