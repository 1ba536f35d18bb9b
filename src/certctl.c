/* SPDX-License-Identifier: MIT */
/*
 * certctl: the command-line client of certd.  Every command but `token new`
 * talks to certd's Unix socket through libcertd (include/certd/certd.h):
 * ping, get, list, put, delete, history, rollback print a compact human
 * form or, with --json, one JSON object; watch prints one JSON object per
 * event and line until SIGINT or SIGTERM; subscribers lists who follows a
 * certificate; sync keeps a server's certificate files equal to one
 * certificate in certd and reloads the server after each change (see the
 * comment before cmd_sync).  `token new` makes a fresh API token and prints
 * it with the line to add to the token file.
 *
 * Exit status by class (certctl.1, EXIT STATUS): 0 success, 1 refused by
 * certd (4xx), 2 usage, 3 certd not reached, 4 certd (5xx) or certctl
 * failed.  Every failure goes through report() in certctl_out.c: one
 * "certctl: ..." line on stderr, or with --json one {"code","msg"} object
 * on stdout.  Times shown to people and scripts are RFC 3339 UTC ("...Z";
 * util_time_iso), JSON ones with Unix seconds beside them in KEY_unix.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "perm.h"
#include "safefile.h"
#include "tlsprobe.h"
#include "tokens.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define FP_SHORT	16	/* fingerprint characters in the list table */

/* Strict decimal, as certd parses ids; 0 is refused unless allow_zero. */
static int
parse_u64(const char *s, const char *what, int allow_zero, uint64_t *out)
{
	if (util_parse_u64(s, strlen(s), UINT64_MAX, out) != 0 ||
	    (!allow_zero && *out == 0))
		return certctl_out_usage_error("bad %s '%s'", what, s);
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
	return certctl_out_usage_error("%s%s%s %s", cmd, *cmd != '\0' ? ": " :
	    "", ch == ':' ? "missing argument for" : "unknown option", opt);
}

/* ---------------------------------------------------------------------- */
/* Certificates */

/* The metadata of a certificate; PEM and key only when with_pem. */
static json_t *
cert_json(const struct certd_cert *c, int with_pem)
{
	json_t	*o;

	if ((o = json_object()) == NULL)
		return NULL;
	if (certctl_out_jset_u64(o, "id", c->id) != 0 ||
	    certctl_out_jset_str(o, "alias", c->alias) != 0 ||
	    certctl_out_jset_str(o, "certificate_type",
	    c->certificate_type) != 0 ||
	    certctl_out_jset_u64(o, "revision", c->revision) != 0 ||
	    certctl_out_jset_time(o, "not_after", c->not_after) != 0 ||
	    certctl_out_jset_str(o, "fingerprint_sha256",
	    c->fingerprint_sha256) != 0)
		goto fail;
	if (with_pem && (certctl_out_jset_str(o, "certificate",
	    c->certificate) != 0 ||
	    certctl_out_jset_str(o, "private_key", c->private_key) != 0))
		goto fail;
	return o;
fail:
	certctl_out_jwipe(o, "private_key");
	json_decref(o);
	return NULL;
}

static void
print_cert_human(const struct certd_cert *c, const char *team)
{
	printf("%-19s %llu\n", "id", (unsigned long long)c->id);
	printf("%-19s %s\n", "team", certctl_out_str_or(c->team, team));
	printf("%-19s %s\n", "alias", certctl_out_str_or(c->alias, "-"));
	printf("%-19s %s\n", "certificate_type",
	    certctl_out_str_or(c->certificate_type, "-"));
	printf("%-19s %llu\n", "revision", (unsigned long long)c->revision);
	certctl_out_print_time("not_after", c->not_after);
	printf("%-19s %s\n", "fingerprint_sha256",
	    certctl_out_str_or(c->fingerprint_sha256, "-"));
	printf("%-19s %s\n", "private_key",
	    c->private_key != NULL ? "present" : "not readable");
}

/* ---------------------------------------------------------------------- */
/* Commands on the socket */

/*
 * Connect to certd into *out, or report why and return the exit status:
 * a bad socket path is usage; no socket, nobody listening, a server
 * refused by the peer check (not certd's user: not certd reached) or a
 * connection certd refused (its connection caps) is EXIT_UNREACHED.
 */
static int
connect_or_fail(const struct global *g, struct certd_client **out)
{
	char	err[512];

	errno = 0;
	if ((*out = certd_connect(g->socket, err, sizeof(err))) != NULL)
		return 0;
	return certctl_out_fail_as(errno == EINVAL ? EXIT_USAGE :
	    errno == ENOMEM ? EXIT_FAILED : EXIT_UNREACHED, "%s", err);
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
		return certctl_out_usage_error("ping takes no arguments");
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_ping(c)) != 0) {
		r = certctl_out_fail_call(c, r);
		goto out;
	}
	if (g->json) {
		o = json_object();
		if (o != NULL &&
		    (certctl_out_jset_str(o, "status", "pong") != 0 ||
		    certctl_out_jset_u64(o, "revision",
		    certd_client_revision(c)) != 0)) {
			json_decref(o);
			o = NULL;
		}
		r = certctl_out_print_json(o, 0);
	} else {
		printf("pong (revision %llu)\n",
		    (unsigned long long)certd_client_revision(c));
		r = certctl_out_flush_stdout();
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
		return certctl_out_fail("writing output: %s", strerror(errno));
	return certctl_out_flush_stdout();
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
		return certctl_out_usage_error("get: --cert and --key exclude "
		    "each other");
	if (alias != NULL ? argc - optind != 1 : argc - optind != 2)
		return certctl_out_usage_error("get: want TEAM ID or TEAM "
		    "--alias ALIAS");
	team = argv[optind];
	if (alias == NULL && parse_u64(argv[optind + 1], "id", 0, &id) != 0)
		return EXIT_USAGE;
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	r = alias != NULL ? certd_get_alias(c, team, alias, &cert) :
	    certd_get(c, team, id, &cert);
	if (r != 0) {
		r = certctl_out_fail_call(c, r);
		goto out;
	}
	if (want_cert) {
		r = cert->certificate != NULL ? print_pem(cert->certificate) :
		    certctl_out_fail("certd sent no certificate text");
	} else if (want_key) {
		r = cert->private_key != NULL ? print_pem(cert->private_key) :
		    certctl_out_fail_as(EXIT_REFUSED, "no private key: this "
		    "peer lacks the key permission");
	} else if (g->json) {
		o = cert_json(cert, 1);
		if (o != NULL && certctl_out_jset_str(o, "team",
		    certctl_out_str_or(cert->team, team)) != 0) {
			certctl_out_jwipe(o, "private_key");
			json_decref(o);
			o = NULL;
		}
		r = certctl_out_print_json(o, 1);
	} else {
		print_cert_human(cert, team);
		r = certctl_out_flush_stdout();
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
		    certctl_out_jset_u64(e, "id", it->id) != 0 ||
		    certctl_out_jset_str(e, "alias", it->alias) != 0 ||
		    certctl_out_jset_str(e, "certificate_type",
		    it->certificate_type) != 0 ||
		    certctl_out_jset_u64(e, "revision", it->revision) != 0 ||
		    certctl_out_jset_time(e, "not_after", it->not_after) != 0 ||
		    certctl_out_jset_str(e, "fingerprint_sha256",
		    it->fingerprint_sha256) != 0)
			goto fail;
	}
	if (certctl_out_jset_u64(o, "page", l->page) != 0 ||
	    certctl_out_jset_u64(o, "page_size", l->page_size) != 0 ||
	    certctl_out_jset_u64(o, "total", l->total) != 0)
		goto fail;
	return certctl_out_print_json(o, 0);
fail:
	json_decref(o);
	return certctl_out_print_json(NULL, 0);
}

static int
list_human(const struct certd_list *l)
{
	const struct certd_list_item	*it;
	size_t				 i, wa = 5, wt = 4;
	char				 when[24];

	for (i = 0; i < l->n; i++) {
		certctl_out_widen(&wa,
		    certctl_out_str_or(l->items[i].alias, "-"));
		certctl_out_widen(&wt,
		    certctl_out_str_or(l->items[i].certificate_type, "-"));
	}
	printf("%-6s ", "ID");
	certctl_out_print_cell("ALIAS", wa);
	certctl_out_print_cell("TYPE", wt);
	printf("%-8s %-20s %s\n", "REVISION", "NOT_AFTER", "FINGERPRINT");
	for (i = 0; i < l->n; i++) {
		it = &l->items[i];
		util_time_iso(it->not_after, 1, when);
		printf("%-6llu ", (unsigned long long)it->id);
		certctl_out_print_cell(certctl_out_str_or(it->alias, "-"), wa);
		certctl_out_print_cell(certctl_out_str_or(it->certificate_type,
		    "-"), wt);
		printf("%-8llu %-20s %.*s\n", (unsigned long long)it->revision,
		    when, FP_SHORT, certctl_out_str_or(it->fingerprint_sha256,
		    "-"));
	}
	printf("page %llu, page size %llu, total %llu\n",
	    (unsigned long long)l->page, (unsigned long long)l->page_size,
	    (unsigned long long)l->total);
	return certctl_out_flush_stdout();
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
		return certctl_out_usage_error("list: want TEAM");
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_list(c, argv[optind], page, page_size, &l)) != 0)
		r = certctl_out_fail_call(c, r);
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
		return certctl_out_fail_as(EXIT_USAGE, "%s: %s", path,
		    strerror(errno));
	if ((buf = malloc(max + 2)) == NULL) {
		if (f != stdin)
			fclose(f);
		return certctl_out_fail("out of memory");
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
			return certctl_out_fail_as(EXIT_USAGE, "%s: %s", path,
			    strerror(e));
		if (len > max)
			return certctl_out_fail_as(EXIT_USAGE, "%s: larger "
			    "than %zu bytes", path, max);
		return certctl_out_fail_as(EXIT_USAGE, "%s: contains a NUL "
		    "byte", path);
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
		return certctl_out_usage_error("put: want TEAM");
	if (in.id == 0 && (in.alias == NULL || in.certificate_type == NULL ||
	    cert_file == NULL || key_file == NULL))
		return certctl_out_usage_error("put: creating needs --alias, "
		    "--type, --cert and --key (or --id ID to update)");
	if (cert_file != NULL && key_file != NULL &&
	    strcmp(cert_file, "-") == 0 && strcmp(key_file, "-") == 0)
		return certctl_out_usage_error("put: only one of --cert and "
		    "--key may be -");
	in.team = argv[optind];
	if (cert_file != NULL &&
	    (r = read_file(cert_file, CERTD_CERT_MAX, &cert_text)) != 0)
		goto out;
	if (key_file != NULL &&
	    (r = read_file(key_file, CERTD_KEY_MAX, &key_text)) != 0)
		goto out;
	in.certificate = cert_text;
	in.private_key = key_text;
	if ((r = connect_or_fail(g, &c)) != 0)
		goto out;
	if ((r = certd_put(c, &in, &cert)) != 0) {
		r = certctl_out_fail_call(c, r);
		goto out;
	}
	if (g->json) {
		o = cert_json(cert, 0);
		if (o != NULL && certctl_out_jset_str(o, "team",
		    certctl_out_str_or(cert->team, in.team)) != 0) {
			json_decref(o);
			o = NULL;
		}
		r = certctl_out_print_json(o, 0);
	} else {
		printf("%s %llu %s (revision %llu)\n",
		    in.id != 0 ? "updated" : "created",
		    (unsigned long long)cert->id,
		    certctl_out_str_or(cert->alias, "-"),
		    (unsigned long long)cert->revision);
		r = certctl_out_flush_stdout();
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
		return certctl_out_usage_error("delete: want TEAM ID");
	if (parse_u64(argv[optind + 1], "id", 0, &id) != 0)
		return EXIT_USAGE;
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_delete(c, argv[optind], id, force)) != 0)
		r = certctl_out_fail_call(c, r);
	else if (g->json) {
		o = json_object();
		if (o != NULL && (certctl_out_jset_u64(o, "id", id) != 0 ||
		    json_object_set_new(o, "deleted", json_true()) != 0)) {
			json_decref(o);
			o = NULL;
		}
		r = certctl_out_print_json(o, 0);
	} else {
		printf("deleted %llu\n", (unsigned long long)id);
		r = certctl_out_flush_stdout();
	}
	certd_close(c);
	return r;
}

