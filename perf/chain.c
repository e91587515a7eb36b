// SPDX-License-Identifier: MIT
/*
 * chain.c - what does a dependency cost? A chain of N tasks, each depending on the
 * one before and adding one to its 8-byte result; submitted from the client, the
 * last one waited; ns per task. Reference: the same additions through a function
 * pointer, serially.
 *
 * Then the same chain built ahead: pieces of PIECE tasks, each submitted behind a
 * task that holds the worker until the whole piece is in, and timed from its
 * release to the last result. That is a dependency's cost to the worker alone,
 * apart from the race between client and worker in the first figure, with the
 * records still in the client's caches as in a graph built just before it runs.
 * usage: chain [n]   (default 1000000)
 */
#include "bench.h"

#include <stdatomic.h>
#include <stdbool.h>

#define PIECE 4096

static int add_one(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		   const void *arg, size_t arglen)
{
	long *out = weft_output(ctx, sizeof(*out));

	*out = (nin ? *(const long *)in[0].data : 0) + 1;
	return 0;
}

static _Atomic bool gate_open;

/* Holds its worker until the client has submitted the piece behind it. */
static int gate(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		const void *arg, size_t arglen)
{
	long *out = weft_output(ctx, sizeof(*out));

	/* Relaxed, as the client's store: the flag carries no data. */
	while (!atomic_load_explicit(&gate_open, memory_order_relaxed))
		;
	*out = 0;
	return 0;
}

/* Chains of PIECE tasks, n in all: seconds from each release to its result, summed. */
static double prebuilt(struct weft_client *c, long n)
{
	double total = 0;

	for (long done = 0; done < n; done += PIECE) {
		struct weft_future *prev, *next;
		struct weft_buf b;
		double t0;

		atomic_store_explicit(&gate_open, false, memory_order_relaxed);
		bench_check(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &prev), "submit");
		for (long i = 1; i < PIECE; i++) {
			bench_check(weft_submit(c, add_one, &prev, 1, NULL, 0, NULL, &next),
				    "submit");
			weft_release(prev);
			prev = next;
		}
		t0 = bench_now();
		atomic_store_explicit(&gate_open, true, memory_order_relaxed);
		bench_check(weft_result(prev, &b), "result");
		total += bench_now() - t0;
		if (*(const long *)b.data != PIECE - 1)
			abort();
		weft_release(prev);
	}
	return total;
}

struct serial_ctx {
	long v;
};

static int add_one_serial(struct serial_ctx *s)
{
	s->v++;
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	unsigned threads[2] = { 1, bench_all_threads() };
	int (*volatile sfn)(struct serial_ctx *) = add_one_serial;
	struct bench_handoffs hand = { .n = 0 };
	int reps = bench_reps(), t, r;
	long pieces = (n + PIECE - 1) / PIECE;
	double ser[64], v[64], pre[64];

	bench_header("chain: each task depends on the one before");
	for (r = 0; r < reps; r++) {
		struct serial_ctx s = { 0 };
		double t0 = bench_now();

		for (long i = 0; i < n; i++)
			sfn(&s);
		ser[r] = (bench_now() - t0) * 1e9 / n;
		if (s.v != n)
			abort();
	}
	for (t = 0; t < 2; t++) {
		struct weft_client *c = bench_open(threads[t]);

		for (r = 0; r < reps; r++) {
			struct weft_future *prev = NULL, *next;
			struct weft_buf b;
			double t0;

			bench_handoff_sample(&hand);
			t0 = bench_now();

			for (long i = 0; i < n; i++) {
				bench_check(weft_submit(c, add_one, prev ? &prev : NULL,
							prev ? 1 : 0, NULL, 0, NULL, &next),
					    "submit");
				weft_release(prev);
				prev = next;
			}
			bench_check(weft_result(prev, &b), "result");
			v[r] = (bench_now() - t0) * 1e9 / n;
			if (*(const long *)b.data != n)
				abort();
			weft_release(prev);
		}
		for (r = 0; r < reps; r++) {
			bench_handoff_sample(&hand);
			pre[r] = prebuilt(c, n) * 1e9 / (double)(pieces * PIECE);
		}
		weft_client_close(c);
		bench_report("chain", "ns_per_task", threads[t], v, reps, "ns",
			     "serial add, ns per call", ser, reps);
		bench_report("chain", "prebuilt_ns_per_task", threads[t], pre, reps, "ns",
			     "serial add, ns per call", ser, reps);
		if (threads[1] == 1)
			break;
	}
	bench_report_handoff("chain", &hand);
	return 0;
}
