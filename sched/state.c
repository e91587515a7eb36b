// SPDX-License-Identifier: MIT
/*
 * state.c - a task's transitions in the scheduler: ready, done, ended (erred or
 * cancelled, with its dependents), released by its client, its results freed
 * when nothing needs them, forgotten when nothing may need them again, and
 * recomputed when the only worker that held them died.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

const char *task_name(const struct task *t)
{
	return t->label ? t->label : t->fn ? t->fn : "scattered data";
}

struct task *task_new(struct weft__sched *s, uint32_t client, uint64_t ckey)
{
	struct task *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->id = ++s->next_id;
	t->client = client;
	t->ckey = ckey;
	if (weft__map_put(&s->tasks, t->id, t)) {
		free(t);
		return NULL;
	}
	s->st.tasks++;
	return t;
}

void task_set(struct weft__sched *s, struct task *t, enum tstate st)
{
	t->state = (uint8_t)st;
	s->st.transitions++;
}

static bool final(const struct task *t)
{
	return t->state == T_ERRED || t->state == T_CANCELLED;
}

/* Tell the client the task ended, if it waits for that. */
void task_tell(struct weft__sched *s, struct task *t)
{
	struct weft__op_ended e = { .key = t->ckey };

	if (!t->wanted || !t->client)
		return;
	if (t->state == T_MEMORY || t->state == T_RELEASED) {
		if (t->direct) {	/* its worker told it */
			t->wanted = false;
			return;
		}
		e.end = WEFT_END_DONE;
	} else if (final(t)) {
		e.end = t->state == T_ERRED ? WEFT_END_FAILED : WEFT_END_CANCELLED;
		e.code = t->code;
		e.message = weft__pbytes_of(t->msg ? t->msg : "", t->msg ? strlen(t->msg) : 0);
		if (e.message.len > WEFT_PROTO_MAX_TEXT)
			e.message.len = WEFT_PROTO_MAX_TEXT;
	} else {
		return;
	}
	t->wanted = false;
	s->io.send(s->io.arg, t->client, WEFT_OP_ENDED, &e);
}

/* Ask the worker holding @t to send the client output @out. */
static void send_result(struct weft__sched *s, struct task *t, uint32_t out)
{
	struct weft__op_send_result r = { t->id, out, t->client, t->ckey };

	s->io.send(s->io.arg, t->where, WEFT_OP_SEND_RESULT, &r);
}

void task_ready(struct weft__sched *s, struct task *t)
{
	task_set(s, t, T_READY);
	place(s, t);
}

/* Look at @t in the next task_drain(): its results may be freed, it forgotten. */
void task_check(struct weft__sched *s, struct task *t)
{
	if (t->checking)
		return;
	t->checking = true;
	t->next_check = s->check;
	s->check = t;
}

void task_destroy(struct task *t)
{
	free(t->fn);
	free(t->label);
	free(t->restrict_to);
	free(t->arg);
	free(t->deps);
	free(t->users);
	free(t->released);
	free(t->want_results);
	free(t->sizes);
	free(t->msg);
	free(t);
}

static void task_free(struct weft__sched *s, struct task *t)
{
	weft__map_del(&s->tasks, t->id);
	for (uint32_t i = 0; i < t->ndeps; i++) {
		struct task *d = t->deps[i].t;

		for (uint32_t k = 0; k < d->nusers; k++)
			if (d->users[k] == t) {
				d->users[k] = d->users[--d->nusers];
				break;
			}
		task_check(s, d);
	}
	task_destroy(t);
	s->st.tasks--;
	s->st.forgotten++;
}

/*
 * What nothing needs goes: results no client holds and no dependent still needs
 * are freed on their worker; a task nobody wants any more is cancelled before it
 * runs; a task no client holds and no dependent may need again is forgotten.
 */
void task_drain(struct weft__sched *s)
{
	struct task *t;

	while ((t = s->check)) {
		s->check = t->next_check;
		t->checking = false;
		if (t->client_refs)
			continue;
		if (t->state == T_MEMORY && !t->unfinished) {
			struct worker *w = weft__map_get(&s->workers, t->where);

			for (uint32_t i = 0; w && i < t->noutputs; i++) {
				struct weft__op_future f = { t->id, i, 0 };

				s->io.send(s->io.arg, t->where, WEFT_OP_FREE, &f);
			}
			if (w)
				weft__map_del(&w->holding, t->id);
			task_set(s, t, T_RELEASED);
		} else if ((t->state == T_WAITING || t->state == T_READY) && !t->unfinished) {
			task_end(s, t, T_CANCELLED, -ECANCELED, "released before it ran");
		}
		if (!t->nusers && !t->checking && (t->state == T_RELEASED || final(t)))
			task_free(s, t);
	}
}

/* A dependent of @d no longer needs its results. */
static void user_finished(struct weft__sched *s, struct task *d)
{
	if (d->unfinished)
		d->unfinished--;
	task_check(s, d);
}

