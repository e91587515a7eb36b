// SPDX-License-Identifier: MIT
/*
 * evict.c - the spill thread: above the memory target it picks the coldest
 * unpinned results, writes them to the spill file in a batch and frees their
 * memory; it pauses the engine while spilling can bring memory down, says when
 * spilling is blocked (a full disk, an I/O error) and tries again; idle, it trims
 * the file and reads back what queued tasks will need.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define BATCH_ITEMS 256			/* results per spill batch at most */
#define BATCH_BYTES (64u << 20)		/* bytes per spill batch at most */
#define RETRY_NS 100000000		/* a full disk is tried again this often */
#define SPILL_LOOK_NS 20000000		/* an idle spill thread looks again this often */
#define TRIM_DUE (64u << 20)		/* released spill bytes that start trimming */
#define TRIM_SLICE (16u << 20)		/* queued per idle round: reads wait little */

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

void *weft__store_spill_main(void *arg)
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

		weft__store_prefetch_some(eng);
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
