/* SPDX-License-Identifier: MIT */
/*
 * deque.h - the Chase-Lev work-stealing deque, in the C11 form of Lê, Pop, Cohen and
 * Zappa Nardelli (PPoPP 2013). The owner pushes and pops at the bottom; any thread
 * steals from the top. The array grows by doubling; old arrays are kept until the
 * deque is destroyed, because a thief may still be reading one.
 *
 * A deque may also hold a batch: tasks pushed in one go, oldest first, into an
 * empty deque (the engine's turn at its inbox). They sit at indices below
 * batch_end and leave only from the top, the oldest first, whoever takes them: the
 * owner with take_oldest, a thief with steal_batch, which takes the older half at
 * once. So a batch keeps the order it came in, while what the owner pushes on top
 * of it stays last in, first out.
 */
#ifndef WEFT_DEQUE_H
#define WEFT_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "compiler.h"

struct weft__deque_array {
	int64_t mask;				/* capacity - 1; capacity a power of two */
	struct weft__deque_array *older;	/* the array this one replaced */
	_Atomic(void *) slot[];
};

struct weft__deque {
	_Atomic int64_t top __cacheline_aligned;	/* thieves' end */
	_Atomic int64_t bottom __cacheline_aligned;	/* owner's end */
	/* Its own line: thieves read it on every steal, the owner rarely writes it. */
	_Atomic(struct weft__deque_array *) array __cacheline_aligned;
	/*
	 * Indices below it belong to the last batch: the owner never pops them from
	 * the bottom. Written by the owner only, into an empty deque, before the
	 * batch's pushes publish it.
	 */
	_Atomic int64_t batch_end;
};

#define WEFT_DEQUE_EMPTY ((void *)0)
#define WEFT_DEQUE_ABORT ((void *)1)	/* lost a race; the deque may not be empty */

static inline struct weft__deque_array *weft__deque_array_new(int64_t cap)
{
	struct weft__deque_array *a = malloc(sizeof(*a) + cap * sizeof(a->slot[0]));

	if (a) {
		a->mask = cap - 1;
		a->older = NULL;
	}
	return a;
}

/* @cap: initial capacity, a power of two. Return: 0 or -ENOMEM. */
static inline int weft__deque_init(struct weft__deque *d, int64_t cap)
{
	struct weft__deque_array *a = weft__deque_array_new(cap);

	if (!a)
		return -12; /* -ENOMEM without dragging errno.h into every user */
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	atomic_init(&d->array, a);
	atomic_init(&d->batch_end, 0);
	return 0;
}

/* Frees every array. No thread may use the deque any more. */
static inline void weft__deque_fini(struct weft__deque *d)
{
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);

	while (a) {
		struct weft__deque_array *older = a->older;

		free(a);
		a = older;
	}
	atomic_store_explicit(&d->array, NULL, memory_order_relaxed);
}

/*
 * Test hook (engine.c): make the next @n grows fail as if out of memory, so that
 * what a full deque does to the engine can be tested; 0 turns it off. Return: how
 * many of the failures set before were still to come.
 */
#ifdef WEFT_TESTING
unsigned weft__deque_fail_grows(unsigned n);
bool weft__deque_grow_should_fail(void);
#else
/* Test hooks exist in the test build of the library only (WEFT_TESTING). */
static inline bool weft__deque_grow_should_fail(void)
{
	return false;
}
#endif

/* Owner only. Elements t..b-1 of @a move to a new array of twice the size. */
static inline struct weft__deque_array *
weft__deque_grow(struct weft__deque *d, struct weft__deque_array *a, int64_t t, int64_t b)
{
	struct weft__deque_array *n;
	int64_t i;

	if (weft__deque_grow_should_fail())
		return NULL;
	n = weft__deque_array_new(2 * (a->mask + 1));
	if (!n)
		return NULL;
	for (i = t; i < b; i++)
		atomic_store_explicit(&n->slot[i & n->mask],
				      atomic_load_explicit(&a->slot[i & a->mask],
							   memory_order_relaxed),
				      memory_order_relaxed);
	n->older = a;
	/* Release: a thief that loads the new array sees its slots filled. */
	atomic_store_explicit(&d->array, n, memory_order_release);
	return n;
}

/* Owner only. @x must not be NULL or WEFT_DEQUE_ABORT. Return: 0 or -ENOMEM. */
static inline int weft__deque_push(struct weft__deque *d, void *x)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);

	if (unlikely(b - t > a->mask)) {
		a = weft__deque_grow(d, a, t, b);
		if (!a)
			return -12;
	}
	atomic_store_explicit(&a->slot[b & a->mask], x, memory_order_relaxed);
	/*
	 * Release pairs with the acquire load of bottom in steal: a thief that sees the
	 * new bottom sees the slot and the task written before the push. (The paper's
	 * release fence plus relaxed store; a release store is the same on x86 and is
	 * what ThreadSanitizer understands.)
	 */
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return 0;
}

/*
 * Owner only: true if there is nothing to pop. Exact when true: top only grows, so
 * a stale top at or past bottom means an empty deque; and it spares pop's fence,
 * which a thread that finds its work elsewhere (the inbox) would pay every time.
 */
