/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for cert.c: every key type the spec admits, every rejection in
 * the order the spec gives, chains of one to three links, the metadata
 * (checked against certtool's own view of the same files), and the small
 * hashing, random, wiping and sealing helpers.  The PKI comes from
 * tests/pki/gen-pki.sh: $CERTD_PKI_DIR when the harness set it, else a
 * private temporary directory generated here from $CERTD_SRCDIR (default
 * ".").  Every file is loaded into a buffer of exactly its size, with no NUL
 * after it, so AddressSanitizer catches any read past the given length.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certd/constants.h"
#include "cert.h"
#include "pem.h"
#include "util.h"

#define T_2020	INT64_C(1577836800)	/* 2020-01-01T00:00:00Z */
#define T_2021	INT64_C(1609459200)	/* 2021-01-01T00:00:00Z */
#define T_2099	INT64_C(4070908800)	/* 2099-01-01T00:00:00Z */
#define T_2100	INT64_C(4102444800)	/* 2100-01-01T00:00:00Z */

static char	*pki_dir;	/* where the PKI lives */
static char	*pki_tmp;	/* set when we generated it ourselves */

/* An exactly sized copy of some text; data is never NUL-terminated. */
struct text {
	char	*data;
	size_t	 len;
};

static void
text_free(struct text *t)
{
	free(t->data);
	t->data = NULL;
	t->len = 0;
}

static void
text_append(struct text *t, const void *p, size_t len)
{
	char	*n;

	n = realloc(t->data, t->len + len > 0 ? t->len + len : 1);
	assert_non_null(n);
	if (len > 0)
		memcpy(n + t->len, p, len);
	t->data = n;
	t->len += len;
}

static void
text_append_str(struct text *t, const char *s)
{
	text_append(t, s, strlen(s));
}

static void
text_load_into(struct text *t, const char *name)
{
	char	 path[PATH_MAX], buf[8192];
	FILE	*f;
	size_t	 n;

	snprintf(path, sizeof(path), "%s/%s", pki_dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		text_append(t, buf, n);
	assert_int_equal(ferror(f), 0);
	fclose(f);
}

/* Concatenation of the space-separated file names in `names'. */
static struct text
load(const char *names)
{
	struct text	 t = { NULL, 0 };
	char		*copy, *name, *save = NULL;

	copy = strdup(names);
	assert_non_null(copy);
	for (name = strtok_r(copy, " ", &save); name != NULL;
	    name = strtok_r(NULL, " ", &save))
		text_load_into(&t, name);
	free(copy);
	if (t.data == NULL)
		text_append(&t, "", 0);
	return t;
}

/* Replace the first occurrence of `from' by `to'; the test fails if absent. */
static void
text_replace(struct text *t, const char *from, const char *to)
{
	struct text	 n = { NULL, 0 };
	char		*p;
	size_t		 off;

	p = memmem(t->data, t->len, from, strlen(from));
	assert_non_null(p);
	off = p - t->data;
	text_append(&n, t->data, off);
	text_append_str(&n, to);
	text_append(&n, p + strlen(from), t->len - off - strlen(from));
	text_free(t);
	*t = n;
}

/* Pad with newlines up to exactly `len' bytes. */
static void
text_pad(struct text *t, size_t len)
{
	char	*pad;

	assert_true(t->len <= len);
	pad = malloc(len - t->len + 1);
	assert_non_null(pad);
	memset(pad, '\n', len - t->len);
	text_append(t, pad, len - t->len);
	free(pad);
	assert_int_equal(t->len, len);
}

/* cert_check() on texts, metadata discarded unless `meta' is given. */
static int
check_text(const struct text *cert, const struct text *key, int64_t now,
    struct cert_meta *meta)
{
	struct cert_meta	 local;
	int			 rv;

	rv = cert_check(cert->data, cert->len, key->data, key->len, now,
	    meta ? meta : &local, NULL, 0);
	if (meta == NULL)
		cert_meta_clear(&local);
	return rv;
}

/* cert_check() on files: `certs' lists PEM files, `key' one key file. */
static int
check_files(const char *certs, const char *key, int64_t now,
    struct cert_meta *meta)
{
	struct text	 c, k;
	int		 rv;

	c = load(certs);
	k = load(key);
	rv = check_text(&c, &k, now, meta);
	text_free(&c);
	text_free(&k);
	return rv;
}

/*
 * Run argv; with `out', capture up to outlen - 1 bytes of its standard
 * output, NUL-terminated.  Returns the exit status, -1 if it did not exit.
 */
static int
run(char *const argv[], char *out, size_t outlen)
{
	posix_spawn_file_actions_t	 fa;
	char				 scratch[4096];
	size_t				 n = 0;
	ssize_t				 r;
	pid_t				 pid;
	int				 fd[2], st;

	/* posix_spawn, not fork: forking an ASan process costs seconds. */
	assert_int_equal(pipe(fd), 0);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	if (out != NULL)
		assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fd[1],
		    STDOUT_FILENO), 0);
	assert_int_equal(posix_spawn_file_actions_addclose(&fa, fd[0]), 0);
	assert_int_equal(posix_spawn_file_actions_addclose(&fa, fd[1]), 0);
	st = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (st != 0) {
		close(fd[0]);
		close(fd[1]);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(st));
		return -1;
	}
	close(fd[1]);
	for (;;) {
		if (out != NULL && n + 1 < outlen)
			r = read(fd[0], out + n, outlen - 1 - n);
		else
			r = read(fd[0], scratch, sizeof(scratch));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out != NULL && n + 1 < outlen)
			n += r;
	}
	close(fd[0]);
	if (out != NULL)
		out[n] = '\0';
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
group_setup(void **state)
{
	const char	*dir, *src;
	char		 script[PATH_MAX], tmpl[PATH_MAX];
	char		*argv[3];

	(void)state;
	if ((dir = getenv("CERTD_PKI_DIR")) != NULL && *dir != '\0') {
		pki_dir = strdup(dir);
		return pki_dir == NULL ? -1 : 0;
	}
	if ((src = getenv("CERTD_SRCDIR")) == NULL || *src == '\0')
		src = ".";
	snprintf(script, sizeof(script), "%s/tests/pki/gen-pki.sh", src);
	snprintf(tmpl, sizeof(tmpl), "%s/certd-test-pki.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpl) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", tmpl, strerror(errno));
		return -1;
	}
	pki_tmp = strdup(tmpl);
	pki_dir = strdup(tmpl);
	if (pki_tmp == NULL || pki_dir == NULL)
		return -1;
	argv[0] = script;
	argv[1] = pki_dir;
	argv[2] = NULL;
	if (run(argv, NULL, 0) != 0) {
		fprintf(stderr, "%s %s failed\n", script, pki_dir);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char	*argv[4];

	(void)state;
	if (pki_tmp != NULL) {
		argv[0] = (char *)(uintptr_t)"rm";
		argv[1] = (char *)(uintptr_t)"-rf";
		argv[2] = pki_tmp;
		argv[3] = NULL;
		run(argv, NULL, 0);
	}
	free(pki_tmp);
	free(pki_dir);
	return 0;
}

static int
is_lower_hex(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
			return 0;
	return 1;
}

/* First line of a file, to prove the fixtures are what the tests claim. */
static void
assert_first_line(const char *name, const char *line)
{
	struct text	t = load(name);

	assert_true(t.len >= strlen(line));
	assert_memory_equal(t.data, line, strlen(line));
	text_free(&t);
}

