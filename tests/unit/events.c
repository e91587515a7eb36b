// SPDX-License-Identifier: MIT
/*
 * Unit tests of core/events.c, the engine's recorder: rings written by their
 * threads while another thread reads them (every event read whole), bounded memory
 * whatever the number of tasks, sampling that keeps the recorded rate down and the
 * weights that keep counts right, failures always recorded, and interned labels.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "events.h"

#define WRITERS 2
#define PUTS 400000

static struct weft__events *rings[WRITERS];
static atomic_bool writing;
static const char *labels[3];

/*
 * A writer puts events whose fields all follow from k, its count: a reader that
 * got half of one and half of another would see them disagree.
 */
static void *writer(void *arg)
{
	struct weft__events *ev = arg;

	for (uint64_t k = 1; k <= PUTS; k++)
		weft__events_put(ev, false, labels[k % 3], (int64_t)k * 1000,
				 (int64_t)k * 1000 + 7, 3, k * 5, WEFT_EV_FAILED);
	return NULL;
}

static unsigned check_copy(struct weft__event_copy *out)
{
	unsigned total = 0;

	for (int w = 0; w < WRITERS; w++) {
		unsigned n = weft__events_copy(rings[w], (unsigned)w, out);

		cr_assert_leq(n, WEFT_EVENT_RING);
		for (unsigned i = 0; i < n; i++) {
			struct weft__event_copy *e = &out[i];
			uint64_t k = e->start_ns / 1000;

			cr_assert_eq(e->seq, k, "event %u of ring %d: seq %llu, k %llu", i, w,
				     (unsigned long long)e->seq, (unsigned long long)k);
			cr_assert_eq(e->end_ns, e->start_ns + 7);
			cr_assert_eq(e->bytes, k * 5);
			cr_assert_eq(e->label, labels[k % 3]);
			cr_assert_eq(e->thread, (unsigned)w);
			if (i)	/* a gap: events the writer overwrote as they were read */
				cr_assert_gt(e->seq, out[i - 1].seq, "oldest first");
		}
		total += n;
	}
	return total;
}

Test(events, a_reader_gets_whole_events_while_writers_race, .timeout = 60)
{
	struct weft__event_copy *out = malloc(WEFT_EVENT_RING * sizeof(*out));
	pthread_t th[WRITERS];
	unsigned reads = 0;

	labels[0] = weft__label_intern("parse");
	labels[1] = weft__label_intern("join");
	labels[2] = weft__label_intern("a \"quoted\" label");
	for (int w = 0; w < WRITERS; w++) {
		rings[w] = weft__events_new();
		cr_assert_not_null(rings[w]);
		pthread_create(&th[w], NULL, writer, rings[w]);
	}
	atomic_store(&writing, true);
	for (int spins = 0; spins < 200; spins++, reads++)
		check_copy(out);
	for (int w = 0; w < WRITERS; w++)
		pthread_join(th[w], NULL);
	/* At rest: each ring holds exactly its latest WEFT_EVENT_RING. */
	cr_assert_eq(check_copy(out), WRITERS * WEFT_EVENT_RING);
	cr_assert_gt(reads, 0);
	for (int w = 0; w < WRITERS; w++)
		weft__events_free(rings[w]);
	free(out);
}

Test(events, memory_is_bounded_and_counts_are_kept_by_label)
{
	struct weft__events *ev = weft__events_new();
	const char *a = weft__label_intern("a"), *b = weft__label_intern("b");
	uint64_t count_a = 0, failed_b = 0;

	cr_assert_not_null(ev);
	/*
	 * A million tasks, each recorded as if sampled (50 us apart: the sampling stays
	 * at one in one): the recorder is its one allocation, whatever the count.
	 */
	for (int k = 0; k < 1000000; k++)
		weft__events_put(ev, true, k % 4 ? a : b, k * 50000LL, k * 50000LL + 100, 0, 8,
				 k % 4 ? WEFT_EV_DONE : WEFT_EV_FAILED);
	cr_assert_eq(atomic_load(&ev->head), 1000000);
	cr_assert_eq(ev->every, 1);
	for (unsigned i = 0; i < WEFT_EVENT_LABELS; i++) {
		if (atomic_load(&ev->labels[i].label) == a)
			count_a = atomic_load(&ev->labels[i].count);
		if (atomic_load(&ev->labels[i].label) == b)
			failed_b = atomic_load(&ev->labels[i].failed);
	}
	cr_assert_eq(count_a, 750000);
	cr_assert_eq(failed_b, 250000);
	weft__events_free(ev);
}

