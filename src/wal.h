/* SPDX-License-Identifier: MIT */
/*
 * RocksDB's write-ahead logs (<db>/NNNNNN.log) read as a file format, before
 * RocksDB replays them: is a log damaged, where, and what did it hold.  The
 * store (store_load.c) asks before it opens the database, so that one flipped
 * byte never makes it start without acknowledged writes.  No RocksDB call
 * here: the format is RocksDB 7.x's (db/log_format.h, db/log_reader.cc,
 * db/write_batch.cc), which this module reads the way RocksDB's
 * kTolerateCorruptedTailRecords replay does, and stricter where that replay
 * drops records without a word.
 *
 * A record that was written whole and does not read back is damage.  A
 * record cut short by the end of its log (a header, a payload or a
 * fragmented record that stops at the end of the file) is a torn tail: the
 * write that made it never finished, so it was never acknowledged (the
 * store acknowledges a write once its log record is synced).  Damage is also
 * what RocksDB would skip silently: a zeroed header with records after it,
 * a length that runs past the end of the log while whole records follow (or
 * while the bytes up to the end pass the record's checksum), a record type
 * of recycled logs (certd never recycles them).
 */
#ifndef CERTD_WAL_H
#define CERTD_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WAL_NAME_MAX	32	/* "NNNNNN.log" and then some */

/*
 * What wal_scan found.  Revisions are the values of the key `rev_key`
 * (8 bytes, big-endian) put by a write batch: a batch's revision.  Zero
 * means none was seen.
 */
struct wal_report {
	unsigned	 files;		/* logs scanned */
	uint64_t	 bytes;		/* their size */
	uint64_t	 last_rev;	/* of the last whole batch before damage */

	/* The first damage, in log order. */
	bool		 damaged;
	char		 file[WAL_NAME_MAX];	/* "000012.log" */
	uint64_t	 offset;	/* of the damaged record's header */
	const char	*why;		/* "checksum mismatch", ... (static) */
	uint64_t	 bytes_after;	/* from offset to the end of the logs */
	unsigned	 files_after;	/* logs after the damaged one */
	uint64_t	 batches_after;	/* whole batches after the damage */
	uint64_t	 rev_after;	/* the highest revision among them */

	/* The last torn tail seen before any damage. */
	bool		 torn;
	char		 torn_file[WAL_NAME_MAX];
	uint64_t	 torn_offset;
	uint64_t	 torn_bytes;
};

/*
 * Scan every write-ahead log in directory dbdir, oldest first, into *r.
 * Returns 0 (damage is reported in r, not as an error), or -1 with a
 * one-line reason in errbuf when a log cannot be listed or read.
 */
int	wal_scan(const char *dbdir, const char *rev_key, struct wal_report *r,
	    char *errbuf, size_t errlen);

/*
 * Keep a copy of the damaged log `name` of dbdir and of every later log in
 * directory destdir, as lost-<when, UTC>-<log name> (mode 0600, created
 * without following links, refused if present; files and directory
 * synced), before a recovery lets RocksDB delete them.  The paths made, or
 * their pattern, go into kept.  Returns 0, or -1 with a one-line reason in
 * errbuf (the copies made so far are left).
 */
int	wal_keep(const char *dbdir, const char *name, const char *destdir,
	    time_t when, char *kept, size_t keptlen, char *errbuf,
	    size_t errlen);

/* CRC-32C (Castagnoli) of n bytes, continuing crc (0 to start). */
uint32_t wal_crc32c(uint32_t crc, const void *p, size_t n);

#endif
