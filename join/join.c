// SPDX-License-Identifier: MIT
/*
 * The join as a task graph: a grace hash join.
 *
 * 1. One partition task per chunk of each file reads its rows, turns them into
 *    records and splits them by a hash of the key into P outputs (one multi-output
 *    task), plus one more output with each part's row count and key range.
 * 2. The client reads those counts and plans each part: a build task makes a hash
 *    table of the smaller side's records, a result like any other (it holds no
 *    pointers, so it can spill), and probe tasks each take the table and a group of
 *    the other side's records. A part whose smaller side is larger than a task's
 *    share of memory is split again with a new hash (its records go through
 *    partition tasks once more), and a part that splitting cannot shrink (one key on
 *    all its rows) is joined block by block: a table per block of the smaller side,
 *    each probed with all of the other side.
 *
 * Every result lives in the engine's memory and spills when it is cold; what a task
 * keeps for itself (read buffers, a table's sort space) is bounded and reused per
 * thread. The sizes follow the memory limit: see budgets().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <weft.h>

#include "internal.h"

#define MAX_LEVEL 8		/* splits of one part before it is joined in blocks */
#define MAX_FANOUT 4096
#define CACHE_PART (1u << 20)	/* an in-memory part's smaller side: fits in cache */
#define MIN_PIECE (256u << 10)	/* pieces that will spill are at least this, on average */
#define PIECE_COST 4096		/* bytes of limit per piece: its bookkeeping is ~1/16 */
#define MAX_CHUNK (16u << 20)
/*
 * Right bytes per probe of a resident part: at least this, and an eighth of its
 * table, from which a probe by span reads each span's slice through first.
 */
#define RESIDENT_GROUP (256u << 10)
#define RESIDENT_PRIO 1			/* ahead of the reads (0) */
#define ENGINE_TARGET 0.6		/* the engine spills down to this share of its limit */

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

static unsigned log2_ceil(uint64_t n)
{
	unsigned b = 0;

	while ((1ull << b) < n)
		b++;
	return b;
}

/* The most bits of fan-out that keep pieces of a @bytes input large. */
static unsigned split_cap(size_t bytes)
{
	unsigned b = 0;

	while (b < 12 && bytes >> (b + 1) >= MIN_PIECE)
		b++;
	return b > 2 ? b : 2;
}

/*
 * Per-thread scratch space, kept between tasks so that its pages are faulted in
 * once. Slots let one task hold several buffers; tasks never nest here.
 */
enum { SLOT_READ, SLOT_RECS, SLOT_IDS, SLOT_AUX, SLOT_LINES, NSLOTS };

struct scratch {
	void *p[NSLOTS];
	size_t cap[NSLOTS];
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *arg)
{
	struct scratch *s = arg;

	for (int i = 0; i < NSLOTS; i++)
		if (s->p[i])
			munmap(s->p[i], s->cap[i]);
	free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static void *scratch(unsigned slot, size_t len)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || pthread_setspecific(scratch_key, s)) {
			free(s);
			return NULL;
		}
	}
	if (s->cap[slot] < len) {
		size_t cap = (len + 4095) & ~(size_t)4095;
		void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		if (s->p[slot])
			munmap(s->p[slot], s->cap[slot]);
		s->p[slot] = p;
		s->cap[slot] = cap;
	}
	return s->p[slot];
}

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

/* Room for @n places, or NULL (then scatter row by row); each place is set after. */
static struct lines *lines_get(struct lines *lw, unsigned n)
{
	char *m = scratch(SLOT_LINES, (size_t)n * (64 + 2 * sizeof(char *)) + 64);

	if (!m)
		return NULL;
	lw->line = (char (*)[64])(((uintptr_t)m + 63) & ~(uintptr_t)63);
	lw->cur = (char **)(lw->line + n);
	lw->begin = lw->cur + n;
	lw->n = n;
	return lw;
}

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

/* The lines still gathering go out with plain stores; the streamed ones are fenced. */
static void lines_end(struct lines *lw)
{
	for (unsigned p = 0; p < lw->n; p++) {
		size_t part = (uintptr_t)lw->cur[p] & 63, mine = lw->cur[p] - lw->begin[p];
		size_t c = part < mine ? part : mine;

		if (c)
			memcpy(lw->cur[p] - c, lw->line[p] + (part - c), c);
	}
#ifdef __SSE2__
	_mm_sfence();	/* before the task's end publishes the rows */
#endif
}

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

/* Split @n records by their hash into the task's outputs; the last output is stats. */
static int scatter(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		   unsigned width, unsigned level, unsigned bits)
{
	unsigned nparts = 1u << bits;
	size_t n = 0;
	struct part_stat *st;
	struct lines lwb, *lw = NULL;
	uint16_t *ids;
	char **dst;
	uint64_t *fill;

	for (size_t i = 0; i < nin; i++)
		n += in[i].len / width;
	ids = scratch(SLOT_IDS, n * sizeof(*ids) + 1);
	dst = scratch(SLOT_AUX, nparts * (sizeof(*dst) + sizeof(*fill)));
	st = weft_output_n(ctx, nparts, nparts * sizeof(*st));
	if (!ids || !dst || !st)
		return weft_fail(ctx, "partition: out of memory for %zu rows", n);
	fill = (uint64_t *)(dst + nparts);
	for (unsigned p = 0; p < nparts; p++)
		st[p] = (struct part_stat){ 0, UINT64_MAX, 0 };

	size_t r = 0;

	for (size_t i = 0; i < nin; i++) {
		const char *rec = in[i].data;

		for (size_t k = 0; k < in[i].len / width; k++, rec += width) {
			uint64_t key = rec_key(rec);
			unsigned p = part_of(mix(key, level), bits);
			struct part_stat *s = &st[p];

			ids[r++] = p;
			s->rows++;
			s->min = key < s->min ? key : s->min;
			s->max = key > s->max ? key : s->max;
		}
	}
	for (unsigned p = 0; p < nparts; p++) {
		fill[p] = 0;
		dst[p] = NULL;
		if (!st[p].rows)
			continue;
		dst[p] = weft_output_n(ctx, p, st[p].rows * width);
		if (!dst[p])
			return weft_fail(ctx, "partition: no memory for part %u (%" PRIu64
					 " rows)", p, st[p].rows);
	}
	if (width == 16 && (lw = lines_get(&lwb, nparts))) {
		for (unsigned p = 0; p < nparts && lw; p++) {
			lines_set(lw, p, dst[p]);
			if ((uintptr_t)dst[p] & 15)
				lw = NULL;	/* rows would straddle lines: row by row */
		}
	}
	r = 0;
	for (size_t i = 0; i < nin; i++) {
		const char *rec = in[i].data;
		size_t m = in[i].len / width;

		if (lw) {
			/* The common case: 16-byte rows, a line at a time. */
			for (size_t k = 0; k < m; k++, rec += 16)
				lines_put(lw, ids[r++], rec);
			continue;
		}
		for (size_t k = 0; k < m; k++, rec += width) {
			unsigned p = ids[r++];

			memcpy(dst[p] + fill[p], rec, width);
			fill[p] += width;
		}
	}
	if (lw)
		lines_end(lw);
	return 0;
}

static void progress_add(struct join *j, uint64_t bytes)
{
	atomic_fetch_add_explicit(&j->prog.done, bytes, memory_order_relaxed);
}

/*
 * Work of the join proper. While the files are still read (plan_resident), the bar
 * shows the reading: such work is kept aside and added once the join phase shows.
 */
static void progress_join(struct join *j, uint64_t bytes)
{
	/* Acquire pairs with the release in progress_joined(). */
	if (atomic_load_explicit(&j->joined, memory_order_acquire))
		progress_add(j, bytes);
	else
		atomic_fetch_add_explicit(&j->early, bytes, memory_order_relaxed);
}

/* The join phase shows: add what was done before (also at the end, for stragglers). */
static void progress_joined(struct join *j)
{
	atomic_store_explicit(&j->joined, true, memory_order_release);
	progress_add(j, atomic_exchange_explicit(&j->early, 0, memory_order_relaxed));
}

