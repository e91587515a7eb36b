// SPDX-License-Identifier: MIT
/*
 * Unit tests of watched tasks (weft__submit_watched): the engine's end hook hears
 * each one's end once, whatever the end: done, failed, failed with a dependency,
 * cancelled; and never of a task that is not watched.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define MAX_ENDS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct { struct weft_future *f; uint32_t final; } ends[MAX_ENDS];
static int nends;

static void hook(void *arg, struct weft_future *f, uint32_t final)
{
	cr_assert_eq(arg, (void *)&ends);
	pthread_mutex_lock(&lock);
	if (nends < MAX_ENDS)
		ends[nends] = (typeof(ends[0])){ f, final };
	nends++;
	pthread_mutex_unlock(&lock);
}

/*
 * The end the hook heard of @h, or 0; and how many times. The hook runs after the
 * final state is published, so a wait may return first: look again for a while.
 */
static uint32_t heard_now(struct weft_future *h, int *times);

static uint32_t heard(struct weft_future *h, int *times)
{
	uint32_t final = 0;

	for (int i = 0; i < 1000 && !(final = heard_now(h, times)); i++)
		usleep(1000);
	return final;
}

static uint32_t heard_now(struct weft_future *h, int *times)
{
	uint32_t final = 0;

	*times = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nends && i < MAX_ENDS; i++)
		if (ends[i].f == weft__handle_addr(h)) {
			final = ends[i].final;
			++*times;
		}
	pthread_mutex_unlock(&lock);
	return final;
}

static int ok(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
	      size_t arglen)
{
	return 0;
}

static int fail(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	return weft_fail(ctx, "no");
}

static _Atomic int gate;

static int held(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	while (!atomic_load(&gate))
		;
	return 0;
}

Test(watch, the_hook_hears_every_end_once, .timeout = 30)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 1 };
	struct weft_future *a, *b, *c, *d, *plain, *block, *e;
	struct weft_client *cl;
	int times;

	cr_assert_eq(weft_client_open(NULL, &o, &cl), 0);
	cr_assert_eq(weft__submit_watched(cl, ok, NULL, 0, NULL, 0, NULL, &a), -EINVAL,
		     "no hook set");
	weft__engine_set_end_hook(weft__client_engine(cl), hook, &ends);
	/* The one thread is held, so that e can be cancelled before it starts. */
	cr_assert_eq(weft_submit(cl, held, NULL, 0, NULL, 0, NULL, &block), 0);
	cr_assert_eq(weft__submit_watched(cl, ok, NULL, 0, NULL, 0, NULL, &a), 0);
	cr_assert_eq(weft__submit_watched(cl, fail, NULL, 0, NULL, 0, NULL, &b), 0);
	cr_assert_eq(weft__submit_watched(cl, ok, &b, 1, NULL, 0, NULL, &c), 0);
	cr_assert_eq(weft_submit(cl, ok, NULL, 0, NULL, 0, NULL, &plain), 0);
	cr_assert_eq(weft__submit_watched(cl, ok, NULL, 0, NULL, 0, NULL, &e), 0);
	cr_assert_eq(weft_cancel(e), 0);
	atomic_store(&gate, 1);
	cr_assert_eq(weft_wait(a, -1), 0);
	cr_assert_eq(weft_wait(b, -1), WEFT_ETASK);
	cr_assert_eq(weft_wait(c, -1), WEFT_ETASK);
	cr_assert_eq(weft_wait(plain, -1), 0);
	cr_assert_eq(weft_wait(e, -1), -ECANCELED);
	cr_assert_eq(heard(a, &times), WT_DONE);
	cr_assert_eq(times, 1);
	cr_assert_eq(heard(b, &times), WT_FAILED);
	cr_assert_eq(times, 1);
	cr_assert_eq(heard(c, &times), WT_FAILED, "failed with its dependency");
	cr_assert_eq(times, 1);
	cr_assert_eq(heard(e, &times), WT_CANCELLED);
	cr_assert_eq(times, 1);
	heard_now(plain, &times);
	cr_assert_eq(times, 0, "a task not watched is not heard of");
	heard_now(block, &times);
	cr_assert_eq(times, 0);
	/* A watched task with dependencies, a record reused after: no stale watch. */
	cr_assert_eq(weft__submit_watched(cl, ok, &a, 1, NULL, 0, NULL, &d), 0);
	cr_assert_eq(weft_wait(d, -1), 0);
	cr_assert_eq(heard(d, &times), WT_DONE);
	for (struct weft_future **f = (struct weft_future *[]){ a, b, c, d, e, plain, block };
	     *f != block; f++)
		weft_release(*f);
	weft_release(block);
	cr_assert_eq(weft_submit(cl, ok, NULL, 0, NULL, 0, NULL, &plain), 0);
	cr_assert_eq(weft_wait(plain, -1), 0);
	usleep(10000);		/* time for a hook that would come */
	heard_now(plain, &times);
	cr_assert_eq(times, 0, "a reused record is not watched");
	weft_release(plain);
	cr_assert_eq(weft_client_close(cl), 0);
}
