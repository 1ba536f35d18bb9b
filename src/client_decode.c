/* SPDX-License-Identifier: MIT */
/*
 * libcertd's decoding of certd's results (doc/protocol.md) into the structs
 * of include/certd/certd.h: a certificate, the list, subscribers and
 * history arrays (one array walker; a table of fields says what each item,
 * and the certificate, holds), and the error of a failed response; with
 * the functions that free those structs.  No I/O:
 * the frames were checked and unpacked by proto.c; every string is copied
 * out, so the results outlive the frame.  A private key is wiped when its
 * certificate is freed.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include <certd/certd.h>

#include "client_int.h"
#include "proto.h"
#include "util.h"

/* A C string from wire bytes; an embedded NUL is not the protocol. */
int
client_decode_strn(const char *s, size_t len, char **out)
{
	char	*p;

	if (memchr(s, '\0', len) != NULL)
		return CERTD_E_PROTO;
	if ((p = strndup(s, len)) == NULL)	/* all len bytes: no NUL */
		return CERTD_E_NOMEM;
	*out = p;
	return 0;
}

/* Optional string field: absent or nil leaves *out NULL. */
static int
get_opt_str(const msgpack_object *m, const char *key, char **out)
{
	const char	*s;
	size_t		 len;
	int		 r;

	r = proto_get_str(m, key, &s, &len);
	if (r < 0)
		return CERTD_E_PROTO;
	if (r == 0)
		return 0;
	return client_decode_strn(s, len, out);
}

static int
get_opt_uint(const msgpack_object *m, const char *key, uint64_t *out)
{
	return proto_get_uint(m, key, out) < 0 ? CERTD_E_PROTO : 0;
}

static int
get_opt_int(const msgpack_object *m, const char *key, int64_t *out)
{
	return proto_get_int(m, key, out) < 0 ? CERTD_E_PROTO : 0;
}

/* A required string field, "" when absent so callers need no NULL checks. */
static int
get_str_or_empty(const msgpack_object *m, const char *key, char **out)
{
	int	r;

	if ((r = get_opt_str(m, key, out)) != 0)
		return r;
	if (*out == NULL && (*out = strdup("")) == NULL)
		return CERTD_E_NOMEM;
	return 0;
}

/*
 * One field of a result map: its key, how it is read, and where it goes in
 * the struct being filled (its offset).  fields_decode reads a table in its
 * order, the required field first.
 */
enum field_kind {
	FIELD_REQUIRED,		/* uint64_t; must be there */
	FIELD_UINT,		/* uint64_t; absent or nil: 0 */
	FIELD_INT,		/* int64_t; absent or nil: 0 */
	FIELD_STR,		/* char *; absent or nil: NULL */
	FIELD_STR_OR_EMPTY,	/* char *; absent or nil: "" */
};

struct field {
	const char	*key;
	enum field_kind	 kind;
	size_t		 off;
};

#define AT(type, member)	offsetof(struct type, member)
#define FIELDS(table)		(table), sizeof(table) / sizeof((table)[0])

/*
 * The n fields of table f from map m into the zeroed struct at base.  On
 * failure what was stored stays, for fields_clear.
 */
static int
fields_decode(const msgpack_object *m, const struct field *f, size_t n,
    void *base)
{
	unsigned char	*p;
	size_t		 i;
	int		 r = 0;

	for (i = 0; i < n && r == 0; i++) {
		p = (unsigned char *)base + f[i].off;
		switch (f[i].kind) {
		case FIELD_REQUIRED:
			if (proto_get_uint(m, f[i].key, (uint64_t *)p) != 1)
				r = CERTD_E_PROTO;
			break;
		case FIELD_UINT:
			r = get_opt_uint(m, f[i].key, (uint64_t *)p);
			break;
		case FIELD_INT:
			r = get_opt_int(m, f[i].key, (int64_t *)p);
			break;
		case FIELD_STR:
			r = get_opt_str(m, f[i].key, (char **)p);
			break;
		case FIELD_STR_OR_EMPTY:
			r = get_str_or_empty(m, f[i].key, (char **)p);
			break;
		}
	}
	return r;
}

