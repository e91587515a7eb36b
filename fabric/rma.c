// SPDX-License-Identifier: MIT
/*
 * rma.c - registered memory and RMA reads. A read is cut into chunks of at most
 * READ_CHUNK, with at most READS_POSTED in flight for the process; reads wait in
 * order for room. On shm every other chunk of a large read goes to the second
 * reader (reader.c). A failed chunk fails its read, and the read endpoint is reopened
 * once the reads in flight are over: on tcp;ofi_rxm one bad read (a wrong key or
 * range) breaks the connection it went on for every later operation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "internal.h"
#include "log.h"

struct weft__fab_mr {
	struct fid_mr *mr;
};

int weft__fab_reg(struct weft__fabric *f, void *buf, size_t len, struct weft__fab_mr **out,
		  uint64_t *rkey, uint64_t *addr)
{
	struct fab_dom *d = f->ddom;
	struct weft__fab_mr *m = malloc(sizeof(*m));
	uint64_t key;
	int ret;

	if (!m)
		return -ENOMEM;
	/* Unguessable: the key is all that guards the bytes from other peers. */
	weft__auth_random(&key, sizeof(key));
	ret = fi_mr_reg(d->domain, buf, len, FI_REMOTE_READ, 0, key, 0, &m->mr, NULL);
	if (ret) {
		free(m);
		return ret == -FI_ENOKEY ? -EAGAIN : ret;
	}
	*out = m;
	*rkey = fi_mr_key(m->mr);
	*addr = d->info->domain_attr->mr_mode & FI_MR_VIRT_ADDR ? (uint64_t)(uintptr_t)buf : 0;
	return 0;
}

void weft__fab_unreg(struct weft__fabric *f, struct weft__fab_mr *m)
{
	(void)f;
	if (!m)
		return;
	fi_close(&m->mr->fid);
	free(m);
}

void weft__fab_hold(struct weft__fabric *f, struct weft__peer *reader, int delta)
{
	f->holds += delta;
	/* A reader's first lease: its endpoints' first contact is to be answered. */
	if (delta > 0 && f->scheme == SCHEME_SHM && (!reader || !reader->leased)) {
		f->hold_poll_until = weft__mono_ns() + SHM_CONTACT_NS;
		if (reader)
			reader->leased = true;
	}
}

/* Give @c, @r's next chunk, to the second reader, with what it reads by. */
static int post_second(struct weft__fabric *f, struct weft__fab_read *r, struct readchunk *c,
		       uint64_t key)
{
	c->dst = (char *)r->dst + r->posted;
	c->addr = r->addr + r->posted;
	c->key = key;
	/* The holder's second endpoint, or the first until its HELLO. */
	if (r->peer->data2_len) {
		c->peer_len = r->peer->data2_len;
		memcpy(c->peer, r->peer->data2_raw, c->peer_len);
	} else {
		c->peer_len = r->peer->data_len;
		memcpy(c->peer, r->peer->data_raw, c->peer_len);
	}
	c->poison = f->poison_second;
	f->poison_second = false;
	f->second_chunks++;
	weft__fab_reader_post(f->reader, c);
	return 0;
}

/* Post chunks of waiting reads while there is room; false if the fabric pushed back. */
static bool post_chunks(struct weft__fabric *f)
{
	while (f->reads_wait && f->nchunks_free && !f->data_poisoned) {
		struct weft__fab_read *r = f->reads_wait;
		size_t n = r->len - r->posted < READ_CHUNK ? r->len - r->posted : READ_CHUNK;
		struct readchunk *c = &f->chunks[f->chunks_free[f->nchunks_free - 1]];
		uint64_t key = r->rkey;
		ssize_t ret;

		if (f->poison_next)	/* test hook: a key nobody registered */
			key = ~key;
		c->ctx.kind = CTX_READ;
		c->r = r;
		c->len = n;
		/* Every other chunk, from the first, to the second reader. */
		if (r->len >= READER_MIN && !(r->posted / READ_CHUNK % 2) &&
		    weft__fab_reader_ok(f->reader))
			ret = post_second(f, r, c, key);
		else
			ret = fi_read(f->rd.ep, (char *)r->dst + r->posted, n, NULL,
				      r->peer->data, r->addr + r->posted, key, &c->ctx.fi);
		if (ret == -FI_EAGAIN)
			return false;	/* posted again later, poisoned again if asked */
		f->poison_next = false;
		if (ret) {
			r->err = (int)ret;
			n = r->len - r->posted;		/* the rest is not read */
			r->completed += n;
		} else {
			f->nchunks_free--;
			f->reads_inflight++;
		}
		r->posted += n;
		if (r->posted == r->len) {
			f->reads_wait = r->next;
			if (!f->reads_wait)
				f->reads_wait_tail = NULL;
			if (r->completed == r->len)	/* every chunk failed to post */
				r->done(r, r->err);
		}
	}
	return true;
}

int weft__fab_read(struct weft__fabric *f, struct weft__fab_read *r)
{
	if (!r->peer || r->peer->dying || r->peer->data == FI_ADDR_NOTAVAIL)
		return -ENOTCONN;
	r->posted = r->completed = 0;
	r->err = 0;
	r->next = NULL;
	if (!r->len) {
		r->done(r, 0);
		return 0;
	}
#ifdef WEFT_TESTING
	if (f->stall_reads)
		return 0;
#endif
	if (f->reads_wait_tail)
		f->reads_wait_tail->next = r;
	else
		f->reads_wait = r;
	f->reads_wait_tail = r;
	post_chunks(f);
	return 0;
}

void weft__fab_read_done(struct weft__fabric *f, struct readchunk *c, int err)
{
	struct weft__fab_read *r = c->r;
	size_t n = c->len;

	f->chunks_free[f->nchunks_free++] = (unsigned)(c - f->chunks);
	f->reads_inflight--;
	if (err) {
		if (!r->err)
			r->err = err;
		f->data_poisoned = true;
	}
	r->completed += n;
	if (r->completed == r->len && r->posted == r->len)
		r->done(r, r->err);
	weft__fab_reads_resume(f);
}

void weft__fab_reads_resume(struct weft__fabric *f)
{
	if (f->data_poisoned && !f->reads_inflight) {
		int ret;

		if (f->rd.fd >= 0)
			epoll_ctl(f->epfd, EPOLL_CTL_DEL, f->rd.fd, NULL);
		ret = weft__fab_reopen_read(f);
		if (!ret && f->rd.fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->rd.fd };

			if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->rd.fd, &ev))
				ret = -errno;
		}

		if (ret)
			weft__log(WEFT_LOG_ERROR, "fabric", "reopening the read endpoint: %s",
				  fi_strerror(-ret));
		else
			weft__log(WEFT_LOG_INFO, "fabric", "a read failed: read endpoint reopened");
		f->data_poisoned = false;
	}
	post_chunks(f);
}

#ifdef WEFT_TESTING
void weft__fab_read_poison(struct weft__fabric *f)
{
	f->poison_next = true;
}

void weft__fab_read_poison_second(struct weft__fabric *f)
{
	f->poison_second = true;
}

unsigned weft__fab_second_chunks(const struct weft__fabric *f)
{
	return f->second_chunks;
}

unsigned weft__fab_reopens(const struct weft__fabric *f)
{
	return f->reopens;
}

void weft__fab_test_version(struct weft__fabric *f, uint8_t major, uint8_t minor)
{
	f->test_version[0] = major;
	f->test_version[1] = minor;
}
#endif
