// SPDX-License-Identifier: MIT
/*
 * task.c - a task's life around its run: errors, submit with dependency counting,
 * scatter, and ending (with failure and cancellation passed on to dependents).
 * Records and their references are record.c's and record.h's, running run.c's,
 * waiting on and releasing a future future.c's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "remote.h"



/* ---- errors ---- */

/* What a task gets when even its error message cannot be allocated. Never freed. */
static struct {
	struct weft__err e;
	char msg[64];
} oom_err = { { .refs = 1, .code = -ENOMEM }, "out of memory while ending a task" };

struct weft__err *weft__err_new(int code, const char *fmt, ...)
{
	struct weft__err *e;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > WEFT_MSG_MAX)
		n = WEFT_MSG_MAX;
	e = malloc(sizeof(*e) + n + 1);
	if (!e)
		return &oom_err.e;
	atomic_init(&e->refs, 1);
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, n + 1, fmt, ap);
	va_end(ap);
	return e;
}

static struct weft__err *err_get(struct weft__err *e)
{
	if (e == &oom_err.e)
		return e;
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

void weft__err_put(struct weft__err *e)
{
	if (!e || e == &oom_err.e)
		return;
	/* acq_rel: the last holder frees what others wrote. */
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		free(e);
}

const char *weft__task_label(const struct weft_task *t, char *buf, size_t len)
{
	const char *name;
	Dl_info info;

	if (t->label)
		return t->label;
	if (!t->fn)
		return "scatter";
	name = weft__registry_name(t->fn);
	if (name)
		return name;
	if (dladdr((void *)t->fn, &info) && info.dli_sname)
		return info.dli_sname;
	snprintf(buf, len, "task@%p", (void *)t->fn);
	return buf;
}

/* ---- ending ---- */

/*
 * Claim a task that has not started, so that this thread alone ends it. The task's
 * error is set here, before any reader can see a final state.
 */
bool weft__task_claim(struct weft_task *t, struct weft__err *err)
{
	uint64_t s = atomic_load_explicit(&t->sd, memory_order_relaxed);

	do {
		if ((s & WT_STATE_MASK) > WT_READY)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&t->sd, &s,
							(s & ~(uint64_t)WT_STATE_MASK) | WT_ENDING,
							memory_order_acquire,
							memory_order_relaxed));
	t->err = err_get(err);
	t->flags |= TF_EXTRA;
	return true;
}

/* pending reached 0: queue the task, or retire it if it was ended meanwhile. */
/* @next: made ready by the task @w has just run, which may hand it on directly. */
static void became_ready(struct weft__cache *c, struct weft__worker *w,
			 struct weft_task *t, bool next)
{
	uint64_t s = atomic_load_explicit(&t->sd, memory_order_relaxed);

	do {
		if ((s & WT_STATE_MASK) != WT_WAITING) {
			weft__task_retire(c, t);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&t->sd, &s,
							(s & ~(uint64_t)WT_STATE_MASK) | WT_READY,
							memory_order_relaxed,
							memory_order_relaxed));
	weft__store_prefetch(t->eng, t->in, t->nin);
	if (next)
		weft__engine_run_next(t->eng, w, t);
	else
		weft__engine_schedule(t->eng, w, t);
}

/*
 * End one claimed task (running or ENDING): publish its state, wake waiters and pass
 * its end on to its dependents (its inputs are let go when it retires). Dependents
 * that fail with it are claimed and pushed on *stack, each with a reference, instead
 * of recursing.
 */
static void end_one(struct weft__cache *c, struct weft__worker *w, struct weft_task *t,
		    uint32_t final, struct weft_task **stack)
{
	struct weft__edge *e, *next;
	uint64_t old;

	if (final == WT_FAILED)
		counter_inc(&c->failed);
	else if (final == WT_CANCELLED)
		counter_inc(&c->cancelled);
	/*
	 * One exchange publishes the final state and takes the edges, closing the
	 * list. Release pairs with the acquire loads of the state in wait, result and
	 * submit; acquire with the release CAS that queued each edge in submit.
	 */
	old = atomic_exchange_explicit(&t->sd, final, memory_order_acq_rel);
	if (unlikely(t->flags & TF_WATCH))
		t->eng->end_hook(t->eng->end_hook_arg, weft__task_out(t, 0), final);
	if (old & WT_WAITER)
		weft__engine_wake_waiters(t->eng);
	e = wt_edges(old);
	for (; e; e = next) {
		struct weft_task *d = e->task;

		next = e->next;			/* e lives in d, which may go below */
		if (final != WT_DONE && weft__task_claim(d, t->err)) {
			weft__task_ref(d);
			d->ending_next = *stack;
			*stack = d;
		}
		if (atomic_fetch_sub_explicit(&d->pending, 1, memory_order_acq_rel) == 1)
			became_ready(c, w, d, final == WT_DONE);
	}
}

