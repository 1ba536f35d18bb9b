/* SPDX-License-Identifier: MIT */
/*
 * The etcd client (src/etcd.c) against a real cluster: tests/integration/
 * etcd.sh starts three etcd members on loopback and runs this with their
 * client URLs in ETCD_ENDPOINTS.  ETCD_MODE=quorum: two members are down,
 * ETCD_ENDPOINTS names the one left.  Without ETCD_ENDPOINTS every test
 * is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "certd/constants.h"
#include "etcd.h"

struct got {
	int		 called;
	int		 err;
	char		 why[ETCD_WHY_MAX];
	uint64_t	 revision, cluster_id, count;
	bool		 succeeded, more;
	size_t		 n_kvs;
	unsigned char	 key[64], value[64];
	size_t		 key_len, value_len;
	uint64_t	 mod_rev;
};

struct fixture {
	struct event_base	*base;
	struct etcd		*e;
	char			 prefix[64];
};

static const char *
endpoints(void)
{
	return getenv("ETCD_ENDPOINTS");
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[256];

	if (endpoints() == NULL)
		return 0;
	assert_non_null(f = calloc(1, sizeof(*f)));
	assert_non_null(f->base = event_base_new());
	f->e = etcd_new(f->base, endpoints(), 3000, NULL, err, sizeof(err));
	if (f->e == NULL)
		fail_msg("etcd_new: %s", err);
	/* keys of one run: a run that follows does not see them */
	snprintf(f->prefix, sizeof(f->prefix), "/t%lld-%d/",
	    (long long)time(NULL), rand());
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	if (f == NULL)
		return 0;
	etcd_free(f->e);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
got_cb(const struct etcd_reply *r, void *arg)
{
	struct got	*g = arg;

	g->called++;
	g->err = r->err;
	snprintf(g->why, sizeof(g->why), "%s", r->why);
	g->revision = r->revision;
	g->cluster_id = r->cluster_id;
	g->succeeded = r->succeeded;
	g->more = r->more;
	g->count = r->count;
	g->n_kvs = r->n_kvs;
	if (r->n_kvs > 0 && r->kvs[0].key_len <= sizeof(g->key) &&
	    r->kvs[0].value_len <= sizeof(g->value)) {
		memcpy(g->key, r->kvs[0].key, r->kvs[0].key_len);
		g->key_len = r->kvs[0].key_len;
		memcpy(g->value, r->kvs[0].value, r->kvs[0].value_len);
		g->value_len = r->kvs[0].value_len;
		g->mod_rev = r->kvs[0].mod_rev;
	}
}

