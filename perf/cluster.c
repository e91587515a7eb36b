// SPDX-License-Identifier: MIT
/*
 * cluster - weft across processes, run under weft-cluster -n 2 --nthreads 1 (perf/run.sh
 * does): the round trip of one no-op task, the throughput of 200k no-op tasks from
 * one client, a chain, and 64 MiB read by one worker from the other; beside
 * fi_pingpong (rdm, the same provider, loopback) measured in the same run: its
 * 64-byte round trip, and its bandwidth at 4 MiB and at 64 MiB (a 4 MiB buffer may
 * stay in a core's cache, a 64 MiB one does not: on shm that halves it). As
 * fi_pingpong reuses its buffers, the 64 MiB figure is of memory the reader has had
 * before; the first transfer, into fresh memory (a page fault per 4 KiB), is shown
 * on its own. As fi_pingpong's figure is an average over 2000 messages, a
 * repetition's 64 MiB figure is over BIG_N results, each made afresh on one worker
 * and read once by the other: one read of 64 MiB takes 5-10 ms, and a core taken
 * from it for a moment moved a single one by a third.
 *
 * usage: cluster tcp|shm   (WEFT_SCHEDULER and WEFT_TOKEN set by weft-cluster)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "bench.h"

#define RT_N 2000
#define TP_N 200000
#define CHAIN_N 100000
#define BIG (64u << 20)
#define BIG_N 8

/*
 * fi_pingpong at @size bytes, @iters round trips: its "usec/xfer" and "MB/sec", or
 * -1 when it fails.
 */
static int pingpong(const char *prov, const char *size, int iters, double *usec, double *mbps)
{
	char cmd[512], line[512];
	FILE *p;
	int ok = -1;

	snprintf(cmd, sizeof(cmd), "fi_pingpong -p '%s' -e rdm -I %d -S %s >/dev/null 2>&1 & "
		 "sleep 0.5; fi_pingpong -p '%s' -e rdm -I %d -S %s 127.0.0.1 2>/dev/null; "
		 "wait", prov, iters, size, prov, iters, size);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		double mb, us;

		if (sscanf(line, "%*s %*s %*s %*s %*s %lf %lf", &mb, &us) == 2) {
			*mbps = mb;
			*usec = us;
			ok = 0;
		}
	}
	pclose(p);
	return ok;
}

/* Seconds to read @big (made on w0) on w1, less the round trip of @rt_us. */
static double transfer(struct weft_client *c, struct weft_future *big, double rt_us)
{
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_future *t;
	double t0 = bench_now();

	bench_check(weft_submit_named(c, "touch", &big, 1, NULL, 0, &on1, &t), "submit");
	bench_check(weft_wait(t, -1), "touch");
	t0 = bench_now() - t0 - rt_us * 1e-6;
	weft_release(t);
	return t0;
}

/*
 * Until the cluster has done what the phase before left it (the frees of 200k
 * released results): weft_stats asks every worker after all that was sent it, so
 * each phase is timed from a quiet cluster and does not pay for the one before.
 */
static void settle(struct weft_client *c)
{
	struct weft_stats st = { .size = sizeof(st) };

	bench_check(weft_stats(c, &st), "stats");
}

int main(int argc, char **argv)
{
	const char *scheme = argc > 1 ? argv[1] : "tcp";
	const char *prov = strcmp(scheme, "shm") ? "tcp;ofi_rxm" : "shm";
	int reps = bench_reps() < 3 ? bench_reps() : 3;
	double rt[8], tp[8], ch[8], bw[8], pp_rt[8], pp_bw[8], pp_bw64[8], cold;
	static struct weft_future *fs[TP_N];
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_client *c;
	char title[128];
	int npp = 0;

	bench_check(weft_client_open(NULL, NULL, &c), "connect (run under weft-cluster)");
	for (int r = 0; r < reps; r++) {
		double us, mb;

		if (!pingpong(prov, "64", 2000, &us, &mb)) {
			pp_rt[npp] = 2 * us;	/* usec/xfer is one way */
			if (!pingpong(prov, "4194304", 2000, &us, &mb))
				pp_bw[npp] = mb / 1e3;
			if (!pingpong(prov, "67108864", 50, &us, &mb))
				pp_bw64[npp] = mb / 1e3;
			npp++;
		}
	}
	snprintf(title, sizeof(title), "cluster: 2 workers of 1 thread, one client, %s", scheme);
	bench_header(title);
	for (int r = 0; r < reps; r++) {
		struct weft_future *f, *big;
		uint64_t n = BIG;
		double t0, secs;

		t0 = bench_now();
		for (int i = 0; i < RT_N; i++) {
			bench_check(weft_submit_named(c, "noop", NULL, 0, NULL, 0, NULL, &f), "submit");
			bench_check(weft_wait(f, -1), "wait");
			weft_release(f);
		}
		rt[r] = (bench_now() - t0) / RT_N * 1e6;

		t0 = bench_now();
		for (int i = 0; i < TP_N; i++)
			bench_check(weft_submit_named(c, "noop", NULL, 0, NULL, 0, NULL, &fs[i]),
				    "submit");
		for (int i = 0; i < TP_N; i++)
			bench_check(weft_wait(fs[i], -1), "wait");
		tp[r] = TP_N / (bench_now() - t0) / 1e3;
		for (int i = 0; i < TP_N; i++)
			weft_release(fs[i]);
		settle(c);

		t0 = bench_now();
		bench_check(weft_submit_named(c, "noop", NULL, 0, NULL, 0, NULL, &fs[0]), "submit");
		for (int i = 1; i < CHAIN_N; i++)
			bench_check(weft_submit_named(c, "noop", &fs[i - 1], 1, NULL, 0, NULL, &fs[i]),
				    "submit");
		bench_check(weft_wait(fs[CHAIN_N - 1], -1), "wait");
		ch[r] = (bench_now() - t0) / CHAIN_N * 1e6;
		for (int i = 0; i < CHAIN_N; i++)
			weft_release(fs[i]);
		settle(c);

		secs = 0;
		for (int k = 0; k < BIG_N; k++) {
			bench_check(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big),
				    "submit");
			bench_check(weft_wait(big, -1), "make");
			if (!r && !k)
				cold = BIG / transfer(c, big, rt[r]) / 1e9;
			secs += transfer(c, big, rt[r]);
			weft_release(big);
		}
		bw[r] = (double)BIG_N * BIG / secs / 1e9;
	}
	bench_report("cluster", "round_trip_us", 1, rt, reps, "us", "fi_pingpong 64 B RTT",
		     pp_rt, npp);
	bench_report("cluster", "throughput_ktasks_s", 1, tp, reps, "k/s", "-", NULL, 0);
	bench_report("cluster", "chain_us_per_task", 1, ch, reps, "us", "fi_pingpong 64 B RTT",
		     pp_rt, npp);
	bench_report("cluster", "64MiB_w2w_GBps", 1, bw, reps, "GB/s", "fi_pingpong 4 MiB GB/s",
		     pp_bw, npp);
	bench_report("cluster", "64MiB_w2w_GBps", 1, bw, reps, "GB/s", "fi_pingpong 64 MiB GB/s",
		     pp_bw64, npp);
	bench_report("cluster", "64MiB_w2w_first_GBps", 1, &cold, 1, "GB/s",
		     "fi_pingpong 4 MiB GB/s", pp_bw, npp);
	bench_check(weft_client_close(c), "close");
	return 0;
}
