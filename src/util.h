/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by several subsystems: names, numbers, time, and
 * starting a thread.
 */
#ifndef CERTD_UTIL_H
#define CERTD_UTIL_H

#include <pthread.h>
#include <signal.h>
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

#endif