/* Level 0: read a chunk of a file and split its rows. */
static int part_file(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		     const void *arg, size_t arglen)
{
	const struct part_arg *a = arg;
	struct join *j = a->j;
	const struct side *s = &j->side[a->side];
	const struct chunk *c = &s->chunks[a->chunk];
	char *own = scratch(SLOT_READ, chunk_room(c)), *held, *recs;
	const char *data;
	struct weft_buf view;
	char err[512];
	int ret;

	if (!own)
		return weft_fail(ctx, "%s: no memory to read %" PRIu64 " bytes",
				 s->in->path, c->len);
	/* Keep the disk busy: the chunk a thread reads next is read ahead now. */
	if (s->dfd < 0 && a->chunk + j->nthreads < s->nchunks) {
		const struct chunk *ahead = &s->chunks[a->chunk + j->nthreads];

		posix_fadvise(s->fd, ahead->off, ahead->len, POSIX_FADV_WILLNEED);
	}
	ret = reader_get(j->rd, s, a->side, a->chunk, own, &data, &held);
	if (ret) {
		reader_put(j->rd, held);
		return weft_fail(ctx, "%s: reading rows %" PRIu64 "-%" PRIu64 ": %s",
				 s->in->path, c->first_row, c->first_row + c->rows - 1,
				 ret == -ENODATA ? "the file got shorter" : strerror(-ret));
	}
	recs = (char *)data;
	if (!s->raw) {
		recs = scratch(SLOT_RECS, c->rows * s->width + 1);
		ret = recs ? side_records(s, j->fmt, j->count_only, c, data, recs, err,
					  sizeof(err)) : -ENOMEM;
		reader_put(j->rd, held);
		held = NULL;
		if (ret == -ENOMEM)
			return weft_fail(ctx, "%s: no memory for %" PRIu64 " records",
					 s->in->path, c->rows);
		if (ret)
			return weft_fail(ctx, "%s", err);
	}
	progress_add(j, c->len);
	view = (struct weft_buf){ recs, c->rows * s->width };
	ret = scatter(ctx, &view, 1, s->width, a->level, a->bits);
	reader_put(j->rd, held);
	return ret;
}

/* Deeper levels: split a part's records again, with another hash. */
static int part_again(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		      const void *arg, size_t arglen)
{
	const struct part_arg *a = arg;
	size_t bytes = 0;

	for (size_t i = 0; i < nin; i++)
		bytes += in[i].len;
	progress_add(a->j, bytes);
	return scatter(ctx, in, nin, a->j->side[a->side].width, a->level, a->bits);
}

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

static size_t tab_size(uint32_t bucket_bits, uint64_t n, size_t per)
{
	size_t nb = (size_t)1 << bucket_bits;

	return sizeof(struct table) + ((nb + 2) * 4 & ~(size_t)7) + n * (8 + per);
}

/* A counting table's entry: one key and the sum of its rows' words. */
struct tab_count {
	uint64_t key, sum;
};

/* A counting table's bytes: @n entries, and their counts if @counted. */
static size_t count_tab_size(uint32_t bucket_bits, uint64_t n, bool counted)
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

/* Turn bucket counts into starts from @base, as a counting sort's first half. */
static void starts_from(uint32_t *start, size_t nb, uint32_t base)
{
	uint32_t sum = base;

	for (size_t b = 0; b < nb; b++) {
		uint32_t c = start[b];

		start[b] = sum;
		sum += c;
	}
	start[nb] = sum;
}

static void starts(uint32_t *start, size_t nb)
{
	starts_from(start, nb, 0);
}

static int build_rows(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		      const struct build_arg *a, uint64_t n)
{
	unsigned width = a->j->side[a->side].width, rest = width - REC_KEY;
	unsigned bits = log2_ceil(n);
	size_t nb = (size_t)1 << bits, mask = nb - 1;
	struct table *t = weft_output(ctx, tab_size(bits, n, rest));
	uint32_t *start, *cur;
	uint64_t *keys;
	char *rests;

	if (!t)
		return weft_fail(ctx, "build: no memory for a table of %" PRIu64 " rows", n);
	*t = (struct table){ n, bits, a->level, rest, 0 };
	start = (uint32_t *)tab_start(t);
	keys = (uint64_t *)tab_keys(t);
	rests = (char *)(keys + n);
	cur = scratch(SLOT_AUX, (nb + 1) * 4);
	if (!cur)
		return weft_fail(ctx, "build: out of memory");
	memset(start, 0, (nb + 1) * 4);
	for (size_t i = 0; i < nin; i++)
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += width)
			start[mix(rec_key(r), a->level) & mask]++;
	starts(start, nb);
	memcpy(cur, start, (nb + 1) * 4);
	for (size_t i = 0; i < nin; i++) {
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += width) {
			uint64_t k = rec_key(r);
			uint32_t at = cur[mix(k, a->level) & mask]++;

			keys[at] = k;
			memcpy(rests + (size_t)at * rest, r + REC_KEY, rest);
		}
	}
	return 0;
}

/*
 * Rows of one span of buckets, ordered by bucket in @tk/@tw (a counting sort over
 * the span's slice of @start), then folded into @out: one entry per key. A span is
 * small enough that all of this stays in cache. Return: the entries added.
 */
static size_t fold_span(const char *recs, size_t nrows, unsigned level, uint64_t mask,
			uint32_t *start, size_t lo, size_t nb, uint64_t *tk, uint64_t *tw,
			struct tab_count *out, uint32_t *cnt)
{
	size_t d = 0, from = 0;

	memset(start + lo, 0, nb * sizeof(*start));
	for (size_t i = 0; i < nrows; i++)
		start[(mix(rec_key(recs + i * 16), level) & mask)]++;
	starts(start + lo, nb);		/* start[lo + nb] is clobbered: the next span's */
	for (size_t i = 0; i < nrows; i++) {
		uint64_t k = rec_key(recs + i * 16);
		uint32_t at = start[mix(k, level) & mask]++;

		tk[at] = k;
		tw[at] = rec_word(recs + i * 16);
	}
	/* Fold each bucket's rows (start[b] is now b's end). */
	for (size_t b = lo; b < lo + nb; b++) {
		size_t first = d;

		for (size_t i = from; i < start[b]; i++) {
			size_t e = first;

			while (e < d && out[e].key != tk[i])
				e++;
			if (e == d) {
				cnt[d] = 0;
				out[d++] = (struct tab_count){ tk[i], 0 };
			}
			cnt[e]++;
			out[e].sum += tw[i];
		}
		from = start[b];
	}
	return d;
}

/* Rows per span of a table's build: its sort and fold stay in the core's cache. */
#define BUILD_SPAN_ROWS 8192
/* Rows of a table small enough to build in place from its pieces: it fits in cache. */
#define DIRECT_BUILD_ROWS (64u << 10)

/*
 * Entries of unique keys (the usual build side), straight from @in's rows, whose
 * buckets are [lo, lo + nb) of @t: one hash per row, kept in @bucket for the second
 * pass, and each entry written once, from te[@base] on, into its bucket of the table
 * itself, where a key already there is found. Sets start[lo..lo + nb] (the last is
 * the next range's first). @fill: room for nb + 1 starts. The sort and fold of
 * build_counts pass over the rows five times and hash them as often.
 * Return: false if a key repeats (the table is unfinished: fold instead).
 */
static bool place_unique(const struct weft_buf *in, size_t nin, struct table *t,
			 size_t lo, size_t nb, uint32_t base, uint32_t *bucket, uint32_t *fill)
{
	uint32_t *ts = (uint32_t *)tab_start(t) + lo;
	struct tab_count *te = (struct tab_count *)tab_keys(t);
	uint64_t mask = ((uint64_t)1 << t->bucket_bits) - 1;
	size_t r = 0;

	memset(ts, 0, nb * sizeof(*ts));
	for (size_t i = 0; i < nin; i++) {
		for (const char *p = in[i].data, *e = p + in[i].len; p < e; p += 16) {
			uint32_t b = (mix(rec_key(p), t->level) & mask) - lo;

			bucket[r++] = b;
			ts[b]++;
		}
	}
	starts_from(ts, nb, base);
	memcpy(fill, ts, nb * sizeof(*fill));
	r = 0;
	for (size_t i = 0; i < nin; i++) {
		for (const char *p = in[i].data, *e = p + in[i].len; p < e; p += 16) {
			uint32_t b = bucket[r++], at = fill[b]++;
			uint64_t k = rec_key(p);

			for (uint32_t x = ts[b]; x < at; x++)
				if (__builtin_expect(te[x].key == k, 0))
					return false;
			te[at] = (struct tab_count){ k, rec_word(p) };
		}
	}
	return true;
}

/* A counting table without counts, for @n unique keys; NULL when out of memory. */
static struct table *unique_table(struct weft_ctx *ctx, const struct build_arg *a,
				  uint64_t n)
{
	unsigned bits = log2_ceil(n);
	struct table *t = weft_output(ctx, count_tab_size(bits, n, false));

	if (t)
		*t = (struct table){ n, bits, a->level, 8, false };
	return t;
}

