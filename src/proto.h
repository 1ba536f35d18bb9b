/* SPDX-License-Identifier: MIT */
/*
 * The Unix-socket protocol's wire format (doc/protocol.md): length-prefixed
 * frames holding one msgpack map.  No I/O here: bytes in, checked objects
 * out; objects in, frame bytes out.  Built once, into libcertd_common, which
 * the daemon, certctl and libcertd link.
 *
 * Untrusted input is walked by a bounds-checked cursor before msgpack-c sees
 * it, so msgpack-c never allocates for counts the frame cannot hold.  The
 * cursor (proto_cur_*) is the one msgpack reader of the project: the
 * record and store decoders read their on-disk msgpack with it too.
 */
#ifndef CERTD_PROTO_H
#define CERTD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "certd/constants.h"

/*
 * A bounds-checked read cursor over msgpack bytes, in the manner of Knot
 * DNS's wire_ctx.  Every read checks what is left; one that cannot be
 * satisfied (too few bytes, another type than the one asked for) sets
 * error and returns a zero value (0, NULL), and once error is set every
 * later read does nothing and returns zero too.  So a caller reads a whole
 * structure and checks error once at the end, and in any loop whose count
 * came from the input.  Nothing is allocated: str and bin values point into
 * the buffer, which must outlive what is read from it.
 */
struct proto_cur {
	const unsigned char	*pos;	/* never past end */
	const unsigned char	*end;
	const char		*error;	/* NULL, or the first failure, static */
};

/* What proto_cur_type sees next. */
enum proto_type {
	PROTO_T_NONE,		/* the end, a failed cursor, or 0xc1 */
	PROTO_T_NIL,
	PROTO_T_BOOL,
	PROTO_T_INT,
	PROTO_T_FLOAT,
	PROTO_T_STR,
	PROTO_T_BIN,
	PROTO_T_ARRAY,
	PROTO_T_MAP,
	PROTO_T_EXT,
};

/*
 * proto_cur_skip's rules besides the depth: the protocol's (str map keys,
 * no ext types, at most CERTD_MSGPACK_ITEMS_MAX elements a container).  Without
 * it any msgpack is skipped.
 */
#define PROTO_CUR_STRICT	0x1

/* A cursor over buf[0..len). */
void		 proto_cur_init(struct proto_cur *c, const void *buf,
		    size_t len);

/* Bytes not read yet. */
size_t		 proto_cur_left(const struct proto_cur *c);

/* Fail the cursor with reason why (static), unless it failed already. */
void		 proto_cur_fail(struct proto_cur *c, const char *why);

/* The type of the next value, without reading it. */
enum proto_type	 proto_cur_type(const struct proto_cur *c);

/*
 * The header of a map (its number of pairs) or an array (of elements).  A
 * count the bytes left cannot hold, each element taking one byte at least,
 * is an error ("too many elements"), so a caller may allocate for it.
 */
uint64_t	 proto_cur_map(struct proto_cur *c);
uint64_t	 proto_cur_array(struct proto_cur *c);

/* A str or a bin: a pointer to its *len bytes, not NUL-terminated. */
const char	*proto_cur_str(struct proto_cur *c, size_t *len);
const void	*proto_cur_bin(struct proto_cur *c, size_t *len);

/*
 * An integer of any msgpack format, as msgpack-c reads them: uint of one
 * whose value is not negative, int of one that fits an int64_t.
 */
uint64_t	 proto_cur_uint(struct proto_cur *c);
int64_t		 proto_cur_int(struct proto_cur *c);

/* A nil: read and 1; anything else: 0, nothing read, no error. */
int		 proto_cur_nil(struct proto_cur *c);

/*
 * Skip one value of any type, containers in it nested at most depth deep
 * (0: no container), by the rules of flags (PROTO_CUR_STRICT or 0).
 */
void		 proto_cur_skip(struct proto_cur *c, int depth, unsigned flags);

/*
 * Look at the start of a byte stream.  Returns 1 with the payload length in
 * *len when a whole frame (header and payload) is in buf; 0 when more bytes
 * are needed; -1 when the header announces 0 bytes, -2 when it announces more
 * than max (decided from the header alone).
 */
int	proto_frame_peek(const unsigned char *buf, size_t avail, size_t max,
	    size_t *len);

/*
 * Check that buf[0..len) is exactly one msgpack map within the limits above
 * (depth, element counts bounded by remaining bytes and
 * CERTD_MSGPACK_ITEMS_MAX, string keys, no ext types).  Returns 0, or -1 with a static reason.
 */
int	proto_check(const char *buf, size_t len, const char **reason);

/*
 * proto_check, then unpack into *out (which the caller initialised with
 * msgpack_unpacked_init and destroys).  Returns 0 or -1 with a reason; on
 * failure *out is left empty.  msgpack-c does not copy str and bin bodies:
 * they point into buf, which must outlive *out.
 */
int	proto_decode(const char *buf, size_t len, msgpack_unpacked *out,
	    const char **reason);

/* Value of key in map (a MAP object), or NULL. */
const msgpack_object *proto_get(const msgpack_object *map, const char *key);

/*
 * Typed field access.  Each returns 1 when the field is present with the
 * right type (value in *out), 0 when it is absent or nil, -1 when it has
 * another type or (for integers) a value out of range; *out is only written
 * on 1.  Strings are not NUL-terminated: pointer and length into the frame
 * bytes the object was decoded from.  When a key repeats, the first wins.
 */
int	proto_get_uint(const msgpack_object *map, const char *key,
	    uint64_t *out);
int	proto_get_int(const msgpack_object *map, const char *key, int64_t *out);
int	proto_get_str(const msgpack_object *map, const char *key,
	    const char **s, size_t *len);
int	proto_get_bool(const msgpack_object *map, const char *key, int *out);
int	proto_get_array(const msgpack_object *map, const char *key,
	    const msgpack_object_array **out);

/*
 * Building frames: proto_begin resets sb and reserves the length header;
 * pack the map with pk (initialised on sb by proto_begin); proto_end fills
 * in the length.  Returns 0, or -1 when the payload is empty, exceeds max,
 * or a write into sb failed (out of memory) while packing.
 */
void	proto_begin(msgpack_sbuffer *sb, msgpack_packer *pk);
int	proto_end(msgpack_sbuffer *sb, size_t max);

/* Pack a NUL-terminated string (nil for NULL), or s[0..len). */
void	proto_pack_cstr(msgpack_packer *pk, const char *s);
void	proto_pack_strn(msgpack_packer *pk, const char *s, size_t len);

/* Pack "key": value pairs (the key a C string). */
void	proto_kv_str(msgpack_packer *pk, const char *key, const char *s);
void	proto_kv_strn(msgpack_packer *pk, const char *key, const char *s,
	    size_t len);
void	proto_kv_uint(msgpack_packer *pk, const char *key, uint64_t v);
void	proto_kv_int(msgpack_packer *pk, const char *key, int64_t v);
void	proto_kv_bool(msgpack_packer *pk, const char *key, int v);

/*
 * A whole error response frame {"id":id,"ok":false,"error":{"code":code,
 * "msg":msg[,"field":field][,"reason":reason]}} into sb; field and reason
 * are each left out when NULL.  Returns proto_end(sb,
 * CERTD_FRAME_MAX_DEFAULT).
 */
int	proto_error_frame(msgpack_sbuffer *sb, uint64_t id, int code,
	    const char *msg, const char *field, const char *reason);

#endif
