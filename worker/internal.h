/* SPDX-License-Identifier: MIT */
/*
 * internal.h - worker/'s own: the worker's state and its tasks (worker.c: the
 * fabric's callbacks, start and stop; run.c: running what the scheduler sends,
 * fetching inputs, reporting ends; serve.c: serving results to peers and clients,
 * and the other ops).
 */
#ifndef WEFT_WORKER_INTERNAL_H
#define WEFT_WORKER_INTERNAL_H

#include <pthread.h>

#include "core.h"
#include "fabric.h"
#include "map.h"
#include "worker.h"

#define PIECE (WEFT_FAB_MSG_MAX - 128)	/* result bytes in one RESULT or LEASE op */

/* A task the scheduler sent, from COMPUTE (or PUT) to FREE. */
struct rtask {
	uint64_t key;
	uint32_t noutputs;
	struct weft_future **outs;	/* handles, once submitted */
	uint8_t *freed;			/* per output: FREED (FREE came), RELEASED */
	uint32_t nfreed;
	uint32_t leases;		/* open on its outputs: they wait to be released */
	/* Before it is submitted: */
	struct weft__op_compute *c;	/* a copy of what to run, inputs resolved below */
	struct weft_future **in;	/* an input's future, local or fetched */
	bool *in_fetched;		/* in[i] is ours to release after submit */
	uint32_t nin, missing;
	int fail;			/* an input could not be had */
	bool submitted, ended, stolen;
	uint32_t client;		/* told of the end directly, if not 0 */
	uint64_t ckey;
	int64_t start;
	/* Scattered data being put together: */
	uint8_t *put;
	uint64_t put_total, put_got;
};

/* A fetch of one input from its holder. */
struct fetch {
	struct weft__fab_read r;	/* first: the read's done finds the fetch */
	struct weft__wrt *w;
	struct rtask *t;
	uint32_t i;			/* which input */
	struct weft__peer *holder;
	uint32_t holder_id;		/* the scheduler's id of it */
	int64_t start_ns;		/* when the fetch began */
	uint64_t len;			/* of the input, once the lease said */
	uint64_t lease;
	struct weft_future *f;		/* the input being read into */
};

#define FREED 1				/* the scheduler freed the output */
#define RELEASED 2			/* and its future was released */

/* A result pinned for a peer's RMA read. */
struct lease {
	struct rtask *t;
	uint32_t output;
	struct weft__fab_mr *mr;
	struct weft__peer *reader;	/* it ends when the reader goes, if not before */
};

struct end_call {
	struct weft__fab_call c;
	struct weft__wrt *w;
	struct weft_future *f;		/* the task's first output (an address) */
	uint32_t final;
};

/* The figures of a label the scheduler was last sent (record.c). */
struct sent_label {
	const char *label;
	uint64_t count, failed;
	bool sent;
};

/* What goes to the scheduler in the next RECORD (record.c). */
struct wrt_record {
	uint64_t *seen;			/* per engine thread: events sent so far */
	struct sent_label *sent;	/* VIEW_LABELS_MAX of them */
	unsigned nsent;
	struct weft__ptransfer *xfers;	/* inputs read since the last RECORD */
	unsigned nxfers;
	uint64_t xfers_dropped;
	uint64_t bytes_in, bytes_out;	/* inputs read from others; results they read */
};

struct weft__wrt {
	struct weft_client *c;
	struct weft__engine *eng;
	struct weft__fabric *f;
	struct weft__peer *sched;	/* once it proved the token */
	struct weft__peer *connecting;	/* the scheduler, before that */
	char name[WEFT_PROTO_MAX_NAME + 1];
	size_t inline_max;
	struct weft__map tasks;		/* scheduler key -> rtask */
	struct weft__map by_future;	/* first output's address -> rtask */
	struct weft__map peers;		/* scheduler's peer id -> fabric peer */
	struct weft__map fetches;	/* request id -> fetch */
	struct weft__map leases;	/* lease id -> lease */
	uint64_t next_req, next_lease;
	uint32_t running;		/* submitted and not ended */
	struct wrt_record rec;		/* on the fabric thread */
	struct weft__fab_watch sched_heard;	/* on the fabric thread */
	/* weft__worker_wait */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool over;
	int why;
	bool joined;
};

/* worker.c */
void weft__wrt_finish(struct weft__wrt *w, int why);
void weft__wrt_send_sched(struct weft__wrt *w, uint16_t type, const void *op);

/* record.c */
void weft__wrt_record_transfer(struct weft__wrt *w, uint32_t from, uint64_t bytes,
			       int64_t start_ns, int64_t end_ns);
void weft__wrt_record_send(struct weft__wrt *w);
void weft__wrt_record_free(struct weft__wrt *w);

/* run.c */
int weft__wrt_result_pin(struct weft__wrt *w, struct weft_future *h, const void **data,
			 size_t *len);
void weft__wrt_result_unpin(struct weft__wrt *w, struct weft_future *h);
void weft__wrt_rtask_free(struct weft__wrt *w, struct rtask *t);
void weft__wrt_report(struct weft__wrt *w, struct rtask *t, uint8_t end, int32_t code,
		      const char *msg);
void weft__wrt_input_in(struct weft__wrt *w, struct rtask *t, uint32_t i,
			struct weft_future *f,
			bool fetched, int err);
void weft__wrt_fetch_end(struct weft__wrt *w, struct fetch *fe, struct weft_future *f,
			 int err);
void weft__wrt_on_lease(struct weft__wrt *w, struct weft__peer *from,
			const struct weft__op_lease *l);
void weft__wrt_on_compute(struct weft__wrt *w, const struct weft__op_compute *c);
void weft__wrt_end_hook(void *arg, struct weft_future *f, uint32_t final);

/* serve.c */
void weft__wrt_on_lease_ask(struct weft__wrt *w, struct weft__peer *from,
			    const struct weft__op_lease_ask *a);
void weft__wrt_lease_end(struct weft__wrt *w, uint64_t id);
void weft__wrt_on_send_result(struct weft__wrt *w, const struct weft__op_send_result *r);
void weft__wrt_on_put(struct weft__wrt *w, const struct weft__op_piece *p);
void weft__wrt_on_free(struct weft__wrt *w, const struct weft__op_future *f);
void weft__wrt_on_steal(struct weft__wrt *w, const struct weft__op_future *f);
void weft__wrt_on_peer(struct weft__wrt *w, const struct weft__op_peer *p);

#endif /* WEFT_WORKER_INTERNAL_H */
