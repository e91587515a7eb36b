// SPDX-License-Identifier: MIT
/*
 * run.c - running a task: claim it from READY, pin and read its inputs (reading a
 * spilled one back), call its function with retries, and end it with its results or
 * its failure; and what a task's function calls on its context to give results
 * (weft_output, weft_output_n) or a reason for failing (weft_fail).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "events.h"
#include "record.h"

#define STACK_INPUTS 8

static struct weft__err *failure(struct weft_task *t, int rc, const char *msg)
{
	char buf[64];
	const char *label = weft__task_label(t, buf, sizeof(buf));

	if (msg)
		return weft__err_new(WEFT_ETASK, "task '%s' failed: %s", label, msg);
	return weft__err_new(WEFT_ETASK, "task '%s' failed: its function returned %d (%s)",
		       label, rc, weft_strerror(rc));
}

static void unpin_inputs(struct weft_task *t, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (unlikely(t->in[i]->usable))
			weft__store_unpin(t->eng, t->in[i], false);
}

/* Heap results become spillable once their task has ended (before it is published). */
static void track_outputs(struct weft_task *t)
{
	for (unsigned i = 0; i < t->noutputs; i++) {
		struct weft_future *o = weft__task_out(t, i);

		if (o->usable)
			weft__store_track(t->eng, o);
	}
}

static struct weft__err *over_hard_failure(struct weft_task *t, size_t len)
{
	struct weft__engine *eng = t->eng;
	char buf[64];

	return weft__err_new(-ENOMEM, "task '%s' failed: a result of %zu bytes would pass the "
		       "hard memory limit (%zu of %zu bytes in use; limit %zu, hard at %g)",
		       weft__task_label(t, buf, sizeof(buf)), len,
		       weft__alloc_bytes(eng->alloc), (size_t)(eng->cfg.memory_limit * eng->cfg.mem_hard),
		       eng->cfg.memory_limit, eng->cfg.mem_hard);
}

/* An input could not be read back from the spill file: the task fails, unrun. */
static void input_failure(struct weft__cache *c, struct weft__worker *w,
			  struct weft_task *t, uint32_t i, int err)
{
	char buf[64], dbuf[64];

	t->flags |= TF_EXTRA;
	t->err = weft__err_new(err, "task '%s' failed: its input %u, the result of '%s', could "
			 "not be read back from the spill file: %s",
			 weft__task_label(t, buf, sizeof(buf)), i,
			 weft__task_label(weft__future_task(t->in[i]), dbuf, sizeof(dbuf)),
			 err == -EBADMSG ? "checksum mismatch" : weft_strerror(err));
	weft__task_end_cascade(c, w, t, WT_FAILED);
	weft__task_retire(c, t);
}

/* The bytes of @t's results. */
static uint64_t result_bytes(struct weft_task *t)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < t->noutputs; i++)
		n += weft__task_out(t, i)->len;
	return n;
}

/*
 * Record @t, which began at @start_ns (@pin_ns of it pinning inputs) and ended
 * @outcome: the task the thread's countdown chose (@sampled), or one that failed.
 */
/*
 * @t's label, interned: the thread's last one again without a look-up when it is
 * of the same function or text (naming a function may take a dladdr).
 */
static const char *label_of(struct weft__events *ev, struct weft_task *t)
{
	char buf[64];

	if (t->label) {
		if (!ev->last_fn && ev->last_label && !strcmp(t->label, ev->last_label))
			return ev->last_label;
		ev->last_fn = NULL;
		return ev->last_label = weft__label_intern(t->label);
	}
	if (ev->last_fn != (const void *)t->fn || !ev->last_label) {
		ev->last_fn = (const void *)t->fn;
		ev->last_label = weft__label_intern(weft__task_label(t, buf, sizeof(buf)));
	}
	return ev->last_label;
}

static __cold void record(struct weft__worker *w, struct weft_task *t, bool sampled,
			  int64_t start_ns, int64_t pin_ns, uint32_t outcome)
{
	int64_t end = weft__mono_ns();

	uint64_t seq;

	if (!sampled)
		start_ns = end;		/* a failure's end, not its run time */
	/*
	 * Its first inputs' events, for a trace's flows: a recorded task keeps its
	 * event's id from its end until it retires, and this task holds its inputs
	 * until then; their ends happened before this task ran.
	 */
	for (uint32_t k = 0; k < t->nin && k < WEFT_EVENT_FROM; k++) {
		const struct weft_task *p = t->in[k]->task;

		if (p && (p->flags & TF_RECORDED))
			w->events->from[k] = p->seq;
	}
	seq = weft__events_put(w->events, sampled, label_of(w->events, t), start_ns, end,
			       pin_ns, outcome == WEFT_EV_DONE ? result_bytes(t) : 0, outcome);
	/* TF_EXTRA: retirement clears seq (record.c). */
	t->seq = weft__event_id(w->id, seq);
	t->flags |= TF_RECORDED | TF_EXTRA;
	weft__samples_tick(t->eng, &t->eng->samples, end);
}

