/* SPDX-License-Identifier: MIT */
/*
 * graph.h - the join's task graph between join/'s files: the state of one join,
 * the hash that splits keys, per-thread scratch space and the scattering of rows,
 * the hash table a build task makes, and the arguments and functions of the tasks
 * (partition.c, table.c, probe.c), which the client's planning (plan.c) submits.
 */
#ifndef WEFT_JOIN_GRAPH_H
#define WEFT_JOIN_GRAPH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <weft.h>

#include "internal.h"

enum { LEFT, RIGHT };

struct join {
	const struct join_spec *spec;
	struct join_result *res;
	struct weft_client *c;
	struct side side[2];
	struct reader *rd;		/* reads chunks ahead, or NULL */
	atomic_bool joined;		/* the progress bar shows the join phase */
	_Atomic uint64_t early;		/* bytes joined before it did */
	enum join_format fmt;
	bool count_only;
	struct writer out;
	bool writing;
	struct progress prog;
	struct watch watch;
	unsigned nthreads;
	size_t limit;		/* the user's */
	size_t elimit;		/* the engine's share of it, for results */
	size_t share;		/* input bytes of one task */
	size_t chunk;		/* bytes of a file a partition task reads */
	size_t emit;		/* a probe task's buffer of output rows */
	unsigned out_row;	/* most bytes of one output row */
};

