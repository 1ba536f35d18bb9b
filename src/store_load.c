/* SPDX-License-Identifier: MIT */
/*
 * Opening the store: the write-ahead logs checked, RocksDB opened, the
 * schema checked (an older database migrated), the master key loaded
 * (store_keys.c), every record loaded into the committed view and checked
 * against the alias index, the counters, the change log's first revision
 * and the epoch read; then the eventfd and the writer thread started.  And
 * store_free, which undoes all of it.
 *
 * The write-ahead logs are read by wal.c before RocksDB opens the
 * database, and RocksDB replays them tolerating a torn last record only:
 * damage stops the open before anything is written, and only an operator's
 * point-in-time recovery (store_options.recover) replays up to it, after
 * the damaged logs were copied aside.  The reopen after a failed write
 * tolerates a torn record only as well: it fails on damage, and writes
 * stay refused, rather than go on without acknowledged ones.
 */
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <rocksdb/c.h>

#include "certd/constants.h"
#include "cert.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "store_int.h"
#include "util.h"
#include "wal.h"

/*
 * 2: keys sealed, "m:kid".  3: history ("h").  4: "r" holds an index
 * entry and each version is written once, as history.  An older database
 * is upgraded at open (every record's current version written, sealed,
 * as its history, its "r" replaced by its index entry, the marker
 * rewritten, all in one batch), so that an older certd, which would read
 * the index entries as records, refuses the upgraded one by its marker.
 */
#define STORE_SCHEMA		4
#define STORE_WRITE_BUFFER	(8 << 20)	/* memtable: bounds RSS */
#define STORE_MAX_OPEN_FILES	256
#define STORE_KEEP_LOGS		4		/* RocksDB info logs kept */
/*
 * RocksDB's info log (db/LOG) gets fatal errors and its header only, and no
 * periodic statistics: lines buffered there when the file system fills
 * fail to flush, and RocksDB 7.8 then aborts at the log's next write (a
 * flush, a compaction, the close).  certd logs what a failed write says.
 */
#define STORE_INFO_LOG_LEVEL	4		/* InfoLogLevel::FATAL_LEVEL */
/*
 * MANIFEST preallocation (RocksDB's default is 4 MiB): the free-space
 * guard sees preallocated blocks as used, and a MANIFEST stays small.
 */
#define STORE_MANIFEST_PREALLOC	(64 << 10)
#define STORE_TEAMS_INIT	16		/* hash buckets, powers of 2 */
#define STORE_ALIASES_INIT	256
/*
 * RocksDB's WALRecoveryMode.  Opened tolerating a torn last record only:
 * RocksDB's default (point in time) stops at the first damaged record,
 * silently, and starts without the acknowledged writes after it.
 */
#define STORE_WAL_TOLERATE_TAIL	0	/* kTolerateCorruptedTailRecords */
#define STORE_WAL_POINT_IN_TIME	2	/* kPointInTimeRecovery */
#define STORE_NEW_SUFFIX ".new"

/* RocksDB says "lock" (LOCK file, "lock hold by current process"). */
static bool
store_mentions_lock(const char *msg)
{
	const char	*p;

	for (p = msg; *p != '\0'; p++)
		if ((p[0] == 'l' || p[0] == 'L') &&
		    (p[1] == 'o' || p[1] == 'O') &&
		    (p[2] == 'c' || p[2] == 'C') &&
		    (p[3] == 'k' || p[3] == 'K'))
			return true;
	return false;
}

/* The directory of path, for syncing entries made in it; or NULL. */
static char *
store_dirname(const char *path)
{
	const char	*slash = strrchr(path, '/');
	char		*d;

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	if ((d = malloc((size_t)(slash - path) + 1)) != NULL) {
		memcpy(d, path, (size_t)(slash - path));
		d[slash - path] = '\0';
	}
	return d;
}

/* ------------------------------------------------------------------ */
/* Load                                                                */

