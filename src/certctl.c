/* SPDX-License-Identifier: MIT */
/*
 * certctl: the command-line client of certd.  Every command but `token new`
 * talks to certd's Unix socket through libcertd (include/certd/certd.h):
 * ping, get, list, put, delete, history, rollback print a compact human
 * form or, with --json, one JSON object; watch prints one JSON object per
 * event and line until SIGINT or SIGTERM; subscribers lists who follows a
 * certificate; sync keeps a server's certificate files equal to one
 * certificate in certd and reloads the server after each change
 * (certctl_sync.c).  `token new` makes a fresh API token and prints it
 * with the line to add to the token file.
 *
 * One skeleton serves them.  A command's options are a table that
 * certctl_getopt reads.  A request on the socket is an action in its row
 * of cmds[] at the bottom: its parse (req_parse[]: the command line into
 * a struct req), req_send (the libcertd call) and req_print (the answer
 * as one JSON object or for people), run by request(), which connects,
 * reports a failed call and frees in one place.  watch, sync and token
 * run themselves.
 *
 * Exit status by class (certctl.1, EXIT STATUS): 0 success, 1 refused by
 * certd (4xx), 2 usage, 3 certd not reached, 4 certd (5xx) or certctl
 * failed.  Every failure goes through report() in certctl_out.c: one
 * "certctl: ..." line on stderr, or with --json one {"code","msg"} object
 * on stdout.  Times shown to people and scripts are RFC 3339 UTC ("...Z";
 * util_time_iso), JSON ones with Unix seconds beside them in KEY_unix.
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "json.h"
#include "tokens.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define FP_SHORT	16	/* fingerprint characters in the list table */

/* Options every command takes, before its own in getopt_long's table. */
#define OPT_JSON	256
#define OPT_ROW		512	/* + i: row i of the command's table */
#define OPT_ROWS_MAX	24	/* rows in a command's table, at most */
#define GLOBAL_LONGOPTS \
	{ "socket",	required_argument,	NULL, 's' }, \
	{ "json",	no_argument,		NULL, OPT_JSON }

/* Strict decimal, as certd parses ids; 0 is refused unless allow_zero. */
int
certctl_parse_u64(const char *s, const char *what, int allow_zero,
    uint64_t *out)
{
	if (util_parse_u64(s, strlen(s), UINT64_MAX, out) != 0 ||
	    (!allow_zero && *out == 0))
		return certctl_out_usage_error("bad %s '%s'", what, s);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Options */

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

/* The argument of option o of cmd where o says; 0 or the exit status. */
static int
opt_set(const char *cmd, const struct certctl_opt *o)
{
	uint64_t	v;

	switch (o->arg) {
	case CERTCTL_FLAG:
		*(int *)o->dst = 1;
		return 0;
	case CERTCTL_STR:
		*(const char **)o->dst = optarg;
		return 0;
	case CERTCTL_NUM:
		return certctl_parse_u64(optarg, o->what, 0, o->dst);
	case CERTCTL_UINT:
		if (certctl_parse_u64(optarg, o->what, o->min == 0, &v) != 0)
			return EXIT_USAGE;
		if (v > o->max)
			return certctl_out_usage_error("%s: --%s is at most "
			    "%u %s", cmd, o->name, o->max, o->unit);
		*(unsigned *)o->dst = (unsigned)v;
		return 0;
	case CERTCTL_CALL:
		return o->call(o->dst, optarg);
	}
	return certctl_out_fail("%s: --%s: no such kind of option", cmd,
	    o->name);
}

/*
 * getopt_long over the global options and the rows of opts, each row's
 * argument where the row says, in the order given: the first problem is
 * the one reported.
 */
int
certctl_getopt(const char *cmd, int argc, char *argv[], struct global *g,
    const struct certctl_opt *opts)
{
	static const struct option	 globals[] = { GLOBAL_LONGOPTS };
	struct option			 longopts[2 + OPT_ROWS_MAX + 1];
	size_t				 n = 0, i;
	int				 ch, r;

	memset(longopts, 0, sizeof(longopts));
	for (i = 0; g != NULL && i < 2; i++)
		longopts[n++] = globals[i];
	for (i = 0; opts != NULL && opts[i].name != NULL; i++) {
		if (i == OPT_ROWS_MAX)
			return certctl_out_fail("%s: too many options", cmd);
		longopts[n].name = opts[i].name;
		longopts[n].has_arg = opts[i].arg == CERTCTL_FLAG ?
		    no_argument : required_argument;
		longopts[n++].val = OPT_ROW + (int)i;
	}
	while ((ch = getopt_long(argc, argv, g != NULL ? ":s:" : ":",
	    longopts, NULL)) != -1) {
		if (ch >= OPT_ROW) {
			if ((r = opt_set(cmd, &opts[ch - OPT_ROW])) != 0)
				return r;
		} else if (g == NULL || global_opt(ch, g) != 0)
			return bad_option(cmd, ch, argc, argv);
	}
	return 0;
}

/*
 * Options by opts, then the operands that want names in words ("TEAM ID";
 * "" for none), as many as it has.  0 or the exit status.
 */
static int
parse_args(const char *cmd, int argc, char *argv[], struct global *g,
    const struct certctl_opt *opts, const char *want)
{
	const char	*p;
	int		 n = *want != '\0', r;

	if ((r = certctl_getopt(cmd, argc, argv, g, opts)) != 0)
		return r;
	for (p = want; *p != '\0'; p++)
		n += *p == ' ';
	if (argc - optind == n)
		return 0;
	if (n == 0)
		return certctl_out_usage_error("%s takes no arguments", cmd);
	return certctl_out_usage_error("%s: want %s", cmd, want);
}

/* ---------------------------------------------------------------------- */
/* Requests on the socket */

/* What a command asks certd (a row of cmds[] says which). */
enum req_action {
	REQ_NONE,		/* the command runs itself: watch, sync, token */
	REQ_PING,
	REQ_GET,
	REQ_LIST,
	REQ_PUT,
	REQ_DELETE,
	REQ_HISTORY,
	REQ_ROLLBACK,
	REQ_REKEY,
	REQ_BACKUP,
	REQ_SUBSCRIBERS,
};

/*
 * One request: what the command line says to send (its req_parse[] entry
 * fills it), and what certd answered (req_send fills that; req_free frees
 * it).  Each command uses the members it needs.
 */
struct req {
	const char		*cmd;		/* its name, for messages */
	enum req_action		 action;
	const char		*team;		/* the TEAM operand */
	uint64_t		 id;		/* the ID operand */
	uint64_t		 rev;		/* rollback's REVISION */
	const char		*alias;		/* get --alias */
	int			 want_cert;	/* get --cert */
	int			 want_key;	/* get --key */
	uint64_t		 page;		/* list --page, 0: certd's */
	uint64_t		 page_size;
	int			 force;		/* delete --force */
	int			 fleet;		/* rekey --fleet */
	struct certd_put	 put;		/* what put sends */
	char			*cert_text;	/* put --cert's file */
	char			*key_text;	/* put --key's file: wiped */
	char			 dir[4096];	/* backup's DIR, absolute */

	uint64_t		 revision;	/* ping: certd's */
	char			 kid[17];	/* rekey: the new key's id */
	struct certd_cert	*cert;		/* get, put, rollback */
	struct certd_list	*list;
	struct certd_version_list *versions;	/* history */
	struct certd_subscriber_list *subs;
};

static void
req_free(struct req *q)
{
	free(q->cert_text);
	certctl_free_secret(q->key_text);
	certd_cert_free(q->cert);
	certd_list_free(q->list);
	certd_version_list_free(q->versions);
	certd_subscriber_list_free(q->subs);
}

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

/* For ping: no options of its own, no operands. */
static int
no_args(struct req *q, int argc, char *argv[], struct global *g)
{
	return parse_args(q->cmd, argc, argv, g, NULL, "");
}

/* rekey [--fleet] */
static int
rekey_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	const struct certctl_opt	opts[] = {
		OPT_FLAG("fleet", &q->fleet),
		OPT_END,
	};

	return parse_args(q->cmd, argc, argv, g, opts, "");
}