/* ---------------------------------------------------------------------- */
/* history and rollback */

static int
history_json(const struct certd_version_list *l)
{
	const struct certd_version	*v;
	json_t				*o, *a, *e;
	size_t				 i;

	o = json_object();
	a = json_array();
	if (o == NULL || a == NULL || json_object_set_new(o, "list", a) != 0) {
		json_decref(a);
		goto fail;
	}
	for (i = 0; i < l->n; i++) {
		v = &l->items[i];
		if ((e = json_object()) == NULL ||
		    json_array_append_new(a, e) != 0 ||
		    certctl_out_jset_u64(e, "revision", v->revision) != 0 ||
		    certctl_out_jset_str(e, "alias", v->alias) != 0 ||
		    certctl_out_jset_str(e, "certificate_type",
		    v->certificate_type) != 0 ||
		    certctl_out_jset_time(e, "not_after", v->not_after) != 0 ||
		    certctl_out_jset_str(e, "fingerprint_sha256",
		    v->fingerprint_sha256) != 0 ||
		    certctl_out_jset_time(e, "updated_at", v->updated_at) != 0)
			goto fail;
	}
	return certctl_out_print_json(o, 0);
fail:
	json_decref(o);
	return certctl_out_print_json(NULL, 0);
}

static int
history_human(const struct certd_version_list *l)
{
	const struct certd_version	*v;
	size_t				 i, wa = 5, wt = 4;
	char				 when[24], end[24];

	for (i = 0; i < l->n; i++) {
		certctl_out_widen(&wa,
		    certctl_out_str_or(l->items[i].alias, "-"));
		certctl_out_widen(&wt,
		    certctl_out_str_or(l->items[i].certificate_type, "-"));
	}
	printf("%-8s %-20s ", "REVISION", "UPDATED_AT");
	certctl_out_print_cell("ALIAS", wa);
	certctl_out_print_cell("TYPE", wt);
	printf("%-20s %s\n", "NOT_AFTER", "FINGERPRINT");
	for (i = 0; i < l->n; i++) {
		v = &l->items[i];
		util_time_iso(v->updated_at, 1, when);
		util_time_iso(v->not_after, 1, end);
		printf("%-8llu %-20s ", (unsigned long long)v->revision, when);
		certctl_out_print_cell(certctl_out_str_or(v->alias, "-"), wa);
		certctl_out_print_cell(certctl_out_str_or(v->certificate_type,
		    "-"), wt);
		printf("%-20s %.*s\n", end, FP_SHORT,
		    certctl_out_str_or(v->fingerprint_sha256, "-"));
	}
	return certctl_out_flush_stdout();
}

/*
 * The arguments of a command that takes TEAM ID and only the global
 * options: the id into *id.  Returns 0, or the exit status of a usage
 * error (said on stderr).
 */
static int
team_id_args(int argc, char *argv[], struct global *g, const char *cmd,
    uint64_t *id)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ NULL,		0,			NULL, 0 },
	};
	int	ch;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1)
		if (global_opt(ch, g) != 0)
			return bad_option(cmd, ch, argc, argv);
	if (argc - optind != 2)
		return certctl_out_usage_error("%s: want TEAM ID", cmd);
	if (parse_u64(argv[optind + 1], "id", 0, id) != 0)
		return EXIT_USAGE;
	return 0;
}

/* TEAM ID: the kept versions, newest first (the current one included). */
static int
cmd_history(int argc, char *argv[], struct global *g)
{
	struct certd_client		*c;
	struct certd_version_list	*l = NULL;
	uint64_t			 id;
	int				 r;

	if ((r = team_id_args(argc, argv, g, "history", &id)) != 0 ||
	    (r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_history(c, argv[optind], id, &l)) != 0)
		r = certctl_out_fail_call(c, r);
	else
		r = g->json ? history_json(l) : history_human(l);
	certd_version_list_free(l);
	certd_close(c);
	return r;
}

/* TEAM ID REVISION: that kept version's content, current again. */
static int
cmd_rollback(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	struct certd_cert	*cert = NULL;
	const char		*team;
	uint64_t		 id, rev;
	json_t			*o;
	int			 ch, r;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1)
		if (global_opt(ch, g) != 0)
			return bad_option("rollback", ch, argc, argv);
	if (argc - optind != 3)
		return certctl_out_usage_error("rollback: want TEAM ID "
		    "REVISION");
	team = argv[optind];
	if (parse_u64(argv[optind + 1], "id", 0, &id) != 0 ||
	    parse_u64(argv[optind + 2], "revision", 0, &rev) != 0)
		return EXIT_USAGE;
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_rollback(c, team, id, rev, &cert)) != 0)
		r = certctl_out_fail_call(c, r);
	else if (g->json) {
		o = cert_json(cert, 0);
		if (o != NULL && certctl_out_jset_str(o, "team",
		    certctl_out_str_or(cert->team, team)) != 0) {
			json_decref(o);
			o = NULL;
		}
		r = certctl_out_print_json(o, 0);
	} else {
		printf("rolled back %llu %s to revision %llu (now revision "
		    "%llu)\n", (unsigned long long)cert->id,
		    certctl_out_str_or(cert->alias, "-"),
		    (unsigned long long)rev,
		    (unsigned long long)cert->revision);
		r = certctl_out_flush_stdout();
	}
	certd_cert_free(cert);
	certd_close(c);
	return r;
}

/* rekey and backup: admin commands without options of their own. */
static int
cmd_rekey(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	char			 kid[17];
	int			 ch, r;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1)
		if (global_opt(ch, g) != 0)
			return bad_option("rekey", ch, argc, argv);
	if (optind != argc)
		return certctl_out_usage_error("rekey takes no arguments");
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_rekey(c, kid)) != 0)
		r = certctl_out_fail_call(c, r);
	else if (g->json)
		r = certctl_out_print_json(json_pack("{s:s}", "key_id",
		    kid), 0);
	else {
		printf("master key rotated, key id %s\n", kid);
		r = certctl_out_flush_stdout();
	}
	certd_close(c);
	return r;
}

static int
cmd_backup(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_client	*c;
	char			 dir[4096];
	int			 ch, r;

	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1)
		if (global_opt(ch, g) != 0)
			return bad_option("backup", ch, argc, argv);
	if (argc - optind != 1)
		return certctl_out_usage_error("backup: want DIR");
	/* certd resolves nothing: send an absolute path. */
	if (argv[optind][0] == '/')
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	else if (getcwd(dir, sizeof(dir)) == NULL ||
	    strlen(dir) + 1 + strlen(argv[optind]) >= sizeof(dir))
		return certctl_out_fail_as(EXIT_USAGE, "backup: cannot make %s "
		    "absolute", argv[optind]);
	else {
		strcat(dir, "/");
		strcat(dir, argv[optind]);
	}
	if ((r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_backup(c, dir)) != 0)
		r = certctl_out_fail_call(c, r);
	else if (g->json)
		r = certctl_out_print_json(json_pack("{s:s}", "backup",
		    dir), 0);
	else {
		printf("backup written to %s (it holds the master key)\n", dir);
		r = certctl_out_flush_stdout();
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
	int			 failed;	/* ended: err says why */
	int			 code;		/* libcertd's code; 0: ours */
	int			 status;	/* reported already: exit status */
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
	if (certctl_out_jset_str(o, "event", names[ev->kind]) != 0 ||
	    certctl_out_jset_u64(o, "revision", ev->revision) != 0)
		goto fail;
	switch (ev->kind) {
	case CERTD_EVENT_PUT:
		if (certctl_out_jset_str(o, "team", ev->team) != 0 ||
		    ev->cert == NULL ||
		    (c = cert_json(ev->cert, with_pem)) == NULL ||
		    json_object_set_new(o, "cert", c) != 0)
			goto fail;
		break;
	case CERTD_EVENT_DELETE:
		if (certctl_out_jset_str(o, "team", ev->team) != 0 ||
		    ev->cert == NULL ||
		    (c = json_object()) == NULL ||
		    json_object_set_new(o, "cert", c) != 0 ||
		    certctl_out_jset_u64(c, "id", ev->cert->id) != 0 ||
		    certctl_out_jset_str(c, "alias", ev->cert->alias) != 0)
			goto fail;
		break;
	case CERTD_EVENT_DISCONNECTED:
		if (certctl_out_jset_str(o, "error", ev->error) != 0 ||
		    json_object_set_new(o, "reconnecting",
		    json_boolean(!ev->ended)) != 0)
			goto fail;
		break;
	default:
		break;
	}
	return o;
fail:
	certctl_out_jwipe(json_object_get(o, "cert"), "private_key");
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
	if (o != NULL && (ctx->status = certctl_out_print_json(o,
	    ctx->with_pem)) != 0) {
		ctx->failed = 1;	/* print_json said why */
		event_base_loopbreak(ctx->base);
		return;
	}
	if (ev->kind == CERTD_EVENT_DISCONNECTED && ev->ended) {
		snprintf(ctx->err, sizeof(ctx->err), "%s",
		    ev->error != NULL ? ev->error : "disconnected");
		ctx->code = ev->code;
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
				r = certctl_out_fail("out of memory");
				goto out;
			}
			ids = p;
			ids[n_ids++] = id;
			break;
		case OPT_ALIAS:
			if ((p = reallocarray(aliases, n_aliases + 1,
			    sizeof(*aliases))) == NULL) {
				r = certctl_out_fail("out of memory");
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
		r = certctl_out_usage_error("watch: want at most one TEAM");
		goto out;
	}
	if (argc - optind == 0 && (n_ids > 0 || n_aliases > 0)) {
		r = certctl_out_usage_error("watch: --id and --alias need a "
		    "TEAM");
		goto out;
	}
	opts.socket = g->socket;
	opts.team = argc - optind == 1 ? argv[optind] : NULL;
	opts.ids = ids;
	opts.n_ids = n_ids;
	opts.aliases = aliases;
	opts.n_aliases = n_aliases;

	if ((ctx.base = event_base_new()) == NULL) {
		r = certctl_out_fail("cannot create an event loop");
		goto out;
	}
	sigint = evsignal_new(ctx.base, SIGINT, watch_signal_cb, &ctx);
	sigterm = evsignal_new(ctx.base, SIGTERM, watch_signal_cb, &ctx);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint,
	    NULL) != 0 || evsignal_add(sigterm, NULL) != 0) {
		r = certctl_out_fail("cannot catch signals");
		goto out;
	}
	errno = 0;
	if ((w = certd_watch_new(ctx.base, &opts, watch_cb, &ctx, err,
	    sizeof(err))) == NULL) {
		r = certctl_out_fail_as(errno == ENOMEM ? EXIT_FAILED :
		    EXIT_USAGE, "%s", err);
		goto out;
	}
	if (event_base_dispatch(ctx.base) == -1)
		r = certctl_out_fail("event loop failed");
	else if (ctx.stopped)
		r = 0;
	else if (ctx.status != 0)
		r = ctx.status;
	else if (ctx.code != 0)
		r = certctl_out_fail_code(ctx.code, ctx.code <= -100 ? "" :
		    "watch: ", ctx.err);
	else
		r = certctl_out_fail("%s", ctx.err[0] != '\0' ? ctx.err :
		    "watch: the event loop ended");
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
/* subscribers */

static int
subscribers_json(const struct certd_subscriber_list *l)
{
	const struct certd_subscriber	*s;
	json_t				*o, *a, *e;
	size_t				 i;

	o = json_object();
	a = json_array();
	if (o == NULL || a == NULL || json_object_set_new(o, "list", a) != 0) {
		json_decref(a);
		goto fail;
	}
	for (i = 0; i < l->n; i++) {
		s = &l->items[i];
		if ((e = json_object()) == NULL ||
		    json_array_append_new(a, e) != 0 ||
		    certctl_out_jset_str(e, "name", s->name) != 0 ||
		    certctl_out_jset_u64(e, "uid", s->uid) != 0 ||
		    certctl_out_jset_int(e, "pid", s->pid) != 0 ||
		    certctl_out_jset_u64(e, "watch", s->watch) != 0 ||
		    certctl_out_jset_u64(e, "revision", s->revision) != 0 ||
		    certctl_out_jset_str(e, "status", s->status) != 0 ||
		    certctl_out_jset_str(e, "detail", s->detail) != 0 ||
		    certctl_out_jset_time(e, "at", s->at) != 0)
			goto fail;
		/* A --verify check's, when the last ack had one. */
		if (s->verified_at == 0)
			continue;
		if ((s->served_fingerprint_sha256 != NULL &&
		    certctl_out_jset_str(e, "served_fingerprint_sha256",
		    s->served_fingerprint_sha256) != 0) ||
		    certctl_out_jset_time(e, "verified_at",
		    s->verified_at) != 0)
			goto fail;
	}
	return certctl_out_print_json(o, 0);
fail:
	json_decref(o);
	return certctl_out_print_json(NULL, 0);
}

