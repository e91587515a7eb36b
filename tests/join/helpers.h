/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the join tests: tables written from arrays, a simple in-memory
 * reference join, and running the weft-join and weft-gen programs.
 */
#ifndef WEFT_TESTS_JOIN_HELPERS_H
#define WEFT_TESTS_JOIN_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "join.h"
#include "weft.h"

struct row {
	uint64_t key, payload;
};

struct expect {
	uint64_t rows, left_sum, right_sum;
};

static inline uint64_t t_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A fresh directory for one test's files. */
static inline char *t_dir(void)
{
	char buf[PATH_MAX], *d = strdup(t_template(buf, sizeof(buf), "weft-join-test"));

	cr_assert(d && mkdtemp(d), "mkdtemp %s", buf);
	return d;
}

static inline void t_rmdir(char *d)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	cr_assert_eq(system(cmd), 0);
	free(d);
}

static inline char *t_path(const char *dir, const char *name)
{
	char *p;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static inline void t_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f, "open %s", path);
	cr_assert(!len || fwrite(data, 1, len, f) == len);
	cr_assert_eq(fclose(f), 0);
}

static inline int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->payload < y->payload ? -1 : x->payload > y->payload;
}

/* The reference: sort the right side, look up each left row's matches. */
/*
 * A sorted copy of @r; in it, the first row with @key or past it (@after: the first
 * past it), by binary search.
 */
static inline struct row *t_sorted(const struct row *r, size_t nr)
{
	struct row *s = malloc((nr ? nr : 1) * sizeof(*s));

	if (nr)
		memcpy(s, r, nr * sizeof(*s));
	qsort(s, nr, sizeof(*s), cmp_row);
	return s;
}

