// SPDX-License-Identifier: MIT
/*
 * weft-cluster - a cluster on this machine for the length of one command: a
 * scheduler and N workers (w0 ... wN-1), CMD run with WEFT_SCHEDULER and
 * WEFT_TOKEN set, and everything torn down after, whatever happened to CMD: every
 * child gets SIGTERM, then SIGKILL after a grace period, and the shared memory
 * regions of each are removed. A worker that dies is started again under its name
 * a few times at most, as dask's nanny does.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "core.h"
#include "shm.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
#define MAX_WORKERS 256
#define MAX_LOADS 64
#define RESTARTS 3			/* times a worker is started again */
#define GRACE_MS 5000			/* between SIGTERM and SIGKILL */
#define JOIN_MS 30000			/* for the scheduler and each worker to come up */

static const char usage[] =
	"usage: weft-cluster -n N [options] -- CMD [ARGS...]\n"
	"\n"
	"Starts a scheduler and N workers on this machine (named w0 ... wN-1), runs CMD\n"
	"with WEFT_SCHEDULER and WEFT_TOKEN set, then stops them all, and exits with\n"
	"CMD's status (128+N if a signal N ended it).\n"
	"\n"
	"  -n N                    workers (1 to 256)\n"
	"  --nthreads T            threads of each worker (default: the cores they share)\n"
	"  --memory-limit SIZE     of each worker (default: the engine's)\n"
	"  --provider tcp|shm      tcp (default), or shm: shared memory for the data\n"
	"  --load LIB.so           a library of task functions for each worker (repeatable)\n"
	"  --token-file FILE       the cluster token (default $WEFT_TOKEN, or a fresh one)\n"
	"  --dashboard HOST:PORT   where the scheduler serves the cluster's figures over\n"
	"                          HTTP (default 127.0.0.1:8787; none: nowhere)\n"
	"  --help                  this text\n"
	"  --version               the version of weft and of its protocol\n"
	"\n"
	"SIGINT and SIGTERM are passed on to CMD. A worker that dies is started again\n"
	"under its name, 3 times at most. No scheduler, worker or shared memory region\n"
	"outlives weft-cluster. Exit status: CMD's; 1 if the cluster could not start or\n"
	"the scheduler died; 2 for bad usage.\n";

struct child {
	pid_t pid;
	char name[16];
	int restarts;
};

static struct {
	unsigned n, nthreads;
	const char *memory_limit, *provider, *dashboard;
	const char *loads[MAX_LOADS];
	unsigned nloads;
	char token[WEFT_TOKEN_MAX];
	char dir[PATH_MAX];		/* where weft-scheduler and weft-worker are */
	char url[512];
	struct child sched, workers[MAX_WORKERS];
	pid_t cmd;
} g;

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "weft-cluster: %s%s%s\nTry 'weft-cluster --help'.\n", what,
		arg ? ": " : "", arg ? arg : "");
	return EXIT_USAGE;
}

/* The program @name beside this one, or by $PATH. */
static void program(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", g.dir, name);
	if (access(out, X_OK))
		snprintf(out, len, "%s", name);
}

