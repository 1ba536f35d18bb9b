/* SPDX-License-Identifier: MIT */
/*
 * Configuration parsing.  A config is built whole and checked before the
 * daemon uses it, so a bad file never leaves a half-applied configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "config.h"
#include "util.h"

#define CONFIG_DATA_DIR_DEFAULT	"./var"
#define CONFIG_HOST_DEFAULT	"127.0.0.1"

struct config *
config_new(void)
{
	struct config	*cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	cfg->data_dir = strdup(CONFIG_DATA_DIR_DEFAULT);
	cfg->listen_host = strdup(CONFIG_HOST_DEFAULT);
	cfg->listen_port = CERTD_HTTP_PORT_DEFAULT;
	cfg->log_level = LOG_LEVEL_INFO;
	if (cfg->data_dir == NULL || cfg->listen_host == NULL) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->data_dir);
	free(cfg->listen_host);
	free(cfg->socket_path);
	free(cfg->token_file);
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

int
config_set(struct config *cfg, const char *key, const char *value,
    char *errbuf, size_t errlen)
{
	if (strcmp(key, "data_dir") == 0)
		return set_string(&cfg->data_dir, value, key, errbuf, errlen);
	if (strcmp(key, "socket") == 0)
		return set_string(&cfg->socket_path, value, key, errbuf, errlen);
	if (strcmp(key, "token_file") == 0)
		return set_string(&cfg->token_file, value, key, errbuf, errlen);
	if (strcmp(key, "listen") == 0)
		return set_listen(cfg, value, errbuf, errlen);
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

int
config_load(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	FILE	*f;
	char	 line[4096], why[512], *s, *eq;
	size_t	 lineno = 0;
	int	 rv = -1, in_certd = 0;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errlen, "cannot read config %s: %s", path,
		    strerror(errno));
		return -1;
	}
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
		if (*s == '[') {
			in_certd = strcmp(s, "[certd]") == 0;
			if (!in_certd) {
				snprintf(errbuf, errlen,
				    "%s:%zu: unknown section %s", path, lineno, s);
				goto out;
			}
			continue;
		}
		if (!in_certd || (eq = strchr(s, '=')) == NULL) {
			snprintf(errbuf, errlen, "%s:%zu: expected key = value "
			    "inside [certd]", path, lineno);
			goto out;
		}
		*eq = '\0';
		if (config_set(cfg, trim(s), trim(eq + 1), why,
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
