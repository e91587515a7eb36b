/* SPDX-License-Identifier: MIT */
/*
 * The cluster tests' harness: a scheduler and workers as real processes on
 * loopback, started from the programs beside the test (build/tools), each worker
 * loading the tests' task functions; and stopped, every process reaped and its
 * shared memory removed, whatever the test did.
 */
#ifndef WEFT_TEST_CLUSTER_H
#define WEFT_TEST_CLUSTER_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>

#include "../../util/shm.h"

#include "../tmp.h"

#define TOKEN "a-token-for-the-cluster-tests"
#define MAX_W 4

struct cluster {
	pid_t sched, w[MAX_W];
	int n;
	char url[128];
	char dir[PATH_MAX];		/* build/ */
	char wurl[MAX_W][128];		/* where each worker listens */
	int test_worker;		/* 1 + the worker started from build/test/tools
					 * (the library's test hooks), or 0 */
	const char *ns[MAX_W];		/* the network namespace each worker runs in,
					 * or NULL for this one (hosts.c) */
};

/* iproute2's ip, whose "netns exec" runs a program in a network namespace. */
static inline char *c_ip(void)
{
	return access("/usr/sbin/ip", X_OK) ? "/sbin/ip" : "/usr/sbin/ip";
}

/* The build directory this test program was built in (build/, build/asan/...). */
static inline void c_build_dir(char *dir, size_t size)
{
	ssize_t len = readlink("/proc/self/exe", dir, size - 1);

	cr_assert_gt(len, 0);
	dir[len] = '\0';
	*strrchr(dir, '/') = '\0';	/* build/tests/cluster */
	*strrchr(dir, '/') = '\0';
	*strrchr(dir, '/') = '\0';	/* build */
}

/* A line from @fd within @ms. */
static inline int c_line(int fd, char *buf, size_t len, int ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, ms) <= 0 || read(fd, buf + n, 1) != 1)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static inline pid_t c_spawn(char *const argv[], int *out)
{
	int fd[2];
	pid_t pid;

	cr_assert_eq(pipe(fd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	*out = fd[0];
	return pid;
}

static inline void c_worker(struct cluster *c, int i)
{
	char prog[PATH_MAX + 32], lib[PATH_MAX + 32], name[16], line[256];
	/* ip execs the worker in its namespace: the same process. */
	char *argv[] = { c_ip(), "netns", "exec", (char *)c->ns[i], prog, "--scheduler",
			 c->url, "--name", name, "--nthreads", "1", "--memory-limit", "256M",
			 "--load", lib, NULL };
	int fd;

	snprintf(prog, sizeof(prog), "%s/%stools/weft-worker", c->dir,
		 c->test_worker == i + 1 ? "test/" : "");
	snprintf(lib, sizeof(lib), "%s/tests/cluster/libtasks.so", c->dir);
	snprintf(name, sizeof(name), "w%d", i);
	c->w[i] = c_spawn(c->ns[i] ? argv : argv + 4, &fd);
	cr_assert_eq(c_line(fd, line, sizeof(line), 20000), 0, "worker %s joins", name);
	cr_assert_eq(strncmp(line, "joined", 6), 0, "%s", line);
	cr_assert_eq(sscanf(line, "joined %*s %127s", c->wurl[i]), 1, "%s", line);
	close(fd);
}

/*
 * The scheduler of @c, listening at @listen, serving its views at @dashboard
 * ("none": nowhere), in network namespace @ns (NULL: this one).
 */
static inline void c_scheduler(struct cluster *c, const char *listen, const char *dashboard,
			       const char *ns)
{
	char prog[PATH_MAX + 32];
	char *argv[] = { c_ip(), "netns", "exec", (char *)ns, prog, "--listen", (char *)listen,
			 "--dashboard", (char *)dashboard, NULL };
	int fd;

	setenv("WEFT_TOKEN", TOKEN, 1);
	unsetenv("WEFT_SCHEDULER");
	c_build_dir(c->dir, sizeof(c->dir));
	snprintf(prog, sizeof(prog), "%s/tools/weft-scheduler", c->dir);
	c->sched = c_spawn(ns ? argv : argv + 4, &fd);
	cr_assert_eq(c_line(fd, c->url, sizeof(c->url), 20000), 0, "the scheduler starts");
	close(fd);
}

/*
 * A scheduler on @provider (tcp or shm) serving its views at @dashboard ("none":
 * nowhere) and @n workers w0.., one thread each; worker @test_worker - 1 (if not
 * 0) from the build with the test hooks.
 */
static inline void cluster_start_as(struct cluster *c, int n, const char *provider,
				    int test_worker, const char *dashboard)
{
	char listen[64];

	memset(c, 0, sizeof(*c));
	c->test_worker = test_worker;
	snprintf(listen, sizeof(listen), "%s://127.0.0.1:0", provider);
	c_scheduler(c, listen, dashboard, NULL);
	c->n = n;
	for (int i = 0; i < n; i++)
		c_worker(c, i);
}

static inline void cluster_start_hooked(struct cluster *c, int n, const char *provider,
					int test_worker)
{
	cluster_start_as(c, n, provider, test_worker, "none");
}

static inline void cluster_start(struct cluster *c, int n, const char *provider)
{
	cluster_start_hooked(c, n, provider, 0);
}

static inline void c_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			weft__shm_remove(pid);
			return;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	weft__shm_remove(pid);
}

static inline void cluster_stop(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		c_stop(c->w[i]);
	c_stop(c->sched);
}

static inline struct weft_client *cluster_client(struct cluster *c)
{
	struct weft_client *cl;

	cr_assert_eq(weft_client_open(c->url, NULL, &cl), 0);
	return cl;
}

static inline uint64_t u64_of(struct weft_future *f)
{
	struct weft_buf b;
	uint64_t v;

	cr_assert_eq(weft_result(f, &b), 0, "%s", weft_future_error(f) ?: "");
	cr_assert_eq(b.len, 8);
	memcpy(&v, b.data, 8);
	return v;
}

#endif /* WEFT_TEST_CLUSTER_H */
