// SPDX-License-Identifier: MIT
/*
 * views.c - the cluster's recorded tasks and figures, as the workers send them
 * (views.h). A worker's clock is not ours: a RECORD carries both of its clocks, and
 * its times are moved onto ours through the wall clock (machines kept in step by
 * NTP agree to a millisecond or so; the task stream is drawn at that scale).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "map.h"
#include "samples.h"
#include "views.h"

/* A label's figures on one worker. */
struct wlabel {
	const char *label;		/* interned */
	uint64_t count, failed, total_ns;
	uint64_t hist[VIEW_HIST];
};

struct vworker {
	const char *name;		/* interned */
	struct wlabel *labels;
	unsigned nlabels, cap;
	uint64_t bytes_in, bytes_out;
};

struct weft__views {
	struct weft__map workers;	/* id -> vworker (kept after it leaves: its
					 * tasks ran) */
	struct weft__view_event *ring;	/* VIEWS_EVENTS, by end of arrival */
	uint64_t head;
	struct weft__view_transfer *xfers;	/* VIEW_TRANSFERS_MAX */
	uint64_t xhead;
	struct weft__samples samples;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct weft__views *weft__views_new(void)
{
	struct weft__views *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->ring = calloc(VIEWS_EVENTS, sizeof(*v->ring));
	v->xfers = calloc(VIEW_TRANSFERS_MAX, sizeof(*v->xfers));
	if (!v->ring || !v->xfers) {
		weft__views_free(v);
		return NULL;
	}
	weft__samples_init(&v->samples);
	return v;
}

void weft__views_free(struct weft__views *v)
{
	size_t i = 0;
	uint64_t id;
	void *p;

	if (!v)
		return;
	while (weft__map_next(&v->workers, &i, &id, &p)) {
		free(((struct vworker *)p)->labels);
		free(p);
	}
	weft__map_free(&v->workers);
	if (v->ring)
		weft__samples_destroy(&v->samples);
	free(v->ring);
	free(v->xfers);
	free(v);
}

static struct vworker *worker_of(struct weft__views *v, uint32_t id, const char *name)
{
	struct vworker *w = weft__map_get(&v->workers, id);

	if (w)
		return w;
	w = calloc(1, sizeof(*w));
	if (!w || weft__map_put(&v->workers, id, w)) {
		free(w);
		return NULL;
	}
	w->name = weft__label_intern(name);
	return w;
}

static struct wlabel *label_of(struct vworker *w, const char *label)
{
	for (unsigned i = 0; i < w->nlabels; i++)
		if (w->labels[i].label == label)
			return &w->labels[i];
	if (w->nlabels == w->cap) {
		unsigned cap = w->cap ? 2 * w->cap : 16;
		struct wlabel *n;

		if (cap > VIEW_LABELS_MAX || !(n = realloc(w->labels, cap * sizeof(*n))))
			return NULL;
		w->labels = n;
		w->cap = cap;
	}
	w->labels[w->nlabels] = (struct wlabel){ .label = label };
	return &w->labels[w->nlabels++];
}

/* An interned copy of decoded text (not NUL-terminated). */
static const char *intern(struct weft__pbytes b)
{
	char text[WEFT_PROTO_MAX_NAME + 1];
	uint32_t n = b.len < WEFT_PROTO_MAX_NAME ? b.len : WEFT_PROTO_MAX_NAME;

	memcpy(text, b.p, n);
	text[n] = 0;
	return weft__label_intern(text);
}

void weft__views_record(struct weft__views *v, uint32_t id, const char *name,
			const struct weft__op_record *r)
{
	struct vworker *w = worker_of(v, id, name);
	/* Ours = theirs + off: their wall clock less ours, each less its monotonic. */
	int64_t off = ((int64_t)r->real_ns - (int64_t)r->mono_ns) -
		      (clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC));
	struct weft__plist_iter it;
	int32_t *rows;			/* each label's index in w->labels; -1: none */
	struct weft__plabel l;
	struct weft__pbucket b;
	struct weft__pevent e;
	struct weft__ptransfer x;
	const char *last = NULL;
	const uint8_t *last_text = NULL;
	uint32_t last_len = 0;
	unsigned i = 0;

