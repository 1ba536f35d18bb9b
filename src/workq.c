/* SPDX-License-Identifier: MIT */
/*
 * The worker of workq.h: a FIFO of jobs to run, a FIFO of jobs run, one
 * thread between them and an eventfd that wakes the loop when the second
 * one stops being empty.  The worker hands each job back as soon as it has
 * run it; the loop takes the whole list, so a busy loop picks up many jobs
 * per wake-up.
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

struct workq {
	struct event		*ev;		/* efd readable */
	int			 efd;		/* worker -> loop */
	pthread_t		 thread;
	int			 started;
	int			 stopped;	/* joined: jobs run inline */
	int			 completing;	/* in workq_complete */

	pthread_mutex_t		 lock;		/* guards what follows */
	pthread_cond_t		 wake;		/* worker: a job, or stop */
	struct workq_job	*todo, **todo_tail;
	struct workq_job	*ran, **ran_tail;
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
	int			 was_empty;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->todo == NULL && !q->stopping)
			pthread_cond_wait(&q->wake, &q->lock);
		if (q->todo == NULL)
			break;		/* stopping, and nothing left to run */
		job = q->todo;
		if ((q->todo = job->next) == NULL)
			q->todo_tail = &q->todo;
		pthread_mutex_unlock(&q->lock);

		job->run(job);

		/*
		 * Handed back at once, not with the rest of a batch: a job
		 * must not wait for the ones queued behind it.
		 */
		job->next = NULL;
		pthread_mutex_lock(&q->lock);
		was_empty = q->ran == NULL;
		*q->ran_tail = job;
		q->ran_tail = &job->next;
		pthread_mutex_unlock(&q->lock);
		/* The loop takes the whole list: one wake-up is enough. */
		if (was_empty && util_wake(q->efd) != 0)
			workq_bug("eventfd write failed");
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/*
 * Call done for every job run so far, in order.  After workq_stop a done
 * may submit a job, which runs at once and joins the list behind the ones
 * still waiting here: take the list again until it stays empty.
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
		job = q->ran;
		q->ran = NULL;
		q->ran_tail = &q->ran;
		pthread_mutex_unlock(&q->lock);
		for (; job != NULL; job = next) {
			next = job->next;
			job->done(job);
		}
	} while (q->stopped && q->ran != NULL);
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
workq_new(struct event_base *base, const char *name)
{
	struct workq	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->efd = -1;
	q->todo_tail = &q->todo;
	q->ran_tail = &q->ran;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST,
	    workq_on_event, q)) == NULL || event_add(q->ev, NULL) != 0 ||
	    util_thread_start(&q->thread, name, workq_worker, q) != 0) {
		workq_free(q);
		return NULL;
	}
	q->started = 1;
	return q;
}

void
workq_submit(struct workq *q, struct workq_job *job,
    void (*run)(struct workq_job *), void (*done)(struct workq_job *))
{
	job->run = run;
	job->done = done;
	job->next = NULL;
	if (q->stopped) {
		/* Run here; done after any job that ran before it. */
		job->run(job);
		*q->ran_tail = job;
		q->ran_tail = &job->next;
		workq_complete(q);
		return;
	}
	pthread_mutex_lock(&q->lock);
	*q->todo_tail = job;
	q->todo_tail = &job->next;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void
workq_stop(struct workq *q)
{
	if (q == NULL || !q->started || q->stopped)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);	/* it ran every queued job */
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
