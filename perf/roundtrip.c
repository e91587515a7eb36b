// SPDX-License-Identifier: MIT
/*
 * roundtrip.c - what does one task cost when nothing else is queued? The client
 * submits a no-op task and waits for it, N times, one at a time; ns per round trip.
 * At 1 thread the client is pinned to a core the worker does not use, so the figure
 * is the handoff itself; at all threads the client shares a core with a worker, as
 * a program's own thread does (bench_open). Reference: the one-way latency of a
 * cache line between two cores, measured in the same run (a round trip needs at
 * least two).
 * usage: roundtrip [n]   (default 200000)
 */
#include "bench.h"

static int noop(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		const void *arg, size_t arglen)
{
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	unsigned threads[2] = { 1, bench_all_threads() };
	struct bench_handoffs hand = { .n = 0 };
	int reps = bench_reps(), t, r;
	double v[64];

	bench_header("roundtrip: one task submitted and waited at a time, from the client");
	for (t = 0; t < 2; t++) {
		struct weft_client *c = bench_open(threads[t]);

		for (r = 0; r < reps; r++) {
			double t0;

			bench_handoff_sample(&hand);
			t0 = bench_now();

			for (long i = 0; i < n; i++) {
				struct weft_future *f;

				bench_check(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f),
					    "submit");
				bench_check(weft_wait(f, -1), "wait");
				weft_release(f);
			}
			v[r] = (bench_now() - t0) * 1e9 / n;
		}
		weft_client_close(c);
		bench_report("roundtrip", "ns_per_task", threads[t], v, reps, "ns",
			     "core handoff, ns one way", hand.v, hand.n);
		if (threads[1] == 1)
			break;
	}
	return 0;
}
