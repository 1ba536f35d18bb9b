/* SPDX-License-Identifier: MIT */
/*
 * reloadbench: how long after a REST update of a certificate is
 * acknowledged does a server using the libcertd reloader present the new
 * certificate to new handshakes (tests/bench/reload.sh, doc/performance.md).
 *
 *	reloadbench HTTP_PORT TOKEN PATH BODY_A BODY_B TLS_PORT N
 *
 * N times, alternating BODY_B and BODY_A (JSON files; the certificate
 * starts as A): PUT the body to 127.0.0.1:HTTP_PORT PATH and read the whole
 * response (t0, what `curl` returning means), take the new
 * fingerprint_sha256 from it, then make full TLS handshakes with
 * 127.0.0.1:TLS_PORT back to back until one presents that certificate
 * (t1, the end of that handshake).  t1 - t0 is an upper bound of the delay:
 * it includes the whole handshake that showed the change.  Also counts the
 * changes already visible to the first handshake after the ack (the swap
 * then happened before t0).  Prints percentiles, the handshake time and a
 * RESULT line.  CLOCK_MONOTONIC throughout.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#define RESP_MAX	(256 * 1024)
#define POLL_LIMIT_MS	5000

static gnutls_certificate_credentials_t	cred;
static double				hs_total_ms;
static unsigned long			hs_count;

static double
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *f, ...)
{
	va_list	ap;

	va_start(ap, f);
	fputs("reloadbench: ", stderr);
	vfprintf(stderr, f, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*p;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		die("%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		die("%s: cannot size", path);
	if ((p = malloc((size_t)n + 1)) == NULL)
		die("out of memory");
	if (fread(p, 1, (size_t)n, f) != (size_t)n)
		die("%s: short read", path);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static int
dial(int port)
{
	struct sockaddr_in	sin;
	int			fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		die("connect 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/*
 * PUT body; returns when the whole response is read, with the new
 * fingerprint in fp.
 */
static void
put(int port, const char *token, const char *path, const char *body,
    size_t blen, char fp[65])
{
	static char	 resp[RESP_MAX + 1];
	char		 hdr[1024];
	const char	*end, *cl, *f;
	size_t		 len = 0, need = 0;
	ssize_t		 n;
	int		 fd, h;

	h = snprintf(hdr, sizeof(hdr), "PUT %s HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nAuthorization: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", path, token, blen);
	fd = dial(port);
	write_all(fd, hdr, (size_t)h);
	write_all(fd, body, blen);
	for (;;) {
		if (len == RESP_MAX)
			die("response too large");
		n = read(fd, resp + len, RESP_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read: %s", strerror(errno));
		len += (size_t)n;
		resp[len] = '\0';
		if (need == 0 && (end = strstr(resp, "\r\n\r\n")) != NULL) {
			if ((cl = strcasestr(resp, "\r\ncontent-length:")) == NULL ||
			    cl > end)
				die("no Content-Length in the response");
			need = (size_t)(end + 4 - resp) +
			    strtoul(cl + 17, NULL, 10);
		}
		if (need != 0 && len >= need)
			break;
		if (n == 0)
			die("response cut short: %s", resp);
	}
	close(fd);
	if (strncmp(resp, "HTTP/1.1 200", 12) != 0)
		die("PUT answered: %.300s", resp);
	if ((f = strstr(resp, "\"fingerprint_sha256\":\"")) == NULL ||
	    strlen(f + 22) < 64)
		die("no fingerprint in: %.300s", resp);
	memcpy(fp, f + 22, 64);
	fp[64] = '\0';
}

/* One full handshake; the presented leaf's SHA-256 in fp. */
static void
handshake(int port, char fp[65])
{
	static const char	 digits[] = "0123456789abcdef";
	gnutls_session_t	 s;
	const gnutls_datum_t	*peer;
	unsigned char		 md[32];
	unsigned		 n, i;
	double			 t = now_ms();
	int			 fd, rv;

	fd = dial(port);
	if (gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		die("gnutls session");
	gnutls_transport_set_int(s, fd);
	do
		rv = gnutls_handshake(s);
	while (rv < 0 && !gnutls_error_is_fatal(rv));
	if (rv < 0)
		die("handshake: %s", gnutls_strerror(rv));
	if ((peer = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0 ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, peer[0].data, peer[0].size,
	    md) != 0)
		die("no peer certificate");
	for (i = 0; i < sizeof(md); i++) {
		fp[2 * i] = digits[md[i] >> 4];
		fp[2 * i + 1] = digits[md[i] & 0xf];
	}
	fp[64] = '\0';
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(fd);
	hs_total_ms += now_ms() - t;
	hs_count++;
}

static int
cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0, n). */
static double
pct(const double *v, size_t n, double p)
{
	size_t	k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	return v[k - 1];
}

int
main(int argc, char *argv[])
{
	char	*body[2], want[65], got[65];
	size_t	 blen[2];
	double	*lat, t0, t1, sum = 0;
	long	 n, i, polls, max_polls = 0, first = 0;
	int	 http_port, tls_port;

	if (argc != 8) {
		fprintf(stderr, "usage: reloadbench HTTP_PORT TOKEN PATH "
		    "BODY_A BODY_B TLS_PORT N\n");
		return 2;
	}
	http_port = atoi(argv[1]);
	body[0] = slurp(argv[4], &blen[0]);
	body[1] = slurp(argv[5], &blen[1]);
	tls_port = atoi(argv[6]);
	if ((n = atol(argv[7])) < 1 || (lat = calloc((size_t)n,
	    sizeof(*lat))) == NULL)
		die("bad N");
	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		die("credentials");

	for (i = 0; i < n; i++) {
		put(http_port, argv[2], argv[3], body[(i + 1) % 2],
		    blen[(i + 1) % 2], want);
		t0 = now_ms();
		polls = 0;
		do {
			handshake(tls_port, got);
			polls++;
			t1 = now_ms();
			if (t1 - t0 > POLL_LIMIT_MS)
				die("change %ld: still %s after %d ms, want %s",
				    i + 1, got, POLL_LIMIT_MS, want);
		} while (strcmp(got, want) != 0);
		lat[i] = t1 - t0;
		sum += lat[i];
		if (polls > max_polls)
			max_polls = polls;
		first += polls == 1;
		printf("change %3ld: %.3f ms, %ld handshake%s\n", i + 1,
		    lat[i], polls, polls == 1 ? "" : "s");
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("PUT acknowledged -> new certificate presented, %ld changes: "
	    "p50 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms\n", n,
	    pct(lat, (size_t)n, 50), pct(lat, (size_t)n, 99), lat[n - 1],
	    sum / (double)n);
	printf("handshake (client side, full): mean %.2f ms over %lu; "
	    "most handshakes for one change: %ld; new certificate already "
	    "on the first handshake after the ack: %ld/%ld\n",
	    hs_total_ms / (double)hs_count, hs_count, max_polls, first, n);
	printf("RESULT changes=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "mean_ms=%.3f handshake_ms=%.3f max_polls=%ld first=%ld\n", n,
	    pct(lat, (size_t)n, 50), pct(lat, (size_t)n, 99), lat[n - 1],
	    sum / (double)n, hs_total_ms / (double)hs_count, max_polls, first);
	gnutls_certificate_free_credentials(cred);
	free(lat);
	free(body[0]);
	free(body[1]);
	return 0;
}
