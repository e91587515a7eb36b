// SPDX-License-Identifier: MIT
/*
 * Unit tests of proto/: every op through the encoder and back; and the messages a
 * broken or hostile peer sends: truncated, oversized, out of range, with another
 * major version, replayed, with trailing bytes, with an op not allowed where it is.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "proto.h"
#include "../../proto/internal.h"

static uint8_t buf[WEFT_PROTO_MAX_MSG];

#define PB(s) weft__pbytes_of(s, strlen(s))

static bool pb_eq(struct weft__pbytes b, const char *s)
{
	return b.len == strlen(s) && !memcmp(b.p, s, b.len);
}

/* One op in an OPS message with @seq; return its length. */
static uint32_t one_op(uint16_t type, const void *op, uint64_t seq)
{
	struct weft__msg_out o;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, type, op), 0, "encode %s", weft__op_name(type));
	return weft__msg_end(&o, seq);
}

/* Open a message expecting @seq and decode its only op into @out. */
static void open_one(uint32_t len, uint64_t seq, uint16_t want, void *out)
{
	struct weft__msg m;
	struct weft__op_iter it;
	uint16_t type;

	cr_assert_eq(weft__msg_open(buf, len, seq, &m), 0);
	weft__op_iter_init(&it, &m);
	cr_assert_eq(weft__op_next(&it, &type, out), 1);
	cr_assert_eq(type, want);
	cr_assert_eq(weft__op_next(&it, &type, out), 0, "one op only");
}

Test(proto, submit_round_trip)
{
	struct weft__pdep deps[3] = { { 1, 0 }, { 2, 5 }, { UINT64_MAX, 65534 } };
	struct weft__op_submit s = {
		.key = 0x123456789abcdefull, .fn = PB("fib"), .label = PB("fib-30"),
		.worker = PB("w1"), .arg = weft__pbytes_of("\0\1\2\3", 4), .noutputs = 3,
		.priority = -7, .retries = 2,
		.deps = { .n = 3, .items = deps },
	};
	struct weft__op_submit d;
	struct weft__plist_iter it;
	struct weft__pdep dep;
	uint32_t len = one_op(WEFT_OP_SUBMIT, &s, 0);

	cr_assert_eq(len, WEFT_PROTO_HDR + weft__op_size(WEFT_OP_SUBMIT, &s));
	open_one(len, 0, WEFT_OP_SUBMIT, &d);
	cr_assert_eq(d.key, s.key);
	cr_assert(pb_eq(d.fn, "fib") && pb_eq(d.label, "fib-30") && pb_eq(d.worker, "w1"));
	cr_assert_eq(d.arg.len, 4);
	cr_assert_eq(memcmp(d.arg.p, "\0\1\2\3", 4), 0);
	cr_assert_eq(d.noutputs, 3);
	cr_assert_eq(d.priority, -7);
	cr_assert_eq(d.retries, 2);
	cr_assert_eq(d.deps.n, 3);
	weft__plist_iter_init(&it, &d.deps);
	for (int i = 0; i < 3; i++) {
		cr_assert(weft__plist_next(&it, &dep));
		cr_assert_eq(dep.key, deps[i].key);
		cr_assert_eq(dep.output, deps[i].output);
	}
	cr_assert_not(weft__plist_next(&it, &dep), "three items, no more");
}

