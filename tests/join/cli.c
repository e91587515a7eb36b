// SPDX-License-Identifier: MIT
/*
 * weft-join and weft-gen as programs: malformed inputs and bad usage (messages and
 * exit codes, and no output left behind), a full disk, the memory a join takes,
 * and the generator's determinism and expectation.
 */
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "helpers.h"

struct env {
	char *dir, *join, *gen;
};

static struct env setup(void)
{
	struct env e = { t_dir(), t_tool("weft-join"), t_tool("weft-gen") };

	cr_assert_eq(access(e.join, X_OK), 0, "%s", e.join);
	return e;
}

static void teardown(struct env *e)
{
	t_rmdir(e->dir);
	free(e->join);
	free(e->gen);
}

/* Run weft-join on @dir with @args; it must fail with @code, say @says, leave no file. */
static void expect_failure(struct env *e, int code, const char *says, const char *args)
{
	char *out;
	int rc = t_run(&out, "cd '%s' && '%s' %s", e->dir, e->join, args);

	cr_expect_eq(rc, code, "weft-join %s: exit %d, want %d; said: %s", args, rc, code, out);
	cr_expect(strstr(out, says), "weft-join %s said '%s', not '%s'", args, out, says);
	cr_expect_eq(t_count_files(e->dir, "out"), 0, "weft-join %s left an output file",
		     args);
	free(out);
}

static void put(struct env *e, const char *name, const char *text)
{
	char *p = t_path(e->dir, name);

	t_write(p, text, strlen(text));
	free(p);
}

Test(cli, malformed_inputs_name_the_file_and_row)
{
	struct env e = setup();
	struct row rows[4] = { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } };
	char *good = t_path(e.dir, "good.bin");

	t_write(good, rows, sizeof(rows));
	put(&e, "cut.bin", "0123456789abcdef0123456789");	/* 26 bytes: row 2 is cut */
	expect_failure(&e, 3, "cut.bin: 26 bytes is not a whole number of 16-byte rows: row 2",
		       "--left good.bin --right cut.bin --output out.bin");
	expect_failure(&e, 3, "missing.bin: No such file",
		       "--left missing.bin --right good.bin --count");
	put(&e, "badkey.csv", "k,v\n1,2\n2,3\n3x,4\n");
	put(&e, "good.csv", "k,v\n1,2\n");
	expect_failure(&e, 3, "badkey.csv: row 3 (line 4): key '3x' is not an integer",
		       "--format csv --left good.csv --right badkey.csv --output out.csv");
	put(&e, "big.csv", "k,v\n99999999999999999999,1\n");
	expect_failure(&e, 3, "big.csv: row 1 (line 2): key '99999999999999999999' does not fit in 64 bits",
		       "--format csv --left good.csv --right big.csv --count");
	put(&e, "quote.csv", "k,v\n1,\"open\n2,3\n");
	expect_failure(&e, 3, "quote.csv: row 1 (line 2): a quoted field is not closed",
		       "--format csv --left quote.csv --right good.csv --output out.csv");
	put(&e, "short.csv", "a,k\n1,2\n3\n");
	expect_failure(&e, 3, "short.csv: row 2 (line 3) has 1 fields; the key is field 2",
		       "--format csv --key k --left short.csv --right short.csv --count");
	expect_failure(&e, 3, "no column named 'nope'",
		       "--format csv --key nope --left good.csv --right good.csv --count");
	put(&e, "empty.csv", "");
	expect_failure(&e, 3, "empty.csv: empty file; a header line is needed",
		       "--format csv --left empty.csv --right good.csv --count");
	free(good);
	teardown(&e);
}

