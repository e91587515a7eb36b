// SPDX-License-Identifier: MIT
/*
 * The cluster's processes as a user sees them: weft-cluster leaves no process and
 * no shared memory behind, whether its command succeeds, fails or crashes; an idle
 * cluster does not spin; two clients share a scheduler; a client killed in the
 * middle of a graph has its results released; each program's --help, --version
 * and bad usage.
 */
#include <sys/resource.h>

#include "cluster.h"
#include "proto.h"

static struct cluster cl;

/* The path of the built program @name (tools/), beside this test's build tree. */
static void tool_path(const char *name, char *out, size_t cap)
{
	char dir[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", dir, sizeof(dir) - 1);

	cr_assert_gt(len, 0);
	dir[len] = '\0';
	*strrchr(dir, '/') = '\0';
	*strrchr(dir, '/') = '\0';
	*strrchr(dir, '/') = '\0';
	snprintf(out, cap, "%s/tools/%s", dir, name);
}

/* Run weft-cluster -n 2 --provider @provider -- sh -c @script; its exit status. */
static int run_cluster(const char *provider, const char *script)
{
	char prog[PATH_MAX + 32];
	char *argv[] = { prog, "-n", "2", "--nthreads", "1", "--provider", (char *)provider,
			 "--dashboard", "none", "--", "/bin/sh", "-c", (char *)script, NULL };
	int status;
	pid_t pid;

	tool_path("weft-cluster", prog, sizeof(prog));
	pid = fork();
	if (!pid) {
		execv(prog, argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Schedulers and workers left by a weft-cluster of ours: as this process is a
 * subreaper, what a weft-cluster leaves behind becomes its child.
 */
static int leftovers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d))) {
		char path[300], comm[64] = "";
		int ppid = 0;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%*d (%63[^)]) %*c %d", comm, &ppid) == 2 && ppid == getpid() &&
		    (!strncmp(comm, "weft-scheduler", 14) || !strncmp(comm, "weft-worker", 11)))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static int shm_regions(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, "weft-", 5);
	if (d)
		closedir(d);
	return n;
}

Test(procs, weft_cluster_leaves_nothing_behind, .timeout = 120)
{
	int shm;

	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	shm = shm_regions();

	cr_assert_eq(run_cluster("tcp", "test -n \"$WEFT_SCHEDULER\" && test -n \"$WEFT_TOKEN\""),
		     0, "the command sees the cluster");
	cr_assert_eq(run_cluster("shm", "exit 7"), 7, "its status is the command's");
	cr_assert_eq(run_cluster("shm", "kill -SEGV $$"), 128 + SIGSEGV, "a crash too");
	cr_assert_eq(leftovers(), 0, "no scheduler or worker left");
	cr_assert_leq(shm_regions(), shm, "no shared memory left");
}

