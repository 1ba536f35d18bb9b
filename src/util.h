/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by several subsystems: names, numbers, time, hex,
 * big-endian numbers, wiping memory, a reason into a caller's buffer, and
 * starting a thread.  Built into
 * libcertd_common, which the daemon, certctl and libcertd all link: the one
 * copy of each.
 */
#ifndef CERTD_UTIL_H
#define CERTD_UTIL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* team_id: [A-Za-z0-9_.-]{1,CERTD_TEAM_MAX}, len bytes of s. */
int	util_team_valid(const char *s, size_t len);

/*
 * Strict decimal unsigned parse of len bytes: digits only, no sign, no
 * spaces, no leading zero unless "0", value <= max.  Returns 0 or -1.
 */
int	util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int	util_utf8_valid(const char *s, size_t len);

/* Number of UTF-8 code points in valid UTF-8 text s of len bytes. */
size_t	util_utf8_len(const char *s, size_t len);

/* Time as UTC "YYYY-MM-DDTHH:MM:SS" (+ "Z" when zulu), into buf[24]. */
void	util_time_iso(int64_t t, int zulu, char buf[24]);

/* Lowercase hex of len bytes into out (2 * len + 1 bytes). */
void	util_hex(const unsigned char *in, size_t len, char *out);

/*
 * Big-endian numbers at p (4 or 8 bytes), as the frame header, the
 * store's keys and a sealed key's associated data hold them.
 */
void		util_be32_put(void *p, uint32_t v);
uint32_t	util_be32_get(const void *p);
void		util_be64_put(void *p, uint64_t v);
uint64_t	util_be64_get(const void *p);

/*
 * Overwrite len bytes at buf that held key material, in a way the compiler
 * keeps.  Accepts NULL.
 */
void	util_wipe(void *buf, size_t len);

/*
 * printf into buf of len bytes, for the "errbuf, errlen" and "why, whylen"
 * pairs that callers pass for a reason: a NULL buf or a len of 0 keeps
 * nothing.
 */
void	util_fmt(char *buf, size_t len, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	util_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));

/*
 * Fill set with every signal a thread can be spared: all but the
 * synchronous ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS,
 * SIGABRT), which a fault raises in the faulting thread itself.
 */
void	util_sigset_async(sigset_t *set);

/*
 * pthread_create with the signals of util_sigset_async blocked in the new
 * thread (they are the event loop's, so a helper thread's system calls are
 * not interrupted by a handler), named name (15 bytes at most; top -H and
 * /proc show it).  Returns pthread_create's result.
 */
int	util_thread_start(pthread_t *t, const char *name,
	    void *(*fn)(void *), void *arg);

/* Worker threads for CPU-bound work: one a CPU online, 1 to max. */
unsigned	util_workers(unsigned max);

/*
 * The two ends of an eventfd by which a thread wakes the event loop:
 * util_wake adds one to the counter (from the thread), util_woken reads it
 * back to zero (in the loop's read callback).  Both are for a non-blocking
 * eventfd and return 0, or -1 with errno set when the call failed for
 * another reason than EAGAIN (a counter already full, or already read).
 */
int	util_wake(int efd);
int	util_woken(int efd);

#endif
