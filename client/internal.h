/* SPDX-License-Identifier: MIT */
/*
 * internal.h - client/'s own: a remote client and its futures (remote.c: the fabric
 * thread's side, open and close; futures.c: the calls of weft.h on them).
 */
#ifndef WEFT_CLIENT_INTERNAL_H
#define WEFT_CLIENT_INTERNAL_H

#include <pthread.h>

#include "core.h"
#include "fabric.h"
#include "map.h"
#include "remote.h"
#include "scheduler.h"

#define JOIN_NS (5 * NSEC_PER_SEC)	/* to reach the scheduler and prove the token */
#define SCATTER_PIECE (WEFT_FAB_MSG_MAX - 128)
/* Bytes the scheduler adds to a SUBMIT's size when it sends it on as COMPUTE. */
#define COMPUTE_PER_DEP 12

enum { PENDING, ENDED_DONE, ENDED_FAILED, ENDED_CANCELLED };

struct rclient;
struct rtask;

struct rout {
	struct rtask *t;
	uint32_t i;
	uint16_t gen;			/* of its handle: see weft__rc_handle_add() */
	bool released, asked, have;
	bool reading;			/* an RMA read into data is in flight */
	int err;			/* its bytes could not be had */
	uint8_t *data;
	uint64_t len, got;
	struct weft__fab_read r;	/* an RMA read of it */
	uint64_t lease;
	struct weft__peer *from;
};

struct rtask {
	struct rclient *rc;
	uint64_t key;
	uint32_t noutputs, live;	/* outputs not released */
	uint8_t end;
	int32_t code;
	char *msg;
	struct rout out1;
	struct rout *outs;		/* &out1, or noutputs of them */
	bool doomed;			/* released while a read was in flight */
	uint32_t cancels_asked;		/* CANCELs sent; answered in order */
	uint32_t cancels_heard;
	int32_t cancel_code;		/* the latest answer */
};

struct rclient {
	struct weft__fabric *f;
	struct weft__peer *sched, *connecting;
	pthread_mutex_t lock;		/* everything below, and every rtask */
	pthread_cond_t cond;
	struct weft__map tasks;		/* key -> rtask */
	uint64_t next_key;
	bool joined, over, closed;
	int why;			/* how the connection ended */
	uint64_t stats_id, stats_got;
	struct weft__pstat stats[WEFT_STAT_FIELDS];
	/* One VIEW_ASK or WORKERS_ASK at a time (views.c): its answer. */
	bool asking;
	uint64_t ask_seq, answer_id;
	int answer_code;
	void *answer;			/* a VIEW's bytes, or a WORKERS' list's */
	size_t answer_len;
	struct weft__plist answer_list;
	uint32_t live;			/* tasks not released: the client is a husk
					 * after close until they are */
	uint16_t gen;			/* of its handle */
	struct weft__fab_watch sched_heard;	/* on the fabric thread */
};

/* An op encoded by a caller, for the fabric thread to send. */
struct post {
	struct weft__fab_call c;
	struct rclient *rc;
	struct rtask *release;		/* RELEASE: the task to let go of after */
	uint32_t len;
	uint8_t op[];
};

/*
 * A remote handle: the address, its low bit set (remote), and a generation in its
 * top 16 bits (user addresses use 47). The generation is checked against a table
 * of live objects before the address is read, so a handle used after its release
 * or close is caught, as an engine's are, even once its memory serves another.
 */
#define HANDLE_GEN_SHIFT 48
#define HANDLE_ADDR(h) ((uintptr_t)(h) & (((uintptr_t)1 << HANDLE_GEN_SHIFT) - 2))

static inline struct rclient *rc_of(struct weft_client *h)
{
	return (struct rclient *)HANDLE_ADDR(h);
}

static inline struct rout *out_of(struct weft_future *h)
{
	return (struct rout *)HANDLE_ADDR(h);
}

static inline struct weft_future *handle_of(struct rout *o)
{
	return (struct weft_future *)((uintptr_t)o | 1 | (uintptr_t)o->gen << HANDLE_GEN_SHIFT);
}

static inline struct weft_client *client_handle(struct rclient *rc)
{
	return (struct weft_client *)((uintptr_t)rc | 1 | (uintptr_t)rc->gen << HANDLE_GEN_SHIFT);
}

/* Enter @p among the live objects; its handles carry the generation returned. */
int weft__rc_handle_add(const void *p, uint16_t *gen);
void weft__rc_handle_del(const void *p);
/* Whether handle @h names a live object (same address, same generation). */
bool weft__rc_handle_live(const void *h);

void weft__rc_rtask_free(struct rtask *t);
void weft__rc_rclient_free(struct rclient *rc);
/* Hand op @type to the fabric thread; @release: a task to free after it. */
int weft__rc_post(struct rclient *rc, uint16_t type, const void *op, struct rtask *release);
/* views.c, on the fabric thread */
void weft__rc_on_view(struct rclient *rc, const struct weft__op_view *v);
void weft__rc_on_workers(struct rclient *rc, const struct weft__op_workers *w);
/* Wait on rc->cond (rc->lock held) until @deadline: 0 or ETIMEDOUT. */
int weft__rc_wait_until(struct rclient *rc, int64_t deadline);

#endif /* WEFT_CLIENT_INTERNAL_H */
