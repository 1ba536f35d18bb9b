/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Unix-socket listener (src/ctl.c, through src/ctl.h
 * only): framing as doc/protocol.md states it, driven from raw socket
 * writes.  A real event_base, store, hub and service stand behind a real
 * ctl listener on a socket in a temporary directory; the test writes bytes
 * on client sockets and turns the loop (EVLOOP_NONBLOCK) between steps.  A
 * frame split byte by byte, several frames in one write, a frame of exactly
 * frame_max bytes and a header one byte over, a zero length, malformed
 * msgpack, a truncated frame then EOF: each gets the exact answer (bytes
 * compared with frames this file encodes by hand, not with proto.c's), the
 * connection is closed (frame errors) or kept (request errors) as the
 * protocol says, and a bystander connection and new ones keep being
 * served.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl.h"
#include "hub.h"
#include "service.h"
#include "store.h"

/* How long anything the loop should do at once may take. */
#define WAIT_MS		10000
#define MSG_MAX		512

/* A string literal and its length, without the NUL. */
#define P(s)		(s), sizeof(s) - 1

struct fixture {
	char			 dir[64];
	char			 path[96];
	struct event_base	*base;
	struct config		*cfg;
	struct store		*store;
	struct hub		*hub;
	struct service		*svc;
	struct ctl		*ctl;
	int			 bystander;	/* a peer that behaves */
	uint64_t		 bystander_id;
};

/* --- frames, encoded here by hand (msgpack spec, smallest forms) ---------- */

struct msg {
	unsigned char	b[MSG_MAX];
	size_t		n;
};

static void
put1(struct msg *m, unsigned c)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = (unsigned char)c;
}

static void
putn(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof(m->b));
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* Start a frame: room for the length header. */
static void
msg_begin(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->n = 4;
}

/* Fill in the big-endian length header. */
static void
msg_end(struct msg *m)
{
	size_t	len = m->n - 4;

	m->b[0] = (unsigned char)(len >> 24);
	m->b[1] = (unsigned char)(len >> 16);
	m->b[2] = (unsigned char)(len >> 8);
	m->b[3] = (unsigned char)len;
}

static void
mp_map(struct msg *m, unsigned n)
{
	assert_true(n < 16);
	put1(m, 0x80 | n);
}

static void
mp_str(struct msg *m, const char *s)
{
	size_t	len = strlen(s);

	if (len < 32)
		put1(m, 0xa0 | (unsigned)len);
	else {
		assert_true(len < 256);
		put1(m, 0xd9);
		put1(m, (unsigned)len);
	}
	putn(m, s, len);
}

static void
mp_uint(struct msg *m, uint64_t v)
{
	int	i, n;

	if (v < 128) {
		put1(m, (unsigned)v);
		return;
	}
	if (v < 256) {
		put1(m, 0xcc);
		n = 1;
	} else if (v < 65536) {
		put1(m, 0xcd);
		n = 2;
	} else if (v < 4294967296ULL) {
		put1(m, 0xce);
		n = 4;
	} else {
		put1(m, 0xcf);
		n = 8;
	}
	for (i = n - 1; i >= 0; i--)
		put1(m, (unsigned)(v >> (8 * i)) & 0xff);
}

/* {"id":id,"op":op} */
static void
req(struct msg *m, uint64_t id, const char *op)
{
	msg_begin(m);
	mp_map(m, 2);
	mp_str(m, "id");
	mp_uint(m, id);
	mp_str(m, "op");
	mp_str(m, op);
	msg_end(m);
}

/* {"id":id,"ok":true,"result":"pong"} */
static void
want_pong(struct msg *m, uint64_t id)
{
	msg_begin(m);
	mp_map(m, 3);
	mp_str(m, "id");
	mp_uint(m, id);
	mp_str(m, "ok");
	put1(m, 0xc3);
	mp_str(m, "result");
	mp_str(m, "pong");
	msg_end(m);
}

