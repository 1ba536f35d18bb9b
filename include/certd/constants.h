/* SPDX-License-Identifier: MIT */
/*
 * Limits, protocol numbers and error codes shared by certd, libcertd and
 * certctl: every number that bounds what a client, a peer or an operator
 * may do is named here once, and the messages that state a limit are
 * built from its name.
 *
 * Error codes are negative numbers inside the daemon (enum certd_error);
 * at each door they are converted by one table (src/err.c): the REST
 * status, the code of a socket error frame (the same number), and what
 * libcertd returns for it (that code negated, CERTD_E_* below), so a
 * client sees the same code whichever door it came through.
 */
#ifndef CERTD_CONSTANTS_H
#define CERTD_CONSTANTS_H

/* --- certificates and names ---------------------------------------------- */

#define CERTD_TEAM_MAX		64		/* team_id characters */
#define CERTD_ALIAS_MAX		64		/* alias characters (UTF-8 code points) */
#define CERTD_ALIAS_BYTES_MAX	(CERTD_ALIAS_MAX * 4)	/* alias bytes, UTF-8 */
#define CERTD_TYPE_MAX		32		/* certificate_type characters */
#define CERTD_CERT_MAX		(64 * 1024)	/* certificate PEM bytes */
#define CERTD_KEY_MAX		(16 * 1024)	/* private key PEM bytes */
#define CERTD_CHAIN_MAX		16		/* certificates in one chain */
#define CERTD_RSA_BITS_MAX	8192		/* RSA modulus, leaf key or issuer */
#define CERTD_FINGERPRINT_LEN	64		/* SHA-256, lowercase hex */

/* --- REST ---------------------------------------------------------------- */

#define CERTD_BODY_MAX		(128 * 1024)	/* REST request body bytes */
/* Bodies past this are refused by evhttp before they are read. */
#define CERTD_BODY_HARD_MAX	(4 * CERTD_BODY_MAX)
#define CERTD_HEADERS_MAX	(16 * 1024)	/* REST request headers bytes */
#define CERTD_PAGE_SIZE_MAX	500
#define CERTD_PAGE_SIZE_DEFAULT	10
#define CERTD_PARAM_SHOWN_MAX	64		/* characters of a query name echoed */

#define CERTD_HTTP_PORT_DEFAULT	7070
#define CERTD_HTTP_TIMEOUT	30		/* seconds, read and write */
#define CERTD_HTTP_CONN_MAX	4096		/* http_max_conns default */
#define CERTD_HTTP_CONN_HIGH	1000000		/* largest http_max_conns */
#define CERTD_WORKERS_MAX	4		/* threads of a pool that checks
					   certificates, one a CPU */

/* --- tokens -------------------------------------------------------------- */

#define CERTD_TOKENS_MAX	4096		/* lines in the token file */
#define CERTD_TOKENS_FILE_MAX	(1024 * 1024)	/* token file bytes */
#define CERTD_TOKEN_NAME_MAX	64		/* token NAME bytes */
#define CERTD_TOKEN_TEXT_MAX	256		/* token text a client may present */
#define CERTD_TOKEN_SUBJECT_MAX	1024		/* subject DN bytes */

/* --- the Unix-socket protocol (doc/protocol.md) -------------------------- */

#define CERTD_PROTO_VERSION	1
#define CERTD_FRAME_HEADER_LEN	4		/* big-endian payload length */
#define CERTD_FRAME_MAX_DEFAULT	(1024 * 1024)	/* socket frame payload bytes */
#define CERTD_FRAME_MAX_LOW	4096		/* smallest frame_max setting */
#define CERTD_FRAME_MAX_HIGH	(64 * 1024 * 1024)	/* largest frame_max */
#define CERTD_MSGPACK_DEPTH_MAX	8		/* nesting, the top map at 1 */
#define CERTD_MSGPACK_ITEMS_MAX	65536		/* elements of one array or map */

#define CERTD_CTL_CONNS_DEFAULT	256		/* ctl_max_conns */
#define CERTD_CTL_CONNS_PER_UID_DEFAULT 32	/* ctl_max_conns_per_uid */
#define CERTD_CTL_CONNS_HIGH	100000		/* largest of either */
#define CERTD_CTL_ADMIN_SLOTS	8		/* of ctl_max_conns, admins' only */
#define CERTD_CTL_IDLE_DEFAULT	60		/* ctl_idle_timeout, seconds */
#define CERTD_CTL_IDLE_HIGH	86400		/* largest ctl_idle_timeout */
#define CERTD_CTL_CLOSE_TIMEOUT	5		/* seconds to flush a last error frame */
#define CERTD_CTL_OUT_DEFAULT	(4 * 1024 * 1024)	/* ctl_out_limit bytes */
#define CERTD_CTL_OUT_LOW	65536		/* smallest ctl_out_limit */
#define CERTD_CTL_OUT_HIGH	(1024 * 1024 * 1024)	/* largest ctl_out_limit */
#define CERTD_PEER_GROUPS_MAX	64		/* a peer's groups the [acl] sees */

