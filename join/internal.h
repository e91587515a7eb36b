/* SPDX-License-Identifier: MIT */
/* join/ internals: inputs, records, the output file and the progress bar. */
#ifndef WEFT_JOIN_INTERNAL_H
#define WEFT_JOIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "join.h"

struct weft_client;

/*
 * A record is how a row travels through the graph: its key, then what the join
 * needs of the rest of the row. Counting needs only the word after the key (16
 * bytes in all); writing rows needs the rest of the row: for bin the row without
 * its key, for csv a 4-byte length and the row's text without its key field.
 *
 * CSV records have room for rest_cap bytes of text, chosen from the rows' lengths
 * (csv_rest_cap) so that memory and spill follow the input's bytes, not its rows
 * times its longest row. A longer row's record holds, with CSV_REF in its length,
 * where the row is in the file instead (csv_ref); the row is read again when it
 * is written out.
 */
#define REC_KEY 8
#define CSV_REF 0x80000000u		/* in a csv record's length: a csv_ref follows */

struct csv_ref {
	uint64_t off;			/* the row's first byte in the file */
	uint32_t len;			/* its bytes, without the line end */
} __attribute__((packed));

/* A run of whole rows of a file, the unit a partition task reads. */
struct chunk {
	uint64_t off, len;		/* bytes of the file */
	uint64_t first_row;		/* 1-based number of its first row */
	uint64_t rows;
};

struct side {
	const struct join_input *in;
	const char *name;		/* "left" or "right" */
	int fd;
	int dfd;			/* the file opened with O_DIRECT, or -1 */
	uint64_t size;			/* bytes of the file */
	uint64_t rows;
	unsigned width;			/* bytes per record */
	bool raw;			/* records are the rows as read (bin, key first) */

	/* bin */
	unsigned row_bytes, key_offset;

	/* csv */
	unsigned key_col;		/* 0-based */
	unsigned nfields;		/* fields of the first line */
	char *key_title;		/* the key column's header */
	char *rest_title;		/* the header without it */
	size_t max_rest;		/* longest row text without its key field */
	size_t max_row;			/* longest row text */
	unsigned rest_cap;		/* text a record holds; longer rows go by csv_ref */

	struct chunk *chunks;
	size_t nchunks;
};

/* Sides: open, check and cut into chunks of at most @chunk_bytes (input.c). */
int side_open(struct side *s, const struct join_input *in, const char *name,
	      enum join_format fmt, bool count_only, size_t chunk_bytes,
	      char *err, size_t errlen);
void side_close(struct side *s);

/*
 * Turn @c's bytes @buf into records at @out (room for c->rows records).
 * Return: 0, or -EBADMSG with @err naming the file and row.
 */
int side_records(const struct side *s, enum join_format fmt, bool count_only,
		 const struct chunk *c, const char *buf, char *out,
		 char *err, size_t errlen);

/*
 * The text of a row without its key field, for a record that holds a csv_ref:
 * read from @s's file into @out (room for s->max_row bytes), then moved to its
 * start. Return: its length, or -EBADMSG (the file changed) or -errno.
 */
long csv_ref_rest(const struct side *s, const struct csv_ref *ref, char *out);

/*
 * Reading chunks (reader.c). side_choose_reads() opens the file for O_DIRECT unless
 * @direct is -1 or, when it is 0, the page cache holds most of the file.
 * chunk_read() reads @c into @buf (chunk_room() bytes, page-aligned) and points
 * @data at its first byte. Return: 0, -ENODATA when the file ends first, -errno.
 */
void side_choose_reads(struct side *s, int direct);
size_t chunk_room(const struct chunk *c);
int chunk_read(const struct side *s, const struct chunk *c, char *buf, const char **data);

/*
 * The reader threads: with @nbufs buffers, they read the chunks of the sides read
 * with O_DIRECT (reader_launches()), in order, and submit each chunk's task with
 * @launch(@launch_arg, side, chunk) once the chunk is read and reader_go() was
 * called, so that no worker waits for the disk. reader_launched() waits for that
 * submission and returns its error (-ECANCELED when the reader stopped first).
 *
 * reader_get() gives chunk @ci of side @s (number @side): from the reader, with
 * *held to give back with reader_put() once used, or read now into @own (a side
 * read through the page cache, no reader, or a task's second try).
 * reader_halt() stops reading and launching; reader_free() (after the tasks that
 * take chunks have ended) frees the buffers.
 */
struct reader;
typedef int reader_launch_fn(void *arg, unsigned side, size_t chunk);
int reader_start(struct reader **out, const struct side *left, const struct side *right,
		 unsigned nbufs, reader_launch_fn *launch, void *launch_arg);
bool reader_launches(const struct reader *r, const struct side *s);
void reader_go(struct reader *r);
int reader_launched(struct reader *r, unsigned side, size_t ci);
int reader_get(struct reader *r, const struct side *s, unsigned side, size_t ci,
	       char *own, const char **data, char **held);
void reader_put(struct reader *r, char *held);
void reader_halt(struct reader *r);
void reader_free(struct reader *r);

/* Parse a decimal int64 (optional sign, quotes and blanks around). 0 or -ERANGE/-EINVAL. */
int parse_key(const char *p, size_t len, int64_t *out);

static inline uint64_t rec_key(const char *rec)
{
	uint64_t k;

	memcpy(&k, rec, 8);
	return k;
}

static inline uint64_t rec_word(const char *rec)
{
	uint64_t w;

	memcpy(&w, rec + REC_KEY, 8);
	return w;
}

/* The joined rows' file (output.c). */
struct writer {
	int fd;
	pthread_mutex_t lock;
	char *path;			/* the file renamed over, or the one given */
	char *tmp;			/* the temporary file; NULL when written in place */
	uint64_t bytes;
	int err;			/* first write error, a negative errno */
};

/*
 * Open the output @path. A regular file (or a new one) is written through a
 * temporary file beside it, which writer_close renames over it; a symbolic link
 * is followed, so that the file it names is replaced, not the link. Written in place
 * (appended to): a device, a pipe, a socket, "-" for standard output, a link into
 * /proc such as /dev/stdout, and anything under /proc. Refused, with *@usage set: a
 * directory, and the same file as @in_fds[0] or [1] (the inputs), by any path.
 */
int writer_open(struct writer *w, const char *path, const int in_fds[2],
		const char *const in_names[2], bool *usage, char *err, size_t errlen);
int writer_put(struct writer *w, const void *buf, size_t len);
/* Keep the file (rename over its path) if @ok, else remove it. */
int writer_close(struct writer *w, bool ok, char *err, size_t errlen);
/* The output of the join in progress, if any, is what join_abandon() removes. */

/* The progress bar (output.c): a thread that redraws one line of stderr. */
struct progress {
	_Atomic uint64_t done, total;	/* bytes of the current phase */
	const char *_Atomic phase;
	_Atomic double phase_t0;	/* when it began */
	bool on;
	atomic_bool stop;
	pthread_mutex_t draw;		/* one line at a time */
	pthread_t thread;
};

void progress_start(struct progress *p, bool on);
void progress_phase(struct progress *p, const char *phase, uint64_t total);
void progress_stop(struct progress *p);

double join_now(void);

/* The stall watch (watch.c): runs spec->on_stall, if set, while spilling is blocked. */
struct watch {
	struct weft_client *c;
	const struct join_spec *spec;
	atomic_bool stop;
	bool on;
	pthread_t thread;
};

void watch_start(struct watch *w, struct weft_client *c, const struct join_spec *spec);
void watch_stop(struct watch *w);

#endif /* WEFT_JOIN_INTERNAL_H */
