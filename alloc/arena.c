// SPDX-License-Identifier: MIT
/*
 * arena.c - result memory from jemalloc: one arena per NUMA domain, its extents bound
 * to that domain's node as jemalloc maps them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <jemalloc/jemalloc.h>

#include "alloc.h"
#include "../util/huge.h"

#define MPOL_PREFERRED 1

/*
 * jemalloc passes the hooks pointer back to every hook, so each arena's hooks sit at
 * the start of a struct that also says where its pages go.
 */
struct numa_hooks {
	extent_hooks_t hooks;			/* must stay first */
	extent_hooks_t *dflt;			/* jemalloc's own hooks, which map memory */
	int os_node;				/* node to prefer, or -1 */
	_Atomic unsigned bind_failed;		/* mbind refused at least once */
};

struct weft__alloc {
	struct weft__acct acct;			/* exact live bytes */
	unsigned nnuma;				/* arenas in use */
	unsigned arena[WEFT_ALLOC_MAX_NUMA];	/* jemalloc arena index per domain */
	struct numa_hooks hooks[WEFT_ALLOC_MAX_NUMA];
};

static void bind_pages(struct numa_hooks *nh, void *addr, size_t size)
{
	unsigned long mask[1024 / (8 * sizeof(unsigned long))] = { 0 };
	unsigned long bits = 8 * sizeof(unsigned long);

	if (nh->os_node < 0 || (unsigned)nh->os_node >= 8 * sizeof(mask))
		return;
	mask[nh->os_node / bits] = 1ul << (nh->os_node % bits);
	/* Preferred, not strict: a full node must spill to another, not fail. */
	if (syscall(SYS_mbind, addr, size, MPOL_PREFERRED, mask, 8 * sizeof(mask), 0))
		atomic_store_explicit(&nh->bind_failed, 1, memory_order_relaxed);
}

static void *numa_extent_alloc(extent_hooks_t *h, void *new_addr, size_t size,
			       size_t alignment, bool *zero, bool *commit,
			       unsigned arena_ind)
{
	struct numa_hooks *nh = (struct numa_hooks *)h;
	void *p = nh->dflt->alloc(nh->dflt, new_addr, size, alignment, zero, commit,
				  arena_ind);

	if (p)
		bind_pages(nh, p, size);
	return p;
}

/* Forwarders: jemalloc's default hooks expect their own hooks pointer. */
static bool numa_extent_dalloc(extent_hooks_t *h, void *addr, size_t size,
			       bool committed, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->dalloc ? d->dalloc(d, addr, size, committed, arena_ind) : true;
}

static void numa_extent_destroy(extent_hooks_t *h, void *addr, size_t size,
				bool committed, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	if (d->destroy)
		d->destroy(d, addr, size, committed, arena_ind);
}

static bool numa_extent_commit(extent_hooks_t *h, void *addr, size_t size,
			       size_t offset, size_t length, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->commit ? d->commit(d, addr, size, offset, length, arena_ind) : true;
}

static bool numa_extent_decommit(extent_hooks_t *h, void *addr, size_t size,
				 size_t offset, size_t length, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->decommit ? d->decommit(d, addr, size, offset, length, arena_ind) : true;
}

static bool numa_extent_purge_lazy(extent_hooks_t *h, void *addr, size_t size,
				   size_t offset, size_t length, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->purge_lazy ? d->purge_lazy(d, addr, size, offset, length, arena_ind)
			     : true;
}

static bool numa_extent_purge_forced(extent_hooks_t *h, void *addr, size_t size,
				     size_t offset, size_t length, unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->purge_forced ?
		d->purge_forced(d, addr, size, offset, length, arena_ind) : true;
}

static bool numa_extent_split(extent_hooks_t *h, void *addr, size_t size,
			      size_t size_a, size_t size_b, bool committed,
			      unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->split ? d->split(d, addr, size, size_a, size_b, committed, arena_ind)
			: true;
}

static bool numa_extent_merge(extent_hooks_t *h, void *addr_a, size_t size_a,
			      void *addr_b, size_t size_b, bool committed,
			      unsigned arena_ind)
{
	extent_hooks_t *d = ((struct numa_hooks *)h)->dflt;

	return d->merge ? d->merge(d, addr_a, size_a, addr_b, size_b, committed,
				   arena_ind) : true;
}

static int default_hooks(extent_hooks_t **out)
{
	size_t sz = sizeof(*out);
	int ret = mallctl("arena.0.extent_hooks", out, &sz, NULL, 0);

	return ret ? -ret : 0;
}

/*
 * Freed pages stay in the arena until weft gives them back: the store purges when
 * the memory limit needs the room, and the engine once it has been idle (see
 * core/engine.c). jemalloc's decay by time purged pages while work went on, and the
 * next results faulted them in again, a cost in system time that grows with every
 * byte of results that passes through.
 */
static int keep_freed_pages(unsigned idx)
{
	static const char *const kinds[] = { "dirty", "muzzy" };
	ssize_t never = -1;
	char name[64];

	for (unsigned k = 0; k < 2; k++) {
		int ret;

		snprintf(name, sizeof(name), "arena.%u.%s_decay_ms", idx, kinds[k]);
		ret = mallctl(name, NULL, NULL, &never, sizeof(never));
		if (ret)
			return -ret;
	}
	return 0;
}

static void destroy_arena(unsigned idx)
{
	char name[64];

	snprintf(name, sizeof(name), "arena.%u.destroy", idx);
	(void)mallctl(name, NULL, NULL, NULL, 0);
}

