/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the REST mapping: the real listener, service and store run
 * in this process on their own event_base and a kernel-chosen port, and
 * libevent's HTTP client talks to them.  Checks the envelope, field errors,
 * routing and the record JSON; and, on the same fixture, how the service
 * completes updates that change nothing when the loop stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <yajl/yajl_tree.h>

#include "certd/constants.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "record.h"
#include "service.h"
#include "store.h"
#include "tokens.h"

struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct store		*store;
	struct service		*svc;
	struct tokens		*tokens;
	struct http		*http;
	char			 token[128];
	char			 ro_token[128];
};

struct reply {
	int		 status;
	yajl_val	 body;		/* the reply parsed, or NULL */
	char		 allow[64];
	int		 done;
};

/* The member key of object v, or NULL (also when v is not an object). */
static yajl_val
jget(yajl_val v, const char *key)
{
	const char	*path[] = { key, NULL };

	return yajl_tree_get(v, path, yajl_t_any);
}

/* Item i of array v, or NULL. */
static yajl_val
jitem(yajl_val v, size_t i)
{
	return YAJL_IS_ARRAY(v) && i < v->u.array.len ?
	    v->u.array.values[i] : NULL;
}

/* The string value of v, or NULL. */
static const char *
jstr(yajl_val v)
{
	return YAJL_GET_STRING(v);
}

/* The integer value of v, or 0. */
static long long
jint(yajl_val v)
{
	return YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
}

/* The size of array v, or 0. */
static size_t
jlen(yajl_val v)
{
	return YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

static void
rm_rf(const char *dir)
{
	char	cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	struct config	*cfg;
	char		 line[600], line2[600], text[1300], err[512];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/certd-http.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	f->store = store_open(f->base, f->dir, err, sizeof(err));
	if (f->store == NULL)
		fail_msg("store_open: %s", err);
	f->svc = service_new(f->base, f->store, NULL);
	assert_int_equal(tokens_new("admin", "*", "write", NULL, f->token,
	    sizeof(f->token), line, sizeof(line), err, sizeof(err)), 0);
	assert_int_equal(tokens_new("ro", "acme", "read", NULL, f->ro_token,
	    sizeof(f->ro_token), line2, sizeof(line2), err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "%s\n%s\n", line, line2);
	f->tokens = tokens_parse(text, strlen(text), "test", err, sizeof(err));
	assert_non_null(f->tokens);
	assert_non_null(cfg = config_new());
	assert_int_equal(config_set(cfg, "listen", "127.0.0.1:0", err,
	    sizeof(err)), 0);
	f->http = http_new(f->base, f->svc, f->tokens, cfg, err, sizeof(err));
	config_free(cfg);
	if (f->http == NULL)
		fail_msg("http_new: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	http_free(f->http);
	service_free(f->svc);
	store_free(f->store);
	tokens_free(f->tokens);
	event_base_free(f->base);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void
on_reply(struct evhttp_request *req, void *arg)
{
	struct reply	*r = arg;
	struct evbuffer	*in;
	const char	*allow;
	char		*text, err[128];
	size_t		 len;

	r->done = 1;
	if (req == NULL)
		return;
	r->status = evhttp_request_get_response_code(req);
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if (len > 0) {
		/* yajl_tree_parse reads a NUL-terminated text */
		assert_non_null(text = malloc(len + 1));
		assert_int_equal(evbuffer_copyout(in, text, len), (ssize_t)len);
		text[len] = '\0';
		r->body = yajl_tree_parse(text, err, sizeof(err));
		if (r->body != NULL && !YAJL_IS_OBJECT(r->body) &&
		    !YAJL_IS_ARRAY(r->body)) {
			yajl_tree_free(r->body);	/* as jansson took it */
			r->body = NULL;
		}
		free(text);
	}
	allow = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Allow");
	if (allow != NULL)
		snprintf(r->allow, sizeof(r->allow), "%s", allow);
}

/* One request; runs the loop until the reply arrived. */
static struct reply
call(struct fixture *f, enum evhttp_cmd_type method, const char *path,
    const char *token, const char *body, size_t body_len)
{
	struct evhttp_connection *conn;
	struct evhttp_request	*req;
	struct reply		 r;

	memset(&r, 0, sizeof(r));
	conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1",
	    http_port(f->http));
	assert_non_null(conn);
	req = evhttp_request_new(on_reply, &r);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "localhost");
	if (token != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Authorization", token);
	if (body != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		    body_len);
	assert_int_equal(evhttp_make_request(conn, req, method, path), 0);
	while (!r.done)
		event_base_loop(f->base, EVLOOP_ONCE);
	evhttp_connection_free(conn);
	return r;
}

static void
assert_envelope(struct reply *r, int status, const char *msg)
{
	yajl_val	data;

	assert_int_equal(r->status, status);
	assert_non_null(r->body);
	assert_int_equal(jint(jget(r->body, "code")), status);
	assert_string_equal(jstr(jget(r->body, "msg")), msg);
	assert_true(YAJL_IS_STRING(jget(r->body, "msg_show")));
	data = jget(r->body, "data");
	assert_true(YAJL_IS_OBJECT(jget(data, "bean")));
	assert_true(YAJL_IS_ARRAY(jget(data, "list")));
	assert_int_equal(jlen(jget(data, "list")), 0);
}

static const char *
bean(struct reply *r, const char *key)
{
	return jstr(jget(jget(jget(r->body, "data"), "bean"), key));
}

static void
test_envelope_and_auth(void **state)
{
	struct fixture	*f = *state;
	struct reply	 r;
	char		 bearer[160];

	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/acme/certificates",
	    NULL, NULL, 0);
	assert_envelope(&r, 401, "unauthorized");
	assert_string_equal(jstr(jget(r.body, "msg_show")), "未授权");
	yajl_tree_free(r.body);

	snprintf(bearer, sizeof(bearer), "Bearer %s", f->token);
	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/acme/certificates",
	    bearer, NULL, 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(jget(r.body, "total")), 0);
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_POST, "/openapi/v1/teams/acme/certificates",
	    f->ro_token, "{}", 2);
	assert_envelope(&r, 403, "permission denied");
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/other/certificates",
	    f->ro_token, NULL, 0);
	assert_envelope(&r, 404, "no found team");
	yajl_tree_free(r.body);
}

