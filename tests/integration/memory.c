// SPDX-License-Identifier: MIT
/* Memory limits, thresholds and the spill directory: options, environment, errors. */
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"

static int open_with(const struct weft_options *o, struct weft_client **c)
{
	*c = NULL;
	return weft_client_open(NULL, o, c);
}

static size_t limit_of(struct weft_client *c)
{
	struct weft_stats st = { .size = sizeof(st) };

	cr_assert_eq(weft_stats(c, &st), 0);
	return st.mem_limit;
}

Test(memory, default_limit_is_half_of_what_is_available)
{
	struct weft_client *c;
	size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);

	cr_assert_eq(open_with(NULL, &c), 0);
	cr_assert_gt(limit_of(c), 4u << 20);
	cr_assert_leq(limit_of(c), phys / 2 + 4096);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(memory, option_wins_over_environment)
{
	struct weft_options o = { .size = sizeof(o), .memory_limit = 64 << 20 };
	struct weft_client *c;

	setenv("WEFT_MEMORY_LIMIT", "512M", 1);
	cr_assert_eq(open_with(NULL, &c), 0);
	cr_assert_eq(limit_of(c), 512u << 20);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(open_with(&o, &c), 0);
	cr_assert_eq(limit_of(c), 64u << 20);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(memory, bad_limits_return_einval)
{
	struct weft_options tiny = { .size = sizeof(tiny), .memory_limit = 1000 };
	const char *bad[] = { "0", "-1", "1M", "lots", "12Q", "" };
	struct weft_client *c;

	cr_assert_eq(open_with(&tiny, &c), -EINVAL);
	cr_assert_null(c);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("WEFT_MEMORY_LIMIT", bad[i], 1);
		int ret = open_with(NULL, &c);

		if (!*bad[i]) {
			cr_assert_eq(ret, 0, "an empty variable means unset");
			cr_assert_eq(weft_client_close(c), 0);
		} else {
			cr_assert_eq(ret, -EINVAL, "WEFT_MEMORY_LIMIT=%s gave %d", bad[i], ret);
		}
	}
}

Test(memory, thresholds_from_options_and_environment)
{
	struct weft_options o = { .size = sizeof(o), .memory_target = 0.5,
				  .memory_pause = 0.7, .memory_hard = 0.9 };
	struct weft_client *c;

	cr_assert_eq(open_with(&o, &c), 0);
	cr_assert_eq(weft_client_close(c), 0);
	setenv("WEFT_MEMORY_TARGET", "0.3", 1);
	setenv("WEFT_MEMORY_PAUSE", "0.4", 1);
	setenv("WEFT_MEMORY_HARD", "1", 1);
	cr_assert_eq(open_with(NULL, &c), 0);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(memory, bad_thresholds_return_einval)
{
	struct weft_options order = { .size = sizeof(order), .memory_target = 0.9,
				      .memory_pause = 0.7 };
	struct weft_options range = { .size = sizeof(range), .memory_hard = 1.5 };
	struct weft_options neg = { .size = sizeof(neg), .memory_pause = -0.1 };
	const char *bad[] = { "0", "1.5", "-0.2", "half", "0.5x" };
	struct weft_client *c;

	cr_assert_eq(open_with(&order, &c), -EINVAL);
	cr_assert_eq(open_with(&range, &c), -EINVAL);
	cr_assert_eq(open_with(&neg, &c), -EINVAL);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("WEFT_MEMORY_PAUSE", bad[i], 1);
		cr_assert_eq(open_with(NULL, &c), -EINVAL, "WEFT_MEMORY_PAUSE=%s", bad[i]);
	}
	unsetenv("WEFT_MEMORY_PAUSE");
	/* Two from the environment out of order. */
	setenv("WEFT_MEMORY_TARGET", "0.9", 1);
	setenv("WEFT_MEMORY_PAUSE", "0.7", 1);
	cr_assert_eq(open_with(NULL, &c), -EINVAL);
	cr_assert_null(c);
}

