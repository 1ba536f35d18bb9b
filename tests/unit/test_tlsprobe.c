/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the TLS probe of certctl sync --verify (src/tlsprobe.c):
 * target parsing (HOST:PORT[,SNI], brackets for IPv6, the SNI a host name
 * gives), and probes on a real event loop against a port that refuses, a
 * listener that never speaks TLS, and a GnuTLS server in a child process
 * (the PKI of tests/pki/gen-pki.sh, from $CERTD_PKI_DIR) that presents the
 * wanted leaf or another one, and reports the SNI it received.  A timer
 * ticking on the same loop proves that a probe never blocks it.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <gnutls/gnutls.h>

#include "cert.h"
#include "tlsprobe.h"

#define TICK_MS	20

struct run {
	struct event_base	*base;
	struct event		*tick;
	int			 ticks;
	int			 done;
	int			 ok;
	char			 target[TLSPROBE_ARG_MAX + 1];
	char			 served[CERTD_FINGERPRINT_LEN + 1];
	char			 why[TLSPROBE_WHY_MAX];
	unsigned		 elapsed_ms;
	int64_t			 verified_at;
};

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run	*r = arg;
	struct timeval	 tv = { 0, TICK_MS * 1000 };

	(void)fd;
	(void)what;
	r->ticks++;
	evtimer_add(r->tick, &tv);
}

static void
done_cb(const struct tlsprobe_result *res, void *arg)
{
	struct run	*r = arg;

	r->done++;
	r->ok = res->ok;
	r->elapsed_ms = res->elapsed_ms;
	r->verified_at = res->verified_at;
	snprintf(r->target, sizeof(r->target), "%s",
	    res->target != NULL ? res->target : "");
	snprintf(r->served, sizeof(r->served), "%s",
	    res->served != NULL ? res->served : "");
	snprintf(r->why, sizeof(r->why), "%s",
	    res->why != NULL ? res->why : "");
	event_base_loopbreak(r->base);
}

/* Probe the targets for want until done; the result in r. */
static void
probe(struct run *r, const char *const *args, size_t n, const char *want,
    unsigned timeout_ms)
{
	struct tlsprobe_target	*t[4];
	struct tlsprobe		*p;
	struct timeval		 tv = { 0, TICK_MS * 1000 };
	char			 err[256];
	size_t			 i;

	memset(r, 0, sizeof(*r));
	assert_true(n <= 4);
	for (i = 0; i < n; i++)
		assert_int_equal(tlsprobe_target_parse(args[i], &t[i], err,
		    sizeof(err)), 0);
	assert_non_null(r->base = event_base_new());
	assert_non_null(r->tick = evtimer_new(r->base, tick_cb, r));
	evtimer_add(r->tick, &tv);
	assert_non_null(p = tlsprobe_start(r->base, t, n, want, timeout_ms,
	    done_cb, r));
	assert_int_equal(event_base_dispatch(r->base), 0);
	assert_int_equal(r->done, 1);
	tlsprobe_free(p);
	event_free(r->tick);
	event_base_free(r->base);
	for (i = 0; i < n; i++)
		tlsprobe_target_free(t[i]);
}

/* A loopback TCP listener on a kernel-chosen port; the port in *port. */
static int
listener(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static const char *
pki(const char *name, char *buf, size_t len)
{
	const char	*dir = getenv("CERTD_PKI_DIR");

	if (dir == NULL || *dir == '\0')
		return NULL;
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* Fingerprint of a PEM file of the PKI. */
static void
fingerprint_of(const char *name, char out[CERTD_FINGERPRINT_LEN + 1])
{
	char	path[PATH_MAX], buf[65536];
	FILE	*f;
	size_t	n;

	assert_non_null(pki(name, path, sizeof(path)));
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(cert_fingerprint_pem(buf, n, out), 0);
}

/*
 * A GnuTLS server in a child: accepts on fd, presents chain/key, writes
 * the SNI of each handshake ("-" for none) and a newline to sni_fd.
 */
static pid_t
tls_server(int fd, const char *chain, const char *key, int sni_fd)
{
	gnutls_certificate_credentials_t	 cred;
	gnutls_session_t			 s;
	char					 name[256];
	size_t					 len;
	unsigned				 type;
	pid_t					 pid;
	int					 c;

	if ((pid = fork()) != 0)
		return pid;
	/* Never outlive the test, whatever assertion ends it. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	alarm(120);
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_key_file(cred, chain, key,
	    GNUTLS_X509_FMT_PEM) < 0)
		_exit(2);
	for (;;) {
		if ((c = accept(fd, NULL, NULL)) < 0)
			continue;
		if (gnutls_init(&s, GNUTLS_SERVER) < 0 ||
		    gnutls_set_default_priority(s) < 0 ||
		    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
		    cred) < 0)
			_exit(2);
		gnutls_transport_set_int(s, c);
		if (gnutls_handshake(s) == 0) {
			len = sizeof(name);
			if (gnutls_server_name_get(s, name, &len, &type,
			    0) < 0)
				snprintf(name, sizeof(name), "-");
			dprintf(sni_fd, "%s\n", name);
			(void)gnutls_bye(s, GNUTLS_SHUT_WR);
		}
		gnutls_deinit(s);
		close(c);
	}
}

static void
stop_child(pid_t pid)
{
	int	st;

	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

static void
test_parse(void **state)
{
	static const struct {
		const char	*arg;
		const char	*sni;	/* NULL: refused */
		const char	*why;
	} cases[] = {
		{ "127.0.0.1:443", "", NULL },
		{ "127.0.0.1:443,www.example.com", "www.example.com", NULL },
		{ "localhost:8443", "localhost", NULL },
		{ "localhost:8443,other.example", "other.example", NULL },
		{ "[::1]:443", "", NULL },
		{ "[::1]:443,www.example.com", "www.example.com", NULL },
		{ "127.0.0.1", NULL, "want HOST:PORT" },
		{ "::1:443", NULL, "brackets" },
		{ "[::1:443", NULL, "[IPV6]:PORT" },
		{ ":443", NULL, "no host" },
		{ "127.0.0.1:0", NULL, "bad port" },
		{ "127.0.0.1:65536", NULL, "bad port" },
		{ "127.0.0.1:x", NULL, "bad port" },
		{ "127.0.0.1:443,", NULL, "bad SNI" },
		{ "127.0.0.1:443,bad name", NULL, "bad SNI" },
		{ "127.0.0.1:443,10.0.0.1", NULL, "bad SNI" },
		{ "no-such-host.invalid:443", NULL, "cannot resolve" },
	};
	struct tlsprobe_target	*t;
	char			 err[256], longarg[TLSPROBE_ARG_MAX + 2];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (cases[i].sni != NULL) {
			assert_int_equal(tlsprobe_target_parse(cases[i].arg,
			    &t, err, sizeof(err)), 0);
			assert_string_equal(tlsprobe_target_name(t),
			    cases[i].arg);
			assert_string_equal(tlsprobe_target_sni(t),
			    cases[i].sni);
			tlsprobe_target_free(t);
		} else {
			assert_int_equal(tlsprobe_target_parse(cases[i].arg,
			    &t, err, sizeof(err)), -1);
			assert_null(t);
			if (strstr(err, cases[i].why) == NULL)
				fail_msg("%s: '%s' lacks '%s'", cases[i].arg,
				    err, cases[i].why);
		}
	}
	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	assert_int_equal(tlsprobe_target_parse(longarg, &t, err, sizeof(err)),
	    -1);
	tlsprobe_target_free(NULL);
}

