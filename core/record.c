// SPDX-License-Identifier: MIT
/*
 * record.c - where task records come from: slabs that grow to a huge page, a shared
 * pool, per-thread caches (clients' ones kept per engine, and adopted when their
 * thread exits), and putting a used record back as a free one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "record.h"

/* ---- record caches ---- */

/*
 * Threads that are not workers (clients) get a cache per engine. The engine and
 * the thread each hold a reference: the engine frees its caches at close, the
 * thread drops its own at exit, and the memory goes with the last one. A thread
 * that exits leaves its cache (free records and counters) as an orphan for the
 * next new thread, so that threads that come and go do not pile up caches; and a
 * thread that alternates between engines finds its cache for each again.
 */
_Thread_local struct weft__ext_tls weft__tl_ext;

static pthread_key_t ext_key;		/* its destructor runs at thread exit */
static pthread_once_t ext_once = PTHREAD_ONCE_INIT;
static bool ext_key_ok;			/* if not, caches wait for their engine */

static void cache_unref(struct weft__cache *c)
{
	/* acq_rel: the last holder sees the other's writes before it frees. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

/* At thread exit (@arg is its weft__tl_ext): the thread lets go of its caches. */
static void ext_thread_exit(void *arg)
{
	struct weft__ext_tls *tl = arg;
	struct weft__cache *c, *next;

	for (c = tl->owned; c; c = next) {
		next = c->tl_next;
		/*
		 * Orphan before the reference goes: after it, only the engine may
		 * hold the cache. Release pairs with the adopter's acquire, so its
		 * counters and free records are handed over whole.
		 */
		atomic_store_explicit(&c->orphan, true, memory_order_release);
		cache_unref(c);
	}
	tl->owned = NULL;
	tl->eng_id = 0;
	tl->cache = NULL;
}

static void ext_key_create(void)
{
	ext_key_ok = !pthread_key_create(&ext_key, ext_thread_exit);
}

/* The thread's caches whose engines have closed go: it holds them alone. */
static void ext_prune(void)
{
	struct weft__cache **pp = &weft__tl_ext.owned, *c;

	while ((c = *pp)) {
		/* Acquire pairs with the engine's release decrement in cache_unref. */
		if (atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
			*pp = c->tl_next;
			free(c);
		} else {
			pp = &c->tl_next;
		}
	}
}

/* With pool_lock held: an orphan left by a thread that exited, made ours. */
static struct weft__cache *cache_adopt(struct weft__engine *eng)
{
	struct weft__cache *c;

	for (c = eng->ext_caches; c; c = c->next) {
		/* Acquire pairs with the release in ext_thread_exit. */
		if (!atomic_load_explicit(&c->orphan, memory_order_acquire))
			continue;
		atomic_store_explicit(&c->orphan, false, memory_order_relaxed);
		/* Relaxed: the engine's reference keeps it alive meanwhile. */
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
		return c;
	}
	return NULL;
}

struct weft__cache *weft__cache_find_external(struct weft__engine *eng)
{
	struct weft__cache *c;

	for (c = weft__tl_ext.owned; c; c = c->tl_next)
		if (c->eng_id == eng->id)
			goto found;
	pthread_once(&ext_once, ext_key_create);
	ext_prune();
	pthread_mutex_lock(&eng->pool_lock);
	c = cache_adopt(eng);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			pthread_mutex_unlock(&eng->pool_lock);
			return NULL;
		}
		c->eng = eng;
		c->eng_id = eng->id;
		/* The engine's reference and this thread's. */
		atomic_init(&c->refs, 2);
		c->next = eng->ext_caches;
		eng->ext_caches = c;
	}
	pthread_mutex_unlock(&eng->pool_lock);
	c->tl_next = weft__tl_ext.owned;
	weft__tl_ext.owned = c;
	if (ext_key_ok)
		pthread_setspecific(ext_key, &weft__tl_ext);
found:
	weft__tl_ext.eng_id = eng->id;
	weft__tl_ext.cache = c;
	return c;
}


struct weft__cache *weft__cache_self(struct weft__engine *eng)
{
	struct weft__worker *w = weft__self(eng);

	return w ? &w->cache : weft__cache_external(eng);
}

/* For tests: how many caches the calling thread holds. */
unsigned weft__ext_caches_owned(void)
{
	struct weft__cache *c;
	unsigned n = 0;

	for (c = weft__tl_ext.owned; c; c = c->tl_next)
		n++;
	return n;
}

