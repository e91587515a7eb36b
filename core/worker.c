// SPDX-License-Identifier: MIT
/*
 * worker.c - how threads find, take and wait for work: where ready tasks go (the
 * deques, the inbox and its batches, the priority heap), stealing, the idle spin
 * and parking, the worker loop, and waiting inside and outside tasks.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>

#include "events.h"
#include "core.h"

/*
 * An idle thread keeps looking for work this long before it parks, and a waiting
 * client thread keeps checking this long before it sleeps: a futex wake costs tens
 * of microseconds under a hypervisor, so sleeping sooner makes a steady trickle of
 * tasks pay one wake-up each.
 */
#define SPIN_NS 100000
#define SPIN_ROUNDS 64			/* rounds between clock reads while spinning */
/*
 * A thread whose batch has not moved for this long is held up by a long task, and
 * an idle thread takes half of it (steal_half): about a futex wake-up, so that a
 * task shorter than that is not worth moving another thread's work for.
 */
#define HELD_UP_NS 5000
/* Lost races on a victim before it is left for the next: others are busy there. */
#define STEAL_TRIES 4
/*
 * A wait inside a task with nothing to run sleeps at most this long at a time: new
 * work for it does not wake done_seq, which only tasks ending do.
 */
#define HELP_NAP_NS 200000
#define QUIET_ROUNDS 32			/* unregistered polls before the yielding spin */
#define MAX_BACKOFF 32			/* most pauses between two quiet polls */
/*
 * Once every worker has been parked this long, the last to park gives the pages of
 * freed results back to the system: the arenas keep them while work goes on (see
 * alloc/arena.c), which spares the next results faulting them in again.
 */
#define IDLE_PURGE_NS NSEC_PER_SEC

/* Relaxed: a setting for tests that orders nothing. */
static _Atomic int64_t idle_purge_ns = IDLE_PURGE_NS;
_Thread_local struct weft__worker *weft__tl_worker;

/* ---- futexes ---- */

/* Sleep while *addr == val, at most until @deadline_ns (< 0: no limit). */
static void futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts, *tp = NULL;

	if (deadline_ns >= 0) {
		int64_t left = deadline_ns - weft__mono_ns();

		if (left <= 0)
			return;
		ts.tv_sec = left / NSEC_PER_SEC;
		ts.tv_nsec = left % NSEC_PER_SEC;
		tp = &ts;
	}
	/* EAGAIN (value changed), EINTR and ETIMEDOUT all mean: look again. */
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- test hooks (the test build of the library only) ---- */

#ifdef WEFT_TESTING
/* Grows still to fail; 0: off. Relaxed: a count for tests that orders nothing. */
static _Atomic unsigned grow_failures;

unsigned weft__deque_fail_grows(unsigned n)
{
	return atomic_exchange_explicit(&grow_failures, n, memory_order_relaxed);
}

bool weft__deque_grow_should_fail(void)
{
	unsigned n = atomic_load_explicit(&grow_failures, memory_order_relaxed);

	while (n && !atomic_compare_exchange_weak_explicit(&grow_failures, &n, n - 1,
							   memory_order_relaxed,
							   memory_order_relaxed))
		;
	return n != 0;
}

int64_t weft__engine_set_idle_purge(int64_t ns)
{
	return atomic_exchange_explicit(&idle_purge_ns, ns, memory_order_relaxed);
}
#endif /* WEFT_TESTING */

/* ---- parking: an eventcount over park_seq ---- */

void weft__engine_wake_one(struct weft__engine *eng)
{
	/* Pairs with the load of park_seq in idle(): a parker that read the old value
	 * returns from FUTEX_WAIT at once. */
	atomic_fetch_add_explicit(&eng->park_seq, 1, memory_order_seq_cst);
	futex_wake(&eng->park_seq, 1);
}

void weft__engine_pause(struct weft__engine *eng, bool on)
{
	atomic_store_explicit(&eng->paused, on, memory_order_seq_cst);
	if (!on)
		weft__engine_wake_all(eng);	/* parked threads may start tasks again */
}

