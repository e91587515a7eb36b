/* SPDX-License-Identifier: MIT */
/*
 * views.h - what the scheduler keeps of what its workers record, for its pages and
 * for a client's report and trace (view.h): each worker's labels' figures (whole,
 * as its latest RECORD gave them), the latest recorded tasks and transfers of the
 * cluster (bounded rings), and memory and spill over time from the heartbeats. On
 * the fabric thread only: the pages' requests copy it out there.
 */
#ifndef WEFT_SCHED_VIEWS_H
#define WEFT_SCHED_VIEWS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "view.h"

#define VIEWS_EVENTS 65536		/* the cluster's latest recorded tasks */

struct weft__views;

struct weft__views *weft__views_new(void);
void weft__views_free(struct weft__views *v);

/* A RECORD from worker @id, named @name. */
void weft__views_record(struct weft__views *v, uint32_t id, const char *name,
			const struct weft__op_record *r);
/* Whether a sample is due at @now_ns (cheap: a heartbeat asks). */
bool weft__views_sample_due(struct weft__views *v, int64_t now_ns);
/* The cluster's totals at @now_ns, from its workers' heartbeats, for the charts. */
void weft__views_sample(struct weft__views *v, int64_t now_ns, const struct weft_stats *st);
/* Fill @s's labels, events (since s->since_ns), samples and transfers, as asked. */
void weft__views_fill(struct weft__views *v, struct weft__view_snap *s);
/* Worker @id's bytes read from others and by others (0 if it sent no RECORD). */
void weft__views_bytes(struct weft__views *v, uint32_t id, uint64_t *in, uint64_t *out);

#endif /* WEFT_SCHED_VIEWS_H */
