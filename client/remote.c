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
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "fabric.h"
#include "map.h"
#include "remote.h"
#include "scheduler.h"

#define JOIN_NS (5 * NSEC_PER_SEC)	/* to reach the scheduler and prove the token */
#define SCATTER_PIECE (WEFT_FAB_MSG_MAX - 128)
/* Bytes the scheduler adds to a SUBMIT's size when it sends it on as COMPUTE. */
#define COMPUTE_PER_DEP 12

enum { PENDING, ENDED_DONE, ENDED_FAILED, ENDED_CANCELLED };

struct rclient;
struct rtask;

struct rout {
	struct rtask *t;
	uint32_t i;
	bool released, asked, have;
	bool reading;			/* an RMA read into data is in flight */
	int err;			/* its bytes could not be had */
	uint8_t *data;
	uint64_t len, got;
	struct weft__fab_read r;	/* an RMA read of it */
	uint64_t lease;
	struct weft__peer *from;
};

struct rtask {
	struct rclient *rc;
	uint64_t key;
	uint32_t noutputs, live;	/* outputs not released */
	uint8_t end;
	int32_t code;
	char *msg;
	struct rout out1;
	struct rout *outs;		/* &out1, or noutputs of them */
	bool doomed;			/* released while a read was in flight */
};

struct rclient {
	struct weft__fabric *f;
	struct weft__peer *sched, *connecting;
	pthread_mutex_t lock;		/* everything below, and every rtask */
	pthread_cond_t cond;
	struct weft__map tasks;		/* key -> rtask */
	uint64_t next_key;
	bool joined, over, closed;
	int why;			/* how the connection ended */
	uint64_t stats_id, stats_got;
	struct weft__pstat stats[WEFT_STAT_FIELDS];
	uint32_t live;			/* tasks not released: the client is a husk
					 * after close until they are */
};

/* An op encoded by a caller, for the fabric thread to send. */
struct post {
	struct weft__fab_call c;
	struct rclient *rc;
	struct rtask *release;		/* RELEASE: the task to let go of after */
	uint32_t len;
	uint8_t op[];
};

static inline struct rclient *rc_of(struct weft_client *h)
{
	return (struct rclient *)((uintptr_t)h & ~(uintptr_t)1);
}

static inline struct rout *out_of(struct weft_future *h)
{
	return (struct rout *)((uintptr_t)h & ~(uintptr_t)1);
}

static inline struct weft_future *handle_of(struct rout *o)
{
	return (struct weft_future *)((uintptr_t)o | 1);
}

static void rtask_free(struct rtask *t)
{
	for (uint32_t i = 0; i < t->noutputs; i++)
		free(t->outs[i].data);
	if (t->outs != &t->out1)
		free(t->outs);
	free(t->msg);
	free(t);
}

static void rclient_free(struct rclient *rc)
{
	weft__map_free(&rc->tasks);
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
			rtask_free(t);	/* else the last read's end frees it */
	}
	free(p);
}