Test(proto, every_op_round_trips)
{
	struct weft__psize sizes[2] = { { 10 }, { 1u << 30 } };
	struct weft__pinput inputs[1] = { { 9, 1, 4, 4096 } };
	struct weft__pstat stats[2] = { { 1, 100 }, { 7, 3 } };
	struct weft__op_hello hello = { .role = WEFT_ROLE_WORKER, .name = PB("w0"),
					.ctrl_addr = PB("ctrl"),
					.data_addr = weft__pbytes_of("\x02\0\x1f\x90", 4),
					.nthreads = 8, .memory_limit = 1ull << 34,
					.data_addr2 = PB("fi_shm://weft-1-2") };
	struct weft__op_auth auth;
	struct weft__op_piece piece = { 5, 0, 100, 90, weft__pbytes_of("0123456789", 10) };
	struct weft__op_future fut = { 5, 2, WEFT_WANT_RESULT };
	struct weft__op_stats_ask ask = { 77 };
	struct weft__op_ended ended = { 5, WEFT_END_FAILED, WEFT_ETASK, PB("boom") };
	struct weft__op_stats st = { 77, { .n = 2, .items = stats } };
	struct weft__op_peer peer = { 4, WEFT_ROLE_WORKER, PB("w3"), PB("ctrl"), PB("data") };
	struct weft__op_compute comp = { 6, PB("add"), PB(""), PB("xy"), 1, 0, 0,
					 { .n = 1, .items = inputs } };
	struct weft__op_send_result sr = { 6, 0, 2, 99 };
	struct weft__op_stolen stolen = { 6, 1 };
	struct weft__op_done done = { 6, WEFT_END_DONE, 0, PB(""), 1234,
				      { .n = 2, .items = sizes }, 1 };
	struct weft__op_cancelled cancelled = { 6, -EBUSY };
	struct weft__op_heartbeat hb = { 1, 2, 3, 4, 5, 6, 7, 1 };
	struct weft__op_lease_ask la = { 11, 6, 0 };
	struct weft__op_lease lease = { 11, 0, 0, 99, 0xdead, 0x1000, 1 << 20, PB("") };
	struct weft__op_unlease ul = { 99 };
	struct weft__op_part part = { 40000, PB("the first bytes of an op") };
	struct weft__op_gone gone = { 7 };
	struct { uint16_t type; const void *op; } all[] = {
		{ WEFT_OP_SCATTER, &piece }, { WEFT_OP_WANT, &fut }, { WEFT_OP_RELEASE, &fut },
		{ WEFT_OP_CANCEL, &fut }, { WEFT_OP_STATS_ASK, &ask }, { WEFT_OP_ENDED, &ended },
		{ WEFT_OP_STATS, &st }, { WEFT_OP_PEER, &peer }, { WEFT_OP_COMPUTE, &comp },
		{ WEFT_OP_PUT, &piece }, { WEFT_OP_FREE, &fut }, { WEFT_OP_SEND_RESULT, &sr },
		{ WEFT_OP_STEAL, &fut }, { WEFT_OP_DONE, &done }, { WEFT_OP_STOLEN, &stolen },
		{ WEFT_OP_HEARTBEAT, &hb }, { WEFT_OP_LEASE_ASK, &la }, { WEFT_OP_LEASE, &lease },
		{ WEFT_OP_UNLEASE, &ul }, { WEFT_OP_RESULT, &piece },
		{ WEFT_OP_CANCELLED, &cancelled }, { WEFT_OP_PART, &part },
		{ WEFT_OP_GONE, &gone },
	};
	uint8_t out[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	uint8_t again[WEFT_PROTO_MAX_MSG];
	struct weft__msg_out o;
	struct weft__msg m;
	struct weft__op_iter it;
	uint16_t type;
	uint32_t len;
	size_t i;

	memset(auth.mac, 0xa5, sizeof(auth.mac));
	memset(hello.nonce, 0x5a, sizeof(hello.nonce));
	/* All in one message, in order; then each decoded op encodes to the same bytes. */
	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		cr_assert_eq(weft__msg_add(&o, all[i].type, all[i].op), 0, "%s",
			     weft__op_name(all[i].type));
	len = weft__msg_end(&o, 41);
	cr_assert_eq(weft__msg_open(buf, len, 41, &m), 0);
	cr_assert_eq(m.nops, sizeof(all) / sizeof(all[0]));
	weft__op_iter_init(&it, &m);
	weft__msg_begin(&o, again, WEFT_MSG_OPS);
	for (i = 0; weft__op_next(&it, &type, out) == 1; i++) {
		cr_assert_eq(type, all[i].type);
		cr_assert_eq(weft__msg_add(&o, type, out), 0, "re-encode %s",
			     weft__op_name(type));
	}
	cr_assert_eq(i, sizeof(all) / sizeof(all[0]));
	cr_assert_eq(weft__msg_end(&o, 41), len);
	cr_assert_eq(memcmp(again, buf, len), 0, "decoded ops encode to the same bytes");

	/* The handshake's two, each alone in its message type. */
	weft__msg_begin(&o, buf, WEFT_MSG_HELLO);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_HELLO, &hello), 0);
	len = weft__msg_end(&o, 0);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
	weft__op_iter_init(&it, &m);
	struct weft__op_hello h2;

	cr_assert_eq(weft__op_next(&it, &type, &h2), 1);
	cr_assert_eq(h2.role, WEFT_ROLE_WORKER);
	cr_assert_eq(memcmp(h2.nonce, hello.nonce, 32), 0);
	cr_assert(pb_eq(h2.name, "w0"));
	cr_assert_eq(h2.memory_limit, 1ull << 34);
	cr_assert(pb_eq(h2.data_addr2, "fi_shm://weft-1-2"));
	weft__msg_begin(&o, buf, WEFT_MSG_AUTH);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_AUTH, &auth), 0);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_AUTH, &auth), 0);
	len = weft__msg_end(&o, 1);
	cr_assert_eq(weft__msg_open(buf, len, 1, &m), -EBADMSG, "AUTH comes alone");
}

