// SPDX-License-Identifier: MIT
/*
 * join - weft-join end to end, from files on disk to the final count, at two
 * scales: |R| = 10M, |S| = 50M with the engine's default memory (in memory), and
 * |R| = 50M, |S| = 250M under a 1 GiB limit. R's keys are unique, S's are uniform
 * over R's. Beside each, in the same run and on the same files: the time to read
 * the files sequentially (O_DIRECT, as weft-join reads them), and a plain
 * single-threaded in-memory hash join, and DuckDB's join of the same tables when
 * $WEFT_BENCH_DUCKDB names perf/duckdb.sh (make bench does, where node is).
 * Each figure is (|R| + |S|) / seconds; peak RSS is each run's own (a child process).
 *
 * Each figure is the median of three runs (weft-join's runs are listed too): on a
 * virtual disk one run can meet the write-back of another's files.
 *
 * usage: join [small|large|both]   ($WEFT_BENCH_DIR: where the tables go, default
 * $TMPDIR or /tmp; $WEFT_BENCH_REPS: repetitions at the small scale, default 3)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "join.h"

struct scale {
	const char *name;
	uint64_t r, s;
	size_t limit;		/* 0: the engine's default */
	int reps;
};

/* What a child process measured. */
struct outcome {
	double seconds;
	uint64_t rows, lsum, rsum;
	uint64_t spilled;
	size_t peak_rss;
	int err;
	char error[1024];
};

typedef void measure_fn(const struct scale *sc, const char *r, const char *s,
			struct outcome *o);

/* Run @fn in a child, so that its peak RSS is its own. */
static struct outcome in_child(measure_fn *fn, const struct scale *sc, const char *r,
			       const char *s)
{
	struct outcome o = { .err = -EIO };
	struct rusage ru;
	int fd[2], st;
	pid_t pid;

	if (pipe(fd))
		exit(1);
	pid = fork();
	if (pid == 0) {
		close(fd[0]);
		fn(sc, r, s, &o);
		if (write(fd[1], &o, sizeof(o)) != sizeof(o))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], &o, sizeof(o)) != sizeof(o))
		o.err = -EIO;
	close(fd[0]);
	wait4(pid, &st, 0, &ru);
	o.peak_rss = (size_t)ru.ru_maxrss * 1024;
	return o;
}

static void measure_weft(const struct scale *sc, const char *r, const char *s,
			 struct outcome *o)
{
	struct join_spec spec = { .format = JOIN_BIN, .memory_limit = sc->limit };
	struct join_result res;

	spec.left.path = r;
	spec.right.path = s;
	o->err = join_run(&spec, &res);
	o->seconds = res.seconds;
	o->rows = res.rows;
	o->lsum = res.left_sum;
	o->rsum = res.right_sum;
	o->spilled = res.spilled_bytes;
	snprintf(o->error, sizeof(o->error), "%s", res.error);
}

static void *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	char *p;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	p = malloc(st.st_size + 1);
	while (p && got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, st.st_size - got);

		if (n <= 0) {
			free(p);
			p = NULL;
			break;
		}
		got += n;
	}
	close(fd);
	*len = got;
	return p;
}

