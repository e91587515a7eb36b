// SPDX-License-Identifier: MIT
/*
 * log.c - one line per event on stderr, filtered by $WEFT_LOG (default warn); and
 * names and priorities for our threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int threshold(void)
{
	static _Atomic int level = -1;
	int l = atomic_load_explicit(&level, memory_order_relaxed);
	const char *s;
	unsigned i;

	if (l >= 0)
		return l;
	l = WEFT_LOG_WARN;
	s = getenv("WEFT_LOG");
	for (i = 0; s && i < ARRAY_SIZE(level_names); i++)
		if (!strcasecmp(s, level_names[i]))
			l = (int)i;
	/* Racing first calls compute the same value. */
	atomic_store_explicit(&level, l, memory_order_relaxed);
	return l;
}

bool weft__log_enabled(enum weft__log_level lvl)
{
	return (int)lvl <= threshold();
}

void weft__name_thread(const char *fmt, ...)
{
	char name[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	(void)pthread_setname_np(pthread_self(), name);	/* a name is a courtesy */
}

int weft__raise_priority(unsigned levels)
{
	/* On Linux a nice value belongs to a thread; PRIO_PROCESS with a tid sets one. */
	id_t self = (id_t)gettid();
	int now, want;

	if (!levels)
		return 0;
	errno = 0;
	now = getpriority(PRIO_PROCESS, self);
	if (now == -1 && errno)
		return -errno;
	want = now - (int)(levels < 40 ? levels : 40);
	if (want < -20)
		want = -20;
	if (want == now)
		return 0;
	return setpriority(PRIO_PROCESS, self, want) ? -errno : 0;
}

void weft__log(enum weft__log_level lvl, const char *component, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!weft__log_enabled(lvl))
		return;
	n = snprintf(line, sizeof(line), "weft %s %s: ", level_names[lvl], component);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One fprintf per line, so lines from several threads do not interleave. */
	fprintf(stderr, "%s\n", line);
}
