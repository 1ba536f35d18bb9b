/* SPDX-License-Identifier: MIT */
/*
 * etcd v3 through its JSON gateway, on the event loop (etcd.h).  A request
 * is one POST of a JSON body to the endpoint in use (etcd_wire.c: kept-alive
 * connections, TLS for https://); its reply is parsed into a tree (json.c)
 * and read into struct etcd_reply.  A transport failure (refused, reset,
 * timed out) moves to the next endpoint and sends the request again
 * there, each endpoint once.
 * An answer that carries a gRPC error ({"error", "code"}) is the cluster's
 * word and is not retried: "request timed out" is how a member without
 * quorum answers a write, after etcd's own deadline.
 *
 * A watch is a streaming POST on a connection of its own: the gateway
 * writes one JSON object per line as events come, which are collected as
 * they arrive and split and decoded from the loop (not from inside curl).
 */
#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <nettle/base64.h>

#include "certd/constants.h"
#include "etcd.h"
#include "etcd_wire.h"
#include "json.h"

#define ETCD_ENDPOINTS_MAX	16
#define ETCD_LINE_MAX		(64 << 20)	/* one watch message */
#define ETCD_GRPC_DEADLINE	4	/* gRPC status codes */
#define ETCD_GRPC_UNAVAILABLE	14
#define ETCD_WATCH_IDLE_S	50	/* a silent stream has broken */
#define ETCD_URL_MAX		600

struct etcd_endpoint {
	char			*url;		/* scheme://host:port */
};

struct etcd_req {
	TAILQ_ENTRY(etcd_req)	 entry;
	struct etcd		*e;
	const char		*path;
	char			*body;
	size_t			 len;
	size_t			 tries;
	size_t			 ep;		/* the endpoint it went to */
	struct etcd_wire_xfer	*x;		/* in flight */
	etcd_cb			 cb;
	void			*arg;
};

struct etcd {
	struct event_base	*base;
	struct etcd_endpoint	 ep[ETCD_ENDPOINTS_MAX];
	size_t			 n;
	size_t			 cur;		/* the endpoint in use */
	long			 timeout_ms;
	struct etcd_wire		*wire;
	TAILQ_HEAD(, etcd_req)	 reqs;
};

enum etcd_op_kind { OP_CMP_MOD, OP_CMP_CREATE, OP_PUT, OP_DELETE, OP_RANGE };

struct etcd_op {
	enum etcd_op_kind	 kind;
	bool			 on_failure;
	char			*key;		/* base64 */
	char			*value;		/* base64: a put's value, a
						   delete's range end */
	uint64_t		 rev;		/* compares; a put's lease */
};

struct etcd_txn {
	struct etcd_op		*ops;
	size_t			 n, cap;
	bool			 failed;	/* no memory for one */
};

struct etcd_watch {
	struct etcd		*e;
	struct etcd_wire_xfer	*x;
	size_t			 ep;		/* the endpoint it went to */
	struct event		*parse;		/* acc has bytes: split them */
	struct evbuffer		*acc;		/* a line not yet whole */
	etcd_watch_cb		 cb;
	void			*arg;
	bool			 ended;
};

/* ------------------------------------------------------------------ */
/* Bytes on the wire                                                   */

/* len bytes as base64, NUL-terminated and malloc'd; NULL: no memory. */
static char *
etcd_b64(const void *p, size_t len)
{
	char	*s;

	if ((s = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1)) == NULL)
		return NULL;
	base64_encode_raw(s, len, p);
	s[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return s;
}

/* base64 text s into a new buffer (NUL after it); -1 if malformed. */
static int
etcd_unb64(const char *s, unsigned char **out, size_t *len)
{
	struct base64_decode_ctx ctx;
	size_t			 slen = strlen(s);

	if ((*out = malloc(BASE64_DECODE_LENGTH(slen) + 1)) == NULL)
		return -1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, len, *out, slen, s) ||
	    !base64_decode_final(&ctx)) {
		free(*out);
		*out = NULL;
		return -1;
	}
	(*out)[*len] = '\0';
	return 0;
}

