/* SPDX-License-Identifier: MIT */
/*
 * REST listener.  evhttp does the HTTP; this file sets its limits, routes
 * the path, authenticates the token and answers every failure with the
 * Rainbond envelope.  Handlers in http_certs.c get a request whose route,
 * method, token and team were already checked.
 *
 * Connection cap: libevent 2.1 has no connection limit of its own, so
 * connections are counted from their first request (evhttp gives no hook
 * earlier) and the listener stops accepting at the cap until one closes.
 * A connection that never sends a request is ended by the read timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "err.h"
#include "http.h"
#include "log.h"
#include "tokens.h"
#include "util.h"

/*
 * Bodies up to CERTD_BODY_MAX are read; a larger one is answered 413 with
 * the envelope by the handler as long as it is under this hard cap, above
 * which evhttp itself refuses it (with its own plain 413 page).
 */
#define HTTP_BODY_HARD_MAX	(4 * CERTD_BODY_MAX)
#define HTTP_FD_TABLE_MAX	65536

struct http {
	struct event_base		*base;
	struct evhttp			*evh;
	struct evhttp_bound_socket	*bound;
	struct service			*svc;
	const struct tokens		*tokens;
	uint16_t			 port;

	size_t				 inflight;	/* http_req not yet replied */
	int				 draining;
	http_drained_cb			 drained_cb;
	void				*drained_arg;

	/* conns[fd] is the connection on fd once it made a request. */
	struct evhttp_connection	**conns;
	size_t				 n_fds;
	size_t				 n_conns;
	size_t				 max_conns;
	int				 paused;	/* listener disabled at the cap */
	struct event			*ev_accept;	/* resumes after EMFILE */

	struct http_stats		 stats;
	http_metrics_cb			 metrics_cb;
	void				*metrics_arg;
};

const char *const http_route_names[HTTP_ROUTES] = {
	"healthz", "metrics", "certificates", "certificate", "subscribers",
	"history", "rollback", "other",
};
const int http_statuses[HTTP_STATUSES] = {
	200, 204, 400, 401, 403, 404, 405, 412, 413, 503, 0,
};
const double http_latency_buckets[HTTP_LATENCY_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
};

static double
now_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Count one answered request. */
static void
count(struct http *h, int route, int status, double start)
{
	struct http_stats	*st = &h->stats;
	double			 secs = now_mono() - start;
	size_t			 i;

	for (i = 0; i < HTTP_STATUSES - 1 && http_statuses[i] != status; i++)
		;
	st->requests[route][i]++;
	st->latency_count[route]++;
	st->latency_sum[route] += secs;
	for (i = 0; i < HTTP_LATENCY_BUCKETS; i++)
		if (secs <= http_latency_buckets[i])
			st->latency_le[route][i]++;
}

const struct http_stats *
http_get_stats(struct http *h)
{
	h->stats.connections = h->n_conns;
	return &h->stats;
}

void
http_set_metrics(struct http *h, http_metrics_cb cb, void *arg)
{
	h->metrics_cb = cb;
	h->metrics_arg = arg;
}

static const char	PREFIX[] = "/openapi/v1/teams/";

static void
http_check_drained(struct http *h)
{
	if (h->draining && h->inflight == 0 && h->drained_cb != NULL) {
		http_drained_cb	cb = h->drained_cb;

		h->drained_cb = NULL;
		cb(h->drained_arg);
	}
}

static void
req_done(struct http_req *r, int status)
{
	struct http	*h = r->http;

	count(h, r->route, status, r->start);
	free(r);
	h->inflight--;
	http_check_drained(h);
}

static int
dump_to_evbuffer(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

/*
 * Send status with body.  For HEAD the length is announced and the body
 * left out: libevent 2.1 would otherwise write it without a length.
 */
static void
send_body(struct evhttp_request *req, int status, struct evbuffer *buf)
{
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	char			 len[32];

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof(len), "%zu",
		    buf != NULL ? evbuffer_get_length(buf) : 0);
		evhttp_remove_header(out, "Content-Length");
		evhttp_add_header(out, "Content-Length", len);
		evhttp_send_reply(req, status, NULL, NULL);
	} else
		evhttp_send_reply(req, status, NULL, buf);
}