Test(proto, every_prefix_of_a_message_is_refused)
{
	struct weft__pdep deps[2] = { { 1, 0 }, { 2, 1 } };
	struct weft__op_submit s = { .key = 1, .fn = PB("f"), .noutputs = 1,
				     .deps = { .n = 2, .items = deps } };
	struct weft__msg m;
	uint32_t len = one_op(WEFT_OP_SUBMIT, &s, 0);

	for (uint32_t n = 0; n < len; n++)
		cr_assert_eq(weft__msg_open(buf, n, 0, &m), -EBADMSG, "prefix of %u bytes", n);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
}

Test(proto, a_length_that_lies_is_refused)
{
	struct weft__op_future f = { 1, 0, 0 };
	struct weft__msg m;
	uint32_t len = one_op(WEFT_OP_RELEASE, &f, 0);
	uint32_t v;

	/* The header's length must be the message's. */
	v = htole32(len + 1);
	memcpy(buf + 8, &v, 4);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG);
	len = one_op(WEFT_OP_RELEASE, &f, 0);
	/* An op's length past the message's end. */
	v = htole32(1000);
	memcpy(buf + WEFT_PROTO_HDR + 4, &v, 4);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG);
	/* Trailing bytes after the ops. */
	len = one_op(WEFT_OP_RELEASE, &f, 0);
	buf[len] = 0;
	v = htole32(len + 1);
	memcpy(buf + 8, &v, 4);
	cr_assert_eq(weft__msg_open(buf, len + 1, 0, &m), -EBADMSG);
	/* A bigger op count than there are ops. */
	len = one_op(WEFT_OP_RELEASE, &f, 0);
	buf[12] = 2;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG);
}

Test(proto, oversized_messages_are_refused)
{
	static uint8_t big[WEFT_PROTO_MAX_MSG + 64];
	struct weft__msg m;
	uint32_t v = htole32(sizeof(big));

	one_op(WEFT_OP_STATS_ASK, &(struct weft__op_stats_ask){ 1 }, 0);
	memcpy(big, buf, WEFT_PROTO_HDR);
	memcpy(big + 8, &v, 4);
	cr_assert_eq(weft__msg_open(big, sizeof(big), 0, &m), -EBADMSG);
}

Test(proto, values_out_of_bounds_are_refused_both_ways)
{
	struct weft__op_submit s = { .key = 1, .fn = PB("f"), .noutputs = 1 };
	struct weft__msg_out o;
	struct weft__msg m;
	uint32_t len;
	uint8_t *noutputs;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	s.noutputs = 0;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_SUBMIT, &s), -EINVAL, "no outputs");
	s.noutputs = 1;
	s.fn = PB("");
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_SUBMIT, &s), -EINVAL, "no function name");
	s.fn = weft__pbytes_of("a\0b", 3);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_SUBMIT, &s), -EINVAL, "NUL in a name");
	s.fn = PB("f");
	s.retries = 1001;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_SUBMIT, &s), -EINVAL, "retries");
	s.retries = 0;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_HELLO, &(struct weft__op_hello){ .role = 1,
				   .ctrl_addr = PB("a") }),
		     -EINVAL, "HELLO in an OPS message");

	/* The same values written into a good message by hand: the decoder refuses them. */
	len = one_op(WEFT_OP_SUBMIT, &s, 0);
	/* key 8, fn 4 + 1, label 4, worker 4, arg 4: then noutputs. */
	noutputs = buf + WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR + 8 + 5 + 4 + 4 + 4;
	cr_assert_eq(noutputs[0], 1);
	noutputs[0] = 0;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG, "no outputs");
	noutputs[0] = 1;
	buf[WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR + 8 + 4] = 0;	/* the name's byte: NUL */
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG, "NUL in a name");
	buf[WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR + 8 + 4] = 'f';
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
	buf[WEFT_PROTO_HDR] = 200;				/* an op type not known */
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG, "unknown op");
}

