/* SPDX-License-Identifier: MIT */
/*
 * events.h - what the engine records of the tasks it runs, for the views of a run
 * (weft_trace now; the dashboard and the report read the same): per worker thread,
 * a ring of the latest task events (label, start, end, time pinning inputs, bytes
 * of results, outcome), and per label a table of counts and run times.
 *
 * A thread writes only its own ring and table, with relaxed atomic stores and no
 * lock or allocation; any thread reads them as a snapshot (events.c). Recording
 * every task would cost a task of tens of nanoseconds half as much again, so a
 * thread records one task in @every and counts it as that many (its weight). At
 * each recorded task @every is set from the time since the last, for the next to
 * come WEFT_EVENT_GAP_NS later (at most ~20k recorded tasks a second a thread,
 * whatever the rate; it rises on the second quick gap in a row only, at most
 * twofold), and it is 1 again when the thread runs out of work: slow
 * tasks after a burst of fast ones are recorded each at the latest
 * WEFT_EVENT_EVERY_MAX tasks later. A task that fails is always recorded.
 */
#ifndef WEFT_EVENTS_H
#define WEFT_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Events kept per thread, the latest, and labels counted by name (more count as
 * "other"): about 290 KiB a thread, which a memory limit does not count.
 */
#define WEFT_EVENT_RING 4096
#define WEFT_EVENT_LABELS 64
#define WEFT_EVENT_GAP_NS 50000		/* recorded tasks this far apart at the most */
#define WEFT_EVENT_EVERY_MAX 4096	/* 100 us of 25-ns tasks */
#define WEFT_EVENT_HIST 48		/* run-time buckets: [2^i, 2^(i+1)) ns */
#define WEFT_EVENT_FROM 2		/* inputs an event links to, for a trace's flows */

/* An event's id in its engine: its thread's index and its place in that ring. */
static inline uint64_t weft__event_id(unsigned thread, uint64_t seq)
{
	return (uint64_t)(thread + 1) << 40 | seq;
}

/* An event's outcome. */
enum { WEFT_EV_DONE = 1, WEFT_EV_FAILED, WEFT_EV_CANCELLED };

/*
 * One task as recorded. @seq is the event's index + 1 once written, 0 while it is
 * being written: a reader that sees the same @seq before and after copying the
 * fields has a whole event.
 */
struct weft__event {
	_Atomic uint64_t seq;
	_Atomic uint64_t start_ns, end_ns;	/* CLOCK_MONOTONIC */
	_Atomic uint64_t bytes;			/* of its results */
	_Atomic(const char *) label;		/* interned: lives as long as the process */
	_Atomic uint64_t from[WEFT_EVENT_FROM];	/* events of its first inputs' tasks; 0:
						 * none, or not recorded */
	_Atomic uint32_t pin_us;		/* of its run, pinning inputs (spill
						 * read-backs), microseconds */
	/*
	 * Its outcome (top 2 bits) and weight: the tasks it stands for (at most
	 * WEFT_EVENT_WEIGHT_MAX); 0, a failure outside the sample, counted in the
	 * weight of the next.
	 */
	_Atomic uint32_t outcome_weight;
};
#define WEFT_EVENT_WEIGHT_MAX ((1u << 30) - 1)
_Static_assert(sizeof(struct weft__event) == 64, "an event is a cache line");

/* A label's figures on one thread: counts are sums of weights. */
struct weft__label_stats {
	_Atomic(const char *) label;		/* NULL: a free slot */
	_Atomic uint64_t count, failed;
	_Atomic uint64_t total_ns;
	_Atomic uint64_t hist[WEFT_EVENT_HIST];	/* weights by run time */
};

/* A worker thread's: written by it alone. */
struct weft__events {
	_Atomic uint64_t head;			/* events written so far */
	uint32_t every, left;			/* the sampling: this thread's only */
	uint32_t owed;				/* tasks run that no recorded one counts */
	bool quick;				/* the last gap called for more than every */
	int64_t last_ns;			/* when it last recorded */
	/* The label it recorded last, and the function it was of (NULL: a label's). */
	const void *last_fn;
	const char *last_label;
	const char *last_put;			/* the label of the last sampled task */
	uint64_t last_run_ns;			/* its run time */
	uint64_t last_idx;			/* and its event's index */
	uint64_t from[WEFT_EVENT_FROM];		/* for the next event put (its inputs') */
	struct weft__event ring[WEFT_EVENT_RING];
	struct weft__label_stats labels[WEFT_EVENT_LABELS];
	struct weft__label_stats other;		/* labels past those, together */
};

/* A copy of one event, as a reader gets it. */
struct weft__event_copy {
	uint64_t seq, start_ns, end_ns, pin_ns, bytes;
	uint64_t from[WEFT_EVENT_FROM];
	const char *label;
	uint32_t weight, outcome;
	unsigned thread;
};

/* Allocate a thread's recorder (about 290 KiB), recording from its first task. */
struct weft__events *weft__events_new(void);
void weft__events_free(struct weft__events *ev);

/*
 * Whether the thread records its next task: a countdown, the only cost on the path
 * of a task it does not record.
 */
static inline bool weft__events_sample(struct weft__events *ev)
{
	if (--ev->left)
		return false;
	ev->left = ev->every;	/* again, if the task is not recorded after all */
	return true;
}

void weft__events_settle(struct weft__events *ev);

/*
 * The thread ran out of work: its next task is recorded, and the tasks it ran
 * since the last recorded one are counted now, as like that one (settle: its
 * event's weight and its label's figures grow by them).
 */
static inline void weft__events_idle(struct weft__events *ev)
{
	ev->owed += ev->every - ev->left;	/* run since the last recorded one */
	ev->every = ev->left = 1;
	if (ev->owed)
		weft__events_settle(ev);
}

/* A label as the views name it, interned: the same pointer for the same text. */
const char *weft__label_intern(const char *text);

/*
 * Record a task that ran from @start_ns to @end_ns (@pin_ns of it pinning inputs),
 * linked to the events in ev->from (then cleared). @sampled: weft__events_sample
 * said so (it counts for @every tasks); a failed task not sampled is recorded
 * too, of weight 0. Return: its seq (weft__event_id's).
 */
uint64_t weft__events_put(struct weft__events *ev, bool sampled, const char *label,
		      int64_t start_ns, int64_t end_ns, int64_t pin_ns, uint64_t bytes,
		      uint32_t outcome);

/*
 * Copy the events of @ev still in its ring, oldest first, into @out (room for
 * WEFT_EVENT_RING), each marked with @thread. Return: how many.
 */
unsigned weft__events_copy(const struct weft__events *ev, unsigned thread,
			   struct weft__event_copy *out);

#endif /* WEFT_EVENTS_H */
