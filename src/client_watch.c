/* SPDX-License-Identifier: MIT */
/*
 * libcertd's watch (include/certd/certd.h, "watch"; doc/protocol.md): a
 * bufferevent on the caller's event_base that sends the watch request,
 * turns certd's event frames into certd_event callbacks, sends acks, and
 * reconnects through an evtimer with back-off, resuming from the last
 * revision delivered.  certd_watch_run wraps it in a private event_base
 * for callers without a loop.  Results are decoded by client_decode.c;
 * framing and msgpack checks are proto.c's.
 *
 * Frames read may hold key material: each is wiped once handled.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <msgpack.h>

#include <certd/certd.h>

#include "client_int.h"
#include "client_peer.h"
#include "proto.h"
#include "util.h"


enum watch_state {
	WATCH_IDLE,		/* waiting for the (re)connect timer */
	WATCH_CONNECTING,	/* watch request sent, waiting for its result */
	WATCH_LIVE,		/* watching: events flow */
	WATCH_DONE,		/* ended, no reconnect */
};

/* What the events after the watch result are, for the resume point. */
enum watch_replay {
	REPLAY_NONE,		/* live events only, in revision order */
	REPLAY_LOG,		/* replay of the change log, in revision order */
	REPLAY_SNAPSHOT,	/* current state, in no revision order */
};

/*
 * Writes bypass the bufferevent: libevent writes with writev(), which
 * raises SIGPIPE when certd has gone, and a library must not kill its
 * host program.  We send() with MSG_NOSIGNAL ourselves and keep what the
 * socket did not take in out, flushed by wev.
 *
 * Invariants: bev, out and wev are non-NULL exactly in CONNECTING and
 * LIVE; watch_id and watch_rev are meaningful in LIVE only.
 * since/have_since is the resume point: every matching change up to since
 * has been delivered, counted in the store of epoch (0: not known yet).
 * epoch_next is the epoch of a watch result that differed from ours while
 * we resumed with ours: certd then sends resync, and it is adopted with it
 * (should the connection drop first, the next one resumes as before and
 * certd sends resync again).
 * busy counts the library's handlers on the stack; certd_watch_free during
 * one sets dead, and the outermost handler frees on its way out.
 */
struct certd_watch {
	struct event_base	*base;
	certd_event_cb		 cb;
	void			*arg;

	char			*socket;
	struct sockaddr_un	 sun;
	socklen_t		 sunlen;
	char			*team;
	uint64_t		*ids;
	size_t			 n_ids;
	char			**aliases;
	size_t			 n_aliases;
	char			*name;		/* shown in `subscribers` */
	int			 reconnect;
	unsigned		 backoff_max_ms;

	enum watch_state	 state;
	struct bufferevent	*bev;		/* connect and read side */
	struct evbuffer		*out;		/* bytes not yet sent */
	struct event		*wev;		/* EV_WRITE on bev's fd */
	int			 write_err;	/* errno of a failed send */
	struct event		*timer;
	unsigned		 backoff_ms;	/* delay before the next retry */
	int64_t			 live_ms;	/* when it went live; 0: not */
	uint64_t		 next_id;
	uint64_t		 req_id;	/* of the watch request */
	uint64_t		 watch_id;	/* W */
	uint64_t		 watch_rev;	/* R of the watch result */
	uint64_t		 last_rev;	/* certd_watch_revision */
	int			 have_since;
	uint64_t		 since;
	uint64_t		 epoch;		/* of the watch result */
	uint64_t		 epoch_next;
	enum watch_replay	 replay;
	int			 connected;	/* BEV_EVENT_CONNECTED seen */
	int			 in_connect;	/* inside bufferevent_socket_connect */
	int			 connect_failed;	/* connect(2) itself failed */
	int			 down_reported;
	int			 error;		/* code of the last loss */
	int			 busy;
	int			 dead;
	msgpack_sbuffer		 sb;
	char			 err[CLIENT_ERR_MAX];
};

/* certd_watch_run's state, the arg of its wrapping callback. */
struct watch_run {
	certd_event_cb		 cb;
	void			*arg;
	volatile int		*stop;
	struct event_base	*base;
	struct certd_watch	*w;
};