void task_done(struct weft__sched *s, struct task *t, const uint64_t *sizes)
{
	struct worker *w = weft__map_get(&s->workers, t->where);

	if (!t->sizes)
		t->sizes = calloc(t->noutputs, sizeof(*t->sizes));
	if (t->sizes)
		memcpy(t->sizes, sizes, t->noutputs * sizeof(*sizes));
	task_set(s, t, T_MEMORY);
	if (w)
		weft__map_put(&w->holding, t->id, t);
	task_tell(s, t);
	/* Kept: if the results are lost and made again, they are sent again. */
	for (uint32_t i = 0; i < t->nwant; i++)
		send_result(s, t, t->want_results[i]);
	for (uint32_t i = 0; i < t->nusers; i++) {
		struct task *u = t->users[i];

		if (u->state != T_WAITING || !u->waiting)
			continue;
		if (!--u->waiting)
			task_ready(s, u);
		else
			place_ahead(s, u);
	}
	for (uint32_t i = 0; i < t->ndeps; i++)
		user_finished(s, t->deps[i].t);
	task_check(s, t);
}

/*
 * End @t erred or cancelled with @code and @msg, and its dependents with it: each
 * keeps the message of the task that failed first (the root failure).
 */
void task_end(struct weft__sched *s, struct task *t, enum tstate st, int32_t code,
	      const char *msg)
{
	struct task *stack = NULL;

	t->next_stack = NULL;
	for (;;) {
		if (!final(t) && t->state != T_MEMORY && t->state != T_RELEASED) {
			if (t->unplaced)
				unplaced_remove(s, t);
			if (t->state == T_PROCESSING) {
				struct worker *w = weft__map_get(&s->workers, t->where);

				if (w && weft__map_del(&w->running, t->id) && w->processing)
					w->processing--;
			}
			free(t->msg);
			t->msg = strdup(msg);
			t->code = code;
			task_set(s, t, st);
			task_tell(s, t);
			for (uint32_t i = 0; i < t->nusers; i++) {
				struct task *u = t->users[i];

				u->next_stack = stack;
				stack = u;
			}
			for (uint32_t i = 0; i < t->ndeps; i++)
				user_finished(s, t->deps[i].t);
			task_check(s, t);
		}
		if (!stack)
			return;
		t = stack;
		stack = t->next_stack;
	}
}

void task_release(struct weft__sched *s, struct task *t, uint32_t output)
{
	struct client *c = weft__map_get(&s->clients, t->client);

	if (output >= t->noutputs || t->released[output])
		return;
	t->released[output] = 1;
	if (--t->client_refs)
		return;
	if (c)
		weft__map_del(&c->tasks, t->ckey);
	t->wanted = false;
	t->nwant = 0;
	task_check(s, t);
}

/* @t is not in memory any more: its waiting dependents wait for it again. */
static void users_wait_again(struct weft__sched *s, struct task *t)
{
	for (uint32_t i = 0; i < t->nusers; i++) {
		struct task *u = t->users[i];

		if (u->state == T_WAITING) {
			u->waiting++;
		} else if (u->state == T_READY) {
			if (u->unplaced)
				unplaced_remove(s, u);
			u->waiting = 1;
			task_set(s, u, T_WAITING);
		}
	}
}

/*
 * @t's results were only on a worker that died (it was in memory there). What
 * still needs them gets them again: scattered data is lost for good (its futures
 * fail WEFT_ELOST); a task is computed again, and its inputs first where they
 * were freed in the meantime, transitively (an explicit stack: a chain may be
 * long). Results nothing needs are only marked gone.
 */
void task_lost(struct weft__sched *s, struct task *t)
{
	struct task *stack = NULL;

	users_wait_again(s, t);
	task_set(s, t, T_RELEASED);
	t->next_stack = NULL;
	for (;;) {
		if (t->state != T_RELEASED || !(t->client_refs || t->unfinished)) {
			task_check(s, t);
		} else if (t->scattered) {
			/* Its client heard it was done: it hears of the loss too. */
			t->wanted = t->client_refs > 0;
			task_set(s, t, T_WAITING);
			task_end(s, t, T_ERRED, WEFT_ELOST, "scattered data was lost: the only "
				 "worker that held it died");
		} else {
			task_set(s, t, T_WAITING);
			s->st.recomputed++;
			t->waiting = 0;
			for (uint32_t i = 0; i < t->ndeps; i++) {
				struct task *d = t->deps[i].t;

				if (d->state == T_MEMORY)
					continue;
				t->waiting++;
				d->unfinished++;	/* t needs it again */
				if (d->state == T_RELEASED) {
					d->next_stack = stack;
					stack = d;
				}
			}
			if (!t->waiting)
				task_ready(s, t);
		}
		if (!stack)
			return;
		t = stack;
		stack = t->next_stack;
	}
}
