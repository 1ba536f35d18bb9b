/* SPDX-License-Identifier: MIT */
/*
 * Reading the change log ("l") and the history ("h") on the loop thread:
 * every record read (store_get and the rest of the committed view read
 * the current version, "h" id revision), a watch's replay and rollback.
 * All read RocksDB under the read lock that the writer's reopen takes for
 * writing (store_writer.c), waiting for it STORE_READ_WAIT_MS at most: a
 * reopen longer than that is a storage error here.  What the writer has
 * written but the loop not applied yet (revisions above s->rev) does not
 * exist for them.  Also the decoding of history entries, which a
 * rotation's re-seal shares (store_keys.c).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "certd/constants.h"
#include "proto.h"
#include "record.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

#define STORE_LOG_TEAM_BYTES	CERTD_TEAM_MAX		/* as record.c */
#define STORE_READ_WAIT_MS	500	/* for a reopen to finish */
#define STORE_LOG_ALIAS_BYTES	(4 * CERTD_ALIAS_MAX)

/*
 * Take the read lock that the writer's reopen takes for writing.  Never
 * wait long: the writer may be reopening after a failure, and a reopen
 * that takes more than STORE_READ_WAIT_MS (or one that left no database)
 * is a storage error here.  Returns 0 with the lock held, or
 * CERTD_ERR_STORAGE.
 */
static int
store_read_lock(struct store *s)
{
	struct timespec	until;

	if (pthread_rwlock_tryrdlock(&s->dblock) != 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += STORE_READ_WAIT_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (pthread_rwlock_timedrdlock(&s->dblock, &until) != 0)
			return CERTD_ERR_STORAGE;
	}
	if (s->db == NULL) {
		pthread_rwlock_unlock(&s->dblock);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/*
 * End a scan made under store_read_lock: free it and ro, and drop the
 * lock.  Returns err, or CERTD_ERR_STORAGE when the iterator met a read
 * error.
 */
static int
store_scan_end(struct store *s, rocksdb_iterator_t *it,
    rocksdb_readoptions_t *ro, int err)
{
	if (store_iter_error(it, NULL, 0) != 0)
		err = CERTD_ERR_STORAGE;
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	pthread_rwlock_unlock(&s->dblock);
	return err;
}

/* ------------------------------------------------------------------ */
/* Reading the change log                                              */

static bool
store_str_is(const char *p, size_t len, const char *what)
{
	return len == strlen(what) && memcmp(p, what, len) == 0;
}

/* A str of 1..max bytes without NUL, copied into buf[max + 1]. */
static int
store_cur_name(struct proto_cur *c, char *buf, size_t max)
{
	const char	*p;
	size_t		 len;

	p = proto_cur_str(c, &len);
	if (c->error != NULL || len == 0 || len > max ||
	    memchr(p, '\0', len) != NULL)
		return CERTD_ERR_STORAGE;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

/*
 * Decode the entry of revision `rev` into *e; team and alias are copied
 * into the caller's buffers, which e then points at.  The entry is ours
 * (store_log_encode), so only what that writes is accepted: a map with str
 * keys, uint and str values.  It is read with proto.c's bounds-checked
 * cursor; nothing is allocated.
 */
static int
store_log_decode(const char *buf, size_t len, uint64_t rev,
    struct store_log_entry *e, char team[STORE_LOG_TEAM_BYTES + 1],
    char alias[STORE_LOG_ALIAS_BYTES + 1])
{
	struct proto_cur	 c;
	const char		*k, *v;
	size_t			 klen, vlen;
	uint64_t		 n, i, u;
	unsigned		 seen = 0, bit;
	int			 err;

	proto_cur_init(&c, buf, len);
	n = proto_cur_map(&c);
	for (i = 0; i < n; i++) {
		k = proto_cur_str(&c, &klen);
		if (c.error != NULL)
			return CERTD_ERR_STORAGE;
		if (store_str_is(k, klen, "op")) {
			bit = 1 << 0;
			v = proto_cur_str(&c, &vlen);
			if (c.error != NULL)
				return CERTD_ERR_STORAGE;
			if (store_str_is(v, vlen, "put"))
				e->kind = STORE_PUT;
			else if (store_str_is(v, vlen, "delete"))
				e->kind = STORE_DELETE;
			else
				return CERTD_ERR_STORAGE;
		} else if (store_str_is(k, klen, "rev")) {
			bit = 1 << 1;
			u = proto_cur_uint(&c);
			if (c.error != NULL || u != rev)
				return CERTD_ERR_STORAGE;
		} else if (store_str_is(k, klen, "id")) {
			bit = 1 << 2;
			e->id = proto_cur_uint(&c);
			if (c.error != NULL || e->id == 0)
				return CERTD_ERR_STORAGE;
		} else if (store_str_is(k, klen, "team")) {
			bit = 1 << 3;
			if ((err = store_cur_name(&c, team,
			    STORE_LOG_TEAM_BYTES)) != 0)
				return err;
		} else if (store_str_is(k, klen, "alias")) {
			bit = 1 << 4;
			if ((err = store_cur_name(&c, alias,
			    STORE_LOG_ALIAS_BYTES)) != 0)
				return err;
		} else
			return CERTD_ERR_STORAGE;
		if (seen & bit)
			return CERTD_ERR_STORAGE;	/* duplicate key */
		seen |= bit;
	}
	if (seen != (1 << 5) - 1 || c.error != NULL ||
	    proto_cur_left(&c) != 0)
		return CERTD_ERR_STORAGE;
	e->revision = rev;
	e->team = team;
	e->alias = alias;
	return 0;
}

int
store_log_scan(struct store *s, uint64_t since, store_log_cb cb, void *arg)
{
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	struct store_log_entry	 e;
	const char		*k, *v;
	char			 from[9], to[9];
	char			 team[STORE_LOG_TEAM_BYTES + 1];
	char			 alias[STORE_LOG_ALIAS_BYTES + 1];
	size_t			 klen, vlen;
	uint64_t		 rev, last = s->rev;
	int			 err = 0;

	/*
	 * Entries above s->rev may be on disk already (the writer is ahead
	 * of the loop); the loop has not applied them, so they do not exist
	 * yet for anyone.  An iterator reads one point in time: what the
	 * writer trims meanwhile stays visible to it.
	 */
	if (since >= last)
		return 0;
	if (store_read_lock(s) != 0)
		return CERTD_ERR_STORAGE;
	from[0] = to[0] = 'l';
	util_be64_put(from + 1, since + 1);
	util_be64_put(to + 1, last + 1);	/* never near UINT64_MAX */
	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, to, sizeof(to));
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, from, sizeof(from)); rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen != 9 || k[0] != 'l') {
			err = CERTD_ERR_STORAGE;
			break;
		}
		if ((rev = util_be64_get(k + 1)) > last)
			break;
		v = rocksdb_iter_value(it, &vlen);
		if ((err = store_log_decode(v, vlen, rev, &e, team, alias))
		    != 0)
			break;
		if (cb(&e, arg) != 0)
			break;
	}
	return store_scan_end(s, it, ro, err);
}

