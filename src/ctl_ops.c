/* SPDX-License-Identifier: MIT */
/*
 * The ops of the Unix socket (doc/protocol.md): each decodes its request's
 * fields, checks the peer's rights, calls the service (or the hub), and
 * encodes the answer; ctl_ops_dispatch finds the op of a frame.  Ops that
 * wait for the store hold a struct ctl_wait (ctl.c) and answer from their
 * completion.  The subscribers' ops (watch, unwatch, ack, subscribers) are
 * in ctl_watch.c; connections, framing and replies in ctl.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl_int.h"
#include "err.h"
#include "hub.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "util.h"
#include "workq.h"


#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The peer, for the audit log. */
static const char *
who(const struct ctl_conn *conn)
{
	static char	buf[64];	/* copied at once by the service */

	snprintf(buf, sizeof(buf), "uid:%lu,pid:%ld", (unsigned long)conn->uid,
	    (long)conn->pid);
	return buf;
}

/* --- request fields ------------------------------------------------------- */

/* Field error reply; returns -1 for the caller to return. */
int
ctl_ops_bad_field(struct ctl_req *r, const char *field, const char *reason)
{
	ctl_reply_error(r->conn, r->id, CERTD_ERR_BAD_REQUEST, field, reason);
	return -1;
}

/* A string field into f (f->s NULL when absent and not required). */
int
ctl_ops_get_str(struct ctl_req *r, const char *key, int required,
    struct service_field *f)
{
	int	rv = proto_get_str(r->map, key, &f->s, &f->len);

	if (rv < 0)
		return ctl_ops_bad_field(r, key, "must be a string");
	if (rv == 0) {
		f->s = NULL;
		f->len = 0;
		if (required)
			return ctl_ops_bad_field(r, key, "is required");
	}
	return 0;
}

/* An unsigned integer field into *out; *present says if it came. */
int
ctl_ops_get_uint(struct ctl_req *r, const char *key, int required,
    uint64_t *out, int *present)
{
	int	rv = proto_get_uint(r->map, key, out);

	if (rv < 0)
		return ctl_ops_bad_field(r, key, "must be an unsigned integer");
	if (rv == 0 && required)
		return ctl_ops_bad_field(r, key, "is required");
	if (present != NULL)
		*present = rv == 1;
	return 0;
}

/*
 * The request's team (required unless optional), checked for the
 * permissions in need.  Replies and returns -1 on failure.
 */
int
ctl_ops_get_team(struct ctl_req *r, unsigned need, int optional)
{
	struct service_field	f;

	if (ctl_ops_get_str(r, "team", !optional, &f) != 0)
		return -1;
	if (f.s == NULL) {
		r->team[0] = '\0';
		return 0;
	}
	if (!util_team_valid(f.s, f.len)) {
		char	why[64];

		snprintf(why, sizeof(why), "must be 1-%d of [A-Za-z0-9_.-]",
		    CERTD_TEAM_MAX);
		return ctl_ops_bad_field(r, "team", why);
	}
	memcpy(r->team, f.s, f.len);
	r->team[f.len] = '\0';
	if ((ctl_conn_perms(r->conn, r->team) & need) != need) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_FORBIDDEN, NULL,
		    NULL);
		return -1;
	}
	return 0;
}

/* --- ops ------------------------------------------------------------------ */

static void
op_hello(struct ctl_req *r)
{
	struct ctl_conn	*conn = r->conn;
	msgpack_packer	 pk;
	uint64_t	 version;

	if (ctl_ops_get_uint(r, "version", 0, &version, NULL) != 0)
		return;
	ctl_reply_begin(conn, r->id, &pk);
	msgpack_pack_map(&pk, 7);
	proto_kv_uint(&pk, "version", CERTD_PROTO_VERSION);
	proto_kv_str(&pk, "server", "certd " PACKAGE_VERSION);
	proto_kv_uint(&pk, "frame_max", conn->ctl->cfg->frame_max);
	proto_kv_uint(&pk, "revision",
	    service_revision(conn->ctl->svc));
	proto_kv_uint(&pk, "epoch", service_epoch(conn->ctl->svc));
	proto_kv_uint(&pk, "uid", conn->uid);
	proto_kv_bool(&pk, "admin", conn->admin);
	ctl_reply_end(conn, r->id);
}

