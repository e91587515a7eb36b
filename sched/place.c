// SPDX-License-Identifier: MIT
/*
 * place.c - where a ready task runs, and stealing. A task goes to the worker where
 * it would start earliest: its queue (tasks sent and not done, over its threads,
 * times the mean run time seen) plus the bytes of the task's inputs it would have
 * to fetch, over the bandwidth. The candidates are the holders of its inputs and a
 * few of the other workers, looked at in turn, so that placing costs the same with
 * a thousand workers as with two. A task restricted to a worker by name waits in
 * s->unplaced while no worker of that name is there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define LOOK_AT 8			/* workers besides the inputs' holders */
#define BANDWIDTH 1e9			/* bytes/s assumed for fetching inputs */
#define TASK_NS 100000.0		/* run time assumed before any is seen */
#define STEAL_MAX 16			/* tasks asked of a victim at once */
#define AHEAD_MAX_INPUTS 64		/* a task of more is not sent ahead */

struct worker *worker_named(struct weft__sched *s, const char *name)
{
	size_t i = 0;
	uint64_t id;
	void *v;

	while (weft__map_next(&s->workers, &i, &id, &v))
		if (!strcmp(((struct worker *)v)->name, name))
			return v;
	return NULL;
}

/* When a task would start on @w, in ns from now, with @missing bytes to fetch first. */
static double start_ns(const struct worker *w, double missing)
{
	return (double)w->processing / w->nthreads * TASK_NS + missing / BANDWIDTH * 1e9;
}

/*
 * The worker where @t would start earliest: of the holders of its inputs and a few
 * others. One pass over the inputs sums what each holder has (w->have), so that
 * a task of many inputs costs as many steps, not their square.
 */
static struct worker *choose(struct weft__sched *s, const struct task *t)
{
	struct worker *holders = NULL, *best = NULL, *w;
	double total = 0, best_ns = 0, ns;
	size_t i;
	uint64_t id;
	void *v;

	for (uint32_t k = 0; k < t->ndeps; k++) {
		const struct task *d = t->deps[k].t;
		double len = d->sizes ? (double)d->sizes[t->deps[k].output] : 0;

		total += len;
		w = weft__map_get(&s->workers, d->where);
		if (!w)
			continue;
		if (!w->holder) {
			w->holder = true;
			w->have = 0;
			w->next_holder = holders;
			holders = w;
		}
		w->have += len;
	}
	for (w = holders; w; w = w->next_holder) {
		ns = start_ns(w, total - w->have);
		if (!best || ns < best_ns) {
			best = w;
			best_ns = ns;
		}
	}
	/* A few others, in turn from where the last search stopped. */
	i = s->workers.cap ? s->rr % s->workers.cap : 0;
	for (unsigned n = 0, seen = 0; n < LOOK_AT && seen < s->workers.cap; seen++) {
		size_t at = i;

		if (!weft__map_next(&s->workers, &at, &id, &v)) {
			i = 0;
			continue;
		}
		i = at;
		n++;
		w = v;
		ns = start_ns(w, total - (w->holder ? w->have : 0));
		if (!best || ns < best_ns) {
			best = w;
			best_ns = ns;
		}
	}
	s->rr = (uint32_t)i;
	for (w = holders; w; w = w->next_holder)
		w->holder = false;
	return best;
}

static void unplaced_add(struct weft__sched *s, struct task *t)
{
	t->next_ready = s->unplaced;
	s->unplaced = t;
	t->unplaced = true;
}

void unplaced_remove(struct weft__sched *s, struct task *t)
{
	for (struct task **p = &s->unplaced; *p; p = &(*p)->next_ready)
		if (*p == t) {
			*p = t->next_ready;
			break;
		}
	t->unplaced = false;
}

/* Send @t to @w with where each of its inputs is. */
void place_on(struct weft__sched *s, struct task *t, struct worker *w)
{
	struct weft__pinput stack_in[16], *in = stack_in;
	struct weft__op_compute c = {
		.key = t->id, .fn = weft__pbytes_of(t->fn, strlen(t->fn)),
		.label = weft__pbytes_of(t->label ? t->label : "", t->label ? strlen(t->label) : 0),
		.arg = weft__pbytes_of(t->arg, t->arglen), .noutputs = t->noutputs,
		.priority = t->priority, .retries = t->retries,
	};

	if (t->ndeps > 16 && !(in = malloc(t->ndeps * sizeof(*in)))) {
		task_end(s, t, T_ERRED, -ENOMEM, "the scheduler ran out of memory");
		return;
	}
	for (uint32_t i = 0; i < t->ndeps; i++) {
		const struct task *d = t->deps[i].t;

		in[i] = (struct weft__pinput){ d->id, t->deps[i].output,
					      d->where == w->id ? 0 : d->where,
					      d->sizes ? d->sizes[t->deps[i].output] : 0 };
	}
	c.inputs = (struct weft__plist){ .n = t->ndeps, .items = in };
	/* A client waiting: the worker tells it first hand (three hops, not four). */
	if (t->client && t->wanted) {
		c.client = t->client;
		c.ckey = t->ckey;
		t->direct = true;
	}
	task_set(s, t, T_PROCESSING);
	t->where = w->id;
	w->processing++;
	weft__map_put(&w->running, t->id, t);
	s->io.send(s->io.arg, w->id, WEFT_OP_COMPUTE, &c);
	if (in != stack_in)
		free(in);
}

