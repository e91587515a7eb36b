// SPDX-License-Identifier: MIT
/*
 * msg.c - messages in and out of the control endpoint: receive buffers kept
 * posted, and per peer one OPS message being filled; a full one, or every one when
 * the loop runs out of work, is finished (its sequence number given) and queued,
 * and the queue is posted as the fabric takes it, in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <rdma/fi_errno.h>

#include "internal.h"
#include "log.h"

int weft__fab_post_recvs(struct weft__fabric *f)
{
	f->recv = calloc(RECV_BUFS, sizeof(*f->recv));
	if (!f->recv)
		return -ENOMEM;
	for (unsigned i = 0; i < RECV_BUFS; i++) {
		struct recvbuf *b = &f->recv[i];
		int ret;

		b->ctx.kind = CTX_RECV;
		ret = fi_recv(f->ctrl.ep, b->data, sizeof(b->data), NULL, FI_ADDR_UNSPEC,
			      &b->ctx.fi);
		if (ret)
			return ret;
	}
	return 0;
}

struct sendbuf *weft__fab_sendbuf(struct weft__fabric *f)
{
	struct sendbuf *b = f->free_sends;

	if (b) {
		f->free_sends = b->next;
		f->nfree_sends--;
	} else {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
	}
	b->ctx.kind = CTX_SEND;
	b->next = NULL;
	b->peer = NULL;
	b->len = 0;
	return b;
}

void weft__fab_sendbuf_put(struct weft__fabric *f, struct sendbuf *b)
{
	if (f->nfree_sends >= SEND_BUFS_KEPT) {
		free(b);
		return;
	}
	b->next = f->free_sends;
	f->free_sends = b;
	f->nfree_sends++;
}

/* Post @p's queued messages while the fabric takes them; the rest wait for room. */
void weft__fab_push(struct weft__fabric *f, struct weft__peer *p)
{
	while (p->queue && !p->dying) {
		struct sendbuf *b = p->queue;
		ssize_t ret = fi_send(f->ctrl.ep, b->data, b->len, NULL, p->ctrl, &b->ctx.fi);

		if (ret == -FI_EAGAIN)
			return;		/* the loop calls again after progress */
		p->queue = b->next;
		if (!p->queue)
			p->queue_tail = NULL;
		if (ret) {
			weft__fab_sendbuf_put(f, b);
			weft__fab_peer_gone(f, p, (int)ret);
			return;
		}
		p->inflight++;
	}
}

void weft__fab_queue(struct weft__fabric *f, struct weft__peer *p, struct sendbuf *b)
{
	b->peer = p;
	b->next = NULL;
	if (p->queue_tail)
		p->queue_tail->next = b;
	else
		p->queue = b;
	p->queue_tail = b;
	weft__fab_push(f, p);
}

int weft__fab_send_now(struct weft__fabric *f, struct weft__peer *p, uint8_t type,
		       uint16_t op_type, const void *op)
{
	struct sendbuf *b = weft__fab_sendbuf(f);
	struct weft__msg_out o;
	int ret;

	if (!b)
		return -ENOMEM;
	weft__msg_begin(&o, b->data, type);
	o.cap = WEFT_FAB_MSG_MAX;
	if (op && (ret = weft__msg_add(&o, op_type, op))) {
		weft__fab_sendbuf_put(f, b);
		return ret;
	}
	o.conn = p->conn_out;
	b->len = weft__msg_end(&o, p->tx_seq++);
#ifdef WEFT_TESTING
	if (f->test_major && type == WEFT_MSG_HELLO)
		b->data[4] = f->test_major;
#endif
	weft__fab_queue(f, p, b);
	return 0;
}

void weft__fab_flush(struct weft__fabric *f, struct weft__peer *p)
{
	struct sendbuf *b = p->out;

	if (!b || !p->ready || !p->mo.nops)
		return;
	p->out = NULL;
	p->mo.conn = p->conn_out;
	b->len = weft__msg_end(&p->mo, p->tx_seq++);
	weft__fab_queue(f, p, b);
}

void weft__fab_flush_all(struct weft__fabric *f)
{
	struct weft__peer *p, *next;

	for (p = f->peers; p; p = next) {
		next = p->next;		/* a failed send frees p */
		weft__fab_flush(f, p);
	}
	f->dirty = false;
}

/* Append to @p's message by @add (an op struct, or encoded bytes). */
static int append(struct weft__fabric *f, struct weft__peer *p, uint16_t type, const void *op,
		  const uint8_t *raw, size_t len)
{
	int ret;

	if (p->dying)
		return -ENOTCONN;
	for (int tries = 0; tries < 2; tries++) {
		if (!p->out) {
			p->out = weft__fab_sendbuf(f);
			if (!p->out)
				return -ENOMEM;
			weft__msg_begin(&p->mo, p->out->data, WEFT_MSG_OPS);
			p->mo.cap = WEFT_FAB_MSG_MAX;
		}
		ret = raw ? weft__msg_add_raw(&p->mo, raw, len) : weft__msg_add(&p->mo, type, op);
		if (ret != -ENOSPC)
			break;
		if (!p->ready)
			return -ENOBUFS;	/* a full message waits for the handshake */
		weft__fab_flush(f, p);		/* full: off it goes, then a fresh one */
	}
	if (!ret)
		f->dirty = true;
	return ret;
}

void weft__fab_send_done(struct weft__fabric *f, struct sendbuf *b, int err)
{
	struct weft__peer *p = b->peer;

	weft__fab_sendbuf_put(f, b);
	if (!p)
		return;
	p->inflight--;
	if (err) {
		char name[WEFT_FAB_URL_MAX];

		weft__log(WEFT_LOG_INFO, "fabric", "a send to %s failed: %s",
			  weft__peer_name(p, name, sizeof(name)), fi_strerror(-err));
		weft__fab_peer_gone(f, p, err);
		return;
	}
	if (p->dying && !p->inflight && !p->queue)
		weft__fab_peer_free(f, p);
}

int weft__fab_send(struct weft__fabric *f, struct weft__peer *p, uint16_t type,
		   const void *op)
{
	return append(f, p, type, op, NULL, 0);
}

int weft__fab_send_raw(struct weft__fabric *f, struct weft__peer *p, const uint8_t *op,
		       size_t len)
{
	return append(f, p, 0, NULL, op, len);
}
