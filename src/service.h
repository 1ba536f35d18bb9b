/* SPDX-License-Identifier: MIT */
/*
 * The one place where create, update, delete and rollback are decided:
 * field rules, merge of an update onto the stored record, certificate
 * validation, alias uniqueness and ids.  REST and the Unix socket map their
 * requests onto these calls and their results back; neither decides
 * anything itself.
 */
#ifndef CERTD_SERVICE_H
#define CERTD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct event_base;
struct hub;
struct store;
struct service;

/* A string field of a request; s == NULL means the field was omitted. */
struct service_field {
	const char	*s;
	size_t		 len;
};

/*
 * Longest `who` kept for the audit log: "cert:" and a client certificate's
 * subject of up to CERTD_TOKEN_SUBJECT_MAX bytes.
 */
#define SERVICE_WHO_MAX	1040

/*
 * Create (id == 0) or update (id != 0) of a certificate of `team`.  `who`
 * names the client for the audit log ("token:NAME", "cert:SUBJECT",
 * "uid:U,pid:P").
 */
struct service_precheck;
struct service_put_req {
	const char		*who;
	const char		*team;
	uint64_t		 id;
	struct service_field	 alias;
	struct service_field	 certificate;
	struct service_field	 private_key;
	struct service_field	 cert_type;
	/* The check of these certificate and key bytes, made already off the
	 * loop (service_precheck), or NULL. */
	const struct service_precheck *pre;
};

/*
 * Why a request was refused: field is a static string or NULL, reason a
 * static string, NULL, or buf (a certificate check's reason, which names
 * the certificate of the chain and the check, or a rule that states a
 * limit).
 */
#define SERVICE_WHY_MAX	400
struct service_why {
	const char	*field;
	const char	*reason;
	char		 buf[SERVICE_WHY_MAX];
};

/*
 * Completion of an accepted mutation, on the loop.  err is 0 or
 * CERTD_ERR_STORAGE (nothing was written).  rec is the record now current
 * (put) or the one deleted (delete), borrowed for the call.
 */
typedef void	(*service_done_cb)(int err, const struct cert_record *rec,
		    void *arg);

/* hub may be NULL (nothing is ever bound then). */
/* Validation failures by reason, in the order of the error table. */
#define SERVICE_REASONS	6
extern const char *const service_reason_names[SERVICE_REASONS];
uint64_t	 service_validation_failures(const struct service *svc,
		    int reason);

/* Fleet mode: writes go to the fleet (fleet.h) from now on. */
struct fleet;
void	service_set_fleet(struct service *svc, struct fleet *fleet);
/*
 * Fleet mode: the fleet's state (fleet_state), since when, and the
 * mirror's revision; NULL in single-host mode.
 */
const char *service_fleet_state(const struct service *svc, int64_t *since,
	    uint64_t *revision);

struct service	*service_new(struct event_base *base, struct store *store,
		    struct hub *hub);
/*
 * Complete, here and now, what waits for a later loop turn: for a daemon
 * whose loop has stopped, before the store goes.  From then on an update
 * that changes nothing is refused with CERTD_ERR_SHUTDOWN (the loop that
 * would complete it is gone); the others still go to the store.  Not to be
 * called from a completion.  service_free does it too.
 */
void		 service_stop(struct service *svc);
void		 service_free(struct service *svc);

/*
 * Create or update.  Returns a negative CERTD_ERR_* when the request is
 * refused (with *why filled where a field is to blame; cb is not called), or
 * 0 when accepted: cb then runs once, later, on the loop.  An update that
 * changes nothing writes nothing and completes with the current record.
 */
int	service_put(struct service *svc, const struct service_put_req *req,
	    service_done_cb cb, void *arg, struct service_why *why);

/*
 * The certificate check of a put that carries both a certificate and a
 * key (normal forms, then cert_check), made on any thread: it needs
 * nothing of the service's state.  The REST worker makes it on the decoded
 * body, so that GnuTLS's work stays off the loop; service_put then uses it
 * for exactly these bytes, in the order it would have checked them, and
 * checks the leaf's validity window again against its own clock.  NULL
 * when the request lacks one of the two (the check needs the stored
 * record then), or without memory: service_put checks on the loop.
 *
 * stored (service_pair_copy, on the loop, when the put was received; may
 * be NULL) is the certificate and key of the record the put updates: when
 * the put's normal forms are those bytes, nothing is checked off the loop
 * (service_put's check of unchanged bytes reuses the stored metadata).
 */
struct service_pair;
struct service_pair *service_pair_copy(struct service *svc, const char *team,
	    uint64_t id);
void	service_pair_free(struct service_pair *p);
struct service_precheck *service_precheck(const struct service_put_req *req,
	    const struct service_pair *stored);
