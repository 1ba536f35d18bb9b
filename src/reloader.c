/* SPDX-License-Identifier: MIT */
/*
 * libcertd GnuTLS reloader (include/certd/reloader.h): a certd watch that
 * loads each new version of one certificate into a key pair (cert.c's
 * cert_pair_new, the loader of the daemon's TLS listener too), and
 * credentials whose retrieve callback hands every handshake its own copy of
 * the current pair.  The watch side (loading, acks, the application's
 * callback) runs on one event_base thread; the retrieve callback runs in
 * whatever threads make handshakes.  They share only `pair` (and
 * `revision`), under `mu`.
 *
 * GnuTLS gives the retrieve callback the credentials, not the reloader, so
 * live reloaders are kept in a small registry keyed by their credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include <certd/certd.h>
#include <certd/reloader.h>

#include "cert.h"
#include "util.h"

#define RELOADER_NAME_DEFAULT	"certd-reloader"
#define RELOADER_ERR_MAX	256

/*
 * Threads: `mu` guards pair and revision, which the retrieve callback
 * reads from any thread.  Everything else belongs to the loop thread (the
 * caller's for certd_reloader_new, ours for certd_reloader_start), except
 * the fields fixed before the loop runs (cred, base, thread, wake_fd).
 * busy counts our handlers on the stack; a free during one sets dead and
 * the outermost handler finishes it.
 */
struct certd_reloader {
	gnutls_certificate_credentials_t cred;
	struct certd_reloader	*next;		/* registry */

	pthread_mutex_t		 mu;
	/*
	 * The template every handshake copies from, NULL before the first
	 * load; freed by whoever unpublishes it (a swap, or the reloader's
	 * free), never while `mu` could let a handshake read it.
	 */
	struct cert_pair	*pair;
	uint64_t		 revision;	/* pair's, or 0 */

	struct event_base	*base;
	struct certd_watch	*watch;
	certd_reload_cb		 cb;
	void			*arg;
	int			 loaded;	/* a pair was ever swapped in */
	uint64_t		 ack_rev;	/* the last ack, resent on */
	int			 ack_ok;	/* reconnecting (0: none) */
	char			 ack_detail[RELOADER_ERR_MAX];
	int			 busy;
	int			 dead;

	/* certd_reloader_start only */
	int			 threaded;
	pthread_t		 thread;
	int			 wake_fd[2];	/* write a byte: leave the loop */
	struct event		*wake;
	int			 self_free;	/* freed from its own thread */
};

static pthread_mutex_t		 registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct certd_reloader	*registry;

static void
registry_add(struct certd_reloader *r)
{
	pthread_mutex_lock(&registry_mu);
	r->next = registry;
	registry = r;
	pthread_mutex_unlock(&registry_mu);
}

static void
registry_remove(struct certd_reloader *r)
{
	struct certd_reloader	**pp;

	pthread_mutex_lock(&registry_mu);
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&registry_mu);
}

/*
 * The reloader owning cred.  It stays valid after the registry lock is
 * dropped because it may only be freed once no session uses cred.
 */