/* The kv object v into *kv (its buffers malloc'd); -1 if malformed. */
static int
etcd_kv_read(const struct json_tree *v, struct etcd_kv *kv)
{
	const char	*k = json_tree_str(json_tree_get(v, "key"));
	const char	*val = json_tree_str(json_tree_get(v, "value"));
	unsigned char	*kb = NULL, *vb = NULL;

	memset(kv, 0, sizeof(*kv));
	if (k == NULL || etcd_unb64(k, &kb, &kv->key_len) != 0 ||
	    etcd_unb64(val != NULL ? val : "", &vb, &kv->value_len) != 0) {
		free(kb);
		return -1;
	}
	kv->key = kb;
	kv->value = vb;
	/* absent members are proto3's zero */
	(void)json_tree_u64(json_tree_get(v, "create_revision"),
	    &kv->create_rev);
	(void)json_tree_u64(json_tree_get(v, "mod_revision"), &kv->mod_rev);
	(void)json_tree_u64(json_tree_get(v, "version"), &kv->version);
	return 0;
}

static void
etcd_kvs_free(struct etcd_kv *kvs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free((void *)(uintptr_t)kvs[i].key);
		free((void *)(uintptr_t)kvs[i].value);
	}
	free(kvs);
}

/* The kvs array arr into a new array *out of *n; -1: malformed or no memory. */
static int
etcd_kvs_read(const struct json_tree *arr, struct etcd_kv **out, size_t *n)
{
	size_t	i, len = json_tree_len(arr);

	*out = NULL;
	*n = 0;
	if (len == 0)
		return 0;
	if ((*out = calloc(len, sizeof(**out))) == NULL)
		return -1;
	for (i = 0; i < len; i++, (*n)++)
		if (etcd_kv_read(json_tree_at(arr, i), &(*out)[i]) != 0)
			return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static void	etcd_send(struct etcd_req *r);
static void	etcd_next(struct etcd *e, size_t ep);

static void
etcd_req_free(struct etcd_req *r)
{
	TAILQ_REMOVE(&r->e->reqs, r, entry);
	free(r->body);
	free(r);
}

/* Complete r with the error err and the reason why, more; r is freed. */
static void
etcd_req_fail(struct etcd_req *r, int err, const char *why, const char *more)
{
	struct etcd_reply	rep;
	char			*c;

	memset(&rep, 0, sizeof(rep));
	rep.err = err;
	snprintf(rep.why, sizeof(rep.why), "%s%s", why, more);
	/* etcd's words go to the log: no control characters */
	for (c = rep.why; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	r->x = NULL;
	r->cb(&rep, r->arg);
	etcd_req_free(r);
}

/* The kvs array arr appended to *kvs (*n of them). */
static int
etcd_kvs_append(const struct json_tree *arr, struct etcd_kv **kvs, size_t *n)
{
	struct etcd_kv	*more, *v;
	size_t		 i, k, len = json_tree_len(arr);

	if (len == 0)
		return 0;
	if ((v = realloc(*kvs, (*n + len) * sizeof(*v))) == NULL)
		return -1;
	*kvs = v;
	if (etcd_kvs_read(arr, &more, &k) != 0) {
		etcd_kvs_free(more, k);
		return -1;
	}
	for (i = 0; i < k; i++)
		v[(*n)++] = more[i];
	free(more);
	return 0;
}

/* The header, the kvs of a range (of a txn's ranges), a txn's verdict. */
static int
etcd_reply_read(const struct json_tree *t, struct etcd_reply *rep,
    struct etcd_kv **kvs)
{
	const struct json_tree	*hdr = json_tree_get(t, "header");
	const struct json_tree	*resp, *range;
	size_t			 i, n = 0;
	int			 first = 1, rv = 0;

	*kvs = NULL;
	if (hdr == NULL ||
	    json_tree_u64(json_tree_get(hdr, "revision"), &rep->revision) != 0)
		return -1;
	(void)json_tree_u64(json_tree_get(hdr, "cluster_id"),
	    &rep->cluster_id);
	(void)json_tree_u64(json_tree_get(t, "ID"), &rep->lease);
	(void)json_tree_u64(json_tree_get(t, "TTL"), &rep->ttl);
	rep->succeeded = json_tree_true(json_tree_get(t, "succeeded"));
	resp = json_tree_get(t, "responses");
	for (i = 0; i < json_tree_len(resp) + 1 && rv == 0; i++) {
		if (i == json_tree_len(resp))
			range = resp == NULL ? t : NULL;	/* a range */
		else
			range = json_tree_get(json_tree_at(resp, i),
			    "response_range");
		if (range == NULL)
			continue;
		if (first) {
			(void)json_tree_u64(json_tree_get(range, "count"),
			    &rep->count);
			rep->more = json_tree_true(json_tree_get(range,
			    "more"));
			first = 0;
		}
		rv = etcd_kvs_append(json_tree_get(range, "kvs"), kvs, &n);
	}
	rep->kvs = *kvs;
	rep->n_kvs = n;
	return rv;
}

static void
etcd_done(long status, const char *body, size_t len, const char *why,
    void *arg)
{
	struct etcd_req		*r = arg;
	struct etcd		*e = r->e;
	struct json_tree	*t;
	struct etcd_reply	 rep;
	struct etcd_kv		*kvs = NULL;
	const char		*msg;
	uint64_t		 code;

	r->x = NULL;
	if (status == 0) {
		/* not reached: the next endpoint, each once */
		etcd_next(e, r->ep);
		if (++r->tries < e->n) {
			etcd_send(r);
			return;
		}
		etcd_req_fail(r, CERTD_ERR_STORAGE, "cluster unavailable: no "
		    "endpoint answered; the last: ", why);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	if ((t = json_tree_parse(body, len, rep.why, sizeof(rep.why))) ==
	    NULL) {
		etcd_req_fail(r, CERTD_ERR_STORAGE, "etcd's reply ", rep.why);
		return;
	}
	if ((msg = json_tree_str(json_tree_get(t, "error"))) != NULL) {
		/*
		 * gRPC's Unavailable and DeadlineExceeded: no quorum, no
		 * leader.  Not sent again (a write may still commit), but the
		 * next request tries another member: this one may be cut off
		 * from the majority.
		 */
		code = 0;
		(void)json_tree_u64(json_tree_get(t, "code"), &code);
		if (code == ETCD_GRPC_UNAVAILABLE || code == ETCD_GRPC_DEADLINE)
			etcd_next(e, r->ep);
		etcd_req_fail(r, CERTD_ERR_STORAGE,
		    code == ETCD_GRPC_UNAVAILABLE ||
		    code == ETCD_GRPC_DEADLINE ? "cluster unavailable: " :
		    "etcd refused the request: ", msg);
		json_tree_free(t);
		return;
	}
	/* a stream's one message (lease keepalive): {"result": reply} */
	if (etcd_reply_read(json_tree_get(t, "result") != NULL ?
	    json_tree_get(t, "result") : t, &rep, &kvs) != 0)
		etcd_req_fail(r, CERTD_ERR_STORAGE, "etcd's reply is "
		    "malformed", "");
	else {
		r->cb(&rep, r->arg);
		etcd_req_free(r);
	}
	etcd_kvs_free(kvs, rep.n_kvs);
	json_tree_free(t);
}

/*
 * Endpoint ep failed a request: the next one is in use, unless another
 * request already moved on from ep (requests in flight fail together).
 */
static void
etcd_next(struct etcd *e, size_t ep)
{
	if (ep == e->cur)
		e->cur = (e->cur + 1) % e->n;
}

/* The endpoint in use's URL of path, in buf. */
static const char *
etcd_url(const struct etcd *e, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", e->ep[e->cur].url, path);
	return buf;
}

static void
etcd_send(struct etcd_req *r)
{
	struct etcd		*e = r->e;
	struct etcd_wire_limits	 lim = { e->timeout_ms, e->timeout_ms, 0 };
	char			 url[ETCD_URL_MAX];

	r->ep = e->cur;
	if ((r->x = etcd_wire_post(e->wire, etcd_url(e, r->path, url,
	    sizeof(url)), r->body, r->len, &lim, NULL, etcd_done, r)) == NULL)
		etcd_req_fail(r, CERTD_ERR_NOMEM, "out of memory", "");
}

/* Send the JSON w wrote to path; w is freed. */
static int
etcd_post(struct etcd *e, const char *path, struct json_w *w, etcd_cb cb,
    void *arg)
{
	struct etcd_req	*r;
	const char	*buf;
	size_t		 len;
	int		 err;

	if ((err = json_w_done(w, &buf, &len)) != 0 ||
	    (r = calloc(1, sizeof(*r))) == NULL ||
	    (r->body = malloc(len)) == NULL) {
		if (err == 0)
			free(r);
		json_w_free(w);
		return err != 0 ? err : CERTD_ERR_NOMEM;
	}
	memcpy(r->body, buf, len);
	json_w_free(w);
	r->len = len;
	r->e = e;
	r->path = path;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&e->reqs, r, entry);
	etcd_send(r);
	return 0;
}

/* Member key of w, bytes p as base64. */
static void
etcd_w_bytes(struct json_w *w, const char *key, const void *p, size_t len)
{
	char	*s = etcd_b64(p, len);

	json_w_key(w, key);
	if (s == NULL)
		json_w_strn(w, "\xff", 1);	/* fails the writer */
	else
		json_w_str(w, s);
	free(s);
}

static void
etcd_w_u64(struct json_w *w, const char *key, uint64_t v)
{
	char	buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	json_w_kstr(w, key, buf);
}

int
etcd_range(struct etcd *e, const void *key, size_t key_len, const void *end,
    size_t end_len, uint64_t rev, uint64_t limit, unsigned flags,
    etcd_cb cb, void *arg)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	etcd_w_bytes(w, "key", key, key_len);
	if (end != NULL)
		etcd_w_bytes(w, "range_end", end, end_len);
	if (rev != 0)
		etcd_w_u64(w, "revision", rev);
	if (limit != 0)
		etcd_w_u64(w, "limit", limit);
	if (flags & ETCD_SERIALIZABLE)
		json_w_kbool(w, "serializable", 1);
	if (flags & ETCD_KEYS_ONLY)
		json_w_kbool(w, "keys_only", 1);
	if (flags & ETCD_NEWEST_MOD) {
		json_w_kstr(w, "sort_order", "DESCEND");
		json_w_kstr(w, "sort_target", "MOD");
	}
	json_w_obj_end(w);
	return etcd_post(e, "/v3/kv/range", w, cb, arg);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

struct etcd_txn *
etcd_txn_new(void)
{
	return calloc(1, sizeof(struct etcd_txn));
}

void
etcd_txn_free(struct etcd_txn *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->ops[i].key);
		free(t->ops[i].value);
	}
	free(t->ops);
	free(t);
}