static void
test_key_types(void **state)
{
	static const struct {
		const char	*cert;
		const char	*key;
		const char	*first;	/* key file's first line */
		const char	*alg;
		unsigned	 bits;
		const char	*cn;
	} cases[] = {
		{ "leaf-rsa.pem", "leaf-rsa.key",
		  "-----BEGIN RSA PRIVATE KEY-----", "RSA", 2048,
		  "www.example.test" },
		{ "leaf-rsa.pem", "leaf-rsa-pkcs8.key",
		  "-----BEGIN PRIVATE KEY-----", "RSA", 2048,
		  "www.example.test" },
		{ "leaf-ec.pem", "leaf-ec.key",
		  "-----BEGIN EC PRIVATE KEY-----", "ECDSA", 256,
		  "ec.example.test" },
		{ "leaf-ec384.pem", "leaf-ec384.key",
		  "-----BEGIN PRIVATE KEY-----", "ECDSA", 384,
		  "ec384.example.test" },
		{ "leaf-ec521.pem", "leaf-ec521.key",
		  "-----BEGIN PRIVATE KEY-----", "ECDSA", 521,
		  "ec521.example.test" },
		{ "leaf-ed25519.pem", "leaf-ed25519.key",
		  "-----BEGIN PRIVATE KEY-----", "Ed25519", 256,
		  "ed25519.example.test" },
		{ "leaf-ed448.pem", "leaf-ed448.key",
		  "-----BEGIN PRIVATE KEY-----", "Ed448", 456,
		  "ed448.example.test" },
	};
	struct cert_meta	 m;
	char			 chain[128];
	size_t			 i;
	int64_t			 now = time(NULL);

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_first_line(cases[i].key, cases[i].first);
		assert_int_equal(check_files(cases[i].cert, cases[i].key, now,
		    &m), CERTD_OK);
		assert_string_equal(m.key_algorithm, cases[i].alg);
		assert_int_equal(m.key_bits, cases[i].bits);
		assert_string_equal(m.subject_cn, cases[i].cn);
		assert_int_equal(m.n_sans, 1 + (i < 2 ? 3 : 0));
		assert_string_equal(m.sans[0], cases[i].cn);
		assert_int_equal(m.chain_len, 1);
		cert_meta_clear(&m);

		snprintf(chain, sizeof(chain), "%s int.pem", cases[i].cert);
		assert_int_equal(check_files(chain, cases[i].key, now, &m),
		    CERTD_OK);
		assert_int_equal(m.chain_len, 2);
		assert_string_equal(m.key_algorithm, cases[i].alg);
		cert_meta_clear(&m);
	}
}

static void
test_cert_invalid(void **state)
{
	struct text	 c, k;
	int64_t		 now = time(NULL);
	int		 i;

	(void)state;
	assert_int_equal(check_files("garbage.pem", "leaf-rsa.key", now, NULL),
	    CERTD_ERR_CERT_INVALID);
	assert_int_equal(check_files("mixed.pem", "leaf-rsa.key", now, NULL),
	    CERTD_ERR_CERT_INVALID);

	k = load("leaf-rsa.key");

	/* Empty, NULL and white space only. */
	c = load("leaf-rsa.pem");
	assert_int_equal(cert_check(c.data, 0, k.data, k.len, now,
	    &(struct cert_meta){ 0 }, NULL, 0), CERTD_ERR_CERT_INVALID);
	assert_int_equal(cert_check(NULL, 0, k.data, k.len, now,
	    &(struct cert_meta){ 0 }, NULL, 0), CERTD_ERR_CERT_INVALID);
	text_free(&c);
	text_append_str(&c, " \n\t\r\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/*
	 * Text before the block, as in some "bundle" exports, is explanatory
	 * text (RFC 7468 section 2); a block that lost its BEGIN line is not.
	 */
	text_append_str(&c, "subject=CN = www.example.test\n");
	text_load_into(&c, "leaf-rsa.pem");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_free(&c);

	/* Other block types, alone or after the leaf. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "BEGIN CERTIFICATE", "BEGIN TRUSTED CERTIFICATE");
	text_replace(&c, "END CERTIFICATE", "END TRUSTED CERTIFICATE");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);
	c = load("leaf-rsa.pem int.key");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* BEGIN and END labels disagree. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "END CERTIFICATE", "END X509 CRL");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* Truncated: the END line is missing. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "-----END CERTIFICATE-----", "");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* A header line, and a non-base64 byte, inside the block. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);
	c = load("leaf-rsa.pem");
	text_replace(&c, "-----\nMII", "-----\nMI!");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* Valid base64 that is not a certificate. */
	text_append_str(&c, "-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* Text glued to the END marker. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "END CERTIFICATE-----", "END CERTIFICATE-----x");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* A bad second certificate is a parse error, not a chain error. */
	c = load("leaf-rsa.pem");
	text_append_str(&c, "-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* Size: CERTD_CERT_MAX bytes pass, one more does not. */
	c = load("leaf-rsa.pem");
	text_pad(&c, CERTD_CERT_MAX);
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_pad(&c, CERTD_CERT_MAX + 1);
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/*
	 * CERTD_CHAIN_MAX certificates parse (and then fail as a chain, int
	 * not being its own issuer); one more is refused as text.
	 */
	c = load("leaf-rsa.pem");
	for (i = 1; i < CERTD_CHAIN_MAX; i++)
		text_load_into(&c, "int.pem");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CHAIN_INVALID);
	text_load_into(&c, "int.pem");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_INVALID);
	text_free(&c);

	text_free(&k);
}

static void
test_validity(void **state)
{
	struct cert_meta	 m;
	struct text		 c, k;
	int64_t			 now = time(NULL);

	(void)state;
	assert_int_equal(check_files("expired.pem", "expired.key", now, NULL),
	    CERTD_ERR_CERT_EXPIRED);
	assert_int_equal(check_files("notyet.pem", "notyet.key", now, NULL),
	    CERTD_ERR_CERT_NOT_YET);

	/* The validity checks come before the key and the chain. */
	c = load("expired.pem");
	k.data = strdup("not a key");
	k.len = strlen(k.data);
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_EXPIRED);
	text_free(&c);
	c = load("notyet.pem");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_CERT_NOT_YET);
	text_free(&c);
	text_free(&k);
	assert_int_equal(check_files("expired.pem", "other.key", now, NULL),
	    CERTD_ERR_CERT_EXPIRED);
	assert_int_equal(check_files("expired.pem ca.pem", "other.key", now,
	    NULL), CERTD_ERR_CERT_EXPIRED);
	assert_int_equal(check_files("notyet.pem", "other.key", now, NULL),
	    CERTD_ERR_CERT_NOT_YET);
	/* ...but after parsing. */
	assert_int_equal(check_files("expired.pem garbage.pem", "other.key",
	    now, NULL), CERTD_ERR_CERT_INVALID);

	/* Inside the window it is fine, and the bounds are inclusive. */
	assert_int_equal(check_files("expired.pem int.pem", "expired.key",
	    T_2020 + 86400 * 100, &m), CERTD_OK);
	assert_int_equal(m.not_before, T_2020);
	assert_int_equal(m.not_after, T_2021);
	assert_int_equal(m.chain_len, 2);
	cert_meta_clear(&m);
	assert_int_equal(check_files("expired.pem", "expired.key", T_2020,
	    NULL), CERTD_OK);
	assert_int_equal(check_files("expired.pem", "expired.key", T_2021,
	    NULL), CERTD_OK);
	assert_int_equal(check_files("expired.pem", "expired.key", T_2021 + 1,
	    NULL), CERTD_ERR_CERT_EXPIRED);
	assert_int_equal(check_files("expired.pem", "expired.key", T_2020 - 1,
	    NULL), CERTD_ERR_CERT_NOT_YET);

	assert_int_equal(check_files("notyet.pem", "notyet.key", T_2099,
	    &m), CERTD_OK);
	assert_int_equal(m.not_before, T_2099);
	assert_int_equal(m.not_after, T_2100);
	cert_meta_clear(&m);
	assert_int_equal(check_files("notyet.pem", "notyet.key", T_2100 + 1,
	    NULL), CERTD_ERR_CERT_EXPIRED);
}

/* What `openssl ecparam -genkey -name prime256v1` writes before the key. */
static const char	ec_params[] = "-----BEGIN EC PARAMETERS-----\n"
    "BggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";

