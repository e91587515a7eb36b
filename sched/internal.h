/* SPDX-License-Identifier: MIT */
/*
 * internal.h - sched/'s own: tasks, workers and clients as the scheduler keeps
 * them (state.c: transitions; place.c: placement and stealing; ops.c: what comes
 * from clients and workers).
 */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <weft.h>

#include "map.h"
#include "scheduler.h"

enum tstate {
	T_WAITING,			/* for inputs not in memory */
	T_READY,			/* no worker may take it now */
	T_PROCESSING,			/* sent to t->where */
	T_MEMORY,			/* its results are on t->where */
	T_RELEASED,			/* its results were freed; lineage kept */
	T_ERRED,
	T_CANCELLED,
};

struct task;

struct dep {
	struct task *t;
	uint32_t output;
};

struct task {
	uint64_t id;			/* the scheduler's: workers know it by this */
	uint32_t client;		/* the submitter, and its key for the task */
	uint64_t ckey;
	char *fn, *label, *restrict_to;	/* restrict_to: a worker's name, or NULL */
	uint8_t *arg;
	uint32_t arglen;
	uint32_t noutputs;
	int32_t priority;
	uint32_t retries;
	struct dep *deps;
	uint32_t ndeps;
	struct task **users;		/* dependents not forgotten */
	uint32_t nusers, users_cap;
	uint32_t waiting;		/* inputs not in memory */
	uint32_t unfinished;		/* dependents that still need its results */
	uint8_t state;			/* enum tstate */
	bool scattered;			/* data from a client: nothing to recompute it */
	bool wanted;			/* the client waits for its end */
	bool stealing;			/* a STEAL is out for it */
	bool cancelling;		/* that STEAL is its client's cancel: it waits */
	bool ahead;			/* sent before its inputs were done (chains) */
	bool direct;			/* its worker tells the client it is done */
	uint32_t where;			/* worker processing it or holding its results */
	uint32_t thief;			/* the worker it is being stolen for */
	uint32_t client_refs;		/* outputs the client holds */
	uint8_t *released;		/* per output: the client let go of it */
	uint32_t *want_results;		/* outputs whose bytes the client asked for */
	uint32_t nwant, want_cap;
	uint64_t *sizes;		/* per output, once in memory */
	int32_t code;			/* erred or cancelled: why */
	char *msg;
	uint32_t failures;		/* its worker died while it ran */
	struct task *next_ready;	/* s->unplaced */
	bool unplaced;			/* on s->unplaced */
	struct task *next_stack;	/* a cascade's stack */
	struct task *next_check;	/* s->check */
	bool checking;			/* on s->check */
};

struct worker {
	uint32_t id;
	char *name;
	uint32_t nthreads;
	uint64_t memory_limit;
	uint32_t processing;		/* tasks sent and not done */
	struct weft__map running;	/* id -> task processing here */
	struct weft__map holding;	/* id -> task whose results are here */
	struct weft__op_heartbeat hb;	/* the last one */
	uint64_t asked, answered;	/* the last STATS_ASK sent it, and answered */
	/* choose()'s, during one call: bytes of the task's inputs held here. */
	bool holder;
	double have;
	struct worker *next_holder;
};

/* A client's STATS_ASK, answered once every worker asked has sent its figures. */
struct stats_ask {
	uint32_t client;
	uint64_t id;			/* the client's */
	uint64_t seq;			/* ours, sent to the workers */
	uint32_t waiting;		/* workers yet to answer */
};

struct client {
	uint32_t id;
	struct weft__map tasks;		/* its key -> task, while it holds an output */
};

struct weft__sched {
	struct weft__sched_io io;
	struct weft__map tasks;		/* id -> task */
	struct weft__map workers;	/* id -> worker */
	struct weft__map clients;	/* id -> client */
	uint64_t next_id;
	struct task *unplaced;		/* ready, waiting for the worker they ask for */
	/*
	 * Tasks whose results may be freed or which may be forgotten: looked at by
	 * task_drain(), in a loop, as one forgotten task frees its inputs in turn
	 * (a long chain would otherwise recurse as deep).
	 */
	struct task *check;
	uint32_t rr;			/* where the search for a light worker starts */
	struct weft__sched_stats st;
	struct stats_ask *asks;		/* waiting for workers' figures, oldest first */
	uint32_t nasks, asks_cap;
	uint64_t ask_seq;
};

/* state.c */
struct task *task_new(struct weft__sched *s, uint32_t client, uint64_t ckey);
/* Free a task's memory (weft__sched_destroy, and forgetting). */
void task_destroy(struct task *t);
void task_set(struct weft__sched *s, struct task *t, enum tstate st);
void task_ready(struct weft__sched *s, struct task *t);
void task_done(struct weft__sched *s, struct task *t, const uint64_t *sizes);
void task_end(struct weft__sched *s, struct task *t, enum tstate st, int32_t code,
	      const char *msg);
void task_release(struct weft__sched *s, struct task *t, uint32_t output);
void task_lost(struct weft__sched *s, struct task *t);
void task_cancel_answer(struct weft__sched *s, struct task *t, bool given_back);
void unplaced_remove(struct weft__sched *s, struct task *t);
void task_check(struct weft__sched *s, struct task *t);
void task_drain(struct weft__sched *s);
void task_tell(struct weft__sched *s, struct task *t);
const char *task_name(const struct task *t);

/* place.c */
void place(struct weft__sched *s, struct task *t);
void place_on(struct weft__sched *s, struct task *t, struct worker *w);
bool place_ahead(struct weft__sched *s, struct task *t);
struct worker *least_loaded(struct weft__sched *s);
void place_unplaced(struct weft__sched *s);
void steal_for(struct weft__sched *s, struct worker *idle);
struct worker *worker_named(struct weft__sched *s, const char *name);

#endif /* WEFT_SCHED_INTERNAL_H */
