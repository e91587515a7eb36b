// SPDX-License-Identifier: MIT
/* Bad input to every call of weft.h: -EINVAL (or the documented error), no change. */
#include <stdlib.h>

#include "../common.h"

Test(api, client_open_bad_arguments_return_einval)
{
	struct weft_options small = { .size = 1 };
	struct weft_client *c = (void *)0x1;

	cr_assert_eq(weft_client_open(NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_client_open(NULL, &small, &c), -EINVAL);
	cr_assert_eq(c, (void *)0x1, "out-parameter written on error");
}

Test(api, client_open_unknown_scheme_returns_einval)
{
	struct weft_client *c = NULL;

	cr_assert_eq(weft_client_open("http://localhost:80", NULL, &c), -EINVAL);
	cr_assert_eq(weft_client_open("localhost:80", NULL, &c), -EINVAL);
	cr_assert_eq(weft_client_open("", NULL, &c), -EINVAL);
	cr_assert_eq(weft_client_open("tcp://", NULL, &c), -EINVAL);
	cr_assert_null(c);
}

Test(api, client_open_of_a_cluster_without_a_token_returns_eacces)
{
	struct weft_client *c = NULL;

	unsetenv("WEFT_TOKEN");
	unsetenv("WEFT_TOKEN_FILE");
	cr_assert_eq(weft_client_open("tcp://127.0.0.1:8786", NULL, &c), -EACCES);
	setenv("WEFT_TOKEN", "short", 1);
	cr_assert_eq(weft_client_open("tcp://127.0.0.1:8786", NULL, &c), -EINVAL,
		     "a token has 16 characters at least");
	unsetenv("WEFT_TOKEN");
	cr_assert_null(c);
}

Test(api, client_open_with_nobody_listening_fails_within_seconds, .timeout = 30)
{
	struct weft_client *c = NULL;
	struct timespec t0, t1;
	int ret;

	/* Its address is its own, and a busy cluster beside it only slows it. */
	if (on_cluster())
		cr_skip_test("the same as in the integration tier: it names its address");
	setenv("WEFT_TOKEN", "0123456789abcdef-api", 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Port 1 on loopback: nothing listens there. */
	ret = weft_client_open("tcp://127.0.0.1:1", NULL, &c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert(ret == -ETIMEDOUT || ret == -ECONNREFUSED || ret == -EHOSTUNREACH,
		  "ret %d", ret);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 10, "gave up within seconds");
	cr_assert_eq(weft_client_open("shm://weft", NULL, &c), -EINVAL, "shm needs HOST:PORT");
	unsetenv("WEFT_TOKEN");
	cr_assert_null(c);
}

Test(api, client_open_follows_weft_scheduler)
{
	struct weft_client *c = NULL;

	unsetenv("WEFT_TOKEN");
	setenv("WEFT_SCHEDULER", "tcp://127.0.0.1:8786", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), -EACCES, "a cluster, and no token");
	setenv("WEFT_SCHEDULER", "", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), 0, "empty means embedded");
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, client_open_bad_environment_returns_einval)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 1 };
	struct weft_client *c = NULL;

	EMBEDDED_ONLY("the engine's settings from the environment");
	setenv("WEFT_NTHREADS", "many", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), -EINVAL);
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0, "an explicit option wins");
	cr_assert_eq(weft_client_close(c), 0);
	unsetenv("WEFT_NTHREADS");
	setenv("WEFT_MEMORY_LIMIT", "12 apples", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), -EINVAL);
}

Test(api, nthreads_from_option_and_environment)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 3 };
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;

	EMBEDDED_ONLY("the engine's threads");
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.nthreads, 3);
	cr_assert_eq(weft_client_close(c), 0);
	setenv("WEFT_NTHREADS", "5", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), 0);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.nthreads, 5);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, options_of_an_older_size_are_accepted)
{
	/* A caller built against a header whose options ended at nthreads. */
	struct weft_options o = { .size = offsetof(struct weft_options, memory_limit),
				  .nthreads = 1 };
	struct weft_client *c;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, close_null_does_nothing)
{
	cr_assert_eq(weft_client_close(NULL), 0);
	weft_release(NULL);
}

