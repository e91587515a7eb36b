// SPDX-License-Identifier: MIT
/*
 * join_run() against the reference join: random inputs with duplicates on both
 * sides, empty inputs, no matches, one key on every row, skew, and memory limits
 * small enough to split parts again and to join a heavy key block by block.
 */
#include <linux/magic.h>
#include <math.h>
#include <sys/vfs.h>

#include "helpers.h"

static struct row *random_rows(size_t n, uint64_t range, uint64_t *seed)
{
	struct row *r = malloc((n ? n : 1) * sizeof(*r));

	for (size_t i = 0; i < n; i++)
		r[i] = (struct row){ t_rand(seed) % range, t_rand(seed) };
	return r;
}

/* Join @l and @r through files with @spec's settings and check the counts. */
static struct join_result join_rows(struct join_spec spec, const char *dir,
				    const struct row *l, size_t nl,
				    const struct row *r, size_t nr)
{
	char *lp = t_path(dir, "l.bin"), *rp = t_path(dir, "r.bin");
	struct expect e = t_reference(l, nl, r, nr);
	struct join_result res;
	int ret;

	t_write(lp, l, nl * sizeof(*l));
	t_write(rp, r, nr * sizeof(*r));
	spec.left.path = lp;
	spec.right.path = rp;
	ret = join_run(&spec, &res);
	cr_assert_eq(ret, 0, "join_run: %d %s", ret, res.error);
	cr_expect_eq(res.rows, e.rows, "rows %" PRIu64 ", want %" PRIu64, res.rows, e.rows);
	if (!spec.output) {
		cr_expect_eq(res.left_sum, e.left_sum);
		cr_expect_eq(res.right_sum, e.right_sum);
	}
	cr_expect_eq(res.left_rows, nl);
	cr_expect_eq(res.right_rows, nr);
	free(lp);
	free(rp);
	return res;
}

/* The same, writing the rows, which are checked against the reference's. */
static void join_rows_written(struct join_spec spec, const char *dir,
			      const struct row *l, size_t nl, const struct row *r, size_t nr)
{
	char *op = t_path(dir, "out.bin");
	size_t n;
	uint64_t *want = t_reference_rows(l, nl, r, nr, &n);

	spec.output = op;
	join_rows(spec, dir, l, nl, r, nr);
	t_check_rows(op, want, n);
	free(want);
	free(op);
}

Test(join, random_small_inputs_with_duplicates, .timeout = 120)
{
	uint64_t seed = 42;
	char *dir = t_dir();

	for (int it = 0; it < 30; it++) {
		size_t nl = t_rand(&seed) % 3000, nr = t_rand(&seed) % 5000;
		uint64_t range = 1 + t_rand(&seed) % 2000;
		struct row *l = random_rows(nl, range, &seed), *r = random_rows(nr, range, &seed);
		struct join_spec spec = t_spec(NULL, NULL);
		static const unsigned parts[] = { 0, 1, 2, 8 };

		spec.nthreads = 1 + it % 2;
		spec.memory_limit = it % 3 ? (size_t)4 << 20 : 0;
		spec.partitions = parts[it % 4];
		spec.task_bytes = it % 5 == 1 ? 4096 : 0;
		join_rows(spec, dir, l, nl, r, nr);

		/* And the rows themselves, every few rounds. */
		if (it % 3 == 0)
			join_rows_written(spec, dir, l, nl, r, nr);
		free(l);
		free(r);
	}
	t_rmdir(dir);
}

