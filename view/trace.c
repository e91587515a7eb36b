// SPDX-License-Identifier: MIT
/*
 * trace.c - a source's recorded tasks as Chrome's Trace Event JSON, which Perfetto
 * and chrome://tracing open: a process per worker (one for an engine), a track per
 * thread, a complete event ("X") per recorded task, a flow from a recorded task to
 * each recorded task that read its result (of its first two inputs), and one from
 * each read of an input between workers (its start on the holder, its end on the
 * reader).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "view.h"

/* @s as a JSON string, quotes included. */
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

/* The trace's process of worker @w (NULL: the engine's own): 1, 2, ... as first seen. */
static unsigned pid_of(const char **names, unsigned *n, const char *w)
{
	for (unsigned i = 0; i < *n; i++)
		if (names[i] == w)
			return i + 1;
	names[*n] = w;
	return ++*n;
}

static void process_meta(FILE *f, const struct weft__view_source *src, unsigned pid,
			 const char *worker)
{
	fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"name\":\"process_name\","
		"\"args\":{\"name\":", pid);
	if (worker) {
		char *name = NULL;

		if (asprintf(&name, "weft worker %s", worker) < 0)
			name = NULL;
		json_text(f, name ? name : worker);
		free(name);
	} else {
		fprintf(f, "\"weft %s (pid %d)\"", src->name, (int)getpid());
	}
	fputs("}}", f);
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const struct weft__view_event *const *)a)[0]->id;
	uint64_t y = ((const struct weft__view_event *const *)b)[0]->id;

	return x < y ? -1 : x > y;
}

/*
 * A flow from each recorded input's task to the task that read it, where both are
 * in the trace: from the end of the one to the start of the other.
 */
static void deps_flows(FILE *f, const struct weft__view_snap *s, const char **names,
		       unsigned *npids, uint64_t t0)
{
	const struct weft__view_event **by = malloc((s->nevents ?: 1) * sizeof(*by));
	uint64_t flow = 0;

	if (!by)
		return;		/* a trace without its arrows */
	for (unsigned i = 0; i < s->nevents; i++)
		by[i] = &s->events[i];
	qsort(by, s->nevents, sizeof(*by), by_id);
	for (unsigned i = 0; i < s->nevents; i++) {
		const struct weft__view_event *e = &s->events[i];

		for (unsigned k = 0; k < 2; k++) {
			struct weft__view_event key = { .id = e->from[k] };
			const struct weft__view_event *kp = &key, *const *hit;
			const struct weft__view_event *p;

			if (!e->from[k])
				continue;
			hit = bsearch(&kp, by, s->nevents, sizeof(*by), by_id);
			if (!hit)
				continue;	/* its event left the ring */
			p = *hit;
			flow++;
			fprintf(f, ",\n{\"ph\":\"s\",\"cat\":\"dependency\",\"id\":\"d%llu\","
				"\"pid\":%u,\"tid\":%u,\"name\":\"input\",\"ts\":%.3f}",
				(unsigned long long)flow, pid_of(names, npids, p->worker), p->thread,
				(double)(p->end_ns - t0) / 1e3 - 0.001);
			fprintf(f, ",\n{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"dependency\","
				"\"id\":\"d%llu\",\"pid\":%u,\"tid\":%u,\"name\":\"input\","
				"\"ts\":%.3f}", (unsigned long long)flow,
				pid_of(names, npids, e->worker), e->thread,
				(double)(e->start_ns - t0) / 1e3);
		}
	}
	free(by);
}