static void
etcd_txn_add(struct etcd_txn *t, enum etcd_op_kind kind, bool on_failure,
    const void *key, size_t key_len, const void *value, size_t value_len,
    uint64_t rev)
{
	struct etcd_op	*op, *nops;
	size_t		 cap;

	if (t == NULL || t->failed)
		return;
	if (t->n == t->cap) {
		cap = t->cap != 0 ? t->cap * 2 : 8;
		if ((nops = realloc(t->ops, cap * sizeof(*nops))) == NULL) {
			t->failed = true;
			return;
		}
		t->ops = nops;
		t->cap = cap;
	}
	op = &t->ops[t->n];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->on_failure = on_failure;
	op->rev = rev;
	if ((op->key = etcd_b64(key, key_len)) == NULL ||
	    ((kind == OP_PUT || value != NULL) &&
	    (op->value = etcd_b64(value, value_len)) == NULL)) {
		free(op->key);
		t->failed = true;
		return;
	}
	t->n++;
}

void
etcd_txn_cmp(struct etcd_txn *t, enum etcd_cmp what, const void *key,
    size_t key_len, uint64_t rev)
{
	etcd_txn_add(t, what == ETCD_CMP_MOD ? OP_CMP_MOD : OP_CMP_CREATE,
	    false, key, key_len, NULL, 0, rev);
}