static void
op_ping(struct ctl_req *r)
{
	msgpack_packer	pk;

	ctl_reply_begin(r->conn, r->id, &pk);
	proto_pack_cstr(&pk, "pong");
	ctl_reply_end(r->conn, r->id);
}

static void
reply_cert(struct ctl_conn *conn, uint64_t id, const struct cert_record *rec,
    int with_key)
{
	msgpack_packer	pk;

	ctl_reply_begin(conn, id, &pk);
	hub_pack_cert(&pk, rec, with_key);
	ctl_reply_end(conn, id);
}

static void
op_get(struct ctl_req *r)
{
	const struct cert_record *rec;
	struct service_field	 alias;
	uint64_t		 cert_id;
	int			 has_id, failed = 0;
	char			 name[CERTD_ALIAS_BYTES_MAX + 1];

	if (ctl_ops_get_team(r, ACL_READ, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 0, &cert_id, &has_id) != 0 ||
	    ctl_ops_get_str(r, "alias", 0, &alias) != 0)
		return;
	if (has_id) {
		rec = service_get(r->conn->ctl->svc, r->team, cert_id);
		failed = rec == NULL && service_read_failed(r->conn->ctl->svc);
	} else if (alias.s != NULL) {
		if (alias.len >= sizeof(name) || memchr(alias.s, '\0',
		    alias.len) != NULL)
			rec = NULL;
		else {
			memcpy(name, alias.s, alias.len);
			name[alias.len] = '\0';
			rec = service_get_alias(r->conn->ctl->svc, r->team,
			    name);
			failed = rec == NULL &&
			    service_read_failed(r->conn->ctl->svc);
		}
	} else {
		ctl_ops_bad_field(r, "cert_id", "cert_id or alias is required");
		return;
	}
	if (rec == NULL) {
		ctl_reply_error(r->conn, r->id, failed ? CERTD_ERR_STORAGE :
		    CERTD_ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	reply_cert(r->conn, r->id, rec,
	    (ctl_conn_perms(r->conn, r->team) & ACL_KEY) != 0);
}

static void
op_list(struct ctl_req *r)
{
	const struct cert_record *page[CERTD_PAGE_SIZE_MAX];
	msgpack_packer		 pk;
	struct service_why	 why;
	uint64_t		 pno = 1, psize = CERTD_PAGE_SIZE_DEFAULT;
	size_t			 n, total, i;

	if (ctl_ops_get_team(r, ACL_READ, 0) != 0 ||
	    ctl_ops_get_uint(r, "page", 0, &pno, NULL) != 0 ||
	    ctl_ops_get_uint(r, "page_size", 0, &psize, NULL) != 0)
		return;
	if (service_page_check(pno, psize, &why) != 0) {
		ctl_ops_bad_field(r, why.field, why.reason);
		return;
	}
	n = service_list(r->conn->ctl->svc, r->team, (size_t)pno,
	    (size_t)psize, page, &total);
	if (service_read_failed(r->conn->ctl->svc)) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_STORAGE, NULL, NULL);
		return;
	}
	ctl_reply_begin(r->conn, r->id, &pk);
	msgpack_pack_map(&pk, 4);
	proto_pack_cstr(&pk, "list");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		msgpack_pack_map(&pk, 6);
		proto_kv_uint(&pk, "id", page[i]->id);
		proto_kv_str(&pk, "alias", page[i]->alias);
		proto_kv_str(&pk, "certificate_type", page[i]->cert_type);
		proto_kv_uint(&pk, "revision", page[i]->revision);
		proto_kv_int(&pk, "not_after", page[i]->meta.not_after);
		proto_kv_str(&pk, "fingerprint_sha256",
		    page[i]->meta.fingerprint);
	}
	proto_kv_uint(&pk, "page", pno);
	proto_kv_uint(&pk, "page_size", psize);
	proto_kv_uint(&pk, "total", total);
	ctl_reply_end(r->conn, r->id);
}

/*
 * A wait for put or rollback: its answer shows the record, and its key, as
 * far as the peer may see them in r's team.
 */
static struct ctl_wait *
wait_record(struct ctl_req *r)
{
	unsigned	 perms = ctl_conn_perms(r->conn, r->team);
	struct ctl_wait	*w;

	if ((w = ctl_wait_new(r, (perms & ACL_KEY) != 0)) != NULL)
		w->may_read = (perms & ACL_READ) != 0;
	return w;
}