Test(proto, a_piece_outside_its_result_is_refused)
{
	struct weft__op_piece p = { 1, 0, 10, 8, PB("abc") };
	struct weft__msg_out o;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), -EINVAL);
	p.offset = 7;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), 0);
	p.offset = UINT64_MAX;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), -EINVAL, "offset past the end");
}

Test(proto, another_version_is_told_apart)
{
	struct weft__msg m;
	uint32_t len = one_op(WEFT_OP_STATS_ASK, &(struct weft__op_stats_ask){ 1 }, 0);

	buf[4] = WEFT_PROTO_MAJOR + 1;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EPROTO);
	cr_assert_eq(m.major, WEFT_PROTO_MAJOR + 1, "the version is there to log");
	buf[4] = WEFT_PROTO_MAJOR;
	buf[5] = WEFT_PROTO_MINOR + 1;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EPROTO, "nor a newer minor");
	cr_assert_eq(m.minor, WEFT_PROTO_MINOR + 1);
	buf[5] = WEFT_PROTO_MINOR - 1;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EPROTO, "nor an older one");
	buf[5] = WEFT_PROTO_MINOR;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
	buf[0] ^= 1;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EBADMSG, "bad magic");
}

Test(proto, replayed_and_reordered_messages_are_refused)
{
	struct weft__msg m;
	uint32_t len = one_op(WEFT_OP_STATS_ASK, &(struct weft__op_stats_ask){ 1 }, 5);

	cr_assert_eq(weft__msg_open(buf, len, 5, &m), 0);
	cr_assert_eq(weft__msg_open(buf, len, 6, &m), -EALREADY, "the same message again");
	cr_assert_eq(weft__msg_open(buf, len, 4, &m), -EALREADY, "one from the future");
}

Test(proto, a_full_message_says_enospc_and_a_huge_op_emsgsize)
{
	static uint8_t data[WEFT_PROTO_MAX_MSG];
	struct weft__op_piece p = { 1, 0, sizeof(data), 0, { data, 30000 } };
	struct weft__msg_out o;
	struct weft__msg m;
	uint32_t len;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), 0);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), 0);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), -ENOSPC);
	len = weft__msg_end(&o, 0);
	cr_assert_leq(len, WEFT_PROTO_MAX_MSG);
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), 0);
	p.data.len = WEFT_PROTO_MAX_BYTES - 31;	/* with the piece's own 32 bytes: too big */
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), -EMSGSIZE);
	/* The most a lone piece can carry fits. */
	p.data.len = WEFT_PROTO_MAX_BYTES - 32;
	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_PUT, &p), 0);
	cr_assert_eq(weft__msg_end(&o, 0), WEFT_PROTO_MAX_MSG);
}

/* An op's bytes (header and fields) put together from PARTs cut at @cuts. */
static int feed(struct weft__parts *a, const uint8_t *op, uint32_t len, const uint32_t *cuts,
		unsigned ncuts, uint16_t *type, void *out)
{
	uint32_t at = 0;
	int ret = 0;

	for (unsigned i = 0; i <= ncuts && at < len; i++) {
		uint32_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
		struct weft__op_part part = { len, weft__pbytes_of(op + at, end - at) };

		cr_assert_eq(ret, 0, "an op was complete before its last PART");
		ret = weft__parts_add(a, &part, type, out);
		at = end;
	}
	return ret;
}

