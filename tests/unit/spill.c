// SPDX-License-Identifier: MIT
/* Unit tests of spill/: both backends, space reuse, checksums, a full disk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spill.h"
#include "../common.h"

/* Each test runs on both backends, with direct I/O and with the page cache. */
static const enum weft__spill_backend backends[] = { WEFT_SPILL_URING, WEFT_SPILL_PREAD };
static bool direct;			/* the current round's: open_staged passes it */
#define FOR_EACH_BACKEND(b)							\
	for (unsigned b##_i = 0; b##_i < 4 &&					\
	     ((b = backends[b##_i % 2]), (direct = b##_i < 2), 1); b##_i++)

/* Damage the file behind the manager's back, through a buffered descriptor. */
static void damage(struct weft__spill *s, uint64_t off)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", weft__spill_fd(s));
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "X", 1, (off_t)off), 1);
	close(fd);
}

/* A spill file with a stage of @stage bytes (0: the default), or NULL: no io_uring. */
static struct weft__spill *open_staged(const char *dir, enum weft__spill_backend b,
				       size_t stage)
{
	struct weft__spill *s = NULL;
	int ret = weft__spill_open(dir, b, direct, stage, &s);

	if (ret == -EOPNOTSUPP && b == WEFT_SPILL_URING)
		return NULL;	/* no io_uring here: the pread run still tests */
	cr_assert_eq(ret, 0, "open: %s", strerror(-ret));
	return s;
}

static struct weft__spill *open_or_skip(const char *dir, enum weft__spill_backend b)
{
	return open_staged(dir, b, 0);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

/* A filesystem of @size at a new directory in @dir (a mkdtemp template), or skip. */
static void small_fs(char *dir, const char *size)
{
	cr_assert_not_null(mkdtemp(dir));
	if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, size)) {
		rmdir(dir);
		cr_skip_test("needs root to mount a small filesystem");
	}
}

Test(spill, open_bad_arguments_return_einval)
{
	struct weft__spill *s = NULL;

	cr_assert_eq(weft__spill_open(NULL, WEFT_SPILL_AUTO, true, 0, &s), -EINVAL);
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 0, NULL), -EINVAL);
	cr_assert_eq(weft__spill_open("/tmp", 7, true, 0, &s), -EINVAL);
	/* Stages: a power of two from 2 to 16 MiB. */
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 1 << 20, &s), -EINVAL);
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 3 << 20, &s), -EINVAL);
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 32 << 20, &s), -EINVAL);
	cr_assert_eq(weft__spill_open("/nonexistent", WEFT_SPILL_AUTO, true, 0, &s), -ENOENT);
	cr_assert_null(s);
	weft__spill_close(NULL);
}

/* 1/32 of the engine's limit, a power of two from 2 to 16 MiB; 0 opens the largest. */
Test(spill, the_stage_follows_the_memory_limit)
{
	const size_t mib = 1 << 20;
	struct weft__spill *s;

	cr_assert_eq(weft__spill_stage_for(0), 2 * mib);
	cr_assert_eq(weft__spill_stage_for(8 * mib), 2 * mib);
	cr_assert_eq(weft__spill_stage_for(127 * mib), 2 * mib);
	cr_assert_eq(weft__spill_stage_for(128 * mib), 4 * mib);
	cr_assert_eq(weft__spill_stage_for(300 * mib), 8 * mib);
	cr_assert_eq(weft__spill_stage_for(640 * mib), 16 * mib);
	cr_assert_eq(weft__spill_stage_for(SIZE_MAX), 16 * mib);
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 0, &s), 0);
	cr_assert_eq(weft__spill_stage(s), WEFT__SPILL_STAGE_MAX);
	weft__spill_close(s);
	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 4 * mib, &s), 0);
	cr_assert_eq(weft__spill_stage(s), 4 * mib);
	weft__spill_close(s);
}

Test(spill, auto_picks_a_backend)
{
	struct weft__spill *s;

	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_AUTO, true, 0, &s), 0);
	cr_assert(!strcmp(weft__spill_backend_name(s), "io_uring") ||
		  !strcmp(weft__spill_backend_name(s), "pread"));
	weft__spill_close(s);
}

