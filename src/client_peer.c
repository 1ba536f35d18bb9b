/* SPDX-License-Identifier: MIT */
/*
 * libcertd: who the server is.  Every connection the library opens (the
 * blocking client, each connect of a watch, so each of a reloader) calls
 * client_peer_check() once connect(2) has succeeded and before it sends
 * anything: the uid that SO_PEERCRED reports for the listening process
 * must be root, the caller's real or effective uid, or certd's user (the
 * process-wide setting of certd_client_set_server_uid, else
 * $CERTD_SERVER_UID, else the user named at build time, CERTD_SERVER_USER).
 * Otherwise a user who bound the socket path first would receive the keys
 * of `certctl put` and feed `certctl sync` a key and certificate of theirs.
 *
 * certd's user is resolved at every check, not cached: the environment and
 * the user database may change, and a check happens once per connection.
 */
#include <sys/socket.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <certd/certd.h>

#include "client_peer.h"

#ifndef CERTD_SERVER_USER
#define CERTD_SERVER_USER	"certd"
#endif

#define PEER_PWBUF_MIN	1024
#define PEER_PWBUF_MAX	(1024 * 1024)

/* certd_client_set_server_uid's uid; -1: not set.  Atomic loads/stores. */
static int64_t	peer_server_uid = -1;

/* What certd's user is, for the check and for its message. */
struct peer_want {
	int	have;		/* uid is known */
	uid_t	uid;
	char	how[256];	/* where it comes from, or why there is none */
};

/*
 * getpwnam_r (name != NULL) or getpwuid_r into *pw, with a buffer *buf
 * that grows on ERANGE; the caller frees *buf whatever the result.
 * Returns 0, CERTD_E_PEER when there is no such user, CERTD_E_NOMEM.
 */
static int
peer_getpw(const char *name, uid_t uid, struct passwd *pw, char **buf)
{
	struct passwd	*res = NULL;
	long		 hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t		 len = hint > PEER_PWBUF_MIN ? (size_t)hint :
			    PEER_PWBUF_MIN;
	char		*nbuf;
	int		 r;

	*buf = NULL;
	for (;;) {
		if ((nbuf = realloc(*buf, len)) == NULL)
			return CERTD_E_NOMEM;
		*buf = nbuf;
		if (name != NULL)
			r = getpwnam_r(name, pw, *buf, len, &res);
		else
			r = getpwuid_r(uid, pw, *buf, len, &res);
		if (r != ERANGE || len >= PEER_PWBUF_MAX)
			break;
		len *= 2;
	}
	if (r == ENOMEM)
		return CERTD_E_NOMEM;
	return res != NULL ? 0 : CERTD_E_PEER;
}

int
client_peer_parse_uid(const char *s, uid_t *uid)
{
	struct passwd		 pw;
	unsigned long long	 v;
	char			*buf = NULL, *end;
	int			 r;

	if (s == NULL || *s == '\0')
		return CERTD_E_INVAL;
	if (strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0 || *end != '\0' || v >= (uid_t)-1)
			return CERTD_E_INVAL;
		*uid = (uid_t)v;
		return 0;
	}
	if ((r = peer_getpw(s, 0, &pw, &buf)) == 0)
		*uid = pw.pw_uid;
	free(buf);
	return r;
}

int
client_peer_set_server_uid(int64_t uid)
{
	if (uid < -1 || (uid >= 0 && (uint64_t)uid >= (uid_t)-1))
		return CERTD_E_INVAL;
	__atomic_store_n(&peer_server_uid, uid, __ATOMIC_RELEASE);
	return 0;
}

static void
peer_want_resolve(struct peer_want *w)
{
	int64_t		 set;
	const char	*env, *why;
	int		 r;

	memset(w, 0, sizeof(*w));
	set = __atomic_load_n(&peer_server_uid, __ATOMIC_ACQUIRE);
	if (set >= 0) {
		w->have = 1;
		w->uid = (uid_t)set;
		snprintf(w->how, sizeof(w->how), "certd_client_set_server_uid");
		return;
	}
	env = secure_getenv(CERTD_SERVER_UID_ENV);
	if (env != NULL && *env != '\0') {
		r = client_peer_parse_uid(env, &w->uid);
		w->have = r == 0;
		why = r == 0 ? "" : r == CERTD_E_PEER ? " names no user" :
		    r == CERTD_E_NOMEM ? " not resolved: out of memory" :
		    " is not a uid";
		snprintf(w->how, sizeof(w->how), "%s=%.64s%s",
		    CERTD_SERVER_UID_ENV, env, why);
		return;
	}
	if (*CERTD_SERVER_USER == '\0') {
		snprintf(w->how, sizeof(w->how), "%s is not set",
		    CERTD_SERVER_UID_ENV);
		return;
	}
	r = client_peer_parse_uid(CERTD_SERVER_USER, &w->uid);
	w->have = r == 0;
	if (r == 0)
		snprintf(w->how, sizeof(w->how), "user %s", CERTD_SERVER_USER);
	else
		snprintf(w->how, sizeof(w->how), "%s is not set and there is "
		    "no user %s", CERTD_SERVER_UID_ENV, CERTD_SERVER_USER);
}

/* The refusal: the socket, the server's uid (and name), what we expected. */
static void
peer_refusal(const char *path, uid_t uid, const struct peer_want *w,
    char *err, size_t errlen)
{
	struct passwd	 pw;
	char		*buf = NULL, name[96] = "", yours[64], want[320];
	uid_t		 ruid = getuid(), euid = geteuid();

	if (peer_getpw(NULL, uid, &pw, &buf) == 0)
		snprintf(name, sizeof(name), " (%.64s)", pw.pw_name);
	free(buf);
	if (ruid == euid)
		snprintf(yours, sizeof(yours), "uid %lu (yours)",
		    (unsigned long)ruid);
	else
		snprintf(yours, sizeof(yours), "uid %lu or %lu (yours)",
		    (unsigned long)ruid, (unsigned long)euid);
	if (w->have)
		snprintf(want, sizeof(want), "uid %lu (%s)",
		    (unsigned long)w->uid, w->how);
	else
		snprintf(want, sizeof(want), "certd's user (%s)", w->how);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "certd at %s runs as uid %lu%s; expected "
		    "root, %s or %s", path, (unsigned long)uid, name, yours,
		    want);
}

int
client_peer_check(int fd, const char *path, char *err, size_t errlen)
{
	struct ucred		cred;
	struct peer_want	want;
	socklen_t		len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "certd at %s: cannot tell who "
			    "the server is (SO_PEERCRED): %s", path,
			    len != sizeof(cred) ? "short answer" :
			    strerror(errno));
		return CERTD_E_PEER;
	}
	if (cred.uid == 0 || cred.uid == getuid() || cred.uid == geteuid())
		return 0;
	peer_want_resolve(&want);
	if (want.have && cred.uid == want.uid)
		return 0;
	peer_refusal(path, cred.uid, &want, err, errlen);
	return CERTD_E_PEER;
}
