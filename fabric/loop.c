// SPDX-License-Identifier: MIT
/*
 * loop.c - the fabric thread: starting and stopping it, and its loop. Each pass
 * reads the completion queues, runs the calls other threads queued and posts what
 * waits for room. A pass that finds nothing flushes the messages being filled
 * (batching by draining, never by a timer); then the thread spins SPIN_NS and
 * sleeps in epoll on the completion queue's fd, an eventfd that callers kick and
 * the next tick. While leases are open or reads are in flight, it polls instead,
 * yielding the core between passes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <rdma/fi_errno.h>

#include "internal.h"
#include "log.h"

#define CQ_BATCH 16
#define STOP_WAIT_NS 1000000000LL	/* for the BYEs to leave at stop */

/* ---- completions ---- */

static void complete(struct weft__fabric *f, void *op_context, size_t len,
		     int err)
{
	struct fab_ctx *c = op_context;
	struct recvbuf *rb;

	if (!c)
		return;
	switch (c->kind) {
	case CTX_RECV:
		rb = container_of(c, struct recvbuf, ctx);
		if (!err)
			weft__fab_on_msg(f, rb->data, len);
		else
			weft__log(WEFT_LOG_WARN, "fabric", "a receive failed: %s", fi_strerror(-err));
		/* Repost whatever happened; a failure here leaves one buffer fewer. */
		if (fi_recv(f->ctrl.ep, rb->data, sizeof(rb->data), NULL, FI_ADDR_UNSPEC,
			    &rb->ctx.fi))
			weft__log(WEFT_LOG_ERROR, "fabric", "reposting a receive failed");
		break;
	case CTX_SEND:
		weft__fab_send_done(f, container_of(c, struct sendbuf, ctx), err);
		break;
	case CTX_READ:
		weft__fab_read_done(f, container_of(c, struct readchunk, ctx), err);
		break;
	}
}

static int read_cq(struct weft__fabric *f, struct fid_cq *cq)
{
	struct fi_cq_data_entry e[CQ_BATCH];
	ssize_t n;

	/* No source wanted: a message names its sender (proto.h, conn). */
	n = fi_cq_read(cq, e, CQ_BATCH);
	if (n == -FI_EAGAIN)
		return 0;
	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry ee = { 0 };

		if (fi_cq_readerr(cq, &ee, 0) != 1)
			return 0;
		complete(f, ee.op_context, 0, ee.err ? -(int)ee.err : -EIO);
		return 1;
	}
	if (n < 0) {
		weft__log(WEFT_LOG_ERROR, "fabric", "reading a completion queue: %s",
			  fi_strerror((int)-n));
		return 0;
	}
	for (ssize_t i = 0; i < n; i++)
		complete(f, e[i].op_context, e[i].len, 0);
	return (int)n;
}

/* ---- calls from other threads ---- */

void weft__fab_call(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct weft__fab_call *head = atomic_load_explicit(&f->calls, memory_order_relaxed);

	/* Release pairs with the loop's acquire exchange: it sees *c filled. */
	do
		c->next = head;
	while (!atomic_compare_exchange_weak_explicit(&f->calls, &head, c, memory_order_seq_cst,
						      memory_order_relaxed));
	/* seq_cst with the loop's store of sleeping: one of us sees the other. */
	if (atomic_load_explicit(&f->sleeping, memory_order_seq_cst)) {
		uint64_t one = 1;

		if (write(f->eventfd, &one, sizeof(one)) < 0)
			weft__log(WEFT_LOG_ERROR, "fabric", "waking the fabric thread failed");
	}
}

static int run_calls(struct weft__fabric *f)
{
	struct weft__fab_call *c, *next, *fifo = NULL;
	int n = 0;

	c = atomic_exchange_explicit(&f->calls, NULL, memory_order_acquire);
	for (; c; c = next) {		/* a stack: reverse it into call order */
		next = c->next;
		c->next = fifo;
		fifo = c;
	}
	for (c = fifo; c; c = next, n++) {
		next = c->next;		/* fn may free c */
		c->fn(f, c);
	}
	return n;
}

