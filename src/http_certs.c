/* SPDX-License-Identifier: MIT */
/*
 * The team-certificate resource: JSON in, service call, JSON out.  Field
 * types are checked here (they are JSON's business); every other rule is
 * the service's.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "certd/constants.h"
#include "http.h"
#include "http_certs.h"
#include "hub.h"
#include "json.h"
#include "record.h"
#include "service.h"
#include "tokens.h"
#include "util.h"
#include "workq.h"

_Static_assert(SERVICE_WHO_MAX >= CERTD_TOKEN_SUBJECT_MAX + 5,
    "who must hold cert: and a whole subject");

/* The client, for the audit log. */
static const char *
who(const struct http_req *r)
{
	static char	buf[CERTD_TOKEN_SUBJECT_MAX + 8];	/* copied at once */

	if (r->token->subject != NULL)
		snprintf(buf, sizeof(buf), "cert:%s", r->token->subject);
	else
		snprintf(buf, sizeof(buf), "token:%s", r->token->name);
	return buf;
}

/* A time as ISO 8601 UTC, with the zone. */
static void
kv_time(struct json_w *w, const char *key, int64_t t)
{
	char	buf[24];

	util_time_iso(t, 1, buf);
	json_w_kstr(w, key, buf);
}

/*
 * issued_to: DNS and IP SANs without 127.0.0.1, then the subject CN when it
 * is not already there.
 */
static void
issued_to(struct json_w *w, const struct cert_meta *m)
{
	size_t	i;
	int	cn_seen = 0;

	json_w_key(w, "issued_to");
	json_w_arr(w);
	for (i = 0; i < m->n_sans; i++) {
		if (strcmp(m->sans[i], "127.0.0.1") == 0)
			continue;
		if (m->subject_cn != NULL && strcmp(m->sans[i], m->subject_cn) == 0)
			cn_seen = 1;
		json_w_str(w, m->sans[i]);
	}
	if (m->subject_cn != NULL && !cn_seen)
		json_w_str(w, m->subject_cn);
	json_w_arr_end(w);
}

static int
has_expired(const struct cert_record *rec)
{
	return rec->meta.not_after < (int64_t)time(NULL);
}

/*
 * TeamCertificatesR.  A token without keys= permission gets private_key as
 * an empty string rather than no member: Rainbond's clients parse the
 * member as a required string.  PEM is stored in normal form (blocks only,
 * pem_normalize), ASCII.
 */
static struct json_w *
record_json(const struct cert_record *rec, int keys)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	json_w_kuint(w, "id", rec->id);
	json_w_kstr(w, "alias", rec->alias);
	json_w_key(w, "private_key");
	if (keys)
		json_w_strn(w, rec->private_key, rec->private_key_len);
	else
		json_w_str(w, "");
	json_w_key(w, "certificate");
	json_w_strn(w, rec->certificate, rec->certificate_len);
	json_w_kstr(w, "certificate_type", rec->cert_type);
	json_w_kuint(w, "revision", rec->revision);
	kv_time(w, "not_before", rec->meta.not_before);
	kv_time(w, "not_after", rec->meta.not_after);
	json_w_kstr(w, "fingerprint_sha256", rec->meta.fingerprint);
	issued_to(w, &rec->meta);
	json_w_kbool(w, "has_expired", has_expired(rec));
	json_w_obj_end(w);
	return w;
}

/* A list item: never key or PEM. */
static void
item_json(struct json_w *w, const struct cert_record *rec)
{
	char	end[24];

	util_time_iso(rec->meta.not_after, 0, end);
	json_w_obj(w);
	json_w_kuint(w, "id", rec->id);
	json_w_kstr(w, "alias", rec->alias);
	json_w_kstr(w, "certificate_type", rec->cert_type);
	issued_to(w, &rec->meta);
	json_w_kstr(w, "issued_by", rec->meta.issuer_cn != NULL ?
	    rec->meta.issuer_cn : rec->meta.issuer_dn);
	json_w_kstr(w, "end_data", end);
	json_w_kbool(w, "has_expired", has_expired(rec));
	json_w_obj_end(w);
}

/*
 * A page parameter: absent gives def; a value that is not a strict decimal
 * integer JSON can carry back (int64) gives 0, which the service's
 * rule refuses.
 */
