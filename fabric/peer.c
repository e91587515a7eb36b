// SPDX-License-Identifier: MIT
/*
 * peer.c - peers and their handshake. Each side sends one HELLO (a fresh nonce, its
 * addresses) and, once it has the other's, one AUTH (its proof of the token over
 * both nonces). A peer is ready when its AUTH checks out; before that only HELLO
 * and AUTH are taken from it, and a message from an address not yet known must be
 * a HELLO. Sequence numbers count each side's messages from 0, HELLO included.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <rdma/fi_errno.h>

#include "internal.h"
#include "log.h"

static struct weft__peer *peer_by_raw(struct weft__fabric *f, const void *ctrl, size_t len)
{
	for (struct weft__peer *p = f->peers; p; p = p->next)
		if (p->ctrl_len == len && !memcmp(p->ctrl_raw, ctrl, len) && !p->dying)
			return p;
	return NULL;
}

struct weft__peer *weft__fab_peer_new(struct weft__fabric *f, const void *ctrl, size_t len)
{
	struct weft__peer *p;
	fi_addr_t a;

	if (!len || len > WEFT_PROTO_MAX_ADDR)
		return NULL;
	p = peer_by_raw(f, ctrl, len);
	if (p)
		return p;
	if (fi_av_insert(f->cdom.av, ctrl, 1, &a, 0, NULL) != 1)
		return NULL;
	p = calloc(1, sizeof(*p));
	/* A random conn, not 0 (a first HELLO's) nor one in use. */
	while (p && (!p->conn_in || weft__map_get(&f->by_conn, p->conn_in)))
		weft__auth_random(&p->conn_in, sizeof(p->conn_in));
	if (!p || weft__map_put(&f->by_conn, p->conn_in, p)) {
		free(p);
		fi_av_remove(f->cdom.av, &a, 1, 0);
		return NULL;
	}
	p->f = f;
	p->ctrl = a;
	p->data = FI_ADDR_NOTAVAIL;
	memcpy(p->ctrl_raw, ctrl, len);
	p->ctrl_len = (uint32_t)len;
	weft__auth_nonce(p->nonce);
	p->next = f->peers;
	if (f->peers)
		f->peers->prev = p;
	f->peers = p;
	return p;
}

void weft__fab_peer_free(struct weft__fabric *f, struct weft__peer *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (f->peers == p)
		f->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	weft__fab_early_free(p);
	weft__parts_free(&p->parts);
	free(p->hello);
	free(p);
}

/*
 * The peer is gone: tell the app once, forget its addresses, and free it once no
 * send of ours points at it.
 */
void weft__fab_peer_gone(struct weft__fabric *f, struct weft__peer *p, int why)
{
	if (p->dying)
		return;
	p->dying = true;
	f->cfg.cbs->gone(f->cfg.arg, p, why);
	if (weft__map_get(&f->by_conn, p->conn_in) == p)
		weft__map_del(&f->by_conn, p->conn_in);
	fi_av_remove(f->cdom.av, &p->ctrl, 1, 0);
	if (p->data != FI_ADDR_NOTAVAIL)
		fi_av_remove(f->ddom->av, &p->data, 1, 0);
	if (f->reader && p->data_len) {
		weft__fab_reader_forget(f->reader, p->data_raw, p->data_len);
		if (p->data2_len)
			weft__fab_reader_forget(f->reader, p->data2_raw, p->data2_len);
	}
	weft__fab_sendbufs_free(f, p->queue);
	weft__fab_sendbufs_free(f, p->held);
	weft__fab_sendbufs_free(f, p->out);
	p->queue = p->queue_tail = p->held = p->held_tail = p->out = NULL;
	if (!p->inflight)
		weft__fab_peer_free(f, p);
}

void weft__fab_drop(struct weft__fabric *f, struct weft__peer *p, int why)
{
	if (p->dying)
		return;
	weft__fab_flush(f, p);
	weft__fab_send_now(f, p, WEFT_MSG_BYE, 0, NULL);
	weft__fab_peer_gone(f, p, why);
}