/* Splits a key's hash: the top bits choose a part, the low bits a table bucket. */
static inline uint64_t mix(uint64_t k, unsigned level)
{
	k += 0x9e3779b97f4a7c15ull * (level + 1);
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ull;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

static inline unsigned part_of(uint64_t h, unsigned bits)
{
	return bits ? (unsigned)(h >> (64 - bits)) : 0;
}

static inline unsigned log2_ceil(uint64_t n)
{
	unsigned b = 0;

	while ((1ull << b) < n)
		b++;
	return b;
}

/*
 * Per-thread scratch space, kept between tasks so that its pages are faulted in
 * once. Slots let one task hold several buffers; tasks never nest here.
 */
enum { SLOT_READ, SLOT_RECS, SLOT_IDS, SLOT_AUX, SLOT_LINES, NSLOTS };

/* Scratch space of @len bytes in @slot of this thread, or NULL (partition.c). */
void *scratch_get(unsigned slot, size_t len);

/*
 * 16-byte rows scattered to many places at once, four to a cache line: each place's
 * current line is gathered in cache first, and a full line goes out with streaming
 * stores, so that no line is read from memory only to be overwritten. Scattering
 * to fresh memory stalled on exactly that: about half of a partition task's time,
 * and of a probe's sorting by span.
 */
struct lines {
	char (*line)[64];	/* each place's line being gathered */
	char **cur;		/* where each place's next row goes */
	char **begin;		/* where each place's rows begin */
	unsigned n;
};

static inline void lines_set(struct lines *lw, unsigned p, char *at)
{
	lw->cur[p] = lw->begin[p] = at;
}

static inline void lines_put(struct lines *lw, unsigned p, const char *row)
{
	char *d = lw->cur[p], *end = d + 16;
	size_t mine = (size_t)(end - lw->begin[p]);	/* of this line, up to 64 */

	memcpy(lw->line[p] + ((uintptr_t)d & 63), row, 16);
	lw->cur[p] = end;
	if ((uintptr_t)end & 63)
		return;
	if (mine < 64) {
		/* The line's head is another place's: only this place's part. */
		memcpy(lw->begin[p], lw->line[p] + (64 - mine), mine);
		return;
	}
#ifdef __SSE2__
	const __m128i *l = (const __m128i *)lw->line[p];
	__m128i *o = (__m128i *)(end - 64);

	_mm_stream_si128(o, _mm_load_si128(l));
	_mm_stream_si128(o + 1, _mm_load_si128(l + 1));
	_mm_stream_si128(o + 2, _mm_load_si128(l + 2));
	_mm_stream_si128(o + 3, _mm_load_si128(l + 3));
#else
	memcpy(end - 64, lw->line[p], 64);
#endif
}

/* Room for @n places, or NULL (then scatter row by row); each place is set after. */
struct lines *lines_get(struct lines *lw, unsigned n);
/* The lines still gathering go out with plain stores; the streamed ones are fenced. */
void lines_end(struct lines *lw);

/* ---- progress ---- */

static inline void progress_add(struct join *j, uint64_t bytes)
{
	atomic_fetch_add_explicit(&j->prog.done, bytes, memory_order_relaxed);
}

/*
 * Work of the join proper. While the files are still read (plan_resident), the bar
 * shows the reading: such work is kept aside and added once the join phase shows.
 */
static inline void progress_join(struct join *j, uint64_t bytes)
{
	/* Acquire pairs with the release in progress_joined(). */
	if (atomic_load_explicit(&j->joined, memory_order_acquire))
		progress_add(j, bytes);
	else
		atomic_fetch_add_explicit(&j->early, bytes, memory_order_relaxed);
}

/* The join phase shows: add what was done before (also at the end, for stragglers). */
static inline void progress_joined(struct join *j)
{
	atomic_store_explicit(&j->joined, true, memory_order_release);
	progress_add(j, atomic_exchange_explicit(&j->early, 0, memory_order_relaxed));
}

/* ---- partition tasks (partition.c) ---- */

/* What a partition task says of each of its parts. */
struct part_stat {
	uint64_t rows;
	uint64_t min, max;	/* key range, to tell a part of one key */
};

struct part_arg {
	struct join *j;
	unsigned side;
	unsigned level;		/* the hash that splits */
	unsigned bits;		/* into 2^bits parts */
	size_t chunk;		/* file chunk (level 0) */
};

/* Level 0: read a chunk of a file and split its rows. */
int part_file(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	      const void *arg, size_t arglen);
/* Deeper levels: split a part's records again, with another hash. */
int part_again(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen);

/* ---- hash tables (table.c) ---- */

/*
 * A hash table, as one result: rows grouped by bucket (a counting sort), with
 * start[b]..start[b+1] the rows of bucket b. Keys apart from the rest of the rows,
 * so that a probe touches one line per bucket. For counting, rows of one key are
 * folded into one entry: the key and the sum of its words, and the key's count in
 * an array after the entries, which only a table with a repeated key has (unique
 * keys are the common build side: 16 bytes an entry, where 24 overflowed the
 * core's cache).
 */
struct table {
	uint64_t nrows;		/* entries */
	uint32_t bucket_bits;
	uint32_t level;		/* the hash of the part, whose low bits pick buckets */
	uint32_t rest;		/* bytes after the key of each row (rows only) */
	uint32_t counted;	/* counting: 1 if the counts array follows the entries */
};

static inline const uint32_t *tab_start(const struct table *t)
{
	return (const uint32_t *)(t + 1);
}

static inline const uint64_t *tab_keys(const struct table *t)
{
	size_t nb = (size_t)1 << t->bucket_bits;

	return (const uint64_t *)((const char *)tab_start(t) + ((nb + 2) * 4 & ~(size_t)7));
}

static inline size_t tab_size(uint32_t bucket_bits, uint64_t n, size_t per)
{
	size_t nb = (size_t)1 << bucket_bits;

	return sizeof(struct table) + ((nb + 2) * 4 & ~(size_t)7) + n * (8 + per);
}

/* A counting table's entry: one key and the sum of its rows' words. */
struct tab_count {
	uint64_t key, sum;
};

/* A counting table's bytes: @n entries, and their counts if @counted. */
static inline size_t count_tab_size(uint32_t bucket_bits, uint64_t n, bool counted)
{
	return tab_size(bucket_bits, n, 8) + (counted ? n * sizeof(uint32_t) : 0);
}

/* Its counts, when it has them: entry i's count is tab_counts(t)[i]. */
static inline const uint32_t *tab_counts(const struct table *t)
{
	return (const uint32_t *)(tab_keys(t) + 2 * t->nrows);
}

struct build_arg {
	struct join *j;
	unsigned side;
	unsigned level;
};

/* Turn bucket counts into starts, as a counting sort's first half. */
void bucket_starts(uint32_t *start, size_t nb);
/* Build the table of a part's smaller side from its pieces. */
int build_task(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen);

/* ---- probes (probe.c) ---- */

struct probe_arg {
	struct join *j;
	unsigned side;		/* of the records probing; the table is the other's */
};

/* Sums of joined rows, as build/probe or left/right: a probe's result. */
struct sums {
	uint64_t rows, left, right;
};

/* Probe a table (input 0) with the other side's pieces: count, or write rows. */
int probe_task(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen);
/* A csv row's text after its key, read back by its csv_ref if it has one. */
long emit_rest(const struct side *s, char *p, const char *rest);

/* ---- planning (plan.c) ---- */

/* Partition, plan each part, build and probe, and gather the sums: the join. */
int plan_run(struct join *j);

#endif /* WEFT_JOIN_GRAPH_H */
