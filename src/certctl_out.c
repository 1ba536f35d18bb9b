/* SPDX-License-Identifier: MIT */
/*
 * certctl's output: every failure goes through report() here, once: one
 * "certctl: ..." line on stderr, or with --json one {"code","msg"} object
 * on stdout, and the exit status of its class (certctl.1, EXIT STATUS);
 * and the helpers that build and print JSON objects (ids as integers,
 * times as RFC 3339 UTC beside Unix seconds, keys wiped) and the columns
 * of the human tables, measured in display cells.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <jansson.h>

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "util.h"

/*
 * Set in main before any option is parsed: errors are JSON objects when
 * --json is anywhere on the command line, and usage errors point at the
 * command's own --help.
 */
static int		 json_errors;
static const char	*cur_cmd = "";

void
certctl_out_set_json(int json)
{
	json_errors = json;
}

void
certctl_out_set_command(const char *cmd)
{
	cur_cmd = cmd;
}

/* msg as valid UTF-8 for JSON: a byte that does not decode becomes '?'. */
static void
utf8_or_ascii(char *msg)
{
	char	*p;

	if (util_utf8_valid(msg, strlen(msg)))
		return;
	for (p = msg; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
}

/*
 * Every failure ends here, once: one line "certctl: PREFIX[CODE ]MSG[HINT]"
 * on stderr (CODE when certd answered with it), or with --json one object
 * {"code":CODE,"msg":"PREFIX MSG"} on stdout and nothing on stderr; CODE is
 * certd's status when it answered, else the exit status.  Returns status.
 */
static int
report(int status, int code, const char *prefix, const char *msg,
    const char *hint)
{
	char	 text[1200], *s = NULL;
	json_t	*o;

	if (json_errors) {
		snprintf(text, sizeof(text), "%s%s", prefix, msg);
		utf8_or_ascii(text);
		o = json_pack("{s:i, s:s}", "code", code, "msg", text);
		if (o != NULL)
			s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (s != NULL) {
			puts(s);
			free(s);
			fflush(stdout);
			return status;
		}
	}
	if (code >= 100)
		fprintf(stderr, "certctl: %s%d %s%s\n", prefix, code, msg, hint);
	else
		fprintf(stderr, "certctl: %s%s%s\n", prefix, msg, hint);
	return status;
}

/*
 * A failure of class status (EXIT_*) that certd did not answer;
 * certctl_out_fail is this with EXIT_FAILED.
 */
int __attribute__((format(printf, 2, 3)))
certctl_out_fail_as(int status, const char *f, ...)
{
	va_list	ap;
	char	msg[1024];

	va_start(ap, f);
	vsnprintf(msg, sizeof(msg), f, ap);
	va_end(ap);
	return report(status, status, "", msg, "");
}

int __attribute__((format(printf, 1, 2)))
certctl_out_usage_error(const char *f, ...)
{
	va_list	ap;
	char	msg[1024], hint[128];

	va_start(ap, f);
	vsnprintf(msg, sizeof(msg), f, ap);
	va_end(ap);
	snprintf(hint, sizeof(hint), " (certctl %s%s--help for usage)", cur_cmd,
	    *cur_cmd != '\0' ? " " : "");
	return report(EXIT_USAGE, EXIT_USAGE, "", msg, hint);
}

/* The class of a libcertd result r < 0: -status from certd, or CERTD_E_*. */
static int
exit_class(int r)
{
	if (r <= -500)
		return EXIT_FAILED;
	if (r <= -100)
		return EXIT_REFUSED;
	switch (r) {
	case CERTD_E_IO:
	case CERTD_E_PEER:
		return EXIT_UNREACHED;
	case CERTD_E_INVAL:
		return EXIT_USAGE;
	default:			/* CERTD_E_PROTO, CERTD_E_NOMEM */
		return EXIT_FAILED;
	}
}

/* A failure with libcertd's code r and message msg (prefix before both). */
int
certctl_out_fail_code(int r, const char *prefix, const char *msg)
{
	return report(exit_class(r), r <= -100 ? -r : exit_class(r), prefix,
	    msg, "");
}

/* A failed libcertd call: server errors show their status code. */
int
certctl_out_fail_call(struct certd_client *c, int r)
{
	return certctl_out_fail_code(r, "", certd_client_error(c));
}

int
certctl_out_flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return certctl_out_fail("writing output: %s", strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* JSON output */

/*
 * Set key to a copy of s (skipped when s is NULL).  jansson refuses text
 * that is not UTF-8: certd validates what it stores, so that is a protocol
 * error worth reporting rather than hiding.
 */
int
certctl_out_jset_str(json_t *o, const char *key, const char *s)
{
	json_t	*v;

	if (s == NULL)
		return 0;
	if ((v = json_string(s)) == NULL)
		return -1;
	return json_object_set_new(o, key, v);
}

int
certctl_out_jset_int(json_t *o, const char *key, json_int_t v)
{
	return json_object_set_new(o, key, json_integer(v));
}

/* uint64 ids and revisions: JSON integers up to INT64_MAX. */
int
certctl_out_jset_u64(json_t *o, const char *key, uint64_t v)
{
	if (v > INT64_MAX)
		return -1;
	return certctl_out_jset_int(o, key, (json_int_t)v);
}

/*
 * A time: key as RFC 3339 UTC ("2026-12-07T18:03:38Z"), the one format
 * people and scripts read, and key_unix as Unix seconds beside it.  t 0
 * (none, or not sent) is null and 0.
 */
int
certctl_out_jset_time(json_t *o, const char *key, int64_t t)
{
	char	when[24], ukey[64];

	snprintf(ukey, sizeof(ukey), "%s_unix", key);
	if (t != 0)
		util_time_iso(t, 1, when);
	if (json_object_set_new(o, key, t != 0 ? json_string(when) :
	    json_null()) != 0)
		return -1;
	return certctl_out_jset_int(o, ukey, t);
}

/* Wipe the text of a secret string member before the object goes. */
void
certctl_out_jwipe(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (v != NULL && json_is_string(v))
		util_wipe((char *)(uintptr_t)json_string_value(v),
		    json_string_length(v));
}

/* Print o on one line and free it, wiping the text if it holds a key. */
int
certctl_out_print_json(json_t *o, int secret)
{
	char	*s;
	int	 r = 0;

	if (o == NULL)
		return certctl_out_fail("cannot build JSON output (text is not "
		    "UTF-8?)");
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (secret) {
		certctl_out_jwipe(o, "private_key");
		certctl_out_jwipe(json_object_get(o, "cert"), "private_key");
	}
	json_decref(o);
	if (s == NULL)
		return certctl_out_fail("out of memory");
	if (puts(s) == EOF)
		r = -1;
	if (secret)
		util_wipe(s, strlen(s));
	free(s);
	if (r != 0 || certctl_out_flush_stdout() != 0)
		return certctl_out_fail("writing output: %s", strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Human output */

void
certctl_out_print_time(const char *label, int64_t t)
{
	char	buf[24];

	util_time_iso(t, 1, buf);
	printf("%-19s %s\n", label, buf);
}

const char *
certctl_out_str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

/*
 * Display cells of s: the tables line up in a terminal, where a CJK
 * character (common in Rainbond's aliases) takes two.  wcwidth(3) under
 * the UTF-8 LC_CTYPE that main sets; a byte that does not decode (no UTF-8
 * locale at all) and a character that is not printable count one.
 */
static size_t
text_width(const char *s)
{
	mbstate_t	st;
	wchar_t		wc;
	size_t		len = strlen(s), n, w = 0;
	int		cw;

	memset(&st, 0, sizeof(st));
	while (len > 0) {
		n = mbrtowc(&wc, s, len, &st);
		if (n == 0)
			break;
		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&st, 0, sizeof(st));
			n = 1;
			cw = 1;
		} else if ((cw = wcwidth(wc)) < 0)
			cw = 1;
		w += (size_t)cw;
		s += n;
		len -= n;
	}
	return w;
}

/* s, then spaces to fill width display cells, then one space. */
void
certctl_out_print_cell(const char *s, size_t width)
{
	size_t	w;

	fputs(s, stdout);
	for (w = text_width(s); w < width; w++)
		putchar(' ');
	putchar(' ');
}

/* The width of a column: its heading's, or its widest cell's. */
void
certctl_out_widen(size_t *width, const char *s)
{
	size_t	w = text_width(s);

	if (w > *width)
		*width = w;
}

/* At most max bytes of s into out, not cutting a UTF-8 character. */
void
certctl_out_copy_utf8(char *out, size_t max, const char *s)
{
	size_t	n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}
