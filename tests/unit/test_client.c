/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libcertd (src/client.c, include/certd/certd.h) against the
 * real daemon: the certd built in the tree runs as a child on a temporary
 * data directory (0700), a private socket and a kernel-chosen loopback
 * port, and the test waits until its socket accepts.  Through the public
 * API only (linked with libcertd, not the core): the check of the server's
 * uid (when the test runs as root, certd runs as nobody, so that only
 * $CERTD_SERVER_UID or certd_client_set_server_uid make it acceptable),
 * put, get, list, delete, history, rollback, the codes and messages of a
 * missing id and of bad input, a watch that receives the event of a put
 * and binds what it names, and the end: SIGTERM, exit status 0, and the
 * connection still open sees it closed.  Certificates are those of
 * tests/pki/gen-pki.sh ($CERTD_PKI_DIR, else generated here with certtool);
 * expected fingerprints come from certtool, not from certd.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include <certd/certd.h>

#define START_MS	30000	/* for certd to listen */
#define WAIT_MS		10000	/* for an event to come */
#define TEAM		"acme"

/* The daemon under test, shared by the tests of the group, in order. */
static struct {
	char	 dir[64];		/* temporary, 0700, certd's */
	char	 data[80];		/* --data-dir, 0700 */
	char	 sock[80];		/* --socket */
	char	 log[80];		/* certd's stderr */
	char	*pki;			/* the PKI's directory */
	char	*pki_tmp;		/* the PKI made here, to remove */
	pid_t	 pid;			/* 0 once reaped */
	uid_t	 uid;			/* certd's uid */
	char	 name[64];		/* and its user's name */
	int	 other;			/* certd runs as nobody */
	uint64_t cert_www;		/* created by test_put_get_list */
} d;

/* --- helpers ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Run argv, wait; its exit status, -1 when it did not exit. */
static int
run(char *const argv[])
{
	pid_t	pid;
	int	st;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
pki_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", d.pki, name);
	return buf;
}

