// SPDX-License-Identifier: MIT
/*
 * futures.c - weft.h's calls on a remote client's tasks and futures: submit
 * (encoded on the caller's thread, sent by the fabric thread), scatter, stats,
 * and waiting on, reading, cancelling and releasing futures, under the client's
 * lock as the fabric thread records what comes back.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---- tasks ---- */

static void rtask_drop(struct rtask *t);

static struct rtask *rtask_new(struct rclient *rc, uint32_t noutputs)
{
	struct rtask *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->rc = rc;
	t->noutputs = t->live = noutputs;
	t->outs = &t->out1;
	if (noutputs > 1 && !(t->outs = calloc(noutputs, sizeof(*t->outs)))) {
		free(t);
		return NULL;
	}
	pthread_mutex_lock(&rc->lock);
	t->key = ++rc->next_key;
	if (weft__map_put(&rc->tasks, t->key, t)) {
		pthread_mutex_unlock(&rc->lock);
		if (t->outs != &t->out1)
			free(t->outs);
		free(t);
		return NULL;
	}
	rc->live++;
	pthread_mutex_unlock(&rc->lock);
	for (uint32_t i = 0; i < noutputs; i++) {
		t->outs[i].t = t;
		t->outs[i].i = i;
		if (weft__rc_handle_add(&t->outs[i], &t->outs[i].gen)) {
			rtask_drop(t);
			return NULL;
		}
	}
	return t;
}

/* The caller's futures of @t: written only once the task is on its way. */
static void rtask_give(struct rtask *t, struct weft_future **out)
{
	for (uint32_t i = 0; i < t->noutputs; i++)
		out[i] = handle_of(&t->outs[i]);
}

/* Undo rtask_new for a task whose op could not be sent. */
static void rtask_drop(struct rtask *t)
{
	struct rclient *rc = t->rc;

	pthread_mutex_lock(&rc->lock);
	weft__map_del(&rc->tasks, t->key);
	rc->live--;
	pthread_mutex_unlock(&rc->lock);
	weft__rc_rtask_free(t);
}

/* @h as a live future of @rc (or any client, @rc NULL), or NULL. */
static struct rout *live_out(struct weft_future *h, struct rclient *rc, const char *call)
{
	struct rout *o;

	if (!weft__is_remote(h))
		return NULL;
	if (!weft__rc_handle_live(h)) {
		weft__handle_stale(call, "future");
		return NULL;
	}
	o = out_of(h);
	if (o->released || (rc && o->t->rc != rc)) {
		weft__handle_stale(call, "future");
		return NULL;
	}
	return o;
}

/* Whether @h is a client open now; a stale or closed one is logged as @call's. */
static bool live_client(struct weft_client *h, const char *call)
{
	if (weft__rc_handle_live(h) && !rc_of(h)->closed)
		return true;
	weft__handle_stale(call, "client");
	return false;
}

static const char *name_of(weft_fn *fn, char *buf, size_t len)
{
	const char *name = weft__registry_name(fn);
	Dl_info info;

	if (name)
		return name;
	if (dladdr((void *)fn, &info) && info.dli_sname)
		return info.dli_sname;
	snprintf(buf, len, "%p", (void *)fn);
	return NULL;
}

/*
 * A task with an input known to have failed or been cancelled ends so at once, with
 * that input's message, as in an engine; the scheduler is told all the same and
 * ends it too (its ENDED then finds it ended).
 */
static void inherit_end(struct rclient *rc, struct rtask *t, struct weft_future *const *deps,
			size_t ndeps)
{
	pthread_mutex_lock(&rc->lock);
	for (size_t i = 0; i < ndeps; i++) {
		const struct rtask *d = out_of(deps[i])->t;

		if (d->end != ENDED_FAILED && d->end != ENDED_CANCELLED)
			continue;
		t->end = d->end;
		t->code = d->code;
		t->msg = d->msg ? strdup(d->msg) : NULL;
		break;
	}
	pthread_mutex_unlock(&rc->lock);
}

int weft__remote_submit(struct weft_client *h, weft_fn *fn, const char *name,
			struct weft_future *const *deps, size_t ndeps, const void *arg,
			size_t arglen, const struct weft_task_opts *opts,
			struct weft_future **out)
{
	struct rclient *rc = rc_of(h);
	struct weft_task_opts o = { .size = sizeof(o) };
	struct weft__pdep stack[16], *d = stack;
	struct weft__op_submit op = { 0 };
	char buf[32];
	struct rtask *t;
	long size;
	int ret;