Test(spill, round_trip_of_many_sizes_fused, .timeout = 30)
{
	enum weft__spill_backend b;
	size_t sizes[] = { 1, 7, 64, 100, 4096, 4097, 65536, 1 << 20, 3 };

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		struct weft__spill_item w[9], r[9];
		struct weft__spill_stats st;

		if (!s)
			continue;
		for (int i = 0; i < 9; i++) {
			w[i] = (struct weft__spill_item){ malloc(sizes[i]), sizes[i] };
			fill(w[i].data, sizes[i], i);
		}
		if (!direct)
			cr_assert_not(weft__spill_direct(s), "direct = false was ignored");
		cr_assert_eq(weft__spill_write(s, w, 9), 0);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.writes, 1, "%s: one batch, %lu requests",
			     weft__spill_backend_name(s), (unsigned long)st.writes);
		cr_assert_eq(st.items_written, 9);
		for (int i = 0; i < 9; i++) {
			r[i] = w[i];
			r[i].data = calloc(1, sizes[i]);
		}
		cr_assert_eq(weft__spill_read(s, r, 9), 0);
		for (int i = 0; i < 9; i++) {
			cr_assert_eq(r[i].err, 0);
			cr_assert_eq(memcmp(r[i].data, w[i].data, sizes[i]), 0,
				     "%s: item %d", weft__spill_backend_name(s), i);
			free(r[i].data);
			free(w[i].data);
		}
		weft__spill_close(s);
	}
}

/* Readers of unaligned items share one bounce buffer (2 MiB) and take turns there. */
struct bounce_reader {
	struct weft__spill *s;
	struct weft__spill_item item;	/* as written */
	const unsigned char *want;
	int bad;
};

static void *read_again_and_again(void *arg)
{
	struct bounce_reader *br = arg;
	unsigned char *back = malloc(br->item.len);

	for (int k = 0; k < 8 && back; k++) {
		struct weft__spill_item r = br->item;

		memset(back, 0, r.len);
		r.data = back;
		if (weft__spill_read(br->s, &r, 1) || memcmp(back, br->want, r.len))
			br->bad++;
	}
	br->bad += !back;
	free(back);
	return NULL;
}

Test(spill, unaligned_reads_from_two_threads_past_the_bounce_buffer, .timeout = 60)
{
	enum weft__spill_backend b;
	enum { LEN = (5 << 20) + 123 };		/* three pieces of the bounce buffer */

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		struct bounce_reader br[2];
		struct weft__spill_item w[2];
		pthread_t th[2];

		if (!s)
			continue;
		for (int i = 0; i < 2; i++) {
			/* One byte in, so that neither address nor length is aligned. */
			unsigned char *p = malloc(LEN + 1);

			fill(p + 1, LEN, i + 60);
			w[i] = (struct weft__spill_item){ p + 1, LEN };
		}
		cr_assert_eq(weft__spill_write(s, w, 2), 0);
		for (int i = 0; i < 2; i++) {
			br[i] = (struct bounce_reader){ s, w[i], w[i].data, 0 };
			cr_assert_eq(pthread_create(&th[i], NULL, read_again_and_again, &br[i]), 0);
		}
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			cr_assert_eq(br[i].bad, 0, "%s, %s: reader %d", weft__spill_backend_name(s),
				     weft__spill_direct(s) ? "direct" : "buffered", i);
			free((unsigned char *)w[i].data - 1);
		}
		weft__spill_close(s);
	}
}

Test(spill, released_space_is_reused, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char *buf = malloc(1 << 20);
		struct weft__spill_item a = { buf, 1 << 20 }, c = { buf, 1 << 20 };
		struct weft__spill_item small[4];
		struct weft__spill_stats st;

		if (!s) {
			free(buf);
			continue;
		}
		fill(buf, 1 << 20, 1);
		cr_assert_eq(weft__spill_write(s, &a, 1), 0);
		for (int i = 0; i < 4; i++)
			small[i] = (struct weft__spill_item){ buf, 1000 };
		cr_assert_eq(weft__spill_write(s, small, 4), 0);
		weft__spill_release(s, a.off, a.len);
		cr_assert_eq(weft__spill_write(s, &c, 1), 0);
		cr_assert_eq(c.off, a.off, "the freed range is used again");
		weft__spill_stats(s, &st);
		cr_assert_leq(st.file_bytes, (1 << 20) + 8 * 1024);
		/* Freed neighbours merge: four small ones make room for their sum. */
		for (int i = 0; i < 4; i++)
			weft__spill_release(s, small[i].off, small[i].len);
		struct weft__spill_item four = { buf, 4096 };
		cr_assert_eq(weft__spill_write(s, &four, 1), 0);
		cr_assert_eq(four.off, small[0].off);
		/* Releasing everything gives the whole file back. */
		weft__spill_release(s, c.off, c.len);
		weft__spill_release(s, four.off, four.len);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.file_bytes, 0);
		cr_assert_eq(st.live_bytes, 0);
		weft__spill_close(s);
		free(buf);
	}
}

