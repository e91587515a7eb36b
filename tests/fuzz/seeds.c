// SPDX-License-Identifier: MIT
/*
 * seeds - writes the fuzzers' seed corpus (tests/fuzz/corpus/): one good message
 * of each op for the message decoder, and each op's fields alone for its own
 * decoder. Run by hand when ops change (make fuzz-seeds); the output is committed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "proto.h"
#include "../../proto/internal.h"

#define PB(s) weft__pbytes_of(s, strlen(s))

static int write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

static int seed(const char *root, uint16_t type, const void *op, const char *tag)
{
	static uint8_t buf[WEFT_PROTO_MAX_MSG];
	uint8_t msg_type = type == WEFT_OP_HELLO ? WEFT_MSG_HELLO :
			   type == WEFT_OP_AUTH ? WEFT_MSG_AUTH : WEFT_MSG_OPS;
	struct weft__msg_out o;
	char dir[256], name[64];
	uint32_t len;

	weft__msg_begin(&o, buf, msg_type);
	if (weft__msg_add(&o, type, op)) {
		fprintf(stderr, "seeds: %s does not encode\n", weft__op_name(type));
		return -1;
	}
	len = weft__msg_end(&o, 3);
	snprintf(name, sizeof(name), "%s-%s", weft__op_name(type), tag);
	snprintf(dir, sizeof(dir), "%s/msg", root);
	if (write_file(dir, name, buf, len))
		return -1;
	snprintf(dir, sizeof(dir), "%s/op%u", root, type);
	return write_file(dir, name, buf + WEFT_PROTO_HDR + WEFT_PROTO_OP_HDR,
			  len - WEFT_PROTO_HDR - WEFT_PROTO_OP_HDR);
}

/* RECORD, VIEW_ASK, VIEW, WORKERS_ASK and WORKERS. */
static int seed_views(const char *root)
{
	struct weft__plabel labels[2] = { { PB("nap"), 20, 1, 4000000 }, { PB("load"), 3, 0, 900 } };
	struct weft__pbucket buckets[3] = { { 0, 17, 12 }, { 0, 18, 8 }, { 1, 8, 3 } };
	struct weft__pevent events[2] = {
		{ 0, PB("nap"), 1000, 201000, 0, 1, 1 }, { 1, PB("load"), 5000, 5300, 64, 3, 2 } };
	struct weft__ptransfer xfers[1] = { { 2, 1 << 20, 7000, 9000 } };
	struct weft__op_record rec = {
		.mono_ns = 123456789, .real_ns = 1765000000000000000ull,
		.labels = { .n = 2, .items = labels }, .buckets = { .n = 3, .items = buckets },
		.events = { .n = 2, .items = events }, .transfers = { .n = 1, .items = xfers },
		.bytes_in = 1 << 20, .bytes_out = 4096 };
	struct weft__pworker ws[2] = {
		{ PB("w0"), 2, 1 << 20, 1 << 28, 0, 0, 1, 1, 40, 0, 0, 1 << 20 },
		{ PB("w1"), 2, 2 << 20, 1 << 28, 4096, 4096, 0, 0, 38, 1, 1 << 20, 0 } };
	struct weft__op_workers wo = { 9, { .n = 2, .items = ws } };
	int bad = 0;

	bad |= seed(root, WEFT_OP_RECORD, &rec, "a");
	bad |= seed(root, WEFT_OP_VIEW_ASK, &(struct weft__op_view_ask){ 5, WEFT_VIEW_TRACE }, "a");
	bad |= seed(root, WEFT_OP_VIEW, &(struct weft__op_view){ 5, 0, PB("{\"traceEvents\":[]}") },
		    "a");
	bad |= seed(root, WEFT_OP_VIEW, &(struct weft__op_view){ 6, -ENOMEM }, "refused");
	bad |= seed(root, WEFT_OP_WORKERS_ASK, &(struct weft__op_stats_ask){ 9 }, "a");
	bad |= seed(root, WEFT_OP_WORKERS, &wo, "a");
	return bad;
}