Test(cli, bad_usage_exits_2)
{
	struct env e = setup();
	char *out;

	put(&e, "a.bin", "");
	expect_failure(&e, 2, "both --left and --right", "--right a.bin --count");
	expect_failure(&e, 2, "exactly one of", "--left a.bin --right a.bin");
	expect_failure(&e, 2, "exactly one of",
		       "--left a.bin --right a.bin --count --output out.bin");
	expect_failure(&e, 2, "bad --memory-limit '1M'",
		       "--left a.bin --right a.bin --count --memory-limit 1M");
	expect_failure(&e, 2, "bad --memory-limit 'lots'",
		       "--left a.bin --right a.bin --count --memory-limit lots");
	expect_failure(&e, 2, "unknown format 'xml'",
		       "--left a.bin --right a.bin --count --format xml");
	expect_failure(&e, 2, "bad value '4'", "--left a.bin --right a.bin --count --row-bytes 4");
	expect_failure(&e, 2, "bad value '0'", "--left a.bin --right a.bin --count --threads 0");
	expect_failure(&e, 2, "unknown or incomplete option '--frobnicate'",
		       "--left a.bin --right a.bin --count --frobnicate");
	expect_failure(&e, 2, "does not fit in 16-byte rows",
		       "--left a.bin --right a.bin --count --key-offset 9");
	cr_expect_eq(t_run(&out, "'%s' --help", e.join), 0);
	cr_expect(strstr(out, "usage: weft-join"), "%s", out);
	free(out);
	teardown(&e);
}

Test(cli, counts_json_and_summary)
{
	struct env e = setup();
	char *out;
	int rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 1000"
		       " --rows 5000 --seed 5 > want.json", e.dir, e.gen);

	cr_assert_eq(rc, 0);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --memory-limit 4M"
		   " 2>summary.txt", e.dir, e.join);
	cr_assert_eq(rc, 0, "%s", out);

	size_t len;
	char *want = t_read(t_path(e.dir, "want.json"), &len);
	char *summary = t_read(t_path(e.dir, "summary.txt"), &len);

	cr_expect_str_eq(out, want);
	cr_expect(strstr(summary, "5000 rows from 1000 + 5000 in"), "%s", summary);
	cr_expect(!strstr(summary, "partition"), "no progress bar off a terminal");
	free(out);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --progress"
		   " --quiet 2>&1 >/dev/null", e.dir, e.join);
	cr_assert_eq(rc, 0, "%s", out);
	/* Each phase's bar ends full, with its bytes. */
	cr_expect(strstr(out, "partition [##############################] 93.8 KiB / 93.8 KiB"),
		  "%s", out);
	cr_expect(strstr(out, "join      [##############################]"), "%s", out);
	cr_expect(!strstr(out, "rows from"), "--quiet: no summary");
	cr_expect(strstr(summary, "Mtuples/s; spilled"), "%s", summary);
	cr_expect(strstr(summary, "peak memory"), "%s", summary);
	free(want);
	free(summary);
	free(out);
	teardown(&e);
}

Test(cli, output_replaces_the_file_only_on_success)
{
	struct env e = setup();
	struct row rows[2] = { { 1, 2 }, { 1, 3 } };
	char *lp = t_path(e.dir, "l.bin"), *op = t_path(e.dir, "out.bin"), *out;
	size_t len;

	t_write(lp, rows, sizeof(rows));
	t_write(op, "old", 3);
	put(&e, "cut.bin", "123");
	cr_expect_eq(t_run(&out, "cd '%s' && '%s' --left l.bin --right cut.bin --output out.bin",
			   e.dir, e.join), 3);
	free(out);
	free(t_read(op, &len));
	cr_expect_eq(len, 3, "a failed join leaves the old file alone");
	cr_expect_eq(t_count_files(e.dir, "out.bin.partial"), 0);
	cr_expect_eq(t_run(&out, "cd '%s' && '%s' --left l.bin --right l.bin --output out.bin",
			   e.dir, e.join), 0, "%s", out);
	free(out);
	free(t_read(op, &len));
	cr_expect_eq(len, 4 * 24);
	cr_expect_eq(t_count_files(e.dir, "out.bin.partial"), 0);
	free(lp);
	free(op);
	teardown(&e);
}

