/* SPDX-License-Identifier: MIT */
/*
 * certctl: the command-line client of certd.  Every command but `token new`
 * talks to certd's Unix socket through libcertd (include/certd/certd.h):
 * ping, get, list, put, delete print a compact human form or, with --json,
 * one JSON object; watch prints one JSON object per event and line until
 * SIGINT or SIGTERM.  `token new` makes a fresh API token and prints it with
 * the line to add to the token file.
 *
 * Exit status: 0 success, 1 a failure reported by certd or the connection,
 * 2 a usage error.  Failures print one "certctl: ..." line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include <certd/certd.h>

#include "cert.h"
#include "tokens.h"
#include "util.h"

#define EXIT_USAGE	2
#define FP_SHORT	16	/* fingerprint characters in the list table */

static const char usage_text[] =
"usage: certctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
"\n"
"  ping\n"
"  get TEAM ID [--cert | --key]\n"
"  get TEAM --alias ALIAS [--cert | --key]\n"
"  list TEAM [--page N] [--page-size N]\n"
"  put TEAM --alias ALIAS --type TYPE --cert FILE --key FILE\n"
"  put TEAM --id ID [--alias ALIAS] [--type TYPE] [--cert FILE] [--key FILE]\n"
"  delete TEAM ID [--force]\n"
"  watch [TEAM] [--id ID]... [--alias ALIAS]... [--since REV] [--reconnect]\n"
"        [--with-pem]\n"
"  token new --name NAME --teams *|TEAM[,TEAM...] --role read|write\n"
"\n"
"  -s, --socket SOCKET  certd's socket (default: $CERTD_SOCKET, else\n"
"                       " CERTD_SOCKET_DEFAULT ")\n"
"  --json               machine output: one JSON object\n"
"\n"
"ping        check that certd answers; print its revision.\n"
"get         show a certificate (--cert or --key: print only that PEM).\n"
"list        list a team's certificates, ordered by id.\n"
"put         create a certificate, or with --id update it (omitted fields\n"
"            keep their value).  FILE - reads standard input.\n"
"delete      delete a certificate (--force: even when a watch binds it).\n"
"watch       print one JSON object per event and line until SIGINT or\n"
"            SIGTERM (--since: replay from a revision, 0 for the current\n"
"            state; --reconnect: reconnect and resume; --with-pem: include\n"
"            certificate and key text).\n"
"token new   print a fresh random token on the first line and, on the\n"
"            second, the line to append to certd's token file.\n";

/* Options every command accepts, after its own. */
struct global {
	const char	*socket;
	int		 json;
};

enum {
	OPT_JSON = 256,
	OPT_ALIAS,
	OPT_CERT,
	OPT_KEY,
	OPT_PAGE,
	OPT_PAGE_SIZE,
	OPT_ID,
	OPT_TYPE,
	OPT_FORCE,
	OPT_SINCE,
	OPT_RECONNECT,
	OPT_WITH_PEM,
};

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *f, ...)
{
	va_list	ap;

	fputs("certctl: ", stderr);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputs(" (certctl --help for usage)\n", stderr);
	return EXIT_USAGE;
}

static int __attribute__((format(printf, 1, 2)))
fail(const char *f, ...)
{
	va_list	ap;

	fputs("certctl: ", stderr);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* A failed libcertd call: server errors show their status code. */
static int
fail_call(struct certd_client *c, int r)
{
	if (r <= -100)
		return fail("%d %s", -r, certd_client_error(c));
	return fail("%s", certd_client_error(c));
}

static int
flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail("writing output: %s", strerror(errno));
	return 0;
}

/* Strict decimal, as certd parses ids; 0 is refused unless allow_zero. */
static int
parse_u64(const char *s, const char *what, int allow_zero, uint64_t *out)
{
	if (util_parse_u64(s, strlen(s), UINT64_MAX, out) != 0 ||
	    (!allow_zero && *out == 0))
		return usage_error("bad %s '%s'", what, s);
	return 0;
}

/* Handle an option every command shares; returns 0 if ch was one. */
static int
global_opt(int ch, struct global *g)
{
	switch (ch) {
	case 's':
		g->socket = optarg;
		return 0;
	case OPT_JSON:
		g->json = 1;
		return 0;
	}
	return -1;
}

