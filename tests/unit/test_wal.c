/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of wal.c against logs that RocksDB itself wrote (in a
 * temporary directory), then damaged: CRC-32C; an intact log; one flipped
 * byte (damage at the right offset, the last good revision as RocksDB's
 * point-in-time replay finds it, what follows); a log cut short anywhere in
 * its last record (a torn tail, which RocksDB drops too); the damage that
 * RocksDB's tolerant replay drops without a word (a length past the end,
 * a zeroed header before whole records); zeros after the last record; a
 * damaged log followed by a later one; and wal_keep's copies.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* only to write logs as RocksDB writes them, and to see what it makes of them */
#include <rocksdb/c.h>

#include "wal.h"

#define REV_KEY		"m:revision"
#define N_BATCH		60
#define BLOCK		32768
#define TOLERATE_TAIL	0	/* WALRecoveryMode */
#define POINT_IN_TIME	2

struct fixture {
	char	dir[64];
	char	db[96];
	char	log[192];	/* the one log RocksDB left */
	size_t	size;
};

/* A physical record of the log, and where its batch began. */
struct rec {
	size_t	off;
	size_t	len;
	int	type;
	int	batch;		/* 1-based: revision of the batch it belongs to */
};

static struct rec	recs[4096];
static size_t		n_recs;

/* Pad of batch i: a few over a block (fragmented), the last five small. */
static size_t
pad_of(int i)
{
	if (i > N_BATCH - 5)
		return 100;
	return i % 7 == 0 ? 40000 : (size_t)(i * 997 % 9000) + 100;
}

/* Batch i puts "r" i (pad bytes) and the revision key (i, big-endian). */
static void
write_batches(const char *db, int from, int to)
{
	rocksdb_options_t	*o = rocksdb_options_create();
	rocksdb_writeoptions_t	*wo = rocksdb_writeoptions_create();
	rocksdb_writebatch_t	*wb;
	rocksdb_t		*d;
	char			*err = NULL, key[16], rev[8], *val;
	int			 i, k;

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_writeoptions_set_sync(wo, 1);
	d = rocksdb_open(o, db, &err);
	if (d == NULL)
		fail_msg("rocksdb_open: %s", err);
	for (i = from; i <= to; i++) {
		assert_non_null(val = malloc(pad_of(i)));
		memset(val, 'a' + i % 26, pad_of(i));
		snprintf(key, sizeof(key), "r%d", i);
		for (k = 0; k < 8; k++)
			rev[k] = (char)((uint64_t)i >> (56 - 8 * k));
		wb = rocksdb_writebatch_create();
		rocksdb_writebatch_put(wb, key, strlen(key), val, pad_of(i));
		rocksdb_writebatch_put(wb, REV_KEY, strlen(REV_KEY), rev, 8);
		rocksdb_write(d, wo, wb, &err);
		assert_null(err);
		rocksdb_writebatch_destroy(wb);
		free(val);
	}
	rocksdb_close(d);	/* no flush: the log keeps the batches */
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
}

/* The physical records of the log, into recs[]. */
static void
parse_log(struct fixture *f)
{
	unsigned char	*p;
	size_t		 pos = 0, end;
	FILE		*fp;
	int		 batch = 0;

	assert_non_null(fp = fopen(f->log, "rb"));
	assert_non_null(p = malloc(f->size));
	assert_int_equal(fread(p, 1, f->size, fp), f->size);
	fclose(fp);
	n_recs = 0;
	while (pos + 7 <= f->size) {
		end = (pos / BLOCK + 1) * BLOCK;
		if (end - pos < 7) {
			pos = end;
			continue;
		}
		assert_true(n_recs < sizeof(recs) / sizeof(recs[0]));
		recs[n_recs].off = pos;
		recs[n_recs].len = p[pos + 4] | (size_t)p[pos + 5] << 8;
		recs[n_recs].type = p[pos + 6];
		if (recs[n_recs].type == 1 || recs[n_recs].type == 2)
			batch++;
		recs[n_recs].batch = batch;
		pos += 7 + recs[n_recs].len;
		n_recs++;
	}
	assert_int_equal(pos, f->size);
	assert_int_equal(batch, N_BATCH);
	free(p);
}

