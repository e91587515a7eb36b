// SPDX-License-Identifier: MIT
/*
 * weft-demo - a task graph on the embedded engine, with progress and a summary.
 *
 * Estimates pi by Monte Carlo in CHUNKS independent tasks, reduces their counts with
 * a binary tree of tasks (dependencies), builds a histogram of the samples with
 * multi-output tasks, and computes fib(N) by fork-join recursion with weft_spawn.
 * Then, on a second engine with a small memory limit, it keeps four times that
 * limit of results alive, so that they spill to disk and come back.
 * Every result is checked against a serial computation.
 *
 * usage: weft-demo [threads]
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define CHUNKS 4096
#define SAMPLES_PER_CHUNK 20000
#define BUCKETS 8
#define FIB_N 27

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Samples of one chunk: how many fell inside the quarter circle. */
static uint64_t chunk_hits(uint64_t chunk)
{
	uint64_t s = chunk * 7919 + 1, hits = 0;

	for (int i = 0; i < SAMPLES_PER_CHUNK; i++) {
		double x = (splitmix(&s) >> 11) * 0x1.0p-53;
		double y = (splitmix(&s) >> 11) * 0x1.0p-53;

		hits += x * x + y * y <= 1.0;
	}
	return hits;
}

static int sample(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		  const void *arg, size_t arglen)
{
	uint64_t chunk, *out = weft_output(ctx, sizeof(*out));

	if (!out)
		return weft_fail(ctx, "no memory");
	memcpy(&chunk, arg, sizeof(chunk));
	*out = chunk_hits(chunk);
	return 0;
}

static int add(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen)
{
	uint64_t a, b, *out = weft_output(ctx, sizeof(*out));

	if (!out)
		return weft_fail(ctx, "no memory");
	memcpy(&a, in[0].data, 8);
	memcpy(&b, in[1].data, 8);
	*out = a + b;
	return 0;
}

/* Splits a chunk's hit count into BUCKETS outputs: one per decile of the chunk id. */
static int bucketize(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		     const void *arg, size_t arglen)
{
	uint64_t chunk, hits;

	memcpy(&chunk, arg, 8);
	memcpy(&hits, in[0].data, 8);
	for (unsigned i = 0; i < BUCKETS; i++) {
		uint64_t *o = weft_output_n(ctx, i, 8);

		if (!o)
			return weft_fail(ctx, "no memory");
		*o = chunk % BUCKETS == i ? hits : 0;
	}
	return 0;
}

static int sum_all(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		   const void *arg, size_t arglen)
{
	uint64_t s = 0, v, *out = weft_output(ctx, 8);

	if (!out)
		return weft_fail(ctx, "no memory");
	for (size_t i = 0; i < nin; i++) {
		memcpy(&v, in[i].data, 8);
		s += v;
	}
	*out = s;
	return 0;
}

static int fib(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen)
{
	int64_t n, a, b, *out;
	struct weft_future *fa, *fb;
	struct weft_buf ra, rb;
	int ret;

	memcpy(&n, arg, 8);
	out = weft_output(ctx, 8);
	if (!out)
		return weft_fail(ctx, "no memory");
	if (n < 2) {
		*out = n;
		return 0;
	}
	n--;
	ret = weft_spawn(ctx, fib, NULL, 0, &n, 8, NULL, &fa);
	if (ret)
		return ret;
	n--;
	ret = weft_spawn(ctx, fib, NULL, 0, &n, 8, NULL, &fb);
	if (ret) {
		weft_release(fa);
		return ret;
	}
	ret = weft_result(fa, &ra) ?: weft_result(fb, &rb);
	if (!ret) {
		memcpy(&a, ra.data, 8);
		memcpy(&b, rb.data, 8);
		*out = a + b;
	}
	weft_release(fa);
	weft_release(fb);
	return ret;
}

#define BLOCK (1u << 20)
#define BLOCKS 256
#define DEMO_LIMIT (64u << 20)

/* A 1 MiB block whose words follow from its number. */
static int block(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		 const void *arg, size_t arglen)
{
	uint64_t seed, *p = weft_output(ctx, BLOCK);

	if (!p)
		return weft_fail(ctx, "no memory for a block");
	memcpy(&seed, arg, 8);
	for (size_t i = 0; i < BLOCK / 8; i++)
		p[i] = seed * 0x9e3779b97f4a7c15ull + i;
	return 0;
}

/* Sums a block's words. */
static int sum_block(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		     const void *arg, size_t arglen)
{
	const uint64_t *p = in[0].data;
	uint64_t s = 0, *out = weft_output(ctx, 8);

	if (!out)
		return weft_fail(ctx, "no memory");
	for (size_t i = 0; i < in[0].len / 8; i++)
		s += p[i];
	*out = s;
	return 0;
}

