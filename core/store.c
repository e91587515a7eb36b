// SPDX-License-Identifier: MIT
/*
 * store.c - results in memory and on disk. A result with a heap buffer is tracked
 * once its task has ended: its place in least-recently-used order, its pins (a task
 * reading it, a weft_result view) and where its bytes are. Above the memory target
 * the spill thread (evict.c) writes the coldest unpinned results out in batches and
 * frees their memory; using a spilled result reads it back first (here).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define PREFETCH_ITEMS 128		/* results read back ahead in one go at most, and
					 * bytes: the spill file's stage */

static int pin_locked(struct weft__engine *eng, struct weft__stored *r);

/* ---- public to core ---- */

int weft__store_create(struct weft__engine *eng)
{
	struct weft__store *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->restored, NULL);
	pthread_cond_init(&s->room, NULL);
	s->target = (size_t)(eng->cfg.memory_limit * eng->cfg.mem_target);
	s->pause = (size_t)(eng->cfg.memory_limit * eng->cfg.mem_pause);
	s->hard = (size_t)(eng->cfg.memory_limit * eng->cfg.mem_hard);
	eng->store = s;
	return 0;
}

void weft__store_stop(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
}

void weft__store_destroy(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;
	struct weft__stored *r, *next;

	if (!s)
		return;
	weft__store_stop(eng);
	/* Results still tracked belong to futures held past close: forget them. */
	for (r = s->lru.head; r; r = next) {
		next = r->next;
		r->f->st = NULL;
		free(r);
	}
	for (r = s->disk.head; r; r = next) {
		next = r->next;
		r->f->st = NULL;
		free(r);
	}
	if (s->file && weft__log_enabled(WEFT_LOG_INFO)) {
		struct weft__spill_stats st;

		weft__spill_stats(s->file, &st);
		weft__log(WEFT_LOG_INFO, "spill", "wrote %" PRIu64 " items, %" PRIu64
			  " bytes in %" PRIu64 " requests, %.3f s; read %" PRIu64 " items"
			  " (%" PRIu64 " ahead of use), %" PRIu64 " bytes in %" PRIu64
			  " requests, %.3f s; %" PRIu64 " bytes trimmed while idle",
			  st.items_written, st.bytes_written, st.writes,
			  st.ns_writing / (double)NSEC_PER_SEC,
			  st.items_read, s->st.prefetched_items, st.bytes_read, st.reads,
			  st.ns_reading / (double)NSEC_PER_SEC, st.trimmed_bytes);
	}
	weft__spill_close(s->file);
	while (s->msgs) {
		struct blocked_msg *m = s->msgs;

		s->msgs = m->next;
		free(m);
	}
	free(s->pf);
	pthread_cond_destroy(&s->room);
	pthread_cond_destroy(&s->restored);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
	eng->store = NULL;
}

/* With the lock held: make sure the spill thread runs, and wake it. */
static void kick_locked(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;

	if (!s->started && !s->stop) {
		if (pthread_create(&s->thread, NULL, weft__store_spill_main, eng))
			weft__log(WEFT_LOG_ERROR, "spill", "cannot start the spill thread");
		else
			s->started = true;
	}
	pthread_cond_signal(&s->wake);
}