static void
find_log(struct fixture *f)
{
	struct dirent	*e;
	struct stat	 st;
	DIR		*d;
	size_t		 n;

	f->log[0] = '\0';
	assert_non_null(d = opendir(f->db));
	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0) {
			assert_true(snprintf(f->log, sizeof(f->log), "%s/%s",
			    f->db, e->d_name) < (int)sizeof(f->log));
			assert_int_equal(stat(f->log, &st), 0);
			if (st.st_size > 0)
				break;
		}
	}
	closedir(d);
	assert_true(f->log[0] != '\0');
	f->size = (size_t)st.st_size;
}

static int
setup(void **state)
{
	struct fixture	*f;

	assert_non_null(f = calloc(1, sizeof(*f)));
	snprintf(f->dir, sizeof(f->dir), "/tmp/certd-test-wal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
	write_batches(f->db, 1, N_BATCH);
	find_log(f);
	parse_log(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
patch(const char *path, size_t off, const void *bytes, size_t n)
{
	int	fd;

	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void
flip(const char *path, size_t off)
{
	unsigned char	b;
	int		fd;

	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* RocksDB's reason for the last refusal in rocks_revision. */
static char	rocks_err[512];

/*
 * What RocksDB makes of the log, opened read-only in `mode`: the revision
 * it replays to, or -1 when it refuses (why in rocks_err).
 */
static long long
rocks_revision(const char *db, int mode)
{
	rocksdb_options_t	*o = rocksdb_options_create();
	rocksdb_readoptions_t	*ro = rocksdb_readoptions_create();
	rocksdb_t		*d;
	char			*err = NULL, *v;
	size_t			 len;
	long long		 rev = -1;
	int			 k;

	rocksdb_options_set_paranoid_checks(o, 1);
	rocksdb_options_set_wal_recovery_mode(o, mode);
	if ((d = rocksdb_open_for_read_only(o, db, 0, &err)) != NULL) {
		v = rocksdb_get(d, ro, REV_KEY, strlen(REV_KEY), &len, &err);
		assert_null(err);
		for (rev = 0, k = 0; v != NULL && k < 8; k++)
			rev = rev << 8 | (unsigned char)v[k];
		rocksdb_free(v);
		rocksdb_close(d);
	} else {
		snprintf(rocks_err, sizeof(rocks_err), "%s", err);
		rocksdb_free(err);
	}
	rocksdb_readoptions_destroy(ro);
	rocksdb_options_destroy(o);
	return rev;
}

static void
scan(struct fixture *f, struct wal_report *r)
{
	char	err[256];

	if (wal_scan(f->db, REV_KEY, r, err, sizeof(err)) != 0)
		fail_msg("wal_scan: %s", err);
}

/* ------------------------------------------------------------------ */

static void
test_crc32c(void **state)
{
	const char	*s = "123456789";

	(void)state;
	assert_int_equal(wal_crc32c(0, s, 9), 0xe3069283u);
	assert_int_equal(wal_crc32c(wal_crc32c(0, s, 4), s + 4, 5),
	    0xe3069283u);
	assert_int_equal(wal_crc32c(0, "", 0), 0);
}

static void
test_intact(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;

	scan(f, &r);
	assert_false(r.damaged);
	assert_false(r.torn);
	assert_int_equal(r.files, 1);
	assert_int_equal(r.bytes, f->size);
	assert_int_equal(r.last_rev, N_BATCH);
	assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL), N_BATCH);
}

/* Flip a byte in the payload of record k: damage there, R = batch before. */
static void
check_flip(struct fixture *f, size_t k)
{
	struct wal_report	r;
	size_t			at = recs[k].off + 7 + recs[k].len / 2;
	int			good = recs[k].batch - 1;

	flip(f->log, at);
	scan(f, &r);
	assert_true(r.damaged);
	assert_string_equal(r.why, "checksum mismatch");
	assert_int_equal(r.offset, recs[k].off);
	assert_int_equal(r.bytes_after, f->size - recs[k].off);
	assert_true(strstr(f->log, r.file) != NULL);
	assert_int_equal(r.last_rev, good);
	assert_int_equal(r.files_after, 0);
	if (recs[k].batch < N_BATCH) {
		assert_int_equal(r.rev_after, N_BATCH);
		assert_true(r.batches_after > 0);
	}
	/*
	 * RocksDB: refused when tolerating a torn tail only, saying neither
	 * the log nor the offset (which is why wal.c finds them) ...
	 */
	assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL), -1);
	assert_string_equal(rocks_err, "Corruption: checksum mismatch");
	/* ... and a point-in-time replay stops where the scan says */
	assert_int_equal(rocks_revision(f->db, POINT_IN_TIME), good);
	flip(f->log, at);
	scan(f, &r);
	assert_false(r.damaged);
}

static void
test_flip(void **state)
{
	struct fixture	*f = *state;
	size_t		 k, mid = n_recs / 2;

	check_flip(f, mid);
	for (k = 0; k < n_recs; k++)	/* a MIDDLE or LAST fragment */
		if (recs[k].type == 3 || recs[k].type == 4)
			break;
	assert_true(k < n_recs);
	check_flip(f, k);
	check_flip(f, 0);		/* the first record */
	check_flip(f, n_recs - 1);	/* the last one: a write acknowledged */
}

/* Header bytes: the CRC, the length, the type. */
static void
test_flip_header(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	size_t			 k = n_recs / 3, i;

	for (i = 0; i < 7; i++) {
		flip(f->log, recs[k].off + i);
		scan(f, &r);
		assert_true(r.damaged);
		assert_int_equal(r.offset, recs[k].off);
		assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL), -1);
		flip(f->log, recs[k].off + i);
	}
}

