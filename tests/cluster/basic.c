// SPDX-License-Identifier: MIT
/*
 * A cluster of real processes on loopback (a scheduler, two workers and this
 * client), on tcp and on shm: graphs, results that move between workers and to
 * the client, failures and their messages, a token refused, garbage at the
 * scheduler's port, and a worker killed with SIGKILL in the middle of a graph.
 */
#include "cluster.h"
#include "../browser.h"
#include "../http.h"
#include "../json.h"

#define CHAIN 50

static struct cluster cl;

static void add_chain(struct weft_client *c)
{
	struct weft_future *f[CHAIN], *sum;
	uint64_t one = 1;

	cr_assert_eq(weft_submit_named(c, "add", NULL, 0, &one, 8, NULL, &f[0]), 0);
	for (int i = 1; i < CHAIN; i++)
		cr_assert_eq(weft_submit_named(c, "add", &f[i - 1], 1, &one, 8, NULL, &f[i]), 0);
	/* A fan-in of every link: sum of 1..CHAIN. */
	cr_assert_eq(weft_submit_named(c, "add", f, CHAIN, NULL, 0, NULL, &sum), 0);
	cr_assert_eq(u64_of(f[CHAIN - 1]), CHAIN);
	cr_assert_eq(u64_of(sum), CHAIN * (CHAIN + 1) / 2);
	for (int i = 0; i < CHAIN; i++)
		weft_release(f[i]);
	weft_release(sum);
}

static void graphs(const char *provider)
{
	struct weft_client *c;

	cluster_start(&cl, 2, provider);
	c = cluster_client(&cl);
	add_chain(c);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, a_chain_and_a_fan_in_on_tcp, .timeout = 60)
{
	graphs("tcp");
}

Test(cluster, a_chain_and_a_fan_in_on_shm, .timeout = 60)
{
	graphs("shm");
}

/* 64 MiB made on w0, checked byte for byte on w1 and in this process. */
static void moves(const char *provider)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	uint64_t n = 64u << 20, ms = 0;
	struct weft_future *big, *ok, *p0, *p1;
	struct weft_client *c;
	struct weft_buf b;

	cluster_start(&cl, 2, provider);
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(u64_of(ok), n, "w1 read all of w0's result, intact");
	cr_assert_eq(weft_result(big, &b), 0);
	cr_assert_eq(b.len, n);
	for (uint64_t i = 0; i < n; i += 4093)
		cr_assert_eq(((const uint8_t *)b.data)[i], (uint8_t)(i * 7), "byte %lu",
			     (unsigned long)i);
	/* Each ran where it was asked to: two worker processes, not this one. */
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on0, &p0), 0);
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on1, &p1), 0);
	cr_assert_eq(u64_of(p0), (uint64_t)cl.w[0]);
	cr_assert_eq(u64_of(p1), (uint64_t)cl.w[1]);
	weft_release(big);
	weft_release(ok);
	weft_release(p0);
	weft_release(p1);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, a_result_moves_between_workers_on_tcp, .timeout = 60)
{
	moves("tcp");
}

/*
 * A read that fails (@hook: a wrong key, as a damaged connection would; or, on
 * shm, a chunk of the second reader that fails): the reading worker reopens its
 * read endpoint, the task is run again where it was asked to run, and nobody takes
 * that worker for dead. A wrong key on tcp only: shm does not check keys.
 */
static void bad_read(const char *provider, const char *hook, uint64_t n)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_stats st = { .size = sizeof(st) };
	uint64_t ms = 0;
	struct weft_future *big, *ok, *again;
	char path[PATH_MAX], line[32] = "";
	struct weft_client *c;
	pid_t w1;
	FILE *f;

	close(mkstemp(t_template(path, sizeof(path), "reopens")));
	setenv(hook, "1", 1);
	setenv("WEFT_TEST_REOPENS_FILE", path, 1);
	cluster_start_hooked(&cl, 2, provider, 2);	/* w1 reads w0's result */
	unsetenv(hook);
	unsetenv("WEFT_TEST_REOPENS_FILE");
	w1 = cl.w[1];
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(u64_of(ok), n, "read again after the bad read, intact");
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on1, &again), 0);
	cr_assert_eq(u64_of(again), (uint64_t)w1, "the same w1 process serves on");
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.nthreads, 2, "both workers are in the cluster");
	weft_release(big);
	weft_release(ok);
	weft_release(again);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f), "w1 wrote its count as it stopped");
	fclose(f);
	unlink(path);
	cr_assert_eq(atoi(line), 1, "w1 reopened its read endpoint once (%s)", line);
}