/*
 * The options of opts (NULL: the global ones only), then the operands
 * want names, the first two TEAM ID: into q->team and q->id.  0 or the
 * exit status.
 */
static int
team_id(struct req *q, int argc, char *argv[], struct global *g,
    const struct certctl_opt *opts, const char *want)
{
	int	r;

	if ((r = parse_args(q->cmd, argc, argv, g, opts, want)) != 0)
		return r;
	q->team = argv[optind];
	return certctl_parse_u64(argv[optind + 1], "id", 0, &q->id);
}

/* For history and subscribers: TEAM ID and only the global options. */
static int
team_id_args(struct req *q, int argc, char *argv[], struct global *g)
{
	return team_id(q, argc, argv, g, NULL, "TEAM ID");
}

/* ---------------------------------------------------------------------- */
/* Certificates */

/*
 * The members that say which certificate and which of its revisions, in
 * the order a certificate and a row of a list print them.
 */
static void
meta_json(struct json_w *w, uint64_t id, const char *alias, const char *type,
    uint64_t revision, int64_t not_after, const char *fingerprint)
{
	json_w_kuint(w, "id", id);
	certctl_out_jstr(w, "alias", alias);
	certctl_out_jstr(w, "certificate_type", type);
	json_w_kuint(w, "revision", revision);
	certctl_out_jtime(w, "not_after", not_after);
	certctl_out_jstr(w, "fingerprint_sha256", fingerprint);
}

/* The members of a certificate; PEM and key only when with_pem. */
static void
cert_json(struct json_w *w, const struct certd_cert *c, int with_pem)
{
	meta_json(w, c->id, c->alias, c->certificate_type, c->revision,
	    c->not_after, c->fingerprint_sha256);
	if (with_pem) {
		certctl_out_jstr(w, "certificate", c->certificate);
		certctl_out_jstr(w, "private_key", c->private_key);
	}
}

/*
 * A certificate certd answered with, as one JSON object with its team
 * (team when certd sent none); with_pem: its PEM and key too.
 */
static int
print_cert_json(const struct certd_cert *c, const char *team, int with_pem)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	cert_json(w, c, with_pem);
	certctl_out_jstr(w, "team", certctl_out_str_or(c->team, team));
	json_w_obj_end(w);
	return certctl_out_print_json(w);
}

/*
 * The ALIAS and TYPE columns of the list and history tables: widened
 * first by every row (from the heading's width), then printed.
 */