static void
wait_for(struct event_base *base, const int *called)
{
	time_t	t0 = time(NULL);

	while (*called == 0) {
		assert_true(time(NULL) - t0 < 30);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

#define SKIP_UNLESS_CLUSTER(mode)					\
	do {								\
		const char *m_ = getenv("ETCD_MODE");			\
		if (endpoints() == NULL || strcmp(m_ != NULL ? m_ : "",	\
		    (mode)) != 0)					\
			skip();						\
	} while (0)

/* A create (compare: absent), read back byte for byte; again: refused. */
static void
test_txn_create(void **state)
{
	struct fixture	*f = *state;
	struct etcd_txn	*t;
	struct got	 g = { 0 };
	char		 key[96];
	const unsigned char val[] = { 'v', 0, 0xff, '\n', '"' };

	SKIP_UNLESS_CLUSTER("");
	snprintf(key, sizeof(key), "%sa", f->prefix);
	assert_non_null(t = etcd_txn_new());
	etcd_txn_cmp(t, ETCD_CMP_CREATE, key, strlen(key), 0);
	etcd_txn_put(t, false, key, strlen(key), val, sizeof(val));
	etcd_txn_range(t, true, key, strlen(key));
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
	assert_true(g.succeeded);
	assert_true(g.revision > 0);
	assert_true(g.cluster_id != 0);

	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(f->e, key, strlen(key), NULL, 0, 0, 0,
	    0, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
	assert_int_equal(g.n_kvs, 1);
	assert_int_equal(g.key_len, strlen(key));
	assert_memory_equal(g.key, key, strlen(key));
	assert_int_equal(g.value_len, sizeof(val));
	assert_memory_equal(g.value, val, sizeof(val));
	assert_int_equal(g.mod_rev, g.revision);

	/* the same create again: the failure branch reads what is there */
	memset(&g, 0, sizeof(g));
	assert_non_null(t = etcd_txn_new());
	etcd_txn_cmp(t, ETCD_CMP_CREATE, key, strlen(key), 0);
	etcd_txn_put(t, false, key, strlen(key), "x", 1);
	etcd_txn_range(t, true, key, strlen(key));
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
	assert_false(g.succeeded);
	assert_int_equal(g.n_kvs, 1);
	assert_memory_equal(g.value, val, sizeof(val));
}

/* An update applies to the revision it read, and only to it. */
static void
test_txn_mod(void **state)
{
	struct fixture	*f = *state;
	struct etcd_txn	*t;
	struct got	 g = { 0 };
	char		 key[96];
	uint64_t	 rev;

	SKIP_UNLESS_CLUSTER("");
	snprintf(key, sizeof(key), "%sm", f->prefix);
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, false, key, strlen(key), "1", 1);
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_true(g.succeeded);
	rev = g.revision;

	memset(&g, 0, sizeof(g));
	assert_non_null(t = etcd_txn_new());
	etcd_txn_cmp(t, ETCD_CMP_MOD, key, strlen(key), rev);
	etcd_txn_put(t, false, key, strlen(key), "2", 1);
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_true(g.succeeded);

	/* a second writer that read rev loses */
	memset(&g, 0, sizeof(g));
	assert_non_null(t = etcd_txn_new());
	etcd_txn_cmp(t, ETCD_CMP_MOD, key, strlen(key), rev);
	etcd_txn_delete(t, false, key, strlen(key));
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
	assert_false(g.succeeded);

	/* a txn etcd refuses (one key twice in a branch) says why */
	memset(&g, 0, sizeof(g));
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, false, key, strlen(key), "3", 1);
	etcd_txn_delete(t, false, key, strlen(key));
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, CERTD_ERR_STORAGE);
	assert_non_null(strstr(g.why, "duplicate key"));

	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(f->e, key, strlen(key), NULL, 0, 0, 0,
	    0, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.value_len, 1);
	assert_memory_equal(g.value, "2", 1);
}

/* A prefix read in key order, with a limit; a read at an old revision. */
static void
test_range(void **state)
{
	struct fixture	*f = *state;
	struct etcd_txn	*t;
	struct got	 g = { 0 };
	char		 key[96], end[96];
	uint64_t	 rev1;
	int		 i;

	SKIP_UNLESS_CLUSTER("");
	assert_non_null(t = etcd_txn_new());
	for (i = 3; i >= 1; i--) {
		snprintf(key, sizeof(key), "%sr/%d", f->prefix, i);
		etcd_txn_put(t, false, key, strlen(key), "old", 3);
	}
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	rev1 = g.revision;
	memset(&g, 0, sizeof(g));
	snprintf(key, sizeof(key), "%sr/1", f->prefix);
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, false, key, strlen(key), "new", 3);
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);

	snprintf(key, sizeof(key), "%sr/", f->prefix);
	snprintf(end, sizeof(end), "%sr0", f->prefix);	/* '/' + 1 */
	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(f->e, key, strlen(key), end, strlen(end),
	    0, 1, 0, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.n_kvs, 1);
	assert_int_equal(g.count, 3);
	assert_true(g.more);
	assert_int_equal(g.key_len, strlen(key) + 1);
	assert_memory_equal(g.key + strlen(key), "1", 1);
	assert_memory_equal(g.value, "new", 3);

	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(f->e, key, strlen(key), end, strlen(end),
	    rev1, 0, ETCD_SERIALIZABLE, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.n_kvs, 3);
	assert_false(g.more);
	assert_memory_equal(g.value, "old", 3);
}

