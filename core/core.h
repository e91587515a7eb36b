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

/* ---- logging (log.c) ---- */

enum weft__log_level { WEFT_LOG_ERROR, WEFT_LOG_WARN, WEFT_LOG_INFO, WEFT_LOG_DEBUG };

void weft__log(enum weft__log_level lvl, const char *component, const char *fmt, ...)
	__printf(3, 4);
bool weft__log_enabled(enum weft__log_level lvl);
/* Names the calling thread for ps, top -H, perf and gdb (15 bytes kept). */
void weft__name_thread(const char *fmt, ...) __printf(1, 2);
/*
 * Runs the calling thread @levels nice values above where it runs now (to -20 at
 * most); 0 changes nothing. Threads created by it afterwards inherit the value.
 * Return: 0, or -EACCES/-EPERM when the process may not (no CAP_SYS_NICE).
 */
int weft__raise_priority(unsigned levels);

/* ---- configuration (config.c) ---- */

/* "512M", "4G", "1024": bytes. Return: 0 or -EINVAL (junk, overflow). */
int weft__parse_size(const char *s, size_t *out) __must_check;
/* A positive decimal that fits an unsigned. Return: 0 or -EINVAL. */
int weft__parse_uint(const char *s, unsigned *out) __must_check;
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

/* ---- tasks (task.c, run.c; records in record.c) ---- */

enum weft__task_state {
	WT_WAITING,			/* dependencies unfinished */
	WT_READY,			/* in a deque, the inbox or the priority heap */
	WT_RUNNING,			/* its function is running */
	WT_ENDING,			/* claimed by the thread that ends it unrun */
	WT_DONE,			/* final: results valid */
	WT_FAILED,			/* final: err says why */
	WT_CANCELLED,			/* final: never ran */
};
/*
 * A task's state and the list of its waiting dependents share one word, sd: the
 * state and WT_WAITER in the low bits, the newest edge (16-byte aligned) above
 * them. Ending a task is then one exchange, which publishes the final state, takes
 * the list and closes it at once: no edge is queued on a task whose state is final.
 */
#define WT_STATE_MASK	0x7u
#define WT_WAITER	0x8u		/* a thread sleeps on done_seq for this task */
#define WT_BITS		0xfu		/* the state and WT_WAITER */

static inline bool wt_final(uint64_t s)
{
	return (s & WT_STATE_MASK) >= WT_DONE;
}

/* An error shared by a failed task and every dependent it failed. */
struct weft__err {
	_Atomic uint32_t refs;
	int code;			/* WEFT_ETASK, -ECANCELED, -ENOMEM, ... */
	char msg[];
};

/* One output of a task: the handle users hold as struct weft_future. */
#define WEFT_INLINE_RESULT 16
struct weft_future {
	struct weft_task *task;		/* owner; a future holds a reference on it */
	void *data;			/* inl, an alloc/ buffer, or NULL when empty */
	size_t len;			/* bytes of the result */
	size_t usable;			/* bytes accounted in alloc/; 0 when inline */
	union {
		unsigned char inl[WEFT_INLINE_RESULT];	/* small results: no allocation */
		struct weft__stored *st;	/* heap results (usable > 0): see store.c */
	};
};

/* A dependency edge, queued on the dependency until it ends (in its sd). */
struct weft__edge {
	struct weft_task *task;		/* the dependent */
	struct weft__edge *next;
} __attribute__((aligned(16)));	/* its address leaves WT_BITS clear */

_Static_assert(_Alignof(max_align_t) >= 16, "malloc'd edges leave WT_BITS clear too");

static inline struct weft__edge *wt_edges(uint64_t sd)
{
	return (struct weft__edge *)(uintptr_t)(sd & ~(uint64_t)WT_BITS);
}

#define WEFT_INLINE_DEPS 2
#define WEFT_INLINE_ARG 32

/*
 * flags, in line 0, so that freeing a plain task reads no other line: each says
 * which other fields a task changed from a free record's values.
 */
#define TF_ARG_HEAP	0x1		/* arg came from alloc/ (record.c, arg_alloc) */
#define TF_DEPS_HEAP	0x2		/* in and edges were malloc'd */
#define TF_OUT_HEAP	0x4		/* out was malloc'd (several outputs) */
#define TF_OUTPUT	0x8		/* an output was written */
#define TF_EXTRA	0x10		/* label, priority, retries, seq or err set */
#define WEFT_WORD_ARG	8		/* arguments up to this size live in line 0 */

/*
 * A task record. Records come from per-thread caches and never return to malloc
 * before the engine closes. refs counts the futures handed out, one reference per
 * dependent that has not yet retired, and one held by the engine while the task is
 * still in its scheduling structures (a deque, a dependency list, the heap).
 */
