// SPDX-License-Identifier: MIT
/* Regression tests, each named after the bug it pins. */
#include "../common.h"

TASK(fail_now)
{
	return weft_fail(ctx, "failed on purpose");
}

/*
 * A dependency that fails while a dependent with many inputs is still being
 * submitted may end that dependent from another thread before submit has filled in
 * all its inputs. Many wide submits racing many failures.
 */
Test(regress, failure_during_submit_of_wide_dependent, .timeout = 120)
{
	struct weft_client *c = open_threads(2);
	enum { WIDE = 64, ROUNDS = 3000 };
	struct weft_future *deps[WIDE], *f;

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < WIDE; i++) {
			if (i == 0)
				cr_assert_eq(weft_submit(c, fail_now, NULL, 0, NULL, 0, NULL,
							 &deps[i]), 0);
			else
				cr_assert_eq(weft_scatter(c, &i, sizeof(i), &deps[i]), 0);
		}
		/* deps[0] fails while this submit links its 64 edges. */
		cr_assert_eq(weft_submit(c, noop, deps, WIDE, NULL, 0, NULL, &f), 0);
		cr_assert_eq(weft_wait(f, -1), WEFT_ETASK);
		weft_release(f);
		for (int i = 0; i < WIDE; i++)
			weft_release(deps[i]);
	}
	cr_assert_eq(weft_client_close(c), 0);
}
