/* SPDX-License-Identifier: MIT */
/*
 * floor: the ceiling of certd's REST PUT on this machine with the SPEC's
 * libraries and nothing else (tests/bench/put.sh FLOOR=1,
 * doc/performance.md).
 *
 *	floor PORT PROCS [validate]
 *
 * An evhttp server on 127.0.0.1:PORT that answers every PUT as certd's
 * REST side must at least: read the body, decode it with certd's own
 * json_body_parse (src/json.c: yajl and the checks it lacks), encode the
 * answer (an "id" and the body's string members) with json.c's writer,
 * 200.  No validation, no encryption, no storage, no fsync.  The body is
 * decoded where evhttp holds it.  PROCS processes share the port
 * (SO_REUSEPORT), one event loop each: PROCS 2 puts both cores to work
 * with no hand-off between threads, the best any arrangement of evhttp and
 * this JSON code can do.  With validate, each PUT's certificate and key
 * also go through cert_check, certd's GnuTLS validation (the validation
 * floor of put.sh CHAINS=N): the same calls certd makes, without the rest.
 * GET answers the number of PUTs answered so far by all the processes (a
 * counter they share), which put.sh checks like a server's revision; any
 * other request gets 404.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "cert.h"
#include "json.h"

static _Atomic uint64_t	*answered;
static int		 validate;

/* cert_check on the body's certificate and key: 0, or -1. */
static int
check(const struct json_body *b)
{
	const struct json_member	*c = json_body_get(b, "certificate");
	const struct json_member	*k = json_body_get(b, "private_key");
	struct cert_meta		 meta;
	char				 why[256];
	int				 rv;

	if (c == NULL || k == NULL || c->kind != JSON_STRING ||
	    k->kind != JSON_STRING)
		return -1;
	rv = cert_check(c->s, c->len, k->s, k->len, (int64_t)time(NULL), &meta,
	    why, sizeof(why));
	if (rv == 0)
		cert_meta_clear(&meta);
	return rv == 0 ? 0 : -1;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct json_body	 b;
	struct json_w		*w;
	const char		*reply;
	size_t			 len = evbuffer_get_length(in), n, i;
	char			*body, why[200];

	(void)arg;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		evbuffer_add_printf(evhttp_request_get_output_buffer(req),
		    "%" PRIu64 "\n", atomic_load(answered));
		evhttp_send_reply(req, 200, "OK", NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_PUT) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	if ((body = (char *)evbuffer_pullup(in, -1)) == NULL && len > 0) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (json_body_parse(body, len, &b, why, sizeof(why)) != 0 ||
	    (validate && check(&b) != 0)) {
		json_body_free(&b);
		evhttp_send_error(req, 400, NULL);
		return;
	}
	w = json_w_new();
	json_w_obj(w);
	json_w_kint(w, "id", 1);
	for (i = 0; i < b.n; i++)
		if (b.members[i].kind == JSON_STRING) {
			json_w_key(w, b.members[i].key);
			json_w_strn(w, b.members[i].s, b.members[i].len);
		}
	json_w_obj_end(w);
	json_body_free(&b);
	if (json_w_done(w, &reply, &n) != 0) {
		json_w_free(w);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), reply, n);
	json_w_free(w);
	atomic_fetch_add(answered, 1);
	evhttp_send_reply(req, 200, "OK", NULL);
}

static int
serve(int port)
{
	struct event_base	*base;
	struct evhttp		*http;
	struct sockaddr_in	 sin;
	int			 fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 1024) != 0) {
		perror("floor: listen");
		return 1;
	}
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL ||
	    evhttp_accept_socket(http, fd) != 0) {
		fprintf(stderr, "floor: libevent set-up failed\n");
		return 1;
	}
	evhttp_set_gencb(http, on_request, NULL);
	event_base_dispatch(base);
	return 0;
}

int
main(int argc, char **argv)
{
	int	port, procs, i;

	if ((argc != 3 && (argc != 4 || strcmp(argv[3], "validate") != 0)) ||
	    (port = atoi(argv[1])) <= 0 || (procs = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: floor PORT PROCS [validate]\n");
		return 2;
	}
	validate = argc == 4;
	answered = mmap(NULL, sizeof(*answered), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (answered == MAP_FAILED) {
		perror("floor: mmap");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("floor: fork");
			return 1;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			return serve(port);
		}
	}
	return serve(port);
}
