// SPDX-License-Identifier: MIT
/*
 * join.c - join_run(): the spec checked, the memory budgets, the inputs opened,
 * the output and its header, and the join run (plan.c). The join is a task graph:
 * a grace hash join.
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
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"

#define MAX_FANOUT 4096
#define MAX_CHUNK (16u << 20)

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
	ret = plan_run(&j);
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
