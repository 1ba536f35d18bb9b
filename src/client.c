/* SPDX-License-Identifier: MIT */
/*
 * libcertd: the client side of certd's Unix-socket protocol
 * (doc/protocol.md, include/certd/certd.h), its blocking client and the
 * helpers its other rooms share (client_int.h).  The blocking client owns
 * one non-blocking socket driven by poll, with its own bounded frame
 * buffer; each call packs its request, sends it and reads frames until its
 * response.  Copying results out of the unpacked frames is
 * client_decode.c's, the watch is client_watch.c's, framing and msgpack
 * checks are proto.c's.
 *
 * Buffers that may have held key material (frames read, put requests) are
 * wiped before they are reused or freed.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include <certd/certd.h>

#include "client_int.h"
#include "client_peer.h"
#include "proto.h"
#include "util.h"

#define CLIENT_BUF_INIT		(16 * 1024)

/* ---------------------------------------------------------------------- */
/* Shared helpers */

/*
 * The used bytes of a buffer of cap bytes (NULL when cap is 0) moved into
 * a new one of n bytes, the old one wiped and freed: the new buffer, or
 * NULL when out of memory (the old one is left as it was).  realloc would
 * leave a copy of what it held, a put's private key, in freed memory.
 */
static void *
client_move(void *old, size_t cap, size_t used, size_t n)
{
	void	*p;

	if ((p = malloc(n)) == NULL)
		return NULL;
	if (used > 0)
		memcpy(p, old, used);
	util_wipe(old, cap);
	free(old);
	return p;
}

/*
 * Make sb hold at least n bytes without msgpack-c's realloc, which would
 * leave a copy of a put's private key in freed memory.  The old contents
 * are copied and wiped.
 */
int
client_sb_reserve(msgpack_sbuffer *sb, size_t n)
{
	char	*p;

	if (sb->alloc >= n)
		return 0;
	if ((p = client_move(sb->data, sb->alloc, sb->size, n)) == NULL)
		return CERTD_E_NOMEM;
	sb->data = p;
	sb->alloc = n;
	return 0;
}

