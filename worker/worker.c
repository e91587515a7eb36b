// SPDX-License-Identifier: MIT
/*
 * worker.c - a node runtime behind a fabric endpoint: the fabric's callbacks (ops to
 * run.c and serve.c, peers coming and going, heartbeats), start and stop. All of
 * the worker runs on the fabric thread but the engine's end hook, which hands each
 * end over with a fabric call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TICK_MS 500			/* heartbeats */
#define INLINE_MAX_DEFAULT (8u << 10)	/* results up to this travel in messages */

void weft__wrt_finish(struct weft__wrt *w, int why)
{
	pthread_mutex_lock(&w->lock);
	if (!w->over) {
		w->over = true;
		w->why = why;
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void weft__wrt_send_sched(struct weft__wrt *w, uint16_t type, const void *op)
{
	if (w->sched)
		weft__fab_send(w->f, w->sched, type, op);
}

static void heartbeat(struct weft__wrt *w, uint64_t ask);

/*
 * The scheduler says process @id left the cluster. Its connection may not say so
 * for a long while (a killed process's does not always fail at once): dropped.
 */
static void on_left(struct weft__wrt *w, uint32_t id)
{
	struct weft__peer *p = weft__map_get(&w->peers, id);

	if (p)
		weft__fab_drop(w->f, p, -ENOLINK);
}

static void on_op(void *arg, struct weft__peer *from, uint16_t type, const void *op)
{
	struct weft__wrt *w = arg;

	switch (type) {
	case WEFT_OP_COMPUTE:
		if (from == w->sched)
			weft__wrt_on_compute(w, op);
		break;
	case WEFT_OP_PUT:
		if (from == w->sched)
			weft__wrt_on_put(w, op);
		break;
	case WEFT_OP_FREE:
		if (from == w->sched)
			weft__wrt_on_free(w, op);
		break;
	case WEFT_OP_SEND_RESULT:
		if (from == w->sched)
			weft__wrt_on_send_result(w, op);
		break;
	case WEFT_OP_STEAL:
		if (from == w->sched)
			weft__wrt_on_steal(w, op);
		break;
	case WEFT_OP_PEER:
		if (from == w->sched)
			weft__wrt_on_peer(w, op);
		break;
	case WEFT_OP_GONE:
		if (from == w->sched)
			on_left(w, ((const struct weft__op_gone *)op)->id);
		break;
	case WEFT_OP_STATS_ASK:		/* a client asks the scheduler for the totals */
		if (from == w->sched)
			heartbeat(w, ((const struct weft__op_stats_ask *)op)->id);
		break;
	case WEFT_OP_LEASE_ASK:
		weft__wrt_on_lease_ask(w, from, op);
		break;
	case WEFT_OP_LEASE:
		weft__wrt_on_lease(w, from, op);
		break;
	case WEFT_OP_UNLEASE:
		weft__wrt_lease_end(w, ((const struct weft__op_unlease *)op)->lease);
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
		weft__wrt_finish(w, why);
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
			weft__wrt_fetch_end(w, fe, NULL, -ENOLINK);
			i = 0;
		}
	}
	/* Its leases on our results end: it will not read them, nor say it is done. */
	for (i = 0; weft__map_next(&w->leases, &i, &id, &v);)
		if (((struct lease *)v)->reader == p) {
			weft__wrt_lease_end(w, id);
			i = 0;
		}
}

/* What this worker's engine holds and has done, to the scheduler: @ask 0 on a tick. */
static void heartbeat(struct weft__wrt *w, uint64_t ask)
{
	struct weft_stats st = { .size = sizeof(st) };
	struct weft__op_heartbeat hb;

	if (!w->sched || weft_stats(w->c, &st))
		return;
	hb = (struct weft__op_heartbeat){
		.mem_used = st.mem_bytes, .mem_limit = st.mem_limit,
		.spilled = st.spilled_bytes, .restored = st.restored_bytes,
		.queued = w->running, .running = st.tasks_running, .tasks_run = st.tasks_run,
		.paused = (uint8_t)st.paused, .ask = ask, .mem_target = st.mem_target,
		.mem_pause = st.mem_pause, .spill_blocked = (uint8_t)st.spill_blocked,
	};
	weft__wrt_send_sched(w, WEFT_OP_HEARTBEAT, &hb);
}

static void on_tick(void *arg, int64_t now)
{
	struct weft__wrt *w = arg;

	if (w->sched && weft__fab_silent(&w->sched_heard, w->sched, now, WEFT_PROTO_SILENT_NS)) {
		weft__log(WEFT_LOG_ERROR, "worker", "the scheduler sent nothing for %lld s: "
			  "taken for gone", WEFT_PROTO_SILENT_NS / 1000000000);
		weft__fab_drop(w->f, w->sched, -ETIMEDOUT);	/* ends the worker */
		return;
	}
	heartbeat(w, 0);
	weft__wrt_record_send(w);
	/* The room a burst of tasks took, back (between ops: no walk is under way). */
	weft__map_shrink(&w->tasks);
	weft__map_shrink(&w->by_future);
	weft__map_shrink(&w->fetches);
	weft__map_shrink(&w->leases);
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
		weft__wrt_finish(cc->w, cc->ret);
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
	/* Keyed by the scheduler's task ids, and our own request and lease counters. */
	w->tasks.ids = w->fetches.ids = w->leases.ids = true;
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
	weft__engine_set_end_hook(w->eng, weft__wrt_end_hook, w);
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

const char *weft__worker_url(const struct weft__wrt *w)
{
	return weft__fab_url(w->f);
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
	weft__wrt_finish(w, 0);
}

void weft__worker_abandon(struct weft__wrt *w)
{
	weft__fab_stop(w->f);
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
		weft__wrt_result_unpin(w, ls->t->outs[ls->output]);
		free(ls);
	}
	for (i = 0; weft__map_next(&w->fetches, &i, &k, &v);)
		free(v);
	while (w->tasks.len) {
		i = 0;
		if (!weft__map_next(&w->tasks, &i, &k, &v))
			break;
		weft__wrt_rtask_free(w, v);
	}
	weft_client_close(w->c);
	weft__map_free(&w->tasks);
	weft__map_free(&w->by_future);
	weft__map_free(&w->peers);
	weft__map_free(&w->fetches);
	weft__map_free(&w->leases);
	weft__wrt_record_free(w);
	free(w);
}
