// SPDX-License-Identifier: MIT
/* Unit tests of alloc/: exact accounting, domains, huge pages, the failure hook. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../common.h"
#include "alloc.h"

Test(alloc, create_bad_arguments_return_einval)
{
	struct weft__alloc *a = NULL;
	int nodes[2] = { -1, -1 };

	cr_assert_eq(weft__alloc_create(0, nodes, &a), -EINVAL);
	cr_assert_eq(weft__alloc_create(WEFT_ALLOC_MAX_NUMA + 1, nodes, &a), -EINVAL);
	cr_assert_eq(weft__alloc_create(1, NULL, &a), -EINVAL);
	cr_assert_eq(weft__alloc_create(1, nodes, NULL), -EINVAL);
	cr_assert_null(a);
	weft__alloc_destroy(NULL);
}

Test(alloc, bytes_are_exact_and_return_to_zero)
{
	struct weft__alloc *a;
	int nodes[2] = { -1, -1 };
	size_t sizes[] = { 17, 100, 4096, 1 << 20, 3 << 20 };
	void *p[5];
	size_t u[5], sum = 0;

	cr_assert_eq(weft__alloc_create(2, nodes, &a), 0);
	cr_assert_eq(weft__alloc_bytes(a), 0);
	for (int i = 0; i < 5; i++) {
		p[i] = weft__alloc(a, i % 2, sizes[i], &u[i]);
		cr_assert_not_null(p[i]);
		cr_assert_geq(u[i], sizes[i]);
		cr_assert_eq((uintptr_t)p[i] % 16, 0);
		memset(p[i], 0xab, sizes[i]);
		sum += u[i];
		cr_assert_eq(weft__alloc_bytes(a), sum);
	}
	cr_assert_eq(weft__alloc_peak(a), sum);
	for (int i = 0; i < 5; i++)
		weft__free(a, p[i], u[i]);
	cr_assert_eq(weft__alloc_bytes(a), 0);
	cr_assert_eq(weft__alloc_peak(a), sum, "peak is a high-water mark");
	weft__alloc_destroy(a);
}

Test(alloc, freed_pages_are_held_until_a_purge_wants_them)
{
	size_t len = 16u << 20, u[2], held;
	int nodes[2] = { -1, -1 };
	struct weft__alloc *a;
	void *p[2];

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	cr_skip_test("sanitizer builds take memory from libc, which holds no pages");
#endif
	cr_assert_eq(weft__alloc_create(2, nodes, &a), 0);
	for (int i = 0; i < 2; i++) {
		p[i] = weft__alloc(a, i, len, &u[i]);
		cr_assert_not_null(p[i]);
		memset(p[i], 0xab, len);
	}
	for (int i = 0; i < 2; i++)
		weft__free(a, p[i], u[i]);
	held = weft__alloc_held(a);
	cr_assert_geq(held, 2 * len, "both domains hold their freed pages");
	weft__alloc_purge(a, held);
	cr_assert_eq(weft__alloc_held(a), held, "a purge that may keep them all keeps them");
	weft__alloc_purge(a, 0);
	cr_assert_lt(weft__alloc_held(a), len, "a purge to nothing gave back %zu of %zu bytes",
		     held - weft__alloc_held(a), held);
	weft__alloc_destroy(a);
}

Test(alloc, out_of_range_domain_uses_domain_zero)
{
	struct weft__alloc *a;
	int nodes[1] = { -1 };
	size_t u;
	void *p;

	cr_assert_eq(weft__alloc_create(1, nodes, &a), 0);
	p = weft__alloc(a, 5, 64, &u);
	cr_assert_not_null(p);
	weft__free(a, p, u);
	cr_assert_eq(weft__alloc_bytes(a), 0);
	weft__alloc_destroy(a);
}

Test(alloc, fail_nth_fails_exactly_that_one)
{
	struct weft__alloc *a;
	int nodes[1] = { -1 };
	void *p1, *p2, *p3;
	size_t u1, u2 = 0, u3;

	cr_assert_eq(weft__alloc_create(1, nodes, &a), 0);
	weft__alloc_fail_nth(2);
	p1 = weft__alloc(a, 0, 64, &u1);
	p2 = weft__alloc(a, 0, 64, &u2);
	p3 = weft__alloc(a, 0, 64, &u3);
	cr_assert_not_null(p1);
	cr_assert_null(p2);
	cr_assert_not_null(p3);
	cr_assert_eq(weft__alloc_bytes(a), u1 + u3, "a failed allocation counts nothing");
	weft__free(a, p1, u1);
	weft__free(a, p3, u3);
	weft__alloc_destroy(a);
}

Test(alloc, a_large_result_to_be_read_is_advised_to_huge_pages_inside_its_bounds)
{
	size_t big = (8u << 20) + 100, small = 3u << 20, ub, us;
	struct weft__alloc *a;
	int nodes[1] = { -1 };
	uintptr_t inside;
	char *pb, *ps;

	NEEDS_HUGE_ADVICE();
	cr_assert_eq(weft__alloc_create(1, nodes, &a), 0);
	ps = weft__alloc(a, 0, small, &us);
	cr_assert_not_null(ps);
	weft__alloc_advise_read(ps, us);
	cr_assert_eq(advised_huge(ps + small / 2), 0, "under 4 MiB keeps small pages");

	pb = weft__alloc(a, 0, big, &ub);
	cr_assert_not_null(pb);
	cr_assert_eq(advised_huge(pb + big / 2), 0, "nothing is advised until asked");
	weft__alloc_advise_read(pb, ub);
	inside = ((uintptr_t)pb + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
	cr_assert_eq(advised_huge((void *)inside), 1);
	cr_assert_eq(advised_huge(pb + big / 2), 1);
	if ((uintptr_t)pb != inside)
		cr_assert_eq(advised_huge(pb), 0, "the part before the first 2 MiB boundary is not");
	cr_assert_eq(advised_huge(ps + small / 2), 0, "nor the small result's pages");
	memset(pb, 0xab, big);
	weft__free(a, pb, ub);
	cr_assert_neq(advised_huge(pb + big / 2), 1, "the advice goes with the result");
	weft__free(a, ps, us);
	cr_assert_eq(weft__alloc_bytes(a), 0);
	weft__alloc_destroy(a);
}

static long resident_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

/*
 * Large results freed and their pages given back, then many small ones where they
 * were, a few bytes of each written: each small one faults in a small page, not a
 * huge one (which made 20,000 of them 465 MiB resident instead of 86).
 */
