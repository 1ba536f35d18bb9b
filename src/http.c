/* SPDX-License-Identifier: MIT */
/*
 * REST listener.  evhttp does the HTTP; this file sets its limits, routes
 * the path, authenticates the token and answers every failure with the
 * Rainbond envelope.  Handlers in http_certs.c get a request whose route,
 * method, token and team were already checked.
 *
 * Connections (the cap, the per-request deadline, TLS) are http_conn.c's,
 * under evhttp.  The listener's certificate is a pair of files, read again
 * on SIGHUP, or a certificate certd holds ("certd:TEAM/ALIAS"), taken up
 * again whenever that one changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
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

#include "config.h"
#include "err.h"
#include "http.h"
#include "http_certs.h"
#include "http_conn.h"
#include "json.h"
#include "log.h"
#include "record.h"
#include "service.h"
#include "store.h"
#include "tokens.h"
#include "util.h"
#include "workq.h"

/*
 * Bodies up to CERTD_BODY_MAX are read; a larger one is answered 413 with
 * the envelope by the handler as long as it is under CERTD_BODY_HARD_MAX,
 * above which evhttp itself refuses it (with its own plain 413 page).
 */

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

	struct http_conns		*conns;
	struct event			*ev_accept;	/* resumes after EMFILE */
	struct workq			*work;		/* JSON bodies in and out */

	/* TLS: the listener certificate held in certd, if it is one. */
	char				 ref_team[CERTD_TEAM_MAX + 1];
	char				*ref_alias;
	char				*client_ca;

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
	h->stats.connections = http_conn_count(h->conns);
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

/*
 * Send status with what w wrote, and free w.  A writer that failed, or
 * none, answers 503 without a body.  Returns the status sent.
 */
static int
send_json(struct evhttp_request *req, int status, struct json_w *w)
{
	struct evbuffer	*buf = evbuffer_new();
	const char	*text;
	size_t		 len;

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json; charset=utf-8");
	if (w == NULL || buf == NULL || json_w_done(w, &text, &len) != 0 ||
	    evbuffer_add(buf, text, len) != 0) {
		if (buf != NULL)
			evbuffer_drain(buf, evbuffer_get_length(buf));
		status = err_http_status(CERTD_ERR_NOMEM);
	}
	send_body(req, status, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_w_free(w);
	return status;
}

/* The Rainbond envelope for err. */
static struct json_w *
envelope(int err, const char *field, const char *reason)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	json_w_kint(w, "code", err_http_status(err));
	json_w_kstr(w, "msg", err_msg(err));
	json_w_kstr(w, "msg_show", err_msg_show(err));
	json_w_key(w, "data");
	json_w_obj(w);
	json_w_key(w, "bean");
	json_w_obj(w);
	if (field != NULL)
		json_w_kstr(w, "field", field);
	if (reason != NULL)
		json_w_kstr(w, "reason", reason);
	json_w_obj_end(w);
	json_w_key(w, "list");
	json_w_arr(w);
	json_w_arr_end(w);
	json_w_obj_end(w);
	json_w_obj_end(w);
	return w;
}

static void
send_error(struct evhttp_request *req, int err, const char *field,
    const char *reason)
{
	send_json(req, err_http_status(err), envelope(err, field, reason));
}

void
http_reply_json(struct http_req *r, int status, struct json_w *w)
{
	req_done(r, send_json(r->req, status, w));
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
	req_done(r, err_http_status(err));
}

void
http_submit(struct http *h, struct workq_job *job,
    void (*run)(struct workq_job *), void (*done)(struct workq_job *))
{
	workq_submit(h->work, job, run, done);
}

void
http_stop_work(struct http *h)
{
	if (h != NULL)
		workq_stop(h->work);
}

/* --- routing ----------------------------------------------------------- */

static int
is_write(int method)
{
	return method == EVHTTP_REQ_POST || method == EVHTTP_REQ_PUT ||
	    method == EVHTTP_REQ_DELETE;
}