static int
store_get_u64(struct store *s, const rocksdb_readoptions_t *ro,
    const char *key, bool *found, uint64_t *v, char *errbuf, size_t errlen)
{
	char	*val, *rerr = NULL;
	size_t	 vlen;

	*found = false;
	val = rocksdb_get(s->db, ro, key, strlen(key), &vlen, &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read %s: %s", key, rerr);
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (val == NULL)
		return 0;
	if (vlen != 8) {
		store_errf(errbuf, errlen, "database is corrupt: %s is %zu "
		    "bytes", key, vlen);
		rocksdb_free(val);
		return CERTD_ERR_STORAGE;
	}
	*v = util_be64_get(val);
	*found = true;
	rocksdb_free(val);
	return 0;
}

/* Check the schema marker, writing it into a new, empty database. */
static int
store_check_schema(struct store *s, const rocksdb_readoptions_t *ro,
    bool *old, char *errbuf, size_t errlen)
{
	rocksdb_iterator_t	*it;
	char			 buf[8], *rerr = NULL;
	uint64_t		 v;
	bool			 found, empty;
	int			 err;

	if ((err = store_get_u64(s, ro, KEY_SCHEMA, &found, &v, errbuf,
	    errlen)) != 0)
		return err;
	if (found) {
		if (v == 0 || v > STORE_SCHEMA) {
			store_errf(errbuf, errlen, "database schema %llu is "
			    "not supported by this certd (%d)",
			    (unsigned long long)v, STORE_SCHEMA);
			return CERTD_ERR_STORAGE;
		}
		*old = v < STORE_SCHEMA;
		return 0;
	}

	it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek_to_first(it);
	empty = !rocksdb_iter_valid(it);
	err = store_iter_error(it, errbuf, errlen);
	rocksdb_iter_destroy(it);
	if (err != 0)
		return err;
	if (!empty) {
		store_errf(errbuf, errlen, "not a certd database (no %s)",
		    KEY_SCHEMA);
		return CERTD_ERR_STORAGE;
	}
	util_be64_put(buf, STORE_SCHEMA);
	rocksdb_put(s->db, s->wopts, KEY_SCHEMA, strlen(KEY_SCHEMA), buf, 8,
	    &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot initialise database: %s",
		    rerr);
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/*
 * A whole record of an older schema, "r" id -> v, migrated into mig: its
 * current version sealed under the master key as "h" id revision, its
 * index entry as "r" id; the entry into *out.  A key in clear (schema 1)
 * counts in *n_clear.
 */
static int
store_load_old(struct store *s, uint64_t id, const char *v, size_t vlen,
    rocksdb_writebatch_t *mig, struct store_entry **out, size_t *n_clear,
    char *errbuf, size_t errlen)
{
	struct record_sealed	 sk;
	struct cert_record	*rec = NULL;
	struct store_team	*t;
	char			 hkey[STORE_HKEY_LEN], rkey[9], *ival = NULL;
	size_t			 ivallen;
	int			 err;

	*out = NULL;
	if ((err = record_decode(v, vlen, &rec, &sk)) != 0) {
		store_errf(errbuf, errlen, err == CERTD_ERR_NOMEM ?
		    "out of memory loading record %llu" :
		    "database is corrupt: record %llu does not decode",
		    (unsigned long long)id);
		return err;
	}
	if (sk.box == NULL)
		(*n_clear)++;	/* schema 1 */
	else if (memcmp(sk.key_id, s->kid, sizeof(s->kid)) != 0 ||
	    (err = record_unseal(rec, &sk, s->mkey)) != 0) {
		if (err == CERTD_ERR_NOMEM)
			store_errf(errbuf, errlen, "out of memory loading "
			    "record %llu", (unsigned long long)id);
		else
			store_errf(errbuf, errlen, "master key %s does not "
			    "decrypt record %llu", s->mk_path,
			    (unsigned long long)id);
		err = err == CERTD_ERR_NOMEM ? err : CERTD_ERR_STORAGE;
		goto out;
	}
	err = CERTD_ERR_STORAGE;
	if (rec->id != id) {
		store_errf(errbuf, errlen, "database is corrupt: record %llu "
		    "holds id %llu", (unsigned long long)id,
		    (unsigned long long)rec->id);
		goto out;
	}
	store_hkey(hkey, id, rec->revision);
	err = 0;
	if ((t = store_index_team_get(s, rec->team)) == NULL ||
	    (*out = store_index_entry_new(rec, t)) == NULL ||
	    (err = store_index_value(&(*out)->m, &ival, &ivallen)) != 0 ||
	    (err = store_keys_seal_put(mig, hkey, sizeof(hkey), rec, s->mkey,
	    s->kid)) != 0) {
		store_errf(errbuf, errlen, "cannot migrate record %llu: %s",
		    (unsigned long long)id, err == CERTD_ERR_INTERNAL ?
		    "it cannot be sealed" : "out of memory");
		free(*out);
		*out = NULL;
		err = err != 0 ? err : CERTD_ERR_NOMEM;
		goto out;
	}
	rkey[0] = 'r';
	util_be64_put(rkey + 1, id);
	rocksdb_writebatch_put(mig, rkey, sizeof(rkey), ival, ivallen);
	err = 0;
out:
	record_sealed_clear(&sk);
	record_free(rec);
	free(ival);
	return err;
}
/*
 * The master key opens the first record's current version (the index
 * entries hold no box to tell).
 */
static int
store_load_probe(struct store *s, uint64_t id, uint64_t revision,
    char *errbuf, size_t errlen)
{
	struct cert_record	*rec;
	int			 err;

	if ((err = store_history_read(s, id, revision, true, &rec)) == 0) {
		record_free(rec);
		return 0;
	}
	if (err == CERTD_ERR_NOMEM)
		store_errf(errbuf, errlen, "out of memory loading record %llu",
		    (unsigned long long)id);
	else if (err == CERTD_ERR_NOT_FOUND)
		store_errf(errbuf, errlen, "database is corrupt: the current "
		    "version of record %llu is missing",
		    (unsigned long long)id);
	else
		store_errf(errbuf, errlen, "master key %s does not decrypt "
		    "record %llu", s->mk_path, (unsigned long long)id);
	return err == CERTD_ERR_NOMEM ? err : CERTD_ERR_STORAGE;
}

/*
 * Load every "r" entry into the committed view: index entries, or, when
 * mig is not NULL (a schema older than 4), whole records migrated into
 * mig (store_load_old).
 */
static int
store_load_records(struct store *s, const rocksdb_readoptions_t *ro,
    rocksdb_writebatch_t *mig, uint64_t *max_id, uint64_t *max_rev,
    size_t *n_clear, char *errbuf, size_t errlen)
{
	rocksdb_iterator_t	*it;
	struct store_entry	*e = NULL;
	struct store_team	*t;
	const struct store_meta	*other;
	const char		*k, *v;
	size_t			 klen, vlen;
	uint64_t		 id, first = 0, first_rev = 0;
	int			 err = CERTD_ERR_STORAGE;

	*max_id = *max_rev = 0;
	*n_clear = 0;
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "r", 1);
	    (k = store_iter_family(it, 'r', &klen)) != NULL;
	    rocksdb_iter_next(it)) {
		if (klen != 9) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "record key of %zu bytes", klen);
			goto out;
		}
		id = util_be64_get(k + 1);
		v = rocksdb_iter_value(it, &vlen);
		if (mig != NULL) {
			if ((err = store_load_old(s, id, v, vlen, mig, &e,
			    n_clear, errbuf, errlen)) != 0)
				goto out;
		} else if ((err = store_index_value_load(s, id, v, vlen, &e))
		    != 0) {
			store_errf(errbuf, errlen, err == CERTD_ERR_NOMEM ?
			    "out of memory loading record %llu" :
			    "database is corrupt: record %llu does not decode",
			    (unsigned long long)id);
			goto out;
		}
		err = CERTD_ERR_STORAGE;
		if ((other = store_meta_alias(s, e->m.team, e->m.alias))
		    != NULL) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "records %llu and %llu share one alias in team %s",
			    (unsigned long long)other->id,
			    (unsigned long long)id, e->m.team);
			goto out;
		}
		err = CERTD_ERR_NOMEM;
		if ((t = store_index_team_get(s, e->m.team)) == NULL ||
		    store_index_team_grow(t) != 0) {
			store_errf(errbuf, errlen, "out of memory loading "
			    "records");
			goto out;
		}
		/* keys are sorted, so ids arrive in increasing order */
		store_index_team_insert(t, t->n, e);
		s->count++;
		store_index_alias_link(s, e);
		if (first == 0) {
			first = id;
			first_rev = e->m.revision;
		}
		if (id > *max_id)
			*max_id = id;
		if (e->m.revision > *max_rev)
			*max_rev = e->m.revision;
		e = NULL;
	}
	if ((err = store_iter_error(it, errbuf, errlen)) == 0 &&
	    mig == NULL && first != 0)
		err = store_load_probe(s, first, first_rev, errbuf, errlen);
