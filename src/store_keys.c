/* SPDX-License-Identifier: MIT */
/*
 * Keys at rest.  store_put seals the private key on the loop, under the
 * master key the store holds in memory, before the record is encoded; the
 * writer, the WAL and the files only ever see the box.  "m:kid" names the
 * master key the records are sealed with; every version carries it too.
 * A rotation (store_rekey) is an op like the others: on the loop it makes
 * the new key and switches the in-memory key, so that later submissions
 * use the new key; the writer re-seals every version on disk (the current
 * ones are versions too: "r" holds no box) into the rotation's batch and
 * then runs the three steps of store.h, always in a batch of its own.  If
 * it fails, the ops after it fail too (as after any failed write) and the
 * loop switches back to the old key before anyone can submit again.
 *
 * This file holds the master key files (read, written whole or not at
 * all, checked; at start-up, a rotation that a crash interrupted finished
 * or undone, a missing key made), sealing records and versions under a
 * key, and the rotation: its submission, its steps in the writer thread,
 * its completion on the loop.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
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

/* A master key file: certd's own, for no one else to read (perm.h). */
#define STORE_KEY_PERM	(PERM_OWNER | PERM_PRIVATE)
#define STORE_COMPACT_FORCE 2	/* BottommostLevelCompaction::kForce */

/* ------------------------------------------------------------------ */
/* Master key files                                                    */

/* The id of a master key: the first bytes of its SHA-256. */
int
store_keys_kid(const unsigned char *key, unsigned char kid[RECORD_KEY_ID_LEN])
{
	unsigned char	h[32];

	if (cert_sha256(key, CERT_SEAL_KEY_LEN, h) != 0)
		return CERTD_ERR_INTERNAL;
	memcpy(kid, h, RECORD_KEY_ID_LEN);
	return 0;
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
int
store_keys_write(const char *path, const char *dir, const unsigned char *key)
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
store_keys_read_what(const char *path, const char *what, bool check_mode,
    unsigned char *key, bool *bad, char *errbuf, size_t errlen)
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
			store_errf(errbuf, errlen, "%s %s is missing",
			    what, path);
			return CERTD_ERR_NOT_FOUND;
		}
		store_errf(errbuf, errlen, "cannot read %s %s: %s",
		    what, path, strerror(errno));
		return CERTD_ERR_STORAGE;
	}
	if (fstat(fd, &st) != 0) {
		store_errf(errbuf, errlen, "cannot read %s %s: %s",
		    what, path, strerror(errno));
		goto out;
	}
	*bad = true;
	if (perm_check(&st, what, path, check_mode ? STORE_KEY_PERM :
	    0, errbuf, errlen) != 0)
		goto out;
	if (st.st_size != CERT_SEAL_KEY_LEN) {
		store_errf(errbuf, errlen, "%s %s must be %d bytes, not %lld",
		    what, path, CERT_SEAL_KEY_LEN,
		    (long long)st.st_size);
		goto out;
	}
	*bad = false;
	if ((n = read(fd, key, CERT_SEAL_KEY_LEN)) != CERT_SEAL_KEY_LEN) {
		store_errf(errbuf, errlen, "cannot read %s %s: %s",
		    what, path, n < 0 ? strerror(errno) : "short read");
		util_wipe(key, CERT_SEAL_KEY_LEN);
		goto out;
	}
	err = 0;
out:
	close(fd);
	return err;
}

/* Read a key file into key[32]; the reason of a failure in errbuf. */
int
store_keys_read(const char *path, bool check_mode, unsigned char *key,
    bool *bad, char *errbuf, size_t errlen)
{
	return store_keys_read_what(path, "master key", check_mode, key, bad,
	    errbuf, errlen);
}

int
store_key_file_read(const char *path, const char *what, unsigned char *key,
    char *errbuf, size_t errlen)
{
	bool	bad;

	return store_keys_read_what(path, what, true, key, &bad, errbuf,
	    errlen);
}

int
store_key_check(struct store *s, char *errbuf, size_t errlen)
{
	unsigned char	key[CERT_SEAL_KEY_LEN];
	bool		bad;
	int		err;

	err = store_keys_read(s->mk_path, true, key, &bad, errbuf, errlen);
	util_wipe(key, sizeof(key));
	return err;
}