/*
 * Who asks: the token mapped to the connection's verified client
 * certificate, else the token of the Authorization header ("TOKEN" or
 * "Bearer TOKEN").
 */
static const struct token *
authenticate(struct http *h, struct evhttp_request *req)
{
	const struct token *tok;
	const char	*v;
	size_t		 len;

	if ((v = http_conn_subject(h->conns, req)) != NULL &&
	    (tok = tokens_by_subject(h->tokens, v)) != NULL)
		return tok;
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

/*
 * {"status":"ok"}, and in fleet mode "fleet": {"state", "since",
 * "revision"}: the mirror serves reads whatever the state.
 */
static struct json_w *
healthz_ok(const struct http *h)
{
	struct json_w	*w = json_w_new();
	const char	*state;
	char		 when[24];
	int64_t		 since;
	uint64_t	 rev;

	json_w_obj(w);
	json_w_kstr(w, "status", "ok");
	if ((state = service_fleet_state(h->svc, &since, &rev)) != NULL) {
		util_time_iso(since, 1, when);
		json_w_key(w, "fleet");
		json_w_obj(w);
		json_w_kstr(w, "state", state);
		json_w_kstr(w, "since", when);
		json_w_kuint(w, "revision", rev);
		json_w_obj_end(w);
	}
	json_w_obj_end(w);
	return w;
}

/* GET /healthz: no token, no query parameters. */
static void
healthz(struct http *h, struct evhttp_request *req, double start,
    const char *query)
{
	struct http_query_err	qe;
	int			method = evhttp_request_get_command(req), err;

	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		send_error(req, err = CERTD_ERR_METHOD, NULL, NULL);
	} else if ((err = http_query_check(query, "", &qe)) != 0)
		send_error(req, err, qe.field, qe.reason);
	else
		send_json(req, 200, healthz_ok(h));
	count(h, HTTP_ROUTE_HEALTHZ, err_http_status(err), start);
}

/*
 * The certificate resources: which handler serves which method, and the
 * query parameters GET (and HEAD) and DELETE take ("" none).
 */
static const struct http_resource {
	int		 route;		/* HTTP_ROUTE_* */
	int		 has_id;
	const char	*sub;		/* sub-resource after the id, or NULL */
	const char	*allow;		/* NULL ends the table */
	void		(*get)(struct http_req *);
	void		(*post)(struct http_req *);
	void		(*put)(struct http_req *);
	void		(*del)(struct http_req *);
	const char	*get_params;
	const char	*del_params;
} routes[] = {
	{ HTTP_ROUTE_CERTIFICATES, 0, NULL, "GET, HEAD, POST",
	    http_certs_list, http_certs_create, NULL, NULL,
	    "page, page_size, alias", "" },
	{ HTTP_ROUTE_CERTIFICATE, 1, NULL, "GET, HEAD, PUT, DELETE",
	    http_certs_get, NULL, http_certs_update, http_certs_delete,
	    "", "force" },
	{ HTTP_ROUTE_SUBSCRIBERS, 1, "subscribers", "GET, HEAD",
	    http_certs_subscribers, NULL, NULL, NULL, "", "" },
	{ HTTP_ROUTE_HISTORY, 1, "history", "GET, HEAD",
	    http_certs_history, NULL, NULL, NULL, "", "" },
	{ HTTP_ROUTE_ROLLBACK, 1, "rollback", "POST",
	    NULL, http_certs_rollback, NULL, NULL, "", "" },
	{ HTTP_ROUTE_OTHER, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};

/* [s, s + len) is the NUL-terminated word w. */
static int
is_word(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && memcmp(s, w, len) == 0;
}

/* Which resource of the certificate tree [p, end) names, or NULL. */
static const struct http_resource *
match_certs(const char *p, const char *end, struct http_match *m)
{
	const char			*slash, *sub = NULL;
	const struct http_resource	*rt;

	/* {team}/certificates[/{id}[/{sub}]] */
	if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL ||
	    end - slash < 13 || memcmp(slash, "/certificates", 13) != 0 ||
	    (slash + 13 != end && slash[13] != '/'))
		return NULL;
	m->team = p;
	m->team_len = (size_t)(slash - p);
	if ((m->has_id = slash + 13 != end)) {
		m->id_s = slash + 14;
		if ((sub = memchr(m->id_s, '/', (size_t)(end - m->id_s))) !=
		    NULL) {
			m->id_len = (size_t)(sub - m->id_s);
			sub++;
		} else
			m->id_len = (size_t)(end - m->id_s);
	}
	for (rt = &routes[0]; rt->allow != NULL; rt++)
		if (rt->has_id == m->has_id && (sub == NULL ? rt->sub == NULL :
		    rt->sub != NULL && is_word(sub, (size_t)(end - sub),
		    rt->sub)))
			return rt;
	return NULL;
}

