// SPDX-License-Identifier: MIT
/*
 * views.c - weft_report, weft_trace and weft_workers for a client of a cluster: the
 * scheduler renders the report or the trace of what its workers recorded and sends
 * the file's bytes (VIEW_ASK, VIEW), and lists its workers (WORKERS_ASK, WORKERS).
 * One such question at a time per client: a caller waits for the one before.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define VIEW_NS (30 * NSEC_PER_SEC)		/* a large cluster's report takes a while */

int weft__remote_live(struct weft_client *h, const char *call)
{
	if (weft__rc_handle_live(h) && !rc_of(h)->closed)
		return 0;
	weft__handle_stale(call, "client");
	return -EBADF;
}

/* Wait under rc->lock for the question slot; false if the connection ended. */
static bool ask_begin(struct rclient *rc)
{
	while (rc->asking && !rc->over)
		pthread_cond_wait(&rc->cond, &rc->lock);
	if (rc->over)
		return false;
	rc->asking = true;
	return true;
}

static void ask_end(struct rclient *rc)
{
	rc->asking = false;
	free(rc->answer);
	rc->answer = NULL;
	rc->answer_len = 0;
	pthread_cond_broadcast(&rc->cond);
}

/*
 * Ask the scheduler @type (its id set in *@id here), wait for the answer (at most
 * @ns), and hand it to @take under rc->lock: 0 and what @take returned, or a
 * negative errno (the connection ended, no answer in time, the scheduler's).
 */
static int ask(struct rclient *rc, uint16_t type, void *op, uint64_t *id, int64_t ns,
	       int (*take)(struct rclient *rc, void *arg), void *arg)
{
	int64_t deadline = weft__mono_ns() + ns;
	int ret;

	pthread_mutex_lock(&rc->lock);
	if (!ask_begin(rc)) {
		ret = rc->why ?: -ENOTCONN;
		pthread_mutex_unlock(&rc->lock);
		return ret;
	}
	*id = ++rc->ask_seq;
	rc->answer_id = 0;
	pthread_mutex_unlock(&rc->lock);
	ret = weft__rc_post(rc, type, op, NULL);
	pthread_mutex_lock(&rc->lock);
	while (!ret && rc->answer_id != *id && !rc->over &&
	       weft__rc_wait_until(rc, deadline) != ETIMEDOUT)
		;
	if (!ret)
		ret = rc->answer_id == *id ? rc->answer_code : rc->over ? rc->why : -ETIMEDOUT;
	if (!ret)
		ret = take(rc, arg);
	ask_end(rc);
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

struct view_out {
	void **data;
	size_t *len;
};

static int take_view(struct rclient *rc, void *arg)
{
	struct view_out *o = arg;

	*o->data = rc->answer;		/* the caller's now */
	*o->len = rc->answer_len;
	rc->answer = NULL;
	return 0;
}

int weft__remote_view(struct weft_client *h, int kind, void **data, size_t *len)
{
	struct weft__op_view_ask a = { .kind = (uint8_t)kind };
	struct view_out o = { data, len };

	return ask(rc_of(h), WEFT_OP_VIEW_ASK, &a, &a.id, VIEW_NS, take_view, &o);
}

struct workers_out {
	struct weft_worker_info *out;
	size_t n;
};

/* The answer's list, kept as it came: its items decoded again here. */
static int take_workers(struct rclient *rc, void *arg)
{
	struct workers_out *o = arg;
	size_t stride = o->n ? o->out[0].size : 0, i = 0;
	struct weft__plist list = rc->answer_list;
	struct weft__plist_iter it;
	struct weft__pworker w;

	list.raw = rc->answer;
	weft__plist_iter_init(&it, &list);
	for (; weft__plist_next(&it, &w); i++) {
		struct weft_worker_info v = {
			.size = stride < sizeof(v) ? stride : sizeof(v),
			.nthreads = w.nthreads, .tasks_run = w.tasks_run,
			.tasks_queued = w.queued, .tasks_running = w.running,
			.mem_bytes = w.mem_used, .mem_limit = w.mem_limit,
			.spilled_bytes = w.spilled, .restored_bytes = w.restored,
			.bytes_received = w.bytes_in, .bytes_sent = w.bytes_out,
			.paused = w.paused };

		if (i >= o->n)
			continue;
		weft__pbytes_str(v.name, sizeof(v.name), w.name);
		memcpy((char *)o->out + i * stride, &v, v.size);
	}
	return i > INT32_MAX ? INT32_MAX : (int)i;
}

int weft__remote_workers(struct weft_client *h, struct weft_worker_info *out, size_t n)
{
	struct weft__op_stats_ask a;
	struct workers_out o = { out, n };

	return ask(rc_of(h), WEFT_OP_WORKERS_ASK, &a, &a.id, JOIN_NS, take_workers, &o);
}

/*
 * On the fabric thread: an answer's bytes, kept for the asker if it is the
 * question asked now (copied: the message goes once this returns).
 */
static void keep_answer(struct rclient *rc, uint64_t id, int code, const void *bytes,
			size_t len, const struct weft__plist *list)
{
	void *copy = len ? malloc(len) : NULL;

	if (copy)
		memcpy(copy, bytes, len);
	pthread_mutex_lock(&rc->lock);
	if (rc->asking && id == rc->ask_seq) {
		free(rc->answer);
		rc->answer = copy;
		rc->answer_len = len;
		if (list)
			rc->answer_list = *list;
		rc->answer_code = code ?: (len && !copy ? -ENOMEM : 0);
		rc->answer_id = id;
		copy = NULL;
		pthread_cond_broadcast(&rc->cond);
	}
	pthread_mutex_unlock(&rc->lock);
	free(copy);
}

void weft__rc_on_view(struct rclient *rc, const struct weft__op_view *v)
{
	keep_answer(rc, v->id, v->code, v->data.p, v->data.len, NULL);
}

/* A WORKERS' list is kept as it came, its items decoded by the asker. */
void weft__rc_on_workers(struct rclient *rc, const struct weft__op_workers *w)
{
	keep_answer(rc, w->id, 0, w->workers.raw, w->workers.len, &w->workers);
}