/* Hand op @type to the fabric thread; @release: a task to free after it. */
static int post(struct rclient *rc, uint16_t type, const void *op, struct rtask *release)
{
	long n = op ? weft__op_size(type, op) : 0;
	struct post *p;

	if (n < 0)
		return (int)n;
	if (n > WEFT_FAB_MSG_MAX - WEFT_PROTO_HDR)
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
		rtask_free(t);
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
	case WEFT_OP_RESULT:
		piece(rc, op);
		break;
	case WEFT_OP_LEASE:
		lease(rc, from, op);
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

/* Heartbeats: the scheduler takes a client silent for 5 s for dead. */
static void on_tick(void *arg, int64_t now)
{
	struct rclient *rc = arg;
	struct weft__op_ping ping = { (uint64_t)now };

	if (rc->sched)
		weft__fab_send(rc->f, rc->sched, WEFT_OP_PING, &ping);
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

static int wait_until(struct rclient *rc, int64_t deadline)
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
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->cond, NULL);
	fc.key = &key;
	fc.arg = rc;
	ret = weft__fab_start(&fc, &rc->f);
	weft__auth_forget(&key);
	if (ret) {
		rclient_free(rc);
		return ret;
	}
	cc.c.fn = connect_run;
	cc.rc = rc;
	weft__fab_call(rc->f, &cc.c);
	deadline = weft__mono_ns() + JOIN_NS;
	pthread_mutex_lock(&rc->lock);
	while (!rc->joined && !rc->over && wait_until(rc, deadline) != ETIMEDOUT)
		;
	ret = rc->joined ? 0 : rc->over ? rc->why : -ETIMEDOUT;
	pthread_mutex_unlock(&rc->lock);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "client", "no scheduler at %s: %s", address,
			  ret == -ETIMEDOUT ? "no answer" : weft_strerror(ret));
		weft__fab_stop(rc->f);
		rclient_free(rc);
		return ret;
	}
	*out = (struct weft_client *)((uintptr_t)rc | 1);
	return 0;
}

int weft__remote_close(struct weft_client *h)
{
	struct rclient *rc = rc_of(h);
	size_t i = 0;
	uint64_t k;
	void *v;
	bool husk;

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
		rclient_free(rc);
	return 0;
}

/* ---- tasks ---- */

static struct rtask *rtask_new(struct rclient *rc, uint32_t noutputs,
			       struct weft_future **out)
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
		out[i] = handle_of(&t->outs[i]);
	}
	return t;
}

/* Undo rtask_new for a task whose op could not be sent. */
static void rtask_drop(struct rtask *t)
{
	struct rclient *rc = t->rc;

	pthread_mutex_lock(&rc->lock);
	weft__map_del(&rc->tasks, t->key);
	rc->live--;
	pthread_mutex_unlock(&rc->lock);
	rtask_free(t);
}

/* @h as a live future of @rc (or any client, @rc NULL), or NULL. */
static struct rout *live_out(struct weft_future *h, struct rclient *rc, const char *call)
{
	struct rout *o;

	if (!weft__is_remote(h))
		return NULL;
	o = out_of(h);
	if (o->released || (rc && o->t->rc != rc)) {
		weft__handle_stale(call, "future");
		return NULL;
	}
	return o;
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
	int ret;

