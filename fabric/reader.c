// SPDX-License-Identifier: MIT
/*
 * reader.c - the second reader: on shm, a read is a copy from the holder's memory
 * made inside fi_read by the thread that posts it (the provider's fast path, one
 * process_vm_readv), and one thread copies 64 MiB at about half of what two do. So
 * a process that reads over shm has a second thread with an endpoint of its own (in
 * its own domain, address vector and completion queue: the provider's endpoints
 * are not shared across threads as we open them), and every other chunk of a large
 * read goes to it. It sleeps while it has nothing to read.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "internal.h"
#include "log.h"

#define READER_AV 16			/* holders' addresses kept in its AV */
#define READER_FORGETS 16		/* holders gone, to leave its AV; more: all */
/*
 * A chunk the provider pushes back (the holder has not taken its commands yet) is
 * tried again this long, then fails: the read fails and is made again, as after
 * any failed read.
 */
#define READER_RETRY_NS (5 * NSEC_PER_SEC)

struct fab_reader {
	struct weft__fabric *f;
	struct fab_dom dom;
	struct fab_ep ep;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct readchunk *todo, *todo_tail;	/* under lock */
	bool stop;				/* under lock */
	/*
	 * Its endpoint could not be opened again: it fails what it has, and gets no
	 * more. Relaxed both ways: a stale read gives it one more chunk to fail.
	 */
	atomic_bool broken;
	/* Holders gone, whose addresses leave the AV before the next chunk; under lock. */
	struct {
		uint32_t len;
		uint8_t raw[WEFT_PROTO_MAX_ADDR];
	} forget[READER_FORGETS];
	unsigned nforget;
	bool forget_all;		/* more went than forget holds */
	/* Holders in dom's AV, by their data address: this thread's own. */
	struct {
		fi_addr_t a;
		uint32_t len;
		uint8_t raw[WEFT_PROTO_MAX_ADDR];
	} av[READER_AV];
	unsigned nav, av_next;
	char name[32];			/* its endpoint's, again at a reopen */
};

/* @c's holder in the AV, added when it is not there (the oldest goes when full). */
static int holder_addr(struct fab_reader *rd, const struct readchunk *c, fi_addr_t *out)
{
	unsigned i;

	for (i = 0; i < rd->nav; i++)
		if (rd->av[i].len == c->peer_len && !memcmp(rd->av[i].raw, c->peer, c->peer_len)) {
			*out = rd->av[i].a;
			return 0;
		}
	if (rd->nav < READER_AV) {
		i = rd->nav++;
	} else {
		i = rd->av_next;
		rd->av_next = (rd->av_next + 1) % READER_AV;
		fi_av_remove(rd->dom.av, &rd->av[i].a, 1, 0);
	}
	if (fi_av_insert(rd->dom.av, c->peer, 1, &rd->av[i].a, 0, NULL) != 1) {
		/* The slot is empty now: move the last one into it. */
		rd->av[i] = rd->av[--rd->nav];
		if (rd->av_next > rd->nav)
			rd->av_next = 0;
		return -EHOSTUNREACH;
	}
	rd->av[i].len = c->peer_len;
	memcpy(rd->av[i].raw, c->peer, c->peer_len);
	*out = rd->av[i].a;
	return 0;
}

/*
 * Read the completion queue: 1 when @c's completion was there (its error in
 * c->err), else 0. @c is the only operation in flight, so any completion is its.
 */
static int progress(struct fab_reader *rd, struct readchunk *c)
{
	struct fi_cq_data_entry e;
	ssize_t n = fi_cq_read(rd->dom.cq, &e, 1);

	if (n == 1)
		return 1;
	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry ee = { 0 };

		if (fi_cq_readerr(rd->dom.cq, &ee, 0) != 1)
			return 0;
		c->err = ee.err ? -(int)ee.err : -EIO;
		return 1;
	}
	return 0;
}

/* Take the holders gone out of the AV (a new process may come under an old name). */
static void forget_gone(struct fab_reader *rd)
{
	for (unsigned i = 0; i < rd->nav; i++) {
		bool gone = rd->forget_all;

		for (unsigned k = 0; k < rd->nforget && !gone; k++)
			gone = rd->forget[k].len == rd->av[i].len &&
			       !memcmp(rd->forget[k].raw, rd->av[i].raw, rd->av[i].len);
		if (!gone)
			continue;
		fi_av_remove(rd->dom.av, &rd->av[i].a, 1, 0);
		rd->av[i--] = rd->av[--rd->nav];
	}
	rd->av_next = 0;
	rd->nforget = 0;
	rd->forget_all = false;
}

static bool stopping(struct fab_reader *rd)
{
	bool stop;

	pthread_mutex_lock(&rd->lock);
	stop = rd->stop;
	pthread_mutex_unlock(&rd->lock);
	return stop;
}

