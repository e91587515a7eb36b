// SPDX-License-Identifier: MIT
/*
 * Unit tests of the task records: dependency counting, reference counts, the
 * per-thread free lists, and result bytes in alloc/'s counter.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "core.h"

static struct weft_client *open_threads(unsigned n)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = n };
	struct weft_client *c;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	return c;
}

static _Atomic int gate;

static int wait_gate(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		     const void *arg, size_t arglen)
{
	while (!atomic_load(&gate))
		;
	return 0;
}

static int big(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen)
{
	void *p = weft_output(ctx, 1000);

	if (!p)
		return -ENOMEM;
	memset(p, 1, 1000);
	return 0;
}

static int noop(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		const void *arg, size_t arglen)
{
	return 0;
}

Test(engine, pending_counts_unfinished_dependencies, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *g, *a, *d, *deps[3];

	atomic_store(&gate, 0);
	cr_assert_eq(weft_submit(c, wait_gate, NULL, 0, NULL, 0, NULL, &g), 0);
	cr_assert_eq(weft_scatter(c, "x", 1, &a), 0);
	deps[0] = g;
	deps[1] = a;
	deps[2] = g;
	cr_assert_eq(weft_submit(c, noop, deps, 3, NULL, 0, NULL, &d), 0);
	/* The scattered input had ended: it does not count; g counts twice. */
	cr_assert_eq(atomic_load(&d->task->pending), 2);
	cr_assert_eq(atomic_load(&d->task->sd) & WT_STATE_MASK, WT_WAITING);
	/* d holds one reference on g's task per edge, the user one, the engine one. */
	cr_assert_eq(atomic_load(&g->task->refs), 4);
	atomic_store(&gate, 1);
	cr_assert_eq(weft_wait(d, -1), 0);
	cr_assert_eq(atomic_load(&d->task->pending), 0);
	/* Once d has run, only the user's reference is left on g. */
	while (atomic_load(&g->task->refs) != 1)
		;
	weft_release(g);
	weft_release(a);
	weft_release(d);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, result_bytes_live_exactly_while_referenced, .timeout = 10)
{
	struct weft_client *c = open_threads(2);
	struct weft__engine *eng = weft__client_engine(c);
	struct weft_future *b, *d;
	size_t one;

	cr_assert_eq(weft__alloc_bytes(eng->alloc), 0);
	cr_assert_eq(weft_submit(c, big, NULL, 0, NULL, 0, NULL, &b), 0);
	cr_assert_eq(weft_wait(b, -1), 0);
	one = weft__alloc_bytes(eng->alloc);
	cr_assert_geq(one, 1000);
	cr_assert_eq(one, b->usable);
	/* A dependent keeps it alive after the user lets go, until the dependent runs. */
	cr_assert_eq(weft_submit(c, noop, &b, 1, NULL, 0, NULL, &d), 0);
	weft_release(b);
	cr_assert_eq(weft_wait(d, -1), 0);
	while (weft__alloc_bytes(eng->alloc))
		;	/* the dependent's thread drops it right after it ends */
	weft_release(d);
	cr_assert_eq(weft_client_close(c), 0);
}

#define HELD_BYTES (32u << 20)

