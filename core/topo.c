// SPDX-License-Identifier: MIT
/*
 * topo.c - the machine's cores and NUMA domains, from hwloc (the only file that uses
 * it). A synthetic topology ($HWLOC_SYNTHETIC) or an XML one ($HWLOC_XMLFILE) works
 * too, so NUMA-aware code can be tested on a one-socket machine; then nothing is
 * pinned, since those cores are not this machine's.
 */
#include <errno.h>
#include <stdlib.h>
#include <hwloc.h>

#include "core.h"

struct weft__topo {
	hwloc_topology_t topo;
	unsigned ncores;
	unsigned nnuma;
	hwloc_obj_t *cores;			/* allowed cores, in logical order */
	unsigned *core_numa;			/* domain of each core */
	int *numa_os;				/* OS index of each domain */
	bool this_system;
};

static unsigned numa_of(hwloc_topology_t topo, hwloc_obj_t core)
{
	hwloc_obj_t node = NULL;
	unsigned best = 0;

	/* The first NUMA node whose cpuset covers the core's; domain 0 when none does. */
	while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)))
		if (node->cpuset && hwloc_bitmap_isincluded(core->cpuset, node->cpuset))
			return node->logical_index;
	return best;
}

int weft__topo_load(struct weft__topo **out)
{
	struct weft__topo *t;
	hwloc_obj_type_t unit = HWLOC_OBJ_CORE;
	unsigned i;
	int ret = -ENOMEM;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (hwloc_topology_init(&t->topo)) {
		ret = -errno ?: -ENOMEM;
		goto err_free;
	}
	if (hwloc_topology_load(t->topo)) {
		ret = errno ? -errno : -EINVAL;
		goto err_destroy;
	}
	t->this_system = hwloc_topology_is_thissystem(t->topo);
	t->ncores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
	if (!t->ncores) {
		/* Some virtual machines report PUs only. */
		unit = HWLOC_OBJ_PU;
		t->ncores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
	}
	if (!t->ncores) {
		ret = -ENODEV;
		goto err_destroy;
	}
	t->nnuma = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
	if (!t->nnuma)
		t->nnuma = 1;
	if (t->nnuma > WEFT_ALLOC_MAX_NUMA)
		t->nnuma = WEFT_ALLOC_MAX_NUMA;
	t->cores = calloc(t->ncores, sizeof(*t->cores));
	t->core_numa = calloc(t->ncores, sizeof(*t->core_numa));
	t->numa_os = calloc(t->nnuma, sizeof(*t->numa_os));
	if (!t->cores || !t->core_numa || !t->numa_os)
		goto err_free_arrays;
	for (i = 0; i < t->ncores; i++) {
		t->cores[i] = hwloc_get_obj_by_type(t->topo, unit, i);
		t->core_numa[i] = numa_of(t->topo, t->cores[i]) % t->nnuma;
	}
	for (i = 0; i < t->nnuma; i++) {
		hwloc_obj_t n = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, i);

		t->numa_os[i] = (t->this_system && n) ? (int)n->os_index : -1;
	}
	*out = t;
	return 0;

err_free_arrays:
	free(t->numa_os);
	free(t->core_numa);
	free(t->cores);
err_destroy:
	hwloc_topology_destroy(t->topo);
err_free:
	free(t);
	return ret;
}

void weft__topo_unload(struct weft__topo *t)
{
	if (!t)
		return;
	free(t->numa_os);
	free(t->core_numa);
	free(t->cores);
	hwloc_topology_destroy(t->topo);
	free(t);
}

unsigned weft__topo_ncores(const struct weft__topo *t)
{
	return t->ncores;
}

unsigned weft__topo_nnuma(const struct weft__topo *t)
{
	return t->nnuma;
}

unsigned weft__topo_core_numa(const struct weft__topo *t, unsigned core)
{
	return t->core_numa[core % t->ncores];
}

int weft__topo_numa_os_index(const struct weft__topo *t, unsigned numa)
{
	return numa < t->nnuma ? t->numa_os[numa] : -1;
}

bool weft__topo_can_bind(const struct weft__topo *t)
{
	return t->this_system;
}

int weft__topo_bind_self(struct weft__topo *t, unsigned core)
{
	hwloc_obj_t obj = t->cores[core % t->ncores];

	if (!t->this_system)
		return -EXDEV;
	/* hwloc reports -1 and errno (ENOSYS, EXDEV). */
	if (hwloc_set_cpubind(t->topo, obj->cpuset, HWLOC_CPUBIND_THREAD))
		return errno ? -errno : -EXDEV;
	return 0;
}

void weft__topo_spread(const struct weft__topo *t, unsigned n, unsigned *cores_out)
{
	unsigned *next = calloc(t->nnuma, sizeof(*next));
	unsigned i, d = 0, c;

	if (!next || n >= t->ncores) {
		/* Every core once, then again: the plain order already spreads. */
		for (i = 0; i < n; i++)
			cores_out[i] = i % t->ncores;
		free(next);
		return;
	}
	/* Fewer threads than cores: take a core from each domain in turn. */
	for (i = 0; i < n; i++) {
		for (;;) {
			for (c = next[d]; c < t->ncores && t->core_numa[c] != d; c++)
				;
			next[d] = c + 1;
			d = (d + 1) % t->nnuma;
			if (c < t->ncores)
				break;
		}
		cores_out[i] = c;
	}
	free(next);
}
