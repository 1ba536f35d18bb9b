/* SPDX-License-Identifier: MIT */
/*
 * The REST listener's connections.  evhttp does the HTTP; through its
 * bufferevent callback every accepted connection gets a filter bufferevent
 * over its socket, and the filter is where this file works:
 *
 *  - a connection is counted from accept to close, and the listener pauses
 *    at the cap (evhttp itself sees connections only at their requests);
 *  - a request must arrive whole within a deadline from its first byte:
 *    evhttp's timeout restarts at every byte read, so a client dripping a
 *    byte a second would hold a connection for ever;
 *  - on a TLS listener the filter runs the GnuTLS session: handshake,
 *    client certificate check, record layer.  (libevent's TLS bufferevents
 *    are OpenSSL only.)  The sessions are this file's, so it calls gnutls_*
 *    for them; the certificate and key it serves are loaded by cert.c
 *    (cert_pair_new), as libcertd's reloader loads its own.
 *  - the request bytes reach evhttp through http_wire.c, which holds back
 *    what is not yet whole and refuses bad framing (NUL bytes in a head,
 *    malformed chunked bodies...); the router asks http_conn_refused
 *    whether the request it got is such a refusal.
 *
 * Two properties of libevent 2.1's filters are worked around.  evhttp
 * queues a reply while writing is disabled and enables writing after, and
 * a filter does not look at its output when writing is enabled: the output
 * is flushed on the next loop turn, when writing is on.  And a filter
 * reports its output written once the bytes reach the socket's bufferevent;
 * evhttp then closes a "Connection: close" exchange with the reply still
 * queued.  So the output filter reports nothing and the socket's output
 * buffer, once empty, tells evhttp.  Both go through kick().  (Deferring
 * the output buffer's callbacks instead, with evbuffer_defer_callbacks,
 * crashes libevent 2.1.12 when the bufferevent is freed with one pending.)
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <gnutls/x509.h>

#include "cert.h"
#include "certd/constants.h"
#include "err.h"
#include "http_conn.h"
#include "http_wire.h"
#include "log.h"

#define TLS_CHUNK	16384		/* one TLS record of plain text */

struct http_conn_creds {
	unsigned				refs;
	gnutls_certificate_credentials_t	cred;
	int					verify_client;
};

struct hconn {
	struct http_conns	*set;
	TAILQ_ENTRY(hconn)	 entry;
	struct bufferevent	*bev;		/* the filter: evhttp's */
	struct bufferevent	*sock;		/* the socket under it */
	struct evbuffer_cb_entry *drain_cb;	/* on the socket's output */
	struct evbuffer_cb_entry *queue_cb;	/* on evhttp's output */
	struct event		*deadline;
	struct event		*kick;		/* tells evhttp, next turn */
	short			 kick_event;	/* BEV_EVENT_* to report */
	unsigned		 kick_flush:1;	/* evhttp queued output */
	unsigned		 kick_write:1;	/* the reply is out */
	evutil_socket_t		 fd;		/* -1 until the first read */
	struct http_wire	*wire;		/* the bytes on their way to evhttp */
	struct evbuffer		*plain;		/* TLS: records read, for wire */
	uint64_t		 dispatched;	/* requests evhttp dispatched */
	gnutls_session_t	 tls;
	struct http_conn_creds	*creds;
	char			*subject;	/* verified client certificate */
	unsigned		 reading:1;	/* a request has begun */
	unsigned		 notify:1;	/* evhttp waits for a drain */
	unsigned		 handshaken:1;
	unsigned		 failed:1;
};

struct http_conns {
	struct event_base	*base;
	size_t			 in_max;	/* bytes evhttp may have unread */
	struct evhttp		*evh;
	struct evconnlistener	*listener;
	TAILQ_HEAD(, hconn)	 conns;
	struct hconn		**byfd;		/* for the request handlers */
	size_t			 n_fds;
	size_t			 n, max;
	int			 timeout;
	int			 tls;
	int			 paused;
	int			 dead;		/* freed when its last conn is */
	struct http_conn_creds	*creds;
};

/* --- credentials --------------------------------------------------------- */

/*
 * Credentials serving pair (what names it says what failed, in errbuf),
 * and requiring client certificates that chain to client_ca when it is
 * not NULL.
 */