/* ---- the loop ---- */

int weft__fab_progress(struct weft__fabric *f)
{
	int work = read_cq(f, f->cdom.cq);

	if (f->rd.cq)
		work += read_cq(f, f->rd.cq);
	if (f->ddom != &f->cdom)
		work += read_cq(f, f->ddom->cq);
	work += run_calls(f);
	for (struct weft__peer *p = f->peers, *next; p; p = next) {
		next = p->next;
		if (p->queue)
			weft__fab_push(f, p);
	}
	if (f->reads_wait)
		weft__fab_reads_resume(f);
	return work;
}

/*
 * Whether the data endpoints need the thread to keep polling them: while reads of
 * ours are under way, or on tcp and verbs while leases are open (a peer reads our
 * memory): the provider serves a peer's read in our progress calls, and waking for
 * each turn of the socket gave 2.4-3.1 GB/s where polling gives 3.2-3.7 (64 MiB,
 * fi_pingpong's 4 MiB: 3.2; perf/HISTORY.md). A lease ends when its reader says so
 * or leaves, so this does not outlast the reads. On shm only for SHM_CONTACT_NS
 * after a lease opens; then the loop looks every SHM_HOLD_POLL_NS.
 */
static bool must_poll(const struct weft__fabric *f, int64_t now)
{
	return (f->holds > 0 && (f->scheme != SCHEME_SHM || now < f->hold_poll_until)) ||
	       f->reads_inflight || f->reads_wait;
}

static void sleep_until(struct weft__fabric *f, int64_t deadline)
{
	struct epoll_event ev[4];
	struct fid *fids[2] = { &f->cdom.cq->fid, f->rd.cq ? &f->rd.cq->fid : NULL };
	int64_t left = deadline - weft__mono_ns();
	int ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);

	/* seq_cst with the callers' push and load of sleeping (weft__fab_call). */
	atomic_store_explicit(&f->sleeping, true, memory_order_seq_cst);
	if (!atomic_load_explicit(&f->calls, memory_order_seq_cst) &&
	    fi_trywait(f->cdom.fabric, fids, f->rd.fd >= 0 ? 2 : 1) == 0) {
		int n = epoll_wait(f->epfd, ev, 4, ms);

		for (int i = 0; i < n; i++) {
			uint64_t v;

			if (ev[i].data.fd == f->eventfd && read(f->eventfd, &v, sizeof(v)) < 0)
				weft__log(WEFT_LOG_DEBUG, "fabric", "eventfd read failed");
		}
	}
	atomic_store_explicit(&f->sleeping, false, memory_order_relaxed);
}

static void tick(struct weft__fabric *f, int64_t now)
{
	if (!f->cfg.tick_ms || now < f->next_tick)
		return;
	f->next_tick = now + (int64_t)f->cfg.tick_ms * 1000000;
	if (f->cfg.cbs->tick)
		f->cfg.cbs->tick(f->cfg.arg, now);
}

static void say_bye(struct weft__fabric *f)
{
	int64_t until = weft__mono_ns() + STOP_WAIT_NS;
	bool pending;

	for (struct weft__peer *p = f->peers; p; p = p->next)
		if (p->ready && !p->dying) {
			weft__fab_flush(f, p);
			weft__fab_send_now(f, p, WEFT_MSG_BYE, 0, NULL);
		}
	do {
		weft__fab_progress(f);
		pending = false;
		for (struct weft__peer *p = f->peers; p; p = p->next)
			pending |= p->inflight || p->queue;
	} while (pending && weft__mono_ns() < until);
}

