/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the socket protocol's framing and msgpack layer: round trips
 * through the pack helpers, every limit of doc/protocol.md, the typed
 * getters, the error frame, a deterministic garbage loop that must never
 * crash (run it under ASan), and the cursor's reads and failures.  Inputs
 * that are checked for overreads are copied into heap buffers of exactly
 * their length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

/* A payload under construction, for frames the pack helpers cannot make. */
struct raw {
	unsigned char	b[512];
	size_t		n;
};

static void
raw_put(struct raw *r, const void *p, size_t n)
{
	assert_true(r->n + n <= sizeof(r->b));
	memcpy(r->b + r->n, p, n);
	r->n += n;
}

/* Append a string literal, NUL bytes included. */
#define RAW(r, lit)	raw_put((r), (lit), sizeof(lit) - 1)

/* A table entry of literal bytes. */
struct lit {
	const char	*b;
	size_t		 n;
};
#define LIT(s)		{ (s), sizeof(s) - 1 }

static void
raw_byte(struct raw *r, unsigned char c)
{
	raw_put(r, &c, 1);
}

/* proto_check of a heap copy of exactly len bytes, so ASan sees overreads. */
static int
check_copy(const void *buf, size_t len, const char **reason)
{
	char	*copy;
	int	 rc;

	copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rc = proto_check(copy, len, reason);
	free(copy);
	return rc;
}

/* The same through proto_decode; the decoded object is discarded. */
static int
decode_copy(const void *buf, size_t len, const char **reason)
{
	msgpack_unpacked	 up;
	char			*copy;
	int			 rc;

	copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	msgpack_unpacked_init(&up);
	rc = proto_decode(copy, len, &up, reason);
	if (rc == 0)
		assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	else
		assert_int_equal(up.data.type, MSGPACK_OBJECT_NIL);
	msgpack_unpacked_destroy(&up);
	free(copy);
	return rc;
}

static void
assert_rejected(const struct raw *r, const char *want)
{
	const char	*reason = NULL;

	assert_int_equal(check_copy(r->b, r->n, &reason), -1);
	assert_non_null(reason);
	assert_string_equal(reason, want);
	reason = NULL;
	assert_int_equal(decode_copy(r->b, r->n, &reason), -1);
	assert_string_equal(reason, want);
}

static void
assert_accepted(const struct raw *r)
{
	const char	*reason = "unset";

	assert_int_equal(decode_copy(r->b, r->n, &reason), 0);
}

/* Start a payload {"a": ...}: the value is up to the caller. */
static void
raw_map_a(struct raw *r)
{
	r->n = 0;
	raw_byte(r, 0x81);
	raw_put(r, "\xa1" "a", 2);
}

/*
 * A request using every helper and every msgpack format the walker knows.
 * The strings are sized to hit str8/16/32 and bin8/16/32.
 */
static char	big[70000];

static void
pack_request(msgpack_sbuffer *sb, int small)
{
	msgpack_packer	pk;

	memset(big, 'x', sizeof(big));
	proto_begin(sb, &pk);
	msgpack_pack_map(&pk, small ? 13 : 20);
	proto_kv_uint(&pk, "id", 42);
	proto_kv_str(&pk, "op", "put");
	proto_kv_strn(&pk, "nul", "a\0b", 3);
	proto_kv_uint(&pk, "u8", 200);
	proto_kv_uint(&pk, "u16", 60000);
	proto_kv_uint(&pk, "u32", 4000000000u);
	proto_kv_uint(&pk, "u64", UINT64_MAX);
	proto_kv_int(&pk, "i8", -100);
	proto_kv_int(&pk, "i64", INT64_MIN);
	proto_kv_bool(&pk, "force", 1);
	proto_kv_bool(&pk, "no", 0);
	proto_pack_cstr(&pk, "nil");
	proto_pack_cstr(&pk, NULL);
	proto_pack_cstr(&pk, "ids");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_float(&pk, 1.5f);
	msgpack_pack_map(&pk, 1);
	proto_kv_int(&pk, "neg", -70000);
	if (small)
		goto done;
	proto_kv_strn(&pk, "s8", big, 200);
	proto_kv_strn(&pk, "s16", big, 300);
	proto_kv_strn(&pk, "s32", big, sizeof(big));
	proto_pack_cstr(&pk, "b8");
	msgpack_pack_bin_with_body(&pk, big, 10);
	proto_pack_cstr(&pk, "b16");
	msgpack_pack_bin_with_body(&pk, big, 1000);
	proto_pack_cstr(&pk, "b32");
	msgpack_pack_bin_with_body(&pk, big, sizeof(big));
	proto_pack_cstr(&pk, "d");
	msgpack_pack_double(&pk, -2.25);
done:
	assert_int_equal(proto_end(sb, CERTD_FRAME_MAX_DEFAULT), 0);
}

