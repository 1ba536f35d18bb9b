/* SPDX-License-Identifier: MIT */
/*
 * Life cycle.  Start-up does every check that can fail before anything
 * listens: the data directory is created and locked (one certd per data
 * directory), the token file is read, the store is opened and loaded, then
 * the listener binds.  Any failure is one line on stderr and exit 1.
 *
 * SIGTERM and SIGINT stop the listener, let requests already handed to the
 * store finish, then close the store (which flushes) and exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "certd/constants.h"
#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "expiry.h"
#include "http.h"
#include "fleet.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "perm.h"
#include "service.h"
#include "store.h"
#include "tokens.h"

#define TOKENS_HEADER \
	"# certd tokens: NAME sha256:HEX teams=*|TEAM[,TEAM...] role=read|write " \
	"[keys=yes|no]\n" \
	"# Add one with: certctl token new --name NAME --teams '*' --role write\n"

struct daemon {
	const struct config	*cfg;		/* in force: start-up's or owned */
	struct config		*owned;		/* the last one SIGHUP built */
	daemon_config_cb	 rebuild;
	void			*rebuild_arg;
	struct event		*ev_hup;
	struct event_base	*base;
	struct store		*store;
	struct service		*svc;
	struct hub		*hub;
	struct fleet		*fleet;		/* fleet mode, or NULL */
	struct expiry		*expiry;
	struct http		*http;
	struct ctl		*ctl;
	struct tokens		*tokens;
	struct event		*ev_term;
	struct event		*ev_int;
	struct event		*ev_flush;	/* polls until answers are written */
	struct event		*ev_grace;	/* stops regardless after a while */
	int			 lock_fd;
	int			 dir_fd;	/* the data directory, checked */
	int			 tokens_created;	/* empty token file made at start */
	int			 stopping;
	int			 draining;	/* listeners still finishing requests */
	int			 closing;	/* daemon_close: the loop is gone */
};

