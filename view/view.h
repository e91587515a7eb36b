/* SPDX-License-Identifier: MIT */
/*
 * view.h - the views of a run served over HTTP (http.c, with libmicrohttpd, the
 * only user of it): view/'s contract with whoever has the figures (an engine now;
 * the scheduler next). The server runs on threads of its own; it asks its source
 * for a snapshot of the figures on each request, and never holds up the source's
 * threads: a snapshot is copied out under whatever the source needs.
 *
 *	/metrics	Prometheus' text exposition format (metrics.c)
 *	/		a page naming the others
 *
 * Anything else is 404, a method but GET and HEAD 405; a request whose headers
 * pass VIEW_HEADERS_MAX bytes is refused by the library (431), a client that sends
 * nothing for VIEW_IDLE_S seconds is cut off.
 */
#ifndef WEFT_VIEW_H
#define WEFT_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <weft.h>

#define VIEW_HEADERS_MAX (16u << 10)
#define VIEW_IDLE_S 10
#define VIEW_CONNECTIONS_MAX 64
#define VIEW_HIST 48			/* run-time buckets: [2^i, 2^(i+1)) ns */

/* A label's figures, summed over the threads that ran its tasks. */
struct weft__view_label {
	const char *label;		/* lives as long as the process */
	uint64_t count, failed, total_ns;
	uint64_t hist[VIEW_HIST];
};

/* What the source knows now. */
struct weft__view_snap {
	struct weft_stats st;			/* as weft_stats gives them */
	struct weft__view_label *labels;	/* the source's to fill, @nlabels of them */
	unsigned nlabels, labels_cap;
};

struct weft__view_source {
	/*
	 * Fill @s (its labels array has room for labels_cap). 0, or a negative errno
	 * (the request gets a 503). Called on the server's threads, any number at once.
	 */
	int (*snap)(void *arg, struct weft__view_snap *s);
	void *arg;
	const char *name;		/* "engine", "scheduler": in the page's title */
};

struct weft__http;

/*
 * Serve at @addr, "HOST:PORT" (port 0 picks one; HOST a numeric IPv4 address).
 * Return: 0, -EINVAL for an address that is not one, -EADDRINUSE, or another
 * negative errno; a log line says which and, on success, where it serves.
 */
int weft__http_start(const char *addr, const struct weft__view_source *src,
		     struct weft__http **out);
void weft__http_stop(struct weft__http *h);
/* The port it serves on. */
unsigned weft__http_port(const struct weft__http *h);

/* metrics.c: @s as Prometheus' text format into @buf of @cap bytes: its length, or
 * -ENOSPC when it does not fit. */
long weft__metrics_text(const struct weft__view_snap *s, char *buf, size_t cap);

#endif /* WEFT_VIEW_H */
