// SPDX-License-Identifier: MIT
/*
 * sched_sim - the scheduler library alone, driven by 1,000 simulated workers and a
 * client: a graph of N tasks in layers (each task takes two of the layer before),
 * submitted, run (a simulated worker finishes what it is sent, in order) and
 * released as it ends, every op through the wire encoding as the server gives
 * them. Figures: state transitions per second, and the bytes the scheduler keeps
 * per task it has forgotten (what it leaks: 0 is the aim).
 *
 * usage: sched_sim [N] [WORKERS]   (default 10M tasks, 1000 workers)
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "../proto/proto.h"
#include "../sched/scheduler.h"

#define CLIENT 0x7fffffffu
#define LAYER 4096			/* tasks in a layer */

struct job {
	uint32_t w;
	uint64_t key;
};

static struct job *jobs;		/* COMPUTEs sent, a FIFO */
static size_t jhead, jtail, jcap;
static uint64_t ended;

static void io_send(void *arg, uint32_t to, uint16_t type, const void *op)
{
	(void)arg;
	if (type == WEFT_OP_COMPUTE) {
		if (jtail == jcap) {
			jcap = jcap ? jcap * 2 : 1 << 16;
			jobs = realloc(jobs, jcap * sizeof(*jobs));
			if (!jobs)
				abort();
		}
		jobs[jtail++] = (struct job){ to, ((const struct weft__op_compute *)op)->key };
	} else if (type == WEFT_OP_ENDED) {
		ended++;
	}
}

/* Hand @op to the scheduler as the server would: encoded, then decoded. */
static void deliver(struct weft__sched *s, uint32_t from, uint16_t type, const void *op)
{
	static uint8_t buf[WEFT_PROTO_MAX_MSG];
	uint8_t out[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__msg_out o;
	struct weft__op_iter it;
	struct weft__msg m;
	uint16_t t;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	if (weft__msg_add(&o, type, op))
		abort();
	if (weft__msg_open(buf, weft__msg_end(&o, 0), 0, &m))
		abort();
	weft__op_iter_init(&it, &m);
	if (weft__op_next(&it, &t, out) != 1)
		abort();
	weft__sched_op(s, from, t, out);
}

/* The simulated workers finish every task they were sent, in order. */
static void run_jobs(struct weft__sched *s)
{
	struct weft__psize sz = { 8 };

	while (jhead < jtail) {
		struct job j = jobs[jhead++];
		struct weft__op_done d = { .key = j.key, .end = WEFT_END_DONE, .run_ns = 1000,
					   .sizes = { .n = 1, .items = &sz } };

		deliver(s, j.w, WEFT_OP_DONE, &d);
	}
	jhead = jtail = 0;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	unsigned nw = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
	struct weft__sched_io io = { io_send, NULL };
	struct weft__sched_stats st;
	struct weft__sched *s;
	struct mallinfo2 m0, m1;
	char name[32];
	double t0, secs;
	double v[1], b[1];

	if (weft__sched_create(&io, &s))
		return 1;
	for (unsigned i = 1; i <= nw; i++) {
		snprintf(name, sizeof(name), "w%u", i);
		weft__sched_worker_join(s, i, name, 8, 1ull << 34);
	}
	weft__sched_client_join(s, CLIENT);
	m0 = mallinfo2();
	t0 = bench_now();
	for (uint64_t k = 1; k <= n; k++) {
		struct weft__pdep deps[2];
		uint64_t layer = (k - 1) / LAYER;
		struct weft__op_submit op = { .key = k, .fn = weft__pbytes_of("f", 1),
					      .noutputs = 1 };

		if (layer) {
			/* Two of the layer before, kept by the client until this layer ends. */
			deps[0] = (struct weft__pdep){ k - LAYER, 0 };
			deps[1] = (struct weft__pdep){ k - LAYER + (k % LAYER ? -1 : 1), 0 };
			op.deps = (struct weft__plist){ .n = 2, .items = deps };
		}
		deliver(s, CLIENT, WEFT_OP_SUBMIT, &op);
		/* At a layer's end: run what was sent, then let go of the layer before. */
		if (k % LAYER == 0) {
			run_jobs(s);
			for (uint64_t r = k - 2 * LAYER + 1; layer && r <= k - LAYER; r++) {
				struct weft__op_future f = { r, 0, 0 };

				deliver(s, CLIENT, WEFT_OP_RELEASE, &f);
			}
		}
	}
	run_jobs(s);
	/* The last two layers go too. */
	for (uint64_t r = n > 2 * LAYER ? ((n - 1) / LAYER - 1) * LAYER + 1 : 1; r <= n; r++) {
		struct weft__op_future f = { r, 0, 0 };

		deliver(s, CLIENT, WEFT_OP_RELEASE, &f);
	}
	run_jobs(s);
	secs = bench_now() - t0;
	m1 = mallinfo2();
	weft__sched_stats(s, &st);
	bench_header("sched_sim: the scheduler alone, simulated workers, a layered graph");
	printf("# %lu tasks, %u workers: %lu transitions in %.2f s; %lu forgotten, %lu left\n",
	       (unsigned long)n, nw, (unsigned long)st.transitions, secs,
	       (unsigned long)st.forgotten, (unsigned long)st.tasks);
	v[0] = st.transitions / secs / 1e6;
	bench_report("sched_sim", "transitions_M_per_s", 1, v, 1, "M/s", "-", NULL, 0);
	b[0] = st.forgotten ? ((double)m1.uordblks - (double)m0.uordblks) / st.forgotten : 0;
	bench_report("sched_sim", "bytes_per_forgotten", 1, b, 1, "B", "-", NULL, 0);
	weft__sched_destroy(s);
	free(jobs);
	return 0;
}
