/* SPDX-License-Identifier: MIT */
/*
 * core.h - the node runtime's internal contract: topology, the task record, the
 * engine and its worker threads, logging and configuration helpers.
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"
#include "compiler.h"
#include "deque.h"
#include "../alloc/alloc.h"
#include "../spill/spill.h"

#include "log.h"		/* weft__log, thread names and priorities */
#include "samples.h"

/* ---- configuration (config.c) ---- */

/* "512M", "4G", "1024": bytes. Return: 0 or -EINVAL (junk, overflow). */
int weft__parse_size(const char *s, size_t *out) __must_check;
/* A positive decimal that fits an unsigned. Return: 0 or -EINVAL. */
int weft__parse_uint(const char *s, unsigned *out) __must_check;
/*
 * A program's --version on stdout: "@prog LIBRARY (protocol MAJOR.MINOR)". The
 * processes of a cluster must speak one protocol version (proto/proto.h).
 */
void weft__print_version(const char *prog);
/* A fraction in (0, 1]. Return: 0 or -EINVAL. */
int weft__parse_fraction(const char *s, double *out) __must_check;
/* Memory this process may use: physical memory, or its cgroup's limit if lower. */
size_t weft__memory_available(void);

/*
 * The engine's settings, each from its option, else its environment variable, else
 * its default (docs/configuration.md); the one place that reads the environment
 * for them. spill/ and the store are handed theirs.
 */
struct weft__config {
	unsigned nthreads;		/* threads that run tasks */
	size_t memory_limit;		/* bytes of results in memory */
	double mem_target, mem_pause, mem_hard;	/* fractions of memory_limit */
	char *spill_dir;		/* owned */
	unsigned io_nice;		/* the spill thread's raise (WEFT_DEFAULT_IO_NICE) */
	bool io_nice_set;		/* ... asked for in the environment */
	enum weft__spill_backend spill_backend;	/* $WEFT_SPILL_BACKEND */
	bool spill_direct;		/* O_DIRECT unless $WEFT_SPILL_DIRECT is 0 */
	bool record;			/* record tasks (events.h) unless $WEFT_RECORD is 0 */
	char *dashboard;		/* $WEFT_DASHBOARD: HOST:PORT to serve the views at */
};

/*
 * Resolve @o (may not be NULL: a zeroed one takes every default) against the
 * environment, for a machine of @ncores. Logs why a value is refused.
 * Return: 0, -EINVAL, the spill directory's -errno, -ENOMEM.
 */
int weft__config_resolve(struct weft__config *cfg, const struct weft_options *o,
			 unsigned ncores) __must_check;
void weft__config_fini(struct weft__config *cfg);
#define WEFT_MAX_THREADS 4096

/* Memory thresholds, as fractions of the memory limit (DESIGN.md section 6). */
#define WEFT_DEFAULT_TARGET 0.6		/* spill least recently used results above */
#define WEFT_DEFAULT_PAUSE 0.8		/* start no new task above */
#define WEFT_DEFAULT_HARD 0.95		/* refuse a new result that would pass it */
#define WEFT_DEFAULT_LIMIT_SHARE 0.5	/* default limit: this share of what is available */
#define WEFT_MIN_MEMORY_LIMIT (4u << 20)	/* below this the engine cannot work */
/* Nice levels the spill thread runs above the process: $WEFT_IO_NICE, 0 to 39. */
#define WEFT_DEFAULT_IO_NICE 10
#define WEFT_MAX_IO_NICE 39

/* ---- topology (topo.c; the only user of hwloc) ---- */

struct weft__topo;

/* Load the machine's topology, or the one $HWLOC_SYNTHETIC / $HWLOC_XMLFILE give. */
int weft__topo_load(struct weft__topo **out) __must_check;
void weft__topo_unload(struct weft__topo *t);
unsigned weft__topo_ncores(const struct weft__topo *t);
unsigned weft__topo_nnuma(const struct weft__topo *t);
/* The domain (0..nnuma-1) that core @core belongs to. */
unsigned weft__topo_core_numa(const struct weft__topo *t, unsigned core);
/* The OS node number of domain @numa, or -1 if the topology is not this machine's. */
int weft__topo_numa_os_index(const struct weft__topo *t, unsigned numa);
/* False for a synthetic or foreign topology, where binding has no meaning. */
bool weft__topo_can_bind(const struct weft__topo *t);
/* Pin the calling thread to core @core. Return: 0, or -errno from hwloc. */
int weft__topo_bind_self(struct weft__topo *t, unsigned core);
/*
 * Choose @n cores for @n threads, spread across domains: thread i runs on
 * cores_out[i]. With more threads than cores, cores are reused round-robin.
 */
