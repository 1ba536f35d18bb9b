/* SPDX-License-Identifier: MIT */
/*
 * libcertd's decoding of certd's results (doc/protocol.md) into the structs
 * of include/certd/certd.h: a certificate, the list, subscribers and
 * history arrays (one array walker, a decoder per item), and the error of a
 * failed response; with the functions that free those structs.  No I/O:
 * the frames were checked and unpacked by proto.c; every string is copied
 * out, so the results outlive the frame.  A private key is wiped when its
 * certificate is freed.
 */
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
	if ((p = malloc(len + 1)) == NULL)
		return CERTD_E_NOMEM;
	memcpy(p, s, len);
	p[len] = '\0';
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
	if (proto_get_uint(m, "id", &c->id) != 1) {
		r = CERTD_E_PROTO;
		goto fail;
	}
	if ((r = get_opt_str(m, "team", &c->team)) != 0 ||
	    (r = get_opt_str(m, "alias", &c->alias)) != 0 ||
	    (r = get_opt_str(m, "certificate_type", &c->certificate_type)) != 0 ||
	    (r = get_opt_str(m, "certificate", &c->certificate)) != 0 ||
	    (r = get_opt_str(m, "private_key", &c->private_key)) != 0 ||
	    (r = get_opt_str(m, "fingerprint_sha256",
	    &c->fingerprint_sha256)) != 0 ||
	    (r = get_opt_uint(m, "revision", &c->revision)) != 0 ||
	    (r = get_opt_int(m, "not_after", &c->not_after)) != 0)
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
 * How one kind of array item is decoded: decode fills a zeroed item from
 * one map, its required field first; clear frees what decode stored, also
 * in an item it gave up on half-way.
 */
struct item_kind {
	size_t	  size;
	int	(*decode)(const msgpack_object *, void *);
	void	(*clear)(void *);
};

/* Clear n items of kind and free the array. */
static void
items_free(void *items, size_t n, const struct item_kind *kind)
{
	size_t	i;

	for (i = 0; i < n; i++)
		kind->clear((unsigned char *)items + i * kind->size);
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
	/* a->size is bounded by proto_check (PROTO_ITEMS_MAX, frame bytes). */
	if (a->size > 0 && (p = calloc(a->size, kind->size)) == NULL)
		return CERTD_E_NOMEM;
	for (i = 0; i < a->size; i++) {
		r = a->ptr[i].type != MSGPACK_OBJECT_MAP ? CERTD_E_PROTO :
		    kind->decode(&a->ptr[i], p + i * kind->size);
		if (r != 0) {
			items_free(p, i + 1, kind);
			return r;
		}
	}
	*items = p;
	*n = a->size;
	return 0;
}

static void
list_item_clear(void *item)
{
	struct certd_list_item	*it = item;

	free(it->alias);
	free(it->certificate_type);
	free(it->fingerprint_sha256);
}

static int
list_item_from_map(const msgpack_object *o, void *item)
{
	struct certd_list_item	*it = item;
	int			 r;

	if (proto_get_uint(o, "id", &it->id) != 1)
		return CERTD_E_PROTO;
	if ((r = get_opt_str(o, "alias", &it->alias)) != 0 ||
	    (r = get_opt_str(o, "certificate_type",
	    &it->certificate_type)) != 0 ||
	    (r = get_opt_str(o, "fingerprint_sha256",
	    &it->fingerprint_sha256)) != 0 ||
	    (r = get_opt_uint(o, "revision", &it->revision)) != 0 ||
	    (r = get_opt_int(o, "not_after", &it->not_after)) != 0)
		return r;
	return 0;
}

static const struct item_kind list_kind = {
	sizeof(struct certd_list_item), list_item_from_map, list_item_clear
};

int
client_decode_list(const msgpack_object *m, struct certd_list **out)
{
	struct certd_list	*l;
	void			*items;
	int			 r;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	if ((r = get_opt_uint(m, "page", &l->page)) != 0 ||
	    (r = get_opt_uint(m, "page_size", &l->page_size)) != 0 ||
	    (r = get_opt_uint(m, "total", &l->total)) != 0 ||
	    (r = items_from_map(m, &list_kind, &items, &l->n)) != 0) {
		free(l);
		return r;
	}
	l->items = items;
	*out = l;
	return 0;
}

