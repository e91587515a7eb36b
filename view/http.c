// SPDX-License-Identifier: MIT
/*
 * http.c - the views over HTTP with libmicrohttpd: its own polling thread serves
 * every connection, each request asks the source for a fresh snapshot (view.h).
 * Bounded: a request's headers in VIEW_HEADERS_MAX bytes (the library answers a
 * larger one itself), VIEW_CONNECTIONS_MAX connections, VIEW_IDLE_S seconds of
 * silence before a connection is closed.
 *
 * libmicrohttpd is loaded when a server first starts, as libfabric is: a program
 * that serves nothing never maps it, nor the TLS libraries it pulls in (they cost
 * every process about 2 MiB of memory).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include "dl.h"
#include "log.h"
#include "view.h"

/* libmicrohttpd's calls used here, loaded at the first server's start. */
static struct {
	typeof(MHD_start_daemon) *start_daemon;
	typeof(MHD_stop_daemon) *stop_daemon;
	typeof(MHD_get_daemon_info) *get_daemon_info;
	typeof(MHD_create_response_from_buffer) *create_response_from_buffer;
	typeof(MHD_add_response_header) *add_response_header;
	typeof(MHD_queue_response) *queue_response;
	typeof(MHD_destroy_response) *destroy_response;
	typeof(MHD_lookup_connection_value) *lookup_connection_value;
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static int mhd_loaded = -ENODEV;

static void mhd_load(void)
{
	static const char *const libs[] = { "libmicrohttpd.so.12", NULL };
	const struct weft__dl_call calls[] = {
		{ "MHD_start_daemon", (void **)&mhd.start_daemon },
		{ "MHD_stop_daemon", (void **)&mhd.stop_daemon },
		{ "MHD_get_daemon_info", (void **)&mhd.get_daemon_info },
		{ "MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer },
		{ "MHD_add_response_header", (void **)&mhd.add_response_header },
		{ "MHD_queue_response", (void **)&mhd.queue_response },
		{ "MHD_destroy_response", (void **)&mhd.destroy_response },
		{ "MHD_lookup_connection_value", (void **)&mhd.lookup_connection_value },
	};

	mhd_loaded = weft__dl_load(libs, calls, sizeof(calls) / sizeof(calls[0]), "view",
				   "libmicrohttpd12");
}

#define MHD_start_daemon mhd.start_daemon
#define MHD_stop_daemon mhd.stop_daemon
#define MHD_get_daemon_info mhd.get_daemon_info
#define MHD_create_response_from_buffer mhd.create_response_from_buffer
#define MHD_add_response_header mhd.add_response_header
#define MHD_queue_response mhd.queue_response
#define MHD_destroy_response mhd.destroy_response
#define MHD_lookup_connection_value mhd.lookup_connection_value


/* The pages rendered from a snapshot, and the parts of it each needs (VIEW_NEED_*). */
static const struct {
	const char *path, *type;
	weft__view_render *render;
	unsigned needs;
} pages[] = {
	{ "/metrics", "text/plain; version=0.0.4; charset=utf-8", weft__metrics_text,
	  VIEW_NEED_WORKERS },
	{ "/api/stats", "application/json", weft__api_stats, 0 },
	{ "/api/labels", "application/json", weft__api_labels, 0 },
	{ "/api/stream", "application/json", weft__api_stream, VIEW_NEED_EVENTS },
	{ "/api/memory", "application/json", weft__api_memory, VIEW_NEED_SAMPLES },
	{ "/api/workers", "application/json", weft__api_workers, VIEW_NEED_WORKERS },
	{ "/api/transfers", "application/json", weft__api_transfers, VIEW_NEED_TRANSFERS },
};

struct weft__http {
	struct MHD_Daemon *d;
	struct weft__view_source src;
	unsigned port;
	char *chart;			/* Chart.js, read at the start; NULL: none */
	size_t chart_len;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     void *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
								 MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
				  const char *text)
{
	char *body = strdup(text);

	return body ? reply(conn, status, "text/plain; charset=utf-8", body, strlen(body)) :
		      MHD_NO;
}

/* A fresh snapshot, rendered as page @i. */
static enum MHD_Result render(struct weft__http *h, struct MHD_Connection *conn, size_t i)
{
	struct weft__view_snap s = { 0 };
	char *buf;
	long n;

	if (pages[i].needs & VIEW_NEED_EVENTS) {
		const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
								"since");
		char *end;

		if (since) {
			errno = 0;
			s.since_ns = strtoull(since, &end, 10);
			if (!*since || *end || errno || *since == '-')
				return reply_text(conn, MHD_HTTP_BAD_REQUEST,
						  "since: nanoseconds on the clock now_ns is on\n");
		}
	}
	if (weft__view_snap_alloc(&s, pages[i].needs, VIEW_STREAM_MAX))
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no memory now\n");
	if (h->src.snap(h->src.arg, &s)) {
		weft__view_snap_free(&s);
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no figures now\n");
	}
	buf = weft__view_render_alloc(pages[i].render, &s, &n);
	weft__view_snap_free(&s);
	if (!buf)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(conn, MHD_HTTP_OK, pages[i].type, buf, (size_t)n);
}

/* The dashboard, its figures to come from the /api pages. */
static enum MHD_Result dashboard(struct weft__http *h, struct MHD_Connection *conn)
{
	char *body = NULL, name[256], data[320];
	struct weft__out o = { name, sizeof(name), 0, 0 };
	size_t len = 0;
	FILE *f;
	int ret;

