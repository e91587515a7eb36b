// SPDX-License-Identifier: MIT
/*
 * serve.c - a worker's results for others: leases for RMA reads (the bytes pinned,
 * registered, and a FREE meanwhile deferred until the lease ends), results sent to
 * clients; and the scheduler's other ops: PUT (scattered data), FREE, STEAL, PEER.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- serving results ---- */

/* A peer asks to read a result: the bytes inline when small, or a lease. */
void weft__wrt_on_lease_ask(struct weft__wrt *w, struct weft__peer *from,
			    const struct weft__op_lease_ask *a)
{
	struct weft__op_lease l = { .req = a->req, .output = a->output };
	struct rtask *t = weft__map_get(&w->tasks, a->key);
	struct lease *ls;
	const void *data;
	size_t len;
	int ret;

	if (!t || !t->ended || !t->outs || a->output >= t->noutputs || t->freed[a->output]) {
		l.status = -ENOENT;
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		return;
	}
	ret = weft__wrt_result_pin(w, t->outs[a->output], &data, &len);
	if (ret) {
		l.status = ret;
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		return;
	}
	l.len = len;
	w->rec.bytes_out += len;	/* granted: read inline or by RMA */
	if (len <= w->inline_max) {
		l.data = weft__pbytes_of(data, len);
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		weft__wrt_result_unpin(w, t->outs[a->output]);
		return;
	}
	ls = calloc(1, sizeof(*ls));
	if (!ls || weft__fab_reg(w->f, (void *)data, len, &ls->mr, &l.rkey, &l.addr)) {
		free(ls);
		weft__wrt_result_unpin(w, t->outs[a->output]);
		l.status = -ENOMEM;
		l.len = 0;
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		return;
	}
	/* A FREE meanwhile waits for the lease to end before releasing the bytes. */
	ls->t = t;
	ls->output = a->output;
	ls->reader = from;
	t->leases++;
	l.lease = ++w->next_lease;
	weft__map_put(&w->leases, l.lease, ls);
	weft__fab_hold(w->f, from, 1);
	weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
}

/* Release output @i of @t if it was freed and no lease holds it; @t may go. */
static bool out_release(struct weft__wrt *w, struct rtask *t, uint32_t i)
{
	if (t->freed[i] != FREED)
		return false;
	for (size_t k = 0; t->leases && k < w->leases.cap; k++) {
		struct lease *ls = w->leases.vals[k];

		if (ls && ls->t == t && ls->output == i)
			return false;
	}
	weft_release(t->outs[i]);
	t->freed[i] = RELEASED;
	if (++t->nfreed == t->noutputs && !t->leases) {
		weft__wrt_rtask_free(w, t);
		return true;
	}
	return false;
}

void weft__wrt_lease_end(struct weft__wrt *w, uint64_t id)
{
	struct lease *ls = weft__map_del(&w->leases, id);

	if (!ls)
		return;
	weft__fab_hold(w->f, NULL, -1);
	weft__fab_unreg(w->f, ls->mr);
	weft__wrt_result_unpin(w, ls->t->outs[ls->output]);
	ls->t->leases--;
	out_release(w, ls->t, ls->output);
	free(ls);
}

/* The scheduler asks for a result to go to a client: in pieces, or by a lease. */
void weft__wrt_on_send_result(struct weft__wrt *w, const struct weft__op_send_result *r)
{
	struct weft__peer *client = weft__map_get(&w->peers, r->client);
	struct rtask *t = weft__map_get(&w->tasks, r->key);
	struct weft__op_lease_ask ask = { r->ckey, r->key, r->output };
	const void *data;
	size_t len;

	if (!client)
		return;		/* gone: nothing to send to */
	if (!t || !t->ended || !t->outs || r->output >= t->noutputs || t->freed[r->output] ||
	    weft__wrt_result_pin(w, t->outs[r->output], &data, &len)) {
		weft__wrt_on_lease_ask(w, client, &ask);	/* says why not */
		return;
	}
	if (len > w->inline_max) {
		weft__wrt_result_unpin(w, t->outs[r->output]);
		weft__wrt_on_lease_ask(w, client, &ask);
		return;
	}
	for (uint64_t off = 0; off < len || off == 0; off += PIECE) {
		size_t n = len - off < PIECE ? len - off : PIECE;
		struct weft__op_piece p = { r->ckey, r->output, len, off,
					    weft__pbytes_of((const uint8_t *)data + off, n) };

		weft__fab_send(w->f, client, WEFT_OP_RESULT, &p);
		if (!len)
			break;
	}
	weft__wrt_result_unpin(w, t->outs[r->output]);
}

/* ---- other ops ---- */

void weft__wrt_on_put(struct weft__wrt *w, const struct weft__op_piece *p)
{
	struct rtask *t = weft__map_get(&w->tasks, p->key);
	struct weft_future *f;
	int ret;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t || weft__map_put(&w->tasks, p->key, t)) {
			free(t);
			return;
		}
		t->key = p->key;
		t->noutputs = 1;
		t->put_total = p->total;
		t->put = malloc(p->total ? p->total : 1);
		t->start = weft__mono_ns();
		if (!t->put) {
			weft__wrt_report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
			weft__wrt_rtask_free(w, t);
			return;
		}
	}
	if (!t->put || p->total != t->put_total)
		return;
	memcpy(t->put + p->offset, p->data.p, p->data.len);
	t->put_got += p->data.len;
	if (t->put_got < t->put_total)
		return;
	ret = weft_scatter(w->c, t->put, t->put_total, &f);
	free(t->put);
	t->put = NULL;
	t->outs = calloc(1, sizeof(*t->outs));
	t->freed = calloc(1, 1);
	if (ret || !t->outs || !t->freed) {
		if (!ret)
			weft_release(f);
		weft__wrt_report(w, t, WEFT_END_FAILED, ret ? ret : -ENOMEM, "keeping scattered data");
		weft__wrt_rtask_free(w, t);
		return;
	}
	t->outs[0] = f;
	t->ended = true;
	weft__wrt_report(w, t, WEFT_END_DONE, 0, NULL);
}

void weft__wrt_on_free(struct weft__wrt *w, const struct weft__op_future *f)
{
	struct rtask *t = weft__map_get(&w->tasks, f->key);

	if (!t || !t->outs || f->output >= t->noutputs || t->freed[f->output])
		return;
	t->freed[f->output] = FREED;
	out_release(w, t, f->output);
}

/* Give a task back if it has not started: cancelled here, run elsewhere. */
void weft__wrt_on_steal(struct weft__wrt *w, const struct weft__op_future *f)
{
	struct rtask *t = weft__map_get(&w->tasks, f->key);
	struct weft__op_stolen st = { f->key, 0 };

	if (t && !t->ended && !t->stolen) {
		if (!t->submitted) {
			st.ok = 1;		/* still fetching inputs */
		} else if (!weft_cancel(t->outs[0])) {
			st.ok = 1;
		}
		t->stolen = st.ok;
	}
	weft__wrt_send_sched(w, WEFT_OP_STOLEN, &st);
}

void weft__wrt_on_peer(struct weft__wrt *w, const struct weft__op_peer *p)
{
	struct weft__peer *peer;

	if (weft__map_get(&w->peers, p->id))
		return;
	if (weft__fab_connect_addr(w->f, p->ctrl_addr, p->data_addr, &peer))
		return;
	weft__map_put(&w->peers, p->id, peer);
}
