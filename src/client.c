/* SPDX-License-Identifier: MIT */
/*
 * libcertd: the client side of certd's Unix-socket protocol
 * (doc/protocol.md, include/certd/certd.h).  The blocking client owns one
 * non-blocking socket driven by poll, with its own bounded frame buffer; the
 * watch runs a bufferevent on the caller's event_base and reconnects through
 * an evtimer.  Framing and msgpack checks are proto.c's; everything here is
 * I/O, request building and copying results out of the unpacked frames.
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <msgpack.h>

#include <certd/certd.h>

#include "client_peer.h"
#include "proto.h"

#define CLIENT_FRAME_MAX	PROTO_FRAME_MAX_DEFAULT
#define CLIENT_BUF_INIT		(16 * 1024)
#define CLIENT_TIMEOUT_MS	30000
#define CLIENT_ERR_MAX		512
#define WATCH_BACKOFF_MIN_MS	100
#define WATCH_BACKOFF_MAX_MS	5000
#define WATCH_STABLE_MS		5000	/* live this long: back-off starts over */
#define WATCH_RUN_TICK_MS	100
/* Room for a request's map headers, keys and integers besides its strings. */
#define REQ_OVERHEAD		512

/* ---------------------------------------------------------------------- */
/* Shared helpers */

static void
wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

static void __attribute__((format(printf, 3, 0)))
vfmt(char *buf, size_t len, const char *f, va_list ap)
{
	if (buf == NULL || len == 0)
		return;
	(void)vsnprintf(buf, len, f, ap);
}

