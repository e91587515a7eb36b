// SPDX-License-Identifier: MIT
/* Failing tasks: messages, what happens to dependents, retries. */
#include "../common.h"

TASK(parse)
{
	return weft_fail(ctx, "bad row %d", 7);
}

TASK(bare_failure)
{
	return -EIO;
}

static _Atomic int ran;

TASK(count_runs)
{
	atomic_fetch_add(&ran, 1);
	return 0;
}

static const struct weft_task_opts parse_opts = { .size = sizeof(parse_opts),
						  .label = "parse" };

Test(fail, message_names_the_task_and_reason, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, parse, NULL, 0, NULL, 0, &parse_opts, &f), 0);
	cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(f), "task 'parse' failed: bad row 7");
	struct weft_buf b = { (void *)0x1, 99 };
	cr_assert_eq(weft_result(f, &b), WEFT_ETASK);
	cr_assert_eq(b.len, 99, "view written on error");
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(fail, nonzero_return_without_fail_gets_a_generic_message, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_task_opts o = { .size = sizeof(o), .label = "reader" };
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, bare_failure, NULL, 0, NULL, 0, &o, &f), 0);
	cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(f),
			 "task 'reader' failed: its function returned -5 (Input/output error)");
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(fail, dependents_fail_without_running_and_name_the_root, .timeout = 10)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *root, *mid, *leaf, *ok, *both[2];

	atomic_store(&ran, 0);
	cr_assert_eq(weft_submit(c, parse, NULL, 0, NULL, 0, &parse_opts, &root), 0);
	cr_assert_eq(weft_submit(c, count_runs, &root, 1, NULL, 0, NULL, &mid), 0);
	cr_assert_eq(weft_submit(c, count_runs, &mid, 1, NULL, 0, NULL, &leaf), 0);
	ok = submit_u64(c, sum, NULL, 0, 3);
	both[0] = ok;
	both[1] = leaf;
	struct weft_future *join;
	cr_assert_eq(weft_submit(c, count_runs, both, 2, NULL, 0, NULL, &join), 0);
	cr_assert_eq(weft_wait(join, -1), WEFT_ETASK);
	cr_assert_eq(weft_wait(mid, -1), WEFT_ETASK);
	cr_assert_eq(weft_wait(leaf, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(leaf), "task 'parse' failed: bad row 7");
	cr_assert_str_eq(weft_future_error(join), "task 'parse' failed: bad row 7");
	cr_assert_eq(atomic_load(&ran), 0, "a dependent of a failed task ran");
	cr_assert_eq(result_u64(ok), 3, "an unrelated task is untouched");
	cr_assert_null(weft_future_error(ok));
	/* Submitting after the failure is known fails at once. */
	struct weft_future *later;
	cr_assert_eq(weft_submit(c, count_runs, &root, 1, NULL, 0, NULL, &later), 0);
	cr_assert_eq(weft_wait(later, 0), WEFT_ETASK);
	cr_assert_eq(atomic_load(&ran), 0);
	struct weft_stats st = { .size = sizeof(st) };
	cr_assert_eq(weft_stats(c, &st), 0);
	if (!on_cluster())	/* a cluster's count has the other clients' tasks */
		cr_assert_eq(st.tasks_failed, 5);
	weft_release(root);
	weft_release(mid);
	weft_release(leaf);
	weft_release(ok);
	weft_release(join);
	weft_release(later);
	cr_assert_eq(weft_client_close(c), 0);
}

/*
 * Tries counted in the file its argument names (so that a worker process counts
 * where the test can read): fails its first two.
 */
static int count_try(const char *path)
{
	FILE *f = fopen(path, "r+");
	int n = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = 0;
	rewind(f);
	fprintf(f, "%d\n", ++n);
	fclose(f);
	return n;
}

TASK(flaky)
{
	int n = count_try(arg);
	uint64_t *o = weft_output(ctx, 8);	/* an output of a failed try is dropped */

	if (o)
		*o = (uint64_t)n;
	if (n < 3)
		return weft_fail(ctx, "attempt %d", n);
	return put_u64(ctx, (uint64_t)n);
}

/* A file of no tries yet, its path in @path: flaky's argument. */
static size_t tries_file(char *path, size_t size)
{
	int fd = mkstemp(t_template(path, size, "tries"));

	cr_assert_geq(fd, 0);
	close(fd);
	return strlen(path) + 1;
}

static int tries_of(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &n), 1);
	fclose(f);
	unlink(path);
	return n;
}

Test(fail, retries_rescue_a_flaky_task, .timeout = 10)
{
	struct weft_task_opts o = { .size = sizeof(o), .retries = 2 };
	struct weft_client *c = open_threads(1);
	struct weft_future *f;
	char path[PATH_MAX];
	size_t len = tries_file(path, sizeof(path));

	cr_assert_eq(weft_submit(c, flaky, NULL, 0, path, len, &o, &f), 0);
	cr_assert_eq(result_u64(f), 3);
	cr_assert_null(weft_future_error(f));
	cr_assert_eq(tries_of(path), 3);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(fail, retries_exhausted_keep_the_last_message, .timeout = 10)
{
	struct weft_task_opts o = { .size = sizeof(o), .retries = 1, .label = "flaky" };
	struct weft_client *c = open_threads(1);
	struct weft_future *f;
	char path[PATH_MAX];
	size_t len = tries_file(path, sizeof(path));

	cr_assert_eq(weft_submit(c, flaky, NULL, 0, path, len, &o, &f), 0);
	cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(f), "task 'flaky' failed: attempt 2");
	cr_assert_eq(tries_of(path), 2);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(long_failure)
{
	char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	return weft_fail(ctx, "%s", big);
}

Test(fail, long_message_is_truncated, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, long_failure, NULL, 0, NULL, 0, &parse_opts, &f), 0);
	cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
	cr_assert_eq(strncmp(weft_future_error(f), "task 'parse' failed: xxx", 24), 0);
	cr_assert_eq(strlen(weft_future_error(f)), 1024);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}
