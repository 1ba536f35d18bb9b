/* SPDX-License-Identifier: MIT */
/*
 * Framing and msgpack for the Unix-socket protocol (doc/protocol.md), and
 * the bounds-checked msgpack cursor.  A frame's payload comes from an
 * untrusted peer, so it is walked first by the cursor, which knows every
 * msgpack format and here enforces the protocol's limits; only a payload
 * that passes is handed to msgpack-c, whose unpacker would otherwise
 * allocate whatever element count a header announces.  record.c reads its
 * on-disk msgpack with the same cursor, field by field, without msgpack-c,
 * and so does the store its change log (store_history.c).  The only memory
 * used here is msgpack-c's unpack zone and the caller's sbuffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"
#include "util.h"

static int
fail(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return -1;
}

/* ------------------------------------------------------------------ */
/* The cursor                                                          */

void
proto_cur_init(struct proto_cur *c, const void *buf, size_t len)
{
	c->pos = buf;
	c->end = len > 0 ? c->pos + len : c->pos;	/* buf may be NULL */
	c->error = NULL;
}

size_t
proto_cur_left(const struct proto_cur *c)
{
	return (size_t)(c->end - c->pos);
}

void
proto_cur_fail(struct proto_cur *c, const char *why)
{
	if (c->error == NULL)
		c->error = why;
}

/* Read an n-byte big-endian unsigned number (n <= 8). */
static uint64_t
cur_be(struct proto_cur *c, size_t n)
{
	uint64_t	v = 0;
	size_t		i;

	if (c->error != NULL)
		return 0;
	if (proto_cur_left(c) < n) {
		proto_cur_fail(c, "truncated");
		return 0;
	}
	for (i = 0; i < n; i++)
		v = (v << 8) | c->pos[i];
	c->pos += n;
	return v;
}

/* Step over n bytes; where they start, or NULL. */
static inline const unsigned char *
cur_take(struct proto_cur *c, uint64_t n)
{
	const unsigned char	*p = c->pos;

	if (c->error != NULL)
		return NULL;
	if (proto_cur_left(c) < n) {
		proto_cur_fail(c, "truncated");
		return NULL;
	}
	c->pos += n;
	return p;
}

/*
 * Every byte's type; 0xc1 is never used.  A table: the cursor asks it for
 * every value of every frame, and a chain of comparisons cost the walk
 * twice what the table does (callgrind, doc/performance.md).
 */
static const unsigned char type_table[256] = {
	[0x00 ... 0x7f] = PROTO_T_INT,		/* positive fixint */
	[0x80 ... 0x8f] = PROTO_T_MAP,
	[0x90 ... 0x9f] = PROTO_T_ARRAY,
	[0xa0 ... 0xbf] = PROTO_T_STR,
	[0xc0] = PROTO_T_NIL,
	[0xc1] = PROTO_T_NONE,
	[0xc2 ... 0xc3] = PROTO_T_BOOL,
	[0xc4 ... 0xc6] = PROTO_T_BIN,
	[0xc7 ... 0xc9] = PROTO_T_EXT,
	[0xca ... 0xcb] = PROTO_T_FLOAT,
	[0xcc ... 0xd3] = PROTO_T_INT,
	[0xd4 ... 0xd8] = PROTO_T_EXT,
	[0xd9 ... 0xdb] = PROTO_T_STR,
	[0xdc ... 0xdd] = PROTO_T_ARRAY,
	[0xde ... 0xdf] = PROTO_T_MAP,
	[0xe0 ... 0xff] = PROTO_T_INT,		/* negative fixint */
};

static inline enum proto_type
type_of(unsigned char b)
{
	return (enum proto_type)type_table[b];
}

enum proto_type
proto_cur_type(const struct proto_cur *c)
{
	if (c->error != NULL || c->pos == c->end)
		return PROTO_T_NONE;
	return type_of(*c->pos);
}

