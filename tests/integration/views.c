// SPDX-License-Identifier: MIT
/*
 * The views an engine serves over HTTP when WEFT_DASHBOARD asks: /metrics in
 * Prometheus' text format (every line checked against the format's grammar, the
 * counters against weft_stats and the tasks run), /api/stats, /api/labels and
 * /api/stream in JSON (parsed, and their numbers against weft_stats and the tasks
 * run), and bad
 * requests (an unknown page, another method, headers too large, a client that
 * sends nothing) answered as they should be while the server goes on serving.
 */
#include <ctype.h>
#include <sys/wait.h>

#include "../common.h"
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
	struct weft_task_opts napping = { .size = sizeof(napping), .label = "nap" };
	struct weft_stats st = { .size = sizeof(st) };
	unsigned port = free_port();
	struct weft_future *f[41];
	struct weft_client *c;
	char *body, *line, *save;
	int lines = 0;

	EMBEDDED_ONLY("an engine's own views");
	c = open_serving(port);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(weft_submit(c, nap_100us, NULL, 0, NULL, 0, &napping, &f[i]), 0);
	cr_assert_eq(weft_submit(c, fails, NULL, 0, NULL, 0, NULL, &f[40]), 0);
	for (int i = 0; i < 41; i++)
		weft_wait(f[i], -1);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	cr_assert_eq(sample(body, "weft_tasks_run_total"), (double)st.tasks_run);
	cr_assert_eq(sample(body, "weft_tasks_failed_total"), 1);
	cr_assert_eq(sample(body, "weft_threads"), 2);
	cr_assert_eq(sample(body, "weft_memory_limit_bytes"), (double)st.mem_limit);
	cr_assert_eq(sample(body, "weft_label_tasks_total{label=\"nap\"}"), 40,
		     "slow tasks: each recorded");
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
	/* The page naming the views. */
	cr_assert_eq(get(port, "/", &body), 200);
	cr_assert_neq(strstr(body, "/metrics"), NULL);
	free(body);
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
