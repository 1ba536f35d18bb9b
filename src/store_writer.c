/* SPDX-License-Identifier: MIT */
/*
 * The store's writer thread (store.c says how ops reach it and how they
 * come back).  It alone writes the database: it takes everything queued,
 * writes it as one synced write batch (group commit), and hands the batch
 * back to the loop through the eventfd.  A rotation goes in a batch of its
 * own, whose steps store_keys.c holds.
 *
 * The change log keeps the last `log_retain` revisions.  Each op carries
 * the trim point ("cut") computed when it is submitted; the writer deletes
 * the log entries up to the highest cut of its batch with one range
 * deletion inside that batch, so the trim is as durable and atomic as the
 * write itself.  Nothing about the log is persisted besides its entries:
 * at start-up the first "l" key is the oldest retained revision.
 *
 * History.  A put writes its version once, under "h" with its revision,
 * and its index entry under "r", which names that revision: the current
 * version is always the newest history entry, and trimming keeps at least
 * one (hist_keep >= 1).
 * Which older entries to trim is decided by the writer, which alone
 * writes the database and so knows exactly what is on disk.  It keeps, in
 * memory, the revisions of the "h" entries of every id it has written
 * since start-up (read from the database the first time, through an
 * iterator: afterwards no iteration, which over the tombstones of a busy
 * id grew costly), and deletes what lies beyond the op's `hist_keep`
 * newest, with point deletes in the batch.  A batch that fails to write
 * makes it forget everything it knew; it reads again.  A delete drops
 * the id's entries with one range deletion.  A rotation
 * re-seals the entries in the writer, reading them from the database,
 * where by then every op before the rotation has landed.
 *
 * A failed batch write fails every op in it and every op queued behind it
 * (they were decided on a head view that included the failed ones); the
 * writer stays paused until the loop has taken them out of the head view.
 * Revisions and ids those ops consumed are skipped, never reused; a
 * mirror's revisions (store_put_at, store_delete_at) are another store's,
 * and when only such ops failed the head view falls back to the committed
 * revision, so that the mirror writes them again (store_fail).
 *
 * A full disk is refused before RocksDB sees the batch: RocksDB 7.8 as
 * Debian builds it (assertions on) aborts the process when a synced WAL
 * append fails with ENOSPC (fixed upstream in 9.x, facebook/rocksdb#12448).
 * So the writer checks the free space first and fails the batch with
 * CERTD_ERR_STORAGE, the database untouched, while less than the batch
 * twice plus STORE_MIN_FREE is available.
 *
 * After a failed write the writer reopens the database before the next
 * one and reads "m:revision" and "m:kid" back: RocksDB may have made the
 * batch durable although it reported an error (a failed fsync after the
 * WAL write).  If so, the memory view no longer matches the disk, so every
 * later write fails until a restart loads the disk again; otherwise writes
 * resume.  The loop reads RocksDB only in store_log_scan, store_history,
 * store_history_get and store_backup, under a read lock that the reopen
 * takes for writing.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "certd/constants.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "store_test.h"
#include "util.h"

#define STORE_MIN_FREE	(1 << 20)	/* bytes kept free besides a batch */
#define STORE_REOPEN_SECS 1		/* retry after a failed write */

/* ------------------------------------------------------------------ */
/* What the writer knows of the history on disk                        */

/* The "h" revisions on disk of one id, oldest first; writer only. */
struct store_hist {
	uint64_t	 id;		/* 0: a free slot */
	uint64_t	*rev;
	size_t		 n, cap;
};

static size_t
store_hist_slot(const struct store *s, uint64_t id)
{
	size_t	i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (s->hist_cap - 1);

	while (s->hist[i].id != 0 && s->hist[i].id != id)
		i = (i + 1) & (s->hist_cap - 1);
	return i;
}

/* Forget every id (after a failed write: the disk is read again). */
void
store_writer_hist_clear(struct store *s)
{
	size_t	i;

	for (i = 0; i < s->hist_cap; i++)
		free(s->hist[i].rev);
	free(s->hist);
	s->hist = NULL;
	s->hist_cap = s->hist_n = 0;
}