/* A disk of @size at e->dir/@name (a tmpfs); the test is skipped without root. */
static char *small_disk_of(struct env *e, const char *name, const char *size)
{
	char *mnt = t_path(e->dir, name), opts[32];

	if (geteuid() != 0)
		cr_skip_test("needs root to mount a tmpfs");
	mkdir(mnt, 0755);
	snprintf(opts, sizeof(opts), "size=%s", size);
	if (mount("tmpfs", mnt, "tmpfs", 0, opts))
		cr_skip_test("cannot mount a tmpfs here");
	return mnt;
}

/* A 1 MiB disk at e->dir/small. */
static char *small_disk(struct env *e)
{
	return small_disk_of(e, "small", "1m");
}

static void small_disk_gone(char *mnt)
{
	umount2(mnt, MNT_DETACH);
	free(mnt);
}

Test(cli, full_disk_fails_cleanly, .timeout = 60)
{
	struct env e = setup();
	char *mnt = small_disk(&e), *out;
	int rc;

	rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 20000"
		   " --rows 100000", e.dir, e.gen);
	cr_assert_eq(rc, 0);
	/* 100000 joined rows of 24 bytes do not fit in 1 MiB. */
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output small/out.bin",
		   e.dir, e.join);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "No space left on device"), "%s", out);
	cr_expect_eq(t_count_files(mnt, "out"), 0, "nothing is left on the full disk");
	free(out);
	small_disk_gone(mnt);
	teardown(&e);
}

/* Peak RSS from the summary line, in MiB. */
static double summary_peak(const char *s)
{
	const char *p = strstr(s, "peak memory ");
	double v;
	char unit[8];

	cr_assert(p, "%s", s);
	cr_assert_eq(sscanf(p, "peak memory %lf %7s", &v, unit), 2);
	return !strcmp(unit, "GiB") ? v * 1024 : !strcmp(unit, "KiB") ? v / 1024 : v;
}

/*
 * Peak memory stays within 1.2 times the limit plus the documented fixed overhead
 * (21 MiB, and 0.3 MiB a thread for what the engine records), on inputs six times
 * the limit. Sanitizers add shadow memory: skipped.
 */
#define RECORD_MIB 0.3
Test(cli, peak_memory_follows_the_limit, .timeout = 120)
{
	struct env e = setup();
	char *out;
	int rc;

	if (T_SANITIZED)
		cr_skip_test("sanitizers add their own memory");
	rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 1000000"
		   " --rows 5000000 --keys zipf --zipf 0.8", e.dir, e.gen);
	cr_assert_eq(rc, 0);
	for (int limit = 8; limit <= 32; limit *= 4) {
		rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count"
			   " --memory-limit %dM", e.dir, e.join, limit);
		cr_assert_eq(rc, 0, "%s", out);
		long threads = sysconf(_SC_NPROCESSORS_ONLN);

		threads = threads < limit ? threads : limit;	/* one a MiB at most */
		cr_expect_leq(summary_peak(out), 1.2 * limit + 21 + RECORD_MIB * (double)threads,
			      "limit %d MiB: %s", limit, out);
		free(out);
	}
	/* regress_22: threads beyond what the limit gives each are not started. */
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --memory-limit 4M"
		   " --threads 64", e.dir, e.join);
	cr_assert_eq(rc, 0, "%s", out);
	cr_expect_leq(summary_peak(out), 1.2 * 4 + 21 + RECORD_MIB * 4, "64 threads asked: %s",
		      out);
	cr_expect(strstr(out, "4 threads, not 64: the memory limit gives no more"), "%s", out);
	free(out);
	teardown(&e);
}