Test(api, submit_bad_arguments_return_einval, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_task_opts bad_size = { .size = 2 };
	struct weft_task_opts many = { .size = sizeof(many), .noutputs = WEFT_MAX_OUTPUTS + 1 };
	struct weft_task_opts pinned = { .size = sizeof(pinned), .worker = "w1" };
	struct weft_future *f = (void *)0x1, *nul = NULL, *ok;

	cr_assert_eq(weft_submit(NULL, noop, NULL, 0, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, NULL, NULL, 0, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 1, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, &nul, 1, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 5, NULL, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, "x", (size_t)WEFT_MAX_ARG + 1, NULL, &f),
		     -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, &bad_size, &f), -EINVAL);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, &many, &f), -EINVAL);
	if (!on_cluster())	/* a cluster has workers to name */
		cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, &pinned, &f), -ENOTSUP);
	cr_assert_eq(f, (void *)0x1, "out-parameter written on error");
	/* Nothing ran or was left behind. */
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &ok), 0);
	cr_assert_eq(weft_wait(ok, -1), 0);
	weft_release(ok);
	struct weft_stats st = { .size = sizeof(st) };
	cr_assert_eq(weft_stats(c, &st), 0);
	if (!on_cluster())	/* a cluster's count has the other clients' tasks */
		cr_assert_eq(st.tasks_run, 1);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, future_of_another_client_returns_einval, .timeout = 10)
{
	struct weft_client *a = open_threads(1), *b = open_threads(1);
	struct weft_future *fa, *f = NULL;

	cr_assert_eq(weft_scatter(a, "x", 1, &fa), 0);
	cr_assert_eq(weft_submit(b, noop, &fa, 1, NULL, 0, NULL, &f), -EINVAL);
	cr_assert_null(f);
	weft_release(fa);
	cr_assert_eq(weft_client_close(a), 0);
	cr_assert_eq(weft_client_close(b), 0);
}

