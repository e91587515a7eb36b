// SPDX-License-Identifier: MIT
/*
 * What the scheduler keeps of its workers' RECORDs (sched/views.c): labels summed
 * over workers with their run-time buckets (many labels at once: the table grows
 * while a RECORD is read), figures replaced whole by a later RECORD, events moved
 * onto the scheduler's clock and filtered by end, transfers named by worker.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "events.h"
#include "views.h"

#define NL 40

static char names[NL][16];

/* A RECORD of NL labels, label k with count k + @base and a bucket k % 48. */
static void record(struct weft__views *v, uint32_t id, const char *worker, uint64_t base)
{
	struct weft__plabel labels[NL];
	struct weft__pbucket buckets[NL];
	struct weft__pevent ev[2];
	struct weft__ptransfer x = { 1, 4096, 1000, 2000 };
	struct timespec mono, real;
	struct weft__op_record r = { 0 };

	for (int k = 0; k < NL; k++) {
		snprintf(names[k], sizeof(names[k]), "label%02d", k);
		labels[k] = (struct weft__plabel){ weft__pbytes_of(names[k], strlen(names[k])),
						   k + base, 0, 10 * (k + base) };
		buckets[k] = (struct weft__pbucket){ (uint32_t)k, (uint32_t)(k % WEFT_PROTO_HIST),
						     k + base };
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	r.mono_ns = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
	r.real_ns = (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
	ev[0] = (struct weft__pevent){ 0, weft__pbytes_of("a", 1), r.mono_ns - 2000, r.mono_ns - 1000,
				       8, 1, 1 };
	ev[1] = (struct weft__pevent){ 1, weft__pbytes_of("b", 1), r.mono_ns - 500, r.mono_ns, 0,
				       1, 2 };
	r.labels = (struct weft__plist){ .n = NL, .items = labels };
	r.buckets = (struct weft__plist){ .n = NL, .items = buckets };
	r.events = (struct weft__plist){ .n = 2, .items = ev };
	r.transfers = (struct weft__plist){ .n = id == 2, .items = &x };
	r.bytes_in = id == 2 ? 4096 : 0;
	{
		/* Through the wire, as the scheduler gets it: lists decoded, not arrays. */
		static uint8_t buf[WEFT_PROTO_MAX_MSG];
		struct weft__msg_out o;
		struct weft__op_iter it;
		struct weft__op_record d;
		struct weft__msg m;
		uint16_t type;
		uint32_t len;

		weft__msg_begin(&o, buf, WEFT_MSG_OPS);
		cr_assert_eq(weft__msg_add(&o, WEFT_OP_RECORD, &r), 0);
		len = weft__msg_end(&o, 1);
		cr_assert_eq(weft__msg_open(buf, len, 1, &m), 0);
		weft__op_iter_init(&it, &m);
		cr_assert_eq(weft__op_next(&it, &type, &d), 1);
		weft__views_record(v, id, worker, &d);
	}
}

Test(views, records_of_two_workers_are_summed_and_replaced_whole)
{
	struct weft__views *v = weft__views_new();
	struct weft__view_snap s = { 0 };
	const struct weft__view_label *l = NULL;

	cr_assert_not_null(v);
	record(v, 1, "w0", 0);
	record(v, 2, "w1", 100);
	record(v, 1, "w0", 1);		/* w0's figures again, whole: count k + 1 */
	cr_assert_eq(weft__view_snap_alloc(&s, VIEW_NEED_ALL, 64), 0);
	weft__views_fill(v, &s);
	cr_assert_eq(s.nlabels, NL);
	for (int k = 0; k < NL; k++) {
		l = NULL;
		for (unsigned i = 0; i < s.nlabels; i++)
			if (!strcmp(s.labels[i].label, names[k]))
				l = &s.labels[i];
		cr_assert_not_null(l, "%s", names[k]);
		cr_assert_eq(l->count, (uint64_t)(k + 1) + (uint64_t)(k + 100));
		cr_assert_eq(l->hist[k % WEFT_PROTO_HIST], (uint64_t)(k + 1) + (uint64_t)(k + 100),
			     "%s's bucket", names[k]);
	}
	/* Six events, on our clock: they ended before now. */
	cr_assert_eq(s.nevents, 6);
	for (unsigned i = 0; i < s.nevents; i++) {
		cr_assert_leq(s.events[i].end_ns, (uint64_t)weft__mono_ns() + 1000000);
		cr_assert_not_null(s.events[i].worker);
	}
	cr_assert_eq(s.ntransfers, 1);
	cr_assert_str_eq(s.transfers[0].from, "w0");
	cr_assert_str_eq(s.transfers[0].to, "w1");
	weft__view_snap_free(&s);
	/* Since the last end: nothing. */
	cr_assert_eq(weft__view_snap_alloc(&s, VIEW_NEED_EVENTS, 64), 0);
	s.since_ns = (uint64_t)weft__mono_ns() + 5000000000ull;
	weft__views_fill(v, &s);
	cr_assert_eq(s.nevents, 0);
	weft__view_snap_free(&s);
	weft__views_free(v);
}
