/* SPDX-License-Identifier: MIT */
/*
 * The store's memory views (store.c says what they are).  The committed
 * view: per team a sorted array of index entries (struct store_entry: id,
 * revision, alias, validity, fingerprint), the teams in a chained hash
 * table by name, and an alias table, a chained hash table of the same
 * entries by (team, alias); lookups, listings and their upkeep as ops are
 * applied.  Records themselves are read from disk (store_history_read)
 * and lent until the loop runs again.  The head view is no structure of
 * its own: the committed view with the pending ops replayed onto it,
 * newest or oldest first as the question asks.  Loop thread only.
 *
 * The index entry on disk ("r" id) is
 *   revision(8) not_before(8) not_after(8) fingerprint(64)
 *   team length(1) team alias
 * integers big-endian; the fingerprint lowercase hex, NUL-padded (a record
 * from before fingerprints has none); the alias runs to the end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "certd/constants.h"
#include "log.h"
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
/* The index entry on disk: the fixed part, before team and alias. */
#define STORE_IVAL_FIXED	(3 * 8 + CERT_FINGERPRINT_LEN + 1)

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
	struct store_entry	**nr;
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

/* Put e at pos (store_index_team_search's), in room made before. */
void
store_index_team_insert(struct store_team *t, size_t pos,
    struct store_entry *e)
{
	memmove(&t->recs[pos + 1], &t->recs[pos],
	    (t->n - pos) * sizeof(*t->recs));
	memmove(&t->ids[pos + 1], &t->ids[pos], (t->n - pos) * sizeof(*t->ids));
	t->recs[pos] = e;
	t->ids[pos] = e->m.id;
	t->n++;
}

