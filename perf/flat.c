// SPDX-License-Identifier: MIT
/*
 * flat.c - what does an independent task cost from the client? N no-op tasks
 * submitted from the client thread, then each waited and released; ns per task.
 * Reference: a serial loop calling the same function through a pointer, with the
 * same arguments, in the same run.  usage: flat [n]   (default 1000000)
 */
#include "bench.h"

static int noop(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		const void *arg, size_t arglen)
{
	return 0;
}

static weft_fn *volatile noop_ref = noop;

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	unsigned threads[2] = { 1, bench_all_threads() };
	struct weft_future **f = malloc(n * sizeof(*f));
	struct bench_handoffs hand = { .n = 0 };
	int reps = bench_reps(), t, r;
	double ser[64], v[64];

	bench_header("flat: independent no-op tasks, submitted then waited from the client");
	for (r = 0; r < reps; r++) {
		double t0 = bench_now();

		for (long i = 0; i < n; i++)
			noop_ref(NULL, NULL, 0, &i, sizeof(i));
		ser[r] = (bench_now() - t0) * 1e9 / n;
	}
	for (t = 0; t < 2; t++) {
		struct weft_client *c = bench_open(threads[t]);

		for (r = 0; r < reps; r++) {
			double t0;

			bench_handoff_sample(&hand);
			t0 = bench_now();

			for (long i = 0; i < n; i++)
				bench_check(weft_submit(c, noop, NULL, 0, &i, sizeof(i), NULL,
							&f[i]), "submit");
			for (long i = 0; i < n; i++) {
				bench_check(weft_wait(f[i], -1), "wait");
				weft_release(f[i]);
			}
			v[r] = (bench_now() - t0) * 1e9 / n;
		}
		weft_client_close(c);
		bench_report("flat", "ns_per_task", threads[t], v, reps, "ns",
			     "serial call, ns per call", ser, reps);
		if (threads[1] == 1)
			break;
	}
	free(f);
	bench_report_handoff("flat", &hand);
	return 0;
}
