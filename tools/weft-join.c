// SPDX-License-Identifier: MIT
/*
 * weft-join - join two tables on a 64-bit integer key, out of core.
 *
 * Exit status: 0 joined; 1 the join failed (I/O error, out of disk or memory, an
 * engine error); 2 bad usage; 3 an input is missing or malformed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "join.h"

enum { EXIT_JOIN = 1, EXIT_USAGE = 2, EXIT_INPUT = 3 };

static const char usage[] =
"usage: weft-join --left FILE --right FILE (--output FILE | --count) [options]\n"
"\n"
"Joins the rows of two tables whose keys are equal (an inner equi-join on a\n"
"64-bit integer key), using at most about --memory-limit of memory: what does not\n"
"fit is spilled to disk. A CSV file's first line is its header (see --no-header).\n"
"\n"
"  --left FILE, --right FILE   the two tables\n"
"  --output FILE               write the joined rows: the key, the rest of the left\n"
"                              row, the rest of the right row (same format as the\n"
"                              inputs). A file is replaced only when the join\n"
"                              succeeds (through a link, the file it names); a\n"
"                              device, a pipe or - (standard output) is written in\n"
"                              place. An input or a directory is refused.\n"
"  --count                     write no rows; print {\"rows\": N, \"left_sum\": A,\n"
"                              \"right_sum\": B}: A and B are the wrapping 64-bit sums,\n"
"                              over joined rows, of the word after the key\n"
"  --format bin|csv            input format (default bin)\n"
"  --row-bytes W               bin: bytes per row, both inputs (default 16)\n"
"  --key-offset K              bin: the little-endian int64 key's offset (default 0)\n"
"  --left-row-bytes W, --right-row-bytes W, --left-key-offset K,\n"
"  --right-key-offset K        the same, for one input\n"
"  --key NAME                  csv: the key column's name in the header\n"
"  --key-column N              csv: the key column's number, from 1 (default 1)\n"
"  --no-header                 csv: the first line is a row, not the header (the\n"
"                              columns are then named 1..n)\n"
"  --ragged                    csv: join rows whose field count differs from the\n"
"                              header's: short rows get empty fields at the end,\n"
"                              long ones keep their extra fields (default: refuse\n"
"                              them, exit 3)\n"
"  --memory-limit SIZE         e.g. 64M, 1G (default: the engine's, half of memory)\n"
"  --threads N                 worker threads (default: one per core)\n"
"  --spill-dir DIR             where spilled data goes (default $TMPDIR or /tmp)\n"
"  --spill-wait SECONDS        give up (exit 1) once spilling has been blocked\n"
"                              this long by a full or failing disk (default 30;\n"
"                              0: at once)\n"
"  --read auto|direct|cached   how inputs are read: direct (O_DIRECT, past the\n"
"                              page cache), cached (through it), or auto (default:\n"
"                              direct unless the page cache holds most of a file)\n"
"  --progress, --no-progress   draw a progress bar (default: when stderr is a tty)\n"
"  --report FILE.html          write a performance report of the join: one page\n"
"                              that opens offline (tasks by kind, task stream,\n"
"                              memory and spill over time), even if it failed\n"
"  --trace FILE.json           write the tasks as a trace Perfetto opens\n"
"  --dashboard HOST:PORT       serve the live dashboard while the join runs\n"
"                              (as WEFT_DASHBOARD does)\n"
"  --quiet                     no summary on stderr\n"
"  --help                      this text\n"
"\n"
"Exit status: 0 joined; 1 the join failed; 2 bad usage; 3 an input is missing or\n"
"malformed (the message names the file and the row); 128 + N stopped by signal N\n"
"(SIGINT 130, SIGTERM 143), with the output's temporary file removed (SIGKILL\n"
"cannot be caught: after it, a FILE.partial-XXXXXX may be left).\n";

static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "weft-join: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\nTry 'weft-join --help'.\n");
	return EXIT_USAGE;
}

/* A size with an optional K, M, G or T (powers of 1024), e.g. "512M". */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (shift && *end == 'i')
		end++;
	if (*end == 'B' || (*end == 'b' && !shift))
		end++;
	if (*end || (shift && v > (SIZE_MAX >> shift)))
		return -EINVAL;
	*out = (size_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned *out, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_LEFT = 256, OPT_RIGHT, OPT_OUTPUT, OPT_COUNT, OPT_FORMAT, OPT_ROW, OPT_KOFF,
	OPT_LROW, OPT_RROW, OPT_LKOFF, OPT_RKOFF, OPT_KEY, OPT_KEYCOL, OPT_MEM,
	OPT_THREADS, OPT_SPILL, OPT_PROGRESS, OPT_NOPROGRESS, OPT_QUIET, OPT_HELP,
	OPT_PARTS,
	OPT_READ, OPT_SPILL_WAIT, OPT_NOHEADER, OPT_RAGGED, OPT_REPORT, OPT_TRACE,
	OPT_DASHBOARD,
};