/* Free the strings that fields_decode stored at base. */
static void
fields_clear(const struct field *f, size_t n, void *base)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (f[i].kind == FIELD_STR || f[i].kind == FIELD_STR_OR_EMPTY)
			free(*(char **)((unsigned char *)base + f[i].off));
}

static const struct field cert_fields[] = {
	{ "id", FIELD_REQUIRED, AT(certd_cert, id) },
	{ "team", FIELD_STR, AT(certd_cert, team) },
	{ "alias", FIELD_STR, AT(certd_cert, alias) },
	{ "certificate_type", FIELD_STR, AT(certd_cert, certificate_type) },
	{ "certificate", FIELD_STR, AT(certd_cert, certificate) },
	{ "private_key", FIELD_STR, AT(certd_cert, private_key) },
	{ "fingerprint_sha256", FIELD_STR, AT(certd_cert, fingerprint_sha256) },
	{ "revision", FIELD_UINT, AT(certd_cert, revision) },
	{ "not_after", FIELD_INT, AT(certd_cert, not_after) },
};

/*
 * A cert map into a fresh struct certd_cert.  Only id is required: delete
 * events carry id and alias alone.  team comes from the map, else from
 * team/team_len when given.
 */
int
client_decode_cert(const msgpack_object *m, const char *team, size_t team_len,
    struct certd_cert **out)
{
	struct certd_cert	*c;
	int			 r;

