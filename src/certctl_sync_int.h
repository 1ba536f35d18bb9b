/* SPDX-License-Identifier: MIT */
/*
 * certctl sync's private header: the agent's context, shared by
 * certctl_sync.c (the agent: events, debounce, apply, reload, check, ack),
 * certctl_sync_opts.c (its command line) and certctl_sync_files.c (the
 * files it writes, and the pid file it reads, each through a directory
 * opened with no link on the way).
 */
#ifndef CERTD_CERTCTL_SYNC_INT_H
#define CERTD_CERTCTL_SYNC_INT_H

#include <sys/types.h>
#include <sys/stat.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <certd/constants.h>

#include "tlsprobe.h"

struct certd_watch;
struct event;
struct event_base;

#define SYNC_DEBOUNCE_MS	200
#define SYNC_DEBOUNCE_MAX_MS	60000
#define SYNC_MAXWAIT_FACTOR	10	/* longest wait, in debounce windows */
#define SYNC_TIMEOUT_S		30
#define SYNC_TIMEOUT_MAX_S	86400
#define SYNC_TAIL		200	/* bytes of the reload's stderr kept */
/* certd's ack detail and its NUL. */
#define SYNC_DETAIL_MAX		(CERTD_ACK_DETAIL_MAX + 1)
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
 * What the agent is doing: the table at the top of certctl_sync.c says
 * what each state holds and which it goes to; sync_set_state is the one
 * place that changes it.
 */
enum sync_state {
	SYNC_IDLE,		/* nothing waits, runs, or owes a retry */
	SYNC_DEBOUNCE,		/* pending waits for timer */
	SYNC_APPLYING,		/* sync_apply: compare, write, reload */
	SYNC_RELOADING,		/* the --exec command (child) runs */
	SYNC_KILLING,		/* it timed out: killed, its exit awaited */
	SYNC_VERIFYING,		/* the --verify check of probe_rev runs */
	SYNC_RETRY_WAIT,	/* applying last failed: retry_timer runs */
	SYNC_STOPPED,		/* a signal ended the loop: exit 0 */
	SYNC_ENDED,		/* the watch ended for good: code, err */
	SYNC_NSTATES,
};

/*
 * Invariants, with the table at the top of certctl_sync.c: child is the
 * pid of the reload command in RELOADING and KILLING (0 once reaped),
 * and child_timer is pending then; child_fd is its stderr pipe until
 * drained (-1 after).  pending is the newest record not applied yet
 * (waiting for timer in DEBOUNCE, for the end of what runs in RELOADING,
 * KILLING and VERIFYING); pending_since the monotonic ms when it went
 * from none to some.  last is the record applied last (NULL after a
 * delete); in RETRY_WAIT its failed apply waits for retry_timer, retry_ms
 * the wait after that one.  probe is the last check started (inert once
 * done, freed at the next start).  forgotten: the whole state came while
 * the reload or check ran, whose outcome is then logged, not acked.
 * written_fp is the leaf of the record being applied.  have_ack is not a
 * state: any state may hold an ack to resend after a reconnect.
 */
struct sync_ctx {
	struct event_base	*base;
	struct certd_watch	*w;
	char			 name[CERTD_WATCH_NAME_MAX + 1];
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
	unsigned		 verify_timeout_s;	/* 0 while parsing: not given */

	enum sync_state		 state;
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
	int			 forgotten;	/* outcome not acked */
	int			 child_fd;
	struct event		*child_ev;
	struct event		*child_timer;
	char			 tail[SYNC_TAIL];
	size_t			 tail_len;

	char			 written_fp[CERTD_FINGERPRINT_LEN + 1];
	struct tlsprobe		*probe;
	uint64_t		 probe_rev;
	char			 probe_what[SYNC_DETAIL_MAX];	/* the reload */

	int			 have_ack;	/* resent after a reconnect */
	uint64_t		 ack_rev;
	int			 ack_status;	/* enum certd_ack_status */
	char			 ack_detail[SYNC_DETAIL_MAX];
	char			 ack_served[CERTD_FINGERPRINT_LEN + 1];
	int64_t			 ack_verified_at;	/* 0: no check */

	struct event		*sigint;
	struct event		*sigterm;
	struct event		*sighup;	/* stops as SIGTERM does */
	struct event		*sigchld;
	int			 code;		/* libcertd's, of the end */
	char			 err[600];
};

/*
 * What the command line says besides the agent's settings, which
 * certctl_sync_opts.c writes into struct sync_ctx: what to follow, and
 * what is checked or resolved once every option is read.
 */
struct sync_args {
	const char	*team;
	const char	*alias;		/* NULL: by id */
	uint64_t	 id;		/* 0: by alias */
	char		 idname[32];	/* id in decimal */
	const char	*name;		/* --name, or NULL */
	const char	*owner;		/* --owner, or NULL */
	mode_t		 mode;		/* --mode, 0644 when not given */
	int		 mode_given;
	const char	*verify[SYNC_VERIFY_MAX];	/* resolved into ctx */
	size_t		 n_verify;
};

/* certctl_sync.c ---------------------------------------------------- */

/* One line on stderr: time, the watch's name, what happened. */
void	certctl_sync_log(const struct sync_ctx *ctx, const char *f, ...)
	    __attribute__((format(printf, 2, 3)));

/* certctl_sync_opts.c ----------------------------------------------- */

struct global;

/*
 * Parse sync's command line into ctx (settings; all else zero, nothing
 * open: it can be torn down whatever this returns) and a, and check it.
 * 0, or the exit status of the usage error reported.
 */
int	certctl_sync_opts_parse(struct sync_ctx *ctx, struct sync_args *a,
	    int argc, char *argv[], struct global *g);

/*
 * Parse and resolve the n --verify targets args into ctx->verify (may
 * block: before the loop runs).  0, or EXIT_USAGE with the reason said.
 */
int	certctl_sync_opts_verify(struct sync_ctx *ctx, const char *const *args,
	    size_t n);

/* certctl_sync_files.c ---------------------------------------------- */

/*
 * At start: open the directory of every file and check the pid file's;
 * 0, or the exit status of the usage error reported.
 */
int	certctl_sync_files_open(struct sync_ctx *ctx);

/* Open again a file's directory missing or removed; 0 or -1 (err). */
int	certctl_sync_files_dirs(struct sync_ctx *ctx, char *err, size_t errlen);

/*
 * Whether f holds exactly len bytes of buf: 1 yes (mode and owner fixed),
 * 0 no, SAFEFILE_REFUSED when what is there must not be touched (err).
 */
int	certctl_sync_files_same(const struct sync_ctx *ctx,
	    const struct sync_file *f, const char *buf, size_t len, char *err,
	    size_t errlen);

/* Write the files marked changed, temp files then renames; 0 or -1. */
int	certctl_sync_files_write(struct sync_ctx *ctx,
	    const struct sync_rec *rec, const char *const text[],
	    const size_t len[], const int changed[], char *err, size_t errlen);

/* The pid to signal (--pid, or read from --pid-file); 0 or -1 (err). */
int	certctl_sync_files_pid(const struct sync_ctx *ctx, pid_t *out,
	    struct stat *st, char *err, size_t errlen);

/* At the end: remove temp files left, close the directories. */
void	certctl_sync_files_close(struct sync_ctx *ctx);

#endif