/*
 * A program's thresholds win over the environment's, and anything set wins over a
 * default: what is out of order with them is moved (unit/config checks the values).
 * weft-join sets its own target, and ran under a lower WEFT_MEMORY_PAUSE.
 */
Test(memory, option_thresholds_win_over_conflicting_environment)
{
	struct weft_options o = { .size = sizeof(o), .memory_target = 0.6 };
	struct weft_client *c;

	setenv("WEFT_MEMORY_PAUSE", "0.5", 1);
	cr_assert_eq(open_with(&o, &c), 0);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(open_with(NULL, &c), 0, "the default target makes way for the pause");
	cr_assert_eq(weft_client_close(c), 0);
	unsetenv("WEFT_MEMORY_PAUSE");
	setenv("WEFT_MEMORY_TARGET", "0.9", 1);
	cr_assert_eq(open_with(NULL, &c), 0, "the default pause makes way for the target");
	cr_assert_eq(weft_client_close(c), 0);
}

Test(memory, spill_dir_missing_returns_enoent)
{
	struct weft_options o = { .size = sizeof(o), .spill_dir = "/nonexistent/weft" };
	struct weft_client *c;

	cr_assert_eq(open_with(&o, &c), -ENOENT);
	setenv("WEFT_SPILL_DIR", "/nonexistent/weft", 1);
	cr_assert_eq(open_with(NULL, &c), -ENOENT);
	o.spill_dir = "/tmp";
	cr_assert_eq(open_with(&o, &c), 0, "the option wins over the environment");
	cr_assert_eq(weft_client_close(c), 0);
}

Test(memory, spill_dir_that_is_a_file_returns_enotdir)
{
	char path[PATH_MAX];
	int fd = mkstemp(t_template(path, sizeof(path), "weft-file"));
	struct weft_options o = { .size = sizeof(o), .spill_dir = path };
	struct weft_client *c;

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(open_with(&o, &c), -ENOTDIR);
	unlink(path);
}

Test(memory, spill_dir_read_only_returns_erofs)
{
	char dir[PATH_MAX];
	struct weft_options o = { .size = sizeof(o), .spill_dir = dir };
	struct weft_client *c;
	int ret;

	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-ro")));
	if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", MS_RDONLY, "size=1m")) {
		rmdir(dir);
		cr_skip_test("needs root to mount a read-only filesystem");
	}
	ret = open_with(&o, &c);
	umount(dir);
	rmdir(dir);
	cr_assert_eq(ret, -EROFS);
	cr_assert_null(c);
}

/*
 * weft_client_open(@o) in a child process that gives up root first (when it has
 * it) and applies @nproc as its limit of threads (0: none); its result is the
 * child's exit status, as -ret.
 */
static int open_unprivileged(const struct weft_options *o, rlim_t nproc)
{
	int st;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (!pid) {
		struct rlimit rl = { nproc, nproc };
		struct weft_client *c = NULL;
		int ret;

		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(255);
		if (nproc && setrlimit(RLIMIT_NPROC, &rl))
			_exit(254);
		ret = weft_client_open(NULL, o, &c);
		if (!ret)
			weft_client_close(c);
		_exit(-ret & 0xff);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "the child died: status %d", st);
	cr_assert_neq(WEXITSTATUS(st), 255, "cannot give up root");
	cr_assert_neq(WEXITSTATUS(st), 254, "cannot set RLIMIT_NPROC");
	return -WEXITSTATUS(st);
}

/* A spill directory the process may not write to: -EACCES, not a later failure. */
Test(memory, spill_dir_without_permission_returns_eacces, .timeout = 30)
{
	char dir[] = "/tmp/weft-acc-XXXXXX";
	struct weft_options o = { .size = sizeof(o), .nthreads = 1, .spill_dir = dir };
	int ret;

	/* In /tmp, so that the unprivileged child can reach it. */
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0555), 0);
	ret = open_unprivileged(&o, 0);
	rmdir(dir);
	cr_assert_eq(ret, -EACCES, "%d", ret);
}