static void __attribute__((format(printf, 3, 4)))
fmt(char *buf, size_t len, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	vfmt(buf, len, f, ap);
	va_end(ap);
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * Make sb hold at least n bytes without msgpack-c's realloc, which would
 * leave a copy of a put's private key in freed memory.  The old contents
 * are copied and wiped.
 */
static int
sb_reserve(msgpack_sbuffer *sb, size_t n)
{
	char	*p;

	if (sb->alloc >= n)
		return 0;
	if ((p = malloc(n)) == NULL)
		return CERTD_E_NOMEM;
	if (sb->size > 0)
		memcpy(p, sb->data, sb->size);
	wipe(sb->data, sb->alloc);
	free(sb->data);
	sb->data = p;
	sb->alloc = n;
	return 0;
}

static void
sb_free(msgpack_sbuffer *sb)
{
	wipe(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

/* A C string from wire bytes; an embedded NUL is not the protocol. */
static int
dup_strn(const char *s, size_t len, char **out)
{
	char	*p;

	if (memchr(s, '\0', len) != NULL)
		return CERTD_E_PROTO;
	if ((p = malloc(len + 1)) == NULL)
		return CERTD_E_NOMEM;
	memcpy(p, s, len);
	p[len] = '\0';
	*out = p;
	return 0;
}

/* Optional string field: absent or nil leaves *out NULL. */
static int
get_opt_str(const msgpack_object *m, const char *key, char **out)
{
	const char	*s;
	size_t		 len;
	int		 r;

	r = proto_get_str(m, key, &s, &len);
	if (r < 0)
		return CERTD_E_PROTO;
	if (r == 0)
		return 0;
	return dup_strn(s, len, out);
}

static int
get_opt_uint(const msgpack_object *m, const char *key, uint64_t *out)
{
	return proto_get_uint(m, key, out) < 0 ? CERTD_E_PROTO : 0;
}

static int
get_opt_int(const msgpack_object *m, const char *key, int64_t *out)
{
	return proto_get_int(m, key, out) < 0 ? CERTD_E_PROTO : 0;
}

/*
 * A cert map into a fresh struct certd_cert.  Only id is required: delete
 * events carry id and alias alone.  team comes from the map, else from
 * team/team_len when given.
 */
static int
cert_from_map(const msgpack_object *m, const char *team, size_t team_len,
    struct certd_cert **out)
{
	struct certd_cert	*c;
	int			 r;

	*out = NULL;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return CERTD_E_PROTO;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CERTD_E_NOMEM;
	if (proto_get_uint(m, "id", &c->id) != 1) {
		r = CERTD_E_PROTO;
		goto fail;
	}
	if ((r = get_opt_str(m, "team", &c->team)) != 0 ||
	    (r = get_opt_str(m, "alias", &c->alias)) != 0 ||
	    (r = get_opt_str(m, "certificate_type", &c->certificate_type)) != 0 ||
	    (r = get_opt_str(m, "certificate", &c->certificate)) != 0 ||
	    (r = get_opt_str(m, "private_key", &c->private_key)) != 0 ||
	    (r = get_opt_str(m, "fingerprint_sha256",
	    &c->fingerprint_sha256)) != 0 ||
	    (r = get_opt_uint(m, "revision", &c->revision)) != 0 ||
	    (r = get_opt_int(m, "not_after", &c->not_after)) != 0)
		goto fail;
	if (c->team == NULL && team != NULL &&
	    (r = dup_strn(team, team_len, &c->team)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	certd_cert_free(c);
	return r;
}

static void
list_item_clear(struct certd_list_item *it)
{
	free(it->alias);
	free(it->certificate_type);
	free(it->fingerprint_sha256);
}

static int
list_from_map(const msgpack_object *m, struct certd_list **out)
{
	const msgpack_object_array	*a;
	const msgpack_object		*o;
	struct certd_list		*l;
	struct certd_list_item		*it;
	size_t				 i;
	int				 r;

	*out = NULL;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP ||
	    proto_get_array(m, "list", &a) != 1)
		return CERTD_E_PROTO;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	if ((r = get_opt_uint(m, "page", &l->page)) != 0 ||
	    (r = get_opt_uint(m, "page_size", &l->page_size)) != 0 ||
	    (r = get_opt_uint(m, "total", &l->total)) != 0)
		goto fail;
	/* a->size is bounded by proto_check (PROTO_ITEMS_MAX, frame bytes). */
	if (a->size > 0 &&
	    (l->items = calloc(a->size, sizeof(*l->items))) == NULL) {
		r = CERTD_E_NOMEM;
		goto fail;
	}
	for (i = 0; i < a->size; i++) {
		o = &a->ptr[i];
		it = &l->items[i];
		l->n = i + 1;
		if (o->type != MSGPACK_OBJECT_MAP ||
		    proto_get_uint(o, "id", &it->id) != 1) {
			r = CERTD_E_PROTO;
			goto fail;
		}
		if ((r = get_opt_str(o, "alias", &it->alias)) != 0 ||
		    (r = get_opt_str(o, "certificate_type",
		    &it->certificate_type)) != 0 ||
		    (r = get_opt_str(o, "fingerprint_sha256",
		    &it->fingerprint_sha256)) != 0 ||
		    (r = get_opt_uint(o, "revision", &it->revision)) != 0 ||
		    (r = get_opt_int(o, "not_after", &it->not_after)) != 0)
			goto fail;
	}
	*out = l;
	return 0;
fail:
	certd_list_free(l);
	return r;
}

/*
 * The error of a response {"ok":false,"error":{...}} into buf as
 * "msg[ (field: reason)]".  Returns -code, or CERTD_E_PROTO when the error
 * is not well formed.
 */
static int
server_error(const msgpack_object *resp, char *buf, size_t len)
{
	const msgpack_object	*e;
	const char		*msg = "", *field = NULL, *reason = NULL;
	size_t			 msg_len = 0, field_len = 0, reason_len = 0;
	int64_t			 code;

	e = proto_get(resp, "error");
	if (e == NULL || e->type != MSGPACK_OBJECT_MAP ||
	    proto_get_int(e, "code", &code) != 1 || code < 100 || code > 999 ||
	    proto_get_str(e, "msg", &msg, &msg_len) < 0 ||
	    proto_get_str(e, "field", &field, &field_len) < 0 ||
	    proto_get_str(e, "reason", &reason, &reason_len) < 0) {
		fmt(buf, len, "malformed error response from certd");
		return CERTD_E_PROTO;
	}
	if (field != NULL && reason != NULL)
		fmt(buf, len, "%.*s (%.*s: %.*s)", (int)msg_len, msg,
		    (int)field_len, field, (int)reason_len, reason);
	else if (field != NULL)
		fmt(buf, len, "%.*s (%.*s)", (int)msg_len, msg,
		    (int)field_len, field);
	else
		fmt(buf, len, "%.*s", (int)msg_len, msg);
	return -(int)code;
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

static int
make_sun(const char *path, struct sockaddr_un *sun, socklen_t *sunlen)
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

void
certd_cert_free(struct certd_cert *cert)
{
	if (cert == NULL)
		return;
	if (cert->private_key != NULL)
		wipe(cert->private_key, strlen(cert->private_key));
	free(cert->private_key);
	free(cert->team);
	free(cert->alias);
	free(cert->certificate_type);
	free(cert->certificate);
	free(cert->fingerprint_sha256);
	free(cert);
}

void
certd_list_free(struct certd_list *list)
{
	size_t	i;

	if (list == NULL)
		return;
	for (i = 0; i < list->n; i++)
		list_item_clear(&list->items[i]);
	free(list->items);
	free(list);
}

/* ---------------------------------------------------------------------- */
/* Blocking client */

/*
 * fd is -1 once the connection is lost; every call then fails with
 * CERTD_E_IO.  buf[0, len) holds bytes read and not yet consumed; cap never
 * exceeds CLIENT_FRAME_MAX + PROTO_HEADER_LEN.
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
	vfmt(c->err, sizeof(c->err), f, ap);
	va_end(ap);
	return code;
}

static void
client_disconnect(struct certd_client *c)
{
	if (c->fd != -1)
		(void)close(c->fd);
	c->fd = -1;
	wipe(c->buf, c->cap);
	c->len = 0;
}

/* The connection is unusable: close it and fail with code. */
static int __attribute__((format(printf, 3, 4)))
client_lost(struct certd_client *c, int code, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	vfmt(c->err, sizeof(c->err), f, ap);
	va_end(ap);
	client_disconnect(c);
	return code;
}

static int64_t
now_ms(void)
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
			left = deadline - now_ms();
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
	if (cap > CLIENT_FRAME_MAX + PROTO_HEADER_LEN)
		cap = CLIENT_FRAME_MAX + PROTO_HEADER_LEN;
	if ((p = malloc(cap)) == NULL)
		return client_lost(c, CERTD_E_NOMEM, "out of memory");
	memcpy(p, c->buf, c->len);
	wipe(c->buf, c->cap);
	free(c->buf);
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
	wipe(c->buf + rest, c->len - rest);
	c->len = rest;
}

/*
 * One whole frame of plen payload bytes at buf + PROTO_HEADER_LEN.  Returns
 * 1 when it is not the response to id (an event, a stale response), else
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
	if (proto_decode((const char *)c->buf + PROTO_HEADER_LEN, plen, &u,
	    &why) != 0) {
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
		r = server_error(m, c->err, sizeof(c->err));
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
		r = proto_frame_peek(c->buf, c->len, CLIENT_FRAME_MAX, &plen);
		if (r == -1)
			return client_lost(c, CERTD_E_PROTO,
			    "empty frame from certd");
		if (r == -2)
			return client_lost(c, CERTD_E_PROTO,
			    "frame from certd over %d bytes",
			    CLIENT_FRAME_MAX);
		if (r == 1) {
			r = client_frame(c, id, plen, fn, arg);
			if (c->fd == -1)
				return r;
			client_consume(c, PROTO_HEADER_LEN + plen);
			if (r != 1)
				return r;
			continue;
		}
		need = c->len < PROTO_HEADER_LEN ? PROTO_HEADER_LEN :
		    PROTO_HEADER_LEN + (size_t)be32(c->buf);
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
static uint64_t
req_begin(msgpack_sbuffer *sb, msgpack_packer *pk, uint64_t *next_id,
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

	if (proto_end(&c->sb, CLIENT_FRAME_MAX) != 0)
		r = client_fail(c, CERTD_E_INVAL, "request too large");
	else {
		if (c->timeout_ms > 0)
			deadline = now_ms() + c->timeout_ms;
		r = client_send(c, deadline);
		if (r == 0)
			r = client_recv(c, id, fn, arg, deadline);
	}
	wipe(c->sb.data, c->sb.size);
	msgpack_sbuffer_clear(&c->sb);
	return r;
}

/* Common argument checks; sb reserved for n bytes of request. */
static int
client_ready(struct certd_client *c, size_t n)
{
	if (c->fd == -1)
		return client_fail(c, CERTD_E_IO, "not connected to certd");
	if (sb_reserve(&c->sb, n) != 0)
		return client_fail(c, CERTD_E_NOMEM, "out of memory");
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

	if ((r = client_ready(c, REQ_OVERHEAD)) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "hello", 1);
	proto_kv_uint(&pk, "version", PROTO_VERSION);
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
		if (errno != EAGAIN || now_ms() >= deadline)
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
	if (make_sun(path, &sun, &sunlen) != 0) {
		fmt(errbuf, errlen, "socket path %s: %s", path,
		    *path == '\0' ? "empty" : "too long");
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		fmt(errbuf, errlen, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	c->timeout_ms = CLIENT_TIMEOUT_MS;
	msgpack_sbuffer_init(&c->sb);
	c->cap = CLIENT_BUF_INIT;
	if ((c->buf = malloc(c->cap)) == NULL) {
		fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		fmt(errbuf, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (client_connect(c, &sun, sunlen, now_ms() + c->timeout_ms) != 0) {
		fmt(errbuf, errlen, "connect %s: %s", path, c->err);
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
			fmt(errbuf, errlen, "%s: %d %s", path, -r, c->err);
		else
			fmt(errbuf, errlen, "%s: %s", path, c->err);
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
	sb_free(&c->sb);
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
	if ((r = client_ready(c, REQ_OVERHEAD)) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "ping", 0);
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
	return cert_from_map(res, ctx->team, strlen(ctx->team), &ctx->cert);
}

static int
client_get(struct certd_client *c, const char *team, uint64_t id,
    const char *alias, struct certd_cert **out)
{
	struct cert_ctx	ctx = { team, NULL };
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team) +
	    (alias != NULL ? strlen(alias) : 0))) != 0)
		return r;
	rid = req_begin(&c->sb, &pk, &c->next_id, "get", 2);
	proto_kv_str(&pk, "team", team);
	if (alias != NULL)
		proto_kv_str(&pk, "alias", alias);
	else
		proto_kv_uint(&pk, "cert_id", id);
	if ((r = client_call(c, rid, cert_result, &ctx)) == 0)
		*out = ctx.cert;
	return r;
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

static int
list_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	(void)c;
	return list_from_map(res, arg);
}

int
certd_list(struct certd_client *c, const char *team, uint64_t page,
    uint64_t page_size, struct certd_list **out)
{
	struct certd_list	*l = NULL;
	msgpack_packer		 pk;
	uint64_t		 id;
	int			 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team))) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "list",
	    1 + (page != 0) + (page_size != 0));
	proto_kv_str(&pk, "team", team);
	if (page != 0)
		proto_kv_uint(&pk, "page", page);
	if (page_size != 0)
		proto_kv_uint(&pk, "page_size", page_size);
	if ((r = client_call(c, id, list_result, &l)) == 0)
		*out = l;
	return r;
}

static size_t
opt_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

int
certd_put(struct certd_client *c, const struct certd_put *in,
    struct certd_cert **out)
{
	struct cert_ctx	 ctx;
	msgpack_packer	 pk;
	uint64_t	 id;
	size_t		 n;
	int		 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || in == NULL || in->team == NULL)
		return CERTD_E_INVAL;
	ctx.team = in->team;
	ctx.cert = NULL;
	n = REQ_OVERHEAD + strlen(in->team) + opt_len(in->alias) +
	    opt_len(in->certificate) + opt_len(in->private_key) +
	    opt_len(in->certificate_type);
	if (n > CLIENT_FRAME_MAX + REQ_OVERHEAD)
		return client_fail(c, CERTD_E_INVAL, "request too large");
	if ((r = client_ready(c, n)) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "put", 1 + (in->id != 0) +
	    (in->alias != NULL) + (in->certificate != NULL) +
	    (in->private_key != NULL) + (in->certificate_type != NULL));
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
	r = client_call(c, id, cert_result, &ctx);
	if (r == 0 && out != NULL)
		*out = ctx.cert;
	else
		certd_cert_free(ctx.cert);
	return r;
}

