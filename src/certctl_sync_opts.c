/* SPDX-License-Identifier: MIT */
/*
 * The command line of certctl sync: a table of its options, which
 * certctl_getopt (certctl.c) reads into the agent's settings (struct
 * sync_ctx, certctl_sync_int.h) and the rest of what they say into struct
 * sync_args, then checked together, before anything runs; the --verify targets are resolved after the files' directories
 * are opened (certctl_sync_files_open), the order of the errors a user
 * sees.  Every problem is a usage error: exit status 2, said once.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "certctl.h"
#include "certctl_sync_int.h"
#include "tlsprobe.h"
#include "util.h"

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

/* --mode MODE: the files' mode (the key's without others' bits). */
static int
sync_mode(void *dst, const char *arg)
{
	struct sync_args	*a = dst;

	if (parse_mode(arg, &a->mode) != 0)
		return certctl_out_usage_error("sync: bad mode '%s' (octal, at "
		    "most 0777)", arg);
	a->mode_given = 1;
	return 0;
}

/* --signal SIG into ctx->sig (never 0 once given) and ctx->signame. */
static int
sync_signal(void *dst, const char *arg)
{
	struct sync_ctx	*ctx = dst;

	if (parse_signal(arg, &ctx->sig, ctx->signame,
	    sizeof(ctx->signame)) != 0)
		return certctl_out_usage_error("sync: bad signal '%s'", arg);
	return 0;
}

/* --pid PID: the server that --signal signals. */
static int
sync_pid(void *dst, const char *arg)
{
	uint64_t	v;

	if (certctl_parse_u64(arg, "pid", 0, &v) != 0)
		return EXIT_USAGE;
	if (v > INT_MAX)
		return certctl_out_usage_error("sync: bad pid '%s'", arg);
	*(pid_t *)dst = (pid_t)v;
	return 0;
}

/* --verify HOST:PORT[,SNI], as often as SYNC_VERIFY_MAX. */
static int
sync_verify(void *dst, const char *arg)
{
	struct sync_args	*a = dst;

	if (a->n_verify == SYNC_VERIFY_MAX)
		return certctl_out_usage_error("sync: at most %d --verify",
		    SYNC_VERIFY_MAX);
	a->verify[a->n_verify++] = arg;		/* resolved later */
	return 0;
}

/*
 * The options together: one TEAM, what each option excludes or needs;
 * then what they imply: the owner, the files' modes, the watch's name.
 * 0, or the exit status of the usage error reported.
 */
static int
sync_check(struct sync_ctx *ctx, struct sync_args *a, int argc,
    char *argv[])
{
	char	buf[512];
	int	r;

	if (argc - optind != 1)
		return certctl_out_usage_error("sync: want TEAM");
	if ((a->id != 0) == (a->alias != NULL))
		return certctl_out_usage_error("sync: want one of --id and "
		    "--alias");
	if (ctx->files[SYNC_CERT].path == NULL ||
	    ctx->files[SYNC_KEY].path == NULL)
		return certctl_out_usage_error("sync: --cert-file and "
		    "--key-file are required");
	if (ctx->exec != NULL && ctx->sig != 0)
		return certctl_out_usage_error("sync: --exec and --signal "
		    "exclude each other");
	if (ctx->sig != 0 && (ctx->pid != 0) == (ctx->pid_file != NULL))
		return certctl_out_usage_error("sync: --signal wants one of "
		    "--pid and --pid-file");
	if (ctx->sig == 0 && (ctx->pid != 0 || ctx->pid_file != NULL))
		return certctl_out_usage_error("sync: --pid and --pid-file go "
		    "with --signal");
	if (ctx->exec != NULL && ctx->timeout_s == 0)
		return certctl_out_usage_error("sync: --timeout must be at "
		    "least 1 s");
	if (ctx->verify_timeout_s != 0 && a->n_verify == 0)
		return certctl_out_usage_error("sync: --verify-timeout goes "
		    "with --verify");
	if (ctx->verify_timeout_s == 0)
		ctx->verify_timeout_s = SYNC_VERIFY_TIMEOUT_S;
	if (a->name != NULL && (*a->name == '\0' ||
	    strlen(a->name) > CERTD_WATCH_NAME_MAX ||
	    !util_utf8_valid(a->name, strlen(a->name))))
		return certctl_out_usage_error("sync: --name wants 1 to %d "
		    "bytes of UTF-8", CERTD_WATCH_NAME_MAX);
	if (a->owner != NULL && (r = parse_owner(a->owner, &ctx->uid,
	    &ctx->gid)) != 0)
		return r;
	ctx->files[SYNC_CERT].mode = a->mode;
	ctx->files[SYNC_CHAIN].mode = a->mode;
	/* Never a permission for others on a file with the key. */
	ctx->files[SYNC_KEY].mode = a->mode_given ? (a->mode & 0770) : 0600;
	ctx->files[SYNC_BUNDLE].mode = ctx->files[SYNC_KEY].mode;
	a->team = argv[optind];
	snprintf(a->idname, sizeof(a->idname), "%llu",
	    (unsigned long long)a->id);
	if (a->name == NULL) {
		snprintf(buf, sizeof(buf), "sync-%s",
		    a->alias != NULL ? a->alias : a->idname);
		certctl_out_copy_utf8(ctx->name, CERTD_WATCH_NAME_MAX, buf);
	} else
		certctl_out_copy_utf8(ctx->name, CERTD_WATCH_NAME_MAX, a->name);
	return 0;
}

