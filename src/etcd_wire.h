/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 POSTs, plain or TLS, on the event loop (etcd_wire.c): what
 * etcd.c sends etcd's JSON gateway through.  Private to src/etcd*.c.
 */
#ifndef CERTD_ETCD_WIRE_H
#define CERTD_ETCD_WIRE_H

#include <stddef.h>

#include "etcd.h"

struct event_base;
struct ewire;
struct ewire_xfer;


/* connect_ms to connect; total_ms for it all (0: none); idle_s silent. */
struct ewire_limits {
	long	connect_ms;
	long	total_ms;
	long	idle_s;
};

/*
 * A streamed answer's bytes as they come (return 0, or -1 to abort the
 * transfer); a transfer's end: status 0 when no HTTP answer came (why
 * says what curl saw), else the status and, unless streamed, the body.
 */
typedef int	(*ewire_data_cb)(const char *p, size_t len, void *arg);
typedef void	(*ewire_done_cb)(long status, const char *body, size_t len,
		    const char *why, void *arg);

struct ewire	*ewire_new(struct event_base *base,
		    const struct etcd_tls *tls, char *err, size_t errlen);
/* After every transfer ended or was cancelled. */
void		 ewire_free(struct ewire *w);
/*
 * POST len bytes of body to url (copied).  data NULL: the body is
 * collected for done.  NULL: no memory.  done runs once, from the loop,
 * unless the transfer is cancelled first.
 */
struct ewire_xfer *ewire_post(struct ewire *w, const char *url,
		    const char *body, size_t len,
		    const struct ewire_limits *lim, ewire_data_cb data,
		    ewire_done_cb done, void *arg);
/* Abandon x: done never runs. */
void		 ewire_cancel(struct ewire_xfer *x);

#endif