static const struct option longopts[] = {
	{ "left", required_argument, NULL, OPT_LEFT },
	{ "right", required_argument, NULL, OPT_RIGHT },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "count", no_argument, NULL, OPT_COUNT },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "row-bytes", required_argument, NULL, OPT_ROW },
	{ "key-offset", required_argument, NULL, OPT_KOFF },
	{ "left-row-bytes", required_argument, NULL, OPT_LROW },
	{ "right-row-bytes", required_argument, NULL, OPT_RROW },
	{ "left-key-offset", required_argument, NULL, OPT_LKOFF },
	{ "right-key-offset", required_argument, NULL, OPT_RKOFF },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "key-column", required_argument, NULL, OPT_KEYCOL },
	{ "no-header", no_argument, NULL, OPT_NOHEADER },
	{ "ragged", no_argument, NULL, OPT_RAGGED },
	{ "memory-limit", required_argument, NULL, OPT_MEM },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "spill-dir", required_argument, NULL, OPT_SPILL },
	{ "spill-wait", required_argument, NULL, OPT_SPILL_WAIT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NOPROGRESS },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "read", required_argument, NULL, OPT_READ },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "dashboard", required_argument, NULL, OPT_DASHBOARD },
	{ "partitions", required_argument, NULL, OPT_PARTS },	/* for tests */
	{ NULL, 0, NULL, 0 },
};

/*
 * SIGINT, SIGTERM and SIGHUP go to one thread, which removes the output being
 * written and exits 128 + the signal, as a shell reports it. (SIGKILL cannot be
 * caught: a FILE.partial-XXXXXX may then be left.)
 */
static sigset_t ending_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	return set;
}

static void *signal_main(void *arg)
{
	sigset_t set = ending_signals();
	int sig;

	(void)arg;
	(void)pthread_setname_np(pthread_self(), "join-signals");
	while (sigwait(&set, &sig))
		;
	join_abandon();
	fprintf(stderr, "\nweft-join: %s: stopped, nothing written\n", strsignal(sig));
	_exit(128 + sig);
}

/* Before any other thread starts, so that every thread inherits the mask. */
static void catch_ending_signals(void)
{
	sigset_t set = ending_signals();
	pthread_t th;

	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return;
	if (pthread_create(&th, NULL, signal_main, NULL))
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void give_up_stalled(const char *why)
{
	join_abandon();
	fprintf(stderr, "\nweft-join: %s\n", why);
	_exit(EXIT_JOIN);
}

/* A limit above the memory the process may use would run out before spilling. */
static void check_memory_limit(size_t limit)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 1 };
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;
	char want[32], have[32];

	if (weft_client_open(NULL, &o, &c))
		return;
	if (!weft_stats(c, &st) && st.mem_available && limit > st.mem_available) {
		join_human(want, sizeof(want), limit);
		join_human(have, sizeof(have), st.mem_available);
		fprintf(stderr, "weft-join: warning: --memory-limit %s is more than the %s this"
			" process may use: the join will not spill before it runs out of"
			" memory\n", want, have);
	}
	weft_client_close(c);
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	*out = strtod(s, &end);
	return errno || *end || *out > 1e9 ? -EINVAL : 0;
}

/* The command line, as parsed. */
struct args {
	struct join_spec spec;
	int progress, quiet, count;
	unsigned row, koff;		/* for both sides */
	bool have_lrow, have_rrow, have_lkoff, have_rkoff;	/* given for one side */
};