/* {"id":id,"ok":false,"error":{"code":code,"msg":text[,"field"][,"reason"]}} */
static void
want_error(struct msg *m, uint64_t id, unsigned code, const char *text,
    const char *field, const char *reason)
{
	msg_begin(m);
	mp_map(m, 3);
	mp_str(m, "id");
	mp_uint(m, id);
	mp_str(m, "ok");
	put1(m, 0xc2);
	mp_str(m, "error");
	mp_map(m, 2 + (field != NULL) + (reason != NULL));
	mp_str(m, "code");
	mp_uint(m, code);
	mp_str(m, "msg");
	mp_str(m, text);
	if (field != NULL) {
		mp_str(m, "field");
		mp_str(m, field);
	}
	if (reason != NULL) {
		mp_str(m, "reason");
		mp_str(m, reason);
	}
	msg_end(m);
}

/* A frame of the given raw payload bytes. */
static void
raw_frame(struct msg *m, const void *payload, size_t len)
{
	msg_begin(m);
	putn(m, payload, len);
	msg_end(m);
}

/* --- driving the loop and the peers ------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One turn of the loop that never blocks, then a short wait on fd. */
static void
pump(struct fixture *f, int fd, short events)
{
	struct pollfd	pfd = { fd, events, 0 };

	event_base_loop(f->base, EVLOOP_NONBLOCK);
	if (fd >= 0)
		(void)poll(&pfd, 1, 2);
}

static void
wait_conns(struct fixture *f, size_t n)
{
	int64_t	deadline = now_ms() + WAIT_MS;

	while (ctl_conns(f->ctl) != n && now_ms() < deadline)
		pump(f, -1, 0);
	assert_int_equal(ctl_conns(f->ctl), n);
}

/* A client connection, accepted by the listener when this returns. */
static int
peer_new(struct fixture *f)
{
	struct sockaddr_un	sun;
	size_t			before = ctl_conns(f->ctl);
	int			fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	wait_conns(f, before + 1);
	return fd;
}

/* Write all of buf, turning the loop while the socket is full. */
static void
send_all(struct fixture *f, int fd, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	int64_t			 deadline = now_ms() + WAIT_MS;
	ssize_t			 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			fail_msg("send: %s (%zu bytes left)", strerror(errno),
			    len);
		assert_true(now_ms() < deadline);
		pump(f, fd, POLLOUT);
	}
	/* Let the listener read it. */
	pump(f, -1, 0);
	pump(f, -1, 0);
}

static void
send_msg(struct fixture *f, int fd, const struct msg *m)
{
	send_all(f, fd, m->b, m->n);
}

/* Read exactly n bytes; EOF or silence before that fails. */
static void
recv_exact(struct fixture *f, int fd, unsigned char *buf, size_t n)
{
	int64_t	deadline = now_ms() + WAIT_MS;
	size_t	got = 0;
	ssize_t	r;

	while (got < n) {
		r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			fail_msg("EOF after %zu of %zu bytes", got, n);
		assert_true(errno == EAGAIN || errno == EINTR);
		if (now_ms() >= deadline)
			fail_msg("only %zu of %zu bytes came", got, n);
		pump(f, fd, POLLIN);
	}
}

/* The next bytes on fd are exactly the frame want. */
static void
expect_frame(struct fixture *f, int fd, const struct msg *want)
{
	unsigned char	got[MSG_MAX];

	recv_exact(f, fd, got, want->n);
	assert_memory_equal(got, want->b, want->n);
}

/* The peer sees EOF, with no byte before it. */
static void
expect_eof(struct fixture *f, int fd)
{
	int64_t		deadline = now_ms() + WAIT_MS;
	unsigned char	c;
	ssize_t		r;

	for (;;) {
		r = recv(fd, &c, 1, MSG_DONTWAIT);
		if (r == 0)
			return;
		if (r > 0)
			fail_msg("byte 0x%02x where EOF was expected", c);
		assert_true(errno == EAGAIN || errno == EINTR);
		if (now_ms() >= deadline)
			fail_msg("the connection stayed open");
		pump(f, fd, POLLIN);
	}
}

