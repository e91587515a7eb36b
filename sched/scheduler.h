/* SPDX-License-Identifier: MIT */
/*
 * scheduler.h - the scheduler as a library with no I/O of its own: sched/'s contract
 * with weft-scheduler (which feeds it what arrives and sends what it says) and
 * with the tests and the simulation benchmark (which drive it with simulated
 * workers and clients).
 *
 * It knows every task a client submitted, where each result lives and its size,
 * and each worker's load. A task moves: waiting (for its inputs) -> ready (no
 * worker may take it yet: it asks for one that is not there) -> processing (sent
 * to a worker) -> memory (its results on that worker) -> released (the data freed,
 * the record kept while a dependent may need it recomputed) -> forgotten; or it
 * ends erred or cancelled, and its dependents with it. A ready task goes to the
 * worker where it would start earliest, by its queue and by the bytes of its
 * inputs it would have to fetch. A worker that reports itself idle steals from
 * the busiest (the victim confirms a task has not started before it moves, so no
 * task runs twice). When a worker dies its running tasks are placed again, and
 * results only it held that are still needed are recomputed from their lineage.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define WEFT_SCHED_ALLOWED_FAILURES 3	/* worker deaths a task survives */

struct weft__sched;

struct weft__sched_io {
	/* Send @op (of @type) to process @to (an id given at join). */
	void (*send)(void *arg, uint32_t to, uint16_t type, const void *op);
	void *arg;
};

struct weft__sched_stats {
	uint64_t tasks;			/* known now (not forgotten) */
	uint64_t transitions;		/* state changes so far */
	uint64_t forgotten;		/* tasks forgotten so far */
	uint64_t recomputed;		/* tasks run again after a worker died */
	uint64_t steals;		/* tasks moved to an idle worker */
	uint32_t workers, clients;
	uint64_t threads;		/* the workers' */
	uint64_t tasks_run, tasks_failed, tasks_cancelled;	/* from workers */
	uint64_t mem_used, mem_limit, spilled, restored;	/* workers' sums */
	uint64_t tasks_pending, tasks_running;			/* the same */
	uint64_t map_slots;		/* of the maps of tasks, all told */
};

int weft__sched_create(const struct weft__sched_io *io, struct weft__sched **out);
/* Frees every task and process it knows; sends nothing. */
void weft__sched_destroy(struct weft__sched *s);

/*
 * A worker proved the token and said who it is. Return: 0, -EEXIST if a live
 * worker has that name already, -ENOMEM.
 */
int weft__sched_worker_join(struct weft__sched *s, uint32_t id, const char *name,
			    uint32_t nthreads, uint64_t memory_limit);
int weft__sched_client_join(struct weft__sched *s, uint32_t id);
/* A worker or client is gone (it left, died, or broke the protocol). */
void weft__sched_gone(struct weft__sched *s, uint32_t id);
/* An op from process @from. Ops that make no sense from it are ignored, logged. */
void weft__sched_op(struct weft__sched *s, uint32_t from, uint16_t type, const void *op);
void weft__sched_stats(const struct weft__sched *s, struct weft__sched_stats *st);
/* Give back the room of its maps that a burst of tasks left (from time to time). */
void weft__sched_shrink(struct weft__sched *s);

/* A worker as the scheduler knows it: who, and its latest heartbeat. */
struct weft__sched_worker {
	uint32_t id;
	const char *name;		/* the scheduler's: copy it before it may leave */
	uint32_t nthreads;
	uint64_t memory_limit;		/* as it joined */
	struct weft__op_heartbeat hb;
};
/* Up to @cap of the workers into @out. Return: how many there are (may pass @cap). */
unsigned weft__sched_workers(const struct weft__sched *s, struct weft__sched_worker *out,
			     unsigned cap);

/* The statistics a STATS op carries, by field number. */
enum weft__stat_field {
	WEFT_STAT_WORKERS = 1,
	WEFT_STAT_THREADS,
	WEFT_STAT_TASKS_RUN,
	WEFT_STAT_TASKS_FAILED,
	WEFT_STAT_TASKS_CANCELLED,
	WEFT_STAT_MEM_USED,
	WEFT_STAT_MEM_LIMIT,
	WEFT_STAT_SPILLED,
	WEFT_STAT_RESTORED,
	WEFT_STAT_STEALS,
	WEFT_STAT_TASKS_PENDING,	/* on workers: sent and not ended */
	WEFT_STAT_TASKS_RUNNING,
	WEFT_STAT_FIELDS
};

#endif /* WEFT_SCHED_H */