struct seen {
	int		 n;		/* events */
	int		 ended;
	int		 err;
	uint64_t	 compact;
	bool		 is_delete[8];
	char		 value[8][8];
	uint64_t	 mod_rev[8];
};

static void
seen_cb(int err, uint64_t compact_rev, const struct etcd_event *ev, size_t n,
    uint64_t revision, void *arg)
{
	struct seen	*s = arg;
	size_t		 i;

	(void)revision;
	if (err != 0) {
		s->ended++;
		s->err = err;
		s->compact = compact_rev;
		return;
	}
	for (i = 0; i < n && s->n < 8; i++, s->n++) {
		s->is_delete[s->n] = ev[i].is_delete;
		snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s",
		    (int)ev[i].kv.value_len, (const char *)ev[i].kv.value);
		s->mod_rev[s->n] = ev[i].kv.mod_rev;
	}
}

static void
commit_put(struct fixture *f, const char *key, const char *val, bool del,
    struct got *g)
{
	struct etcd_txn	*t;

	memset(g, 0, sizeof(*g));
	assert_non_null(t = etcd_txn_new());
	if (del)
		etcd_txn_delete(t, false, key, strlen(key));
	else
		etcd_txn_put(t, false, key, strlen(key), val, strlen(val));
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, g), 0);
	wait_for(f->base, &g->called);
	assert_int_equal(g->err, 0);
}

/* Events in commit order, puts and deletes, replayed from a revision. */
static void
test_watch(void **state)
{
	struct fixture		*f = *state;
	struct etcd_watch	*w;
	struct seen		 s;
	struct got		 g;
	char			 key[96];
	uint64_t		 first;
	time_t			 t0;

	SKIP_UNLESS_CLUSTER("");
	snprintf(key, sizeof(key), "%sw", f->prefix);
	commit_put(f, key, "a", false, &g);
	first = g.revision;
	commit_put(f, key, "b", false, &g);
	commit_put(f, key, NULL, true, &g);
	memset(&s, 0, sizeof(s));
	assert_non_null(w = etcd_watch_new(f->e, key, strlen(key), NULL, 0,
	    first, seen_cb, &s));
	t0 = time(NULL);
	while (s.n < 3 && s.ended == 0 && time(NULL) - t0 < 20)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(s.ended, 0);
	/* and one that comes after the watch started */
	commit_put(f, key, "c", false, &g);
	while (s.n < 4 && s.ended == 0 && time(NULL) - t0 < 20)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.value[0], "a");
	assert_int_equal(s.mod_rev[0], first);
	assert_string_equal(s.value[1], "b");
	assert_true(s.is_delete[2]);
	assert_false(s.is_delete[3]);
	assert_string_equal(s.value[3], "c");
	assert_int_equal(s.mod_rev[3], g.revision);
	etcd_watch_free(w);
}

/* A watch from a revision compacted away ends with the compaction's. */
static void
test_watch_compacted(void **state)
{
	struct fixture		*f = *state;
	struct etcd_watch	*w;
	struct seen		 s;
	struct got		 g;
	char			 key[96], cmd[512];
	uint64_t		 first;
	time_t			 t0;

	SKIP_UNLESS_CLUSTER("");
	snprintf(key, sizeof(key), "%sc", f->prefix);
	commit_put(f, key, "a", false, &g);
	first = g.revision;
	commit_put(f, key, "b", false, &g);
	/* the client has no compaction: etcd's own API, as an operator would */
	snprintf(cmd, sizeof(cmd), "curl -sf -o /dev/null -X POST -d "
	    "'{\"revision\":\"%llu\"}' %.*s/v3/kv/compaction",
	    (unsigned long long)g.revision,
	    (int)strcspn(endpoints(), ","), endpoints());
	assert_int_equal(system(cmd), 0);
	memset(&s, 0, sizeof(s));
	assert_non_null(w = etcd_watch_new(f->e, key, strlen(key), NULL, 0,
	    first, seen_cb, &s));
	t0 = time(NULL);
	while (s.ended == 0 && time(NULL) - t0 < 20)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(s.ended, 1);
	assert_int_equal(s.err, CERTD_ERR_NO_REVISION);
	assert_int_equal(s.compact, g.revision);
	assert_int_equal(s.n, 0);
	etcd_watch_free(w);
}