/* Fork @argv in a group of its own, dying with us; its stdout to @out_fd if >= 0. */
static pid_t spawn(char *const argv[], int out_fd, bool own_group)
{
	sigset_t none;
	pid_t pid = fork();

	if (pid)
		return pid;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (own_group)
		setpgid(0, 0);
	if (out_fd >= 0) {
		dup2(out_fd, STDOUT_FILENO);
		close(out_fd);
	}
	execvp(argv[0], argv);
	fprintf(stderr, "weft-cluster: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* A line from @fd within @ms, into @buf. 0, or -ETIMEDOUT/-EPIPE. */
static int read_line(int fd, char *buf, size_t len, int ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, ms) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return -EPIPE;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static int start_scheduler(void)
{
	char prog[PATH_MAX + 32], listen[64];
	char *argv[] = { prog, "--listen", listen, "--dashboard", (char *)g.dashboard, NULL };
	int fd[2];

	program("weft-scheduler", prog, sizeof(prog));
	snprintf(listen, sizeof(listen), "%s://127.0.0.1:0", g.provider);
	if (pipe(fd))
		return -errno;
	g.sched.pid = spawn(argv, fd[1], true);
	close(fd[1]);
	snprintf(g.sched.name, sizeof(g.sched.name), "scheduler");
	if (g.sched.pid < 0 || read_line(fd[0], g.url, sizeof(g.url), JOIN_MS)) {
		close(fd[0]);
		fprintf(stderr, "weft-cluster: the scheduler did not start\n");
		return -EIO;
	}
	close(fd[0]);
	return 0;
}

/* Start worker @i; wait until it has joined. */
static int start_worker(unsigned i)
{
	char prog[PATH_MAX + 32], threads[16], line[256];
	char *argv[16 + 2 * MAX_LOADS];
	unsigned a = 0;
	int fd[2], ret;

	program("weft-worker", prog, sizeof(prog));
	snprintf(g.workers[i].name, sizeof(g.workers[i].name), "w%u", i);
	argv[a++] = prog;
	argv[a++] = "--scheduler";
	argv[a++] = g.url;
	argv[a++] = "--name";
	argv[a++] = g.workers[i].name;
	if (g.nthreads) {
		snprintf(threads, sizeof(threads), "%u", g.nthreads);
		argv[a++] = "--nthreads";
		argv[a++] = threads;
	}
	if (g.memory_limit) {
		argv[a++] = "--memory-limit";
		argv[a++] = (char *)g.memory_limit;
	}
	for (unsigned k = 0; k < g.nloads; k++) {
		argv[a++] = "--load";
		argv[a++] = (char *)g.loads[k];
	}
	argv[a] = NULL;
	if (pipe(fd))
		return -errno;
	g.workers[i].pid = spawn(argv, fd[1], true);
	close(fd[1]);
	ret = read_line(fd[0], line, sizeof(line), JOIN_MS);
	close(fd[0]);
	if (ret || strncmp(line, "joined", 6)) {
		fprintf(stderr, "weft-cluster: worker %s did not join\n", g.workers[i].name);
		return -EIO;
	}
	return 0;
}

static bool reap(pid_t pid, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	return false;
}

/* Stop @c: SIGTERM to its group, SIGKILL after the grace period; its shm goes. */
static void stop(struct child *c)
{
	if (c->pid <= 0)
		return;
	kill(-c->pid, SIGTERM);
	if (!reap(c->pid, GRACE_MS)) {
		kill(-c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	weft__shm_remove(c->pid);
	c->pid = 0;
}

static void teardown(void)
{
	/* Only those started: kill(-0) would signal our own group, our caller's too. */
	for (unsigned i = 0; i < g.n; i++)
		if (g.workers[i].pid > 0)
			kill(-g.workers[i].pid, SIGTERM);
	for (unsigned i = 0; i < g.n; i++)
		stop(&g.workers[i]);
	stop(&g.sched);
}

static int parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nthreads", 1, NULL, 't' }, { "memory-limit", 1, NULL, 'm' },
		{ "provider", 1, NULL, 'p' }, { "load", 1, NULL, 'L' },
		{ "token-file", 1, NULL, 'k' }, { "dashboard", 1, NULL, 'd' },
		{ "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	const char *token_file = NULL;
	size_t size;
	int o, ret;

	g.provider = "tcp";
	g.dashboard = "127.0.0.1:8787";
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+n:", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (weft__parse_uint(optarg, &g.n) || !g.n || g.n > MAX_WORKERS)
				return bad("bad -n (1 to 256)", optarg);
			break;
		case 't':
			if (weft__parse_uint(optarg, &g.nthreads) || !g.nthreads)
				return bad("bad --nthreads", optarg);
			break;
		case 'm':
			if (weft__parse_size(optarg, &size) || !size)
				return bad("bad --memory-limit (a size such as 1G)", optarg);
			g.memory_limit = optarg;
			break;
		case 'p':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "shm"))
				return bad("--provider is tcp or shm", optarg);
			g.provider = optarg;
			break;
		case 'L':
			if (g.nloads == MAX_LOADS)
				return bad("too many --load", optarg);
			g.loads[g.nloads++] = optarg;
			break;
		case 'k': token_file = optarg; break;
		case 'd': g.dashboard = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V': weft__print_version("weft-cluster"); exit(0);
		default: return bad("unknown or incomplete option", argv[optind - 1]);
		}
	}
	if (!g.n)
		return bad("-n N is needed", NULL);
	if (optind >= argc)
		return bad("no command: weft-cluster -n N -- CMD [ARGS...]", NULL);
	ret = weft__token_load(token_file, g.token, sizeof(g.token));
	if (ret == -ENOENT)
		ret = weft__auth_token_new(g.token, sizeof(g.token));
	if (ret) {
		fprintf(stderr, "weft-cluster: the token: %s\n", ret == -EINVAL ?
			"a token has at least 16 characters" : strerror(-ret));
		return EXIT_USAGE;
	}
	return -1;
}

