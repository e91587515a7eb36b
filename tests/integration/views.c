// SPDX-License-Identifier: MIT
/*
 * The views an engine serves over HTTP when WEFT_DASHBOARD asks: /metrics in
 * Prometheus' text format (every line checked against the format's grammar, the
 * counters against weft_stats and the tasks run), /api/stats, /api/labels and
 * /api/stream and /api/memory in JSON (parsed, and their numbers against
 * weft_stats and the tasks run); the dashboard in a real browser while a graph
 * runs (it updates, and its numbers are weft_stats'); the report opened offline;
 * and bad
 * requests (an unknown page, another method, headers too large, a client that
 * sends nothing) answered as they should be while the server goes on serving.
 */
#include <ctype.h>
#include <pthread.h>
#include <sys/wait.h>

#include "../common.h"
#include "../browser.h"
#include "../http.h"
#include "../json.h"

TASK(nap_100us)
{
	struct timespec ts = { 0, 100000 };

	nanosleep(&ts, NULL);
	return 0;
}

TASK(fails)
{
	return weft_fail(ctx, "on purpose");
}

/* A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]*; returns past it, or NULL. */
static const char *name_end(const char *p)
{
	if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
		return NULL;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	return p;
}

/*
 * One line of the text format (0.0.4): "# HELP name text", "# TYPE name type", or
 * a sample "name{label="value",...} number". Whether it is one.
 */
static bool metrics_line(const char *line)
{
	const char *p;
	char *end;

	if (!strncmp(line, "# HELP ", 7))
		return name_end(line + 7) && name_end(line + 7)[0] == ' ';
	if (!strncmp(line, "# TYPE ", 7)) {
		p = name_end(line + 7);
		return p && (!strcmp(p, " counter") || !strcmp(p, " gauge") ||
			     !strcmp(p, " histogram") || !strcmp(p, " summary") ||
			     !strcmp(p, " untyped"));
	}
	if (!(p = name_end(line)))
		return false;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if (!(p = name_end(p)) || *p++ != '=' || *p++ != '"')
				return false;
			for (; *p != '"'; p++) {
				if (!*p)
					return false;
				if (*p == '\\' && !strchr("\\\"n", *++p))
					return false;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p++ != ' ')
		return false;
	if (!strcmp(p, "+Inf") || !strcmp(p, "-Inf") || !strcmp(p, "NaN"))
		return true;
	strtod(p, &end);
	return end != p && !*end;
}

