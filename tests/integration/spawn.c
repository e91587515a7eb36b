// SPDX-License-Identifier: MIT
/* weft_spawn and waiting inside tasks: fork-join recursion without deadlock. */
#include <sched.h>

#include "../common.h"

TASK(fib)
{
	uint64_t n, a, b;
	struct weft_future *fa, *fb;
	struct weft_buf ra, rb;
	int ret;

	memcpy(&n, arg, sizeof(n));
	if (n < 2)
		return put_u64(ctx, n);
	n -= 1;
	ret = weft_spawn(ctx, fib, NULL, 0, &n, sizeof(n), NULL, &fa);
	if (ret)
		return ret;
	n -= 1;
	ret = weft_spawn(ctx, fib, NULL, 0, &n, sizeof(n), NULL, &fb);
	if (ret) {
		weft_release(fa);
		return ret;
	}
	ret = weft_result(fa, &ra) ?: weft_result(fb, &rb);
	if (!ret) {
		memcpy(&a, ra.data, 8);
		memcpy(&b, rb.data, 8);
		ret = put_u64(ctx, a + b);
	}
	weft_release(fa);
	weft_release(fb);
	return ret;
}

static uint64_t fib_serial(uint64_t n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

Test(spawn, fib_on_one_thread, .timeout = 30)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f = submit_u64(c, fib, NULL, 0, 20);

	cr_assert_eq(result_u64(f), fib_serial(20));
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(spawn, fib_on_all_threads, .timeout = 60)
{
	struct weft_client *c = open_threads(0);
	struct weft_future *f = submit_u64(c, fib, NULL, 0, 24);
	struct weft_stats st = { .size = sizeof(st) };

	cr_assert_eq(result_u64(f), fib_serial(24));
	cr_assert_eq(weft_stats(c, &st), 0);
	/* fib(n) makes 2 F(n+1) - 1 calls, each one task (a cluster counts others' too). */
	if (!on_cluster())
		cr_assert_eq(st.tasks_run, 2 * fib_serial(25) - 1, "every call of fib(24) is one task");
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(spawn, deep_recursion_on_more_threads_than_cores, .timeout = 60)
{
	struct weft_client *c = open_threads(8);
	struct weft_future *f = submit_u64(c, fib, NULL, 0, 22);

	cr_assert_eq(result_u64(f), fib_serial(22));
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

/* A task waits on a future the client submitted, and on a timeout. */
static struct weft_future *shared;

TASK(wait_shared)
{
	struct weft_buf b;
	int ret = weft_result(shared, &b);

	return ret ?: put_u64(ctx, u64_of(&b) + 1);
}

Test(spawn, task_waits_on_a_client_future, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *w;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(1);
	/* On one thread the waiter must run the awaited task itself. */
	shared = submit_u64(c, sum, NULL, 0, 41);
	w = submit_u64(c, wait_shared, NULL, 0, 0);
	cr_assert_eq(result_u64(w), 42);
	weft_release(w);
	weft_release(shared);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(wait_gate_with_timeout)
{
	struct weft_future *g = *(struct weft_future *const *)arg;
	int ret = weft_wait(g, 1000000);	/* 1 ms */

	return put_u64(ctx, (uint64_t)(-ret));
}

Test(spawn, wait_inside_task_times_out, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *g, *w;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(2);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	cr_assert_eq(weft_submit(c, wait_gate_with_timeout, NULL, 0, &g, sizeof(g), NULL,
				 &w), 0);
	cr_assert_eq(result_u64(w), ETIMEDOUT);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(g, -1), 0);
	weft_release(g);
	weft_release(w);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(submit_inside)
{
	/* weft_submit from inside a task is allowed too: there is no client here, so
	 * spawn is the way; a child with dependencies on another child works. */
	struct weft_future *a, *b;
	uint64_t one = 1;
	struct weft_buf r;
	int ret;

	ret = weft_spawn(ctx, sum, NULL, 0, &one, 8, NULL, &a);
	if (ret)
		return ret;
	ret = weft_spawn(ctx, sum, &a, 1, &one, 8, NULL, &b);
	if (ret)
		return ret;
	ret = weft_result(b, &r);
	if (!ret)
		ret = put_u64(ctx, u64_of(&r));
	weft_release(a);
	weft_release(b);
	return ret;
}

Test(spawn, children_with_dependencies, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *f = submit_u64(c, submit_inside, NULL, 0, 0);

	cr_assert_eq(result_u64(f), 2);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(close_inside)
{
	struct weft_client *c = *(struct weft_client *const *)arg;
	struct weft_client *other;

	if (weft_client_close(c) != -EDEADLK)
		return weft_fail(ctx, "close inside a task did not return -EDEADLK");
	if (weft_client_open(NULL, NULL, &other) != -EDEADLK)
		return weft_fail(ctx, "open inside a task did not return -EDEADLK");
	return 0;
}

Test(spawn, close_and_open_inside_a_task_return_edeadlk, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *f;

	EMBEDDED_ONLY("its task is handed the test's client");
	c = open_threads(1);
	cr_assert_eq(weft_submit(c, close_inside, NULL, 0, &c, sizeof(c), NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0, "%s", weft_future_error(f));
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

/*
 * Waits that could end only once the waiting task returns: the task learns the
 * future to wait on through @cycle, once the client has submitted it.
 */
enum { BY_WAIT, BY_RESULT, BY_ANY };

static struct cycle {
	_Atomic(struct weft_future *) target[2];	/* set by the client */
} cycle;

struct waiter_arg {
	int slot;			/* cycle.target[slot]; BY_ANY: both */
	int how;
};

static struct weft_future *target_of(int slot)
{
	struct weft_future *f;

	while (!(f = atomic_load_explicit(&cycle.target[slot], memory_order_acquire)))
		sched_yield();
	return f;
}

/* Returns what its wait returned, negated. 5 s bounds a wait that is not refused. */
TASK(waiter)
{
	const struct waiter_arg *a = arg;
	struct weft_future *fs[2];
	struct weft_buf b;
	int ret;

	switch (a->how) {
	case BY_WAIT:
		ret = weft_wait(target_of(a->slot), 5000000000);
		break;
	case BY_RESULT:
		ret = weft_result(target_of(a->slot), &b);
		break;
	default:
		fs[0] = target_of(0);
		fs[1] = target_of(1);
		ret = weft_wait_any(fs, 2, 5000000000);
		break;
	}
	return put_u64(ctx, (uint64_t)-ret);
}

static struct weft_future *submit_waiter(struct weft_client *c, int slot, int how)
{
	struct waiter_arg a = { .slot = slot, .how = how };
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, waiter, NULL, 0, &a, sizeof(a), NULL, &f), 0);
	return f;
}

static void cycle_reset(void)
{
	atomic_store(&cycle.target[0], NULL);
	atomic_store(&cycle.target[1], NULL);
}

Test(spawn, wait_on_own_future_returns_edeadlk, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *w, *r;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(2);
	cycle_reset();
	w = submit_waiter(c, 0, BY_WAIT);
	atomic_store(&cycle.target[0], w);
	cr_assert_eq(result_u64(w), EDEADLK);
	r = submit_waiter(c, 1, BY_RESULT);
	atomic_store(&cycle.target[1], r);
	cr_assert_eq(result_u64(r), EDEADLK);
	weft_release(w);
	weft_release(r);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(spawn, wait_on_own_dependent_returns_edeadlk, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *w, *d;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(2);
	cycle_reset();
	w = submit_waiter(c, 0, BY_WAIT);
	d = submit_u64(c, sum, &w, 1, 1);
	atomic_store(&cycle.target[0], d);
	cr_assert_eq(result_u64(w), EDEADLK);
	/* Refused, not broken: the dependent runs once the waiter has returned. */
	cr_assert_eq(result_u64(d), EDEADLK + 1);
	weft_release(w);
	weft_release(d);
	cr_assert_eq(weft_client_close(c), 0);
}

/*
 * On one thread: a task whose wait helps runs a second task, which then waits on a
 * dependent of the first. The first cannot resume before the second returns.
 */
Test(spawn, wait_on_interrupted_task_dependent_returns_edeadlk, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *first, *second, *after_second, *after_first;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(1);
	cycle_reset();
	first = submit_waiter(c, 0, BY_WAIT);
	second = submit_waiter(c, 1, BY_WAIT);
	after_second = submit_u64(c, sum, &second, 1, 0);
	after_first = submit_u64(c, sum, &first, 1, 0);
	/* second's target first: first's wait is what runs second. */
	atomic_store(&cycle.target[1], after_first);
	atomic_store(&cycle.target[0], after_second);
	cr_assert_eq(result_u64(second), EDEADLK);
	cr_assert_eq(result_u64(first), 0, "first's wait ends once second has returned");
	cr_assert_eq(result_u64(after_first), 0);
	weft_release(first);
	weft_release(second);
	weft_release(after_second);
	weft_release(after_first);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(spawn, wait_any_returns_edeadlk_only_when_every_future_is_stuck, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *w, *other, *d;

	EMBEDDED_ONLY("its task waits on a future of the test's process");
	c = open_threads(2);
	/* Its own future and one that can end: the wait returns that one's index. */
	cycle_reset();
	w = submit_waiter(c, 0, BY_ANY);
	other = submit_u64(c, sum, NULL, 0, 7);
	atomic_store(&cycle.target[1], other);
	atomic_store(&cycle.target[0], w);
	cr_assert_eq(result_u64(w), (uint64_t)-1, "index 1, negated");
	weft_release(w);
	weft_release(other);

	/* Its own future and its own dependent: nothing can end. */
	cycle_reset();
	w = submit_waiter(c, 0, BY_ANY);
	d = submit_u64(c, sum, &w, 1, 0);
	atomic_store(&cycle.target[1], d);
	atomic_store(&cycle.target[0], w);
	cr_assert_eq(result_u64(w), EDEADLK);
	cr_assert_eq(result_u64(d), EDEADLK);
	weft_release(w);
	weft_release(d);
	cr_assert_eq(weft_client_close(c), 0);
}