struct alias_type_cols {
	size_t	alias;
	size_t	type;
};

static void
cols_widen(struct alias_type_cols *w, const char *alias, const char *type)
{
	certctl_out_widen(&w->alias, certctl_out_str_or(alias, "-"));
	certctl_out_widen(&w->type, certctl_out_str_or(type, "-"));
}

static void
cols_print(const struct alias_type_cols *w, const char *alias,
    const char *type)
{
	certctl_out_print_cell(certctl_out_str_or(alias, "-"), w->alias);
	certctl_out_print_cell(certctl_out_str_or(type, "-"), w->type);
}

/*
 * {"list":[...]} with one object a row, n rows, row(w, q, i) writing the
 * members of the i-th, and the object left open for more members.
 */
static struct json_w *
list_object(const struct req *q, size_t n,
    void (*row)(struct json_w *, const struct req *, size_t))
{
	struct json_w	*w = json_w_new();
	size_t		 i;

	json_w_obj(w);
	json_w_key(w, "list");
	json_w_arr(w);
	for (i = 0; i < n; i++) {
		json_w_obj(w);
		row(w, q, i);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	return w;
}

/* The object of list_object, closed. */
static struct json_w *
list_closed(struct json_w *w)
{
	json_w_obj_end(w);
	return w;
}

/* ---------------------------------------------------------------------- */
/* get and list */

static int
get_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	const struct certctl_opt	opts[] = {
		OPT_STR("alias", &q->alias),
		OPT_FLAG("cert", &q->want_cert),
		OPT_FLAG("key", &q->want_key),
		OPT_END,
	};
	int				r;

	if ((r = certctl_getopt(q->cmd, argc, argv, g, opts)) != 0)
		return r;
	if (q->want_cert && q->want_key)
		return certctl_out_usage_error("get: --cert and --key exclude "
		    "each other");
	if (q->alias != NULL ? argc - optind != 1 : argc - optind != 2)
		return certctl_out_usage_error("get: want TEAM ID or TEAM "
		    "--alias ALIAS");
	q->team = argv[optind];
	if (q->alias == NULL && certctl_parse_u64(argv[optind + 1], "id",
	    0, &q->id) != 0)
		return EXIT_USAGE;
	return 0;
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

/* get: --cert or --key print only that PEM, with --json or not. */
static int
get_print(const struct req *q, int json)
{
	const struct certd_cert	*c = q->cert;

	if (q->want_cert)
		return c->certificate != NULL ? print_pem(c->certificate) :
		    certctl_out_fail("certd sent no certificate text");
	if (q->want_key)
		return c->private_key != NULL ? print_pem(c->private_key) :
		    certctl_out_fail_as(EXIT_REFUSED, "no private key: this "
		    "peer lacks the key permission");
	if (json)
		return print_cert_json(c, q->team, 1);
	printf("%-19s %llu\n", "id", (unsigned long long)c->id);
	printf("%-19s %s\n", "team", certctl_out_str_or(c->team, q->team));
	printf("%-19s %s\n", "alias", certctl_out_str_or(c->alias, "-"));
	printf("%-19s %s\n", "certificate_type",
	    certctl_out_str_or(c->certificate_type, "-"));
	printf("%-19s %llu\n", "revision", (unsigned long long)c->revision);
	certctl_out_print_time("not_after", c->not_after);
	printf("%-19s %s\n", "fingerprint_sha256",
	    certctl_out_str_or(c->fingerprint_sha256, "-"));
	printf("%-19s %s\n", "private_key",
	    c->private_key != NULL ? "present" : "not readable");
	return certctl_out_flush_stdout();
}

static int
list_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	const struct certctl_opt	opts[] = {
		OPT_NUM("page", "page", &q->page),
		OPT_NUM("page-size", "page size", &q->page_size),
		OPT_END,
	};
	int				r;

	if ((r = parse_args(q->cmd, argc, argv, g, opts, "TEAM")) == 0)
		q->team = argv[optind];
	return r;
}

static void
list_row(struct json_w *w, const struct req *q, size_t i)
{
	const struct certd_list_item	*it = &q->list->items[i];

	meta_json(w, it->id, it->alias, it->certificate_type, it->revision,
	    it->not_after, it->fingerprint_sha256);
}

static int
list_print(const struct req *q, int json)
{
	const struct certd_list		*l = q->list;
	const struct certd_list_item	*it;
	struct alias_type_cols		 w = { 5, 4 };
	struct json_w			*o;
	size_t				 i;
	char				 when[24];

	if (json) {
		o = list_object(q, l->n, list_row);
		json_w_kuint(o, "page", l->page);
		json_w_kuint(o, "page_size", l->page_size);
		json_w_kuint(o, "total", l->total);
		return certctl_out_print_json(list_closed(o));
	}
	for (i = 0; i < l->n; i++)
		cols_widen(&w, l->items[i].alias,
		    l->items[i].certificate_type);
	printf("%-6s ", "ID");
	cols_print(&w, "ALIAS", "TYPE");
	printf("%-8s %-20s %s\n", "REVISION", "NOT_AFTER", "FINGERPRINT");
	for (i = 0; i < l->n; i++) {
		it = &l->items[i];
		util_time_iso(it->not_after, 1, when);
		printf("%-6llu ", (unsigned long long)it->id);
		cols_print(&w, it->alias, it->certificate_type);
		printf("%-8llu %-20s %.*s\n", (unsigned long long)it->revision,
		    when, FP_SHORT, certctl_out_str_or(it->fingerprint_sha256,
		    "-"));
	}
	printf("page %llu, page size %llu, total %llu\n",
	    (unsigned long long)l->page, (unsigned long long)l->page_size,
	    (unsigned long long)l->total);
	return certctl_out_flush_stdout();
}