static uint32_t final_of(const struct weft__err *err)
{
	return err->code == -ECANCELED ? WT_CANCELLED : WT_FAILED;
}

void weft__task_end_cascade(struct weft__cache *c, struct weft__worker *w,
			    struct weft_task *t, uint32_t final)
{
	struct weft_task *stack = NULL;

	end_one(c, w, t, final, &stack);
	while (stack) {
		t = stack;
		stack = t->ending_next;
		end_one(c, w, t, final_of(t->err), &stack);
		weft__task_unref(c, t);
	}
}

/* ---- submit ---- */

/* What a NULL struct weft_task_opts means. */
static const struct weft_task_opts default_opts = { .size = sizeof(default_opts) };

/* Callers' options, of whatever size their weft.h had, into @o. */
static int opts_read(const struct weft_task_opts *in, struct weft_task_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	if (in->size < offsetof(struct weft_task_opts, noutputs) + sizeof(unsigned) ||
	    in->size > WEFT_OPTS_MAX_SIZE)
		return -EINVAL;
	memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
	if (o->noutputs > WEFT_MAX_OUTPUTS)
		return -EINVAL;
	if (o->worker)
		return -ENOTSUP;	/* embedded: there is one worker, this process */
	return 0;
}

/* Submit calls it only with @ndeps > 0: no dependencies need no check. */
static int check_deps(struct weft__engine *eng, struct weft_future *const *deps,
		      size_t ndeps)
{
	size_t i;

	if (!deps)
		return -EINVAL;
	if (ndeps > UINT32_MAX / 2)
		return -EINVAL;
	for (i = 0; i < ndeps; i++) {
		if (!deps[i] || weft__is_remote(deps[i]) ||
		    weft__future_task(weft__handle_addr(deps[i]))->eng != eng)
			return -EINVAL;
		if (!weft__future_of(deps[i], "weft_submit"))
			return -EBADF;
	}
	return 0;
}

/*
 * The futures of a multi-output task: WEFT_RECORD_ALIGN-aligned with a stride of
 * WEFT_OUT_STRIDE, so none sits where a record's out1 does (weft__future_task).
 */
static struct weft_future *out_array_alloc(unsigned n)
{
	size_t bytes = (size_t)n * WEFT_OUT_STRIDE;
	void *p = aligned_alloc(WEFT_RECORD_ALIGN, (bytes + WEFT_RECORD_ALIGN - 1) &
				~(size_t)(WEFT_RECORD_ALIGN - 1));

	if (p)
		memset(p, 0, bytes);
	return p;
}

/*
 * What a task needs beyond a free record's values (see record_init); may fail with
 * -ENOMEM, leaving the record free.
 */