void weft__task_run(struct weft__worker *w, struct weft_task *t)
{
	struct weft_buf stack_in[STACK_INPUTS], *in = stack_in;
	struct weft_ctx ctx = { .w = w, .t = t };
	struct weft__cache *c = &w->cache;
	uint64_t s = atomic_load_explicit(&t->sd, memory_order_relaxed);
	bool sampled = w->events && weft__events_sample(w->events);
	int64_t start_ns = sampled ? weft__mono_ns() : 0, pin_ns = 0;
	uint32_t i;
	int rc;

	do {
		if ((s & WT_STATE_MASK) != WT_READY) {
			weft__task_retire(c, t);		/* ended while queued */
			return;
		}
		/* Acquire pairs with the release in the queue that handed t over. */
	} while (!atomic_compare_exchange_weak_explicit(&t->sd, &s,
							(s & ~(uint64_t)WT_STATE_MASK) | WT_RUNNING,
							memory_order_acquire,
							memory_order_relaxed));
	if (unlikely(atomic_load_explicit(&t->eng->closing, memory_order_relaxed))) {
		char buf[64];

		t->flags |= TF_EXTRA;
		t->err = weft__err_new(-ECANCELED, "task '%s' was cancelled: the client closed",
				 weft__task_label(t, buf, sizeof(buf)));
		weft__task_end_cascade(c, w, t, WT_CANCELLED);
		weft__task_retire(c, t);
		return;
	}
	if (unlikely(t->nin > STACK_INPUTS)) {
		in = malloc(t->nin * sizeof(*in));
		if (!in) {
			t->flags |= TF_EXTRA;
			t->err = weft__err_new(-ENOMEM, "no memory for the inputs of a task");
			weft__task_end_cascade(c, w, t, WT_FAILED);
			weft__task_retire(c, t);
			return;
		}
	}
	for (i = 0; i < t->nin; i++) {
		struct weft_future *f = t->in[i];

		/* Pinned while the task reads it; read back first if it was spilled. */
		if (unlikely(f->usable) && (rc = weft__store_pin(t->eng, f, false))) {
			unpin_inputs(t, i);
			if (in != stack_in)
				free(in);
			input_failure(c, w, t, i, rc);
			return;
		}
		in[i].data = f->data;
		in[i].len = f->len;
	}
	if (unlikely(sampled))
		pin_ns = weft__mono_ns() - start_ns;
	ctx.below = w->running;
	w->running = &ctx;
	for (;;) {
		counter_inc(&c->run);
		ctx.over_hard = 0;
		rc = t->fn(&ctx, in, t->nin, weft__task_arg(t), t->arglen);
		if (likely(!rc && !ctx.over_hard) || !t->retries)
			break;
		t->retries--;
		weft__outputs_free(t);
		free(ctx.msg);
		ctx.msg = NULL;
	}
	w->running = ctx.below;
	unpin_inputs(t, t->nin);
	if (in != stack_in)
		free(in);
	if (unlikely(rc || ctx.over_hard)) {
		weft__outputs_free(t);
		t->flags |= TF_EXTRA;
		t->err = ctx.over_hard ? over_hard_failure(t, ctx.over_hard)
				       : failure(t, rc, ctx.msg);
		free(ctx.msg);
		if (w->events)
			record(w, t, sampled, start_ns, pin_ns, WEFT_EV_FAILED);
		weft__task_end_cascade(c, w, t, WT_FAILED);
	} else {
		if (unlikely(sampled))
			record(w, t, true, start_ns, pin_ns, WEFT_EV_DONE);
		if (t->flags & TF_OUTPUT)
			track_outputs(t);
		weft__task_end_cascade(c, w, t, WT_DONE);
	}
	weft__task_retire(c, t);
}

void *weft_output_n(struct weft_ctx *ctx, unsigned i, size_t len)
{
	struct weft_future *o;
	struct weft_task *t;

	if (!ctx || i >= ctx->t->noutputs)
		return NULL;
	t = ctx->t;
	t->flags |= TF_OUTPUT;
	o = weft__task_out(t, i);
	if (o->usable)
		weft__store_drop(t->eng, o);	/* not tracked yet: a plain free */
	o->usable = 0;
	o->len = 0;
	o->data = NULL;
	if (!len)
		return NULL;
	if (len <= WEFT_INLINE_RESULT) {
		o->data = o->inl;
	} else {
		if (weft__store_over_hard(t->eng, len)) {
			ctx->over_hard = len;
			return NULL;
		}
		o->data = weft__alloc(t->eng->alloc, ctx->w->numa, len, &o->usable);
		if (!o->data)
			return NULL;
		weft__alloc_advise_read(o->data, o->usable);
		o->st = NULL;
		weft__store_kick(t->eng);
	}
	o->len = len;
	return o->data;
}

void *weft_output(struct weft_ctx *ctx, size_t len)
{
	return weft_output_n(ctx, 0, len);
}

int weft_fail(struct weft_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ctx || !fmt)
		return -EINVAL;
	free(ctx->msg);
	ctx->msg = malloc(WEFT_MSG_MAX + 1);
	if (ctx->msg) {
		va_start(ap, fmt);
		n = vsnprintf(ctx->msg, WEFT_MSG_MAX + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			ctx->msg[0] = '\0';
	}
	return WEFT_ETASK;
}
