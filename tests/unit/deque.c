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

/* A batch leaves oldest first, to the owner and to thieves, under what the owner
 * pushes on top of it, which stays last in, first out. */
Test(deque, batch_leaves_oldest_first_under_local_pushes, .timeout = 5)
{
	struct weft__deque d;
	void *batch[6], *got[8];

	cr_assert_eq(weft__deque_init(&d, 16), 0);
	for (int i = 0; i < 6; i++)
		batch[i] = ITEM(i);
	weft__deque_push_batch(&d, batch, 6);
	cr_assert_eq(weft__deque_take(&d), ITEM(0));
	/* A thief takes the older half of the five left, in order. */
	cr_assert_eq(weft__deque_steal_batch(&d, got, 8), 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(got[i], ITEM(1 + i));
	/* What the owner pushes on top comes first, newest first, to the owner... */
	cr_assert_eq(weft__deque_push(&d, ITEM(100)), 0);
	cr_assert_eq(weft__deque_push(&d, ITEM(101)), 0);
	cr_assert_eq(weft__deque_take(&d), ITEM(101));
	/* ...and is never part of a batch a thief takes. */
	cr_assert_eq(weft__deque_steal_batch(&d, got, 1), 1);
	cr_assert_eq(got[0], ITEM(4));
	cr_assert_eq(weft__deque_take(&d), ITEM(100));
	cr_assert_eq(weft__deque_take(&d), ITEM(5));
	cr_assert_eq(weft__deque_steal_batch(&d, got, 8), 0);
	cr_assert_eq(weft__deque_take(&d), WEFT_DEQUE_EMPTY);
	cr_assert(weft__deque_empty(&d));
	/* Local items only: a thief's batch steal takes none of them. */
	cr_assert_eq(weft__deque_push(&d, ITEM(7)), 0);
	cr_assert_eq(weft__deque_steal_batch(&d, got, 8), 0);
	cr_assert_eq(weft__deque_steal(&d), ITEM(7));
	weft__deque_fini(&d);
}

/*
 * A storm of batches: the owner pushes batches and items of its own and takes,
 * while thieves take halves of batches and single items; each item is taken once,
 * and each thief's halves come oldest first.
 */
struct batch_storm {
	struct weft__deque d;
	_Atomic int taken[STORM_ITEMS];
	_Atomic int done;
	_Atomic long halves;
};

static void batch_take(struct batch_storm *s, void *p)
{
	uintptr_t i = INDEX(p);

	cr_assert_lt(i, STORM_ITEMS);
	cr_assert_eq(atomic_fetch_add(&s->taken[i], 1), 0, "item %lu taken twice",
		     (unsigned long)i);
}

static void *batch_thief(void *arg)
{
	struct batch_storm *s = arg;
	void *got[64];

	while (!atomic_load(&s->done)) {
		int k = weft__deque_steal_batch(&s->d, got, 64);

		for (int i = 0; i < k; i++) {
			if (i)
				cr_assert_gt(INDEX(got[i]), INDEX(got[i - 1]));
			batch_take(s, got[i]);
		}
		if (k > 0)
			atomic_fetch_add(&s->halves, 1);
		if (k == 0) {
			void *p = weft__deque_steal(&s->d);

			if (p != WEFT_DEQUE_EMPTY && p != WEFT_DEQUE_ABORT)
				batch_take(s, p);
		}
	}
	return NULL;
}

Test(deque, batch_storm_takes_each_item_once, .timeout = 60)
{
	static struct batch_storm s;
	pthread_t th[THIEVES];
	void *batch[100];
	int i = 0, j;

	cr_assert_eq(weft__deque_init(&s.d, 256), 0);
	for (j = 0; j < THIEVES; j++)
		pthread_create(&th[j], NULL, batch_thief, &s);
	while (i < STORM_ITEMS) {
		void *p;

		/* A batch goes into an empty deque only. */
		while ((p = weft__deque_take(&s.d)) != WEFT_DEQUE_EMPTY)
			batch_take(&s, p);
		int n = 1 + i % 97;

		for (j = 0; j < n && i < STORM_ITEMS; j++)
			batch[j] = ITEM(i++);
		weft__deque_push_batch(&s.d, batch, (unsigned)j);
		/* Take some, and push some of its own on top now and then. */
		for (j = 0; j < 3 && (p = weft__deque_take(&s.d)) != WEFT_DEQUE_EMPTY; j++)
			batch_take(&s, p);
		for (j = 0; j < i % 5 && i < STORM_ITEMS; j++)
			cr_assert_eq(weft__deque_push(&s.d, ITEM(i++)), 0);
	}
	void *p;

	while ((p = weft__deque_take(&s.d)) != WEFT_DEQUE_EMPTY)
		batch_take(&s, p);
	atomic_store(&s.done, 1);
	for (j = 0; j < THIEVES; j++)
		pthread_join(th[j], NULL);
	for (i = 0; i < STORM_ITEMS; i++)
		cr_assert_eq(atomic_load(&s.taken[i]), 1, "item %d taken %d times", i,
			     atomic_load(&s.taken[i]));
	cr_log_info("halves stolen: %ld", atomic_load(&s.halves));
	weft__deque_fini(&s.d);
}