/* The next value's first byte, when it is of type t; -1 and why if not. */
static int
cur_head(struct proto_cur *c, enum proto_type t, const char *why)
{
	if (c->error != NULL)
		return -1;
	if (c->pos == c->end) {
		proto_cur_fail(c, "truncated");
		return -1;
	}
	if (type_of(*c->pos) != t) {
		proto_cur_fail(c, why);
		return -1;
	}
	return *c->pos++;
}

/* A map or array header's count, its first byte b already read. */
static uint64_t
cur_count(struct proto_cur *c, unsigned char b)
{
	if (b <= 0x9f)
		return b & 0x0f;		/* fixmap, fixarray */
	return cur_be(c, b == 0xdc || b == 0xde ? 2 : 4);
}

/* A str or bin length, its first byte b already read. */
static uint64_t
cur_len(struct proto_cur *c, unsigned char b)
{
	if (b >= 0xa0 && b <= 0xbf)
		return b & 0x1f;		/* fixstr */
	if (b >= 0xc4 && b <= 0xc6)
		return cur_be(c, (size_t)1 << (b - 0xc4));
	return cur_be(c, (size_t)1 << (b - 0xd9));
}

static uint64_t
cur_container(struct proto_cur *c, enum proto_type t, const char *why,
    uint64_t per)
{
	uint64_t	n;
	int		b;

	if ((b = cur_head(c, t, why)) == -1)
		return 0;
	n = cur_count(c, (unsigned char)b);
	if (c->error == NULL && n * per > proto_cur_left(c))
		proto_cur_fail(c, "too many elements");
	return c->error != NULL ? 0 : n;
}

uint64_t
proto_cur_map(struct proto_cur *c)
{
	return cur_container(c, PROTO_T_MAP, "not a map", 2);
}

uint64_t
proto_cur_array(struct proto_cur *c)
{
	return cur_container(c, PROTO_T_ARRAY, "not an array", 1);
}

static const void *
cur_bytes(struct proto_cur *c, enum proto_type t, const char *why,
    size_t *len)
{
	const void	*p;
	uint64_t	 n;
	int		 b;

	*len = 0;
	if ((b = cur_head(c, t, why)) == -1)
		return NULL;
	n = cur_len(c, (unsigned char)b);
	if ((p = cur_take(c, n)) == NULL)
		return NULL;
	*len = (size_t)n;
	return p;
}

const char *
proto_cur_str(struct proto_cur *c, size_t *len)
{
	return cur_bytes(c, PROTO_T_STR, "not a string", len);
}

const void *
proto_cur_bin(struct proto_cur *c, size_t *len)
{
	return cur_bytes(c, PROTO_T_BIN, "not bin", len);
}

/*
 * Any integer: its value in *u (two's complement for a negative one), and
 * whether it is negative; *big says that it is a uint 64 over INT64_MAX.
 */
static int
cur_integer(struct proto_cur *c, uint64_t *u, int *big)
{
	uint64_t	v;
	size_t		n;
	int		b;

	*u = 0;
	*big = 0;
	if ((b = cur_head(c, PROTO_T_INT, "not an integer")) == -1)
		return 0;
	if (b <= 0x7f)
		*u = (uint64_t)b;
	else if (b >= 0xe0)
		*u = (uint64_t)(int64_t)(int8_t)b;	/* negative fixint */
	else if (b <= 0xcf) {			/* uint 8 to 64 */
		*u = cur_be(c, (size_t)1 << (b - 0xcc));
		*big = *u > INT64_MAX;
		return 0;
	} else {				/* int 8 to 64: sign-extend */
		n = (size_t)1 << (b - 0xd0);
		v = cur_be(c, n);
		if (n < 8 && (v >> (8 * n - 1)) != 0)
			v |= UINT64_MAX << (8 * n);
		*u = v;
	}
	return (*u >> 63) != 0;
}

uint64_t
proto_cur_uint(struct proto_cur *c)
{
	uint64_t	u;
	int		big;

	if (cur_integer(c, &u, &big)) {
		proto_cur_fail(c, "negative integer");
		return 0;
	}
	return c->error != NULL ? 0 : u;
}