Test(spill, corrupted_item_reads_ebadmsg_and_others_survive, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char data[3][5000], back[3][5000];
		struct weft__spill_item w[3], r[3];

		if (!s)
			continue;
		for (int i = 0; i < 3; i++) {
			fill(data[i], sizeof(data[i]), i + 10);
			w[i] = (struct weft__spill_item){ data[i], sizeof(data[i]) };
		}
		cr_assert_eq(weft__spill_write(s, w, 3), 0);
		/* Damage the middle item on disk. */
		damage(s, w[1].off + 100);
		for (int i = 0; i < 3; i++) {
			r[i] = w[i];
			r[i].data = back[i];
		}
		cr_assert_eq(weft__spill_read(s, r, 3), -EBADMSG);
		cr_assert_eq(r[0].err, 0);
		cr_assert_eq(r[1].err, -EBADMSG);
		cr_assert_eq(r[2].err, 0);
		cr_assert_eq(memcmp(back[2], data[2], sizeof(data[2])), 0);
		weft__spill_close(s);
	}
}

Test(spill, truncated_file_reads_eio, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char data[8192], back[8192];
		struct weft__spill_item w = { data, sizeof(data) }, r;

		if (!s)
			continue;
		fill(data, sizeof(data), 3);
		cr_assert_eq(weft__spill_write(s, &w, 1), 0);
		cr_assert_eq(ftruncate(weft__spill_fd(s), 4096), 0);
		r = w;
		r.data = back;
		cr_assert_eq(weft__spill_read(s, &r, 1), -EIO);
		cr_assert_eq(r.err, -EIO);
		weft__spill_close(s);
	}
}

Test(spill, full_disk_returns_enospc_and_keeps_nothing, .timeout = 30)
{
	char dir[PATH_MAX];
	enum weft__spill_backend b;

	small_fs(t_template(dir, sizeof(dir), "weft-full"), "size=1m");
	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip(dir, b);
		unsigned char *big = malloc(2 << 20);
		struct weft__spill_item w = { big, 2 << 20 }, ok = { big, 100 << 10 };
		struct weft__spill_stats st;

		if (!s) {
			free(big);
			continue;
		}
		fill(big, 2 << 20, 5);
		cr_assert_eq(weft__spill_write(s, &w, 1), -ENOSPC);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.live_bytes, 0, "a failed batch keeps nothing");
		/* When space returns, writing works again. */
		cr_assert_eq(ftruncate(weft__spill_fd(s), 0), 0);
		cr_assert_eq(weft__spill_write(s, &ok, 1), 0);
		weft__spill_close(s);
		free(big);
	}
	umount(dir);
	rmdir(dir);
}

Test(spill, close_leaves_no_file, .timeout = 30)
{
	char dir[PATH_MAX];
	enum weft__spill_backend b;

	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "weft-spilldir")));
	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip(dir, b);
		unsigned char data[4096] = { 1 };
		struct weft__spill_item w = { data, sizeof(data) };

		if (!s)
			continue;
		cr_assert_eq(weft__spill_write(s, &w, 1), 0);
		cr_assert_eq(dir_entries(dir), 0, "the spill file has no name");
		cr_assert_gt(fds_in(dir), 0, "the spill file is open in the directory");
		weft__spill_close(s);
		cr_assert_eq(fds_in(dir), 0, "close leaves no descriptor of the file open");
	}
	cr_assert_eq(rmdir(dir), 0, "the directory is empty again");
}