static int build_counts(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
			const struct build_arg *a, uint64_t n)
{
	unsigned bits = log2_ceil(n), sbits = log2_ceil(n / BUILD_SPAN_ROWS), shift, dbits;
	size_t nb = (size_t)1 << bits, mask = nb - 1, d = 0, most = 0, nspans;
	uint32_t *start, *span;
	struct tab_count *out = scratch(SLOT_IDS, n * (sizeof(*out) + sizeof(uint32_t)) + 1);
	uint32_t *cnt = (uint32_t *)(out + n);
	char *recs = scratch(SLOT_RECS, n * 16 + 1);
	uint64_t *tk;
	struct table *t;
	bool counted, unique = true;

	if (!out || !recs)
		return weft_fail(ctx, "build: out of memory for %" PRIu64 " rows", n);
	/* Unique keys, likely: their entries go straight into this table. */
	t = unique_table(ctx, a, n);
	if (!t)
		return weft_fail(ctx, "build: no memory for a table of %" PRIu64 " keys", n);
	/* A table that fits in cache: straight from the pieces. */
	if (n <= DIRECT_BUILD_ROWS) {
		uint32_t *fill = scratch(SLOT_AUX, (nb + 1) * sizeof(*fill));

		if (!fill)
			return weft_fail(ctx, "build: out of memory for %" PRIu64 " rows", n);
		/* out's room is free until the fold: it holds the rows' buckets. */
		if (place_unique(in, nin, t, 0, nb, 0, (uint32_t *)out, fill))
			return 0;
		unique = false;
	}
	sbits = sbits > bits ? bits : sbits > 12 ? 12 : sbits;
	shift = bits - sbits;
	nspans = (size_t)1 << sbits;
	start = scratch(SLOT_AUX, (nb + nspans + 2) * sizeof(*start));
	if (!start)
		return weft_fail(ctx, "build: out of memory for %" PRIu64 " rows", n);
	span = start + nb + 1;
	/* Group the rows by span of buckets (the top bits of their bucket). */
	memset(span, 0, (nspans + 1) * sizeof(*span));
	for (size_t i = 0; i < nin; i++)
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += 16)
			span[(mix(rec_key(r), a->level) & mask) >> shift]++;
	for (size_t s = 0; s < nspans; s++)
		most = span[s] > most ? span[s] : most;
	starts(span, nspans);
	tk = scratch(SLOT_READ, most * 16 + 1);
	if (!tk)
		return weft_fail(ctx, "build: out of memory for %zu rows", most);
	for (size_t i = 0; i < nin; i++) {
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += 16) {
			uint32_t at = span[(mix(rec_key(r), a->level) & mask) >> shift]++;

			memcpy(recs + (size_t)at * 16, r, 16);
		}
	}
	/* Past the cache's size: span by span, from the grouped rows. */
	if (unique) {
		for (size_t s = 0, from = 0; unique && s < nspans; from = span[s++]) {
			struct weft_buf v = { recs + from * 16, (span[s] - from) * 16 };

			unique = place_unique(&v, 1, t, s << shift, (size_t)1 << shift,
					      (uint32_t)from, (uint32_t *)tk, start);
		}
		if (unique)
			return 0;
	}
	/* Fold span by span (span[s] is now s's end), in bucket order. */
	for (size_t s = 0, from = 0; s < nspans; from = span[s++])
		d += fold_span(recs + from * 16, span[s] - from, a->level, mask, start,
			       s << shift, (size_t)1 << shift, tk, tk + most, out + d, cnt + d);
	/* The table, sized for the distinct keys; counts only if a key repeats. */
	counted = d < n;
	dbits = log2_ceil(d);
	nb = (size_t)1 << dbits;
	mask = nb - 1;
	t = weft_output(ctx, count_tab_size(dbits, d, counted));
	if (!t)
		return weft_fail(ctx, "build: no memory for a table of %zu keys", d);
	*t = (struct table){ d, dbits, a->level, 8, counted };

	uint32_t *ts = (uint32_t *)tab_start(t);
	struct tab_count *te = (struct tab_count *)tab_keys(t);
	uint32_t *tc = (uint32_t *)tab_counts(t);

	memset(ts, 0, (nb + 1) * 4);
	for (size_t i = 0; i < d; i++)
		ts[mix(out[i].key, a->level) & mask]++;
	starts(ts, nb);
	if (dbits == bits) {
		/* Same buckets: the entries are in bucket order already. */
		memcpy(te, out, d * sizeof(*te));
		if (counted)
			memcpy(tc, cnt, d * sizeof(*tc));
		return 0;
	}
	memcpy(start, ts, (nb + 1) * 4);
	for (size_t i = 0; i < d; i++) {
		uint32_t at = start[mix(out[i].key, a->level) & mask]++;

		te[at] = out[i];
		if (counted)
			tc[at] = cnt[i];
	}
	return 0;
}

static int build(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		 const void *arg, size_t arglen)
{
	const struct build_arg *a = arg;
	unsigned width = a->j->side[a->side].width;
	uint64_t n = 0;

	for (size_t i = 0; i < nin; i++)
		n += in[i].len / width;
	if (n > UINT32_MAX)
		return weft_fail(ctx, "build: %" PRIu64 " rows in one table", n);
	progress_join(a->j, n * width);
	if (a->j->count_only)
		return build_counts(ctx, in, nin, a, n);
	return build_rows(ctx, in, nin, a, n);
}

struct probe_arg {
	struct join *j;
	unsigned side;		/* of the records probing; the table is the other's */
};

/* Sums of joined rows, as build/probe or left/right. */
struct sums {
	uint64_t rows, left, right;
};

/*
 * Probes go a group at a time, in stages, so that the cache misses of a group's
 * rows overlap: hash all and fetch their buckets' starts, then fetch their first
 * entries, then compare.
 */
#define PROBE_GROUP 16
/*
 * A table many times the core's cache is probed a span at a time: the rows are
 * first sorted by the top bits of their bucket, so that each span of buckets (and
 * its entries, which lie in bucket order) stays in cache while its rows probe it.
 * Random probes of such a table cost a miss and often a TLB walk each; one more
 * pass over the rows costs less. A table of a few spans is probed as it is.
 */
#define PROBE_SPAN (512u << 10)
#define PROBE_SPANS_MIN 8

/*
 * Probe @n records (16 bytes each) of one table; add to @s as build/probe. Made
 * twice, with counts and without, so that unique keys pay no branch for them.
 */
static __attribute__((always_inline)) inline void
probe_recs_as(const struct table *t, const char *r, size_t n, struct sums *s, bool counted)
{
	const uint32_t *start = tab_start(t), *cnt = tab_counts(t);
	const struct tab_count *ent = (const struct tab_count *)tab_keys(t);
	uint64_t mask = ((uint64_t)1 << t->bucket_bits) - 1;
	uint64_t rows = 0, tsum = 0, psum = 0;

	for (size_t g = 0; g < n; g += PROBE_GROUP) {
		unsigned m = n - g < PROBE_GROUP ? n - g : PROBE_GROUP;
		uint64_t key[PROBE_GROUP];
		uint32_t b[PROBE_GROUP], lo[PROBE_GROUP], hi[PROBE_GROUP];

		for (unsigned k = 0; k < m; k++) {
			key[k] = rec_key(r + (g + k) * 16);
			b[k] = mix(key[k], t->level) & mask;
			__builtin_prefetch(&start[b[k]]);
		}
		for (unsigned k = 0; k < m; k++) {
			lo[k] = start[b[k]];
			hi[k] = start[b[k] + 1];
			__builtin_prefetch(&ent[lo[k]]);
		}
		for (unsigned k = 0; k < m; k++) {
			for (uint32_t x = lo[k]; x < hi[k]; x++) {
				if (ent[x].key != key[k])
					continue;
				uint64_t c = counted ? cnt[x] : 1;

				rows += c;
				tsum += ent[x].sum;
				psum += c * rec_word(r + (g + k) * 16);
				break;
			}
		}
	}
	s->rows += rows;
	s->left += tsum;
	s->right += psum;
}

static void probe_recs(const struct table *t, const char *r, size_t n, struct sums *s)
{
	if (t->counted)
		probe_recs_as(t, r, n, s, true);
	else
		probe_recs_as(t, r, n, s, false);
}

/* The span of buckets of each record, as the top @sbits of its bucket. */
static void span_starts(const struct table *t, const struct weft_buf *in, size_t nin,
			unsigned sbits, uint16_t *ids, uint32_t *cnt)
{
	uint64_t mask = ((uint64_t)1 << t->bucket_bits) - 1;
	unsigned shift = t->bucket_bits - sbits;
	size_t r = 0;

	memset(cnt, 0, ((1u << sbits) + 1) * sizeof(*cnt));
	for (size_t i = 0; i < nin; i++) {
		const char *p = in[i].data;

		for (size_t k = 0, n = in[i].len / 16; k < n; k++, p += 16) {
			unsigned span = (mix(rec_key(p), t->level) & mask) >> shift;

			ids[r++] = span;
			cnt[span]++;
		}
	}
	starts(cnt, 1u << sbits);
}

