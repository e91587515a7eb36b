// SPDX-License-Identifier: MIT
/*
 * weft-gen - write tables for weft-join: a number of rows whose keys are unique
 * (a shuffle of 0..rows-1), uniform over a range, or Zipf-distributed with a given
 * exponent. The same seed gives the same bytes.
 *
 * With --pair it writes two tables to join: a left one of unique keys, and a right
 * one whose keys are drawn from the left's, and prints what joining them must give,
 * as weft-join --count prints it.
 *
 * Rows are as weft-join reads them by default: 16 bytes (little-endian int64 key,
 * int64 payload), or wider with --row-bytes (the extra bytes are filler); or CSV
 * with a header "key,payload".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../util/huge.h"

enum dist { UNIQUE, UNIFORM, ZIPF };

/*
 * Tables are written with O_DIRECT where the file system takes it, from a buffer
 * on huge pages (a virtual disk pays per page of a buffer): gigabytes written
 * through the page cache would push out what other programs keep there, and on a
 * virtual machine that hands freed memory back to its host, the next program to
 * touch as much memory pays for the cache once it is dropped. The last partial
 * block goes through the page cache.
 */
#define OUT_BUF ((size_t)4 << 20)
#define DIRECT_BLOCK 4096

struct table {
	const char *path;
	int fd;
	bool csv;
	bool direct;		/* fd writes with O_DIRECT */
	unsigned row_bytes;
	char *buf;		/* OUT_BUF bytes */
	size_t len;		/* of them filled */
	int err;		/* the first write error, as errno */
};

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next(uint64_t *s)
{
	return mix(*s += 0x9e3779b97f4a7c15ull);
}

/* A number in [0, n) without modulo bias worth speaking of (Lemire). */
static uint64_t below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)next(s) * n) >> 64);
}

/*
 * A shuffle of 0..n-1 without a table: a 4-round Feistel network permutes the
 * smallest even power of two >= n, and values past n walk the cycle until they
 * land below n.
 */
struct perm {
	uint64_t n;
	unsigned half;
	uint64_t keys[4];
};

static void perm_init(struct perm *p, uint64_t n, uint64_t seed)
{
	p->n = n;
	p->half = 1;
	while (p->half < 32 && (1ull << (2 * p->half)) < n)
		p->half++;
	for (int i = 0; i < 4; i++)
		p->keys[i] = mix(seed + i + 1);
}

static uint64_t perm_at(const struct perm *p, uint64_t x)
{
	uint64_t mask = (1ull << p->half) - 1;

	do {
		uint64_t l = x >> p->half, r = x & mask;

		for (int i = 0; i < 4; i++) {
			uint64_t t = l ^ (mix(r ^ p->keys[i]) & mask);

			l = r;
			r = t;
		}
		x = l << p->half | r;
	} while (x >= p->n);
	return x;
}

/* Zipf ranks 1..n with exponent s: rejection-inversion (Hormann and Derflinger). */
struct zipf {
	double n, s, hx1, hn, sq;
};

static double zh(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x / 2;
}

static double helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x / 2;
}

static double zH(const struct zipf *z, double x)
{
	double lx = log(x);

	return helper2((1 - z->s) * lx) * lx;
}