static __always_inline int task_fill(struct weft_task *t, size_t ndeps, const void *arg,
				     size_t arglen, const struct weft_task_opts *o)
{
	unsigned nout = o->noutputs ? o->noutputs : 1, i;

	if (unlikely(ndeps > WEFT_INLINE_DEPS)) {
		t->flags |= TF_DEPS_HEAP;
		t->in = malloc(ndeps * sizeof(*t->in));
		t->edges = malloc(ndeps * sizeof(*t->edges));
		if (!t->in || !t->edges)
			goto err_nomem;
	}
	if (arglen <= WEFT_WORD_ARG) {
		/* A constant size is one move, not a call: 8 bytes is the usual. */
		if (arglen == WEFT_WORD_ARG)
			memcpy(t->arg_word, arg, WEFT_WORD_ARG);
		else if (arglen)
			memcpy(t->arg_word, arg, arglen);
	} else {
		t->arg = t->arg_inl;
		if (unlikely(arglen > WEFT_INLINE_ARG)) {
			t->arg = weft__arg_alloc(t, arglen);
			if (!t->arg)
				goto err_nomem;
			t->flags |= TF_ARG_HEAP;
		}
		memcpy(t->arg, arg, arglen);
	}
	t->arglen = (uint32_t)arglen;
	if (unlikely(o->label || o->priority || o->retries))
		t->flags |= TF_EXTRA;
	SET_IF(t->prio, o->priority != 0);
	if (unlikely(o->label)) {
		t->label = strdup(o->label);
		if (!t->label)
			goto err_nomem;
	}
	if (unlikely(nout > 1)) {
		t->flags |= TF_OUT_HEAP;
		t->out = out_array_alloc(nout);
		if (!t->out)
			goto err_nomem;
		t->noutputs = nout;
		for (i = 0; i < nout; i++)
			weft__task_out(t, i)->task = t;
	}
	if (unlikely(t->flags & TF_EXTRA)) {
		t->priority = o->priority;
		t->retries = o->retries;
	}
	return 0;

err_nomem:
	/*
	 * Each flag was set before its allocation (free(NULL) is fine), but the
	 * argument's, set once it succeeded.
	 */
	weft__record_reset(t);
	return -ENOMEM;
}

/* The futures of @t's @nout outputs, into @out. */
static __always_inline void hand_out(struct weft_task *t, unsigned nout,
				     struct weft_future **out)
{
	if (likely(nout == 1)) {
		/* Its own output: the generation is the record's. */
		out[0] = weft__handle_make(&t->out1, atomic_load_explicit(&t->gen,
							memory_order_relaxed));
		return;
	}
	for (unsigned i = 0; i < nout; i++) {
		struct weft_future *o = weft__task_out(t, i);

		atomic_store_explicit(weft__out_refs(o), 1, memory_order_relaxed);
		out[i] = weft__future_handle(o);
	}
}

/*
 * Queue an edge of @t on each of its @ndeps dependencies. Return: true if every
 * dependency had ended and none failed, so that @t is ready and nobody else has
 * seen it; false if @t is in the dependencies' hands (or ended) now.
 */
static __always_inline bool link_deps(struct weft__cache *c, struct weft__worker *w,
				      struct weft_task *t, struct weft_future *const *deps,
				      uint32_t ndeps)
{
	struct weft__err *ferr = NULL;
	uint32_t already = 0, i;

	/*
	 * Inputs and their references first: once the first edge is queued, a
	 * dependency that fails may claim and end t from another thread, and ending
	 * walks all of in[].
	 */
	for (i = 0; i < ndeps; i++) {
		struct weft_future *f = weft__handle_addr(deps[i]);
		struct weft_task *d = weft__future_task(f);

		weft__task_ref(d);			/* the caller's future keeps it alive */
		weft__output_ref(d, f);
		t->in[i] = f;
	}
	for (i = 0; i < ndeps; i++) {
		struct weft_task *d = weft__future_task(t->in[i]);
		struct weft__edge *e = &t->edges[i];
		uint64_t head;

		e->task = t;
		head = atomic_load_explicit(&d->sd, memory_order_acquire);
		do {
			if (wt_final(head))
				break;
			e->next = wt_edges(head);
			/* Release pairs with the exchange in end_one: it sees e filled. */
		} while (!atomic_compare_exchange_weak_explicit(&d->sd, &head,
								(uintptr_t)e | (head & WT_BITS),
								memory_order_release,
								memory_order_acquire));
		if (!wt_final(head))
			continue;
		/* d has ended; its error was set before its final state, seen here. */
		already++;
		if (!ferr && (head & WT_STATE_MASK) != WT_DONE)
			ferr = d->err;
	}
	if (!already)
		return false;		/* t is in the dependencies' hands now */
	/* Some dependency failed: t never runs. pending > 0 until we subtract. */
	if (ferr && weft__task_claim(t, ferr))
		weft__task_end_cascade(c, w, t, final_of(ferr));
	if (already < ndeps) {
		if (atomic_fetch_sub_explicit(&t->pending, already, memory_order_acq_rel) ==
		    already)
			became_ready(c, w, t, false);
		return false;
	}
	/* Every dependency had ended, so no edge of t was queued: nobody sees t. */
	atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
	if (ferr) {
		weft__task_retire(c, t);
		return false;
	}
	return true;
}

