/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the hub: filters, ordering, coalescing under back-pressure,
 * bindings, replay and resync, and what keeps peers apart: bindings only for
 * writers, subscriber names owned by a uid, per-uid filter budgets, watches
 * ended when a reload revokes a right.  A real store on a temporary directory
 * feeds the hub; subscriber connections are fakes that record the frames
 * they are given and report whatever queue length the test sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "certd/constants.h"
#include "hub.h"
#include "proto.h"
#include "store.h"

/* Where the store stands (store_get_pos), as a value. */
static struct store_pos
pos(const struct store *s)
{
	struct store_pos	p;

	store_get_pos(s, &p);
	return p;
}

#define MAX_FRAMES	4096

struct fake {
	size_t		 queued;	/* what queued() reports */
	/* the one team may_read allows; NULL: all; "-": none */
	const char	*readable;
	int		 key;
	int		 write;		/* what may_write says */
	size_t		 n;
	struct {
		char	 event[16];	/* "error" for an error frame */
		int64_t	 code;		/* of an error frame */
		uint64_t watch;
		uint64_t revision;
		uint64_t id;
		char	 alias[64];
		int	 has_key;
	} f[MAX_FRAMES];
};

struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct store		*store;
	struct hub		*hub;
	int			 done;
};

static int
fake_send(void *ctx, const void *frame, size_t len)
{
	struct fake		*fk = ctx;
	msgpack_unpacked	 msg;
	const msgpack_object	*cert;
	const char		*s, *reason;
	size_t			 slen, plen;
	int			 i;

	assert_int_equal(proto_frame_peek(frame, len, (size_t)-1, &plen), 1);
	assert_int_equal(plen + CERTD_FRAME_HEADER_LEN, len);
	msgpack_unpacked_init(&msg);
	assert_int_equal(proto_decode((const char *)frame + CERTD_FRAME_HEADER_LEN,
	    plen, &msg, &reason), 0);
	assert_true(fk->n < MAX_FRAMES);
	i = (int)fk->n++;
	memset(&fk->f[i], 0, sizeof(fk->f[i]));
	if (proto_get(&msg.data, "event") == NULL) {
		/* {"id":0,"ok":false,"watch":W,"error":{"code":C,...}} */
		strcpy(fk->f[i].event, "error");
		assert_int_equal(proto_get_uint(&msg.data, "watch",
		    &fk->f[i].watch), 1);
		assert_non_null(cert = proto_get(&msg.data, "error"));
		assert_int_equal(proto_get_int(cert, "code", &fk->f[i].code), 1);
		assert_int_equal(proto_get_str(cert, "reason", &s, &slen), 1);
		msgpack_unpacked_destroy(&msg);
		return 0;
	}
	assert_int_equal(proto_get_str(&msg.data, "event", &s, &slen), 1);
	memcpy(fk->f[i].event, s, slen);
	assert_int_equal(proto_get_uint(&msg.data, "watch", &fk->f[i].watch), 1);
	assert_int_equal(proto_get_uint(&msg.data, "revision",
	    &fk->f[i].revision), 1);
	if ((cert = proto_get(&msg.data, "cert")) != NULL) {
		assert_int_equal(proto_get_uint(cert, "id", &fk->f[i].id), 1);
		assert_int_equal(proto_get_str(cert, "alias", &s, &slen), 1);
		memcpy(fk->f[i].alias, s, slen);
		fk->f[i].has_key = proto_get(cert, "private_key") != NULL;
	}
	msgpack_unpacked_destroy(&msg);
	return 0;
}

static size_t
fake_queued(void *ctx)
{
	return ((struct fake *)ctx)->queued;
}

static int
fake_may_read(void *ctx, const char *team)
{
	struct fake	*fk = ctx;

	if (team == NULL)
		return fk->readable == NULL || strcmp(fk->readable, "-") != 0;
	return fk->readable == NULL || strcmp(fk->readable, team) == 0;
}

static int
fake_may_write(void *ctx, const char *team)
{
	(void)team;
	return ((struct fake *)ctx)->write;
}

static int
fake_may_key(void *ctx, const char *team)
{
	(void)team;
	return ((struct fake *)ctx)->key;
}

static void
fake_drop(void *ctx, const char *why)
{
	(void)ctx;
	fail_msg("dropped: %s", why);
}