static void
test_round_trip(void **state)
{
	msgpack_sbuffer			 sb;
	msgpack_unpacked		 up;
	const msgpack_object_array	*arr;
	const msgpack_object		*o, *m;
	const char			*s, *reason = NULL;
	size_t				 len, slen;
	uint64_t			 u;
	int64_t				 i;
	int				 b;

	(void)state;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);
	pack_request(&sb, 0);

	assert_int_equal(proto_frame_peek((unsigned char *)sb.data, sb.size,
	    CERTD_FRAME_MAX_DEFAULT, &len), 1);
	assert_int_equal(len, sb.size - CERTD_FRAME_HEADER_LEN);
	assert_int_equal(proto_decode(sb.data + CERTD_FRAME_HEADER_LEN, len, &up,
	    &reason), 0);
	m = &up.data;

	assert_int_equal(proto_get_uint(m, "id", &u), 1);
	assert_int_equal(u, 42);
	assert_int_equal(proto_get_str(m, "op", &s, &slen), 1);
	assert_int_equal(slen, 3);
	assert_memory_equal(s, "put", 3);
	assert_int_equal(proto_get_str(m, "nul", &s, &slen), 1);
	assert_int_equal(slen, 3);
	assert_memory_equal(s, "a\0b", 3);
	assert_int_equal(proto_get_uint(m, "u8", &u), 1);
	assert_int_equal(u, 200);
	assert_int_equal(proto_get_uint(m, "u16", &u), 1);
	assert_int_equal(u, 60000);
	assert_int_equal(proto_get_uint(m, "u32", &u), 1);
	assert_int_equal(u, 4000000000u);
	assert_int_equal(proto_get_uint(m, "u64", &u), 1);
	assert_true(u == UINT64_MAX);
	assert_int_equal(proto_get_int(m, "i8", &i), 1);
	assert_int_equal(i, -100);
	assert_int_equal(proto_get_int(m, "i64", &i), 1);
	assert_true(i == INT64_MIN);
	assert_int_equal(proto_get_int(m, "u32", &i), 1);
	assert_int_equal(i, 4000000000);
	assert_int_equal(proto_get_bool(m, "force", &b), 1);
	assert_int_equal(b, 1);
	assert_int_equal(proto_get_bool(m, "no", &b), 1);
	assert_int_equal(b, 0);
	assert_non_null(o = proto_get(m, "nil"));
	assert_int_equal(o->type, MSGPACK_OBJECT_NIL);

	assert_int_equal(proto_get_array(m, "ids", &arr), 1);
	assert_int_equal(arr->size, 3);
	assert_int_equal(arr->ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(arr->ptr[1].type, MSGPACK_OBJECT_FLOAT32);
	assert_true(arr->ptr[1].via.f64 == 1.5);
	assert_int_equal(arr->ptr[2].type, MSGPACK_OBJECT_MAP);
	assert_int_equal(proto_get_int(&arr->ptr[2], "neg", &i), 1);
	assert_int_equal(i, -70000);

	assert_int_equal(proto_get_str(m, "s8", &s, &slen), 1);
	assert_int_equal(slen, 200);
	assert_int_equal(proto_get_str(m, "s16", &s, &slen), 1);
	assert_int_equal(slen, 300);
	assert_int_equal(proto_get_str(m, "s32", &s, &slen), 1);
	assert_int_equal(slen, sizeof(big));
	assert_memory_equal(s, big, sizeof(big));
	/* Zero copy: the string lives in the frame bytes. */
	assert_true(s > sb.data && s < sb.data + sb.size);
	assert_non_null(o = proto_get(m, "b32"));
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(o->via.bin.size, sizeof(big));
	assert_non_null(o = proto_get(m, "d"));
	assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
	assert_true(o->via.f64 == -2.25);

	/* A reused unpacked object is released by the next decode. */
	assert_int_equal(proto_decode(sb.data + CERTD_FRAME_HEADER_LEN, len, &up,
	    &reason), 0);
	assert_int_equal(proto_decode(sb.data, len, &up, &reason), -1);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_NIL);

	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_frame_peek(void **state)
{
	unsigned char	buf[16] = { 0 };
	size_t		len = 99;

	(void)state;
	assert_int_equal(proto_frame_peek(NULL, 0, 100, &len), 0);
	assert_int_equal(proto_frame_peek(buf, 3, 100, &len), 0);
	/* length 0 */
	assert_int_equal(proto_frame_peek(buf, 4, 100, &len), -1);
	/* max + 1, refused from the header alone */
	buf[3] = 101;
	assert_int_equal(proto_frame_peek(buf, 4, 100, &len), -2);
	memcpy(buf, "\x00\x10\x00\x01", 4);
	assert_int_equal(proto_frame_peek(buf, 4, CERTD_FRAME_MAX_DEFAULT,
	    &len), -2);
	memcpy(buf, "\xff\xff\xff\xff", 4);
	assert_int_equal(proto_frame_peek(buf, 4, CERTD_FRAME_MAX_DEFAULT,
	    &len), -2);
	/* exactly max: wait for the payload */
	memcpy(buf, "\x00\x10\x00\x00", 4);
	assert_int_equal(proto_frame_peek(buf, 4, CERTD_FRAME_MAX_DEFAULT,
	    &len), 0);
	assert_int_equal(len, 99);
	/* partial then whole, extra bytes belong to the next frame */
	memcpy(buf, "\x00\x00\x00\x03", 4);
	assert_int_equal(proto_frame_peek(buf, 6, 100, &len), 0);
	assert_int_equal(proto_frame_peek(buf, 7, 100, &len), 1);
	assert_int_equal(len, 3);
	len = 0;
	assert_int_equal(proto_frame_peek(buf, 16, 100, &len), 1);
	assert_int_equal(len, 3);
	buf[3] = 100;
	assert_int_equal(proto_frame_peek(buf, 16, 100, &len), 0);
}

