/* SPDX-License-Identifier: MIT */
/*
 * The smallest libcertd program: connect to certd's socket, ping, print the
 * revision.  Build: cc ping.c $(pkg-config --cflags --libs libcertd)
 */
#include <stdio.h>

#include <certd/certd.h>

int
main(int argc, char *argv[])
{
	struct certd_client	*c;
	char			 err[256];
	int			 rv;

	c = certd_connect(argc > 1 ? argv[1] : NULL, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "ping: %s\n", err);
		return 1;
	}
	if ((rv = certd_ping(c)) != 0)
		fprintf(stderr, "ping: %s\n", certd_client_error(c));
	else
		printf("certd revision %llu\n",
		    (unsigned long long)certd_client_revision(c));
	certd_close(c);
	return rv == 0 ? 0 : 1;
}