static int held_result(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		       const void *arg, size_t arglen)
{
	void *p = weft_output(ctx, HELD_BYTES);

	if (!p)
		return -ENOMEM;
	memset(p, 1, HELD_BYTES);	/* pages the arena then holds once freed */
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

Test(engine, freed_result_pages_go_back_once_every_worker_is_idle, .timeout = 20)
{
	struct weft_client *c;
	struct weft__engine *eng;
	struct weft_future *g, *r;
	int i;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	cr_skip_test("sanitizer builds take results from libc, which keeps no pages");
#endif
	weft__engine_set_idle_purge(20 * 1000000);
	c = open_threads(2);
	eng = weft__client_engine(c);
	/* One worker stays busy until the gate opens: the engine is not idle. */
	atomic_store(&gate, 0);
	cr_assert_eq(weft_submit(c, wait_gate, NULL, 0, NULL, 0, NULL, &g), 0);
	cr_assert_eq(weft_submit(c, held_result, NULL, 0, NULL, 0, NULL, &r), 0);
	cr_assert_eq(weft_wait(r, -1), 0);
	weft_release(r);
	while (weft__alloc_bytes(eng->alloc))
		;	/* the worker may drop the last reference just after */
	cr_assert_geq(weft__alloc_held(eng->alloc), HELD_BYTES);
	/* Ten idle periods with one worker parked and one busy: nothing goes. */
	sleep_ms(200);
	cr_assert_geq(weft__alloc_held(eng->alloc), HELD_BYTES,
		      "pages were given back while a task ran");
	atomic_store(&gate, 1);
	cr_assert_eq(weft_wait(g, -1), 0);
	weft_release(g);
	for (i = 0; i < 500 && weft__alloc_held(eng->alloc) >= HELD_BYTES; i++)
		sleep_ms(10);
	cr_assert_lt(weft__alloc_held(eng->alloc), HELD_BYTES,
		     "an idle engine kept %zu bytes of freed pages",
		     weft__alloc_held(eng->alloc));
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, records_are_reused_from_free_lists, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft__engine *eng = weft__client_engine(c);
	struct weft_future *f[100];

	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 100; i++)
			cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f[i]), 0);
		for (int i = 0; i < 100; i++) {
			cr_assert_eq(weft_wait(f[i], -1), 0);
			weft_release(f[i]);
		}
	}
	/* 100k tasks, at most 100 alive at once: a few slabs of 256 suffice. */
	cr_assert_leq(eng->nslabs, 8, "%zu slabs for 100 live tasks", eng->nslabs);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, failed_allocation_of_a_record_returns_enomem, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f = NULL;

	/* The client thread's cache is empty before its first submit. */
	weft__alloc_fail_nth(1);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f), -ENOMEM);
	cr_assert_null(f);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

static int big_hooked(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		      const void *arg, size_t arglen)
{
	/* Fail exactly this task's output allocation. */
	weft__alloc_fail_nth(1);
	if (!weft_output(ctx, 1000))
		return weft_fail(ctx, "no memory for 1000 bytes");
	return 0;
}

Test(engine, output_allocation_failure_fails_the_task, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_task_opts o = { .size = sizeof(o), .label = "big_hooked" };
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, big_hooked, NULL, 0, NULL, 0, &o, &f), 0);
	cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(f),
			 "task 'big_hooked' failed: no memory for 1000 bytes");
	weft_release(f);
	cr_assert_eq(weft__alloc_bytes(weft__client_engine(c)->alloc), 0);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, future_task_mapping_holds_for_every_output, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = 1000 };
	static struct weft_future *outs[1000];
	struct weft_future *one;

	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &one), 0);
	cr_assert_eq((uintptr_t)one % WEFT_RECORD_ALIGN, WEFT_OUT1_RESIDUE);
	cr_assert_eq(weft__future_task(one), one->task);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, &o, outs), 0);
	for (int i = 0; i < 1000; i++) {
		cr_assert_neq((uintptr_t)outs[i] % WEFT_RECORD_ALIGN, WEFT_OUT1_RESIDUE,
			      "output %d sits where a record's own output does", i);
		cr_assert_eq(weft__future_task(outs[i]), weft__future_task(outs[0]));
	}
	cr_assert_eq(weft_wait(outs[999], -1), 0);
	for (int i = 0; i < 1000; i++)
		weft_release(outs[i]);
	weft_release(one);
	cr_assert_eq(weft_client_close(c), 0);
}

/* How many caches of threads that are not workers @c's engine keeps. */
static unsigned ext_caches(struct weft_client *c)
{
	struct weft__engine *eng = weft__client_engine(c);
	struct weft__cache *cache;
	unsigned n = 0;

	pthread_mutex_lock(&eng->pool_lock);
	for (cache = eng->ext_caches; cache; cache = cache->next)
		n++;
	pthread_mutex_unlock(&eng->pool_lock);
	return n;
}

static void run_one(struct weft_client *c)
{
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0);
	weft_release(f);
}

Test(engine, a_thread_alternating_between_clients_keeps_one_cache_each, .timeout = 20)
{
	struct weft_client *a = open_threads(1), *b = open_threads(1);

	for (int i = 0; i < 1000; i++) {
		run_one(a);
		run_one(b);
	}
	cr_assert_eq(ext_caches(a), 1);
	cr_assert_eq(ext_caches(b), 1);
	cr_assert_eq(weft__ext_caches_owned(), 2);
	cr_assert_eq(weft_client_close(a), 0);
	cr_assert_eq(weft_client_close(b), 0);
}

static void *submitter(void *arg)
{
	struct weft_client *c = arg;

	for (int i = 0; i < 10; i++)
		run_one(c);
	return NULL;
}