int
http_match(const char *path, int method, struct http_match *m)
{
	const struct http_resource	*rt;
	size_t				 len = strlen(path);

	memset(m, 0, sizeof(*m));
	m->route = HTTP_ROUTE_OTHER;
	m->params = "";
	/* A trailing slash names the same resource as none. */
	if (len > 1 && path[len - 1] == '/')
		len--;
	if (is_word(path, len, "/healthz")) {
		m->healthz = 1;
		m->route = HTTP_ROUTE_HEALTHZ;
		return 0;
	}
	if (is_word(path, len, "/metrics")) {
		m->route = HTTP_ROUTE_METRICS;
		return method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD ?
		    0 : (m->allow = "GET, HEAD", CERTD_ERR_METHOD);
	}
	if (len < sizeof(PREFIX) - 1 ||
	    memcmp(path, PREFIX, sizeof(PREFIX) - 1) != 0 ||
	    (rt = match_certs(path + sizeof(PREFIX) - 1, path + len, m)) ==
	    NULL)
		return CERTD_ERR_NO_ROUTE;
	m->route = rt->route;
	m->allow = rt->allow;
	switch (method) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		m->handler = rt->get;
		m->params = rt->get_params;
		break;
	case EVHTTP_REQ_POST:
		m->handler = rt->post;
		break;
	case EVHTTP_REQ_PUT:
		m->handler = rt->put;
		break;
	case EVHTTP_REQ_DELETE:
		m->handler = rt->del;
		m->params = rt->del_params;
		break;
	default:
		break;
	}
	return m->handler != NULL ? 0 : CERTD_ERR_METHOD;
}

/* Whether name is one of params ("a, b, c"). */
static int
param_known(const char *params, const char *name)
{
	const char	*p = params, *q;
	size_t		 n = strlen(name);

	while (*p != '\0') {
		if ((q = strchr(p, ',')) == NULL)
			q = p + strlen(p);
		if ((size_t)(q - p) == n && memcmp(p, name, n) == 0)
			return 1;
		p = *q == ',' ? q + 2 : q;
	}
	return 0;
}

/*
 * A parameter name as the client may be shown it: printable ASCII as it
 * is (evhttp does not decode names: "p%61ge" stays so), any other byte,
 * and a quote or backslash, as %XX; at most CERTD_PARAM_SHOWN_MAX
 * characters.
 */
