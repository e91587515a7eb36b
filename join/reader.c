// SPDX-License-Identifier: MIT
/*
 * Reading the inputs' chunks.
 *
 * A file that the page cache does not hold is read with O_DIRECT. Filling the page
 * cache costs the kernel about a second of CPU per gigabyte on the machines we
 * measure on, as much as the join's own work, for pages that are read only once.
 * Without the kernel's read-ahead, reader threads keep the disk busy: they read
 * chunks in file order into a few buffers, two at a time (a disk serves two
 * requests faster than one after the other), and submit each chunk's partition
 * task once its bytes are in memory, so that no worker waits for the disk and the
 * CPU can join what is already read. A task that runs again (a retry) reads its
 * chunk itself.
 *
 * A file mostly in the page cache is read through it, with read-ahead advice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "../util/huge.h"

#define DIRECT_ALIGN 4096	/* offsets, lengths and buffers of O_DIRECT reads */
#define READERS 2		/* reads under way at once */
#define IO_NICE 10		/* $WEFT_IO_NICE's default, as the engine's */

static uint64_t align_down(uint64_t v)
{
	return v & ~(uint64_t)(DIRECT_ALIGN - 1);
}

/* True when at least half of the file's pages are in the page cache. */
static bool mostly_cached(const struct side *s)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = (s->size + page - 1) / page, in = 0;
	unsigned char *vec;
	void *map;

	if (!s->size)
		return true;
	map = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
	if (map == MAP_FAILED)
		return true;
	vec = malloc(pages);
	if (vec && !mincore(map, s->size, vec))
		for (size_t i = 0; i < pages; i++)
			in += vec[i] & 1;
	else
		in = pages;	/* cannot tell: keep the page cache */
	free(vec);
	munmap(map, s->size);
	return 2 * in >= pages;
}

