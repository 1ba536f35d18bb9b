/* SPDX-License-Identifier: MIT */
/*
 * certbench: what certd's certificate check (cert_check, src/cert.c) costs,
 * on one thread, for one chain and key (doc/performance.md).
 *
 *	certbench CHAIN KEY N
 *
 * Runs cert_check N times on the PEM files and prints a RESULT line with
 * the microseconds per check.  Under valgrind --tool=callgrind it gives the
 * instructions per check, which do not depend on what else runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "cert.h"

/* A whole file, through GnuTLS (the caller gnutls_free()s its data). */
static gnutls_datum_t
load(const char *path)
{
	gnutls_datum_t	d;

	if (gnutls_load_file(path, &d) < 0) {
		fprintf(stderr, "certbench: cannot read %s\n", path);
		exit(1);
	}
	return d;
}

int
main(int argc, char **argv)
{
	struct timespec		 t0, t1;
	struct cert_meta	 meta;
	gnutls_datum_t		 crt, key;
	char			 why[512];
	long			 i, n;
	int			 rv;

	if (argc != 4 || (n = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: certbench CHAIN KEY N\n");
		return 2;
	}
	crt = load(argv[1]);
	key = load(argv[2]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		if ((rv = cert_check((char *)crt.data, crt.size,
		    (char *)key.data, key.size,
		    (int64_t)time(NULL), &meta, why, sizeof(why))) != 0) {
			fprintf(stderr, "certbench: %d: %s\n", rv, why);
			return 1;
		}
		cert_meta_clear(&meta);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("RESULT check_us=%.1f chain_bytes=%zu key_bytes=%zu\n",
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / (double)n,
	    (size_t)crt.size, (size_t)key.size);
	gnutls_free(crt.data);
	gnutls_free(key.data);
	return 0;
}