/* At engine close: the engine lets go of its clients' caches. */
void weft__ext_caches_put(struct weft__engine *eng)
{
	struct weft__cache *c, *next;

	for (c = eng->ext_caches; c; c = next) {
		next = c->next;
		cache_unref(c);
	}
	eng->ext_caches = NULL;
}

/*
 * A free record keeps the values a plain task needs (its engine, its own output,
 * the inline arrays, zero flags, priority and retries), so that submit writes only
 * what a task changes: every line it need not write is a line that need not move
 * between cores.
 */
static void record_init(struct weft_task *t, struct weft__engine *eng)
{
	t->eng = eng;
	t->out1.task = t;
	t->out = &t->out1;
	t->in = t->in_inl;
	t->edges = t->edge_inl;
	t->noutputs = 1;
}


/*
 * Arguments beyond the record's room are bytes the engine holds, as results are:
 * they come from alloc/ and count against the memory limit (so that pending tasks
 * with large arguments make results spill). The usable size, which the free needs,
 * sits in a header before them.
 */
#define ARG_HEADER 16

void *weft__arg_alloc(struct weft_task *t, size_t arglen)
{
	struct weft__worker *w = weft__self(t->eng);
	size_t usable;
	char *p = weft__alloc(t->eng->alloc, w ? w->numa : 0, ARG_HEADER + arglen, &usable);

	if (!p)
		return NULL;
	memcpy(p, &usable, sizeof(usable));
	weft__store_kick(t->eng);
	return p + ARG_HEADER;
}

static void arg_free(struct weft_task *t)
{
	char *p = (char *)t->arg - ARG_HEADER;
	size_t usable;

	memcpy(&usable, p, sizeof(usable));
	weft__free(t->eng->alloc, p, usable);
}

/* Undo what a task changed in its record (results and error are freed by then). */
void weft__record_reset(struct weft_task *t)
{
	uint8_t f = t->flags;

	if (likely(!f))
		return;
	if (f & TF_OUT_HEAP) {
		free(t->out);
		t->out = &t->out1;
		t->noutputs = 1;
	}
	if (f & TF_DEPS_HEAP) {
		free(t->in);
		free(t->edges);
		t->in = t->in_inl;
		t->edges = t->edge_inl;
	}
	if (f & TF_ARG_HEAP)
		arg_free(t);
	if (f & TF_EXTRA) {
		free(t->label);
		t->label = NULL;
		SET_IF(t->priority, 0);
		SET_IF(t->prio, false);
		SET_IF(t->retries, 0);
		SET_IF(t->seq, 0);
	}
	t->flags = 0;
}

/*
 * With pool_lock held: room in the shared pool for @total pointers, every record
 * there will be, so that giving records back never needs memory.
 */
