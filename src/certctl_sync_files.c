/* SPDX-License-Identifier: MIT */
/*
 * The files of certctl sync: each output file's directory is opened once
 * with no link on the way and written only by root or us (safefile.h);
 * a file is compared with what it should hold in chunks that are wiped,
 * and written as a synced temp file beside it, renamed over it only when
 * every changed file of the set is prepared.  The pid file of --signal is
 * read the same careful way.  The agent's decisions are in certctl_sync.c.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "certctl_sync_int.h"
#include "perm.h"
#include "safefile.h"
#include "util.h"

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
int
certctl_sync_files_dirs(struct sync_ctx *ctx, char *err, size_t errlen)
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
			certctl_sync_log(ctx, "the directory of %s was "
			    "removed; opening it again", f->path);
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
int
certctl_sync_files_same(const struct sync_ctx *ctx, const struct sync_file *f,
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
		certctl_sync_log(ctx, "%s: mode set to %04o", f->path,
		    (unsigned)f->mode);
out:
	util_wipe(chunk, sizeof(chunk));
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

/*
 * The pid to signal: --pid, or the first number in --pid-file, whose
 * fstat goes into *st (zeroes with --pid).  The pid file names a process
 * that root may signal: it is read as the targets are written, through a
 * directory opened with no link on the way and writable only by root or
 * us, never following a link, and only when no other uid may write it.
 * Its directory is opened at each read (a server's runtime directory may
 * be made anew when it restarts).
 */
int
certctl_sync_files_pid(const struct sync_ctx *ctx, pid_t *out, struct stat *st,
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

/*
 * Write the files marked changed: all temp files first, then all renames,
 * so the set changes as nearly at once as rename allows.  On failure the
 * temp files are removed (files renamed before it stay) and err says why.
 */
int
certctl_sync_files_write(struct sync_ctx *ctx, const struct sync_rec *rec,
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
		certctl_sync_log(ctx, "revision %llu: certificate %llu: wrote "
		    "%s%s", (unsigned long long)rec->revision,
		    (unsigned long long)rec->id, wrote, r != 0 ? " before the "
		    "failure" : "");
	return r;
}

/*
 * Before anything runs, open the directory of every file and check the
 * pid file's: one reached through a link, or writable by another uid,
 * ends the command with the reason (EXIT_USAGE); one that does not exist
 * yet is opened when a change comes (certctl_sync_files_dirs).  Two
 * options naming one file (one name in one directory, however spelt) are
 * a usage error.
 */
int
certctl_sync_files_open(struct sync_ctx *ctx)
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
			certctl_sync_log(ctx, "%s (tried again at each change)",
			    err);
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

/* Remove the temp files left, close the directories. */
void
certctl_sync_files_close(struct sync_ctx *ctx)
{
	int	i;

	for (i = 0; i < SYNC_NFILES; i++) {
		sync_discard(&ctx->files[i]);
		if (ctx->files[i].dirfd != -1)
			(void)close(ctx->files[i].dirfd);
	}
}
