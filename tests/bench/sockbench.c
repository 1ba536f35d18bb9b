/* SPDX-License-Identifier: MIT */
/*
 * sockbench: load generator for certd's Unix socket (doc/protocol.md).
 * Run on demand by tests/bench/socket.sh; not part of make check.
 *
 *	sockbench fanout SOCKET[,SOCKET...] N_SUBS N_CHANGES [TEAM CERT_ID]
 *	sockbench get SOCKET N_CONNS SECONDS TEAM CERT_ID
 *	sockbench get SOCKET N_CONNS SECONDS @LIST
 *	sockbench create SOCKET N_CONNS COUNT N_TEAMS CHAIN KEY
 *	sockbench update SOCKET N_CONNS COUNT N_TEAMS ROUNDS CHAIN KEY
 *	    CHAIN KEY [CHAIN KEY ...]
 *
 * fanout: N_SUBS connections each send watch {team} and wait for the
 * result.  One more connection then updates certificate CERT_ID N_CHANGES
 * times, one at a time, alternating certificate_type so that every put is a
 * real change.  For each put the time from the put's response (the change
 * is durable and acknowledged) to the moment the last subscriber received
 * the put event with that revision is recorded (negative when every
 * subscriber had the event before the writer had its response), and also
 * the time from sending the put.  The next put is sent once the previous one is answered
 * and delivered everywhere.  With several SOCKETs (the nodes of a fleet),
 * subscriber i watches on socket i mod their number and the writer puts on
 * the first.
 *
 * get: N_CONNS connections in a closed loop (one request in flight per
 * connection, no pipelining) send get {team, cert_id} for SECONDS after a
 * short warm-up; requests/s and the response payload size are reported,
 * and, when SOCKBENCH_SERVER_PID names the server process, the server's CPU
 * time per request (from /proc/PID/stat) during the measured window.
 * With @LIST, a file of "TEAM CERT_ID" lines, each get asks for a line
 * picked at random.
 *
 * create: COUNT puts of new certificates, N_CONNS at a time, the k-th into
 * team "tK mod N_TEAMS" with alias "cK", all with the PEM of files CHAIN
 * and KEY (tests/bench/scale.sh).
 *
 * update: the puts of create, then ROUNDS rounds in which every one of the
 * COUNT certificates is updated once (certificate and private_key, by the
 * id its create answered), N_CONNS puts in flight; a round starts when the
 * previous one is answered.  Version r (0 the create) of the k-th
 * certificate holds the r+k-th pair mod the number of CHAIN KEY pairs, so
 * every update is a new version with other bytes; an update whose answer
 * does not carry a new revision for the certificate is an error.  The
 * payload of the versions made (PEM of chain and key, alias, type) is
 * reported, in all and of the current versions (tests/bench/datadir.sh).
 *
 * One thread, epoll, non-blocking sockets, CLOCK_MONOTONIC.  Lines starting
 * with "RESULT " are key=value pairs for scripts.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "proto.h"

#define IN_CHUNK	(64 * 1024)
#define FRAME_MAX	(8 * 1024 * 1024)
#define SETUP_TIMEOUT	60.0	/* seconds to connect and subscribe */
#define CHANGE_TIMEOUT	10.0	/* seconds for one put to be delivered */
#define WARMUP		0.5	/* seconds of get before counting */

struct conn {
	int		 fd;
	int		 idx;		/* subscriber index, or -1 */
	unsigned char	*in;
	size_t		 in_len, in_cap;
	unsigned char	*out;
	size_t		 out_len, out_off;
	int		 out_armed;	/* EPOLLOUT requested */
	int		 ready;		/* watch answered */
	uint64_t	 next_id;
	uint64_t	 last_rev;	/* last event revision seen */
	double		 sent_at;	/* get: when the request left */
	unsigned long	 item;		/* update: the certificate in flight */
};

typedef int	(*frame_fn)(struct conn *, const msgpack_object *, size_t,
		    double);

static int		 epfd = -1;
static struct conn	*prio;		/* read before every epoll batch */
static const char	*sock_path;
static msgpack_sbuffer	 sb;

/* fanout state */
static uint64_t		 base_rev;	/* revision reported by the watches */
static size_t		 n_slots;	/* revisions tracked after base_rev */
static unsigned		*rev_count;	/* subscribers that got revision r */
static double		*rev_first;	/* when the first of them got it */
static double		*rev_last;	/* when the last of them got it */
static uint64_t		 put_rev;	/* revision of the answered put, or 0 */
static double		 put_acked;
static unsigned long	 n_order_errors, n_stray, n_errors;
static unsigned		 n_ready;

/* get state */
static int		 counting;
static unsigned long	 n_gets, n_get_errors;
static size_t		 get_payload, get_frame;
static double		 lat_sum;

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("sockbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_sec(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die("out of memory");
	return p;
}

