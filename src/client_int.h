/* SPDX-License-Identifier: MIT */
/*
 * libcertd's private header: the limits and helpers shared by its rooms,
 * client.c (the blocking client, its calls and the helpers below),
 * client_decode.c (responses into the structs of include/certd/certd.h)
 * and client_watch.c (the watch on the caller's event_base).  Not
 * installed; libcertd is built with -fvisibility=hidden, so none of this
 * is exported.
 */
#ifndef CERTD_CLIENT_INT_H
#define CERTD_CLIENT_INT_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include <certd/certd.h>

#include "proto.h"

#define CLIENT_ERR_MAX		512
/* Room for a request's map headers, keys and integers besides its strings. */
#define REQ_OVERHEAD		512

/* client.c */

/*
 * Make sb hold at least n bytes, wiping what it held (0 or
 * CERTD_E_NOMEM); client_sb_free wipes and frees it.
 */
int	client_sb_reserve(msgpack_sbuffer *sb, size_t n);
void	client_sb_free(msgpack_sbuffer *sb);
/* The address of the socket at path; -1 when path is empty or too long. */
int	client_make_sun(const char *path, struct sockaddr_un *sun,
	    socklen_t *sunlen);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t	client_now_ms(void);
/*
 * Start packing a request {"id":..,"op":op, + nfields more} into sb;
 * returns its id, taken from *next_id (never 0).
 */
uint64_t client_req_begin(msgpack_sbuffer *sb, msgpack_packer *pk,
	    uint64_t *next_id, const char *op, size_t nfields);
/* strlen, 0 for NULL. */
size_t	client_opt_len(const char *s);

/*
 * client_decode.c: each returns 0, CERTD_E_PROTO for a malformed object or
 * CERTD_E_NOMEM.  On success *out is the caller's, to free with the
 * matching certd_*_free (a string with free).
 */

/* A string from wire bytes, NUL-terminated. */
int	client_decode_strn(const char *s, size_t len, char **out);
/* A cert map; team from the map, else from team/team_len when given. */
int	client_decode_cert(const msgpack_object *m, const char *team,
	    size_t team_len, struct certd_cert **out);
/*
 * The results of list, subscribers and history: each kind is one table
 * (client_decode.c) of the public struct's fields and items.
 * client_decode_items stores a fresh struct of that kind at *out;
 * client_decode_list_free frees one (NULL is fine).
 */
enum client_list {
	CLIENT_LIST_CERTS,		/* struct certd_list */
	CLIENT_LIST_SUBSCRIBERS,	/* struct certd_subscriber_list */
	CLIENT_LIST_VERSIONS,		/* struct certd_version_list */
};
int	client_decode_items(const msgpack_object *m, enum client_list which,
	    void **out);
void	client_decode_list_free(void *l, enum client_list which);
/* The error of a failed response into buf; returns -code or CERTD_E_PROTO. */
int	client_decode_error(const msgpack_object *resp, char *buf, size_t len);

#endif