Test(spill, bad_items_return_einval)
{
	struct weft__spill *s;
	struct weft__spill_item empty = { "x", 0 }, nodata = { NULL, 4 }, far = { "x", 1 };
	char buf[4];

	cr_assert_eq(weft__spill_open("/tmp", WEFT_SPILL_PREAD, true, 0, &s), 0);
	cr_assert_eq(weft__spill_write(s, &empty, 1), -EINVAL);
	cr_assert_eq(weft__spill_write(s, &nodata, 1), -EINVAL);
	far.data = buf;
	far.off = 1 << 30;
	cr_assert_eq(weft__spill_read(s, &far, 1), -EINVAL, "beyond the file");
	cr_assert_eq(weft__spill_write(s, NULL, 0), 0);
	weft__spill_close(s);
}

Test(spill, aligned_batch_is_one_request_and_checksummed, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		struct weft__spill_item w[8], r[8];
		struct weft__spill_stats st;
		void *bufs[16];

		if (!s)
			continue;
		/* Page-aligned, block-sized: one staged request (or one vectored write). */
		for (int i = 0; i < 16; i++)
			cr_assert_eq(posix_memalign(&bufs[i], 4096, 64 << 10), 0);
		for (int i = 0; i < 8; i++) {
			fill(bufs[i], 64 << 10, i + 40);
			w[i] = (struct weft__spill_item){ bufs[i], 64 << 10 };
		}
		cr_assert_eq(weft__spill_write(s, w, 8), 0);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.writes, 1);
		for (int i = 0; i < 8; i++) {
			r[i] = w[i];
			r[i].data = bufs[8 + i];
			memset(r[i].data, 0, 64 << 10);
		}
		damage(s, w[5].off + 7);
		cr_assert_eq(weft__spill_read(s, r, 8), -EBADMSG);
		for (int i = 0; i < 8; i++) {
			cr_assert_eq(r[i].err, i == 5 ? -EBADMSG : 0, "item %d", i);
			if (i != 5)
				cr_assert_eq(memcmp(r[i].data, w[i].data, 64 << 10), 0);
		}
		weft__spill_close(s);
		for (int i = 0; i < 16; i++)
			free(bufs[i]);
	}
}

Test(spill, aligned_batch_on_a_full_disk_keeps_nothing, .timeout = 30)
{
	char dir[PATH_MAX];
	enum weft__spill_backend b;

	small_fs(t_template(dir, sizeof(dir), "weft-full2"), "size=1m");
	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip(dir, b);
		struct weft__spill_item w[4];
		struct weft__spill_stats st;
		void *buf = NULL;

		if (!s)
			continue;
		cr_assert_eq(posix_memalign(&buf, 4096, 4 << 20), 0);
		for (int i = 0; i < 4; i++)
			w[i] = (struct weft__spill_item){ (char *)buf + ((size_t)i << 20), 1 << 20 };
		cr_assert_eq(weft__spill_write(s, w, 4), -ENOSPC);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.live_bytes, 0);
		weft__spill_close(s);
		free(buf);
	}
	umount(dir);
	rmdir(dir);
}

/*
 * Read-ahead sends a batch a stageful at a time, and reads an item larger than the
 * stage alone: in place when it is aligned, else through a bounce buffer. All must
 * come back intact, with the smallest stage and the largest.
 */
