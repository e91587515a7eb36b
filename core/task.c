// SPDX-License-Identifier: MIT
/*
 * task.c - a task's life: submit with dependency counting, running, ending (with
 * failure and cancellation passed on to dependents), results and their references,
 * release. Records come from record.c; waiting on a future is future.c's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "record.h"

#define MSG_MAX 1024
#define RELEASE_AHEAD 32		/* strides ahead that weft_release prefetches */


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
	if (n > MSG_MAX)
		n = MSG_MAX;
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

/* ---- references and freeing ---- */

static void outputs_free(struct weft_task *t)
{
	unsigned i;

	for (i = 0; i < t->noutputs; i++) {
		struct weft_future *o = weft__task_out(t, i);

		if (o->usable)
			weft__store_drop(t->eng, o);
		SET_IF(o->data, NULL);
		SET_IF(o->len, 0);
		SET_IF(o->usable, 0);
	}
}

static void task_free(struct weft__cache *c, struct weft_task *t)
{
	struct weft__engine *eng = t->eng;

	/* A plain task changed nothing in its record that needs undoing. */
	if (unlikely(t->flags)) {
		if (t->flags & TF_OUTPUT)
			outputs_free(t);
		if (t->flags & TF_EXTRA && t->err) {
			weft__err_put(t->err);
			t->err = NULL;
		}
		weft__record_reset(t);
	}
	if (unlikely(eng->closed)) {
		/* After close the records stay in their slabs; the last one frees all. */
		if (atomic_fetch_sub_explicit(&eng->husk_live, 1, memory_order_acq_rel) == 1) {
			weft__task_free_pool(eng);
			free(eng);
		}
		return;
	}
	weft__record_put(eng, c, t);
}

/* One more reference to output @f of @t (its own count, when it has one). */
static inline void output_ref(struct weft_task *t, struct weft_future *f)
{
	/* Relaxed: the caller holds a reference to the output already. */
	if (unlikely(t->noutputs > 1))
		atomic_fetch_add_explicit(weft__out_refs(f), 1, memory_order_relaxed);
}

/*
 * One reference less to output @f of @t, before the task reference goes: at the
 * last, the output's result is freed, if the task has ended (its outputs are
 * settled then); if not, the record frees it with the rest.
 */
static void output_unref(struct weft_task *t, struct weft_future *f)
{
	if (likely(t->noutputs <= 1))
		return;
	WEFT_ASSERT(atomic_load_explicit(weft__out_refs(f), memory_order_relaxed) >= 1);
	/* acq_rel: the last one out sees every reader's use of the bytes. */
	if (atomic_fetch_sub_explicit(weft__out_refs(f), 1, memory_order_acq_rel) != 1)
		return;
	/* Acquire pairs with the release of the final state: outputs are settled. */
	if (!wt_final(wt_state(t, memory_order_acquire)))
		return;
	if (f->usable)
		weft__store_drop(t->eng, f);
	f->data = NULL;
	f->len = 0;
	f->usable = 0;
}

static inline void task_ref(struct weft_task *t)
{
	/* Relaxed: the caller already holds a reference, so the record is alive. */
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static inline void task_unref(struct weft__cache *c, struct weft_task *t)
{
	/* A reference is dropped only by one who holds it. */
	WEFT_ASSERT(atomic_load_explicit(&t->refs, memory_order_relaxed) >= 1);
	/*
	 * Holding one reference and seeing a count of 1, the caller holds the only
	 * one, and only a holder can add another: it may free without writing the
	 * count, so the line stays shared. The acquire pairs with the other holders'
	 * release decrements. Otherwise acq_rel: the last one out sees every write
	 * made under the other references.
	 */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1) {
		/*
		 * refs == 0 marks a free record for close's walk. A plain store
		 * waits in the store buffer; a locked decrement would stall here.
		 */
		atomic_store_explicit(&t->refs, 0, memory_order_relaxed);
		task_free(c, t);
	} else if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
		task_free(c, t);
	}
}

/*
 * The task leaves the scheduling structures: it lets go of its inputs and drops
 * the engine's reference. Inputs go here, not when the task ends: a thread that
 * made the task ready may still be looking at them (prefetch) until it is queued,
 * and retiring comes after that, exactly once.
 */
