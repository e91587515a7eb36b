// SPDX-License-Identifier: MIT
/*
 * spill.c - the spill file: its space (a first-fit free list that coalesces), its
 * checksums (xxh3), fusing a batch of items into few vectored requests, the
 * choice of backend, and handing released space back to the file system.
 *
 * The file is a row of segment files, each an unnamed file of its own. Freeing a
 * file's blocks holds its inode lock while the file system discards them (about a
 * second per GiB on the disks we measure on), and every read of that file waits
 * meanwhile; with segments, only reads of the one being trimmed do. A trimmer
 * thread punches released space out, so that neither the writer nor the readers
 * wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "compiler.h"
#include "spill.h"
#include "backend.h"

#define ITEM_ALIGN 64			/* items start on cache-line boundaries */
#define BLOCK 4096			/* O_DIRECT alignment of offsets, lengths, buffers */
#define BOUNCE HUGE_PAGE		/* direct reads of unaligned items, a piece at a time */
#define SEG_SHIFT 28			/* the first segments are 256 MiB ... */
#define SEGS_PER_TIER 32		/* ... and each 32 segments, 4 times larger: a TiB
					 * takes fewer than 150 descriptors */
#define MAX_SEGS 1024
#define TRIM_CUTS 64			/* punches per trim at most */
#define TRIM_AHEAD 4			/* budgets the trimmer may have queued */
/*
 * Trims wait until writes have paused this long. A disk that caches writes (as the
 * virtual disks we measure on do) flushes them before a discard, and serves no read
 * meanwhile: a second or more per GiB written. Trimming between writes would pay
 * that again and again; after them, once.
 */
#define TRIM_QUIET_NS 500000000ull

struct range {
	uint64_t off, len;
};

/* Released space being punched out, reserved (out of the free list) meanwhile. */
struct trim_job {
	uint64_t off, len;
};

struct weft__spill {
	pthread_mutex_t lock;		/* space, stats, the trimmer's queue; no I/O under it */
	char *dir;			/* where segments are made */
	unsigned seg_shift;		/* log2 of the first segments' size */
	_Atomic int *seg;		/* each segment's file, or -1 before its first write */
	const struct spill_ops *ops;
	void *ctx;
	bool direct;			/* O_DIRECT: writes staged, reads bounced */
	size_t stage_bytes;		/* a power of two (WEFT__SPILL_STAGE_MIN..MAX) */
	void *stage;			/* direct: the spill thread's staging buffer */
	pthread_mutex_t bounce_lock;	/* one read at a time through: */
	void *bounce;			/* direct: after the stage, in its mapping */
	struct range *free;		/* free ranges, sorted by offset, never adjacent */
	size_t nfree, free_cap;
	uint64_t end;			/* the file's used length */
	struct range *rel;		/* released since the last trim, in any order */
	size_t nrel, rel_cap;
	uint64_t released;		/* their bytes */
	bool no_trim;			/* the file system cannot punch holes */
	struct range *work;		/* the writer's: what a trim still has to do, */
	size_t nwork, work_at;		/* sorted and merged, done up to work_at */
	pthread_t trimmer;
	bool trimmer_on, trim_stop;
	pthread_cond_t trim_wake;	/* the trimmer waits here for jobs */
	pthread_cond_t trim_idle;	/* tests wait here for the trimmer */
	struct trim_job *jobs;		/* its queue: jobs_at .. njobs - 1 are to do */
	size_t njobs, jobs_at, jobs_cap;
	uint64_t trim_pending;		/* bytes queued or being punched */
	uint64_t wrote_ns;		/* when the last write ended */
	uint64_t trim_quiet_ns;		/* TRIM_QUIET_NS, but for tests */
	struct weft__spill_stats st;
};

static uint64_t now_ns(void)
{
	return (uint64_t)weft__mono_ns();
}

static uint64_t span(size_t len)
{
	return ((uint64_t)len + ITEM_ALIGN - 1) & ~(uint64_t)(ITEM_ALIGN - 1);
}

/* ---- space ---- */

static void space_free(struct weft__spill *s, uint64_t off, uint64_t len);

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * First fit at @align; else the end of the file grows, from the free range that
 * ends there if there is one. Return: the offset.
 */
static uint64_t space_alloc(struct weft__spill *s, uint64_t len, uint64_t align)
{
	uint64_t start, old_end;

	for (size_t i = 0; i < s->nfree; i++) {
		struct range *r = &s->free[i];
		uint64_t head, tail;

		start = round_up(r->off, align);
		if (start + len > r->off + r->len)
			continue;
		head = start - r->off;
		tail = r->off + r->len - (start + len);
		if (head) {
			r->len = head;		/* the tail, if any, goes back below */
		} else if (tail) {
			r->off += len;
			r->len -= len;
			return start;
		} else {
			memmove(r, r + 1, (s->nfree - i - 1) * sizeof(*r));
			s->nfree--;
		}
		if (head && tail)
			space_free(s, start + len, tail);
		return start;
	}
	old_end = s->end;
	if (s->nfree && s->free[s->nfree - 1].off + s->free[s->nfree - 1].len == old_end)
		old_end = s->free[--s->nfree].off;	/* too short alone: grown */
	start = round_up(old_end, align);
	s->end = start + len;
	if (start > old_end)
		space_free(s, old_end, start - old_end);	/* the alignment gap */
	return start;
}

