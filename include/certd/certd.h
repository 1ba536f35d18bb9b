/* SPDX-License-Identifier: MIT */
/*
 * libcertd: the C client of certd's Unix-socket protocol (doc/protocol.md).
 *
 * Two kinds of handle:
 *  - struct certd_client: one connection for blocking request/response calls
 *    (get, list, put, delete, ping).  Not thread-safe: one thread at a time.
 *  - struct certd_watch: a subscription that runs on the caller's libevent
 *    event_base, calls back for every event, and optionally reconnects with
 *    back-off, resuming from the last revision it delivered.
 *
 * Errors: functions return 0 or a negative number.  -400, -403, -404, -412,
 * -413, -503... are the server's error codes negated (the message is in
 * certd_client_error()); CERTD_E_* below are local failures.
 *
 * Ownership: results are allocated by the library and freed by the caller
 * with the matching *_free; strings inside are owned by the result.  Pointers
 * passed to callbacks are borrowed for the duration of the call.
 */
#ifndef CERTD_CERTD_H
#define CERTD_CERTD_H

#include <stddef.h>
#include <stdint.h>

#include <certd/constants.h>

/*
 * libcertd is built with -fvisibility=hidden; CERTD_API marks the functions
 * it exports.  Programs that include this header see an empty macro.
 */
#if defined(CERTD_BUILDING_LIB) && defined(__GNUC__)
#define CERTD_API	__attribute__((visibility("default")))
#else
#define CERTD_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CERTD_E_IO	(-1)	/* connect, read or write failed; connection closed */
#define CERTD_E_PROTO	(-2)	/* the server sent something that is not the protocol */
#define CERTD_E_NOMEM	(-3)
#define CERTD_E_INVAL	(-4)	/* bad argument */
/*
 * Addition: the server is not who certd should be (see "Who the server
 * is" below); nothing was sent to it.
 */
#define CERTD_E_PEER	(-5)

/*
 * The clients' default socket, $runstatedir/certd/certd.sock, fixed when
 * libcertd is built (configure --runstatedir, default /run): the value
 * below is the usual one; certd_socket_path(NULL) returns the one in force.
 * (certd's own default, without --socket or socket=, is
 * <data-dir>/certd.sock: a certd run by hand on ./var is reached with
 * CERTD_SOCKET or an explicit path.)
 */
#ifndef CERTD_SOCKET_DEFAULT
#define CERTD_SOCKET_DEFAULT	"/run/certd/certd.sock"
#endif
#define CERTD_SOCKET_ENV	"CERTD_SOCKET"
#define CERTD_SERVER_UID_ENV	"CERTD_SERVER_UID"

struct event_base;
struct certd_client;
struct certd_watch;

/* A certificate as the server sends it (a "cert map"). */
struct certd_cert {
	uint64_t	 id;
	char		*team;		/* NULL when the server did not say */
	char		*alias;
	char		*certificate_type;
	char		*certificate;	/* PEM */
	char		*private_key;	/* PEM, NULL without the key permission */
	uint64_t	 revision;
	int64_t		 not_after;
	char		*fingerprint_sha256;
};

struct certd_list_item {
	uint64_t	 id;
	char		*alias;
	char		*certificate_type;
	uint64_t	 revision;
	int64_t		 not_after;
	char		*fingerprint_sha256;
};

struct certd_list {
	struct certd_list_item	*items;
	size_t			 n;
	uint64_t		 page;
	uint64_t		 page_size;
	uint64_t		 total;
};

/* Create (id == 0) or update; NULL strings are omitted (update keeps them). */
struct certd_put {
	const char	*team;
	uint64_t	 id;
	const char	*alias;
	const char	*certificate;
	const char	*private_key;
	const char	*certificate_type;
};

/*
 * The socket path: path if not NULL (nor empty), else $CERTD_SOCKET (when
 * set and not empty), else the default.
 */
CERTD_API const char *certd_socket_path(const char *path);

/*
 * Who the server is.  Every connection libcertd opens (certd_connect, each
 * (re)connect of a watch, hence of a reloader) checks the uid of the
 * process that listens, from SO_PEERCRED, right after connect and before
 * any request: a private key in a put, or a certificate that certctl sync
 * writes, must come from or go to certd, not from a user who got to bind
 * the socket path first.  Accepted are:
 *  - root;
 *  - the caller's own real or effective uid;
 *  - certd's user: the uid set with certd_client_set_server_uid(), else
 *    $CERTD_SERVER_UID (a number or a user name; ignored by secure_getenv
 *    in set-id programs), else the user certd's service runs as, named when
 *    libcertd is built (configure --with-certd-user, default "certd"; no
 *    such user: none).
 * Any other uid is refused: certd_connect fails, a watch reports a
 * DISCONNECTED event with code CERTD_E_PEER (and retries when it
 * reconnects), and the message names the socket, the server's uid and
 * the uids expected, e.g. "certd at /run/certd/certd.sock runs as uid 65534
 * (nobody); expected root, uid 1000 (yours) or uid 998 (user certd)".
 */