	if (!live_client(h, "weft_submit"))
		return -EBADF;
	if ((!fn && !name) || !out || (arglen && !arg) || (ndeps && !deps))
		return -EINVAL;
	if (opts) {
		if (opts->size < offsetof(struct weft_task_opts, noutputs) + sizeof(unsigned) ||
		    opts->size > WEFT_OPTS_MAX_SIZE)
			return -EINVAL;
		memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
	}
	if (o.noutputs > WEFT_MAX_OUTPUTS || arglen > WEFT_MAX_ARG)
		return -EINVAL;
	if (ndeps > WEFT_PROTO_MAX_DEPS)
		return -EMSGSIZE;
	if (!name && !(name = name_of(fn, buf, sizeof(buf)))) {
		weft__log(WEFT_LOG_ERROR, "client", "task function %s has no name workers know: "
			  "register it (WEFT_TASK, weft_register) or export it", buf);
		return -EINVAL;
	}
	if (rc->over)
		return -ENOTCONN;	/* the scheduler is gone (a closed client: above) */
	if (ndeps > 16 && !(d = malloc(ndeps * sizeof(*d))))
		return -ENOMEM;
	for (size_t i = 0; i < ndeps; i++) {
		struct rout *in;

		/* Another client's future, or an engine's, is not one of ours. */
		if (!deps[i] || !weft__is_remote(deps[i])) {
			ret = -EINVAL;
			goto out;
		}
		in = live_out(deps[i], NULL, "weft_submit");
		if (!in) {
			ret = -EBADF;
			goto out;
		}
		if (in->t->rc != rc) {
			ret = -EINVAL;
			goto out;
		}
		d[i] = (struct weft__pdep){ in->t->key, in->i };
	}
	op = (struct weft__op_submit){
		.fn = weft__pbytes_of(name, strlen(name)),
		.label = weft__pbytes_of(o.label ? o.label : "", o.label ? strlen(o.label) : 0),
		.worker = weft__pbytes_of(o.worker ? o.worker : "", o.worker ? strlen(o.worker) : 0),
		.arg = weft__pbytes_of(arg, arglen), .noutputs = o.noutputs ? o.noutputs : 1,
		.priority = o.priority, .retries = o.retries,
		.deps = { .n = (uint32_t)ndeps, .items = d },
	};
	/* The op, and the scheduler's COMPUTE made of it, must fit what PARTs carry. */
	size = weft__op_size(WEFT_OP_SUBMIT, &op);
	if (size < 0) {
		ret = (int)size;
		goto out;
	}
	if (size + COMPUTE_PER_DEP * (long)ndeps > (long)WEFT_PROTO_MAX_OP) {
		ret = -EMSGSIZE;
		goto out;
	}
	t = rtask_new(rc, op.noutputs);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	op.key = t->key;
	inherit_end(rc, t, deps, ndeps);
	ret = weft__rc_post(rc, WEFT_OP_SUBMIT, &op, NULL);
	if (ret)
		rtask_drop(t);
	else
		rtask_give(t, out);
out:
	if (d != stack)
		free(d);
	return ret;
}

static int wait_end(struct rclient *rc, struct rtask *t, int64_t deadline);

int weft__remote_scatter(struct weft_client *h, const void *data, size_t len,
			 struct weft_future **out)
{
	struct rclient *rc = rc_of(h);
	struct rtask *t;
	int ret = 0;

	if (!live_client(h, "weft_scatter"))
		return -EBADF;
	if (!out || (len && !data))
		return -EINVAL;
	if (rc->over)
		return -ENOTCONN;	/* the scheduler is gone (a closed client: above) */
	t = rtask_new(rc, 1);
	if (!t)
		return -ENOMEM;
	for (size_t off = 0; !ret && (off < len || !off); off += SCATTER_PIECE) {
		size_t n = len - off < SCATTER_PIECE ? len - off : SCATTER_PIECE;
		struct weft__op_piece p = { t->key, 0, len, off,
					    weft__pbytes_of((const uint8_t *)data + off, n) };

		ret = weft__rc_post(rc, WEFT_OP_SCATTER, &p, NULL);
		if (!len)
			break;
	}
	/* As in an engine, the data is there when the call returns (or it failed). */
	if (!ret) {
		pthread_mutex_lock(&rc->lock);
		ret = wait_end(rc, t, 0);
		pthread_mutex_unlock(&rc->lock);
	}
	if (ret)
		weft__remote_release(handle_of(&t->out1));	/* the scheduler frees what went */
	else
		rtask_give(t, out);
	return ret;
}

