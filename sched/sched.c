// SPDX-License-Identifier: MIT
/*
 * sched.c - the scheduler's entry points: processes joining and going, and the ops
 * clients and workers send. Each entry ends by letting go of what nothing needs
 * any more (task_drain).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define WHY_MAX 512

int weft__sched_create(const struct weft__sched_io *io, struct weft__sched **out)
{
	struct weft__sched *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->io = *io;
	s->tasks.ids = true;		/* tasks' ids come from next_id */
	*out = s;
	return 0;
}

static void worker_free(struct worker *w)
{
	weft__map_free(&w->running);
	weft__map_free(&w->holding);
	free(w->name);
	free(w);
}

void weft__sched_destroy(struct weft__sched *s)
{
	size_t i = 0;
	uint64_t k;
	void *v;

	if (!s)
		return;
	while (weft__map_next(&s->tasks, &i, &k, &v))
		task_destroy(v);
	for (i = 0; weft__map_next(&s->workers, &i, &k, &v);)
		worker_free(v);
	for (i = 0; weft__map_next(&s->clients, &i, &k, &v);) {
		weft__map_free(&((struct client *)v)->tasks);
		free(v);
	}
	weft__map_free(&s->tasks);
	weft__map_free(&s->workers);
	weft__map_free(&s->clients);
	free(s->asks);
	free(s);
}

int weft__sched_worker_join(struct weft__sched *s, uint32_t id, const char *name,
			    uint32_t nthreads, uint64_t memory_limit)
{
	struct worker *w;

	if (name && *name && worker_named(s, name))
		return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->id = id;
	w->running.ids = w->holding.ids = true;
	w->name = strdup(name ? name : "");
	w->nthreads = nthreads ? nthreads : 1;
	w->memory_limit = memory_limit;
	if (!w->name || weft__map_put(&s->workers, id, w)) {
		free(w->name);
		free(w);
		return -ENOMEM;
	}
	s->st.workers++;
	place_unplaced(s);
	task_drain(s);
	return 0;
}

int weft__sched_client_join(struct weft__sched *s, uint32_t id)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->id = id;
	c->tasks.ids = true;		/* a client numbers its tasks */
	if (weft__map_put(&s->clients, id, c)) {
		free(c);
		return -ENOMEM;
	}
	s->st.clients++;
	return 0;
}

/* A worker died: its running tasks go elsewhere; results only it held are lost. */
static void stats_answered(struct weft__sched *s, uint64_t seq);

static void worker_gone(struct weft__sched *s, struct worker *w)
{
	char why[WHY_MAX];
	size_t i = 0;
	uint64_t k;
	void *v;

	weft__map_del(&s->workers, w->id);
	s->st.workers--;
	/* The figures it will not send: the totals are answered without them. */
	for (uint64_t seq = w->answered + 1; seq <= w->asked; seq++)
		stats_answered(s, seq);
	/* The results it held first: its running tasks then know what they wait for. */
	while (weft__map_next(&w->holding, &i, &k, &v)) {
		struct task *t = v;

		/* Its client may not have heard from it that it was done: hear it again. */
		if (t->direct && t->client_refs) {
			t->direct = false;
			t->wanted = true;
			task_tell(s, t);
		}

		if (t->state == T_MEMORY && t->where == w->id)
			task_lost(s, t);
	}
	for (i = 0; weft__map_next(&w->running, &i, &k, &v);) {
		struct task *t = v;

		if (t->state != T_PROCESSING || t->where != w->id)
			continue;
		t->stealing = false;
		if (t->cancelling) {	/* it runs nowhere now: the cancel holds */
			task_set(s, t, T_READY);
			task_cancel_answer(s, t, true);
			continue;
		}
		if (++t->failures > WEFT_SCHED_ALLOWED_FAILURES) {
			snprintf(why, sizeof(why), "task '%s' failed: its worker '%s' died %u "
				 "times while running it (the last: its connection ended)",
				 task_name(t), w->name, t->failures);
			task_end(s, t, T_ERRED, WEFT_EKILLED, why);
			continue;
		}
		/* Sent ahead, its inputs may not be done: it waits for them again. */
		t->ahead = false;
		t->waiting = 0;
		for (uint32_t d = 0; d < t->ndeps; d++)
			t->waiting += t->deps[d].t->state != T_MEMORY;
		if (t->waiting)
			task_set(s, t, T_WAITING);
		else
			task_ready(s, t);
	}
	worker_free(w);
	place_unplaced(s);
}

