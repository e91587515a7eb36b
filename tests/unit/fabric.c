// SPDX-License-Identifier: MIT
/*
 * Unit tests of fabric/: two fabrics in one process on loopback (tcp, and shm for
 * the data), each with its own thread: the handshake, a wrong token, ops both ways
 * in order and batched, ops queued during the handshake, an op larger than a
 * message (sent in PARTs) and a broken PART, calls from other threads, RMA reads of
 * 64 MiB checked byte for byte (on shm, shared with the second reader, or not), a
 * bad read that poisons the read endpoint, which is reopened, and a failed chunk of
 * the second reader.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "fabric.h"

#define TOKEN "0123456789abcdef-unit"
#define WAIT_S 10

struct side {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct weft__fabric *f;
	struct weft__peer *peer;	/* the other side, once ready */
	char peer_name[64];
	uint8_t peer_role;
	int gone;			/* gone calls */
	int gone_why;
	uint64_t ops, last_key;
	bool in_order;
	/* A SUBMIT came: after which RELEASE, and whether every field was as sent. */
	uint64_t submit_after;
	bool submit_ok;
	int submits;
	int read_err;
	bool read_done;
};

static struct side a, b;

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->in_order = true;
}

static int on_ready(void *arg, struct weft__peer *p, const struct weft__op_hello *h)
{
	struct side *s = arg;

	pthread_mutex_lock(&s->lock);
	s->peer = p;
	s->peer_role = h->role;
	weft__pbytes_str(s->peer_name, sizeof(s->peer_name), h->name);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The SUBMIT the large-op test sends: this many deps, keys 0.., an argument of i * 7. */
#define BIG_DEPS 100000
#define BIG_ARG (1u << 20)

static bool big_submit_intact(const struct weft__op_submit *op)
{
	struct weft__plist_iter it;
	struct weft__pdep d;
	uint32_t i = 0;

	if (op->key != 42 || op->deps.n != BIG_DEPS || op->arg.len != BIG_ARG ||
	    op->fn.len != 3 || memcmp(op->fn.p, "sum", 3))
		return false;
	for (i = 0; i < BIG_ARG; i++)
		if (op->arg.p[i] != (uint8_t)(i * 7))
			return false;
	weft__plist_iter_init(&it, &op->deps);
	for (i = 0; weft__plist_next(&it, &d); i++)
		if (d.key != i || d.output != i % 3)
			return false;
	return i == BIG_DEPS;
}

static void on_op(void *arg, struct weft__peer *p, uint16_t type, const void *op)
{
	struct side *s = arg;
	const struct weft__op_future *fu = op;

	(void)p;
	if (type == WEFT_OP_SUBMIT) {
		bool ok = big_submit_intact(op);

		pthread_mutex_lock(&s->lock);
		s->submits++;
		s->submit_ok = ok;
		s->submit_after = s->last_key;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (type != WEFT_OP_RELEASE)
		return;
	pthread_mutex_lock(&s->lock);
	if (fu->key != s->last_key + 1)
		s->in_order = false;
	s->last_key = fu->key;
	s->ops++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void on_gone(void *arg, struct weft__peer *p, int why)
{
	struct side *s = arg;

	pthread_mutex_lock(&s->lock);
	if (s->peer == p)
		s->peer = NULL;
	s->gone++;
	s->gone_why = why;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static const struct weft__fab_cbs cbs = { on_ready, on_op, on_gone, NULL };

/* Wait until @pred holds for side @sd, at most WAIT_S seconds. */
#define WAIT_FOR(sd, pred)							\
	do {									\
		struct timespec until;						\
		int _r = 0;							\
		clock_gettime(CLOCK_REALTIME, &until);				\
		until.tv_sec += WAIT_S;						\
		pthread_mutex_lock(&(sd)->lock);				\
		while (!(pred) && _r != ETIMEDOUT)				\
			_r = pthread_cond_timedwait(&(sd)->cond, &(sd)->lock, &until); \
		pthread_mutex_unlock(&(sd)->lock);				\
		cr_assert(pred, "timed out waiting for " #pred);		\
	} while (0)

static struct weft__fabric *start(struct side *s, const char *url, const char *token,
				  uint8_t role, const char *name)
{
	struct weft__auth_key key;
	struct weft__fab_config cfg = { .url = url, .role = role, .name = name, .key = &key,
					.cbs = &cbs, .arg = s, .nthreads = 2 };
	struct weft__fabric *f;

	cr_assert_eq(weft__auth_key(token, &key), 0);
	cr_assert_eq(weft__fab_start(&cfg, &f), 0, "start %s", url);
	s->f = f;
	return f;
}

/* Run on the fabric thread: connect to a URL. */
struct connect_call {
	struct weft__fab_call c;
	char url[WEFT_FAB_URL_MAX];
	int ret;
	bool done;
};

static void do_connect(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct connect_call *cc = container_of(c, struct connect_call, c);
	struct weft__peer *p;

	cc->ret = weft__fab_connect(f, cc->url, &p);
	__atomic_store_n(&cc->done, true, __ATOMIC_RELEASE);
}

static void connect_to(struct weft__fabric *from, struct weft__fabric *to)
{
	struct connect_call cc = { .c.fn = do_connect };

	snprintf(cc.url, sizeof(cc.url), "%s", weft__fab_url(to));
	weft__fab_call(from, &cc.c);
	while (!__atomic_load_n(&cc.done, __ATOMIC_ACQUIRE))
		sched_yield();
	cr_assert_eq(cc.ret, 0);
}

/* a, as @a_role, and b, a worker, connected; only a worker serves reads. */
static void pair_as(const char *scheme, uint8_t a_role)
{
	char url[64];

	side_init(&a);
	side_init(&b);
	snprintf(url, sizeof(url), "%s://127.0.0.1:0", scheme);
	start(&a, url, TOKEN, a_role, a_role == WEFT_ROLE_WORKER ? "w1" : "sched");
	start(&b, url, TOKEN, WEFT_ROLE_WORKER, "w0");
	connect_to(b.f, a.f);
	WAIT_FOR(&a, a.peer != NULL);
	WAIT_FOR(&b, b.peer != NULL);
}

static void pair(const char *scheme)
{
	pair_as(scheme, WEFT_ROLE_SCHEDULER);
}

static void unpair(void)
{
	weft__fab_stop(b.f);
	weft__fab_stop(a.f);
}

/* b, refused or dropped, is stopped and starts again: a serves it as any other. */
static void b_again_is_served(void)
{
	weft__fab_stop(b.f);
	side_init(&b);
	start(&b, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_WORKER, "w0");
	connect_to(b.f, a.f);
	WAIT_FOR(&a, a.peer != NULL);
	unpair();
}

Test(fabric, handshake_tells_each_side_the_other, .timeout = 30)
{
	pair("tcp");
	cr_assert_str_eq(a.peer_name, "w0");
	cr_assert_eq(a.peer_role, WEFT_ROLE_WORKER);
	cr_assert_str_eq(b.peer_name, "sched");
	cr_assert_eq(b.peer_role, WEFT_ROLE_SCHEDULER);
	cr_assert_eq(strncmp(weft__fab_url(a.f), "tcp://127.0.0.1:", 16), 0);
	cr_assert_neq(strcmp(weft__fab_url(a.f), "tcp://127.0.0.1:0"), 0, "a port was picked");
	/* b stops: a hears its BYE. */
	weft__fab_stop(b.f);
	WAIT_FOR(&a, a.gone == 1);
	cr_assert_eq(a.gone_why, 0, "an orderly goodbye");
	weft__fab_stop(a.f);
}

Test(fabric, a_wrong_token_is_refused_on_both_sides, .timeout = 30)
{
	side_init(&a);
	side_init(&b);
	start(&a, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_SCHEDULER, "sched");
	start(&b, "tcp://127.0.0.1:0", TOKEN "x", WEFT_ROLE_CLIENT, "c");
	connect_to(b.f, a.f);
	WAIT_FOR(&b, b.gone == 1);
	cr_assert_eq(b.gone_why, -EACCES);
	cr_assert_null(b.peer, "never ready");
	WAIT_FOR(&a, a.gone == 1);
	cr_assert_null(a.peer);
	unpair();
}

/* b plays a process of @major.@minor: a refuses it, and b learns why. */
static void another_version(uint8_t major, uint8_t minor)
{
	side_init(&a);
	side_init(&b);
	start(&a, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_SCHEDULER, "sched");
	start(&b, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_CLIENT, "c");
	weft__fab_test_version(b.f, major, minor);
	connect_to(b.f, a.f);
	/* a answers with a BYE whose header names its version; b gives up. */
	WAIT_FOR(&b, b.gone == 1);
	cr_assert_eq(b.gone_why, -EPROTO, "told why: %d", b.gone_why);
	cr_assert_null(b.peer, "never ready");
	cr_assert_null(a.peer, "nor on a's side");
	b_again_is_served();
}

Test(fabric, another_major_version_is_refused, .timeout = 30)
{
	another_version(WEFT_PROTO_MAJOR + 1, WEFT_PROTO_MINOR);
}

/* Its ops may hold fields this build does not know, or lack some it needs. */
Test(fabric, another_minor_version_is_refused, .timeout = 30)
{
	another_version(WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR + 1);
}

/* Queued from another thread: 10000 RELEASE ops to the other side. */
struct send_call {
	struct weft__fab_call c;
	struct side *s;
	uint64_t from, n;
	bool done;
};

static void do_send(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct send_call *sc = container_of(c, struct send_call, c);

	for (uint64_t k = sc->from; k < sc->from + sc->n; k++) {
		struct weft__op_future op = { k, 0, 0 };

		cr_assert_eq(weft__fab_send(f, sc->s->peer, WEFT_OP_RELEASE, &op), 0);
	}
	__atomic_store_n(&sc->done, true, __ATOMIC_RELEASE);
}

Test(fabric, ops_arrive_in_order_and_batched, .timeout = 30)
{
	struct send_call sc[4];

	pair("tcp");
	/* Four calls from this thread, each 10000 ops: more than one message holds. */
	for (int i = 0; i < 4; i++) {
		sc[i] = (struct send_call){ .c.fn = do_send, .s = &b, .from = 1 + i * 10000,
					    .n = 10000 };
		weft__fab_call(b.f, &sc[i].c);
	}
	WAIT_FOR(&a, a.ops == 40000);
	cr_assert(a.in_order, "ops came in the order they were sent");
	cr_assert_eq(a.last_key, 40000);
	for (int i = 0; i < 4; i++)
		while (!__atomic_load_n(&sc[i].done, __ATOMIC_ACQUIRE))
			sched_yield();
	unpair();
}

/* On a's thread: whether b has been silent, watched by @w, at @now. */
struct silent_call {
	struct weft__fab_call c;
	struct weft__fab_watch *w;
	int64_t now;
	int silent;			/* -1 until answered */
};

static void do_silent(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct silent_call *sc = container_of(c, struct silent_call, c);

	(void)f;
	__atomic_store_n(&sc->silent, weft__fab_silent(sc->w, a.peer, sc->now, 1000),
			 __ATOMIC_RELEASE);
}

static int silent_at(struct weft__fab_watch *w, int64_t now)
{
	struct silent_call sc = { .c.fn = do_silent, .w = w, .now = now, .silent = -1 };

	weft__fab_call(a.f, &sc.c);
	while (__atomic_load_n(&sc.silent, __ATOMIC_ACQUIRE) < 0)
		sched_yield();
	return sc.silent;
}

/* A peer that sends nothing for longer than the quiet time is silent; one op is not. */
Test(fabric, a_peer_is_silent_once_nothing_came_from_it_for_the_quiet_time, .timeout = 30)
{
	struct send_call one = { .c.fn = do_send, .s = &b, .from = 1, .n = 1 };
	struct weft__fab_watch w = { 0 };
	int64_t t = 1000000;

	pair("tcp");
	cr_assert_eq(silent_at(&w, t), 0, "the first look starts the watch");
	cr_assert_eq(silent_at(&w, t + 1000), 0, "quiet for the quiet time, not longer");
	cr_assert_eq(silent_at(&w, t + 1001), 1);
	weft__fab_call(b.f, &one.c);
	WAIT_FOR(&a, a.ops == 1);
	cr_assert_eq(silent_at(&w, t + 5000), 0, "it spoke since");
	cr_assert_eq(silent_at(&w, t + 5500), 0);
	cr_assert_eq(silent_at(&w, t + 6001), 1, "and nothing since");
	unpair();
}

/*
 * On b's thread: connect to a, and before the handshake is over queue RELEASEs
 * 1..5000 (several messages), a SUBMIT larger than a message, RELEASEs 5001..10000.
 */
struct early_call {
	struct weft__fab_call c;
	char url[WEFT_FAB_URL_MAX];
	int ret;
	bool ready_then;
	bool done;
};

static void do_connect_and_send(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct early_call *ec = container_of(c, struct early_call, c);
	struct weft__pdep *deps = malloc(BIG_DEPS * sizeof(*deps));
	uint8_t *arg = malloc(BIG_ARG);
	struct weft__op_submit op = { .key = 42, .fn = weft__pbytes_of("sum", 3),
				      .noutputs = 1, .arg = weft__pbytes_of(arg, BIG_ARG),
				      .deps = { .n = BIG_DEPS, .items = deps } };
	struct weft__peer *p;
	int ret = deps && arg ? weft__fab_connect(f, ec->url, &p) : -ENOMEM;

	for (uint32_t i = 0; deps && i < BIG_DEPS; i++)
		deps[i] = (struct weft__pdep){ i, i % 3 };
	for (uint32_t i = 0; arg && i < BIG_ARG; i++)
		arg[i] = (uint8_t)(i * 7);
	ec->ready_then = !ret && weft__peer_ready(p);
	for (uint64_t k = 1; !ret && k <= 10000; k++) {
		struct weft__op_future rel = { k, 0, 0 };

		ret = weft__fab_send(f, p, WEFT_OP_RELEASE, &rel);
		if (!ret && k == 5000)
			ret = weft__fab_send(f, p, WEFT_OP_SUBMIT, &op);
	}
	free(deps);
	free(arg);
	ec->ret = ret;
	__atomic_store_n(&ec->done, true, __ATOMIC_RELEASE);
}

Test(fabric, ops_queued_in_the_handshake_and_an_op_in_parts_arrive_whole, .timeout = 60)
{
	struct early_call ec = { .c.fn = do_connect_and_send };

	side_init(&a);
	side_init(&b);
	start(&a, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_SCHEDULER, "sched");
	start(&b, "tcp://127.0.0.1:0", TOKEN, WEFT_ROLE_CLIENT, "c");
	snprintf(ec.url, sizeof(ec.url), "%s", weft__fab_url(a.f));
	weft__fab_call(b.f, &ec.c);
	while (!__atomic_load_n(&ec.done, __ATOMIC_ACQUIRE))
		sched_yield();
	cr_assert_eq(ec.ret, 0, "every op queued: %d", ec.ret);
	cr_assert_not(ec.ready_then, "the ops were queued before the handshake ended");
	WAIT_FOR(&a, a.ops == 10000 && a.submits == 1);
	cr_assert(a.in_order, "the RELEASEs came in order");
	cr_assert(a.submit_ok, "the SUBMIT of %u deps and %u bytes came intact", BIG_DEPS, BIG_ARG);
	cr_assert_eq(a.submit_after, 5000, "the SUBMIT came between the ops it was sent between");
	cr_assert_eq(a.gone, 0);
	cr_assert_eq(b.gone, 0);
	unpair();
}

/* On b's thread: a PART of an op of 100 bytes, then a RELEASE inside it. */
static void do_send_broken_part(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct send_call *sc = container_of(c, struct send_call, c);
	uint8_t bytes[10] = { WEFT_OP_RELEASE };
	struct weft__op_part part = { 100, weft__pbytes_of(bytes, sizeof(bytes)) };
	struct weft__op_future rel = { 1, 0, 0 };

	cr_assert_eq(weft__fab_send(f, sc->s->peer, WEFT_OP_PART, &part), 0);
	cr_assert_eq(weft__fab_send(f, sc->s->peer, WEFT_OP_RELEASE, &rel), 0);
	__atomic_store_n(&sc->done, true, __ATOMIC_RELEASE);
}

Test(fabric, an_op_inside_another_ops_parts_drops_the_sender, .timeout = 30)
{
	struct send_call sc = { .c.fn = do_send_broken_part, .s = &b };

	pair("tcp");
	weft__fab_call(b.f, &sc.c);
	WAIT_FOR(&a, a.gone == 1);
	cr_assert_eq(a.gone_why, -EBADMSG);
	cr_assert_eq(a.ops, 0, "the RELEASE inside the PARTs was not taken");
	b_again_is_served();
}

/* Register a buffer on one side and read it from the other. */
struct rma_call {
	struct weft__fab_call c;
	struct weft__fab_read r;
	struct side *reader;
	void *src;
	size_t len;
	uint64_t rkey, addr;
	struct weft__fab_mr *mr;
	int ret;
	bool done;
	bool poison;
	bool poison_second;
};

static void do_reg(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct rma_call *rc = container_of(c, struct rma_call, c);

	rc->ret = weft__fab_reg(f, rc->src, rc->len, &rc->mr, &rc->rkey, &rc->addr);
	weft__fab_hold(f, NULL, 1);
	__atomic_store_n(&rc->done, true, __ATOMIC_RELEASE);
}

static void do_unreg(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct rma_call *rc = container_of(c, struct rma_call, c);

	weft__fab_hold(f, NULL, -1);
	weft__fab_unreg(f, rc->mr);
	__atomic_store_n(&rc->done, true, __ATOMIC_RELEASE);
}

static void read_done(struct weft__fab_read *r, int err)
{
	struct rma_call *rc = container_of(r, struct rma_call, r);
	struct side *s = rc->reader;

	pthread_mutex_lock(&s->lock);
	s->read_err = err;
	s->read_done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void do_read(struct weft__fabric *f, struct weft__fab_call *c)
{
	struct rma_call *rc = container_of(c, struct rma_call, c);

#ifdef WEFT_TESTING
	if (rc->poison)
		weft__fab_read_poison(f);
	if (rc->poison_second)
		weft__fab_read_poison_second(f);
#endif
	rc->ret = weft__fab_read(f, &rc->r);
}

static void call_wait(struct weft__fabric *f, struct rma_call *rc,
		      void (*fn)(struct weft__fabric *, struct weft__fab_call *))
{
	rc->done = false;
	rc->c.fn = fn;
	weft__fab_call(f, &rc->c);
	while (!__atomic_load_n(&rc->done, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void read_back(struct rma_call *rc, void *dst, bool poison)
{
	rc->poison = poison;
	rc->r = (struct weft__fab_read){ .peer = b.peer, .dst = dst, .len = rc->len,
					 .rkey = rc->rkey, .addr = rc->addr, .done = read_done };
	b.read_done = false;
	rc->c.fn = do_read;
	weft__fab_call(b.f, &rc->c);
	WAIT_FOR(&b, b.read_done);
	cr_assert_eq(rc->ret, 0);
}

/* a and b, workers, and @len bytes of a's, each known, registered for b to read. */
static void rma_pair(const char *scheme, struct rma_call *rc, size_t len, uint8_t **dst)
{
	uint8_t *src = malloc(len);

	*dst = malloc(len);
	cr_assert(src && *dst);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 2654435761u >> 24);
	*rc = (struct rma_call){ .reader = &b, .src = src, .len = len };
	pair_as(scheme, WEFT_ROLE_WORKER);
	call_wait(a.f, rc, do_reg);
	cr_assert_eq(rc->ret, 0);
}

/* Both peers still alive; the bytes unregistered, the pair stopped. */
static void rma_unpair(struct rma_call *rc, uint8_t *dst)
{
	cr_assert_eq(a.gone, 0);
	cr_assert_eq(b.gone, 0);
	call_wait(a.f, rc, do_unreg);
	unpair();
	free(rc->src);
	free(dst);
}

static bool rma_one_reader;		/* WEFT_SHM_READERS=1 */

static void rma(const char *scheme)
{
	size_t len = 64u << 20;
	struct rma_call rc;
	uint8_t *src, *dst;

	rma_pair(scheme, &rc, len, &dst);
	src = rc.src;
	memset(dst, 0, len);
	read_back(&rc, dst, false);
	cr_assert_eq(b.read_err, 0);
	cr_assert_eq(memcmp(src, dst, len), 0, "64 MiB read back byte for byte");
#ifdef WEFT_TESTING
	/* shm: every other 4 MiB chunk went to the second reader, from the first. */
	cr_assert_eq(weft__fab_second_chunks(b.f),
		     strcmp(scheme, "shm") || rma_one_reader ? 0 : 8);
#endif

	/* A read with a wrong key fails; on tcp it poisons the read endpoint. */
	rc.len = 4096;
	read_back(&rc, dst, true);
	if (!strcmp(scheme, "tcp")) {
		cr_assert_neq(b.read_err, 0, "a wrong key is refused");
#ifdef WEFT_TESTING
		/* The endpoint is reopened once the reads are over; the next read works. */
		memset(dst, 0, 4096);
		read_back(&rc, dst, false);
		cr_assert_eq(b.read_err, 0, "the read after the bad one works");
		cr_assert_eq(memcmp(src, dst, 4096), 0);
		cr_assert_eq(weft__fab_reopens(b.f), 1);
#endif
	}
	/* And control messages still flow: the peers are both alive. */
	rma_unpair(&rc, dst);
}

Test(fabric, rma_reads_on_tcp, .timeout = 60)
{
	rma("tcp");
}

Test(fabric, rma_reads_on_shm, .timeout = 60)
{
	rma("shm");
}

/* Files in /dev/shm named after this process: weft-PID-... */
static int own_regions(void)
{
	char prefix[32];
	struct dirent *e;
	DIR *d = opendir("/dev/shm");
	int n = 0;

	cr_assert_not_null(d);
	snprintf(prefix, sizeof(prefix), "weft-%d-", (int)getpid());
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

/*
 * A process killed before it removed its regions left them under its pid; this
 * process, given the pid again, reads on shm all the same, and nothing of it is
 * left after.
 */
Test(fabric, regions_left_under_this_pid_do_not_stop_shm, .timeout = 60)
{
	static const char *const eps[] = { "0", "1", "2", "3", "reader" };
	char path[96];

	for (unsigned i = 0; i < sizeof(eps) / sizeof(eps[0]); i++)
		for (int k = 0; k < 10; k++) {
			int fd;

			snprintf(path, sizeof(path), "/dev/shm/weft-%d-%s:0:%d", (int)getpid(),
				 eps[i], k);
			fd = open(path, O_CREAT | O_RDWR, 0600);
			cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
			close(fd);
		}
	cr_assert_eq(own_regions(), 50);
	rma("shm");
	cr_assert_eq(own_regions(), 0, "the stale ones and its own are gone");
}

#ifdef WEFT_TESTING
/*
 * shm: a chunk that fails on the second reader fails its read, and nothing else:
 * the next read is whole, the second reader goes on, and the peers live.
 */
Test(fabric, a_failed_chunk_of_the_second_reader_fails_its_read_only, .timeout = 60)
{
	size_t len = 16u << 20;
	struct rma_call rc;
	uint8_t *dst;

	rma_pair("shm", &rc, len, &dst);
	rc.poison_second = true;
	read_back(&rc, dst, false);
	cr_assert_neq(b.read_err, 0, "the failed chunk fails the read");
	rc.poison_second = false;
	memset(dst, 0, len);
	read_back(&rc, dst, false);
	cr_assert_eq(b.read_err, 0, "the next read works");
	cr_assert_eq(memcmp(rc.src, dst, len), 0);
	cr_assert_eq(weft__fab_second_chunks(b.f), 4, "two each time, the second reader's");
	rma_unpair(&rc, dst);
}
#endif

/*
 * shm: a holder goes and another comes; the second reader, which knew the first,
 * reads the new one's bytes whole.
 */
Test(fabric, the_second_reader_reads_a_new_holder_after_one_goes, .timeout = 60)
{
	size_t len = 16u << 20;
	struct rma_call rc;
	uint8_t *dst;

	rma_pair("shm", &rc, len, &dst);
	read_back(&rc, dst, false);
	cr_assert_eq(b.read_err, 0);
	call_wait(a.f, &rc, do_unreg);
	weft__fab_stop(a.f);
	WAIT_FOR(&b, b.gone == 1 && !b.peer);
	side_init(&a);
	start(&a, "shm://127.0.0.1:0", TOKEN, WEFT_ROLE_WORKER, "w1");
	connect_to(b.f, a.f);
	WAIT_FOR(&a, a.peer != NULL);
	WAIT_FOR(&b, b.peer != NULL);
	call_wait(a.f, &rc, do_reg);
	cr_assert_eq(rc.ret, 0);
	memset(dst, 0, len);
	read_back(&rc, dst, false);
	cr_assert_eq(b.read_err, 0, "the new holder is read");
	cr_assert_eq(memcmp(rc.src, dst, len), 0);
#ifdef WEFT_TESTING
	cr_assert_eq(weft__fab_second_chunks(b.f), 4, "half of each by the second reader");
#endif
	b.gone = 0;
	rma_unpair(&rc, dst);
}

/* WEFT_SHM_READERS=1: one thread reads it all; a value other than 1 or 2 is refused. */
Test(fabric, shm_reads_with_one_reader, .timeout = 60)
{
	struct weft__auth_key key;
	struct weft__fab_config cfg = { .url = "shm://127.0.0.1:0", .role = WEFT_ROLE_WORKER,
					.name = "w9", .key = &key, .cbs = &cbs, .arg = &a };
	struct weft__fabric *f;

	cr_assert_eq(weft__auth_key(TOKEN, &key), 0);
	setenv("WEFT_SHM_READERS", "3", 1);
	cr_assert_eq(weft__fab_start(&cfg, &f), -EINVAL);
	setenv("WEFT_SHM_READERS", "", 1);
	cr_assert_eq(weft__fab_start(&cfg, &f), -EINVAL);
	setenv("WEFT_SHM_READERS", "1", 1);
	rma_one_reader = true;
	rma("shm");
}

Test(fabric, bad_urls_are_refused, .timeout = 10)
{
	struct weft__auth_key key;
	struct weft__fab_config cfg = { .role = WEFT_ROLE_CLIENT, .key = &key, .cbs = &cbs };
	const char *bad[] = { "http://127.0.0.1:1", "tcp://127.0.0.1", "tcp://:80",
			      "tcp://127.0.0.1:99999", "tcp://127.0.0.1:x", "" };
	struct weft__fabric *f;

	cr_assert_eq(weft__auth_key(TOKEN, &key), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.url = bad[i];
		cr_assert_eq(weft__fab_start(&cfg, &f), -EINVAL, "%s", bad[i]);
	}
}
