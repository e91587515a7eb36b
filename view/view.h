/* SPDX-License-Identifier: MIT */
/*
 * view.h - the views of a run served over HTTP (http.c, with libmicrohttpd, the
 * only user of it, loaded at the first server's start): view/'s contract with whoever has the figures (an engine now;
 * the scheduler next). The server runs on threads of its own; it asks its source
 * for a snapshot of the figures on each request, and never holds up the source's
 * threads: a snapshot is copied out under whatever the source needs.
 *
 *	/metrics	Prometheus' text exposition format (metrics.c)
 *	/api/stats	weft_stats' figures, JSON (api.c)
 *	/api/labels	by label: tasks, failures, run time and its quantiles, JSON
 *	/api/stream	the latest recorded tasks (?since=NS: those ended after), JSON
 *	/api/memory	memory and spill over time, JSON
 *	/api/workers	a cluster's workers and their figures, JSON
 *	/api/transfers	the latest reads of inputs between workers, JSON
 *	/		the dashboard (page.html), which polls the others each second
 *	/chart.js	Chart.js, from Debian's libjs-chart.js, for its charts
 *
 * Anything else is 404, a method but GET and HEAD 405; a request whose headers
 * pass VIEW_HEADERS_MAX bytes is refused by the library (431), a client that sends
 * nothing for VIEW_IDLE_S seconds is cut off.
 */
#ifndef WEFT_VIEW_H
#define WEFT_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#define VIEW_HEADERS_MAX (16u << 10)
#define VIEW_IDLE_S 10
#define VIEW_CONNECTIONS_MAX 64
#define VIEW_HIST 48			/* run-time buckets: [2^i, 2^(i+1)) ns */
#define VIEW_LABELS_MAX 4096		/* labels a snapshot holds */
#define VIEW_STREAM_MAX 4096		/* tasks /api/stream gives at most */
#define VIEW_SAMPLES_MAX 1024		/* samples /api/memory gives at most */
#define VIEW_WORKERS_MAX 4096		/* workers /api/workers lists at most */
#define VIEW_TRANSFERS_MAX 4096		/* the latest transfers kept */
#define VIEW_TRANSFER_TID 100000	/* a trace's track of a worker's reads */
#define VIEW_PAGE_CAP (64u << 10)	/* bytes of a rendered page at first; doubled */
#define VIEW_PAGE_MAX (256u << 20)
#ifndef WEFT_CHARTJS
#define WEFT_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"
#endif

/* A label's figures, summed over the threads that ran its tasks. */
struct weft__view_label {
	const char *label;		/* lives as long as the process */
	uint64_t count, failed, total_ns;
	uint64_t hist[VIEW_HIST];
};

/* A recorded task, for the task stream. */
struct weft__view_event {
	const char *worker;			/* a cluster's worker; NULL: an engine's */
	unsigned thread;
	const char *label;
	uint64_t start_ns, end_ns;		/* the source's monotonic clock */
	uint64_t pin_ns;			/* of that, pinning inputs */
	uint64_t bytes;
	uint32_t weight, outcome;		/* outcome: 1 done, 2 failed, 3 cancelled */
	uint64_t id;				/* unique in its source; 0: none */
	uint64_t from[2];			/* ids of its first inputs' events; 0: none */
};

/* An input read by one worker from another. */
struct weft__view_transfer {
	const char *from, *to;			/* workers' names, interned */
	uint64_t bytes, start_ns, end_ns;	/* the source's monotonic clock */
};

/* A worker of a cluster and its figures (its latest heartbeat's). */
struct weft__view_worker {
	const char *name;			/* interned */
	unsigned nthreads;
	uint64_t mem_used, mem_limit, spilled, restored;
	uint32_t queued, running;
	uint64_t tasks_run;
	uint32_t paused, spill_blocked;
	uint64_t mem_target, mem_pause;
	uint64_t bytes_in, bytes_out;
};

/* The figures of memory and spill at one time, for their charts. */
struct weft__view_sample {
	uint64_t t_ns;				/* the source's monotonic clock */
	uint64_t mem_bytes, spilled_bytes, restored_bytes, spill_file_bytes;
	uint64_t tasks_run, tasks_failed;
	uint32_t paused, spill_blocked;
	uint64_t transfer_bytes;		/* read between a cluster's workers so far */
};