static int
subscribers_human(const struct certd_subscriber_list *l)
{
	const struct certd_subscriber	*s;
	size_t				 i, wn = 4, n;
	char				 when[24];

	for (i = 0; i < l->n; i++)
		if ((n = strlen(l->items[i].name)) > wn)
			wn = n;
	printf("%-6s %-*s %-6s %-8s %-8s %-9s %-20s %s\n", "WATCH", (int)wn,
	    "NAME", "UID", "PID", "REVISION", "STATUS", "AT", "DETAIL");
	for (i = 0; i < l->n; i++) {
		s = &l->items[i];
		if (s->at != 0)
			util_time_iso(s->at, 1, when);
		else
			snprintf(when, sizeof(when), "-");
		printf("%-6llu %-*s %-6llu %-8lld %-8llu %-9s %-20s %s\n",
		    (unsigned long long)s->watch, (int)wn,
		    *s->name != '\0' ? s->name : "-",
		    (unsigned long long)s->uid, (long long)s->pid,
		    (unsigned long long)s->revision, s->status, when,
		    *s->detail != '\0' ? s->detail : "-");
	}
	return certctl_out_flush_stdout();
}

static int
cmd_subscribers(int argc, char *argv[], struct global *g)
{
	struct certd_client		*c;
	struct certd_subscriber_list	*l = NULL;
	uint64_t			 id;
	int				 r;

	if ((r = team_id_args(argc, argv, g, "subscribers", &id)) != 0 ||
	    (r = connect_or_fail(g, &c)) != 0)
		return r;
	if ((r = certd_subscribers(c, argv[optind], id, &l)) != 0)
		r = certctl_out_fail_call(c, r);
	else
		r = g->json ? subscribers_json(l) : subscribers_human(l);
	certd_subscriber_list_free(l);
	certd_close(c);
	return r;
}

/* ---------------------------------------------------------------------- */
/* sync */

/*
 * certctl sync keeps a set of files (certificate with chain, key, chain,
 * haproxy bundle) equal to one certificate in certd and reloads a server
 * after each change.  Everything runs on one event_base: the libcertd
 * watch (reconnecting, resuming from the last revision delivered), the
 * debounce timer, the reload command's stderr pipe, its timeout and
 * SIGCHLD.
 *
 * A change goes: put event -> pending (latest wins) -> debounce timer ->
 * compare with the files on disk -> write the changed ones (all temp files
 * first, then all renames) -> reload -> with --verify, a TLS handshake
 * with each target until it presents the leaf written (tlsprobe.c, on the
 * same loop) -> ack: ok only when seen served, requested when nothing was
 * checked.  While a reload command or a check runs, new changes only wait
 * in pending; its completion schedules them.  The
 * record applied last is kept: when its write or reload failed, it is
 * applied again after a back-off (SYNC_RETRY_MS doubling up to
 * SYNC_RETRY_MAX_MS) until it succeeds or a newer change replaces it, so
 * files left half-switched by a failed rename and a server that did not
 * reload do not wait for the next change.
 */

#define SYNC_DEBOUNCE_MS	200
#define SYNC_DEBOUNCE_MAX_MS	60000
#define SYNC_MAXWAIT_FACTOR	10	/* longest wait, in debounce windows */
#define SYNC_TIMEOUT_S		30
#define SYNC_TIMEOUT_MAX_S	86400
#define SYNC_TAIL		200	/* bytes of the reload's stderr kept */
#define SYNC_NAME_MAX		64	/* bytes, as certd allows */
#define SYNC_DETAIL_MAX		256	/* certd keeps 255 bytes of a detail */
#define SYNC_CHUNK		4096
#define SYNC_REAP_MS		100	/* polling for a killed command's exit */
#define SYNC_RETRY_MS		1000	/* first retry of a failed apply */
#define SYNC_RETRY_MAX_MS	60000
#define SYNC_VERIFY_MAX		16	/* --verify targets */
#define SYNC_VERIFY_TIMEOUT_S	10
#define SYNC_VERIFY_TIMEOUT_MAX_S 3600

enum sync_kind {
	SYNC_CERT,
	SYNC_KEY,
	SYNC_CHAIN,
	SYNC_BUNDLE,
	SYNC_NFILES,
};

/*
 * One output file; path NULL when not asked for.  Everything is done
 * relative to dirfd, its directory opened without following a link
 * (safefile.h); -1 while that directory does not exist.
 */
struct sync_file {
	const char	*label;
	const char	*path;
	const char	*base;		/* the last component of path */
	mode_t		 mode;
	int		 dirfd;
	char		 tmp[NAME_MAX + 1];	/* prepared in dirfd, or "" */
};

/* A record received and not yet applied.  The key is wiped on free. */
struct sync_rec {
	uint64_t	 revision;
	uint64_t	 id;
	char		*certificate;
	char		*private_key;
};

/*
 * Invariants: child != 0 exactly while a reload command runs, and then
 * child_timer is pending; child_fd is its stderr pipe until drained (-1
 * after).  pending is the newest record not applied yet; pending_since
 * the monotonic ms when it went from none to some.  last is the record
 * applied last (NULL after a delete); retry_timer is pending while its
 * failed apply waits for another try, retry_ms the wait after that one.
 * probing is set exactly while the --verify check of probe_rev runs;
 * probe is the last check started (inert once done, freed at the next
 * start).  written_fp is the leaf of the record being applied.
 */
struct sync_ctx {
	struct event_base	*base;
	struct certd_watch	*w;
	char			 name[SYNC_NAME_MAX + 1];
	struct sync_file	 files[SYNC_NFILES];
	uid_t			 euid;		/* who may write what sync trusts */
	uid_t			 uid;		/* (uid_t)-1: keep */
	gid_t			 gid;		/* (gid_t)-1: keep */
	const char		*exec;
	int			 sig;		/* 0: no signal */
	char			 signame[16];	/* "HUP", or a number */
	pid_t			 pid;		/* 0: read pid_file */
	const char		*pid_file;
	unsigned		 timeout_s;
	unsigned		 debounce_ms;
	struct tlsprobe_target	*verify[SYNC_VERIFY_MAX];
	size_t			 n_verify;
	unsigned		 verify_timeout_s;

	struct sync_rec		*pending;
	int64_t			 pending_since;
	struct event		*timer;
	int			 applied;	/* a record was applied this run */
	int			 reload_owed;	/* the last reload failed */
	pid_t			 gone_pid;	/* signalled: no such process */
	struct stat		 gone_st;	/* the pid file that named it */
	struct sync_rec		*last;
	struct event		*retry_timer;
	unsigned		 retry_ms;

	pid_t			 child;
	uint64_t		 child_rev;
	int			 child_forgotten;	/* outcome not acked */
	int			 child_fd;
	struct event		*child_ev;
	struct event		*child_timer;
	int			 timed_out;
	char			 tail[SYNC_TAIL];
	size_t			 tail_len;

	char			 written_fp[CERTD_FINGERPRINT_LEN + 1];
	struct tlsprobe		*probe;
	int			 probing;
	uint64_t		 probe_rev;
	int			 probe_forgotten;	/* outcome not acked */
	char			 probe_what[SYNC_DETAIL_MAX];	/* the reload */

	int			 have_ack;	/* resent after a reconnect */
	uint64_t		 ack_rev;
	int			 ack_status;	/* enum certd_ack_status */
	char			 ack_detail[SYNC_DETAIL_MAX];
	char			 ack_served[CERTD_FINGERPRINT_LEN + 1];
	int64_t			 ack_verified_at;	/* 0: no check */

	int			 stopped;
	int			 failed;
	int			 code;		/* libcertd's, of the end */
	char			 err[600];
};