	*out = NULL;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return CERTD_E_PROTO;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CERTD_E_NOMEM;
	if ((r = fields_decode(m, FIELDS(cert_fields), c)) != 0)
		goto fail;
	if (c->team == NULL && team != NULL &&
	    (r = client_decode_strn(team, team_len, &c->team)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	certd_cert_free(c);
	return r;
}

/*
 * How one kind of array item is decoded: a zeroed item of size bytes is
 * filled from one map by its table of fields.
 */
struct item_kind {
	size_t			 size;
	const struct field	*fields;
	size_t			 n;
};

/* Clear n items of kind and free the array. */
static void
items_free(void *items, size_t n, const struct item_kind *kind)
{
	size_t	i;

	for (i = 0; i < n; i++)
		fields_clear(kind->fields, kind->n,
		    (unsigned char *)items + i * kind->size);
	free(items);
}

/*
 * The "list" array of the result map m into a fresh array of kind items,
 * *items (NULL when empty) and *n.  On failure nothing is left allocated.
 */
static int
items_from_map(const msgpack_object *m, const struct item_kind *kind,
    void **items, size_t *n)
{
	const msgpack_object_array	*a;
	unsigned char			*p = NULL;
	size_t				 i;
	int				 r;

	*items = NULL;
	*n = 0;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP ||
	    proto_get_array(m, "list", &a) != 1)
		return CERTD_E_PROTO;
	/* a->size is bounded by proto_check (CERTD_MSGPACK_ITEMS_MAX, and
	 * the frame's bytes). */
	if (a->size > 0 && (p = calloc(a->size, kind->size)) == NULL)
		return CERTD_E_NOMEM;
	for (i = 0; i < a->size; i++) {
		r = a->ptr[i].type != MSGPACK_OBJECT_MAP ? CERTD_E_PROTO :
		    fields_decode(&a->ptr[i], kind->fields, kind->n,
		    p + i * kind->size);
		if (r != 0) {
			items_free(p, i + 1, kind);
			return r;
		}
	}
	*items = p;
	*n = a->size;
	return 0;
}

static const struct field list_item_fields[] = {
	{ "id", FIELD_REQUIRED, AT(certd_list_item, id) },
	{ "alias", FIELD_STR, AT(certd_list_item, alias) },
	{ "certificate_type", FIELD_STR,
	    AT(certd_list_item, certificate_type) },
	{ "fingerprint_sha256", FIELD_STR,
	    AT(certd_list_item, fingerprint_sha256) },
	{ "revision", FIELD_UINT, AT(certd_list_item, revision) },
	{ "not_after", FIELD_INT, AT(certd_list_item, not_after) },
};

/* The list's own fields, beside its items. */
static const struct field list_fields[] = {
	{ "page", FIELD_UINT, AT(certd_list, page) },
	{ "page_size", FIELD_UINT, AT(certd_list, page_size) },
	{ "total", FIELD_UINT, AT(certd_list, total) },
};

/*
 * The error of a response {"ok":false,"error":{...}} into buf as
 * "msg[ (field: reason)]".  Returns -code (for the codes certd sends, the
 * CERTD_E_* of constants.h, err.c's table), or CERTD_E_PROTO when the
 * error is not well formed.
 */
int
client_decode_error(const msgpack_object *resp, char *buf, size_t len)
{
	const msgpack_object	*e;
	const char		*msg = "", *field = NULL, *reason = NULL;
	size_t			 msg_len = 0, field_len = 0, reason_len = 0;
	int64_t			 code;

	e = proto_get(resp, "error");
	if (e == NULL || e->type != MSGPACK_OBJECT_MAP ||
	    proto_get_int(e, "code", &code) != 1 || code < 100 || code > 999 ||
	    proto_get_str(e, "msg", &msg, &msg_len) < 0 ||
	    proto_get_str(e, "field", &field, &field_len) < 0 ||
	    proto_get_str(e, "reason", &reason, &reason_len) < 0) {
		util_fmt(buf, len, "malformed error response from certd");
		return CERTD_E_PROTO;
	}
	if (field != NULL && reason != NULL)
		util_fmt(buf, len, "%.*s (%.*s: %.*s)", (int)msg_len, msg,
		    (int)field_len, field, (int)reason_len, reason);
	else if (field != NULL)
		util_fmt(buf, len, "%.*s (%.*s)", (int)msg_len, msg,
		    (int)field_len, field);
	else if (reason != NULL)
		util_fmt(buf, len, "%.*s: %.*s", (int)msg_len, msg,
		    (int)reason_len, reason);
	else
		util_fmt(buf, len, "%.*s", (int)msg_len, msg);
	return -(int)code;
}

void
certd_cert_free(struct certd_cert *cert)
{
	if (cert == NULL)
		return;
	if (cert->private_key != NULL)
		util_wipe(cert->private_key, strlen(cert->private_key));
	fields_clear(FIELDS(cert_fields), cert);
	free(cert);
}

void
certd_list_free(struct certd_list *l)
{
	client_decode_list_free(l, CLIENT_LIST_CERTS);
}

static const struct field subscriber_fields[] = {
	{ "watch", FIELD_REQUIRED, AT(certd_subscriber, watch) },
	{ "name", FIELD_STR_OR_EMPTY, AT(certd_subscriber, name) },
	{ "status", FIELD_STR_OR_EMPTY, AT(certd_subscriber, status) },
	{ "detail", FIELD_STR_OR_EMPTY, AT(certd_subscriber, detail) },
	{ "uid", FIELD_UINT, AT(certd_subscriber, uid) },
	{ "pid", FIELD_INT, AT(certd_subscriber, pid) },
	{ "revision", FIELD_UINT, AT(certd_subscriber, revision) },
	{ "at", FIELD_INT, AT(certd_subscriber, at) },
	{ "served_fingerprint_sha256", FIELD_STR,
	    AT(certd_subscriber, served_fingerprint_sha256) },
	{ "verified_at_unix", FIELD_INT, AT(certd_subscriber, verified_at) },
};

void
certd_subscriber_list_free(struct certd_subscriber_list *l)
{
	size_t	i;

	for (i = 0; l != NULL && l->nodes != NULL && i < l->n; i++)
		free(l->nodes[i]);
	if (l != NULL)
		free(l->nodes);
	client_decode_list_free(l, CLIENT_LIST_SUBSCRIBERS);
}

/* The "node" of each subscriber of m's list (fleet mode), into l->nodes. */
static int
subscriber_nodes(const msgpack_object *m, struct certd_subscriber_list *l)
{
	const msgpack_object_array	*a;
	const char			*s;
	size_t				 i, len;
	int				 r;

	/* a certd in fleet mode names the node of every subscriber */
	if (proto_get_array(m, "list", &a) != 1 || a->size != l->n ||
	    l->n == 0 || proto_get_str(&a->ptr[0], "node", &s, &len) != 1)
		return 0;
	if ((l->nodes = calloc(l->n, sizeof(*l->nodes))) == NULL)
		return CERTD_E_NOMEM;
	for (i = 0; i < l->n; i++)
		if ((r = get_opt_str(&a->ptr[i], "node", &l->nodes[i])) != 0)
			return r;
	return 0;
}

static const struct field version_fields[] = {
	{ "revision", FIELD_REQUIRED, AT(certd_version, revision) },
	{ "alias", FIELD_STR, AT(certd_version, alias) },
	{ "certificate_type", FIELD_STR, AT(certd_version, certificate_type) },
	{ "fingerprint_sha256", FIELD_STR,
	    AT(certd_version, fingerprint_sha256) },
	{ "not_after", FIELD_INT, AT(certd_version, not_after) },
	{ "updated_at", FIELD_INT, AT(certd_version, updated_at) },
};

void
certd_version_list_free(struct certd_version_list *l)
{
	client_decode_list_free(l, CLIENT_LIST_VERSIONS);
}

/*
 * How one kind of list result is decoded: a struct of size bytes holding
 * the item array and its count at items_at and n_at, its own fields head
 * (n_head of them) beside the "list" array of item.
 */
struct client_list_kind {
	size_t			 size;
	size_t			 items_at;
	size_t			 n_at;
	const struct field	*head;
	size_t			 n_head;
	struct item_kind	 item;
};

static const struct client_list_kind list_kinds[] = {
	[CLIENT_LIST_CERTS] = {
		sizeof(struct certd_list), AT(certd_list, items),
		AT(certd_list, n), FIELDS(list_fields),
		{ sizeof(struct certd_list_item), FIELDS(list_item_fields) }
	},
	[CLIENT_LIST_SUBSCRIBERS] = {
		sizeof(struct certd_subscriber_list),
		AT(certd_subscriber_list, items), AT(certd_subscriber_list, n),
		NULL, 0,
		{ sizeof(struct certd_subscriber), FIELDS(subscriber_fields) }
	},
	[CLIENT_LIST_VERSIONS] = {
		sizeof(struct certd_version_list),
		AT(certd_version_list, items), AT(certd_version_list, n),
		NULL, 0,
		{ sizeof(struct certd_version), FIELDS(version_fields) }
	},
};

void
client_decode_list_free(void *l, enum client_list which)
{
	const struct client_list_kind	*k = &list_kinds[which];
	unsigned char			*p = l;

	if (p == NULL)
		return;
	items_free(*(void **)(p + k->items_at), *(size_t *)(p + k->n_at),
	    &k->item);
	fields_clear(k->head, k->n_head, p);
	free(p);
}

int
client_decode_items(const msgpack_object *m, enum client_list which,
    void **out)
{
	const struct client_list_kind	*k = &list_kinds[which];
	unsigned char			*p;
	int				 r;

	*out = NULL;
	if ((p = calloc(1, k->size)) == NULL)
		return CERTD_E_NOMEM;
	if ((r = fields_decode(m, k->head, k->n_head, p)) != 0 ||
	    (r = items_from_map(m, &k->item, (void **)(p + k->items_at),
	    (size_t *)(p + k->n_at))) != 0 ||
	    (which == CLIENT_LIST_SUBSCRIBERS &&
	    (r = subscriber_nodes(m, (void *)p)) != 0)) {
		if (which == CLIENT_LIST_SUBSCRIBERS)
			certd_subscriber_list_free((void *)p);
		else
			client_decode_list_free(p, which);
		return r;
	}
	*out = p;
	return 0;
}
