/* SPDX-License-Identifier: MIT */
/*
 * The one table that turns a CERTD_ERR_* code into what a client is told
 * at each door: the HTTP status of a REST answer, the code of a socket
 * error frame, the code libcertd returns for that frame (CERTD_E_*), and
 * the English and Chinese messages.  doc/protocol.md and doc/api.md list
 * the same rows; tests/unit/test_err.c checks that they agree.
 */
#ifndef CERTD_ERR_H
#define CERTD_ERR_H

#include <stddef.h>

#include "certd/constants.h"

/* Doors a code is answered at (err_row.doors). */
#define ERR_REST	0x1
#define ERR_SOCKET	0x2

/* One row of the table. */
struct err_row {
	int		 err;		/* CERTD_OK or CERTD_ERR_* */
	int		 http;		/* REST status */
	int		 socket;	/* error frame code, 0 for CERTD_OK */
	int		 client;	/* libcertd's return: -socket */
	unsigned	 doors;		/* ERR_REST | ERR_SOCKET: where it is sent */
	const char	*msg;		/* msg of both doors */
	const char	*msg_show;	/* msg_show of the REST envelope */
};

/*
 * Each accessor takes CERTD_OK or a CERTD_ERR_* code; a code not in the
 * table is answered as CERTD_ERR_INTERNAL (503).
 */

/* HTTP status for err (200 for 0). */
int		 err_http_status(int err);

/* Code of a socket error frame for err (0 for 0). */
int		 err_socket_code(int err);

/* What libcertd returns when certd answers err (CERTD_E_*; 0 for 0). */
int		 err_client_code(int err);

/* English message; never NULL. */
const char	*err_msg(int err);

/* Chinese message for msg_show; never NULL. */
const char	*err_msg_show(int err);

/* The whole table (for tests), *n rows. */
const struct err_row *err_rows(size_t *n);

#endif
