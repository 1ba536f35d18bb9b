/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text format (version 0.0.4).  Names start with certd_;
 * histograms are cumulative, as the format wants.  The per-certificate
 * expiry gauge carries team, id and alias labels; alias values are escaped
 * (backslash and double quote; aliases hold no control characters).  The
 * expiry gauges are computed from the committed records at scrape time, so
 * a write shows in the next scrape (contrib/prometheus/certd-alerts.yml
 * alerts on them).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "ctl.h"
#include "expiry.h"
#include "http.h"
#include "hub.h"
#include "metrics.h"
#include "record.h"
#include "service.h"
#include "store.h"

static void
help(struct evbuffer *out, const char *name, const char *type,
    const char *text)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text,
	    name, type);
}

/* Metrics of one unlabelled sample each: HELP and TYPE lines, then the value. */
struct sample {
	const char		*name;
	const char		*type;
	const char		*text;
	unsigned long long	 value;
};

static void
samples(struct evbuffer *out, const struct sample *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		help(out, v[i].name, v[i].type, v[i].text);
		evbuffer_add_printf(out, "%s %llu\n", v[i].name, v[i].value);
	}
}

/*
 * An unlabelled histogram: le[i] bounds bucket i, le_count[i] counts the
 * observations up to it; sum is already formatted (seconds or a count).
 */
static void
histogram(struct evbuffer *out, const char *name, const char *text,
    const double *le, const uint64_t *le_count, size_t n,
    unsigned long long count, const char *sum)
{
	size_t	i;

	help(out, name, "histogram", text);
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
		    le[i], (unsigned long long)le_count[i]);
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %s\n"
	    "%s_count %llu\n", name, count, name, sum, name, count);
}

static void
http_metrics(struct evbuffer *out, struct http *h)
{
	const struct http_stats	*st = http_get_stats(h);
	size_t			 r, i;

	help(out, "certd_http_requests_total", "counter",
	    "REST requests answered, by route and status code.");
	for (r = 0; r < HTTP_ROUTES; r++)
		for (i = 0; i < HTTP_STATUSES; i++)
			if (st->requests[r][i] > 0) {
				if (http_statuses[i] != 0)
					evbuffer_add_printf(out,
					    "certd_http_requests_total{route=\"%s\","
					    "code=\"%d\"} %llu\n", http_route_names[r],
					    http_statuses[i], (unsigned long long)
					    st->requests[r][i]);
				else
					evbuffer_add_printf(out,
					    "certd_http_requests_total{route=\"%s\","
					    "code=\"other\"} %llu\n",
					    http_route_names[r], (unsigned long long)
					    st->requests[r][i]);
			}
	help(out, "certd_http_request_duration_seconds", "histogram",
	    "Time from a request read to its answer, by route.");
	for (r = 0; r < HTTP_ROUTES; r++) {
		if (st->latency_count[r] == 0)
			continue;
		for (i = 0; i < HTTP_LATENCY_BUCKETS; i++)
			evbuffer_add_printf(out,
			    "certd_http_request_duration_seconds_bucket{route=\"%s\","
			    "le=\"%g\"} %llu\n", http_route_names[r],
			    http_latency_buckets[i],
			    (unsigned long long)st->latency_le[r][i]);
		evbuffer_add_printf(out,
		    "certd_http_request_duration_seconds_bucket{route=\"%s\","
		    "le=\"+Inf\"} %llu\n"
		    "certd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		    "certd_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    http_route_names[r], (unsigned long long)st->latency_count[r],
		    http_route_names[r], st->latency_sum[r], http_route_names[r],
		    (unsigned long long)st->latency_count[r]);
	}
	help(out, "certd_http_connections", "gauge",
	    "Open REST connections, from accept to close.");
	evbuffer_add_printf(out, "certd_http_connections %zu\n",
	    st->connections);
}

static void
store_metrics(struct evbuffer *out, struct store *s)
{
	struct store_stats	st;
	struct store_pos	pos;
	double			batch_le[STORE_BATCH_BUCKETS];
	char			sum[64];
	size_t			i;

	store_get_stats(s, &st);
	store_get_pos(s, &pos);
	snprintf(sum, sizeof(sum), "%.6f", st.write_seconds);
	histogram(out, "certd_store_write_seconds",
	    "Duration of each synced write batch, WAL sync included.",
	    store_write_buckets, st.write_le, STORE_WRITE_BUCKETS, st.batches,
	    sum);
	for (i = 0; i < STORE_BATCH_BUCKETS; i++)
		batch_le[i] = store_batch_buckets[i];	/* %g prints them whole */
	snprintf(sum, sizeof(sum), "%llu", (unsigned long long)st.ops);
	histogram(out, "certd_store_batch_size",
	    "Mutations per write batch (group commit).", batch_le, st.batch_le,
	    STORE_BATCH_BUCKETS, st.batches, sum);
	{
		const struct sample v[] = {
		{ "certd_store_failed_batches_total", "counter",
		    "Write batches that failed (answered 503, nothing written).",
		    st.failed_batches },
		{ "certd_store_writable", "gauge",
		    "0 while writes fail for the store's sake (no room, I/O error), "
		    "until a write or a reopen succeeds; else 1.",
		    !st.writes_failing },
		{ "certd_certificates", "gauge",
		    "Certificates stored.",
		    pos.count },
		{ "certd_revision", "gauge",
		    "Last committed revision.",
		    pos.revision },
		};

		samples(out, v, sizeof(v) / sizeof(v[0]));
	}
}

