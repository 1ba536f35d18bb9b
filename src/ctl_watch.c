/* SPDX-License-Identifier: MIT */
/*
 * The subscribers' ops of the Unix socket (doc/protocol.md): watch (a
 * filter on a team's changes, replayed from a revision), unwatch, ack (a
 * subscriber's report on a revision it applied, with the TLS check it may
 * carry), and subscribers (who watches a certificate, and their last ack).
 * The hub keeps the watches; a connection gets its hub_conn at its first
 * watch.  Dispatched by ctl_ops.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl_int.h"
#include "err.h"
#include "hub.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "util.h"

/*
 * The ids and aliases of a watch request into f (counts) and *idv, *av
 * (the caller's to free, also on failure).  Returns 0, or -1 once the
 * error is answered.
 */
static int
watch_lists(struct ctl_req *r, const msgpack_object_array *ids,
    const msgpack_object_array *aliases, struct hub_filter *f,
    uint64_t **idv, char ***av)
{
	size_t	i;

	if (ids != NULL && ids->size > 0 &&
	    (*idv = calloc(ids->size, sizeof(**idv))) == NULL)
		goto nomem;
	for (i = 0; ids != NULL && i < ids->size; i++) {
		if (ids->ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			ctl_ops_bad_field(r, "ids",
			    "must be an array of unsigned integers");
			return -1;
		}
		(*idv)[f->n_ids++] = ids->ptr[i].via.u64;
	}
	if (aliases != NULL && aliases->size > 0 &&
	    (*av = calloc(aliases->size, sizeof(**av))) == NULL)
		goto nomem;
	for (i = 0; aliases != NULL && i < aliases->size; i++) {
		const msgpack_object *o = &aliases->ptr[i];

		if (o->type != MSGPACK_OBJECT_STR ||
		    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			ctl_ops_bad_field(r, "aliases",
			    "must be an array of strings");
			return -1;
		}
		if (o->via.str.size > CERTD_ALIAS_BYTES_MAX) {
			char	why[96];

			snprintf(why, sizeof(why), "each at most %d bytes (%d "
			    "characters), the longest an alias can be",
			    CERTD_ALIAS_BYTES_MAX, CERTD_ALIAS_MAX);
			ctl_ops_bad_field(r, "aliases", why);
			return -1;
		}
		if (((*av)[i] = strndup(o->via.str.ptr, o->via.str.size)) ==
		    NULL)
			goto nomem;
		f->n_aliases++;
	}
	return 0;
nomem:
	ctl_reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
	return -1;
}

