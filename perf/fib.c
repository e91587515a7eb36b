// SPDX-License-Identifier: MIT
/*
 * fib.c - how much does a task cost in fork-join code? fib(n) with weft_spawn at
 * every level (no cutoff), in ns per task, beside a plain recursive fib measured in
 * the same run (ns per call).  usage: fib [n]   (default 30)
 */
#include "bench.h"

static int fib_task(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		    const void *arg, size_t arglen)
{
	struct weft_future *a, *b;
	struct weft_buf ra, rb;
	long n = *(const long *)arg, m;
	long *out;

	if (n < 2) {
		out = weft_output(ctx, sizeof(*out));
		*out = n;
		return 0;
	}
	m = n - 1;
	bench_check(weft_spawn(ctx, fib_task, NULL, 0, &m, sizeof(m), NULL, &a), "spawn");
	m = n - 2;
	bench_check(weft_spawn(ctx, fib_task, NULL, 0, &m, sizeof(m), NULL, &b), "spawn");
	bench_check(weft_result(b, &rb), "result");
	bench_check(weft_result(a, &ra), "result");
	out = weft_output(ctx, sizeof(*out));
	*out = *(const long *)ra.data + *(const long *)rb.data;
	weft_release(a);
	weft_release(b);
	return 0;
}

/* Kept out of line and opaque, so the compiler cannot turn it into a loop. */
__attribute__((noinline)) static long fib_serial(long n)
{
	__asm__ volatile("" : "+r"(n));
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static long calls(long n)
{
	long a = 0, b = 1, t;

	for (long i = 0; i <= n; i++) {
		t = a + b;
		a = b;
		b = t;
	}
	return 2 * a - 1;	/* 2 F(n+1) - 1 */
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 30, expect = fib_serial(n);
	unsigned threads[2] = { 1, bench_all_threads() };
	int reps = bench_reps(), t, r;
	double ser[64], v[64];

	bench_header("fork-join fib: every call a task (weft_spawn + weft_result)");
	for (r = 0; r < reps; r++) {
		double t0 = bench_now();

		if (fib_serial(n) != expect)
			abort();
		ser[r] = (bench_now() - t0) * 1e9 / calls(n);
	}
	for (t = 0; t < 2; t++) {
		struct weft_client *c = bench_open(threads[t]);

		for (r = 0; r < reps; r++) {
			struct weft_future *f;
			struct weft_buf b;
			double t0 = bench_now();

			bench_check(weft_submit(c, fib_task, NULL, 0, &n, sizeof(n), NULL, &f),
				    "submit");
			bench_check(weft_result(f, &b), "result");
			v[r] = (bench_now() - t0) * 1e9 / calls(n);
			if (*(const long *)b.data != expect)
				abort();
			weft_release(f);
		}
		weft_client_close(c);
		bench_report("fib", "ns_per_task", threads[t], v, reps, "ns",
			     "serial fib, ns per call", ser, reps);
		if (threads[1] == 1)
			break;
	}
	return 0;
}