static void
hub_metrics(struct evbuffer *out, struct hub *hub, struct ctl *ctl)
{
	struct hub_stats	st;

	hub_get_stats(hub, &st);
	{
		const struct sample v[] = {
		{ "certd_socket_connections", "gauge",
		    "Open Unix-socket connections.",
		    ctl_conns(ctl) },
		{ "certd_watches", "gauge",
		    "Live watches (subscriptions).",
		    st.watches },
		{ "certd_events_sent_total", "counter",
		    "Event frames queued to subscribers.",
		    st.events_sent },
		{ "certd_events_deferred_total", "counter",
		    "Events held back because a subscriber was over its output limit.",
		    st.events_deferred },
		{ "certd_events_coalesced_total", "counter",
		    "Held-back events replaced by a newer one for the same certificate.",
		    st.events_coalesced },
		{ "certd_subscriber_backlog", "gauge",
		    "Events held back, all subscribers.",
		    st.backlog },
		{ "certd_subscribers_dropped_total", "counter",
		    "Subscribers disconnected for falling too far behind.",
		    st.subscribers_dropped },
		};

		samples(out, v, sizeof(v) / sizeof(v[0]));
	}
	help(out, "certd_acks_total", "counter",
	    "Acks from subscribers (certctl sync), by status.");
	evbuffer_add_printf(out, "certd_acks_total{status=\"ok\"} %llu\n"
	    "certd_acks_total{status=\"failed\"} %llu\n"
	    "certd_acks_total{status=\"requested\"} %llu\n",
	    (unsigned long long)st.acks_ok, (unsigned long long)st.acks_failed,
	    (unsigned long long)st.acks_requested);
	help(out, "certd_subscribers_failed", "gauge",
	    "Live watches whose last ack reported a failure.");
	evbuffer_add_printf(out, "certd_subscribers_failed %zu\n",
	    st.subscribers_failed);
}

/* alias as a label value. */
static const char *
label(const char *s, char *buf, size_t len)
{
	size_t	o = 0;

	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

struct expiry_walk {
	struct evbuffer	*out;
	int64_t		 now;
	const unsigned	*days;		/* thresholds */
	size_t		 n_days;
	size_t		 within[CERTD_EXPIRY_THRESHOLDS_MAX];
	size_t		 expired;
};

static int
expiry_one(const struct store_meta *rec, void *arg)
{
	struct expiry_walk	*w = arg;
	int64_t			 left = rec->not_after - w->now;
	char			 buf[600];
	size_t			 i;

	evbuffer_add_printf(w->out, "certd_certificate_expiry_seconds{team=\"%s\","
	    "id=\"%llu\",alias=\"%s\"} %lld\n", rec->team,
	    (unsigned long long)rec->id, label(rec->alias, buf, sizeof(buf)),
	    (long long)left);
	if (left <= 0)
		w->expired++;
	else
		for (i = 0; i < w->n_days; i++)
			if (left < (int64_t)w->days[i] * 86400)
				w->within[i]++;
	return 0;
}

/* The counts of the walk: by threshold (expiry_warn_days), and expired. */
static void
expiry_counts(struct evbuffer *out, const struct expiry_walk *w)
{
	size_t	i;

	help(out, "certd_certificates_expiring", "gauge",
	    "Certificates still valid with less than `days` days left, for "
	    "each expiry_warn_days threshold.");
	for (i = 0; i < w->n_days; i++)
		evbuffer_add_printf(out,
		    "certd_certificates_expiring{days=\"%u\"} %zu\n",
		    w->days[i], w->within[i]);
	help(out, "certd_certificates_expired", "gauge",
	    "Certificates past their notAfter.");
	evbuffer_add_printf(out, "certd_certificates_expired %zu\n",
	    w->expired);
}

void
metrics_render(struct evbuffer *out, const struct metrics_sources *src)
{
	struct expiry_walk	w;
	int			i;

	http_metrics(out, src->http);
	help(out, "certd_validation_failures_total", "counter",
	    "Certificates and keys refused, by reason.");
	for (i = 0; i < SERVICE_REASONS; i++)
		evbuffer_add_printf(out,
		    "certd_validation_failures_total{reason=\"%s\"} %llu\n",
		    service_reason_names[i], (unsigned long long)
		    service_validation_failures(src->svc, i));
	store_metrics(out, src->store);
	hub_metrics(out, src->hub, src->ctl);
	help(out, "certd_certificate_expiry_seconds", "gauge",
	    "Seconds until each certificate's notAfter (negative: expired).");
	memset(&w, 0, sizeof(w));
	w.out = out;
	w.now = (int64_t)time(NULL);
	if (src->expiry != NULL)
		w.days = expiry_days(src->expiry, &w.n_days);
	store_foreach(src->store, NULL, expiry_one, &w);
	expiry_counts(out, &w);
}
