// SPDX-License-Identifier: MIT
/* pread.c - the spill backend of last resort: pwritev/preadv, one request at a time. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "backend.h"

static int pread_init(void **ctx)
{
	*ctx = NULL;
	return 0;
}

static void pread_fini(void *ctx)
{
	(void)ctx;
}

/* All of one request: resume after short transfers, stop at an error or EOF. */
static int transfer(bool write, struct spill_io *io)
{
	int fd = io->fd;
	struct iovec *iov = io->iov;
	int cnt = io->iovcnt;
	uint64_t off = io->off;

	while (cnt > 0) {
		ssize_t r = write ? pwritev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off)
				  : preadv(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;		/* reading past the end: the file shrank */
		off += (uint64_t)r;
		while (cnt > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			/* Partway through an iovec: step into it (it is ours to change). */
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static void pread_submit(void *ctx, bool write, struct spill_io *ios, unsigned n)
{
	(void)ctx;
	for (unsigned i = 0; i < n; i++)
		ios[i].err = transfer(write, &ios[i]);
}

static void pread_start(void *ctx, bool write, struct spill_io *io)
{
	pread_submit(ctx, write, io, 1);
}

static void pread_finish(void *ctx, bool write, struct spill_io *io)
{
	(void)ctx;
	(void)write;
	(void)io;
}

const struct spill_ops spill_pread_ops = {
	.name = "pread",
	.init = pread_init,
	.fini = pread_fini,
	.submit = pread_submit,
	.start = pread_start,
	.finish = pread_finish,
};