static void	watch_connect(struct certd_watch *);

/* Drop the connection, if any. */
static void
watch_close(struct certd_watch *w)
{
	if (w->wev != NULL)
		event_free(w->wev);
	if (w->out != NULL)
		evbuffer_free(w->out);
	if (w->bev != NULL)
		bufferevent_free(w->bev);	/* closes the socket */
	w->wev = NULL;
	w->out = NULL;
	w->bev = NULL;
	w->write_err = 0;
}

static void
watch_destroy(struct certd_watch *w)
{
	size_t	i;

	watch_close(w);
	if (w->timer != NULL)
		event_free(w->timer);
	for (i = 0; i < w->n_aliases; i++)
		free(w->aliases[i]);
	free(w->aliases);
	free(w->ids);
	free(w->team);
	free(w->name);
	free(w->socket);
	client_sb_free(&w->sb);
	free(w);
}

static void
watch_enter(struct certd_watch *w)
{
	w->busy++;
}

/* Leave a handler; the last one out frees a watch freed meanwhile. */
static void
watch_leave(struct certd_watch *w)
{
	if (--w->busy == 0 && w->dead)
		watch_destroy(w);
}

/* Call back; returns -1 when the callback freed the watch. */
static int
watch_deliver(struct certd_watch *w, const struct certd_event *ev)
{
	if (w->dead)
		return -1;
	w->cb(ev, w->arg);
	return w->dead ? -1 : 0;
}

static void
watch_schedule(struct certd_watch *w, unsigned ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(w->timer, &tv);
}

/*
 * The connection failed or was lost (code, message in w->err already or
 * from f).  Frees the bufferevent, schedules a retry when asked to and the
 * failure is not final, and reports the loss once.
 */
static void __attribute__((format(printf, 4, 5)))
watch_down(struct certd_watch *w, int code, int final, const char *f, ...)
{
	struct certd_event	ev;
	va_list			ap;
	unsigned		delay;

	if (f != NULL) {
		va_start(ap, f);
		util_vfmt(w->err, sizeof(w->err), f, ap);
		va_end(ap);
	}
	watch_close(w);
	w->error = code;
	/*
	 * A watch answered is not yet a working one (a certd that answers
	 * and then sends a malformed event would have us reconnect ten times
	 * a second): the back-off starts over only after a while live.
	 */
	if (w->live_ms != 0 &&
	    client_now_ms() - w->live_ms >= CERTD_WATCH_STABLE_MS)
		w->backoff_ms = CERTD_WATCH_BACKOFF_MIN_MS;
	w->live_ms = 0;
	if (w->reconnect && !final) {
		w->state = WATCH_IDLE;
		delay = w->backoff_ms;
		w->backoff_ms = w->backoff_ms >= w->backoff_max_ms / 2 ?
		    w->backoff_max_ms : w->backoff_ms * 2;
		watch_schedule(w, delay);
	} else
		w->state = WATCH_DONE;
	/*
	 * No certd to reach (no socket, nobody listening) and a refused
	 * server are worth repeating at every retry; a loss is said once.
	 */
	if (w->down_reported && w->state != WATCH_DONE &&
	    code != CERTD_E_PEER && !w->connect_failed)
		return;
	w->down_reported = 1;
	memset(&ev, 0, sizeof(ev));
	ev.kind = CERTD_EVENT_DISCONNECTED;
	ev.revision = w->last_rev;
	ev.error = w->err;
	ev.code = code;
	ev.ended = w->state == WATCH_DONE;
	(void)watch_deliver(w, &ev);
}

/*
 * Send what is pending in out.  Returns 0, or -1 with w->write_err set.
 * Never calls back: a failure is reported by wev's handler.
 */
