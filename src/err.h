/* SPDX-License-Identifier: MIT */
/*
 * The one table that turns a CERTD_ERR_* code into what a client is told:
 * the HTTP status (also the socket error code), the English message and the
 * Chinese message of the Rainbond envelope.
 */
#ifndef CERTD_ERR_H
#define CERTD_ERR_H

#include "certd/constants.h"

/* HTTP status for err (200 for 0; 503 for anything unknown). */
int		 err_status(int err);

/* English message; never NULL. */
const char	*err_msg(int err);

/* Chinese message for msg_show; never NULL. */
const char	*err_msg_show(int err);

#endif