static int send_hello(struct weft__fabric *f, struct weft__peer *p)
{
	struct weft__op_hello h = {
		.role = f->cfg.role,
		.ctrl_addr = weft__pbytes_of(f->ctrl.addr, f->ctrl.addrlen),
		.data_addr = weft__pbytes_of(f->serve.addr, f->serve.addrlen),
		.name = weft__pbytes_of(f->name, strlen(f->name)),
		.nthreads = f->cfg.nthreads,
		.memory_limit = f->cfg.memory_limit,
		.conn = p->conn_in,
		.data_addr2 = weft__pbytes_of(f->serve2.addr, f->serve2.addrlen),
	};

	memcpy(h.nonce, p->nonce, sizeof(h.nonce));
	p->hello_sent = true;
	return weft__fab_send_now(f, p, WEFT_MSG_HELLO, WEFT_OP_HELLO, &h);
}

static int send_auth(struct weft__fabric *f, struct weft__peer *p)
{
	struct weft__op_auth a;

	weft__auth_mac(&f->key, f->cfg.role, p->nonce, p->theirs, WEFT_PROTO_MAJOR,
		       WEFT_PROTO_MINOR, a.mac);
	p->auth_sent = true;
	return weft__fab_send_now(f, p, WEFT_MSG_AUTH, WEFT_OP_AUTH, &a);
}

static int start(struct weft__fabric *f, const void *ctrl, size_t len, const void *data,
		 size_t dlen, struct weft__peer **out)
{
	struct weft__peer *p = weft__fab_peer_new(f, ctrl, len);
	int ret;

	if (!p)
		return -ENOMEM;
	if (dlen && p->data == FI_ADDR_NOTAVAIL && dlen <= sizeof(p->data_raw) &&
	    fi_av_insert(f->ddom->av, data, 1, &p->data, 0, NULL) == 1) {
		memcpy(p->data_raw, data, dlen);
		p->data_len = (uint32_t)dlen;
	}
	*out = p;
	if (p->hello_sent)
		return 0;
	ret = send_hello(f, p);
	return ret;
}

int weft__fab_connect_addr(struct weft__fabric *f, struct weft__pbytes ctrl,
			   struct weft__pbytes data, struct weft__peer **out)
{
	return start(f, ctrl.p, ctrl.len, data.p, data.len, out);
}

int weft__fab_connect(struct weft__fabric *f, const char *url, struct weft__peer **out)
{
	char host[256], port[8];
	struct sockaddr_in in = { .sin_family = AF_INET };
	enum scheme scheme;
	int ret;

	ret = weft__fab_parse_url(url, &scheme, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	if (scheme != f->scheme) {
		weft__log(WEFT_LOG_ERROR, "fabric", "%s: this process speaks %.*s", url,
			  (int)(strchr(f->url, ':') - f->url), f->url);
		return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &in.sin_addr) != 1) {
		weft__log(WEFT_LOG_ERROR, "fabric", "%s: give an IPv4 address", url);
		return -EINVAL;
	}
	in.sin_port = htons((uint16_t)atoi(port));
	return start(f, &in, sizeof(in), NULL, 0, out);
}

/* The peer's HELLO, decoded again from its copy. */
static int their_hello(struct weft__peer *p, struct weft__op_hello *h)
{
	struct weft__msg m;
	struct weft__op_iter it;
	uint16_t type;

	if (weft__msg_open(p->hello, p->hello_len, 0, &m))
		return -EBADMSG;
	weft__op_iter_init(&it, &m);
	return weft__op_next(&it, &type, h) == 1 ? 0 : -EBADMSG;
}

