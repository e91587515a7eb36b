// SPDX-License-Identifier: MIT
/*
 * Random DAGs: each node's value is a hash of its index and its inputs' values.
 * The engine's results must equal a serial evaluation of the same DAG, including
 * nodes that fail (and every node downstream of a failure).
 */
#include <stdlib.h>

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

TASK(node_fn)
{
	struct node_arg a;
	uint64_t v;

	memcpy(&a, arg, sizeof(a));
	if (a.fails)
		return weft_fail(ctx, "node %llu fails", (unsigned long long)a.index);
	v = mix(a.index + 1);
	for (size_t i = 0; i < nin; i++)
		v = mix(v ^ u64_of(&in[i]));
	return put_u64(ctx, v);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void run_dag(unsigned nthreads, int n, uint64_t seed)
{
	struct node *g = calloc(n, sizeof(*g));
	uint64_t *val = calloc(n, sizeof(*val));
	int *failed = calloc(n, sizeof(*failed));
	struct weft_future **f = calloc(n, sizeof(*f));
	struct weft_client *c = open_threads(nthreads);
	uint64_t s = seed;

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
			cr_assert_eq(ret, 0, "node %d: %s", i, weft_future_error(f[i]));
			cr_assert_eq(u64_of(&b), val[i], "node %d", i);
		}
		weft_release(f[i]);
	}
	cr_assert_eq(mem_bytes(c), 0);
	cr_assert_eq(weft_client_close(c), 0);
	free(g);
	free(val);
	free(failed);
	free(f);
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