void
client_sb_free(msgpack_sbuffer *sb)
{
	util_wipe(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

const char *
certd_socket_path(const char *path)
{
	const char	*env;

	if (path != NULL && *path != '\0')
		return path;
	env = secure_getenv(CERTD_SOCKET_ENV);
	if (env != NULL && *env != '\0')
		return env;
	return CERTD_SOCKET_DEFAULT;
}

int
client_make_sun(const char *path, struct sockaddr_un *sun, socklen_t *sunlen)
{
	size_t	len = strlen(path);

	if (len == 0 || len >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	*sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Blocking client */

/*
 * fd is -1 once the connection is lost; every call then fails with
 * CERTD_E_IO.  buf[0, len) holds bytes read and not yet consumed; cap never
 * exceeds CERTD_FRAME_MAX_DEFAULT + CERTD_FRAME_HEADER_LEN.
 */
struct certd_client {
	int		 fd;
	uint64_t	 next_id;
	uint64_t	 revision;
	unsigned	 timeout_ms;	/* 0: no limit */
	unsigned char	*buf;
	size_t		 len;
	size_t		 cap;
	msgpack_sbuffer	 sb;
	char		 err[CLIENT_ERR_MAX];
};

/* Parses the "result" of a successful response (NULL when absent or nil). */
typedef int	(*result_cb)(struct certd_client *, const msgpack_object *,
		    void *);

static int __attribute__((format(printf, 3, 4)))
client_fail(struct certd_client *c, int code, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	util_vfmt(c->err, sizeof(c->err), f, ap);
	va_end(ap);
	return code;
}

static void
client_disconnect(struct certd_client *c)
{
	if (c->fd != -1)
		(void)close(c->fd);
	c->fd = -1;
	util_wipe(c->buf, c->cap);
	c->len = 0;
}

/* The connection is unusable: close it and fail with code. */
static int __attribute__((format(printf, 3, 4)))
client_lost(struct certd_client *c, int code, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	util_vfmt(c->err, sizeof(c->err), f, ap);
	va_end(ap);
	client_disconnect(c);
	return code;
}

int64_t
client_now_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline (-1: none) passes. */
static int
client_wait(struct certd_client *c, short events, int64_t deadline)
{
	struct pollfd	pfd;
	int64_t		left;
	int		r;

	for (;;) {
		left = -1;
		if (deadline >= 0) {
			left = deadline - client_now_ms();
			if (left <= 0)
				return client_lost(c, CERTD_E_IO,
				    "timed out waiting for certd");
		}
		pfd.fd = c->fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left < 0 ? -1 : (int)(left > 60000 ? 60000 :
		    left));
		if (r > 0)
			return 0;	/* ready, or an error the I/O reports */
		if (r < 0 && errno != EINTR)
			return client_lost(c, CERTD_E_IO, "poll: %s",
			    strerror(errno));
	}
}

static int
client_send(struct certd_client *c, int64_t deadline)
{
	const char	*p = c->sb.data;
	size_t		 left = c->sb.size;
	ssize_t		 n;
	int		 r;

	while (left > 0) {
		n = send(c->fd, p, left, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			left -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((r = client_wait(c, POLLOUT, deadline)) != 0)
				return r;
			continue;
		}
		return client_lost(c, CERTD_E_IO, "write to certd: %s",
		    n < 0 ? strerror(errno) : "nothing written");
	}
	return 0;
}

/* Make room for a frame of need bytes (header included). */
static int
client_grow(struct certd_client *c, size_t need)
{
	unsigned char	*p;
	size_t		 cap;

	if (need <= c->cap)
		return 0;
	cap = c->cap * 2;
	if (cap < need)
		cap = need;
	if (cap > CERTD_FRAME_MAX_DEFAULT + CERTD_FRAME_HEADER_LEN)
		cap = CERTD_FRAME_MAX_DEFAULT + CERTD_FRAME_HEADER_LEN;
	if ((p = client_move(c->buf, c->cap, c->len, cap)) == NULL)
		return client_lost(c, CERTD_E_NOMEM, "out of memory");
	c->buf = p;
	c->cap = cap;
	return 0;
}

/* Drop the first n bytes of buf, wiping what they leave behind. */
static void
client_consume(struct certd_client *c, size_t n)
{
	size_t	rest = c->len - n;

	memmove(c->buf, c->buf + n, rest);
	util_wipe(c->buf + rest, c->len - rest);
	c->len = rest;
}

/*
 * One whole frame of plen payload bytes at buf + CERTD_FRAME_HEADER_LEN.
 * Returns 1 when it is not the response to id (an event, a stale response), else
 * the call's result.
 */
static int
client_frame(struct certd_client *c, uint64_t id, size_t plen, result_cb fn,
    void *arg)
{
	msgpack_unpacked	 u;
	const msgpack_object	*m;
	const char		*why = "malformed";
	uint64_t		 fid;
	int			 ok, r;

	msgpack_unpacked_init(&u);
	if (proto_decode((const char *)c->buf + CERTD_FRAME_HEADER_LEN, plen,
	    &u, &why) != 0) {
		msgpack_unpacked_destroy(&u);
		return client_lost(c, CERTD_E_PROTO,
		    "malformed frame from certd: %s", why);
	}
	m = &u.data;
	if (proto_get(m, "event") != NULL) {
		r = 1;			/* a blocking client has no watch */
		goto out;
	}
	if (proto_get_uint(m, "id", &fid) != 1 ||
	    proto_get_bool(m, "ok", &ok) != 1) {
		r = client_lost(c, CERTD_E_PROTO,
		    "malformed response from certd");
		goto out;
	}
	if (fid != id && fid != 0) {
		r = 1;
		goto out;
	}
	if (!ok) {
		r = client_decode_error(m, c->err, sizeof(c->err));
		/* id 0 answers no request: certd closes the connection. */
		if (fid == 0 || r == CERTD_E_PROTO)
			client_disconnect(c);
		goto out;
	}
	if (fid == 0) {
		r = 1;
		goto out;
	}
	r = fn != NULL ? fn(c, proto_get(m, "result"), arg) : 0;
	if (r == CERTD_E_PROTO)
		r = client_lost(c, r, "malformed result from certd");
	else if (r == CERTD_E_NOMEM)
		r = client_fail(c, r, "out of memory");
out:
	msgpack_unpacked_destroy(&u);
	return r;
}

/* Read frames until the response to id. */
static int
client_recv(struct certd_client *c, uint64_t id, result_cb fn, void *arg,
    int64_t deadline)
{
	size_t	plen, need;
	ssize_t	n;
	int	r;

	for (;;) {
		r = proto_frame_peek(c->buf, c->len, CERTD_FRAME_MAX_DEFAULT,
		    &plen);
		if (r == -1)
			return client_lost(c, CERTD_E_PROTO,
			    "empty frame from certd");
		if (r == -2)
			return client_lost(c, CERTD_E_PROTO,
			    "frame from certd over %d bytes",
			    CERTD_FRAME_MAX_DEFAULT);
		if (r == 1) {
			r = client_frame(c, id, plen, fn, arg);
			if (c->fd == -1)
				return r;
			client_consume(c, CERTD_FRAME_HEADER_LEN + plen);
			if (r != 1)
				return r;
			continue;
		}
		need = CERTD_FRAME_HEADER_LEN;
		if (c->len >= CERTD_FRAME_HEADER_LEN)
			need += (size_t)util_be32_get(c->buf);
		if ((r = client_grow(c, need)) != 0)
			return r;
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return client_lost(c, CERTD_E_IO,
			    "connection closed by certd");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((r = client_wait(c, POLLIN, deadline)) != 0)
				return r;
			continue;
		}
		return client_lost(c, CERTD_E_IO, "read from certd: %s",
		    strerror(errno));
	}
}

/* Start a request {"id":..,"op":op, + nfields more}; returns its id. */
uint64_t
client_req_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint64_t *next_id,
    const char *op, size_t nfields)
{
	uint64_t	id = (*next_id)++;

	if (*next_id == 0)
		*next_id = 1;		/* 0 is certd's "no request" */
	proto_begin(sb, pk);
	msgpack_pack_map(pk, 2 + nfields);
	proto_kv_uint(pk, "id", id);
	proto_kv_str(pk, "op", op);
	return id;
}

/* Send the request packed in c->sb and wait for its response. */
static int
client_call(struct certd_client *c, uint64_t id, result_cb fn, void *arg)
{
	int64_t	deadline = -1;
	int	r;

	if (proto_end(&c->sb, CERTD_FRAME_MAX_DEFAULT) != 0)
		r = client_fail(c, CERTD_E_INVAL, "request too large");
	else {
		if (c->timeout_ms > 0)
			deadline = client_now_ms() + c->timeout_ms;
		r = client_send(c, deadline);
		if (r == 0)
			r = client_recv(c, id, fn, arg, deadline);
	}
	util_wipe(c->sb.data, c->sb.size);
	msgpack_sbuffer_clear(&c->sb);
	return r;
}

/*
 * Start request op {"id":..,"op":op, + nfields more} in c->sb, with room
 * for REQ_OVERHEAD and n bytes of the request's strings.  Returns 0 with
 * the request's id in *id, CERTD_E_IO when not connected, CERTD_E_NOMEM.
 */
static int
client_begin(struct certd_client *c, size_t n, const char *op,
    size_t nfields, msgpack_packer *pk, uint64_t *id)
{
	*id = 0;
	if (c->fd == -1)
		return client_fail(c, CERTD_E_IO, "not connected to certd");
	if (client_sb_reserve(&c->sb, REQ_OVERHEAD + n) != 0)
		return client_fail(c, CERTD_E_NOMEM, "out of memory");
	*id = client_req_begin(&c->sb, pk, &c->next_id, op, nfields);
	return 0;
}

static int
hello_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	(void)arg;
	if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
	    proto_get_uint(res, "revision", &c->revision) != 1)
		return CERTD_E_PROTO;
	return 0;
}