int64_t
proto_cur_int(struct proto_cur *c)
{
	uint64_t	u;
	int		big;

	(void)cur_integer(c, &u, &big);
	if (big) {
		proto_cur_fail(c, "integer out of range");
		return 0;
	}
	return c->error != NULL ? 0 : (int64_t)u;
}

int
proto_cur_nil(struct proto_cur *c)
{
	if (proto_cur_type(c) != PROTO_T_NIL)
		return 0;
	c->pos++;
	return 1;
}

static void	cur_value(struct proto_cur *, int, int, unsigned);

static int
is_str_byte(unsigned char b)
{
	return type_of(b) == PROTO_T_STR;
}

/*
 * An array of n elements or a map of n pairs, its header already consumed,
 * at nesting depth depth.  Every element takes at least one byte, so a count
 * the remaining bytes cannot hold is refused before looking further: msgpack-c
 * allocates the whole element vector up front.
 */
static void
cur_elements(struct proto_cur *c, uint64_t n, int is_map, int depth,
    int depth_max, unsigned flags)
{
	uint64_t	i, need;

	if (depth > depth_max) {
		proto_cur_fail(c, "too deep");
		return;
	}
	need = is_map ? 2 * n : n;
	if (((flags & PROTO_CUR_STRICT) && n > CERTD_MSGPACK_ITEMS_MAX) ||
	    need > proto_cur_left(c)) {
		proto_cur_fail(c, "too many elements");
		return;
	}
	for (i = 0; i < n && c->error == NULL; i++) {
		if (is_map && (flags & PROTO_CUR_STRICT)) {
			if (c->pos == c->end)
				proto_cur_fail(c, "truncated");
			else if (!is_str_byte(*c->pos))
				proto_cur_fail(c, "map key is not a string");
		}
		if (is_map)
			cur_value(c, depth, depth_max, flags);
		cur_value(c, depth, depth_max, flags);
	}
}

/* An ext value, its first byte b already read: type byte and data. */
static void
cur_ext(struct proto_cur *c, unsigned char b, unsigned flags)
{
	if (flags & PROTO_CUR_STRICT)
		proto_cur_fail(c, "ext types are not allowed");
	else if (b >= 0xd4)			/* fixext 1 to 16 */
		(void)cur_take(c, 1 + ((uint64_t)1 << (b - 0xd4)));
	else					/* ext 8, 16, 32 */
		(void)cur_take(c, 1 + cur_be(c, (size_t)1 << (b - 0xc7)));
}

/*
 * One value of any type at c, inside a container at depth depth (0 for the
 * top level).  Recursion is bounded by depth_max.
 */
static void
cur_value(struct proto_cur *c, int depth, int depth_max, unsigned flags)
{
	unsigned char	b;

	if (c->error != NULL)
		return;
	if (c->pos == c->end) {
		proto_cur_fail(c, "truncated");
		return;
	}
	b = *c->pos++;
	if (b <= 0x7f || b >= 0xe0)		/* fixint: the common cases */
		return;
	if (b >= 0xa0 && b <= 0xbf) {		/* fixstr */
		(void)cur_take(c, b & 0x1f);
		return;
	}
	switch (type_of(b)) {
	case PROTO_T_NIL:
	case PROTO_T_BOOL:
		return;
	case PROTO_T_INT:
		if (b >= 0xcc && b <= 0xd3)	/* not a fixint */
			(void)cur_take(c, (uint64_t)1 << ((b - 0xcc) & 3));
		return;
	case PROTO_T_FLOAT:
		(void)cur_take(c, b == 0xca ? 4 : 8);
		return;
	case PROTO_T_STR:
	case PROTO_T_BIN:
		(void)cur_take(c, cur_len(c, b));
		return;
	case PROTO_T_EXT:
		cur_ext(c, b, flags);
		return;
	case PROTO_T_ARRAY:
	case PROTO_T_MAP:
		cur_elements(c, cur_count(c, b), type_of(b) == PROTO_T_MAP,
		    depth + 1, depth_max, flags);
		return;
	case PROTO_T_NONE:
		break;
	}
	proto_cur_fail(c, "reserved byte 0xc1");
}

