/* SPDX-License-Identifier: MIT */
/*
 * The store's test hooks, behind one seam.  A test arms them with the first
 * three functions (on the loop thread, like the rest of store.h); the
 * store's code asks at named points whether one fires there, and otherwise
 * keeps no trace of them.  Only tests/unit/test_store.c arms them: in the
 * daemon every point answers no.
 */
#ifndef CERTD_STORE_TEST_H
#define CERTD_STORE_TEST_H

#include <stdbool.h>
#include <stddef.h>

struct store;

/*
 * For tests: the next n batch writes fail as if RocksDB had refused them
 * (their ops complete with CERTD_ERR_STORAGE; the database is reopened
 * before the next write, as after a real failure).
 */
void		 store_fail_next_writes(struct store *s, int n);

/* For tests: the next store_backup fails right after its checkpoint. */
void		 store_test_fail_backup(struct store *s);

/*
 * For tests: the next store_rekey "crashes" right after step `step` (1, 2
 * or 3 of store_rekey in store.h): nothing more is done on disk, the
 * rotation completes with CERTD_ERR_STORAGE, and every later write fails.
 * Free the store and open it again to see what a restart makes of it.
 */
void		 store_test_crash_rekey(struct store *s, int step);

/* The steps of a rotation (store_rekey in store.h), as `step` above. */
enum store_test_step {
	STORE_TEST_KEY_FILE = 1,	/* <master key>.new written */
	STORE_TEST_BATCH = 2,		/* the re-sealing batch written */
	STORE_TEST_RENAME = 3,		/* .new renamed over the key */
};

/*
 * The hooks' state, in struct store.  fail_writes and crash_step are under
 * the store's lock, fail_backup under its filelock; fail and crash, what
 * the batch being written does, belong to the writer thread.
 */
struct store_test {
	int	fail_writes;	/* batches left to fail */
	int	crash_step;	/* where the next rotation stops; 0: nowhere */
	int	fail_backup;	/* 1: the next backup fails */
	bool	fail;		/* the batch being written fails */
	int	crash;		/* the rotation being written stops there */
};

/*
 * Writer, under the lock, for the batch it has just taken: arm the points
 * below for it.  Every batch takes one of the writes to fail; a rotation
 * takes the crash step.
 */
void		 store_test_take(struct store *s, bool rekey);

/* Writer: does the batch being written fail (once it is built)? */
bool		 store_test_write_fails(const struct store *s);

/* Writer: does the rotation being written stop right after step? */
bool		 store_test_crash(const struct store *s,
		    enum store_test_step step);

/*
 * store_backup, under the filelock, once its checkpoint is made: does the
 * backup fail here?  Then errbuf says so, and the hook is spent.
 */
bool		 store_test_backup_fails(struct store *s, char *errbuf,
		    size_t errlen);

#endif
