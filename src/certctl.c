/* SPDX-License-Identifier: MIT */
/*
 * certctl: the command-line client of certd.  `certctl token new` makes a
 * fresh API token and prints it with the line to add to the token file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "tokens.h"

static const char usage_text[] =
"usage: certctl token new --name NAME --teams *|TEAM[,TEAM...] --role read|write\n"
"\n"
"token new   print a fresh random token on the first line and, on the\n"
"            second, the line to append to certd's token file.\n";

static int
token_new(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "name",	required_argument,	NULL, 'n' },
		{ "teams",	required_argument,	NULL, 't' },
		{ "role",	required_argument,	NULL, 'r' },
		{ NULL,		0,			NULL, 0 },
	};
	const char	*name = NULL, *teams = NULL, *role = NULL;
	char		 text[128], line[600], err[512];
	int		 ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			name = optarg;
			break;
		case 't':
			teams = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		default:
			fprintf(stderr, "certctl: token new: bad option %s\n",
			    argv[optind - 1]);
			return 2;
		}
	}
	if (name == NULL || teams == NULL || role == NULL || optind != argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (tokens_new(name, teams, role, text, sizeof(text), line,
	    sizeof(line), err, sizeof(err)) != 0) {
		fprintf(stderr, "certctl: token new: %s\n", err);
		return 1;
	}
	printf("%s\n%s\n", text, line);
	cert_wipe(text, sizeof(text));
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "token") == 0 &&
	    strcmp(argv[2], "new") == 0)
		return token_new(argc - 2, argv + 2);
	fputs(usage_text, stderr);
	return 2;
}