static int64_t
mono_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on stderr: time, the watch's name, what happened. */
static void __attribute__((format(printf, 2, 3)))
sync_log(const struct sync_ctx *ctx, const char *f, ...)
{
	va_list	ap;
	char	when[24];

	util_time_iso((int64_t)time(NULL), 1, when);
	fprintf(stderr, "%s certctl sync %s: ", when, ctx->name);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void
sync_rec_free(struct sync_rec *rec)
{
	if (rec == NULL)
		return;
	free(rec->certificate);
	free_secret(rec->private_key);
	free(rec);
}

static const char *
sync_status_name(int status)
{
	return status == CERTD_ACK_OK ? "ok" : status == CERTD_ACK_REQUESTED ?
	    "requested" : "failed";
}

/*
 * Report the outcome of revision rev to certd, and remember it: status is
 * a certd_ack_status (0 failed, 1 ok, as the ok of older callers); served
 * and verified_at those of a --verify check (NULL and 0: none ran).
 */
static void
sync_ack_check(struct sync_ctx *ctx, uint64_t rev, int status,
    const char *detail, const char *served, int64_t verified_at)
{
	/*
	 * The ack certd keeps is the last one: an older revision's outcome
	 * that comes in late (a reload that ran on while a delete was acked)
	 * is logged, not sent over the newer one.
	 */
	if (ctx->have_ack && rev < ctx->ack_rev) {
		sync_log(ctx, "revision %llu: %s: %s (not acked: revision %llu "
		    "was acked since)", (unsigned long long)rev,
		    sync_status_name(status), detail,
		    (unsigned long long)ctx->ack_rev);
		return;
	}
	ctx->have_ack = 1;
	ctx->ack_rev = rev;
	ctx->ack_status = status;
	snprintf(ctx->ack_detail, sizeof(ctx->ack_detail), "%s", detail);
	snprintf(ctx->ack_served, sizeof(ctx->ack_served), "%s",
	    served != NULL ? served : "");
	ctx->ack_verified_at = verified_at;
	sync_log(ctx, "revision %llu: %s: %s", (unsigned long long)rev,
	    sync_status_name(status), detail);
	if (certd_watch_ack_status(ctx->w, rev, (enum certd_ack_status)status,
	    ctx->ack_detail, served, verified_at) != 0)
		sync_log(ctx, "revision %llu: ack not sent (not connected); "
		    "sent after the reconnect", (unsigned long long)rev);
}

static void
sync_ack(struct sync_ctx *ctx, uint64_t rev, int status, const char *detail)
{
	sync_ack_check(ctx, rev, status, detail, NULL, 0);
}

/* dirname(3) without modifying path: into buf. */
static int
dir_of(const char *path, char *buf, size_t len)
{
	const char	*slash = strrchr(path, '/');
	size_t		 n;

	if (slash == NULL)
		return snprintf(buf, len, ".") >= (int)len ? -1 : 0;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= len)
		return -1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

/* The last component of path. */
static const char *
base_of(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/*
 * Open the directory of path with no link on the way, as root or we alone
 * may write it (safefile_opendir); a SAFEFILE_* result, err says why.
 */
static int
sync_opendir(const struct sync_ctx *ctx, const char *path, int *fd,
    char *err, size_t errlen)
{
	char	dir[PATH_MAX];

	*fd = -1;
	if (dir_of(path, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return SAFEFILE_ERR;
	}
	return safefile_opendir(dir, ctx->euid, fd, err, errlen);
}

/*
 * Make sure every file's directory is open: one not there at start, or
 * removed since (no link left to it), is opened now, with the same checks.
 */
static int
sync_dirs(struct sync_ctx *ctx, char *err, size_t errlen)
{
	struct sync_file	*f;
	struct stat		 st;
	int			 i;

	for (i = 0; i < SYNC_NFILES; i++) {
		f = &ctx->files[i];
		if (f->path == NULL)
			continue;
		if (f->dirfd != -1 && fstat(f->dirfd, &st) == 0 &&
		    st.st_nlink > 0)
			continue;
		if (f->dirfd != -1) {
			sync_log(ctx, "the directory of %s was removed; opening "
			    "it again", f->path);
			(void)close(f->dirfd);
		}
		if (sync_opendir(ctx, f->path, &f->dirfd, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/*
 * Whether f holds exactly len bytes of buf: 1 yes, 0 no (or missing or
 * unreadable: it is then rewritten), SAFEFILE_REFUSED when what is there
 * must not be touched (a link, not a regular file, or hard-linked; err
 * says which).  When it holds them, a mode or owner that differs is fixed
 * in place, on the descriptor checked.  Read in chunks, wiped: the file
 * may hold a key.
 */
static int
sync_same(const struct sync_ctx *ctx, const struct sync_file *f,
    const char *buf, size_t len, char *err, size_t errlen)
{
	struct stat	st;
	char		chunk[SYNC_CHUNK];
	size_t		off = 0;
	ssize_t		n;
	int		fd, same = 0;

	if ((same = safefile_open(f->dirfd, f->base, f->path, &fd, &st, err,
	    errlen)) != 0)
		return same == SAFEFILE_REFUSED ? same : 0;
	if ((uint64_t)st.st_size != (uint64_t)len)
		goto out;
	while (off < len) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (size_t)n > len - off ||
		    memcmp(chunk, buf + off, (size_t)n) != 0)
			goto out;
		off += (size_t)n;
	}
	same = 1;
	if ((ctx->uid != (uid_t)-1 && st.st_uid != ctx->uid) ||
	    (ctx->gid != (gid_t)-1 && st.st_gid != ctx->gid)) {
		if (fchown(fd, ctx->uid, ctx->gid) != 0)
			same = 0;
	}
	if (same && (st.st_mode & 07777) != f->mode && fchmod(fd, f->mode) != 0)
		same = 0;
	if (same && (st.st_mode & 07777) != f->mode)
		sync_log(ctx, "%s: mode set to %04o", f->path, (unsigned)f->mode);
out:
	cert_wipe(chunk, sizeof(chunk));
	(void)close(fd);
	return same;
}

/* Remove the prepared temp file, if any. */
static void
sync_discard(struct sync_file *f)
{
	if (f->tmp[0] == '\0')
		return;
	(void)unlinkat(f->dirfd, f->tmp, 0);
	f->tmp[0] = '\0';
}

/* Write buf to a fresh temp file beside f->path, synced, mode and owner set. */
static int
sync_prepare(const struct sync_ctx *ctx, struct sync_file *f, const char *buf,
    size_t len, char *err, size_t errlen)
{
	char		 e[SYNC_DETAIL_MAX - 32];	/* room for a prefix */
	const char	*what = "write";
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd, r = -1;

	/* Created 0600: the key is never readable by others. */
	if (safefile_tmp(f->dirfd, f->base, f->tmp, sizeof(f->tmp), &fd, e,
	    sizeof(e)) != 0) {
		f->tmp[0] = '\0';
		snprintf(err, errlen, "temp file beside %s: %s", f->path, e);
		return -1;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto out;
		}
		off += (size_t)n;
	}
	what = "chown";
	if ((ctx->uid != (uid_t)-1 || ctx->gid != (gid_t)-1) &&
	    fchown(fd, ctx->uid, ctx->gid) != 0)
		goto out;
	what = "sync";
	if (fchmod(fd, f->mode) != 0 || fsync(fd) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		snprintf(err, errlen, "%s temp file %s beside %s: %s", what,
		    f->tmp, f->path, strerror(errno));
	if (close(fd) != 0 && r == 0) {
		snprintf(err, errlen, "close temp file %s beside %s: %s",
		    f->tmp, f->path, strerror(errno));
		r = -1;
	}
	if (r != 0)
		sync_discard(f);
	return r;
}

/* Rename the prepared temp file over f->path and sync its directory. */
static int
sync_commit(struct sync_file *f, char *err, size_t errlen)
{
	if (safefile_replace(f->dirfd, f->tmp, f->base, f->path, err,
	    errlen) != 0) {
		sync_discard(f);	/* when the rename is what failed */
		return -1;
	}
	f->tmp[0] = '\0';
	return 0;
}

/* The certificates after the leaf in stored PEM text ("" when none). */
static const char *
pem_chain(const char *pem)
{
	static const char	end[] = "-----END CERTIFICATE-----";
	const char		*p;

	if ((p = strstr(pem, end)) == NULL ||
	    (p = strstr(p + sizeof(end) - 1, "-----BEGIN ")) == NULL)
		return pem + strlen(pem);
	return p;
}

/*
 * Keep the last SYNC_TAIL bytes of what the reload command wrote on
 * stderr, turned into one line of valid UTF-8 for a detail.
 */
static void
sync_tail_text(const struct sync_ctx *ctx, char *out, size_t outlen)
{
	const unsigned char	*p = (const unsigned char *)ctx->tail;
	size_t			 len = ctx->tail_len, i, n = 0;
	int			 utf8;

	/* A tail may start inside a character, and ends in a newline. */
	while (len > 0 && (*p & 0xc0) == 0x80) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
	    p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	while (len > 0 && (*p == '\n' || *p == '\r' || *p == ' ' ||
	    *p == '\t')) {
		p++;
		len--;
	}
	utf8 = util_utf8_valid((const char *)p, len);
	for (i = 0; i < len && n + 1 < outlen; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			out[n++] = ' ';
		else if (p[i] >= 0x80 && !utf8)
			out[n++] = '?';
		else
			out[n++] = (char)p[i];
	}
	/* Do not end inside a character cut by outlen. */
	if (n + 1 >= outlen && utf8)
		while (n > 0 && ((unsigned char)out[n - 1] & 0x80) != 0 &&
		    !util_utf8_valid(out, n))
			n--;
	out[n] = '\0';
}

static void
sync_tail_add(struct sync_ctx *ctx, const char *buf, size_t n)
{
	if (n >= SYNC_TAIL) {
		memcpy(ctx->tail, buf + n - SYNC_TAIL, SYNC_TAIL);
		ctx->tail_len = SYNC_TAIL;
		return;
	}
	if (ctx->tail_len + n > SYNC_TAIL) {
		memmove(ctx->tail, ctx->tail + (ctx->tail_len + n - SYNC_TAIL),
		    SYNC_TAIL - n);
		ctx->tail_len = SYNC_TAIL - n;
	}
	memcpy(ctx->tail + ctx->tail_len, buf, n);
	ctx->tail_len += n;
}

/* Read what the command wrote; closes the pipe at EOF.  Never blocks. */
static void
sync_child_drain(struct sync_ctx *ctx)
{
	char	buf[SYNC_CHUNK];
	ssize_t	n;

	while (ctx->child_fd != -1) {
		n = read(ctx->child_fd, buf, sizeof(buf));
		if (n > 0) {
			sync_tail_add(ctx, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		event_free(ctx->child_ev);
		ctx->child_ev = NULL;
		(void)close(ctx->child_fd);
		ctx->child_fd = -1;
	}
}

static void
sync_child_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sync_child_drain(arg);
}

/* Stop following the command's stderr (a daemon it started may keep it). */
static void
sync_child_close(struct sync_ctx *ctx)
{
	if (ctx->child_ev != NULL)
		event_free(ctx->child_ev);
	ctx->child_ev = NULL;
	if (ctx->child_fd != -1)
		(void)close(ctx->child_fd);
	ctx->child_fd = -1;
}

static void	sync_schedule(struct sync_ctx *);

/* Applying ctx->last failed: apply it again after the back-off. */
static void
sync_retry_later(struct sync_ctx *ctx)
{
	struct timeval	tv;
	unsigned	ms;

	if (ctx->retry_ms == 0)
		ctx->retry_ms = SYNC_RETRY_MS;
	ms = ctx->retry_ms;
	ctx->retry_ms = ms >= SYNC_RETRY_MAX_MS / 2 ? SYNC_RETRY_MAX_MS :
	    ms * 2;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ctx->retry_timer, &tv);
	sync_log(ctx, "trying again in %u s unless a change comes first",
	    ms / 1000);
}

/* Applied, or replaced by a newer change: no retry, back-off anew. */
static void
sync_retry_reset(struct sync_ctx *ctx)
{
	evtimer_del(ctx->retry_timer);
	ctx->retry_ms = 0;
}

/*
 * Ack the outcome of applying revision rev (ctx->last once applied): a
 * failure is applied again after the back-off unless no try can succeed
 * (the --pid to signal is gone); success (ok or requested) ends the tries.
 */
static void
sync_outcome_check(struct sync_ctx *ctx, uint64_t rev, int status,
    const char *detail, const char *served, int64_t verified_at)
{
	sync_ack_check(ctx, rev, status, detail, served, verified_at);
	if (status != CERTD_ACK_FAILED || (ctx->sig != 0 &&
	    ctx->pid_file == NULL && ctx->gone_pid != 0))
		sync_retry_reset(ctx);
	else
		sync_retry_later(ctx);
}

static void
sync_outcome(struct sync_ctx *ctx, uint64_t rev, int status,
    const char *detail)
{
	sync_outcome_check(ctx, rev, status, detail, NULL, 0);
}

/* A reload command runs or a check does: what waits, waits for it. */
static int
sync_busy(const struct sync_ctx *ctx)
{
	return ctx->child != 0 || ctx->probing;
}

/*
 * Whether rev is still the change to confirm: not replaced by a newer one
 * waiting, not deleted since.
 */
static int
sync_current(const struct sync_ctx *ctx, uint64_t rev)
{
	return ctx->pending == NULL && ctx->last != NULL &&
	    ctx->last->revision == rev;
}

static void	copy_utf8(char *, size_t, const char *);

/* A detail, cut to what certd keeps at a character boundary. */
static void __attribute__((format(printf, 3, 4)))
sync_detail(char *out, size_t len, const char *f, ...)
{
	char	buf[2 * SYNC_DETAIL_MAX];
	va_list	ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	copy_utf8(out, len - 1, buf);
}

/* The --verify check of probe_rev ended. */
static void
sync_verified(const struct tlsprobe_result *res, void *arg)
{
	struct sync_ctx	*ctx = arg;
	char		 detail[SYNC_DETAIL_MAX], where[64];
	unsigned	 ms = res->elapsed_ms;

	ctx->probing = 0;
	ctx->reload_owed = !res->ok;
	if (res->ok && ctx->n_verify == 1)
		snprintf(where, sizeof(where), "%s",
		    tlsprobe_target_name(ctx->verify[0]));
	else if (res->ok)
		snprintf(where, sizeof(where), "%zu targets", ctx->n_verify);
	if (res->ok)
		sync_detail(detail, sizeof(detail), "%s; served at %s after "
		    "%u.%u s", ctx->probe_what, where, ms / 1000,
		    ms % 1000 / 100);
	else
		sync_detail(detail, sizeof(detail), "%s; not served within %u "
		    "s: %s %s%s%s", ctx->probe_what, ctx->verify_timeout_s,
		    res->target, res->why,
		    res->served != NULL ? ", sha256 " : "",
		    res->served != NULL ? res->served : "");
	if (ctx->probe_forgotten) {
		ctx->probe_forgotten = 0;
		sync_log(ctx, "revision %llu: %s: %s (not acked: the whole "
		    "state came since)", (unsigned long long)ctx->probe_rev,
		    res->ok ? "ok" : "failed", detail);
	} else if (!sync_current(ctx, ctx->probe_rev))
		sync_ack_check(ctx, ctx->probe_rev, res->ok ? CERTD_ACK_OK :
		    CERTD_ACK_FAILED, detail, res->served, res->verified_at);
	else
		sync_outcome_check(ctx, ctx->probe_rev, res->ok ?
		    CERTD_ACK_OK : CERTD_ACK_FAILED, detail, res->served,
		    res->verified_at);
	if (ctx->pending != NULL)
		sync_schedule(ctx);
}

/*
 * The reload of rev went through (what says how): with --verify, check
 * that the server presents the leaf written, acked when the check ends;
 * without, or when rev is no longer current, ack `requested`.
 */
static void
sync_reloaded(struct sync_ctx *ctx, uint64_t rev, const char *what,
    int current)
{
	char	detail[SYNC_DETAIL_MAX];

	ctx->reload_owed = 0;
	if (ctx->n_verify == 0 || !current) {
		sync_detail(detail, sizeof(detail), "%s; not confirmed (%s)",
		    what, ctx->n_verify == 0 ? "no --verify" :
		    "a newer change came first");
		if (current)
			sync_outcome(ctx, rev, CERTD_ACK_REQUESTED, detail);
		else
			sync_ack(ctx, rev, CERTD_ACK_REQUESTED, detail);
		return;
	}
	if (*ctx->written_fp == '\0') {
		ctx->reload_owed = 1;
		sync_outcome(ctx, rev, CERTD_ACK_FAILED, "the certificate "
		    "written has no leaf to compare with what is served");
		return;
	}
	tlsprobe_free(ctx->probe);
	if ((ctx->probe = tlsprobe_start(ctx->base, ctx->verify, ctx->n_verify,
	    ctx->written_fp, ctx->verify_timeout_s * 1000, sync_verified,
	    ctx)) == NULL) {
		ctx->reload_owed = 1;
		sync_outcome(ctx, rev, CERTD_ACK_FAILED, "--verify: cannot "
		    "start the check (out of memory)");
		return;
	}
	ctx->probing = 1;
	ctx->probe_rev = rev;
	ctx->probe_forgotten = 0;
	snprintf(ctx->probe_what, sizeof(ctx->probe_what), "%s", what);
	sync_log(ctx, "revision %llu: %s; checking that %s%s serve%s sha256 "
	    "%.16s... (at most %u s)", (unsigned long long)rev, what,
	    tlsprobe_target_name(ctx->verify[0]), ctx->n_verify > 1 ?
	    " and the other targets" : "", ctx->n_verify > 1 ? "" : "s",
	    ctx->written_fp, ctx->verify_timeout_s);
}

/* The reload command exited with status st. */
static void
sync_child_done(struct sync_ctx *ctx, int st)
{
	char	detail[SYNC_DETAIL_MAX], tail[SYNC_TAIL + 1];
	int	ok = 0;

	sync_child_drain(ctx);
	sync_child_close(ctx);
	evtimer_del(ctx->child_timer);
	sync_tail_text(ctx, tail, sizeof(tail));
	if (ctx->timed_out)
		snprintf(detail, sizeof(detail), "timeout after %u s",
		    ctx->timeout_s);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		snprintf(detail, sizeof(detail), "reload command exited 0");
		ok = 1;
	} else if (WIFEXITED(st))
		snprintf(detail, sizeof(detail), "exit %d%s%s",
		    WEXITSTATUS(st), *tail != '\0' ? ": " : "", tail);
	else
		snprintf(detail, sizeof(detail), "killed by signal %d%s%s",
		    WIFSIGNALED(st) ? WTERMSIG(st) : 0,
		    *tail != '\0' ? ": " : "", tail);
	ctx->child = 0;
	ctx->reload_owed = !ok;
	if (ctx->child_forgotten) {
		/* its revision may be of a store this one was restored from */
		ctx->child_forgotten = 0;
		sync_log(ctx, "revision %llu: %s: %s (not acked: the whole "
		    "state came since)", (unsigned long long)ctx->child_rev,
		    ok ? "requested" : "failed", detail);
	} else if (ok)
		sync_reloaded(ctx, ctx->child_rev, detail,
		    sync_current(ctx, ctx->child_rev));
	else if (!sync_current(ctx, ctx->child_rev))
		sync_ack(ctx, ctx->child_rev, 0, detail); /* replaced, deleted */
	else
		sync_outcome(ctx, ctx->child_rev, 0, detail);
	if (ctx->pending != NULL)
		sync_schedule(ctx);
}

/* Reap the command if it has exited; returns 1 when it had. */
static int
sync_child_reap(struct sync_ctx *ctx)
{
	pid_t	r;
	int	st;

	if (ctx->child == 0)
		return 0;
	do
		r = waitpid(ctx->child, &st, WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r == -1)
		st = 0x7f00;	/* lost (ECHILD): reported as exit 127 */
	sync_child_done(ctx, st);
	return 1;
}

static void
sync_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)sync_child_reap(arg);
}

/*
 * The command's time is up: kill its whole process group, then poll for
 * its exit (SIGCHLD reports it too; polling keeps this bounded whatever).
 */
static void
sync_child_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;
	struct timeval	 tv = { 0, SYNC_REAP_MS * 1000 };

	(void)fd;
	(void)what;
	if (ctx->child == 0)
		return;
	if (!ctx->timed_out) {
		ctx->timed_out = 1;
		sync_log(ctx, "reload command timed out after %u s; killing "
		    "process group %ld", ctx->timeout_s, (long)ctx->child);
		(void)kill(-ctx->child, SIGKILL);
	}
	if (!sync_child_reap(ctx))
		evtimer_add(ctx->child_timer, &tv);
}

/*
 * Start the reload command: /bin/sh -c CMD in its own process group,
 * stdin /dev/null, stdout to our stderr, stderr into a pipe we keep the
 * tail of.  Returns 0, or -1 with the reason in err.
 */
static int
sync_spawn(struct sync_ctx *ctx, uint64_t rev, char *err, size_t errlen)
{
	struct timeval	tv = { (time_t)ctx->timeout_s, 0 };
	int		fds[2] = { -1, -1 }, null = -1, r = -1;
	pid_t		pid;

	if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "exec: /dev/null: %s", strerror(errno));
		goto out;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "exec: pipe: %s", strerror(errno));
		goto out;
	}
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0 ||
	    (ctx->child_ev = event_new(ctx->base, fds[0], EV_READ | EV_PERSIST,
	    sync_child_read_cb, ctx)) == NULL ||
	    event_add(ctx->child_ev, NULL) != 0) {
		snprintf(err, errlen, "exec: cannot watch its stderr");
		goto out;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "exec: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls until exec. */
		(void)setpgid(0, 0);
		if (dup2(null, STDIN_FILENO) == -1 ||
		    dup2(STDERR_FILENO, STDOUT_FILENO) == -1 ||
		    dup2(fds[1], STDERR_FILENO) == -1)
			_exit(126);
		execl("/bin/sh", "sh", "-c", ctx->exec, (char *)NULL);
		_exit(127);
	}
	/* Both sides set the group: whichever runs first wins the race. */
	(void)setpgid(pid, pid);
	ctx->child = pid;
	ctx->child_rev = rev;
	ctx->child_fd = fds[0];
	fds[0] = -1;
	ctx->timed_out = 0;
	ctx->tail_len = 0;
	evtimer_add(ctx->child_timer, &tv);
	sync_log(ctx, "revision %llu: exec (pid %ld): %s",
	    (unsigned long long)rev, (long)pid, ctx->exec);
	r = 0;