struct weft_task {
	/* Line 0: what submit, run, wait and release all touch. */
	weft_fn *fn;
	struct weft__engine *eng;
	_Atomic uint64_t sd;		/* enum weft__task_state | WT_WAITER | edges */
	_Atomic uint32_t pending;	/* unfinished dependencies, +1 while submitting */
	_Atomic uint32_t refs;
	uint32_t nin;			/* dependencies */
	_Atomic uint32_t gen;		/* out1's handle generation (see handles) */
	_Atomic(struct weft_task *) next;	/* the next in the inbox */
	union {
		void *arg;		/* arglen > WEFT_WORD_ARG: arg_inl or the heap */
		unsigned char arg_word[WEFT_WORD_ARG];	/* small arguments */
	};
	uint32_t arglen;		/* at most WEFT_MAX_ARG */
	uint16_t noutputs;		/* >= 1 */
	uint8_t flags;			/* TF_*: written by whoever owns the task */
	bool prio;			/* priority != 0; written before the task is
					 * visible, read when it is scheduled */
	/* Line 1: the result, and where inputs and outputs live. */
	struct weft_future out1;
	struct weft_future *out;	/* &out1, or noutputs of them */
	struct weft_future **in;	/* the dependencies' outputs */
	/*
	 * Line 2: dependencies. A task of one or two is written in lines 0 and 2
	 * only, each a line its submitter may have to take from another core.
	 */
	struct weft_future *in_inl[WEFT_INLINE_DEPS];
	struct weft__edge edge_inl[WEFT_INLINE_DEPS];
	struct weft__edge *edges;	/* one per dependency */
	struct weft_task *ending_next;	/* stack of tasks failing together */
	/* Line 3: used by some tasks only. */
	int priority;
	unsigned retries;		/* re-runs left */
	struct weft__err *err;		/* set once final and not done */
	char *label;			/* owned copy, or NULL: use the function's name */
	uint64_t seq;			/* priority ties; a free batch's size */
	_Alignas(16) unsigned char arg_inl[WEFT_INLINE_ARG];
} __cacheline_aligned;	/* no record shares a line with another thread's record */

_Static_assert(sizeof(struct weft_task) == 4 * WEFT_CACHELINE,
	       "a task record is four cache lines; keep line 0 hot");
_Static_assert(offsetof(struct weft_task, out1) == WEFT_CACHELINE,
	       "line 0 holds what every task touches");
_Static_assert(offsetof(struct weft_task, priority) == 3 * WEFT_CACHELINE,
	       "line 2 holds what a task with dependencies touches");

/*
 * Records are WEFT_RECORD_ALIGN-aligned in their slabs, so a record's own output
 * (out1) sits at WEFT_OUT1_RESIDUE modulo that alignment; the outputs of a
 * multi-output task are allocated so that none ever does (see out_array_alloc).
 * So the task behind a future is found from its address alone, without reading
 * the future's line: waiting on or releasing a plain task touches line 0 only.
 */
#define WEFT_RECORD_ALIGN 256
#define WEFT_OUT1_RESIDUE WEFT_CACHELINE
#define WEFT_OUT_STRIDE 128		/* multi-output futures: residues 0 and 128 */
_Static_assert(sizeof(struct weft_task) == WEFT_RECORD_ALIGN, "records tile the alignment");
_Static_assert(sizeof(struct weft_future) <= WEFT_OUT_STRIDE, "outputs fit their stride");

/* ---- handles (client.c) ---- */

/*
 * A handle users hold (a future, a client) is the object's address with a 16-bit
 * generation in its top bits, which user-space addresses leave clear on x86-64 and
 * AArch64. The object keeps its live handle's generation and bumps it when the
 * handle is released (or the client closed). A handle used after that, even once
 * its memory serves another task, then no longer matches: a double release, a wait
 * after release or a second close is reported (weft__handle_stale) instead of
 * acting on someone else's task. It costs a compare in a line the call reads
 * anyway. A handle kept through 65536 reuses of its memory would match again.
 */
#define WEFT_HANDLE_SHIFT 48
#define WEFT_HANDLE_GENS 0xffffu
#define WEFT_HANDLE_ADDR (((uintptr_t)1 << WEFT_HANDLE_SHIFT) - 1)

static inline void *weft__handle_addr(const void *h)
{
	return (void *)((uintptr_t)h & WEFT_HANDLE_ADDR);
}

static inline void *weft__handle_make(const void *p, uint32_t gen)
{
	return (void *)((uintptr_t)p | (uintptr_t)(gen & WEFT_HANDLE_GENS) << WEFT_HANDLE_SHIFT);
}

static inline bool weft__handle_live(const void *h, _Atomic uint32_t *gen)
{
	/*
	 * Relaxed: the handle's holder is the one that bumps it (release, close);
	 * it got the handle from the call that read the same value.
	 */
	return ((atomic_load_explicit(gen, memory_order_relaxed) & WEFT_HANDLE_GENS) ==
		(uint32_t)((uintptr_t)h >> WEFT_HANDLE_SHIFT));
}