static uint64_t
query_number(const struct evkeyvalq *q, const char *name, uint64_t def)
{
	const char	*v = evhttp_find_header(q, name);
	uint64_t	 n;

	if (v == NULL)
		return def;
	if (util_parse_u64(v, strlen(v), INT64_MAX, &n) != 0)
		return 0;
	return n;
}

int
http_certs_paging(const char *query, uint64_t *page, uint64_t *page_size,
    struct service_why *why)
{
	struct evkeyvalq	 q;
	int			 rv;

	TAILQ_INIT(&q);
	/* A value with an encoded NUL would be read up to the NUL only. */
	if (query != NULL && (evhttp_parse_query_str(query, &q) != 0 ||
	    strcasestr(query, "%00") != NULL)) {
		why->field = "query";
		why->reason = "is not a valid query string";
		rv = CERTD_ERR_BAD_REQUEST;
	} else {
		*page = query_number(&q, "page", 1);
		*page_size = query_number(&q, "page_size",
		    CERTD_PAGE_SIZE_DEFAULT);
		rv = service_page_check(*page, *page_size, why);
	}
	evhttp_clear_headers(&q);
	return rv;
}

/*
 * ?alias=A: the team's certificate of that alias (white space around it
 * trimmed, as a write trims it), the one item of the list, if any.
 * Returns 0 with *given (whether the query has alias) and *rec (NULL: no
 * such alias), -1 when the value is empty, -2 when the record cannot be
 * read.
 */
static int
list_alias(struct http_req *r, const char *query,
    const struct cert_record **rec, int *given)
{
	struct evkeyvalq	 q;
	const char		*v;
	char			 alias[CERTD_ALIAS_BYTES_MAX + 1];
	size_t			 len;
	int			 rv = 0;

	*rec = NULL;
	*given = 0;
	TAILQ_INIT(&q);
	if (query == NULL || evhttp_parse_query_str(query, &q) != 0 ||
	    (v = evhttp_find_header(&q, "alias")) == NULL)
		goto out;
	*given = 1;
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' ||
	    v[len - 1] == '\r' || v[len - 1] == '\n'))
		len--;
	if (len == 0)
		rv = -1;
	else if (len < sizeof(alias)) {	/* longer: no alias is */
		memcpy(alias, v, len);
		alias[len] = '\0';
		if ((*rec = service_get_alias(r->svc, r->team, alias)) ==
		    NULL && service_read_failed(r->svc))
			rv = -2;
	}
out:
	evhttp_clear_headers(&q);
	return rv;
}

/* {"list":[ written, for the items; list_end closes both. */
static struct json_w *
list_begin(void)
{
	struct json_w	*w = json_w_new();

	json_w_obj(w);
	json_w_key(w, "list");
	json_w_arr(w);
	return w;
}

static struct json_w *
list_end(struct json_w *w)
{
	json_w_arr_end(w);
	json_w_obj_end(w);
	return w;
}

void
http_certs_list(struct http_req *r)
{
	const struct evhttp_uri	 *uri = evhttp_request_get_evhttp_uri(r->req);
	const char		 *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	const struct cert_record *page[CERTD_PAGE_SIZE_MAX], *one;
	struct service_why	  why;
	uint64_t		  pno, psize;
	size_t			  n, total, i;
	struct json_w		 *w;
	int			  by_alias, rv;

	if ((rv = http_certs_paging(query, &pno, &psize, &why)) != 0) {
		http_reply_error(r, rv, why.field, why.reason);
		return;
	}
	if ((rv = list_alias(r, query, &one, &by_alias)) != 0) {
		if (rv == -2)
			http_reply_error(r, CERTD_ERR_STORAGE, NULL, NULL);
		else
			http_reply_error(r, CERTD_ERR_BAD_REQUEST, "alias",
			    "must not be empty");
		return;
	}

	if (by_alias) {
		total = one != NULL;
		n = one != NULL && pno == 1;
		page[0] = one;
	} else
		n = service_list(r->svc, r->team, (size_t)pno, (size_t)psize,
		    page, &total);
	if (!by_alias && service_read_failed(r->svc)) {
		http_reply_error(r, CERTD_ERR_STORAGE, NULL, NULL);
		return;
	}
	w = list_begin();
	for (i = 0; i < n; i++)
		item_json(w, page[i]);
	json_w_arr_end(w);
	json_w_kuint(w, "page", pno);
	json_w_kuint(w, "page_size", psize);
	json_w_kuint(w, "total", total);
	json_w_obj_end(w);
	http_reply_json(r, 200, w);
}

