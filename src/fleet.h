/* SPDX-License-Identifier: MIT */
/*
 * Fleet mode (doc/fleet.md): the certificates live in etcd, shared by
 * every certd of the fleet; this host's store is a mirror of them, kept by
 * one etcd watch, and every write is one etcd transaction.  Reads,
 * socket GETs and pushes are the store's, as in single-host mode, so they
 * go on while etcd is away; writes then fail with CERTD_ERR_CLUSTER.
 */
#ifndef CERTD_FLEET_H
#define CERTD_FLEET_H

#include <stdint.h>

#include "etcd.h"
#include "hub.h"
#include "record.h"
#include "service.h"

struct event_base;
struct store;
struct fleet;

struct fleet_options {
	const char	*etcd;		/* endpoints, "http://host:port,..." */
	const char	*key_path;	/* the fleet key: 32 bytes, 0600 */
	const char	*node;		/* this host's name */
	const char	*prefix;	/* of every key, "/certd" */
	const char	*keyring;	/* more keys that open: FILE[,FILE] */
	struct etcd_tls	 tls;		/* for https:// endpoints */
};

/*
 * A fleet member mirroring into store.  fleet_new reads the key; the
 * connection starts with fleet_start.  NULL with the reason in err.
 */
struct fleet	*fleet_new(struct event_base *base, struct store *store,
		    const struct fleet_options *o, char *err, size_t errlen);
/*
 * Check the fleet key against etcd's key ids and bring the mirror up to
 * the fleet, running the loop for at most timeout_s seconds.  A key that
 * is not the fleet's fails (-1, the reason in err).  etcd out of reach is
 * no failure: certd starts from its mirror and goes on trying.
 */
int		 fleet_start(struct fleet *f, unsigned timeout_s, char *err,
		    size_t errlen);
void		 fleet_free(struct fleet *f);

/*
 * Write rec (owned from now on) as one etcd transaction: a create when
 * rec->id is 0 (the fleet allocates the id), else an update of the
 * version at base_rev (another writer's version in between: applied on
 * top of it, both kept).  cb runs once the transaction committed and the
 * mirror applied it (with rec as written), or with the error.  Returns 0,
 * or an error and then cb is not called.
 */
int		 fleet_put(struct fleet *f, struct cert_record *rec,
		    uint64_t base_rev, service_done_cb cb, void *arg);
/* Delete certificate id of team (alias: its alias at base_rev).  As fleet_put. */
int		 fleet_delete(struct fleet *f, const char *team, uint64_t id,
		    const char *alias, uint64_t base_rev, service_done_cb cb,
		    void *arg);

/* The store applied revision: writes waiting for it complete. */
void		 fleet_applied(struct fleet *f, uint64_t revision);

/*
 * Publish hub's subscribers to the fleet (fleet_acks.c), before
 * fleet_start.
 */
void		 fleet_set_hub(struct fleet *f, struct hub *hub);
/*
 * The other hosts' subscribers of certificate id (alias) of team, as
 * last read from etcd: cb for each (node set), their number.
 */
size_t		 fleet_subscribers(const struct fleet *f, const char *team,
		    uint64_t id, const char *alias, hub_subscriber_cb cb,
		    void *arg);

/*
 * Rotate the fleet key to this node's [fleet] key (fleet_rekey.c, doc/
 * fleet.md): cb once every record is sealed with it and it is the only
 * key listed.  Returns 0, or an error (then cb is not called) with the
 * reason in fleet_rekey_why.
 */
int		 fleet_rekey(struct fleet *f, service_done_cb cb, void *arg);
/* Why a rotation was refused or failed (valid in its callback); or NULL. */
const char	*fleet_rekey_why(const struct fleet *f);
/* The id of this node's [fleet] key, 16 hex digits. */
const char	*fleet_key_id(const struct fleet *f);

/* For /healthz: "up", "syncing" or "disconnected", and since when. */
const char	*fleet_state(const struct fleet *f, int64_t *since);

#endif