/* A dead endpoint first: the request goes on to the next one. */
static void
test_failover(void **state)
{
	struct fixture	*f = *state;
	struct etcd	*e;
	struct got	 g = { 0 };
	char		 csv[512], err[256];

	SKIP_UNLESS_CLUSTER("");
	/* port 1 on loopback: refused at once */
	snprintf(csv, sizeof(csv), "http://127.0.0.1:1,%s", endpoints());
	assert_non_null(e = etcd_new(f->base, csv, 3000, NULL, err, sizeof(err)));
	assert_int_equal(etcd_range(e, "x", 1, NULL, 0, 0, 0, 0, got_cb,
	    &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
	etcd_free(e);

	/* nothing answers: an error that says so */
	memset(&g, 0, sizeof(g));
	assert_non_null(e = etcd_new(f->base, "http://127.0.0.1:1,"
	    "http://127.0.0.1:2", 3000, NULL, err, sizeof(err)));
	assert_int_equal(etcd_range(e, "x", 1, NULL, 0, 0, 0, 0, got_cb,
	    &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, CERTD_ERR_STORAGE);
	assert_true(strncmp(g.why, "cluster unavailable: no endpoint "
	    "answered; the last: ", 53) == 0);

	/* freed with a request in flight: it completes, shutting down */
	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(e, "x", 1, NULL, 0, 0, 0, 0, got_cb,
	    &g), 0);
	etcd_free(e);
	assert_int_equal(g.called, 1);
	assert_int_equal(g.err, CERTD_ERR_SHUTDOWN);
}

static void
test_bad_endpoints(void **state)
{
	struct event_base	*base;
	char			 err[256];
	const char		*bad[] = { "", "127.0.0.1:2379",
				    "ftp://127.0.0.1:2379", "http://:2379",
				    "http://h:0", "http://h:2379/v3",
				    "http://h:1,,http://h:2" };
	size_t			 i;

	(void)state;
	assert_non_null(base = event_base_new());
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(etcd_new(base, bad[i], 1000, NULL, err,
		    sizeof(err)));
		assert_true(err[0] != '\0');
	}
	event_base_free(base);
}

/*
 * Two of three members down: a write fails within 10 s saying so, a
 * serializable read is still answered by the member left.
 */
static void
test_quorum_lost(void **state)
{
	struct fixture	*f = *state;
	struct etcd_txn	*t;
	struct got	 g = { 0 };
	time_t		 t0;

	SKIP_UNLESS_CLUSTER("quorum");
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, false, "q", 1, "1", 1);
	t0 = time(NULL);
	assert_int_equal(etcd_txn_commit(f->e, t, got_cb, &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, CERTD_ERR_STORAGE);
	assert_non_null(strstr(g.why, "cluster unavailable: "));
	assert_true(time(NULL) - t0 <= 10);

	memset(&g, 0, sizeof(g));
	assert_int_equal(etcd_range(f->e, "q", 1, NULL, 0, 0, 0, ETCD_SERIALIZABLE, got_cb,
	    &g), 0);
	wait_for(f->base, &g.called);
	assert_int_equal(g.err, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_endpoints),
		cmocka_unit_test_setup_teardown(test_txn_create, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_txn_mod, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_compacted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_lost, setup,
		    teardown),
	};

	srand((unsigned)time(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