void
ctl_watch_op_watch(struct ctl_req *r)
{
	struct ctl_conn			*conn = r->conn;
	const msgpack_object_array	*ids = NULL, *aliases = NULL;
	struct hub_filter		 f;
	struct hub_refusal		 why;
	struct service_field		 name;
	char				 namebuf[CERTD_WATCH_NAME_MAX + 1];
	char				 limit[64];
	uint64_t			*idv = NULL, since = 0, epoch = 0;
	uint64_t			 watch, rev;
	char				**av = NULL;
	msgpack_packer			 pk;
	size_t				 i;
	int				 has_since = 0, rv;

	memset(&f, 0, sizeof(f));
	if (ctl_ops_get_team(r, ACL_READ, 1) != 0 ||
	    ctl_ops_get_uint(r, "since", 0, &since, &has_since) != 0 ||
	    ctl_ops_get_uint(r, "epoch", 0, &epoch, NULL) != 0 ||
	    ctl_ops_get_str(r, "name", 0, &name) != 0)
		return;
	if (name.s != NULL) {
		if (name.len == 0 || name.len > CERTD_WATCH_NAME_MAX ||
		    !util_utf8_valid(name.s, name.len) ||
		    memchr(name.s, '\0', name.len) != NULL) {
			snprintf(limit, sizeof(limit), "must be 1-%d bytes "
			    "of UTF-8", CERTD_WATCH_NAME_MAX);
			ctl_ops_bad_field(r, "name", limit);
			return;
		}
		memcpy(namebuf, name.s, name.len);
		namebuf[name.len] = '\0';
		f.name = namebuf;
	}
	if (proto_get_array(r->map, "ids", &ids) < 0) {
		ctl_ops_bad_field(r, "ids",
		    "must be an array of unsigned integers");
		return;
	}
	if (proto_get_array(r->map, "aliases", &aliases) < 0) {
		ctl_ops_bad_field(r, "aliases", "must be an array of strings");
		return;
	}
	if (r->team[0] == '\0' && ((ids != NULL && ids->size > 0) ||
	    (aliases != NULL && aliases->size > 0))) {
		ctl_ops_bad_field(r, "team", "is required with ids or aliases");
		return;
	}
	if ((ids != NULL && ids->size > CERTD_WATCH_FILTER_MAX) ||
	    (aliases != NULL && aliases->size > CERTD_WATCH_FILTER_MAX)) {
		snprintf(limit, sizeof(limit), "at most %d entries",
		    CERTD_WATCH_FILTER_MAX);
		ctl_ops_bad_field(r, ids != NULL &&
		    ids->size > CERTD_WATCH_FILTER_MAX ? "ids" : "aliases",
		    limit);
		return;
	}
	if (conn->hc != NULL &&
	    hub_conn_watches(conn->hc) >= CERTD_WATCHES_MAX) {
		snprintf(limit, sizeof(limit),
		    "at most %d watches per connection", CERTD_WATCHES_MAX);
		ctl_ops_bad_field(r, "watch", limit);
		return;
	}
	if (watch_lists(r, ids, aliases, &f, &idv, &av) != 0)
		goto out;
	f.team = r->team[0] != '\0' ? r->team : NULL;
	f.ids = idv;
	f.aliases = (const char *const *)av;

	if (conn->hc == NULL) {
		if ((conn->hc = hub_conn_new(conn->ctl->hub, &ctl_conn_hub_ops,
		    conn, conn->ctl->cfg->ctl_out_limit)) == NULL)
			goto nomem;
		hub_conn_set_peer(conn->hc, conn->uid, conn->pid, conn->admin);
	}
	if ((rv = hub_watch_add(conn->hc, &f, &watch, &rev, &why)) != 0) {
		if (why.reason != NULL)
			log_warn("ctl watch refused uid=%lu pid=%ld: %s",
			    (unsigned long)conn->uid, (long)conn->pid,
			    why.reason);
		ctl_reply_error(conn, r->id, rv, why.field, why.reason);
		goto out;
	}
	ctl_conn_set_idle(conn);
	ctl_reply_begin(conn, r->id, &pk);
	msgpack_pack_map(&pk, 3);
	proto_kv_uint(&pk, "watch", watch);
	proto_kv_uint(&pk, "revision", rev);
	proto_kv_uint(&pk, "epoch", service_epoch(conn->ctl->svc));
	ctl_reply_end(conn, r->id);
	if (conn->state != CTL_CLOSED &&
	    (rv = hub_watch_replay(conn->hc, watch, has_since, since, epoch))
	    != 0) {
		log_error("ctl watch replay failed watch=%llu err=%d",
		    (unsigned long long)watch, rv);
		ctl_conn_fail(conn, rv, "replay failed");
	}
	goto out;
nomem:
	ctl_reply_error(conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
out:
	for (i = 0; i < f.n_aliases; i++)
		free(av[i]);
	free(av);
	free(idv);
}

void
ctl_watch_op_unwatch(struct ctl_req *r)
{
	uint64_t	watch;
	int		rv;

	if (ctl_ops_get_uint(r, "watch", 1, &watch, NULL) != 0)
		return;
	rv = r->conn->hc != NULL ? hub_unwatch(r->conn->hc, watch) :
	    CERTD_ERR_NOT_FOUND;
	if (rv == CERTD_ERR_NOT_FOUND) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NO_WATCH, NULL, NULL);
		return;
	}
	ctl_conn_set_idle(r->conn);
	ctl_reply_nil(r->conn, r->id);
}

/* The status of an ack: ok, failed or requested; -1 when none of them. */
static int
ack_status(const struct service_field *f)
{
	static const struct {
		const char		*name;
		enum hub_ack_status	 status;
	} names[] = {
		{ "ok", HUB_ACK_OK },
		{ "failed", HUB_ACK_FAILED },
		{ "requested", HUB_ACK_REQUESTED },
	};
	size_t	i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f->len == strlen(names[i].name) &&
		    memcmp(f->s, names[i].name, f->len) == 0)
			return (int)names[i].status;
	return -1;
}

/*
 * The TLS check an ack may carry: served_fingerprint_sha256 (64 lowercase
 * hex digits) and verified_at_unix (Unix seconds; certd's time now when
 * only the fingerprint came).  Replies and returns -1 when malformed.
 */
static int
ack_verify_fields(struct ctl_req *r, struct hub_ack *a)
{
	struct service_field	fp;
	uint64_t		at = 0;
	size_t			i;
	int			has_at;

	if (ctl_ops_get_str(r, "served_fingerprint_sha256", 0, &fp) != 0 ||
	    ctl_ops_get_uint(r, "verified_at_unix", 0, &at, &has_at) != 0)
		return -1;
	if (has_at && (at == 0 || at > INT64_MAX))
		return ctl_ops_bad_field(r, "verified_at_unix",
		    "must be Unix seconds after 1970");
	if (fp.s != NULL) {
		for (i = 0; i < fp.len; i++)
			if (!((fp.s[i] >= '0' && fp.s[i] <= '9') ||
			    (fp.s[i] >= 'a' && fp.s[i] <= 'f')))
				break;
		if (fp.len != CERTD_FINGERPRINT_LEN || i != fp.len)
			return ctl_ops_bad_field(r, "served_fingerprint_sha256",
			    "must be 64 lowercase hex digits (SHA-256)");
		memcpy(a->served, fp.s, fp.len);
		a->served[fp.len] = '\0';
		if (!has_at)
			at = (uint64_t)time(NULL);
	}
	a->verified_at = (int64_t)at;
	return 0;
}

