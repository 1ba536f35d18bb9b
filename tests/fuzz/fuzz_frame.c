/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the Unix-socket frame decoder.  Input: a byte stream as a
 * peer sends it.  proto_frame_peek looks at the header; when a whole frame
 * is there its payload goes through proto_decode, and the decoded map is
 * walked with every typed getter under the keys the socket ops (ctl_ops.c,
 * ctl_watch.c) and the client read, into nested maps and arrays as far as
 * CERTD_MSGPACK_DEPTH_MAX.
 */
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FRAME_MAX	(64 * 1024)

static const char *const keys[] = {
	"id", "op", "ok", "error", "code", "msg", "field", "reason", "event",
	"version", "name", "team", "cert_id", "watch", "since", "status",
	"detail", "page", "page_size", "alias", "certificate", "private_key",
	"certificate_type", "revision", "force", "dir", "ids", "key_id",
	"list", "aliases",
};

static void	walk(const msgpack_object *o, int depth);

static void
walk_map(const msgpack_object *map, int depth)
{
	const msgpack_object_array	*a;
	const char			*s;
	size_t				 i, len;
	uint64_t			 u;
	int64_t				 n;
	int				 b;
	volatile unsigned char		 sink;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		(void)proto_get_uint(map, keys[i], &u);
		(void)proto_get_int(map, keys[i], &n);
		(void)proto_get_bool(map, keys[i], &b);
		if (proto_get_str(map, keys[i], &s, &len) == 1 && len > 0)
			sink = (unsigned char)s[len - 1];
		if (proto_get_array(map, keys[i], &a) == 1 && a->size > 0)
			walk(&a->ptr[a->size - 1], depth + 1);
	}
	for (i = 0; i < map->via.map.size; i++)
		walk(&map->via.map.ptr[i].val, depth + 1);
	(void)sink;
}

static void
walk(const msgpack_object *o, int depth)
{
	size_t	i;

	/* The top map is at depth 1; proto_check allows CERTD_MSGPACK_DEPTH_MAX. */
	if ((o->type == MSGPACK_OBJECT_MAP || o->type == MSGPACK_OBJECT_ARRAY) &&
	    depth > CERTD_MSGPACK_DEPTH_MAX)
		__builtin_trap();
	if (o->type == MSGPACK_OBJECT_MAP)
		walk_map(o, depth);
	else if (o->type == MSGPACK_OBJECT_ARRAY)
		for (i = 0; i < o->via.array.size; i++)
			walk(&o->via.array.ptr[i], depth + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked	 up;
	const char		*reason = NULL;
	size_t			 len = 0;

	while (proto_frame_peek(data, size, FUZZ_FRAME_MAX, &len) == 1) {
		if (len == 0 || len > size - CERTD_FRAME_HEADER_LEN)
			__builtin_trap();	/* peek promised a whole frame */
		msgpack_unpacked_init(&up);
		if (proto_decode((const char *)data + CERTD_FRAME_HEADER_LEN, len,
		    &up, &reason) == 0) {
			if (up.data.type != MSGPACK_OBJECT_MAP)
				__builtin_trap();
			walk(&up.data, 1);
		} else if (reason == NULL)
			__builtin_trap();
		msgpack_unpacked_destroy(&up);
		/* As the connection's read loop: on to the next frame. */
		data += CERTD_FRAME_HEADER_LEN + len;
		size -= CERTD_FRAME_HEADER_LEN + len;
	}
	return 0;
}