/*
 * Read a byte of each cache line of [a, b), so that the lines come in order. Only
 * bytes inside the range: its first line may begin before it, in another object.
 */
static void lines_load(const char *a, const char *b)
{
	unsigned x = 0;

	if (a < b)
		x += *(const unsigned char *)a;
	for (const char *p = (const char *)(((uintptr_t)a | 63) + 1); p < b; p += 64)
		x += *(const unsigned char *)p;
	/* Loads, not prefetches: those are dropped when too many are in flight. */
	__asm__ volatile("" : : "r"(x));
}

/*
 * A probe task often has few rows beside its table's lines (a resident part is
 * probed a group of rows at a time), and the table is cold: each probe would wait
 * for memory, with only a group's misses in flight. Reading the first @bytes of
 * the table once, in order, streams them into the cache at the memory's bandwidth,
 * and the probes then hit: about twice as fast in all. Only for a table of a few
 * spans (larger ones are probed a span at a time), and only when the @probes would
 * touch most of its lines anyway.
 */
static void table_warm(const struct table *t, size_t bytes, uint64_t probes)
{
	if (bytes > PROBE_SPANS_MIN * PROBE_SPAN || bytes / 64 > 2 * probes)
		return;
	lines_load((const char *)t, (const char *)t + bytes);
}

/*
 * The same for a table probed a span at a time: before a span's @probes rows, its
 * slice of the starts and of the entries, when the rows would touch most of its
 * lines anyway. The rows come in span order, so each slice is read once.
 */
static void span_warm(const struct table *t, size_t sp, unsigned shift, uint64_t probes)
{
	const uint32_t *start = tab_start(t) + (sp << shift);
	size_t nb = (size_t)1 << shift;
	const struct tab_count *ent = (const struct tab_count *)tab_keys(t);
	const char *a = (const char *)(ent + start[0]), *b = (const char *)(ent + start[nb]);

	if ((size_t)(b - a) / 64 > 2 * probes)
		return;
	lines_load((const char *)start, (const char *)(start + nb + 1));
	lines_load(a, b);
	if (t->counted)
		lines_load((const char *)(tab_counts(t) + start[0]),
			   (const char *)(tab_counts(t) + start[nb]));
}

static int probe_counts(struct weft_ctx *ctx, const struct table *t,
			const struct weft_buf *in, size_t nin, unsigned side)
{
	size_t bytes = count_tab_size(t->bucket_bits, t->nrows, t->counted), n = 0;
	unsigned sbits = bytes >= PROBE_SPANS_MIN * PROBE_SPAN ? log2_ceil(bytes / PROBE_SPAN) : 0;
	struct sums s = { 0 }, *out;

	sbits = sbits > 12 ? 12 : sbits > t->bucket_bits ? t->bucket_bits : sbits;
	for (size_t i = 0; i < nin; i++)
		n += in[i].len / 16;
	if (sbits && n >= (1u << sbits)) {
		uint16_t *ids = scratch(SLOT_IDS, n * sizeof(*ids) + 1);
		char *sorted = scratch(SLOT_RECS, n * 16 + 1);
		uint32_t *at = scratch(SLOT_AUX, ((1u << sbits) + 1) * sizeof(*at));
		struct lines lw;
		size_t r = 0;

		if (!ids || !sorted || !at)
			return weft_fail(ctx, "probe: out of memory for %zu rows", n);
		span_starts(t, in, nin, sbits, ids, at);
		if (lines_get(&lw, 1u << sbits)) {
			for (unsigned sp = 0; sp < (1u << sbits); sp++)
				lines_set(&lw, sp, sorted + (size_t)at[sp] * 16);
			for (size_t i = 0; i < nin; i++) {
				const char *p = in[i].data;

				for (size_t k = 0, m = in[i].len / 16; k < m; k++, p += 16)
					lines_put(&lw, ids[r++], p);
			}
			lines_end(&lw);
			for (unsigned sp = 0; sp < (1u << sbits); sp++)
				at[sp] = (uint32_t)((lw.cur[sp] - sorted) / 16);
		} else {
			for (size_t i = 0; i < nin; i++) {
				const char *p = in[i].data;

				for (size_t k = 0, m = in[i].len / 16; k < m; k++, p += 16)
					memcpy(sorted + (size_t)at[ids[r++]]++ * 16, p, 16);
			}
		}
		/* Span by span (at[sp] is now sp's end), each slice warmed first. */
		for (size_t sp = 0, from = 0; sp < (1u << sbits); from = at[sp++]) {
			if (at[sp] == from)
				continue;
			span_warm(t, sp, t->bucket_bits - sbits, at[sp] - from);
			probe_recs(t, sorted + from * 16, at[sp] - from, &s);
		}
	} else {
		table_warm(t, bytes, n);
		for (size_t i = 0; i < nin; i++)
			probe_recs(t, in[i].data, in[i].len / 16, &s);
	}
	out = weft_output(ctx, sizeof(*out));
	if (!out)
		return weft_fail(ctx, "probe: out of memory");
	*out = side == RIGHT ? s : (struct sums){ s.rows, s.right, s.left };
	return 0;
}

/*
 * A CSV record's rest into @p, after a comma when the side has columns beyond its
 * key (even empty ones: the columns stay in line with the header). Return: bytes
 * written, or -EBADMSG / -errno when a row read back by its csv_ref failed.
 */
static long emit_rest(const struct side *s, char *p, const char *rest)
{
	uint32_t n;
	long got;

	memcpy(&n, rest, 4);
	if (s->nfields < 2)
		return 0;
	*p = ',';
	if (!(n & CSV_REF)) {
		memcpy(p + 1, rest + 4, n);
		return 1 + (long)n;
	}
	struct csv_ref ref;

	memcpy(&ref, rest + 4, sizeof(ref));
	got = csv_ref_rest(s, &ref, p + 1);
	return got < 0 ? got : 1 + got;
}

/*
 * One output row: key, then the rest of the left row, then the right's. Return:
 * its bytes (at most j->out_row), or a negative errno (see emit_rest).
 */
static long emit(const struct join *j, char *o, uint64_t key, const char *lrest,
		 const char *rrest)
{
	unsigned lr = j->side[LEFT].width - REC_KEY, rr = j->side[RIGHT].width - REC_KEY;
	char *p = o;
	long n;

	if (j->fmt == JOIN_BIN) {
		memcpy(p, &key, 8);
		memcpy(p + 8, lrest, lr);
		memcpy(p + 8 + lr, rrest, rr);
		return 8 + lr + rr;
	}
	p += sprintf(p, "%" PRId64, (int64_t)key);
	n = emit_rest(&j->side[LEFT], p, lrest);
	if (n < 0)
		return n;
	p += n;
	n = emit_rest(&j->side[RIGHT], p, rrest);
	if (n < 0)
		return n;
	p += n;
	*p++ = '\n';
	return p - o;
}

static int probe_rows(struct weft_ctx *ctx, struct join *j, const struct table *t,
		      const struct weft_buf *in, size_t nin, unsigned side)
{
	const uint32_t *start = tab_start(t);
	const uint64_t *keys = tab_keys(t);
	const char *rests = (const char *)(keys + t->nrows);
	unsigned width = j->side[side].width;
	uint64_t mask = ((uint64_t)1 << t->bucket_bits) - 1;
	char *buf = scratch(SLOT_AUX, j->emit);
	uint64_t rows = 0, n = 0;
	size_t fill = 0;
	int err;

	if (!buf)
		return weft_fail(ctx, "probe: out of memory");
	for (size_t i = 0; i < nin; i++)
		n += in[i].len / width;
	/* The index only: the rest of a row is read for a match. */
	table_warm(t, rests - (const char *)t, n);
	for (size_t i = 0; i < nin; i++) {
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += width) {
			uint64_t k = rec_key(r), b = mix(k, t->level) & mask;

			for (uint32_t x = start[b]; x < start[b + 1]; x++) {
				const char *tr = rests + (size_t)x * t->rest;

				if (keys[x] != k)
					continue;
				rows++;
				if (fill + j->out_row > j->emit) {
					err = writer_put(&j->out, buf, fill);
					if (err)
						goto fail;
					fill = 0;
				}
				long e = side == RIGHT ?
					emit(j, buf + fill, k, tr, r + REC_KEY) :
					emit(j, buf + fill, k, r + REC_KEY, tr);

				if (e < 0)
					return weft_fail(ctx, "reading a row back for the output:"
							 " %s (did an input change while the"
							 " join ran?)", strerror((int)-e));
				fill += (size_t)e;
			}
		}
	}
	err = writer_put(&j->out, buf, fill);
	if (!err) {
		struct sums *s = weft_output(ctx, sizeof(*s));

		if (!s)
			return weft_fail(ctx, "probe: out of memory");
		*s = (struct sums){ rows, 0, 0 };
		return 0;
	}