int weft__remote_stats(struct weft_client *h, struct weft_stats *st)
{
	struct rclient *rc = rc_of(h);
	struct weft_stats s = { .size = sizeof(s) };
	struct weft__op_stats_ask ask;
	int64_t deadline = weft__mono_ns() + JOIN_NS;
	size_t size;
	int ret;

	if (!live_client(h, "weft_stats"))
		return -EBADF;
	if (!st || st->size < sizeof(size_t))
		return -EINVAL;
	pthread_mutex_lock(&rc->lock);
	ask.id = ++rc->stats_id;
	pthread_mutex_unlock(&rc->lock);
	ret = weft__rc_post(rc, WEFT_OP_STATS_ASK, &ask, NULL);
	if (ret)
		return ret;
	pthread_mutex_lock(&rc->lock);
	while (rc->stats_got < ask.id && !rc->over && weft__rc_wait_until(rc, deadline) != ETIMEDOUT)
		;
	ret = rc->stats_got >= ask.id ? 0 : rc->over ? rc->why : -ETIMEDOUT;
	s.nthreads = (unsigned)rc->stats[WEFT_STAT_THREADS].value;
	s.nnuma = 1;
	s.tasks_run = rc->stats[WEFT_STAT_TASKS_RUN].value;
	s.tasks_failed = rc->stats[WEFT_STAT_TASKS_FAILED].value;
	s.tasks_cancelled = rc->stats[WEFT_STAT_TASKS_CANCELLED].value;
	s.mem_bytes = rc->stats[WEFT_STAT_MEM_USED].value;
	s.mem_limit = rc->stats[WEFT_STAT_MEM_LIMIT].value;
	s.spilled_bytes = rc->stats[WEFT_STAT_SPILLED].value;
	s.restored_bytes = rc->stats[WEFT_STAT_RESTORED].value;
	s.steals = rc->stats[WEFT_STAT_STEALS].value;
	s.tasks_pending = rc->stats[WEFT_STAT_TASKS_PENDING].value;
	s.tasks_running = (unsigned)rc->stats[WEFT_STAT_TASKS_RUNNING].value;
	pthread_mutex_unlock(&rc->lock);
	if (ret)
		return ret;
	size = st->size < sizeof(s) ? st->size : sizeof(s);
	memcpy(st, &s, size);
	st->size = size;
	return 0;
}

/* ---- futures ---- */

static int status(const struct rtask *t)
{
	return t->end == ENDED_DONE ? 0 : t->end == ENDED_CANCELLED ? -ECANCELED : t->code;
}

/* Wait under rc->lock until @t ends, the connection does, or @deadline (0: never). */
static int wait_end(struct rclient *rc, struct rtask *t, int64_t deadline)
{
	while (t->end == PENDING && !rc->over) {
		if (!deadline)
			pthread_cond_wait(&rc->cond, &rc->lock);
		else if (weft__rc_wait_until(rc, deadline) == ETIMEDOUT)
			return -ETIMEDOUT;
	}
	return t->end == PENDING ? rc->why : status(t);
}

static int64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? 0 : weft__mono_ns() + (timeout_ns ? timeout_ns : 1);
}