static void
test_end_limits(void **state)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	size_t		len;

	(void)state;
	msgpack_sbuffer_init(&sb);
	proto_begin(&sb, &pk);
	assert_int_equal(proto_end(&sb, 100), -1);	/* empty payload */

	proto_begin(&sb, &pk);
	msgpack_pack_map(&pk, 1);
	proto_kv_strn(&pk, "a", big, 5);		/* 1+2+1+5 bytes */
	assert_int_equal(proto_end(&sb, 8), -1);
	assert_int_equal(proto_end(&sb, 9), 0);
	assert_int_equal(proto_frame_peek((unsigned char *)sb.data, sb.size, 9,
	    &len), 1);
	assert_int_equal(len, 9);

	/* proto_begin resets whatever was in the buffer. */
	proto_begin(&sb, &pk);
	msgpack_pack_map(&pk, 0);
	assert_int_equal(proto_end(&sb, 100), 0);
	assert_int_equal(sb.size, 5);
	assert_memory_equal(sb.data, "\0\0\0\1\x80", 5);

	/* White box: a failed write leaves the buffer poisoned. */
	proto_begin(&sb, &pk);
	sb.size = 0;
	msgpack_pack_map(&pk, 0);
	assert_int_equal(sb.size, 0);
	assert_int_equal(proto_end(&sb, 100), -1);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_not_a_map(void **state)
{
	static const struct lit	 tops[] = {
		LIT("\x90"), LIT("\x01"), LIT("\xa1" "a"), LIT("\xc0"),
		LIT("\xc3"), LIT("\xdc\x00\x00"), LIT("\xc1"),
		LIT("\xd4\x00\x00"), LIT("\xff"), LIT("\x91\x80"),
	};
	struct raw		 r;
	size_t			 i;
	const char		*reason = NULL;

	(void)state;
	for (i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		r.n = 0;
		raw_put(&r, tops[i].b, tops[i].n);
		assert_rejected(&r, "not a map");
	}
	assert_int_equal(proto_check("", 0, &reason), -1);
	assert_string_equal(reason, "truncated");
	/* The reason is optional. */
	assert_int_equal(proto_check("", 0, NULL), -1);
	r.n = 0;
	raw_byte(&r, 0x80);
	assert_accepted(&r);
	r.n = 0;
	RAW(&r, "\xde\x00\x00");
	assert_accepted(&r);
	r.n = 0;
	RAW(&r, "\xdf\x00\x00\x00\x00");
	assert_accepted(&r);
}

static void
test_trailing(void **state)
{
	struct raw	r;

	(void)state;
	r.n = 0;
	RAW(&r, "\x80\x00");
	assert_rejected(&r, "trailing bytes");
	raw_map_a(&r);
	raw_byte(&r, 0x01);
	raw_byte(&r, 0x80);			/* a second map */
	assert_rejected(&r, "trailing bytes");
}

static void
test_depth(void **state)
{
	struct raw	r;
	int		i;

	(void)state;
	/* {"a": [[...[0]...]]}: the top map is depth 1. */
	raw_map_a(&r);
	for (i = 2; i <= CERTD_MSGPACK_DEPTH_MAX; i++)
		raw_byte(&r, 0x91);
	raw_byte(&r, 0x00);
	assert_accepted(&r);
	raw_map_a(&r);
	for (i = 2; i <= CERTD_MSGPACK_DEPTH_MAX + 1; i++)
		raw_byte(&r, 0x91);
	raw_byte(&r, 0x00);
	assert_rejected(&r, "too deep");

	/* Empty containers count too. */
	raw_map_a(&r);
	for (i = 2; i < CERTD_MSGPACK_DEPTH_MAX; i++)
		raw_byte(&r, 0x91);
	raw_byte(&r, 0x80);
	assert_accepted(&r);
	raw_map_a(&r);
	for (i = 2; i <= CERTD_MSGPACK_DEPTH_MAX; i++)
		raw_byte(&r, 0x91);
	raw_byte(&r, 0x90);
	assert_rejected(&r, "too deep");

	/* Maps in maps. */
	r.n = 0;
	for (i = 1; i < CERTD_MSGPACK_DEPTH_MAX; i++)
		RAW(&r, "\x81\xa1" "a");
	raw_byte(&r, 0x80);
	assert_accepted(&r);
	r.n = 0;
	for (i = 1; i <= CERTD_MSGPACK_DEPTH_MAX; i++)
		RAW(&r, "\x81\xa1" "a");
	raw_byte(&r, 0x80);
	assert_rejected(&r, "too deep");

	/* Far deeper than msgpack-c's own stack of 32. */
	raw_map_a(&r);
	for (i = 0; i < 100; i++)
		raw_byte(&r, 0x91);
	raw_byte(&r, 0x00);
	assert_rejected(&r, "too deep");
}

static void
test_counts(void **state)
{
	struct raw	r;

	(void)state;
	/* More elements than bytes. */
	raw_map_a(&r);
	RAW(&r, "\xdc\xff\xff");
	assert_rejected(&r, "too many elements");
	raw_map_a(&r);
	RAW(&r, "\xdd\xff\xff\xff\xff");
	assert_rejected(&r, "too many elements");
	raw_map_a(&r);
	RAW(&r, "\x93\x01\x02");		/* fixarray of 3, 2 bytes */
	assert_rejected(&r, "too many elements");
	r.n = 0;
	RAW(&r, "\xdf\xff\xff\xff\xff");
	assert_rejected(&r, "too many elements");
	/* A map of n pairs needs 2n bytes: {"":0} x 3 fits in 6. */
	r.n = 0;
	RAW(&r, "\xde\x00\x03");
	RAW(&r, "\xa0\x00\xa0\x00\xa0");
	assert_rejected(&r, "too many elements");
	raw_byte(&r, 0x00);
	assert_accepted(&r);
	raw_map_a(&r);
	RAW(&r, "\x83\xa0\x00\xa0\x00\xa0");
	assert_rejected(&r, "too many elements");
	/* A truncated count itself. */
	raw_map_a(&r);
	RAW(&r, "\xdd\x00\x00");
	assert_rejected(&r, "truncated");
}