static const struct hub_conn_ops fake_ops = {
	.send = fake_send,
	.queued = fake_queued,
	.may_read = fake_may_read,
	.may_key = fake_may_key,
	.may_write = fake_may_write,
	.drop = fake_drop,
};

static void
publish(const struct store_change *ch, void *arg)
{
	hub_publish(arg, ch);
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	char		 err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/certd-hub.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	f->store = store_open(f->base, f->dir, err, sizeof(err));
	if (f->store == NULL)
		fail_msg("store_open: %s", err);
	f->hub = hub_new(f->store);
	store_set_change_cb(f->store, publish, f->hub);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 cmd[128];

	hub_free(f->hub);
	store_free(f->store);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
done_cb(int err, const struct cert_record *rec, void *arg)
{
	struct fixture	*f = arg;

	(void)rec;
	assert_int_equal(err, 0);
	f->done++;
}

static void
run(struct fixture *f, int want)
{
	while (f->done < want)
		event_base_loop(f->base, EVLOOP_ONCE);
	f->done = 0;
}

/* Create or update (id != 0) a record and wait until it is committed. */
static uint64_t
put(struct fixture *f, const char *team, uint64_t id, const char *alias)
{
	struct cert_record	*rec = record_new();
	const struct cert_record *old;

	assert_non_null(rec);
	rec->id = id != 0 ? id : store_next_id(f->store);
	old = id != 0 ? store_get(f->store, team, id) : NULL;
	rec->team = strdup(team);
	rec->alias = strdup(alias);
	rec->cert_type = strdup("server");
	rec->certificate = strdup("-----BEGIN CERTIFICATE-----\n");
	rec->certificate_len = strlen(rec->certificate);
	rec->private_key = strdup("-----BEGIN PRIVATE KEY-----\n");
	rec->private_key_len = strlen(rec->private_key);
	rec->created_at = old != NULL ? old->created_at : 1;
	snprintf(rec->meta.fingerprint, sizeof(rec->meta.fingerprint), "%064d", 0);
	id = rec->id;
	assert_int_equal(store_put(f->store, rec, done_cb, f), 0);
	run(f, 1);
	return id;
}

static void
del(struct fixture *f, const char *team, uint64_t id)
{
	assert_int_equal(store_delete(f->store, team, id, done_cb, f), 0);
	run(f, 1);
}

static uint64_t
watch(struct hub_conn *hc, const char *team, const uint64_t *ids, size_t n_ids,
    const char *const *aliases, size_t n_aliases)
{
	struct hub_filter	flt = { team, ids, n_ids, aliases, n_aliases, NULL };
	struct hub_refusal	why;
	uint64_t		w, rev;

	assert_int_equal(hub_watch_add(hc, &flt, &w, &rev, &why), 0);
	return w;
}

/* A watch of team under name: 0 or the refusal's code (why filled). */
static int
watch_named(struct hub_conn *hc, const char *team, const char *name,
    uint64_t *w, struct hub_refusal *why)
{
	struct hub_filter	flt = { team, NULL, 0, NULL, 0, name };
	uint64_t		rev;

	return hub_watch_add(hc, &flt, w, &rev, why);
}

static void
test_filters(void **state)
{
	struct fixture	*f = *state;
	struct fake	*all = calloc(1, sizeof(*all)), *a = calloc(1, sizeof(*a));
	struct fake	*byid = calloc(1, sizeof(*byid));
	struct fake	*byalias = calloc(1, sizeof(*byalias));
	struct hub_conn	*hc_all, *hc_a, *hc_id, *hc_alias;
	/* Unsorted, with members that never match: the hub sorts them. */
	const char	*aliases[] = { "zz", "web", "aa", "mid" };
	uint64_t	 id1, id2, ids[4];

	all->readable = "a";	/* may read team a only */
	all->key = 1;
	hc_all = hub_conn_new(f->hub, &fake_ops, all, 1 << 20);
	hc_a = hub_conn_new(f->hub, &fake_ops, a, 1 << 20);
	hc_id = hub_conn_new(f->hub, &fake_ops, byid, 1 << 20);
	hc_alias = hub_conn_new(f->hub, &fake_ops, byalias, 1 << 20);
	byid->write = byalias->write = 1;
	watch(hc_all, NULL, NULL, 0, NULL, 0);
	watch(hc_a, "a", NULL, 0, NULL, 0);

	id1 = put(f, "a", 0, "web");
	id2 = put(f, "b", 0, "web");
	ids[0] = 9999;
	ids[1] = 77;
	ids[2] = id1;
	ids[3] = 5000;
	watch(hc_id, "a", ids, 4, NULL, 0);
	watch(hc_alias, "a", NULL, 0, aliases, 4);
	assert_true(hub_is_bound(f->hub, "a", id1, "web"));
	assert_false(hub_is_bound(f->hub, "b", id2, "web"));
	assert_false(hub_is_bound(f->hub, "a", 999, "other"));

	put(f, "a", id1, "web2");	/* renamed: alias watch still hears it */
	put(f, "a", 0, "api");		/* matches neither id nor alias */
	del(f, "a", id1);

	assert_int_equal(all->n, 4);	/* team b filtered by may_read */
	assert_string_equal(all->f[0].event, "put");
	assert_true(all->f[0].has_key);
	assert_string_equal(all->f[3].event, "delete");
	assert_int_equal(all->f[3].id, id1);
	assert_int_equal(a->n, 4);
	assert_false(a->f[0].has_key);
	assert_int_equal(byid->n, 2);	/* the rename and the delete */
	assert_string_equal(byid->f[0].alias, "web2");
	assert_string_equal(byid->f[1].event, "delete");
	assert_int_equal(byalias->n, 1);	/* the rename away from "web" */
	assert_int_equal(byalias->f[0].id, id1);

	/* Bindings end with the watch / the connection. */
	hub_conn_free(hc_alias);
	hub_conn_free(hc_id);
	assert_false(hub_is_bound(f->hub, "a", id1, "web"));
	hub_conn_free(hc_a);
	hub_conn_free(hc_all);
	free(all);
	free(a);
	free(byid);
	free(byalias);
}

static void
test_order_and_coalescing(void **state)
{
	struct fixture	*f = *state;
	struct fake	*slow = calloc(1, sizeof(*slow));
	struct fake	*fast = calloc(1, sizeof(*fast));
	struct hub_conn	*hc_slow = hub_conn_new(f->hub, &fake_ops, slow, 1000);
	struct hub_conn	*hc_fast = hub_conn_new(f->hub, &fake_ops, fast, 1000);
	uint64_t	 ids[3], last = 0;
	size_t		 i;
	int		 round;

	watch(hc_slow, "t", NULL, 0, NULL, 0);
	watch(hc_fast, "t", NULL, 0, NULL, 0);
	for (i = 0; i < 3; i++) {
		char alias[8];

		snprintf(alias, sizeof(alias), "c%zu", i);
		ids[i] = put(f, "t", 0, alias);
	}
	assert_int_equal(slow->n, 3);
	slow->queued = 5000;		/* over the limit: stop sending */
	for (round = 0; round < 100; round++)
		for (i = 0; i < 3; i++) {
			char alias[8];

			snprintf(alias, sizeof(alias), "c%zu", i);
			put(f, "t", ids[i], alias);
		}
	assert_int_equal(fast->n, 303);		/* the fast one got all */
	for (i = 1; i < fast->n; i++)
		assert_true(fast->f[i].revision > fast->f[i - 1].revision);
	assert_int_equal(slow->n, 3);		/* nothing more was sent */
	assert_int_equal(hub_conn_backlog(hc_slow), 3);	/* one per cert */

	slow->queued = 0;
	hub_conn_drain(hc_slow);
	assert_int_equal(slow->n, 6);
	for (i = 3; i < 6; i++) {
		assert_true(slow->f[i].revision > last);
		last = slow->f[i].revision;
	}
	assert_int_equal(slow->f[5].revision, store_revision(f->store));
	assert_int_equal(hub_conn_backlog(hc_slow), 0);

	/* A delete replaces a pending put of the same certificate. */
	slow->queued = 5000;
	put(f, "t", ids[0], "c0");
	del(f, "t", ids[0]);
	assert_int_equal(hub_conn_backlog(hc_slow), 1);
	slow->queued = 0;
	hub_conn_drain(hc_slow);
	assert_string_equal(slow->f[slow->n - 1].event, "delete");

	hub_conn_free(hc_slow);
	hub_conn_free(hc_fast);
	free(slow);
	free(fast);
}

static void
test_replay(void **state)
{
	struct fixture	*f = *state;
	struct fake	*fk = calloc(1, sizeof(*fk));
	struct hub_conn	*hc = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	struct hub_ack	 ack;
	uint64_t	 a, b, c, w, since;

	a = put(f, "r", 0, "a");	/* rev 1 */
	since = store_revision(f->store);
	b = put(f, "r", 0, "b");	/* rev 2 */
	c = put(f, "r", 0, "c");	/* rev 3 */
	put(f, "r", a, "a");		/* rev 4 */
	del(f, "r", b);			/* rev 5 */
	put(f, "other", 0, "x");	/* rev 6, other team */

	w = watch(hc, "r", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, since, 0), 0);
	assert_int_equal(fk->n, 3);
	assert_int_equal(fk->f[0].id, c);
	assert_int_equal(fk->f[0].revision, 3);
	assert_int_equal(fk->f[1].id, a);
	assert_int_equal(fk->f[1].revision, 4);
	assert_string_equal(fk->f[2].event, "delete");
	assert_int_equal(fk->f[2].id, b);
	assert_int_equal(fk->f[2].revision, 5);

	/* since 0: the current state, no deletes. */
	fk->n = 0;
	w = watch(hc, "r", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, 0, 0), 0);
	assert_int_equal(fk->n, 2);
	assert_string_equal(fk->f[0].event, "put");
	assert_string_equal(fk->f[1].event, "put");

	/* Live after replay: no gap, no duplicate. */
	fk->n = 0;
	put(f, "r", c, "c");
	assert_int_equal(fk->n, 2);	/* both watches */
	assert_int_equal(fk->f[0].revision, 7);

	assert_int_equal(hub_unwatch(hc, w), 0);
	assert_int_equal(hub_unwatch(hc, w), CERTD_ERR_NOT_FOUND);
	memset(&ack, 0, sizeof(ack));
	ack.revision = 7;
	ack.status = HUB_ACK_REQUESTED;
	snprintf(ack.detail, sizeof(ack.detail), "reloaded");
	assert_int_equal(hub_ack(hc, 1, &ack), 0);
	assert_int_equal(hub_watch_ack(hc, 1)->revision, 7);
	assert_int_equal(hub_watch_ack(hc, 1)->status, HUB_ACK_REQUESTED);
	assert_string_equal(hub_ack_status_name(HUB_ACK_REQUESTED), "requested");
	assert_string_equal(hub_watch_ack(hc, 1)->detail, "reloaded");
	assert_int_equal(hub_watch_ack(hc, 1)->verified_at, 0);
	assert_true(hub_watch_ack(hc, 1)->at != 0);
	assert_int_equal(hub_ack(hc, 99, &ack), CERTD_ERR_NOT_FOUND);
	hub_conn_free(hc);
	free(fk);
}

