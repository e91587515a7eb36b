// SPDX-License-Identifier: MIT
/*
 * Task functions of the cluster tests: loaded into each worker (--load) and linked
 * into the test program, so that both know them by name.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

/* The sum of its inputs' first words and its argument's. */
static int add(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
	       size_t arglen)
{
	uint64_t v = 0, x;
	uint64_t *o;

	for (size_t i = 0; i < nin; i++) {
		memcpy(&x, in[i].data, 8);
		v += x;
	}
	if (arglen >= 8) {
		memcpy(&x, arg, 8);
		v += x;
	}
	o = weft_output(ctx, 8);
	if (!o)
		return -12;
	memcpy(o, &v, 8);
	return 0;
}
WEFT_TASK(add)

/* @arg bytes, byte i being (i * 7) & 255. */
static int make(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	uint64_t n;
	uint8_t *o;

	memcpy(&n, arg, 8);
	o = weft_output(ctx, n);
	if (!o && n)
		return -12;
	for (uint64_t i = 0; i < n; i++)
		o[i] = (uint8_t)(i * 7);
	return 0;
}
WEFT_TASK(make)

/* 0 if its input is make()'s pattern, byte for byte; else fails. */
static int check(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		 size_t arglen)
{
	const uint8_t *p = in[0].data;
	uint64_t len = in[0].len;

	for (uint64_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(i * 7))
			return weft_fail(ctx, "byte %lu is %u", (unsigned long)i, p[i]);
	memcpy(weft_output(ctx, 8), &len, 8);
	return 0;
}
WEFT_TASK(check)

static int boom(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	return weft_fail(ctx, "boom %d", 42);
}
WEFT_TASK(boom)

/* Sleeps @arg milliseconds, then gives its pid: which worker ran it. */
static int nap(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
	       size_t arglen)
{
	uint64_t ms = 0, pid = (uint64_t)getpid();

	if (arglen >= 8)
		memcpy(&ms, arg, 8);
	usleep((useconds_t)ms * 1000);
	memcpy(weft_output(ctx, 8), &pid, 8);
	return 0;
}
WEFT_TASK(nap)

/* Two outputs: its argument, and its argument twice. */
static int pair(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	uint64_t x, y;

	memcpy(&x, arg, 8);
	y = 2 * x;
	memcpy(weft_output_n(ctx, 0, 8), &x, 8);
	memcpy(weft_output_n(ctx, 1, 8), &y, 8);
	return 0;
}
WEFT_TASK(pair)
