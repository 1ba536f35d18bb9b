/* SPDX-License-Identifier: MIT */
/*
 * The durable store: RocksDB under the data directory, a writer thread that
 * group-commits, and the current records in memory.
 *
 * Two views.  The committed view is what has been synced to disk; reads are
 * served from it: an index entry of every record in memory (struct
 * store_meta), the records themselves from RocksDB through its block cache,
 * so that memory does not grow with the PEM stored.  The head view is the committed view plus the mutations
 * submitted but not yet durable, in submission order; decisions (does this
 * alias exist, what does this update merge onto) are taken against it, so
 * two requests in flight cannot both take one alias.
 *
 * Every mutation is one write batch holding the record, the alias index, the
 * change-log entry and the counters, written with WAL sync.  Completions run
 * on the event loop, in revision order, one op at a time: op k is applied to
 * the committed view, then the change listener and the completion of op k
 * run, and only then is op k+1 applied.  So inside either callback of a
 * successful op, store_revision() is that op's own revision.
 *
 * The change log keeps the last store_set_log_retain() revisions; older
 * entries are trimmed by the same synced batches that write new ones.
 *
 * History keeps the last store_set_history_keep() versions of every
 * certificate, the current one included, for rollback: each put writes the
 * version it makes, once (the record's index entry on disk names it, the
 * change log names its revision), and trims the older ones of that
 * certificate in its own batch; a delete drops the certificate's history in its batch.  Versions
 * are sealed like records (the box bound to the version's own revision).
 *
 * Private keys are sealed at rest (record.h) under a 32-byte master key
 * kept in a file beside the database (<dir>/master.key unless
 * store_options says otherwise), created with mode 0600 on first start.
 * Records on disk and in the WAL never hold a key in clear; records read
 * into memory do, until they are freed (wiped).  store_rekey() rotates the master key, store_backup() takes a
 * consistent copy of database and key while the store runs.
 *
 * When a write fails (disk full, I/O error), its ops complete with
 * CERTD_ERR_STORAGE; the writer reopens the database before the next write
 * and, idle, every second until it succeeds (RocksDB stays read-only after
 * such an error and its C API has no resume), so writes work again as soon
 * as the disk does.  Records are read from the database, which stays open
 * until the reopen has room.  A failed write that the reopen finds on disk after
 * all (an I/O error while syncing it) stops all writes until a restart.
 */
#ifndef CERTD_STORE_H
#define CERTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"
#include "record.h"

struct event_base;
struct store;

#define STORE_MASTER_KEY_FILE	"master.key"	/* in the data directory */
#define STORE_KEY_ID_HEX	(2 * RECORD_KEY_ID_LEN)

enum store_op_kind {
	STORE_PUT = 1,
	STORE_DELETE = 2,
};

/*
 * A committed change, as given to the change listener.  `revision` is the
 * change's own (for a delete too: the revision of the delete, not of the
 * record deleted).  `old` is the record it replaced or deleted (NULL for a
 * create), with only the fields of its index entry (struct store_meta:
 * certificate, key, type and the rest of meta are NULL or zero); `rec` is
 * the record now current, whole (NULL for a delete).  Both are borrowed
 * for the call.  A delete's completion gets `old` as its record.
 */
struct store_change {
	enum store_op_kind		 kind;
	uint64_t			 revision;
	const struct cert_record	*old;
	const struct cert_record	*rec;
};

/*
 * Completion of one submitted mutation, called on the loop.  err is 0 or a
 * negative CERTD_ERR_* (CERTD_ERR_STORAGE when the write failed: nothing of
 * it is on disk).  On success `rec` is the record now current for a put, the
 * record that was deleted for a delete; borrowed for the call.  On success
 * store_revision() is the op's own revision during the call (for a delete,
 * the only place to learn it besides the change listener); on failure it is
 * unchanged.
 */
typedef void	(*store_done_cb)(int err, const struct cert_record *rec,
		    void *arg);

/*
 * Called for every committed change, before its completion, in revision
 * order; store_revision() equals change->revision during the call.
 */
typedef void	(*store_change_cb)(const struct store_change *change, void *arg);

/*
 * One change-log entry: what changed at `revision`.  For a put, `alias` is
 * the alias the record took; for a delete, the alias it held.  team and
 * alias are borrowed for the call.
 */
struct store_log_entry {
	uint64_t		 revision;
	enum store_op_kind	 kind;
	uint64_t		 id;
	const char		*team;
	const char		*alias;
};