/*
 * Coalescing in a backlog larger than the index's first table (64 slots):
 * two watches on one connection, 150 certificates, each updated twice
 * while the peer reads nothing.  One event per (watch, certificate) stays,
 * the newest, in revision order; an unwatch takes its watch's events out of
 * the index too, and a later update of the other watch's certificates
 * still finds and replaces theirs.
 */
static void
test_coalescing_many(void **state)
{
	struct fixture	*f = *state;
	struct fake	*fk = calloc(1, sizeof(*fk));
	struct hub_conn	*hc = hub_conn_new(f->hub, &fake_ops, fk, 1000);
	uint64_t	 ids[150], w1, w2;
	size_t		 i;
	int		 round;
	char		 alias[16];

	assert_non_null(fk);
	w1 = watch(hc, "m", NULL, 0, NULL, 0);
	w2 = watch(hc, "m", NULL, 0, NULL, 0);
	fk->queued = 5000;		/* over the limit from the start */
	for (i = 0; i < 150; i++) {
		snprintf(alias, sizeof(alias), "m%zu", i);
		ids[i] = put(f, "m", 0, alias);
	}
	assert_int_equal(hub_conn_backlog(hc), 300);
	for (round = 0; round < 2; round++)
		for (i = 0; i < 150; i++) {
			snprintf(alias, sizeof(alias), "m%zu", i);
			put(f, "m", ids[i], alias);
		}
	assert_int_equal(hub_conn_backlog(hc), 300);
	assert_int_equal(hub_unwatch(hc, w1), 0);
	assert_int_equal(hub_conn_backlog(hc), 150);
	for (i = 0; i < 150; i++) {
		snprintf(alias, sizeof(alias), "m%zu", i);
		put(f, "m", ids[i], alias);
	}
	assert_int_equal(hub_conn_backlog(hc), 150);

	fk->queued = 0;
	hub_conn_drain(hc);
	assert_int_equal(hub_conn_backlog(hc), 0);
	assert_true(fk->n <= MAX_FRAMES);
	assert_int_equal(fk->n, 150);
	for (i = 0; i < fk->n; i++) {
		assert_int_equal(fk->f[i].watch, w2);
		assert_int_equal(fk->f[i].id, ids[i]);	/* updated in id order */
		if (i > 0)
			assert_true(fk->f[i].revision > fk->f[i - 1].revision);
	}
	assert_int_equal(fk->f[149].revision, store_revision(f->store));
	hub_conn_free(hc);
	free(fk);
}

