/* SPDX-License-Identifier: MIT */
/*
 * huge.h - buffers on transparent huge pages, for the library and for the programs
 * built on it (join/, tools/, perf/): header only, it needs nothing of weft.
 *
 * A request to a disk is a list of physically contiguous segments, and virtual
 * disks pay for each: from 4 KiB pages, O_DIRECT runs several times slower,
 * whatever the request size or depth. A buffer at a huge page boundary, on huge
 * pages where the kernel grants them, is a few segments. Without them it works the
 * same, slower.
 */
#ifndef WEFT_UTIL_HUGE_H
#define WEFT_UTIL_HUGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)	/* a transparent huge page on x86-64 */

/* @len bytes at a huge page boundary, zeroed. Return: the buffer, or NULL. */
static inline void *huge_map(size_t len)
{
	size_t over = len + HUGE_PAGE;
	char *m = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	char *p;

	if (m == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	/* Keep [p, p + len): the rest of the mapping goes back. */
	if (p > m)
		munmap(m, p - m);
	if (m + over > p + len)
		munmap(p + len, m + over - (p + len));
	(void)madvise(p, len, MADV_HUGEPAGE);	/* advice: it may be refused */
	return p;
}

/*
 * Give @advice (MADV_HUGEPAGE, or MADV_NOHUGEPAGE to take it back) for the huge
 * pages that lie wholly inside [@p, @p + @len), so that none of them spans memory
 * beyond it; advice again, which a kernel without THP ignores.
 */
static inline void huge_advise_inside(void *p, size_t len, int advice)
{
	uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(HUGE_PAGE - 1);

	if (end > start)
		(void)madvise((void *)start, end - start, advice);
}

/* Give back a buffer of huge_map(@len); NULL is fine. */
static inline void huge_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

#endif /* WEFT_UTIL_HUGE_H */
