// SPDX-License-Identifier: MIT
/*
 * remote.c - weft.h for a client of a cluster. A call encodes its op on the
 * caller's thread and hands the bytes to the fabric thread (a fabric call), which
 * batches them to the scheduler. What comes back (a task's end from the
 * scheduler, its result's bytes from the worker that holds them, inline or by a
 * lease and an RMA read) is recorded under the client's lock, and waiters wake.
 *
 * A future names an output of a task by the client's key for the task; results
 * come to the client only when weft_result asks for them. Releasing a future tells
 * the scheduler, which frees the result on its worker when nothing else needs it.
 * Here: the fabric thread's side, open and close; the calls on futures: futures.c.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---- handles ---- */

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft__map handles;	/* address -> its generation | HANDLE_LIVE */
static uint16_t handles_gen;
#define HANDLE_LIVE 0x10000u		/* so that no entry is NULL */

int weft__rc_handle_add(const void *p, uint16_t *gen)
{
	int ret;

	pthread_mutex_lock(&handles_lock);
	*gen = ++handles_gen;
	ret = weft__map_put(&handles, (uintptr_t)p, (void *)(uintptr_t)(*gen | HANDLE_LIVE));
	pthread_mutex_unlock(&handles_lock);
	return ret;
}

void weft__rc_handle_del(const void *p)
{
	pthread_mutex_lock(&handles_lock);
	weft__map_del(&handles, (uintptr_t)p);
	pthread_mutex_unlock(&handles_lock);
}

bool weft__rc_handle_live(const void *h)
{
	uintptr_t v;

	pthread_mutex_lock(&handles_lock);
	v = (uintptr_t)weft__map_get(&handles, HANDLE_ADDR(h));
	pthread_mutex_unlock(&handles_lock);
	return v && (uint16_t)v == (uint16_t)((uintptr_t)h >> HANDLE_GEN_SHIFT);
}

void weft__rc_rtask_free(struct rtask *t)
{
	for (uint32_t i = 0; i < t->noutputs; i++) {
		weft__rc_handle_del(&t->outs[i]);
		free(t->outs[i].data);
	}
	if (t->outs != &t->out1)
		free(t->outs);
	free(t->msg);
	free(t);
}

void weft__rc_rclient_free(struct rclient *rc)
{
	weft__rc_handle_del(rc);
	weft__map_free(&rc->tasks);
	free(rc->answer);
	pthread_mutex_destroy(&rc->lock);
	pthread_cond_destroy(&rc->cond);
	free(rc);
}

/* ---- the fabric thread ---- */

static void post_run(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct post *p = container_of(c, struct post, c);
	struct rclient *rc = p->rc;

	if (rc->sched && p->len)
		weft__fab_send_raw(f, rc->sched, p->op, p->len);
	if (p->release) {
		struct rtask *t = p->release;
		bool reading = false;

		pthread_mutex_lock(&rc->lock);
		weft__map_del(&rc->tasks, t->key);
		rc->live--;
		for (uint32_t i = 0; i < t->noutputs; i++)
			reading |= t->outs[i].reading;
		t->doomed = reading;
		pthread_mutex_unlock(&rc->lock);
		if (!reading)
			weft__rc_rtask_free(t);	/* else the last read's end frees it */
	}
	free(p);
}

/* Hand op @type to the fabric thread; @release: a task to free after it. */
int weft__rc_post(struct rclient *rc, uint16_t type, const void *op, struct rtask *release)
{
	long n = op ? weft__op_size(type, op) : 0;
	struct post *p;

	if (n < 0)
		return (int)n;
	if (n > (long)WEFT_PROTO_MAX_OP)
		return -EMSGSIZE;
	p = malloc(sizeof(*p) + (size_t)n);
	if (!p)
		return -ENOMEM;
	p->c.fn = post_run;
	p->rc = rc;
	p->release = release;
	p->len = (uint32_t)n;
	if (n)
		weft__op_encode(type, op, p->op, (size_t)n);
	weft__fab_call(rc->f, &p->c);
	return 0;
}

