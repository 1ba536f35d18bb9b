/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for config.c: the defaults, a file that sets every key (with
 * comments, blank lines, tabs and CRLF), every key at its limits and one
 * past them with the exact message and line number, unknown keys and
 * sections, repeated keys, the [acl] rules and the permissions they grant,
 * the file's own permissions, and contrib/certd.conf, whose values claim to
 * be the defaults.  Files are written into a private temporary directory.
 * test_expiry_days_long is a defect found while writing these: a value
 * longer than the parser's copy was cut and its tail ignored.
 */
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "certd/constants.h"
#include "config.h"
#include "log.h"

static char	tmpdir[64];
static char	path[128];	/* tmpdir/certd.conf */

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/certd-test-config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/certd.conf", tmpdir);
	return 0;
}

static int
group_teardown(void **state)
{
	char	p[160];

	(void)state;
	unlink(path);
	snprintf(p, sizeof(p), "%s/link.conf", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/dir.conf", tmpdir);
	rmdir(p);
	return rmdir(tmpdir);
}

/* Write text to path with mode. */
static void
write_file(const char *p, const char *text, size_t len, mode_t mode)
{
	FILE	*f;

	unlink(p);
	assert_non_null(f = fopen(p, "w"));
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
}

/* config_load of text onto cfg (a fresh one when NULL, freed). */
static int
load_onto(struct config *cfg, const char *text, char *err, size_t errlen)
{
	struct config	*own = NULL;
	int		 rv;

	write_file(path, text, strlen(text), 0600);
	if (cfg == NULL)
		assert_non_null(cfg = own = config_new());
	err[0] = '\0';
	rv = config_load(cfg, path, err, errlen);
	config_free(own);
	return rv;
}

/* A file that must be refused with "PATH:LINE: why". */
static void
expect_error(const char *text, unsigned line, const char *why)
{
	char	err[1024], want[1024];

	snprintf(want, sizeof(want), "%s:%u: %s", path, line, why);
	if (load_onto(NULL, text, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", text);
	if (strcmp(err, want) != 0)
		fail_msg("for \"%s\":\n  got  \"%s\"\n  want \"%s\"", text, err,
		    want);
}

/* [certd] with one line `key = value`, refused on line 2 with why. */
static void
expect_bad(const char *key, const char *value, const char *why)
{
	char	text[512];

	snprintf(text, sizeof(text), "[certd]\n%s = %s\n", key, value);
	expect_error(text, 2, why);
}

/* [certd] with key = value accepted: the config, to be freed. */
static struct config *
expect_good(const char *key, const char *value)
{
	struct config	*cfg;
	char		 text[512], err[1024];

	assert_non_null(cfg = config_new());
	snprintf(text, sizeof(text), "[certd]\n%s = %s\n", key, value);
	if (load_onto(cfg, text, err, sizeof(err)) != 0)
		fail_msg("%s = %s refused: %s", key, value, err);
	return cfg;
}

/* ------------------------------------------------------------------ */

static void
test_defaults(void **state)
{
	struct config	*cfg;
	char		*p;

	(void)state;
	assert_non_null(cfg = config_new());
	assert_string_equal(cfg->data_dir, "./var");
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, CERTD_HTTP_PORT_DEFAULT);
	assert_int_equal(cfg->listen_port, 7070);
	assert_null(cfg->socket_path);
	assert_null(cfg->token_file);
	assert_null(cfg->master_key);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->log_syslog, 0);
	assert_null(cfg->socket_group);
	assert_int_equal(cfg->frame_max, 1048576);
	assert_int_equal(cfg->ctl_max_conns, 256);
	assert_int_equal(cfg->ctl_max_conns_per_uid, 32);
	assert_int_equal(cfg->ctl_idle_timeout, 60);
	assert_int_equal(cfg->ctl_out_limit, 4194304);
	assert_int_equal(cfg->log_retain, 100000);
	assert_int_equal(cfg->history_keep, 10);
	assert_int_equal(cfg->n_expiry_days, 3);
	assert_int_equal(cfg->expiry_days[0], 30);
	assert_int_equal(cfg->expiry_days[1], 7);
	assert_int_equal(cfg->expiry_days[2], 1);
	assert_int_equal(cfg->expiry_scan_interval, 3600);
	assert_null(cfg->tls_cert);
	assert_null(cfg->tls_key);
	assert_null(cfg->tls_client_ca);
	assert_int_equal(cfg->allow_plain_http, 0);
	assert_int_equal(cfg->http_max_conns, 4096);
	assert_int_equal(cfg->recover_pit, 0);
	assert_null(cfg->acl);
	assert_int_equal(cfg->n_acl, 0);

	/* socket and tokens default into the data dir */
	assert_non_null(p = config_socket_path(cfg));
	assert_string_equal(p, "./var/certd.sock");
	free(p);
	assert_non_null(p = config_token_file(cfg));
	assert_string_equal(p, "./var/tokens");
	free(p);
	config_free(cfg);
	config_free(NULL);
}

/*
 * Every key set to something other than its default, in the forms a
 * person writes: comments after a blank, comment lines with '#' and ';',
 * blank lines, tabs, CRLF, and a '#' inside a value that is no comment.
 */
static void
test_every_key(void **state)
{
	static const char text[] =
	    "# certd.conf\n"
	    "; also a comment\n"
	    "\n"
	    "   [certd]   \n"
	    "data_dir = /srv/certd#1\n"
	    "listen = [::1]:8443    # loopback v6\n"
	    "socket\t=\t/run/c.sock\r\n"
	    "token_file = /etc/certd/tokens ; comment\n"
	    "master_key=/etc/certd/master.key\n"
	    "log_level = debug\n"
	    "log_target = syslog\n"
	    "socket_group = ssl-cert\n"
	    "frame_max = 65536\n"
	    "ctl_max_conns = 100\n"
	    "ctl_max_conns_per_uid = 5\n"
	    "ctl_idle_timeout = 30\n"
	    "ctl_out_limit = 65536\n"
	    "log_retain = 5\n"
	    "expiry_warn_days = 60,14,3,1\n"
	    "expiry_scan_interval = 600\n"
	    "history_keep = 1000\n"
	    "tls_cert = certd:ops/rest\n"
	    "tls_key = /etc/certd/rest.key\n"
	    "tls_client_ca = /etc/certd/ca.pem\n"
	    "allow_plain_http = yes\n"
	    "http_max_conns = 12\n"
	    "\t\n"
	    "[acl]\n"
	    "uid 1001 = teams=ops,web perms=read,key\n"
	    "gid 33 = teams=* perms=write\t# comment\n";
	struct config	*cfg;
	char		 err[1024], *p;

	(void)state;
	assert_non_null(cfg = config_new());
	if (load_onto(cfg, text, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(cfg->data_dir, "/srv/certd#1");
	assert_string_equal(cfg->listen_host, "::1");
	assert_int_equal(cfg->listen_port, 8443);
	assert_string_equal(cfg->socket_path, "/run/c.sock");
	assert_string_equal(cfg->token_file, "/etc/certd/tokens");
	assert_string_equal(cfg->master_key, "/etc/certd/master.key");
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg->log_syslog, 1);
	assert_string_equal(cfg->socket_group, "ssl-cert");
	assert_int_equal(cfg->frame_max, 65536);
	assert_int_equal(cfg->ctl_max_conns, 100);
	assert_int_equal(cfg->ctl_max_conns_per_uid, 5);
	assert_int_equal(cfg->ctl_idle_timeout, 30);
	assert_int_equal(cfg->ctl_out_limit, 65536);
	assert_int_equal(cfg->log_retain, 5);
	assert_int_equal(cfg->n_expiry_days, 4);
	assert_int_equal(cfg->expiry_days[0], 60);
	assert_int_equal(cfg->expiry_days[1], 14);
	assert_int_equal(cfg->expiry_days[2], 3);
	assert_int_equal(cfg->expiry_days[3], 1);
	assert_int_equal(cfg->expiry_scan_interval, 600);
	assert_int_equal(cfg->history_keep, 1000);
	assert_string_equal(cfg->tls_cert, "certd:ops/rest");
	assert_string_equal(cfg->tls_key, "/etc/certd/rest.key");
	assert_string_equal(cfg->tls_client_ca, "/etc/certd/ca.pem");
	assert_int_equal(cfg->allow_plain_http, 1);
	assert_int_equal(cfg->http_max_conns, 12);
	assert_int_equal(cfg->recover_pit, 0);	/* a flag, never a key */

	assert_int_equal(cfg->n_acl, 2);
	assert_int_equal(cfg->acl[0].is_group, 0);
	assert_int_equal(cfg->acl[0].id, 1001);
	assert_int_equal(cfg->acl[0].all_teams, 0);
	assert_int_equal(cfg->acl[0].n_teams, 2);
	assert_string_equal(cfg->acl[0].teams[0], "ops");
	assert_string_equal(cfg->acl[0].teams[1], "web");
	assert_int_equal(cfg->acl[0].perms, ACL_READ | ACL_KEY);
	assert_int_equal(cfg->acl[1].is_group, 1);
	assert_int_equal(cfg->acl[1].id, 33);
	assert_int_equal(cfg->acl[1].all_teams, 1);
	assert_int_equal(cfg->acl[1].n_teams, 0);
	assert_int_equal(cfg->acl[1].perms, ACL_WRITE);

	assert_non_null(p = config_socket_path(cfg));
	assert_string_equal(p, "/run/c.sock");
	free(p);
	assert_non_null(p = config_token_file(cfg));
	assert_string_equal(p, "/etc/certd/tokens");
	free(p);
	config_free(cfg);
}

/* An empty file, or one of comments only, leaves the defaults. */
static void
test_empty_file(void **state)
{
	struct config	*cfg;
	char		 err[256];

	(void)state;
	assert_non_null(cfg = config_new());
	assert_int_equal(load_onto(cfg, "", err, sizeof(err)), 0);
	assert_int_equal(load_onto(cfg, "# x\n\n;y\n[certd]\n[acl]\n", err,
	    sizeof(err)), 0);
	/* a last line without its newline is read */
	assert_int_equal(load_onto(cfg, "[certd]\nhistory_keep = 3", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg->history_keep, 3);
	assert_string_equal(cfg->data_dir, "./var");
	assert_int_equal(cfg->n_acl, 0);
	config_free(cfg);
}

/* Numbers: each key at its bounds, and the exact refusal past them. */
static void
test_number_limits(void **state)
{
	static const struct {
		const char	*key;
		const char	*min, *max, *below, *above;
	} keys[] = {
		{ "frame_max", "4096", "67108864", "4095", "67108865" },
		{ "ctl_max_conns", "1", "100000", "0", "100001" },
		{ "ctl_max_conns_per_uid", "1", "100000", "0", "100001" },
		{ "ctl_idle_timeout", "1", "86400", "0", "86401" },
		{ "ctl_out_limit", "65536", "1073741824", "65535",
		    "1073741825" },
		{ "log_retain", "1", "9223372036854775807", "0",
		    "9223372036854775808" },
		{ "history_keep", "1", "1000", "0", "1001" },
		{ "expiry_scan_interval", "1", "86400", "0", "86401" },
		{ "http_max_conns", "1", "1000000", "0", "1000001" },
	};
	/* not numbers as config.c reads them */
	static const char *const junk[] = {
		"-1", "+5", "0x10", "010", "1 2", "12abc", "1.5", "", "abc",
		"99999999999999999999999",
	};
	struct config	*cfg;
	char		 why[256];
	size_t		 i, j;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(why, sizeof(why), "%s must be a number from %s to %s",
		    keys[i].key, keys[i].min, keys[i].max);
		expect_bad(keys[i].key, keys[i].below, why);
		expect_bad(keys[i].key, keys[i].above, why);
		for (j = 0; j < sizeof(junk) / sizeof(junk[0]); j++)
			expect_bad(keys[i].key, junk[j], why);
		config_free(expect_good(keys[i].key, keys[i].min));
		config_free(expect_good(keys[i].key, keys[i].max));
	}

	/* the bounds land in the right fields */
	cfg = expect_good("frame_max", "67108864");
	assert_int_equal(cfg->frame_max, 67108864);
	config_free(cfg);
	cfg = expect_good("ctl_max_conns", "100000");
	assert_int_equal(cfg->ctl_max_conns, 100000);
	assert_int_equal(cfg->ctl_max_conns_per_uid, 32);
	config_free(cfg);
	cfg = expect_good("ctl_max_conns_per_uid", "1");
	assert_int_equal(cfg->ctl_max_conns_per_uid, 1);
	assert_int_equal(cfg->ctl_max_conns, 256);
	config_free(cfg);
	cfg = expect_good("ctl_idle_timeout", "86400");
	assert_int_equal(cfg->ctl_idle_timeout, 86400);
	config_free(cfg);
	cfg = expect_good("ctl_out_limit", "1073741824");
	assert_int_equal(cfg->ctl_out_limit, 1073741824);
	config_free(cfg);
	cfg = expect_good("log_retain", "9223372036854775807");
	assert_true(cfg->log_retain == 9223372036854775807ULL);
	config_free(cfg);
	cfg = expect_good("history_keep", "1");
	assert_int_equal(cfg->history_keep, 1);
	config_free(cfg);
	cfg = expect_good("expiry_scan_interval", "1");
	assert_int_equal(cfg->expiry_scan_interval, 1);
	config_free(cfg);
	cfg = expect_good("http_max_conns", "1000000");
	assert_int_equal(cfg->http_max_conns, 1000000);
	config_free(cfg);
}

/* Words, strings and addresses: what each accepts and its refusal. */
static void
test_other_values(void **state)
{
	static const char *const strings[] = {
		"data_dir", "socket", "token_file", "master_key",
		"socket_group", "tls_cert", "tls_key", "tls_client_ca",
	};
	static const char *const levels[] = { "debug", "info", "warn",
	    "error" };
	struct config	*cfg;
	char		 why[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(why, sizeof(why), "%s must not be empty", strings[i]);
		expect_bad(strings[i], "", why);
		/* a comment that leaves nothing */
		expect_bad(strings[i], "# nothing", why);
	}
	for (i = 0; i < 4; i++) {
		cfg = expect_good("log_level", levels[i]);
		assert_int_equal(cfg->log_level, (int)i);
		config_free(cfg);
	}
	expect_bad("log_level", "verbose",
	    "log_level must be debug, info, warn or error, not \"verbose\"");
	expect_bad("log_level", "INFO",
	    "log_level must be debug, info, warn or error, not \"INFO\"");
	expect_bad("log_level", "",
	    "log_level must be debug, info, warn or error, not \"\"");
	cfg = expect_good("log_target", "stderr");
	assert_int_equal(cfg->log_syslog, 0);
	config_free(cfg);
	expect_bad("log_target", "file",
	    "log_target must be stderr or syslog, not \"file\"");
	cfg = expect_good("allow_plain_http", "no");
	assert_int_equal(cfg->allow_plain_http, 0);
	config_free(cfg);
	expect_bad("allow_plain_http", "true",
	    "allow_plain_http must be yes or no, not \"true\"");
	expect_bad("allow_plain_http", "YES",
	    "allow_plain_http must be yes or no, not \"YES\"");

	/* listen: HOST:PORT, [V6]:PORT, :PORT for loopback; port 0 to 65535 */
	cfg = expect_good("listen", "0.0.0.0:0");
	assert_string_equal(cfg->listen_host, "0.0.0.0");
	assert_int_equal(cfg->listen_port, 0);
	config_free(cfg);
	cfg = expect_good("listen", ":65535");
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 65535);
	config_free(cfg);
	cfg = expect_good("listen", "certd.example.test:80");
	assert_string_equal(cfg->listen_host, "certd.example.test");
	assert_int_equal(cfg->listen_port, 80);
	config_free(cfg);
	cfg = expect_good("listen", "[2001:db8::1]:443");
	assert_string_equal(cfg->listen_host, "2001:db8::1");
	assert_int_equal(cfg->listen_port, 443);
	config_free(cfg);
	expect_bad("listen", "localhost",
	    "listen must be HOST:PORT, not \"localhost\"");
	expect_bad("listen", "localhost:",
	    "listen must be HOST:PORT, not \"localhost:\"");
	expect_bad("listen", "localhost:65536",
	    "listen must be HOST:PORT, not \"localhost:65536\"");
	expect_bad("listen", "localhost:http",
	    "listen must be HOST:PORT, not \"localhost:http\"");
	expect_bad("listen", "localhost:080",
	    "listen must be HOST:PORT, not \"localhost:080\"");
	expect_bad("listen", "[::1]",
	    "listen must be HOST:PORT, not \"[::1]\"");
	expect_bad("listen", "",
	    "listen must be HOST:PORT, not \"\"");
}

static void
test_expiry_days(void **state)
{
	static const char why[] = "expiry_warn_days must be a comma list of "
	    "up to 8 days from 1 to 3650";
	struct config	*cfg;
	char		 err[256];

	(void)state;
	cfg = expect_good("expiry_warn_days", "3650");
	assert_int_equal(cfg->n_expiry_days, 1);
	assert_int_equal(cfg->expiry_days[0], 3650);
	config_free(cfg);
	cfg = expect_good("expiry_warn_days", "1,2,3,4,5,6,7,8");
	assert_int_equal(cfg->n_expiry_days, 8);
	assert_int_equal(cfg->expiry_days[0], 1);
	assert_int_equal(cfg->expiry_days[7], 8);
	config_free(cfg);
	/* kept as given: not sorted, not made unique */
	cfg = expect_good("expiry_warn_days", "1,30,1");
	assert_int_equal(cfg->n_expiry_days, 3);
	assert_int_equal(cfg->expiry_days[0], 1);
	assert_int_equal(cfg->expiry_days[1], 30);
	assert_int_equal(cfg->expiry_days[2], 1);
	config_free(cfg);
	/* empty items are skipped (strtok) */
	cfg = expect_good("expiry_warn_days", "30,,7,");
	assert_int_equal(cfg->n_expiry_days, 2);
	assert_int_equal(cfg->expiry_days[0], 30);
	assert_int_equal(cfg->expiry_days[1], 7);
	config_free(cfg);

	expect_bad("expiry_warn_days", "1,2,3,4,5,6,7,8,9", why);
	expect_bad("expiry_warn_days", "0", why);
	expect_bad("expiry_warn_days", "30,0", why);
	expect_bad("expiry_warn_days", "3651", why);
	expect_bad("expiry_warn_days", "30, 7", why);
	expect_bad("expiry_warn_days", "thirty", why);
	expect_bad("expiry_warn_days", "-1", why);
	expect_bad("expiry_warn_days", "",
	    "expiry_warn_days must not be empty");
	expect_bad("expiry_warn_days", ",,,",
	    "expiry_warn_days must not be empty");

	/* a refused list leaves the one before it whole */
	assert_non_null(cfg = config_new());
	assert_int_equal(config_set(cfg, "expiry_warn_days", "5,4", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(cfg, "expiry_warn_days", "9,8,0", err,
	    sizeof(err)), -1);
	assert_string_equal(err, why);
	assert_int_equal(cfg->n_expiry_days, 2);
	assert_int_equal(cfg->expiry_days[0], 5);
	assert_int_equal(cfg->expiry_days[1], 4);
	config_free(cfg);
}

/*
 * BUG (config.c config_set, expiry_warn_days): the value is copied into a
 * 128-byte buffer with snprintf and only that copy is parsed, so whatever
 * follows its 127th byte is ignored.  A value that is refused as a whole
 * is then accepted: here "30", 125 commas and an "x" load as 30.
 */
static void
test_expiry_days_long(void **state)
{
	static const char why[] = "expiry_warn_days must be a comma list "
	    "of up to 8 days from 1 to 3650";
	char	value[160];

	(void)state;
	memset(value, ',', sizeof(value));
	memcpy(value, "30", 2);
	value[127] = 'x';
	value[128] = '\0';
	expect_bad("expiry_warn_days", value, why);
}

/* Lines that are not settings, and where the error is reported. */
/* [fleet]: its four keys, as the flags set them; nothing else. */
static void
test_fleet(void **state)
{
	struct config	*cfg;
	char		 err[1024];

	(void)state;
	assert_non_null(cfg = config_new());
	assert_null(cfg->etcd);
	if (load_onto(cfg, "[fleet]\netcd = http://127.0.0.1:2379\n"
	    "key = /k\nnode = gw1\nprefix = /p\n[certd]\nlog_level = warn\n",
	    err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(cfg->etcd, "http://127.0.0.1:2379");
	assert_string_equal(cfg->fleet_key, "/k");
	assert_string_equal(cfg->node, "gw1");
	assert_string_equal(cfg->etcd_prefix, "/p");
	/* the flags' way in */
	assert_int_equal(config_set(cfg, "fleet.node", "gw2", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg->node, "gw2");
	config_free(cfg);
	expect_error("[fleet]\nendpoints = x\n", 2,
	    "unknown setting \"endpoints\"");
	expect_error("[fleet]\nfleet.etcd = x\n", 2,
	    "unknown setting \"fleet.etcd\"");
	expect_error("[certd]\nfleet.etcd = x\n", 2,
	    "unknown setting \"fleet.etcd\"");
	expect_error("[fleet]\nlog_level = warn\n", 2,
	    "unknown setting \"log_level\"");
}

static void
test_syntax(void **state)
{
	char	*big, err[256];
	size_t	 n;

	(void)state;
	expect_error("[certd]\nfoo = 1\n", 2, "unknown setting \"foo\"");
	expect_error("[certd]\n\n# x\nrecover_pit = yes\n", 4,
	    "unknown setting \"recover_pit\"");
	expect_error("[certd]\nData_Dir = /x\n", 2,
	    "unknown setting \"Data_Dir\"");
	expect_error("[certd]\n = 1\n", 2, "unknown setting \"\"");
	expect_error("[server]\n", 1, "unknown section [server]");
	expect_error("# top\n[ certd ]\n", 2, "unknown section [ certd ]");
	expect_error("[certd] # main\n[CERTD]\n", 2,
	    "unknown section [CERTD]");
	expect_error("data_dir = /x\n", 1,
	    "expected key = value inside [certd], [fleet] or [acl]");
	expect_error("[certd]\ndata_dir /x\n", 2,
	    "expected key = value inside [certd], [fleet] or [acl]");
	expect_error("[certd]\nhistory_keep = 3\r\nhistory_keep = 0\r\n", 3,
	    "history_keep must be a number from 1 to 1000");
	/* a key of [certd] is no [acl] line, nor the other way round */
	expect_error("[acl]\ndata_dir = /x\n", 2,
	    "expected user NAME, uid N, group NAME or gid N");
	expect_error("[certd]\nuid 1 = teams=* perms=read\n", 2,
	    "unknown setting \"uid 1\"");

	/* lines: 4094 characters and a newline fit, one more does not */
	assert_non_null(big = malloc(8192));
	n = 4094;
	memset(big, '#', n);
	memcpy(big + n, "\n[certd]\nfoo\n", 14);
	expect_error(big, 3, "expected key = value inside [certd], [fleet] or [acl]");
	n = 4095;
	memset(big, '#', n);
	memcpy(big + n, "\n[certd]\nfoo\n", 14);
	expect_error(big, 1, "line too long");
	memcpy(big, "[certd]\n", 8);
	memset(big + 8, '#', 5000);
	big[5008] = '\0';
	expect_error(big, 2, "line too long");
	free(big);

	/* a NUL byte ends the line for the parser: refused, not misread */
	write_file(path, "[certd]\ndata_dir = /a\0b\n", 24, 0600);
	{
		struct config	*cfg = config_new();

		assert_int_equal(config_load(cfg, path, err, sizeof(err)), -1);
		assert_non_null(strstr(err, ":2: "));
		config_free(cfg);
	}
}

/*
 * A key given twice: the later line wins (config.c refuses nothing for
 * it; certd.conf(5) does not say).  Sections may be opened again.
 */
static void
test_repeated_keys(void **state)
{
	struct config	*cfg;
	char		 err[256];

	(void)state;
	assert_non_null(cfg = config_new());
	assert_int_equal(load_onto(cfg, "[certd]\ndata_dir = /a\n"
	    "history_keep = 5\n[acl]\nuid 7 = teams=a perms=read\n[certd]\n"
	    "data_dir = /b\n[acl]\nuid 7 = teams=b perms=write\n", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg->data_dir, "/b");
	assert_int_equal(cfg->history_keep, 5);
	assert_int_equal(cfg->n_acl, 2);
	/* the rules of one uid add up */
	assert_int_equal(config_acl_perms(cfg, 7, NULL, 0, "a"), ACL_READ);
	assert_int_equal(config_acl_perms(cfg, 7, NULL, 0, "b"), ACL_WRITE);
	config_free(cfg);
}

/*
 * Defaults, then the file, then the flags (config_set): a file loaded onto
 * a config changes only the keys it names, and config_set after it wins.
 */
static void
test_layering(void **state)
{
	struct config	*cfg;
	char		 err[256];

	(void)state;
	assert_non_null(cfg = config_new());
	assert_int_equal(config_set(cfg, "socket_group", "before", err,
	    sizeof(err)), 0);
	assert_int_equal(load_onto(cfg, "[certd]\ndata_dir = /file\n"
	    "log_level = warn\n", err, sizeof(err)), 0);
	assert_string_equal(cfg->socket_group, "before");
	assert_string_equal(cfg->data_dir, "/file");
	assert_int_equal(config_set(cfg, "data_dir", "/flag", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg->data_dir, "/flag");
	assert_int_equal(cfg->log_level, LOG_LEVEL_WARN);

	/* a refused value leaves the field as it was */
	assert_int_equal(config_set(cfg, "data_dir", "", err, sizeof(err)), -1);
	assert_string_equal(err, "data_dir must not be empty");
	assert_string_equal(cfg->data_dir, "/flag");
	assert_int_equal(config_set(cfg, "listen", "nope", err, sizeof(err)),
	    -1);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 7070);
	assert_int_equal(config_set(cfg, "ctl_idle_timeout", "0", err,
	    sizeof(err)), -1);
	assert_int_equal(cfg->ctl_idle_timeout, 60);
	/*
	 * (history_keep and log_retain are parsed straight into the field:
	 * a refused "0" is left there.  No caller keeps a config after a
	 * refusal, main.c's build frees it, so only the return is checked.)
	 */
	assert_int_equal(config_set(cfg, "history_keep", "0", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "history_keep must be a number from 1 to "
	    "1000");
	assert_int_equal(config_set(cfg, "log_level", "loud", err,
	    sizeof(err)), -1);
	assert_int_equal(cfg->log_level, LOG_LEVEL_WARN);
	assert_int_equal(config_set(cfg, "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown setting \"nope\"");

	/* a short error buffer gets a truncated, terminated message */
	{
		char	small[12];

		memset(small, 'Z', sizeof(small));
		assert_int_equal(config_set(cfg, "nope", "1", small, 8), -1);
		assert_string_equal(small, "unknown");
		assert_int_equal(small[8], 'Z');
	}
	config_free(cfg);
}

/* [acl] lines: every form, and the exact refusal of each mistake. */
static void
test_acl(void **state)
{
	struct config	*cfg;
	struct passwd	*pw;
	struct group	*gr;
	unsigned long	 gids[2];
	char		 err[256], text[256];

	(void)state;
	assert_non_null(pw = getpwuid(0));
	assert_non_null(gr = getgrgid(0));
	snprintf(text, sizeof(text), "[acl]\n"
	    "user  %s = teams=web,api perms=read,key\n"
	    "group %s = teams=* perms=read\n"
	    "uid 1001 = perms=write teams=ops\n"
	    "gid 4294967295 = teams=a.b_c-D9 perms=key,key\n",
	    pw->pw_name, gr->gr_name);
	assert_non_null(cfg = config_new());
	if (load_onto(cfg, text, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_int_equal(cfg->n_acl, 4);
	assert_int_equal(cfg->acl[0].is_group, 0);
	assert_int_equal(cfg->acl[0].id, 0);
	assert_int_equal(cfg->acl[1].is_group, 1);
	assert_int_equal(cfg->acl[1].id, 0);
	assert_int_equal(cfg->acl[2].id, 1001);
	assert_int_equal(cfg->acl[2].perms, ACL_WRITE);
	assert_string_equal(cfg->acl[2].teams[0], "ops");
	assert_int_equal(cfg->acl[3].id, 4294967295UL);
	assert_int_equal(cfg->acl[3].perms, ACL_KEY);
	assert_string_equal(cfg->acl[3].teams[0], "a.b_c-D9");

	/* uid 0 in group 0: rules 0 and 1 */
	gids[0] = 0;
	assert_int_equal(config_acl_perms(cfg, 0, gids, 1, "web"),
	    ACL_READ | ACL_KEY);
	assert_int_equal(config_acl_perms(cfg, 0, gids, 1, "other"), ACL_READ);
	assert_int_equal(config_acl_perms(cfg, 0, NULL, 0, "other"), 0);
	assert_int_equal(config_acl_perms(cfg, 0, NULL, 0, "api"),
	    ACL_READ | ACL_KEY);
	/* team names compare exactly */
	assert_int_equal(config_acl_perms(cfg, 0, NULL, 0, "Web"), 0);
	assert_int_equal(config_acl_perms(cfg, 0, NULL, 0, "we"), 0);
	/* uid 1001 in a supplementary group 4294967295 */
	gids[0] = 5;
	gids[1] = 4294967295UL;
	assert_int_equal(config_acl_perms(cfg, 1001, gids, 2, "ops"),
	    ACL_WRITE);
	assert_int_equal(config_acl_perms(cfg, 1001, gids, 2, "a.b_c-D9"),
	    ACL_KEY);
	assert_int_equal(config_acl_perms(cfg, 1001, gids, 1, "a.b_c-D9"), 0);
	/* a uid rule does not match a gid of the same number */
	gids[0] = 1001;
	assert_int_equal(config_acl_perms(cfg, 2, gids, 1, "ops"), 0);
	assert_int_equal(config_acl_any(cfg, 1001, gids, 2),
	    ACL_WRITE | ACL_KEY);
	assert_int_equal(config_acl_any(cfg, 0, NULL, 0), ACL_READ | ACL_KEY);
	assert_int_equal(config_acl_any(cfg, 4242, NULL, 0), 0);
	config_free(cfg);

	expect_error("[acl]\nuser no-such-user-certd = teams=* perms=read\n",
	    2, "unknown user");
	expect_error("[acl]\ngroup no-such-group-certd = teams=* perms=read\n",
	    2, "unknown group");
	expect_error("[acl]\nuid x = teams=* perms=read\n", 2,
	    "expected a number after uid/gid");
	expect_error("[acl]\ngid 4294967296 = teams=* perms=read\n", 2,
	    "expected a number after uid/gid");
	expect_error("[acl]\nuid -1 = teams=* perms=read\n", 2,
	    "expected a number after uid/gid");
	expect_error("[acl]\nhost 1 = teams=* perms=read\n", 2,
	    "expected user NAME, uid N, group NAME or gid N");
	expect_error("[acl]\nuid 1 = teams=*\n", 2,
	    "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 = perms=read\n", 2,
	    "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 =\n", 2, "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 = teams=a teams=b perms=read\n", 2,
	    "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 = teams=a perms=read perms=key\n", 2,
	    "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 = teams=a perms=read extra\n", 2,
	    "expected teams=... perms=...");
	expect_error("[acl]\nuid 1 = teams=a,,b perms=read\n", 2,
	    "teams must be * or a comma list of team ids");
	expect_error("[acl]\nuid 1 = teams= perms=read\n", 2,
	    "teams must be * or a comma list of team ids");
	expect_error("[acl]\nuid 1 = teams=we/b perms=read\n", 2,
	    "teams must be * or a comma list of team ids");
	expect_error("[acl]\nuid 1 = teams=*,a perms=read\n", 2,
	    "teams must be * or a comma list of team ids");
	expect_error("[acl]\nuid 1 = teams=a perms=read,admin\n", 2,
	    "perms must be a comma list of read, write, key");
	expect_error("[acl]\nuid 1 = teams=a perms=Read\n", 2,
	    "perms must be a comma list of read, write, key");
	expect_error("[acl]\nuid 1 = teams=a perms=\n", 2,
	    "perms must not be empty");
	expect_error("[acl]\nuid 1 = teams=a perms=,,\n", 2,
	    "perms must not be empty");
	expect_error("[acl]\nuid 1 = teams=a perms=read,read,read,read,read,"
	    "read,read,read,read,read,read,read,read\n", 2,
	    "perms must be a comma list of read, write, key");
	/* the 65th character of a team id */
	snprintf(text, sizeof(text), "[acl]\nuid 1 = teams=%0*d perms=read\n",
	    CERTD_TEAM_MAX + 1, 0);
	expect_error(text, 2, "teams must be * or a comma list of team ids");
	snprintf(text, sizeof(text), "[acl]\nuid 1 = teams=%0*d perms=read\n",
	    CERTD_TEAM_MAX, 0);
	assert_int_equal(load_onto(NULL, text, err, sizeof(err)), 0);
}

/*
 * The file grants socket rights: refused when group or others may write
 * it, when it is not a regular file, when another user owns it; a link is
 * followed and its target checked.
 */
static void
test_file_permissions(void **state)
{
	struct config	*cfg;
	char		 err[512], want[512], lpath[160], dpath[160];

	(void)state;
	assert_non_null(cfg = config_new());
	write_file(path, "[certd]\nhistory_keep = 2\n", 25, 0644);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->history_keep, 2);
	write_file(path, "[certd]\nhistory_keep = 3\n", 25, 0444);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->history_keep, 3);

	write_file(path, "[certd]\nhistory_keep = 4\n", 25, 0664);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "config %s must not be writable by group "
	    "or others (mode 0664)", path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0602), 0);
	assert_int_equal(config_load(cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "config %s must not be writable by group "
	    "or others (mode 0602)", path);
	assert_string_equal(err, want);
	assert_int_equal(cfg->history_keep, 3);

	/* a link is followed: the target's mode counts */
	snprintf(lpath, sizeof(lpath), "%s/link.conf", tmpdir);
	unlink(lpath);
	assert_int_equal(symlink(path, lpath), 0);
	assert_int_equal(config_load(cfg, lpath, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "config %s must not be writable by group "
	    "or others (mode 0602)", lpath);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(config_load(cfg, lpath, err, sizeof(err)), 0);
	assert_int_equal(cfg->history_keep, 4);

	snprintf(dpath, sizeof(dpath), "%s/dir.conf", tmpdir);
	assert_int_equal(mkdir(dpath, 0700), 0);
	assert_int_equal(config_load(cfg, dpath, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "config %s is not a regular file", dpath);
	assert_string_equal(err, want);

	snprintf(want, sizeof(want), "cannot read config %s/missing.conf: %s",
	    tmpdir, strerror(ENOENT));
	snprintf(dpath, sizeof(dpath), "%s/missing.conf", tmpdir);
	assert_int_equal(config_load(cfg, dpath, err, sizeof(err)), -1);
	assert_string_equal(err, want);

	/* owned by someone else: only root can make such a file */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 4242, 4242), 0);
		assert_int_equal(config_load(cfg, path, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "config %s is owned by uid 4242; "
		    "it must be owned by root or uid 0", path);
		assert_string_equal(err, want);
	}
	config_free(cfg);
}

/*
 * contrib/certd.conf says its values are the defaults "unless marked
 * otherwise": every value it sets but the three it marks is config_new's.
 */
static void
test_sample_is_defaults(void **state)
{
	struct config	*sample, *def;
	const char	*src = getenv("CERTD_SRCDIR");
	char		 sp[PATH_MAX], err[512], *text;
	FILE		*f;
	long		 n;

	(void)state;
	snprintf(sp, sizeof(sp), "%s/contrib/certd.conf",
	    src != NULL && *src != '\0' ? src : ".");
	if ((f = fopen(sp, "r")) == NULL) {
		print_message("%s: %s\n", sp, strerror(errno));
		skip();
		return;
	}
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((n = ftell(f)) > 0);
	rewind(f);
	assert_non_null(text = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	/* a copy of our own, as a checkout's mode may be group-writable */
	assert_non_null(sample = config_new());
	if (load_onto(sample, text, err, sizeof(err)) != 0)
		fail_msg("contrib/certd.conf refused: %s", err);
	free(text);
	assert_non_null(def = config_new());

	/* the three marked "default ..." */
	assert_string_equal(sample->data_dir, "/var/lib/certd");
	assert_string_equal(sample->socket_path, "/run/certd/certd.sock");
	assert_string_equal(sample->token_file, "/etc/certd/tokens");
	/* the rest */
	assert_string_equal(sample->listen_host, def->listen_host);
	assert_int_equal(sample->listen_port, def->listen_port);
	assert_int_equal(sample->log_level, def->log_level);
	assert_int_equal(sample->frame_max, def->frame_max);
	assert_int_equal(sample->ctl_max_conns, def->ctl_max_conns);
	assert_int_equal(sample->ctl_max_conns_per_uid,
	    def->ctl_max_conns_per_uid);
	assert_int_equal(sample->ctl_idle_timeout, def->ctl_idle_timeout);
	assert_int_equal(sample->ctl_out_limit, def->ctl_out_limit);
	assert_int_equal(sample->log_retain, def->log_retain);
	assert_int_equal(sample->history_keep, def->history_keep);
	assert_int_equal(sample->n_expiry_days, def->n_expiry_days);
	assert_memory_equal(sample->expiry_days, def->expiry_days,
	    def->n_expiry_days * sizeof(def->expiry_days[0]));
	assert_int_equal(sample->expiry_scan_interval,
	    def->expiry_scan_interval);
	assert_int_equal(sample->http_max_conns, def->http_max_conns);
	assert_null(sample->socket_group);
	assert_null(sample->tls_cert);
	assert_int_equal(sample->allow_plain_http, def->allow_plain_http);
	assert_int_equal(sample->n_acl, 0);
	config_free(sample);
	config_free(def);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_number_limits),
		cmocka_unit_test(test_other_values),
		cmocka_unit_test(test_expiry_days),
		cmocka_unit_test(test_expiry_days_long),
		cmocka_unit_test(test_fleet),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_repeated_keys),
		cmocka_unit_test(test_layering),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_file_permissions),
		cmocka_unit_test(test_sample_is_defaults),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
