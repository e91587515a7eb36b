// SPDX-License-Identifier: MIT
/*
 * Unit tests of sched/: the scheduler driven by simulated workers and a client,
 * deterministically. What it sends is recorded; the tests answer as workers would
 * and check placement, the ends clients hear, frees, stealing (no task runs
 * twice), and what happens when a worker dies.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "scheduler.h"

#define CLIENT 100
#define W1 1
#define W2 2
#define MAX_SENT 4096

struct sent {
	uint32_t to;
	uint16_t type;
	uint64_t key;			/* the op's key (task id, or the client's key) */
	uint32_t output;
	uint8_t end;
	int32_t code;
	char msg[256];
	uint32_t holders[4];		/* COMPUTE: its inputs' holders */
	uint32_t ninputs;
	uint32_t client;		/* COMPUTE: the client its worker tells */
	uint64_t ckey;
};

static struct sent sent[MAX_SENT];
static unsigned nsent;
static struct weft__sched *s;

static void record(void *arg, uint32_t to, uint16_t type, const void *op)
{
	struct sent *e = &sent[nsent++];

	(void)arg;
	cr_assert_lt(nsent, MAX_SENT);
	*e = (struct sent){ .to = to, .type = type };
	switch (type) {
	case WEFT_OP_COMPUTE: {
		const struct weft__op_compute *c = op;
		struct weft__plist_iter it;
		struct weft__pinput in;

		e->key = c->key;
		weft__plist_iter_init(&it, &c->inputs);
		/* Encoding side: the items are an array, not raw bytes. */
		for (uint32_t i = 0; i < c->inputs.n && i < 4; i++)
			e->holders[i] = ((const struct weft__pinput *)c->inputs.items)[i].holder;
		e->ninputs = c->inputs.n;
		e->client = c->client;
		e->ckey = c->ckey;
		(void)it;
		(void)in;
		break;
	}
	case WEFT_OP_ENDED: {
		const struct weft__op_ended *x = op;

		e->key = x->key;
		e->end = x->end;
		e->code = x->code;
		weft__pbytes_str(e->msg, sizeof(e->msg), x->message);
		break;
	}
	case WEFT_OP_STATS_ASK:
		e->key = ((const struct weft__op_stats_ask *)op)->id;
		break;
	case WEFT_OP_STATS: {		/* key: the memory in use it gives */
		const struct weft__op_stats *x = op;

		for (uint32_t i = 0; i < x->values.n; i++) {
			const struct weft__pstat *v = &((const struct weft__pstat *)x->values.items)[i];

			if (v->field == WEFT_STAT_MEM_USED)
				e->key = v->value;
		}
		break;
	}
	case WEFT_OP_CANCELLED: {
		const struct weft__op_cancelled *x = op;

		e->key = x->key;
		e->code = x->code;
		break;
	}
	case WEFT_OP_FREE:
	case WEFT_OP_STEAL: {
		const struct weft__op_future *f = op;

		e->key = f->key;
		e->output = f->output;
		break;
	}
	case WEFT_OP_SEND_RESULT: {
		const struct weft__op_send_result *r = op;

		e->key = r->key;
		e->output = r->output;
		break;
	}
	default:
		break;
	}
}

/* Hand @op to the scheduler as it would come: encoded, sent, decoded. */
static void deliver(uint32_t from, uint16_t type, const void *op)
{
	static uint8_t buf[WEFT_PROTO_MAX_MSG];
	uint8_t out[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__msg_out o;
	struct weft__op_iter it;
	struct weft__msg m;
	uint16_t t;
	uint32_t len;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, type, op), 0);
	len = weft__msg_end(&o, 0);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
	weft__op_iter_init(&it, &m);
	cr_assert_eq(weft__op_next(&it, &t, out), 1);
	weft__sched_op(s, from, t, out);
}

static void setup(void)
{
	struct weft__sched_io io = { record, NULL };

	nsent = 0;
	cr_assert_eq(weft__sched_create(&io, &s), 0);
	cr_assert_eq(weft__sched_client_join(s, CLIENT), 0);
}

static void teardown(void)
{
	weft__sched_destroy(s);
}

