// SPDX-License-Identifier: MIT
/*
 * plan.c - the client's side of the join: submit the partition tasks of the files'
 * chunks (or let the reader launch them), read each part's counts as they come,
 * plan the part (build and probe tasks, or another split, or blocks for a part of
 * one key), and gather the probes' sums; plan_run() is the whole of it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"

#define MAX_LEVEL 8		/* splits of one part before it is joined in blocks */
#define CACHE_PART (1u << 20)	/* an in-memory part's smaller side: fits in cache */
#define MIN_PIECE (256u << 10)	/* pieces that will spill are at least this, on average */
#define PIECE_COST 4096		/* bytes of limit per piece: its bookkeeping is ~1/16 */
/*
 * Right bytes per probe of a resident part: at least this, and an eighth of its
 * table, from which a probe by span reads each span's slice through first.
 */
#define RESIDENT_GROUP (256u << 10)
#define RESIDENT_PRIO 1			/* ahead of the reads (0) */
#define ENGINE_TARGET 0.6		/* the engine spills down to this share of its limit */

/* The most bits of fan-out that keep pieces of a @bytes input large. */
static unsigned split_cap(size_t bytes)
{
	unsigned b = 0;

	while (b < 12 && bytes >> (b + 1) >= MIN_PIECE)
		b++;
	return b > 2 ? b : 2;
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

	return ret ? ret : submit(pl, build_task, *deps, to - from, &ba, sizeof(ba), 0, prio,
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
	ret = submit(pl, probe_task, *deps, to - from + 1, &pa, sizeof(pa), 0, prio, "probe", &end);
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

/*
 * The report and the trace the caller asked for, of the engine before it closes.
 * A file that cannot be written fails a join that had succeeded (*@ret), naming it.
 */
static void views_write(struct join *j, int *ret)
{
	const char *what[2] = { j->spec->report, j->spec->trace };

	for (int i = 0; i < 2; i++) {
		int err;

		if (!what[i])
			continue;
		err = i ? weft_trace(j->c, what[i]) : weft_report(j->c, what[i]);
		if (err && !*ret) {
			snprintf(j->res->error, sizeof(j->res->error), "writing the %s %s: %s",
				 i ? "trace" : "report", what[i], weft_strerror(err));
			*ret = err;
		}
	}
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

int plan_run(struct join *j)
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
	views_write(j, &ret);
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