static int
client_hello(struct certd_client *c)
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if ((r = client_begin(c, 0, "hello", 1, &pk, &id)) != 0)
		return r;
	proto_kv_uint(&pk, "version", CERTD_PROTO_VERSION);
	return client_call(c, id, hello_result, NULL);
}

/*
 * Connect the non-blocking socket.  AF_UNIX answers EAGAIN when the
 * listener's backlog is full: retried every 10 ms until the deadline.
 */
static int
client_connect(struct certd_client *c, const struct sockaddr_un *sun,
    socklen_t sunlen, int64_t deadline)
{
	for (;;) {
		if (connect(c->fd, (const struct sockaddr *)sun, sunlen) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS)
			return client_wait(c, POLLOUT, deadline);
		if (errno != EAGAIN || client_now_ms() >= deadline)
			return client_lost(c, CERTD_E_IO, "%s",
			    strerror(errno));
		(void)poll(NULL, 0, 10);
	}
}

struct certd_client *
certd_connect(const char *path, char *errbuf, size_t errlen)
{
	struct certd_client	*c;
	struct sockaddr_un	 sun;
	socklen_t		 sunlen;
	int			 r, e;

	path = certd_socket_path(path);
	if (client_make_sun(path, &sun, &sunlen) != 0) {
		util_fmt(errbuf, errlen, "socket path %s: %s", path,
		    *path == '\0' ? "empty" : "too long");
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		util_fmt(errbuf, errlen, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	c->timeout_ms = CERTD_CLIENT_TIMEOUT_MS;
	msgpack_sbuffer_init(&c->sb);
	c->cap = CLIENT_BUF_INIT;
	if ((c->buf = malloc(c->cap)) == NULL) {
		util_fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		util_fmt(errbuf, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (client_connect(c, &sun, sunlen,
	    client_now_ms() + c->timeout_ms) != 0) {
		util_fmt(errbuf, errlen, "connect %s: %s", path, c->err);
		goto fail;
	}
	/* Before hello: nothing goes to a server that is not certd. */
	if (client_peer_check(c->fd, path, errbuf, errlen) != 0) {
		certd_close(c);
		errno = EPERM;
		return NULL;
	}
	if ((r = client_hello(c)) != 0) {
		if (r <= -100)		/* the server's status */
			util_fmt(errbuf, errlen, "%s: %d %s", path, -r,
			    c->err);
		else
			util_fmt(errbuf, errlen, "%s: %s", path, c->err);
		goto fail;
	}
	c->err[0] = '\0';
	return c;
fail:
	e = errno;
	certd_close(c);
	/* EPERM says "refused by the peer check" (certd.h), nothing else. */
	errno = e == EPERM || e == 0 ? EIO : e;
	return NULL;
}

void
certd_close(struct certd_client *c)
{
	if (c == NULL)
		return;
	client_disconnect(c);
	free(c->buf);
	client_sb_free(&c->sb);
	free(c);
}

int
certd_client_set_server_uid(int64_t uid)
{
	return client_peer_set_server_uid(uid);
}

const char *
certd_client_error(const struct certd_client *c)
{
	return c != NULL ? c->err : "no client";
}

uint64_t
certd_client_revision(const struct certd_client *c)
{
	return c != NULL ? c->revision : 0;
}

void
certd_client_set_timeout(struct certd_client *c, unsigned timeout_ms)
{
	if (c != NULL)
		c->timeout_ms = timeout_ms;
}

int
certd_ping(struct certd_client *c)
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if (c == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, 0, "ping", 0, &pk, &id)) != 0)
		return r;
	return client_call(c, id, NULL, NULL);
}

struct cert_ctx {
	const char		*team;
	struct certd_cert	*cert;
};

static int
cert_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	struct cert_ctx	*ctx = arg;

	(void)c;
	return client_decode_cert(res, ctx->team, strlen(ctx->team),
	    &ctx->cert);
}