static unsigned long
parse_ulong(const char *s, const char *what)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0')
		die("bad %s: %s", what, s);
	return v;
}

static void
raise_nofile(size_t need)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		rl.rlim_max = need;	/* works as root */
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("cannot raise RLIMIT_NOFILE to %zu: %s", need,
		    strerror(errno));
}

/* --- connections --------------------------------------------------------- */

static void
conn_arm(struct conn *c, int want_out)
{
	struct epoll_event	ev;

	if (c->out_armed == want_out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->out_armed = want_out;
}

static void
conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_arm(c, 1);
			return;
		}
		if (n <= 0)
			die("send: %s", n < 0 ? strerror(errno) : "closed");
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	conn_arm(c, 0);
}

/* Queue the frame in sb and try to send it. */
static void
conn_send(struct conn *c)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	c->out = xrealloc(c->out, c->out_len + sb.size);
	memcpy(c->out + c->out_len, sb.data, sb.size);
	c->out_len += sb.size;
	conn_flush(c);
}

/*
 * SOCKET may be a comma-separated list (certd nodes of a fleet):
 * connection idx uses path idx mod their number, idx -1 the first.
 */
static const char *
sock_of(int idx)
{
	static char	 buf[4096];
	const char	*p = sock_path, *comma;
	size_t		 n = 1, k, len;

	for (comma = p; (comma = strchr(comma, ',')) != NULL; comma++)
		n++;
	if (n == 1)
		return sock_path;
	for (k = idx < 0 ? 0 : (size_t)idx % n; k > 0; k--)
		p = strchr(p, ',') + 1;
	len = (comma = strchr(p, ',')) != NULL ? (size_t)(comma - p) :
	    strlen(p);
	if (len >= sizeof(buf))
		die("socket path too long");
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

static struct conn *
conn_open(int idx)
{
	struct sockaddr_un	 sun;
	struct epoll_event	 ev;
	struct conn		*c;
	int			 fd, fl;

	const char		*path = sock_of(idx);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		die("socket path too long: %s", path);
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s", strerror(errno));
	/* Blocking connect: waits while certd's accept backlog is full. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		die("connect %s (connection %d): %s", path, idx,
		    strerror(errno));
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		die("out of memory");
	c->fd = fd;
	c->idx = idx;
	c->next_id = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	return c;
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/*
 * Read what is there and hand every complete frame to fn.  Each read batch
 * is stamped once, right after the read.
 */
static void
conn_read(struct conn *c, frame_fn fn)
{
	for (;;) {
		size_t	off = 0, len;
		ssize_t	n;
		double	t;
		int	rc;

		if (c->in_cap - c->in_len < IN_CHUNK) {
			c->in_cap = c->in_len + 2 * IN_CHUNK;
			c->in = xrealloc(c->in, c->in_cap);
		}
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0)
			die("read: %s", strerror(errno));
		if (n == 0)
			die("certd closed connection %d", c->idx);
		t = now();
		c->in_len += (size_t)n;
		while ((rc = proto_frame_peek(c->in + off, c->in_len - off,
		    FRAME_MAX, &len)) == 1) {
			msgpack_unpacked	 msg;
			const char		*reason;

			msgpack_unpacked_init(&msg);
			if (proto_decode((const char *)c->in + off +
			    CERTD_FRAME_HEADER_LEN, len, &msg, &reason) != 0)
				die("bad frame from certd: %s", reason);
			if (fn(c, &msg.data, len, t) != 0)
				n_errors++;
			msgpack_unpacked_destroy(&msg);
			off += CERTD_FRAME_HEADER_LEN + len;
		}
		if (rc < 0)
			die("bad frame header from certd");
		if (off > 0) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
		}
	}
}

/* One epoll round with a timeout in seconds. */
static void
poll_once(double timeout, frame_fn fn)
{
	struct epoll_event	evs[256];
	int			n, i, ms;

	ms = timeout <= 0 ? 0 : (int)(timeout * 1000.0) + 1;
	if ((n = epoll_wait(epfd, evs, 256, ms)) < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	/*
	 * The writer's response is stamped before the subscribers of the same
	 * batch, so client-side processing of events cannot delay it.
	 */
	if (prio != NULL && n > 0)
		conn_read(prio, fn);
	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (evs[i].events & EPOLLOUT)
			conn_flush(c);
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_read(c, fn);
	}
}