static struct http_conn_creds *
creds_make(const struct cert_pair *pair, const char *what,
    const char *client_ca, char *errbuf, size_t errlen)
{
	struct http_conn_creds	*cr;
	int			 rv;

	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	cr->refs = 1;
	if ((rv = gnutls_certificate_allocate_credentials(&cr->cred)) < 0) {
		snprintf(errbuf, errlen, "%s", gnutls_strerror(rv));
		free(cr);
		return NULL;
	}
	if ((rv = cert_pair_credentials(pair, cr->cred)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", what, err_msg(rv));
		goto fail;
	}
	if (client_ca != NULL) {
		rv = gnutls_certificate_set_x509_trust_file(cr->cred, client_ca,
		    GNUTLS_X509_FMT_PEM);
		if (rv <= 0) {
			snprintf(errbuf, errlen, "tls_client_ca %s: %s",
			    client_ca, rv < 0 ? gnutls_strerror(rv) :
			    "no certificate in it");
			goto fail;
		}
		cr->verify_client = 1;
	}
	return cr;
fail:
	gnutls_certificate_free_credentials(cr->cred);
	free(cr);
	return NULL;
}

/* Credentials from the PEM text of a pair; what names it in errbuf. */
static struct http_conn_creds *
creds_of_text(const char *cert, size_t cert_len, const char *key,
    size_t key_len, const char *what, const char *client_ca, char *errbuf,
    size_t errlen)
{
	struct http_conn_creds	*cr;
	struct cert_pair	*pair;
	char			 why[CERT_WHY_MAX];

	if ((pair = cert_pair_new(cert, cert_len, key, key_len, why,
	    sizeof(why))) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", what, why);
		return NULL;
	}
	cr = creds_make(pair, what, client_ca, errbuf, errlen);
	cert_pair_free(pair);
	return cr;
}

struct http_conn_creds *
http_conn_creds_new(const char *cert, size_t cert_len, const char *key,
    size_t key_len, const char *client_ca, char *errbuf, size_t errlen)
{
	return creds_of_text(cert, cert_len, key, key_len,
	    "listener certificate and key", client_ca, errbuf, errlen);
}

struct http_conn_creds *
http_conn_creds_load(const char *cert_file, const char *key_file,
    const char *client_ca, char *errbuf, size_t errlen)
{
	struct http_conn_creds	*cr = NULL;
	gnutls_datum_t		 c = { NULL, 0 }, k = { NULL, 0 };
	const char		*bad = NULL;
	char			 what[1024];
	int			 rv;

	snprintf(what, sizeof(what), "tls_cert %s and tls_key %s", cert_file,
	    key_file);
	errno = 0;	/* gnutls_load_file sets it only when a call fails */
	if ((rv = gnutls_load_file(cert_file, &c)) < 0)
		bad = cert_file;
	else if ((rv = gnutls_load_file(key_file, &k)) < 0)
		bad = key_file;
	if (bad != NULL)
		snprintf(errbuf, errlen, "%s: cannot read %s: %s", what, bad,
		    errno != 0 ? strerror(errno) : gnutls_strerror(rv));
	else
		cr = creds_of_text((const char *)c.data, c.size,
		    (const char *)k.data, k.size, what, client_ca, errbuf,
		    errlen);
	util_wipe(k.data, k.size);
	gnutls_free(k.data);
	gnutls_free(c.data);
	return cr;
}

void
http_conn_creds_unref(struct http_conn_creds *cr)
{
	if (cr == NULL || --cr->refs > 0)
		return;
	gnutls_certificate_free_credentials(cr->cred);
	free(cr);
}

/* --- connection life --------------------------------------------------- */

static void
resume_listener(struct http_conns *set)
{
	if (set->paused && set->n < set->max && set->listener != NULL) {
		evconnlistener_enable(set->listener);
		set->paused = 0;
	}
}

/*
 * Tell evhttp, on the next loop turn, that its reply is out or that the
 * connection failed.  Its callbacks are called directly rather than through
 * bufferevent_trigger: once evhttp has freed the bufferevent (its
 * callbacks are then NULL) the memory lives on until libevent finalizes
 * it, and a trigger on it then would take and drop a reference from zero
 * and finalize it twice.
 */
static void
kick(evutil_socket_t fd, short what, void *arg)
{
	struct hconn		*c = arg;
	struct bufferevent	*bev = c->bev;
	bufferevent_data_cb	 rcb, wcb;
	bufferevent_event_cb	 ecb;
	void			*cbarg;
	short			 ev = c->kick_event;

	(void)fd;
	(void)what;
	bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
	if (ecb == NULL)		/* evhttp is done with it */
		return;
	if (c->kick_flush) {
		c->kick_flush = 0;
		bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
	}
	if (ev != 0) {
		c->kick_event = 0;
		c->kick_write = 0;
		bufferevent_incref(bev);
		ecb(bev, ev, cbarg);
		bufferevent_decref(bev);
		return;
	}
	/* Only when all is out: the flush above may have queued more. */
	if (c->kick_write) {
		c->kick_write = 0;
		if (wcb != NULL &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
		    evbuffer_get_length(bufferevent_get_output(c->sock)) == 0) {
			bufferevent_incref(bev);
			wcb(bev, cbarg);
			bufferevent_decref(bev);
		}
	}
}

/* End the connection: evhttp frees it (and so this) from its callback. */
static void
conn_fail(struct hconn *c, short what)
{
	if (c->failed)
		return;
	c->failed = 1;
	c->kick_event = what;
	event_active(c->kick, EV_TIMEOUT, 0);
}

static void
deadline_passed(evutil_socket_t fd, short what, void *arg)
{
	struct hconn	*c = arg;

	(void)fd;
	(void)what;
	log_info("http request not complete in %d s, closing fd=%d",
	    c->set->timeout, (int)c->fd);
	conn_fail(c, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

/*
 * Bytes arrived: note the fd, start a request's clock, and end a client
 * that sends more than evhttp would take while it has not read what it
 * was sent (evhttp keeps reading while it writes a reply, to notice a
 * close, and would keep whatever a client pipelines).
 */
static int
conn_read(struct hconn *c)
{
	struct http_conns	*set = c->set;
	struct timeval		 tv = { set->timeout, 0 };

	if (c->failed)
		return -1;
	if (c->fd < 0) {
		c->fd = bufferevent_getfd(c->sock);
		if (c->fd < 0 || (size_t)c->fd >= set->n_fds) {
			log_warn("http connection fd=%d beyond the table, closing",
			    (int)c->fd);
			conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
			return -1;
		}
		set->byfd[c->fd] = c;
	}
	if (!c->reading) {
		c->reading = 1;
		evtimer_add(c->deadline, &tv);
	}
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > set->in_max) {
		log_info("http client sent over %zu bytes it has not had "
		    "answered, closing fd=%d", set->in_max, (int)c->fd);
		conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
		return -1;
	}
	return 0;
}

/* evhttp queued output, perhaps with writing still disabled. */
static void
out_queued(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct hconn	*c = arg;

	(void)buf;
	if (info->n_added > 0 && !c->kick_flush) {
		c->kick_flush = 1;
		event_active(c->kick, EV_TIMEOUT, 0);
	}
}

/* The socket's output emptied: a reply evhttp handed over is out. */
static void
sock_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct hconn	*c = arg;

	if (info->n_deleted == 0 || !c->notify ||
	    evbuffer_get_length(buf) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return;
	c->notify = 0;
	c->kick_write = 1;
	event_active(c->kick, EV_TIMEOUT, 0);
}

/*
 * Free c and what it holds but its two bufferevents: all of it, or what
 * conn_new made before it failed (the rest is NULL).
 */
static void
conn_release(struct hconn *c)
{
	http_wire_free(c->wire);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->kick != NULL)
		event_free(c->kick);
	free(c->subject);
	if (c->plain != NULL)
		evbuffer_free(c->plain);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);	/* before its credentials */
	http_conn_creds_unref(c->creds);
	free(c);
}

