// SPDX-License-Identifier: MIT
/*
 * table.c - the build task: a hash table of a part's smaller side, as one result
 * (rows grouped by bucket, or for counting one entry per key with the sum of its
 * words), laid out by a counting sort.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "graph.h"

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

void bucket_starts(uint32_t *start, size_t nb)
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
	cur = scratch_get(SLOT_AUX, (nb + 1) * 4);
	if (!cur)
		return weft_fail(ctx, "build: out of memory");
	memset(start, 0, (nb + 1) * 4);
	for (size_t i = 0; i < nin; i++)
		for (const char *r = in[i].data, *e = r + in[i].len; r < e; r += width)
			start[mix(rec_key(r), a->level) & mask]++;
	bucket_starts(start, nb);
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
	bucket_starts(start + lo, nb);		/* start[lo + nb] is clobbered: the next span's */
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

/*
 * The output of a counting build: the table of the @d distinct keys folded into
 * @out (with their counts in @cnt), in @bits buckets, sized for them; counts only
 * if a key repeated (@d < @n). @start: room for the buckets' starts.
 */
static int counted_table(struct weft_ctx *ctx, const struct build_arg *a,
			 const struct tab_count *out, const uint32_t *cnt, size_t d,
			 uint64_t n, unsigned bits, uint32_t *start)
{
	bool counted = d < n;
	unsigned dbits = log2_ceil(d);
	size_t nb = (size_t)1 << dbits, mask = nb - 1;
	struct table *t = weft_output(ctx, count_tab_size(dbits, d, counted));

	if (!t)
		return weft_fail(ctx, "build: no memory for a table of %zu keys", d);
	*t = (struct table){ d, dbits, a->level, 8, counted };

	uint32_t *ts = (uint32_t *)tab_start(t);
	struct tab_count *te = (struct tab_count *)tab_keys(t);
	uint32_t *tc = (uint32_t *)tab_counts(t);

	memset(ts, 0, (nb + 1) * 4);
	for (size_t i = 0; i < d; i++)
		ts[mix(out[i].key, a->level) & mask]++;
	bucket_starts(ts, nb);
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

static int build_counts(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
			const struct build_arg *a, uint64_t n)
{
	unsigned bits = log2_ceil(n), sbits = log2_ceil(n / BUILD_SPAN_ROWS), shift;
	size_t nb = (size_t)1 << bits, mask = nb - 1, d = 0, most = 0, nspans;
	uint32_t *start, *span;
	struct tab_count *out = scratch_get(SLOT_IDS, n * (sizeof(*out) + sizeof(uint32_t)) + 1);
	uint32_t *cnt = (uint32_t *)(out + n);
	char *recs = scratch_get(SLOT_RECS, n * 16 + 1);
	uint64_t *tk;
	struct table *t;
	bool unique = true;

	if (!out || !recs)
		return weft_fail(ctx, "build: out of memory for %" PRIu64 " rows", n);
	/* Unique keys, likely: their entries go straight into this table. */
	t = unique_table(ctx, a, n);
	if (!t)
		return weft_fail(ctx, "build: no memory for a table of %" PRIu64 " keys", n);
	/* A table that fits in cache: straight from the pieces. */
	if (n <= DIRECT_BUILD_ROWS) {
		uint32_t *fill = scratch_get(SLOT_AUX, (nb + 1) * sizeof(*fill));

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
	start = scratch_get(SLOT_AUX, (nb + nspans + 2) * sizeof(*start));
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
	bucket_starts(span, nspans);
	tk = scratch_get(SLOT_READ, most * 16 + 1);
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
	return counted_table(ctx, a, out, cnt, d, n, bits, start);
}

int build_task(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
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