out:
	free(e);
	rocksdb_iter_destroy(it);
	return err;
}

/* Every alias index entry names a loaded record, and vice versa. */
static int
store_check_aliases(struct store *s, const rocksdb_readoptions_t *ro,
    char *errbuf, size_t errlen)
{
	rocksdb_iterator_t		*it;
	const struct store_meta		*rec;
	const char			*k, *v, *alias;
	char				*copy = NULL;
	size_t				 klen, vlen, n = 0;
	int				 err = CERTD_ERR_STORAGE;

	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "a", 1);
	    (k = store_iter_family(it, 'a', &klen)) != NULL;
	    rocksdb_iter_next(it)) {
		v = rocksdb_iter_value(it, &vlen);
		free(copy);
		if ((copy = malloc(klen + 1)) == NULL) {
			store_errf(errbuf, errlen, "out of memory");
			err = CERTD_ERR_NOMEM;
			goto out;
		}
		/* "a" team "\0" alias, exactly one NUL inside */
		memcpy(copy, k, klen);
		copy[klen] = '\0';
		alias = copy + strlen(copy) + 1;
		if (alias >= copy + klen + 1 || strlen(copy) < 2 ||
		    alias + strlen(alias) != copy + klen || *alias == '\0' ||
		    vlen != 8) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "malformed alias index entry");
			goto out;
		}
		rec = store_meta_alias(s, copy + 1, alias);
		if (rec == NULL || rec->id != util_be64_get(v)) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "alias index entry for id %llu in team %s does not "
			    "match the records",
			    (unsigned long long)util_be64_get(v), copy + 1);
			goto out;
		}
		n++;
	}
	if (store_iter_error(it, errbuf, errlen) != 0)
		goto out;
	if (n != s->count) {
		store_errf(errbuf, errlen, "database is corrupt: alias index "
		    "has %zu entries for %zu records", n, s->count);
		goto out;
	}
	err = 0;
out:
	free(copy);
	rocksdb_iter_destroy(it);
	return err;
}