static int on_hello(struct weft__fabric *f, struct weft__peer *p, const uint8_t *buf,
		    size_t len, const struct weft__op_hello *h)
{
	if (p->hello_got || !h->conn)
		return -EBADMSG;
	p->conn_out = h->conn;
	p->hello = malloc(len);
	if (!p->hello)
		return -ENOMEM;
	memcpy(p->hello, buf, len);
	p->hello_len = (uint32_t)len;
	p->hello_got = true;
	p->role = h->role;
	memcpy(p->theirs, h->nonce, sizeof(p->theirs));
	if (h->data_addr.len && p->data == FI_ADDR_NOTAVAIL &&
	    fi_av_insert(f->ddom->av, h->data_addr.p, 1, &p->data, 0, NULL) == 1) {
		memcpy(p->data_raw, h->data_addr.p, h->data_addr.len);
		p->data_len = h->data_addr.len;
	}
	/* Bounded by the schema; the second reader inserts it in its own AV. */
	if (h->data_addr2.len)
		memcpy(p->data2_raw, h->data_addr2.p, h->data_addr2.len);
	p->data2_len = h->data_addr2.len;
	if (!p->hello_sent && send_hello(f, p))
		return -ENOMEM;
	return send_auth(f, p) ? -ENOMEM : 0;
}

static int on_auth(struct weft__fabric *f, struct weft__peer *p, const struct weft__op_auth *a)
{
	struct weft__op_hello h;
	char name[WEFT_FAB_URL_MAX];
	int ret;

	if (!p->hello_got || p->ready)
		return -EBADMSG;
	if (!weft__auth_check(&f->key, p->role, p->theirs, p->nonce, WEFT_PROTO_MAJOR,
			      WEFT_PROTO_MINOR, a->mac)) {
		weft__log(WEFT_LOG_WARN, "fabric", "%s did not prove the cluster token: refused",
			  weft__peer_name(p, name, sizeof(name)));
		return -EACCES;
	}
	p->ready = true;
	if (their_hello(p, &h))
		return -EBADMSG;
	ret = f->cfg.cbs->ready(f->cfg.arg, p, &h);
	if (ret)
		return ret;
	weft__fab_flush(f, p);		/* what the app queued before */
	return 0;
}

/*
 * A PART of an op: the op, once its last byte is here, as if it had come whole.
 * Return: false when the peer was dropped for it (and may be freed).
 */
static bool on_part(struct weft__fabric *f, struct weft__peer *p, const struct weft__op_part *part)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	char name[WEFT_FAB_URL_MAX];
	uint16_t type;
	int ret = weft__parts_add(&p->parts, part, &type, op);

	if (!ret)
		return true;
	if (ret < 0) {
		weft__log(WEFT_LOG_WARN, "fabric", "%s sent %s: dropped",
			  weft__peer_name(p, name, sizeof(name)), ret == -ENOMEM ?
			  "an op this process has no memory for" : "a bad op in parts");
		weft__fab_peer_gone(f, p, ret == -ENOMEM ? -ENOMEM : -EBADMSG);
		return false;
	}
	f->cfg.cbs->op(f->cfg.arg, p, type, op);
	weft__parts_free(&p->parts);	/* an op's buffer is not kept for the next */
	return true;
}

static void on_ops(struct weft__fabric *f, struct weft__peer *p, const struct weft__msg *m)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	char name[WEFT_FAB_URL_MAX];
	struct weft__op_iter it;
	uint16_t type;

	weft__op_iter_init(&it, m);
	/* A peer dropped for what it sent may be freed at once: not looked at again. */
	while (!p->dying && weft__op_next(&it, &type, op) == 1) {
		if (type == WEFT_OP_PART) {
			if (!on_part(f, p, (const struct weft__op_part *)op))
				return;
		} else if (p->parts.total) {
			/* An op's PARTs come one after another, nothing between. */
			weft__log(WEFT_LOG_WARN, "fabric", "%s sent an op inside another's "
				  "parts: dropped", weft__peer_name(p, name, sizeof(name)));
			weft__fab_peer_gone(f, p, -EBADMSG);
			return;
		} else {
			f->cfg.cbs->op(f->cfg.arg, p, type, op);
		}
	}
}