static int
watch_flush(struct certd_watch *w)
{
	unsigned char	*p;
	size_t		 len;
	ssize_t		 n;

	while ((len = evbuffer_get_length(w->out)) > 0) {
		if ((p = evbuffer_pullup(w->out, (ev_ssize_t)len)) == NULL) {
			w->write_err = ENOMEM;
			return -1;
		}
		n = send(bufferevent_getfd(w->bev), p, len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (event_add(w->wev, NULL) != 0) {
				w->write_err = ENOMEM;
				return -1;
			}
			return 0;
		}
		if (n <= 0) {
			w->write_err = n < 0 ? errno : EPIPE;
			return -1;
		}
		evbuffer_drain(w->out, (size_t)n);
	}
	return 0;
}

/*
 * The watch's two plain events, in one guard: the socket writable again
 * (EV_WRITE, a flush was pending) or the reconnect timer (EV_TIMEOUT).
 */
static void
watch_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct certd_watch	*w = arg;

	(void)fd;
	watch_enter(w);
	if (!w->dead && (what & EV_WRITE) != 0) {
		if (w->wev != NULL &&
		    (w->write_err != 0 || watch_flush(w) != 0))
			watch_down(w, CERTD_E_IO, 0, "write to %s: %s",
			    w->socket, strerror(w->write_err));
	} else if (!w->dead && w->state == WATCH_IDLE)
		watch_connect(w);
	watch_leave(w);
}

/* Queue the frame packed in sb and try to send it at once. */
static int
watch_send(struct certd_watch *w)
{
	if (proto_end(&w->sb, CERTD_FRAME_MAX_DEFAULT) != 0)
		return CERTD_E_INVAL;
	if (w->write_err != 0)
		return CERTD_E_IO;
	if (evbuffer_add(w->out, w->sb.data, w->sb.size) != 0)
		return CERTD_E_NOMEM;
	if (watch_flush(w) != 0) {
		/* Report from the loop, not from inside our caller. */
		event_active(w->wev, EV_WRITE, 1);
		return CERTD_E_IO;
	}
	return 0;
}

/* Does the watch request resume from since in a known epoch (sent along)? */
static int
watch_resumes_in_epoch(const struct certd_watch *w)
{
	return w->have_since && w->since > 0 && w->epoch != 0;
}

static int
watch_send_request(struct certd_watch *w)
{
	msgpack_packer	pk;
	size_t		i;
	int		with_epoch = watch_resumes_in_epoch(w);

	w->req_id = client_req_begin(&w->sb, &pk, &w->next_id, "watch",
	    (w->team != NULL) + (w->n_ids > 0) + (w->n_aliases > 0) +
	    (w->have_since != 0) + with_epoch + (w->name != NULL));
	if (w->team != NULL)
		proto_kv_str(&pk, "team", w->team);
	if (w->name != NULL)
		proto_kv_str(&pk, "name", w->name);
	if (w->n_ids > 0) {
		proto_pack_cstr(&pk, "ids");
		msgpack_pack_array(&pk, w->n_ids);
		for (i = 0; i < w->n_ids; i++)
			msgpack_pack_uint64(&pk, w->ids[i]);
	}
	if (w->n_aliases > 0) {
		proto_pack_cstr(&pk, "aliases");
		msgpack_pack_array(&pk, w->n_aliases);
		for (i = 0; i < w->n_aliases; i++)
			proto_pack_cstr(&pk, w->aliases[i]);
	}
	if (w->have_since)
		proto_kv_uint(&pk, "since", w->since);
	if (with_epoch)
		proto_kv_uint(&pk, "epoch", w->epoch);
	return watch_send(w);
}

