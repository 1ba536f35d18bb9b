/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of safefile: a directory path with a link anywhere in it is
 * refused (through openat2 and through the O_NOFOLLOW walk, absolute and
 * relative, with "." and ".."), a missing one says so, one writable by its
 * group or others or owned by another uid is refused; a file that is a
 * link, a fifo (without blocking), a directory or hard-linked is refused
 * and a plain one opened; temp files are fresh, 0600 and never follow a
 * planted link; a replace renames and leaves no temp file.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "safefile.h"

typedef int (*opendir_fn)(const char *, uid_t, int *, char *, size_t);

struct fixture {
	char	dir[PATH_MAX];		/* a fresh 0700 directory */
	char	cwd[PATH_MAX];
};

static char	err[512];

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	const char	*tmp = getenv("TMPDIR");
	char		 buf[PATH_MAX];

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "%s/safefile.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	/* No link on the way to it (TMPDIR may have one). */
	assert_non_null(realpath(fx->dir, buf));
	snprintf(fx->dir, sizeof(fx->dir), "%s", buf);
	assert_non_null(getcwd(fx->cwd, sizeof(fx->cwd)));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	char		 cmd[PATH_MAX + 16];

	assert_int_equal(chdir(fx->cwd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* fx->dir/rel into buf. */
static const char *
at(const struct fixture *fx, const char *rel, char *buf)
{
	int	n = snprintf(buf, PATH_MAX, "%s/%s", fx->dir, rel);

	assert_true(n > 0 && n < PATH_MAX);
	return buf;
}

static void
opens(opendir_fn fn, const char *path)
{
	int	fd = -1;

	if (fn(path, geteuid(), &fd, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	assert_true(fd >= 0);
	assert_int_equal(fsync(fd), 0);		/* a real descriptor */
	assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	(void)close(fd);
}

static void
refused(opendir_fn fn, const char *path, int want, const char *why)
{
	int	fd = 5, r;

	r = fn(path, geteuid(), &fd, err, sizeof(err));
	if (r != want || strstr(err, why) == NULL)
		fail_msg("%s: got %d \"%s\", want %d \"%s\"", path, r, err,
		    want, why);
	assert_int_equal(fd, -1);
}

static void
dir_rules(void **state, opendir_fn fn)
{
	struct fixture	*fx = *state;
	char		 a[PATH_MAX], b[PATH_MAX];

	assert_int_equal(mkdir(at(fx, "d", a), 0755), 0);
	assert_int_equal(mkdir(at(fx, "d/e", a), 0700), 0);
	opens(fn, fx->dir);
	opens(fn, at(fx, "d/e", a));
	opens(fn, at(fx, "d//./e/", a));
	opens(fn, at(fx, "d/e/../e", a));
	/* A link as the last component, or in the middle. */
	assert_int_equal(symlink(at(fx, "d", b), at(fx, "ln", a)), 0);
	refused(fn, at(fx, "ln", a), SAFEFILE_REFUSED, "ln is a symbolic link");
	refused(fn, at(fx, "ln/e", a), SAFEFILE_REFUSED,
	    "ln is a symbolic link");
	assert_int_equal(symlink("e", at(fx, "d/rel", a)), 0);
	refused(fn, at(fx, "d/rel", a), SAFEFILE_REFUSED, "d/rel is a symbolic");
	/* Missing, or a file in the way. */
	refused(fn, at(fx, "d/none/x", a), SAFEFILE_MISSING,
	    "d/none: No such file");
	assert_int_equal(close(open(at(fx, "d/f", a), O_CREAT | O_WRONLY,
	    0600)), 0);
	refused(fn, at(fx, "d/f/x", a), SAFEFILE_ERR, "d/f: Not a directory");
	/* Writable by others or by the group, sticky or not. */
	assert_int_equal(chmod(at(fx, "d/e", a), 01777), 0);
	refused(fn, a, SAFEFILE_REFUSED,
	    "must not be writable by group or others (mode 1777)");
	assert_int_equal(chmod(a, 0770), 0);
	refused(fn, a, SAFEFILE_REFUSED,
	    "must not be writable by group or others (mode 0770)");
	assert_int_equal(chmod(a, 0755), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(a, 65534, 65534), 0);
		refused(fn, a, SAFEFILE_REFUSED,
		    "is owned by uid 65534; it must be owned by root or uid 0");
		assert_int_equal(chown(a, 0, 0), 0);
	}
	/* Relative paths, from the working directory. */
	assert_int_equal(chdir(fx->dir), 0);
	opens(fn, ".");
	opens(fn, "d/e");
	opens(fn, "./d/../d/e");
	refused(fn, "ln/e", SAFEFILE_REFUSED, "ln is a symbolic link");
	refused(fn, "", SAFEFILE_ERR, "");
}

static void
test_opendir(void **state)
{
	dir_rules(state, safefile_opendir);
}

static void
test_opendir_walk(void **state)
{
	dir_rules(state, safefile_opendir_walk);
}

static void
test_trusted(void **state)
{
	struct stat	st;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_uid = 0;
	assert_int_equal(safefile_trusted(&st, "f", 1000, err, sizeof(err)), 0);
	st.st_uid = 1000;
	assert_int_equal(safefile_trusted(&st, "f", 1000, err, sizeof(err)), 0);
	st.st_uid = 1001;
	assert_int_equal(safefile_trusted(&st, "f", 1000, err, sizeof(err)),
	    SAFEFILE_REFUSED);
	assert_string_equal(err, "file f is owned by uid 1001; it must be "
	    "owned by root or uid 1000");
	st.st_uid = 0;
	st.st_mode = S_IFDIR | 0775;
	assert_int_equal(safefile_trusted(&st, "d", 0, err, sizeof(err)),
	    SAFEFILE_REFUSED);
	assert_string_equal(err, "directory d must not be writable by group "
	    "or others (mode 0775)");
	st.st_mode = S_IFREG | 0602;
	assert_int_equal(safefile_trusted(&st, "f", 0, err, sizeof(err)),
	    SAFEFILE_REFUSED);
	assert_string_equal(err, "file f must not be writable by group or "
	    "others (mode 0602)");
}

static void
open_refused(int dfd, const char *name, int want, const char *why)
{
	struct stat	st;
	int		fd = 5, r;

	r = safefile_open(dfd, name, name, &fd, &st, err, sizeof(err));
	if (r != want || strstr(err, why) == NULL)
		fail_msg("%s: got %d \"%s\", want %d \"%s\"", name, r, err,
		    want, why);
	assert_int_equal(fd, -1);
}

static void
test_open(void **state)
{
	struct fixture	*fx = *state;
	struct stat	 st;
	char		 a[PATH_MAX], b[PATH_MAX], buf[8];
	int		 dfd, fd;

	assert_int_equal(safefile_opendir(fx->dir, geteuid(), &dfd, err,
	    sizeof(err)), 0);
	fd = openat(dfd, "plain", O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(close(fd), 0);
	assert_int_equal(safefile_open(dfd, "plain", "plain", &fd, &st, err,
	    sizeof(err)), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size == 3);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	(void)close(fd);

	assert_int_equal(symlinkat(at(fx, "plain", a), dfd, "link"), 0);
	open_refused(dfd, "link", SAFEFILE_REFUSED, "link is a symbolic link");
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	open_refused(dfd, "fifo", SAFEFILE_REFUSED,
	    "fifo is a fifo, not a regular file");
	assert_int_equal(mkdirat(dfd, "dir", 0700), 0);
	open_refused(dfd, "dir", SAFEFILE_REFUSED,
	    "dir is a directory, not a regular file");
	assert_int_equal(link(at(fx, "plain", a), at(fx, "hard", b)), 0);
	open_refused(dfd, "hard", SAFEFILE_REFUSED, "hard has 2 hard links");
	open_refused(dfd, "plain", SAFEFILE_REFUSED, "plain has 2 hard links");
	open_refused(dfd, "none", SAFEFILE_MISSING, "none: No such file");
	(void)close(dfd);
}

static void
test_tmp_replace(void **state)
{
	struct fixture	*fx = *state;
	struct stat	 st;
	char		 t1[NAME_MAX + 1], t2[NAME_MAX + 1], a[PATH_MAX];
	char		 longname[NAME_MAX + 1];
	mode_t		 mask;
	int		 dfd, f1, f2;

	assert_int_equal(safefile_opendir(fx->dir, geteuid(), &dfd, err,
	    sizeof(err)), 0);
	mask = umask(0);
	assert_int_equal(safefile_tmp(dfd, "key.pem", t1, sizeof(t1), &f1,
	    err, sizeof(err)), 0);
	(void)umask(mask);
	assert_int_equal(strncmp(t1, ".key.pem.", 9), 0);
	assert_int_equal(strlen(t1), 9 + SAFEFILE_TMP_SUFFIX - 1);
	assert_int_equal(fstat(f1, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(safefile_tmp(dfd, "key.pem", t2, sizeof(t2), &f2,
	    err, sizeof(err)), 0);
	assert_string_not_equal(t1, t2);
	assert_int_equal(write(f1, "new", 3), 3);
	(void)close(f1);
	(void)close(f2);
	assert_int_equal(unlinkat(dfd, t2, 0), 0);

	/* The target replaced is a link: the link goes, its target stays. */
	assert_int_equal(close(open(at(fx, "victim", a), O_CREAT | O_WRONLY,
	    0600)), 0);
	assert_int_equal(symlinkat(a, dfd, "key.pem"), 0);
	assert_int_equal(safefile_replace(dfd, t1, "key.pem", "key.pem", err,
	    sizeof(err)), 0);
	assert_int_equal(fstatat(dfd, "key.pem", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size == 3);
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(faccessat(dfd, t1, F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(safefile_replace(dfd, t1, "key.pem", "key.pem", err,
	    sizeof(err)), SAFEFILE_ERR);
	assert_non_null(strstr(err, "rename to key.pem: No such file"));

	/* A name with no room for the suffix. */
	memset(longname, 'n', NAME_MAX - 3);
	longname[NAME_MAX - 3] = '\0';
	assert_int_equal(safefile_tmp(dfd, longname, t1, sizeof(t1), &f1,
	    err, sizeof(err)), SAFEFILE_ERR);
	assert_non_null(strstr(err, "name too long"));
	(void)close(dfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_opendir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opendir_walk, setup,
		    teardown),
		cmocka_unit_test(test_trusted),
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_replace, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