void	service_precheck_free(struct service_precheck *pc);

/*
 * Delete.  As service_put.  A certificate bound by a live watch is refused
 * with CERTD_ERR_IN_USE unless force.
 */
int	service_delete(struct service *svc, const char *who, const char *team,
	    uint64_t id, int force, service_done_cb cb, void *arg,
	    struct service_why *why);

/*
 * Roll certificate id of team back to the content of its kept version
 * `revision`: that version's alias, type, certificate and key become a new
 * revision, through the same checks and commit path as an update.  In
 * order: CERTD_ERR_NOT_FOUND when the certificate does not exist (head
 * view), CERTD_ERR_NO_REVISION (why->field "revision") when its history
 * holds no such version, the certificate checks of cert_check at the
 * current time (an expired version is refused), CERTD_ERR_ALIAS_EXISTS
 * when another certificate took the version's alias meanwhile.  Content
 * identical to the current record writes nothing and completes with it,
 * as an unchanged update.  Otherwise as service_put.
 */
int	service_rollback(struct service *svc, const char *who,
	    const char *team, uint64_t id, uint64_t revision, service_done_cb cb,
	    void *arg, struct service_why *why);

/*
 * The kept versions of a committed certificate, newest first (see
 * store_history: records without their key, borrowed for the call; non-zero
 * from cb stops).  Returns 0, CERTD_ERR_NOT_FOUND when the certificate does
 * not exist, CERTD_ERR_STORAGE when the history cannot be read.
 */
int	service_history(struct service *svc, const char *team, uint64_t id,
	    int (*cb)(const struct cert_record *rec, void *arg), void *arg);

/*
 * Committed record of team by id, or NULL (read from disk, lent until the
 * loop runs again: store_get).  After NULL from these and service_list,
 * service_read_failed says whether the record was absent or unreadable
 * (CERTD_ERR_STORAGE).
 */
const struct cert_record *service_get(struct service *svc, const char *team,
	    uint64_t id);

/* Committed record of team by alias, or NULL. */
const struct cert_record *service_get_alias(struct service *svc,
	    const char *team, const char *alias);
int	service_read_failed(const struct service *svc);

/*
 * The live subscribers of a committed certificate (see hub_subscribers).
 * Returns 0, or CERTD_ERR_NOT_FOUND when the certificate does not exist.
 */
struct hub_subscriber;
int	service_subscribers(struct service *svc, const char *team, uint64_t id,
	    void (*cb)(const struct hub_subscriber *sub, void *arg), void *arg);

/*
 * Rotate the master key (store_rekey); cb gets err 0 or CERTD_ERR_STORAGE
 * and rec NULL.  Returns 0 or a negative CERTD_ERR_*.
 */
int	service_rekey(struct service *svc, const char *who, service_done_cb cb,
	    void *arg);

/*
 * Fleet mode: rotate the fleet key to this node's [fleet] key
 * (fleet_rekey); CERTD_ERR_BAD_REQUEST in single-host mode.  cb gets err 0
 * or CERTD_ERR_CLUSTER and rec NULL.
 */
int	service_fleet_rekey(struct service *svc, const char *who,
	    service_done_cb cb, void *arg);

/*
 * Right after a refusal or in the callback of service_rekey (fleet 0:
 * store_rekey_why) or of service_fleet_rekey (fleet 1: fleet_rekey_why).
 */
const char *service_rekey_why(struct service *svc, int fleet);

/* Hex id of the current master key (fleet: of the fleet key), hex[17]. */
void	service_key_id(struct service *svc, int fleet, char hex[17]);

/* Consistent copy of the store into dir (store_backup). */
int	service_backup(struct service *svc, const char *dir, char *errbuf,
	    size_t errlen);

/* Last committed revision. */
uint64_t service_revision(struct service *svc);

/* The store's epoch (store_get_pos): which store the revisions count in. */
uint64_t service_epoch(struct service *svc);

/*
 * The paging rule of a list, for REST and the socket alike: page from 1,
 * page_size from 1 to CERTD_PAGE_SIZE_MAX (a parameter that is not an
 * integer at all is to be passed as 0).  Returns 0, or
 * CERTD_ERR_BAD_REQUEST with why naming the parameter ("page" or
 * "page_size") and the rule.
 */
int	service_page_check(uint64_t page, uint64_t page_size,
	    struct service_why *why);

/*
 * One page of team's records ordered by id (page from 1, as
 * service_page_check allows).  Writes up to page_size records, lent as
 * service_get's and without their private key, into out; returns the
 * count; *total is the team's record count.  A short page with
 * service_read_failed true: a record could not be read.
 */
size_t	service_list(struct service *svc, const char *team, size_t page,
	    size_t page_size, const struct cert_record **out, size_t *total);

#endif