Test(alloc, small_results_where_large_ones_were_fault_in_small_pages, .timeout = 30)
{
	enum { NBIG = 4, NSMALL = 4000 };
	static void *ps[NSMALL];
	static size_t us[NSMALL];
	size_t big = 64u << 20, ub[NBIG];
	struct weft__alloc *a;
	int nodes[1] = { -1 };
	void *pb[NBIG];
	long before;

	NEEDS_HUGE_ADVICE();
	cr_assert_eq(weft__alloc_create(1, nodes, &a), 0);
	for (int i = 0; i < NBIG; i++) {
		pb[i] = weft__alloc(a, 0, big, &ub[i]);
		cr_assert_not_null(pb[i]);
		weft__alloc_advise_read(pb[i], ub[i]);
		memset(pb[i], 1, big);
	}
	for (int i = 0; i < NBIG; i++)
		weft__free(a, pb[i], ub[i]);
	weft__alloc_purge(a, 0);
	before = resident_kib();
	for (int i = 0; i < NSMALL; i++) {
		ps[i] = weft__alloc(a, 0, (16u << 10) + (i % 7) * 4096, &us[i]);
		cr_assert_not_null(ps[i]);
		memset(ps[i], 2, 64);
	}
	/* A small page each is 16 MiB; a huge page per few of them is far more. */
	cr_assert_lt(resident_kib() - before, 40 << 10, "%ld KiB more resident",
		     resident_kib() - before);
	for (int i = 0; i < NSMALL; i++)
		weft__free(a, ps[i], us[i]);
	weft__alloc_destroy(a);
}