/* A file of the PKI, NUL-terminated; the caller frees. */
static char *
pki_read(const char *name)
{
	char	 path[PATH_MAX], *buf;
	FILE	*fp;
	long	 n;

	assert_non_null(fp = fopen(pki_path(name, path, sizeof(path)), "rb"));
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	assert_true((n = ftell(fp)) > 0);
	rewind(fp);
	assert_non_null(buf = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

/* certtool's SHA-256 fingerprint of the first certificate of a PKI file. */
static void
fingerprint(const char *name, char out[CERTD_FINGERPRINT_LEN + 1])
{
	char	 path[PATH_MAX], cmd[PATH_MAX + 96], line[256];
	FILE	*p;

	snprintf(cmd, sizeof(cmd), "certtool --fingerprint --hash sha256 "
	    "--infile '%s' 2>/dev/null", pki_path(name, path, sizeof(path)));
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	line[strcspn(line, "\r\n")] = '\0';
	assert_int_equal(strlen(line), CERTD_FINGERPRINT_LEN);
	memcpy(out, line, CERTD_FINGERPRINT_LEN + 1);
}

/* The last lines of certd's log, to say why it is not there. */
static void
log_tail(void)
{
	char	 cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' >&2", d.log);
	if (system(cmd) != 0)
		fprintf(stderr, "no log at %s\n", d.log);
}

static struct certd_client *
client(void)
{
	struct certd_client	*c;
	char			 err[512];

	if ((c = certd_connect(d.sock, err, sizeof(err))) == NULL)
		fail_msg("certd_connect: %s", err);
	return c;
}

/* --- the daemon --------------------------------------------------------- */

/* nobody may run the certd of this tree (its directories are reachable). */
static int
nobody_may_run(const char *certd, const struct passwd *pw)
{
	pid_t	pid;
	int	st;

	if ((pid = fork()) < 0)
		return 0;
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
		    setuid(pw->pw_uid) != 0)
			_exit(1);
		_exit(access(certd, X_OK) == 0 ? 0 : 1);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Start certd as a child; return once its socket accepts. */
static void
certd_start(const char *certd, const struct passwd *as)
{
	struct sockaddr_un	sun;
	int64_t			deadline;
	int			fd, st;

	if ((d.pid = fork()) < 0)
		fail_msg("fork: %s", strerror(errno));
	if (d.pid == 0) {
		if ((fd = open(d.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0600)) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if ((fd = open("/dev/null", O_RDONLY)) < 0 || dup2(fd, 0) < 0)
			_exit(126);
		if (as != NULL && (setgroups(0, NULL) != 0 ||
		    setgid(as->pw_gid) != 0 || setuid(as->pw_uid) != 0))
			_exit(126);
		/* certd dies with the test (set after setuid: it clears it) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
			_exit(126);
		execl(certd, "certd", "--data-dir", d.data, "--socket", d.sock,
		    "--listen", "127.0.0.1:0", "--log-level", "debug",
		    (char *)NULL);
		_exit(127);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", d.sock);
	deadline = now_ms() + START_MS;
	for (;;) {
		if (waitpid(d.pid, &st, WNOHANG) == d.pid) {
			d.pid = 0;
			log_tail();
			fail_msg("certd died during start-up (status 0x%x)",
			    st);
		}
		assert_true((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) >= 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			return;
		}
		close(fd);
		if (now_ms() >= deadline) {
			log_tail();
			fail_msg("certd's socket %s does not accept", d.sock);
		}
		sleep_ms(20);
	}
}

/* The PKI: $CERTD_PKI_DIR, else generated by gen-pki.sh in a temporary dir. */
static void
pki_setup(void)
{
	const char	*dir = getenv("CERTD_PKI_DIR"), *src;
	char		 script[PATH_MAX], tmpl[PATH_MAX];
	char		*argv[4];

	if (dir != NULL && *dir != '\0') {
		assert_non_null(d.pki = strdup(dir));
		return;
	}
	if ((src = getenv("CERTD_SRCDIR")) == NULL || *src == '\0')
		src = ".";
	snprintf(script, sizeof(script), "%s/tests/pki/gen-pki.sh", src);
	snprintf(tmpl, sizeof(tmpl), "%s/certd-client-pki.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(d.pki_tmp = strdup(tmpl));
	assert_non_null(d.pki = strdup(tmpl));
	argv[0] = (char *)(uintptr_t)"sh";
	argv[1] = script;
	argv[2] = d.pki;
	argv[3] = NULL;
	assert_int_equal(run(argv), 0);
}

static int
group_setup(void **state)
{
	const char	*build = getenv("CERTD_BUILDDIR");
	struct passwd	*pw = NULL;
	char		 certd[PATH_MAX];

	(void)state;
	pki_setup();
	snprintf(certd, sizeof(certd), "%s/certd",
	    build != NULL && *build != '\0' ? build : ".");
	assert_int_equal(access(certd, X_OK), 0);
	snprintf(d.dir, sizeof(d.dir), "%s/certd-client.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(d.dir));
	snprintf(d.data, sizeof(d.data), "%s/data", d.dir);
	snprintf(d.sock, sizeof(d.sock), "%s/certd.sock", d.dir);
	snprintf(d.log, sizeof(d.log), "%s/certd.log", d.dir);
	assert_int_equal(mkdir(d.data, 0700), 0);
	d.uid = geteuid();
	/* As root, certd runs as nobody: a server uid that is not ours. */
	if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL &&
	    pw->pw_uid != 0 && nobody_may_run(certd, pw)) {
		assert_int_equal(chown(d.dir, pw->pw_uid, pw->pw_gid), 0);
		assert_int_equal(chown(d.data, pw->pw_uid, pw->pw_gid), 0);
		d.uid = pw->pw_uid;
		d.other = 1;
		/* the name the refusal gives: that of the uid */
		assert_non_null(pw = getpwuid(d.uid));
		snprintf(d.name, sizeof(d.name), "%s", pw->pw_name);
	} else
		pw = NULL;
	certd_start(certd, pw);
	return 0;
}

static int
group_teardown(void **state)
{
	char	*argv[5];
	int	 st;

	(void)state;
	if (d.pid > 0) {
		kill(d.pid, SIGKILL);
		while (waitpid(d.pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	argv[0] = (char *)(uintptr_t)"rm";
	argv[1] = (char *)(uintptr_t)"-rf";
	argv[2] = d.dir;
	argv[3] = d.pki_tmp;
	argv[4] = NULL;
	(void)run(argv);
	free(d.pki);
	free(d.pki_tmp);
	return 0;
}

/*
 * Before each test: no $CERTD_SOCKET nor $CERTD_SERVER_UID, and certd's
 * uid set as the server's when it is not ours (test_server_uid changes
 * both; a failure there must not fail the others).
 */
static int
peer_reset(void **state)
{
	(void)state;
	unsetenv(CERTD_SERVER_UID_ENV);
	unsetenv(CERTD_SOCKET_ENV);
	return certd_client_set_server_uid(d.other ? (int64_t)d.uid : -1);
}

/* --- watch events ------------------------------------------------------- */

struct seen {
	int		 connected, put, del, disconnected;
	uint64_t	 revision;	/* of the last put or delete */
	char		 team[CERTD_TEAM_MAX + 1];
	uint64_t	 id;
	char		 alias[256];
	char		 type[64];
	char		 fp[CERTD_FINGERPRINT_LEN + 1];
	int		 has_key;
	int		 code;		/* of the last disconnection */
	int		 ended;
	char		 error[512];
};

static void
copy(char *dst, size_t len, const char *s)
{
	snprintf(dst, len, "%s", s != NULL ? s : "(null)");
}

static void
on_event(const struct certd_event *ev, void *arg)
{
	struct seen	*s = arg;

	switch (ev->kind) {
	case CERTD_EVENT_CONNECTED:
		s->connected++;
		break;
	case CERTD_EVENT_PUT:
	case CERTD_EVENT_DELETE:
		if (ev->kind == CERTD_EVENT_PUT)
			s->put++;
		else
			s->del++;
		s->revision = ev->revision;
		copy(s->team, sizeof(s->team), ev->team);
		s->id = ev->cert->id;
		copy(s->alias, sizeof(s->alias), ev->cert->alias);
		copy(s->type, sizeof(s->type), ev->cert->certificate_type);
		copy(s->fp, sizeof(s->fp), ev->cert->fingerprint_sha256);
		s->has_key = ev->cert->private_key != NULL;
		break;
	case CERTD_EVENT_DISCONNECTED:
		s->disconnected++;
		s->code = ev->code;
		s->ended = ev->ended;
		copy(s->error, sizeof(s->error), ev->error);
		break;
	default:
		break;
	}
}

/* Turn base until *counter reaches want. */
static void
wait_for(struct event_base *base, const int *counter, int want)
{
	int64_t	deadline = now_ms() + WAIT_MS;

	while (*counter < want) {
		if (now_ms() >= deadline)
			fail_msg("event not delivered (%d of %d)", *counter,
			    want);
		event_base_loop(base, EVLOOP_NONBLOCK);
		sleep_ms(2);
	}
}

/* --- tests -------------------------------------------------------------- */

/*
 * Who the server is: certd running as nobody is refused until
 * $CERTD_SERVER_UID (a number or a name) or certd_client_set_server_uid
 * names it; the setting replaces the environment, -1 forgets it.  A watch
 * is refused the same way.
 */
static void
test_server_uid(void **state)
{
	struct certd_client	*c;
	struct certd_watch_opts	 o;
	struct certd_watch	*w;
	struct event_base	*base;
	struct seen		 s;
	char			 err[512], want[768], num[32];

	(void)state;
	assert_int_equal(certd_client_set_server_uid(-2), CERTD_E_INVAL);
	assert_int_equal(certd_client_set_server_uid((int64_t)UINT32_MAX),
	    CERTD_E_INVAL);
	if (!d.other) {
		/* certd runs as us: accepted with nothing set. */
		assert_int_equal(certd_client_set_server_uid(-1), 0);
		c = client();
		assert_int_equal(certd_ping(c), 0);
		certd_close(c);
		skip();
	}
	assert_int_equal(certd_client_set_server_uid(-1), 0);
	unsetenv(CERTD_SERVER_UID_ENV);
	errno = 0;
	assert_null(certd_connect(d.sock, err, sizeof(err)));
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof(want), "certd at %s runs as uid %lu (%s); "
	    "expected root, uid 0 (yours) or ", d.sock, (unsigned long)d.uid,
	    d.name);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("refusal: \"%s\", wanted \"%s...\"", err, want);

	/* A watch: refused, reported with CERTD_E_PEER, and it ends. */
	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	o.socket = d.sock;
	o.team = TEAM;
	assert_non_null(base = event_base_new());
	assert_non_null(w = certd_watch_new(base, &o, on_event, &s, err,
	    sizeof(err)));
	wait_for(base, &s.disconnected, 1);
	assert_int_equal(s.connected, 0);
	assert_int_equal(s.code, CERTD_E_PEER);
	assert_int_equal(s.ended, 1);
	if (strncmp(s.error, want, strlen(want)) != 0)
		fail_msg("watch refusal: \"%s\"", s.error);
	certd_watch_free(w);
	event_base_free(base);

	snprintf(num, sizeof(num), "%lu", (unsigned long)d.uid);
	setenv(CERTD_SERVER_UID_ENV, num, 1);
	c = client();
	assert_int_equal(certd_ping(c), 0);
	certd_close(c);
	setenv(CERTD_SERVER_UID_ENV, "nobody", 1);
	c = client();
	assert_int_equal(certd_ping(c), 0);
	certd_close(c);

	/* Another uid in the environment: the refusal says which. */
	setenv(CERTD_SERVER_UID_ENV, "12345", 1);
	assert_null(certd_connect(d.sock, err, sizeof(err)));
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof(want), "certd at %s runs as uid %lu (%s); "
	    "expected root, uid 0 (yours) or uid 12345 "
	    "(CERTD_SERVER_UID=12345)",
	    d.sock, (unsigned long)d.uid, d.name);
	assert_string_equal(err, want);
	/* The program's setting wins over it ... */
	assert_int_equal(certd_client_set_server_uid(d.uid), 0);
	c = client();
	assert_int_equal(certd_ping(c), 0);
	certd_close(c);
	/* ... until forgotten. */
	assert_int_equal(certd_client_set_server_uid(-1), 0);
	assert_null(certd_connect(d.sock, err, sizeof(err)));
	assert_int_equal(errno, EPERM);
	assert_string_equal(err, want);

}

/* Paths, connecting, and connecting where nobody listens. */
static void
test_connect(void **state)
{
	struct certd_client	*c;
	char			 err[512], want[256], gone[96];

	(void)state;
	assert_string_equal(certd_socket_path(d.sock), d.sock);
	setenv(CERTD_SOCKET_ENV, d.sock, 1);
	assert_string_equal(certd_socket_path(NULL), d.sock);
	assert_string_equal(certd_socket_path(""), d.sock);
	/* path NULL: $CERTD_SOCKET */
	assert_non_null(c = certd_connect(NULL, err, sizeof(err)));
	/* nothing written yet */
	assert_int_equal(certd_client_revision(c), 0);
	assert_int_equal(certd_ping(c), 0);
	assert_string_equal(certd_client_error(c), "");
	certd_close(c);
	unsetenv(CERTD_SOCKET_ENV);

	snprintf(gone, sizeof(gone), "%s/none.sock", d.dir);
	errno = 0;
	assert_null(certd_connect(gone, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof(want), "connect %s: %s", gone, strerror(ENOENT));
	assert_string_equal(err, want);

	assert_int_equal(certd_ping(NULL), CERTD_E_INVAL);
	certd_close(NULL);
}

/* Create, then read it back by id, by alias and in the list. */
static void
test_put_get_list(void **state)
{
	struct certd_client	*c = client();
	struct certd_cert	*out = NULL, *got = NULL;
	struct certd_list	*l = NULL;
	struct certd_put	 in;
	char			*pem = pki_read("leaf-ec.pem");
	char			*key = pki_read("leaf-ec.key");
	char			 fp[CERTD_FINGERPRINT_LEN + 1];
	uint64_t		 rev0 = certd_client_revision(c);

	(void)state;
	fingerprint("leaf-ec.pem", fp);
	memset(&in, 0, sizeof(in));
	in.team = TEAM;
	in.alias = "www";
	in.certificate = pem;
	in.private_key = key;
	in.certificate_type = "server";
	assert_int_equal(certd_put(c, &in, &out), 0);
	assert_non_null(out);
	assert_true(out->id != 0);
	assert_string_equal(out->team, TEAM);
	assert_string_equal(out->alias, "www");
	assert_string_equal(out->certificate_type, "server");
	assert_string_equal(out->certificate, pem);
	assert_non_null(out->private_key);	/* an admin has key */
	assert_string_equal(out->fingerprint_sha256, fp);
	assert_int_equal(out->revision, rev0 + 1);
	assert_true(out->not_after > time(NULL));
	d.cert_www = out->id;

	assert_int_equal(certd_get(c, TEAM, out->id, &got), 0);
	assert_int_equal(got->id, out->id);
	assert_string_equal(got->alias, "www");
	assert_string_equal(got->certificate, pem);
	assert_string_equal(got->private_key, out->private_key);
	assert_string_equal(got->fingerprint_sha256, fp);
	assert_int_equal(got->revision, out->revision);
	assert_int_equal(got->not_after, out->not_after);
	certd_cert_free(got);
	assert_int_equal(certd_get_alias(c, TEAM, "www", &got), 0);
	assert_int_equal(got->id, out->id);
	certd_cert_free(got);

	assert_int_equal(certd_list(c, TEAM, 0, 0, &l), 0);
	assert_int_equal(l->n, 1);
	assert_int_equal(l->total, 1);
	assert_int_equal(l->page, 1);
	assert_int_equal(l->page_size, CERTD_PAGE_SIZE_DEFAULT);
	assert_int_equal(l->items[0].id, out->id);
	assert_string_equal(l->items[0].alias, "www");
	assert_string_equal(l->items[0].certificate_type, "server");
	assert_int_equal(l->items[0].revision, out->revision);
	assert_int_equal(l->items[0].not_after, out->not_after);
	assert_string_equal(l->items[0].fingerprint_sha256, fp);
	certd_list_free(l);
	assert_int_equal(certd_list(c, "other-team", 1, 5, &l), 0);
	assert_int_equal(l->n, 0);
	assert_int_equal(l->total, 0);
	assert_int_equal(l->page_size, 5);
	certd_list_free(l);

	certd_cert_free(out);
	free(pem);
	free(key);
	certd_close(c);
}

/* call's code and certd_client_error's message, then the link still works. */
#define expect_err(c, call, code, msg) do {				\
	assert_int_equal((call), (code));				\
	assert_string_equal(certd_client_error(c), (msg));		\
	assert_int_equal(certd_ping(c), 0);				\
} while (0)

/*
 * A missing id: -404 from every call that names one.  Bad input: -400 or
 * -412 with the server's message and the field to blame; bad arguments:
 * CERTD_E_INVAL without asking certd.  The connection stays usable.
 */
static void
test_errors(void **state)
{
	struct certd_client	*c = client();
	struct certd_cert	*out = (struct certd_cert *)(uintptr_t)1;
	struct certd_list	*l = NULL;
	struct certd_version_list *v = NULL;
	struct certd_put	 in;
	char			*pem = pki_read("leaf-rsa.pem");
	char			*key = pki_read("leaf-rsa.key");
	char			*ekey = pki_read("leaf-ec.key");
	char			*xpem = pki_read("expired.pem");
	char			*xkey = pki_read("expired.key");
	char			 msg[256];
	const uint64_t		 none = 999999;

	(void)state;
	assert_true(d.cert_www != 0);
	expect_err(c, certd_get(c, TEAM, none, &out), -404,
	    "certificate not found");
	assert_null(out);
	expect_err(c, certd_get_alias(c, TEAM, "nope", &out), -404,
	    "certificate not found");
	expect_err(c, certd_delete(c, TEAM, none, 0), -404,
	    "certificate not found");
	expect_err(c, certd_history(c, TEAM, none, &v), -404,
	    "certificate not found");
	assert_null(v);
	expect_err(c, certd_rollback(c, TEAM, none, 1, &out), -404,
	    "certificate not found");
	expect_err(c, certd_rollback(c, TEAM, d.cert_www, none, &out), -404,
	    "revision not found (revision: is not in the certificate's "
	    "history)");

	memset(&in, 0, sizeof(in));
	in.team = TEAM;
	in.alias = "bad";
	in.certificate_type = "server";
	in.certificate = xpem;
	in.private_key = xkey;
	expect_err(c, certd_put(c, &in, &out), -400,
	    "the certificate has been expired (certificate: certificate 1, "
	    "the leaf (CN=expired.example.test), expired at "
	    "2021-01-01T00:00:00Z)");
	in.certificate = pem;
	in.private_key = ekey;
	assert_int_equal(certd_put(c, &in, &out), -400);
	assert_string_equal(certd_client_error(c),
	    "the certificate key pair mismatch (private_key: is not the key "
	    "of the leaf, certificate 1 (CN=www.example.test), nor of any "
	    "other certificate given)");
	in.certificate = "not a certificate";
	in.private_key = key;
	expect_err(c, certd_put(c, &in, &out), -400,
	    "the certificate is invalid (certificate: holds no PEM block "
	    "(-----BEGIN CERTIFICATE-----))");
	in.certificate = pem;
	in.private_key = NULL;
	expect_err(c, certd_put(c, &in, &out), -400,
	    "invalid request (private_key: is required)");
	in.private_key = key;
	in.alias = "www";
	snprintf(msg, sizeof(msg), "certificate name already exists (alias: "
	    "is taken by certificate %llu of the team)",
	    (unsigned long long)d.cert_www);
	expect_err(c, certd_put(c, &in, &out), -412, msg);
	in.team = "no team";
	expect_err(c, certd_put(c, &in, &out), -400,
	    "invalid request (team: must be 1-64 of [A-Za-z0-9_.-])");
	assert_null(out);
	expect_err(c, certd_list(c, TEAM, 1, CERTD_PAGE_SIZE_MAX + 1, &l),
	    -400, "invalid request (page_size: must be an integer from 1 to "
	    "500)");
	assert_null(l);
	assert_int_equal(certd_list(c, TEAM, 0, 0, &l), 0);
	/* none of the above was stored */
	assert_int_equal(l->total, 1);
	certd_list_free(l);

	/* Refused before anything is sent. */
	assert_int_equal(certd_get(c, NULL, 1, &out), CERTD_E_INVAL);
	assert_int_equal(certd_get(c, TEAM, 1, NULL), CERTD_E_INVAL);
	assert_int_equal(certd_get_alias(c, TEAM, NULL, &out), CERTD_E_INVAL);
	assert_int_equal(certd_put(c, NULL, &out), CERTD_E_INVAL);
	assert_int_equal(certd_list(c, NULL, 0, 0, &l), CERTD_E_INVAL);
	assert_int_equal(certd_delete(c, NULL, 1, 0), CERTD_E_INVAL);
	assert_int_equal(certd_ping(c), 0);

	free(pem);
	free(key);
	free(ekey);
	free(xpem);
	free(xkey);
	certd_close(c);
}

/*
 * Update, history newest first, rollback to the first version (a new
 * revision with the old content), a rollback to what is current (nothing
 * written), then delete.
 */
static void
test_history_rollback(void **state)
{
	struct certd_client	*c = client();
	struct certd_cert	*out = NULL, *got = NULL;
	struct certd_version_list *v = NULL;
	struct certd_list	*l = NULL;
	struct certd_put	 in;
	char			*pem = pki_read("leaf-rsa.chain.pem");
	char			*key = pki_read("leaf-rsa.key");
	char			*pem2 = pki_read("leaf-rsa2.pem");
	char			*key2 = pki_read("leaf-rsa2.key");
	char			 fp[CERTD_FINGERPRINT_LEN + 1];
	char			 fp2[CERTD_FINGERPRINT_LEN + 1];
	uint64_t		 id, r1, r2, r3;

	(void)state;
	fingerprint("leaf-rsa.pem", fp);
	fingerprint("leaf-rsa2.pem", fp2);
	memset(&in, 0, sizeof(in));
	in.team = TEAM;
	in.alias = "api";
	in.certificate = pem;
	in.private_key = key;
	in.certificate_type = "server";
	assert_int_equal(certd_put(c, &in, &out), 0);
	id = out->id;
	r1 = out->revision;
	assert_string_equal(out->fingerprint_sha256, fp);
	certd_cert_free(out);

	/* An update: the omitted alias and type are kept. */
	memset(&in, 0, sizeof(in));
	in.team = TEAM;
	in.id = id;
	in.certificate = pem2;
	in.private_key = key2;
	assert_int_equal(certd_put(c, &in, &out), 0);
	r2 = out->revision;
	assert_int_equal(out->id, id);
	assert_int_equal(r2, r1 + 1);
	assert_string_equal(out->alias, "api");
	assert_string_equal(out->certificate_type, "server");
	assert_string_equal(out->fingerprint_sha256, fp2);
	certd_cert_free(out);

	assert_int_equal(certd_history(c, TEAM, id, &v), 0);
	assert_int_equal(v->n, 2);
	assert_int_equal(v->items[0].revision, r2);
	assert_string_equal(v->items[0].fingerprint_sha256, fp2);
	assert_int_equal(v->items[1].revision, r1);
	assert_string_equal(v->items[1].fingerprint_sha256, fp);
	assert_string_equal(v->items[1].alias, "api");
	assert_string_equal(v->items[1].certificate_type, "server");
	assert_true(v->items[1].updated_at > 0);
	certd_version_list_free(v);

	assert_int_equal(certd_rollback(c, TEAM, id, r1, &out), 0);
	r3 = out->revision;
	assert_int_equal(r3, r2 + 1);
	assert_int_equal(out->id, id);
	assert_string_equal(out->fingerprint_sha256, fp);
	assert_string_equal(out->certificate, pem);
	assert_string_equal(out->private_key, key);
	certd_cert_free(out);
	assert_int_equal(certd_get(c, TEAM, id, &got), 0);
	assert_int_equal(got->revision, r3);
	assert_string_equal(got->fingerprint_sha256, fp);
	certd_cert_free(got);
	/* The same content again: nothing written, the current record. */
	assert_int_equal(certd_rollback(c, TEAM, id, r1, &out), 0);
	assert_int_equal(out->revision, r3);
	certd_cert_free(out);
	assert_int_equal(certd_rollback(c, TEAM, id, r2, NULL), 0);

	assert_int_equal(certd_history(c, TEAM, id, &v), 0);
	assert_int_equal(v->n, 4);
	assert_int_equal(v->items[0].revision, r3 + 1);
	assert_string_equal(v->items[0].fingerprint_sha256, fp2);
	assert_int_equal(v->items[1].revision, r3);
	assert_string_equal(v->items[1].fingerprint_sha256, fp);
	assert_int_equal(v->items[3].revision, r1);
	certd_version_list_free(v);

	assert_int_equal(certd_delete(c, TEAM, id, 0), 0);
	assert_int_equal(certd_get(c, TEAM, id, &got), -404);
	assert_int_equal(certd_delete(c, TEAM, id, 0), -404);
	assert_int_equal(certd_history(c, TEAM, id, &v), -404);
	assert_int_equal(certd_list(c, TEAM, 0, 0, &l), 0);
	assert_int_equal(l->total, 1);		/* www only */
	certd_list_free(l);

	free(pem);
	free(key);
	free(pem2);
	free(key2);
	certd_close(c);
}

/*
 * A watch on the caller's loop: connected, the put event of an update
 * (with the key, for an admin), its ack in `subscribers`; the certificate
 * it names is bound (delete refused unless forced), and the forced delete
 * is its next event.
 */
static void
test_watch(void **state)
{
	struct certd_client		*c = client();
	struct certd_subscriber_list	*subs = NULL;
	struct certd_watch_opts		 o;
	struct certd_watch		*w;
	struct event_base		*base;
	struct certd_cert		*out = NULL;
	struct certd_put		 in;
	struct seen			 s;
	char				 err[256];
	uint64_t			 ids[1] = { d.cert_www };
	int64_t				 deadline;

	(void)state;
	assert_non_null(base = event_base_new());
	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	o.socket = d.sock;
	o.team = TEAM;
	o.ids = ids;
	o.n_ids = 1;
	o.name = "unit-watch";
	assert_non_null(w = certd_watch_new(base, &o, on_event, &s, err,
	    sizeof(err)));
	wait_for(base, &s.connected, 1);
	assert_int_equal(s.put + s.del + s.disconnected, 0);

	memset(&in, 0, sizeof(in));
	in.team = TEAM;
	in.id = d.cert_www;
	in.certificate_type = "client";
	assert_int_equal(certd_put(c, &in, &out), 0);
	wait_for(base, &s.put, 1);
	assert_int_equal(s.revision, out->revision);
	assert_string_equal(s.team, TEAM);
	assert_int_equal(s.id, d.cert_www);
	assert_string_equal(s.alias, "www");
	assert_string_equal(s.type, "client");
	assert_string_equal(s.fp, out->fingerprint_sha256);
	assert_int_equal(s.has_key, 1);
	assert_int_equal(certd_watch_revision(w), out->revision);

	assert_int_equal(certd_watch_ack(w, out->revision, 1, "applied"), 0);
	deadline = now_ms() + WAIT_MS;
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		assert_int_equal(certd_subscribers(c, TEAM, d.cert_www, &subs),
		    0);
		assert_int_equal(subs->n, 1);
		if (strcmp(subs->items[0].status, "ok") == 0)
			break;
		assert_string_equal(subs->items[0].status, "pending");
		assert_true(now_ms() < deadline);
		certd_subscriber_list_free(subs);
		sleep_ms(5);
	}
	assert_string_equal(subs->items[0].name, "unit-watch");
	assert_int_equal(subs->items[0].uid, getuid());
	assert_int_equal(subs->items[0].pid, getpid());
	assert_int_equal(subs->items[0].revision, out->revision);
	assert_string_equal(subs->items[0].detail, "applied");
	certd_subscriber_list_free(subs);

	/* Bound by the watch, which names it. */
	assert_int_equal(certd_delete(c, TEAM, d.cert_www, 0), -400);
	assert_string_equal(certd_client_error(c),
	    "the certificate is still in use");
	assert_int_equal(certd_delete(c, TEAM, d.cert_www, 1), 0);
	wait_for(base, &s.del, 1);
	assert_int_equal(s.revision, out->revision + 1);
	assert_int_equal(s.id, d.cert_www);
	assert_string_equal(s.alias, "www");
	assert_int_equal(s.put, 1);
	assert_int_equal(s.disconnected, 0);
	certd_cert_free(out);

	certd_watch_free(w);
	event_base_free(base);
	certd_close(c);
}

/*
 * SIGTERM: certd exits 0 and removes its socket; a client connected
 * before sees the connection closed (CERTD_E_IO, and again after).
 */
static void
test_sigterm(void **state)
{
	struct certd_client	*c = client();
	char			 err[256];
	int			 st;

	(void)state;
	assert_int_equal(certd_ping(c), 0);
	assert_int_equal(kill(d.pid, SIGTERM), 0);
	while (waitpid(d.pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	d.pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		log_tail();
		fail_msg("certd ended with status 0x%x", st);
	}
	assert_int_equal(certd_ping(c), CERTD_E_IO);
	assert_int_equal(certd_ping(c), CERTD_E_IO);
	certd_close(c);
	assert_int_equal(access(d.sock, F_OK), -1);
	assert_null(certd_connect(d.sock, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_server_uid, peer_reset),
		cmocka_unit_test_setup(test_connect, peer_reset),
		cmocka_unit_test_setup(test_put_get_list, peer_reset),
		cmocka_unit_test_setup(test_errors, peer_reset),
		cmocka_unit_test_setup(test_history_rollback, peer_reset),
		cmocka_unit_test_setup(test_watch, peer_reset),
		cmocka_unit_test_setup(test_sigterm, peer_reset),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
