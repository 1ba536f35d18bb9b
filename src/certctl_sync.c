/* SPDX-License-Identifier: MIT */
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
 *
 * What the agent is doing is one state (enum sync_state), changed only by
 * sync_set_state and only along this table.  Any state but the final two
 * goes to STOPPED on SIGINT, SIGTERM or SIGHUP, to ENDED when the watch
 * ends for good; both end the loop.
 *
 *   state       holds                     goes to     when
 *   IDLE        nothing waits, runs, or   DEBOUNCE    a put
 *               owes a retry
 *   DEBOUNCE    pending; timer armed      APPLYING    timer fires
 *                                         DEBOUNCE    a newer put
 *                                         IDLE        a delete, resync
 *   APPLYING    sync_apply: compare,      RELOADING   --exec started
 *               write, reload             VERIFYING   reloaded, --verify
 *                                         IDLE        acked, no retry owed
 *                                         RETRY_WAIT  failed, retry owed
 *   RELOADING   child runs; child_timer   KILLING     child_timer fires
 *                                         VERIFYING   exit 0, --verify
 *                                         IDLE *      acked, no retry owed
 *                                         RETRY_WAIT  failed, retry owed
 *   KILLING     child's group killed,     IDLE *      reaped, not ours
 *               its exit awaited          RETRY_WAIT  reaped, retry owed
 *   VERIFYING   probe of probe_rev runs   IDLE *      served, or not ours
 *                                         RETRY_WAIT  not served
 *   RETRY_WAIT  last failed; retry_timer  APPLYING    retry_timer fires
 *               armed                     DEBOUNCE    a put (newer wins)
 *                                         IDLE        a delete, resync
 *   STOPPED     exit 0                    (final)
 *   ENDED       exit with code and err    (final)
 *
 * IDLE *: DEBOUNCE instead when a put came while the command or check
 * ran: pending waited for its end (sync_idle).  "Not ours": rev is no
 * longer the change to confirm (sync_current): a newer put came, or a
 * delete or resync dropped pending and last while the command or check
 * ran, leaving the state as it was; its outcome is then acked as it is,
 * or after a resync only logged (forgotten), and no retry is owed.
 *
 * This file is the agent; certctl_sync_opts.c reads its command line and
 * certctl_sync_files.c writes the files.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "certctl_sync_int.h"
#include "tlsprobe.h"
#include "util.h"

static int64_t
mono_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on stderr: time, the watch's name, what happened. */
void
certctl_sync_log(const struct sync_ctx *ctx, const char *f, ...)
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

/*
 * The changes of state the table at the top allows: a bit for each state
 * that may follow.  STOPPED and ENDED may follow any state but themselves.
 */
#define SYNC_TO(s)	(1u << (s))
static const unsigned	sync_next[SYNC_NSTATES] = {
	[SYNC_IDLE] = SYNC_TO(SYNC_DEBOUNCE),
	[SYNC_DEBOUNCE] = SYNC_TO(SYNC_APPLYING) | SYNC_TO(SYNC_DEBOUNCE) |
	    SYNC_TO(SYNC_IDLE),
	[SYNC_APPLYING] = SYNC_TO(SYNC_RELOADING) | SYNC_TO(SYNC_VERIFYING) |
	    SYNC_TO(SYNC_IDLE) | SYNC_TO(SYNC_RETRY_WAIT),
	[SYNC_RELOADING] = SYNC_TO(SYNC_KILLING) | SYNC_TO(SYNC_VERIFYING) |
	    SYNC_TO(SYNC_IDLE) | SYNC_TO(SYNC_DEBOUNCE) |
	    SYNC_TO(SYNC_RETRY_WAIT),
	[SYNC_KILLING] = SYNC_TO(SYNC_IDLE) | SYNC_TO(SYNC_DEBOUNCE) |
	    SYNC_TO(SYNC_RETRY_WAIT),
	[SYNC_VERIFYING] = SYNC_TO(SYNC_IDLE) | SYNC_TO(SYNC_DEBOUNCE) |
	    SYNC_TO(SYNC_RETRY_WAIT),
	[SYNC_RETRY_WAIT] = SYNC_TO(SYNC_APPLYING) | SYNC_TO(SYNC_DEBOUNCE) |
	    SYNC_TO(SYNC_IDLE),
	[SYNC_STOPPED] = 0,
	[SYNC_ENDED] = 0,
};