/* The oldest revision in the change log, or rev + 1 when it is empty. */
static int
store_find_log_first(struct store *s, const rocksdb_readoptions_t *ro,
    char *errbuf, size_t errlen)
{
	rocksdb_iterator_t	*it;
	const char		*k;
	size_t			 klen;
	int			 err = 0;

	s->log_first = s->rev + 1;
	it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek(it, "l", 1);
	if ((k = store_iter_family(it, 'l', &klen)) != NULL) {
		if (klen != 9 || util_be64_get(k + 1) == 0 ||
		    util_be64_get(k + 1) > s->rev) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "malformed change-log key");
			err = CERTD_ERR_STORAGE;
		} else
			s->log_first = util_be64_get(k + 1);
	}
	if (store_iter_error(it, errbuf, errlen) != 0)
		err = CERTD_ERR_STORAGE;
	rocksdb_iter_destroy(it);
	return err;
}

/* Does the database hold any record? */
int
store_load_has_records(struct store *s, const rocksdb_readoptions_t *ro,
    bool *any, char *errbuf, size_t errlen)
{
	rocksdb_iterator_t	*it;
	size_t			 klen;
	int			 err;

	it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek(it, "r", 1);
	*any = store_iter_family(it, 'r', &klen) != NULL;
	err = store_iter_error(it, errbuf, errlen);
	rocksdb_iter_destroy(it);
	return err;
}

/*
 * Record the master key's id and the schema, with what a migration from
 * an older schema wrote into mig (NULL: none), in one synced batch; then,
 * when keys were found in clear, compact away the files that held them.
 */
static int
store_key_commit(struct store *s, rocksdb_writebatch_t *mig, bool purge,
    char *errbuf, size_t errlen)
{
	rocksdb_writebatch_t	*wb;
	char			 schema[8], *rerr = NULL;

	wb = mig != NULL ? mig : rocksdb_writebatch_create();
	rocksdb_writebatch_put(wb, KEY_KID, strlen(KEY_KID),
	    (const char *)s->kid, sizeof(s->kid));
	util_be64_put(schema, STORE_SCHEMA);
	rocksdb_writebatch_put(wb, KEY_SCHEMA, strlen(KEY_SCHEMA), schema,
	    sizeof(schema));
	rocksdb_write(s->db, s->wopts, wb, &rerr);
	if (mig == NULL)
		store_wb_destroy(wb);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot seal the records: %s", rerr);
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (purge)
		store_keys_purge(s);
	return 0;
}

/*
 * Mark the database in db (file `name`, saying `text`) so that the store
 * opened there next makes a new epoch, see store_epoch_setup.  A mark
 * already there (a recovery that a crash interrupted) is kept.  RocksDB
 * leaves files of names it does not use alone.
 */
int
store_load_mark(const char *db, const char *name, const char *text,
    char *errbuf, size_t errlen)
{
	char			*mark;
	size_t			 len = strlen(text);
	int			 fd = -1, r = -1;

	if ((mark = store_path(db, "/", name)) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		return CERTD_ERR_NOMEM;
	}
	if ((fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 && errno == EEXIST)
		fd = open(mark, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1 && ftruncate(fd, 0) == 0 &&
	    write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 &&
	    store_fsync_dir(db) == 0)
		r = 0;
	else
		store_errf(errbuf, errlen, "cannot write %s: %s", mark,
		    strerror(errno));
	if (fd != -1)
		(void)close(fd);
	free(mark);
	return r == 0 ? 0 : CERTD_ERR_STORAGE;
}

/*
 * The store's epoch: read "m:epoch", or make a new one when it is absent (a
 * new store, or one from before epochs) or when the database directory
 * holds STORE_COPY_MARK (a restored backup: store_backup puts it there) or
 * STORE_RECOVER_MARK (a point-in-time recovery from a damaged log: it may
 * hand out again revisions that watchers saw), which then goes once the
 * new epoch is on disk.  A crash in between makes yet another epoch at the
 * next open: harmless.  Revisions of two stores with different epochs say
 * nothing about each other.  53 random bits, so that a client which holds
 * numbers as doubles (JavaScript) sends back exactly what it got.
 */
static int
store_epoch_setup(struct store *s, const rocksdb_readoptions_t *ro,
    char *errbuf, size_t errlen)
{
	struct stat	 st;
	char		 val[8], *mark, *rmark, *rerr = NULL;
	bool		 found, copy;
	int		 err;

	mark = store_path(s->db_path, "/", STORE_COPY_MARK);
	rmark = store_path(s->db_path, "/", STORE_RECOVER_MARK);
	if (mark == NULL || rmark == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		err = CERTD_ERR_NOMEM;
		goto out;
	}
	copy = lstat(mark, &st) == 0 || lstat(rmark, &st) == 0;
	if ((err = store_get_u64(s, ro, KEY_EPOCH, &found, &s->epoch, errbuf,
	    errlen)) != 0 || (found && s->epoch != 0 && !copy))
		goto out;
	do {
		if (cert_random(val, sizeof(val)) != 0) {
			store_errf(errbuf, errlen, "cannot make a store epoch");
			err = CERTD_ERR_INTERNAL;
			goto out;
		}
		s->epoch = util_be64_get(val) & STORE_EPOCH_MASK;
	} while (s->epoch == 0);
	util_be64_put(val, s->epoch);
	rocksdb_put(s->db, s->wopts, KEY_EPOCH, strlen(KEY_EPOCH), val,
	    sizeof(val), &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot write %s: %s", KEY_EPOCH,
		    rerr);
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
	} else if (copy && ((unlink(mark) != 0 && errno != ENOENT) ||
	    (unlink(rmark) != 0 && errno != ENOENT) ||
	    store_fsync_dir(s->db_path) != 0)) {
		store_errf(errbuf, errlen, "cannot remove %s or %s: %s", mark,
		    rmark, strerror(errno));
		err = CERTD_ERR_STORAGE;
	}
out:
	free(mark);
	free(rmark);
	return err;
}

