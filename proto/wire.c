// SPDX-License-Identifier: MIT
/*
 * wire.c - messages on the wire: the header, the ops' headers, and the one encoder
 * and decoder that lay out any op's fields by its schema (ops.c).
 *
 * Decoding trusts nothing: every read is checked against what is left, every value
 * against its schema's bounds, and a message is checked whole (every op decoded)
 * before any of it is handed out, so that a bad op in the middle of a message
 * leaves nothing half applied.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

/* ---- decoding fields ---- */

/* What is left to read; a read past it fails and reads nothing. */
struct reader {
	const uint8_t *p, *end;
};

static const uint8_t *take(struct reader *r, size_t n)
{
	const uint8_t *at = r->p;

	if ((size_t)(r->end - r->p) < n)
		return NULL;
	r->p += n;
	return at;
}

static bool in_bounds(const struct weft__field *f, int64_t v)
{
	return v >= f->min && v <= f->max;
}

static int decode_fields(const struct weft__schema *s, struct reader *r, void *out);

/* A list's count, then its items, each checked by the item schema. */
static int decode_list(const struct weft__field *f, struct reader *r, struct weft__plist *l)
{
	uint8_t scratch[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	const uint8_t *q = take(r, 4);

	if (!q)
		return -EBADMSG;
	*l = (struct weft__plist){ .n = get32(q), .raw = r->p, .item = f->item };
	if (l->n > f->max)
		return -EBADMSG;
	/* Each item takes at least one byte, so the message's length bounds the loop. */
	for (uint32_t i = 0; i < l->n; i++)
		if (decode_fields(f->item, r, scratch))
			return -EBADMSG;
	l->len = (uint32_t)(r->p - l->raw);
	return 0;
}

static int decode_field(const struct weft__field *f, struct reader *r, char *out)
{
	const uint8_t *q;
	uint32_t len;

	switch (f->kind) {
	case PF_U8:
		if (!(q = take(r, 1)) || !in_bounds(f, q[0]))
			return -EBADMSG;
		*(uint8_t *)out = q[0];
		return 0;
	case PF_U32:
		if (!(q = take(r, 4)) || !in_bounds(f, get32(q)))
			return -EBADMSG;
		*(uint32_t *)out = get32(q);
		return 0;
	case PF_I32:
		if (!(q = take(r, 4)) || !in_bounds(f, (int32_t)get32(q)))
			return -EBADMSG;
		*(int32_t *)out = (int32_t)get32(q);
		return 0;
	case PF_U64:
		if (!(q = take(r, 8)))
			return -EBADMSG;
		*(uint64_t *)out = get64(q);
		return 0;
	case PF_FIXED:
		if (!(q = take(r, (size_t)f->max)))
			return -EBADMSG;
		memcpy(out, q, (size_t)f->max);
		return 0;
	case PF_BYTES:
	case PF_TEXT:
		if (!(q = take(r, 4)))
			return -EBADMSG;
		len = get32(q);
		if (!in_bounds(f, len) || !(q = take(r, len)))
			return -EBADMSG;
		if (f->kind == PF_TEXT && memchr(q, 0, len))
			return -EBADMSG;
		*(struct weft__pbytes *)out = (struct weft__pbytes){ q, len };
		return 0;
	case PF_LIST:
		return decode_list(f, r, (struct weft__plist *)out);
	}
	return -EBADMSG;
}

static int decode_fields(const struct weft__schema *s, struct reader *r, void *out)
{
	memset(out, 0, s->size);
	for (unsigned i = 0; i < s->nfields; i++)
		if (decode_field(&s->fields[i], r, (char *)out + s->fields[i].off))
			return -EBADMSG;
	return 0;
}

int weft__op_decode(uint16_t type, const uint8_t *p, size_t len, void *out)
{
	const struct weft__schema *s = weft__op_schema(type);
	struct reader r = { p, p + len };

	if (!s || decode_fields(s, &r, out) || r.p != r.end || weft__op_check(type, out))
		return -EBADMSG;
	return 0;
}

bool weft__plist_next(struct weft__plist_iter *it, void *out)
{
	const struct weft__plist *l = it->l;
	struct reader r = { l->raw + it->at, l->raw + l->len };

	if (it->i >= l->n || decode_fields(l->item, &r, out))
		return false;		/* checked when the message was opened */
	it->at = (uint32_t)(r.p - l->raw);
	it->i++;
	return true;
}

/* ---- encoding fields ---- */

static long fields_size(const struct weft__schema *s, const char *op);

static long field_size(const struct weft__field *f, const char *v)
{
	const struct weft__pbytes *b = (const struct weft__pbytes *)v;
	const struct weft__plist *l = (const struct weft__plist *)v;
	long n = 4;

	switch (f->kind) {
	case PF_U8:
		return in_bounds(f, *(const uint8_t *)v) ? 1 : -EINVAL;
	case PF_U32:
		return in_bounds(f, *(const uint32_t *)v) ? 4 : -EINVAL;
	case PF_I32:
		return in_bounds(f, *(const int32_t *)v) ? 4 : -EINVAL;
	case PF_U64:
		return 8;
	case PF_FIXED:
		return (long)f->max;
	case PF_BYTES:
	case PF_TEXT:
		if (!in_bounds(f, b->len) || (b->len && !b->p) ||
		    (f->kind == PF_TEXT && b->len && memchr(b->p, 0, b->len)))
			return -EINVAL;
		return 4 + (long)b->len;
	case PF_LIST:
		if (l->n > f->max || (l->n && !l->items && !l->raw))
			return -EINVAL;
		if (!l->items)		/* a decoded list, forwarded as it came */
			return 4 + (long)l->len;
		for (uint32_t i = 0; i < l->n; i++) {
			long m = fields_size(f->item, (const char *)l->items + i * f->item->size);

			if (m < 0)
				return m;
			n += m;
		}
		return n;
	}
	return -EINVAL;
}

static long fields_size(const struct weft__schema *s, const char *op)
{
	long n = 0;

	for (unsigned i = 0; i < s->nfields; i++) {
		long m = field_size(&s->fields[i], op + s->fields[i].off);

		if (m < 0)
			return m;
		n += m;
	}
	return n;
}

/* Lay out fields already checked by fields_size(); return the end. */
static uint8_t *encode_fields(const struct weft__schema *s, const char *op, uint8_t *p)
{
	for (unsigned i = 0; i < s->nfields; i++) {
		const struct weft__field *f = &s->fields[i];
		const char *v = op + f->off;
		const struct weft__pbytes *b = (const struct weft__pbytes *)v;
		const struct weft__plist *l = (const struct weft__plist *)v;

		switch (f->kind) {
		case PF_U8:
			*p++ = *(const uint8_t *)v;
			break;
		case PF_U32:
		case PF_I32:
			put32(p, *(const uint32_t *)v);
			p += 4;
			break;
		case PF_U64:
			put64(p, *(const uint64_t *)v);
			p += 8;
			break;
		case PF_FIXED:
			memcpy(p, v, (size_t)f->max);
			p += f->max;
			break;
		case PF_BYTES:
		case PF_TEXT:
			put32(p, b->len);
			if (b->len)
				memcpy(p + 4, b->p, b->len);
			p += 4 + b->len;
			break;
		case PF_LIST:
			put32(p, l->n);
			p += 4;
			if (!l->items) {
				if (l->len)
					memcpy(p, l->raw, l->len);
				p += l->len;
				break;
			}
			for (uint32_t k = 0; k < l->n; k++)
				p = encode_fields(f->item,
						  (const char *)l->items + k * f->item->size, p);
			break;
		}
	}
	return p;
}

long weft__op_size(uint16_t type, const void *op)
{
	const struct weft__schema *s = weft__op_schema(type);
	long n;

	if (!s || weft__op_check(type, op))
		return -EINVAL;
	n = fields_size(s, op);
	return n < 0 ? n : n + WEFT_PROTO_OP_HDR;
}

/* ---- messages ---- */

void weft__msg_begin(struct weft__msg_out *o, void *buf, uint8_t type)
{
	*o = (struct weft__msg_out){ .buf = buf, .len = WEFT_PROTO_HDR, .type = type,
				     .cap = WEFT_PROTO_MAX_MSG };
}

int weft__msg_add(struct weft__msg_out *o, uint16_t type, const void *op)
{
	long n = weft__op_size(type, op);
	uint8_t *p;

	if (n < 0)
		return (int)n;
	if (!weft__op_allowed(o->type, type))
		return -EINVAL;
	if (n > o->cap - WEFT_PROTO_HDR)
		return -EMSGSIZE;
	if (n > o->cap - o->len || o->nops == UINT16_MAX)
		return -ENOSPC;
	p = o->buf + o->len;
	put16(p, type);
	put16(p + 2, 0);
	put32(p + 4, (uint32_t)(n - WEFT_PROTO_OP_HDR));
	encode_fields(weft__op_schema(type), op, p + WEFT_PROTO_OP_HDR);
	o->len += (uint32_t)n;
	o->nops++;
	return 0;
}

long weft__op_encode(uint16_t type, const void *op, uint8_t *buf, size_t cap)
{
	long n = weft__op_size(type, op);

	if (n < 0)
		return n;
	if ((size_t)n > cap)
		return -ENOSPC;
	put16(buf, type);
	put16(buf + 2, 0);
	put32(buf + 4, (uint32_t)(n - WEFT_PROTO_OP_HDR));
	encode_fields(weft__op_schema(type), op, buf + WEFT_PROTO_OP_HDR);
	return n;
}

int weft__msg_add_raw(struct weft__msg_out *o, const uint8_t *op, size_t len)
{
	if (len < WEFT_PROTO_OP_HDR || !weft__op_allowed(o->type, get16(op)))
		return -EINVAL;
	if (len > o->cap - WEFT_PROTO_HDR)
		return -EMSGSIZE;
	if (len > o->cap - o->len || o->nops == UINT16_MAX)
		return -ENOSPC;
	memcpy(o->buf + o->len, op, len);
	o->len += (uint32_t)len;
	o->nops++;
	return 0;
}

uint32_t weft__msg_end(struct weft__msg_out *o, uint64_t seq)
{
	uint8_t *p = o->buf;

	put32(p, WEFT_PROTO_MAGIC);
	p[4] = WEFT_PROTO_MAJOR;
	p[5] = WEFT_PROTO_MINOR;
	p[6] = o->type;
	p[7] = 0;
	put32(p + 8, o->len);
	put16(p + 12, o->nops);
	put16(p + 14, 0);
	put64(p + 16, seq);
	put64(p + 24, o->conn);
	return o->len;
}

/* How many ops a message of each type carries: at least, at most. */
static bool nops_fit(uint8_t type, uint16_t nops)
{
	switch (type) {
	case WEFT_MSG_HELLO:
	case WEFT_MSG_AUTH:
		return nops == 1;
	case WEFT_MSG_OPS:
		return nops >= 1;
	default:
		return nops == 0;
	}
}

/* Walk the ops, decoding each: the whole message is good, or it is refused. */
static int check_ops(const struct weft__msg *m)
{
	uint8_t scratch[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__op_iter it;
	uint16_t type;
	int ret;

	weft__op_iter_init(&it, m);
	while ((ret = weft__op_next(&it, &type, scratch)) > 0)
		;
	if (ret < 0)
		return ret;
	return it.at == m->ops_len ? 0 : -EBADMSG;
}

int weft__msg_open(const void *buf, size_t len, uint64_t seq, struct weft__msg *m)
{
	const uint8_t *p = buf;

	memset(m, 0, sizeof(*m));
	if (len < WEFT_PROTO_HDR || len > WEFT_PROTO_MAX_MSG || get32(p) != WEFT_PROTO_MAGIC)
		return -EBADMSG;
	m->major = p[4];
	m->minor = p[5];
	m->type = p[6];
	m->flags = p[7];
	m->length = get32(p + 8);
	m->nops = get16(p + 12);
	m->seq = get64(p + 16);
	m->conn = get64(p + 24);
	if (m->major != WEFT_PROTO_MAJOR || m->minor != WEFT_PROTO_MINOR)
		return -EPROTO;
	if (m->length != len || get16(p + 14) || m->flags || !m->type ||
	    m->type >= WEFT_MSG_TYPES || !nops_fit(m->type, m->nops))
		return -EBADMSG;
	if (m->seq != seq)
		return -EALREADY;
	m->ops = p + WEFT_PROTO_HDR;
	m->ops_len = (uint32_t)(len - WEFT_PROTO_HDR);
	return check_ops(m);
}

void weft__op_iter_init(struct weft__op_iter *it, const struct weft__msg *m)
{
	*it = (struct weft__op_iter){ .m = m };
}

int weft__op_next(struct weft__op_iter *it, uint16_t *type, void *out)
{
	const struct weft__msg *m = it->m;
	const uint8_t *p = m->ops + it->at;
	uint32_t left = m->ops_len - it->at, len;

	if (it->i == m->nops)
		return 0;
	if (left < WEFT_PROTO_OP_HDR)
		return -EBADMSG;
	*type = get16(p);
	len = get32(p + 4);
	if (get16(p + 2) || len > left - WEFT_PROTO_OP_HDR || !weft__op_allowed(m->type, *type) ||
	    weft__op_decode(*type, p + WEFT_PROTO_OP_HDR, len, out))
		return -EBADMSG;
	it->at += WEFT_PROTO_OP_HDR + len;
	it->i++;
	return 1;
}

void weft__pbytes_str(char *dst, size_t cap, struct weft__pbytes b)
{
	size_t n;

	if (!cap)
		return;
	n = b.len < cap - 1 ? b.len : cap - 1;
	if (n)
		memcpy(dst, b.p, n);
	dst[n] = '\0';
}

int weft__hello_addr(const void *buf, size_t len, struct weft__pbytes *addr, uint64_t *conn)
{
	const uint8_t *p = buf;
	/* The header, the op's header, role and nonce: then the address's length. */
	size_t at = WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR + 1 + 32;
	uint32_t n;

	if (len < at + 4 || len > WEFT_PROTO_MAX_MSG || get32(p) != WEFT_PROTO_MAGIC ||
	    p[6] != WEFT_MSG_HELLO || get16(p + WEFT_PROTO_HDR) != WEFT_OP_HELLO)
		return -EBADMSG;
	n = get32(p + at);
	if (!n || n > WEFT_PROTO_MAX_ADDR || n > len - at - 4 || len - at - 4 - n < 8)
		return -EBADMSG;
	*addr = (struct weft__pbytes){ p + at + 4, n };
	*conn = get64(p + at + 4 + n);
	return 0;
}
