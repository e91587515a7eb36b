// SPDX-License-Identifier: MIT
/* weft_cancel: tasks not started never run; dependents end -ECANCELED. */
#include "../common.h"

static _Atomic int ran;

TASK(count_runs)
{
	atomic_fetch_add(&ran, 1);
	return 0;
}

/* One thread, blocked on the gate: everything submitted after it waits. */
static struct weft_client *blocked_engine(struct weft_future **g)
{
	struct weft_client *c;

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(1);
	atomic_store(&gate_open, 0);
	atomic_store(&ran, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, g), 0);
	return c;
}

Test(cancel, queued_task_never_runs_and_dependents_end_ecanceled, .timeout = 10)
{
	struct weft_future *g, *a, *b, *d;
	struct weft_client *c = blocked_engine(&g);
	struct weft_task_opts o = { .size = sizeof(o), .label = "a" };

	cr_assert_eq(weft_submit(c, count_runs, NULL, 0, NULL, 0, &o, &a), 0);
	cr_assert_eq(weft_submit(c, count_runs, &a, 1, NULL, 0, NULL, &b), 0);
	cr_assert_eq(weft_submit(c, count_runs, &b, 1, NULL, 0, NULL, &d), 0);
	cr_assert_eq(weft_cancel(a), 0);
	/* Ended at once, while the only thread is still blocked. */
	cr_assert_eq(weft_wait(a, 0), -ECANCELED);
	cr_assert_eq(weft_wait(b, 0), -ECANCELED);
	cr_assert_eq(weft_wait(d, 0), -ECANCELED);
	cr_assert_str_eq(weft_future_error(d), "task 'a' was cancelled");
	cr_assert_eq(weft_cancel(a), -EALREADY);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(g, -1), 0);
	/* Give the thread a chance to pop the cancelled task: it must skip it. */
	struct weft_future *after;
	cr_assert_eq(weft_submit(c, count_runs, NULL, 0, NULL, 0, NULL, &after), 0);
	cr_assert_eq(weft_wait(after, -1), 0);
	cr_assert_eq(atomic_load(&ran), 1, "only the task after the gate ran");
	struct weft_stats st = { .size = sizeof(st) };
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.tasks_cancelled, 3);
	weft_release(g);
	weft_release(a);
	weft_release(b);
	weft_release(d);
	weft_release(after);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(cancel, waiting_task_is_cancelled_before_its_inputs_end, .timeout = 10)
{
	struct weft_future *g, *w;
	struct weft_client *c = blocked_engine(&g);

	cr_assert_eq(weft_submit(c, count_runs, &g, 1, NULL, 0, NULL, &w), 0);
	cr_assert_eq(weft_cancel(w), 0);
	cr_assert_eq(weft_wait(w, 0), -ECANCELED);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(g, -1), 0, "cancelling a dependent leaves its input be");
	weft_release(w);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(atomic_load(&ran), 0);
}

Test(cancel, running_task_returns_ebusy, .timeout = 10)
{
	struct weft_future *g;
	struct weft_client *c = blocked_engine(&g);
	struct weft_stats st = { .size = sizeof(st) };

	/* Wait until the gate task is running. */
	do {
		cr_assert_eq(weft_stats(c, &st), 0);
	} while (!st.tasks_run);
	cr_assert_eq(weft_cancel(g), -EBUSY);
	atomic_store(&gate_open, 1);
	cr_assert_eq(weft_wait(g, -1), 0);
	cr_assert_eq(weft_cancel(g), -EALREADY);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(cancel, one_output_cancels_the_whole_task, .timeout = 10)
{
	struct weft_future *g, *parts[3];
	struct weft_client *c = blocked_engine(&g);
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = 3 };

	cr_assert_eq(weft_submit(c, count_runs, &g, 1, NULL, 0, &o, parts), 0);
	cr_assert_eq(weft_cancel(parts[1]), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_wait(parts[i], 0), -ECANCELED);
	atomic_store(&gate_open, 1);
	for (int i = 0; i < 3; i++)
		weft_release(parts[i]);
	weft_release(g);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(atomic_load(&ran), 0);
}

Test(cancel, scattered_data_is_already_done, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	cr_assert_eq(weft_scatter(c, "abc", 3, &f), 0);
	cr_assert_eq(weft_cancel(f), -EALREADY);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

/* Cancelling many tasks while threads run them: each ends exactly once. */
Test(cancel, race_with_running_threads, .timeout = 60)
{
	struct weft_client *c = open_threads(2);
	enum { N = 20000 };
	static struct weft_future *f[N];
	int cancelled = 0;

	atomic_store(&ran, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit(c, count_runs, i ? &f[i - 1] : NULL, i ? 1 : 0,
					 NULL, 0, NULL, &f[i]), 0);
	for (int i = N - 1; i >= 0; i -= 7) {
		int r = weft_cancel(f[i]);

		cr_assert(r == 0 || r == -EBUSY || r == -EALREADY, "cancel: %d", r);
		cancelled += r == 0;
	}
	int done = 0, ecanceled = 0;
	for (int i = 0; i < N; i++) {
		int r = weft_wait(f[i], -1);

		cr_assert(r == 0 || r == -ECANCELED, "wait: %d", r);
		cr_assert(r == -ECANCELED || !ecanceled, "task %d ran after its input was cancelled", i);
		done += r == 0;
		ecanceled += r == -ECANCELED;
		weft_release(f[i]);
	}
	if (!on_cluster())	/* its tasks count in the workers' processes */
		cr_assert_eq(done, atomic_load(&ran), "a task both ran and was cancelled");
	cr_assert_eq(done + ecanceled, N);
	cr_assert_eq(weft_client_close(c), 0);
}