/* O_DIRECT inputs: chunks at unaligned offsets, read ahead or by their own task. */
Test(join, direct_reads_match_the_reference, .timeout = 120)
{
	uint64_t seed = 77;
	char *dir = t_dir();
	struct statfs fs;
	bool can = !statfs(dir, &fs) && fs.f_type != TMPFS_MAGIC;

	for (int it = 0; it < 8; it++) {
		size_t nl = 2000 + t_rand(&seed) % 20000, nr = 5000 + t_rand(&seed) % 40000;
		struct row *l = random_rows(nl, 9000, &seed), *r = random_rows(nr, 9000, &seed);
		struct join_spec spec = t_spec(NULL, NULL);
		struct join_result res;

		spec.direct = it % 4 == 3 ? -1 : 1;
		spec.nthreads = 1 + it % 2;
		spec.task_bytes = it % 2 ? 5000 : 64 << 10;	/* many chunks */
		spec.memory_limit = 4 << 20;
		res = join_rows(spec, dir, l, nl, r, nr);
		cr_expect_eq(res.direct_inputs, spec.direct > 0 && can ? 2 : 0);
		if (it % 3 == 0)
			join_rows_written(spec, dir, l, nl, r, nr);
		free(l);
		free(r);
	}
	t_rmdir(dir);
}

/*
 * One part, so one table of many spans, built and probed a span at a time: with
 * unique keys, and with fewer keys. 300k unique keys make a table of 6.9 MB, past
 * the 4 MiB from which probes go by span.
 */
Test(join, large_tables_built_and_probed_in_spans, .timeout = 60)
{
	uint64_t seed = 5;
	char *dir = t_dir();
	static const uint64_t ranges[] = { 1ull << 40, 60000, 3 };

	for (int it = 0; it < 3; it++) {
		size_t nl = 300000, nr = 450000;
		struct row *l = random_rows(nl, ranges[it], &seed);
		struct row *r = random_rows(nr, ranges[it] < 300000 ? ranges[it] : 300000, &seed);
		struct join_spec spec = t_spec(NULL, NULL);

		for (size_t i = 0; i < nr && it == 0; i++)
			r[i].key = l[t_rand(&seed) % nl].key;	/* every row matches */
		spec.partitions = 1;
		spec.nthreads = 2;
		join_rows(spec, dir, l, nl, r, nr);
		free(l);
		free(r);
	}
	t_rmdir(dir);
}

/*
 * Tables of unique keys, built in place from their pieces (50k keys) or span by
 * span (200k), and the same with one key repeated: in the part's first rows, then
 * as its very last row (in another piece when the chunks are small), so that the
 * in-place build meets the repeat after it has written the other entries and the
 * table is folded instead.
 */
Test(join, tables_of_unique_keys_and_one_repeat, .timeout = 60)
{
	uint64_t seed = 9;
	char *dir = t_dir();

	for (int it = 0; it < 9; it++) {
		size_t nl = it < 6 ? 50000 : 200000, nr = 80000;
		struct row *l = random_rows(nl, 1, &seed), *r = random_rows(nr, 1, &seed);
		struct join_spec spec = t_spec(NULL, NULL);

		for (size_t i = 0; i < nl; i++)
			l[i].key = (i + 1) * 0x9e3779b97f4a7c15ull;	/* unique, shuffled */
		if (it % 3 == 1)
			l[1].key = l[0].key;
		else if (it % 3 == 2)
			l[nl - 1].key = l[nl / 2].key;
		for (size_t i = 0; i < nr; i++)
			r[i].key = i % 10 ? l[t_rand(&seed) % nl].key : t_rand(&seed);
		spec.partitions = it < 3 || it >= 6 ? 1 : 0;
		spec.task_bytes = it >= 3 && it < 6 ? 64 << 10 : 0;
		spec.nthreads = 2;
		join_rows(spec, dir, l, nl, r, nr);
		free(l);
		free(r);
	}
	t_rmdir(dir);
}

/*
 * Inputs that spill: the parts whose tables fit are joined while the right input is
 * read (9 of 16 here), the others after. The others' pieces alone pass the engine's
 * target, so they spill however fast the resident parts are probed: at a 64 MiB
 * limit 12 parts fit, and whether anything spilled came down to timing (once, under
 * ThreadSanitizer, nothing did).
 */