Test(spill, read_ahead_round_trip_past_the_stage, .timeout = 60)
{
	const size_t stages[] = { WEFT__SPILL_STAGE_MIN, WEFT__SPILL_STAGE_MAX };
	enum weft__spill_backend b;
	enum { N = 26 };

	FOR_EACH_BACKEND(b) {
		for (int k = 0; k < 2; k++) {
			size_t stage = stages[k];
			struct weft__spill *s = open_staged("/tmp", b, stage);
			struct weft__spill_item w[N], r[N];
			struct weft__spill_stats st;
			size_t room[N];

			if (!s)
				continue;
			cr_assert_eq(weft__spill_stage(s), stage);
			for (int i = 0; i < N; i++) {
				/* 1/16 of the stage and a bit: 24 make about twice the stage. */
				size_t len = i % 6 == 5 ? stage / 8 : stage / 16 + 17 * i + 1;

				if (i >= 24)	/* past the stage: aligned, then not */
					len = stage + (1 << 20) + (i == 24 ? 0 : 4097);
				room[i] = (len + 4095) & ~(size_t)4095;
				w[i] = (struct weft__spill_item){ aligned_alloc(4096, room[i]),
								  len };
				fill(w[i].data, len, i + 40);
			}
			cr_assert_eq(weft__spill_write(s, w, N), 0);
			for (int i = 0; i < N; i++) {
				r[i] = w[i];
				r[i].data = aligned_alloc(4096, room[i]);
			}
			cr_assert_eq(weft__spill_read_ahead(s, r, N), 0);
			for (int i = 0; i < N; i++) {
				cr_assert_eq(r[i].err, 0);
				cr_assert_eq(memcmp(r[i].data, w[i].data, w[i].len), 0,
					     "%s, %s, stage %zu: item %d",
					     weft__spill_backend_name(s),
					     weft__spill_direct(s) ? "direct" : "buffered",
					     stage, i);
			}
			weft__spill_stats(s, &st);
			cr_assert_eq(st.items_read, N);
			for (int i = 0; i < N; i++) {
				free(r[i].data);
				free(w[i].data);
			}
			weft__spill_close(s);
		}
	}
}

Test(spill, read_ahead_reports_each_item, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char data[3][5000], back[3][5000];
		struct weft__spill_item w[3], r[3], far;

		if (!s)
			continue;
		for (int i = 0; i < 3; i++) {
			fill(data[i], sizeof(data[i]), i + 20);
			w[i] = (struct weft__spill_item){ data[i], sizeof(data[i]) };
		}
		cr_assert_eq(weft__spill_write(s, w, 3), 0);
		damage(s, w[0].off + 7);
		for (int i = 0; i < 3; i++) {
			r[i] = w[i];
			r[i].data = back[i];
		}
		cr_assert_eq(weft__spill_read_ahead(s, r, 3), -EBADMSG);
		cr_assert_eq(r[0].err, -EBADMSG);
		cr_assert_eq(r[1].err, 0);
		cr_assert_eq(r[2].err, 0);
		cr_assert_eq(memcmp(back[1], data[1], sizeof(data[1])), 0);
		cr_assert_eq(memcmp(back[2], data[2], sizeof(data[2])), 0);
		far = r[1];
		far.off = 1 << 30;
		cr_assert_eq(weft__spill_read_ahead(s, &far, 1), -EINVAL, "beyond the file");
		cr_assert_eq(weft__spill_read_ahead(NULL, r, 1), -EINVAL);
		/* The file loses its end: what was there is -EIO. */
		cr_assert_eq(ftruncate(weft__spill_fd(s), 4096), 0);
		cr_assert_eq(weft__spill_read_ahead(s, &r[2], 1), -EIO);
		cr_assert_eq(r[2].err, -EIO);
		weft__spill_close(s);
	}
}