void weft__store_kick(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;
	size_t bytes = weft__alloc_bytes(eng->alloc);

	if (bytes <= s->target)
		return;
	/* Pause now, not when the spill thread next looks: producers are fast. */
	if (bytes > s->pause)
		weft__engine_pause(eng, true);
	pthread_mutex_lock(&s->lock);
	kick_locked(eng);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Would @more bytes of results pass the hard limit? If so, wait while spilling
 * makes room; true only when it cannot (all else pinned, or nowhere to write).
 */
bool weft__store_over_hard(struct weft__engine *eng, size_t more)
{
	struct weft__store *s = eng->store;
	bool over;

	if (weft__alloc_bytes(eng->alloc) + more <= s->hard)
		return false;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		uint64_t round;

		over = weft__alloc_bytes(eng->alloc) + more > s->hard;
		if (!over || more > s->hard || s->stop)
			break;
		kick_locked(eng);
		if (!s->started)
			break;
		round = s->rounds;
		/* Two passes since we asked, and still stuck or blocked: give up. */
		while (s->rounds < round + 2 && !s->stop)
			pthread_cond_wait(&s->room, &s->lock);
		if ((s->stuck || s->nospace) &&
		    weft__alloc_bytes(eng->alloc) + more > s->hard)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	return over;
}

void weft__store_track(struct weft__engine *eng, struct weft_future *f)
{
	struct weft__store *s = eng->store;
	struct weft__stored *r = calloc(1, sizeof(*r));

	if (!r)
		return;		/* untracked: never spilled, freed as it is */
	r->f = f;
	r->usable = f->usable;
	pthread_mutex_lock(&s->lock);
	f->st = r;
	list_append(&s->lru, r);
	pthread_mutex_unlock(&s->lock);
	weft__store_kick(eng);
}

/*
 * With the lock held: @r's read back into @buf ended with @err. Return: 0 when its
 * bytes are in memory; -ECANCELED when it was freed meanwhile (so is @r now); else
 * @err, and the read's pin is given back. The caller wakes the waiters.
 */
static int restore_end(struct weft__engine *eng, struct weft__stored *r, void *buf,
		       size_t usable, int err)
{
	struct weft__store *s = eng->store;
	struct weft_future *f = r->f;

	if (r->dropped) {
		/* Freed while it was read back: only the reader knows it. */
		weft__free(eng->alloc, buf, usable);
		weft__spill_release(s->file, r->item.off, r->item.len);
		free(r);
		return -ECANCELED;
	}
	if (err) {
		weft__free(eng->alloc, buf, usable);
		r->state = ST_DISK;
		r->pins--;
		return err;
	}
	weft__spill_release(s->file, r->item.off, r->item.len);
	f->data = buf;
	r->usable = usable;
	r->state = ST_MEM;
	list_move(s, r, false);
	atomic_fetch_sub_explicit(&s->on_disk, 1, memory_order_relaxed);
	s->st.restored_bytes += f->len;
	s->st.restored_items++;
	return 0;
}

/* With the lock held: one more pin; read the bytes back if they are on disk. */
static int pin_locked(struct weft__engine *eng, struct weft__stored *r)
{
	struct weft__store *s = eng->store;
	struct weft_future *f = r->f;
	struct weft__spill_item item;
	struct weft__spill *file;
	size_t usable;
	void *buf;
	int ret;

	/*
	 * A prefetch kept its pin so that what it read is not spilled again before
	 * the task that wanted it runs: the first reader takes that pin over.
	 */
	if (r->held)
		r->held = false;
	else
		r->pins++;
	if (!r->cold)
		list_move(s, r, false);		/* just used: the warm end */
	while (r->state == ST_RESTORING)
		pthread_cond_wait(&s->restored, &s->lock);
	if (r->state != ST_DISK)
		return 0;
	/* Restores may pass the hard limit: without them no work can finish. */
	buf = weft__alloc(eng->alloc, 0, f->len, &usable);
	if (!buf) {
		r->pins--;
		return -ENOMEM;
	}
	r->state = ST_RESTORING;
	item = r->item;
	item.data = buf;
	file = s->file;			/* set before anything reached the disk */
	pthread_mutex_unlock(&s->lock);
	int64_t t0 = weft__mono_ns();
	ret = weft__spill_read(file, &item, 1);
	pthread_mutex_lock(&s->lock);
	s->st.restore_ns += (uint64_t)(weft__mono_ns() - t0);
	ret = restore_end(eng, r, buf, usable, ret);
	pthread_cond_broadcast(&s->restored);
	return ret;
}

/*
 * A future's st is set before its task's end is published and cleared only when
 * the result is freed, so reading it unlocked is safe for a holder; it shares its
 * bytes with the inline result, so it means something only when usable is set.
 */
static struct weft__stored *stored_of(const struct weft_future *f)
{
	return f->usable ? f->st : NULL;
}

int weft__store_pin(struct weft__engine *eng, struct weft_future *f, bool view)
{
	struct weft__store *s = eng->store;
	int ret = 0;

	if (!stored_of(f))
		return 0;
	/*
	 * Reading a result back near the hard limit waits for spilling to make room
	 * first; it goes ahead even without room, since no work finishes otherwise.
	 */
	if (weft__alloc_bytes(eng->alloc) + f->len > s->hard)
		(void)weft__store_over_hard(eng, f->len);
	pthread_mutex_lock(&s->lock);
	if (f->st && !(view && f->st->viewed)) {
		ret = pin_locked(eng, f->st);
		if (!ret && view)
			f->st->viewed = true;
	}
	pthread_mutex_unlock(&s->lock);
	weft__store_kick(eng);		/* a restore may have passed the target */
	return ret;
}

void weft__store_unpin(struct weft__engine *eng, struct weft_future *f, bool view)
{
	struct weft__store *s = eng->store;

	if (!stored_of(f))
		return;
	pthread_mutex_lock(&s->lock);
	if (f->st && (!view || f->st->viewed)) {
		f->st->pins--;
		if (view)
			f->st->viewed = false;
	}
	pthread_mutex_unlock(&s->lock);
	if (weft__alloc_bytes(eng->alloc) > s->target)
		pthread_cond_signal(&s->wake);
}

/* With the lock held: take @r out of the prefetch queue. */
static void unqueue(struct weft__store *s, struct weft__stored *r)
{
	for (size_t i = 0; i < s->pf_len; i++) {
		if (s->pf[i] == r) {
			/* Keep the order: the oldest are read back first. */
			memmove(&s->pf[i], &s->pf[i + 1], (--s->pf_len - i) * sizeof(*s->pf));
			break;
		}
	}
	r->queued = false;
}

/*
 * A task is ready: queue its spilled inputs for the spill thread to read back
 * before the task runs, so that it rarely waits on the disk.
 */
void weft__store_prefetch(struct weft__engine *eng, struct weft_future *const *in,
			  uint32_t n)
{
	struct weft__store *s = eng->store;
	bool any = false;

	if (!atomic_load_explicit(&s->on_disk, memory_order_relaxed))
		return;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < n; i++) {
		struct weft__stored *r = stored_of(in[i]);

		if (!r || r->state != ST_DISK || r->queued)
			continue;
		if (s->pf_len == s->pf_cap) {
			size_t cap = s->pf_cap ? 2 * s->pf_cap : 64;
			struct weft__stored **p = realloc(s->pf, cap * sizeof(*p));

			if (!p)
				break;	/* no prefetch: the task reads it itself */
			s->pf = p;
			s->pf_cap = cap;
		}
		r->queued = true;
		s->pf[s->pf_len++] = r;
		any = true;
	}
	if (any)
		kick_locked(eng);
	pthread_mutex_unlock(&s->lock);
}

