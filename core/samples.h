/* SPDX-License-Identifier: MIT */
/*
 * samples.h - the engine's memory and spill figures over time, for the views'
 * charts and the report: a sample every WEFT_SAMPLE_NS at first, taken by
 * whichever thread comes by when one is due (a worker thread as it records a
 * task, a request for the views); when the table is full every other sample is
 * dropped and the period doubles, so that it always spans the whole run.
 */
#ifndef WEFT_SAMPLES_H
#define WEFT_SAMPLES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "view.h"

#define WEFT_SAMPLES 1024
#define WEFT_SAMPLE_NS 20000000	/* 20 ms */

struct weft__engine;

struct weft__samples {
	_Atomic int64_t next_ns;	/* when the next is due; relaxed: a hint, the
					 * lock decides */
	pthread_mutex_t lock;		/* a taker tries it and never waits */
	int64_t period_ns;
	unsigned n;
	struct weft__view_sample s[WEFT_SAMPLES];
};

void weft__samples_init(struct weft__samples *sm);
void weft__samples_destroy(struct weft__samples *sm);

/* Keep @v if a sample is due at its time (or @force); never waits for the lock. */
void weft__samples_put(struct weft__samples *sm, const struct weft__view_sample *v,
		       bool force);

/* A sample of @st's figures at @now_ns. */
struct weft__view_sample weft__sample_of(const struct weft_stats *st, int64_t now_ns);

/* Take a sample of @eng's figures if one is due at @now_ns (or @force). */
void weft__samples_take(struct weft__engine *eng, int64_t now_ns, bool force);

static inline void weft__samples_tick(struct weft__engine *eng, struct weft__samples *sm,
				      int64_t now_ns)
{
	if (now_ns >= atomic_load_explicit(&sm->next_ns, memory_order_relaxed))
		weft__samples_take(eng, now_ns, false);
}

/* Copy up to @cap of the samples, oldest first, into @out. Return: how many. */
unsigned weft__samples_copy(struct weft__samples *sm, struct weft__view_sample *out,
			    unsigned cap);

#endif /* WEFT_SAMPLES_H */