static void
test_key_invalid(void **state)
{
	struct text	 c, k;
	int64_t		 now = time(NULL);

	(void)state;
	c = load("leaf-rsa.pem");

	k.data = strdup("not a key");
	k.len = strlen(k.data);
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	assert_int_equal(cert_check(c.data, c.len, k.data, 0, now,
	    &(struct cert_meta){ 0 }, NULL, 0), CERTD_ERR_KEY_INVALID);
	assert_int_equal(cert_check(c.data, c.len, NULL, 0, now,
	    &(struct cert_meta){ 0 }, NULL, 0), CERTD_ERR_KEY_INVALID);
	text_free(&k);
	text_append_str(&k, "\n\n  \n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/*
	 * An EC PARAMETERS block before the key, as `openssl ecparam -genkey`
	 * writes it, is accepted before an EC key only, and only once.
	 */

	text_free(&c);
	c = load("leaf-ec.pem");
	text_append_str(&k, ec_params);
	text_load_into(&k, "leaf-ec.key");
	assert_int_equal(check_text(&c, &k, now, NULL), 0);
	text_free(&k);
	text_append_str(&k, ec_params);
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_ERR_KEY_INVALID);
	text_free(&k);
	text_append_str(&k, ec_params);
	text_append_str(&k, ec_params);
	text_load_into(&k, "leaf-ec.key");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_ERR_KEY_INVALID);
	text_free(&k);
	text_free(&c);
	c = load("leaf-rsa.pem");
	text_append_str(&k, ec_params);
	text_load_into(&k, "leaf-rsa.key");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* Encrypted, with a password and with an empty one. */
	assert_first_line("encrypted.key",
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----");
	assert_int_equal(check_files("leaf-rsa.pem", "encrypted.key", now,
	    NULL), CERTD_ERR_KEY_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem", "encrypted-empty.key",
	    now, NULL), CERTD_ERR_KEY_INVALID);

	/* GnuTLS itself must refuse an encrypted body under a plain label. */
	k = load("encrypted.key");
	text_replace(&k, "BEGIN ENCRYPTED PRIVATE", "BEGIN PRIVATE");
	text_replace(&k, "END ENCRYPTED PRIVATE", "END PRIVATE");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);
	k = load("encrypted-empty.key");
	text_replace(&k, "BEGIN ENCRYPTED PRIVATE", "BEGIN PRIVATE");
	text_replace(&k, "END ENCRYPTED PRIVATE", "END PRIVATE");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* Legacy PEM encryption headers on PKCS#1. */
	k = load("leaf-rsa.key");
	text_replace(&k, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n"
	    "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* An RSA body under the EC label. */
	k = load("leaf-rsa.key");
	text_replace(&k, "BEGIN RSA PRIVATE", "BEGIN EC PRIVATE");
	text_replace(&k, "END RSA PRIVATE", "END EC PRIVATE");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* Exactly one block and white space. */
	assert_int_equal(check_files("leaf-rsa.pem", "leaf-rsa.key other.key",
	    now, NULL), CERTD_ERR_KEY_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem",
	    "leaf-rsa.key leaf-rsa.pem", now, NULL), CERTD_ERR_KEY_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem", "leaf-rsa.pem", now, NULL),
	    CERTD_ERR_KEY_INVALID);
	/* Words after the block are explanatory text; a stray END is not. */
	k = load("leaf-rsa.key");
	text_append_str(&k, "trailing words\n");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_append_str(&k, "-----END RSA PRIVATE KEY-----\n");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* Size: CERTD_KEY_MAX bytes pass, one more does not. */
	k = load("leaf-rsa.key");
	text_pad(&k, CERTD_KEY_MAX);
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_pad(&k, CERTD_KEY_MAX + 1);
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);

	/* A bad key beats a mismatch and a broken chain. */
	k.data = strdup("-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n");
	k.len = strlen(k.data);
	text_free(&c);
	c = load("chain-wrong-issuer.pem");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_INVALID);
	text_free(&k);
	text_free(&c);
}