void
http_certs_get(struct http_req *r)
{
	const struct cert_record *rec = service_get(r->svc, r->team, r->cert_id);

	if (rec == NULL) {
		http_reply_error(r, service_read_failed(r->svc) ?
		    CERTD_ERR_STORAGE : CERTD_ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	http_reply_json(r, 200, record_json(rec, r->keys));
}

static void
put_done(int err, const struct cert_record *rec, void *arg)
{
	struct http_req	*r = arg;

	if (err != 0)
		http_reply_error(r, err, NULL, NULL);
	else
		http_reply_json(r, 200, record_json(rec, r->keys));
}

/*
 * Read one string field.  Absent or null: omitted.  Returns 0, or -1 when
 * the value is not a string.
 */
static int
body_field(const struct json_body *b, const char *name,
    struct service_field *f)
{
	const struct json_member	*v = json_body_get(b, name);

	f->s = NULL;
	f->len = 0;
	if (v == NULL || v->kind == JSON_NULL)
		return 0;
	if (v->kind != JSON_STRING)
		return -1;
	f->s = v->s;
	f->len = v->len;
	return 0;
}

/*
 * The request body as a JSON object into *b (the caller frees it, which
 * wipes it); an empty body is an empty object when empty_ok.  The raw
 * bytes may hold key text: the caller wipes them once parsed.  On failure
 * returns a CERTD_ERR_* with reason filled.
 */
int
http_certs_body_parse(const char *data, size_t len, int empty_ok,
    struct json_body *b, char *reason, size_t reasonlen)
{
	memset(b, 0, sizeof(*b));
	reason[0] = '\0';
	if (len > CERTD_BODY_MAX) {
		snprintf(reason, reasonlen, "must be at most %d bytes",
		    CERTD_BODY_MAX);
		return CERTD_ERR_TOO_LARGE;
	}
	if (len == 0 && !empty_ok) {
		snprintf(reason, reasonlen, "is required");
		return CERTD_ERR_BAD_REQUEST;
	}
	if (len == 0)
		return 0;
	return json_body_parse(data, len, b, reason, reasonlen);
}

const char *
http_certs_fields(const struct json_body *b, struct service_put_req *req)
{
	if (body_field(b, "alias", &req->alias) != 0)
		return "alias";
	if (body_field(b, "private_key", &req->private_key) != 0)
		return "private_key";
	if (body_field(b, "certificate", &req->certificate) != 0)
		return "certificate";
	if (body_field(b, "certificate_type", &req->cert_type) != 0)
		return "certificate_type";
	return NULL;
}

/* The request's body as a JSON object, or a reply and -1. */
static int
body_object(struct http_req *r, int empty_ok, struct json_body *b)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(r->req);
	size_t		 len = evbuffer_get_length(in);
	unsigned char	*data = NULL;
	char		 reason[200];
	int		 rv;

	if (len > 0 && len <= CERTD_BODY_MAX &&
	    (data = evbuffer_pullup(in, -1)) == NULL) {
		http_reply_error(r, CERTD_ERR_NOMEM, NULL, NULL);
		return -1;
	}
	rv = http_certs_body_parse((const char *)data, len, empty_ok, b,
	    reason, sizeof(reason));
	if (data != NULL)
		util_wipe(data, len);	/* it may hold key text */
	if (rv != 0) {
		json_body_free(b);
		http_reply_error(r, rv, reason[0] != '\0' ? "body" : NULL,
		    reason[0] != '\0' ? reason : NULL);
		return -1;
	}
	return 0;
}

/*
 * A create or update on its way.  Decoding the body and checking its
 * certificate and key (service_precheck: GnuTLS, most of a new
 * certificate's cost) need nothing of the daemon's state: the REST worker
 * does both (workq.h) on a copy of the body, and the loop then decides and
 * submits.
 */
struct put_job {
	struct workq_job	 job;		/* first: the job is the put_job */
	struct http_req		*r;
	uint64_t		 id;
	char			 who[SERVICE_WHO_MAX + 1];	/* the token may
							   be swapped */
	char			*body;		/* copy; may hold key text */
	size_t			 len;

	/* What the worker made of it. */
	struct json_body	 body_json;	/* wiped when freed */
	int			 err;
	char			 reason[200];
	const char		*bad;		/* field that is not a string */
	struct service_put_req	 req;		/* points into body_json */
	struct service_precheck	*pre;		/* req's check, or NULL */
	struct service_pair	*stored;	/* an update's record's pair */
};

/* On the worker. */
static void
put_decode(struct workq_job *job)
{
	struct put_job	*pj = (struct put_job *)job;

	pj->err = http_certs_body_parse(pj->body, pj->len, pj->id != 0,
	    &pj->body_json, pj->reason, sizeof(pj->reason));
	if (pj->body != NULL) {
		util_wipe(pj->body, pj->len);
		free(pj->body);
		pj->body = NULL;
	}
	if (pj->err == 0 &&
	    (pj->bad = http_certs_fields(&pj->body_json, &pj->req)) == NULL)
		pj->req.pre = pj->pre = service_precheck(&pj->req, pj->stored);
}

/* Back on the loop. */
static void
put_decoded(struct workq_job *job)
{
	struct put_job		*pj = (struct put_job *)job;
	struct http_req		*r = pj->r;
	struct service_why	 why;
	int			 rv;

	if (pj->err != 0)
		http_reply_error(r, pj->err, pj->reason[0] != '\0' ? "body" :
		    NULL, pj->reason[0] != '\0' ? pj->reason : NULL);
	else if (pj->bad != NULL)
		http_reply_error(r, CERTD_ERR_BAD_REQUEST, pj->bad,
		    "must be a string");
	else {
		pj->req.team = r->team;
		pj->req.id = pj->id;
		pj->req.who = pj->who;
		/* The service copies what it keeps. */
		if ((rv = service_put(r->svc, &pj->req, put_done, r,
		    &why)) != 0)
			http_reply_error(r, rv, why.field, why.reason);
	}
	service_precheck_free(pj->pre);
	service_pair_free(pj->stored);
	json_body_free(&pj->body_json);
	free(pj);
}

static void
put(struct http_req *r, uint64_t id)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(r->req);
	struct put_job	*pj;
	unsigned char	*data = NULL;
	size_t		 len = evbuffer_get_length(in);

	if ((pj = calloc(1, sizeof(*pj))) == NULL) {
		http_reply_error(r, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	pj->r = r;
	pj->id = id;
	pj->len = len;
	snprintf(pj->who, sizeof(pj->who), "%s", who(r));
	/* Unchanged bytes are checked on the loop, cheaply: see them there. */
	if (id != 0)
		pj->stored = service_pair_copy(r->svc, r->team, id);
	/* Too large a body is refused by its length alone: no copy. */
	if (len > 0 && len <= CERTD_BODY_MAX) {
		if ((data = evbuffer_pullup(in, -1)) == NULL ||
		    (pj->body = malloc(len)) == NULL) {
			if (data != NULL)
				util_wipe(data, len);
			service_pair_free(pj->stored);
			free(pj);
			http_reply_error(r, CERTD_ERR_NOMEM, NULL, NULL);
			return;
		}
		memcpy(pj->body, data, len);
		util_wipe(data, len);	/* it may hold key text */
		evbuffer_drain(in, len);	/* the copy is the body now */
	}
	http_submit(r->http, &pj->job, put_decode, put_decoded);
}

void
http_certs_create(struct http_req *r)
{
	put(r, 0);
}

void
http_certs_update(struct http_req *r)
{
	put(r, r->cert_id);
}

static void
delete_done(int err, const struct cert_record *rec, void *arg)
{
	struct http_req	*r = arg;

	(void)rec;
	if (err != 0)
		http_reply_error(r, err, NULL, NULL);
	else
		http_reply_empty(r, 204);
}

void
http_certs_delete(struct http_req *r)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(r->req);
	const char		*query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	const char		*v;
	struct evkeyvalq	 q;
	struct service_why	 why;
	int			 force = 0, rv;

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		evhttp_clear_headers(&q);
		http_reply_error(r, CERTD_ERR_BAD_REQUEST, "query",
		    "is not a valid query string");
		return;
	}
	if ((v = evhttp_find_header(&q, "force")) != NULL) {
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			force = 1;
		else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0) {
			evhttp_clear_headers(&q);
			http_reply_error(r, CERTD_ERR_BAD_REQUEST, "force",
			    "must be true or false");
			return;
		}
	}
	evhttp_clear_headers(&q);
	if ((rv = service_delete(r->svc, who(r),
	    r->team, r->cert_id, force,
	    delete_done, r, &why)) != 0)
		http_reply_error(r, rv, why.field, why.reason);
}

