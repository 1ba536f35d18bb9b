/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the permission checks: each rule on a made-up stat (any
 * owner, without root), and perm_openat on real files: a link refused
 * under PERM_NOFOLLOW, a FIFO refused without blocking, a descriptor that
 * blocks as asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "perm.h"

static struct stat
made(mode_t mode, uid_t uid, nlink_t nlink)
{
	struct stat	st;

	memset(&st, 0, sizeof(st));
	st.st_mode = mode;
	st.st_uid = uid;
	st.st_nlink = nlink;
	return st;
}

/* perm_check's verdict; the reason, when refused, must hold want. */
static void
check(mode_t mode, uid_t uid, nlink_t nlink, unsigned rules, const char *want)
{
	struct stat	st = made(mode, uid, nlink);
	char		err[256] = "";
	int		rv;

	rv = perm_check(&st, "token file", "/x/tokens", rules, err, sizeof(err));
	if (want == NULL) {
		if (rv != 0)
			fail_msg("refused: %s", err);
		return;
	}
	assert_int_equal(rv, -1);
	if (strstr(err, want) == NULL)
		fail_msg("reason '%s' lacks '%s'", err, want);
}

static void
test_rules(void **state)
{
	uid_t	me = geteuid(), other = me == 4242 ? 4343 : 4242;

	(void)state;
	check(S_IFREG | 0644, me, 1, PERM_GRANTS, NULL);
	check(S_IFREG | 0640, 0, 2, PERM_GRANTS, NULL);
	check(S_IFREG | 0666, me, 1, PERM_GRANTS,
	    "token file /x/tokens must not be writable by group or others "
	    "(mode 0666)");
	check(S_IFREG | 0620, me, 1, PERM_GRANTS, "(mode 0620)");
	check(S_IFREG | 0600, other, 1, PERM_GRANTS, "is owned by uid");
	check(S_IFREG | 0600, other, 1, PERM_GRANTS, "it must be owned by root "
	    "or uid");
	check(S_IFIFO | 0600, me, 1, PERM_GRANTS, "is not a regular file");
	check(S_IFREG | 0600, me, 1, PERM_DIR, "is not a directory");
	/* PERM_OWNER: root is not enough unless certd runs as root */
	if (me != 0)
		check(S_IFREG | 0600, 0, 1, PERM_OWNER, "must be owned by uid");
	check(S_IFREG | 0600, me, 1, PERM_OWNER | PERM_PRIVATE, NULL);
	check(S_IFREG | 0604, me, 1, PERM_PRIVATE,
	    "must not be readable by group or others (mode 0604)");
	check(S_IFREG | 0620, me, 1, PERM_PRIVATE, "must not be writable");
	check(S_IFREG | 0610, me, 1, PERM_PRIVATE, "must not be executable");
	check(S_IFDIR | 0711, me, 2, PERM_DIR | PERM_PRIVATE,
	    "must not be accessible by group or others (mode 0711)");
	check(S_IFDIR | 0700, me, 2, PERM_DIR | PERM_OWNER | PERM_PRIVATE, NULL);
	check(S_IFREG | 0600, me, 2, PERM_ONE_LINK, "has 2 hard links");
	/* no owner rule: anyone's */
	check(S_IFREG | 0600, other, 1, 0, NULL);
}

struct dir {
	char	path[64];
	int	fd;
};

static int
setup_dir(void **state)
{
	struct dir	*d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/test_perm.XXXXXX");
	if (mkdtemp(d->path) == NULL ||
	    (d->fd = open(d->path, O_RDONLY | O_DIRECTORY)) < 0) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct dir	*d = *state;
	char		 cmd[128];

	close(d->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d->path);
	if (system(cmd) != 0)
		return -1;
	free(d);
	return 0;
}

static void
test_openat(void **state)
{
	struct dir	*d = *state;
	char		 err[256], target[128];
	int		 fd;

	snprintf(target, sizeof(target), "%s/target", d->path);
	/* created, then opened again: one link, certd's own */
	fd = perm_openat(d->fd, "target", target, "lock file", O_RDWR | O_CREAT,
	    0600, PERM_NOFOLLOW | PERM_OWNER | PERM_ONE_LINK, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(write(fd, "keep\n", 5), 5);
	close(fd);

	/* a link in its place: refused under PERM_NOFOLLOW, never opened */
	assert_int_equal(symlinkat("target", d->fd, "link"), 0);
	fd = perm_openat(d->fd, "link", "D/link", "lock file",
	    O_RDWR | O_CREAT | O_TRUNC, 0600, PERM_NOFOLLOW, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_string_equal(err, "lock file D/link is a symbolic link, which "
	    "certd does not follow there");
	fd = open(target, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), 5);	/* not truncated */
	close(fd);

	/* without PERM_NOFOLLOW a link is followed, its target checked */
	fd = perm_openat(d->fd, "link", "D/link", "token file", O_RDONLY, 0,
	    PERM_GRANTS, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);

	/* a hard link: two names */
	assert_int_equal(linkat(d->fd, "target", d->fd, "hard", 0), 0);
	fd = perm_openat(d->fd, "hard", "D/hard", "lock file", O_RDWR, 0,
	    PERM_ONE_LINK, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err, "has 2 hard links"));

	/* a FIFO: refused at once, not waited on */
	assert_int_equal(mkfifoat(d->fd, "fifo", 0600), 0);
	fd = perm_openat(d->fd, "fifo", "D/fifo", "token file", O_RDONLY, 0,
	    PERM_GRANTS, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_string_equal(err, "token file D/fifo is not a regular file");

	/* missing: errno kept, the message names what and why */
	fd = perm_openat(d->fd, "none", "D/none", "token file", O_RDONLY, 0,
	    PERM_GRANTS, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(err, "cannot read token file D/none: No such file "
	    "or directory");
}

static void
test_fopen(void **state)
{
	struct dir	*d = *state;
	char		 path[128], err[256], line[32];
	FILE		*f;
	int		 fd;

	snprintf(path, sizeof(path), "%s/conf", d->path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[certd]\n", 8), 8);
	close(fd);
	f = perm_fopen(path, "config", PERM_GRANTS, err, sizeof(err));
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "[certd]\n");
	fclose(f);
	assert_int_equal(chmod(path, 0664), 0);
	assert_null(perm_fopen(path, "config", PERM_GRANTS, err, sizeof(err)));
	assert_non_null(strstr(err, "must not be writable by group or others "
	    "(mode 0664)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test_setup_teardown(test_openat, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_fopen, setup_dir,
		    teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