/*
 * Call rid, whose result is a certificate of team, into *out (when out is
 * not NULL; else it is dropped).
 */
static int
client_call_cert(struct certd_client *c, uint64_t rid, const char *team,
    struct certd_cert **out)
{
	struct cert_ctx	ctx = { team, NULL };
	int		r;

	r = client_call(c, rid, cert_result, &ctx);
	if (r == 0 && out != NULL)
		*out = ctx.cert;
	else
		certd_cert_free(ctx.cert);
	return r;
}

/*
 * client_begin for op on certificate id of team: the fields "team" and
 * "cert_id", and n_more the caller adds.  No client or team: CERTD_E_INVAL.
 */
static int
client_begin_cert(struct certd_client *c, const char *op, const char *team,
    uint64_t id, size_t n_more, msgpack_packer *pk, uint64_t *rid)
{
	int	r;

	if (c == NULL || team == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, strlen(team), op, 2 + n_more, pk, rid)) != 0)
		return r;
	proto_kv_str(pk, "team", team);
	proto_kv_uint(pk, "cert_id", id);
	return 0;
}

static int
client_get(struct certd_client *c, const char *team, uint64_t id,
    const char *alias, struct certd_cert **out)
{
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, strlen(team) + client_opt_len(alias), "get",
	    2, &pk, &rid)) != 0)
		return r;
	proto_kv_str(&pk, "team", team);
	if (alias != NULL)
		proto_kv_str(&pk, "alias", alias);
	else
		proto_kv_uint(&pk, "cert_id", id);
	return client_call_cert(c, rid, team, out);
}