/* The response to the watch request. */
static int
watch_result(struct certd_watch *w, const msgpack_object *m, int ok)
{
	const msgpack_object	*res;
	struct certd_event	 ev;
	uint64_t		 epoch;
	int			 code;

	if (!ok) {
		code = client_decode_error(m, w->err, sizeof(w->err));
		/* A refused watch stays refused; certd busy may clear. */
		watch_down(w, code, code <= -400 && code > -500, NULL);
		return -1;
	}
	res = proto_get(m, "result");
	if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
	    proto_get_uint(res, "watch", &w->watch_id) != 1 ||
	    proto_get_uint(res, "revision", &w->watch_rev) != 1) {
		watch_down(w, CERTD_E_PROTO, 0, "malformed watch result");
		return -1;
	}
	/*
	 * Another store (one restored from a backup, say) when we resumed
	 * with our epoch: certd follows with resync, which adopts it.  A
	 * certd from before epochs sends none: ours is kept.
	 */
	w->epoch_next = 0;
	if (proto_get_uint(res, "epoch", &epoch) == 1 && epoch != 0 &&
	    epoch != w->epoch) {
		if (watch_resumes_in_epoch(w))
			w->epoch_next = epoch;
		else
			w->epoch = epoch;
	}
	w->state = WATCH_LIVE;
	w->live_ms = client_now_ms();
	w->down_reported = 0;
	if (!w->have_since) {
		/* No replay asked: everything up to R is behind us. */
		w->have_since = 1;
		w->since = w->watch_rev;
		w->replay = REPLAY_NONE;
	} else
		w->replay = w->since > 0 ? REPLAY_LOG : REPLAY_SNAPSHOT;
	memset(&ev, 0, sizeof(ev));
	ev.kind = CERTD_EVENT_CONNECTED;
	ev.revision = w->watch_rev;
	/* a resync is sure to follow a resume in another epoch, or past R */
	ev.state = w->replay == REPLAY_SNAPSHOT || w->epoch_next != 0 ||
	    (w->replay == REPLAY_LOG && w->since > w->watch_rev);
	return watch_deliver(w, &ev);
}

/* Move the resume point for a put or delete event at rev. */
static void
watch_advance(struct certd_watch *w, uint64_t rev)
{
	if (rev > w->watch_rev)
		w->replay = REPLAY_NONE;	/* a replay is over */
	if (w->replay == REPLAY_SNAPSHOT)
		return;
	if (rev > w->since)
		w->since = rev;
}

/*
 * Whether cert matches the watch's ids and aliases (a watch without them
 * wants its whole team).  certd also tells an alias watch of a certificate
 * renamed away from the alias, which this says no to.
 */
static int
watch_wants(const struct certd_watch *w, const struct certd_cert *cert)
{
	size_t	i;

	if (w->n_ids == 0 && w->n_aliases == 0)
		return 1;
	for (i = 0; i < w->n_ids; i++)
		if (w->ids[i] == cert->id)
			return 1;
	for (i = 0; cert->alias != NULL && i < w->n_aliases; i++)
		if (strcmp(w->aliases[i], cert->alias) == 0)
			return 1;
	return 0;
}

static int
watch_event(struct certd_watch *w, const msgpack_object *m)
{
	struct certd_event	 ev;
	struct certd_cert	*cert = NULL;
	const char		*kind, *team = NULL;
	size_t			 kind_len, team_len = 0;
	uint64_t		 wid;
	char			*team_copy = NULL;
	int			 r;

	if (w->state != WATCH_LIVE ||
	    proto_get_uint(m, "watch", &wid) != 1 || wid != w->watch_id)
		return 0;		/* not ours */
	memset(&ev, 0, sizeof(ev));
	if (proto_get_str(m, "event", &kind, &kind_len) != 1 ||
	    proto_get_uint(m, "revision", &ev.revision) != 1 ||
	    proto_get_str(m, "team", &team, &team_len) < 0)
		goto bad;
	if (kind_len == 3 && memcmp(kind, "put", 3) == 0)
		ev.kind = CERTD_EVENT_PUT;
	else if (kind_len == 6 && memcmp(kind, "delete", 6) == 0)
		ev.kind = CERTD_EVENT_DELETE;
	else if (kind_len == 6 && memcmp(kind, "resync", 6) == 0)
		ev.kind = CERTD_EVENT_RESYNC;
	else
		return 0;		/* a kind from a later version */

	if (ev.kind == CERTD_EVENT_RESYNC) {
		/*
		 * Our resume point means nothing to this store (trimmed from
		 * its log, never reached, or of another epoch): until the
		 * snapshot that follows is over, a reconnect asks for the
		 * whole state again.
		 */
		w->since = 0;
		w->replay = REPLAY_SNAPSHOT;
		w->last_rev = ev.revision;
		if (w->epoch_next != 0) {
			w->epoch = w->epoch_next;
			w->epoch_next = 0;
		}
		return watch_deliver(w, &ev);
	}
	if (team != NULL &&
	    (r = client_decode_strn(team, team_len, &team_copy)) != 0) {
		if (r == CERTD_E_PROTO)
			goto bad;
		watch_down(w, r, 0, "out of memory");
		return -1;
	}
	if ((r = client_decode_cert(proto_get(m, "cert"), team, team_len,
	    &cert)) != 0) {
		free(team_copy);
		if (r == CERTD_E_PROTO)
			goto bad;
		watch_down(w, r, 0, "out of memory");
		return -1;
	}
	ev.team = team_copy;
	ev.cert = cert;
	ev.left = ev.kind == CERTD_EVENT_PUT && !watch_wants(w, cert);
	w->last_rev = ev.revision;
	watch_advance(w, ev.revision);
	r = watch_deliver(w, &ev);
	certd_cert_free(cert);
	free(team_copy);
	return r;
bad:
	watch_down(w, CERTD_E_PROTO, 0, "malformed event from certd");
	return -1;
}

