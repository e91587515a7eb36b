/* SPDX-License-Identifier: MIT */
/* Helpers shared by the integration and stress tests: weft.h only. */
#ifndef WEFT_TEST_COMMON_H
#define WEFT_TEST_COMMON_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "tmp.h"

/*
 * A task function, registered under its own name: the same source built as a
 * library (lib<test>.so) is loaded by the workers when the suite runs against a
 * cluster (tests/run.sh's integration:cluster tier), and a submit by pointer sends
 * that name.
 */
#define TASK(name)								\
	static int name(struct weft_ctx *, const struct weft_buf *, size_t,	\
			const void *, size_t);					\
	WEFT_TASK(name)								\
	static __attribute__((unused)) int name(struct weft_ctx *ctx,		\
						const struct weft_buf *in,	\
						size_t nin, const void *arg,	\
						size_t arglen)

/* Run against a cluster (weft-cluster sets it): weft_client_open(NULL) connects. */
static inline int on_cluster(void)
{
	const char *s = getenv("WEFT_SCHEDULER");

	return s && *s;
}

/*
 * A test of the embedded engine's own resources (its threads, memory accounting,
 * spill file) or of state its tasks share with the test's process: skipped, with
 * @why, when the suite runs against a cluster.
 */
#define EMBEDDED_ONLY(why)							\
	do {									\
		if (on_cluster())						\
			cr_skip_test("embedded only: %s", why);			\
	} while (0)

/*
 * Whether the mapping that holds @addr is advised to huge pages: /proc/self/smaps
 * shows the advice as "hg" among its VmFlags. -1 when no mapping holds it.
 */
static inline int advised_huge(const void *addr)
{
	uintptr_t at = (uintptr_t)addr, lo, hi;
	char line[512];
	int found = 0, hg = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	cr_assert_not_null(f);
	while (hg < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			found = at >= lo && at < hi;
		else if (found && !strncmp(line, "VmFlags:", 8))
			hg = strstr(line, " hg") != NULL;
	}
	fclose(f);
	return hg;
}

/*
 * Skip a test of the advice to huge pages where none is given: a kernel without
 * them, or a sanitizer build (its memory is libc's, see alloc/sys.c).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NEEDS_HUGE_ADVICE()							\
	cr_skip_test("sanitizer builds take memory from libc and advise nothing")
#else
#define NEEDS_HUGE_ADVICE()							\
	do {									\
		if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK))	\
			cr_skip_test("this kernel has no transparent huge pages");	\
	} while (0)
#endif

/* Under sanitizers everything is slower; WEFT_STRESS_SCALE divides the counts. */
static inline long stress_scaled(long n)
{
	const char *s = getenv("WEFT_STRESS_SCALE");
	long k = s ? atol(s) : 1;

	return k > 1 ? n / k : n;
}

/* Entries of the directory @path, without "." and "..". */
static inline int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 2;
}

/*
 * Descriptors of this process open on files in @dir, named or not: a spill file
 * has no name (O_TMPFILE), so only its descriptor shows that it is still there.
 */
static inline int fds_in(const char *dir)
{
	DIR *d = opendir("/proc/self/fd");
	char path[PATH_MAX + 32], target[PATH_MAX];
	size_t n = strlen(dir);
	struct dirent *e;
	int count = 0;

	while (d && (e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		count += !strncmp(target, dir, n) && target[n] == '/';
	}
	if (d)
		closedir(d);
	return count;
}

static inline struct weft_client *open_threads(unsigned n)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = n };
	struct weft_client *c = NULL;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	return c;
}

static inline uint64_t u64_of(const struct weft_buf *b)
{
	uint64_t v;

	cr_assert_eq(b->len, sizeof(v));
	memcpy(&v, b->data, sizeof(v));
	return v;
}

static inline uint64_t result_u64(struct weft_future *f)
{
	struct weft_buf b;

	cr_assert_eq(weft_result(f, &b), 0, "%s", weft_future_error(f));
	return u64_of(&b);
}

static inline int put_u64(struct weft_ctx *ctx, uint64_t v)
{
	uint64_t *o = weft_output(ctx, sizeof(v));

	if (!o)
		return -ENOMEM;
	*o = v;
	return 0;
}

/* The 8-byte argument plus the sum of every input. */
TASK(sum)
{
	uint64_t v = 0;

	if (arglen == sizeof(v))
		memcpy(&v, arg, sizeof(v));
	for (size_t i = 0; i < nin; i++)
		v += u64_of(&in[i]);
	return put_u64(ctx, v);
}

TASK(noop)
{
	return 0;
}

/* A gate: tasks that wait on it block their thread until the test opens it. */
static _Atomic int gate_open;
TASK(gate)
{
	while (!atomic_load_explicit(&gate_open, memory_order_acquire))
		;
	return 0;
}

static inline struct weft_future *submit_u64(struct weft_client *c, weft_fn *fn,
					     struct weft_future *const *deps, size_t n,
					     uint64_t arg)
{
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(c, fn, deps, n, &arg, sizeof(arg), NULL, &f), 0);
	return f;
}

static inline size_t mem_bytes(struct weft_client *c)
{
	struct weft_stats st = { .size = sizeof(st) };

	cr_assert_eq(weft_stats(c, &st), 0);
	return st.mem_bytes;
}

#endif
