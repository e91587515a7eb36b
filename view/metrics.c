// SPDX-License-Identifier: MIT
/*
 * metrics.c - a snapshot in Prometheus' text exposition format (version 0.0.4):
 * each metric's HELP and TYPE, then its samples; counters end in _total, a label's
 * run times are a histogram of cumulative buckets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "view.h"

/* A label value: backslash, double quote and newline escaped. */
static void put_value(struct weft__out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			weft__out_put(o, "\\%c", *s);
		else if (*s == '\n')
			weft__out_put(o, "\\n");
		else
			weft__out_put(o, "%c", *s);
	}
}

static void head(struct weft__out *o, const char *name, const char *type, const char *help)
{
	weft__out_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric: a field of a struct (weft_stats, or a worker's figures). */
struct metric {
	const char *name, *type, *help;
	size_t off, size;
};
#define FIELD(s, n, t, f, h) { n, t, h, offsetof(s, f), sizeof(((s *)0)->f) }

/* The metrics of weft_stats. */
static const struct metric stats[] = {
#define STAT(n, t, f, h) FIELD(struct weft_stats, n, t, f, h)
	STAT("weft_threads", "gauge", nthreads, "Threads that run tasks."),
	STAT("weft_tasks_run_total", "counter", tasks_run,
	     "Task functions run (retries count again)."),
	STAT("weft_tasks_failed_total", "counter", tasks_failed, "Tasks that ended with an error."),
	STAT("weft_tasks_cancelled_total", "counter", tasks_cancelled, "Tasks that ended cancelled."),
	STAT("weft_memory_bytes", "gauge", mem_bytes, "Bytes of results in memory."),
	STAT("weft_memory_limit_bytes", "gauge", mem_limit, "The memory limit."),
	STAT("weft_memory_peak_bytes", "gauge", mem_peak, "The most bytes of results in memory."),
	STAT("weft_memory_target_bytes", "gauge", mem_target,
	     "Bytes of results above which results are spilled."),
	STAT("weft_memory_pause_bytes", "gauge", mem_pause,
	     "Bytes of results above which no task starts."),
	STAT("weft_tasks_pending", "gauge", tasks_pending,
	     "Tasks submitted and not ended: waiting for inputs, queued or running."),
	STAT("weft_tasks_running", "gauge", tasks_running, "Threads running a task."),
	STAT("weft_spilled_bytes_total", "counter", spilled_bytes,
	     "Result bytes written to the spill file."),
	STAT("weft_restored_bytes_total", "counter", restored_bytes,
	     "Result bytes read back from it."),
	STAT("weft_spill_file_bytes", "gauge", spill_file_bytes, "The spill file's size."),
	STAT("weft_paused", "gauge", paused, "1 while above the pause threshold: no task starts."),
	STAT("weft_spill_blocked", "gauge", spill_blocked, "1 when the last spill failed."),
#undef STAT
};


/* Each label's value of a counter. */
static void by_label(struct weft__out *o, const struct weft__view_snap *s, const char *name,
		     const char *help, size_t field)
{
	head(o, name, "counter", help);
	for (unsigned i = 0; i < s->nlabels; i++) {
		weft__out_put(o, "%s{label=\"", name);
		put_value(o, s->labels[i].label);
		weft__out_put(o, "\"} %llu\n", (unsigned long long)*(const uint64_t *)
		    ((const char *)&s->labels[i] + field));
	}
}

/* A cluster's figures by worker (its latest heartbeat's). */
static const struct metric by_worker[] = {
#define W(n, t, f, h) FIELD(struct weft__view_worker, n, t, f, h)
	W("weft_worker_threads", "gauge", nthreads, "Threads of the worker that run tasks."),
	W("weft_worker_memory_bytes", "gauge", mem_used, "Bytes of results in its memory."),
	W("weft_worker_memory_limit_bytes", "gauge", mem_limit, "Its memory limit."),
	W("weft_worker_spilled_bytes_total", "counter", spilled,
	  "Result bytes it wrote to its spill file."),
	W("weft_worker_restored_bytes_total", "counter", restored,
	  "Result bytes it read back from it."),
	W("weft_worker_tasks_run_total", "counter", tasks_run, "Task functions it ran."),
	W("weft_worker_tasks_running", "gauge", running, "Its threads running a task."),
	W("weft_worker_paused", "gauge", paused, "1 while it starts no task (memory)."),
	W("weft_worker_received_bytes_total", "counter", bytes_in,
	  "Bytes of inputs it read from other workers."),
	W("weft_worker_sent_bytes_total", "counter", bytes_out,
	  "Bytes of its results other workers read."),
#undef W
};

static void workers_text(struct weft__out *o, const struct weft__view_snap *s)
{
	for (size_t k = 0; k < sizeof(by_worker) / sizeof(by_worker[0]) && s->nworkers; k++) {
		head(o, by_worker[k].name, by_worker[k].type, by_worker[k].help);
		for (unsigned i = 0; i < s->nworkers; i++) {
			weft__out_put(o, "%s{worker=\"", by_worker[k].name);
			put_value(o, s->workers[i].name);
			weft__out_put(o, "\"} %llu\n", weft__field_of(&s->workers[i],
				      by_worker[k].off, by_worker[k].size));
		}
	}
}

long weft__metrics_text(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		head(&o, stats[i].name, stats[i].type, stats[i].help);
		weft__out_put(&o, "%s %llu\n", stats[i].name, weft__field_of(&s->st, stats[i].off, stats[i].size));
	}
	workers_text(&o, s);
	by_label(&o, s, "weft_label_tasks_total", "Tasks run, by label (from the recorded "
		 "sample, each weighted by the tasks it stands for).",
		 offsetof(struct weft__view_label, count));
	by_label(&o, s, "weft_label_failures_total", "Tasks that failed, by label.",
		 offsetof(struct weft__view_label, failed));
	head(&o, "weft_label_run_seconds", "histogram", "Run time of tasks, by label (sampled).");
	for (unsigned i = 0; i < s->nlabels; i++) {
		const struct weft__view_label *l = &s->labels[i];
		uint64_t cum = 0;

		for (unsigned b = 0; b < VIEW_HIST; b++) {
			cum += l->hist[b];
			weft__out_put(&o, "weft_label_run_seconds_bucket{label=\"");
			put_value(&o, l->label);
			weft__out_put(&o, "\",le=\"%g\"} %llu\n", (double)(2ull << b) / 1e9,
			    (unsigned long long)cum);
		}
		weft__out_put(&o, "weft_label_run_seconds_bucket{label=\"");
		put_value(&o, l->label);
		weft__out_put(&o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		weft__out_put(&o, "weft_label_run_seconds_sum{label=\"");
		put_value(&o, l->label);
		weft__out_put(&o, "\"} %.9f\n", (double)l->total_ns / 1e9);
		weft__out_put(&o, "weft_label_run_seconds_count{label=\"");
		put_value(&o, l->label);
		weft__out_put(&o, "\"} %llu\n", (unsigned long long)cum);
	}
	return o.full ? -ENOSPC : (long)o.len;
}