static struct certd_reloader *
registry_find(gnutls_certificate_credentials_t cred)
{
	struct certd_reloader	*r;

	pthread_mutex_lock(&registry_mu);
	for (r = registry; r != NULL; r = r->next)
		if (r->cred == cred)
			break;
	pthread_mutex_unlock(&registry_mu);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Key pairs */

/*
 * A certificate's PEM chain and key as a new pair, checked the way a
 * handshake will use it.  The key text is the caller's (libcertd wipes
 * it).
 */
static struct cert_pair *
pair_load(const struct certd_cert *c, char *err, size_t errlen)
{
	if (c->certificate == NULL || *c->certificate == '\0') {
		util_fmt(err, errlen, "no certificate in the event");
		return NULL;
	}
	if (c->private_key == NULL || *c->private_key == '\0') {
		util_fmt(err, errlen, "no private key in the event "
		    "(the key permission is needed)");
		return NULL;
	}
	return cert_pair_new(c->certificate, strlen(c->certificate),
	    c->private_key, strlen(c->private_key), err, errlen);
}

/*
 * GnuTLS asks for the certificate of a handshake (any thread).  No pair
 * yet: no certificate, and the handshake fails.
 */
static int
reloader_retrieve(gnutls_session_t session,
    const struct gnutls_cert_retr_st *info, gnutls_pcert_st **certs,
    unsigned int *ncerts, gnutls_ocsp_data_st **ocsp,
    unsigned int *nocsp, gnutls_privkey_t *key, unsigned int *flags)
{
	struct certd_reloader	*r;
	int			 rv = 0;

	(void)session;
	*certs = NULL;
	*ncerts = 0;
	*ocsp = NULL;
	*nocsp = 0;
	*key = NULL;
	*flags = 0;
	if ((r = registry_find(info->cred)) == NULL)
		return -1;
	pthread_mutex_lock(&r->mu);
	if (r->pair != NULL)
		rv = cert_pair_copy(r->pair, certs, ncerts, key);
	pthread_mutex_unlock(&r->mu);
	if (rv != 0)
		return -1;
	*flags = GNUTLS_CERT_RETR_DEINIT_ALL;	/* the session owns the copy */
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The watch side (loop thread) */

static void
reloader_notify(struct certd_reloader *r, const struct certd_reload_event *ev)
{
	if (r->cb != NULL && !r->dead)
		r->cb(ev, r->arg);
}

/*
 * Report an outcome to certd.  It is kept: a new connection is a new watch
 * in certd's eyes, and resuming after the last revision replays nothing,
 * so reloader_watch_cb sends it again on CONNECTED.
 */
static void
reloader_ack(struct certd_reloader *r, uint64_t revision, int ok,
    const char *detail)
{
	r->ack_rev = revision;
	r->ack_ok = ok;
	(void)snprintf(r->ack_detail, sizeof(r->ack_detail), "%s", detail);
	if (r->watch != NULL)
		(void)certd_watch_ack(r->watch, revision, ok, detail);
}

static void
reloader_put(struct certd_reloader *r, const struct certd_event *ev)
{
	struct certd_reload_event	 rev;
	struct cert_pair		*p, *old;
	char				 err[RELOADER_ERR_MAX];
	uint64_t			 cur;

	pthread_mutex_lock(&r->mu);
	cur = r->revision;
	pthread_mutex_unlock(&r->mu);
	if (cur != 0 && cur == ev->revision) {
		/* A replay of what we serve (reconnect): ack, no swap. */
		reloader_ack(r, ev->revision, 1, "reloaded");
		return;
	}

	memset(&rev, 0, sizeof(rev));
	rev.revision = ev->revision;
	rev.cert_id = ev->cert->id;
	rev.alias = ev->cert->alias;
	rev.fingerprint_sha256 = ev->cert->fingerprint_sha256;
	if ((p = pair_load(ev->cert, err, sizeof(err))) == NULL) {
		reloader_ack(r, ev->revision, 0, err);
		rev.kind = CERTD_RELOAD_FAILED;
		rev.error = err;
		reloader_notify(r, &rev);
		return;
	}
	pthread_mutex_lock(&r->mu);
	old = r->pair;
	r->pair = p;
	r->revision = ev->cert->revision;
	pthread_mutex_unlock(&r->mu);
	cert_pair_free(old);	/* no handshake can be copying it now */

	reloader_ack(r, ev->revision, 1, "reloaded");
	rev.kind = CERTD_RELOAD_SWAPPED;
	rev.not_after = ev->cert->not_after;
	rev.first = !r->loaded;
	r->loaded = 1;
	reloader_notify(r, &rev);
}

static void	reloader_destroy(struct certd_reloader *);

static void
reloader_watch_cb(const struct certd_event *ev, void *arg)
{
	struct certd_reloader		*r = arg;
	struct certd_reload_event	 rev;

	if (r->dead)
		return;
	r->busy++;
	memset(&rev, 0, sizeof(rev));
	switch (ev->kind) {
	case CERTD_EVENT_PUT:
		if (ev->cert == NULL)
			break;
		if (!ev->left) {
			reloader_put(r, ev);
			break;
		}
		/* Renamed away from our alias: no longer ours to serve. */
		/* FALLTHROUGH */
	case CERTD_EVENT_DELETE:
		reloader_ack(r, ev->revision, 0, ev->kind == CERTD_EVENT_PUT ?
		    "the certificate left the alias; still serving the last "
		    "certificate" :
		    "deleted in certd; still serving the last certificate");
		rev.kind = CERTD_RELOAD_DELETED;
		rev.revision = ev->revision;
		if (ev->cert != NULL) {
			rev.cert_id = ev->cert->id;
			rev.alias = ev->cert->alias;
		}
		reloader_notify(r, &rev);
		break;
	case CERTD_EVENT_CONNECTED:
		/*
		 * When the whole state follows, the last ack may be of a store
		 * this one was restored from: the state is acked anew instead.
		 */
		if (ev->state)
			r->ack_rev = 0;
		if (r->ack_rev != 0)
			(void)certd_watch_ack(r->watch, r->ack_rev, r->ack_ok,
			    r->ack_detail);
		rev.kind = CERTD_RELOAD_CONNECTED;
		rev.revision = ev->revision;
		reloader_notify(r, &rev);
		break;
	case CERTD_EVENT_DISCONNECTED:
		rev.kind = CERTD_RELOAD_DISCONNECTED;
		rev.error = ev->error;
		rev.ended = ev->ended;
		rev.code = ev->code;
		reloader_notify(r, &rev);
		break;
	case CERTD_EVENT_RESYNC:	/* the current state follows as puts */
		break;
	}
	/* Freed from the callback: finish it now on the loop's side. */
	if (--r->busy == 0 && r->dead && !r->threaded)
		reloader_destroy(r);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

static void
reloader_destroy(struct certd_reloader *r)
{
	registry_remove(r);
	certd_watch_free(r->watch);
	if (r->wake != NULL)
		event_free(r->wake);
	if (r->threaded)
		event_base_free(r->base);
	if (r->wake_fd[0] != -1)
		(void)close(r->wake_fd[0]);
	if (r->wake_fd[1] != -1)
		(void)close(r->wake_fd[1]);
	if (r->cred != NULL)
		gnutls_certificate_free_credentials(r->cred);
	cert_pair_free(r->pair);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static const char *
opts_invalid(const struct certd_reloader_opts *o)
{
	if (o->team == NULL || *o->team == '\0')
		return "a team is needed";
	if ((o->id != 0) == (o->alias != NULL))
		return "exactly one of id and alias is needed";
	if (o->alias != NULL && *o->alias == '\0')
		return "empty alias";
	return NULL;
}

static struct certd_reloader *
reloader_create(struct event_base *base, const struct certd_reloader_opts *o,
    certd_reload_cb cb, void *arg, char *errbuf, size_t errlen)
{
	struct certd_reloader	*r;
	struct certd_watch_opts	 wo;
	const char		*why, *alias = o != NULL ? o->alias : NULL;
	int			 rv;

	if (base == NULL || o == NULL) {
		util_fmt(errbuf, errlen, "reloader: base and options needed");
		return NULL;
	}
	if ((why = opts_invalid(o)) != NULL) {
		util_fmt(errbuf, errlen, "reloader: %s", why);
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		util_fmt(errbuf, errlen, "out of memory");
		return NULL;
	}
	r->base = base;
	r->cb = cb;
	r->arg = arg;
	r->wake_fd[0] = r->wake_fd[1] = -1;
	if ((rv = pthread_mutex_init(&r->mu, NULL)) != 0) {
		util_fmt(errbuf, errlen, "reloader: mutex: %s", strerror(rv));
		free(r);
		return NULL;
	}
	if ((rv = gnutls_certificate_allocate_credentials(&r->cred)) < 0) {
		r->cred = NULL;
		util_fmt(errbuf, errlen, "reloader: credentials: %s",
		    gnutls_strerror(rv));
		goto fail;
	}
	gnutls_certificate_set_retrieve_function3(r->cred, reloader_retrieve);
	registry_add(r);

	memset(&wo, 0, sizeof(wo));
	wo.socket = o->socket;
	wo.team = o->team;
	if (o->id != 0) {
		wo.ids = &o->id;
		wo.n_ids = 1;
	} else {
		wo.aliases = &alias;	/* copied by certd_watch_new */
		wo.n_aliases = 1;
	}
	wo.has_since = 1;		/* replay the current state first */
	wo.since = 0;
	wo.name = o->name != NULL ? o->name : RELOADER_NAME_DEFAULT;
	wo.reconnect = 1;
	wo.backoff_max_ms = o->backoff_max_ms;
	r->watch = certd_watch_new(base, &wo, reloader_watch_cb, r, errbuf,
	    errlen);
	if (r->watch == NULL)
		goto fail;
	return r;
fail:
	reloader_destroy(r);
	return NULL;
}

struct certd_reloader *
certd_reloader_new(struct event_base *base,
    const struct certd_reloader_opts *opts, certd_reload_cb cb, void *arg,
    char *errbuf, size_t errlen)
{
	return reloader_create(base, opts, cb, arg, errbuf, errlen);
}

static void
reloader_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct certd_reloader	*r = arg;
	char			 buf[16];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	event_base_loopbreak(r->base);
}

static void *
reloader_thread(void *arg)
{
	struct certd_reloader	*r = arg;

	(void)event_base_dispatch(r->base);
	if (r->self_free) {
		/* certd_reloader_free came from our own callback. */
		(void)pthread_detach(pthread_self());
		reloader_destroy(r);
	}
	return NULL;
}

struct certd_reloader *
certd_reloader_start(const struct certd_reloader_opts *opts,
    certd_reload_cb cb, void *arg, char *errbuf, size_t errlen)
{
	struct certd_reloader	*r;
	struct event_base	*base;
	sigset_t		 all, old;
	int			 rv;

	if ((base = event_base_new()) == NULL) {
		util_fmt(errbuf, errlen,
		    "reloader: cannot create an event base");
		return NULL;
	}
	if ((r = reloader_create(base, opts, cb, arg, errbuf,
	    errlen)) == NULL) {
		event_base_free(base);
		return NULL;
	}
	r->threaded = 1;		/* from now on the base is r's */
	if (pipe2(r->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		util_fmt(errbuf, errlen, "reloader: pipe: %s", strerror(errno));
		r->wake_fd[0] = r->wake_fd[1] = -1;
		goto fail;
	}
	r->wake = event_new(base, r->wake_fd[0], EV_READ | EV_PERSIST,
	    reloader_wake_cb, r);
	if (r->wake == NULL || event_add(r->wake, NULL) != 0) {
		util_fmt(errbuf, errlen, "out of memory");
		goto fail;
	}
	/* Signals are the application's: none for our thread but faults. */
	util_sigset_async(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rv = pthread_create(&r->thread, NULL, reloader_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv != 0) {
		util_fmt(errbuf, errlen, "reloader: thread: %s", strerror(rv));
		goto fail;
	}
	return r;
fail:
	reloader_destroy(r);	/* frees base too */
	return NULL;
}

void
certd_reloader_free(struct certd_reloader *r)
{
	ssize_t	n;

	if (r == NULL || r->dead)
		return;
	if (r->threaded) {
		if (pthread_equal(pthread_self(), r->thread)) {
			/* From our callback: the thread finishes it. */
			r->dead = 1;
			r->self_free = 1;
			event_base_loopbreak(r->base);
			return;
		}
		do
			n = write(r->wake_fd[1], "x", 1);
		while (n < 0 && errno == EINTR);
		(void)pthread_join(r->thread, NULL);
		reloader_destroy(r);
		return;
	}
	if (r->busy > 0) {
		/* From our callback: no more callbacks; the handler frees. */
		r->dead = 1;
		certd_watch_free(r->watch);	/* deferred by the watch */
		r->watch = NULL;
		return;
	}
	reloader_destroy(r);
}

gnutls_certificate_credentials_t
certd_reloader_credentials(const struct certd_reloader *r)
{
	return r != NULL ? r->cred : NULL;
}

uint64_t
certd_reloader_revision(struct certd_reloader *r)
{
	uint64_t	rev;

	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->mu);
	rev = r->revision;
	pthread_mutex_unlock(&r->mu);
	return rev;
}
