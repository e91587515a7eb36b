// SPDX-License-Identifier: MIT
/*
 * run.c - running what the scheduler sends: a COMPUTE waits for its inputs held
 * elsewhere (LEASE_ASK, then the bytes inline or an RMA read straight into the
 * engine's memory), runs as a watched task of the engine, and its end goes to the
 * scheduler (DONE, with each output's size) and, when done, to the client waiting
 * for it. An input that cannot be fetched ends the task -ENOLINK, which the
 * scheduler takes as "wait for the input again".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- results ---- */

/* The bytes of a result, pinned in memory (read back if spilled) until unpin. */
int weft__wrt_result_pin(struct weft__wrt *w, struct weft_future *h, const void **data,
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

void weft__wrt_result_unpin(struct weft__wrt *w, struct weft_future *h)
{
	struct weft_future *f = weft__handle_addr(h);

	if (f->usable)
		weft__store_unpin(w->eng, f, false);
}

void weft__wrt_rtask_free(struct weft__wrt *w, struct rtask *t)
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
void weft__wrt_report(struct weft__wrt *w, struct rtask *t, uint8_t end, int32_t code,
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
			weft__wrt_report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
			return;
		}
		for (uint32_t i = 0; i < t->noutputs; i++)
			sizes[i].len = ((struct weft_future *)weft__handle_addr(t->outs[i]))->len;
		d.sizes = (struct weft__plist){ .n = t->noutputs, .items = sizes };
	}
	/*
	 * The client waits for this end: first hand when the connection to it is up,
	 * else through the scheduler (told = 0), which is sooner than a handshake, and
	 * keeps the order of a chain's ends as the client sees them.
	 */
	if (end == WEFT_END_DONE && t->client) {
		struct weft__peer *client = weft__map_get(&w->peers, t->client);
		struct weft__op_ended e = { .key = t->ckey, .end = WEFT_END_DONE };

		d.told = client && weft__peer_ready(client) &&
			 !weft__fab_send(w->f, client, WEFT_OP_ENDED, &e);
	}
	weft__wrt_send_sched(w, WEFT_OP_DONE, &d);
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
		weft__wrt_report(w, t, WEFT_END_FAILED, -ENOLINK, msg);
		weft__wrt_rtask_free(w, t);
		return;
	}
	f = weft__registry_find(fn);
	if (!f) {
		snprintf(msg, sizeof(msg), "no task function '%s' on worker '%s'", fn, w->name);
		weft__wrt_report(w, t, WEFT_END_FAILED, WEFT_ENOFN, msg);
		weft__wrt_rtask_free(w, t);
		return;
	}
	if (label[0])
		o.label = label;
	t->outs = calloc(c->noutputs, sizeof(*t->outs));
	t->freed = calloc(c->noutputs, 1);
	if (!t->outs || !t->freed) {
		weft__wrt_report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
		weft__wrt_rtask_free(w, t);
		return;
	}
	t->start = weft__mono_ns();
	ret = weft__submit_watched(w->c, f, t->in, t->nin, c->arg.p, c->arg.len, &o, t->outs);
	if (ret) {
		snprintf(msg, sizeof(msg), "submitting task '%s' on worker '%s': %s",
			 label[0] ? label : fn, w->name, weft_strerror(ret));
		free(t->outs);
		t->outs = NULL;
		weft__wrt_report(w, t, WEFT_END_FAILED, ret, msg);
		weft__wrt_rtask_free(w, t);
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
		weft__wrt_rtask_free(w, t);
		return;
	}
	submit(w, t);
}

/* Input @i is @f (NULL: it could not be had, for @err); @fetched: ours to release. */
void weft__wrt_input_in(struct weft__wrt *w, struct rtask *t, uint32_t i, struct weft_future *f,
			bool fetched, int err)
{
	if (err && !t->fail)
		t->fail = err;
	t->in[i] = f;
	t->in_fetched[i] = fetched && f;
	input_ready(w, t);
}

void weft__wrt_fetch_end(struct weft__wrt *w, struct fetch *fe, struct weft_future *f, int err)
{
	if (!err && f)
		weft__wrt_record_transfer(w, fe->holder_id, fe->len, fe->start_ns,
					  weft__mono_ns());
	if (fe->lease) {
		struct weft__op_unlease u = { fe->lease };

		weft__fab_send(w->f, fe->holder, WEFT_OP_UNLEASE, &u);
	}
	weft__wrt_input_in(w, fe->t, fe->i, f, true, err);
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
	weft__wrt_fetch_end(fe->w, fe, f, err);
}

/* The holder's answer to LEASE_ASK: the bytes, or where to read them. */
void weft__wrt_on_lease(struct weft__wrt *w, struct weft__peer *from,
			const struct weft__op_lease *l)
{
	struct fetch *fe = weft__map_del(&w->fetches, l->req);
	struct weft_future *f = NULL;
	void *dst;
	int ret;

	if (!fe || fe->holder != from)
		return;
	if (l->status) {
		weft__wrt_fetch_end(w, fe, NULL, l->status);
		return;
	}
	fe->lease = l->lease;
	fe->len = l->len;
	if (!l->lease) {
		ret = weft_scatter(w->c, l->data.p, l->data.len, &f);
		weft__wrt_fetch_end(w, fe, f, ret);
		return;
	}
	/* Read straight into the engine's memory: the input, with no copy after. */
	ret = weft__scatter_room(w->c, l->len, &dst, &fe->f);
	if (ret) {
		weft__wrt_fetch_end(w, fe, NULL, ret);
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
		weft__wrt_input_in(w, t, i, NULL, false, holder ? -ENOMEM : -ENOLINK);
		return;
	}
	fe->w = w;
	fe->t = t;
	fe->i = i;
	fe->holder = holder;
	fe->holder_id = in->holder;
	fe->start_ns = weft__mono_ns();
	ask = (struct weft__op_lease_ask){ ++w->next_req, in->key, in->output };
	if (weft__map_put(&w->fetches, ask.req, fe) ||
	    weft__fab_send(w->f, holder, WEFT_OP_LEASE_ASK, &ask)) {
		weft__map_del(&w->fetches, ask.req);
		free(fe);
		weft__wrt_input_in(w, t, i, NULL, false, -ENOLINK);
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

void weft__wrt_on_compute(struct weft__wrt *w, const struct weft__op_compute *c)
{
	struct rtask *t = calloc(1, sizeof(*t));
	struct weft__plist_iter it;
	struct weft__pinput in;
	uint32_t i = 0;

	if (!t || weft__map_put(&w->tasks, c->key, t)) {
		struct rtask tmp = { .key = c->key };

		free(t);
		weft__wrt_report(w, &tmp, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
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
		weft__wrt_report(w, t, WEFT_END_FAILED, -ENOMEM, "the worker ran out of memory");
		weft__wrt_rtask_free(w, t);
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
			weft__wrt_input_in(w, t, i++, NULL, false, -ENOLINK);
		else
			weft__wrt_input_in(w, t, i++, d->outs[in.output], false, 0);
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
		weft__wrt_rtask_free(w, t);	/* the scheduler placed it elsewhere */
		return;
	}
	if (final == WT_DONE) {
		weft__wrt_report(w, t, WEFT_END_DONE, 0, NULL);
		return;
	}
	code = weft_wait(t->outs[0], 0);
	weft__wrt_report(w, t, final == WT_CANCELLED ? WEFT_END_CANCELLED : WEFT_END_FAILED, code,
	       weft_future_error(t->outs[0]));
	weft__wrt_rtask_free(w, t);
}

void weft__wrt_end_hook(void *arg, struct weft_future *f, uint32_t final)
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