fail:
	return weft_fail(ctx, "output %s: %s", j->spec->output, strerror(-err));
}

static int probe(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		 const void *arg, size_t arglen)
{
	const struct probe_arg *a = arg;
	const struct table *t = in[0].data;
	uint64_t bytes = 0;

	for (size_t i = 1; i < nin; i++)
		bytes += in[i].len;
	progress_join(a->j, bytes);
	if (a->j->count_only)
		return probe_counts(ctx, t, in + 1, nin - 1, a->side);
	return probe_rows(ctx, a->j, t, in + 1, nin - 1, a->side);
}

/* ---- The client's side: planning parts and gathering results. ---- */

struct piece {
	struct weft_future *f;
	uint64_t rows;
};

/* One part of both inputs, at some level of splitting. */
struct part {
	unsigned level;
	struct piece *pc[2];
	size_t n[2], cap[2];
	uint64_t rows[2];
	uint64_t min[2], max[2];
};

/* Partition tasks whose stats are still to be read. */
struct split {
	unsigned side, bits, level;
	unsigned parent;		/* splits of one part share it */
	struct weft_future **out;	/* (1 << bits) + 1 futures, stats last */
	size_t chunk;			/* level 0: the chunk it reads */
	bool launched;			/* level 0: the reader submits its task */
};

struct plan {
	struct join *j;
	struct split *splits;
	size_t nsplits, cap_splits;
	struct weft_future **ends;	/* probe tasks, whose results are the answer */
	size_t nends, cap_ends;
	size_t gathered;		/* ends[0..gathered) are added up and released */
	size_t *marks;			/* where each planned part's ends stop */
	size_t nmarks, cap_marks, marks_done;
	int prio;			/* falls as parts are planned: earlier parts first */
	unsigned parents;		/* parts split so far */
	bool joining;			/* past the first reads */
	unsigned bits;			/* of the first level */
	struct weft_future ***outs[2];	/* level 0: each chunk's split outputs */
	uint64_t early_total;		/* bytes of the parts joined while reading */
	int err;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, c * size);

	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static int part_add(struct part *p, unsigned side, struct weft_future *f, uint64_t rows,
		    const struct part_stat *st)
{
	if (grow((void **)&p->pc[side], &p->cap[side], p->n[side], sizeof(struct piece)))
		return -ENOMEM;
	p->pc[side][p->n[side]++] = (struct piece){ f, rows };
	p->rows[side] += rows;
	if (p->n[side] == 1 || st->min < p->min[side])
		p->min[side] = st->min;
	if (p->n[side] == 1 || st->max > p->max[side])
		p->max[side] = st->max;
	return 0;
}

static void part_free(struct part *p)
{
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < p->n[s]; i++)
			weft_release(p->pc[s][i].f);
		free(p->pc[s]);
	}
	memset(p, 0, sizeof(*p));
}

static int end_add(struct plan *pl, struct weft_future *f)
{
	if (grow((void **)&pl->ends, &pl->cap_ends, pl->nends, sizeof(*pl->ends))) {
		weft_release(f);
		return -ENOMEM;
	}
	pl->ends[pl->nends++] = f;
	return 0;
}

/* Submit with a plain error message on failure. */
static int submit(struct plan *pl, weft_fn *fn, struct weft_future **deps, size_t n,
		  const void *arg, size_t arglen, unsigned noutputs, int prio,
		  const char *label, struct weft_future **out)
{
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = noutputs,
				    .priority = prio, .label = label };
	int ret = weft_submit(pl->j->c, fn, deps, n, arg, arglen, &o, out);

	if (ret)
		snprintf(pl->j->res->error, sizeof(pl->j->res->error),
			 "submitting a %s task: %s", label, weft_strerror(ret));
	return ret;
}

/* Greedy groups of pieces, each at most @limit bytes (a bigger piece goes alone). */
static size_t group_end(const struct piece *pc, size_t from, size_t n, unsigned width,
			size_t limit)
{
	size_t bytes = 0, i = from;

	while (i < n && (i == from || bytes + pc[i].rows * width <= limit))
		bytes += pc[i++].rows * width;
	return i;
}

static int deps_of(struct weft_future ***deps, size_t *cap, const struct piece *pc,
		   size_t from, size_t to, size_t at)
{
	if (*cap < at + to - from) {
		size_t c = (at + to - from) * 2;
		void *p = realloc(*deps, c * sizeof(**deps));

		if (!p)
			return -ENOMEM;
		*deps = p;
		*cap = c;
	}
	for (size_t i = from; i < to; i++)
		(*deps)[at + i - from] = pc[i].f;
	return 0;
}

/*
 * A table of pieces [from, to) of @p's side @s, into *table; @deps and @cap are the
 * caller's space for the dependencies.
 */
static int submit_build(struct plan *pl, const struct part *p, unsigned s, size_t from,
			size_t to, int prio, struct weft_future ***deps, size_t *cap,
			struct weft_future **table)
{
	struct build_arg ba = { pl->j, s, p->level };
	int ret = deps_of(deps, cap, p->pc[s], from, to, 0);

	return ret ? ret : submit(pl, build, *deps, to - from, &ba, sizeof(ba), 0, prio,
				  "build", table);
}

/* A probe of @table with pieces [from, to) of @p's side @s; its result is an end. */
static int submit_probe(struct plan *pl, const struct part *p, unsigned s, size_t from,
			size_t to, struct weft_future *table, int prio,
			struct weft_future ***deps, size_t *cap)
{
	struct probe_arg pa = { pl->j, s };
	struct weft_future *end;
	int ret = deps_of(deps, cap, p->pc[s], from, to, 1);

	if (ret)
		return ret;
	(*deps)[0] = table;
	ret = submit(pl, probe, *deps, to - from + 1, &pa, sizeof(pa), 0, prio, "probe", &end);
	return ret ? ret : end_add(pl, end);
}

/* Split a part's records on both sides, with the next level's hash. */
static int plan_split(struct plan *pl, struct part *p, unsigned bits)
{
	struct join *j = pl->j;
	struct weft_future **deps = NULL;
	size_t cap = 0;
	int ret = 0;

	for (unsigned s = 0; s < 2 && !ret; s++) {
		unsigned width = j->side[s].width;

		for (size_t i = 0, e; i < p->n[s] && !ret; i = e) {
			struct part_arg a = { j, s, p->level + 1, bits, 0 };
			struct split *sp;

			e = group_end(p->pc[s], i, p->n[s], width, j->share);
			ret = grow((void **)&pl->splits, &pl->cap_splits, pl->nsplits,
				   sizeof(*pl->splits));
			if (!ret)
				ret = deps_of(&deps, &cap, p->pc[s], i, e, 0);
			if (ret)
				break;
			sp = &pl->splits[pl->nsplits];
			*sp = (struct split){ s, bits, p->level + 1, pl->parents,
					      calloc((1u << bits) + 1, sizeof(*sp->out)) };
			if (!sp->out) {
				ret = -ENOMEM;
				break;
			}
			ret = submit(pl, part_again, deps, e - i, &a, sizeof(a),
				     (1u << bits) + 1, pl->prio, "split", sp->out);
			if (ret) {
				free(sp->out);
				break;
			}
			pl->nsplits++;
		}
	}
	pl->parents++;
	free(deps);
	return ret;
}

/* Build tables of blocks of side @b; probe each with all of the other side. */
static int plan_hash(struct plan *pl, struct part *p, unsigned b, size_t block)
{
	struct join *j = pl->j;
	unsigned o = !b, bw = j->side[b].width, ow = j->side[o].width;
	struct weft_future **deps = NULL;
	size_t cap = 0;
	int ret = 0;

	for (size_t i = 0, e; i < p->n[b] && !ret; i = e) {
		struct weft_future *table = NULL;

		e = group_end(p->pc[b], i, p->n[b], bw, block);
		ret = submit_build(pl, p, b, i, e, pl->prio, &deps, &cap, &table);
		for (size_t k = 0, f; k < p->n[o] && !ret; k = f) {
			f = group_end(p->pc[o], k, p->n[o], ow, j->share);
			ret = submit_probe(pl, p, o, k, f, table, pl->prio + 1, &deps, &cap);
		}
		weft_release(table);
	}
	free(deps);
	return ret;
}

static int part_done(struct plan *pl);

