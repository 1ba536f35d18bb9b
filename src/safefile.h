/* SPDX-License-Identifier: MIT */
/*
 * Files reached without following a link, for a process (root's certctl
 * sync) that writes where a less privileged user may have planted one.
 * A directory is opened once, with no symbolic link anywhere in its path,
 * and only when no uid but root and the caller's own may write it (as
 * sshd's StrictModes); every later read, temp file, rename, fchown and
 * fchmod works relative to its descriptor, on descriptors that fstat shows
 * are regular files with one link.
 */
#ifndef CERTD_SAFEFILE_H
#define CERTD_SAFEFILE_H

#include <sys/stat.h>
#include <sys/types.h>
#include <stddef.h>

/* Results besides 0; err says which file and why. */
enum {
	SAFEFILE_ERR = -1,	/* a system call failed */
	SAFEFILE_MISSING = -2,	/* no such file (or a directory of the path) */
	SAFEFILE_REFUSED = -3,	/* a link, not a regular file or directory,
				   hard-linked, or writable by another uid */
};

#define SAFEFILE_TMP_SUFFIX	7	/* ".XXXXXX" after ".NAME" */

/*
 * Open directory path (relative paths from the working directory) with no
 * symbolic link in it: openat2 RESOLVE_NO_SYMLINKS, or a walk component by
 * component with O_NOFOLLOW where the kernel lacks openat2 (ENOSYS, or
 * EPERM from a seccomp filter; after any other failure too, to name the
 * component that failed).  Then safefile_trusted.  Only the directory
 * itself is checked, not its parents.  On 0, *fd is a
 * read-only O_CLOEXEC descriptor of it, the caller's to close.
 */
int	safefile_opendir(const char *path, uid_t euid, int *fd, char *err,
	    size_t errlen);

/* The walk alone (what safefile_opendir falls back on), for its tests. */
int	safefile_opendir_walk(const char *path, uid_t euid, int *fd,
	    char *err, size_t errlen);

/*
 * Whether st (of what path names) is writable by no uid but root and
 * euid: owned by one of them and neither group- nor other-writable, sticky
 * or not.  0 or SAFEFILE_REFUSED.
 */
int	safefile_trusted(const struct stat *st, const char *path, uid_t euid,
	    char *err, size_t errlen);

/*
 * Open name in directory dirfd for reading, never following a link or
 * opening anything but a regular file with one link (a fifo or device is
 * refused before it is opened).  On 0, *fd (O_CLOEXEC, the caller's) and
 * *st describe it.  path names it in err.
 */
int	safefile_open(int dirfd, const char *name, const char *path, int *fd,
	    struct stat *st, char *err, size_t errlen);

/*
 * Create a fresh file ".NAME.XXXXXX" (random) in dirfd, O_EXCL and
 * O_NOFOLLOW, mode 0600, open for writing.  Its name into tmp (tmplen
 * bytes, at least strlen(name) + 2 + SAFEFILE_TMP_SUFFIX), *fd the
 * caller's.
 */
int	safefile_tmp(int dirfd, const char *name, char *tmp, size_t tmplen,
	    int *fd, char *err, size_t errlen);

/*
 * Rename tmp over name, both in dirfd, then fsync dirfd.  path names the
 * target in err.
 */
int	safefile_replace(int dirfd, const char *tmp, const char *name,
	    const char *path, char *err, size_t errlen);

#endif
