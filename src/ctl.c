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
 * may only say hello and ping.  The last CERTD_CTL_ADMIN_SLOTS
 * connections are kept for admins, so that other uids, whatever their
 * number, never lock root out.
 *
 * The ops themselves are in ctl_ops.c (decode a request, call the service,
 * encode the answer) and ctl_watch.c (watches, acks, subscribers); what
 * they share with this file is in ctl_int.h.
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
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl.h"
#include "ctl_int.h"
#include "err.h"
#include "hub.h"
#include "log.h"
#include "proto.h"
#include "util.h"
#include "workq.h"

static void	conn_close(struct ctl_conn *conn);

/* --- connection life --------------------------------------------------- */

static void
conn_destroy(struct ctl_conn *conn)
{
	if (conn->ev_free != NULL)
		event_free(conn->ev_free);
	if (conn->ev_close != NULL)
		event_free(conn->ev_close);
	util_wipe(conn->sb.data, conn->sb.alloc);
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
unsigned
ctl_conn_perms(const struct ctl_conn *conn, const char *team)
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
	return (ctl_conn_perms(ctx, team) & ACL_READ) != 0;
}

static int
conn_may_write(void *ctx, const char *team)
{
	return (ctl_conn_perms(ctx, team) & ACL_WRITE) != 0;
}

static int
conn_may_key(void *ctx, const char *team)
{
	return (ctl_conn_perms(ctx, team) & ACL_KEY) != 0;
}

static void
conn_drop(void *ctx, const char *why)
{
	struct ctl_conn	*conn = ctx;

	log_warn("ctl dropping a subscriber uid=%lu pid=%ld: %s",
	    (unsigned long)conn->uid, (long)conn->pid, why);
	ctl_conn_fail(conn, CERTD_ERR_TOO_SLOW, why);
}

const struct hub_conn_ops ctl_conn_hub_ops = {
	.send = conn_send,
	.queued = conn_queued,
	.may_read = conn_may_read,
	.may_key = conn_may_key,
	.may_write = conn_may_write,
	.drop = conn_drop,
};

/* Idle timeout only while the connection has no watch. */
void
ctl_conn_set_idle(struct ctl_conn *conn)
{
	struct timeval	tv = { conn->ctl->cfg->ctl_idle_timeout, 0 };

	if (conn->hc != NULL && hub_conn_watches(conn->hc) > 0)
		bufferevent_set_timeouts(conn->bev, NULL, NULL);
	else
		bufferevent_set_timeouts(conn->bev, &tv, NULL);
}

/* --- replies --------------------------------------------------------------- */

/* An error frame answering request id. */
void
ctl_reply_error(struct ctl_conn *conn, uint64_t id, int err, const char *field,
    const char *reason)
{
	util_wipe(conn->sb.data, conn->sb.size);
	if (proto_error_frame(&conn->sb, id, err_socket_code(err),
	    err_msg(err), field, reason) == 0)
		conn_send(conn, conn->sb.data, conn->sb.size);
}

/* Start {"id":id,"ok":true,"result": ...; the caller packs the result. */
void
ctl_reply_begin(struct ctl_conn *conn, uint64_t id, msgpack_packer *pk)
{
	util_wipe(conn->sb.data, conn->sb.size);
	proto_begin(&conn->sb, pk);
	msgpack_pack_map(pk, 3);
	proto_kv_uint(pk, "id", id);
	proto_kv_bool(pk, "ok", 1);
	proto_pack_cstr(pk, "result");
}

/* Finish the frame ctl_reply_begin started and queue it. */
void
ctl_reply_end(struct ctl_conn *conn, uint64_t id)
{
	if (proto_end(&conn->sb, (size_t)-1) != 0) {
		ctl_reply_error(conn, id, CERTD_ERR_INTERNAL, NULL, NULL);
		return;
	}
	conn_send(conn, conn->sb.data, conn->sb.size);
}

/* Success with a nil result. */
void
ctl_reply_nil(struct ctl_conn *conn, uint64_t id)
{
	msgpack_packer	pk;

	ctl_reply_begin(conn, id, &pk);
	msgpack_pack_nil(&pk);
	ctl_reply_end(conn, id);
}

/* A frame-level failure: error frame with id 0, then close. */
void
ctl_conn_fail(struct ctl_conn *conn, int err, const char *msg)
{
	struct timeval	tv = { CERTD_CTL_CLOSE_TIMEOUT, 0 };

	if (conn->state != CTL_OPEN || conn->doomed)
		return;
	util_wipe(conn->sb.data, conn->sb.size);
	if (proto_error_frame(&conn->sb, 0, err_socket_code(err),
	    msg != NULL ? msg : err_msg(err), NULL, NULL) == 0)
		conn_send(conn, conn->sb.data, conn->sb.size);
	if (conn->doomed)
		return;
	conn->state = CTL_CLOSING;
	bufferevent_disable(conn->bev, EV_READ);
	bufferevent_set_timeouts(conn->bev, NULL, &tv);
	if (conn_queued(conn) == 0)
		conn_close_later(conn);
}

