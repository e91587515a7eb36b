/* SPDX-License-Identifier: MIT */
/*
 * proto.h - weft's wire protocol: the contract between the processes of a cluster
 * (client, scheduler, workers) and between proto/ and the folders that speak it
 * (fabric/, sched/, worker/, the client).
 *
 * A message is one fabric send of at most WEFT_PROTO_MAX_MSG bytes, little-endian:
 *
 *	header	magic u32, major u8, minor u8, type u8, flags u8, length u32 (the
 *		whole message), nops u16, reserved u16 (0), seq u64, conn u64
 *	ops	nops times: type u16, reserved u16 (0), length u32, then length
 *		bytes of fields, as the op's schema lays them out
 *
 * Fields are fixed-size integers, byte strings and text (a u32 length, then the
 * bytes; text holds no NUL), and lists (a u32 count, then the items, each laid out
 * by the item's schema). Every length, count and value is checked against the
 * schema's bounds before use, and a message must be used up exactly: a decoder
 * never reads past what it was given and refuses what it does not understand.
 * Decoded byte strings, text and lists are views into the message.
 *
 * The first message each way is a HELLO, then AUTH (the proof of the cluster
 * token, auth.c); only then OPS. seq counts a peer's messages from 0, so a message
 * replayed, lost or reordered on a connection is refused. conn is the value the
 * receiver asked for in its HELLO (0 in a first HELLO): the receiver knows the
 * sender by it, whatever the fabric says of where a message came from.
 *
 * Versions: a minor version adds ops or appends fields to an op, which a decoder of
 * an older one refuses (a message must be used up exactly), so every process of a
 * cluster speaks the same major.minor: a message of another is told apart
 * (-EPROTO, with both versions in the log), its sender refused with a BYE, and a
 * connecting process told so gives up with -EPROTO. A peer ignores op types it does
 * not know only if their flags say it may (never, in version 1).
 */
#ifndef WEFT_PROTO_H
#define WEFT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_PROTO_MAGIC	0x54464557u	/* "WEFT" */
#define WEFT_PROTO_MAJOR	1
#define WEFT_PROTO_MINOR	2
#define WEFT_PROTO_MAX_MSG	((64u << 10) - 1)	/* bytes of a message: under 64 KiB */
/*
 * The scheduler takes a worker or client that sent nothing for 5 s for dead; one
 * that heard nothing from the scheduler (which pings each every 250 ms) for this
 * long takes it for gone.
 */
#define WEFT_PROTO_SILENT_NS	(10ll * 1000 * 1000 * 1000)
#define WEFT_PROTO_HDR		32		/* bytes of the message header */
#define WEFT_PROTO_OP_HDR	8		/* bytes of an op's header */
#define WEFT_PROTO_MAX_NAME	255		/* bytes of a function, worker or label name */
#define WEFT_PROTO_MAX_TEXT	4096		/* bytes of an error message */
#define WEFT_PROTO_MAX_OUTPUTS	65535		/* outputs of one task */
#define WEFT_PROTO_MAX_ADDR	256		/* bytes of a fabric address */
/* Bytes that fit in one op of a message that holds nothing else. */
#define WEFT_PROTO_MAX_BYTES	(WEFT_PROTO_MAX_MSG - WEFT_PROTO_HDR - WEFT_PROTO_OP_HDR)
/*
 * A task's argument and dependencies may outgrow a message: such an op travels in
 * PARTs. An argument is at most weft.h's WEFT_MAX_ARG, a task has at most
 * WEFT_PROTO_MAX_DEPS inputs, and an op sent in PARTs takes at most
 * WEFT_PROTO_MAX_OP bytes (header and fields).
 */
#define WEFT_PROTO_MAX_ARG	(1u << 30)
#define WEFT_PROTO_MAX_DEPS	(1u << 24)
#define WEFT_PROTO_MAX_OP	(1280u << 20)

enum weft__msg_type {
	WEFT_MSG_HELLO = 1,		/* one OP_HELLO */
	WEFT_MSG_AUTH,			/* one OP_AUTH */
	WEFT_MSG_OPS,			/* any ops but HELLO and AUTH */
	WEFT_MSG_BYE,			/* no ops: the peer goes away on purpose */
	WEFT_MSG_TYPES
};

/* Roles, in HELLO: who is speaking. */
enum weft__role { WEFT_ROLE_CLIENT = 1, WEFT_ROLE_WORKER, WEFT_ROLE_SCHEDULER };

/* A task's end, as the scheduler and workers tell it. */
enum weft__end { WEFT_END_DONE = 1, WEFT_END_FAILED, WEFT_END_CANCELLED };

