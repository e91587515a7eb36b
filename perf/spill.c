// SPDX-License-Identifier: MIT
/*
 * spill.c - how fast does weft spill, and what does running out of memory cost?
 *
 * 1. The spill file's write and read-back bandwidth, in batches of 1 MiB results,
 *    beside a plain O_DIRECT sequential write and read loop on the same directory in
 *    the same run, 8 MiB at a time from huge pages: what the disk can do. The
 *    write time includes fdatasync and the file's cached pages are dropped before
 *    reading back, so both figures are the disk's, not memory's, also where the
 *    spill file cannot use O_DIRECT and goes through the page cache.
 * 2. A graph whose live results are 4x the memory limit (256 results of 1 MiB, all
 *    made, then each read again, newest first), beside the same graph with a limit it
 *    never reaches.
 *
 * usage: spill [dir] [MiB]   (default $TMPDIR or /tmp, 1024 MiB)
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "../spill/spill.h"

#define MB (1u << 20)

static double gbps(double bytes, double secs)
{
	return bytes / secs / 1e9;
}

/*
 * The reference: O_DIRECT sequential write, then read, of @total bytes, REQ at a
 * time from a buffer on transparent huge pages (when granted). Disks that pay per
 * segment of a request (this machine's virtual disk) run several times faster so
 * than from 4 KiB pages: this is what the disk can do.
 */
static void direct_loop(const char *dir, size_t total, double *w, double *r)
{
	enum { REQ = 8 * MB };
	char *buf;
	double t0;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0600);
	if (fd < 0) {
		perror("O_DIRECT");
		*w = *r = 0;
		return;
	}
	buf = huge_map(REQ);
	if (!buf)
		exit(1);
	memset(buf, 7, REQ);
	sync();
	t0 = bench_now();
	for (size_t off = 0; off < total; off += REQ)
		if (pwrite(fd, buf, REQ, (off_t)off) != REQ)
			exit(1);
	fdatasync(fd);
	*w = gbps((double)total, bench_now() - t0);
	t0 = bench_now();
	for (size_t off = 0; off < total; off += REQ)
		if (pread(fd, buf, REQ, (off_t)off) != REQ)
			exit(1);
	*r = gbps((double)total, bench_now() - t0);
	close(fd);
	huge_unmap(buf, REQ);
}

/* The spill file: batches of 64 results of 1 MiB, then all read back in batches. */
static void spill_loop(const char *dir, size_t total, double *w, double *r,
		       const char **backend)
{
	enum { BATCH = 64 };
	size_t n = total / MB;
	struct weft__spill_item *items = calloc(n, sizeof(*items));
	unsigned char *buf;
	struct weft__spill *s;
	double t0;

	/* Page-aligned, as the engine's large results are (jemalloc's large extents). */
	if (posix_memalign((void **)&buf, 4096, (size_t)BATCH * MB))
		exit(1);
	sync();		/* no one else's dirty pages flushed on our time */
	bench_check(weft__spill_open(dir, WEFT_SPILL_AUTO, true, 0, &s), "spill open");
	*backend = weft__spill_backend_name(s);
	memset(buf, 3, (size_t)BATCH * MB);
	t0 = bench_now();
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;

		for (size_t j = 0; j < k; j++)
			items[i + j] = (struct weft__spill_item){ buf + j * MB, MB };
		bench_check(weft__spill_write(s, &items[i], (unsigned)k), "spill write");
	}
	fdatasync(weft__spill_fd(s));
	*w = gbps((double)total, bench_now() - t0);
	posix_fadvise(weft__spill_fd(s), 0, 0, POSIX_FADV_DONTNEED);
	t0 = bench_now();
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;

		for (size_t j = 0; j < k; j++)
			items[i + j].data = buf + j * MB;
		bench_check(weft__spill_read(s, &items[i], (unsigned)k), "spill read");
	}
	*r = gbps((double)total, bench_now() - t0);
	weft__spill_close(s);
	free(buf);
	free(items);
}

static int block(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		 const void *arg, size_t arglen)
{
	uint64_t seed, *p = weft_output(ctx, MB);

	if (!p)
		return weft_fail(ctx, "no memory");
	memcpy(&seed, arg, 8);
	for (size_t i = 0; i < MB / 8; i++)
		p[i] = seed + i;
	return 0;
}

static int sum(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
	       const void *arg, size_t arglen)
{
	const uint64_t *p = in[0].data;
	uint64_t s = 0, *out = weft_output(ctx, 8);

	for (size_t i = 0; i < in[0].len / 8; i++)
		s += p[i];
	*out = s;
	return 0;
}

/* 256 live results of 1 MiB, each read again newest first. Return: seconds. */
static double graph(size_t limit, const char *dir, struct weft_stats *st)
{
	enum { N = 256 };
	struct weft_options o = { .size = sizeof(o), .memory_limit = limit, .spill_dir = dir };
	struct weft_future *b[N], *s[N];
	struct weft_client *c;
	double t0 = bench_now(), t;

	bench_check(weft_client_open(NULL, &o, &c), "open");
	for (uint64_t i = 0; i < N; i++)
		bench_check(weft_submit(c, block, NULL, 0, &i, 8, NULL, &b[i]), "submit");
	/* All made before any is read again: the working set is all of them. */
	for (int i = 0; i < N; i++)
		bench_check(weft_wait(b[i], -1), "wait");
	for (int i = 0; i < N; i++)
		bench_check(weft_submit(c, sum, &b[N - 1 - i], 1, NULL, 0, NULL, &s[i]), "submit");
	for (int i = 0; i < N; i++)
		bench_check(weft_wait(s[i], -1), "wait");
	t = bench_now() - t0;
	st->size = sizeof(*st);
	weft_stats(c, st);
	for (int i = 0; i < N; i++) {
		weft_release(b[i]);
		weft_release(s[i]);
	}
	weft_client_close(c);
	return t;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	size_t total = (argc > 2 ? (size_t)atol(argv[2]) : 1024) * MB;
	int reps = bench_reps() < 3 ? bench_reps() : 3;
	double sw[8], sr[8], dw[8], dr[8], lim[8], unl[8];
	const char *backend = "?";
	struct weft_stats st;

	bench_header("spill: the spill file against the disk, and a graph 4x memory");
	for (int r = 0; r < reps; r++) {
		spill_loop(dir, total, &sw[r], &sr[r], &backend);
		direct_loop(dir, total, &dw[r], &dr[r]);
		unl[r] = graph(1024u * MB, dir, &st) * 1e3;
		lim[r] = graph(64u * MB, dir, &st) * 1e3;
	}
	printf("# spill backend: %s; %zu MiB per run in %s\n", backend, total / MB, dir);
	unsigned nt = bench_all_threads();

	bench_report("spill", "write_GBps", 1, sw, reps, "GB/s", "O_DIRECT write loop", dw, reps);
	bench_report("spill", "read_GBps", 1, sr, reps, "GB/s", "O_DIRECT read loop", dr, reps);
	bench_report("spill", "graph_4x_memory_ms", nt, lim, reps, "ms",
		     "same graph, unlimited", unl, reps);
	printf("# last 4x run: %.0f MiB spilled, %.0f MiB restored, peak %.1f of 64 MiB\n",
	       st.spilled_bytes / 1048576.0, st.restored_bytes / 1048576.0,
	       st.mem_peak / 1048576.0);
	return 0;
}
