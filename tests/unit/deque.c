// SPDX-License-Identifier: MIT
/* Unit tests of core/deque.h: order, growth, and steal storms. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "deque.h"

#define ITEM(i) ((void *)(uintptr_t)(((i) + 1) << 1))	/* never NULL or ABORT */
#define INDEX(p) (((uintptr_t)(p) >> 1) - 1)

Test(deque, pop_returns_newest_first, .timeout = 5)
{
	struct weft__deque d;

	cr_assert_eq(weft__deque_init(&d, 4), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft__deque_push(&d, ITEM(i)), 0);
	for (int i = 2; i >= 0; i--)
		cr_assert_eq(weft__deque_pop(&d), ITEM(i));
	cr_assert_eq(weft__deque_pop(&d), WEFT_DEQUE_EMPTY);
	weft__deque_fini(&d);
}

Test(deque, steal_returns_oldest_first, .timeout = 5)
{
	struct weft__deque d;

	cr_assert_eq(weft__deque_init(&d, 4), 0);
	for (int i = 0; i < 3; i++)
		weft__deque_push(&d, ITEM(i));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft__deque_steal(&d), ITEM(i));
	weft__deque_fini(&d);
}

Test(deque, steal_empty_returns_empty, .timeout = 5)
{
	struct weft__deque d;

	cr_assert_eq(weft__deque_init(&d, 2), 0);
	cr_assert_eq(weft__deque_steal(&d), WEFT_DEQUE_EMPTY);
	cr_assert_eq(weft__deque_pop(&d), WEFT_DEQUE_EMPTY);
	weft__deque_push(&d, ITEM(0));
	cr_assert_eq(weft__deque_pop(&d), ITEM(0));
	cr_assert_eq(weft__deque_steal(&d), WEFT_DEQUE_EMPTY);
	weft__deque_fini(&d);
}

/* The owner's emptiness hint: true exactly when nothing is left to pop or steal. */
Test(deque, empty_follows_push_pop_and_steal, .timeout = 5)
{
	struct weft__deque d;

	cr_assert_eq(weft__deque_init(&d, 2), 0);
	cr_assert(weft__deque_empty(&d));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft__deque_push(&d, ITEM(i)), 0);	/* grows once */
	cr_assert_not(weft__deque_empty(&d));
	cr_assert_eq(weft__deque_steal(&d), ITEM(0));
	cr_assert_eq(weft__deque_pop(&d), ITEM(2));
	cr_assert_not(weft__deque_empty(&d));
	cr_assert_eq(weft__deque_steal(&d), ITEM(1));
	cr_assert(weft__deque_empty(&d), "the last item went to a thief");
	cr_assert_eq(weft__deque_pop(&d), WEFT_DEQUE_EMPTY);
	cr_assert(weft__deque_empty(&d), "a pop of nothing leaves it empty");
	cr_assert_eq(weft__deque_push(&d, ITEM(3)), 0);
	cr_assert_eq(weft__deque_pop(&d), ITEM(3));
	cr_assert(weft__deque_empty(&d));
	weft__deque_fini(&d);
}

Test(deque, push_grows_and_keeps_every_item, .timeout = 5)
{
	struct weft__deque d;
	const int n = 10000;

	cr_assert_eq(weft__deque_init(&d, 2), 0);
	/* Steal a few first so the live range wraps around the ring as it grows. */
	for (int i = 0; i < 5; i++)
		weft__deque_push(&d, ITEM(i));
	for (int i = 0; i < 5; i++)
		cr_assert_eq(weft__deque_steal(&d), ITEM(i));
	for (int i = 0; i < n; i++)
		cr_assert_eq(weft__deque_push(&d, ITEM(i)), 0);
	for (int i = 0; i < n / 2; i++)
		cr_assert_eq(weft__deque_steal(&d), ITEM(i));
	for (int i = n - 1; i >= n / 2; i--)
		cr_assert_eq(weft__deque_pop(&d), ITEM(i));
	cr_assert_eq(weft__deque_pop(&d), WEFT_DEQUE_EMPTY);
	weft__deque_fini(&d);
}

/* A storm: the owner pushes and pops while thieves steal; each item is taken once. */
#define STORM_ITEMS 200000
#define THIEVES 3

struct storm {
	struct weft__deque d;
	_Atomic int taken[STORM_ITEMS];
	_Atomic int done;
	_Atomic long stolen;
};

static void take(struct storm *s, void *p)
{
	uintptr_t i = INDEX(p);

	cr_assert_lt(i, STORM_ITEMS);
	cr_assert_eq(atomic_fetch_add(&s->taken[i], 1), 0, "item %lu taken twice",
		     (unsigned long)i);
}

static void *thief(void *arg)
{
	struct storm *s = arg;

	while (!atomic_load(&s->done)) {
		void *p = weft__deque_steal(&s->d);

		if (p != WEFT_DEQUE_EMPTY && p != WEFT_DEQUE_ABORT) {
			take(s, p);
			atomic_fetch_add(&s->stolen, 1);
		}
	}
	return NULL;
}

Test(deque, steal_storm_takes_each_item_once, .timeout = 60)
{
	static struct storm s;
	pthread_t th[THIEVES];
	int i;

	cr_assert_eq(weft__deque_init(&s.d, 8), 0);
	for (i = 0; i < THIEVES; i++)
		pthread_create(&th[i], NULL, thief, &s);
	for (i = 0; i < STORM_ITEMS; i++) {
		weft__deque_push(&s.d, ITEM(i));
		/* Pop about every third push, so owner and thieves meet at the end. */
		if (i % 3 == 2) {
			void *p = weft__deque_pop(&s.d);

			if (p != WEFT_DEQUE_EMPTY)
				take(&s, p);
		}
	}
	for (;;) {
		void *p = weft__deque_pop(&s.d);

		if (p == WEFT_DEQUE_EMPTY)
			break;
		take(&s, p);
	}
	atomic_store(&s.done, 1);
	for (i = 0; i < THIEVES; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < STORM_ITEMS; i++)
		cr_assert_eq(atomic_load(&s.taken[i]), 1, "item %d taken %d times", i,
			     atomic_load(&s.taken[i]));
	cr_log_info("stolen: %ld of %d", atomic_load(&s.stolen), STORM_ITEMS);
	weft__deque_fini(&s.d);
}