enum weft__op_type {
	/* handshake */
	WEFT_OP_HELLO = 1,
	WEFT_OP_AUTH,
	/* client -> scheduler */
	WEFT_OP_SUBMIT,
	WEFT_OP_SCATTER,		/* a piece of a scattered result's bytes */
	WEFT_OP_WANT,			/* tell me when a task ends; send its result */
	WEFT_OP_RELEASE,
	WEFT_OP_CANCEL,
	WEFT_OP_STATS_ASK,		/* and scheduler -> worker: a HEARTBEAT now */
	/* scheduler -> client */
	WEFT_OP_ENDED,			/* a task the client wants has ended */
	WEFT_OP_STATS,
	/* scheduler -> worker */
	WEFT_OP_PEER,			/* where another process can be reached */
	WEFT_OP_COMPUTE,
	WEFT_OP_PUT,			/* a piece of a scattered result, to keep */
	WEFT_OP_FREE,
	WEFT_OP_SEND_RESULT,		/* send a result to a client */
	WEFT_OP_STEAL,			/* give a queued task back, if not started */
	/* worker -> scheduler */
	WEFT_OP_DONE,
	WEFT_OP_STOLEN,			/* the answer to STEAL */
	WEFT_OP_HEARTBEAT,
	/* between any two: results */
	WEFT_OP_LEASE_ASK,		/* pin a result for an RMA read of it */
	WEFT_OP_LEASE,			/* the answer: where to read, or the bytes inline */
	WEFT_OP_UNLEASE,		/* the read is over */
	WEFT_OP_RESULT,			/* a piece of a result's bytes, inline */
	WEFT_OP_PING,			/* I am alive: clients to the scheduler, and it to
					 * every worker and client every 250 ms */
	WEFT_OP_CANCELLED,		/* scheduler -> client: the answer to CANCEL */
	/* any direction */
	WEFT_OP_PART,			/* a piece of an op too large for one message */
	/* scheduler -> worker */
	WEFT_OP_GONE,			/* a process left the cluster */
	/* worker -> scheduler */
	WEFT_OP_RECORD,			/* what the worker recorded since the last */
	/* client -> scheduler, and the answers */
	WEFT_OP_VIEW_ASK,		/* a view of the cluster: a report, a trace */
	WEFT_OP_VIEW,			/* its bytes */
	WEFT_OP_WORKERS_ASK,		/* the workers and their figures */
	WEFT_OP_WORKERS,
	WEFT_OP_TYPES
};

/* ---- views and lists ---- */

/* Bytes or text of a decoded message (not NUL-terminated), or to encode. */
struct weft__pbytes {
	const uint8_t *p;
	uint32_t len;
};

struct weft__schema;

/*
 * A list field. Decoded: @raw points at the first item in the message, and items
 * are read one by one with weft__plist_next(). To encode: @items is an array of @n
 * item structs, laid out by the item schema; or, with @items NULL, a decoded list's
 * @raw bytes, forwarded as they came.
 */
struct weft__plist {
	uint32_t n;
	const void *items;		/* to encode */
	const uint8_t *raw;		/* decoded */
	uint32_t len;			/* decoded: bytes of all the items */
	const struct weft__schema *item;
};

/* Reading a decoded list's items in order. */
struct weft__plist_iter {
	const struct weft__plist *l;
	uint32_t at, i;
};

/* ---- ops: one struct each, with its schema in ops.c ---- */

/*
 * The first fields of HELLO (role, nonce, ctrl_addr, conn) keep their place in
 * every version, so that a peer of another major version can still be answered
 * with a BYE that names this one's.
 */
struct weft__op_hello {
	uint8_t role;			/* enum weft__role */
	uint8_t nonce[32];		/* fresh for this connection, for AUTH */
	struct weft__pbytes ctrl_addr;	/* where to answer: its control endpoint */
	uint64_t conn;			/* put this in the messages you send me */
	struct weft__pbytes data_addr;	/* its data endpoint's fabric address */
	struct weft__pbytes name;	/* a worker's name; the others' any */
	uint32_t nthreads;		/* a worker's */
	uint64_t memory_limit;		/* a worker's, bytes */
	/*
	 * shm: a second endpoint serving reads of it, for the reader's second thread
	 * (a reader's copy holds the served endpoint's lock); empty when none. Since 1.2.
	 */
	struct weft__pbytes data_addr2;
};

struct weft__op_auth {
	uint8_t mac[32];
};

/* A task's dependency: an output of a task. */
struct weft__pdep {
	uint64_t key;
	uint32_t output;
};