/* getopt_long returned ch, ':' (argument missing) or '?' (unknown). */
static int
bad_option(const char *cmd, int ch, int argc, char *argv[])
{
	const char	*opt = "?";

	if (optind > 0 && optind - 1 < argc)
		opt = argv[optind - 1];
	return usage_error("%s%s%s %s", cmd, *cmd != '\0' ? ": " : "",
	    ch == ':' ? "missing argument for" : "unknown option", opt);
}

#define GLOBAL_LONGOPTS \
	{ "socket",	required_argument,	NULL, 's' }, \
	{ "json",	no_argument,		NULL, OPT_JSON }

/* ---------------------------------------------------------------------- */
/* JSON output */

/*
 * Set key to a copy of s (skipped when s is NULL).  jansson refuses text
 * that is not UTF-8: certd validates what it stores, so that is a protocol
 * error worth reporting rather than hiding.
 */
static int
jset_str(json_t *o, const char *key, const char *s)
{
	json_t	*v;

	if (s == NULL)
		return 0;
	if ((v = json_string(s)) == NULL)
		return -1;
	return json_object_set_new(o, key, v);
}

static int
jset_int(json_t *o, const char *key, json_int_t v)
{
	return json_object_set_new(o, key, json_integer(v));
}

/* uint64 ids and revisions: JSON integers up to INT64_MAX. */
static int
jset_u64(json_t *o, const char *key, uint64_t v)
{
	if (v > INT64_MAX)
		return -1;
	return jset_int(o, key, (json_int_t)v);
}

/* Wipe the text of a secret string member before the object goes. */
static void
jwipe(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (v != NULL && json_is_string(v))
		cert_wipe((char *)(uintptr_t)json_string_value(v),
		    json_string_length(v));
}

/* The metadata of a certificate; PEM and key only when with_pem. */
static json_t *
cert_json(const struct certd_cert *c, int with_pem)
{
	json_t	*o;

	if ((o = json_object()) == NULL)
		return NULL;
	if (jset_u64(o, "id", c->id) != 0 ||
	    jset_str(o, "alias", c->alias) != 0 ||
	    jset_str(o, "certificate_type", c->certificate_type) != 0 ||
	    jset_u64(o, "revision", c->revision) != 0 ||
	    jset_int(o, "not_after", c->not_after) != 0 ||
	    jset_str(o, "fingerprint_sha256", c->fingerprint_sha256) != 0)
		goto fail;
	if (with_pem && (jset_str(o, "certificate", c->certificate) != 0 ||
	    jset_str(o, "private_key", c->private_key) != 0))
		goto fail;
	return o;
fail:
	jwipe(o, "private_key");
	json_decref(o);
	return NULL;
}