Test(proto, an_op_comes_together_from_its_parts)
{
	enum { N = 100000 };
	struct weft__pdep *deps = malloc(N * sizeof(*deps));
	uint8_t out[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	const struct weft__op_submit *got = (const void *)out;
	struct weft__op_submit op = { .key = 9, .fn = PB("sum"), .noutputs = 1,
				      .deps = { .n = N, .items = deps } };
	struct weft__parts a = { 0 };
	struct weft__plist_iter it;
	struct weft__pdep d;
	uint32_t cuts[] = { 1, 7, 8, 16000, 16001, 700000 };
	uint8_t *bytes;
	uint16_t type;
	uint32_t i;
	long len;

	cr_assert_not_null(deps);
	for (i = 0; i < N; i++)
		deps[i] = (struct weft__pdep){ 1000 + i, i % 5 };
	len = weft__op_size(WEFT_OP_SUBMIT, &op);
	cr_assert_gt(len, WEFT_PROTO_MAX_BYTES, "larger than any message");
	bytes = malloc((size_t)len);
	cr_assert_not_null(bytes);
	cr_assert_eq(weft__op_encode(WEFT_OP_SUBMIT, &op, bytes, (size_t)len), len);
	/* Cut anywhere, even inside the op's header: the same op comes out. */
	cr_assert_eq(feed(&a, bytes, (uint32_t)len, cuts, 6, &type, out), 1);
	cr_assert_eq(type, WEFT_OP_SUBMIT);
	cr_assert_eq(got->key, 9);
	cr_assert(pb_eq(got->fn, "sum"));
	cr_assert_eq(got->deps.n, N);
	weft__plist_iter_init(&it, &got->deps);
	for (i = 0; weft__plist_next(&it, &d); i++)
		cr_assert(d.key == 1000 + i && d.output == i % 5, "dep %u", i);
	cr_assert_eq(i, N);
	/* And the next op starts afresh, here in one PART. */
	cr_assert_eq(feed(&a, bytes, (uint32_t)len, NULL, 0, &type, out), 1);
	cr_assert_eq(got->deps.n, N);
	weft__parts_free(&a);
	free(bytes);
	free(deps);
}

Test(proto, parts_that_do_not_make_an_op_are_refused)
{
	uint8_t out[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	struct weft__op_future fut = { 5, 0, 0 };
	struct weft__op_part inner = { 30, PB("x") };
	struct weft__op_hello hello = { .role = WEFT_ROLE_CLIENT, .ctrl_addr = PB("c") };
	uint8_t op[256];
	struct weft__parts a = { 0 };
	long n = weft__op_encode(WEFT_OP_RELEASE, &fut, op, sizeof(op));
	uint32_t half[] = { (uint32_t)n / 2 };
	struct weft__op_part p1 = { (uint32_t)n, weft__pbytes_of(op, (size_t)n / 2) };
	struct weft__op_part p2 = p1;
	uint16_t type;

	/* Another total halfway, or more bytes than the total: refused, and forgotten. */
	p2.total = (uint32_t)n + 1;
	cr_assert_eq(weft__parts_add(&a, &p1, &type, out), 0);
	cr_assert_eq(weft__parts_add(&a, &p2, &type, out), -EBADMSG);
	cr_assert_eq(a.len, 0, "the assembler is empty again");
	cr_assert_eq(weft__parts_add(&a, &p1, &type, out), 0);
	p2 = (struct weft__op_part){ (uint32_t)n, weft__pbytes_of(op, (size_t)n) };
	cr_assert_eq(weft__parts_add(&a, &p2, &type, out), -EBADMSG);
	/* The op itself whole: taken. */
	cr_assert_eq(feed(&a, op, (uint32_t)n, half, 1, &type, out), 1);
	cr_assert_eq(type, WEFT_OP_RELEASE);
	/* A header whose length is not the rest of the op. */
	op[4]++;
	cr_assert_eq(feed(&a, op, (uint32_t)n, half, 1, &type, out), -EBADMSG);
	op[4]--;
	/* Fields out of the op's schema's bounds: flags no WANT has. */
	op[n - 4] = 0x7f;
	cr_assert_eq(feed(&a, op, (uint32_t)n, half, 1, &type, out), -EBADMSG);
	/* A PART in PARTs, a HELLO, an op of no known type. */
	n = weft__op_encode(WEFT_OP_PART, &inner, op, sizeof(op));
	cr_assert_eq(feed(&a, op, (uint32_t)n, NULL, 0, &type, out), -EBADMSG);
	n = weft__op_encode(WEFT_OP_HELLO, &hello, op, sizeof(op));
	cr_assert_eq(feed(&a, op, (uint32_t)n, NULL, 0, &type, out), -EBADMSG);
	op[0] = 0xff;
	cr_assert_eq(feed(&a, op, (uint32_t)n, NULL, 0, &type, out), -EBADMSG);
	weft__parts_free(&a);
}

Test(proto, a_part_takes_what_room_a_message_has)
{
	/* Its own 16 bytes (op header, total, length), then data, up to the op's end. */
	cr_assert_eq(weft__part_fits(100000, 0, 16000), 16000 - 16);
	cr_assert_eq(weft__part_fits(100000, 99990, 16000), 10);
	cr_assert_eq(weft__part_fits(100000, 0, 16), 0, "no room for a byte");
	cr_assert_eq(weft__part_fits(100000, 0, 17), 1);
	cr_assert_eq(weft__part_fits(100000, 100000, 16000), 0, "nothing left");
	/* A PART's own bounds: data within its total, the total within WEFT_PROTO_MAX_OP. */
	struct weft__op_part p = { 10, PB("0123456789a") };

	cr_assert_eq(weft__op_size(WEFT_OP_PART, &p), -EINVAL);
	p.total = WEFT_PROTO_MAX_OP + 1;
	cr_assert_eq(weft__op_size(WEFT_OP_PART, &p), -EINVAL);
	p.total = WEFT_PROTO_MAX_OP;
	cr_assert_gt(weft__op_size(WEFT_OP_PART, &p), 0);
}

Test(proto, random_damage_never_reads_out_of_bounds)
{
	struct weft__pinput inputs[4] = { { 1, 0, 2, 3 }, { 4, 5, 6, 7 } };
	struct weft__op_compute c = { 6, PB("add"), PB("l"), PB("xyz"), 2, 1, 1,
				      { .n = 4, .items = inputs } };
	uint8_t copy[WEFT_PROTO_MAX_MSG];
	uint32_t len = one_op(WEFT_OP_COMPUTE, &c, 0);
	struct weft__msg m;
	unsigned seed = 7, good = 0;

	memcpy(copy, buf, len);
	/* Under ASan a read out of bounds fails the run; each result is 0 or -EBADMSG. */
	for (int i = 0; i < 20000; i++) {
		uint8_t *msg = malloc(len);

		memcpy(msg, copy, len);
		for (int k = 0; k < 1 + i % 4; k++)
			msg[rand_r(&seed) % len] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		int ret = weft__msg_open(msg, len, 0, &m);

		cr_assert(ret == 0 || ret == -EBADMSG || ret == -EPROTO || ret == -EALREADY,
			  "ret %d", ret);
		good += !ret;
		free(msg);
	}
	cr_assert_lt(good, 20000, "damage is noticed");
}

Test(proto, schemas_are_sound)
{
	/* Each op has a schema whose fields lie inside its struct, and list items hold no list. */
	for (uint16_t t = 1; t < WEFT_OP_TYPES; t++) {
		const struct weft__schema *s = weft__op_schema(t);

		cr_assert(s, "op %u has a schema", t);
		cr_assert_leq(s->size, WEFT_OP_MAX_SIZE, "%s", s->name);
		for (unsigned i = 0; i < s->nfields; i++) {
			const struct weft__field *f = &s->fields[i];

			cr_assert_lt(f->off, s->size, "%s field %u", s->name, i);
			if (f->kind != PF_LIST)
				continue;
			for (unsigned k = 0; k < f->item->nfields; k++)
				cr_assert_neq(f->item->fields[k].kind, PF_LIST, "%s", s->name);
		}
	}
	cr_assert_null(weft__op_schema(0));
	cr_assert_null(weft__op_schema(WEFT_OP_TYPES));
}

Test(proto, pbytes_str_cuts_and_terminates)
{
	char s[4];

	weft__pbytes_str(s, sizeof(s), PB("abcdef"));
	cr_assert_str_eq(s, "abc");
	weft__pbytes_str(s, sizeof(s), PB(""));
	cr_assert_str_eq(s, "");
}

Test(proto, a_hello_of_another_version_still_says_where_to_answer)
{
	struct weft__op_hello h = { .role = WEFT_ROLE_CLIENT, .ctrl_addr = PB("addr-of-it") };
	struct weft__pbytes a;
	struct weft__msg_out o;
	struct weft__msg m;
	uint64_t conn;
	uint32_t len;

	h.conn = 0x1122334455667788ull;
	weft__msg_begin(&o, buf, WEFT_MSG_HELLO);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_HELLO, &h), 0);
	len = weft__msg_end(&o, 0);
	buf[4] = WEFT_PROTO_MAJOR + 1;
	cr_assert_eq(weft__msg_open(buf, len, 0, &m), -EPROTO);
	cr_assert_eq(weft__hello_addr(buf, len, &a, &conn), 0);
	cr_assert(pb_eq(a, "addr-of-it"));
	cr_assert_eq(conn, 0x1122334455667788ull);
	for (uint32_t n = 0; n < len - 1; n++)
		cr_assert(weft__hello_addr(buf, n, &a, &conn) == -EBADMSG ||
			  a.p + a.len + 8 <= buf + n, "prefix %u", n);
	buf[6] = WEFT_MSG_OPS;
	cr_assert_eq(weft__hello_addr(buf, len, &a, &conn), -EBADMSG, "not a HELLO");
}