Test(join, parts_joined_while_reading_when_spilling, .timeout = 120)
{
	uint64_t seed = 11;
	char *dir = t_dir();

	for (int it = 0; it < 2; it++) {
		size_t nl = 1000000, nr = 1500000;
		uint64_t range = it ? 200000 : 1000000;	/* then five rows a key */
		struct row *l = random_rows(nl, range, &seed), *r = random_rows(nr, range, &seed);
		struct join_spec spec = t_spec(NULL, NULL);
		struct join_result res;

		spec.memory_limit = 48 << 20;
		spec.partitions = 16;
		spec.nthreads = 2;
		res = join_rows(spec, dir, l, nl, r, nr);
		cr_expect_gt(res.resident_parts, 0, "no part was joined while reading");
		cr_expect(it || res.resident_parts < 16, "every table fit: %u",
			  res.resident_parts);
		cr_expect_gt(res.spilled_bytes, 0);
		if (!it)
			join_rows_written(spec, dir, l, nl, r, nr);
		free(l);
		free(r);
	}
	t_rmdir(dir);
}

Test(join, empty_inputs)
{
	char *dir = t_dir(), *op = t_path(dir, "out.bin");
	struct row one = { 5, 6 };
	struct join_spec spec = t_spec(NULL, NULL);
	struct join_result res;
	size_t len;

	res = join_rows(spec, dir, NULL, 0, NULL, 0);
	cr_expect_eq(res.rows, 0);
	join_rows(spec, dir, &one, 1, NULL, 0);
	join_rows(spec, dir, NULL, 0, &one, 1);
	spec.output = op;
	join_rows(spec, dir, NULL, 0, &one, 1);
	free(t_read(op, &len));
	cr_expect_eq(len, 0, "an empty join writes an empty file");
	free(op);
	t_rmdir(dir);
}

Test(join, no_matches)
{
	uint64_t seed = 7;
	char *dir = t_dir();
	struct row *l = random_rows(20000, 1000, &seed), *r = random_rows(30000, 1000, &seed);
	struct join_spec spec = t_spec(NULL, NULL);
	struct join_result res;

	for (size_t i = 0; i < 30000; i++)
		r[i].key += 1000;	/* disjoint key ranges */
	res = join_rows(spec, dir, l, 20000, r, 30000);
	cr_expect_eq(res.rows, 0);
	/* In memory, every part is joined while the right input is read. */
	cr_expect_eq(res.resident_parts, res.partitions);
	free(l);
	free(r);
	t_rmdir(dir);
}

Test(join, one_key_on_every_row, .timeout = 120)
{
	uint64_t seed = 9;
	char *dir = t_dir(), *op = t_path(dir, "out.bin");
	size_t nl = 3000, nr = 4000;
	struct row *l = random_rows(nl, 1, &seed), *r = random_rows(nr, 1, &seed);
	struct join_spec spec = t_spec(NULL, NULL);
	struct join_result res;

	for (size_t i = 0; i < nl; i++)
		l[i].key = (uint64_t)-77;
	for (size_t i = 0; i < nr; i++)
		r[i].key = (uint64_t)-77;
	spec.memory_limit = 4 << 20;
	res = join_rows(spec, dir, l, nl, r, nr);
	cr_expect_eq(res.rows, (uint64_t)nl * nr);

	/* The rows too, with tasks too small for one side: block by block. */
	size_t n;
	uint64_t *want = t_reference_rows(l, nl, r, nr, &n);

	spec.output = op;
	spec.task_bytes = 8192;
	res = join_rows(spec, dir, l, nl, r, nr);
	cr_expect_geq(res.block_joins, 1, "one key cannot be split: blocks");
	t_check_rows(op, want, n);
	free(want);
	free(op);
	free(l);
	free(r);
	t_rmdir(dir);
}

/* Zipf-like keys: a few keys take most rows. */
static struct row *skewed_rows(size_t n, uint64_t range, double s, uint64_t *seed)
{
	struct row *r = malloc(n * sizeof(*r));

