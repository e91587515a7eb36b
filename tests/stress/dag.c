// SPDX-License-Identifier: MIT
/*
 * Random DAGs: each node's value is a hash of its index and its inputs' values.
 * The engine's results must equal a serial evaluation of the same DAG, including
 * nodes that fail (and every node downstream of a failure).
 */
#include <stdlib.h>
#include <unistd.h>

#include "../common.h"

#define MAX_DEPS 6

struct node {
	int ndeps;
	int deps[MAX_DEPS];
	int fails;			/* this node's function fails */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* arg: the node's index and whether it fails. */
struct node_arg {
	uint64_t index;
	uint64_t fails;
};

/* Big results: node i's value, then a pattern from it, up to 64 KiB in all. */
static bool big_results;

static size_t big_len(uint64_t index)
{
	return 8 * (1 + (index * 2654435761u) % 8192);
}

static uint64_t value_of(struct weft_ctx *ctx, const struct weft_buf *b, int *bad)
{
	const uint64_t *w = b->data;
	uint64_t v;

	if (!big_results)
		return u64_of(b);
	memcpy(&v, b->data, 8);
	for (size_t i = 1; i < b->len / 8; i++)
		if (w[i] != mix(v + i))
			*bad = 1;
	return v;
}

TASK(node_fn)
{
	struct node_arg a;
	uint64_t v, *o;
	int bad = 0;

	memcpy(&a, arg, sizeof(a));
	if (a.fails)
		return weft_fail(ctx, "node %llu fails", (unsigned long long)a.index);
	v = mix(a.index + 1);
	for (size_t i = 0; i < nin; i++)
		v = mix(v ^ value_of(ctx, &in[i], &bad));
	if (bad)
		return weft_fail(ctx, "node %llu: an input's bytes are wrong",
				 (unsigned long long)a.index);
	if (!big_results)
		return put_u64(ctx, v);
	size_t len = big_len(a.index);

	o = weft_output(ctx, len);
	if (!o)
		return weft_fail(ctx, "no memory for %zu bytes", len);
	o[0] = v;
	for (size_t i = 1; i < len / 8; i++)
		o[i] = mix(v + i);
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void run_dag_limited(unsigned nthreads, int n, uint64_t seed, size_t limit)
{
	struct node *g = calloc(n, sizeof(*g));
	uint64_t *val = calloc(n, sizeof(*val));
	int *failed = calloc(n, sizeof(*failed));
	struct weft_future **f = calloc(n, sizeof(*f));
	struct weft_options o = { .size = sizeof(o), .nthreads = nthreads,
				  .memory_limit = limit };
	struct weft_client *c = NULL;
	uint64_t s = seed;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);

	/* Serial evaluation in index order: inputs always come from lower indices. */
	for (int i = 0; i < n; i++) {
		struct node_arg a = { .index = (uint64_t)i };
		uint64_t v = mix((uint64_t)i + 1);

		g[i].ndeps = i ? (int)(rng_next(&s) % (MAX_DEPS + 1)) : 0;
		g[i].fails = rng_next(&s) % 500 == 0;
		failed[i] = g[i].fails;
		for (int d = 0; d < g[i].ndeps; d++) {
			/* Mostly near neighbours, sometimes far back. */
			uint64_t r = rng_next(&s);
			int back = r % 4 ? 1 + (int)(r % 16) : 1 + (int)(r % i);

			g[i].deps[d] = i - back < 0 ? 0 : i - back;
			failed[i] |= failed[g[i].deps[d]];
			v = mix(v ^ val[g[i].deps[d]]);
		}
		val[i] = v;
		a.fails = g[i].fails;
		struct weft_future *deps[MAX_DEPS];
		for (int d = 0; d < g[i].ndeps; d++)
			deps[d] = f[g[i].deps[d]];
		cr_assert_eq(weft_submit(c, node_fn, deps, g[i].ndeps, &a, sizeof(a), NULL,
					 &f[i]), 0);
	}
	/* Release in random order while checking, so lifetimes overlap. */
	for (int i = n - 1; i >= 0; i--) {
		struct weft_buf b;
		int ret = weft_result(f[i], &b);

		if (failed[i]) {
			cr_assert_eq(ret, WEFT_ETASK, "node %d should fail", i);
			cr_assert_not_null(strstr(weft_future_error(f[i]), "fails"));
		} else {
			int bad = 0;

			cr_assert_eq(ret, 0, "node %d: %s", i, weft_future_error(f[i]));
			cr_assert_eq(value_of(NULL, &b, &bad), val[i], "node %d", i);
			cr_assert_not(bad, "node %d: its bytes are wrong", i);
		}
		weft_release(f[i]);
	}
	if (limit) {
		struct weft_stats st = { .size = sizeof(st) };

		cr_assert_eq(weft_stats(c, &st), 0);
		cr_log_info("seed %llx: %llu MiB spilled, %llu MiB restored (%llu ahead), "
			    "peak %zu KiB", (unsigned long long)seed,
			    (unsigned long long)(st.spilled_bytes >> 20),
			    (unsigned long long)(st.restored_bytes >> 20),
			    (unsigned long long)st.prefetched_results, st.mem_peak >> 10);
		cr_assert_gt(st.spilled_bytes, 0, "the graph never spilled");
		cr_assert_gt(st.restored_bytes, 0, "nothing was read back");
	}
	/* A result freed while being spilled is freed by the spill thread after it. */
	for (int tries = 0; tries < 200 && mem_bytes(c); tries++)
		usleep(5000);
	cr_assert_eq(mem_bytes(c), 0);
	cr_assert_eq(weft_client_close(c), 0);
	free(g);
	free(val);
	free(failed);
	free(f);
}

static void run_dag(unsigned nthreads, int n, uint64_t seed)
{
	run_dag_limited(nthreads, n, seed, 0);
}

Test(dag, random_dags_match_serial_evaluation, .timeout = 300)
{
	const char *scale = getenv("WEFT_STRESS_SCALE");
	int n = scale ? 20000 : 200000;

	for (uint64_t seed = 1; seed <= 5; seed++)
		run_dag(seed % 2 ? 0 : 3, n, seed * 0x9e3779b97f4a7c15ull);
}

Test(dag, many_small_dags_on_one_thread, .timeout = 300)
{
	for (uint64_t seed = 100; seed < 150; seed++)
		run_dag(1, 500, seed * 0x9e3779b97f4a7c15ull);
}

Test(dag, random_dags_with_big_results_spilling, .timeout = 300)
{
	const char *scale = getenv("WEFT_STRESS_SCALE");
	int n = scale ? 1000 : 5000;	/* about 32 KiB a node: 40x to 200x the limit */

	big_results = true;
	for (uint64_t seed = 1; seed <= 3; seed++)
		run_dag_limited(seed % 2 ? 0 : 3, n, seed * 0x2545f4914f6cdd1dull, 4u << 20);
}
