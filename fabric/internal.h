/* SPDX-License-Identifier: MIT */
/*
 * internal.h - fabric/'s own: the process's endpoints (ep.c), its peers and their
 * handshake (peer.c), messages in and out (msg.c), RMA (rma.c) and the fabric
 * thread's loop (loop.c).
 */
#ifndef WEFT_FABRIC_INTERNAL_H
#define WEFT_FABRIC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include "compiler.h"
#include "fabric.h"
#include "map.h"

/* libfabric's calls that are functions, loaded at the first endpoint (dl.c). */
struct weft__fi {
	int (*getinfo)(uint32_t version, const char *node, const char *service,
		       uint64_t flags, const struct fi_info *hints, struct fi_info **info);
	void (*freeinfo)(struct fi_info *info);
	struct fi_info *(*dupinfo)(const struct fi_info *info);
	int (*fabric)(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context);
	const char *(*strerror)(int errnum);
};
extern struct weft__fi weft__fi;
/* Load libfabric once. 0, or -ENODEV (logged). */
int weft__fi_load(void);
#define fi_getinfo weft__fi.getinfo
#define fi_freeinfo weft__fi.freeinfo
#define fi_dupinfo weft__fi.dupinfo
#define fi_fabric weft__fi.fabric
#define fi_strerror weft__fi.strerror

#define RECV_BUFS 32			/* messages that can arrive at once */
#define READ_CHUNK (4u << 20)		/* bytes of one posted RMA read at most */
#define READS_POSTED 16			/* chunks in flight at once */
/*
 * Spin this long after the last work, then sleep: on a machine whose cores the
 * processes of a cluster share, spinning takes the core another needs (a round trip
 * took 91-100 us spinning 2 us, 122 at 10, 195 at 50, 554 at 200: perf/HISTORY.md).
 * $WEFT_FABRIC_SPIN_US sets it for machines with cores to spare.
 */
#define SPIN_NS_DEFAULT 5000
/*
 * shm, a process whose memory is read: a reader copies it itself, holding the lock
 * of our endpoint that it reads, and our progress calls only answer a reader's
 * first contact and give back its queue's slots; polling spins on that lock while
 * it copies (64 MiB: 5-7 GB/s with a look every 1 ms, 12-14 every 5 ms). So after a
 * reader's first lease the thread polls SHM_CONTACT_NS for its first contact, and
 * else looks every SHM_HOLD_POLL_NS while leases are open, sleeping between.
 */
#define SHM_CONTACT_NS 1000000
#define SHM_HOLD_POLL_NS 10000000
#define SEND_BUFS_KEPT 64		/* free send buffers kept for reuse */

enum scheme { SCHEME_TCP, SCHEME_SHM, SCHEME_VERBS };

/* What a completion's context is: the first member of each. */
enum ctx_kind { CTX_SEND, CTX_RECV, CTX_READ };

struct fab_ctx {
	struct fi_context2 fi;		/* libfabric's, first */
	uint8_t kind;
};

/* A message to send: the buffer lives until its send completes. */
struct sendbuf {
	struct fab_ctx ctx;
	struct sendbuf *next;
	struct weft__peer *peer;
	uint32_t len;			/* once finished */
	struct weft__msg_out mo;	/* while ops are added */
	uint8_t data[WEFT_FAB_MSG_MAX];
};

struct recvbuf {
	struct fab_ctx ctx;
	uint8_t data[WEFT_PROTO_MAX_MSG];
};

/* One chunk of an RMA read in flight. */
struct readchunk {
	struct fab_ctx ctx;
	struct weft__fab_read *r;
	size_t len;
	/*
	 * A chunk given to the second reader (reader.c) carries what it reads, as
	 * that thread touches no peer, and comes back as a call with its error.
	 */
	struct weft__fab_call back;
	struct readchunk *next;		/* in the second reader's queue */
	void *dst;
	uint64_t addr, key;
	int err;
	uint32_t peer_len;
	uint8_t peer[WEFT_PROTO_MAX_ADDR];	/* the holder's data address */
	bool poison;			/* test hook: read nobody's address */
};

/* A fabric, domain, address vector and completion queue that endpoints share. */
struct fab_dom {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;		/* FI_AV_TABLE: an fi_addr_t is an index */
	struct fid_cq *cq;
	int fd;				/* the CQ's wait fd, or -1 (shm has none) */
};

