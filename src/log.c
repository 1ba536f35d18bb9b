/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr.  The level is the one piece of process-wide state of
 * the daemon: logging has to be reachable from everywhere, and a level is
 * set once at start-up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static enum log_level	log_min = LOG_LEVEL_INFO;
static int		log_syslog;	/* else stderr */

static const char *const log_names[] = { "debug", "info", "warn", "error" };

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

void
log_set_syslog(int on)
{
	if (on && !log_syslog)
		openlog("certd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on;
}

static int
syslog_priority(const char *what)
{
	if (strcmp(what, "debug") == 0)
		return LOG_DEBUG;
	if (strcmp(what, "warn") == 0)
		return LOG_WARNING;
	if (strcmp(what, "error") == 0)
		return LOG_ERR;
	if (strcmp(what, "audit") == 0)
		return LOG_NOTICE;
	return LOG_INFO;
}

static void
log_vline(const char *what, const char *fmt, va_list ap)
{
	char		 line[8192], stamp[32];	/* audit: a 1 KB subject */
	struct timespec	 ts;
	struct tm	 tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		return;
	if (log_syslog) {
		syslog(syslog_priority(what), "%s %s", what, line);
		return;
	}
	/* One write per line, so lines from threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s %s\n", stamp, ts.tv_nsec / 1000000L, what,
	    line);
}

void
log_audit(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("audit", fmt, ap);
	va_end(ap);
}

const char *
log_quote(const char *s, char *buf, size_t len)
{
	size_t	i, o = 0;
	int	plain = *s != '\0';

	for (i = 0; s[i] != '\0' && plain; i++)
		plain = (unsigned char)s[i] > 0x20 && s[i] != '"' &&
		    s[i] != '\\' && s[i] != '=' && s[i] != 0x7f;
	if (plain && strlen(s) < len)
		return s;
	if (len < 3)
		return "";
	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	if (level < log_min)
		return;
	log_vline(log_names[level], fmt, ap);
}

#define LOG_FN(name, level)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list	ap;					\
							\
	va_start(ap, fmt);				\
	log_vwrite(level, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_error, LOG_LEVEL_ERROR)