void
store_key_id(const struct store *s, char hex[STORE_KEY_ID_HEX + 1])
{
	util_hex(s->kid, RECORD_KEY_ID_LEN, hex);
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
void
store_keys_rekey_pending_why(const struct store *s, char *why, int err)
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

/*
 * A rotation left <key>.new behind.  Its batch (step 2) is the commit
 * point and wrote "m:kid": if that names the new key, the rotation
 * happened and only the rename is missing; otherwise it never happened
 * (the crash came before or during the batch) and the file goes.  A .new
 * that is not a 32-byte file was torn while being written, before the
 * batch.  An error reading it stops start-up: never guess then.
 */
int
store_keys_recover(struct store *s, bool have_kid, const unsigned char *dbkid,
    char *errbuf, size_t errlen)
{
	unsigned char	key[CERT_SEAL_KEY_LEN], kid[RECORD_KEY_ID_LEN];
	bool		bad, committed = false;
	int		err;

	err = store_keys_read(s->mk_new_path, false, key, &bad, errbuf, errlen);
	if (err == CERTD_ERR_NOT_FOUND)
		return 0;
	if (err != 0 && !bad)
		return err;
	if (err == 0 && have_kid && store_keys_kid(key, kid) == 0 &&
	    memcmp(kid, dbkid, sizeof(kid)) == 0)
		committed = true;
	util_wipe(key, sizeof(key));
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
int
store_keys_setup(struct store *s, const rocksdb_readoptions_t *ro,
    bool have_kid, bool *created, char *errbuf, size_t errlen)
{
	bool	bad, any;
	int	err;

	*created = false;
	err = store_keys_read(s->mk_path, true, s->mkey, &bad, errbuf, errlen);
	if (err == 0)
		return store_keys_kid(s->mkey, s->kid);
	if (err != CERTD_ERR_NOT_FOUND)
		return err;
	if ((err = store_load_has_records(s, ro, &any, errbuf, errlen)) != 0)
		return err;
	if (have_kid && any) {
		store_errf(errbuf, errlen, "master key %s is missing",
		    s->mk_path);
		return CERTD_ERR_STORAGE;
	}
	if ((err = cert_random(s->mkey, sizeof(s->mkey))) != 0 ||
	    (err = store_keys_kid(s->mkey, s->kid)) != 0) {
		store_errf(errbuf, errlen, "cannot make a master key");
		return err;
	}
	if (store_keys_write(s->mk_path, s->mk_dir, s->mkey) != 0) {
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

/* ------------------------------------------------------------------ */
/* Sealing under a key                                                 */

/* Seal rec under key (bound to rec's revision), put it at dbkey in wb. */
int
store_keys_seal_put(rocksdb_writebatch_t *wb, const char *dbkey,
    size_t dbkeylen, const struct cert_record *rec, const unsigned char *key,
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
	util_wipe(val, vallen);
	free(val);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rotation: submission on the loop                                    */

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

		store_keys_rekey_pending_why(s, step, 0);
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
	    (err = store_keys_kid(op->new_key, op->new_kid)) != 0)
		goto fail;
	/* the writer adds every version, re-sealed (store_keys_rekey_history) */
	op->wb = rocksdb_writebatch_create();
	rocksdb_writebatch_put(op->wb, KEY_KID, strlen(KEY_KID),
	    (const char *)op->new_kid, RECORD_KEY_ID_LEN);
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
/* Rotation: the steps in the writer thread                            */

/*
 * Flush and compact everything, so that the values a re-seal replaced
 * (boxes of an old key, keys in clear) leave the WAL and the table files.
 * Best effort: a failure here loses nothing and shows at the next write.
 */
void
store_keys_purge(struct store *s)
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
int
store_keys_finish_rename(struct store *s)
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
int
store_keys_rekey_write(struct store *s, struct store_op *op)
{
	char	*rerr = NULL, step[STORE_WHY_LEN];
	int	 err = CERTD_ERR_STORAGE;

	pthread_mutex_lock(&s->filelock);
	if ((unlink(s->mk_new_path) != 0 && errno != ENOENT) ||
	    store_keys_write(s->mk_new_path, s->mk_dir, op->new_key) != 0) {
		store_errf(op->why, STORE_WHY_LEN, "cannot write %s (as "
		    "%s.tmp, then linked): %s", s->mk_new_path, s->mk_new_path,
		    strerror(errno));
		goto out;
	}
	if (store_test_crash(s, STORE_TEST_KEY_FILE))
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
	if (store_test_crash(s, STORE_TEST_BATCH))
		goto crash;
	err = 0;
	if (rename(s->mk_new_path, s->mk_path) != 0)
		goto pending;
	if (store_test_crash(s, STORE_TEST_RENAME))
		goto crash;
	if (store_fsync_dir(s->mk_dir) != 0)
		goto pending;
out:
	pthread_mutex_unlock(&s->filelock);
	if (err == 0)
		store_keys_purge(s);
	return err;
pending:
	s->rename_pending = true;
	store_keys_rekey_pending_why(s, step, errno);
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
int
store_keys_rekey_history(struct store *s, struct store_op *op)
{
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	struct record_sealed	 sk;
	struct cert_record	*rec;
	const char		*k, *v;
	size_t			 klen, vlen;
	int			 err = 0;

	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(ro, 0);	/* read once */
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, "h", 1); err == 0 &&
	    (k = store_iter_family(it, 'h', &klen)) != NULL;
	    rocksdb_iter_next(it)) {
		v = rocksdb_iter_value(it, &vlen);
		if ((err = store_history_version_decode(k, klen, v, vlen, &rec,
		    &sk)) != 0)
			break;
		if ((err = store_history_version_unseal(rec, &sk, op->old_key,
		    op->old_kid)) == 0)
			err = store_keys_seal_put(op->wb, k, klen, rec,
			    op->new_key, op->new_kid);
		record_free(rec);
	}
	if (store_iter_error(it, NULL, 0) != 0)
		err = CERTD_ERR_STORAGE;
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return err != 0 ? CERTD_ERR_STORAGE : 0;
}

/* ------------------------------------------------------------------ */
/* Rotation: completion on the loop                                    */

/* A rotation's callback, with its reason at hand (store_rekey_why). */
void
store_keys_rekey_done(struct store *s, struct store_op *op, int err)
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
