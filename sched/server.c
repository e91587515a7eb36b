// SPDX-License-Identifier: MIT
/*
 * server.c - the scheduler on the fabric (weft-scheduler's body): every peer that
 * proves the token gets an id; workers and clients join the scheduler library,
 * their ops go to it and what it sends goes to them, all on the fabric thread. It
 * tells each worker where the other workers and the clients are (PEER), so that
 * workers read each other's results and send clients theirs directly, and when one
 * leaves (GONE); it drops a worker whose heartbeats stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "events.h"
#include "fabric.h"
#include "log.h"
#include "map.h"
#include "server.h"
#include "view.h"
#include "views.h"

#define HEARTBEAT_TIMEOUT_NS (5 * NSEC_PER_SEC)
#define TICK_MS 250

struct proc {
	uint32_t id;
	uint8_t role;
	char name[WEFT_PROTO_MAX_NAME + 1];
	struct weft__peer *peer;
	int64_t seen;			/* monotonic ns of its last message */
};

struct weft__server {
	struct weft__fabric *f;
	struct weft__sched *s;
	struct weft__map procs;		/* id -> proc */
	uint32_t next_id;
	struct weft__http *http;	/* the views, or NULL */
	struct weft__views *views;	/* what the workers recorded */
	/* Views being rendered for clients, off the fabric thread (view_job). */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	unsigned jobs;
};

#define REPORT_EVENTS 16384		/* tasks a cluster's report shows at most */

static void view_answer(struct weft__server *srv, struct proc *p,
			const struct weft__op_view_ask *a);
static void workers_answer(struct weft__server *srv, struct proc *p,
			   const struct weft__op_stats_ask *a);
static void sample(struct weft__server *srv);

static void io_send(void *arg, uint32_t to, uint16_t type, const void *op)
{
	struct weft__server *srv = arg;
	struct proc *p = weft__map_get(&srv->procs, to);
	int ret;

	if (!p)
		return;		/* gone meanwhile: the scheduler hears of it next */
	ret = weft__fab_send(srv->f, p->peer, type, op);
	if (ret)
		weft__log(WEFT_LOG_ERROR, "scheduler", "sending %s to %u: %s",
			  weft__op_name(type), to, weft_strerror(ret));
}

/* Tell @to where @about is. */
static void tell_peer(struct weft__server *srv, struct proc *to, struct proc *about)
{
	struct weft__op_peer op = {
		.id = about->id, .role = about->role,
		.name = weft__pbytes_of(about->name, strlen(about->name)),
		.ctrl_addr = weft__peer_ctrl_addr(about->peer),
		.data_addr = weft__peer_data_addr(about->peer),
	};

	weft__fab_send(srv->f, to->peer, WEFT_OP_PEER, &op);
}

/* Every worker learns that process @id left: it drops its connection to it. */
static void tell_gone(struct weft__server *srv, uint32_t id)
{
	struct weft__op_gone op = { id };
	size_t i = 0;
	uint64_t k;
	void *v;

	while (weft__map_next(&srv->procs, &i, &k, &v))
		if (((struct proc *)v)->role == WEFT_ROLE_WORKER)
			weft__fab_send(srv->f, ((struct proc *)v)->peer, WEFT_OP_GONE, &op);
}

/* A worker learns of every other process; every process learns of a new worker. */
static void introduce(struct weft__server *srv, struct proc *p)
{
	size_t i = 0;
	uint64_t id;
	void *v;

	while (weft__map_next(&srv->procs, &i, &id, &v)) {
		struct proc *q = v;

		if (q == p)
			continue;
		if (p->role == WEFT_ROLE_WORKER)
			tell_peer(srv, p, q);
		if (q->role == WEFT_ROLE_WORKER || p->role == WEFT_ROLE_WORKER)
			tell_peer(srv, q, p);
	}
}

/* Drop the worker named as @by, taken for dead: @by replaces it. */
static void replace(struct weft__server *srv, const struct proc *by)
{
	const char *name = by->name;
	size_t i = 0;
	uint64_t id;
	void *v;

	while (weft__map_next(&srv->procs, &i, &id, &v)) {
		struct proc *q = v;

		if (q != by && q->role == WEFT_ROLE_WORKER && !strcmp(q->name, name)) {
			weft__log(WEFT_LOG_WARN, "scheduler", "worker '%s' joined again: the old "
				  "one is taken for dead", name);
			weft__fab_drop(srv->f, q->peer, -EEXIST);
			return;
		}
	}
}

