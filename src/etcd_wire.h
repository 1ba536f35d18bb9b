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
struct etcd_wire;
struct etcd_wire_xfer;


/* connect_ms to connect; total_ms for it all (0: none); idle_s silent. */
struct etcd_wire_limits {
	long	connect_ms;
	long	total_ms;
	long	idle_s;
};

/*
 * A streamed answer's bytes as they come (return 0, or -1 to abort the
 * transfer); a transfer's end: status 0 when no HTTP answer came (why
 * says what curl saw), else the status and, unless streamed, the body.
 */
typedef int	(*etcd_wire_data_cb)(const char *p, size_t len, void *arg);
typedef void	(*etcd_wire_done_cb)(long status, const char *body, size_t len,
		    const char *why, void *arg);

struct etcd_wire	*etcd_wire_new(struct event_base *base,
		    const struct etcd_tls *tls, char *err, size_t errlen);
/* After every transfer ended or was cancelled. */
void		 etcd_wire_free(struct etcd_wire *w);
/*
 * POST len bytes of body to url (copied).  data NULL: the body is
 * collected for done.  NULL: no memory.  done runs once, from the loop,
 * unless the transfer is cancelled first.
 */
struct etcd_wire_xfer *etcd_wire_post(struct etcd_wire *w, const char *url,
		    const char *body, size_t len,
		    const struct etcd_wire_limits *lim, etcd_wire_data_cb data,
		    etcd_wire_done_cb done, void *arg);
/* Abandon x: done never runs. */
void		 etcd_wire_cancel(struct etcd_wire_xfer *x);

#endif
