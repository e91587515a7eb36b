// SPDX-License-Identifier: MIT
/* Unit tests of core/topo.c on synthetic topologies ($HWLOC_SYNTHETIC). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "core.h"

/* Two packages, one NUMA node each, two cores each: 4 cores in 2 domains. */
#define TWO_NUMA "package:2 numa:1 core:2 pu:2"

static void synthetic(const char *desc)
{
	cr_assert_eq(setenv("HWLOC_SYNTHETIC", desc, 1), 0);
}

Test(topo, this_machine_has_cores_and_binds)
{
	struct weft__topo *t;

	unsetenv("HWLOC_SYNTHETIC");
	cr_assert_eq(weft__topo_load(&t), 0);
	cr_assert_geq(weft__topo_ncores(t), 1);
	cr_assert_geq(weft__topo_nnuma(t), 1);
	cr_assert(weft__topo_can_bind(t));
	cr_assert_eq(weft__topo_bind_self(t, 0), 0);
	weft__topo_unload(t);
}

Test(topo, synthetic_two_numa_domains)
{
	struct weft__topo *t;

	synthetic(TWO_NUMA);
	cr_assert_eq(weft__topo_load(&t), 0);
	cr_assert_eq(weft__topo_ncores(t), 4);
	cr_assert_eq(weft__topo_nnuma(t), 2);
	cr_assert_eq(weft__topo_core_numa(t, 0), 0);
	cr_assert_eq(weft__topo_core_numa(t, 1), 0);
	cr_assert_eq(weft__topo_core_numa(t, 2), 1);
	cr_assert_eq(weft__topo_core_numa(t, 3), 1);
	cr_assert_not(weft__topo_can_bind(t), "a synthetic machine is not this one");
	cr_assert_eq(weft__topo_numa_os_index(t, 0), -1, "no node to bind memory to");
	cr_assert_lt(weft__topo_bind_self(t, 0), 0);
	weft__topo_unload(t);
}

Test(topo, spread_takes_domains_in_turn)
{
	struct weft__topo *t;
	unsigned cores[4];

	synthetic(TWO_NUMA);
	cr_assert_eq(weft__topo_load(&t), 0);
	weft__topo_spread(t, 2, cores);
	cr_assert_neq(weft__topo_core_numa(t, cores[0]), weft__topo_core_numa(t, cores[1]),
		      "two threads on a two-domain machine go one per domain");
	weft__topo_spread(t, 3, cores);
	cr_assert_neq(cores[0], cores[2]);
	cr_assert_eq(weft__topo_core_numa(t, cores[0]), weft__topo_core_numa(t, cores[2]));
	weft__topo_unload(t);
}

Test(topo, spread_oversubscribed_reuses_cores)
{
	struct weft__topo *t;
	unsigned cores[10];

	synthetic(TWO_NUMA);
	cr_assert_eq(weft__topo_load(&t), 0);
	weft__topo_spread(t, 10, cores);
	for (unsigned i = 0; i < 10; i++)
		cr_assert_lt(cores[i], 4);
	cr_assert_eq(cores[4], cores[0]);
	weft__topo_unload(t);
}

Test(topo, engine_on_two_domains_steals_locally_first, .timeout = 20)
{
	struct weft_options o = { .size = sizeof(o), .nthreads = 4 };
	struct weft__engine *eng;
	struct weft_client *c;

	synthetic(TWO_NUMA);
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	eng = weft__client_engine(c);
	cr_assert_eq(eng->nnuma, 2);
	for (unsigned i = 0; i < 4; i++) {
		struct weft__worker *w = eng->workers[i];

		cr_assert_eq(w->nvictims, 3);
		cr_assert_eq(w->nlocal, 1, "one other thread shares each domain");
		cr_assert_eq(eng->workers[w->victims[0]]->numa, w->numa);
		cr_assert_neq(eng->workers[w->victims[1]]->numa, w->numa);
		cr_assert_neq(eng->workers[w->victims[2]]->numa, w->numa);
	}
	cr_assert_eq(weft_client_close(c), 0);
}
