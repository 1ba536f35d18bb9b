/* SPDX-License-Identifier: MIT */
/*
 * The durable store.  RocksDB under <dir>/db is the source of truth; the
 * current records live in memory (per team, sorted by id, plus an alias
 * index) and are rebuilt from it at start-up.  Mutations are submitted on
 * the event loop, encoded there, and queued for one writer thread that
 * takes everything queued, writes it as one synced write batch (group
 * commit), and hands the batch back through an eventfd.  The loop then
 * applies each op to the committed view in submission (= revision) order
 * and runs the change listener and the op's completion.  Between submission
 * and completion an op is "pending": the head view (committed view plus
 * pending ops) is what new decisions are taken against.
 *
 * On-disk keys:
 *   "r" id(8, big-endian)          -> record (record_encode)
 *   "a" team "\0" alias            -> id(8)
 *   "h" id(8) revision(8)          -> a version of the record (record_encode)
 *   "l" revision(8)                -> change-log entry (msgpack map)
 *   "m:next_id", "m:revision"      -> counters (8)
 *   "m:schema"                     -> STORE_SCHEMA (8)
 *   "m:kid"                        -> id of the master key (8)
 *
 * The change log keeps the last `log_retain` revisions.  Each op carries
 * the trim point ("cut") computed when it is submitted; the writer deletes
 * the log entries up to the highest cut of its batch with one range
 * deletion inside that batch, so the trim is as durable and atomic as the
 * write itself.  Nothing about the log is persisted besides its entries:
 * at start-up the first "l" key is the oldest retained revision.
 *
 * History.  A put writes its value twice, under "r" and under "h" with its
 * revision, so the current version is always the newest history entry.
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
 * Revisions and ids those ops consumed are skipped, never reused.
 *
 * Keys at rest.  store_put seals the private key on the loop, under the
 * master key the store holds in memory, before the record is encoded; the
 * writer, the WAL and the files only ever see the box.  "m:kid" names the
 * master key the records are sealed with; every record carries it too.
 * A rotation (store_rekey) is an op like the others: on the loop it makes
 * the new key, re-seals the head view into a write batch and switches the
 * in-memory key, so that later submissions use the new key; the writer
 * then runs the three steps of store.h, always in a batch of its own.  If
 * it fails, the ops after it fail too (as after any failed write) and the
 * loop switches back to the old key before anyone can submit again.
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
#include <sys/statvfs.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>
#include <rocksdb/c.h>

#include "certd/constants.h"
#include "cert.h"
#include "log.h"
#include "perm.h"
#include "record.h"
#include "store.h"
#include "util.h"
#include "wal.h"

/*
 * 2: keys sealed, "m:kid".  3: history ("h").  An older database is
 * upgraded at open (schema 1 records sealed, every record's current
 * version written as its history, the marker rewritten, all in one batch),
 * so that an older certd, which would neither keep nor re-seal the
 * history, refuses the upgraded one by its marker.
 */
#define STORE_SCHEMA		3
#define STORE_CACHE_BYTES	(8 << 20)	/* block cache */
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
#define STORE_LOG_TEAM_BYTES	CERTD_TEAM_MAX		/* as record.c */
#define STORE_LOG_ALIAS_BYTES	(4 * CERTD_ALIAS_MAX)
#define STORE_HKEY_LEN		17	/* "h" id(8) revision(8) */

#define KEY_NEXT_ID	"m:next_id"
#define KEY_REVISION	"m:revision"
#define KEY_SCHEMA	"m:schema"
#define KEY_KID		"m:kid"
#define KEY_EPOCH	"m:epoch"
#define STORE_EPOCH_MASK ((UINT64_C(1) << 53) - 1)	/* exact as a double */
/* In a backup's db directory: the store opened there is a copy. */
#define STORE_COPY_MARK	"CERTD-BACKUP"
/* In a db directory a recovery replays point-in-time: a new epoch too. */
#define STORE_RECOVER_MARK "CERTD-RECOVERED"
/*
 * RocksDB's WALRecoveryMode.  Opened tolerating a torn last record only:
 * RocksDB's default (point in time) stops at the first damaged record,
 * silently, and starts without the acknowledged writes after it.
 */
#define STORE_WAL_TOLERATE_TAIL	0	/* kTolerateCorruptedTailRecords */
#define STORE_WAL_POINT_IN_TIME	2	/* kPointInTimeRecovery */
#define STORE_NEW_SUFFIX ".new"
/* A master key file: certd's own, for no one else to read (perm.h). */
#define STORE_KEY_PERM	(PERM_OWNER | PERM_PRIVATE)
/* A backup directory: no one but root and certd may change its entries. */
#define STORE_BACKUP_DIR_PERM (PERM_DIR | PERM_OWNER_ROOT | PERM_NO_WRITE)
#define STORE_COMPACT_FORCE 2	/* BottommostLevelCompaction::kForce */
#define STORE_MIN_FREE	(1 << 20)	/* bytes kept free besides a batch */
#define STORE_REOPEN_SECS 1		/* retry after a failed write */
#define STORE_WHY_LEN	320		/* a rotation's reason */

/*
 * Committed records of one team.  recs[] is sorted by id, strictly
 * increasing; cap >= n + reserve always, so that applying a committed
 * create never allocates (a commit must not fail after the fsync).
 * Teams are never removed while the store lives: ops point at them.
 */
struct store_team {
	struct store_team	 *hnext;	/* hash chain */
	uint64_t		  hash;
	char			 *name;
	struct cert_record	**recs;
	size_t			  n;
	size_t			  cap;
	size_t			  reserve;	/* held by pending creates */
};

/* Alias index entry: key is (rec->team, rec->alias), unique. */
struct store_alias {
	struct store_alias	*hnext;
	uint64_t		 hash;
	struct cert_record	*rec;
};

/*
 * A submitted mutation.  Everything the writer needs (keys, encoded
 * values) is built on the loop before submission and is immutable after;
 * the writer touches only qnext and err, under or before the lock handoff,
 * and a rotation's wb, which the loop leaves alone once it is submitted.
 */
struct store_op {
	struct store_op		*prev, *next;	/* pending list, loop only */
	struct store_op		*qnext;		/* queue / in flight / done */
	enum store_op_kind	 kind;
	uint64_t		 id;
	uint64_t		 revision;
	uint64_t		 next_id;	/* s->next_id at submit */
	uint64_t		 log_cut;	/* s->log_cut at submit */
	uint64_t		 hist_keep;	/* s->hist_keep at submit */
	const char		*team;		/* rec->team, or team_own */
	char			*team_own;	/* delete: copy of the team */
	struct store_team	*tm;		/* put: committed team entry */
	bool			 reserved;	/* put: holds a tm->reserve */
	struct cert_record	*rec;		/* put: owned until applied */
	struct store_alias	*ent;		/* put: preallocated entry */
	int			 err;		/* set by the writer */

	char			 rkey[9];
	char			 lkey[9];
	char			 hkey[STORE_HKEY_LEN]; /* put: history */
	char			*val;		/* put: record, holds the key */
	size_t			 vallen;
	char			*akey;		/* alias key to put or delete */
	size_t			 akeylen;
	char			*oldakey;	/* put: old alias key */
	size_t			 oldakeylen;
	char			*lval;		/* change-log entry */
	size_t			 lvallen;

	/*
	 * Rotation: the batch that re-seals the head view, the new key, and
	 * the key the loop goes back to if the rotation fails.  The writer
	 * adds the re-sealed history to wb.
	 */
	bool			 rekey;
	rocksdb_writebatch_t	*wb;
	unsigned char		 new_key[CERT_SEAL_KEY_LEN];
	unsigned char		 new_kid[RECORD_KEY_ID_LEN];
	unsigned char		 old_key[CERT_SEAL_KEY_LEN];
	unsigned char		 old_kid[RECORD_KEY_ID_LEN];
	char			*why;		/* why it failed, or a warning */

	store_done_cb		 cb;
	void			*arg;
};

/*
 * Fields above `lock` belong to the loop thread (and to store_open and
 * store_free); those below it are shared with the writer and read or
 * written only with `lock` held, except db and wopts which RocksDB
 * synchronises itself.
 */
struct store {
	struct event_base		*base;
	struct event			*ev;
	int				 efd;	/* writer -> loop */

	struct store_team		**teams;	/* by name */
	size_t				 teams_cap;
	size_t				 teams_n;
	struct store_alias		**aliases;	/* by (team, alias) */
	size_t				 aliases_cap;
	size_t				 aliases_n;
	size_t				 count;	/* committed records */

	uint64_t			 rev;		/* last committed */
	uint64_t			 head_rev;	/* last assigned */
	uint64_t			 next_id;	/* next to reserve */

	/*
	 * Change-log retention.  log_cut is the highest trim point of any
	 * submitted op: the writer may delete the entries up to it at any
	 * moment after the submission, so log_first (every committed entry
	 * from it on is on disk) is raised to log_cut + 1 on submission,
	 * not when the trimming batch completes.
	 */
	uint64_t			 log_retain;
	uint64_t			 log_cut;
	uint64_t			 log_first;
	uint64_t			 hist_keep; /* versions per id */

	struct store_op			*pend_head;	/* oldest first */
	struct store_op			*pend_tail;

	store_change_cb			 change_cb;
	void				*change_arg;

	/* the key submissions are sealed with (head view) */
	unsigned char			 mkey[CERT_SEAL_KEY_LEN];
	unsigned char			 kid[RECORD_KEY_ID_LEN];
	char				*mk_path;	/* master key file */
	char				*mk_new_path;	/* its .new */
	char				*mk_dir;	/* its directory */
	const char			*rekey_why;	/* store_rekey_why */
	char				 refused[STORE_WHY_LEN]; /* by store_rekey */
	char				*db_path;

	/*
	 * The writer replaces db when it reopens the database, holding
	 * dblock for writing; the loop holds it for reading while it uses
	 * db.  The writer itself needs no lock to use it.
	 */
	pthread_rwlock_t		 dblock;
	rocksdb_t			*db;
	rocksdb_options_t		*opts;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_cache_t			*cache;
	rocksdb_writeoptions_t		*wopts;	/* sync */
	uint64_t			 epoch;	/* "m:epoch", never 0 */
	/* store_open: what the write-ahead logs held; a recovery's state */
	struct wal_report		 wal;
	bool				 recovering;
	size_t				 n_clear; /* records loaded in clear */

	pthread_t			 thread;
	bool				 thread_started;
	bool				 sync_init;

	/*
	 * Writer thread only (store_open sets them before the thread
	 * starts).  disk_log_first: no log entry below it is on disk, so a
	 * trim starts there.  disk_rev and disk_kid: "m:revision" and
	 * "m:kid" as the last successful write left them.
	 */
	uint64_t			 disk_log_first;
	uint64_t			 disk_rev;
	struct store_hist		*hist;	/* open addressing, by id */
	size_t				 hist_cap, hist_n;
	unsigned char			 disk_kid[RECORD_KEY_ID_LEN];
	bool				 need_reopen;	/* a write failed */
	bool				 guard_refused;	/* since the last write */
	bool				 dead;	/* disk and memory disagree */