Test(engine, threads_that_come_and_go_reuse_the_caches_they_leave, .timeout = 30)
{
	struct weft_client *c = open_threads(2);
	struct weft_stats st = { .size = sizeof(st) };
	pthread_t th[4];

	/* 50 rounds of 4 threads at once: caches for 4 threads, not for 200. */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 4; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, submitter, c), 0);
		for (int i = 0; i < 4; i++)
			cr_assert_eq(pthread_join(th[i], NULL), 0);
	}
	cr_assert_leq(ext_caches(c), 4);
	cr_assert_geq(ext_caches(c), 1);
	/* Counters carried over from thread to thread: every task is counted once. */
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.tasks_run, 2000, "%llu tasks counted",
		     (unsigned long long)st.tasks_run);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, a_thread_lets_go_of_caches_whose_clients_closed, .timeout = 30)
{
	/* A long-lived thread that opens and closes clients holds one cache at most. */
	for (int i = 0; i < 20; i++) {
		struct weft_client *c = open_threads(1);

		run_one(c);
		cr_assert_eq(weft__ext_caches_owned(), 1);
		cr_assert_eq(weft_client_close(c), 0);
	}
}

static void *close_then_exit(void *arg)
{
	struct weft_client *c = arg;

	run_one(c);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(weft__ext_caches_owned(), 1);
	return NULL;	/* the cache's last holder is this thread's exit */
}