struct weft__op_submit {
	uint64_t key;			/* chosen by the client, unique in its session */
	struct weft__pbytes fn;		/* the function's registered name */
	struct weft__pbytes label;
	struct weft__pbytes worker;	/* run only on the worker of this name; "": any */
	struct weft__pbytes arg;
	uint32_t noutputs;
	int32_t priority;
	uint32_t retries;
	struct weft__plist deps;	/* of struct weft__pdep */
};

/* A piece of a result's bytes: scatter, put and result use it. */
struct weft__op_piece {
	uint64_t key;
	uint32_t output;
	uint64_t total;			/* bytes of the whole result */
	uint64_t offset;		/* of this piece */
	struct weft__pbytes data;
};

/* A future: want, release, cancel, free and the like name one. */
struct weft__op_future {
	uint64_t key;
	uint32_t output;
	uint32_t flags;			/* WANT: WEFT_WANT_* */
};
#define WEFT_WANT_RESULT 0x1		/* send the bytes, not only the end */

struct weft__op_stats_ask {
	uint64_t id;
};

struct weft__op_ended {
	uint64_t key;
	uint8_t end;			/* enum weft__end */
	int32_t code;			/* 0 or the failure's, as weft_future_error gives */
	struct weft__pbytes message;
};

/* A statistic by number: the scheduler's answer to STATS_ASK. */
struct weft__pstat {
	uint32_t field;
	uint64_t value;
};

struct weft__op_stats {
	uint64_t id;
	struct weft__plist values;	/* of struct weft__pstat */
};

struct weft__op_peer {
	uint32_t id;			/* the scheduler's id of the process */
	uint8_t role;
	struct weft__pbytes name;
	struct weft__pbytes ctrl_addr;	/* fabric addresses */
	struct weft__pbytes data_addr;
};

/* An input of a task sent to a worker: where its bytes are. */
struct weft__pinput {
	uint64_t key;
	uint32_t output;
	uint32_t holder;		/* the peer id of a worker that has it; 0: here */
	uint64_t len;
};

struct weft__op_compute {
	uint64_t key;
	struct weft__pbytes fn;
	struct weft__pbytes label;
	struct weft__pbytes arg;
	uint32_t noutputs;
	int32_t priority;
	uint32_t retries;
	struct weft__plist inputs;	/* of struct weft__pinput */
	uint32_t client;		/* tell this client the end directly; 0: none */
	uint64_t ckey;			/* its key of the task */
};

/* A process left the cluster: drop the connection to it, and what it held open. */
struct weft__op_gone {
	uint32_t id;			/* the scheduler's id of it, as PEER gave */
};

struct weft__op_send_result {
	uint64_t key;
	uint32_t output;
	uint32_t client;		/* peer id of the client */
	uint64_t ckey;			/* the client's key of the task */
};

struct weft__op_stolen {
	uint64_t key;
	uint8_t ok;			/* 1: given back unstarted; 0: too late */
};

struct weft__op_cancelled {
	uint64_t key;
	int32_t code;			/* 0: cancelled; -EBUSY: it started; -EALREADY */
};

struct weft__op_done {
	uint64_t key;
	uint8_t end;			/* enum weft__end */
	int32_t code;
	struct weft__pbytes message;
	uint64_t run_ns;
	struct weft__plist sizes;	/* of struct weft__psize: each output's bytes */
	uint8_t told;			/* 1: the worker sent the client its ENDED */
};

struct weft__psize {
	uint64_t len;
};

struct weft__op_heartbeat {
	uint64_t mem_used, mem_limit;
	uint64_t spilled, restored;
	uint32_t queued, running;
	uint64_t tasks_run;
	uint8_t paused;
	uint64_t ask;			/* the STATS_ASK it answers; 0: the periodic one */
	uint64_t mem_target, mem_pause;	/* its thresholds, bytes (1.1) */
	uint8_t spill_blocked;		/* its last spill failed (1.1) */
};

struct weft__op_lease_ask {
	uint64_t req;			/* the asker's, echoed in LEASE */
	uint64_t key;
	uint32_t output;
};

struct weft__op_lease {
	uint64_t req;			/* the asker's; to a client sent a result: its key */
	uint32_t output;
	int32_t status;			/* 0, or why not (-ENOENT: not here) */
	uint64_t lease;			/* to give back in UNLEASE; 0: inline, none */
	uint64_t rkey, addr, len;	/* where to fi_read the bytes */
	struct weft__pbytes data;	/* or the bytes themselves, when small */
};

struct weft__op_unlease {
	uint64_t lease;
};

