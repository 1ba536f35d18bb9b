/* SPDX-License-Identifier: MIT */
/*
 * sockpeer: a scriptable peer of certd's Unix socket for the integration
 * tests, including peers that misbehave on purpose.
 *
 *	sockpeer [-n FRAMES] [-t MS] [-s] SOCKET ITEM...
 *
 * Each ITEM is sent in order: a JSON object (sent as one msgpack map frame),
 * @FILE (the JSON object in FILE, for frames too large for an argument),
 * raw:HEX (bytes as they are), junk:N (N pseudo-random bytes).  Then frames
 * are read until FRAMES were printed (default: one per JSON item) or MS
 * milliseconds (default 3000) passed; each is printed as a JSON line.  "EOF"
 * is printed when certd closed the connection.  With -s the peer then stays
 * connected without reading until killed (a stuck subscriber).
 *
 * JSON is read with yajl_tree (through jtree.c) and printed with yajl_gen,
 * compact and with keys sorted, as the jansson version read and printed it
 * (the scripts match its lines byte for byte).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "json.h"

#include "jtree.h"
#include "proto.h"

/* One member of a map being printed: its key cut at a NUL, as jansson had it. */
struct kv {
	char			*key;
	const msgpack_object	*val;
};

/* Whether i is the first member of object v under its key. */
static int
first_of_key(yajl_val v, size_t i)
{
	size_t	j;

	for (j = 0; j < i; j++)
		if (strcmp(v->u.object.keys[j], v->u.object.keys[i]) == 0)
			return 0;
	return 1;
}

/* The value under member i's key: the last one when it repeats, as in jansson. */
static yajl_val
last_of_key(yajl_val v, size_t i)
{
	size_t	j = v->u.object.len;

	while (--j > i)
		if (strcmp(v->u.object.keys[j], v->u.object.keys[i]) == 0)
			break;
	return v->u.object.values[j];
}

/* A repeated key is packed once, in its first place, with its last value. */
static void
pack_json(msgpack_packer *pk, yajl_val v)
{
	long long	ll;
	double		d;
	size_t		i, n;
	int		is_int;

	switch (v->type) {
	case yajl_t_object:
		for (i = n = 0; i < v->u.object.len; i++)
			n += first_of_key(v, i);
		msgpack_pack_map(pk, n);
		for (i = 0; i < v->u.object.len; i++) {
			if (!first_of_key(v, i))
				continue;
			proto_pack_cstr(pk, v->u.object.keys[i]);
			pack_json(pk, last_of_key(v, i));
		}
		break;
	case yajl_t_array:
		msgpack_pack_array(pk, v->u.array.len);
		for (i = 0; i < v->u.array.len; i++)
			pack_json(pk, v->u.array.values[i]);
		break;
	case yajl_t_string:
		proto_pack_strn(pk, v->u.string, strlen(v->u.string));
		break;
	case yajl_t_number:
		/* jtree_parse refused what is out of range */
		(void)jtree_number(v, &is_int, &ll, &d);
		if (!is_int)
			msgpack_pack_double(pk, d);
		else if (ll >= 0)
			msgpack_pack_uint64(pk, (uint64_t)ll);
		else
			msgpack_pack_int64(pk, ll);
		break;
	case yajl_t_true:
		msgpack_pack_true(pk);
		break;
	case yajl_t_false:
		msgpack_pack_false(pk);
		break;
	default:
		msgpack_pack_nil(pk);
		break;
	}
}

/* Whether jansson made a value of o: not of a string that is not UTF-8. */
static int
printable(const msgpack_object *o)
{
	return o->type != MSGPACK_OBJECT_STR ||
	    json_utf8_ok(o->via.str.ptr, o->via.str.size);
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

/*
 * Print o as json_dumps(JSON_COMPACT | JSON_SORT_KEYS) printed what the
 * jansson version built of it: keys sorted, a key repeated keeping its last
 * value, members and elements that jansson could not hold (a string or key
 * that is not UTF-8) left out, floats and binary as null.  proto_decode let
 * only string keys through.
 */
static yajl_gen_status
gen_msgpack(yajl_gen g, const msgpack_object *o)
{
	struct kv	*kv;
	yajl_gen_status	 st;
	uint32_t	 i, j, n = 0;

	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		if ((kv = calloc(o->via.map.size + 1, sizeof(*kv))) == NULL)
			return yajl_gen_in_error_state;
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object	*k = &o->via.map.ptr[i].key;
			const msgpack_object	*val = &o->via.map.ptr[i].val;
			char			*key;

			key = strndup(k->via.str.ptr, k->via.str.size);
			if (key == NULL || !printable(val) ||
			    !json_utf8_ok(key, strlen(key))) {
				free(key);
				continue;
			}
			for (j = 0; j < n && strcmp(kv[j].key, key) != 0; j++)
				;
			if (j < n)
				free(key);
			else
				kv[n++].key = key;
			kv[j].val = val;
		}
		qsort(kv, n, sizeof(*kv), kv_cmp);
		st = yajl_gen_map_open(g);
		for (j = 0; j < n && st == yajl_gen_status_ok; j++) {
			st = yajl_gen_string(g, (unsigned char *)kv[j].key,
			    strlen(kv[j].key));
			if (st == yajl_gen_status_ok)
				st = gen_msgpack(g, kv[j].val);
		}
		for (j = 0; j < n; j++)
			free(kv[j].key);
		free(kv);
		return st != yajl_gen_status_ok ? st : yajl_gen_map_close(g);
	case MSGPACK_OBJECT_ARRAY:
		st = yajl_gen_array_open(g);
		for (i = 0; i < o->via.array.size && st == yajl_gen_status_ok; i++)
			if (printable(&o->via.array.ptr[i]))
				st = gen_msgpack(g, &o->via.array.ptr[i]);
		return st != yajl_gen_status_ok ? st : yajl_gen_array_close(g);
	case MSGPACK_OBJECT_STR:
		return yajl_gen_string(g, (const unsigned char *)o->via.str.ptr,
		    o->via.str.size);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return yajl_gen_integer(g, (long long)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return yajl_gen_integer(g, o->via.i64);
	case MSGPACK_OBJECT_BOOLEAN:
		return yajl_gen_bool(g, o->via.boolean);
	default:
		return yajl_gen_null(g);
	}
}