static void
param_show(const char *name, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 n = 0;

	for (; *name != '\0' && n + 4 < outlen &&
	    n < CERTD_PARAM_SHOWN_MAX; name++) {
		unsigned char	c = (unsigned char)*name;

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[n++] = (char)c;
		else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0x0f];
		}
	}
	if (*name != '\0' && n + 4 < outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

int
http_query_check(const char *query, const char *params,
    struct http_query_err *e)
{
	struct evkeyvalq	 q;
	struct evkeyval		*kv, *prev;
	int			 rv = CERTD_ERR_BAD_REQUEST;

	e->field[0] = e->reason[0] = '\0';
	if (query == NULL)
		return 0;
	TAILQ_INIT(&q);
	/* A value with an encoded NUL would be read up to the NUL only. */
	if (evhttp_parse_query_str(query, &q) != 0 ||
	    strcasestr(query, "%00") != NULL) {
		snprintf(e->field, sizeof(e->field), "query");
		snprintf(e->reason, sizeof(e->reason),
		    "is not a valid query string");
		goto out;
	}
	TAILQ_FOREACH(kv, &q, next) {
		if (kv->key[0] == '\0') {
			snprintf(e->field, sizeof(e->field), "query");
			snprintf(e->reason, sizeof(e->reason),
			    "has a parameter without a name");
			goto out;
		}
		param_show(kv->key, e->field, sizeof(e->field));
		if (!param_known(params, kv->key)) {
			snprintf(e->reason, sizeof(e->reason), params[0] ==
			    '\0' ? "is not a parameter of this request (it "
			    "takes none)" : "is not a parameter of this request "
			    "(it takes %s)", params);
			goto out;
		}
		for (prev = TAILQ_FIRST(&q); prev != kv;
		    prev = TAILQ_NEXT(prev, next))
			if (strcmp(prev->key, kv->key) == 0) {
				snprintf(e->reason, sizeof(e->reason),
				    "must be given once");
				goto out;
			}
	}
	e->field[0] = '\0';
	rv = 0;
out:
	evhttp_clear_headers(&q);
	return rv;
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

/* At most one header called name. */
static int
at_most_one(struct evhttp_request *req, const char *name)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	int			 n = 0;

	TAILQ_FOREACH(kv, in, next)
		if (evutil_ascii_strcasecmp(kv->key, name) == 0)
			n++;
	return n <= 1;
}

/* Answer 400 for field at once (no http_req yet), closing if asked. */
static void
refuse(struct http *h, struct evhttp_request *req, double start,
    const char *field, const char *reason, int close)
{
	if (close)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
	send_error(req, CERTD_ERR_BAD_REQUEST, field, reason);
	count(h, HTTP_ROUTE_OTHER, err_http_status(CERTD_ERR_BAD_REQUEST),
	    start);
}

/* Answer err at once (no http_req yet) and count it. */
static void
reject(struct http *h, struct evhttp_request *req, int route, double start,
    int err)
{
	send_error(req, err, NULL, NULL);
	count(h, route, err_http_status(err), start);
}

/*
 * A request that a proxy in front of certd could read otherwise than
 * evhttp did: answered 400 here, and 1.
 */
static int
ill_formed(struct http *h, struct evhttp_request *req, double start)
{
	const char	*field, *reason;

	if (http_conn_refused(h->conns, req, &field, &reason)) {
		/*
		 * Its bytes broke HTTP/1.1 framing (http_wire.c), and evhttp
		 * parsed a stand-in for it; nothing after it was read.
		 */
		refuse(h, req, start, field, reason, 1);
		return 1;
	}
	if (!at_most_one(req, "Content-Length")) {
		/*
		 * libevent framed the body by one of them; what follows may
		 * be another request smuggled in (RFC 9112, 6.3): answer and
		 * close, reading nothing more from this connection.
		 * (http_wire.c refuses these first; this is for a connection
		 * evhttp made without it.)
		 */
		refuse(h, req, start, "Content-Length", "must be given once", 1);
		return 1;
	}
	if (!at_most_one(req, "Authorization")) {
		/* evhttp would use the first; a proxy may check the last */
		refuse(h, req, start, "Authorization", "must be given once", 0);
		return 1;
	}
	return 0;
}

/* GET /metrics: any token that sees every team; no query parameters. */
static void
metrics(struct http *h, struct evhttp_request *req, double start,
    const char *query)
{
	const struct token	*tok = authenticate(h, req);
	struct http_query_err	 qe;
	struct evbuffer		*buf;

	if (tok == NULL) {
		reject(h, req, HTTP_ROUTE_METRICS, start, CERTD_ERR_UNAUTHORIZED);
		return;
	}
	if (http_query_check(query, "", &qe) != 0) {
		send_error(req, CERTD_ERR_BAD_REQUEST, qe.field, qe.reason);
		count(h, HTTP_ROUTE_METRICS,
		    err_http_status(CERTD_ERR_BAD_REQUEST), start);
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
	const char		*path, *query;
	const struct token	*tok;
	struct http_req		*r;
	struct http_match	 m;
	struct http_query_err	 qe;
	char			 team[CERTD_TEAM_MAX + 1];
	uint64_t		 id = 0;
	double			 start = now_mono();
	int			 method = evhttp_request_get_command(req), rv;

	http_conn_dispatched(h->conns, req);
	if (http_conn_is_tls(h->conns) && !http_conn_known(h->conns, req)) {
		/* plain text on the TLS port (see http_conn.c's conn_new) */
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reject(h, req, HTTP_ROUTE_OTHER, start, CERTD_ERR_NOMEM);
		return;
	}
	if (h->draining) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reject(h, req, HTTP_ROUTE_OTHER, start, CERTD_ERR_SHUTDOWN);
		return;
	}
	if (ill_formed(h, req, start))
		return;
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
	query = evhttp_uri_get_query(uri);
	if (m.healthz) {
		healthz(h, req, start, query);
		return;
	}
	if (m.route == HTTP_ROUTE_METRICS) {
		metrics(h, req, start, query);
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
	r->keys = tok->keys;
	r->method = method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method;
	r->svc = h->svc;
	r->cert_id = id;
	memcpy(r->team, team, sizeof(r->team));
	if (!tokens_allows_team(tok, r->team)) {
		http_reply_error(r, CERTD_ERR_NO_TEAM, NULL, NULL);
		return;
	}
	if (http_query_check(query, m.params, &qe) != 0) {
		http_reply_error(r, CERTD_ERR_BAD_REQUEST, qe.field, qe.reason);
		return;
	}
	m.handler(r);
}

/* --- life cycle ---------------------------------------------------------- */

/*
 * The REST listener's error callback gets the argument evhttp gave the
 * listener, its struct evhttp; this is the http that owns it (one a
 * process).
 */
static struct http	*accept_owner;

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;

	(void)fd;
	(void)what;
	if (h->bound != NULL)
		http_conn_accept_again(h->conns);
}

/* accept failed (EMFILE, ENFILE...): pause a second instead of spinning. */
static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval	 tv = { 1, 0 };

	(void)arg;
	log_warn("http accept failed, pausing 1 s: %s", strerror(errno));
	evconnlistener_disable(l);
	if (accept_owner != NULL)
		evtimer_add(accept_owner->ev_accept, &tv);
}

