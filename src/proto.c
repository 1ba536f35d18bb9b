/* SPDX-License-Identifier: MIT */
/*
 * Framing and msgpack for the Unix-socket protocol (doc/protocol.md).  A
 * frame's payload comes from an untrusted peer, so it is walked first by a
 * bounds-checked cursor that knows every msgpack format and enforces the
 * protocol's limits; only a payload that passes is handed to msgpack-c,
 * whose unpacker would otherwise allocate whatever element count a header
 * announces.  The only memory used here is msgpack-c's unpack zone and the
 * caller's sbuffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"
#include "util.h"

/* A read position in a payload; p never passes end. */
struct cursor {
	const unsigned char	*p;
	const unsigned char	*end;
};

static int	check_value(struct cursor *, int, const char **);

static int
fail(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return -1;
}

static size_t
cursor_left(const struct cursor *c)
{
	return (size_t)(c->end - c->p);
}

/* Read an n-byte big-endian unsigned number (n <= 8). */
static int
cursor_be(struct cursor *c, size_t n, uint64_t *v, const char **reason)
{
	size_t	i;

	if (cursor_left(c) < n)
		return fail(reason, "truncated");
	*v = 0;
	for (i = 0; i < n; i++)
		*v = (*v << 8) | c->p[i];
	c->p += n;
	return 0;
}

static int
cursor_skip(struct cursor *c, uint64_t n, const char **reason)
{
	if (cursor_left(c) < n)
		return fail(reason, "truncated");
	c->p += n;
	return 0;
}

/* Skip a payload whose length is in the next lenlen bytes (str, bin). */
static int
cursor_skip_sized(struct cursor *c, size_t lenlen, const char **reason)
{
	uint64_t	n;

	if (cursor_be(c, lenlen, &n, reason) == -1)
		return -1;
	return cursor_skip(c, n, reason);
}

static int
is_str_byte(unsigned char b)
{
	return (b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb);
}

/*
 * An array of n elements or a map of n pairs, its header already consumed,
 * at nesting depth depth.  Every element takes at least one byte, so a count
 * the remaining bytes cannot hold is refused before looking further: msgpack-c
 * allocates the whole element vector up front.
 */
static int
check_container(struct cursor *c, uint64_t n, int is_map, int depth,
    const char **reason)
{
	uint64_t	i, need;

	if (depth > PROTO_DEPTH_MAX)
		return fail(reason, "too deep");
	need = is_map ? 2 * n : n;
	if (n > PROTO_ITEMS_MAX || need > cursor_left(c))
		return fail(reason, "too many elements");
	for (i = 0; i < n; i++) {
		if (is_map) {
			if (c->p == c->end)
				return fail(reason, "truncated");
			if (!is_str_byte(*c->p))
				return fail(reason, "map key is not a string");
			if (check_value(c, depth, reason) == -1)
				return -1;
		}
		if (check_value(c, depth, reason) == -1)
			return -1;
	}
	return 0;
}

/*
 * One value of any type at c, inside a container at depth depth (0 for the
 * top level).  Recursion is bounded by PROTO_DEPTH_MAX.
 */
static int
check_value(struct cursor *c, int depth, const char **reason)
{
	unsigned char	b;
	uint64_t	n;

	if (c->p == c->end)
		return fail(reason, "truncated");
	b = *c->p++;

	if (b <= 0x7f || b >= 0xe0)	/* positive, negative fixint */
		return 0;
	if ((b & 0xf0) == 0x80)			/* fixmap */
		return check_container(c, b & 0x0f, 1, depth + 1, reason);
	if ((b & 0xf0) == 0x90)			/* fixarray */
		return check_container(c, b & 0x0f, 0, depth + 1, reason);
	if ((b & 0xe0) == 0xa0)			/* fixstr */
		return cursor_skip(c, b & 0x1f, reason);

	switch (b) {
	case 0xc0:				/* nil */
	case 0xc2:				/* false */
	case 0xc3:				/* true */
		return 0;
	case 0xc1:
		return fail(reason, "reserved byte 0xc1");
	case 0xc4:				/* bin 8 */
	case 0xd9:				/* str 8 */
		return cursor_skip_sized(c, 1, reason);
	case 0xc5:				/* bin 16 */
	case 0xda:				/* str 16 */
		return cursor_skip_sized(c, 2, reason);
	case 0xc6:				/* bin 32 */
	case 0xdb:				/* str 32 */
		return cursor_skip_sized(c, 4, reason);
	case 0xc7: case 0xc8: case 0xc9:	/* ext 8, 16, 32 */
	case 0xd4: case 0xd5: case 0xd6:	/* fixext 1, 2, 4 */
	case 0xd7: case 0xd8:			/* fixext 8, 16 */
		return fail(reason, "ext types are not allowed");
	case 0xcc:				/* uint 8 */
	case 0xd0:				/* int 8 */
		return cursor_skip(c, 1, reason);
	case 0xcd:				/* uint 16 */
	case 0xd1:				/* int 16 */
		return cursor_skip(c, 2, reason);
	case 0xca:				/* float 32 */
	case 0xce:				/* uint 32 */
	case 0xd2:				/* int 32 */
		return cursor_skip(c, 4, reason);
	case 0xcb:				/* float 64 */
	case 0xcf:				/* uint 64 */
	case 0xd3:				/* int 64 */
		return cursor_skip(c, 8, reason);
	case 0xdc:				/* array 16 */
	case 0xdd:				/* array 32 */
		if (cursor_be(c, b == 0xdc ? 2 : 4, &n, reason) == -1)
			return -1;
		return check_container(c, n, 0, depth + 1, reason);
	case 0xde:				/* map 16 */
	case 0xdf:				/* map 32 */
		if (cursor_be(c, b == 0xde ? 2 : 4, &n, reason) == -1)
			return -1;
		return check_container(c, n, 1, depth + 1, reason);
	}
	/* Every byte value is handled above. */
	return fail(reason, "unknown type");
}