	weft__out_json(&o, h->src.name);
	snprintf(data, sizeof(data), "<script>const WEFT_LIVE = {\"source\":%s};</script>", name);
	f = open_memstream(&body, &len);
	if (!f)
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no memory now\n");
	ret = weft__page_write(f, h->chart ? "<script src=\"/chart.js\"></script>" : "", data);
	if (fclose(f) || ret) {
		free(body);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "no page\n");
	}
	return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", body, len);
}

static enum MHD_Result chartjs(struct weft__http *h, struct MHD_Connection *conn)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!h->chart)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, WEFT_CHARTJS " is not there: the "
				  "dashboard draws no charts (Debian's libjs-chart.js has it)\n");
	r = MHD_create_response_from_buffer(h->chart_len, h->chart, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/javascript");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=3600");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *arg, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_len, void **state)
{
	struct weft__http *h = arg;

	(void)version;
	(void)upload;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (*upload_len) {		/* a body with a GET: not read, refused */
		*upload_len = 0;
		return MHD_YES;
	}
	(void)state;
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (!strcmp(url, pages[i].path))
			return render(h, conn, i);
	if (!strcmp(url, "/"))
		return dashboard(h, conn);
	if (!strcmp(url, "/chart.js"))
		return chartjs(h, conn);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "no such page\n");
}

int weft__http_start(const char *addr, const struct weft__view_source *src,
		     struct weft__http **out)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64];
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	const union MHD_DaemonInfo *info;
	struct weft__http *h;
	char *end;
	long port;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host) || !colon[1])
		goto bad;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		goto bad;
	sin.sin_port = htons((uint16_t)port);
	pthread_once(&mhd_once, mhd_load);
	if (mhd_loaded)
		return mhd_loaded;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->src = *src;
	h->chart = weft__chartjs(&h->chart_len);
	if (!h->chart)
		weft__log(WEFT_LOG_WARN, "view", "%s: not there or not a script: the "
			  "dashboard draws no charts (Debian's libjs-chart.js has it)",
			  WEFT_CHARTJS);
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
				(uint16_t)port, NULL, NULL, on_request, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VIEW_HEADERS_MAX * 2,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)VIEW_CONNECTIONS_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)VIEW_IDLE_S,
				MHD_OPTION_END);
	if (!h->d) {
		int err = errno ? errno : EADDRINUSE;

		weft__log(WEFT_LOG_ERROR, "view", "cannot serve at %s: %s", addr, strerror(err));
		free(h->chart);
		free(h);
		return -err;
	}
	/* Port 0: the one the system picked. */
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
	if (info && !getsockname(info->listen_fd, (struct sockaddr *)&sin, &(socklen_t){ sizeof(sin) }))
		port = ntohs(sin.sin_port);
	h->port = (unsigned)port;
	weft__log(WEFT_LOG_INFO, "view", "serving at http://%s:%u/", host, h->port);
	*out = h;
	return 0;
bad:
	weft__log(WEFT_LOG_ERROR, "view", "%s: not an address to serve at (HOST:PORT, HOST an "
		  "IPv4 address)", addr ? addr : "(none)");
	return -EINVAL;
}

void weft__http_stop(struct weft__http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h->chart);
	free(h);
}

unsigned weft__http_port(const struct weft__http *h)
{
	return h->port;
}
