// SPDX-License-Identifier: MIT
/*
 * sys.c - result memory from the C library, for sanitizer builds: AddressSanitizer
 * must see every buffer to catch an overflow, which jemalloc's arenas would hide.
 * Domains are recorded but not bound.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "alloc.h"

struct weft__alloc {
	struct weft__acct acct;			/* exact live bytes */
	unsigned nnuma;				/* domains, for range checks */
};

int weft__alloc_create(unsigned nnuma, const int *os_node, struct weft__alloc **out)
{
	struct weft__alloc *a;

	if (!nnuma || nnuma > WEFT_ALLOC_MAX_NUMA || !os_node || !out)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->nnuma = nnuma;
	*out = a;
	return 0;
}

void weft__alloc_destroy(struct weft__alloc *a)
{
	free(a);
}

void *weft__alloc(struct weft__alloc *a, unsigned numa, size_t len, size_t *usable)
{
	void *p;

	(void)numa;
	if (weft__alloc_should_fail() || !len)
		return NULL;
	if (posix_memalign(&p, 16, len))
		return NULL;
	/* Account what was asked for: a sanitizer flags use beyond it anyway. */
	*usable = len;
	weft__acct_add(&a->acct, len);
	return p;
}

void weft__free(struct weft__alloc *a, void *p, size_t usable)
{
	if (!p)
		return;
	weft__acct_sub(&a->acct, usable);
	free(p);
}

void weft__alloc_advise_read(void *p, size_t len)
{
	(void)p;
	(void)len;
}

size_t weft__alloc_bytes(const struct weft__alloc *a)
{
	return atomic_load_explicit(&a->acct.bytes, memory_order_relaxed);
}

size_t weft__alloc_peak(const struct weft__alloc *a)
{
	return atomic_load_explicit(&a->acct.peak, memory_order_relaxed);
}

unsigned weft__alloc_unbound(const struct weft__alloc *a)
{
	(void)a;
	return 0;
}

/* libc's malloc returns large blocks to the system at free already. */
size_t weft__alloc_held(struct weft__alloc *a)
{
	(void)a;
	return 0;
}

void weft__alloc_purge(struct weft__alloc *a, size_t keep)
{
	(void)a;
	(void)keep;
}
