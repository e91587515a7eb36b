// SPDX-License-Identifier: MIT
/* Spilling through the public API: graphs larger than memory, limits, a full disk. */
#include <stdlib.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common.h"

#define MB (1u << 20)

/* A result of arg[0] bytes whose contents follow from arg[1]. */
TASK(make_block)
{
	uint64_t a[2];
	uint64_t *p;

	memcpy(a, arg, sizeof(a));
	p = weft_output(ctx, a[0]);
	if (!p)
		return weft_fail(ctx, "no output of %llu bytes", (unsigned long long)a[0]);
	for (uint64_t i = 0; i < a[0] / 8; i++)
		p[i] = a[1] * 1000003 + i;
	return 0;
}

/* Checks a block and returns its seed. */
TASK(check_block)
{
	const uint64_t *p = in[0].data;
	uint64_t seed = p[0] / 1000003;

	for (uint64_t i = 0; i < in[0].len / 8; i++)
		if (p[i] != seed * 1000003 + i)
			return weft_fail(ctx, "block %llu word %llu is wrong",
					 (unsigned long long)seed, (unsigned long long)i);
	return put_u64(ctx, seed);
}

static struct weft_client *open_limited(size_t limit, const char *dir)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 2, .memory_limit = limit,
				  .spill_dir = dir };
	struct weft_client *c = NULL;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	return c;
}

static void four_times_the_limit(void)
{
	char dir[PATH_MAX];
	enum { N = 64 };
	struct weft_future *blocks[N], *checks[N];
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;

	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-spill")));
	c = open_limited(16 * MB, dir);		/* 64 x 1 MiB live: 4x the limit */
	for (int i = 0; i < N; i++) {
		uint64_t a[2] = { MB, (uint64_t)i + 1 };

		cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), NULL,
					 &blocks[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_wait(blocks[i], -1), 0, "%s", weft_future_error(blocks[i]));
	/* Every block is read again, in a different order, by a task. */
	for (int i = 0; i < N; i++)
		checks[i] = submit_u64(c, check_block, &blocks[(i * 7) % N], 1, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(result_u64(checks[i]), (uint64_t)((i * 7) % N) + 1);
	/* And through weft_result on the client. */
	for (int i = 0; i < N; i += 9) {
		struct weft_buf b;

		cr_assert_eq(weft_result(blocks[i], &b), 0);
		cr_assert_eq(b.len, MB);
		cr_assert_eq(((const uint64_t *)b.data)[MB / 8 - 1],
			     (uint64_t)(i + 1) * 1000003 + MB / 8 - 1);
	}
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_gt(st.spilled_bytes, 32 * MB, "only %llu bytes spilled",
		     (unsigned long long)st.spilled_bytes);
	cr_assert_gt(st.restored_bytes, 0);
	cr_assert_leq(st.mem_peak, 16 * MB, "peak %zu over the limit", st.mem_peak);
	for (int i = 0; i < N; i++) {
		weft_release(blocks[i]);
		weft_release(checks[i]);
	}
	/* A result freed while being written is freed by the spill thread after it. */
	for (int tries = 0; tries < 100; tries++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (!st.mem_bytes)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.mem_bytes, 0);
	cr_assert_gt(fds_in(dir), 0, "the spill file is open in the directory");
	cr_assert_eq(weft_client_close(c), 0);
	/* The spill file has no name: only a descriptor left open would keep it. */
	cr_assert_eq(fds_in(dir), 0, "a spill file is still open");
	cr_assert_eq(dir_entries(dir), 0, "a spill file was left behind");
	rmdir(dir);
}

Test(spill, live_results_four_times_the_limit, .timeout = 120)
{
	four_times_the_limit();
}

Test(spill, four_times_the_limit_with_pread_and_the_page_cache, .timeout = 120)
{
	setenv("WEFT_SPILL_BACKEND", "pread", 1);
	setenv("WEFT_SPILL_DIRECT", "0", 1);
	four_times_the_limit();
}

Test(spill, bad_backend_name_returns_einval)
{
	struct weft_client *c = NULL;

	setenv("WEFT_SPILL_BACKEND", "floppy", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), -EINVAL);
	cr_assert_null(c);
}

Test(spill, result_over_the_hard_limit_fails_its_task, .timeout = 30)
{
	struct weft_client *c = open_limited(8 * MB, "/tmp");
	uint64_t a[2] = { 16 * MB, 1 };
	struct weft_task_opts o = { .size = sizeof(o), .label = "huge" };
	struct weft_future *f;

	cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), &o, &f), 0);
	cr_assert_eq(weft_wait(f, -1), -ENOMEM);
	cr_assert_not_null(strstr(weft_future_error(f), "hard memory limit"),
			   "%s", weft_future_error(f));
	cr_assert_not_null(strstr(weft_future_error(f), "task 'huge'"));
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