static void write_trace(FILE *f, const struct weft__view_source *src,
			const struct weft__view_snap *s, const char **names)
{
	unsigned npids = 0;
	uint64_t t0 = UINT64_MAX;

	for (unsigned i = 0; i < s->nevents; i++)
		if (s->events[i].start_ns < t0)
			t0 = s->events[i].start_ns;
	for (unsigned i = 0; i < s->ntransfers; i++)
		if (s->transfers[i].start_ns < t0)
			t0 = s->transfers[i].start_ns;
	if (t0 == UINT64_MAX)
		t0 = 0;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"weft %s\"},"
		"\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":0,\"tid\":0,\"name\":\"process_name\","
		"\"args\":{\"name\":\"weft\"}}", weft_version_string());
	/* An engine's threads each have a track, tasks recorded or not. */
	if (!s->nworkers) {
		pid_of(names, &npids, NULL);
		process_meta(f, src, 1, NULL);
		for (unsigned i = 0; i < s->st.nthreads; i++)
			fprintf(f, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\","
				"\"args\":{\"name\":\"thread %u\"}}", i, i);
	}
	for (unsigned w = 0; w < s->nworkers; w++) {
		unsigned pid = pid_of(names, &npids, s->workers[w].name);

		process_meta(f, src, pid, s->workers[w].name);
		for (unsigned i = 0; i < s->workers[w].nthreads; i++)
			fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"name\":\"thread_name\","
				"\"args\":{\"name\":\"thread %u\"}}", pid, i, i);
	}
	for (unsigned i = 0; i < s->nevents; i++) {
		const struct weft__view_event *e = &s->events[i];

		fprintf(f, ",\n{\"ph\":\"X\",\"cat\":\"task\",\"pid\":%u,\"tid\":%u,\"name\":",
			pid_of(names, &npids, e->worker), e->thread);
		json_text(f, e->label ? e->label : "?");
		fprintf(f, ",\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"outcome\":\"%s\","
			"\"weight\":%u,\"bytes\":%llu,\"pin_us\":%.3f}}",
			(double)(e->start_ns - t0) / 1e3, (double)(e->end_ns - e->start_ns) / 1e3,
			weft__outcome_name(e->outcome), e->weight, (unsigned long long)e->bytes,
			(double)e->pin_ns / 1e3);
	}
	deps_flows(f, s, names, &npids, t0);
	/* A transfer: a slice on the reader's transfer track, and a flow from the holder. */
	for (unsigned i = 0; i < s->ntransfers; i++) {
		const struct weft__view_transfer *x = &s->transfers[i];
		unsigned to = pid_of(names, &npids, x->to), from = pid_of(names, &npids, x->from);

		fprintf(f, ",\n{\"ph\":\"X\",\"cat\":\"transfer\",\"pid\":%u,\"tid\":%u,"
			"\"name\":\"read\",\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"from\":", to,
			VIEW_TRANSFER_TID, (double)(x->start_ns - t0) / 1e3,
			(double)(x->end_ns - x->start_ns) / 1e3);
		json_text(f, x->from);
		fprintf(f, ",\"bytes\":%llu}}", (unsigned long long)x->bytes);
		fprintf(f, ",\n{\"ph\":\"s\",\"cat\":\"transfer\",\"id\":%u,\"pid\":%u,\"tid\":%u,"
			"\"name\":\"read\",\"ts\":%.3f}", i + 1, from, VIEW_TRANSFER_TID,
			(double)(x->start_ns - t0) / 1e3);
		fprintf(f, ",\n{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"transfer\",\"id\":%u,"
			"\"pid\":%u,\"tid\":%u,\"name\":\"read\",\"ts\":%.3f}", i + 1, to,
			VIEW_TRANSFER_TID, (double)(x->start_ns - t0) / 1e3);
	}
	for (unsigned p = 0; p < npids && s->ntransfers; p++)
		fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"name\":\"thread_name\","
			"\"args\":{\"name\":\"transfers\"}}", p + 1, VIEW_TRANSFER_TID);
	fprintf(f, "\n]}\n");
}

int weft__view_trace(FILE *f, const struct weft__view_source *src, unsigned events_cap)
{
	struct weft__view_snap s = { 0 };
	const char **names = NULL;
	int ret;

	ret = weft__view_snap_alloc(&s, VIEW_NEED_EVENTS | VIEW_NEED_WORKERS |
				    VIEW_NEED_TRANSFERS, events_cap);
	if (ret)
		return ret;
	ret = src->snap(src->arg, &s);
	if (ret)
		goto out;
	/* Every process a track may name: each worker, one more for an engine. */
	names = calloc(s.nworkers + 2 * s.ntransfers + s.nevents + 1, sizeof(*names));
	ret = -ENOMEM;
	if (!names)
		goto out;
	write_trace(f, src, &s, names);
	ret = ferror(f) ? -EIO : 0;
out:
	free(names);
	weft__view_snap_free(&s);
	return ret;
}
