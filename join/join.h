/* SPDX-License-Identifier: MIT */
/*
 * join/ - an out-of-core equi-join of two tables on a 64-bit integer key, run as a
 * task graph on weft. Written only against weft.h. weft-join (tools/weft-join.c)
 * is its command line; tests and benchmarks call join_run() directly.
 */
#ifndef WEFT_JOIN_H
#define WEFT_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum join_format {
	JOIN_BIN,		/* fixed-width rows, little-endian int64 key */
	JOIN_CSV,		/* a header line, then comma-separated rows */
};

/* Where one input is and how its rows look. */
struct join_input {
	const char *path;
	unsigned row_bytes;	/* bin: bytes per row; 0 means 16 */
	unsigned key_offset;	/* bin: where the key starts in a row */
	const char *key_name;	/* csv: the key column's name; NULL: see key_column */
	unsigned key_column;	/* csv: 1-based column when key_name is NULL; 0 means 1 */
	bool no_header;		/* csv: the first line is a row; columns are named 1..n */
	bool ragged;		/* csv: rows may have other field counts than the first
				 * line: short ones get empty fields at the end, long
				 * ones keep theirs. Else such a row is refused. */
};

struct join_spec {
	struct join_input left, right;
	enum join_format format;	/* of the inputs and of the output */
	size_t memory_limit;		/* bytes; 0: the engine's default */
	unsigned nthreads;		/* 0: one per core */
	const char *spill_dir;		/* NULL: the engine's default */
	const char *output;		/* joined rows go here; NULL: count only */
	bool progress;			/* draw a progress bar on stderr */
	unsigned partitions;		/* tests: force the fan-out of every level (power of 2) */
	size_t task_bytes;		/* tests: most input bytes of one task; 0: from the limit */
	int direct;			/* 1 reads the inputs with O_DIRECT, -1 through the
					 * page cache; 0: O_DIRECT unless mostly cached */
	/*
	 * Called from a join thread, with a message naming the spill directory, once
	 * spilling has been blocked (a full disk, an I/O error) for @spill_wait
	 * seconds; again after as long if it returns. NULL: the join waits for the
	 * space to come back, as the engine does. weft-join exits from it.
	 */
	void (*on_stall)(const char *why);
	double spill_wait;
	/*
	 * Written once the join's tasks have ended, whether it succeeded or not (NULL:
	 * not): the engine's performance report (weft_report) and its trace
	 * (weft_trace). A file that cannot be written fails a join that succeeded.
	 */
	const char *report, *trace;
};

struct join_result {
	uint64_t rows;			/* joined rows */
	uint64_t left_sum;		/* counting only: wrapping sums of the word */
	uint64_t right_sum;		/* after each joined row's key */
	uint64_t left_rows, right_rows;	/* input rows */
	uint64_t input_bytes;		/* bytes of both files */
	double seconds;			/* from open to the last row */
	uint64_t spilled_bytes;		/* written to the spill file */
	uint64_t restored_bytes;	/* read back from it */
	size_t mem_peak;		/* the engine's peak of results in memory */
	size_t memory_limit;		/* the limit in force */
	size_t engine_limit;		/* the part of it given to the engine's results */
	unsigned nthreads;
	unsigned threads_asked;		/* when the limit capped nthreads: the threads
					 * asked for (each needs its share of it); else 0 */
	unsigned partitions;		/* the first level's fan-out */
	unsigned levels;		/* 1 + the deepest re-partitioning */
	unsigned block_joins;		/* partitions joined block by block (heavy keys) */
	unsigned resident_parts;	/* partitions joined while the right input was read */
	unsigned direct_inputs;		/* inputs read with O_DIRECT (not through the cache) */
	bool bad_input;			/* the error is in an input: missing or malformed */
	bool bad_usage;			/* the error is in the spec: a value out of range,
					 * an output that is a directory or an input */
	char error[1024];		/* on failure: what failed, naming the file and row */
};

/* The least memory limit a join accepts. */
#define JOIN_MIN_MEMORY (4u << 20)

/**
 * join_run() - Join spec->left with spec->right on their keys.
 *
 * With spec->output the joined rows are written to a temporary file beside it, which
 * is renamed over spec->output only when the join succeeds; on failure no file is
 * left. The counts and sums in @res are filled in either way.
 *
 * Return: 0; -EINVAL for a bad spec (res->error says why); a negative errno or WEFT_E*
 * code when an input is missing or malformed, an I/O error or a task failure (the
 * message in res->error names the file and, for bad data, the row).
 */
int join_run(const struct join_spec *spec, struct join_result *res);

/*
 * For a process about to exit in the middle of a join (a signal, a stall): removes
 * the temporary file of the output being written, if any, and keeps the join from
 * renaming it. Any thread; the join must not be returned to.
 */
void join_abandon(void);

/* @bytes for people, in B, KiB, MiB, GiB or TiB, e.g. "1.5 GiB". */
void join_human(char *buf, size_t n, double bytes);

/* The peak resident set of this process so far, in bytes (VmHWM). */
size_t join_peak_rss(void);

#endif /* WEFT_JOIN_H */
