// SPDX-License-Identifier: MIT
/* weft_client_close: cancels what has not started, waits for what runs, frees all. */
#include <unistd.h>

#include "../common.h"

static _Atomic int ran;

TASK(slow_count)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	atomic_fetch_add(&ran, 1);
	return put_u64(ctx, 7);
}

static int count_threads(void)
{
	return dir_entries("/proc/self/task");
}

static int count_fds(void)
{
	return dir_entries("/proc/self/fd") - 1;	/* the directory itself */
}

Test(close, leaves_no_thread_or_file, .timeout = 20)
{
	int threads = count_threads(), fds = count_fds();
	struct weft_client *c = open_threads(4);
	struct weft_future *f = submit_u64(c, sum, NULL, 0, 1);

	if (!on_cluster())	/* else the client's fabric thread */
		cr_assert_eq(count_threads(), threads + 4);
	cr_assert_eq(result_u64(f), 1);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(count_threads(), threads);
	cr_assert_eq(count_fds(), fds);
}

Test(close, waits_for_running_and_cancels_queued, .timeout = 20)
{
	struct weft_future *running, *queued[10];
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;

	EMBEDDED_ONLY("it counts its tasks' runs in the test's process");
	c = open_threads(1);
	atomic_store(&ran, 0);
	running = submit_u64(c, slow_count, NULL, 0, 0);
	do {
		cr_assert_eq(weft_stats(c, &st), 0);
	} while (!st.tasks_run);
	for (int i = 0; i < 10; i++)
		queued[i] = submit_u64(c, slow_count, NULL, 0, 0);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(atomic_load(&ran), 1, "close ran queued tasks or cut one short");
	/* Held futures after close: final status stays, data is gone. */
	cr_assert_eq(weft_wait(running, -1), 0);
	cr_assert_eq(weft_wait(queued[3], -1), -ECANCELED);
	/* slow_count is static: not registered, not exported, so no name to give. */
	cr_assert_not_null(strstr(weft_future_error(queued[3]),
				  "' was cancelled: the client closed"));
	struct weft_buf b;
	cr_assert_eq(weft_result(running, &b), -ESHUTDOWN);
	cr_assert_eq(weft_cancel(queued[0]), -ESHUTDOWN);
	cr_assert_eq(weft_wait_any(queued, 10, 0), 0);
	weft_release(running);
	for (int i = 0; i < 10; i++)
		weft_release(queued[i]);
	/* LeakSanitizer checks that the last release freed what close kept. */
}

TASK(big_result)
{
	void *p = weft_output(ctx, 1 << 20);

	if (!p)
		return -ENOMEM;
	memset(p, 3, 1 << 20);
	return 0;
}

Test(close, frees_results_still_held, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *f[8];

	EMBEDDED_ONLY("the engine's memory accounting");
	c = open_threads(2);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_submit(c, big_result, NULL, 0, NULL, 0, NULL, &f[i]), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_wait(f[i], -1), 0);
	cr_assert_geq(mem_bytes(c), 8 << 20);
	cr_assert_eq(weft_client_close(c), 0);
	for (int i = 0; i < 8; i++)
		weft_release(f[i]);
}

Test(close, with_deep_pending_graph, .timeout = 30)
{
	struct weft_client *c;
	enum { N = 5000 };
	static struct weft_future *f[N];
	struct weft_stats st = { .size = sizeof(st) };

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &f[0]), 0);
	for (int i = 1; i < N; i++)
		cr_assert_eq(weft_submit(c, noop, &f[i - 1], 1, NULL, 0, NULL, &f[i]), 0);
	for (int i = 1; i < N; i++)
		weft_release(f[i]);
	do {
		cr_assert_eq(weft_stats(c, &st), 0);
	} while (!st.tasks_run);	/* the gate is running */
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(weft_wait(f[0], -1), 0);
	weft_release(f[0]);
}

Test(close, many_engines_one_after_another, .timeout = 60)
{
	for (int i = 0; i < 50; i++) {
		struct weft_client *c = open_threads(2);
		struct weft_future *f = submit_u64(c, sum, NULL, 0, i);

		cr_assert_eq(result_u64(f), i);
		weft_release(f);
		cr_assert_eq(weft_client_close(c), 0);
	}
}

Test(close, two_engines_at_once, .timeout = 20)
{
	struct weft_client *a = open_threads(1), *b = open_threads(1);
	struct weft_future *fa = submit_u64(a, sum, NULL, 0, 1);
	struct weft_future *fb = submit_u64(b, sum, NULL, 0, 2);

	cr_assert_eq(result_u64(fa), 1);
	cr_assert_eq(result_u64(fb), 2);
	weft_release(fa);
	cr_assert_eq(weft_client_close(a), 0);
	/* The client thread's record cache now belongs to a closed engine. */
	struct weft_future *more = submit_u64(b, sum, &fb, 1, 1);
	cr_assert_eq(result_u64(more), 3);
	weft_release(more);
	weft_release(fb);
	cr_assert_eq(weft_client_close(b), 0);
}

static _Atomic int spawn_result;

/* Spawns children until close begins; then spawn must refuse. */
TASK(spawn_until_refused)
{
	struct timespec ts = { 0, 100000 };

	atomic_store(&spawn_result, 1);
	for (int i = 0; i < 100000; i++) {
		struct weft_future *f;
		int ret = weft_spawn(ctx, noop, NULL, 0, NULL, 0, NULL, &f);

		if (ret) {
			atomic_store(&spawn_result, ret);
			return 0;
		}
		weft_release(f);
		nanosleep(&ts, NULL);
	}
	return 0;
}

Test(close, spawn_during_close_returns_eshutdown, .timeout = 30)
{
	struct weft_client *c;
	struct weft_future *f;

	EMBEDDED_ONLY("its task reports to the test's process");
	c = open_threads(2);
	cr_assert_eq(weft_submit(c, spawn_until_refused, NULL, 0, NULL, 0, NULL, &f), 0);
	while (!atomic_load(&spawn_result))
		;
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(atomic_load(&spawn_result), -ESHUTDOWN);
}
