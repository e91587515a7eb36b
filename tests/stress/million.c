// SPDX-License-Identifier: MIT
/* Millions of tasks: flat from the client, a long chain, and fork-join. */
#include <stdlib.h>

#include "../common.h"

static _Atomic long count;

TASK(bump)
{
	atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
	return 0;
}

Test(million, flat_tasks_from_the_client, .timeout = 300)
{
	struct weft_client *c = open_threads(0);
	long n = stress_scaled(1000000);
	struct weft_future **f = malloc(n * sizeof(*f));

	atomic_store(&count, 0);
	for (long i = 0; i < n; i++)
		cr_assert_eq(weft_submit(c, bump, NULL, 0, NULL, 0, NULL, &f[i]), 0);
	for (long i = 0; i < n; i++) {
		cr_assert_eq(weft_wait(f[i], -1), 0);
		weft_release(f[i]);
	}
	cr_assert_eq(atomic_load(&count), n);
	free(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(million, chain_of_dependent_tasks, .timeout = 300)
{
	struct weft_client *c = open_threads(0);
	long n = stress_scaled(1000000);
	struct weft_future *prev = submit_u64(c, sum, NULL, 0, 0), *next;

	for (long i = 1; i < n; i++) {
		next = submit_u64(c, sum, &prev, 1, 1);
		weft_release(prev);
		prev = next;
	}
	cr_assert_eq(result_u64(prev), (uint64_t)n - 1);
	weft_release(prev);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(tree)
{
	uint64_t depth, total = 1;
	struct weft_future *kids[4];
	int ret = 0, k = 0;

	memcpy(&depth, arg, 8);
	if (depth) {
		depth--;
		for (k = 0; k < 4 && !ret; k++)
			ret = weft_spawn(ctx, tree, NULL, 0, &depth, 8, NULL, &kids[k]);
		if (ret)
			k--;
		for (int i = 0; i < k; i++) {
			struct weft_buf b;

			if (!ret)
				ret = weft_result(kids[i], &b);
			if (!ret)
				total += u64_of(&b);
			weft_release(kids[i]);
		}
	}
	return ret ?: put_u64(ctx, total);
}

Test(million, fork_join_tree, .timeout = 300)
{
	struct weft_client *c = open_threads(0);
	uint64_t depth = getenv("WEFT_STRESS_SCALE") ? 7 : 10;	/* 4^10: 1.4M tasks */
	uint64_t expect = 0, level = 1;
	struct weft_future *f = submit_u64(c, tree, NULL, 0, depth);

	for (uint64_t d = 0; d <= depth; d++, level *= 4)
		expect += level;
	cr_assert_eq(result_u64(f), expect);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}