void weft__engine_wake_all(struct weft__engine *eng)
{
	atomic_fetch_add_explicit(&eng->park_seq, 1, memory_order_seq_cst);
	futex_wake(&eng->park_seq, INT_MAX);
}

/*
 * After a worker pushed onto its own deque: that worker will run the task if nobody
 * steals it, so a stale read here costs parallelism, never progress. No fence.
 */
static inline void notify_hint(struct weft__engine *eng)
{
	if (unlikely(atomic_load_explicit(&eng->nparked, memory_order_relaxed)) &&
	    !atomic_load_explicit(&eng->nspinning, memory_order_relaxed))
		weft__engine_wake_one(eng);
}

void weft__engine_wake_waiters(struct weft__engine *eng)
{
	/* Pairs with the load of done_seq in block(), made before WT_WAITER was set. */
	atomic_fetch_add_explicit(&eng->done_seq, 1, memory_order_seq_cst);
	futex_wake(&eng->done_seq, INT_MAX);
}

/* ---- where ready tasks go ---- */

/* True when no task waits in the inbox, linked or about to be. */
static bool inbox_empty(struct weft__engine *eng)
{
	return !atomic_load_explicit(&eng->inbox_tail, memory_order_seq_cst);
}

void weft__engine_schedule(struct weft__engine *eng, struct weft__worker *w,
			   struct weft_task *t)
{
	if (unlikely(t->prio) && !weft__prio_push(eng, t)) {
		weft__notify_strict(eng);
		return;
	}
	if (likely(w) && !weft__deque_push(&w->dq, t)) {
		notify_hint(eng);
		return;
	}
	/* Not a worker, or a deque that could not grow: the inbox takes anything. */
	weft__inbox_push(eng, t);
}

/*
 * A task made ready by the one @w has just run, with its results warm in @w's
 * cache: @w runs it next, before its deque, and no thief can take it meanwhile
 * (in a chain of tasks that steal moved every task between the cores). Of several,
 * the newest is kept and the one it displaces goes on the deque, where others can
 * take it. Only a worker ending a task it ran calls this (so @w is never NULL):
 * the thread goes on to find_work, or a wait's help loop, which hands the task on
 * (next_flush) before it returns to a task's own code.
 */
void weft__engine_run_next(struct weft__engine *eng, struct weft__worker *w,
			   struct weft_task *t)
{
	struct weft_task *old;

	if (unlikely(t->prio)) {
		weft__engine_schedule(eng, w, t);
		return;
	}
	old = w->run_next;
	w->run_next = t;
	if (old)
		weft__engine_schedule(eng, w, old);
}

static __cold __attribute__((noinline)) void next_give_away(struct weft__worker *w)
{
	struct weft_task *t = w->run_next;

	w->run_next = NULL;
	weft__engine_schedule(w->eng, w, t);
}

/*
 * Give the task kept to run next to the deque: this thread has other work now. Out
 * of line: fork-join waits, which never keep one, pass here on every wait.
 */
static inline void next_flush(struct weft__worker *w)
{
	if (unlikely(w->run_next))
		next_give_away(w);
}

#define INBOX_HELD ((struct weft_task *)1)	/* inbox_head while a consumer has it */
/*
 * Tasks a consumer takes at most in one turn. A turn moves inbox_head's line from
 * one worker to another and back, a cost that a larger turn shares among more
 * tasks of a stream from one client.
 */
#define INBOX_TAKE 128
_Static_assert(INBOX_TAKE - 1 <= WEFT_DEQUE_CAP, "a turn fits an empty deque");

/*
 * Whether to look in the inbox: a hint that reads no line a producer writes while
 * the consumer is behind. A task it misses is not slept past: idle() asks
 * inbox_empty before it parks.
 */
static inline bool inbox_ready(struct weft__engine *eng)
{
	struct weft_task *h = atomic_load_explicit(&eng->inbox_head, memory_order_relaxed);

	if (h)
		return h != INBOX_HELD;
	return atomic_load_explicit(&eng->inbox_first, memory_order_relaxed);
}