int weft__alloc_create(unsigned nnuma, const int *os_node, struct weft__alloc **out)
{
	extent_hooks_t *dflt;
	struct weft__alloc *a;
	unsigned i;
	int ret;

	if (!nnuma || nnuma > WEFT_ALLOC_MAX_NUMA || !os_node || !out)
		return -EINVAL;
	ret = default_hooks(&dflt);
	if (ret)
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (i = 0; i < nnuma; i++) {
		struct numa_hooks *nh = &a->hooks[i];
		extent_hooks_t *hp = &nh->hooks;
		size_t sz = sizeof(a->arena[i]);

		nh->hooks = (extent_hooks_t){
			.alloc = numa_extent_alloc,
			.dalloc = numa_extent_dalloc,
			.destroy = numa_extent_destroy,
			.commit = numa_extent_commit,
			.decommit = numa_extent_decommit,
			.purge_lazy = numa_extent_purge_lazy,
			.purge_forced = numa_extent_purge_forced,
			.split = numa_extent_split,
			.merge = numa_extent_merge,
		};
		nh->dflt = dflt;
		nh->os_node = os_node[i];
		ret = mallctl("arenas.create", &a->arena[i], &sz, &hp, sizeof(hp));
		if (ret) {
			ret = -ret;
			goto err_destroy_arenas;
		}
		a->nnuma = i + 1;
		ret = keep_freed_pages(a->arena[i]);
		if (ret)
			goto err_destroy_arenas;
	}
	*out = a;
	return 0;

err_destroy_arenas:
	while (a->nnuma)
		destroy_arena(a->arena[--a->nnuma]);
	free(a);
	return ret;
}

void weft__alloc_destroy(struct weft__alloc *a)
{
	if (!a)
		return;
	/* Destroying an arena returns all of its extents, live or not. */
	while (a->nnuma)
		destroy_arena(a->arena[--a->nnuma]);
	free(a);
}

/*
 * No thread cache: an arena must be destroyable at close without chasing every
 * thread's cache, and results are large enough that the arena lock is not the cost.
 */
#define FLAGS(a, numa) (MALLOCX_ARENA((a)->arena[numa]) | MALLOCX_TCACHE_NONE | \
			MALLOCX_ALIGN(16))

void *weft__alloc(struct weft__alloc *a, unsigned numa, size_t len, size_t *usable)
{
	void *p;

	if (numa >= a->nnuma)
		numa = 0;
	if (weft__alloc_should_fail() || !len)
		return NULL;
	p = mallocx(len, FLAGS(a, numa));
	if (!p)
		return NULL;
	*usable = sallocx(p, 0);
	weft__acct_add(&a->acct, *usable);
	return p;
}

void weft__free(struct weft__alloc *a, void *p, size_t usable)
{
	if (!p)
		return;
	weft__acct_sub(&a->acct, usable);
	/*
	 * Before the arena may hand it out again: smaller results may come to live
	 * there, and once its pages are purged, touching a few bytes of one would fault
	 * in 2 MiB (1 GiB of results freed and purged, then 20,000 of 16-40 KiB, 64
	 * bytes of each written: 465 MiB resident against 86).
	 */
	if (usable >= 2 * HUGE_PAGE)
		huge_advise_inside(p, usable, MADV_NOHUGEPAGE);
	/* The arena is found from the pointer; only the cache choice matters here. */
	dallocx(p, MALLOCX_TCACHE_NONE);
}

void weft__alloc_advise_read(void *p, size_t len)
{
	if (len >= 2 * HUGE_PAGE)
		huge_advise_inside(p, len, MADV_HUGEPAGE);
}

size_t weft__alloc_bytes(const struct weft__alloc *a)
{
	return atomic_load_explicit(&a->acct.bytes, memory_order_relaxed);
}

size_t weft__alloc_peak(const struct weft__alloc *a)
{
	return atomic_load_explicit(&a->acct.peak, memory_order_relaxed);
}

size_t weft__alloc_held(struct weft__alloc *a)
{
	uint64_t epoch = 1;
	size_t total = 0, sz = sizeof(epoch);
	char name[64];

	(void)mallctl("epoch", &epoch, &sz, &epoch, sz);
	for (unsigned i = 0; i < a->nnuma; i++) {
		static const char *const kinds[] = { "pdirty", "pmuzzy" };

		for (unsigned k = 0; k < 2; k++) {
			size_t pages = 0, psz = sizeof(pages);

			snprintf(name, sizeof(name), "stats.arenas.%u.%s", a->arena[i],
				 kinds[k]);
			if (mallctl(name, &pages, &psz, NULL, 0))
				return SIZE_MAX;	/* no stats */
			total += pages * (size_t)sysconf(_SC_PAGESIZE);
		}
	}
	return total;
}

void weft__alloc_purge(struct weft__alloc *a, size_t keep)
{
	char name[64];

	/* SIZE_MAX, no stats: purge to be sure. */
	if (weft__alloc_held(a) <= keep)
		return;
	for (unsigned i = 0; i < a->nnuma; i++) {
		snprintf(name, sizeof(name), "arena.%u.purge", a->arena[i]);
		(void)mallctl(name, NULL, NULL, NULL, 0);
	}
}

unsigned weft__alloc_unbound(const struct weft__alloc *a)
{
	unsigned i, n = 0;

	for (i = 0; i < a->nnuma; i++)
		n += atomic_load_explicit(&a->hooks[i].bind_failed, memory_order_relaxed);
	return n;
}