/*
 * A subscriber of the list (node: fleet mode's host of it);
 * served_fingerprint_sha256 and verified_at are
 * null unless its last ack carried a TLS check (and the first also when
 * that check saw no certificate served).
 */
static void
subscriber_json(const struct hub_subscriber *sub, void *arg)
{
	const struct hub_ack	*a = sub->ack;
	struct json_w		*w = arg;
	int			 verified = a != NULL && a->verified_at != 0;

	json_w_obj(w);
	if (sub->node != NULL)
		json_w_kstr(w, "node", sub->node);
	json_w_kstr(w, "name", sub->name);
	json_w_kuint(w, "uid", (uint64_t)sub->uid);
	json_w_kint(w, "pid", (int64_t)sub->pid);
	json_w_kuint(w, "watch", sub->watch);
	json_w_kuint(w, "revision", a != NULL ? a->revision : 0);
	json_w_kstr(w, "status", a == NULL ? "pending" :
	    hub_ack_status_name(a->status));
	json_w_kstr(w, "detail", a != NULL ? a->detail : "");
	if (a != NULL)
		kv_time(w, "at", a->at);
	else
		json_w_kstr(w, "at", NULL);
	json_w_kstr(w, "served_fingerprint_sha256",
	    verified && *a->served != '\0' ? a->served : NULL);
	if (verified)
		kv_time(w, "verified_at", a->verified_at);
	else
		json_w_kstr(w, "verified_at", NULL);
	json_w_obj_end(w);
}