Test(events, sampling_keeps_the_rate_down_and_the_weights_add_up)
{
	struct weft__events *ev = weft__events_new();
	const char *l = weft__label_intern("tiny");
	uint64_t recorded = 0, weight = 0, count = 0;
	int64_t now = 0;

	cr_assert_not_null(ev);
	/* 10M tasks of 50 ns each, back to back: 0.5 s of them. */
	for (int k = 0; k < 10000000; k++, now += 50) {
		if (!weft__events_sample(ev))
			continue;
		weft__events_put(ev, true, l, now, now + 50, 0, 0, WEFT_EV_DONE);
		recorded++;
	}
	/* About one recorded per WEFT_EVENT_GAP_NS of the run, not 10M. */
	cr_assert_lt(recorded, 2 * (uint64_t)(now / WEFT_EVENT_GAP_NS) + 64, "%llu recorded",
		     (unsigned long long)recorded);
	for (unsigned i = 0; i < WEFT_EVENT_LABELS; i++)
		if (atomic_load(&ev->labels[i].label) == l)
			count = atomic_load(&ev->labels[i].count);
	{
		struct weft__event_copy *out = malloc(WEFT_EVENT_RING * sizeof(*out));
		unsigned n = weft__events_copy(ev, 0, out);

		for (unsigned i = 0; i < n; i++)
			weight += out[i].weight;
		cr_assert_gt(out[n - 1].weight, 1, "sampled at this rate");
		free(out);
	}
	/* Each recorded task counts for those it stands for: the count is near 10M. */
	cr_assert(count > 9000000 && count <= 10000000 + WEFT_EVENT_EVERY_MAX, "count %llu",
		  (unsigned long long)count);
	cr_assert_gt(weight, 0);
	/* Slow tasks again: recorded each from the first one recorded. */
	cr_assert_leq(ev->every, WEFT_EVENT_EVERY_MAX);
	for (int k = 0; k <= WEFT_EVENT_EVERY_MAX; k++, now += 1000000)
		if (weft__events_sample(ev))
			weft__events_put(ev, true, l, now, now + 1000000, 0, 0, WEFT_EV_DONE);
	cr_assert_eq(ev->every, 1, "back to recording each task");
	/* And a thread that goes idle records its next task. */
	ev->every = ev->left = 500;
	weft__events_idle(ev);
	cr_assert(weft__events_sample(ev));
	weft__events_free(ev);
}

Test(events, labels_intern_to_one_pointer)
{
	char a[] = "stage-1", b[] = "stage-1";

	cr_assert_eq(weft__label_intern(a), weft__label_intern(b));
	cr_assert_neq(weft__label_intern("stage-2"), weft__label_intern(a));
	cr_assert_str_eq(weft__label_intern(a), "stage-1");
}

/* The label's count of a thread's table. */
static uint64_t count_of(struct weft__events *ev, const char *l)
{
	for (unsigned i = 0; i < WEFT_EVENT_LABELS; i++)
		if (atomic_load(&ev->labels[i].label) == l)
			return atomic_load(&ev->labels[i].count);
	return 0;
}

/*
 * A thread that runs out of work has counted every task it ran: the tasks since
 * its last recorded one, which a countdown cut short, count as like that one.
 */
Test(events, a_thread_at_rest_has_counted_every_task)
{
	struct weft__events *ev = weft__events_new();
	const char *l = weft__label_intern("settled");
	int64_t now = 1000;

	cr_assert_not_null(ev);
	for (int run = 0; run < 5; run++) {
		/* 12345 tasks of 30 ns, then nothing to do. */
		for (int k = 0; k < 12345; k++, now += 30)
			if (weft__events_sample(ev))
				weft__events_put(ev, true, l, now, now + 30, 0, 0, WEFT_EV_DONE);
		weft__events_idle(ev);
		cr_assert_eq(count_of(ev, l), 12345ull * (run + 1), "run %d: %llu counted", run,
			     (unsigned long long)count_of(ev, l));
		now += 10000000;
	}
	/* Idle again with nothing run since: nothing more. */
	weft__events_idle(ev);
	cr_assert_eq(count_of(ev, l), 12345ull * 5);
	/* The events' weights add up to them too (none has left the ring). */
	{
		struct weft__event_copy *out = malloc(WEFT_EVENT_RING * sizeof(*out));
		unsigned n = weft__events_copy(ev, 0, out);
		uint64_t weight = 0;

		cr_assert_lt(n, WEFT_EVENT_RING);
		for (unsigned i = 0; i < n; i++)
			weight += out[i].weight;
		cr_assert_eq(weight, 12345ull * 5);
		free(out);
	}
	weft__events_free(ev);
}
