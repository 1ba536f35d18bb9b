/* SPDX-License-Identifier: MIT */
/*
 * libcertd GnuTLS reloader: certificate credentials for a GnuTLS server
 * that follow one certificate in certd (by team and id, or team and alias).
 * New handshakes use the newest certificate that loaded; established
 * sessions keep the certificate they were made with.
 *
 *	r = certd_reloader_new(base, &opts, on_reload, app, err, sizeof(err));
 *	...
 *	gnutls_init(&s, GNUTLS_SERVER);
 *	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
 *	    certd_reloader_credentials(r));
 *
 * How it works.  The reloader watches the certificate (certd_watch_new with
 * reconnect, replaying the current state first), so the peer needs the
 * `read` and `key` permissions on the team (root and certd's uid have
 * them).  Each put event is parsed into a fresh key pair (certificate chain
 * and private key, checked to belong together); only when that succeeds is
 * it swapped in as the current pair, and the revision is acked "ok" to certd
 * (certd_watch_ack, shown by `subscribers`).  A change that does not load is
 * acked "failed" with the reason and the previous pair stays current.  A
 * delete is acked "failed" too: the last certificate keeps being served.
 *
 * Handshakes and lifetimes.  The credentials get their certificate from a
 * retrieve callback (gnutls_certificate_set_retrieve_function3).  For every
 * handshake it copies the current pair under the reloader's mutex into
 * objects owned by that session (GNUTLS_CERT_RETR_DEINIT_ALL), which GnuTLS
 * frees in gnutls_deinit().  So:
 *  - a swap never waits for sessions and never frees anything a session
 *    uses: handshakes in flight and established sessions hold their own
 *    copy (GnuTLS uses it until gnutls_deinit, e.g. for
 *    gnutls_certificate_get_ours() or a renegotiation);
 *  - the old pair is freed as soon as it is replaced;
 *  - no per-session hook is needed: the application deinits its sessions
 *    exactly as with ordinary credentials;
 *  - the cost is one copy per full handshake (the chain's DER and public
 *    keys, the private key's numbers): a few microseconds, against about a
 *    millisecond for an RSA-2048 signature.  Resumed sessions make no copy.
 * Before the first certificate has loaded, handshakes fail (no certificate).
 *
 * Threads.  Two ways to run the watch:
 *  - certd_reloader_new(base, ...): on the caller's event_base; loading,
 *    acks and the callback run in the thread that runs that base.
 *  - certd_reloader_start(...): on an event_base of its own in a thread the
 *    reloader creates (all signals blocked there); the callback runs in that
 *    thread.  No libevent thread support (evthread_use_pthreads) is needed:
 *    the reloader's base is only ever used by its thread.
 * In both, sessions may handshake in any number of threads at once:
 * certd_reloader_credentials() and certd_reloader_revision() are
 * thread-safe, the swap is serialised with the per-handshake copy by a
 * mutex held only for the pointer exchange and the copy.
 *
 * Ownership.  The reloader owns the credentials: do not free them, do not
 * load keys into them (the retrieve callback decides the certificate).
 * Other settings of the credentials (e.g. client certificate trust) are the
 * application's to make.  certd_reloader_free() frees the credentials, so
 * every session that uses them must be deinitialized first.  Key material:
 * the private key text of an event is borrowed from libcertd, which wipes it
 * after the callback; the reloader keeps the key only as GnuTLS objects,
 * which GnuTLS wipes when they are freed.  Nothing is logged about keys.
 */
#ifndef CERTD_RELOADER_H
#define CERTD_RELOADER_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include <certd/certd.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct certd_reloader;

/*
 * The server is checked as every libcertd connection is (certd.h, "Who the
 * server is"): certd_client_set_server_uid() or $CERTD_SERVER_UID name
 * certd's user when it is neither root nor the program's own.
 */
struct certd_reloader_opts {
	const char	*socket;	/* NULL: certd_socket_path(NULL) */
	const char	*team;		/* required */
	uint64_t	 id;		/* the certificate: id (non-zero) ... */
	const char	*alias;		/* ... or alias; exactly one of the two */
	const char	*name;		/* in `subscribers`; NULL: "certd-reloader" */
	unsigned	 backoff_max_ms; /* reconnect back-off cap; 0: 5000 */
};

enum certd_reload_kind {
	CERTD_RELOAD_SWAPPED = 1,	/* new handshakes use this certificate */
	CERTD_RELOAD_FAILED,		/* a change did not load; old one stays */
	CERTD_RELOAD_DELETED,		/* deleted in certd, or renamed away from
					   the alias followed; old one stays */
	CERTD_RELOAD_CONNECTED,		/* watching (again) */
	CERTD_RELOAD_DISCONNECTED,	/* lost certd; reconnecting unless ended */
};

/*
 * What happened.  Strings are borrowed for the call; fields that do not
 * apply are 0 or NULL.
 */
struct certd_reload_event {
	enum certd_reload_kind	 kind;
	uint64_t		 revision;	/* of the change (swapped, failed,
						   deleted) */
	uint64_t		 cert_id;
	const char		*alias;
	const char		*fingerprint_sha256;	/* swapped, failed */
	int64_t			 not_after;		/* swapped */
	const char		*error;		/* failed, disconnected: why */
	int			 ended;		/* disconnected: no reconnect */
	int			 first;		/* swapped: the first certificate */
	/*
	 * Addition: disconnected: CERTD_E_* or -status, as in
	 * certd_event.code; CERTD_E_PEER when the server was refused (see
	 * "Who the server is" in certd.h), reported at every retry.
	 */
	int			 code;
};

typedef void	(*certd_reload_cb)(const struct certd_reload_event *ev,
		    void *arg);

/*
 * A reloader whose watch runs on base (see Threads above).  cb may be NULL;
 * it runs on base's thread.  opts is copied.  Returns NULL with a reason in
 * errbuf for bad options or when GnuTLS or memory fails; certd being down is
 * not an error (the watch keeps retrying; cb hears DISCONNECTED).
 */
CERTD_API struct certd_reloader *certd_reloader_new(struct event_base *base,
		    const struct certd_reloader_opts *opts, certd_reload_cb cb,
		    void *arg, char *errbuf, size_t errlen);

/*
 * The same with the watch on a thread of the reloader's own; cb runs on
 * that thread.
 */
CERTD_API struct certd_reloader *certd_reloader_start(
		    const struct certd_reloader_opts *opts, certd_reload_cb cb,
		    void *arg, char *errbuf, size_t errlen);

/*
 * Stop watching and free, credentials included: deinit the sessions using
 * them first.  Accepts NULL.  No callback runs after it returns, except
 * when it is called from inside cb: the free then completes once the
 * reloader's handler unwinds (on the reloader's thread for
 * certd_reloader_start).  Otherwise call it from one thread, once.
 */
CERTD_API void	certd_reloader_free(struct certd_reloader *r);

/* The credentials to give sessions; valid until certd_reloader_free. */
CERTD_API gnutls_certificate_credentials_t
		certd_reloader_credentials(const struct certd_reloader *r);

/* Revision of the certificate new handshakes use; 0 before the first. */
CERTD_API uint64_t certd_reloader_revision(struct certd_reloader *r);

#ifdef __cplusplus
}
#endif

#endif
