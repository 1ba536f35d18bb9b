/* SPDX-License-Identifier: MIT */
/*
 * dropproxy: a proxy between a client and certd's Unix socket that breaks
 * one connection at a chosen point, for the integration tests.
 *
 *	dropproxy LISTEN TARGET N
 *
 * Serves one connection at a time on the socket LISTEN, each passed both
 * ways to a new connection to TARGET (a client whose TARGET is down is
 * closed at once and not counted).  On the Nth connection it passes certd's
 * first frame only (a watch request's result), then closes both sides: the
 * client loses the connection between the result and what certd sends
 * after it.  Runs until killed.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

static int
connect_to(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	if (unix_addr(path, &sun) != 0 ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read exactly n bytes; 0, or -1 at an error or the end. */
static int
read_n(int fd, void *buf, size_t n)
{
	char	*p = buf;
	ssize_t	 r;

	while (n > 0) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Copy exactly n bytes from in to out; 0, or -1 when either side failed. */
static int
copy_n(int in, int out, size_t n)
{
	char	buf[16384];
	ssize_t	r;

	while (n > 0) {
		r = read(in, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write(out, buf, (size_t)r) != r)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

/* Pass bytes both ways until a side closes; with first_only, see the top. */
static void
relay(int c, int t, int first_only)
{
	struct pollfd	p[2] = { { c, POLLIN, 0 }, { t, POLLIN, 0 } };
	unsigned char	hdr[4];
	char		buf[16384];
	ssize_t		r;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents != 0) {
			if ((r = read(c, buf, sizeof(buf))) <= 0 ||
			    write(t, buf, (size_t)r) != r)
				return;
		}
		if (p[1].revents == 0)
			continue;
		if (!first_only) {
			if ((r = read(t, buf, sizeof(buf))) <= 0 ||
			    write(c, buf, (size_t)r) != r)
				return;
			continue;
		}
		/* a frame is a 4-byte big-endian length, then the payload */
		if (read_n(t, hdr, sizeof(hdr)) != 0 ||
		    write(c, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
			return;
		(void)copy_n(t, c, (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
		    (size_t)hdr[2] << 8 | hdr[3]);
		usleep(100000);		/* the client reads it before the close */
		return;
	}
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	sun;
	long			drop, n = 0;
	int			l, c, t;

	if (argc != 4 || (drop = strtol(argv[3], NULL, 10)) < 1 ||
	    unix_addr(argv[1], &sun) != 0) {
		fprintf(stderr, "usage: dropproxy LISTEN TARGET N\n");
		return 2;
	}
	(void)unlink(argv[1]);
	if ((l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(l, 8) != 0) {
		perror("dropproxy: listen");
		return 1;
	}
	for (;;) {
		if ((c = accept(l, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			perror("dropproxy: accept");
			return 1;
		}
		if ((t = connect_to(argv[2])) == -1) {
			close(c);
			continue;
		}
		n++;
		fprintf(stderr, "dropproxy: connection %ld%s\n", n,
		    n == drop ? ": certd's first frame only" : "");
		relay(c, t, n == drop);
		close(c);
		close(t);
	}
}
