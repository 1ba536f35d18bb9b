/* SPDX-License-Identifier: MIT */
/*
 * Which certificate a TLS server presents, asked from a libevent loop
 * without blocking it: certctl sync --verify.  A probe connects to each of
 * its targets, completes a TLS handshake (with the target's SNI) and takes
 * the SHA-256 fingerprint of the leaf presented, again and again until
 * every target presented the wanted leaf or the time is up.  The peer's
 * chain is not verified: servers often use private CAs, and the question
 * is only whether the leaf served is the one written.  This file and
 * cert.c are the GnuTLS rooms of certctl.
 */
#ifndef CERTD_TLSPROBE_H
#define CERTD_TLSPROBE_H

#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"

#define TLSPROBE_ARG_MAX	300	/* bytes of HOST:PORT[,SNI] */
#define TLSPROBE_ADDRS_MAX	8	/* addresses kept of a host name */
#define TLSPROBE_TRY_MS		2000	/* one connect and handshake */
#define TLSPROBE_RETRY_MS	200	/* from a try of a target to the next */
#define TLSPROBE_WHY_MAX	128

struct event_base;
struct tlsprobe;
struct tlsprobe_target;

/*
 * Parse HOST:PORT[,SNI] (an IPv6 address in brackets: [::1]:443) and
 * resolve HOST now, once (getaddrinfo may block: call it before the loop
 * runs).  The SNI sent is SNI when given, else HOST when it is a name
 * rather than an address, else none.  Returns 0 with *out the caller's (to
 * tlsprobe_target_free), or -1 with the reason in err.
 */
int	tlsprobe_target_parse(const char *arg, struct tlsprobe_target **out,
	    char *err, size_t errlen);

/* Accepts NULL. */
void	tlsprobe_target_free(struct tlsprobe_target *t);

/* The argument as given, for messages. */
const char *tlsprobe_target_name(const struct tlsprobe_target *t);

/* The SNI sent ("" for none). */
const char *tlsprobe_target_sni(const struct tlsprobe_target *t);

/*
 * The outcome, borrowed for the callback.  ok: every target presented the
 * wanted leaf.  Otherwise target is the first (in the order given) that
 * did not, why what its last try saw ("presents another certificate",
 * "connect: Connection refused", ...), and served the leaf it presented
 * last (NULL when it presented none).  On ok, served is the wanted leaf.
 */
struct tlsprobe_result {
	int		 ok;
	const char	*target;
	const char	*served;
	const char	*why;
	int64_t		 verified_at;	/* Unix seconds when it ended */
	unsigned	 elapsed_ms;
};

typedef void	(*tlsprobe_cb)(const struct tlsprobe_result *res, void *arg);

/*
 * Start probing the n targets (borrowed: they must outlive the probe) on
 * base for the leaf of fingerprint want (CERTD_FINGERPRINT_LEN lowercase
 * hex digits), for at most timeout_ms.  Each target is tried at once, then
 * TLSPROBE_RETRY_MS after each try that did not present want; a try lasts
 * at most TLSPROBE_TRY_MS.  cb runs once, from the loop, when every target
 * presented want or the time is up; the probe is then inert (no event
 * pending) until tlsprobe_free, which must not be called from cb.
 * Returns NULL on allocation failure.
 */
struct tlsprobe	*tlsprobe_start(struct event_base *base,
		    struct tlsprobe_target *const *targets, size_t n,
		    const char *want, unsigned timeout_ms, tlsprobe_cb cb,
		    void *arg);

/* Stop (cb does not run) and free.  Accepts NULL. */
void		 tlsprobe_free(struct tlsprobe *p);

#endif