void
http_certs_subscribers(struct http_req *r)
{
	struct json_w	*w = list_begin();

	if (service_subscribers(r->svc, r->team, r->cert_id, subscriber_json,
	    w) != 0) {
		json_w_free(w);
		http_reply_error(r, CERTD_ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	http_reply_json(r, 200, list_end(w));
}

/* A history item: never key or PEM. */
static int
version_json(const struct cert_record *rec, void *arg)
{
	struct json_w	*w = arg;

	json_w_obj(w);
	json_w_kuint(w, "revision", rec->revision);
	json_w_kstr(w, "alias", rec->alias);
	json_w_kstr(w, "certificate_type", rec->cert_type);
	kv_time(w, "not_after", rec->meta.not_after);
	json_w_kstr(w, "fingerprint_sha256", rec->meta.fingerprint);
	kv_time(w, "updated_at", rec->updated_at);
	json_w_obj_end(w);
	return 0;
}

void
http_certs_history(struct http_req *r)
{
	struct json_w	*w = list_begin();
	int		 rv;

	if ((rv = service_history(r->svc, r->team, r->cert_id, version_json,
	    w)) != 0) {
		json_w_free(w);
		http_reply_error(r, rv, NULL, NULL);
		return;
	}
	http_reply_json(r, 200, list_end(w));
}

void
http_certs_rollback(struct http_req *r)
{
	struct json_body		 b;
	const struct json_member	*v;
	struct service_why		 why;
	int64_t				 rev;
	int				 given, rv;

	if (body_object(r, 0, &b) != 0)
		return;
	v = json_body_get(&b, "revision");
	given = v != NULL && v->kind != JSON_NULL;
	rev = v != NULL && v->kind == JSON_INT ? v->i : -1;
	json_body_free(&b);
	if (!given) {
		http_reply_error(r, CERTD_ERR_BAD_REQUEST, "revision",
		    "is required");
		return;
	}
	if (rev < 0) {
		http_reply_error(r, CERTD_ERR_BAD_REQUEST, "revision",
		    "must be an unsigned integer");
		return;
	}
	if ((rv = service_rollback(r->svc, who(r),
	    r->team, r->cert_id, (uint64_t)rev,
	    put_done, r, &why)) != 0)
		http_reply_error(r, rv, why.field, why.reason);
}