/* Swing the tail from @h back to NULL: true if @h was the last node. seq_cst as in push. */
static bool inbox_close(struct weft__engine *eng, struct weft_task *h)
{
	return atomic_compare_exchange_strong_explicit(&eng->inbox_tail, &h, NULL,
						       memory_order_seq_cst,
						       memory_order_relaxed);
}

/*
 * Start the miss of @next, which follows @h, and of the record INBOX_AHEAD strides
 * further when the last two were a stride apart too. A walk down the queue waits
 * for each record's line before it knows the next one's address, and here that
 * line is the submitter's, on another core. But a client takes its records from a
 * cache that it fills in batches, in the order they were freed, so that a stream
 * of tasks often lies at one stride; a wrong guess costs a line of bandwidth.
 */
#define INBOX_AHEAD 8

static inline void inbox_prefetch(struct weft__engine *eng, struct weft_task *h,
				  struct weft_task *next)
{
	intptr_t d = (intptr_t)next - (intptr_t)h;

	__builtin_prefetch(next, 1);
	if (d == eng->inbox_stride && d >= -WEFT_STRIDE_WINDOW && d <= WEFT_STRIDE_WINDOW)
		__builtin_prefetch((char *)next + INBOX_AHEAD * d, 1);
	eng->inbox_stride = d;
}

/*
 * The oldest task in the inbox, from *@head, which the caller holds (NULL: the
 * queue starts at inbox_first). NULL when there is none, or it is not linked yet.
 * A task leaves the queue only once no producer can write its next any more: its
 * next is known, or the tail was swung from it to NULL.
 */
static struct weft_task *inbox_pop(struct weft__engine *eng, struct weft_task **head)
{
	struct weft_task *h = *head, *next;

	if (!h) {
		if (!atomic_load_explicit(&eng->inbox_first, memory_order_relaxed))
			return NULL;
		/* Acquire pairs with the release store in weft__inbox_push. */
		h = atomic_exchange_explicit(&eng->inbox_first, NULL, memory_order_acquire);
		*head = h;
		/*
		 * Often the only task: close the queue behind it at once, without
		 * waiting first for its line (its next can only be NULL then).
		 */
		if (inbox_close(eng, h)) {
			*head = NULL;
			return h;
		}
	}
	next = atomic_load_explicit(&h->next, memory_order_acquire);
	if (next)
		inbox_prefetch(eng, h, next);
	else if (!inbox_close(eng, h))
		return NULL;	/* a producer got in first; its link is on the way */
	*head = next;
	return h;
}

/*
 * Publish @n tasks taken together as a batch on @w's empty deque. The fence orders
 * the batch before the load of nparked, as inbox_push's exchange does a task (see
 * weft__notify_strict): a thread that parks now either sees the batch or is woken
 * for it, so that no task waits behind a running one while a thread sleeps.
 */