static void ended(struct rclient *rc, const struct weft__op_ended *e)
{
	struct rtask *t;

	pthread_mutex_lock(&rc->lock);
	t = weft__map_get(&rc->tasks, e->key);
	if (t && t->end == PENDING) {
		t->end = e->end == WEFT_END_DONE ? ENDED_DONE : e->end == WEFT_END_FAILED ?
			 ENDED_FAILED : ENDED_CANCELLED;
		t->code = e->code;
		if (e->message.len && (t->msg = malloc(e->message.len + 1)))
			weft__pbytes_str(t->msg, e->message.len + 1, e->message);
		pthread_cond_broadcast(&rc->cond);
	}
	pthread_mutex_unlock(&rc->lock);
}

/* The scheduler's answer to a CANCEL (they come in the order they were asked). */
static void cancelled(struct rclient *rc, const struct weft__op_cancelled *a)
{
	struct rtask *t;

	pthread_mutex_lock(&rc->lock);
	t = weft__map_get(&rc->tasks, a->key);
	if (t && t->cancels_heard < t->cancels_asked) {
		t->cancels_heard++;
		t->cancel_code = a->code;
		pthread_cond_broadcast(&rc->cond);
	}
	pthread_mutex_unlock(&rc->lock);
}

static struct rout *out_at(struct rclient *rc, uint64_t key, uint32_t i)
{
	struct rtask *t = weft__map_get(&rc->tasks, key);

	if (!t || i >= t->noutputs || t->outs[i].released || t->outs[i].have)
		return NULL;
	return &t->outs[i];
}

/* A piece of a result, inline. */
static void piece(struct rclient *rc, const struct weft__op_piece *p)
{
	struct rout *o;

	pthread_mutex_lock(&rc->lock);
	o = out_at(rc, p->key, p->output);
	if (o && !o->data) {
		o->len = p->total;
		o->data = malloc(p->total ? p->total : 1);
		if (!o->data)
			o->err = -ENOMEM;
	}
	if (o && o->data && o->len == p->total) {
		memcpy(o->data + p->offset, p->data.p, p->data.len);
		o->got += p->data.len;
		o->have = o->got == o->len;
	}
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
}

static void read_done(struct weft__fab_read *r, int err)
{
	struct rout *o = container_of(r, struct rout, r);
	struct rclient *rc = o->t->rc;
	struct weft__op_unlease u = { o->lease };

	struct rtask *t = o->t;
	bool reading = false;

	weft__fab_send(rc->f, o->from, WEFT_OP_UNLEASE, &u);
	pthread_mutex_lock(&rc->lock);
	o->reading = false;
	if (err)
		o->err = err;
	else
		o->have = true;
	for (uint32_t i = 0; i < t->noutputs; i++)
		reading |= t->outs[i].reading;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	if (t->doomed && !reading)
		weft__rc_rtask_free(t);
}

/* A worker's answer for a result: the bytes, or where to read them. */
static void lease(struct rclient *rc, struct weft__peer *from, const struct weft__op_lease *l)
{
	struct rout *o;
	int err = l->status;

	pthread_mutex_lock(&rc->lock);
	o = out_at(rc, l->req, l->output);
	if (!o || o->data) {
		pthread_mutex_unlock(&rc->lock);
		if (l->lease) {
			struct weft__op_unlease u = { l->lease };

			weft__fab_send(rc->f, from, WEFT_OP_UNLEASE, &u);
		}
		return;
	}
	o->len = l->len;
	if (!err && !(o->data = malloc(l->len ? l->len : 1)))
		err = -ENOMEM;
	if (!err && !l->lease) {
		memcpy(o->data, l->data.p, l->data.len);
		o->have = true;
	}
	if (err)
		o->err = err;
	o->reading = !err && l->lease;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	if (err || !l->lease)
		return;
	/* Nothing frees o meanwhile: release waits for the fabric thread (post). */
	o->lease = l->lease;
	o->from = from;
	o->r = (struct weft__fab_read){ .peer = from, .dst = o->data, .len = l->len,
					.rkey = l->rkey, .addr = l->addr, .done = read_done };
	err = weft__fab_read(rc->f, &o->r);
	if (err)
		read_done(&o->r, err);
}