	for (size_t i = 0; i < n; i++) {
		double u = ((t_rand(seed) >> 11) + 1) * 0x1.0p-53;

		r[i].key = (uint64_t)(range * pow(u, s)) % range;
		r[i].payload = t_rand(seed);
	}
	return r;
}

Test(join, skewed_build_and_probe_sides, .timeout = 120)
{
	uint64_t seed = 11;
	char *dir = t_dir();
	size_t nl = 60000, nr = 100000;
	struct row *l = skewed_rows(nl, 50000, 6, &seed), *r = skewed_rows(nr, 50000, 6, &seed);
	struct join_spec spec = t_spec(NULL, NULL);

	spec.memory_limit = 4 << 20;
	join_rows(spec, dir, l, nl, r, nr);
	/* Small tasks: the heavy keys' parts must be split, then joined in blocks. */
	spec.task_bytes = 32 << 10;
	struct join_result res = join_rows(spec, dir, l, nl, r, nr);

	cr_expect_gt(res.levels, 1, "parts were split again");
	cr_expect_geq(res.block_joins, 1, "a heavy key was joined in blocks");
	free(l);
	free(r);
	t_rmdir(dir);
}

Test(join, small_limit_splits_parts_again, .timeout = 120)
{
	uint64_t seed = 13;
	char *dir = t_dir();
	size_t nl = 200000, nr = 400000;
	struct row *l = random_rows(nl, 150000, &seed), *r = random_rows(nr, 150000, &seed);
	struct join_spec spec = t_spec(NULL, NULL);
	struct join_result res;

	spec.memory_limit = 4 << 20;
	spec.partitions = 2;
	res = join_rows(spec, dir, l, nl, r, nr);
	cr_expect_gt(res.levels, 2, "a fan-out of 2 under 4 MiB splits several times");
	cr_expect_gt(res.spilled_bytes, 0, "6 MiB of input under 4 MiB spills");
	cr_expect_eq(res.block_joins, 0, "distinct keys split until they fit");
	free(l);
	free(r);
	t_rmdir(dir);
}

Test(join, wide_rows_with_the_key_inside)
{
	char *dir = t_dir();
	char *lp = t_path(dir, "l.bin"), *rp = t_path(dir, "r.bin"), *op = t_path(dir, "o.bin");
	enum { NL = 500, NR = 700, WL = 32, WR = 20 };
	unsigned char l[NL][WL], r[NR][WR];
	uint64_t seed = 3, rows = 0, lsum = 0, rsum = 0;
	struct join_spec spec = t_spec(lp, rp);
	struct join_result res;

	/* Left: key at 8 of 32 bytes; right: key at 12 of 20 (no whole word after). */
	for (int i = 0; i < NL; i++) {
		uint64_t k = t_rand(&seed) % 100;

		for (int b = 0; b < WL; b++)
			l[i][b] = t_rand(&seed);
		memcpy(&l[i][8], &k, 8);
	}
	for (int i = 0; i < NR; i++) {
		uint64_t k = t_rand(&seed) % 100;

		for (int b = 0; b < WR; b++)
			r[i][b] = t_rand(&seed);
		memcpy(&r[i][12], &k, 8);
	}
	for (int i = 0; i < NL; i++) {
		for (int k = 0; k < NR; k++) {
			uint64_t lw, rw = 0;

			if (memcmp(&l[i][8], &r[k][12], 8))
				continue;
			memcpy(&lw, &l[i][16], 8);
			rows++;
			lsum += lw;
			rsum += rw;	/* nothing follows the right key: 0 */
		}
	}
	t_write(lp, l, sizeof(l));
	t_write(rp, r, sizeof(r));
	spec.left.row_bytes = WL;
	spec.left.key_offset = 8;
	spec.right.row_bytes = WR;
	spec.right.key_offset = 12;
	spec.direct = 1;	/* rows that straddle the blocks O_DIRECT reads */
	spec.task_bytes = 1000;
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	cr_expect_eq(res.rows, rows);
	cr_expect_eq(res.left_sum, lsum);
	cr_expect_eq(res.right_sum, rsum);

	/* Output rows: key, the left row without its key, the right row without it. */
	size_t len;
	unsigned char *o;

	spec.output = op;
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	o = t_read(op, &len);
	cr_assert_eq(len, rows * (8 + WL - 8 + WR - 8));
	for (size_t x = 0; x < rows; x++) {
		unsigned char *row = o + x * (WL + WR - 8);
		bool found = false;

		for (int i = 0; i < NL && !found; i++) {
			if (memcmp(&l[i][8], row, 8) || memcmp(l[i], row + 8, 8) ||
			    memcmp(&l[i][16], row + 16, 16))
				continue;
			for (int k = 0; k < NR && !found; k++)
				found = !memcmp(&r[k][12], row, 8) &&
					!memcmp(r[k], row + 32, 12);
		}
		cr_assert(found, "output row %zu is no joined pair", x);
	}
	free(o);
	free(lp);
	free(rp);
	free(op);
	t_rmdir(dir);
}