void
etcd_txn_put(struct etcd_txn *t, bool on_failure, const void *key,
    size_t key_len, const void *value, size_t value_len)
{
	etcd_txn_add(t, OP_PUT, on_failure, key, key_len, value, value_len, 0);
}

void
etcd_txn_put_lease(struct etcd_txn *t, const void *key, size_t key_len,
    const void *value, size_t value_len, uint64_t lease)
{
	etcd_txn_add(t, OP_PUT, false, key, key_len, value, value_len, lease);
}

void
etcd_txn_delete(struct etcd_txn *t, bool on_failure, const void *key,
    size_t key_len)
{
	etcd_txn_add(t, OP_DELETE, on_failure, key, key_len, NULL, 0, 0);
}

void
etcd_txn_delete_range(struct etcd_txn *t, const void *key, size_t key_len,
    const void *end, size_t end_len)
{
	etcd_txn_add(t, OP_DELETE, false, key, key_len, end, end_len, 0);
}

void
etcd_txn_range(struct etcd_txn *t, bool on_failure, const void *key,
    size_t key_len)
{
	etcd_txn_add(t, OP_RANGE, on_failure, key, key_len, NULL, 0, 0);
}

/* The ops of one branch as the gateway's RequestOp objects. */
static void
etcd_txn_branch(struct json_w *w, const struct etcd_txn *t, bool failure)
{
	static const char *const names[] = {
		[OP_PUT] = "request_put",
		[OP_DELETE] = "request_delete_range",
		[OP_RANGE] = "request_range",
	};
	const struct etcd_op	*op;

	json_w_key(w, failure ? "failure" : "success");
	json_w_arr(w);
	for (op = t->ops; op < t->ops + t->n; op++) {
		if (op->kind == OP_CMP_MOD || op->kind == OP_CMP_CREATE ||
		    op->on_failure != failure)
			continue;
		json_w_obj(w);
		json_w_key(w, names[op->kind]);
		json_w_obj(w);
		json_w_kstr(w, "key", op->key);
		if (op->kind == OP_PUT)
			json_w_kstr(w, "value", op->value);
		if (op->kind == OP_DELETE && op->value != NULL)
			json_w_kstr(w, "range_end", op->value);
		if (op->kind == OP_PUT && op->rev != 0)
			etcd_w_u64(w, "lease", op->rev);
		json_w_obj_end(w);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
}

int
etcd_txn_commit(struct etcd *e, struct etcd_txn *t, etcd_cb cb, void *arg)
{
	const struct etcd_op	*op;
	struct json_w		*w;

	if (t == NULL || t->failed) {
		etcd_txn_free(t);
		return CERTD_ERR_NOMEM;
	}
	w = json_w_new();
	json_w_obj(w);
	json_w_key(w, "compare");
	json_w_arr(w);
	for (op = t->ops; op < t->ops + t->n; op++) {
		if (op->kind != OP_CMP_MOD && op->kind != OP_CMP_CREATE)
			continue;
		json_w_obj(w);
		json_w_kstr(w, "key", op->key);
		json_w_kstr(w, "target", op->kind == OP_CMP_MOD ? "MOD" :
		    "CREATE");
		json_w_kstr(w, "result", "EQUAL");
		etcd_w_u64(w, op->kind == OP_CMP_MOD ? "mod_revision" :
		    "create_revision", op->rev);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	etcd_txn_branch(w, t, false);
	etcd_txn_branch(w, t, true);
	json_w_obj_end(w);
	etcd_txn_free(t);
	return etcd_post(e, "/v3/kv/txn", w, cb, arg);
}

/* ------------------------------------------------------------------ */
/* Leases                                                              */

int
etcd_lease_grant(struct etcd *e, unsigned ttl_s, etcd_cb cb, void *arg)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	etcd_w_u64(w, "TTL", ttl_s);
	json_w_obj_end(w);
	return etcd_post(e, "/v3/lease/grant", w, cb, arg);
}

/* POST {"ID": lease} to path. */
static int
etcd_lease_post(struct etcd *e, const char *path, uint64_t lease,
    etcd_cb cb, void *arg)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	etcd_w_u64(w, "ID", lease);
	json_w_obj_end(w);
	return etcd_post(e, path, w, cb, arg);
}

