// SPDX-License-Identifier: MIT
/*
 * msg.c - messages in and out of the control endpoint: receive buffers kept
 * posted, and per peer one OPS message being filled; a full one, or every one when
 * the loop runs out of work, is finished (its sequence number given) and queued,
 * and the queue is posted as the fabric takes it, in order. Full messages for a
 * peer still in its handshake are held until it is ready. An op too large for a
 * message goes in PARTs over as many as it needs.
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

/* @b at the end of the list from @head to @tail. */
static void sendbuf_append(struct sendbuf **head, struct sendbuf **tail, struct sendbuf *b)
{
	b->next = NULL;
	if (*tail)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

void weft__fab_queue(struct weft__fabric *f, struct weft__peer *p, struct sendbuf *b)
{
	b->peer = p;
	sendbuf_append(&p->queue, &p->queue_tail, b);
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
	if (f->test_version[0] && type == WEFT_MSG_HELLO)
		memcpy(b->data + 4, f->test_version, 2);
#endif
	weft__fab_queue(f, p, b);
	return 0;
}

/* Give @b its sequence number and @p's conn, and queue it. */
static void finish(struct weft__fabric *f, struct weft__peer *p, struct sendbuf *b)
{
	b->mo.conn = p->conn_out;
	b->len = weft__msg_end(&b->mo, p->tx_seq++);
	weft__fab_queue(f, p, b);
}

/* A full message for @p: off it goes, or it waits for the handshake, in order. */
static void seal(struct weft__fabric *f, struct weft__peer *p, struct sendbuf *b)
{
	if (p->ready) {
		finish(f, p, b);
		return;
	}
	sendbuf_append(&p->held, &p->held_tail, b);
}

void weft__fab_flush(struct weft__fabric *f, struct weft__peer *p)
{
	struct sendbuf *b;

	if (!p->ready)
		return;
	while ((b = p->held)) {
		p->held = b->next;
		finish(f, p, b);
	}
	p->held_tail = NULL;
	b = p->out;
	if (!b || !b->mo.nops)
		return;
	p->out = NULL;
	finish(f, p, b);
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

void weft__fab_sendbufs_free(struct weft__fabric *f, struct sendbuf *b)
{
	struct sendbuf *next;

	for (; b; b = next) {
		next = b->next;
		weft__fab_sendbuf_put(f, b);
	}
}

static struct sendbuf *ops_msg(struct weft__fabric *f)
{
	struct sendbuf *b = weft__fab_sendbuf(f);

	if (b) {
		weft__msg_begin(&b->mo, b->data, WEFT_MSG_OPS);
		b->mo.cap = WEFT_FAB_MSG_MAX;
	}
	return b;
}

/* Append to @p's message an op struct (@op) or encoded bytes (@raw). */
static int append(struct weft__fabric *f, struct weft__peer *p, uint16_t type, const void *op,
		  const uint8_t *raw, size_t len)
{
	int ret;

	for (int tries = 0; tries < 2; tries++) {
		if (!p->out && !(p->out = ops_msg(f)))
			return -ENOMEM;
		ret = raw ? weft__msg_add_raw(&p->out->mo, raw, len) :
			    weft__msg_add(&p->out->mo, type, op);
		if (ret != -ENOSPC)
			break;
		seal(f, p, p->out);	/* full: off it goes, then a fresh one */
		p->out = NULL;
	}
	if (!ret)
		f->dirty = true;
	return ret;
}

/* A PART carries at least this much, unless it is an op's last. */
#define PART_MIN 1024

/*
 * An op of @len bytes too large for a message goes in PARTs, the first in what room
 * @p's message has left. The messages are all had before any is written, so that
 * a failure leaves nothing of the op behind.
 */
static int append_parts(struct weft__fabric *f, struct weft__peer *p, const uint8_t *op,
			uint32_t len)
{
	struct sendbuf *first = NULL, *last = NULL, *b, *next;
	struct weft__msg_out was;
	uint32_t at = 0;

	if (!p->out && !(p->out = ops_msg(f)))
		return -ENOMEM;
	was = p->out->mo;
	b = p->out;
	while (at < len) {
		uint32_t n = weft__part_fits(len, at, b->mo.cap - b->mo.len);
		struct weft__op_part part = { len, weft__pbytes_of(op + at, n) };

		if ((n < PART_MIN && n < len - at) || b->mo.nops == UINT16_MAX) {
			if (!(b = ops_msg(f)))
				goto fail;
			if (last)
				last->next = b;
			else
				first = b;
			last = b;
			continue;
		}
		if (weft__msg_add(&b->mo, WEFT_OP_PART, &part))
			goto fail;
		at += n;
	}
	/* Every message but the last is full. */
	if (first) {
		p->out->next = first;
		for (b = p->out; b != last; b = next) {
			next = b->next;
			seal(f, p, b);
		}
		p->out = last;
	}
	f->dirty = true;
	return 0;
fail:
	p->out->mo = was;
	weft__fab_sendbufs_free(f, first);
	return -ENOMEM;
}

/* Room for one op in a message of ours. */
#define OP_ROOM (WEFT_FAB_MSG_MAX - WEFT_PROTO_HDR)

/* Whether an op of @type may go in PARTs: any of an OPS message but PART. */
static bool partable(uint16_t type)
{
	return type != WEFT_OP_PART && weft__op_allowed(WEFT_MSG_OPS, type);
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
	long n = weft__op_size(type, op);
	uint8_t *buf;
	int ret;

	if (p->dying)
		return -ENOTCONN;
	if (n <= OP_ROOM)
		return n < 0 ? (int)n : append(f, p, type, op, NULL, 0);
	if (!partable(type))
		return -EINVAL;
	if (n > WEFT_PROTO_MAX_OP)
		return -EMSGSIZE;
	buf = malloc((size_t)n);
	if (!buf)
		return -ENOMEM;
	weft__op_encode(type, op, buf, (size_t)n);
	ret = append_parts(f, p, buf, (uint32_t)n);
	free(buf);
	return ret;
}

int weft__fab_send_raw(struct weft__fabric *f, struct weft__peer *p, const uint8_t *op,
		       size_t len)
{
	if (p->dying)
		return -ENOTCONN;
	if (len <= OP_ROOM)
		return append(f, p, 0, NULL, op, len);
	if (!partable((uint16_t)(op[0] | op[1] << 8)))
		return -EINVAL;
	if (len > WEFT_PROTO_MAX_OP)
		return -EMSGSIZE;
	return append_parts(f, p, op, (uint32_t)len);
}
