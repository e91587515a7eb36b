// SPDX-License-Identifier: MIT
/* Priorities, timeouts, wait_any, scatter, and named functions. */
#include <pthread.h>

#include "../common.h"

static _Atomic int order[16];
static _Atomic int norder;

TASK(record)
{
	int v;

	memcpy(&v, arg, sizeof(v));
	order[atomic_fetch_add(&norder, 1)] = v;
	return 0;
}

Test(sched, higher_priority_runs_first, .timeout = 10)
{
	struct weft_client *c;
	int prios[] = { 1, 5, 0, 3, -2, 5, 0 };
	int expect[] = { 5, 5, 3, 1, 0, 0, -2 };
	struct weft_future *g, *f[7];

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(1);
	atomic_store(&gate_open, 0);
	atomic_store(&norder, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	/* The only thread must be inside the gate before the others arrive, or a
	 * positive priority rightly runs before the gate itself. */
	struct weft_stats st = { .size = sizeof(st) };

	do {
		cr_assert_eq(weft_stats(c, &st), 0);
	} while (!st.tasks_run);
	for (int i = 0; i < 7; i++) {
		struct weft_task_opts o = { .size = sizeof(o), .priority = prios[i] };

		cr_assert_eq(weft_submit(c, record, NULL, 0, &prios[i], sizeof(int), &o,
					 &f[i]), 0);
	}
	atomic_store(&gate_open, 1);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(weft_wait(f[i], -1), 0);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(order[i], expect[i], "position %d: %d, expected %d", i,
			     order[i], expect[i]);
	for (int i = 0; i < 7; i++)
		weft_release(f[i]);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(sched, wait_times_out_and_polls, .timeout = 10)
{
	struct weft_client *c;
	struct weft_future *g;

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(1);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	cr_assert_eq(weft_wait(g, 0), -ETIMEDOUT);
	cr_assert_eq(weft_wait(g, 20 * 1000 * 1000), -ETIMEDOUT);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(g, 5ll * 1000 * 1000 * 1000), 0);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(sleepy)
{
	uint64_t ms;
	struct timespec ts;

	memcpy(&ms, arg, 8);
	ts.tv_sec = 0;
	ts.tv_nsec = ms * 1000000;
	nanosleep(&ts, NULL);
	return put_u64(ctx, ms);
}

Test(sched, wait_any_returns_the_first_to_end, .timeout = 10)
{
	struct weft_client *c;
	struct weft_future *fs[2];

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &fs[0]), 0);
	fs[1] = submit_u64(c, sleepy, NULL, 0, 20);
	cr_assert_eq(weft_wait_any(fs, 2, 0), -ETIMEDOUT);
	cr_assert_eq(weft_wait_any(fs, 2, -1), 1);
	cr_assert_eq(weft_wait_any(fs, 1, 1000000), -ETIMEDOUT);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait_any(fs, 1, -1), 0);
	weft_release(fs[0]);
	weft_release(fs[1]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(sched, blocked_waiter_wakes_when_task_ends, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f = submit_u64(c, sleepy, NULL, 0, 50);

	/* Long enough that the client thread sleeps on the futex, not spins. */
	cr_assert_eq(weft_wait(f, -1), 0);
	cr_assert_eq(result_u64(f), 50);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(sched, scatter_feeds_tasks, .timeout = 10)
{
	struct weft_client *c = open_threads(2);
	uint64_t v = 40;
	char big[4096];
	struct weft_future *s, *b, *t;
	struct weft_buf r;

	memset(big, 'z', sizeof(big));
	cr_assert_eq(weft_scatter(c, &v, sizeof(v), &s), 0);
	cr_assert_eq(weft_scatter(c, big, sizeof(big), &b), 0);
	if (!on_cluster())	/* a cluster's total has the other clients' results */
		cr_assert_geq(mem_bytes(c), sizeof(big));
	memset(big, 0, sizeof(big));
	t = submit_u64(c, sum, &s, 1, 2);
	cr_assert_eq(result_u64(t), 42);
	cr_assert_eq(weft_result(b, &r), 0);
	cr_assert_eq(r.len, 4096);
	cr_assert_eq(((const char *)r.data)[4095], 'z', "scatter copies the bytes");
	weft_release(s);
	weft_release(b);
	weft_release(t);
	if (!on_cluster())
		cr_assert_eq(mem_bytes(c), 0);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(named_twice)
{
	uint64_t v;

	memcpy(&v, arg, 8);
	return put_u64(ctx, 2 * v);
}

Test(sched, submit_named_finds_registered_functions, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f = NULL;
	uint64_t v = 21;

	cr_assert_eq(weft_submit_named(c, "named_twice", NULL, 0, &v, 8, NULL, &f), 0);
	cr_assert_eq(result_u64(f), 42);
	weft_release(f);
	f = NULL;
	if (on_cluster()) {	/* only the worker knows: the task fails there */
		cr_assert_eq(weft_submit_named(c, "no_such_task", NULL, 0, &v, 8, NULL, &f), 0);
		cr_assert_eq(weft_wait(f, -1), WEFT_ENOFN);
		cr_assert(strstr(weft_future_error(f), "no_such_task"), "%s",
			  weft_future_error(f));
		weft_release(f);
		f = NULL;
	} else {
		cr_assert_eq(weft_submit_named(c, "no_such_task", NULL, 0, &v, 8, NULL, &f),
			     WEFT_ENOFN);
	}
	cr_assert_null(f);
	cr_assert_eq(weft_submit_named(c, NULL, NULL, 0, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit_named(NULL, "named_twice", NULL, 0, NULL, 0, NULL, &f),
		     -EINVAL);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(sched, register_rejects_bad_and_duplicate_names)
{
	char long_name[300];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	cr_assert_eq(weft_register("named_twice", noop), -EEXIST);
	cr_assert_eq(weft_register("named_twice", named_twice), -EEXIST);
	cr_assert_eq(weft_register(NULL, noop), -EINVAL);
	cr_assert_eq(weft_register("", noop), -EINVAL);
	cr_assert_eq(weft_register("x", NULL), -EINVAL);
	cr_assert_eq(weft_register(long_name, noop), -EINVAL);
	/* Many names: the table grows. */
	for (int i = 0; i < 500; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fn_%d", i);
		cr_assert_eq(weft_register(name, noop), 0);
	}
	cr_assert_eq(weft_register("fn_250", noop), -EEXIST);
}

Test(sched, label_defaults_to_the_registered_name, .timeout = 10)
{
	struct weft_client *c;
	struct weft_future *g, *f;

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(1);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	cr_assert_eq(weft_submit_named(c, "named_twice", &g, 1, NULL, 0, NULL, &f), 0);
	cr_assert_eq(weft_cancel(f), 0);
	cr_assert_str_eq(weft_future_error(f), "task 'named_twice' was cancelled");
	atomic_store(&gate_open, 1);
	weft_release(f);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
}

static void *submit_from_thread(void *arg)
{
	struct weft_client *c = arg;
	struct weft_future *f = submit_u64(c, sum, NULL, 0, 7);

	cr_assert_eq(weft_wait(f, 5ll * 1000 * 1000 * 1000), 0, "a submitted task never ran");
	cr_assert_eq(result_u64(f), 7);
	weft_release(f);
	return NULL;
}

Test(sched, submit_wakes_parked_threads, .timeout = 60)
{
	struct weft_client *c;
	struct weft_stats st = { .size = sizeof(st) };
	struct timespec idle = { 0, 2 * 1000 * 1000 };	/* past the spin: all park */

	EMBEDDED_ONLY("the engine's threads, and what its tasks record in the test's process");
	c = open_threads(2);
	for (int i = 0; i < 100; i++) {
		pthread_t th;

		nanosleep(&idle, NULL);
		/* Alternate the client thread and a new thread, which has no cache yet. */
		if (i % 2) {
			cr_assert_eq(pthread_create(&th, NULL, submit_from_thread, c), 0);
			pthread_join(th, NULL);
		} else {
			submit_from_thread(c);
		}
	}
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_geq(st.parks, 100, "threads did not park: the test tested nothing");
	cr_assert_eq(st.tasks_run, 100);
	cr_assert_eq(weft_client_close(c), 0);
}

static _Atomic int started_seq;

TASK(note_start)
{
	int *slot = *(int *const *)arg;

	*slot = atomic_fetch_add(&started_seq, 1);
	return 0;
}

/* One thread starts a client's tasks in the order they were submitted. */
Test(sched, one_thread_starts_tasks_in_submit_order, .timeout = 60)
{
	enum { N = 20000 };
	struct weft_client *c;
	static int seq[N];
	struct weft_future **f = malloc(N * sizeof(*f));

	EMBEDDED_ONLY("the engine's threads, and what its tasks record in the test's process");
	c = open_threads(1);
	for (int round = 0; round < 3; round++) {
		atomic_store(&started_seq, 0);
		for (int i = 0; i < N; i++) {
			int *slot = &seq[i];

			cr_assert_eq(weft_submit(c, note_start, NULL, 0, &slot, sizeof(slot),
						 NULL, &f[i]), 0);
			/* Now and then let the queue run dry, so that it drains and fills. */
			if (i % (round * 500 + 7) == 0)
				cr_assert_eq(weft_wait(f[i], -1), 0);
		}
		for (int i = 0; i < N; i++) {
			cr_assert_eq(weft_wait(f[i], -1), 0);
			weft_release(f[i]);
		}
		for (int i = 0; i < N; i++)
			cr_assert_eq(seq[i], i, "round %d: task %d started as number %d", round,
				     i, seq[i]);
	}
	free(f);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(note_thread)
{
	pthread_t *slot = *(pthread_t *const *)arg;

	*slot = pthread_self();
	return 0;
}

/*
 * A chain behind a gate unfolds on the thread that opens it: each task, as it ends,
 * hands the next to its own thread, and the other thread never gets one to steal.
 */
Test(sched, a_chain_stays_on_the_thread_that_ends_each_link, .timeout = 60)
{
	enum { N = 2000 };
	struct weft_client *c;
	static pthread_t ran_on[N];
	struct weft_future *g, *prev, *f[N];

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	prev = g;
	for (int i = 0; i < N; i++) {
		pthread_t *slot = &ran_on[i];

		cr_assert_eq(weft_submit(c, note_thread, &prev, 1, &slot, sizeof(slot), NULL,
					 &f[i]), 0);
		prev = f[i];
	}
	atomic_store_explicit(&gate_open, 1, memory_order_release);
	cr_assert_eq(weft_wait(f[N - 1], -1), 0);
	for (int i = 1; i < N; i++)
		cr_assert(pthread_equal(ran_on[i], ran_on[0]), "link %d ran on another thread",
			  i);
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
}

static _Atomic int follower_ran;

TASK(follower)
{
	atomic_store(&follower_ran, 1);
	return 0;
}

/* Spins until the follower has run, for at most 10 s: true if it did. */
static bool follower_runs_meanwhile(void)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (atomic_load(&follower_ran))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 10);
	return false;
}

/*
 * The task that a task's end makes ready is kept to run next on that thread, but
 * not while the thread goes back to a waiting task's code: then another thread
 * must be able to take it. Here the waiter runs the dependency itself (it is on its
 * own deque), then spins until the dependent has run.
 */
TASK(wait_then_spin)
{
	struct weft_future *a, *b;
	int ok;

	if (weft_spawn(ctx, noop, NULL, 0, NULL, 0, NULL, &a) ||
	    weft_spawn(ctx, follower, &a, 1, NULL, 0, NULL, &b))
		return weft_fail(ctx, "spawn failed");
	if (weft_wait(a, -1))
		return weft_fail(ctx, "wait failed");
	ok = follower_runs_meanwhile();
	weft_wait(b, -1);
	weft_release(a);
	weft_release(b);
	return ok ? 0 : weft_fail(ctx, "the dependent did not run while its waiter spun");
}

Test(sched, a_waiter_going_on_leaves_what_it_made_ready_to_others, .timeout = 60)
{
	struct weft_client *c;

	EMBEDDED_ONLY("the engine's threads, and what its tasks record in the test's process");
	c = open_threads(2);
	for (int round = 0; round < 20; round++) {
		struct weft_future *f;

		atomic_store(&follower_ran, 0);
		cr_assert_eq(weft_submit(c, wait_then_spin, NULL, 0, NULL, 0, NULL, &f), 0);
		cr_assert_eq(weft_wait(f, -1), 0, "round %d: %s", round, weft_future_error(f));
		weft_release(f);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(spin_for_follower)
{
	return follower_runs_meanwhile() ? 0 :
	       weft_fail(ctx, "the other dependent did not run meanwhile");
}

/*
 * Nor while the thread runs a task of higher priority first: a gate's end makes
 * ready a plain task and one with a priority, which spins until the plain one has
 * run.
 */
Test(sched, a_priority_task_first_leaves_what_was_made_ready_to_others, .timeout = 60)
{
	struct weft_client *c;
	struct weft_task_opts hi = { .size = sizeof(hi), .priority = 1 };

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	for (int round = 0; round < 20; round++) {
		struct weft_future *g, *p, *b;

		atomic_store(&follower_ran, 0);
		atomic_store(&gate_open, 0);
		cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
		cr_assert_eq(weft_submit(c, follower, &g, 1, NULL, 0, NULL, &b), 0);
		cr_assert_eq(weft_submit(c, spin_for_follower, &g, 1, NULL, 0, &hi, &p), 0);
		atomic_store_explicit(&gate_open, 1, memory_order_release);
		cr_assert_eq(weft_wait(p, -1), 0, "round %d: %s", round, weft_future_error(p));
		cr_assert_eq(weft_wait(b, -1), 0);
		weft_release(g);
		weft_release(p);
		weft_release(b);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(thread_name)
{
	char *out = weft_output(ctx, 16);

	(void)in;
	(void)nin;
	(void)arg;
	(void)arglen;
	return out ? pthread_getname_np(pthread_self(), out, 16) : -ENOMEM;
}

/* Workers carry their names (weft-w0, weft-w1, ...) for top -H, perf and gdb. */
Test(sched, tasks_run_on_threads_named_for_weft, .timeout = 10)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *f[8];
	struct weft_buf v;

	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_submit(c, thread_name, NULL, 0, NULL, 0, NULL, &f[i]), 0);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(weft_result(f[i], &v), 0);
		cr_assert(!strcmp(v.data, "weft-w0") || !strcmp(v.data, "weft-w1"),
			  "task %d ran on '%s'", i, (const char *)v.data);
		weft_release(f[i]);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

/*
 * regress_22: a short task submitted between two long ones starts at once on the
 * second thread, rather than waiting behind the first long one while the third,
 * submitted after it, runs.
 */
Test(sched, regress_22_a_short_task_does_not_wait_behind_a_long_one, .timeout = 30)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *fs[3];

	for (int round = 0; round < 3; round++) {
		fs[0] = submit_u64(c, sleepy, NULL, 0, 300);
		fs[1] = submit_u64(c, sleepy, NULL, 0, 5);
		fs[2] = submit_u64(c, sleepy, NULL, 0, 300);
		cr_assert_eq(weft_wait_any(fs, 3, -1), 1, "round %d", round);
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(weft_wait(fs[i], -1), 0);
			weft_release(fs[i]);
		}
	}
	cr_assert_eq(weft_client_close(c), 0);
}

static _Atomic int held_open[3];
static _Atomic int held_started;

/* Blocks its thread until held_open[*arg] is set. */
TASK(held)
{
	int i;

	memcpy(&i, arg, sizeof(i));
	atomic_fetch_add(&held_started, 1);
	while (!atomic_load(&held_open[i]))
		sched_yield();
	return 0;
}

/*
 * regress_22: one thread takes a long task and the submissions after it from the
 * queue together; the other thread, once free, starts those in the order they were
 * submitted, oldest first, not the newest of what the first thread holds.
 */
Test(sched, regress_22_a_free_thread_starts_the_oldest_submission, .timeout = 60)
{
	enum { N = 300 };
	struct weft_client *c;
	struct weft_future *h[3], **f = malloc(N * sizeof(*f));
	static int seq[N];

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	for (int i = 0; i < 3; i++)
		atomic_store(&held_open[i], 0);
	atomic_store(&held_started, 0);
	atomic_store(&started_seq, 0);
	/* Both threads held, so that the queue fills behind them. */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_submit(c, held, NULL, 0, &i, sizeof(i), NULL, &h[i]), 0);
	while (atomic_load(&held_started) < 2)
		sched_yield();
	int two = 2;

	cr_assert_eq(weft_submit(c, held, NULL, 0, &two, sizeof(two), NULL, &h[2]), 0);
	for (int i = 0; i < N; i++) {
		int *slot = &seq[i];

		cr_assert_eq(weft_submit(c, note_start, NULL, 0, &slot, sizeof(slot), NULL,
					 &f[i]), 0);
	}
	/* The first thread freed takes the third held task, and others with it. */
	atomic_store(&held_open[0], 1);
	while (atomic_load(&held_started) < 3)
		sched_yield();
	atomic_store(&held_open[1], 1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_wait(f[i], -1), 0);
	cr_assert_eq(weft_wait(h[2], 0), -ETIMEDOUT, "the third held task still runs");
	for (int i = 0; i < N; i++)
		cr_assert_eq(seq[i], i, "task %d started as number %d", i, seq[i]);
	atomic_store(&held_open[2], 1);
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(weft_wait(h[i], -1), 0);
		weft_release(h[i]);
	}
	free(f);
	cr_assert_eq(weft_client_close(c), 0);
}