/* "certd:TEAM/ALIAS": the listener certificate is one certd holds. */
static int
parse_ref(const char *s, char team[CERTD_TEAM_MAX + 1], const char **alias)
{
	const char	*slash;

	if (strncmp(s, "certd:", 6) != 0)
		return 0;
	s += 6;
	if ((slash = strchr(s, '/')) == NULL ||
	    !util_team_valid(s, (size_t)(slash - s)) || slash[1] == '\0')
		return -1;
	memcpy(team, s, (size_t)(slash - s));
	team[slash - s] = '\0';
	*alias = slash + 1;
	return 1;
}

/* Credentials from the record certd holds under the listener's alias. */
static struct http_conn_creds *
creds_of_record(struct http *h, const struct cert_record *rec, char *errbuf,
    size_t errlen)
{
	if (rec == NULL) {
		snprintf(errbuf, errlen, "certd holds no certificate %s/%s yet",
		    h->ref_team, h->ref_alias);
		return NULL;
	}
	return http_conn_creds_new(rec->certificate, rec->certificate_len,
	    rec->private_key, rec->private_key_len, h->client_ca, errbuf,
	    errlen);
}

/* The listener's credentials as cfg says, or NULL with a reason. */
static struct http_conn_creds *
creds_of_config(struct http *h, const struct config *cfg, char *errbuf,
    size_t errlen)
{
	if (h->ref_alias != NULL)
		return creds_of_record(h, service_get_alias(h->svc, h->ref_team,
		    h->ref_alias), errbuf, errlen);
	return http_conn_creds_load(cfg->tls_cert, cfg->tls_key,
	    cfg->tls_client_ca, errbuf, errlen);
}