static uint64_t block_sum(uint64_t seed)
{
	uint64_t s = 0;

	for (size_t i = 0; i < BLOCK / 8; i++)
		s += seed * 0x9e3779b97f4a7c15ull + i;
	return s;
}

static int64_t fib_serial(int64_t n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "weft-demo: %s: %s\n", what, weft_strerror(ret));
	exit(1);
}

static uint64_t u64(struct weft_future *f)
{
	struct weft_buf b;
	uint64_t v;
	int ret = weft_result(f, &b);

	if (ret)
		die(weft_future_error(f) ?: "result", ret);
	memcpy(&v, b.data, 8);
	return v;
}

static void die(const char *what, int ret);
static uint64_t u64(struct weft_future *f);

/* Four times the memory limit of live results: they spill and come back. */
static int out_of_core(unsigned nthreads)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = nthreads,
				  .memory_limit = DEMO_LIMIT };
	struct weft_stats st = { .size = sizeof(st) };
	static struct weft_future *blocks[BLOCKS], *sums[BLOCKS];
	struct weft_client *c;
	double t0 = now(), t1;
	int ret, i;

	ret = weft_client_open(NULL, &o, &c);
	if (ret)
		die("weft_client_open", ret);
	printf("  out of core: %d blocks of 1 MiB under a %u MiB memory limit\n", BLOCKS,
	       DEMO_LIMIT >> 20);
	for (i = 0; i < BLOCKS; i++) {
		uint64_t seed = (uint64_t)i;

		ret = weft_submit(c, block, NULL, 0, &seed, 8, NULL, &blocks[i]);
		if (ret)
			die("submit", ret);
	}
	for (i = 0; i < BLOCKS; i++)
		if ((ret = weft_wait(blocks[i], -1)))
			die(weft_future_error(blocks[i]) ?: "wait", ret);
	weft_stats(c, &st);
	printf("  out of core: all made; %.0f MiB spilled so far, %.1f MiB in memory\n",
	       st.spilled_bytes / 1048576.0, st.mem_bytes / 1048576.0);
	/* Read every block again, newest first: most must come back from disk. */
	for (i = 0; i < BLOCKS; i++) {
		ret = weft_submit(c, sum_block, &blocks[BLOCKS - 1 - i], 1, NULL, 0, NULL,
				  &sums[i]);
		if (ret)
			die("submit", ret);
	}
	for (i = 0; i < BLOCKS; i++) {
		if (u64(sums[i]) != block_sum((uint64_t)(BLOCKS - 1 - i))) {
			fprintf(stderr, "weft-demo: block %d came back wrong\n", BLOCKS - 1 - i);
			return 1;
		}
	}
	t1 = now();
	weft_stats(c, &st);
	printf("spill summary: %.0f MiB of results live, %.0f MiB spilled (%llu results), "
	       "%.0f MiB restored (%llu ahead of their tasks), peak memory %.1f of %u MiB, "
	       "%.2f s; every block checked\n",
	       BLOCKS * (double)BLOCK / 1048576.0, st.spilled_bytes / 1048576.0,
	       (unsigned long long)st.spilled_results, st.restored_bytes / 1048576.0,
	       (unsigned long long)st.prefetched_results, st.mem_peak / 1048576.0,
	       DEMO_LIMIT >> 20, t1 - t0);
	for (i = 0; i < BLOCKS; i++) {
		weft_release(blocks[i]);
		weft_release(sums[i]);
	}
	ret = weft_client_close(c);
	if (ret)
		die("close", ret);
	return st.mem_peak > DEMO_LIMIT;
}

/* 1. Independent tasks, watched as they finish. */
static void monte_carlo(struct weft_client *c, struct weft_future **samples, double t0)
{
	int ret;

	for (int i = 0; i < CHUNKS; i++) {
		uint64_t chunk = (uint64_t)i;

		ret = weft_submit(c, sample, NULL, 0, &chunk, 8, NULL, &samples[i]);
		if (ret)
			die("submit", ret);
	}
	printf("  monte carlo: %d tasks of %d samples submitted\n", CHUNKS,
	       SAMPLES_PER_CHUNK);
	for (uint64_t next = CHUNKS / 4, done = 0; done < CHUNKS; done++) {
		if ((ret = weft_wait(samples[done], -1)))
			die("wait", ret);
		if (done + 1 == next || done + 1 == CHUNKS) {
			printf("  monte carlo: %3" PRIu64 "%% of chunks done (%.3f s)\n",
			       100 * (done + 1) / CHUNKS, now() - t0);
			next += CHUNKS / 4;
		}
	}
}