static double zHinv(const struct zipf *z, double x)
{
	double t = x * (1 - z->s);

	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

static void zipf_init(struct zipf *z, uint64_t n, double s)
{
	z->n = n;
	z->s = s;
	z->hx1 = zH(z, 1.5) - 1;
	z->hn = zH(z, n + 0.5);
	z->sq = 2 - zHinv(z, zH(z, 2.5) - zh(z, 2));
}

static uint64_t zipf_rank(const struct zipf *z, uint64_t *rng)
{
	for (;;) {
		double u = z->hn + (next(rng) >> 11) * 0x1.0p-53 * (z->hx1 - z->hn);
		double x = zHinv(z, u);
		double k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		if (k - x <= z->sq || u >= zH(z, k + 0.5) - zh(z, k))
			return (uint64_t)k;
	}
}

static void write_all(struct table *t, const char *p, size_t n)
{
	while (n && !t->err) {
		ssize_t w = write(t->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			t->err = w < 0 ? errno : EIO;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void table_put(struct table *t, const void *data, size_t n)
{
	const char *p = data;

	while (n) {
		size_t c = OUT_BUF - t->len < n ? OUT_BUF - t->len : n;

		memcpy(t->buf + t->len, p, c);
		t->len += c;
		p += c;
		n -= c;
		if (t->len == OUT_BUF) {
			write_all(t, t->buf, OUT_BUF);
			t->len = 0;
		}
	}
}

static int table_open(struct table *t, const char *path, bool csv, unsigned row_bytes)
{
	*t = (struct table){ .path = path, .csv = csv, .row_bytes = row_bytes };
	t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	t->buf = huge_map(OUT_BUF);	/* O_DIRECT needs 4096 bytes aligned */
	if (t->fd < 0 || !t->buf) {
		fprintf(stderr, "weft-gen: %s: %s\n", path, strerror(errno));
		if (t->fd >= 0)
			close(t->fd);
		huge_unmap(t->buf, OUT_BUF);
		return -1;
	}
	/* Refused where the file system has no direct I/O (tmpfs): then buffered. */
	t->direct = !fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_DIRECT);
	if (csv)
		table_put(t, "key,payload\n", 12);
	return 0;
}

static void table_row(struct table *t, uint64_t key, uint64_t payload)
{
	if (t->csv) {
		char line[48];
		int n = snprintf(line, sizeof(line), "%" PRId64 ",%" PRId64 "\n",
				 (int64_t)key, (int64_t)payload);

		table_put(t, line, (size_t)n);
		return;
	}
	unsigned char row[64];
	unsigned done = 16;

	memcpy(row, &key, 8);
	memcpy(row + 8, &payload, 8);
	table_put(t, row, 16);
	/* Filler for wider rows: bytes that depend on the key. */
	while (done < t->row_bytes) {
		unsigned n = t->row_bytes - done < 64 ? t->row_bytes - done : 64;

		for (unsigned i = 0; i < n; i++)
			row[i] = (unsigned char)(key >> (8 * ((done + i) % 8))) ^ (done + i);
		table_put(t, row, n);
		done += n;
	}
}

static int table_close(struct table *t)
{
	size_t whole = t->len & ~(DIRECT_BLOCK - 1);

	write_all(t, t->buf, whole);
	/* The partial block last, without O_DIRECT, which wants whole blocks. */
	if (t->len > whole && !t->err && t->direct &&
	    fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_DIRECT))
		t->err = errno;
	write_all(t, t->buf + whole, t->len - whole);
	if (close(t->fd) && !t->err)
		t->err = errno;
	huge_unmap(t->buf, OUT_BUF);
	if (t->err) {
		fprintf(stderr, "weft-gen: writing %s: %s\n", t->path, strerror(t->err));
		remove(t->path);
		return -1;
	}
	return 0;
}

static const char usage[] =
"usage: weft-gen --rows N --output FILE [options]\n"
"       weft-gen --pair --left FILE --right FILE --left-rows M --rows N [options]\n"
"\n"
"  --keys unique|uniform|zipf  how keys are drawn (default unique; --pair: uniform)\n"
"  --key-range M               uniform and zipf keys fall in [0, M) (default: rows;\n"
"                              with --pair, the left table's keys)\n"
"  --zipf S                    the Zipf exponent (default 1.0; S > 0)\n"
"  --seed X                    the same seed gives the same tables (default 1)\n"
"  --format bin|csv            16-byte rows (default) or CSV\n"
"  --row-bytes W               bin: wider rows, W >= 16\n"
"\n"
"A row is a key and a payload word. --pair writes a left table of unique keys and\n"
"a right table of --rows rows whose keys are drawn from the left's, and prints the\n"
"result weft-join --count must give for them.\n";

static int bad_usage(const char *what)
{
	fprintf(stderr, "weft-gen: %s\nTry 'weft-gen --help'.\n", what);
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* The command line, as parsed. */
struct gen_args {
	uint64_t rows, range, seed, left_rows, w;
	const char *out, *lpath, *rpath;
	enum dist dist;
	bool csv, pair, have_dist, have_rows;
	double s;			/* the Zipf exponent */
};

/* Parse the options into @a. Return: -1 to go on, or the exit code (0: --help). */
static int parse_args(int argc, char **argv, struct gen_args *a)
{
	static const struct option opts[] = {
		{ "rows", 1, NULL, 'n' }, { "output", 1, NULL, 'o' },
		{ "keys", 1, NULL, 'k' }, { "key-range", 1, NULL, 'r' },
		{ "zipf", 1, NULL, 'z' }, { "seed", 1, NULL, 's' },
		{ "format", 1, NULL, 'f' }, { "row-bytes", 1, NULL, 'w' },
		{ "pair", 0, NULL, 'p' }, { "left", 1, NULL, 'L' },
		{ "right", 1, NULL, 'R' }, { "left-rows", 1, NULL, 'm' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	char *end;
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (parse_u64(optarg, &a->rows))
				return bad_usage("bad --rows");
			a->have_rows = true;
			break;
		case 'o': a->out = optarg; break;
		case 'k':
			a->have_dist = true;
			if (!strcmp(optarg, "unique"))
				a->dist = UNIQUE;
			else if (!strcmp(optarg, "uniform"))
				a->dist = UNIFORM;
			else if (!strcmp(optarg, "zipf"))
				a->dist = ZIPF;
			else
				return bad_usage("--keys is unique, uniform or zipf");
			break;
		case 'r':
			if (parse_u64(optarg, &a->range) || !a->range)
				return bad_usage("bad --key-range (at least 1)");
			break;
		case 'z':
			a->s = strtod(optarg, &end);
			if (*end || !(a->s > 0) || a->s > 100)
				return bad_usage("bad --zipf (an exponent in (0, 100])");
			break;
		case 's':
			if (parse_u64(optarg, &a->seed))
				return bad_usage("bad --seed");
			break;
		case 'f':
			if (!strcmp(optarg, "csv"))
				a->csv = true;
			else if (strcmp(optarg, "bin"))
				return bad_usage("--format is bin or csv");
			break;
		case 'w':
			if (parse_u64(optarg, &a->w) || a->w < 16 || a->w > (1u << 20))
				return bad_usage("bad --row-bytes (16 to 1048576)");
			break;
		case 'p': a->pair = true; break;
		case 'L': a->lpath = optarg; break;
		case 'R': a->rpath = optarg; break;
		case 'm':
			if (parse_u64(optarg, &a->left_rows) || !a->left_rows)
				return bad_usage("bad --left-rows (at least 1)");
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: return bad_usage("unknown or incomplete option");
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument");
	if (!a->have_rows)
		return bad_usage("--rows is needed");
	return -1;
}

/* One table of --rows rows whose keys are drawn as --keys says. */
static int gen_table(struct gen_args *a)
{
	uint64_t rng = mix(a->seed * 0x2545f4914f6cdd1dull + 17);
	struct table t;
	struct perm p;
	struct zipf z;

	if (!a->out)
		return bad_usage("--output is needed");
	a->range = a->range ? a->range : a->rows ? a->rows : 1;
	perm_init(&p, a->rows ? a->rows : 1, a->seed);
	zipf_init(&z, a->range, a->s);
	if (table_open(&t, a->out, a->csv, a->w))
		return 1;
	for (uint64_t i = 0; i < a->rows; i++) {
		uint64_t key = a->dist == UNIQUE ? perm_at(&p, i) : a->dist == UNIFORM ?
			below(&rng, a->range) : zipf_rank(&z, &rng) - 1;

		table_row(&t, key, next(&rng));
	}
	return table_close(&t) ? 1 : 0;
}

/* --pair: unique left keys 0..M-1; right keys drawn from them. */
static int gen_pair(struct gen_args *a)
{
	uint64_t rng = mix(a->seed * 0x2545f4914f6cdd1dull + 17);
	uint64_t lsalt = mix(a->seed ^ 0x6c656674), jrows = 0, lsum = 0, rsum = 0;
	struct table t;
	struct perm p;
	struct zipf z;

	if (!a->lpath || !a->rpath || !a->left_rows)
		return bad_usage("--pair needs --left, --right and --left-rows");
	if (a->dist == UNIQUE && a->have_dist)
		return bad_usage("--pair draws right keys uniform or zipf");
	a->dist = a->have_dist ? a->dist : UNIFORM;
	a->range = a->range ? a->range : a->left_rows;
	if (a->range > a->left_rows)
		return bad_usage("--key-range may not pass --left-rows with --pair");
	perm_init(&p, a->left_rows, a->seed);
	zipf_init(&z, a->range, a->s);
	if (table_open(&t, a->lpath, a->csv, a->w))
		return 1;
	for (uint64_t i = 0; i < a->left_rows; i++) {
		uint64_t key = perm_at(&p, i);

		table_row(&t, key, mix(key ^ lsalt));
	}
	if (table_close(&t) || table_open(&t, a->rpath, a->csv, a->w))
		return 1;
	for (uint64_t i = 0; i < a->rows; i++) {
		uint64_t key = a->dist == UNIFORM ? below(&rng, a->range) :
			       zipf_rank(&z, &rng) - 1;
		uint64_t payload = next(&rng);

		table_row(&t, key, payload);
		jrows++;
		lsum += mix(key ^ lsalt);
		rsum += payload;
	}
	if (table_close(&t))
		return 1;
	printf("{\"rows\": %" PRIu64 ", \"left_sum\": %" PRIu64 ", \"right_sum\": %" PRIu64
	       "}\n", jrows, lsum, rsum);
	return 0;
}

int main(int argc, char **argv)
{
	struct gen_args a = { .seed = 1, .w = 16, .dist = UNIQUE, .s = 1.0 };
	int ret = parse_args(argc, argv, &a);

	if (ret >= 0)
		return ret;
	return a.pair ? gen_pair(&a) : gen_table(&a);
}