/* Submit client key @key running "f" with @n dependencies (client keys). */
static void submit(uint64_t key, const uint64_t *deps, uint32_t n, const char *worker)
{
	struct weft__pdep d[8];
	struct weft__op_submit op = { .key = key, .fn = weft__pbytes_of("f", 1), .noutputs = 1,
				      .deps = { .n = n, .items = d } };

	for (uint32_t i = 0; i < n; i++)
		d[i] = (struct weft__pdep){ deps[i], 0 };
	if (worker)
		op.worker = weft__pbytes_of(worker, strlen(worker));
	deliver(CLIENT, WEFT_OP_SUBMIT, &op);
}

/* The last op of @type sent, or NULL; with @key when @key is not 0. */
static struct sent *last(uint16_t type, uint64_t key)
{
	for (unsigned i = nsent; i-- > 0;)
		if (sent[i].type == type && (!key || sent[i].key == key))
			return &sent[i];
	return NULL;
}

/* The first op of @type sent, or NULL. */
static struct sent *first(uint16_t type)
{
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == type)
			return &sent[i];
	return NULL;
}

static unsigned count(uint16_t type, uint32_t to)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nsent; i++)
		n += sent[i].type == type && (!to || sent[i].to == to);
	return n;
}

static void done(uint32_t w, uint64_t id, uint64_t size)
{
	struct weft__psize sz = { size };
	struct weft__op_done op = { .key = id, .end = WEFT_END_DONE, .run_ns = 1000,
				    .sizes = { .n = 1, .items = &sz } };
	struct sent *c = last(WEFT_OP_COMPUTE, id);

	/* As the worker does: the client it was asked to tell hears it first hand. */
	op.told = c && c->client && c->to == w;
	if (op.told)
		sent[nsent++] = (struct sent){ .to = c->client, .type = WEFT_OP_ENDED,
					       .key = c->ckey, .end = WEFT_END_DONE };
	deliver(w, WEFT_OP_DONE, &op);
}

static void failed(uint32_t w, uint64_t id, int32_t code, const char *msg)
{
	struct weft__op_done op = { .key = id, .end = WEFT_END_FAILED, .code = code,
				    .message = weft__pbytes_of(msg, strlen(msg)) };

	deliver(w, WEFT_OP_DONE, &op);
}

static void release(uint64_t key)
{
	struct weft__op_future f = { key, 0, 0 };

	deliver(CLIENT, WEFT_OP_RELEASE, &f);
}

/* The ENDED the client heard for its key, or NULL. */
static struct sent *ended(uint64_t key)
{
	return last(WEFT_OP_ENDED, key);
}

TestSuite(sched, .init = setup, .fini = teardown);

Test(sched, a_chain_runs_where_its_input_is_and_the_client_hears_each_end)
{
	struct sent *c;
	uint64_t a, b;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 2, 1 << 30), 0);
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 2, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	submit(2, (uint64_t[]){ 1 }, 1, NULL);
	cr_assert_eq(count(WEFT_OP_COMPUTE, 0), 2, "the chain is sent ahead");
	a = first(WEFT_OP_COMPUTE)->key;
	c = last(WEFT_OP_COMPUTE, 0);
	b = c->key;
	cr_assert_neq(b, a);
	cr_assert_eq(c->to, first(WEFT_OP_COMPUTE)->to, "to the worker running its input");
	cr_assert_eq(c->ninputs, 1);
	cr_assert_eq(c->holders[0], 0, "the input will be on that worker");
	done(c->to, a, 1 << 20);
	cr_assert_eq(ended(1)->end, WEFT_END_DONE);
	/* The client lets go of a: freed only once b, which needs it, is done. */
	release(1);
	cr_assert_eq(count(WEFT_OP_FREE, 0), 0);
	done(c->to, b, 8);
	cr_assert_eq(ended(2)->end, WEFT_END_DONE);
	cr_assert_eq(count(WEFT_OP_FREE, 0), 1);
	cr_assert_eq(last(WEFT_OP_FREE, 0)->key, a);
	release(2);
	cr_assert_eq(count(WEFT_OP_FREE, 0), 2);
	struct weft__sched_stats st;

	weft__sched_stats(s, &st);
	cr_assert_eq(st.tasks, 0, "both forgotten");
	cr_assert_eq(st.forgotten, 2);
}