static void
test_torn_tail(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	const struct rec	*last = &recs[n_recs - 1];
	size_t			 cut[] = { 1, 3, 6, 7, 8, 50, last->len + 6 };
	size_t			 i;

	assert_int_equal(last->type, 1);
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		assert_int_equal(truncate(f->log, (off_t)(f->size - cut[i])), 0);
		scan(f, &r);
		assert_false(r.damaged);
		assert_true(r.torn);
		assert_int_equal(r.torn_offset, last->off);
		assert_int_equal(r.torn_bytes, f->size - cut[i] - last->off);
		assert_int_equal(r.last_rev, N_BATCH - 1);
		assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL),
		    N_BATCH - 1);
	}
	/* cut on a record boundary: nothing torn */
	assert_int_equal(truncate(f->log, (off_t)last->off), 0);
	scan(f, &r);
	assert_false(r.damaged);
	assert_false(r.torn);
	assert_int_equal(r.last_rev, N_BATCH - 1);
}

/* A fragmented batch cut short: torn from its FIRST fragment on. */
static void
test_torn_fragments(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	size_t			 k, first;

	for (k = n_recs - 1; k > 0 && recs[k].type != 3 && recs[k].type != 4;
	    k--)
		;
	assert_true(k > 0);
	for (first = k; recs[first].type != 2; first--)
		;
	assert_int_equal(truncate(f->log, (off_t)(recs[k].off + 3)), 0);
	scan(f, &r);
	assert_false(r.damaged);
	assert_true(r.torn);
	assert_int_equal(r.torn_offset, recs[first].off);
	assert_int_equal(r.last_rev, recs[first].batch - 1);
	assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL),
	    recs[first].batch - 1);
}

/*
 * A length that runs past the end of the log: RocksDB takes it for a torn
 * tail and drops the records after it in silence.  The scan does not.
 */
static void
test_length_past_end(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	const unsigned char	 big[2] = { 0xff, 0xff };
	size_t			 k = n_recs - 3;	/* two whole ones after */

	assert_true(recs[k].off / BLOCK == (f->size - 1) / BLOCK);
	patch(f->log, recs[k].off + 4, big, 2);
	assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL),
	    recs[k].batch - 1);			/* RocksDB: silent loss */
	scan(f, &r);
	assert_true(r.damaged);
	assert_int_equal(r.offset, recs[k].off);
	assert_int_equal(r.last_rev, recs[k].batch - 1);
	assert_int_equal(r.rev_after, N_BATCH);	/* what it hid */
	assert_int_equal(r.batches_after, 2);

	/* the last record, whole, with a length past the end */
	patch(f->log, recs[k].off + 4, (unsigned char[2]){ recs[k].len & 0xff,
	    recs[k].len >> 8 }, 2);
	k = n_recs - 1;
	patch(f->log, recs[k].off + 4, big, 2);
	assert_int_equal(rocks_revision(f->db, TOLERATE_TAIL), N_BATCH - 1);
	scan(f, &r);
	assert_true(r.damaged);
	assert_int_equal(r.offset, recs[k].off);
}

