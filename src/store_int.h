/* SPDX-License-Identifier: MIT */
/*
 * What the store's files share (store.c lists them): the store itself with
 * its invariants, its ops and the entries of its memory view, the on-disk
 * keys, a few small encoders, and the functions one file calls in another.
 * Private to src/store*.c: store.h is the store's interface.
 *
 * On-disk keys (schema 4):
 *   "r" id(8, big-endian)          -> index entry (store_index_value)
 *   "a" team "\0" alias            -> id(8)
 *   "h" id(8) revision(8)          -> a version of the record (record_encode);
 *                                     the current one is "h" id rev, where
 *                                     rev is the index entry's revision
 *   "l" revision(8)                -> change-log entry (msgpack map)
 *   "m:next_id", "m:revision"      -> counters (8)
 *   "m:schema"                     -> STORE_SCHEMA (8)
 *   "m:kid"                        -> id of the master key (8)
 */
#ifndef CERTD_STORE_INT_H
#define CERTD_STORE_INT_H

#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>
#include <rocksdb/c.h>

#include "cert.h"
#include "record.h"
#include "store.h"
#include "store_test.h"
#include "util.h"
#include "wal.h"

#define STORE_HKEY_LEN		17	/* "h" id(8) revision(8) */

#define KEY_NEXT_ID	"m:next_id"
#define KEY_REVISION	"m:revision"
#define KEY_SCHEMA	"m:schema"
#define KEY_KID		"m:kid"
#define KEY_EPOCH	"m:epoch"
/* In a backup's db directory: the store opened there is a copy. */
#define STORE_COPY_MARK	"CERTD-BACKUP"
/* In a db directory a recovery replays point-in-time: a new epoch too. */
#define STORE_RECOVER_MARK "CERTD-RECOVERED"
#define STORE_WHY_LEN	320		/* a rotation's reason */
#define STORE_EPOCH_MASK ((UINT64_C(1) << 53) - 1)	/* exact as a double */

/*
 * A committed record as memory keeps it: its index entry, one allocation,
 * chained in the alias table by (m.team, m.alias), which is unique.
 * m.team is the team entry's name, m.alias points at alias[].
 */
struct store_entry {
	struct store_entry	*hnext;
	uint64_t		 hash;
	struct store_meta	 m;
	char			 alias[];
};

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
	struct store_entry	**recs;
	uint64_t		 *ids;		/* recs[i]->m.id, searched without
						   reaching the entries */
	size_t			  n;
	size_t			  cap;
	size_t			  reserve;	/* held by pending creates */
};

/*
 * A submitted mutation.  Everything the writer needs (keys, encoded
 * values) is built on the loop before submission and is immutable after;
 * the writer touches only qnext and err, under or before the lock handoff,
 * and a rotation's wb, which the loop leaves alone once it is submitted.
 */
struct store_op {
	TAILQ_ENTRY(store_op)	 pend;		/* pending list, loop only */
	struct store_op		*qnext;		/* queue / in flight / done */
	enum store_op_kind	 kind;
	uint64_t		 id;
	uint64_t		 revision;
	bool			 rev_given;	/* a mirror's: another store's */
	uint64_t		 next_id;	/* s->next_id at submit */
	uint64_t		 log_cut;	/* s->log_cut at submit */
	uint64_t		 hist_keep;	/* s->hist_keep at submit */
	const char		*team;		/* rec->team, or team_own */
	char			*team_own;	/* delete: copy of the team */
	struct store_team	*tm;		/* put: committed team entry */
	bool			 reserved;	/* put: holds a tm->reserve */
	struct cert_record	*rec;		/* put: owned until applied */
	struct store_entry	*ent;		/* put: rec's index entry */
	int			 err;		/* set by the writer */

	char			 rkey[9];
	char			 lkey[9];
	char			 hkey[STORE_HKEY_LEN]; /* put: history */
	char			*val;		/* put: version, holds the box */
	size_t			 vallen;
	char			*ival;		/* put: index entry ("r") */
	size_t			 ivallen;
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
	struct store_entry		**aliases;	/* by (team, alias) */
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

	TAILQ_HEAD(store_ops, store_op)	 pending;	/* oldest first */

	store_change_cb			 change_cb;
	void				*change_arg;

