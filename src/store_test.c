/* SPDX-License-Identifier: MIT */
/*
 * The store's test hooks (store_test.h): arming them, and the points where
 * the writer and store_backup ask whether one fires.  The state lives in
 * struct store (s->test), under the locks store_test.h names.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "store_int.h"
#include "store_test.h"

/* Arm a hook: set it under the lock that guards it (store_test.h). */
static void
store_test_set(pthread_mutex_t *lock, int *hook, int v)
{
	pthread_mutex_lock(lock);
	*hook = v;
	pthread_mutex_unlock(lock);
}

void
store_fail_next_writes(struct store *s, int n)
{
	store_test_set(&s->lock, &s->test.fail_writes, n);
}

void
store_test_fail_backup(struct store *s)
{
	store_test_set(&s->filelock, &s->test.fail_backup, 1);
}

void
store_test_crash_rekey(struct store *s, int step)
{
	store_test_set(&s->lock, &s->test.crash_step, step);
}

void
store_test_take(struct store *s, bool rekey)
{
	if ((s->test.fail = s->test.fail_writes > 0))
		s->test.fail_writes--;
	s->test.crash = 0;
	if (rekey) {
		s->test.crash = s->test.crash_step;
		s->test.crash_step = 0;
	}
}

bool
store_test_write_fails(const struct store *s)
{
	return s->test.fail;
}

bool
store_test_crash(const struct store *s, enum store_test_step step)
{
	return s->test.crash == (int)step;
}

bool
store_test_backup_fails(struct store *s, char *errbuf, size_t errlen)
{
	if (!s->test.fail_backup)
		return false;
	s->test.fail_backup = 0;
	store_errf(errbuf, errlen, "test: the backup fails after its "
	    "checkpoint");
	return true;
}