Test(api, future_calls_with_null_return_einval)
{
	struct weft_buf b;

	cr_assert_eq(weft_wait(NULL, 0), -EINVAL);
	cr_assert_eq(weft_wait_any(NULL, 1, 0), -EINVAL);
	cr_assert_eq(weft_result(NULL, &b), -EINVAL);
	cr_assert_eq(weft_cancel(NULL), -EINVAL);
	cr_assert_null(weft_future_error(NULL));
	cr_assert_eq(weft_scatter(NULL, "x", 1, NULL), -EINVAL);
	cr_assert_eq(weft_stats(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_spawn(NULL, noop, NULL, 0, NULL, 0, NULL, NULL), -EINVAL);
	cr_assert_null(weft_output(NULL, 8));
	cr_assert_null(weft_output_n(NULL, 0, 8));
	cr_assert_eq(weft_fail(NULL, "x"), -EINVAL);
}

Test(api, wait_any_bad_arguments_return_einval, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *fs[2];

	cr_assert_eq(weft_scatter(c, "x", 1, &fs[0]), 0);
	fs[1] = NULL;
	cr_assert_eq(weft_wait_any(fs, 0, 0), -EINVAL);
	cr_assert_eq(weft_wait_any(fs, 2, 0), -EINVAL);
	cr_assert_eq(weft_wait_any(fs, 1, 0), 0);
	weft_release(fs[0]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, result_with_null_view_returns_einval, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	cr_assert_eq(weft_scatter(c, "x", 1, &f), 0);
	cr_assert_eq(weft_result(f, NULL), -EINVAL);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, scatter_bad_arguments_return_einval, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_scatter(c, NULL, 4, &f), -EINVAL);
	cr_assert_eq(weft_scatter(c, "x", 1, NULL), -EINVAL);
	cr_assert_null(f);
	cr_assert_eq(weft_scatter(c, NULL, 0, &f), 0, "empty data is fine");
	struct weft_buf b;
	cr_assert_eq(weft_result(f, &b), 0);
	cr_assert_eq(b.len, 0);
	cr_assert_null(b.data);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(api, strerror_names_every_code)
{
	cr_assert_str_eq(weft_strerror(0), "Success");
	cr_assert_str_eq(weft_strerror(WEFT_ETASK), "Task function failed");
	cr_assert_str_eq(weft_strerror(WEFT_EKILLED), "Task's worker died too often");
	cr_assert_str_eq(weft_strerror(WEFT_ELOST), "Data lost and not recomputable");
	cr_assert_str_eq(weft_strerror(WEFT_ENOFN), "No task function of that name");
	cr_assert_str_eq(weft_strerror(-EINVAL), "Invalid argument");
	cr_assert_str_eq(weft_strerror(EINVAL), "Invalid argument");
	cr_assert_not_null(weft_strerror(-99999));
	cr_assert_not_null(weft_strerror(-4000));
}

/*
 * In a debug build (WEFT_DEBUG) a stale handle aborts the process instead; that
 * path is tested in unit/engine.
 */
static void skip_in_debug_builds(void)
{
#ifdef WEFT_DEBUG
	cr_skip_test("a debug build aborts on a stale handle (unit/engine tests that)");
#endif
}

/*
 * regress_22: releasing a future twice, after its record served another task, is
 * reported and ignored: the other task's future keeps its reference and its data.
 * A released future's wait, result, cancel and error say so.
 */
Test(api, regress_22_a_second_release_touches_no_other_future, .timeout = 10)
{
	struct weft_client *c;
	struct weft_future *f, *g[64];
	struct weft_buf b;

	skip_in_debug_builds();
	c = open_threads(1);
	f = submit_u64(c, sum, NULL, 0, 1);
	cr_assert_eq(result_u64(f), 1);
	weft_release(f);
	/* Records are reused from the releasing thread's cache: one of these is f's. */
	for (int i = 0; i < 64; i++)
		g[i] = submit_u64(c, sum, NULL, 0, 1000 + i);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(weft_wait(g[i], -1), 0);
	weft_release(f);
	weft_release(f);
	cr_expect_eq(weft_wait(f, 0), -EBADF);
	cr_expect_eq(weft_result(f, &b), -EBADF);
	cr_expect_eq(weft_cancel(f), -EBADF);
	cr_expect_eq(weft_wait_any(&f, 1, 0), -EBADF);
	cr_expect(strstr(weft_future_error(f), "released"), "%s", weft_future_error(f));
	struct weft_future *h;

	cr_expect_eq(weft_submit(c, sum, &f, 1, NULL, 0, NULL, &h), -EBADF);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(weft_result(g[i], &b), 0);
		cr_assert_eq(b.len, 8, "task %d: %zu bytes", i, b.len);
		cr_assert_eq(u64_of(&b), 1000 + i);
		weft_release(g[i]);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

/* regress_22: a client closed twice: the second close is -EBADF, not a crash, and
 * a client opened since (which may reuse its handle's memory) is untouched. */
Test(api, regress_22_closing_a_client_twice_returns_ebadf, .timeout = 10)
{
	struct weft_client *c, *d;
	struct weft_future *f;

	skip_in_debug_builds();
	c = open_threads(1);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(weft_client_close(c), -EBADF);
	d = open_threads(1);
	cr_assert_eq(weft_client_close(c), -EBADF);
	cr_expect_eq(weft_submit(c, sum, NULL, 0, NULL, 0, NULL, &f), -EBADF);
	f = submit_u64(d, sum, NULL, 0, 7);
	cr_assert_eq(result_u64(f), 7);
	weft_release(f);
	cr_assert_eq(weft_client_close(d), 0);
}

/* The library is the version the header says, in both forms. */
Test(api, version_matches_the_header)
{
	char want[32];

	cr_assert_eq(weft_version(), (unsigned)WEFT_VERSION_HEX);
	snprintf(want, sizeof(want), "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
		 WEFT_VERSION_PATCH);
	cr_assert_str_eq(weft_version_string(), want);
}

/*
 * The figures a dashboard needs: tasks pending and running while a task holds
 * the others up, none once all ended; the thresholds as fractions of the limit.
 */
Test(api, stats_count_tasks_pending_and_running_and_give_the_thresholds, .timeout = 30)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 2, .memory_limit = 100 << 20,
				  .memory_target = 0.5, .memory_pause = 0.75 };
	struct weft_stats st = { .size = sizeof(st) }, old;
	struct weft_future *f[3];
	struct weft_client *c;

	EMBEDDED_ONLY("the engine's own counts, at once");
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &f[0]), 0);
	cr_assert_eq(weft_submit(c, noop, &f[0], 1, NULL, 0, NULL, &f[1]), 0);
	cr_assert_eq(weft_submit(c, noop, &f[1], 1, NULL, 0, NULL, &f[2]), 0);
	/* The other thread goes to sleep: nothing else can run. */
	do {
		cr_assert_eq(weft_stats(c, &st), 0);
	} while (st.tasks_running != 1 && !usleep(1000));
	cr_assert_eq(st.tasks_pending, 3);
	cr_assert_eq(st.mem_target, 50 << 20);
	cr_assert_eq(st.mem_pause, 75 << 20);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(f[2], -1), 0);
	for (int i = 0; i < 3; i++)
		weft_release(f[i]);
	do {	/* the last task retires just after its future is done */
		cr_assert_eq(weft_stats(c, &st), 0);
	} while ((st.tasks_pending || st.tasks_running) && !usleep(1000));
	/* A caller built with the header before these fields gets those before only. */
	memset(&old, 0xff, sizeof(old));
	old.size = offsetof(struct weft_stats, tasks_pending);
	cr_assert_eq(weft_stats(c, &old), 0);
	cr_assert_eq(old.size, offsetof(struct weft_stats, tasks_pending));
	cr_assert_eq(old.tasks_pending, ~0ull, "written past the caller's size");
	cr_assert_eq(weft_client_close(c), 0);
}