static void
send_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer	*buf = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json; charset=utf-8");
	if (buf == NULL || json_dump_callback(body, dump_to_evbuffer, buf,
	    JSON_COMPACT) != 0) {
		if (buf != NULL)
			evbuffer_drain(buf, evbuffer_get_length(buf));
		status = 503;
	}
	send_body(req, status, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_decref(body);
}

/* The Rainbond envelope for err. */
static json_t *
envelope(int err, const char *field, const char *reason)
{
	json_t	*bean = json_object();

	if (bean != NULL && field != NULL)
		json_object_set_new(bean, "field", json_string(field));
	if (bean != NULL && reason != NULL)
		json_object_set_new(bean, "reason", json_string(reason));
	return json_pack("{s:i, s:s, s:s, s:{s:o, s:[]}}",
	    "code", err_status(err), "msg", err_msg(err),
	    "msg_show", err_msg_show(err), "data", "bean",
	    bean != NULL ? bean : json_object(), "list");
}

static void
send_error(struct evhttp_request *req, int err, const char *field,
    const char *reason)
{
	json_t	*body = envelope(err, field, reason);

	if (body == NULL) {
		evhttp_send_reply(req, 503, NULL, NULL);
		return;
	}
	send_json(req, err_status(err), body);
}

void
http_reply_json(struct http_req *r, int status, json_t *body)
{
	if (body == NULL) {
		send_error(r->req, CERTD_ERR_NOMEM, NULL, NULL);
		status = err_status(CERTD_ERR_NOMEM);
	} else
		send_json(r->req, status, body);
	req_done(r, status);
}

void
http_reply_empty(struct http_req *r, int status)
{
	send_body(r->req, status, NULL);
	req_done(r, status);
}

void
http_reply_error(struct http_req *r, int err, const char *field,
    const char *reason)
{
	send_error(r->req, err, field, reason);
	req_done(r, err_status(err));
}

/* --- connections ----------------------------------------------------- */

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http		*h = arg;
	struct bufferevent	*bev = evhttp_connection_get_bufferevent(evcon);
	evutil_socket_t		 fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (fd < 0 || (size_t)fd >= h->n_fds || h->conns[fd] != evcon)
		return;
	h->conns[fd] = NULL;
	h->n_conns--;
	if (h->paused && h->n_conns < h->max_conns && h->bound != NULL) {
		evconnlistener_enable(evhttp_bound_socket_get_listener(h->bound));
		h->paused = 0;
	}
}

/* Count the connection of req on its first request. */
static void
conn_seen(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent	*bev;
	evutil_socket_t		 fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	fd = bufferevent_getfd(bev);
	if (fd < 0 || (size_t)fd >= h->n_fds || h->conns[fd] == evcon)
		return;
	h->conns[fd] = evcon;
	h->n_conns++;
	evhttp_connection_set_closecb(evcon, conn_closed, h);
	if (h->n_conns >= h->max_conns && !h->paused && h->bound != NULL) {
		log_warn("http connection cap reached conns=%zu", h->n_conns);
		evconnlistener_disable(evhttp_bound_socket_get_listener(h->bound));
		h->paused = 1;
	}
}

/* --- routing ----------------------------------------------------------- */

static int
is_write(int method)
{
	return method == EVHTTP_REQ_POST || method == EVHTTP_REQ_PUT ||
	    method == EVHTTP_REQ_DELETE;
}

/* The token of the Authorization header ("TOKEN" or "Bearer TOKEN"). */
static const struct token *
authenticate(struct http *h, struct evhttp_request *req)
{
	const char	*v;
	size_t		 len;

	v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (v == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "Bearer ", 7) == 0)
		for (v += 7; *v == ' ' || *v == '\t'; v++)
			;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return tokens_auth(h->tokens, v, len);
}