int
certd_get(struct certd_client *c, const char *team, uint64_t id,
    struct certd_cert **out)
{
	return client_get(c, team, id, NULL, out);
}

int
certd_get_alias(struct certd_client *c, const char *team, const char *alias,
    struct certd_cert **out)
{
	if (alias == NULL) {
		if (out != NULL)
			*out = NULL;
		return CERTD_E_INVAL;
	}
	return client_get(c, team, 0, alias, out);
}

/*
 * A list result of kind into out, the caller's pointer to its list pointer
 * (a struct certd_list **, certd_subscriber_list ** or certd_version_list
 * **; all struct pointers share one representation).
 */
struct list_call {
	enum client_list	 kind;
	void			*out;
};

static int
list_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	struct list_call	*lc = arg;
	void			*l;
	int			 r;

	(void)c;
	if ((r = client_decode_items(res, lc->kind, &l)) == 0)
		memcpy(lc->out, &l, sizeof(l));
	return r;
}

int
certd_list(struct certd_client *c, const char *team, uint64_t page,
    uint64_t page_size, struct certd_list **out)
{
	struct list_call	 lc = { CLIENT_LIST_CERTS, out };
	msgpack_packer		 pk;
	uint64_t		 id;
	int			 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, strlen(team), "list",
	    1 + (page != 0) + (page_size != 0), &pk, &id)) != 0)
		return r;
	proto_kv_str(&pk, "team", team);
	if (page != 0)
		proto_kv_uint(&pk, "page", page);
	if (page_size != 0)
		proto_kv_uint(&pk, "page_size", page_size);
	return client_call(c, id, list_result, &lc);
}

size_t
client_opt_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