Test(cluster, a_bad_read_reopens_the_read_endpoint_and_the_worker_lives, .timeout = 60)
{
	bad_read("tcp", "WEFT_TEST_POISON_READ", 1u << 20);
}

/* 16 MiB: four chunks, two of them the second reader's. */
Test(cluster, a_failed_chunk_of_the_second_reader_on_shm_is_a_bad_read, .timeout = 60)
{
	bad_read("shm", "WEFT_TEST_POISON_SECOND_READ", 16u << 20);
}

Test(cluster, a_result_moves_between_workers_on_shm, .timeout = 60)
{
	moves("shm");
}

Test(cluster, failures_name_their_root_and_unknown_functions_their_worker, .timeout = 60)
{
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_future *b, *d, *nf;
	struct weft_client *c;
	uint64_t one = 1;

	cluster_start(&cl, 2, "tcp");
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "boom", NULL, 0, NULL, 0, NULL, &b), 0);
	cr_assert_eq(weft_submit_named(c, "add", &b, 1, &one, 8, NULL, &d), 0);
	cr_assert_eq(weft_wait(b, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(b), "task 'boom' failed: boom 42");
	cr_assert_eq(weft_wait(d, -1), WEFT_ETASK);
	cr_assert_str_eq(weft_future_error(d), "task 'boom' failed: boom 42", "the root's");
	cr_assert_eq(weft_submit_named(c, "nosuch", NULL, 0, NULL, 0, &on1, &nf), 0);
	cr_assert_eq(weft_wait(nf, -1), WEFT_ENOFN);
	cr_assert_str_eq(weft_future_error(nf), "no task function 'nosuch' on worker 'w1'");
	weft_release(b);
	weft_release(d);
	weft_release(nf);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, multi_output_tasks_and_scattered_data, .timeout = 60)
{
	struct weft_task_opts two = { .size = sizeof(two), .noutputs = 2 };
	static uint8_t data[100000];
	struct weft_future *p[2], *s, *ok, *sum;
	struct weft_client *c;
	uint64_t x = 21;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	cluster_start(&cl, 2, "tcp");
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "pair", NULL, 0, &x, 8, &two, p), 0);
	cr_assert_eq(weft_submit_named(c, "add", p, 2, NULL, 0, NULL, &sum), 0);
	cr_assert_eq(u64_of(p[1]), 42);
	cr_assert_eq(u64_of(sum), 63);
	cr_assert_eq(weft_scatter(c, data, sizeof(data), &s), 0);
	cr_assert_eq(weft_submit_named(c, "check", &s, 1, NULL, 0, NULL, &ok), 0);
	cr_assert_eq(u64_of(ok), sizeof(data));
	/* weft_stats as it is now, not as of the last heartbeat: a blob in, then out. */
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_future *blob;
	size_t before;

	cr_assert_eq(weft_stats(c, &st), 0);
	before = st.mem_bytes;
	cr_assert_eq(weft_scatter(c, data, sizeof(data), &blob), 0);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_geq(st.mem_bytes, before + sizeof(data), "%zu after %zu", st.mem_bytes, before);
	weft_release(blob);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.mem_bytes, before, "the release is counted at once");
	weft_release(p[0]);
	weft_release(p[1]);
	weft_release(sum);
	weft_release(s);
	weft_release(ok);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* A task for a worker that is not there yet runs once it joins (the COMPUTE found it). */
