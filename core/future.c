// SPDX-License-Identifier: MIT
/*
 * future.c - what a future's holder can do but release it: wait for one or for
 * any of several (helping inside a task, blocking outside), view its result, ask
 * why it failed, cancel its task; and the check that refuses a wait that could
 * never end (-EDEADLK).
 */
#include <errno.h>
#include <stdint.h>

#include "record.h"
#include "remote.h"

#define RELEASE_AHEAD 32		/* strides ahead that weft_release prefetches */

static int status_of(struct weft_task *t, uint32_t s)
{
	return (s & WT_STATE_MASK) == WT_DONE ? 0 : t->err->code;
}

static bool task_ended(void *arg, bool mark)
{
	struct weft_task *t = arg;
	uint32_t s;

	/* Acquire pairs with the release exchange in end_one. */
	if (mark)
		s = (uint32_t)(atomic_fetch_or_explicit(&t->sd, WT_WAITER, memory_order_acq_rel) &
			       WT_BITS);
	else
		s = wt_state(t, memory_order_acquire);
	return wt_final(s);
}

static int64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? -1 : weft__mono_ns() + timeout_ns;
}

static bool is_output_of(const struct weft_task *s, const struct weft_future *f)
{
	const char *p = (const char *)f, *out = (const char *)s->out;

	if (s->noutputs == 1)
		return f == &s->out1;
	return p >= out && p < out + (size_t)s->noutputs * WEFT_OUT_STRIDE;
}

/*
 * Would a wait by this worker on @t never end? It would not end while @t is a task
 * this thread is running: the caller, or one whose wait the caller interrupted (it
 * resumes only once the caller returns); nor while @t is a direct dependent of one
 * of them. Longer cycles go unseen: following them would read records that other
 * threads may free meanwhile. @t is alive (the caller's future), so its
 * inputs, written before it was published, are stable; they are compared by
 * address, never read through.
 *
 * The state comes first: the child a fork-join task waits on is usually queued,
 * and a queued task is in no cycle, so the common wait never walks the thread's
 * chain of nested tasks, which is as deep as the recursion.
 */
static bool waits_on_itself(const struct weft__worker *w, struct weft_task *t)
{
	uint32_t s = wt_state(t, memory_order_relaxed) & WT_STATE_MASK;
	const struct weft_ctx *x;
	uint32_t i;

	if (s != WT_RUNNING && s != WT_WAITING)
		return false;
	for (x = w->running; x; x = x->below) {
		if (s == WT_RUNNING) {
			if (x->t == t)
				return true;
			continue;
		}
		for (i = 0; i < t->nin; i++)
			if (is_output_of(x->t, t->in[i]))
				return true;
	}
	return false;
}

static bool task_stuck(const struct weft__worker *w, void *arg)
{
	return waits_on_itself(w, arg);
}

static int wait_until(struct weft__engine *eng, bool (*done)(void *, bool),
		      bool (*stuck)(const struct weft__worker *, void *), void *arg,
		      int64_t timeout_ns)
{
	struct weft__worker *w;

	if (done(arg, false))
		return 0;
	if (!timeout_ns)
		return -ETIMEDOUT;
	w = weft__self(eng);
	if (w)
		return weft__engine_help(w, done, stuck, arg, deadline_of(timeout_ns));
	return weft__engine_block(eng, done, arg, deadline_of(timeout_ns));
}

static __always_inline int wait_one(struct weft_future *f, int64_t timeout_ns)
{
	struct weft_task *t = weft__future_task(f);
	uint32_t s;
	int ret;

	/*
	 * Ended already, as most are by the time they are waited on. Acquire pairs
	 * with the release exchange in end_one.
	 */
	s = wt_state(t, memory_order_acquire);
	if (likely(wt_final(s)))
		return status_of(t, s);
	if (!t->eng->closed) {
		ret = wait_until(t->eng, task_ended, task_stuck, t, timeout_ns);
		if (ret)
			return ret;
	}
	return status_of(t, wt_state(t, memory_order_acquire));
}

int weft_wait(struct weft_future *h, int64_t timeout_ns)
{
	struct weft_future *f;

	if (weft__is_remote(h))
		return weft__remote_wait(h, timeout_ns);
	if (!h)
		return -EINVAL;
	f = weft__future_of(h, "weft_wait");
	if (unlikely(!f))
		return -EBADF;
	return wait_one(f, timeout_ns);
}

struct any_arg {
	struct weft_future *const *fs;
	size_t n;
	size_t found;
};

static bool any_ended(void *arg, bool mark)
{
	struct any_arg *a = arg;
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (task_ended(weft__future_task(weft__handle_addr(a->fs[i])), mark)) {
			a->found = i;
			return true;
		}
	}
	return false;
}

