/* SPDX-License-Identifier: MIT */
/*
 * internal.h - spill/'s own contract between its files: the spill file's state,
 * its constants, and the functions one file of spill/ calls in another.
 *
 * The file is a row of segment files, each an unnamed file of its own. Freeing a
 * file's blocks holds its inode lock while the file system discards them (a second
 * or more per GiB), and every read of that file waits meanwhile; with segments,
 * only reads of the one being trimmed do. A trimmer thread punches released space
 * out, so that neither the writer nor the readers wait for it.
 */
#ifndef WEFT_SPILL_INTERNAL_H
#define WEFT_SPILL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "spill.h"
#include "backend.h"

#define ITEM_ALIGN 64			/* items start on cache-line boundaries */
#define BLOCK 4096			/* O_DIRECT alignment of offsets, lengths, buffers */
#define BOUNCE HUGE_PAGE		/* direct reads of unaligned items, a piece at a time */
#define SEG_SHIFT 28			/* the first segments are 256 MiB ... */
#define SEGS_PER_TIER 32		/* ... and each 32 segments, 4 times larger: a TiB
					 * takes fewer than 150 descriptors */
#define MAX_SEGS 1024
#define TRIM_CUTS 64			/* punches per trim at most */
#define TRIM_AHEAD 4			/* budgets the trimmer may have queued */
/*
 * Trims wait until writes have paused this long. A disk that caches writes (as the
 * virtual disks we measure on do) flushes them before a discard, and serves no read
 * meanwhile: a second or more per GiB written. Trimming between writes would pay
 * that again and again; after them, once.
 */
#define TRIM_QUIET_NS 500000000ull

struct range {
	uint64_t off, len;
};

/* Released space being punched out, reserved (out of the free list) meanwhile. */
struct trim_job {
	uint64_t off, len;
};

struct weft__spill {
	pthread_mutex_t lock;		/* space, stats, the trimmer's queue; no I/O under it */
	char *dir;			/* where segments are made */
	unsigned seg_shift;		/* log2 of the first segments' size */
	_Atomic int *seg;		/* each segment's file, or -1 before its first write */
	const struct spill_ops *ops;
	void *ctx;
	bool direct;			/* O_DIRECT: writes staged, reads bounced */
	size_t stage_bytes;		/* a power of two (WEFT__SPILL_STAGE_MIN..MAX) */
	void *stage;			/* direct: the spill thread's staging buffer */
	pthread_mutex_t bounce_lock;	/* one read at a time through: */
	void *bounce;			/* direct: after the stage, in its mapping */
	struct range *free;		/* free ranges, sorted by offset, never adjacent */
	size_t nfree, free_cap;
	uint64_t end;			/* the file's used length */
	struct range *rel;		/* released since the last trim, in any order */
	size_t nrel, rel_cap;
	uint64_t released;		/* their bytes */
	bool no_trim;			/* the file system cannot punch holes */
	struct range *work;		/* the writer's: what a trim still has to do, */
	size_t nwork, work_at;		/* sorted and merged, done up to work_at */
	pthread_t trimmer;
	bool trimmer_on, trim_stop;
	pthread_cond_t trim_wake;	/* the trimmer waits here for jobs */
	pthread_cond_t trim_idle;	/* tests wait here for the trimmer */
	struct trim_job *jobs;		/* its queue: jobs_at .. njobs - 1 are to do */
	size_t njobs, jobs_at, jobs_cap;
	uint64_t trim_pending;		/* bytes queued or being punched */
	uint64_t wrote_ns;		/* when the last write ended */
	uint64_t trim_quiet_ns;		/* TRIM_QUIET_NS, but for tests */
	struct weft__spill_stats st;
};

static inline uint64_t now_ns(void)
{
	return (uint64_t)weft__mono_ns();
}

static inline uint64_t span(size_t len)
{
	return ((uint64_t)len + ITEM_ALIGN - 1) & ~(uint64_t)(ITEM_ALIGN - 1);
}

static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* space.c (under s->lock) */
uint64_t weft__spill_space_alloc(struct weft__spill *s, uint64_t len, uint64_t align);
void weft__spill_space_free(struct weft__spill *s, uint64_t off, uint64_t len);
void weft__spill_space_take(struct weft__spill *s, uint64_t off, uint64_t len);
size_t weft__spill_free_after(const struct weft__spill *s, uint64_t off);
uint64_t weft__spill_used_end(const struct weft__spill *s);

/* segment.c */
int weft__spill_create_file(const char *dir, bool *direct);
unsigned weft__spill_seg_of(const struct weft__spill *s, uint64_t off, uint64_t *base,
			    uint64_t *len);
int weft__spill_seg_fd(const struct weft__spill *s, unsigned i);
int weft__spill_seg_make(struct weft__spill *s, uint64_t off, uint64_t len);
bool weft__spill_seg_place(const struct weft__spill *s, struct spill_io *io);
void weft__spill_seg_submit(struct weft__spill *s, const struct spill_ops *ops, void *ctx,
			    bool write, struct spill_io *ios, unsigned n);

#endif /* WEFT_SPILL_INTERNAL_H */
