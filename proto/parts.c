// SPDX-License-Identifier: MIT
/*
 * parts.c - ops too large for a message, put together again from their PARTs.
 * A peer's PARTs arrive in order (messages are, by their sequence numbers), so
 * one assembler per peer holds the op so far; its buffer grows with what has come,
 * not with what a PART claims is coming.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void weft__parts_free(struct weft__parts *a)
{
	free(a->buf);
	*a = (struct weft__parts){ 0 };
}

/* Room for @need bytes, doubling so that an op of N bytes costs O(N) copying. */
static int grow(struct weft__parts *a, uint32_t need)
{
	uint64_t cap = a->cap ? a->cap : 64u << 10;
	uint8_t *p;

	if (need <= a->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > a->total)
		cap = a->total;
	p = realloc(a->buf, cap);
	if (!p)
		return -ENOMEM;
	a->buf = p;
	a->cap = (uint32_t)cap;
	return 0;
}

int weft__parts_add(struct weft__parts *a, const struct weft__op_part *part, uint16_t *type,
		    void *out)
{
	uint32_t len;
	int ret;

	if (!a->total)
		a->total = part->total;
	if (part->total != a->total || part->data.len > a->total - a->len) {
		ret = -EBADMSG;
		goto fail;
	}
	ret = grow(a, a->len + part->data.len);
	if (ret)
		goto fail;
	memcpy(a->buf + a->len, part->data.p, part->data.len);
	a->len += part->data.len;
	if (a->len < a->total)
		return 0;
	/* The whole op: a header that says so, and fields its schema takes. */
	*type = get16(a->buf);
	len = get32(a->buf + 4);
	a->len = a->total = 0;		/* the next PART starts another op */
	if (*type == WEFT_OP_PART || !weft__op_allowed(WEFT_MSG_OPS, *type) ||
	    get16(a->buf + 2) || len != part->total - WEFT_PROTO_OP_HDR ||
	    weft__op_decode(*type, a->buf + WEFT_PROTO_OP_HDR, len, out))
		return -EBADMSG;
	return 1;
fail:
	a->len = a->total = 0;
	return ret;
}

uint32_t weft__part_fits(uint32_t total, uint32_t at, uint32_t room)
{
	/* The op's header, then PART's fields: total (u32) and the data's length (u32). */
	uint32_t own = WEFT_PROTO_OP_HDR + 8;

	if (room <= own || at >= total)
		return 0;
	return room - own < total - at ? room - own : total - at;
}
