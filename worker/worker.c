// SPDX-License-Identifier: MIT
/*
 * worker.c - a node runtime behind a fabric endpoint. Everything here runs on the
 * fabric thread but the end hook, which the engine calls on the thread that ends a
 * task: it hands the end over with a fabric call.
 *
 * A COMPUTE waits for its inputs held elsewhere (LEASE_ASK to the holder; the
 * bytes inline, or an RMA read of the leased result), then runs as a watched task
 * of the engine; its end is reported to the scheduler (DONE) with each output's
 * size, and its outputs stay here until FREE. An input that cannot be fetched
 * (its holder is gone) ends the task -ENOLINK, which the scheduler takes as "wait
 * for the input again", not as a failure.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fabric.h"
#include "map.h"
#include "worker.h"

#define TICK_MS 500			/* heartbeats */
#define INLINE_MAX_DEFAULT (8u << 10)	/* results up to this travel in messages */
#define PIECE (WEFT_FAB_MSG_MAX - 128)	/* result bytes in one RESULT or LEASE op */

/* A task the scheduler sent, from COMPUTE (or PUT) to FREE. */
struct rtask {
	uint64_t key;
	uint32_t noutputs;
	struct weft_future **outs;	/* handles, once submitted */
	uint8_t *freed;			/* per output: FREED (FREE came), RELEASED */
	uint32_t nfreed;
	uint32_t leases;		/* open on its outputs: they wait to be released */
	/* Before it is submitted: */
	struct weft__op_compute *c;	/* a copy of what to run, inputs resolved below */
	struct weft_future **in;	/* an input's future, local or fetched */
	bool *in_fetched;		/* in[i] is ours to release after submit */
	uint32_t nin, missing;
	int fail;			/* an input could not be had */
	bool submitted, ended, stolen;
	uint32_t client;		/* told of the end directly, if not 0 */
	uint64_t ckey;
	int64_t start;
	/* Scattered data being put together: */
	uint8_t *put;
	uint64_t put_total, put_got;
};

/* A fetch of one input from its holder. */
struct fetch {
	struct weft__fab_read r;	/* first: the read's done finds the fetch */
	struct weft__wrt *w;
	struct rtask *t;
	uint32_t i;			/* which input */
	struct weft__peer *holder;
	uint64_t lease;
	struct weft_future *f;		/* the input being read into */
};

#define FREED 1				/* the scheduler freed the output */
#define RELEASED 2			/* and its future was released */

/* A result pinned for a peer's RMA read. */
struct lease {
	struct rtask *t;
	uint32_t output;
	struct weft__fab_mr *mr;
};

struct end_call {
	struct weft__fab_call c;
	struct weft__wrt *w;
	struct weft_future *f;		/* the task's first output (an address) */
	uint32_t final;
};

struct weft__wrt {
	struct weft_client *c;
	struct weft__engine *eng;
	struct weft__fabric *f;
	struct weft__peer *sched;	/* once it proved the token */
	struct weft__peer *connecting;	/* the scheduler, before that */
	char name[WEFT_PROTO_MAX_NAME + 1];
	size_t inline_max;
	struct weft__map tasks;		/* scheduler key -> rtask */
	struct weft__map by_future;	/* first output's address -> rtask */
	struct weft__map peers;		/* scheduler's peer id -> fabric peer */
	struct weft__map fetches;	/* request id -> fetch */
	struct weft__map leases;	/* lease id -> lease */
	uint64_t next_req, next_lease;
	uint32_t running;		/* submitted and not ended */
	/* weft__worker_wait */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool over;
	int why;
	bool joined;
};

