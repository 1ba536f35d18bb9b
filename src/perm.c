/* SPDX-License-Identifier: MIT */
/*
 * Permission checks of the files that grant power, made on what was
 * opened (fstat), with the reason a file is refused.  See perm.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "perm.h"

/* The bits of mode that PERM_PRIVATE refuses, as a word for the reason. */
static const char *
perm_bits_word(mode_t mode)
{
	if (mode & 044)
		return "readable";
	if (mode & 022)
		return "writable";
	return "executable";
}

int
perm_check(const struct stat *st, const char *what, const char *path,
    unsigned rules, char *errbuf, size_t errlen)
{
	return perm_check_uid(st, what, path, rules, geteuid(), errbuf,
	    errlen);
}

int
perm_check_uid(const struct stat *st, const char *what, const char *path,
    unsigned rules, uid_t uid, char *errbuf, size_t errlen)
{
	unsigned long	euid = (unsigned long)uid;
	unsigned	mode = (unsigned)(st->st_mode & 07777);
	int		owner_ok;

	if ((rules & PERM_DIR) ? !S_ISDIR(st->st_mode) :
	    !S_ISREG(st->st_mode)) {
		snprintf(errbuf, errlen, "%s %s is not a %s", what, path,
		    (rules & PERM_DIR) ? "directory" : "regular file");
		return -1;
	}
	owner_ok = (unsigned long)st->st_uid == euid ||
	    ((rules & PERM_OWNER_ROOT) && st->st_uid == 0);
	if ((rules & (PERM_OWNER | PERM_OWNER_ROOT)) && !owner_ok) {
		snprintf(errbuf, errlen, "%s %s is owned by uid %lu; it must be "
		    "owned by %s%lu", what, path,
		    (unsigned long)st->st_uid,
		    (rules & PERM_OWNER_ROOT) ? "root or uid " : "uid ", euid);
		return -1;
	}
	if ((rules & PERM_PRIVATE) && (mode & 077) != 0) {
		snprintf(errbuf, errlen, "%s %s must not be %s by group or "
		    "others (mode %04o)", what, path, (rules & PERM_DIR) ?
		    "accessible" : perm_bits_word(st->st_mode), mode);
		return -1;
	}
	if ((rules & PERM_NO_WRITE) && (mode & 022) != 0) {
		snprintf(errbuf, errlen, "%s %s must not be writable by group "
		    "or others (mode %04o)", what, path, mode);
		return -1;
	}
	if ((rules & PERM_ONE_LINK) && st->st_nlink != 1) {
		snprintf(errbuf, errlen, "%s %s has %lu hard links; it must have "
		    "one", what, path, (unsigned long)st->st_nlink);
		return -1;
	}
	return 0;
}

/*
 * Close fd after verb (a system call on it) failed: -1, with errno kept
 * and "cannot verb what path: reason" in errbuf.
 */
static int
perm_close_fail(int fd, const char *verb, const char *what, const char *path,
    char *errbuf, size_t errlen)
{
	int	saved = errno;

	snprintf(errbuf, errlen, "cannot %s %s %s: %s", verb, what, path,
	    strerror(saved));
	close(fd);
	errno = saved;
	return -1;
}

int
perm_openat(int dirfd, const char *name, const char *path, const char *what,
    int flags, mode_t mode, unsigned rules, char *errbuf, size_t errlen)
{
	struct stat	st;
	int		fd, saved, blocking = !(flags & O_NONBLOCK);

	flags |= O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (rules & PERM_NOFOLLOW)
		flags |= O_NOFOLLOW;
	if ((fd = openat(dirfd, name, flags, mode)) < 0) {
		saved = errno;
		if (saved == ELOOP && (rules & PERM_NOFOLLOW))
			snprintf(errbuf, errlen, "%s %s is a symbolic link, "
			    "which certd does not follow there", what, path);
		else
			snprintf(errbuf, errlen, "cannot %s %s %s: %s",
			    (flags & O_ACCMODE) == O_RDONLY ? "read" : "open",
			    what, path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) != 0)
		return perm_close_fail(fd, "stat", what, path, errbuf, errlen);
	if (perm_check(&st, what, path, rules, errbuf, errlen) != 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	/* A regular file or a directory: blocking as asked, stdio expects it. */
	if (blocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
	    != 0)
		return perm_close_fail(fd, "open", what, path, errbuf, errlen);
	return fd;
}

FILE *
perm_fopen(const char *path, const char *what, unsigned rules, char *errbuf,
    size_t errlen)
{
	FILE	*f;
	int	 fd, saved;

	if ((fd = perm_openat(AT_FDCWD, path, path, what, O_RDONLY, 0, rules,
	    errbuf, errlen)) < 0)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL) {
		saved = errno;
		snprintf(errbuf, errlen, "cannot read %s %s: %s", what, path,
		    strerror(saved));
		close(fd);
		errno = saved;
	}
	return f;
}
