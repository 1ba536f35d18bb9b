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

#include "cert.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE	*fp;
	char	*buf;
	long	 n;

	if ((fp = fopen(path, "rb")) == NULL || fseek(fp, 0, SEEK_END) != 0 ||
	    (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		perror(path);
		exit(1);
	}
	fclose(fp);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int
main(int argc, char **argv)
{
	struct timespec		 t0, t1;
	struct cert_meta	 meta;
	char			*crt, *key, why[512];
	size_t			 crt_len, key_len;
	long			 i, n;
	int			 rv;

	if (argc != 4 || (n = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: certbench CHAIN KEY N\n");
		return 2;
	}
	crt = slurp(argv[1], &crt_len);
	key = slurp(argv[2], &key_len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		if ((rv = cert_check(crt, crt_len, key, key_len,
		    (int64_t)time(NULL), &meta, why, sizeof(why))) != 0) {
			fprintf(stderr, "certbench: %d: %s\n", rv, why);
			return 1;
		}
		cert_meta_clear(&meta);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("RESULT check_us=%.1f chain_bytes=%zu key_bytes=%zu\n",
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / (double)n, crt_len,
	    key_len);
	free(crt);
	free(key);
	return 0;
}