struct fab_ep {
	struct fid_ep *ep;
	/*
	 * Its own completion queue, or NULL for the domain's. The read endpoint has
	 * one, closed with it: libfabric 1.17's rxm leaves a closed endpoint in its
	 * CQ's wait list, and fi_trywait on that CQ then reads freed memory.
	 */
	struct fid_cq *cq;
	int fd;				/* that CQ's wait fd, or -1 */
	uint8_t addr[WEFT_PROTO_MAX_ADDR];
	size_t addrlen;
};

/* A message that arrived before its turn (see struct weft__peer). */
struct early {
	struct early *next;
	uint64_t seq;
	uint32_t len;
	uint8_t data[];
};

struct weft__peer {
	struct weft__fabric *f;
	void *app;
	fi_addr_t ctrl, data;		/* in the AV; data FI_ADDR_NOTAVAIL until known */
	uint8_t ctrl_raw[WEFT_PROTO_MAX_ADDR], data_raw[WEFT_PROTO_MAX_ADDR];
	uint32_t ctrl_len, data_len;
	uint8_t data2_raw[WEFT_PROTO_MAX_ADDR];	/* its serve2, from its HELLO */
	uint32_t data2_len;			/* 0: none known */
	bool hello_sent, hello_got, auth_sent, ready, dying;
	bool leased;			/* it has had a lease of ours (shm: contact) */
	uint8_t role;			/* the peer's, from its HELLO */
	uint8_t nonce[WEFT_AUTH_NONCE], theirs[WEFT_AUTH_NONCE];
	uint8_t *hello;			/* a copy of its HELLO message, for cbs->ready */
	uint32_t hello_len;
	uint64_t tx_seq, rx_seq;
	uint64_t conn_in;		/* what it puts in its messages to us: ours */
	uint64_t conn_out;		/* what we put in ours to it: its HELLO's */
	struct sendbuf *out;		/* the OPS message being filled */
	/*
	 * Full OPS messages made before the handshake ended: their sequence numbers
	 * and the peer's conn are given when it is ready, then they go first.
	 */
	struct sendbuf *held, *held_tail;
	struct sendbuf *queue, *queue_tail;	/* finished, waiting for the fabric */
	unsigned inflight;		/* its sends posted and not completed */
	/*
	 * Messages that completed ahead of an earlier one (rxm completes a large
	 * message after the small ones sent behind it), kept until their turn.
	 */
	struct early *early;
	unsigned nearly;
	struct weft__parts parts;	/* an op of its arriving in PARTs */
	struct weft__peer *prev, *next;	/* f->peers */
};

struct weft__fabric {
	struct weft__fab_config cfg;
	struct weft__auth_key key;
	enum scheme scheme;
	char url[WEFT_FAB_URL_MAX];
	char name[WEFT_PROTO_MAX_NAME + 1];
	/*
	 * The control endpoint takes messages. Data: "serve" is read by peers (its
	 * address, in HELLO, never changes); "read" issues this process's reads, and
	 * is reopened after a read fails, as a bad read poisons its connection. For
	 * tcp and verbs all three share one domain; for shm the data side has its own,
	 * and a worker serves on a second endpoint too, "serve2", which the second
	 * reader of a peer reads (reader.c): a reader's copy holds the lock of the
	 * endpoint it reads, so two readers of one endpoint take turns.
	 */
	struct fab_dom cdom, *ddom, shmdom;
	struct fab_ep ctrl, serve, rd, serve2;
	unsigned shm_seq;		/* names of shm endpoints */
	struct weft__peer *peers;	/* every peer, listed */
	/*
	 * Peers by the conn each asked for in its messages (proto.h): rxm gives no
	 * source for a message it sends in segments, so the message says who it is.
	 */
	struct weft__map by_conn;
	struct recvbuf *recv;		/* RECV_BUFS of them, posted */
	struct sendbuf *free_sends;
	unsigned nfree_sends;
	/* Reads: started and not done, waiting for room, and chunks' contexts. */
	struct weft__fab_read *reads_wait, *reads_wait_tail;
	struct readchunk chunks[READS_POSTED];
	unsigned chunks_free[READS_POSTED], nchunks_free;
	unsigned reads_inflight;
	/* shm: a second thread that copies half of each large read (reader.c). */
	struct fab_reader *reader;
	bool data_poisoned;		/* reopen the data endpoint once reads drain */
	int holds;			/* leases open: progress data even without an fd */
	int64_t hold_poll_until;	/* shm: poll until then (SHM_CONTACT_NS) */
	unsigned reopens;
	bool poison_next;		/* test hook */
	bool poison_second;		/* test hook: the second reader's next chunk */
	unsigned second_chunks;		/* chunks the second reader read, for tests */
	bool stall_reads;		/* test hook: reads are taken and never posted */
	uint8_t test_version[2];	/* test hook: the major.minor this process plays */
	/* Calls from other threads: a stack the loop takes whole. */
	struct weft__fab_call *_Atomic calls;
	/* Set while the thread sleeps in epoll; pairs with the callers' load (Dekker). */
	atomic_bool sleeping;
	int eventfd, epfd;
	int64_t spin_ns;
	atomic_bool stop;
	pthread_t thread;
	int64_t next_tick;
	bool dirty;			/* some peer has ops not flushed */
};