static int plan_part(struct plan *pl, struct part *p)
{
	struct join *j = pl->j;
	uint64_t bytes[2] = { p->rows[0] * j->side[0].width, p->rows[1] * j->side[1].width };
	unsigned b = bytes[RIGHT] < bytes[LEFT];
	int ret;

	if (!p->rows[0] || !p->rows[1]) {
		part_free(p);
		return 0;
	}
	pl->prio -= 2;
	atomic_fetch_add_explicit(&j->prog.total, bytes[0] + bytes[1], memory_order_relaxed);
	if (bytes[b] <= j->share) {
		ret = plan_hash(pl, p, b, j->share);
		if (!ret)
			ret = part_done(pl);
	} else if (p->min[b] != p->max[b] && p->level + 1 < MAX_LEVEL) {
		unsigned bits = j->spec->partitions ? log2_ceil(j->spec->partitions) :
			log2_ceil((2 * bytes[b] + j->share - 1) / j->share);
		unsigned cap = split_cap(j->share);

		if (!j->spec->partitions)
			bits = bits < 1 ? 1 : bits > cap ? cap : bits;
		ret = plan_split(pl, p, bits);
	} else {
		/* Splitting cannot help: one key, or too many levels. */
		j->res->block_joins++;
		ret = plan_hash(pl, p, b, j->share);
		if (!ret)
			ret = part_done(pl);
	}
	part_free(p);
	return ret;
}

/* Read the stats of @sp's task and add its pieces to @parts. */
static int gather(struct plan *pl, struct split *sp, struct part *parts)
{
	unsigned nparts = 1u << sp->bits;
	struct weft_future *sf;
	struct weft_buf v;
	int ret;

	if (sp->launched) {
		ret = reader_launched(pl->j->rd, sp->side, sp->chunk);
		if (ret) {
			const struct side *s = &pl->j->side[sp->side];
			const struct chunk *c = &s->chunks[sp->chunk];

			snprintf(pl->j->res->error, sizeof(pl->j->res->error),
				 "%s: submitting the task of rows %" PRIu64 "-%" PRIu64
				 " (%" PRIu64 " bytes at offset %" PRIu64 "): %s",
				 s->in->path, c->first_row, c->first_row + c->rows - 1,
				 c->len, c->off, weft_strerror(ret));
			return ret;
		}
	}
	sf = sp->out[nparts];
	ret = weft_result(sf, &v);

	if (ret) {
		const char *m = weft_future_error(sf);

		snprintf(pl->j->res->error, sizeof(pl->j->res->error), "%s",
			 m ? m : weft_strerror(ret));
		return ret;
	}
	const struct part_stat *st = v.data;

	for (unsigned p = 0; p < nparts; p++) {
		if (!st[p].rows) {
			weft_release(sp->out[p]);
		} else {
			ret = part_add(&parts[p], sp->side, sp->out[p], st[p].rows, &st[p]);
			if (ret)
				weft_release(sp->out[p]);
		}
		sp->out[p] = NULL;
	}
	weft_release(sf);
	sp->out[nparts] = NULL;
	return ret;
}

static void split_free(struct split *sp)
{
	if (!sp->out)
		return;
	for (unsigned p = 0; p <= 1u << sp->bits; p++)
		weft_release(sp->out[p]);
	free(sp->out);
	sp->out = NULL;
}

/* Both inputs fit in the engine's memory, with room to spare: nothing should spill. */
static bool in_memory(const struct join *j)
{
	uint64_t lb = j->side[LEFT].rows * j->side[LEFT].width;
	uint64_t rb = j->side[RIGHT].rows * j->side[RIGHT].width;

	return lb + rb <= j->elimit / 2;
}

/* Bytes of the table that build() makes of @rows rows of side @s, at most. */
static uint64_t table_bytes(const struct join *j, unsigned s, uint64_t rows)
{
	/*
	 * Counting: without counts. A table that needs them has fewer entries than
	 * rows, and is no larger unless more than 4 rows in 5 have a key of their own.
	 */
	if (j->count_only)
		return count_tab_size(log2_ceil(rows), rows, false);
	return tab_size(log2_ceil(rows), rows, j->side[s].width - REC_KEY);
}

/*
 * A hybrid of the grace hash join: the first parts whose tables fit in a part of
 * the engine's memory are joined while the right input is still being read, so
 * their right pieces are probed as they come (and never spill). The left input is
 * read first: a resident part's table is built once its left pieces are all there.
 * The probes go ahead of the reads, so that right pieces are freed as they come;
 * with the reader launching the reads, no worker waits for the disk meanwhile. So
 * do the builds when the inputs do not fit: pieces of the right input that wait
 * for a table would be spilled. When they fit, the builds go with the reads, so
 * that the disk is never idle while the tables are made: it sets the pace of an
 * in-memory join (on 10M x 50M rows the reads stalled for a quarter of a second).
 * The other parts are left in @parts for the usual plan.
 */
static int plan_resident(struct plan *pl, struct split *sp, size_t n, struct part *parts,
			 unsigned nparts)
{
	struct join *j = pl->j;
	struct weft_future **tab = calloc(nparts, sizeof(*tab)), **deps = NULL;
	size_t *from = calloc(nparts, sizeof(*from)), cap = 0, k = 0;
	uint64_t *group = calloc(nparts, sizeof(*group));
	unsigned rw = j->side[RIGHT].width;
	/* Well below the engine's target, or the tables would be spilled and read back. */
	uint64_t room = j->elimit * (ENGINE_TARGET * 5 / 8);
	int build_prio = in_memory(j) ? 0 : RESIDENT_PRIO;
	int ret = tab && from && group ? 0 : -ENOMEM;

	for (; k < n && !ret && sp[k].side == LEFT; k++)
		ret = gather(pl, &sp[k], parts);
	for (unsigned p = 0; p < nparts && !ret; p++) {
		uint64_t bytes = parts[p].rows[LEFT] * j->side[LEFT].width;
		uint64_t need = table_bytes(j, LEFT, parts[p].rows[LEFT]);

		if (!bytes || bytes > j->share || need > room)
			continue;
		room -= need;
		group[p] = need / 8 > RESIDENT_GROUP ? need / 8 : RESIDENT_GROUP;
		j->res->resident_parts++;
		ret = submit_build(pl, &parts[p], LEFT, 0, parts[p].n[LEFT], build_prio,
				   &deps, &cap, &tab[p]);
		/* Only the build reads them: they are freed once it has run. */
		for (size_t i = 0; i < parts[p].n[LEFT]; i++) {
			weft_release(parts[p].pc[LEFT][i].f);
			parts[p].pc[LEFT][i].f = NULL;
		}
	}
	for (bool last = false; !ret && !last;) {
		if (k < n)
			ret = gather(pl, &sp[k++], parts);
		last = k == n;
		for (unsigned p = 0; p < nparts && !ret; p++) {
			struct part *pt = &parts[p];
			uint64_t bytes = 0;

			if (!tab[p])
				continue;
			for (size_t i = from[p]; i < pt->n[RIGHT]; i++)
				bytes += pt->pc[RIGHT][i].rows * rw;
			if (!bytes || (bytes < group[p] && !last))
				continue;
			ret = submit_probe(pl, pt, RIGHT, from[p], pt->n[RIGHT], tab[p],
					   RESIDENT_PRIO, &deps, &cap);
			/* Probed: the part lets go of them, so they are freed once used. */
			for (size_t i = from[p]; i < pt->n[RIGHT]; i++) {
				weft_release(pt->pc[RIGHT][i].f);
				pt->pc[RIGHT][i].f = NULL;
			}
			from[p] = pt->n[RIGHT];
		}
	}
	for (unsigned p = 0; p < nparts && tab; p++) {
		if (!tab[p])
			continue;
		weft_release(tab[p]);
		pl->early_total += parts[p].rows[LEFT] * j->side[LEFT].width +
				   parts[p].rows[RIGHT] * rw;
		part_free(&parts[p]);	/* joined: nothing left to plan */
	}
	free(deps);
	free(group);
	free(from);
	free(tab);
	return ret;
}