static inline uint64_t hash64(uint64_t k)
{
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ull;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

/* The reference: read both files, build an open-addressing table on R, probe with S. */
static void measure_serial(const struct scale *sc, const char *r, const char *s,
			   struct outcome *o)
{
	double t0 = bench_now();
	size_t rl, sl, cap = 1;
	uint64_t *rv = slurp(r, &rl), *sv = slurp(s, &sl), *tab;

	if (!rv || !sv)
		return;
	while (cap < 2 * (rl / 16))
		cap <<= 1;
	/* Slots of (key + 1, payload): 0 marks an empty slot. */
	tab = calloc(cap, 16);
	if (!tab)
		return;
	for (size_t i = 0; i < rl / 16; i++) {
		uint64_t k = rv[2 * i], h = hash64(k) & (cap - 1);

		while (tab[2 * h])
			h = (h + 1) & (cap - 1);
		tab[2 * h] = k + 1;
		tab[2 * h + 1] = rv[2 * i + 1];
	}
	for (size_t i = 0; i < sl / 16; i++) {
		uint64_t k = sv[2 * i], h = hash64(k) & (cap - 1);

		for (; tab[2 * h]; h = (h + 1) & (cap - 1)) {
			if (tab[2 * h] != k + 1)
				continue;
			o->rows++;
			o->lsum += tab[2 * h + 1];
			o->rsum += sv[2 * i + 1];
		}
	}
	o->seconds = bench_now() - t0;
	o->err = 0;
	(void)sc;
}

/*
 * Start from files on disk: write back and drop the page cache (root only), so
 * that every measurement reads the files from the disk. Return: whether it could.
 */
static bool drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	bool ok;

	sync();
	if (fd < 0)
		return false;
	ok = write(fd, "3", 1) == 1;
	close(fd);
	return ok;
}

/*
 * CPU time the hypervisor gave to others, all CPUs together (steal in /proc/stat):
 * on this shared virtual machine it sets much of the difference between two runs.
 * Return: seconds, or -1 where the kernel does not count it.
 */
static double steal_seconds(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	return n == 8 ? (double)v[7] / sysconf(_SC_CLK_TCK) : -1;
}

#define READ_BUF ((size_t)16 << 20)	/* the reference's reads, as weft-join's chunks */

/*
 * Sequential read of both files, 16 MiB at a time with O_DIRECT into a buffer on
 * huge pages: the disk's own pace (this disk pays per page of a buffer), with no
 * page cache filled, which the next process would pay for on this virtual machine
 * once it is dropped (see the README). Through the page cache where the file
 * system refuses O_DIRECT (tmpfs).
 */
static double read_seconds(const char *r, const char *s)
{
	const char *paths[2] = { r, s };
	char *buf = huge_map(READ_BUF);
	double t0;

	if (!buf)
		exit(1);
	memset(buf, 0, READ_BUF);		/* faulted in before the clock starts */
	t0 = bench_now();
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDONLY | O_DIRECT);

		if (fd < 0)
			fd = open(paths[i], O_RDONLY);
		if (fd < 0)
			exit(1);
		ssize_t n;

		while ((n = read(fd, buf, READ_BUF)) > 0)
			;
		if (n < 0) {
			fprintf(stderr, "join: reading %s: %s\n", paths[i], strerror(errno));
			exit(1);
		}
		close(fd);
	}
	huge_unmap(buf, READ_BUF);
	return bench_now() - t0;
}

static void gib(char *b, size_t n, double v)
{
	snprintf(b, n, "%.2f GiB", v / (1u << 30));
}

static void report(const char *scale, const char *figure, double mtps, double seconds,
		   size_t rss, uint64_t spilled, const char *note)
{
	char r[32] = "-", sp[32] = "-";

	if (rss)
		gib(r, sizeof(r), rss);
	if (spilled != UINT64_MAX)
		gib(sp, sizeof(sp), spilled);
	printf("join %-6s %-26s %9.2f %8.2f s %11s %11s  %s\n", scale, figure, mtps, seconds,
	       r, sp, note);
	printf("{\"bench\":\"join\",\"scale\":\"%s\",\"figure\":\"%s\",\"mtuples_per_s\":%.3f,"
	       "\"seconds\":%.3f,\"peak_rss\":%zu,\"spilled\":%" PRIu64 "}\n", scale, figure,
	       mtps, seconds, rss, spilled == UINT64_MAX ? 0 : spilled);
	fflush(stdout);
}

