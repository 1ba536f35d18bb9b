/* SPDX-License-Identifier: MIT */
/*
 * Expiry warnings: a periodic scan of the stored certificates that, when one
 * comes within a threshold of its notAfter (default 30, 7 and 1 days), logs
 * a warning and sends an "expiring" event to the watchers of it, once per
 * threshold and version of the certificate.
 */
#ifndef CERTD_EXPIRY_H
#define CERTD_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#define EXPIRY_THRESHOLDS_MAX	8

struct event_base;
struct hub;
struct store;
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

/* Certificates expiring within the smallest threshold at the last scan. */
size_t		 expiry_count(const struct expiry *ex);

#endif