static void finish(struct weft__wrt *w, int why)
{
	pthread_mutex_lock(&w->lock);
	if (!w->over) {
		w->over = true;
		w->why = why;
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void send_sched(struct weft__wrt *w, uint16_t type, const void *op)
{
	if (w->sched)
		weft__fab_send(w->f, w->sched, type, op);
}

/* ---- results ---- */

/* The bytes of a result, pinned in memory (read back if spilled) until unpin. */
static int result_pin(struct weft__wrt *w, struct weft_future *h, const void **data,
		      size_t *len)
{
	struct weft_future *f = weft__handle_addr(h);
	int ret;

	if (f->usable && (ret = weft__store_pin(w->eng, f, false)))
		return ret;
	*data = f->data;
	*len = f->len;
	return 0;
}

static void result_unpin(struct weft__wrt *w, struct weft_future *h)
{
	struct weft_future *f = weft__handle_addr(h);

	if (f->usable)
		weft__store_unpin(w->eng, f, false);
}

static void rtask_free(struct weft__wrt *w, struct rtask *t)
{
	weft__map_del(&w->tasks, t->key);
	if (t->outs && t->outs[0])
		weft__map_del(&w->by_future, (uint64_t)(uintptr_t)weft__handle_addr(t->outs[0]));
	for (uint32_t i = 0; t->outs && i < t->noutputs; i++)
		if (t->outs[i] && t->freed[i] != RELEASED)
			weft_release(t->outs[i]);
	for (uint32_t i = 0; t->in && i < t->nin; i++)
		if (t->in[i] && t->in_fetched[i])
			weft_release(t->in[i]);
	free(t->outs);
	free(t->freed);
	free(t->c);
	free(t->in);
	free(t->in_fetched);
	free(t->put);
	free(t);
}

/* Tell the scheduler how @t ended. */
static void report(struct weft__wrt *w, struct rtask *t, uint8_t end, int32_t code,
		   const char *msg)
{
	struct weft__psize stack[16], *sizes = stack;
	struct weft__op_done d = { .key = t->key, .end = end, .code = code,
				   .run_ns = (uint64_t)(weft__mono_ns() - t->start) };

	if (msg)
		d.message = weft__pbytes_of(msg, strlen(msg) < WEFT_PROTO_MAX_TEXT ? strlen(msg) :
					    WEFT_PROTO_MAX_TEXT);
	if (end == WEFT_END_DONE) {
		if (t->noutputs > 16 && !(sizes = malloc(t->noutputs * sizeof(*sizes)))) {
			report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
			return;
		}
		for (uint32_t i = 0; i < t->noutputs; i++)
			sizes[i].len = ((struct weft_future *)weft__handle_addr(t->outs[i]))->len;
		d.sizes = (struct weft__plist){ .n = t->noutputs, .items = sizes };
	}
	send_sched(w, WEFT_OP_DONE, &d);
	if (sizes != stack)
		free(sizes);
}

/* ---- running ---- */

static void submit(struct weft__wrt *w, struct rtask *t)
{
	struct weft__op_compute *c = t->c;
	char fn[WEFT_PROTO_MAX_NAME + 1], label[WEFT_PROTO_MAX_NAME + 1], msg[1024];
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = c->noutputs,
				    .priority = c->priority, .retries = c->retries };
	weft_fn *f;
	int ret;

	weft__pbytes_str(fn, sizeof(fn), c->fn);
	weft__pbytes_str(label, sizeof(label), c->label);
	if (t->fail) {
		snprintf(msg, sizeof(msg), "an input of task '%s' could not be fetched: %s",
			 label[0] ? label : fn, weft_strerror(t->fail));
		report(w, t, WEFT_END_FAILED, -ENOLINK, msg);
		rtask_free(w, t);
		return;
	}
	f = weft__registry_find(fn);
	if (!f) {
		snprintf(msg, sizeof(msg), "no task function '%s' on worker '%s'", fn, w->name);
		report(w, t, WEFT_END_FAILED, WEFT_ENOFN, msg);
		rtask_free(w, t);
		return;
	}
	if (label[0])
		o.label = label;
	t->outs = calloc(c->noutputs, sizeof(*t->outs));
	t->freed = calloc(c->noutputs, 1);
	if (!t->outs || !t->freed) {
		report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
		rtask_free(w, t);
		return;
	}
	t->start = weft__mono_ns();
	ret = weft__submit_watched(w->c, f, t->in, t->nin, c->arg.p, c->arg.len, &o, t->outs);
	if (ret) {
		snprintf(msg, sizeof(msg), "submitting task '%s' on worker '%s': %s",
			 label[0] ? label : fn, w->name, weft_strerror(ret));
		free(t->outs);
		t->outs = NULL;
		report(w, t, WEFT_END_FAILED, ret, msg);
		rtask_free(w, t);
		return;
	}
	t->submitted = true;
	w->running++;
	weft__map_put(&w->by_future, (uint64_t)(uintptr_t)weft__handle_addr(t->outs[0]), t);
	/* The task holds its inputs now; fetched ones were only ours for it. */
	for (uint32_t i = 0; i < t->nin; i++)
		if (t->in_fetched[i]) {
			weft_release(t->in[i]);
			t->in[i] = NULL;
		}
	free(t->c);			/* its argument was copied by submit */
	t->c = NULL;
}

/* One more input is in place: the task runs when all are. */
static void input_ready(struct weft__wrt *w, struct rtask *t)
{
	if (--t->missing)
		return;
	if (t->stolen) {
		rtask_free(w, t);
		return;
	}
	submit(w, t);
}

/* Input @i is @f (NULL: it could not be had, for @err); @fetched: ours to release. */
static void input_in(struct weft__wrt *w, struct rtask *t, uint32_t i, struct weft_future *f,
		     bool fetched, int err)
{
	if (err && !t->fail)
		t->fail = err;
	t->in[i] = f;
	t->in_fetched[i] = fetched && f;
	input_ready(w, t);
}

static void fetch_end(struct weft__wrt *w, struct fetch *fe, struct weft_future *f, int err)
{
	if (fe->lease) {
		struct weft__op_unlease u = { fe->lease };

		weft__fab_send(w->f, fe->holder, WEFT_OP_UNLEASE, &u);
	}
	input_in(w, fe->t, fe->i, f, true, err);
	free(fe);
}

static void fetch_read_done(struct weft__fab_read *r, int err)
{
	struct fetch *fe = (struct fetch *)r;
	struct weft_future *f = fe->f;

	if (err) {
		weft_release(f);
		f = NULL;
	} else {
		weft__scatter_filled(fe->w->c, f);
	}
	fetch_end(fe->w, fe, f, err);
}

/* The holder's answer to LEASE_ASK: the bytes, or where to read them. */
static void on_lease(struct weft__wrt *w, struct weft__peer *from, const struct weft__op_lease *l)
{
	struct fetch *fe = weft__map_del(&w->fetches, l->req);
	struct weft_future *f = NULL;
	void *dst;
	int ret;

	if (!fe || fe->holder != from)
		return;
	if (l->status) {
		fetch_end(w, fe, NULL, l->status);
		return;
	}
	fe->lease = l->lease;
	if (!l->lease) {
		ret = weft_scatter(w->c, l->data.p, l->data.len, &f);
		fetch_end(w, fe, f, ret);
		return;
	}
	/* Read straight into the engine's memory: the input, with no copy after. */
	ret = weft__scatter_room(w->c, l->len, &dst, &fe->f);
	if (ret) {
		fetch_end(w, fe, NULL, ret);
		return;
	}
	fe->r = (struct weft__fab_read){ .peer = from, .dst = dst, .len = l->len,
					 .rkey = l->rkey, .addr = l->addr,
					 .done = fetch_read_done };
	ret = weft__fab_read(w->f, &fe->r);
	if (ret)
		fetch_read_done(&fe->r, ret);
}

static void fetch_start(struct weft__wrt *w, struct rtask *t, uint32_t i,
			const struct weft__pinput *in)
{
	struct weft__peer *holder = weft__map_get(&w->peers, in->holder);
	struct fetch *fe;
	struct weft__op_lease_ask ask;

	if (!holder || !(fe = calloc(1, sizeof(*fe)))) {
		input_in(w, t, i, NULL, false, holder ? -ENOMEM : -ENOLINK);
		return;
	}
	fe->w = w;
	fe->t = t;
	fe->i = i;
	fe->holder = holder;
	ask = (struct weft__op_lease_ask){ ++w->next_req, in->key, in->output };
	if (weft__map_put(&w->fetches, ask.req, fe) ||
	    weft__fab_send(w->f, holder, WEFT_OP_LEASE_ASK, &ask)) {
		weft__map_del(&w->fetches, ask.req);
		free(fe);
		input_in(w, t, i, NULL, false, -ENOLINK);
	}
}

/* Keep a copy of the op: its views die with the message. */
static struct weft__op_compute *compute_copy(const struct weft__op_compute *c)
{
	size_t n = sizeof(*c) + c->fn.len + c->label.len + c->arg.len;
	struct weft__op_compute *k = malloc(n);
	uint8_t *p;

	if (!k)
		return NULL;
	*k = *c;
	p = (uint8_t *)(k + 1);
	memcpy(p, c->fn.p, c->fn.len);
	k->fn.p = p;
	p += c->fn.len;
	memcpy(p, c->label.p, c->label.len);
	k->label.p = p;
	p += c->label.len;
	if (c->arg.len)
		memcpy(p, c->arg.p, c->arg.len);
	k->arg.p = p;
	k->inputs = (struct weft__plist){ 0 };
	return k;
}

static void on_compute(struct weft__wrt *w, const struct weft__op_compute *c)
{
	struct rtask *t = calloc(1, sizeof(*t));
	struct weft__plist_iter it;
	struct weft__pinput in;
	uint32_t i = 0;

	if (!t || weft__map_put(&w->tasks, c->key, t)) {
		struct rtask tmp = { .key = c->key };

		free(t);
		report(w, &tmp, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
		return;
	}
	t->key = c->key;
	t->noutputs = c->noutputs;
	t->nin = c->inputs.n;
	t->client = c->client;
	t->ckey = c->ckey;
	t->c = compute_copy(c);
	t->in = calloc(t->nin ? t->nin : 1, sizeof(*t->in));
	t->in_fetched = calloc(t->nin ? t->nin : 1, sizeof(*t->in_fetched));
	t->start = weft__mono_ns();
	if (!t->c || !t->in || !t->in_fetched) {
		report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
		rtask_free(w, t);
		return;
	}
	/* One more than the inputs, so that none completes the task before the loop ends. */
	t->missing = t->nin + 1;
	weft__plist_iter_init(&it, &c->inputs);
	while (weft__plist_next(&it, &in)) {
		if (in.holder) {
			fetch_start(w, t, i++, &in);
			continue;
		}
		struct rtask *d = weft__map_get(&w->tasks, in.key);

		/* Running here still (a chain sent ahead): the engine waits for it. */
		if (!d || !d->outs || !(d->ended || d->submitted) || in.output >= d->noutputs ||
		    d->freed[in.output])
			input_in(w, t, i++, NULL, false, -ENOLINK);
		else
			input_in(w, t, i++, d->outs[in.output], false, 0);
	}
	input_ready(w, t);
}

/* On the fabric thread: a watched task ended. */
static void end_call_run(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct end_call *e = container_of(c, struct end_call, c);
	struct weft__wrt *w = e->w;
	uint32_t final = e->final;
	struct rtask *t = weft__map_get(&w->by_future, (uint64_t)(uintptr_t)e->f);
	int code;

	(void)f;
	free(e);
	if (!t || t->ended)
		return;
	t->ended = true;
	w->running--;
	if (t->stolen) {
		rtask_free(w, t);	/* the scheduler placed it elsewhere */
		return;
	}
	if (final == WT_DONE) {
		struct weft__peer *client = t->client ? weft__map_get(&w->peers, t->client) : NULL;
		struct weft__op_ended e = { .key = t->ckey, .end = WEFT_END_DONE };

		report(w, t, WEFT_END_DONE, 0, NULL);
		if (client)
			weft__fab_send(w->f, client, WEFT_OP_ENDED, &e);
		return;
	}
	code = weft_wait(t->outs[0], 0);
	report(w, t, final == WT_CANCELLED ? WEFT_END_CANCELLED : WEFT_END_FAILED, code,
	       weft_future_error(t->outs[0]));
	rtask_free(w, t);
}

static void end_hook(void *arg, struct weft_future *f, uint32_t final)
{
	struct weft__wrt *w = arg;
	struct end_call *e = malloc(sizeof(*e));

	if (!e)
		return;		/* the scheduler's heartbeat check finds it stuck */
	e->c.fn = end_call_run;
	e->w = w;
	e->f = f;
	e->final = final;
	weft__fab_call(w->f, &e->c);
}

/* ---- serving results ---- */

/* A peer asks to read a result: the bytes inline when small, or a lease. */
static void on_lease_ask(struct weft__wrt *w, struct weft__peer *from,
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
	ret = result_pin(w, t->outs[a->output], &data, &len);
	if (ret) {
		l.status = ret;
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		return;
	}
	l.len = len;
	if (len <= w->inline_max) {
		l.data = weft__pbytes_of(data, len);
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		result_unpin(w, t->outs[a->output]);
		return;
	}
	ls = calloc(1, sizeof(*ls));
	if (!ls || weft__fab_reg(w->f, (void *)data, len, &ls->mr, &l.rkey, &l.addr)) {
		free(ls);
		result_unpin(w, t->outs[a->output]);
		l.status = -ENOMEM;
		l.len = 0;
		weft__fab_send(w->f, from, WEFT_OP_LEASE, &l);
		return;
	}
	/* A FREE meanwhile waits for the lease to end before releasing the bytes. */
	ls->t = t;
	ls->output = a->output;
	t->leases++;
	l.lease = ++w->next_lease;
	weft__map_put(&w->leases, l.lease, ls);
	weft__fab_hold(w->f, 1);
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
		rtask_free(w, t);
		return true;
	}
	return false;
}

static void lease_end(struct weft__wrt *w, uint64_t id)
{
	struct lease *ls = weft__map_del(&w->leases, id);

	if (!ls)
		return;
	weft__fab_hold(w->f, -1);
	weft__fab_unreg(w->f, ls->mr);
	result_unpin(w, ls->t->outs[ls->output]);
	ls->t->leases--;
	out_release(w, ls->t, ls->output);
	free(ls);
}

/* The scheduler asks for a result to go to a client: in pieces, or by a lease. */
static void on_send_result(struct weft__wrt *w, const struct weft__op_send_result *r)
{
	struct weft__peer *client = weft__map_get(&w->peers, r->client);
	struct rtask *t = weft__map_get(&w->tasks, r->key);
	struct weft__op_lease_ask ask = { r->ckey, r->key, r->output };
	const void *data;
	size_t len;

	if (!client)
		return;		/* gone: nothing to send to */
	if (!t || !t->ended || !t->outs || r->output >= t->noutputs || t->freed[r->output] ||
	    result_pin(w, t->outs[r->output], &data, &len)) {
		on_lease_ask(w, client, &ask);	/* says why not */
		return;
	}
	if (len > w->inline_max) {
		result_unpin(w, t->outs[r->output]);
		on_lease_ask(w, client, &ask);
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
	result_unpin(w, t->outs[r->output]);
}

/* ---- other ops ---- */

static void on_put(struct weft__wrt *w, const struct weft__op_piece *p)
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
			report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
			rtask_free(w, t);
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
		report(w, t, WEFT_END_FAILED, ret ? ret : -ENOMEM, "keeping scattered data");
		rtask_free(w, t);
		return;
	}
	t->outs[0] = f;
	t->ended = true;
	report(w, t, WEFT_END_DONE, 0, NULL);
}