/*
 * DuckDB on the same tables, the reference the target is stated against, through
 * the command in $WEFT_BENCH_DUCKDB (perf/duckdb.sh, which perf/run.sh names when
 * node is installed): weft-gen writes them again as CSV from the same seed, DuckDB
 * loads them, and only its join is timed, @n times, each checked against @want.
 * Return: the runs measured into @secs, 0 when not asked for or skipped (the
 * command says why), -1 on failure.
 */
static int duckdb_seconds(const struct scale *sc, const char *tools, const char *dir,
			  const char *want, double *secs, int n, char *version, size_t vlen)
{
	const char *run = getenv("WEFT_BENCH_DUCKDB");
	char r[PATH_MAX], s[PATH_MAX], tmp[PATH_MAX], cmd[4 * PATH_MAX], line[512];
	int got = 0, ret = -1;
	FILE *p;

	if (!run || !*run)
		return 0;
	/* Installed first, so that no tables are written for a reference that cannot run. */
	p = popen(run, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p))
		line[0] = 0;
	if (pclose(p) || (strcmp(line, "READY\n") && strncmp(line, "SKIP ", 5))) {
		fprintf(stderr, "join: %s failed\n", run);
		return -1;
	}
	if (line[0] == 'S') {
		printf("# DuckDB: skipped: %s", line + 5);
		return 0;
	}
	snprintf(r, sizeof(r), "%s/join-%s-R.csv", dir, sc->name);
	snprintf(s, sizeof(s), "%s/join-%s-S.csv", dir, sc->name);
	snprintf(tmp, sizeof(tmp), "%s/join-%s-duckdb.tmp", dir, sc->name);
	snprintf(cmd, sizeof(cmd), "'%s/weft-gen' --pair --left '%s' --right '%s' --left-rows %"
		 PRIu64 " --rows %" PRIu64 " --seed 7 --format csv >/dev/null", tools, r, s,
		 sc->r, sc->s);
	if (system(cmd)) {
		fprintf(stderr, "join: weft-gen failed to write the CSV tables\n");
		goto out;
	}
	drop_caches();
	snprintf(cmd, sizeof(cmd), "%s '%s' '%s' '%s' %d", run, r, s, tmp, n);
	p = popen(cmd, "r");
	if (!p)
		goto out;
	while (fgets(line, sizeof(line), p)) {
		uint64_t rows, lsum, rsum;
		char res[256];
		double sec;

		if (!strncmp(line, "VERSION ", 8)) {
			snprintf(version, vlen, "%.*s", (int)strcspn(line + 8, "\n"), line + 8);
			continue;
		}
		if (sscanf(line, "SAMPLE %lf %" SCNu64 " %" SCNu64 " %" SCNu64, &sec, &rows,
			   &lsum, &rsum) != 4 || got == n)
			continue;
		snprintf(res, sizeof(res), "{\"rows\": %" PRIu64 ", \"left_sum\": %" PRIu64
			 ", \"right_sum\": %" PRIu64 "}\n", rows, lsum, rsum);
		if (strcmp(res, want)) {
			fprintf(stderr, "join: DuckDB gave %s, want %s", res, want);
			pclose(p);
			goto out;
		}
		secs[got++] = sec;
	}
	if (pclose(p) || got != n) {
		fprintf(stderr, "join: %s failed\n", run);
		goto out;
	}
	ret = got;
out:
	unlink(r);
	unlink(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd))
		ret = -1;
	return ret;
}

/* "; runs A, B, C": each of @n runs in Mtuples/s, in order; nothing for one run. */
static void runs_note(char *buf, size_t size, double tuples, const double *secs, int n)
{
	buf[0] = 0;
	for (int i = 0; i < n && n > 1; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%.1f", i ? ", " : "; runs ",
			 tuples / secs[i] / 1e6);
}

/* Every run of one scale: weft-join's, the references' and their results. */
struct runs {
	double ws[16], ss[16], rs[16], steal[16], ds[16];
	struct outcome w, ser;		/* the last run of weft-join and of the serial join */
	int nduck;			/* DuckDB's runs, 0 if not measured */
	char duck[64];			/* DuckDB and its version */
	bool cold;			/* each run started with the page cache dropped */
};