void
proto_cur_skip(struct proto_cur *c, int depth, unsigned flags)
{
	cur_value(c, 0, depth, flags);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */

int
proto_frame_peek(const unsigned char *buf, size_t avail, size_t max,
    size_t *len)
{
	size_t	n;

	if (avail < CERTD_FRAME_HEADER_LEN)
		return 0;
	n = util_be32_get(buf);
	if (n == 0)
		return -1;
	if (n > max)
		return -2;
	if (avail - CERTD_FRAME_HEADER_LEN < n)
		return 0;
	*len = n;
	return 1;
}

int
proto_check(const char *buf, size_t len, const char **reason)
{
	struct proto_cur	c;

	proto_cur_init(&c, buf, len);
	if (len == 0)
		proto_cur_fail(&c, "truncated");
	else if (proto_cur_type(&c) != PROTO_T_MAP)
		proto_cur_fail(&c, "not a map");
	proto_cur_skip(&c, CERTD_MSGPACK_DEPTH_MAX, PROTO_CUR_STRICT);
	if (proto_cur_left(&c) != 0)
		proto_cur_fail(&c, "trailing bytes");
	return c.error != NULL ? fail(reason, c.error) : 0;
}

int
proto_decode(const char *buf, size_t len, msgpack_unpacked *out,
    const char **reason)
{
	msgpack_unpack_return	rc;
	size_t			off = 0;
	const char		*why;

	if (proto_check(buf, len, reason) == -1) {
		msgpack_unpacked_destroy(out);
		return -1;
	}
	rc = msgpack_unpack_next(out, buf, len, &off);
	if (rc == MSGPACK_UNPACK_SUCCESS && off == len &&
	    out->data.type == MSGPACK_OBJECT_MAP)
		return 0;
	/* Only allocation can fail once the cursor has accepted the bytes. */
	why = rc == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" :
	    "rejected by msgpack";
	msgpack_unpacked_destroy(out);
	return fail(reason, why);
}

/* Duplicate keys: the first one wins. */
const msgpack_object *
proto_get(const msgpack_object *map, const char *key)
{
	const msgpack_object_kv	*kv;
	size_t			 keylen, i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	keylen = strlen(key);
	for (i = 0; i < map->via.map.size; i++) {
		kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == keylen &&
		    memcmp(kv->key.via.str.ptr, key, keylen) == 0)
			return &kv->val;
	}
	return NULL;
}

/*
 * The field under key when it has the given type: 1 with *o set, 0 when
 * absent or nil, -1 when of another type.  The typed getters below are
 * this lookup and the copy of the value.
 */
static int
get_typed(const msgpack_object *map, const char *key, msgpack_object_type type,
    const msgpack_object **o)
{
	*o = proto_get(map, key);
	if (*o == NULL || (*o)->type == MSGPACK_OBJECT_NIL)
		return 0;
	return (*o)->type == type ? 1 : -1;
}

int
proto_get_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object	*o;
	int			 r;

	/* msgpack-c types every non-negative integer as POSITIVE_INTEGER. */
	if ((r = get_typed(map, key, MSGPACK_OBJECT_POSITIVE_INTEGER, &o)) == 1)
		*out = o->via.u64;
	return r;
}

int
proto_get_int(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object	*o;

	switch (get_typed(map, key, MSGPACK_OBJECT_NEGATIVE_INTEGER, &o)) {
	case 0:
		return 0;
	case 1:
		*out = o->via.i64;
		return 1;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX)
		return -1;
	*out = (int64_t)o->via.u64;
	return 1;
}

int
proto_get_str(const msgpack_object *map, const char *key, const char **s,
    size_t *len)
{
	const msgpack_object	*o;
	int			 r;

	if ((r = get_typed(map, key, MSGPACK_OBJECT_STR, &o)) == 1) {
		*s = o->via.str.ptr;
		*len = o->via.str.size;
	}
	return r;
}