/* Print an error response, return -1; 0 for ok. */
static int
check_ok(const msgpack_object *m, const char *what)
{
	const msgpack_object	*err, *msg;
	int			 ok = 0;

	if (proto_get_bool(m, "ok", &ok) == 1 && ok)
		return 0;
	err = proto_get(m, "error");
	msg = err != NULL && err->type == MSGPACK_OBJECT_MAP ?
	    proto_get(err, "msg") : NULL;
	if (msg != NULL && msg->type == MSGPACK_OBJECT_STR)
		fprintf(stderr, "sockbench: %s failed: %.*s\n", what,
		    (int)msg->via.str.size, msg->via.str.ptr);
	else
		fprintf(stderr, "sockbench: %s failed\n", what);
	return -1;
}

/* --- statistics ---------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
pct(const double *v, size_t n, double p)
{
	size_t	rank = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void
report(const char *key, const char *what, double *v, size_t n)
{
	double	sum = 0;
	size_t	i;

	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("%-34s p50 %8.3f  p99 %8.3f  max %8.3f  mean %8.3f ms\n",
	    what, pct(v, n, 50), pct(v, n, 99), v[n - 1], sum / (double)n);
	printf("RESULT %s_p50_ms=%.3f %s_p99_ms=%.3f %s_max_ms=%.3f "
	    "%s_mean_ms=%.3f\n", key, pct(v, n, 50), key, pct(v, n, 99),
	    key, v[n - 1], key, sum / (double)n);
}

/* --- fanout -------------------------------------------------------------- */

static int
fanout_frame(struct conn *c, const msgpack_object *m, size_t len, double t)
{
	const char	*ev;
	size_t		 evlen;
	uint64_t	 rev = 0, id;

	(void)len;
	if (proto_get_str(m, "event", &ev, &evlen) == 1) {
		if (c->idx < 0) {
			n_stray++;
			return 0;
		}
		if (evlen != 3 || memcmp(ev, "put", 3) != 0 ||
		    proto_get_uint(m, "revision", &rev) != 1) {
			fprintf(stderr, "sockbench: unexpected %.*s event\n",
			    (int)evlen, ev);
			return -1;
		}
		if (rev <= c->last_rev)
			n_order_errors++;
		c->last_rev = rev;
		if (rev <= base_rev || rev - base_rev > n_slots) {
			n_stray++;
			return 0;
		}
		if (rev_count[rev - base_rev - 1]++ == 0)
			rev_first[rev - base_rev - 1] = t;
		rev_last[rev - base_rev - 1] = t;
		return 0;
	}
	if (proto_get_uint(m, "id", &id) != 1)
		return -1;
	if (c->idx >= 0) {		/* a subscriber's watch result */
		const msgpack_object	*res;

		if (check_ok(m, "watch") != 0)
			die("watch refused");
		res = proto_get(m, "result");
		if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
		    proto_get_uint(res, "revision", &rev) != 1)
			die("watch result without a revision");
		if (!c->ready) {
			c->ready = 1;
			c->last_rev = rev;
			if (rev > base_rev)
				base_rev = rev;
			n_ready++;
		}
		return 0;
	}
	/* the writer's put response */
	if (check_ok(m, "put") != 0)
		die("put refused");
	{
		const msgpack_object	*res = proto_get(m, "result");

		if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
		    proto_get_uint(res, "revision", &rev) != 1)
			die("put result without a revision");
	}
	put_rev = rev;
	put_acked = t;
	return 0;
}

