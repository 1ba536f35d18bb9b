/* SPDX-License-Identifier: MIT */
/*
 * certctl's private header: what its files share.  certctl.c holds main,
 * the options every command takes and the commands; certctl_out.c the one
 * way errors are reported (exit status by class, --json objects) and the
 * helpers that print JSON and tables; certctl_sync*.c the sync agent
 * (certctl_sync_int.h).  Not installed: only certctl's own files include
 * it.
 */
#ifndef CERTD_CERTCTL_H
#define CERTD_CERTCTL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct certd_client;


/* Exit status by class; with --json, code is certd's status or these. */
#define EXIT_REFUSED	1	/* certd refused the request (4xx) */
#define EXIT_USAGE	2	/* bad usage, or an input that cannot be used */
#define EXIT_UNREACHED	3	/* certd not reached, or the connection lost */
#define EXIT_FAILED	4	/* certd failed (5xx, not the protocol), or we did */

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
	OPT_CERT_FILE,
	OPT_KEY_FILE,
	OPT_CHAIN_FILE,
	OPT_BUNDLE_FILE,
	OPT_MODE,
	OPT_OWNER,
	OPT_EXEC,
	OPT_SIGNAL,
	OPT_PID,
	OPT_PID_FILE,
	OPT_TIMEOUT,
	OPT_DEBOUNCE,
	OPT_NAME,
	OPT_VERIFY,
	OPT_VERIFY_TIMEOUT,
};

#define GLOBAL_LONGOPTS \
	{ "socket",	required_argument,	NULL, 's' }, \
	{ "json",	no_argument,		NULL, OPT_JSON }

/* certctl.c --------------------------------------------------------- */

/* Strict decimal into *out; 0 refused unless allow_zero.  0 or EXIT_USAGE. */
int	certctl_parse_u64(const char *s, const char *what, int allow_zero,
	    uint64_t *out);

/* Handle an option every command shares (-s, --json); 0 if ch was one. */
int	certctl_global_opt(int ch, struct global *g);

/* getopt_long returned ch, ':' or '?': report it; the exit status. */
int	certctl_bad_option(const char *cmd, int ch, int argc, char *argv[]);

/* Wipe a NUL-terminated secret and free it; accepts NULL. */
void	certctl_free_secret(char *s);

/* certctl_sync.c ---------------------------------------------------- */

/* certctl sync: runs until a signal or the watch's end; the exit status. */
int	certctl_sync_main(int argc, char *argv[], struct global *g);

/* certctl_out.c ----------------------------------------------------- */

/*
 * Report errors as JSON objects on standard output (json 1: --json is
 * anywhere on the command line), not lines on standard error.  Set before
 * any option is parsed.
 */
void	certctl_out_set_json(int json);

/* The command whose --help a usage error points at ("" before one). */
void	certctl_out_set_command(const char *cmd);

/*
 * Failures, each reported once (certctl: ... on stderr, or the --json
 * object); each returns the exit status to return from the command.
 * fail_as: a failure of class status that certd did not answer; fail:
 * certctl failed, or certd sent what it cannot use (EXIT_FAILED);
 * usage_error: bad usage (EXIT_USAGE), pointing at the command's --help.
 */
int	certctl_out_fail_as(int status, const char *f, ...)
	    __attribute__((format(printf, 2, 3)));
int	certctl_out_fail(const char *f, ...)
	    __attribute__((format(printf, 1, 2)));
int	certctl_out_usage_error(const char *f, ...)
	    __attribute__((format(printf, 1, 2)));

/* A failure with libcertd's code r (< 0) and msg, prefix before both. */
int	certctl_out_fail_code(int r, const char *prefix, const char *msg);

/* A failed libcertd call on c: certd's status and message. */
int	certctl_out_fail_call(struct certd_client *c, int r);

/* Flush standard output: 0, or the exit status of the failure. */
int	certctl_out_flush_stdout(void);

/*
 * JSON members: 0, or -1 (out of memory, text that is not UTF-8, an id
 * over INT64_MAX).  jset_str skips a NULL s; jset_time sets key (RFC 3339
 * UTC, null for 0) and key_unix.  jwipe wipes a secret string member.
 */
int	certctl_out_jset_str(json_t *o, const char *key, const char *s);
int	certctl_out_jset_int(json_t *o, const char *key, json_int_t v);
int	certctl_out_jset_u64(json_t *o, const char *key, uint64_t v);
int	certctl_out_jset_time(json_t *o, const char *key, int64_t t);
void	certctl_out_jwipe(json_t *o, const char *key);

/*
 * Print o (ours: freed; NULL when it could not be built) on one line;
 * secret: wipe the private key in it and the text.  0 or an exit status.
 */
int	certctl_out_print_json(json_t *o, int secret);

/* Human output: "label   TIME", s or dflt, table cells and columns. */
void	certctl_out_print_time(const char *label, int64_t t);
const char *certctl_out_str_or(const char *s, const char *dflt);
void	certctl_out_print_cell(const char *s, size_t width);
void	certctl_out_widen(size_t *width, const char *s);

/* At most max bytes of s into out (max + 1), not cutting a character. */
void	certctl_out_copy_utf8(char *out, size_t max, const char *s);

#endif
