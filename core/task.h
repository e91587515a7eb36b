/* SPDX-License-Identifier: MIT */
/*
 * task.h - the task record and the future: their layout, states and the handles
 * users hold, with the inline helpers that go from one to the other. Included by
 * core.h; the record's life is in task.c, run.c, record.c and future.c.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"
#include "compiler.h"

struct weft__engine;

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
#define TF_WATCH	0x20		/* its end is told to the engine's end hook */
#define TF_RECORDED	0x40		/* recorded: seq is its event's id (events.h),
					 * from its end until it retires */
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
/* What weft_future_error() says of a future released already (engine or remote). */
#define WEFT_STALE_FUTURE_MSG "this future was released already: it names no task"
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

#endif /* WEFT_TASK_H */
