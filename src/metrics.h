/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the Prometheus text exposition of what the subsystems
 * count.  Pull only: every subsystem keeps its own counters and this file
 * reads them at scrape time, so nothing on the hot paths knows about it.
 */
#ifndef CERTD_METRICS_H
#define CERTD_METRICS_H

struct evbuffer;
struct ctl;
struct expiry;
struct http;
struct hub;
struct service;
struct store;

struct metrics_sources {
	struct http	*http;
	struct ctl	*ctl;
	struct hub	*hub;
	struct store	*store;
	struct service	*svc;
	struct expiry	*expiry;	/* NULL: no expiring counts */
};

/* Append the exposition to out. */
void	metrics_render(struct evbuffer *out, const struct metrics_sources *src);

#endif
