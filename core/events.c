// SPDX-License-Identifier: MIT
/*
 * events.c - the engine's recorder (events.h): rings of task events and tables
 * per label, each written by one worker thread and read by any, and the interned
 * labels they name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "events.h"

/* ---- labels ---- */

#define INTERN_MAX 4096			/* distinct labels a process keeps */
#define INTERN_SLOTS (2 * INTERN_MAX)	/* a power of two, at most half full */

/*
 * Interned labels: an append-only hash set, so that an event names its label by a
 * pointer that outlives the task (a task's own label is freed with it). Taken
 * only when a task of a label other than the thread's last is recorded.
 */
static struct {
	pthread_mutex_t lock;
	struct {
		uint64_t hash;
		char *text;		/* NULL: free */
	} slot[INTERN_SLOTS];
	unsigned n;
} interned = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t hash_of(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

const char *weft__label_intern(const char *text)
{
	uint64_t h = hash_of(text);
	const char *found = "other";	/* past INTERN_MAX labels, or out of memory */
	size_t i = h & (INTERN_SLOTS - 1);

	pthread_mutex_lock(&interned.lock);
	for (; interned.slot[i].text; i = (i + 1) & (INTERN_SLOTS - 1))
		if (interned.slot[i].hash == h && !strcmp(interned.slot[i].text, text)) {
			found = interned.slot[i].text;
			goto out;
		}
	if (interned.n < INTERN_MAX && (interned.slot[i].text = strdup(text))) {
		interned.slot[i].hash = h;
		interned.n++;
		found = interned.slot[i].text;
	}
out:
	pthread_mutex_unlock(&interned.lock);
	return found;
}

/* ---- writing (the thread's own) ---- */

struct weft__events *weft__events_new(void)
{
	struct weft__events *ev = calloc(1, sizeof(*ev));

	if (ev)
		ev->every = ev->left = 1;
	return ev;
}

void weft__events_free(struct weft__events *ev)
{
	free(ev);
}

/*
 * Record one task in as many as came in GAP_NS before this one: the rate just
 * seen sets the next countdown (the first recorded task has none to go by). It
 * falls at once, and rises only on the second quick gap in a row, at most
 * twofold: one quick task among slow ones (a failure, say) is not a burst, and
 * the slow ones after it are each recorded still.
 */
static void adapt(struct weft__events *ev, int64_t now)
{
	int64_t gap = now - ev->last_ns;
	uint64_t every = 2ull * ev->every;

	if (ev->last_ns && gap > 0)
		every = (uint64_t)ev->every * WEFT_EVENT_GAP_NS / (uint64_t)gap;
	if (ev->last_ns) {
		bool quick = every > ev->every;

		if (every > 2ull * ev->every)
			every = 2ull * ev->every;
		if (quick && !ev->quick)
			every = ev->every;
		ev->quick = quick;
		ev->every = every < 1 ? 1 : every > WEFT_EVENT_EVERY_MAX ?
			    WEFT_EVENT_EVERY_MAX : (uint32_t)every;
	}
	ev->last_ns = now;
	ev->left = ev->every;
}

static unsigned bucket_of(uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;

	return b < WEFT_EVENT_HIST ? b : WEFT_EVENT_HIST - 1;
}

/* @label's figures on this thread: its slot, or "other" when every slot is taken. */
static struct weft__label_stats *label_slot(struct weft__events *ev, const char *label)
{
	size_t h = (size_t)((uintptr_t)label * 0x9e3779b97f4a7c15ull >> 40);

	for (unsigned k = 0; k < WEFT_EVENT_LABELS; k++) {
		struct weft__label_stats *s = &ev->labels[(h + k) % WEFT_EVENT_LABELS];
		const char *l = atomic_load_explicit(&s->label, memory_order_relaxed);

		if (l == label)
			return s;
		if (!l) {
			/* Release pairs with the readers' acquire: they see a label's zeros. */
			atomic_store_explicit(&s->label, label, memory_order_release);
			return s;
		}
	}
	/* Full: counted together, as "other". */
	if (!atomic_load_explicit(&ev->other.label, memory_order_relaxed))
		atomic_store_explicit(&ev->other.label, weft__label_intern("other"),
				      memory_order_release);
	return &ev->other;
}

static void add(_Atomic uint64_t *v, uint64_t n)
{
	/* The thread's own counter: a load and a store, readers see either value. */
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

uint64_t weft__events_put(struct weft__events *ev, bool sampled, const char *label,
		      int64_t start_ns, int64_t end_ns, int64_t pin_ns, uint64_t bytes,
		      uint32_t outcome)
{
	uint64_t i = atomic_load_explicit(&ev->head, memory_order_relaxed);
	struct weft__event *e = &ev->ring[i % WEFT_EVENT_RING];
	/*
	 * A sampled task counts for the countdown it ends, and for tasks a countdown
	 * cut short by idleness left uncounted; a failure outside the sample is counted
	 * in the weight of the sample after it.
	 */
	uint64_t w = sampled ? (uint64_t)ev->every + ev->owed : 0;
	uint32_t weight = w > WEFT_EVENT_WEIGHT_MAX ? WEFT_EVENT_WEIGHT_MAX : (uint32_t)w;
	uint64_t pin_us = (uint64_t)pin_ns / 1000;
	uint64_t run = end_ns > start_ns ? (uint64_t)(end_ns - start_ns) : 0;
	struct weft__label_stats *s = label_slot(ev, label);	/* never NULL */

	/* seq 0 while the fields change; release pairs with the reader's acquire. */
	atomic_store_explicit(&e->seq, 0, memory_order_release);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&e->start_ns, (uint64_t)start_ns, memory_order_relaxed);
	atomic_store_explicit(&e->end_ns, (uint64_t)end_ns, memory_order_relaxed);
	atomic_store_explicit(&e->pin_us, pin_us > UINT32_MAX ? UINT32_MAX : (uint32_t)pin_us,
			      memory_order_relaxed);
	atomic_store_explicit(&e->bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&e->label, label, memory_order_relaxed);
	for (unsigned k = 0; k < WEFT_EVENT_FROM; k++) {
		atomic_store_explicit(&e->from[k], ev->from[k], memory_order_relaxed);
		ev->from[k] = 0;
	}
	atomic_store_explicit(&e->outcome_weight, outcome << 30 | weight, memory_order_relaxed);
	atomic_store_explicit(&e->seq, i + 1, memory_order_release);
	/* Release pairs with weft__events_copy's acquire of head. */
	atomic_store_explicit(&ev->head, i + 1, memory_order_release);
	if (outcome != WEFT_EV_DONE)
		add(&s->failed, 1);
	if (weight) {
		add(&s->count, weight);
		add(&s->total_ns, run * weight);
		add(&s->hist[bucket_of(run)], weight);
	}
	if (sampled) {
		ev->owed = 0;
		ev->last_put = label;
		ev->last_run_ns = run;
		ev->last_idx = i;
		adapt(ev, end_ns);
	}
	return i + 1;
}

/*
 * Count the tasks owed as like the last recorded one, so that a thread at rest
 * has counted each task it ran: the sample's weights said as much of them.
 */
void weft__events_settle(struct weft__events *ev)
{
	struct weft__label_stats *s;
	struct weft__event *e;

	if (!ev->last_put)
		return;		/* none recorded yet: the next will count them */
	e = &ev->ring[ev->last_idx % WEFT_EVENT_RING];
	/*
	 * Still in the ring: it stands for them too. A reader gets the weight before
	 * or after, each a whole event (the seq protocol guards the rest).
	 */
	if (atomic_load_explicit(&e->seq, memory_order_relaxed) == ev->last_idx + 1) {
		uint32_t ow = atomic_load_explicit(&e->outcome_weight, memory_order_relaxed);
		uint64_t w = (uint64_t)(ow & WEFT_EVENT_WEIGHT_MAX) + ev->owed;

		if (w > WEFT_EVENT_WEIGHT_MAX)
			w = WEFT_EVENT_WEIGHT_MAX;
		atomic_store_explicit(&e->outcome_weight, (ow & ~WEFT_EVENT_WEIGHT_MAX) |
				      (uint32_t)w, memory_order_relaxed);
	}
	s = label_slot(ev, ev->last_put);
	add(&s->count, ev->owed);
	add(&s->total_ns, ev->last_run_ns * ev->owed);
	add(&s->hist[bucket_of(ev->last_run_ns)], ev->owed);
	ev->owed = 0;
}

/* ---- reading (any thread) ---- */

unsigned weft__events_copy(const struct weft__events *ev, unsigned thread,
			   struct weft__event_copy *out)
{
	uint64_t head = atomic_load_explicit(&ev->head, memory_order_acquire);
	uint64_t from = head > WEFT_EVENT_RING ? head - WEFT_EVENT_RING : 0;
	unsigned n = 0;

	for (uint64_t i = from; i < head; i++) {
		const struct weft__event *e = &ev->ring[i % WEFT_EVENT_RING];
		struct weft__event_copy c;
		uint32_t ow;

		/* Acquire pairs with the writer's release of seq. */
		if (atomic_load_explicit(&e->seq, memory_order_acquire) != i + 1)
			continue;	/* overwritten since, or being written */
		c.start_ns = atomic_load_explicit(&e->start_ns, memory_order_relaxed);
		c.end_ns = atomic_load_explicit(&e->end_ns, memory_order_relaxed);
		c.pin_ns = 1000ull * atomic_load_explicit(&e->pin_us, memory_order_relaxed);
		c.bytes = atomic_load_explicit(&e->bytes, memory_order_relaxed);
		c.label = atomic_load_explicit(&e->label, memory_order_relaxed);
		for (unsigned k = 0; k < WEFT_EVENT_FROM; k++)
			c.from[k] = atomic_load_explicit(&e->from[k], memory_order_relaxed);
		ow = atomic_load_explicit(&e->outcome_weight, memory_order_relaxed);
		c.weight = ow & WEFT_EVENT_WEIGHT_MAX;
		c.outcome = ow >> 30;
		/* The fields were read before seq is read again (pairs with the writer's fence). */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) != i + 1)
			continue;
		c.seq = i + 1;
		c.thread = thread;
		out[n++] = c;
	}
	return n;
}