static void on_free(struct weft__wrt *w, const struct weft__op_future *f)
{
	struct rtask *t = weft__map_get(&w->tasks, f->key);

	if (!t || !t->outs || f->output >= t->noutputs || t->freed[f->output])
		return;
	t->freed[f->output] = FREED;
	out_release(w, t, f->output);
}

/* Give a task back if it has not started: cancelled here, run elsewhere. */
static void on_steal(struct weft__wrt *w, const struct weft__op_future *f)
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
	send_sched(w, WEFT_OP_STOLEN, &st);
}

static void on_peer(struct weft__wrt *w, const struct weft__op_peer *p)
{
	struct weft__peer *peer;

	if (weft__map_get(&w->peers, p->id))
		return;
	if (weft__fab_connect_addr(w->f, p->ctrl_addr, p->data_addr, &peer))
		return;
	weft__map_put(&w->peers, p->id, peer);
}

static void on_op(void *arg, struct weft__peer *from, uint16_t type, const void *op)
{
	struct weft__wrt *w = arg;

	switch (type) {
	case WEFT_OP_COMPUTE:
		if (from == w->sched)
			on_compute(w, op);
		break;
	case WEFT_OP_PUT:
		if (from == w->sched)
			on_put(w, op);
		break;
	case WEFT_OP_FREE:
		if (from == w->sched)
			on_free(w, op);
		break;
	case WEFT_OP_SEND_RESULT:
		if (from == w->sched)
			on_send_result(w, op);
		break;
	case WEFT_OP_STEAL:
		if (from == w->sched)
			on_steal(w, op);
		break;
	case WEFT_OP_PEER:
		if (from == w->sched)
			on_peer(w, op);
		break;
	case WEFT_OP_LEASE_ASK:
		on_lease_ask(w, from, op);
		break;
	case WEFT_OP_LEASE:
		on_lease(w, from, op);
		break;
	case WEFT_OP_UNLEASE:
		lease_end(w, ((const struct weft__op_unlease *)op)->lease);
		break;
	default:
		break;
	}
}