void
ctl_watch_op_ack(struct ctl_req *r)
{
	struct service_field	status, detail;
	struct hub_ack		ack;
	uint64_t		watch;
	int			st;

	memset(&ack, 0, sizeof(ack));
	if (ctl_ops_get_uint(r, "watch", 1, &watch, NULL) != 0 ||
	    ctl_ops_get_uint(r, "revision", 1, &ack.revision, NULL) != 0 ||
	    ctl_ops_get_str(r, "status", 1, &status) != 0 ||
	    ctl_ops_get_str(r, "detail", 0, &detail) != 0)
		return;
	if ((st = ack_status(&status)) < 0) {
		ctl_ops_bad_field(r, "status",
		    "must be ok, failed or requested");
		return;
	}
	ack.status = (enum hub_ack_status)st;
	if (detail.s != NULL && (!util_utf8_valid(detail.s, detail.len) ||
	    memchr(detail.s, '\0', detail.len) != NULL)) {
		ctl_ops_bad_field(r, "detail", "must be UTF-8 text");
		return;
	}
	if (ack_verify_fields(r, &ack) != 0)
		return;
	/* Keep the whole characters that fit. */
	if (detail.len > CERTD_ACK_DETAIL_MAX) {
		detail.len = CERTD_ACK_DETAIL_MAX;
		while (detail.len > 0 &&
		    ((unsigned char)detail.s[detail.len] & 0xc0) == 0x80)
			detail.len--;
	}
	if (detail.s != NULL)
		memcpy(ack.detail, detail.s, detail.len);
	ack.detail[detail.len] = '\0';
	if (r->conn->hc == NULL || hub_ack(r->conn->hc, watch, &ack) != 0) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NO_WATCH, NULL, NULL);
		return;
	}
	ctl_reply_nil(r->conn, r->id);
}

/*
 * A subscriber of the `subscribers` result; node in fleet mode, the
 * fields of a TLS check only when its last ack carried one.
 */
static void
pack_subscriber(const struct hub_subscriber *sub, void *arg)
{
	msgpack_packer		*pk = arg;
	const struct hub_ack	*a = sub->ack;
	char			 at[24];
	int			 verified = a != NULL && a->verified_at != 0;

	msgpack_pack_map(pk, 8 + (sub->node != NULL) +
	    (verified ? 2 + (*a->served != '\0') : 0));
	if (sub->node != NULL)
		proto_kv_str(pk, "node", sub->node);
	proto_kv_str(pk, "name", sub->name);
	proto_kv_uint(pk, "uid", sub->uid);
	proto_kv_int(pk, "pid", sub->pid);
	proto_kv_uint(pk, "watch", sub->watch);
	if (a != NULL) {
		proto_kv_uint(pk, "revision", a->revision);
		proto_kv_str(pk, "status", hub_ack_status_name(a->status));
		proto_kv_str(pk, "detail", a->detail);
		proto_kv_int(pk, "at", a->at);
	} else {
		proto_kv_uint(pk, "revision", 0);
		proto_kv_str(pk, "status", "pending");
		proto_kv_str(pk, "detail", "");
		proto_kv_int(pk, "at", 0);
	}
	if (!verified)
		return;
	if (*a->served != '\0')
		proto_kv_str(pk, "served_fingerprint_sha256", a->served);
	util_time_iso(a->verified_at, 1, at);
	proto_kv_str(pk, "verified_at", at);
	proto_kv_int(pk, "verified_at_unix", a->verified_at);
}

static void
count_subscriber(const struct hub_subscriber *sub, void *arg)
{
	(void)sub;
	(*(size_t *)arg)++;
}

void
ctl_watch_op_subscribers(struct ctl_req *r)
{
	msgpack_packer	pk;
	uint64_t	cert_id;
	size_t		n = 0;

	if (ctl_ops_get_team(r, ACL_READ, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	if (service_subscribers(r->conn->ctl->svc, r->team, cert_id,
	    count_subscriber, &n) != 0) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NOT_FOUND, NULL,
		    NULL);
		return;
	}
	ctl_reply_begin(r->conn, r->id, &pk);
	msgpack_pack_map(&pk, 1);
	proto_pack_cstr(&pk, "list");
	msgpack_pack_array(&pk, n);
	service_subscribers(r->conn->ctl->svc, r->team, cert_id,
	    pack_subscriber, &pk);
	ctl_reply_end(r->conn, r->id);
}