/*
 * What the options say together: both inputs, one output, each side's values.
 * Return: -1 to go on, or the exit code.
 */
/* Whether the directory @path would be written in exists and may be written (errno). */
static bool writable_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	if (!*path || (slash && !slash[1])) {
		errno = EISDIR;
		return false;
	}
	if (!slash)
		return access(".", W_OK) == 0;
	if ((size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return false;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	return access(slash == path ? "/" : dir, W_OK) == 0;
}

static int check_args(int argc, char **argv, struct args *a)
{
	if (optind < argc)
		return bad("unexpected argument '%s'%s", argv[optind], "");
	if (!a->spec.left.path || !a->spec.right.path)
		return bad("both --left and --right are needed%s%s", "", "");
	if (!!a->spec.output == a->count)
		return bad("give exactly one of --output FILE and --count%s%s", "", "");
	/* A value given for one side wins over the one given for both, even 0. */
	if (a->row) {
		a->spec.left.row_bytes = a->have_lrow ? a->spec.left.row_bytes : a->row;
		a->spec.right.row_bytes = a->have_rrow ? a->spec.right.row_bytes : a->row;
	}
	a->spec.left.key_offset = a->have_lkoff ? a->spec.left.key_offset : a->koff;
	a->spec.right.key_offset = a->have_rkoff ? a->spec.right.key_offset : a->koff;
	a->spec.right.key_column = a->spec.left.key_column;
	if (a->spec.partitions & (a->spec.partitions - 1))
		return bad("--partitions must be a power of two%s%s", "", "");
	/* Before the join, not after it: a report that cannot be written is known now. */
	if (a->spec.report && !writable_dir(a->spec.report))
		return bad("--report %s: %s", a->spec.report, strerror(errno));
	if (a->spec.trace && !writable_dir(a->spec.trace))
		return bad("--trace %s: %s", a->spec.trace, strerror(errno));
	a->spec.progress = a->progress;
	if (a->spec.memory_limit)
		check_memory_limit(a->spec.memory_limit);
	return -1;
}

/* Parse the options into @a. Return: -1 to go on, or the exit code (0: --help). */
static int parse_args(int argc, char **argv, struct args *a)
{
	int opt, idx;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		unsigned *u = NULL, lo = 0, hi = 1u << 20;

		switch (opt) {
		case OPT_LEFT: a->spec.left.path = optarg; break;
		case OPT_RIGHT: a->spec.right.path = optarg; break;
		case OPT_OUTPUT: a->spec.output = optarg; break;
		case OPT_COUNT: a->count = 1; break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "bin"))
				a->spec.format = JOIN_BIN;
			else if (!strcmp(optarg, "csv"))
				a->spec.format = JOIN_CSV;
			else
				return bad("unknown format '%s'%s: use bin or csv", optarg, "");
			break;
		case OPT_ROW: u = &a->row; lo = 8; break;
		case OPT_KOFF: u = &a->koff; break;
		case OPT_LROW: u = &a->spec.left.row_bytes; lo = 8; a->have_lrow = true; break;
		case OPT_RROW: u = &a->spec.right.row_bytes; lo = 8; a->have_rrow = true; break;
		case OPT_LKOFF: u = &a->spec.left.key_offset; a->have_lkoff = true; break;
		case OPT_RKOFF: u = &a->spec.right.key_offset; a->have_rkoff = true; break;
		case OPT_KEY: a->spec.left.key_name = a->spec.right.key_name = optarg; break;
		case OPT_KEYCOL: u = &a->spec.left.key_column; lo = 1; hi = 1u << 20; break;
		case OPT_NOHEADER: a->spec.left.no_header = a->spec.right.no_header = true; break;
		case OPT_RAGGED: a->spec.left.ragged = a->spec.right.ragged = true; break;
		case OPT_MEM:
			if (parse_size(optarg, &a->spec.memory_limit) ||
			    a->spec.memory_limit < JOIN_MIN_MEMORY)
				return bad("bad --memory-limit '%s': a size of at least 4M,"
					   " such as 64M or 2G%s", optarg, "");
			break;
		case OPT_THREADS: u = &a->spec.nthreads; lo = 1; hi = 1024; break;
		case OPT_SPILL: a->spec.spill_dir = optarg; break;
		case OPT_REPORT: a->spec.report = optarg; break;
		case OPT_TRACE: a->spec.trace = optarg; break;
		case OPT_DASHBOARD:
			/* The engine reads it as it opens; checked then (a log line). */
			if (setenv("WEFT_DASHBOARD", optarg, 1))
				return bad("--dashboard %s: %s", optarg, strerror(errno));
			break;
		case OPT_SPILL_WAIT:
			if (parse_seconds(optarg, &a->spec.spill_wait))
				return bad("bad --spill-wait '%s': seconds, 0 or more%s", optarg,
					   "");
			break;
		case OPT_PROGRESS: a->progress = 1; break;
		case OPT_NOPROGRESS: a->progress = 0; break;
		case OPT_QUIET: a->quiet = 1; break;
		case OPT_HELP: fputs(usage, stdout); return 0;
		case OPT_PARTS: u = &a->spec.partitions; lo = 1; hi = 4096; break;
		case OPT_READ:
			if (!strcmp(optarg, "auto"))
				a->spec.direct = 0;
			else if (!strcmp(optarg, "direct"))
				a->spec.direct = 1;
			else if (!strcmp(optarg, "cached"))
				a->spec.direct = -1;
			else
				return bad("unknown --read '%s'%s: use auto, direct or cached",
					   optarg, "");
			break;
		default:
			return bad("unknown or incomplete option '%s'%s", argv[optind - 1], "");
		}
		/* idx names the option itself, however it was spelt (--opt=v or --opt v). */
		if (u && parse_uint(optarg, u, lo, hi)) {
			char name[64];

			snprintf(name, sizeof(name), "--%s", longopts[idx].name);
			return bad("bad value '%s' for %s", optarg, name);
		}
	}
	return check_args(argc, argv, a);
}