/*
 * RECORD carries what a worker recorded: its lists come back whole; a bucket that
 * names no label of the RECORD, or a task that ends before it starts, is refused
 * as it is encoded and as it is read (a list forwarded as it came is read so).
 */
Test(proto, a_record_round_trips_and_its_lists_are_checked)
{
	struct weft__plabel labels[2] = { { PB("nap"), 20, 1, 4000 }, { PB("load"), 3, 0, 9 } };
	struct weft__pbucket buckets[2] = { { 0, 17, 12 }, { 1, 8, 3 } };
	struct weft__pevent events[1] = { { 1, PB("load"), 5000, 5300, 64, 3, 2 } };
	struct weft__ptransfer xfers[1] = { { 2, 1 << 20, 7000, 9000 } };
	struct weft__op_record r = {
		.mono_ns = 1, .real_ns = 2, .labels = { .n = 2, .items = labels },
		.buckets = { .n = 2, .items = buckets }, .events = { .n = 1, .items = events },
		.transfers = { .n = 1, .items = xfers }, .bytes_in = 5, .bytes_out = 6 };
	struct weft__op_record d, fwd;
	struct weft__plist_iter it;
	struct weft__pbucket b;
	struct weft__pevent e;
	struct weft__plabel l;
	struct weft__msg_out o;
	uint32_t len = one_op(WEFT_OP_RECORD, &r, 1);

	open_one(len, 1, WEFT_OP_RECORD, &d);
	cr_assert_eq(d.labels.n, 2);
	weft__plist_iter_init(&it, &d.labels);
	cr_assert(weft__plist_next(&it, &l));
	cr_assert(pb_eq(l.label, "nap") && l.count == 20 && l.failed == 1 && l.total_ns == 4000);
	weft__plist_iter_init(&it, &d.buckets);
	cr_assert(weft__plist_next(&it, &b) && weft__plist_next(&it, &b));
	cr_assert(b.label == 1 && b.bucket == 8 && b.count == 3);
	weft__plist_iter_init(&it, &d.events);
	cr_assert(weft__plist_next(&it, &e));
	cr_assert(pb_eq(e.label, "load") && e.end_ns == 5300 && e.weight == 3 && e.outcome == 2);
	cr_assert(d.bytes_in == 5 && d.bytes_out == 6 && d.transfers.n == 1);
	/* Checked as encoded. */
	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	buckets[1].label = 2;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_RECORD, &r), -EINVAL, "a bucket of no label");
	buckets[1].label = 1;
	events[0].end_ns = 4999;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_RECORD, &r), -EINVAL, "an end before its start");
	events[0].end_ns = 5300;
	buckets[0].bucket = WEFT_PROTO_HIST;
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_RECORD, &r), -EINVAL, "no such bucket");
	buckets[0].bucket = 17;
	/* As read: the decoded buckets forwarded with one label fewer. */
	len = one_op(WEFT_OP_RECORD, &r, 1);
	open_one(len, 1, WEFT_OP_RECORD, &d);
	fwd = d;
	fwd.labels.n = 1;
	fwd.labels.raw = NULL;
	fwd.labels.items = labels;
	weft__msg_begin(&o, buf + WEFT_PROTO_MAX_MSG / 2, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_RECORD, &fwd), -EINVAL);
}

Test(proto, a_view_is_its_bytes_or_a_refusal_never_both)
{
	struct weft__op_view v = { 5, -ENOMEM, PB("x") }, d;
	struct weft__msg_out o;
	uint32_t len;

	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_VIEW, &v), -EINVAL);
	v.data.len = 0;
	len = one_op(WEFT_OP_VIEW, &v, 1);
	open_one(len, 1, WEFT_OP_VIEW, &d);
	cr_assert(d.id == 5 && d.code == -ENOMEM && !d.data.len);
	cr_assert_eq(weft__msg_add(&o, WEFT_OP_VIEW_ASK, &(struct weft__op_view_ask){ 1, 3 }),
		     -EINVAL, "no such view");
}
