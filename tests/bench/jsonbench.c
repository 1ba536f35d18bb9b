/* SPDX-License-Identifier: MIT */
/*
 * jsonbench: what jansson alone costs per PUT, the floor under certd's CPU
 * per request (tests/bench/put.sh, doc/performance.md).
 *
 *	jsonbench REQUEST REPLY N
 *
 * N times each, on one thread, as certd's REST worker does them: decode
 * the request body in file REQUEST with json_loadb(JSON_REJECT_DUPLICATES)
 * and free it; encode the reply in file REPLY (decoded once) with
 * json_dumpb(JSON_COMPACT) into a buffer large enough for it.  Prints a
 * RESULT line with the microseconds per decode and per encode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
	*len = (size_t)n;
	return buf;
}

int
main(int argc, char **argv)
{
	json_error_t	 jerr;
	json_t		*root, *reply;
	char		*req, *rep, *out;
	size_t		 req_len, rep_len, cap, n = 0;
	long		 i, count;
	double		 t0, t1, t2;

	if (argc != 4 || (count = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: jsonbench REQUEST REPLY N\n");
		return 2;
	}
	req = slurp(argv[1], &req_len);
	rep = slurp(argv[2], &rep_len);
	if ((reply = json_loadb(rep, rep_len, 0, &jerr)) == NULL) {
		fprintf(stderr, "%s: %s\n", argv[2], jerr.text);
		return 1;
	}
	cap = rep_len * 2 + 1024;
	if ((out = malloc(cap)) == NULL)
		return 1;

	t0 = now();
	for (i = 0; i < count; i++) {
		if ((root = json_loadb(req, req_len, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL) {
			fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
			return 1;
		}
		json_decref(root);
	}
	t1 = now();
	for (i = 0; i < count; i++)
		if ((n = json_dumpb(reply, out, cap, JSON_COMPACT)) == 0 ||
		    n > cap)
			return 1;
	t2 = now();
	printf("RESULT request_bytes=%zu decode_us=%.1f reply_bytes=%zu "
	    "encode_us=%.1f\n", req_len, (t1 - t0) / count * 1e6, n,
	    (t2 - t1) / count * 1e6);
	json_decref(reply);
	free(out);
	free(rep);
	free(req);
	return 0;
}