/* CSV: the same rows as text, with quoted fields, in other column orders. */
Test(join, csv_matches_the_reference, .timeout = 60)
{
	uint64_t seed = 21;
	char *dir = t_dir(), *lp = t_path(dir, "l.csv"), *rp = t_path(dir, "r.csv");
	char *op = t_path(dir, "o.csv");
	size_t nl = 3000, nr = 5000;
	struct row *l = random_rows(nl, 700, &seed), *r = random_rows(nr, 700, &seed);
	struct expect e;
	FILE *f = fopen(lp, "w");
	struct join_spec spec = t_spec(lp, rp);
	struct join_result res;

	for (size_t i = 0; i < nl; i++)
		l[i].key -= 350;	/* negative keys too */
	for (size_t i = 0; i < nr; i++)
		r[i].key -= 350;
	e = t_reference(l, nl, r, nr);
	fprintf(f, "id,payload,\"note, quoted\"\r\n");
	for (size_t i = 0; i < nl; i++)
		fprintf(f, "%" PRId64 ",%" PRId64 ",\"a, \"\"b\"\"\nc\"\r\n", (int64_t)l[i].key,
			(int64_t)l[i].payload);
	fclose(f);
	f = fopen(rp, "w");
	fprintf(f, "x,\"id\",payload\n");
	for (size_t i = 0; i < nr; i++)
		fprintf(f, "x%zu,\"%" PRId64 "\",%" PRId64 "\n", i, (int64_t)r[i].key,
			(int64_t)r[i].payload);
	fprintf(f, "\n");	/* a blank last line is no row */
	fclose(f);
	spec.format = JOIN_CSV;
	spec.left.key_name = spec.right.key_name = "id";
	spec.memory_limit = 4 << 20;
	spec.direct = 1;	/* chunks start anywhere in the text */
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	cr_expect_eq(res.rows, e.rows);
	cr_expect_eq(res.left_sum, e.left_sum);
	cr_expect_eq(res.right_sum, e.right_sum);
	cr_expect_eq(res.left_rows, nl);
	cr_expect_eq(res.right_rows, nr);

	spec.output = op;
	spec.direct = 0;
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	cr_expect_eq(res.rows, e.rows);

	size_t len, lines = 0;
	char *o = t_read(op, &len);

	cr_expect(!strncmp(o, "id,payload,\"note, quoted\",x,payload\n", 36), "header: %.40s", o);
	/* Each row: key, payload, the quoted note (with its newline), x<i>, payload. */
	for (char *p = strchr(o, '\n'); (p = strstr(p, ",x")); p++)
		lines++;
	cr_expect_eq(lines, e.rows);
	free(o);
	free(l);
	free(r);
	free(lp);
	free(rp);
	free(op);
	t_rmdir(dir);
}