/* Called by store_log_scan for each entry; non-zero stops the scan. */
typedef int	(*store_log_cb)(const struct store_log_entry *e, void *arg);

/* What store_open_opts does with a damaged write-ahead log. */
enum store_recover {
	STORE_RECOVER_NONE = 0,		/* refuse to open */
	STORE_RECOVER_POINT_IN_TIME,	/* keep what precedes the damage */
};

/* What store_open_opts may change; a zeroed struct means the defaults. */
struct store_options {
	const char		*master_key;	/* NULL: <dir>/master.key */
	enum store_recover	 recover;	/* once, by an operator */
	size_t			 cache_size;	/* 0: CERTD_CACHE_DEFAULT */
};

/*
 * Open (creating if needed) the store in directory `dir` and load every
 * record into memory.  Completions are delivered on `base`.  On failure
 * returns NULL and writes a one-line reason into errbuf.
 *
 * The master key: a missing key file is created (32 random bytes, mode
 * 0600, file and directory synced) unless the store holds records sealed
 * under a key, then start-up fails ("master key PATH is missing").  It also
 * fails when the file is readable by group or others, is not 32 bytes, or
 * does not open every sealed record ("... does not decrypt record ID").
 * A rotation that a crash interrupted is finished or undone here, see
 * store_rekey.  Schema 1 records (key in clear) are sealed here, in one
 * synced batch, and the files that held them in clear are compacted away.
 * A database without history (schema 1 and 2) gets every record's current
 * version as its history in that batch.
 *
 * The write-ahead logs are read first (wal.h).  A torn last record (a
 * write that never finished, so never acknowledged) is dropped with a
 * warning.  A damaged one fails the open, before RocksDB writes anything,
 * with "write-ahead log DIR/db/N.log is damaged at offset O (why): the last
 * good revision is R, ..." (R from a read-only point-in-time replay).
 * With opts->recover STORE_RECOVER_POINT_IN_TIME, the damaged log and the
 * later ones are first copied into dir as lost-<UTC time>-N.log (0600),
 * then RocksDB replays the logs up to the damage and drops the rest, the
 * store takes a new epoch (see store_get_pos), and what was lost is logged
 * at error level.  A recovery asked for with no damage fails the open
 * ("nothing to recover").
 */
struct store	*store_open(struct event_base *base, const char *dir,
		    char *errbuf, size_t errlen);
struct store	*store_open_opts(struct event_base *base, const char *dir,
		    const struct store_options *opts, char *errbuf,
		    size_t errlen);

/*
 * Finish every submitted mutation (their completions run), stop the writer
 * thread, close RocksDB and free the memory view.  Accepts NULL.
 */
void		 store_free(struct store *s);

/* Install the change listener (one; NULL removes it). */
void		 store_set_change_cb(struct store *s, store_change_cb cb,
		    void *arg);

/*
 * What the store keeps in memory of every committed record: its index
 * entry.  The certificate, the key and the rest of the metadata are on
 * disk, in the record's current version, which store_get reads.  Valid
 * until the loop runs again (a committed write may replace it).
 */
struct store_meta {
	uint64_t	 id;
	uint64_t	 revision;
	const char	*team;
	const char	*alias;
	int64_t		 not_before;	/* leaf validity, Unix seconds */
	int64_t		 not_after;
	char		 fingerprint[CERT_FINGERPRINT_LEN + 1];
};

/*
 * The fields of m as a record, in *r, for code that takes records: the
 * strings are m's (r must not be freed, nor outlive m), certificate, key,
 * type and the rest of meta are NULL or zero.  Allocates nothing.
 */
void		 store_meta_record(const struct store_meta *m,
		    struct cert_record *r);

/* Committed view, from memory: the index entry of a record, or NULL. */
const struct store_meta *store_meta_get(const struct store *s,
		    const char *team, uint64_t id);
const struct store_meta *store_meta_alias(const struct store *s,
		    const char *team, const char *alias);

/*
 * Committed view, read from disk: the whole record, private key opened.
 * Returned records are lent until the loop runs again (the store frees
 * them then).  NULL when there is no such record, or when it cannot be
 * read: then store_read_failed(s) is true until the next read succeeds,
 * and the reason was logged.
 */
const struct cert_record *store_get(struct store *s, const char *team,
		    uint64_t id);
const struct cert_record *store_get_alias(struct store *s,
		    const char *team, const char *alias);
bool		 store_read_failed(const struct store *s);

