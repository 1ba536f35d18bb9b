/* SPDX-License-Identifier: MIT */
/*
 * API tokens.  The token file holds one token per line,
 *	NAME sha256:HEX teams=*|TEAM[,TEAM...] role=read|write [keys=yes|no]
 *	NAME subject:"DN" teams=*|TEAM[,TEAM...] role=read|write [keys=yes|no]
 * with `#` comments and blank lines.  keys= says whether REST answers carry
 * the private key (default: yes for role=write, no for role=read).  HEX is the SHA-256 of the token text;
 * the text itself is never stored.  A presented token is hashed and compared
 * in constant time against every entry.  A subject entry is the identity of
 * a TLS client whose verified certificate has exactly that subject DN
 * (RFC 4514, as `certtool -i` prints it, backslashes and all, between
 * double quotes); it has no token text.
 */
#ifndef CERTD_TOKENS_H
#define CERTD_TOKENS_H

#include <stddef.h>

#include "certd/constants.h"

enum token_role {
	TOKEN_ROLE_READ = 1,
	TOKEN_ROLE_WRITE = 2,
};

struct token {
	char		  name[CERTD_TOKEN_NAME_MAX + 1];
	unsigned char	  hash[32];	/* zero for a subject entry */
	char		 *subject;	/* client certificate DN, or NULL */
	int		  all_teams;	/* teams=* */
	char		**teams;	/* when !all_teams; n_teams >= 1 */
	size_t		  n_teams;
	enum token_role	  role;
	int		  keys;		/* replies carry private_key (keys=) */
};

struct tokens;

/*
 * Parse token-file text.  `origin` names the file in messages.  On error
 * returns NULL with "ORIGIN:LINE: reason" in errbuf.
 */
struct tokens	*tokens_parse(const char *text, size_t len, const char *origin,
		    char *errbuf, size_t errlen);

/*
 * Read and parse the token file open on fd (the caller opened it and
 * checked its permissions; fd is closed here) named path.  As
 * tokens_parse; errors name the file.
 */
struct tokens	*tokens_load(int fd, const char *path, char *errbuf,
		    size_t errlen);

void		 tokens_free(struct tokens *t);
size_t		 tokens_count(const struct tokens *t);

/*
 * The token whose hash matches the presented text, or NULL.  Time does not
 * depend on which entry matched or on how much of a hash matched.
 */
const struct token *tokens_auth(const struct tokens *t, const char *text,
		    size_t len);

/* The entry of a client certificate subject DN, or NULL. */
const struct token *tokens_by_subject(const struct tokens *t,
		    const char *subject);

/* Whether tok may see team. */
int		 tokens_allows_team(const struct token *tok, const char *team);

/*
 * A fresh random token for `name`, `teams` ("*" or a comma list), `role`
 * and `keys` ("yes", "no", or NULL for the role's default): the token text
 * into text (>= 80 bytes) and its token-file line, which always states
 * keys=, into line (>= 512 bytes).  Returns 0 or -1 with a reason in errbuf.
 */
int		 tokens_new(const char *name, const char *teams,
		    const char *role, const char *keys, char *text,
		    size_t textlen, char *line, size_t linelen, char *errbuf,
		    size_t errlen);

#endif
