// SPDX-License-Identifier: MIT
/*
 * engine.c - opening and closing an engine: its settings, topology, memory, store
 * and worker threads; and close's wait for quiescence.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "view.h"
#include "events.h"
#include "core.h"

static _Atomic uint64_t next_engine_id;

/* ---- open and close ---- */

static __cold int workers_create(struct weft__engine *eng)
{
	unsigned n = eng->nthreads, i, j, k;
	unsigned *cores = calloc(n, sizeof(*cores));

	eng->workers = calloc(n, sizeof(*eng->workers));
	if (!cores || !eng->workers)
		goto err_nomem;
	weft__topo_spread(eng->topo, n, cores);
	for (i = 0; i < n; i++) {
		struct weft__worker *w;

		if (posix_memalign((void **)&w, WEFT_CACHELINE, sizeof(*w)))
			goto err_nomem;
		memset(w, 0, sizeof(*w));
		eng->workers[i] = w;
		w->victims = calloc(n, sizeof(*w->victims));
		w->seen = calloc(n, sizeof(*w->seen));
		if (eng->cfg.record)
			w->events = weft__events_new();
		if (!w->victims || !w->seen || (eng->cfg.record && !w->events) ||
		    weft__deque_init(&w->dq, WEFT_DEQUE_CAP)) {
			free(w->victims);
			free(w->seen);
			weft__events_free(w->events);
			free(w);
			eng->workers[i] = NULL;
			goto err_nomem;
		}
		w->eng = eng;
		w->cache.eng = eng;
		w->id = i;
		w->core = cores[i];
		w->numa = weft__topo_core_numa(eng->topo, cores[i]);
		w->rng = 0x9e3779b97f4a7c15ull * (i + 1) ^ eng->id;
	}
	/* Victims: same domain first. */
	for (i = 0; i < n; i++) {
		struct weft__worker *w = eng->workers[i];

		for (k = 0; k < 2; k++)
			for (j = 0; j < n; j++) {
				bool local = eng->workers[j]->numa == w->numa;

				if (j != i && local == !k)
					w->victims[w->nvictims++] = j;
			}
		for (j = 0; j < w->nvictims; j++)
			if (eng->workers[w->victims[j]]->numa == w->numa)
				w->nlocal++;
	}
	free(cores);
	return 0;

err_nomem:
	free(cores);
	return -ENOMEM;
}

static __cold void workers_free(struct weft__engine *eng)
{
	unsigned i;

	for (i = 0; eng->workers && i < eng->nthreads; i++) {
		struct weft__worker *w = eng->workers[i];

		if (!w)
			continue;
		weft__deque_fini(&w->dq);
		free(w->victims);
		free(w->seen);
		weft__events_free(w->events);
		free(w);
	}
	free(eng->workers);
	eng->workers = NULL;
}

static __cold void workers_stop(struct weft__engine *eng, unsigned started)
{
	unsigned i;

	atomic_store_explicit(&eng->stop, true, memory_order_seq_cst);
	weft__engine_wake_all(eng);
	for (i = 0; i < started; i++)
		pthread_join(eng->workers[i]->thread, NULL);
}

static __cold int workers_start(struct weft__engine *eng)
{
	unsigned i;
	int ret;

	for (i = 0; i < eng->nthreads; i++) {
		ret = pthread_create(&eng->workers[i]->thread, NULL, weft__worker_main,
				     eng->workers[i]);
		if (ret) {
			weft__log(WEFT_LOG_ERROR, "core", "cannot start thread %u of %u: %s",
				  i + 1, eng->nthreads, weft_strerror(-ret));
			workers_stop(eng, i);
			return -EAGAIN;
		}
	}
	return 0;
}

static __cold void engine_free(struct weft__engine *eng)
{
	weft__ext_caches_put(eng);
	workers_free(eng);
	weft__store_destroy(eng);
	free(eng->prio);
	eng->prio = NULL;
	pthread_mutex_destroy(&eng->prio_lock);
	pthread_mutex_destroy(&eng->pool_lock);
	weft__samples_destroy(&eng->samples);
	weft__alloc_destroy(eng->alloc);
	eng->alloc = NULL;
	weft__topo_unload(eng->topo);
	eng->topo = NULL;
	weft__config_fini(&eng->cfg);
}

