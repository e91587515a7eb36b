// SPDX-License-Identifier: MIT
/*
 * page.c - the dashboard's page (page.html, built into the program) and the
 * report, the same page with the figures and Chart.js inlined: one file that
 * opens offline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "view.h"

/* page.html, as built in (the Makefile makes page.o depend on it). */
__asm__(".pushsection .rodata\n"
	".global weft__page_html\n"
	".hidden weft__page_html\n"
	"weft__page_html:\n"
	".incbin \"view/page.html\"\n"
	".byte 0\n"
	".popsection\n");
extern const char weft__page_html[];

#define CHART_MARK "<!--weft:chart-->"
#define DATA_MARK "<!--weft:data-->"

int weft__page_write(FILE *f, const char *chart, const char *data)
{
	const char *c = strstr(weft__page_html, CHART_MARK);
	const char *d = strstr(weft__page_html, DATA_MARK);

	if (!c || !d || d < c)
		return -EINVAL;		/* page.html lost its marks: a build's fault */
	fwrite(weft__page_html, 1, (size_t)(c - weft__page_html), f);
	fputs(chart, f);
	c += strlen(CHART_MARK);
	fwrite(c, 1, (size_t)(d - c), f);
	fputs(data, f);
	fputs(d + strlen(DATA_MARK), f);
	return ferror(f) ? -EIO : 0;
}

char *weft__chartjs(size_t *len)
{
	FILE *f = fopen(WEFT_CHARTJS, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	*len = (size_t)n;
	if (strlen(buf) != (size_t)n || strcasestr(buf, "</script")) {
		/* Not text a page's script element can hold. */
		free(buf);
		return NULL;
	}
	return buf;
}

int weft__view_snap_alloc(struct weft__view_snap *s, unsigned needs, unsigned events_cap)
{
	s->labels = calloc(VIEW_LABELS_MAX, sizeof(*s->labels));
	s->labels_cap = s->labels ? VIEW_LABELS_MAX : 0;
	if ((needs & VIEW_NEED_EVENTS) && events_cap) {
		s->events = calloc(events_cap, sizeof(*s->events));
		s->events_cap = s->events ? events_cap : 0;
	}
	if (needs & VIEW_NEED_SAMPLES) {
		s->samples = calloc(VIEW_SAMPLES_MAX, sizeof(*s->samples));
		s->samples_cap = s->samples ? VIEW_SAMPLES_MAX : 0;
	}
	if (needs & VIEW_NEED_WORKERS) {
		s->workers = calloc(VIEW_WORKERS_MAX, sizeof(*s->workers));
		s->workers_cap = s->workers ? VIEW_WORKERS_MAX : 0;
	}
	if (needs & VIEW_NEED_TRANSFERS) {
		s->transfers = calloc(VIEW_TRANSFERS_MAX, sizeof(*s->transfers));
		s->transfers_cap = s->transfers ? VIEW_TRANSFERS_MAX : 0;
	}
	if (!s->labels || (needs & VIEW_NEED_EVENTS && events_cap && !s->events) ||
	    (needs & VIEW_NEED_SAMPLES && !s->samples) ||
	    (needs & VIEW_NEED_WORKERS && !s->workers) ||
	    (needs & VIEW_NEED_TRANSFERS && !s->transfers)) {
		weft__view_snap_free(s);
		return -ENOMEM;
	}
	return 0;
}

void weft__view_snap_free(struct weft__view_snap *s)
{
	free(s->labels);
	free(s->events);
	free(s->samples);
	free(s->workers);
	free(s->transfers);
	*s = (struct weft__view_snap){ 0 };
}

char *weft__view_render_alloc(weft__view_render *render, const struct weft__view_snap *s,
			      long *len)
{
	size_t cap = VIEW_PAGE_CAP;
	char *buf = NULL;
	long n = -ENOSPC;

	while (n == -ENOSPC && cap <= VIEW_PAGE_MAX) {
		char *b = realloc(buf, cap);

		if (!b)
			break;
		buf = b;
		n = render(s, buf, cap);
		cap *= 2;
	}
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* The data a report carries: each /api page's JSON, as WEFT_REPORT. */
static int report_data(FILE *f, const char *source, const struct weft__view_snap *s)
{
	static const struct {
		const char *name;
		weft__view_render *render;
	} parts[] = {
		{ "stats", weft__api_stats }, { "labels", weft__api_labels },
		{ "stream", weft__api_stream }, { "memory", weft__api_memory },
		{ "workers", weft__api_workers }, { "transfers", weft__api_transfers },
	};
	char when[64], name[256];
	struct weft__out on = { name, sizeof(name), 0, 0 };
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime_r(&now, &tm));
	weft__out_json(&on, source);
	fprintf(f, "<script>const WEFT_REPORT = {\"source\":%s,\"written\":\"%s\"", name, when);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		long n;
		char *json = weft__view_render_alloc(parts[i].render, s, &n);

		if (!json)
			return -ENOMEM;
		fprintf(f, ",\n\"%s\":", parts[i].name);
		fwrite(json, 1, (size_t)n, f);
		free(json);
	}
	fputs("};</script>", f);
	return ferror(f) ? -EIO : 0;
}

int weft__view_report(FILE *f, const struct weft__view_source *src, unsigned events_cap)
{
	struct weft__view_snap s = { 0 };
	char *chart = NULL, *data = NULL, *tag = NULL;
	size_t chart_len = 0, data_len = 0;
	FILE *d;
	int ret;

	ret = weft__view_snap_alloc(&s, VIEW_NEED_ALL, events_cap);
	if (ret)
		return ret;
	ret = src->snap(src->arg, &s);
	if (ret)
		goto out;
	ret = -ENOMEM;
	d = open_memstream(&data, &data_len);
	if (!d)
		goto out;
	ret = report_data(d, src->name, &s);
	if (fclose(d) && !ret)
		ret = -ENOMEM;
	if (ret)
		goto out;
	chart = weft__chartjs(&chart_len);
	if (!chart)
		weft__log(WEFT_LOG_WARN, "view", "%s: not there or not a script: the report "
			  "has no charts (Debian's libjs-chart.js has it)", WEFT_CHARTJS);
	else if (asprintf(&tag, "<script>%s</script>", chart) < 0)
		tag = NULL;
	ret = chart && !tag ? -ENOMEM : weft__page_write(f, tag ? tag : "", data);
out:
	free(tag);
	free(chart);
	free(data);
	weft__view_snap_free(&s);
	return ret;
}