/* weft_stats: the workers' figures as they are now, from those still alive. */
Test(sched, stats_wait_for_every_workers_figures)
{
	struct weft__op_stats_ask ask = { 7 };
	struct weft__op_heartbeat hb = { .mem_used = 1000 };

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 2, 1 << 30), 0);
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 2, 1 << 30), 0);
	deliver(W1, WEFT_OP_HEARTBEAT, &hb);	/* a periodic one, before */
	deliver(CLIENT, WEFT_OP_STATS_ASK, &ask);
	cr_assert_eq(count(WEFT_OP_STATS_ASK, W1), 1);
	cr_assert_eq(count(WEFT_OP_STATS_ASK, W2), 1);
	cr_assert_eq(count(WEFT_OP_STATS, CLIENT), 0, "not before the workers answer");
	hb = (struct weft__op_heartbeat){ .mem_used = 5, .ask = last(WEFT_OP_STATS_ASK, 0)->key };
	deliver(W1, WEFT_OP_HEARTBEAT, &hb);
	cr_assert_eq(count(WEFT_OP_STATS, CLIENT), 0, "w2 has not answered");
	weft__sched_gone(s, W2);
	cr_assert_eq(count(WEFT_OP_STATS, CLIENT), 1, "w2 died: answered without it");
	cr_assert_eq(last(WEFT_OP_STATS, 0)->key, 5, "w1's figure as it answered");
	deliver(W1, WEFT_OP_HEARTBEAT, &hb);
	cr_assert_eq(count(WEFT_OP_STATS, CLIENT), 1, "an answer again is not an answer");
}

/* A worker whose connection to the client could not take the end: we tell it. */
Test(sched, the_client_hears_an_end_its_worker_could_not_tell_it)
{
	struct weft__psize sz = { 8 };
	struct weft__op_done op = { .end = WEFT_END_DONE, .run_ns = 1000,
				    .sizes = { .n = 1, .items = &sz }, .told = 0 };
	struct sent *c;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 2, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	c = last(WEFT_OP_COMPUTE, 0);
	cr_assert_eq(c->client, CLIENT, "the worker is asked to tell the client");
	op.key = c->key;
	deliver(W1, WEFT_OP_DONE, &op);
	cr_assert_not_null(ended(1), "the scheduler told the client");
	cr_assert_eq(ended(1)->end, WEFT_END_DONE);
	cr_assert_eq(count(WEFT_OP_ENDED, CLIENT), 1, "once");
}

Test(sched, a_failure_ends_its_dependents_with_the_root_message)
{
	uint64_t a;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	submit(2, (uint64_t[]){ 1 }, 1, NULL);
	submit(3, (uint64_t[]){ 2 }, 1, NULL);
	a = first(WEFT_OP_COMPUTE)->key;
	failed(W1, a, WEFT_ETASK, "task 'f' failed: boom");
	for (uint64_t k = 1; k <= 3; k++) {
		cr_assert_eq(ended(k)->end, WEFT_END_FAILED, "key %lu", (unsigned long)k);
		cr_assert_eq(ended(k)->code, WEFT_ETASK);
		cr_assert_str_eq(ended(k)->msg, "task 'f' failed: boom");
	}
	cr_assert_eq(count(WEFT_OP_COMPUTE, 0), 3, "the dependents were sent ahead");
	/* Their worker reports them failed too: the scheduler has ended them already. */
	failed(W1, a + 1, WEFT_ETASK, "task 'f' failed: boom");
	cr_assert_str_eq(ended(2)->msg, "task 'f' failed: boom");
	/* A dependency that has failed fails a new task at once. */
	submit(4, (uint64_t[]){ 1 }, 1, NULL);
	cr_assert_eq(ended(4)->end, WEFT_END_FAILED);
}

Test(sched, an_unknown_dependency_is_refused)
{
	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, (uint64_t[]){ 77 }, 1, NULL);
	cr_assert_eq(ended(1)->end, WEFT_END_FAILED);
	cr_assert_eq(ended(1)->code, -ENOENT);
	cr_assert_eq(count(WEFT_OP_COMPUTE, 0), 0);
}

Test(sched, a_task_for_a_named_worker_waits_for_it)
{
	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, "w9");
	cr_assert_eq(count(WEFT_OP_COMPUTE, 0), 0, "w9 is not there");
	cr_assert_eq(weft__sched_worker_join(s, W2, "w9", 1, 1 << 30), 0);
	cr_assert_eq(count(WEFT_OP_COMPUTE, W2), 1, "sent when w9 comes");
	cr_assert_eq(weft__sched_worker_join(s, 3, "w9", 1, 1 << 30), -EEXIST);
}