/* ep.c */
int weft__fab_parse_url(const char *url, enum scheme *scheme, char *host, size_t hostlen,
			char *port, size_t portlen);
int weft__fab_open_eps(struct weft__fabric *f, const char *host, const char *port);
int weft__fab_reopen_read(struct weft__fabric *f);
void weft__fab_close_eps(struct weft__fabric *f);
/*
 * A shm domain with one endpoint, named @name (weft-PID-...), on the domain's CQ, for
 * the second reader; and closing both.
 */
int weft__fab_shm_reader_open(const char *name, struct fab_dom *d, struct fab_ep *e);
void weft__fab_shm_reader_close(struct fab_dom *d, struct fab_ep *e);
int weft__fab_url_of(enum scheme scheme, const void *addr, size_t len, char *buf,
		     size_t buflen);

/* peer.c */
struct weft__peer *weft__fab_peer_new(struct weft__fabric *f, const void *ctrl, size_t len);
void weft__fab_peer_free(struct weft__fabric *f, struct weft__peer *p);
void weft__fab_on_msg(struct weft__fabric *f, const uint8_t *buf, size_t len);
void weft__fab_early_free(struct weft__peer *p);
void weft__fab_peer_gone(struct weft__fabric *f, struct weft__peer *p, int why);

/* msg.c */
int weft__fab_post_recvs(struct weft__fabric *f);
struct sendbuf *weft__fab_sendbuf(struct weft__fabric *f);
void weft__fab_sendbuf_put(struct weft__fabric *f, struct sendbuf *b);
/* Queue a finished message for @p and post what the fabric takes now. */
void weft__fab_queue(struct weft__fabric *f, struct weft__peer *p, struct sendbuf *b);
void weft__fab_flush(struct weft__fabric *f, struct weft__peer *p);
void weft__fab_flush_all(struct weft__fabric *f);
void weft__fab_push(struct weft__fabric *f, struct weft__peer *p);
void weft__fab_send_done(struct weft__fabric *f, struct sendbuf *b, int err);
/* Free a list of send buffers never posted (a peer's queue, held, out). */
void weft__fab_sendbufs_free(struct weft__fabric *f, struct sendbuf *b);
/* A one-op handshake message (or a BYE with @op NULL) for @p, sent at once. */
int weft__fab_send_now(struct weft__fabric *f, struct weft__peer *p, uint8_t type,
		       uint16_t op_type, const void *op);

/* rma.c */
void weft__fab_read_done(struct weft__fabric *f, struct readchunk *c, int err);
void weft__fab_reads_resume(struct weft__fabric *f);

/* reader.c */
/*
 * Reads at least this long are shared with the second reader: every other chunk
 * goes to it, from the first.
 */
#define READER_MIN (2 * (size_t)READ_CHUNK)
/*
 * Start the second reader of @f (shm only); NULL in *@out when it is not wanted or
 * could not start (logged). -EINVAL for a WEFT_SHM_READERS other than 1 or 2.
 */
int weft__fab_reader_start(struct weft__fabric *f, struct fab_reader **out);
/* Stop it: the chunk it reads ends first; those still queued are dropped. */
void weft__fab_reader_stop(struct fab_reader *rd);
/* Whether it takes chunks: started, and not broken by a failed reopen. */
bool weft__fab_reader_ok(const struct fab_reader *rd);
/* A holder gone: its address @raw leaves the second reader's AV before its next chunk. */
void weft__fab_reader_forget(struct fab_reader *rd, const void *raw, uint32_t len);
/* Give it @c, filled; c->back comes to the fabric thread when it is read or failed. */
void weft__fab_reader_post(struct fab_reader *rd, struct readchunk *c);

/* loop.c */
int weft__fab_progress(struct weft__fabric *f);

#endif /* WEFT_FABRIC_INTERNAL_H */
