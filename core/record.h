/* SPDX-License-Identifier: MIT */
/*
 * record.h - task records between core's files: the per-thread caches they come
 * from and return to, and the references that keep them, inline for submit, run and
 * release (record.c keeps the slow paths: refilling a cache, the shared pool, slabs,
 * clients' caches, freeing).
 */
#ifndef WEFT_RECORD_H
#define WEFT_RECORD_H

#include <string.h>

#include "core.h"

#define CACHE_BATCH (WEFT_CACHE_MAX / 2)	/* records moved to or from the pool */
/*
 * How far ahead the client's misses start. A record comes from memory several
 * submits or releases away, so a miss must start that many records ahead to be
 * over in time.
 */
#define RECORD_PREFETCH 12		/* records ahead whose miss record_get starts */
/*
 * Slabs grow from 64 KiB to 2 MiB, one huge page: a small program keeps a small
 * first slab, and a million outstanding tasks touch 128 huge pages, not 65536 pages
 * of 4 KiB that each cost a TLB miss (a two-level walk under a hypervisor) in
 * submit, in run and again in release.
 */
#define SLAB_MIN 256			/* records in the first slab */
#define SLAB_MAX 8192			/* and in every slab from the sixth */
_Static_assert(SLAB_MAX * sizeof(struct weft_task) == HUGE_PAGE, "a full slab is a huge page");

/* Store only if the value differs: a read keeps the line shared, a store takes it. */
#define SET_IF(lvalue, value)			\
	do {					\
		if ((lvalue) != (value))	\
			(lvalue) = (value);	\
	} while (0)

/* A client thread's caches: one per engine it has used (record.c). */
struct weft__ext_tls {
	uint64_t eng_id;		/* the engine used last, for the fast path */
	struct weft__cache *cache;
	struct weft__cache *owned;	/* every cache of this thread, by tl_next */
};
extern _Thread_local struct weft__ext_tls weft__tl_ext;

/* record.c */
struct weft__cache *weft__cache_find_external(struct weft__engine *eng) __cold;
struct weft_task *weft__cache_refill(struct weft__cache *c) __cold;
void weft__pool_put(struct weft__engine *eng, struct weft_task *const *recs, unsigned n)
	__cold;
/* Undo what a task changed in its record (results and error are freed by then). */
void weft__record_reset(struct weft_task *t);
/* Argument bytes beyond the record's room, from alloc/ and counted; NULL: none. */
void *weft__arg_alloc(struct weft_task *t, size_t arglen);
/* Records in slab @i. */
size_t weft__slab_records(size_t i);

/* The cache of a thread known not to be one of @eng's workers. */
static inline struct weft__cache *weft__cache_external(struct weft__engine *eng)
{
	if (likely(weft__tl_ext.eng_id == eng->id))
		return weft__tl_ext.cache;
	return weft__cache_find_external(eng);
}

/*
 * Caches hold pointers, not lists threaded through the records: taking or giving
 * back a record reads and writes nothing in it, so a record released on one thread
 * is not pulled into that thread's cache before it is reused.
 */
static inline struct weft_task *weft__record_get(struct weft__cache *c, bool deps)
{
	if (likely(c->nfree)) {
		struct weft_task *t = c->free[--c->nfree];

		/*
		 * Start the miss of a record RECORD_PREFETCH submits ahead: one
		 * that comes from memory takes longer than a submit to arrive.
		 * With dependencies, line 2 too: the thread that freed the record
		 * read it last, and a write must take it back from that core.
		 */
		if (c->nfree >= RECORD_PREFETCH) {
			struct weft_task *ahead = c->free[c->nfree - RECORD_PREFETCH];

			__builtin_prefetch(ahead, 1);
			if (deps)
				__builtin_prefetch(ahead->in_inl, 1);
		}
		return t;
	}
	if (weft__alloc_should_fail())
		return NULL;
	return weft__cache_refill(c);
}

static inline void weft__record_put(struct weft__engine *eng, struct weft__cache *c,
			      struct weft_task *t)
{
	if (unlikely(!c)) {
		/* No cache for this thread (out of memory): a batch of one is fine. */
		weft__pool_put(eng, &t, 1);
		return;
	}
	c->free[c->nfree++] = t;
	if (likely(c->nfree < WEFT_CACHE_MAX))
		return;
	/* Records migrate to the threads that free them; hand the oldest back. */
	weft__pool_put(eng, c->free, CACHE_BATCH);
	c->nfree -= CACHE_BATCH;
	memmove(c->free, &c->free[CACHE_BATCH], c->nfree * sizeof(*c->free));
}

/* ---- references ---- */

/*
 * A record lives while anyone holds a reference: each future handed out, each
 * dependent until it retires, and the engine until the task retires. The last one
 * out frees its results and error and puts the record back (record.c).
 */
void weft__task_free(struct weft__cache *c, struct weft_task *t);
/* Free the results of every output of @t. */
void weft__outputs_free(struct weft_task *t);
void weft__output_unref(struct weft_task *t, struct weft_future *f);

/* One more reference to output @f of @t (its own count, when it has one). */
static inline void weft__output_ref(struct weft_task *t, struct weft_future *f)
{
	/* Relaxed: the caller holds a reference to the output already. */
	if (unlikely(t->noutputs > 1))
		atomic_fetch_add_explicit(weft__out_refs(f), 1, memory_order_relaxed);
}

static inline void weft__task_ref(struct weft_task *t)
{
	/* Relaxed: the caller already holds a reference, so the record is alive. */
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static inline void weft__task_unref(struct weft__cache *c, struct weft_task *t)
{
	/* A reference is dropped only by one who holds it. */
	WEFT_ASSERT(atomic_load_explicit(&t->refs, memory_order_relaxed) >= 1);
	/*
	 * Holding one reference and seeing a count of 1, the caller holds the only
	 * one, and only a holder can add another: it may free without writing the
	 * count, so the line stays shared. The acquire pairs with the other holders'
	 * release decrements. Otherwise acq_rel: the last one out sees every write
	 * made under the other references.
	 */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1) {
		/*
		 * refs == 0 marks a free record for close's walk. A plain store
		 * waits in the store buffer; a locked decrement would stall here.
		 */
		atomic_store_explicit(&t->refs, 0, memory_order_relaxed);
		weft__task_free(c, t);
	} else if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
		weft__task_free(c, t);
	}
}

/*
 * The task leaves the scheduling structures: it lets go of its inputs and drops
 * the engine's reference. Inputs go here, not when the task ends: a thread that
 * made the task ready may still be looking at them (prefetch) until it is queued,
 * and retiring comes after that, exactly once.
 */
static inline void weft__task_retire(struct weft__cache *c, struct weft_task *t)
{
	for (uint32_t i = 0; i < t->nin; i++) {
		struct weft_task *d = weft__future_task(t->in[i]);

		weft__output_unref(d, t->in[i]);
		weft__task_unref(c, d);
	}
	counter_inc_release(&c->retired);
	weft__task_unref(c, t);
}

#endif /* WEFT_RECORD_H */
