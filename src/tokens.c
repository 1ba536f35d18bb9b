/* SPDX-License-Identifier: MIT */
/*
 * Token file parsing and token authentication.  Parsing is strict: a token
 * file that certd half understands would grant or deny the wrong clients, so
 * any malformed line stops start-up with the line number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "certd/constants.h"
#include "tokens.h"
#include "util.h"

struct tokens {
	struct token	*v;
	size_t		 n;
	size_t		 cap;
};

static void
token_clear(struct token *tok)
{
	size_t	i;

	for (i = 0; i < tok->n_teams; i++)
		free(tok->teams[i]);
	free(tok->teams);
	free(tok->subject);
	memset(tok, 0, sizeof(*tok));
}

void
tokens_free(struct tokens *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		token_clear(&t->v[i]);
	free(t->v);
	free(t);
}

size_t
tokens_count(const struct tokens *t)
{
	return t->n;
}

static int
name_valid(const char *s)
{
	size_t	len = strlen(s), i;

	if (len == 0 || len > CERTD_TOKEN_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("_.-@", c) != NULL))
			return 0;
	}
	return 1;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
parse_hash(const char *s, unsigned char out[32])
{
	size_t	i;

	if (strncmp(s, "sha256:", 7) != 0)
		return -1;
	s += 7;
	if (strlen(s) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Parse "*" or "a,b,c" into tok; returns NULL or a reason. */
static const char *
parse_teams(const char *s, struct token *tok)
{
	const char	*p = s, *comma;

	if (strcmp(s, "*") == 0) {
		tok->all_teams = 1;
		return NULL;
	}
	for (;;) {
		size_t	 len;
		char	**nt;

		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (!util_team_valid(p, len))
			return "teams must be * or a comma list of team ids";
		nt = realloc(tok->teams, (tok->n_teams + 1) * sizeof(*nt));
		if (nt == NULL)
			return "out of memory";
		tok->teams = nt;
		if ((tok->teams[tok->n_teams] = strndup(p, len)) == NULL)
			return "out of memory";
		tok->n_teams++;
		if (comma == NULL)
			return NULL;
		p = comma + 1;
	}
}

/*
 * Split line in place into at most max whitespace-separated fields.  A
 * double-quoted part of a field may hold blanks and '#'; it ends at a '"'
 * that no backslash precedes, and backslashes are kept, so that a DN is
 * written as GnuTLS prints it (CN=say \"hi\" stays as it is).  Returns the
 * count, or -1 (too many fields, or an unterminated quote).
 */
static int
split(char *line, char **field, size_t max)
{
	char	*r = line, *w = line;
	size_t	 n = 0;

	for (;;) {
		int quoted = 0;

		while (*r == ' ' || *r == '\t')
			r++;
		if (*r == '\0')
			return (int)n;
		if (n == max)
			return -1;
		field[n++] = w;
		for (; *r != '\0' && (quoted || (*r != ' ' && *r != '\t')); r++) {
			if (*r == '"' && !(quoted && r[-1] == '\\'))
				quoted = !quoted;
			else
				*w++ = *r;
		}
		if (quoted)
			return -1;
		if (*r != '\0')
			r++;
		*w++ = '\0';
	}
}

/* Cut line at a '#' that no quoted field holds (see split). */
static void
cut_comment(char *line)
{
	char	*p;
	int	 quoted = 0;

	for (p = line; *p != '\0'; p++)
		if (*p == '"' && !(quoted && p[-1] == '\\'))
			quoted = !quoted;
		else if (*p == '#' && !quoted) {
			*p = '\0';
			return;
		}
}

/*
 * keys=yes|no; without it a write token may read keys and a read token may
 * not (before keys= existed every token could: the upgrade note in
 * README.md says so).
 */
static const char *
parse_keys(const char *s, struct token *tok)
{
	if (strcmp(s, "yes") == 0)
		tok->keys = 1;
	else if (strcmp(s, "no") == 0)
		tok->keys = 0;
	else
		return "keys must be yes or no";
	return NULL;
}

/*
 * Parse one non-comment line into tok; returns NULL or a reason (static,
 * or in buf when it states a limit).
 */
