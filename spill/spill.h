/* SPDX-License-Identifier: MIT */
/*
 * spill.h - a spill file: results written out in batches and read back, each with a
 * checksum, its space reused once released. The file is made of segment files with
 * no names (O_TMPFILE, or unlinked at once), so it disappears when closed, even if
 * the process dies.
 *
 * Two backends behind this contract: io_uring (uring.c) and pread/pwrite (pread.c),
 * chosen at run time. spill/ knows nothing of tasks; the engine decides what to
 * spill and when.
 */
#ifndef WEFT_SPILL_H
#define WEFT_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum weft__spill_backend {
	WEFT_SPILL_AUTO,		/* io_uring if the kernel allows it, else pread */
	WEFT_SPILL_URING,
	WEFT_SPILL_PREAD,
};

struct weft__spill;

/* One result to write or to read back. */
struct weft__spill_item {
	void *data;			/* write: the bytes; read: where they go */
	size_t len;			/* > 0 */
	uint64_t off;			/* write: set; read: as the write set it */
	uint64_t sum;			/* write: set (xxh3); read: checked */
	int err;			/* 0, -EIO, -EBADMSG (checksum mismatch), ... */
};

struct weft__spill_stats {
	uint64_t bytes_written, bytes_read;
	uint64_t items_written, items_read;
	uint64_t writes, reads;		/* I/O requests issued (after fusing) */
	uint64_t ns_writing, ns_reading;
	uint64_t file_bytes;		/* the file's size */
	uint64_t live_bytes;		/* written and not released */
	uint64_t trimmed_bytes;		/* released space punched out */
};

/*
 * The stage that direct I/O goes through: a power of two between these. Reads
 * back ahead go out a stageful at a time and writes half a stage at a time, and
 * disks serve larger requests faster; a small memory limit keeps a small one.
 */
#define WEFT__SPILL_STAGE_MIN ((size_t)2 << 20)
#define WEFT__SPILL_STAGE_MAX ((size_t)16 << 20)

/* The stage for an engine of @memory_limit bytes: 1/32 of it, within the bounds. */
size_t weft__spill_stage_for(size_t memory_limit);

/*
 * weft__spill_open() - A spill file in @dir, with a stage of @stage bytes (0: the
 * largest), a power of two from WEFT__SPILL_STAGE_MIN to WEFT__SPILL_STAGE_MAX,
 * written with O_DIRECT when @direct and the file system takes it.
 * Return: 0, -EINVAL, -errno of the directory (-ENOENT, -EROFS, ...), -ENOMEM, or
 * -EOPNOTSUPP when @backend is WEFT_SPILL_URING and io_uring cannot be used.
 */
int weft__spill_open(const char *dir, enum weft__spill_backend backend, bool direct,
		     size_t stage, struct weft__spill **out)
	__attribute__((warn_unused_result));
/* The file's stage in bytes, as opened (also when it reads through the page cache). */
size_t weft__spill_stage(const struct weft__spill *s);
/*
 * 0 if a spill file can be made in @dir; else -ENOENT (no such directory), -ENOTDIR,
 * -EACCES, -EROFS, -EOPNOTSUPP (its file system makes no files), ...
 */
int weft__spill_dir_check(const char *dir) __attribute__((warn_unused_result));
/* Closes (and so removes) the file. NULL does nothing. */
void weft__spill_close(struct weft__spill *s);
const char *weft__spill_backend_name(const struct weft__spill *s);
/* True when the file is written with O_DIRECT (off with $WEFT_SPILL_DIRECT=0, or on
 * filesystems that refuse it, such as tmpfs). */
bool weft__spill_direct(const struct weft__spill *s);

/*
 * Concurrency: one thread at a time may write; reads and releases may come from
 * any thread, alongside a write.
 *
 * weft__spill_write() - Write @n items as one batch: their space is contiguous when
 * the file allows, and they go out as few large writes (direct I/O: through the
 * staging buffer, half of it filled while the other half is written).
 * Return: 0, with off and sum set in each item; or -errno (-ENOSPC, -EIO, ...), in
 * which case nothing is kept: every item's space is released again.
 */
int weft__spill_write(struct weft__spill *s, struct weft__spill_item *items, unsigned n);

/*
 * weft__spill_read() - Read @n items back and check each checksum. Direct I/O
 * reads them through a bounce buffer (huge pages) that readers take turns at.
 * Return: 0 if every item was read intact, else the first item error; each item's
 * err says how it fared (a short read is -EIO, a wrong checksum -EBADMSG).
 */
int weft__spill_read(struct weft__spill *s, struct weft__spill_item *items, unsigned n);

/*
 * weft__spill_read_ahead() - weft__spill_read() from the thread that writes: the
 * items' requests go to the disk together through the backend, so the disk sees
 * many at once. Direct I/O reads them through the writer's staging buffer (huge
 * pages), a stageful at a time; an item larger than it goes alone.
 * Return: as weft__spill_read().
 */
int weft__spill_read_ahead(struct weft__spill *s, struct weft__spill_item *items,
			   unsigned n);

/* The space of a written item may be reused. */
void weft__spill_release(struct weft__spill *s, uint64_t off, size_t len);

/*
 * weft__spill_trim() - From the thread that writes: hand released space back to the
 * file system, once @due bytes were released since the last round of trims began
 * and writes have paused for half a second. Up to about @budget bytes of what was
 * released and is still free are reserved and queued for the trimmer thread,
 * which punches them out and frees them again; nothing is queued while it has a
 * few budgets to do. A file system that discards freed blocks (ext4 -o discard)
 * takes a second or more per GiB to free them, and without trims the file's close
 * pays for all of it at once. Return: bytes queued (0: not due, writes not paused,
 * nothing left, the trimmer busy, or the file system cannot).
 */
uint64_t weft__spill_trim(struct weft__spill *s, uint64_t due, uint64_t budget);

#ifdef WEFT_TESTING
/* For tests: wait until the trimmer has punched out everything queued. */
void weft__spill_trim_wait(struct weft__spill *s);
/* For tests: bytes of disk the segment files hold, after flushing them. */
uint64_t weft__spill_disk_bytes(struct weft__spill *s);

/*
 * For tests, before the first write: segments of 2^@shift bytes (12 to 40) instead
 * of 256 MiB, so that items and requests cross their ends. Return: 0, -EINVAL,
 * -EBUSY once written.
 */
int weft__spill_set_segment_shift(struct weft__spill *s, unsigned shift);
/* For tests: trims wait @ns after a write (half a second otherwise). */
void weft__spill_set_trim_quiet(struct weft__spill *s, uint64_t ns);
#endif

void weft__spill_stats(struct weft__spill *s, struct weft__spill_stats *out);

/* The first segment's file (benchmarks flush it; tests damage it). */
int weft__spill_fd(const struct weft__spill *s);

#endif /* WEFT_SPILL_H */
