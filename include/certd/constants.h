/* SPDX-License-Identifier: MIT */
/*
 * Limits and error codes shared by certd, libcertd and certctl.
 *
 * Error codes are negative numbers inside the programs; on the wire (REST
 * status, socket error frames) each one maps to the HTTP status listed next
 * to it, so a client sees the same code whichever door it came through.
 */
#ifndef CERTD_CONSTANTS_H
#define CERTD_CONSTANTS_H

#define CERTD_TEAM_MAX		64		/* team_id characters */
#define CERTD_ALIAS_MAX		64		/* alias characters (UTF-8 code points) */
#define CERTD_TYPE_MAX		32		/* certificate_type characters */
#define CERTD_CERT_MAX		(64 * 1024)	/* certificate PEM bytes */
#define CERTD_KEY_MAX		(16 * 1024)	/* private key PEM bytes */
#define CERTD_BODY_MAX		(128 * 1024)	/* REST request body bytes */
#define CERTD_HEADERS_MAX	(16 * 1024)	/* REST request headers bytes */
#define CERTD_PAGE_SIZE_MAX	500
#define CERTD_PAGE_SIZE_DEFAULT	10
#define CERTD_CHAIN_MAX		16		/* certificates in one chain */
#define CERTD_TOKENS_MAX	4096		/* lines in the token file */
#define CERTD_FINGERPRINT_LEN	64		/* SHA-256, lowercase hex */
#define CERTD_FRAME_MAX_DEFAULT	(1024 * 1024)	/* socket frame payload bytes */

#define CERTD_HTTP_PORT_DEFAULT	7070
#define CERTD_HTTP_TIMEOUT	30		/* seconds, read and write */
#define CERTD_HTTP_CONN_MAX	4096

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
};

#endif