/*
 * Addition: the uid certd runs as, accepted besides root and the caller's
 * own (see above); it replaces $CERTD_SERVER_UID and the built-in user.
 * uid -1 forgets it.  Process-wide, like the environment it stands in
 * for, and thread-safe: it applies to every connection opened after it
 * returns.  Returns 0, or CERTD_E_INVAL for a uid out of range (below -1,
 * or not a valid uid_t).
 */
CERTD_API int	 certd_client_set_server_uid(int64_t uid);

/*
 * Connect to certd at path (see certd_socket_path), check who listens
 * (above) and say hello.  Returns NULL on failure with a reason in errbuf;
 * errno is then EPERM exactly when the server was refused (CERTD_E_PEER).
 */
CERTD_API struct certd_client *certd_connect(const char *path, char *errbuf,
		    size_t errlen);
/* Close and free; accepts NULL. */
CERTD_API void	 certd_close(struct certd_client *c);

/*
 * Message of the last failed call on c (never NULL): the server's msg, with
 * " (FIELD: REASON)" appended when the server named a field.
 */
CERTD_API const char *certd_client_error(const struct certd_client *c);

/* Server revision reported by hello. */
CERTD_API uint64_t certd_client_revision(const struct certd_client *c);

/*
 * Addition: how long one call may wait for the server, in milliseconds
 * (default 30000; 0 waits forever).  A call that times out returns
 * CERTD_E_IO and closes the connection.
 */
CERTD_API void	 certd_client_set_timeout(struct certd_client *c,
		    unsigned timeout_ms);

/*
 * Each call sends one request and waits for its response; frames larger
 * than 1 MiB are refused (CERTD_E_PROTO, connection closed).  After
 * CERTD_E_IO or CERTD_E_PROTO the connection is closed and every later call
 * returns CERTD_E_IO.  On success *out is the caller's.
 */
CERTD_API int	certd_ping(struct certd_client *c);
CERTD_API int	certd_get(struct certd_client *c, const char *team,
		    uint64_t id, struct certd_cert **out);
CERTD_API int	certd_get_alias(struct certd_client *c, const char *team,
		    const char *alias, struct certd_cert **out);
/* page or page_size 0: the server's default (1 and 10). */
CERTD_API int	certd_list(struct certd_client *c, const char *team,
		    uint64_t page, uint64_t page_size, struct certd_list **out);
/* out may be NULL when the stored record is not wanted. */
CERTD_API int	certd_put(struct certd_client *c, const struct certd_put *in,
		    struct certd_cert **out);
CERTD_API int	certd_delete(struct certd_client *c, const char *team,
		    uint64_t id, int force);

/*
 * Admin calls (root or certd's own uid).  certd_rekey rotates the master
 * key and writes the new key id (16 hex digits) into key_id;
 * certd_backup writes a consistent copy of the store, master key included,
 * into the absolute directory dir on certd's host.  Addition:
 * certd_rekey_fleet rotates the fleet key of a certd in fleet mode to its
 * [fleet] key (doc/fleet.md) and writes that key's id into key_id; it
 * returns when every record of the fleet is sealed with it.
 */
CERTD_API int	certd_rekey(struct certd_client *c, char key_id[17]);
CERTD_API int	certd_rekey_fleet(struct certd_client *c, char key_id[17]);
CERTD_API int	certd_backup(struct certd_client *c, const char *dir);

/* Wipes the key text.  Both accept NULL. */
CERTD_API void	certd_cert_free(struct certd_cert *cert);
CERTD_API void	certd_list_free(struct certd_list *list);

