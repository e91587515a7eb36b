/* SPDX-License-Identifier: MIT */
/*
 * bench.h - what every benchmark in perf/ shares: timing, medians over repetitions,
 * and the report: a table row for people, one JSON line per figure for machines,
 * each figure beside the reference measured in the same run.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Repetitions: $WEFT_BENCH_REPS, default 5. */
static inline int bench_reps(void)
{
	const char *s = getenv("WEFT_BENCH_REPS");
	int n = s ? atoi(s) : 5;

	return n > 0 && n < 1000 ? n : 5;
}

static inline unsigned bench_all_threads(void)
{
	struct weft_client *c;
	struct weft_stats st = { .size = sizeof(st) };

	if (weft_client_open(NULL, NULL, &c) || weft_stats(c, &st))
		return 1;
	weft_client_close(c);
	return st.nthreads;
}

static inline struct weft_client *bench_open(unsigned nthreads)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = nthreads };
	struct weft_client *c;
	int ret = weft_client_open(NULL, &o, &c);

	if (ret) {
		fprintf(stderr, "weft_client_open: %s\n", weft_strerror(ret));
		exit(1);
	}
	return c;
}

static inline void bench_header(const char *title)
{
	printf("# %s\n", title);
	printf("%-10s %-22s %7s %12s %-5s   %-26s %12s %8s\n", "bench", "figure", "threads",
	       "median", "unit", "reference", "ref median", "ratio");
}

/*
 * One figure: the median of @n samples, beside the reference's median (ref_n
 * samples of the reference, measured in the same run; ref_n 0: none).
 */
static inline void bench_report(const char *bench, const char *figure, unsigned threads,
				double *v, int n, const char *unit, const char *ref_name,
				double *ref, int ref_n)
{
	double lo, hi, med, rmed = 0;

	med = bench_median(v, n);
	lo = v[0];
	hi = v[n - 1];
	if (ref_n)
		rmed = bench_median(ref, ref_n);
	printf("%-10s %-22s %7u %12.2f %-5s   %-26s %12.2f %8.2f\n", bench, figure, threads,
	       med, unit, ref_n ? ref_name : "-", rmed, ref_n && rmed ? med / rmed : 0);
	printf("{\"bench\":\"%s\",\"figure\":\"%s\",\"threads\":%u,\"median\":%.3f,"
	       "\"min\":%.3f,\"max\":%.3f,\"unit\":\"%s\",\"samples\":%d", bench, figure,
	       threads, med, lo, hi, unit, n);
	if (ref_n)
		printf(",\"reference\":\"%s\",\"reference_median\":%.3f", ref_name, rmed);
	printf("}\n");
	fflush(stdout);
}

/* The @nth CPU this process may use, as it was at the first call; -1 if none. */
static inline int bench_nth_cpu(int nth)
{
	static cpu_set_t set;
	static int known;
	int cpu;

	if (!known) {
		if (sched_getaffinity(0, sizeof(set), &set))
			return -1;
		known = 1;
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && nth-- == 0)
			return cpu;
	return -1;
}

static inline void bench_pin(pthread_t th, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(th, sizeof(set), &set);
}

#define BENCH_PINGPONG_TURNS 200000

struct bench_pingpong {
	_Atomic long turn __attribute__((aligned(64)));
	int cpu;			/* where the second player runs */
};

/* Take every other turn from @first on: wait for it, then pass the line on. */
static inline void bench_play(struct bench_pingpong *p, long first)
{
	for (long i = first; i < BENCH_PINGPONG_TURNS; i += 2) {
		while (atomic_load_explicit(&p->turn, memory_order_acquire) != i)
			;
		atomic_store_explicit(&p->turn, i + 1, memory_order_release);
	}
}

static void *bench_pong(void *arg)
{
	struct bench_pingpong *p = arg;

	bench_pin(pthread_self(), p->cpu);
	bench_play(p, 1);
	return NULL;
}

/*
 * The machine's own limit on passing work between cores: the one-way latency of a
 * cache line between two threads pinned to two different cores (a ping-pong), in
 * ns. A task handed from one thread to another costs at least one such transfer,
 * and on a virtual machine it changes when the host moves the virtual CPUs, so the
 * benchmarks that hand tasks across cores print it from the same run.
 * Return: the latency, or -1 without two CPUs to pin to.
 */
static inline double bench_handoff_ns(void)
{
	int a = bench_nth_cpu(0), b = bench_nth_cpu(1);
	struct bench_pingpong p = { .cpu = b };
	cpu_set_t old;
	pthread_t th;
	double t0, ns = -1;

	if (a < 0 || b < 0 || sched_getaffinity(0, sizeof(old), &old))
		return -1;
	bench_pin(pthread_self(), a);
	if (!pthread_create(&th, NULL, bench_pong, &p)) {
		t0 = bench_now();
		bench_play(&p, 0);
		pthread_join(th, NULL);
		ns = (bench_now() - t0) * 1e9 / BENCH_PINGPONG_TURNS;
	}
	sched_setaffinity(0, sizeof(old), &old);
	return ns;
}

/*
 * Handoff samples taken between a benchmark's repetitions, so that they see the
 * machine as the repetitions did; reported as a row of their own.
 */
struct bench_handoffs {
	double v[128];
	int n;
};

static inline void bench_handoff_sample(struct bench_handoffs *h)
{
	double ns;

	if (h->n < (int)(sizeof(h->v) / sizeof(h->v[0])) && (ns = bench_handoff_ns()) >= 0)
		h->v[h->n++] = ns;
}

static inline void bench_report_handoff(const char *bench, struct bench_handoffs *h)
{
	if (h->n)
		bench_report(bench, "core_handoff_ns", 2, h->v, h->n, "ns", NULL, NULL, 0);
}

static inline void bench_check(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "%s: %s\n", what, weft_strerror(ret));
		exit(1);
	}
}

#endif /* WEFT_BENCH_H */