/* {"a": array32 of n zeros}, on the heap. */
static unsigned char *
big_array(uint32_t n, size_t *len)
{
	unsigned char	*b;

	*len = 3 + 5 + (size_t)n;
	b = calloc(1, *len);
	assert_non_null(b);
	memcpy(b, "\x81\xa1" "a\xdd", 4);
	b[4] = (unsigned char)(n >> 24);
	b[5] = (unsigned char)(n >> 16);
	b[6] = (unsigned char)(n >> 8);
	b[7] = (unsigned char)n;
	return b;
}

static void
test_items_max(void **state)
{
	msgpack_unpacked		 up;
	const msgpack_object_array	*arr;
	unsigned char			*b;
	const char			*reason = NULL;
	size_t				 len;

	(void)state;
	msgpack_unpacked_init(&up);
	b = big_array(CERTD_MSGPACK_ITEMS_MAX, &len);
	assert_int_equal(proto_decode((char *)b, len, &up, &reason), 0);
	assert_int_equal(proto_get_array(&up.data, "a", &arr), 1);
	assert_int_equal(arr->size, CERTD_MSGPACK_ITEMS_MAX);
	free(b);
	b = big_array(CERTD_MSGPACK_ITEMS_MAX + 1, &len);
	assert_int_equal(proto_decode((char *)b, len, &up, &reason), -1);
	assert_string_equal(reason, "too many elements");
	free(b);
	msgpack_unpacked_destroy(&up);
}

static void
test_keys(void **state)
{
	struct raw	r;

	(void)state;
	r.n = 0;
	RAW(&r, "\x81\x01\x01");
	assert_rejected(&r, "map key is not a string");
	r.n = 0;
	RAW(&r, "\x81\xc4\x01" "a\x01");		/* bin is not str */
	assert_rejected(&r, "map key is not a string");
	r.n = 0;
	RAW(&r, "\x81\xc0\x01");
	assert_rejected(&r, "map key is not a string");
	r.n = 0;
	RAW(&r, "\x81\x80\x01");
	assert_rejected(&r, "map key is not a string");
	/* In a nested map too, after a good key. */
	raw_map_a(&r);
	RAW(&r, "\x91\x82\xa1" "b\x00\xd0\x05\x00");
	assert_rejected(&r, "map key is not a string");
	/* Every str format is a key. */
	r.n = 0;
	RAW(&r, "\x83\xd9\x01" "a\x01\xda\x00\x01" "b\x02"
	    "\xdb\x00\x00\x00\x01" "c\x03");
	assert_accepted(&r);
}

static void
test_ext_and_c1(void **state)
{
	static const struct lit	ext[] = {
		LIT("\xc7\x01\x01" "a"), LIT("\xc8\x00\x01\x01" "a"),
		LIT("\xc9\x00\x00\x00\x01\x01" "a"), LIT("\xd4\x01" "a"),
		LIT("\xd5\x01" "ab"), LIT("\xd6\x01" "abcd"),
		LIT("\xd7\x01" "abcdefgh"), LIT("\xd8\x01" "abcdefghabcdefgh"),
		LIT("\xd4"),			/* even when truncated */
		LIT("\xc7\x00\xff"),		/* even when empty */
	};
	struct raw		r;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		raw_map_a(&r);
		raw_put(&r, ext[i].b, ext[i].n);
		assert_rejected(&r, "ext types are not allowed");
	}
	raw_map_a(&r);
	raw_byte(&r, 0xc1);
	assert_rejected(&r, "reserved byte 0xc1");
	raw_map_a(&r);
	RAW(&r, "\x92\x00\xc1");
	assert_rejected(&r, "reserved byte 0xc1");
}

