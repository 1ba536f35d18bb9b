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

#include <certd/certd.h>

#include "cert.h"
#include "certctl.h"
#include "json.h"
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
	struct json_w	*w;
	const char	*s;
	char		 text[1200];
	size_t		 len;

	if (json_errors && (w = json_w_new()) != NULL) {
		snprintf(text, sizeof(text), "%s%s", prefix, msg);
		utf8_or_ascii(text);
		json_w_obj(w);
		json_w_kint(w, "code", code);
		json_w_kstr(w, "msg", text);
		json_w_obj_end(w);
		if (json_w_done(w, &s, &len) == 0) {
			printf("%.*s\n", (int)len, s);
			fflush(stdout);
			json_w_free(w);
			return status;
		}
		json_w_free(w);
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

/* A string member; none when s is NULL. */
void
certctl_out_jstr(struct json_w *w, const char *key, const char *s)
{
	if (s != NULL)
		json_w_kstr(w, key, s);
}

/*
 * A time: key as RFC 3339 UTC ("2026-12-07T18:03:38Z"), the one format
 * people and scripts read, and key_unix as Unix seconds beside it.  t 0
 * (none, or not sent) is null and 0.
 */
void
certctl_out_jtime(struct json_w *w, const char *key, int64_t t)
{
	char	when[24], ukey[64];

	snprintf(ukey, sizeof(ukey), "%s_unix", key);
	if (t != 0)
		util_time_iso(t, 1, when);
	json_w_kstr(w, key, t != 0 ? when : NULL);
	json_w_kint(w, ukey, t);
}

int
certctl_out_print_json(struct json_w *w)
{
	const char	*s;
	size_t		 len;
	int		 r;

	if (w == NULL)
		return certctl_out_fail("out of memory");
	if ((r = json_w_done(w, &s, &len)) != 0) {
		json_w_free(w);
		return certctl_out_fail("cannot build JSON output (text is not "
		    "UTF-8?)");
	}
	r = printf("%.*s\n", (int)len, s) < 0 ? -1 : 0;
	json_w_free(w);		/* wiped: it may hold a key */
	if (r != 0)
		return certctl_out_fail("writing output: %s", strerror(errno));
	return certctl_out_flush_stdout();
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