static void
test_resync(void **state)
{
	struct fixture	*f = *state;
	struct fake	*fk = calloc(1, sizeof(*fk));
	struct hub_conn	*hc = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	uint64_t	 a, w;
	int		 i;

	store_set_log_retain(f->store, 3);
	a = put(f, "s", 0, "a");
	for (i = 0; i < 10; i++)
		put(f, "s", a, "a");
	assert_true(pos(f->store).log_first > 2);
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, 1, 0), 0);
	assert_int_equal(fk->n, 2);
	assert_string_equal(fk->f[0].event, "resync");
	assert_string_equal(fk->f[1].event, "put");
	assert_int_equal(fk->f[1].revision, store_revision(f->store));

	/* A revision this store never reached: resync too. */
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1,
	    store_revision(f->store) + 1, 0), 0);
	assert_int_equal(fk->n, 2);
	assert_string_equal(fk->f[0].event, "resync");
	assert_string_equal(fk->f[1].event, "put");
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, UINT64_MAX, 0), 0);
	assert_int_equal(fk->n, 2);
	assert_string_equal(fk->f[0].event, "resync");

	/* The head itself: nothing to replay. */
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, store_revision(f->store), 0),
	    0);
	assert_int_equal(fk->n, 0);

	/*
	 * Within the log and this store's epoch: the change after since.
	 * The same revision of another epoch (the store this one was
	 * restored from, say) says nothing about this store: resync.
	 */
	assert_int_not_equal(pos(f->store).epoch, 0);
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1,
	    store_revision(f->store) - 1, pos(f->store).epoch), 0);
	assert_int_equal(fk->n, 1);
	assert_string_equal(fk->f[0].event, "put");
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1,
	    store_revision(f->store) - 1, pos(f->store).epoch ^ 1), 0);
	assert_int_equal(fk->n, 2);
	assert_string_equal(fk->f[0].event, "resync");
	assert_string_equal(fk->f[1].event, "put");
	/* since 0 is the current state in any epoch, with no resync */
	fk->n = 0;
	w = watch(hc, "s", NULL, 0, NULL, 0);
	assert_int_equal(hub_watch_replay(hc, w, 1, 0,
	    pos(f->store).epoch ^ 1), 0);
	assert_int_equal(fk->n, 1);
	assert_string_equal(fk->f[0].event, "put");
	hub_conn_free(hc);
	free(fk);
}