static void batch_publish(struct weft__worker *w, void *const *x, unsigned n)
{
	/* Where push_batch puts its first: the deque's bottom, its owner's own. */
	atomic_store_explicit(&w->batch_top,
			      atomic_load_explicit(&w->dq.bottom, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&w->batch_ns, weft__mono_ns(), memory_order_relaxed);
	weft__deque_push_batch(&w->dq, x, n);
	atomic_thread_fence(memory_order_seq_cst);
	weft__notify_strict(w->eng);
}

/*
 * With several workers, each takes the head in turn: up to INBOX_TAKE tasks, then
 * it gives the head back, runs the oldest and keeps the rest on its deque as a
 * batch, which leaves it oldest first, to this thread or to an idle one.
 */
static __attribute__((noinline)) struct weft_task *inbox_take_turn(struct weft__worker *w)
{
	struct weft__engine *eng = w->eng;
	struct weft_task *head, *t, *more[INBOX_TAKE - 1];
	unsigned n = 0;

	/* Acquire pairs with the release that gave the head back. */
	head = atomic_exchange_explicit(&eng->inbox_head, INBOX_HELD, memory_order_acquire);
	if (head == INBOX_HELD)
		return NULL;
	t = inbox_pop(eng, &head);
	while (t && n < INBOX_TAKE - 1 && (more[n] = inbox_pop(eng, &head)))
		n++;
	atomic_store_explicit(&eng->inbox_head, head, memory_order_release);
	/*
	 * find_work looked in the deque first: it is empty, and an array is never
	 * smaller than WEFT_DEQUE_CAP, so the batch fits it.
	 */
	if (n)
		batch_publish(w, (void *const *)more, n);
	return t;
}

/*
 * The inbox's next task. A single worker owns the head; several take turns (out of
 * line: its array would widen the frame of find_work, which every wait calls).
 */
static inline struct weft_task *inbox_take(struct weft__worker *w)
{
	struct weft__engine *eng = w->eng;
	struct weft_task *head, *t;

	if (eng->nthreads > 1)
		return inbox_take_turn(w);
	/* Read and written by this thread alone. */
	head = atomic_load_explicit(&eng->inbox_head, memory_order_relaxed);
	t = inbox_pop(eng, &head);
	atomic_store_explicit(&eng->inbox_head, head, memory_order_relaxed);
	return t;
}

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * Look for work in other threads' deques, same domain first, from a random start,
 * then the others: @take(@w, i) for each victims[i] until it finds some.
 */
static inline struct weft_task *
steal_from(struct weft__worker *w,
	   struct weft_task *(*take)(struct weft__worker *, unsigned))
{
	unsigned n = w->nvictims, j, start, lo, cnt;
	struct weft_task *t;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		lo = pass ? w->nlocal : 0;
		cnt = pass ? n - w->nlocal : w->nlocal;
		if (!cnt)
			continue;
		start = (unsigned)(xorshift(&w->rng) % cnt);
		for (j = 0; j < cnt; j++) {
			t = take(w, lo + (start + j) % cnt);
			if (t) {
				counter_inc(&w->cache.steals);
				return t;
			}
		}
	}
	return NULL;
}

static inline struct weft__worker *victim(struct weft__worker *w, unsigned i)
{
	return w->eng->workers[w->victims[i]];
}

/* The oldest task of victims[@i]'s deque, if a few tries win it. */
static inline struct weft_task *steal_one(struct weft__worker *w, unsigned vi)
{
	struct weft__worker *v = victim(w, vi);
	unsigned i = 0;
	void *t;

	do {
		t = weft__deque_steal(&v->dq);
	} while (t == WEFT_DEQUE_ABORT && ++i < STEAL_TRIES);
	return t == WEFT_DEQUE_ABORT ? NULL : t;
}

/*
 * The older half of victims[@vi]'s batch, which holds older submissions than the
 * inbox. To an idle thread with tasks in the inbox, at once: it would otherwise
 * take newer work than the batch's, and the task the batch's owner just started
 * may run long. Otherwise once that thread has started none of it for HELD_UP_NS:
 * it is held up by a task that runs long. One that goes on through its batch is
 * left to it, and a thread going on from a task of its own takes newer work from
 * the inbox meanwhile: moving half a batch costs a move of each of those tasks'
 * lines, and on a machine whose cores are all busy, time of the core that the
 * submitting thread needs. This thread runs the oldest and keeps the rest as a
 * batch of its own (its deque is empty: find_work looked there first).
 */
static struct weft_task *steal_half(struct weft__worker *w, unsigned vi)
{
	struct weft__deque *dq = &victim(w, vi)->dq;
	/* Relaxed: a stale value only makes a steal wait for the next look. */
	int64_t top = atomic_load_explicit(&dq->top, memory_order_relaxed);
	void *got[INBOX_TAKE];
	unsigned i = 0;
	int64_t now, since;
	int k;

