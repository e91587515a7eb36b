// SPDX-License-Identifier: MIT
/* client.c - the client handle: addresses, options and the calls that need a client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

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
		weft__log(WEFT_LOG_ERROR, "client",
			  "%s: distributed mode is not available in this build of weft; "
			  "unset WEFT_SCHEDULER and pass NULL for an embedded engine",
			  address);
		return -EPROTONOSUPPORT;
	}
	weft__log(WEFT_LOG_ERROR, "client",
		  "%s: unknown address; expected tcp://host:port, verbs://host:port or "
		  "shm://name", address);
	return -EINVAL;
}

static int options_copy(const struct weft_options *in, struct weft_options *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	if (!in)
		return 0;
	if (in->size < offsetof(struct weft_options, nthreads) + sizeof(unsigned) ||
	    in->size > 4096)
		return -EINVAL;
	memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
	return 0;
}

int weft_client_open(const char *address, const struct weft_options *opts,
		     struct weft_client **out)
{
	struct weft_options o;
	struct weft_client *c;
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
		return address_check(address);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = weft__engine_open(&o, &c->eng);
	if (ret) {
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int weft_client_close(struct weft_client *c)
{
	if (!c)
		return 0;
	if (weft__self(c->eng))
		return -EDEADLK;
	weft__engine_close(c->eng);
	free(c);
	return 0;
}

int weft_submit_named(struct weft_client *c, const char *fn,
		      struct weft_future *const *deps, size_t ndeps, const void *arg,
		      size_t arglen, const struct weft_task_opts *opts,
		      struct weft_future **out)
{
	weft_fn *f;

	if (!c || !fn)
		return -EINVAL;
	f = weft__registry_find(fn);
	if (!f)
		return WEFT_ENOFN;
	return weft_submit(c, f, deps, ndeps, arg, arglen, opts, out);
}

int weft_scatter(struct weft_client *c, const void *data, size_t len,
		 struct weft_future **out)
{
	if (!c)
		return -EINVAL;
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
}

int weft_stats(struct weft_client *c, struct weft_stats *st)
{
	struct weft__engine *eng;
	struct weft_stats s = { .size = sizeof(s) };
	struct weft__store_stats ss;
	struct weft__cache *cache;
	unsigned i;

	if (!c || !st || st->size < sizeof(size_t))
		return -EINVAL;
	eng = c->eng;
	s.nthreads = eng->nthreads;
	s.nnuma = eng->nnuma;
	pthread_mutex_lock(&eng->pool_lock);
	for (i = 0; i < eng->nthreads; i++)
		stats_add(&s, &eng->workers[i]->cache);
	for (cache = eng->ext_caches; cache; cache = cache->next)
		stats_add(&s, cache);
	pthread_mutex_unlock(&eng->pool_lock);
	s.mem_bytes = weft__alloc_bytes(eng->alloc);
	s.mem_peak = weft__alloc_peak(eng->alloc);
	s.mem_limit = eng->memory_limit;
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
	memcpy(st, &s, st->size < sizeof(s) ? st->size : sizeof(s));
	st->size = st->size < sizeof(s) ? st->size : sizeof(s);
	return 0;
}

/* For unit tests: the engine behind a client. */
struct weft__engine *weft__client_engine(struct weft_client *c)
{
	return c->eng;
}
