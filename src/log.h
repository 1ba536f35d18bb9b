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

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Parse "debug", "info", "warn", "error".  Returns 0 or -1. */
int	log_parse_level(const char *s, enum log_level *out);
void	log_set_level(enum log_level level);

void	log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void	log_error(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