/*
 * The completion of w: answers err (field, reason) while the peer is
 * there.  Returns 1 when the caller is to answer the result, 0 when
 * nothing more is to be answered (an error, or the connection closed).
 */
static int
wait_result(struct ctl_wait *w, int err, const char *field,
    const char *reason)
{
	if (w->conn->state == CTL_CLOSED)
		return 0;
	if (err != 0) {
		ctl_reply_error(w->conn, w->id, err, field, reason);
		return 0;
	}
	return 1;
}

/*
 * A record's identity, not its content: {id} for a delete, {id, revision}
 * for a put or rollback by a peer that may not read the team.
 */
static void
reply_id(struct ctl_wait *w, const struct cert_record *rec, int with_revision)
{
	msgpack_packer	pk;

	ctl_reply_begin(w->conn, w->id, &pk);
	msgpack_pack_map(&pk, with_revision ? 2 : 1);
	proto_kv_uint(&pk, "id", rec->id);
	if (with_revision)
		proto_kv_uint(&pk, "revision", rec->revision);
	ctl_reply_end(w->conn, w->id);
}

static void
put_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;

	if (wait_result(w, err, NULL, NULL)) {
		if (w->may_read)
			reply_cert(w->conn, w->id, rec, w->with_key);
		else
			reply_id(w, rec, 1);
	}
	ctl_wait_done(w);
}

/*
 * A put on its way: its fields copied out of the frame, its certificate
 * and key checked on a certd-check worker (service_precheck, GnuTLS), then
 * decided and submitted on the loop.  The connection's next frames wait
 * for it (ctl_conn_hold), so that they are done after it, as sent.
 */
struct put_job {
	struct workq_job	 job;		/* first: the job is the put_job */
	struct ctl_wait		*w;
	struct service_put_req	 req;		/* points into the copies */
	char			 team[CERTD_TEAM_MAX + 1];
	char			 who[64];
	char			*text[4];	/* alias, cert, key, type */
	size_t			 len[4];
	struct service_pair	*stored;
	struct service_precheck	*pre;
};

static void
put_job_free(struct put_job *pj)
{
	int	i;

	for (i = 0; i < 4; i++)
		if (pj->text[i] != NULL) {
			util_wipe(pj->text[i], pj->len[i]);
			free(pj->text[i]);
		}
	service_pair_free(pj->stored);
	service_precheck_free(pj->pre);
	free(pj);
}

/* Copy field f of the frame into the job (absent stays absent). */
static int
put_job_copy(struct put_job *pj, int i, struct service_field *f)
{
	if (f->s == NULL)
		return 0;
	if ((pj->text[i] = malloc(f->len + 1)) == NULL)
		return -1;
	memcpy(pj->text[i], f->s, f->len);
	pj->text[i][f->len] = '\0';
	pj->len[i] = f->len;
	f->s = pj->text[i];
	return 0;
}

/* On a certd-check worker. */
static void
put_check(struct workq_job *job)
{
	struct put_job	*pj = (struct put_job *)job;

	pj->req.pre = pj->pre = service_precheck(&pj->req, pj->stored);
}

/* Back on the loop. */
static void
put_checked(struct workq_job *job)
{
	struct put_job		*pj = (struct put_job *)job;
	struct ctl_wait		*w = pj->w;
	struct ctl_conn		*conn = w->conn;
	struct service_why	 why;
	int			 rv;

	rv = service_put(conn->ctl->svc, &pj->req, put_done, w, &why);
	if (rv != 0 && conn->state != CTL_CLOSED)
		ctl_reply_error(conn, w->id, rv, why.field, why.reason);
	put_job_free(pj);	/* the service copied what it keeps */
	ctl_conn_release(conn);	/* w's reference keeps conn */
	if (rv != 0)
		ctl_wait_done(w);
}