/* The tables of @sc into @r and @s; @want gets the result weft-gen says is right. */
static int gen_tables(const struct scale *sc, const char *tools, const char *r,
		      const char *s, char *want, size_t wlen)
{
	char cmd[3 * PATH_MAX];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s/weft-gen' --pair --left '%s' --right '%s' --left-rows %"
		 PRIu64 " --rows %" PRIu64 " --seed 7", tools, r, s, sc->r, sc->s);
	printf("# %s: |R| = %" PRIu64 "M, |S| = %" PRIu64 "M, %s; generating with weft-gen\n",
	       sc->name, sc->r / 1000000, sc->s / 1000000,
	       sc->limit ? "under a 1 GiB memory limit" : "in memory (default limit)");
	fflush(stdout);
	p = popen(cmd, "r");
	if (!p || !fgets(want, (int)wlen, p) || pclose(p)) {
		fprintf(stderr, "join: weft-gen failed\n");
		return -1;
	}
	return 0;
}

/*
 * weft-join's runs before the reference's: on a virtual machine, memory a process
 * has just freed is handed back to the host, and the next process that touches as
 * much pays for it (perf/HISTORY.md).
 */
static int measure_runs(const struct scale *sc, const char *r, const char *s,
			struct runs *m)
{
	m->cold = true;
	for (int i = 0; i < sc->reps; i++) {
		m->cold &= drop_caches();
		m->rs[i] = read_seconds(r, s);
		m->cold &= drop_caches();
		m->steal[i] = steal_seconds();
		m->w = in_child(measure_weft, sc, r, s);
		m->steal[i] = m->steal[i] < 0 ? -1 : steal_seconds() - m->steal[i];
		m->ws[i] = m->w.seconds;
		if (m->w.err) {
			fprintf(stderr, "join: %s\n", m->w.error);
			return -1;
		}
	}
	for (int i = 0; i < sc->reps; i++) {
		m->cold &= drop_caches();
		m->ser = in_child(measure_serial, sc, r, s);
		m->ss[i] = m->ser.seconds;
		if (m->ser.err) {
			fprintf(stderr, "join: the reference failed\n");
			return -1;
		}
	}
	return 0;
}

/* The scale's table: each figure beside its references, measured in this run. */
static void print_scale(const struct scale *sc, struct runs *m)
{
	double tuples = (double)(sc->r + sc->s);
	double rm = bench_median(m->rs, sc->reps), sm = bench_median(m->ss, sc->reps);
	double wm = bench_median(m->ws, sc->reps);
	double dm = m->nduck ? bench_median(m->ds, m->nduck) : 0;
	unsigned nthreads = bench_all_threads();
	char note[320], runs[160], target[64] = "";

	printf("# each measurement starts with the files %s\n", m->cold ?
	       "on disk (page cache dropped)" : "as the page cache has them (not root)");
	printf("%-11s %-26s %9s %10s %11s %11s  %s\n", "bench", "figure", "Mtuple/s",
	       "time", "peak RSS", "spilled", "");
	snprintf(note, sizeof(note), "%.2f GB/s", (sc->r + sc->s) * 16 / rm / 1e9);
	report(sc->name, "sequential read", tuples / rm / 1e6, rm, 0, UINT64_MAX, note);
	report(sc->name, "1-thread in-memory join", tuples / sm / 1e6, sm, m->ser.peak_rss,
	       UINT64_MAX, "open addressing, files read whole");
	if (m->nduck) {
		char druns[160];

		runs_note(druns, sizeof(druns), tuples, m->ds, m->nduck);
		snprintf(note, sizeof(note), "%s, threads=2, 1 GB limit, join alone%s", m->duck,
			 druns);
		report(sc->name, "DuckDB join", tuples / dm / 1e6, dm, 0, UINT64_MAX, note);
		/* The target: 1.5x DuckDB, measured in this run. */
		snprintf(target, sizeof(target), "; target %.1f (1.5x DuckDB)",
			 1.5 * tuples / dm / 1e6);
	}
	/* Every run of weft-join, in order, before the medians sort them. */
	runs_note(runs, sizeof(runs), tuples, m->ws, sc->reps);
	snprintf(note, sizeof(note), "%u threads; %.2fx the 1-thread join%s%s",
		 nthreads, sm / wm, target, runs);
	report(sc->name, "weft-join --count", tuples / wm / 1e6, wm, m->w.peak_rss,
	       m->w.spilled, note);
	if (m->steal[0] >= 0) {
		printf("# CPU time the hypervisor took during weft-join's runs (of %u CPUs):",
		       nthreads);
		for (int i = 0; i < sc->reps; i++)
			printf("%s %.2f s", i ? "," : "", m->steal[i]);
		printf("\n");
	}
	if (m->nduck)
		printf("# DuckDB's join alone took %.2fx weft-join's time\n", dm / wm);
	else if (!getenv("WEFT_BENCH_DUCKDB") || !*getenv("WEFT_BENCH_DUCKDB"))
		printf("# DuckDB: not measured (WEFT_BENCH_DUCKDB unset; make bench sets it"
		       " when node and npm are installed)\n");
}