#define FLEET_START_S	10	/* start-up waits for the fleet this long */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The one line a failed start-up prints. */
static void
fail(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "certd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The data directory holds the master key, the database and by default
 * the token file: only certd's uid may reach into it (mode 0700 or less,
 * owned by certd's effective uid).  A link named as the data directory is
 * the operator's and is followed; what it leads to is checked.  Returns
 * the directory's descriptor, or -1 with the reason in err.
 */
static int
open_data_dir(const char *dir, char *err, size_t errlen)
{
	return perm_openat(AT_FDCWD, dir, dir, "data directory",
	    O_RDONLY | O_DIRECTORY, 0, PERM_DIR | PERM_OWNER | PERM_PRIVATE,
	    err, errlen);
}

/*
 * Create the data directory if needed, check it is writable and certd's
 * alone, and lock it.  The lock is an flock on <dir>/certd.lock held for
 * the life of the process; the file is opened relative to the directory,
 * never through a link, and must be certd's with one link before it is
 * truncated.
 */
static int
lock_data_dir(struct daemon *d)
{
	const char	*dir = d->cfg->data_dir;
	char		 path[4096], pid[32], err[1024];
	int		 fd, n;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fail("cannot create data directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		fail("data directory %s is not writable: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((d->dir_fd = open_data_dir(dir, err, sizeof(err))) < 0) {
		fail("%s", err);
		return -1;
	}
	if (snprintf(path, sizeof(path), "%s/certd.lock", dir) >=
	    (int)sizeof(path)) {
		fail("data directory path too long: %s", dir);
		return -1;
	}
	if ((fd = perm_openat(d->dir_fd, "certd.lock", path, "lock file",
	    O_RDWR | O_CREAT, 0600, PERM_NOFOLLOW | PERM_OWNER | PERM_ONE_LINK,
	    err, sizeof(err))) < 0) {
		fail("%s", err);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		n = (int)read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fail("data directory %s is in use by another certd (pid %s)",
		    dir, pid[0] != '\0' ? pid : "unknown");
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		fail("cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	d->lock_fd = fd;
	return 0;
}

/*
 * Read the token file of cfg: whoever can write it holds every power it
 * grants, so it must be owned by root or certd's uid and writable by no
 * one else.  The default one, in the data directory, is opened relative to
 * it and never through a link; one named in the configuration may be a
 * link the operator made (what it leads to is checked).
 */
static struct tokens *
read_tokens(const struct daemon *d, const struct config *cfg, char *err,
    size_t errlen)
{
	char		*path = config_token_file(cfg);
	int		 fd, inside = cfg->token_file == NULL;
	struct tokens	*t = NULL;

	if (path == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fd = perm_openat(inside ? d->dir_fd : AT_FDCWD, inside ? "tokens" : path,
	    path, "token file", O_RDONLY, 0,
	    PERM_GRANTS | (inside ? PERM_NOFOLLOW : 0), err, errlen);
	if (fd >= 0)
		t = tokens_load(fd, path, err, errlen);
	free(path);
	return t;
}

/*
 * Load the token file.  A missing file at the default location is created
 * empty (every request then gets 401 until a token is added); a file named
 * explicitly must exist.
 */
static int
load_tokens(struct daemon *d)
{
	char	*path = config_token_file(d->cfg), err[1024];
	size_t	 len = strlen(TOKENS_HEADER);
	int	 fd, rv = -1;

	if (path == NULL) {
		fail("out of memory");
		return -1;
	}
	if (d->cfg->token_file == NULL) {
		fd = perm_openat(d->dir_fd, "tokens", path, "token file",
		    O_WRONLY | O_CREAT | O_EXCL, 0600, PERM_NOFOLLOW |
		    PERM_OWNER | PERM_ONE_LINK, err, sizeof(err));
		if (fd < 0 && errno != EEXIST) {
			fail("%s", err);
			goto out;
		}
		if (fd >= 0 && write(fd, TOKENS_HEADER, len) != (ssize_t)len) {
			fail("cannot create token file %s: %s", path,
			    strerror(errno));
			close(fd);
			goto out;
		}
		if (fd >= 0) {
			close(fd);
			d->tokens_created = 1;
		}
	}
	if ((d->tokens = read_tokens(d, d->cfg, err, sizeof(err))) == NULL) {
		fail("%s", err);
		goto out;
	}
	rv = 0;
out:
	free(path);
	return rv;
}

#define DAEMON_FLUSH_POLL_MS	10

/* Stop once every answer has been written to its client. */
static void
flush_poll(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;
	struct timeval	 tv = { 0, DAEMON_FLUSH_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (http_unsent(d->http) == 0 && ctl_unsent(d->ctl) == 0)
		event_base_loopexit(d->base, NULL);
	else
		evtimer_add(d->ev_flush, &tv);
}

static void
grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)fd;
	(void)what;
	log_warn("stopping without waiting any longer for clients");
	event_base_loopexit(d->base, NULL);
}

/* One listener has no request left in flight; flush when both are done. */
static void
drained(void *arg)
{
	struct daemon	*d = arg;

	/*
	 * After a forced stop the last requests end inside daemon_close,
	 * with the loop's own events gone: nothing left to flush for.
	 */
	if (d->closing)
		return;
	if (--d->draining == 0)
		flush_poll(-1, 0, d);
}

static void
render_metrics(struct evbuffer *out, void *arg)
{
	struct daemon		*d = arg;
	struct metrics_sources	 src = { d->http, d->ctl, d->hub, d->store,
				    d->svc, d->expiry };

	metrics_render(out, &src);
}

static void
publish(const struct store_change *change, void *arg)
{
	struct daemon	*d = arg;

	hub_publish(d->hub, change);
	if (d->fleet != NULL)
		fleet_applied(d->fleet, change->revision);
	if (d->expiry != NULL)
		expiry_changed(d->expiry, change);
	if (d->http != NULL)
		http_store_changed(d->http, change);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;

	struct timeval	 grace = { CERTD_SHUTDOWN_GRACE, 0 };

	(void)what;
	if (d->stopping) {
		log_warn("second signal: stopping now");
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->stopping = 1;
	log_info("stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
	evtimer_add(d->ev_grace, &grace);
	d->draining = 2;
	http_shutdown(d->http, drained, d);
	ctl_shutdown(d->ctl, drained, d);
}

/* Settings that take effect only at start-up: keep the running ones. */
static int
keep_fixed(struct config *nc, const struct config *old)
{
	char	**s[] = { &nc->data_dir, &nc->listen_host, &nc->socket_path,
		    &nc->token_file, &nc->master_key, &nc->socket_group,
		    &nc->tls_cert, &nc->tls_key, &nc->tls_client_ca,
		    &nc->etcd, &nc->fleet_key, &nc->node, &nc->etcd_prefix,
		    &nc->etcd_ca, &nc->etcd_cert, &nc->etcd_key,
		    &nc->fleet_keyring };
	char	*const o[] = { old->data_dir, old->listen_host, old->socket_path,
		    old->token_file, old->master_key, old->socket_group,
		    old->tls_cert, old->tls_key, old->tls_client_ca,
		    old->etcd, old->fleet_key, old->node, old->etcd_prefix,
		    old->etcd_ca, old->etcd_cert, old->etcd_key,
		    old->fleet_keyring };
	size_t	 i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if ((*s[i] == NULL) != (o[i] == NULL) ||
		    (o[i] != NULL && strcmp(*s[i], o[i]) != 0))
			log_warn("reload: a change of data_dir, listen, socket, "
			    "token_file, master_key, socket_group, a tls_ "
			    "path or [fleet] takes a restart; keeping the "
			    "running value");
		free(*s[i]);
		*s[i] = NULL;
		if (o[i] != NULL && (*s[i] = strdup(o[i])) == NULL)
			return -1;
	}
	nc->listen_port = old->listen_port;
	nc->allow_plain_http = old->allow_plain_http;
	nc->http_max_conns = old->http_max_conns;
	if (nc->cache_size != old->cache_size)
		log_warn("reload: a change of cache_size takes a restart; "
		    "keeping the running value");
	nc->cache_size = old->cache_size;
	return 0;
}

/*
 * What a reload reads again, checked as at start-up: the data directory
 * and the master key keep their modes and owner, and the token file is
 * read whole.  NULL with the reason in err.
 */
static struct tokens *
reload_files(struct daemon *d, const struct config *nc, char *err,
    size_t errlen)
{
	int	fd;

	if ((fd = open_data_dir(nc->data_dir, err, errlen)) < 0)
		return NULL;
	close(fd);
	if (store_key_check(d->store, err, errlen) != 0)
		return NULL;
	return read_tokens(d, nc, err, errlen);
}

/*
 * SIGHUP: build the configuration and read the token file again, check
 * both whole, and the permissions of every file that grants power, and
 * swap only when all are good.  Connections and watches stay.
 */
static void
reload(struct daemon *d)
{
	struct config	*nc;
	struct tokens	*nt;
	char		 err[1024];

	if ((nc = d->rebuild(d->rebuild_arg, err, sizeof(err))) == NULL) {
		log_error("reload failed, keeping the running configuration: %s",
		    err);
		return;
	}
	if (keep_fixed(nc, d->cfg) != 0) {
		log_error("reload failed: out of memory");
		config_free(nc);
		return;
	}
	nt = reload_files(d, nc, err, sizeof(err));
	/* Last, as it takes effect at once: the listener's certificate. */
	if (nt == NULL || http_reload_tls(d->http, nc, err, sizeof(err)) != 0) {
		log_error("reload failed, keeping the running configuration: %s",
		    err);
		tokens_free(nt);
		config_free(nc);
		return;
	}
	http_set_tokens(d->http, nt);
	tokens_free(d->tokens);
	d->tokens = nt;
	ctl_set_config(d->ctl, nc);
	store_set_log_retain(d->store, nc->log_retain);
	store_set_history_keep(d->store, nc->history_keep);
	expiry_configure(d->expiry, nc->expiry_days, nc->n_expiry_days,
	    nc->expiry_scan_interval);
	log_set_level(nc->log_level);
	log_set_syslog(nc->log_syslog);
	config_free(d->owned);
	d->owned = nc;
	d->cfg = nc;
	log_info("reloaded configuration tokens=%zu acl_rules=%zu",
	    tokens_count(nt), nc->n_acl);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)sig;
	(void)what;
	if (!d->stopping && d->rebuild != NULL)
		reload(d);
}

/*
 * Fleet mode: the fleet key checked against etcd's and the mirror brought
 * up to the fleet, for FLEET_START_S at most (etcd away: certd serves its
 * mirror meanwhile); writes go to the fleet from then on.
 */
static int
start_fleet(struct daemon *d, char *err, size_t errlen)
{
	const struct config	*cfg = d->cfg;
	struct fleet_options	 o;
	char			 host[256], *key = NULL;
	int			 rv = -1;

	memset(&o, 0, sizeof(o));
	o.etcd = cfg->etcd;
	if ((o.key_path = cfg->fleet_key) == NULL &&
	    asprintf(&key, "%s/fleet.key", cfg->data_dir) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (o.key_path == NULL)
		o.key_path = key;
	if ((o.node = cfg->node) == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "certd");
		host[sizeof(host) - 1] = '\0';
		o.node = host;
	}
	o.prefix = cfg->etcd_prefix != NULL ? cfg->etcd_prefix : "/certd";
	o.keyring = cfg->fleet_keyring;
	o.tls.ca = cfg->etcd_ca;
	o.tls.cert = cfg->etcd_cert;
	o.tls.key = cfg->etcd_key;
	if ((d->fleet = fleet_new(d->base, d->store, &o, err, errlen)) != NULL)
		fleet_set_hub(d->fleet, d->hub);
	if (d->fleet != NULL &&
	    fleet_start(d->fleet, FLEET_START_S, err, errlen) == 0) {
		service_set_fleet(d->svc, d->fleet);
		log_info("fleet mode: node %s, etcd %s, prefix %s", o.node,
		    o.etcd, o.prefix);
		rv = 0;
	}
	free(key);
	return rv;
}

static void
daemon_close(struct daemon *d)
{
	struct event	**ev[] = { &d->ev_term, &d->ev_int, &d->ev_hup,
			    &d->ev_flush, &d->ev_grace };
	size_t		  i;

	d->closing = 1;
	/* NULL after free: a late use is a crash, not a quiet corruption. */
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		if (*ev[i] != NULL)
			event_free(*ev[i]);
		*ev[i] = NULL;
	}
	/*
	 * The store first: after a forced stop it still runs the completions
	 * of what was queued, and they answer through the listeners and the
	 * hub, which must still be there.  Before it, the REST worker hands
	 * over what it holds (a decoded PUT goes to the service), a backup
	 * in progress finishes, and the service completes the updates that
	 * changed nothing.
	 */
	expiry_free(d->expiry);
	d->expiry = NULL;	/* the store's last completions skip it */
	http_stop_work(d->http);
	ctl_stop_work(d->ctl);
	service_stop(d->svc);
	/*
	 * The fleet after the store, whose last completions reach it (the
	 * mirror's writes, fleet_applied), and before the listeners, through
	 * which its writes still in flight answer.
	 */
	store_free(d->store);
	fleet_free(d->fleet);
	d->fleet = NULL;
	http_free(d->http);
	ctl_free(d->ctl);
	hub_free(d->hub);
	service_free(d->svc);
	tokens_free(d->tokens);
	if (d->base != NULL)
		event_base_free(d->base);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->dir_fd >= 0)
		close(d->dir_fd);
}

/*
 * Every connection is a descriptor: take the whole hard limit of them
 * (the soft one is often 1,024, fewer than the REST cap).
 */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-file limit: %s",
			    strerror(errno));
	}
}

