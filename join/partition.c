// SPDX-License-Identifier: MIT
/*
 * partition.c - the tasks that split rows by a hash of their key: a chunk of a
 * file read and turned into records (level 0), or a part's pieces split again with
 * the next hash; and the per-thread scratch space and row scattering they (and the
 * build and probe tasks) use.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "graph.h"

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

void *scratch_get(unsigned slot, size_t len)
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

/* Room for @n places, or NULL (then scatter row by row); each place is set after. */
struct lines *lines_get(struct lines *lw, unsigned n)
{
	char *m = scratch_get(SLOT_LINES, (size_t)n * (64 + 2 * sizeof(char *)) + 64);

	if (!m)
		return NULL;
	lw->line = (char (*)[64])(((uintptr_t)m + 63) & ~(uintptr_t)63);
	lw->cur = (char **)(lw->line + n);
	lw->begin = lw->cur + n;
	lw->n = n;
	return lw;
}

/* The lines still gathering go out with plain stores; the streamed ones are fenced. */
void lines_end(struct lines *lw)
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
	ids = scratch_get(SLOT_IDS, n * sizeof(*ids) + 1);
	dst = scratch_get(SLOT_AUX, nparts * (sizeof(*dst) + sizeof(*fill)));
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

/* Level 0: read a chunk of a file and split its rows. */
int part_file(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		     const void *arg, size_t arglen)
{
	const struct part_arg *a = arg;
	struct join *j = a->j;
	const struct side *s = &j->side[a->side];
	const struct chunk *c = &s->chunks[a->chunk];
	char *own = scratch_get(SLOT_READ, chunk_room(c)), *held, *recs;
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
		recs = scratch_get(SLOT_RECS, c->rows * s->width + 1);
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
int part_again(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		      const void *arg, size_t arglen)
{
	const struct part_arg *a = arg;
	size_t bytes = 0;

	for (size_t i = 0; i < nin; i++)
		bytes += in[i].len;
	progress_add(a->j, bytes);
	return scatter(ctx, in, nin, a->j->side[a->side].width, a->level, a->bits);
}