/*
 * With the lock held, in the spill thread: read queued results back while they fit,
 * oldest first, a batch at a time, so that the disk has them all to work on at once.
 */
void weft__store_prefetch_some(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;
	struct weft__stored *rs[PREFETCH_ITEMS];
	struct weft__spill_item items[PREFETCH_ITEMS];
	size_t usable[PREFETCH_ITEMS];
	struct weft__spill *file;

	while (s->pf_len && !s->stop) {
		size_t taken = 0, bytes = 0, most = weft__spill_stage(s->file);
		unsigned n = 0;

		while (taken < s->pf_len && n < PREFETCH_ITEMS && bytes < most) {
			struct weft__stored *r = s->pf[taken];
			void *buf;

			if (r->state != ST_DISK) {
				r->queued = false;	/* read back meanwhile */
				taken++;
				continue;
			}
			/*
			 * Only into room below the target: reading past it would only
			 * make the spill thread write something out again (or this very
			 * result). What does not fit, its task reads back itself.
			 */
			if (weft__alloc_bytes(eng->alloc) + r->f->len > s->target)
				break;
			buf = weft__alloc(eng->alloc, 0, r->f->len, &usable[n]);
			if (!buf)
				break;
			r->queued = false;
			r->pins++;
			r->state = ST_RESTORING;
			items[n] = r->item;
			items[n].data = buf;
			bytes += r->f->len;
			rs[n++] = r;
			taken++;
		}
		s->pf_len -= taken;
		memmove(s->pf, s->pf + taken, s->pf_len * sizeof(*s->pf));
		if (!n)
			break;
		file = s->file;		/* set by this thread, before anything was on disk */
		pthread_mutex_unlock(&s->lock);
		int64_t t0 = weft__mono_ns();
		(void)weft__spill_read_ahead(file, items, n);	/* errors are per item */
		pthread_mutex_lock(&s->lock);
		s->st.restore_ns += (uint64_t)(weft__mono_ns() - t0);
		for (unsigned i = 0; i < n; i++) {
			if (restore_end(eng, rs[i], items[i].data, usable[i], items[i].err))
				continue;
			rs[i]->held = true;	/* the pin waits for its reader */
			s->st.prefetched_items++;
		}
		pthread_cond_broadcast(&s->restored);
	}
}

