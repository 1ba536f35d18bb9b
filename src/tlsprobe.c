/* SPDX-License-Identifier: MIT */
/*
 * Which certificate a TLS server presents (certctl sync --verify).
 *
 * Every target of a probe is a small state machine on the caller's
 * event_base: a non-blocking connect, then a non-blocking GnuTLS handshake
 * (gnutls_handshake returns GNUTLS_E_AGAIN and gnutls_record_get_direction
 * says whether to wait for reading or writing), each wait one libevent
 * event, each try bounded by a timer.  No thread, no child: a handshake on
 * loopback takes a millisecond of CPU, and the loop keeps running the
 * watch, signals and the reload command's pipe meanwhile.  Host names are
 * resolved once, when the target is parsed, never on the loop.
 *
 * The handshake trusts anything: no verification of the peer's chain is
 * asked for (servers often use private CAs), only the leaf presented is
 * hashed and compared.  The connection is closed right after the
 * handshake, with a close_notify when the socket takes it.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <gnutls/gnutls.h>

#include "cert.h"
#include "tlsprobe.h"
#include "util.h"

#define SNI_MAX		253	/* a DNS name */
#define ALERTS_MAX	8	/* warning alerts borne in one handshake */

struct tlsprobe_target {
	char			 name[TLSPROBE_ARG_MAX + 1];	/* as given */
	char			 sni[SNI_MAX + 1];		/* "": none */
	struct sockaddr_storage	 addr[TLSPROBE_ADDRS_MAX];
	socklen_t		 addrlen[TLSPROBE_ADDRS_MAX];
	size_t			 naddr;
};

enum try_state {
	TRY_IDLE,		/* waiting for the next try (timer) */
	TRY_CONNECT,		/* connect in progress (EV_WRITE) */
	TRY_HANDSHAKE,		/* handshake in progress */
	TRY_MATCHED,		/* presented the wanted leaf: done */
};

/*
 * One target's tries.  Invariants: fd, ev and (in TRY_HANDSHAKE) session
 * are live exactly in TRY_CONNECT and TRY_HANDSHAKE; timer is pending in
 * every state but TRY_MATCHED (the try's end, or the next try's start).
 */
struct probe_conn {
	struct tlsprobe			*p;
	const struct tlsprobe_target	*t;
	enum try_state			 state;
	int				 fd;
	gnutls_session_t		 session;
	struct event			*ev;	/* the one wait on fd */
	struct event			*timer;
	size_t				 next_addr;
	unsigned			 try_ms;	/* this try's length */
	unsigned			 alerts;
	char				 served[CERTD_FINGERPRINT_LEN + 1];
	char				 why[TLSPROBE_WHY_MAX];
};

struct tlsprobe {
	struct event_base		*base;
	gnutls_certificate_credentials_t cred;
	struct probe_conn		*c;
	size_t				 n;
	size_t				 matched;
	int				 done;	/* cb ran: inert */
	char				 want[CERTD_FINGERPRINT_LEN + 1];
	struct event			*deadline;
	unsigned			 timeout_ms;
	struct timespec			 start;
	tlsprobe_cb			 cb;
	void				*arg;
};

static void	try_start(struct probe_conn *);
static void	handshake_step(struct probe_conn *);

/* ---------------------------------------------------------------------- */
/* Targets */

/* A DNS name for SNI: letters, digits, '-' and '.', not an address. */
static int
sni_ok(const char *s)
{
	struct in_addr	a4;
	size_t		i, n = strlen(s);

	if (n == 0 || n > SNI_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '.'))
			return 0;
	return inet_pton(AF_INET, s, &a4) != 1;
}

/* Split HOST:PORT into host and port (both into buf); -1 if malformed. */
static int
split_host_port(char *buf, char **host, char **port, char *err,
    size_t errlen)
{
	char	*c;

	if (*buf == '[') {
		if ((c = strchr(buf, ']')) == NULL || c[1] != ':') {
			snprintf(err, errlen, "want [IPV6]:PORT");
			return -1;
		}
		*c = '\0';
		*host = buf + 1;
		*port = c + 2;
	} else {
		if ((c = strrchr(buf, ':')) == NULL) {
			snprintf(err, errlen, "want HOST:PORT");
			return -1;
		}
		*c = '\0';
		*host = buf;
		*port = c + 1;
		if (strchr(buf, ':') != NULL) {
			snprintf(err, errlen, "an IPv6 address goes in "
			    "brackets: [::1]:443");
			return -1;
		}
	}
	if (**host == '\0') {
		snprintf(err, errlen, "no host");
		return -1;
	}
	return 0;
}