out:
	if (r != 0 && ctx->child_ev != NULL) {
		event_free(ctx->child_ev);
		ctx->child_ev = NULL;
	}
	if (fds[0] != -1)
		(void)close(fds[0]);
	if (fds[1] != -1)
		(void)close(fds[1]);
	if (null != -1)
		(void)close(null);
	return r;
}

/*
 * The pid to signal: --pid, or the first number in --pid-file, whose
 * fstat goes into *st (zeroes with --pid).  The pid file names a process
 * that root may signal: it is read as the targets are written, through a
 * directory opened with no link on the way and writable only by root or
 * us, never following a link, and only when no other uid may write it.
 * Its directory is opened at each read (a server's runtime directory may
 * be made anew when it restarts).
 */
static int
sync_target_pid(const struct sync_ctx *ctx, pid_t *out, struct stat *st,
    char *err, size_t errlen)
{
	char		 buf[32], e[SYNC_DETAIL_MAX - 32], *p, *end;
	ssize_t		 n = -1;
	unsigned long	 v;
	int		 dfd, fd = -1;

	memset(st, 0, sizeof(*st));
	if (ctx->pid != 0) {
		*out = ctx->pid;
		return 0;
	}
	if (sync_opendir(ctx, ctx->pid_file, &dfd, e, sizeof(e)) != 0 ||
	    safefile_open(dfd, base_of(ctx->pid_file), ctx->pid_file, &fd, st,
	    e, sizeof(e)) != 0) {
		snprintf(err, errlen, "pid file %s", e);
		goto out;
	}
	if (perm_check_uid(st, "pid file", ctx->pid_file, PERM_OWNER_ROOT |
	    PERM_NO_WRITE, ctx->euid, err, errlen) != 0)
		goto out;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		snprintf(err, errlen, "pid file %s: %s", ctx->pid_file,
		    strerror(errno));
out:
	if (fd != -1)
		(void)close(fd);
	if (dfd != -1)
		(void)close(dfd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	errno = 0;
	v = (*p >= '0' && *p <= '9') ? strtoul(p, &end, 10) : 0;
	if (v == 0 || errno != 0 || v > INT_MAX ||
	    (*end != '\0' && *end != '\n' && *end != ' ' && *end != '\t' &&
	    *end != '\r')) {
		snprintf(err, errlen, "pid file %s: no pid in it",
		    ctx->pid_file);
		return -1;
	}
	*out = (pid_t)v;
	return 0;
}

/* Run the reload action for revision rev; acks unless a command started. */
static void
sync_reload(struct sync_ctx *ctx, uint64_t rev)
{
	struct stat	st;
	char		detail[SYNC_DETAIL_MAX];
	pid_t		pid;

	if (ctx->exec != NULL) {
		if (sync_spawn(ctx, rev, detail, sizeof(detail)) == 0)
			return;		/* acked when it exits */
		goto failed;
	}
	if (ctx->sig == 0) {
		sync_reloaded(ctx, rev, "written, no reload", 1);
		return;
	}
	if (sync_target_pid(ctx, &pid, &st, detail, sizeof(detail)) != 0)
		goto failed;
	/*
	 * A pid found gone is not signalled again (in time another process
	 * gets it) unless the pid file is another one or was written since
	 * (device, inode, modification and change times): with --pid that is
	 * the end (acked failed, no retry); a pid file is tried again until
	 * the server, started again, names itself in it.
	 */
	if (pid == ctx->gone_pid && st.st_dev == ctx->gone_st.st_dev &&
	    st.st_ino == ctx->gone_st.st_ino &&
	    st.st_mtim.tv_sec == ctx->gone_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ctx->gone_st.st_mtim.tv_nsec &&
	    st.st_ctim.tv_sec == ctx->gone_st.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == ctx->gone_st.st_ctim.tv_nsec) {
		snprintf(detail, sizeof(detail), "pid %ld is gone (no such "
		    "process)%s", (long)pid, ctx->pid_file != NULL ?
		    "; waiting for the pid file to name another" : "");
		goto failed;
	}
	if (kill(pid, ctx->sig) != 0) {
		if (errno == ESRCH) {
			ctx->gone_pid = pid;
			ctx->gone_st = st;
		}
		snprintf(detail, sizeof(detail), "kill: %s (SIG%s to pid %ld)",
		    strerror(errno), ctx->signame, (long)pid);
		goto failed;
	}
	snprintf(detail, sizeof(detail), "reload requested (SIG%s to pid %ld)",
	    ctx->signame, (long)pid);
	sync_reloaded(ctx, rev, detail, 1);
	return;
failed:
	ctx->reload_owed = 1;
	sync_outcome(ctx, rev, 0, detail);
}

/*
 * Write the files marked changed: all temp files first, then all renames,
 * so the set changes as nearly at once as rename allows.  On failure the
 * temp files are removed (files renamed before it stay) and err says why.
 */
static int
sync_write(struct sync_ctx *ctx, const struct sync_rec *rec,
    const char *const text[], const size_t len[], const int changed[],
    char *err, size_t errlen)
{
	char	wrote[1024];
	int	i, r = -1;

	wrote[0] = '\0';
	for (i = 0; i < SYNC_NFILES; i++)
		if (changed[i] && sync_prepare(ctx, &ctx->files[i], text[i],
		    len[i], err, errlen) != 0)
			goto out;
	for (i = 0; i < SYNC_NFILES; i++) {
		if (!changed[i])
			continue;
		if (sync_commit(&ctx->files[i], err, errlen) != 0)
			goto out;
		snprintf(wrote + strlen(wrote), sizeof(wrote) - strlen(wrote),
		    "%s%s", wrote[0] != '\0' ? ", " : "", ctx->files[i].path);
	}
	r = 0;
out:
	for (i = 0; i < SYNC_NFILES; i++)
		sync_discard(&ctx->files[i]);
	if (wrote[0] != '\0')
		sync_log(ctx, "revision %llu: certificate %llu: wrote %s%s",
		    (unsigned long long)rec->revision,
		    (unsigned long long)rec->id, wrote,
		    r != 0 ? " before the failure" : "");
	return r;
}

/*
 * Apply the pending record: compare every file with what it should hold,
 * write the ones that differ, then reload (also when nothing differs but
 * the last reload failed).
 */
static void
sync_apply(struct sync_ctx *ctx)
{
	struct sync_rec	*rec = ctx->pending;
	struct sync_file *f;
	const char	*text[SYNC_NFILES];
	size_t		 len[SYNC_NFILES], cl, kl;
	char		*bundle = NULL, err[SYNC_DETAIL_MAX];
	int		 changed[SYNC_NFILES], nchanged = 0, same, i;

	ctx->pending = NULL;
	ctx->applied = 1;
	cl = strlen(rec->certificate);
	/* The leaf a --verify check wants served. */
	if (ctx->n_verify > 0 && cert_fingerprint_pem(rec->certificate, cl,
	    ctx->written_fp) != 0)
		ctx->written_fp[0] = '\0';
	kl = strlen(rec->private_key);
	text[SYNC_CERT] = rec->certificate;
	len[SYNC_CERT] = cl;
	text[SYNC_KEY] = rec->private_key;
	len[SYNC_KEY] = kl;
	text[SYNC_CHAIN] = pem_chain(rec->certificate);
	len[SYNC_CHAIN] = strlen(text[SYNC_CHAIN]);
	text[SYNC_BUNDLE] = NULL;
	len[SYNC_BUNDLE] = 0;
	if (ctx->files[SYNC_BUNDLE].path != NULL) {
		/* haproxy's form: the certificates, then the key. */
		len[SYNC_BUNDLE] = cl + (cl > 0 && rec->certificate[cl - 1] !=
		    '\n') + kl;
		if ((bundle = malloc(len[SYNC_BUNDLE] + 1)) == NULL) {
			sync_outcome(ctx, rec->revision, 0, "out of memory");
			goto out;
		}
		memcpy(bundle, rec->certificate, cl);
		if (len[SYNC_BUNDLE] > cl + kl)
			bundle[cl] = '\n';
		memcpy(bundle + len[SYNC_BUNDLE] - kl, rec->private_key, kl);
		bundle[len[SYNC_BUNDLE]] = '\0';
		text[SYNC_BUNDLE] = bundle;
	}

	/* Something there that must not be touched: nothing is written. */
	if (sync_dirs(ctx, err, sizeof(err)) != 0) {
		sync_outcome(ctx, rec->revision, 0, err);
		goto out;
	}
	for (i = 0; i < SYNC_NFILES; i++) {
		f = &ctx->files[i];
		if ((same = f->path == NULL ? 1 : sync_same(ctx, f, text[i],
		    len[i], err, sizeof(err))) < 0) {
			sync_outcome(ctx, rec->revision, 0, err);
			goto out;
		}
		changed[i] = !same;
		nchanged += changed[i];
	}
	if (nchanged == 0 && !ctx->reload_owed) {
		sync_reloaded(ctx, rec->revision, "unchanged", 1);
		goto out;
	}
	if (nchanged == 0)
		sync_log(ctx, "revision %llu: files unchanged; reloading again "
		    "after the failed reload",
		    (unsigned long long)rec->revision);
	else if (sync_write(ctx, rec, text, len, changed, err,
	    sizeof(err)) != 0) {
		/* Some files may be new: the next try must reload. */
		ctx->reload_owed = 1;
		sync_outcome(ctx, rec->revision, 0, err);
		goto out;
	}
	sync_reload(ctx, rec->revision);
out:
	if (bundle != NULL)
		free_secret(bundle);
	sync_rec_free(ctx->last);
	ctx->last = rec;		/* for a retry */
}

static void
sync_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;

	(void)fd;
	(void)what;
	/* A change waiting or being applied supersedes the failed one. */
	if (sync_busy(ctx) || ctx->pending != NULL || ctx->last == NULL)
		return;
	sync_log(ctx, "revision %llu: trying again",
	    (unsigned long long)ctx->last->revision);
	ctx->pending = ctx->last;
	ctx->pending_since = mono_ms();
	ctx->last = NULL;
	sync_apply(ctx);
}