/* A zeroed header with whole records after it: damage; zeros only: torn. */
static void
test_zeroed(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	const unsigned char	 zero[7] = { 0 };
	unsigned char		*z;
	size_t			 k;
	int			 fd;

	for (k = n_recs / 2; recs[k].type != 1; k++)
		;
	patch(f->log, recs[k].off, zero, sizeof(zero));
	scan(f, &r);
	assert_true(r.damaged);
	assert_string_equal(r.why, "zeroed record header before whole records");
	assert_int_equal(r.offset, recs[k].off);
	assert_int_equal(r.last_rev, recs[k].batch - 1);
	assert_int_equal(r.rev_after, N_BATCH);

	/* zeros after the last record: nothing lost */
	teardown(state);
	setup(state);
	f = *state;
	assert_non_null(z = calloc(1, 5000));
	assert_true((fd = open(f->log, O_WRONLY | O_APPEND)) >= 0);
	assert_int_equal(write(fd, z, 5000), 5000);
	close(fd);
	free(z);
	scan(f, &r);
	assert_false(r.damaged);
	assert_true(r.torn);
	assert_int_equal(r.torn_offset, f->size);
	assert_int_equal(r.last_rev, N_BATCH);
}

/* Damage in one log, a later log after it: both counted as lost. */
static void
test_later_log(void **state)
{
	struct fixture		*f = *state;
	struct wal_report	 r;
	char			 later[256], cmd[512];
	size_t			 k = n_recs / 2;

	snprintf(later, sizeof(later), "%s/999999.log", f->db);
	snprintf(cmd, sizeof(cmd), "cp %s %s", f->log, later);
	assert_int_equal(system(cmd), 0);
	flip(f->log, recs[k].off + 7 + recs[k].len / 2);
	scan(f, &r);
	assert_int_equal(r.files, 2);
	assert_true(r.damaged);
	assert_true(strstr(f->log, r.file) != NULL);
	assert_int_equal(r.files_after, 1);
	assert_int_equal(r.bytes_after, 2 * f->size - recs[k].off);
	assert_int_equal(r.rev_after, N_BATCH);
	assert_int_equal(r.batches_after > N_BATCH, 1);
}

static void
test_keep(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;
	char		 kept[1024], err[256], path[256], want[256], cmd[512];
	const char	*names[] = { "000005.log", "000007.log", "000009.log" };
	size_t		 i;
	int		 fd;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->db, names[i]);
		assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC,
		    0644)) >= 0);
		assert_int_equal(write(fd, names[i], 10), 10);
		close(fd);
	}
	/* 2001-09-09T01:46:40Z */
	assert_int_equal(wal_keep(f->db, "000007.log", f->dir, 1000000000,
	    kept, sizeof(kept), err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/lost-20010909T014640Z-000007.log "
	    "%s/lost-20010909T014640Z-000009.log", f->dir, f->dir);
	assert_string_equal(kept, want);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/lost-20010909T014640Z-%s",
		    f->dir, names[i]);
		if (i == 0) {
			assert_int_not_equal(stat(path, &st), 0);
			continue;
		}
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		snprintf(cmd, sizeof(cmd), "cmp -s %s %s/%s", path, f->db,
		    names[i]);
		assert_int_equal(system(cmd), 0);
	}
	/* never over a file that is there (nor through a link) */
	assert_int_equal(wal_keep(f->db, "000007.log", f->dir, 1000000000,
	    kept, sizeof(kept), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lost-20010909T014640Z-000007.log"));
	assert_non_null(strstr(err, "File exists"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test_setup_teardown(test_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_header, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_fragments, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_length_past_end, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_zeroed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_log, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
	};

	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
