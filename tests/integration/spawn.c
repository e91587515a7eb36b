// SPDX-License-Identifier: MIT
/* weft_spawn and waiting inside tasks: fork-join recursion without deadlock. */
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
	/* fib(n) makes 2 F(n+1) - 1 calls, each one task. */
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
	struct weft_client *c = open_threads(1);
	struct weft_future *w;

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
	struct weft_client *c = open_threads(2);
	struct weft_future *g, *w;

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
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, close_inside, NULL, 0, &c, sizeof(c), NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0, "%s", weft_future_error(f));
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}
