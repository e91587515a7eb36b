// SPDX-License-Identifier: MIT
/*
 * api.c - the figures as JSON for pages and scripts: /api/stats, weft_stats'
 * fields by their names; /api/labels, per label the tasks run (the recorded
 * sample's weights), failures, total run time and quantiles of it. A quantile is
 * the upper end of the power-of-two bucket it falls in: at most that, at least half.
 * /api/stream, the latest recorded tasks for the task stream, and the clock they
 * are on.
 */
#include <errno.h>
#include <stddef.h>

#include "view.h"

static const struct {
	const char *name;
	size_t off, size;
} fields[] = {
#define F(f) { #f, offsetof(struct weft_stats, f), sizeof(((struct weft_stats *)0)->f) }
	F(nthreads), F(nnuma), F(tasks_run), F(tasks_failed), F(tasks_cancelled), F(steals),
	F(parks), F(mem_bytes), F(mem_limit), F(mem_peak), F(spilled_bytes),
	F(spilled_results), F(restored_bytes), F(restored_results), F(prefetched_results),
	F(spill_ns), F(restore_ns), F(spill_file_bytes), F(paused), F(spill_blocked),
	F(mem_available), F(tasks_pending), F(tasks_running), F(mem_target), F(mem_pause),
#undef F
};

long weft__api_stats(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		weft__out_put(&o, "%s\"%s\":%llu", i ? "," : "", fields[i].name,
			      weft__field_of(&s->st, fields[i].off, fields[i].size));
	weft__out_put(&o, "}\n");
	return o.full ? -ENOSPC : (long)o.len;
}

/* The run time under which a share @q of @l's tasks ran, in seconds; 0 for none. */
static double quantile(const struct weft__view_label *l, double q)
{
	uint64_t total = 0, cum = 0;

	for (unsigned b = 0; b < VIEW_HIST; b++)
		total += l->hist[b];
	for (unsigned b = 0; b < VIEW_HIST && total; b++) {
		cum += l->hist[b];
		if ((double)cum >= q * (double)total)
			return (double)(2ull << b) / 1e9;
	}
	return 0;
}

long weft__api_labels(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "[");
	for (unsigned i = 0; i < s->nlabels; i++) {
		const struct weft__view_label *l = &s->labels[i];

		weft__out_put(&o, "%s\n{\"label\":", i ? "," : "");
		weft__out_json(&o, l->label);
		weft__out_put(&o, ",\"tasks\":%llu,\"failed\":%llu,\"run_s\":%.9f,"
			      "\"p50_s\":%.9f,\"p99_s\":%.9f}", (unsigned long long)l->count,
			      (unsigned long long)l->failed, (double)l->total_ns / 1e9,
			      quantile(l, 0.5), quantile(l, 0.99));
	}
	weft__out_put(&o, "\n]\n");
	return o.full ? -ENOSPC : (long)o.len;
}

long weft__api_stream(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "{\"now_ns\":%llu,\"threads\":%u,\"events\":[",
		      (unsigned long long)s->now_ns, s->st.nthreads);
	for (unsigned i = 0; i < s->nevents; i++) {
		const struct weft__view_event *e = &s->events[i];

		weft__out_put(&o, "%s\n{", i ? "," : "");
		if (e->worker) {
			weft__out_put(&o, "\"worker\":");
			weft__out_json(&o, e->worker);
			weft__out_put(&o, ",");
		}
		weft__out_put(&o, "\"thread\":%u,\"label\":", e->thread);
		weft__out_json(&o, e->label ? e->label : "?");
		weft__out_put(&o, ",\"start_ns\":%llu,\"end_ns\":%llu,\"bytes\":%llu,"
			      "\"weight\":%u,\"outcome\":\"%s\"}",
			      (unsigned long long)e->start_ns, (unsigned long long)e->end_ns,
			      (unsigned long long)e->bytes, e->weight, weft__outcome_name(e->outcome));
	}
	weft__out_put(&o, "\n]}\n");
	return o.full ? -ENOSPC : (long)o.len;
}