static int on_ready(void *arg, struct weft__peer *p, const struct weft__op_hello *h)
{
	struct weft__wrt *w = arg;

	if (p == w->connecting && h->role == WEFT_ROLE_SCHEDULER)
		w->sched = p;
	if (p == w->sched) {
		pthread_mutex_lock(&w->lock);
		w->joined = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
	return 0;
}

static void on_gone(void *arg, struct weft__peer *p, int why)
{
	struct weft__wrt *w = arg;
	size_t i = 0;
	uint64_t id;
	void *v;

	if (p == w->sched || p == w->connecting) {
		w->sched = w->connecting = NULL;
		finish(w, why);
		return;
	}
	while (weft__map_next(&w->peers, &i, &id, &v))
		if (v == p) {
			weft__map_del(&w->peers, id);
			break;
		}
	/* Its fetches fail: the scheduler is told -ENOLINK and waits for the inputs. */
	for (i = 0; weft__map_next(&w->fetches, &i, &id, &v);) {
		struct fetch *fe = v;

		if (fe->holder == p && !fe->lease) {
			weft__map_del(&w->fetches, id);
			fetch_end(w, fe, NULL, -ENOLINK);
			i = 0;
		}
	}
}

static void on_tick(void *arg, int64_t now)
{
	struct weft__wrt *w = arg;
	struct weft_stats st = { .size = sizeof(st) };
	struct weft__op_heartbeat hb;

	(void)now;
	if (!w->sched || weft_stats(w->c, &st))
		return;
	hb = (struct weft__op_heartbeat){
		.mem_used = st.mem_bytes, .mem_limit = st.mem_limit,
		.spilled = st.spilled_bytes, .restored = st.restored_bytes,
		.queued = w->running, .running = w->running, .tasks_run = st.tasks_run,
		.paused = (uint8_t)st.paused,
	};
	send_sched(w, WEFT_OP_HEARTBEAT, &hb);
}

static const struct weft__fab_cbs cbs = { on_ready, on_op, on_gone, on_tick };

/* ---- start and stop ---- */

struct connect_call {
	struct weft__fab_call c;
	struct weft__wrt *w;
	const char *url;
	int ret;
};

static void connect_run(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct connect_call *cc = container_of(c, struct connect_call, c);
	struct weft__peer *p;

	cc->ret = weft__fab_connect(f, cc->url, &p);
	if (cc->ret)
		finish(cc->w, cc->ret);
	else
		cc->w->connecting = p;
}

int weft__worker_start(const struct weft__worker_opts *o, struct weft__wrt **out)
{
	struct weft_options eo = { .size = sizeof(eo), .nthreads = o->nthreads,
				   .memory_limit = o->memory_limit, .spill_dir = o->spill_dir };
	struct weft_stats st = { .size = sizeof(st) };
	struct weft__fab_config fc = { .near = o->scheduler, .role = WEFT_ROLE_WORKER,
				       .name = o->name, .key = o->key, .cbs = &cbs,
				       .tick_ms = TICK_MS };
	struct weft__wrt *w = calloc(1, sizeof(*w));
	struct connect_call cc = { .url = o->scheduler };
	const char *env = getenv("WEFT_INLINE_MAX");
	int ret;

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	snprintf(w->name, sizeof(w->name), "%s", o->name ? o->name : "");
	w->inline_max = INLINE_MAX_DEFAULT;
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		/* 0 is a limit too: every result by an RMA read. */
		if (*end || *env == '-' || v > PIECE) {
			weft__log(WEFT_LOG_ERROR, "worker", "WEFT_INLINE_MAX=%s: a size from 0 to "
				  "%u bytes", env, PIECE);
			free(w);
			return -EINVAL;
		}
		w->inline_max = v;
	}
	ret = weft__client_open_embedded(&eo, &w->c);
	if (ret) {
		free(w);
		return ret;
	}
	w->eng = weft__client_engine(w->c);
	weft__engine_set_end_hook(w->eng, end_hook, w);
	weft_stats(w->c, &st);
	fc.nthreads = st.nthreads;
	fc.memory_limit = st.mem_limit;
	fc.arg = w;
	ret = weft__fab_start(&fc, &w->f);
	if (ret) {
		weft_client_close(w->c);
		free(w);
		return ret;
	}
	cc.c.fn = connect_run;
	cc.w = w;
	weft__fab_call(w->f, &cc.c);
	/* Joined, or refused, or nothing there within a few seconds. */
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		pthread_mutex_lock(&w->lock);
		while (!w->joined && !w->over &&
		       pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
			;
		ret = w->joined ? 0 : w->over ? (w->why ? w->why : -ECONNRESET) : -ETIMEDOUT;
		pthread_mutex_unlock(&w->lock);
	}
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "worker", "could not join the scheduler at %s: %s",
			  o->scheduler, ret == -ETIMEDOUT ? "no answer" : weft_strerror(ret));
		weft__worker_free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int weft__worker_wait(struct weft__wrt *w)
{
	int why;

	pthread_mutex_lock(&w->lock);
	while (!w->over)
		pthread_cond_wait(&w->cond, &w->lock);
	why = w->why;
	pthread_mutex_unlock(&w->lock);
	return why;
}

void weft__worker_stop(struct weft__wrt *w)
{
	finish(w, 0);
}

void weft__worker_free(struct weft__wrt *w)
{
	size_t i = 0;
	uint64_t k;
	void *v;

	if (!w)
		return;
	weft__fab_stop(w->f);
	/* The fabric thread is gone: what it owned is ours to free. */
	while (weft__map_next(&w->leases, &i, &k, &v)) {
		struct lease *ls = v;

		weft__fab_unreg(NULL, ls->mr);
		result_unpin(w, ls->t->outs[ls->output]);
		free(ls);
	}
	for (i = 0; weft__map_next(&w->fetches, &i, &k, &v);)
		free(v);
	while (w->tasks.len) {
		i = 0;
		if (!weft__map_next(&w->tasks, &i, &k, &v))
			break;
		rtask_free(w, v);
	}
	weft_client_close(w->c);
	weft__map_free(&w->tasks);
	weft__map_free(&w->by_future);
	weft__map_free(&w->peers);
	weft__map_free(&w->fetches);
	weft__map_free(&w->leases);
	free(w);
}
