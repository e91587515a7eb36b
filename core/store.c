// SPDX-License-Identifier: MIT
/*
 * store.c - results in memory and on disk. A result with a heap buffer is tracked
 * once its task has ended: its place in least-recently-used order, its pins (a task
 * reading it, a weft_result view) and where its bytes are. Above the memory target
 * a spill thread writes the coldest unpinned results out in batches and frees their
 * memory; using a spilled result reads it back first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

#define BATCH_ITEMS 256			/* results per spill batch at most */
#define BATCH_BYTES (64u << 20)		/* bytes per spill batch at most */
#define RETRY_NS 100000000		/* a full disk is tried again this often */
#define SPILL_LOOK_NS 20000000		/* an idle spill thread looks again this often */
#define PREFETCH_ITEMS 128		/* results read back ahead in one go at most, and
					 * bytes: the spill file's stage */
#define TRIM_DUE (64u << 20)		/* released spill bytes that start trimming */
#define TRIM_SLICE (16u << 20)		/* queued per idle round: reads wait little */

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

static int pin_locked(struct weft__engine *eng, struct weft__stored *r);
static void prefetch_some(struct weft__engine *eng);

static struct stored_list *list_of(struct weft__store *s, struct weft__stored *r)
{
	return r->cold ? &s->disk : &s->lru;
}

/*
 * Whether @r is linked in @l as a doubly linked list says: its neighbours point
 * back at it, or it is the list's end. For WEFT_ASSERT, under the store's lock.
 */
static __attribute__((unused)) bool list_holds(const struct stored_list *l,
					       const struct weft__stored *r)
{
	return (r->prev ? r->prev->next == r : l->head == r) &&
	       (r->next ? r->next->prev == r : l->tail == r);
}

static void list_unlink(struct stored_list *l, struct weft__stored *r)
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

static void list_append(struct stored_list *l, struct weft__stored *r)
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
static void list_move(struct weft__store *s, struct weft__stored *r, bool cold)
{
	list_unlink(list_of(s, r), r);
	r->cold = cold;
	list_append(list_of(s, r), r);
}

/* ---- the spill thread ---- */

static void set_paused(struct weft__engine *eng, bool on)
{
	if (atomic_load_explicit(&eng->paused, memory_order_relaxed) == on)
		return;
	if (on)
		weft__log(WEFT_LOG_INFO, "spill", "paused: %zu bytes in memory, pause at %zu",
			  weft__alloc_bytes(eng->alloc), eng->store->pause);
	weft__engine_pause(eng, on);
}

/* With the lock held: mark the coldest spillable results, up to @need bytes. */
static unsigned pick(struct weft__store *s, size_t need, struct weft__stored **batch)
{
	size_t got = 0;
	unsigned n = 0;

	for (struct weft__stored *r = s->lru.head; r && got < need && n < BATCH_ITEMS &&
	     got < BATCH_BYTES; r = r->next) {
		if (r->state != ST_MEM || r->pins)
			continue;
		r->state = ST_SPILLING;
		r->item.data = r->f->data;
		r->item.len = r->f->len;
		batch[n++] = r;
		got += r->usable;
	}
	return n;
}

/* With the lock held: the batch was written (or not, @err): settle each result. */
static void settle(struct weft__engine *eng, struct weft__stored **batch, unsigned n,
		   int err)
{
	struct weft__store *s = eng->store;

	for (unsigned i = 0; i < n; i++) {
		struct weft__stored *r = batch[i];
		struct weft_future *f;

		if (r->dropped) {
			/* Freed meanwhile (its record may be reused): finish the job. */
			if (!err)
				weft__spill_release(s->file, r->item.off, r->item.len);
			weft__free(eng->alloc, r->item.data, r->usable);
			free(r);
			continue;
		}
		f = r->f;
		if (err || r->pins) {
			/* Not written, or read meanwhile: it stays in memory. */
			if (!err)
				weft__spill_release(s->file, r->item.off, r->item.len);
			r->state = ST_MEM;
			continue;
		}
		weft__free(eng->alloc, f->data, r->usable);
		f->data = NULL;
		r->state = ST_DISK;
		list_move(s, r, true);
		atomic_fetch_add_explicit(&s->on_disk, 1, memory_order_relaxed);
		s->st.spilled_bytes += f->len;
		s->st.spilled_items++;
	}
}

/*
 * With the lock held: say why waiting tasks wait. Messages are never changed or
 * freed before close, so a pointer handed out stays valid; one per distinct error.
 */
static void publish_blocked(struct weft__store *s, int err)
{
	static const char fmt[] = "not started yet: the engine is paused because it %s";
	struct blocked_msg *m;

	for (m = s->msgs; m && m->err != err; m = m->next)
		;
	if (!m) {
		size_t len = sizeof(fmt) + strlen(s->why);

		m = malloc(sizeof(*m) + len);
		if (!m)
			return;
		m->err = err;
		snprintf(m->msg, len, fmt, s->why);
		m->next = s->msgs;
		s->msgs = m;
	}
	/* Release pairs with the acquire in weft__store_blocked(). */
	atomic_store_explicit(&s->blocked, m->msg, memory_order_release);
}

const char *weft__store_blocked(struct weft__engine *eng)
{
	return atomic_load_explicit(&eng->store->blocked, memory_order_acquire);
}