static const char *
parse_line(char *line, struct token *tok, char *buf, size_t buflen)
{
	char		*field[8];
	int		 n, i;
	int		 have_teams = 0, have_role = 0, have_keys = 0;
	const char	*why;

	if ((n = split(line, field, sizeof(field) / sizeof(field[0]))) < 0)
		return "too many fields or an unterminated quote";
	if (n != 4 && n != 5)
		return "expected NAME sha256:HEX|subject:\"DN\" teams=... "
		    "role=... [keys=yes|no]";
	if (!name_valid(field[0])) {
		snprintf(buf, buflen, "NAME must be 1-%d of [A-Za-z0-9_.-@]",
		    CERTD_TOKEN_NAME_MAX);
		return buf;
	}
	snprintf(tok->name, sizeof(tok->name), "%s", field[0]);
	if (strncmp(field[1], "subject:", 8) == 0) {
		size_t len = strlen(field[1] + 8);

		if (len == 0 || len > CERTD_TOKEN_SUBJECT_MAX) {
			snprintf(buf, buflen, "subject: needs a DN of 1-%d "
			    "bytes", CERTD_TOKEN_SUBJECT_MAX);
			return buf;
		}
		if ((tok->subject = strdup(field[1] + 8)) == NULL)
			return "out of memory";
	} else if (parse_hash(field[1], tok->hash) != 0)
		return "hash must be sha256: and 64 hex digits";
	for (i = 2; i < n; i++) {
		if (strncmp(field[i], "teams=", 6) == 0 && !have_teams) {
			if ((why = parse_teams(field[i] + 6, tok)) != NULL)
				return why;
			have_teams = 1;
		} else if (strncmp(field[i], "role=", 5) == 0 && !have_role) {
			if (strcmp(field[i] + 5, "read") == 0)
				tok->role = TOKEN_ROLE_READ;
			else if (strcmp(field[i] + 5, "write") == 0)
				tok->role = TOKEN_ROLE_WRITE;
			else
				return "role must be read or write";
			have_role = 1;
		} else if (strncmp(field[i], "keys=", 5) == 0 && !have_keys) {
			if ((why = parse_keys(field[i] + 5, tok)) != NULL)
				return why;
			have_keys = 1;
		} else
			return "expected teams=... and role=... once each, and "
			    "at most one keys=...";
	}
	if (!have_teams || !have_role)
		return "expected teams=... and role=... once each, and "
		    "at most one keys=...";
	if (!have_keys)
		tok->keys = tok->role == TOKEN_ROLE_WRITE;
	return NULL;
}

struct tokens *
tokens_parse(const char *text, size_t len, const char *origin, char *errbuf,
    size_t errlen)
{
	struct tokens	*t;
	const char	*p = text, *end = text + len, *nl, *why = NULL;
	char		 line[2048], whybuf[80];
	size_t		 lineno = 0, i;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(errbuf, errlen, "%s: out of memory", origin);
		return NULL;
	}
	while (p < end) {
		struct token	 tok;
		size_t		 n;
		char		*s;

		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (nl != NULL ? nl : end) - p;
		if (n >= sizeof(line)) {
			why = "line too long";
			goto fail;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl != NULL);
		if (memchr(line, '\0', n) != NULL) {
			why = "NUL byte in line";
			goto fail;
		}
		cut_comment(line);
		for (s = line; *s == ' ' || *s == '\t' || *s == '\r'; s++)
			;
		if (*s == '\0')
			continue;
		n = strlen(s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
		    s[n - 1] == '\r'))
			s[--n] = '\0';

		memset(&tok, 0, sizeof(tok));
		if ((why = parse_line(s, &tok, whybuf, sizeof(whybuf))) !=
		    NULL) {
			token_clear(&tok);
			goto fail;
		}
		for (i = 0; i < t->n; i++) {
			const struct token *o = &t->v[i];

			if (strcmp(o->name, tok.name) == 0)
				why = "duplicate token name";
			else if (o->subject != NULL && tok.subject != NULL &&
			    strcmp(o->subject, tok.subject) == 0)
				why = "duplicate subject";
			else if (o->subject == NULL && tok.subject == NULL &&
			    memcmp(o->hash, tok.hash, 32) == 0)
				why = "duplicate token hash";
		}
		if (why == NULL && t->n == CERTD_TOKENS_MAX)
			why = "too many tokens";
		if (why == NULL && t->n == t->cap) {
			size_t		 cap = t->cap ? t->cap * 2 : 8;
			struct token	*v = realloc(t->v, cap * sizeof(*v));

			if (v == NULL)
				why = "out of memory";
			else {
				t->v = v;
				t->cap = cap;
			}
		}
		if (why != NULL) {
			token_clear(&tok);
			goto fail;
		}
		t->v[t->n++] = tok;
	}
	return t;

