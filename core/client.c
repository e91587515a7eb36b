// SPDX-License-Identifier: MIT
/*
 * client.c - the client handle: addresses, options, the calls that need a client,
 * and what a call does with a handle that is no longer live (see core.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "remote.h"

/* Schemes weft knows, and whether this build serves them. */
static const char *const schemes[] = { "tcp://", "verbs://", "shm://" };

static int address_check(const char *address)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t n = strlen(schemes[i]);

		if (strncmp(address, schemes[i], n))
			continue;
		if (!address[n]) {
			weft__log(WEFT_LOG_ERROR, "client", "%s: no host or name", address);
			return -EINVAL;
		}
		return 0;
	}
	weft__log(WEFT_LOG_ERROR, "client",
		  "%s: unknown address; expected tcp://host:port, shm://host:port or "
		  "verbs://host:port", address);
	return -EINVAL;
}

static int options_copy(const struct weft_options *in, struct weft_options *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	if (!in)
		return 0;
	if (in->size < offsetof(struct weft_options, nthreads) + sizeof(unsigned) ||
	    in->size > WEFT_OPTS_MAX_SIZE)
		return -EINVAL;
	memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
	return 0;
}

#ifdef WEFT_DEBUG
bool weft__stale_aborts = true;
#else
bool weft__stale_aborts;
#endif

/* Reports beyond this many are not logged: a loop of them would flood stderr. */
#define STALE_REPORTS 8
static _Atomic unsigned stale_reports;

void weft__handle_stale(const char *call, const char *what)
{
	/* Relaxed: a count of reports that orders nothing. */
	unsigned n = atomic_fetch_add_explicit(&stale_reports, 1, memory_order_relaxed);
	const char *done = strcmp(what, "client") ? "released" : "closed";

	if (weft__stale_aborts) {
		weft__log(WEFT_LOG_ERROR, "client", "%s: this %s was %s already (or never"
			  " given out by weft): aborting (debug build)", call, what, done);
		abort();
	}
	if (n < STALE_REPORTS)
		weft__log(WEFT_LOG_ERROR, "client", "%s: this %s was %s already (or never"
			  " given out by weft): ignored, -EBADF%s", call, what, done,
			  n + 1 == STALE_REPORTS ? "; further ones are not logged" : "");
}

/* Closed clients, for the next open (see struct weft_client). */
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_client *clients_free;

static struct weft_client *client_get(void)
{
	struct weft_client *c;

	pthread_mutex_lock(&clients_lock);
	c = clients_free;
	if (c)
		clients_free = c->next_free;
	pthread_mutex_unlock(&clients_lock);
	return c ? c : calloc(1, sizeof(*c));
}

static void client_put(struct weft_client *c)
{
	weft__handle_kill(&c->gen);
	c->eng = NULL;
	pthread_mutex_lock(&clients_lock);
	c->next_free = clients_free;
	clients_free = c;
	pthread_mutex_unlock(&clients_lock);
}

int weft_client_open(const char *address, const struct weft_options *opts,
		     struct weft_client **out)
{
	struct weft_options o;
	int ret;

	if (!out)
		return -EINVAL;
	ret = options_copy(opts, &o);
	if (ret)
		return ret;
	if (weft__self_any())
		return -EDEADLK;
	if (!address) {
		address = getenv("WEFT_SCHEDULER");
		if (address && !*address)
			address = NULL;
	}
	if (address)
		return address_check(address) ?: weft__remote_open(address, &o, out);
	return weft__client_open_embedded(&o, out);
}

int weft__client_open_embedded(const struct weft_options *o, struct weft_client **out)
{
	struct weft_client *c;
	int ret;

	c = client_get();
	if (!c)
		return -ENOMEM;
	ret = weft__engine_open(o, &c->eng);
	if (ret) {
		client_put(c);
		return ret;
	}
	*out = weft__handle_make(c, atomic_load_explicit(&c->gen, memory_order_relaxed));
	return 0;
}

int weft_client_close(struct weft_client *h)
{
	struct weft_client *c;

	if (!h)
		return 0;
	if (weft__is_remote(h))
		return weft__remote_close(h);
	c = weft__client_of(h, "weft_client_close");
	if (!c)
		return -EBADF;
	if (weft__self(c->eng))
		return -EDEADLK;
	weft__engine_close(c->eng);
	client_put(c);
	return 0;
}

int weft_submit_named(struct weft_client *h, const char *fn,
		      struct weft_future *const *deps, size_t ndeps, const void *arg,
		      size_t arglen, const struct weft_task_opts *opts,
		      struct weft_future **out)
{
	weft_fn *f;