static int on_ready(void *arg, struct weft__peer *peer, const struct weft__op_hello *h)
{
	struct weft__server *srv = arg;
	struct proc *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	p->id = ++srv->next_id;
	p->role = h->role;
	p->peer = peer;
	p->seen = weft__mono_ns();
	weft__pbytes_str(p->name, sizeof(p->name), h->name);
	/*
	 * Known here before the scheduler hears of it: joining places the tasks that
	 * waited for a worker of its name, and what is sent to it must find it.
	 */
	if (weft__map_put(&srv->procs, p->id, p)) {
		free(p);
		return -ENOMEM;
	}
	if (h->role == WEFT_ROLE_WORKER) {
		ret = weft__sched_worker_join(srv->s, p->id, p->name, h->nthreads,
					      h->memory_limit);
		if (ret == -EEXIST) {
			/*
			 * A worker started again under its name (weft-cluster, a nanny)
			 * before the old one was seen to die: the new one takes its place.
			 */
			replace(srv, p);
			ret = weft__sched_worker_join(srv->s, p->id, p->name, h->nthreads,
						      h->memory_limit);
		}
	}
	else if (h->role == WEFT_ROLE_CLIENT)
		ret = weft__sched_client_join(srv->s, p->id);
	else
		ret = -EPROTO;
	if (ret) {
		weft__map_del(&srv->procs, p->id);
		weft__log(WEFT_LOG_WARN, "scheduler", "refused %s '%s': %s",
			  h->role == WEFT_ROLE_WORKER ? "worker" : "peer", p->name,
			  ret == -EEXIST ? "a worker of that name is connected" :
			  weft_strerror(ret));
		free(p);
		return ret;
	}
	weft__peer_set(peer, p);
	weft__log(WEFT_LOG_INFO, "scheduler", "%s '%s' joined (id %u)",
		  p->role == WEFT_ROLE_WORKER ? "worker" : "client", p->name, p->id);
	introduce(srv, p);
	return 0;
}

static void on_op(void *arg, struct weft__peer *peer, uint16_t type, const void *op)
{
	struct weft__server *srv = arg;
	struct proc *p = weft__peer_get(peer);

	if (!p)
		return;
	p->seen = weft__mono_ns();
	switch (type) {
	case WEFT_OP_PING:
		return;
	case WEFT_OP_RECORD:
		if (p->role == WEFT_ROLE_WORKER)
			weft__views_record(srv->views, p->id, p->name, op);
		return;
	case WEFT_OP_VIEW_ASK:
		if (p->role == WEFT_ROLE_CLIENT)
			view_answer(srv, p, op);
		return;
	case WEFT_OP_WORKERS_ASK:
		if (p->role == WEFT_ROLE_CLIENT)
			workers_answer(srv, p, op);
		return;
	}
	weft__sched_op(srv->s, p->id, type, op);
	if (type == WEFT_OP_HEARTBEAT)
		sample(srv);
}

static void on_gone(void *arg, struct weft__peer *peer, int why)
{
	struct weft__server *srv = arg;
	struct proc *p = weft__peer_get(peer);

	if (!p)
		return;		/* never joined */
	weft__log(why ? WEFT_LOG_WARN : WEFT_LOG_INFO, "scheduler", "%s '%s' (id %u) left%s%s",
		  p->role == WEFT_ROLE_WORKER ? "worker" : "client", p->name, p->id,
		  why ? ": " : "", why ? weft_strerror(why) : "");
	weft__map_del(&srv->procs, p->id);
	weft__sched_gone(srv->s, p->id);
	tell_gone(srv, p->id);
	free(p);
}

/*
 * A worker or client silent for too long is taken for dead. Each is pinged: a send
 * to one that died may fail at once (its connection reset), long before its
 * heartbeats are missed; and a client learns the scheduler lives. The maps a burst
 * of tasks grew give their room back.
 */