/* Print o on one line and free it, wiping the text if it holds a key. */
static int
print_json(json_t *o, int secret)
{
	char	*s;
	int	 r = 0;

	if (o == NULL)
		return fail("cannot build JSON output (text is not UTF-8?)");
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (secret) {
		jwipe(o, "private_key");
		jwipe(json_object_get(o, "cert"), "private_key");
	}
	json_decref(o);
	if (s == NULL)
		return fail("out of memory");
	if (puts(s) == EOF)
		r = -1;
	if (secret)
		cert_wipe(s, strlen(s));
	free(s);
	if (r != 0 || flush_stdout() != 0)
		return fail("writing output: %s", strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Human output */

static void
print_time(const char *label, int64_t t)
{
	char	buf[24];

	util_time_iso(t, 1, buf);
	printf("%-19s %s\n", label, buf);
}

static const char *
str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

static void
print_cert_human(const struct certd_cert *c, const char *team)
{
	printf("%-19s %llu\n", "id", (unsigned long long)c->id);
	printf("%-19s %s\n", "team", str_or(c->team, team));
	printf("%-19s %s\n", "alias", str_or(c->alias, "-"));
	printf("%-19s %s\n", "certificate_type",
	    str_or(c->certificate_type, "-"));
	printf("%-19s %llu\n", "revision", (unsigned long long)c->revision);
	print_time("not_after", c->not_after);
	printf("%-19s %s\n", "fingerprint_sha256",
	    str_or(c->fingerprint_sha256, "-"));
	printf("%-19s %s\n", "private_key",
	    c->private_key != NULL ? "present" : "not readable");
}

/* ---------------------------------------------------------------------- */
/* Commands on the socket */

static struct certd_client *
connect_or_fail(const struct global *g)
{
	struct certd_client	*c;
	char			 err[512];

	if ((c = certd_connect(g->socket, err, sizeof(err))) == NULL)
		(void)fail("%s", err);
	return c;
}

static int
cmd_ping(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	json_t			*o;
	int			 ch, r;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1)
		if (global_opt(ch, g) != 0)
			return bad_option("ping", ch, argc, argv);
	if (optind != argc)
		return usage_error("ping takes no arguments");
	if ((c = connect_or_fail(g)) == NULL)
		return 1;
	if ((r = certd_ping(c)) != 0) {
		r = fail_call(c, r);
		goto out;
	}
	if (g->json) {
		o = json_object();
		if (o != NULL && (jset_str(o, "status", "pong") != 0 ||
		    jset_u64(o, "revision", certd_client_revision(c)) != 0)) {
			json_decref(o);
			o = NULL;
		}
		r = print_json(o, 0);
	} else {
		printf("pong (revision %llu)\n",
		    (unsigned long long)certd_client_revision(c));
		r = flush_stdout();
	}
out:
	certd_close(c);
	return r;
}

/* Print PEM text, adding the final newline when the text lacks one. */
static int
print_pem(const char *pem)
{
	size_t	len = strlen(pem);

	if (fwrite(pem, 1, len, stdout) != len ||
	    (len > 0 && pem[len - 1] != '\n' && putchar('\n') == EOF))
		return fail("writing output: %s", strerror(errno));
	return flush_stdout();
}

static int
cmd_get(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "alias",	required_argument,	NULL, OPT_ALIAS },
		{ "cert",	no_argument,		NULL, OPT_CERT },
		{ "key",	no_argument,		NULL, OPT_KEY },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	struct certd_cert	*cert = NULL;
	const char		*alias = NULL, *team;
	uint64_t		 id = 0;
	int			 ch, r, want_cert = 0, want_key = 0;
	json_t			*o;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ALIAS:
			alias = optarg;
			break;
		case OPT_CERT:
			want_cert = 1;
			break;
		case OPT_KEY:
			want_key = 1;
			break;
		default:
			if (global_opt(ch, g) != 0)
				return bad_option("get", ch, argc, argv);
		}
	}
	if (want_cert && want_key)
		return usage_error("get: --cert and --key exclude each other");
	if (alias != NULL ? argc - optind != 1 : argc - optind != 2)
		return usage_error("get: want TEAM ID or TEAM --alias ALIAS");
	team = argv[optind];
	if (alias == NULL && parse_u64(argv[optind + 1], "id", 0, &id) != 0)
		return EXIT_USAGE;
	if ((c = connect_or_fail(g)) == NULL)
		return 1;
	r = alias != NULL ? certd_get_alias(c, team, alias, &cert) :
	    certd_get(c, team, id, &cert);
	if (r != 0) {
		r = fail_call(c, r);
		goto out;
	}
	if (want_cert) {
		r = cert->certificate != NULL ? print_pem(cert->certificate) :
		    fail("certd sent no certificate text");
	} else if (want_key) {
		r = cert->private_key != NULL ? print_pem(cert->private_key) :
		    fail("no private key: this peer lacks the key permission");
	} else if (g->json) {
		o = cert_json(cert, 1);
		if (o != NULL && jset_str(o, "team",
		    str_or(cert->team, team)) != 0) {
			jwipe(o, "private_key");
			json_decref(o);
			o = NULL;
		}
		r = print_json(o, 1);
	} else {
		print_cert_human(cert, team);
		r = flush_stdout();
	}
out:
	certd_cert_free(cert);
	certd_close(c);
	return r;
}

static int
list_json(const struct certd_list *l)
{
	const struct certd_list_item	*it;
	json_t				*o, *a, *e;
	size_t				 i;

	o = json_object();
	a = json_array();
	if (o == NULL || a == NULL || json_object_set_new(o, "list", a) != 0) {
		json_decref(a);
		goto fail;
	}
	for (i = 0; i < l->n; i++) {
		it = &l->items[i];
		if ((e = json_object()) == NULL ||
		    json_array_append_new(a, e) != 0 ||
		    jset_u64(e, "id", it->id) != 0 ||
		    jset_str(e, "alias", it->alias) != 0 ||
		    jset_str(e, "certificate_type", it->certificate_type) != 0 ||
		    jset_u64(e, "revision", it->revision) != 0 ||
		    jset_int(e, "not_after", it->not_after) != 0 ||
		    jset_str(e, "fingerprint_sha256",
		    it->fingerprint_sha256) != 0)
			goto fail;
	}
	if (jset_u64(o, "page", l->page) != 0 ||
	    jset_u64(o, "page_size", l->page_size) != 0 ||
	    jset_u64(o, "total", l->total) != 0)
		goto fail;
	return print_json(o, 0);
fail:
	json_decref(o);
	return print_json(NULL, 0);
}