static int
run_fanout(int argc, char *argv[])
{
	struct conn	**subs, *w;
	const char	 *team = "bench";
	unsigned long	  n_subs, n_changes, cert_id = 1, i, done = 0;
	double		 *from_ack, *from_sent, *put_rtt, *spread, t0;
	struct rusage	  ru0, ru1;
	unsigned long	  before_ack = 0;

	if (argc != 3 && argc != 5)
		die("usage: sockbench fanout SOCKET N_SUBS N_CHANGES "
		    "[TEAM CERT_ID]");
	sock_path = argv[0];
	n_subs = parse_ulong(argv[1], "N_SUBS");
	n_changes = parse_ulong(argv[2], "N_CHANGES");
	if (argc == 5) {
		team = argv[3];
		cert_id = parse_ulong(argv[4], "CERT_ID");
	}
	if (n_subs < 1 || n_subs > 100000 || n_changes < 1 ||
	    n_changes > 1000000)
		die("N_SUBS must be 1..100000, N_CHANGES 1..1000000");
	raise_nofile(n_subs + 64);

	if ((subs = calloc(n_subs, sizeof(*subs))) == NULL ||
	    (from_ack = calloc(n_changes, sizeof(double))) == NULL ||
	    (from_sent = calloc(n_changes, sizeof(double))) == NULL ||
	    (put_rtt = calloc(n_changes, sizeof(double))) == NULL ||
	    (spread = calloc(n_changes, sizeof(double))) == NULL)
		die("out of memory");

	/* Subscribe, keeping at most 64 watches unanswered. */
	t0 = now();
	for (i = 0; i < n_subs; i++) {
		msgpack_packer	pk;

		while (i - n_ready >= 64) {
			if (now() - t0 > SETUP_TIMEOUT)
				die("subscribing timed out (%u of %lu)",
				    n_ready, n_subs);
			poll_once(1.0, fanout_frame);
		}
		subs[i] = conn_open((int)i);
		proto_begin(&sb, &pk);
		msgpack_pack_map(&pk, 3);
		proto_kv_uint(&pk, "id", subs[i]->next_id++);
		proto_kv_str(&pk, "op", "watch");
		proto_kv_str(&pk, "team", team);
		if (proto_end(&sb, FRAME_MAX) != 0)
			die("cannot build a frame");
		conn_send(subs[i]);
	}
	while (n_ready < n_subs) {
		if (now() - t0 > SETUP_TIMEOUT)
			die("subscribing timed out (%u of %lu)", n_ready,
			    n_subs);
		poll_once(1.0, fanout_frame);
	}
	printf("fanout: %lu subscribers on team %s ready in %.3f s "
	    "(revision %" PRIu64 ")\n", n_subs, team, now() - t0, base_rev);

	/* Revisions base_rev+1 .. base_rev+n_slots are tracked. */
	n_slots = n_changes + 1024;
	if ((rev_count = calloc(n_slots, sizeof(*rev_count))) == NULL ||
	    (rev_first = calloc(n_slots, sizeof(*rev_first))) == NULL ||
	    (rev_last = calloc(n_slots, sizeof(*rev_last))) == NULL)
		die("out of memory");

	w = conn_open(-1);
	prio = w;
	getrusage(RUSAGE_SELF, &ru0);
	for (i = 0; i < n_changes; i++) {
		msgpack_packer	pk;
		double		t_sent, deadline;
		size_t		slot = 0;

		put_rev = 0;
		proto_begin(&sb, &pk);
		msgpack_pack_map(&pk, 5);
		proto_kv_uint(&pk, "id", w->next_id++);
		proto_kv_str(&pk, "op", "put");
		proto_kv_str(&pk, "team", team);
		proto_kv_uint(&pk, "cert_id", cert_id);
		/* The certificate is created as "server": start with client. */
		proto_kv_str(&pk, "certificate_type",
		    i % 2 == 0 ? "client" : "server");
		if (proto_end(&sb, FRAME_MAX) != 0)
			die("cannot build a frame");
		t_sent = now();
		conn_send(w);
		deadline = t_sent + CHANGE_TIMEOUT;
		for (;;) {
			if (put_rev != 0) {
				if (put_rev <= base_rev ||
				    put_rev - base_rev > n_slots)
					die("put answered revision %" PRIu64
					    ", outside the tracked range",
					    put_rev);
				slot = put_rev - base_rev - 1;
				if (rev_count[slot] >= n_subs)
					break;
			}
			if (now() > deadline)
				die("change %lu: not delivered within %.0f s "
				    "(answered: %s, delivered to %u of %lu)",
				    i, CHANGE_TIMEOUT, put_rev ? "yes" : "no",
				    put_rev && put_rev > base_rev &&
				    put_rev - base_rev <= n_slots ?
				    rev_count[put_rev - base_rev - 1] : 0,
				    n_subs);
			poll_once(deadline - now(), fanout_frame);
		}
		/* Negative: delivered everywhere before the response came. */
		from_ack[i] = (rev_last[slot] - put_acked) * 1e3;
		before_ack += from_ack[i] < 0;
		from_sent[i] = (rev_last[slot] - t_sent) * 1e3;
		put_rtt[i] = (put_acked - t_sent) * 1e3;
		spread[i] = (rev_last[slot] - rev_first[slot]) * 1e3;
		done++;
	}
	getrusage(RUSAGE_SELF, &ru1);
	/* Let late duplicates or strays show up. */
	t0 = now();
	while (now() - t0 < 0.2)
		poll_once(0.2 - (now() - t0), fanout_frame);

	printf("fanout: %lu changes, each delivered to all %lu subscribers\n",
	    done, n_subs);
	report("fanout_ack", "response -> last delivery (*)", from_ack, done);
	report("fanout_sent", "put sent -> last delivery", from_sent, done);
	report("put_rtt", "put sent -> response", put_rtt, done);
	report("fanout_spread", "first -> last delivery", spread, done);
	printf("fanout: this client used %.3f ms CPU per change (reading and "
	    "decoding %lu events)\n", (tv_sec(&ru1.ru_utime) -
	    tv_sec(&ru0.ru_utime) + tv_sec(&ru1.ru_stime) -
	    tv_sec(&ru0.ru_stime)) * 1e3 / (double)done, n_subs);
	printf("RESULT fanout_client_cpu_ms=%.3f\n", (tv_sec(&ru1.ru_utime) -
	    tv_sec(&ru0.ru_utime) + tv_sec(&ru1.ru_stime) -
	    tv_sec(&ru0.ru_stime)) * 1e3 / (double)done);
	printf("(*) negative: the last subscriber had the event before the "
	    "writer had its response\n");
	printf("fanout: complete before the response in %lu of %lu changes; "
	    "out-of-order %lu, stray %lu, errors %lu\n", before_ack, done,
	    n_order_errors, n_stray, n_errors);
	printf("RESULT fanout_subs=%lu fanout_changes=%lu fanout_before_ack=%lu "
	    "fanout_order_errors=%lu fanout_errors=%lu\n", n_subs, done,
	    before_ack, n_order_errors, n_errors);

	prio = NULL;
	conn_close(w);
	for (i = 0; i < n_subs; i++)
		conn_close(subs[i]);
	free(subs);
	free(from_ack);
	free(from_sent);
	free(put_rtt);
	free(spread);
	free(rev_count);
	free(rev_first);
	free(rev_last);
	return n_order_errors || n_errors ? 1 : 0;
}