/* Whether the bound address is a loopback one. */
static int
is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* TLS settings of cfg, checked; 0 or -1 with a reason. */
static int
tls_setup(struct http *h, const struct config *cfg, char *errbuf,
    size_t errlen)
{
	const char	*alias;
	int		 rv;

	if (cfg->tls_cert == NULL) {
		if (cfg->tls_key != NULL || cfg->tls_client_ca != NULL) {
			snprintf(errbuf, errlen, "tls_key and tls_client_ca "
			    "need tls_cert");
			return -1;
		}
		return 0;
	}
	if ((rv = parse_ref(cfg->tls_cert, h->ref_team, &alias)) < 0) {
		snprintf(errbuf, errlen, "tls_cert must be a file or "
		    "certd:TEAM/ALIAS, not \"%s\"", cfg->tls_cert);
		return -1;
	}
	if (rv == 0 && cfg->tls_key == NULL) {
		snprintf(errbuf, errlen, "tls_cert %s needs tls_key",
		    cfg->tls_cert);
		return -1;
	}
	if ((rv == 1 && (h->ref_alias = strdup(alias)) == NULL) ||
	    (cfg->tls_client_ca != NULL &&
	    (h->client_ca = strdup(cfg->tls_client_ca)) == NULL)) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	return 1;
}

