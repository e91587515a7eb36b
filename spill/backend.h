/* SPDX-License-Identifier: MIT */
/* backend.h - what spill.c asks of an I/O backend (uring.c, pread.c). */
#ifndef WEFT_SPILL_BACKEND_H
#define WEFT_SPILL_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One vectored request: all of iov, at off in fd. */
struct spill_io {
	int fd;
	struct iovec *iov;
	int iovcnt;
	uint64_t off;
	size_t len;			/* sum of the iov lengths */
	int err;			/* out: 0, or -errno (a short transfer is -EIO) */
};

struct spill_ops {
	const char *name;
	/* Return: 0, or -errno (-EOPNOTSUPP: this backend cannot run here). */
	int (*init)(void **ctx);
	void (*fini)(void *ctx);
	/* Carry out every request, all of it or with its error; requests run at once. */
	void (*submit)(void *ctx, bool write, struct spill_io *ios, unsigned n);
	/*
	 * One request in two steps, so that the caller can work while it is under
	 * way: start() (which may do it all) and finish(), which completes it.
	 * Nothing else may use the backend in between.
	 */
	void (*start)(void *ctx, bool write, struct spill_io *io);
	void (*finish)(void *ctx, bool write, struct spill_io *io);
};

extern const struct spill_ops spill_uring_ops;
extern const struct spill_ops spill_pread_ops;

#endif