/* Called by libevent when evhttp's bufferevent is finally freed. */
static void
conn_free(void *arg)
{
	struct hconn		*c = arg;
	struct http_conns	*set = c->set;

	if (c->drain_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->sock),
		    c->drain_cb);
	if (c->queue_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev),
		    c->queue_cb);
	if (c->fd >= 0 && set->byfd[c->fd] == c)
		set->byfd[c->fd] = NULL;
	TAILQ_REMOVE(&set->conns, c, entry);
	set->n--;
	conn_release(c);
	if (set->dead) {
		if (set->n == 0)
			http_conn_free(set);
	} else
		resume_listener(set);
}

/* --- plain text ---------------------------------------------------------- */

/* Move up to lim bytes (all when lim < 0); how many, or -1. */
static int
move_bytes(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim)
{
	size_t	n = evbuffer_get_length(src);

	if (lim >= 0 && n > (size_t)lim)
		n = (size_t)lim;
	return n == 0 ? 0 : evbuffer_remove_buffer(src, dst, n);
}

/*
 * Request bytes from src to evhttp's dst, through http_wire.c.  The filter's
 * limit is not applied: it comes from a read high-water mark, which evhttp
 * does not set, and a head must go whole.
 */
static enum bufferevent_filter_result
to_evhttp(struct hconn *c, struct evbuffer *src, struct evbuffer *dst)
{
	size_t	before = evbuffer_get_length(dst);

	if (http_wire_pass(c->wire, src, dst) != 0) {
		log_warn("http out of memory reading fd=%d, closing",
		    (int)c->fd);
		conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
		return BEV_ERROR;
	}
	return evbuffer_get_length(dst) > before ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result
plain_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	(void)lim;
	(void)mode;
	if (conn_read(arg) != 0)
		return BEV_ERROR;
	return to_evhttp(arg, src, dst);
}