int
etcd_lease_keepalive(struct etcd *e, uint64_t lease, etcd_cb cb, void *arg)
{
	return etcd_lease_post(e, "/v3/lease/keepalive", lease, cb, arg);
}

int
etcd_lease_revoke(struct etcd *e, uint64_t lease, etcd_cb cb, void *arg)
{
	return etcd_lease_post(e, "/v3/lease/revoke", lease, cb, arg);
}

/* ------------------------------------------------------------------ */
/* Watches                                                             */

/* The watch ends: once, with err. */
static void
etcd_watch_end(struct etcd_watch *w, int err, uint64_t compact_rev)
{
	if (w->ended)
		return;
	w->ended = true;
	w->cb(err, compact_rev, NULL, 0, 0, w->arg);
}

/* One message of the stream: {"result": {header, created, events, ...}}. */
static void
etcd_watch_message(struct etcd_watch *w, const char *line, size_t len)
{
	struct json_tree	*t;
	const struct json_tree	*res, *evs, *ev;
	struct etcd_event	*v = NULL;
	uint64_t		 rev = 0, compact = 0;
	size_t			 i, n;
	char			 why[ETCD_WHY_MAX];
	const char		*type;

	if ((t = json_tree_parse(line, len, why, sizeof(why))) == NULL ||
	    (res = json_tree_get(t, "result")) == NULL) {
		json_tree_free(t);
		etcd_watch_end(w, CERTD_ERR_STORAGE, 0);
		return;
	}
	if (json_tree_true(json_tree_get(res, "canceled"))) {
		(void)json_tree_u64(json_tree_get(res, "compact_revision"),
		    &compact);
		json_tree_free(t);
		etcd_watch_end(w, compact != 0 ? CERTD_ERR_NO_REVISION :
		    CERTD_ERR_STORAGE, compact);
		return;
	}
	(void)json_tree_u64(json_tree_get(json_tree_get(res, "header"),
	    "revision"), &rev);
	evs = json_tree_get(res, "events");
	if ((n = json_tree_len(evs)) > 0 &&
	    (v = calloc(n, sizeof(*v))) == NULL)
		n = 0;
	for (i = 0; i < n; i++) {
		ev = json_tree_at(evs, i);
		type = json_tree_str(json_tree_get(ev, "type"));
		v[i].is_delete = type != NULL && strcmp(type, "DELETE") == 0;
		if (etcd_kv_read(json_tree_get(ev, "kv"), &v[i].kv) != 0)
			break;
	}
	if (i == n && n > 0)
		w->cb(0, 0, v, n, rev, w->arg);
	else if (i < n || json_tree_len(evs) != n)
		etcd_watch_end(w, CERTD_ERR_STORAGE, 0);
	while (i-- > 0) {
		free((void *)(uintptr_t)v[i].kv.key);
		free((void *)(uintptr_t)v[i].kv.value);
	}
	free(v);
	json_tree_free(t);
}