static const char *const	sync_state_names[SYNC_NSTATES] = {
	[SYNC_IDLE] = "IDLE",
	[SYNC_DEBOUNCE] = "DEBOUNCE",
	[SYNC_APPLYING] = "APPLYING",
	[SYNC_RELOADING] = "RELOADING",
	[SYNC_KILLING] = "KILLING",
	[SYNC_VERIFYING] = "VERIFYING",
	[SYNC_RETRY_WAIT] = "RETRY_WAIT",
	[SYNC_STOPPED] = "STOPPED",
	[SYNC_ENDED] = "ENDED",
};

/*
 * The one place the state changes.  A change the table does not list is
 * a broken invariant: abort rather than run on with a state that no
 * longer says what runs.  STOPPED and ENDED stay: the loop is ending, and
 * what the callback that ended it still does changes nothing.
 */
static void
sync_set_state(struct sync_ctx *ctx, enum sync_state to)
{
	if (ctx->state == SYNC_STOPPED || ctx->state == SYNC_ENDED)
		return;
	if (to != SYNC_STOPPED && to != SYNC_ENDED &&
	    (sync_next[ctx->state] & SYNC_TO(to)) == 0) {
		certctl_sync_log(ctx, "broken invariant: state %s -> %s",
		    sync_state_names[ctx->state], sync_state_names[to]);
		abort();
	}
	ctx->state = to;
}

static void
sync_rec_free(struct sync_rec *rec)
{
	if (rec == NULL)
		return;
	free(rec->certificate);
	certctl_free_secret(rec->private_key);
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
		certctl_sync_log(ctx, "revision %llu: %s: %s (not acked: "
		    "revision %llu was acked since)",
		    (unsigned long long)rev, sync_status_name(status), detail,
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
	certctl_sync_log(ctx, "revision %llu: %s: %s", (unsigned long long)rev,
	    sync_status_name(status), detail);
	if (certd_watch_ack_status(ctx->w, rev, (enum certd_ack_status)status,
	    ctx->ack_detail, served, verified_at) != 0)
		certctl_sync_log(ctx, "revision %llu: ack not sent (not "
		    "connected); sent after the reconnect",
		    (unsigned long long)rev);
}

static void
sync_ack(struct sync_ctx *ctx, uint64_t rev, int status, const char *detail)
{
	sync_ack_check(ctx, rev, status, detail, NULL, 0);
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

/*
 * What ran (an apply, a reload command, a check) ended and owes no
 * retry: what waits is next (DEBOUNCE), else nothing (IDLE).
 */
static void
sync_idle(struct sync_ctx *ctx)
{
	if (ctx->pending != NULL)
		sync_schedule(ctx);
	else
		sync_set_state(ctx, SYNC_IDLE);
}

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
	sync_set_state(ctx, SYNC_RETRY_WAIT);
	certctl_sync_log(ctx, "trying again in %u s unless a change comes "
	    "first", ms / 1000);
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
	    ctx->pid_file == NULL && ctx->gone_pid != 0)) {
		sync_retry_reset(ctx);
		sync_idle(ctx);
	} else
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
	return ctx->state == SYNC_RELOADING || ctx->state == SYNC_KILLING ||
	    ctx->state == SYNC_VERIFYING;
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

/* A detail, cut to what certd keeps at a character boundary. */
static void __attribute__((format(printf, 3, 4)))
sync_detail(char *out, size_t len, const char *f, ...)
{
	char	buf[2 * SYNC_DETAIL_MAX];
	va_list	ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	certctl_out_copy_utf8(out, len - 1, buf);
}