/*
 * A watch binds only for a peer that may write the team: a reader's watch
 * never blocks a writer's DELETE, and a writer's stops binding as soon as
 * may_write says no (a reload revoked it).
 */
static void
test_bindings_need_write(void **state)
{
	struct fixture	*f = *state;
	struct fake	*reader = calloc(1, sizeof(*reader));
	struct fake	*writer = calloc(1, sizeof(*writer));
	struct hub_conn	*hc_r = hub_conn_new(f->hub, &fake_ops, reader, 1 << 20);
	struct hub_conn	*hc_w = hub_conn_new(f->hub, &fake_ops, writer, 1 << 20);
	const char	*aliases[] = { "web" };
	uint64_t	 id;

	hub_conn_set_peer(hc_r, 4001, 1, 0);
	hub_conn_set_peer(hc_w, 4002, 2, 0);
	id = put(f, "a", 0, "web");
	watch(hc_r, "a", &id, 1, aliases, 1);
	assert_false(hub_is_bound(f->hub, "a", id, "web"));
	writer->write = 1;
	watch(hc_w, "a", NULL, 0, aliases, 1);
	assert_true(hub_is_bound(f->hub, "a", id, "web"));
	writer->write = 0;
	assert_false(hub_is_bound(f->hub, "a", id, "web"));
	/* The reader still hears the certificate's changes. */
	put(f, "a", id, "web");
	assert_int_equal(reader->n, 1);
	hub_conn_free(hc_r);
	hub_conn_free(hc_w);
	free(reader);
	free(writer);
}

