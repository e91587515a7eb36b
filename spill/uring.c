// SPDX-License-Identifier: MIT
/*
 * uring.c - the io_uring spill backend (the only file that uses liburing): a batch
 * of vectored requests goes to the kernel in one submission, and short transfers
 * are resumed.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <liburing.h>

#include "backend.h"

#define RING_ENTRIES 64

static int uring_init(void **ctx)
{
	struct io_uring *ring = malloc(sizeof(*ring));
	int ret;

	if (!ring)
		return -ENOMEM;
	/* liburing returns -errno; ENOSYS or EPERM (seccomp) mean: not here. */
	ret = io_uring_queue_init(RING_ENTRIES, ring, 0);
	if (ret) {
		free(ring);
		return ret == -ENOMEM ? -ENOMEM : -EOPNOTSUPP;
	}
	*ctx = ring;
	return 0;
}

static void uring_fini(void *ctx)
{
	if (!ctx)
		return;
	io_uring_queue_exit(ctx);
	free(ctx);
}

/* A request moved forward by @done bytes; its iovecs are ours to change. */
static void advance(struct spill_io *io, size_t done)
{
	io->off += done;
	io->len -= done;
	while (io->iovcnt && done >= io->iov->iov_len) {
		done -= io->iov->iov_len;
		io->iov++;
		io->iovcnt--;
	}
	if (io->iovcnt) {
		io->iov->iov_base = (char *)io->iov->iov_base + done;
		io->iov->iov_len -= done;
	}
}

static void uring_submit(void *ctx, bool write, struct spill_io *ios, unsigned n)
{
	struct io_uring *ring = ctx;
	unsigned next = 0, inflight = 0, i;
	unsigned *redo = malloc(n * sizeof(*redo)), nredo = 0;

	for (i = 0; i < n; i++)
		ios[i].err = ios[i].len ? 1 : 0;	/* 1: not finished */
	while (next < n || inflight || nredo) {
		struct io_uring_cqe *cqe;
		int ret;

		/* Queue what fits: resumed requests first, then new ones. */
		while (inflight < RING_ENTRIES && (nredo || next < n)) {
			struct io_uring_sqe *sqe;
			struct spill_io *io;
			unsigned idx;

			if (nredo) {
				idx = redo[--nredo];
			} else {
				idx = next++;
				if (!ios[idx].len)
					continue;
			}
			io = &ios[idx];
			sqe = io_uring_get_sqe(ring);
			if (!sqe) {
				/* Full submission queue: push it back and submit. */
				if (redo)
					redo[nredo++] = idx;
				else
					next--;
				break;
			}
			if (write)
				io_uring_prep_writev(sqe, io->fd, io->iov,
						     io->iovcnt > IOV_MAX ? IOV_MAX : io->iovcnt,
						     io->off);
			else
				io_uring_prep_readv(sqe, io->fd, io->iov,
						    io->iovcnt > IOV_MAX ? IOV_MAX : io->iovcnt,
						    io->off);
			io_uring_sqe_set_data64(sqe, idx);
			inflight++;
		}
		if (!inflight)
			continue;	/* only empty requests were left */
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN) {
			/* The ring itself failed: fail what is left. */
			for (i = 0; i < n; i++)
				if (ios[i].err == 1)
					ios[i].err = ret;
			break;
		}
		while (inflight && !io_uring_peek_cqe(ring, &cqe)) {
			struct spill_io *io = &ios[io_uring_cqe_get_data64(cqe)];
			int res = cqe->res;

			io_uring_cqe_seen(ring, cqe);
			inflight--;
			if (res == -EINTR || res == -EAGAIN) {
				res = 0;	/* resubmit as it is */
			} else if (res < 0) {
				io->err = res;
				continue;
			} else if (res == 0) {
				io->err = -EIO;	/* past the end of the file */
				continue;
			}
			advance(io, (size_t)res);
			if (!io->len) {
				io->err = 0;
			} else if (redo) {
				redo[nredo++] = (unsigned)(io - ios);
			} else {
				io->err = -ENOMEM;
			}
		}
	}
	free(redo);
}

/* The request goes to the kernel; -EINPROGRESS marks it under way. */
static void uring_start(void *ctx, bool write, struct spill_io *io)
{
	struct io_uring *ring = ctx;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	int cnt = io->iovcnt > IOV_MAX ? IOV_MAX : io->iovcnt;

	io->err = 0;
	if (!sqe || !io->len)
		return;		/* finish() does it the plain way */
	if (write)
		io_uring_prep_writev(sqe, io->fd, io->iov, cnt, io->off);
	else
		io_uring_prep_readv(sqe, io->fd, io->iov, cnt, io->off);
	io_uring_sqe_set_data64(sqe, 0);
	if (io_uring_submit(ring) == 1)
		io->err = -EINPROGRESS;
}

static void uring_finish(void *ctx, bool write, struct spill_io *io)
{
	struct io_uring *ring = ctx;
	struct io_uring_cqe *cqe;
	int ret;

	if (io->err == -EINPROGRESS) {
		do {
			ret = io_uring_wait_cqe(ring, &cqe);
		} while (ret == -EINTR);
		if (ret) {
			io->err = ret;
			return;
		}
		ret = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN) {
			io->err = ret;
			return;
		}
		io->err = 0;
		if (ret > 0)
			advance(io, (size_t)ret);
	}
	/* Not started, or a short transfer: the rest the plain way. */
	if (io->len)
		uring_submit(ctx, write, io, 1);
}

const struct spill_ops spill_uring_ops = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.start = uring_start,
	.finish = uring_finish,
};