int
store_set_epoch(struct store *s, uint64_t epoch)
{
	char	val[8], *rerr = NULL;

	epoch &= STORE_EPOCH_MASK;
	if (epoch == 0 || epoch == s->epoch)
		return 0;
	if (pthread_rwlock_rdlock(&s->dblock) != 0)
		return CERTD_ERR_STORAGE;
	util_be64_put(val, epoch);
	if (s->db != NULL)
		rocksdb_put(s->db, s->wopts, KEY_EPOCH, strlen(KEY_EPOCH), val,
		    sizeof(val), &rerr);
	pthread_rwlock_unlock(&s->dblock);
	if (s->db == NULL || rerr != NULL) {
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	s->epoch = epoch;
	return 0;
}

static int
store_load(struct store *s, char *errbuf, size_t errlen)
{
	rocksdb_readoptions_t	*ro;
	rocksdb_writebatch_t	*mig = NULL;
	unsigned char		 dbkid[RECORD_KEY_ID_LEN];
	char			 a[STORE_KEY_ID_HEX + 1];
	char			 b[STORE_KEY_ID_HEX + 1];
	uint64_t		 max_id, max_rev, v = 0;
	size_t			 n_clear;
	bool			 found, have_kid, created, old = false;
	int			 err;

	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(ro, 1);
	rocksdb_readoptions_set_fill_cache(ro, 0);	/* read once */

	if ((err = store_check_schema(s, ro, &old, errbuf, errlen)) != 0 ||
	    (err = store_get_u64(s, ro, KEY_KID, &have_kid, &v, errbuf,
	    errlen)) != 0)
		goto out;
	util_be64_put(dbkid, v);
	if ((err = store_keys_recover(s, have_kid, dbkid, errbuf, errlen))
	    != 0 ||
	    (err = store_keys_setup(s, ro, have_kid, &created, errbuf, errlen))
	    != 0)
		goto out;
	if (old)
		mig = rocksdb_writebatch_create();
	if ((err = store_load_records(s, ro, mig, &max_id, &max_rev, &n_clear,
	    errbuf, errlen)) != 0 ||
	    (err = store_check_aliases(s, ro, errbuf, errlen)) != 0)
		goto out;
	if (have_kid && !created &&
	    memcmp(dbkid, s->kid, sizeof(dbkid)) != 0) {
		/* no sealed record to say so: the database's id does */
		util_hex(s->kid, sizeof(s->kid), a);
		util_hex(dbkid, sizeof(dbkid), b);
		store_errf(errbuf, errlen, "master key %s is not the key of "
		    "this store (key id %s, the store's is %s)", s->mk_path, a,
		    b);
		err = CERTD_ERR_STORAGE;
		goto out;
	}
	if ((!have_kid || created || n_clear > 0 || old) &&
	    (err = store_key_commit(s, mig, n_clear > 0, errbuf, errlen)) != 0)
		goto out;
	memcpy(s->disk_kid, s->kid, sizeof(s->kid));

	s->next_id = max_id + 1;
	if ((err = store_get_u64(s, ro, KEY_NEXT_ID, &found, &v, errbuf,
	    errlen)) != 0)
		goto out;
	if (found && v > s->next_id)
		s->next_id = v;
	s->rev = max_rev;
	if ((err = store_get_u64(s, ro, KEY_REVISION, &found, &v, errbuf,
	    errlen)) != 0)
		goto out;
	if (found && v > s->rev)
		s->rev = v;
	s->disk_rev = found ? v : 0;
	s->head_rev = s->rev;
	s->n_clear = n_clear;
	if ((err = store_find_log_first(s, ro, errbuf, errlen)) != 0 ||
	    (err = store_epoch_setup(s, ro, errbuf, errlen)) != 0)
		goto out;
	s->disk_log_first = s->log_first;
out:
	store_wb_destroy(mig);
	rocksdb_readoptions_destroy(ro);
	return err;
}

/* ------------------------------------------------------------------ */
/* Opening the database                                                */

/*
 * Open the database into s->db; at start-up and when the writer reopens it
 * after a failed write.  NULL on failure, with RocksDB's reason in *rerr
 * (rocksdb_free it), or with *rerr NULL and the reason in errbuf when it
 * was not tried: opening replays the write-ahead logs into a table file
 * and writes a new log and manifest, and RocksDB 7.8 aborts the process
 * when such a write finds the disk full (see the top of store_writer.c),
 * so it is tried only when the logs fit with STORE_MIN_FREE to spare.
 *
 * Signals are blocked as util_sigset_async says while RocksDB starts its
 * background threads, which keep that mask: signals reach only the loop.
 */
static rocksdb_t *
store_db_open_masked(struct store *s, bool read_only, char **rerr)
{
	sigset_t		 all, old;
	rocksdb_t		*db;

	util_sigset_async(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	db = read_only ? rocksdb_open_for_read_only(s->opts, s->db_path, 0,
	    rerr) : rocksdb_open(s->opts, s->db_path, rerr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return db;
}

rocksdb_t *
store_load_db_open(struct store *s, char **rerr, char *errbuf, size_t errlen)
{
	*rerr = NULL;
	if (!store_writer_logs_fit(s, "opening the database", errbuf, errlen))
		return NULL;
	return store_db_open_masked(s, false, rerr);
}

/* ------------------------------------------------------------------ */
/* Damaged write-ahead logs                                            */

/*
 * The revision a point-in-time replay of the logs reaches.  Opened
 * read-only, RocksDB replays the logs into memory up to the damage and
 * writes nothing: no lock, no info log, no table file, no manifest, no
 * log truncated (DBImplReadOnly, RocksDB 7.8).  Then "m:revision".
 */
static int
store_pit_revision(struct store *s, uint64_t *rev, char *why, size_t whylen)
{
	rocksdb_readoptions_t	*ro;
	char			*rerr = NULL;
	bool			 found;
	int			 err;

	rocksdb_options_set_wal_recovery_mode(s->opts, STORE_WAL_POINT_IN_TIME);
	s->db = store_db_open_masked(s, true, &rerr);
	rocksdb_options_set_wal_recovery_mode(s->opts, STORE_WAL_TOLERATE_TAIL);
	if (s->db == NULL) {
		store_errf(why, whylen, "%s", rerr != NULL ? rerr : "?");
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	ro = rocksdb_readoptions_create();
	if ((err = store_get_u64(s, ro, KEY_REVISION, &found, rev, why,
	    whylen)) == 0 && !found)
		*rev = 0;
	rocksdb_readoptions_destroy(ro);
	rocksdb_close(s->db);
	s->db = NULL;
	return err;
}

/* What the logs after the damage hold, as far as they read, into buf. */
static void
store_wal_after(const struct wal_report *w, uint64_t kept, char *buf,
    size_t len)
{
	if (w->rev_after > kept)
		snprintf(buf, len, "revisions %llu to %llu",
		    (unsigned long long)kept + 1,
		    (unsigned long long)w->rev_after);
	else if (w->batches_after > 0)
		snprintf(buf, len, "the damaged write and %llu whole write "
		    "batches after it, none above revision %llu",
		    (unsigned long long)w->batches_after,
		    (unsigned long long)kept);
	else
		snprintf(buf, len, "the damaged write (no whole write batch "
		    "follows it)");
}

/* A damaged log and no recovery asked for: say what a replay would lose. */
static int
store_wal_refuse(struct store *s, char *errbuf, size_t errlen)
{
	const struct wal_report	*w = &s->wal;
	char			 why[512], lost[160];
	uint64_t		 rev;

	if (store_pit_revision(s, &rev, why, sizeof(why)) != 0) {
		store_errf(errbuf, errlen, "write-ahead log %s/%s is damaged at "
		    "offset %llu (%s), %llu bytes before its end; not started, "
		    "nothing was changed; a point-in-time replay fails too "
		    "(%s): see certd(8)", s->db_path, w->file,
		    (unsigned long long)w->offset, w->why,
		    (unsigned long long)w->bytes_after, why);
		return CERTD_ERR_STORAGE;
	}
	store_wal_after(w, rev, lost, sizeof(lost));
	store_errf(errbuf, errlen, "write-ahead log %s/%s is damaged at offset "
	    "%llu (%s): the last good revision is %llu, and the %llu bytes of "
	    "log from the damage on hold %s; not started, nothing was changed "
	    "(certd --recover point-in-time starts from revision %llu and "
	    "loses the rest, see certd(8))", s->db_path, w->file,
	    (unsigned long long)w->offset, w->why, (unsigned long long)rev,
	    (unsigned long long)w->bytes_after, lost, (unsigned long long)rev);
	return CERTD_ERR_STORAGE;
}

/*
 * Before the logs are read, check them (wal.h): a torn last record is
 * dropped with a warning, as RocksDB does; damage refuses the open, unless
 * a point-in-time recovery is asked for.  Then the damaged log and the
 * later ones are copied into dir (the paths into kept), the database is
 * marked for a new epoch, and RocksDB is told to replay up to the damage.
 * A recovery with nothing to recover is refused: it is a one-time act.
 */
static int
store_wal_check(struct store *s, const char *dir, enum store_recover mode,
    char *kept, size_t keptlen, char *errbuf, size_t errlen)
{
	const struct wal_report	*w = &s->wal;

	if (wal_scan(s->db_path, KEY_REVISION, &s->wal, errbuf, errlen) != 0)
		return CERTD_ERR_STORAGE;
	if (w->torn)
		log_warn("store: write-ahead log %s/%s ends in a torn record "
		    "(%llu bytes at offset %llu): a write that never finished, "
		    "so never acknowledged; dropped", s->db_path, w->torn_file,
		    (unsigned long long)w->torn_bytes,
		    (unsigned long long)w->torn_offset);
	if (!w->damaged && mode == STORE_RECOVER_NONE)
		return 0;
	if (!w->damaged) {
		store_errf(errbuf, errlen, "nothing to recover: the write-ahead "
		    "logs in %s are whole (%u, %llu bytes); start certd without "
		    "--recover", s->db_path, w->files,
		    (unsigned long long)w->bytes);
		return CERTD_ERR_STORAGE;
	}
	if (mode != STORE_RECOVER_POINT_IN_TIME)
		return store_wal_refuse(s, errbuf, errlen);
	if (wal_keep(s->db_path, w->file, dir, time(NULL), kept, keptlen,
	    errbuf, errlen) != 0 ||
	    store_load_mark(s->db_path, STORE_RECOVER_MARK, "certd: recovered "
	    "point-in-time from a damaged write-ahead log; the store opened "
	    "here makes a new epoch\n", errbuf, errlen) != 0)
		return CERTD_ERR_STORAGE;
	rocksdb_options_set_wal_recovery_mode(s->opts, STORE_WAL_POINT_IN_TIME);
	s->recovering = true;
	return 0;
}

/* After a point-in-time recovery: say what was lost, where it is kept. */
static void
store_wal_recovered(struct store *s, const char *kept)
{
	const struct wal_report	*w = &s->wal;
	char			 lost[160];

	/* a reopen after a failed write tolerates a torn tail only */
	rocksdb_options_set_wal_recovery_mode(s->opts, STORE_WAL_TOLERATE_TAIL);
	s->recovering = false;
	store_wal_after(w, s->rev, lost, sizeof(lost));
	log_error("store: recovered point-in-time from damaged write-ahead log "
	    "%s/%s (%s at offset %llu): kept revisions up to %llu; lost %s, "
	    "%llu bytes of log", s->db_path, w->file, w->why,
	    (unsigned long long)w->offset, (unsigned long long)s->rev, lost,
	    (unsigned long long)w->bytes_after);
	log_warn("store: the damaged logs are kept as %s (mode 0600); new store "
	    "epoch %llu: watchers start over with a resync", kept,
	    (unsigned long long)s->epoch);
	if (s->n_clear > 0)
		log_warn("store: the store held %zu private keys in clear (a "
		    "certd from before sealing wrote them), so the kept logs may "
		    "too: move them off this host or shred them once read",
		    s->n_clear);
}

/* ------------------------------------------------------------------ */
/* Open and free                                                       */

/* RocksDB's options, and the loop's read options (checksums verified). */
static void
store_db_options(struct store *s, size_t cache_size)
{
	s->cache = rocksdb_cache_create_lru(cache_size);
	s->bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->bbto, s->cache);
	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, 1);
	rocksdb_options_set_paranoid_checks(s->opts, 1);
	rocksdb_options_set_wal_recovery_mode(s->opts, STORE_WAL_TOLERATE_TAIL);
	rocksdb_options_set_max_open_files(s->opts, STORE_MAX_OPEN_FILES);
	rocksdb_options_set_write_buffer_size(s->opts, STORE_WRITE_BUFFER);
	rocksdb_options_set_keep_log_file_num(s->opts, STORE_KEEP_LOGS);
	rocksdb_options_set_info_log_level(s->opts, STORE_INFO_LOG_LEVEL);
	rocksdb_options_set_stats_dump_period_sec(s->opts, 0);
	rocksdb_options_set_manifest_preallocation_size(s->opts,
	    STORE_MANIFEST_PREALLOC);
	rocksdb_options_set_block_based_table_factory(s->opts, s->bbto);
	s->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wopts, 1);
	s->lro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(s->lro, 1);
}

/* The loop ran again: what was lent goes. */
static void
store_lent_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	store_index_lent_free(arg);
}