#define CERTD_WATCHES_MAX	64		/* watches per connection */
#define CERTD_WATCH_FILTER_MAX	1024		/* ids, or aliases, of one watch */
#define CERTD_WATCH_NAME_MAX	64		/* subscriber name bytes */
#define CERTD_UID_NAMES_MAX	256		/* names one non-admin uid owns */
#define CERTD_UID_FILTER_MAX	(2u * 1024 * 1024)	/* filter bytes of one uid */
#define CERTD_BACKLOG_MAX	(64u * 1024 * 1024)	/* coalesced bytes: dropped past */
#define CERTD_ACK_DETAIL_MAX	255		/* ack detail bytes kept */

/* --- the store, expiry and shutdown -------------------------------------- */

#define CERTD_LOG_RETAIN_DEFAULT 100000		/* change-log entries, log_retain */
#define CERTD_HISTORY_KEEP_DEFAULT 10		/* versions, history_keep */
#define CERTD_HISTORY_KEEP_MAX	1000
#define CERTD_CACHE_DEFAULT	(8 << 20)	/* cache_size: block cache, bytes */
#define CERTD_CACHE_LOW		(1 << 20)
#define CERTD_CACHE_HIGH	((size_t)1 << 40)
#define CERTD_EXPIRY_THRESHOLDS_MAX 8		/* expiry_warn_days entries */
#define CERTD_EXPIRY_DAYS_MAX	3650		/* one expiry_warn_days entry */
#define CERTD_EXPIRY_SCAN_DEFAULT 3600		/* expiry_scan_interval, seconds */
#define CERTD_EXPIRY_SCAN_HIGH	86400		/* largest expiry_scan_interval */
#define CERTD_SHUTDOWN_GRACE	10		/* seconds from SIGTERM to a forced stop */

/* --- libcertd ------------------------------------------------------------ */

#define CERTD_CLIENT_TIMEOUT_MS	30000		/* certd_client_set_timeout default */
#define CERTD_WATCH_BACKOFF_MIN_MS 100		/* first reconnect delay */
#define CERTD_WATCH_BACKOFF_MAX_MS 5000		/* backoff_max_ms default */
#define CERTD_WATCH_STABLE_MS	5000		/* connected this long: back-off over */
#define CERTD_WATCH_RUN_TICK_MS	100		/* certd_watch_run looks at *stop */

/* --- errors -------------------------------------------------------------- */

enum certd_error {
	CERTD_OK		= 0,
	CERTD_ERR_NOMEM		= -1,	/* 503 */
	CERTD_ERR_STORAGE	= -2,	/* 503 storage unavailable */
	CERTD_ERR_BAD_REQUEST	= -3,	/* 400, detail names the field */
	CERTD_ERR_TOO_LARGE	= -4,	/* 413 */
	CERTD_ERR_UNAUTHORIZED	= -5,	/* 401 */
	CERTD_ERR_FORBIDDEN	= -6,	/* 403 */
	CERTD_ERR_NO_TEAM	= -7,	/* 404 no found team */
	CERTD_ERR_NOT_FOUND	= -8,	/* 404 certificate not found */
	CERTD_ERR_NO_ROUTE	= -9,	/* 404 no such resource */
	CERTD_ERR_METHOD	= -10,	/* 405 */
	CERTD_ERR_ALIAS_EXISTS	= -11,	/* 412 */
	CERTD_ERR_CERT_INVALID	= -12,	/* 400 */
	CERTD_ERR_CERT_EXPIRED	= -13,	/* 400 */
	CERTD_ERR_CERT_NOT_YET	= -14,	/* 400 */
	CERTD_ERR_KEY_INVALID	= -15,	/* 400 */
	CERTD_ERR_KEY_MISMATCH	= -16,	/* 400 */
	CERTD_ERR_CHAIN_INVALID	= -17,	/* 400 */
	CERTD_ERR_IN_USE	= -18,	/* 400 */
	CERTD_ERR_INTERNAL	= -19,	/* 503: a broken invariant, never a client's fault */
	CERTD_ERR_NO_WATCH	= -20,	/* 404 watch not found (socket) */
	CERTD_ERR_SHUTDOWN	= -21,	/* 503 shutting down */
	CERTD_ERR_NO_REVISION	= -22,	/* 404 revision not found (rollback) */
	CERTD_ERR_BACKUP_EXISTS	= -23,	/* 412 the backup directory holds one */
	/* The socket's connection-level errors (error frames with id 0). */
	CERTD_ERR_FRAME_EMPTY	= -24,	/* 400 empty frame */
	CERTD_ERR_FRAME_TOO_LARGE = -25, /* 413 frame too large */
	CERTD_ERR_FRAME_MALFORMED = -26, /* 400 malformed frame: REASON */
	CERTD_ERR_TOO_MANY_CONNS = -27,	/* 503 too many connections */
	CERTD_ERR_TOO_SLOW	= -28,	/* 503 subscriber too slow */
	CERTD_ERR_CLUSTER	= -29,	/* 503 cluster unavailable (fleet) */
};

/*
 * What libcertd returns when certd answers an error: the code negated.
 * (Local failures are the CERTD_E_* of certd.h, -1 to -99.)
 */
#define CERTD_E_BAD_REQUEST	(-400)
#define CERTD_E_UNAUTHORIZED	(-401)	/* REST only */
#define CERTD_E_FORBIDDEN	(-403)
#define CERTD_E_NOT_FOUND	(-404)
#define CERTD_E_METHOD		(-405)	/* REST only */
#define CERTD_E_PRECONDITION	(-412)
#define CERTD_E_TOO_LARGE	(-413)
#define CERTD_E_UNAVAILABLE	(-503)

#endif