/* A HELLO from a process this one does not know yet: where it says to answer. */
static struct weft__peer *newcomer(struct weft__fabric *f, const uint8_t *buf, size_t len,
				   int ret, const struct weft__msg *m)
{
	struct weft__pbytes addr;
	struct weft__peer *p;
	char url[WEFT_FAB_URL_MAX];
	uint64_t conn;

	if (weft__hello_addr(buf, len, &addr, &conn))
		return NULL;
	weft__fab_url_of(f->scheme, addr.p, addr.len, url, sizeof(url));
	if (ret == -EPROTO) {
		weft__log(WEFT_LOG_WARN, "fabric", "refused %s: it speaks protocol version "
			  "%u.%u, this process %u.%u", url, m->major, m->minor, WEFT_PROTO_MAJOR,
			  WEFT_PROTO_MINOR);
		p = weft__fab_peer_new(f, addr.p, addr.len);
		if (p) {
			p->conn_out = conn;	/* so that it knows the BYE is for it */
			weft__fab_send_now(f, p, WEFT_MSG_BYE, 0, NULL);
			p->dying = true;	/* freed when the BYE is sent */
			if (!p->inflight)
				weft__fab_peer_free(f, p);
		}
		return NULL;
	}
	if (ret) {
		weft__log(WEFT_LOG_WARN, "fabric", "a bad first message from %s: ignored", url);
		return NULL;
	}
	return weft__fab_peer_new(f, addr.p, addr.len);
}

static void on_msg(struct weft__fabric *f, struct weft__peer *p, const uint8_t *buf, size_t len)
{
	uint8_t op[WEFT_OP_MAX_SIZE] __attribute__((aligned(8)));
	char name[WEFT_FAB_URL_MAX];
	struct weft__op_iter it;
	struct weft__msg m;
	uint16_t type;
	int ret;

	ret = weft__msg_open(buf, len, p ? p->rx_seq : 0, &m);
#ifdef WEFT_TESTING
	/* Playing a process of another version: what this build sends is not it. */
	if (f->test_version[0] && !ret)
		ret = -EPROTO;
#endif
	if (!p) {
		/* Unknown: only a first HELLO (or the BYE of one we refused). */
		if (ret == -EPROTO || (!ret && m.type == WEFT_MSG_HELLO))
			p = newcomer(f, buf, len, ret, &m);
		else
			weft__log(WEFT_LOG_WARN, "fabric", "a message of %zu bytes from an unknown "
				  "address: ignored", len);
		if (!p || p->hello_got || p->dying)
			return;
	}
	if (p->dying)
		return;
	if (ret) {
		if (ret == -EPROTO)
			weft__log(WEFT_LOG_WARN, "fabric", "%s speaks protocol version %u.%u, this "
				  "process %u.%u", weft__peer_name(p, name, sizeof(name)), m.major,
				  m.minor, WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR);
		else
			weft__log(WEFT_LOG_WARN, "fabric", "%s sent a bad message (%s): dropped",
				  weft__peer_name(p, name, sizeof(name)),
				  ret == -EALREADY ? "out of sequence" : "malformed");
		weft__fab_peer_gone(f, p, ret == -EPROTO ? -EPROTO : -EBADMSG);
		return;
	}
	p->rx_seq++;
	weft__op_iter_init(&it, &m);
	switch (m.type) {
	case WEFT_MSG_HELLO:
		weft__op_next(&it, &type, op);
		ret = on_hello(f, p, buf, len, (const struct weft__op_hello *)op);
		break;
	case WEFT_MSG_AUTH:
		weft__op_next(&it, &type, op);
		ret = on_auth(f, p, (const struct weft__op_auth *)op);
		break;
	case WEFT_MSG_OPS:
		if (!p->ready) {
			ret = -EBADMSG;
			break;
		}
		on_ops(f, p, &m);
		return;
	default:		/* BYE */
		weft__fab_peer_gone(f, p, 0);
		return;
	}
	if (ret)
		weft__fab_drop(f, p, ret);
}

