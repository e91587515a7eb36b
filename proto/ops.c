// SPDX-License-Identifier: MIT
/*
 * ops.c - the layout and bounds of every op: a schema each, which wire.c's one
 * encoder and decoder follow. A field's bounds are what any honest peer sends; a
 * value outside them makes the whole message bad. Rules between fields (a piece
 * inside its result) are each schema's check().
 */
#include <errno.h>
#include <stddef.h>

#include "internal.h"

#define MAX_RETRIES 1000
#define MAX_THREADS 65536
#define MAX_LIST 65535			/* items of a list; the message bounds it anyway */

#define U8(t, m, lo, hi)	{ PF_U8, offsetof(t, m), lo, hi, NULL }
#define U32(t, m, lo, hi)	{ PF_U32, offsetof(t, m), lo, hi, NULL }
#define U32_ANY(t, m)		{ PF_U32, offsetof(t, m), 0, UINT32_MAX, NULL }
#define U64(t, m)		{ PF_U64, offsetof(t, m), 0, 0, NULL }
#define I32(t, m, lo, hi)	{ PF_I32, offsetof(t, m), lo, hi, NULL }
#define FIXED(t, m)		{ PF_FIXED, offsetof(t, m), 0, sizeof(((t *)0)->m), NULL }
#define BYTES(t, m, lo, hi)	{ PF_BYTES, offsetof(t, m), lo, hi, NULL }
#define TEXT(t, m, lo, hi)	{ PF_TEXT, offsetof(t, m), lo, hi, NULL }
#define LIST(t, m, hi, s)	{ PF_LIST, offsetof(t, m), 0, hi, &s }
#define SCHEMA(n, t, f)		{ n, sizeof(t), sizeof(f) / sizeof(f[0]), f }

static const struct weft__field hello_f[] = {
	U8(struct weft__op_hello, role, WEFT_ROLE_CLIENT, WEFT_ROLE_SCHEDULER),
	FIXED(struct weft__op_hello, nonce),
	BYTES(struct weft__op_hello, ctrl_addr, 1, WEFT_PROTO_MAX_ADDR),
	U64(struct weft__op_hello, conn),
	BYTES(struct weft__op_hello, data_addr, 0, WEFT_PROTO_MAX_ADDR),
	TEXT(struct weft__op_hello, name, 0, WEFT_PROTO_MAX_NAME),
	U32(struct weft__op_hello, nthreads, 0, MAX_THREADS),
	U64(struct weft__op_hello, memory_limit),
	BYTES(struct weft__op_hello, data_addr2, 0, WEFT_PROTO_MAX_ADDR),
};

static const struct weft__field auth_f[] = {
	FIXED(struct weft__op_auth, mac),
};