/*
 * weft_submit and weft_spawn: @w is weft__self(@eng). Inlined into both, as the
 * call of a function of nine arguments is a good share of a task's cost.
 */
static __always_inline int submit(struct weft__engine *eng, struct weft__worker *w,
				  weft_fn *fn, struct weft_future *const *deps,
				  size_t ndeps, const void *arg, size_t arglen,
				  const struct weft_task_opts *opts, struct weft_future **out,
				  bool watch)
{
	const struct weft_task_opts *o = &default_opts;
	struct weft_task_opts given;
	struct weft__cache *c;
	struct weft_task *t;
	unsigned nout;
	int ret;

	if (!fn || !out || (arglen && !arg) || arglen > WEFT_MAX_ARG)
		return -EINVAL;
	if (opts) {
		ret = opts_read(opts, &given);
		if (ret)
			return ret;
		o = &given;
	}
	if (ndeps) {
		ret = check_deps(eng, deps, ndeps);
		if (ret)
			return ret;
	}
	/* t->noutputs too, once task_fill has run: a constant in the usual copy. */
	nout = o->noutputs ? o->noutputs : 1;
	if (unlikely(atomic_load_explicit(&eng->closing, memory_order_relaxed)))
		return -ESHUTDOWN;
	c = w ? &w->cache : weft__cache_external(eng);
	if (unlikely(!c))
		return -ENOMEM;
	t = weft__record_get(c, ndeps);
	if (unlikely(!t))
		return -ENOMEM;
	ret = task_fill(t, ndeps, arg, arglen, o);
	if (unlikely(ret)) {
		weft__record_put(eng, c, t);
		return ret;
	}
	if (watch)
		t->flags |= TF_WATCH;
	t->fn = fn;
	t->nin = (uint32_t)ndeps;
	atomic_store_explicit(&t->sd, WT_WAITING, memory_order_relaxed);
	/* One per future handed out, one for the engine until the task retires. */
	atomic_store_explicit(&t->refs, nout + 1, memory_order_relaxed);
	/*
	 * One per dependency not yet ended. No guard: after its last edge is queued,
	 * submit no longer touches t's shared state, so t may start (or be ended by a
	 * failing dependency) from then on. Dependencies found ended are subtracted at
	 * the end, which keeps t waiting until then.
	 */
	atomic_store_explicit(&t->pending, (uint32_t)ndeps, memory_order_relaxed);
	counter_inc(&c->created);
	hand_out(t, nout, out);
	if (ndeps && !link_deps(c, w, t, deps, (uint32_t)ndeps))
		return 0;
	atomic_store_explicit(&t->sd, WT_READY, memory_order_relaxed);
	if (ndeps)
		weft__store_prefetch(eng, t->in, t->nin);
	/* A client's plain task goes straight to the inbox, inline. */
	if (!w && likely(!t->prio))
		weft__inbox_push(eng, t);
	else
		weft__engine_schedule(eng, w, t);
	return 0;
}

/*
 * A result born ended with room for @len bytes at f->data, not yet known to the
 * store (so never spilled before it is filled). Return: 0 or a negative errno.
 */
static int scatter_make(struct weft__engine *eng, size_t len, struct weft_future **out)
{
	struct weft__cache *c;
	struct weft_future *f;
	struct weft_task *t;

	if (atomic_load_explicit(&eng->closing, memory_order_relaxed))
		return -ESHUTDOWN;
	c = weft__cache_self(eng);
	if (!c)
		return -ENOMEM;
	t = weft__record_get(c, false);
	if (!t)
		return -ENOMEM;
	if (task_fill(t, 0, NULL, 0, &default_opts)) {
		weft__record_put(eng, c, t);
		return -ENOMEM;
	}
	f = &t->out1;
	if (len > WEFT_INLINE_RESULT) {
		struct weft__worker *w = weft__self(eng);

		f->data = weft__alloc(eng->alloc, w ? w->numa : 0, len, &f->usable);
		if (!f->data) {
			weft__record_put(eng, c, t);
			return -ENOMEM;
		}
	} else if (len) {
		f->data = f->inl;
	}
	if (len)
		t->flags |= TF_OUTPUT;
	f->len = len;
	t->fn = NULL;
	t->nin = 0;
	/* Born ended (so closed to edges): no engine reference, nothing to schedule. */
	atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
	atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&t->sd, WT_DONE, memory_order_release);
	*out = f;
	return 0;
}