/*
 * Returns "need more" even when it moved everything, so that the filter
 * does not report the write done: sock_drained does, later.
 */
static enum bufferevent_filter_result
plain_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct hconn	*c = arg;
	int		 n;

	(void)mode;
	if ((n = move_bytes(src, dst, lim)) < 0)
		return BEV_ERROR;
	if (n > 0)
		c->notify = 1;
	return BEV_NEED_MORE;
}

/* --- TLS ----------------------------------------------------------------- */

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct hconn	*c = p;
	int		 n;

	n = evbuffer_remove(bufferevent_get_input(c->sock), buf, len);
	if (n <= 0) {
		gnutls_transport_set_errno(c->tls, EAGAIN);
		return -1;
	}
	return n;
}

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct hconn	*c = p;

	if (evbuffer_add(bufferevent_get_output(c->sock), buf, len) != 0) {
		gnutls_transport_set_errno(c->tls, ENOMEM);
		return -1;
	}
	return (ssize_t)len;
}

/* The verified client certificate's subject, kept on the connection. */
static void
tls_subject(struct hconn *c)
{
	const gnutls_datum_t	*peers;
	gnutls_x509_crt_t	 crt;
	gnutls_datum_t		 dn = { NULL, 0 };
	unsigned		 n = 0;

	if ((peers = gnutls_certificate_get_peers(c->tls, &n)) == NULL ||
	    n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0 && dn.size > 0 &&
	    dn.size <= CERTD_TOKEN_SUBJECT_MAX)
		c->subject = strndup((const char *)dn.data, dn.size);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

static enum bufferevent_filter_result
tls_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct hconn		*c = arg;
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	(void)src;
	(void)lim;		/* as in to_evhttp */
	(void)mode;
	if (conn_read(c) != 0)
		return BEV_ERROR;
	if (!c->handshaken) {
		int rv = gnutls_handshake(c->tls);

		if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED)
			return BEV_NEED_MORE;
		if (rv < 0) {
			log_info("tls handshake failed fd=%d: %s", (int)c->fd,
			    gnutls_strerror(rv));
			conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
			return BEV_ERROR;
		}
		c->handshaken = 1;
		if (c->creds->verify_client)
			tls_subject(c);
	}
	/* Plain text to c->plain, whence http_wire.c passes it on. */
	for (;;) {
		if (evbuffer_reserve_space(c->plain, TLS_CHUNK, &v, 1) < 1)
			return BEV_ERROR;
		if (v.iov_len > TLS_CHUNK)
			v.iov_len = TLS_CHUNK;
		n = gnutls_record_recv(c->tls, v.iov_base, v.iov_len);
		if (n > 0) {
			v.iov_len = (size_t)n;
			evbuffer_commit_space(c->plain, &v, 1);
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			break;
		if (n == 0) {		/* close_notify */
			conn_fail(c, BEV_EVENT_READING | BEV_EVENT_EOF);
			break;
		}
		if (!gnutls_error_is_fatal((int)n) &&
		    n != GNUTLS_E_REHANDSHAKE)
			continue;
		log_info("tls record error fd=%d: %s", (int)c->fd,
		    gnutls_strerror((int)n));
		conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
		return to_evhttp(c, c->plain, dst) == BEV_OK ? BEV_OK :
		    BEV_ERROR;
	}
	return to_evhttp(c, c->plain, dst);
}

