/* SPDX-License-Identifier: MIT */
/*
 * reload-demo: an HTTPS server that follows a certificate in certd with the
 * libcertd GnuTLS reloader (include/certd/reloader.h).
 *
 *	reload-demo -s SOCK --team T (--alias A | --id N) --port P
 *	    [--name NAME] [--thread]
 *
 * Serves "ok\n" to any HTTP/1.0 or 1.1 request on 127.0.0.1:P, keeping
 * HTTP/1.1 connections alive, with non-blocking GnuTLS sessions driven by
 * libevent.  Each response carries X-Cert-Sha256, the SHA-256 of the
 * certificate that connection's handshake presented: a connection opened
 * before a change keeps reporting the old one.  Prints "ready" on stdout
 * once the first certificate is served, and one line per change on
 * stderr.  The reloader runs on the server's event_base, or with --thread
 * on a thread of its own.  SIGTERM or SIGINT: exit 0.
 *
 * Build: cc reload-demo.c $(pkg-config --cflags --libs libcertd gnutls
 * libevent)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* strcasestr */
#endif
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <certd/certd.h>
#include <certd/reloader.h>

#define REQ_MAX		8192	/* bytes of request headers buffered */
#define OUT_MAX		512
#define IDLE_SECS	30

enum conn_state {
	CONN_HANDSHAKE,
	CONN_READ,		/* waiting for a complete request */
	CONN_WRITE,		/* out[sent, outlen) still to send */
	CONN_DEAD,		/* closed; freed from the loop */
};

struct server;

/*
 * One TLS connection: one event (re-armed for read or write as the session
 * needs) and an explicit state.  in holds request bytes not yet answered.
 */
struct conn {
	struct server		*srv;
	struct conn		*prev, *next;
	int			 fd;
	gnutls_session_t	 tls;
	struct event		*ev;
	enum conn_state		 state;
	int			 close_after;	/* HTTP/1.0 or Connection: close */
	char			 in[REQ_MAX];
	size_t			 inlen;
	char			 out[OUT_MAX];
	size_t			 outlen, sent;
};

struct server {
	struct event_base	*base;
	struct certd_reloader	*reloader;
	struct conn		*conns;
};

static void	conn_cb(evutil_socket_t, short, void *);

static void
conn_free(struct conn *c)
{
	struct server	*srv = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->ev != NULL)
		event_free(c->ev);
	gnutls_deinit(c->tls);		/* frees the session's certificate copy */
	(void)close(c->fd);
	free(c);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg);
}

/* Close; the free is scheduled on the loop, not done in our callback. */
static void
conn_close(struct conn *c)
{
	struct timeval	now = { 0, 0 };

	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	event_del(c->ev);
	if (event_base_once(c->srv->base, -1, EV_TIMEOUT, conn_free_cb, c,
	    &now) != 0)
		fprintf(stderr, "reload-demo: cannot schedule a free\n");
}

