/* SPDX-License-Identifier: MIT */
/*
 * Worker threads for the steps of a request that would hold up the loop
 * and need nothing of its state: the REST side's (certd-worker, one a CPU
 * up to four) decode PUT bodies and check their certificates, the socket
 * side's (certd-admin, one) takes backups, with their copies and fsyncs.
 * Jobs start in submission order and complete on the loop in that same
 * order.
 */
#ifndef CERTD_WORKQ_H
#define CERTD_WORKQ_H

struct event_base;
struct workq;

/*
 * A job, embedded by its owner in a struct of its own.  run is called on
 * the worker and may touch only what the job owns; done is called on the
 * loop afterwards and ends the job (it may free it).  Both are set by
 * workq_submit.
 */
struct workq_job {
	void			(*run)(struct workq_job *job);
	void			(*done)(struct workq_job *job);
	struct workq_job	*next;		/* the queue's */
	int			 ran;		/* the queue's */
};

/*
 * Start n workers (1 to 8), threads named name (15 bytes at most); NULL on
 * failure (a thread or an eventfd).  Jobs may run side by side on
 * different workers, and complete in submission order all the same.
 */
struct workq	*workq_new(struct event_base *base, const char *name,
		    unsigned n);

/* Queue job: run on the worker, then done on the loop. */
void		 workq_submit(struct workq *q, struct workq_job *job,
		    void (*run)(struct workq_job *),
		    void (*done)(struct workq_job *));

/*
 * Run every queued job, stop the workers and call done for each, here on
 * the loop's thread.  From then on workq_submit runs a job's run at once,
 * on the caller's thread, and its done as soon as every job that ran
 * before it is done (at once, unless a done submitted it): what a daemon
 * shutting down still submits (completions drained from the store) is
 * answered all the same, and in order.
 */
void		 workq_stop(struct workq *q);

/* workq_stop, then free.  Accepts NULL. */
void		 workq_free(struct workq *q);

#endif
