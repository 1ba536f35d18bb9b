/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libcertd's peer check (src/client_peer.c): uids from
 * numbers and user names, the process-wide server uid, and the check
 * itself against a listener of the test's own uid and, when the test runs
 * as root, one of uid 65534 in a child process: refused with the socket and
 * the uid in the message, accepted once CERTD_SERVER_UID (a number) or
 * certd_client_set_server_uid names it, refused again when it is forgotten.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <certd/certd.h>

#include "client_peer.h"

#define OTHER_UID	65534

static void
test_parse_uid(void **state)
{
	uid_t	uid = 42;

	(void)state;
	assert_int_equal(client_peer_parse_uid("0", &uid), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(client_peer_parse_uid("65534", &uid), 0);
	assert_int_equal(uid, 65534);
	assert_int_equal(client_peer_parse_uid("007", &uid), 0);
	assert_int_equal(uid, 7);
	assert_int_equal(client_peer_parse_uid("4294967294", &uid), 0);
	assert_int_equal(uid, 4294967294U);
	assert_int_equal(client_peer_parse_uid("root", &uid), 0);
	assert_int_equal(uid, 0);

	uid = 42;
	assert_int_equal(client_peer_parse_uid("", &uid), CERTD_E_INVAL);
	assert_int_equal(client_peer_parse_uid(NULL, &uid), CERTD_E_INVAL);
	/* (uid_t)-1 is no uid; nor is anything wider than uid_t. */
	assert_int_equal(client_peer_parse_uid("4294967295", &uid),
	    CERTD_E_INVAL);
	assert_int_equal(client_peer_parse_uid("99999999999999999999999",
	    &uid), CERTD_E_INVAL);
	/* Not all digits: a user name, and there is no such user. */
	assert_int_equal(client_peer_parse_uid("no-such-user-certd-test",
	    &uid), CERTD_E_PEER);
	assert_int_equal(client_peer_parse_uid("-1", &uid), CERTD_E_PEER);
	assert_int_equal(client_peer_parse_uid("12abc", &uid), CERTD_E_PEER);
	assert_int_equal(uid, 42);
}

static void
test_set_server_uid(void **state)
{
	(void)state;
	assert_int_equal(client_peer_set_server_uid(-2), CERTD_E_INVAL);
	assert_int_equal(client_peer_set_server_uid(4294967295LL),
	    CERTD_E_INVAL);
	assert_int_equal(client_peer_set_server_uid(INT64_MAX), CERTD_E_INVAL);
	assert_int_equal(client_peer_set_server_uid(0), 0);
	assert_int_equal(client_peer_set_server_uid(4294967294LL), 0);
	assert_int_equal(client_peer_set_server_uid(-1), 0);
}

/* A connected socket pair's peer is this process: always accepted. */
static void
test_check_self(void **state)
{
	int	sv[2];
	char	err[512] = "";

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(client_peer_check(sv[0], "pair", err, sizeof(err)),
	    0);
	assert_string_equal(err, "");
	(void)close(sv[0]);
	(void)close(sv[1]);
}

/* No credentials to read: refused, with the reason. */
static void
test_check_not_a_socket(void **state)
{
	char	err[512] = "";
	int	p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(client_peer_check(p[0], "/x.sock", err, sizeof(err)),
	    CERTD_E_PEER);
	assert_non_null(strstr(err, "certd at /x.sock: cannot tell who"));
	(void)close(p[0]);
	(void)close(p[1]);
}

/* A listener of uid OTHER_UID on an abstract socket, in a child. */
struct other {
	pid_t			pid;
	int			done[2];	/* parent closes: child exits */
	struct sockaddr_un	sun;
	socklen_t		sunlen;
};

static void
other_start(struct other *o)
{
	int	ready[2], fd;
	char	c;

	memset(o, 0, sizeof(*o));
	o->sun.sun_family = AF_UNIX;
	snprintf(o->sun.sun_path + 1, sizeof(o->sun.sun_path) - 1,
	    "certd-test-peer-%ld", (long)getpid());
	o->sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(o->sun.sun_path + 1));
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(o->done), 0);
	o->pid = fork();
	assert_true(o->pid >= 0);
	if (o->pid == 0) {
		(void)close(ready[0]);
		(void)close(o->done[1]);
		if (setresgid(OTHER_UID, OTHER_UID, OTHER_UID) != 0 ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) != 0 ||
		    (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
		    bind(fd, (struct sockaddr *)&o->sun, o->sunlen) != 0 ||
		    listen(fd, 8) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* Until the parent closes its end: EOF. */
		_exit(read(o->done[0], &c, 1) == 0 ? 0 : 1);
	}
	(void)close(ready[1]);
	(void)close(o->done[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	(void)close(ready[0]);
}

static int
other_connect(const struct other *o)
{
	int	fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&o->sun,
	    o->sunlen), 0);
	return fd;
}

static void
other_stop(struct other *o)
{
	int	status;

	(void)close(o->done[1]);
	assert_int_equal(waitpid(o->pid, &status, 0), o->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_check_other_uid(void **state)
{
	struct other	o;
	char		err[512] = "";
	int		fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	unsetenv(CERTD_SERVER_UID_ENV);
	assert_int_equal(client_peer_set_server_uid(-1), 0);
	other_start(&o);
	fd = other_connect(&o);

	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), CERTD_E_PEER);
	assert_non_null(strstr(err, "certd at /t/certd.sock runs as uid 65534"));
	assert_non_null(strstr(err, "expected root, uid 0 (yours) or "));

	setenv(CERTD_SERVER_UID_ENV, "65534", 1);
	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), 0);
	setenv(CERTD_SERVER_UID_ENV, "65533", 1);
	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), CERTD_E_PEER);
	assert_non_null(strstr(err, "uid 65533 (CERTD_SERVER_UID=65533)"));
	setenv(CERTD_SERVER_UID_ENV, "no-such-user-certd-test", 1);
	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), CERTD_E_PEER);
	assert_non_null(strstr(err,
	    "CERTD_SERVER_UID=no-such-user-certd-test names no user"));

	/* The API replaces the environment, and -1 forgets it. */
	assert_int_equal(client_peer_set_server_uid(OTHER_UID), 0);
	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), 0);
	assert_int_equal(client_peer_set_server_uid(-1), 0);
	assert_int_equal(client_peer_check(fd, "/t/certd.sock", err,
	    sizeof(err)), CERTD_E_PEER);
	unsetenv(CERTD_SERVER_UID_ENV);

	(void)close(fd);
	other_stop(&o);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_parse_uid),
		cmocka_unit_test(test_set_server_uid),
		cmocka_unit_test(test_check_self),
		cmocka_unit_test(test_check_not_a_socket),
		cmocka_unit_test(test_check_other_uid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