/* CPU time of the whole process so far, every thread's. */
static double cpu_seconds(void)
{
	struct rusage ru;

	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

Test(spill, full_disk_pauses_and_resumes_when_space_returns, .timeout = 120)
{
	char dir[PATH_MAX];
	enum { N = 40 };
	struct weft_future *blocks[N], *checks[N];
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;

	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-small")));
	if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=2m")) {
		rmdir(dir);
		cr_skip_test("needs root to mount a small filesystem");
	}
	c = open_limited(16 * MB, dir);
	for (int i = 0; i < N; i++) {
		uint64_t a[2] = { MB, (uint64_t)i + 1 };

		cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), NULL,
					 &blocks[i]), 0);
	}
	/* The disk fills: spilling stops, the engine pauses, nothing is lost. */
	for (int tries = 0; tries < 500; tries++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (st.spill_blocked && st.paused)
			break;
		usleep(10000);
	}
	cr_assert(st.spill_blocked, "a spill to a full disk did not fail");
	cr_assert(st.paused, "the engine did not pause");
	cr_assert_leq(st.mem_peak, 16 * MB);
	/* A task that cannot start says why. */
	struct weft_future *waiting = submit_u64(c, sum, NULL, 0, 1);
	double cpu = cpu_seconds();

	/* Paused with memory that cannot fall while the disk is full: it cannot start. */
	cr_assert_eq(weft_wait(waiting, 200 * 1000 * 1000), -ETIMEDOUT);
	/*
	 * Meanwhile the threads sleep, though a task waits: spinning would find
	 * nothing until the pause lifts. (When the threads spun, one of them took
	 * 0.2 s here; sleeping, all together take about 0.006.)
	 */
	cpu = cpu_seconds() - cpu;
	cr_assert_lt(cpu, 0.1, "%.3f s of CPU in 0.2 s paused", cpu);
	cr_assert_not_null(weft_future_error(waiting) ?
			   strstr(weft_future_error(waiting), "No space left") : NULL,
			   "a held-up task does not say why: %s",
			   weft_future_error(waiting) ?: "(null)");
	/* Space returns: work resumes and every result is intact. */
	cr_assert_eq(mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=64m"), 0);
	for (int i = 0; i < N; i++)
		checks[i] = submit_u64(c, check_block, &blocks[i], 1, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(result_u64(checks[i]), (uint64_t)i + 1);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_not(st.spill_blocked);
	cr_assert_eq(result_u64(waiting), 1);
	cr_assert_null(weft_future_error(waiting));
	weft_release(waiting);
	for (int i = 0; i < N; i++) {
		weft_release(blocks[i]);
		weft_release(checks[i]);
	}
	cr_assert_eq(weft_client_close(c), 0);
	umount(dir);
	rmdir(dir);
}

Test(spill, all_memory_pinned_still_finishes, .timeout = 60)
{
	struct weft_client *c = open_limited(16 * MB, "/tmp");
	enum { N = 14 };	/* 14 MiB viewed: over pause (12.8), nothing to spill */
	struct weft_future *held[N], *more[8];
	struct weft_stats st = { .size = sizeof(st) };

	for (int i = 0; i < N; i++) {
		uint64_t a[2] = { MB, (uint64_t)i + 1 };
		struct weft_buf b;

		cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), NULL, &held[i]),
			     0);
		cr_assert_eq(weft_result(held[i], &b), 0, "%s", weft_future_error(held[i]));
	}
	/* More work must still run: the pause lifts when nothing can be spilled. */
	for (int i = 0; i < 8; i++)
		more[i] = submit_u64(c, sum, NULL, 0, (uint64_t)i);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_wait(more[i], 10ll * 1000 * 1000 * 1000), 0,
			     "a task never ran while all memory was pinned: %s",
			     weft_future_error(more[i]) ?: "(no reason given)");
	/* A result that cannot fit says so rather than waiting for ever. */
	uint64_t a[2] = { 2 * MB, 99 };
	struct weft_future *big;

	cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), NULL, &big), 0);
	cr_assert_eq(weft_wait(big, 10ll * 1000 * 1000 * 1000), -ENOMEM);
	cr_assert_not_null(strstr(weft_future_error(big), "hard memory limit"));
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_leq(st.mem_peak, 16 * MB);
	for (int i = 0; i < 8; i++)
		weft_release(more[i]);
	for (int i = 0; i < N; i++)
		weft_release(held[i]);
	weft_release(big);
	cr_assert_eq(weft_client_close(c), 0);
}