/* Wait for what GnuTLS needs next (or for the peer's next request). */
static void
conn_wait(struct conn *c, short what)
{
	struct timeval	idle = { IDLE_SECS, 0 };

	event_del(c->ev);
	event_assign(c->ev, c->srv->base, c->fd, what, conn_cb, c);
	if (event_add(c->ev, &idle) != 0)
		conn_close(c);
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/*
 * Answer the request at the head of in (hdr_len bytes with its blank
 * line).  The fingerprint is of the certificate this session presented:
 * it lives in the session until gnutls_deinit, whatever was swapped since.
 */
static void
conn_respond(struct conn *c, size_t hdr_len)
{
	const gnutls_datum_t	*ours;
	unsigned char		 md[32];
	char			 fp[65] = "none";
	const char		*ver = "HTTP/1.1";
	int			 n;

	c->in[hdr_len - 1] = '\0';
	if (strncmp(c->in, "GET ", 4) != 0 && strncmp(c->in, "HEAD ", 5) != 0)
		c->close_after = 1;
	if (strstr(c->in, " HTTP/1.0\r\n") != NULL ||
	    strstr(c->in, " HTTP/1.0\n") != NULL) {
		ver = "HTTP/1.0";
		if (strcasestr(c->in, "\nconnection: keep-alive") == NULL)
			c->close_after = 1;
	}
	if (strcasestr(c->in, "\nconnection: close") != NULL)
		c->close_after = 1;
	ours = gnutls_certificate_get_ours(c->tls);
	if (ours != NULL && gnutls_hash_fast(GNUTLS_DIG_SHA256, ours->data,
	    ours->size, md) == 0)
		hex(md, sizeof(md), fp);
	n = snprintf(c->out, sizeof(c->out), "%s 200 OK\r\n"
	    "Content-Type: text/plain\r\n"
	    "Content-Length: 3\r\n"
	    "X-Cert-Sha256: %s\r\n"
	    "Connection: %s\r\n"
	    "\r\n"
	    "ok\n", ver, fp, c->close_after ? "close" : "keep-alive");
	c->outlen = (size_t)n;
	c->sent = 0;
	memmove(c->in, c->in + hdr_len, c->inlen - hdr_len);
	c->inlen -= hdr_len;
	c->state = CONN_WRITE;
}

/* Length of the first complete request header block in in, or 0. */
static size_t
request_len(const struct conn *c)
{
	size_t	i;

	for (i = 0; i + 1 < c->inlen; i++) {
		if (c->in[i] != '\n')
			continue;
		if (c->in[i + 1] == '\n')
			return i + 2;
		if (i + 2 < c->inlen && c->in[i + 1] == '\r' &&
		    c->in[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Run the connection as far as it goes without blocking. */
static void
conn_step(struct conn *c)
{
	ssize_t	n;
	size_t	len;
	int	rv;

	for (;;) {
		switch (c->state) {
		case CONN_HANDSHAKE:
			rv = gnutls_handshake(c->tls);
			if (rv == 0) {
				c->state = CONN_READ;
				continue;
			}
			if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED ||
			    !gnutls_error_is_fatal(rv)) {
				conn_wait(c, gnutls_record_get_direction(c->tls) ?
				    EV_WRITE : EV_READ);
				return;
			}
			(void)gnutls_alert_send_appropriate(c->tls, rv);
			conn_close(c);
			return;
		case CONN_READ:
			if ((len = request_len(c)) > 0) {
				conn_respond(c, len);
				continue;
			}
			if (c->inlen == sizeof(c->in)) {
				conn_close(c);	/* headers too large */
				return;
			}
			n = gnutls_record_recv(c->tls, c->in + c->inlen,
			    sizeof(c->in) - c->inlen);
			if (n > 0) {
				c->inlen += (size_t)n;
				continue;
			}
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				conn_wait(c, EV_READ);
				return;
			}
			if (n < 0 && !gnutls_error_is_fatal((int)n))
				continue;	/* e.g. a refused renegotiation */
			if (n == 0)		/* close_notify: answer it */
				(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
			conn_close(c);		/* EOF or a fatal error */
			return;
		case CONN_WRITE:
			n = gnutls_record_send(c->tls, c->out + c->sent,
			    c->outlen - c->sent);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				/* Resumed with the same data, as GnuTLS asks. */
				conn_wait(c, EV_WRITE);
				return;
			}
			if (n < 0) {
				conn_close(c);
				return;
			}
			c->sent += (size_t)n;
			if (c->sent < c->outlen)
				continue;
			if (c->close_after) {
				(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
				conn_close(c);
				return;
			}
			c->state = CONN_READ;
			continue;
		case CONN_DEAD:
			return;
		}
	}
}

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		conn_close(c);
		return;
	}
	conn_step(c);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c;

	(void)l;
	(void)sa;
	(void)salen;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		(void)close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL) < 0) {
		(void)close(fd);
		free(c);
		return;
	}
	c->next = srv->conns;
	if (c->next != NULL)
		c->next->prev = c;
	srv->conns = c;
	if (gnutls_set_default_priority(c->tls) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
	    certd_reloader_credentials(srv->reloader)) < 0 ||
	    (c->ev = event_new(srv->base, -1, 0, conn_cb, c)) == NULL) {
		conn_free(c);
		return;
	}
	gnutls_transport_set_int(c->tls, fd);
	c->state = CONN_HANDSHAKE;
	conn_step(c);
}