void place(struct weft__sched *s, struct task *t)
{
	struct worker *w;

	if (t->restrict_to)
		w = worker_named(s, t->restrict_to);
	else
		w = choose(s, t);
	if (!w) {
		if (!t->unplaced)
			unplaced_add(s, t);
		return;
	}
	place_on(s, t, w);
}

/*
 * Chains sent ahead: a waiting task whose inputs are all on one worker, done or
 * running there, goes to that worker now, so that a chain costs no round trip to
 * the scheduler per step; the worker runs it when its inputs are done. Return:
 * whether it went.
 */
bool place_ahead(struct weft__sched *s, struct task *t)
{
	struct worker *w = NULL;
	bool running = false;

	/*
	 * A task of many inputs is looked at as each ends: a long look each time
	 * would cost their square, for a round trip that matters to a chain.
	 */
	if (t->restrict_to || !t->ndeps || t->ndeps > AHEAD_MAX_INPUTS)
		return false;
	for (uint32_t i = 0; i < t->ndeps; i++) {
		const struct task *d = t->deps[i].t;

		if ((d->state != T_PROCESSING && d->state != T_MEMORY) || d->stealing ||
		    (w && d->where != w->id))
			return false;
		if (!w && !(w = weft__map_get(&s->workers, d->where)))
			return false;
		running |= d->state == T_PROCESSING;
	}
	if (!running)
		return false;
	t->ahead = true;
	place_on(s, t, w);
	return true;
}

/* A worker joined, or one left: the unplaced tasks look again. */
void place_unplaced(struct weft__sched *s)
{
	struct task *list = s->unplaced, *t;

	s->unplaced = NULL;
	while ((t = list)) {
		list = t->next_ready;
		t->unplaced = false;
		if (t->state == T_READY)
			place(s, t);
	}
}

struct worker *least_loaded(struct weft__sched *s)
{
	struct worker *best = NULL;
	double load = 0;
	size_t i = 0;
	uint64_t k;
	void *v;

	while (weft__map_next(&s->workers, &i, &k, &v)) {
		struct worker *w = v;
		double l = (double)w->processing / w->nthreads;

		if (!best || l < load) {
			best = w;
			load = l;
		}
	}
	return best;
}

/* The busiest worker with more tasks than threads, but @not. */
static struct worker *busiest(struct weft__sched *s, const struct worker *not)
{
	struct worker *best = NULL;
	size_t i = 0;
	uint64_t id;
	void *v;

	while (weft__map_next(&s->workers, &i, &id, &v)) {
		struct worker *w = v;

		if (w == not || w->processing <= w->nthreads)
			continue;
		if (!best || (double)w->processing / w->nthreads >
			     (double)best->processing / best->nthreads)
			best = w;
	}
	return best;
}

/* A task sent ahead on its worker takes @t's outputs there: @t may not move. */
static bool feeds_ahead(const struct task *t)
{
	for (uint32_t i = 0; i < t->nusers; i++)
		if (t->users[i]->ahead && t->users[i]->state == T_PROCESSING)
			return true;
	return false;
}

/*
 * @idle has nothing to do: ask the busiest worker for tasks it has not started, up
 * to what @idle's threads take. Tasks restricted to a worker stay there.
 */
void steal_for(struct weft__sched *s, struct worker *idle)
{
	struct worker *v = busiest(s, idle);
	struct task *pick[STEAL_MAX];		/* the newest candidates, newest first */
	unsigned want, asked = 0;
	size_t i = 0;
	uint64_t id;
	void *p;

	if (!v)
		return;
	want = (v->processing - v->nthreads) / 2;
	if (want > idle->nthreads)
		want = idle->nthreads;
	if (want > STEAL_MAX)
		want = STEAL_MAX;
	if (!want)
		return;
	/*
	 * The newest: a worker runs what it was sent in order, so the oldest have
	 * started (and a steal of them would only be refused, again at each try).
	 */
	while (weft__map_next(&v->running, &i, &id, &p)) {
		struct task *t = p;
		unsigned k;

		if (t->stealing || t->restrict_to || t->ahead || feeds_ahead(t))
			continue;
		if (asked == want && pick[asked - 1]->id > t->id)
			continue;
		k = asked < want ? asked++ : asked - 1;
		for (; k && pick[k - 1]->id < t->id; k--)
			pick[k] = pick[k - 1];
		pick[k] = t;
	}
	for (unsigned k = 0; k < asked; k++) {
		struct weft__op_future f = { pick[k]->id, 0, 0 };

		pick[k]->stealing = true;
		pick[k]->thief = idle->id;
		s->io.send(s->io.arg, v->id, WEFT_OP_STEAL, &f);
	}
}