/* Several turns of the loop, and still nothing to read (nor EOF). */
static void
expect_nothing(struct fixture *f, int fd)
{
	unsigned char	c;
	int		i;

	for (i = 0; i < 5; i++)
		pump(f, fd, POLLIN);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* A ping of id on fd is answered pong. */
static void
ping_ok(struct fixture *f, int fd, uint64_t id)
{
	struct msg	m;

	req(&m, id, "ping");
	send_msg(f, fd, &m);
	want_pong(&m, id);
	expect_frame(f, fd, &m);
}

/*
 * The daemon keeps serving others: the bystander, connected all along, is
 * answered; so is a connection made now; and only the bystander is left
 * open.
 */
static void
others_served(struct fixture *f)
{
	int	fd;

	ping_ok(f, f->bystander, ++f->bystander_id);
	fd = peer_new(f);
	ping_ok(f, fd, 99);
	close(fd);
	wait_conns(f, 1);
}

/*
 * The connection was kept: nothing more comes on it and a ping is still
 * answered.  Then it is closed, and the others are served.
 */
static void
kept(struct fixture *f, int fd, uint64_t id)
{
	expect_nothing(f, fd);
	ping_ok(f, fd, id);
	assert_int_equal(ctl_conns(f->ctl), 2);
	close(fd);
	others_served(f);
}

/*
 * A frame-level failure: the error frame {"id":0,...,"code":code,"msg":
 * text}, then EOF.  The others are served.
 */
static void
failed(struct fixture *f, int fd, unsigned code, const char *text)
{
	struct msg	want;

	want_error(&want, 0, code, text, NULL, NULL);
	expect_frame(f, fd, &want);
	expect_eof(f, fd);
	close(fd);
	others_served(f);
}

/* Append p[0..len) to buf[0..*n), of cap bytes. */
static void
append(unsigned char *buf, size_t cap, size_t *n, const void *p, size_t len)
{
	assert_true(*n + len <= cap);
	memcpy(buf + *n, p, len);
	*n += len;
}

/* --- fixture ------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	struct stat	 st;
	char		 err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/certd-ctl.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(f->path, sizeof(f->path), "%s/certd.sock", f->dir);
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->cfg = config_new());
	f->store = store_open(f->base, f->dir, err, sizeof(err));
	if (f->store == NULL)
		fail_msg("store_open: %s", err);
	assert_non_null(f->hub = hub_new(f->store));
	assert_non_null(f->svc = service_new(f->base, f->store, f->hub));
	f->ctl = ctl_new(f->base, f->svc, f->hub, f->cfg, f->path, err,
	    sizeof(err));
	if (f->ctl == NULL)
		fail_msg("ctl_new: %s", err);
	assert_int_equal(ctl_conns(f->ctl), 0);
	f->bystander = peer_new(f);
	ping_ok(f, f->bystander, ++f->bystander_id);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 cmd[128];

	close(f->bystander);
	ctl_stop_work(f->ctl);
	service_stop(f->svc);
	store_free(f->store);
	ctl_free(f->ctl);
	hub_free(f->hub);
	service_free(f->svc);
	config_free(f->cfg);
	event_base_free(f->base);
	/* ctl_free removed the socket file it bound. */
	assert_int_equal(access(f->path, F_OK), -1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* --- tests -------------------------------------------------------------- */

/* A frame that comes one byte per read is answered once whole, not before. */
static void
test_byte_by_byte(void **state)
{
	struct fixture	*f = *state;
	struct msg	 m, want;
	size_t		 i;
	int		 fd = peer_new(f);

	req(&m, 300, "ping");
	for (i = 0; i < m.n; i++) {
		send_all(f, fd, m.b + i, 1);
		if (i + 1 < m.n) {
			expect_nothing(f, fd);
			assert_int_equal(ctl_conns(f->ctl), 2);
		}
	}
	want_pong(&want, 300);
	expect_frame(f, fd, &want);
	/* The next frame starts afresh. */
	kept(f, fd, 301);
}

/*
 * Several frames in one write are all answered, in order; a frame cut at
 * the end of that write waits for the rest.
 */
static void
test_several_in_one_write(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[6 * MSG_MAX];
	struct msg	 m, want;
	size_t		 n = 0, half;
	uint64_t	 id;
	int		 fd = peer_new(f);

	for (id = 1; id <= 3; id++) {
		req(&m, id, "ping");
		append(buf, sizeof(buf), &n, m.b, m.n);
	}
	/* an unknown op in the middle of the batch: answered, not fatal */
	req(&m, 4, "nope");
	append(buf, sizeof(buf), &n, m.b, m.n);
	req(&m, 5, "ping");
	half = m.n / 2;
	append(buf, sizeof(buf), &n, m.b, half);
	send_all(f, fd, buf, n);
	for (id = 1; id <= 3; id++) {
		want_pong(&want, id);
		expect_frame(f, fd, &want);
	}
	want_error(&want, 4, 400, "invalid request", "op", "unknown op");
	expect_frame(f, fd, &want);
	expect_nothing(f, fd);
	send_all(f, fd, m.b + half, m.n - half);
	want_pong(&want, 5);
	expect_frame(f, fd, &want);
	kept(f, fd, 6);
}

/*
 * {"id":7,"op":"ping","pad":str32} of exactly len payload bytes, with its
 * header: unknown fields are ignored, so it is a ping whatever its size.
 */
static unsigned char *
padded_ping(size_t len)
{
	static const unsigned char head[] = {
		0x83, 0xa2, 'i', 'd', 0x07, 0xa2, 'o', 'p',
		0xa4, 'p', 'i', 'n', 'g', 0xa3, 'p', 'a', 'd', 0xdb,
	};
	unsigned char	*b = malloc(4 + len);
	size_t		 pad = len - sizeof(head) - 4;

	assert_non_null(b);
	assert_true(len > sizeof(head) + 4);
	b[0] = (unsigned char)(len >> 24);
	b[1] = (unsigned char)(len >> 16);
	b[2] = (unsigned char)(len >> 8);
	b[3] = (unsigned char)len;
	memcpy(b + 4, head, sizeof(head));
	b[4 + sizeof(head)] = (unsigned char)(pad >> 24);
	b[5 + sizeof(head)] = (unsigned char)(pad >> 16);
	b[6 + sizeof(head)] = (unsigned char)(pad >> 8);
	b[7 + sizeof(head)] = (unsigned char)pad;
	memset(b + 8 + sizeof(head), 'x', pad);
	return b;
}

/* Send padded_ping(len) on fd. */
static void
send_padded(struct fixture *f, int fd, size_t len)
{
	unsigned char	*b = padded_ping(len);

	send_all(f, fd, b, 4 + len);
	free(b);
}

/* A frame of exactly frame_max (CERTD_FRAME_MAX_DEFAULT) bytes is served. */
static void
test_frame_at_limit(void **state)
{
	struct fixture	*f = *state;
	struct msg	 want;
	unsigned char	*big;
	int		 fd = peer_new(f);

	assert_int_equal(f->cfg->frame_max, CERTD_FRAME_MAX_DEFAULT);
	assert_int_equal(CERTD_FRAME_MAX_DEFAULT, 1048576);
	big = padded_ping(CERTD_FRAME_MAX_DEFAULT);
	assert_memory_equal(big, "\x00\x10\x00\x00", 4);
	free(big);
	send_padded(f, fd, CERTD_FRAME_MAX_DEFAULT);
	want_pong(&want, 7);
	expect_frame(f, fd, &want);
	kept(f, fd, 8);
}

/*
 * A header announcing frame_max + 1 is refused from the header alone
 * (nothing more is sent): 413, then close.
 */
static void
test_frame_over_limit(void **state)
{
	struct fixture		*f = *state;
	static const unsigned char hdr[4] = { 0x00, 0x10, 0x00, 0x01 };
	int			 fd = peer_new(f);

	assert_int_equal((size_t)hdr[1] << 16 | hdr[3],
	    CERTD_FRAME_MAX_DEFAULT + 1);
	send_all(f, fd, hdr, sizeof(hdr));
	failed(f, fd, 413, "frame too large");
}

/* The limit is the config's frame_max: at it served, one over refused. */
static void
test_frame_limit_from_config(void **state)
{
	struct fixture	*f = *state;
	struct msg	 want;
	int		 fd;

	f->cfg->frame_max = 64;
	fd = peer_new(f);
	send_padded(f, fd, 64);
	want_pong(&want, 7);
	expect_frame(f, fd, &want);
	send_padded(f, fd, 65);
	failed(f, fd, 413, "frame too large");
}

/* A zero length: 400 "empty frame", then close. */
static void
test_zero_length(void **state)
{
	struct fixture		*f = *state;
	static const unsigned char zero[4] = { 0, 0, 0, 0 };
	int			 fd = peer_new(f);

	send_all(f, fd, zero, sizeof(zero));
	failed(f, fd, 400, "empty frame");
}

/* Malformed payloads: 400 "malformed frame: REASON", then close. */
static void
test_bad_msgpack(void **state)
{
	struct fixture	*f = *state;
	static const struct {
		const char	*payload;
		size_t		 len;
		const char	*msg;
	} cases[] = {
		/* {"id": <nothing> */
		{ P("\x81\xa2id"), "malformed frame: truncated" },
		/* [1] */
		{ P("\x91\x01"), "malformed frame: not a map" },
		/* {} then a stray byte */
		{ P("\x80\x01"), "malformed frame: trailing bytes" },
		/* {"a": fixext 1} */
		{ P("\x81\xa1" "a\xd4\x00\x00"),
		    "malformed frame: ext types are not allowed" },
		/* {1: 2} */
		{ P("\x81\x01\x02"),
		    "malformed frame: map key is not a string" },
		/* a map of 65,535 pairs in 3 bytes */
		{ P("\xde\xff\xff"), "malformed frame: too many elements" },
		/* the reserved byte as a value */
		{ P("\x81\xa1" "a\xc1"),
		    "malformed frame: reserved byte 0xc1" },
		/* nine maps deep */
		{ P("\x81\xa1" "a\x81\xa1" "a\x81\xa1" "a\x81\xa1" "a\x81\xa1"
		    "a\x81\xa1" "a\x81\xa1" "a\x81\xa1" "a\x81\xa1" "a\xc0"),
		    "malformed frame: too deep" },
		/* a map, but no op: {"id":1} */
		{ P("\x81\xa2id\x01"),
		    "malformed frame: id and op are required" },
		/* an op that is not a string: {"id":1,"op":1} */
		{ P("\x82\xa2id\x01\xa2op\x01"),
		    "malformed frame: id and op are required" },
		/* a negative id: {"id":-1,"op":"ping"} */
		{ P("\x82\xa2id\xff\xa2op\xa4ping"),
		    "malformed frame: id and op are required" },
	};
	struct msg	 m;
	size_t		 i;
	int		 fd;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fd = peer_new(f);
		raw_frame(&m, cases[i].payload, cases[i].len);
		send_msg(f, fd, &m);
		failed(f, fd, 400, cases[i].msg);
	}
}

/*
 * Frames before a bad one in the same write are answered; the bad one
 * closes the connection and what follows it is never looked at.
 */
static void
test_bad_frame_in_a_batch(void **state)
{
	struct fixture		*f = *state;
	static const unsigned char zero[4] = { 0, 0, 0, 0 };
	unsigned char		 buf[3 * MSG_MAX];
	struct msg		 m, want;
	size_t			 n = 0;
	int			 fd = peer_new(f);

	req(&m, 1, "ping");
	append(buf, sizeof(buf), &n, m.b, m.n);
	append(buf, sizeof(buf), &n, zero, sizeof(zero));
	req(&m, 2, "ping");
	append(buf, sizeof(buf), &n, m.b, m.n);
	send_all(f, fd, buf, n);
	want_pong(&want, 1);
	expect_frame(f, fd, &want);
	failed(f, fd, 400, "empty frame");
}

/* Send m on fd; the answer is exactly want. */
static void
exchange(struct fixture *f, int fd, const struct msg *m,
    const struct msg *want)
{
	send_msg(f, fd, m);
	expect_frame(f, fd, want);
}

/*
 * Request errors (as opposed to frame errors) answer the request's id and
 * keep the connection: an unknown op, a missing field, a field of the
 * wrong type, a certificate that does not exist.
 */
static void
test_request_errors_keep_open(void **state)
{
	struct fixture	*f = *state;
	struct msg	 m, want;
	int		 fd = peer_new(f);

	req(&m, 11, "nope");
	want_error(&want, 11, 400, "invalid request", "op", "unknown op");
	exchange(f, fd, &m, &want);

	req(&m, 12, "get");
	want_error(&want, 12, 400, "invalid request", "team", "is required");
	exchange(f, fd, &m, &want);

	/* {"id":13,"op":"get","team":1} */
	msg_begin(&m);
	mp_map(&m, 3);
	mp_str(&m, "id");
	mp_uint(&m, 13);
	mp_str(&m, "op");
	mp_str(&m, "get");
	mp_str(&m, "team");
	mp_uint(&m, 1);
	msg_end(&m);
	want_error(&want, 13, 400, "invalid request", "team",
	    "must be a string");
	exchange(f, fd, &m, &want);

	/* {"id":14,"op":"get","team":"acme","cert_id":42} */
	msg_begin(&m);
	mp_map(&m, 4);
	mp_str(&m, "id");
	mp_uint(&m, 14);
	mp_str(&m, "op");
	mp_str(&m, "get");
	mp_str(&m, "team");
	mp_str(&m, "acme");
	mp_str(&m, "cert_id");
	mp_uint(&m, 42);
	msg_end(&m);
	want_error(&want, 14, 404, "certificate not found", NULL, NULL);
	exchange(f, fd, &m, &want);

	kept(f, fd, 15);
}

/*
 * A frame cut short, then the peer's EOF: no answer, the connection is
 * closed and freed; the same with the peer closing outright.
 */
static void
test_truncated_then_close(void **state)
{
	struct fixture		*f = *state;
	static const unsigned char part[10] = {
		0x00, 0x00, 0x00, 0x64,	/* 100 bytes announced */
		0x82, 0xa2, 'i', 'd', 0x01, 0xa2,
	};
	int			 fd = peer_new(f), fd2;

	send_all(f, fd, part, sizeof(part));
	expect_nothing(f, fd);
	assert_int_equal(ctl_conns(f->ctl), 2);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	expect_eof(f, fd);
	wait_conns(f, 1);
	close(fd);

	fd2 = peer_new(f);
	send_all(f, fd2, part, 4);	/* a header alone */
	expect_nothing(f, fd2);
	close(fd2);
	wait_conns(f, 1);
	others_served(f);
}

/* Many peers at once, one misbehaving: the others are all answered. */
static void
test_others_unaffected(void **state)
{
	struct fixture		*f = *state;
	static const unsigned char zero[4] = { 0, 0, 0, 0 };
	struct msg		 m, want;
	int			 fds[8], bad, i;

	for (i = 0; i < 8; i++)
		fds[i] = peer_new(f);
	bad = peer_new(f);
	/* half a frame on every good peer, then the bad one's zero length */
	for (i = 0; i < 8; i++) {
		req(&m, (uint64_t)(100 + i), "ping");
		send_all(f, fds[i], m.b, 5);
	}
	send_all(f, bad, zero, sizeof(zero));
	want_error(&want, 0, 400, "empty frame", NULL, NULL);
	expect_frame(f, bad, &want);
	expect_eof(f, bad);
	close(bad);
	wait_conns(f, 9);
	for (i = 0; i < 8; i++) {
		req(&m, (uint64_t)(100 + i), "ping");
		send_all(f, fds[i], m.b + 5, m.n - 5);
		want_pong(&want, (uint64_t)(100 + i));
		expect_frame(f, fds[i], &want);
	}
	for (i = 0; i < 8; i++)
		close(fds[i]);
	wait_conns(f, 1);
	others_served(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_byte_by_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_several_in_one_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_at_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_frame_over_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_frame_limit_from_config,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_msgpack, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_frame_in_a_batch,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_errors_keep_open,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_then_close,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_others_unaffected, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
