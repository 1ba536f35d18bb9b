/* SPDX-License-Identifier: MIT */
/*
 * rawhttp: send bytes exactly as they are to certd's REST port and print
 * what comes back, for the integration tests of malformed requests.
 *
 *	rawhttp PORT FILE...
 *
 * Connects to 127.0.0.1:PORT, sends the first FILE whole, then each next
 * one after certd has been quiet for 300 ms (so that a request is answered
 * before the next is sent on the same connection), and writes everything
 * certd sends to standard output until certd closes the connection or has
 * been quiet for 3 s after the last FILE.  NUL bytes and all are sent as
 * they are in the files.  Exit status 0, 1 when the connection fails, 2
 * for a usage error.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUIET_MS	300
#define LAST_MS		3000

static int
send_file(int s, const char *path)
{
	char	buf[65536];
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_RDONLY)) < 0) {
		fprintf(stderr, "rawhttp: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (send(s, buf, (size_t)n, MSG_NOSIGNAL) != n) {
			close(fd);
			return -1;	/* certd closed: the rest is moot */
		}
	close(fd);
	return 0;
}

/* Copy what certd sends until it closes (1) or is quiet for ms (0). */
static int
drain(int s, int ms)
{
	struct pollfd	pfd = { s, POLLIN, 0 };
	char		buf[65536];
	ssize_t		n;

	for (;;) {
		if (poll(&pfd, 1, ms) <= 0)
			return 0;
		if ((n = recv(s, buf, sizeof(buf), 0)) <= 0)
			return 1;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
	}
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	sin;
	int			s, i;

	if (argc < 3) {
		fprintf(stderr, "usage: rawhttp PORT FILE...\n");
		return 2;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		fprintf(stderr, "rawhttp: connect: %s\n", strerror(errno));
		return 1;
	}
	for (i = 2; i < argc; i++) {
		if (send_file(s, argv[i]) != 0)
			break;
		if (drain(s, i + 1 < argc ? QUIET_MS : LAST_MS))
			break;
	}
	fflush(stdout);
	close(s);
	return 0;
}