static int
list_human(const struct certd_list *l)
{
	const struct certd_list_item	*it;
	size_t				 i, wa = 5, wt = 4, n;
	char				 when[24];

	for (i = 0; i < l->n; i++) {
		it = &l->items[i];
		if ((n = strlen(str_or(it->alias, "-"))) > wa)
			wa = n;
		if ((n = strlen(str_or(it->certificate_type, "-"))) > wt)
			wt = n;
	}
	printf("%-6s %-*s %-*s %-8s %-20s %s\n", "ID", (int)wa, "ALIAS",
	    (int)wt, "TYPE", "REVISION", "NOT_AFTER", "FINGERPRINT");
	for (i = 0; i < l->n; i++) {
		it = &l->items[i];
		util_time_iso(it->not_after, 1, when);
		printf("%-6llu %-*s %-*s %-8llu %-20s %.*s\n",
		    (unsigned long long)it->id, (int)wa,
		    str_or(it->alias, "-"), (int)wt,
		    str_or(it->certificate_type, "-"),
		    (unsigned long long)it->revision, when, FP_SHORT,
		    str_or(it->fingerprint_sha256, "-"));
	}
	printf("page %llu, page size %llu, total %llu\n",
	    (unsigned long long)l->page, (unsigned long long)l->page_size,
	    (unsigned long long)l->total);
	return flush_stdout();
}

static int
cmd_list(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "page",	required_argument,	NULL, OPT_PAGE },
		{ "page-size",	required_argument,	NULL, OPT_PAGE_SIZE },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	struct certd_list	*l = NULL;
	uint64_t		 page = 0, page_size = 0;
	int			 ch, r;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_PAGE:
			if (parse_u64(optarg, "page", 0, &page) != 0)
				return EXIT_USAGE;
			break;
		case OPT_PAGE_SIZE:
			if (parse_u64(optarg, "page size", 0, &page_size) != 0)
				return EXIT_USAGE;
			break;
		default:
			if (global_opt(ch, g) != 0)
				return bad_option("list", ch, argc, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("list: want TEAM");
	if ((c = connect_or_fail(g)) == NULL)
		return 1;
	if ((r = certd_list(c, argv[optind], page, page_size, &l)) != 0)
		r = fail_call(c, r);
	else
		r = g->json ? list_json(l) : list_human(l);
	certd_list_free(l);
	certd_close(c);
	return r;
}

/*
 * Read a whole file ("-": standard input) of at most max bytes into a
 * NUL-terminated buffer.  Key files are wiped by the caller; partial reads
 * are wiped here.
 */