/* As plain_out, through the record layer. */
static enum bufferevent_filter_result
tls_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct hconn		*c = arg;
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	(void)dst;
	(void)lim;
	(void)mode;
	if (c->failed || !c->handshaken)
		return BEV_NEED_MORE;
	while (evbuffer_peek(src, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		n = gnutls_record_send(c->tls, v.iov_base,
		    v.iov_len < TLS_CHUNK ? v.iov_len : TLS_CHUNK);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			break;		/* not with tls_push; come back later */
		if (n < 0) {
			log_info("tls send failed fd=%d: %s", (int)c->fd,
			    gnutls_strerror((int)n));
			conn_fail(c, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
			return BEV_ERROR;
		}
		evbuffer_drain(src, (size_t)n);
		c->notify = 1;
	}
	return BEV_NEED_MORE;
}

static gnutls_typed_vdata_st client_purpose = {
	GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0
};

static int
tls_start(struct hconn *c, struct http_conn_creds *cr)
{
	gnutls_session_t	s;

	if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL) < 0)
		return -1;
	if (gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cr->cred) < 0) {
		gnutls_deinit(s);
		return -1;
	}
	if (cr->verify_client) {
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		/* a chain to the CA, and a certificate meant for clients */
		gnutls_session_set_verify_cert2(s, &client_purpose, 1, 0);
	}
	gnutls_transport_set_ptr(s, c);
	gnutls_transport_set_pull_function(s, tls_pull);
	gnutls_transport_set_push_function(s, tls_push);
	c->tls = s;
	c->creds = cr;
	cr->refs++;
	return 0;
}

/* --- evhttp's hook ------------------------------------------------------- */

/*
 * A new connection; evhttp sets its socket right after.  On NULL (out of
 * memory) evhttp makes a plain bufferevent of its own, which this file
 * does not know: on a TLS listener http.c answers nothing on it.
 */
static struct bufferevent *
conn_new(struct event_base *base, void *arg)
{
	struct http_conns	*set = arg;
	struct hconn		*c;
	int			 tls_ok;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->set = set;
	c->fd = -1;
	if ((c->deadline = evtimer_new(base, deadline_passed, c)) == NULL ||
	    (c->kick = event_new(base, -1, 0, kick, c)) == NULL ||
	    (c->sock = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->wire = http_wire_new()) == NULL ||
	    (set->tls && (c->plain = evbuffer_new()) == NULL))
		goto fail;
	tls_ok = !set->tls || (set->creds != NULL && tls_start(c, set->creds) == 0);
	c->bev = bufferevent_filter_new(c->sock, set->tls ? tls_in : plain_in,
	    set->tls ? tls_out : plain_out, BEV_OPT_CLOSE_ON_FREE, conn_free, c);
	if (c->bev == NULL)
		goto fail;
	c->queue_cb = evbuffer_add_cb(bufferevent_get_output(c->bev),
	    out_queued, c);
	c->drain_cb = evbuffer_add_cb(bufferevent_get_output(c->sock),
	    sock_drained, c);
	TAILQ_INSERT_HEAD(&set->conns, c, entry);
	set->n++;
	if (!tls_ok) {
		log_warn("tls listener has no certificate yet: closing the "
		    "connection");
		conn_fail(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
	}
	if (set->n >= set->max && !set->paused && set->listener != NULL) {
		log_warn("http connection cap reached conns=%zu", set->n);
		evconnlistener_disable(set->listener);
		set->paused = 1;
	}
	return c->bev;
fail:
	if (c->sock != NULL)
		bufferevent_free(c->sock);
	conn_release(c);
	return NULL;
}

/* --- the set ------------------------------------------------------------- */

struct http_conns *
http_conn_new(struct event_base *base, struct evhttp *evh, size_t max_conns,
    size_t in_max, int timeout, int tls)
{
	struct http_conns	*set;
	struct rlimit		 rl;

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->base = base;
	set->evh = evh;
	TAILQ_INIT(&set->conns);
	set->max = max_conns;
	set->in_max = in_max;
	set->timeout = timeout;
	set->tls = tls;
	set->n_fds = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < set->n_fds)
		set->n_fds = (size_t)rl.rlim_cur;
	if (set->max > set->n_fds / 2)	/* a connection beyond the table ends */
		set->max = set->n_fds / 2;
	if ((set->byfd = calloc(set->n_fds, sizeof(*set->byfd))) == NULL) {
		free(set);
		return NULL;
	}
	evhttp_set_bevcb(evh, conn_new, set);
	return set;
}

