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
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto.h"

static void
pack_json(msgpack_packer *pk, json_t *v)
{
	const char	*key;
	json_t		*item;
	size_t		 i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(v));
		json_object_foreach(v, key, item) {
			proto_pack_cstr(pk, key);
			pack_json(pk, item);
		}
		break;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(v));
		json_array_foreach(v, i, item)
			pack_json(pk, item);
		break;
	case JSON_STRING:
		proto_pack_strn(pk, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		if (json_integer_value(v) >= 0)
			msgpack_pack_uint64(pk, (uint64_t)json_integer_value(v));
		else
			msgpack_pack_int64(pk, json_integer_value(v));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(v));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	default:
		msgpack_pack_nil(pk);
		break;
	}
}

static json_t *
to_json(const msgpack_object *o)
{
	json_t		*v;
	uint32_t	 i;

	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		v = json_object();
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			char *key = strndup(k->via.str.ptr, k->via.str.size);

			json_object_set_new(v, key, to_json(&o->via.map.ptr[i].val));
			free(key);
		}
		return v;
	case MSGPACK_OBJECT_ARRAY:
		v = json_array();
		for (i = 0; i < o->via.array.size; i++)
			json_array_append_new(v, to_json(&o->via.array.ptr[i]));
		return v;
	case MSGPACK_OBJECT_STR:
		return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer(o->via.i64);
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	default:
		return json_null();
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
			json_error_t	 err;
			json_t		*v = item[0] == '@' ?
			    json_load_file(item + 1, 0, &err) :
			    json_loads(item, 0, &err);

			if (v == NULL) {
				fprintf(stderr, "sockpeer: bad JSON %s: %s\n", item,
				    err.text);
				return 2;
			}
			proto_begin(&sb, &pk);
			pack_json(&pk, v);
			json_decref(v);
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
			json_t			*j;
			char			*s;

			msgpack_unpacked_init(&msg);
			if (proto_decode((const char *)buf + CERTD_FRAME_HEADER_LEN, len,
			    &msg, &reason) != 0) {
				printf("BAD-FRAME %s\n", reason);
				return 1;
			}
			j = to_json(&msg.data);
			s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
			printf("%s\n", s);
			fflush(stdout);
			free(s);
			json_decref(j);
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