/* ---------------------------------------------------------------------- */
/* put, delete, history, rollback and backup */

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
		util_wipe(buf, len);
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

void
certctl_free_secret(char *s)
{
	if (s != NULL)
		util_wipe(s, strlen(s));
	free(s);
}

static int
put_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	struct certd_put		*in = &q->put;
	const char			*cert_file = NULL, *key_file = NULL;
	const struct certctl_opt	 opts[] = {
		OPT_NUM("id", "id", &in->id),
		OPT_STR("alias", &in->alias),
		OPT_STR("type", &in->certificate_type),
		OPT_STR("cert", &cert_file),
		OPT_STR("key", &key_file),
		OPT_END,
	};
	int				 r;

	if ((r = parse_args(q->cmd, argc, argv, g, opts, "TEAM")) != 0)
		return r;
	if (in->id == 0 && (in->alias == NULL ||
	    in->certificate_type == NULL || cert_file == NULL ||
	    key_file == NULL))
		return certctl_out_usage_error("put: creating needs --alias, "
		    "--type, --cert and --key (or --id ID to update)");
	if (cert_file != NULL && key_file != NULL &&
	    strcmp(cert_file, "-") == 0 && strcmp(key_file, "-") == 0)
		return certctl_out_usage_error("put: only one of --cert and "
		    "--key may be -");
	q->team = in->team = argv[optind];
	if (cert_file != NULL &&
	    (r = read_file(cert_file, CERTD_CERT_MAX, &q->cert_text)) != 0)
		return r;
	if (key_file != NULL &&
	    (r = read_file(key_file, CERTD_KEY_MAX, &q->key_text)) != 0)
		return r;
	in->certificate = q->cert_text;
	in->private_key = q->key_text;
	return 0;
}

static int
delete_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	const struct certctl_opt	opts[] = {
		OPT_FLAG("force", &q->force),
		OPT_END,
	};

	return team_id(q, argc, argv, g, opts, "TEAM ID");
}

/* history TEAM ID: the kept versions, newest first (the current one too). */
static void
history_row(struct json_w *w, const struct req *q, size_t i)
{
	const struct certd_version	*v = &q->versions->items[i];

	json_w_kuint(w, "revision", v->revision);
	certctl_out_jstr(w, "alias", v->alias);
	certctl_out_jstr(w, "certificate_type", v->certificate_type);
	certctl_out_jtime(w, "not_after", v->not_after);
	certctl_out_jstr(w, "fingerprint_sha256", v->fingerprint_sha256);
	certctl_out_jtime(w, "updated_at", v->updated_at);
}

static int
history_print(const struct req *q, int json)
{
	const struct certd_version_list	*l = q->versions;
	const struct certd_version	*v;
	struct alias_type_cols		 w = { 5, 4 };
	size_t				 i;
	char				 when[24], end[24];

	if (json)
		return certctl_out_print_json(list_closed(list_object(q,
		    l->n, history_row)));
	for (i = 0; i < l->n; i++)
		cols_widen(&w, l->items[i].alias,
		    l->items[i].certificate_type);
	printf("%-8s %-20s ", "REVISION", "UPDATED_AT");
	cols_print(&w, "ALIAS", "TYPE");
	printf("%-20s %s\n", "NOT_AFTER", "FINGERPRINT");
	for (i = 0; i < l->n; i++) {
		v = &l->items[i];
		util_time_iso(v->updated_at, 1, when);
		util_time_iso(v->not_after, 1, end);
		printf("%-8llu %-20s ", (unsigned long long)v->revision, when);
		cols_print(&w, v->alias, v->certificate_type);
		printf("%-20s %.*s\n", end, FP_SHORT,
		    certctl_out_str_or(v->fingerprint_sha256, "-"));
	}
	return certctl_out_flush_stdout();
}

/* rollback TEAM ID REVISION: that kept version's content, current again. */
static int
rollback_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	int	r;

	if ((r = team_id(q, argc, argv, g, NULL, "TEAM ID REVISION")) != 0)
		return r;
	return certctl_parse_u64(argv[optind + 2], "revision", 0, &q->rev);
}

