/* SPDX-License-Identifier: MIT */
/*
 * The team-certificate resource of the REST API (http_certs.c): the
 * handlers http.c routes to, and the pure pieces of their JSON and query
 * decoding, which the unit tests and fuzzers call directly.  The request
 * context they take, struct http_req, is http.h's.
 */
#ifndef CERTD_HTTP_CERTS_H
#define CERTD_HTTP_CERTS_H

#include <stddef.h>
#include <stdint.h>

struct http_req;
struct json_body;
struct service_put_req;
struct service_why;

/*
 * Parse a request body into a JSON object (an empty body is {} when
 * empty_ok).  Pure.  Returns 0 and *b, or CERTD_ERR_TOO_LARGE,
 * CERTD_ERR_BAD_REQUEST or CERTD_ERR_NOMEM with a reason about the body;
 * json_body_free(b) either way.
 */
int	http_certs_body_parse(const char *data, size_t len, int empty_ok,
	    struct json_body *b, char *reason, size_t reasonlen);

/*
 * Read the string fields of TeamCertificatesC from b into req (pointers
 * into b; absent or null fields stay NULL).  Returns NULL, or the name of
 * the first field that is not a string.
 */
const char *http_certs_fields(const struct json_body *b,
	    struct service_put_req *req);

/*
 * The paging parameters of a list query string (NULL: none): page
 * (default 1) and page_size (default CERTD_PAGE_SIZE_DEFAULT), as integers
 * of JSON's range, then by the rule of service_page_check.  Pure.
 * Returns 0, or CERTD_ERR_BAD_REQUEST with why naming what is wrong
 * ("query", "page" or "page_size") and the reason.
 */
int	http_certs_paging(const char *query, uint64_t *page,
	    uint64_t *page_size, struct service_why *why);

/* Resource handlers.  Each ends in exactly one reply. */
void	http_certs_list(struct http_req *r);
void	http_certs_create(struct http_req *r);
void	http_certs_get(struct http_req *r);
void	http_certs_update(struct http_req *r);
void	http_certs_delete(struct http_req *r);
void	http_certs_subscribers(struct http_req *r);
void	http_certs_history(struct http_req *r);
void	http_certs_rollback(struct http_req *r);

#endif
