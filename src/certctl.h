/* SPDX-License-Identifier: MIT */
/*
 * certctl's private header: what its files share.  certctl.c holds main,
 * the commands and the parser of their option tables (certctl_getopt,
 * which adds the options every command takes); certctl_out.c the one way
 * errors are reported (exit status by class, --json objects) and the
 * helpers that print JSON and tables; certctl_sync*.c the sync agent
 * (certctl_sync_int.h).  Not installed: only certctl's own files include
 * it.
 */
#ifndef CERTD_CERTCTL_H
#define CERTD_CERTCTL_H

#include <stdint.h>
#include <stdio.h>

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

/* certctl.c --------------------------------------------------------- */

/* Strict decimal into *out; 0 refused unless allow_zero.  0 or EXIT_USAGE. */
int	certctl_parse_u64(const char *s, const char *what, int allow_zero,
	    uint64_t *out);

/*
 * What a row of a command's option table does with its option (struct
 * certctl_opt; the OPT_* macros below write the rows).
 */
enum certctl_arg {
	CERTCTL_FLAG,	/* no argument: 1 into *(int *)dst */
	CERTCTL_STR,	/* the argument (argv's) into *(const char **)dst */
	CERTCTL_NUM,	/* a decimal above 0 into *(uint64_t *)dst */
	CERTCTL_UINT,	/* a decimal from min (0 or 1) to max, *(unsigned *) */
	CERTCTL_CALL,	/* call(dst, the argument) */
};

/*
 * One option of a command: --name, and where its argument goes.  what
 * names a number in "bad WHAT 'x'"; unit follows max in "--NAME is at
 * most MAX UNIT"; call returns 0 or the exit status of the usage error it
 * reported.  A table of them ends with OPT_END.
 */
struct certctl_opt {
	const char		*name;
	enum certctl_arg	 arg;
	void			*dst;
	const char		*what;
	unsigned		 min;
	unsigned		 max;
	const char		*unit;
	int			(*call)(void *dst, const char *arg);
};

/* The rows; the conditional makes the compiler check dst's type. */
#define OPT_FLAG(name, dst) \
	{ name, CERTCTL_FLAG, 1 ? (dst) : (int *)0, NULL, 0, 0, NULL, NULL }
#define OPT_STR(name, dst) \
	{ name, CERTCTL_STR, 1 ? (dst) : (const char **)0, NULL, 0, 0, NULL, \
	  NULL }
#define OPT_NUM(name, what, dst) \
	{ name, CERTCTL_NUM, 1 ? (dst) : (uint64_t *)0, what, 1, 0, NULL, NULL }
#define OPT_UINT(name, min, max, unit, dst) \
	{ name, CERTCTL_UINT, 1 ? (dst) : (unsigned *)0, name, min, max, unit, \
	  NULL }
#define OPT_CALL(name, call, dst) \
	{ name, CERTCTL_CALL, dst, NULL, 0, 0, NULL, call }
#define OPT_END \
	{ NULL, CERTCTL_FLAG, NULL, NULL, 0, 0, NULL, NULL }

/*
 * Parse cmd's options: those of the table opts (NULL: none), then -s and
 * --json into g (NULL: not taken, as by `token new`).  0 with optind at
 * the first operand, or the exit status of the usage error reported.
 */
int	certctl_getopt(const char *cmd, int argc, char *argv[],
	    struct global *g, const struct certctl_opt *opts);

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
#define	certctl_out_fail(...) \
	certctl_out_fail_as(EXIT_FAILED, __VA_ARGS__)
int	certctl_out_usage_error(const char *f, ...)
	    __attribute__((format(printf, 1, 2)));

/* A failure with libcertd's code r (< 0) and msg, prefix before both. */
int	certctl_out_fail_code(int r, const char *prefix, const char *msg);

/* A failed libcertd call on c: certd's status and message. */
int	certctl_out_fail_call(struct certd_client *c, int r);

/* Flush standard output: 0, or the exit status of the failure. */
int	certctl_out_flush_stdout(void);

/*
 * JSON members (json.h's writer): jstr skips a NULL s; jtime writes key
 * (RFC 3339 UTC, null for 0) and key_unix.
 */
struct json_w;
void	certctl_out_jstr(struct json_w *w, const char *key, const char *s);
void	certctl_out_jtime(struct json_w *w, const char *key, int64_t t);

/*
 * Print what w wrote on one line and free w (its text is wiped: it may
 * hold a key); NULL is out of memory.  0 or an exit status.
 */
int	certctl_out_print_json(struct json_w *w);

/* Human output: "label   TIME", s or dflt, table cells and columns. */
void	certctl_out_print_time(const char *label, int64_t t);
const char *certctl_out_str_or(const char *s, const char *dflt);
void	certctl_out_print_cell(const char *s, size_t width);
void	certctl_out_widen(size_t *width, const char *s);

/* At most max bytes of s into out (max + 1), not cutting a character. */
void	certctl_out_copy_utf8(char *out, size_t max, const char *s);

#endif