/*
 * Parse the command line of certctl sync into ctx (its settings; the rest
 * zero, no descriptor open: sync_teardown may run on it whatever this
 * returns) and a.  0, or the exit status of the usage error reported.
 */
int
certctl_sync_opts_parse(struct sync_ctx *ctx, struct sync_args *a,
    int argc, char *argv[], struct global *g)
{
	const struct certctl_opt	opts[] = {
		OPT_NUM("id", "id", &a->id),
		OPT_STR("alias", &a->alias),
		OPT_STR("cert-file", &ctx->files[SYNC_CERT].path),
		OPT_STR("key-file", &ctx->files[SYNC_KEY].path),
		OPT_STR("chain-file", &ctx->files[SYNC_CHAIN].path),
		OPT_STR("bundle-file", &ctx->files[SYNC_BUNDLE].path),
		OPT_CALL("mode", sync_mode, a),
		OPT_STR("owner", &a->owner),
		OPT_STR("exec", &ctx->exec),
		OPT_CALL("signal", sync_signal, ctx),
		OPT_CALL("pid", sync_pid, &ctx->pid),
		OPT_STR("pid-file", &ctx->pid_file),
		OPT_UINT("timeout", 1, SYNC_TIMEOUT_MAX_S, "s",
		    &ctx->timeout_s),
		OPT_UINT("debounce", 0, SYNC_DEBOUNCE_MAX_MS, "ms",
		    &ctx->debounce_ms),
		OPT_STR("name", &a->name),
		OPT_CALL("verify", sync_verify, a),
		OPT_UINT("verify-timeout", 1, SYNC_VERIFY_TIMEOUT_MAX_S, "s",
		    &ctx->verify_timeout_s),
		OPT_END,
	};
	int				i, r;

	memset(ctx, 0, sizeof(*ctx));
	memset(a, 0, sizeof(*a));
	a->mode = 0644;
	ctx->child_fd = -1;
	ctx->uid = (uid_t)-1;
	ctx->gid = (gid_t)-1;
	ctx->timeout_s = SYNC_TIMEOUT_S;
	ctx->debounce_ms = SYNC_DEBOUNCE_MS;
	/* 0 until --verify-timeout: sync_check then knows it was given. */
	ctx->verify_timeout_s = 0;
	ctx->files[SYNC_CERT].label = "--cert-file";
	ctx->files[SYNC_KEY].label = "--key-file";
	ctx->files[SYNC_CHAIN].label = "--chain-file";
	ctx->files[SYNC_BUNDLE].label = "--bundle-file";
	for (i = 0; i < SYNC_NFILES; i++)
		ctx->files[i].dirfd = -1;
	ctx->euid = geteuid();
	if ((r = certctl_getopt("sync", argc, argv, g, opts)) != 0)
		return r;
	return sync_check(ctx, a, argc, argv);
}

/*
 * Parse and resolve the --verify targets (getaddrinfo may block: before
 * the loop runs).  A target that does not parse or resolve ends the
 * command with status 2.
 */
int
certctl_sync_opts_verify(struct sync_ctx *ctx, const char *const *args,
    size_t n)
{
	char	err[256];

	for (ctx->n_verify = 0; ctx->n_verify < n; ctx->n_verify++)
		if (tlsprobe_target_parse(args[ctx->n_verify],
		    &ctx->verify[ctx->n_verify], err, sizeof(err)) != 0)
			return certctl_out_usage_error("sync: --verify %s: %s",
			    args[ctx->n_verify], err);
	return 0;
}