fail:
	snprintf(errbuf, errlen, "%s:%zu: %s", origin, lineno, why);
	tokens_free(t);
	return NULL;
}

struct tokens *
tokens_load(int fd, const char *path, char *errbuf, size_t errlen)
{
	struct tokens	*t = NULL;
	FILE		*f;
	char		*buf = NULL;
	size_t		 len;

	if ((f = fdopen(fd, "r")) == NULL) {
		snprintf(errbuf, errlen, "cannot read token file %s: %s", path,
		    strerror(errno));
		close(fd);
		return NULL;
	}
	if ((buf = malloc(CERTD_TOKENS_FILE_MAX + 1)) == NULL) {
		snprintf(errbuf, errlen, "%s: out of memory", path);
		goto out;
	}
	len = fread(buf, 1, CERTD_TOKENS_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(errbuf, errlen, "cannot read token file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (len > CERTD_TOKENS_FILE_MAX) {
		snprintf(errbuf, errlen, "token file %s is over %d bytes", path,
		    CERTD_TOKENS_FILE_MAX);
		goto out;
	}
	t = tokens_parse(buf, len, path, errbuf, errlen);
out:
	free(buf);
	fclose(f);
	return t;
}

const struct token *
tokens_auth(const struct tokens *t, const char *text, size_t len)
{
	unsigned char	 hash[32];
	const struct token *found = NULL;
	size_t		 i, j;

	if (t == NULL || len == 0 || len > CERTD_TOKEN_TEXT_MAX ||
	    cert_sha256(text, len, hash) != 0)
		return NULL;
	for (i = 0; i < t->n; i++) {
		unsigned char diff = 0;

		for (j = 0; j < 32; j++)
			diff |= hash[j] ^ t->v[i].hash[j];
		/* Hashes are unique, so at most one entry has diff == 0. */
		if (diff == 0 && t->v[i].subject == NULL)
			found = &t->v[i];
	}
	util_wipe(hash, sizeof(hash));
	return found;
}

const struct token *
tokens_by_subject(const struct tokens *t, const char *subject)
{
	size_t	i;

	if (t == NULL)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (t->v[i].subject != NULL &&
		    strcmp(t->v[i].subject, subject) == 0)
			return &t->v[i];
	return NULL;
}

int
tokens_allows_team(const struct token *tok, const char *team)
{
	size_t	i;

	if (tok->all_teams)
		return 1;
	for (i = 0; i < tok->n_teams; i++)
		if (strcmp(tok->teams[i], team) == 0)
			return 1;
	return 0;
}

int
tokens_new(const char *name, const char *teams, const char *role,
    const char *keys, char *text, size_t textlen, char *line, size_t linelen,
    char *errbuf, size_t errlen)
{
	unsigned char	 raw[32], hash[32];
	char		 hex[65], check[600];
	struct tokens	*t;
	int		 n;

	if (textlen < 80 || linelen < 512) {
		snprintf(errbuf, errlen, "buffer too small");
		return -1;
	}
	/* Stated on the line, so that it reads the same whatever the default. */
	if (keys == NULL)
		keys = strcmp(role, "write") == 0 ? "yes" : "no";
	if (cert_random(raw, sizeof(raw)) != 0) {
		snprintf(errbuf, errlen, "no random bytes available");
		return -1;
	}
	util_hex(raw, sizeof(raw), hex);
	snprintf(text, textlen, "ctk_%s", hex);
	util_wipe(raw, sizeof(raw));
	util_wipe(hex, sizeof(hex));
	if (cert_sha256(text, strlen(text), hash) != 0) {
		snprintf(errbuf, errlen, "cannot hash the token");
		return -1;
	}
	util_hex(hash, sizeof(hash), hex);
	n = snprintf(check, sizeof(check), "%s sha256:%s teams=%s role=%s "
	    "keys=%s", name, hex, teams, role, keys);
	if (n < 0 || (size_t)n >= sizeof(check) || (size_t)n >= linelen) {
		snprintf(errbuf, errlen, "name or teams too long");
		return -1;
	}
	/* The line must be one that certd accepts: parse it back. */
	if ((t = tokens_parse(check, (size_t)n, "token", errbuf, errlen)) == NULL)
		return -1;
	tokens_free(t);
	memcpy(line, check, (size_t)n + 1);
	return 0;
}