static int pool_reserve(struct weft__engine *eng, size_t total)
{
	size_t cap = eng->pool_cap ? eng->pool_cap : 1024;
	struct weft_task **p;

	while (cap < total)
		cap *= 2;
	if (cap == eng->pool_cap)
		return 0;
	p = realloc(eng->pool, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	eng->pool = p;
	eng->pool_cap = cap;
	return 0;
}

/* Records in slab @i. */
size_t weft__slab_records(size_t i)
{
	const unsigned doublings = __builtin_ctz(SLAB_MAX / SLAB_MIN);

	return i < doublings ? (size_t)SLAB_MIN << i : SLAB_MAX;
}

static __cold int slab_add(struct weft__engine *eng)
{
	size_t i, n = weft__slab_records(eng->nslabs), bytes = n * sizeof(struct weft_task);
	bool huge = bytes == HUGE_PAGE;
	struct weft_task *slab;

	if (eng->nslabs == eng->slabs_cap) {
		size_t cap = eng->slabs_cap ? 2 * eng->slabs_cap : 16;
		void **s = realloc(eng->slabs, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		eng->slabs = s;
		eng->slabs_cap = cap;
	}
	if (pool_reserve(eng, eng->nrecords + n))
		return -ENOMEM;
	slab = aligned_alloc(huge ? HUGE_PAGE : WEFT_RECORD_ALIGN, bytes);
	if (!slab)
		return -ENOMEM;
	/* Before the first touch. Only a hint: without it the slab is still usable. */
	if (huge)
		madvise(slab, bytes, MADV_HUGEPAGE);
	/* refs == 0 marks a free record, for close's walk over the slabs. */
	memset(slab, 0, bytes);
	eng->slabs[eng->nslabs++] = slab;
	eng->nrecords += n;
	for (i = 0; i < n; i++) {
		record_init(&slab[i], eng);
		eng->pool[eng->pool_len++] = &slab[i];
	}
	return 0;
}

struct weft_task *weft__cache_refill(struct weft__cache *c)
{
	struct weft__engine *eng = c->eng;
	size_t n;

	pthread_mutex_lock(&eng->pool_lock);
	if (!eng->pool_len && slab_add(eng)) {
		pthread_mutex_unlock(&eng->pool_lock);
		return NULL;
	}
	n = eng->pool_len < CACHE_BATCH ? eng->pool_len : CACHE_BATCH;
	eng->pool_len -= n;
	memcpy(c->free, &eng->pool[eng->pool_len], n * sizeof(*c->free));
	pthread_mutex_unlock(&eng->pool_lock);
	c->nfree = (unsigned)n - 1;
	/* The records record_get hands out before its own prefetches reach them. */
	for (size_t i = 2; i <= RECORD_PREFETCH + 1 && i <= n; i++)
		__builtin_prefetch(c->free[n - i], 1);
	return c->free[n - 1];
}


void weft__pool_put(struct weft__engine *eng, struct weft_task *const *recs,
		    unsigned n)
{
	pthread_mutex_lock(&eng->pool_lock);
	/* The pool was sized for every record when its slab was added. */
	memcpy(&eng->pool[eng->pool_len], recs, n * sizeof(*recs));
	eng->pool_len += n;
	pthread_mutex_unlock(&eng->pool_lock);
}

/* At close, once no record is held: every slab and the pool go. */
void weft__task_free_pool(struct weft__engine *eng)
{
	size_t s;

	for (s = 0; s < eng->nslabs; s++)
		free(eng->slabs[s]);
	free(eng->slabs);
	eng->slabs = NULL;
	eng->nslabs = 0;
	eng->nrecords = 0;
	free(eng->pool);
	eng->pool = NULL;
}

/* ---- freeing ---- */

void weft__outputs_free(struct weft_task *t)
{
	unsigned i;

	for (i = 0; i < t->noutputs; i++) {
		struct weft_future *o = weft__task_out(t, i);

		if (o->usable)
			weft__store_drop(t->eng, o);
		SET_IF(o->data, NULL);
		SET_IF(o->len, 0);
		SET_IF(o->usable, 0);
	}
}

void weft__task_free(struct weft__cache *c, struct weft_task *t)
{
	struct weft__engine *eng = t->eng;

	/* A plain task changed nothing in its record that needs undoing. */
	if (unlikely(t->flags)) {
		if (t->flags & TF_OUTPUT)
			weft__outputs_free(t);
		if (t->flags & TF_EXTRA && t->err) {
			weft__err_put(t->err);
			t->err = NULL;
		}
		weft__record_reset(t);
	}
	if (unlikely(eng->closed)) {
		/* After close the records stay in their slabs; the last one frees all. */
		if (atomic_fetch_sub_explicit(&eng->husk_live, 1, memory_order_acq_rel) == 1) {
			weft__task_free_pool(eng);
			free(eng);
		}
		return;
	}
	weft__record_put(eng, c, t);
}

/*
 * One reference less to output @f of @t, before the task reference goes: at the
 * last, the output's result is freed, if the task has ended (its outputs are
 * settled then); if not, the record frees it with the rest.
 */
void weft__output_unref(struct weft_task *t, struct weft_future *f)
{
	if (likely(t->noutputs <= 1))
		return;
	WEFT_ASSERT(atomic_load_explicit(weft__out_refs(f), memory_order_relaxed) >= 1);
	/* acq_rel: the last one out sees every reader's use of the bytes. */
	if (atomic_fetch_sub_explicit(weft__out_refs(f), 1, memory_order_acq_rel) != 1)
		return;
	/* Acquire pairs with the release of the final state: outputs are settled. */
	if (!wt_final(wt_state(t, memory_order_acquire)))
		return;
	if (f->usable)
		weft__store_drop(t->eng, f);
	f->data = NULL;
	f->len = 0;
	f->usable = 0;
}

/* ---- close ---- */

/*
 * After the threads have stopped: free the results of records the caller still
 * holds, and count them; the engine lives on as a husk until they are released.
 */
uint64_t weft__task_close(struct weft__engine *eng)
{
	uint64_t held = 0;
	size_t s, i;

	for (s = 0; s < eng->nslabs; s++) {
		struct weft_task *slab = eng->slabs[s];
		size_t n = weft__slab_records(s);

		for (i = 0; i < n; i++) {
			if (!atomic_load_explicit(&slab[i].refs, memory_order_acquire))
				continue;
			weft__outputs_free(&slab[i]);
			held++;
		}
	}
	return held;
}