	if (top >= atomic_load_explicit(&dq->batch_end, memory_order_relaxed))
		return NULL;		/* no batch: the clock is not read */
	/*
	 * An idle thread that sees tasks in the inbox is about to take newer work
	 * than the batch holds: the batch's older half comes first, held up or not
	 * (a task just started may be a long one).
	 */
	if (!w->idle || !inbox_ready(w->eng)) {
		struct weft__worker *v = victim(w, vi);

		now = weft__mono_ns();
		if (top == atomic_load_explicit(&v->batch_top, memory_order_relaxed)) {
			/* None of it has left since it was published. */
			since = atomic_load_explicit(&v->batch_ns, memory_order_relaxed);
		} else if (top != w->seen[vi].top) {
			w->seen[vi].top = top;
			w->seen[vi].ns = now;
			return NULL;
		} else {
			since = w->seen[vi].ns;
		}
		if (now - since < HELD_UP_NS)
			return NULL;
	}
	do {
		k = weft__deque_steal_batch(dq, got, INBOX_TAKE);
	} while (k < 0 && ++i < STEAL_TRIES);
	if (k <= 0)
		return NULL;
	w->seen[vi].top = top + k;
	if (k > 1)
		batch_publish(w, got + 1, (unsigned)k - 1);
	return got[0];
}

/* Out of line for steal_half's array, as inbox_take_turn is for its own. */
static __attribute__((noinline)) struct weft_task *steal_batch(struct weft__worker *w)
{
	return steal_from(w, steal_half);
}

static inline struct weft_task *steal(struct weft__worker *w)
{
	return steal_from(w, steal_one);
}

/* No task may start: the engine is paused, and not closing (see find_work). */
static bool start_paused(struct weft__engine *eng)
{
	return unlikely(atomic_load_explicit(&eng->paused, memory_order_relaxed)) &&
	       !atomic_load_explicit(&eng->closing, memory_order_relaxed);
}

static struct weft_task *find_work(struct weft__worker *w)
{
	struct weft__engine *eng = w->eng;
	struct weft_task *t;

	/* Above the pause threshold no task starts until spilling catches up. */
	if (start_paused(eng))
		return NULL;

	if (unlikely(atomic_load_explicit(&eng->prio_count, memory_order_relaxed)) &&
	    atomic_load_explicit(&eng->prio_top, memory_order_relaxed) > 0) {
		t = weft__prio_pop(eng, true);
		if (t) {
			next_flush(w);	/* t may run long */
			return t;
		}
	}
	t = w->run_next;
	if (unlikely(t)) {
		w->run_next = NULL;
		return t;
	}
	if (!weft__deque_empty(&w->dq)) {
		t = weft__deque_take(&w->dq);
		if (t)
			return t;
	}
	/*
	 * A client's tasks start in the order it submitted them: batches that other
	 * threads took from the inbox hold older ones than the inbox does.
	 */
	if (eng->nthreads > 1) {
		t = steal_batch(w);
		if (t)
			return t;
	}
	if (inbox_ready(eng)) {
		t = inbox_take(w);
		if (t)
			return t;
	}
	t = steal(w);
	if (t)
		return t;
	if (atomic_load_explicit(&eng->prio_count, memory_order_seq_cst))
		return weft__prio_pop(eng, false);
	return NULL;
}

/* ---- worker threads ---- */

/*
 * Sleep until a wake-up changes park_seq from @key. The last worker to park first
 * sleeps with a deadline: if it passes with no wake-up, the whole engine has been
 * idle that long, and the pages of freed results go back to the system. Not while
 * paused: the store purges what the limit needs, and the work that resumes would
 * fault the rest in again.
 */
static void park_sleep(struct weft__engine *eng, uint32_t key, bool last)
{
	if (last && !start_paused(eng)) {
		int64_t deadline = weft__mono_ns() +
			atomic_load_explicit(&idle_purge_ns, memory_order_relaxed);

		futex_wait(&eng->park_seq, key, deadline);
		/* Relaxed: a stale key only delays the purge or makes it early. */
		if (atomic_load_explicit(&eng->park_seq, memory_order_relaxed) != key ||
		    weft__mono_ns() < deadline || start_paused(eng))
			return;		/* woken, or early: the caller looks again */
		weft__alloc_purge(eng->alloc, 0);
	}
	futex_wait(&eng->park_seq, key, -1);
}