/* 2. A reduction tree: each level's tasks depend on two of the level below. */
static uint64_t reduction(struct weft_client *c, struct weft_future *const *samples)
{
	struct weft_future *level[CHUNKS], *f;
	uint64_t hits;
	int ret;

	memcpy(level, samples, sizeof(level));
	for (size_t width = CHUNKS; width > 1; width /= 2) {
		for (size_t i = 0; i < width / 2; i++) {
			struct weft_future *pair[2] = { level[2 * i], level[2 * i + 1] };

			ret = weft_submit(c, add, pair, 2, NULL, 0, NULL, &f);
			if (ret)
				die("submit", ret);
			if (width != CHUNKS) {
				weft_release(pair[0]);
				weft_release(pair[1]);
			}
			level[i] = f;
		}
	}
	hits = u64(level[0]);
	weft_release(level[0]);
	printf("  reduction tree: %d tasks, pi ~ %.6f\n", CHUNKS - 1,
	       4.0 * hits / ((double)CHUNKS * SAMPLES_PER_CHUNK));
	return hits;
}

/* 3. Multi-output tasks, then one task per bucket over a column of outputs. */
static uint64_t histogram(struct weft_client *c, struct weft_future **samples,
			  struct weft_future *parts[CHUNKS][BUCKETS],
			  struct weft_future **buckets)
{
	struct weft_task_opts multi = { .size = sizeof(multi), .noutputs = BUCKETS };
	struct weft_future *col[CHUNKS];
	uint64_t total = 0;
	int ret, i, b;

	for (i = 0; i < CHUNKS; i++) {
		uint64_t chunk = (uint64_t)i;

		ret = weft_submit(c, bucketize, &samples[i], 1, &chunk, 8, &multi, parts[i]);
		if (ret)
			die("submit", ret);
	}
	for (b = 0; b < BUCKETS; b++) {
		for (i = 0; i < CHUNKS; i++)
			col[i] = parts[i][b];
		ret = weft_submit(c, sum_all, col, CHUNKS, NULL, 0, NULL, &buckets[b]);
		if (ret)
			die("submit", ret);
	}
	for (b = 0; b < BUCKETS; b++)
		total += u64(buckets[b]);
	printf("  histogram: %d multi-output tasks, %d bucket sums\n", CHUNKS, BUCKETS);
	return total;
}

/* 4. Fork-join recursion from inside a task. */
static int64_t fork_join(struct weft_client *c)
{
	struct weft_future *f;
	int64_t n = FIB_N, fib_n;
	int ret;

	ret = weft_submit(c, fib, NULL, 0, &n, 8, NULL, &f);
	if (ret)
		die("submit", ret);
	fib_n = (int64_t)u64(f);
	weft_release(f);
	printf("  fork-join: fib(%d) = %" PRId64 "\n", FIB_N, fib_n);
	return fib_n;
}

int main(int argc, char **argv)
{
	struct weft_options o = { .size = sizeof(o) };
	struct weft_stats st = { .size = sizeof(st) };
	static struct weft_future *samples[CHUNKS], *parts[CHUNKS][BUCKETS];
	struct weft_future *buckets[BUCKETS];
	uint64_t serial_hits = 0, hits, bucket_total;
	struct weft_client *c;
	int64_t fib_n;
	double t0, t1;
	int ret, i, b;

	if (argc > 1)
		o.nthreads = (unsigned)atoi(argv[1]);
	ret = weft_client_open(NULL, &o, &c);
	if (ret)
		die("weft_client_open", ret);
	weft_stats(c, &st);
	printf("weft-demo: embedded engine, %u threads on %u NUMA domain(s)\n", st.nthreads,
	       st.nnuma);
	t0 = now();
	monte_carlo(c, samples, t0);
	hits = reduction(c, samples);
	bucket_total = histogram(c, samples, parts, buckets);
	fib_n = fork_join(c);
	t1 = now();

	/* Check everything against serial code. */
	for (i = 0; i < CHUNKS; i++)
		serial_hits += chunk_hits((uint64_t)i);
	if (hits != serial_hits || bucket_total != serial_hits || fib_n != fib_serial(FIB_N)) {
		fprintf(stderr, "weft-demo: results differ from the serial computation\n");
		return 1;
	}
	weft_stats(c, &st);
	for (i = 0; i < CHUNKS; i++) {
		weft_release(samples[i]);
		for (b = 0; b < BUCKETS; b++)
			weft_release(parts[i][b]);
	}
	for (b = 0; b < BUCKETS; b++)
		weft_release(buckets[b]);
	printf("summary: %" PRIu64 " tasks in %.3f s, %.0f tasks/s, %" PRIu64
	       " steals; results match the serial computation\n",
	       st.tasks_run, t1 - t0, st.tasks_run / (t1 - t0), st.steals);
	ret = weft_client_close(c);
	if (ret)
		die("close", ret);
	return out_of_core(o.nthreads);
}