/* A client went: everything it held is let go; what nothing else needs goes too. */
static void client_gone(struct weft__sched *s, struct client *c)
{
	size_t i = 0;
	uint64_t k;
	void *v;

	weft__map_del(&s->clients, c->id);
	s->st.clients--;
	while (weft__map_next(&c->tasks, &i, &k, &v)) {
		struct task *t = v;

		t->client = 0;
		t->wanted = false;
		t->nwant = 0;
		t->client_refs = 0;
		task_check(s, t);
	}
	weft__map_free(&c->tasks);
	free(c);
}

void weft__sched_gone(struct weft__sched *s, uint32_t id)
{
	void *p;

	if ((p = weft__map_get(&s->workers, id)))
		worker_gone(s, p);
	else if ((p = weft__map_get(&s->clients, id)))
		client_gone(s, p);
	task_drain(s);
}

/* ---- from clients ---- */

static char *dup_text(struct weft__pbytes b)
{
	char *s = malloc(b.len + 1);

	if (s)
		weft__pbytes_str(s, b.len + 1, b);
	return s;
}

static void refuse(struct weft__sched *s, struct client *c, uint64_t key, int32_t code,
		   const char *msg)
{
	struct weft__op_ended e = { key, WEFT_END_FAILED, code,
				    weft__pbytes_of(msg, strlen(msg)) };

	s->io.send(s->io.arg, c->id, WEFT_OP_ENDED, &e);
}

/* @t's dependencies from the client's keys. 0, or -ENOENT with @why filled. */
static int link_deps(struct client *c, struct task *t, const struct weft__op_submit *op,
		     char *why)
{
	struct weft__plist_iter it;
	struct weft__pdep d;
	uint32_t n = 0;

	t->deps = calloc(op->deps.n ? op->deps.n : 1, sizeof(*t->deps));
	if (!t->deps)
		return -ENOMEM;
	weft__plist_iter_init(&it, &op->deps);
	while (weft__plist_next(&it, &d)) {
		struct task *dt = weft__map_get(&c->tasks, d.key);
		struct task **u;

		if (!dt || d.output >= dt->noutputs || dt->released[d.output]) {
			snprintf(why, WHY_MAX, "task '%s': dependency %u is not a future this "
				 "client holds", task_name(t), n);
			return -ENOENT;
		}
		if (dt->nusers == dt->users_cap) {
			uint32_t cap = dt->users_cap ? dt->users_cap * 2 : 4;

			u = realloc(dt->users, cap * sizeof(*u));
			if (!u)
				return -ENOMEM;
			dt->users = u;
			dt->users_cap = cap;
		}
		dt->users[dt->nusers++] = t;
		t->deps[n++] = (struct dep){ dt, d.output };
		t->ndeps = n;
	}
	return 0;
}