/* backup DIR: certd resolves nothing, so DIR is sent absolute. */
static int
backup_parse(struct req *q, int argc, char *argv[], struct global *g)
{
	const char	*arg;
	int		 r;

	if ((r = parse_args(q->cmd, argc, argv, g, NULL, "DIR")) != 0)
		return r;
	arg = argv[optind];
	if (arg[0] == '/')
		snprintf(q->dir, sizeof(q->dir), "%s", arg);
	else if (getcwd(q->dir, sizeof(q->dir)) == NULL ||
	    strlen(q->dir) + 1 + strlen(arg) >= sizeof(q->dir))
		return certctl_out_fail_as(EXIT_USAGE, "backup: cannot make %s "
		    "absolute", arg);
	else {
		strcat(q->dir, "/");
		strcat(q->dir, arg);
	}
	return 0;
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

/* An event as one JSON object; NULL for a kind with no name. */
static struct json_w *
event_json(const struct certd_event *ev, int with_pem)
{
	static const char *const	 names[] = {
		[CERTD_EVENT_PUT] = "put",
		[CERTD_EVENT_DELETE] = "delete",
		[CERTD_EVENT_RESYNC] = "resync",
		[CERTD_EVENT_CONNECTED] = "connected",
		[CERTD_EVENT_DISCONNECTED] = "disconnected",
	};
	struct json_w			*w;

	if ((unsigned)ev->kind >= sizeof(names) / sizeof(names[0]) ||
	    names[ev->kind] == NULL ||
	    ((ev->kind == CERTD_EVENT_PUT || ev->kind == CERTD_EVENT_DELETE) &&
	    ev->cert == NULL))
		return NULL;
	w = json_w_new();
	json_w_obj(w);
	json_w_kstr(w, "event", names[ev->kind]);
	json_w_kuint(w, "revision", ev->revision);
	switch (ev->kind) {
	case CERTD_EVENT_PUT:
	case CERTD_EVENT_DELETE:
		certctl_out_jstr(w, "team", ev->team);
		json_w_key(w, "cert");
		json_w_obj(w);
		if (ev->kind == CERTD_EVENT_PUT)
			cert_json(w, ev->cert, with_pem);
		else {
			json_w_kuint(w, "id", ev->cert->id);
			certctl_out_jstr(w, "alias", ev->cert->alias);
		}
		json_w_obj_end(w);
		break;
	case CERTD_EVENT_DISCONNECTED:
		certctl_out_jstr(w, "error", ev->error);
		json_w_kbool(w, "reconnecting", !ev->ended);
		break;
	default:
		break;
	}
	json_w_obj_end(w);
	return w;
}

static void
watch_cb(const struct certd_event *ev, void *arg)
{
	struct watch_ctx	*ctx = arg;
	struct json_w		*o;

	if (ctx->failed)
		return;
	o = event_json(ev, ctx->with_pem);
	if (o == NULL && ev->kind != CERTD_EVENT_DISCONNECTED) {
		snprintf(ctx->err, sizeof(ctx->err),
		    "cannot print a %s event",
		    ev->kind == CERTD_EVENT_PUT ? "put" : "watch");
		ctx->failed = 1;
		event_base_loopbreak(ctx->base);
		return;
	}
	if (o != NULL && (ctx->status = certctl_out_print_json(o)) != 0) {
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

/*
 * The --id and --alias lists of a watch: room for as many as the command
 * line has words, made before the options are read.
 */
struct watch_args {
	uint64_t	 *ids;
	const char	**aliases;	/* argv's strings */
	size_t		  n_ids;
	size_t		  n_aliases;
};

/* --id ID and --alias ALIAS, each as often as wanted. */
static int
watch_id(void *dst, const char *arg)
{
	struct watch_args	*a = dst;
	uint64_t		 id;

	if (certctl_parse_u64(arg, "id", 0, &id) != 0)
		return EXIT_USAGE;
	a->ids[a->n_ids++] = id;
	return 0;
}

static int
watch_alias(void *dst, const char *arg)
{
	struct watch_args	*a = dst;

	a->aliases[a->n_aliases++] = arg;
	return 0;
}

static int
watch_since(void *dst, const char *arg)
{
	struct certd_watch_opts	*opts = dst;

	if (certctl_parse_u64(arg, "revision", 1, &opts->since) != 0)
		return EXIT_USAGE;
	opts->has_since = 1;
	return 0;
}

/*
 * The command line of watch into opts, a (whose lists the caller frees)
 * and ctx->with_pem.  0, or the exit status of the failure reported.
 */
static int
watch_options(int argc, char *argv[], struct global *g,
    struct certd_watch_opts *opts, struct watch_args *a,
    struct watch_ctx *ctx)
{
	const struct certctl_opt	rows[] = {
		OPT_CALL("id", watch_id, a),
		OPT_CALL("alias", watch_alias, a),
		OPT_CALL("since", watch_since, opts),
		OPT_FLAG("reconnect", &opts->reconnect),
		OPT_FLAG("with-pem", &ctx->with_pem),
		OPT_END,
	};
	int				r;

	a->ids = calloc((size_t)argc, sizeof(*a->ids));
	a->aliases = calloc((size_t)argc, sizeof(*a->aliases));
	if (a->ids == NULL || a->aliases == NULL)
		return certctl_out_fail("out of memory");
	if ((r = certctl_getopt("watch", argc, argv, g, rows)) != 0)
		return r;
	if (argc - optind > 1)
		return certctl_out_usage_error("watch: want at most one TEAM");
	if (argc - optind == 0 && (a->n_ids > 0 || a->n_aliases > 0))
		return certctl_out_usage_error("watch: --id and --alias need "
		    "a TEAM");
	opts->socket = g->socket;
	opts->team = argc - optind == 1 ? argv[optind] : NULL;
	opts->ids = a->ids;
	opts->n_ids = a->n_ids;
	opts->aliases = a->aliases;
	opts->n_aliases = a->n_aliases;
	return 0;
}

/*
 * Print the events of the watch opts until SIGINT or SIGTERM (exit 0) or
 * the watch's end.  The exit status.
 */
static int
watch_run(struct watch_ctx *ctx, const struct certd_watch_opts *opts)
{
	struct certd_watch	*w = NULL;
	struct event		*sigint = NULL, *sigterm = NULL;
	char			 err[512];
	int			 r;

	if ((ctx->base = event_base_new()) == NULL)
		return certctl_out_fail("cannot create an event loop");
	sigint = evsignal_new(ctx->base, SIGINT, watch_signal_cb, ctx);
	sigterm = evsignal_new(ctx->base, SIGTERM, watch_signal_cb, ctx);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint,
	    NULL) != 0 || evsignal_add(sigterm, NULL) != 0) {
		r = certctl_out_fail("cannot catch signals");
		goto out;
	}
	errno = 0;
	if ((w = certd_watch_new(ctx->base, opts, watch_cb, ctx, err,
	    sizeof(err))) == NULL) {
		r = certctl_out_fail_as(errno == ENOMEM ? EXIT_FAILED :
		    EXIT_USAGE, "%s", err);
		goto out;
	}
	if (event_base_dispatch(ctx->base) == -1)
		r = certctl_out_fail("event loop failed");
	else if (ctx->stopped)
		r = 0;
	else if (ctx->status != 0)
		r = ctx->status;
	else if (ctx->code != 0)
		r = certctl_out_fail_code(ctx->code, ctx->code <= -100 ? "" :
		    "watch: ", ctx->err);
	else
		r = certctl_out_fail("%s", ctx->err[0] != '\0' ? ctx->err :
		    "watch: the event loop ended");
out:
	certd_watch_free(w);
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	event_base_free(ctx->base);
	return r;
}

static int
cmd_watch(int argc, char *argv[], struct global *g)
{
	struct certd_watch_opts	opts;
	struct watch_args	args;
	struct watch_ctx	ctx;
	int			r;

	memset(&opts, 0, sizeof(opts));
	memset(&args, 0, sizeof(args));
	memset(&ctx, 0, sizeof(ctx));
	if ((r = watch_options(argc, argv, g, &opts, &args, &ctx)) == 0)
		r = watch_run(&ctx, &opts);
	free(args.ids);
	free(args.aliases);
	return r;
}

/* ---------------------------------------------------------------------- */
/* subscribers */

/* subscribers TEAM ID: the live watches that receive a certificate. */
static void
subscribers_row(struct json_w *w, const struct req *q, size_t i)
{
	const struct certd_subscriber	*s = &q->subs->items[i];

	if (q->subs->nodes != NULL)
		certctl_out_jstr(w, "node", q->subs->nodes[i]);
	certctl_out_jstr(w, "name", s->name);
	json_w_kuint(w, "uid", s->uid);
	json_w_kint(w, "pid", s->pid);
	json_w_kuint(w, "watch", s->watch);
	json_w_kuint(w, "revision", s->revision);
	certctl_out_jstr(w, "status", s->status);
	certctl_out_jstr(w, "detail", s->detail);
	certctl_out_jtime(w, "at", s->at);
	/* A --verify check's, when the last ack had one. */
	if (s->verified_at == 0)
		return;
	certctl_out_jstr(w, "served_fingerprint_sha256",
	    s->served_fingerprint_sha256);
	certctl_out_jtime(w, "verified_at", s->verified_at);
}

static int
subscribers_print(const struct req *q, int json)
{
	const struct certd_subscriber_list	*l = q->subs;
	const struct certd_subscriber		*s;
	size_t					 i, wn = 4, wh = 4, n;
	char					 when[24];

	if (json)
		return certctl_out_print_json(list_closed(list_object(q,
		    l->n, subscribers_row)));
	for (i = 0; i < l->n; i++) {
		if ((n = strlen(l->items[i].name)) > wn)
			wn = n;
		if (l->nodes != NULL && l->nodes[i] != NULL &&
		    (n = strlen(l->nodes[i])) > wh)
			wh = n;
	}
	/* fleet mode: which host each subscriber is on */
	if (l->nodes != NULL)
		printf("%-*s ", (int)wh, "NODE");
	printf("%-6s %-*s %-6s %-8s %-8s %-9s %-20s %s\n", "WATCH", (int)wn,
	    "NAME", "UID", "PID", "REVISION", "STATUS", "AT", "DETAIL");
	for (i = 0; i < l->n; i++) {
		s = &l->items[i];
		if (s->at != 0)
			util_time_iso(s->at, 1, when);
		else
			snprintf(when, sizeof(when), "-");
		if (l->nodes != NULL)
			printf("%-*s ", (int)wh, l->nodes[i] != NULL ?
			    l->nodes[i] : "-");
		printf("%-6llu %-*s %-6llu %-8lld %-8llu %-9s %-20s %s\n",
		    (unsigned long long)s->watch, (int)wn,
		    *s->name != '\0' ? s->name : "-",
		    (unsigned long long)s->uid, (long long)s->pid,
		    (unsigned long long)s->revision, s->status, when,
		    *s->detail != '\0' ? s->detail : "-");
	}
	return certctl_out_flush_stdout();
}

/* ---------------------------------------------------------------------- */
/* token new */

static int
token_new(int argc, char *argv[])
{
	const char			*name = NULL, *teams = NULL;
	const char			*role = NULL, *keys = NULL;
	const struct certctl_opt	 opts[] = {
		OPT_STR("name", &name),
		OPT_STR("teams", &teams),
		OPT_STR("role", &role),
		OPT_STR("keys", &keys),
		OPT_END,
	};
	char				 text[128], line[600], err[512];
	int				 r;

	if ((r = certctl_getopt("token new", argc, argv, NULL, opts)) != 0)
		return r;
	if (name == NULL || teams == NULL || role == NULL || optind != argc)
		return certctl_out_usage_error("token new: want --name, "
		    "--teams and --role");
	if (tokens_new(name, teams, role, keys, text, sizeof(text), line,
	    sizeof(line), err, sizeof(err)) != 0)
		return certctl_out_fail_as(EXIT_USAGE, "token new: %s", err);
	printf("%s\n%s\n", text, line);
	util_wipe(text, sizeof(text));
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
/* Requests: parse, send, print */

/* Each request's parse: its command line into a struct req. */
static int	(*const req_parse[])(struct req *, int, char *[],
		    struct global *) = {
	[REQ_PING] = no_args,
	[REQ_GET] = get_parse,
	[REQ_LIST] = list_parse,
	[REQ_PUT] = put_parse,
	[REQ_DELETE] = delete_parse,
	[REQ_HISTORY] = team_id_args,
	[REQ_ROLLBACK] = rollback_parse,
	[REQ_REKEY] = rekey_parse,
	[REQ_BACKUP] = backup_parse,
	[REQ_SUBSCRIBERS] = team_id_args,
};

/* q's request on c: libcertd's result, what certd answered into q. */
static int
req_send(struct certd_client *c, struct req *q)
{
	int	r;

	switch (q->action) {
	case REQ_PING:
		if ((r = certd_ping(c)) == 0)
			q->revision = certd_client_revision(c);
		return r;
	case REQ_GET:
		if (q->alias != NULL)
			return certd_get_alias(c, q->team, q->alias, &q->cert);
		return certd_get(c, q->team, q->id, &q->cert);
	case REQ_LIST:
		return certd_list(c, q->team, q->page, q->page_size, &q->list);
	case REQ_PUT:
		return certd_put(c, &q->put, &q->cert);
	case REQ_DELETE:
		return certd_delete(c, q->team, q->id, q->force);
	case REQ_HISTORY:
		return certd_history(c, q->team, q->id, &q->versions);
	case REQ_ROLLBACK:
		return certd_rollback(c, q->team, q->id, q->rev, &q->cert);
	case REQ_REKEY:
		return q->fleet ? certd_rekey_fleet(c, q->kid) :
		    certd_rekey(c, q->kid);
	case REQ_BACKUP:
		return certd_backup(c, q->dir);
	case REQ_SUBSCRIBERS:
		return certd_subscribers(c, q->team, q->id, &q->subs);
	case REQ_NONE:
		break;
	}
	return CERTD_E_INVAL;
}

/* An answer that is one string s: {"key":s}, or a line with s in it. */
static int
print_said(int json, const char *key, const char *s, const char *before,
    const char *after)
{
	struct json_w	*w;

	if (json) {
		w = json_w_new();
		json_w_obj(w);
		json_w_kstr(w, key, s);
		json_w_obj_end(w);
		return certctl_out_print_json(w);
	}
	printf("%s%s%s\n", before, s, after);
	return certctl_out_flush_stdout();
}

/*
 * certd's answer to q: one JSON object with --json (json), else lines
 * for people; the larger ones by their command's print function.  The
 * exit status.
 */
static int
req_print(const struct req *q, int json)
{
	const struct certd_cert	*c = q->cert;
	struct json_w		*o;

	switch (q->action) {
	case REQ_PING:
		if (!json) {
			printf("pong (revision %llu)\n",
			    (unsigned long long)q->revision);
			break;
		}
		o = json_w_new();
		json_w_obj(o);
		json_w_kstr(o, "status", "pong");
		json_w_kuint(o, "revision", q->revision);
		json_w_obj_end(o);
		return certctl_out_print_json(o);
	case REQ_GET:
		return get_print(q, json);
	case REQ_LIST:
		return list_print(q, json);
	case REQ_PUT:
		if (json)
			return print_cert_json(c, q->team, 0);
		printf("%s %llu %s (revision %llu)\n",
		    q->put.id != 0 ? "updated" : "created",
		    (unsigned long long)c->id, certctl_out_str_or(c->alias, "-"),
		    (unsigned long long)c->revision);
		break;
	case REQ_DELETE:
		if (!json) {
			printf("deleted %llu\n", (unsigned long long)q->id);
			break;
		}
		o = json_w_new();
		json_w_obj(o);
		json_w_kuint(o, "id", q->id);
		json_w_kbool(o, "deleted", 1);
		json_w_obj_end(o);
		return certctl_out_print_json(o);
	case REQ_HISTORY:
		return history_print(q, json);
	case REQ_ROLLBACK:
		if (json)
			return print_cert_json(c, q->team, 0);
		printf("rolled back %llu %s to revision %llu (now revision "
		    "%llu)\n", (unsigned long long)c->id,
		    certctl_out_str_or(c->alias, "-"), (unsigned long long)q->rev,
		    (unsigned long long)c->revision);
		break;
	case REQ_REKEY:
		return print_said(json, "key_id", q->kid, q->fleet ?
		    "fleet key rotated, every record sealed with key id " :
		    "master key rotated, key id ", "");
	case REQ_BACKUP:
		return print_said(json, "backup", q->dir, "backup written to ",
		    " (it holds the master key)");
	case REQ_SUBSCRIBERS:
		return subscribers_print(q, json);
	case REQ_NONE:
		break;
	}
	return certctl_out_flush_stdout();
}

/* ---------------------------------------------------------------------- */
/* The commands and their usage */

/*
 * The commands: a request on the socket (action), run by request(), or
 * what runs a command that is not one (fn: watch, sync and token).  Then
 * their usage: synopsis lines (one form a line, a continuation indented
 * under its form) and what the command does; certctl --help prints them
 * all, certctl CMD --help one.
 */
static const struct cmd {
	const char	*name;
	int		(*fn)(int, char *[], struct global *);
	enum req_action	 action;
	const char	*synopsis;
	const char	*help;
} cmds[] = {
	{ "ping", NULL, REQ_PING,
	  "ping\n",
	  "check that certd answers; print its revision.\n" },
	{ "get", NULL, REQ_GET,
	  "get TEAM ID [--cert | --key]\n"
	  "get TEAM --alias ALIAS [--cert | --key]\n",
	  "show a certificate (--cert or --key: print only that PEM).\n" },
	{ "list", NULL, REQ_LIST,
	  "list TEAM [--page N] [--page-size N]\n",
	  "list a team's certificates, ordered by id.\n" },
	{ "put", NULL, REQ_PUT,
	  "put TEAM --alias ALIAS --type TYPE --cert FILE --key FILE\n"
	  "put TEAM --id ID [--alias ALIAS] [--type TYPE] [--cert FILE]\n"
	  "    [--key FILE]\n",
	  "create a certificate, or with --id update it (omitted fields\n"
	  "keep their value).  FILE - reads standard input.\n" },
	{ "delete", NULL, REQ_DELETE,
	  "delete TEAM ID [--force]\n",
	  "delete a certificate (--force: even when a watch binds it).\n" },
	{ "history", NULL, REQ_HISTORY,
	  "history TEAM ID\n",
	  "list the kept versions of a certificate, newest first (the\n"
	  "first is the current one): what rollback can bring back.\n" },
	{ "rollback", NULL, REQ_ROLLBACK,
	  "rollback TEAM ID REVISION\n",
	  "make the content of a kept version (a REVISION that history\n"
	  "lists) current again, as a new revision, checked as an update.\n" },
	{ "rekey", NULL, REQ_REKEY,
	  "rekey [--fleet]\n",
	  "rotate certd's master key (root or certd's user); --fleet:\n"
	  "rotate the fleet key to this node's [fleet] key (fleet mode).\n" },
	{ "backup", NULL, REQ_BACKUP,
	  "backup DIR\n",
	  "have certd copy its store and master key into DIR on its host\n"
	  "(root or certd's user).\n" },
	{ "watch", cmd_watch, REQ_NONE,
	  "watch [TEAM] [--id ID]... [--alias ALIAS]... [--since REV]\n"
	  "      [--reconnect] [--with-pem]\n",
	  "print one JSON object per event and line until SIGINT or\n"
	  "SIGTERM (--since: replay from a revision, 0 for the current\n"
	  "state; --reconnect: reconnect and resume; --with-pem: include\n"
	  "certificate and key text).\n" },
	{ "subscribers", NULL, REQ_SUBSCRIBERS,
	  "subscribers TEAM ID\n",
	  "list the live watches that receive a certificate's changes,\n"
	  "with their last ack.\n" },
	{ "sync", certctl_sync_main, REQ_NONE,
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
	{ "token", cmd_token, REQ_NONE,
	  "token new --name NAME --teams *|TEAM[,TEAM...] --role read|write\n"
	  "          [--keys yes|no]\n",
	  "print a fresh random token on the first line and, on the\n"
	  "second, the line to append to certd's token file.  --keys:\n"
	  "whether its REST answers carry private keys (default: yes for\n"
	  "write, no for read).  Does not contact certd.\n" },
};

/*
 * A request on the socket: cmd's command line parsed, then certd
 * connected and sent the request, and its answer printed; every failure
 * reported once, by what found it.  The exit status.
 */
static int
request(const struct cmd *cmd, int argc, char *argv[], struct global *g)
{
	struct certd_client	*c = NULL;
	struct req		 q;
	int			 r;

	memset(&q, 0, sizeof(q));
	q.cmd = cmd->name;
	q.action = cmd->action;
	if ((r = req_parse[q.action](&q, argc, argv, g)) != 0 ||
	    (r = connect_or_fail(g, &c)) != 0)
		goto out;
	if ((r = req_send(c, &q)) != 0)
		r = certctl_out_fail_call(c, r);
	else
		r = req_print(&q, g->json);
out:
	req_free(&q);
	certd_close(c);
	return r;
}

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
	if (cmd->action == REQ_NONE)
		return cmd->fn(argc, argv, &g);
	return request(cmd, argc, argv, &g);
}
