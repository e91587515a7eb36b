// SPDX-License-Identifier: MIT
/*
 * libFuzzer targets for proto/'s decoders. Built once per decoder (make fuzz):
 * FUZZ_OP unset, the message decoder (header, op headers, every op); FUZZ_OP=n,
 * the decoder of op type n alone. Besides never reading out of bounds (ASan) or
 * misbehaving (UBSan), whatever decodes must encode back to the same bytes, and a
 * decoded list must yield exactly its count of items. The message decoder also
 * puts together the op its PARTs carry (parts.c), which must encode back too.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "../../proto/internal.h"

static uint8_t out[WEFT_PROTO_MAX_MSG];

/* Every list field of a decoded op: its items come out, as many as it says. */
static void walk_lists(uint16_t type, const void *op)
{
	const struct weft__schema *s = weft__op_schema(type);
	uint8_t item[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));

	for (unsigned i = 0; i < s->nfields; i++) {
		const struct weft__plist *l;
		struct weft__plist_iter it;
		uint32_t n = 0;

		if (s->fields[i].kind != PF_LIST)
			continue;
		l = (const struct weft__plist *)((const char *)op + s->fields[i].off);
		weft__plist_iter_init(&it, l);
		while (weft__plist_next(&it, item))
			n++;
		if (n != l->n)
			abort();
	}
}

#ifdef FUZZ_OP
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__msg_out o;
	uint8_t msg_type = FUZZ_OP == WEFT_OP_HELLO ? WEFT_MSG_HELLO :
			   FUZZ_OP == WEFT_OP_AUTH ? WEFT_MSG_AUTH : WEFT_MSG_OPS;

	if (size > WEFT_PROTO_MAX_BYTES || weft__op_decode(FUZZ_OP, data, size, op))
		return 0;
	walk_lists(FUZZ_OP, op);
	weft__msg_begin(&o, out, msg_type);
	if (weft__msg_add(&o, FUZZ_OP, op) ||
	    o.len != WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR + size ||
	    memcmp(out + WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR, data, size))
		abort();		/* decoded, but does not encode back */
	return 0;
}
#else
/* A PART into the assembler: an op it completes encodes back to the bytes it came as. */
static void part_in(const struct weft__op_part *part, struct weft__parts *a)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	static uint8_t again[WEFT_PROTO_MAX_MSG];
	uint16_t type;
	long n;

	if (weft__parts_add(a, part, &type, op) != 1)
		return;
	walk_lists(type, op);
	n = weft__op_encode(type, op, again, sizeof(again));
	if (n != (long)part->total || memcmp(again, a->buf, (size_t)n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__msg_out o;
	struct weft__op_iter it;
	struct weft__msg m;
	struct weft__parts parts = { 0 };
	uint64_t seq = 0;
	uint16_t type;
	struct weft__pbytes addr;
	uint64_t conn;

	/* Where a HELLO of any version says to answer lies inside it. */
	if (!weft__hello_addr(data, size, &addr, &conn) &&
	    (addr.p < data || addr.p + addr.len + 8 > data + size))
		abort();
	/* The sequence number the message carries, to get past that check. */
	if (size >= WEFT_PROTO_HDR)
		memcpy(&seq, data + 16, 8);
	if (weft__msg_open(data, size, le64toh(seq), &m))
		return 0;
	weft__op_iter_init(&it, &m);
	weft__msg_begin(&o, out, m.type);
	o.conn = m.conn;
	while (weft__op_next(&it, &type, op) == 1) {
		walk_lists(type, op);
		if (weft__msg_add(&o, type, op))
			abort();
		if (type == WEFT_OP_PART)
			part_in((const struct weft__op_part *)op, &parts);
	}
	weft__parts_free(&parts);
	/* All but the minor version (ours is written) come back the same. */
	if (weft__msg_end(&o, m.seq) != size || memcmp(out, data, 5) ||
	    memcmp(out + 6, data + 6, size - 6))
		abort();
	return 0;
}
#endif