Test(gen, deterministic_for_a_seed)
{
	struct env e = setup();
	size_t la, lb, lc;
	char *a, *b, *c;

	for (int i = 0; i < 3; i++) {
		int rc = t_run(NULL, "cd '%s' && '%s' --rows 100000 --keys zipf --zipf 1.2"
			       " --seed %d --output g%d.bin", e.dir, e.gen, i < 2 ? 1 : 2, i);

		cr_assert_eq(rc, 0);
	}
	a = t_read(t_path(e.dir, "g0.bin"), &la);
	b = t_read(t_path(e.dir, "g1.bin"), &lb);
	c = t_read(t_path(e.dir, "g2.bin"), &lc);
	cr_expect_eq(la, 100000 * 16);
	cr_expect(la == lb && !memcmp(a, b, la), "the same seed, the same bytes");
	cr_expect(la == lc && memcmp(a, c, la), "another seed, other bytes");
	free(a);
	free(b);
	free(c);
	teardown(&e);
}

/*
 * Tables written with O_DIRECT (the test's directory) and through a pipe, which
 * refuses O_DIRECT, are the same bytes: binary with a partial last block and
 * without, wide rows, and CSV.
 */
Test(gen, the_same_bytes_with_and_without_direct_writes)
{
	static const char *args[] = {
		"--rows 1000", "--rows 262144", "--rows 3001 --row-bytes 40",
		"--rows 5000 --format csv",
	};
	struct env e = setup();

	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		char *pa = t_path(e.dir, "t"), *pb = t_path(e.dir, "p"), *a, *b;
		size_t la, lb;

		cr_assert_eq(t_run(NULL, "cd '%s' && '%s' %s --seed 3 --output t", e.dir, e.gen,
				   args[i]), 0, "%s", args[i]);
		cr_assert_eq(t_run(NULL, "cd '%s' && '%s' %s --seed 3 --output /dev/stdout |"
				   " cat > p", e.dir, e.gen, args[i]), 0, "%s", args[i]);
		a = t_read(pa, &la);
		b = t_read(pb, &lb);
		cr_expect(la == lb && !memcmp(a, b, la), "%s: %zu and %zu bytes", args[i],
			  la, lb);
		cr_expect_gt(la, 0);
		free(a);
		free(b);
		free(pa);
		free(pb);
	}
	teardown(&e);
}

/* A table that does not fit fails with the system's reason and leaves no file. */
Test(gen, full_disk_fails_cleanly, .timeout = 60)
{
	struct env e = setup();
	char *mnt = small_disk(&e), *out;
	int rc;

	rc = t_run(&out, "cd '%s' && '%s' --rows 200000 --output small/t.bin", e.dir, e.gen);
	cr_expect_neq(rc, 0, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "No space left on device"), "%s", out);
	cr_expect_eq(t_count_files(mnt, "t.bin"), 0, "nothing is left on the full disk");
	free(out);
	small_disk_gone(mnt);
	teardown(&e);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

Test(gen, key_distributions)
{
	struct env e = setup();
	size_t len;
	struct row *r;
	uint64_t *keys = malloc(50000 * 8);

	cr_assert_eq(t_run(NULL, "cd '%s' && '%s' --rows 50000 --keys unique --output u.bin",
			   e.dir, e.gen), 0);
	r = t_read(t_path(e.dir, "u.bin"), &len);
	cr_assert_eq(len, 50000 * 16);
	for (int i = 0; i < 50000; i++)
		keys[i] = r[i].key;
	cr_expect_neq(keys[0], 0, "shuffled");
	qsort(keys, 50000, 8, cmp_u64);
	for (int i = 0; i < 50000; i++)
		cr_assert_eq(keys[i], (uint64_t)i, "unique keys are 0..n-1");
	free(r);

	cr_assert_eq(t_run(NULL, "cd '%s' && '%s' --rows 50000 --keys zipf --zipf 1.5"
			   " --key-range 1000 --output z.bin", e.dir, e.gen), 0);
	r = t_read(t_path(e.dir, "z.bin"), &len);
	size_t first = 0, last = 0;

	for (int i = 0; i < 50000; i++) {
		cr_assert_lt(r[i].key, 1000);
		first += r[i].key == 0;
		last += r[i].key == 999;
	}
	/* P(rank 1) with s = 1.5 over 1000 keys is about 0.39. */
	cr_expect(first > 17000 && first < 22000, "key 0 drawn %zu times", first);
	cr_expect_lt(last, 50, "key 999 drawn %zu times", last);
	free(r);
	free(keys);
	cr_expect_eq(t_run(NULL, "'%s' --rows 10 --keys zipf --zipf 0 --output /dev/null",
			   e.gen), 2);
	teardown(&e);
}