static void
test_key_mismatch(void **state)
{
	int64_t	now = time(NULL);

	(void)state;
	assert_int_equal(check_files("leaf-rsa.pem", "other.key", now, NULL),
	    CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("leaf-rsa.pem", "leaf-rsa2.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("leaf-rsa.pem", "leaf-ec.key", now, NULL),
	    CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("leaf-ec.pem", "leaf-ec384.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("leaf-ed25519.pem", "leaf-ed448.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	/* The key belongs to the leaf, not to any other link. */
	assert_int_equal(check_files("leaf-rsa.chain.pem", "int.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	/*
	 * A mismatch is reported before a broken chain, unless the key is a
	 * later certificate's and the chain is out of order: the leaf was
	 * not given first (test_reasons).
	 */
	assert_int_equal(check_files("chain-reversed.pem", "other.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("chain-wrong-issuer.pem", "other.key", now,
	    NULL), CERTD_ERR_KEY_MISMATCH);
	assert_int_equal(check_files("chain-reversed.pem", "leaf-rsa.key", now,
	    NULL), CERTD_ERR_CHAIN_INVALID);
}

/* leaf-rsa.pem with one base64 digit of its signature changed. */
static struct text
tampered_leaf(void)
{
	struct text	 t = load("leaf-rsa.pem");
	char		*end;
	int		 skip = 10;

	end = memmem(t.data, t.len, "-----END", 8);
	assert_non_null(end);
	/* Walk back over padding and line breaks into the signature. */
	while (skip > 0) {
		end--;
		if (*end != '\n' && *end != '\r' && *end != '=')
			skip--;
	}
	*end = *end == 'A' ? 'B' : 'A';
	return t;
}

static void
test_chain_invalid(void **state)
{
	struct cert_meta	 m;
	struct text		 c, k;
	int64_t			 now = time(NULL);

	(void)state;
	/* int.pem first: its key matches, then the order is wrong. */
	assert_int_equal(check_files("chain-reversed.pem", "int.key", now,
	    NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("chain-wrong-issuer.pem", "leaf-rsa.key",
	    now, NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("chain-bad-sig.pem", "leaf-rsa.key", now,
	    NULL), CERTD_ERR_CHAIN_INVALID);
	/* A link skipped, a wrong last link, a leaf as issuer. */
	assert_int_equal(check_files("leaf-rsa.pem ca.pem", "leaf-rsa.key",
	    now, NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem int.pem other-ca.pem",
	    "leaf-rsa.key", now, NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem int.pem forged-int.pem",
	    "leaf-rsa.key", now, NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem leaf-rsa2.pem",
	    "leaf-rsa.key", now, NULL), CERTD_ERR_CHAIN_INVALID);
	assert_int_equal(check_files("leaf-rsa.pem leaf-rsa.pem",
	    "leaf-rsa.key", now, NULL), CERTD_ERR_CHAIN_INVALID);

	/*
	 * Names and key identifiers all match, only the signature is wrong.
	 * Alone, the same leaf passes: a single certificate has no links.
	 */
	c = tampered_leaf();
	k = load("leaf-rsa.key");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_load_into(&c, "int.pem");
	assert_int_equal(check_text(&c, &k, now, &m),
	    CERTD_ERR_CHAIN_INVALID);
	/* On failure the metadata is left cleared. */
	assert_null(m.subject_cn);
	assert_null(m.sans);
	assert_int_equal(m.n_sans, 0);
	assert_null(m.key_algorithm);
	assert_int_equal(m.chain_len, 0);
	text_free(&c);
	text_free(&k);
}

static void
test_chain_valid(void **state)
{
	static const struct {
		const char	*certs;
		const char	*key;
		unsigned	 len;
	} cases[] = {
		{ "leaf-rsa.pem", "leaf-rsa.key", 1 },
		{ "leaf-rsa.chain.pem", "leaf-rsa.key", 2 },
		{ "leaf-rsa.full.pem", "leaf-rsa.key", 3 },
		{ "leaf-rsa.full.pem", "leaf-rsa-pkcs8.key", 3 },
		{ "leaf-rsa2.pem int.pem ca.pem", "leaf-rsa2.key", 3 },
		{ "leaf-ec.pem int.pem ca.pem", "leaf-ec.key", 3 },
		{ "leaf-ed448.pem int.pem ca.pem", "leaf-ed448.key", 3 },
		{ "leaf-nocn.pem int.pem", "leaf-nocn.key", 2 },
		{ "int.pem ca.pem", "int.key", 2 },
		{ "ca.pem", "ca.key", 1 },
		{ "self.pem", "self.key", 1 },
		{ "forged-int.pem other-ca.pem", "forged-int.key", 2 },
	};
	struct cert_meta	 m;
	size_t			 i;
	int64_t			 now = time(NULL);

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(check_files(cases[i].certs, cases[i].key, now,
		    &m), CERTD_OK);
		assert_int_equal(m.chain_len, cases[i].len);
		cert_meta_clear(&m);
	}
}

/* The value certtool prints after `prefix', lowercased, colons dropped. */
static void
certtool_value(char *const argv[], const char *prefix, char *out,
    size_t outlen)
{
	static char	 buf[1 << 16];
	char		*p;
	size_t		 n = 0;

	assert_int_equal(run(argv, buf, sizeof(buf)), 0);
	p = prefix[0] == '\0' ? buf : strstr(buf, prefix);
	assert_non_null(p);
	p += strlen(prefix);
	for (; *p != '\0' && !isspace((unsigned char)*p) && n + 1 < outlen;
	    p++)
		if (*p != ':')
			out[n++] = tolower((unsigned char)*p);
	out[n] = '\0';
}

static void
test_metadata(void **state)
{
	static const char	*sans[] = {
		"www.example.test", "example.test", "127.0.0.1", "10.0.0.1",
	};
	struct cert_meta	 m;
	char			 path[PATH_MAX], want[256];
	char			*argv[6];
	const char		*serial;
	size_t			 i;
	int64_t			 now = time(NULL);

	(void)state;
	assert_int_equal(check_files("leaf-rsa.chain.pem", "leaf-rsa.key", now,
	    &m), CERTD_OK);
	assert_string_equal(m.subject_cn, "www.example.test");
	assert_int_equal(m.n_sans, 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(m.sans[i], sans[i]);
	assert_string_equal(m.issuer_cn, "certd Test Intermediate");
	assert_string_equal(m.issuer_dn, "CN=certd Test Intermediate,O=certd");
	assert_true(is_lower_hex(m.serial));
	assert_true(m.not_before <= now && now <= m.not_after);
	assert_true(m.not_after - m.not_before >= 365 * 86400 - 5 &&
	    m.not_after - m.not_before <= 365 * 86400 + 5);
	assert_int_equal(strlen(m.fingerprint), CERT_FINGERPRINT_LEN);
	assert_true(is_lower_hex(m.fingerprint));
	assert_string_equal(m.key_algorithm, "RSA");
	assert_int_equal(m.key_bits, 2048);
	assert_int_equal(m.chain_len, 2);

	/* certtool's view of the same leaf. */
	snprintf(path, sizeof(path), "--infile=%s/leaf-rsa.pem", pki_dir);
	argv[0] = (char *)(uintptr_t)"certtool";
	argv[1] = (char *)(uintptr_t)"--fingerprint";
	argv[2] = (char *)(uintptr_t)"--hash=sha256";
	argv[3] = path;
	argv[4] = NULL;
	certtool_value(argv, "", want, sizeof(want));
	assert_string_equal(m.fingerprint, want);

	argv[1] = (char *)(uintptr_t)"-i";
	argv[2] = path;
	argv[3] = NULL;
	certtool_value(argv, "Serial Number (hex): ", want, sizeof(want));
	for (serial = want; serial[0] == '0' && serial[1] == '0' &&
	    serial[2] != '\0'; serial += 2)
		;
	assert_string_equal(m.serial, serial);
	cert_meta_clear(&m);

	/* No CN: NULL, and the SAN still there. */
	assert_int_equal(check_files("leaf-nocn.pem", "leaf-nocn.key", now,
	    &m), CERTD_OK);
	assert_null(m.subject_cn);
	assert_int_equal(m.n_sans, 1);
	assert_string_equal(m.sans[0], "nocn.example.test");
	assert_string_equal(m.issuer_cn, "certd Test Intermediate");
	cert_meta_clear(&m);

	/* Other SAN types are skipped, even when long; IPv6 as text. */
	assert_int_equal(check_files("leaf-longsan.pem int.pem",
	    "leaf-longsan.key", now, &m), CERTD_OK);
	assert_int_equal(m.n_sans, 3);
	assert_string_equal(m.sans[0], "longsan.example.test");
	assert_string_equal(m.sans[1], "alt.longsan.example.test");
	assert_string_equal(m.sans[2], "::1");
	cert_meta_clear(&m);

	/* A root: no SANs at all, issuer is itself. */
	assert_int_equal(check_files("ca.pem", "ca.key", now, &m), CERTD_OK);
	assert_string_equal(m.subject_cn, "certd Test Root");
	assert_int_equal(m.n_sans, 0);
	assert_null(m.sans);
	assert_string_equal(m.issuer_cn, "certd Test Root");
	assert_string_equal(m.issuer_dn, "CN=certd Test Root,O=certd");
	cert_meta_clear(&m);

	/* Failure leaves whatever the caller had there cleared. */
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(check_files("garbage.pem", "leaf-rsa.key", now, &m),
	    CERTD_ERR_CERT_INVALID);
	assert_null(m.subject_cn);
	assert_null(m.serial);
	assert_int_equal(m.n_sans, 0);
	assert_int_equal(m.fingerprint[0], '\0');
}

static void
test_meta_copy(void **state)
{
	struct cert_meta	 a, b;
	size_t			 i;

	(void)state;
	assert_int_equal(check_files("leaf-rsa.full.pem", "leaf-rsa.key",
	    time(NULL), &a), CERTD_OK);
	assert_int_equal(cert_meta_copy(&b, &a), CERTD_OK);
	assert_ptr_not_equal(a.subject_cn, b.subject_cn);
	assert_ptr_not_equal(a.sans, b.sans);
	assert_ptr_not_equal(a.issuer_dn, b.issuer_dn);
	assert_ptr_not_equal(a.serial, b.serial);
	assert_ptr_not_equal(a.key_algorithm, b.key_algorithm);
	assert_int_equal(a.n_sans, b.n_sans);
	for (i = 0; i < a.n_sans; i++) {
		assert_ptr_not_equal(a.sans[i], b.sans[i]);
		assert_string_equal(a.sans[i], b.sans[i]);
	}
	assert_string_equal(a.fingerprint, b.fingerprint);
	assert_int_equal(a.not_before, b.not_before);
	assert_int_equal(a.not_after, b.not_after);
	assert_int_equal(a.key_bits, b.key_bits);
	assert_int_equal(a.chain_len, 3);
	assert_int_equal(b.chain_len, 3);

	/* The copy outlives the original (ASan would see a use after free). */
	cert_meta_clear(&a);
	assert_string_equal(b.subject_cn, "www.example.test");
	assert_string_equal(b.sans[3], "10.0.0.1");
	assert_string_equal(b.issuer_cn, "certd Test Intermediate");

	/* NULL members copy as NULL. */
	assert_int_equal(cert_meta_copy(&a, &b), CERTD_OK);
	cert_meta_clear(&b);
	free(a.subject_cn);
	a.subject_cn = NULL;
	assert_int_equal(cert_meta_copy(&b, &a), CERTD_OK);
	assert_null(b.subject_cn);
	cert_meta_clear(&a);
	cert_meta_clear(&b);

	/* An empty struct copies to an empty struct. */
	assert_int_equal(cert_meta_copy(&b, &a), CERTD_OK);
	assert_null(b.sans);
	assert_int_equal(b.n_sans, 0);
	cert_meta_clear(&b);
}

static void
test_meta_clear(void **state)
{
	struct cert_meta	 m;

	(void)state;
	memset(&m, 0, sizeof(m));
	cert_meta_clear(&m);
	cert_meta_clear(&m);
	cert_meta_clear(NULL);
	assert_null(m.sans);
}

static void
test_sha256(void **state)
{
	static const unsigned char	 abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	static const unsigned char	 empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
		0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
		0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
		0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	unsigned char			 out[32];

	(void)state;
	assert_int_equal(cert_sha256("abc", 3, out), 0);
	assert_memory_equal(out, abc, 32);
	assert_int_equal(cert_sha256("", 0, out), 0);
	assert_memory_equal(out, empty, 32);
	assert_int_equal(cert_sha256(NULL, 0, out), 0);
	assert_memory_equal(out, empty, 32);
}

/*
 * cert_fingerprint_pem: the leaf's fingerprint as cert_check has it, from
 * the chain text (not NUL-terminated); cert_fingerprint_der of bytes;
 * text without a certificate refused.
 */
static void
test_fingerprint(void **state)
{
	struct cert_meta	 m;
	struct text		 chain = load("leaf-rsa.pem int.pem");
	struct text		 key = load("leaf-rsa.key");
	char			 fp[CERT_FINGERPRINT_LEN + 1];

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(check_text(&chain, &key, (int64_t)time(NULL), &m), 0);
	assert_int_equal(cert_fingerprint_pem(chain.data, chain.len, fp), 0);
	assert_string_equal(fp, m.fingerprint);
	assert_int_equal(cert_fingerprint_pem(key.data, key.len, fp),
	    CERTD_ERR_CERT_INVALID);
	assert_string_equal(fp, "");
	assert_int_equal(cert_fingerprint_pem("not PEM", 7, fp),
	    CERTD_ERR_CERT_INVALID);
	assert_int_equal(cert_fingerprint_pem("", 0, fp),
	    CERTD_ERR_CERT_INVALID);
	assert_int_equal(cert_fingerprint_der("", 0, fp),
	    CERTD_ERR_CERT_INVALID);
	assert_int_equal(cert_fingerprint_der("abc", 3, fp), 0);
	assert_string_equal(fp, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	cert_meta_clear(&m);
	text_free(&chain);
	text_free(&key);
}

static void
test_random_wipe(void **state)
{
	unsigned char	a[32], b[32], zero[32];

	(void)state;
	memset(zero, 0, sizeof(zero));
	assert_int_equal(cert_random(a, sizeof(a)), 0);
	assert_int_equal(cert_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(cert_random(a, 0), 0);

	util_wipe(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(a));
	util_wipe(NULL, 0);
}

/* AES-256-GCM boxes: round trip, fresh nonces, and every kind of tamper. */
static void
test_seal(void **state)
{
	unsigned char	 key[CERT_SEAL_KEY_LEN], other[CERT_SEAL_KEY_LEN];
	unsigned char	*box, *box2, *copy;
	const char	 pt[] = "-----BEGIN PRIVATE KEY-----\nsecret\n";
	const char	 aad[] = "certd-key-v1\0team\0\0\0\0\0\0\0\0\1";
	char		*out;
	size_t		 len, len2, olen, i;

	(void)state;
	assert_int_equal(cert_random(key, sizeof(key)), 0);
	memcpy(other, key, sizeof(other));
	other[31] ^= 0x80;

	assert_int_equal(cert_seal(key, aad, sizeof(aad), pt, strlen(pt), &box,
	    &len), 0);
	assert_int_equal(len, strlen(pt) + CERT_SEAL_OVERHEAD);
	assert_null(memmem(box, len, "secret", 6));
	assert_int_equal(cert_unseal(key, aad, sizeof(aad), box, len, &out,
	    &olen), 0);
	assert_int_equal(olen, strlen(pt));
	assert_string_equal(out, pt);		/* NUL-terminated */
	util_wipe(out, olen);
	free(out);

	/* the same plaintext twice: another nonce, another box */
	assert_int_equal(cert_seal(key, aad, sizeof(aad), pt, strlen(pt),
	    &box2, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_not_equal(box, box2, CERT_SEAL_NONCE_LEN);
	assert_memory_not_equal(box + CERT_SEAL_NONCE_LEN,
	    box2 + CERT_SEAL_NONCE_LEN, len - CERT_SEAL_NONCE_LEN);
	free(box2);

	/* wrong key, wrong aad, any flipped bit, any truncation */
	assert_int_equal(cert_unseal(other, aad, sizeof(aad), box, len, &out,
	    &olen), CERTD_ERR_STORAGE);
	assert_null(out);
	assert_int_equal(cert_unseal(key, aad, sizeof(aad) - 1, box, len,
	    &out, &olen), CERTD_ERR_STORAGE);
	assert_int_equal(cert_unseal(key, NULL, 0, box, len, &out, &olen),
	    CERTD_ERR_STORAGE);
	assert_non_null(copy = malloc(len));
	for (i = 0; i < len; i++) {
		memcpy(copy, box, len);
		copy[i] ^= 0x01;
		assert_int_equal(cert_unseal(key, aad, sizeof(aad), copy, len,
		    &out, &olen), CERTD_ERR_STORAGE);
		assert_null(out);
	}
	for (i = 0; i < len; i++)
		assert_int_equal(cert_unseal(key, aad, sizeof(aad), box, i,
		    &out, &olen), CERTD_ERR_STORAGE);
	free(copy);
	free(box);

	/* an empty plaintext still gets a nonce and a tag */
	assert_int_equal(cert_seal(key, NULL, 0, "", 0, &box, &len), 0);
	assert_int_equal(len, CERT_SEAL_OVERHEAD);
	assert_int_equal(cert_unseal(key, NULL, 0, box, len, &out, &olen), 0);
	assert_int_equal(olen, 0);
	assert_string_equal(out, "");
	free(out);
	free(box);
}

/* Lengths are honoured: bytes past them are never looked at. */
static void
test_not_nul_terminated(void **state)
{
	struct cert_meta	 m;
	struct text		 c, k;
	int64_t			 now = time(NULL);

	(void)state;
	c = load("leaf-rsa.chain.pem");
	k = load("leaf-rsa.key");
	text_append_str(&c, "-----BEGIN GARBAGE-----\n");
	text_append_str(&k, "trailing junk, not part of the key");
	assert_int_equal(cert_check(c.data, c.len - 24, k.data,
	    k.len - 34, now, &m, NULL, 0), CERTD_OK);
	assert_int_equal(m.chain_len, 2);
	cert_meta_clear(&m);
	text_free(&c);
	text_free(&k);

	/* A block cut off by the length is not a block. */
	c = load("leaf-rsa.pem");
	k = load("leaf-rsa.key");
	assert_int_equal(cert_check(c.data, c.len - 3, k.data, k.len, now,
	    &m, NULL, 0), CERTD_ERR_CERT_INVALID);
	assert_int_equal(cert_check(c.data, c.len, k.data, k.len - 3, now,
	    &m, NULL, 0), CERTD_ERR_KEY_INVALID);
	text_free(&c);
	text_free(&k);
}

/* `names' loaded with every LF turned into CRLF. */
static struct text
load_crlf(const char *names)
{
	struct text	 t, raw = load(names);
	size_t		 i;

	t.data = malloc(2 * raw.len + 1);
	assert_non_null(t.data);
	for (i = 0, t.len = 0; i < raw.len; i++) {
		if (raw.data[i] == '\n')
			t.data[t.len++] = '\r';
		t.data[t.len++] = raw.data[i];
	}
	text_free(&raw);
	t.data = realloc(t.data, t.len);	/* exact size, for ASan */
	assert_non_null(t.data);
	return t;
}

/* PEM pasted from Windows, and blank lines around blocks. */
static void
test_crlf(void **state)
{
	struct text	 c, k;
	int64_t		 now = time(NULL);

	(void)state;
	c = load_crlf("leaf-rsa.chain.pem");
	text_replace(&c, "-----BEGIN", "\r\n\r\n-----BEGIN");
	k = load_crlf("leaf-rsa.key");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_free(&k);
	k = load_crlf("leaf-ec.key");
	assert_int_equal(check_text(&c, &k, now, NULL),
	    CERTD_ERR_KEY_MISMATCH);
	text_free(&c);
	text_free(&k);
	c = load_crlf("leaf-ec.pem");
	k = load_crlf("leaf-ec.key");
	assert_int_equal(check_text(&c, &k, now, NULL), CERTD_OK);
	text_free(&c);
	text_free(&k);
}

/* DER: read the length at *pos (after the tag), advance past it. */
static size_t
der_len(const unsigned char *p, size_t *pos)
{
	size_t	n = p[(*pos)++], len = 0;

	if (n < 0x80)
		return n;
	for (n &= 0x7f; n > 0; n--)
		len = (len << 8) | p[(*pos)++];
	return len;
}

/* DER: append tag and length (up to 2^24 - 1). */
static void
der_head(struct text *t, unsigned char tag, size_t len)
{
	unsigned char	h[5];
	size_t		n = 0;

	h[n++] = tag;
	if (len < 0x80)
		h[n++] = (unsigned char)len;
	else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = 0x83;
		h[n++] = (unsigned char)(len >> 16);
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	}
	text_append(t, (const char *)h, n);
}

/*
 * The PEM of leaf-rsa.pem with its signature replaced by sigbytes bytes
 * (0x5a): a signature as long as a huge issuer modulus, so that GnuTLS
 * goes as far as the modular exponentiation with that issuer's key.
 */
static void
leaf_long_sig(struct text *out, size_t sigbytes)
{
	struct text		 leaf = load("leaf-rsa.pem"), der = { NULL, 0 };
	struct text		 body = { NULL, 0 }, sig = { NULL, 0 };
	gnutls_x509_crt_t	 crt;
	gnutls_datum_t		 d, raw, pem;
	size_t			 pos = 1, start, len;

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	d.data = (unsigned char *)leaf.data;
	d.size = (unsigned)leaf.len;
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM),
	    0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER,
	    &raw), 0);
	/* SEQUENCE { tbsCertificate, signatureAlgorithm, BIT STRING } */
	(void)der_len(raw.data, &pos);
	start = pos;
	pos++;
	pos += der_len(raw.data, &pos);		/* tbsCertificate */
	pos++;
	pos += der_len(raw.data, &pos);		/* signatureAlgorithm */
	text_append(&body, (const char *)raw.data + start, pos - start);
	der_head(&sig, 0x03, sigbytes + 1);
	text_append(&sig, "", 1);		/* no unused bits */
	for (len = 0; len < sigbytes; len++)
		text_append(&sig, "\x5a", 1);
	der_head(&der, 0x30, body.len + sig.len);
	text_append(&der, body.data, body.len);
	text_append(&der, sig.data, sig.len);
	d.data = (unsigned char *)der.data;
	d.size = (unsigned)der.len;
	assert_int_equal(gnutls_pem_base64_encode2("CERTIFICATE", &d, &pem), 0);
	text_append(out, (const char *)pem.data, pem.size);
	gnutls_free(pem.data);
	gnutls_free(raw.data);
	gnutls_x509_crt_deinit(crt);
	text_free(&sig);
	text_free(&body);
	text_free(&der);
	text_free(&leaf);
}

/*
 * leaf-rsa.pem, its signature as long as the modulus, followed by a
 * made-up issuer of it: int's subject DN, CA and keyCertSign, and an RSA
 * key of a modulus of mbits and a public exponent of ebits (both odd, top
 * bit set).  Its own signature (by leaf-rsa.key) is never checked: it is
 * the chain's last link.
 */
static struct text
costly_chain(unsigned mbits, unsigned ebits)
{
	struct text		 leaf = load("leaf-rsa.pem"), key = load("leaf-rsa.key");
	struct text		 out = { NULL, 0 };
	gnutls_x509_crt_t	 lcrt, ca;
	gnutls_pubkey_t		 pub;
	gnutls_privkey_t	 priv;
	gnutls_datum_t		 d, m, e, dn, pem;
	unsigned char		 serial[1] = { 7 };
	time_t			 now = time(NULL);

	m.size = mbits / 8;
	e.size = ebits / 8;
	assert_non_null(m.data = malloc(m.size));
	assert_non_null(e.data = malloc(e.size));
	memset(m.data, 0xa5, m.size);
	memset(e.data, 0x5b, e.size);
	m.data[0] |= 0x80;
	m.data[m.size - 1] |= 1;
	e.data[0] |= 0x80;
	e.data[e.size - 1] |= 1;

	assert_int_equal(gnutls_x509_crt_init(&lcrt), 0);
	d.data = (unsigned char *)leaf.data;
	d.size = (unsigned)leaf.len;
	assert_int_equal(gnutls_x509_crt_import(lcrt, &d, GNUTLS_X509_FMT_PEM),
	    0);
	assert_int_equal(gnutls_x509_crt_get_issuer_dn3(lcrt, &dn, 0), 0);

	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_rsa_raw(pub, &m, &e), 0);
	assert_int_equal(gnutls_privkey_init(&priv), 0);
	d.data = (unsigned char *)key.data;
	d.size = (unsigned)key.len;
	assert_int_equal(gnutls_privkey_import_x509_raw(priv, &d,
	    GNUTLS_X509_FMT_PEM, NULL, 0), 0);

	assert_int_equal(gnutls_x509_crt_init(&ca), 0);
	assert_int_equal(gnutls_x509_crt_set_version(ca, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(ca, serial, 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(ca, now - 3600),
	    0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(ca,
	    now + 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn(ca, (const char *)dn.data,
	    NULL), 0);
	assert_int_equal(gnutls_x509_crt_set_pubkey(ca, pub), 0);
	assert_int_equal(gnutls_x509_crt_set_basic_constraints(ca, 1, -1), 0);
	assert_int_equal(gnutls_x509_crt_set_key_usage(ca,
	    GNUTLS_KEY_KEY_CERT_SIGN), 0);
	assert_int_equal(gnutls_x509_crt_privkey_sign(ca, ca, priv,
	    GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(ca, GNUTLS_X509_FMT_PEM,
	    &pem), 0);

	leaf_long_sig(&out, m.size);
	text_append(&out, (const char *)pem.data, pem.size);
	gnutls_free(pem.data);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(lcrt);
	gnutls_privkey_deinit(priv);
	gnutls_pubkey_deinit(pub);
	free(m.data);
	free(e.data);
	text_free(&leaf);
	text_free(&key);
	return out;
}

/*
 * An issuer whose key would make verification cost half a minute (a 64
 * Kbit modulus and a 128 Kbit exponent: 33 s here without the check) is
 * refused before GnuTLS verifies anything with it, as is an exponent over
 * 64 bits or a modulus over CERTD_RSA_BITS_MAX bits.  The alarm is a
 * liveness guard, not a timing: the refusal takes milliseconds, even
 * under valgrind; without the check the test dies of SIGALRM.
 */
static void
test_chain_costly_key(void **state)
{
	static const unsigned	sizes[][2] = {
		{ 65536, 131072 }, { 2048, 72 }, { CERTD_RSA_BITS_MAX + 8, 24 },
	};
	struct text		c, k = load("leaf-rsa.key");
	size_t			i;

	(void)state;
	signal(SIGALRM, SIG_DFL);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		c = costly_chain(sizes[i][0], sizes[i][1]);
		alarm(10);
		assert_int_equal(check_text(&c, &k, time(NULL), NULL),
		    CERTD_ERR_CHAIN_INVALID);
		alarm(0);
		text_free(&c);
	}
	text_free(&k);
}

/* --- explanatory text, normal form, reasons (issue 16) ------------------- */

/* cert_check() on texts with its reason into why. */
static int
check_why(const struct text *cert, const struct text *key, int64_t now,
    char why[CERT_WHY_MAX])
{
	struct cert_meta	m;
	int			rv;

	rv = cert_check(cert->data, cert->len, key->data, key->len, now, &m,
	    why, CERT_WHY_MAX);
	cert_meta_clear(&m);
	return rv;
}

static int
check_files_why(const char *certs, const char *key, char why[CERT_WHY_MAX])
{
	struct text	c = load(certs), k = load(key);
	int		rv;

	rv = check_why(&c, &k, time(NULL), why);
	text_free(&c);
	text_free(&k);
	return rv;
}

/* why holds `part' (the test prints both when it does not). */
static void
assert_why(const char *why, const char *part)
{
	if (strstr(why, part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, part);
}

/* Normal form of a text; NULL out means "normal already" and copies it. */
static int
normal(const struct text *t, int kind, struct text *out, char *why)
{
	char	*n;
	size_t	 len;
	int	 rv;

	out->data = NULL;
	out->len = 0;
	rv = pem_normalize(t->data, t->len, kind, &n, &len, why,
	    CERT_WHY_MAX);
	if (rv != 0)
		return rv;
	if (n == NULL)
		text_append(out, t->data, t->len);
	else {
		text_append(out, n, len);
		free(n);
	}
	return 0;
}

static void
assert_text_equal(const struct text *a, const struct text *b)
{
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
		fail_msg("texts differ:\n%.*s\n---\n%.*s", (int)a->len,
		    a->data, (int)b->len, b->data);
}

/*
 * Standard output of `sh -c script' run with $1 the PKI directory, into
 * *t, with a NUL after it.  Returns the exit status.
 */
static int
sh_out(const char *script, struct text *t)
{
	char	*argv[5], *out;
	int	 st;

	out = malloc(65536);
	assert_non_null(out);
	argv[0] = (char *)(uintptr_t)"sh";
	argv[1] = (char *)(uintptr_t)"-c";
	argv[2] = (char *)(uintptr_t)script;
	argv[3] = (char *)(uintptr_t)"sh";
	argv[4] = pki_dir;
	{
		char	*full[6] = { argv[0], argv[1], argv[2], argv[3],
			    argv[4], NULL };

		st = run(full, out, 65536);
	}
	/* NUL-terminated (not counted in len), for strstr. */
	t->data = NULL;
	t->len = 0;
	text_append(t, out, strlen(out) + 1);
	t->len--;
	free(out);
	return st;
}

static int
have_openssl(void)
{
	struct text	t;
	int		st = sh_out("command -v openssl", &t);

	text_free(&t);
	return st == 0;
}

/* The pfx of leaf-rsa with int and ca, as `openssl pkcs12' reads it out. */
#define PKCS12_EXPORT							\
	"cd \"$1\" && cat int.pem ca.pem | openssl pkcs12 -export "	\
	"-in leaf-rsa.pem -inkey leaf-rsa.key -certfile /dev/stdin "	\
	"-name 'www export' -passout pass:x | openssl pkcs12 "		\
	"-passin pass:x -nodes "

/* `names' with every LF turned into CRLF. */
static struct text
crlf(const struct text *raw)
{
	struct text	t = { NULL, 0 };
	size_t		i;

	for (i = 0; i < raw->len; i++) {
		if (raw->data[i] == '\n')
			text_append(&t, "\r", 1);
		text_append(&t, raw->data + i, 1);
	}
	return t;
}

/*
 * What `openssl pkcs12 -in x.pfx -nodes' writes (a "Bag Attributes" and
 * subject= and issuer= lines before each block; the usual export from IIS
 * and Windows stores) is accepted as certificate and as key, CRLF or not,
 * the chain ending in its self-signed root; stored as the blocks alone.
 */
static void
test_pkcs12(void **state)
{
	struct cert_meta	 m;
	struct text		 c, k, all, n, full, x;
	char			 why[CERT_WHY_MAX];

	(void)state;
	if (!have_openssl()) {
		fprintf(stderr, "openssl not found (Debian: openssl)\n");
		skip();
		return;
	}
	assert_int_equal(sh_out(PKCS12_EXPORT "-nokeys", &c), 0);
	assert_int_equal(sh_out(PKCS12_EXPORT "-nocerts", &k), 0);
	assert_int_equal(sh_out(PKCS12_EXPORT, &all), 0);
	/* The fixture is what the issue describes. */
	assert_non_null(strstr(c.data, "Bag Attributes"));
	assert_non_null(strstr(c.data, "subject=CN = www.example.test"));
	assert_non_null(strstr(c.data, "issuer=O = certd, CN = certd Test Root"));
	assert_non_null(strstr(k.data, "Key Attributes"));

	assert_int_equal(cert_check(c.data, c.len, k.data, k.len, time(NULL),
	    &m, why, sizeof(why)), CERTD_OK);
	assert_int_equal(m.chain_len, 3);	/* leaf, int, root last */
	assert_string_equal(m.subject_cn, "www.example.test");
	cert_meta_clear(&m);

	/* Stored as the blocks only: the three PEM files, byte for byte. */
	full = load("leaf-rsa.full.pem");
	assert_int_equal(normal(&c, PEM_CHAIN, &n, why), 0);
	assert_text_equal(&n, &full);
	text_free(&n);
	assert_int_equal(normal(&k, PEM_KEY, &n, why), 0);
	assert_memory_equal(n.data, "-----BEGIN PRIVATE KEY-----\n", 28);
	assert_null(memmem(n.data, n.len, "Attributes", 10));
	assert_int_equal(check_text(&full, &n, time(NULL), NULL), CERTD_OK);
	text_free(&n);

	/* CRLF, as saved on Windows: the same normal form. */
	x = crlf(&c);
	assert_int_equal(normal(&x, PEM_CHAIN, &n, why), 0);
	assert_text_equal(&n, &full);
	text_free(&n);
	assert_int_equal(check_text(&x, &k, time(NULL), NULL), CERTD_OK);
	text_free(&x);
	x = crlf(&k);
	assert_int_equal(check_text(&c, &x, time(NULL), NULL), CERTD_OK);
	text_free(&x);

	/* The whole output holds the key: not a certificate, nor a key. */
	assert_int_equal(check_why(&all, &k, time(NULL), why),
	    CERTD_ERR_CERT_INVALID);
	assert_why(why, "block 4 is PRIVATE KEY, not CERTIFICATE (a private "
	    "key goes in private_key)");
	assert_int_equal(check_why(&c, &all, time(NULL), why),
	    CERTD_ERR_KEY_INVALID);
	assert_why(why, "second block (CERTIFICATE)");
	text_free(&all);
	text_free(&full);
	text_free(&c);
	text_free(&k);
}

/*
 * `openssl ecparam -genkey' writes an EC PARAMETERS block before the key:
 * accepted, and the normal form is the key block alone.
 */
static void
test_ecparam(void **state)
{
	struct text	 c, k, out, n;
	char		 why[CERT_WHY_MAX], *split;

	(void)state;
	if (!have_openssl()) {
		skip();
		return;
	}
	assert_int_equal(sh_out("k=$(openssl ecparam -genkey -name prime256v1)"
	    " && printf '%s\\n' \"$k\" | openssl req -new -x509 -key /dev/stdin"
	    " -subj /CN=ecparam.example.test -days 2 && printf '%s\\n' \"$k\"",
	    &out), 0);
	split = strstr(out.data, "-----BEGIN EC PARAMETERS-----");
	assert_non_null(split);
	c.data = NULL;
	c.len = 0;
	text_append(&c, out.data, (size_t)(split - out.data));
	k.data = NULL;
	k.len = 0;
	text_append_str(&k, split);
	if (check_why(&c, &k, time(NULL), why) != CERTD_OK)
		fail_msg("%s\n%s", why, out.data);
	assert_int_equal(normal(&k, PEM_KEY, &n, why), 0);
	assert_memory_equal(n.data, "-----BEGIN EC PRIVATE KEY-----\n", 31);
	assert_null(memmem(n.data, n.len, "PARAMETERS", 10));
	assert_int_equal(check_why(&c, &n, time(NULL), why), CERTD_OK);
	text_free(&n);
	text_free(&c);
	text_free(&k);
	text_free(&out);
}

/* Explanatory text is skipped; what is not a certificate still is not. */
static void
test_explanatory(void **state)
{
	struct text	 c, k = load("leaf-rsa.key"), t;
	char		 why[CERT_WHY_MAX];
	int64_t		 now = time(NULL);

	(void)state;
	/* A byte order mark, a curl-bundle title, words between blocks. */
	c.data = NULL;
	c.len = 0;
	text_append_str(&c, "\xef\xbb\xbf" "certd Test Leaf\n"
	    "===============================================\n");
	text_load_into(&c, "leaf-rsa.pem");
	text_append_str(&c, "\t friendlyName: \xc1" "f (not UTF-8)\r\n");
	text_load_into(&c, "int.pem");
	text_append_str(&c, "trailing words\n");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_OK);
	text_free(&c);

	/* A private key block in the certificate text. */
	c = load("mixed.pem");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "line 22: block 2 is RSA PRIVATE KEY, not CERTIFICATE");
	text_free(&c);

	/* Text and no block at all. */
	c.data = NULL;
	c.len = 0;
	text_append_str(&c, "Bag Attributes\nsubject=CN = www.example.test\n");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "holds no PEM block");
	text_free(&c);

	/* A block that lost its BEGIN line (garbage.pem), or its END line. */
	c = load("garbage.pem");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "line 22: base64 outside the PEM blocks");
	text_free(&c);
	c = load("int.pem leaf-rsa.pem");
	text_replace(&c, "-----END CERTIFICATE-----\n", "");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "line 1: a block without its END line (the next BEGIN "
	    "line comes first)");
	text_free(&c);
	c = load("leaf-rsa.pem");
	text_append_str(&c, "-----END CERTIFICATE-----\n");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "line 22: a damaged PEM boundary");
	text_free(&c);
	c = load("leaf-rsa.pem");
	text_append_str(&c, "subject= -----BEGIN CERTIFICATE-----\n");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	text_free(&c);

	/* Binary, not text, around the blocks. */
	c = load("leaf-rsa.pem");
	text_append(&c, "\x30\x82\x01\x00\n", 5);
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "a control character");
	text_free(&c);

	/* Other blocks: OpenSSL's trusted form, a CRL. */
	c = load("leaf-rsa.pem");
	text_replace(&c, "BEGIN CERTIFICATE", "BEGIN TRUSTED CERTIFICATE");
	text_replace(&c, "END CERTIFICATE", "END TRUSTED CERTIFICATE");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "block 1 is TRUSTED CERTIFICATE, not CERTIFICATE");
	text_free(&c);
	t = load("int.pem");
	text_replace(&t, "BEGIN CERTIFICATE", "BEGIN X509 CRL");
	text_replace(&t, "END CERTIFICATE", "END X509 CRL");
	c = load("leaf-rsa.pem");
	text_append(&c, t.data, t.len);
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_CERT_INVALID);
	assert_why(why, "block 2 is X509 CRL, not CERTIFICATE");
	text_free(&c);
	text_free(&t);

	/* The key: text around it is fine, an encrypted one is not. */
	c = load("leaf-rsa.pem");
	text_free(&k);
	text_append_str(&k, "Bag Attributes\n    localKeyID: 01 00 00 00\n"
	    "Key Attributes: <No Attributes>\n");
	text_load_into(&k, "leaf-rsa-pkcs8.key");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_OK);
	text_free(&k);
	k = load("encrypted.key");
	assert_int_equal(check_why(&c, &k, now, why), CERTD_ERR_KEY_INVALID);
	assert_why(why, "is encrypted");
	text_free(&k);
	text_free(&c);
}