static const struct weft__field dep_f[] = {
	U64(struct weft__pdep, key),
	U32(struct weft__pdep, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
};
static const struct weft__schema dep_s = SCHEMA("dep", struct weft__pdep, dep_f);

static const struct weft__field submit_f[] = {
	U64(struct weft__op_submit, key),
	TEXT(struct weft__op_submit, fn, 1, WEFT_PROTO_MAX_NAME),
	TEXT(struct weft__op_submit, label, 0, WEFT_PROTO_MAX_NAME),
	TEXT(struct weft__op_submit, worker, 0, WEFT_PROTO_MAX_NAME),
	BYTES(struct weft__op_submit, arg, 0, WEFT_PROTO_MAX_ARG),
	U32(struct weft__op_submit, noutputs, 1, WEFT_PROTO_MAX_OUTPUTS),
	I32(struct weft__op_submit, priority, INT32_MIN, INT32_MAX),
	U32(struct weft__op_submit, retries, 0, MAX_RETRIES),
	LIST(struct weft__op_submit, deps, WEFT_PROTO_MAX_DEPS, dep_s),
};

static const struct weft__field piece_f[] = {
	U64(struct weft__op_piece, key),
	U32(struct weft__op_piece, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
	U64(struct weft__op_piece, total),
	U64(struct weft__op_piece, offset),
	BYTES(struct weft__op_piece, data, 0, WEFT_PROTO_MAX_BYTES),
};

/* A piece lies inside its result. */
static int piece_check(const void *op)
{
	const struct weft__op_piece *p = op;

	if (p->offset > p->total || p->data.len > p->total - p->offset)
		return -EINVAL;
	return 0;
}

static const struct weft__field future_f[] = {
	U64(struct weft__op_future, key),
	U32(struct weft__op_future, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
	U32(struct weft__op_future, flags, 0, WEFT_WANT_RESULT),
};

static const struct weft__field stats_ask_f[] = {
	U64(struct weft__op_stats_ask, id),
};

static const struct weft__field ended_f[] = {
	U64(struct weft__op_ended, key),
	U8(struct weft__op_ended, end, WEFT_END_DONE, WEFT_END_CANCELLED),
	I32(struct weft__op_ended, code, INT32_MIN, 0),
	TEXT(struct weft__op_ended, message, 0, WEFT_PROTO_MAX_TEXT),
};

static const struct weft__field stat_f[] = {
	U32_ANY(struct weft__pstat, field),
	U64(struct weft__pstat, value),
};
static const struct weft__schema stat_s = SCHEMA("stat", struct weft__pstat, stat_f);

static const struct weft__field stats_f[] = {
	U64(struct weft__op_stats, id),
	LIST(struct weft__op_stats, values, MAX_LIST, stat_s),
};

static const struct weft__field peer_f[] = {
	U32(struct weft__op_peer, id, 1, UINT32_MAX),
	U8(struct weft__op_peer, role, WEFT_ROLE_CLIENT, WEFT_ROLE_SCHEDULER),
	TEXT(struct weft__op_peer, name, 0, WEFT_PROTO_MAX_NAME),
	BYTES(struct weft__op_peer, ctrl_addr, 1, WEFT_PROTO_MAX_ADDR),
	BYTES(struct weft__op_peer, data_addr, 0, WEFT_PROTO_MAX_ADDR),
};

static const struct weft__field input_f[] = {
	U64(struct weft__pinput, key),
	U32(struct weft__pinput, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
	U32_ANY(struct weft__pinput, holder),
	U64(struct weft__pinput, len),
};
static const struct weft__schema input_s = SCHEMA("input", struct weft__pinput, input_f);

static const struct weft__field compute_f[] = {
	U64(struct weft__op_compute, key),
	TEXT(struct weft__op_compute, fn, 1, WEFT_PROTO_MAX_NAME),
	TEXT(struct weft__op_compute, label, 0, WEFT_PROTO_MAX_NAME),
	BYTES(struct weft__op_compute, arg, 0, WEFT_PROTO_MAX_ARG),
	U32(struct weft__op_compute, noutputs, 1, WEFT_PROTO_MAX_OUTPUTS),
	I32(struct weft__op_compute, priority, INT32_MIN, INT32_MAX),
	U32(struct weft__op_compute, retries, 0, MAX_RETRIES),
	LIST(struct weft__op_compute, inputs, WEFT_PROTO_MAX_DEPS, input_s),
	U32_ANY(struct weft__op_compute, client),
	U64(struct weft__op_compute, ckey),
};

static const struct weft__field gone_f[] = {
	U32(struct weft__op_gone, id, 1, UINT32_MAX),
};

static const struct weft__field send_result_f[] = {
	U64(struct weft__op_send_result, key),
	U32(struct weft__op_send_result, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
	U32(struct weft__op_send_result, client, 1, UINT32_MAX),
	U64(struct weft__op_send_result, ckey),
};

static const struct weft__field cancelled_f[] = {
	U64(struct weft__op_cancelled, key),
	I32(struct weft__op_cancelled, code, -4095, 0),
};

static const struct weft__field stolen_f[] = {
	U64(struct weft__op_stolen, key),
	U8(struct weft__op_stolen, ok, 0, 1),
};

static const struct weft__field size_f[] = {
	U64(struct weft__psize, len),
};
static const struct weft__schema size_s = SCHEMA("size", struct weft__psize, size_f);

static const struct weft__field done_f[] = {
	U64(struct weft__op_done, key),
	U8(struct weft__op_done, end, WEFT_END_DONE, WEFT_END_CANCELLED),
	I32(struct weft__op_done, code, INT32_MIN, 0),
	TEXT(struct weft__op_done, message, 0, WEFT_PROTO_MAX_TEXT),
	U64(struct weft__op_done, run_ns),
	LIST(struct weft__op_done, sizes, WEFT_PROTO_MAX_OUTPUTS, size_s),
	U8(struct weft__op_done, told, 0, 1),
};

static const struct weft__field heartbeat_f[] = {
	U64(struct weft__op_heartbeat, mem_used),
	U64(struct weft__op_heartbeat, mem_limit),
	U64(struct weft__op_heartbeat, spilled),
	U64(struct weft__op_heartbeat, restored),
	U32_ANY(struct weft__op_heartbeat, queued),
	U32_ANY(struct weft__op_heartbeat, running),
	U64(struct weft__op_heartbeat, tasks_run),
	U8(struct weft__op_heartbeat, paused, 0, 1),
	U64(struct weft__op_heartbeat, ask),
	U64(struct weft__op_heartbeat, mem_target),
	U64(struct weft__op_heartbeat, mem_pause),
	U8(struct weft__op_heartbeat, spill_blocked, 0, 1),
};

static const struct weft__field lease_ask_f[] = {
	U64(struct weft__op_lease_ask, req),
	U64(struct weft__op_lease_ask, key),
	U32(struct weft__op_lease_ask, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
};

static const struct weft__field lease_f[] = {
	U64(struct weft__op_lease, req),
	U32(struct weft__op_lease, output, 0, WEFT_PROTO_MAX_OUTPUTS - 1),
	I32(struct weft__op_lease, status, -4095, 0),
	U64(struct weft__op_lease, lease),
	U64(struct weft__op_lease, rkey),
	U64(struct weft__op_lease, addr),
	U64(struct weft__op_lease, len),
	BYTES(struct weft__op_lease, data, 0, WEFT_PROTO_MAX_BYTES),
};

/* The bytes come inline or by a lease, never both; a refusal carries neither. */
static int lease_check(const void *op)
{
	const struct weft__op_lease *l = op;

	if (l->status && (l->lease || l->data.len))
		return -EINVAL;
	if (l->lease && l->data.len)
		return -EINVAL;
	if (!l->lease && !l->status && l->data.len != l->len)
		return -EINVAL;
	return 0;
}

static const struct weft__field unlease_f[] = {
	U64(struct weft__op_unlease, lease),
};

static const struct weft__field ping_f[] = {
	U64(struct weft__op_ping, now),
};

static const struct weft__field part_f[] = {
	U32(struct weft__op_part, total, WEFT_PROTO_OP_HDR, WEFT_PROTO_MAX_OP),
	BYTES(struct weft__op_part, data, 1, WEFT_PROTO_MAX_BYTES),
};

/* A piece is no larger than its op. */
static int part_check(const void *op)
{
	const struct weft__op_part *p = op;

	return p->data.len > p->total ? -EINVAL : 0;
}

static const struct weft__field plabel_f[] = {
	TEXT(struct weft__plabel, label, 1, WEFT_PROTO_MAX_NAME),
	U64(struct weft__plabel, count),
	U64(struct weft__plabel, failed),
	U64(struct weft__plabel, total_ns),
};
static const struct weft__schema plabel_s = SCHEMA("label", struct weft__plabel, plabel_f);

static const struct weft__field pbucket_f[] = {
	U32_ANY(struct weft__pbucket, label),
	U32(struct weft__pbucket, bucket, 0, WEFT_PROTO_HIST - 1),
	U64(struct weft__pbucket, count),
};
static const struct weft__schema pbucket_s = SCHEMA("bucket", struct weft__pbucket, pbucket_f);

static const struct weft__field pevent_f[] = {
	U32(struct weft__pevent, thread, 0, MAX_THREADS - 1),
	TEXT(struct weft__pevent, label, 1, WEFT_PROTO_MAX_NAME),
	U64(struct weft__pevent, start_ns),
	U64(struct weft__pevent, end_ns),
	U64(struct weft__pevent, bytes),
	U32_ANY(struct weft__pevent, weight),
	U8(struct weft__pevent, outcome, 1, 3),
};
static const struct weft__schema pevent_s = SCHEMA("event", struct weft__pevent, pevent_f);

static const struct weft__field ptransfer_f[] = {
	U32(struct weft__ptransfer, from, 1, UINT32_MAX),
	U64(struct weft__ptransfer, bytes),
	U64(struct weft__ptransfer, start_ns),
	U64(struct weft__ptransfer, end_ns),
};
static const struct weft__schema ptransfer_s = SCHEMA("transfer", struct weft__ptransfer,
						       ptransfer_f);

static const struct weft__field record_f[] = {
	U64(struct weft__op_record, mono_ns),
	U64(struct weft__op_record, real_ns),
	LIST(struct weft__op_record, labels, MAX_LIST, plabel_s),
	LIST(struct weft__op_record, buckets, MAX_LIST, pbucket_s),
	LIST(struct weft__op_record, events, WEFT_PROTO_MAX_EVENTS, pevent_s),
	LIST(struct weft__op_record, transfers, MAX_LIST, ptransfer_s),
	U64(struct weft__op_record, bytes_in),
	U64(struct weft__op_record, bytes_out),
};

/*
 * A bucket names a label of the RECORD; a task ends after it starts. Checked as
 * it is encoded (the lists are arrays then) and as it is decoded.
 */
static int record_check(const void *op)
{
	const struct weft__op_record *r = op;
	struct weft__plist_iter it;
	struct weft__pbucket b;
	struct weft__pevent e;

	if (r->buckets.items || r->events.items) {
		const struct weft__pbucket *bs = r->buckets.items;
		const struct weft__pevent *es = r->events.items;

		for (uint32_t i = 0; bs && i < r->buckets.n; i++)
			if (bs[i].label >= r->labels.n)
				return -EINVAL;
		for (uint32_t i = 0; es && i < r->events.n; i++)
			if (es[i].end_ns < es[i].start_ns)
				return -EINVAL;
		return 0;
	}
	weft__plist_iter_init(&it, &r->buckets);
	while (weft__plist_next(&it, &b))
		if (b.label >= r->labels.n)
			return -EINVAL;
	weft__plist_iter_init(&it, &r->events);
	while (weft__plist_next(&it, &e))
		if (e.end_ns < e.start_ns)
			return -EINVAL;
	return 0;
}

static const struct weft__field view_ask_f[] = {
	U64(struct weft__op_view_ask, id),
	U8(struct weft__op_view_ask, kind, WEFT_VIEW_REPORT, WEFT_VIEW_TRACE),
};

static const struct weft__field view_f[] = {
	U64(struct weft__op_view, id),
	I32(struct weft__op_view, code, -4095, 0),
	BYTES(struct weft__op_view, data, 0, WEFT_PROTO_MAX_VIEW),
};

/* A refusal carries no bytes. */
static int view_check(const void *op)
{
	const struct weft__op_view *v = op;

	return v->code && v->data.len ? -EINVAL : 0;
}

static const struct weft__field pworker_f[] = {
	TEXT(struct weft__pworker, name, 1, WEFT_PROTO_MAX_NAME),
	U32(struct weft__pworker, nthreads, 0, MAX_THREADS),
	U64(struct weft__pworker, mem_used),
	U64(struct weft__pworker, mem_limit),
	U64(struct weft__pworker, spilled),
	U64(struct weft__pworker, restored),
	U32_ANY(struct weft__pworker, queued),
	U32_ANY(struct weft__pworker, running),
	U64(struct weft__pworker, tasks_run),
	U8(struct weft__pworker, paused, 0, 1),
	U64(struct weft__pworker, bytes_in),
	U64(struct weft__pworker, bytes_out),
};
static const struct weft__schema pworker_s = SCHEMA("worker", struct weft__pworker, pworker_f);

static const struct weft__field workers_f[] = {
	U64(struct weft__op_workers, id),
	LIST(struct weft__op_workers, workers, MAX_LIST, pworker_s),
};

#define OP(type, n, t, f, chk) [type] = { SCHEMA(n, t, f), chk }

static const struct {
	struct weft__schema s;
	int (*check)(const void *op);
} ops[WEFT_OP_TYPES] = {
	OP(WEFT_OP_HELLO, "HELLO", struct weft__op_hello, hello_f, NULL),
	OP(WEFT_OP_AUTH, "AUTH", struct weft__op_auth, auth_f, NULL),
	OP(WEFT_OP_SUBMIT, "SUBMIT", struct weft__op_submit, submit_f, NULL),
	OP(WEFT_OP_SCATTER, "SCATTER", struct weft__op_piece, piece_f, piece_check),
	OP(WEFT_OP_WANT, "WANT", struct weft__op_future, future_f, NULL),
	OP(WEFT_OP_RELEASE, "RELEASE", struct weft__op_future, future_f, NULL),
	OP(WEFT_OP_CANCEL, "CANCEL", struct weft__op_future, future_f, NULL),
	OP(WEFT_OP_STATS_ASK, "STATS_ASK", struct weft__op_stats_ask, stats_ask_f, NULL),
	OP(WEFT_OP_ENDED, "ENDED", struct weft__op_ended, ended_f, NULL),
	OP(WEFT_OP_STATS, "STATS", struct weft__op_stats, stats_f, NULL),
	OP(WEFT_OP_PEER, "PEER", struct weft__op_peer, peer_f, NULL),
	OP(WEFT_OP_COMPUTE, "COMPUTE", struct weft__op_compute, compute_f, NULL),
	OP(WEFT_OP_PUT, "PUT", struct weft__op_piece, piece_f, piece_check),
	OP(WEFT_OP_FREE, "FREE", struct weft__op_future, future_f, NULL),
	OP(WEFT_OP_SEND_RESULT, "SEND_RESULT", struct weft__op_send_result, send_result_f,
	   NULL),
	OP(WEFT_OP_STEAL, "STEAL", struct weft__op_future, future_f, NULL),
	OP(WEFT_OP_DONE, "DONE", struct weft__op_done, done_f, NULL),
	OP(WEFT_OP_STOLEN, "STOLEN", struct weft__op_stolen, stolen_f, NULL),
	OP(WEFT_OP_HEARTBEAT, "HEARTBEAT", struct weft__op_heartbeat, heartbeat_f, NULL),
	OP(WEFT_OP_LEASE_ASK, "LEASE_ASK", struct weft__op_lease_ask, lease_ask_f, NULL),
	OP(WEFT_OP_LEASE, "LEASE", struct weft__op_lease, lease_f, lease_check),
	OP(WEFT_OP_UNLEASE, "UNLEASE", struct weft__op_unlease, unlease_f, NULL),
	OP(WEFT_OP_RESULT, "RESULT", struct weft__op_piece, piece_f, piece_check),
	OP(WEFT_OP_PING, "PING", struct weft__op_ping, ping_f, NULL),
	OP(WEFT_OP_CANCELLED, "CANCELLED", struct weft__op_cancelled, cancelled_f, NULL),
	OP(WEFT_OP_PART, "PART", struct weft__op_part, part_f, part_check),
	OP(WEFT_OP_GONE, "GONE", struct weft__op_gone, gone_f, NULL),
	OP(WEFT_OP_RECORD, "RECORD", struct weft__op_record, record_f, record_check),
	OP(WEFT_OP_VIEW_ASK, "VIEW_ASK", struct weft__op_view_ask, view_ask_f, NULL),
	OP(WEFT_OP_VIEW, "VIEW", struct weft__op_view, view_f, view_check),
	OP(WEFT_OP_WORKERS_ASK, "WORKERS_ASK", struct weft__op_stats_ask, stats_ask_f, NULL),
	OP(WEFT_OP_WORKERS, "WORKERS", struct weft__op_workers, workers_f, NULL),
};

const struct weft__schema *weft__op_schema(uint16_t type)
{
	if (type >= WEFT_OP_TYPES || !ops[type].s.name)
		return NULL;
	return &ops[type].s;
}

int weft__op_check(uint16_t type, const void *op)
{
	return ops[type].check ? ops[type].check(op) : 0;
}

const char *weft__op_name(uint16_t type)
{
	const struct weft__schema *s = weft__op_schema(type);

	return s ? s->name : NULL;
}

bool weft__op_allowed(uint8_t msg_type, uint16_t type)
{
	switch (msg_type) {
	case WEFT_MSG_HELLO:
		return type == WEFT_OP_HELLO;
	case WEFT_MSG_AUTH:
		return type == WEFT_OP_AUTH;
	case WEFT_MSG_OPS:
		return type != WEFT_OP_HELLO && type != WEFT_OP_AUTH && weft__op_schema(type);
	default:
		return false;
	}
}

/* Every op struct fits the room weft__op_next is given. */
_Static_assert(sizeof(struct weft__op_submit) <= WEFT_OP_MAX_SIZE, "room for SUBMIT");
_Static_assert(sizeof(struct weft__op_compute) <= WEFT_OP_MAX_SIZE, "room for COMPUTE");
_Static_assert(sizeof(struct weft__op_hello) <= WEFT_OP_MAX_SIZE, "room for HELLO");
_Static_assert(sizeof(struct weft__op_lease) <= WEFT_OP_MAX_SIZE, "room for LEASE");
_Static_assert(sizeof(struct weft__op_done) <= WEFT_OP_MAX_SIZE, "room for DONE");
_Static_assert(sizeof(struct weft__op_record) <= WEFT_OP_MAX_SIZE, "room for RECORD");
_Static_assert(sizeof(struct weft__pworker) <= WEFT_OP_MAX_SIZE, "room for a worker");
