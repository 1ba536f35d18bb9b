/* SPDX-License-Identifier: MIT */
/*
 * Daemon configuration: built-in defaults, then the config file, then the
 * command line.  The file is INI-style:
 *
 *	# comment
 *	[certd]
 *	data_dir = /var/lib/certd
 *	listen = 127.0.0.1:7070
 *	socket = /run/certd/certd.sock
 *	token_file = /etc/certd/tokens
 *	log_level = info
 *
 * Every key is the long option of the same name with '-' written '_'.
 */
#ifndef CERTD_CONFIG_H
#define CERTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct config {
	char		*data_dir;
	char		*listen_host;
	uint16_t	 listen_port;
	char		*socket_path;	/* NULL: <data_dir>/certd.sock */
	char		*token_file;	/* NULL: <data_dir>/tokens */
	enum log_level	 log_level;
};

/* Defaults; NULL on allocation failure. */
struct config	*config_new(void);
void		 config_free(struct config *cfg);

/*
 * Set one key ("data_dir", "listen", "socket", "token_file", "log_level").
 * Returns 0, or -1 with a reason in errbuf.
 */
int		 config_set(struct config *cfg, const char *key,
		    const char *value, char *errbuf, size_t errlen);

/* Read a config file onto cfg.  Errors name the file and line. */
int		 config_load(struct config *cfg, const char *path,
		    char *errbuf, size_t errlen);

/* Socket path and token file with the data-dir defaults applied. */
char		*config_socket_path(const struct config *cfg);
char		*config_token_file(const struct config *cfg);

#endif
