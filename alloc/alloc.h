/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - memory for results: one arena per NUMA domain, exact byte accounting.
 *
 * alloc/ is the bottom layer: it knows nothing of tasks. The jemalloc backend
 * (arena.c) is the normal one; sys.c serves sanitizer builds, where every buffer must
 * come from the sanitizer's own malloc so that overflows are caught.
 */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define WEFT_ALLOC_MAX_NUMA 64

struct weft__alloc;

/**
 * weft__alloc_create() - One arena per NUMA domain.
 * @nnuma:   number of domains (1..WEFT_ALLOC_MAX_NUMA).
 * @os_node: for each domain, the OS node its pages should live on, or -1 for none.
 *           Binding is best effort: a node the kernel does not know is not bound.
 */
int weft__alloc_create(unsigned nnuma, const int *os_node, struct weft__alloc **out)
	__attribute__((warn_unused_result));
/* Frees every arena and everything still allocated from them. NULL does nothing. */
void weft__alloc_destroy(struct weft__alloc *a);

/*
 * Allocate @len bytes (> 0) on domain @numa, 16-byte aligned, and account their
 * exact usable size, which is returned in @usable. NULL when memory is exhausted.
 */
void *weft__alloc(struct weft__alloc *a, unsigned numa, size_t len, size_t *usable);
/* Free what weft__alloc() returned; @usable is the size it reported. */
void weft__free(struct weft__alloc *a, void *p, size_t usable);

/*
 * Say that the @len bytes at @p, just allocated, are a result other processes may
 * read: from 4 MiB, the 2 MiB-aligned inside of it is asked to live on huge pages
 * (so that no huge page spans two results). shm's read pins and copies its source
 * a page at a time, and a 64 MiB read from huge pages is 1.5 times as fast here;
 * the destination's pages hardly matter, so memory a read lands in is not advised:
 * on a virtual machine that gives freed 2 MiB blocks back to its host, a fresh
 * huge page faults in several times slower than small ones (perf/HISTORY.md).
 * weft__free() takes the advice back from 4 MiB or more (MADV_NOHUGEPAGE: where
 * the system's THP is "always", that range keeps small pages until advised again).
 */
void weft__alloc_advise_read(void *p, size_t len);

/* Bytes allocated and not yet freed, exactly; and the most there have been. */
size_t weft__alloc_bytes(const struct weft__alloc *a);
size_t weft__alloc_peak(const struct weft__alloc *a);
/*
 * Pages of freed memory that the arenas hold for reuse; SIZE_MAX when the allocator
 * cannot tell. They are given back only by weft__alloc_purge() and at destroy.
 */
size_t weft__alloc_held(struct weft__alloc *a);
/*
 * Give the pages of freed memory back to the system when more than @keep bytes of
 * them are held: the spill manager frees memory to bring the process under its
 * limit, and that counts only once the pages are gone; below that, keeping them
 * saves faulting them in again. An idle engine purges with @keep 0.
 */
void weft__alloc_purge(struct weft__alloc *a, size_t keep);
/* Domains whose pages could not be bound to their node (0 on a one-node machine). */
unsigned weft__alloc_unbound(const struct weft__alloc *a);

#ifdef WEFT_TESTING
/*
 * Test hook: make the @nth weft__alloc() from now fail (1 = the next one); 0 turns it
 * off. Process-wide; used by tests to walk error paths.
 */
void weft__alloc_fail_nth(unsigned nth);
#endif

/* Shared by the backends: accounting and the failure hook. */
struct weft__acct {
	_Atomic size_t bytes;			/* live bytes */
	_Atomic size_t peak;			/* high-water mark of bytes */
};

void weft__acct_add(struct weft__acct *ac, size_t n);
void weft__acct_sub(struct weft__acct *ac, size_t n);
#ifdef WEFT_TESTING
bool weft__alloc_should_fail(void);
#else
/* Test hooks exist in the test build of the library only (WEFT_TESTING). */
static inline bool weft__alloc_should_fail(void)
{
	return false;
}
#endif

#endif /* WEFT_ALLOC_H */