/* The --verify check of probe_rev ended. */
static void
sync_verified(const struct tlsprobe_result *res, void *arg)
{
	struct sync_ctx	*ctx = arg;
	char		 detail[SYNC_DETAIL_MAX], where[64];
	unsigned	 ms = res->elapsed_ms;

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
	if (ctx->forgotten) {
		ctx->forgotten = 0;
		certctl_sync_log(ctx, "revision %llu: %s: %s (not acked: the "
		    "whole state came since)",
		    (unsigned long long)ctx->probe_rev, res->ok ? "ok" :
		    "failed", detail);
		sync_idle(ctx);
	} else if (!sync_current(ctx, ctx->probe_rev)) {
		sync_ack_check(ctx, ctx->probe_rev, res->ok ? CERTD_ACK_OK :
		    CERTD_ACK_FAILED, detail, res->served, res->verified_at);
		sync_idle(ctx);
	} else
		sync_outcome_check(ctx, ctx->probe_rev, res->ok ?
		    CERTD_ACK_OK : CERTD_ACK_FAILED, detail, res->served,
		    res->verified_at);
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
		else {
			sync_ack(ctx, rev, CERTD_ACK_REQUESTED, detail);
			sync_idle(ctx);
		}
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
	sync_set_state(ctx, SYNC_VERIFYING);
	ctx->probe_rev = rev;
	ctx->forgotten = 0;
	snprintf(ctx->probe_what, sizeof(ctx->probe_what), "%s", what);
	certctl_sync_log(ctx, "revision %llu: %s; checking that %s%s serve%s "
	    "sha256 %.16s... (at most %u s)", (unsigned long long)rev, what,
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
	if (ctx->state == SYNC_KILLING)
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
	if (ctx->forgotten) {
		/* its revision may be of a store this one was restored from */
		ctx->forgotten = 0;
		certctl_sync_log(ctx, "revision %llu: %s: %s (not acked: the "
		    "whole state came since)",
		    (unsigned long long)ctx->child_rev, ok ? "requested" :
		    "failed", detail);
		sync_idle(ctx);
	} else if (ok)
		sync_reloaded(ctx, ctx->child_rev, detail,
		    sync_current(ctx, ctx->child_rev));
	else if (!sync_current(ctx, ctx->child_rev)) {
		sync_ack(ctx, ctx->child_rev, 0, detail); /* replaced, deleted */
		sync_idle(ctx);
	} else
		sync_outcome(ctx, ctx->child_rev, 0, detail);
}

/* Reap the command if it has exited; returns 1 when it had. */
static int
sync_child_reap(struct sync_ctx *ctx)
{
	pid_t	r;
	int	st;

	if (ctx->state != SYNC_RELOADING && ctx->state != SYNC_KILLING)
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
sync_child_timeout(struct sync_ctx *ctx)
{
	struct timeval	tv = { 0, SYNC_REAP_MS * 1000 };

	if (ctx->state == SYNC_RELOADING) {
		sync_set_state(ctx, SYNC_KILLING);
		certctl_sync_log(ctx, "reload command timed out after %u s; "
		    "killing process group %ld", ctx->timeout_s,
		    (long)ctx->child);
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
	sync_set_state(ctx, SYNC_RELOADING);
	ctx->child = pid;
	ctx->child_rev = rev;
	ctx->child_fd = fds[0];
	fds[0] = -1;
	ctx->tail_len = 0;
	evtimer_add(ctx->child_timer, &tv);
	certctl_sync_log(ctx, "revision %llu: exec (pid %ld): %s",
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
	if (certctl_sync_files_pid(ctx, &pid, &st, detail, sizeof(detail)) != 0)
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

	sync_set_state(ctx, SYNC_APPLYING);
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
	if (certctl_sync_files_dirs(ctx, err, sizeof(err)) != 0) {
		sync_outcome(ctx, rec->revision, 0, err);
		goto out;
	}
	for (i = 0; i < SYNC_NFILES; i++) {
		f = &ctx->files[i];
		if ((same = f->path == NULL ? 1 : certctl_sync_files_same(ctx,
		    f, text[i], len[i], err, sizeof(err))) < 0) {
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
		certctl_sync_log(ctx, "revision %llu: files unchanged; "
		    "reloading again after the failed reload",
		    (unsigned long long)rec->revision);
	else if (certctl_sync_files_write(ctx, rec, text, len, changed, err,
	    sizeof(err)) != 0) {
		/* Some files may be new: the next try must reload. */
		ctx->reload_owed = 1;
		sync_outcome(ctx, rec->revision, 0, err);
		goto out;
	}
	sync_reload(ctx, rec->revision);
out:
	if (bundle != NULL)
		certctl_free_secret(bundle);
	sync_rec_free(ctx->last);
	ctx->last = rec;		/* for a retry */
}

/* The back-off is over: apply the failed change again. */
static void
sync_retry(struct sync_ctx *ctx)
{
	certctl_sync_log(ctx, "revision %llu: trying again",
	    (unsigned long long)ctx->last->revision);
	ctx->pending = ctx->last;
	ctx->pending_since = mono_ms();
	ctx->last = NULL;
	sync_apply(ctx);
}

/*
 * The one callback of the three timers: what a firing means comes from the
 * state (the table at the top).  Each timer is armed only in its states
 * and deleted when they are left: the debounce timer in DEBOUNCE,
 * child_timer in RELOADING and KILLING, retry_timer in RETRY_WAIT.  In
 * any other state nothing waits on a timer: a change waiting or being
 * applied supersedes a failed one, and a running command's or check's
 * completion schedules what waits.
 */
static void
sync_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;

	(void)fd;
	(void)what;
	switch (ctx->state) {
	case SYNC_DEBOUNCE:
		sync_apply(ctx);
		break;
	case SYNC_RELOADING:
	case SYNC_KILLING:
		sync_child_timeout(ctx);
		break;
	case SYNC_RETRY_WAIT:
		sync_retry(ctx);
		break;
	default:
		break;
	}
}

/*
 * Arm the debounce timer for pending (DEBOUNCE): the first state of a run
 * at once, later changes once none came for debounce_ms, but never later
 * than SYNC_MAXWAIT_FACTOR windows after the first of them.  Not while a
 * reload command or a check runs: its end comes here (sync_idle).
 */
static void
sync_schedule(struct sync_ctx *ctx)
{
	struct timeval	tv;
	int64_t		delay = 0, left;

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
	sync_set_state(ctx, SYNC_DEBOUNCE);
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
		certctl_sync_log(ctx, "revision %llu: replaces revision %llu "
		    "not yet applied", (unsigned long long)rec->revision,
		    (unsigned long long)ctx->pending->revision);
	sync_rec_free(ctx->pending);
	ctx->pending = rec;
	if (!sync_busy(ctx))
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
		ctx->forgotten = sync_busy(ctx);
	}
	if (ctx->state == SYNC_DEBOUNCE || ctx->state == SYNC_RETRY_WAIT)
		sync_set_state(ctx, SYNC_IDLE);
}

/*
 * The certificate is no longer ours to follow: deleted, or a put that
 * left our alias.  Nothing of it is applied or retried; the files stay.
 */
static void
sync_gone(struct sync_ctx *ctx, const struct certd_event *ev)
{
	int	left = ev->kind == CERTD_EVENT_PUT;

	if (left)
		certctl_sync_log(ctx, "certificate %llu left the alias (now %s)",
		    (unsigned long long)ev->cert->id,
		    ev->cert->alias != NULL ? ev->cert->alias : "-");
	else
		certctl_sync_log(ctx, "certificate %llu deleted",
		    ev->cert != NULL ? (unsigned long long)ev->cert->id : 0ULL);
	sync_forget(ctx, 0);
	sync_ack(ctx, ev->revision, 1, left ? "left the alias; files kept" :
	    "deleted; files kept");
}

static void
sync_event_cb(const struct certd_event *ev, void *arg)
{
	struct sync_ctx	*ctx = arg;

	switch (ev->kind) {
	case CERTD_EVENT_CONNECTED:
		certctl_sync_log(ctx, "watching (certd revision %llu%s)",
		    (unsigned long long)ev->revision,
		    ev->state ? "; the current state follows" : "");
		if (ev->state)
			sync_forget(ctx, 1);
		/* A new connection is a new watch: tell certd where we are. */
		if (ctx->have_ack && certd_watch_ack_status(ctx->w,
		    ctx->ack_rev, (enum certd_ack_status)ctx->ack_status,
		    ctx->ack_detail, *ctx->ack_served != '\0' ?
		    ctx->ack_served : NULL, ctx->ack_verified_at) != 0)
			certctl_sync_log(ctx, "could not resend the last ack");
		break;
	case CERTD_EVENT_DISCONNECTED:
		certctl_sync_log(ctx, "disconnected: %s%s", ev->error != NULL ?
		    ev->error : "?", ev->ended ? "" : "; reconnecting");
		if (ev->ended) {
			snprintf(ctx->err, sizeof(ctx->err), "%s",
			    ev->error != NULL ? ev->error : "disconnected");
			ctx->code = ev->code;
			sync_set_state(ctx, SYNC_ENDED);
			event_base_loopbreak(ctx->base);
		}
		break;
	case CERTD_EVENT_RESYNC:
		certctl_sync_log(ctx, "resync at revision %llu: the current "
		    "state follows", (unsigned long long)ev->revision);
		sync_forget(ctx, 1);
		break;
	case CERTD_EVENT_PUT:
		if (ev->cert == NULL)
			break;
		if (ev->left)		/* renamed away from our alias */
			sync_gone(ctx, ev);
		else
			sync_put(ctx, ev);
		break;
	case CERTD_EVENT_DELETE:
		sync_gone(ctx, ev);
		break;
	}
}

static void
sync_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sync_ctx	*ctx = arg;

	(void)what;
	certctl_sync_log(ctx, "stopping on %s", sig == SIGINT ? "SIGINT" :
	    sig == SIGHUP ? "SIGHUP" : "SIGTERM");
	sync_set_state(ctx, SYNC_STOPPED);
	event_base_loopbreak(ctx->base);
}

/*
 * The loop and what runs on it: signals, timers, the watch of the
 * certificate (from the current state, reconnecting).  0, or the exit
 * status of the failure reported.
 */
static int
sync_setup(struct sync_ctx *ctx, struct sync_args *a, const struct global *g)
{
	struct certd_watch_opts	 opts;
	char			 err[512];

	memset(&opts, 0, sizeof(opts));
	opts.socket = g->socket;
	opts.team = a->team;
	opts.ids = a->id != 0 ? &a->id : NULL;
	opts.n_ids = a->id != 0;
	opts.aliases = a->alias != NULL ? &a->alias : NULL;
	opts.n_aliases = a->alias != NULL;
	opts.has_since = 1;
	opts.since = 0;
	opts.name = ctx->name;
	opts.reconnect = 1;

	if ((ctx->base = event_base_new()) == NULL)
		return certctl_out_fail("cannot create an event loop");
	ctx->sigint = evsignal_new(ctx->base, SIGINT, sync_signal_cb, ctx);
	ctx->sigterm = evsignal_new(ctx->base, SIGTERM, sync_signal_cb, ctx);
	/* A hang-up stops like SIGTERM: never in the middle of a write. */
	ctx->sighup = evsignal_new(ctx->base, SIGHUP, sync_signal_cb, ctx);
	ctx->sigchld = evsignal_new(ctx->base, SIGCHLD, sync_sigchld_cb, ctx);
	ctx->timer = evtimer_new(ctx->base, sync_timer_cb, ctx);
	ctx->child_timer = evtimer_new(ctx->base, sync_timer_cb, ctx);
	ctx->retry_timer = evtimer_new(ctx->base, sync_timer_cb, ctx);
	if (ctx->sigint == NULL || ctx->sigterm == NULL ||
	    ctx->sighup == NULL || ctx->sigchld == NULL ||
	    ctx->timer == NULL || ctx->child_timer == NULL ||
	    ctx->retry_timer == NULL ||
	    evsignal_add(ctx->sigint, NULL) != 0 ||
	    evsignal_add(ctx->sigterm, NULL) != 0 ||
	    evsignal_add(ctx->sighup, NULL) != 0 ||
	    evsignal_add(ctx->sigchld, NULL) != 0)
		return certctl_out_fail("cannot set up the event loop");
	errno = 0;
	if ((ctx->w = certd_watch_new(ctx->base, &opts, sync_event_cb, ctx,
	    err, sizeof(err))) == NULL)
		return certctl_out_fail_as(errno == ENOMEM ? EXIT_FAILED :
		    EXIT_USAGE, "%s", err);
	certctl_sync_log(ctx, "following %s %s in team %s on %s",
	    a->alias != NULL ? "alias" : "id",
	    a->alias != NULL ? a->alias : a->idname, opts.team,
	    certd_socket_path(g->socket));
	return 0;
}

/* Run until a signal or the end of the watch; the exit status. */
static int
sync_run(struct sync_ctx *ctx)
{
	if (event_base_dispatch(ctx->base) == -1)
		return certctl_out_fail("event loop failed");
	if (ctx->state == SYNC_STOPPED)
		return 0;
	if (ctx->state == SYNC_ENDED)
		return certctl_out_fail_code(ctx->code, "sync: ", ctx->err);
	return certctl_out_fail("sync: the event loop ended");
}

/*
 * Free what ctx holds, after a run or a failed setup.  A reload command
 * still running is left to finish: it is not ours to kill.
 */
static void
sync_teardown(struct sync_ctx *ctx)
{
	size_t	i;

	if (ctx->child != 0)
		certctl_sync_log(ctx, "leaving reload command %ld to finish "
		    "on its own", (long)ctx->child);
	sync_child_close(ctx);
	certctl_sync_files_close(ctx);
	sync_rec_free(ctx->pending);
	sync_rec_free(ctx->last);
	tlsprobe_free(ctx->probe);
	for (i = 0; i < ctx->n_verify; i++)
		tlsprobe_target_free(ctx->verify[i]);
	certd_watch_free(ctx->w);
	if (ctx->timer != NULL)
		event_free(ctx->timer);
	if (ctx->retry_timer != NULL)
		event_free(ctx->retry_timer);
	if (ctx->child_timer != NULL)
		event_free(ctx->child_timer);
	if (ctx->sigint != NULL)
		event_free(ctx->sigint);
	if (ctx->sigterm != NULL)
		event_free(ctx->sigterm);
	if (ctx->sighup != NULL)
		event_free(ctx->sighup);
	if (ctx->sigchld != NULL)
		event_free(ctx->sigchld);
	if (ctx->base != NULL)
		event_base_free(ctx->base);
}

/*
 * certctl sync: the options (certctl_sync_opts.c), the files' directories
 * (certctl_sync_files.c) and the --verify targets checked before anything
 * runs, then the loop until a signal (exit 0) or the end of the watch.
 */
int
certctl_sync_main(int argc, char *argv[], struct global *g)
{
	struct sync_ctx		ctx;
	struct sync_args	args;
	int			r;

	if ((r = certctl_sync_opts_parse(&ctx, &args, argc, argv, g)) != 0)
		return r;
	if ((r = certctl_sync_files_open(&ctx)) == 0 &&
	    (r = certctl_sync_opts_verify(&ctx, args.verify,
	    args.n_verify)) == 0 &&
	    (r = sync_setup(&ctx, &args, g)) == 0)
		r = sync_run(&ctx);
	sync_teardown(&ctx);
	return r;
}
