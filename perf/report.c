// SPDX-License-Identifier: MIT
/*
 * report.c - how large is weft_report's page, and how long does it take to write,
 * after a run of 1M tasks? N no-op tasks of four labels on every thread, then the
 * report (and the trace, the same events as JSON). Reference: the report after a
 * run of 1,000 tasks, in the same run: the size should not grow with the tasks.
 * usage: report [n]   (default 1000000)
 */
#include <sys/stat.h>

#include "bench.h"

static int noop(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		const void *arg, size_t arglen)
{
	return 0;
}

/* Run @n tasks, then write the report and the trace: their sizes in MB, the time in ms. */
static void run(struct weft_client *c, long n, double *mb, double *ms, double *trace_mb)
{
	static const char *labels[4] = { "load", "parse", "reduce", "store" };
	struct weft_future **f = malloc(n * sizeof(*f));
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096], tpath[4096];
	struct stat st;
	double t0;

	for (long i = 0; i < n; i++) {
		struct weft_task_opts o = { .size = sizeof(o), .label = labels[i & 3] };

		bench_check(weft_submit(c, noop, NULL, 0, NULL, 0, &o, &f[i]), "submit");
	}
	for (long i = 0; i < n; i++) {
		bench_check(weft_wait(f[i], -1), "wait");
		weft_release(f[i]);
	}
	free(f);
	snprintf(path, sizeof(path), "%s/weft-bench-report-%d.html", tmp, (int)getpid());
	snprintf(tpath, sizeof(tpath), "%s/weft-bench-trace-%d.json", tmp, (int)getpid());
	t0 = bench_now();
	bench_check(weft_report(c, path), "report");
	*ms = (bench_now() - t0) * 1e3;
	bench_check(stat(path, &st), "stat");
	*mb = (double)st.st_size / 1e6;
	bench_check(weft_trace(c, tpath), "trace");
	bench_check(stat(tpath, &st), "stat");
	*trace_mb = (double)st.st_size / 1e6;
	unlink(path);
	unlink(tpath);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	unsigned threads = bench_all_threads();
	int reps = bench_reps(), r;
	double mb[64], ms[64], tmb[64], small_mb[64], small_ms[64], small_tmb[64];

	bench_header("report: weft_report's page after a run of 1M tasks (4 labels)");
	for (r = 0; r < reps; r++) {
		struct weft_client *c = bench_open(threads);

		run(c, 1000, &small_mb[r], &small_ms[r], &small_tmb[r]);
		weft_client_close(c);
		c = bench_open(threads);
		run(c, n, &mb[r], &ms[r], &tmb[r]);
		weft_client_close(c);
	}
	bench_report("report", "report_MB_1M_tasks", threads, mb, reps, "MB",
		     "report MB, 1k tasks", small_mb, reps);
	bench_report("report", "trace_MB_1M_tasks", threads, tmb, reps, "MB",
		     "trace MB, 1k tasks", small_tmb, reps);
	bench_report("report", "report_write_ms", threads, ms, reps, "ms",
		     "report ms, 1k tasks", small_ms, reps);
	return 0;
}