int
certd_delete(struct certd_client *c, const char *team, uint64_t id,
    int force)
{
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if (c == NULL || team == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team))) != 0)
		return r;
	rid = req_begin(&c->sb, &pk, &c->next_id, "delete", 3);
	proto_kv_str(&pk, "team", team);
	proto_kv_uint(&pk, "cert_id", id);
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

CERTD_API int
certd_rekey(struct certd_client *c, char key_id[17])
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if (c == NULL || key_id == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD)) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "rekey", 0);
	return client_call(c, id, rekey_result, key_id);
}

CERTD_API int
certd_backup(struct certd_client *c, const char *dir)
{
	msgpack_packer	pk;
	uint64_t	id;
	int		r;

	if (c == NULL || dir == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(dir))) != 0)
		return r;
	id = req_begin(&c->sb, &pk, &c->next_id, "backup", 1);
	proto_kv_str(&pk, "dir", dir);
	return client_call(c, id, NULL, NULL);
}

static void
subscriber_clear(struct certd_subscriber *s)
{
	free(s->name);
	free(s->status);
	free(s->detail);
	free(s->served_fingerprint_sha256);
}

void
certd_subscriber_list_free(struct certd_subscriber_list *l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		subscriber_clear(&l->items[i]);
	free(l->items);
	free(l);
}

