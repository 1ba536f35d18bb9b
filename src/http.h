/* SPDX-License-Identifier: MIT */
/*
 * The REST listener: evhttp set-up and limits, routing, authentication and
 * the Rainbond error envelope.  The certificate resource itself is in
 * http_certs.c (http_certs.h); both share the request context below.
 */
#ifndef CERTD_HTTP_H
#define CERTD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"

struct config;
struct event_base;
struct evhttp_request;
struct service;
struct tokens;
struct token;
struct http;

typedef void	(*http_drained_cb)(void *arg);

/* Renders the Prometheus text of GET /metrics into out. */
struct evbuffer;
typedef void	(*http_metrics_cb)(struct evbuffer *out, void *arg);

/* Request counters, by route and status, and latency histograms. */
enum http_route_id {
	HTTP_ROUTE_HEALTHZ,
	HTTP_ROUTE_METRICS,
	HTTP_ROUTE_CERTIFICATES,
	HTTP_ROUTE_CERTIFICATE,
	HTTP_ROUTE_SUBSCRIBERS,
	HTTP_ROUTE_HISTORY,
	HTTP_ROUTE_ROLLBACK,
	HTTP_ROUTE_OTHER,
	HTTP_ROUTES
};
#define HTTP_STATUSES		11	/* 200 204 400 401 403 404 405 412 413 503 other */
#define HTTP_LATENCY_BUCKETS	10
extern const char *const	http_route_names[HTTP_ROUTES];
extern const int		http_statuses[HTTP_STATUSES];	/* 0: other */
extern const double		http_latency_buckets[HTTP_LATENCY_BUCKETS];
struct http_stats {
	uint64_t	requests[HTTP_ROUTES][HTTP_STATUSES];
	uint64_t	latency_le[HTTP_ROUTES][HTTP_LATENCY_BUCKETS];
	uint64_t	latency_count[HTTP_ROUTES];
	double		latency_sum[HTTP_ROUTES];
	size_t		connections;
};

const struct http_stats *http_get_stats(struct http *h);

/* Serve GET /metrics through cb (for tokens with teams=*). */
void		 http_set_metrics(struct http *h, http_metrics_cb cb, void *arg);

/*
 * Listen on cfg's listen address: plain HTTP (refused beyond loopback
 * unless allow_plain_http), or TLS with tls_cert, tls_key and, to require
 * client certificates, tls_client_ca.  Tokens are borrowed and may be
 * swapped with http_set_tokens.  Returns NULL with a one-line reason.
 */
struct http	*http_new(struct event_base *base, struct service *svc,
		    const struct tokens *tokens, const struct config *cfg,
		    char *errbuf, size_t errlen);
void		 http_free(struct http *h);
void		 http_set_tokens(struct http *h, const struct tokens *tokens);

/*
 * At shutdown, before the store goes: finish the bodies and replies the
 * REST worker holds (a decoded PUT still reaches the store), and from then
 * on decode and write JSON on the calling thread.
 */
void		 http_stop_work(struct http *h);

/* Port actually bound (useful with port 0). */
uint16_t	 http_port(const struct http *h);

/* Whether the listener speaks TLS. */
int		 http_is_tls(const struct http *h);

/*
 * SIGHUP: read the listener's certificate and key files and the client CA
 * file again (a certificate held in certd is taken from its record as it
 * is now).  New connections get them; on failure nothing changes.  0, or
 * -1 with a reason.
 */
int		 http_reload_tls(struct http *h, const struct config *cfg,
		    char *errbuf, size_t errlen);

/* Every committed change: the listener certificate may be the one. */
struct store_change;
void		 http_store_changed(struct http *h,
		    const struct store_change *ch);

/*
 * Stop accepting connections (requests on open ones are answered 503,
 * Connection: close); call cb once every request already handed to the
 * service has been answered (at once if none).
 */
void		 http_shutdown(struct http *h, http_drained_cb cb, void *arg);

/* What a request path names (http_match); slices point into the path. */
struct http_req;
struct http_match {
	int		 healthz;
	int		 route;		/* HTTP_ROUTE_* */
	const char	*team;		/* not yet checked */
	size_t		 team_len;
	int		 has_id;
	const char	*id_s;		/* not yet checked */
	size_t		 id_len;
	const char	*allow;		/* methods of the resource, for 405 */
	const char	*params;	/* query parameters it takes: "a, b" */
	void		(*handler)(struct http_req *);
};

/*
 * Route path for method (EVHTTP_REQ_*): 0, CERTD_ERR_NO_ROUTE, or
 * CERTD_ERR_METHOD (m->allow set).  One trailing slash is ignored
 * ("/metrics/" is "/metrics").  Pure: no I/O, nothing allocated.
 */
int	http_match(const char *path, int method, struct http_match *m);

/* A refused query: the parameter to blame (shown safely) and why. */
struct http_query_err {
	char	field[80];
	char	reason[128];
};

/*
 * Check a query string (NULL: none) against the parameters a route takes
 * (http_match's params): each known, each at most once, no encoded NUL.
 * Values are the handlers' to check.  Pure.  Returns 0, or
 * CERTD_ERR_BAD_REQUEST with *e naming the parameter ("query" when the
 * string does not parse).
 */
int	http_query_check(const char *query, const char *params,
	    struct http_query_err *e);

/*
 * The team and certificate id of a match: 0, CERTD_ERR_NO_TEAM (team id
 * not of [A-Za-z0-9_.-]{1,64}) or CERTD_ERR_NOT_FOUND (id not a decimal
 * integer >= 1).
 */
int	http_match_ids(const struct http_match *m,
	    char team[CERTD_TEAM_MAX + 1], uint64_t *id);

/* Bytes of replies queued and not yet written to their clients. */
size_t		 http_unsent(const struct http *h);

/* --- shared with http_certs.c ------------------------------------------ */

/*
 * One request on its way through the daemon.  Allocated when a request is
 * routed, freed by the one reply it ends with; async work holds it until
 * its completion replies.
 */
struct http_req {
	struct http		*http;
	struct evhttp_request	*req;
	int			 route;		/* HTTP_ROUTE_*, for the metrics */
	double			 start;		/* monotonic seconds */
	/*
	 * Valid while the request is routed only: a SIGHUP may swap the
	 * tokens before an async completion.  Copy what a job needs (who).
	 */
	const struct token	*token;
	int			 keys;		/* the token's keys=, copied */
	int			 method;	/* EVHTTP_REQ_* */
	char			 team[CERTD_TEAM_MAX + 1];
	uint64_t		 cert_id;	/* 0 when the path has none */
	struct service		*svc;
};

/*
 * Run job on the REST worker (workq.h): its done, on the loop, ends in the
 * request's one reply.
 */
struct workq_job;
void	http_submit(struct http *h, struct workq_job *job,
	    void (*run)(struct workq_job *), void (*done)(struct workq_job *));

/*
 * Reply status with the JSON w wrote, and free w (NULL, or a writer that
 * failed, answers 503).
 */
struct json_w;
void	http_reply_json(struct http_req *r, int status, struct json_w *w);

/* Reply with an empty body. */
void	http_reply_empty(struct http_req *r, int status);

/* Reply with the error envelope for err; field/reason go to data.bean. */
void	http_reply_error(struct http_req *r, int err, const char *field,
	    const char *reason);

#endif
