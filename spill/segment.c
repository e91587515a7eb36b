// SPDX-License-Identifier: MIT
/* segment.c - the segment files, and where a request goes among them. */
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

#include "internal.h"

/* ---- files ---- */

int weft__spill_create_file(const char *dir, bool *direct)
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
	fd = weft__spill_create_file(dir, &direct);
	if (fd < 0)
		return fd == -ENOENT ? -EOPNOTSUPP : fd;
	close(fd);
	return 0;
}

/* ---- segments ---- */

/* The segment that holds @off: its index, and where it starts in the file's space. */
unsigned weft__spill_seg_of(const struct weft__spill *s, uint64_t off, uint64_t *base,
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

int weft__spill_seg_fd(const struct weft__spill *s, unsigned i)
{
	/* Acquire pairs with the release in weft__spill_seg_make(): the file is open. */
	return i < MAX_SEGS ? atomic_load_explicit(&s->seg[i], memory_order_acquire) : -1;
}

/* From the writer: make the segments that [off, off + len) needs. Return: 0, -errno. */
int weft__spill_seg_make(struct weft__spill *s, uint64_t off, uint64_t len)
{
	uint64_t base, size;

	for (uint64_t at = off; at < off + len; at = base + size) {
		unsigned i = weft__spill_seg_of(s, at, &base, &size);
		bool direct = s->direct;
		int fd;

		if (i >= MAX_SEGS)
			return -EFBIG;
		if (weft__spill_seg_fd(s, i) >= 0)
			continue;
		fd = weft__spill_create_file(s->dir, &direct);
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
bool weft__spill_seg_place(const struct weft__spill *s, struct spill_io *io)
{
	uint64_t base, size;
	unsigned i = weft__spill_seg_of(s, io->off, &base, &size);

	if (io->off + io->len > base + size)
		return false;
	io->fd = weft__spill_seg_fd(s, i);
	io->off -= base;
	return true;
}

/*
 * Carry out @ios, whose offsets are in the file's space, on the segments' files
 * through @ops: a request that crosses a segment's end is cut there. The requests'
 * offsets and iovecs are used up. A request into a segment never written is -EIO.
 */
void weft__spill_seg_submit(struct weft__spill *s, const struct spill_ops *ops, void *ctx,
		       bool write, struct spill_io *ios, unsigned n)
{
	unsigned npieces = 0, niov = 0, m = 0, k = 0;
	struct spill_io *pc;
	struct iovec *iov;
	unsigned *of;
	uint64_t base, size;

	for (unsigned i = 0; i < n; i++) {
		unsigned first = weft__spill_seg_of(s, ios[i].off, &base, &size);
		unsigned last = ios[i].len ? weft__spill_seg_of(s, ios[i].off + ios[i].len - 1, &base, &size) :
			        first;

		npieces += last - first + 1;
		niov += ios[i].iovcnt + last - first;
	}
	if (npieces == n) {
		/* The usual case: each request in one segment. */
		for (unsigned i = 0; i < n; i++)
			(void)weft__spill_seg_place(s, &ios[i]);
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
			unsigned si = weft__spill_seg_of(s, at, &base, &size);
			uint64_t take = base + size - at < left ? base + size - at : left;

			pc[m] = (struct spill_io){ .fd = weft__spill_seg_fd(s, si), .iov = &iov[k],
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