void weft__topo_spread(const struct weft__topo *t, unsigned n, unsigned *cores_out);

#include "task.h"		/* the task record, the future, handles */

/*
 * A per-thread cache of free records, and that thread's counters. Each cache is
 * written by one thread only; others read the counters (relaxed) for statistics and
 * for close's quiescence test.
 */
#define WEFT_CACHE_MAX 128		/* free records a thread keeps at most */

struct weft__cache {
	struct weft__engine *eng;
	unsigned nfree;
	struct weft_task *free[WEFT_CACHE_MAX];	/* free records, newest last */
	_Atomic uint64_t created;	/* tasks this thread entered into scheduling */
	_Atomic uint64_t retired;	/* tasks this thread took out of scheduling */
	_Atomic uint64_t run;		/* task functions run */
	_Atomic uint64_t failed;
	_Atomic uint64_t cancelled;
	_Atomic uint64_t steals;
	_Atomic uint64_t parks;
	const struct weft_task *released;	/* the last record weft_release saw, */
	intptr_t release_stride;	/* and its distance from the one before */
	/* Threads that are not workers: */
	struct weft__cache *next;	/* engine's list of their caches */
	struct weft__cache *tl_next;	/* the owning thread's list */
	uint64_t eng_id;		/* the engine's id; its memory may be gone */
	_Atomic unsigned refs;		/* the engine's and the owning thread's */
	_Atomic bool orphan;		/* its thread has exited: free to adopt */
};

/* Single-writer counter: no locked instruction on the hot path. */
static inline void counter_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/*
 * The same, for a count whose readers must see what happened before each step
 * (the retirements close counts, see quiescent() in engine.c): a release store,
 * a plain store on x86.
 */
static inline void counter_inc_release(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_release);
}

struct weft__worker {
	struct weft__deque dq;		/* first: its lines are the hottest */
	struct weft__cache cache;
	struct weft__engine *eng;
	unsigned id;
	unsigned core;			/* where it is pinned */
	unsigned numa;			/* its domain: where its results are allocated */
	unsigned *victims;		/* other workers, same domain first */
	unsigned nvictims;
	unsigned nlocal;		/* victims[0..nlocal-1] share this domain */
	struct {
		int64_t top;		/* a victim's deque top at this thread's look */
		int64_t ns;		/* when it first saw it there */
	} *seen;			/* per victim: is its batch held up? */
	/*
	 * Its last batch's first index and when it was published: a thief that
	 * finds the top still there knows how long this thread has started none
	 * of it. Written by this thread, read by thieves; relaxed both (a stale
	 * pair only moves a batch's steal by one look: the steal itself is safe).
	 */
	_Atomic int64_t batch_top;
	_Atomic int64_t batch_ns;
	uint64_t rng;			/* xorshift state for victim order */
	bool idle;			/* found no work at its last look (idle()
					 * until a task); this thread's */
	struct weft_ctx *running;	/* the task it runs, innermost first; read
					 * and written by this thread only */
	struct weft__events *events;	/* what it records of its tasks; NULL: off */
	struct weft_task *run_next;	/* made ready by the task it ran last, to run
					 * next (weft__engine_run_next); this thread's */
	pthread_t thread;
};

/*
 * Called on the thread that ends a watched task, once its final state (@final:
 * WT_DONE, WT_FAILED or WT_CANCELLED) is published (so a waiter may return before
 * it runs); @f is its first output. It must be quick: it runs inside the engine's
 * ending of tasks.
 */
typedef void weft__end_hook(void *arg, struct weft_future *f, uint32_t final);

struct weft__engine {
	/* Read-mostly: every call reads these; nothing hot may share their line. */
	uint64_t id;			/* unique per process, for thread-local caches */
	struct weft__topo *topo;
	struct weft__alloc *alloc;
	struct weft__worker **workers;
	unsigned nthreads;
	unsigned nnuma;
	_Atomic bool closing;		/* close has begun: queued tasks end cancelled */
	/*
	 * Above the pause threshold no task starts: the store sets it
	 * (weft__engine_pause), the workers read it. seq_cst stores, paired with the
	 * re-check in park() as every queue's are.
	 */
	_Atomic bool paused;
	bool closed;			/* only held futures remain */
	struct weft__config cfg;	/* the settings, resolved at open */
	struct weft__store *store;	/* results in memory and on disk */

