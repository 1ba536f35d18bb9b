/* SPDX-License-Identifier: MIT */
/* Daemon life cycle: start-up checks, the event loop, signals, shutdown. */
#ifndef CERTD_DAEMON_H
#define CERTD_DAEMON_H

struct config;

/*
 * Run certd in the foreground with cfg until SIGTERM or SIGINT.  Start-up
 * failures print one line on stderr.  Returns the process exit status.
 */
int	daemon_run(const struct config *cfg);

#endif
