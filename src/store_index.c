/* SPDX-License-Identifier: MIT */
/*
 * The store's memory views (store.c says what they are).  The committed
 * view: per team a sorted array of records, the teams in a chained hash
 * table by name, and an alias index, a chained hash table by (team,
 * alias); lookups, listings and their upkeep as ops are applied.  The
 * head view is no structure of its own: the committed view with the
 * pending ops replayed onto it, newest or oldest first as the question
 * asks.  Loop thread only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "record.h"
#include "store.h"
#include "store_int.h"

/* FNV-1a, continued from h. */
static uint64_t
store_hash(uint64_t h, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define STORE_HASH_INIT	0xcbf29ce484222325ULL

static uint64_t
store_alias_hash(const char *team, const char *alias)
{
	uint64_t	h;

	h = store_hash(STORE_HASH_INIT, team, strlen(team) + 1);
	return store_hash(h, alias, strlen(alias));
}

/* ------------------------------------------------------------------ */
/* Committed view                                                      */

struct store_team *
store_index_team_find(const struct store *s, const char *name)
{
	struct store_team	*t;
	uint64_t		 h;

	if (s->teams_cap == 0)
		return NULL;
	h = store_hash(STORE_HASH_INIT, name, strlen(name));
	for (t = s->teams[h & (s->teams_cap - 1)]; t != NULL; t = t->hnext)
		if (t->hash == h && strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/* Double a chained hash table; on allocation failure keep the old one. */
#define STORE_REHASH(type, tab, cap)					\
	do {								\
		type	**rh_nt, *rh_e, *rh_next;			\
		size_t	  rh_cap = (cap) * 2, rh_i;			\
									\
		if ((rh_nt = calloc(rh_cap, sizeof(*rh_nt))) == NULL)	\
			break;						\
		for (rh_i = 0; rh_i < (cap); rh_i++)			\
			for (rh_e = (tab)[rh_i]; rh_e != NULL;		\
			    rh_e = rh_next) {				\
				rh_next = rh_e->hnext;			\
				rh_e->hnext =				\
				    rh_nt[rh_e->hash & (rh_cap - 1)];	\
				rh_nt[rh_e->hash & (rh_cap - 1)] = rh_e;\
			}						\
		free(tab);						\
		(tab) = rh_nt;						\
		(cap) = rh_cap;						\
	} while (0)

struct store_team *
store_index_team_get(struct store *s, const char *name)
{
	struct store_team	*t;

	if ((t = store_index_team_find(s, name)) != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->name = strdup(name)) == NULL) {
		free(t);
		return NULL;
	}
	t->hash = store_hash(STORE_HASH_INIT, name, strlen(name));
	if (s->teams_n >= s->teams_cap)
		STORE_REHASH(struct store_team, s->teams, s->teams_cap);
	t->hnext = s->teams[t->hash & (s->teams_cap - 1)];
	s->teams[t->hash & (s->teams_cap - 1)] = t;
	s->teams_n++;
	return t;
}

/* Make room for one more record than n + reserve. */
int
store_index_team_grow(struct store_team *t)
{
	struct cert_record	**nr;
	uint64_t		 *ni;
	size_t			  need = t->n + t->reserve + 1, ncap;

	if (need <= t->cap)
		return 0;
	ncap = t->cap < 16 ? 16 : t->cap * 2;
	while (ncap < need)
		ncap *= 2;
	if ((nr = realloc(t->recs, ncap * sizeof(*nr))) == NULL)
		return CERTD_ERR_NOMEM;
	t->recs = nr;
	if ((ni = realloc(t->ids, ncap * sizeof(*ni))) == NULL)
		return CERTD_ERR_NOMEM;	/* recs grew: harmless */
	t->ids = ni;
	t->cap = ncap;
	return 0;
}

/* Put rec at pos (store_index_team_search's), in room made before. */
void
store_index_team_insert(struct store_team *t, size_t pos,
    struct cert_record *rec)
{
	memmove(&t->recs[pos + 1], &t->recs[pos],
	    (t->n - pos) * sizeof(*t->recs));
	memmove(&t->ids[pos + 1], &t->ids[pos], (t->n - pos) * sizeof(*t->ids));
	t->recs[pos] = rec;
	t->ids[pos] = rec->id;
	t->n++;
}

/* Take the record at pos out of t; returns it. */
struct cert_record *
store_index_team_remove(struct store_team *t, size_t pos)
{
	struct cert_record	*rec = t->recs[pos];

	memmove(&t->recs[pos], &t->recs[pos + 1],
	    (t->n - pos - 1) * sizeof(*t->recs));
	memmove(&t->ids[pos], &t->ids[pos + 1],
	    (t->n - pos - 1) * sizeof(*t->ids));
	t->n--;
	return rec;
}

/* Index of id in t->recs, or where it would go; true when present. */
bool
store_index_team_search(const struct store_team *t, uint64_t id, size_t *pos)
{
	size_t	lo = 0, hi = t->n, mid;

	/* creates come in increasing id order: check the end first */
	if (t->n == 0 || t->ids[t->n - 1] < id) {
		*pos = t->n;
		return false;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < t->n && t->ids[lo] == id;
}

static struct store_alias **
store_alias_slot(const struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp;
	uint64_t		  h = store_alias_hash(team, alias);

	for (pp = &s->aliases[h & (s->aliases_cap - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if ((*pp)->hash == h && strcmp((*pp)->rec->alias, alias) == 0 &&
		    strcmp((*pp)->rec->team, team) == 0)
			return pp;
	return NULL;
}

void
store_index_alias_link(struct store *s, struct store_alias *e,
    struct cert_record *rec)
{
	if (store_alias_slot(s, rec->team, rec->alias) != NULL)
		store_bug("alias taken twice in the committed view");
	e->rec = rec;
	e->hash = store_alias_hash(rec->team, rec->alias);
	if (s->aliases_n >= s->aliases_cap)
		STORE_REHASH(struct store_alias, s->aliases, s->aliases_cap);
	e->hnext = s->aliases[e->hash & (s->aliases_cap - 1)];
	s->aliases[e->hash & (s->aliases_cap - 1)] = e;
	s->aliases_n++;
}

struct store_alias *
store_index_alias_unlink(struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp, *e;

	if ((pp = store_alias_slot(s, team, alias)) == NULL)
		store_bug("alias missing from the committed view");
	e = *pp;
	*pp = e->hnext;
	s->aliases_n--;
	return e;
}

const struct cert_record *
store_get(const struct store *s, const char *team, uint64_t id)
{
	struct store_team	*t;
	size_t			 pos;

	if ((t = store_index_team_find(s, team)) == NULL ||
	    !store_index_team_search(t, id, &pos))
		return NULL;
	return t->recs[pos];
}

const struct cert_record *
store_get_alias(const struct store *s, const char *team, const char *alias)
{
	struct store_alias	**pp;

	pp = store_alias_slot(s, team, alias);
	return pp != NULL ? (*pp)->rec : NULL;
}

size_t
store_list(const struct store *s, const char *team, size_t offset,
    size_t limit, const struct cert_record **out, size_t *total)
{
	struct store_team	*t;
	size_t			 i, n;

	*total = 0;
	if ((t = store_index_team_find(s, team)) == NULL)
		return 0;
	*total = t->n;
	if (offset >= t->n)
		return 0;
	n = t->n - offset < limit ? t->n - offset : limit;
	for (i = 0; i < n; i++)
		out[i] = t->recs[offset + i];
	return n;
}

/* Stops (returning the callback's value) when the callback returns non-zero. */
static int
team_foreach(const struct store_team *t, store_foreach_cb cb, void *arg)
{
	size_t	i;
	int	rv;

	for (i = 0; i < t->n; i++)
		if ((rv = cb(t->recs[i], arg)) != 0)
			return rv;
	return 0;
}

int
store_foreach(const struct store *s, const char *team, store_foreach_cb cb,
    void *arg)
{
	const struct store_team	*t;
	size_t			 i;
	int			 rv;

	if (team != NULL)
		return (t = store_index_team_find(s, team)) != NULL ?
		    team_foreach(t, cb, arg) : 0;
	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			if ((rv = team_foreach(t, cb, arg)) != 0)
				return rv;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Head view                                                           */

const struct cert_record *
store_head_get(const struct store *s, const char *team, uint64_t id)
{
	const struct store_op	*op;

	TAILQ_FOREACH_REVERSE(op, &s->pending, store_ops, pend) {
		if (op->id != id)
			continue;
		if (strcmp(op->team, team) != 0)
			return NULL;	/* ids are global: not this team's */
		return op->kind == STORE_PUT ? op->rec : NULL;
	}
	return store_get(s, team, id);
}

uint64_t
store_head_alias(const struct store *s, const char *team, const char *alias)
{
	const struct cert_record	*rec;
	const struct store_op		*op;
	uint64_t			 owner;

	/* replay the pending ops onto the committed owner, oldest first */
	rec = store_get_alias(s, team, alias);
	owner = rec != NULL ? rec->id : 0;
	TAILQ_FOREACH(op, &s->pending, pend) {
		if (strcmp(op->team, team) != 0)
			continue;
		if (op->kind == STORE_PUT && strcmp(op->rec->alias, alias) == 0)
			owner = op->id;
		else if (op->id == owner)
			owner = 0;	/* renamed or deleted */
	}
	return owner;
}

/* Is id held by any record of the head view, in any team? */
bool
store_index_id_in_use(const struct store *s, uint64_t id)
{
	const struct store_op	*op;
	size_t			 i, pos;
	struct store_team	*t;

	TAILQ_FOREACH(op, &s->pending, pend)
		if (op->id == id)
			return true;
	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			if (store_index_team_search(t, id, &pos))
				return true;
	return false;
}