/* One frame; returns -1 when the connection or the watch is gone. */
static int
watch_frame(struct certd_watch *w, const char *p, size_t len)
{
	msgpack_unpacked	 u;
	const msgpack_object	*m;
	const char		*why = "malformed";
	uint64_t		 id;
	int			 ok, r, code;

	msgpack_unpacked_init(&u);
	if (proto_decode(p, len, &u, &why) != 0) {
		msgpack_unpacked_destroy(&u);
		watch_down(w, CERTD_E_PROTO, 0,
		    "malformed frame from certd: %s", why);
		return -1;
	}
	m = &u.data;
	if (proto_get(m, "event") != NULL) {
		r = watch_event(w, m);
		goto out;
	}
	if (proto_get_uint(m, "id", &id) != 1 ||
	    proto_get_bool(m, "ok", &ok) != 1) {
		watch_down(w, CERTD_E_PROTO, 0,
		    "malformed response from certd");
		r = -1;
		goto out;
	}
	r = 0;
	if (w->state == WATCH_CONNECTING && id == w->req_id)
		r = watch_result(w, m, ok);
	else if (id == 0 && !ok) {
		/* A connection-level error: certd closes after it. */
		code = client_decode_error(m, w->err, sizeof(w->err));
		watch_down(w, code, 0, NULL);
		r = -1;
	}
	/* Else the answer to an ack: nothing to do, even for an error. */
out:
	msgpack_unpacked_destroy(&u);
	return r;
}

static void
watch_read_cb(struct bufferevent *bev, void *arg)
{
	struct certd_watch	*w = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	unsigned char		 hdr[CERTD_FRAME_HEADER_LEN], *p;
	size_t			 avail, n, len;
	int			 r;

	watch_enter(w);
	while (!w->dead && w->bev == bev) {
		avail = evbuffer_get_length(in);
		if (avail < CERTD_FRAME_HEADER_LEN)
			break;
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) !=
		    (ev_ssize_t)sizeof(hdr))
			break;
		r = proto_frame_peek(hdr, sizeof(hdr), CERTD_FRAME_MAX_DEFAULT,
		    &len);
		if (r == -1) {
			watch_down(w, CERTD_E_PROTO, 0,
			    "empty frame from certd");
			break;
		}
		if (r == -2) {
			watch_down(w, CERTD_E_PROTO, 0,
			    "frame from certd over %d bytes",
			    CERTD_FRAME_MAX_DEFAULT);
			break;
		}
		n = CERTD_FRAME_HEADER_LEN + (size_t)util_be32_get(hdr);
		if (avail < n)
			break;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)n)) == NULL) {
			watch_down(w, CERTD_E_NOMEM, 0, "out of memory");
			break;
		}
		if (proto_frame_peek(p, n, CERTD_FRAME_MAX_DEFAULT,
		    &len) != 1) {
			watch_down(w, CERTD_E_PROTO, 0, "bad frame header");
			break;
		}
		r = watch_frame(w, (const char *)p + CERTD_FRAME_HEADER_LEN,
		    len);
		/* Still valid: libevent holds the bufferevent during its cb. */
		util_wipe(p, n);
		if (r != 0 || w->dead || w->bev != bev)
			break;
		evbuffer_drain(in, n);
	}
	watch_leave(w);
}

