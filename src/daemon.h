/* SPDX-License-Identifier: MIT */
/* Daemon life cycle: start-up checks, the event loop, signals, shutdown. */
#ifndef CERTD_DAEMON_H
#define CERTD_DAEMON_H

#include <stddef.h>

struct config;

/* Build a fresh configuration the way start-up did; NULL with a reason. */
typedef struct config *(*daemon_config_cb)(void *arg, char *errbuf,
	    size_t errlen);

/*
 * Run certd in the foreground with cfg until SIGTERM or SIGINT.  On SIGHUP
 * rebuild() makes a new configuration and the token file is read again;
 * both are checked whole and swapped in only when good.  Start-up failures
 * print one line on stderr.  Returns the process exit status.
 */
int	daemon_run(const struct config *cfg, daemon_config_cb rebuild,
	    void *arg);

#endif