static int
send_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	static unsigned char	 buf[8 * 1024 * 1024];
	size_t			 have = 0, len;
	long			 deadline, wait_ms = 3000;
	int			 fd, ch, want = -1, printed = 0, stuck = 0, i;
	int			 json_items = 0;
	unsigned		 seed = 12345;

	while ((ch = getopt(argc, argv, "n:t:s")) != -1) {
		switch (ch) {
		case 'n':
			want = atoi(optarg);
			break;
		case 't':
			wait_ms = atol(optarg);
			break;
		case 's':
			stuck = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: sockpeer [-n N] [-t MS] [-s] SOCKET ITEM...\n");
		return 2;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[optind]);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		printf("CONNECT-FAILED %s\n", strerror(errno));
		return 1;
	}
	msgpack_sbuffer_init(&sb);
	for (i = optind + 1; i < argc; i++) {
		const char	*item = argv[i];

		if (strncmp(item, "raw:", 4) == 0) {
			size_t		 n = strlen(item + 4) / 2, j;
			unsigned char	*raw = malloc(n + 1);

			for (j = 0; j < n; j++)
				sscanf(item + 4 + 2 * j, "%2hhx", &raw[j]);
			if (send_all(fd, raw, n) != 0)
				printf("SEND-FAILED\n");
			free(raw);
		} else if (strncmp(item, "junk:", 5) == 0) {
			size_t		 n = strtoul(item + 5, NULL, 10), j;
			unsigned char	*raw = malloc(n);

			for (j = 0; j < n; j++) {
				seed = seed * 1103515245u + 12345u;
				raw[j] = (unsigned char)(seed >> 16);
			}
			if (send_all(fd, raw, n) != 0)
				printf("SEND-FAILED\n");
			free(raw);
		} else {
			char		 err[1024], *text = NULL;
			yajl_val	 v = NULL;
			size_t		 tlen;

			if (item[0] != '@')
				v = jtree_parse(item, strlen(item),
				    JTREE_CONTAINER, err, sizeof(err));
			else if ((text = jtree_slurp(item + 1, &tlen)) ==
			    NULL)
				snprintf(err, sizeof(err), "unable to open %s: %s",
				    item + 1, strerror(errno));
			else
				v = jtree_parse(text, tlen, JTREE_CONTAINER,
				    err, sizeof(err));
			free(text);
			if (v == NULL) {
				fprintf(stderr, "sockpeer: bad JSON %s: %s\n", item,
				    err);
				return 2;
			}
			proto_begin(&sb, &pk);
			pack_json(&pk, v);
			yajl_tree_free(v);
			if (proto_end(&sb, (size_t)-1) != 0 ||
			    send_all(fd, sb.data, sb.size) != 0)
				printf("SEND-FAILED\n");
			json_items++;
		}
	}
	if (want < 0)
		want = json_items;
	deadline = now_ms() + wait_ms;
	while (printed < want && now_ms() < deadline) {
		struct pollfd	pfd = { fd, POLLIN, 0 };
		ssize_t		n;
		int		rc;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0) {
			printf("EOF\n");
			break;
		}
		have += (size_t)n;
		while ((rc = proto_frame_peek(buf, have, sizeof(buf), &len)) == 1) {
			msgpack_unpacked	 msg;
			const char		*reason;
			const unsigned char	*out;
			yajl_gen		 g;
			yajl_gen_status		 st;
			size_t			 olen;

			msgpack_unpacked_init(&msg);
			if (proto_decode((const char *)buf + CERTD_FRAME_HEADER_LEN, len,
			    &msg, &reason) != 0) {
				printf("BAD-FRAME %s\n", reason);
				return 1;
			}
			if ((g = yajl_gen_alloc(NULL)) == NULL) {
				fprintf(stderr, "sockpeer: out of memory\n");
				return 2;
			}
			yajl_gen_config(g, yajl_gen_beautify, 0);
			yajl_gen_config(g, yajl_gen_validate_utf8, 1);
			yajl_gen_config(g, yajl_gen_escape_solidus, 0);
			if ((st = gen_msgpack(g, &msg.data)) == yajl_gen_status_ok)
				st = yajl_gen_get_buf(g, &out, &olen);
			if (st == yajl_gen_status_ok)
				printf("%.*s\n", (int)olen, (const char *)out);
			else
				printf("BAD-JSON yajl_gen status %d\n", (int)st);
			fflush(stdout);
			yajl_gen_free(g);
			msgpack_unpacked_destroy(&msg);
			memmove(buf, buf + CERTD_FRAME_HEADER_LEN + len,
			    have - CERTD_FRAME_HEADER_LEN - len);
			have -= CERTD_FRAME_HEADER_LEN + len;
			printed++;
		}
	}
	fflush(stdout);
	msgpack_sbuffer_destroy(&sb);
	if (stuck)
		for (;;)
			pause();
	close(fd);
	return 0;
}
