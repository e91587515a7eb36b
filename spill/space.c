// SPDX-License-Identifier: MIT
/* space.c - the file's space, a first-fit list of free ranges that coalesces. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- space ---- */



/*
 * First fit at @align; else the end of the file grows, from the free range that
 * ends there if there is one. Return: the offset.
 */
uint64_t weft__spill_space_alloc(struct weft__spill *s, uint64_t len, uint64_t align)
{
	uint64_t start, old_end;

	for (size_t i = 0; i < s->nfree; i++) {
		struct range *r = &s->free[i];
		uint64_t head, tail;

		start = round_up(r->off, align);
		if (start + len > r->off + r->len)
			continue;
		head = start - r->off;
		tail = r->off + r->len - (start + len);
		if (head) {
			r->len = head;		/* the tail, if any, goes back below */
		} else if (tail) {
			r->off += len;
			r->len -= len;
			return start;
		} else {
			memmove(r, r + 1, (s->nfree - i - 1) * sizeof(*r));
			s->nfree--;
		}
		if (head && tail)
			weft__spill_space_free(s, start + len, tail);
		return start;
	}
	old_end = s->end;
	if (s->nfree && s->free[s->nfree - 1].off + s->free[s->nfree - 1].len == old_end)
		old_end = s->free[--s->nfree].off;	/* too short alone: grown */
	start = round_up(old_end, align);
	s->end = start + len;
	if (start > old_end)
		weft__spill_space_free(s, old_end, start - old_end);	/* the alignment gap */
	return start;
}

/* With the lock held: the first free range that ends after @off. */
size_t weft__spill_free_after(const struct weft__spill *s, uint64_t off)
{
	size_t lo = 0, hi = s->nfree;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->free[mid].off + s->free[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Take [off, off + len), which lies in one free range, out of the free list, so
 * that the writer cannot use it while it is punched out.
 */
void weft__spill_space_take(struct weft__spill *s, uint64_t off, uint64_t len)
{
	size_t lo = weft__spill_free_after(s, off);
	struct range *r = &s->free[lo];
	uint64_t head, tail;

	head = off - r->off;
	tail = r->off + r->len - (off + len);
	if (head) {
		r->len = head;
		weft__spill_space_free(s, off + len, tail);	/* nothing to do if no tail */
	} else if (tail) {
		r->off += len;
		r->len -= len;
	} else {
		memmove(r, r + 1, (s->nfree - lo - 1) * sizeof(*r));
		s->nfree--;
	}
}

/* The file's used length: its end, less the free range there. */
uint64_t weft__spill_used_end(const struct weft__spill *s)
{
	const struct range *last = s->nfree ? &s->free[s->nfree - 1] : NULL;

	return last && last->off + last->len == s->end ? last->off : s->end;
}

/*
 * Give a range back, merging it with its neighbours. A free range at the end of the
 * file stays in the list (the end does not move back): its blocks are punched out
 * like any other's, while the writer may grow the file over it meanwhile.
 */
void weft__spill_space_free(struct weft__spill *s, uint64_t off, uint64_t len)
{
	size_t lo = 0, hi = s->nfree;

	if (!len)
		return;
	while (lo < hi) {		/* the first range after off */
		size_t mid = (lo + hi) / 2;

		if (s->free[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && s->free[lo - 1].off + s->free[lo - 1].len == off) {
		s->free[lo - 1].len += len;
		if (lo < s->nfree && off + len == s->free[lo].off) {
			s->free[lo - 1].len += s->free[lo].len;
			memmove(&s->free[lo], &s->free[lo + 1],
				(s->nfree - lo - 1) * sizeof(*s->free));
			s->nfree--;
		}
	} else if (lo < s->nfree && off + len == s->free[lo].off) {
		s->free[lo].off = off;
		s->free[lo].len += len;
	} else {
		if (s->nfree == s->free_cap) {
			size_t cap = s->free_cap ? 2 * s->free_cap : 64;
			struct range *r = realloc(s->free, cap * sizeof(*r));

			if (!r)
				return;	/* the range is lost to reuse, not to correctness */
			s->free = r;
			s->free_cap = cap;
		}
		memmove(&s->free[lo + 1], &s->free[lo], (s->nfree - lo) * sizeof(*s->free));
		s->free[lo] = (struct range){ off, len };
		s->nfree++;
	}
}