/* Read @c: every byte, or c->err. */
static void read_chunk(struct fab_reader *rd, struct readchunk *c)
{
	int64_t give_up = weft__mono_ns() + READER_RETRY_NS;
	uint64_t addr = c->addr;
	fi_addr_t a;
	ssize_t ret;

	c->err = holder_addr(rd, c, &a);
	if (c->err)
		return;
	if (c->poison)
		addr = 1ull << 62;	/* nobody's address: the copy fails */
	for (;;) {
		ret = fi_read(rd->ep.ep, c->dst, c->len, NULL, a, addr, c->key, &c->ctx.fi);
		if (ret != -FI_EAGAIN)
			break;
		progress(rd, c);	/* nothing is in flight: only the provider's own */
		if (weft__mono_ns() > give_up || stopping(rd)) {
			c->err = -ETIMEDOUT;
			return;
		}
		sched_yield();
	}
	if (ret) {
		c->err = (int)ret;
		return;
	}
	/* The fast path completes in fi_read; another waits for the holder's reply. */
	while (!progress(rd, c)) {
		if (weft__mono_ns() > give_up || stopping(rd)) {
			/*
			 * Its completion may still come: the endpoint goes, and with it
			 * what it had in flight (its CQ is the domain's, which goes too).
			 */
			weft__fab_shm_reader_close(&rd->dom, &rd->ep);
			rd->nav = rd->av_next = 0;
			if (weft__fab_shm_reader_open(rd->name, &rd->dom, &rd->ep)) {
				weft__log(WEFT_LOG_ERROR, "fabric", "reopening the second reader "
					  "failed: large reads go on with one thread");
				atomic_store_explicit(&rd->broken, true, memory_order_relaxed);
			}
			c->err = -ETIMEDOUT;
			return;
		}
		sched_yield();
	}
}

static void chunk_back(struct weft__fabric *f, struct weft__fab_call *call)
{
	struct readchunk *c = container_of(call, struct readchunk, back);

	weft__fab_read_done(f, c, c->err);
}

static void *reader_main(void *arg)
{
	struct fab_reader *rd = arg;
	struct readchunk *c;

	weft__name_thread("weft-fab-read");
	pthread_mutex_lock(&rd->lock);
	for (;;) {
		while (!rd->todo && !rd->stop)
			pthread_cond_wait(&rd->wake, &rd->lock);
		if (rd->stop)
			break;
		c = rd->todo;
		rd->todo = c->next;
		if (!rd->todo)
			rd->todo_tail = NULL;
		if (rd->nforget || rd->forget_all)
			forget_gone(rd);
		pthread_mutex_unlock(&rd->lock);
		if (rd->ep.ep)
			read_chunk(rd, c);
		else
			c->err = -ENOTCONN;	/* a reopen failed */
		c->back.fn = chunk_back;
		weft__fab_call(rd->f, &c->back);
		pthread_mutex_lock(&rd->lock);
	}
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

int weft__fab_reader_start(struct weft__fabric *f, struct fab_reader **out)
{
	struct fab_reader *rd;
	const char *v = getenv("WEFT_SHM_READERS");
	int ret;

	*out = NULL;
	if (v && strcmp(v, "1") && strcmp(v, "2")) {
		weft__log(WEFT_LOG_ERROR, "fabric", "WEFT_SHM_READERS=%s: 1 or 2", v);
		return -EINVAL;
	}
	if (f->scheme != SCHEME_SHM || (v && !strcmp(v, "1")))
		return 0;
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		ret = -ENOMEM;
		goto err;
	}
	rd->f = f;
	rd->dom.fd = rd->ep.fd = -1;
	snprintf(rd->name, sizeof(rd->name), "weft-%d-reader", (int)getpid());
	ret = weft__fab_shm_reader_open(rd->name, &rd->dom, &rd->ep);
	if (ret)
		goto err_free;
	pthread_mutex_init(&rd->lock, NULL);
	pthread_cond_init(&rd->wake, NULL);
	if (pthread_create(&rd->thread, NULL, reader_main, rd)) {
		ret = -EAGAIN;
		goto err_close;
	}
	*out = rd;
	return 0;

err_close:
	pthread_cond_destroy(&rd->wake);
	pthread_mutex_destroy(&rd->lock);
	weft__fab_shm_reader_close(&rd->dom, &rd->ep);
err_free:
	free(rd);
err:
	/* It only makes large reads faster: the process goes on without it. */
	weft__log(WEFT_LOG_WARN, "fabric", "no second reader (%s): large reads on one thread",
		  fi_strerror(-ret));
	return 0;
}

void weft__fab_reader_stop(struct fab_reader *rd)
{
	if (!rd)
		return;
	pthread_mutex_lock(&rd->lock);
	rd->stop = true;
	pthread_cond_signal(&rd->wake);
	pthread_mutex_unlock(&rd->lock);
	pthread_join(rd->thread, NULL);
	pthread_cond_destroy(&rd->wake);
	pthread_mutex_destroy(&rd->lock);
	weft__fab_shm_reader_close(&rd->dom, &rd->ep);
	free(rd);
}

void weft__fab_reader_forget(struct fab_reader *rd, const void *raw, uint32_t len)
{
	pthread_mutex_lock(&rd->lock);
	if (rd->nforget < READER_FORGETS) {
		rd->forget[rd->nforget].len = len;
		memcpy(rd->forget[rd->nforget++].raw, raw, len);
	} else {
		rd->forget_all = true;
	}
	pthread_mutex_unlock(&rd->lock);
}

bool weft__fab_reader_ok(const struct fab_reader *rd)
{
	return rd && !atomic_load_explicit(&rd->broken, memory_order_relaxed);
}

void weft__fab_reader_post(struct fab_reader *rd, struct readchunk *c)
{
	c->next = NULL;
	pthread_mutex_lock(&rd->lock);
	if (rd->todo_tail)
		rd->todo_tail->next = c;
	else
		rd->todo = c;
	rd->todo_tail = c;
	pthread_cond_signal(&rd->wake);
	pthread_mutex_unlock(&rd->lock);
}