	/*
	 * The inbox: tasks made ready by threads that own no deque, in the order they
	 * came. An intrusive queue after Vyukov's: producers swap themselves in at
	 * the tail, then link the node before them (inbox_first when there was
	 * none); one consumer at a time holds the head. Empty: tail NULL. Tail and
	 * first share a line: a round trip moves one line each way, not two.
	 */
	_Atomic(struct weft_task *) inbox_tail __cacheline_aligned;
	_Atomic(struct weft_task *) inbox_first;
	_Atomic(struct weft_task *) inbox_head __cacheline_aligned;
	intptr_t inbox_stride;		/* between the last two taken: the head's holder's */

	/* Parking: an eventcount. */
	_Atomic uint32_t park_seq __cacheline_aligned;	/* bumped by each wake */
	_Atomic uint32_t nparked;	/* threads between prepare and wake-up */
	_Atomic uint32_t nspinning;	/* idle threads still looking for work */
	_Atomic bool stop;		/* workers exit */

	/* Threads outside the engine (and tasks with nothing to help) sleep here. */
	_Atomic uint32_t done_seq __cacheline_aligned;

	/* Tasks with a priority other than 0: a max-heap under a lock. */
	pthread_mutex_t prio_lock __cacheline_aligned;
	struct weft_task **prio;
	size_t prio_len, prio_cap;
	_Atomic uint32_t prio_count;	/* prio_len, readable without the lock */
	_Atomic int prio_top;		/* priority of prio[0] while prio_count > 0 */
	uint64_t prio_seq;

	/* Records: slabs, and a shared pool of free ones for caches to draw from. */
	pthread_mutex_t pool_lock __cacheline_aligned;
	struct weft_task **pool;	/* room for every record ever made */
	size_t pool_len, pool_cap;
	void **slabs;
	size_t nslabs, slabs_cap;
	size_t nrecords;		/* in all slabs */
	struct weft__cache *ext_caches;
	_Atomic uint64_t husk_live;	/* after close: records still referenced */

	/* Told of each watched task's end (weft__submit_watched); set before any. */
	weft__end_hook *end_hook;
	void *end_hook_arg;

	struct weft__http *http;	/* the views served ($WEFT_DASHBOARD), or NULL */
	struct weft__samples samples;	/* memory and spill over time (samples.h) */
};

/*
 * The handle of weft.h; embedded, it stands for an engine in this process. Never
 * freed: a closed one waits in a list for the next open, so that a second close
 * finds a dead handle (see handles), not freed memory.
 */
struct weft_client {
	struct weft__engine *eng;
	_Atomic uint32_t gen;		/* its handle's generation */
	struct weft_client *next_free;
};

/* The client behind handle @h given to @call, or NULL (reported). */
static inline struct weft_client *weft__client_of(struct weft_client *h, const char *call)
{
	struct weft_client *c = weft__handle_addr(h);

	if (likely(weft__handle_live(h, &c->gen)))
		return c;
	weft__handle_stale(call, "client");
	return NULL;
}

/* The worker the calling thread is, if any (engine.c sets it). */
extern _Thread_local struct weft__worker *weft__tl_worker;

/* The calling thread's worker, if it is one of @eng's. */
static inline struct weft__worker *weft__self(const struct weft__engine *eng)
{
	struct weft__worker *w = weft__tl_worker;

	return (w && w->eng == eng) ? w : NULL;
}

/* True on any engine's worker thread. */
static inline bool weft__self_any(void)
{
	return weft__tl_worker != NULL;
}

/* client.c: the engine behind a client (unit tests peek through it). */
/*
 * For a process that runs tasks for others (the worker): weft_submit, and the
 * engine's end hook is told when the task ends, whatever the end. The hook is set
 * once, before the first such submit.
 */
int weft__submit_watched(struct weft_client *c, weft_fn *fn, struct weft_future *const *deps,
			 size_t ndeps, const void *arg, size_t arglen,
			 const struct weft_task_opts *opts, struct weft_future **out);
void weft__engine_set_end_hook(struct weft__engine *eng, weft__end_hook *hook, void *arg);
/*
 * weft_scatter without the copy: a result with room for @len bytes at *@room, for
 * the caller to fill (an RMA read lands there) before anyone reads it or the store
 * may spill it; weft__scatter_filled then hands it to the store.
 */
int weft__scatter_room(struct weft_client *c, size_t len, void **room, struct weft_future **out);
void weft__scatter_filled(struct weft_client *c, struct weft_future *f);
struct weft__engine *weft__client_engine(struct weft_client *c);
/* What weft_stats gives, for the engine itself (the views ask for it too). */
void weft__engine_stats(struct weft__engine *eng, struct weft_stats *out);
/* trace.c: serve the views at $WEFT_DASHBOARD, if set; a failure is logged only. */
void weft__engine_serve(struct weft__engine *eng);
/* The engine's figures for the views (view.h), as its own server gets them. */
int weft__engine_snap(struct weft__engine *eng, struct weft__view_snap *s);
/*
 * For a cluster's worker: the tasks its threads recorded since @seen (a count per
 * thread of eng->nthreads, zeroed at first, moved on here), at most @cap a thread
 * of the latest, into @out, oldest first per thread. Return: how many.
 */