void side_choose_reads(struct side *s, int direct)
{
	s->dfd = -1;
	if (direct < 0 || (!direct && mostly_cached(s)))
		return;
	/* Filesystems without O_DIRECT (tmpfs) refuse it here: read through the cache. */
	s->dfd = open(s->in->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
}

size_t chunk_room(const struct chunk *c)
{
	return c->len + 2 * DIRECT_ALIGN;
}

/* pread all of [off, off + len) into @buf; -ENODATA if the file ends first. */
static int read_all(int fd, char *buf, uint64_t off, uint64_t len, uint64_t need)
{
	uint64_t got = 0;

	while (got < need) {
		ssize_t n = pread(fd, buf + got, len - got, off + got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ENODATA;
		got += n;
	}
	return 0;
}

int chunk_read(const struct side *s, const struct chunk *c, char *buf, const char **data)
{
	if (s->dfd >= 0) {
		/* Whole aligned blocks around the chunk: the last may run past the end. */
		uint64_t a0 = align_down(c->off);
		uint64_t a1 = align_down(c->off + c->len + DIRECT_ALIGN - 1);
		int ret = read_all(s->dfd, buf, a0, a1 - a0, c->off + c->len - a0);

		if (ret != -EINVAL) {
			*data = buf + (c->off - a0);
			return ret;
		}
		/* The device wants another alignment: read through the cache. */
	}
	*data = buf;
	return read_all(s->fd, buf, c->off, c->len, c->len);
}

/* ---- the reader thread ---- */

enum { RC_AHEAD, RC_READING, RC_READY, RC_TAKEN };

struct rchunk {
	uint8_t state;		/* RC_*: waiting for the reader, under way, read, taken */
	bool launched;		/* its task is submitted */
	int err;		/* of a read by the reader */
	int launch_err;		/* of submitting its task */
	char *buf;		/* the reader's buffer that holds it */
	const char *data;	/* its bytes in buf */
};

struct reader {
	const struct side *side[2];
	struct rchunk *rc[2];
	unsigned cur;			/* the side the reader is reading */
	size_t next;			/* the next chunk there it looks at */
	char **free;			/* buffers not in use */
	size_t nfree, nbufs, room;
	char *pool;			/* the buffers, nbufs * room bytes */
	pthread_mutex_t lock;
	pthread_cond_t done;		/* a task was launched: the client may wait for one */
	pthread_cond_t freed;		/* a buffer came back, or go: the reader may wait */
	reader_launch_fn *launch;	/* submits a chunk's task once it is read */
	void *launch_arg;
	bool go;			/* launching may begin */
	bool stop;
	unsigned nthreads;
	pthread_t thread[READERS];
};

/* With the lock held: the next chunk the reader should read, or NULL when done. */
static struct rchunk *next_chunk(struct reader *r, const struct chunk **c)
{
	for (; r->cur < 2; r->cur++, r->next = 0) {
		const struct side *s = r->side[r->cur];

		if (s->dfd < 0)
			continue;
		for (; r->next < s->nchunks; r->next++) {
			if (r->rc[r->cur][r->next].state == RC_AHEAD) {
				*c = &s->chunks[r->next];
				return &r->rc[r->cur][r->next++];
			}
		}
	}
	return NULL;
}

/*
 * Readers run above the workers, as the engine's spill thread does: while the
 * workers keep every core busy, a reader that waits for a core leaves the disk
 * idle. $WEFT_IO_NICE says by how many nice levels (default 10; 0: not at all),
 * and weft_client_open has refused a bad value by now. Without CAP_SYS_NICE the
 * readers keep the process's priority.
 */
static void reader_priority(void)
{
	const char *e = getenv("WEFT_IO_NICE");
	int levels = e && *e ? atoi(e) : IO_NICE, now;
	id_t self = (id_t)gettid();

	errno = 0;
	now = getpriority(PRIO_PROCESS, self);
	if (levels <= 0 || (now == -1 && errno))
		return;
	(void)setpriority(PRIO_PROCESS, self, now - levels < -20 ? -20 : now - levels);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	(void)pthread_setname_np(pthread_self(), "join-reader");
	reader_priority();
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		const struct chunk *c;
		const struct side *s;
		struct rchunk *rc;
		unsigned si;
		size_t ci;
		char *buf;

		if (!r->nfree) {
			pthread_cond_wait(&r->freed, &r->lock);
			continue;
		}
		rc = next_chunk(r, &c);
		if (!rc)
			break;
		si = r->cur;
		s = r->side[si];
		ci = rc - r->rc[si];
		buf = r->free[--r->nfree];
		rc->state = RC_READING;
		pthread_mutex_unlock(&r->lock);
		rc->err = chunk_read(s, c, buf, &rc->data);
		pthread_mutex_lock(&r->lock);
		rc->buf = buf;
		rc->state = RC_READY;
		/* Its task starts only now: no worker waits for the disk. */
		while (!r->go && !r->stop)
			pthread_cond_wait(&r->freed, &r->lock);
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->lock);
		rc->launch_err = r->launch(r->launch_arg, si, ci);
		pthread_mutex_lock(&r->lock);
		rc->launched = true;
		pthread_cond_broadcast(&r->done);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_start(struct reader **out, const struct side *left, const struct side *right,
		 unsigned nbufs, reader_launch_fn *launch, void *launch_arg)
{
	size_t room = 0;
	struct reader *r;
	int ret = -ENOMEM;

	*out = NULL;
	if (left->dfd < 0 && right->dfd < 0)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->side[0] = left;
	r->side[1] = right;
	r->launch = launch;
	r->launch_arg = launch_arg;
	for (unsigned i = 0; i < 2; i++) {
		const struct side *s = r->side[i];

		r->rc[i] = calloc(s->nchunks + 1, sizeof(*r->rc[i]));
		if (!r->rc[i])
			goto err_free;
		for (size_t k = 0; s->dfd >= 0 && k < s->nchunks; k++)
			room = chunk_room(&s->chunks[k]) > room ? chunk_room(&s->chunks[k]) : room;
	}
	r->room = (room + DIRECT_ALIGN - 1) & ~(size_t)(DIRECT_ALIGN - 1);
	r->nbufs = nbufs;
	r->free = calloc(nbufs, sizeof(*r->free));
	r->pool = huge_map(nbufs * r->room);	/* for O_DIRECT reads */
	if (!r->free || !r->pool)
		goto err_free;
	for (size_t i = 0; i < nbufs; i++)
		r->free[r->nfree++] = r->pool + i * r->room;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->done, NULL);
	pthread_cond_init(&r->freed, NULL);
	for (; r->nthreads < READERS && r->nthreads < nbufs; r->nthreads++) {
		ret = -pthread_create(&r->thread[r->nthreads], NULL, reader_main, r);
		if (ret)
			break;
	}
	if (r->nthreads) {	/* fewer readers are slower, not wrong */
		*out = r;
		return 0;
	}

	pthread_cond_destroy(&r->freed);
	pthread_cond_destroy(&r->done);
	pthread_mutex_destroy(&r->lock);
err_free:
	if (r->pool)
		munmap(r->pool, nbufs * r->room);
	free(r->free);
	free(r->rc[1]);
	free(r->rc[0]);
	free(r);
	return ret;
}

int reader_get(struct reader *r, const struct side *s, unsigned side, size_t ci,
	       char *own, const char **data, char **held)
{
	struct rchunk *rc;
	int ret;

	*held = NULL;
	if (!r || s->dfd < 0)
		return chunk_read(s, &s->chunks[ci], own, data);
	rc = &r->rc[side][ci];
	pthread_mutex_lock(&r->lock);
	if (rc->state != RC_READY) {
		/* Taken before: this is the task's second try. */
		pthread_mutex_unlock(&r->lock);
		return chunk_read(s, &s->chunks[ci], own, data);
	}
	rc->state = RC_TAKEN;
	*held = rc->buf;
	*data = rc->data;
	ret = rc->err;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void reader_put(struct reader *r, char *held)
{
	if (!held)
		return;
	pthread_mutex_lock(&r->lock);
	r->free[r->nfree++] = held;
	pthread_cond_broadcast(&r->freed);	/* readers also wait on it for go */
	pthread_mutex_unlock(&r->lock);
}

bool reader_launches(const struct reader *r, const struct side *s)
{
	return r && s->dfd >= 0;
}

void reader_go(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->go = true;
	pthread_cond_broadcast(&r->freed);
	pthread_mutex_unlock(&r->lock);
}

int reader_launched(struct reader *r, unsigned side, size_t ci)
{
	struct rchunk *rc = &r->rc[side][ci];
	int ret;

	pthread_mutex_lock(&r->lock);
	while (!rc->launched && !r->stop && r->nthreads)
		pthread_cond_wait(&r->done, &r->lock);
	ret = rc->launched ? rc->launch_err : -ECANCELED;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void reader_halt(struct reader *r)
{
	if (!r || r->stop)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->freed);
	pthread_cond_broadcast(&r->done);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->nthreads; i++)
		pthread_join(r->thread[i], NULL);
}

void reader_free(struct reader *r)
{
	if (!r)
		return;
	reader_halt(r);
	pthread_cond_destroy(&r->freed);
	pthread_cond_destroy(&r->done);
	pthread_mutex_destroy(&r->lock);
	munmap(r->pool, r->nbufs * r->room);
	free(r->free);
	free(r->rc[1]);
	free(r->rc[0]);
	free(r);
}
