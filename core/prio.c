// SPDX-License-Identifier: MIT
/*
 * prio.c - the priority heap: ready tasks whose priority is not 0, ordered by
 * priority (higher first), then by submission (seq, older first), under prio_lock.
 * Workers look at it before their deques when its top is above 0, after them else.
 */
#include <errno.h>
#include <stdlib.h>

#include "core.h"

static bool prio_before(const struct weft_task *a, const struct weft_task *b)
{
	return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

static void prio_publish(struct weft__engine *eng)
{
	if (eng->prio_len)
		atomic_store_explicit(&eng->prio_top, eng->prio[0]->priority,
				      memory_order_relaxed);
	/* seq_cst: the heap is one of the queues idle threads re-check before parking. */
	atomic_store_explicit(&eng->prio_count, (uint32_t)eng->prio_len,
			      memory_order_seq_cst);
}

int weft__prio_push(struct weft__engine *eng, struct weft_task *t)
{
	size_t i;

	pthread_mutex_lock(&eng->prio_lock);
	if (eng->prio_len == eng->prio_cap) {
		size_t cap = eng->prio_cap ? 2 * eng->prio_cap : 64;
		struct weft_task **p = realloc(eng->prio, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&eng->prio_lock);
			return -ENOMEM;
		}
		eng->prio = p;
		eng->prio_cap = cap;
	}
	t->seq = eng->prio_seq++;
	for (i = eng->prio_len++; i && prio_before(t, eng->prio[(i - 1) / 2]);
	     i = (i - 1) / 2)
		eng->prio[i] = eng->prio[(i - 1) / 2];
	eng->prio[i] = t;
	prio_publish(eng);
	pthread_mutex_unlock(&eng->prio_lock);
	return 0;
}

/* @positive_only: take the top only if its priority is above the deques' 0. */
struct weft_task *weft__prio_pop(struct weft__engine *eng, bool positive_only)
{
	struct weft_task *top = NULL, *last;
	size_t i, child, n;

	pthread_mutex_lock(&eng->prio_lock);
	if (!eng->prio_len || (positive_only && eng->prio[0]->priority <= 0))
		goto out_unlock;
	top = eng->prio[0];
	n = --eng->prio_len;
	last = eng->prio[n];
	for (i = 0; (child = 2 * i + 1) < n; i = child) {
		if (child + 1 < n && prio_before(eng->prio[child + 1], eng->prio[child]))
			child++;
		if (!prio_before(eng->prio[child], last))
			break;
		eng->prio[i] = eng->prio[child];
	}
	if (n)
		eng->prio[i] = last;
	prio_publish(eng);
out_unlock:
	pthread_mutex_unlock(&eng->prio_lock);
	return top;
}