static void submit(struct weft__sched *s, struct client *c, const struct weft__op_submit *op)
{
	char why[WHY_MAX];
	struct task *t;
	int ret;

	if (weft__map_get(&c->tasks, op->key)) {
		refuse(s, c, op->key, -EEXIST, "a task of this key is held already");
		return;
	}
	t = task_new(s, c->id, op->key);
	if (!t || weft__map_put(&c->tasks, op->key, t)) {
		refuse(s, c, op->key, -ENOMEM, "the scheduler ran out of memory");
		return;
	}
	t->noutputs = op->noutputs;
	t->priority = op->priority;
	t->retries = op->retries;
	t->client_refs = op->noutputs;
	t->wanted = true;		/* a client always hears how its tasks end */
	t->fn = dup_text(op->fn);
	t->label = op->label.len ? dup_text(op->label) : NULL;
	t->restrict_to = op->worker.len ? dup_text(op->worker) : NULL;
	t->released = calloc(op->noutputs, 1);
	t->arglen = op->arg.len;
	t->arg = malloc(op->arg.len ? op->arg.len : 1);
	if (!t->fn || !t->released || !t->arg || (op->label.len && !t->label) ||
	    (op->worker.len && !t->restrict_to)) {
		task_end(s, t, T_ERRED, -ENOMEM, "the scheduler ran out of memory");
		return;
	}
	memcpy(t->arg, op->arg.p, op->arg.len);
	task_set(s, t, T_WAITING);
	ret = link_deps(c, t, op, why);
	if (ret) {
		task_end(s, t, T_ERRED, ret, ret == -ENOMEM ? "the scheduler ran out of memory" :
			 why);
		return;
	}
	for (uint32_t i = 0; i < t->ndeps; i++) {
		struct task *d = t->deps[i].t;

		if (d->state == T_ERRED || d->state == T_CANCELLED) {
			task_end(s, t, d->state, d->code, d->msg ? d->msg : "");
			return;
		}
		d->unfinished++;
		if (d->state != T_MEMORY)
			t->waiting++;
		if (d->state == T_RELEASED)	/* freed or lost: needed again */
			task_lost(s, d);
	}
	if (!t->waiting)
		task_ready(s, t);
	else
		place_ahead(s, t);
}

static void want(struct weft__sched *s, struct client *c, const struct weft__op_future *op)
{
	struct task *t = weft__map_get(&c->tasks, op->key);

	if (!t || op->output >= t->noutputs)
		return;
	t->wanted = true;
	task_tell(s, t);
	if (!(op->flags & WEFT_WANT_RESULT))
		return;
	for (uint32_t i = 0; i < t->nwant; i++)
		if (t->want_results[i] == op->output)
			goto sent;
	if (t->nwant == t->want_cap) {
		uint32_t cap = t->want_cap ? t->want_cap * 2 : 2;
		uint32_t *w = realloc(t->want_results, cap * sizeof(*w));

		if (!w)
			return;
		t->want_results = w;
		t->want_cap = cap;
	}
	t->want_results[t->nwant++] = op->output;
sent:
	if (t->state == T_MEMORY) {
		struct weft__op_send_result r = { t->id, op->output, c->id, t->ckey };

		s->io.send(s->io.arg, t->where, WEFT_OP_SEND_RESULT, &r);
	}
}

/* The answer to a client's CANCEL: 0 (it ends cancelled), -EBUSY or -EALREADY. */
static void cancel_answer(struct weft__sched *s, uint32_t client, uint64_t key, int32_t code)
{
	struct weft__op_cancelled a = { key, code };

	s->io.send(s->io.arg, client, WEFT_OP_CANCELLED, &a);
}

static void cancel(struct weft__sched *s, struct client *c, const struct weft__op_future *op)
{
	struct task *t = weft__map_get(&c->tasks, op->key);

	if (!t) {
		cancel_answer(s, c->id, op->key, -EALREADY);
		return;
	}
	if (t->state == T_WAITING || t->state == T_READY) {
		/* The ends first: when the client hears the answer, it knows them. */
		task_end(s, t, T_CANCELLED, -ECANCELED, "cancelled by its client");
		cancel_answer(s, c->id, op->key, 0);
	} else if (t->state == T_PROCESSING && !t->stealing) {
		struct weft__op_future f = { t->id, 0, 0 };

		/* Cancelled if its worker has not started it: the same as a steal. */
		t->stealing = true;
		t->cancelling = true;
		t->thief = 0;
		s->io.send(s->io.arg, t->where, WEFT_OP_STEAL, &f);
	} else {
		/* Ended, or a thief's STEAL is out: it may have started. */
		cancel_answer(s, c->id, op->key, t->state == T_PROCESSING ? -EBUSY : -EALREADY);
	}
}

/* A cancel its worker answered, or could not (it died): the client hears how it went. */
void task_cancel_answer(struct weft__sched *s, struct task *t, bool given_back)
{
	uint32_t client = t->client;
	uint64_t key = t->ckey;

	if (!t->cancelling)
		return;
	t->cancelling = false;
	if (given_back)		/* the ends first, as in cancel() */
		task_end(s, t, T_CANCELLED, -ECANCELED, "cancelled by its client");
	if (client)
		cancel_answer(s, client, key, given_back ? 0 : -EBUSY);
}