Test(sched, a_dead_workers_tasks_run_elsewhere_and_lost_results_are_recomputed)
{
	struct sent *c;
	uint64_t a, b;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	a = last(WEFT_OP_COMPUTE, 0)->key;
	done(W1, a, 100);
	submit(2, (uint64_t[]){ 1 }, 1, NULL);
	b = last(WEFT_OP_COMPUTE, 0)->key;
	done(W1, b, 100);
	release(1);			/* a's data is freed: b holds what the client wants */
	cr_assert_eq(last(WEFT_OP_FREE, 0)->key, a);
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 1, 1 << 30), 0);
	nsent = 0;
	weft__sched_gone(s, W1);
	/* b is held by the client and was only on w1: a is computed again, then b. */
	c = last(WEFT_OP_COMPUTE, 0);
	cr_assert_not_null(c);
	cr_assert_eq(c->key, a, "the input first");
	cr_assert_eq(c->to, W2);
	done(W2, a, 100);
	c = last(WEFT_OP_COMPUTE, b);
	cr_assert_not_null(c, "then b");
	cr_assert_eq(c->to, W2);
	done(W2, b, 100);
	struct weft__sched_stats st;

	weft__sched_stats(s, &st);
	cr_assert_eq(st.recomputed, 2);
	/* a is not held by anyone now: freed again once b is in memory. */
	cr_assert_eq(last(WEFT_OP_FREE, 0)->key, a);
}

Test(sched, a_running_task_is_placed_again_and_fails_after_too_many_deaths)
{
	uint32_t w = W1;

	cr_assert_eq(weft__sched_worker_join(s, w, "w", 1, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	for (unsigned i = 0; i <= WEFT_SCHED_ALLOWED_FAILURES; i++) {
		cr_assert_eq(last(WEFT_OP_COMPUTE, 0)->to, w);
		weft__sched_gone(s, w);
		w++;
		cr_assert_eq(weft__sched_worker_join(s, w, "w", 1, 1 << 30), 0);
	}
	cr_assert_eq(ended(1)->end, WEFT_END_FAILED);
	cr_assert_eq(ended(1)->code, WEFT_EKILLED);
	cr_assert(strstr(ended(1)->msg, "died 4 times"), "%s", ended(1)->msg);
}

Test(sched, scattered_data_on_a_dead_worker_is_lost)
{
	struct weft__op_piece p = { 5, 0, 3, 0, weft__pbytes_of("abc", 3) };
	struct sent *put;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	deliver(CLIENT, WEFT_OP_SCATTER, &p);
	put = last(WEFT_OP_PUT, 0);
	cr_assert_not_null(put);
	cr_assert_eq(put->to, W1);
	done(W1, 1, 3);			/* the worker has it all */
	cr_assert_eq(ended(5)->end, WEFT_END_DONE);
	weft__sched_gone(s, W1);
	cr_assert_eq(ended(5)->end, WEFT_END_FAILED);
	cr_assert_eq(ended(5)->code, WEFT_ELOST);
}

Test(sched, stealing_moves_tasks_not_started_and_none_runs_twice)
{
	struct weft__op_heartbeat idle = { 0 };
	unsigned runs[64] = { 0 };
	uint64_t first = 0;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	for (uint64_t k = 1; k <= 20; k++)
		submit(k, NULL, 0, "w1");	/* all on w1 at first */
	/* Unrestrict by hand: tasks restricted do not move. Submit free ones too. */
	for (uint64_t k = 21; k <= 40; k++)
		submit(k, NULL, 0, NULL);
	cr_assert_eq(count(WEFT_OP_COMPUTE, W1), 40);
	first = sent[0].key;
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 4, 1 << 30), 0);
	deliver(W2, WEFT_OP_HEARTBEAT, &idle);
	cr_assert_gt(count(WEFT_OP_STEAL, W1), 0, "w2 asks w1 for work");
	/* w1 gives back every other one; the rest had started. */
	unsigned given = 0;

	for (unsigned i = 0; i < nsent; i++) {
		if (sent[i].type != WEFT_OP_STEAL)
			continue;
		struct weft__op_stolen st = { sent[i].key, (uint8_t)(given++ % 2 == 0) };

		deliver(W1, WEFT_OP_STOLEN, &st);
	}
	cr_assert_gt(count(WEFT_OP_COMPUTE, W2), 0, "stolen tasks go to w2");
	/* Every task: each COMPUTE counts as a run only on its latest worker. */
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_COMPUTE)
			runs[sent[i].key - first]++;
	for (unsigned i = 0; i < 40; i++)
		cr_assert_leq(runs[i], 2, "sent at most to the victim and one thief");
	/* The reports: a task done on the victim after it was stolen is not taken. */
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_COMPUTE)
			done(sent[i].to, sent[i].key, 1);
	for (uint64_t k = 1; k <= 40; k++)
		cr_assert_eq(ended(k)->end, WEFT_END_DONE, "key %lu", (unsigned long)k);
	unsigned dones = 0;

	for (unsigned i = 0; i < nsent; i++)
		dones += sent[i].type == WEFT_OP_ENDED && sent[i].end == WEFT_END_DONE;
	cr_assert_eq(dones, 40, "each task ends once");
	/* Restricted tasks stayed on w1. */
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_COMPUTE && sent[i].to == W2)
			cr_assert_gt(sent[i].key - first + 1, 20, "a restricted task moved");
}

