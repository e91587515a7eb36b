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
#include "remote.h"
#include "view.h"

/* @s as a JSON string, quotes included (escaped as the views escape it). */
static void json_text(FILE *f, const char *s)
{
	size_t cap = 6 * strlen(s) + 3;		/* \u00XX for every byte, and quotes */
	struct weft__out o = { malloc(cap), cap, 0, 0 };

	if (!o.buf) {
		fputs("\"?\"", f);
		return;
	}
	weft__out_json(&o, s);
	fwrite(o.buf, 1, o.len, f);
	free(o.buf);
}

static const char *outcome_name(uint32_t o)
{
	return o == WEFT_EV_DONE ? "done" : o == WEFT_EV_FAILED ? "failed" : "cancelled";
}

static void write_events(FILE *f, struct weft__engine *eng, const struct weft__event_copy *ev,
			 size_t n, uint64_t t0)
{
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"weft %s\"},"
		"\"traceEvents\":[\n", weft_version_string());
	fprintf(f, "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\","
		"\"args\":{\"name\":\"weft engine (pid %d)\"}}", (int)getpid());
	for (unsigned i = 0; i < eng->nthreads; i++)
		fprintf(f, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\","
			"\"args\":{\"name\":\"thread %u\"}}", i, i);
	for (size_t i = 0; i < n; i++) {
		const struct weft__event_copy *e = &ev[i];

		fprintf(f, ",\n{\"ph\":\"X\",\"cat\":\"task\",\"pid\":1,\"tid\":%u,\"name\":",
			e->thread);
		json_text(f, e->label ? e->label : "?");
		fprintf(f, ",\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"outcome\":\"%s\","
			"\"weight\":%u,\"bytes\":%llu,\"pin_us\":%.3f}}",
			(double)(e->start_ns - t0) / 1e3, (double)(e->end_ns - e->start_ns) / 1e3,
			outcome_name(e->outcome), e->weight, (unsigned long long)e->bytes,
			(double)e->pin_ns / 1e3);
	}
	fprintf(f, "\n]}\n");
}

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
	if (weft__is_remote(h))
		return -ENOTSUP;
	c = weft__client_of(h, call);
	if (!c)
		return -EBADF;
	if (!c->eng->cfg.record)
		return -ENODATA;
	*out = c->eng;
	return 0;
}

static int trace_write(FILE *f, void *arg)
{
	struct weft__engine *eng = arg;
	struct weft__event_copy *ev;
	uint64_t t0 = UINT64_MAX;
	size_t n = 0;

	ev = malloc((size_t)eng->nthreads * WEFT_EVENT_RING * sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	for (unsigned i = 0; i < eng->nthreads; i++)
		n += weft__events_copy(eng->workers[i]->events, i, ev + n);
	for (size_t i = 0; i < n; i++)
		if (ev[i].start_ns < t0)
			t0 = ev[i].start_ns;
	write_events(f, eng, ev, n, n ? t0 : 0);
	free(ev);
	return 0;
}

int weft_trace(struct weft_client *h, const char *path)
{
	struct weft__engine *eng;
	int ret = recording_engine(h, path, "weft_trace", &eng);

	return ret ?: write_replacing(path, trace_write, eng);
}

static int engine_snap(void *arg, struct weft__view_snap *s);

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
	int ret = recording_engine(h, path, "weft_report", &eng);

	return ret ?: write_replacing(path, report_write, eng);
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
			all[n++] = (struct weft__view_event){ t, ev[i].label, ev[i].start_ns,
				ev[i].end_ns, ev[i].bytes, ev[i].weight, ev[i].outcome };
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

	s->now_ns = (uint64_t)weft__mono_ns();
	weft__samples_tick(eng, &eng->samples, (int64_t)s->now_ns);
	weft__engine_stats(eng, &s->st);
	if (s->samples_cap)
		s->nsamples = weft__samples_copy(&eng->samples, s->samples, s->samples_cap);
	if (s->events_cap && stream(eng, s))
		return -ENOMEM;
	for (unsigned i = 0; i < eng->nthreads; i++)
		if (eng->workers[i]->events)
			labels_add(s, eng->workers[i]->events);
	return 0;
}

void weft__engine_serve(struct weft__engine *eng)
{
	struct weft__view_source src = { engine_snap, eng, "engine" };

	if (eng->cfg.dashboard && weft__http_start(eng->cfg.dashboard, &src, &eng->http))
		weft__log(WEFT_LOG_WARN, "core", "WEFT_DASHBOARD=%s: the engine runs without "
			  "its views", eng->cfg.dashboard);
}
