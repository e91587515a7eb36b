// SPDX-License-Identifier: MIT
/*
 * samples.c - memory and spill over time (samples.h): the engine's, and any
 * other source's (a scheduler's, of its workers' heartbeats).
 */
#include <stdbool.h>
#include <string.h>

#include "core.h"
#include "samples.h"

void weft__samples_init(struct weft__samples *sm)
{
	pthread_mutex_init(&sm->lock, NULL);
	sm->period_ns = WEFT_SAMPLE_NS;
	sm->n = 0;
	atomic_store_explicit(&sm->next_ns, 0, memory_order_relaxed);
}

void weft__samples_destroy(struct weft__samples *sm)
{
	pthread_mutex_destroy(&sm->lock);
}

void weft__samples_put(struct weft__samples *sm, const struct weft__view_sample *v,
		       bool force)
{
	/* A task thread never waits here: whoever holds the lock takes this one. */
	if (pthread_mutex_trylock(&sm->lock))
		return;
	if (!force && (int64_t)v->t_ns < atomic_load_explicit(&sm->next_ns, memory_order_relaxed))
		goto out;
	if (sm->n == WEFT_SAMPLES) {
		for (unsigned i = 0; i < WEFT_SAMPLES / 2; i++)
			sm->s[i] = sm->s[2 * i];	/* the first stays: the run's start */
		sm->n = WEFT_SAMPLES / 2;
		sm->period_ns *= 2;
	}
	sm->s[sm->n++] = *v;
	atomic_store_explicit(&sm->next_ns, (int64_t)v->t_ns + sm->period_ns,
			      memory_order_relaxed);
out:
	pthread_mutex_unlock(&sm->lock);
}

struct weft__view_sample weft__sample_of(const struct weft_stats *st, int64_t now_ns)
{
	return (struct weft__view_sample){
		.t_ns = (uint64_t)now_ns, .mem_bytes = st->mem_bytes,
		.spilled_bytes = st->spilled_bytes, .restored_bytes = st->restored_bytes,
		.spill_file_bytes = st->spill_file_bytes, .tasks_run = st->tasks_run,
		.tasks_failed = st->tasks_failed, .paused = (uint32_t)st->paused,
		.spill_blocked = (uint32_t)st->spill_blocked,
	};
}

void weft__samples_take(struct weft__engine *eng, int64_t now_ns, bool force)
{
	struct weft__samples *sm = &eng->samples;
	struct weft__view_sample v;
	struct weft_stats st;

	if (!force && now_ns < atomic_load_explicit(&sm->next_ns, memory_order_relaxed))
		return;
	weft__engine_stats(eng, &st);
	v = weft__sample_of(&st, now_ns);
	weft__samples_put(sm, &v, force);
}

unsigned weft__samples_copy(struct weft__samples *sm, struct weft__view_sample *out,
			    unsigned cap)
{
	unsigned n, skip;

	pthread_mutex_lock(&sm->lock);
	n = sm->n < cap ? sm->n : cap;
	skip = sm->n - n;			/* the latest @cap */
	memcpy(out, sm->s + skip, n * sizeof(*out));
	pthread_mutex_unlock(&sm->lock);
	return n;
}