/* A required string field, "" when absent so callers need no NULL checks. */
static int
get_str_or_empty(const msgpack_object *m, const char *key, char **out)
{
	int	r;

	if ((r = get_opt_str(m, key, out)) != 0)
		return r;
	if (*out == NULL && (*out = strdup("")) == NULL)
		return CERTD_E_NOMEM;
	return 0;
}

static int
subscribers_result(struct certd_client *c, const msgpack_object *res,
    void *arg)
{
	const msgpack_object_array	 *a;
	const msgpack_object		 *o;
	struct certd_subscriber_list	**out = arg, *l;
	struct certd_subscriber		 *s;
	size_t				  i;
	int				  r;

	(void)c;
	if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
	    proto_get_array(res, "list", &a) != 1)
		return CERTD_E_PROTO;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	/* a->size is bounded by proto_check (PROTO_ITEMS_MAX, frame bytes). */
	if (a->size > 0 &&
	    (l->items = calloc(a->size, sizeof(*l->items))) == NULL) {
		r = CERTD_E_NOMEM;
		goto fail;
	}
	for (i = 0; i < a->size; i++) {
		o = &a->ptr[i];
		s = &l->items[i];
		l->n = i + 1;
		if (o->type != MSGPACK_OBJECT_MAP ||
		    proto_get_uint(o, "watch", &s->watch) != 1) {
			r = CERTD_E_PROTO;
			goto fail;
		}
		if ((r = get_str_or_empty(o, "name", &s->name)) != 0 ||
		    (r = get_str_or_empty(o, "status", &s->status)) != 0 ||
		    (r = get_str_or_empty(o, "detail", &s->detail)) != 0 ||
		    (r = get_opt_uint(o, "uid", &s->uid)) != 0 ||
		    (r = get_opt_int(o, "pid", &s->pid)) != 0 ||
		    (r = get_opt_uint(o, "revision", &s->revision)) != 0 ||
		    (r = get_opt_int(o, "at", &s->at)) != 0 ||
		    (r = get_opt_str(o, "served_fingerprint_sha256",
		    &s->served_fingerprint_sha256)) != 0 ||
		    (r = get_opt_int(o, "verified_at_unix",
		    &s->verified_at)) != 0)
			goto fail;
	}
	*out = l;
	return 0;