/* What the source knows now. */
struct weft__view_snap {
	struct weft_stats st;			/* as weft_stats gives them */
	struct weft__view_label *labels;	/* the source's to fill, @nlabels of them */
	unsigned nlabels, labels_cap;
	uint64_t now_ns;			/* the source's clock when it filled this */
	/*
	 * Asked for by /api/stream only (events_cap 0 otherwise): the latest recorded
	 * tasks that ended after @since_ns, at most events_cap, oldest first.
	 */
	struct weft__view_event *events;
	unsigned nevents, events_cap;
	uint64_t since_ns;
	/* Asked for by /api/memory only (samples_cap 0 otherwise): oldest first. */
	struct weft__view_sample *samples;
	unsigned nsamples, samples_cap;
	/* A cluster's (none for an engine): its workers, and the latest transfers. */
	struct weft__view_worker *workers;
	unsigned nworkers, workers_cap;
	struct weft__view_transfer *transfers;
	unsigned ntransfers, transfers_cap;
};

struct weft__view_source {
	/*
	 * Fill @s (its labels array has room for labels_cap). 0, or a negative errno
	 * (the request gets a 503). Called on the server's threads, any number at once.
	 */
	int (*snap)(void *arg, struct weft__view_snap *s);
	void *arg;
	const char *name;		/* "engine", "scheduler": in the page's title */
};

struct weft__http;

/*
 * Serve at @addr, "HOST:PORT" (port 0 picks one; HOST a numeric IPv4 address).
 * Return: 0, -EINVAL for an address that is not one, -EADDRINUSE, or another
 * negative errno; a log line says which and, on success, where it serves.
 */
int weft__http_start(const char *addr, const struct weft__view_source *src,
		     struct weft__http **out);
void weft__http_stop(struct weft__http *h);
/* The port it serves on. */
unsigned weft__http_port(const struct weft__http *h);

/*
 * A page rendered from @s into @buf of @cap bytes: its length, or -ENOSPC when it
 * does not fit (the server tries again with twice the room).
 */
typedef long weft__view_render(const struct weft__view_snap *s, char *buf, size_t cap);
/* metrics.c: Prometheus' text format. */
weft__view_render weft__metrics_text;
/* api.c: JSON, /api/stats (weft_stats' fields), /api/labels (by label) and
 * /api/stream (the latest recorded tasks). */
weft__view_render weft__api_stats;
weft__view_render weft__api_labels;
weft__view_render weft__api_stream;
weft__view_render weft__api_memory;
weft__view_render weft__api_workers;
weft__view_render weft__api_transfers;

/* The parts of a snapshot a page needs, besides its stats and labels. */
#define VIEW_NEED_EVENTS	0x1
#define VIEW_NEED_SAMPLES	0x2
#define VIEW_NEED_WORKERS	0x4
#define VIEW_NEED_TRANSFERS	0x8
#define VIEW_NEED_ALL		0xf
/* Room in @s for its labels and the parts @needs asks (@events_cap tasks). 0 or -ENOMEM. */
int weft__view_snap_alloc(struct weft__view_snap *s, unsigned needs, unsigned events_cap);
void weft__view_snap_free(struct weft__view_snap *s);

/* @render's page of @s, in memory the caller frees (its length in @len); NULL: no memory. */
char *weft__view_render_alloc(weft__view_render *render, const struct weft__view_snap *s,
			      long *len);

/*
 * page.c: the page (page.html) written to @f, @chart where the charts' script goes
 * and @data where the figures do ("" for none: the page polls /api).
 */
int weft__page_write(FILE *f, const char *chart, const char *data);
/* WEFT_CHARTJS's text (@len bytes), or NULL: not there, or not a script. */
char *weft__chartjs(size_t *len);
/*
 * The report: the page with @src's figures now (its latest @events_cap recorded
 * tasks) and Chart.js inlined, written to @f. 0 or a negative errno.
 */
int weft__view_report(FILE *f, const struct weft__view_source *src, unsigned events_cap);
/* trace.c: @src's recorded tasks (the latest @events_cap) as Chrome's trace JSON. */
int weft__view_trace(FILE *f, const struct weft__view_source *src, unsigned events_cap);

/* out.c: text appended to @buf, up to @cap; @full once something did not fit. */
struct weft__out {
	char *buf;
	size_t cap, len;
	int full;
};
void weft__out_put(struct weft__out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The field of @base at @off, of @size bytes (8, 4 or 2), whatever its type. */
unsigned long long weft__field_of(const void *base, size_t off, size_t size);
/* An event's outcome (1, 2, 3) as the pages name it: done, failed, cancelled. */
const char *weft__outcome_name(uint32_t outcome);
/* @s as a JSON string, quotes and escapes included. */
void weft__out_json(struct weft__out *o, const char *s);

#endif /* WEFT_VIEW_H */