/*
 * The spill thread runs above the workers, so that it gets a core as soon as the
 * disk has done what it asked; the trimmer and the io_uring workers it starts
 * inherit that. Refused without CAP_SYS_NICE: said when the environment asked.
 */
static void raise_priority(struct weft__engine *eng)
{
	int ret = weft__raise_priority(eng->cfg.io_nice);

	if (ret)
		weft__log(eng->cfg.io_nice_set ? WEFT_LOG_WARN : WEFT_LOG_INFO, "spill",
			  "WEFT_IO_NICE=%u: the spill thread keeps the process's priority: %s",
			  eng->cfg.io_nice, weft_strerror(ret));
}

/*
 * Nothing to spill: have what was released in the file freed now, by the spill
 * file's trimmer, a slice at a time between read-aheads, rather than all of it in
 * the close (seconds per GiB where the file system discards freed blocks); with
 * nothing to trim, sleep until woken, or look again after a while. With s->lock.
 */
static void spill_idle(struct weft__store *s)
{
	struct timespec until;

	if (s->file) {
		struct weft__spill *file = s->file;
		uint64_t cut;

		pthread_mutex_unlock(&s->lock);
		cut = weft__spill_trim(file, TRIM_DUE, TRIM_SLICE);
		pthread_mutex_lock(&s->lock);
		if (cut)
			return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SPILL_LOOK_NS;
	if (until.tv_nsec >= NSEC_PER_SEC) {
		until.tv_sec++;
		until.tv_nsec -= NSEC_PER_SEC;
	}
	pthread_cond_timedwait(&s->wake, &s->lock, &until);
}

/*
 * Write the @n results of @batch to the spill file (opened at the first batch),
 * unlocked, and settle them. With s->lock. Return: 0 or a negative errno.
 */
static int spill_batch(struct weft__engine *eng, struct weft__stored **batch,
		       struct weft__spill_item *items, unsigned n)
{
	struct weft__store *s = eng->store;
	/* Only this thread sets file, so it may use it unlocked; others read it
	 * under the lock, so it is published under the lock. */
	struct weft__spill *file = s->file;
	int64_t t0;
	int err = 0;

	for (unsigned i = 0; i < n; i++)
		items[i] = batch[i]->item;
	pthread_mutex_unlock(&s->lock);
	t0 = weft__mono_ns();
	if (!file)
		err = weft__spill_open(eng->cfg.spill_dir, eng->cfg.spill_backend,
				       eng->cfg.spill_direct,
				       weft__spill_stage_for(eng->cfg.memory_limit), &file);
	if (!err)
		err = weft__spill_write(file, items, n);
	pthread_mutex_lock(&s->lock);
	s->file = file;
	for (unsigned i = 0; i < n; i++)
		batch[i]->item = items[i];
	settle(eng, batch, n, err);
	if (!err) {
		/* Spilled memory is gone only once its pages are: keep what fits. */
		size_t bytes = weft__alloc_bytes(eng->alloc);

		pthread_mutex_unlock(&s->lock);
		weft__alloc_purge(eng->alloc, s->hard > bytes ? s->hard - bytes : 0);
		pthread_mutex_lock(&s->lock);
	}
	s->st.spill_ns += (uint64_t)(weft__mono_ns() - t0);
	return err;
}

/* Say when spilling stops working, and when it works again. With s->lock. */
static void spill_outcome(struct weft__engine *eng, int err)
{
	struct weft__store *s = eng->store;

	if (err && !s->nospace) {
		snprintf(s->why, sizeof(s->why), "cannot spill to %s: %s",
			 eng->cfg.spill_dir, weft_strerror(err));
		weft__log(WEFT_LOG_ERROR, "spill", "%s; paused until it can", s->why);
		publish_blocked(s, err);
	} else if (!err && s->nospace) {
		weft__log(WEFT_LOG_WARN, "spill", "spilling to %s again", eng->cfg.spill_dir);
		atomic_store_explicit(&s->blocked, NULL, memory_order_release);
	}
	s->nospace = err != 0;
}

static void *spill_main(void *arg)
{
	struct weft__engine *eng = arg;
	struct weft__store *s = eng->store;
	struct weft__stored **batch = malloc(BATCH_ITEMS * sizeof(*batch));
	struct weft__spill_item *items = malloc(BATCH_ITEMS * sizeof(*items));
	int64_t retry_at = 0;

	weft__name_thread("weft-spill");
	raise_priority(eng);
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		unsigned n = 0;
		int err;

		prefetch_some(eng);
		size_t bytes = weft__alloc_bytes(eng->alloc);

		if (bytes > s->target && batch && items && weft__mono_ns() >= retry_at)
			n = pick(s, bytes - s->target, batch);
		/* Paused only while spilling can bring memory down. */
		s->stuck = bytes > s->target && !n && !s->nospace;
		set_paused(eng, bytes > s->pause && (n || s->nospace));
		s->rounds++;
		pthread_cond_broadcast(&s->room);
		if (!n) {
			spill_idle(s);
			continue;
		}
		err = spill_batch(eng, batch, items, n);
		spill_outcome(eng, err);
		retry_at = err ? weft__mono_ns() + RETRY_NS : 0;
	}
	set_paused(eng, false);
	s->stuck = true;		/* no more spilling: let waiters give up */
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->lock);
	free(items);
	free(batch);
	return NULL;
}

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
		if (pthread_create(&s->thread, NULL, spill_main, eng))
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
static void prefetch_some(struct weft__engine *eng)
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