/* The handle is dead from now on. Relaxed: see weft__handle_live. */
static inline void weft__handle_kill(_Atomic uint32_t *gen)
{
	atomic_store_explicit(gen, atomic_load_explicit(gen, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* If @h is live by @gen, end it and say so: one load and one store. */
static inline bool weft__handle_take(const void *h, _Atomic uint32_t *gen)
{
	uint32_t g = atomic_load_explicit(gen, memory_order_relaxed);

	if (unlikely((g & WEFT_HANDLE_GENS) != (uint32_t)((uintptr_t)h >> WEFT_HANDLE_SHIFT)))
		return false;
	atomic_store_explicit(gen, g + 1, memory_order_relaxed);
	return true;
}

/*
 * @call was given a @what (a "future", a "client") that is no longer live: log it
 * and, in debug builds (WEFT_DEBUG, or weft__stale_aborts set), abort.
 */
void weft__handle_stale(const char *call, const char *what) __cold;
extern bool weft__stale_aborts;

/* The task behind future @f (an address: a handle goes through weft__handle_addr). */
static inline struct weft_task *weft__future_task(const struct weft_future *f)
{
	struct weft_task *t;

	WEFT_ASSERT(f && !((uintptr_t)f & ~WEFT_HANDLE_ADDR));	/* not a handle */
	if (((uintptr_t)f & (WEFT_RECORD_ALIGN - 1)) == WEFT_OUT1_RESIDUE) {
		t = container_of(f, struct weft_task, out1);
		/* Only a task of one output hands out its out1. */
		WEFT_ASSERT(t->noutputs == 1);
		return t;
	}
	t = f->task;
	WEFT_ASSERT(t->noutputs > 1 && t->out != &t->out1);
	return t;
}

/*
 * An output of a multi-output task also counts its own references (its future and
 * each dependent's input), so that it is freed once nothing refers to it, not when
 * the task's last output goes: one task may feed many consumers at different times.
 */
struct weft__out_slot {
	struct weft_future f;
	_Atomic uint32_t refs;
	_Atomic uint32_t gen;		/* its handle's generation */
};
_Static_assert(sizeof(struct weft__out_slot) <= WEFT_OUT_STRIDE, "slots fit their stride");

static inline _Atomic uint32_t *weft__out_refs(struct weft_future *f)
{
	return &container_of(f, struct weft__out_slot, f)->refs;
}

/*
 * Where the generation of future @f's handle lives: in its record for a task's
 * own output (found from the address alone, as weft__future_task finds the
 * record), else in its slot of a multi-output task's array.
 */
static inline _Atomic uint32_t *weft__future_gen(struct weft_future *f)
{
	if (((uintptr_t)f & (WEFT_RECORD_ALIGN - 1)) == WEFT_OUT1_RESIDUE)
		return &container_of(f, struct weft_task, out1)->gen;
	return &container_of(f, struct weft__out_slot, f)->gen;
}

/* The handle of future @f, for its caller. */
static inline struct weft_future *weft__future_handle(struct weft_future *f)
{
	return weft__handle_make(f, atomic_load_explicit(weft__future_gen(f),
							 memory_order_relaxed));
}

/*
 * The future behind handle @h given to @call, or NULL (reported) when it is not a
 * live one. A multi-output future's handle is checked in its output array, which
 * is freed with the task: a handle of one released long ago reads freed memory.
 */
static inline struct weft_future *weft__future_of(const struct weft_future *h,
						  const char *call)
{
	struct weft_future *f = weft__handle_addr(h);

	if (likely(weft__handle_live(h, weft__future_gen(f))))
		return f;
	weft__handle_stale(call, "future");
	return NULL;
}

/* Output @i of @t. */
static inline struct weft_future *weft__task_out(struct weft_task *t, unsigned i)
{
	if (t->noutputs == 1)
		return &t->out1;
	return (struct weft_future *)((char *)t->out + (size_t)i * WEFT_OUT_STRIDE);
}

/* The argument bytes a task function receives (NULL when there are none). */
static inline const void *weft__task_arg(const struct weft_task *t)
{
	if (!t->arglen)
		return NULL;
	return t->arglen <= WEFT_WORD_ARG ? (const void *)t->arg_word : t->arg;
}

/* The state bits of @t's sd (enum weft__task_state | WT_WAITER). */
static inline uint32_t wt_state(struct weft_task *t, memory_order mo)
{
	return (uint32_t)(atomic_load_explicit(&t->sd, mo) & WT_BITS);
}

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
	uint64_t rng;			/* xorshift state for victim order */
	struct weft_ctx *running;	/* the task it runs, innermost first; read
					 * and written by this thread only */
	struct weft_task *run_next;	/* made ready by the task it ran last, to run
					 * next (weft__engine_run_next); this thread's */
	pthread_t thread;
};

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
struct weft__engine *weft__client_engine(struct weft_client *c);

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