/*
 * Connection events.  libevent calls this right after the failing system
 * call (so errno is its error), except for a connect refused at once, which
 * it reports later from the loop: then neither errno nor SO_ERROR is
 * meaningful.
 */
static void
watch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct certd_watch	*w = arg;
	int			 saved = EVUTIL_SOCKET_ERROR(), e = 0;
	socklen_t		 elen = sizeof(e);

	watch_enter(w);
	if (w->dead || w->bev != bev)
		goto out;
	if (what & BEV_EVENT_CONNECTED) {
		w->connected = 1;
		/* Before the watch request: nothing to a server not certd. */
		if (client_peer_check(bufferevent_getfd(bev), w->socket,
		    w->err, sizeof(w->err)) != 0) {
			watch_down(w, CERTD_E_PEER, 0, NULL);
			goto out;
		}
		if (watch_send_request(w) != 0 && w->write_err == 0)
			watch_down(w, CERTD_E_NOMEM, 0,
			    "cannot send the watch request");
		goto out;
	}
	if (what & BEV_EVENT_EOF)
		watch_down(w, CERTD_E_IO, 0, "connection closed by certd");
	else if (!w->connected) {
		if (w->in_connect)
			e = saved;
		else if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET,
		    SO_ERROR, &e, &elen) != 0)
			e = 0;
		w->connect_failed = 1;
		watch_down(w, CERTD_E_IO, 0, "connect %s: %s", w->socket,
		    strerror(e != 0 ? e : ECONNREFUSED));
	} else
		watch_down(w, CERTD_E_IO, 0, "connection to %s: %s",
		    w->socket, saved != 0 ? strerror(saved) : "error");
out:
	watch_leave(w);
}

/*
 * Open a connection; watch_event_cb sends the watch request once it is
 * connected.  A connect(2) that fails at once makes
 * bufferevent_socket_connect return -1 with errno set (libevent 2.1) or,
 * in later versions, call watch_event_cb from inside it first.
 */
static void
watch_connect(struct certd_watch *w)
{
	struct bufferevent	*bev;
	int			 fd, r, e;

	w->connect_failed = 0;
	if ((w->out = evbuffer_new()) == NULL) {
		watch_down(w, CERTD_E_NOMEM, 0, "out of memory");
		return;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		watch_down(w, CERTD_E_IO, 0, "socket: %s", strerror(errno));
		return;
	}
	w->wev = event_new(w->base, fd, EV_WRITE, watch_ev_cb, w);
	bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (w->wev == NULL || bev == NULL) {
		if (bev != NULL)
			bufferevent_free(bev);
		else
			(void)close(fd);
		watch_down(w, CERTD_E_NOMEM, 0, "out of memory");
		return;
	}
	/* Read only: we never write through the bufferevent. */
	bufferevent_setcb(bev, watch_read_cb, NULL, watch_event_cb, w);
	w->bev = bev;
	if (bufferevent_enable(bev, EV_READ) != 0) {
		watch_down(w, CERTD_E_NOMEM, 0, "cannot watch the socket");
		return;
	}
	w->state = WATCH_CONNECTING;
	w->connected = 0;
	w->in_connect = 1;
	errno = 0;
	r = bufferevent_socket_connect(bev, (struct sockaddr *)&w->sun,
	    (int)w->sunlen);
	e = errno;
	w->in_connect = 0;
	if (w->dead || w->bev != bev)
		return;			/* reported by watch_event_cb */
	/* libevent 2.1 returns connect(2)'s failure without calling back. */
	if (r != 0) {
		w->connect_failed = 1;
		watch_down(w, CERTD_E_IO, 0, "connect %s: %s", w->socket,
		    e != 0 ? strerror(e) : "failed");
	}
}

