/* SPDX-License-Identifier: MIT */
/*
 * Files reached without following a link (see safefile.h): a directory
 * opened by openat2 RESOLVE_NO_SYMLINKS or by an O_NOFOLLOW walk, checked
 * as sshd's StrictModes checks, and the reads, temp files and renames
 * relative to its descriptor.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LINUX_OPENAT2_H
#include <linux/openat2.h>
#endif

#include "cert.h"
#include "perm.h"
#include "safefile.h"
#include "util.h"

static int __attribute__((format(printf, 4, 5)))
safefile_errf(int r, char *err, size_t errlen, const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	util_vfmt(err, errlen, f, ap);
	va_end(ap);
	return r;
}

/* MISSING for ENOENT, else ERR; err gets "path: strerror". */
static int
safefile_errno(const char *path, char *err, size_t errlen)
{
	int	e = errno;

	return safefile_errf(e == ENOENT ? SAFEFILE_MISSING : SAFEFILE_ERR,
	    err, errlen, "%s: %s", path, strerror(e));
}

static const char *
safefile_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a fifo";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "something else";
}

/* A regular file with one link, or REFUSED naming what it is. */
static int
safefile_plain(const struct stat *st, const char *path, char *err,
    size_t errlen)
{
	if (S_ISLNK(st->st_mode))
		return safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s is a "
		    "symbolic link (links are never followed)", path);
	if (!S_ISREG(st->st_mode))
		return safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s is %s, "
		    "not a regular file", path, safefile_kind(st->st_mode));
	if (st->st_nlink != 1)
		return safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s has "
		    "%ju hard links (changing it would change every name of "
		    "it)", path, (uintmax_t)st->st_nlink);
	return 0;
}

int
safefile_trusted(const struct stat *st, const char *path, uid_t euid,
    char *err, size_t errlen)
{
	int	dir = S_ISDIR(st->st_mode);

	if (perm_check_uid(st, dir ? "directory" : "file", path,
	    (dir ? PERM_DIR : 0) | PERM_OWNER_ROOT | PERM_NO_WRITE, euid, err,
	    errlen) != 0)
		return SAFEFILE_REFUSED;
	return 0;
}

/* fd (any open mode) is the directory path: reopen it O_RDONLY, check it. */
static int
safefile_dir_done(int fd, const char *path, uid_t euid, int *out, char *err,
    size_t errlen)
{
	struct stat	st;
	int		dfd, r;

	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	(void)close(fd);
	if (dfd == -1)
		return safefile_errno(path, err, errlen);
	if (fstat(dfd, &st) != 0)
		r = safefile_errno(path, err, errlen);
	else
		r = safefile_trusted(&st, path, euid, err, errlen);
	if (r != 0) {
		(void)close(dfd);
		return r;
	}
	*out = dfd;
	return 0;
}

int
safefile_opendir_walk(const char *path, uid_t euid, int *out, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		 buf[PATH_MAX], *p, *slash;
	size_t		 len = strlen(path);
	int		 fd, next, r = SAFEFILE_ERR;

	*out = -1;
	if (len == 0 || len >= sizeof(buf))
		return safefile_errf(SAFEFILE_ERR, err, errlen, "'%s': %s",
		    path, len == 0 ? "empty path" : "path too long");
	memcpy(buf, path, len + 1);
	if ((fd = open(buf[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return safefile_errno(buf[0] == '/' ? "/" : ".", err, errlen);
	for (p = buf;; p = slash + 1) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		if ((slash = strchr(p, '/')) != NULL)
			*slash = '\0';
		/* buf is now the path up to this component, for messages. */
		next = openat(fd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next == -1) {
			r = safefile_errno(buf, err, errlen);
			goto out;
		}
		(void)close(fd);
		fd = next;
		if (fstat(fd, &st) != 0) {
			r = safefile_errno(buf, err, errlen);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			r = safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s is "
			    "a symbolic link (no link is followed on the way "
			    "to a file: name the real directory)", buf);
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = safefile_errf(SAFEFILE_ERR, err, errlen, "%s: %s",
			    buf, strerror(ENOTDIR));
			goto out;
		}
		if (slash == NULL)
			break;
		*slash = '/';
	}
	r = safefile_dir_done(fd, path, euid, out, err, errlen);
	fd = -1;
out:
	if (fd != -1)
		(void)close(fd);
	return r;
}

int
safefile_opendir(const char *path, uid_t euid, int *out, char *err,
    size_t errlen)
{
#if defined(HAVE_LINUX_OPENAT2_H) && defined(SYS_openat2)
	struct open_how	how;
	long		fd;

	*out = -1;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS;
	if ((fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how)))
	    >= 0)
		return safefile_dir_done((int)fd, path, euid, out, err, errlen);
	/*
	 * Without openat2 (ENOSYS, or EPERM from a seccomp filter that does
	 * not know it), walk.  On any other failure walk too: it fails the
	 * same way and names the component (the link, the missing one).
	 */
#endif
	return safefile_opendir_walk(path, euid, out, err, errlen);
}