static void
op_put(struct ctl_req *r)
{
	struct service_put_req	 req;
	struct put_job		*pj;

	memset(&req, 0, sizeof(req));
	if (ctl_ops_get_team(r, ACL_WRITE, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 0, &req.id, NULL) != 0 ||
	    ctl_ops_get_str(r, "alias", 0, &req.alias) != 0 ||
	    ctl_ops_get_str(r, "certificate", 0, &req.certificate) != 0 ||
	    ctl_ops_get_str(r, "private_key", 0, &req.private_key) != 0 ||
	    ctl_ops_get_str(r, "certificate_type", 0, &req.cert_type) != 0)
		return;
	if ((pj = calloc(1, sizeof(*pj))) == NULL ||
	    put_job_copy(pj, 0, &req.alias) != 0 ||
	    put_job_copy(pj, 1, &req.certificate) != 0 ||
	    put_job_copy(pj, 2, &req.private_key) != 0 ||
	    put_job_copy(pj, 3, &req.cert_type) != 0) {
		if (pj != NULL)
			put_job_free(pj);
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		return;
	}
	if ((pj->w = wait_record(r)) == NULL) {
		put_job_free(pj);
		return;
	}
	snprintf(pj->team, sizeof(pj->team), "%s", r->team);
	snprintf(pj->who, sizeof(pj->who), "%s", who(r->conn));
	pj->req = req;
	pj->req.team = pj->team;
	pj->req.who = pj->who;
	/* Unchanged bytes are checked on the loop, cheaply: see them there. */
	if (req.id != 0)
		pj->stored = service_pair_copy(r->conn->ctl->svc, r->team,
		    req.id);
	ctl_conn_hold(r->conn);
	workq_submit(r->conn->ctl->check, &pj->job, put_check, put_checked);
}

static void
op_rollback(struct ctl_req *r)
{
	struct service_why	 why;
	struct ctl_wait		*w;
	uint64_t		 cert_id, revision;
	int			 rv;

	if (ctl_ops_get_team(r, ACL_WRITE, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 1, &cert_id, NULL) != 0 ||
	    ctl_ops_get_uint(r, "revision", 1, &revision, NULL) != 0)
		return;
	if ((w = wait_record(r)) == NULL)
		return;
	if ((rv = service_rollback(r->conn->ctl->svc,
	    who(r->conn), r->team, cert_id,
	    revision, put_done, w, &why)) != 0) {
		ctl_reply_error(r->conn, r->id, rv, why.field, why.reason);
		ctl_wait_done(w);
	}
}

/* History items, packed apart first: their number is known at the end. */
struct ctl_versions {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	size_t		n;
	int		failed;		/* out of memory: sb not whole */
};

static int
versions_write(void *data, const char *buf, size_t len)
{
	struct ctl_versions	*v = data;

	if (v->failed || msgpack_sbuffer_write(&v->sb, buf, len) != 0) {
		v->failed = 1;
		return -1;
	}
	return 0;
}

static int
pack_version(const struct cert_record *rec, void *arg)
{
	struct ctl_versions	*v = arg;

	msgpack_pack_map(&v->pk, 6);
	proto_kv_uint(&v->pk, "revision", rec->revision);
	proto_kv_str(&v->pk, "alias", rec->alias);
	proto_kv_str(&v->pk, "certificate_type", rec->cert_type);
	proto_kv_int(&v->pk, "not_after", rec->meta.not_after);
	proto_kv_str(&v->pk, "fingerprint_sha256", rec->meta.fingerprint);
	proto_kv_int(&v->pk, "updated_at", rec->updated_at);
	v->n++;
	return v->failed;
}