/* The line on stderr that says what the join did. */
static void print_summary(const struct join_result *res)
{
	char spilled[32], peak[32], limit[32], results[32], back[32], capped[64] = "";

	join_human(spilled, sizeof(spilled), res->spilled_bytes);
	join_human(peak, sizeof(peak), join_peak_rss());
	join_human(limit, sizeof(limit), res->memory_limit);
	join_human(results, sizeof(results), res->mem_peak);
	join_human(back, sizeof(back), res->restored_bytes);
	if (res->threads_asked)
		snprintf(capped, sizeof(capped), ", not %u: the memory limit gives"
			 " no more", res->threads_asked);
	fprintf(stderr, "weft-join: %" PRIu64 " rows from %" PRIu64 " + %" PRIu64
		" in %.2f s, %.1f Mtuples/s; spilled %s, read back %s; peak memory"
		" %s (limit %s; results %s; %u threads%s)\n", res->rows, res->left_rows,
		res->right_rows, res->seconds,
		(res->left_rows + res->right_rows) / res->seconds / 1e6,
		spilled, back, peak, limit, results, res->nthreads, capped);
}

int main(int argc, char **argv)
{
	struct args a = { .spec = { .format = JOIN_BIN, .on_stall = give_up_stalled,
				    .spill_wait = 30 },
			  .progress = isatty(STDERR_FILENO) };
	struct join_result res;
	int ret;

	ret = parse_args(argc, argv, &a);
	if (ret >= 0)
		return ret;
	catch_ending_signals();
	ret = join_run(&a.spec, &res);
	if (ret) {
		fprintf(stderr, "weft-join: %s\n", res.error[0] ? res.error :
			weft_strerror(ret));
		if (res.bad_usage) {
			fprintf(stderr, "Try 'weft-join --help'.\n");
			return EXIT_USAGE;
		}
		return res.bad_input ? EXIT_INPUT : EXIT_JOIN;
	}
	if (a.count)
		printf("{\"rows\": %" PRIu64 ", \"left_sum\": %" PRIu64 ", \"right_sum\": %"
		       PRIu64 "}\n", res.rows, res.left_sum, res.right_sum);
	if (!a.quiet)
		print_summary(&res);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "weft-join: writing the count: %s\n", strerror(errno));
		return EXIT_JOIN;
	}
	return 0;
}
