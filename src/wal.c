/* SPDX-License-Identifier: MIT */
/*
 * RocksDB's write-ahead logs, read as files: wal_scan says whether one is
 * damaged before RocksDB replays it, wal_keep copies the damaged ones aside
 * before a recovery drops them.  See wal.h for what counts as damage.
 *
 * The format (RocksDB 7.x): a log is a sequence of 32 KiB blocks.  A block
 * holds physical records: a 7-byte header (the masked CRC-32C of the type
 * byte and the payload, 4 bytes little-endian; the payload length, 2; the
 * type, 1) and the payload.  Fewer than 7 bytes left in a block are
 * padding.  One write batch is one FULL record, or a FIRST, MIDDLE... and
 * LAST record (records never cross a block).  A write batch is a sequence
 * number (8 bytes), a count (4), then entries: a tag byte and
 * varint32-prefixed strings (column family, key, value, as the tag says).
 *
 * RocksDB's reader, in the mode certd opens with, drops the rest of a
 * block after a zeroed header without a word, and takes a length that runs
 * past the end of the last block for a write that never finished; both can
 * hide whole, acknowledged records.  So here a zeroed header or a length
 * past the end is a torn tail only when no whole record follows it.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "util.h"
#include "wal.h"

#define WAL_BLOCK	32768
#define WAL_HEADER	7
#define WAL_CRC_DELTA	0xa282ead8u	/* RocksDB's crc32c::Mask */
#define WAL_BATCH_HEADER 12		/* sequence, count */
#define WAL_FILES_MAX	100000

enum {
	WAL_ZERO = 0,
	WAL_FULL = 1,
	WAL_FIRST = 2,
	WAL_MIDDLE = 3,
	WAL_LAST = 4,
	WAL_RECYCLED_FULL = 5,
	WAL_RECYCLED_LAST = 8,
	WAL_SET_COMPRESSION = 9,
};

/* Write batch tags (RocksDB db/dbformat.h ValueType). */
enum {
	WB_DELETE = 0x0,
	WB_PUT = 0x1,
	WB_MERGE = 0x2,
	WB_LOG_DATA = 0x3,
	WB_CF_DELETE = 0x4,
	WB_CF_PUT = 0x5,
	WB_CF_MERGE = 0x6,
	WB_SINGLE_DELETE = 0x7,
	WB_CF_SINGLE_DELETE = 0x8,
	WB_NOOP = 0xd,
	WB_CF_RANGE_DELETE = 0xe,
	WB_RANGE_DELETE = 0xf,
};

struct wal_file {
	uint64_t	num;
	char		name[WAL_NAME_MAX];
};

/* Reading state, carried from one log to the next. */
struct wal_state {
	struct wal_report	*r;
	const char		*key;		/* a batch's revision key */
	size_t			 keylen;
	const char		*name;		/* of the log being read */
	unsigned char		*frag;		/* a fragmented record so far */
	size_t			 fraglen, fragcap;
	size_t			 frag_off;	/* where it started */
	bool			 in_frag;
	bool			 any;		/* a FULL or LAST record read */
	bool			 compressed;	/* batches cannot be read */
	bool			 nomem;
};

/*
 * CRC-32C (Castagnoli), RocksDB's checksum: ISA-L's crc32_iscsi, which
 * takes and returns the register uninverted.  Records are at most a block
 * long, so n fits its int.
 */
uint32_t
wal_crc32c(uint32_t crc, const void *buf, size_t n)
{
	return ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)n, ~crc);
}

/* Does the record whose header is at h, with a payload of len, check? */
static bool
wal_crc_ok(const unsigned char *h, size_t len)
{
	uint32_t	want, c;

	want = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
	    (uint32_t)h[3] << 24;
	c = wal_crc32c(0, h + 6, len + 1);
	return ((c >> 15) | (c << 17)) + WAL_CRC_DELTA == want;
}

/* ------------------------------------------------------------------ */
/* Write batches                                                       */

