/* SPDX-License-Identifier: MIT */
/*
 * Expiry warnings: when a stored certificate comes within a threshold of its
 * notAfter (default 30, 7 and 1 days), log a warning and send an "expiring"
 * event to the watchers of it, once per threshold and version of the
 * certificate: on the write that stores it (expiry_changed) and from a
 * periodic scan as time passes.
 */
#ifndef CERTD_EXPIRY_H
#define CERTD_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"

struct event_base;
struct hub;
struct store;
struct store_change;
struct expiry;

/*
 * Scan every interval seconds (and once right away) with thresholds in
 * days, largest first.  NULL on allocation failure.
 */
struct expiry	*expiry_new(struct event_base *base, struct store *store,
		    struct hub *hub, const unsigned *days, size_t n_days,
		    unsigned interval);
void		 expiry_free(struct expiry *ex);

/* New thresholds and interval (SIGHUP); warnings already given stand. */
void		 expiry_configure(struct expiry *ex, const unsigned *days,
		    size_t n_days, unsigned interval);

/*
 * A committed change (the store's change listener, after hub_publish, so
 * that watchers get the put first): a put of a certificate inside a
 * threshold is warned about now, as the scan would, and the scan does not
 * warn again for it.  A delete forgets the certificate.
 */
void		 expiry_changed(struct expiry *ex,
		    const struct store_change *ch);

/* The thresholds in days, largest first; *n gets their count. */
const unsigned	*expiry_days(const struct expiry *ex, size_t *n);

/* Certificates expiring within the smallest threshold at the last scan. */
size_t		 expiry_count(const struct expiry *ex);

#endif
