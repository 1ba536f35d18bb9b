/* SPDX-License-Identifier: MIT */
/*
 * libcertd's check of the server it connects to (include/certd/certd.h,
 * "Who the server is"): one function that every connection calls right
 * after connect(2), before anything is sent.  Not exported.
 */
#ifndef CERTD_CLIENT_PEER_H
#define CERTD_CLIENT_PEER_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/*
 * A uid from s: a decimal number (0 to 2^32 - 2) or a user name, resolved
 * with getpwnam_r.  Returns 0, CERTD_E_INVAL when s is empty or a number
 * out of range, CERTD_E_PEER when no user has that name, CERTD_E_NOMEM.
 */
int	client_peer_parse_uid(const char *s, uid_t *uid);

/*
 * certd_client_set_server_uid: uid -1 forgets the setting; CERTD_E_INVAL
 * for anything that is not a uid.
 */
int	client_peer_set_server_uid(int64_t uid);

/*
 * Check the uid of the server on the connected socket fd (path only names
 * it in the message).  Returns 0 when it is root, the caller's real or
 * effective uid, or certd's configured user; otherwise CERTD_E_PEER with
 * the reason in err.
 */
int	client_peer_check(int fd, const char *path, char *err, size_t errlen);

#endif