long weft__api_memory(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "{\"now_ns\":%llu,\"mem_limit\":%llu,\"mem_target\":%llu,"
		      "\"mem_pause\":%llu,\"samples\":[", (unsigned long long)s->now_ns,
		      (unsigned long long)s->st.mem_limit, (unsigned long long)s->st.mem_target,
		      (unsigned long long)s->st.mem_pause);
	for (unsigned i = 0; i < s->nsamples; i++) {
		const struct weft__view_sample *m = &s->samples[i];

		weft__out_put(&o, "%s\n{\"t_ns\":%llu,\"mem_bytes\":%llu,\"spilled_bytes\":%llu,"
			      "\"restored_bytes\":%llu,\"spill_file_bytes\":%llu,"
			      "\"tasks_run\":%llu,\"tasks_failed\":%llu,\"paused\":%u,"
			      "\"spill_blocked\":%u,\"transfer_bytes\":%llu}", i ? "," : "",
			      (unsigned long long)m->t_ns, (unsigned long long)m->mem_bytes,
			      (unsigned long long)m->spilled_bytes,
			      (unsigned long long)m->restored_bytes,
			      (unsigned long long)m->spill_file_bytes,
			      (unsigned long long)m->tasks_run, (unsigned long long)m->tasks_failed,
			      m->paused, m->spill_blocked, (unsigned long long)m->transfer_bytes);
	}
	weft__out_put(&o, "\n]}\n");
	return o.full ? -ENOSPC : (long)o.len;
}

long weft__api_workers(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "[");
	for (unsigned i = 0; i < s->nworkers; i++) {
		const struct weft__view_worker *w = &s->workers[i];

		weft__out_put(&o, "%s\n{\"name\":", i ? "," : "");
		weft__out_json(&o, w->name);
		weft__out_put(&o, ",\"nthreads\":%u,\"mem_bytes\":%llu,\"mem_limit\":%llu,"
			      "\"spilled_bytes\":%llu,\"restored_bytes\":%llu,\"tasks_queued\":%u,"
			      "\"tasks_running\":%u,\"tasks_run\":%llu,\"paused\":%u,"
			      "\"spill_blocked\":%u,\"mem_target\":%llu,\"mem_pause\":%llu,"
			      "\"bytes_in\":%llu,\"bytes_out\":%llu}", w->nthreads,
			      (unsigned long long)w->mem_used, (unsigned long long)w->mem_limit,
			      (unsigned long long)w->spilled, (unsigned long long)w->restored,
			      w->queued, w->running, (unsigned long long)w->tasks_run, w->paused,
			      w->spill_blocked, (unsigned long long)w->mem_target,
			      (unsigned long long)w->mem_pause, (unsigned long long)w->bytes_in,
			      (unsigned long long)w->bytes_out);
	}
	weft__out_put(&o, "\n]\n");
	return o.full ? -ENOSPC : (long)o.len;
}

long weft__api_transfers(const struct weft__view_snap *s, char *buf, size_t cap)
{
	struct weft__out o = { buf, cap, 0, 0 };

	weft__out_put(&o, "{\"now_ns\":%llu,\"transfers\":[", (unsigned long long)s->now_ns);
	for (unsigned i = 0; i < s->ntransfers; i++) {
		const struct weft__view_transfer *x = &s->transfers[i];

		weft__out_put(&o, "%s\n{\"from\":", i ? "," : "");
		weft__out_json(&o, x->from);
		weft__out_put(&o, ",\"to\":");
		weft__out_json(&o, x->to);
		weft__out_put(&o, ",\"bytes\":%llu,\"start_ns\":%llu,\"end_ns\":%llu}",
			      (unsigned long long)x->bytes, (unsigned long long)x->start_ns,
			      (unsigned long long)x->end_ns);
	}
	weft__out_put(&o, "\n]}\n");
	return o.full ? -ENOSPC : (long)o.len;
}
