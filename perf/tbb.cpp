// SPDX-License-Identifier: MIT
/*
 * tbb.cpp - the yardstick for fib and flat: the same work on oneTBB's task_group,
 * measured on the same machine in the same run. Fork-join fib(30) with both
 * children spawned at every level (no cutoff), ns per task; and 1M empty tasks
 * spawned from one thread, ns per task.
 * usage: tbb [threads] [repetitions]   (defaults 1 and 5)
 * Prints, per repetition, "SAMPLE name value ns", which perf/run.sh takes the
 * median of.
 */
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

static const int FIB_N = 30;
static const long FIB_30 = 832040;
static const long FLAT_TASKS = 1000000;

static double now_s()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Calls a naive fib(n) makes, the root included. */
static long fib_calls(int n)
{
	return n < 2 ? 1 : 1 + fib_calls(n - 1) + fib_calls(n - 2);
}

static long fib(int n)
{
	long x, y;
	tbb::task_group g;

	if (n < 2)
		return n;
	g.run([&] { x = fib(n - 1); });
	g.run([&] { y = fib(n - 2); });
	g.wait();
	return x + y;
}

static void sample(const std::string &name, double v)
{
	printf("SAMPLE %s %.3f ns\n", name.c_str(), v);
}

int main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 1;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	long tasks = fib_calls(FIB_N) - 1;	/* every call but the root is a task */
	std::string n_fib = "tbb_fib30_ns_per_task_t" + std::to_string(nt);
	std::string n_flat = "tbb_flat1M_ns_per_task_t" + std::to_string(nt);

	if (nt < 1 || reps < 1) {
		fprintf(stderr, "usage: tbb [threads >= 1] [repetitions >= 1]\n");
		return 2;
	}
	fprintf(stderr, "oneTBB %s, interface %d, %d threads\n", TBB_runtime_version(),
		TBB_runtime_interface_version(), nt);
	tbb::global_control gc(tbb::global_control::max_allowed_parallelism, nt);
	tbb::task_arena arena(nt);

	arena.execute([&] {
		volatile long warm = fib(25);	/* wakes the workers, fills allocators */

		(void)warm;
		for (int r = 0; r < reps; r++) {
			double t0 = now_s();
			long v = fib(FIB_N);

			if (v != FIB_30) {
				fprintf(stderr, "tbb: fib(%d) gave %ld\n", FIB_N, v);
				exit(1);
			}
			sample(n_fib, (now_s() - t0) * 1e9 / (double)tasks);
		}
		/* r = -1 is a warm-up: the first touch of the tasks' memory. */
		for (int r = -1; r < reps; r++) {
			double t0 = now_s();
			tbb::task_group g;

			for (long i = 0; i < FLAT_TASKS; i++)
				g.run([] { __asm__ volatile("" ::: "memory"); });
			g.wait();
			if (r >= 0)
				sample(n_flat, (now_s() - t0) * 1e9 / (double)FLAT_TASKS);
		}
	});
	return 0;
}