/*
 * Park until a wake-up, after the re-check that makes a lost one impossible (see
 * weft__notify_strict). @spinning: the caller is registered in nspinning.
 * Return: a task the re-check found, or NULL.
 */
static struct weft_task *park(struct weft__worker *w, bool spinning)
{
	struct weft__engine *eng = w->eng;
	struct weft_task *t;
	uint32_t key;
	bool last;

	key = atomic_load_explicit(&eng->park_seq, memory_order_seq_cst);
	last = atomic_fetch_add_explicit(&eng->nparked, 1, memory_order_seq_cst) + 1 ==
	       eng->nthreads;
	if (spinning)
		atomic_fetch_sub_explicit(&eng->nspinning, 1, memory_order_seq_cst);
	t = find_work(w);
	/*
	 * A queued task not linked yet is not found, but must not be slept past;
	 * unless the engine is paused: then no task would start, and the pause
	 * lifts with a wake-up of every parked thread (after the key was read, or
	 * this read sees it lifted).
	 */
	if (!t && !atomic_load_explicit(&eng->stop, memory_order_seq_cst) &&
	    (inbox_empty(eng) || start_paused(eng))) {
		counter_inc(&w->cache.parks);
		park_sleep(eng, key, last);
	}
	atomic_fetch_sub_explicit(&eng->nparked, 1, memory_order_seq_cst);
	return t;
}

/*
 * No work found: spin a little, then park. Return: a task found meanwhile, or NULL
 * after a wake-up (look again) or when the engine stops (w->eng->stop).
 */
static struct weft_task *idle(struct weft__worker *w)
{
	struct weft__engine *eng = w->eng;
	unsigned i, backoff = 1;
	struct weft_task *t;
	int64_t until;

	w->idle = true;
	/* Out of work: whatever comes next is recorded (a burst's rate is over). */
	if (w->events)
		weft__events_idle(w->events);
	/*
	 * Paused, spinning finds nothing until spilling catches up, which takes
	 * milliseconds, and takes the core from the threads that do it.
	 */
	if (start_paused(eng))
		return park(w, false);
	/*
	 * First a quiet spin, polling with growing pauses and registering nowhere:
	 * between two tasks of a steady stream, touching the shared counters (which
	 * every submit reads) would bounce their line once per task. A quiet spinner
	 * suppresses no wake-up, so no registration is needed for correctness.
	 */
	for (i = 0; i < QUIET_ROUNDS; i++) {
		t = find_work(w);
		if (t)
			return t;
		for (unsigned k = 0; k < backoff; k++)
			cpu_relax();
		/* At the most, yield: a thread sharing this core may make our work. */
		if (backoff < MAX_BACKOFF)
			backoff *= 2;
		else
			sched_yield();
	}
	/* Then a registered spin that yields the core each round (see SPIN_NS). */
	until = weft__mono_ns() + SPIN_NS;
	atomic_fetch_add_explicit(&eng->nspinning, 1, memory_order_seq_cst);
	for (i = 1;; i++) {
		if (i % SPIN_ROUNDS == 0 && weft__mono_ns() > until)
			break;
		t = find_work(w);
		if (t) {
			/* The last spinner found work: another may be needed. */
			if (atomic_fetch_sub_explicit(&eng->nspinning, 1,
						      memory_order_seq_cst) == 1)
				weft__notify_strict(eng);
			return t;
		}
		if (atomic_load_explicit(&eng->stop, memory_order_relaxed) ||
		    start_paused(eng))
			break;
		/* The thread that would give us work may be waiting for this core. */
		sched_yield();
	}
	return park(w, true);
}