struct store *
store_open(struct event_base *base, const char *dir, char *errbuf,
    size_t errlen)
{
	return store_open_opts(base, dir, NULL, errbuf, errlen);
}

struct store *
store_open_opts(struct event_base *base, const char *dir,
    const struct store_options *sopts, char *errbuf, size_t errlen)
{
	struct store	*s;
	char		*path, *rp, *rerr = NULL, kept[1024];
	bool		 ok = false;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->efd = -1;
	TAILQ_INIT(&s->pending);
	s->log_retain = CERTD_LOG_RETAIN_DEFAULT;
	s->hist_keep = CERTD_HISTORY_KEEP_DEFAULT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->filelock, NULL);
	pthread_rwlock_init(&s->dblock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	s->sync_init = true;

	s->teams_cap = STORE_TEAMS_INIT;
	s->aliases_cap = STORE_ALIASES_INIT;
	s->teams = calloc(s->teams_cap, sizeof(*s->teams));
	s->aliases = calloc(s->aliases_cap, sizeof(*s->aliases));
	s->db_path = store_path(dir, "/", "db");
	s->mk_path = sopts != NULL && sopts->master_key != NULL ?
	    strdup(sopts->master_key) :
	    store_path(dir, "/", STORE_MASTER_KEY_FILE);
	/*
	 * A key file that is a symbolic link is the link's target: a rotation
	 * replaces the target (by a rename next to it), not the link.
	 */
	if (s->mk_path != NULL && (rp = realpath(s->mk_path, NULL)) != NULL) {
		free(s->mk_path);
		s->mk_path = rp;
	}
	if (s->teams == NULL || s->aliases == NULL || s->db_path == NULL ||
	    s->mk_path == NULL ||
	    (s->mk_new_path = store_path(s->mk_path, "", STORE_NEW_SUFFIX))
	    == NULL || (s->mk_dir = store_dirname(s->mk_path)) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		goto out;
	}
	path = s->db_path;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		store_errf(errbuf, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}

	store_db_options(s, sopts != NULL && sopts->cache_size != 0 ?
	    sopts->cache_size : CERTD_CACHE_DEFAULT);
	if ((s->lent_ev = event_new(base, -1, 0, store_lent_cb, s)) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		goto out;
	}

	if (store_wal_check(s, dir, sopts != NULL ? sopts->recover :
	    STORE_RECOVER_NONE, kept, sizeof(kept), errbuf, errlen) != 0)
		goto out;
	if ((s->db = store_load_db_open(s, &rerr, errbuf, errlen)) == NULL &&
	    rerr == NULL)
		goto out;	/* not tried: errbuf says why */
	if (rerr != NULL) {
		if (store_mentions_lock(rerr))
			store_errf(errbuf, errlen, "%s: data directory is in "
			    "use by another process (%s)", dir, rerr);
		else
			store_errf(errbuf, errlen, "cannot open database %s: "
			    "%s", path, rerr);
		rocksdb_free(rerr);
		s->db = NULL;
		goto out;
	}
	if (store_load(s, errbuf, errlen) != 0)
		goto out;
	if (s->recovering)
		store_wal_recovered(s, kept);

	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		store_errf(errbuf, errlen, "eventfd: %s", strerror(errno));
		goto out;
	}
	s->ev = event_new(base, s->efd, EV_READ | EV_PERSIST, store_on_event,
	    s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		store_errf(errbuf, errlen, "cannot watch the writer's eventfd");
		goto out;
	}
	if (util_thread_start(&s->thread, "certd-writer", store_writer, s) != 0) {
		store_errf(errbuf, errlen, "cannot start the writer thread");
		goto out;
	}
	s->thread_started = true;
	ok = true;