	if (!w)
		return;
	w->bytes_in = r->bytes_in;
	w->bytes_out = r->bytes_out;
	/* Indices, not pointers: w->labels may move as it grows. */
	rows = malloc((r->labels.n ?: 1) * sizeof(*rows));
	if (!rows)
		return;
	weft__plist_iter_init(&it, &r->labels);
	while (weft__plist_next(&it, &l)) {
		struct wlabel *s = label_of(w, intern(l.label));

		rows[i++] = s ? (int32_t)(s - w->labels) : -1;
		if (!s)
			continue;
		s->count = l.count;
		s->failed = l.failed;
		s->total_ns = l.total_ns;
		memset(s->hist, 0, sizeof(s->hist));	/* the buckets follow, whole */
	}
	weft__plist_iter_init(&it, &r->buckets);
	while (weft__plist_next(&it, &b))
		if (rows[b.label] >= 0 && b.bucket < VIEW_HIST)	/* record_check bounds both */
			w->labels[rows[b.label]].hist[b.bucket] = b.count;
	free(rows);
	weft__plist_iter_init(&it, &r->events);
	while (weft__plist_next(&it, &e)) {
		/* Runs of one label are common: interned once (a lock) per run. */
		if (!last || e.label.len != last_len || memcmp(e.label.p, last_text, last_len)) {
			last = intern(e.label);
			last_text = e.label.p;
			last_len = e.label.len;
		}
		v->ring[v->head++ % VIEWS_EVENTS] = (struct weft__view_event){
			.worker = w->name, .thread = e.thread, .label = last,
			.start_ns = (uint64_t)((int64_t)e.start_ns + off),
			.end_ns = (uint64_t)((int64_t)e.end_ns + off), .bytes = e.bytes,
			.weight = e.weight, .outcome = e.outcome };
	}
	weft__plist_iter_init(&it, &r->transfers);
	while (weft__plist_next(&it, &x)) {
		struct vworker *from = weft__map_get(&v->workers, x.from);

		v->xfers[v->xhead++ % VIEW_TRANSFERS_MAX] = (struct weft__view_transfer){
			.from = from ? from->name : weft__label_intern("?"), .to = w->name,
			.bytes = x.bytes, .start_ns = (uint64_t)((int64_t)x.start_ns + off),
			.end_ns = (uint64_t)((int64_t)x.end_ns + off) };
	}
}

bool weft__views_sample_due(struct weft__views *v, int64_t now_ns)
{
	return now_ns >= atomic_load_explicit(&v->samples.next_ns, memory_order_relaxed);
}

void weft__views_sample(struct weft__views *v, int64_t now_ns, const struct weft_stats *st)
{
	struct weft__view_sample s = weft__sample_of(st, now_ns);
	size_t i = 0;
	uint64_t id;
	void *p;

	while (weft__map_next(&v->workers, &i, &id, &p))
		s.transfer_bytes += ((struct vworker *)p)->bytes_in;
	weft__samples_put(&v->samples, &s, false);
}

/* Each label's figures summed over the workers (a map finds its row: many workers). */
static void labels_fill(struct weft__views *v, struct weft__view_snap *s)
{
	struct weft__map rows = { 0 };
	size_t i = 0;
	uint64_t id;
	void *p;

	while (weft__map_next(&v->workers, &i, &id, &p)) {
		struct vworker *w = p;

		for (unsigned k = 0; k < w->nlabels; k++) {
			struct wlabel *l = &w->labels[k];
			struct weft__view_label *t = weft__map_get(&rows, (uintptr_t)l->label);

			if (!t) {
				if (s->nlabels == s->labels_cap)
					continue;
				t = &s->labels[s->nlabels];
				*t = (struct weft__view_label){ .label = l->label };
				if (weft__map_put(&rows, (uintptr_t)l->label, t))
					continue;	/* no memory: this one is left out */
				s->nlabels++;
			}
			t->count += l->count;
			t->failed += l->failed;
			t->total_ns += l->total_ns;
			for (unsigned b = 0; b < VIEW_HIST; b++)
				t->hist[b] += l->hist[b];
		}
	}
	weft__map_free(&rows);
}

void weft__views_fill(struct weft__views *v, struct weft__view_snap *s)
{
	uint64_t from = v->head > VIEWS_EVENTS ? v->head - VIEWS_EVENTS : 0;

	labels_fill(v, s);
	if (s->events_cap) {
		/* The latest events_cap that ended after since_ns, oldest first. */
		uint64_t k = v->head;
		unsigned n = 0;

		while (k > from && n < s->events_cap) {
			k--;
			if (v->ring[k % VIEWS_EVENTS].end_ns > s->since_ns)
				n++;
		}
		for (; k < v->head; k++)
			if (v->ring[k % VIEWS_EVENTS].end_ns > s->since_ns &&
			    s->nevents < s->events_cap)
				s->events[s->nevents++] = v->ring[k % VIEWS_EVENTS];
	}
	if (s->samples_cap)
		s->nsamples = weft__samples_copy(&v->samples, s->samples, s->samples_cap);
	if (s->transfers_cap) {
		uint64_t x = v->xhead > s->transfers_cap ? v->xhead - s->transfers_cap : 0;

		if (v->xhead > VIEW_TRANSFERS_MAX && x < v->xhead - VIEW_TRANSFERS_MAX)
			x = v->xhead - VIEW_TRANSFERS_MAX;
		for (; x < v->xhead; x++)
			s->transfers[s->ntransfers++] = v->xfers[x % VIEW_TRANSFERS_MAX];
	}
}

void weft__views_bytes(struct weft__views *v, uint32_t id, uint64_t *in, uint64_t *out)
{
	struct vworker *w = weft__map_get(&v->workers, id);

	*in = w ? w->bytes_in : 0;
	*out = w ? w->bytes_out : 0;
}