/* A worker ended before its time: start it again, or give up on it. */
static void worker_died(unsigned i, int status)
{
	struct child *c = &g.workers[i];

	weft__shm_remove(c->pid);
	fprintf(stderr, "weft-cluster: worker %s ended (%s %d)%s\n", c->name,
		WIFSIGNALED(status) ? "signal" : "status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		c->restarts < RESTARTS ? ": starting it again" : "");
	c->pid = 0;
	if (c->restarts++ < RESTARTS && start_worker(i))
		c->pid = 0;
}

int main(int argc, char **argv)
{
	sigset_t sigs;
	ssize_t n;
	int ret, status = 0;

	ret = parse(argc, argv);
	if (ret >= 0)
		return ret;
	n = readlink("/proc/self/exe", g.dir, sizeof(g.dir) - 1);
	if (n > 0) {
		g.dir[n] = '\0';
		*strrchr(g.dir, '/') = '\0';
	}
	/* The children get these as they come; we take them by sigtimedwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	setenv("WEFT_TOKEN", g.token, 1);
	if (start_scheduler()) {
		teardown();
		return EXIT_FAIL;
	}
	for (unsigned i = 0; i < g.n; i++)
		if (start_worker(i)) {
			teardown();
			return EXIT_FAIL;
		}
	setenv("WEFT_SCHEDULER", g.url, 1);
	g.cmd = spawn(&argv[optind], -1, false);
	unsetenv("WEFT_SCHEDULER");	/* workers started again are told by --scheduler */
	for (;;) {
		struct timespec tick = { 0, 200 * 1000 * 1000 };
		siginfo_t si;
		pid_t pid;
		int sig = sigtimedwait(&sigs, &si, &tick);

		if (sig == SIGINT || sig == SIGTERM)
			kill(g.cmd, sig);
		while ((pid = waitpid(-1, &ret, WNOHANG)) > 0) {
			if (pid == g.cmd) {
				status = WIFSIGNALED(ret) ? 128 + WTERMSIG(ret) : WEXITSTATUS(ret);
				teardown();
				return status;
			}
			if (pid == g.sched.pid) {
				fprintf(stderr, "weft-cluster: the scheduler died: stopping\n");
				g.sched.pid = 0;
				kill(g.cmd, SIGTERM);
				if (!reap(g.cmd, GRACE_MS)) {
					kill(g.cmd, SIGKILL);
					waitpid(g.cmd, NULL, 0);
				}
				teardown();
				return EXIT_FAIL;
			}
			for (unsigned i = 0; i < g.n; i++)
				if (pid == g.workers[i].pid)
					worker_died(i, ret);
		}
	}
}