static int run_scale(const struct scale *sc, const char *tools, const char *dir)
{
	char r[PATH_MAX], s[PATH_MAX], want[256] = "", got[256];
	struct runs m = { .duck = "DuckDB" };
	int ret = 1;

	snprintf(r, sizeof(r), "%s/join-%s-R.bin", dir, sc->name);
	snprintf(s, sizeof(s), "%s/join-%s-S.bin", dir, sc->name);
	if (gen_tables(sc, tools, r, s, want, sizeof(want)) || measure_runs(sc, r, s, &m))
		goto out;
	m.nduck = duckdb_seconds(sc, tools, dir, want, m.ds, 3, m.duck, sizeof(m.duck));
	if (m.nduck < 0)
		goto out;
	snprintf(got, sizeof(got), "{\"rows\": %" PRIu64 ", \"left_sum\": %" PRIu64
		 ", \"right_sum\": %" PRIu64 "}\n", m.w.rows, m.w.lsum, m.w.rsum);
	if (strcmp(got, want) || m.w.rows != m.ser.rows || m.w.lsum != m.ser.lsum) {
		fprintf(stderr, "join: wrong result %s, want %s", got, want);
		goto out;
	}
	print_scale(sc, &m);
	ret = 0;
out:
	/* Tables of gigabytes are not left behind, whether the run failed or not. */
	unlink(r);
	unlink(s);
	return ret;
}

int main(int argc, char **argv)
{
	struct scale scales[2] = {
		{ "small", 10000000, 50000000, 0, 3 },
		{ "large", 50000000, 250000000, (size_t)1 << 30, 3 },
	};
	const char *which = argc > 1 ? argv[1] : "both";
	const char *dir = getenv("WEFT_BENCH_DIR");
	char exe[PATH_MAX], tools[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int ret = 0;

	if (n <= 0)
		return 1;
	exe[n] = 0;
	snprintf(tools, sizeof(tools), "%s/../tools", dirname(exe));
	if (!dir)
		dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	scales[0].reps = getenv("WEFT_BENCH_REPS") ? bench_reps() : 3;
	if (scales[0].reps > 16)
		scales[0].reps = 16;
	printf("# join: end to end from files on disk to the count, in %s\n", dir);
	if (strcmp(which, "large"))
		ret |= run_scale(&scales[0], tools, dir);
	if (strcmp(which, "small") && !ret)
		ret |= run_scale(&scales[1], tools, dir);
	return ret;
}