static void *loop(void *arg)
{
	struct weft__fabric *f = arg;
	int64_t last = weft__mono_ns();

	weft__name_thread("weft-fabric");
	f->next_tick = last;
	while (!atomic_load_explicit(&f->stop, memory_order_acquire)) {
		int64_t now, until;

		if (weft__fab_progress(f)) {
			last = weft__mono_ns();
			continue;
		}
		if (f->dirty) {
			weft__fab_flush_all(f);
			continue;
		}
		now = weft__mono_ns();
		tick(f, now);
		if (must_poll(f, now)) {
			sched_yield();
			continue;
		}
		if (now - last < f->spin_ns) {
			cpu_relax();
			continue;
		}
		until = f->cfg.tick_ms ? f->next_tick : now + NSEC_PER_SEC;
		if (f->holds > 0 && until > now + SHM_HOLD_POLL_NS)
			until = now + SHM_HOLD_POLL_NS;	/* shm: see must_poll */
		sleep_until(f, until);
		last = weft__mono_ns();
	}
	say_bye(f);
	return NULL;
}

/* ---- start and stop ---- */

/* The address of this machine on the route to @host (a UDP socket tells). */
static int route_to(const char *host, const char *port, char *out, size_t len)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *ai;
	struct sockaddr_in me;
	socklen_t sl = sizeof(me);
	int fd, ret = -EHOSTUNREACH;

	if (getaddrinfo(host, port, &hints, &ai))
		return -EHOSTUNREACH;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen) &&
	    !getsockname(fd, (struct sockaddr *)&me, &sl) &&
	    inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)len))
		ret = 0;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return ret;
}

static int choose_address(struct weft__fabric *f, char *host, size_t hl, char *port, size_t pl)
{
	const struct weft__fab_config *cfg = f->cfg.url ? &f->cfg : NULL;
	char nhost[256], nport[8];
	int ret;

	if (cfg)
		return weft__fab_parse_url(cfg->url, &f->scheme, host, hl, port, pl);
	f->scheme = SCHEME_TCP;
	snprintf(host, hl, "127.0.0.1");
	snprintf(port, pl, "0");
	if (!f->cfg.near)
		return 0;
	ret = weft__fab_parse_url(f->cfg.near, &f->scheme, nhost, sizeof(nhost), nport,
				  sizeof(nport));
	if (ret)
		return ret;
	return route_to(nhost, nport, host, hl);
}

static int open_all(struct weft__fabric *f)
{
	char host[256], port[8];
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	ret = choose_address(f, host, sizeof(host), port, sizeof(port));
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "fabric", "not an address: %s (tcp://HOST:PORT, "
			  "shm://HOST:PORT or verbs://HOST:PORT)",
			  f->cfg.url ? f->cfg.url : f->cfg.near);
		return ret;
	}
	if ((ret = weft__fab_open_eps(f, host, port)) || (ret = weft__fab_post_recvs(f)))
		return ret;
	weft__fab_url_of(f->scheme, f->ctrl.addr, f->ctrl.addrlen, f->url, sizeof(f->url));
	f->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->eventfd < 0 || f->epfd < 0)
		return -errno;
	ev.data.fd = f->eventfd;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->eventfd, &ev))
		return -errno;
	ev.data.fd = f->cdom.fd;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->cdom.fd, &ev))
		return -errno;
	ev.data.fd = f->rd.fd;
	if (f->rd.fd >= 0 && epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->rd.fd, &ev))
		return -errno;
	for (unsigned i = 0; i < READS_POSTED; i++)
		f->chunks_free[i] = i;
	f->nchunks_free = READS_POSTED;
	/* Only workers and clients read, and the scheduler opens no data endpoint. */
	if (f->cfg.role != WEFT_ROLE_SCHEDULER)
		return weft__fab_reader_start(f, &f->reader);
	return 0;
}

