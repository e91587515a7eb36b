// SPDX-License-Identifier: MIT
/* acct.c - exact byte accounting and the failure hook shared by both backends. */
#include "alloc.h"

#ifdef WEFT_TESTING
/* Counts down to the allocation that must fail; 0 means off. */
static _Atomic unsigned fail_countdown;

void weft__alloc_fail_nth(unsigned nth)
{
	atomic_store_explicit(&fail_countdown, nth, memory_order_relaxed);
}

bool weft__alloc_should_fail(void)
{
	unsigned n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);

	/* The common case is one relaxed load: the hook is off. */
	while (n) {
		if (atomic_compare_exchange_weak_explicit(&fail_countdown, &n, n - 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return n == 1;
	}
	return false;
}
#endif /* WEFT_TESTING */

void weft__acct_add(struct weft__acct *ac, size_t n)
{
	/* Relaxed: the counters order nothing else; readers want a number. */
	size_t now = atomic_fetch_add_explicit(&ac->bytes, n, memory_order_relaxed) + n;
	size_t peak = atomic_load_explicit(&ac->peak, memory_order_relaxed);

	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&ac->peak, &peak, now,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

void weft__acct_sub(struct weft__acct *ac, size_t n)
{
	atomic_fetch_sub_explicit(&ac->bytes, n, memory_order_relaxed);
}