/* --- get ----------------------------------------------------------------- */

/*
 * CPU seconds (user + system) used so far by process pid, from
 * /proc/PID/stat; -1 when unknown.
 */
static double
proc_cpu(long pid)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 ut, st;
	FILE			*f;
	size_t			 n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name: state is field 3, utime 14. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* n connections to the socket, the file limit raised for them. */
static struct conn **
conns_open(unsigned long n)
{
	struct conn	**cs;
	unsigned long	  i;

	raise_nofile(n + 64);
	if ((cs = calloc(n, sizeof(*cs))) == NULL)
		die("out of memory");
	for (i = 0; i < n; i++)
		cs[i] = conn_open((int)i);
	return cs;
}

static void
conns_close(struct conn **cs, unsigned long n)
{
	unsigned long	i;

	for (i = 0; i < n; i++)
		conn_close(cs[i]);
	free(cs);
}

static const char	*get_team;
static unsigned long	 get_cert;
static char		**list_team;	/* @LIST: the lines' teams, */
static unsigned long	*list_cert;	/* and their ids */
static size_t		 list_n;
static uint64_t		 rng = 0x9e3779b97f4a7c15ULL;

/* xorshift64: a line of the list, at random. */
static size_t
list_pick(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (size_t)(rng % list_n);
}