/* Normal form: LF, the blocks only, base64 in lines of 64; idempotent. */
static void
test_normalize(void **state)
{
	struct text	 t, n, want;
	char		 why[CERT_WHY_MAX], *out;
	size_t		 len, i;

	(void)state;
	/* Normal already: nothing is made. */
	t = load("leaf-rsa.chain.pem");
	assert_int_equal(pem_normalize(t.data, t.len, PEM_CHAIN,
	    &out, &len, why, sizeof(why)), 0);
	assert_null(out);
	want = t;

	/* Base64 on one line, blank lines and spaces around the blocks. */
	t.data = NULL;
	t.len = 0;
	text_append_str(&t, "\n  \n");
	for (i = 0; i < want.len; i++)
		if (want.data[i] != '\n' || (i + 1 < want.len &&
		    want.data[i + 1] == '-') || (i > 0 &&
		    want.data[i - 1] == '-'))
			text_append(&t, want.data + i, 1);
	text_replace(&t, "-----\n-----BEGIN", "-----\n \t\n-----BEGIN");
	assert_non_null(memmem(t.data, t.len, "\n \t\n", 4));
	assert_int_equal(normal(&t, PEM_CHAIN, &n, why), 0);
	assert_text_equal(&n, &want);
	text_free(&t);
	/* ...and the normal form is normal. */
	assert_int_equal(pem_normalize(n.data, n.len, PEM_CHAIN,
	    &out, &len, why, sizeof(why)), 0);
	assert_null(out);
	text_free(&n);

	/* No final line break. */
	t.data = NULL;
	t.len = 0;
	text_append(&t, want.data, want.len - 1);
	assert_int_equal(normal(&t, PEM_CHAIN, &n, why), 0);
	assert_text_equal(&n, &want);
	text_free(&n);
	text_free(&t);
	text_free(&want);

	/* Refusals carry cert_check's reasons. */
	t = load("garbage.pem");
	assert_int_equal(pem_normalize(t.data, t.len, PEM_CHAIN,
	    &out, &len, why, sizeof(why)), CERTD_ERR_CERT_INVALID);
	assert_why(why, "base64 outside the PEM blocks");
	assert_int_equal(pem_normalize(t.data, t.len, PEM_KEY,
	    &out, &len, why, sizeof(why)), CERTD_ERR_KEY_INVALID);
	text_free(&t);

	/* A normal form over the limit: one 65,000-character line. */
	t.data = NULL;
	t.len = 0;
	text_append_str(&t, "-----BEGIN CERTIFICATE-----\n");
	for (i = 0; i < 65000 / 8; i++)
		text_append_str(&t, "AAAAAAAA");
	text_append_str(&t, "\n-----END CERTIFICATE-----\n");
	assert_true(t.len <= CERTD_CERT_MAX);
	assert_int_equal(pem_normalize(t.data, t.len, PEM_CHAIN,
	    &out, &len, why, sizeof(why)), CERTD_ERR_CERT_INVALID);
	assert_why(why, "once normalized");
	text_free(&t);
}