/* The bytes of @path, to compare before and after. */
static char *contents(struct env *e, const char *name, size_t *len)
{
	char *p = t_path(e->dir, name), *d = t_read(p, len);

	free(p);
	return d;
}

/* regress_22: an output that is an input, by any name, is refused and left alone. */
Test(cli, regress_22_an_output_that_is_an_input_is_refused)
{
	struct env e = setup();
	struct row rows[2] = { { 1, 2 }, { 1, 3 } };
	char *lp = t_path(e.dir, "l.bin"), *before, *after;
	size_t n0, n1;

	t_write(lp, rows, sizeof(rows));
	put(&e, "r.bin", "");
	before = contents(&e, "l.bin", &n0);
	expect_failure(&e, 2, "output l.bin: is the same file as the left input",
		       "--left l.bin --right r.bin --output l.bin");
	expect_failure(&e, 2, "is the same file as the right input",
		       "--left r.bin --right l.bin --output ./l.bin");
	cr_assert_eq(t_run(NULL, "cd '%s' && ln -s l.bin link.bin && ln l.bin hard.bin",
			   e.dir), 0);
	expect_failure(&e, 2, "output link.bin: is the same file as the left input",
		       "--left l.bin --right r.bin --output link.bin");
	expect_failure(&e, 2, "output hard.bin: is the same file as the left input",
		       "--left l.bin --right r.bin --output hard.bin");
	after = contents(&e, "l.bin", &n1);
	cr_expect(n0 == n1 && !memcmp(before, after, n0), "the input is unchanged");
	free(before);
	free(after);
	free(lp);
	teardown(&e);
}

/*
 * regress_22: an output that exists and is not a regular file is written in place,
 * never replaced: a device, standard output by name or as -, a FIFO. A directory
 * is refused before the join.
 */