/* Split what acc holds into lines, each a message, until one is partial. */
static void
etcd_watch_lines(struct etcd_watch *w)
{
	struct evbuffer_ptr	 nl;
	size_t			 len;

	while (!w->ended) {
		nl = evbuffer_search(w->acc, "\n", 1, NULL);
		if (nl.pos < 0) {
			if (evbuffer_get_length(w->acc) > ETCD_LINE_MAX)
				etcd_watch_end(w, CERTD_ERR_STORAGE, 0);
			return;
		}
		len = (size_t)nl.pos;
		etcd_watch_message(w, (const char *)evbuffer_pullup(w->acc,
		    (ev_ssize_t)len), len);
		evbuffer_drain(w->acc, len + 1);
	}
}

static void
etcd_watch_parse(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	etcd_watch_lines(arg);
}

/* Bytes of the stream, from inside curl: kept for the loop to split. */
static int
etcd_watch_data(const char *p, size_t len, void *arg)
{
	struct etcd_watch	*w = arg;

	if (w->ended || evbuffer_add(w->acc, p, len) != 0)
		return -1;
	event_active(w->parse, EV_TIMEOUT, 0);
	return 0;
}

static void
etcd_watch_done(long status, const char *body, size_t len, const char *why,
    void *arg)
{
	struct etcd_watch	*w = arg;

	(void)status;
	(void)body;
	(void)len;
	(void)why;
	w->x = NULL;
	etcd_watch_lines(w);		/* what came before the end */
	/* the stream closed: the next watch tries the next endpoint */
	etcd_next(w->e, w->ep);
	etcd_watch_end(w, CERTD_ERR_STORAGE, 0);
}

