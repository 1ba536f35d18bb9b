/* SPDX-License-Identifier: MIT */
/*
 * store_backup (store.h): a consistent copy of the database and its
 * master key, taken while the store runs, on the calling (loop) thread.
 * The database is a RocksDB checkpoint, made in a fresh directory, marked
 * as a copy (STORE_COPY_MARK: the store opened there makes a new epoch,
 * store_load.c) and renamed into place; the key file is read back and
 * checked against the database's key id first.  It holds the filelock
 * throughout, as the writer does through a rotation, so that the copy
 * never pairs records and a key of different rotations.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "certd/constants.h"
#include "cert.h"
#include "perm.h"
#include "record.h"
#include "store.h"
#include "store_int.h"
#include "store_test.h"
#include "util.h"

/* A backup directory: no one but root and certd may change its entries. */
#define STORE_BACKUP_DIR_PERM (PERM_DIR | PERM_OWNER_ROOT | PERM_NO_WRITE)

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

	if (store_keys_read(s->mk_path, true, key, &bad, errbuf, errlen) != 0)
		return -1;
	if (store_keys_kid(key, kid) != 0 ||
	    memcmp(kid, s->disk_kid, sizeof(kid)) != 0) {
		util_wipe(key, CERT_SEAL_KEY_LEN);
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
	if (s->rename_pending && store_keys_finish_rename(s) == 0)
		s->rename_pending = false;
	if (s->rename_pending)
		store_errf(errbuf, errlen, "a master key rotation is not "
		    "finished (%s)", s->mk_new_path);
	else if (s->db == NULL)
		store_errf(errbuf, errlen, "the database is not open after a "
		    "storage failure");
	else if (store_writer_logs_fit(s, "a backup", errbuf, errlen) &&
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
		} else if (store_test_backup_fails(s, errbuf, errlen))
			;	/* errbuf says why */
		else if (store_load_mark(part, STORE_COPY_MARK, "certd: this "
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
			else if (store_keys_write(kp, dir, key) != 0)
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
		util_wipe(key, sizeof(key));
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