static void
test_routes(void **state)
{
	struct fixture	*f = *state;
	struct reply	 r;

	r = call(f, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 0);
	assert_int_equal(r.status, 200);
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_GET, "/nope", f->token, NULL, 0);
	assert_envelope(&r, 404, "not found");
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_PATCH, "/openapi/v1/teams/acme/certificates/1",
	    f->token, NULL, 0);
	assert_envelope(&r, 405, "method not allowed");
	assert_string_equal(r.allow, "GET, HEAD, PUT, DELETE");
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/acme/certificates/x1",
	    f->token, NULL, 0);
	assert_envelope(&r, 404, "certificate not found");
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_GET,
	    "/openapi/v1/teams/acme/certificates?page_size=501", f->token,
	    NULL, 0);
	assert_envelope(&r, 400, "invalid request");
	assert_string_equal(bean(&r, "field"), "page_size");
	yajl_tree_free(r.body);
}

static void
test_field_errors(void **state)
{
	struct fixture	*f = *state;
	struct reply	 r;
	static const struct {
		const char	*body;
		const char	*field;
		const char	*reason;
	} cases[] = {
		{ "{\"alias\":1}", "alias", "must be a string" },
		{ "{\"alias\":\"a\",\"certificate\":\"c\",\"private_key\":\"k\"}",
		    "certificate_type", "is required" },
		{ "{\"alias\":\" \",\"certificate\":\"c\",\"private_key\":\"k\","
		    "\"certificate_type\":\"t\"}", "alias", "must not be empty" },
		{ "{\"alias\":\"a\\u0007b\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    "must not contain control characters" },
		{ "{\"alias\":\"c1\\u0085x\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    "must not contain control characters" },
		{ "{\"alias\":\"a\",\"certificate\":\"c\",\"private_key\":\"k\","
		    "\"certificate_type\":\"t\\u009f\"}", "certificate_type",
		    "must not contain control characters" },
		/* names a person could misread (the raw UTF-8 as JSON sends it) */
		{ "{\"alias\":\"www.\u202egnp.exe\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    NULL },
		{ "{\"alias\":\"a\xe2\x81\xa6" "b\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    NULL },
		{ "{\"alias\":\"we\u200bb\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    NULL },
		{ "{\"alias\":\"\ufeffweb\",\"certificate\":\"c\","
		    "\"private_key\":\"k\",\"certificate_type\":\"t\"}", "alias",
		    NULL },
		{ "{\"alias\":\"a\",\"certificate\":\"c\",\"private_key\":\"k\","
		    "\"certificate_type\":\"ser\u2060ver\"}", "certificate_type",
		    NULL },
		{ "{\"alias\":\"a\",\"certificate\":\"c\",\"private_key\":\"k\","
		    "\"certificate_type\":\"t\u200f\"}", "certificate_type", NULL },
		{ "not json", "body", NULL },
		{ "[]", "body", "must be a JSON object" },
	};
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = call(f, EVHTTP_REQ_POST,
		    "/openapi/v1/teams/acme/certificates", f->token,
		    cases[i].body, strlen(cases[i].body));
		assert_envelope(&r, 400, "invalid request");
		assert_string_equal(bean(&r, "field"), cases[i].field);
		if (cases[i].reason != NULL)
			assert_string_equal(bean(&r, "reason"), cases[i].reason);
		else if (strcmp(cases[i].field, "body") != 0)
			assert_true(strstr(bean(&r, "reason"), "must not contain "
			    "bidirectional") != NULL || strstr(bean(&r,
			    "reason"), "must not contain zero-width") != NULL);
		yajl_tree_free(r.body);
	}
}

static void
test_too_large(void **state)
{
	struct fixture	*f = *state;
	struct reply	 r;
	size_t		 len = CERTD_BODY_MAX + 1;
	char		*big = malloc(len);

	memset(big, ' ', len);
	r = call(f, EVHTTP_REQ_POST, "/openapi/v1/teams/acme/certificates",
	    f->token, big, len);
	assert_envelope(&r, 413, "request body too large");
	yajl_tree_free(r.body);
	free(big);
}

static char *
slurp(const char *name)
{
	const char	*dir = getenv("CERTD_PKI_DIR");
	char		 path[512], *buf;
	FILE		*fp;
	long		 n;

	snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir :
	    "tests/pki-out", name);
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static void
on_stored(int err, const struct cert_record *rec, void *arg)
{
	int	*done = arg;

	(void)rec;
	*done = err == 0 ? 1 : -1;
}

/*
 * A kept version whose alias breaks today's rules (one stored before they
 * existed; written here past the service) is refused by a rollback, as an
 * update with that alias would be.  Certificate 1 of acme must exist.
 */
static void
rollback_names(struct fixture *f)
{
	struct cert_record	*v;
	struct reply		 r;
	char			 rb[64];
	uint64_t		 bad_rev;
	int			 done = 0;
	const char		*fix = "{\"alias\":\"web\"}";

	assert_non_null(v = record_dup(store_get(f->store, "acme", 1)));
	free(v->alias);
	assert_non_null(v->alias = strdup("w\xe2\x80\x8bww"));
	assert_int_equal(store_put(f->store, v, on_stored, &done), 0);
	while (done == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(done, 1);
	bad_rev = store_get(f->store, "acme", 1)->revision;
	r = call(f, EVHTTP_REQ_PUT, "/openapi/v1/teams/acme/certificates/1",
	    f->token, fix, strlen(fix));
	assert_int_equal(r.status, 200);
	yajl_tree_free(r.body);

	snprintf(rb, sizeof(rb), "{\"revision\":%llu}",
	    (unsigned long long)bad_rev);
	r = call(f, EVHTTP_REQ_POST,
	    "/openapi/v1/teams/acme/certificates/1/rollback", f->token, rb,
	    strlen(rb));
	assert_envelope(&r, 400, "invalid request");
	assert_string_equal(bean(&r, "field"), "alias");
	assert_non_null(strstr(bean(&r, "reason"), "zero-width"));
	yajl_tree_free(r.body);
	assert_string_equal(store_get(f->store, "acme", 1)->alias, "web");
}

static void
test_record_json(void **state)
{
	struct fixture	*f = *state;
	struct reply	 r;
	char		*cert = slurp("leaf-ec.pem"), *key = slurp("leaf-ec.key");
	char		*body;
	struct json_w	*req;
	const char	*text;
	size_t		 len;

	if (cert == NULL || key == NULL) {
		free(cert);
		free(key);
		skip();
	}
	assert_non_null(req = json_w_new());
	json_w_obj(req);
	json_w_kstr(req, "alias", "web");
	json_w_kstr(req, "certificate", cert);
	json_w_kstr(req, "private_key", key);
	json_w_kstr(req, "certificate_type", "srv");
	json_w_obj_end(req);
	assert_int_equal(json_w_done(req, &text, &len), 0);
	assert_non_null(body = strndup(text, len));
	r = call(f, EVHTTP_REQ_POST, "/openapi/v1/teams/acme/certificates",
	    f->token, body, strlen(body));
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(jget(r.body, "id")), 1);
	assert_string_equal(jstr(jget(r.body, "certificate")), cert);
	assert_string_equal(jstr(jget(r.body, "private_key")), key);
	assert_string_equal(jstr(jget(r.body, "certificate_type")), "srv");
	assert_true(YAJL_IS_FALSE(jget(r.body, "has_expired")));
	assert_int_equal(strlen(jstr(jget(r.body, "fingerprint_sha256"))), 64);
	yajl_tree_free(r.body);

	/* A read token (keys=no by default): the key member, empty. */
	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/acme/certificates/1",
	    f->ro_token, NULL, 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(jget(r.body, "private_key")), "");
	assert_string_equal(jstr(jget(r.body, "certificate")), cert);
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_GET, "/openapi/v1/teams/acme/certificates",
	    f->token, NULL, 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(jget(r.body, "total")), 1);
	assert_null(jget(jitem(jget(r.body, "list"), 0), "private_key"));
	yajl_tree_free(r.body);

	r = call(f, EVHTTP_REQ_POST, "/openapi/v1/teams/acme/certificates",
	    f->token, body, strlen(body));
	assert_envelope(&r, 412, "certificate name already exists");
	yajl_tree_free(r.body);

	rollback_names(f);
	json_w_free(req);
	free(body);
	free(cert);
	free(key);
}

struct done_log {
	int		 n;
	int		 err[4];
	uint64_t	 id[4];
	int		 order[4];
};

struct done_arg {
	struct done_log	*log;
	int		 tag;
};

static void
on_done(int err, const struct cert_record *rec, void *arg)
{
	struct done_arg	*a = arg;
	struct done_log	*l = a->log;

	assert_true(l->n < 4);
	l->err[l->n] = err;
	l->id[l->n] = rec != NULL ? rec->id : 0;
	l->order[l->n] = a->tag;
	l->n++;
}

/*
 * An update that changes nothing completes from the loop; when the loop has
 * stopped, service_stop completes it, once and in order, and from then on
 * such an update is refused, not left waiting for a loop that is gone.
 */
static void
test_unchanged_at_stop(void **state)
{
	struct fixture	*f = *state;
	char		*cert = slurp("leaf-ec.pem"), *key = slurp("leaf-ec.key");
	struct done_log	 log = { 0 };
	struct done_arg	 a[4] = { { &log, 0 }, { &log, 1 }, { &log, 2 },
			    { &log, 3 } };
	struct service_put_req req;
	struct service_why why;
	uint64_t	 id;

	if (cert == NULL || key == NULL) {
		free(cert);
		free(key);
		skip();
		return;		/* cmocka's skip() is not marked noreturn */
	}
	memset(&req, 0, sizeof(req));
	req.who = "test";
	req.team = "acme";
	req.alias.s = "web";
	req.alias.len = 3;
	req.certificate.s = cert;
	req.certificate.len = strlen(cert);
	req.private_key.s = key;
	req.private_key.len = strlen(key);
	req.cert_type.s = "server";
	req.cert_type.len = 6;
	assert_int_equal(service_put(f->svc, &req, on_done, &a[0], &why), 0);
	while (log.n == 0)
		assert_int_not_equal(event_base_loop(f->base, EVLOOP_ONCE), -1);
	assert_int_equal(log.err[0], 0);
	id = log.id[0];
	assert_int_not_equal(id, 0);

	/* The same content twice: accepted, completed later, not now. */
	req.id = id;
	assert_int_equal(service_put(f->svc, &req, on_done, &a[1], &why), 0);
	assert_int_equal(service_put(f->svc, &req, on_done, &a[2], &why), 0);
	assert_int_equal(log.n, 1);

	/* The loop never turns again: service_stop completes both, in order. */
	service_stop(f->svc);
	assert_int_equal(log.n, 3);
	assert_int_equal(log.order[1], 1);
	assert_int_equal(log.order[2], 2);
	assert_int_equal(log.err[1], 0);
	assert_int_equal(log.err[2], 0);
	assert_int_equal(log.id[1], id);
	assert_int_equal(log.id[2], id);

	/* Afterwards: refused, and the callback is not called. */
	assert_int_equal(service_put(f->svc, &req, on_done, &a[3], &why),
	    CERTD_ERR_SHUTDOWN);
	service_stop(f->svc);
	assert_int_equal(log.n, 3);
	free(cert);
	free(key);
}

/*
 * A trailing slash names the same resource; each route takes the query
 * parameters it names and no other, each once (issue 16).
 */
static void
test_query_and_slash(void **state)
{
	struct http_match	 m;
	struct http_query_err	 e;
	static const struct {
		const char	*path;
		int		 method;
		int		 rv;
		int		 route;
		const char	*id;
	} paths[] = {
		{ "/openapi/v1/teams/t/certificates/", EVHTTP_REQ_GET, 0,
		    HTTP_ROUTE_CERTIFICATES, NULL },
		{ "/openapi/v1/teams/t/certificates/5/", EVHTTP_REQ_GET, 0,
		    HTTP_ROUTE_CERTIFICATE, "5" },
		{ "/openapi/v1/teams/t/certificates/5/history/", EVHTTP_REQ_GET,
		    0, HTTP_ROUTE_HISTORY, "5" },
		{ "/openapi/v1/teams/t/certificates/5/rollback/",
		    EVHTTP_REQ_POST, 0, HTTP_ROUTE_ROLLBACK, "5" },
		{ "/healthz/", EVHTTP_REQ_GET, 0, HTTP_ROUTE_HEALTHZ, NULL },
		{ "/metrics/", EVHTTP_REQ_GET, 0, HTTP_ROUTE_METRICS, NULL },
		/* One slash only; an empty id is still no id. */
		{ "/openapi/v1/teams/t/certificates//", EVHTTP_REQ_GET, 0,
		    HTTP_ROUTE_CERTIFICATE, "" },
		{ "/openapi/v1/teams/t/certificates/5//", EVHTTP_REQ_GET,
		    CERTD_ERR_NO_ROUTE, HTTP_ROUTE_OTHER, NULL },
		{ "/healthz//", EVHTTP_REQ_GET, CERTD_ERR_NO_ROUTE,
		    HTTP_ROUTE_OTHER, NULL },
		{ "/openapi/v1/teams/t/certificatesx/", EVHTTP_REQ_GET,
		    CERTD_ERR_NO_ROUTE, HTTP_ROUTE_OTHER, NULL },
		{ "/", EVHTTP_REQ_GET, CERTD_ERR_NO_ROUTE, HTTP_ROUTE_OTHER,
		    NULL },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(http_match(paths[i].path, paths[i].method,
		    &m), paths[i].rv);
		assert_int_equal(m.route, paths[i].route);
		if (paths[i].id != NULL) {
			assert_true(m.has_id);
			assert_int_equal(m.id_len, strlen(paths[i].id));
			assert_memory_equal(m.id_s, paths[i].id, m.id_len);
		}
		if (m.team != NULL)
			assert_int_equal(m.team_len, 1);
	}

	/* What each route and method takes. */
	assert_int_equal(http_match("/openapi/v1/teams/t/certificates",
	    EVHTTP_REQ_GET, &m), 0);
	assert_string_equal(m.params, "page, page_size, alias");
	assert_int_equal(http_query_check("alias=www&page=2&page_size=5",
	    m.params, &e), 0);
	assert_int_equal(http_query_check(NULL, m.params, &e), 0);
	assert_int_equal(http_query_check("", m.params, &e), 0);
	assert_int_equal(http_query_check("pgae=2", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "pgae");
	assert_string_equal(e.reason, "is not a parameter of this request "
	    "(it takes page, page_size, alias)");
	assert_int_equal(http_query_check("page=1&page=2", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "page");
	assert_string_equal(e.reason, "must be given once");
	/* Names of parts of a known one are not it. */
	assert_int_equal(http_query_check("pag=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_int_equal(http_query_check("page_size_=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	/* evhttp decodes values, not names: this is not page. */
	assert_int_equal(http_query_check("p%61ge=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "p%61ge");
	assert_int_equal(http_query_check("page", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "query");
	assert_int_equal(http_query_check("a%00=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "query");
	assert_int_equal(http_query_check("=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "query");
	/* A name is shown as printable ASCII, at most 64 characters. */
	assert_int_equal(http_query_check("\xff\"x\\\x01=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.field, "%FF%22x%5C%01");
	assert_int_equal(http_query_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_int_equal(strlen(e.field), 67);

	assert_int_equal(http_match("/openapi/v1/teams/t/certificates/5",
	    EVHTTP_REQ_DELETE, &m), 0);
	assert_int_equal(http_query_check("force=true", m.params, &e), 0);
	assert_int_equal(http_query_check("page=1", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.reason, "is not a parameter of this request "
	    "(it takes force)");
	assert_int_equal(http_match("/openapi/v1/teams/t/certificates/5",
	    EVHTTP_REQ_GET, &m), 0);
	assert_int_equal(http_query_check("force=true", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
	assert_string_equal(e.reason, "is not a parameter of this request "
	    "(it takes none)");
	assert_int_equal(http_match("/openapi/v1/teams/t/certificates",
	    EVHTTP_REQ_POST, &m), 0);
	assert_int_equal(http_query_check("alias=x", m.params, &e),
	    CERTD_ERR_BAD_REQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_envelope_and_auth, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test(test_query_and_slash),
		cmocka_unit_test_setup_teardown(test_field_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_at_stop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_record_json, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
