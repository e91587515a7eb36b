// SPDX-License-Identifier: MIT
/* Unit tests of util/map.c against a plain array, through growth and deletions. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "map.h"

#define N 20000

Test(map, agrees_with_an_array_through_puts_and_deletes)
{
	static void *ref[N];
	struct weft__map m = { 0 };
	unsigned seed = 3;

	cr_assert_null(weft__map_get(&m, 1), "empty");
	cr_assert_null(weft__map_del(&m, 1));
	for (int round = 0; round < 200000; round++) {
		uint64_t k = (uint64_t)(rand_r(&seed) % N);
		void *v = (void *)(uintptr_t)(round + 1);

		if (rand_r(&seed) % 3) {
			cr_assert_eq(weft__map_put(&m, k * 4096, v), 0);
			ref[k] = v;
		} else {
			cr_assert_eq(weft__map_del(&m, k * 4096), ref[k]);
			ref[k] = NULL;
		}
	}
	size_t live = 0;

	for (uint64_t k = 0; k < N; k++) {
		cr_assert_eq(weft__map_get(&m, k * 4096), ref[k], "key %lu", (unsigned long)k);
		live += ref[k] != NULL;
	}
	cr_assert_eq(m.len, live);
	size_t seen = 0, i = 0;
	uint64_t key;
	void *val;

	while (weft__map_next(&m, &i, &key, &val)) {
		cr_assert_eq(ref[key / 4096], val);
		seen++;
	}
	cr_assert_eq(seen, live);
	weft__map_free(&m);
}
