/* SPDX-License-Identifier: MIT */
/* Unit tests of the token file parser and token authentication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tokens.h"

static const char HASH0[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static struct tokens *
parse(const char *text, char *err, size_t errlen)
{
	return tokens_parse(text, strlen(text), "tokens", err, errlen);
}

static void
test_new_then_auth(void **state)
{
	char			 text[128], line[600], err[256];
	struct tokens		*t;
	const struct token	*tok;

	(void)state;
	assert_int_equal(tokens_new("ci", "a,b", "read", NULL, text, sizeof(text),
	    line, sizeof(line), err, sizeof(err)), 0);
	assert_true(strncmp(text, "ctk_", 4) == 0);
	assert_int_equal(strlen(text), 4 + 64);
	assert_null(strstr(line, text + 4));	/* the line never holds the token */
	t = parse(line, err, sizeof(err));
	assert_non_null(t);
	tok = tokens_auth(t, text, strlen(text));
	assert_non_null(tok);
	assert_string_equal(tok->name, "ci");
	assert_int_equal(tok->role, TOKEN_ROLE_READ);
	assert_true(tokens_allows_team(tok, "a"));
	assert_true(tokens_allows_team(tok, "b"));
	assert_false(tokens_allows_team(tok, "c"));
	assert_null(tokens_auth(t, text, strlen(text) - 1));
	text[10] ^= 1;
	assert_null(tokens_auth(t, text, strlen(text)));
	assert_null(tokens_auth(t, "", 0));
	tokens_free(t);
}