int weft__remote_wait(struct weft_future *h, int64_t timeout_ns)
{
	struct rout *o = live_out(h, NULL, "weft_wait");
	struct rclient *rc;
	int ret;

	if (!o)
		return -EBADF;
	rc = o->t->rc;
	pthread_mutex_lock(&rc->lock);
	ret = wait_end(rc, o->t, deadline_of(timeout_ns));
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

int weft__remote_wait_any(struct weft_future *const *fs, size_t n, int64_t timeout_ns)
{
	int64_t deadline = deadline_of(timeout_ns);
	struct rclient *rc = NULL;
	int ret = -ETIMEDOUT;

	for (size_t i = 0; i < n; i++) {
		struct rout *o = live_out(fs[i], rc, "weft_wait_any");

		if (!o)
			return weft__is_remote(fs[i]) ? -EBADF : -EINVAL;
		rc = o->t->rc;
	}
	pthread_mutex_lock(&rc->lock);
	for (;;) {
		for (size_t i = 0; i < n; i++)
			if (out_of(fs[i])->t->end != PENDING) {
				ret = (int)i;
				goto out;
			}
		if (rc->over) {
			ret = rc->why;
			break;
		}
		if (!deadline)
			pthread_cond_wait(&rc->cond, &rc->lock);
		else if (weft__rc_wait_until(rc, deadline) == ETIMEDOUT)
			break;
	}
out:
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

int weft__remote_result(struct weft_future *h, struct weft_buf *out)
{
	struct rout *o = live_out(h, NULL, "weft_result");
	struct weft__op_future want;
	struct rclient *rc;
	int ret;

	if (!o)
		return -EBADF;
	if (!out)
		return -EINVAL;
	rc = o->t->rc;
	pthread_mutex_lock(&rc->lock);
	ret = wait_end(rc, o->t, 0);
	if (ret || o->have)
		goto view;
	if (rc->closed) {
		ret = -ESHUTDOWN;
		goto view;
	}
	if (!o->asked) {
		o->asked = true;
		want = (struct weft__op_future){ o->t->key, o->i, WEFT_WANT_RESULT };
		pthread_mutex_unlock(&rc->lock);
		ret = weft__rc_post(rc, WEFT_OP_WANT, &want, NULL);
		pthread_mutex_lock(&rc->lock);
		if (ret) {
			o->asked = false;
			goto view;
		}
	}
	while (!o->have && !o->err && !rc->over)
		pthread_cond_wait(&rc->cond, &rc->lock);
	ret = o->have ? 0 : o->err ? o->err : rc->why;
view:
	if (!ret) {	/* a view is written on success only, as in an engine */
		out->data = o->len ? o->data : NULL;
		out->len = o->len;
	}
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

const char *weft__remote_error(struct weft_future *h)
{
	struct rout *o = live_out(h, NULL, "weft_future_error");
	const char *msg = NULL;

	if (!o)
		return WEFT_STALE_FUTURE_MSG;
	pthread_mutex_lock(&o->t->rc->lock);
	if (o->t->end == ENDED_FAILED || o->t->end == ENDED_CANCELLED)
		msg = o->t->msg ? o->t->msg : weft_strerror(status(o->t));
	pthread_mutex_unlock(&o->t->rc->lock);
	return msg;
}

int weft__remote_cancel(struct weft_future *h)
{
	struct rout *o = live_out(h, NULL, "weft_cancel");
	struct weft__op_future c;
	struct rclient *rc;
	uint32_t ticket;
	struct rtask *t;
	int ret;

	if (!o)
		return -EBADF;
	rc = o->t->rc;
	if (rc->closed)
		return -ESHUTDOWN;
	/*
	 * The scheduler answers: 0 when the task will never run (not placed, or given
	 * back by the worker it was sent to before it started), else -EBUSY or
	 * -EALREADY. Answers come in the order they were asked.
	 */
	t = o->t;
	pthread_mutex_lock(&rc->lock);
	if (t->end != PENDING) {
		pthread_mutex_unlock(&rc->lock);
		return -EALREADY;
	}
	ticket = ++t->cancels_asked;
	pthread_mutex_unlock(&rc->lock);
	c = (struct weft__op_future){ t->key, o->i, 0 };
	ret = weft__rc_post(rc, WEFT_OP_CANCEL, &c, NULL);
	pthread_mutex_lock(&rc->lock);
	if (ret) {
		t->cancels_asked--;
	} else {
		while (t->cancels_heard < ticket && !rc->over)
			pthread_cond_wait(&rc->cond, &rc->lock);
		ret = t->cancels_heard < ticket ? rc->why : t->cancel_code;
	}
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

void weft__remote_release(struct weft_future *h)
{
	struct rout *o = live_out(h, NULL, "weft_release");
	struct weft__op_future r;
	struct rclient *rc;
	struct rtask *t;
	bool last, gone;

	if (!o)
		return;
	t = o->t;
	rc = t->rc;
	pthread_mutex_lock(&rc->lock);
	o->released = true;
	last = !--t->live;
	gone = rc->closed;
	pthread_mutex_unlock(&rc->lock);
	if (gone) {
		/* No fabric thread: the task is ours to free, and the husk with it. */
		if (!last)
			return;
		pthread_mutex_lock(&rc->lock);
		weft__map_del(&rc->tasks, t->key);
		last = !--rc->live;
		pthread_mutex_unlock(&rc->lock);
		weft__rc_rtask_free(t);
		if (last)
			weft__rc_rclient_free(rc);
		return;
	}
	r = (struct weft__op_future){ t->key, o->i, 0 };
	/* The bytes go on the fabric thread, which may be writing them still. */
	if (weft__rc_post(rc, WEFT_OP_RELEASE, &r, last ? t : NULL))
		weft__log(WEFT_LOG_ERROR, "client", "no memory to release a future");
}
