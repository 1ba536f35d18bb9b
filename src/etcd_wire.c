/* SPDX-License-Identifier: MIT */
/*
 * The bytes under etcd.c: HTTP/1.1 POSTs to etcd's JSON gateway, plain or
 * TLS, through libcurl's multi interface on certd's libevent loop (curl's
 * sockets become events, its timer an event; no thread).  Debian's
 * libcurl4-gnutls does TLS with GnuTLS.  doc/fleet.md says why libcurl and
 * not libevent's own HTTP client: the latter cannot run over a GnuTLS
 * session in libevent 2.1.
 *
 * Connections are curl's: kept alive and reused per endpoint, one per
 * transfer in flight.  A transfer ends once, with the HTTP status and the
 * body (0 and curl's reason when no answer came), unless cancelled.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "etcd_wire.h"

struct etcd_wire {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	struct curl_slist	*headers;
	char			*ca, *cert, *key;
};

struct etcd_wire_xfer {
	struct etcd_wire		*w;
	CURL			*easy;
	char			*body;
	struct evbuffer		*in;		/* the answer, not streamed */
	etcd_wire_data_cb		 data;
	etcd_wire_done_cb		 done;
	void			*arg;
	char			 err[CURL_ERROR_SIZE];
};

/* curl wants to know of its socket s: what (CURL_POLL_*) to wait for. */
static void	etcd_wire_event(evutil_socket_t fd, short what, void *arg);

static int
etcd_wire_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct etcd_wire	*w = userp;
	struct event	*ev = socketp;
	short		 flags;

	(void)easy;
	if (ev != NULL) {
		event_free(ev);
		curl_multi_assign(w->multi, s, NULL);
	}
	if (what == CURL_POLL_REMOVE)
		return 0;
	flags = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	    (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if ((ev = event_new(w->base, s, flags, etcd_wire_event, w)) == NULL ||
	    event_add(ev, NULL) != 0) {
		if (ev != NULL)
			event_free(ev);
		return -1;
	}
	curl_multi_assign(w->multi, s, ev);
	return 0;
}

/* curl's one timer: the loop runs curl when it fires. */
static int
etcd_wire_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct etcd_wire	*w = userp;
	struct timeval	 tv;

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(w->timer);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(w->timer, &tv);
}

static void
etcd_wire_xfer_free(struct etcd_wire_xfer *x)
{
	curl_multi_remove_handle(x->w->multi, x->easy);
	curl_easy_cleanup(x->easy);
	if (x->in != NULL)
		evbuffer_free(x->in);
	free(x->body);
	free(x);
}

/* The transfers curl finished: each one's callback, then it is freed. */
static void
etcd_wire_reap(struct etcd_wire *w)
{
	struct etcd_wire_xfer	*x;
	CURLMsg			*m;
	long			 status;
	int			 left;

	while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		status = 0;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE,
			    &status);
		else if (x->err[0] == '\0')
			snprintf(x->err, sizeof(x->err), "%s",
			    curl_easy_strerror(m->data.result));
		curl_multi_remove_handle(w->multi, x->easy);
		x->done(status, x->in != NULL ?
		    (const char *)evbuffer_pullup(x->in, -1) : NULL,
		    x->in != NULL ? evbuffer_get_length(x->in) : 0,
		    status != 0 ? "" : x->err, x->arg);
		etcd_wire_xfer_free(x);
	}
}

static void
etcd_wire_event(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_wire	*w = arg;
	int		 running;

	curl_multi_socket_action(w->multi, fd, (what & EV_READ ?
	    CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0),
	    &running);
	etcd_wire_reap(w);
}

static void
etcd_wire_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_wire	*w = arg;
	int		 running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	etcd_wire_reap(w);
}

static size_t
etcd_wire_write(char *p, size_t size, size_t n, void *arg)
{
	struct etcd_wire_xfer	*x = arg;

	if (x->data != NULL)
		return x->data(p, size * n, x->arg) == 0 ? size * n : 0;
	return evbuffer_add(x->in, p, size * n) == 0 ? size * n : 0;
}

struct etcd_wire_xfer *
etcd_wire_post(struct etcd_wire *w, const char *url, const char *body,
    size_t len, const struct etcd_wire_limits *lim, etcd_wire_data_cb data,
    etcd_wire_done_cb done, void *arg)
{
	struct etcd_wire_xfer	*x;
	CURL			*c;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->w = w;
	x->data = data;
	x->done = done;
	x->arg = arg;
	if ((x->body = malloc(len + 1)) == NULL ||
	    (data == NULL && (x->in = evbuffer_new()) == NULL) ||
	    (x->easy = c = curl_easy_init()) == NULL) {
		if (x->in != NULL)
			evbuffer_free(x->in);
		free(x->body);
		free(x);
		return NULL;
	}
	memcpy(x->body, body, len);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, etcd_wire_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->err);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, lim->connect_ms);
	if (lim->total_ms != 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, lim->total_ms);
	if (lim->idle_s != 0) {
		/* a stream that stays silent this long has broken */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, lim->idle_s);
	}
	if (w->ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, w->ca);
	if (w->cert != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, w->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, w->key);
	}
	if (curl_multi_add_handle(w->multi, c) != CURLM_OK) {
		curl_easy_cleanup(c);
		x->easy = NULL;
		free(x->body);
		if (x->in != NULL)
			evbuffer_free(x->in);
		free(x);
		return NULL;
	}
	return x;
}

void
etcd_wire_cancel(struct etcd_wire_xfer *x)
{
	if (x != NULL)
		etcd_wire_xfer_free(x);
}

struct etcd_wire *
etcd_wire_new(struct event_base *base, const struct etcd_tls *tls, char *err,
    size_t errlen)
{
	struct etcd_wire			*w;
	const curl_version_info_data	*v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot start libcurl");
		return NULL;
	}
	/* TLS is GnuTLS's, as everywhere in certd (libcurl4-gnutls) */
	v = curl_version_info(CURLVERSION_NOW);
	if (v->ssl_version == NULL ||
	    strncmp(v->ssl_version, "GnuTLS", 6) != 0) {
		snprintf(err, errlen, "libcurl does TLS with %s, not GnuTLS: "
		    "build certd with libcurl4-gnutls-dev",
		    v->ssl_version != NULL ? v->ssl_version : "nothing");
		curl_global_cleanup();
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		curl_global_cleanup();
		return NULL;
	}
	w->base = base;
	if ((w->multi = curl_multi_init()) == NULL ||
	    (w->timer = evtimer_new(base, etcd_wire_timeout, w)) == NULL ||
	    (w->headers = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL ||
	    /* no "Expect: 100-continue" round trip before a body */
	    curl_slist_append(w->headers, "Expect:") == NULL ||
	    (tls->ca != NULL && (w->ca = strdup(tls->ca)) == NULL) ||
	    (tls->cert != NULL && (w->cert = strdup(tls->cert)) == NULL) ||
	    (tls->key != NULL && (w->key = strdup(tls->key)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		etcd_wire_free(w);
		return NULL;
	}
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, etcd_wire_socket);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, etcd_wire_timer);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	return w;
}

/* The transfers still there have been cancelled by their owners. */
void
etcd_wire_free(struct etcd_wire *w)
{
	if (w == NULL)
		return;
	if (w->multi != NULL)
		curl_multi_cleanup(w->multi);
	if (w->timer != NULL)
		event_free(w->timer);
	curl_slist_free_all(w->headers);
	free(w->ca);
	free(w->cert);
	free(w->key);
	free(w);
	curl_global_cleanup();
}