/*
 * The thief asks for the newest tasks: a worker runs what it is sent in order, so
 * the oldest have started, and asking for them again at each heartbeat would
 * never move one (a cluster test saw w1 ask for w0's running task for 13 s).
 */
Test(sched, a_thief_asks_for_the_newest_tasks)
{
	struct weft__op_heartbeat idle = { 0 };
	uint64_t newest = 0, oldest = UINT64_MAX;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	for (uint64_t k = 1; k <= 32; k++)
		submit(k, NULL, 0, NULL);
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_COMPUTE) {
			newest = sent[i].key > newest || !newest ? sent[i].key : newest;
			oldest = sent[i].key < oldest ? sent[i].key : oldest;
		}
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 2, 1 << 30), 0);
	deliver(W2, WEFT_OP_HEARTBEAT, &idle);
	cr_assert_eq(count(WEFT_OP_STEAL, W1), 2, "as many as w2's threads");
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_STEAL)
			cr_assert_geq(sent[i].key, newest - 1, "asked for %lu of %lu..%lu",
				      (unsigned long)sent[i].key, (unsigned long)oldest,
				      (unsigned long)newest);
}

/* A worker that ends its last task steals then, not at its next heartbeat. */
Test(sched, a_worker_that_goes_idle_steals_at_once)
{
	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	for (uint64_t k = 1; k <= 10; k++)
		submit(k, NULL, 0, NULL);
	cr_assert_eq(count(WEFT_OP_COMPUTE, W1), 10);
	cr_assert_eq(weft__sched_worker_join(s, W2, "w2", 1, 1 << 30), 0);
	submit(11, NULL, 0, "w2");
	cr_assert_eq(count(WEFT_OP_COMPUTE, W2), 1);
	cr_assert_eq(count(WEFT_OP_STEAL, W1), 0);
	done(W2, last(WEFT_OP_COMPUTE, 0)->key, 8);
	cr_assert_gt(count(WEFT_OP_STEAL, W1), 0, "w2 asks w1 for work when it ends its task");
}

Test(sched, a_client_that_goes_frees_what_it_held)
{
	uint64_t a;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	submit(2, NULL, 0, NULL);
	a = sent[0].key;
	done(W1, a, 10);
	weft__sched_gone(s, CLIENT);
	cr_assert_eq(count(WEFT_OP_FREE, W1), 1, "a's result is freed");
	/* The other one, still running, is freed when it is done. */
	done(W1, a + 1, 10);
	cr_assert_eq(count(WEFT_OP_FREE, W1), 2);
	struct weft__sched_stats st;

	weft__sched_stats(s, &st);
	cr_assert_eq(st.tasks, 0);
}

Test(sched, a_wanted_result_is_sent_by_its_holder)
{
	struct weft__op_future want = { 1, 0, WEFT_WANT_RESULT };
	uint64_t a;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, NULL);
	a = last(WEFT_OP_COMPUTE, 0)->key;
	deliver(CLIENT, WEFT_OP_WANT, &want);
	cr_assert_eq(count(WEFT_OP_SEND_RESULT, 0), 0, "not done yet");
	done(W1, a, 10);
	cr_assert_eq(count(WEFT_OP_SEND_RESULT, W1), 1);
	deliver(CLIENT, WEFT_OP_WANT, &want);
	cr_assert_eq(count(WEFT_OP_SEND_RESULT, W1), 2, "asked again once in memory");
}

