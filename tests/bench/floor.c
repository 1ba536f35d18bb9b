/* SPDX-License-Identifier: MIT */
/*
 * floor: the ceiling of certd's REST PUT on this machine with the SPEC's
 * libraries and nothing else (tests/bench/put.sh FLOOR=1,
 * doc/performance.md).
 *
 *	floor PORT PROCS
 *
 * An evhttp server on 127.0.0.1:PORT that answers every PUT as certd's
 * REST side must at least: read the body, decode it with
 * json_loadb(JSON_REJECT_DUPLICATES), add an "id" and encode the answer
 * with json_dumpb(JSON_COMPACT), 200.  No validation, no encryption, no
 * storage, no fsync.  As cheap as these libraries allow: the body is
 * decoded where evhttp holds it, jansson allocates from an arena, the
 * answer is encoded on the stack.  PROCS processes share the port (SO_REUSEPORT), one
 * event loop each: PROCS 2 puts both cores to work with no hand-off
 * between threads, the best any arrangement of evhttp and jansson can do.
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
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

static _Atomic uint64_t	*answered;

/*
 * jansson's allocations come from one arena per process, emptied after each
 * request: no malloc or free per string and node.  A request that needs
 * more than the arena falls back to malloc (never with certd's bodies).
 */
static _Alignas(16) char	arena[256 * 1024];
static size_t	arena_used;

static void *
arena_alloc(size_t n)
{
	void	*p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(arena) - arena_used)
		return malloc(n);
	p = arena + arena_used;
	arena_used += n;
	return p;
}

static void
arena_free(void *p)
{
	if ((char *)p < arena || (char *)p >= arena + sizeof(arena))
		free(p);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	json_error_t	 jerr;
	json_t		*root;
	size_t		 len = evbuffer_get_length(in), n;
	char		*body, reply[64 * 1024];

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
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		arena_used = 0;
		evhttp_send_error(req, 400, NULL);
		return;
	}
	json_object_set_new(root, "id", json_integer(1));
	n = json_dumpb(root, reply, sizeof(reply), JSON_COMPACT);
	json_decref(root);
	arena_used = 0;
	if (n == 0 || n > sizeof(reply)) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), reply, n);
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

	if (argc != 3 || (port = atoi(argv[1])) <= 0 ||
	    (procs = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: floor PORT PROCS\n");
		return 2;
	}
	answered = mmap(NULL, sizeof(*answered), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (answered == MAP_FAILED) {
		perror("floor: mmap");
		return 1;
	}
	json_set_alloc_funcs(arena_alloc, arena_free);
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