/* A client's piece of scattered data: the first makes the task and picks a worker. */
static void scatter(struct weft__sched *s, struct client *c, const struct weft__op_piece *op)
{
	struct task *t = weft__map_get(&c->tasks, op->key);
	struct weft__op_piece put = *op;

	if (!t) {
		struct worker *w;

		if (op->offset || op->output)
			return;
		t = task_new(s, c->id, op->key);
		if (!t || weft__map_put(&c->tasks, op->key, t) || !(t->released = calloc(1, 1))) {
			refuse(s, c, op->key, -ENOMEM, "the scheduler ran out of memory");
			return;
		}
		t->scattered = true;
		t->noutputs = 1;
		t->client_refs = 1;
		t->wanted = true;
		w = least_loaded(s);
		if (!w) {
			task_end(s, t, T_ERRED, -EHOSTUNREACH, "no worker to keep scattered data");
			return;
		}
		task_set(s, t, T_PROCESSING);
		t->where = w->id;
		w->processing++;
		weft__map_put(&w->running, t->id, t);
	}
	if (t->state != T_PROCESSING)
		return;
	put.key = t->id;
	s->io.send(s->io.arg, t->where, WEFT_OP_PUT, &put);
}

static void stats_to(struct weft__sched *s, struct client *c, uint64_t id)
{
	struct weft__pstat v[WEFT_STAT_FIELDS - 1];
	struct weft__sched_stats st;
	struct weft__op_stats op = { id };

	weft__sched_stats(s, &st);
	v[0] = (struct weft__pstat){ WEFT_STAT_WORKERS, st.workers };
	v[1] = (struct weft__pstat){ WEFT_STAT_THREADS, st.threads };
	v[2] = (struct weft__pstat){ WEFT_STAT_TASKS_RUN, st.tasks_run };
	v[3] = (struct weft__pstat){ WEFT_STAT_TASKS_FAILED, st.tasks_failed };
	v[4] = (struct weft__pstat){ WEFT_STAT_TASKS_CANCELLED, st.tasks_cancelled };
	v[5] = (struct weft__pstat){ WEFT_STAT_MEM_USED, st.mem_used };
	v[6] = (struct weft__pstat){ WEFT_STAT_MEM_LIMIT, st.mem_limit };
	v[7] = (struct weft__pstat){ WEFT_STAT_SPILLED, st.spilled };
	v[8] = (struct weft__pstat){ WEFT_STAT_RESTORED, st.restored };
	v[9] = (struct weft__pstat){ WEFT_STAT_STEALS, st.steals };
	v[10] = (struct weft__pstat){ WEFT_STAT_TASKS_PENDING, st.tasks_pending };
	v[11] = (struct weft__pstat){ WEFT_STAT_TASKS_RUNNING, st.tasks_running };
	op.values = (struct weft__plist){ .n = WEFT_STAT_FIELDS - 1, .items = v };
	s->io.send(s->io.arg, c->id, WEFT_OP_STATS, &op);
}

/*
 * weft_stats on a cluster: the totals as they are now, not as of the last periodic
 * heartbeat. Every worker is asked for its figures (after whatever was sent it
 * before, such as the frees of results the client released) and the client is
 * answered when the last has come, or has died.
 */
static void stats_ask(struct weft__sched *s, struct client *c, uint64_t id)
{
	struct weft__op_stats_ask ask = { ++s->ask_seq };
	struct stats_ask *a;
	size_t i = 0;
	uint64_t k;
	void *p;

	if (!s->st.workers) {
		stats_to(s, c, id);
		return;
	}
	if (s->nasks == s->asks_cap) {
		uint32_t cap = s->asks_cap ? s->asks_cap * 2 : 4;
		struct stats_ask *n = realloc(s->asks, cap * sizeof(*n));

		if (!n) {
			stats_to(s, c, id);	/* as of the last heartbeats */
			return;
		}
		s->asks = n;
		s->asks_cap = cap;
	}
	a = &s->asks[s->nasks++];
	*a = (struct stats_ask){ c->id, id, ask.id, s->st.workers };
	while (weft__map_next(&s->workers, &i, &k, &p)) {
		((struct worker *)p)->asked = ask.id;
		s->io.send(s->io.arg, (uint32_t)k, WEFT_OP_STATS_ASK, &ask);
	}
}

