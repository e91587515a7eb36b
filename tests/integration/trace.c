// SPDX-License-Identifier: MIT
/*
 * weft_trace: what an engine records of the tasks it runs, written as Chrome's
 * Trace Event JSON. The file parses as JSON (tests/json.h) and holds the tasks
 * that ran, by label, with their outcome, bytes and duration; at a high rate tasks
 * are sampled and their weights still add up to the tasks run.
 */
#include <sys/stat.h>

#include "../common.h"
#include "../json.h"

TASK(nap_200us)
{
	struct timespec ts = { 0, 200000 };

	nanosleep(&ts, NULL);
	return 0;
}

TASK(hundred_bytes)
{
	char *o = weft_output(ctx, 100);

	if (!o)
		return -ENOMEM;
	memset(o, 'x', 100);
	return 0;
}

TASK(fails)
{
	return weft_fail(ctx, "on purpose");
}

/* The whole of a file, NUL-terminated. */
static char *slurp(const char *path)
{
	size_t len;

	return t_read(path, &len);
}

/* Occurrences of @what in @text. */
/* The sum of the weights of the events named @label. */
static uint64_t weights_of(const char *text, const char *label)
{
	char key[128];
	uint64_t sum = 0;

	snprintf(key, sizeof(key), "\"name\":\"%s\"", label);
	for (const char *p = text; (p = strstr(p, key)); p += strlen(key)) {
		const char *w = strstr(p, "\"weight\":");

		cr_assert_not_null(w);
		sum += strtoull(w + 9, NULL, 10);
	}
	return sum;
}

static void trace_path(char *path, size_t size)
{
	int fd = mkstemp(t_template(path, size, "trace"));

	cr_assert_geq(fd, 0);
	close(fd);
}

Test(trace, tasks_are_written_as_a_trace_with_their_labels_and_outcomes, .timeout = 30)
{
	struct weft_task_opts napping = { .size = sizeof(napping), .label = "nap" };
	struct weft_task_opts odd = { .size = sizeof(odd), .label = "a \"quoted\"\tlabel\\" };
	struct weft_future *f[23];
	struct weft_client *c;
	char path[PATH_MAX];
	struct stat st;
	char *text;

	EMBEDDED_ONLY("an engine's own threads and recording (tests/cluster has a cluster's)");
	c = open_threads(2);
	trace_path(path, sizeof(path));
	/*
	 * Slow tasks, each recorded: 20 naps; then, each on threads that ran out of
	 * work (so recorded whatever came before), a failure and a result of 100 bytes.
	 */
	for (int i = 0; i < 20; i++)
		cr_assert_eq(weft_submit(c, nap_200us, NULL, 0, NULL, 0, &napping, &f[i]), 0);
	for (int i = 0; i < 20; i++)
		weft_wait(f[i], -1);
	cr_assert_eq(weft_submit(c, fails, NULL, 0, NULL, 0, NULL, &f[20]), 0);
	weft_wait(f[20], -1);
	cr_assert_eq(weft_submit(c, hundred_bytes, NULL, 0, NULL, 0, NULL, &f[21]), 0);
	cr_assert_eq(weft_wait(f[21], -1), 0);
	/* A label JSON must escape: the trace is JSON still. */
	cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, &odd, &f[22]), 0);
	cr_assert_eq(weft_wait(f[22], -1), 0);
	cr_assert_eq(weft_trace(c, path), 0);
	text = slurp(path);
	cr_assert(json_ok(text), "the trace is JSON");
	cr_assert_eq(t_count(text, "\"name\":\"nap\""), 20, "every nap, by its label: %d, weights %llu", t_count(text, "\"name\":\"nap\""), (unsigned long long)weights_of(text, "nap"));
	cr_assert_eq(weights_of(text, "nap"), 20);
	cr_assert_eq(t_count(text, "\"name\":\"fails\",\"ts\""), 1);
	cr_assert_eq(t_count(text, "\"outcome\":\"failed\""), 1);
	cr_assert_neq(strstr(text, "\"name\":\"hundred_bytes\""), NULL);
	cr_assert_neq(strstr(strstr(text, "\"name\":\"hundred_bytes\""), "\"bytes\":100,"), NULL,
		      "its result's bytes");
	cr_assert_eq(t_count(text, "\"name\":\"thread_name\""), 2, "a track per thread");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	/* A nap lasted at least its 200 us. */
	{
		const char *d = strstr(strstr(text, "\"name\":\"nap\""), "\"dur\":");

		cr_assert_geq(strtod(d + 6, NULL), 200.0);
	}
	cr_assert_neq(strstr(text, "\"name\":\"a \\\"quoted\\\"\\u0009label\\\\\""), NULL,
		      "the odd label, escaped");
	/* And the check would see a trace cut short. */
	text[strlen(text) - 3] = 0;
	cr_assert_not(json_ok(text));
	free(text);
	for (int i = 0; i < 23; i++)
		weft_release(f[i]);
	unlink(path);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(trace, at_a_high_rate_tasks_are_sampled_and_their_weights_add_up, .timeout = 60)
{
	long n = stress_scaled(200000);
	struct weft_future **f = malloc((size_t)n * sizeof(*f));
	struct weft_client *c;
	char path[PATH_MAX];
	uint64_t sum;
	char *text;
	int events;

	EMBEDDED_ONLY("an engine's own threads and recording (tests/cluster has a cluster's)");
	c = open_threads(2);
	trace_path(path, sizeof(path));
	for (long i = 0; i < n; i++)
		cr_assert_eq(weft_submit(c, noop, NULL, 0, NULL, 0, NULL, &f[i]), 0);
	for (long i = 0; i < n; i++) {
		cr_assert_eq(weft_wait(f[i], -1), 0);
		weft_release(f[i]);
	}
	cr_assert_eq(weft_trace(c, path), 0);
	text = slurp(path);
	cr_assert(json_ok(text));
	events = t_count(text, "\"name\":\"noop\"");
	sum = weights_of(text, "noop");
	cr_assert_gt(events, 0);
	/*
	 * At rest the weights add up to the tasks run, unless a thread's ring wrapped
	 * (a slow machine, a sanitizer): the oldest events are gone then.
	 */
	cr_assert(sum <= (uint64_t)n && sum >= (uint64_t)n * 9 / 10,
		  "%d events weigh %llu for %ld tasks", events, (unsigned long long)sum, n);
	free(text);
	free(f);
	unlink(path);
	cr_assert_eq(weft_client_close(c), 0);
}

