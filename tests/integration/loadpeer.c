/* SPDX-License-Identifier: MIT */
/*
 * loadpeer: many connections to certd from one process, for the load tests.
 *
 *	loadpeer [-n CONNS] [-p PREFIX] [-d DRIP] [-i MS] [-h SECS] [-t MS]
 *	    [-x] [-f] TARGET
 *
 * TARGET is tcp:HOST:PORT or unix:PATH.  Opens CONNS connections (default
 * 1), sends PREFIX on each right after connecting, then every MS
 * milliseconds (default 1000) sends the next byte of DRIP on each
 * connection that is still open (cycling through DRIP, so a drip never
 * finishes).  PREFIX and DRIP take C escapes (\r \n \t \\ \xHH).  Nothing
 * is sent when neither is given: idle connections.  Whatever certd sends
 * is read and counted; a connection certd closes is closed.  Each connect
 * may take -t MS (default 5000); connects not made within 15 s in all
 * count as failed.  With -f (flood) each connection sends PREFIX again and
 * again whenever it can and never reads (its receive buffer made small),
 * as a client that pipelines requests and takes no answers.
 *
 * Prints "ready connected=C failed=F" once every connection was tried,
 * then, when SECS seconds (default 60) passed, every connection was closed
 * by certd (with -x), or on SIGTERM/SIGINT, one summary line:
 *
 *	done connected=C failed=F closed=K open=O rx=BYTES sent=BYTES
 *	    first_close_ms=A last_close_ms=B elapsed_ms=E
 *
 * closed counts the connections certd ended (EOF or reset); first_close_ms
 * and last_close_ms are the shortest and longest life of those, from the
 * moment the connection was made (-1 when none closed).  Exit status 0,
 * 2 for a usage error.  One poll loop, no threads, no children.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_ALL_MS	15000	/* for all the connects together */

struct conn {
	int	fd;		/* -1 once closed */
	long	opened_ms;
	size_t	drip_pos;
};

static volatile sig_atomic_t	stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Decode C escapes of s into a new buffer; its length in *len. */
static unsigned char *
unescape(const char *s, size_t *len)
{
	unsigned char	*out = malloc(strlen(s) + 1);
	size_t		 n = 0;
	unsigned	 v;

	if (out == NULL)
		return NULL;
	while (*s != '\0') {
		if (*s != '\\' || s[1] == '\0') {
			out[n++] = (unsigned char)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r': out[n++] = '\r'; s++; break;
		case 'n': out[n++] = '\n'; s++; break;
		case 't': out[n++] = '\t'; s++; break;
		case '0': out[n++] = '\0'; s++; break;
		case 'x':
			if (sscanf(s + 1, "%2x", &v) != 1) {
				free(out);
				return NULL;
			}
			out[n++] = (unsigned char)v;
			s += 3;
			break;
		default:
			out[n++] = (unsigned char)*s++;
			break;
		}
	}
	*len = n;
	return out;
}