/* A worker answered ask @seq (or died before it could): answer what is complete. */
static void stats_answered(struct weft__sched *s, uint64_t seq)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < s->nasks; i++) {
		struct stats_ask *a = &s->asks[i];
		struct client *c;

		if (a->seq == seq && !--a->waiting) {
			if ((c = weft__map_get(&s->clients, a->client)))
				stats_to(s, c, a->id);
			continue;
		}
		s->asks[kept++] = *a;
	}
	s->nasks = kept;
}

static void client_op(struct weft__sched *s, struct client *c, uint16_t type, const void *op)
{
	const struct weft__op_future *f = op;
	struct task *t;

	switch (type) {
	case WEFT_OP_SUBMIT:
		submit(s, c, op);
		break;
	case WEFT_OP_SCATTER:
		scatter(s, c, op);
		break;
	case WEFT_OP_WANT:
		want(s, c, op);
		break;
	case WEFT_OP_RELEASE:
		if ((t = weft__map_get(&c->tasks, f->key)))
			task_release(s, t, f->output);
		break;
	case WEFT_OP_CANCEL:
		cancel(s, c, op);
		break;
	case WEFT_OP_STATS_ASK:
		stats_ask(s, c, ((const struct weft__op_stats_ask *)op)->id);
		break;
	default:
		weft__log(WEFT_LOG_WARN, "sched", "client %u sent %s: ignored", c->id,
			  weft__op_name(type));
	}
}

/* ---- from workers ---- */

static void done(struct weft__sched *s, struct worker *w, const struct weft__op_done *op)
{
	struct task *t = weft__map_get(&s->tasks, op->key);
	uint64_t stack_sizes[16], *sizes = stack_sizes;
	struct weft__plist_iter it;
	struct weft__psize sz;
	char msg[WEFT_PROTO_MAX_TEXT + 1];
	uint32_t n = 0;

	/* A report of a task moved or ended meanwhile: it is not this worker's now. */
	if (!t || t->state != T_PROCESSING || t->where != w->id)
		return;
	weft__map_del(&w->running, t->id);
	if (w->processing)
		w->processing--;
	t->stealing = false;
	task_cancel_answer(s, t, false);	/* it ran before the cancel came */
	if (op->end != WEFT_END_DONE) {
		weft__pbytes_str(msg, sizeof(msg), op->message);
		if (op->code == -ENOLINK) {
			/* An input could not be fetched (its holder died): wait for it again. */
			task_set(s, t, T_READY);
			t->waiting = 0;
			for (uint32_t i = 0; i < t->ndeps; i++)
				if (t->deps[i].t->state != T_MEMORY)
					t->waiting++;
			if (t->waiting)
				task_set(s, t, T_WAITING);
			else
				place(s, t);
			return;
		}
		task_end(s, t, op->end == WEFT_END_CANCELLED ? T_CANCELLED : T_ERRED, op->code,
			 msg);
		return;
	}
	if (op->sizes.n != t->noutputs) {
		task_end(s, t, T_ERRED, -EPROTO, "the worker reported the wrong number of "
			 "outputs");
		return;
	}
	if (t->noutputs > 16 && !(sizes = malloc(t->noutputs * sizeof(*sizes)))) {
		task_end(s, t, T_ERRED, -ENOMEM, "the scheduler ran out of memory");
		return;
	}
	weft__plist_iter_init(&it, &op->sizes);
	while (weft__plist_next(&it, &sz))
		sizes[n++] = sz.len;
	if (!op->told)
		t->direct = false;	/* the worker could not tell the client: we do */
	task_done(s, t, sizes);
	if (sizes != stack_sizes)
		free(sizes);
	/* Idle now: it steals at once rather than at its next heartbeat. */
	if (!w->processing)
		steal_for(s, w);
}

