/* SPDX-License-Identifier: MIT */
/*
 * The durable store.  RocksDB under <dir>/db is the source of truth; the
 * current records live in memory (per team, sorted by id, plus an alias
 * index) and are rebuilt from it at start-up.  Mutations are submitted on
 * the event loop, encoded there, and queued for one writer thread that
 * takes everything queued, writes it as one synced write batch (group
 * commit), and hands the batch back through an eventfd.  The loop then
 * applies each op to the committed view in submission (= revision) order
 * and runs the change listener and the op's completion.  Between submission
 * and completion an op is "pending": the head view (committed view plus
 * pending ops) is what new decisions are taken against.
 *
 * This file holds that submission and completion, the settings and
 * counters, and the small helpers every part uses.  The other parts, each
 * in its own file (store_int.h holds what they share: the structs, the
 * on-disk keys, the functions one file calls in another):
 *   store_index.c    the committed and the head view: team and alias
 *                    hash tables, lookups
 *   store_writer.c   the writer thread: group commit, trimming the change
 *                    log and the history, the free-space guard, the reopen
 *                    after a failed write
 *   store_keys.c     keys at rest: master key files, sealing, rotation
 *   store_history.c  reading the change log and the history (loop)
 *   store_load.c     open and load, schema migration, damaged write-ahead
 *                    logs, store_free
 *   store_backup.c   store_backup
 *   store_test.c     the test hooks, behind store_test.h
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>
#include <rocksdb/c.h>

#include "certd/constants.h"
#include "record.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

_Noreturn void
store_bug(const char *what)
{
	fprintf(stderr, "certd: store: broken invariant: %s\n", what);
	abort();
}

void
store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list	ap;
	char	*p;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	util_vfmt(errbuf, errlen, fmt, ap);
	va_end(ap);
	/* one line, whatever RocksDB says */
	for (p = errbuf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* "dir/name" or "prefix" "suffix" in a new string, or NULL. */
char *
store_path(const char *a, const char *sep, const char *b)
{
	size_t	len = strlen(a) + strlen(sep) + strlen(b) + 1;
	char	*p;

	if ((p = malloc(len)) != NULL)
		snprintf(p, len, "%s%s%s", a, sep, b);
	return p;
}

int
store_fsync_dir(const char *dir)
{
	int	fd, rv, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rv = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

int
store_iter_error(rocksdb_iterator_t *it, char *errbuf, size_t errlen)
{
	char	*rerr = NULL;

	rocksdb_iter_get_error(it, &rerr);
	if (rerr == NULL)
		return 0;
	store_errf(errbuf, errlen, "cannot read database: %s", rerr);
	rocksdb_free(rerr);
	return CERTD_ERR_STORAGE;
}

const char *
store_iter_family(rocksdb_iterator_t *it, char c, size_t *klen)
{
	const char	*k;

	if (!rocksdb_iter_valid(it))
		return NULL;
	k = rocksdb_iter_key(it, klen);
	return *klen > 0 && k[0] == c ? k : NULL;
}

/* ------------------------------------------------------------------ */
/* Settings and counters                                               */

uint64_t
store_revision(const struct store *s)
{
	return s->rev;
}

void
store_get_pos(const struct store *s, struct store_pos *out)
{
	out->revision = s->rev;
	out->epoch = s->epoch;
	out->log_first = s->log_first;
	out->count = s->count;
}

void
store_set_log_retain(struct store *s, uint64_t n)
{
	s->log_retain = n > 0 ? n : 1;
}

void
store_log_forget(struct store *s, uint64_t upto)
{
	/* as a submission's cut: the next batch trims, log_first moves now */
	if (upto > s->head_rev)
		upto = s->head_rev;
	if (upto > s->log_cut)
		s->log_cut = upto;
	if (s->log_cut >= s->log_first)
		s->log_first = s->log_cut + 1;
}

void
store_set_history_keep(struct store *s, uint64_t n)
{
	s->hist_keep = n == 0 ? 1 : n > CERTD_HISTORY_KEEP_MAX ?
	    CERTD_HISTORY_KEEP_MAX : n;
}

uint64_t
store_history_keep(const struct store *s)
{
	return s->hist_keep;
}

uint64_t
store_next_id(struct store *s)
{
	return s->next_id++;
}

void
store_set_change_cb(struct store *s, store_change_cb cb, void *arg)
{
	s->change_cb = cb;
	s->change_arg = arg;
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */

/* A write batch may hold boxes: wipe its buffer before freeing it. */
void
store_wb_destroy(rocksdb_writebatch_t *wb)
{
	const char	*data;
	size_t		 size;

	if (wb == NULL)
		return;
	data = rocksdb_writebatch_data(wb, &size);
	util_wipe((void *)(uintptr_t)data, size);
	rocksdb_writebatch_destroy(wb);
}

void
store_op_free(struct store_op *op)
{
	if (op == NULL)
		return;
	if (op->reserved)
		op->tm->reserve--;
	record_free(op->rec);
	free(op->ent);
	util_wipe(op->val, op->vallen);
	free(op->val);
	free(op->ival);
	free(op->akey);
	free(op->oldakey);
	free(op->lval);
	free(op->team_own);
	store_wb_destroy(op->wb);
	free(op->why);
	util_wipe(op->new_key, sizeof(op->new_key));
	util_wipe(op->old_key, sizeof(op->old_key));
	free(op);
}

static int
store_alias_key(const char *team, const char *alias, char **key,
    size_t *len)
{
	size_t	tl = strlen(team), al = strlen(alias);

	*len = 1 + tl + 1 + al;
	if ((*key = malloc(*len)) == NULL)
		return CERTD_ERR_NOMEM;
	(*key)[0] = 'a';
	memcpy(*key + 1, team, tl + 1);
	memcpy(*key + 2 + tl, alias, al);
	return 0;
}

static int
store_pack_str(msgpack_packer *pk, const char *str)
{
	size_t	len = strlen(str);

	return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, str, len);
}

/* Change-log entry {"op", "rev", "id", "team", "alias"}. */
static int
store_log_encode(struct store_op *op, const char *alias)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	int		r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	r = msgpack_pack_map(&pk, 5);
	r |= store_pack_str(&pk, "op");
	r |= store_pack_str(&pk, op->kind == STORE_PUT ? "put" : "delete");
	r |= store_pack_str(&pk, "rev");
	r |= msgpack_pack_uint64(&pk, op->revision);
	r |= store_pack_str(&pk, "id");
	r |= msgpack_pack_uint64(&pk, op->id);
	r |= store_pack_str(&pk, "team");
	r |= store_pack_str(&pk, op->team);
	r |= store_pack_str(&pk, "alias");
	r |= store_pack_str(&pk, alias);
	if (r != 0) {
		msgpack_sbuffer_destroy(&sb);
		return CERTD_ERR_NOMEM;
	}
	op->lval = sb.data;
	op->lvallen = sb.size;
	return 0;
}

/* An op of kind on id at revision (0: the next one). */
static struct store_op *
store_op_new(struct store *s, enum store_op_kind kind, uint64_t id,
    uint64_t revision, store_done_cb cb, void *arg)
{
	struct store_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->kind = kind;
	op->id = id;
	op->revision = revision != 0 ? revision : s->head_rev + 1;
	op->rev_given = revision != 0;
	op->cb = cb;
	op->arg = arg;
	op->rkey[0] = 'r';
	util_be64_put(op->rkey + 1, id);
	op->lkey[0] = 'l';
	util_be64_put(op->lkey + 1, op->revision);
	store_hkey(op->hkey, id, op->revision);
	return op;
}

/* The op joins the head view and the writer's queue. */
void
store_submit(struct store *s, struct store_op *op)
{
	s->head_rev = op->revision;
	op->next_id = s->next_id;
	op->hist_keep = s->hist_keep;

	/* once queued, the entries up to the cut may go at any moment */
	if (op->revision > s->log_retain &&
	    op->revision - s->log_retain > s->log_cut)
		s->log_cut = op->revision - s->log_retain;
	if (s->log_cut >= s->log_first)
		s->log_first = s->log_cut + 1;
	op->log_cut = s->log_cut;

	TAILQ_INSERT_TAIL(&s->pending, op, pend);

	op->qnext = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->queue_tail != NULL)
		s->queue_tail->qnext = op;
	else
		s->queue_head = op;
	s->queue_tail = op;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

/* A put at revision (0: the next one); see store_put and store_put_at. */
static int
store_put_rev(struct store *s, struct cert_record *rec, uint64_t revision,
    store_done_cb cb, void *arg)
{
	const struct store_meta		*head;
	struct store_op			*op = NULL;
	struct record_sealed		 sk;
	uint64_t			 owner;
	int				 err;

	if (rec == NULL)
		return CERTD_ERR_INTERNAL;
	if (rec->team == NULL || rec->team[0] == '\0' || rec->alias == NULL ||
	    rec->alias[0] == '\0' || rec->id == 0 ||
	    (revision != 0 && revision <= s->head_rev)) {
		err = CERTD_ERR_INTERNAL;
		goto fail;
	}
	head = store_head_meta(s, rec->team, rec->id);
	if (revision != 0 && head == NULL && rec->id >= s->next_id)
		s->next_id = rec->id + 1;	/* another store's id */
	if (head == NULL && (rec->id >= s->next_id ||
	    store_index_id_in_use(s, rec->id))) {
		/* a create must use a reserved id that nothing ever held */
		err = CERTD_ERR_INTERNAL;
		goto fail;
	}
	owner = store_head_alias(s, rec->team, rec->alias);
	if (owner != 0 && owner != rec->id) {
		err = CERTD_ERR_ALIAS_EXISTS;
		goto fail;
	}

	if ((op = store_op_new(s, STORE_PUT, rec->id, revision, cb, arg)) ==
	    NULL) {
		err = CERTD_ERR_NOMEM;
		goto fail;
	}
	op->team = rec->team;
	rec->revision = op->revision;
	err = CERTD_ERR_NOMEM;
	if ((op->tm = store_index_team_get(s, rec->team)) == NULL)
		goto fail;
	if (store_meta_get(s, rec->team, rec->id) == NULL) {
		if (store_index_team_grow(op->tm) != 0)
			goto fail;
		op->tm->reserve++;
		op->reserved = true;
	}
	if ((op->ent = store_index_entry_new(rec, op->tm)) == NULL)
		goto fail;
	if ((err = store_index_value(&op->ent->m, &op->ival, &op->ivallen))
	    != 0)
		goto fail;
	err = CERTD_ERR_NOMEM;
	/* sealed here, bound to the revision just assigned */
	if ((err = record_seal(rec, s->mkey, s->kid, &sk)) != 0)
		goto fail;
	err = record_encode(rec, &sk, &op->val, &op->vallen);
	record_sealed_clear(&sk);
	if (err != 0)
		goto fail;
	if ((err = store_alias_key(rec->team, rec->alias, &op->akey,
	    &op->akeylen)) != 0)
		goto fail;
	if (head != NULL && strcmp(head->alias, rec->alias) != 0 &&
	    (err = store_alias_key(head->team, head->alias, &op->oldakey,
	    &op->oldakeylen)) != 0)
		goto fail;
	if ((err = store_log_encode(op, rec->alias)) != 0)
		goto fail;
	op->rec = rec;
	store_submit(s, op);
	return 0;

fail:
	store_op_free(op);
	record_free(rec);
	return err;
}

int
store_put(struct store *s, struct cert_record *rec, store_done_cb cb,
    void *arg)
{
	return store_put_rev(s, rec, 0, cb, arg);
}

int
store_put_at(struct store *s, struct cert_record *rec, uint64_t revision,
    store_done_cb cb, void *arg)
{
	if (revision == 0) {
		record_free(rec);
		return CERTD_ERR_INTERNAL;
	}
	return store_put_rev(s, rec, revision, cb, arg);
}

/* A delete at revision (0: the next one); see store_delete_at. */
static int
store_delete_rev(struct store *s, const char *team, uint64_t id,
    uint64_t revision, store_done_cb cb, void *arg)
{
	const struct store_meta		*head;
	struct store_op			*op;
	int				 err = CERTD_ERR_NOMEM;

	if (revision != 0 && revision < s->head_rev)
		return CERTD_ERR_INTERNAL;
	if ((head = store_head_meta(s, team, id)) == NULL)
		return CERTD_ERR_NOT_FOUND;
	if ((op = store_op_new(s, STORE_DELETE, id, revision, cb, arg)) ==
	    NULL)
		return CERTD_ERR_NOMEM;
	if ((op->team_own = strdup(team)) == NULL)
		goto fail;
	op->team = op->team_own;
	if ((err = store_alias_key(team, head->alias, &op->akey,
	    &op->akeylen)) != 0)
		goto fail;
	if ((err = store_log_encode(op, head->alias)) != 0)
		goto fail;
	store_submit(s, op);
	return 0;

fail:
	store_op_free(op);
	return err;
}

int
store_delete(struct store *s, const char *team, uint64_t id,
    store_done_cb cb, void *arg)
{
	return store_delete_rev(s, team, id, 0, cb, arg);
}

int
store_delete_at(struct store *s, const char *team, uint64_t id,
    uint64_t revision, store_done_cb cb, void *arg)
{
	return revision == 0 ? CERTD_ERR_INTERNAL :
	    store_delete_rev(s, team, id, revision, cb, arg);
}

uint64_t
store_head_revision(const struct store *s)
{
	return s->head_rev;
}

/* ------------------------------------------------------------------ */
/* Completion on the loop                                              */

void
store_meta_record(const struct store_meta *m, struct cert_record *r)
{
	memset(r, 0, sizeof(*r));
	r->id = m->id;
	r->revision = m->revision;
	r->team = (char *)(uintptr_t)m->team;
	r->alias = (char *)(uintptr_t)m->alias;
	r->meta.not_before = m->not_before;
	r->meta.not_after = m->not_after;
	memcpy(r->meta.fingerprint, m->fingerprint, sizeof(r->meta.fingerprint));
}

/* Move a committed op into the committed view and run its callbacks. */
static void
store_apply(struct store *s, struct store_op *op)
{
	struct store_change	 ch;
	struct store_team	*t;
	struct store_entry	*e, *old = NULL;
	struct cert_record	*rec = NULL, gone;
	size_t			 pos;

	if (TAILQ_FIRST(&s->pending) != op)
		store_bug("completion out of order");
	TAILQ_REMOVE(&s->pending, op, pend);

	if (op->rekey) {
		store_keys_rekey_done(s, op, 0);
		return;
	}
	e = op->ent;
	op->ent = NULL;
	if (op->kind == STORE_PUT) {
		t = op->tm;
		rec = op->rec;
		op->rec = NULL;
		if (store_index_team_search(t, rec->id, &pos)) {
			old = t->recs[pos];
			t->recs[pos] = e;
			store_index_alias_unlink(s, old->m.team, old->m.alias);
		} else {
			if (t->n >= t->cap)
				store_bug("no room reserved for a create");
			store_index_team_insert(t, pos, e);
			s->count++;
		}
		store_index_alias_link(s, e);
	} else {
		if ((t = store_index_team_find(s, op->team)) == NULL ||
		    !store_index_team_search(t, op->id, &pos))
			store_bug("deleting a record that is not committed");
		old = store_index_team_remove(t, pos);
		s->count--;
		store_index_alias_unlink(s, old->m.team, old->m.alias);
	}
	s->rev = op->revision;
	if (old != NULL)
		store_meta_record(&old->m, &gone);

	ch.kind = op->kind;
	ch.revision = op->revision;
	ch.old = old != NULL ? &gone : NULL;
	ch.rec = rec;
	if (s->change_cb != NULL)
		s->change_cb(&ch, s->change_arg);
	if (op->cb != NULL)
		op->cb(0, op->kind == STORE_PUT ? rec : ch.old, op->arg);
	record_free(rec);
	free(old);
	store_op_free(op);
}

/*
 * `first` and the ops chained after it failed to write.  Fail them and
 * everything still queued, take them out of the head view, and only then
 * let the writer go on and run the completions (which may submit anew).
 */
static void
store_fail(struct store *s, struct store_op *first)
{
	struct store_op	*op, *next, *q;
	bool		 mirror = true;

	pthread_mutex_lock(&s->lock);
	q = s->queue_head;
	s->queue_head = s->queue_tail = NULL;
	pthread_mutex_unlock(&s->lock);

	for (op = first; op->qnext != NULL; op = op->qnext)
		;
	op->qnext = q;
	for (op = first; op != NULL; op = op->qnext) {
		if (TAILQ_FIRST(&s->pending) != op)
			store_bug("failure out of order");
		TAILQ_REMOVE(&s->pending, op, pend);
		mirror = mirror && op->rev_given;
	}
	/*
	 * Revisions of failed ops are not given again: a batch that failed
	 * may still have reached the log.  A mirror's are another store's
	 * (etcd's), each naming one change with one content, so the mirror
	 * writes them again: the head view falls back to what committed.
	 */
	if (mirror && TAILQ_EMPTY(&s->pending))
		s->head_rev = s->rev;
	/* the first failed rotation knows the key before all of them */
	for (op = first; op != NULL; op = op->qnext)
		if (op->rekey) {
			memcpy(s->mkey, op->old_key, sizeof(s->mkey));
			memcpy(s->kid, op->old_kid, sizeof(s->kid));
			break;
		}

	pthread_mutex_lock(&s->lock);
	s->paused = false;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);

	for (op = first; op != NULL; op = next) {
		next = op->qnext;
		if (op->rekey)
			store_keys_rekey_done(s, op, CERTD_ERR_STORAGE);
		else {
			if (op->cb != NULL)
				op->cb(CERTD_ERR_STORAGE, NULL, op->arg);
			store_op_free(op);
		}
	}
}

static void
store_complete(struct store *s)
{
	struct store_op	*op, *next;

	pthread_mutex_lock(&s->lock);
	op = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);

	for (; op != NULL; op = next) {
		next = op->qnext;
		if (op->err != 0) {
			store_fail(s, op);	/* the rest failed too */
			return;
		}
		store_apply(s, op);
	}
}

void
store_on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	if (util_woken(fd) != 0)
		store_bug("eventfd read failed");
	store_complete(arg);
}

/* Wait for the writer and complete every pending op, here and now. */
void
store_drain(struct store *s)
{
	while (!TAILQ_EMPTY(&s->pending)) {
		pthread_mutex_lock(&s->lock);
		while (s->done_head == NULL)
			pthread_cond_wait(&s->done_cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
		store_complete(s);
	}
}