out:
	if (!ok) {
		store_free(s);
		s = NULL;
	}
	return s;
}

void
store_free(struct store *s)
{
	struct store_team	*t, *tnext;
	size_t			 i, j;

	if (s == NULL)
		return;
	if (s->thread_started) {
		store_drain(s);
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	store_writer_hist_clear(s);
	store_index_lent_free(s);
	free(s->lent);
	if (s->lent_ev != NULL)
		event_free(s->lent_ev);
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->efd >= 0)
		close(s->efd);
	if (s->db != NULL)
		rocksdb_close(s->db);
	if (s->wopts != NULL)
		rocksdb_writeoptions_destroy(s->wopts);
	if (s->lro != NULL)
		rocksdb_readoptions_destroy(s->lro);
	if (s->opts != NULL)
		rocksdb_options_destroy(s->opts);
	if (s->bbto != NULL)
		rocksdb_block_based_options_destroy(s->bbto);
	if (s->cache != NULL)
		rocksdb_cache_destroy(s->cache);

	for (i = 0; s->teams != NULL && i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = tnext) {
			tnext = t->hnext;
			for (j = 0; j < t->n; j++)
				free(t->recs[j]);
			free(t->recs);
			free(t->ids);
			free(t->name);
			free(t);
		}
	free(s->teams);
	free(s->aliases);	/* its entries were the teams' */
	util_wipe(s->mkey, sizeof(s->mkey));
	free(s->mk_path);
	free(s->mk_new_path);
	free(s->mk_dir);
	free(s->db_path);
	if (s->sync_init) {
		pthread_cond_destroy(&s->done_cond);
		pthread_cond_destroy(&s->wake);
		pthread_rwlock_destroy(&s->dblock);
		pthread_mutex_destroy(&s->filelock);
		pthread_mutex_destroy(&s->lock);
	}
	free(s);
}