static void free_all(struct weft__fabric *f)
{
	struct weft__peer *p, *next;
	struct sendbuf *b, *bn;

	/* Closing the endpoints first: nothing completes into what is freed below. */
	weft__fab_reader_stop(f->reader);
	weft__fab_close_eps(f);
	for (p = f->peers; p; p = next) {
		next = p->next;
		for (b = p->queue; b; b = bn) {
			bn = b->next;
			free(b);
		}
		for (b = p->held; b; b = bn) {
			bn = b->next;
			free(b);
		}
		free(p->out);
		weft__parts_free(&p->parts);
		free(p->hello);
		weft__fab_early_free(p);
		free(p);
	}
	for (b = f->free_sends; b; b = bn) {
		bn = b->next;
		free(b);
	}
	if (f->eventfd > 0)
		close(f->eventfd);
	if (f->epfd > 0)
		close(f->epfd);
	free(f->recv);
	weft__map_free(&f->by_conn);
	weft__auth_forget(&f->key);
	free(f);
}

int weft__fab_start(const struct weft__fab_config *cfg, struct weft__fabric **out)
{
	struct weft__fabric *f;
	int ret;

	if (!cfg || !cfg->key || !cfg->cbs || !cfg->cbs->ready || !cfg->cbs->op ||
	    !cfg->cbs->gone)
		return -EINVAL;
	if (weft__auth_init())
		return -EIO;
	if (weft__fi_load())
		return -ENODEV;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->cfg = *cfg;
	f->key = *cfg->key;
	f->eventfd = f->epfd = -1;
	f->cdom.fd = f->shmdom.fd = -1;
	f->ctrl.fd = f->serve.fd = f->serve2.fd = f->rd.fd = -1;
	f->ddom = &f->cdom;
	snprintf(f->name, sizeof(f->name), "%s", cfg->name ? cfg->name : "");
	f->cfg.name = f->name;
	f->spin_ns = SPIN_NS_DEFAULT;
	if (getenv("WEFT_FABRIC_SPIN_US")) {
		const char *v = getenv("WEFT_FABRIC_SPIN_US");
		char *end;
		unsigned long us = strtoul(v, &end, 10);

		if (!*v || *end || *v == '-' || us > 1000000) {
			weft__log(WEFT_LOG_ERROR, "fabric", "WEFT_FABRIC_SPIN_US=%s: microseconds, "
				  "0 to 1000000", getenv("WEFT_FABRIC_SPIN_US"));
			free(f);
			return -EINVAL;
		}
		f->spin_ns = (int64_t)us * 1000;
	}
#ifdef WEFT_TESTING
	/* A test's worker process whose first RMA read is to fail (tests/cluster). */
	f->poison_next = getenv("WEFT_TEST_POISON_READ") != NULL;
	/* One whose second reader's first chunk is to fail (shm). */
	f->poison_second = getenv("WEFT_TEST_POISON_SECOND_READ") != NULL;
	/* One whose reads never start: its leases stay open until it goes. */
	f->stall_reads = getenv("WEFT_TEST_STALL_READS") != NULL;
#endif
	ret = open_all(f);
	f->cfg.url = f->cfg.near = NULL;	/* the caller's strings are not kept */
	if (ret) {
		free_all(f);
		return ret;
	}
	/* Before the thread starts: its callbacks may read it through the caller's. */
	*out = f;
	if (pthread_create(&f->thread, NULL, loop, f)) {
		*out = NULL;
		free_all(f);
		return -EAGAIN;
	}
	return 0;
}

void weft__fab_stop(struct weft__fabric *f)
{
	uint64_t one = 1;

	if (!f)
		return;
	atomic_store_explicit(&f->stop, true, memory_order_release);
	if (write(f->eventfd, &one, sizeof(one)) < 0)
		weft__log(WEFT_LOG_ERROR, "fabric", "waking the fabric thread to stop failed");
	pthread_join(f->thread, NULL);
#ifdef WEFT_TESTING
	/* How often the read endpoint was reopened, for a test of another process. */
	if (getenv("WEFT_TEST_REOPENS_FILE")) {
		FILE *out = fopen(getenv("WEFT_TEST_REOPENS_FILE"), "w");

		if (out) {
			fprintf(out, "%u\n", f->reopens);
			fclose(out);
		}
	}
#endif
	free_all(f);
}

const char *weft__fab_url(const struct weft__fabric *f)
{
	return f->url;
}