static void
test_scalars(void **state)
{
	static const struct lit	ok[] = {
		LIT("\x00"), LIT("\x7f"), LIT("\xe0"), LIT("\xff"), LIT("\xc0"),
		LIT("\xc2"), LIT("\xc3"),
		LIT("\xcc\x01"), LIT("\xcd\x01\x02"),
		LIT("\xce\x01\x02\x03\x04"),
		LIT("\xcf\x01\x02\x03\x04\x05\x06\x07\x08"),
		LIT("\xd0\x80"), LIT("\xd1\x80\x00"),
		LIT("\xd2\x80\x00\x00\x00"),
		LIT("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
		LIT("\xca\x3f\xc0\x00\x00"),
		LIT("\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
		LIT("\xa0"), LIT("\xa3" "abc"), LIT("\xd9\x02" "ab"),
		LIT("\xda\x00\x01" "a"), LIT("\xdb\x00\x00\x00\x00"),
		LIT("\xc4\x00"), LIT("\xc5\x00\x01" "a"),
		LIT("\xc6\x00\x00\x00\x02" "ab"),
		LIT("\x90"), LIT("\xdc\x00\x01\x00"),
		LIT("\xdd\x00\x00\x00\x00"),
		LIT("\x80"), LIT("\xde\x00\x01\xa0\xc0"),
		LIT("\xdf\x00\x00\x00\x00"),
	};
	/* One byte short of what the header announces. */
	static const struct lit	truncated[] = {
		LIT("\xcc"), LIT("\xcd\x01"), LIT("\xce\x01\x02\x03"),
		LIT("\xcf\x01\x02\x03\x04\x05\x06\x07"), LIT("\xd0"),
		LIT("\xd1\x00"), LIT("\xd2\x00\x00\x00"),
		LIT("\xd3\x80"), LIT("\xca\x3f"), LIT("\xcb\x3f\xf8"),
		LIT("\xa3" "ab"), LIT("\xd9"), LIT("\xd9\x03" "ab"),
		LIT("\xda\x00\x02" "a"), LIT("\xdb\xff\xff\xff\xff" "a"),
		LIT("\xc4\x02" "a"), LIT("\xc5\x00"),
		LIT("\xc6\x00\x00\x00\x03" "ab"), LIT("\xdc\x00"),
		LIT("\xde"), LIT("\xdf\x00\x00\x00"),
		LIT("\x81\xa1" "a"),
	};
	struct raw		r;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		raw_map_a(&r);
		raw_put(&r, ok[i].b, ok[i].n);
		assert_accepted(&r);
	}
	for (i = 0; i < sizeof(truncated) / sizeof(truncated[0]); i++) {
		raw_map_a(&r);
		raw_put(&r, truncated[i].b, truncated[i].n);
		assert_rejected(&r, "truncated");
	}
}

/*
 * A cut that falls after a container's header leaves it announcing more
 * elements than the bytes left: refused as such before the cursor reads on.
 */
static void
assert_truncated(const char *reason)
{
	assert_non_null(reason);
	if (strcmp(reason, "too many elements") != 0)
		assert_string_equal(reason, "truncated");
}

static void
test_truncations(void **state)
{
	msgpack_sbuffer	 sb;
	const char	*reason;
	size_t		 n, len, flen;

	(void)state;
	msgpack_sbuffer_init(&sb);
	pack_request(&sb, 1);
	len = sb.size - CERTD_FRAME_HEADER_LEN;
	for (n = 0; n < len; n++) {
		reason = NULL;
		assert_int_equal(decode_copy(sb.data + CERTD_FRAME_HEADER_LEN, n,
		    &reason), -1);
		assert_truncated(reason);
		/* The stream is not complete either. */
		assert_int_equal(proto_frame_peek((unsigned char *)sb.data,
		    CERTD_FRAME_HEADER_LEN + n, CERTD_FRAME_MAX_DEFAULT, &flen), 0);
	}
	assert_int_equal(decode_copy(sb.data + CERTD_FRAME_HEADER_LEN, len, &reason),
	    0);

	/* The large request, at a sample of lengths (str/bin bodies). */
	pack_request(&sb, 0);
	len = sb.size - CERTD_FRAME_HEADER_LEN;
	for (n = 0; n < len; n += n < 512 ? 1 : 331) {
		reason = NULL;
		assert_int_equal(proto_check(sb.data + CERTD_FRAME_HEADER_LEN, n,
		    &reason), -1);
		assert_truncated(reason);
	}
	assert_int_equal(proto_check(sb.data + CERTD_FRAME_HEADER_LEN, len - 1,
	    &reason), -1);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_getters(void **state)
{
	static const unsigned char	 payload[] =
	    "\x8c"
	    "\xa1" "u" "\x05"
	    "\xa1" "p" "\xd0\x05"		/* int8, non-negative */
	    "\xa3" "big" "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\xa3" "max" "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"
	    "\xa1" "n" "\xfb"
	    "\xa1" "s" "\xa1" "x"
	    "\xa3" "bin" "\xc4\x01" "x"
	    "\xa1" "b" "\xc2"
	    "\xa3" "nil" "\xc0"
	    "\xa3" "arr" "\x90"
	    "\xa1" "m" "\x80"
	    "\xa1" "f" "\xca\x3f\xc0\x00\x00";
	msgpack_unpacked		 up;
	const msgpack_object		*m;
	const msgpack_object_array	*arr = NULL;
	const char			*s = NULL, *reason = NULL;
	size_t				 slen = 7;
	uint64_t			 u = 7;
	int64_t				 i = 7;
	int				 b = 7;

	(void)state;
	msgpack_unpacked_init(&up);
	assert_int_equal(proto_decode((const char *)payload,
	    sizeof(payload) - 1, &up, &reason), 0);
	m = &up.data;

	/* Absent, nil, wrong type: *out untouched. */
	assert_int_equal(proto_get_uint(m, "missing", &u), 0);
	assert_int_equal(proto_get_uint(m, "nil", &u), 0);
	assert_int_equal(proto_get_uint(m, "n", &u), -1);
	assert_int_equal(proto_get_uint(m, "s", &u), -1);
	assert_int_equal(proto_get_uint(m, "b", &u), -1);
	assert_int_equal(proto_get_uint(m, "f", &u), -1);
	assert_int_equal(proto_get_uint(m, "arr", &u), -1);
	assert_int_equal(u, 7);
	assert_int_equal(proto_get_uint(m, "p", &u), 1);
	assert_int_equal(u, 5);
	assert_int_equal(proto_get_uint(m, "big", &u), 1);
	assert_true(u == UINT64_MAX);

	assert_int_equal(proto_get_int(m, "big", &i), -1);
	assert_int_equal(proto_get_int(m, "s", &i), -1);
	assert_int_equal(proto_get_int(m, "f", &i), -1);
	assert_int_equal(proto_get_int(m, "nil", &i), 0);
	assert_int_equal(i, 7);
	assert_int_equal(proto_get_int(m, "n", &i), 1);
	assert_int_equal(i, -5);
	assert_int_equal(proto_get_int(m, "u", &i), 1);
	assert_int_equal(i, 5);
	assert_int_equal(proto_get_int(m, "max", &i), 1);
	assert_true(i == INT64_MAX);

	assert_int_equal(proto_get_str(m, "bin", &s, &slen), -1);
	assert_int_equal(proto_get_str(m, "u", &s, &slen), -1);
	assert_int_equal(proto_get_str(m, "nil", &s, &slen), 0);
	assert_null(s);
	assert_int_equal(slen, 7);
	assert_int_equal(proto_get_str(m, "s", &s, &slen), 1);
	assert_int_equal(slen, 1);
	assert_memory_equal(s, "x", 1);

	assert_int_equal(proto_get_bool(m, "u", &b), -1);
	assert_int_equal(proto_get_bool(m, "nil", &b), 0);
	assert_int_equal(b, 7);
	assert_int_equal(proto_get_bool(m, "b", &b), 1);
	assert_int_equal(b, 0);

	assert_int_equal(proto_get_array(m, "m", &arr), -1);
	assert_int_equal(proto_get_array(m, "s", &arr), -1);
	assert_int_equal(proto_get_array(m, "missing", &arr), 0);
	assert_null(arr);
	assert_int_equal(proto_get_array(m, "arr", &arr), 1);
	assert_int_equal(arr->size, 0);

	/* Keys compare by length, not prefix. */
	assert_null(proto_get(m, ""));
	assert_null(proto_get(m, "bi"));
	assert_null(proto_get(m, "bigger"));
	assert_non_null(proto_get(m, "big"));
	/* Not a map: nothing is found. */
	assert_null(proto_get(proto_get(m, "u"), "u"));
	assert_null(proto_get(NULL, "u"));
	assert_int_equal(proto_get_uint(proto_get(m, "arr"), "u", &u), 0);
	msgpack_unpacked_destroy(&up);
}

static void
test_duplicate_keys(void **state)
{
	static const char	 payload[] = "\x82\xa1" "k\x01\xa1" "k\x02";
	msgpack_unpacked	 up;
	const char		*reason;
	uint64_t		 u;

	(void)state;
	msgpack_unpacked_init(&up);
	assert_int_equal(proto_decode(payload, sizeof(payload) - 1, &up,
	    &reason), 0);
	assert_int_equal(proto_get_uint(&up.data, "k", &u), 1);
	assert_int_equal(u, 1);
	msgpack_unpacked_destroy(&up);
}

static void
test_error_frame(void **state)
{
	/* doc/protocol.md, "length 0", byte for byte. */
	static const char	 empty[] =
	    "\x83\xa2" "id\x00\xa2" "ok\xc2\xa5" "error"
	    "\x82\xa4" "code\xcd\x01\x90\xa3" "msg\xab" "empty frame";
	msgpack_sbuffer		 sb;
	msgpack_unpacked	 up;
	const msgpack_object	*err;
	const char		*s, *reason;
	size_t			 len, slen;
	uint64_t		 u;
	int64_t			 code;
	int			 ok;

	(void)state;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);

	assert_int_equal(proto_error_frame(&sb, 0, 400, "empty frame", NULL,
	    NULL), 0);
	assert_int_equal(proto_frame_peek((unsigned char *)sb.data, sb.size,
	    CERTD_FRAME_MAX_DEFAULT, &len), 1);
	assert_int_equal(len, sizeof(empty) - 1);
	assert_memory_equal(sb.data + CERTD_FRAME_HEADER_LEN, empty, len);

	assert_int_equal(proto_error_frame(&sb, 77, 400, "bad request",
	    "cert_id", "must be an unsigned integer"), 0);
	assert_int_equal(proto_frame_peek((unsigned char *)sb.data, sb.size,
	    CERTD_FRAME_MAX_DEFAULT, &len), 1);
	assert_int_equal(len + CERTD_FRAME_HEADER_LEN, sb.size);
	assert_int_equal(proto_decode(sb.data + CERTD_FRAME_HEADER_LEN, len, &up,
	    &reason), 0);
	assert_int_equal(up.data.via.map.size, 3);
	assert_int_equal(proto_get_uint(&up.data, "id", &u), 1);
	assert_int_equal(u, 77);
	assert_int_equal(proto_get_bool(&up.data, "ok", &ok), 1);
	assert_int_equal(ok, 0);
	assert_non_null(err = proto_get(&up.data, "error"));
	assert_int_equal(err->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(err->via.map.size, 4);
	assert_int_equal(proto_get_int(err, "code", &code), 1);
	assert_int_equal(code, 400);
	assert_int_equal(proto_get_str(err, "msg", &s, &slen), 1);
	assert_int_equal(slen, strlen("bad request"));
	assert_memory_equal(s, "bad request", slen);
	assert_int_equal(proto_get_str(err, "field", &s, &slen), 1);
	assert_memory_equal(s, "cert_id", slen);
	assert_int_equal(proto_get_str(err, "reason", &s, &slen), 1);
	assert_memory_equal(s, "must be an unsigned integer", slen);

	/* Field without reason. */
	assert_int_equal(proto_error_frame(&sb, 1, 404, "watch not found",
	    "watch", NULL), 0);
	assert_int_equal(proto_decode(sb.data + CERTD_FRAME_HEADER_LEN,
	    sb.size - CERTD_FRAME_HEADER_LEN, &up, &reason), 0);
	err = proto_get(&up.data, "error");
	assert_int_equal(err->via.map.size, 3);
	assert_int_equal(proto_get_str(err, "reason", &s, &slen), 0);
	assert_int_equal(proto_get_str(err, "field", &s, &slen), 1);

	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* What proto_check promises about an accepted object, checked again. */
static void
walk(const msgpack_object *o, int depth)
{
	uint32_t	i;

	switch (o->type) {
	case MSGPACK_OBJECT_ARRAY:
		assert_true(depth + 1 <= CERTD_MSGPACK_DEPTH_MAX);
		assert_true(o->via.array.size <= CERTD_MSGPACK_ITEMS_MAX);
		for (i = 0; i < o->via.array.size; i++)
			walk(&o->via.array.ptr[i], depth + 1);
		break;
	case MSGPACK_OBJECT_MAP:
		assert_true(depth + 1 <= CERTD_MSGPACK_DEPTH_MAX);
		assert_true(o->via.map.size <= CERTD_MSGPACK_ITEMS_MAX);
		for (i = 0; i < o->via.map.size; i++) {
			assert_int_equal(o->via.map.ptr[i].key.type,
			    MSGPACK_OBJECT_STR);
			walk(&o->via.map.ptr[i].val, depth + 1);
		}
		break;
	case MSGPACK_OBJECT_EXT:
		fail_msg("ext accepted");
		break;
	default:
		break;
	}
}

/*
 * For the reasons where the cursor stopped on the same path msgpack-c takes
 * (so msgpack-c only allocates for counts already checked), msgpack-c must
 * not see one whole object filling the buffer either.
 */
static void
differential(const char *buf, size_t len, const char *reason)
{
	msgpack_unpacked	up;
	msgpack_unpack_return	rc;
	size_t			off = 0;

	if (strcmp(reason, "truncated") != 0 &&
	    strcmp(reason, "trailing bytes") != 0 &&
	    strcmp(reason, "reserved byte 0xc1") != 0)
		return;
	msgpack_unpacked_init(&up);
	rc = msgpack_unpack_next(&up, buf, len, &off);
	assert_false(rc == MSGPACK_UNPACK_SUCCESS && off == len);
	msgpack_unpacked_destroy(&up);
}

/* Decode a heap copy; an accepted frame must satisfy every limit. */
static int
fuzz_one(const unsigned char *buf, size_t len, msgpack_unpacked *up)
{
	char		*copy;
	const char	*reason = NULL;
	size_t		 flen;
	int		 rc;

	copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	rc = proto_decode(copy, len, up, &reason);
	if (rc == 0)
		walk(&up->data, 0);
	else {
		/* msgpack-c never disagrees with the cursor. */
		assert_string_not_equal(reason, "rejected by msgpack");
		differential(copy, len, reason);
	}
	(void)proto_frame_peek((unsigned char *)copy, len, 64, &flen);
	free(copy);
	return rc;
}

static void
test_garbage(void **state)
{
	static const unsigned char	 starts[] = { 0x80, 0x81, 0x82, 0x8f,
	    0xde, 0xdf };
	msgpack_sbuffer			 sb;
	msgpack_unpacked		 up;
	unsigned char			 buf[256], *frame;
	uint64_t			 seed = 0x9e3779b97f4a7c15ull, r;
	size_t				 i, j, len, flen, nflip;
	unsigned			 accepted = 0;

	(void)state;
	msgpack_unpacked_init(&up);
	/* Random bytes, half of them starting like a map. */
	for (i = 0; i < 100000; i++) {
		len = 1 + xorshift(&seed) % 48;
		for (j = 0; j < len; j++)
			buf[j] = (unsigned char)xorshift(&seed);
		r = xorshift(&seed);
		if (r & 1)
			buf[0] = starts[(r >> 1) % sizeof(starts)];
		/* Small counts and lengths make deeper walks likelier. */
		if (r & 2)
			for (j = 1; j < len; j++)
				if (buf[j] >= 0xd9 && buf[j] <= 0xdf)
					buf[j] = 0x91;
		if (fuzz_one(buf, len, &up) == 0)
			accepted++;
	}
	assert_true(accepted > 100);

	/* Mutations of a valid frame. */
	msgpack_sbuffer_init(&sb);
	pack_request(&sb, 1);
	frame = (unsigned char *)sb.data + CERTD_FRAME_HEADER_LEN;
	flen = sb.size - CERTD_FRAME_HEADER_LEN;
	assert_true(flen <= sizeof(buf));
	for (i = 0; i < 100000; i++) {
		memcpy(buf, frame, flen);
		len = flen;
		nflip = 1 + xorshift(&seed) % 4;
		for (j = 0; j < nflip; j++) {
			r = xorshift(&seed);
			switch ((r >> 8) % 4) {
			case 0:
				buf[(r >> 16) % len] = (unsigned char)r;
				break;
			case 1:
				buf[(r >> 16) % len] ^= 1u << (r % 8);
				break;
			case 2:
				len = 1 + (r >> 16) % len;
				break;
			case 3:
				if (len < sizeof(buf))
					buf[len++] = (unsigned char)r;
				break;
			}
		}
		(void)fuzz_one(buf, len, &up);
	}
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&up);
}

/* A cursor over a heap copy of exactly len bytes, so ASan sees overreads. */
static void
cur_copy(struct proto_cur *c, char **copy, const void *buf, size_t len)
{
	*copy = malloc(len > 0 ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, buf, len);
	proto_cur_init(c, *copy, len);
}

/* Every typed read of the cursor, each integer format both ways. */
static void
test_cursor_reads(void **state)
{
	static const char	 in[] =
	    "\x86"					/* map of 6 */
	    "\xa1" "s" "\xd9\x03" "abc"			/* str 8 */
	    "\xa1" "b" "\xc4\x02" "\x00\x01"		/* bin 8 */
	    "\xa1" "u" "\x92" "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\xd0\x05"					/* uint 64, int 8 */
	    "\xa1" "i" "\x93" "\xe0" "\xd1\xff\x00" "\xd3\x80\0\0\0\0\0\0\0"
	    "\xa1" "n" "\xc0"
	    "\xa1" "x" "\x81\xa1" "k" "\xc7\x01\x05" "z";	/* ext 8 */
	struct proto_cur	 c;
	const char		*s;
	const unsigned char	*b;
	char			*copy;
	size_t			 len;

	(void)state;
	cur_copy(&c, &copy, in, sizeof(in) - 1);
	assert_int_equal(proto_cur_type(&c), PROTO_T_MAP);
	assert_int_equal(proto_cur_map(&c), 6);
	s = proto_cur_str(&c, &len);
	assert_int_equal(len, 1);
	assert_memory_equal(s, "s", 1);
	s = proto_cur_str(&c, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "abc", 3);
	(void)proto_cur_str(&c, &len);
	assert_int_equal(proto_cur_type(&c), PROTO_T_BIN);
	b = proto_cur_bin(&c, &len);
	assert_int_equal(len, 2);
	assert_int_equal(b[1], 1);
	(void)proto_cur_str(&c, &len);
	assert_int_equal(proto_cur_array(&c), 2);
	assert_true(proto_cur_uint(&c) == UINT64_MAX);
	assert_int_equal(proto_cur_uint(&c), 5);
	(void)proto_cur_str(&c, &len);
	assert_int_equal(proto_cur_array(&c), 3);
	assert_int_equal(proto_cur_int(&c), -32);
	assert_int_equal(proto_cur_int(&c), -256);
	assert_true(proto_cur_int(&c) == INT64_MIN);
	(void)proto_cur_str(&c, &len);
	assert_int_equal(proto_cur_nil(&c), 1);
	(void)proto_cur_str(&c, &len);
	assert_int_equal(proto_cur_nil(&c), 0);
	proto_cur_skip(&c, 1, 0);		/* ext is any msgpack */
	assert_null(c.error);
	assert_int_equal(proto_cur_left(&c), 0);
	free(copy);
}

/* A failed read sets error once, returns zeros, and so do all after it. */
static void
test_cursor_errors(void **state)
{
	struct proto_cur	 c;
	const char		*s;
	char			*copy;
	size_t			 len = 99;

	(void)state;
	cur_copy(&c, &copy, "\xa2" "ab" "\x01", 4);
	assert_int_equal(proto_cur_uint(&c), 0);
	assert_string_equal(c.error, "not an integer");
	s = proto_cur_str(&c, &len);	/* would succeed: the cursor failed */
	assert_null(s);
	assert_int_equal(len, 0);
	assert_int_equal(proto_cur_type(&c), PROTO_T_NONE);
	proto_cur_fail(&c, "later");
	assert_string_equal(c.error, "not an integer");
	free(copy);

	cur_copy(&c, &copy, "\xff", 1);		/* -1 */
	assert_int_equal(proto_cur_uint(&c), 0);
	assert_string_equal(c.error, "negative integer");
	free(copy);
	cur_copy(&c, &copy, "\xcf\x80\0\0\0\0\0\0\0", 9);	/* 2^63 */
	assert_int_equal(proto_cur_int(&c), 0);
	assert_string_equal(c.error, "integer out of range");
	free(copy);
	cur_copy(&c, &copy, "\xdb\0\0\0\x05" "abc", 8);	/* str 32 of 5 */
	assert_null(proto_cur_str(&c, &len));
	assert_string_equal(c.error, "truncated");
	free(copy);
	/* map 16 of 3 pairs in 4 bytes */
	cur_copy(&c, &copy, "\xde\0\x03" "\xa0\xc0\xa0\xc0", 7);
	assert_int_equal(proto_cur_map(&c), 0);
	assert_string_equal(c.error, "too many elements");
	free(copy);
	cur_copy(&c, &copy, "\x92\x91\x91\x90\xc0", 5);
	proto_cur_skip(&c, 2, 0);		/* three deep */
	assert_string_equal(c.error, "too deep");
	free(copy);
	cur_copy(&c, &copy, "\x81\x01\xc0", 3);
	proto_cur_skip(&c, 1, 0);		/* any key, without STRICT */
	assert_null(c.error);
	free(copy);
	cur_copy(&c, &copy, "\x81\x01\xc0", 3);
	proto_cur_skip(&c, 1, PROTO_CUR_STRICT);
	assert_string_equal(c.error, "map key is not a string");
	free(copy);
	cur_copy(&c, &copy, "\xc1", 1);
	proto_cur_skip(&c, 1, 0);
	assert_string_equal(c.error, "reserved byte 0xc1");
	free(copy);
	proto_cur_init(&c, NULL, 0);
	assert_int_equal(proto_cur_map(&c), 0);
	assert_string_equal(c.error, "truncated");
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_end_limits),
		cmocka_unit_test(test_not_a_map),
		cmocka_unit_test(test_trailing),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_items_max),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_ext_and_c1),
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_error_frame),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_cursor_reads),
		cmocka_unit_test(test_cursor_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