/* Threads the system will not start: -EAGAIN, and nothing half made is left. */
Test(memory, threads_that_cannot_start_return_eagain, .timeout = 30)
{
	/* /tmp: the tests' own TMPDIR is root's alone. */
	struct weft_options o = { .size = sizeof(o), .nthreads = 4, .spill_dir = "/tmp" };

#ifdef __SANITIZE_THREAD__
	cr_skip_test("ThreadSanitizer starts no thread in a child forked from threads");
#endif
	/* One process (the child itself) is all the limit allows: no thread starts. */
	cr_assert_eq(open_unprivileged(&o, 1), -EAGAIN);
}

/* Reads its argument's last byte: the bytes were all copied. */
TASK(arg_last)
{
	return put_u64(ctx, ((const unsigned char *)arg)[arglen - 1]);
}

/*
 * regress_22: argument bytes are bytes the engine holds: they count in mem_bytes
 * (against the memory limit) while their task is pending, and stop counting once
 * it is gone.
 */
Test(memory, regress_22_arguments_count_against_the_limit, .timeout = 30)
{
	enum { ARG = 4 << 20 };
	struct weft_client *c = open_threads(1);
	unsigned char *arg = malloc(ARG);
	struct weft_future *g, *f[4];
	size_t before, pending;

	memset(arg, 7, ARG);
	atomic_store(&gate_open, 0);
	cr_assert_eq(weft_submit(c, gate, NULL, 0, NULL, 0, NULL, &g), 0);
	before = mem_bytes(c);
	for (int i = 0; i < 4; i++) {
		arg[ARG - 1] = (unsigned char)i;
		cr_assert_eq(weft_submit(c, arg_last, &g, 1, arg, ARG, NULL, &f[i]), 0);
	}
	pending = mem_bytes(c);
	cr_expect_geq(pending, before + 4 * (size_t)ARG, "4 arguments of 4 MiB pending: %zu"
		      " bytes held, %zu before", pending, before);
	atomic_store(&gate_open, 1);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(result_u64(f[i]), (uint64_t)i);
		weft_release(f[i]);
	}
	weft_release(g);
	cr_expect_lt(mem_bytes(c), (size_t)ARG, "the arguments went with their tasks: %zu",
		     mem_bytes(c));
	free(arg);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(make_len)
{
	uint64_t len;
	char *p;

	memcpy(&len, arg, sizeof(len));
	p = weft_output(ctx, len);
	if (!p)
		return weft_fail(ctx, "no memory for %llu bytes", (unsigned long long)len);
	memset(p, 7, len);
	return 0;
}

static const char *view_of(struct weft_client *c, struct weft_future **f, uint64_t len)
{
	struct weft_buf b;

	cr_assert_eq(weft_submit(c, make_len, NULL, 0, &len, sizeof(len), NULL, f), 0);
	cr_assert_eq(weft_result(*f, &b), 0);
	cr_assert_eq(b.len, len);
	return b.data;
}

Test(memory, large_results_and_scatters_are_advised_to_huge_pages, .timeout = 30)
{
	struct weft_future *small, *big, *sc;
	size_t len = 8u << 20;
	const char *ps, *pb;
	struct weft_client *c;
	struct weft_buf b;
	char *data;

	EMBEDDED_ONLY("looks at the memory of the process that made the result");
	NEEDS_HUGE_ADVICE();
	c = open_threads(1);
	ps = view_of(c, &small, 1u << 20);
	pb = view_of(c, &big, len);
	cr_assert_eq(advised_huge(ps + (1u << 19)), 0, "a 1 MiB result keeps small pages");
	cr_assert_eq(advised_huge(pb + len / 2), 1, "an 8 MiB result is advised");
	data = malloc(len);
	cr_assert_not_null(data);
	memset(data, 9, len);
	cr_assert_eq(weft_scatter(c, data, len, &sc), 0);
	cr_assert_eq(weft_result(sc, &b), 0);
	cr_assert_eq(advised_huge((const char *)b.data + len / 2), 1, "so is an 8 MiB scatter");
	cr_assert_eq(((const char *)b.data)[len - 1], 9);
	free(data);
	weft_release(sc);
	weft_release(big);
	weft_release(small);
	cr_assert_eq(weft_client_close(c), 0);
}
