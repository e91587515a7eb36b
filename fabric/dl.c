// SPDX-License-Identifier: MIT
/*
 * dl.c - libfabric, loaded when a process first opens an endpoint. A program that
 * runs the embedded engine only never loads it, nor the libraries it pulls in
 * (verbs, rdmacm, psm...): its start, memory and signal handling stay as they
 * were. Only these few of libfabric's calls are real functions; the rest are
 * inline calls through the objects' operation tables.
 */
#include <errno.h>
#include <pthread.h>

#include "dl.h"
#include "internal.h"
#include "log.h"

struct weft__fi weft__fi;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = -ENODEV;

static void load(void)
{
	static const char *const libs[] = { "libfabric.so.1", NULL };
	const struct weft__dl_call calls[] = {
		{ "fi_getinfo", (void **)&weft__fi.getinfo },
		{ "fi_freeinfo", (void **)&weft__fi.freeinfo },
		{ "fi_dupinfo", (void **)&weft__fi.dupinfo },
		{ "fi_fabric", (void **)&weft__fi.fabric },
		{ "fi_strerror", (void **)&weft__fi.strerror },
	};

	loaded = weft__dl_load(libs, calls, sizeof(calls) / sizeof(calls[0]), "fabric",
			       "libfabric1");
}

int weft__fi_load(void)
{
	pthread_once(&once, load);
	return loaded;
}