/*
 * evhttp_free has freed the connections' bufferevents, but libevent runs
 * their finalizers later (at the latest in event_base_free): the set stays
 * until the last one has reported.
 */
void
http_conn_free(struct http_conns *set)
{
	struct hconn	*c;

	if (set == NULL)
		return;
	if (!set->dead) {
		set->dead = 1;
		TAILQ_FOREACH(c, &set->conns, entry) {
			event_del(c->deadline);
			event_del(c->kick);
		}
		http_conn_creds_unref(set->creds);
		set->creds = NULL;
	}
	if (set->n > 0)
		return;
	free(set->byfd);
	free(set);
}

void
http_conn_set_listener(struct http_conns *set, struct evconnlistener *l)
{
	set->listener = l;
	set->paused = 0;
}

void
http_conn_accept_again(struct http_conns *set)
{
	if (!set->paused && set->listener != NULL)
		evconnlistener_enable(set->listener);
}

void
http_conn_set_creds(struct http_conns *set, struct http_conn_creds *cr)
{
	http_conn_creds_unref(set->creds);
	set->creds = cr;
}

static struct hconn *
conn_of(struct http_conns *set, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent	*bev;
	evutil_socket_t		 fd;
	struct hconn		*c;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (fd = bufferevent_getfd(bev)) < 0 || (size_t)fd >= set->n_fds ||
	    (c = set->byfd[fd]) == NULL || c->bev != bev)
		return NULL;
	return c;
}

void
http_conn_dispatched(struct http_conns *set, struct evhttp_request *req)
{
	struct hconn	*c = conn_of(set, req);

	if (c == NULL)
		return;
	c->dispatched++;
	if (c->reading) {
		c->reading = 0;
		event_del(c->deadline);
	}
}

/*
 * evhttp dispatches a connection's requests one at a time, in order, and
 * every one that it did not refuse itself (refusing, it closes); so the
 * count of dispatched requests numbers them as http_wire.c does.
 */
int
http_conn_refused(struct http_conns *set, struct evhttp_request *req,
    const char **field, const char **reason)
{
	struct hconn	*c = conn_of(set, req);
	uint64_t	 n;

	if (c == NULL)
		return 0;
	n = http_wire_refused(c->wire, field, reason);
	return n != 0 && n == c->dispatched;
}

int
http_conn_known(struct http_conns *set, struct evhttp_request *req)
{
	return conn_of(set, req) != NULL;
}

const char *
http_conn_subject(struct http_conns *set, struct evhttp_request *req)
{
	struct hconn	*c = conn_of(set, req);

	return c != NULL ? c->subject : NULL;
}

int
http_conn_is_tls(const struct http_conns *set)
{
	return set->tls;
}

size_t
http_conn_count(const struct http_conns *set)
{
	return set->n;
}

size_t
http_conn_unsent(const struct http_conns *set)
{
	const struct hconn	*c;
	size_t			 n = 0;

	TAILQ_FOREACH(c, &set->conns, entry)
		n += evbuffer_get_length(bufferevent_get_output(c->bev)) +
		    evbuffer_get_length(bufferevent_get_output(c->sock));
	return n;
}
