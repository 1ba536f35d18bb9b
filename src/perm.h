/* SPDX-License-Identifier: MIT */
/*
 * Files that grant power (the data directory, the master key, the token
 * file, the configuration), checked as sshd's StrictModes checks a user's
 * files: on the descriptor that was opened, never on a name that can change
 * afterwards.  perm_openat opens a file without following a link where the
 * rules say so and refuses, with the reason, one that is not what it should
 * be: its type, owner, mode and link count.
 */
#ifndef CERTD_PERM_H
#define CERTD_PERM_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#define PERM_DIR	0x01	/* a directory, not a regular file */
#define PERM_OWNER	0x02	/* owned by certd's effective uid */
#define PERM_OWNER_ROOT	0x04	/* owned by root or certd's effective uid */
#define PERM_NO_WRITE	0x08	/* no write bit for group or others */
#define PERM_PRIVATE	0x10	/* no bit at all for group or others */
#define PERM_ONE_LINK	0x20	/* exactly one hard link */
#define PERM_NOFOLLOW	0x40	/* perm_openat: the name is no symbolic link */

/*
 * A file that says who may do what (the token file, the configuration):
 * whoever can write it holds every power it grants.
 */
#define PERM_GRANTS	(PERM_OWNER_ROOT | PERM_NO_WRITE)

/*
 * Check st, the fstat of what was opened as path, against rules.  what
 * names the file in the reason ("token file"), which goes to errbuf.
 * Returns 0, or -1 with the reason.
 */
int	 perm_check(const struct stat *st, const char *what, const char *path,
	    unsigned rules, char *errbuf, size_t errlen);

/*
 * perm_check for a process whose effective uid is uid (perm_check passes
 * geteuid()): "owned by certd's uid" means owned by uid.  certctl sync
 * checks its target directories and pid file with it (safefile.c).
 */
int	 perm_check_uid(const struct stat *st, const char *what,
	    const char *path, unsigned rules, uid_t uid, char *errbuf,
	    size_t errlen);

/*
 * openat(dirfd, name, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode),
 * with O_NOFOLLOW under PERM_NOFOLLOW, then perm_check on the descriptor
 * (path, the full name, is for messages).  O_NONBLOCK keeps a FIFO planted
 * there from blocking the open; the type check refuses it, and the
 * descriptor returned blocks unless flags asked otherwise.  Returns the
 * descriptor, or -1 with the reason in errbuf ("cannot read" or "cannot
 * open" and errno's text when the open failed, errno kept).
 */
int	 perm_openat(int dirfd, const char *name, const char *path,
	    const char *what, int flags, mode_t mode, unsigned rules,
	    char *errbuf, size_t errlen);

/* perm_openat(AT_FDCWD, path, ..., O_RDONLY) as a stdio stream, or NULL. */
FILE	*perm_fopen(const char *path, const char *what, unsigned rules,
	    char *errbuf, size_t errlen);

#endif