static inline bool weft__deque_empty(struct weft__deque *d)
{
	return atomic_load_explicit(&d->bottom, memory_order_relaxed) <=
	       atomic_load_explicit(&d->top, memory_order_relaxed);
}

/* Owner only. Return: the newest element, or WEFT_DEQUE_EMPTY. */
static inline void *weft__deque_pop(struct weft__deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);
	int64_t t;
	void *x;

	/*
	 * Every store of bottom is a release, not only push's: a thief may read any of
	 * them, and it must still see the tasks pushed before (free on x86).
	 */
	atomic_store_explicit(&d->bottom, b, memory_order_release);
	/* Pairs with the fence in steal: either the thief sees the lowered bottom or we
	 * see its raised top; both cannot miss each other for the last element. */
	atomic_thread_fence(memory_order_seq_cst);
	t = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (t > b) {
		atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
		return WEFT_DEQUE_EMPTY;
	}
	x = atomic_load_explicit(&a->slot[b & a->mask], memory_order_relaxed);
	if (t < b)	/* what the next pop returns: start fetching it */
		__builtin_prefetch(atomic_load_explicit(&a->slot[(b - 1) & a->mask],
							memory_order_relaxed));
	if (t == b) {
		/* The last element: race the thieves for it on top. */
		if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
							     memory_order_seq_cst,
							     memory_order_relaxed))
			x = WEFT_DEQUE_EMPTY;
		atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	}
	return x;
}

/* Any thread. Return: the oldest element, WEFT_DEQUE_EMPTY or WEFT_DEQUE_ABORT. */
static inline void *weft__deque_steal(struct weft__deque *d)
{
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	int64_t b;
	void *x;

	/* Pairs with the fence in pop (see there). */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire pairs with the release store of bottom in push. */
	b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (t >= b)
		return WEFT_DEQUE_EMPTY;
	/* Acquire pairs with the release store of array in grow. */
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_acquire);

	x = atomic_load_explicit(&a->slot[t & a->mask], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return WEFT_DEQUE_ABORT;
	return x;
}

/*
 * Owner only, into an empty deque: @x[0..n-1], oldest first, as a batch. The array
 * must have room for them (an empty array of at least @n slots), so nothing grows.
 */
static inline void weft__deque_push_batch(struct weft__deque *d, void *const *x, unsigned n)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);
	unsigned i;

	/*
	 * Relaxed: the release store of bottom below publishes it with the slots. A
	 * thief that reads the new end with an old bottom takes nothing: the deque
	 * was empty up to that bottom.
	 */
	atomic_store_explicit(&d->batch_end, b + n, memory_order_relaxed);
	for (i = 0; i < n; i++)
		atomic_store_explicit(&a->slot[(b + i) & a->mask], x[i], memory_order_relaxed);
	/* Release pairs with the acquire load of bottom in steal and steal_batch. */
	atomic_store_explicit(&d->bottom, b + n, memory_order_release);
}

/*
 * Owner only. Return: the newest element the owner pushed on top of its batch, else
 * the batch's oldest, else WEFT_DEQUE_EMPTY.
 */
static inline void *weft__deque_take(struct weft__deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t e = atomic_load_explicit(&d->batch_end, memory_order_relaxed);
	int64_t t;
	void *x;

	if (b > e)
		return weft__deque_pop(d);
	/* Only the top moves meanwhile, by thieves' exchanges: no fence needed. */
	t = atomic_load_explicit(&d->top, memory_order_relaxed);
	while (t < b) {
		struct weft__deque_array *a =
			atomic_load_explicit(&d->array, memory_order_relaxed);

		x = atomic_load_explicit(&a->slot[t & a->mask], memory_order_relaxed);
		/* As in steal: whoever moves top past t owns the element at t. */
		if (atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
							    memory_order_seq_cst,
							    memory_order_relaxed))
			return x;
	}
	return WEFT_DEQUE_EMPTY;
}

/*
 * Any thread but the owner: the older half (at least one, at most @max) of what is
 * left of the deque's batch, into @out, oldest first. Return: how many; 0 when no
 * batch element is left, or -1 for a lost race (the batch may not be empty).
 *
 * Safe against the owner because it never pops below batch_end: elements there
 * leave only through exchanges on top, and winning the exchange from t means none
 * of t..t+k-1 left before. A batch_end read stale is older and lower, so it only
 * takes less (a new batch starts in an empty deque, above every older one).
 */
static inline int weft__deque_steal_batch(struct weft__deque *d, void **out, unsigned max)
{
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	int64_t b, e, k, i;

	/* Pairs with the fence in pop, as in steal. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire pairs with the release stores of bottom in push and push_batch. */
	b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	e = atomic_load_explicit(&d->batch_end, memory_order_relaxed);
	if (e < b)
		b = e;
	if (t >= b)
		return 0;
	k = (b - t + 1) / 2;
	if (k > max)
		k = max;
	/* Acquire pairs with the release store of array in grow. */
	struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_acquire);

	for (i = 0; i < k; i++)
		out[i] = atomic_load_explicit(&a->slot[(t + i) & a->mask], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + k,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return -1;
	return (int)k;
}

#endif /* WEFT_DEQUE_H */