static uint64_t file_blocks(struct weft__spill *s)
{
	struct stat st;

	cr_assert_eq(fdatasync(weft__spill_fd(s)), 0);
	cr_assert_eq(fstat(weft__spill_fd(s), &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void write_mib(struct weft__spill *s, struct weft__spill_item *w, unsigned n,
		      unsigned char *data, unsigned seed)
{
	for (unsigned i = 0; i < n; i++) {
		fill(data + ((size_t)i << 20), 1 << 20, seed + i);
		w[i] = (struct weft__spill_item){ data + ((size_t)i << 20), 1 << 20 };
	}
	cr_assert_eq(weft__spill_write(s, w, n), 0);
}

static void expect_intact(struct weft__spill *s, struct weft__spill_item *w, unsigned n)
{
	unsigned char *back = malloc(1 << 20);

	for (unsigned i = 0; i < n; i++) {
		struct weft__spill_item r = w[i];

		r.data = back;
		cr_assert_eq(weft__spill_read(s, &r, 1), 0, "item %u", i);
		cr_assert_eq(memcmp(back, w[i].data, w[i].len), 0, "item %u", i);
	}
	free(back);
}

/*
 * Trims punch out what was released and is still free, in slices of the budget,
 * and never what the writer has used again since: those bytes read back intact.
 */
Test(spill, trim_frees_released_space_and_spares_what_was_reused, .timeout = 60)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char *da = malloc(4 << 20), *db = malloc(4 << 20);
		unsigned char *dc = malloc(4 << 20), *dd = malloc(2 << 20);
		struct weft__spill_item wa[4], wb[4], wc[4], wd[2];
		struct weft__spill_stats st;
		uint64_t full, after, cut;
		int slices = 0;

		if (!s)
			continue;
		weft__spill_set_trim_quiet(s, 0);
		write_mib(s, wa, 4, da, 1);
		write_mib(s, wb, 4, db, 11);
		write_mib(s, wc, 4, dc, 21);
		cr_assert_eq(weft__spill_trim(s, 0, UINT64_MAX), 0, "nothing released yet");
		full = file_blocks(s);
		for (int i = 0; i < 4; i++)
			weft__spill_release(s, wa[i].off, wa[i].len);
		/* The writer uses half of A's space again before any trim. */
		write_mib(s, wd, 2, dd, 31);
		cr_assert_lt(wd[1].off, wb[0].off, "first fit reuses A's space");
		cr_assert_eq(weft__spill_trim(s, 64u << 20, UINT64_MAX), 0, "not due yet");
		cr_assert_gt(weft__spill_trim(s, 0, UINT64_MAX), 0);
		weft__spill_trim_wait(s);
		expect_intact(s, wd, 2);
		expect_intact(s, wb, 4);
		after = file_blocks(s);
		cr_assert_leq(after + (2u << 20), full, "%s, %s: %llu of %llu bytes",
			      weft__spill_backend_name(s),
			      weft__spill_direct(s) ? "direct" : "buffered",
			      (unsigned long long)after, (unsigned long long)full);
		/* B, between D and C, goes in slices of 1 MiB. */
		for (int i = 0; i < 4; i++)
			weft__spill_release(s, wb[i].off, wb[i].len);
		while ((cut = weft__spill_trim(s, 0, 1u << 20)) > 0) {
			cr_assert_leq(cut, 2u << 20, "a slice keeps near its budget");
			slices++;
			weft__spill_trim_wait(s);
		}
		cr_assert_geq(slices, 4, "%d slices", slices);
		expect_intact(s, wc, 4);
		/* C was the file's end: with it released, a trim cuts the file at D. */
		for (int i = 0; i < 4; i++)
			weft__spill_release(s, wc[i].off, wc[i].len);
		(void)weft__spill_trim(s, 0, UINT64_MAX);
		weft__spill_trim_wait(s);
		expect_intact(s, wd, 2);
		cr_assert_leq(file_blocks(s), (3u << 20), "only D's 2 MiB and slack left");
		weft__spill_stats(s, &st);
		cr_assert_gt(st.trimmed_bytes, 0);
		weft__spill_close(s);
		free(dd);
		free(dc);
		free(db);
		free(da);
	}
}

/*
 * Segments of 64 KiB: items, fused requests, stage halves, bounce pieces and
 * read-ahead groups all cross segment ends. Everything reads back intact by every
 * path, and releasing and trimming it all frees the blocks of every segment.
 */
Test(spill, items_across_segment_ends_round_trip_and_trim, .timeout = 60)
{
	enum weft__spill_backend b;
	enum { N = 24 };

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		struct weft__spill_item w[N], r[N];
		size_t room[N];

		if (!s)
			continue;
		weft__spill_set_trim_quiet(s, 0);
		cr_assert_eq(weft__spill_set_segment_shift(s, 16), 0);
		for (int i = 0; i < N; i++) {
			/* A few bytes, then odd sizes around a segment, then several MiB. */
			size_t k = (size_t)i, len = k < 4 ? 1 + 37 * k :
				     k < 20 ? (60u << 10) + 4093 * k : (3u << 20) + 4097 * k;

			room[i] = (len + 4095) & ~(size_t)4095;
			w[i] = (struct weft__spill_item){ aligned_alloc(4096, room[i]), len };
			fill(w[i].data, len, i + 70);
		}
		cr_assert_eq(weft__spill_write(s, w, N / 2), 0);
		cr_assert_eq(weft__spill_write(s, w + N / 2, N / 2), 0);
		cr_assert_eq(weft__spill_set_segment_shift(s, 20), -EBUSY);
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < N; i++) {
				r[i] = w[i];
				r[i].data = aligned_alloc(4096, room[i]);
			}
			cr_assert_eq(pass ? weft__spill_read_ahead(s, r, N) :
				     weft__spill_read(s, r, N), 0);
			for (int i = 0; i < N; i++) {
				cr_assert_eq(memcmp(r[i].data, w[i].data, w[i].len), 0,
					     "%s, %s, %s: item %d", weft__spill_backend_name(s),
					     weft__spill_direct(s) ? "direct" : "buffered",
					     pass ? "read ahead" : "read", i);
				free(r[i].data);
			}
		}
		cr_assert_gt(weft__spill_disk_bytes(s), 12u << 20);
		for (int i = 0; i < N; i += 2)
			weft__spill_release(s, w[i].off, w[i].len);
		while (weft__spill_trim(s, 0, 1u << 20))
			weft__spill_trim_wait(s);
		for (int i = 1; i < N; i += 2) {
			r[i] = w[i];
			r[i].data = aligned_alloc(4096, room[i]);
			cr_assert_eq(weft__spill_read(s, &r[i], 1), 0, "item %d", i);
			cr_assert_eq(memcmp(r[i].data, w[i].data, w[i].len), 0, "item %d", i);
			free(r[i].data);
			weft__spill_release(s, w[i].off, w[i].len);
		}
		while (weft__spill_trim(s, 0, UINT64_MAX))
			weft__spill_trim_wait(s);
		cr_assert_leq(weft__spill_disk_bytes(s), 64u << 10, "%llu bytes left",
			      (unsigned long long)weft__spill_disk_bytes(s));
		for (int i = 0; i < N; i++)
			free(w[i].data);
		weft__spill_close(s);
	}
}