/*
 * Committed records of `team` ordered by id: up to `limit` records from
 * position `offset` into out[], read from disk without their private key
 * (private_key is NULL) and lent as store_get's; returns how many were
 * written and the team's total count in *total.  A record that cannot be
 * read ends the page early, with store_read_failed(s) true.
 */
size_t		 store_list(struct store *s, const char *team,
		    size_t offset, size_t limit, const struct cert_record **out,
		    size_t *total);

/*
 * Call cb for the index entry of every committed record of team (NULL: of
 * every team; teams in no particular order, each team's records by id),
 * until cb returns non-zero, which is then returned.  The callback must
 * not submit writes.
 */
typedef int	(*store_foreach_cb)(const struct store_meta *m, void *arg);
int		 store_foreach(const struct store *s, const char *team,
		    store_foreach_cb cb, void *arg);

/*
 * Write statistics since open: batches and ops written, failed batches,
 * and cumulative histograms ("le": at most the bucket's bound) of the
 * duration of each batch write (seconds, WAL sync included) and of its size.
 */
#define STORE_WRITE_BUCKETS	10
#define STORE_BATCH_BUCKETS	8
extern const double	store_write_buckets[STORE_WRITE_BUCKETS];
extern const unsigned	store_batch_buckets[STORE_BATCH_BUCKETS];
struct store_stats {
	uint64_t	batches;
	uint64_t	ops;
	uint64_t	failed_batches;
	/*
	 * Writes fail for the store's sake (no room, an I/O error, a database
	 * to reopen): set by a batch that failed so, cleared by the next
	 * batch or background reopen that succeeds.  A refused rotation does
	 * not set it.
	 */
	int		writes_failing;
	double		write_seconds;
	uint64_t	write_le[STORE_WRITE_BUCKETS];
	uint64_t	batch_le[STORE_BATCH_BUCKETS];
};
void		 store_get_stats(struct store *s, struct store_stats *out);

/*
 * Give up the change log up to revision upto (at most the head view's):
 * watchers resuming from before it get resync.  A mirror's full sync
 * (fleet_mirror.c) calls it, since its deletes share one revision and
 * their log entries do not replay.
 */
void		 store_log_forget(struct store *s, uint64_t upto);

/* Last committed revision (0 for an empty store). */
uint64_t	 store_revision(const struct store *s);

/*
 * Where the store stands, read at once (loop thread).
 *
 * epoch: a random number from 1 to 2^53 - 1, made when the store is
 * created, and again when a store restored from store_backup's copy is
 * first opened (the copy is marked as one), and by a point-in-time
 * recovery (store_open).  Two stores with the same revision and different
 * epochs may hold different histories up to it.
 *
 * log_first: the oldest revision the change log still answers for: every
 * committed change with revision >= log_first is reported by
 * store_log_scan.  Older entries may or may not still be on disk.  It
 * rises when a write that will trim is submitted (the writer may trim from
 * then on), not when it completes, so with writes pending it can exceed
 * revision + 1 under a small retention.  A replay of the changes after
 * `since` is complete when since >= revision or since + 1 >= log_first;
 * otherwise the caller has to resync.  Revision + 1 for an empty log.
 */
struct store_pos {
	uint64_t	revision;	/* as store_revision */
	uint64_t	epoch;
	uint64_t	log_first;
	size_t		count;		/* committed records, all teams */
};
void		 store_get_pos(const struct store *s, struct store_pos *out);

/*
 * Keep the last n revisions in the change log (n >= 1; 0 counts as 1;
 * default CERTD_LOG_RETAIN_DEFAULT).  Applies to writes submitted from now
 * on: each trims the entries with revision <= its revision - n, in its own
 * batch.  Nothing is trimmed before the next write.
 */
void		 store_set_log_retain(struct store *s, uint64_t n);


/*
 * Call cb for every committed change-log entry with revision > since, in
 * revision order, until cb returns non-zero.  Entries the writer has put on
 * disk but the loop has not applied yet (revision > store_revision(s)) are
 * never reported.  Reads RocksDB on the calling (loop) thread but never
 * waits for the writer.  cb may submit writes (they are not reported) but
 * must not free the store.  Returns 0 (also when cb stopped the scan), or
 * CERTD_ERR_STORAGE when the log cannot be read or an entry does not decode.
 */
int		 store_log_scan(struct store *s, uint64_t since,
		    store_log_cb cb, void *arg);

/*
 * Keep the last n versions of each certificate (1 <= n <=
 * CERTD_HISTORY_KEEP_MAX; 0 counts as 1, more as the maximum; default
 * CERTD_HISTORY_KEEP_DEFAULT).  Applies to puts submitted from now on: each
 * trims the versions of its certificate beyond the n newest (its own
 * counted), in its own batch.
 */
