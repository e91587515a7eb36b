/* SPDX-License-Identifier: MIT */
/*
 * fabric.h - a process's endpoints on the fabric: fabric/'s contract with the
 * scheduler, the worker and the client (the only users of libfabric are here).
 *
 * One fabric thread per process owns every endpoint: task threads never touch
 * them. It handshakes with peers (HELLO, then AUTH: the token's proof), decodes
 * their messages and calls back for each op, batches the ops the process sends
 * (a message per peer, flushed when full or when the thread finds nothing more to
 * do), serves and issues RMA reads, and sleeps in epoll when idle: it spins a few
 * tens of microseconds after its last work, then blocks.
 *
 * Addresses are URLs: tcp://HOST:PORT (control and data on tcp;ofi_rxm),
 * shm://HOST:PORT (control on tcp at that address, data on the shm provider, for
 * processes of one machine), verbs://HOST:PORT (verbs;ofi_rxm). Port 0 picks one.
 *
 * Every call but weft__fab_start, weft__fab_stop, weft__fab_url and weft__fab_call
 * is made on the fabric thread (in a callback, or in a function run by
 * weft__fab_call).
 */
#ifndef WEFT_FABRIC_H
#define WEFT_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proto.h"

#define WEFT_FAB_URL_MAX 128
/*
 * Bytes of a message this process sends, at most (it takes up to
 * WEFT_PROTO_MAX_MSG). Under rxm's eager limit (16 KiB): rxm 1.17 sends larger
 * messages in segments, gives no source for them and was seen to lose one behind
 * later messages. An op must fit: an argument, a piece of a result.
 */
#define WEFT_FAB_MSG_MAX 16000

struct weft__fabric;
struct weft__peer;

struct weft__fab_cbs {
	/*
	 * A peer proved the token; @h is its HELLO (views valid during the call).
	 * Return 0 to keep it, or a negative errno to drop it (it gets a BYE).
	 */
	int (*ready)(void *arg, struct weft__peer *p, const struct weft__op_hello *h);
	/* An op from a ready peer (views valid during the call). */
	void (*op)(void *arg, struct weft__peer *p, uint16_t type, const void *op);
	/*
	 * A peer is gone: it said BYE (0), a send to it failed, it broke the protocol
	 * (-EBADMSG), proved no token (-EACCES), speaks another major version
	 * (-EPROTO), or was dropped. It runs for every peer, ready or not (the app's
	 * pointer is NULL for one it never set), and the peer is freed after it.
	 */
	void (*gone)(void *arg, struct weft__peer *p, int why);
	/* Every tick_ms on the fabric thread, with the monotonic clock; may be NULL. */
	void (*tick)(void *arg, int64_t now_ns);
};

struct weft__fab_config {
	/* Where to listen: a URL, or NULL for an address on the interface toward @near. */
	const char *url;
	const char *near;		/* a URL whose scheme and route choose ours */
	uint8_t role;			/* enum weft__role */
	const char *name;		/* told in HELLO */
	uint32_t nthreads;
	uint64_t memory_limit;
	const struct weft__auth_key *key;
	const struct weft__fab_cbs *cbs;
	void *arg;
	unsigned tick_ms;		/* 0: no ticks */
};

/*
 * Open the endpoints and start the fabric thread. Return: 0, -EINVAL for a URL
 * that is not one, -ENODEV when the provider is not there, -EADDRINUSE, or another
 * negative errno; a log line says which.
 */
int weft__fab_start(const struct weft__fab_config *cfg, struct weft__fabric **out);
/* Say BYE to every ready peer, stop the thread, close everything. */
void weft__fab_stop(struct weft__fabric *f);
/* The URL peers reach this process at (its port resolved). */
const char *weft__fab_url(const struct weft__fabric *f);

/* ---- peers (fabric thread) ---- */

/* Start a handshake with the process at @url. The peer is ready at cbs->ready. */
int weft__fab_connect(struct weft__fabric *f, const char *url, struct weft__peer **out);
/* The same, with the addresses a PEER op gave (@data may be empty). */
int weft__fab_connect_addr(struct weft__fabric *f, struct weft__pbytes ctrl,
			   struct weft__pbytes data, struct weft__peer **out);
/*
 * Queue an op for @p; it leaves with the next flush (a full message, or when the
 * thread runs out of work). Ops for a peer not yet ready wait for it. Return: 0,
 * or -EINVAL (an op out of bounds), -EMSGSIZE (too big for any message), -ENOMEM.
 */