static void
sync_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;

	(void)fd;
	(void)what;
	/* A running command's or check's completion schedules what waits. */
	if (!sync_busy(ctx) && ctx->pending != NULL)
		sync_apply(ctx);
}

/*
 * Arm the debounce timer for pending: the first state of a run at once,
 * later changes once none came for debounce_ms, but never later than
 * SYNC_MAXWAIT_FACTOR windows after the first of them.
 */
static void
sync_schedule(struct sync_ctx *ctx)
{
	struct timeval	tv;
	int64_t		delay = 0, left;

	if (sync_busy(ctx) || ctx->pending == NULL)
		return;
	if (ctx->applied) {
		delay = ctx->debounce_ms;
		left = ctx->pending_since +
		    (int64_t)ctx->debounce_ms * SYNC_MAXWAIT_FACTOR - mono_ms();
		if (left < delay)
			delay = left > 0 ? left : 0;
	}
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(ctx->timer, &tv);
}

static void
sync_put(struct sync_ctx *ctx, const struct certd_event *ev)
{
	const struct certd_cert	*c = ev->cert;
	struct sync_rec		*rec;

	if (c->certificate == NULL || c->private_key == NULL) {
		sync_ack(ctx, ev->revision, 0, c->certificate == NULL ?
		    "no certificate in the event" : "no private key: this "
		    "peer lacks the key permission");
		return;
	}
	if ((rec = calloc(1, sizeof(*rec))) == NULL ||
	    (rec->certificate = strdup(c->certificate)) == NULL ||
	    (rec->private_key = strdup(c->private_key)) == NULL) {
		sync_rec_free(rec);
		sync_ack(ctx, ev->revision, 0, "out of memory");
		return;
	}
	rec->revision = ev->revision;
	rec->id = c->id;
	sync_retry_reset(ctx);		/* the newer change is applied instead */
	if (ctx->pending == NULL)
		ctx->pending_since = mono_ms();
	else
		sync_log(ctx, "revision %llu: replaces revision %llu not yet "
		    "applied", (unsigned long long)rec->revision,
		    (unsigned long long)ctx->pending->revision);
	sync_rec_free(ctx->pending);
	ctx->pending = rec;
	sync_schedule(ctx);
}

/*
 * Drop what waits to be applied or owes a retry: after a delete (or a
 * certificate that left the alias), and when the whole current state
 * follows (state: a resync, or a replay from revision 0), which delivers
 * the certificate again if it still matches and leaves it out, without a
 * delete event, if not.  Then the revisions acked so far may be of a store
 * this one was restored from: the last ack is not resent, the outcome of
 * a reload still running is logged but not acked, and the next ack is
 * sent whatever its revision.
 */
static void
sync_forget(struct sync_ctx *ctx, int state)
{
	if (ctx->pending != NULL) {
		sync_rec_free(ctx->pending);
		ctx->pending = NULL;
		evtimer_del(ctx->timer);
	}
	sync_rec_free(ctx->last);
	ctx->last = NULL;
	sync_retry_reset(ctx);
	if (state) {
		ctx->have_ack = 0;
		ctx->child_forgotten = ctx->child != 0;
		ctx->probe_forgotten = ctx->probing;
	}
}

static void
sync_event_cb(const struct certd_event *ev, void *arg)
{
	struct sync_ctx	*ctx = arg;

	switch (ev->kind) {
	case CERTD_EVENT_CONNECTED:
		sync_log(ctx, "watching (certd revision %llu%s)",
		    (unsigned long long)ev->revision,
		    ev->state ? "; the current state follows" : "");
		if (ev->state)
			sync_forget(ctx, 1);
		/* A new connection is a new watch: tell certd where we are. */
		if (ctx->have_ack && certd_watch_ack_status(ctx->w,
		    ctx->ack_rev, (enum certd_ack_status)ctx->ack_status,
		    ctx->ack_detail, *ctx->ack_served != '\0' ?
		    ctx->ack_served : NULL, ctx->ack_verified_at) != 0)
			sync_log(ctx, "could not resend the last ack");
		break;
	case CERTD_EVENT_DISCONNECTED:
		sync_log(ctx, "disconnected: %s%s", ev->error != NULL ?
		    ev->error : "?", ev->ended ? "" : "; reconnecting");
		if (ev->ended) {
			snprintf(ctx->err, sizeof(ctx->err), "%s",
			    ev->error != NULL ? ev->error : "disconnected");
			ctx->code = ev->code;
			ctx->failed = 1;
			event_base_loopbreak(ctx->base);
		}
		break;
	case CERTD_EVENT_RESYNC:
		sync_log(ctx, "resync at revision %llu: the current state "
		    "follows", (unsigned long long)ev->revision);
		sync_forget(ctx, 1);
		break;
	case CERTD_EVENT_PUT:
		if (ev->cert == NULL)
			break;
		if (!ev->left) {
			sync_put(ctx, ev);
			break;
		}
		/* Renamed away from our alias: like a delete, not ours. */
		/* FALLTHROUGH */
	case CERTD_EVENT_DELETE:
		if (ev->kind == CERTD_EVENT_PUT)
			sync_log(ctx, "certificate %llu left the alias (now %s)",
			    (unsigned long long)ev->cert->id,
			    ev->cert->alias != NULL ? ev->cert->alias : "-");
		else
			sync_log(ctx, "certificate %llu deleted",
			    ev->cert != NULL ?
			    (unsigned long long)ev->cert->id : 0ULL);
		sync_forget(ctx, 0);	/* nothing of it to apply or retry */
		sync_ack(ctx, ev->revision, 1, ev->kind == CERTD_EVENT_PUT ?
		    "left the alias; files kept" : "deleted; files kept");
		break;
	}
}

static void
sync_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;

	(void)what;
	sync_log(ctx, "stopping on %s", sig == SIGINT ? "SIGINT" :
	    sig == SIGHUP ? "SIGHUP" : "SIGTERM");
	ctx->stopped = 1;
	event_base_loopbreak(ctx->base);
}

/* HUP, SIGHUP or a number; the name without SIG into name. */
static int
parse_signal(const char *s, int *sig, char *name, size_t namelen)
{
	static const struct {
		const char	*name;
		int		 sig;
	} sigs[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		{ "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
		{ "WINCH", SIGWINCH },
	};
	uint64_t	v;
	size_t		i;

	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (strcasecmp(s, sigs[i].name) == 0) {
			*sig = sigs[i].sig;
			snprintf(name, namelen, "%s", sigs[i].name);
			return 0;
		}
	}
	if (util_parse_u64(s, strlen(s), 64, &v) != 0 || v == 0)
		return -1;
	*sig = (int)v;
	snprintf(name, namelen, "%d", *sig);
	return 0;
}

/* Strict octal, at most 0777. */
static int
parse_mode(const char *s, mode_t *out)
{
	unsigned	v = 0;

	if (*s == '\0' || strlen(s) > 4)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (unsigned)(*s - '0');
	}
	if (v > 0777)
		return -1;
	*out = (mode_t)v;
	return 0;
}

/* USER[:GROUP], names or numbers; USER alone keeps the group. */
static int
parse_owner(const char *s, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;
	struct group	*gr;
	const char	*colon = strchr(s, ':');
	char		 user[256];
	uint64_t	 v;
	size_t		 n = colon != NULL ? (size_t)(colon - s) : strlen(s);

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (n >= sizeof(user))
		return certctl_out_fail_as(EXIT_USAGE, "sync: --owner: user "
		    "name too long");
	memcpy(user, s, n);
	user[n] = '\0';
	if (n > 0) {
		if ((pw = getpwnam(user)) != NULL)
			*uid = pw->pw_uid;
		else if (util_parse_u64(user, n, UINT32_MAX - 1, &v) == 0)
			*uid = (uid_t)v;
		else
			return certctl_out_fail_as(EXIT_USAGE, "sync: --owner: "
			    "unknown user '%s'", user);
	}
	if (colon != NULL && colon[1] != '\0') {
		if ((gr = getgrnam(colon + 1)) != NULL)
			*gid = gr->gr_gid;
		else if (util_parse_u64(colon + 1, strlen(colon + 1),
		    UINT32_MAX - 1, &v) == 0)
			*gid = (gid_t)v;
		else
			return certctl_out_fail_as(EXIT_USAGE, "sync: --owner: "
			    "unknown group '%s'", colon + 1);
	}
	if (*uid == (uid_t)-1 && *gid == (gid_t)-1)
		return certctl_out_usage_error("sync: --owner wants "
		    "USER[:GROUP]");
	return 0;
}