static inline void retire(struct weft__cache *c, struct weft_task *t)
{
	for (uint32_t i = 0; i < t->nin; i++) {
		struct weft_task *d = weft__future_task(t->in[i]);

		output_unref(d, t->in[i]);
		task_unref(c, d);
	}
	counter_inc_release(&c->retired);
	task_unref(c, t);
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
			retire(c, t);
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
	if (old & WT_WAITER)
		weft__engine_wake_waiters(t->eng);
	e = wt_edges(old);
	for (; e; e = next) {
		struct weft_task *d = e->task;

		next = e->next;			/* e lives in d, which may go below */
		if (final != WT_DONE && weft__task_claim(d, t->err)) {
			task_ref(d);
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
		task_unref(c, t);
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
		if (!deps[i] || weft__future_task(weft__handle_addr(deps[i]))->eng != eng)
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

/*
 * weft_submit and weft_spawn: @w is weft__self(@eng). Inlined into both, as the
 * call of a function of nine arguments is a good share of a task's cost.
 */
static __always_inline int submit(struct weft__engine *eng, struct weft__worker *w,
				  weft_fn *fn, struct weft_future *const *deps,
				  size_t ndeps, const void *arg, size_t arglen,
				  const struct weft_task_opts *opts, struct weft_future **out)
{
	const struct weft_task_opts *o = &default_opts;
	struct weft_task_opts given;
	struct weft__err *ferr = NULL;
	struct weft__cache *c;
	struct weft_task *t;
	uint32_t already = 0, i;
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
	if (likely(nout == 1)) {
		/* Its own output: the generation is the record's. */
		out[0] = weft__handle_make(&t->out1, atomic_load_explicit(&t->gen,
							memory_order_relaxed));
	} else {
		for (i = 0; i < nout; i++) {
			struct weft_future *o = weft__task_out(t, i);

			atomic_store_explicit(weft__out_refs(o), 1, memory_order_relaxed);
			out[i] = weft__future_handle(o);
		}
	}
	if (!ndeps)
		goto ready_unseen;

	/*
	 * Inputs and their references first: once the first edge is queued, a
	 * dependency that fails may claim and end t from another thread, and ending
	 * walks all of in[].
	 */
	for (i = 0; i < ndeps; i++) {
		struct weft_future *f = weft__handle_addr(deps[i]);
		struct weft_task *d = weft__future_task(f);

		task_ref(d);			/* the caller's future keeps it alive */
		output_ref(d, f);
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
		return 0;		/* t is in the dependencies' hands now */
	/* Some dependency failed: t never runs. pending > 0 until we subtract. */
	if (ferr && weft__task_claim(t, ferr))
		weft__task_end_cascade(c, w, t, final_of(ferr));
	if (already < ndeps) {
		if (atomic_fetch_sub_explicit(&t->pending, already, memory_order_acq_rel) ==
		    already)
			became_ready(c, w, t, false);
		return 0;
	}
	/* Every dependency had ended, so no edge of t was queued: nobody sees t. */
	atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
	if (ferr) {
		retire(c, t);
		return 0;
	}
ready_unseen:
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

int weft__task_scatter(struct weft__engine *eng, const void *data, size_t len,
		       struct weft_future **out)
{
	struct weft__cache *c;
	struct weft_future *f;
	struct weft_task *t;

	if (!out || (len && !data))
		return -EINVAL;
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
	if (len) {
		memcpy(f->data, data, len);
		t->flags |= TF_OUTPUT;
	}
	f->len = len;
	if (f->usable) {
		f->st = NULL;
		weft__store_track(eng, f);
	}
	t->fn = NULL;
	t->nin = 0;
	/* Born ended (so closed to edges): no engine reference, nothing to schedule. */
	atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
	atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&t->sd, WT_DONE, memory_order_release);
	*out = weft__future_handle(f);
	return 0;
}

/* ---- running ---- */

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
	retire(c, t);
}

void weft__task_run(struct weft__worker *w, struct weft_task *t)
{
	struct weft_buf stack_in[STACK_INPUTS], *in = stack_in;
	struct weft_ctx ctx = { .w = w, .t = t };
	struct weft__cache *c = &w->cache;
	uint64_t s = atomic_load_explicit(&t->sd, memory_order_relaxed);
	uint32_t i;
	int rc;

	do {
		if ((s & WT_STATE_MASK) != WT_READY) {
			retire(c, t);		/* ended while queued */
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
		retire(c, t);
		return;
	}
	if (unlikely(t->nin > STACK_INPUTS)) {
		in = malloc(t->nin * sizeof(*in));
		if (!in) {
			t->flags |= TF_EXTRA;
			t->err = weft__err_new(-ENOMEM, "no memory for the inputs of a task");
			weft__task_end_cascade(c, w, t, WT_FAILED);
			retire(c, t);
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
	ctx.below = w->running;
	w->running = &ctx;
	for (;;) {
		counter_inc(&c->run);
		ctx.over_hard = 0;
		rc = t->fn(&ctx, in, t->nin, weft__task_arg(t), t->arglen);
		if (likely(!rc && !ctx.over_hard) || !t->retries)
			break;
		t->retries--;
		outputs_free(t);
		free(ctx.msg);
		ctx.msg = NULL;
	}
	w->running = ctx.below;
	unpin_inputs(t, t->nin);
	if (in != stack_in)
		free(in);
	if (unlikely(rc || ctx.over_hard)) {
		outputs_free(t);
		t->flags |= TF_EXTRA;
		t->err = ctx.over_hard ? over_hard_failure(t, ctx.over_hard)
				       : failure(t, rc, ctx.msg);
		free(ctx.msg);
		weft__task_end_cascade(c, w, t, WT_FAILED);
	} else {
		if (t->flags & TF_OUTPUT)
			track_outputs(t);
		weft__task_end_cascade(c, w, t, WT_DONE);
	}
	retire(c, t);
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
	ctx->msg = malloc(MSG_MAX + 1);
	if (ctx->msg) {
		va_start(ap, fmt);
		n = vsnprintf(ctx->msg, MSG_MAX + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			ctx->msg[0] = '\0';
	}
	return WEFT_ETASK;
}

int weft_spawn(struct weft_ctx *ctx, weft_fn *fn, struct weft_future *const *deps,
	       size_t ndeps, const void *arg, size_t arglen,
	       const struct weft_task_opts *opts, struct weft_future **out)
{
	if (!ctx)
		return -EINVAL;
	/* The usual task, no dependencies and no options: a copy with both folded. */
	if (!ndeps && !opts)
		return submit(ctx->t->eng, ctx->w, fn, NULL, 0, arg, arglen, NULL, out);
	return submit(ctx->t->eng, ctx->w, fn, deps, ndeps, arg, arglen, opts, out);
}

int weft_submit(struct weft_client *h, weft_fn *fn, struct weft_future *const *deps,
		size_t ndeps, const void *arg, size_t arglen,
		const struct weft_task_opts *opts, struct weft_future **out)
{
	struct weft_client *c;

	if (!h)
		return -EINVAL;
	c = weft__client_of(h, "weft_submit");
	if (unlikely(!c))
		return -EBADF;
	if (!ndeps && !opts)
		return submit(c->eng, weft__self(c->eng), fn, NULL, 0, arg, arglen, NULL, out);
	return submit(c->eng, weft__self(c->eng), fn, deps, ndeps, arg, arglen, opts, out);
}

/*
 * A thread that waits on the futures it submitted, in the order it submitted them,
 * meets records a constant stride apart (its cache hands out neighbours in a slab),
 * each last written by a worker long before, so every wait misses to memory; the
 * hardware does not prefetch that stride. Having released two records that far
 * apart, start the miss of the one RELEASE_AHEAD strides on. Client threads only:
 * the records near a worker's are tasks it spawned a moment ago, in cache or
 * running on another thread, whose line a prefetch for writing would take away.
 */
static inline void release_stride_prefetch(struct weft__cache *c, const struct weft_task *t)
{
	intptr_t d = (intptr_t)t - (intptr_t)c->released;

	c->released = t;
	if (d == c->release_stride && d && d >= -WEFT_STRIDE_WINDOW && d <= WEFT_STRIDE_WINDOW)
		__builtin_prefetch((const char *)t + RELEASE_AHEAD * d, 1);
	c->release_stride = d;
}

void weft_release(struct weft_future *h)
{
	struct weft__worker *w;
	struct weft__cache *c;
	struct weft_future *f;
	struct weft_task *t;

	if (!h)
		return;
	f = weft__handle_addr(h);
	if (unlikely(!weft__handle_take(h, weft__future_gen(f)))) {
		weft__handle_stale("weft_release", "future");
		return;
	}
	t = weft__future_task(f);
	if (t->eng->closed) {
		task_unref(NULL, t);
		return;
	}
	/*
	 * A weft_result view pinned the bytes. Views exist only once the task has
	 * ended, and only then are its flags settled (acquire pairs with the release
	 * of the final state); the flag keeps plain tasks on line 0.
	 */
	if (wt_final(wt_state(t, memory_order_acquire)) &&
	    unlikely(t->flags & TF_OUTPUT) && f->usable)
		weft__store_unpin(t->eng, f, true);
	output_unref(t, f);
	w = weft__self(t->eng);
	if (w) {
		/* A worker's records are fresh, and may be another worker's now. */
		task_unref(&w->cache, t);
		return;
	}
	c = weft__cache_external(t->eng);
	if (likely(c))
		release_stride_prefetch(c, t);
	task_unref(c, t);
}

/* ---- close ---- */

/*
 * After the threads have stopped: free the results of records the caller still
 * holds, and count them; the engine lives on as a husk until they are released.
 */
uint64_t weft__task_close(struct weft__engine *eng)
{
	uint64_t held = 0;
	size_t s, i;

	for (s = 0; s < eng->nslabs; s++) {
		struct weft_task *slab = eng->slabs[s];
		size_t n = weft__slab_records(s);

		for (i = 0; i < n; i++) {
			if (!atomic_load_explicit(&slab[i].refs, memory_order_acquire))
				continue;
			outputs_free(&slab[i]);
			held++;
		}
	}
	return held;
}