static int
read_file(const char *path, size_t max, char **out)
{
	FILE	*f;
	char	*buf;
	size_t	 len = 0, n;
	int	 e;

	*out = NULL;
	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "re")) == NULL)
		return fail("%s: %s", path, strerror(errno));
	if ((buf = malloc(max + 2)) == NULL) {
		if (f != stdin)
			fclose(f);
		return fail("out of memory");
	}
	/* Unbuffered, so stdio keeps no copy of a key. */
	setvbuf(f, NULL, _IONBF, 0);
	while (len <= max && (n = fread(buf + len, 1, max + 1 - len, f)) > 0)
		len += n;
	e = ferror(f) ? errno : 0;
	if (f != stdin)
		fclose(f);
	if (e != 0 || len > max || memchr(buf, '\0', len) != NULL) {
		cert_wipe(buf, len);
		free(buf);
		if (e != 0)
			return fail("%s: %s", path, strerror(e));
		if (len > max)
			return fail("%s: larger than %zu bytes", path, max);
		return fail("%s: contains a NUL byte", path);
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static void
free_secret(char *s)
{
	if (s != NULL)
		cert_wipe(s, strlen(s));
	free(s);
}

static int
cmd_put(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "id",		required_argument,	NULL, OPT_ID },
		{ "alias",	required_argument,	NULL, OPT_ALIAS },
		{ "type",	required_argument,	NULL, OPT_TYPE },
		{ "cert",	required_argument,	NULL, OPT_CERT },
		{ "key",	required_argument,	NULL, OPT_KEY },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c = NULL;
	struct certd_cert	*cert = NULL;
	struct certd_put	 in;
	const char		*cert_file = NULL, *key_file = NULL;
	char			*cert_text = NULL, *key_text = NULL;
	json_t			*o;
	int			 ch, r;

	memset(&in, 0, sizeof(in));
	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ID:
			if (parse_u64(optarg, "id", 0, &in.id) != 0)
				return EXIT_USAGE;
			break;
		case OPT_ALIAS:
			in.alias = optarg;
			break;
		case OPT_TYPE:
			in.certificate_type = optarg;
			break;
		case OPT_CERT:
			cert_file = optarg;
			break;
		case OPT_KEY:
			key_file = optarg;
			break;
		default:
			if (global_opt(ch, g) != 0)
				return bad_option("put", ch, argc, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("put: want TEAM");
	if (in.id == 0 && (in.alias == NULL || in.certificate_type == NULL ||
	    cert_file == NULL || key_file == NULL))
		return usage_error("put: creating needs --alias, --type, --cert "
		    "and --key (or --id ID to update)");
	if (cert_file != NULL && key_file != NULL &&
	    strcmp(cert_file, "-") == 0 && strcmp(key_file, "-") == 0)
		return usage_error("put: only one of --cert and --key may be -");
	in.team = argv[optind];
	r = 1;
	if (cert_file != NULL &&
	    read_file(cert_file, CERTD_CERT_MAX, &cert_text) != 0)
		goto out;
	if (key_file != NULL &&
	    read_file(key_file, CERTD_KEY_MAX, &key_text) != 0)
		goto out;
	in.certificate = cert_text;
	in.private_key = key_text;
	if ((c = connect_or_fail(g)) == NULL)
		goto out;
	if ((r = certd_put(c, &in, &cert)) != 0) {
		r = fail_call(c, r);
		goto out;
	}
	if (g->json) {
		o = cert_json(cert, 0);
		if (o != NULL && jset_str(o, "team",
		    str_or(cert->team, in.team)) != 0) {
			json_decref(o);
			o = NULL;
		}
		r = print_json(o, 0);
	} else {
		printf("%s %llu %s (revision %llu)\n",
		    in.id != 0 ? "updated" : "created",
		    (unsigned long long)cert->id, str_or(cert->alias, "-"),
		    (unsigned long long)cert->revision);
		r = flush_stdout();
	}
out:
	certd_cert_free(cert);
	certd_close(c);
	free(cert_text);
	free_secret(key_text);
	return r;
}

static int
cmd_delete(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "force",	no_argument,		NULL, OPT_FORCE },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	uint64_t		 id;
	int			 ch, r, force = 0;
	json_t			*o;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		if (ch == OPT_FORCE)
			force = 1;
		else if (global_opt(ch, g) != 0)
			return bad_option("delete", ch, argc, argv);
	}
	if (argc - optind != 2)
		return usage_error("delete: want TEAM ID");
	if (parse_u64(argv[optind + 1], "id", 0, &id) != 0)
		return EXIT_USAGE;
	if ((c = connect_or_fail(g)) == NULL)
		return 1;
	if ((r = certd_delete(c, argv[optind], id, force)) != 0)
		r = fail_call(c, r);
	else if (g->json) {
		o = json_object();
		if (o != NULL && (jset_u64(o, "id", id) != 0 ||
		    json_object_set_new(o, "deleted", json_true()) != 0)) {
			json_decref(o);
			o = NULL;
		}
		r = print_json(o, 0);
	} else {
		printf("deleted %llu\n", (unsigned long long)id);
		r = flush_stdout();
	}
	certd_close(c);
	return r;
}

/* ---------------------------------------------------------------------- */
/* watch */

struct watch_ctx {
	struct event_base	*base;
	int			 with_pem;
	int			 stopped;	/* by a signal */
	int			 failed;	/* exit status 1 */
	char			 err[600];
};

