/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the REST worker queue: jobs run on other threads (one or
 * several), complete on the loop's thread in submission order, a done may submit the next job
 * (ping-pong), workq_free finishes what is queued (including what a done
 * submits, still in order) without leaking a job, and a stopped queue runs
 * what is submitted at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "workq.h"

#define N_JOBS	1000

struct log {
	pthread_t	 loop;
	int		 order[N_JOBS + 1];
	size_t		 n_done;
	int		 run_on_loop;	/* a run that was not on the worker */
	int		 done_off_loop;	/* a done that was not on the loop */
	struct workq	*q;
	struct event_base *base;
};

struct job {
	struct workq_job	 job;
	struct log		*log;
	int			 seq;
	int			 ran;
	int			 resubmit;	/* done submits job N_JOBS */
	int			 chain;		/* done submits job seq + 1 */
	int			 delay_us;	/* run sleeps that long */
};

static void	job_run(struct workq_job *);
static void	job_done(struct workq_job *);

static struct job *
job_new(struct log *log, int seq)
{
	struct job	*j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->log = log;
	j->seq = seq;
	return j;
}

static void
job_run(struct workq_job *job)
{
	struct job	*j = (struct job *)job;

	if (pthread_equal(pthread_self(), j->log->loop))
		j->log->run_on_loop++;
	if (j->delay_us > 0)
		usleep((useconds_t)j->delay_us);
	j->ran = 1;
}

static void
job_done(struct workq_job *job)
{
	struct job	*j = (struct job *)job;
	struct log	*log = j->log;

	struct job	*next;

	if (!pthread_equal(pthread_self(), log->loop) || !j->ran)
		log->done_off_loop++;
	if (log->n_done < N_JOBS + 1)
		log->order[log->n_done] = j->seq;
	log->n_done++;
	if (j->resubmit)
		workq_submit(log->q, &job_new(log, N_JOBS)->job,
		    job_run, job_done);
	if (j->chain && j->seq + 1 < N_JOBS) {
		next = job_new(log, j->seq + 1);
		next->chain = 1;
		workq_submit(log->q, &next->job, job_run, job_done);
	}
	free(j);
	if (log->n_done == N_JOBS && log->base != NULL)
		event_base_loopbreak(log->base);
}

/*
 * N_JOBS jobs through n workers, each job sleeping delay(i) microseconds:
 * they complete in submission order, runs off the loop, dones on it.
 */
static void
order_run(unsigned n, int (*delay)(int))
{
	struct log		 log = { 0 };
	struct timeval		 limit = { 20, 0 };
	struct job		*j;
	int			 i;

	log.loop = pthread_self();
	assert_non_null(log.base = event_base_new());
	assert_non_null(log.q = workq_new(log.base, "test-worker", n));
	for (i = 0; i < N_JOBS; i++) {
		j = job_new(&log, i);
		j->delay_us = delay(i);
		workq_submit(log.q, &j->job, job_run, job_done);
	}
	event_base_loopexit(log.base, &limit);
	event_base_dispatch(log.base);
	assert_int_equal(log.n_done, N_JOBS);
	for (i = 0; i < N_JOBS; i++)
		assert_int_equal(log.order[i], i);
	assert_int_equal(log.run_on_loop, 0);
	assert_int_equal(log.done_off_loop, 0);
	workq_free(log.q);
	assert_int_equal(log.n_done, N_JOBS);
	event_base_free(log.base);
}

static int
no_delay(int i)
{
	(void)i;
	return 0;
}

/* Later jobs finish first: 600, 400, 200, 0 us, again and again. */
static int
falling_delay(int i)
{
	return (3 - i % 4) * 200;
}

static void
test_order(void **state)
{
	(void)state;
	order_run(1, no_delay);
}

/* Four workers, later jobs finishing first: still in submission order. */
static void
test_order_workers(void **state)
{
	(void)state;
	order_run(4, falling_delay);
	assert_null(workq_new(NULL, "test-worker", 0));
	assert_null(workq_new(NULL, "test-worker", 9));
}

/* Each done submits the next job: one at a time through the worker. */
static void
test_ping_pong(void **state)
{
	struct log		 log = { 0 };
	struct timeval		 limit = { 10, 0 };
	struct job		*first;
	int			 i;

	(void)state;
	log.loop = pthread_self();
	assert_non_null(log.base = event_base_new());
	assert_non_null(log.q = workq_new(log.base, "test-worker", 1));
	first = job_new(&log, 0);
	first->chain = 1;
	workq_submit(log.q, &first->job, job_run, job_done);
	event_base_loopexit(log.base, &limit);
	event_base_dispatch(log.base);
	assert_int_equal(log.n_done, N_JOBS);
	for (i = 0; i < N_JOBS; i++)
		assert_int_equal(log.order[i], i);
	assert_int_equal(log.run_on_loop, 0);
	assert_int_equal(log.done_off_loop, 0);
	workq_free(log.q);
	event_base_free(log.base);
}

static void
test_free_finishes(void **state)
{
	struct log		 log = { 0 };
	struct event_base	*base;
	struct job		*j;
	int			 i;

	(void)state;
	log.loop = pthread_self();
	assert_non_null(base = event_base_new());
	assert_non_null(log.q = workq_new(base, "test-worker", 1));
	/*
	 * The loop never runs: workq_free does all of it.  A done half-way
	 * submits one more job, which completes after all the others.
	 */
	for (i = 0; i < N_JOBS; i++) {
		j = job_new(&log, i);
		j->resubmit = i == N_JOBS / 2;
		workq_submit(log.q, &j->job, job_run, job_done);
	}
	workq_free(log.q);
	assert_int_equal(log.n_done, N_JOBS + 1);
	for (i = 0; i <= N_JOBS; i++)
		assert_int_equal(log.order[i], i);
	/* The job submitted by that done ran on this thread. */
	assert_int_equal(log.run_on_loop, 1);
	assert_int_equal(log.done_off_loop, 0);
	event_base_free(base);
}

/* After workq_stop, a job runs and completes within workq_submit. */
static void
test_stopped_runs_inline(void **state)
{
	struct log		 log = { 0 };
	struct event_base	*base;
	struct job		*j;

	(void)state;
	log.loop = pthread_self();
	assert_non_null(base = event_base_new());
	assert_non_null(log.q = workq_new(base, "test-worker", 1));
	workq_submit(log.q, &job_new(&log, 0)->job, job_run, job_done);
	workq_stop(log.q);
	assert_int_equal(log.n_done, 1);
	assert_int_equal(log.run_on_loop, 0);
	j = job_new(&log, 1);
	workq_submit(log.q, &j->job, job_run, job_done);
	assert_int_equal(log.n_done, 2);
	assert_int_equal(log.order[1], 1);
	assert_int_equal(log.run_on_loop, 1);	/* its run, on this thread */
	assert_int_equal(log.done_off_loop, 0);
	workq_free(log.q);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_order_workers),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_free_finishes),
		cmocka_unit_test(test_stopped_runs_inline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
