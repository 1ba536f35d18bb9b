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

void
store_fail_next_writes(struct store *s, int n)
{
	pthread_mutex_lock(&s->lock);
	s->test.fail_writes = n;
	pthread_mutex_unlock(&s->lock);
}

void
store_test_fail_backup(struct store *s)
{
	pthread_mutex_lock(&s->filelock);
	s->test.fail_backup = true;
	pthread_mutex_unlock(&s->filelock);
}

void
store_test_crash_rekey(struct store *s, int step)
{
	pthread_mutex_lock(&s->lock);
	s->test.crash_step = step;
	pthread_mutex_unlock(&s->lock);
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
	s->test.fail_backup = false;
	store_errf(errbuf, errlen, "test: the backup fails after its "
	    "checkpoint");
	return true;
}
