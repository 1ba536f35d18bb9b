/* SPDX-License-Identifier: MIT */
/*
 * jsonbench: what JSON costs per PUT, for each candidate library, on one
 * thread (tests/bench/json.sh, put.sh; doc/performance.md).
 *
 *	jsonbench REQUEST N
 *
 * For each library, two rounds of N times each: decode the PUT body in
 * file REQUEST and read its four string fields; encode the reply of a
 * certificate (TeamCertificatesR, with the body's PEM and key) into a
 * buffer.  Prints one RESULT line a library and round:
 *
 *	RESULT lib=NAME round=R decode_us=D encode_us=E request_bytes=B
 *	    reply_bytes=Y
 *
 * certd's own code (src/json.c, on yajl) is always measured; jansson,
 * json-c and cJSON when built with -DJB_ALL (json.sh does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "jsonbench.h"

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
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* --- certd's own: src/json.c ------------------------------------------ */

static const char *const fields[] = {
	"alias", "certificate", "private_key", "certificate_type"
};

static long
certd_decode(const char *body, size_t len)
{
	const struct json_member	*m;
	struct json_body		 b;
	char				 why[200];
	long				 n = 0;
	size_t				 i;

	if (json_body_parse(body, len, &b, why, sizeof(why)) != 0) {
		json_body_free(&b);
		return -1;
	}
	for (i = 0; i < 4; i++)
		if ((m = json_body_get(&b, fields[i])) != NULL &&
		    m->kind == JSON_STRING)
			n += (long)m->len;
	json_body_free(&b);
	return n;
}

static size_t
certd_encode(const struct jb_reply *r, char *out, size_t cap)
{
	struct json_w	*w = json_w_new();
	const char	*s;
	size_t		 n;

	json_w_obj(w);
	json_w_kuint(w, "id", r->id);
	json_w_kstr(w, "alias", r->alias);
	json_w_kstr(w, "private_key", r->private_key);
	json_w_kstr(w, "certificate", r->certificate);
	json_w_kstr(w, "certificate_type", r->type);
	json_w_kuint(w, "revision", r->revision);
	json_w_kstr(w, "not_before", r->not_before);
	json_w_kstr(w, "not_after", r->not_after);
	json_w_kstr(w, "fingerprint_sha256", r->fingerprint);
	json_w_key(w, "issued_to");
	json_w_arr(w);
	json_w_str(w, r->issued_to[0]);
	json_w_str(w, r->issued_to[1]);
	json_w_arr_end(w);
	json_w_kbool(w, "has_expired", r->expired);
	json_w_obj_end(w);
	if (json_w_done(w, &s, &n) != 0 || n > cap)
		n = 0;
	else
		memcpy(out, s, n);
	json_w_free(w);
	return n;
}

const struct jb_lib jb_certd = {
	"certd (yajl 2.1 + json.c)", "duplicates, UTF-8, \\u0000, surrogates",
	certd_decode, certd_encode
};

/* --- the run ------------------------------------------------------------ */

/* The reply of the certificate in body: its fields, fixed metadata. */
static void
reply_of(const char *body, size_t len, struct json_body *b,
    struct jb_reply *r)
{
	const struct json_member	*m[4];
	char				 why[200];
	size_t				 i;

	if (json_body_parse(body, len, b, why, sizeof(why)) != 0) {
		fprintf(stderr, "jsonbench: the request: %s\n", why);
		exit(1);
	}
	for (i = 0; i < 4; i++)
		if ((m[i] = json_body_get(b, fields[i])) == NULL ||
		    m[i]->kind != JSON_STRING) {
			fprintf(stderr, "jsonbench: the request has no %s\n",
			    fields[i]);
			exit(1);
		}
	memset(r, 0, sizeof(*r));
	r->id = 1;
	r->alias = m[0]->s;
	r->certificate = m[1]->s;
	r->private_key = m[2]->s;
	r->type = m[3]->s;
	r->revision = 1234;
	r->not_before = "2026-12-07T00:00:00Z";
	r->not_after = "2027-12-07T00:00:00Z";
	r->fingerprint = "5f0c3e1a9b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";
	r->issued_to[0] = "www.example.com";
	r->issued_to[1] = "example.com";
}

static void
run(const struct jb_lib *lib, const char *req, size_t req_len,
    const struct jb_reply *reply, long count, int round)
{
	static char	out[256 * 1024];
	double		t0, t1, t2;
	size_t		n = 0;
	long		i;

	t0 = now();
	for (i = 0; i < count; i++)
		if (lib->decode(req, req_len) < 0) {
			fprintf(stderr, "jsonbench: %s cannot decode it\n",
			    lib->name);
			exit(1);
		}
	t1 = now();
	for (i = 0; i < count; i++)
		if ((n = lib->encode(reply, out, sizeof(out))) == 0) {
			fprintf(stderr, "jsonbench: %s cannot encode\n",
			    lib->name);
			exit(1);
		}
	t2 = now();
	printf("RESULT lib=\"%s\" round=%d decode_us=%.2f encode_us=%.2f "
	    "request_bytes=%zu reply_bytes=%zu checks=\"%s\"\n", lib->name,
	    round, (t1 - t0) / (double)count * 1e6,
	    (t2 - t1) / (double)count * 1e6, req_len, n, lib->checks);
}

int
main(int argc, char **argv)
{
	const struct jb_lib *const libs[] = {
		&jb_certd,
#ifdef JB_ALL
		&jb_jansson, &jb_jsonc, &jb_cjson,
#endif
	};
	struct json_body	 b;
	struct jb_reply		 reply;
	char			*req;
	size_t			 req_len, i;
	long			 count;
	int			 round;

	if (argc != 3 || (count = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: jsonbench REQUEST N\n");
		return 2;
	}
	req = slurp(argv[1], &req_len);
	reply_of(req, req_len, &b, &reply);
	for (round = 1; round <= 2; round++)
		for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
			run(libs[i], req, req_len, &reply, count, round);
	json_body_free(&b);
	free(req);
	return 0;
}