static int
watch_copy_opts(struct certd_watch *w, const struct certd_watch_opts *o)
{
	size_t	i;

	if ((w->socket = strdup(certd_socket_path(o->socket))) == NULL)
		return -1;
	if (o->team != NULL && (w->team = strdup(o->team)) == NULL)
		return -1;
	if (o->name != NULL && (w->name = strdup(o->name)) == NULL)
		return -1;
	if (o->n_ids > 0) {
		if ((w->ids = calloc(o->n_ids, sizeof(*w->ids))) == NULL)
			return -1;
		memcpy(w->ids, o->ids, o->n_ids * sizeof(*w->ids));
		w->n_ids = o->n_ids;
	}
	if (o->n_aliases > 0) {
		w->aliases = calloc(o->n_aliases, sizeof(*w->aliases));
		if (w->aliases == NULL)
			return -1;
		for (i = 0; i < o->n_aliases; i++) {
			if ((w->aliases[i] = strdup(o->aliases[i])) == NULL)
				return -1;
			w->n_aliases = i + 1;
		}
	}
	return 0;
}

static const char *
watch_opts_invalid(const struct certd_watch_opts *o)
{
	size_t	i;

	if ((o->n_ids > 0 || o->n_aliases > 0) && o->team == NULL)
		return "ids and aliases need a team";
	if (o->n_ids > 0 && o->ids == NULL)
		return "n_ids without ids";
	if (o->n_aliases > 0 && o->aliases == NULL)
		return "n_aliases without aliases";
	if (o->n_ids > CERTD_MSGPACK_ITEMS_MAX ||
	    o->n_aliases > CERTD_MSGPACK_ITEMS_MAX)
		return "too many ids or aliases";
	for (i = 0; i < o->n_aliases; i++)
		if (o->aliases[i] == NULL)
			return "NULL alias";
	return NULL;
}

struct certd_watch *
certd_watch_new(struct event_base *base, const struct certd_watch_opts *opts,
    certd_event_cb cb, void *arg, char *errbuf, size_t errlen)
{
	struct certd_watch	*w;
	const char		*why;

	if (base == NULL || opts == NULL || cb == NULL) {
		util_fmt(errbuf, errlen,
		    "watch: base, options and callback needed");
		return NULL;
	}
	if ((why = watch_opts_invalid(opts)) != NULL) {
		util_fmt(errbuf, errlen, "watch: %s", why);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		util_fmt(errbuf, errlen, "out of memory");
		return NULL;
	}
	msgpack_sbuffer_init(&w->sb);
	w->base = base;
	w->cb = cb;
	w->arg = arg;
	w->reconnect = opts->reconnect != 0;
	w->backoff_max_ms = opts->backoff_max_ms != 0 ? opts->backoff_max_ms :
	    CERTD_WATCH_BACKOFF_MAX_MS;
	if (w->backoff_max_ms < CERTD_WATCH_BACKOFF_MIN_MS)
		w->backoff_max_ms = CERTD_WATCH_BACKOFF_MIN_MS;
	w->backoff_ms = CERTD_WATCH_BACKOFF_MIN_MS;
	w->next_id = 1;
	w->have_since = opts->has_since != 0;
	w->since = opts->since;
	w->state = WATCH_IDLE;
	if (watch_copy_opts(w, opts) != 0) {
		util_fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (client_make_sun(w->socket, &w->sun, &w->sunlen) != 0) {
		util_fmt(errbuf, errlen, "socket path %s: %s", w->socket,
		    *w->socket == '\0' ? "empty" : "too long");
		goto fail;
	}
	if ((w->timer = evtimer_new(base, watch_ev_cb, w)) == NULL) {
		util_fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	watch_schedule(w, 0);		/* connect from the loop */
	return w;
fail:
	watch_destroy(w);
	return NULL;
}

void
certd_watch_free(struct certd_watch *w)
{
	if (w == NULL)
		return;
	if (w->busy > 0) {
		w->dead = 1;
		if (w->bev != NULL)
			bufferevent_disable(w->bev, EV_READ | EV_WRITE);
		if (w->wev != NULL)
			event_del(w->wev);
		evtimer_del(w->timer);
		return;
	}
	watch_destroy(w);
}

uint64_t
certd_watch_revision(const struct certd_watch *w)
{
	return w != NULL ? w->last_rev : 0;
}

int
certd_watch_ack(struct certd_watch *w, uint64_t revision, int ok,
    const char *detail)
{
	return certd_watch_ack_status(w, revision, ok ? CERTD_ACK_OK :
	    CERTD_ACK_FAILED, detail, NULL, 0);
}

/* 64 lowercase hex digits. */
static int
fingerprint_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == CERTD_FINGERPRINT_LEN;
}

int
certd_watch_ack_status(struct certd_watch *w, uint64_t revision,
    enum certd_ack_status status, const char *detail, const char *served,
    int64_t verified_at)
{
	static const char *const names[] = { "failed", "ok", "requested" };
	msgpack_packer	pk;
	int		r;

	if (w == NULL || w->dead || (unsigned)status > CERTD_ACK_REQUESTED ||
	    verified_at < 0 || (served != NULL && (verified_at == 0 ||
	    !fingerprint_ok(served))))
		return CERTD_E_INVAL;
	if (w->state != WATCH_LIVE || w->bev == NULL || w->write_err != 0)
		return CERTD_E_IO;
	if (client_sb_reserve(&w->sb, REQ_OVERHEAD + client_opt_len(detail) +
	    client_opt_len(served) + 64) != 0)
		return CERTD_E_NOMEM;
	(void)client_req_begin(&w->sb, &pk, &w->next_id, "ack",
	    3 + (detail != NULL) + (served != NULL) + (verified_at != 0));
	proto_kv_uint(&pk, "watch", w->watch_id);
	proto_kv_uint(&pk, "revision", revision);
	proto_kv_str(&pk, "status", names[status]);
	if (detail != NULL)
		proto_kv_str(&pk, "detail", detail);
	if (served != NULL)
		proto_kv_str(&pk, "served_fingerprint_sha256", served);
	if (verified_at != 0)
		proto_kv_uint(&pk, "verified_at_unix", (uint64_t)verified_at);
	r = watch_send(w);
	msgpack_sbuffer_clear(&w->sb);
	return r;
}

static void
watch_run_stop_if(struct watch_run *run)
{
	if ((run->stop != NULL && *run->stop) ||
	    (run->w != NULL && run->w->state == WATCH_DONE))
		event_base_loopbreak(run->base);
}

static void
watch_run_cb(const struct certd_event *ev, void *arg)
{
	struct watch_run	*run = arg;

	run->cb(ev, run->arg);
	watch_run_stop_if(run);
}

static void
watch_run_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watch_run_stop_if(arg);
}