static const char	want_any[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Nothing listens: every try is refused until the deadline. */
static void
test_refused(void **state)
{
	struct run	 r;
	char		 arg[64];
	const char	*args[1] = { arg };
	int		 fd, port;

	(void)state;
	fd = listener(&port);
	close(fd);
	snprintf(arg, sizeof(arg), "127.0.0.1:%d", port);
	probe(&r, args, 1, want_any, 600);
	assert_false(r.ok);
	assert_string_equal(r.target, arg);
	assert_string_equal(r.why, "connect: Connection refused");
	assert_string_equal(r.served, "");
	assert_true(r.elapsed_ms >= 550);
	assert_true(r.verified_at > 0);
	assert_true(r.ticks >= 3);	/* the loop ran on (loose: valgrind) */
}

/* A listener that never answers: the try, then the deadline, end it. */
static void
test_silent(void **state)
{
	struct run	 r;
	char		 arg[64];
	const char	*args[1] = { arg };
	int		 fd, port;

	(void)state;
	fd = listener(&port);
	snprintf(arg, sizeof(arg), "127.0.0.1:%d", port);
	probe(&r, args, 1, want_any, 700);
	close(fd);
	assert_false(r.ok);
	assert_string_equal(r.why, "no handshake within 700 ms");
	assert_string_equal(r.served, "");
	assert_true(r.ticks >= 3);	/* the handshake never blocked it */
}

/* A real server: the wanted leaf is ok, another is failed with it. */
static void
test_server(void **state)
{
	struct run	 r;
	char		 chain[PATH_MAX], key[PATH_MAX], arg[64], arg2[64];
	char		 fp_rsa[CERTD_FINGERPRINT_LEN + 1];
	char		 fp_rsa2[CERTD_FINGERPRINT_LEN + 1], sni[512];
	const char	*args[2] = { arg, arg2 };
	ssize_t		 n;
	pid_t		 pid;
	int		 fd, port, pfd[2];

	(void)state;
	if (pki("leaf-rsa.chain.pem", chain, sizeof(chain)) == NULL) {
		print_message("CERTD_PKI_DIR not set: no TLS server\n");
		skip();
	}
	assert_non_null(pki("leaf-rsa.key", key, sizeof(key)));
	fingerprint_of("leaf-rsa.pem", fp_rsa);
	fingerprint_of("leaf-rsa2.pem", fp_rsa2);
	assert_int_equal(pipe(pfd), 0);
	fd = listener(&port);
	pid = tls_server(fd, chain, key, pfd[1]);
	assert_true(pid > 0);
	close(pfd[1]);

	snprintf(arg, sizeof(arg), "127.0.0.1:%d,www.example.test", port);
	snprintf(arg2, sizeof(arg2), "localhost:%d", port);
	probe(&r, args, 1, fp_rsa, 5000);
	assert_true(r.ok);
	assert_string_equal(r.served, fp_rsa);
	n = read(pfd[0], sni, sizeof(sni) - 1);
	assert_true(n > 0);
	sni[n] = '\0';
	assert_string_equal(sni, "www.example.test\n");

	/* Another leaf wanted: tried until the deadline, the served one. */
	probe(&r, args, 1, fp_rsa2, 3000);
	assert_false(r.ok);
	assert_string_equal(r.target, arg);
	assert_string_equal(r.why, "presents another certificate");
	assert_string_equal(r.served, fp_rsa);
	assert_true(r.ticks >= 3);

	/* Two targets, both presenting it (localhost sends its name). */
	probe(&r, args, 2, fp_rsa, 5000);
	assert_true(r.ok);
	stop_child(pid);
	close(fd);
	close(pfd[0]);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_silent),
		cmocka_unit_test(test_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