struct weft__op_ping {
	uint64_t now;			/* the sender's clock, ns: for nothing but logs */
};

/*
 * A piece of an op too large for one message: the op's bytes as weft__op_encode
 * lays them out (its header, then its fields), in order. The next PART from the
 * same peer goes on where this one ends; the op takes effect when its last byte
 * has come, as if it had come whole. Any op of an OPS message may travel so, but
 * a PART.
 */
struct weft__op_part {
	uint32_t total;			/* bytes of the whole op */
	struct weft__pbytes data;	/* the next of them */
};

/*
 * What a worker recorded (the engine's events.h) since its last RECORD, sent with
 * its heartbeat: its labels' figures that changed (whole, not deltas), their
 * run-time histograms' buckets that are not empty, the latest recorded tasks and
 * the reads of inputs from other workers. Times are the worker's monotonic clock;
 * @mono_ns and @real_ns, read together as it sent this, put them on the wall clock.
 */
struct weft__op_record {
	uint64_t mono_ns, real_ns;
	struct weft__plist labels;	/* of struct weft__plabel */
	struct weft__plist buckets;	/* of struct weft__pbucket */
	struct weft__plist events;	/* of struct weft__pevent, oldest first */
	struct weft__plist transfers;	/* of struct weft__ptransfer */
	uint64_t bytes_in, bytes_out;	/* inputs read from others, results read by
					 * them: totals so far */
};
#define WEFT_PROTO_HIST 48		/* run-time buckets: [2^i, 2^(i+1)) ns */
#define WEFT_PROTO_MAX_EVENTS 8192	/* tasks a RECORD carries at most */

struct weft__plabel {
	struct weft__pbytes label;
	uint64_t count, failed, total_ns;
};

struct weft__pbucket {
	uint32_t label;			/* its index in the RECORD's labels */
	uint32_t bucket;		/* < WEFT_PROTO_HIST */
	uint64_t count;
};

struct weft__pevent {
	uint32_t thread;
	struct weft__pbytes label;
	uint64_t start_ns, end_ns, bytes;
	uint32_t weight;
	uint8_t outcome;		/* 1 done, 2 failed, 3 cancelled */
};

/* An input read from another worker. */
struct weft__ptransfer {
	uint32_t from;			/* the scheduler's id of the holder */
	uint64_t bytes, start_ns, end_ns;
};

/* A view of the cluster, as weft_report and weft_trace write it. */
enum weft__view_kind { WEFT_VIEW_REPORT = 1, WEFT_VIEW_TRACE };

struct weft__op_view_ask {
	uint64_t id;			/* echoed in VIEW */
	uint8_t kind;			/* enum weft__view_kind */
};

struct weft__op_view {
	uint64_t id;
	int32_t code;			/* 0, or a negative errno and no bytes */
	struct weft__pbytes data;	/* the file's bytes, whole (in PARTs) */
};
#define WEFT_PROTO_MAX_VIEW (256u << 20)

/* A worker as WORKERS lists it. */
struct weft__pworker {
	struct weft__pbytes name;
	uint32_t nthreads;
	uint64_t mem_used, mem_limit, spilled, restored;
	uint32_t queued, running;
	uint64_t tasks_run;
	uint8_t paused;
	uint64_t bytes_in, bytes_out;	/* of inputs read from others, and by them */
};

struct weft__op_workers {
	uint64_t id;			/* the WORKERS_ASK's (a STATS_ASK struct) */
	struct weft__plist workers;	/* of struct weft__pworker */
};

/* ---- messages ---- */

/* A decoded header. */
struct weft__msg {
	uint8_t major, minor, type, flags;
	uint32_t length;
	uint16_t nops;
	uint64_t seq;
	uint64_t conn;
	const uint8_t *ops;		/* the ops' bytes */
	uint32_t ops_len;
};

/* Reading a message's ops in order. */
struct weft__op_iter {
	const struct weft__msg *m;
	uint32_t at;
	uint16_t i;
};

/* A message being built in a buffer of WEFT_PROTO_MAX_MSG bytes. */
struct weft__msg_out {
	uint8_t *buf;
	uint32_t len;
	uint16_t nops;
	uint8_t type;
	uint32_t cap;			/* bytes it may grow to: WEFT_PROTO_MAX_MSG unless set */
	uint64_t conn;			/* the header's conn: 0 unless set */
};

/*
 * Check a received message of @len bytes: the header, its major version, its
 * length, its sequence number (@seq: the next one expected from this peer) and the
 * op headers. Return: 0, or -EBADMSG (malformed), -EPROTO (another major version),
 * -EALREADY (a replayed or reordered seq).
 */