/*
 * Every refusal says which certificate of the chain (index and CN) or which
 * line, and which check; a chain given out of order is the chain error,
 * not a key mismatch.
 */
static void
test_reasons(void **state)
{
	struct text	 c, k;
	char		 why[CERT_WHY_MAX];

	(void)state;
	/* Leaf last, intermediate first: the order is what is wrong. */
	assert_int_equal(check_files_why("chain-reversed.pem", "leaf-rsa.key",
	    why), CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "certificate 2 (CN=www.example.test) holds the "
	    "private key's public key, so it is the leaf: the leaf must come "
	    "first");
	assert_int_equal(check_files_why("ca.pem int.pem leaf-rsa.pem",
	    "leaf-rsa.key", why), CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "certificate 3 (CN=www.example.test)");
	assert_int_equal(check_files_why("int.pem leaf-rsa.pem ca.pem",
	    "leaf-rsa.key", why), CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "certificate 2 (CN=www.example.test)");

	/* In order, with another link's key or a stranger's: mismatch. */
	assert_int_equal(check_files_why("leaf-rsa.chain.pem", "int.key", why),
	    CERTD_ERR_KEY_MISMATCH);
	assert_why(why, "is the key of certificate 2 (CN=certd Test "
	    "Intermediate), not of the leaf, certificate 1 "
	    "(CN=www.example.test)");
	assert_int_equal(check_files_why("leaf-rsa.pem", "other.key", why),
	    CERTD_ERR_KEY_MISMATCH);
	assert_why(why, "is not the key of the leaf, certificate 1 "
	    "(CN=www.example.test)");

	/* Each chain check. */
	assert_int_equal(check_files_why("chain-wrong-issuer.pem",
	    "leaf-rsa.key", why), CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "certificate 1 (CN=www.example.test) is not issued by "
	    "the next one, certificate 2 (CN=certd Other Root)");
	assert_int_equal(check_files_why("leaf-rsa.pem leaf-rsa2.pem",
	    "leaf-rsa.key", why), CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "certificate 2 (CN=api.example.test)");
	c = tampered_leaf();
	text_load_into(&c, "int.pem");
	k = load("leaf-rsa.key");
	assert_int_equal(check_why(&c, &k, time(NULL), why),
	    CERTD_ERR_CHAIN_INVALID);
	assert_why(why, "the signature of certificate 1 (CN=www.example.test) "
	    "does not verify with the key of certificate 2 (CN=certd Test "
	    "Intermediate)");
	text_free(&c);
	text_free(&k);

	/* The dates, the key. */
	assert_int_equal(check_files_why("expired.pem", "expired.key", why),
	    CERTD_ERR_CERT_EXPIRED);
	assert_string_equal(why, "certificate 1, the leaf "
	    "(CN=expired.example.test), expired at 2021-01-01T00:00:00Z");
	assert_int_equal(check_files_why("notyet.pem", "notyet.key", why),
	    CERTD_ERR_CERT_NOT_YET);
	assert_string_equal(why, "certificate 1, the leaf "
	    "(CN=notyet.example.test), is valid from 2099-01-01T00:00:00Z");
	assert_int_equal(check_files_why("leaf-rsa.pem", "leaf-rsa.pem", why),
	    CERTD_ERR_KEY_INVALID);
	assert_why(why, "is a CERTIFICATE block, not RSA PRIVATE KEY");
	assert_int_equal(check_files_why("leaf-rsa.pem", "leaf-rsa.key "
	    "other.key", why), CERTD_ERR_KEY_INVALID);
	assert_why(why, "line 28: a second block (RSA PRIVATE KEY)");
	assert_int_equal(check_files_why("leaf-rsa.pem", "garbage.pem", why),
	    CERTD_ERR_KEY_INVALID);
	assert_why(why, "line 22: base64 outside");
	/* A reason never quotes the key. */
	k = load("leaf-rsa.key");
	text_replace(&k, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n");
	c = load("leaf-rsa.pem");
	assert_int_equal(check_why(&c, &k, time(NULL), why),
	    CERTD_ERR_KEY_INVALID);
	assert_string_equal(why, "line 2: a block's body holds more than "
	    "base64 (headers such as Proc-Type, or text)");
	text_free(&c);
	text_free(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_cert_invalid),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_key_invalid),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_chain_invalid),
		cmocka_unit_test(test_chain_valid),
		cmocka_unit_test(test_chain_costly_key),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_meta_copy),
		cmocka_unit_test(test_meta_clear),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_random_wipe),
		cmocka_unit_test(test_seal),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_pkcs12),
		cmocka_unit_test(test_ecparam),
		cmocka_unit_test(test_explanatory),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