Test(trace, bad_calls_are_refused_and_recording_can_be_off, .timeout = 20)
{
	struct weft_client *c;
	char path[PATH_MAX];

	EMBEDDED_ONLY("an engine's own threads and recording (tests/cluster has a cluster's)");
	c = open_threads(1);
	cr_assert_eq(weft_trace(c, NULL), -EINVAL);
	cr_assert_eq(weft_trace(NULL, "x.json"), -EINVAL);
	cr_assert_eq(weft_trace(c, "/nonexistent-dir/x.json"), -ENOENT);
	cr_assert_eq(weft_client_close(c), 0);
	setenv("WEFT_RECORD", "0", 1);
	c = open_threads(1);
	trace_path(path, sizeof(path));
	cr_assert_eq(weft_trace(c, path), -ENODATA);
	cr_assert_eq(weft_client_close(c), 0);
	setenv("WEFT_RECORD", "maybe", 1);
	cr_assert_eq(weft_client_open(NULL, NULL, &c), -EINVAL);
	unsetenv("WEFT_RECORD");
	unlink(path);
}

/*
 * A client of a cluster: the trace and the report are the cluster's, from its
 * scheduler (tests/cluster/basic checks what is in them); bad calls are refused.
 */
Test(trace, a_cluster_client_writes_the_clusters_trace_and_report, .timeout = 30)
{
	struct weft_client *c;
	char path[PATH_MAX];
	char *text;

	if (!on_cluster())
		cr_skip_test("a cluster's client: the integration@cluster tier runs it");
	c = open_threads(1);
	trace_path(path, sizeof(path));
	cr_assert_eq(weft_trace(c, NULL), -EINVAL);
	cr_assert_eq(weft_report(c, ""), -EINVAL);
	cr_assert_eq(weft_trace(c, "/nonexistent-dir/x.json"), -ENOENT);
	cr_assert_eq(weft_trace(c, path), 0);
	text = slurp(path);
	cr_assert(json_ok(text), "the cluster's trace is JSON");
	free(text);
	cr_assert_eq(weft_report(c, path), 0);
	text = slurp(path);
	cr_assert_not_null(strstr(text, "const WEFT_REPORT = {\"source\":\"cluster\""));
	free(text);
	unlink(path);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(weft_trace(c, path), -EBADF, "a closed client");
}

/*
 * Dependencies are flows: a chain of three slow tasks (each recorded) has two, from
 * the end of each task to the start of the one that read its result; a task whose
 * input was not recorded (a scattered one) has none.
 */
Test(trace, dependencies_between_recorded_tasks_are_flows, .timeout = 30)
{
	struct weft_future *f[4], *data;
	struct weft_client *c;
	char path[PATH_MAX];
	char *text;

	EMBEDDED_ONLY("an engine's own threads and recording (tests/cluster has a cluster's)");
	c = open_threads(2);
	trace_path(path, sizeof(path));
	cr_assert_eq(weft_scatter(c, "abc", 3, &data), 0);
	cr_assert_eq(weft_submit(c, nap_200us, &data, 1, NULL, 0, NULL, &f[0]), 0);
	for (int i = 1; i < 3; i++)
		cr_assert_eq(weft_submit(c, nap_200us, &f[i - 1], 1, NULL, 0, NULL, &f[i]), 0);
	cr_assert_eq(weft_wait(f[2], -1), 0);
	cr_assert_eq(weft_trace(c, path), 0);
	text = slurp(path);
	cr_assert(json_ok(text));
	cr_assert_eq(t_count(text, "\"ph\":\"s\",\"cat\":\"dependency\""), 2, "%s", text);
	cr_assert_eq(t_count(text, "\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"dependency\""), 2);
	free(text);
	for (int i = 0; i < 3; i++)
		weft_release(f[i]);
	weft_release(data);
	unlink(path);
	cr_assert_eq(weft_client_close(c), 0);
}