Test(cli, regress_22_an_output_that_is_not_a_regular_file_is_written_in_place, .timeout = 60)
{
	struct env e = setup();
	struct stat st;
	char *out;
	int rc;

	rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 100"
		   " --rows 1000", e.dir, e.gen);
	cr_assert_eq(rc, 0);
	/*
	 * 1000 joined rows of 24 bytes. The devices and links are made here, not
	 * taken from /dev: a regression would replace them, and /dev is the
	 * machine's.
	 */
	if (geteuid() == 0) {
		char *dev = t_path(e.dir, "null.dev");

		cr_assert_eq(mknod(dev, S_IFCHR | 0666, makedev(1, 3)), 0);
		rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output null.dev"
			   " --quiet", e.dir, e.join);
		cr_expect_eq(rc, 0, "%s", out);
		free(out);
		cr_assert_eq(stat(dev, &st), 0);
		cr_expect(S_ISCHR(st.st_mode), "the device is still a device");
		cr_expect_eq(t_count_files(e.dir, "null.dev.partial"), 0);
		free(dev);
	}
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output - --quiet | wc -c",
		   e.dir, e.join);
	cr_expect_eq(rc, 0);
	cr_expect_eq(atol(out), 24000, "- is standard output: %s", out);
	free(out);
	/* As /dev/stdout is: a link to the process's descriptor 1, here a pipe. */
	char *link = t_path(e.dir, "stdout.link");

	cr_assert_eq(symlink("/proc/self/fd/1", link), 0);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output stdout.link"
		   " --quiet | wc -c", e.dir, e.join);
	cr_expect_eq(atol(out), 24000, "a link to standard output: %s", out);
	free(out);
	cr_assert_eq(lstat(link, &st), 0);
	cr_expect(S_ISLNK(st.st_mode), "the link is still a link");
	free(link);
	/* Standard output sent to a file by the shell: that file gets the rows. */
	rc = t_run(&out, "cd '%s' && echo first > got && '%s' --left l.bin --right r.bin"
		   " --output stdout.link --quiet >> got && wc -c < got", e.dir, e.join);
	cr_expect_eq(atol(out), 6 + 24000, "appended to what >> kept: %s", out);
	free(out);
	rc = t_run(&out, "cd '%s' && mkfifo out.fifo && { wc -c < out.fifo > got & } &&"
		   " '%s' --left l.bin --right r.bin --output out.fifo --quiet; rc=$?; wait;"
		   " cat got; exit $rc", e.dir, e.join);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect_eq(atol(out), 24000, "a FIFO is written through: %s", out);
	free(out);
	cr_assert_eq(t_run(NULL, "cd '%s' && test -p out.fifo && rm out.fifo got", e.dir), 0,
		     "the FIFO is still a FIFO");
	cr_assert_eq(mkdir(t_path(e.dir, "outdir"), 0755), 0);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output outdir",
		   e.dir, e.join);
	cr_expect_eq(rc, 2, "%s", out);
	cr_expect(strstr(out, "output outdir: is a directory"), "%s", out);
	cr_expect(!strstr(out, "rows from"), "refused before the join: %s", out);
	cr_expect_eq(t_count_files(e.dir, "outdir."), 0);
	free(out);
	teardown(&e);
}

/* regress_22: a FIFO as an input is refused at once (exit 3), not opened and waited on. */
Test(cli, regress_22_a_fifo_input_is_refused_without_blocking, .timeout = 20)
{
	struct env e = setup();
	char *out;
	int rc;

	put(&e, "r.bin", "");
	cr_assert_eq(t_run(NULL, "cd '%s' && mkfifo in.fifo", e.dir), 0);
	rc = t_run(&out, "cd '%s' && '%s' --left in.fifo --right r.bin --count", e.dir, e.join);
	cr_expect_eq(rc, 3, "%s", out);
	cr_expect(strstr(out, "left input in.fifo: not a regular file"), "%s", out);
	free(out);
	teardown(&e);
}

/*
 * regress_22: SIGINT and SIGTERM in the middle of a join remove the temporary
 * output and exit 128 + the signal; an existing output is left as it was.
 */
Test(cli, regress_22_a_signal_removes_the_temporary_output, .timeout = 120)
{
	struct env e = setup();
	const int sigs[2] = { SIGINT, SIGTERM };
	char *out;
	int rc;

	rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 2000000"
		   " --rows 8000000", e.dir, e.gen);
	cr_assert_eq(rc, 0);
	put(&e, "out.bin", "old");
	for (int i = 0; i < 2; i++) {
		/* Signalled once its temporary file exists: the join is under way. */
		rc = t_run(&out, "cd '%s' && { '%s' --left l.bin --right r.bin --output out.bin"
			   " --memory-limit 16M --threads 1 --quiet & pid=$!; n=0;"
			   " while ! ls out.bin.partial-* >/dev/null 2>&1; do"
			   " n=$((n+1)); [ $n -lt 2000 ] || break; sleep 0.01; done;"
			   " kill -%d $pid; wait $pid; }", e.dir, e.join, sigs[i]);
		cr_expect_eq(rc, 128 + sigs[i], "signal %d: exit %d: %s", sigs[i], rc, out);
		cr_expect(strstr(out, "stopped, nothing written"), "%s", out);
		free(out);
		cr_expect_eq(t_count_files(e.dir, "out.bin.partial"), 0, "no temporary file");
		size_t len;

		free(contents(&e, "out.bin", &len));
		cr_expect_eq(len, 3, "the old output is left as it was");
	}
	teardown(&e);
}