	if (!h || !fn)
		return -EINVAL;
	if (weft__is_remote(h))
		return weft__remote_submit(h, NULL, fn, deps, ndeps, arg, arglen, opts, out);
	f = weft__registry_find(fn);
	if (!f)
		return WEFT_ENOFN;
	return weft_submit(h, f, deps, ndeps, arg, arglen, opts, out);
}

int weft_scatter(struct weft_client *h, const void *data, size_t len,
		 struct weft_future **out)
{
	struct weft_client *c;

	if (!h)
		return -EINVAL;
	if (weft__is_remote(h))
		return weft__remote_scatter(h, data, len, out);
	c = weft__client_of(h, "weft_scatter");
	if (!c)
		return -EBADF;
	return weft__task_scatter(c->eng, data, len, out);
}

/* Relaxed reads: each counter has one writer; a sum need not be one instant. */
static void stats_add(struct weft_stats *s, struct weft__cache *c)
{
	s->tasks_run += atomic_load_explicit(&c->run, memory_order_relaxed);
	s->tasks_failed += atomic_load_explicit(&c->failed, memory_order_relaxed);
	s->tasks_cancelled += atomic_load_explicit(&c->cancelled, memory_order_relaxed);
	s->steals += atomic_load_explicit(&c->steals, memory_order_relaxed);
	s->parks += atomic_load_explicit(&c->parks, memory_order_relaxed);
	/* Each thread's retirements before its creations: a task retired elsewhere
	 * than it was made may make one thread's difference negative for a moment. */
	s->tasks_pending -= atomic_load_explicit(&c->retired, memory_order_relaxed);
	s->tasks_pending += atomic_load_explicit(&c->created, memory_order_relaxed);
}

void weft__engine_stats(struct weft__engine *eng, struct weft_stats *out)
{
	struct weft_stats s = { .size = sizeof(s) };
	struct weft__store_stats ss;
	struct weft__cache *cache;
	unsigned i, idle;

	s.nthreads = eng->nthreads;
	s.nnuma = eng->nnuma;
	pthread_mutex_lock(&eng->pool_lock);
	for (i = 0; i < eng->nthreads; i++)
		stats_add(&s, &eng->workers[i]->cache);
	for (cache = eng->ext_caches; cache; cache = cache->next)
		stats_add(&s, cache);
	pthread_mutex_unlock(&eng->pool_lock);
	if ((int64_t)s.tasks_pending < 0)	/* read while tasks moved on */
		s.tasks_pending = 0;
	/*
	 * Running: the threads neither looking for work nor asleep (a count of its
	 * own would cost every task two stores). A picture: relaxed loads.
	 */
	idle = atomic_load_explicit(&eng->nparked, memory_order_relaxed) +
	       atomic_load_explicit(&eng->nspinning, memory_order_relaxed);
	s.tasks_running = idle < eng->nthreads ? eng->nthreads - idle : 0;
	s.mem_bytes = weft__alloc_bytes(eng->alloc);
	s.mem_peak = weft__alloc_peak(eng->alloc);
	s.mem_limit = eng->cfg.memory_limit;
	s.mem_target = (size_t)(eng->cfg.mem_target * (double)eng->cfg.memory_limit);
	s.mem_pause = (size_t)(eng->cfg.mem_pause * (double)eng->cfg.memory_limit);
	weft__store_stats(eng, &ss);
	s.spilled_bytes = ss.spilled_bytes;
	s.spilled_results = ss.spilled_items;
	s.restored_bytes = ss.restored_bytes;
	s.restored_results = ss.restored_items;
	s.prefetched_results = ss.prefetched_items;
	s.spill_ns = ss.spill_ns;
	s.restore_ns = ss.restore_ns;
	s.spill_file_bytes = ss.file_bytes;
	s.paused = ss.paused;
	s.spill_blocked = ss.nospace;
	s.mem_available = weft__memory_available();
	*out = s;
}

int weft_stats(struct weft_client *h, struct weft_stats *st)
{
	struct weft_stats s;
	struct weft_client *c;

	if (!h || !st || st->size < sizeof(size_t))
		return -EINVAL;
	if (weft__is_remote(h))
		return weft__remote_stats(h, st);
	c = weft__client_of(h, "weft_stats");
	if (!c)
		return -EBADF;
	weft__engine_stats(c->eng, &s);
	s.size = st->size < sizeof(s) ? st->size : sizeof(s);
	memcpy(st, &s, s.size);
	return 0;
}

/* For unit tests: the engine behind a client. */
struct weft__engine *weft__client_engine(struct weft_client *h)
{
	return ((struct weft_client *)weft__handle_addr(h))->eng;
}
