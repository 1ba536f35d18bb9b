/* SPDX-License-Identifier: MIT */
/*
 * The REST listener's connections, under evhttp: counted from accept to
 * close, a deadline on each request, and GnuTLS on a TLS listener.  See
 * http_conn.c for how it sits between evhttp and the socket.
 */
#ifndef CERTD_HTTP_CONN_H
#define CERTD_HTTP_CONN_H

#include <stddef.h>

#include <gnutls/gnutls.h>

struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_request;

/* A listener certificate and key (and the CAs of client certificates). */
struct http_conn_creds;

/*
 * Credentials from PEM text (a chain, leaf first, and its key, loaded by
 * cert.c's cert_pair_new) and, when client_ca is not NULL, the file of CAs
 * a client certificate must chain to.  NULL with a reason in errbuf.
 */
struct http_conn_creds *http_conn_creds_new(const char *cert,
		    size_t cert_len, const char *key, size_t key_len,
		    const char *client_ca, char *errbuf, size_t errlen);

/* As http_conn_creds_new, the certificate and key read from files. */
struct http_conn_creds *http_conn_creds_load(const char *cert_file,
		    const char *key_file, const char *client_ca, char *errbuf,
		    size_t errlen);

/* Drop the caller's reference (connections keep their own).  NULL is ok. */
void		 http_conn_creds_unref(struct http_conn_creds *cr);

/* All connections of one listener: the handle of this file's functions. */
struct http_conns;

/*
 * Connections of evh, at most max_conns at a time, each request to arrive
 * whole within timeout seconds of its first byte, none to have more than
 * in_max bytes waiting for evhttp.  tls: whether the listener speaks TLS
 * (credentials come from http_conn_set_creds).
 */
struct http_conns *http_conn_new(struct event_base *base, struct evhttp *evh,
		    size_t max_conns, size_t in_max, int timeout, int tls);
void		 http_conn_free(struct http_conns *set);

/* The listener to pause at the cap; NULL before the listener goes. */
void		 http_conn_set_listener(struct http_conns *set,
		    struct evconnlistener *l);

/* After an accept error's pause: accept again, unless paused at the cap. */
void		 http_conn_accept_again(struct http_conns *set);

/*
 * Credentials for new TLS connections; takes the caller's reference.
 * Connections already open keep theirs.  NULL: handshakes fail until set.
 */
void		 http_conn_set_creds(struct http_conns *set,
		    struct http_conn_creds *cr);

/*
 * A request was read whole: its deadline is over.  Call once for every
 * request evhttp dispatches, before http_conn_refused.
 */
void		 http_conn_dispatched(struct http_conns *set,
		    struct evhttp_request *req);

/*
 * Whether req is one whose bytes broke HTTP/1.1 framing (http_wire.c): then
 * what evhttp parsed is a stand-in, and *field and *reason say what was
 * wrong; answer 400 and close the connection.
 */
int		 http_conn_refused(struct http_conns *set,
		    struct evhttp_request *req, const char **field,
		    const char **reason);

/* Whether req came on a connection of set (not one evhttp made alone). */
int		 http_conn_known(struct http_conns *set,
		    struct evhttp_request *req);

/*
 * The subject DN (RFC 4514) of the verified client certificate of req's
 * connection, or NULL.  Valid while the request is being dispatched.
 */
const char	*http_conn_subject(struct http_conns *set,
		    struct evhttp_request *req);

int		 http_conn_is_tls(const struct http_conns *set);
size_t		 http_conn_count(const struct http_conns *set);

/* Reply bytes accepted from evhttp and not yet written to any socket. */
size_t		 http_conn_unsent(const struct http_conns *set);

#endif