/* regress_22: flags. */
Test(cli, regress_22_flags_mean_what_they_say, .timeout = 60)
{
	struct env e = setup();
	struct row l[10], r[10];
	char *out;
	int rc;

	/* Left rows key first; right rows key second. Payloads never equal a key. */
	for (int i = 0; i < 10; i++) {
		l[i] = (struct row){ i, 1000 + i };
		r[i] = (struct row){ 2000 + i, i };
	}
	char *lp = t_path(e.dir, "l.bin"), *rp = t_path(e.dir, "r.bin");

	t_write(lp, l, sizeof(l));
	t_write(rp, r, sizeof(r));
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --quiet"
		   " --key-offset 8 --left-key-offset 0", e.dir, e.join);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "\"rows\": 10,"), "an explicit 0 for one side wins: %s", out);
	free(out);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --quiet"
		   " --left-key-offset 0 --right-key-offset 8 --key-offset 8", e.dir, e.join);
	cr_expect(strstr(out, "\"rows\": 10,"), "in any order: %s", out);
	free(out);
	expect_failure(&e, 2, "bad value '0' for --threads",
		       "--left l.bin --right r.bin --count --threads=0");
	expect_failure(&e, 2, "bad value 'x' for --row-bytes",
		       "--left l.bin --right r.bin --count --row-bytes=x");
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --quiet"
		   " --memory-limit 99999T", e.dir, e.join);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "warning: --memory-limit 99999.0 TiB is more than the"), "%s",
		  out);
	cr_expect(strstr(out, "will not spill before it runs out of memory"), "%s", out);
	free(out);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --quiet"
		   " --memory-limit 64M", e.dir, e.join);
	cr_expect(!strstr(out, "warning"), "a limit that fits: %s", out);
	free(out);
	expect_failure(&e, 1, "spill directory /proc: cannot create a file there",
		       "--left l.bin --right r.bin --count --spill-dir /proc");
	expect_failure(&e, 1, "spill directory /nonexistent: does not exist",
		       "--left l.bin --right r.bin --count --spill-dir /nonexistent");
	expect_failure(&e, 2, "bad --spill-wait 'soon'",
		       "--left l.bin --right r.bin --count --spill-wait soon");
	free(lp);
	free(rp);
	teardown(&e);
}

/*
 * regress_22: a spill directory too small for what must spill does not hang the
 * join: it fails (exit 1) once spilling has been blocked for --spill-wait seconds,
 * names the directory, and leaves nothing behind.
 */
Test(cli, regress_22_a_full_spill_disk_fails_the_join, .timeout = 120)
{
	struct env e = setup();
	char *mnt, *out;
	int rc;

	rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 500000"
		   " --rows 1000000", e.dir, e.gen);
	cr_assert_eq(rc, 0);
	mnt = small_disk_of(&e, "spill", "2m");
	for (int wait = 0; wait <= 1; wait++) {
		rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --output out.bin"
			   " --memory-limit 4M --spill-dir spill --spill-wait %d --quiet",
			   e.dir, e.join, wait);
		cr_expect_eq(rc, 1, "--spill-wait %d: exit %d: %s", wait, rc, out);
		cr_expect(strstr(out, "spill directory spill: spilling has been blocked"),
			  "%s", out);
		free(out);
		cr_expect_eq(t_count_files(e.dir, "out.bin"), 0, "no output, no temporary");
		cr_expect_eq(dir_entries(mnt), 0, "nothing left in the spill directory");
	}
	small_disk_gone(mnt);
	teardown(&e);
}

/*
 * regress_22: a CSV row with another field count than the header is refused (exit
 * 3, file, row and line named) unless --ragged, which pads short rows so that the
 * columns stay in line; --no-header makes the first line a row.
 */
