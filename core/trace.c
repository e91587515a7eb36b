// SPDX-License-Identifier: MIT
/*
 * trace.c - the engine's side of the views of a run: weft_trace, what the worker
 * threads recorded (events.h) written as Chrome's Trace Event JSON, which Perfetto
 * and chrome://tracing open (a track per thread, a complete event "X" per recorded
 * task); weft_report, the dashboard's page with the figures in it (view/page.c);
 * each written aside and renamed over its path, so that a reader never sees half
 * of one; and the figures the views served over HTTP ask for (view.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "events.h"
#include "proto.h"
#include "remote.h"
#include "view.h"

/*
 * Write @path whole or not at all: @write fills a file beside it, renamed over
 * @path once complete (so a reader never sees half of one), readable by all.
 */
static int write_replacing(const char *path, int (*write)(FILE *f, void *arg), void *arg)
{
	char tmp[4096];
	FILE *f;
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	fchmod(fd, 0644);		/* not mkstemp's 0600: it is to be shared */
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		goto out_unlink;
	}
	ret = write(f, arg);
	if (ferror(f) && !ret)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = errno ? -errno : -EIO;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (!ret)
		return 0;
out_unlink:
	unlink(tmp);
	return ret;
}

/* The engine behind @h, for a call that reads what it recorded; or a negative errno. */
static int recording_engine(struct weft_client *h, const char *path, const char *call,
			    struct weft__engine **out)
{
	struct weft_client *c;

	if (!h || !path || !*path)
		return -EINVAL;
	c = weft__client_of(h, call);
	if (!c)
		return -EBADF;
	if (!c->eng->cfg.record)
		return -ENODATA;
	*out = c->eng;
	return 0;
}

static int engine_snap(void *arg, struct weft__view_snap *s);

static int trace_write(FILE *f, void *arg)
{
	struct weft__engine *eng = arg;
	struct weft__view_source src = { engine_snap, eng, "engine" };

	return weft__view_trace(f, &src, eng->nthreads * WEFT_EVENT_RING);
}

/* A cluster's view, as its scheduler rendered it. */
struct remote_view {
	struct weft_client *c;
	int kind;
};

static int remote_write(FILE *f, void *arg)
{
	struct remote_view *rv = arg;
	void *data = NULL;
	size_t len = 0;
	int ret = weft__remote_view(rv->c, rv->kind, &data, &len);

	if (!ret && len && fwrite(data, 1, len, f) != len)
		ret = -EIO;
	free(data);
	return ret;
}

/* weft_trace or weft_report of a client of a cluster. */
static int remote_view(struct weft_client *h, const char *path, int kind, const char *call)
{
	struct remote_view rv = { h, kind };
	int ret = weft__remote_live(h, call);

	return ret ?: write_replacing(path, remote_write, &rv);
}

int weft_trace(struct weft_client *h, const char *path)
{
	struct weft__engine *eng;
	int ret;

	if (h && path && *path && weft__is_remote(h))
		return remote_view(h, path, WEFT_VIEW_TRACE, "weft_trace");
	ret = recording_engine(h, path, "weft_trace", &eng);
	return ret ?: write_replacing(path, trace_write, eng);
}

static int report_write(FILE *f, void *arg)
{
	struct weft__engine *eng = arg;
	struct weft__view_source src = { engine_snap, eng, "engine" };

	weft__samples_take(eng, weft__mono_ns(), true);	/* the figures at the end */
	return weft__view_report(f, &src, eng->nthreads * WEFT_EVENT_RING);
}

int weft_report(struct weft_client *h, const char *path)
{
	struct weft__engine *eng;
	int ret;

	if (h && path && *path && weft__is_remote(h))
		return remote_view(h, path, WEFT_VIEW_REPORT, "weft_report");
	ret = recording_engine(h, path, "weft_report", &eng);
	return ret ?: write_replacing(path, report_write, eng);
}

int weft_workers(struct weft_client *h, struct weft_worker_info *out, size_t n)
{
	struct weft_worker_info v = { 0 };
	struct weft_client *c;
	struct weft_stats st;

	if (!h || (n && (!out || out[0].size < sizeof(size_t))))
		return -EINVAL;
	if (weft__is_remote(h))
		return weft__remote_live(h, "weft_workers") ?: weft__remote_workers(h, out, n);
	c = weft__client_of(h, "weft_workers");
	if (!c)
		return -EBADF;
	if (!n)
		return 1;
	weft__engine_stats(c->eng, &st);
	v = (struct weft_worker_info){
		.size = out[0].size < sizeof(v) ? out[0].size : sizeof(v), .name = "engine",
		.nthreads = st.nthreads, .tasks_run = st.tasks_run,
		.tasks_queued = (unsigned)st.tasks_pending, .tasks_running = st.tasks_running,
		.mem_bytes = st.mem_bytes, .mem_limit = st.mem_limit,
		.spilled_bytes = st.spilled_bytes, .restored_bytes = st.restored_bytes,
		.paused = st.paused };
	memcpy(out, &v, v.size);
	return 1;
}

/* ---- the views over HTTP ---- */