/* --- requests waiting for the store -------------------------------------- */

/*
 * The wait holds a reference on its connection, so that the answer finds
 * the struct even when the peer has gone; it is answered "out of memory"
 * here when it cannot be had.
 */
struct ctl_wait *
ctl_wait_new(struct ctl_req *r, int with_key)
{
	struct ctl_wait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return NULL;
	}
	w->conn = r->conn;
	w->id = r->id;
	w->with_key = with_key;
	r->conn->refs++;
	r->conn->ctl->waiting++;
	return w;
}

/* The last use of w: its reference goes, and a shutdown may be drained. */
void
ctl_wait_done(struct ctl_wait *w)
{
	struct ctl	*ctl = w->conn->ctl;

	conn_unref(w->conn);
	free(w);
	ctl->waiting--;
	check_drained(ctl);
}

static void	conn_read_cb(struct bufferevent *, void *);

void
ctl_conn_hold(struct ctl_conn *conn)
{
	conn->held = 1;
	if (conn->state == CTL_OPEN)
		bufferevent_disable(conn->bev, EV_READ);
}

void
ctl_conn_release(struct ctl_conn *conn)
{
	conn->held = 0;
	if (conn->state != CTL_OPEN || conn->doomed)
		return;
	if (!conn->ctl->stopping)	/* else what was read is all */
		bufferevent_enable(conn->bev, EV_READ);
	conn_read_cb(conn->bev, conn);	/* what came while held */
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

	while (conn->state == CTL_OPEN && !conn->held) {
		avail = evbuffer_get_length(in);
		if (avail < CERTD_FRAME_HEADER_LEN)
			break;
		p = evbuffer_pullup(in, CERTD_FRAME_HEADER_LEN);
		rc = proto_frame_peek(p, avail, conn->ctl->cfg->frame_max, &len);
		if (rc == 0)
			break;
		if (rc < 0) {
			ctl_conn_fail(conn, rc == -1 ? CERTD_ERR_FRAME_EMPTY :
			    CERTD_ERR_FRAME_TOO_LARGE, NULL);
			break;
		}
		p = evbuffer_pullup(in,
		    (ev_ssize_t)(CERTD_FRAME_HEADER_LEN + len));
		if (p == NULL) {
			ctl_conn_fail(conn, CERTD_ERR_NOMEM, NULL);
			break;
		}
		rc = ctl_ops_dispatch(conn,
		    (const char *)p + CERTD_FRAME_HEADER_LEN, len);
		/* Requests may carry key text: wipe it from the buffer. */
		if (conn->state != CTL_CLOSED) {
			util_wipe(p, CERTD_FRAME_HEADER_LEN + len);
			evbuffer_drain(in, CERTD_FRAME_HEADER_LEN + len);
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
	gid_t		 groups[CERTD_PEER_GROUPS_MAX];
	int		 n = CERTD_PEER_GROUPS_MAX, i;

	conn->gids[0] = conn->gid;
	conn->n_gids = 1;
	if (getpwuid_r(conn->uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		n = CERTD_PEER_GROUPS_MAX;
	for (i = 0; i < n && conn->n_gids < CERTD_PEER_GROUPS_MAX; i++)
		if (groups[i] != conn->gid)
			conn->gids[conn->n_gids++] = groups[i];
}

/* Refuse a connection over a cap: best-effort error frame, close. */
static void
refuse(int fd, const char *reason)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	if (proto_error_frame(&sb, 0,
	    err_socket_code(CERTD_ERR_TOO_MANY_CONNS),
	    err_msg(CERTD_ERR_TOO_MANY_CONNS), NULL, reason) == 0 &&
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
	reserved = max > 2 * CERTD_CTL_ADMIN_SLOTS ? CERTD_CTL_ADMIN_SLOTS :
	    max / 2;
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
	ctl_conn_set_idle(conn);
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
	if ((ctl->admin = workq_new(base, "certd-admin", 1)) == NULL ||
	    (ctl->check = workq_new(base, "certd-check",
	    util_workers(CERTD_WORKERS_MAX))) == NULL) {
		snprintf(errbuf, errlen, "cannot start the socket's workers");
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
		workq_free(ctl->check);
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
	workq_free(ctl->check);
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
	if (ctl != NULL) {
		workq_stop(ctl->check);
		workq_stop(ctl->admin);
	}
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
			ctl_conn_set_idle(conn);
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