/* ------------------------------------------------------------------ */
/* Reading the history                                                 */

/*
 * Decode the history entry k -> v into a new record (no key yet) and its
 * box, checking that it is the version its key names.  Returns 0,
 * CERTD_ERR_STORAGE or CERTD_ERR_NOMEM; on failure *out is NULL and *sk
 * zeroed.
 */
int
store_history_version_decode(const char *k, size_t klen, const char *v,
    size_t vlen, struct cert_record **out, struct record_sealed *sk)
{
	int	err;

	*out = NULL;
	memset(sk, 0, sizeof(*sk));
	if (klen != STORE_HKEY_LEN || k[0] != 'h')
		return CERTD_ERR_STORAGE;
	if ((err = record_decode(v, vlen, out, sk)) != 0)
		return err;
	if ((*out)->id != util_be64_get(k + 1) ||
	    (*out)->revision != util_be64_get(k + 9) || sk->box == NULL) {
		record_free(*out);
		*out = NULL;
		record_sealed_clear(sk);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/* Open sk into rec when it was sealed under key (id kid); clears sk. */
int
store_history_version_unseal(struct cert_record *rec, struct record_sealed *sk,
    const unsigned char *key, const unsigned char *kid)
{
	int	err = CERTD_ERR_STORAGE;

	if (key != NULL && memcmp(sk->key_id, kid, RECORD_KEY_ID_LEN) == 0)
		err = record_unseal(rec, sk, key);
	record_sealed_clear(sk);
	return err;
}

/*
 * The master key that sealed what is on disk under key id kid, or NULL.
 * The loop seals new writes under s->mkey from the moment a rotation is
 * submitted; until the rotation is applied, the database may still hold
 * boxes of the key it replaces, which the pending rotation op keeps.
 */
static const unsigned char *
store_key_for(const struct store *s, const unsigned char *kid)
{
	const struct store_op	*op;

	if (memcmp(kid, s->kid, RECORD_KEY_ID_LEN) == 0)
		return s->mkey;
	TAILQ_FOREACH(op, &s->pending, pend)
		if (op->rekey &&
		    memcmp(kid, op->old_kid, RECORD_KEY_ID_LEN) == 0)
			return op->old_key;
	return NULL;
}

int
store_history(struct store *s, const char *team, uint64_t id,
    store_history_cb cb, void *arg)
{
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	struct record_sealed	 sk;
	struct cert_record	*rec;
	const char		*k, *v;
	char			 hkey[STORE_HKEY_LEN];
	size_t			 klen, vlen, n = 0;
	bool			 stop;
	int			 err = 0;

	if (store_get(s, team, id) == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (store_read_lock(s) != 0)
		return CERTD_ERR_STORAGE;
	/* what the writer wrote and the loop has not applied does not exist */
	store_hkey(hkey, id, s->rev);
	ro = rocksdb_readoptions_create();
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek_for_prev(it, hkey, sizeof(hkey));
	    rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen < 9 || memcmp(k, hkey, 9) != 0)
			break;
		v = rocksdb_iter_value(it, &vlen);
		if ((err = store_history_version_decode(k, klen, v, vlen, &rec,
		    &sk)) != 0)
			break;
		record_sealed_clear(&sk);
		if (strcmp(rec->team, team) != 0)
			err = CERTD_ERR_STORAGE;	/* ids are global */
		stop = err != 0 || cb(rec, arg) != 0;
		record_free(rec);
		n++;
		if (stop)
			break;
	}
	err = store_scan_end(s, it, ro, err);
	/*
	 * The current version is always kept: none at all means the
	 * certificate's delete (a range deletion of its versions) is on disk
	 * and not applied here yet.  It is as good as gone.
	 */
	return err == 0 && n == 0 ? CERTD_ERR_NOT_FOUND : err;
}

int
store_history_read(struct store *s, uint64_t id, uint64_t revision,
    bool with_key, struct cert_record **out)
{
	rocksdb_pinnableslice_t	*ps;
	struct record_sealed	 sk;
	struct cert_record	*rec = NULL;
	char			 hkey[STORE_HKEY_LEN], *rerr = NULL;
	const char		*val;
	size_t			 vlen;
	int			 err;

	*out = NULL;
	if (store_read_lock(s) != 0)
		return CERTD_ERR_STORAGE;
	store_hkey(hkey, id, revision);
	ps = rocksdb_get_pinned(s->db, s->lro, hkey, sizeof(hkey), &rerr);
	if (rerr != NULL || ps == NULL) {
		pthread_rwlock_unlock(&s->dblock);
		err = rerr != NULL ? CERTD_ERR_STORAGE : CERTD_ERR_NOT_FOUND;
		rocksdb_free(rerr);
		return err;
	}
	val = rocksdb_pinnableslice_value(ps, &vlen);
	err = store_history_version_decode(hkey, sizeof(hkey), val, vlen, &rec,
	    &sk);
	rocksdb_pinnableslice_destroy(ps);	/* sealed: nothing to wipe */
	pthread_rwlock_unlock(&s->dblock);
	if (err != 0)
		return err == CERTD_ERR_NOMEM ? err : CERTD_ERR_STORAGE;
	if (!with_key)
		record_sealed_clear(&sk);
	else if ((err = store_history_version_unseal(rec, &sk,
	    store_key_for(s, sk.key_id), sk.key_id)) != 0) {
		record_free(rec);
		return err;
	}
	*out = rec;
	return 0;
}

int
store_history_get(struct store *s, const char *team, uint64_t id,
    uint64_t revision, struct cert_record **out)
{
	struct cert_record	*rec;
	int			 err;

	*out = NULL;
	if (revision == 0 || revision > s->rev)
		return CERTD_ERR_NOT_FOUND;
	if ((err = store_history_read(s, id, revision, true, &rec)) != 0)
		return err;
	if (strcmp(rec->team, team) != 0) {
		record_free(rec);
		return CERTD_ERR_NOT_FOUND;
	}
	*out = rec;
	return 0;
}
