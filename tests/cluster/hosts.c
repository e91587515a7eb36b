// SPDX-License-Identifier: MIT
/*
 * A cluster across hosts: two network namespaces joined by a bridge stand for two
 * machines, each running a worker, with the scheduler and the client on the host
 * side of the bridge. Each worker listens on its own host's address and reads the
 * other's results over the bridge; a host cut off from the network (its link
 * down: no connection ends, nothing answers) is taken for dead after its
 * heartbeats stop, and what only it held is made again on the other, while its
 * worker, hearing nothing from the scheduler, leaves; and a client whose
 * scheduler's host is cut off gives up instead of waiting for ever. Needs root
 * and `ip`; skipped without them.
 */
#include <stdarg.h>
#include <stdbool.h>

#include "cluster.h"

struct hosts {
	char bridge[16], ns[2][32], veth[2][16];
	char net[16];			/* "10.77.N": the bridge is .1, the hosts .2 and .3 */
	bool up;
};

static struct hosts h;
static struct cluster cl;

/* Run the shell command @fmt, quietly; its exit status. */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	ret = system(cmd);
	return WIFEXITED(ret) ? WEXITSTATUS(ret) : -1;
}

/*
 * Links up again before the processes stop, so that their connections end: a
 * socket still sending into a cut link holds its namespace, veth and all, until
 * TCP gives up, minutes later.
 */
static void hosts_down(void)
{
	if (h.up)
		for (int i = 0; i < 2; i++)
			sh("ip link set %s up", h.veth[i]);
	cluster_stop(&cl);
	if (!h.up)
		return;
	for (int i = 0; i < 2; i++) {
		sh("ip netns exec %s ss -K -t", h.ns[i]);	/* what the dead left */
		sh("ip netns del %s", h.ns[i]);	/* takes its end of the veth along */
	}
	sh("ip link del %s", h.bridge);
	h.up = false;
}

/* The bridge, and two namespaces on it, named after this process. */
static void hosts_up(void)
{
	int id = (int)getpid();

	memset(&cl, 0, sizeof(cl));
	if (geteuid())
		cr_skip_test("needs root: network namespaces stand for the hosts");
	if (sh("ip -V"))
		cr_skip_test("needs ip (iproute2) for the hosts' network namespaces");
	snprintf(h.bridge, sizeof(h.bridge), "wb%d", id);
	snprintf(h.net, sizeof(h.net), "10.77.%d", id % 250);
	if (sh("ip link add %s type bridge", h.bridge))
		cr_skip_test("cannot make a bridge here");
	h.up = true;
	cr_assert_eq(sh("ip addr add %s.1/24 dev %s && ip link set %s up", h.net, h.bridge,
			h.bridge), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(h.ns[i], sizeof(h.ns[i]), "weft%d-%c", id, 'a' + i);
		snprintf(h.veth[i], sizeof(h.veth[i]), "wv%d%c", id, 'a' + i);
		if (sh("ip netns add %s", h.ns[i]))
			cr_skip_test("cannot make a network namespace here");
		cr_assert_eq(sh("ip link add %s type veth peer name eth0 netns %s", h.veth[i],
				h.ns[i]), 0);
		cr_assert_eq(sh("ip link set %s master %s up", h.veth[i], h.bridge), 0);
		cr_assert_eq(sh("ip netns exec %s sh -c 'ip addr add %s.%d/24 dev eth0 && "
				"ip link set eth0 up && ip link set lo up'", h.ns[i], h.net,
				2 + i), 0);
	}
}

/* The scheduler on this side of the bridge (@host -1) or on host @host. */
static void sched_start(int host)
{
	char listen[64];

	snprintf(listen, sizeof(listen), "tcp://%s.%d:0", h.net, host < 0 ? 1 : 2 + host);
	c_scheduler(&cl, listen, "none", host < 0 ? NULL : h.ns[host]);
}

/* Worker w@i on host @i: it must listen on that host's address. */
static void worker_on_host(int i)
{
	char want[64];

	cl.ns[i] = h.ns[i];
	c_worker(&cl, i);
	cl.n = i + 1 > cl.n ? i + 1 : cl.n;
	snprintf(want, sizeof(want), "tcp://%s.%d:", h.net, 2 + i);
	cr_assert(!strncmp(cl.wurl[i], want, strlen(want)), "w%d listens on %s, not on its host",
		  i, cl.wurl[i]);
}

/* @pid's exit status once it exits, within @s seconds; -1 if it does not. */
static int exit_within(pid_t pid, int s)
{
	int status;

	for (int i = 0; i < s * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(100000);
	}
	return -1;
}

Test(hosts, workers_on_two_hosts_listen_on_their_own_and_read_each_other, .init = hosts_up,
     .fini = hosts_down, .timeout = 120)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_future *big, *ok, *back, *ok0;
	uint64_t n = 8u << 20, m = 3u << 20;
	struct weft_client *c;

	sched_start(-1);
	worker_on_host(0);
	worker_on_host(1);
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(u64_of(ok), n, "w1 read w0's 8 MiB over the bridge, every byte");
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &m, 8, &on1, &back), 0);
	cr_assert_eq(weft_submit_named(c, "check", &back, 1, NULL, 0, &on0, &ok0), 0);
	cr_assert_eq(u64_of(ok0), m, "and w0 w1's");
	weft_release(big);
	weft_release(ok);
	weft_release(back);
	weft_release(ok0);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(hosts, a_host_cut_off_is_taken_for_dead_and_what_it_held_made_again,
     .init = hosts_up, .fini = hosts_down, .timeout = 120)
{
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_future *big, *ok;
	uint64_t n = 8u << 20;
	struct weft_client *c;

	sched_start(-1);
	worker_on_host(0);
	c = cluster_client(&cl);
	/* The only worker makes it: it lives on host a alone. */
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, NULL, &big), 0);
	cr_assert_eq(weft_wait(big, -1), 0);
	worker_on_host(1);
	/* Host a's cable pulled: no connection to it ends, nothing from it arrives. */
	cr_assert_eq(sh("ip link set %s down", h.veth[0]), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(weft_wait(ok, 60ll * 1000 * 1000 * 1000), 0, "%s",
		     weft_future_error(ok) ?: "");
	cr_assert_eq(u64_of(ok), n, "made again on w1 and read whole");
	/* Cut off, not killed: hearing nothing from the scheduler, w0 leaves. */
	cr_assert_eq(exit_within(cl.w[0], 60), 1, "w0 left, exit status 1");
	cl.w[0] = 0;
	weft_release(big);
	weft_release(ok);
	cr_assert_eq(weft_client_close(c), 0);
}

/* A client waiting on a task whose scheduler's host is cut off: the wait ends. */
Test(hosts, a_client_whose_scheduler_is_cut_off_gives_up, .init = hosts_up,
     .fini = hosts_down, .timeout = 120)
{
	struct weft_future *f;
	struct weft_client *c;
	uint64_t ms = 100000;
	int ret;

	sched_start(0);
	worker_on_host(1);
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, NULL, &f), 0);
	cr_assert_eq(weft_wait(f, 200ll * 1000 * 1000), -ETIMEDOUT, "it naps");
	cr_assert_eq(sh("ip link set %s down", h.veth[0]), 0);
	ret = weft_wait(f, -1);
	cr_assert_eq(ret, -ETIMEDOUT, "the scheduler taken for gone: %d", ret);
	cr_assert_eq(exit_within(cl.w[1], 60), 1, "its worker left too, exit status 1");
	cl.w[1] = 0;
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}