static void
op_history(struct ctl_req *r)
{
	struct ctl_versions	v;
	msgpack_packer		pk;
	uint64_t		cert_id;
	int			rv;

	if (ctl_ops_get_team(r, ACL_READ, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	memset(&v, 0, sizeof(v));
	msgpack_sbuffer_init(&v.sb);
	msgpack_packer_init(&v.pk, &v, versions_write);
	rv = service_history(r->conn->ctl->svc, r->team, cert_id,
	    pack_version, &v);
	if (rv == 0 && v.failed)
		rv = CERTD_ERR_NOMEM;
	if (rv != 0)
		ctl_reply_error(r->conn, r->id, rv, NULL, NULL);
	else {
		ctl_reply_begin(r->conn, r->id, &pk);
		msgpack_pack_map(&pk, 1);
		proto_pack_cstr(&pk, "list");
		msgpack_pack_array(&pk, v.n);
		if (v.sb.size > 0)
			(void)pk.callback(pk.data, v.sb.data, v.sb.size);
		ctl_reply_end(r->conn, r->id);
	}
	msgpack_sbuffer_destroy(&v.sb);
}

static void
delete_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;

	if (wait_result(w, err, NULL, NULL))
		reply_id(w, rec, 0);
	ctl_wait_done(w);
}

static void
op_delete(struct ctl_req *r)
{
	struct service_why	 why;
	struct ctl_wait		*w;
	uint64_t		 cert_id;
	int			 force = 0, rv;

	if (ctl_ops_get_team(r, ACL_WRITE, 0) != 0 ||
	    ctl_ops_get_uint(r, "cert_id", 1, &cert_id, NULL) != 0)
		return;
	if (proto_get_bool(r->map, "force", &force) < 0) {
		ctl_ops_bad_field(r, "force", "must be a boolean");
		return;
	}
	if ((w = ctl_wait_new(r, 0)) == NULL)
		return;
	if ((rv = service_delete(r->conn->ctl->svc,
	    who(r->conn), r->team, cert_id, force,
	    delete_done, w, &why)) != 0) {
		ctl_reply_error(r->conn, r->id, rv, why.field, why.reason);
		ctl_wait_done(w);
	}
}

/* Admin ops: root and certd's own uid only. */
static int
need_admin(struct ctl_req *r)
{
	if (r->conn->admin)
		return 0;
	ctl_reply_error(r->conn, r->id, CERTD_ERR_FORBIDDEN, NULL, NULL);
	return -1;
}

static void
rekey_done(int err, const struct cert_record *rec, void *arg)
{
	struct ctl_wait	*w = arg;
	msgpack_packer	 pk;
	const char	*kid = w->key_id;
	const char	*why = service_rekey_why(w->conn->ctl->svc, w->fleet);
	const char	*what = w->fleet ? "fleet key" : "master key";
	char		 kept[17];

	(void)rec;
	if (err == 0 && why == NULL)
		log_info("%s rotated key_id=%s", what, kid);
	else if (err == 0)
		log_error("%s rotated key_id=%s: %s", what, kid, why);
	else if (w->fleet)
		log_error("fleet key rotation to key_id=%s failed: %s", kid,
		    why != NULL ? why : err_msg(err));
	else {
		service_key_id(w->conn->ctl->svc, 0, kept);
		log_error("master key rotation failed, key_id=%s stays: %s",
		    kept, why != NULL ? why : err_msg(err));
	}
	if (wait_result(w, err, NULL, why)) {
		ctl_reply_begin(w->conn, w->id, &pk);
		msgpack_pack_map(&pk, 1);
		proto_kv_str(&pk, "key_id", kid);
		ctl_reply_end(w->conn, w->id);
	}
	ctl_wait_done(w);
}

static void
op_rekey(struct ctl_req *r)
{
	struct ctl_wait	*w;
	const char	*why;
	int		 rv, fleet = 0;

	if (need_admin(r) != 0)
		return;
	if (proto_get_bool(r->map, "fleet", &fleet) < 0) {
		ctl_ops_bad_field(r, "fleet", "must be a boolean");
		return;
	}
	if ((w = ctl_wait_new(r, 0)) == NULL)
		return;
	w->fleet = fleet;
	if ((rv = fleet ? service_fleet_rekey(r->conn->ctl->svc, who(r->conn),
	    rekey_done, w) : service_rekey(r->conn->ctl->svc, who(r->conn),
	    rekey_done, w)) != 0) {
		why = service_rekey_why(r->conn->ctl->svc, fleet);
		log_error("%s rotation refused: %s", fleet ? "fleet key" :
		    "master key", why != NULL ? why : err_msg(rv));
		ctl_reply_error(r->conn, r->id, rv, NULL, why);
		ctl_wait_done(w);
		return;
	}
	/*
	 * The store switched to this rotation's key on submission: its id,
	 * now, not at completion, when a later rotation may have switched
	 * again (or a failed one switched back).
	 */
	service_key_id(r->conn->ctl->svc, fleet, w->key_id);
}

/*
 * A backup: a checkpoint, hard links or copies of table files, and fsyncs.
 * It runs on the admin worker (store_backup takes the store's file locks),
 * so that the loop never waits on the disk; the answer comes back to it.
 */
struct backup_job {
	struct workq_job	 job;
	struct ctl_wait		*w;
	struct service		*svc;
	int			 rv;
	char			 path[4096];
	char			 why[512];
};

/* On the admin worker. */
static void
backup_run(struct workq_job *job)
{
	struct backup_job	*b = (struct backup_job *)job;

	b->rv = service_backup(b->svc, b->path, b->why, sizeof(b->why));
}

/* Back on the loop. */
static void
backup_done(struct workq_job *job)
{
	struct backup_job	*b = (struct backup_job *)job;
	struct ctl_wait		*w = b->w;

	if (b->rv != 0)
		log_error("backup failed dir=%s: %s", b->path, b->why);
	else
		log_info("backup written dir=%s", b->path);
	if (wait_result(w, b->rv, "dir", b->why))
		ctl_reply_nil(w->conn, w->id);
	ctl_wait_done(w);
	free(b);
}

static void
op_backup(struct ctl_req *r)
{
	struct service_field	 dir;
	struct backup_job	*b;
	struct ctl_wait		*w;

	if (need_admin(r) != 0 || ctl_ops_get_str(r, "dir", 1, &dir) != 0)
		return;
	if (dir.len == 0 || dir.len >= sizeof(b->path) || dir.s[0] != '/' ||
	    memchr(dir.s, '\0', dir.len) != NULL) {
		ctl_ops_bad_field(r, "dir", "must be an absolute path");
		return;
	}
	if ((w = ctl_wait_new(r, 0)) == NULL)
		return;
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		ctl_reply_error(r->conn, r->id, CERTD_ERR_NOMEM, NULL, NULL);
		ctl_wait_done(w);
		return;
	}
	b->w = w;
	b->svc = r->conn->ctl->svc;
	memcpy(b->path, dir.s, dir.len);
	b->path[dir.len] = '\0';
	workq_submit(r->conn->ctl->admin, &b->job, backup_run, backup_done);
}