/* At most max bytes of s into out, not cutting a UTF-8 character. */
static void
copy_utf8(char *out, size_t max, const char *s)
{
	size_t	n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

/*
 * Before anything runs, open the directory of every file and check the
 * pid file's: one reached through a link, or writable by another uid,
 * ends the command with the reason (EXIT_USAGE); one that does not exist
 * yet is opened when a change comes (sync_dirs).  Two options naming one
 * file (one name in one directory, however spelt) are a usage error.
 */
static int
sync_open(struct sync_ctx *ctx)
{
	struct sync_file	*a, *b;
	struct stat		 sa, sb;
	char			 err[SYNC_DETAIL_MAX];
	int			 i, j, fd, r;

	for (i = 0; i < SYNC_NFILES; i++) {
		a = &ctx->files[i];
		if (a->path == NULL)
			continue;
		a->base = base_of(a->path);
		if (*a->base == '\0' || strcmp(a->base, ".") == 0 ||
		    strcmp(a->base, "..") == 0)
			return certctl_out_usage_error("sync: %s %s names a "
			    "directory", a->label, a->path);
		r = sync_opendir(ctx, a->path, &a->dirfd, err, sizeof(err));
		if (r == SAFEFILE_REFUSED)
			return certctl_out_fail_as(EXIT_USAGE, "sync: %s %s: "
			    "%s", a->label, a->path, err);
		if (r != 0)
			sync_log(ctx, "%s (tried again at each change)", err);
	}
	if (ctx->pid_file != NULL) {
		r = sync_opendir(ctx, ctx->pid_file, &fd, err, sizeof(err));
		if (fd != -1)
			(void)close(fd);
		if (r == SAFEFILE_REFUSED)
			return certctl_out_fail_as(EXIT_USAGE, "sync: "
			    "--pid-file %s: %s", ctx->pid_file, err);
	}
	for (i = 0; i < SYNC_NFILES; i++)
		for (j = i + 1; j < SYNC_NFILES; j++) {
			a = &ctx->files[i];
			b = &ctx->files[j];
			if (a->path == NULL || b->path == NULL ||
			    strcmp(a->base, b->base) != 0)
				continue;
			if (a->dirfd == -1 || b->dirfd == -1 ?
			    strcmp(a->path, b->path) == 0 :
			    fstat(a->dirfd, &sa) == 0 &&
			    fstat(b->dirfd, &sb) == 0 &&
			    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
				return certctl_out_usage_error("sync: %s and "
				    "%s name the same file", a->label,
				    b->label);
		}
	return 0;
}

/*
 * Parse and resolve the --verify targets (getaddrinfo may block: before
 * the loop runs).  A target that does not parse or resolve ends the
 * command with status 2.
 */
static int
sync_verify_targets(struct sync_ctx *ctx, const char *const *args, size_t n)
{
	char	err[256];

	for (ctx->n_verify = 0; ctx->n_verify < n; ctx->n_verify++)
		if (tlsprobe_target_parse(args[ctx->n_verify],
		    &ctx->verify[ctx->n_verify], err, sizeof(err)) != 0)
			return certctl_out_usage_error("sync: --verify %s: %s",
			    args[ctx->n_verify], err);
	return 0;
}

static int
cmd_sync(int argc, char *argv[], struct global *g)
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "id",		required_argument,	NULL, OPT_ID },
		{ "alias",	required_argument,	NULL, OPT_ALIAS },
		{ "cert-file",	required_argument,	NULL, OPT_CERT_FILE },
		{ "key-file",	required_argument,	NULL, OPT_KEY_FILE },
		{ "chain-file",	required_argument,	NULL, OPT_CHAIN_FILE },
		{ "bundle-file", required_argument,	NULL, OPT_BUNDLE_FILE },
		{ "mode",	required_argument,	NULL, OPT_MODE },
		{ "owner",	required_argument,	NULL, OPT_OWNER },
		{ "exec",	required_argument,	NULL, OPT_EXEC },
		{ "signal",	required_argument,	NULL, OPT_SIGNAL },
		{ "pid",	required_argument,	NULL, OPT_PID },
		{ "pid-file",	required_argument,	NULL, OPT_PID_FILE },
		{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
		{ "debounce",	required_argument,	NULL, OPT_DEBOUNCE },
		{ "name",	required_argument,	NULL, OPT_NAME },
		{ "verify",	required_argument,	NULL, OPT_VERIFY },
		{ "verify-timeout", required_argument,	NULL,
		    OPT_VERIFY_TIMEOUT },
		{ NULL,		0,			NULL, 0 },
	};
	struct certd_watch_opts	 opts;
	struct sync_ctx		 ctx;
	struct event		*sigint = NULL, *sigterm = NULL, *sigchld = NULL;
	struct event		*sighup = NULL;
	const char		*alias = NULL, *name = NULL, *owner = NULL;
	const char		*signal_arg = NULL;
	const char		*verify[SYNC_VERIFY_MAX];
	char			 err[512], idname[32];
	uint64_t		 id = 0, v;
	mode_t			 mode = 0644;
	size_t			 n_verify = 0;
	int			 ch, r = EXIT_USAGE, mode_given = 0, i;
	int			 vtimeout_given = 0;

	memset(&opts, 0, sizeof(opts));
	memset(&ctx, 0, sizeof(ctx));
	ctx.child_fd = -1;
	ctx.uid = (uid_t)-1;
	ctx.gid = (gid_t)-1;
	ctx.timeout_s = SYNC_TIMEOUT_S;
	ctx.debounce_ms = SYNC_DEBOUNCE_MS;
	ctx.verify_timeout_s = SYNC_VERIFY_TIMEOUT_S;
	ctx.files[SYNC_CERT].label = "--cert-file";
	ctx.files[SYNC_KEY].label = "--key-file";
	ctx.files[SYNC_CHAIN].label = "--chain-file";
	ctx.files[SYNC_BUNDLE].label = "--bundle-file";
	for (i = 0; i < SYNC_NFILES; i++)
		ctx.files[i].dirfd = -1;
	ctx.euid = geteuid();
	while ((ch = getopt_long(argc, argv, ":s:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ID:
			if (parse_u64(optarg, "id", 0, &id) != 0)
				return EXIT_USAGE;
			break;
		case OPT_ALIAS:
			alias = optarg;
			break;
		case OPT_CERT_FILE:
			ctx.files[SYNC_CERT].path = optarg;
			break;
		case OPT_KEY_FILE:
			ctx.files[SYNC_KEY].path = optarg;
			break;
		case OPT_CHAIN_FILE:
			ctx.files[SYNC_CHAIN].path = optarg;
			break;
		case OPT_BUNDLE_FILE:
			ctx.files[SYNC_BUNDLE].path = optarg;
			break;
		case OPT_MODE:
			if (parse_mode(optarg, &mode) != 0)
				return certctl_out_usage_error("sync: bad mode "
				    "'%s' (octal, at most 0777)", optarg);
			mode_given = 1;
			break;
		case OPT_OWNER:
			owner = optarg;
			break;
		case OPT_EXEC:
			ctx.exec = optarg;
			break;
		case OPT_SIGNAL:
			signal_arg = optarg;
			if (parse_signal(optarg, &ctx.sig, ctx.signame,
			    sizeof(ctx.signame)) != 0)
				return certctl_out_usage_error("sync: bad "
				    "signal '%s'", optarg);
			break;
		case OPT_PID:
			if (parse_u64(optarg, "pid", 0, &v) != 0)
				return EXIT_USAGE;
			if (v > INT_MAX)
				return certctl_out_usage_error("sync: bad pid "
				    "'%s'", optarg);
			ctx.pid = (pid_t)v;
			break;
		case OPT_PID_FILE:
			ctx.pid_file = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_u64(optarg, "timeout", 0, &v) != 0)
				return EXIT_USAGE;
			if (v > SYNC_TIMEOUT_MAX_S)
				return certctl_out_usage_error("sync: "
				    "--timeout is at most %d s",
				    SYNC_TIMEOUT_MAX_S);
			ctx.timeout_s = (unsigned)v;
			break;
		case OPT_DEBOUNCE:
			if (parse_u64(optarg, "debounce", 1, &v) != 0)
				return EXIT_USAGE;
			if (v > SYNC_DEBOUNCE_MAX_MS)
				return certctl_out_usage_error("sync: "
				    "--debounce is at most %d ms",
				    SYNC_DEBOUNCE_MAX_MS);
			ctx.debounce_ms = (unsigned)v;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_VERIFY:
			if (n_verify == SYNC_VERIFY_MAX)
				return certctl_out_usage_error("sync: at most "
				    "%d --verify", SYNC_VERIFY_MAX);
			verify[n_verify++] = optarg;	/* resolved below */
			break;
		case OPT_VERIFY_TIMEOUT:
			if (parse_u64(optarg, "verify-timeout", 0, &v) != 0)
				return EXIT_USAGE;
			if (v > SYNC_VERIFY_TIMEOUT_MAX_S)
				return certctl_out_usage_error("sync: "
				    "--verify-timeout is at most %d s",
				    SYNC_VERIFY_TIMEOUT_MAX_S);
			ctx.verify_timeout_s = (unsigned)v;
			vtimeout_given = 1;
			break;
		default:
			if (global_opt(ch, g) != 0)
				return bad_option("sync", ch, argc, argv);
		}
	}
	if (argc - optind != 1)
		return certctl_out_usage_error("sync: want TEAM");
	if ((id != 0) == (alias != NULL))
		return certctl_out_usage_error("sync: want one of --id and "
		    "--alias");
	if (ctx.files[SYNC_CERT].path == NULL ||
	    ctx.files[SYNC_KEY].path == NULL)
		return certctl_out_usage_error("sync: --cert-file and "
		    "--key-file are required");
	if (ctx.exec != NULL && signal_arg != NULL)
		return certctl_out_usage_error("sync: --exec and --signal "
		    "exclude each other");
	if (signal_arg != NULL && (ctx.pid != 0) == (ctx.pid_file != NULL))
		return certctl_out_usage_error("sync: --signal wants one of "
		    "--pid and --pid-file");
	if (signal_arg == NULL && (ctx.pid != 0 || ctx.pid_file != NULL))
		return certctl_out_usage_error("sync: --pid and --pid-file go "
		    "with --signal");
	if (ctx.exec != NULL && ctx.timeout_s == 0)
		return certctl_out_usage_error("sync: --timeout must be at "
		    "least 1 s");
	if (vtimeout_given && n_verify == 0)
		return certctl_out_usage_error("sync: --verify-timeout goes "
		    "with --verify");
	if (name != NULL && (*name == '\0' || strlen(name) > SYNC_NAME_MAX ||
	    !util_utf8_valid(name, strlen(name))))
		return certctl_out_usage_error("sync: --name wants 1 to %d "
		    "bytes of UTF-8", SYNC_NAME_MAX);
	if (owner != NULL && (r = parse_owner(owner, &ctx.uid,
	    &ctx.gid)) != 0)
		return r;
	ctx.files[SYNC_CERT].mode = mode;
	ctx.files[SYNC_CHAIN].mode = mode;
	/* Never a permission for others on a file with the key. */
	ctx.files[SYNC_KEY].mode = mode_given ? (mode & 0770) : 0600;
	ctx.files[SYNC_BUNDLE].mode = ctx.files[SYNC_KEY].mode;
	snprintf(idname, sizeof(idname), "%llu", (unsigned long long)id);
	if (name == NULL) {
		snprintf(err, sizeof(err), "sync-%s",
		    alias != NULL ? alias : idname);
		copy_utf8(ctx.name, SYNC_NAME_MAX, err);
	} else
		copy_utf8(ctx.name, SYNC_NAME_MAX, name);

	if ((r = sync_open(&ctx)) != 0 ||
	    (r = sync_verify_targets(&ctx, verify, n_verify)) != 0)
		goto out;

	opts.socket = g->socket;
	opts.team = argv[optind];
	opts.ids = id != 0 ? &id : NULL;
	opts.n_ids = id != 0;
	opts.aliases = alias != NULL ? &alias : NULL;
	opts.n_aliases = alias != NULL;
	opts.has_since = 1;
	opts.since = 0;
	opts.name = ctx.name;
	opts.reconnect = 1;

	if ((ctx.base = event_base_new()) == NULL) {
		r = certctl_out_fail("cannot create an event loop");
		goto out;
	}
	sigint = evsignal_new(ctx.base, SIGINT, sync_signal_cb, &ctx);
	sigterm = evsignal_new(ctx.base, SIGTERM, sync_signal_cb, &ctx);
	/* A hang-up stops like SIGTERM: never in the middle of a write. */
	sighup = evsignal_new(ctx.base, SIGHUP, sync_signal_cb, &ctx);
	sigchld = evsignal_new(ctx.base, SIGCHLD, sync_sigchld_cb, &ctx);
	ctx.timer = evtimer_new(ctx.base, sync_timer_cb, &ctx);
	ctx.child_timer = evtimer_new(ctx.base, sync_child_timeout_cb, &ctx);
	ctx.retry_timer = evtimer_new(ctx.base, sync_retry_cb, &ctx);
	if (sigint == NULL || sigterm == NULL || sighup == NULL ||
	    sigchld == NULL || ctx.timer == NULL || ctx.child_timer == NULL ||
	    ctx.retry_timer == NULL ||
	    evsignal_add(sigint, NULL) != 0 ||
	    evsignal_add(sigterm, NULL) != 0 ||
	    evsignal_add(sighup, NULL) != 0 ||
	    evsignal_add(sigchld, NULL) != 0) {
		r = certctl_out_fail("cannot set up the event loop");
		goto out;
	}
	errno = 0;
	if ((ctx.w = certd_watch_new(ctx.base, &opts, sync_event_cb, &ctx,
	    err, sizeof(err))) == NULL) {
		r = certctl_out_fail_as(errno == ENOMEM ? EXIT_FAILED :
		    EXIT_USAGE, "%s", err);
		goto out;
	}
	sync_log(&ctx, "following %s %s in team %s on %s",
	    alias != NULL ? "alias" : "id",
	    alias != NULL ? alias : idname, opts.team,
	    certd_socket_path(g->socket));
	if (event_base_dispatch(ctx.base) == -1)
		r = certctl_out_fail("event loop failed");
	else if (ctx.stopped)
		r = 0;
	else if (ctx.failed)
		r = certctl_out_fail_code(ctx.code, "sync: ", ctx.err);
	else
		r = certctl_out_fail("sync: the event loop ended");
out:
	if (ctx.child != 0)
		sync_log(&ctx, "leaving reload command %ld to finish on its "
		    "own", (long)ctx.child);
	sync_child_close(&ctx);
	for (i = 0; i < SYNC_NFILES; i++) {
		sync_discard(&ctx.files[i]);
		if (ctx.files[i].dirfd != -1)
			(void)close(ctx.files[i].dirfd);
	}
	sync_rec_free(ctx.pending);
	sync_rec_free(ctx.last);
	tlsprobe_free(ctx.probe);
	for (i = 0; i < (int)ctx.n_verify; i++)
		tlsprobe_target_free(ctx.verify[i]);
	certd_watch_free(ctx.w);
	if (ctx.timer != NULL)
		event_free(ctx.timer);
	if (ctx.retry_timer != NULL)
		event_free(ctx.retry_timer);
	if (ctx.child_timer != NULL)
		event_free(ctx.child_timer);
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sighup != NULL)
		event_free(sighup);
	if (sigchld != NULL)
		event_free(sigchld);
	if (ctx.base != NULL)
		event_base_free(ctx.base);
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
		{ "keys",	required_argument,	NULL, 'k' },
		{ NULL,		0,			NULL, 0 },
	};
	const char	*name = NULL, *teams = NULL, *role = NULL, *keys = NULL;
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
		case 'k':
			keys = optarg;
			break;
		default:
			return bad_option("token new", ch, argc, argv);
		}
	}
	if (name == NULL || teams == NULL || role == NULL || optind != argc)
		return certctl_out_usage_error("token new: want --name, "
		    "--teams and --role");
	if (tokens_new(name, teams, role, keys, text, sizeof(text), line,
	    sizeof(line), err, sizeof(err)) != 0)
		return certctl_out_fail_as(EXIT_USAGE, "token new: %s", err);
	printf("%s\n%s\n", text, line);
	cert_wipe(text, sizeof(text));
	return certctl_out_flush_stdout();
}