static bool
wal_varint(const unsigned char **p, const unsigned char *end, uint32_t *v)
{
	uint32_t	r = 0;
	int		shift;

	for (shift = 0; shift <= 28 && *p < end; shift += 7) {
		r |= (uint32_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* A varint-prefixed string at *p into (s, len). */
static bool
wal_slice(const unsigned char **p, const unsigned char *end,
    const unsigned char **s, uint32_t *len)
{
	if (!wal_varint(p, end, len) || (size_t)(end - *p) < *len)
		return false;
	*s = *p;
	*p += *len;
	return true;
}

/*
 * The revision a batch wrote (its last put of the revision key), if it
 * decodes that far; entries of other kinds are skipped, an unknown tag ends
 * the reading.
 */
static bool
wal_batch_rev(const struct wal_state *st, const unsigned char *b, size_t n,
    uint64_t *rev)
{
	const unsigned char	*p = b + WAL_BATCH_HEADER, *end = b + n;
	const unsigned char	*k, *v;
	uint32_t		 klen, vlen, cf;
	bool			 found = false;
	int			 tag, i;

	while (p < end) {
		tag = *p++;
		k = v = NULL;
		klen = vlen = 0;
		if ((tag == WB_CF_DELETE || tag == WB_CF_PUT ||
		    tag == WB_CF_MERGE || tag == WB_CF_SINGLE_DELETE ||
		    tag == WB_CF_RANGE_DELETE) && !wal_varint(&p, end, &cf))
			return found;
		switch (tag) {
		case WB_PUT: case WB_MERGE: case WB_CF_PUT: case WB_CF_MERGE:
		case WB_RANGE_DELETE: case WB_CF_RANGE_DELETE:
			if (!wal_slice(&p, end, &k, &klen) ||
			    !wal_slice(&p, end, &v, &vlen))
				return found;
			break;
		case WB_DELETE: case WB_SINGLE_DELETE: case WB_CF_DELETE:
		case WB_CF_SINGLE_DELETE: case WB_LOG_DATA:
			if (!wal_slice(&p, end, &k, &klen))
				return found;
			break;
		case WB_NOOP:
			break;
		default:
			return found;
		}
		if (tag == WB_PUT && klen == st->keylen && vlen == 8 &&
		    memcmp(k, st->key, klen) == 0) {
			for (*rev = 0, i = 0; i < 8; i++)
				*rev = *rev << 8 | v[i];
			found = true;
		}
	}
	return found;
}

/* A whole logical record: a write batch.  NULL, or what is wrong. */
static const char *
wal_batch(struct wal_state *st, const unsigned char *b, size_t n)
{
	struct wal_report	*r = st->r;
	uint64_t		 rev;

	if (n < WAL_BATCH_HEADER)
		return "write batch too small";
	if (r->damaged)
		r->batches_after++;
	if (st->compressed || !wal_batch_rev(st, b, n, &rev))
		return NULL;
	if (!r->damaged)
		r->last_rev = rev;
	else if (rev > r->rev_after)
		r->rev_after = rev;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Records                                                             */

static bool
wal_frag_add(struct wal_state *st, const unsigned char *p, size_t n)
{
	unsigned char	*nf;
	size_t		 cap;

	if (st->fraglen + n > st->fragcap) {
		cap = st->fragcap != 0 ? st->fragcap : WAL_BLOCK;
		while (cap < st->fraglen + n)
			cap *= 2;
		if ((nf = realloc(st->frag, cap)) == NULL) {
			st->nomem = true;
			return false;
		}
		st->frag = nf;
		st->fragcap = cap;
	}
	memcpy(st->frag + st->fraglen, p, n);
	st->fraglen += n;
	return true;
}

/*
 * A physical record that checks, at offset off.  NULL, or what is wrong
 * (then it was taken as RocksDB takes it: a FULL or FIRST record after an
 * unfinished one still starts a record).
 */
static const char *
wal_record(struct wal_state *st, int type, const unsigned char *p, size_t n,
    size_t off)
{
	const char	*cut = NULL, *why;

	/* (an empty FIRST before a record was an old writer's habit) */
	if ((type == WAL_FULL || type == WAL_FIRST) && st->in_frag &&
	    st->fraglen > 0)
		cut = "fragmented record without its end";
	switch (type) {
	case WAL_FULL:
		st->in_frag = false;
		st->any = true;
		why = wal_batch(st, p, n);
		return cut != NULL ? cut : why;
	case WAL_FIRST:
		st->in_frag = true;
		st->frag_off = off;
		st->fraglen = 0;
		(void)wal_frag_add(st, p, n);
		return cut;
	case WAL_MIDDLE:
	case WAL_LAST:
		if (!st->in_frag)
			return "fragment without its start";
		if (!wal_frag_add(st, p, n)) {
			st->in_frag = false;	/* out of memory: said later */
			return NULL;
		}
		if (type == WAL_MIDDLE)
			return NULL;
		st->in_frag = false;
		st->any = true;
		return wal_batch(st, st->frag, st->fraglen);
	case WAL_SET_COMPRESSION:
		if (st->any)
			return "compression record after the first record";
		st->compressed = true;
		return NULL;
	default:
		return type >= WAL_RECYCLED_FULL && type <= WAL_RECYCLED_LAST ?
		    "record of a recycled log" : "unknown record type";
	}
}

/* Is the header at p one of a whole record inside p[0..lim)? */
static bool
wal_whole_at(const unsigned char *p, size_t lim)
{
	size_t	len;

	if (lim < WAL_HEADER || p[6] < WAL_FULL || p[6] > WAL_LAST)
		return false;
	len = p[4] | (size_t)p[5] << 8;
	return WAL_HEADER + len <= lim && wal_crc_ok(p, len);
}

/*
 * The header at pos ends the log's records for RocksDB (zeroed, or a
 * length past the end): does a whole record follow?  Then records were
 * lost that had been written whole.  It may start anywhere in the rest of
 * this block, and at the start of any later one.  Also true when the
 * bytes to the end pass the checksum of the header at pos: then the record
 * is whole and only its length is wrong.
 */
static bool
wal_whole_after(const unsigned char *p, size_t pos, size_t n)
{
	size_t	q, lim, blk_end = (pos / WAL_BLOCK + 1) * WAL_BLOCK;

	if (p[pos + 6] != WAL_ZERO && n - pos - WAL_HEADER <= 0xffff &&
	    wal_crc_ok(p + pos, n - pos - WAL_HEADER))
		return true;
	lim = blk_end < n ? blk_end : n;
	for (q = pos + WAL_HEADER; q + WAL_HEADER <= lim; q++)
		if (wal_whole_at(p + q, lim - q))
			return true;
	for (q = blk_end; q + WAL_HEADER <= n; q += WAL_BLOCK)
		if (wal_whole_at(p + q, (n - q < WAL_BLOCK ? n - q :
		    WAL_BLOCK)))
			return true;
	return false;
}

/*
 * After damage at pos: where the next whole record in its block starts,
 * or the next block.  (RocksDB drops the rest of the block; what follows
 * is counted here as what was lost.)
 */
static size_t
wal_resync(const unsigned char *p, size_t pos, size_t n)
{
	size_t	q, lim, blk_end = (pos / WAL_BLOCK + 1) * WAL_BLOCK;

	lim = blk_end < n ? blk_end : n;
	for (q = pos + 1; q + WAL_HEADER <= lim; q++)
		if (wal_whole_at(p + q, lim - q))
			return q;
	return blk_end;
}

/* The log ends at n inside a record begun at off. */
static void
wal_torn(struct wal_state *st, size_t off, size_t n)
{
	struct wal_report	*r = st->r;

	if (st->in_frag)
		off = st->frag_off;
	st->in_frag = false;
	if (r->damaged)
		return;
	r->torn = true;
	snprintf(r->torn_file, sizeof(r->torn_file), "%s", st->name);
	r->torn_offset = off;
	r->torn_bytes = n - off;
}

static void
wal_damage(struct wal_state *st, size_t off, size_t n, const char *why)
{
	struct wal_report	*r = st->r;

	if (r->damaged)
		return;
	r->damaged = true;
	snprintf(r->file, sizeof(r->file), "%s", st->name);
	r->offset = off;
	r->why = why;
	r->bytes_after = n - off;
}

/*
 * Read one log, p[0..n).  Before any damage, the first damage is noted;
 * after it (in this log or an earlier one), whole batches are counted: the
 * reading goes on at the next whole record.  A record that checks but is
 * out of place is passed over, as RocksDB's reader does.
 */
static void
wal_scan_log(struct wal_state *st, const unsigned char *p, size_t n)
{
	const char	*why;
	size_t		 pos = 0, blk_end, lim, len;
	int		 type;

	st->in_frag = st->any = st->compressed = false;
	while (pos < n) {
		blk_end = (pos / WAL_BLOCK + 1) * WAL_BLOCK;
		lim = blk_end < n ? blk_end : n;
		if (lim - pos < WAL_HEADER) {
			if (blk_end <= n) {
				pos = blk_end;		/* padding */
				continue;
			}
			wal_torn(st, pos, n);		/* a header cut short */
			return;
		}
		len = p[pos + 4] | (size_t)p[pos + 5] << 8;
		type = p[pos + 6];
		why = NULL;
		if ((type == WAL_ZERO && len == 0) ||
		    (pos + WAL_HEADER + len > lim && blk_end > n)) {
			if (!wal_whole_after(p, pos, n)) {
				wal_torn(st, pos, n);
				return;
			}
			why = type == WAL_ZERO && len == 0 ?
			    "zeroed record header before whole records" :
			    "record length past the end of the log before "
			    "whole records";
		} else if (pos + WAL_HEADER + len > lim)
			why = "bad record length";
		else if (!wal_crc_ok(p + pos, len))
			why = "checksum mismatch";
		else {
			/* it checks: whatever is wrong, the next one is next */
			why = wal_record(st, type, p + pos + WAL_HEADER, len,
			    pos);
			if (why != NULL)
				wal_damage(st, pos, n, why);
			pos += WAL_HEADER + len;
			continue;
		}
		wal_damage(st, pos, n, why);
		st->in_frag = false;
		pos = wal_resync(p, pos, n);
	}
	if (st->in_frag)
		wal_torn(st, n, n);
}

/* ------------------------------------------------------------------ */
/* Listing and reading the logs                                        */

/* "NNNNNN.log": its number, or false. */
static bool
wal_name_num(const char *name, uint64_t *num)
{
	size_t	 i, n = strlen(name);

	if (n < 5 || n >= WAL_NAME_MAX || strcmp(name + n - 4, ".log") != 0)
		return false;
	for (*num = 0, i = 0; i < n - 4; i++) {
		if (name[i] < '0' || name[i] > '9' || *num > UINT64_MAX / 10)
			return false;
		*num = *num * 10 + (uint64_t)(name[i] - '0');
	}
	return true;
}

static int
wal_cmp(const void *a, const void *b)
{
	const struct wal_file	*x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

/* The logs of the directory open at dfd, oldest first, into *out. */
static int
wal_list(int dfd, struct wal_file **out, size_t *count, char *errbuf,
    size_t errlen)
{
	struct wal_file	*v = NULL, *nv;
	struct dirent	*e;
	DIR		*d;
	size_t		 n = 0, cap = 0;
	uint64_t	 num;
	int		 fd;

	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		util_fmt(errbuf, errlen, "cannot list the database directory: "
		    "%s", strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (!wal_name_num(e->d_name, &num))
			continue;
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 8;
			if (cap > WAL_FILES_MAX ||
			    (nv = realloc(v, cap * sizeof(*v))) == NULL) {
				util_fmt(errbuf, errlen, "too many write-ahead "
				    "logs to read");
				free(v);
				closedir(d);
				return -1;
			}
			v = nv;
		}
		v[n].num = num;
		memcpy(v[n].name, e->d_name, strlen(e->d_name) + 1); /* fits */
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), wal_cmp);
	*out = v;
	*count = n;
	return 0;
}

/* Open log `name` of dfd for reading: a regular file, never a link. */
static int
wal_open(int dfd, const char *dbdir, const char *name, struct stat *st,
    char *errbuf, size_t errlen)
{
	int	fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, st) != 0) {
		util_fmt(errbuf, errlen,
		    "cannot read write-ahead log %s/%s: %s", dbdir, name,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		util_fmt(errbuf, errlen, "write-ahead log %s/%s is not a "
		    "regular file", dbdir, name);
		(void)close(fd);
		return -1;
	}
	return fd;
}

int
wal_scan(const char *dbdir, const char *rev_key, struct wal_report *r,
    char *errbuf, size_t errlen)
{
	struct wal_state	 st;
	struct wal_file		*v = NULL;
	struct stat		 sb;
	void			*m;
	size_t			 i, n = 0;
	bool			 before;
	int			 dfd, fd, rv = -1;

	memset(r, 0, sizeof(*r));
	memset(&st, 0, sizeof(st));
	st.r = r;
	st.key = rev_key;
	st.keylen = strlen(rev_key);
	if ((dfd = open(dbdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;		/* a new store */
		util_fmt(errbuf, errlen, "cannot open %s: %s", dbdir,
		    strerror(errno));
		return -1;
	}
	if (wal_list(dfd, &v, &n, errbuf, errlen) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((fd = wal_open(dfd, dbdir, v[i].name, &sb, errbuf,
		    errlen)) == -1)
			goto out;
		before = !r->damaged;
		r->files++;
		r->bytes += (uint64_t)sb.st_size;
		if (!before) {
			r->files_after++;
			r->bytes_after += (uint64_t)sb.st_size;
		}
		if (sb.st_size == 0) {
			(void)close(fd);
			continue;
		}
		m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd,
		    0);
		(void)close(fd);
		if (m == MAP_FAILED) {
			util_fmt(errbuf, errlen, "cannot read write-ahead log "
			    "%s/%s: %s", dbdir, v[i].name, strerror(errno));
			goto out;
		}
		st.name = v[i].name;
		wal_scan_log(&st, m, (size_t)sb.st_size);
		(void)munmap(m, (size_t)sb.st_size);
		if (st.nomem) {
			util_fmt(errbuf, errlen, "out of memory reading the "
			    "write-ahead logs");
			goto out;
		}
	}
	rv = 0;
out:
	free(st.frag);
	free(v);
	(void)close(dfd);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Keeping damaged logs                                                */

/* Copy log `name` of sdfd (dbdir) into ddfd as `dest`: new, 0600, synced. */
static int
wal_copy(int sdfd, const char *dbdir, const char *name, int ddfd,
    const char *dest, char *errbuf, size_t errlen)
{
	struct stat	 st;
	char		 buf[65536];
	ssize_t		 got = 0, put = 1, off;
	int		 in, out = -1, rv = -1;

	if ((in = wal_open(sdfd, dbdir, name, &st, errbuf, errlen)) == -1)
		return -1;
	if ((out = openat(ddfd, dest, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		util_fmt(errbuf, errlen, "cannot create %s: %s", dest,
		    strerror(errno));
		goto out;
	}
	errno = 0;
	while (put > 0 && (got = read(in, buf, sizeof(buf))) > 0)
		for (off = 0; put > 0 && off < got; off += put)
			put = write(out, buf + off, (size_t)(got - off));
	if (put > 0 && got == 0 && fsync(out) == 0)
		rv = 0;
	else {
		util_fmt(errbuf, errlen, "cannot copy %s to %s: %s", name, dest,
		    errno != 0 ? strerror(errno) : "short write");
		(void)unlinkat(ddfd, dest, 0);
	}
out:
	if (out != -1)
		(void)close(out);
	(void)close(in);
	return rv;
}

int
wal_keep(const char *dbdir, const char *name, const char *destdir,
    time_t when, char *kept, size_t keptlen, char *errbuf, size_t errlen)
{
	struct wal_file	*v = NULL;
	struct tm	 tm;
	char		 stamp[32], dest[WAL_NAME_MAX + 48];
	size_t		 i, n = 0, used = 0;
	uint64_t	 from;
	int		 sdfd, ddfd = -1, rv = -1;

	if (keptlen > 0)
		kept[0] = '\0';
	if (!wal_name_num(name, &from) || gmtime_r(&when, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0) {
		util_fmt(errbuf, errlen, "cannot name a copy of %s", name);
		return -1;
	}
	if ((sdfd = open(dbdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (ddfd = open(destdir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		util_fmt(errbuf, errlen, "cannot open %s: %s", sdfd == -1 ?
		    dbdir : destdir, strerror(errno));
		goto out;
	}
	if (wal_list(sdfd, &v, &n, errbuf, errlen) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i].num < from)
			continue;
		snprintf(dest, sizeof(dest), "lost-%s-%s", stamp, v[i].name);
		if (wal_copy(sdfd, dbdir, v[i].name, ddfd, dest, errbuf,
		    errlen) != 0)
			goto out;
		if (used < keptlen)
			used += (size_t)snprintf(kept + used, keptlen - used,
			    "%s%s/%s", used > 0 ? " " : "", destdir, dest);
	}
	if (fsync(ddfd) != 0) {
		util_fmt(errbuf, errlen, "cannot sync %s: %s", destdir,
		    strerror(errno));
		goto out;
	}
	rv = 0;
out:
	free(v);
	if (ddfd != -1)
		(void)close(ddfd);
	if (sdfd != -1)
		(void)close(sdfd);
	return rv;
}