static void stats(struct rclient *rc, const struct weft__op_stats *s)
{
	struct weft__plist_iter it;
	struct weft__pstat v;

	pthread_mutex_lock(&rc->lock);
	weft__plist_iter_init(&it, &s->values);
	while (weft__plist_next(&it, &v))
		if (v.field < WEFT_STAT_FIELDS)
			rc->stats[v.field] = v;
	rc->stats_got = s->id;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
}

static void on_op(void *arg, struct weft__peer *from, uint16_t type, const void *op)
{
	struct rclient *rc = arg;

	switch (type) {
	case WEFT_OP_ENDED:		/* from the scheduler, or a worker when done */
		ended(rc, op);
		break;
	case WEFT_OP_STATS:
		if (from == rc->sched)
			stats(rc, op);
		break;
	case WEFT_OP_CANCELLED:
		if (from == rc->sched)
			cancelled(rc, op);
		break;
	case WEFT_OP_RESULT:
		piece(rc, op);
		break;
	case WEFT_OP_LEASE:
		lease(rc, from, op);
		break;
	case WEFT_OP_VIEW:
		if (from == rc->sched)
			weft__rc_on_view(rc, op);
		break;
	case WEFT_OP_WORKERS:
		if (from == rc->sched)
			weft__rc_on_workers(rc, op);
		break;
	default:
		break;
	}
}

static int on_ready(void *arg, struct weft__peer *p, const struct weft__op_hello *h)
{
	struct rclient *rc = arg;

	if (p == rc->connecting) {
		if (h->role != WEFT_ROLE_SCHEDULER)
			return -EPROTO;
		pthread_mutex_lock(&rc->lock);
		rc->sched = p;
		rc->joined = true;
		pthread_cond_broadcast(&rc->cond);
		pthread_mutex_unlock(&rc->lock);
		return 0;
	}
	/* Workers come to bring results; nobody else has business here. */
	return h->role == WEFT_ROLE_WORKER ? 0 : -EPROTO;
}

static void on_gone(void *arg, struct weft__peer *p, int why)
{
	struct rclient *rc = arg;

	if (p != rc->connecting && p != rc->sched)
		return;
	pthread_mutex_lock(&rc->lock);
	rc->sched = rc->connecting = NULL;
	rc->over = true;
	rc->why = why ? why : -ECONNRESET;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	weft__log(WEFT_LOG_WARN, "client", "the scheduler is gone: %s", weft_strerror(rc->why));
}

/*
 * Heartbeats: the scheduler takes a client silent for 5 s for dead; the client
 * takes a scheduler silent for WEFT_PROTO_SILENT_NS for gone.
 */
static void on_tick(void *arg, int64_t now)
{
	struct rclient *rc = arg;
	struct weft__op_ping ping = { (uint64_t)now };

	if (rc->sched && weft__fab_silent(&rc->sched_heard, rc->sched, now,
					  WEFT_PROTO_SILENT_NS)) {
		weft__log(WEFT_LOG_ERROR, "client", "the scheduler sent nothing for %lld s: "
			  "taken for gone", WEFT_PROTO_SILENT_NS / 1000000000);
		weft__fab_drop(rc->f, rc->sched, -ETIMEDOUT);	/* every wait ends */
		return;
	}
	if (rc->sched)
		weft__fab_send(rc->f, rc->sched, WEFT_OP_PING, &ping);
	/* The room of a burst of tasks, back; callers walk the map under the lock too. */
	pthread_mutex_lock(&rc->lock);
	weft__map_shrink(&rc->tasks);
	pthread_mutex_unlock(&rc->lock);
}

static const struct weft__fab_cbs cbs = { on_ready, on_op, on_gone, on_tick };

/* ---- open and close ---- */

struct connect_call {
	struct weft__fab_call c;
	struct rclient *rc;
	const char *url;
};