Test(cluster, a_task_waits_for_its_named_worker_to_join, .timeout = 60)
{
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_future *f;
	struct weft_client *c;
	uint64_t ms = 0;

	cluster_start(&cl, 1, "tcp");
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on1, &f), 0);
	cr_assert_eq(weft_wait(f, 200ll * 1000 * 1000), -ETIMEDOUT, "no w1 yet");
	c_worker(&cl, 1);
	cl.n = 2;
	cr_assert_eq(u64_of(f), (uint64_t)cl.w[1], "it ran on w1 once w1 joined");
	weft_release(f);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, a_wrong_token_is_refused, .timeout = 60)
{
	struct weft_client *c;

	cluster_start(&cl, 1, "tcp");
	setenv("WEFT_TOKEN", "not-the-cluster-token!", 1);
	cr_assert_eq(weft_client_open(cl.url, NULL, &c), -EACCES);
	setenv("WEFT_TOKEN", TOKEN, 1);
	/* The scheduler serves the others still. */
	c = cluster_client(&cl);
	add_chain(c);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* Junk written three times to the tcp port of @url (tcp://HOST:PORT). */
static void garbage_at(const char *url)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *port = strrchr(url, ':');
	char junk[4096];
	int fd;

	cr_assert_not_null(port, "%s", url);
	sa.sin_port = htons((uint16_t)atoi(port + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	memset(junk, 0x5a, sizeof(junk));
	for (int i = 0; i < 3; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", url);
		/* It may close on us: that is fine, as long as it lives. */
		cr_assert_neq(write(fd, junk, sizeof(junk)), 0);
		close(fd);
	}
}

Test(cluster, garbage_at_the_schedulers_port_is_refused, .timeout = 60)
{
	struct weft_client *c;

	cluster_start(&cl, 1, "tcp");
	garbage_at(cl.url);
	c = cluster_client(&cl);
	add_chain(c);
	cr_assert_eq(weft_client_close(c), 0);
	cr_assert_eq(kill(cl.sched, 0), 0, "the scheduler lives");
	cluster_stop(&cl);
}

/* And at a worker's: it serves on, and reads from the other still work. */
Test(cluster, garbage_at_a_workers_port_is_refused, .timeout = 60)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	uint64_t n = 1u << 20, ms = 0;
	struct weft_future *big, *ok, *p1;
	struct weft_client *c;

	cluster_start(&cl, 2, "tcp");
	garbage_at(cl.wurl[1]);
	c = cluster_client(&cl);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(u64_of(ok), n, "w1 read w0's result");
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on1, &p1), 0);
	cr_assert_eq(u64_of(p1), (uint64_t)cl.w[1], "the same w1 serves");
	weft_release(big);
	weft_release(ok);
	weft_release(p1);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, a_worker_killed_mid_graph_leaves_correct_results, .timeout = 120)
{
	enum { N = 24 };
	struct weft_future *f[N], *sum;
	struct weft_client *c;
	uint64_t ms = 100;

	cluster_start(&cl, 2, "tcp");
	c = cluster_client(&cl);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, NULL, &f[i]), 0);
	cr_assert_eq(weft_submit_named(c, "add", f, N, NULL, 0, NULL, &sum), 0);
	usleep(300 * 1000);
	cr_assert_eq(kill(cl.w[0], SIGKILL), 0);
	waitpid(cl.w[0], NULL, 0);
	weft__shm_remove(cl.w[0]);
	cl.w[0] = 0;
	/* Every nap ends with the pid of the worker that ran it last: w1's for w0's. */
	uint64_t want = 0;

	for (int i = 0; i < N; i++) {
		uint64_t pid = u64_of(f[i]);

		cr_assert(pid == (uint64_t)cl.w[1] || pid != 0);
		want += pid;
	}
	cr_assert_eq(u64_of(sum), want, "the sum of what each one gave");
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	weft_release(sum);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* Results by RMA alone (WEFT_INLINE_MAX=0), then inline up to the most a message takes. */
static void inline_limit(const char *max)
{
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	uint64_t sizes[] = { 1, 8, 1000, 15000, 70000 };
	struct weft_client *c;

	setenv("WEFT_INLINE_MAX", max, 1);
	cluster_start(&cl, 2, "tcp");
	unsetenv("WEFT_INLINE_MAX");
	c = cluster_client(&cl);
	add_chain(c);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct weft_future *m, *ok;
		struct weft_buf b;

		cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &sizes[i], 8, &on0, &m), 0);
		cr_assert_eq(weft_submit_named(c, "check", &m, 1, NULL, 0, &on1, &ok), 0);
		cr_assert_eq(u64_of(ok), sizes[i], "%lu bytes from w0 to w1",
			     (unsigned long)sizes[i]);
		cr_assert_eq(weft_result(m, &b), 0);
		cr_assert_eq(b.len, sizes[i]);
		for (uint64_t k = 0; k < sizes[i]; k++)
			cr_assert_eq(((const uint8_t *)b.data)[k], (uint8_t)(k * 7));
		weft_release(m);
		weft_release(ok);
	}
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

Test(cluster, results_by_rma_alone_with_an_inline_limit_of_0, .timeout = 60)
{
	inline_limit("0");
}

Test(cluster, results_inline_up_to_the_largest_limit, .timeout = 60)
{
	inline_limit("15872");		/* a message's room for a piece (worker.c, PIECE) */
}

