/* SPDX-License-Identifier: MIT */
/*
 * store.h - the result store between its two files: store.c (tracking, pins,
 * read-back, prefetch, drop) and evict.c (the spill thread that writes the coldest
 * results out and pauses the engine). Everything here is under s->lock.
 */
#ifndef WEFT_STORE_H
#define WEFT_STORE_H

#include <pthread.h>

#include "core.h"

enum { ST_MEM, ST_SPILLING, ST_DISK, ST_RESTORING };

struct weft__stored {
	struct weft_future *f;		/* the result's slot */
	struct weft__stored *prev, *next;	/* in s->lru, or s->disk when cold */
	unsigned pins;			/* readers that need the bytes in memory */
	uint8_t state;			/* ST_* */
	bool viewed;			/* a weft_result view holds one of the pins */
	bool dropped;			/* freed while being spilled or read back */
	bool queued;			/* waiting in the prefetch queue */
	bool cold;			/* on disk: in s->disk, not in s->lru */
	bool held;			/* one pin is a prefetch's, for the next reader */
	size_t usable;			/* accounted bytes of the buffer while in memory; the
					 * future's usable is only a marker once tracked, never
					 * written again (readers check it unlocked) */
	struct weft__spill_item item;	/* where it is on disk */
};

/* What weft_future_error() says of a waiting task while spilling is blocked. */
struct blocked_msg {
	struct blocked_msg *next;
	int err;
	char msg[];
};

struct stored_list {
	struct weft__stored *head, *tail;
};

struct weft__store {
	pthread_mutex_t lock;		/* everything here and in every stored record */
	pthread_cond_t wake;		/* the spill thread waits here */
	pthread_cond_t restored;	/* waiters for a result being read back */
	pthread_cond_t room;		/* outputs waiting below the hard limit */
	bool stuck;			/* above target with nothing left to spill */
	struct weft__stored **pf;	/* results to read back ahead of their readers */
	size_t pf_len, pf_cap;
	_Atomic uint64_t on_disk;	/* results on disk now: 0 skips prefetch checks */
	uint64_t rounds;		/* passes of the spill thread, for waiters */
	/*
	 * Results in memory in LRU order (head is coldest), and apart from them the
	 * results on disk, so that picking what to spill never walks past those.
	 */
	struct stored_list lru, disk;
	struct weft__spill *file;	/* opened at the first spill */
	pthread_t thread;
	bool started, stop;
	bool nospace;			/* the last batch failed: disk full or I/O error */
	char why[256];			/* ... and why */
	struct blocked_msg *msgs;	/* one immutable message per error seen */
	_Atomic(const char *) blocked;	/* the message while spilling is blocked */
	size_t target, pause, hard;	/* thresholds in bytes */
	struct weft__store_stats st;
};

static inline struct stored_list *list_of(struct weft__store *s, struct weft__stored *r)
{
	return r->cold ? &s->disk : &s->lru;
}

/*
 * Whether @r is linked in @l as a doubly linked list says: its neighbours point
 * back at it, or it is the list's end. For WEFT_ASSERT, under the store's lock.
 */
static inline bool list_holds(const struct stored_list *l,
					       const struct weft__stored *r)
{
	return (r->prev ? r->prev->next == r : l->head == r) &&
	       (r->next ? r->next->prev == r : l->tail == r);
}

static inline void list_unlink(struct stored_list *l, struct weft__stored *r)
{
	WEFT_ASSERT(list_holds(l, r));
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

static inline void list_append(struct stored_list *l, struct weft__stored *r)
{
	WEFT_ASSERT(!r->prev && !r->next && l->head != r);
	r->prev = l->tail;
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

/* Move @r to the list it belongs in now (@cold: on disk), at its warm end. */
static inline void list_move(struct weft__store *s, struct weft__stored *r, bool cold)
{
	list_unlink(list_of(s, r), r);
	r->cold = cold;
	list_append(list_of(s, r), r);
}

/* store.c: read back up to a stage of the results queued for prefetch. */
void weft__store_prefetch_some(struct weft__engine *eng);
/* evict.c: the spill thread. */
void *weft__store_spill_main(void *arg);

#endif /* WEFT_STORE_H */