int
certd_watch_run(const struct certd_watch_opts *opts, certd_event_cb cb,
    void *arg, volatile int *stop)
{
	struct watch_run	 run;
	struct event		*tick = NULL;
	struct timeval		 tv = { 0, CERTD_WATCH_RUN_TICK_MS * 1000 };
	char			 err[CLIENT_ERR_MAX];
	int			 r;

	if (opts == NULL || cb == NULL)
		return CERTD_E_INVAL;
	memset(&run, 0, sizeof(run));
	run.cb = cb;
	run.arg = arg;
	run.stop = stop;
	if ((run.base = event_base_new()) == NULL)
		return CERTD_E_NOMEM;
	run.w = certd_watch_new(run.base, opts, watch_run_cb, &run, err,
	    sizeof(err));
	if (run.w == NULL) {
		r = strcmp(err, "out of memory") == 0 ? CERTD_E_NOMEM :
		    CERTD_E_INVAL;
		goto out;
	}
	tick = event_new(run.base, -1, EV_PERSIST, watch_run_tick, &run);
	if (tick == NULL || event_add(tick, &tv) != 0) {
		r = CERTD_E_NOMEM;
		goto out;
	}
	if (event_base_dispatch(run.base) == -1) {
		r = CERTD_E_IO;
		goto out;
	}
	if (stop != NULL && *stop)
		r = 0;
	else if (run.w->state == WATCH_DONE)
		r = run.w->error != 0 ? run.w->error : CERTD_E_IO;
	else
		r = 0;
out:
	if (tick != NULL)
		event_free(tick);
	certd_watch_free(run.w);
	event_base_free(run.base);
	return r;
}
