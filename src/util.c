/* SPDX-License-Identifier: MIT */
/*
 * Small helpers: names, times, hex, big-endian numbers, wiping, reasons
 * into a caller's buffer, starting threads and waking the loop from them.
 * No library but libc: this file is in the daemon, certctl and libcertd
 * alike.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certd/constants.h"
#include "util.h"

int
util_team_valid(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > CERTD_TEAM_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int
util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int
util_utf8_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned	c = *p, need, min, cp, i;

		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1; min = 0x80; cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2; min = 0x800; cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3; min = 0x10000; cp = c & 0x07;
		} else
			return 0;
		if ((size_t)(end - p) <= need)
			return 0;
		for (i = 1; i <= need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += need + 1;
	}
	return 1;
}

size_t
util_utf8_len(const char *s, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

void
util_time_iso(int64_t t, int zulu, char buf[24])
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 24, zulu ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%S",
	    &tm) == 0)
		snprintf(buf, 24, "%s", "1970-01-01T00:00:00");
}

void
util_hex(const unsigned char *in, size_t len, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void
util_be32_put(void *p, uint32_t v)
{
	unsigned char	*b = p;

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

uint32_t
util_be32_get(const void *p)
{
	const unsigned char	*b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

void
util_be64_put(void *p, uint64_t v)
{
	unsigned char	*b = p;

	util_be32_put(b, (uint32_t)(v >> 32));
	util_be32_put(b + 4, (uint32_t)v);
}

uint64_t
util_be64_get(const void *p)
{
	const unsigned char	*b = p;

	return (uint64_t)util_be32_get(b) << 32 | util_be32_get(b + 4);
}

void
util_wipe(void *buf, size_t len)
{
	if (buf != NULL && len > 0)
		explicit_bzero(buf, len);
}

void
util_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	if (buf == NULL || len == 0)
		return;
	(void)vsnprintf(buf, len, fmt, ap);
}

void
util_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	util_vfmt(buf, len, fmt, ap);
	va_end(ap);
}

void
util_sigset_async(sigset_t *set)
{
	sigfillset(set);
	/* A fault is the thread's own; blocked, it kills without a report. */
	sigdelset(set, SIGSEGV);
	sigdelset(set, SIGBUS);
	sigdelset(set, SIGFPE);
	sigdelset(set, SIGILL);
	sigdelset(set, SIGTRAP);
	sigdelset(set, SIGSYS);
	sigdelset(set, SIGABRT);
}

int
util_thread_start(pthread_t *t, const char *name, void *(*fn)(void *),
    void *arg)
{
	sigset_t	all, old;
	int		rv;

	util_sigset_async(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rv = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv == 0)
		(void)pthread_setname_np(*t, name);	/* a name is a nicety */
	return rv;
}

int
util_wake(int efd)
{
	uint64_t	one = 1;

	return write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN ? -1 : 0;
}

int
util_woken(int efd)
{
	uint64_t	n;

	return read(efd, &n, sizeof(n)) < 0 && errno != EAGAIN ? -1 : 0;
}

unsigned
util_workers(unsigned max)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (unsigned long)n > max ? max : (unsigned)n;
}
