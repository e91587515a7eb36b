// SPDX-License-Identifier: MIT
/* Unit tests of util/map.c against a plain array, through growth and deletions. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

#define N 20000

/* Keys k * @stride, k < N, put and deleted at random @rounds times, in a map of @ids
 * or of hashed keys. */
static void agree(bool ids, uint64_t stride, int rounds)
{
	static void *ref[N];
	struct weft__map m = { .ids = ids };
	unsigned seed = 3;

	memset(ref, 0, sizeof(ref));

	cr_assert_null(weft__map_get(&m, 1), "empty");
	cr_assert_null(weft__map_del(&m, 1));
	for (int round = 0; round < rounds; round++) {
		uint64_t k = (uint64_t)(rand_r(&seed) % N);
		void *v = (void *)(uintptr_t)(round + 1);

		if (rand_r(&seed) % 3) {
			cr_assert_eq(weft__map_put(&m, k * stride, v), 0);
			ref[k] = v;
		} else {
			cr_assert_eq(weft__map_del(&m, k * stride), ref[k]);
			ref[k] = NULL;
		}
	}
	size_t live = 0;

	for (uint64_t k = 0; k < N; k++) {
		cr_assert_eq(weft__map_get(&m, k * stride), ref[k], "key %lu", (unsigned long)k);
		live += ref[k] != NULL;
	}
	cr_assert_eq(m.len, live);
	size_t seen = 0, i = 0;
	uint64_t key;
	void *val;

	while (weft__map_next(&m, &i, &key, &val)) {
		cr_assert_eq(ref[key / stride], val);
		seen++;
	}
	cr_assert_eq(seen, live);
	weft__map_free(&m);
}

Test(map, agrees_with_an_array_through_puts_and_deletes)
{
	agree(false, 4096, 200000);
	agree(false, 1, 200000);
}

/*
 * A map of ids: their low bits are their slot. Consecutive ids, and ids that share
 * their low bits (every one collides: long runs to shift back on deletion).
 */
Test(map, of_ids_agrees_with_an_array_even_when_every_id_collides)
{
	agree(true, 1, 200000);
	agree(true, 1u << 20, 20000);	/* each op walks the whole run */
}

/*
 * After a burst: a map of 100k entries of which 10 are left gives its room back on
 * shrink, keeps the 10 (and its kind: ids), and grows again as before; an empty one
 * gives back all; one that is full enough is left as it is.
 */
static void shrink_after_a_burst(bool ids)
{
	struct weft__map m = { .ids = ids };
	size_t cap, i = 0;
	uint64_t key;
	void *val;

	for (uint64_t k = 1; k <= 100000; k++)
		cr_assert_eq(weft__map_put(&m, k, (void *)(uintptr_t)k), 0);
	for (uint64_t k = 1; k <= 100000; k++)
		if (k % 10000)
			cr_assert_eq(weft__map_del(&m, k), (void *)(uintptr_t)k);
	cr_assert_geq(m.cap, 131072, "deletion does not shrink: %zu", m.cap);
	weft__map_shrink(&m);
	cr_assert_eq(m.len, 10);
	cr_assert_eq(m.cap, 32, "10 entries at most half full: %zu slots", m.cap);
	cr_assert_eq(m.ids, ids);
	for (uint64_t k = 1; k <= 100000; k++)
		cr_assert_eq(weft__map_get(&m, k), k % 10000 ? NULL : (void *)(uintptr_t)k,
			     "key %lu", (unsigned long)k);
	while (weft__map_next(&m, &i, &key, &val))
		cr_assert_eq(key, (uint64_t)(uintptr_t)val);
	cap = m.cap;
	weft__map_shrink(&m);		/* 10 in 32: not under 1/8 */
	cr_assert_eq(m.cap, cap);
	for (uint64_t k = 200001; k <= 201000; k++)
		cr_assert_eq(weft__map_put(&m, k, (void *)(uintptr_t)k), 0);
	cr_assert_eq(m.len, 1010);
	cr_assert_eq(weft__map_get(&m, 200500), (void *)(uintptr_t)200500);
	for (uint64_t k = 1; k <= 201000; k++)
		weft__map_del(&m, k);
	cr_assert_eq(m.len, 0);
	weft__map_shrink(&m);
	cr_assert_eq(m.cap, 0, "an empty map holds no table");
	cr_assert_null(m.keys);
	cr_assert_eq(m.ids, ids);
	cr_assert_null(weft__map_get(&m, 5));
	cr_assert_null(weft__map_del(&m, 5));
	cr_assert_eq(weft__map_put(&m, 5, &m), 0);
	cr_assert_eq(weft__map_get(&m, 5), &m);
	weft__map_free(&m);
}

Test(map, shrink_gives_back_what_a_burst_took)
{
	shrink_after_a_burst(true);
	shrink_after_a_burst(false);
}