/* An engine is one worker; bad arguments are refused; an older caller's size is kept. */
Test(api, workers_of_an_engine_are_one_named_engine, .timeout = 20)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 2, .memory_limit = 64 << 20 };
	struct weft_worker_info w[2] = { { .size = sizeof(w[0]) } };
	struct weft_worker_info old;
	struct weft_future *f;
	struct weft_client *c;

	EMBEDDED_ONLY("an engine's own figures (tests/cluster lists a cluster's)");
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0);
	weft_release(f);
	cr_assert_eq(weft_workers(c, NULL, 0), 1);
	cr_assert_eq(weft_workers(c, w, 2), 1);
	cr_assert_str_eq(w[0].name, "engine");
	cr_assert_eq(w[0].nthreads, 2);
	cr_assert_eq(w[0].mem_limit, 64 << 20);
	cr_assert_geq(w[0].tasks_run, 1);
	cr_assert_eq(w[0].bytes_received, 0);
	cr_assert_eq(weft_workers(NULL, w, 2), -EINVAL);
	cr_assert_eq(weft_workers(c, NULL, 2), -EINVAL);
	w[0].size = 1;
	cr_assert_eq(weft_workers(c, w, 2), -EINVAL, "no room for its size");
	w[0].size = sizeof(w[0]);
	memset(&old, 0xff, sizeof(old));
	old.size = offsetof(struct weft_worker_info, tasks_run);
	cr_assert_eq(weft_workers(c, &old, 1), 1);
	cr_assert_eq(old.nthreads, 2);
	cr_assert_eq(old.tasks_run, ~0ull, "written past the caller's size");
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(weft_workers(c, w, 2), -EBADF);
}