int weft__engine_open(const struct weft_options *opts, struct weft__engine **out)
{
	int os_node[WEFT_ALLOC_MAX_NUMA];
	struct weft__engine *eng;
	unsigned i;
	int ret;

	if (posix_memalign((void **)&eng, WEFT_CACHELINE, sizeof(*eng)))
		return -ENOMEM;
	memset(eng, 0, sizeof(*eng));
	eng->id = atomic_fetch_add_explicit(&next_engine_id, 1, memory_order_relaxed) + 1;
	pthread_mutex_init(&eng->prio_lock, NULL);
	pthread_mutex_init(&eng->pool_lock, NULL);
	weft__samples_init(&eng->samples);
	ret = weft__topo_load(&eng->topo);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "core", "cannot read the topology: %s",
			  weft_strerror(ret));
		goto err_free;
	}
	ret = weft__config_resolve(&eng->cfg, opts, weft__topo_ncores(eng->topo));
	if (ret)
		goto err_free;
	eng->nthreads = eng->cfg.nthreads;
	eng->nnuma = weft__topo_nnuma(eng->topo);
	for (i = 0; i < eng->nnuma; i++)
		os_node[i] = weft__topo_numa_os_index(eng->topo, i);
	ret = weft__alloc_create(eng->nnuma, os_node, &eng->alloc);
	if (ret)
		goto err_free;
	ret = weft__store_create(eng);
	if (ret)
		goto err_free;
	ret = workers_create(eng);
	if (ret)
		goto err_free;
	ret = workers_start(eng);
	if (ret)
		goto err_free;
	weft__engine_serve(eng);
	*out = eng;
	return 0;

err_free:
	engine_free(eng);
	free(eng);
	return ret;
}

/* Every task that entered scheduling has left it: sum retired, then created. */
static bool quiescent(struct weft__engine *eng, uint64_t *sig)
{
	uint64_t created = 0, retired = 0;
	struct weft__cache *c;
	unsigned i;

	/*
	 * Retired first: a retirement seen here happened after its creation, so that
	 * creation is seen by the later reads (acquire, paired with the release in
	 * counter_inc_release, which counts retirements). Equal sums twice in a row,
	 * with nothing new, means quiet.
	 */
	pthread_mutex_lock(&eng->pool_lock);
	for (i = 0; i < eng->nthreads; i++)
		retired += atomic_load_explicit(&eng->workers[i]->cache.retired,
						memory_order_acquire);
	for (c = eng->ext_caches; c; c = c->next)
		retired += atomic_load_explicit(&c->retired, memory_order_acquire);
	for (i = 0; i < eng->nthreads; i++)
		created += atomic_load_explicit(&eng->workers[i]->cache.created,
						memory_order_acquire);
	for (c = eng->ext_caches; c; c = c->next)
		created += atomic_load_explicit(&c->created, memory_order_acquire);
	pthread_mutex_unlock(&eng->pool_lock);
	if (created != retired) {
		*sig = UINT64_MAX;
		return false;
	}
	if (*sig == created)
		return true;
	*sig = created;
	return false;
}

void weft__engine_close(struct weft__engine *eng)
{
	struct timespec nap = { 0, 100000 };
	uint64_t sig = UINT64_MAX, held;

	weft__http_stop(eng->http);	/* its requests read the workers */
	eng->http = NULL;
	/* From now on queued tasks are ended as cancelled instead of run. */
	atomic_store_explicit(&eng->closing, true, memory_order_seq_cst);
	weft__engine_wake_all(eng);
	while (!quiescent(eng, &sig)) {
		nanosleep(&nap, NULL);
		weft__engine_wake_all(eng);
	}
	workers_stop(eng, eng->nthreads);
	weft__store_stop(eng);
	if (weft__alloc_unbound(eng->alloc))
		weft__log(WEFT_LOG_INFO, "alloc",
			  "%u NUMA domain(s) could not bind result memory to their node",
			  weft__alloc_unbound(eng->alloc));
	held = weft__task_close(eng);	/* frees results: the store is still there */
	engine_free(eng);
	if (!held) {
		weft__task_free_pool(eng);
		free(eng);
		return;
	}
	weft__log(WEFT_LOG_DEBUG, "core", "closed with %llu futures still held",
		  (unsigned long long)held);
	eng->closed = true;
	atomic_store_explicit(&eng->husk_live, held, memory_order_release);
}