static void
test_comments_and_all_teams(void **state)
{
	char		 text[512], err[256];
	struct tokens	*t;

	(void)state;
	snprintf(text, sizeof(text),
	    "# header\n\n  \t\nadmin sha256:%s teams=* role=write # trailing\r\n",
	    HASH0);
	t = parse(text, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(tokens_count(t), 1);
	tokens_free(t);
	t = parse("", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(tokens_count(t), 0);
	tokens_free(t);
}

static void
expect_error(const char *line, const char *want)
{
	char		 text[600], err[256];
	struct tokens	*t;

	snprintf(text, sizeof(text), "# ok\n%s\n", line);
	t = parse(text, err, sizeof(err));
	assert_null(t);
	if (strstr(err, want) == NULL)
		fail_msg("line \"%s\": error \"%s\" lacks \"%s\"", line, err, want);
	assert_non_null(strstr(err, "tokens:2:"));
}

static void
test_malformed_lines(void **state)
{
	char	line[300], dup[600];

	(void)state;
	expect_error("lonely", "expected NAME");
	snprintf(line, sizeof(line), "a sha256:%s teams=* role=root", HASH0);
	expect_error(line, "role must be read or write");
	snprintf(line, sizeof(line), "a md5:%s teams=* role=read", HASH0);
	expect_error(line, "hash must be");
	expect_error("a sha256:zz teams=* role=read", "hash must be");
	snprintf(line, sizeof(line), "a sha256:%s teams=a,,b role=read", HASH0);
	expect_error(line, "teams must be");
	snprintf(line, sizeof(line), "a sha256:%s teams=x role=read role=read", HASH0);
	expect_error(line, "expected teams");
	snprintf(line, sizeof(line),
	    "a sha256:%s teams=x role=read keys=no extra=1", HASH0);
	expect_error(line, "expected NAME");
	snprintf(line, sizeof(line), "a sha256:%s role=read other=1", HASH0);
	expect_error(line, "expected teams");
	snprintf(line, sizeof(line), "b/c sha256:%s teams=* role=read", HASH0);
	expect_error(line, "NAME must be");
	snprintf(dup, sizeof(dup),
	    "a sha256:%s teams=* role=read\na sha256:%s1 teams=* role=read",
	    HASH0, "000000000000000000000000000000000000000000000000000000000000000");
	{
		char		 err[256];
		struct tokens	*t = parse(dup, err, sizeof(err));

		assert_null(t);
		assert_non_null(strstr(err, "tokens:2: duplicate token name"));
	}
}

/* keys=: the role's default, an explicit yes or no, and bad values. */
static void
test_keys(void **state)
{
	char			 text[1024], tok_text[128], line[600], err[256];
	struct tokens		*t;
	const struct token	*tok;

	(void)state;
	snprintf(text, sizeof(text),
	    "r sha256:%s teams=* role=read\n"
	    "w sha256:%s1 teams=* role=write\n"
	    "rk keys=yes sha256:%s2 teams=* role=read\n",
	    HASH0, "000000000000000000000000000000000000000000000000000000000000000",
	    "000000000000000000000000000000000000000000000000000000000000000");
	/* keys= is not a hash: the second field is always the identity */
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "tokens:3: hash must be"));

	snprintf(text, sizeof(text),
	    "r sha256:%s teams=* role=read\n"
	    "w sha256:%s1 teams=* role=write\n"
	    "rk sha256:%s2 keys=yes teams=* role=read\n"
	    "wn sha256:%s3 teams=a role=write keys=no\n"
	    "rn subject:\"CN=x\" teams=* role=read keys=no\n",
	    HASH0, "000000000000000000000000000000000000000000000000000000000000000",
	    "000000000000000000000000000000000000000000000000000000000000000",
	    "000000000000000000000000000000000000000000000000000000000000000");
	t = parse(text, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	assert_int_equal(tokens_count(t), 5);
	tok = tokens_by_subject(t, "CN=x");
	assert_non_null(tok);
	assert_int_equal(tok->keys, 0);
	tokens_free(t);

	/* Through tokens_new, so each one can be looked up by its text. */
	assert_int_equal(tokens_new("r", "*", "read", NULL, tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), 0);
	assert_non_null(strstr(line, " role=read keys=no"));
	t = parse(line, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(tokens_auth(t, tok_text, strlen(tok_text))->keys, 0);
	tokens_free(t);
	assert_int_equal(tokens_new("w", "*", "write", NULL, tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), 0);
	assert_non_null(strstr(line, " role=write keys=yes"));
	t = parse(line, err, sizeof(err));
	assert_int_equal(tokens_auth(t, tok_text, strlen(tok_text))->keys, 1);
	tokens_free(t);
	assert_int_equal(tokens_new("rk", "*", "read", "yes", tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), 0);
	t = parse(line, err, sizeof(err));
	assert_int_equal(tokens_auth(t, tok_text, strlen(tok_text))->keys, 1);
	tokens_free(t);
	assert_int_equal(tokens_new("wn", "*", "write", "no", tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), 0);
	t = parse(line, err, sizeof(err));
	assert_int_equal(tokens_auth(t, tok_text, strlen(tok_text))->keys, 0);
	tokens_free(t);
	assert_int_equal(tokens_new("x", "*", "read", "maybe", tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "keys must be yes or no"));

	/* A line without keys= gets the role's default. */
	t = parse("r subject:\"CN=r\" teams=* role=read\n"
	    "w subject:\"CN=w\" teams=* role=write\n", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(tokens_by_subject(t, "CN=r")->keys, 0);
	assert_int_equal(tokens_by_subject(t, "CN=w")->keys, 1);
	tokens_free(t);

	snprintf(line, sizeof(line), "a sha256:%s teams=* role=read keys=maybe",
	    HASH0);
	expect_error(line, "keys must be yes or no");
	snprintf(line, sizeof(line), "a sha256:%s teams=* role=read keys=", HASH0);
	expect_error(line, "keys must be yes or no");
	snprintf(line, sizeof(line), "a sha256:%s teams=* role=read keys=YES",
	    HASH0);
	expect_error(line, "keys must be yes or no");
	snprintf(line, sizeof(line), "a sha256:%s teams=* keys=no keys=no", HASH0);
	expect_error(line, "expected teams");
	snprintf(line, sizeof(line), "a sha256:%s teams=* keys=yes", HASH0);
	expect_error(line, "expected teams");
	snprintf(line, sizeof(line), "a sha256:%s keys=yes role=write", HASH0);
	expect_error(line, "expected teams");
	/* the line number, as for any other bad line (six fields here) */
	snprintf(text, sizeof(text),
	    "# c\nr sha256:%s teams=* role=read\nw sha256:%s1 teams=* "
	    "role=write keys=yes keys=no\n", HASH0,
	    "000000000000000000000000000000000000000000000000000000000000000");
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "tokens:3: expected NAME"));
}

/* Subject entries: quoted DNs with blanks, escapes kept for the DN. */
static void
test_subjects(void **state)
{
	char			 text[1024], tok_text[128], line[600], err[256];
	struct tokens		*t;
	const struct token	*tok;

	(void)state;
	assert_int_equal(tokens_new("ci", "*", "read", NULL, tok_text,
	    sizeof(tok_text), line, sizeof(line), err, sizeof(err)), 0);
	snprintf(text, sizeof(text),
	    "ops subject:\"CN=ops client,O=certd\" teams=acme role=write\n"
	    "odd subject:\"CN=a\\,b \\\"q\\\" #7,O=c\" teams=* role=read # c\n"
	    "%s\n", line);
	t = parse(text, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	assert_int_equal(tokens_count(t), 3);
	tok = tokens_by_subject(t, "CN=ops client,O=certd");
	assert_non_null(tok);
	assert_string_equal(tok->name, "ops");
	assert_int_equal(tok->role, TOKEN_ROLE_WRITE);
	assert_true(tokens_allows_team(tok, "acme"));
	assert_false(tokens_allows_team(tok, "web"));
	/* backslashes stay, as GnuTLS writes them; '#' inside quotes too */
	tok = tokens_by_subject(t, "CN=a\\,b \\\"q\\\" #7,O=c");
	assert_non_null(tok);
	assert_string_equal(tok->name, "odd");
	assert_null(tokens_by_subject(t, "CN=ops client"));
	assert_null(tokens_by_subject(t, "CN=ops client,O=certd "));
	/* A subject entry has no token text; the hash token still works. */
	assert_null(tokens_auth(t, "", 0));
	assert_non_null(tokens_auth(t, tok_text, strlen(tok_text)));
	assert_string_equal(tokens_auth(t, tok_text, strlen(tok_text))->name,
	    "ci");
	tokens_free(t);

	expect_error("a subject:\"CN=x teams=* role=read", "unterminated quote");
	expect_error("a subject: teams=* role=read", "subject: needs a DN");
	{
		struct tokens *d = parse("a subject:CN=x teams=* role=read\n"
		    "b subject:\"CN=x\" teams=* role=read\n", err, sizeof(err));

		assert_null(d);
		assert_non_null(strstr(err, "tokens:2: duplicate subject"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_then_auth),
		cmocka_unit_test(test_comments_and_all_teams),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_subjects),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