Test(sched, cancel_ends_a_waiting_task_and_its_dependents)
{
	struct weft__op_future c = { 2, 0, 0 };

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	submit(1, NULL, 0, "w9");	/* waits for a worker that is not there */
	submit(2, (uint64_t[]){ 1 }, 1, NULL);
	submit(3, (uint64_t[]){ 2 }, 1, NULL);
	deliver(CLIENT, WEFT_OP_CANCEL, &c);
	cr_assert_eq(last(WEFT_OP_CANCELLED, 2)->code, 0, "the client hears it worked");
	cr_assert_eq(ended(2)->end, WEFT_END_CANCELLED);
	cr_assert_eq(ended(3)->end, WEFT_END_CANCELLED);
	cr_assert_eq(ended(3)->code, -ECANCELED);
	cr_assert_null(ended(1), "its input goes on");
	deliver(CLIENT, WEFT_OP_CANCEL, &c);
	cr_assert_eq(last(WEFT_OP_CANCELLED, 2)->code, -EALREADY, "a second time");
}

/*
 * A task sent to a worker already: the worker is asked to give it back. The client
 * hears 0 if it did, -EBUSY if it had started; and 0 if the worker died meanwhile.
 */
Test(sched, cancel_of_a_task_sent_to_a_worker_waits_for_its_answer)
{
	struct weft__op_stolen back;
	unsigned n;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 1, 1 << 30), 0);
	for (uint64_t k = 1; k <= 3; k++)
		submit(k, NULL, 0, NULL);
	cr_assert_eq(count(WEFT_OP_COMPUTE, W1), 3);
	for (uint64_t k = 1; k <= 3; k++) {
		struct weft__op_future c = { k, 0, 0 };

		deliver(CLIENT, WEFT_OP_CANCEL, &c);
	}
	cr_assert_eq(count(WEFT_OP_STEAL, W1), 3, "the worker is asked");
	cr_assert_eq(count(WEFT_OP_CANCELLED, CLIENT), 0, "no answer before the worker's");
	n = nsent;
	back = (struct weft__op_stolen){ sent[n - 3].key, 1 };
	deliver(W1, WEFT_OP_STOLEN, &back);
	back = (struct weft__op_stolen){ sent[n - 2].key, 0 };
	deliver(W1, WEFT_OP_STOLEN, &back);
	cr_assert_eq(last(WEFT_OP_CANCELLED, 1)->code, 0);
	cr_assert_eq(ended(1)->end, WEFT_END_CANCELLED);
	cr_assert_eq(last(WEFT_OP_CANCELLED, 2)->code, -EBUSY, "it had started");
	cr_assert_null(ended(2), "and runs on");
	weft__sched_gone(s, W1);
	cr_assert_eq(last(WEFT_OP_CANCELLED, 3)->code, 0, "its worker died: it runs nowhere");
	cr_assert_eq(ended(3)->end, WEFT_END_CANCELLED);
}

/*
 * A burst of 1,000 tasks, run and released: every map of tasks is empty, but holds
 * the room it grew to until the scheduler shrinks them (its fabric thread does, at
 * each tick); then it holds none.
 */
Test(sched, the_maps_give_back_the_room_of_a_burst)
{
	struct weft__sched_stats st;
	uint64_t ids[1000];
	unsigned n = 0;

	cr_assert_eq(weft__sched_worker_join(s, W1, "w1", 4, 1 << 30), 0);
	for (uint64_t k = 1; k <= 1000; k++)
		submit(k, NULL, 0, NULL);
	for (unsigned i = 0; i < nsent; i++)
		if (sent[i].type == WEFT_OP_COMPUTE)
			ids[n++] = sent[i].key;
	cr_assert_eq(n, 1000);
	for (unsigned i = 0; i < n; i++)
		done(W1, ids[i], 8);
	for (uint64_t k = 1; k <= 1000; k++)
		release(k);
	cr_assert_eq(count(WEFT_OP_FREE, W1), 1000);
	weft__sched_stats(s, &st);
	cr_assert_eq(st.tasks, 0);
	cr_assert_geq(st.map_slots, 4 * 1024, "the burst's room: %lu slots",
		      (unsigned long)st.map_slots);
	weft__sched_shrink(s);
	weft__sched_stats(s, &st);
	cr_assert_eq(st.map_slots, 0, "%lu slots kept", (unsigned long)st.map_slots);
	/* And it goes on as before. */
	submit(1001, NULL, 0, NULL);
	cr_assert_eq(last(WEFT_OP_COMPUTE, 0)->to, W1);
	done(W1, last(WEFT_OP_COMPUTE, 0)->key, 8);
	cr_assert_eq(ended(1001)->end, WEFT_END_DONE);
}