Test(cluster, a_burst_on_one_worker_is_shared_with_a_newcomer_and_none_runs_twice,
     .timeout = 120)
{
	/*
	 * 32 naps of 400 ms: 12.8 s of w0's work, long enough for w1 to join and steal
	 * even sanitized and beside another test (16 was seen to end first under TSan).
	 */
	enum { N = 32 };
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_future *f[N];
	struct weft_client *c;
	uint64_t ms = 400;
	int on_w1 = 0;

	cluster_start(&cl, 1, "tcp");
	c = cluster_client(&cl);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, NULL, &f[i]), 0);
	/* All went to w0, the only worker; w1 comes, idle, and steals. */
	c_worker(&cl, 1);
	cl.n = 2;
	for (int i = 0; i < N; i++)
		on_w1 += u64_of(f[i]) == (uint64_t)cl.w[1];
	cr_assert_gt(on_w1, 0, "w1 took some of w0's queue");
	cr_assert_lt(on_w1, N);
	/* Each ran once: the workers' count of runs, once their heartbeats tell it. */
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(weft_stats(c, &st), 0);
		if (st.tasks_run >= N)
			break;
		usleep(250 * 1000);
	}
	usleep(1200 * 1000);
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_eq(st.tasks_run, N, "%lu runs of %d tasks", (unsigned long)st.tasks_run, N);
	for (int i = 0; i < N; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* The scheduler serves the cluster's figures: /metrics and /api/stats agree with weft_stats. */
Test(cluster, the_scheduler_serves_the_clusters_figures, .timeout = 60)
{
	struct weft_stats st = { .size = sizeof(st) };
	unsigned port = free_port();
	struct weft_future *f[20];
	struct weft_client *c;
	char addr[64], *body, want[64];
	uint64_t one = 1;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cluster_start_as(&cl, 2, "tcp", 0, addr);
	c = cluster_client(&cl);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(weft_submit_named(c, "add", NULL, 0, &one, 8, NULL, &f[i]), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(weft_wait(f[i], -1), 0);
	/* weft_stats asks every worker: the scheduler's figures are fresh after it. */
	cr_assert_eq(weft_stats(c, &st), 0);
	cr_assert_geq(st.tasks_run, 20);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	snprintf(want, sizeof(want), "\nweft_tasks_run_total %llu\n", (unsigned long long)st.tasks_run);
	cr_assert_neq(strstr(body, want), NULL, "%s in %s", want, body);
	cr_assert_neq(strstr(body, "\nweft_threads 2\n"), NULL, "two workers of a thread");
	free(body);
	cr_assert_eq(get(port, "/api/stats", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	free(body);
	cr_assert_eq(get(port, "/nope", NULL), 404);
	for (int i = 0; i < 20; i++)
		weft_release(f[i]);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}

/* The number after @key in @text, or -1 when it is not there. */
static double after(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;

	return p ? strtod(p + strlen(key), NULL) : -1;
}

/*
 * What the workers record reaches the scheduler: its pages give the tasks by label,
 * the task stream by worker, the workers and the bytes read between them; and a
 * client of the cluster gets the trace, the report and the list of workers.
 */
Test(cluster, the_workers_records_fill_the_schedulers_views, .timeout = 120)
{
	struct weft_task_opts napping = { .size = sizeof(napping), .label = "nap" };
	struct weft_task_opts on0 = { .size = sizeof(on0), .worker = "w0" };
	struct weft_task_opts on1 = { .size = sizeof(on1), .worker = "w1" };
	struct weft_worker_info wi[4] = { { .size = sizeof(wi[0]) } };
	uint64_t n = 1u << 20, ms = 1;
	struct weft_future *f[20], *big, *ok;
	unsigned port = free_port();
	char addr[64], path[4096], *body = NULL, *text;
	struct weft_client *c;
	size_t len;
	int fd, tries;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cluster_start_as(&cl, 2, "tcp", 0, addr);
	c = cluster_client(&cl);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &napping, &f[i]), 0);
	cr_assert_eq(weft_submit_named(c, "make", NULL, 0, &n, 8, &on0, &big), 0);
	cr_assert_eq(weft_submit_named(c, "check", &big, 1, NULL, 0, &on1, &ok), 0);
	cr_assert_eq(u64_of(ok), n);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(weft_wait(f[i], -1), 0);
	/* The workers send what they record every half second. */
	for (tries = 0; tries < 100; tries++, usleep(100000)) {
		free(body);
		cr_assert_eq(get(port, "/api/labels", &body), 200);
		if (after(strstr(body, "{\"label\":\"nap\""), "\"tasks\":") == 20 &&
		    after(strstr(body, "{\"label\":\"check\""), "\"tasks\":") == 1)
			break;
	}
	cr_assert_lt(tries, 100, "the naps never all reached the scheduler: %s", body);
	cr_assert(json_ok(body));
	free(body);
	cr_assert_eq(get(port, "/api/stream", &body), 200);
	cr_assert(json_ok(body));
	cr_assert_not_null(strstr(body, "\"worker\":\"w0\""), "%s", body);
	cr_assert_not_null(strstr(body, "\"worker\":\"w1\""));
	free(body);
	cr_assert_eq(get(port, "/api/workers", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	cr_assert_not_null(strstr(body, "{\"name\":\"w0\""));
	cr_assert_geq(after(strstr(body, "{\"name\":\"w1\""), "\"bytes_in\":"), (double)n,
		      "w1 read w0's result: %s", body);
	cr_assert_geq(after(strstr(body, "{\"name\":\"w0\""), "\"bytes_out\":"), (double)n);
	/* Its thresholds, from its heartbeat: 60% and 80% of weft-cluster's 256M. */
	cr_assert_eq(after(strstr(body, "{\"name\":\"w0\""), "\"mem_target\":"),
		     (double)(size_t)(0.6 * (256 << 20)), "%s", body);
	free(body);
	cr_assert_eq(get(port, "/api/transfers", &body), 200);
	cr_assert(json_ok(body), "%s", body);
	cr_assert_eq(after(strstr(body, "{\"from\":\"w0\",\"to\":\"w1\""), "\"bytes\":"), (double)n,
		     "%s", body);
	free(body);
	cr_assert_eq(get(port, "/metrics", &body), 200);
	cr_assert_eq(after(body, "\nweft_label_tasks_total{label=\"nap\"} "), 20);
	cr_assert_geq(after(body, "\nweft_worker_received_bytes_total{worker=\"w1\"} "), (double)n);
	cr_assert_eq(after(body, "\nweft_worker_threads{worker=\"w0\"} "), 1);
	free(body);
	/* The workers, to a client. */
	cr_assert_eq(weft_workers(c, NULL, 0), 2);
	cr_assert_eq(weft_workers(c, wi, 4), 2);
	for (int i = 0; i < 2; i++) {
		struct weft_worker_info *w = !strcmp(wi[0].name, "w1") ? &wi[i ^ 1] : &wi[i];
		char name[8];

		snprintf(name, sizeof(name), "w%d", i);
		cr_assert_str_eq(w->name, name);
		cr_assert_eq(w->nthreads, 1);
		cr_assert_geq(i ? w->bytes_received : w->bytes_sent, n);
	}
	/* The trace and the report of the cluster, written by the client. */
	fd = mkstemp(t_template(path, sizeof(path), "cluster-trace"));
	close(fd);
	cr_assert_eq(weft_trace(c, path), 0);
	text = t_read(path, &len);
	cr_assert(json_ok(text), "the cluster's trace is JSON");
	cr_assert_not_null(strstr(text, "\"weft worker w0\""));
	cr_assert_not_null(strstr(text, "\"weft worker w1\""));
	cr_assert_eq(t_count(text, "\"name\":\"nap\","), 20, "every nap");
	cr_assert_not_null(strstr(text, "\"ph\":\"s\",\"cat\":\"transfer\""), "a flow w0 -> w1");
	free(text);
	unlink(path);
	strcat(path, ".html");		/* a browser takes the file by its name's end */
	cr_assert_eq(weft_report(c, path), 0);
	text = t_read(path, &len);
	cr_assert_not_null(strstr(text, "const WEFT_REPORT = "));
	cr_assert_not_null(strstr(text, "{\"from\":\"w0\",\"to\":\"w1\""));
	free(text);
	if (browser_here()) {
		char url[4200];

		/* The report, offline: the workers' rows, the read from w0 to w1. */
		snprintf(url, sizeof(url), "file://%s", path);
		text = browser_dom(url, 1000);
		cr_assert_eq(dom_number(text, "nthreads"), 2);
		cr_assert_not_null(strstr(text, "data-pair=\"w0 \xe2\x86\x92 w1\""),
				   "no transfer from w0 to w1 in the report");
		cr_assert_not_null(strstr(text, "data-label=\"nap\""));
		free(text);
		/* The scheduler's dashboard, live. */
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
		text = browser_dom(url, 2500);
		cr_assert_geq(dom_number(text, "tasks_run"), 22);
		cr_assert_not_null(strstr(text, "data-pair=\"w0 \xe2\x86\x92 w1\""));
		cr_assert_null(strstr(text, "id=\"status\">cannot reach"), "a poll failed");
		free(text);
		browser_screenshot(url, 2500, "cluster-dashboard.png");
	}
	unlink(path);
	for (int i = 0; i < 20; i++)
		weft_release(f[i]);
	weft_release(big);
	weft_release(ok);
	cr_assert_eq(weft_client_close(c), 0);
	cluster_stop(&cl);
}
