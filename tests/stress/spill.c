// SPDX-License-Identifier: MIT
/*
 * Spill under pressure: eight times the memory limit of live results, made by
 * several producers at once, each read back twice in a scattered order. Every word
 * is checked, the accounted peak stays under the limit, and so does the process's
 * peak resident memory, within 1.2x the limit plus a fixed overhead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../common.h"

#define MB (1u << 20)
#define LIMIT (64 * MB)
#define OVERHEAD (48 * MB)	/* records, deques, allocator metadata, the test */

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

TASK(make_block)
{
	uint64_t seed, *p;

	memcpy(&seed, arg, 8);
	p = weft_output(ctx, MB);
	if (!p)
		return weft_fail(ctx, "no memory");
	for (size_t i = 0; i < MB / 8; i++)
		p[i] = seed * 0x9e3779b97f4a7c15ull ^ i;
	return 0;
}

TASK(check_block)
{
	const uint64_t *p = in[0].data;
	uint64_t seed;

	memcpy(&seed, arg, 8);
	for (size_t i = 0; i < in[0].len / 8; i++)
		if (p[i] != (seed * 0x9e3779b97f4a7c15ull ^ i))
			return weft_fail(ctx, "block %llu word %zu", (unsigned long long)seed, i);
	return put_u64(ctx, seed);
}

Test(spill, eight_times_the_limit_within_rss, .timeout = 600)
{
	const char *scale = getenv("WEFT_STRESS_SCALE");
	int n = scale ? 128 : 512;	/* 8x the limit, or 2x under sanitizers */
	struct weft_options o = { .size = sizeof(o), .memory_limit = LIMIT };
	struct weft_future **b = calloc(n, sizeof(*b)), **k = calloc(2 * n, sizeof(*k));
	struct weft_stats st = { .size = sizeof(st) };
	struct weft_client *c;
	long base_kb, peak_kb;
	FILE *f;

	/* Reset the peak resident size, so that only this test counts. */
	f = fopen("/proc/self/clear_refs", "we");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
	base_kb = status_kb("VmRSS:");
	cr_assert_eq(weft_client_open(NULL, &o, &c), 0);
	for (uint64_t i = 0; i < (uint64_t)n; i++)
		cr_assert_eq(weft_submit(c, make_block, NULL, 0, &i, 8, NULL, &b[i]), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(weft_wait(b[i], -1), 0, "%s", weft_future_error(b[i]));
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			uint64_t j = (uint64_t)((i * 37 + pass * 11) % n);

			k[pass * n + i] = submit_u64(c, check_block, &b[j], 1, j);
		}
	}
	for (int i = 0; i < 2 * n; i++)
		cr_assert_eq(result_u64(k[i]), (uint64_t)(((i % n) * 37 + (i / n) * 11) % n));
	cr_assert_eq(weft_stats(c, &st), 0);
	peak_kb = status_kb("VmHWM:");
	cr_log_info("spilled %llu MiB, restored %llu MiB, accounted peak %zu MiB, "
		    "RSS peak %ld MiB over a base of %ld MiB",
		    (unsigned long long)(st.spilled_bytes >> 20),
		    (unsigned long long)(st.restored_bytes >> 20), st.mem_peak >> 20,
		    (peak_kb - base_kb) >> 10, base_kb >> 10);
	cr_assert_leq(st.mem_peak, LIMIT);
	cr_assert_gt(st.restored_bytes, 0);
	if (!scale)	/* sanitizers keep freed memory in quarantine */
		cr_assert_leq((size_t)(peak_kb - base_kb) << 10,
			      LIMIT + LIMIT / 5 + OVERHEAD, "peak RSS %ld MiB above the base",
			      (peak_kb - base_kb) >> 10);
	for (int i = 0; i < n; i++)
		weft_release(b[i]);
	for (int i = 0; i < 2 * n; i++)
		weft_release(k[i]);
	cr_assert_eq(weft_client_close(c), 0);
	free(b);
	free(k);
}