int
proto_frame_peek(const unsigned char *buf, size_t avail, size_t max,
    size_t *len)
{
	size_t	n;

	if (avail < PROTO_HEADER_LEN)
		return 0;
	n = util_be32_get(buf);
	if (n == 0)
		return -1;
	if (n > max)
		return -2;
	if (avail - PROTO_HEADER_LEN < n)
		return 0;
	*len = n;
	return 1;
}

int
proto_check(const char *buf, size_t len, const char **reason)
{
	struct cursor	c;
	unsigned char	b;

	if (len == 0)
		return fail(reason, "truncated");
	c.p = (const unsigned char *)buf;
	c.end = c.p + len;
	b = *c.p;
	if ((b & 0xf0) != 0x80 && b != 0xde && b != 0xdf)
		return fail(reason, "not a map");
	if (check_value(&c, 0, reason) == -1)
		return -1;
	if (c.p != c.end)
		return fail(reason, "trailing bytes");
	return 0;
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

/* The field's value, or NULL when absent or nil. */
static const msgpack_object *
get_present(const msgpack_object *map, const char *key)
{
	const msgpack_object	*o;

	o = proto_get(map, key);
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return NULL;
	return o;
}

int
proto_get_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object	*o;

	if ((o = get_present(map, key)) == NULL)
		return 0;
	/* msgpack-c types every non-negative integer as POSITIVE_INTEGER. */
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 1;
}

int
proto_get_int(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object	*o;

	if ((o = get_present(map, key)) == NULL)
		return 0;
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return -1;
		*out = (int64_t)o->via.u64;
		return 1;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = o->via.i64;
		return 1;
	default:
		return -1;
	}
}

int
proto_get_str(const msgpack_object *map, const char *key, const char **s,
    size_t *len)
{
	const msgpack_object	*o;

	if ((o = get_present(map, key)) == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_STR)
		return -1;
	*s = o->via.str.ptr;
	*len = o->via.str.size;
	return 1;
}

int
proto_get_bool(const msgpack_object *map, const char *key, int *out)
{
	const msgpack_object	*o;

	if ((o = get_present(map, key)) == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return -1;
	*out = o->via.boolean ? 1 : 0;
	return 1;
}

int
proto_get_array(const msgpack_object *map, const char *key,
    const msgpack_object_array **out)
{
	const msgpack_object	*o;

	if ((o = get_present(map, key)) == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	*out = &o->via.array;
	return 1;
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

	if (sb->size < PROTO_HEADER_LEN)
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
	static const char	zero[PROTO_HEADER_LEN];

	msgpack_sbuffer_clear(sb);
	(void)msgpack_sbuffer_write(sb, zero, sizeof(zero));
	msgpack_packer_init(pk, sb, sbuffer_write_checked);
}

int
proto_end(msgpack_sbuffer *sb, size_t max)
{
	size_t	n;

	if (sb->size <= PROTO_HEADER_LEN)
		return -1;	/* nothing packed, or a failed write */
	n = sb->size - PROTO_HEADER_LEN;
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
	return proto_end(sb, PROTO_FRAME_MAX_DEFAULT);
}