/* No descriptor left for a new segment: the write fails, keeps nothing, and works later. */
Test(spill, no_descriptor_for_a_segment_keeps_nothing, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char *d = aligned_alloc(4096, 1 << 20);
		struct weft__spill_item w = { d, 1 << 20 }, first = { d, 4096 }, r;
		struct weft__spill_stats st;
		struct rlimit old, tight;
		int spare;

		if (!s)
			continue;
		cr_assert_eq(weft__spill_set_segment_shift(s, 16), 0);
		fill(d, 1 << 20, 5);
		cr_assert_eq(weft__spill_write(s, &first, 1), 0, "the first segment is open");
		/* The lowest free descriptor becomes the limit: no new file can open. */
		spare = dup(0);
		cr_assert_geq(spare, 0);
		close(spare);
		cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
		tight = (struct rlimit){ (rlim_t)spare, old.rlim_max };
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
		cr_assert_eq(weft__spill_write(s, &w, 1), -EMFILE);
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
		weft__spill_stats(s, &st);
		cr_assert_eq(st.items_written, 1);
		cr_assert_eq(st.live_bytes, 4096);
		cr_assert_eq(weft__spill_write(s, &w, 1), 0, "descriptors again: it goes");
		r = w;
		r.data = aligned_alloc(4096, 1 << 20);
		cr_assert_eq(weft__spill_read(s, &r, 1), 0);
		cr_assert_eq(memcmp(r.data, d, 1 << 20), 0);
		free(r.data);
		weft__spill_close(s);
		free(d);
	}
}

/* Trims wait for writes to pause: right after one, nothing is queued. */
Test(spill, trim_waits_for_writes_to_pause, .timeout = 30)
{
	enum weft__spill_backend b;

	FOR_EACH_BACKEND(b) {
		struct weft__spill *s = open_or_skip("/tmp", b);
		unsigned char *d = malloc(4 << 20);
		struct weft__spill_item w[4];

		if (!s)
			continue;
		weft__spill_set_trim_quiet(s, 3600ull * 1000000000);
		write_mib(s, w, 4, d, 3);
		for (int i = 0; i < 3; i++)
			weft__spill_release(s, w[i].off, w[i].len);
		cr_assert_eq(weft__spill_trim(s, 0, UINT64_MAX), 0, "queued while writing");
		weft__spill_set_trim_quiet(s, 0);
		cr_assert_geq(weft__spill_trim(s, 0, UINT64_MAX), 3u << 20, "paused: queued");
		weft__spill_trim_wait(s);
		expect_intact(s, &w[3], 1);
		weft__spill_close(s);
		free(d);
	}
}