/* `token new`: the one token command. */
static int
cmd_token(int argc, char *argv[], struct global *g)
{
	(void)g;
	if (argc < 2 || strcmp(argv[1], "new") != 0)
		return certctl_out_usage_error("token: only 'token new' "
		    "exists");
	certctl_out_set_command("token new");
	return token_new(argc - 1, argv + 1);
}

/* ---------------------------------------------------------------------- */
/* Usage */

/*
 * The commands with their usage: synopsis lines (one form a line, a
 * continuation indented under its form) and what the command does.
 * certctl --help prints them all, certctl CMD --help one.
 */
static const struct cmd {
	const char	*name;
	int		(*fn)(int, char *[], struct global *);
	const char	*synopsis;
	const char	*help;
} cmds[] = {
	{ "ping", cmd_ping,
	  "ping\n",
	  "check that certd answers; print its revision.\n" },
	{ "get", cmd_get,
	  "get TEAM ID [--cert | --key]\n"
	  "get TEAM --alias ALIAS [--cert | --key]\n",
	  "show a certificate (--cert or --key: print only that PEM).\n" },
	{ "list", cmd_list,
	  "list TEAM [--page N] [--page-size N]\n",
	  "list a team's certificates, ordered by id.\n" },
	{ "put", cmd_put,
	  "put TEAM --alias ALIAS --type TYPE --cert FILE --key FILE\n"
	  "put TEAM --id ID [--alias ALIAS] [--type TYPE] [--cert FILE]\n"
	  "    [--key FILE]\n",
	  "create a certificate, or with --id update it (omitted fields\n"
	  "keep their value).  FILE - reads standard input.\n" },
	{ "delete", cmd_delete,
	  "delete TEAM ID [--force]\n",
	  "delete a certificate (--force: even when a watch binds it).\n" },
	{ "history", cmd_history,
	  "history TEAM ID\n",
	  "list the kept versions of a certificate, newest first (the\n"
	  "first is the current one): what rollback can bring back.\n" },
	{ "rollback", cmd_rollback,
	  "rollback TEAM ID REVISION\n",
	  "make the content of a kept version (a REVISION that history\n"
	  "lists) current again, as a new revision, checked as an update.\n" },
	{ "rekey", cmd_rekey,
	  "rekey\n",
	  "rotate certd's master key (root or certd's user).\n" },
	{ "backup", cmd_backup,
	  "backup DIR\n",
	  "have certd copy its store and master key into DIR on its host\n"
	  "(root or certd's user).\n" },
	{ "watch", cmd_watch,
	  "watch [TEAM] [--id ID]... [--alias ALIAS]... [--since REV]\n"
	  "      [--reconnect] [--with-pem]\n",
	  "print one JSON object per event and line until SIGINT or\n"
	  "SIGTERM (--since: replay from a revision, 0 for the current\n"
	  "state; --reconnect: reconnect and resume; --with-pem: include\n"
	  "certificate and key text).\n" },
	{ "subscribers", cmd_subscribers,
	  "subscribers TEAM ID\n",
	  "list the live watches that receive a certificate's changes,\n"
	  "with their last ack.\n" },
	{ "sync", cmd_sync,
	  "sync TEAM (--id ID | --alias ALIAS)\n"
	  "     --cert-file FILE --key-file FILE\n"
	  "     [--chain-file FILE] [--bundle-file FILE] [--mode MODE]\n"
	  "     [--owner USER[:GROUP]] [--exec CMD [--timeout S] |\n"
	  "     --signal SIG (--pid PID | --pid-file FILE)] [--debounce MS]\n"
	  "     [--verify HOST:PORT[,SNI]]... [--verify-timeout S]\n"
	  "     [--name NAME]\n",
	  "keep certificate, key, chain and bundle files equal to one\n"
	  "certificate, written atomically, then reload the server (run\n"
	  "CMD, or send SIG), check with --verify that the server\n"
	  "presents the new certificate, and ack the outcome to certd\n"
	  "(ok only when seen served; requested without --verify); runs\n"
	  "until SIGINT or SIGTERM, reconnecting to certd as needed.\n" },
	{ "token", cmd_token,
	  "token new --name NAME --teams *|TEAM[,TEAM...] --role read|write\n"
	  "          [--keys yes|no]\n",
	  "print a fresh random token on the first line and, on the\n"
	  "second, the line to append to certd's token file.  --keys:\n"
	  "whether its REST answers carry private keys (default: yes for\n"
	  "write, no for read).  Does not contact certd.\n" },
};

static const char options_text[] =
"  -s, --socket SOCKET  certd's socket (default: $CERTD_SOCKET, else\n"
"                       " CERTD_SOCKET_DEFAULT ")\n"
"                       certd must run as root, as you, or as\n"
"                       certd's user ($CERTD_SERVER_UID; see certctl(1))\n"
"  --json               machine output: one JSON object; an error is\n"
"                       {\"code\":N,\"msg\":\"...\"} on standard output\n"
"  -h, --help           usage (after a COMMAND: the command's own)\n"
"  --version            print certctl's version\n"
"\n"
"exit status: 0 ok, 1 refused by certd (4xx), 2 usage, 3 certd not\n"
"reached, 4 certd failed (5xx) or certctl did; see certctl(1).\n";

/* Each line of text, after first before the first line, rest before others. */
static void
print_lines(FILE *f, const char *text, const char *first, const char *rest)
{
	const char	*p, *nl;

	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		fprintf(f, "%s%.*s\n", p == text ? first : rest, (int)(nl - p),
		    p);
		if (*nl == '\0')
			break;
	}
}

static void
usage_all(FILE *f)
{
	size_t	i;

	fputs("usage: certctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "       certctl COMMAND --help\n"
	    "       certctl --version\n\n", f);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		print_lines(f, cmds[i].synopsis, "  ", "  ");
	fputc('\n', f);
	fputs(options_text, f);
	fputc('\n', f);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		fprintf(f, "%-12s", cmds[i].name);
		print_lines(f, cmds[i].help, "", "            ");
	}
}

/*
 * certctl CMD --help: the command's forms, what it does, the options (-s
 * and --json go before the command or among its arguments).
 */
static int
usage_cmd(const struct cmd *cmd)
{
	const char	*p, *nl;

	for (p = cmd->synopsis; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		printf("%s%.*s\n", p == cmd->synopsis ? "usage: certctl " :
		    *p == ' ' ? "               " : "       certctl ",
		    (int)(nl - p), p);
	}
	putchar('\n');
	print_lines(stdout, cmd->help, "", "");
	putchar('\n');
	fputs(options_text, stdout);
	return certctl_out_flush_stdout();
}

/* ---------------------------------------------------------------------- */

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		GLOBAL_LONGOPTS,
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL,		0,			NULL, 0 },
	};
	struct global	 g = { NULL, 0 };
	const struct cmd *cmd = NULL;
	const char	*name;
	size_t		 i;
	int		 ch, j, json = 0;

	/* certd's text is UTF-8 whatever the user's locale: widths by it. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		(void)setlocale(LC_CTYPE, "");
	/* Before any option is parsed, so that every error honours it. */
	for (j = 1; j < argc && strcmp(argv[j], "--") != 0; j++)
		if (strcmp(argv[j], "--json") == 0)
			json = 1;
	certctl_out_set_json(json);
	opterr = 0;
	/* "+": stop at the command; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+:s:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage_all(stdout);
			return certctl_out_flush_stdout();
		}
		if (ch == 'V') {
			printf("certctl %s\n", PACKAGE_VERSION);
			return certctl_out_flush_stdout();
		}
		if (global_opt(ch, &g) != 0)
			return bad_option("", ch, argc, argv);
	}
	if (optind >= argc) {
		if (json)
			return certctl_out_usage_error("want a COMMAND");
		usage_all(stderr);
		return EXIT_USAGE;
	}
	name = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0;		/* glibc: 0 also resets getopt's state */
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(name, cmds[i].name) == 0)
			cmd = &cmds[i];
	if (strcmp(name, "help") == 0) {
		/* certctl help [COMMAND] */
		for (i = 0; argc == 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return usage_cmd(&cmds[i]);
		if (argc > 1)
			return certctl_out_usage_error("help: unknown command "
			    "'%s'", argv[1]);
		usage_all(stdout);
		return certctl_out_flush_stdout();
	}
	if (cmd == NULL)
		return certctl_out_usage_error("unknown command '%s'", name);
	certctl_out_set_command(cmd->name);
	/* CMD --help (or -h) wins over anything else on the line. */
	for (j = 1; j < argc && strcmp(argv[j], "--") != 0; j++)
		if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
			return usage_cmd(cmd);
	return cmd->fn(argc, argv, &g);
}
