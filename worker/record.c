// SPDX-License-Identifier: MIT
/*
 * record.c - what the worker's engine recorded (core/events.h), to the scheduler
 * with each heartbeat as a RECORD: the labels whose figures changed since the last
 * (whole figures, so that a lost RECORD loses nothing for good), the tasks recorded
 * since (the latest WEFT_PROTO_MAX_EVENTS at most), and the inputs read from other
 * workers. All of it on the fabric thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define TRANSFERS_MAX 4096		/* kept between two RECORDs; more are dropped */

void weft__wrt_record_transfer(struct weft__wrt *w, uint32_t from, uint64_t bytes,
			       int64_t start_ns, int64_t end_ns)
{
	struct wrt_record *r = &w->rec;

	r->bytes_in += bytes;
	if (r->nxfers == TRANSFERS_MAX) {
		r->xfers_dropped++;
		return;
	}
	if (!r->xfers && !(r->xfers = malloc(TRANSFERS_MAX * sizeof(*r->xfers))))
		return;
	r->xfers[r->nxfers++] = (struct weft__ptransfer){ from, bytes, (uint64_t)start_ns,
							  (uint64_t)end_ns };
}

/* The last figures sent of @label: its slot, a new one if none (NULL: no room). */
static struct sent_label *sent_of(struct wrt_record *r, const char *label)
{
	for (unsigned i = 0; i < r->nsent; i++)
		if (r->sent[i].label == label)
			return &r->sent[i];
	if (r->nsent == VIEW_LABELS_MAX)
		return NULL;
	r->sent[r->nsent] = (struct sent_label){ .label = label };
	return &r->sent[r->nsent++];
}

void weft__wrt_record_send(struct weft__wrt *w)
{
	struct wrt_record *r = &w->rec;
	unsigned nthreads = w->eng->nthreads, per = WEFT_PROTO_MAX_EVENTS / (nthreads ?: 1);
	struct weft__view_snap s = { 0 };
	struct weft__view_event *ev = NULL;
	struct weft__plabel *labels = NULL;
	struct weft__pbucket *buckets = NULL;
	struct weft__pevent *events = NULL;
	struct weft__op_record op = { 0 };
	struct timespec mono, real;
	unsigned nl = 0, nb = 0, ne = 0;

	if (!w->sched)
		return;
	if (!r->seen && !(r->seen = calloc(nthreads, sizeof(*r->seen))))
		return;
	if (!r->sent && !(r->sent = calloc(VIEW_LABELS_MAX, sizeof(*r->sent))))
		return;
	if (weft__view_snap_alloc(&s, 0, 0))
		return;
	weft__engine_snap(w->eng, &s);
	labels = calloc(s.nlabels ?: 1, sizeof(*labels));
	buckets = calloc((size_t)(s.nlabels ?: 1) * WEFT_PROTO_HIST, sizeof(*buckets));
	ev = calloc((size_t)per * nthreads ?: 1, sizeof(*ev));
	events = calloc((size_t)per * nthreads ?: 1, sizeof(*events));
	if (!labels || !buckets || !ev || !events)
		goto out;
	for (unsigned i = 0; i < s.nlabels; i++) {
		const struct weft__view_label *l = &s.labels[i];
		struct sent_label *sl = sent_of(r, l->label);

		if (!sl || (sl->count == l->count && sl->failed == l->failed && sl->sent))
			continue;
		sl->count = l->count;
		sl->failed = l->failed;
		sl->sent = true;
		for (unsigned b = 0; b < VIEW_HIST && b < WEFT_PROTO_HIST; b++)
			if (l->hist[b])
				buckets[nb++] = (struct weft__pbucket){ nl, b, l->hist[b] };
		labels[nl++] = (struct weft__plabel){
			.label = weft__pbytes_of(l->label, strnlen(l->label, WEFT_PROTO_MAX_NAME)),
			.count = l->count, .failed = l->failed, .total_ns = l->total_ns };
	}
	ne = weft__engine_events_since(w->eng, r->seen, ev, per);
	for (unsigned i = 0; i < ne; i++) {
		const char *label = ev[i].label && *ev[i].label ? ev[i].label : "?";

		events[i] = (struct weft__pevent){
			.thread = ev[i].thread,
			.label = weft__pbytes_of(label, strnlen(label, WEFT_PROTO_MAX_NAME)),
			.start_ns = ev[i].start_ns, .end_ns = ev[i].end_ns, .bytes = ev[i].bytes,
			.weight = ev[i].weight, .outcome = (uint8_t)ev[i].outcome };
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	op.mono_ns = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
	op.real_ns = (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
	op.labels = (struct weft__plist){ .n = nl, .items = labels };
	op.buckets = (struct weft__plist){ .n = nb, .items = buckets };
	op.events = (struct weft__plist){ .n = ne, .items = events };
	op.transfers = (struct weft__plist){ .n = r->nxfers, .items = r->xfers };
	op.bytes_in = r->bytes_in;
	op.bytes_out = r->bytes_out;
	weft__wrt_send_sched(w, WEFT_OP_RECORD, &op);
	r->nxfers = 0;
out:
	free(labels);
	free(buckets);
	free(ev);
	free(events);
	weft__view_snap_free(&s);
}

void weft__wrt_record_free(struct weft__wrt *w)
{
	free(w->rec.seen);
	free(w->rec.sent);
	free(w->rec.xfers);
	memset(&w->rec, 0, sizeof(w->rec));
}
