/* SPDX-License-Identifier: MIT */
/*
 * The workers of workq.h: one queue of jobs in submission order, some
 * threads that take the next job not yet taken and run it, and an eventfd
 * that wakes the loop when the oldest job has run.  The loop then completes
 * every job from the oldest on that has run, in order: a job that finishes
 * early waits for the ones before it, so completions keep submission order
 * whatever the number of threads.
 */
#include <sys/eventfd.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "util.h"
#include "workq.h"

#define WORKQ_THREADS_MAX	8

struct workq {
	struct event		*ev;		/* efd readable */
	int			 efd;		/* worker -> loop */
	pthread_t		 thread[WORKQ_THREADS_MAX];
	unsigned		 n_threads;	/* started */
	int			 stopped;	/* joined: jobs run inline */
	int			 completing;	/* in workq_complete */

	pthread_mutex_t		 lock;		/* guards what follows */
	pthread_cond_t		 wake;		/* workers: a job, or stop */
	struct workq_job	*head, **tail;	/* not yet completed */
	struct workq_job	*take;		/* the next to run, or NULL */
	int			 stopping;
};

static _Noreturn void
workq_bug(const char *what)
{
	fprintf(stderr, "certd: workq: broken invariant: %s\n", what);
	abort();
}

static void *
workq_worker(void *arg)
{
	struct workq		*q = arg;
	struct workq_job	*job;
	int			 oldest;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->take == NULL && !q->stopping)
			pthread_cond_wait(&q->wake, &q->lock);
		if ((job = q->take) == NULL)
			break;		/* stopping, and nothing left to run */
		q->take = job->next;
		pthread_mutex_unlock(&q->lock);

		job->run(job);

		pthread_mutex_lock(&q->lock);
		job->ran = 1;
		/*
		 * Handed back at once when it is the oldest: the loop takes
		 * every job from there that has run, so one wake-up is
		 * enough.  A later one waits for the worker of the oldest.
		 */
		oldest = job == q->head;
		pthread_mutex_unlock(&q->lock);
		if (oldest && util_wake(q->efd) != 0)
			workq_bug("eventfd write failed");
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Unlink and return the jobs from the oldest on that have run, in order. */
static struct workq_job *
take_ran(struct workq *q)
{
	struct workq_job	*first = q->head, *last = NULL, *job;

	for (job = q->head; job != NULL && job->ran; job = job->next)
		last = job;
	if (last == NULL)
		return NULL;
	if ((q->head = last->next) == NULL)
		q->tail = &q->head;
	last->next = NULL;
	return first;
}

/*
 * Call done for every job run so far from the oldest on, in order.  After
 * workq_stop a done may submit a job, which runs at once and joins the
 * queue behind the ones still waiting here: take again until none is left.
 */
static void
workq_complete(struct workq *q)
{
	struct workq_job	*job, *next;

	if (q->completing)
		return;		/* a done submitted: the loop below has it */
	q->completing = 1;
	do {
		pthread_mutex_lock(&q->lock);
		job = take_ran(q);
		pthread_mutex_unlock(&q->lock);
		for (; job != NULL; job = next) {
			next = job->next;
			job->done(job);
		}
	} while (q->stopped && q->head != NULL);
	q->completing = 0;
}

static void
workq_on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	if (util_woken(fd) != 0)
		workq_bug("eventfd read failed");
	workq_complete(arg);
}

struct workq *
workq_new(struct event_base *base, const char *name, unsigned n)
{
	struct workq	*q;

	if (n < 1 || n > WORKQ_THREADS_MAX ||
	    (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->efd = -1;
	q->tail = &q->head;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST,
	    workq_on_event, q)) == NULL || event_add(q->ev, NULL) != 0) {
		workq_free(q);
		return NULL;
	}
	for (; q->n_threads < n; q->n_threads++)
		if (util_thread_start(&q->thread[q->n_threads], name,
		    workq_worker, q) != 0) {
			workq_free(q);
			return NULL;
		}
	return q;
}

void
workq_submit(struct workq *q, struct workq_job *job,
    void (*run)(struct workq_job *), void (*done)(struct workq_job *))
{
	job->run = run;
	job->done = done;
	job->next = NULL;
	job->ran = 0;
	if (q->stopped) {
		/* Run here; done after any job that ran before it. */
		job->run(job);
		job->ran = 1;
		*q->tail = job;
		q->tail = &job->next;
		workq_complete(q);
		return;
	}
	pthread_mutex_lock(&q->lock);
	*q->tail = job;
	q->tail = &job->next;
	if (q->take == NULL)
		q->take = job;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void
workq_stop(struct workq *q)
{
	unsigned	i;

	if (q == NULL || q->stopped)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->n_threads; i++)
		pthread_join(q->thread[i], NULL);	/* they ran every job */
	q->stopped = 1;			/* from here on workq_submit runs */
	workq_complete(q);
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	workq_stop(q);
	if (q->ev != NULL)
		event_free(q->ev);
	if (q->efd >= 0)
		close(q->efd);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
