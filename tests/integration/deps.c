// SPDX-License-Identifier: MIT
/* Dependencies, multi-output tasks, and how long results live. */
#include <pthread.h>

#include "../common.h"

Test(deps, chain_passes_results_along, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *f = submit_u64(c, sum, NULL, 0, 1), *next;

	for (int i = 0; i < 1000; i++) {
		next = submit_u64(c, sum, &f, 1, 1);
		weft_release(f);
		f = next;
	}
	cr_assert_eq(result_u64(f), 1001);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(deps, diamond_and_repeated_dependency, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *a = submit_u64(c, sum, NULL, 0, 10);
	struct weft_future *b = submit_u64(c, sum, &a, 1, 1);	/* 11 */
	struct weft_future *d = submit_u64(c, sum, &a, 1, 2);	/* 12 */
	struct weft_future *deps[] = { b, d, a, a };
	struct weft_future *e = submit_u64(c, sum, deps, 4, 0);

	cr_assert_eq(result_u64(e), 11 + 12 + 10 + 10);
	weft_release(a);
	weft_release(b);
	weft_release(d);
	weft_release(e);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(deps, dependency_already_finished, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *a = submit_u64(c, sum, NULL, 0, 5), *b;

	cr_assert_eq(weft_wait(a, -1), 0);
	b = submit_u64(c, sum, &a, 1, 1);
	cr_assert_eq(result_u64(b), 6);
	weft_release(a);
	weft_release(b);
	cr_assert_eq(weft_client_close(c), 0);
}

static void spin_us(long us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* A link on @prev, cancelled at once: it ends cancelled, or ran before it could be. */
static void cancel_one_link(struct weft_client *c, struct weft_future *prev)
{
	struct weft_future *link = submit_u64(c, sum, &prev, 1, 1);
	int rc = weft_cancel(link);

	if (rc == 0) {
		cr_assert_eq(weft_wait(link, -1), -ECANCELED);
	} else {
		cr_assert(rc == -EBUSY || rc == -EALREADY, "cancel: %d", rc);
		cr_assert_eq(result_u64(link), result_u64(prev) + 1);
	}
	weft_release(link);
}

/*
 * A link queued on a task in every state a client can meet it in: running,
 * ended just now, ended with a plain task run since, ended a while ago, and
 * cancelled as it is queued. Each kept link adds 1; a cancelled one is followed
 * by a link on the same task.
 */
Test(deps, links_queued_on_a_task_in_every_state, .timeout = 60)
{
	for (unsigned threads = 1; threads <= 2; threads++) {
		struct weft_client *c = open_threads(threads);
		struct weft_future *root = submit_u64(c, sum, NULL, 0, 0);
		struct weft_future *prev = submit_u64(c, sum, &root, 1, 0), *next, *plain;
		/* On a cluster each wait is a round trip: fewer links say as much. */
		long n = stress_scaled(on_cluster() ? 2000 : 20000), want = 0;

		for (long i = 0; i < n; i++) {
			switch (i % 5) {
			case 0:		/* queued on a task that may be running */
				break;
			case 1:		/* right after its end is seen */
				cr_assert_eq(weft_wait(prev, -1), 0);
				break;
			case 2:		/* with a plain task run since */
				cr_assert_eq(weft_wait(prev, -1), 0);
				plain = submit_u64(c, sum, NULL, 0, 7);
				cr_assert_eq(result_u64(plain), 7);
				weft_release(plain);
				break;
			case 3:		/* a while after its end */
				cr_assert_eq(weft_wait(prev, -1), 0);
				spin_us(200);
				break;
			case 4:		/* cancelled as it is queued */
				cr_assert_eq(weft_wait(prev, -1), 0);
				cancel_one_link(c, prev);
				break;
			}
			next = submit_u64(c, sum, &prev, 1, 1);
			want++;
			weft_release(prev);
			prev = next;
		}
		cr_assert_eq(result_u64(prev), (uint64_t)want);
		weft_release(prev);
		weft_release(root);
		cr_assert_eq(weft_client_close(c), 0);
	}
}

/* Its argument back, whatever its input (the gate gives none). */
TASK(own_arg)
{
	uint64_t v;

	memcpy(&v, arg, sizeof(v));
	return put_u64(ctx, v);
}

static void *wait_on(void *arg)
{
	return (void *)(intptr_t)weft_wait(arg, -1);
}

/*
 * A task's state, the mark of a sleeping waiter and its dependents' edges share
 * one word: none may lose another. A thread sleeps on a task that is held running
 * while dependents are queued on it, before and after the sleeper marked it; when
 * it ends, the sleeper must wake and every dependent run.
 */
Test(deps, a_sleeping_waiter_and_queued_dependents_on_one_task, .timeout = 60)
{
	struct weft_client *c;

	EMBEDDED_ONLY("its tasks wait on a flag in the test's process");
	c = open_threads(2);
	for (int round = 0; round < 20; round++) {
		struct weft_future *g, *d[64];
		pthread_t th;
		void *rc;

		atomic_store(&gate_open, 0);
		g = submit_u64(c, gate, NULL, 0, 0);
		for (int i = 0; i < 32; i++)
			d[i] = submit_u64(c, own_arg, &g, 1, i);
		cr_assert_eq(pthread_create(&th, NULL, wait_on, g), 0);
		/* Inside the waiter's spin, or long past it, when it sleeps marked. */
		if (round % 2)
			nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
		else
			spin_us(20);
		for (int i = 32; i < 64; i++)
			d[i] = submit_u64(c, own_arg, &g, 1, i);
		atomic_store(&gate_open, 1);
		cr_assert_eq(pthread_join(th, &rc), 0);
		cr_assert_eq((intptr_t)rc, 0);
		for (int i = 0; i < 64; i++) {
			cr_assert_eq(result_u64(d[i]), (uint64_t)i);
			weft_release(d[i]);
		}
		weft_release(g);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

/* A client that closes as soon as its chain has ended: no hang, no leak. */
Test(deps, close_right_after_a_chain_ends, .timeout = 30)
{
	/* A cluster's client connects anew each round (about 0.1 s: fewer rounds). */
	for (int round = 0; round < (on_cluster() ? 20 : 200); round++) {
		struct weft_client *c = open_threads(1 + round % 2);
		struct weft_future *a = submit_u64(c, sum, NULL, 0, 1);
		struct weft_future *b = submit_u64(c, sum, &a, 1, 1);

		cr_assert_eq(result_u64(b), 2);
		weft_release(a);
		weft_release(b);
		cr_assert_eq(weft_client_close(c), 0);
	}
}

/* Splits its argument's value into n outputs: output i holds value + i. */
TASK(split)
{
	uint64_t v;
	unsigned n = 4;

	memcpy(&v, arg, sizeof(v));
	for (unsigned i = 0; i < n; i++) {
		uint64_t *o = weft_output_n(ctx, i, sizeof(*o));

		if (!o)
			return weft_fail(ctx, "output %u", i);
		*o = v + i;
	}
	if (weft_output_n(ctx, n, 8))
		return weft_fail(ctx, "output %u of %u exists", n, n);
	return 0;
}

Test(deps, multi_output_feeds_dependents_separately, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = 4 };
	struct weft_future *parts[4], *d[4];
	uint64_t v = 100;

	cr_assert_eq(weft_submit(c, split, NULL, 0, &v, sizeof(v), &o, parts), 0);
	for (int i = 0; i < 4; i++)
		d[i] = submit_u64(c, sum, &parts[i], 1, 1000);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(result_u64(d[i]), 1100 + i);
		cr_assert_eq(result_u64(parts[i]), 100 + i);
	}
	/* Releasing some outputs keeps the others. */
	weft_release(parts[0]);
	weft_release(parts[2]);
	cr_assert_eq(result_u64(parts[3]), 103);
	weft_release(parts[1]);
	weft_release(parts[3]);
	for (int i = 0; i < 4; i++)
		weft_release(d[i]);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(blob)
{
	uint64_t n;
	unsigned char *p;

	memcpy(&n, arg, sizeof(n));
	p = weft_output(ctx, n);
	if (!p)
		return weft_fail(ctx, "no memory");
	for (uint64_t i = 0; i < n; i++)
		p[i] = (unsigned char)i;
	/* Replacing the output frees the first buffer. */
	p = weft_output(ctx, n);
	for (uint64_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7);
	return 0;
}

TASK(check_blob)
{
	for (size_t i = 0; i < in[0].len; i++)
		if (((const unsigned char *)in[0].data)[i] != (unsigned char)(i * 7))
			return weft_fail(ctx, "byte %zu", i);
	return put_u64(ctx, in[0].len);
}

TASK(check_len)
{
	return put_u64(ctx, in[0].len);
}

Test(deps, result_lives_while_a_future_or_dependent_refers_to_it, .timeout = 20)
{
	struct weft_future *b, *chk, *late;
	struct weft_client *c;
	size_t held;

	EMBEDDED_ONLY("the engine's memory accounting");
	c = open_threads(2);
	cr_assert_eq(mem_bytes(c), 0);
	b = submit_u64(c, blob, NULL, 0, 1 << 20);
	cr_assert_eq(weft_wait(b, -1), 0);
	held = mem_bytes(c);
	cr_assert_geq(held, 1 << 20);
	cr_assert_lt(held, 2 << 20, "the replaced buffer was freed");
	chk = submit_u64(c, check_blob, &b, 1, 0);
	cr_assert_eq(result_u64(chk), 1 << 20);
	cr_assert_eq(mem_bytes(c), held, "still referenced by the future");
	late = submit_u64(c, check_blob, &b, 1, 0);
	weft_release(b);	/* the pending dependent keeps it */
	cr_assert_eq(result_u64(late), 1 << 20);
	weft_release(late);
	weft_release(chk);
	/* The last reference went with the dependent, on a worker thread. */
	for (int i = 0; i < 1000000 && mem_bytes(c); i++)
		;
	cr_assert_eq(mem_bytes(c), 0);
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(blobs)
{
	uint64_t n;

	memcpy(&n, arg, sizeof(n));
	for (unsigned i = 0; i < 4; i++) {
		unsigned char *p = weft_output_n(ctx, i, n);

		if (!p)
			return weft_fail(ctx, "no memory");
		memset(p, 7 * i, n);
	}
	return 0;
}

static void await_bytes(struct weft_client *c, size_t want)
{
	/* The last reference may go on a worker thread, just after an end is seen. */
	for (int i = 0; i < 1000000 && mem_bytes(c) != want; i++)
		;
	cr_assert_eq(mem_bytes(c), want);
}

/* Each output of a multi-output task is freed once nothing refers to it alone. */
Test(deps, each_output_is_freed_when_nothing_refers_to_it, .timeout = 20)
{
	struct weft_task_opts o = { .size = sizeof(o), .noutputs = 4 };
	struct weft_future *out[4], *use0;
	struct weft_client *c;
	size_t one;

	EMBEDDED_ONLY("the engine's memory accounting");
	c = open_threads(2);
	cr_assert_eq(weft_submit(c, blobs, NULL, 0, &(uint64_t){ 1 << 20 }, 8, &o, out), 0);
	cr_assert_eq(weft_wait(out[0], -1), 0);
	one = mem_bytes(c) / 4;
	cr_assert_geq(one, 1 << 20);
	use0 = submit_u64(c, check_len, &out[0], 1, 0);
	weft_release(out[0]);		/* the dependent still holds output 0 */
	cr_assert_eq(result_u64(use0), 1 << 20);
	weft_release(use0);
	await_bytes(c, 3 * one);
	weft_release(out[2]);
	await_bytes(c, 2 * one);
	weft_release(out[3]);
	await_bytes(c, one);
	weft_release(out[1]);
	await_bytes(c, 0);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(deps, small_results_take_no_memory, .timeout = 20)
{
	struct weft_client *c = open_threads(2);
	struct weft_future *f[100];

	for (int i = 0; i < 100; i++)
		f[i] = submit_u64(c, sum, NULL, 0, i);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(result_u64(f[i]), i);
	if (!on_cluster())	/* a cluster's total has the other clients' results */
		cr_assert_eq(mem_bytes(c), 0, "8-byte results are stored inline");
	for (int i = 0; i < 100; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(deps, fan_out_fan_in, .timeout = 60)
{
	/* Sanitized: 10k, still ten messages' worth of dependencies on a cluster. */
	const int n = (int)stress_scaled(100000);
	struct weft_future *root, **mid, *tail;
	struct weft_client *c;

	c = open_threads(2);
	root = submit_u64(c, sum, NULL, 0, 1);
	mid = malloc(n * sizeof(*mid));
	for (int i = 0; i < n; i++)
		mid[i] = submit_u64(c, sum, &root, 1, 0);
	tail = submit_u64(c, sum, mid, n, 0);
	cr_assert_eq(result_u64(tail), n);
	for (int i = 0; i < n; i++)
		weft_release(mid[i]);
	free(mid);
	weft_release(root);
	weft_release(tail);
	cr_assert_eq(weft_client_close(c), 0);
}

/* Its argument's length, once every byte is checked to be i * 7. */
TASK(check_arg)
{
	for (size_t i = 0; i < arglen; i++)
		if (((const unsigned char *)arg)[i] != (unsigned char)(i * 7))
			return weft_fail(ctx, "argument byte %zu", i);
	return put_u64(ctx, arglen);
}

Test(deps, large_argument_is_copied, .timeout = 30)
{
	struct weft_client *c = open_threads(1);
	/* Small, and larger than a message between processes of a cluster. */
	size_t sizes[] = { 1000, 4u << 20 };

	for (int k = 0; k < 2; k++) {
		unsigned char *big = malloc(sizes[k]);
		struct weft_future *f;

		for (size_t i = 0; i < sizes[k]; i++)
			big[i] = (unsigned char)(i * 7);
		cr_assert_eq(weft_submit(c, check_arg, NULL, 0, big, sizes[k], NULL, &f), 0);
		memset(big, 0, sizes[k]);	/* the task has its own copy */
		free(big);
		cr_assert_eq(result_u64(f), sizes[k], "%s", weft_future_error(f));
		weft_release(f);
	}
	cr_assert_eq(weft_client_close(c), 0);
}

TASK(empty_then_fail_twice)
{
	uint64_t which;

	memcpy(&which, arg, 8);
	if (weft_output(ctx, 0))
		return weft_fail(ctx, "an empty output has no buffer");
	if (which)
		return put_u64(ctx, 5);
	weft_fail(ctx, "first");
	return weft_fail(ctx, "second");	/* the last message wins */
}

Test(deps, empty_output_and_repeated_fail, .timeout = 10)
{
	struct weft_client *c = open_threads(1);
	struct weft_task_opts o = { .size = sizeof(o), .label = "e" };
	struct weft_future *ok, *bad, *none;
	struct weft_buf b;
	uint64_t one = 1, zero = 0;

	cr_assert_eq(weft_submit(c, empty_then_fail_twice, NULL, 0, &one, 8, &o, &ok), 0);
	cr_assert_eq(weft_submit(c, empty_then_fail_twice, NULL, 0, &zero, 8, &o, &bad), 0);
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &none), 0);
	cr_assert_eq(result_u64(ok), 5);
	cr_assert_eq(weft_wait(bad, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(bad), "task 'e' failed: second");
	cr_assert_eq(weft_result(none, &b), 0);
	cr_assert_eq(b.len, 0, "a task that writes no output has an empty result");
	cr_assert_null(b.data);
	weft_release(ok);
	weft_release(bad);
	weft_release(none);
	cr_assert_eq(weft_client_close(c), 0);
}
