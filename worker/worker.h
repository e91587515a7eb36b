/* SPDX-License-Identifier: MIT */
/*
 * worker.h - a node runtime behind a fabric endpoint (worker.c): what weft-worker
 * runs, and what tests start in their own process.
 *
 * It runs what the scheduler sends on the embedded engine (pinned threads, memory
 * limit, spill), fetching inputs other workers hold by RMA (inline below
 * WEFT_INLINE_MAX bytes), tells the scheduler of each end in its next flush,
 * serves reads of its results to other workers and clients (a spilled result is
 * read back first), and sends heartbeats.
 */
#ifndef WEFT_WORKER_H
#define WEFT_WORKER_H

#include <stdint.h>

#include "auth.h"

struct weft__wrt;

struct weft__worker_opts {
	const char *scheduler;		/* its URL */
	const char *name;		/* unique in the cluster */
	unsigned nthreads;		/* 0: the engine's choice */
	size_t memory_limit;		/* 0: the engine's choice */
	const char *spill_dir;		/* NULL: the engine's choice */
	const struct weft__auth_key *key;
};

/* Start the engine and connect to the scheduler. 0 or a negative errno (logged). */
int weft__worker_start(const struct weft__worker_opts *o, struct weft__wrt **out);
/*
 * Wait until the scheduler is gone or weft__worker_stop is called from a signal
 * thread. Return: 0 if the scheduler said goodbye, -EACCES for a token it
 * refused, -ECONNREFUSED if it could not be reached, or why it went.
 */
int weft__worker_wait(struct weft__wrt *w);
/* Where the worker itself is reached (its control endpoint's URL). */
const char *weft__worker_url(const struct weft__wrt *w);
/* Ask weft__worker_wait to return (any thread). */
void weft__worker_stop(struct weft__wrt *w);
/* Close the engine and the endpoints. */
void weft__worker_free(struct weft__wrt *w);
/*
 * For a process about to exit after losing its scheduler: close the endpoints (and
 * their shared memory) and leave the engine as it is, running tasks and all, since
 * their results have nowhere to go. @w is not to be used again.
 */
void weft__worker_abandon(struct weft__wrt *w);

#endif /* WEFT_WORKER_H */