static inline size_t t_bound(const struct row *s, size_t nr, uint64_t key, bool after)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s[mid].key < key || (after && s[mid].key == key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline size_t t_first(const struct row *s, size_t nr, uint64_t key)
{
	return t_bound(s, nr, key, false);
}

static inline struct expect t_reference(const struct row *l, size_t nl,
					const struct row *r, size_t nr)
{
	struct row *s = t_sorted(r, nr);
	uint64_t *pre = malloc((nr + 1) * sizeof(*pre));	/* sums of s's payloads */
	struct expect e = { 0 };

	pre[0] = 0;
	for (size_t k = 0; k < nr; k++)
		pre[k + 1] = pre[k] + s[k].payload;
	/* Per left row: how many right rows match, and the sum of their payloads. */
	for (size_t i = 0; i < nl; i++) {
		size_t lo = t_first(s, nr, l[i].key), hi = t_bound(s, nr, l[i].key, true);

		e.rows += hi - lo;
		e.left_sum += l[i].payload * (hi - lo);
		e.right_sum += pre[hi] - pre[lo];
	}
	free(pre);
	free(s);
	return e;
}

/* The reference's joined rows (key, left payload, right payload), sorted. */
static inline uint64_t *t_reference_rows(const struct row *l, size_t nl,
					 const struct row *r, size_t nr, size_t *n)
{
	size_t cap = 1024, m = 0;
	uint64_t *out = malloc(cap * 24);
	struct row *s = t_sorted(r, nr);

	for (size_t i = 0; i < nl; i++) {
		size_t lo = t_first(s, nr, l[i].key);

		for (size_t k = lo; k < nr && s[k].key == l[i].key; k++) {
			if (m == cap) {
				cap *= 2;
				out = realloc(out, cap * 24);
			}
			out[3 * m] = l[i].key;
			out[3 * m + 1] = l[i].payload;
			out[3 * m + 2] = s[k].payload;
			m++;
		}
	}
	free(s);
	*n = m;
	return out;
}

static inline int cmp_triple(const void *a, const void *b)
{
	return memcmp(a, b, 24) < 0 ? -1 : memcmp(a, b, 24) > 0;
}

/* Compare a binary output file of 24-byte rows with the reference's rows. */
static inline void t_check_rows(const char *path, uint64_t *want, size_t n)
{
	size_t len;
	uint64_t *got = t_read(path, &len);

	cr_assert_eq(len, n * 24, "%s: %zu bytes, want %zu rows", path, len, n);
	qsort(got, n, 24, cmp_triple);
	qsort(want, n, 24, cmp_triple);
	cr_assert(!memcmp(got, want, n * 24), "%s: rows differ from the reference", path);
	free(got);
}

static inline struct join_spec t_spec(const char *l, const char *r)
{
	struct join_spec s = { .format = JOIN_BIN };

	s.left.path = l;
	s.right.path = r;
	return s;
}

/* A program beside the test's build: BUILD/tools/NAME. */
static inline char *t_tool(const char *name)
{
	char exe[PATH_MAX], *p;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert(n > 0);
	exe[n] = 0;
	cr_assert(asprintf(&p, "%s/../../tools/%s", dirname(exe), name) > 0);
	return p;
}

/*
 * Run a shell command line; its stdout and stderr go to @out (NULL: dropped).
 * Return: its exit status.
 */
static inline int t_run(char **out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline int t_run(char **out, const char *fmt, ...)
{
	char *cmd, *full, buf[4096];
	size_t len = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	cr_assert(asprintf(&full, "{ %s ; } 2>&1 </dev/null", cmd) > 0);
	p = popen(full, "r");
	cr_assert(p);
	if (out)
		*out = calloc(1, 1);
	while (fgets(buf, sizeof(buf), p)) {
		if (!out)
			continue;
		*out = realloc(*out, len + strlen(buf) + 1);
		memcpy(*out + len, buf, strlen(buf) + 1);
		len += strlen(buf);
	}
	st = pclose(p);
	free(cmd);
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Files in @dir whose names start with @prefix. */
static inline int t_count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert(d);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

/*
 * The join tests are linked with --wrap=weft_submit (Makefile), so that a test can
 * make one of the join's submits fail: one made by its reader threads (a chunk's
 * partition task, label "read"), or one made by the thread that runs the join.
 * Until armed, the wrapper only passes the call on.
 */
int __real_weft_submit(struct weft_client *c, weft_fn *fn, struct weft_future *const *deps,
		       size_t ndeps, const void *arg, size_t arglen,
		       const struct weft_task_opts *opts, struct weft_future **out);

enum t_submitter { T_READER, T_CLIENT };

static _Atomic long t_submits_to_pass = -1;	/* before one fails; < 0: none fails */
static enum t_submitter t_failing;
static pthread_t t_main;

int __wrap_weft_submit(struct weft_client *c, weft_fn *fn, struct weft_future *const *deps,
		       size_t ndeps, const void *arg, size_t arglen,
		       const struct weft_task_opts *opts, struct weft_future **out);
int __wrap_weft_submit(struct weft_client *c, weft_fn *fn, struct weft_future *const *deps,
		       size_t ndeps, const void *arg, size_t arglen,
		       const struct weft_task_opts *opts, struct weft_future **out)
{
	bool client = pthread_equal(pthread_self(), t_main);
	bool reader = !client && opts && opts->label && !strcmp(opts->label, "read");

	if (atomic_load(&t_submits_to_pass) >= 0 &&
	    (t_failing == T_CLIENT ? client : reader) &&
	    atomic_fetch_sub(&t_submits_to_pass, 1) == 0)
		return -ENOMEM;
	return __real_weft_submit(c, fn, deps, ndeps, arg, arglen, opts, out);
}

/*
 * From the test's thread: of @who's next submits, @n pass and then one fails;
 * @n < 0: none fails. Return: whether the last armed failure went unused.
 */
static inline bool t_fail_submit(enum t_submitter who, long n)
{
	bool unused = atomic_load(&t_submits_to_pass) >= 0;

	t_main = pthread_self();
	t_failing = who;
	atomic_store(&t_submits_to_pass, n);
	return unused;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#else
#define T_SANITIZED 0
#endif

#endif /* WEFT_TESTS_JOIN_HELPERS_H */