void weft__peer_set(struct weft__peer *p, void *app)
{
	p->app = app;
}

void *weft__peer_get(const struct weft__peer *p)
{
	return p->app;
}

bool weft__fab_silent(struct weft__fab_watch *w, const struct weft__peer *p, int64_t now,
		      int64_t quiet_ns)
{
	if (!w->since || p->rx_seq != w->rx) {
		w->rx = p->rx_seq;
		w->since = now;
		return false;
	}
	return now - w->since > quiet_ns;
}

struct weft__pbytes weft__peer_ctrl_addr(const struct weft__peer *p)
{
	return weft__pbytes_of(p->ctrl_raw, p->ctrl_len);
}

struct weft__pbytes weft__peer_data_addr(const struct weft__peer *p)
{
	return weft__pbytes_of(p->data_raw, p->data_len);
}

bool weft__peer_ready(const struct weft__peer *p)
{
	return p->ready && !p->dying;
}

const char *weft__peer_name(const struct weft__peer *p, char *buf, size_t len)
{
	weft__fab_url_of(p->f->scheme, p->ctrl_raw, p->ctrl_len, buf, len);
	return buf;
}

#define EARLY_MAX (RECV_BUFS * 4)	/* messages held for one peer at most */

/* Keep a message that came before its turn. 0, or -EBADMSG if too many wait. */
static int early_keep(struct weft__peer *p, uint64_t seq, const uint8_t *buf, size_t len)
{
	struct early *e;

	if (p->nearly == EARLY_MAX || !(e = malloc(sizeof(*e) + len)))
		return -EBADMSG;
	e->seq = seq;
	e->len = (uint32_t)len;
	memcpy(e->data, buf, len);
	e->next = p->early;
	p->early = e;
	p->nearly++;
	return 0;
}

/* The kept message whose turn it is, taken off the list, or NULL. */
static struct early *early_take(struct weft__peer *p)
{
	for (struct early **e = &p->early; *e; e = &(*e)->next)
		if ((*e)->seq == p->rx_seq) {
			struct early *x = *e;

			*e = x->next;
			p->nearly--;
			return x;
		}
	return NULL;
}

void weft__fab_early_free(struct weft__peer *p)
{
	while (p->early) {
		struct early *e = p->early;

		p->early = e->next;
		free(e);
	}
	p->nearly = 0;
}

void weft__fab_on_msg(struct weft__fabric *f, const uint8_t *buf, size_t len)
{
	struct weft__peer *p = NULL;
	struct early *e;
	uint64_t seq, conn;

	if (len >= WEFT_PROTO_HDR) {
		memcpy(&conn, buf + 24, 8);
		conn = le64toh(conn);
		/* Not 0: a peer known by it, or nobody this process talks to. */
		if (conn && !(p = weft__map_get(&f->by_conn, conn))) {
			weft__log(WEFT_LOG_DEBUG, "fabric", "a message for no peer of ours: ignored");
			return;
		}
	}
	/* A later message of a known peer waits for the ones before it. */
	if (p && !p->dying) {
		memcpy(&seq, buf + 16, 8);
		seq = le64toh(seq);
		if (seq > p->rx_seq) {
			char name[WEFT_FAB_URL_MAX];

			if (!early_keep(p, seq, buf, len))
				return;
			weft__log(WEFT_LOG_WARN, "fabric", "%s: message %llu has not come while "
				  "%u after it did: dropped", weft__peer_name(p, name, sizeof(name)),
				  (unsigned long long)p->rx_seq, p->nearly);
			weft__fab_peer_gone(f, p, -EBADMSG);
			return;
		}
	}
	on_msg(f, p, buf, len);
	/* Then the ones that came early, in turn, while the peer lasts. */
	while (p && weft__map_get(&f->by_conn, conn) == p && !p->dying && (e = early_take(p))) {
		on_msg(f, p, e->data, e->len);
		free(e);
	}
}