int
certd_put(struct certd_client *c, const struct certd_put *in,
    struct certd_cert **out)
{
	msgpack_packer	 pk;
	uint64_t	 id;
	size_t		 n, nf;
	int		 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || in == NULL || in->team == NULL)
		return CERTD_E_INVAL;
	n = strlen(in->team) + client_opt_len(in->alias) +
	    client_opt_len(in->certificate) + client_opt_len(in->private_key) +
	    client_opt_len(in->certificate_type);
	if (n > CERTD_FRAME_MAX_DEFAULT)
		return client_fail(c, CERTD_E_INVAL, "request too large");
	nf = 1 + (in->id != 0) + (in->alias != NULL) +
	    (in->certificate != NULL) + (in->private_key != NULL) +
	    (in->certificate_type != NULL);
	if ((r = client_begin(c, n, "put", nf, &pk, &id)) != 0)
		return r;
	proto_kv_str(&pk, "team", in->team);
	if (in->id != 0)
		proto_kv_uint(&pk, "cert_id", in->id);
	if (in->alias != NULL)
		proto_kv_str(&pk, "alias", in->alias);
	if (in->certificate != NULL)
		proto_kv_str(&pk, "certificate", in->certificate);
	if (in->private_key != NULL)
		proto_kv_str(&pk, "private_key", in->private_key);
	if (in->certificate_type != NULL)
		proto_kv_str(&pk, "certificate_type", in->certificate_type);
	return client_call_cert(c, id, in->team, out);
}

int
certd_delete(struct certd_client *c, const char *team, uint64_t id,
    int force)
{
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if ((r = client_begin_cert(c, "delete", team, id, 1, &pk, &rid)) != 0)
		return r;
	proto_kv_bool(&pk, "force", force != 0);
	return client_call(c, rid, NULL, NULL);
}

static int
rekey_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	char		*out = arg;
	const char	*s;
	size_t		 len;

	(void)c;
	if (proto_get_str(res, "key_id", &s, &len) != 1 || len > 16)
		return CERTD_E_PROTO;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Op rekey: of the master key, or with fleet of the fleet key. */
static int
client_rekey(struct certd_client *c, int fleet, char key_id[17])
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if (c == NULL || key_id == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, 0, "rekey", fleet ? 1 : 0, &pk, &id)) != 0)
		return r;
	if (fleet)
		proto_kv_bool(&pk, "fleet", 1);
	return client_call(c, id, rekey_result, key_id);
}

CERTD_API int
certd_rekey(struct certd_client *c, char key_id[17])
{
	return client_rekey(c, 0, key_id);
}

CERTD_API int
certd_rekey_fleet(struct certd_client *c, char key_id[17])
{
	return client_rekey(c, 1, key_id);
}

CERTD_API int
certd_backup(struct certd_client *c, const char *dir)
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if (c == NULL || dir == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin(c, strlen(dir), "backup", 1, &pk, &id)) != 0)
		return r;
	proto_kv_str(&pk, "dir", dir);
	return client_call(c, id, NULL, NULL);
}

/*
 * A call {"team":team,"cert_id":id} of op whose result is a list of kind,
 * into out (a pointer to the caller's list pointer, NULL until success).
 * A NULL client, team or out is CERTD_E_INVAL.
 */
static int
client_cert_list(struct certd_client *c, const char *op, const char *team,
    uint64_t id, enum client_list kind, void *out)
{
	struct list_call	 lc = { kind, out };
	void			*none = NULL;
	msgpack_packer		 pk;
	uint64_t		 rid;
	int			 r;

	if (out != NULL)
		memcpy(out, &none, sizeof(none));
	if (out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_begin_cert(c, op, team, id, 0, &pk, &rid)) != 0)
		return r;
	return client_call(c, rid, list_result, &lc);
}

int
certd_subscribers(struct certd_client *c, const char *team, uint64_t id,
    struct certd_subscriber_list **out)
{
	return client_cert_list(c, "subscribers", team, id,
	    CLIENT_LIST_SUBSCRIBERS, out);
}

int
certd_history(struct certd_client *c, const char *team, uint64_t id,
    struct certd_version_list **out)
{
	return client_cert_list(c, "history", team, id, CLIENT_LIST_VERSIONS,
	    out);
}

int
certd_rollback(struct certd_client *c, const char *team, uint64_t id,
    uint64_t revision, struct certd_cert **out)
{
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if (out != NULL)
		*out = NULL;
	if ((r = client_begin_cert(c, "rollback", team, id, 1, &pk,
	    &rid)) != 0)
		return r;
	proto_kv_uint(&pk, "revision", revision);
	return client_call_cert(c, rid, team, out);
}