/* The nice value of our thread named @name, or 99 if there is none. */
static int thread_nice(const char *name)
{
	char path[PATH_MAX], comm[32], stat[1024];
	struct dirent *e;
	DIR *d = opendir("/proc/self/task");
	int nice = 99;

	cr_assert_not_null(d);
	while (nice == 99 && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f || !fgets(comm, sizeof(comm), f) || strcmp(strtok(comm, "\n"), name)) {
			if (f)
				fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "r");
		cr_assert_not_null(f);
		cr_assert_not_null(fgets(stat, sizeof(stat), f));
		fclose(f);
		/* After the name in parentheses: state is field 3, nice field 19. */
		char *p = strrchr(stat, ')');

		for (int field = 2; p && field < 19; field++)
			p = strchr(p + 1, ' ');
		cr_assert_not_null(p);
		nice = atoi(p + 1);
	}
	closedir(d);
	return nice;
}

/*
 * Makes the engine spill (24 live results of 1 MiB under 16 MiB), checks them all,
 * and returns how many nice levels the spill thread ran above the first worker.
 */
static int spill_thread_raise(const char *dir)
{
	enum { N = 24 };
	struct weft_future *blocks[N], *checks[N];
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c = open_limited(16 * MB, dir);
	int spill, worker;

	for (int i = 0; i < N; i++) {
		uint64_t a[2] = { MB, (uint64_t)i + 1 };

		cr_assert_eq(weft_submit(c, make_block, NULL, 0, a, sizeof(a), NULL,
					 &blocks[i]), 0);
	}
	for (int i = 0; i < N; i++)
		checks[i] = submit_u64(c, check_block, &blocks[i], 1, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(result_u64(checks[i]), (uint64_t)i + 1);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_gt(st.spilled_bytes, 0, "nothing spilled");
	spill = thread_nice("weft-spill");
	worker = thread_nice("weft-w0");
	cr_assert_neq(spill, 99, "no spill thread");
	cr_assert_neq(worker, 99, "no worker");
	for (int i = 0; i < N; i++) {
		weft_release(blocks[i]);
		weft_release(checks[i]);
	}
	cr_assert_eq(weft_client_close(c), 0);
	return worker - spill;
}

Test(spill, spill_thread_runs_ten_nice_levels_above_the_workers, .timeout = 60)
{
	char dir[PATH_MAX];
	int now = getpriority(PRIO_PROCESS, 0);

	if (geteuid() != 0)
		cr_skip_test("needs CAP_SYS_NICE to raise a thread's priority");
	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-nice")));
	cr_assert_eq(spill_thread_raise(dir), now - 10 < -20 ? now + 20 : 10);
	setenv("WEFT_IO_NICE", "3", 1);
	cr_assert_eq(spill_thread_raise(dir), now - 3 < -20 ? now + 20 : 3);
	rmdir(dir);
}

Test(spill, io_nice_0_leaves_the_spill_thread_at_the_process_priority, .timeout = 60)
{
	char dir[PATH_MAX];

	setenv("WEFT_IO_NICE", "0", 1);
	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-nice")));
	cr_assert_eq(spill_thread_raise(dir), 0);
	rmdir(dir);
}

Test(spill, spilling_works_where_raising_the_priority_is_refused, .timeout = 60)
{
	char dir[PATH_MAX];
	struct rlimit none = { 0, 0 };

	/* No raise allowed: without CAP_SYS_NICE, RLIMIT_NICE 0 refuses any. */
	cr_assert_eq(setrlimit(RLIMIT_NICE, &none), 0);
	if (geteuid() == 0) {
		/* Root drops to nobody, in a directory nobody can reach and remove. */
		snprintf(dir, sizeof(dir), "/tmp/weft-nice-XXXXXX");
		cr_assert_not_null(mkdtemp(dir));
		if (chown(dir, 65534, 65534) || setgid(65534) || setuid(65534)) {
			rmdir(dir);
			cr_skip_test("cannot drop root to test a refused raise");
		}
	} else {
		cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-nice")));
	}
	setenv("WEFT_IO_NICE", "10", 1);	/* asked for: the refusal is logged */
	cr_assert_eq(spill_thread_raise(dir), 0);
	cr_assert_eq(fds_in(dir), 0, "a spill file is still open");
	cr_assert_eq(dir_entries(dir), 0, "a spill file was left behind");
	rmdir(dir);
}

Test(spill, bad_io_nice_returns_einval)
{
	static const char *const bad[] = { "ten", "-1", "40", "10x", " 5" };
	struct weft_client *c = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("WEFT_IO_NICE", bad[i], 1);
		cr_assert_eq(weft_client_open(NULL, NULL, &c), -EINVAL, "WEFT_IO_NICE=%s", bad[i]);
		cr_assert_null(c);
	}
	setenv("WEFT_IO_NICE", "39", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), 0);
	cr_assert_eq(weft_client_close(c), 0);
}