/* The result is filled: the store may spill it from now on. */
static void scatter_filled(struct weft__engine *eng, struct weft_future *f)
{
	if (f->usable) {
		f->st = NULL;
		weft__store_track(eng, f);
	}
}

int weft__task_scatter(struct weft__engine *eng, const void *data, size_t len,
		       struct weft_future **out)
{
	struct weft_future *f;
	int ret;

	if (!out || (len && !data))
		return -EINVAL;
	ret = scatter_make(eng, len, &f);
	if (ret)
		return ret;
	weft__alloc_advise_read(f->data, f->usable);	/* 0 bytes usable when inline */
	if (len)
		memcpy(f->data, data, len);
	scatter_filled(eng, f);
	*out = weft__future_handle(f);
	return 0;
}

int weft__scatter_room(struct weft_client *h, size_t len, void **room, struct weft_future **out)
{
	struct weft_client *c = weft__client_of(h, "weft_scatter");
	struct weft_future *f;
	int ret;

	if (!c)
		return -EBADF;
	ret = scatter_make(c->eng, len, &f);
	if (ret)
		return ret;
	*room = f->data;
	*out = weft__future_handle(f);
	return 0;
}

void weft__scatter_filled(struct weft_client *h, struct weft_future *f)
{
	struct weft_client *c = weft__client_of(h, "weft_scatter");

	if (c)
		scatter_filled(c->eng, weft__handle_addr(f));
}

int weft_spawn(struct weft_ctx *ctx, weft_fn *fn, struct weft_future *const *deps,
	       size_t ndeps, const void *arg, size_t arglen,
	       const struct weft_task_opts *opts, struct weft_future **out)
{
	if (!ctx)
		return -EINVAL;
	/* The usual task, no dependencies and no options: a copy with both folded. */
	if (!ndeps && !opts)
		return submit(ctx->t->eng, ctx->w, fn, NULL, 0, arg, arglen, NULL, out, false);
	return submit(ctx->t->eng, ctx->w, fn, deps, ndeps, arg, arglen, opts, out, false);
}

int weft_submit(struct weft_client *h, weft_fn *fn, struct weft_future *const *deps,
		size_t ndeps, const void *arg, size_t arglen,
		const struct weft_task_opts *opts, struct weft_future **out)
{
	struct weft_client *c;

	if (!h)
		return -EINVAL;
	if (unlikely(weft__is_remote(h)))
		return weft__remote_submit(h, fn, NULL, deps, ndeps, arg, arglen, opts, out);
	c = weft__client_of(h, "weft_submit");
	if (unlikely(!c))
		return -EBADF;
	if (!ndeps && !opts)
		return submit(c->eng, weft__self(c->eng), fn, NULL, 0, arg, arglen, NULL, out, false);
	return submit(c->eng, weft__self(c->eng), fn, deps, ndeps, arg, arglen, opts, out, false);
}

int weft__submit_watched(struct weft_client *h, weft_fn *fn, struct weft_future *const *deps,
			 size_t ndeps, const void *arg, size_t arglen,
			 const struct weft_task_opts *opts, struct weft_future **out)
{
	struct weft_client *c;

	if (!h)
		return -EINVAL;
	c = weft__client_of(h, "weft_submit");
	if (unlikely(!c))
		return -EBADF;
	if (!c->eng->end_hook)
		return -EINVAL;
	return submit(c->eng, weft__self(c->eng), fn, deps, ndeps, arg, arglen, opts, out, true);
}

void weft__engine_set_end_hook(struct weft__engine *eng, weft__end_hook *hook, void *arg)
{
	eng->end_hook_arg = arg;
	eng->end_hook = hook;
}