int weft__msg_open(const void *buf, size_t len, uint64_t seq, struct weft__msg *m);
void weft__op_iter_init(struct weft__op_iter *it, const struct weft__msg *m);
/*
 * The next op: its type and fields decoded into @out (the op's struct, of at
 * least WEFT_OP_MAX_SIZE bytes when the type is not known ahead). Return: 1, 0 at
 * the end, or -EBADMSG for an op whose fields do not fit its schema, or whose type
 * is not allowed in this message type.
 */
int weft__op_next(struct weft__op_iter *it, uint16_t *type, void *out);
/* Decode one op's fields (@len bytes at @p) by the schema of @type. 0 or -EBADMSG. */
int weft__op_decode(uint16_t type, const uint8_t *p, size_t len, void *out);

/* Start a message of @type in @buf (WEFT_PROTO_MAX_MSG bytes). */
void weft__msg_begin(struct weft__msg_out *o, void *buf, uint8_t type);
/*
 * Append an op, laid out from its struct @op. Return: 0, -ENOSPC when the message
 * has no room for it (send this one and start another), -EMSGSIZE when no message
 * could hold it, -EINVAL for a field out of its bounds.
 */
int weft__msg_add(struct weft__msg_out *o, uint16_t type, const void *op);
/*
 * An op laid out ahead (header and fields) into @buf of weft__op_size() bytes, for
 * another thread to append with weft__msg_add_raw. Return: its length, or as
 * weft__op_size().
 */
long weft__op_encode(uint16_t type, const void *op, uint8_t *buf, size_t cap);
/* Append an op encoded by weft__op_encode. 0, -ENOSPC, -EMSGSIZE, -EINVAL. */
int weft__msg_add_raw(struct weft__msg_out *o, const uint8_t *op, size_t len);
/* Finish the header with @seq. Return: the message's length. */
uint32_t weft__msg_end(struct weft__msg_out *o, uint64_t seq);
/*
 * Where and how to answer a HELLO message of any version (@len bytes, header
 * included): its ctrl_addr and conn, read with every bound checked. 0 or -EBADMSG.
 */
int weft__hello_addr(const void *buf, size_t len, struct weft__pbytes *addr, uint64_t *conn);
/* Bytes an op takes in a message, or -EINVAL. */
long weft__op_size(uint16_t type, const void *op);

/* The next item of a decoded list into @out (the item's struct). true, false at the end. */
bool weft__plist_next(struct weft__plist_iter *it, void *out);
static inline void weft__plist_iter_init(struct weft__plist_iter *it, const struct weft__plist *l)
{
	it->l = l;
	it->at = 0;
	it->i = 0;
}

/* A name or text as a C string in @dst of @cap bytes (cut if longer). */
void weft__pbytes_str(char *dst, size_t cap, struct weft__pbytes b);
static inline struct weft__pbytes weft__pbytes_of(const void *p, size_t len)
{
	return (struct weft__pbytes){ (const uint8_t *)p, (uint32_t)len };
}

/* The op's name, for logs ("SUBMIT"), or NULL for a type not known. */
const char *weft__op_name(uint16_t type);
/* Whether an op of @type may travel in a message of @msg_type. */
bool weft__op_allowed(uint8_t msg_type, uint16_t type);

/* ---- ops in PARTs ---- */

/* One peer's op arriving in PARTs: zeroed to begin with, weft__parts_free at the end. */
struct weft__parts {
	uint8_t *buf;			/* grows as bytes come, never past the op's total */
	uint32_t len, cap, total;
};

/*
 * Add a decoded PART. Return: 1 when it completes the op, whose type and fields
 * are decoded into @out (WEFT_OP_MAX_SIZE bytes; its views live until the next
 * call), 0 while more are to come, -EBADMSG for a PART that does not go on from
 * the last one (another total, bytes beyond it) or completes an op that is not
 * one a PART carries or does not decode, -ENOMEM. After an error the assembler is
 * empty again.
 */
int weft__parts_add(struct weft__parts *a, const struct weft__op_part *part, uint16_t *type,
		    void *out);
void weft__parts_free(struct weft__parts *a);
/*
 * Bytes of data the PART that starts at byte @at of an op of @total bytes carries
 * when it goes into a message with @room bytes left: its share of the op, or 0
 * when not even the PART's own fields fit.
 */
uint32_t weft__part_fits(uint32_t total, uint32_t at, uint32_t room);

/* The size of the largest op struct: room for any op weft__op_next decodes. */
#define WEFT_OP_MAX_SIZE 256

#endif /* WEFT_PROTO_H */