/* A blocking connect bounded by ms, then non-blocking.  -1 on failure. */
static int
open_conn(const struct sockaddr *sa, socklen_t salen, long ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };
	int		fd;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, sa, salen) != 0) {
		if (errno == EINTR && !stop)
			continue;
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadpeer [-n CONNS] [-p PREFIX] [-d DRIP] "
	    "[-i MS] [-h SECS] [-t MS] [-x] [-f] tcp:HOST:PORT|unix:PATH\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	socklen_t		 salen;
	struct sigaction	 sa;
	struct rlimit		 rl;
	struct conn		*c;
	struct pollfd		*pfd;
	unsigned char		*prefix = NULL, *drip = NULL, buf[4096];
	size_t			 prefix_len = 0, drip_len = 0, *idx;
	long			 start, deadline, next_drip, interval = 1000;
	long			 first_close = -1, last_close = -1, hold = 60;
	long			 rx = 0, sent = 0, conn_ms = 5000, give_up;
	int			 n = 1, ch, i, connected = 0, failed = 0;
	int			 closed = 0, open_n, exit_all = 0, flood = 0;
	char			*target, *colon;

	while ((ch = getopt(argc, argv, "n:p:d:i:h:t:xf")) != -1) {
		switch (ch) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'p':
			if ((prefix = unescape(optarg, &prefix_len)) == NULL)
				usage();
			break;
		case 'd':
			if ((drip = unescape(optarg, &drip_len)) == NULL)
				usage();
			break;
		case 'i':
			interval = atol(optarg);
			break;
		case 'h':
			hold = atol(optarg);
			break;
		case 't':
			conn_ms = atol(optarg);
			break;
		case 'x':
			exit_all = 1;
			break;
		case 'f':
			flood = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || n < 1 || interval < 1 || hold < 0 ||
	    conn_ms < 1 || (flood && prefix_len == 0))
		usage();
	target = argv[optind];
	memset(&ss, 0, sizeof(ss));
	if (strncmp(target, "unix:", 5) == 0) {
		sun->sun_family = AF_UNIX;
		if (strlen(target + 5) >= sizeof(sun->sun_path))
			usage();
		strcpy(sun->sun_path, target + 5);
		salen = sizeof(*sun);
	} else if (strncmp(target, "tcp:", 4) == 0 &&
	    (colon = strrchr(target + 4, ':')) != NULL) {
		*colon = '\0';
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)atoi(colon + 1));
		if (inet_pton(AF_INET, target + 4, &sin->sin_addr) != 1)
			usage();
		salen = sizeof(*sin);
	} else
		usage();

	/* One descriptor per connection: take what the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > (rlim_t)n + 64 ? (rlim_t)n + 64 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((c = calloc((size_t)n, sizeof(*c))) == NULL ||
	    (pfd = calloc((size_t)n, sizeof(*pfd))) == NULL ||
	    (idx = calloc((size_t)n, sizeof(*idx))) == NULL) {
		fprintf(stderr, "loadpeer: out of memory\n");
		return 1;
	}
	give_up = now_ms() + CONNECT_ALL_MS;
	for (i = 0; i < n && !stop && now_ms() < give_up; i++) {
		c[i].fd = open_conn((struct sockaddr *)&ss, salen, conn_ms);
		c[i].opened_ms = now_ms();
		if (c[i].fd < 0) {
			failed++;
			continue;
		}
		connected++;
		if (flood) {
			int	small = 4096;

			setsockopt(c[i].fd, SOL_SOCKET, SO_RCVBUF, &small,
			    sizeof(small));
		}
		if (prefix_len > 0) {
			ssize_t	w = send(c[i].fd, prefix, prefix_len,
			    MSG_NOSIGNAL);

			if (w > 0)
				sent += w;
		}
	}
	for (; i < n; i++) {
		c[i].fd = -1;
		failed++;
	}
	printf("ready connected=%d failed=%d\n", connected, failed);
	fflush(stdout);

	start = now_ms();
	deadline = start + hold * 1000L;
	next_drip = start + interval;
	for (;;) {
		long	t = now_ms(), wait;
		int	m = 0, rc;

		for (i = 0; i < n; i++)
			if (c[i].fd >= 0) {
				pfd[m].fd = c[i].fd;
				pfd[m].events = flood ? POLLOUT : POLLIN;
				pfd[m].revents = 0;
				idx[m++] = (size_t)i;
			}
		if (stop || t >= deadline || (exit_all && m == 0))
			break;
		wait = deadline - t;
		if (drip_len > 0 && next_drip - t < wait)
			wait = next_drip - t > 0 ? next_drip - t : 0;
		rc = poll(pfd, (nfds_t)m, (int)wait);
		if (rc < 0 && errno != EINTR)
			break;
		for (i = 0; rc > 0 && i < m; i++) {
			struct conn	*cn = &c[idx[i]];
			ssize_t		 r;

			if (pfd[i].revents == 0)
				continue;
			if (flood) {
				while ((r = send(cn->fd, prefix, prefix_len,
				    MSG_NOSIGNAL | MSG_DONTWAIT)) > 0)
					sent += r;
				if (r < 0 && (errno == EAGAIN ||
				    errno == EWOULDBLOCK || errno == EINTR) &&
				    !(pfd[i].revents & (POLLERR | POLLHUP)))
					continue;
				r = 0;		/* closed or reset by certd */
			} else
				while ((r = read(cn->fd, buf, sizeof(buf))) > 0)
					rx += r;
			if (r == 0 || (r < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR)) {
				long	after = now_ms() - cn->opened_ms;

				close(cn->fd);
				cn->fd = -1;
				closed++;
				if (first_close < 0 || after < first_close)
					first_close = after;
				if (after > last_close)
					last_close = after;
			}
		}
		if (drip_len > 0 && now_ms() >= next_drip) {
			for (i = 0; i < n; i++) {
				if (c[i].fd < 0)
					continue;
				if (send(c[i].fd, &drip[c[i].drip_pos % drip_len],
				    1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
					c[i].drip_pos++;
					sent++;
				}
			}
			next_drip += interval;
		}
	}
	for (i = 0, open_n = 0; i < n; i++)
		if (c[i].fd >= 0) {
			open_n++;
			close(c[i].fd);
		}
	printf("done connected=%d failed=%d closed=%d open=%d rx=%ld sent=%ld "
	    "first_close_ms=%ld last_close_ms=%ld elapsed_ms=%ld\n", connected,
	    failed, closed, open_n, rx, sent, first_close, last_close,
	    now_ms() - start);
	fflush(stdout);
	free(c);
	free(pfd);
	free(idx);
	free(prefix);
	free(drip);
	return 0;
}