/* A request whose token was missing or unknown, for the audit log. */
static void
audit_denied(struct evhttp_request *req, const char *path)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const char		*auth;
	char			*addr = NULL, qpath[400];
	ev_uint16_t		 port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	auth = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	log_audit("op=auth who=http:%s:%u path=%s outcome=denied error=%s",
	    addr != NULL ? addr : "?", port,
	    log_quote(path, qpath, sizeof(qpath)),
	    auth == NULL ? "no-token" : "unknown-token");
}

static void
healthz(struct evhttp_request *req)
{
	int method = evhttp_request_get_command(req);

	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		send_error(req, CERTD_ERR_METHOD, NULL, NULL);
		return;
	}
	send_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* The certificate resources: which handler serves which method. */
static const struct http_resource {
	int		 route;		/* HTTP_ROUTE_* */
	int		 has_id;
	const char	*sub;		/* sub-resource after the id, or NULL */
	const char	*allow;		/* NULL ends the table */
	void		(*get)(struct http_req *);
	void		(*post)(struct http_req *);
	void		(*put)(struct http_req *);
	void		(*del)(struct http_req *);
} routes[] = {
	{ HTTP_ROUTE_CERTIFICATES, 0, NULL, "GET, HEAD, POST",
	    http_certs_list, http_certs_create, NULL, NULL },
	{ HTTP_ROUTE_CERTIFICATE, 1, NULL, "GET, HEAD, PUT, DELETE",
	    http_certs_get, NULL, http_certs_update, http_certs_delete },
	{ HTTP_ROUTE_SUBSCRIBERS, 1, "subscribers", "GET, HEAD",
	    http_certs_subscribers, NULL, NULL, NULL },
	{ HTTP_ROUTE_HISTORY, 1, "history", "GET, HEAD",
	    http_certs_history, NULL, NULL, NULL },
	{ HTTP_ROUTE_ROLLBACK, 1, "rollback", "POST",
	    NULL, http_certs_rollback, NULL, NULL },
	{ HTTP_ROUTE_OTHER, 0, NULL, NULL, NULL, NULL, NULL, NULL },
};

int
http_match(const char *path, int method, struct http_match *m)
{
	const char			*p, *slash, *sub = NULL;
	const struct http_resource	*rt;

	memset(m, 0, sizeof(*m));
	m->route = HTTP_ROUTE_OTHER;
	if (strcmp(path, "/healthz") == 0) {
		m->healthz = 1;
		m->route = HTTP_ROUTE_HEALTHZ;
		return 0;
	}
	if (strcmp(path, "/metrics") == 0) {
		m->route = HTTP_ROUTE_METRICS;
		return method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD ?
		    0 : (m->allow = "GET, HEAD", CERTD_ERR_METHOD);
	}
	/* /openapi/v1/teams/{team}/certificates[/{id}[/{sub}]] */
	if (strncmp(path, PREFIX, sizeof(PREFIX) - 1) != 0 ||
	    (slash = strchr(p = path + sizeof(PREFIX) - 1, '/')) == NULL ||
	    strncmp(slash, "/certificates", 13) != 0 ||
	    (slash[13] != '\0' && slash[13] != '/'))
		return CERTD_ERR_NO_ROUTE;
	m->team = p;
	m->team_len = (size_t)(slash - p);
	if ((m->has_id = slash[13] == '/')) {
		m->id_s = slash + 14;
		if ((sub = strchr(m->id_s, '/')) != NULL) {
			m->id_len = (size_t)(sub - m->id_s);
			sub++;
		} else
			m->id_len = strlen(m->id_s);
	}
	for (rt = &routes[0]; rt->allow != NULL; rt++)
		if (rt->has_id == m->has_id && (sub == NULL ? rt->sub == NULL :
		    rt->sub != NULL && strcmp(rt->sub, sub) == 0))
			break;
	if (rt->allow == NULL)
		return CERTD_ERR_NO_ROUTE;
	m->route = rt->route;
	m->allow = rt->allow;
	switch (method) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		m->handler = rt->get;
		break;
	case EVHTTP_REQ_POST:
		m->handler = rt->post;
		break;
	case EVHTTP_REQ_PUT:
		m->handler = rt->put;
		break;
	case EVHTTP_REQ_DELETE:
		m->handler = rt->del;
		break;
	default:
		break;
	}
	return m->handler != NULL ? 0 : CERTD_ERR_METHOD;
}