/*
 * A name is the first uid's, on any of its connections and after its
 * watches ended; another uid is refused; an admin takes it over, which
 * ends the owner's live watches under it with an error frame.  One uid
 * owns at most CERTD_UID_NAMES_MAX names.
 */
static void
test_names(void **state)
{
	struct fixture		*f = *state;
	struct fake		*fa = calloc(1, sizeof(*fa));
	struct fake		*fb = calloc(1, sizeof(*fb));
	struct fake		*fr = calloc(1, sizeof(*fr));
	struct hub_conn		*a1, *a2, *b, *root;
	struct hub_refusal	 why;
	uint64_t		 w, w2;
	char			 name[16];
	int			 i;

	a1 = hub_conn_new(f->hub, &fake_ops, fa, 1 << 20);
	a2 = hub_conn_new(f->hub, &fake_ops, fa, 1 << 20);
	b = hub_conn_new(f->hub, &fake_ops, fb, 1 << 20);
	root = hub_conn_new(f->hub, &fake_ops, fr, 1 << 20);
	hub_conn_set_peer(a1, 4001, 1, 0);
	hub_conn_set_peer(a2, 4001, 2, 0);
	hub_conn_set_peer(b, 4003, 3, 0);
	hub_conn_set_peer(root, 0, 4, 1);

	assert_int_equal(watch_named(a1, "t", "nginx-www", &w, &why), 0);
	assert_int_equal(watch_named(b, "t", "nginx-www", &w, &why),
	    CERTD_ERR_FORBIDDEN);
	assert_string_equal(why.field, "name");
	assert_non_null(strstr(why.reason, "belongs to another uid"));
	assert_int_equal(hub_conn_watches(b), 0);
	assert_int_equal(watch_named(a2, "t", "nginx-www", &w2, &why), 0);
	/* Kept after its watches are gone. */
	assert_int_equal(hub_unwatch(a1, 1), 0);
	assert_int_equal(watch_named(a1, "t", "cache", &w, &why), 0);
	assert_int_equal(hub_unwatch(a1, w), 0);
	assert_int_equal(watch_named(b, "t", "cache", &w, &why),
	    CERTD_ERR_FORBIDDEN);

	/* An admin takes a name over; the owner's watch under it ends. */
	fa->n = 0;
	assert_int_equal(watch_named(root, "t", "nginx-www", &w, &why), 0);
	assert_int_equal(hub_conn_watches(a2), 0);
	assert_int_equal(fa->n, 1);
	assert_string_equal(fa->f[0].event, "error");
	assert_int_equal(fa->f[0].code, 403);
	assert_int_equal(fa->f[0].watch, w2);
	assert_int_equal(watch_named(a1, "t", "nginx-www", &w, &why),
	    CERTD_ERR_FORBIDDEN);
	assert_int_equal(watch_named(root, "t", "nginx-www", &w, &why), 0);
	assert_int_equal(watch_named(root, "t", "root-only", &w, &why), 0);
	assert_int_equal(watch_named(b, "t", "root-only", &w, &why),
	    CERTD_ERR_FORBIDDEN);

	/* CERTD_UID_NAMES_MAX new names per uid (4003 owns none yet). */
	for (i = 0; i < CERTD_UID_NAMES_MAX; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(watch_named(b, "t", name, &w, &why), 0);
		assert_int_equal(hub_unwatch(b, w), 0);
	}
	assert_int_equal(watch_named(b, "t", "one-more", &w, &why),
	    CERTD_ERR_FORBIDDEN);
	assert_string_equal(why.field, "name");
	assert_int_equal(watch_named(b, "t", "n7", &w, &why), 0);
	assert_int_equal(watch_named(a1, "t", "one-more", &w, &why), 0);

	hub_conn_free(a1);
	hub_conn_free(a2);
	hub_conn_free(b);
	hub_conn_free(root);
	free(fa);
	free(fb);
	free(fr);
}