/*
 * The error of a response {"ok":false,"error":{...}} into buf as
 * "msg[ (field: reason)]".  Returns -code, or CERTD_E_PROTO when the error
 * is not well formed.
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
	free(cert->private_key);
	free(cert->team);
	free(cert->alias);
	free(cert->certificate_type);
	free(cert->certificate);
	free(cert->fingerprint_sha256);
	free(cert);
}

void
certd_list_free(struct certd_list *list)
{
	if (list == NULL)
		return;
	items_free(list->items, list->n, &list_kind);
	free(list);
}

static void
subscriber_clear(void *item)
{
	struct certd_subscriber	*s = item;

	free(s->name);
	free(s->status);
	free(s->detail);
	free(s->served_fingerprint_sha256);
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

static int
subscriber_from_map(const msgpack_object *o, void *item)
{
	struct certd_subscriber	*s = item;
	int			 r;

	if (proto_get_uint(o, "watch", &s->watch) != 1)
		return CERTD_E_PROTO;
	if ((r = get_str_or_empty(o, "name", &s->name)) != 0 ||
	    (r = get_str_or_empty(o, "status", &s->status)) != 0 ||
	    (r = get_str_or_empty(o, "detail", &s->detail)) != 0 ||
	    (r = get_opt_uint(o, "uid", &s->uid)) != 0 ||
	    (r = get_opt_int(o, "pid", &s->pid)) != 0 ||
	    (r = get_opt_uint(o, "revision", &s->revision)) != 0 ||
	    (r = get_opt_int(o, "at", &s->at)) != 0 ||
	    (r = get_opt_str(o, "served_fingerprint_sha256",
	    &s->served_fingerprint_sha256)) != 0 ||
	    (r = get_opt_int(o, "verified_at_unix",
	    &s->verified_at)) != 0)
		return r;
	return 0;
}

static const struct item_kind subscriber_kind = {
	sizeof(struct certd_subscriber), subscriber_from_map, subscriber_clear
};

void
certd_subscriber_list_free(struct certd_subscriber_list *l)
{
	if (l == NULL)
		return;
	items_free(l->items, l->n, &subscriber_kind);
	free(l);
}

int
client_decode_subscribers(const msgpack_object *m,
    struct certd_subscriber_list **out)
{
	struct certd_subscriber_list	*l;
	void				*items;
	int				 r;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	if ((r = items_from_map(m, &subscriber_kind, &items, &l->n)) != 0) {
		free(l);
		return r;
	}
	l->items = items;
	*out = l;
	return 0;
}

static void
version_clear(void *item)
{
	struct certd_version	*v = item;

	free(v->alias);
	free(v->certificate_type);
	free(v->fingerprint_sha256);
}

static int
version_from_map(const msgpack_object *o, void *item)
{
	struct certd_version	*v = item;
	int			 r;

	if (proto_get_uint(o, "revision", &v->revision) != 1)
		return CERTD_E_PROTO;
	if ((r = get_opt_str(o, "alias", &v->alias)) != 0 ||
	    (r = get_opt_str(o, "certificate_type",
	    &v->certificate_type)) != 0 ||
	    (r = get_opt_str(o, "fingerprint_sha256",
	    &v->fingerprint_sha256)) != 0 ||
	    (r = get_opt_int(o, "not_after", &v->not_after)) != 0 ||
	    (r = get_opt_int(o, "updated_at", &v->updated_at)) != 0)
		return r;
	return 0;
}

static const struct item_kind version_kind = {
	sizeof(struct certd_version), version_from_map, version_clear
};

void
certd_version_list_free(struct certd_version_list *l)
{
	if (l == NULL)
		return;
	items_free(l->items, l->n, &version_kind);
	free(l);
}

int
client_decode_history(const msgpack_object *m,
    struct certd_version_list **out)
{
	struct certd_version_list	*l;
	void				*items;
	int				 r;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return CERTD_E_NOMEM;
	if ((r = items_from_map(m, &version_kind, &items, &l->n)) != 0) {
		free(l);
		return r;
	}
	l->items = items;
	*out = l;
	return 0;
}
