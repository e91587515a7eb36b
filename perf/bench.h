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

#include "../util/huge.h"

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

/* The CPUs this process could use at its first call. */
static inline const cpu_set_t *bench_cpus(void)
{
	static cpu_set_t set;
	static int known;

	if (!known) {
		if (sched_getaffinity(0, sizeof(set), &set))
			CPU_ZERO(&set);
		known = 1;
	}
	return &set;
}

/* The @nth CPU this process may use, as it was at the first call; -1 if none. */
static inline int bench_nth_cpu(int nth)
{
	int cpu;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, bench_cpus()) && nth-- == 0)
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

/*
 * Where the client thread runs is part of what is measured. At 1 thread, worker 0
 * runs on the first CPU and the client is pinned to the second: two cores handing
 * tasks to each other. At more threads the client may run anywhere and shares a
 * core with a worker, as a program's own thread does. Left to the kernel, a
 * 1-thread run would measure one core or two, by chance.
 */
static inline void bench_place_client(unsigned nthreads)
{
	int spare = bench_nth_cpu(1);

	if (nthreads == 1 && spare >= 0)
		bench_pin(pthread_self(), spare);
	else
		sched_setaffinity(0, sizeof(cpu_set_t), bench_cpus());
}

/* An engine of @nthreads, with the client placed for it (bench_place_client). */
static inline struct weft_client *bench_open(unsigned nthreads)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = nthreads };
	struct weft_client *c;
	int ret;

	bench_place_client(nthreads);
	ret = weft_client_open(NULL, &o, &c);
	if (ret) {
		fprintf(stderr, "weft_client_open: %s\n", weft_strerror(ret));
		exit(1);
	}
	return c;
}

static inline void bench_header(const char *title)
{
	const char *rec = getenv("WEFT_RECORD");

	/* perf/run.sh runs the engine's benchmarks again with recording off. */
	printf("# %s%s\n", title, rec && !strcmp(rec, "0") ? " [WEFT_RECORD=0: recording off]" : "");
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

#define BENCH_PINGPONG_TURNS 200000

struct bench_pingpong {
	_Atomic long turn __attribute__((aligned(64)));
	int cpu[2];			/* where each player runs */
	double ns;			/* one-way latency, measured by player 0 */
};

/*
 * Take every other turn from @first on: wait for it, then pass the line on. A
 * negative turn means the game was abandoned.
 */
static inline void bench_play(struct bench_pingpong *p, long first)
{
	long turn;

	for (long i = first; i < BENCH_PINGPONG_TURNS; i += 2) {
		while ((turn = atomic_load_explicit(&p->turn, memory_order_acquire)) != i)
			if (turn < 0)
				return;
		atomic_store_explicit(&p->turn, i + 1, memory_order_release);
	}
}

static void *bench_ping(void *arg)
{
	struct bench_pingpong *p = arg;
	double t0;

	bench_pin(pthread_self(), p->cpu[0]);
	t0 = bench_now();
	bench_play(p, 0);
	p->ns = (bench_now() - t0) * 1e9 / BENCH_PINGPONG_TURNS;
	return NULL;
}

static void *bench_pong(void *arg)
{
	struct bench_pingpong *p = arg;

	bench_pin(pthread_self(), p->cpu[1]);
	bench_play(p, 1);
	return NULL;
}

/*
 * The machine's own limit on passing work between cores: the one-way latency of a
 * cache line between two threads pinned to two different cores (a ping-pong), in
 * ns. A task handed from one thread to another costs at least one such transfer,
 * and on a virtual machine it changes when the host moves the virtual CPUs, so the
 * benchmarks that hand tasks across cores print it from the same run. Both players
 * are threads of their own: pinning the caller would leave it, for a while after,
 * on the core of an engine's first worker, and the next measurement with it.
 * Return: the latency, or -1 without two CPUs to pin to.
 */
static inline double bench_handoff_ns(void)
{
	struct bench_pingpong p = { .cpu = { bench_nth_cpu(0), bench_nth_cpu(1) }, .ns = -1 };
	pthread_t a, b;

	if (p.cpu[0] < 0 || p.cpu[1] < 0)
		return -1;
	if (pthread_create(&b, NULL, bench_pong, &p))
		return -1;
	if (pthread_create(&a, NULL, bench_ping, &p)) {
		/* The other player waits for turns that will not come. */
		atomic_store(&p.turn, -1);
		pthread_join(b, NULL);
		return -1;
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return p.ns;
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