int
http_match_ids(const struct http_match *m, char team[CERTD_TEAM_MAX + 1],
    uint64_t *id)
{
	*id = 0;
	if (!util_team_valid(m->team, m->team_len))
		return CERTD_ERR_NO_TEAM;
	memcpy(team, m->team, m->team_len);
	team[m->team_len] = '\0';
	if (m->has_id && (util_parse_u64(m->id_s, m->id_len, UINT64_MAX,
	    id) != 0 || *id == 0))
		return CERTD_ERR_NOT_FOUND;
	return 0;
}

/* Answer err at once (no http_req yet) and count it. */
static void
reject(struct http *h, struct evhttp_request *req, int route, double start,
    int err)
{
	send_error(req, err, NULL, NULL);
	count(h, route, err_status(err), start);
}

/* GET /metrics: any token that sees every team. */
static void
metrics(struct http *h, struct evhttp_request *req, double start)
{
	const struct token	*tok = authenticate(h, req);
	struct evbuffer		*buf;

	if (tok == NULL) {
		reject(h, req, HTTP_ROUTE_METRICS, start, CERTD_ERR_UNAUTHORIZED);
		return;
	}
	if (!tok->all_teams || h->metrics_cb == NULL ||
	    (buf = evbuffer_new()) == NULL) {
		reject(h, req, HTTP_ROUTE_METRICS, start, !tok->all_teams ?
		    CERTD_ERR_FORBIDDEN : CERTD_ERR_NOMEM);
		return;
	}
	h->metrics_cb(buf, h->metrics_arg);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	send_body(req, 200, buf);
	evbuffer_free(buf);
	count(h, HTTP_ROUTE_METRICS, 200, start);
}

static void
http_route(struct evhttp_request *req, void *arg)
{
	struct http		*h = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path;
	const struct token	*tok;
	struct http_req		*r;
	struct http_match	 m;
	char			 team[CERTD_TEAM_MAX + 1];
	uint64_t		 id = 0;
	double			 start = now_mono();
	int			 method = evhttp_request_get_command(req), rv;

	conn_seen(h, req);
	if (h->draining) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reject(h, req, HTTP_ROUTE_OTHER, start, CERTD_ERR_SHUTDOWN);
		return;
	}
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL || (rv = http_match(path, method, &m)) ==
	    CERTD_ERR_NO_ROUTE) {
		reject(h, req, HTTP_ROUTE_OTHER, start, CERTD_ERR_NO_ROUTE);
		return;
	}
	if (rv == CERTD_ERR_METHOD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", m.allow);
		reject(h, req, m.route, start, CERTD_ERR_METHOD);
		return;
	}
	if (m.healthz) {
		healthz(req);
		count(h, HTTP_ROUTE_HEALTHZ, 200, start);
		return;
	}
	if (m.route == HTTP_ROUTE_METRICS) {
		metrics(h, req, start);
		return;
	}
	if ((tok = authenticate(h, req)) == NULL) {
		audit_denied(req, path);
		reject(h, req, m.route, start, CERTD_ERR_UNAUTHORIZED);
		return;
	}
	if (is_write(method) && tok->role != TOKEN_ROLE_WRITE) {
		reject(h, req, m.route, start, CERTD_ERR_FORBIDDEN);
		return;
	}
	if ((rv = http_match_ids(&m, team, &id)) != 0) {
		reject(h, req, m.route, start, rv);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		reject(h, req, m.route, start, CERTD_ERR_NOMEM);
		return;
	}
	h->inflight++;
	r->http = h;
	r->req = req;
	r->route = m.route;
	r->start = start;
	r->token = tok;
	r->method = method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method;
	r->svc = h->svc;
	r->cert_id = id;
	memcpy(r->team, team, sizeof(r->team));
	if (!token_allows_team(tok, r->team)) {
		http_reply_error(r, CERTD_ERR_NO_TEAM, NULL, NULL);
		return;
	}
	m.handler(r);
}