static void
list_load(const char *path)
{
	FILE		*f;
	char		 team[256];
	unsigned long	 id;
	size_t		 cap = 0;

	if ((f = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	while (fscanf(f, "%255s %lu", team, &id) == 2) {
		if (list_n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((list_team = realloc(list_team, cap *
			    sizeof(*list_team))) == NULL ||
			    (list_cert = realloc(list_cert, cap *
			    sizeof(*list_cert))) == NULL)
				die("out of memory");
		}
		if ((list_team[list_n] = strdup(team)) == NULL)
			die("out of memory");
		list_cert[list_n++] = id;
	}
	fclose(f);
	if (list_n == 0)
		die("%s: no TEAM CERT_ID lines", path);
}

static void
get_send(struct conn *c)
{
	msgpack_packer	pk;
	size_t		k;

	proto_begin(&sb, &pk);
	msgpack_pack_map(&pk, 4);
	proto_kv_uint(&pk, "id", c->next_id++);
	proto_kv_str(&pk, "op", "get");
	if (list_n > 0) {
		k = list_pick();
		proto_kv_str(&pk, "team", list_team[k]);
		proto_kv_uint(&pk, "cert_id", list_cert[k]);
	} else {
		proto_kv_str(&pk, "team", get_team);
		proto_kv_uint(&pk, "cert_id", get_cert);
	}
	if (proto_end(&sb, FRAME_MAX) != 0)
		die("cannot build a frame");
	c->sent_at = now();
	conn_send(c);
}

static int
get_frame_cb(struct conn *c, const msgpack_object *m, size_t len, double t)
{
	uint64_t	id;

	if (proto_get_uint(m, "id", &id) != 1 || id != c->next_id - 1)
		die("unexpected frame on a get connection");
	if (check_ok(m, "get") != 0) {
		n_get_errors++;
		return -1;
	}
	if (get_payload == 0) {
		get_payload = len;
		get_frame = len + CERTD_FRAME_HEADER_LEN;
	}
	if (counting) {
		n_gets++;
		lat_sum += t - c->sent_at;
	}
	if (counting >= 0)
		get_send(c);
	return 0;
}

static int
run_get(int argc, char *argv[])
{
	struct conn	**cs;
	unsigned long	  n_conns, secs, i;
	double		  t0, t_end, elapsed, cpu0 = -1, cpu1 = -1, srv_us = 0;
	const char	 *pid_env = getenv("SOCKBENCH_SERVER_PID");
	long		  srv_pid = pid_env != NULL ? atol(pid_env) : 0;

	if (!(argc == 5 || (argc == 4 && argv[3][0] == '@')))
		die("usage: sockbench get SOCKET N_CONNS SECONDS "
		    "TEAM CERT_ID | @LIST");
	sock_path = argv[0];
	n_conns = parse_ulong(argv[1], "N_CONNS");
	secs = parse_ulong(argv[2], "SECONDS");
	if (argc == 4)
		list_load(argv[3] + 1);
	else {
		get_team = argv[3];
		get_cert = parse_ulong(argv[4], "CERT_ID");
	}
	if (n_conns < 1 || n_conns > 10000 || secs < 1 || secs > 3600)
		die("N_CONNS must be 1..10000, SECONDS 1..3600");
	cs = conns_open(n_conns);

	t0 = now();
	for (i = 0; i < n_conns; i++)
		get_send(cs[i]);
	while (now() - t0 < WARMUP)
		poll_once(WARMUP - (now() - t0), get_frame_cb);
	counting = 1;
	if (srv_pid > 0)
		cpu0 = proc_cpu(srv_pid);
	t0 = now();
	t_end = t0 + (double)secs;
	while (now() < t_end)
		poll_once(t_end - now(), get_frame_cb);
	elapsed = now() - t0;
	if (srv_pid > 0)
		cpu1 = proc_cpu(srv_pid);
	/* Drain the requests in flight without sending more. */
	counting = -1;
	t0 = now();
	while (now() - t0 < 0.2)
		poll_once(0.2 - (now() - t0), get_frame_cb);

	printf("get: %lu connections, %lu requests in %.3f s: %.0f requests/s, "
	    "mean latency %.3f ms, %lu errors\n", n_conns, n_gets, elapsed,
	    (double)n_gets / elapsed, n_gets ? lat_sum / (double)n_gets * 1e3 :
	    0.0, n_get_errors);
	printf("get: response payload %zu bytes (frame %zu bytes)\n",
	    get_payload, get_frame);
	if (cpu0 >= 0 && cpu1 >= 0 && n_gets > 0) {
		srv_us = (cpu1 - cpu0) * 1e6 / (double)n_gets;
		printf("get: server pid %ld used %.2f s CPU in the window: "
		    "%.2f us per request\n", srv_pid, cpu1 - cpu0, srv_us);
		printf("RESULT get_server_cpu_s=%.2f get_server_cpu_us=%.2f\n",
		    cpu1 - cpu0, srv_us);
	}
	printf("RESULT get_conns=%lu get_requests=%lu get_rps=%.0f "
	    "get_mean_ms=%.3f get_payload=%zu get_frame=%zu get_errors=%lu\n",
	    n_conns, n_gets, (double)n_gets / elapsed,
	    n_gets ? lat_sum / (double)n_gets * 1e3 : 0.0, get_payload,
	    get_frame, n_get_errors);
	conns_close(cs, n_conns);
	return n_get_errors || n_gets == 0 ? 1 : 0;
}

/* --- create -------------------------------------------------------------- */

static unsigned long	 create_next, create_count, create_teams, n_created;
static char		*create_chain, *create_key;

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The next put of a new certificate on c, if any is left to send. */
static void
create_send(struct conn *c)
{
	msgpack_packer	pk;
	char		team[32], alias[32];

	if (create_next >= create_count)
		return;
	snprintf(team, sizeof(team), "t%lu", create_next % create_teams);
	snprintf(alias, sizeof(alias), "c%lu", create_next);
	create_next++;
	proto_begin(&sb, &pk);
	msgpack_pack_map(&pk, 7);
	proto_kv_uint(&pk, "id", c->next_id++);
	proto_kv_str(&pk, "op", "put");
	proto_kv_str(&pk, "team", team);
	proto_kv_str(&pk, "alias", alias);
	proto_kv_str(&pk, "certificate", create_chain);
	proto_kv_str(&pk, "private_key", create_key);
	proto_kv_str(&pk, "certificate_type", "server");
	if (proto_end(&sb, FRAME_MAX) != 0)
		die("cannot build a frame");
	conn_send(c);
}

static int
create_frame_cb(struct conn *c, const msgpack_object *m, size_t len, double t)
{
	(void)len;
	(void)t;
	if (check_ok(m, "put") != 0)
		die("a put was refused");
	n_created++;
	create_send(c);
	return 0;
}

static int
run_create(int argc, char *argv[])
{
	struct conn	**cs;
	unsigned long	  n_conns, i;
	double		  t0, elapsed;

	if (argc != 6)
		die("usage: sockbench create SOCKET N_CONNS COUNT N_TEAMS "
		    "CHAIN KEY");
	sock_path = argv[0];
	n_conns = parse_ulong(argv[1], "N_CONNS");
	create_count = parse_ulong(argv[2], "COUNT");
	create_teams = parse_ulong(argv[3], "N_TEAMS");
	create_chain = slurp(argv[4]);
	create_key = slurp(argv[5]);
	if (n_conns < 1 || n_conns > 10000 || create_teams < 1)
		die("N_CONNS must be 1..10000, N_TEAMS at least 1");
	cs = conns_open(n_conns);
	t0 = now();
	for (i = 0; i < n_conns; i++)
		create_send(cs[i]);
	while (n_created < create_count)
		poll_once(CHANGE_TIMEOUT, create_frame_cb);
	elapsed = now() - t0;
	printf("create: %lu certificates in %lu teams in %.1f s: %.0f/s\n",
	    n_created, create_teams, elapsed, (double)n_created / elapsed);
	printf("RESULT create_count=%lu create_seconds=%.1f create_rps=%.0f\n",
	    n_created, elapsed, (double)n_created / elapsed);
	conns_close(cs, n_conns);
	free(create_chain);
	free(create_key);
	return 0;
}

/* --- update -------------------------------------------------------------- */

static unsigned long	  upd_round, upd_pairs, upd_done;
static char		**upd_chain, **upd_key;
static uint64_t		 *upd_ids;	/* the certificates' ids, by k */
static uint64_t		 *upd_revs;	/* and their last revisions */
static unsigned long long upd_payload;	/* bytes of every version sent */

#define UPDATE_TYPE	"server"

/* The pair of version upd_round of the k-th certificate. */
static unsigned long
update_pair(unsigned long k)
{
	return (k + upd_round) % upd_pairs;
}

/* The payload of a version of the k-th certificate holding pair j. */
static unsigned long long
update_version_bytes(unsigned long k, unsigned long j)
{
	char	alias[32];

	snprintf(alias, sizeof(alias), "c%lu", k);
	return strlen(upd_chain[j]) + strlen(upd_key[j]) + strlen(alias) +
	    strlen(UPDATE_TYPE);
}

/*
 * The next put of this round on c, if any is left to send: in round 0 the
 * create of certificate k (as create_send does), then its update by id.
 * The stored version keeps alias and type, so they count in its payload.
 */
static void
update_send(struct conn *c)
{
	msgpack_packer	pk;
	char		team[32], alias[32];
	unsigned long	k, j;

	if (create_next >= create_count)
		return;
	k = c->item = create_next++;
	j = update_pair(k);
	snprintf(team, sizeof(team), "t%lu", k % create_teams);
	snprintf(alias, sizeof(alias), "c%lu", k);
	proto_begin(&sb, &pk);
	msgpack_pack_map(&pk, upd_round == 0 ? 7 : 6);
	proto_kv_uint(&pk, "id", c->next_id++);
	proto_kv_str(&pk, "op", "put");
	proto_kv_str(&pk, "team", team);
	if (upd_round == 0) {
		proto_kv_str(&pk, "alias", alias);
		proto_kv_str(&pk, "certificate_type", UPDATE_TYPE);
	} else
		proto_kv_uint(&pk, "cert_id", upd_ids[k]);
	proto_kv_str(&pk, "certificate", upd_chain[j]);
	proto_kv_str(&pk, "private_key", upd_key[j]);
	if (proto_end(&sb, FRAME_MAX) != 0)
		die("cannot build a frame");
	upd_payload += update_version_bytes(k, j);
	conn_send(c);
}

static int
update_frame_cb(struct conn *c, const msgpack_object *m, size_t len, double t)
{
	const msgpack_object	*res;
	uint64_t		 id, rev;
	unsigned long		 k = c->item;

	(void)len;
	(void)t;
	if (check_ok(m, "put") != 0)
		die("a put was refused");
	res = proto_get(m, "result");
	if (res == NULL || res->type != MSGPACK_OBJECT_MAP ||
	    proto_get_uint(res, "id", &id) != 1 ||
	    proto_get_uint(res, "revision", &rev) != 1)
		die("put result without an id and a revision");
	if (upd_round == 0)
		upd_ids[k] = id;
	else if (id != upd_ids[k])
		die("the update of certificate %" PRIu64 " was answered for "
		    "%" PRIu64, upd_ids[k], id);
	else if (rev <= upd_revs[k])
		die("round %lu: the update of certificate %" PRIu64 " made no "
		    "new version (revision %" PRIu64 ")", upd_round, id, rev);
	upd_revs[k] = rev;
	upd_done++;
	update_send(c);
	return 0;
}

static int
run_update(int argc, char *argv[])
{
	struct conn		**cs;
	unsigned long		  n_conns, rounds, i, k, before;
	unsigned long long	  live = 0;
	double			  t0, t_last, t_create = 0, t_update = 0;

	if (argc < 9 || (argc - 5) % 2 != 0)
		die("usage: sockbench update SOCKET N_CONNS COUNT N_TEAMS "
		    "ROUNDS CHAIN KEY CHAIN KEY [CHAIN KEY ...]");
	sock_path = argv[0];
	n_conns = parse_ulong(argv[1], "N_CONNS");
	create_count = parse_ulong(argv[2], "COUNT");
	create_teams = parse_ulong(argv[3], "N_TEAMS");
	rounds = parse_ulong(argv[4], "ROUNDS");
	if (n_conns < 1 || n_conns > 10000 || create_count < 1 ||
	    create_teams < 1 || rounds > 100000)
		die("N_CONNS must be 1..10000, COUNT and N_TEAMS at least 1, "
		    "ROUNDS at most 100000");
	upd_pairs = (unsigned long)(argc - 5) / 2;
	if ((upd_chain = calloc(upd_pairs, sizeof(*upd_chain))) == NULL ||
	    (upd_key = calloc(upd_pairs, sizeof(*upd_key))) == NULL ||
	    (upd_ids = calloc(create_count, sizeof(*upd_ids))) == NULL ||
	    (upd_revs = calloc(create_count, sizeof(*upd_revs))) == NULL)
		die("out of memory");
	for (i = 0; i < upd_pairs; i++) {
		upd_chain[i] = slurp(argv[5 + 2 * i]);
		upd_key[i] = slurp(argv[6 + 2 * i]);
	}
	cs = conns_open(n_conns);
	for (upd_round = 0; upd_round <= rounds; upd_round++) {
		create_next = upd_done = 0;
		t0 = t_last = now();
		for (i = 0; i < n_conns; i++)
			update_send(cs[i]);
		while (upd_done < create_count) {
			before = upd_done;
			poll_once(CHANGE_TIMEOUT, update_frame_cb);
			if (upd_done != before)
				t_last = now();
			else if (now() - t_last > CHANGE_TIMEOUT)
				die("round %lu: no answer for %.0f s (%lu of "
				    "%lu answered)", upd_round, CHANGE_TIMEOUT,
				    upd_done, create_count);
		}
		if (upd_round == 0)
			t_create = now() - t0;
		else
			t_update += now() - t0;
	}
	upd_round = rounds;
	for (k = 0; k < create_count; k++)
		live += update_version_bytes(k, update_pair(k));
	printf("update: %lu certificates in %lu teams created in %.1f s "
	    "(%.0f/s), then %lu rounds of updates in %.1f s (%.0f/s), %lu "
	    "chains and keys in turn\n", create_count, create_teams, t_create,
	    (double)create_count / t_create, rounds, t_update, rounds ?
	    (double)(create_count * rounds) / t_update : 0.0, upd_pairs);
	printf("update: payload of the %lu versions made %llu bytes, of the "
	    "current ones %llu, of the older ones %llu\n",
	    create_count * (rounds + 1), upd_payload, live, upd_payload - live);
	printf("RESULT update_count=%lu update_teams=%lu update_rounds=%lu "
	    "update_pairs=%lu create_rps=%.0f update_rps=%.0f "
	    "update_payload=%llu update_live=%llu update_history=%llu "
	    "update_sample_team=t0 update_sample_id=%" PRIu64 "\n",
	    create_count, create_teams, rounds, upd_pairs,
	    (double)create_count / t_create, rounds ?
	    (double)(create_count * rounds) / t_update : 0.0, upd_payload,
	    live, upd_payload - live, upd_ids[0]);
	conns_close(cs, n_conns);
	for (i = 0; i < upd_pairs; i++) {
		free(upd_chain[i]);
		free(upd_key[i]);
	}
	free(upd_chain);
	free(upd_key);
	free(upd_ids);
	free(upd_revs);
	return 0;
}

int
main(int argc, char *argv[])
{
	int	rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		die("usage: sockbench fanout|get|create|update SOCKET ...");
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	msgpack_sbuffer_init(&sb);
	if (strcmp(argv[1], "fanout") == 0)
		rv = run_fanout(argc - 2, argv + 2);
	else if (strcmp(argv[1], "get") == 0)
		rv = run_get(argc - 2, argv + 2);
	else if (strcmp(argv[1], "create") == 0)
		rv = run_create(argc - 2, argv + 2);
	else if (strcmp(argv[1], "update") == 0)
		rv = run_update(argc - 2, argv + 2);
	else
		die("unknown mode %s (fanout, get, create or update)", argv[1]);
	msgpack_sbuffer_destroy(&sb);
	close(epfd);
	return rv;
}
