// SPDX-License-Identifier: MIT
/*
 * fanout.c - how fast do wide graphs go? One task, N tasks that each depend on it,
 * and one task that depends on all N; ns per task (N + 2 tasks), and the time from
 * the root's end to the last of the N starting (release of dependents). Reference: a
 * serial loop calling the same function N + 2 times.  usage: fanout [n] (100000)
 */
#include "bench.h"

static int one(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen)
{
	long *out = weft_output(ctx, sizeof(*out)), s = 0;

	for (size_t i = 0; i < nin; i++)
		s += *(const long *)in[i].data;
	*out = nin ? s : 1;
	return 0;
}

/* The same sum, serially, for the reference. */
__attribute__((noinline)) static long one_serial(const long *in, size_t nin)
{
	long s = 0;

	for (size_t i = 0; i < nin; i++)
		s += in[i];
	return nin ? s : 1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	unsigned threads[2] = { 1, bench_all_threads() };
	struct weft_future **mid = malloc(n * sizeof(*mid));
	long (*volatile fn)(const long *, size_t) = one_serial;
	long acc = 0;
	struct bench_handoffs hand = { .n = 0 };
	int reps = bench_reps(), t, r;
	double ser[64], v[64];

	bench_header("fan-out/fan-in: 1 -> N -> 1");
	for (r = 0; r < reps; r++) {
		double t0 = bench_now();

		for (long i = 0; i < n + 2; i++)
			acc += fn(&acc, 1);
		ser[r] = (bench_now() - t0) * 1e9 / (n + 2);
	}
	for (t = 0; t < 2; t++) {
		struct weft_client *c = bench_open(threads[t]);

		for (r = 0; r < reps; r++) {
			struct weft_future *root, *tail;
			struct weft_buf b;
			double t0;

			bench_handoff_sample(&hand);
			t0 = bench_now();

			bench_check(weft_submit(c, one, NULL, 0, NULL, 0, NULL, &root), "submit");
			for (long i = 0; i < n; i++)
				bench_check(weft_submit(c, one, &root, 1, NULL, 0, NULL, &mid[i]),
					    "submit");
			bench_check(weft_submit(c, one, mid, n, NULL, 0, NULL, &tail), "submit");
			bench_check(weft_result(tail, &b), "result");
			v[r] = (bench_now() - t0) * 1e9 / (n + 2);
			if (*(const long *)b.data != n)
				abort();
			for (long i = 0; i < n; i++)
				weft_release(mid[i]);
			weft_release(root);
			weft_release(tail);
		}
		weft_client_close(c);
		bench_report("fanout", "ns_per_task", threads[t], v, reps, "ns",
			     "serial call, ns per call", ser, reps);
		if (threads[1] == 1)
			break;
	}
	free(mid);
	bench_report_handoff("fanout", &hand);
	return acc == 42;	/* keeps acc alive */
}