/* --- life cycle ---------------------------------------------------------- */

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;

	(void)fd;
	(void)what;
	if (h->bound != NULL && !h->paused)
		evconnlistener_enable(evhttp_bound_socket_get_listener(h->bound));
}

/* accept failed (EMFILE, ENFILE...): pause a second instead of spinning. */
static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct http	*h = arg;
	struct timeval	 tv = { 1, 0 };

	log_warn("http accept failed, pausing 1 s: %s", strerror(errno));
	evconnlistener_disable(l);
	evtimer_add(h->ev_accept, &tv);
}

struct http *
http_new(struct event_base *base, struct service *svc,
    const struct tokens *tokens, const char *host, uint16_t port,
    char *errbuf, size_t errlen)
{
	struct http		*h;
	struct rlimit		 rl;
	struct timeval		 tv = { CERTD_HTTP_TIMEOUT, 0 };
	struct sockaddr_storage	 ss;
	ev_socklen_t		 sslen = sizeof(ss);

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->svc = svc;
	h->tokens = tokens;
	h->n_fds = HTTP_FD_TABLE_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < h->n_fds)
		h->n_fds = (size_t)rl.rlim_cur;
	h->max_conns = CERTD_HTTP_CONN_MAX;
	if (h->max_conns > h->n_fds / 2)
		h->max_conns = h->n_fds / 2;
	if ((h->conns = calloc(h->n_fds, sizeof(*h->conns))) == NULL ||
	    (h->evh = evhttp_new(base)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	evhttp_set_max_headers_size(h->evh, CERTD_HEADERS_MAX);
	evhttp_set_max_body_size(h->evh, HTTP_BODY_HARD_MAX);
	evhttp_set_timeout_tv(h->evh, &tv);
	/* Every method evhttp parses reaches the router, which answers 405. */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evh,
	    "application/json; charset=utf-8");
	evhttp_set_gencb(h->evh, http_route, h);

	if ((h->bound = evhttp_bind_socket_with_handle(h->evh, host,
	    port)) == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s:%u: %s", host,
		    port, errno != 0 ? strerror(errno) : "bind failed");
		goto fail;
	}
	if ((h->ev_accept = evtimer_new(base, accept_resume, h)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(h->bound),
	    accept_error);
	if (getsockname(evhttp_bound_socket_get_fd(h->bound),
	    (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return h;
fail:
	http_free(h);
	return NULL;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->evh != NULL)
		evhttp_free(h->evh);
	if (h->ev_accept != NULL)
		event_free(h->ev_accept);
	free(h->conns);
	free(h);
}

void
http_set_tokens(struct http *h, const struct tokens *tokens)
{
	h->tokens = tokens;
}

uint16_t
http_port(const struct http *h)
{
	return h->port;
}

size_t
http_unsent(const struct http *h)
{
	struct bufferevent	*bev;
	size_t			 fd, n = 0;

	for (fd = 0; fd < h->n_fds; fd++)
		if (h->conns[fd] != NULL && (bev =
		    evhttp_connection_get_bufferevent(h->conns[fd])) != NULL)
			n += evbuffer_get_length(bufferevent_get_output(bev));
	return n;
}

void
http_shutdown(struct http *h, http_drained_cb cb, void *arg)
{
	if (h->bound != NULL) {
		evhttp_del_accept_socket(h->evh, h->bound);
		h->bound = NULL;
	}
	h->draining = 1;
	h->drained_cb = cb;
	h->drained_arg = arg;
	http_check_drained(h);
}