unsigned weft__engine_events_since(struct weft__engine *eng, uint64_t *seen,
				   struct weft__view_event *out, unsigned cap);
/* An engine in this process whatever $WEFT_SCHEDULER says (a worker's). */
int weft__client_open_embedded(const struct weft_options *o, struct weft_client **out);

/* engine.c */
int weft__engine_open(const struct weft_options *opts, struct weft__engine **out)
	__must_check;
/* Quiesce, stop the threads, free everything but records still referenced. */
void weft__engine_close(struct weft__engine *eng);
/* prio.c: the heap of tasks with a priority. Return: 0 or -ENOMEM; the top or NULL. */
int weft__prio_push(struct weft__engine *eng, struct weft_task *t) __must_check;
/* @positive_only: take the top only if its priority is above the deques' 0. */
struct weft_task *weft__prio_pop(struct weft__engine *eng, bool positive_only);

/* worker.c: a worker thread's loop, started by engine.c */
void *weft__worker_main(void *arg);
#define WEFT_DEQUE_CAP 1024		/* a deque's first array; a batch fits it */

/* Make a ready task runnable: on @w's deque, else the inbox or the heap. */
void weft__engine_schedule(struct weft__engine *eng, struct weft__worker *w,
			   struct weft_task *t);
void weft__engine_run_next(struct weft__engine *eng, struct weft__worker *w,
			   struct weft_task *t);

/*
 * Pause the engine (@on: start no new task) or lift the pause, which wakes every
 * parked worker. Called by the store, which knows the memory (worker.c).
 */
void weft__engine_pause(struct weft__engine *eng, bool on);

/* Wake one parked worker (worker.c). */
void weft__engine_wake_one(struct weft__engine *eng);

/*
 * After publishing work with a seq_cst operation: wake a parked thread unless one
 * is still spinning (it re-checks every queue before it parks). All seq_cst, paired
 * with the increments and re-check in idle(): either we see the parker, or it sees
 * the work.
 */
static inline void weft__notify_strict(struct weft__engine *eng)
{
	if (unlikely(atomic_load_explicit(&eng->nparked, memory_order_seq_cst)) &&
	    !atomic_load_explicit(&eng->nspinning, memory_order_seq_cst))
		weft__engine_wake_one(eng);
}

/*
 * The inbox keeps the order tasks came in without a walk: a consumer runs the
 * queue node by node, each record's miss started one task ahead, where a stack
 * taken whole had to be walked first to reverse it, one cold miss after another.
 *
 * Producers never wait: a swap at the tail, then one store, to the node before or,
 * in an empty queue, to inbox_first. Between the two the new node is not linked
 * yet; a consumer that reaches the gap leaves it for later, and spins instead of
 * parking while the tail says the queue is not empty.
 */
static inline void weft__inbox_push(struct weft__engine *eng, struct weft_task *t)
{
	struct weft_task *prev;

	atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
	/*
	 * seq_cst: ordered before weft__notify_strict's loads and paired with the
	 * load in inbox_empty, so that either a parker sees this task or we see it.
	 */
	prev = atomic_exchange_explicit(&eng->inbox_tail, t, memory_order_seq_cst);
	/* Release pairs with the acquire loads in inbox_pop: t is complete. */
	if (prev)
		atomic_store_explicit(&prev->next, t, memory_order_release);
	else
		atomic_store_explicit(&eng->inbox_first, t, memory_order_release);
	weft__notify_strict(eng);
}

/*
 * Run other work (inside a task) until @done(@arg, mark) or the deadline (< 0: none).
 * @done with mark set must also flag the awaited tasks with WT_WAITER, so that their
 * end wakes sleepers on done_seq. Once no work is left to run, @stuck(@w, @arg) says
 * whether the wait could end only after the waiting task has returned: then it
 * returns -EDEADLK.
 */
int weft__engine_help(struct weft__worker *w, bool (*done)(void *, bool),
		      bool (*stuck)(const struct weft__worker *, void *), void *arg,
		      int64_t deadline_ns);
/* Block a thread that is not a worker until @done(@arg) or the deadline. */
int weft__engine_block(struct weft__engine *eng, bool (*done)(void *, bool), void *arg,
		       int64_t deadline_ns);