struct etcd_watch *
etcd_watch_new(struct etcd *e, const void *key, size_t key_len,
    const void *end, size_t end_len, uint64_t start_rev, etcd_watch_cb cb,
    void *arg)
{
	struct etcd_watch	*w;
	struct json_w		*jw = json_w_new();
	struct etcd_wire_limits	 lim = { e->timeout_ms, 0, ETCD_WATCH_IDLE_S };
	const char		*buf;
	char			 url[ETCD_URL_MAX];
	size_t			 len;

	json_w_obj(jw);
	json_w_key(jw, "create_request");
	json_w_obj(jw);
	etcd_w_bytes(jw, "key", key, key_len);
	if (end != NULL)
		etcd_w_bytes(jw, "range_end", end, end_len);
	if (start_rev != 0)
		etcd_w_u64(jw, "start_revision", start_rev);
	json_w_obj_end(jw);
	json_w_obj_end(jw);
	if (json_w_done(jw, &buf, &len) != 0 ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		json_w_free(jw);
		return NULL;
	}
	w->e = e;
	w->ep = e->cur;
	w->cb = cb;
	w->arg = arg;
	if ((w->acc = evbuffer_new()) == NULL ||
	    (w->parse = event_new(e->base, -1, 0, etcd_watch_parse, w)) ==
	    NULL || (w->x = etcd_wire_post(e->wire, etcd_url(e, "/v3/watch",
	    url, sizeof(url)), buf, len, &lim, etcd_watch_data,
	    etcd_watch_done, w)) == NULL) {
		json_w_free(jw);
		etcd_watch_free(w);
		return NULL;
	}
	json_w_free(jw);
	return w;
}

void
etcd_watch_free(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	etcd_wire_cancel(w->x);
	if (w->parse != NULL)
		event_free(w->parse);
	if (w->acc != NULL)
		evbuffer_free(w->acc);
	free(w);
}

/* ------------------------------------------------------------------ */
/* The client                                                          */

/* One "http://host:port" (or https://) into ep; else the reason in err. */
static int
etcd_endpoint_parse(const char *s, size_t len, struct etcd_endpoint *ep,
    char *err, size_t errlen)
{
	struct evhttp_uri	*u;
	char			 text[512];
	const char		*host, *path, *scheme;
	int			 port;

	if (len >= sizeof(text)) {
		snprintf(err, errlen, "etcd endpoint too long");
		return -1;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	if ((u = evhttp_uri_parse(text)) == NULL) {
		snprintf(err, errlen, "etcd endpoint %s is not a URL", text);
		return -1;
	}
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	path = evhttp_uri_get_path(u);
	scheme = evhttp_uri_get_scheme(u);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0) || host == NULL || *host == '\0' ||
	    port <= 0 || port > 65535 || evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_query(u) != NULL ||
	    (path != NULL && *path != '\0' && strcmp(path, "/") != 0)) {
		snprintf(err, errlen, "etcd endpoint %s: want http://host:port "
		    "or https://host:port", text);
		evhttp_uri_free(u);
		return -1;
	}
	/* an IPv6 address comes back without its brackets */
	if (asprintf(&ep->url, strchr(host, ':') != NULL ? "%s://[%s]:%d" :
	    "%s://%s:%d", scheme, host, port) < 0) {
		ep->url = NULL;
		snprintf(err, errlen, "out of memory");
	}
	evhttp_uri_free(u);
	return ep->url != NULL ? 0 : -1;
}

struct etcd *
etcd_new(struct event_base *base, const char *csv, unsigned timeout_ms,
    const struct etcd_tls *tls, char *err, size_t errlen)
{
	static const struct etcd_tls	 none;
	struct etcd			*e;
	const char			*p, *comma;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->base = base;
	e->timeout_ms = (long)timeout_ms;
	TAILQ_INIT(&e->reqs);
	if ((e->wire = etcd_wire_new(base, tls != NULL ? tls : &none, err,
	    errlen)) == NULL)
		goto fail;
	for (p = csv; ; p = comma + 1) {
		comma = strchr(p, ',');
		if (e->n == ETCD_ENDPOINTS_MAX) {
			snprintf(err, errlen, "more than %d etcd endpoints",
			    ETCD_ENDPOINTS_MAX);
			goto fail;
		}
		if (etcd_endpoint_parse(p, comma != NULL ? (size_t)(comma - p) :
		    strlen(p), &e->ep[e->n], err, errlen) != 0)
			goto fail;
		e->n++;
		if (comma == NULL)
			break;
	}
	return e;
fail:
	etcd_free(e);
	return NULL;
}

void
etcd_free(struct etcd *e)
{
	struct etcd_req	*r;
	size_t		 i;

	if (e == NULL)
		return;
	while ((r = TAILQ_FIRST(&e->reqs)) != NULL) {
		etcd_wire_cancel(r->x);
		etcd_req_fail(r, CERTD_ERR_SHUTDOWN, "shutting down", "");
	}
	etcd_wire_free(e->wire);
	for (i = 0; i < e->n; i++)
		free(e->ep[i].url);
	free(e);
}