	if ((!fn && !name) || !out || (arglen && !arg) || (ndeps && !deps))
		return -EINVAL;
	if (opts) {
		if (opts->size < offsetof(struct weft_task_opts, noutputs) + sizeof(unsigned) ||
		    opts->size > WEFT_OPTS_MAX_SIZE)
			return -EINVAL;
		memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
	}
	if (o.noutputs > WEFT_MAX_OUTPUTS)
		return -EINVAL;
	if (!name && !(name = name_of(fn, buf, sizeof(buf)))) {
		weft__log(WEFT_LOG_ERROR, "client", "task function %s has no name workers know: "
			  "register it (WEFT_TASK, weft_register) or export it", buf);
		return -EINVAL;
	}
	if (rc->over)
		return rc->closed ? -ESHUTDOWN : -ENOTCONN;
	if (ndeps > 16 && !(d = malloc(ndeps * sizeof(*d))))
		return -ENOMEM;
	for (size_t i = 0; i < ndeps; i++) {
		struct rout *in;

		/* Another client's future, or an engine's, is not one of ours. */
		if (!deps[i] || !weft__is_remote(deps[i]) || out_of(deps[i])->t->rc != rc) {
			ret = -EINVAL;
			goto out;
		}
		in = live_out(deps[i], rc, "weft_submit");
		if (!in) {
			ret = -EBADF;
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
	/* The argument and dependencies must fit a message, the scheduler's too. */
	if (weft__op_size(WEFT_OP_SUBMIT, &op) + COMPUTE_PER_DEP * (long)ndeps >
	    WEFT_FAB_MSG_MAX - WEFT_PROTO_HDR) {
		ret = -EMSGSIZE;
		goto out;
	}
	t = rtask_new(rc, op.noutputs, out);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	op.key = t->key;
	ret = post(rc, WEFT_OP_SUBMIT, &op, NULL);
	if (ret)
		rtask_drop(t);
out:
	if (d != stack)
		free(d);
	return ret;
}

int weft__remote_scatter(struct weft_client *h, const void *data, size_t len,
			 struct weft_future **out)
{
	struct rclient *rc = rc_of(h);
	struct rtask *t;
	int ret = 0;

	if (!out || (len && !data))
		return -EINVAL;
	if (rc->over)
		return rc->closed ? -ESHUTDOWN : -ENOTCONN;
	t = rtask_new(rc, 1, out);
	if (!t)
		return -ENOMEM;
	for (size_t off = 0; !ret && (off < len || !off); off += SCATTER_PIECE) {
		size_t n = len - off < SCATTER_PIECE ? len - off : SCATTER_PIECE;
		struct weft__op_piece p = { t->key, 0, len, off,
					    weft__pbytes_of((const uint8_t *)data + off, n) };

		ret = post(rc, WEFT_OP_SCATTER, &p, NULL);
		if (!len)
			break;
	}
	if (ret)
		weft__remote_release(*out);	/* what went is freed by the scheduler */
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

	if (!st || st->size < sizeof(size_t))
		return -EINVAL;
	pthread_mutex_lock(&rc->lock);
	ask.id = ++rc->stats_id;
	pthread_mutex_unlock(&rc->lock);
	ret = post(rc, WEFT_OP_STATS_ASK, &ask, NULL);
	if (ret)
		return ret;
	pthread_mutex_lock(&rc->lock);
	while (rc->stats_got < ask.id && !rc->over && wait_until(rc, deadline) != ETIMEDOUT)
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
		else if (wait_until(rc, deadline) == ETIMEDOUT)
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
		else if (wait_until(rc, deadline) == ETIMEDOUT)
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
	if (ret || o->have) {
		out->data = o->data;
		out->len = o->len;
		pthread_mutex_unlock(&rc->lock);
		return ret;
	}
	if (rc->closed) {
		pthread_mutex_unlock(&rc->lock);
		return -ESHUTDOWN;
	}
	if (!o->asked) {
		o->asked = true;
		want = (struct weft__op_future){ o->t->key, o->i, WEFT_WANT_RESULT };
		pthread_mutex_unlock(&rc->lock);
		ret = post(rc, WEFT_OP_WANT, &want, NULL);
		pthread_mutex_lock(&rc->lock);
		if (ret) {
			o->asked = false;
			pthread_mutex_unlock(&rc->lock);
			return ret;
		}
	}
	while (!o->have && !o->err && !rc->over)
		pthread_cond_wait(&rc->cond, &rc->lock);
	ret = o->have ? 0 : o->err ? o->err : rc->why;
	out->data = o->have ? o->data : NULL;
	out->len = o->have ? o->len : 0;
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

const char *weft__remote_error(struct weft_future *h)
{
	struct rout *o = live_out(h, NULL, "weft_future_error");
	const char *msg = NULL;

	if (!o)
		return NULL;
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

	if (!o)
		return -EBADF;
	rc = o->t->rc;
	if (rc->closed)
		return -ESHUTDOWN;
	if (o->t->end != PENDING)
		return -EALREADY;
	/* Asynchronous: the task ends -ECANCELED if its worker had not started it. */
	c = (struct weft__op_future){ o->t->key, o->i, 0 };
	return post(rc, WEFT_OP_CANCEL, &c, NULL);
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
		rtask_free(t);
		if (last)
			rclient_free(rc);
		return;
	}
	r = (struct weft__op_future){ t->key, o->i, 0 };
	/* The bytes go on the fabric thread, which may be writing them still. */
	if (post(rc, WEFT_OP_RELEASE, &r, last ? t : NULL))
		weft__log(WEFT_LOG_ERROR, "client", "no memory to release a future");
}