fail:
	certd_subscriber_list_free(l);
	return r;
}

int
certd_subscribers(struct certd_client *c, const char *team, uint64_t id,
    struct certd_subscriber_list **out)
{
	struct certd_subscriber_list	*l = NULL;
	msgpack_packer			 pk;
	uint64_t			 rid;
	int				 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team))) != 0)
		return r;
	rid = req_begin(&c->sb, &pk, &c->next_id, "subscribers", 2);
	proto_kv_str(&pk, "team", team);
	proto_kv_uint(&pk, "cert_id", id);
	if ((r = client_call(c, rid, subscribers_result, &l)) == 0)
		*out = l;
	return r;
}

static void
version_clear(struct certd_version *v)
{
	free(v->alias);
	free(v->certificate_type);
	free(v->fingerprint_sha256);
}

void
certd_version_list_free(struct certd_version_list *l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		version_clear(&l->items[i]);
	free(l->items);
	free(l);
}

static int
history_result(struct certd_client *c, const msgpack_object *res, void *arg)
{
	const msgpack_object_array	 *a;
	const msgpack_object		 *o;
	struct certd_version_list	**out = arg, *l;
	struct certd_version		 *v;
	size_t				  i;
	int				  r;

	(void)c;
	if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
	    proto_get_array(res, "list", &a) != 1)
		return CERTD_E_PROTO;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	/* a->size is bounded by proto_check (PROTO_ITEMS_MAX, frame bytes). */
	if (a->size > 0 &&
	    (l->items = calloc(a->size, sizeof(*l->items))) == NULL) {
		r = CERTD_E_NOMEM;
		goto fail;
	}
	for (i = 0; i < a->size; i++) {
		o = &a->ptr[i];
		v = &l->items[i];
		l->n = i + 1;
		if (o->type != MSGPACK_OBJECT_MAP ||
		    proto_get_uint(o, "revision", &v->revision) != 1) {
			r = CERTD_E_PROTO;
			goto fail;
		}
		if ((r = get_opt_str(o, "alias", &v->alias)) != 0 ||
		    (r = get_opt_str(o, "certificate_type",
		    &v->certificate_type)) != 0 ||
		    (r = get_opt_str(o, "fingerprint_sha256",
		    &v->fingerprint_sha256)) != 0 ||
		    (r = get_opt_int(o, "not_after", &v->not_after)) != 0 ||
		    (r = get_opt_int(o, "updated_at", &v->updated_at)) != 0)
			goto fail;
	}
	*out = l;
	return 0;
