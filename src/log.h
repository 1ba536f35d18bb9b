/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr, "time level message", with the
 * message written as `key=value` fields after a short text.  Never log key
 * material or tokens.
 */
#ifndef CERTD_LOG_H
#define CERTD_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

#include <stddef.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Parse "debug", "info", "warn", "error".  Returns 0 or -1. */
int	log_parse_level(const char *s, enum log_level *out);
void	log_set_level(enum log_level level);

/*
 * Send lines to syslog (facility daemon, ident "certd") instead of stderr,
 * or back to stderr.
 */
void	log_set_syslog(int on);

void	log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_error(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * An audit line ("audit" instead of a level), written whatever the level.
 * Callers pass key=value fields and never key material.
 */
void	log_audit(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * s as a log field value: unchanged when it is plain, else in double quotes
 * with " and \ escaped and bytes below 0x20 written \xNN.  Into buf.
 */
const char *log_quote(const char *s, char *buf, size_t len);

#endif