/* A payload of @i's length: mostly short, some long, one very long. */
static char *csv_payload(size_t i, size_t very)
{
	size_t n = i == very ? 300000 : i % 50 == 0 ? 20000 : 1 + i % 17;
	char *p = malloc(n + 1);

	memset(p, 'a' + (int)(i % 26), n);
	p[n] = 0;
	return p;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * regress_22: CSV records follow the bytes of the input, not rows times the
 * longest row: a few long rows among many short ones are kept by where they are in
 * the file and read back for the output, which is the reference's, line for line.
 */
Test(join, regress_22_csv_records_follow_the_bytes_of_the_input, .timeout = 120)
{
	enum { N = 3000, KEYS = 1000 };
	char *dir = t_dir(), *lp = t_path(dir, "l.csv"), *rp = t_path(dir, "r.csv");
	char *op = t_path(dir, "o.csv");
	char *lpay[N], *rpay[N], **want = NULL, **got = NULL;
	int64_t lk[N], rk[N];
	size_t nwant = 0, ngot = 0, len, in_bytes = 0;
	struct join_spec spec = t_spec(lp, rp);
	struct join_result res;
	uint64_t seed = 5;
	FILE *fl = fopen(lp, "w"), *fr = fopen(rp, "w");

	fprintf(fl, "k,lv\n");
	fprintf(fr, "rv,k\n");
	for (size_t i = 0; i < N; i++) {
		lk[i] = (int64_t)(t_rand(&seed) % KEYS);
		rk[i] = (int64_t)(t_rand(&seed) % KEYS);
		lpay[i] = csv_payload(i, 7);
		rpay[i] = csv_payload(i + 3, 7);
		fprintf(fl, "%" PRId64 ",%s\n", lk[i], lpay[i]);
		fprintf(fr, "%s,%" PRId64 "\n", rpay[i], rk[i]);
		in_bytes += strlen(lpay[i]) + strlen(rpay[i]) + 10;
	}
	fclose(fl);
	fclose(fr);
	for (size_t i = 0; i < N; i++)
		for (size_t x = 0; x < N; x++) {
			if (lk[i] != rk[x])
				continue;
			want = realloc(want, (nwant + 1) * sizeof(*want));
			cr_assert(asprintf(&want[nwant++], "%" PRId64 ",%s,%s", lk[i], lpay[i],
					   rpay[x]) > 0);
		}
	spec.format = JOIN_CSV;
	spec.left.key_name = spec.right.key_name = "k";
	spec.memory_limit = 8 << 20;
	spec.output = op;
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	cr_expect_eq(res.rows, nwant);
	cr_expect_lt(res.mem_peak + res.spilled_bytes, 4 * in_bytes,
		     "records of %zu input bytes took %zu in memory and %zu on disk",
		     in_bytes, res.mem_peak, (size_t)res.spilled_bytes);

	char *o = t_read(op, &len), *save = NULL;

	cr_assert(!strncmp(o, "k,lv,rv\n", 8), "header: %.20s", o);
	for (char *line = strtok_r(o + 8, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		got = realloc(got, (ngot + 1) * sizeof(*got));
		got[ngot++] = line;
	}
	cr_assert_eq(ngot, nwant);
	qsort(want, nwant, sizeof(*want), cmp_str);
	qsort(got, ngot, sizeof(*got), cmp_str);
	for (size_t i = 0; i < nwant; i++)
		cr_assert_str_eq(got[i], want[i], "line %zu of the sorted output", i);
	for (size_t i = 0; i < nwant; i++)
		free(want[i]);
	for (size_t i = 0; i < N; i++) {
		free(lpay[i]);
		free(rpay[i]);
	}
	free(want);
	free(got);
	free(o);
	free(lp);
	free(rp);
	free(op);
	t_rmdir(dir);
}

Test(join, bad_specs_are_refused)
{
	struct join_spec spec = t_spec("/nonexistent/l", "/nonexistent/r");
	struct join_result res;

	cr_expect_eq(join_run(NULL, &res), -EINVAL);
	cr_expect_eq(join_run(&spec, NULL), -EINVAL);
	spec.memory_limit = 1 << 20;
	cr_expect_eq(join_run(&spec, &res), -EINVAL);
	cr_expect(strstr(res.error, "memory limit"), "%s", res.error);
	spec.memory_limit = 0;
	spec.left.row_bytes = 12;
	spec.left.key_offset = 8;
	cr_expect_eq(join_run(&spec, &res), -EINVAL);
	cr_expect(strstr(res.error, "does not fit"), "%s", res.error);
	spec.left.row_bytes = 0;
	spec.left.key_offset = 0;
	spec.partitions = 3;
	cr_expect_eq(join_run(&spec, &res), -EINVAL);
	spec.partitions = 0;
	spec.left.path = NULL;
	cr_expect_eq(join_run(&spec, &res), -EINVAL);
	spec.left.path = "/nonexistent/l";
	cr_expect_eq(join_run(&spec, &res), -ENOENT);
	cr_expect(strstr(res.error, "/nonexistent/l"), "%s", res.error);
	cr_expect(res.bad_input);
}

/* Join @spec with the next submit of @who after @n failing; check it fails cleanly. */
static bool join_fails_cleanly(struct join_spec spec, const char *dir, enum t_submitter who,
			       long n, const char *want)
{
	struct join_result res;
	bool unused;
	int ret;

	t_fail_submit(who, n);
	ret = join_run(&spec, &res);
	unused = t_fail_submit(who, -1);
	if (unused) {
		/* Past the join's last submit: nothing failed. */
		cr_assert_eq(ret, 0, "%s", res.error);
		return false;
	}
	cr_assert_eq(ret, -ENOMEM, "submit %ld: %d %s", n, ret, res.error);
	cr_expect(strstr(res.error, want), "submit %ld: the message says '%s': %s", n,
		  want, res.error);
	cr_expect_eq(access(spec.output, F_OK), -1, "no output after a failure");
	cr_expect_eq(t_count_files(dir, "out.bin"), 0, "neither out.bin nor out.bin.partial-XXXXXX is left");
	return true;
}

/*
 * A reader thread, or the thread that runs the join, cannot submit a task: the
 * join fails with that error, says what it was doing, and leaves neither the
 * output nor its temporary file; nothing leaks (ASan) and nothing races (TSan).
 */
Test(join, submit_failures_fail_the_join, .timeout = 120)
{
	uint64_t seed = 5;
	char *dir = t_dir(), *lp = t_path(dir, "l.bin"), *rp = t_path(dir, "r.bin");
	char *op = t_path(dir, "out.bin");
	struct row *l = random_rows(20000, 5000, &seed), *r = random_rows(40000, 5000, &seed);
	struct join_spec spec = t_spec(lp, rp);
	struct join_result res;
	struct statfs fs;
	long n, failed = 0;

	if (statfs(dir, &fs) || fs.f_type == TMPFS_MAGIC)
		cr_skip_test("reader threads launch tasks only for O_DIRECT reads");
	t_write(lp, l, 20000 * sizeof(*l));
	t_write(rp, r, 40000 * sizeof(*r));
	spec.output = op;
	spec.direct = 1;			/* the reader threads launch the reads */
	spec.task_bytes = 32 << 10;		/* many chunks, so several launches */
	spec.memory_limit = 8 << 20;
	for (n = 0; n < 15; n += 5)
		cr_assert(join_fails_cleanly(spec, dir, T_READER, n, ".bin: submitting the task "
					     "of rows "), "reader submit %ld was made", n);
	/* Each of the client's submits in turn, until the join makes no more. */
	for (n = 0; join_fails_cleanly(spec, dir, T_CLIENT, n, "submitting a ");
	     n += 1 + n / 4)
		failed++;
	cr_assert_gt(failed, 5, "the join made only %ld submits", failed);
	/* Disarmed, the same join succeeds. */
	cr_assert_eq(join_run(&spec, &res), 0, "%s", res.error);
	cr_expect_eq(res.rows, t_reference(l, 20000, r, 40000).rows);
	free(l);
	free(r);
	free(lp);
	free(rp);
	free(op);
	t_rmdir(dir);
}