void weft__engine_wake_waiters(struct weft__engine *eng);
#ifdef WEFT_TESTING
/*
 * Test hook: how long every worker must have been parked before freed result pages
 * go back to the system (default 1 s). Process-wide. Returns the previous value.
 */
int64_t weft__engine_set_idle_purge(int64_t ns);
#endif

/* record.c */
struct weft__cache *weft__cache_self(struct weft__engine *eng);
void weft__ext_caches_put(struct weft__engine *eng);
unsigned weft__ext_caches_owned(void);
int weft__task_scatter(struct weft__engine *eng, const void *data, size_t len,
		       struct weft_future **out) __must_check;
/* One run of a task: what weft_output(), weft_fail() and weft_spawn() act on. */
struct weft_ctx {
	struct weft__worker *w;
	struct weft_task *t;
	struct weft_ctx *below;		/* the task whose wait this one interrupted */
	char *msg;			/* weft_fail()'s message, malloc'd */
	size_t over_hard;		/* an output refused by the hard memory limit */
};

/* An error with a message, shared by a task and the dependents it fails. */
#define WEFT_MSG_MAX 1024		/* bytes of a message, longer ones are cut */
struct weft__err *weft__err_new(int code, const char *fmt, ...) __printf(2, 3);
void weft__err_put(struct weft__err *e);
/*
 * Claim a task that has not started, so that this thread alone ends it, with @err
 * (set before any reader sees a final state). Return: whether it was claimed.
 */
bool weft__task_claim(struct weft_task *t, struct weft__err *err);
/* End a claimed task unrun (@final: WT_FAILED or WT_CANCELLED) and its dependents. */
void weft__task_end_cascade(struct weft__cache *c, struct weft__worker *w,
			    struct weft_task *t, uint32_t final);
/* run.c: run a task taken from a queue; drops the engine's reference. */
void weft__task_run(struct weft__worker *w, struct weft_task *t);
/* record.c: free results at close; returns how many records are still held. */
uint64_t weft__task_close(struct weft__engine *eng);
/* record.c: at close, once no record is held, every slab and the pool go. */
void weft__task_free_pool(struct weft__engine *eng);
const char *weft__task_label(const struct weft_task *t, char *buf, size_t len);

/* store.c: results in memory and on disk (the spill manager) */
struct weft__store_stats {
	uint64_t spilled_bytes, spilled_items;
	uint64_t restored_bytes, restored_items;
	uint64_t spill_ns, restore_ns;
	uint64_t prefetched_items;	/* read back by the spill thread, ahead of use */
	uint64_t file_bytes;		/* the spill file's size */
	bool paused;			/* workers start no new task */
	bool nospace;			/* the last spill failed (full disk, I/O error) */
};
int weft__store_create(struct weft__engine *eng) __must_check;
void weft__store_stop(struct weft__engine *eng);		/* joins the spill thread */
void weft__store_destroy(struct weft__engine *eng);
/* After results grew: wake (or start) the spill thread if above target. */
void weft__store_kick(struct weft__engine *eng);
/* Would @more bytes of results pass the hard limit? */
bool weft__store_over_hard(struct weft__engine *eng, size_t more);
/* A heap result whose task has ended becomes spillable. */
void weft__store_track(struct weft__engine *eng, struct weft_future *f);
/* Keep the bytes in memory (reading them back if spilled): 0, -EBADMSG, -EIO. */
int weft__store_pin(struct weft__engine *eng, struct weft_future *f, bool view);
void weft__store_unpin(struct weft__engine *eng, struct weft_future *f, bool view);
/* While spilling is blocked (full disk, I/O error): why tasks wait; else NULL. */
const char *weft__store_blocked(struct weft__engine *eng);
/* A task became ready: read its spilled inputs back ahead of it. */
void weft__store_prefetch(struct weft__engine *eng, struct weft_future *const *in,
			  uint32_t n);
/* Free a heap result wherever it is. */
void weft__store_drop(struct weft__engine *eng, struct weft_future *f);
void weft__store_stats(struct weft__engine *eng, struct weft__store_stats *out);
#ifdef WEFT_TESTING
/* For tests: is @f on disk (and where), and the spill file's descriptor. */
int weft__store_on_disk(struct weft__engine *eng, struct weft_future *f, uint64_t *off);
int weft__store_spill_fd(struct weft__engine *eng);
#endif
void weft__engine_wake_all(struct weft__engine *eng);

/* registry.c */
weft_fn *weft__registry_find(const char *name);
const char *weft__registry_name(weft_fn *fn);

#endif /* WEFT_CORE_H */