/* The result is freed: in memory, on disk, or by the spill thread if it is writing it. */
void weft__store_drop(struct weft__engine *eng, struct weft_future *f)
{
	struct weft__store *s = eng->store;
	struct weft__stored *r = stored_of(f);

	if (!r) {
		weft__free(eng->alloc, f->data, f->usable);
		return;
	}
	pthread_mutex_lock(&s->lock);
	list_unlink(list_of(s, r), r);
	f->st = NULL;
	if (r->queued)
		unqueue(s, r);
	switch (r->state) {
	case ST_SPILLING:
	case ST_RESTORING:
		/* settle() or the prefetch that reads it back frees it. */
		r->dropped = true;
		r = NULL;
		break;
	case ST_DISK:
		weft__spill_release(s->file, r->item.off, r->item.len);
		atomic_fetch_sub_explicit(&s->on_disk, 1, memory_order_relaxed);
		break;
	default:
		weft__free(eng->alloc, f->data, r->usable);
		break;
	}
	pthread_mutex_unlock(&s->lock);
	free(r);
}

void weft__store_stats(struct weft__engine *eng, struct weft__store_stats *out)
{
	struct weft__store *s = eng->store;
	struct weft__spill_stats fs = { 0 };

	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->nospace = s->nospace;
	if (s->file)
		weft__spill_stats(s->file, &fs);
	pthread_mutex_unlock(&s->lock);
	out->file_bytes = fs.file_bytes;
	out->paused = atomic_load_explicit(&eng->paused, memory_order_relaxed);
}

#ifdef WEFT_TESTING
/* For tests: 1 if @f's bytes are on disk (at *off), 0 if in memory. */
int weft__store_on_disk(struct weft__engine *eng, struct weft_future *f, uint64_t *off)
{
	struct weft__store *s = eng->store;
	int on = 0;

	pthread_mutex_lock(&s->lock);
	if (stored_of(f) && f->st->state == ST_DISK) {
		on = 1;
		*off = f->st->item.off;
	}
	pthread_mutex_unlock(&s->lock);
	return on;
}

/* For tests: the spill file's descriptor, or -1 before the first spill. */
int weft__store_spill_fd(struct weft__engine *eng)
{
	struct weft__store *s = eng->store;
	int fd;

	pthread_mutex_lock(&s->lock);
	fd = s->file ? weft__spill_fd(s->file) : -1;
	pthread_mutex_unlock(&s->lock);
	return fd;
}
#endif /* WEFT_TESTING */