static void stolen(struct weft__sched *s, struct worker *w, const struct weft__op_stolen *op)
{
	struct task *t = weft__map_get(&s->tasks, op->key);
	struct worker *thief;

	if (!t || t->state != T_PROCESSING || t->where != w->id || !t->stealing)
		return;
	t->stealing = false;
	if (!op->ok) {
		task_cancel_answer(s, t, false);
		return;		/* it had started: it stays */
	}
	weft__map_del(&w->running, t->id);
	if (w->processing)
		w->processing--;
	if (t->cancelling) {
		task_set(s, t, T_READY);
		task_cancel_answer(s, t, true);
		return;
	}
	s->st.steals++;
	task_set(s, t, T_READY);
	thief = weft__map_get(&s->workers, t->thief);
	if (thief && !t->restrict_to)
		place_on(s, t, thief);	/* the thief asked: it gets it */
	else
		place(s, t);
}

static void heartbeat(struct weft__sched *s, struct worker *w,
		      const struct weft__op_heartbeat *hb)
{
	w->hb = *hb;
	if (hb->ask && hb->ask <= w->asked && hb->ask > w->answered) {
		w->answered = hb->ask;
		stats_answered(s, hb->ask);
	}
	if (!hb->queued && !w->processing)
		steal_for(s, w);
}

static void worker_op(struct weft__sched *s, struct worker *w, uint16_t type, const void *op)
{
	switch (type) {
	case WEFT_OP_DONE:
		done(s, w, op);
		break;
	case WEFT_OP_STOLEN:
		stolen(s, w, op);
		break;
	case WEFT_OP_HEARTBEAT:
		heartbeat(s, w, op);
		break;
	default:
		weft__log(WEFT_LOG_WARN, "sched", "worker '%s' sent %s: ignored", w->name,
			  weft__op_name(type));
	}
}

void weft__sched_op(struct weft__sched *s, uint32_t from, uint16_t type, const void *op)
{
	void *p;

	if ((p = weft__map_get(&s->workers, from)))
		worker_op(s, p, type, op);
	else if ((p = weft__map_get(&s->clients, from)))
		client_op(s, p, type, op);
	task_drain(s);
}

void weft__sched_stats(const struct weft__sched *s, struct weft__sched_stats *st)
{
	size_t i = 0;
	uint64_t k;
	void *v;

	*st = s->st;
	st->tasks_run = st->tasks_failed = st->tasks_cancelled = 0;
	st->mem_used = st->mem_limit = st->spilled = st->restored = st->threads = 0;
	st->tasks_pending = st->tasks_running = 0;
	st->map_slots = s->tasks.cap;
	while (weft__map_next(&s->clients, &i, &k, &v))
		st->map_slots += ((const struct client *)v)->tasks.cap;
	for (i = 0; weft__map_next(&s->workers, &i, &k, &v);) {
		const struct worker *w = v;

		st->map_slots += w->running.cap + w->holding.cap;
		st->threads += w->nthreads;
		st->tasks_run += w->hb.tasks_run;
		st->mem_used += w->hb.mem_used;
		st->mem_limit += w->hb.mem_limit ? w->hb.mem_limit : w->memory_limit;
		st->spilled += w->hb.spilled;
		st->restored += w->hb.restored;
		st->tasks_pending += w->hb.queued;
		st->tasks_running += w->hb.running;
	}
}

void weft__sched_shrink(struct weft__sched *s)
{
	size_t i = 0;
	uint64_t k;
	void *v;

	weft__map_shrink(&s->tasks);
	while (weft__map_next(&s->clients, &i, &k, &v))
		weft__map_shrink(&((struct client *)v)->tasks);
	for (i = 0; weft__map_next(&s->workers, &i, &k, &v);) {
		struct worker *w = v;

		weft__map_shrink(&w->running);
		weft__map_shrink(&w->holding);
	}
}

unsigned weft__sched_workers(const struct weft__sched *s, struct weft__sched_worker *out,
			     unsigned cap)
{
	unsigned n = 0;
	size_t i = 0;
	uint64_t k;
	void *v;

	while (weft__map_next(&s->workers, &i, &k, &v)) {
		const struct worker *w = v;

		if (n < cap)
			out[n] = (struct weft__sched_worker){ w->id, w->name, w->nthreads,
							     w->memory_limit, w->hb };
		n++;
	}
	return n;
}