/* A live watch that receives a certificate's changes, with its last ack. */
struct certd_subscriber {
	char		*name;		/* the watch's name, "" when unnamed */
	uint64_t	 uid;		/* peer */
	int64_t		 pid;
	uint64_t	 watch;		/* W on the peer's connection */
	uint64_t	 revision;	/* last acked revision, 0: none yet */
	char		*status;	/* ok, failed, requested or pending */
	char		*detail;	/* of the last ack, "" when none */
	int64_t		 at;		/* Unix seconds of the last ack, 0: none */
	/*
	 * Additions: the TLS check of the last ack (certctl sync --verify):
	 * the SHA-256 of the leaf the server presented (NULL when no check
	 * ran or nothing was presented), and when it ended (Unix seconds, 0:
	 * no check ran).
	 */
	char		*served_fingerprint_sha256;
	int64_t		 verified_at;
};

struct certd_subscriber_list {
	struct certd_subscriber	*items;
	size_t			 n;
	/*
	 * Addition (fleet mode, doc/fleet.md): nodes[i] is the host of
	 * items[i]; nodes is NULL from a certd in single-host mode.  (An
	 * array beside items, so that struct certd_subscriber keeps its
	 * size.)
	 */
	char			**nodes;
};

/*
 * Addition: the subscribers of certificate id in team (op `subscribers`).
 * Needs read on the team; -404 when the certificate does not exist.  On
 * success *out is the caller's, to free with certd_subscriber_list_free
 * (which accepts NULL).
 */
CERTD_API int	certd_subscribers(struct certd_client *c, const char *team,
		    uint64_t id, struct certd_subscriber_list **out);
CERTD_API void	certd_subscriber_list_free(struct certd_subscriber_list *l);

/* One kept version of a certificate (op `history`); never PEM or key. */
struct certd_version {
	uint64_t	 revision;
	char		*alias;
	char		*certificate_type;
	int64_t		 not_after;	/* Unix seconds */
	char		*fingerprint_sha256;
	int64_t		 updated_at;	/* Unix seconds: when it was written */
};

struct certd_version_list {
	struct certd_version	*items;		/* newest first */
	size_t			 n;
};

/*
 * Addition: the kept versions of certificate id in team (op `history`),
 * newest first, the current one included.  Needs read on the team; -404
 * when the certificate does not exist.  On success *out is the caller's,
 * to free with certd_version_list_free (which accepts NULL).
 */
CERTD_API int	certd_history(struct certd_client *c, const char *team,
		    uint64_t id, struct certd_version_list **out);
CERTD_API void	certd_version_list_free(struct certd_version_list *l);

/*
 * Addition: make the kept version revision of certificate id current
 * again, as a new revision (op `rollback`), with the checks of an update:
 * -404 for an unknown certificate or a revision not in its history, -400
 * when its certificate fails a check now, -412 when its alias is taken.
 * out may be NULL; otherwise it gets the stored record, once durable (only
 * id and revision for a peer without read on the team).
 */
CERTD_API int	certd_rollback(struct certd_client *c, const char *team,
		    uint64_t id, uint64_t revision, struct certd_cert **out);

/* --- watch ------------------------------------------------------------- */

enum certd_event_kind {
	CERTD_EVENT_PUT = 1,
	CERTD_EVENT_DELETE,
	CERTD_EVENT_RESYNC,
	CERTD_EVENT_CONNECTED,		/* (re)connected and watching */
	CERTD_EVENT_DISCONNECTED,	/* lost the connection; reconnecting if asked */
};

struct certd_event {
	enum certd_event_kind	 kind;
	uint64_t		 revision;
	const char		*team;		/* put, delete */
	const struct certd_cert	*cert;		/* put: full; delete: id and alias */
	const char		*error;		/* disconnected: why */
	/* Additions: */
	int			 code;		/* disconnected: CERTD_E_* or -status */
	int			 ended;		/* disconnected: no reconnect follows */
	/*
	 * put: the certificate no longer matches the watch's ids and aliases
	 * (it was renamed away from a watched alias): its last event here.
	 */
	int			 left;
	/*
	 * connected: the watch's whole current state follows (a replay from
	 * revision 0, or a resync that certd is sure to send), not the changes
	 * since the last revision delivered: a certificate it leaves out is
	 * gone, with no delete event for it.  A resync event says the same.
	 */
	int			 state;
};

struct certd_watch_opts {
	const char	 *socket;	/* NULL: certd_socket_path(NULL) */
	const char	 *team;		/* NULL: every team the peer may read */
	const uint64_t	 *ids;
	size_t		  n_ids;
	const char	**aliases;
	size_t		  n_aliases;
	int		  has_since;	/* replay from since (0: current state) */
	uint64_t	  since;
	const char	 *name;		/* how certd lists this watch in `subscribers` */
	int		  reconnect;	/* reconnect with back-off, resume */
	unsigned	  backoff_max_ms;	/* 0: 5000 */
};

