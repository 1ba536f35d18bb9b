/* SPDX-License-Identifier: MIT */
/*
 * The durable store: RocksDB under the data directory, a writer thread that
 * group-commits, and the current records in memory.
 *
 * Two views.  The committed view is what has been synced to disk; reads are
 * served from it.  The head view is the committed view plus the mutations
 * submitted but not yet durable, in submission order; decisions (does this
 * alias exist, what does this update merge onto) are taken against it, so
 * two requests in flight cannot both take one alias.
 *
 * Every mutation is one write batch holding the record, the alias index, the
 * change-log entry and the counters, written with WAL sync.  Completions run
 * on the event loop, in revision order.
 */
#ifndef CERTD_STORE_H
#define CERTD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct event_base;
struct store;

enum store_op_kind {
	STORE_PUT = 1,
	STORE_DELETE = 2,
};

/*
 * A committed change, as given to the change listener.  `old` is the record
 * it replaced or deleted (NULL for a create), `rec` the record now current
 * (NULL for a delete).  Both are borrowed for the call.
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
 * record that was deleted for a delete; borrowed for the call.
 */
typedef void	(*store_done_cb)(int err, const struct cert_record *rec,
		    void *arg);

/* Called for every committed change, before its completion, in revision order. */
typedef void	(*store_change_cb)(const struct store_change *change, void *arg);

/*
 * Open (creating if needed) the store in directory `dir` and load every
 * record into memory.  Completions are delivered on `base`.  On failure
 * returns NULL and writes a one-line reason into errbuf.
 */
struct store	*store_open(struct event_base *base, const char *dir,
		    char *errbuf, size_t errlen);

/*
 * Finish every submitted mutation (their completions run), stop the writer
 * thread, close RocksDB and free the memory view.  Accepts NULL.
 */
void		 store_free(struct store *s);

/* Install the change listener (one; NULL removes it). */
void		 store_set_change_cb(struct store *s, store_change_cb cb,
		    void *arg);

/* Committed view.  Returned records are borrowed until the loop runs again. */
const struct cert_record *store_get(const struct store *s, const char *team,
		    uint64_t id);
const struct cert_record *store_get_alias(const struct store *s,
		    const char *team, const char *alias);

/*
 * Committed records of `team` ordered by id: up to `limit` pointers from
 * position `offset` into out[]; returns how many were written and the team's
 * total count in *total.
 */
size_t		 store_list(const struct store *s, const char *team,
		    size_t offset, size_t limit, const struct cert_record **out,
		    size_t *total);

/* Number of committed records, all teams. */
size_t		 store_count(const struct store *s);

/* Last committed revision (0 for an empty store). */
uint64_t	 store_revision(const struct store *s);

/* Head view: the record as it will be once pending writes land, or NULL. */
const struct cert_record *store_head_get(const struct store *s,
		    const char *team, uint64_t id);

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
 * For tests: the next n batch writes fail as if RocksDB had refused them
 * (their ops complete with CERTD_ERR_STORAGE).
 */
void		 store_fail_next_writes(struct store *s, int n);

#endif