/* A message of two PARTs that carry @submit, and one PART alone for its decoder. */
static int seed_parts(const char *root, const struct weft__op_submit *submit)
{
	static uint8_t op[256], buf[WEFT_PROTO_MAX_MSG];
	long n = weft__op_encode(WEFT_OP_SUBMIT, submit, op, sizeof(op));
	struct weft__op_part a, b;
	struct weft__msg_out o;
	char dir[256];
	uint32_t len;

	if (n < 2)
		return -1;
	a = (struct weft__op_part){ (uint32_t)n, weft__pbytes_of(op, (size_t)n / 2) };
	b = (struct weft__op_part){ (uint32_t)n, weft__pbytes_of(op + n / 2, (size_t)(n - n / 2)) };
	weft__msg_begin(&o, buf, WEFT_MSG_OPS);
	if (weft__msg_add(&o, WEFT_OP_PART, &a) || weft__msg_add(&o, WEFT_OP_PART, &b))
		return -1;
	len = weft__msg_end(&o, 3);
	snprintf(dir, sizeof(dir), "%s/msg", root);
	if (write_file(dir, "PART-submit", buf, len))
		return -1;
	return seed(root, WEFT_OP_PART, &a, "a");
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	struct weft__pdep deps[2] = { { 1, 0 }, { 2, 3 } };
	struct weft__pinput inputs[2] = { { 9, 0, 0, 16 }, { 10, 1, 4, 1 << 20 } };
	struct weft__pstat stats[2] = { { 1, 100 }, { 2, 7 } };
	struct weft__psize sizes[2] = { { 8 }, { 0 } };
	struct weft__op_hello hello = { WEFT_ROLE_WORKER, { 1, 2, 3 }, PB("ctrl"), 77,
					PB("data"), PB("w0"), 2, 1 << 30, PB("data2") };
	struct weft__op_auth auth = { { 9, 8, 7 } };
	struct weft__op_submit submit = { 7, PB("fib"), PB("fib-30"), PB(""), PB("\x1e"), 1,
					  0, 0, { .n = 2, .items = deps } };
	struct weft__op_piece piece = { 7, 0, 10, 4, PB("abcd") };
	struct weft__op_future fut = { 7, 0, WEFT_WANT_RESULT };
	struct weft__op_stats_ask ask = { 1 };
	struct weft__op_ended ended = { 7, WEFT_END_FAILED, -4097, PB("task 'fib' failed") };
	struct weft__op_stats st = { 1, { .n = 2, .items = stats } };
	struct weft__op_peer peer = { 2, WEFT_ROLE_WORKER, PB("w1"), PB("ctrl"), PB("data") };
	struct weft__op_compute comp = { 7, PB("add"), PB("x"), PB("12345678"), 2, 1, 3,
					 { .n = 2, .items = inputs } };
	struct weft__op_send_result sr = { 7, 0, 3, 99 };
	struct weft__op_stolen stolen = { 7, 1 };
	struct weft__op_done done = { 7, WEFT_END_DONE, 0, PB(""), 1500,
				      { .n = 2, .items = sizes } };
	struct weft__op_heartbeat hb = { 1 << 20, 1 << 30, 0, 0, 3, 2, 1000, 0, 0, 600 << 20,
					   800 << 20, 0 };
	struct weft__op_lease_ask la = { 5, 7, 0 };
	struct weft__op_lease lease = { 5, 0, 0, 11, 0xfeed, 4096, 1 << 20, PB("") };
	struct weft__op_lease inl = { 6, 0, 0, 0, 0, 0, 3, PB("abc") };
	struct weft__op_unlease ul = { 11 };
	int bad = 0;

	mkdir(root, 0755);
	bad |= seed(root, WEFT_OP_HELLO, &hello, "a");
	bad |= seed(root, WEFT_OP_AUTH, &auth, "a");
	bad |= seed(root, WEFT_OP_SUBMIT, &submit, "a");
	bad |= seed(root, WEFT_OP_SCATTER, &piece, "a");
	bad |= seed(root, WEFT_OP_WANT, &fut, "a");
	bad |= seed(root, WEFT_OP_RELEASE, &fut, "a");
	bad |= seed(root, WEFT_OP_CANCEL, &fut, "a");
	bad |= seed(root, WEFT_OP_STATS_ASK, &ask, "a");
	bad |= seed(root, WEFT_OP_ENDED, &ended, "a");
	bad |= seed(root, WEFT_OP_STATS, &st, "a");
	bad |= seed(root, WEFT_OP_PEER, &peer, "a");
	bad |= seed(root, WEFT_OP_COMPUTE, &comp, "a");
	bad |= seed(root, WEFT_OP_PUT, &piece, "a");
	bad |= seed(root, WEFT_OP_FREE, &fut, "a");
	bad |= seed(root, WEFT_OP_SEND_RESULT, &sr, "a");
	bad |= seed(root, WEFT_OP_STEAL, &fut, "a");
	bad |= seed(root, WEFT_OP_DONE, &done, "a");
	bad |= seed(root, WEFT_OP_STOLEN, &stolen, "a");
	bad |= seed(root, WEFT_OP_HEARTBEAT, &hb, "a");
	bad |= seed(root, WEFT_OP_LEASE_ASK, &la, "a");
	bad |= seed(root, WEFT_OP_LEASE, &lease, "a");
	bad |= seed(root, WEFT_OP_LEASE, &inl, "inline");
	bad |= seed(root, WEFT_OP_UNLEASE, &ul, "a");
	bad |= seed(root, WEFT_OP_RESULT, &piece, "a");
	bad |= seed(root, WEFT_OP_PING, &(struct weft__op_ping){ 12345 }, "a");
	bad |= seed(root, WEFT_OP_CANCELLED, &(struct weft__op_cancelled){ 7, -EBUSY }, "a");
	bad |= seed_parts(root, &submit);
	bad |= seed(root, WEFT_OP_GONE, &(struct weft__op_gone){ 3 }, "a");
	bad |= seed_views(root);
	return bad ? 1 : 0;
}