/* The value of the sample whose name and labels are exactly @what. */
static double sample(const char *text, const char *what)
{
	size_t n = strlen(what);

	for (const char *p = text; (p = strstr(p, what)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	cr_assert_fail("no sample %s", what);
	return 0;
}

/* The number right after the first @key in @text. */
static double number_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	cr_assert_not_null(p, "no %s", key);
	return strtod(p + strlen(key), NULL);
}

/* 40 naps labelled "nap" and a task that fails, all ended; then the stats in @st. */
static void naps_and_a_failure(struct weft_client *c, struct weft_future *f[41],
			       struct weft_stats *st)
{
	struct weft_task_opts napping = { .size = sizeof(napping), .label = "nap" };

	for (int i = 0; i < 40; i++)
		cr_assert_eq(weft_submit(c, nap_100us, NULL, 0, NULL, 0, &napping, &f[i]), 0);
	cr_assert_eq(weft_submit(c, fails, NULL, 0, NULL, 0, NULL, &f[40]), 0);
	for (int i = 0; i < 41; i++)
		weft_wait(f[i], -1);
	cr_assert_eq(weft_stats(c, st), 0);
}

static struct weft_client *open_serving(unsigned port)
{
	char addr[64];
	struct weft_client *c;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	setenv("WEFT_DASHBOARD", addr, 1);
	c = open_threads(2);
	unsetenv("WEFT_DASHBOARD");
	return c;
}

Test(views, metrics_are_prometheus_text_and_match_the_stats, .timeout = 30)
{
	struct weft_stats st = { .size = sizeof(st) };
	unsigned port = free_port();
	struct weft_future *f[41];
	struct weft_client *c;
	char *body, *line, *save;
	int lines = 0;

	EMBEDDED_ONLY("an engine's own views");
	c = open_serving(port);
	naps_and_a_failure(c, f, &st);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	cr_assert_eq(sample(body, "weft_tasks_run_total"), (double)st.tasks_run);
	cr_assert_eq(sample(body, "weft_tasks_failed_total"), 1);
	cr_assert_eq(sample(body, "weft_threads"), 2);
	cr_assert_eq(sample(body, "weft_memory_limit_bytes"), (double)st.mem_limit);
	cr_assert_eq(sample(body, "weft_label_tasks_total{label=\"nap\"}"), 40,
		     "slow tasks: each recorded; %s", body);
	cr_assert_eq(sample(body, "weft_label_failures_total{label=\"fails\"}"), 1);
	cr_assert_eq(sample(body, "weft_label_run_seconds_count{label=\"nap\"}"), 40);
	cr_assert_geq(sample(body, "weft_label_run_seconds_sum{label=\"nap\"}"), 40 * 100e-6);
	cr_assert_eq(sample(body, "weft_label_run_seconds_bucket{label=\"nap\",le=\"+Inf\"}"), 40);
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++)
		cr_assert(metrics_line(line), "not the text format: %s", line);
	cr_assert_gt(lines, 50);
	free(body);
	/* The same figures in JSON. */
	cr_assert_eq(get(port, "/api/stats", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	cr_assert_eq(number_after(body, "\"tasks_run\":"), (double)st.tasks_run);
	cr_assert_eq(number_after(body, "\"mem_limit\":"), (double)st.mem_limit);
	cr_assert_eq(number_after(body, "\"nthreads\":"), 2);
	free(body);
	cr_assert_eq(get(port, "/api/labels", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	{
		const char *nap = strstr(body, "{\"label\":\"nap\"");
		const char *bad = strstr(body, "{\"label\":\"fails\"");

		cr_assert_not_null(nap);
		cr_assert_not_null(bad);
		cr_assert_eq(number_after(nap, "\"tasks\":"), 40);
		cr_assert_eq(number_after(nap, "\"failed\":"), 0);
		/* A nap takes 100 us or more: its median's bucket ends past that. */
		cr_assert_geq(number_after(nap, "\"p50_s\":"), 100e-6);
		cr_assert_geq(number_after(nap, "\"p99_s\":"), number_after(nap, "\"p50_s\":"));
		cr_assert_eq(number_after(bad, "\"failed\":"), 1);
	}
	free(body);
	/* The task stream: each recorded nap, then nothing since the clock's now. */
	cr_assert_eq(get(port, "/api/stream", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	{
		double now = number_after(body, "\"now_ns\":");
		const char *last = strstr(body, "\"end_ns\":");
		char url[64];
		int naps = 0;

		for (const char *p = body; (p = strstr(p, "\"label\":\"nap\"")); p++)
			naps++;
		cr_assert_eq(naps, 40, "every nap in the stream");
		cr_assert_eq(strstr(body, "\"outcome\":\"failed\"") != NULL, 1);
		for (const char *p = last; p; p = strstr(p + 1, "\"end_ns\":"))
			cr_assert_leq(number_after(p, "\"end_ns\":"), now);
		free(body);
		snprintf(url, sizeof(url), "/api/stream?since=%.0f", now);
		cr_assert_eq(get(port, url, &body), 200);
		cr_assert(json_ok(body));
		cr_assert_null(strstr(body, "\"label\""), "nothing ended since: %s", body);
	}
	free(body);
	cr_assert_eq(get(port, "/api/stream?since=yesterday", NULL), 400);
	/* Memory over time: a sample at least, taken by this request if no task did. */
	cr_assert_eq(get(port, "/api/memory", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	cr_assert_eq(number_after(body, "\"mem_limit\":"), (double)st.mem_limit);
	cr_assert_eq(number_after(body, "\"mem_target\":"), (double)st.mem_target);
	cr_assert_geq(number_after(strstr(body, "\"samples\":"), "\"tasks_run\":"), 0);
	free(body);
	/* The dashboard, and the chart library it loads from here. */
	cr_assert_eq(get(port, "/", &body), 200);
	cr_assert_not_null(strstr(body, "WEFT_LIVE = {\"source\":\"engine\"}"));
	cr_assert_not_null(strstr(body, "/api/stats"));
	free(body);
	if (!access("/usr/share/javascript/chart.js/chart.min.js", R_OK)) {
		cr_assert_eq(get(port, "/chart.js", &body), 200);
		cr_assert_not_null(strstr(body, "Chart.js v"));
		free(body);
	} else {
		cr_assert_eq(get(port, "/chart.js", NULL), 404);
	}
	for (int i = 0; i < 41; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
	/* Closed, the engine serves no more. */
	{
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		cr_assert_neq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd);
	}
}

Test(views, bad_requests_get_their_status_and_the_server_serves_on, .timeout = 60)
{
	unsigned port = free_port();
	struct weft_client *c;
	char *big, *body;
	int idle;

	EMBEDDED_ONLY("an engine's own views");
	c = open_serving(port);
	cr_assert_eq(get(port, "/no/such/page", NULL), 404);
	cr_assert_eq(http(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
			  "Connection: close\r\n\r\n", NULL), 405);
	/* Headers past the limit: refused by the server, whose answer is a 4xx. */
	big = malloc(64 << 10);
	strcpy(big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + strlen(big), 'a', 40 << 10);
	strcpy(big + strlen(big), "\r\nConnection: close\r\n\r\n");
	{
		int status = http(port, big, NULL);

		cr_assert(status >= 400 && status < 500, "status %d", status);
	}
	free(big);
	/* A client that connects and says nothing does not hold the others up. */
	idle = dial(port);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	cr_assert_neq(strstr(body, "weft_tasks_run_total"), NULL);
	free(body);
	close(idle);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(views, an_address_that_is_not_one_leaves_the_engine_working, .timeout = 20)
{
	struct weft_client *c;
	struct weft_future *f;

	EMBEDDED_ONLY("an engine's own views");
	setenv("WEFT_DASHBOARD", "not an address", 1);
	c = open_threads(1);
	unsetenv("WEFT_DASHBOARD");
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f), 0);
	cr_assert_eq(weft_wait(f, -1), 0);
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
}

/* Prometheus' own checker, where Debian's prometheus package put it. */
Test(views, promtool_accepts_the_metrics, .timeout = 30)
{
	unsigned port = free_port();
	struct weft_client *c;
	char cmd[256], *body;
	FILE *p;

	EMBEDDED_ONLY("an engine's own views");
	if (system("command -v promtool >/dev/null 2>&1"))
		cr_skip_test("promtool is not installed (Debian's prometheus package has it)");
	c = open_serving(port);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	snprintf(cmd, sizeof(cmd), "promtool check metrics >/dev/null 2>&1");
	p = popen(cmd, "w");
	fputs(body, p);
	cr_assert_eq(WEXITSTATUS(pclose(p)), 0, "promtool check metrics refused it");
	free(body);
	cr_assert_eq(weft_client_close(c), 0);
}

/* A graph that runs a while: @n naps, submitted from a thread of the test's. */
struct graph {
	struct weft_client *c;
	unsigned n;
	struct weft_future **f;
	pthread_t thread;
};

static void *graph_run(void *arg)
{
	struct weft_task_opts napping = { .size = sizeof(napping), .label = "nap" };
	struct graph *g = arg;

	for (unsigned i = 0; i < g->n; i++)
		cr_assert_eq(weft_submit(g->c, nap_100us, NULL, 0, NULL, 0, &napping, &g->f[i]), 0);
	return NULL;
}

static void graph_end(struct graph *g)
{
	pthread_join(g->thread, NULL);
	for (unsigned i = 0; i < g->n; i++) {
		cr_assert_eq(weft_wait(g->f[i], -1), 0);
		weft_release(g->f[i]);
	}
	free(g->f);
}

/* The tasks_run values the page saw, one a poll (its status' data-seen). */
static unsigned seen(const char *dom, double *first, double *last)
{
	const char *p = strstr(dom, "data-seen=\"");
	unsigned n = 0;
	char *end;

	cr_assert_not_null(p, "the page never polled: %.2000s", dom);
	for (p += strlen("data-seen=\""); *p != '"'; p = end, n++) {
		double v = strtod(p, &end);

		if (end == p)
			break;
		if (!n)
			*first = v;
		cr_assert_geq(v, n ? *last : 0, "tasks run went back");
		*last = v;
	}
	return n;
}

Test(views, the_dashboard_in_a_browser_updates_and_shows_the_stats, .timeout = 180)
{
	struct weft_stats st = { .size = sizeof(st) };
	struct graph g = { .n = 30000 };
	unsigned port = free_port();
	double first = 0, last = 0;
	char url[64], *dom;

	EMBEDDED_ONLY("an engine's own views");
	if (!browser_here())
		cr_skip_test("no " BROWSER " (make deps installs Debian's chromium)");
	g.c = open_serving(port);
	g.f = calloc(g.n, sizeof(*g.f));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
	/* While the graph runs: the page polls, and sees the count go up. */
	pthread_create(&g.thread, NULL, graph_run, &g);
	dom = browser_dom(url, 4000);
	cr_assert_geq(seen(dom, &first, &last), 3, "polls: %.2000s", dom);
	cr_assert_gt(last, first, "the page did not update while tasks ran");
	cr_assert_gt(dom_number(dom, "nthreads"), 0);
	free(dom);
	browser_screenshot(url, 3000, "dashboard.png");
	graph_end(&g);
	/* Once it ended: the page's numbers are weft_stats'. */
	cr_assert_eq(weft_stats(g.c, &st), 0);
	dom = browser_dom(url, 1500);
	cr_assert_eq(dom_number(dom, "tasks_run"), (double)st.tasks_run);
	cr_assert_eq(dom_number(dom, "tasks_failed"), 0);
	cr_assert_eq(dom_number(dom, "tasks_pending"), 0);
	cr_assert_eq(dom_number(dom, "nthreads"), 2);
	cr_assert_not_null(strstr(dom, "data-label=\"nap\""), "no row for the label");
	cr_assert_null(strstr(dom, "id=\"status\">cannot reach"), "a poll failed");
	if (!access("/usr/share/javascript/chart.js/chart.min.js", R_OK))
		cr_assert_not_null(strstr(dom, "data-charts=\"drawn\""), "the charts did not load");
	free(dom);
	cr_assert_eq(weft_client_close(g.c), 0);
}

Test(views, the_report_is_one_page_that_opens_offline_with_the_counts, .timeout = 120)
{
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_future *f[41];
	struct weft_client *c;
	char path[4096], url[4200], *html, *dom, *data;
	size_t len;
	int fd;

	EMBEDDED_ONLY("an engine's own recording");
	c = open_threads(2);
	naps_and_a_failure(c, f, &st);
	fd = mkstemp(t_template(path, sizeof(path), "report"));
	close(fd);
	strcat(path, ".html");
	cr_assert_eq(weft_report(NULL, path), -EINVAL);
	cr_assert_eq(weft_report(c, ""), -EINVAL);
	cr_assert_eq(weft_report(c, "/no/such/dir/r.html"), -ENOENT);
	cr_assert_eq(weft_report(c, path), 0);
	html = t_read(path, &len);
	/* Nothing to fetch: no script or style from elsewhere, no link. */
	cr_assert_null(strstr(html, "<script src"));
	cr_assert_null(strstr(html, "<link"));
	data = strstr(html, "const WEFT_REPORT = ");
	cr_assert_not_null(data);
	data += strlen("const WEFT_REPORT = ");
	*strstr(data, ";</script>") = 0;
	cr_assert(json_ok(data), "the report's figures are not JSON");
	cr_assert_eq(number_after(data, "\"tasks_run\":"), (double)st.tasks_run);
	free(html);
	if (!browser_here())
		cr_skip_test("no " BROWSER ": the report's page was not opened");
	snprintf(url, sizeof(url), "file://%s", path);
	dom = browser_dom(url, 1000);
	cr_assert_eq(dom_number(dom, "tasks_run"), (double)st.tasks_run);
	cr_assert_eq(dom_number(dom, "tasks_failed"), 1);
	{
		const char *row = strstr(dom, "data-label=\"nap\"");

		cr_assert_not_null(row);
		cr_assert_eq(number_after(row, "class=\"tasks\">"), 40, "%.600s", row);
	}
	cr_assert_not_null(strstr(dom, "report written"));
	if (!access("/usr/share/javascript/chart.js/chart.min.js", R_OK))
		cr_assert_not_null(strstr(dom, "data-charts=\"drawn\""), "the charts did not load");
	free(dom);
	browser_screenshot(url, 1000, "report.png");
	for (int i = 0; i < 41; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(views, a_report_with_recording_off_is_enodata, .timeout = 20)
{
	struct weft_client *c;

	EMBEDDED_ONLY("an engine's own recording");
	setenv("WEFT_RECORD", "0", 1);
	c = open_threads(1);
	unsetenv("WEFT_RECORD");
	cr_assert_eq(weft_report(c, "/tmp/never.html"), -ENODATA);
	cr_assert_eq(access("/tmp/never.html", F_OK), -1);
	cr_assert_eq(weft_client_close(c), 0);
}
