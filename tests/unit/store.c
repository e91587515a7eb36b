// SPDX-License-Identifier: MIT
/* Unit tests of core/store.c: LRU order, pins, a result damaged on disk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define MB (1u << 20)
#define N 40

static int block(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		 const void *arg, size_t arglen)
{
	unsigned char *p = weft_output(ctx, MB);

	if (!p)
		return weft_fail(ctx, "no memory");
	memset(p, *(const int *)arg, MB);
	return 0;
}

static int first_byte(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		      const void *arg, size_t arglen)
{
	unsigned char *o = weft_output(ctx, 1);

	*o = ((const unsigned char *)in[0].data)[MB - 1];
	return 0;
}

/* N blocks of 1 MiB made one after another under a 16 MiB limit. */
static struct weft_client *make_blocks(struct weft_future **f, struct weft_future **viewed)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 1, .memory_limit = 16 * MB };
	struct weft_client *c;

	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	for (int i = 0; i < N; i++) {
		char label[32];
		struct weft_task_opts to = { .size = sizeof(to), .label = label };

		snprintf(label, sizeof(label), "block%d", i);
		cr_assert_eq(weft_submit(c, block, NULL, 0, &i, sizeof(i), &to, &f[i]), 0);
		cr_assert_eq(weft_wait(f[i], -1), 0);
		if (i == 0 && viewed) {
			struct weft_buf b;

			/* A view of the oldest result pins it in memory. */
			cr_assert_eq(weft_result(f[0], &b), 0);
			*viewed = f[0];
		}
	}
	/* Let the spill thread bring memory below the target. */
	for (int tries = 0; tries < 200; tries++) {
		struct weft_stats st = { .size = sizeof(st) };

		cr_assert_eq(weft_stats(c, &st), 0);
		if (st.mem_bytes <= st.mem_limit * 6 / 10)
			break;
		usleep(10000);
	}
	return c;
}

Test(store, coldest_results_go_first_and_views_pin, .timeout = 60)
{
	struct weft_future *f[N], *viewed = NULL;
	struct weft_client *c = make_blocks(f, &viewed);
	struct weft__engine *eng = weft__client_engine(c);
	uint64_t off;

	cr_assert_eq(weft__store_on_disk(eng, f[0], &off), 0, "a viewed result was spilled");
	cr_assert_eq(weft__store_on_disk(eng, f[1], &off), 1, "the coldest result is in memory");
	cr_assert_eq(weft__store_on_disk(eng, f[N - 1], &off), 0,
		     "the newest result was spilled before older ones");
	/* Releasing the view makes it spillable like any other. */
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(store, damaged_result_fails_its_reader_naming_it, .timeout = 60)
{
	struct weft_future *f[N], *r, *ok;
	struct weft_client *c = make_blocks(f, NULL);
	struct weft__engine *eng = weft__client_engine(c);
	struct weft_buf b;
	uint64_t off;

	cr_assert_eq(weft__store_on_disk(eng, f[2], &off), 1);
	/* Through a buffered descriptor: the spill file may be opened O_DIRECT. */
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", weft__store_spill_fd(eng));
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "!", 1, (off_t)off + 4096), 1);
	close(fd);
	cr_assert_eq(weft_submit(c, first_byte, &f[2], 1, NULL, 0, NULL, &r), 0);
	cr_assert_eq(weft_wait(r, -1), -EBADMSG);
	cr_assert_not_null(strstr(weft_future_error(r), "the result of 'block2'"), "%s",
			   weft_future_error(r));
	cr_assert_not_null(strstr(weft_future_error(r), "checksum mismatch"));
	/* Its neighbours on disk still read back intact. */
	cr_assert_eq(weft__store_on_disk(eng, f[3], &off), 1);
	cr_assert_eq(weft_submit(c, first_byte, &f[3], 1, NULL, 0, NULL, &ok), 0);
	cr_assert_eq(weft_result(ok, &b), 0);
	cr_assert_eq(*(const unsigned char *)b.data, 3);
	/* weft_result on the damaged one says so too, and never returns its bytes. */
	cr_assert_eq(weft_result(f[2], &b), -EBADMSG);
	weft_release(r);
	weft_release(ok);
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(store, ready_tasks_have_spilled_inputs_read_back_ahead, .timeout = 60)
{
	struct weft_future *f[N], *r[N];
	struct weft_client *c = make_blocks(f, NULL);
	struct weft__engine *eng = weft__client_engine(c);
	struct weft_stats st = { .size = sizeof(st) };
	int spilled[N], nspilled = 0;
	uint64_t off;

	/* Keep ten blocks that are on disk; release everything else, making room. */
	for (int i = 0; i < N; i++)
		if (nspilled < 10 && weft__store_on_disk(eng, f[i], &off))
			spilled[nspilled++] = i;
	cr_assert_eq(nspilled, 10);
	for (int i = 0, k = 0; i < N; i++) {
		if (k < nspilled && spilled[k] == i) {
			k++;
			continue;
		}
		weft_release(f[i]);
	}
	for (int k = 0; k < nspilled; k++)
		cr_assert_eq(weft_submit(c, first_byte, &f[spilled[k]], 1, NULL, 0, NULL, &r[k]),
			     0);
	for (int k = 0; k < nspilled; k++) {
		struct weft_buf b;

		cr_assert_eq(weft_result(r[k], &b), 0);
		cr_assert_eq(*(const unsigned char *)b.data, (unsigned char)spilled[k]);
	}
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_gt(st.prefetched_results, 0, "no input was read back ahead of its task");
	cr_assert_geq(st.restored_results, (uint64_t)nspilled);
	for (int k = 0; k < nspilled; k++) {
		weft_release(r[k]);
		weft_release(f[spilled[k]]);
	}
	cr_assert_eq(weft_client_close(c), 0);
}