/* Plan every part that pl->splits make, then the splits those plans made, and so on. */
static int plan_all(struct plan *pl)
{
	while (pl->nsplits && !pl->err) {
		struct split *splits = pl->splits;
		size_t n = pl->nsplits;

		pl->splits = NULL;
		pl->nsplits = pl->cap_splits = 0;
		/* The splits of one part are adjacent; their pieces make its subparts. */
		for (size_t i = 0, e; i < n; i = e) {
			unsigned nparts = 1u << splits[i].bits;
			struct part *parts = calloc(nparts, sizeof(*parts));

			for (e = i; e < n && splits[e].parent == splits[i].parent; e++)
				;
			if (!parts) {
				pl->err = -ENOMEM;
			} else if (!splits[i].level) {
				pl->err = plan_resident(pl, &splits[i], e - i, parts, nparts);
			} else {
				for (size_t k = i; k < e && !pl->err; k++)
					pl->err = gather(pl, &splits[k], parts);
			}
			if (!pl->joining) {
				/* Every file has been read: the join proper begins. */
				progress_phase(&pl->j->prog, "join", pl->early_total);
				progress_joined(pl->j);
				pl->joining = true;
			}
			if (splits[i].level + 1 > pl->j->res->levels)
				pl->j->res->levels = splits[i].level + 1;
			for (unsigned p = 0; p < nparts && parts; p++) {
				parts[p].level = splits[i].level;
				if (!pl->err)
					pl->err = plan_part(pl, &parts[p]);
				part_free(&parts[p]);
			}
			free(parts);
		}
		/*
		 * A failure leaves splits ungathered whose tasks the reader threads may
		 * still be submitting into sp->out: stop the launches before letting go.
		 */
		if (pl->err)
			reader_halt(pl->j->rd);
		for (size_t i = 0; i < n; i++)
			split_free(&splits[i]);
		free(splits);
	}
	return pl->err;
}

/* ---- join_run ---- */

static int check_input(const struct join_input *in, const char *name,
		       enum join_format fmt, char *err, size_t errlen)
{
	unsigned w = in->row_bytes ? in->row_bytes : 16;

	if (!in->path || !in->path[0]) {
		snprintf(err, errlen, "no %s input given", name);
		return -EINVAL;
	}
	if (fmt == JOIN_CSV && in->no_header && in->key_name) {
		snprintf(err, errlen, "%s input %s: without a header there are no column"
			 " names: give the key's column number (--key-column)", name, in->path);
		return -EINVAL;
	}
	if (fmt == JOIN_BIN && (w < 8 || w > (1u << 20) || in->key_offset > w - 8)) {
		snprintf(err, errlen, "%s input %s: an 8-byte key at offset %u does not fit"
			 " in %u-byte rows (rows are 8 bytes to 1 MiB)", name, in->path,
			 in->key_offset, w);
		return -EINVAL;
	}
	return 0;
}

static int check_spec(const struct join_spec *spec, char *err, size_t errlen)
{
	int ret;

	if (spec->format != JOIN_BIN && spec->format != JOIN_CSV) {
		snprintf(err, errlen, "unknown input format %d", spec->format);
		return -EINVAL;
	}
	ret = check_input(&spec->left, "left", spec->format, err, errlen);
	if (!ret)
		ret = check_input(&spec->right, "right", spec->format, err, errlen);
	if (ret)
		return ret;
	if (spec->memory_limit && spec->memory_limit < JOIN_MIN_MEMORY) {
		snprintf(err, errlen, "a memory limit of %zu bytes is below the least, %u MiB",
			 spec->memory_limit, JOIN_MIN_MEMORY >> 20);
		return -EINVAL;
	}
	if (spec->output && !spec->output[0]) {
		snprintf(err, errlen, "the output file's name is empty");
		return -EINVAL;
	}
	if (spec->partitions & (spec->partitions - 1) || spec->partitions > MAX_FANOUT) {
		snprintf(err, errlen, "partitions must be a power of two up to %u",
			 MAX_FANOUT);
		return -EINVAL;
	}
	return 0;
}

static size_t clamp(size_t v, size_t lo, size_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

#define MIN_SHARE (64u << 10)	/* the least input of one task */

/*
 * How the limit is shared. 5/8 goes to the engine for results (it spills them);
 * each thread may keep up to a quarter of the limit over threads for itself, as
 * scratch space in about four buffers of the size of one task's input (share).
 * What is left covers the allocators' slack and each thread's own (its stack, its
 * allocator cache). A share is never below MIN_SHARE, so more threads than the
 * limit gives that much are not started: they would take memory past it.
 */
static void budgets(struct join *j)
{
	size_t l = j->limit, n, scratch;
	size_t elimit = l / 8 * 5 > JOIN_MIN_MEMORY ? l / 8 * 5 : JOIN_MIN_MEMORY;
	size_t most = elimit / (6 * MIN_SHARE) < l / (16 * MIN_SHARE) ?
		      elimit / (6 * MIN_SHARE) : l / (16 * MIN_SHARE);

	if (j->nthreads > most && most >= 1) {
		j->res->threads_asked = j->nthreads;
		j->nthreads = (unsigned)most;
	}
	n = j->nthreads;
	scratch = l / (4 * n);
	j->elimit = elimit;
	j->share = clamp(j->elimit / (6 * n) < scratch / 4 ? j->elimit / (6 * n) :
			 scratch / 4, MIN_SHARE, SIZE_MAX);
	if (j->spec->task_bytes)
		j->share = j->spec->task_bytes;
	j->chunk = j->share < MAX_CHUNK ? j->share : MAX_CHUNK;
	j->emit = clamp(scratch / 8, 64u << 10, 4u << 20);
}

/* The fan-out of the first split. */
static unsigned first_bits(const struct join *j)
{
	uint64_t lb = j->side[LEFT].rows * j->side[LEFT].width;
	uint64_t rb = j->side[RIGHT].rows * j->side[RIGHT].width;
	uint64_t small = lb < rb ? lb : rb;
	unsigned need, cache, cap = 12, bits;

	if (j->spec->partitions)
		return log2_ceil(j->spec->partitions);
	need = log2_ceil((2 * small + j->share - 1) / j->share);
	cache = log2_ceil(small / CACHE_PART);
	bits = cache > need ? cache : need;
	bits = bits > log2_ceil(4 * j->nthreads) ? bits : log2_ceil(4 * j->nthreads);
	/*
	 * Pieces that will spill are read back one by one, and each costs memory
	 * for its bookkeeping: keep them large and not too many, and split twice
	 * rather than into many small pieces.
	 */
	if (!in_memory(j)) {
		size_t chunks = j->side[LEFT].nchunks + j->side[RIGHT].nchunks;
		size_t most = j->limit / PIECE_COST > 4096 ? j->limit / PIECE_COST : 4096;
		unsigned by_count = 0;

		while (by_count < 12 && (chunks << (by_count + 1)) <= most)
			by_count++;
		cap = split_cap(j->chunk);
		cap = cap < by_count ? cap : by_count > 2 ? by_count : 2;
	}
	return bits < cap ? bits : cap;
}

size_t join_peak_rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* The limit and thread count the engine would choose, when the spec leaves them. */
static int learn_defaults(struct join *j)
{
	const struct join_spec *spec = j->spec;
	struct weft_options o = { .size = sizeof(o), .nthreads = spec->nthreads,
				  .memory_limit = spec->memory_limit,
				  .spill_dir = spec->spill_dir };
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;
	int ret;

	j->limit = spec->memory_limit;
	j->nthreads = spec->nthreads;
	if (j->limit && j->nthreads)
		return 0;
	ret = weft_client_open(NULL, &o, &c);
	if (ret)
		return ret;
	ret = weft_stats(c, &st);
	weft_client_close(c);
	if (ret)
		return ret;
	j->limit = st.mem_limit;
	j->nthreads = st.nthreads;
	return 0;
}

static int write_header(struct join *j)
{
	const struct side *l = &j->side[LEFT], *r = &j->side[RIGHT];
	size_t n = strlen(l->key_title) + strlen(l->rest_title) + strlen(r->rest_title) + 4;
	char *h = malloc(n);
	int ret;

	if (!h)
		return -ENOMEM;
	/* As emit_rest: a side with columns beyond its key has a comma for them. */
	snprintf(h, n, "%s%s%s%s%s\n", l->key_title, l->nfields > 1 ? "," : "",
		 l->rest_title, r->nfields > 1 ? "," : "", r->rest_title);
	ret = writer_put(&j->out, h, strlen(h));
	free(h);
	return ret;
}

/* The reader's launch function: a chunk is in memory, its partition task may run. */
static int launch_read(void *arg, unsigned side, size_t chunk)
{
	struct plan *pl = arg;
	struct part_arg a = { pl->j, side, 0, pl->bits, chunk };
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = (1u << pl->bits) + 1,
				    .label = "read" };

	return weft_submit(pl->j->c, part_file, NULL, 0, &a, sizeof(a), &o,
			   pl->outs[side][chunk]);
}

/*
 * Level 0: one partition task per chunk of each file, submitted here, or by the
 * reader once the chunk is read (reader_go() lets it begin).
 */