/* CPU seconds a process has used, from /proc. */
static double cpu_of(pid_t pid)
{
	char path[64];
	unsigned long ut, st;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	cr_assert_not_null(f);
	/* Fields 14 and 15: utime and stime, after the command in parentheses. */
	ok = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	fclose(f);
	cr_assert_eq(ok, 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

Test(procs, an_idle_cluster_does_not_spin, .timeout = 60)
{
	pid_t pids[3];
	double before[3];

	cluster_start(&cl, 2, "tcp");
	pids[0] = cl.sched;
	pids[1] = cl.w[0];
	pids[2] = cl.w[1];
	sleep(1);			/* past joining */
	for (int i = 0; i < 3; i++)
		before[i] = cpu_of(pids[i]);
	sleep(2);
	for (int i = 0; i < 3; i++) {
		double used = cpu_of(pids[i]) - before[i];

		/* At most 1% of a core: 0.02 s in 2 s (the tick is 0.01 s). */
		cr_assert_leq(used, 0.04, "process %d used %.2f s of CPU in 2 s idle", i, used);
	}
	cluster_stop(&cl);
}

/* Seconds until @pid uses at most 1% of a core over a second, or -1 after @limit. */
static int until_idle(pid_t pid, int limit)
{
	for (int s = 0; s < limit; s++) {
		double before = cpu_of(pid);

		sleep(1);
		if (cpu_of(pid) - before <= 0.02)
			return s;
	}
	return -1;
}

/*
 * A worker that dies while it holds a lease on another's result (its read never
 * starts: the test hook): the scheduler says it left, the holder ends the lease,
 * stops polling for the read and frees the result once it is released.
 */
Test(procs, a_reader_that_dies_holding_a_lease_does_not_keep_its_holder_busy, .timeout = 90)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_stats st = { .size = sizeof(st) };
	uint64_t n = 8u << 20;		/* read by RMA, not inline */
	struct weft_future *big, *chk;
	struct weft_client *c;

	setenv("WEFT_TEST_STALL_READS", "1", 1);
	cluster_start_hooked(&cl, 2, "tcp", 2);		/* w1 never reads */
	unsetenv("WEFT_TEST_STALL_READS");
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_wait(big, -1), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &chk), 0);
	cr_assert_eq(weft_wait(chk, 500 * 1000000LL), -ETIMEDOUT, "w1's read never starts");
	kill(cl.w[1], SIGKILL);
	waitpid(cl.w[1], NULL, 0);
	cl.w[1] = 0;
	cr_assert_geq(until_idle(cl.w[0], 20), 0, "w0 is idle again once w1 is gone");
	/* The result was held by the lease only: released, it goes. */
	weft_release(chk);
	weft_release(big);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (!st.mem_bytes)
			break;
		usleep(50000);
	}
	cr_assert_eq(st.mem_bytes, 0, "w0 freed the result: %zu bytes held", st.mem_bytes);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(procs, two_clients_share_a_scheduler, .timeout = 60)
{
	struct weft_client *a, *b;
	struct weft_future *fa, *fb;
	uint64_t x = 5, y = 7;

	cluster_start(&cl, 2, "tcp");
	a = cluster_client(&cl);
	b = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(a, "add", NULL, 0, &x, 8, NULL, &fa), 0);
	cr_assert_eq(weft_submit_named(b, "add", NULL, 0, &y, 8, NULL, &fb), 0);
	cr_assert_eq(u64_of(fa), 5);
	cr_assert_eq(u64_of(fb), 7);
	/* One's futures are not the other's. */
	struct weft_future *bad;

	cr_assert_eq(weft_submit_named(b, "add", &fa, 1, NULL, 0, NULL, &bad), -EINVAL);
	weft_release(fa);
	cr_assert_eq(weft_client_close(a), 0);
	cr_assert_eq(u64_of(fb), 7, "b goes on after a left");
	weft_release(fb);
	cr_assert_eq(weft_client_close(b), 0);
	cluster_stop(&cl);
}