static json_t *
event_json(const struct certd_event *ev, int with_pem)
{
	static const char *const	 names[] = {
		[CERTD_EVENT_PUT] = "put",
		[CERTD_EVENT_DELETE] = "delete",
		[CERTD_EVENT_RESYNC] = "resync",
		[CERTD_EVENT_CONNECTED] = "connected",
		[CERTD_EVENT_DISCONNECTED] = "disconnected",
	};
	json_t				*o, *c = NULL;

	if ((unsigned)ev->kind >= sizeof(names) / sizeof(names[0]) ||
	    names[ev->kind] == NULL)
		return NULL;
	if ((o = json_object()) == NULL)
		return NULL;
	if (jset_str(o, "event", names[ev->kind]) != 0 ||
	    jset_u64(o, "revision", ev->revision) != 0)
		goto fail;
	switch (ev->kind) {
	case CERTD_EVENT_PUT:
		if (jset_str(o, "team", ev->team) != 0 || ev->cert == NULL ||
		    (c = cert_json(ev->cert, with_pem)) == NULL ||
		    json_object_set_new(o, "cert", c) != 0)
			goto fail;
		break;
	case CERTD_EVENT_DELETE:
		if (jset_str(o, "team", ev->team) != 0 || ev->cert == NULL ||
		    (c = json_object()) == NULL ||
		    json_object_set_new(o, "cert", c) != 0 ||
		    jset_u64(c, "id", ev->cert->id) != 0 ||
		    jset_str(c, "alias", ev->cert->alias) != 0)
			goto fail;
		break;
	case CERTD_EVENT_DISCONNECTED:
		if (jset_str(o, "error", ev->error) != 0 ||
		    json_object_set_new(o, "reconnecting",
		    json_boolean(!ev->ended)) != 0)
			goto fail;
		break;
	default:
		break;
	}
	return o;
fail:
	jwipe(json_object_get(o, "cert"), "private_key");
	json_decref(o);
	return NULL;
}

static void
watch_cb(const struct certd_event *ev, void *arg)
{
	struct watch_ctx	*ctx = arg;
	json_t			*o;

	if (ctx->failed)
		return;
	o = event_json(ev, ctx->with_pem);
	if (o == NULL && ev->kind != CERTD_EVENT_DISCONNECTED) {
		snprintf(ctx->err, sizeof(ctx->err),
		    "cannot print a %s event (text is not UTF-8?)",
		    ev->kind == CERTD_EVENT_PUT ? "put" : "watch");
		ctx->failed = 1;
		event_base_loopbreak(ctx->base);
		return;
	}
	if (o != NULL && print_json(o, ctx->with_pem) != 0) {
		ctx->err[0] = '\0';		/* print_json said why */
		ctx->failed = 1;
		event_base_loopbreak(ctx->base);
		return;
	}
	if (ev->kind == CERTD_EVENT_DISCONNECTED && ev->ended) {
		if (ev->code <= -100)
			snprintf(ctx->err, sizeof(ctx->err), "%d %s",
			    -ev->code, ev->error != NULL ? ev->error : "");
		else
			snprintf(ctx->err, sizeof(ctx->err), "watch: %s",
			    ev->error != NULL ? ev->error : "disconnected");
		ctx->failed = 1;
		event_base_loopbreak(ctx->base);
	}
}

static void
watch_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct watch_ctx	*ctx = arg;

	(void)sig;
	(void)what;
	ctx->stopped = 1;
	event_base_loopbreak(ctx->base);
}

