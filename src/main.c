/* SPDX-License-Identifier: MIT */
/*
 * certd command line.  Options only: the defaults, then --config, then the
 * other flags on top; the daemon itself is daemon_run().
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const char usage_text[] =
"usage: certd [--config FILE] [--data-dir DIR] [--listen HOST:PORT]\n"
"             [--socket PATH] [--token-file FILE] [--master-key FILE]\n"
"             [--log-level debug|info|warn|error] [--log-target stderr|syslog]\n"
"             [--tls-cert FILE|certd:TEAM/ALIAS] [--tls-key FILE]\n"
"             [--tls-client-ca FILE] [--allow-plain-http]\n"
"             [--recover point-in-time] [--etcd URL[,URL...]]\n"
"             [--fleet-key FILE] [--node NAME] [--etcd-prefix PREFIX]\n"
"             [--fleet-keyring FILE[,FILE]] [--etcd-ca FILE]\n"
"             [--etcd-cert FILE --etcd-key FILE]\n"
"             [--help] [--version]\n"
"\n"
"Runs in the foreground.  Defaults: data dir ./var, listen 127.0.0.1:7070,\n"
"socket <data-dir>/certd.sock, token file <data-dir>/tokens, master key\n"
"<data-dir>/master.key (created on first start).  A damaged write-ahead\n"
"log stops start-up; --recover point-in-time then starts from the last\n"
"good revision and loses the writes after it (see certd(8)).\n";

static const struct option longopts[] = {
	{ "config",	required_argument,	NULL, 'c' },
	{ "data-dir",	required_argument,	NULL, 'd' },
	{ "listen",	required_argument,	NULL, 'l' },
	{ "socket",	required_argument,	NULL, 's' },
	{ "token-file",	required_argument,	NULL, 't' },
	{ "master-key",	required_argument,	NULL, 'm' },
	{ "log-level",	required_argument,	NULL, 'L' },
	{ "log-target",	required_argument,	NULL, 'T' },
	{ "tls-cert",	required_argument,	NULL, 'C' },
	{ "tls-key",	required_argument,	NULL, 'K' },
	{ "tls-client-ca", required_argument,	NULL, 'A' },
	{ "allow-plain-http", no_argument,	NULL, 'P' },
	{ "recover",	required_argument,	NULL, 'R' },
	{ "etcd",	required_argument,	NULL, 'E' },
	{ "fleet-key",	required_argument,	NULL, 'F' },
	{ "node",	required_argument,	NULL, 'N' },
	{ "etcd-prefix", required_argument,	NULL, 'X' },
	{ "etcd-ca",	required_argument,	NULL, 'a' },
	{ "etcd-cert",	required_argument,	NULL, 'e' },
	{ "etcd-key",	required_argument,	NULL, 'k' },
	{ "fleet-keyring", required_argument,	NULL, 'r' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ NULL,		0,			NULL, 0 },
};

static const char *
key_of(int ch)
{
	switch (ch) {
	case 'd':	return "data_dir";
	case 'l':	return "listen";
	case 's':	return "socket";
	case 't':	return "token_file";
	case 'm':	return "master_key";
	case 'L':	return "log_level";
	case 'T':	return "log_target";
	case 'C':	return "tls_cert";
	case 'K':	return "tls_key";
	case 'A':	return "tls_client_ca";
	case 'P':	return "allow_plain_http";
	case 'E':	return "fleet.etcd";
	case 'F':	return "fleet.key";
	case 'N':	return "fleet.node";
	case 'X':	return "fleet.prefix";
	case 'a':	return "fleet.ca";
	case 'e':	return "fleet.cert";
	case 'k':	return "fleet.key_file";
	case 'r':	return "fleet.keyring";
	default:	return NULL;
	}
}

/* How the configuration was put together, to do it again on SIGHUP. */
struct recipe {
	const char	*file;		/* --config, or NULL */
	int		 argc;
	char		**argv;
};

/* Defaults, then the file, then the flags; NULL with a reason. */
static struct config *
build(void *arg, char *errbuf, size_t errlen)
{
	struct recipe	*r = arg;
	struct config	*cfg;
	int		 ch;

	if ((cfg = config_new()) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	if (r->file != NULL && config_load(cfg, r->file, errbuf, errlen) != 0)
		goto fail;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(r->argc, r->argv, ":", longopts, NULL)) != -1) {
		const char *key = key_of(ch);

		if (key != NULL && config_set(cfg, key, optarg != NULL ?
		    optarg : "yes", errbuf, errlen) != 0)
			goto fail;
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct config	*cfg;
	struct recipe	 recipe;
	const char	*config_file = NULL;
	char		 err[1024];
	int		 ch, rv, recover = 0;

	opterr = 0;
	/* First pass: --config, --help, --version and flag syntax. */
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_file = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("certd %s\n", PACKAGE_VERSION);
			return 0;
		case 'R':
			if (strcmp(optarg, "point-in-time") != 0) {
				fprintf(stderr, "certd: --recover %s: the one "
				    "recovery is point-in-time\n", optarg);
				return 2;
			}
			recover = 1;
			break;
		case ':':
			fprintf(stderr, "certd: option %s needs a value\n",
			    argv[optind - 1]);
			return 2;
		case '?':
			fprintf(stderr, "certd: unknown option %s (see --help)\n",
			    argv[optind - 1]);
			return 2;
		default:
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "certd: unexpected argument %s (see --help)\n",
		    argv[optind]);
		return 2;
	}

	recipe.file = config_file;
	recipe.argc = argc;
	recipe.argv = argv;
	if ((cfg = build(&recipe, err, sizeof(err))) == NULL) {
		fprintf(stderr, "certd: %s\n", err);
		return 1;
	}
	cfg->recover_pit = recover;	/* not rebuilt on SIGHUP: once only */
	rv = daemon_run(cfg, build, &recipe);
	config_free(cfg);
	return rv;
}
