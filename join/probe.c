// SPDX-License-Identifier: MIT
/*
 * probe.c - the probe task: the other side's records looked up in a part's table,
 * in groups whose misses overlap, by span of buckets when the table is much larger
 * than the cache; joined rows are counted and summed, or written to the output.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"

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
	bucket_starts(cnt, 1u << sbits);
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
		uint16_t *ids = scratch_get(SLOT_IDS, n * sizeof(*ids) + 1);
		char *sorted = scratch_get(SLOT_RECS, n * 16 + 1);
		uint32_t *at = scratch_get(SLOT_AUX, ((1u << sbits) + 1) * sizeof(*at));
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
long emit_rest(const struct side *s, char *p, const char *rest)
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
	char *buf = scratch_get(SLOT_AUX, j->emit);
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

int probe_task(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
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