void *weft__worker_main(void *arg)
{
	struct weft__worker *w = arg;
	struct weft__engine *eng = w->eng;
	struct weft_task *t;
	int ret;

	weft__tl_worker = w;
	weft__name_thread("weft-w%u", w->id);
	if (weft__topo_can_bind(eng->topo)) {
		ret = weft__topo_bind_self(eng->topo, w->core);
		if (ret)
			weft__log(WEFT_LOG_INFO, "core", "thread %u: not pinned to core %u: %s",
				  w->id, w->core, weft_strerror(ret));
	}
	while (!atomic_load_explicit(&eng->stop, memory_order_acquire)) {
		t = find_work(w);
		if (!t)
			t = idle(w);
		w->idle = false;
		if (t)
			weft__task_run(w, t);
	}
	weft__tl_worker = NULL;
	return NULL;
}

/* ---- waiting ---- */

static int help_until(struct weft__worker *w, bool (*done)(void *, bool),
		      bool (*stuck)(const struct weft__worker *, void *), void *arg,
		      int64_t deadline_ns)
{
	struct weft__engine *eng = w->eng;
	unsigned idle_rounds = 0;
	bool looked = false;
	struct weft_task *t;
	uint32_t key;

	for (;;) {
		if (done(arg, false))
			return 0;
		t = find_work(w);
		if (t) {
			weft__task_run(w, t);
			idle_rounds = 0;
			continue;
		}
		/*
		 * Nothing to run here: is what we wait for waiting for us? Once is
		 * enough, as the answer holds for as long as this wait does. Asked
		 * only now, so that fork-join waits, which find their child queued,
		 * never pay for it.
		 */
		if (!looked) {
			looked = true;
			if (stuck(w, arg))
				return done(arg, false) ? 0 : -EDEADLK;
		}
		if (deadline_ns >= 0 && weft__mono_ns() >= deadline_ns)
			return done(arg, false) ? 0 : -ETIMEDOUT;
		if (++idle_rounds < SPIN_ROUNDS) {
			cpu_relax();
			continue;
		}
		/*
		 * What we wait for runs elsewhere. Sleep until something ends, but not
		 * long: new work for us does not wake done_seq.
		 */
		key = atomic_load_explicit(&eng->done_seq, memory_order_seq_cst);
		if (done(arg, true))
			return 0;
		int64_t nap = weft__mono_ns() + HELP_NAP_NS;

		futex_wait(&eng->done_seq, key,
			   deadline_ns >= 0 && deadline_ns < nap ? deadline_ns : nap);
	}
}

int weft__engine_help(struct weft__worker *w, bool (*done)(void *, bool),
		      bool (*stuck)(const struct weft__worker *, void *), void *arg,
		      int64_t deadline_ns)
{
	int ret = help_until(w, done, stuck, arg, deadline_ns);

	/* The waiting task goes on: what it would have run next must be stealable. */
	next_flush(w);
	return ret;
}

int weft__engine_block(struct weft__engine *eng, bool (*done)(void *, bool), void *arg,
		       int64_t deadline_ns)
{
	unsigned i;
	uint32_t key;

	int64_t until = weft__mono_ns() + SPIN_NS;

	/* Spin first (see SPIN_NS), but not past the caller's deadline. */
	if (deadline_ns >= 0 && deadline_ns < until)
		until = deadline_ns;
	for (i = 1;; i++) {
		if (done(arg, false))
			return 0;
		if (i % SPIN_ROUNDS == 0) {
			if (weft__mono_ns() > until)
				break;
			/*
			 * A worker that shares this core cannot run what we wait
			 * for while we spin: let it, once per round of polls.
			 */
			sched_yield();
		}
		cpu_relax();
	}
	for (;;) {
		/* Read before WT_WAITER is set; pairs with weft__engine_wake_waiters. */
		key = atomic_load_explicit(&eng->done_seq, memory_order_seq_cst);
		if (done(arg, true))
			return 0;
		if (deadline_ns >= 0 && weft__mono_ns() >= deadline_ns)
			return -ETIMEDOUT;
		futex_wait(&eng->done_seq, key, deadline_ns);
	}
}