int weft__fab_send(struct weft__fabric *f, struct weft__peer *p, uint16_t type,
		   const void *op);
/* The same with an op encoded by weft__op_encode (on another thread, say). */
int weft__fab_send_raw(struct weft__fabric *f, struct weft__peer *p, const uint8_t *op,
		       size_t len);
/* Say BYE to @p and forget it (cbs->gone runs with @why). */
void weft__fab_drop(struct weft__fabric *f, struct weft__peer *p, int why);
/* The app's pointer for a peer, and its addresses as HELLO told them. */
void weft__peer_set(struct weft__peer *p, void *app);
void *weft__peer_get(const struct weft__peer *p);
struct weft__pbytes weft__peer_ctrl_addr(const struct weft__peer *p);
struct weft__pbytes weft__peer_data_addr(const struct weft__peer *p);
bool weft__peer_ready(const struct weft__peer *p);
/* "tcp://127.0.0.1:4000" or the like, for log lines: in @buf of @len bytes. */
const char *weft__peer_name(const struct weft__peer *p, char *buf, size_t len);

/*
 * Watching a peer that should never be quiet for long (the scheduler pings every
 * worker and client every 250 ms): a peer's host cut off or powered down ends no
 * connection, and nothing else would tell. Zeroed to start; on the fabric thread.
 */
struct weft__fab_watch {
	uint64_t rx;			/* messages from the peer when last looked */
	int64_t since;			/* when that count last moved */
};

/* At @now (ns, monotonic): whether @p has sent nothing for more than @quiet_ns. */
bool weft__fab_silent(struct weft__fab_watch *w, const struct weft__peer *p, int64_t now,
		      int64_t quiet_ns);

/* ---- calls from other threads ---- */

/* A function to run on the fabric thread; embed it in what it works on. */
struct weft__fab_call {
	struct weft__fab_call *next;
	void (*fn)(struct weft__fabric *f, struct weft__fab_call *c);
};

/* Run c->fn on the fabric thread, in the order calls were made. Any thread. */
void weft__fab_call(struct weft__fabric *f, struct weft__fab_call *c);

/* ---- RMA (fabric thread) ---- */

struct weft__fab_mr;

/*
 * Make @len bytes at @buf readable by peers: @rkey and @addr are what a reader
 * passes to its read (a random key; the address as the provider wants it).
 */
int weft__fab_reg(struct weft__fabric *f, void *buf, size_t len, struct weft__fab_mr **mr,
		  uint64_t *rkey, uint64_t *addr);
void weft__fab_unreg(struct weft__fabric *f, struct weft__fab_mr *mr);

/* An RMA read of a peer's registered bytes; the caller owns it until done runs. */
struct weft__fab_read {
	struct weft__peer *peer;
	void *dst;
	size_t len;
	uint64_t rkey, addr;
	/* On the fabric thread when every byte has come, or with a negative errno. */
	void (*done)(struct weft__fab_read *r, int err);
	/* The fabric's own from here. */
	size_t posted, completed;
	int err;
	struct weft__fab_read *next;
};

/* Start @r. The data endpoint is reopened after a read fails (it may be poisoned). */
int weft__fab_read(struct weft__fabric *f, struct weft__fab_read *r);
/*
 * Leases open on this process's memory (@delta), for @reader (NULL: unknown; only
 * an opening's is looked at): while there are any, the fabric thread polls the data
 * endpoint rather than sleeping (the provider serves reads of us in its progress
 * calls). On shm, where readers copy by themselves, only for a while after a
 * reader's first lease, for its first contact; then it looks every few ms.
 */
void weft__fab_hold(struct weft__fabric *f, struct weft__peer *reader, int delta);

#ifdef WEFT_TESTING
/* Test hook: the next read of @r uses a wrong key, as a broken peer would. */
void weft__fab_read_poison(struct weft__fabric *f);
/* Test hook: the second reader's next chunk (shm) reads an address nobody has. */
void weft__fab_read_poison_second(struct weft__fabric *f);
/* Chunks given to the second reader so far. */
unsigned weft__fab_second_chunks(const struct weft__fabric *f);
/* Times the data endpoint was reopened. */
unsigned weft__fab_reopens(const struct weft__fabric *f);
/*
 * This fabric plays a process of protocol version @major.@minor (0: its own): its
 * HELLOs claim it, and every message it is sent counts as of another version.
 */
void weft__fab_test_version(struct weft__fabric *f, uint8_t major, uint8_t minor);
#endif

#endif /* WEFT_FABRIC_H */