	/*
	 * Records read from disk and lent until the loop runs again, when
	 * lent_ev frees them; lro reads them (checksums verified).
	 */
	struct cert_record		**lent;
	size_t				 lent_n, lent_cap;
	struct event			*lent_ev;
	rocksdb_readoptions_t		*lro;
	bool				 read_failed;	/* the last read */

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
	struct store_test		 test;	/* hooks: store_test.h */
	unsigned			 reopens;
};

/* ------------------------------------------------------------------ */
/* History keys                                                        */

/* The history key of (id, revision) into k[STORE_HKEY_LEN]. */
static inline void
store_hkey(char *k, uint64_t id, uint64_t revision)
{
	k[0] = 'h';
	util_be64_put(k + 1, id);
	util_be64_put(k + 9, revision);
}

/* ------------------------------------------------------------------ */
/* store.c: helpers, submission, completion                            */

/* Abort with what broke: for a broken invariant only. */
_Noreturn void	store_bug(const char *what);
/* Format a one-line reason into errbuf (NULL or 0 bytes: nothing). */
void		store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
		    __attribute__((__format__(__printf__, 3, 4)));
/* "dir/name" or "prefix" "suffix" in a new string, or NULL. */
char		*store_path(const char *a, const char *sep, const char *b);
/* fsync a directory: 0, or -1 with errno set. */
int		 store_fsync_dir(const char *dir);
/*
 * The read error a scan's iterator met: CERTD_ERR_STORAGE, with "cannot
 * read database: ..." in errbuf (NULL or 0 bytes: not kept); 0 if none.
 */
int		 store_iter_error(rocksdb_iterator_t *it, char *errbuf,
		    size_t errlen);
/*
 * The key under it (its length in *klen) while it is valid and on a key
 * of the family c (every key of a family starts with its letter: "r"
 * records, "a" aliases, "l" change log, "h" history); else NULL.
 */
const char	*store_iter_family(rocksdb_iterator_t *it, char c, size_t *klen);
/* A write batch may hold boxes: wipe its buffer before freeing it. */
void		 store_wb_destroy(rocksdb_writebatch_t *wb);
/* Free an op and what it holds, wiping keys and values; accepts NULL. */
void		 store_op_free(struct store_op *op);
/* The op joins the head view and the writer's queue. */
void		 store_submit(struct store *s, struct store_op *op);
/* The writer's eventfd is readable: complete what it handed back. */
void		 store_on_event(evutil_socket_t fd, short what, void *arg);
/* Wait for the writer and complete every pending op, here and now. */
void		 store_drain(struct store *s);

/* ------------------------------------------------------------------ */
/* store_index.c: the committed and the head view                      */

/* The committed team entry of name, or NULL. */
struct store_team *store_index_team_find(const struct store *s,
		    const char *name);
/* The team entry of name, made if missing; NULL: out of memory. */
struct store_team *store_index_team_get(struct store *s, const char *name);
/* Make room for one more record than n + reserve. */
int		 store_index_team_grow(struct store_team *t);
/* Insert e at pos (room made by grow); take the entry at pos out. */
void		 store_index_team_insert(struct store_team *t, size_t pos,
		    struct store_entry *e);
struct store_entry *store_index_team_remove(struct store_team *t, size_t pos);
/* Index of id in t->recs, or where it would go; true when present. */
bool		 store_index_team_search(const struct store_team *t,
		    uint64_t id, size_t *pos);
/* Index the committed entry e under its alias. */
void		 store_index_alias_link(struct store *s, struct store_entry *e);
/* Take the entry of (team, alias) out of the alias table; it is the caller's. */
struct store_entry *store_index_alias_unlink(struct store *s,
		    const char *team, const char *alias);
/*
 * A new index entry for rec, of team t (whose name it points at); NULL:
 * out of memory.
 */
struct store_entry *store_index_entry_new(const struct cert_record *rec,
		    const struct store_team *t);
/* The on-disk index entry ("r") of m, malloc'd into *val; 0 or NOMEM. */
int		 store_index_value(const struct store_meta *m, char **val,
		    size_t *len);
/*
 * The on-disk index entry of id, v: a new entry in *out, its team entry
 * made if missing.  CERTD_ERR_STORAGE when v is malformed, NOMEM.
 */
int		 store_index_value_load(struct store *s, uint64_t id,
		    const char *v, size_t vlen, struct store_entry **out);
/* Free what was lent (store_get); on the loop, and by store_free. */
void		 store_index_lent_free(struct store *s);
/* Is id held by any record of the head view, in any team? */
bool		 store_index_id_in_use(const struct store *s, uint64_t id);

