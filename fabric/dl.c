// SPDX-License-Identifier: MIT
/*
 * dl.c - libfabric, loaded when a process first opens an endpoint. A program that
 * runs the embedded engine only never loads it, nor the libraries it pulls in
 * (verbs, rdmacm, psm...): its start, memory and signal handling stay as they
 * were. Only these few of libfabric's calls are real functions; the rest are
 * inline calls through the objects' operation tables.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "internal.h"
#include "log.h"

struct weft__fi weft__fi;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = -ENODEV;

static void load(void)
{
	void *h = dlopen("libfabric.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		weft__log(WEFT_LOG_ERROR, "fabric", "cannot load libfabric: %s (install "
			  "libfabric1)", dlerror());
		return;
	}
	weft__fi.getinfo = (typeof(weft__fi.getinfo))dlsym(h, "fi_getinfo");
	weft__fi.freeinfo = (typeof(weft__fi.freeinfo))dlsym(h, "fi_freeinfo");
	weft__fi.dupinfo = (typeof(weft__fi.dupinfo))dlsym(h, "fi_dupinfo");
	weft__fi.fabric = (typeof(weft__fi.fabric))dlsym(h, "fi_fabric");
	weft__fi.strerror = (typeof(weft__fi.strerror))dlsym(h, "fi_strerror");
	if (!weft__fi.getinfo || !weft__fi.freeinfo || !weft__fi.dupinfo || !weft__fi.fabric ||
	    !weft__fi.strerror) {
		weft__log(WEFT_LOG_ERROR, "fabric", "libfabric.so.1 lacks a call weft uses");
		return;
	}
	loaded = 0;
}

int weft__fi_load(void)
{
	pthread_once(&once, load);
	return loaded;
}