void		 store_set_history_keep(struct store *s, uint64_t n);
uint64_t	 store_history_keep(const struct store *s);

/*
 * Called by store_history for each version, newest first; non-zero stops.
 * rec is borrowed for the call and has no private key (NULL): the box of a
 * version is opened by store_history_get only.
 */
typedef int	(*store_history_cb)(const struct cert_record *rec,
		    void *arg);

/*
 * The kept versions of committed certificate id of team, newest first
 * (the current version is the first): revisions up to store_revision(s)
 * only.  While a put of the certificate is in flight, the writer may
 * already have trimmed the oldest version, so the list can be one short.
 * Reads RocksDB on the calling (loop) thread, never waiting for the
 * writer.  Returns 0 (also when cb stopped it), CERTD_ERR_NOT_FOUND when
 * team has no committed certificate id or when its delete is written but
 * not yet applied (nothing is left to list), CERTD_ERR_STORAGE when the
 * history cannot be read or a version does not decode.
 */
int		 store_history(struct store *s, const char *team,
		    uint64_t id, store_history_cb cb, void *arg);

/*
 * Version `revision` of certificate id of team, decoded with its private
 * key opened, into a new record in *out (the caller frees it; the key is
 * wiped by record_free).  Returns 0, CERTD_ERR_NOT_FOUND when the history
 * of that certificate in that team holds no such revision (trimmed, never
 * made, above store_revision(s), or of another certificate),
 * CERTD_ERR_STORAGE when it cannot be read or opened, CERTD_ERR_NOMEM.
 * As store_history, on the loop thread.
 */
int		 store_history_get(struct store *s, const char *team,
		    uint64_t id, uint64_t revision, struct cert_record **out);

/*
 * Head view: the record as it will be once pending writes land, or NULL;
 * lent as store_get's when it is committed.  store_head_meta: its index
 * entry, from memory.
 */
const struct cert_record *store_head_get(struct store *s,
		    const char *team, uint64_t id);
const struct store_meta *store_head_meta(const struct store *s,
		    const char *team, uint64_t id);

/* Head view: the team of the record id (ids are store-wide), or NULL. */
const char	*store_head_team(const struct store *s, uint64_t id);

/* Head view: id of the record holding `alias` in `team`, or 0. */
uint64_t	 store_head_alias(const struct store *s, const char *team,
		    const char *alias);

/* Reserve the next certificate id (never reused, also across restarts). */
uint64_t	 store_next_id(struct store *s);

/*
 * Submit a create or update.  The store takes ownership of rec and sets its
 * revision; rec->id must come from store_next_id (create) or name a record of
 * the head view in the same team (update).  cb runs on the loop, never inside
 * this call.  Returns 0, or a negative CERTD_ERR_* and then cb is not called
 * (rec is freed).
 */
int		 store_put(struct store *s, struct cert_record *rec,
		    store_done_cb cb, void *arg);

/* Submit a delete of a record of the head view.  As store_put. */
int		 store_delete(struct store *s, const char *team, uint64_t id,
		    store_done_cb cb, void *arg);

/*
 * A mirror's writes (fleet mode, doc/fleet.md): as store_put and
 * store_delete, at a revision and with an id that another store chose.
 * revision must be above the head view's (store_head_revision), or equal
 * to it for a delete (a resync deletes what is gone at the revision it
 * read); a create's id may be any id that no record of the head view
 * holds, and store_next_id moves past it.  CERTD_ERR_INTERNAL otherwise.
 * When a batch of such writes fails, with nothing else pending, the head
 * view's revision falls back to store_revision, and the same revisions
 * may be written again (a local write's revision never is).
 */
int		 store_put_at(struct store *s, struct cert_record *rec,
		    uint64_t revision, store_done_cb cb, void *arg);
int		 store_delete_at(struct store *s, const char *team, uint64_t id,
		    uint64_t revision, store_done_cb cb, void *arg);
/* The revision of the last submitted write (the head view's). */
uint64_t	 store_head_revision(const struct store *s);