/* Forget one id: shift the run after its slot back (linear probing). */
static void
store_hist_drop(struct store *s, uint64_t id)
{
	size_t	i, j, k;

	if (s->hist_cap == 0 || s->hist[i = store_hist_slot(s, id)].id == 0)
		return;
	free(s->hist[i].rev);
	memset(&s->hist[i], 0, sizeof(s->hist[i]));
	s->hist_n--;
	for (j = (i + 1) & (s->hist_cap - 1); s->hist[j].id != 0;
	    j = (j + 1) & (s->hist_cap - 1)) {
		k = (size_t)(s->hist[j].id * 0x9e3779b97f4a7c15ULL) &
		    (s->hist_cap - 1);
		/* move j to i when its home k is not cyclically in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			s->hist[i] = s->hist[j];
			memset(&s->hist[j], 0, sizeof(s->hist[j]));
			i = j;
		}
	}
}

/* The entry of id, read from the database the first time; NULL: ENOMEM. */
static struct store_hist *
store_hist_get(struct store *s, rocksdb_iterator_t **it, uint64_t id,
    int *err)
{
	struct store_hist	*h;
	rocksdb_readoptions_t	*ro;
	const char		*k;
	char			 from[STORE_HKEY_LEN];
	size_t			 klen, i;

	*err = 0;
	if (s->hist_n + 1 > s->hist_cap / 2) {
		struct store_hist	*old = s->hist;
		size_t			 oldcap = s->hist_cap;

		s->hist_cap = oldcap != 0 ? oldcap * 2 : 256;
		if ((s->hist = calloc(s->hist_cap, sizeof(*s->hist))) == NULL) {
			s->hist = old;
			s->hist_cap = oldcap;
			*err = CERTD_ERR_NOMEM;
			return NULL;
		}
		for (i = 0; i < oldcap; i++)
			if (old[i].id != 0)
				s->hist[store_hist_slot(s, old[i].id)] = old[i];
		free(old);
	}
	h = &s->hist[store_hist_slot(s, id)];
	if (h->id == id)
		return h;
	h->id = id;
	s->hist_n++;
	if (*it == NULL) {
		ro = rocksdb_readoptions_create();
		*it = rocksdb_create_iterator(s->db, ro);
		rocksdb_readoptions_destroy(ro);
	}
	store_hkey(from, id, 0);
	for (rocksdb_iter_seek(*it, from, sizeof(from));
	    rocksdb_iter_valid(*it); rocksdb_iter_next(*it)) {
		k = rocksdb_iter_key(*it, &klen);
		if (klen != STORE_HKEY_LEN || memcmp(k, from, 9) != 0)
			break;
		if (h->n == h->cap) {
			size_t	 cap = h->cap != 0 ? h->cap * 2 : 16;
			uint64_t *v = realloc(h->rev, cap * sizeof(*v));

			if (v == NULL) {
				*err = CERTD_ERR_NOMEM;
				break;
			}
			h->rev = v;
			h->cap = cap;
		}
		h->rev[h->n++] = util_be64_get(k + 9);
	}
	if (store_iter_error(*it, NULL, 0) != 0)
		*err = CERTD_ERR_STORAGE;
	if (*err != 0) {
		store_hist_drop(s, id);
		return NULL;
	}
	return h;
}

/*
 * Note put op's history entry and add to wb the deletes that trim the
 * id's history to the op's hist_keep newest entries.  `it` (made on first
 * use) reads the database as it was before the batch.
 */
static int
store_history_trim(struct store *s, rocksdb_writebatch_t *wb,
    rocksdb_iterator_t **it, const struct store_op *op)
{
	struct store_hist	*h;
	char			 hkey[STORE_HKEY_LEN];
	size_t			 drop, i;
	int			 err;

	if ((h = store_hist_get(s, it, op->id, &err)) == NULL)
		return err;
	if (h->n == h->cap) {
		size_t	 cap = h->cap != 0 ? h->cap * 2 : 16;
		uint64_t *v = realloc(h->rev, cap * sizeof(*v));

		if (v == NULL)
			return CERTD_ERR_NOMEM;
		h->rev = v;
		h->cap = cap;
	}
	h->rev[h->n++] = op->revision;
	if (h->n <= op->hist_keep)
		return 0;
	drop = h->n - op->hist_keep;
	for (i = 0; i < drop; i++) {
		store_hkey(hkey, op->id, h->rev[i]);
		rocksdb_writebatch_delete(wb, hkey, sizeof(hkey));
	}
	memmove(h->rev, h->rev + drop, (h->n - drop) * sizeof(*h->rev));
	h->n -= drop;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One batch                                                           */

/*
 * One synced write batch for the ops chained from `batch`.  A failure a
 * test asks for (store_test_write_fails) comes once the batch is built,
 * as if the write had failed.
 */
static int
store_write_batch(struct store *s, struct store_op *batch)
{
	rocksdb_writebatch_t	*wb;
	rocksdb_iterator_t	*it = NULL;
	struct store_op		*op, *last;
	char			 idbuf[8], nbuf[8], rbuf[8];
	char			 lfrom[9], lto[9];
	char			 hfrom[STORE_HKEY_LEN], hto[STORE_HKEY_LEN];
	char			*rerr = NULL;
	uint64_t		 cut;
	int			 err = 0;

	/* ops are in submission order: the last one holds every maximum */
	for (last = batch; last->qnext != NULL; last = last->qnext)
		;
	cut = last->log_cut;

	wb = rocksdb_writebatch_create();
	for (op = batch; op != NULL && err == 0; op = op->qnext) {
		if (op->kind == STORE_PUT) {
			rocksdb_writebatch_put(wb, op->rkey, sizeof(op->rkey),
			    op->ival, op->ivallen);
			rocksdb_writebatch_put(wb, op->hkey, sizeof(op->hkey),
			    op->val, op->vallen);
			err = store_history_trim(s, wb, &it, op);
			if (op->oldakey != NULL)
				rocksdb_writebatch_delete(wb, op->oldakey,
				    op->oldakeylen);
			util_be64_put(idbuf, op->id);
			rocksdb_writebatch_put(wb, op->akey, op->akeylen,
			    idbuf, sizeof(idbuf));
		} else {
			rocksdb_writebatch_delete(wb, op->rkey,
			    sizeof(op->rkey));
			rocksdb_writebatch_delete(wb, op->akey, op->akeylen);
			store_hkey(hfrom, op->id, 0);
			store_hkey(hto, op->id, UINT64_MAX);
			rocksdb_writebatch_delete_range(wb, hfrom,
			    sizeof(hfrom), hto, sizeof(hto));
			store_hist_drop(s, op->id);
		}
		/* an entry the trim below covers need not be written */
		if (op->revision > cut)
			rocksdb_writebatch_put(wb, op->lkey, sizeof(op->lkey),
			    op->lval, op->lvallen);
	}
	if (cut >= s->disk_log_first) {
		lfrom[0] = lto[0] = 'l';
		util_be64_put(lfrom + 1, s->disk_log_first);
		util_be64_put(lto + 1, cut + 1);
		rocksdb_writebatch_delete_range(wb, lfrom, sizeof(lfrom), lto,
		    sizeof(lto));
	}
	util_be64_put(nbuf, last->next_id);
	util_be64_put(rbuf, last->revision);
	rocksdb_writebatch_put(wb, KEY_NEXT_ID, strlen(KEY_NEXT_ID), nbuf, 8);
	rocksdb_writebatch_put(wb, KEY_REVISION, strlen(KEY_REVISION), rbuf, 8);
	if (it != NULL)
		rocksdb_iter_destroy(it);

	if (err == 0 && store_test_write_fails(s))
		err = CERTD_ERR_STORAGE;
	if (err == 0)
		rocksdb_write(s->db, s->wopts, wb, &rerr);
	store_wb_destroy(wb);
	if (rerr != NULL || err != 0) {
		/* what it noted of this batch is not on disk */
		store_writer_hist_clear(s);
		if (rerr != NULL) {
			rocksdb_free(rerr);
			return CERTD_ERR_STORAGE;
		}
		return err;
	}
	if (cut >= s->disk_log_first)
		s->disk_log_first = cut + 1;
	s->disk_rev = last->revision;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The reopen after a failed write, the free-space guard               */

/* Read an 8-byte meta value; absent reads as zeroes. */
static int
store_read_meta8(struct store *s, const char *key, unsigned char out[8])
{
	rocksdb_readoptions_t	*ro;
	char			*val, *rerr = NULL;
	size_t			 vlen;

	memset(out, 0, 8);
	ro = rocksdb_readoptions_create();
	val = rocksdb_get(s->db, ro, key, strlen(key), &vlen, &rerr);
	rocksdb_readoptions_destroy(ro);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (val != NULL && vlen == 8)
		memcpy(out, val, 8);
	rocksdb_free(val);
	return val == NULL || vlen == 8 ? 0 : CERTD_ERR_STORAGE;
}

/*
 * Free bytes on path's file system, as the caller may use them (root: the
 * reserved blocks too).  False when it cannot tell.
 */
static bool
store_avail(const char *path, unsigned long long *avail)
{
	struct statvfs	st;

	if (statvfs(path, &st) != 0)
		return false;
	*avail = (unsigned long long)(geteuid() == 0 ? st.f_bfree :
	    st.f_bavail) * st.f_frsize;
	return true;
}

/* Bytes of the write-ahead logs ("NNNNNN.log") in the database directory. */
static unsigned long long
store_log_bytes(const char *path)
{
	unsigned long long	 sum = 0;
	struct stat		 st;
	struct dirent		*e;
	DIR			*d;
	size_t			 n;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0 &&
		    fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			sum += (unsigned long long)st.st_size;
	}
	closedir(d);
	return sum;
}

/*
 * Is there room on the database's file system to write its write-ahead
 * logs' contents into a table file, with STORE_MIN_FREE to spare?  Opening
 * the database does (replaying the logs), and so does a backup (flushing
 * the memtable); RocksDB 7.8 aborts when that write finds the disk full.
 * If not, errbuf says so, `what` named as what needs the room.
 */
bool
store_writer_logs_fit(struct store *s, const char *what, char *errbuf,
    size_t errlen)
{
	unsigned long long	avail, need;

	need = store_log_bytes(s->db_path) + STORE_MIN_FREE;
	if (!store_avail(s->db_path, &avail) || avail >= need)
		return true;
	store_errf(errbuf, errlen, "%s: %llu bytes free, %s needs %llu (the "
	    "write-ahead logs are written into a table file); free some "
	    "space", s->db_path, avail, what, need);
	return false;
}

/*
 * After a failed write: reopen the database, which clears RocksDB's
 * background error, and check that the failed batch did not land.  Not
 * while the reopen would be refused for room: the open handle, error and
 * all, still serves reads (the history, a watch's replay) meanwhile.
 */
static int
store_recover(struct store *s)
{
	unsigned char	rev[8], kid[8];
	char		*rerr, why[512];

	if (s->db != NULL && !store_writer_logs_fit(s, "reopening", why,
	    sizeof(why)))
		return CERTD_ERR_STORAGE;	/* retried */
	pthread_rwlock_wrlock(&s->dblock);
	if (s->db != NULL)
		rocksdb_close(s->db);
	s->db = store_load_db_open(s, &rerr, why, sizeof(why));
	if (rerr != NULL) {
		rocksdb_free(rerr);
		s->db = NULL;
	}
	pthread_rwlock_unlock(&s->dblock);
	if (s->db == NULL)
		return CERTD_ERR_STORAGE;	/* retried at the next write */

	pthread_mutex_lock(&s->lock);
	s->reopens++;
	pthread_mutex_unlock(&s->lock);
	if (store_read_meta8(s, KEY_REVISION, rev) != 0 ||
	    store_read_meta8(s, KEY_KID, kid) != 0)
		return CERTD_ERR_STORAGE;
	if (util_be64_get(rev) != s->disk_rev ||
	    memcmp(kid, s->disk_kid, sizeof(kid)) != 0) {
		s->dead = true;		/* only a restart reconciles */
		log_error("store: after a failed write the database holds a "
		    "change this certd answered as failed (an I/O error while "
		    "syncing it); writes are refused until certd restarts and "
		    "loads what is on disk");
		return CERTD_ERR_STORAGE;
	}
	s->need_reopen = false;
	/* a rotation that failed at its batch left its key file */
	pthread_mutex_lock(&s->filelock);
	if (!s->rename_pending && unlink(s->mk_new_path) == 0)
		store_fsync_dir(s->mk_dir);
	pthread_mutex_unlock(&s->filelock);
	return 0;
}

/*
 * Did a flush or compaction fail since the database was opened?  RocksDB
 * then refuses every write until it is reopened.  Asked (it takes
 * RocksDB's mutex) before the first write after the free-space guard
 * refused some: a flush that found the disk full meanwhile would make that
 * write fail too, once there is room again.
 */
static bool
store_bg_failed(struct store *s)
{
	uint64_t	n = 0;

	return s->db != NULL && rocksdb_property_int(s->db,
	    "rocksdb.background-errors", &n) == 0 && n > 0;
}

/* Room on the database's file system for `need` more bytes and a margin? */
static bool
store_space_ok(struct store *s, size_t need)
{
	unsigned long long avail;

	return !store_avail(s->db_path, &avail) ||	/* let RocksDB find out */
	    avail >= (unsigned long long)need * 2 + STORE_MIN_FREE;
}

/* The bytes an op puts into a batch, roughly. */
static size_t
store_op_bytes(const struct store_op *op)
{
	size_t	size = 0;

	if (op->wb != NULL)
		rocksdb_writebatch_data(op->wb, &size);
	/* a put writes its version and its index entry */
	return size + op->vallen + op->ivallen + op->lvallen + op->akeylen +
	    op->oldakeylen + 96;
}

/*
 * Can the rotation op start?  Not while the last one's step 3 is not done
 * (a rotation queued behind another one whose rename failed: its .new
 * holds the key in force, and a rotation overwrites .new; store_rekey
 * refused the other cases, and mounted key files).  Then room for it all:
 * the batch goes to the write-ahead log and a table file, and store_keys_purge
 * flushes the memtables and rewrites every table file.  Writer only.
 */
static int
store_rekey_ready(struct store *s, struct store_op *op, int rename_errno)
{
	char			step[STORE_WHY_LEN];
	unsigned long long	avail = 0;
	uint64_t		tables = 0, mem = 0;
	size_t			need;

	if (s->rename_pending) {
		store_keys_rekey_pending_why(s, step, rename_errno);
		store_errf(op->why, STORE_WHY_LEN, "the last rotation is not "
		    "finished: %s", step);
		return CERTD_ERR_STORAGE;
	}
	(void)rocksdb_property_int(s->db, "rocksdb.live-sst-files-size",
	    &tables);
	(void)rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables",
	    &mem);
	need = 3 * store_op_bytes(op) + (size_t)tables + (size_t)mem;
	if (!store_space_ok(s, need)) {
		(void)store_avail(s->db_path, &avail);
		store_errf(op->why, STORE_WHY_LEN, "not enough free space for "
		    "a rotation: %llu bytes free in %s, it needs %llu",
		    avail, s->db_path,
		    (unsigned long long)need * 2 + STORE_MIN_FREE);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/* Write one batch the writer took: ordinary ops, or one rotation. */
static int
store_write_ops(struct store *s, struct store_op *batch)
{
	const struct store_op	*op;
	size_t			 need = 0;
	int			 err, rename_errno = 0;

	if (s->dead)
		return CERTD_ERR_STORAGE;
	for (op = batch; op != NULL; op = op->qnext)
		need += store_op_bytes(op);
	if (!store_space_ok(s, need)) {
		s->guard_refused = true;
		return CERTD_ERR_STORAGE;	/* nothing tried */
	}
	if (s->guard_refused && !s->need_reopen && store_bg_failed(s))
		s->need_reopen = true;
	s->guard_refused = false;
	if (s->need_reopen && (err = store_recover(s)) != 0)
		return err;
	if (store_test_write_fails(s) && batch->rekey) {
		s->need_reopen = true;
		return CERTD_ERR_STORAGE;
	}
	if (s->rename_pending) {
		pthread_mutex_lock(&s->filelock);
		if (s->rename_pending && store_keys_finish_rename(s) == 0)
			s->rename_pending = false;
		rename_errno = errno;
		pthread_mutex_unlock(&s->filelock);
	}
	if (batch->rekey) {
		/* the history joins the rotation's batch: room for it too */
		if ((err = store_keys_rekey_history(s, batch)) != 0) {
			store_errf(batch->why, STORE_WHY_LEN, "cannot seal "
			    "the history again: an entry does not open under "
			    "the key in force, or the database cannot be read");
			return err;
		}
		if ((err = store_rekey_ready(s, batch, rename_errno)) != 0)
			return err;
		return store_keys_rekey_write(s, batch);
	}
	if ((err = store_write_batch(s, batch)) != 0)
		s->need_reopen = true;
	return err;
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */

/* Take the next batch off the queue: a rotation goes alone.  Locked. */
static struct store_op *
store_take(struct store *s)
{
	struct store_op	*batch = s->queue_head, *last;

	if (batch->rekey)
		last = batch;
	else
		for (last = batch; last->qnext != NULL &&
		    !last->qnext->rekey; last = last->qnext)
			;
	s->queue_head = last->qnext;
	if (s->queue_head == NULL)
		s->queue_tail = NULL;
	last->qnext = NULL;
	return batch;
}

const double store_write_buckets[STORE_WRITE_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
};
const unsigned store_batch_buckets[STORE_BATCH_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128,
};

/* Whether writes fail for the store's sake.  Writer thread. */
static int
store_failing(const struct store *s)
{
	return s->need_reopen || s->dead || s->guard_refused;
}

/* Count one batch of nops ops written in secs (err: it failed). */
static void
stats_batch(struct store_stats *st, size_t nops, int err, double secs)
{
	size_t	i;

	st->batches++;
	st->ops += nops;
	if (err != 0)
		st->failed_batches++;
	st->write_seconds += secs;
	for (i = 0; i < STORE_WRITE_BUCKETS; i++)
		if (secs <= store_write_buckets[i])
			st->write_le[i]++;
	for (i = 0; i < STORE_BATCH_BUCKETS; i++)
		if (nops <= store_batch_buckets[i])
			st->batch_le[i]++;
}

void
store_get_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

unsigned
store_reopens(struct store *s)
{
	unsigned	n;

	pthread_mutex_lock(&s->lock);
	n = s->reopens;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void *
store_writer(void *arg)
{
	struct store	*s = arg;
	struct store_op	*batch, *last, *op;
	struct timespec	 t0, t1;
	size_t		 nops;
	int		 err;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->stopping && (s->queue_head == NULL || s->paused)) {
			if (!s->need_reopen || s->dead || s->paused) {
				pthread_cond_wait(&s->wake, &s->lock);
				continue;
			}
			/*
			 * A failed write left the database to reopen.  Try
			 * again every second, not only at the next write (the
			 * handle stays open until the logs fit; a reopen that
			 * then fails leaves it closed, and the history with it).
			 */
			clock_gettime(CLOCK_REALTIME, &t0);
			t0.tv_sec += STORE_REOPEN_SECS;
			if (pthread_cond_timedwait(&s->wake, &s->lock, &t0) ==
			    ETIMEDOUT && s->queue_head == NULL && !s->stopping) {
				pthread_mutex_unlock(&s->lock);
				(void)store_recover(s);
				pthread_mutex_lock(&s->lock);
				s->stats.writes_failing = store_failing(s);
			}
		}
		if (s->queue_head == NULL || s->paused)
			break;		/* stopping, and nothing to write */
		batch = store_take(s);
		store_test_take(s, batch->rekey);
		pthread_mutex_unlock(&s->lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		err = store_write_ops(s, batch);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		nops = 0;
		for (op = last = batch; op != NULL; op = op->qnext) {
			op->err = err;
			last = op;
			nops++;
		}

		pthread_mutex_lock(&s->lock);
		stats_batch(&s->stats, nops, err,
		    (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		s->stats.writes_failing = store_failing(s);
		if (s->done_tail != NULL)
			s->done_tail->qnext = batch;
		else
			s->done_head = batch;
		s->done_tail = last;
		if (err != 0)
			s->paused = true;
		pthread_cond_broadcast(&s->done_cond);
		pthread_mutex_unlock(&s->lock);

		if (util_wake(s->efd) != 0)
			store_bug("eventfd write failed");
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