Test(cli, regress_22_csv_ragged_rows_and_no_header, .timeout = 60)
{
	struct env e = setup();
	char *out;
	int rc;

	put(&e, "a.csv", "k,v,w\n1,a,b\n2,c\n3,d,e,f\n");
	put(&e, "b.csv", "id,x\n1,X\n2,Y\n3,Z\n");
	expect_failure(&e, 3, "a.csv: row 2 (line 3) has 2 fields, the header 3",
		       "--format csv --left a.csv --right b.csv --output out.csv");
	rc = t_run(&out, "cd '%s' && '%s' --format csv --left a.csv --right b.csv --ragged"
		   " --output - --quiet | sort", e.dir, e.join);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect_str_eq(out, "1,a,b,X\n2,c,,Y\n3,d,e,f,Z\nk,v,w,x\n");
	free(out);
	/* A header line taken for a row would lose row 1. */
	put(&e, "n.csv", "1,a\n2,b\n");
	rc = t_run(&out, "cd '%s' && '%s' --format csv --no-header --left n.csv --right n.csv"
		   " --output - --quiet", e.dir, e.join);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect_str_eq(out, "1,2,2\n1,a,a\n2,b,b\n");
	free(out);
	expect_failure(&e, 2, "without a header there are no column names",
		       "--format csv --no-header --key k --left n.csv --right n.csv --count");
	/* An empty field stays a column: the output lines up with its header. */
	put(&e, "c.csv", "k,v\n1,\n");
	rc = t_run(&out, "cd '%s' && '%s' --format csv --left c.csv --right c.csv --output -"
		   " --quiet", e.dir, e.join);
	cr_expect_str_eq(out, "k,v,v\n1,,\n");
	free(out);
	teardown(&e);
}

/*
 * --report and --trace: the report is one page with the join's tasks by kind and
 * the run's counts in it, the trace JSON with an event per recorded task; a place
 * neither can be written is bad usage, known before the join runs.
 */
Test(cli, report_and_trace_of_a_join, .timeout = 120)
{
	struct env e = setup();
	char *out, *html, *trace;
	size_t len;
	int rc = t_run(NULL, "cd '%s' && '%s' --pair --left l.bin --right r.bin --left-rows 20000"
		       " --rows 50000 --seed 7 >/dev/null", e.dir, e.gen);

	cr_assert_eq(rc, 0);
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --memory-limit 4M"
		   " --report run.html --trace run.json --quiet", e.dir, e.join);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	html = t_read(t_path(e.dir, "run.html"), &len);
	cr_assert_not_null(strstr(html, "const WEFT_REPORT = "));
	for (const char *kind = "read\0build\0probe\0"; *kind; kind += strlen(kind) + 1) {
		char want[64];

		snprintf(want, sizeof(want), "{\"label\":\"%s\",\"tasks\":", kind);
		cr_expect_not_null(strstr(html, want), "no %s tasks in the report", kind);
	}
	cr_assert_null(strstr(html, "<script src"), "the report fetches nothing");
	trace = t_read(t_path(e.dir, "run.json"), &len);
	cr_assert_not_null(strstr(trace, "\"traceEvents\""));
	cr_assert_not_null(strstr(trace, "\"name\":\"probe\""));
	free(html);
	free(trace);
	/* A dashboard it cannot serve at: said, and the join goes on. */
	rc = t_run(&out, "cd '%s' && '%s' --left l.bin --right r.bin --count --quiet"
		   " --dashboard nowhere 2>&1", e.dir, e.join);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_not_null(strstr(out, "nowhere: not an address to serve at"), "%s", out);
	cr_assert_not_null(strstr(out, "\"rows\": "), "%s", out);
	free(out);
	expect_failure(&e, 2, "--report no/such/dir/r.html: No such file or directory",
		       "--left l.bin --right r.bin --count --report no/such/dir/r.html");
	expect_failure(&e, 2, "--trace dir/: Is a directory",
		       "--left l.bin --right r.bin --count --trace dir/");
	teardown(&e);
}
