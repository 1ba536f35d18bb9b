/* SPDX-License-Identifier: MIT */
/*
 * Configuration parsing.  A config is built whole and checked before the
 * daemon uses it, so a bad file never leaves a half-applied configuration.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "config.h"
#include "perm.h"
#include "util.h"

#define CONFIG_DATA_DIR_DEFAULT	"./var"
#define CONFIG_HOST_DEFAULT	"127.0.0.1"

/* The embedded defaults; config_new copies the two strings. */
static const struct config config_defaults = {
	.listen_port = CERTD_HTTP_PORT_DEFAULT,
	.log_level = LOG_LEVEL_INFO,
	.frame_max = CERTD_FRAME_MAX_DEFAULT,
	.ctl_max_conns = CERTD_CTL_CONNS_DEFAULT,
	.ctl_max_conns_per_uid = CERTD_CTL_CONNS_PER_UID_DEFAULT,
	.ctl_idle_timeout = CERTD_CTL_IDLE_DEFAULT,
	.ctl_out_limit = CERTD_CTL_OUT_DEFAULT,
	.log_retain = CERTD_LOG_RETAIN_DEFAULT,
	.expiry_days = { 30, 7, 1 },
	.n_expiry_days = 3,
	.expiry_scan_interval = CERTD_EXPIRY_SCAN_DEFAULT,
	.history_keep = CERTD_HISTORY_KEEP_DEFAULT,
	.cache_size = CERTD_CACHE_DEFAULT,
	.http_max_conns = CERTD_HTTP_CONN_MAX,
};

struct config *
config_new(void)
{
	struct config	*cfg;

	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		return NULL;
	*cfg = config_defaults;
	cfg->data_dir = strdup(CONFIG_DATA_DIR_DEFAULT);
	cfg->listen_host = strdup(CONFIG_HOST_DEFAULT);
	if (cfg->data_dir == NULL || cfg->listen_host == NULL) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t	i, j;

	if (cfg == NULL)
		return;
	free(cfg->data_dir);
	free(cfg->listen_host);
	free(cfg->socket_path);
	free(cfg->token_file);
	free(cfg->master_key);
	free(cfg->etcd);
	free(cfg->fleet_key);
	free(cfg->node);
	free(cfg->etcd_prefix);
	free(cfg->etcd_ca);
	free(cfg->etcd_cert);
	free(cfg->etcd_key);
	free(cfg->fleet_keyring);
	free(cfg->socket_group);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_client_ca);
	for (i = 0; i < cfg->n_acl; i++) {
		for (j = 0; j < cfg->acl[i].n_teams; j++)
			free(cfg->acl[i].teams[j]);
		free(cfg->acl[i].teams);
	}
	free(cfg->acl);
	free(cfg);
}