/* Take the entry at pos out of t; returns it. */
struct store_entry *
store_index_team_remove(struct store_team *t, size_t pos)
{
	struct store_entry	*rec = t->recs[pos];

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

static struct store_entry **
store_alias_slot(const struct store *s, const char *team, const char *alias)
{
	struct store_entry	**pp;
	uint64_t		  h = store_alias_hash(team, alias);

	for (pp = &s->aliases[h & (s->aliases_cap - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if ((*pp)->hash == h && strcmp((*pp)->m.alias, alias) == 0 &&
		    strcmp((*pp)->m.team, team) == 0)
			return pp;
	return NULL;
}

void
store_index_alias_link(struct store *s, struct store_entry *e)
{
	if (store_alias_slot(s, e->m.team, e->m.alias) != NULL)
		store_bug("alias taken twice in the committed view");
	e->hash = store_alias_hash(e->m.team, e->m.alias);
	if (s->aliases_n >= s->aliases_cap)
		STORE_REHASH(struct store_entry, s->aliases, s->aliases_cap);
	e->hnext = s->aliases[e->hash & (s->aliases_cap - 1)];
	s->aliases[e->hash & (s->aliases_cap - 1)] = e;
	s->aliases_n++;
}

struct store_entry *
store_index_alias_unlink(struct store *s, const char *team, const char *alias)
{
	struct store_entry	**pp, *e;

	if ((pp = store_alias_slot(s, team, alias)) == NULL)
		store_bug("alias missing from the committed view");
	e = *pp;
	*pp = e->hnext;
	s->aliases_n--;
	return e;
}

/* ------------------------------------------------------------------ */
/* Index entries, in memory and on disk                                */

static struct store_entry *
store_entry_alloc(const char *alias, size_t alen)
{
	struct store_entry	*e;

	if ((e = calloc(1, sizeof(*e) + alen + 1)) == NULL)
		return NULL;
	memcpy(e->alias, alias, alen);
	e->alias[alen] = '\0';
	e->m.alias = e->alias;
	return e;
}

struct store_entry *
store_index_entry_new(const struct cert_record *rec,
    const struct store_team *t)
{
	struct store_entry	*e;

	if ((e = store_entry_alloc(rec->alias, strlen(rec->alias))) == NULL)
		return NULL;
	e->m.id = rec->id;
	e->m.revision = rec->revision;
	e->m.team = t->name;
	e->m.not_before = rec->meta.not_before;
	e->m.not_after = rec->meta.not_after;
	memcpy(e->m.fingerprint, rec->meta.fingerprint,
	    sizeof(e->m.fingerprint));
	return e;
}

int
store_index_value(const struct store_meta *m, char **val, size_t *len)
{
	size_t	tl = strlen(m->team), al = strlen(m->alias), fl;
	char	*p;

	if (tl > UINT8_MAX)
		return CERTD_ERR_INTERNAL;
	*len = STORE_IVAL_FIXED + tl + al;
	if ((*val = p = malloc(*len)) == NULL)
		return CERTD_ERR_NOMEM;
	util_be64_put(p, m->revision);
	util_be64_put(p + 8, (uint64_t)m->not_before);
	util_be64_put(p + 16, (uint64_t)m->not_after);
	fl = strnlen(m->fingerprint, CERT_FINGERPRINT_LEN);
	memcpy(p + 24, m->fingerprint, fl);
	memset(p + 24 + fl, 0, CERT_FINGERPRINT_LEN - fl);
	p[STORE_IVAL_FIXED - 1] = (char)tl;
	memcpy(p + STORE_IVAL_FIXED, m->team, tl);
	memcpy(p + STORE_IVAL_FIXED + tl, m->alias, al);
	return 0;
}

/* n bytes of text without NUL; or lowercase hex then NULs, when hex. */
static bool
store_ival_text(const char *p, size_t n, bool hex)
{
	size_t	i;

	for (i = 0; i < n && p[i] != '\0'; i++)
		if (hex && !((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	if (!hex)
		return i == n;
	for (; i < n; i++)
		if (p[i] != '\0')
			return false;
	return true;
}

int
store_index_value_load(struct store *s, uint64_t id, const char *v,
    size_t vlen, struct store_entry **out)
{
	struct store_entry	*e;
	struct store_team	*t;
	char			 team[CERTD_TEAM_MAX + 1];
	size_t			 tl, al;

	*out = NULL;
	if (vlen < STORE_IVAL_FIXED)
		return CERTD_ERR_STORAGE;
	tl = (unsigned char)v[STORE_IVAL_FIXED - 1];
	if (tl == 0 || tl > CERTD_TEAM_MAX || vlen <= STORE_IVAL_FIXED + tl)
		return CERTD_ERR_STORAGE;
	al = vlen - STORE_IVAL_FIXED - tl;
	if (al > CERTD_ALIAS_BYTES_MAX || util_be64_get(v) == 0 ||
	    !store_ival_text(v + 24, CERT_FINGERPRINT_LEN, true) ||
	    !store_ival_text(v + STORE_IVAL_FIXED, tl + al, false))
		return CERTD_ERR_STORAGE;
	memcpy(team, v + STORE_IVAL_FIXED, tl);
	team[tl] = '\0';
	if ((t = store_index_team_get(s, team)) == NULL ||
	    (e = store_entry_alloc(v + STORE_IVAL_FIXED + tl, al)) == NULL)
		return CERTD_ERR_NOMEM;
	e->m.id = id;
	e->m.revision = util_be64_get(v);
	e->m.team = t->name;
	e->m.not_before = (int64_t)util_be64_get(v + 8);
	e->m.not_after = (int64_t)util_be64_get(v + 16);
	memcpy(e->m.fingerprint, v + 24, CERT_FINGERPRINT_LEN);
	*out = e;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading records: lent until the loop runs again                     */

void
store_index_lent_free(struct store *s)
{
	size_t	i;

	for (i = 0; i < s->lent_n; i++)
		record_free(s->lent[i]);
	s->lent_n = 0;
}

/*
 * The version of id that replaced the committed one on disk, when the
 * committed one is gone from it: the writer trims history as it writes,
 * and the loop applies what it wrote a little later, so a batch on disk
 * may have deleted the version the committed view still names (a put
 * beyond history_keep, or a delete).  Such a batch holds a newer op of id,
 * and so do the ops before it: the oldest pending op of id is on disk.
 * A put: a copy of its record into *out (without its key unless
 * with_key); a delete: *out NULL, the record is gone.  NOT_FOUND when no
 * op of id is pending: then the version is missing for good.
 */
static int
store_read_replaced(const struct store *s, uint64_t id, bool with_key,
    struct cert_record **out)
{
	const struct store_op	*op;

	*out = NULL;
	TAILQ_FOREACH(op, &s->pending, pend)
		if (!op->rekey && op->id == id)
			break;
	if (op == NULL)
		return CERTD_ERR_NOT_FOUND;
	if (op->kind == STORE_DELETE)
		return 0;
	if ((*out = record_dup(op->rec)) == NULL)
		return CERTD_ERR_NOMEM;
	if (!with_key) {
		util_wipe((*out)->private_key, (*out)->private_key_len);
		free((*out)->private_key);
		(*out)->private_key = NULL;
		(*out)->private_key_len = 0;
	}
	return 0;
}

/* The current version of m read from disk, lent; NULL on failure. */
static const struct cert_record *
store_read_lent(struct store *s, const struct store_meta *m, bool with_key)
{
	struct cert_record	**nl, *rec = NULL;
	size_t			  cap;
	int			  err;

	s->read_failed = false;
	if (m == NULL)
		return NULL;
	err = store_history_read(s, m->id, m->revision, with_key, &rec);
	if (err == CERTD_ERR_NOT_FOUND &&
	    (err = store_read_replaced(s, m->id, with_key, &rec)) == 0 &&
	    rec == NULL)
		return NULL;	/* deleted on disk: absent */
	if (err == 0 && strcmp(rec->team, m->team) != 0)
		err = CERTD_ERR_STORAGE;
	if (err == 0 && s->lent_n == s->lent_cap) {
		cap = s->lent_cap != 0 ? s->lent_cap * 2 : 16;
		if ((nl = realloc(s->lent, cap * sizeof(*nl))) == NULL)
			err = CERTD_ERR_NOMEM;
		else {
			s->lent = nl;
			s->lent_cap = cap;
		}
	}
	if (err != 0) {
		record_free(rec);
		s->read_failed = true;
		log_error("cannot read certificate %llu (revision %llu) of "
		    "team %s: %s", (unsigned long long)m->id,
		    (unsigned long long)m->revision, m->team,
		    err == CERTD_ERR_NOMEM ? "out of memory" : err ==
		    CERTD_ERR_NOT_FOUND ? "its version is missing" :
		    "the database cannot be read, or the version does not "
		    "decode or open");
		return NULL;
	}
	if (s->lent_n == 0 && s->lent_ev != NULL)
		event_active(s->lent_ev, EV_TIMEOUT, 0);
	s->lent[s->lent_n++] = rec;
	return rec;
}

bool
store_read_failed(const struct store *s)
{
	return s->read_failed;
}

/* ------------------------------------------------------------------ */
/* Committed view                                                      */

const struct store_meta *
store_meta_get(const struct store *s, const char *team, uint64_t id)
{
	struct store_team	*t;
	size_t			 pos;

	if ((t = store_index_team_find(s, team)) == NULL ||
	    !store_index_team_search(t, id, &pos))
		return NULL;
	return &t->recs[pos]->m;
}

const struct store_meta *
store_meta_alias(const struct store *s, const char *team, const char *alias)
{
	struct store_entry	**pp;

	pp = store_alias_slot(s, team, alias);
	return pp != NULL ? &(*pp)->m : NULL;
}

const struct cert_record *
store_get(struct store *s, const char *team, uint64_t id)
{
	return store_read_lent(s, store_meta_get(s, team, id), true);
}

const struct cert_record *
store_get_alias(struct store *s, const char *team, const char *alias)
{
	return store_read_lent(s, store_meta_alias(s, team, alias), true);
}

size_t
store_list(struct store *s, const char *team, size_t offset,
    size_t limit, const struct cert_record **out, size_t *total)
{
	const struct cert_record *rec;
	struct store_team	*t;
	size_t			 i, n, k = 0;

	*total = 0;
	s->read_failed = false;
	if ((t = store_index_team_find(s, team)) == NULL)
		return 0;
	*total = t->n;
	if (offset >= t->n)
		return 0;
	n = t->n - offset < limit ? t->n - offset : limit;
	for (i = 0; i < n; i++) {
		rec = store_read_lent(s, &t->recs[offset + i]->m, false);
		if (rec != NULL)
			out[k++] = rec;
		else if (s->read_failed)
			break;
		/* else deleted by a write on disk, not yet applied */
	}
	return k;
}

/* Stops (returning the callback's value) when the callback returns non-zero. */
static int
team_foreach(const struct store_team *t, store_foreach_cb cb, void *arg)
{
	size_t	i;
	int	rv;

	for (i = 0; i < t->n; i++)
		if ((rv = cb(&t->recs[i]->m, arg)) != 0)
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

/* The newest pending op of id, or NULL; *other: it is another team's. */
static const struct store_op *
store_head_op(const struct store *s, const char *team, uint64_t id,
    bool *other)
{
	const struct store_op	*op;

	*other = false;
	TAILQ_FOREACH_REVERSE(op, &s->pending, store_ops, pend)
		if (op->id == id) {
			*other = strcmp(op->team, team) != 0;
			return op;
		}
	return NULL;
}

const struct cert_record *
store_head_get(struct store *s, const char *team, uint64_t id)
{
	const struct store_op	*op;
	bool			 other;

	s->read_failed = false;
	if ((op = store_head_op(s, team, id, &other)) == NULL)
		return store_get(s, team, id);
	return !other && op->kind == STORE_PUT ? op->rec : NULL;
}

const struct store_meta *
store_head_meta(const struct store *s, const char *team, uint64_t id)
{
	const struct store_op	*op;
	bool			 other;

	if ((op = store_head_op(s, team, id, &other)) == NULL)
		return store_meta_get(s, team, id);
	return !other && op->kind == STORE_PUT ? &op->ent->m : NULL;
}

uint64_t
store_head_alias(const struct store *s, const char *team, const char *alias)
{
	const struct store_meta	*m;
	const struct store_op	*op;
	uint64_t		 owner;

	/* replay the pending ops onto the committed owner, oldest first */
	m = store_meta_alias(s, team, alias);
	owner = m != NULL ? m->id : 0;
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

const char *
store_head_team(const struct store *s, uint64_t id)
{
	const struct store_op	*op;
	struct store_team	*t;
	size_t			 i, pos;

	TAILQ_FOREACH_REVERSE(op, &s->pending, store_ops, pend)
		if (!op->rekey && op->id == id)
			return op->kind == STORE_PUT ? op->ent->m.team : NULL;
	for (i = 0; i < s->teams_cap; i++)
		for (t = s->teams[i]; t != NULL; t = t->hnext)
			if (store_index_team_search(t, id, &pos))
				return t->name;
	return NULL;
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