/*
 * Rotate the master key.  Submitted through the writer like a mutation
 * and ordered with them: writes submitted before are sealed under the old
 * key, writes submitted after under the new one.  The writer
 *   1. writes the new key to <master key>.new (0600), syncs it and its
 *      directory;
 *   2. re-seals every record and every kept version (history) under the
 *      new key and records the new key id ("m:kid"), all in ONE synced
 *      write batch: this is the commit point;
 *   3. renames <master key>.new over the master key and syncs the
 *      directory;
 * then compacts the database so that no file keeps boxes of the old key.
 * A crash anywhere leaves the old or the new state: store_open finds
 * <master key>.new and keeps it (finishing step 3) when the database's key
 * id is the new key's, else deletes it.  No revision is consumed and no
 * change is reported; cb gets rec NULL.  err is CERTD_ERR_STORAGE when the
 * rotation did not happen (the old key stays), CERTD_ERR_INTERNAL or
 * CERTD_ERR_NOMEM from the submission.  Returns 0 or a negative
 * CERTD_ERR_* (then cb is not called).
 *
 * A rotation is refused (store_rekey returns CERTD_ERR_STORAGE) while the
 * last one's step 3 is not done (<master key>.new holds the key in force)
 * and when the master key is a mount point (no rename can replace it).
 * It fails (cb gets CERTD_ERR_STORAGE, with the writes queued behind it,
 * which are sealed under its key) without room for its batch three times
 * over (log, table file, compaction) plus a rewrite of every table file,
 * or when step 3 of the last one failed after the submission.
 */
int		 store_rekey(struct store *s, store_done_cb cb, void *arg);

/*
 * Right after store_rekey refused a rotation (the last one's step 3 not
 * done, a mounted key file), or in a rotation's callback: why it failed,
 * or with err 0 what did not complete (step 3, then retried before each
 * write); NULL when there is nothing to say.  Valid until the next call
 * of store_rekey, or during the callback only.
 */
const char	*store_rekey_why(const struct store *s);

/*
 * Check the master key file as start-up does (a regular file of 32 bytes,
 * owned by certd's effective uid, no mode bit for group or others), for a
 * reload.  Returns 0, or a negative CERTD_ERR_* with the reason in errbuf.
 */
int		 store_key_check(struct store *s, char *errbuf, size_t errlen);

/*
 * Read a 32-byte key file as the master key is read and checked (mode
 * 0600 or stricter, owned by certd's uid, exactly 32 bytes, no link, no
 * FIFO); `what` names it in the reason.  0, or CERTD_ERR_NOT_FOUND
 * (missing), CERTD_ERR_STORAGE, with the reason in errbuf.
 */
int		 store_key_file_read(const char *path, const char *what,
		    unsigned char *key, char *errbuf, size_t errlen);

/*
 * Make the store's epoch epoch (its low 53 bits; 0 leaves it): a mirror's
 * is its fleet's, so that revisions mean the same on every host.  0, or
 * CERTD_ERR_STORAGE when "m:epoch" cannot be written.
 */
int		 store_set_epoch(struct store *s, uint64_t epoch);

/* Hex id of the master key new writes are sealed with, into hex[17]. */
void		 store_key_id(const struct store *s,
		    char hex[STORE_KEY_ID_HEX + 1]);

/*
 * Copy the store, while it runs, into directory `dir` (created 0700 if
 * missing; one that exists must be owned by root or certd's uid and
 * writable by no one else; it must not already hold db or master.key): a
 * consistent
 * RocksDB checkpoint in dir/db (hard links where it can), marked as a copy
 * (dir/db/CERTD-BACKUP: the store first opened there makes a new epoch),
 * and the master key in dir/master.key (mode 0600).  The copy is a data
 * directory: start certd with --data-dir dir to restore it.  It holds the
 * master key, so it must be protected like the data directory itself.
 * Runs on the calling thread (it flushes and syncs: milliseconds to
 * seconds), serialised with key rotation so that key and records always
 * match.  Refused while the database's file system lacks room for the
 * memtable's flush.  The checkpoint is made in a fresh directory
 * dir/.certd-backup-XXXXXX and renamed to dir/db once marked; a backup that
 * fails after the checkpoint removes it again (one that died leaves the
 * fresh directory behind).  Returns 0, or a negative CERTD_ERR_* with a
 * one-line reason in errbuf: CERTD_ERR_BACKUP_EXISTS when dir already
 * holds db or master.key (nothing is touched), else CERTD_ERR_STORAGE or
 * CERTD_ERR_NOMEM.
 */
int		 store_backup(struct store *s, const char *dir, char *errbuf,
		    size_t errlen);

/* How many times the writer reopened the database after a failure. */
unsigned	 store_reopens(struct store *s);

/* The test hooks (store_fail_next_writes and others) are in store_test.h. */

#endif