Test(procs, a_client_killed_has_its_results_released, .timeout = 120)
{
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;
	uint64_t n = 64u << 20;
	int fd[2], i;
	char ok;
	pid_t child;

#ifdef __SANITIZE_THREAD__
	cr_skip_test("ThreadSanitizer starts no thread in a child forked from threads");
#endif
	cluster_start(&cl, 2, "tcp");
	cr_assert_eq(pipe(fd), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (!child) {
		struct weft_future *f;
		struct weft_client *cc;

		/* 64 MiB held on a worker for this client, then it dies holding it. */
		if (weft_client_open(cl.url, NULL, &cc) ||
		    weft_submit_named(cc, "make", NULL, 0, &n, 8, NULL, &f) || weft_wait(f, -1))
			_exit(1);
		if (write(fd[1], "y", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fd[1]);
	cr_assert_eq(read(fd[0], &ok, 1), 1, "the child made its result");
	c = cluster_client(&cl);
	/* The workers report their memory every half second. */
	for (i = 0; i < 40; i++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (st.mem_bytes >= n)
			break;
		usleep(250 * 1000);
	}
	cr_assert_geq(st.mem_bytes, n, "the result is held");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (i = 0; i < 80; i++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (st.mem_bytes < n)
			break;
		usleep(250 * 1000);
	}
	cr_assert_lt(st.mem_bytes, n, "released after its client died (%zu bytes held)",
		     st.mem_bytes);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* @name @arg's exit status, its stdout in @out and its stderr in @err. */
static int run_tool(const char *name, const char *arg, char *out, char *err, size_t cap)
{
	char prog[PATH_MAX + 32], cmd[2 * PATH_MAX + 128];
	char *files[2] = { out, err };
	FILE *f;
	int status;

	tool_path(name, prog, sizeof(prog));
	snprintf(cmd, sizeof(cmd), "'%s' %s >/tmp/weft-tool-out.%d 2>/tmp/weft-tool-err.%d "
		 "</dev/null", prog, arg, (int)getpid(), (int)getpid());
	status = system(cmd);
	for (int i = 0; i < 2; i++) {
		char path[64];
		size_t n;

		snprintf(path, sizeof(path), "/tmp/weft-tool-%s.%d", i ? "err" : "out",
			 (int)getpid());
		f = fopen(path, "r");
		cr_assert_not_null(f, "%s", path);
		n = fread(files[i], 1, cap - 1, f);
		files[i][n] = '\0';
		fclose(f);
		unlink(path);
	}
	cr_assert(WIFEXITED(status), "%s %s: status %d", name, arg, status);
	return WEXITSTATUS(status);
}

Test(procs, each_program_answers_help_version_and_bad_usage, .timeout = 60)
{
	static const char *const names[] = { "weft-scheduler", "weft-worker", "weft-cluster" };
	char out[8192], err[8192], want[128];

	for (int i = 0; i < 3; i++) {
		const char *name = names[i];

		cr_assert_eq(run_tool(name, "--help", out, err, sizeof(out)), 0, "%s", name);
		cr_assert(!strncmp(out, "usage: ", 7), "%s --help: %s", name, out);
		cr_assert(strstr(out, "Exit status"), "%s documents its exit status", name);
		cr_assert(strstr(out, "--version"), "%s --help names --version", name);

		cr_assert_eq(run_tool(name, "--version", out, err, sizeof(out)), 0, "%s", name);
		snprintf(want, sizeof(want), "%s %s (protocol %u.%u)\n", name,
			 weft_version_string(), WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR);
		cr_assert_str_eq(out, want);

		cr_assert_eq(run_tool(name, "--no-such-option", out, err, sizeof(out)), 2,
			     "%s: bad usage", name);
		snprintf(want, sizeof(want), "Try '%s --help'.", name);
		cr_assert(strstr(err, want), "%s: %s", name, err);
		cr_assert_str_eq(out, "", "%s says nothing on stdout", name);
	}
}

/*
 * A worker that cannot join: weft-cluster exits 1, and signals nobody else. Run
 * in a process group of its own with a sentinel, the sh that starts it: a
 * SIGTERM to the group (kill(-0) for a worker never started) killed the sh too.
 */
Test(procs, weft_cluster_whose_worker_cannot_join_exits_1_and_spares_its_group,
     .timeout = 60)
{
	char prog[PATH_MAX + 32], script[PATH_MAX + 128];
	int status;
	pid_t pid;

	tool_path("weft-cluster", prog, sizeof(prog));
	snprintf(script, sizeof(script), "'%s' -n 2 --dashboard none --load /nonexistent.so "
		 "-- true; exit $((100 + $?))", prog);
	pid = fork();
	if (!pid) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the sh beside it was killed by signal %d",
		  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	cr_assert_eq(WEXITSTATUS(status), 101, "weft-cluster exited %d", WEXITSTATUS(status) - 100);
}