Test(engine, a_thread_exiting_after_its_client_closed_frees_its_cache, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	pthread_t th;

	/* A leak or a double free shows under ASan; the count above cannot. */
	cr_assert_eq(pthread_create(&th, NULL, close_then_exit, c), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
}

#define FULL_CHILDREN 5000	/* more than a deque holds before it must grow */

static unsigned grows_refused;

static int child_value(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		       const void *arg, size_t arglen)
{
	uint64_t *p = weft_output(ctx, sizeof(*p));

	if (!p)
		return -ENOMEM;
	memcpy(p, arg, sizeof(*p));
	*p *= 3;
	return 0;
}

static _Atomic int holder_started;

/* Keeps a second thread busy, so that nothing steals from the spawner's deque. */
static int hold_a_thread(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
			 const void *arg, size_t arglen)
{
	atomic_store(&holder_started, 1);
	return wait_gate(ctx, in, nin, arg, arglen);
}

/*
 * Spawns FULL_CHILDREN with every grow of its deque failing, the other thread (if
 * any, *arg) held meanwhile; returns their sum.
 */
static int spawn_with_full_deque(struct weft_ctx *ctx, const struct weft_buf *in,
				 size_t nin, const void *arg, size_t arglen)
{
	static struct weft_future *f[FULL_CHILDREN];
	uint64_t sum = 0, *out;
	int ret = 0;

	if (*(const unsigned *)arg > 1)
		while (!atomic_load(&holder_started))
			;
	weft__deque_fail_grows(UINT_MAX);
	for (uint64_t i = 0; i < FULL_CHILDREN; i++) {
		ret = weft_spawn(ctx, child_value, NULL, 0, &i, sizeof(i), NULL, &f[i]);
		if (ret)
			break;
	}
	grows_refused = UINT_MAX - weft__deque_fail_grows(0);
	atomic_store(&gate, 1);
	if (ret)
		return weft_fail(ctx, "spawn: %s", weft_strerror(ret));
	for (unsigned i = 0; i < FULL_CHILDREN; i++) {
		struct weft_buf b;

		if (!ret)
			ret = weft_result(f[i], &b);
		if (!ret)
			sum += *(const uint64_t *)b.data;
		weft_release(f[i]);
	}
	if (ret)
		return weft_fail(ctx, "a child: %s", weft_strerror(ret));
	out = weft_output(ctx, sizeof(*out));
	if (!out)
		return -ENOMEM;
	*out = sum;
	return 0;
}

/*
 * A worker whose deque cannot grow sends what it spawns past the deque's capacity
 * to the inbox: every child still runs once, with one thread (which then runs its
 * own inbox from inside a task) and with two (which take turns at it).
 */
static void full_deque_loses_nothing(unsigned nthreads)
{
	struct weft_client *c = open_threads(nthreads);
	struct weft__engine *eng = weft__client_engine(c);
	int64_t caps[2];
	struct weft_future *f, *h = NULL;
	struct weft_buf b;

	for (unsigned i = 0; i < nthreads; i++)
		caps[i] = atomic_load(&eng->workers[i]->dq.array)->mask;
	atomic_store(&gate, 0);
	atomic_store(&holder_started, 0);
	if (nthreads > 1)
		cr_assert_eq(weft_submit(c, hold_a_thread, NULL, 0, NULL, 0, NULL, &h), 0);
	cr_assert_eq(weft_submit(c, spawn_with_full_deque, NULL, 0, &nthreads,
				 sizeof(nthreads), NULL, &f), 0);
	cr_assert_eq(weft_result(f, &b), 0, "%s", weft_future_error(f));
	/* 3 * (0 + 1 + ... + FULL_CHILDREN - 1) */
	cr_assert_eq(*(const uint64_t *)b.data,
		     3ull * FULL_CHILDREN * (FULL_CHILDREN - 1) / 2);
	/* The deque was full and refused to grow: the children past it went elsewhere. */
	cr_assert_gt(grows_refused, 0);
	for (unsigned i = 0; i < nthreads; i++)
		cr_assert_eq(atomic_load(&eng->workers[i]->dq.array)->mask, caps[i]);
	weft_release(f);
	if (h) {
		cr_assert_eq(weft_wait(h, -1), 0);
		weft_release(h);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

Test(engine, a_full_deque_that_cannot_grow_sends_spawns_to_the_inbox, .timeout = 30)
{
	full_deque_loses_nothing(1);
}

Test(engine, a_full_deque_that_cannot_grow_sends_spawns_to_the_inbox_two_threads,
     .timeout = 30)
{
	full_deque_loses_nothing(2);
}

/* regress_22: in a debug build a released future used again aborts, naming the call. */
Test(engine, regress_22_a_stale_future_aborts_a_debug_build, .signal = SIGABRT, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	weft__stale_aborts = true;
	cr_assert_eq(weft_submit(c, wait_gate, NULL, 0, NULL, 0, NULL, &f), 0);
	atomic_store(&gate, 1);
	cr_assert_eq(weft_wait(f, -1), 0);
	weft_release(f);
	weft_release(f);
}

Test(engine, regress_22_a_client_closed_twice_aborts_a_debug_build, .signal = SIGABRT,
     .timeout = 10)
{
	struct weft_client *c = open_threads(1);

	weft__stale_aborts = true;
	cr_assert_eq(weft_client_close(c), 0);
	weft_client_close(c);
}

/*
 * Memory over time spans the whole run in a bounded table: a sample each period
 * at most, and when the table is full every other one goes (the first stays) and
 * the period doubles.
 */
Test(engine, memory_samples_span_the_run_in_a_bounded_table)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 1 };
	struct weft__view_sample *out = calloc(WEFT_SAMPLES, sizeof(*out));
	struct weft_client *c;
	struct weft__engine *eng;
	int64_t t0 = weft__mono_ns(), t = t0;
	unsigned n;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	eng = weft__client_engine(c);
	/* Not due yet, whatever the clock says: no new sample in the same period. */
	weft__samples_take(eng, t, true);
	weft__samples_tick(eng, &eng->samples, t + WEFT_SAMPLE_NS / 2);
	cr_assert_eq(weft__samples_copy(&eng->samples, out, WEFT_SAMPLES), 1);
	/* An hour of ticks, one every 10 ms. */
	for (int i = 0; i < 360000; i++)
		weft__samples_tick(eng, &eng->samples, t += 10000000);
	n = weft__samples_copy(&eng->samples, out, WEFT_SAMPLES);
	cr_assert_leq(n, WEFT_SAMPLES);
	cr_assert_geq(n, WEFT_SAMPLES / 2);
	cr_assert_eq(out[0].t_ns, (uint64_t)t0, "the run's start is kept");
	cr_assert_geq(out[n - 1].t_ns + eng->samples.period_ns, (uint64_t)t, "its end too");
	for (unsigned i = 1; i < n; i++)
		cr_assert_gt(out[i].t_ns, out[i - 1].t_ns);
	/* 3600 s in at most 1024 samples: the period grew to 4 s or more. */
	cr_assert_geq(eng->samples.period_ns, 32 * (int64_t)WEFT_SAMPLE_NS);
	/* A copy into less room gets the latest. */
	cr_assert_eq(weft__samples_copy(&eng->samples, out, 3), 3);
	cr_assert_geq(out[2].t_ns + eng->samples.period_ns, (uint64_t)t);
	free(out);
	cr_assert_eq(weft_client_close(c), 0);
}
