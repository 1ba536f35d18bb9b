/* SPDX-License-Identifier: MIT */
/*
 * The Unix-socket listener and its connections: peer identity, permissions,
 * request dispatch onto the service, subscriptions through the hub.  The
 * wire format is proto.c's; the protocol is doc/protocol.md.
 */
#ifndef CERTD_CTL_H
#define CERTD_CTL_H

#include <stddef.h>

struct event_base;
struct config;
struct service;
struct hub;
struct ctl;

typedef void	(*ctl_drained_cb)(void *arg);

/*
 * Create the socket at path (replacing a stale one) and listen.  cfg is
 * borrowed (limits, ACL) and may be swapped with ctl_set_config.  Returns
 * NULL with a one-line reason in errbuf.
 */
struct ctl	*ctl_new(struct event_base *base, struct service *svc,
		    struct hub *hub, const struct config *cfg, const char *path,
		    char *errbuf, size_t errlen);

/*
 * Finish the admin jobs (backups) still queued, here and now, answering
 * them: for a daemon whose loop has stopped, before the store goes.
 * Accepts NULL.
 */
void		 ctl_stop_work(struct ctl *ctl);

/* Close every connection, remove the socket file.  Accepts NULL. */
void		 ctl_free(struct ctl *ctl);

/*
 * Swap in a reloaded config (limits, ACL).  Rights apply at once: a watch
 * whose team the peer may no longer read ends with an error frame
 * (hub_conn_recheck), and one of a peer that may no longer write its team
 * no longer binds.
 */
void		 ctl_set_config(struct ctl *ctl, const struct config *cfg);

/*
 * Stop accepting connections and reading requests; call cb once no request
 * waits for the store (at once if none).  Connections stay open, and their
 * answers keep being written, until ctl_free.
 */
void		 ctl_shutdown(struct ctl *ctl, ctl_drained_cb cb, void *arg);

/* Open connections; bytes queued to them and not yet written. */
size_t		 ctl_conns(const struct ctl *ctl);
size_t		 ctl_unsent(const struct ctl *ctl);

#endif
