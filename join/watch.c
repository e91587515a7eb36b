// SPDX-License-Identifier: MIT
/*
 * The stall watch: a join whose spilling stays blocked (a full disk, an I/O error)
 * is given up after spec->spill_wait seconds, through spec->on_stall. The engine
 * pauses while it cannot spill, which is right for a library that may get the
 * space back; a program that has nothing else to do must say so and end instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft.h>

#include "internal.h"

#define WATCH_TICK_NS (100 * 1000 * 1000)

/* The directory the engine spills to, as it chose it (see WEFT_SPILL_DIR). */
static const char *spill_dir(const struct join_spec *spec)
{
	const char *s = spec->spill_dir;

	if (!s || !*s)
		s = getenv("WEFT_SPILL_DIR");
	if (!s || !*s)
		s = getenv("TMPDIR");
	return s && *s ? s : "/tmp";
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct timespec tick = { 0, WATCH_TICK_NS };
	double since = -1;

	(void)pthread_setname_np(pthread_self(), "join-watch");
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		struct weft_stats st = { .size = sizeof(st) };
		double now = join_now();

		if (weft_stats(w->c, &st) || !st.spill_blocked)
			since = -1;
		else if (since < 0)
			since = now;
		if (since >= 0 && now - since >= w->spec->spill_wait) {
			char why[512];

			snprintf(why, sizeof(why), "spill directory %s: spilling has been"
				 " blocked for %.0f s (the disk is full or failing); giving up"
				 " (--spill-wait)", spill_dir(w->spec), now - since);
			w->spec->on_stall(why);
			since = -1;	/* it returned: wait as long again */
		}
		nanosleep(&tick, NULL);
	}
	return NULL;
}

void watch_start(struct watch *w, struct weft_client *c, const struct join_spec *spec)
{
	w->c = c;
	w->spec = spec;
	atomic_init(&w->stop, false);
	w->on = spec->on_stall && !pthread_create(&w->thread, NULL, watch_main, w);
}

void watch_stop(struct watch *w)
{
	if (!w->on)
		return;
	atomic_store_explicit(&w->stop, true, memory_order_relaxed);
	pthread_join(w->thread, NULL);
	w->on = false;
}