/* Watches of 1,000 aliases of 200 bytes: about 225 KB each. */
static int
watch_big(struct hub_conn *hc, char **aliases, uint64_t *w,
    struct hub_refusal *why)
{
	struct hub_filter	flt = { "t", NULL, 0,
				    (const char *const *)aliases, 1000, NULL };
	uint64_t		rev;

	return hub_watch_add(hc, &flt, w, &rev, why);
}

/*
 * One uid's watches, over all its connections, hold at most
 * CERTD_UID_FILTER_MAX bytes of filters; ending watches gives budget back;
 * other uids and admins are not charged for it.
 */
static void
test_filter_budget(void **state)
{
	struct fixture		*f = *state;
	struct fake		*fk = calloc(1, sizeof(*fk));
	struct hub_conn		*c1, *c2, *other, *root;
	struct hub_refusal	 why;
	char			*aliases[1000];
	uint64_t		 w, first = 0;
	size_t			 i, n = 0;

	for (i = 0; i < 1000; i++) {
		assert_non_null(aliases[i] = malloc(201));
		snprintf(aliases[i], 201, "%0200zu", i);
	}
	c1 = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	c2 = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	other = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	root = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	hub_conn_set_peer(c1, 4001, 1, 0);
	hub_conn_set_peer(c2, 4001, 2, 0);
	hub_conn_set_peer(other, 4002, 3, 0);
	hub_conn_set_peer(root, 0, 4, 1);

	while (watch_big(n % 2 ? c2 : c1, aliases, &w, &why) == 0) {
		if (first == 0)
			first = w;
		n++;
		assert_true(n < 64);
	}
	assert_true(n >= 4 && n <= 9);	/* 2 MiB / 225 KB */
	assert_null(why.field);
	assert_non_null(strstr(why.reason, "budget"));
	assert_int_equal(hub_conn_watches(c1) + hub_conn_watches(c2), n);
	/* Small watches are charged too: what is left soon runs out. */
	for (i = 0; watch_named(c1, "t", NULL, &w, &why) == 0; i++)
		assert_true(i < 1000);
	assert_non_null(strstr(why.reason, "budget"));
	assert_int_equal(watch_big(other, aliases, &w, &why), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(watch_big(root, aliases, &w, &why), 0);
	/* An unwatch gives its share back, a closed connection all of it. */
	assert_int_equal(hub_unwatch(c1, first), 0);
	assert_int_equal(watch_big(c1, aliases, &w, &why), 0);
	hub_conn_free(c2);
	for (i = 0; i < n / 2; i++)
		assert_int_equal(watch_big(c1, aliases, &w, &why), 0);

	hub_conn_free(c1);
	hub_conn_free(other);
	hub_conn_free(root);
	for (i = 0; i < 1000; i++)
		free(aliases[i]);
	free(fk);
}

/*
 * After a reload: watches of teams the peer may no longer read end with
 * an error frame (after what the backlog holds), the others stay; a watch
 * without a team ends when the peer may read no team.
 */
static void
test_recheck(void **state)
{
	struct fixture	*f = *state;
	struct fake	*fk = calloc(1, sizeof(*fk));
	struct fake	*fr = calloc(1, sizeof(*fr));
	struct hub_conn	*hc = hub_conn_new(f->hub, &fake_ops, fk, 1000);
	struct hub_conn	*root = hub_conn_new(f->hub, &fake_ops, fr, 1000);
	uint64_t	 wa, wb, wall, id;

	hub_conn_set_peer(hc, 4001, 1, 0);
	hub_conn_set_peer(root, 0, 2, 1);
	wa = watch(hc, "a", NULL, 0, NULL, 0);
	wb = watch(hc, "b", NULL, 0, NULL, 0);
	wall = watch(hc, NULL, NULL, 0, NULL, 0);
	watch(root, "b", NULL, 0, NULL, 0);
	assert_int_equal(hub_conn_recheck(hc), 0);

	/* b revoked while an event of b waits in the backlog. */
	fk->queued = 5000;
	id = put(f, "b", 0, "x");
	assert_int_equal(hub_conn_backlog(hc), 2);	/* wb and wall */
	fk->readable = "a";
	fr->readable = "-";	/* admins are never rechecked */
	assert_int_equal(hub_conn_recheck(hc), 1);
	assert_int_equal(hub_conn_recheck(root), 0);
	assert_int_equal(hub_conn_watches(hc), 2);
	fk->queued = 0;
	hub_conn_drain(hc);
	assert_int_equal(fk->n, 2);	/* wall's put, then wb's error */
	assert_string_equal(fk->f[0].event, "put");
	assert_int_equal(fk->f[0].watch, wall);
	assert_string_equal(fk->f[1].event, "error");
	assert_int_equal(fk->f[1].code, 403);
	assert_int_equal(fk->f[1].watch, wb);

	fk->readable = "-";
	fk->n = 0;
	assert_int_equal(hub_conn_recheck(hc), 2);
	assert_int_equal(hub_conn_watches(hc), 0);
	assert_int_equal(fk->n, 2);
	assert_true((fk->f[0].watch == wa && fk->f[1].watch == wall) ||
	    (fk->f[0].watch == wall && fk->f[1].watch == wa));
	fk->n = 0;
	put(f, "a", 0, "y");
	put(f, "b", id, "x");
	assert_int_equal(fk->n, 0);
	hub_conn_free(hc);
	hub_conn_free(root);
	free(fk);
	free(fr);
}

/* What fleet mode publishes: every watch with its filter, told when. */
static void
count_changes(void *arg)
{
	(*(int *)arg)++;
}

struct seen {
	size_t		n;
	uint64_t	serial[4];
	const char	*node;
	int		acked;
	size_t		n_ids;
};

static void
on_sub(const struct hub_subscriber *sub, void *arg)
{
	struct seen	*s = arg;

	assert_true(s->n < 4);
	s->serial[s->n++] = sub->serial;
	s->node = sub->node;
	s->acked += sub->ack != NULL;
	s->n_ids += sub->filter.n_ids;
}

static void
test_observer(void **state)
{
	struct fixture		*f = *state;
	struct fake		*fk = calloc(1, sizeof(*fk));
	struct hub_conn		*hc;
	struct hub_ack		 ack;
	struct seen		 s;
	const char		*aliases[] = { "web" };
	struct hub_filter	 flt = { "a", NULL, 0, aliases, 1, NULL };
	uint64_t		 ids[] = { 5, 7 }, w1, w2;
	int			 changes = 0;

	hub_set_observer(f->hub, "n1", count_changes, &changes);
	hc = hub_conn_new(f->hub, &fake_ops, fk, 1 << 20);
	w1 = watch(hc, "a", ids, 2, NULL, 0);
	w2 = watch(hc, NULL, NULL, 0, NULL, 0);
	assert_int_equal(changes, 2);
	memset(&ack, 0, sizeof(ack));
	ack.revision = 3;
	ack.status = HUB_ACK_OK;
	assert_int_equal(hub_ack(hc, w1, &ack), 0);
	assert_int_equal(changes, 3);
	memset(&s, 0, sizeof(s));
	hub_foreach_subscriber(f->hub, on_sub, &s);
	assert_int_equal(s.n, 2);
	assert_true(s.serial[0] != 0 && s.serial[0] != s.serial[1]);
	assert_string_equal(s.node, "n1");
	assert_int_equal(s.acked, 1);
	assert_int_equal(s.n_ids, 2);
	assert_int_equal(hub_unwatch(hc, w2), 0);
	assert_int_equal(changes, 4);
	hub_conn_free(hc);		/* with its last watch */
	assert_int_equal(changes, 5);
	memset(&s, 0, sizeof(s));
	hub_foreach_subscriber(f->hub, on_sub, &s);
	assert_int_equal(s.n, 0);
	hub_set_observer(f->hub, NULL, NULL, NULL);

	/* another host's filter: by team, then ids or aliases */
	assert_true(hub_filter_matches(&flt, "a", 1, "web"));
	assert_false(hub_filter_matches(&flt, "a", 1, "api"));
	assert_false(hub_filter_matches(&flt, "b", 1, "web"));
	flt.ids = ids;
	flt.n_ids = 2;
	assert_true(hub_filter_matches(&flt, "a", 7, NULL));
	flt.team = NULL;
	flt.n_ids = flt.n_aliases = 0;
	assert_true(hub_filter_matches(&flt, "z", 1, NULL));
	free(fk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_and_coalescing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bindings_need_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter_budget, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recheck, setup, teardown),
		cmocka_unit_test_setup_teardown(test_observer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