fail:
	certd_version_list_free(l);
	return r;
}

int
certd_history(struct certd_client *c, const char *team, uint64_t id,
    struct certd_version_list **out)
{
	struct certd_version_list	*l = NULL;
	msgpack_packer			 pk;
	uint64_t			 rid;
	int				 r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL || out == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team))) != 0)
		return r;
	rid = req_begin(&c->sb, &pk, &c->next_id, "history", 2);
	proto_kv_str(&pk, "team", team);
	proto_kv_uint(&pk, "cert_id", id);
	if ((r = client_call(c, rid, history_result, &l)) == 0)
		*out = l;
	return r;
}

int
certd_rollback(struct certd_client *c, const char *team, uint64_t id,
    uint64_t revision, struct certd_cert **out)
{
	struct cert_ctx	ctx = { team, NULL };
	msgpack_packer	pk;
	uint64_t	rid;
	int		r;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || team == NULL)
		return CERTD_E_INVAL;
	if ((r = client_ready(c, REQ_OVERHEAD + strlen(team))) != 0)
		return r;
	rid = req_begin(&c->sb, &pk, &c->next_id, "rollback", 3);
	proto_kv_str(&pk, "team", team);
	proto_kv_uint(&pk, "cert_id", id);
	proto_kv_uint(&pk, "revision", revision);
	r = client_call(c, rid, cert_result, &ctx);
	if (r == 0 && out != NULL)
		*out = ctx.cert;
	else
		certd_cert_free(ctx.cert);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Watch */

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
	sb_free(&w->sb);
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
		vfmt(w->err, sizeof(w->err), f, ap);
		va_end(ap);
	}
	watch_close(w);
	w->error = code;
	/*
	 * A watch answered is not yet a working one (a certd that answers
	 * and then sends a malformed event would have us reconnect ten times
	 * a second): the back-off starts over only after a while live.
	 */
	if (w->live_ms != 0 && now_ms() - w->live_ms >= WATCH_STABLE_MS)
		w->backoff_ms = WATCH_BACKOFF_MIN_MS;
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

static void
watch_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct certd_watch	*w = arg;

	(void)fd;
	(void)what;
	watch_enter(w);
	if (!w->dead && w->wev != NULL &&
	    (w->write_err != 0 || watch_flush(w) != 0))
		watch_down(w, CERTD_E_IO, 0, "write to %s: %s", w->socket,
		    strerror(w->write_err));
	watch_leave(w);
}