int
daemon_run(const struct config *cfg, daemon_config_cb rebuild, void *arg)
{
	struct daemon	 d;
	struct store_options so;
	struct store_pos pos;
	char		 err[1024], *db, *sock = NULL;
	char		 kid[STORE_KEY_ID_HEX + 1];
	int		 rv = 1;

	memset(&d, 0, sizeof(d));
	memset(&so, 0, sizeof(so));
	d.cfg = cfg;
	d.rebuild = rebuild;
	d.rebuild_arg = arg;
	d.lock_fd = -1;
	d.dir_fd = -1;
	log_set_level(cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	if (lock_data_dir(&d) != 0 || load_tokens(&d) != 0)
		goto out;
	if ((d.base = event_base_new()) == NULL) {
		fail("cannot create the event loop");
		goto out;
	}
	so.master_key = cfg->master_key;
	so.cache_size = cfg->cache_size;
	so.recover = cfg->recover_pit ? STORE_RECOVER_POINT_IN_TIME :
	    STORE_RECOVER_NONE;
	if ((d.store = store_open_opts(d.base, cfg->data_dir, &so, err,
	    sizeof(err))) == NULL) {
		fail("%s", err);
		goto out;
	}
	store_set_log_retain(d.store, cfg->log_retain);
	store_set_history_keep(d.store, cfg->history_keep);
	if ((d.hub = hub_new(d.store)) == NULL ||
	    (d.svc = service_new(d.base, d.store, d.hub)) == NULL ||
	    (sock = config_socket_path(cfg)) == NULL) {
		fail("out of memory");
		goto out;
	}
	store_set_change_cb(d.store, publish, &d);
	if ((d.expiry = expiry_new(d.base, d.store, d.hub, cfg->expiry_days,
	    cfg->n_expiry_days, cfg->expiry_scan_interval)) == NULL) {
		fail("out of memory");
		goto out;
	}
	if (cfg->etcd != NULL && start_fleet(&d, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	if ((d.http = http_new(d.base, d.svc, d.tokens, cfg, err,
	    sizeof(err))) == NULL) {
		fail("%s", err);
		goto out;
	}
	if ((d.ctl = ctl_new(d.base, d.svc, d.hub, cfg, sock, err,
	    sizeof(err))) == NULL) {
		fail("%s", err);
		goto out;
	}
	http_set_metrics(d.http, render_metrics, &d);
	d.ev_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	d.ev_flush = evtimer_new(d.base, flush_poll, &d);
	d.ev_grace = evtimer_new(d.base, grace_over, &d);
	if (d.ev_term == NULL || d.ev_int == NULL || d.ev_hup == NULL ||
	    d.ev_flush == NULL || d.ev_grace == NULL ||
	    evsignal_add(d.ev_hup, NULL) != 0 ||
	    evsignal_add(d.ev_term, NULL) != 0 ||
	    evsignal_add(d.ev_int, NULL) != 0) {
		fail("cannot install signal handlers");
		goto out;
	}

	db = config_token_file(cfg);
	if (d.tokens_created)
		log_warn("created empty token file path=%s", db ? db : "?");
	if (tokens_count(d.tokens) == 0)
		log_warn("no tokens configured: every request gets 401 until one "
		    "is added (certctl token new) path=%s", db ? db : "?");
	store_key_id(d.store, kid);
	store_get_pos(d.store, &pos);
	/* Start-up errors went to stderr; from now on the chosen target. */
	log_set_syslog(cfg->log_syslog);
	log_info("certd ready listen=%s:%u tls=%s socket=%s data_dir=%s "
	    "tokens=%s records=%zu revision=%llu epoch=%llu key_id=%s",
	    cfg->listen_host, http_port(d.http),
	    http_is_tls(d.http) ? "yes" : "no", sock, cfg->data_dir,
	    db != NULL ? db : "?", pos.count,
	    (unsigned long long)pos.revision,
	    (unsigned long long)pos.epoch, kid);
	free(db);

	if (event_base_dispatch(d.base) != 0) {
		log_error("event loop failed");
		goto out;
	}
	log_info("stopped");
	rv = 0;
out:
	daemon_close(&d);
	log_set_syslog(0);
	config_free(d.owned);
	free(sock);
	return rv;
}