/* Resolve host and port into t's addresses. */
static int
target_resolve(struct tlsprobe_target *t, const char *host,
    const char *port, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL, *ai;
	int		 r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL && t->naddr < TLSPROBE_ADDRS_MAX;
	    ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(t->addr[0]))
			continue;
		memcpy(&t->addr[t->naddr], ai->ai_addr, ai->ai_addrlen);
		t->addrlen[t->naddr++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (t->naddr == 0) {
		snprintf(err, errlen, "%s has no address", host);
		return -1;
	}
	return 0;
}

int
tlsprobe_target_parse(const char *arg, struct tlsprobe_target **out,
    char *err, size_t errlen)
{
	struct tlsprobe_target	*t = NULL;
	struct in6_addr		 a6;
	char			 buf[TLSPROBE_ARG_MAX + 1], *host, *port;
	char			*comma;
	uint64_t		 v;

	*out = NULL;
	if (strlen(arg) > TLSPROBE_ARG_MAX) {
		snprintf(err, errlen, "longer than %d bytes", TLSPROBE_ARG_MAX);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	if ((comma = strchr(buf, ',')) != NULL)
		*comma++ = '\0';
	if (split_host_port(buf, &host, &port, err, errlen) != 0)
		return -1;
	if (util_parse_u64(port, strlen(port), 65535, &v) != 0 || v == 0) {
		snprintf(err, errlen, "bad port '%s' (1 to 65535)", port);
		return -1;
	}
	if (comma != NULL && !sni_ok(comma)) {
		snprintf(err, errlen, "bad SNI '%s' (a DNS name)", comma);
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", arg);
	/* sni_ok bounds both to SNI_MAX bytes. */
	if (comma != NULL)
		memcpy(t->sni, comma, strlen(comma) + 1);
	else if (inet_pton(AF_INET6, host, &a6) != 1 && sni_ok(host))
		memcpy(t->sni, host, strlen(host) + 1);
	if (target_resolve(t, host, port, err, errlen) != 0) {
		free(t);
		return -1;
	}
	*out = t;
	return 0;
}

void
tlsprobe_target_free(struct tlsprobe_target *t)
{
	free(t);
}

const char *
tlsprobe_target_name(const struct tlsprobe_target *t)
{
	return t->name;
}

const char *
tlsprobe_target_sni(const struct tlsprobe_target *t)
{
	return t->sni;
}

/* ---------------------------------------------------------------------- */
/* Tries */

static unsigned
elapsed_ms(const struct tlsprobe *p)
{
	struct timespec	now;
	int64_t		ms;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - p->start.tv_sec) * 1000 +
	    (now.tv_nsec - p->start.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (unsigned)ms;
}

static void
timer_in(struct event *ev, unsigned ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Close the try's connection, if any. */
static void
try_close(struct probe_conn *pc)
{
	if (pc->ev != NULL) {
		event_free(pc->ev);
		pc->ev = NULL;
	}
	if (pc->session != NULL) {
		gnutls_deinit(pc->session);
		pc->session = NULL;
	}
	if (pc->fd != -1) {
		(void)close(pc->fd);
		pc->fd = -1;
	}
}

/* Wait for fd to be readable or writable, then go on in state. */
static void	io_cb(evutil_socket_t, short, void *);

static int
try_wait(struct probe_conn *pc, short what)
{
	if (pc->ev != NULL)
		event_free(pc->ev);
	if ((pc->ev = event_new(pc->p->base, pc->fd, what, io_cb, pc)) ==
	    NULL || event_add(pc->ev, NULL) != 0)
		return -1;
	return 0;
}

static void	probe_finish(struct tlsprobe *, int);

/*
 * The try ended without the wanted leaf: note why, and try again after
 * TLSPROBE_RETRY_MS (the deadline ends the tries).
 */
static void __attribute__((format(printf, 2, 3)))
try_failed(struct probe_conn *pc, const char *f, ...)
{
	va_list	ap;

	try_close(pc);
	va_start(ap, f);
	vsnprintf(pc->why, sizeof(pc->why), f, ap);
	va_end(ap);
	pc->state = TRY_IDLE;
	timer_in(pc->timer, TLSPROBE_RETRY_MS);
}

/* The handshake is done: hash the leaf presented and compare. */
static void
try_presented(struct probe_conn *pc)
{
	struct tlsprobe		*p = pc->p;
	const gnutls_datum_t	*certs;
	unsigned		 n = 0;

	certs = gnutls_certificate_get_peers(pc->session, &n);
	if (certs == NULL || n == 0) {
		try_failed(pc, "presents no certificate");
		return;
	}
	if (cert_fingerprint_der(certs[0].data, certs[0].size,
	    pc->served) != 0) {
		try_failed(pc, "presents a certificate that cannot be hashed");
		return;
	}
	/* A close_notify if the socket takes it now; never waited for. */
	(void)gnutls_bye(pc->session, GNUTLS_SHUT_WR);
	if (strcmp(pc->served, p->want) != 0) {
		try_failed(pc, "presents another certificate");
		return;
	}
	try_close(pc);
	evtimer_del(pc->timer);
	pc->state = TRY_MATCHED;
	pc->why[0] = '\0';
	if (++p->matched == p->n)
		probe_finish(p, 1);
}

static void
handshake_step(struct probe_conn *pc)
{
	int	ret;

	for (;;) {
		ret = gnutls_handshake(pc->session);
		if (ret == 0) {
			try_presented(pc);
			return;
		}
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			if (try_wait(pc, gnutls_record_get_direction(
			    pc->session) ? EV_WRITE : EV_READ) != 0)
				try_failed(pc, "cannot wait for the socket");
			return;
		}
		if (gnutls_error_is_fatal(ret) || ++pc->alerts > ALERTS_MAX) {
			try_failed(pc, "handshake: %s", gnutls_strerror(ret));
			return;
		}
		/* A warning alert: the handshake goes on. */
	}
}

/* Connected: set up the session and start the handshake. */
static void
handshake_begin(struct probe_conn *pc)
{
	const struct tlsprobe_target	*t = pc->t;
	int				 ret;

	pc->alerts = 0;
	if ((ret = gnutls_init(&pc->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL)) < 0) {
		pc->session = NULL;
		try_failed(pc, "TLS: %s", gnutls_strerror(ret));
		return;
	}
	if ((ret = gnutls_set_default_priority(pc->session)) < 0 ||
	    (ret = gnutls_credentials_set(pc->session, GNUTLS_CRD_CERTIFICATE,
	    pc->p->cred)) < 0 ||
	    (*t->sni != '\0' && (ret = gnutls_server_name_set(pc->session,
	    GNUTLS_NAME_DNS, t->sni, strlen(t->sni))) < 0)) {
		try_failed(pc, "TLS: %s", gnutls_strerror(ret));
		return;
	}
	gnutls_transport_set_int(pc->session, pc->fd);
	pc->state = TRY_HANDSHAKE;
	handshake_step(pc);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe_conn	*pc = arg;
	socklen_t		 len = sizeof(int);
	int			 e = 0;

	(void)what;
	if (pc->state == TRY_HANDSHAKE) {
		handshake_step(pc);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
		e = errno;
	if (e != 0) {
		pc->next_addr++;	/* the next address, if it has more */
		try_failed(pc, "connect: %s", strerror(e));
		return;
	}
	handshake_begin(pc);
}

/* A try: connect to the target's next address. */
static void
try_start(struct probe_conn *pc)
{
	const struct tlsprobe_target	*t = pc->t;
	struct tlsprobe			*p = pc->p;
	const struct sockaddr		*sa;
	size_t				 i = pc->next_addr % t->naddr;
	unsigned			 spent = elapsed_ms(p);

	/* The try ends at TLSPROBE_TRY_MS, or at the deadline if sooner. */
	pc->try_ms = TLSPROBE_TRY_MS;
	if (spent < p->timeout_ms && p->timeout_ms - spent < pc->try_ms)
		pc->try_ms = p->timeout_ms - spent;
	timer_in(pc->timer, pc->try_ms);
	sa = (const struct sockaddr *)&t->addr[i];
	if ((pc->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		try_failed(pc, "socket: %s", strerror(errno));
		return;
	}
	pc->state = TRY_CONNECT;
	if (connect(pc->fd, sa, t->addrlen[i]) == 0) {
		handshake_begin(pc);
		return;
	}
	if (errno != EINPROGRESS) {
		pc->next_addr++;
		try_failed(pc, "connect: %s", strerror(errno));
		return;
	}
	if (try_wait(pc, EV_WRITE) != 0)
		try_failed(pc, "cannot wait for the socket");
}

/* The try's time is up, or the wait before the next one is over. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe_conn	*pc = arg;

	(void)fd;
	(void)what;
	if (pc->state == TRY_IDLE)
		try_start(pc);
	else if (pc->state != TRY_MATCHED)
		try_failed(pc, "no handshake within %u ms", pc->try_ms);
}

/* ---------------------------------------------------------------------- */
/* The probe */

/* Stop every target's tries; cb runs last and touches nothing after. */
static void
probe_finish(struct tlsprobe *p, int ok)
{
	struct tlsprobe_result	 res;
	struct probe_conn	*pc = NULL;
	size_t			 i;

	memset(&res, 0, sizeof(res));
	for (i = 0; i < p->n; i++) {
		if (p->c[i].state != TRY_MATCHED && pc == NULL)
			pc = &p->c[i];
		if (p->c[i].state == TRY_CONNECT ||
		    p->c[i].state == TRY_HANDSHAKE) {
			if (p->c[i].why[0] == '\0')
				snprintf(p->c[i].why, sizeof(p->c[i].why),
				    "no handshake within %u ms",
				    p->timeout_ms);
		}
		try_close(&p->c[i]);
		evtimer_del(p->c[i].timer);
	}
	evtimer_del(p->deadline);
	p->done = 1;
	res.ok = ok && pc == NULL;
	res.verified_at = (int64_t)time(NULL);
	res.elapsed_ms = elapsed_ms(p);
	if (res.ok)
		res.served = p->want;
	else if (pc != NULL) {
		res.target = pc->t->name;
		res.served = *pc->served != '\0' ? pc->served : NULL;
		res.why = *pc->why != '\0' ? pc->why : "not tried";
	}
	p->cb(&res, p->arg);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	probe_finish(arg, 0);
}

struct tlsprobe *
tlsprobe_start(struct event_base *base, struct tlsprobe_target *const *targets,
    size_t n, const char *want, unsigned timeout_ms, tlsprobe_cb cb,
    void *arg)
{
	struct tlsprobe	*p;
	size_t		 i;

	if (n == 0 || strlen(want) != CERTD_FINGERPRINT_LEN ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->base = base;
	p->n = n;
	p->timeout_ms = timeout_ms;
	p->cb = cb;
	p->arg = arg;
	memcpy(p->want, want, sizeof(p->want));
	(void)clock_gettime(CLOCK_MONOTONIC, &p->start);
	if ((p->c = calloc(n, sizeof(*p->c))) == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		p->c[i].fd = -1;
	if (gnutls_certificate_allocate_credentials(&p->cred) < 0) {
		p->cred = NULL;
		goto fail;
	}
	if ((p->deadline = evtimer_new(base, deadline_cb, p)) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		p->c[i].p = p;
		p->c[i].t = targets[i];
		p->c[i].state = TRY_IDLE;
		if ((p->c[i].timer = evtimer_new(base, timer_cb,
		    &p->c[i])) == NULL)
			goto fail;
	}
	/* The first tries start from the loop, not from the caller. */
	timer_in(p->deadline, timeout_ms);
	for (i = 0; i < n; i++)
		timer_in(p->c[i].timer, 0);
	return p;
fail:
	tlsprobe_free(p);
	return NULL;
}

void
tlsprobe_free(struct tlsprobe *p)
{
	size_t	i;

	if (p == NULL)
		return;
	for (i = 0; p->c != NULL && i < p->n; i++) {
		try_close(&p->c[i]);
		if (p->c[i].timer != NULL)
			event_free(p->c[i].timer);
	}
	free(p->c);
	if (p->deadline != NULL)
		event_free(p->deadline);
	if (p->cred != NULL)
		gnutls_certificate_free_credentials(p->cred);
	free(p);
}