/* Add @ev's label table into @s's labels, by label. */
static void labels_add(struct weft__view_snap *s, const struct weft__events *ev)
{
	for (unsigned i = 0; i <= WEFT_EVENT_LABELS; i++) {
		const struct weft__label_stats *l = i < WEFT_EVENT_LABELS ? &ev->labels[i] :
						    &ev->other;
		/* Acquire pairs with the writer's release of the label: its zeros first. */
		const char *name = atomic_load_explicit(&l->label, memory_order_acquire);
		struct weft__view_label *v = NULL;

		if (!name)
			continue;
		for (unsigned k = 0; k < s->nlabels && !v; k++)
			if (s->labels[k].label == name)
				v = &s->labels[k];
		if (!v) {
			if (s->nlabels == s->labels_cap)
				continue;
			v = &s->labels[s->nlabels++];
			*v = (struct weft__view_label){ .label = name };
		}
		v->count += atomic_load_explicit(&l->count, memory_order_relaxed);
		v->failed += atomic_load_explicit(&l->failed, memory_order_relaxed);
		v->total_ns += atomic_load_explicit(&l->total_ns, memory_order_relaxed);
		for (unsigned b = 0; b < VIEW_HIST && b < WEFT_EVENT_HIST; b++)
			v->hist[b] += atomic_load_explicit(&l->hist[b], memory_order_relaxed);
	}
}

static int by_end(const void *a, const void *b)
{
	uint64_t x = ((const struct weft__view_event *)a)->end_ns;
	uint64_t y = ((const struct weft__view_event *)b)->end_ns;

	return x < y ? -1 : x > y;
}

/* The latest recorded tasks that ended after s->since_ns, oldest first. */
static int stream(struct weft__engine *eng, struct weft__view_snap *s)
{
	struct weft__event_copy *ev = malloc(WEFT_EVENT_RING * sizeof(*ev));
	struct weft__view_event *all = NULL;
	size_t n = 0, cap = 0;

	if (!ev)
		return -ENOMEM;
	for (unsigned t = 0; t < eng->nthreads; t++) {
		unsigned k = eng->workers[t]->events ?
			     weft__events_copy(eng->workers[t]->events, t, ev) : 0;

		for (unsigned i = 0; i < k; i++) {
			if (ev[i].end_ns <= s->since_ns)
				continue;
			if (n == cap) {
				struct weft__view_event *more;

				cap = cap ? 2 * cap : 1024;
				more = realloc(all, cap * sizeof(*all));
				if (!more) {
					free(all);
					free(ev);
					return -ENOMEM;
				}
				all = more;
			}
			all[n++] = (struct weft__view_event){
				.thread = t, .label = ev[i].label, .start_ns = ev[i].start_ns,
				.end_ns = ev[i].end_ns, .pin_ns = ev[i].pin_ns,
				.bytes = ev[i].bytes, .weight = ev[i].weight,
				.outcome = ev[i].outcome, .id = weft__event_id(t, ev[i].seq),
				.from = { ev[i].from[0], ev[i].from[1] } };
		}
	}
	free(ev);
	if (n)
		qsort(all, n, sizeof(*all), by_end);
	s->nevents = n < s->events_cap ? (unsigned)n : s->events_cap;
	if (s->nevents)
		memcpy(s->events, all + n - s->nevents, s->nevents * sizeof(*all));
	free(all);
	return 0;
}

/* The view source of an engine: on the server's threads, reading only. */
static int engine_snap(void *arg, struct weft__view_snap *s)
{
	struct weft__engine *eng = arg;
	struct weft__view_sample v;

	s->now_ns = (uint64_t)weft__mono_ns();
	weft__engine_stats(eng, &s->st);
	/* A sample, if due, of the figures just read (not read again). */
	v = weft__sample_of(&s->st, (int64_t)s->now_ns);
	weft__samples_put(&eng->samples, &v, false);
	if (s->samples_cap)
		s->nsamples = weft__samples_copy(&eng->samples, s->samples, s->samples_cap);
	if (s->events_cap && stream(eng, s))
		return -ENOMEM;
	for (unsigned i = 0; i < eng->nthreads; i++)
		if (eng->workers[i]->events)
			labels_add(s, eng->workers[i]->events);
	return 0;
}

int weft__engine_snap(struct weft__engine *eng, struct weft__view_snap *s)
{
	return engine_snap(eng, s);
}

unsigned weft__engine_events_since(struct weft__engine *eng, uint64_t *seen,
				   struct weft__view_event *out, unsigned cap)
{
	struct weft__event_copy *ev;
	unsigned n = 0;

	if (!eng->cfg.record || !(ev = malloc(WEFT_EVENT_RING * sizeof(*ev))))
		return 0;
	for (unsigned t = 0; t < eng->nthreads; t++) {
		unsigned k = weft__events_copy(eng->workers[t]->events, t, ev), from = 0, i;

		while (from < k && ev[from].seq <= seen[t])
			from++;
		if (k - from > cap)
			from = k - cap;		/* the latest */
		for (i = from; i < k; i++)
			out[n++] = (struct weft__view_event){
				.thread = t, .label = ev[i].label, .start_ns = ev[i].start_ns,
				.end_ns = ev[i].end_ns, .pin_ns = ev[i].pin_ns,
				.bytes = ev[i].bytes, .weight = ev[i].weight,
				.outcome = ev[i].outcome };
		if (k)
			seen[t] = ev[k - 1].seq;
	}
	free(ev);
	return n;
}

void weft__engine_serve(struct weft__engine *eng)
{
	struct weft__view_source src = { engine_snap, eng, "engine" };

	if (eng->cfg.dashboard && weft__http_start(eng->cfg.dashboard, &src, &eng->http))
		weft__log(WEFT_LOG_WARN, "core", "WEFT_DASHBOARD=%s: the engine runs without "
			  "its views", eng->cfg.dashboard);
}