static void connect_run(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct connect_call *cc = container_of(c, struct connect_call, c);
	struct rclient *rc = cc->rc;
	struct weft__peer *p;
	int ret = weft__fab_connect(f, cc->url, &p);

	pthread_mutex_lock(&rc->lock);
	if (ret) {
		rc->over = true;
		rc->why = ret;
	} else {
		rc->connecting = p;
	}
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
}

int weft__rc_wait_until(struct rclient *rc, int64_t deadline)
{
	struct timespec ts;
	int64_t ns = deadline - weft__mono_ns();

	if (ns <= 0)
		return ETIMEDOUT;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ns / NSEC_PER_SEC;
	ts.tv_nsec += ns % NSEC_PER_SEC;
	if (ts.tv_nsec >= NSEC_PER_SEC) {
		ts.tv_sec++;
		ts.tv_nsec -= NSEC_PER_SEC;
	}
	return pthread_cond_timedwait(&rc->cond, &rc->lock, &ts);
}

int weft__remote_open(const char *address, const struct weft_options *o,
		      struct weft_client **out)
{
	struct weft__fab_config fc = { .near = address, .role = WEFT_ROLE_CLIENT,
				       .name = "client", .cbs = &cbs, .tick_ms = 500 };
	char token[WEFT_TOKEN_MAX];
	struct weft__auth_key key;
	struct connect_call cc = { .url = address };
	struct rclient *rc;
	int64_t deadline;
	int ret;

	(void)o;
	ret = weft__token_load(getenv("WEFT_TOKEN_FILE"), token, sizeof(token));
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "client", "%s: no cluster token (set WEFT_TOKEN, or "
			  "WEFT_TOKEN_FILE to a file holding it)", address);
		return ret == -ENOENT ? -EACCES : ret;
	}
	if (weft__auth_key(token, &key))
		return -EACCES;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->tasks.ids = true;		/* keys from next_key */
	if (weft__rc_handle_add(rc, &rc->gen)) {
		free(rc);
		return -ENOMEM;
	}
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->cond, NULL);
	fc.key = &key;
	fc.arg = rc;
	ret = weft__fab_start(&fc, &rc->f);
	weft__auth_forget(&key);
	if (ret) {
		weft__rc_rclient_free(rc);
		return ret;
	}
	cc.c.fn = connect_run;
	cc.rc = rc;
	weft__fab_call(rc->f, &cc.c);
	deadline = weft__mono_ns() + JOIN_NS;
	pthread_mutex_lock(&rc->lock);
	while (!rc->joined && !rc->over && weft__rc_wait_until(rc, deadline) != ETIMEDOUT)
		;
	ret = rc->joined ? 0 : rc->over ? rc->why : -ETIMEDOUT;
	pthread_mutex_unlock(&rc->lock);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "client", "no scheduler at %s: %s", address,
			  ret == -ETIMEDOUT ? "no answer" : weft_strerror(ret));
		weft__fab_stop(rc->f);
		weft__rc_rclient_free(rc);
		return ret;
	}
	*out = client_handle(rc);
	return 0;
}

int weft__remote_close(struct weft_client *h)
{
	struct rclient *rc = rc_of(h);
	size_t i = 0;
	uint64_t k;
	void *v;
	bool husk;

	if (!weft__rc_handle_live(h)) {
		weft__handle_stale("weft_client_close", "client");
		return -EBADF;
	}
	pthread_mutex_lock(&rc->lock);
	if (rc->closed) {
		pthread_mutex_unlock(&rc->lock);
		weft__handle_stale("weft_client_close", "client");
		return -EBADF;
	}
	pthread_mutex_unlock(&rc->lock);
	/* The scheduler hears BYE and lets go of this client's tasks. */
	weft__fab_stop(rc->f);
	pthread_mutex_lock(&rc->lock);
	rc->closed = true;
	rc->over = true;
	if (!rc->why)
		rc->why = -ESHUTDOWN;
	while (weft__map_next(&rc->tasks, &i, &k, &v)) {
		struct rtask *t = v;

		if (t->end == PENDING) {
			t->end = ENDED_CANCELLED;
			t->code = -ECANCELED;
		}
	}
	husk = rc->live > 0;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	if (!husk)
		weft__rc_rclient_free(rc);
	return 0;
}