static int
cmd_watch(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "id",		required_argument,	NULL, OPT_ID },
		{ "alias",	required_argument,	NULL, OPT_ALIAS },
		{ "since",	required_argument,	NULL, OPT_SINCE },
		{ "reconnect",	no_argument,		NULL, OPT_RECONNECT },
		{ "with-pem",	no_argument,		NULL, OPT_WITH_PEM },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_watch_opts	 opts;
	struct watch_ctx	 ctx;
	struct certd_watch	*w = NULL;
	struct event		*sigint = NULL, *sigterm = NULL;
	uint64_t		*ids = NULL, id;
	const char		**aliases = NULL;
	size_t			 n_ids = 0, n_aliases = 0;
	char			 err[512];
	void			*p;
	int			 ch, r = EXIT_USAGE;

	memset(&opts, 0, sizeof(opts));
	memset(&ctx, 0, sizeof(ctx));
	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ID:
			if (parse_u64(optarg, "id", 0, &id) != 0)
				goto out;
			if ((p = reallocarray(ids, n_ids + 1,
			    sizeof(*ids))) == NULL) {
				r = fail("out of memory");
				goto out;
			}
			ids = p;
			ids[n_ids++] = id;
			break;
		case OPT_ALIAS:
			if ((p = reallocarray(aliases, n_aliases + 1,
			    sizeof(*aliases))) == NULL) {
				r = fail("out of memory");
				goto out;
			}
			aliases = p;
			aliases[n_aliases++] = optarg;
			break;
		case OPT_SINCE:
			if (parse_u64(optarg, "revision", 1, &opts.since) != 0)
				goto out;
			opts.has_since = 1;
			break;
		case OPT_RECONNECT:
			opts.reconnect = 1;
			break;
		case OPT_WITH_PEM:
			ctx.with_pem = 1;
			break;
		default:
			if (global_opt(ch, g) != 0) {
				r = bad_option("watch", ch, argc, argv);
				goto out;
			}
		}
	}
	if (argc - optind > 1) {
		r = usage_error("watch: want at most one TEAM");
		goto out;
	}
	if (argc - optind == 0 && (n_ids > 0 || n_aliases > 0)) {
		r = usage_error("watch: --id and --alias need a TEAM");
		goto out;
	}
	opts.socket = g->socket;
	opts.team = argc - optind == 1 ? argv[optind] : NULL;
	opts.ids = ids;
	opts.n_ids = n_ids;
	opts.aliases = aliases;
	opts.n_aliases = n_aliases;

	r = 1;
	if ((ctx.base = event_base_new()) == NULL) {
		fail("cannot create an event loop");
		goto out;
	}
	sigint = evsignal_new(ctx.base, SIGINT, watch_signal_cb, &ctx);
	sigterm = evsignal_new(ctx.base, SIGTERM, watch_signal_cb, &ctx);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint,
	    NULL) != 0 || evsignal_add(sigterm, NULL) != 0) {
		fail("cannot catch signals");
		goto out;
	}
	if ((w = certd_watch_new(ctx.base, &opts, watch_cb, &ctx, err,
	    sizeof(err))) == NULL) {
		fail("%s", err);
		goto out;
	}
	if (event_base_dispatch(ctx.base) == -1) {
		fail("event loop failed");
		goto out;
	}
	if (ctx.stopped)
		r = 0;
	else if (ctx.err[0] != '\0')
		fail("%s", ctx.err);
out:
	certd_watch_free(w);
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (ctx.base != NULL)
		event_base_free(ctx.base);
	free(ids);
	free(aliases);
	return r;
}

/* ---------------------------------------------------------------------- */
/* token new */

static int
token_new(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "name",	required_argument,	NULL, 'n' },
		{ "teams",	required_argument,	NULL, 't' },
		{ "role",	required_argument,	NULL, 'r' },
		{ NULL,		0,			NULL, 0 },
	};
	const char	*name = NULL, *teams = NULL, *role = NULL;
	char		 text[128], line[600], err[512];
	int		 ch;

	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			name = optarg;
			break;
		case 't':
			teams = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		default:
			return bad_option("token new", ch, argc, argv);
		}
	}
	if (name == NULL || teams == NULL || role == NULL || optind != argc)
		return usage_error("token new: want --name, --teams and "
		    "--role");
	if (tokens_new(name, teams, role, text, sizeof(text), line,
	    sizeof(line), err, sizeof(err)) != 0)
		return fail("token new: %s", err);
	printf("%s\n%s\n", text, line);
	cert_wipe(text, sizeof(text));
	return flush_stdout() == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------- */

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 },
	};
	static const struct {
		const char	*name;
		int		(*fn)(int, char *[], struct global *);
	} cmds[] = {
		{ "ping",	cmd_ping },
		{ "get",	cmd_get },
		{ "list",	cmd_list },
		{ "put",	cmd_put },
		{ "delete",	cmd_delete },
		{ "watch",	cmd_watch },
	};
	struct global	 g = { NULL, 0 };
	const char	*cmd;
	size_t		 i;
	int		 ch;

	opterr = 0;
	/* "+": stop at the command; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+:s:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (global_opt(ch, &g) != 0)
			return bad_option("", ch, argc, argv);
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0;		/* glibc: 0 also resets getopt's state */
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "token") == 0) {
		if (argc < 2 || strcmp(argv[1], "new") != 0)
			return usage_error("token: only 'token new' exists");
		return token_new(argc - 1, argv + 1);
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return cmds[i].fn(argc, argv, &g);
	return usage_error("unknown command '%s'", cmd);
}