/* Queue the frame packed in sb and try to send it at once. */
static int
watch_send(struct certd_watch *w)
{
	if (proto_end(&w->sb, CLIENT_FRAME_MAX) != 0)
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

	w->req_id = req_begin(&w->sb, &pk, &w->next_id, "watch",
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
		code = server_error(m, w->err, sizeof(w->err));
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
	w->live_ms = now_ms();
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
	if (team != NULL && (r = dup_strn(team, team_len, &team_copy)) != 0) {
		if (r == CERTD_E_PROTO)
			goto bad;
		watch_down(w, r, 0, "out of memory");
		return -1;
	}
	if ((r = cert_from_map(proto_get(m, "cert"), team, team_len,
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
		code = server_error(m, w->err, sizeof(w->err));
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
	unsigned char		 hdr[PROTO_HEADER_LEN], *p;
	size_t			 avail, n, len;
	int			 r;

	watch_enter(w);
	while (!w->dead && w->bev == bev) {
		avail = evbuffer_get_length(in);
		if (avail < PROTO_HEADER_LEN)
			break;
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) !=
		    (ev_ssize_t)sizeof(hdr))
			break;
		r = proto_frame_peek(hdr, sizeof(hdr), CLIENT_FRAME_MAX, &len);
		if (r == -1) {
			watch_down(w, CERTD_E_PROTO, 0,
			    "empty frame from certd");
			break;
		}
		if (r == -2) {
			watch_down(w, CERTD_E_PROTO, 0,
			    "frame from certd over %d bytes", CLIENT_FRAME_MAX);
			break;
		}
		n = PROTO_HEADER_LEN + (size_t)be32(hdr);
		if (avail < n)
			break;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)n)) == NULL) {
			watch_down(w, CERTD_E_NOMEM, 0, "out of memory");
			break;
		}
		if (proto_frame_peek(p, n, CLIENT_FRAME_MAX, &len) != 1) {
			watch_down(w, CERTD_E_PROTO, 0, "bad frame header");
			break;
		}
		r = watch_frame(w, (const char *)p + PROTO_HEADER_LEN, len);
		/* Still valid: libevent holds the bufferevent during its cb. */
		wipe(p, n);
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
	w->wev = event_new(w->base, fd, EV_WRITE, watch_write_cb, w);
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

static void
watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct certd_watch	*w = arg;

	(void)fd;
	(void)what;
	watch_enter(w);
	if (!w->dead && w->state == WATCH_IDLE)
		watch_connect(w);
	watch_leave(w);
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
	if (o->n_ids > PROTO_ITEMS_MAX || o->n_aliases > PROTO_ITEMS_MAX)
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
		fmt(errbuf, errlen, "watch: base, options and callback needed");
		return NULL;
	}
	if ((why = watch_opts_invalid(opts)) != NULL) {
		fmt(errbuf, errlen, "watch: %s", why);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		fmt(errbuf, errlen, "out of memory");
		return NULL;
	}
	msgpack_sbuffer_init(&w->sb);
	w->base = base;
	w->cb = cb;
	w->arg = arg;
	w->reconnect = opts->reconnect != 0;
	w->backoff_max_ms = opts->backoff_max_ms != 0 ? opts->backoff_max_ms :
	    WATCH_BACKOFF_MAX_MS;
	if (w->backoff_max_ms < WATCH_BACKOFF_MIN_MS)
		w->backoff_max_ms = WATCH_BACKOFF_MIN_MS;
	w->backoff_ms = WATCH_BACKOFF_MIN_MS;
	w->next_id = 1;
	w->have_since = opts->has_since != 0;
	w->since = opts->since;
	w->state = WATCH_IDLE;
	if (watch_copy_opts(w, opts) != 0) {
		fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (make_sun(w->socket, &w->sun, &w->sunlen) != 0) {
		fmt(errbuf, errlen, "socket path %s: %s", w->socket,
		    *w->socket == '\0' ? "empty" : "too long");
		goto fail;
	}
	if ((w->timer = evtimer_new(base, watch_timer_cb, w)) == NULL) {
		fmt(errbuf, errlen, "out of memory");
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
	if (sb_reserve(&w->sb, REQ_OVERHEAD + opt_len(detail) +
	    opt_len(served) + 64) != 0)
		return CERTD_E_NOMEM;
	(void)req_begin(&w->sb, &pk, &w->next_id, "ack",
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
	struct timeval		 tv = { 0, WATCH_RUN_TICK_MS * 1000 };
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