static int
set_string(char **dst, const char *value, const char *key, char *errbuf,
    size_t errlen)
{
	char	*p;

	if (*value == '\0') {
		snprintf(errbuf, errlen, "%s must not be empty", key);
		return -1;
	}
	if ((p = strdup(value)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = p;
	return 0;
}

/* HOST:PORT, [V6]:PORT or :PORT (loopback). */
static int
set_listen(struct config *cfg, const char *value, char *errbuf, size_t errlen)
{
	const char	*colon, *host = value;
	size_t		 hlen;
	uint64_t	 port;
	char		*h;

	if ((colon = strrchr(value, ':')) == NULL)
		goto bad;
	hlen = (size_t)(colon - value);
	if (hlen >= 2 && value[0] == '[' && value[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (util_parse_u64(colon + 1, strlen(colon + 1), 65535, &port) != 0)
		goto bad;
	if (hlen == 0) {
		host = CONFIG_HOST_DEFAULT;
		hlen = strlen(host);
	}
	if ((h = strndup(host, hlen)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	free(cfg->listen_host);
	cfg->listen_host = h;
	cfg->listen_port = (uint16_t)port;
	return 0;
bad:
	snprintf(errbuf, errlen, "listen must be HOST:PORT, not \"%s\"", value);
	return -1;
}

/* A number in [min, max]. */
static int
set_number(uint64_t *out, const char *value, const char *key, uint64_t min,
    uint64_t max, char *errbuf, size_t errlen)
{
	if (util_parse_u64(value, strlen(value), max, out) != 0 || *out < min) {
		snprintf(errbuf, errlen, "%s must be a number from %llu to %llu",
		    key, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

/* The refusal of an expiry_warn_days value; returns -1. */
static int
expiry_days_refused(char *errbuf, size_t errlen)
{
	snprintf(errbuf, errlen, "expiry_warn_days must be a comma list of "
	    "up to %d days from 1 to %d", CERTD_EXPIRY_THRESHOLDS_MAX,
	    CERTD_EXPIRY_DAYS_MAX);
	return -1;
}

/*
 * expiry_warn_days: a comma list of up to CERTD_EXPIRY_THRESHOLDS_MAX days
 * from 1 to CERTD_EXPIRY_DAYS_MAX.
 */
static int
set_expiry_days(struct config *cfg, const char *value, char *errbuf,
    size_t errlen)
{
	char		 buf[128], *save = NULL, *w;
	unsigned	 days[CERTD_EXPIRY_THRESHOLDS_MAX];
	size_t		 nd = 0;
	uint64_t	 n64;

	/* A whole list (the most days, of four digits, and their commas)
	 * fits; a longer value, which a copy would cut, is refused whole. */
	if (strlen(value) >= sizeof(buf))
		return expiry_days_refused(errbuf, errlen);
	memcpy(buf, value, strlen(value) + 1);
	for (w = strtok_r(buf, ",", &save); w != NULL;
	    w = strtok_r(NULL, ",", &save)) {
		if (nd == CERTD_EXPIRY_THRESHOLDS_MAX || util_parse_u64(w,
		    strlen(w), CERTD_EXPIRY_DAYS_MAX, &n64) != 0 || n64 == 0)
			return expiry_days_refused(errbuf, errlen);
		days[nd++] = (unsigned)n64;
	}
	if (nd == 0) {
		snprintf(errbuf, errlen, "expiry_warn_days must not be "
		    "empty");
		return -1;
	}
	memcpy(cfg->expiry_days, days, nd * sizeof(*days));
	cfg->n_expiry_days = nd;
	return 0;
}

/* The settings that take a string (a path, a group name). */
static const struct {
	const char	*key;
	size_t		 off;
} strings[] = {
	{ "socket_group", offsetof(struct config, socket_group) },
	{ "tls_cert", offsetof(struct config, tls_cert) },
	{ "tls_key", offsetof(struct config, tls_key) },
	{ "tls_client_ca", offsetof(struct config, tls_client_ca) },
	{ "data_dir", offsetof(struct config, data_dir) },
	{ "socket", offsetof(struct config, socket_path) },
	{ "token_file", offsetof(struct config, token_file) },
	{ "master_key", offsetof(struct config, master_key) },
	/* [fleet]'s keys, "fleet." and the key (config_load adds it) */
	{ "fleet.etcd", offsetof(struct config, etcd) },
	{ "fleet.key", offsetof(struct config, fleet_key) },
	{ "fleet.node", offsetof(struct config, node) },
	{ "fleet.prefix", offsetof(struct config, etcd_prefix) },
	{ "fleet.ca", offsetof(struct config, etcd_ca) },
	{ "fleet.cert", offsetof(struct config, etcd_cert) },
	{ "fleet.key_file", offsetof(struct config, etcd_key) },
	{ "fleet.keyring", offsetof(struct config, fleet_keyring) },
};

/*
 * The numeric settings: each key is the name of its field and takes a
 * number from low to high.  A refused value leaves the field as it was.
 */
enum number_type { NUMBER_UNSIGNED, NUMBER_SIZE, NUMBER_U64 };

#define NUMBER(field, low, high, type) \
	{ #field, offsetof(struct config, field), low, high, type }

static const struct number_setting {
	const char		*key;
	size_t			 off;
	uint64_t		 low, high;
	enum number_type	 type;
} numbers[] = {
	NUMBER(frame_max, CERTD_FRAME_MAX_LOW, CERTD_FRAME_MAX_HIGH,
	    NUMBER_SIZE),
	NUMBER(ctl_max_conns, 1, CERTD_CTL_CONNS_HIGH, NUMBER_UNSIGNED),
	NUMBER(ctl_max_conns_per_uid, 1, CERTD_CTL_CONNS_HIGH,
	    NUMBER_UNSIGNED),
	NUMBER(ctl_idle_timeout, 1, CERTD_CTL_IDLE_HIGH, NUMBER_UNSIGNED),
	NUMBER(ctl_out_limit, CERTD_CTL_OUT_LOW, CERTD_CTL_OUT_HIGH,
	    NUMBER_SIZE),
	NUMBER(expiry_scan_interval, 1, CERTD_EXPIRY_SCAN_HIGH,
	    NUMBER_UNSIGNED),
	NUMBER(log_retain, 1, UINT64_MAX / 2, NUMBER_U64),
	NUMBER(history_keep, 1, CERTD_HISTORY_KEEP_MAX, NUMBER_U64),
	NUMBER(cache_size, CERTD_CACHE_LOW, CERTD_CACHE_HIGH, NUMBER_SIZE),
	NUMBER(http_max_conns, 1, CERTD_HTTP_CONN_HIGH, NUMBER_SIZE),
};

#undef NUMBER

/* One of the numeric settings, into its field. */
static int
set_setting(struct config *cfg, const struct number_setting *ns,
    const char *value, char *errbuf, size_t errlen)
{
	char		*field = (char *)cfg + ns->off;
	uint64_t	 n;

	if (set_number(&n, value, ns->key, ns->low, ns->high, errbuf,
	    errlen) != 0)
		return -1;
	switch (ns->type) {
	case NUMBER_UNSIGNED:
		*(unsigned *)(void *)field = (unsigned)n;
		break;
	case NUMBER_SIZE:
		*(size_t *)(void *)field = (size_t)n;
		break;
	case NUMBER_U64:
		*(uint64_t *)(void *)field = n;
		break;
	}
	return 0;
}

int
config_set(struct config *cfg, const char *key, const char *value,
    char *errbuf, size_t errlen)
{
	size_t	i;

	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (strcmp(key, strings[i].key) == 0)
			return set_string((char **)(void *)((char *)cfg +
			    strings[i].off), value, key, errbuf, errlen);
	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		if (strcmp(key, numbers[i].key) == 0)
			return set_setting(cfg, &numbers[i], value, errbuf,
			    errlen);
	if (strcmp(key, "expiry_warn_days") == 0)
		return set_expiry_days(cfg, value, errbuf, errlen);
	if (strcmp(key, "allow_plain_http") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			snprintf(errbuf, errlen, "allow_plain_http must be yes "
			    "or no, not \"%s\"", value);
			return -1;
		}
		cfg->allow_plain_http = strcmp(value, "yes") == 0;
		return 0;
	}
	if (strcmp(key, "listen") == 0)
		return set_listen(cfg, value, errbuf, errlen);
	if (strcmp(key, "log_target") == 0) {
		if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0) {
			snprintf(errbuf, errlen,
			    "log_target must be stderr or syslog, not \"%s\"",
			    value);
			return -1;
		}
		cfg->log_syslog = strcmp(value, "syslog") == 0;
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		if (log_parse_level(value, &cfg->log_level) == 0)
			return 0;
		snprintf(errbuf, errlen,
		    "log_level must be debug, info, warn or error, not \"%s\"",
		    value);
		return -1;
	}
	snprintf(errbuf, errlen, "unknown setting \"%s\"", key);
	return -1;
}

static const char *
acl_teams(struct acl_rule *r, const char *s)
{
	const char	*p = s, *comma;
	size_t		 len;
	char		**v;

	if (strcmp(s, "*") == 0) {
		r->all_teams = 1;
		return NULL;
	}
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (!util_team_valid(p, len))
			return "teams must be * or a comma list of team ids";
		if ((v = realloc(r->teams, (r->n_teams + 1) * sizeof(*v))) == NULL)
			return "out of memory";
		r->teams = v;
		if ((v[r->n_teams] = strndup(p, len)) == NULL)
			return "out of memory";
		r->n_teams++;
		if (comma == NULL)
			return NULL;
		p = comma + 1;
	}
}

static const char *
acl_perms(struct acl_rule *r, const char *s)
{
	char	buf[64], *save = NULL, *w;

	if (strlen(s) >= sizeof(buf))
		return "perms must be a comma list of read, write, key";
	snprintf(buf, sizeof(buf), "%s", s);
	for (w = strtok_r(buf, ",", &save); w != NULL;
	    w = strtok_r(NULL, ",", &save)) {
		if (strcmp(w, "read") == 0)
			r->perms |= ACL_READ;
		else if (strcmp(w, "write") == 0)
			r->perms |= ACL_WRITE;
		else if (strcmp(w, "key") == 0)
			r->perms |= ACL_KEY;
		else
			return "perms must be a comma list of read, write, key";
	}
	return r->perms != 0 ? NULL : "perms must not be empty";
}

/* "user NAME", "uid N", "group NAME" or "gid N" = "teams=... perms=..." */
static const char *
acl_line(struct config *cfg, const char *who, char *what)
{
	struct acl_rule	 r, *v;
	const char	*why = NULL, *name;
	char		*save = NULL, *w;
	uint64_t	 n;
	int		 have_teams = 0, have_perms = 0;

	memset(&r, 0, sizeof(r));
	if (strncmp(who, "user ", 5) == 0 || strncmp(who, "group ", 6) == 0) {
		r.is_group = who[0] == 'g';
		for (name = who + (r.is_group ? 6 : 5); *name == ' '; name++)
			;
		if (r.is_group) {
			struct group *gr = getgrnam(name);

			if (gr == NULL)
				return "unknown group";
			r.id = gr->gr_gid;
		} else {
			struct passwd *pw = getpwnam(name);

			if (pw == NULL)
				return "unknown user";
			r.id = pw->pw_uid;
		}
	} else if (strncmp(who, "uid ", 4) == 0 || strncmp(who, "gid ", 4) == 0) {
		r.is_group = who[0] == 'g';
		for (name = who + 4; *name == ' '; name++)
			;
		if (util_parse_u64(name, strlen(name), UINT32_MAX, &n) != 0)
			return "expected a number after uid/gid";
		r.id = (unsigned long)n;
	} else
		return "expected user NAME, uid N, group NAME or gid N";

	for (w = strtok_r(what, " \t", &save); w != NULL && why == NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		if (strncmp(w, "teams=", 6) == 0 && !have_teams) {
			why = acl_teams(&r, w + 6);
			have_teams = 1;
		} else if (strncmp(w, "perms=", 6) == 0 && !have_perms) {
			why = acl_perms(&r, w + 6);
			have_perms = 1;
		} else
			why = "expected teams=... perms=...";
	}
	if (why == NULL && (!have_teams || !have_perms))
		why = "expected teams=... perms=...";
	if (why == NULL &&
	    (v = realloc(cfg->acl, (cfg->n_acl + 1) * sizeof(*v))) == NULL)
		why = "out of memory";
	if (why != NULL) {
		size_t	i;

		for (i = 0; i < r.n_teams; i++)
			free(r.teams[i]);
		free(r.teams);
		return why;
	}
	cfg->acl = v;
	cfg->acl[cfg->n_acl++] = r;
	return NULL;
}

/* Whether rule r names uid or one of its groups. */
static int
acl_applies(const struct acl_rule *r, unsigned long uid,
    const unsigned long *gids, size_t n_gids)
{
	size_t	j;

	if (!r->is_group)
		return r->id == uid;
	for (j = 0; j < n_gids; j++)
		if (r->id == gids[j])
			return 1;
	return 0;
}

unsigned
config_acl_perms(const struct config *cfg, unsigned long uid,
    const unsigned long *gids, size_t n_gids, const char *team)
{
	unsigned	perms = 0;
	size_t		i, j;

	for (i = 0; i < cfg->n_acl; i++) {
		const struct acl_rule *r = &cfg->acl[i];

		if (!acl_applies(r, uid, gids, n_gids))
			continue;
		for (j = 0; !r->all_teams && j < r->n_teams; j++)
			if (strcmp(r->teams[j], team) == 0)
				break;
		if (r->all_teams || j < r->n_teams)
			perms |= r->perms;
	}
	return perms;
}

unsigned
config_acl_any(const struct config *cfg, unsigned long uid,
    const unsigned long *gids, size_t n_gids)
{
	unsigned	perms = 0;
	size_t		i;

	for (i = 0; i < cfg->n_acl; i++)
		if (acl_applies(&cfg->acl[i], uid, gids, n_gids))
			perms |= cfg->acl[i].perms;
	return perms;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Cut a comment off a line: '#' or ';' after a blank, to the end. */
static void
strip_comment(char *v)
{
	char	*p;

	for (p = v; *p != '\0'; p++)
		if ((*p == '#' || *p == ';') && p > v &&
		    (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
}

/* A key of [fleet] (each is "fleet." and it among the strings). */
static int
fleet_key_known(const char *k)
{
	static const char *const keys[] = { "etcd", "key", "node", "prefix",
	    "ca", "cert", "key_file", "keyring" };
	size_t			 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

int
config_load(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	FILE	*f;
	char	 line[4096], why[512], *s, *eq;
	size_t	 lineno = 0;
	const char *why2;
	char	 fkey[64];
	int	 rv = -1, section = 0;	/* 1: [certd], 2: [acl], 3: [fleet] */

	/* It grants socket rights: checked as the token file is. */
	if ((f = perm_fopen(path, "config", PERM_GRANTS, errbuf, errlen)) ==
	    NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(errbuf, errlen, "%s:%zu: line too long", path,
			    lineno);
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		strip_comment(s);
		s = trim(s);
		if (*s == '[') {
			section = strcmp(s, "[certd]") == 0 ? 1 :
			    strcmp(s, "[acl]") == 0 ? 2 :
			    strcmp(s, "[fleet]") == 0 ? 3 : 0;
			if (section == 0) {
				snprintf(errbuf, errlen,
				    "%s:%zu: unknown section %s", path, lineno, s);
				goto out;
			}
			continue;
		}
		if (section == 0 || (eq = strchr(s, '=')) == NULL) {
			snprintf(errbuf, errlen, "%s:%zu: expected key = value "
			    "inside [certd], [fleet] or [acl]", path, lineno);
			goto out;
		}
		*eq = '\0';
		if (section == 2) {
			if ((why2 = acl_line(cfg, trim(s), trim(eq + 1))) != NULL) {
				snprintf(errbuf, errlen, "%s:%zu: %s", path,
				    lineno, why2);
				goto out;
			}
			continue;
		}
		s = trim(s);
		/* [fleet]'s k is "fleet.k", which [certd] does not take */
		if ((section == 3 && !fleet_key_known(s)) ||
		    (section == 1 && strncmp(s, "fleet.", 6) == 0)) {
			snprintf(errbuf, errlen, "%s:%zu: unknown setting "
			    "\"%s\"", path, lineno, s);
			goto out;
		}
		if (section == 3)
			snprintf(fkey, sizeof(fkey), "fleet.%s", s);
		if (config_set(cfg, section == 3 ? fkey : s, trim(eq + 1), why,
		    sizeof(why)) != 0) {
			snprintf(errbuf, errlen, "%s:%zu: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(errbuf, errlen, "cannot read config %s: %s", path,
		    strerror(errno));
		goto out;
	}
	rv = 0;
out:
	fclose(f);
	return rv;
}

static char *
in_data_dir(const struct config *cfg, const char *name)
{
	char	*p;

	if (asprintf(&p, "%s/%s", cfg->data_dir, name) < 0)
		return NULL;
	return p;
}

char *
config_socket_path(const struct config *cfg)
{
	return cfg->socket_path != NULL ? strdup(cfg->socket_path) :
	    in_data_dir(cfg, "certd.sock");
}

char *
config_token_file(const struct config *cfg)
{
	return cfg->token_file != NULL ? strdup(cfg->token_file) :
	    in_data_dir(cfg, "tokens");
}
