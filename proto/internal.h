/* SPDX-License-Identifier: MIT */
/*
 * internal.h - proto/'s own: how an op's fields are described (a schema per op,
 * ops.c) for the one encoder and decoder that serve them all (wire.c), and the
 * little-endian access wire.c and parts.c share.
 */
#ifndef WEFT_PROTO_INTERNAL_H
#define WEFT_PROTO_INTERNAL_H

#include <endian.h>
#include <string.h>

#include "proto.h"

/* Little-endian integers at any alignment. */
static inline uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

enum weft__field_kind {
	PF_U8,
	PF_U32,
	PF_U64,
	PF_I32,
	PF_FIXED,			/* @max raw bytes, into a uint8_t array */
	PF_BYTES,			/* u32 length, then up to @max bytes */
	PF_TEXT,			/* the same, holding no NUL */
	PF_LIST,			/* u32 count (up to @max), then the items */
};

struct weft__field {
	uint8_t kind;
	uint16_t off;			/* in the op's struct */
	int64_t min, max;		/* values; lengths and counts: max only */
	const struct weft__schema *item;	/* PF_LIST */
};

struct weft__schema {
	const char *name;
	uint16_t size;			/* of the struct */
	uint8_t nfields;
	const struct weft__field *fields;
};

/* The schema of op @type, or NULL for a type not known. */
const struct weft__schema *weft__op_schema(uint16_t type);
/* The rules between fields of a decoded or to-be-encoded op: 0 or -EINVAL. */
int weft__op_check(uint16_t type, const void *op);

#endif /* WEFT_PROTO_INTERNAL_H */