/* The first CTL_OPEN_OPS ops are open to peers without any grant. */
#define CTL_OPEN_OPS	2
#define CTL_WHY_NO_GRANT \
	"this peer has no grant: no rule of certd's [acl] names its uid or " \
	"groups, and only hello and ping are open to it"

static const struct {
	const char	*name;
	void		(*fn)(struct ctl_req *);
} ctl_ops[] = {
	{ "hello",	op_hello },	/* open */
	{ "ping",	op_ping },	/* open */
	{ "get",	op_get },
	{ "list",	op_list },
	{ "put",	op_put },
	{ "delete",	op_delete },
	{ "watch",	ctl_watch_op_watch },
	{ "unwatch",	ctl_watch_op_unwatch },
	{ "ack",	ctl_watch_op_ack },
	{ "subscribers", ctl_watch_op_subscribers },
	{ "history",	op_history },
	{ "rollback",	op_rollback },
	{ "rekey",	op_rekey },
	{ "backup",	op_backup },
};

/* Handle one frame payload.  Returns -1 when the connection must stop. */
int
ctl_ops_dispatch(struct ctl_conn *conn, const char *buf, size_t len)
{
	msgpack_unpacked	 msg;
	struct ctl_req		 r;
	const char		*reason, *op;
	char			 why[96];
	size_t			 op_len, i;
	size_t			 n_ops = sizeof(ctl_ops) / sizeof(ctl_ops[0]);
	int			 rv = 0;

	msgpack_unpacked_init(&msg);
	if (proto_decode(buf, len, &msg, &reason) != 0) {
		snprintf(why, sizeof(why), "%s: %s",
		    err_msg(CERTD_ERR_FRAME_MALFORMED), reason);
		ctl_conn_fail(conn, CERTD_ERR_FRAME_MALFORMED, why);
		rv = -1;
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.conn = conn;
	r.map = &msg.data;
	if (proto_get_uint(r.map, "id", &r.id) != 1 ||
	    proto_get_str(r.map, "op", &op, &op_len) != 1) {
		snprintf(why, sizeof(why), "%s: id and op are required",
		    err_msg(CERTD_ERR_FRAME_MALFORMED));
		ctl_conn_fail(conn, CERTD_ERR_FRAME_MALFORMED, why);
		rv = -1;
		goto out;
	}
	for (i = 0; i < n_ops; i++)
		if (strlen(ctl_ops[i].name) == op_len &&
		    memcmp(ctl_ops[i].name, op, op_len) == 0)
			break;
	/* Unknown ops too are refused to a peer without a grant. */
	if (i >= CTL_OPEN_OPS && ctl_conn_perms(conn, NULL) == 0)
		ctl_reply_error(conn, r.id, CERTD_ERR_FORBIDDEN, NULL,
		    CTL_WHY_NO_GRANT);
	else if (i == n_ops)
		ctl_reply_error(conn, r.id, CERTD_ERR_BAD_REQUEST, "op",
		    "unknown op");
	else
		ctl_ops[i].fn(&r);
out:
	msgpack_unpacked_destroy(&msg);
	return rv;
}