static void on_tick(void *arg, int64_t now)
{
	struct weft__server *srv = arg;
	struct weft__op_ping ping = { (uint64_t)now };
	size_t i = 0;
	uint64_t id;
	void *v;

	while (weft__map_next(&srv->procs, &i, &id, &v)) {
		struct proc *p = v;

		if (now - p->seen <= HEARTBEAT_TIMEOUT_NS) {
			weft__fab_send(srv->f, p->peer, WEFT_OP_PING, &ping);
			continue;
		}
		weft__log(WEFT_LOG_WARN, "scheduler", "%s '%s' sent nothing for %lld s: taken "
			  "for dead", p->role == WEFT_ROLE_WORKER ? "worker" : "client", p->name,
			  (long long)(HEARTBEAT_TIMEOUT_NS / NSEC_PER_SEC));
		weft__fab_drop(srv->f, p->peer, -ETIMEDOUT);
		i = 0;		/* the map changed under the walk */
	}
	/* Between ops, so no walk of the maps is under way (map.h). */
	weft__sched_shrink(srv->s);
}

static const struct weft__fab_cbs cbs = { on_ready, on_op, on_gone, on_tick };

int weft__server_start(const char *url, const struct weft__auth_key *key,
		       struct weft__server **out)
{
	struct weft__server *srv = calloc(1, sizeof(*srv));
	struct weft__sched_io io = { io_send, srv };
	struct weft__fab_config cfg = { .url = url, .role = WEFT_ROLE_SCHEDULER,
					.name = "scheduler", .key = key, .cbs = &cbs,
					.arg = srv, .tick_ms = TICK_MS };
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->views = weft__views_new();
	if (!srv->views) {
		free(srv);
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->jobs_lock, NULL);
	pthread_cond_init(&srv->jobs_cond, NULL);
	ret = weft__sched_create(&io, &srv->s);
	if (!ret)
		ret = weft__fab_start(&cfg, &srv->f);
	if (ret) {
		weft__sched_destroy(srv->s);
		weft__views_free(srv->views);
		pthread_mutex_destroy(&srv->jobs_lock);
		pthread_cond_destroy(&srv->jobs_cond);
		free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

/* ---- the views ---- */

/* The cluster's figures into @s, on the fabric thread (the scheduler is its alone). */
static int fill_snap(struct weft__server *srv, struct weft__view_snap *s)
{
	struct weft__sched_worker *ws = NULL;
	struct weft__sched_stats st;
	unsigned n = 0;

	weft__sched_stats(srv->s, &st);
	s->now_ns = (uint64_t)weft__mono_ns();
	s->st = (struct weft_stats){ .size = sizeof(s->st), .nthreads = (unsigned)st.threads,
				     .tasks_run = st.tasks_run, .tasks_failed = st.tasks_failed,
				     .tasks_cancelled = st.tasks_cancelled,
				     .steals = st.steals, .mem_bytes = st.mem_used,
				     .mem_limit = st.mem_limit, .spilled_bytes = st.spilled,
				     .restored_bytes = st.restored, .tasks_pending = st.tasks_pending,
				     .tasks_running = (unsigned)st.tasks_running };
	if (st.workers && !(ws = calloc(st.workers, sizeof(*ws))))
		return -ENOMEM;
	if (ws)
		n = weft__sched_workers(srv->s, ws, st.workers);
	if (n > st.workers)
		n = st.workers;
	for (unsigned i = 0; i < n; i++) {
		const struct weft__op_heartbeat *hb = &ws[i].hb;

		s->st.paused |= hb->paused;
		s->st.spill_blocked |= hb->spill_blocked;
		if (i >= s->workers_cap)
			continue;
		s->workers[s->nworkers] = (struct weft__view_worker){
			.name = weft__label_intern(ws[i].name), .nthreads = ws[i].nthreads,
			.mem_used = hb->mem_used,
			.mem_limit = hb->mem_limit ? hb->mem_limit : ws[i].memory_limit,
			.spilled = hb->spilled, .restored = hb->restored, .queued = hb->queued,
			.running = hb->running, .tasks_run = hb->tasks_run, .paused = hb->paused,
			.spill_blocked = hb->spill_blocked, .mem_target = hb->mem_target,
			.mem_pause = hb->mem_pause };
		weft__views_bytes(srv->views, ws[i].id, &s->workers[s->nworkers].bytes_in,
				  &s->workers[s->nworkers].bytes_out);
		s->nworkers++;
	}
	free(ws);
	weft__views_fill(srv->views, s);
	return 0;
}

/* The cluster's totals after a heartbeat, for memory and spill over time. */
static void sample(struct weft__server *srv)
{
	int64_t now = weft__mono_ns();
	struct weft__sched_stats st;
	struct weft_stats ws;

	/* Heartbeats come in by the thousand on a large cluster: most find none due. */
	if (!weft__views_sample_due(srv->views, now))
		return;
	weft__sched_stats(srv->s, &st);
	ws = (struct weft_stats){ .tasks_run = st.tasks_run, .tasks_failed = st.tasks_failed,
				  .mem_bytes = st.mem_used, .spilled_bytes = st.spilled,
				  .restored_bytes = st.restored };
	weft__views_sample(srv->views, now, &ws);
}

/* A request's snapshot, filled on the fabric thread while the request's thread waits. */
struct snap_call {
	struct weft__fab_call c;
	struct weft__server *srv;
	struct weft__view_snap *s;
	int ret;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void snap_run(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct snap_call *sc = container_of(c, struct snap_call, c);

	(void)f;
	sc->ret = fill_snap(sc->srv, sc->s);
	pthread_mutex_lock(&sc->lock);
	sc->done = true;
	pthread_cond_signal(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
}

/*
 * On the server's request thread: the fabric thread fills the snapshot and this
 * one waits. The views stop before the fabric thread does, so it is there to answer.
 */
static int server_snap(void *arg, struct weft__view_snap *s)
{
	struct snap_call sc = { .c.fn = snap_run, .srv = arg, .s = s,
				.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

	weft__fab_call(sc.srv->f, &sc.c);
	pthread_mutex_lock(&sc.lock);
	while (!sc.done)
		pthread_cond_wait(&sc.cond, &sc.lock);
	pthread_mutex_unlock(&sc.lock);
	return sc.ret;
}

/*
 * A client's report or trace: its figures copied on the fabric thread, the file
 * rendered on a thread of its own (a large cluster's takes tens of milliseconds,
 * which scheduling does not wait for), and sent back on the fabric thread.
 */
struct view_job {
	struct weft__fab_call c;	/* the answer's send */
	struct weft__server *srv;
	uint32_t client;		/* its proc id: it may leave meanwhile */
	struct weft__op_view_ask ask;
	struct weft__view_snap s;
	char *buf;
	size_t len;
	int code;
};

/* The view source of a job: the copy made on the fabric thread. */
static int job_snap(void *arg, struct weft__view_snap *d)
{
	const struct weft__view_snap *s = &((struct view_job *)arg)->s;

#define COPY(arr, n, cap)							\
	do {									\
		d->n = s->n < d->cap ? s->n : d->cap;				\
		if (d->n)	/* arrays not asked for are NULL */		\
			memcpy(d->arr, s->arr, d->n * sizeof(*d->arr));		\
	} while (0)
	d->st = s->st;
	d->now_ns = s->now_ns;
	COPY(labels, nlabels, labels_cap);
	COPY(events, nevents, events_cap);
	COPY(samples, nsamples, samples_cap);
	COPY(workers, nworkers, workers_cap);
	COPY(transfers, ntransfers, transfers_cap);
#undef COPY
	return 0;
}

static void job_free(struct view_job *job)
{
	weft__view_snap_free(&job->s);
	free(job->buf);
	free(job);
}

/* Back on the fabric thread: the bytes to the client, if it is still here. */
static void job_send(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct view_job *job = container_of(c, struct view_job, c);
	struct weft__server *srv = job->srv;
	struct proc *p = weft__map_get(&srv->procs, job->client);
	struct weft__op_view v = { .id = job->ask.id, .code = job->code };

	(void)f;
	if (!v.code)
		v.data = weft__pbytes_of(job->buf, job->len);
	if (p)
		weft__fab_send(srv->f, p->peer, WEFT_OP_VIEW, &v);
	job_free(job);
	pthread_mutex_lock(&srv->jobs_lock);
	srv->jobs--;
	pthread_cond_broadcast(&srv->jobs_cond);
	pthread_mutex_unlock(&srv->jobs_lock);
}

static void *job_render(void *arg)
{
	struct view_job *job = arg;
	struct weft__view_source src = { job_snap, job, "cluster" };
	FILE *f = open_memstream(&job->buf, &job->len);

	weft__name_thread("weft-view");
	if (!f) {
		job->code = -ENOMEM;
	} else {
		job->code = job->ask.kind == WEFT_VIEW_REPORT ?
			    weft__view_report(f, &src, REPORT_EVENTS) :
			    weft__view_trace(f, &src, VIEWS_EVENTS);
		if (fclose(f) && !job->code)
			job->code = -ENOMEM;
		if (!job->code && job->len > WEFT_PROTO_MAX_VIEW)
			job->code = -EFBIG;
	}
	job->c.fn = job_send;
	weft__fab_call(job->srv->f, &job->c);
	return NULL;
}

/* A client asked for a report or a trace of the cluster: its bytes, whole. */
static void view_answer(struct weft__server *srv, struct proc *p,
			const struct weft__op_view_ask *a)
{
	struct view_job *job = calloc(1, sizeof(*job));
	struct weft__op_view v = { .id = a->id, .code = -ENOMEM };
	pthread_attr_t attr;
	pthread_t th;
	int ret = -ENOMEM;

	if (!job)
		goto refuse;
	*job = (struct view_job){ .srv = srv, .client = p->id, .ask = *a };
	if (weft__view_snap_alloc(&job->s, VIEW_NEED_ALL, a->kind == WEFT_VIEW_REPORT ?
				  REPORT_EVENTS : VIEWS_EVENTS) ||
	    (ret = fill_snap(srv, &job->s)))
		goto refuse;
	pthread_mutex_lock(&srv->jobs_lock);
	srv->jobs++;
	pthread_mutex_unlock(&srv->jobs_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, job_render, job);
	pthread_attr_destroy(&attr);
	if (!ret)
		return;
	pthread_mutex_lock(&srv->jobs_lock);
	srv->jobs--;
	pthread_mutex_unlock(&srv->jobs_lock);
refuse:
	v.code = ret;
	if (job)
		job_free(job);
	weft__fab_send(srv->f, p->peer, WEFT_OP_VIEW, &v);
}

/* A client asked for the workers and their figures. */
static void workers_answer(struct weft__server *srv, struct proc *p,
			   const struct weft__op_stats_ask *a)
{
	struct weft__op_workers op = { .id = a->id };
	struct weft__view_snap s = { 0 };
	struct weft__pworker *pw = NULL;

	if (!weft__view_snap_alloc(&s, VIEW_NEED_WORKERS, 0) && !fill_snap(srv, &s) &&
	    (pw = calloc(s.nworkers ?: 1, sizeof(*pw)))) {
		for (unsigned i = 0; i < s.nworkers; i++) {
			const struct weft__view_worker *w = &s.workers[i];

			pw[i] = (struct weft__pworker){
				.name = weft__pbytes_of(w->name, strlen(w->name)),
				.nthreads = w->nthreads, .mem_used = w->mem_used,
				.mem_limit = w->mem_limit, .spilled = w->spilled,
				.restored = w->restored, .queued = w->queued,
				.running = w->running, .tasks_run = w->tasks_run,
				.paused = (uint8_t)w->paused, .bytes_in = w->bytes_in,
				.bytes_out = w->bytes_out };
		}
		op.workers = (struct weft__plist){ .n = s.nworkers, .items = pw };
	}
	weft__fab_send(srv->f, p->peer, WEFT_OP_WORKERS, &op);
	free(pw);
	weft__view_snap_free(&s);
}

int weft__server_serve(struct weft__server *srv, const char *addr)
{
	struct weft__view_source src = { server_snap, srv, "cluster" };

	return weft__http_start(addr, &src, &srv->http);
}

const char *weft__server_url(const struct weft__server *srv)
{
	return weft__fab_url(srv->f);
}

void weft__server_stop(struct weft__server *srv)
{
	size_t i = 0;
	uint64_t id;
	void *v;

	if (!srv)
		return;
	weft__http_stop(srv->http);	/* its requests wait on the fabric thread */
	/* Renders end on the fabric thread: it must still turn for them. */
	pthread_mutex_lock(&srv->jobs_lock);
	while (srv->jobs)
		pthread_cond_wait(&srv->jobs_cond, &srv->jobs_lock);
	pthread_mutex_unlock(&srv->jobs_lock);
	weft__fab_stop(srv->f);
	while (weft__map_next(&srv->procs, &i, &id, &v))
		free(v);
	weft__map_free(&srv->procs);
	weft__sched_destroy(srv->s);
	weft__views_free(srv->views);
	pthread_mutex_destroy(&srv->jobs_lock);
	pthread_cond_destroy(&srv->jobs_cond);
	free(srv);
}