int
safefile_open(int dirfd, const char *name, const char *path, int *out,
    struct stat *st, char *err, size_t errlen)
{
	struct stat	before;
	int		fd, r;

	*out = -1;
	/* Nothing but a regular file is opened: a fifo would block. */
	if (fstatat(dirfd, name, &before, AT_SYMLINK_NOFOLLOW) != 0)
		return safefile_errno(path, err, errlen);
	if ((r = safefile_plain(&before, path, err, errlen)) != 0)
		return r;
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1) {
		if (errno == ELOOP)
			return safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s "
			    "is a symbolic link (links are never followed)",
			    path);
		return safefile_errno(path, err, errlen);
	}
	if (fstat(fd, st) != 0)
		r = safefile_errno(path, err, errlen);
	else if ((r = safefile_plain(st, path, err, errlen)) == 0 &&
	    (st->st_dev != before.st_dev || st->st_ino != before.st_ino))
		r = safefile_errf(SAFEFILE_REFUSED, err, errlen, "%s was "
		    "replaced while it was opened", path);
	if (r != 0) {
		(void)close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

int
safefile_tmp(int dirfd, const char *name, char *tmp, size_t tmplen, int *out,
    char *err, size_t errlen)
{
	static const char	abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char		rnd[SAFEFILE_TMP_SUFFIX - 1];
	size_t			n, i;
	int			fd, tries;

	*out = -1;
	n = strlen(name) + 2;		/* ".NAME." */
	if (n + sizeof(rnd) >= tmplen || n + sizeof(rnd) > NAME_MAX)
		return safefile_errf(SAFEFILE_ERR, err, errlen, "%s: name too "
		    "long for a temp file", name);
	for (tries = 0; tries < 100; tries++) {
		if (cert_random(rnd, sizeof(rnd)) != 0)
			return safefile_errf(SAFEFILE_ERR, err, errlen,
			    "no random bytes for a temp file name");
		snprintf(tmp, tmplen, ".%s.", name);
		for (i = 0; i < sizeof(rnd); i++)
			tmp[n + i] = abc[rnd[i] % (sizeof(abc) - 1)];
		tmp[n + i] = '\0';
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1) {
			*out = fd;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	return safefile_errf(SAFEFILE_ERR, err, errlen, "create %s: %s", tmp,
	    strerror(errno));
}

int
safefile_replace(int dirfd, const char *tmp, const char *name,
    const char *path, char *err, size_t errlen)
{
	if (renameat(dirfd, tmp, dirfd, name) != 0)
		return safefile_errf(SAFEFILE_ERR, err, errlen, "rename to %s: "
		    "%s", path, strerror(errno));
	if (fsync(dirfd) != 0)
		return safefile_errf(SAFEFILE_ERR, err, errlen, "sync the "
		    "directory of %s: %s", path, strerror(errno));
	return 0;
}
