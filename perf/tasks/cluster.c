// SPDX-License-Identifier: MIT
/* Task functions of the cluster benchmark, loaded by each worker (--load). */
#include <stdint.h>
#include <string.h>

#include <weft.h>

static int noop(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	return 0;
}
WEFT_TASK(noop)

/* @arg (a uint64) bytes of result, written once. */
static int make(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		size_t arglen)
{
	uint64_t n;
	uint8_t *o;

	memcpy(&n, arg, 8);
	o = weft_output(ctx, n);
	if (!o)
		return -12;
	memset(o, 1, n);
	return 0;
}
WEFT_TASK(make)

/* Its input's length: the input is here, read, before it runs. */
static int touch(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin, const void *arg,
		 size_t arglen)
{
	uint64_t len = nin ? in[0].len : 0;

	memcpy(weft_output(ctx, 8), &len, 8);
	return 0;
}
WEFT_TASK(touch)
