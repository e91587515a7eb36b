// SPDX-License-Identifier: MIT
/*
 * The inbox under many producers: client threads that submit in bursts and pauses,
 * so that the queue fills, drains and refills while workers park and wake. Every
 * wait is bounded: a task lost in the queue fails the test instead of hanging it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../common.h"

#define PRODUCERS 4
#define WAIT_NS (5LL * 1000000000)	/* far beyond any task here */

static _Atomic long ran;

TASK(bump)
{
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	return 0;
}

/* Each producer's own generator: under TSan, rand_r is tests/tsan-boxfort.c's. */
static unsigned next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (unsigned)(*s >> 32);
}

struct producer {
	struct weft_client *c;
	long n;
	uint64_t seed;
	long lost;			/* waits that timed out or failed */
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct weft_future *f[64];

	for (long done = 0; done < p->n;) {
		long burst = 1 + next_rand(&p->seed) % 64, i;

		if (burst > p->n - done)
			burst = p->n - done;
		for (i = 0; i < burst; i++)
			if (weft_submit(p->c, bump, NULL, 0, NULL, 0, NULL, &f[i]))
				break;
		for (long j = 0; j < i; j++) {
			if (weft_wait(f[j], WAIT_NS))
				p->lost++;
			weft_release(f[j]);
		}
		p->lost += burst - i;
		done += burst;
		/* A pause long enough, now and then, for the workers to park. */
		if (next_rand(&p->seed) % 16 == 0) {
			struct timespec ts = { 0, (next_rand(&p->seed) % 200) * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void producers_on(unsigned nthreads)
{
	struct weft_client *c = open_threads(nthreads);
	struct producer p[PRODUCERS];
	pthread_t th[PRODUCERS];
	long n = stress_scaled(200000);

	atomic_store(&ran, 0);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct producer){ .c = c, .n = n, .seed = 0x9e3779b97f4a7c15ull * (i + 1) + nthreads };
		cr_assert_eq(pthread_create(&th[i], NULL, produce, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		cr_assert_eq(pthread_join(th[i], NULL), 0);
		cr_assert_eq(p[i].lost, 0, "producer %d: %ld tasks lost", i, p[i].lost);
	}
	cr_assert_eq(atomic_load(&ran), PRODUCERS * n);
	cr_assert_eq(weft_client_close(c), 0);
}

/*
 * Pairs of tasks from one thread, each pair waited: the second often arrives just
 * as the worker takes the first, the last in the queue. If that race lost the
 * pair, nothing else would come along to find it.
 */
Test(inbox, pairs_that_race_the_drain, .timeout = 300)
{
	for (unsigned nthreads = 1; nthreads <= 2; nthreads++) {
		struct weft_client *c = open_threads(nthreads);
		long n = stress_scaled(300000);

		for (long i = 0; i < n; i++) {
			struct weft_future *a, *b;

			cr_assert_eq(weft_submit(c, bump, NULL, 0, NULL, 0, NULL, &a), 0);
			cr_assert_eq(weft_submit(c, bump, NULL, 0, NULL, 0, NULL, &b), 0);
			cr_assert_eq(weft_wait(b, WAIT_NS), 0, "pair %ld lost (%u threads)", i,
				     nthreads);
			cr_assert_eq(weft_wait(a, WAIT_NS), 0);
			weft_release(a);
			weft_release(b);
		}
		cr_assert_eq(weft_client_close(c), 0);
	}
}

Test(inbox, many_producers_one_thread, .timeout = 300)
{
	producers_on(1);
}

Test(inbox, many_producers_two_threads, .timeout = 300)
{
	producers_on(2);
}