	struct store_stats		 stats;	/* under lock */

	/*
	 * Held by the writer through the steps of a rotation and by
	 * store_backup, so that a backup never pairs records and a key
	 * file of different rotations.  rename_pending: step 3 of a
	 * committed rotation failed and is retried; set by the writer,
	 * cleared by the writer or a backup, under the lock.  Atomic, so
	 * that the writer (without waiting for a backup that holds the lock)
	 * and store_rekey may look at it without.
	 */
	pthread_mutex_t			 filelock;
	atomic_bool			 rename_pending;

	pthread_mutex_t			 lock;
	pthread_cond_t			 wake;	/* writer: work or stop */
	pthread_cond_t			 done_cond; /* store_drain */
	struct store_op			*queue_head;	/* not yet taken */
	struct store_op			*queue_tail;
	struct store_op			*done_head;	/* not yet completed */
	struct store_op			*done_tail;
	bool				 paused;  /* failure awaits loop */
	bool				 stopping;
	int				 fail_writes;	/* test hook */
	int				 crash_step;	/* test hook */
	bool				 fail_backup;	/* test hook */
	unsigned			 reopens;
};

static void	store_complete(struct store *);
static int	store_mark(const char *, const char *, const char *, char *,
		    size_t);
static void	store_errf(char *, size_t, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static _Noreturn void
store_bug(const char *what)
{
	fprintf(stderr, "certd: store: broken invariant: %s\n", what);
	abort();
}

static void
store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list	ap;
	char	*p;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	/* one line, whatever RocksDB says */
	for (p = errbuf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

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

static void
store_be64_put(char *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
store_be64_get(const char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char)p[i];
	return v;
}

/* The history key of (id, revision) into k[STORE_HKEY_LEN]. */
static void
store_hkey(char *k, uint64_t id, uint64_t revision)
{
	k[0] = 'h';
	store_be64_put(k + 1, id);
	store_be64_put(k + 9, revision);
}

static void
store_hex(const unsigned char *p, size_t n, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* "dir/name" or "prefix" "suffix" in a new string, or NULL. */
static char *
store_path(const char *a, const char *sep, const char *b)
{
	size_t	len = strlen(a) + strlen(sep) + strlen(b) + 1;
	char	*p;

	if ((p = malloc(len)) != NULL)
		snprintf(p, len, "%s%s%s", a, sep, b);
	return p;
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
/* Master key files                                                    */

/* The id of a master key: the first bytes of its SHA-256. */
static int
store_kid(const unsigned char *key, unsigned char kid[RECORD_KEY_ID_LEN])
{
	unsigned char	h[32];

	if (cert_sha256(key, CERT_SEAL_KEY_LEN, h) != 0)
		return CERTD_ERR_INTERNAL;
	memcpy(kid, h, RECORD_KEY_ID_LEN);
	return 0;
}

static int
store_fsync_dir(const char *dir)
{
	int	fd, rv, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rv = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

/*
 * Give the written file tmp the name path, failing if anything is there.
 * link(2) does that atomically; a file system without hard links gets a
 * rename after a check (certd's filelock keeps certd's own writers out).
 */
static int
store_key_place(const char *tmp, const char *path)
{
	struct stat	st;

	if (link(tmp, path) == 0)
		return 0;
	if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
		return -1;
	if (lstat(path, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return errno == ENOENT ? rename(tmp, path) : -1;
}

/*
 * Create a key file that must not exist yet, mode 0600, whole or not at
 * all: written and synced as <path>.tmp, then linked to path (which, like
 * O_EXCL, fails on anything there, a planted link too), and the directory
 * synced.  A crash leaves at most a .tmp, which the next call replaces.
 * On failure returns -1 with errno set and removes what it created.
 */
static int
store_key_write(const char *path, const char *dir, const unsigned char *key)
{
	char	*tmp;
	ssize_t	 n;
	int	 fd = -1, saved, linked = 0;

	if ((tmp = store_path(path, "", ".tmp")) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if ((unlink(tmp) != 0 && errno != ENOENT) ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0)
		goto fail;
	if ((n = write(fd, key, CERT_SEAL_KEY_LEN)) != CERT_SEAL_KEY_LEN) {
		if (n >= 0)
			errno = ENOSPC;
		goto fail;
	}
	if (fsync(fd) != 0)
		goto fail;
	n = close(fd);
	fd = -1;
	if (n != 0 || store_key_place(tmp, path) != 0)
		goto fail;
	linked = 1;
	if ((unlink(tmp) != 0 && errno != ENOENT) || store_fsync_dir(dir) != 0)
		goto fail;
	free(tmp);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		(void)close(fd);
	if (linked)
		(void)unlink(path);
	(void)unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

/*
 * Read a key file into key[32].  Returns 0; CERTD_ERR_NOT_FOUND when it
 * does not exist; CERTD_ERR_STORAGE otherwise, with *bad set when the file
 * is there but is no usable key (type, size, or with check_mode its owner
 * and mode: STORE_KEY_PERM).
 * Every failure leaves a reason in errbuf.
 */
static int
store_key_read(const char *path, bool check_mode, unsigned char *key,
    bool *bad, char *errbuf, size_t errlen)
{
	struct stat	st;
	ssize_t		n;
	int		fd, err = CERTD_ERR_STORAGE;

	*bad = false;
	/*
	 * O_NONBLOCK: a FIFO planted there is refused, not waited on.
	 * O_NOFOLLOW: path is the key's real path (store_open_opts).
	 */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			store_errf(errbuf, errlen, "master key %s is missing",
			    path);
			return CERTD_ERR_NOT_FOUND;
		}
		store_errf(errbuf, errlen, "cannot read master key %s: %s",
		    path, strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	if (fstat(fd, &st) != 0) {
		store_errf(errbuf, errlen, "cannot read master key %s: %s",
		    path, strerror(errno));
		goto out;
	}
	*bad = true;
	if (perm_check(&st, "master key", path, check_mode ? STORE_KEY_PERM :
	    0, errbuf, errlen) != 0)
		goto out;
	if (st.st_size != CERT_SEAL_KEY_LEN) {
		store_errf(errbuf, errlen, "master key %s must be %d bytes, "
		    "not %lld", path, CERT_SEAL_KEY_LEN,
		    (long long)st.st_size);
		goto out;
	}
	*bad = false;
	if ((n = read(fd, key, CERT_SEAL_KEY_LEN)) != CERT_SEAL_KEY_LEN) {
		store_errf(errbuf, errlen, "cannot read master key %s: %s",
		    path, n < 0 ? strerror(errno) : "short read");
		cert_wipe(key, CERT_SEAL_KEY_LEN);
		goto out;
	}
	err = 0;
out:
	close(fd);
	return err;
}

int
store_key_check(struct store *s, char *errbuf, size_t errlen)
{
	unsigned char	key[CERT_SEAL_KEY_LEN];
	bool		bad;
	int		err;

	err = store_key_read(s->mk_path, true, key, &bad, errbuf, errlen);
	cert_wipe(key, sizeof(key));
	return err;
}

/*
 * Is the master key a mount point (a bind mount, a container's secret),
 * which no rename can replace?  Then why says so.
 */
static bool
store_key_mounted(const struct store *s, char *why)
{
	struct statx	kx, dx;

	if (statx(AT_FDCWD, s->mk_path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID,
	    &kx) != 0 || statx(AT_FDCWD, s->mk_dir, 0, STATX_MNT_ID, &dx) != 0)
		return false;
	if ((kx.stx_mask & dx.stx_mask & STATX_MNT_ID) ?
	    kx.stx_mnt_id == dx.stx_mnt_id :
	    kx.stx_dev_major == dx.stx_dev_major &&
	    kx.stx_dev_minor == dx.stx_dev_minor)
		return false;
	store_errf(why, STORE_WHY_LEN, "master key %s is a mount point: a "
	    "rotation replaces the file by a rename", s->mk_path);
	return true;
}

/*
 * What step 3 of a rotation still lacks (rename_pending): the rename, or
 * with .new gone the sync of the directory after it; err (0: unknown)
 * is why the last try failed.
 */
static void
store_rekey_pending_why(const struct store *s, char *why, int err)
{
	struct stat	st;

	if (lstat(s->mk_new_path, &st) == 0 || errno != ENOENT)
		store_errf(why, STORE_WHY_LEN, "%s holds the key in force and "
		    "has not replaced %s%s%s", s->mk_new_path, s->mk_path,
		    err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
	else
		store_errf(why, STORE_WHY_LEN, "%s is the new key but its "
		    "directory %s is not synced%s%s", s->mk_path, s->mk_dir,
		    err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
}

/* FNV-1a, continued from h. */
static uint64_t
store_hash(uint64_t h, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define STORE_HASH_INIT	0xcbf29ce484222325ULL

static uint64_t
store_alias_hash(const char *team, const char *alias)
{
	uint64_t	h;

	h = store_hash(STORE_HASH_INIT, team, strlen(team) + 1);
	return store_hash(h, alias, strlen(alias));
}

/* ------------------------------------------------------------------ */
/* Committed view                                                      */

static struct store_team *
store_team_find(const struct store *s, const char *name)
{
	struct store_team	*t;
	uint64_t		 h;

	if (s->teams_cap == 0)
		return NULL;
	h = store_hash(STORE_HASH_INIT, name, strlen(name));
	for (t = s->teams[h & (s->teams_cap - 1)]; t != NULL; t = t->hnext)
		if (t->hash == h && strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/* Double a chained hash table; on allocation failure keep the old one. */
#define STORE_REHASH(type, tab, cap)					\
	do {								\
		type	**rh_nt, *rh_e, *rh_next;			\
		size_t	  rh_cap = (cap) * 2, rh_i;			\
									\
		if ((rh_nt = calloc(rh_cap, sizeof(*rh_nt))) == NULL)	\
			break;						\
		for (rh_i = 0; rh_i < (cap); rh_i++)			\
			for (rh_e = (tab)[rh_i]; rh_e != NULL;		\
			    rh_e = rh_next) {				\
				rh_next = rh_e->hnext;			\
				rh_e->hnext =				\
				    rh_nt[rh_e->hash & (rh_cap - 1)];	\
				rh_nt[rh_e->hash & (rh_cap - 1)] = rh_e;\
			}						\
		free(tab);						\
		(tab) = rh_nt;						\
		(cap) = rh_cap;						\
	} while (0)

static struct store_team *
store_team_get(struct store *s, const char *name)
{
	struct store_team	*t;

	if ((t = store_team_find(s, name)) != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->name = strdup(name)) == NULL) {
		free(t);
		return NULL;
	}
	t->hash = store_hash(STORE_HASH_INIT, name, strlen(name));
	if (s->teams_n >= s->teams_cap)
		STORE_REHASH(struct store_team, s->teams, s->teams_cap);
	t->hnext = s->teams[t->hash & (s->teams_cap - 1)];
	s->teams[t->hash & (s->teams_cap - 1)] = t;
	s->teams_n++;
	return t;
}

/* Make room for one more record than n + reserve. */
static int
store_team_grow(struct store_team *t)
{
	struct cert_record	**nr;
	size_t			  need = t->n + t->reserve + 1, ncap;

	if (need <= t->cap)
		return 0;
	ncap = t->cap < 16 ? 16 : t->cap * 2;
	while (ncap < need)
		ncap *= 2;
	if ((nr = realloc(t->recs, ncap * sizeof(*nr))) == NULL)
		return CERTD_ERR_NOMEM;
	t->recs = nr;
	t->cap = ncap;
	return 0;
}

/* Index of id in t->recs, or where it would go; true when present. */
static bool
store_team_search(const struct store_team *t, uint64_t id, size_t *pos)
{
	size_t	lo = 0, hi = t->n, mid;

	/* creates come in increasing id order: check the end first */
	if (t->n == 0 || t->recs[t->n - 1]->id < id) {
		*pos = t->n;
		return false;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->recs[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < t->n && t->recs[lo]->id == id;
}

static struct store_alias **
store_alias_slot(const struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp;
	uint64_t		  h = store_alias_hash(team, alias);

	for (pp = &s->aliases[h & (s->aliases_cap - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if ((*pp)->hash == h && strcmp((*pp)->rec->alias, alias) == 0 &&
		    strcmp((*pp)->rec->team, team) == 0)
			return pp;
	return NULL;
}

static void
store_alias_link(struct store *s, struct store_alias *e,
    struct cert_record *rec)
{
	if (store_alias_slot(s, rec->team, rec->alias) != NULL)
		store_bug("alias taken twice in the committed view");
	e->rec = rec;
	e->hash = store_alias_hash(rec->team, rec->alias);
	if (s->aliases_n >= s->aliases_cap)
		STORE_REHASH(struct store_alias, s->aliases, s->aliases_cap);
	e->hnext = s->aliases[e->hash & (s->aliases_cap - 1)];
	s->aliases[e->hash & (s->aliases_cap - 1)] = e;
	s->aliases_n++;
}

static struct store_alias *
store_alias_unlink(struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp, *e;

	if ((pp = store_alias_slot(s, team, alias)) == NULL)
		store_bug("alias missing from the committed view");
	e = *pp;
	*pp = e->hnext;
	s->aliases_n--;
	return e;
}

const struct cert_record *
store_get(const struct store *s, const char *team, uint64_t id)
{
	struct store_team	*t;
	size_t			 pos;

	if ((t = store_team_find(s, team)) == NULL ||
	    !store_team_search(t, id, &pos))
		return NULL;
	return t->recs[pos];
}

const struct cert_record *
store_get_alias(const struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp;

	pp = store_alias_slot(s, team, alias);
	return pp != NULL ? (*pp)->rec : NULL;
}

size_t
store_list(const struct store *s, const char *team, size_t offset,
    size_t limit, const struct cert_record **out, size_t *total)
{
	struct store_team	*t;
	size_t			 i, n;

	*total = 0;
	if ((t = store_team_find(s, team)) == NULL)
		return 0;
	*total = t->n;
	if (offset >= t->n)
		return 0;
	n = t->n - offset < limit ? t->n - offset : limit;
	for (i = 0; i < n; i++)
		out[i] = t->recs[offset + i];
	return n;
}

/* Stops (returning the callback's value) when the callback returns non-zero. */
static int
team_foreach(const struct store_team *t, store_foreach_cb cb, void *arg)
{
	size_t	i;
	int	rv;

	for (i = 0; i < t->n; i++)
		if ((rv = cb(t->recs[i], arg)) != 0)
			return rv;
	return 0;
}

int
store_foreach(const struct store *s, const char *team, store_foreach_cb cb,
    void *arg)
{
	const struct store_team	*t;
	size_t			 i;
	int			 rv;

	if (team != NULL)
		return (t = store_team_find(s, team)) != NULL ?
		    team_foreach(t, cb, arg) : 0;
	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			if ((rv = team_foreach(t, cb, arg)) != 0)
				return rv;
	return 0;
}

size_t
store_count(const struct store *s)
{
	return s->count;
}

uint64_t
store_revision(const struct store *s)
{
	return s->rev;
}

uint64_t
store_epoch(const struct store *s)
{
	return s->epoch;
}

uint64_t
store_log_first(const struct store *s)
{
	return s->log_first;
}

void
store_set_log_retain(struct store *s, uint64_t n)
{
	s->log_retain = n > 0 ? n : 1;
}

void
store_set_history_keep(struct store *s, uint64_t n)
{
	s->hist_keep = n == 0 ? 1 : n > STORE_HISTORY_KEEP_MAX ?
	    STORE_HISTORY_KEEP_MAX : n;
}

/* ------------------------------------------------------------------ */
/* Head view                                                           */

const struct cert_record *
store_head_get(const struct store *s, const char *team, uint64_t id)
{
	const struct store_op	*op;

	for (op = s->pend_tail; op != NULL; op = op->prev) {
		if (op->id != id)
			continue;
		if (strcmp(op->team, team) != 0)
			return NULL;	/* ids are global: not this team's */
		return op->kind == STORE_PUT ? op->rec : NULL;
	}
	return store_get(s, team, id);
}

uint64_t
store_head_alias(const struct store *s, const char *team, const char *alias)
{
	const struct cert_record	*rec;
	const struct store_op		*op;
	uint64_t			 owner;

	/* replay the pending ops onto the committed owner, oldest first */
	rec = store_get_alias(s, team, alias);
	owner = rec != NULL ? rec->id : 0;
	for (op = s->pend_head; op != NULL; op = op->next) {
		if (strcmp(op->team, team) != 0)
			continue;
		if (op->kind == STORE_PUT && strcmp(op->rec->alias, alias) == 0)
			owner = op->id;
		else if (op->id == owner)
			owner = 0;	/* renamed or deleted */
	}
	return owner;
}

/* Is id held by any record of the head view, in any team? */
static bool
store_id_in_use(const struct store *s, uint64_t id)
{
	const struct store_op	*op;
	size_t			 i, pos;
	struct store_team	*t;

	for (op = s->pend_head; op != NULL; op = op->next)
		if (op->id == id)
			return true;
	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			if (store_team_search(t, id, &pos))
				return true;
	return false;
}

uint64_t
store_next_id(struct store *s)
{
	return s->next_id++;
}

void
store_set_change_cb(struct store *s, store_change_cb cb, void *arg)
{
	s->change_cb = cb;
	s->change_arg = arg;
}

void
store_fail_next_writes(struct store *s, int n)
{
	pthread_mutex_lock(&s->lock);
	s->fail_writes = n;
	pthread_mutex_unlock(&s->lock);
}

void
store_test_fail_backup(struct store *s)
{
	pthread_mutex_lock(&s->filelock);
	s->fail_backup = true;
	pthread_mutex_unlock(&s->filelock);
}

void
store_test_crash_rekey(struct store *s, int step)
{
	pthread_mutex_lock(&s->lock);
	s->crash_step = step;
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

void
store_key_id(const struct store *s, char hex[STORE_KEY_ID_HEX + 1])
{
	store_hex(s->kid, RECORD_KEY_ID_LEN, hex);
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */

/* A write batch may hold boxes: wipe its buffer before freeing it. */
static void
store_wb_destroy(rocksdb_writebatch_t *wb)
{
	const char	*data;
	size_t		 size;

	if (wb == NULL)
		return;
	data = rocksdb_writebatch_data(wb, &size);
	cert_wipe((void *)(uintptr_t)data, size);
	rocksdb_writebatch_destroy(wb);
}

static void
store_op_free(struct store_op *op)
{
	if (op == NULL)
		return;
	if (op->reserved)
		op->tm->reserve--;
	record_free(op->rec);
	free(op->ent);
	if (op->val != NULL) {
		cert_wipe(op->val, op->vallen);
		free(op->val);
	}
	free(op->akey);
	free(op->oldakey);
	free(op->lval);
	free(op->team_own);
	store_wb_destroy(op->wb);
	free(op->why);
	cert_wipe(op->new_key, sizeof(op->new_key));
	cert_wipe(op->old_key, sizeof(op->old_key));
	free(op);
}

static int
store_alias_key(const char *team, const char *alias, char **key,
    size_t *len)
{
	size_t	tl = strlen(team), al = strlen(alias);

	*len = 1 + tl + 1 + al;
	if ((*key = malloc(*len)) == NULL)
		return CERTD_ERR_NOMEM;
	(*key)[0] = 'a';
	memcpy(*key + 1, team, tl + 1);
	memcpy(*key + 2 + tl, alias, al);
	return 0;
}

static int
store_pack_str(msgpack_packer *pk, const char *str)
{
	size_t	len = strlen(str);

	return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, str, len);
}

/* Change-log entry {"op", "rev", "id", "team", "alias"}. */
static int
store_log_encode(struct store_op *op, const char *alias)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	int		r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	r = msgpack_pack_map(&pk, 5);
	r |= store_pack_str(&pk, "op");
	r |= store_pack_str(&pk, op->kind == STORE_PUT ? "put" : "delete");
	r |= store_pack_str(&pk, "rev");
	r |= msgpack_pack_uint64(&pk, op->revision);
	r |= store_pack_str(&pk, "id");
	r |= msgpack_pack_uint64(&pk, op->id);
	r |= store_pack_str(&pk, "team");
	r |= store_pack_str(&pk, op->team);
	r |= store_pack_str(&pk, "alias");
	r |= store_pack_str(&pk, alias);
	if (r != 0) {
		msgpack_sbuffer_destroy(&sb);
		return CERTD_ERR_NOMEM;
	}
	op->lval = sb.data;
	op->lvallen = sb.size;
	return 0;
}

static struct store_op *
store_op_new(struct store *s, enum store_op_kind kind, uint64_t id,
    store_done_cb cb, void *arg)
{
	struct store_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->kind = kind;
	op->id = id;
	op->revision = s->head_rev + 1;
	op->cb = cb;
	op->arg = arg;
	op->rkey[0] = 'r';
	store_be64_put(op->rkey + 1, id);
	op->lkey[0] = 'l';
	store_be64_put(op->lkey + 1, op->revision);
	store_hkey(op->hkey, id, op->revision);
	return op;
}

/* The op joins the head view and the writer's queue. */
static void
store_submit(struct store *s, struct store_op *op)
{
	s->head_rev = op->revision;
	op->next_id = s->next_id;
	op->hist_keep = s->hist_keep;

	/* once queued, the entries up to the cut may go at any moment */
	if (op->revision > s->log_retain &&
	    op->revision - s->log_retain > s->log_cut)
		s->log_cut = op->revision - s->log_retain;
	if (s->log_cut >= s->log_first)
		s->log_first = s->log_cut + 1;
	op->log_cut = s->log_cut;

	op->prev = s->pend_tail;
	op->next = NULL;
	if (s->pend_tail != NULL)
		s->pend_tail->next = op;
	else
		s->pend_head = op;
	s->pend_tail = op;

	op->qnext = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->queue_tail != NULL)
		s->queue_tail->qnext = op;
	else
		s->queue_head = op;
	s->queue_tail = op;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void
store_pending_remove(struct store *s, struct store_op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		s->pend_head = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	else
		s->pend_tail = op->prev;
	op->prev = op->next = NULL;
}

int
store_put(struct store *s, struct cert_record *rec, store_done_cb cb,
    void *arg)
{
	const struct cert_record	*head;
	struct store_op			*op = NULL;
	struct record_sealed		 sk;
	uint64_t			 owner;
	int				 err;

	if (rec == NULL)
		return CERTD_ERR_INTERNAL;
	if (rec->team == NULL || rec->team[0] == '\0' || rec->alias == NULL ||
	    rec->alias[0] == '\0' || rec->id == 0) {
		err = CERTD_ERR_INTERNAL;
		goto fail;
	}
	head = store_head_get(s, rec->team, rec->id);
	if (head == NULL && (rec->id >= s->next_id ||
	    store_id_in_use(s, rec->id))) {
		/* a create must use a reserved id that nothing ever held */
		err = CERTD_ERR_INTERNAL;
		goto fail;
	}
	owner = store_head_alias(s, rec->team, rec->alias);
	if (owner != 0 && owner != rec->id) {
		err = CERTD_ERR_ALIAS_EXISTS;
		goto fail;
	}

	if ((op = store_op_new(s, STORE_PUT, rec->id, cb, arg)) == NULL) {
		err = CERTD_ERR_NOMEM;
		goto fail;
	}
	op->team = rec->team;
	rec->revision = op->revision;
	err = CERTD_ERR_NOMEM;
	if ((op->tm = store_team_get(s, rec->team)) == NULL)
		goto fail;
	if (store_get(s, rec->team, rec->id) == NULL) {
		if (store_team_grow(op->tm) != 0)
			goto fail;
		op->tm->reserve++;
		op->reserved = true;
	}
	if ((op->ent = calloc(1, sizeof(*op->ent))) == NULL)
		goto fail;
	/* sealed here, bound to the revision just assigned */
	if ((err = record_seal(rec, s->mkey, s->kid, &sk)) != 0)
		goto fail;
	err = record_encode(rec, &sk, &op->val, &op->vallen);
	record_sealed_clear(&sk);
	if (err != 0)
		goto fail;
	if ((err = store_alias_key(rec->team, rec->alias, &op->akey,
	    &op->akeylen)) != 0)
		goto fail;
	if (head != NULL && strcmp(head->alias, rec->alias) != 0 &&
	    (err = store_alias_key(head->team, head->alias, &op->oldakey,
	    &op->oldakeylen)) != 0)
		goto fail;
	if ((err = store_log_encode(op, rec->alias)) != 0)
		goto fail;
	op->rec = rec;
	store_submit(s, op);
	return 0;

fail:
	store_op_free(op);
	record_free(rec);
	return err;
}

int
store_delete(struct store *s, const char *team, uint64_t id,
    store_done_cb cb, void *arg)
{
	const struct cert_record	*head;
	struct store_op			*op;
	int				 err = CERTD_ERR_NOMEM;

	if ((head = store_head_get(s, team, id)) == NULL)
		return CERTD_ERR_NOT_FOUND;
	if ((op = store_op_new(s, STORE_DELETE, id, cb, arg)) == NULL)
		return CERTD_ERR_NOMEM;
	if ((op->team_own = strdup(team)) == NULL)
		goto fail;
	op->team = op->team_own;
	if ((err = store_alias_key(team, head->alias, &op->akey,
	    &op->akeylen)) != 0)
		goto fail;
	if ((err = store_log_encode(op, head->alias)) != 0)
		goto fail;
	store_submit(s, op);
	return 0;

fail:
	store_op_free(op);
	return err;
}

/* Seal rec under key (bound to rec's revision), put it at dbkey in wb. */
static int
store_seal_put(rocksdb_writebatch_t *wb, const char *dbkey, size_t dbkeylen,
    const struct cert_record *rec, const unsigned char *key,
    const unsigned char *kid)
{
	struct record_sealed	 sk;
	char			*val;
	size_t			 vallen;
	int			 err;

	if ((err = record_seal(rec, key, kid, &sk)) != 0)
		return err;
	err = record_encode(rec, &sk, &val, &vallen);
	record_sealed_clear(&sk);
	if (err != 0)
		return err;
	rocksdb_writebatch_put(wb, dbkey, dbkeylen, val, vallen);
	cert_wipe(val, vallen);
	free(val);
	return 0;
}

/* Seal rec under key and add its "r" entry to wb. */
static int
store_reseal_one(rocksdb_writebatch_t *wb, const struct cert_record *rec,
    const unsigned char *key, const unsigned char *kid)
{
	char	rkey[9];

	rkey[0] = 'r';
	store_be64_put(rkey + 1, rec->id);
	return store_seal_put(wb, rkey, sizeof(rkey), rec, key, kid);
}

/*
 * Decode the history entry k -> v into a new record (no key yet) and its
 * box, checking that it is the version its key names.  Returns 0,
 * CERTD_ERR_STORAGE or CERTD_ERR_NOMEM; on failure *out is NULL and *sk
 * zeroed.
 */
static int
store_version_decode(const char *k, size_t klen, const char *v, size_t vlen,
    struct cert_record **out, struct record_sealed *sk)
{
	int	err;

	*out = NULL;
	memset(sk, 0, sizeof(*sk));
	if (klen != STORE_HKEY_LEN || k[0] != 'h')
		return CERTD_ERR_STORAGE;
	if ((err = record_decode(v, vlen, out, sk)) != 0)
		return err;
	if ((*out)->id != store_be64_get(k + 1) ||
	    (*out)->revision != store_be64_get(k + 9) || sk->box == NULL) {
		record_free(*out);
		*out = NULL;
		record_sealed_clear(sk);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/* Open sk into rec when it was sealed under key (id kid); clears sk. */
static int
store_version_unseal(struct cert_record *rec, struct record_sealed *sk,
    const unsigned char *key, const unsigned char *kid)
{
	int	err = CERTD_ERR_STORAGE;

	if (key != NULL && memcmp(sk->key_id, kid, RECORD_KEY_ID_LEN) == 0)
		err = record_unseal(rec, sk, key);
	record_sealed_clear(sk);
	return err;
}

/*
 * Re-seal every record of the head view under key into wb, each under its
 * own revision (the content does not change), plus the new "m:kid".
 */
static int
store_reseal_into(struct store *s, rocksdb_writebatch_t *wb,
    const unsigned char *key, const unsigned char *kid)
{
	const struct cert_record	*rec;
	const struct store_team		*t;
	const struct store_op		*op;
	size_t				 i, j;
	int				 err;

	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			for (j = 0; j < t->n; j++) {
				rec = store_head_get(s, t->name,
				    t->recs[j]->id);
				if (rec != NULL && (err = store_reseal_one(wb,
				    rec, key, kid)) != 0)
					return err;
			}
	/* pending creates: the last op of each id that is not committed */
	for (op = s->pend_head; op != NULL; op = op->next)
		if (!op->rekey && op->kind == STORE_PUT &&
		    store_get(s, op->team, op->id) == NULL &&
		    store_head_get(s, op->team, op->id) == op->rec &&
		    (err = store_reseal_one(wb, op->rec, key, kid)) != 0)
			return err;
	rocksdb_writebatch_put(wb, KEY_KID, strlen(KEY_KID), (const char *)kid,
	    RECORD_KEY_ID_LEN);
	return 0;
}

int
store_rekey(struct store *s, store_done_cb cb, void *arg)
{
	struct store_op	*op;
	int		 err;

	/*
	 * Refused here, before the head view switches keys: refused by the
	 * writer, the rotation would fail the writes queued behind it, which
	 * are sealed under its key.
	 */
	s->rekey_why = NULL;
	if (s->rename_pending) {
		char	step[STORE_WHY_LEN];

		store_rekey_pending_why(s, step, 0);
		store_errf(s->refused, sizeof(s->refused), "the last rotation "
		    "is not finished: %s (certd tries again before each "
		    "write)", step);
		s->rekey_why = s->refused;
		return CERTD_ERR_STORAGE;
	}
	if (store_key_mounted(s, s->refused)) {
		s->rekey_why = s->refused;
		return CERTD_ERR_STORAGE;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return CERTD_ERR_NOMEM;
	op->rekey = true;
	if ((op->why = calloc(1, STORE_WHY_LEN)) == NULL) {
		free(op);
		return CERTD_ERR_NOMEM;
	}
	op->team = "";			/* no team of the head view */
	op->revision = s->head_rev;	/* consumes none */
	op->cb = cb;
	op->arg = arg;
	if ((err = cert_random(op->new_key, sizeof(op->new_key))) != 0 ||
	    (err = store_kid(op->new_key, op->new_kid)) != 0)
		goto fail;
	op->wb = rocksdb_writebatch_create();
	if ((err = store_reseal_into(s, op->wb, op->new_key, op->new_kid))
	    != 0)
		goto fail;
	memcpy(op->old_key, s->mkey, sizeof(s->mkey));
	memcpy(op->old_kid, s->kid, sizeof(s->kid));
	memcpy(s->mkey, op->new_key, sizeof(s->mkey));
	memcpy(s->kid, op->new_kid, sizeof(s->kid));
	store_submit(s, op);
	return 0;

fail:
	store_op_free(op);
	return err;
}

/* ------------------------------------------------------------------ */
/* Writer thread                                                       */

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
static void
store_hist_clear(struct store *s)
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
	char			 from[STORE_HKEY_LEN], *rerr = NULL;
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
		h->rev[h->n++] = store_be64_get(k + 9);
	}
	rocksdb_iter_get_error(*it, &rerr);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		*err = CERTD_ERR_STORAGE;
	}
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

/*
 * One synced write batch for the ops chained from `batch`.  fail (a test
 * hook): build the batch, then fail as if the write had.
 */
static int
store_write_batch(struct store *s, struct store_op *batch, bool fail)
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
			    op->val, op->vallen);
			rocksdb_writebatch_put(wb, op->hkey, sizeof(op->hkey),
			    op->val, op->vallen);
			err = store_history_trim(s, wb, &it, op);
			if (op->oldakey != NULL)
				rocksdb_writebatch_delete(wb, op->oldakey,
				    op->oldakeylen);
			store_be64_put(idbuf, op->id);
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
		store_be64_put(lfrom + 1, s->disk_log_first);
		store_be64_put(lto + 1, cut + 1);
		rocksdb_writebatch_delete_range(wb, lfrom, sizeof(lfrom), lto,
		    sizeof(lto));
	}
	store_be64_put(nbuf, last->next_id);
	store_be64_put(rbuf, last->revision);
	rocksdb_writebatch_put(wb, KEY_NEXT_ID, strlen(KEY_NEXT_ID), nbuf, 8);
	rocksdb_writebatch_put(wb, KEY_REVISION, strlen(KEY_REVISION), rbuf, 8);
	if (it != NULL)
		rocksdb_iter_destroy(it);

	if (err == 0 && fail)
		err = CERTD_ERR_STORAGE;
	if (err == 0)
		rocksdb_write(s->db, s->wopts, wb, &rerr);
	store_wb_destroy(wb);
	if (rerr != NULL || err != 0) {
		/* what it noted of this batch is not on disk */
		store_hist_clear(s);
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

/*
 * Flush and compact everything, so that the values a re-seal replaced
 * (boxes of an old key, keys in clear) leave the WAL and the table files.
 * Best effort: a failure here loses nothing and shows at the next write.
 */
static void
store_purge(struct store *s)
{
	rocksdb_flushoptions_t		*fo;
	rocksdb_compactoptions_t	*co;
	char				*rerr = NULL;

	fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(s->db, fo, &rerr);
	rocksdb_flushoptions_destroy(fo);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		return;
	}
	co = rocksdb_compactoptions_create();
	rocksdb_compactoptions_set_bottommost_level_compaction(co,
	    STORE_COMPACT_FORCE);
	rocksdb_compact_range_opt(s->db, co, NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(co);
}

/* Step 3 of a rotation, also when retried.  Under filelock. */
static int
store_finish_rename(struct store *s)
{
	if (rename(s->mk_new_path, s->mk_path) != 0 && errno != ENOENT)
		return -1;
	return store_fsync_dir(s->mk_dir);
}

/*
 * A rotation: the steps of store_rekey in store.h.  Once the batch is
 * written the rotation has happened, whatever the rename does: a failed
 * rename is retried before the next write, and store_open would finish it;
 * op->why then says so.  The caller made sure that no earlier rotation's
 * rename is pending, so a .new here is a leftover of a rotation that
 * failed before its batch: not referenced by anything.
 */
static int
store_rekey_write(struct store *s, struct store_op *op, int crash)
{
	char	*rerr = NULL, step[STORE_WHY_LEN];
	int	 err = CERTD_ERR_STORAGE;

	pthread_mutex_lock(&s->filelock);
	if ((unlink(s->mk_new_path) != 0 && errno != ENOENT) ||
	    store_key_write(s->mk_new_path, s->mk_dir, op->new_key) != 0) {
		store_errf(op->why, STORE_WHY_LEN, "cannot write %s (as "
		    "%s.tmp, then linked): %s", s->mk_new_path, s->mk_new_path,
		    strerror(errno));
		goto out;
	}
	if (crash == 1)
		goto crash;
	rocksdb_write(s->db, s->wopts, op->wb, &rerr);
	if (rerr != NULL) {
		/* maybe durable after all: store_recover decides */
		store_errf(op->why, STORE_WHY_LEN, "cannot write the "
		    "database: %s", rerr);
		rocksdb_free(rerr);
		s->need_reopen = true;
		goto out;
	}
	memcpy(s->disk_kid, op->new_kid, sizeof(s->disk_kid));
	if (crash == 2)
		goto crash;
	err = 0;
	if (rename(s->mk_new_path, s->mk_path) != 0)
		goto pending;
	if (crash == 3)
		goto crash;
	if (store_fsync_dir(s->mk_dir) != 0)
		goto pending;
out:
	pthread_mutex_unlock(&s->filelock);
	if (err == 0)
		store_purge(s);
	return err;
pending:
	s->rename_pending = true;
	store_rekey_pending_why(s, step, errno);
	store_errf(op->why, STORE_WHY_LEN, "the new key is in force, but %s "
	    "(tried again before each write and at start-up)", step);
	goto out;
crash:
	s->dead = true;
	pthread_mutex_unlock(&s->filelock);
	return CERTD_ERR_STORAGE;
}

/*
 * Re-seal every history entry under the rotation's new key, into its
 * batch.  Runs in the writer, once every op before the rotation has
 * landed: the database then holds exactly the entries to re-seal, all
 * sealed under the key the rotation replaces.  An entry that does not
 * open under that key fails the rotation: never guess.
 */
static int
store_rekey_history(struct store *s, struct store_op *op)
{
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	struct record_sealed	 sk;
	struct cert_record	*rec;
	const char		*k, *v;
	char			*rerr = NULL;
	size_t			 klen, vlen;
	int			 err = 0;

	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(ro, 0);	/* read once */
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "h", 1); err == 0 && rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen == 0 || k[0] != 'h')
			break;
		v = rocksdb_iter_value(it, &vlen);
		if ((err = store_version_decode(k, klen, v, vlen, &rec, &sk))
		    != 0)
			break;
		if ((err = store_version_unseal(rec, &sk, op->old_key,
		    op->old_kid)) == 0)
			err = store_seal_put(op->wb, k, klen, rec, op->new_key,
			    op->new_kid);
		record_free(rec);
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return err != 0 ? CERTD_ERR_STORAGE : 0;
}

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
static bool
store_logs_fit(struct store *s, const char *what, char *errbuf,
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
 * Open the database into s->db; at start-up and when the writer reopens it
 * after a failed write.  NULL on failure, with RocksDB's reason in *rerr
 * (rocksdb_free it), or with *rerr NULL and the reason in errbuf when it
 * was not tried: opening replays the write-ahead logs into a table file
 * and writes a new log and manifest, and RocksDB 7.8 aborts the process
 * when such a write finds the disk full (see the top of this file), so it
 * is tried only when the logs fit with STORE_MIN_FREE to spare.
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

static rocksdb_t *
store_db_open(struct store *s, char **rerr, char *errbuf, size_t errlen)
{
	*rerr = NULL;
	if (!store_logs_fit(s, "opening the database", errbuf, errlen))
		return NULL;
	return store_db_open_masked(s, false, rerr);
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

	if (s->db != NULL && !store_logs_fit(s, "reopening", why, sizeof(why)))
		return CERTD_ERR_STORAGE;	/* retried */
	pthread_rwlock_wrlock(&s->dblock);
	if (s->db != NULL)
		rocksdb_close(s->db);
	s->db = store_db_open(s, &rerr, why, sizeof(why));
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
	if (store_be64_get((const char *)rev) != s->disk_rev ||
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
	/* a put writes its value twice: record and history */
	return size + 2 * op->vallen + op->lvallen + op->akeylen +
	    op->oldakeylen + 96;
}

/*
 * Can the rotation op start?  Not while the last one's step 3 is not done
 * (a rotation queued behind another one whose rename failed: its .new
 * holds the key in force, and a rotation overwrites .new; store_rekey
 * refused the other cases, and mounted key files).  Then room for it all:
 * the batch goes to the write-ahead log and a table file, and store_purge
 * rewrites every table file.  Writer only.
 */
static int
store_rekey_ready(struct store *s, struct store_op *op, int rename_errno)
{
	char			step[STORE_WHY_LEN];
	unsigned long long	avail = 0;
	uint64_t		tables = 0;
	size_t			need;

	if (s->rename_pending) {
		store_rekey_pending_why(s, step, rename_errno);
		store_errf(op->why, STORE_WHY_LEN, "the last rotation is not "
		    "finished: %s", step);
		return CERTD_ERR_STORAGE;
	}
	(void)rocksdb_property_int(s->db, "rocksdb.live-sst-files-size",
	    &tables);
	need = 3 * store_op_bytes(op) + (size_t)tables;
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
store_write_ops(struct store *s, struct store_op *batch, bool fail,
    int crash)
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
	if (fail && batch->rekey) {
		s->need_reopen = true;
		return CERTD_ERR_STORAGE;
	}
	if (s->rename_pending) {
		pthread_mutex_lock(&s->filelock);
		if (s->rename_pending && store_finish_rename(s) == 0)
			s->rename_pending = false;
		rename_errno = errno;
		pthread_mutex_unlock(&s->filelock);
	}
	if (batch->rekey) {
		/* the history joins the rotation's batch: room for it too */
		if ((err = store_rekey_history(s, batch)) != 0) {
			store_errf(batch->why, STORE_WHY_LEN, "cannot seal "
			    "the history again: an entry does not open under "
			    "the key in force, or the database cannot be read");
			return err;
		}
		if ((err = store_rekey_ready(s, batch, rename_errno)) != 0)
			return err;
		return store_rekey_write(s, batch, crash);
	}
	if ((err = store_write_batch(s, batch, fail)) != 0)
		s->need_reopen = true;
	return err;
}

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

static void *
store_writer(void *arg)
{
	struct store	*s = arg;
	struct store_op	*batch, *last, *op;
	struct timespec	 t0, t1;
	uint64_t	 one = 1;
	size_t		 nops;
	bool		 fail;
	int		 err, crash;

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
		if ((fail = s->fail_writes > 0))
			s->fail_writes--;
		crash = 0;
		if (batch->rekey) {
			crash = s->crash_step;
			s->crash_step = 0;
		}
		pthread_mutex_unlock(&s->lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		err = store_write_ops(s, batch, fail, crash);
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

		if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			store_bug("eventfd write failed");
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Completion on the loop                                              */

/* A rotation's callback, with its reason at hand (store_rekey_why). */
static void
store_rekey_done(struct store *s, struct store_op *op, int err)
{
	s->rekey_why = op->why[0] != '\0' ? op->why : NULL;
	if (op->cb != NULL)
		op->cb(err, NULL, op->arg);
	s->rekey_why = NULL;
	store_op_free(op);
}

const char *
store_rekey_why(const struct store *s)
{
	return s->rekey_why;
}

/* Move a committed op into the committed view and run its callbacks. */
static void
store_apply(struct store *s, struct store_op *op)
{
	struct store_change	 ch;
	struct store_team	*t;
	struct store_alias	*e;
	struct cert_record	*rec = NULL, *old = NULL;
	size_t			 pos;

	if (s->pend_head != op)
		store_bug("completion out of order");
	store_pending_remove(s, op);

	if (op->rekey) {
		store_rekey_done(s, op, 0);
		return;
	}
	if (op->kind == STORE_PUT) {
		t = op->tm;
		rec = op->rec;
		op->rec = NULL;
		if (store_team_search(t, rec->id, &pos)) {
			old = t->recs[pos];
			t->recs[pos] = rec;
			e = store_alias_unlink(s, old->team, old->alias);
			store_alias_link(s, e, rec);
		} else {
			if (t->n >= t->cap)
				store_bug("no room reserved for a create");
			memmove(&t->recs[pos + 1], &t->recs[pos],
			    (t->n - pos) * sizeof(*t->recs));
			t->recs[pos] = rec;
			t->n++;
			s->count++;
			store_alias_link(s, op->ent, rec);
			op->ent = NULL;
		}
	} else {
		if ((t = store_team_find(s, op->team)) == NULL ||
		    !store_team_search(t, op->id, &pos))
			store_bug("deleting a record that is not committed");
		old = t->recs[pos];
		memmove(&t->recs[pos], &t->recs[pos + 1],
		    (t->n - pos - 1) * sizeof(*t->recs));
		t->n--;
		s->count--;
		free(store_alias_unlink(s, old->team, old->alias));
	}
	s->rev = op->revision;

	ch.kind = op->kind;
	ch.revision = op->revision;
	ch.old = old;
	ch.rec = rec;
	if (s->change_cb != NULL)
		s->change_cb(&ch, s->change_arg);
	if (op->cb != NULL)
		op->cb(0, op->kind == STORE_PUT ? rec : old, op->arg);
	record_free(old);
	store_op_free(op);
}

/*
 * `first` and the ops chained after it failed to write.  Fail them and
 * everything still queued, take them out of the head view, and only then
 * let the writer go on and run the completions (which may submit anew).
 */
static void
store_fail(struct store *s, struct store_op *first)
{
	struct store_op	*op, *next, *q;

	pthread_mutex_lock(&s->lock);
	q = s->queue_head;
	s->queue_head = s->queue_tail = NULL;
	pthread_mutex_unlock(&s->lock);

	for (op = first; op->qnext != NULL; op = op->qnext)
		;
	op->qnext = q;
	for (op = first; op != NULL; op = op->qnext) {
		if (s->pend_head != op)
			store_bug("failure out of order");
		store_pending_remove(s, op);
	}
	/* the first failed rotation knows the key before all of them */
	for (op = first; op != NULL; op = op->qnext)
		if (op->rekey) {
			memcpy(s->mkey, op->old_key, sizeof(s->mkey));
			memcpy(s->kid, op->old_kid, sizeof(s->kid));
			break;
		}

	pthread_mutex_lock(&s->lock);
	s->paused = false;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);

	for (op = first; op != NULL; op = next) {
		next = op->qnext;
		if (op->rekey)
			store_rekey_done(s, op, CERTD_ERR_STORAGE);
		else {
			if (op->cb != NULL)
				op->cb(CERTD_ERR_STORAGE, NULL, op->arg);
			store_op_free(op);
		}
	}
}

static void
store_complete(struct store *s)
{
	struct store_op	*op, *next;

	pthread_mutex_lock(&s->lock);
	op = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);

	for (; op != NULL; op = next) {
		next = op->qnext;
		if (op->err != 0) {
			store_fail(s, op);	/* the rest failed too */
			return;
		}
		store_apply(s, op);
	}
}

static void
store_on_event(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		store_bug("eventfd read failed");
	store_complete(arg);
}

/* Wait for the writer and complete every pending op, here and now. */
static void
store_drain(struct store *s)
{
	while (s->pend_head != NULL) {
		pthread_mutex_lock(&s->lock);
		while (s->done_head == NULL)
			pthread_cond_wait(&s->done_cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
		store_complete(s);
	}
}

/* ------------------------------------------------------------------ */
/* Reading the change log                                              */

/*
 * A bounds-checked cursor over one change-log entry.  The entry is ours
 * (store_log_encode), so only what that writes is accepted: a map with str
 * keys, uint and str values.  Nothing is allocated.
 */
struct store_cur {
	const unsigned char	*p;
	size_t			 len;
	size_t			 pos;
};

/* Read a big-endian unsigned of n bytes (1, 2, 4 or 8). */
static int
store_cur_be(struct store_cur *c, size_t n, uint64_t *v)
{
	size_t	i;

	if (n > c->len - c->pos)
		return CERTD_ERR_STORAGE;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = (*v << 8) | c->p[c->pos++];
	return 0;
}

static int
store_cur_byte(struct store_cur *c, unsigned char *b)
{
	if (c->pos >= c->len)
		return CERTD_ERR_STORAGE;
	*b = c->p[c->pos++];
	return 0;
}

static int
store_cur_map(struct store_cur *c, uint64_t *n)
{
	unsigned char	b;
	int		err;

	if ((err = store_cur_byte(c, &b)) != 0)
		return err;
	if (b >= 0x80 && b <= 0x8f) {
		*n = b & 0x0f;
		return 0;
	}
	if (b == 0xde)
		return store_cur_be(c, 2, n);
	if (b == 0xdf)
		return store_cur_be(c, 4, n);
	return CERTD_ERR_STORAGE;
}

/* A str: *ptr points into the entry, *len bytes, not NUL-terminated. */
static int
store_cur_str(struct store_cur *c, const char **ptr, size_t *len)
{
	unsigned char	b;
	uint64_t	n;
	int		err;

	if ((err = store_cur_byte(c, &b)) != 0)
		return err;
	if (b >= 0xa0 && b <= 0xbf)
		n = b & 0x1f;
	else if (b == 0xd9 || b == 0xda || b == 0xdb) {
		if ((err = store_cur_be(c, (size_t)1 << (b - 0xd9), &n)) != 0)
			return err;
	} else
		return CERTD_ERR_STORAGE;
	if (n > c->len - c->pos)
		return CERTD_ERR_STORAGE;
	*ptr = (const char *)c->p + c->pos;
	*len = (size_t)n;
	c->pos += (size_t)n;
	return 0;
}

static int
store_cur_uint(struct store_cur *c, uint64_t *v)
{
	unsigned char	b;
	int		err;

	if ((err = store_cur_byte(c, &b)) != 0)
		return err;
	if (b <= 0x7f) {
		*v = b;
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf)
		return store_cur_be(c, (size_t)1 << (b - 0xcc), v);
	return CERTD_ERR_STORAGE;
}

static bool
store_str_is(const char *p, size_t len, const char *what)
{
	return len == strlen(what) && memcmp(p, what, len) == 0;
}

/* A str of 1..max bytes without NUL, copied into buf[max + 1]. */
static int
store_cur_name(struct store_cur *c, char *buf, size_t max)
{
	const char	*p;
	size_t		 len;
	int		 err;

	if ((err = store_cur_str(c, &p, &len)) != 0)
		return err;
	if (len == 0 || len > max || memchr(p, '\0', len) != NULL)
		return CERTD_ERR_STORAGE;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

/*
 * Decode the entry of revision `rev` into *e; team and alias are copied
 * into the caller's buffers, which e then points at.
 */
static int
store_log_decode(const char *buf, size_t len, uint64_t rev,
    struct store_log_entry *e, char team[STORE_LOG_TEAM_BYTES + 1],
    char alias[STORE_LOG_ALIAS_BYTES + 1])
{
	struct store_cur	 c = { (const unsigned char *)buf, len, 0 };
	const char		*k, *v;
	size_t			 klen, vlen;
	uint64_t		 n, i, u;
	unsigned		 seen = 0, bit;
	int			 err;

	if ((err = store_cur_map(&c, &n)) != 0)
		return err;
	for (i = 0; i < n; i++) {
		if ((err = store_cur_str(&c, &k, &klen)) != 0)
			return err;
		if (store_str_is(k, klen, "op")) {
			bit = 1 << 0;
			if ((err = store_cur_str(&c, &v, &vlen)) != 0)
				return err;
			if (store_str_is(v, vlen, "put"))
				e->kind = STORE_PUT;
			else if (store_str_is(v, vlen, "delete"))
				e->kind = STORE_DELETE;
			else
				return CERTD_ERR_STORAGE;
		} else if (store_str_is(k, klen, "rev")) {
			bit = 1 << 1;
			if ((err = store_cur_uint(&c, &u)) != 0)
				return err;
			if (u != rev)
				return CERTD_ERR_STORAGE;
		} else if (store_str_is(k, klen, "id")) {
			bit = 1 << 2;
			if ((err = store_cur_uint(&c, &e->id)) != 0)
				return err;
			if (e->id == 0)
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
	if (seen != (1 << 5) - 1 || c.pos != c.len)
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
	char			 from[9], to[9], *rerr = NULL;
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
	/* never wait: the writer may be reopening after a failure */
	if (pthread_rwlock_tryrdlock(&s->dblock) != 0)
		return CERTD_ERR_STORAGE;
	if (s->db == NULL) {
		pthread_rwlock_unlock(&s->dblock);
		return CERTD_ERR_STORAGE;
	}
	from[0] = to[0] = 'l';
	store_be64_put(from + 1, since + 1);
	store_be64_put(to + 1, last + 1);	/* never near UINT64_MAX */
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
		if ((rev = store_be64_get(k + 1)) > last)
			break;
		v = rocksdb_iter_value(it, &vlen);
		if ((err = store_log_decode(v, vlen, rev, &e, team, alias))
		    != 0)
			break;
		if (cb(&e, arg) != 0)
			break;
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	pthread_rwlock_unlock(&s->dblock);
	return err;
}

/* ------------------------------------------------------------------ */
/* Reading the history                                                 */

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
	for (op = s->pend_head; op != NULL; op = op->next)
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
	char			 hkey[STORE_HKEY_LEN], *rerr = NULL;
	size_t			 klen, vlen, n = 0;
	bool			 stop;
	int			 err = 0;

	if (store_get(s, team, id) == NULL)
		return CERTD_ERR_NOT_FOUND;
	/* never wait: the writer may be reopening after a failure */
	if (pthread_rwlock_tryrdlock(&s->dblock) != 0)
		return CERTD_ERR_STORAGE;
	if (s->db == NULL) {
		pthread_rwlock_unlock(&s->dblock);
		return CERTD_ERR_STORAGE;
	}
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
		if ((err = store_version_decode(k, klen, v, vlen, &rec, &sk))
		    != 0)
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
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	pthread_rwlock_unlock(&s->dblock);
	/*
	 * The current version is always kept: none at all means the
	 * certificate's delete (a range deletion of its versions) is on disk
	 * and not applied here yet.  It is as good as gone.
	 */
	return err == 0 && n == 0 ? CERTD_ERR_NOT_FOUND : err;
}

int
store_history_get(struct store *s, const char *team, uint64_t id,
    uint64_t revision, struct cert_record **out)
{
	rocksdb_readoptions_t	*ro;
	struct record_sealed	 sk;
	struct cert_record	*rec = NULL;
	char			 hkey[STORE_HKEY_LEN], *val, *rerr = NULL;
	size_t			 vlen;
	int			 err;

	*out = NULL;
	if (revision == 0 || revision > s->rev)
		return CERTD_ERR_NOT_FOUND;
	if (pthread_rwlock_tryrdlock(&s->dblock) != 0)
		return CERTD_ERR_STORAGE;
	if (s->db == NULL) {
		pthread_rwlock_unlock(&s->dblock);
		return CERTD_ERR_STORAGE;
	}
	store_hkey(hkey, id, revision);
	ro = rocksdb_readoptions_create();
	val = rocksdb_get(s->db, ro, hkey, sizeof(hkey), &vlen, &rerr);
	rocksdb_readoptions_destroy(ro);
	pthread_rwlock_unlock(&s->dblock);
	if (rerr != NULL) {
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (val == NULL)
		return CERTD_ERR_NOT_FOUND;
	err = store_version_decode(hkey, sizeof(hkey), val, vlen, &rec, &sk);
	rocksdb_free(val);	/* sealed: nothing to wipe */
	if (err != 0)
		return err == CERTD_ERR_NOMEM ? err : CERTD_ERR_STORAGE;
	if (strcmp(rec->team, team) != 0) {
		record_sealed_clear(&sk);
		record_free(rec);
		return CERTD_ERR_NOT_FOUND;
	}
	if ((err = store_version_unseal(rec, &sk,
	    store_key_for(s, sk.key_id), sk.key_id)) != 0) {
		record_free(rec);
		return err;
	}
	*out = rec;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Open and load                                                       */

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
	*v = store_be64_get(val);
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
	rocksdb_iter_get_error(it, &rerr);
	rocksdb_iter_destroy(it);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read database: %s", rerr);
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (!empty) {
		store_errf(errbuf, errlen, "not a certd database (no %s)",
		    KEY_SCHEMA);
		return CERTD_ERR_STORAGE;
	}
	store_be64_put(buf, STORE_SCHEMA);
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

/* Load every "r" record into the committed view. */
static int
store_load_records(struct store *s, const rocksdb_readoptions_t *ro,
    uint64_t *max_id, uint64_t *max_rev, size_t *n_clear, char *errbuf,
    size_t errlen)
{
	rocksdb_iterator_t	*it;
	struct record_sealed	 sk;
	struct cert_record	*rec = NULL;
	struct store_team	*t;
	struct store_alias	*e;
	const struct cert_record *other;
	const char		*k, *v;
	char			*rerr = NULL;
	size_t			 klen, vlen;
	uint64_t		 id;
	int			 err = CERTD_ERR_STORAGE;

	*max_id = *max_rev = 0;
	*n_clear = 0;
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "r", 1); rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen == 0 || k[0] != 'r')
			break;
		if (klen != 9) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "record key of %zu bytes", klen);
			goto out;
		}
		id = store_be64_get(k + 1);
		v = rocksdb_iter_value(it, &vlen);
		if ((err = record_decode(v, vlen, &rec, &sk)) != 0) {
			store_errf(errbuf, errlen, err == CERTD_ERR_NOMEM ?
			    "out of memory loading record %llu" :
			    "database is corrupt: record %llu does not decode",
			    (unsigned long long)id);
			goto out;
		}
		if (sk.box == NULL)
			(*n_clear)++;	/* schema 1: sealed after load */
		else if (memcmp(sk.key_id, s->kid, sizeof(s->kid)) != 0 ||
		    (err = record_unseal(rec, &sk, s->mkey)) != 0) {
			record_sealed_clear(&sk);
			if (err == CERTD_ERR_NOMEM)
				store_errf(errbuf, errlen, "out of memory "
				    "loading record %llu",
				    (unsigned long long)id);
			else
				store_errf(errbuf, errlen, "master key %s does "
				    "not decrypt record %llu", s->mk_path,
				    (unsigned long long)id);
			err = err == CERTD_ERR_NOMEM ? err : CERTD_ERR_STORAGE;
			goto out;
		}
		record_sealed_clear(&sk);
		err = CERTD_ERR_STORAGE;
		if (rec->id != id) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "record %llu holds id %llu", (unsigned long long)id,
			    (unsigned long long)rec->id);
			goto out;
		}
		if ((other = store_get_alias(s, rec->team, rec->alias))
		    != NULL) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "records %llu and %llu share one alias in team %s",
			    (unsigned long long)other->id,
			    (unsigned long long)id, rec->team);
			goto out;
		}
		err = CERTD_ERR_NOMEM;
		if ((t = store_team_get(s, rec->team)) == NULL ||
		    store_team_grow(t) != 0 ||
		    (e = calloc(1, sizeof(*e))) == NULL) {
			store_errf(errbuf, errlen, "out of memory loading "
			    "records");
			goto out;
		}
		/* keys are sorted, so ids arrive in increasing order */
		t->recs[t->n++] = rec;
		s->count++;
		store_alias_link(s, e, rec);
		if (id > *max_id)
			*max_id = id;
		if (rec->revision > *max_rev)
			*max_rev = rec->revision;
		rec = NULL;
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read database: %s", rerr);
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
		goto out;
	}
	err = 0;
out:
	record_free(rec);
	rocksdb_iter_destroy(it);
	return err;
}

/* Every alias index entry names a loaded record, and vice versa. */
static int
store_check_aliases(struct store *s, const rocksdb_readoptions_t *ro,
    char *errbuf, size_t errlen)
{
	rocksdb_iterator_t		*it;
	const struct cert_record	*rec;
	const char			*k, *v, *alias;
	char				*copy = NULL, *rerr = NULL;
	size_t				 klen, vlen, n = 0;
	int				 err = CERTD_ERR_STORAGE;

	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "a", 1); rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen == 0 || k[0] != 'a')
			break;
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
		rec = store_get_alias(s, copy + 1, alias);
		if (rec == NULL || rec->id != store_be64_get(v)) {
			store_errf(errbuf, errlen, "database is corrupt: "
			    "alias index entry for id %llu in team %s does not "
			    "match the records",
			    (unsigned long long)store_be64_get(v), copy + 1);
			goto out;
		}
		n++;
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read database: %s", rerr);
		rocksdb_free(rerr);
		goto out;
	}
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
	char			*rerr = NULL;
	size_t			 klen;
	int			 err = 0;

	s->log_first = s->rev + 1;
	it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek(it, "l", 1);
	if (rocksdb_iter_valid(it)) {
		k = rocksdb_iter_key(it, &klen);
		if (klen > 0 && k[0] == 'l') {
			if (klen != 9 || store_be64_get(k + 1) == 0 ||
			    store_be64_get(k + 1) > s->rev) {
				store_errf(errbuf, errlen, "database is "
				    "corrupt: malformed change-log key");
				err = CERTD_ERR_STORAGE;
			} else
				s->log_first = store_be64_get(k + 1);
		}
	}
	rocksdb_iter_get_error(it, &rerr);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read database: %s", rerr);
		rocksdb_free(rerr);
		err = CERTD_ERR_STORAGE;
	}
	rocksdb_iter_destroy(it);
	return err;
}

/* Does the database hold any record? */
static int
store_has_records(struct store *s, const rocksdb_readoptions_t *ro,
    bool *any, char *errbuf, size_t errlen)
{
	rocksdb_iterator_t	*it;
	const char		*k;
	char			*rerr = NULL;
	size_t			 klen;

	it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek(it, "r", 1);
	*any = rocksdb_iter_valid(it) &&
	    (k = rocksdb_iter_key(it, &klen)) != NULL && klen > 0 &&
	    k[0] == 'r';
	rocksdb_iter_get_error(it, &rerr);
	rocksdb_iter_destroy(it);
	if (rerr != NULL) {
		store_errf(errbuf, errlen, "cannot read database: %s", rerr);
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/*
 * A rotation left <key>.new behind.  Its batch (step 2) is the commit
 * point and wrote "m:kid": if that names the new key, the rotation
 * happened and only the rename is missing; otherwise it never happened
 * (the crash came before or during the batch) and the file goes.  A .new
 * that is not a 32-byte file was torn while being written, before the
 * batch.  An error reading it stops start-up: never guess then.
 */
static int
store_key_recover(struct store *s, bool have_kid, const unsigned char *dbkid,
    char *errbuf, size_t errlen)
{
	unsigned char	key[CERT_SEAL_KEY_LEN], kid[RECORD_KEY_ID_LEN];
	bool		bad, committed = false;
	int		err;

	err = store_key_read(s->mk_new_path, false, key, &bad, errbuf, errlen);
	if (err == CERTD_ERR_NOT_FOUND)
		return 0;
	if (err != 0 && !bad)
		return err;
	if (err == 0 && have_kid && store_kid(key, kid) == 0 &&
	    memcmp(kid, dbkid, sizeof(kid)) == 0)
		committed = true;
	cert_wipe(key, sizeof(key));
	if (committed ? rename(s->mk_new_path, s->mk_path) != 0 :
	    unlink(s->mk_new_path) != 0) {
		store_errf(errbuf, errlen, "cannot %s interrupted master key "
		    "rotation (%s): %s", committed ? "finish" : "undo",
		    s->mk_new_path, strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	if (store_fsync_dir(s->mk_dir) != 0) {
		store_errf(errbuf, errlen, "cannot sync %s: %s", s->mk_dir,
		    strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	return 0;
}

/*
 * Load the master key, or create it: when it is missing and no record is
 * sealed under a known key (a new store, an empty one, or one that only
 * holds schema 1 records).
 */
static int
store_key_setup(struct store *s, const rocksdb_readoptions_t *ro,
    bool have_kid, bool *created, char *errbuf, size_t errlen)
{
	bool	bad, any;
	int	err;

	*created = false;
	err = store_key_read(s->mk_path, true, s->mkey, &bad, errbuf, errlen);
	if (err == 0)
		return store_kid(s->mkey, s->kid);
	if (err != CERTD_ERR_NOT_FOUND)
		return err;
	if ((err = store_has_records(s, ro, &any, errbuf, errlen)) != 0)
		return err;
	if (have_kid && any) {
		store_errf(errbuf, errlen, "master key %s is missing",
		    s->mk_path);
		return CERTD_ERR_STORAGE;
	}
	if ((err = cert_random(s->mkey, sizeof(s->mkey))) != 0 ||
	    (err = store_kid(s->mkey, s->kid)) != 0) {
		store_errf(errbuf, errlen, "cannot make a master key");
		return err;
	}
	if (store_key_write(s->mk_path, s->mk_dir, s->mkey) != 0) {
		struct stat	st;

		if (errno == EEXIST && lstat(s->mk_path, &st) == 0 &&
		    S_ISLNK(st.st_mode))
			store_errf(errbuf, errlen, "master key %s is a symbolic "
			    "link to nothing", s->mk_path);
		else
			store_errf(errbuf, errlen, "cannot create master key "
			    "%s (as %s.tmp, then linked): %s", s->mk_path,
			    s->mk_path, strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	*created = true;
	return 0;
}

/*
 * Write every loaded record's current version as its history: a database
 * older than schema 3 has none.
 */
static int
store_seed_history(struct store *s, rocksdb_writebatch_t *wb)
{
	const struct store_team	*t;
	char			 hkey[STORE_HKEY_LEN];
	size_t			 i, j;
	int			 err;

	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			for (j = 0; j < t->n; j++) {
				store_hkey(hkey, t->recs[j]->id,
				    t->recs[j]->revision);
				if ((err = store_seal_put(wb, hkey,
				    sizeof(hkey), t->recs[j], s->mkey, s->kid))
				    != 0)
					return err;
			}
	return 0;
}

/*
 * Record the master key's id and the schema, seal schema 1 records, and
 * seed the history of an older database, in one synced batch; then
 * compact away the files that held keys in clear.
 */
static int
store_key_commit(struct store *s, bool reseal, bool seed, char *errbuf,
    size_t errlen)
{
	rocksdb_writebatch_t	*wb;
	char			 schema[8], *rerr = NULL;
	int			 err = 0;

	wb = rocksdb_writebatch_create();
	if (reseal)
		err = store_reseal_into(s, wb, s->mkey, s->kid);
	else
		rocksdb_writebatch_put(wb, KEY_KID, strlen(KEY_KID),
		    (const char *)s->kid, sizeof(s->kid));
	if (err == 0 && seed)
		err = store_seed_history(s, wb);
	store_be64_put(schema, STORE_SCHEMA);
	rocksdb_writebatch_put(wb, KEY_SCHEMA, strlen(KEY_SCHEMA), schema,
	    sizeof(schema));
	if (err == 0)
		rocksdb_write(s->db, s->wopts, wb, &rerr);
	store_wb_destroy(wb);
	if (err != 0 || rerr != NULL) {
		store_errf(errbuf, errlen, "cannot seal the records: %s",
		    rerr != NULL ? rerr : "out of memory");
		rocksdb_free(rerr);
		return CERTD_ERR_STORAGE;
	}
	if (reseal)
		store_purge(s);
	return 0;
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
		s->epoch = store_be64_get(val) & STORE_EPOCH_MASK;
	} while (s->epoch == 0);
	store_be64_put(val, s->epoch);
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

static int
store_load(struct store *s, char *errbuf, size_t errlen)
{
	rocksdb_readoptions_t	*ro;
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
	store_be64_put((char *)dbkid, v);
	if ((err = store_key_recover(s, have_kid, dbkid, errbuf, errlen))
	    != 0 ||
	    (err = store_key_setup(s, ro, have_kid, &created, errbuf, errlen))
	    != 0 ||
	    (err = store_load_records(s, ro, &max_id, &max_rev, &n_clear,
	    errbuf, errlen)) != 0 ||
	    (err = store_check_aliases(s, ro, errbuf, errlen)) != 0)
		goto out;
	if (have_kid && !created &&
	    memcmp(dbkid, s->kid, sizeof(dbkid)) != 0) {
		/* no sealed record to say so: the database's id does */
		store_hex(s->kid, sizeof(s->kid), a);
		store_hex(dbkid, sizeof(dbkid), b);
		store_errf(errbuf, errlen, "master key %s is not the key of "
		    "this store (key id %s, the store's is %s)", s->mk_path, a,
		    b);
		err = CERTD_ERR_STORAGE;
		goto out;
	}
	if ((!have_kid || created || n_clear > 0 || old) &&
	    (err = store_key_commit(s, n_clear > 0, old, errbuf, errlen)) != 0)
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
	rocksdb_readoptions_destroy(ro);
	return err;
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
	    store_mark(s->db_path, STORE_RECOVER_MARK, "certd: recovered "
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
	s->log_retain = STORE_LOG_RETAIN_DEFAULT;
	s->hist_keep = STORE_HISTORY_KEEP_DEFAULT;
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

	s->cache = rocksdb_cache_create_lru(STORE_CACHE_BYTES);
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

	if (store_wal_check(s, dir, sopts != NULL ? sopts->recover :
	    STORE_RECOVER_NONE, kept, sizeof(kept), errbuf, errlen) != 0)
		goto out;
	if ((s->db = store_db_open(s, &rerr, errbuf, errlen)) == NULL &&
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
	struct store_alias	*e, *enext;
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
	store_hist_clear(s);
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->efd >= 0)
		close(s->efd);
	if (s->db != NULL)
		rocksdb_close(s->db);
	if (s->wopts != NULL)
		rocksdb_writeoptions_destroy(s->wopts);
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
				record_free(t->recs[j]);
			free(t->recs);
			free(t->name);
			free(t);
		}
	free(s->teams);
	for (i = 0; s->aliases != NULL && i < s->aliases_cap; i++)
		for (e = s->aliases[i]; e != NULL; e = enext) {
			enext = e->hnext;
			free(e);
		}
	free(s->aliases);
	cert_wipe(s->mkey, sizeof(s->mkey));
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

/* ------------------------------------------------------------------ */
/* Backup                                                              */

/*
 * Mark the database in db (file `name`, saying `text`) so that the store
 * opened there next makes a new epoch, see store_epoch_setup.  A mark
 * already there (a recovery that a crash interrupted) is kept.  RocksDB
 * leaves files of names it does not use alone.
 */
static int
store_mark(const char *db, const char *name, const char *text,
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
 * Remove a directory that a backup made and filled with files (a
 * checkpoint, or its staging directory), never following a link.
 */
static void
store_backup_undo(const char *path)
{
	struct dirent	*e;
	DIR		*d;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		(void)close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	(void)rmdir(path);
}

/*
 * The master key file, for a backup: it must hold the key the database is
 * sealed under (a file replaced while certd runs would make a backup that
 * no certd can open).  Under filelock.
 */
static int
store_backup_key(struct store *s, unsigned char *key, char *errbuf,
    size_t errlen)
{
	unsigned char	kid[RECORD_KEY_ID_LEN];
	bool		bad;

	if (store_key_read(s->mk_path, true, key, &bad, errbuf, errlen) != 0)
		return -1;
	if (store_kid(key, kid) != 0 ||
	    memcmp(kid, s->disk_kid, sizeof(kid)) != 0) {
		cert_wipe(key, CERT_SEAL_KEY_LEN);
		store_errf(errbuf, errlen, "master key %s is not the key the "
		    "database is sealed under (was it replaced while certd "
		    "runs?)", s->mk_path);
		return -1;
	}
	return 0;
}

/*
 * The backup directory dir, made if missing: no one but root and certd may
 * change it (everything after works by name in it), and it holds no backup
 * yet (db and kp, its would-be db and key, absent).  0, or the error with
 * its reason.
 */
static int
store_backup_target(const char *dir, const char *db, const char *kp,
    char *errbuf, size_t errlen)
{
	struct stat	st;
	int		fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		store_errf(errbuf, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	if ((fd = perm_openat(AT_FDCWD, dir, dir, "backup directory",
	    O_RDONLY | O_DIRECTORY, 0, STORE_BACKUP_DIR_PERM, errbuf, errlen))
	    < 0)
		return CERTD_ERR_STORAGE;
	(void)close(fd);
	if (lstat(db, &st) == 0 || lstat(kp, &st) == 0) {
		store_errf(errbuf, errlen, "backup directory %s already holds "
		    "a backup (%s)", dir, lstat(db, &st) == 0 ? "db" :
		    STORE_MASTER_KEY_FILE);
		return CERTD_ERR_BACKUP_EXISTS;
	}
	return 0;
}

int
store_backup(struct store *s, const char *dir, char *errbuf, size_t errlen)
{
	rocksdb_checkpoint_t	*cp;
	unsigned char		 key[CERT_SEAL_KEY_LEN];
	char			*db, *stage = NULL, *part = NULL, *kp;
	char			*rerr = NULL;
	bool			 made, renamed = false;
	int			 err = CERTD_ERR_STORAGE;

	db = store_path(dir, "/", "db");
	kp = store_path(dir, "/", STORE_MASTER_KEY_FILE);
	if (db == NULL || kp == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		err = CERTD_ERR_NOMEM;
		goto out;
	}
	if ((err = store_backup_target(dir, db, kp, errbuf, errlen)) != 0)
		goto out;
	err = CERTD_ERR_STORAGE;
	/*
	 * The checkpoint is made in a fresh directory of our own (nothing in
	 * it is anyone else's to plant or lose) and becomes dir/db only once
	 * marked: a crash before leaves dir/.certd-backup-*, never an
	 * unmarked db with this store's epoch.
	 */
	if ((stage = store_path(dir, "/", ".certd-backup-XXXXXX")) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		err = CERTD_ERR_NOMEM;
		goto out;
	}
	if (mkdtemp(stage) == NULL) {		/* fills in the XXXXXX */
		store_errf(errbuf, errlen, "cannot create a directory in %s: "
		    "%s", dir, strerror(errno));
		free(stage);
		stage = NULL;
		goto out;
	}
	if ((part = store_path(stage, "/", "db")) == NULL) {
		store_errf(errbuf, errlen, "out of memory");
		err = CERTD_ERR_NOMEM;
		goto out;
	}

	pthread_mutex_lock(&s->filelock);
	pthread_rwlock_rdlock(&s->dblock);
	if (s->rename_pending && store_finish_rename(s) == 0)
		s->rename_pending = false;
	if (s->rename_pending)
		store_errf(errbuf, errlen, "a master key rotation is not "
		    "finished (%s)", s->mk_new_path);
	else if (s->db == NULL)
		store_errf(errbuf, errlen, "the database is not open after a "
		    "storage failure");
	else if (store_logs_fit(s, "a backup", errbuf, errlen) &&
	    store_backup_key(s, key, errbuf, errlen) == 0) {
		cp = rocksdb_checkpoint_object_create(s->db, &rerr);
		if (rerr == NULL)
			rocksdb_checkpoint_create(cp, part, 0, &rerr);
		if (cp != NULL)
			rocksdb_checkpoint_object_destroy(cp);
		made = rerr == NULL;
		if (!made) {
			store_errf(errbuf, errlen, "cannot make a checkpoint "
			    "in %s: %s", part, rerr);
			rocksdb_free(rerr);
		} else if (s->fail_backup) {
			s->fail_backup = false;
			store_errf(errbuf, errlen, "test: the backup fails "
			    "after its checkpoint");
		} else if (store_mark(part, STORE_COPY_MARK, "certd: this "
		    "database is a backup; the store opened here makes a new "
		    "epoch\n", errbuf, errlen) != 0)
			;	/* errbuf says why */
		else if (rename(part, db) != 0)
			store_errf(errbuf, errlen, "cannot rename %s to %s: %s",
			    part, db, strerror(errno));
		else {
			renamed = true;
			if (store_fsync_dir(dir) != 0)
				store_errf(errbuf, errlen, "cannot sync %s: %s",
				    dir, strerror(errno));
			else if (store_key_write(kp, dir, key) != 0)
				store_errf(errbuf, errlen, "cannot write %s (as "
				    "%s.tmp, then linked): %s", kp, kp,
				    strerror(errno));
			else
				err = 0;
		}
		if (made && err != 0) {
			/* no half backup: a retry into dir finds it empty */
			(void)unlink(kp);
			store_backup_undo(renamed ? db : part);
		}
		cert_wipe(key, sizeof(key));
	}
	pthread_rwlock_unlock(&s->dblock);
	pthread_mutex_unlock(&s->filelock);
out:
	if (stage != NULL)
		store_backup_undo(stage);	/* empty by now: removed */
	free(stage);
	free(part);
	free(db);
	free(kp);
	return err;
}