/* From the server's loop, or from the reloader's thread with --thread. */
static void
reload_cb(const struct certd_reload_event *ev, void *arg)
{
	(void)arg;
	switch (ev->kind) {
	case CERTD_RELOAD_SWAPPED:
		fprintf(stderr, "reload-demo: serving revision %" PRIu64
		    " (certificate %" PRIu64 ", sha256 %s)\n", ev->revision,
		    ev->cert_id, ev->fingerprint_sha256 != NULL ?
		    ev->fingerprint_sha256 : "?");
		if (ev->first) {
			printf("ready\n");
			fflush(stdout);
		}
		break;
	case CERTD_RELOAD_FAILED:
		fprintf(stderr, "reload-demo: revision %" PRIu64
		    " not loaded, the previous certificate stays: %s\n",
		    ev->revision, ev->error);
		break;
	case CERTD_RELOAD_DELETED:
		fprintf(stderr, "reload-demo: certificate %" PRIu64
		    " deleted or renamed away at revision %" PRIu64
		    "; still serving it\n", ev->cert_id, ev->revision);
		break;
	case CERTD_RELOAD_CONNECTED:
		fprintf(stderr, "reload-demo: watching (certd revision %"
		    PRIu64 ")\n", ev->revision);
		break;
	case CERTD_RELOAD_DISCONNECTED:
		fprintf(stderr, "reload-demo: lost certd: %s%s\n", ev->error,
		    ev->ended ? " (giving up)" : "; reconnecting");
		break;
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: reload-demo -s SOCK --team T "
	    "(--alias A | --id N) --port P [--name NAME] [--thread]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "team",	required_argument,	NULL, 't' },
		{ "alias",	required_argument,	NULL, 'a' },
		{ "id",		required_argument,	NULL, 'i' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "name",	required_argument,	NULL, 'n' },
		{ "thread",	no_argument,		NULL, 'T' },
		{ NULL,		0,			NULL, 0 }
	};
	struct certd_reloader_opts	 ro;
	struct server			 srv;
	struct sockaddr_in		 sin;
	struct evconnlistener		*l = NULL;
	struct event			*sigterm = NULL, *sigint = NULL;
	char				 err[256], *end;
	unsigned long			 port = 0;
	int				 ch, threaded = 0, status = 1;

	memset(&ro, 0, sizeof(ro));
	ro.name = "reload-demo";
	while ((ch = getopt_long(argc, argv, "s:", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ro.socket = optarg;
			break;
		case 't':
			ro.team = optarg;
			break;
		case 'a':
			ro.alias = optarg;
			break;
		case 'i':
			errno = 0;
			ro.id = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || ro.id == 0)
				usage();
			break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end != '\0' || port == 0 || port > 65535)
				usage();
			break;
		case 'n':
			ro.name = optarg;
			break;
		case 'T':
			threaded = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || ro.team == NULL || port == 0 ||
	    (ro.id != 0) == (ro.alias != NULL))
		usage();

	memset(&srv, 0, sizeof(srv));
	if ((srv.base = event_base_new()) == NULL) {
		fprintf(stderr, "reload-demo: cannot create an event base\n");
		return 1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(srv.base, accept_cb, &srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    128, (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL) {
		fprintf(stderr, "reload-demo: listen on 127.0.0.1:%lu: %s\n",
		    port, strerror(errno));
		goto out;
	}
	sigterm = evsignal_new(srv.base, SIGTERM, signal_cb, srv.base);
	sigint = evsignal_new(srv.base, SIGINT, signal_cb, srv.base);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm,
	    NULL) != 0 || evsignal_add(sigint, NULL) != 0) {
		fprintf(stderr, "reload-demo: cannot handle signals\n");
		goto out;
	}
	if (threaded)
		srv.reloader = certd_reloader_start(&ro, reload_cb, &srv, err,
		    sizeof(err));
	else
		srv.reloader = certd_reloader_new(srv.base, &ro, reload_cb,
		    &srv, err, sizeof(err));
	if (srv.reloader == NULL) {
		fprintf(stderr, "reload-demo: %s\n", err);
		goto out;
	}
	if (event_base_dispatch(srv.base) == -1) {
		fprintf(stderr, "reload-demo: event loop failed\n");
		goto out;
	}
	status = 0;
out:
	/* Sessions first: the reloader owns their credentials. */
	while (srv.conns != NULL)
		conn_free(srv.conns);
	certd_reloader_free(srv.reloader);
	if (l != NULL)
		evconnlistener_free(l);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	event_base_free(srv.base);
	return status;
}