/* With the lock held: the first free range that ends after @off. */
static size_t free_after(const struct weft__spill *s, uint64_t off)
{
	size_t lo = 0, hi = s->nfree;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->free[mid].off + s->free[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Take [off, off + len), which lies in one free range, out of the free list, so
 * that the writer cannot use it while it is punched out.
 */
static void space_take(struct weft__spill *s, uint64_t off, uint64_t len)
{
	size_t lo = free_after(s, off);
	struct range *r = &s->free[lo];
	uint64_t head, tail;

	head = off - r->off;
	tail = r->off + r->len - (off + len);
	if (head) {
		r->len = head;
		space_free(s, off + len, tail);	/* nothing to do if no tail */
	} else if (tail) {
		r->off += len;
		r->len -= len;
	} else {
		memmove(r, r + 1, (s->nfree - lo - 1) * sizeof(*r));
		s->nfree--;
	}
}

/* The file's used length: its end, less the free range there. */
static uint64_t used_end(const struct weft__spill *s)
{
	const struct range *last = s->nfree ? &s->free[s->nfree - 1] : NULL;

	return last && last->off + last->len == s->end ? last->off : s->end;
}

/*
 * Give a range back, merging it with its neighbours. A free range at the end of the
 * file stays in the list (the end does not move back): its blocks are punched out
 * like any other's, while the writer may grow the file over it meanwhile.
 */
static void space_free(struct weft__spill *s, uint64_t off, uint64_t len)
{
	size_t lo = 0, hi = s->nfree;

	if (!len)
		return;
	while (lo < hi) {		/* the first range after off */
		size_t mid = (lo + hi) / 2;

		if (s->free[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && s->free[lo - 1].off + s->free[lo - 1].len == off) {
		s->free[lo - 1].len += len;
		if (lo < s->nfree && off + len == s->free[lo].off) {
			s->free[lo - 1].len += s->free[lo].len;
			memmove(&s->free[lo], &s->free[lo + 1],
				(s->nfree - lo - 1) * sizeof(*s->free));
			s->nfree--;
		}
	} else if (lo < s->nfree && off + len == s->free[lo].off) {
		s->free[lo].off = off;
		s->free[lo].len += len;
	} else {
		if (s->nfree == s->free_cap) {
			size_t cap = s->free_cap ? 2 * s->free_cap : 64;
			struct range *r = realloc(s->free, cap * sizeof(*r));

			if (!r)
				return;	/* the range is lost to reuse, not to correctness */
			s->free = r;
			s->free_cap = cap;
		}
		memmove(&s->free[lo + 1], &s->free[lo], (s->nfree - lo) * sizeof(*s->free));
		s->free[lo] = (struct range){ off, len };
		s->nfree++;
	}
}

/* ---- open and close ---- */

static int create_file(const char *dir, bool *direct)
{
	char path[PATH_MAX];
	int fd = -1;

	/* O_DIRECT, so that spilled bytes leave memory rather than sit in the page
	 * cache; filesystems that refuse it (tmpfs) get buffered I/O. */
	if (*direct) {
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, 0600);
		if (fd < 0)
			*direct = false;
	}
	if (fd < 0)
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* No O_TMPFILE here: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/weft-spill-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (*direct && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT))
		*direct = false;
	return fd;
}

int weft__spill_dir_check(const char *dir)
{
	struct stat st;
	bool direct = false;
	int fd;

	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/*
	 * Root passes access(2) checks; only creating a file tells the truth. The
	 * directory exists: a file system that makes no files there (/proc) says
	 * ENOENT, which would read as a missing directory.
	 */
	fd = create_file(dir, &direct);
	if (fd < 0)
		return fd == -ENOENT ? -EOPNOTSUPP : fd;
	close(fd);
	return 0;
}

/*
 * @len bytes at a huge page boundary, on transparent huge pages where the kernel
 * grants them. Each physically contiguous run of a buffer is one segment of a
 * request, and virtual disks pay for each: from 4 KiB pages, O_DIRECT runs several
 * times slower, whatever the request size or depth. Return: the buffer, for munmap
 * with @len, or NULL.
 */
static void *huge_map(size_t len)
{
	size_t over = len + HUGE_PAGE;
	char *m = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	char *p;

	if (m == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	/* Keep [p, p + len): the rest of the mapping goes back. */
	if (p > m)
		munmap(m, p - m);
	if (m + over > p + len)
		munmap(p + len, m + over - (p + len));
	(void)madvise(p, len, MADV_HUGEPAGE);	/* advice: without it, the same but slower */
	return p;
}

/* ---- segments ---- */

/* The segment that holds @off: its index, and where it starts in the file's space. */
static unsigned seg_of(const struct weft__spill *s, uint64_t off, uint64_t *base,
		       uint64_t *len)
{
	uint64_t b = 0;
	unsigned shift = s->seg_shift, first = 0;

	/* Tiers of SEGS_PER_TIER segments, each tier's 4 times the last's. */
	while (shift < 56 && off - b >= (uint64_t)SEGS_PER_TIER << shift) {
		b += (uint64_t)SEGS_PER_TIER << shift;
		first += SEGS_PER_TIER;
		shift += 2;
	}
	*base = b + ((off - b) >> shift << shift);
	*len = (uint64_t)1 << shift;
	return first + (unsigned)((off - b) >> shift);
}

static int seg_fd(const struct weft__spill *s, unsigned i)
{
	/* Acquire pairs with the release in seg_make(): the file is open. */
	return i < MAX_SEGS ? atomic_load_explicit(&s->seg[i], memory_order_acquire) : -1;
}

/* From the writer: make the segments that [off, off + len) needs. Return: 0, -errno. */
static int seg_make(struct weft__spill *s, uint64_t off, uint64_t len)
{
	uint64_t base, size;

	for (uint64_t at = off; at < off + len; at = base + size) {
		unsigned i = seg_of(s, at, &base, &size);
		bool direct = s->direct;
		int fd;

		if (i >= MAX_SEGS)
			return -EFBIG;
		if (seg_fd(s, i) >= 0)
			continue;
		fd = create_file(s->dir, &direct);
		if (fd < 0)
			return fd;
		if (direct != s->direct) {
			close(fd);	/* the same directory, so never: but not mixed */
			return -EINVAL;
		}
		atomic_store_explicit(&s->seg[i], fd, memory_order_release);
	}
	return 0;
}

/*
 * Put @io, at an offset in the file's space, on its segment's file. Return: false
 * (and @io as it was) if it crosses the segment's end.
 */
static bool seg_place(const struct weft__spill *s, struct spill_io *io)
{
	uint64_t base, size;
	unsigned i = seg_of(s, io->off, &base, &size);

	if (io->off + io->len > base + size)
		return false;
	io->fd = seg_fd(s, i);
	io->off -= base;
	return true;
}

/*
 * Carry out @ios, whose offsets are in the file's space, on the segments' files
 * through @ops: a request that crosses a segment's end is cut there. The requests'
 * offsets and iovecs are used up. A request into a segment never written is -EIO.
 */
static void seg_submit(struct weft__spill *s, const struct spill_ops *ops, void *ctx,
		       bool write, struct spill_io *ios, unsigned n)
{
	unsigned npieces = 0, niov = 0, m = 0, k = 0;
	struct spill_io *pc;
	struct iovec *iov;
	unsigned *of;
	uint64_t base, size;

	for (unsigned i = 0; i < n; i++) {
		unsigned first = seg_of(s, ios[i].off, &base, &size);
		unsigned last = ios[i].len ? seg_of(s, ios[i].off + ios[i].len - 1, &base, &size) :
			        first;

		npieces += last - first + 1;
		niov += ios[i].iovcnt + last - first;
	}
	if (npieces == n) {
		/* The usual case: each request in one segment. */
		for (unsigned i = 0; i < n; i++)
			(void)seg_place(s, &ios[i]);
		ops->submit(ctx, write, ios, n);
		for (unsigned i = 0; i < n; i++)
			if (ios[i].fd < 0 && ios[i].len)
				ios[i].err = -EIO;
		return;
	}
	pc = malloc(npieces * sizeof(*pc));
	of = malloc(npieces * sizeof(*of));
	iov = malloc(niov * sizeof(*iov));
	if (!pc || !of || !iov) {
		for (unsigned i = 0; i < n; i++)
			ios[i].err = -ENOMEM;
		goto out_free;
	}
	for (unsigned i = 0; i < n; i++) {
		struct iovec *v = ios[i].iov, *end = v + ios[i].iovcnt;
		size_t used = 0;	/* of *v, by the pieces before */
		uint64_t at = ios[i].off, left = ios[i].len;

		do {
			unsigned si = seg_of(s, at, &base, &size);
			uint64_t take = base + size - at < left ? base + size - at : left;

			pc[m] = (struct spill_io){ .fd = seg_fd(s, si), .iov = &iov[k],
						   .off = at - base, .len = take };
			of[m] = i;
			for (uint64_t got = 0; got < take;) {
				size_t c = v->iov_len - used < take - got ? v->iov_len - used :
					   (size_t)(take - got);

				iov[k++] = (struct iovec){ (char *)v->iov_base + used, c };
				pc[m].iovcnt++;
				got += c;
				used += c;
				if (used == v->iov_len && v + 1 < end) {
					v++;
					used = 0;
				}
			}
			m++;
			at += take;
			left -= take;
		} while (left);
	}
	ops->submit(ctx, write, pc, m);
	for (unsigned i = 0; i < n; i++)
		ios[i].err = 0;
	for (unsigned p = 0; p < m; p++) {
		int err = pc[p].fd < 0 ? -EIO : pc[p].err;

		if (err && !ios[of[p]].err)
			ios[of[p]].err = err;
	}
out_free:
	free(iov);
	free(of);
	free(pc);
}

/* ---- open and close ---- */

size_t weft__spill_stage_for(size_t memory_limit)
{
	size_t stage = WEFT__SPILL_STAGE_MIN;

	while (stage < WEFT__SPILL_STAGE_MAX && 2 * stage <= memory_limit / 32)
		stage *= 2;
	return stage;
}

size_t weft__spill_stage(const struct weft__spill *s)
{
	return s->stage_bytes;
}

int weft__spill_open(const char *dir, enum weft__spill_backend backend, bool direct,
		     size_t stage, struct weft__spill **out)
{
	struct weft__spill *s;
	int ret, fd;

	if (!stage)
		stage = WEFT__SPILL_STAGE_MAX;
	if (!dir || !out || backend > WEFT_SPILL_PREAD || stage < WEFT__SPILL_STAGE_MIN ||
	    stage > WEFT__SPILL_STAGE_MAX || (stage & (stage - 1)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->stage_bytes = stage;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->bounce_lock, NULL);
	pthread_cond_init(&s->trim_wake, NULL);
	pthread_cond_init(&s->trim_idle, NULL);
	s->seg_shift = SEG_SHIFT;
	s->trim_quiet_ns = TRIM_QUIET_NS;
	s->dir = strdup(dir);
	s->seg = malloc(MAX_SEGS * sizeof(*s->seg));
	if (!s->dir || !s->seg) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < MAX_SEGS; i++)
		atomic_init(&s->seg[i], -1);
	/* The first segment now, so that a directory that cannot take it fails here. */
	s->direct = direct;
	fd = create_file(dir, &s->direct);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}
	atomic_init(&s->seg[0], fd);
	if (s->direct && !(s->stage = huge_map(s->stage_bytes + BOUNCE))) {
		ret = -ENOMEM;
		goto err_close;
	}
	s->bounce = s->direct ? (char *)s->stage + s->stage_bytes : NULL;
	s->ops = backend == WEFT_SPILL_PREAD ? &spill_pread_ops : &spill_uring_ops;
	ret = s->ops->init(&s->ctx);
	if (ret == -EOPNOTSUPP && backend == WEFT_SPILL_AUTO) {
		s->ops = &spill_pread_ops;
		ret = s->ops->init(&s->ctx);
	}
	if (ret)
		goto err_close;
	*out = s;
	return 0;

err_close:
	if (s->stage)
		munmap(s->stage, s->stage_bytes + BOUNCE);
	close(fd);
err_free:
	free(s->seg);
	free(s->dir);
	pthread_cond_destroy(&s->trim_idle);
	pthread_cond_destroy(&s->trim_wake);
	pthread_mutex_destroy(&s->bounce_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

#ifdef WEFT_TESTING
int weft__spill_set_segment_shift(struct weft__spill *s, unsigned shift)
{
	if (!s || shift < 12 || shift > 40)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->end) {
		pthread_mutex_unlock(&s->lock);
		return -EBUSY;
	}
	s->seg_shift = shift;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void weft__spill_set_trim_quiet(struct weft__spill *s, uint64_t ns)
{
	pthread_mutex_lock(&s->lock);
	s->trim_quiet_ns = ns;
	pthread_mutex_unlock(&s->lock);
}
#endif /* WEFT_TESTING */

void weft__spill_close(struct weft__spill *s)
{
	if (!s)
		return;
	if (s->trimmer_on) {
		/* What it has not punched yet goes with the files. */
		pthread_mutex_lock(&s->lock);
		s->trim_stop = true;
		pthread_cond_signal(&s->trim_wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->trimmer, NULL);
	}
	s->ops->fini(s->ctx);
	for (unsigned i = 0; i < MAX_SEGS; i++)
		if (seg_fd(s, i) >= 0)
			close(seg_fd(s, i));	/* no names: closing removes them */
	pthread_cond_destroy(&s->trim_idle);
	pthread_cond_destroy(&s->trim_wake);
	pthread_mutex_destroy(&s->bounce_lock);
	pthread_mutex_destroy(&s->lock);
	if (s->stage)
		munmap(s->stage, s->stage_bytes + BOUNCE);
	free(s->jobs);
	free(s->work);
	free(s->rel);
	free(s->free);
	free(s->seg);
	free(s->dir);
	free(s);
}

const char *weft__spill_backend_name(const struct weft__spill *s)
{
	return s->ops->name;
}

bool weft__spill_direct(const struct weft__spill *s)
{
	return s->direct;
}

int weft__spill_fd(const struct weft__spill *s)
{
	return seg_fd(s, 0);
}

void weft__spill_stats(struct weft__spill *s, struct weft__spill_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->file_bytes = used_end(s);
	pthread_mutex_unlock(&s->lock);
}

/* ---- I/O ---- */

/* Zeros to pad written items to ITEM_ALIGN, so that a batch is one contiguous run. */
static const char zeros[ITEM_ALIGN];

/*
 * Requests for @items at their offsets: neighbours in the file share a request, up
 * to IOV_MAX iovecs. When @pad, each item is followed by its padding, so a batch
 * laid out end to end becomes one request. @iov has room for 2n entries, @ios and
 * @first for n requests; request r serves items first[r] .. first[r + 1] - 1.
 */
static unsigned fuse(struct weft__spill_item *items, unsigned n, bool pad,
		     struct iovec *iov, struct spill_io *ios, unsigned *first)
{
	unsigned nios = 0, niov = 0;

	for (unsigned i = 0; i < n; i++) {
		struct spill_io *io = nios ? &ios[nios - 1] : NULL;
		size_t len = items[i].len, gap = pad ? span(len) - len : 0;
		int need = gap ? 2 : 1;

		if (!io || io->off + io->len != items[i].off || io->iovcnt + need > IOV_MAX) {
			first[nios] = i;
			ios[nios++] = (struct spill_io){ .iov = &iov[niov], .off = items[i].off };
			io = &ios[nios - 1];
		}
		iov[niov++] = (struct iovec){ items[i].data, len };
		if (gap)
			iov[niov++] = (struct iovec){ (void *)zeros, gap };
		io->iovcnt += need;
		io->len += len + gap;
	}
	first[nios] = n;
	return nios;
}

/* Carry out @items; each item gets its request's error. Return: the first error. */
static int run(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
	       bool write, unsigned *nrequests)
{
	struct iovec *iov = malloc(2 * (size_t)n * sizeof(*iov));
	struct spill_io *ios = malloc(n * sizeof(*ios));
	unsigned *first = malloc((n + 1) * sizeof(*first));
	unsigned nios, r, i;
	int ret = 0;

	if (!iov || !ios || !first) {
		ret = -ENOMEM;
		goto out_free;
	}
	nios = fuse(items, n, write, iov, ios, first);
	/*
	 * Writes go through the backend, from one thread at a time. Reads come from
	 * any thread (a task restoring its input), so they use preadv, which shares
	 * no ring.
	 */
	if (write)
		seg_submit(s, s->ops, s->ctx, true, ios, nios);
	else
		seg_submit(s, &spill_pread_ops, NULL, false, ios, nios);
	for (r = 0; r < nios; r++) {
		for (i = first[r]; i < first[r + 1]; i++)
			items[i].err = ios[r].err;
		if (ios[r].err && !ret)
			ret = ios[r].err;
	}
	*nrequests = nios;
out_free:
	free(first);
	free(ios);
	free(iov);
	return ret;
}

/* Adds @c bytes at @p, offset @from in @it, to its checksum; the last sets it. */
static void sum_piece(struct weft__spill_item *it, XXH3_state_t *st, const void *p,
		      uint64_t from, size_t c)
{
	if (!from && c == it->len) {
		it->sum = XXH3_64bits(p, c);
		return;
	}
	if (!from)
		XXH3_64bits_reset(st);
	XXH3_64bits_update(st, p, c);
	if (from + c == it->len)
		it->sum = XXH3_64bits_digest(st);
}

/*
 * Direct mode: the batch [base, base + len) - items at their offsets, zeros between
 * - copied through the stage and written half a stage at a time. While one half
 * goes out the next is filled, and each item's checksum is taken from the bytes
 * just copied: the disk never waits for the copy. One request at a time is under
 * way, as start()/finish() allow.
 */
static int write_staged(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
			uint64_t base, uint64_t len, unsigned *nreq)
{
	const size_t half = s->stage_bytes / 2;
	XXH3_state_t *st = XXH3_createState();	/* an item that spans halves */
	struct iovec iov[2];
	struct spill_io io[2];
	bool busy[2] = { false, false };
	uint64_t pos = 0;
	unsigned k = 0, h = 0, i;
	int err = st ? 0 : -ENOMEM;

	while (pos < len && !err) {
		unsigned char *stage = (unsigned char *)s->stage + h * half;
		size_t chunk = len - pos < half ? (size_t)(len - pos) : half, fill = 0;

		while (fill < chunk) {
			uint64_t at = pos + fill, start, c;

			if (k < n && at >= items[k].off - base + items[k].len) {
				k++;
				continue;
			}
			start = k < n ? items[k].off - base : len;
			if (at < start) {	/* padding */
				c = start - at < chunk - fill ? start - at : chunk - fill;
				memset(stage + fill, 0, c);
			} else {
				c = items[k].len - (at - start);
				if (c > chunk - fill)
					c = chunk - fill;
				memcpy(stage + fill, (char *)items[k].data + (at - start), c);
				sum_piece(&items[k], st, stage + fill, at - start, c);
			}
			fill += c;
		}
		if (busy[h ^ 1]) {
			s->ops->finish(s->ctx, true, &io[h ^ 1]);
			busy[h ^ 1] = false;
			err = io[h ^ 1].err;
			if (err)
				break;
		}
		iov[h] = (struct iovec){ stage, chunk };
		io[h] = (struct spill_io){ .iov = &iov[h], .iovcnt = 1, .off = base + pos,
					   .len = chunk };
		if (seg_place(s, &io[h])) {
			s->ops->start(s->ctx, true, &io[h]);
			busy[h] = true;
		} else {
			/* Across a segment's end: in two, the plain way. */
			seg_submit(s, s->ops, s->ctx, true, &io[h], 1);
			err = io[h].err;
		}
		(*nreq)++;
		pos += chunk;
		h ^= 1;
	}
	for (i = 0; i < 2; i++) {
		if (!busy[i])
			continue;
		s->ops->finish(s->ctx, true, &io[i]);
		if (!err)
			err = io[i].err;
	}
	XXH3_freeState(st);
	for (i = 0; i < n; i++)
		items[i].err = err;
	return err;
}

/*
 * Direct mode: one item, a piece of its enclosing blocks at a time through the
 * bounce buffer, whose huge pages make each read fast. Readers take turns there:
 * they would share the disk anyway.
 */
static int read_bounced(struct weft__spill *s, struct weft__spill_item *it)
{
	uint64_t a0 = it->off & ~(uint64_t)(BLOCK - 1), a1 = round_up(it->off + it->len, BLOCK);
	int err = 0;

	pthread_mutex_lock(&s->bounce_lock);
	for (uint64_t pos = a0; pos < a1 && !err;) {
		size_t c = a1 - pos < BOUNCE ? (size_t)(a1 - pos) : BOUNCE;
		struct iovec iov = { s->bounce, c };
		struct spill_io io = { .iov = &iov, .iovcnt = 1, .off = pos, .len = c };
		uint64_t lo, hi;

		seg_submit(s, &spill_pread_ops, NULL, false, &io, 1);
		err = io.err;
		lo = pos > it->off ? pos : it->off;
		hi = pos + c < it->off + it->len ? pos + c : it->off + it->len;
		if (!err && hi > lo)
			memcpy((char *)it->data + (lo - it->off), (char *)s->bounce + (lo - pos),
			       hi - lo);
		pos += c;
	}
	pthread_mutex_unlock(&s->bounce_lock);
	return err;
}

int weft__spill_write(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total = 0, base;
	unsigned i, nreq = 0;
	int ret;

	if (!s || (!items && n))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!items[i].data || !items[i].len)
			return -EINVAL;
		total += span(items[i].len);
	}
	/*
	 * One range for the whole batch, so that it goes out as one request (or a
	 * stage at a time); direct I/O wants it in whole aligned blocks.
	 */
	uint64_t alloc_len = s->direct ? round_up(total, BLOCK) : total, start;

	pthread_mutex_lock(&s->lock);
	start = base = space_alloc(s, alloc_len, s->direct ? BLOCK : ITEM_ALIGN);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++) {
		items[i].off = base;
		base += span(items[i].len);
		items[i].err = 0;
	}
	/*
	 * Direct I/O goes through the stage even when the items could be written in
	 * place: their small pages make slow requests (see huge_map()), and copying
	 * costs less than that.
	 */
	ret = seg_make(s, start, alloc_len);
	if (ret) {
		;	/* no file to write to: nothing is kept, as below */
	} else if (s->direct) {
		ret = write_staged(s, items, n, start, alloc_len, &nreq);
	} else {
		for (i = 0; i < n; i++)
			items[i].sum = XXH3_64bits(items[i].data, items[i].len);
		ret = run(s, items, n, true, &nreq);
	}
	for (i = 0; i < n; i++)
		items[i].err = ret;
	pthread_mutex_lock(&s->lock);
	/* The rounding after the last item belongs to no item: free it now. */
	space_free(s, start + total, alloc_len - total);
	if (ret) {
		/* Nothing is kept: the caller still has every item in memory. */
		for (i = 0; i < n; i++)
			space_free(s, items[i].off, span(items[i].len));
	} else {
		s->st.bytes_written += total;
		s->st.items_written += n;
		s->st.live_bytes += total;
		s->st.writes += nreq;
		s->st.ns_writing += now_ns() - t0;
		s->wrote_ns = now_ns();
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Reads: every item must lie in the file. Return: 0 with *total set, or -EINVAL. */
static int read_check(struct weft__spill *s, const struct weft__spill_item *items,
		      unsigned n, uint64_t *total)
{
	if (!s || (!items && n))
		return -EINVAL;
	*total = 0;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < n; i++) {
		if (!items[i].data || !items[i].len || items[i].off + items[i].len > s->end) {
			pthread_mutex_unlock(&s->lock);
			return -EINVAL;
		}
		*total += items[i].len;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Reads: check what arrived against its checksum, and count it. Return: the first error. */
static int read_finish(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
		       uint64_t t0, uint64_t total, unsigned nreq)
{
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		/* Wrong bytes are an error on that item, never a result. */
		if (!items[i].err &&
		    XXH3_64bits(items[i].data, items[i].len) != items[i].sum)
			items[i].err = -EBADMSG;
		if (items[i].err && !ret)
			ret = items[i].err;
	}
	pthread_mutex_lock(&s->lock);
	s->st.bytes_read += total;
	s->st.items_read += n;
	s->st.reads += nreq;
	s->st.ns_reading += now_ns() - t0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int weft__spill_read(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total;
	unsigned i, nreq = 0;
	int ret = read_check(s, items, n, &total);

	if (ret)
		return ret;
	if (s->direct) {
		/* Through the bounce buffer, even when in place would do: as writes. */
		for (i = 0; i < n; i++)
			items[i].err = read_bounced(s, &items[i]);
		nreq = n;
	} else {
		run(s, items, n, false, &nreq);
	}
	return read_finish(s, items, n, t0, total, nreq);
}

/*
 * The enclosing blocks of items[from..) that fit in the stage together, as requests
 * into it (*at: where each item's blocks start there, SIZE_MAX if it is not in
 * this group). Direct mode only. Return: the item after the group.
 */
static unsigned stage_group(const struct weft__spill *s, const struct weft__spill_item *items,
			    unsigned from, unsigned n, size_t *at, struct iovec *iov,
			    struct spill_io *ios, unsigned *of, unsigned *nios)
{
	size_t used = 0;
	unsigned i;

	*nios = 0;
	for (i = from; i < n; i++) {
		uint64_t off = items[i].off & ~(uint64_t)(BLOCK - 1);
		size_t len = round_up(items[i].off + items[i].len, BLOCK) - off;

		at[i] = SIZE_MAX;
		if (len > s->stage_bytes)
			continue;	/* larger than the stage: read alone */
		if (used + len > s->stage_bytes)
			break;
		at[i] = used;
		iov[*nios] = (struct iovec){ (char *)s->stage + used, len };
		ios[*nios] = (struct spill_io){ .iov = &iov[*nios], .iovcnt = 1, .off = off,
						.len = len };
		of[(*nios)++] = i;
		used += len;
	}
	return i;
}

int weft__spill_read_ahead(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total;
	unsigned nios = 0, nreq = 0, i;
	struct iovec *iov;
	struct spill_io *ios;
	unsigned *of;		/* the item of each request */
	size_t *at;		/* where a staged item's blocks are in the stage */
	int ret = read_check(s, items, n, &total);

	if (ret)
		return ret;
	iov = malloc(n * sizeof(*iov));
	ios = malloc(n * sizeof(*ios));
	of = malloc(n * sizeof(*of));
	at = malloc(n * sizeof(*at));
	if (!iov || !ios || !of || !at) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < n; i++)
		items[i].err = 1;	/* not read yet */
	if (!s->direct) {
		/* Buffered: straight into the items' memory, all at once. */
		for (i = 0; i < n; i++) {
			iov[i] = (struct iovec){ items[i].data, items[i].len };
			ios[i] = (struct spill_io){ .iov = &iov[i], .iovcnt = 1,
						    .off = items[i].off, .len = items[i].len };
		}
		seg_submit(s, s->ops, s->ctx, false, ios, n);
		for (i = 0; i < n; i++)
			items[i].err = ios[i].err;
		nreq = n;
	}
	/*
	 * Direct: through the stage, a stageful at a time, even when an item could
	 * take the bytes itself. The stage's huge pages make the requests fast; the
	 * copy out costs far less than reading into small pages.
	 */
	for (unsigned from = 0; s->direct && from < n;) {
		unsigned next = stage_group(s, items, from, n, at, iov, ios, of, &nios);

		seg_submit(s, s->ops, s->ctx, false, ios, nios);
		nreq += nios;
		for (unsigned r = 0; r < nios; r++) {
			struct weft__spill_item *it = &items[of[r]];

			it->err = ios[r].err;
			if (!it->err)
				memcpy(it->data, (char *)s->stage + at[of[r]] +
				       (it->off & (BLOCK - 1)), it->len);
		}
		from = next;
	}
	for (i = 0; i < n; i++) {
		if (items[i].err != 1)
			continue;
		nreq++;
		items[i].err = read_bounced(s, &items[i]);
	}
out_free:
	if (ret)
		for (i = 0; i < n; i++)
			items[i].err = ret;
	free(at);
	free(of);
	free(ios);
	free(iov);
	return ret ? ret : read_finish(s, items, n, t0, total, nreq);
}

void weft__spill_release(struct weft__spill *s, uint64_t off, size_t len)
{
	pthread_mutex_lock(&s->lock);
	space_free(s, off, span(len));
	s->st.live_bytes -= span(len);
	if (!s->no_trim && s->nrel == s->rel_cap) {
		size_t cap = s->rel_cap ? 2 * s->rel_cap : 256;
		struct range *r = realloc(s->rel, cap * sizeof(*r));

		if (r) {
			s->rel = r;
			s->rel_cap = cap;
		}
	}
	if (!s->no_trim && s->nrel < s->rel_cap) {	/* else freed at close */
		s->rel[s->nrel++] = (struct range){ off, span(len) };
		s->released += span(len);
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- trimming ---- */

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sort and merge the writer's work list in place. */
static void work_merge(struct weft__spill *s)
{
	size_t n = 0;

	qsort(s->work, s->nwork, sizeof(*s->work), range_cmp);
	for (size_t i = 0; i < s->nwork; i++) {
		struct range *last = n ? &s->work[n - 1] : NULL;

		if (last && s->work[i].off <= last->off + last->len) {
			uint64_t e = s->work[i].off + s->work[i].len;

			if (e > last->off + last->len)
				last->len = e - last->off;
		} else {
			s->work[n++] = s->work[i];
		}
	}
	s->nwork = n;
	s->work_at = 0;
}

/*
 * Punch out [off, off + len) of the file's space, whole blocks only (a partial one
 * is zeroed, not freed), segment by segment. Return: bytes punched; *cannot is set
 * if the file system never will.
 */
static uint64_t punch(struct weft__spill *s, uint64_t off, uint64_t len, bool *cannot)
{
	uint64_t a = round_up(off, BLOCK), b = (off + len) & ~(uint64_t)(BLOCK - 1);
	uint64_t done = 0, base, size;

	for (uint64_t at = a; at < b && !*cannot; at = base + size) {
		int fd = seg_fd(s, seg_of(s, at, &base, &size));
		uint64_t e = b < base + size ? b : base + size;

		if (fd < 0)
			continue;	/* never written: nothing to free */
		if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(at - base), (off_t)(e - at)))
			done += e - at;
		else
			*cannot = errno == EOPNOTSUPP || errno == ENOSYS;
	}
	return done;
}

/*
 * The trimmer: punches out the ranges the writer reserved, then frees them again.
 * While it punches a segment, reads of that segment wait for the discards; reads
 * of the others, and the writer, go on.
 */
static void *trimmer_main(void *arg)
{
	struct weft__spill *s = arg;

	pthread_setname_np(pthread_self(), "weft-trim");
	pthread_mutex_lock(&s->lock);
	while (!s->trim_stop) {
		struct trim_job j;
		bool cannot = false;
		uint64_t done;

		if (s->jobs_at == s->njobs) {
			s->jobs_at = s->njobs = 0;
			pthread_cond_wait(&s->trim_wake, &s->lock);
			continue;
		}
		j = s->jobs[s->jobs_at++];
		pthread_mutex_unlock(&s->lock);
		done = punch(s, j.off, j.len, &cannot);
		pthread_mutex_lock(&s->lock);
		space_free(s, j.off, j.len);	/* the writer may use it again */
		s->trim_pending -= j.len;
		s->st.trimmed_bytes += done;
		if (!s->trim_pending)
			pthread_cond_broadcast(&s->trim_idle);
		if (cannot)
			s->no_trim = true;	/* then releases stop keeping their ranges */
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* With the lock held: reserve [off, off + len), which is free, and queue its punch. */
static int trim_queue(struct weft__spill *s, uint64_t off, uint64_t len)
{
	if (!s->trimmer_on) {
		if (pthread_create(&s->trimmer, NULL, trimmer_main, s))
			return -EAGAIN;
		s->trimmer_on = true;
	}
	if (s->njobs == s->jobs_cap) {
		size_t cap = s->jobs_cap ? 2 * s->jobs_cap : TRIM_CUTS;
		struct trim_job *j = realloc(s->jobs, cap * sizeof(*j));

		if (!j)
			return -ENOMEM;
		s->jobs = j;
		s->jobs_cap = cap;
	}
	space_take(s, off, len);
	s->jobs[s->njobs++] = (struct trim_job){ off, len };
	s->trim_pending += len;
	pthread_cond_signal(&s->trim_wake);
	return 0;
}

/*
 * Only the writer allocates space, and it is the caller: what is free when the
 * cuts are chosen under the lock is reserved for the trimmer until punched (the
 * writer cannot use it meanwhile). Of what was released, only what is still free
 * is cut: the writer may have used some of it again since. Nothing is queued
 * while the trimmer has TRIM_AHEAD slices to do, nor until writes have paused.
 */
uint64_t weft__spill_trim(struct weft__spill *s, uint64_t due, uint64_t budget)
{
	uint64_t planned = 0;
	size_t ncut = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->no_trim || s->trim_pending >= TRIM_AHEAD * budget ||
	    now_ns() - s->wrote_ns < s->trim_quiet_ns ||
	    (s->work_at == s->nwork && (!s->nrel || s->released < due))) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (s->work_at == s->nwork) {
		free(s->work);
		s->work = s->rel;
		s->nwork = s->nrel;
		s->rel = NULL;
		s->nrel = s->rel_cap = 0;
		s->released = 0;
		work_merge(s);
	}
	while (s->work_at < s->nwork && planned < budget && ncut < TRIM_CUTS) {
		struct range *w = &s->work[s->work_at];
		size_t f = free_after(s, w->off);
		uint64_t a, b, fa, fb, wend;

		if (!w->len || f == s->nfree || s->free[f].off >= w->off + w->len) {
			s->work_at++;	/* done, or what is left was used again */
			continue;
		}
		fa = s->free[f].off;
		fb = fa + s->free[f].len;
		wend = w->off + w->len;
		a = fa > w->off ? fa : w->off;
		b = fb < wend ? fb : wend;
		if (b - a > budget - planned)
			b = a + (budget - planned);	/* the rest next time */
		/*
		 * Out to whole blocks while they are free: a block that two released
		 * items share is freed with the second.
		 */
		a = fa > (a & ~(uint64_t)(BLOCK - 1)) ? fa : a & ~(uint64_t)(BLOCK - 1);
		b = fb < round_up(b, BLOCK) ? fb : round_up(b, BLOCK);
		if (trim_queue(s, a, b - a))
			break;				/* not queued: later */
		ncut++;
		planned += b - a;
		w->off = b < wend ? b : wend;
		w->len = wend - w->off;
	}
	pthread_mutex_unlock(&s->lock);
	return planned;
}

#ifdef WEFT_TESTING
void weft__spill_trim_wait(struct weft__spill *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->trim_pending && s->trimmer_on)
		pthread_cond_wait(&s->trim_idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

uint64_t weft__spill_disk_bytes(struct weft__spill *s)
{
	uint64_t bytes = 0;
	struct stat st;

	for (unsigned i = 0; i < MAX_SEGS; i++) {
		int fd = seg_fd(s, i);

		if (fd >= 0 && !fdatasync(fd) && !fstat(fd, &st))
			bytes += (uint64_t)st.st_blocks * 512;
	}
	return bytes;
}
#endif /* WEFT_TESTING */