struct http *
http_new(struct event_base *base, struct service *svc,
    const struct tokens *tokens, const struct config *cfg, char *errbuf,
    size_t errlen)
{
	struct http		*h;
	struct http_conn_creds	*cr = NULL;
	struct rlimit		 rl;
	struct timeval		 tv = { CERTD_HTTP_TIMEOUT, 0 };
	struct sockaddr_storage	 ss;
	ev_socklen_t		 sslen = sizeof(ss);
	size_t			 max_conns = cfg->http_max_conns;
	int			 tls;
	char			 why[512];

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->svc = svc;
	h->tokens = tokens;
	if ((tls = tls_setup(h, cfg, errbuf, errlen)) < 0)
		goto fail;
	if (tls && (cr = creds_of_config(h, cfg, why, sizeof(why))) == NULL) {
		if (h->ref_alias == NULL) {
			snprintf(errbuf, errlen, "%s", why);
			goto fail;
		}
		log_warn("tls listener waits for its certificate: %s", why);
	}
	/* Two descriptors a connection at most: its socket and a spare. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    max_conns > rl.rlim_cur / 2)
		max_conns = rl.rlim_cur / 2;
	if ((h->work = workq_new(base, "certd-worker",
	    util_workers(CERTD_WORKERS_MAX))) == NULL) {
		snprintf(errbuf, errlen, "cannot start the REST worker");
		goto fail;
	}
	if ((h->evh = evhttp_new(base)) == NULL ||
	    (h->conns = http_conn_new(base, h->evh, max_conns,
	    CERTD_HEADERS_MAX + CERTD_BODY_HARD_MAX, CERTD_HTTP_TIMEOUT,
	    tls)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	http_conn_set_creds(h->conns, cr);
	cr = NULL;
	evhttp_set_max_headers_size(h->evh, CERTD_HEADERS_MAX);
	evhttp_set_max_body_size(h->evh, CERTD_BODY_HARD_MAX);
	evhttp_set_timeout_tv(h->evh, &tv);
	/* Every method evhttp parses reaches the router, which answers 405. */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evh,
	    "application/json; charset=utf-8");
	evhttp_set_gencb(h->evh, http_route, h);

	if ((h->bound = evhttp_bind_socket_with_handle(h->evh,
	    cfg->listen_host, cfg->listen_port)) == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s:%u: %s",
		    cfg->listen_host, cfg->listen_port,
		    errno != 0 ? strerror(errno) : "bind failed");
		goto fail;
	}
	if (getsockname(evhttp_bound_socket_get_fd(h->bound),
	    (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(errbuf, errlen, "getsockname: %s", strerror(errno));
		goto fail;
	}
	if (!tls && !cfg->allow_plain_http && !is_loopback(&ss)) {
		snprintf(errbuf, errlen, "refusing plain HTTP on %s, which is "
		    "not a loopback address: set tls_cert and tls_key, or "
		    "allow_plain_http", cfg->listen_host);
		goto fail;
	}
	if (ss.ss_family == AF_INET)
		h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	if ((h->ev_accept = evtimer_new(base, accept_resume, h)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	accept_owner = h;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(h->bound),
	    accept_error);
	http_conn_set_listener(h->conns,
	    evhttp_bound_socket_get_listener(h->bound));
	return h;
fail:
	http_conn_creds_unref(cr);
	http_free(h);
	return NULL;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (accept_owner == h)
		accept_owner = NULL;
	workq_free(h->work);	/* its last jobs still answer their requests */
	if (h->evh != NULL)
		evhttp_free(h->evh);
	http_conn_free(h->conns);
	if (h->ev_accept != NULL)
		event_free(h->ev_accept);
	free(h->ref_alias);
	free(h->client_ca);
	free(h);
}

int
http_reload_tls(struct http *h, const struct config *cfg, char *errbuf,
    size_t errlen)
{
	struct http_conn_creds	*cr;

	if (!http_is_tls(h))
		return 0;
	if (h->ref_alias != NULL &&
	    service_get_alias(h->svc, h->ref_team, h->ref_alias) == NULL)
		return 0;		/* not stored yet: still waiting */
	if ((cr = creds_of_config(h, cfg, errbuf, errlen)) == NULL)
		return -1;
	http_conn_set_creds(h->conns, cr);
	log_info("tls listener certificate and client CAs reloaded from %s",
	    cfg->tls_cert);
	return 0;
}

void
http_store_changed(struct http *h, const struct store_change *ch)
{
	const struct cert_record *rec = ch->rec, *old = ch->old;
	struct http_conn_creds	*cr;
	char			 why[512];

	if (h->ref_alias == NULL)
		return;
	if (rec == NULL || strcmp(rec->team, h->ref_team) != 0 ||
	    strcmp(rec->alias, h->ref_alias) != 0) {
		if (old != NULL && strcmp(old->team, h->ref_team) == 0 &&
		    strcmp(old->alias, h->ref_alias) == 0)
			log_warn("tls listener certificate %s/%s is gone: new "
			    "connections keep the last one", h->ref_team,
			    h->ref_alias);
		return;
	}
	if ((cr = creds_of_record(h, rec, why, sizeof(why))) == NULL) {
		log_warn("tls listener certificate %s/%s not taken: %s",
		    h->ref_team, h->ref_alias, why);
		return;
	}
	http_conn_set_creds(h->conns, cr);
	log_info("tls listener certificate %s/%s now revision %llu",
	    h->ref_team, h->ref_alias, (unsigned long long)rec->revision);
}

int
http_is_tls(const struct http *h)
{
	return h->ref_alias != NULL || http_conn_is_tls(h->conns);
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
	return http_conn_unsent(h->conns);
}

void
http_shutdown(struct http *h, http_drained_cb cb, void *arg)
{
	if (h->bound != NULL) {
		http_conn_set_listener(h->conns, NULL);
		evhttp_del_accept_socket(h->evh, h->bound);
		h->bound = NULL;
	}
	h->draining = 1;
	h->drained_cb = cb;
	h->drained_arg = arg;
	http_check_drained(h);
}