/* ------------------------------------------------------------------ */
/* store_writer.c: the writer thread                                   */

/* The writer thread's body (arg: the store), started by store_open. */
void		*store_writer(void *arg);
/*
 * Room on the database's file system to write the write-ahead logs into
 * a table file?  If not, false with the reason in errbuf.
 */
bool		 store_writer_logs_fit(struct store *s, const char *what,
		    char *errbuf, size_t errlen);
/* Forget the history the writer knows of (and free it). */
void		 store_writer_hist_clear(struct store *s);

/* ------------------------------------------------------------------ */
/* store_keys.c: master key files, sealing, rotation                   */

/* The id of a master key: the first bytes of its SHA-256. */
int		 store_keys_kid(const unsigned char *key,
		    unsigned char kid[RECORD_KEY_ID_LEN]);
/* Create a key file that must not exist yet, whole or not at all. */
int		 store_keys_write(const char *path, const char *dir,
		    const unsigned char *key);
/* Read a key file into key[32]; the reason of a failure in errbuf. */
int		 store_keys_read(const char *path, bool check_mode,
		    unsigned char *key, bool *bad, char *errbuf,
		    size_t errlen);
/* What step 3 of a rotation still lacks, into why[STORE_WHY_LEN]. */
void		 store_keys_rekey_pending_why(const struct store *s, char *why,
		    int err);
/* At open: finish or undo a rotation that left <key>.new behind. */
int		 store_keys_recover(struct store *s, bool have_kid,
		    const unsigned char *dbkid, char *errbuf, size_t errlen);
/* At open: load the master key, or create it when it may be. */
int		 store_keys_setup(struct store *s,
		    const rocksdb_readoptions_t *ro, bool have_kid,
		    bool *created, char *errbuf, size_t errlen);
/* Seal rec under key (bound to rec's revision), put it at dbkey in wb. */
int		 store_keys_seal_put(rocksdb_writebatch_t *wb,
		    const char *dbkey, size_t dbkeylen,
		    const struct cert_record *rec, const unsigned char *key,
		    const unsigned char *kid);
/* Flush and compact everything, so that replaced values leave the disk. */
void		 store_keys_purge(struct store *s);
/* Step 3 of a rotation, also when retried.  Under filelock. */
int		 store_keys_finish_rename(struct store *s);
/* Writer: the steps of a rotation, once its batch is complete. */
int		 store_keys_rekey_write(struct store *s, struct store_op *op);
/* Writer: re-seal every history entry into the rotation's batch. */
int		 store_keys_rekey_history(struct store *s, struct store_op *op);
/* Loop: a rotation's callback, then the op freed. */
void		 store_keys_rekey_done(struct store *s, struct store_op *op,
		    int err);

/* ------------------------------------------------------------------ */
/* store_history.c: reading the change log and the history             */

/*
 * Version revision of id, read from disk into a new record, its key opened
 * when with_key.  0, CERTD_ERR_NOT_FOUND, CERTD_ERR_STORAGE (it cannot be
 * read or opened), CERTD_ERR_NOMEM.
 */
int		 store_history_read(struct store *s, uint64_t id,
		    uint64_t revision, bool with_key, struct cert_record **out);
/* Decode the history entry k -> v into a new record and its box. */
int		 store_history_version_decode(const char *k, size_t klen,
		    const char *v, size_t vlen, struct cert_record **out,
		    struct record_sealed *sk);
/* Open sk into rec when it was sealed under key (id kid); clears sk. */
int		 store_history_version_unseal(struct cert_record *rec,
		    struct record_sealed *sk, const unsigned char *key,
		    const unsigned char *kid);

/* ------------------------------------------------------------------ */
/* store_load.c: open and load                                         */

/* Open the database into s->db when its logs fit (see store_load.c). */
rocksdb_t	*store_load_db_open(struct store *s, char **rerr, char *errbuf,
		    size_t errlen);
/* Does the database hold any record? */
int		 store_load_has_records(struct store *s,
		    const rocksdb_readoptions_t *ro, bool *any, char *errbuf,
		    size_t errlen);
/* Mark the database in db so that the store opened there makes a new epoch. */
int		 store_load_mark(const char *db, const char *name,
		    const char *text, char *errbuf, size_t errlen);

#endif