int
proto_get_bool(const msgpack_object *map, const char *key, int *out)
{
	const msgpack_object	*o;
	int			 r;

	if ((r = get_typed(map, key, MSGPACK_OBJECT_BOOLEAN, &o)) == 1)
		*out = o->via.boolean ? 1 : 0;
	return r;
}

int
proto_get_array(const msgpack_object *map, const char *key,
    const msgpack_object_array **out)
{
	const msgpack_object	*o;
	int			 r;

	if ((r = get_typed(map, key, MSGPACK_OBJECT_ARRAY, &o)) == 1)
		*out = &o->via.array;
	return r;
}

/*
 * The packer's write callback.  The pack helpers cannot report errors, so a
 * failed write poisons the buffer instead: its size drops below the header
 * length, every later write is refused, and proto_end fails.
 */
static int
sbuffer_write_checked(void *data, const char *buf, size_t len)
{
	msgpack_sbuffer	*sb = data;

	if (sb->size < CERTD_FRAME_HEADER_LEN)
		return -1;
	if (msgpack_sbuffer_write(sb, buf, len) != 0) {
		sb->size = 0;
		return -1;
	}
	return 0;
}

void
proto_begin(msgpack_sbuffer *sb, msgpack_packer *pk)
{
	static const char	zero[CERTD_FRAME_HEADER_LEN];

	msgpack_sbuffer_clear(sb);
	(void)msgpack_sbuffer_write(sb, zero, sizeof(zero));
	msgpack_packer_init(pk, sb, sbuffer_write_checked);
}

int
proto_end(msgpack_sbuffer *sb, size_t max)
{
	size_t	n;

	if (sb->size <= CERTD_FRAME_HEADER_LEN)
		return -1;	/* nothing packed, or a failed write */
	n = sb->size - CERTD_FRAME_HEADER_LEN;
	if (n > max || n > UINT32_MAX)
		return -1;
	util_be32_put(sb->data, (uint32_t)n);
	return 0;
}

void
proto_pack_cstr(msgpack_packer *pk, const char *s)
{
	if (s == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	proto_pack_strn(pk, s, strlen(s));
}

void
proto_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

void
proto_kv_str(msgpack_packer *pk, const char *key, const char *s)
{
	proto_pack_cstr(pk, key);
	proto_pack_cstr(pk, s);
}

void
proto_kv_strn(msgpack_packer *pk, const char *key, const char *s, size_t len)
{
	proto_pack_cstr(pk, key);
	proto_pack_strn(pk, s, len);
}

void
proto_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
	proto_pack_cstr(pk, key);
	msgpack_pack_uint64(pk, v);
}

void
proto_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
	proto_pack_cstr(pk, key);
	msgpack_pack_int64(pk, v);
}

void
proto_kv_bool(msgpack_packer *pk, const char *key, int v)
{
	proto_pack_cstr(pk, key);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

int
proto_error_frame(msgpack_sbuffer *sb, uint64_t id, int code,
    const char *msg, const char *field, const char *reason)
{
	msgpack_packer	pk;
	size_t		n = 2;

	if (field != NULL)
		n++;
	if (reason != NULL)
		n++;
	proto_begin(sb, &pk);
	msgpack_pack_map(&pk, 3);
	proto_kv_uint(&pk, "id", id);
	proto_kv_bool(&pk, "ok", 0);
	proto_pack_cstr(&pk, "error");
	msgpack_pack_map(&pk, n);
	proto_kv_int(&pk, "code", code);
	proto_kv_str(&pk, "msg", msg != NULL ? msg : "");
	if (field != NULL)
		proto_kv_str(&pk, "field", field);
	if (reason != NULL)
		proto_kv_str(&pk, "reason", reason);
	return proto_end(sb, CERTD_FRAME_MAX_DEFAULT);
}