typedef void	(*certd_event_cb)(const struct certd_event *ev, void *arg);

/*
 * Start a watch on base.  Connection and replay happen on the loop; cb runs
 * there for each event.  With reconnect, a lost connection is retried with
 * exponential back-off (100 ms doubling up to backoff_max_ms; it starts
 * over once a connection lasted 5 s) and the watch resumes
 * with since = the last revision delivered (0 after a resync, until the
 * state that follows it is complete) and the epoch of the store it counts
 * in: a certd whose store is another (restored from a backup) answers with
 * a resync and its state.  Returns NULL with a
 * reason in errbuf only for bad options or allocation failure (a daemon
 * that is down is retried when reconnect is set, else reported through a
 * DISCONNECTED event).  opts is copied.
 *
 * Details:
 *  - DISCONNECTED is delivered once per loss, not once per failed retry,
 *    except for a retry that could not connect at all (connect(2) failed:
 *    no socket at the path, nobody listening on it, no permission) and a
 *    server refused by the peer check (code CERTD_E_PEER, see "Who the
 *    server is"): those are reported at every retry, so that a program
 *    that logs these events says at each try why certd is not reached.
 *  - The server refusing the watch request itself (a 4xx answer, e.g. 403
 *    or 400) ends the watch even with reconnect: retrying cannot help.  The
 *    DISCONNECTED event then has ended set and code = -status.
 *  - Resuming: a replay of the current state (since 0, or after a resync
 *    event) is not in revision order, so the resume point only moves past it
 *    once a live event arrives; until then a reconnect replays it again.  A
 *    consumer may therefore see a put twice, never miss one.
 */
CERTD_API struct certd_watch *certd_watch_new(struct event_base *base,
		    const struct certd_watch_opts *opts, certd_event_cb cb,
		    void *arg, char *errbuf, size_t errlen);

/*
 * Stop and free; no callback runs after it returns.  Accepts NULL.  It may
 * be called from inside cb: the free is then deferred until the library's
 * own handler unwinds, and no further callback runs.
 */
CERTD_API void	certd_watch_free(struct certd_watch *w);

/* Last revision delivered by a put/delete/resync event. */
CERTD_API uint64_t certd_watch_revision(const struct certd_watch *w);

/*
 * Report that revision was applied (ok != 0) or failed, with an optional
 * detail.  Sent on the current connection; returns CERTD_E_IO when not
 * connected.
 */
CERTD_API int	certd_watch_ack(struct certd_watch *w, uint64_t revision,
		    int ok, const char *detail);

/*
 * Addition: an ack's status.  ok: the server was seen presenting the
 * certificate (or there was nothing to check); failed; requested: done on
 * the subscriber's side (files written, reload asked for) but not
 * confirmed.  CERTD_ACK_FAILED and CERTD_ACK_OK are 0 and 1, like the ok
 * of certd_watch_ack.
 */
enum certd_ack_status {
	CERTD_ACK_FAILED = 0,
	CERTD_ACK_OK = 1,
	CERTD_ACK_REQUESTED = 2,
};

/*
 * Addition: certd_watch_ack with a status and the TLS check that decided
 * it: served_fingerprint_sha256 is the leaf the server presented (64
 * lowercase hex digits, NULL when none was), verified_at the Unix seconds
 * when the check ended (0: no check ran; then served_fingerprint_sha256
 * must be NULL).  detail may be NULL.  CERTD_E_INVAL for a bad status or
 * fingerprint; CERTD_E_IO when not connected.  A certd older than the
 * `requested` status answers 400 to it (doc/protocol.md, `ack`).
 */
CERTD_API int	certd_watch_ack_status(struct certd_watch *w,
		    uint64_t revision, enum certd_ack_status status,
		    const char *detail, const char *served_fingerprint_sha256,
		    int64_t verified_at);

/*
 * Blocking form: runs its own event_base until cb sets *stop (through the
 * arg it shares with the caller) or the watch ends without reconnect.
 * *stop is also looked at every 100 ms, so a signal handler may set it
 * (stop may be NULL: run until the watch ends).  Returns 0 when stopped, or
 * a negative error (the code of the DISCONNECTED event that ended it;
 * CERTD_E_INVAL for bad options).
 */
CERTD_API int	certd_watch_run(const struct certd_watch_opts *opts,
		    certd_event_cb cb, void *arg, volatile int *stop);

#ifdef __cplusplus
}
#endif

#endif