static int submit_reads(struct plan *pl, unsigned bits)
{
	struct join *j = pl->j;

	atomic_store_explicit(&j->prog.total, j->side[0].size + j->side[1].size,
			      memory_order_relaxed);
	for (unsigned s = 0; s < 2; s++) {
		bool launched = reader_launches(j->rd, &j->side[s]);

		for (size_t i = 0; i < j->side[s].nchunks; i++) {
			struct part_arg a = { j, s, 0, bits, i };
			struct split *sp;
			int ret = grow((void **)&pl->splits, &pl->cap_splits, pl->nsplits,
				       sizeof(*pl->splits));

			if (ret)
				return ret;
			sp = &pl->splits[pl->nsplits];
			*sp = (struct split){ s, bits, 0, 0,
					      calloc((1u << bits) + 1, sizeof(*sp->out)),
					      i, launched };
			if (!sp->out)
				return -ENOMEM;
			if (launched) {
				pl->outs[s][i] = sp->out;
				pl->nsplits++;
				continue;
			}
			/* Earlier chunks first, so that reads go in file order. */
			ret = submit(pl, part_file, NULL, 0, &a, sizeof(a), (1u << bits) + 1,
				     0, "read", sp->out);
			if (ret) {
				free(sp->out);
				return ret;
			}
			pl->nsplits++;
		}
	}
	pl->parents = 1;
	return 0;
}

/* Wait for the probe tasks in ends[gathered..upto) and add up their sums. */
static int gather_upto(struct plan *pl, size_t upto)
{
	struct join *j = pl->j;
	int ret = pl->err;

	for (; pl->gathered < upto; pl->gathered++) {
		struct weft_future *f = pl->ends[pl->gathered];
		struct weft_buf v;
		int e = ret ? 0 : weft_result(f, &v);

		if (e) {
			const char *m = weft_future_error(f);

			snprintf(j->res->error, sizeof(j->res->error), "%s",
				 m ? m : weft_strerror(e));
			ret = e;
		} else if (!ret) {
			const struct sums *s = v.data;

			j->res->rows += s->rows;
			j->res->left_sum += s->left;
			j->res->right_sum += s->right;
		}
		weft_release(f);
		pl->ends[pl->gathered] = NULL;
	}
	return ret;
}

/*
 * A part's tasks are planned, and make a mark. Parts are joined a few at a time,
 * in order: the engine reads back a task's spilled inputs when it is ready, so the
 * tasks of parts far ahead would only have their inputs read and spilled again.
 */
static int part_done(struct plan *pl)
{
	size_t window = 2 * pl->j->nthreads + 2;

	if (grow((void **)&pl->marks, &pl->cap_marks, pl->nmarks, sizeof(*pl->marks)))
		return -ENOMEM;
	pl->marks[pl->nmarks++] = pl->nends;
	while (pl->nmarks - pl->marks_done > window) {
		int ret = gather_upto(pl, pl->marks[pl->marks_done++]);

		if (ret)
			return ret;
	}
	return 0;
}

static void plan_fini(struct plan *pl)
{
	for (size_t i = 0; i < pl->nsplits; i++)
		split_free(&pl->splits[i]);
	for (size_t i = pl->gathered; i < pl->nends; i++)
		weft_release(pl->ends[i]);
	free(pl->splits);
	free(pl->ends);
	free(pl->marks);
}

static int run(struct join *j)
{
	struct join_result *res = j->res;
	struct plan pl = { .j = j };
	struct weft_options o = { .size = sizeof(o), .nthreads = j->nthreads,
				  .memory_limit = j->elimit, .memory_target = ENGINE_TARGET,
				  .spill_dir = j->spec->spill_dir };
	struct weft_stats st = { .size = sizeof(st) };
	unsigned bits;
	int ret, cret;

	ret = weft_client_open(NULL, &o, &j->c);
	if (ret) {
		snprintf(res->error, sizeof(res->error), "starting the engine: %s%s%s",
			 weft_strerror(ret), j->spec->spill_dir ? " (spill dir " : "",
			 j->spec->spill_dir ? j->spec->spill_dir : "");
		if (j->spec->spill_dir)
			strncat(res->error, ")", sizeof(res->error) - strlen(res->error) - 1);
		return ret;
	}
	watch_start(&j->watch, j->c, j->spec);
	bits = first_bits(j);
	pl.bits = bits;
	for (unsigned s = 0; s < 2; s++) {
		pl.outs[s] = calloc(j->side[s].nchunks + 1, sizeof(*pl.outs[s]));
		if (!pl.outs[s]) {
			snprintf(res->error, sizeof(res->error), "out of memory");
			ret = -ENOMEM;
		}
	}
	/* Without reader threads (no memory for them), each task reads its own chunk. */
	if (ret || reader_start(&j->rd, &j->side[LEFT], &j->side[RIGHT], j->nthreads + 1,
				launch_read, &pl))
		j->rd = NULL;
	progress_phase(&j->prog, "partition", j->side[0].size + j->side[1].size);
	res->partitions = 1u << bits;
	if (!ret)
		ret = submit_reads(&pl, bits);
	reader_go(j->rd);
	if (!ret)
		ret = plan_all(&pl);
	if (!ret)
		ret = gather_upto(&pl, pl.nends);
	progress_joined(j);
	reader_halt(j->rd);		/* no more launches: the splits can go */
	plan_fini(&pl);
	free(pl.outs[0]);
	free(pl.outs[1]);
	watch_stop(&j->watch);
	if (!weft_stats(j->c, &st)) {
		res->spilled_bytes = st.spilled_bytes;
		res->restored_bytes = st.restored_bytes;
		res->mem_peak = st.mem_peak;
	}
	cret = weft_client_close(j->c);
	reader_free(j->rd);		/* after the tasks that take its chunks */
	if (!ret && cret) {
		snprintf(res->error, sizeof(res->error), "closing the engine: %s",
			 weft_strerror(cret));
		ret = cret;
	}
	return ret;
}

int join_run(const struct join_spec *spec, struct join_result *res)
{
	struct join j = { .spec = spec, .res = res, .fmt = spec ? spec->format : 0 };
	double t0 = join_now();
	int ret;

	if (!res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (!spec) {
		snprintf(res->error, sizeof(res->error), "no join spec");
		return -EINVAL;
	}
	ret = check_spec(spec, res->error, sizeof(res->error));
	if (ret) {
		res->bad_usage = true;
		return ret;
	}
	j.count_only = !spec->output;
	ret = learn_defaults(&j);
	if (ret) {
		snprintf(res->error, sizeof(res->error), "starting the engine: %s",
			 weft_strerror(ret));
		return ret;
	}
	budgets(&j);
	res->memory_limit = j.limit;
	res->engine_limit = j.elimit;
	res->nthreads = j.nthreads;
	ret = side_open(&j.side[LEFT], &spec->left, "left", j.fmt, j.count_only, j.chunk,
			res->error, sizeof(res->error));
	if (ret) {
		res->bad_input = ret != -ENOMEM;
		return ret;
	}
	ret = side_open(&j.side[RIGHT], &spec->right, "right", j.fmt, j.count_only, j.chunk,
			res->error, sizeof(res->error));
	if (ret) {
		res->bad_input = ret != -ENOMEM;
		goto close_left;
	}
	side_choose_reads(&j.side[LEFT], spec->direct);
	side_choose_reads(&j.side[RIGHT], spec->direct);
	res->direct_inputs = (j.side[LEFT].dfd >= 0) + (j.side[RIGHT].dfd >= 0);
	res->left_rows = j.side[LEFT].rows;
	res->right_rows = j.side[RIGHT].rows;
	res->input_bytes = j.side[LEFT].size + j.side[RIGHT].size;
	if (spec->output) {
		/* A row read back by its csv_ref needs its whole text's room. */
		j.out_row = j.fmt == JOIN_BIN ? j.side[LEFT].width + j.side[RIGHT].width - 8 :
			    j.side[LEFT].max_row + j.side[RIGHT].max_row + 24;
		if (j.emit < j.out_row)
			j.emit = j.out_row;
		const int fds[2] = { j.side[LEFT].fd, j.side[RIGHT].fd };
		const char *const names[2] = { "left input", "right input" };

		ret = writer_open(&j.out, spec->output, fds, names, &res->bad_usage,
				  res->error, sizeof(res->error));
		if (ret)
			goto close_right;
		if (j.fmt == JOIN_CSV && (ret = write_header(&j))) {
			snprintf(res->error, sizeof(res->error), "output %s: %s", spec->output,
				 strerror(-ret));
			writer_close(&j.out, false, NULL, 0);
			goto close_right;
		}
	}
	res->levels = 1;
	progress_start(&j.prog, spec->progress);
	ret = run(&j);
	progress_stop(&j.prog);
	if (spec->output) {
		int wret = writer_close(&j.out, !ret, res->error, sizeof(res->error));

		ret = ret ? ret : wret;
	}
	res->seconds = join_now() - t0;
close_right:
	side_close(&j.side[RIGHT]);
close_left:
	side_close(&j.side[LEFT]);
	return ret;
}