/* Every one of the futures is in a cycle with this thread's tasks. */
static bool any_stuck(const struct weft__worker *w, void *arg)
{
	struct any_arg *a = arg;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (!waits_on_itself(w, weft__future_task(weft__handle_addr(a->fs[i]))))
			return false;
	return true;
}

int weft_wait_any(struct weft_future *const *fs, size_t n, int64_t timeout_ns)
{
	struct any_arg a = { .fs = fs, .n = n };
	struct weft__engine *eng;
	size_t i;
	int ret;

	if (fs && n && weft__is_remote(fs[0]))
		return weft__remote_wait_any(fs, n, timeout_ns);
	if (!fs || !n || n > INT32_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!fs[i] || weft__is_remote(fs[i]))
			return -EINVAL;		/* a cluster's future among an engine's */
		if (!weft__future_of(fs[i], "weft_wait_any"))
			return -EBADF;
	}
	eng = weft__future_task(weft__handle_addr(fs[0]))->eng;
	for (i = 1; i < n; i++)
		if (weft__future_task(weft__handle_addr(fs[i]))->eng != eng)
			return -EINVAL;
	if (eng->closed)
		return 0;		/* everything ended at close */
	ret = wait_until(eng, any_ended, any_stuck, &a, timeout_ns);
	return ret ? ret : (int)a.found;
}

int weft_result(struct weft_future *h, struct weft_buf *out)
{
	struct weft_future *f;
	struct weft_task *t;
	int ret;

	if (weft__is_remote(h))
		return weft__remote_result(h, out);
	if (!h || !out)
		return -EINVAL;
	f = weft__future_of(h, "weft_result");
	if (unlikely(!f))
		return -EBADF;
	ret = wait_one(f, -1);
	if (ret)
		return ret;
	t = weft__future_task(f);
	if (t->eng->closed)
		return -ESHUTDOWN;
	/* The view pins the bytes in memory until the future is released. */
	if (unlikely(f->usable)) {
		ret = weft__store_pin(t->eng, f, true);
		if (ret)
			return ret;
	}
	out->data = f->len ? f->data : NULL;
	out->len = f->len;
	return 0;
}

const char *weft_future_error(struct weft_future *h)
{
	struct weft_future *f;
	struct weft_task *t;
	uint32_t s;

	if (weft__is_remote(h))
		return weft__remote_error(h);
	if (!h)
		return NULL;
	f = weft__future_of(h, "weft_future_error");
	if (!f)
		return WEFT_STALE_FUTURE_MSG;
	t = weft__future_task(f);
	s = wt_state(t, memory_order_acquire);
	if (!wt_final(s))
		return t->eng->closed ? NULL : weft__store_blocked(t->eng);
	if ((s & WT_STATE_MASK) == WT_DONE)
		return NULL;
	return t->err->msg;
}

int weft_cancel(struct weft_future *h)
{
	struct weft_future *f;
	struct weft__err *err;
	struct weft__cache *c;
	struct weft_task *t;
	char buf[64];
	uint32_t s;

	if (weft__is_remote(h))
		return weft__remote_cancel(h);
	if (!h)
		return -EINVAL;
	f = weft__future_of(h, "weft_cancel");
	if (!f)
		return -EBADF;
	t = weft__future_task(f);
	if (t->eng->closed)
		return -ESHUTDOWN;
	s = wt_state(t, memory_order_acquire) & WT_STATE_MASK;
	if (s == WT_RUNNING)
		return -EBUSY;
	if (s > WT_RUNNING)
		return -EALREADY;
	c = weft__cache_self(t->eng);
	if (!c)
		return -ENOMEM;
	err = weft__err_new(-ECANCELED, "task '%s' was cancelled",
		      weft__task_label(t, buf, sizeof(buf)));
	if (!weft__task_claim(t, err)) {
		weft__err_put(err);
		s = wt_state(t, memory_order_acquire) & WT_STATE_MASK;
		return s == WT_RUNNING ? -EBUSY : -EALREADY;
	}
	weft__err_put(err);
	/* The caller's future keeps t alive while it ends. */
	weft__task_end_cascade(c, weft__self(t->eng), t, WT_CANCELLED);
	return 0;
}

/* ---- release ---- */

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

	if (unlikely(weft__is_remote(h))) {
		weft__remote_release(h);
		return;
	}
	if (!h)
		return;
	f = weft__handle_addr(h);
	if (unlikely(!weft__handle_take(h, weft__future_gen(f)))) {
		weft__handle_stale("weft_release", "future");
		return;
	}
	t = weft__future_task(f);
	if (t->eng->closed) {
		weft__task_unref(NULL, t);
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
	weft__output_unref(t, f);
	w = weft__self(t->eng);
	if (w) {
		/* A worker's records are fresh, and may be another worker's now. */
		weft__task_unref(&w->cache, t);
		return;
	}
	c = weft__cache_external(t->eng);
	if (likely(c))
		release_stride_prefetch(c, t);
	weft__task_unref(c, t);
}
