/* SPDX-License-Identifier: MIT */
/*
 * weft.h - the public interface of weft, a task engine: submit functions with
 * dependencies, get futures, run task graphs on every core of this machine.
 *
 * Conventions: handles are opaque; functions return 0 or a negative errno (or one
 * of the WEFT_E* codes below); out-parameters are written only on success; an
 * options struct starts with its size so it can grow without breaking callers.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_API __attribute__((visibility("default")))

/* The version: the Makefile reads it from here, and the SONAME's number is MAJOR. */
#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_HEX							\
	((WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH)

/**
 * weft_version() - The version of the library the program runs with.
 *
 * Compare it with WEFT_VERSION_HEX, the version the program was built with.
 *
 * Context: any thread.
 * Return: (major << 16) | (minor << 8) | patch.
 */
WEFT_API unsigned weft_version(void);

/**
 * weft_version_string() - The same, as "major.minor.patch".
 *
 * Context: any thread.
 * Return: a static string; never NULL.
 */
WEFT_API const char *weft_version_string(void);

/* Errors beyond errno. */
#define WEFT_ETASK	(-4097)	/* the task function failed; see weft_future_error() */
#define WEFT_EKILLED	(-4098)	/* the task's worker died too often (the message says why) */
#define WEFT_ELOST	(-4099)	/* data lost and not recomputable (e.g. scattered data) */
#define WEFT_ENOFN	(-4100)	/* no task function of that name where it was to run */

/**
 * weft_strerror() - Describe an error code returned by weft.
 * @err: a negative errno or a WEFT_E* code (a positive errno is accepted too).
 *
 * Context: any thread.
 * Return: a static string; never NULL.
 */
WEFT_API const char *weft_strerror(int err);

/* A read-only view of bytes owned by weft. */
struct weft_buf {
	const void *data;		/* NULL when len is 0 */
	size_t len;
};

struct weft_ctx;			/* valid only during one run of a task */
struct weft_client;			/* see weft_client_open() */
struct weft_future;			/* one result of one task; see weft_submit() */

/**
 * typedef weft_fn - A task function.
 * @ctx:    this run's context; valid until the function returns.
 * @in:     in[i] is the result of the i-th dependency, read-only, valid until return.
 * @nin:    number of dependencies.
 * @arg:    a copy of the bytes given at submit (NULL when arglen is 0).
 * @arglen: their length.
 *
 * Return: 0 on success; weft_fail(ctx, ...) to fail with a message. Any other
 * non-zero value also fails the task, with a generic message naming the value.
 */
typedef int weft_fn(struct weft_ctx *ctx, const struct weft_buf *in, size_t nin,
		    const void *arg, size_t arglen);

/**
 * weft_register() - Make a task function callable by name.
 * @name: 1 to 255 bytes; copied.
 * @fn:   the function.
 *
 * The registry is process-wide and lives until the process exits.
 *
 * Context: any thread.
 * Return: 0, -EINVAL (NULL, empty or too long name, NULL fn), -EEXIST if the name
 * is taken (even by the same function), -ENOMEM.
 */
WEFT_API int weft_register(const char *name, weft_fn *fn);

/* Registers fn under the name #fn when the object that contains it is loaded. */
#define WEFT_TASK(fn)								\
	static void __attribute__((constructor)) weft_task_register_##fn(void)	\
	{									\
		(void)weft_register(#fn, fn);					\
	}

/**
 * weft_output() - The result buffer of the running task (its output 0).
 * @ctx: the task's context.
 * @len: the result's size in bytes; 0 makes an empty result.
 *
 * Calling it again replaces the earlier buffer. The buffer belongs to weft; the task
 * fills it before it returns. A task that never calls it has an empty result.
 * A buffer that would take the engine's results past the hard memory limit waits
 * while spilling makes room; if it cannot, NULL is returned and the task fails
 * with -ENOMEM and a message naming the limit, whatever the function returns.
 *
 * Context: only inside the task that owns @ctx.
 * Return: the buffer (8-byte aligned; small results need no allocation), or NULL if
 * @ctx is NULL, memory is exhausted or the hard limit reached, or @len is 0.
 */
WEFT_API void *weft_output(struct weft_ctx *ctx, size_t len);

/**
 * weft_output_n() - The buffer of output @i of a task submitted with noutputs = n.
 * @ctx: the task's context.
 * @i:   0 <= i < the task's output count (1 when noutputs was 0).
 * @len: the output's size; 0 makes it empty.
 *
 * Context: only inside the task that owns @ctx.
 * Return: as weft_output(); NULL too when @i is out of range.
 */
WEFT_API void *weft_output_n(struct weft_ctx *ctx, unsigned i, size_t len);

/**
 * weft_fail() - Fail the running task with a printf-style message.
 * @ctx: the task's context.
 * @fmt: a printf format, and its arguments after it.
 *
 * The message (truncated to 1 KiB) is what weft_future_error() returns for this task
 * and every dependent that fails because of it. Use as `return weft_fail(ctx, ...)`.
 *
 * Context: only inside the task that owns @ctx.
 * Return: WEFT_ETASK (or -EINVAL when @ctx or @fmt is NULL).
 */
WEFT_API int weft_fail(struct weft_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Options of weft_client_open(). A zero field means: the environment variable named
 * beside it if set, else the default. Memory: the limit counts bytes of results in
 * memory (exactly, from the allocator); its default is half of what this process may
 * use (physical memory, or its cgroup's limit if lower), and it may not be below
 * 4 MiB. The thresholds are fractions of the limit, 0 < target <= pause <= hard <= 1:
 * one from the environment or a default that is out of order with one from a higher
 * source (options, then the environment, then the defaults) is moved to it, with a
 * log line; two from the same source out of order make open return -EINVAL.
 *
 * @size may be that of an older (smaller) struct, down to one that ends with
 * nthreads, and at most WEFT_OPTS_MAX_SIZE; fields beyond it count as zero.
 */
#define WEFT_OPTS_MAX_SIZE 4096	/* the largest @size of an options struct taken */

struct weft_options {
	size_t size;			/* sizeof(struct weft_options) */
	unsigned nthreads;		/* embedded: threads; $WEFT_NTHREADS; one per core */
	size_t memory_limit;		/* embedded: bytes; $WEFT_MEMORY_LIMIT (512M, 4G) */
	const char *spill_dir;		/* embedded: $WEFT_SPILL_DIR, else $TMPDIR, else /tmp;
					 * must exist and take new files */
	const char *token;		/* cluster secret; $WEFT_TOKEN */
	double memory_target;		/* spill down to this; $WEFT_MEMORY_TARGET; 0.6 */
	double memory_pause;		/* start no task above; $WEFT_MEMORY_PAUSE; 0.8 */
	double memory_hard;		/* refuse results above; $WEFT_MEMORY_HARD; 0.95 */
};

/**
 * weft_client_open() - Connect to a scheduler, or start an embedded engine.
 * @address: "tcp://host:port", "verbs://host:port" or "shm://name"; or NULL, which
 *           means $WEFT_SCHEDULER if set, else an engine inside this process.
 * @opts:    may be NULL; read during the call only. Fields beyond @opts->size are
 *           taken as zero. Explicit options win over the environment.
 * @out:     the new client.
 *
 * The embedded engine starts one thread per core of the allowed cpuset (hwloc), each
 * pinned to its core, and stops them in weft_client_close().
 *
 * Context: any thread except a task of this or another weft engine's worker.
 * Return: 0; -EINVAL (NULL @out, bad @opts->size, malformed or unknown address
 * scheme, a malformed $WEFT_* value, a memory limit of 0 or below 4 MiB given in the
 * environment or below 4 MiB given as an option, thresholds out of order or outside
 * (0, 1]); -ENOENT, -ENOTDIR, -EACCES, -EROFS (...) for a spill directory that is
 * missing, not a directory, or cannot take new files; -ENOMEM; -EAGAIN if threads
 * could not be started; -EDEADLK when called from inside a task. Connecting to a
 * scheduler: -EACCES without a token or with a wrong one; -ETIMEDOUT (or
 * -ECONNREFUSED, -EHOSTUNREACH) when nothing answers within a few seconds; -EPROTO
 * when the scheduler speaks another protocol version (both are logged); -ENODEV
 * when this machine's libfabric has no provider for the scheme (verbs:// without
 * RDMA devices). Each failure to connect is logged.
 */
WEFT_API int weft_client_open(const char *address, const struct weft_options *opts,
			      struct weft_client **out);

/**
 * weft_client_close() - Stop the engine and free everything it holds.
 * @c: the client; NULL does nothing.
 *
 * Tasks that have not started are cancelled (their futures end -ECANCELED); running
 * tasks are waited for; then every thread is joined and every result freed. Futures
 * still held by the caller stay valid handles until weft_release(): weft_wait() on
 * them returns the task's final status (0, its error, or -ECANCELED if close
 * cancelled it), weft_wait_any() returns at once, weft_future_error() still gives
 * the message, while weft_result() and weft_cancel() return -ESHUTDOWN because the
 * data is gone. The last such release frees the remaining bookkeeping. Passing
 * such a future to weft_submit() is undefined. No other call on this client or its
 * futures may run concurrently with close.
 *
 * Handles: a client closed already, passed to this or any call that takes a
 * client, is caught (its handle's generation ended at close): the call returns
 * -EBADF with one log line naming it, or, in a debug build (WEFT_DEBUG), aborts.
 * The same holds for a future released already (see weft_release()).
 *
 * Context: any thread that is not running a task of this engine.
 * Return: 0, -EBADF for a client closed already, or -EDEADLK from inside a task
 * (nothing is changed then).
 */
WEFT_API int weft_client_close(struct weft_client *c);

/*
 * Options of one task. @size: from one that ends with noutputs up to
 * WEFT_OPTS_MAX_SIZE; fields beyond it count as zero.
 */
struct weft_task_opts {
	size_t size;			/* sizeof(struct weft_task_opts) */
	unsigned noutputs;		/* 0 or 1: one result; n: out[0..n-1] */
	int priority;			/* higher first among ready tasks; default 0 */
	unsigned retries;		/* re-runs after the function fails */
	const char *worker;		/* run only on this worker; NULL: anywhere */
	const char *label;		/* name in reports; default: the function's name */
};

#define WEFT_MAX_OUTPUTS 65535
#define WEFT_MAX_ARG (1u << 30)

/**
 * weft_submit() - Run @fn once all of @deps have finished successfully.
 * @c:      the client.
 * @fn:     the function. With a scheduler it must be registered by name.
 * @deps:   futures whose results become in[0..ndeps-1]; may repeat; the caller keeps
 *          its references (the task takes its own). NULL only when @ndeps is 0.
 * @ndeps:  number of dependencies.
 * @arg:    copied before return; NULL only when @arglen is 0.
 * @arglen: at most WEFT_MAX_ARG.
 * @opts:   may be NULL; read during the call only; @opts->label is copied.
 * @out:    receives one future, or opts->noutputs futures (out[0..n-1]) for a
 *          multi-output task. Each holds a reference: release each with weft_release().
 *
 * If a dependency fails or is cancelled, the task never runs and ends with that
 * dependency's error and message, which name the root failure. If a dependency's
 * result was spilled and cannot be read back intact, the task fails with -EBADMSG
 * (or -EIO) and a message naming that result.
 *
 * Among ready tasks of equal priority, a client's tasks start in the order it
 * submitted them: an idle thread takes the oldest. What a running task spawns or
 * makes ready runs depth-first on its thread. Argument bytes beyond 32 count against
 * the memory limit while the task is pending.
 *
 * Context: any thread, including tasks (the task then goes on this thread's deque).
 * Return: 0; -EINVAL (NULL @c/@fn/@out, NULL @deps with @ndeps > 0, a NULL entry in
 * @deps, a future of another client, NULL @arg with @arglen > 0, @arglen too large,
 * bad @opts->size, noutputs > WEFT_MAX_OUTPUTS); -EBADF for a client closed or a
 * dependency released already; -ENOTSUP for @opts->worker in embedded mode;
 * -EMSGSIZE with a scheduler, for more than 16M dependencies or an argument and
 * dependencies beyond 1.25 GiB together (docs/cluster.md); -ENOMEM; -ESHUTDOWN
 * once close has begun.
 */
WEFT_API int weft_submit(struct weft_client *c, weft_fn *fn,
			 struct weft_future *const *deps, size_t ndeps,
			 const void *arg, size_t arglen,
			 const struct weft_task_opts *opts, struct weft_future **out);

/**
 * weft_submit_named() - weft_submit() with a function registered under @fn.
 * @c:      the client.
 * @fn:     the name the function was registered under (weft_register(), WEFT_TASK).
 * @deps:   as weft_submit().
 * @ndeps:  as weft_submit().
 * @arg:    as weft_submit().
 * @arglen: as weft_submit().
 * @opts:   as weft_submit().
 * @out:    as weft_submit().
 *
 * Context: any thread, including tasks.
 * Return: as weft_submit(), and WEFT_ENOFN if no function has that name (on a
 * cluster only the worker knows: the task fails with WEFT_ENOFN there).
 */
WEFT_API int weft_submit_named(struct weft_client *c, const char *fn,
			       struct weft_future *const *deps, size_t ndeps,
			       const void *arg, size_t arglen,
			       const struct weft_task_opts *opts,
			       struct weft_future **out);

/**
 * weft_scatter() - Put bytes into the engine as an already finished result.
 * @c:    the client.
 * @data: copied; NULL only when @len is 0.
 * @len:  bytes of @data.
 * @out:  receives the future of the result; release it with weft_release().
 *
 * Context: any thread.
 * Return: 0, -EINVAL, -EBADF (a client closed already), -ENOMEM, -ESHUTDOWN.
 */
WEFT_API int weft_scatter(struct weft_client *c, const void *data, size_t len,
			  struct weft_future **out);

/**
 * weft_wait() - Wait until the future's task has ended.
 * @f:          the future.
 * @timeout_ns: < 0 waits for ever; 0 only polls.
 *
 * Inside a task, waiting runs other ready tasks of this engine instead of
 * blocking, so fork-join recursion to any depth does not deadlock. A wait that
 * could end only once the waiting task has returned returns -EDEADLK at once,
 * without waiting: on the calling task's own future, on a task that this thread
 * interrupted to run the caller (a task whose own wait is helping), or on a
 * direct dependent of either. A longer cycle (a dependent of a dependent) is not
 * detected and waits until its timeout, for ever without one.
 *
 * Context: any thread.
 * Return: 0 if it succeeded; its error (WEFT_ETASK, -ECANCELED, ...) if it failed;
 * -ETIMEDOUT; -EDEADLK inside a task, as above; -EINVAL for NULL; -EBADF for a
 * future released already. On a cluster, when the scheduler is gone before the
 * task ended: why (-ECONNRESET, or -ETIMEDOUT once it sent nothing for 10 s).
 */
WEFT_API int weft_wait(struct weft_future *f, int64_t timeout_ns);

/**
 * weft_wait_any() - Wait until any of @fs has ended.
 * @fs:         n futures (none NULL), all of one client.
 * @n:          how many.
 * @timeout_ns: < 0 waits for ever; 0 only polls.
 *
 * Context: any thread.
 * Return: the index of an ended one (successful or not), -ETIMEDOUT, -EDEADLK
 * inside a task when none of @fs has ended and every one is a future that
 * weft_wait() would refuse with -EDEADLK, -EINVAL for NULL @fs, a NULL entry,
 * @n of 0 or above INT32_MAX, or -EBADF when one was released already.
 */
WEFT_API int weft_wait_any(struct weft_future *const *fs, size_t n, int64_t timeout_ns);

/**
 * weft_result() - Wait for a result and view it.
 * @f:   the future.
 * @out: a view of the bytes, valid until this future is released (or the client
 *       closed); written only on success.
 *
 * A result that was spilled to disk is read back first, and its checksum checked;
 * the view pins it in memory until the future is released.
 *
 * Context: any thread; inside a task it helps run other tasks while it waits.
 * Return: 0, the task's error (as weft_wait()), -EDEADLK (as weft_wait()), -EBADMSG
 * or -EIO if its bytes could not be read back intact from the spill file, -ENOMEM,
 * -ESHUTDOWN after close, -EINVAL, -EBADF for a future released already.
 */
WEFT_API int weft_result(struct weft_future *f, struct weft_buf *out);

/**
 * weft_cancel() - Cancel a task that has not started.
 * @f: a future of the task.
 *
 * A cancelled task never runs; it and its dependents end -ECANCELED. For a task
 * with several outputs, cancelling any of them cancels the task.
 *
 * Context: any thread.
 * Return: 0; -EBUSY if it is running; -EALREADY if it has ended; -EINVAL for NULL;
 * -EBADF for a future released already; -ESHUTDOWN after close.
 */
WEFT_API int weft_cancel(struct weft_future *f);

/**
 * weft_future_error() - Why the future's task failed, or why it is held up.
 * @f: the future; NULL gives NULL.
 *
 * For a task that has not ended, the message says why it waits when the engine is
 * paused because spilling fails (a full disk, an I/O error); the pause lifts, and
 * the message goes, when spilling works again.
 *
 * Context: any thread.
 * Return: the message (valid until the future is released), or NULL if it has not
 * failed and is not held up (or @f is NULL); for a future released already, a
 * message that says so.
 */
WEFT_API const char *weft_future_error(struct weft_future *f);

/**
 * weft_release() - Drop this reference to a result.
 * @f: the future; NULL does nothing.
 *
 * A result is freed when no future and no pending dependent refers to it. Releasing
 * a future does not cancel its task. Each future is released once; NULL is fine.
 * A future released again, even after its memory serves another task, is caught
 * by its handle's generation: the call does nothing but log a line (a debug build,
 * WEFT_DEBUG, aborts). The generation has 16 bits, so a handle kept through 65536
 * reuses of its record would match again.
 *
 * Context: any thread.
 */
WEFT_API void weft_release(struct weft_future *f);

/**
 * weft_spawn() - Submit a child task from inside a task.
 * @ctx:    the running task's context.
 * @fn:     the function.
 * @deps:   as weft_submit().
 * @ndeps:  as weft_submit().
 * @arg:    as weft_submit().
 * @arglen: as weft_submit().
 * @opts:   as weft_submit().
 * @out:    as weft_submit().
 *
 * As weft_submit() on the client that runs @ctx's task; the child goes on this
 * thread's deque, where idle threads of this node may steal it.
 *
 * Context: only inside the task that owns @ctx.
 * Return: as weft_submit(), -EINVAL for a NULL @ctx.
 */
WEFT_API int weft_spawn(struct weft_ctx *ctx, weft_fn *fn,
			struct weft_future *const *deps, size_t ndeps,
			const void *arg, size_t arglen,
			const struct weft_task_opts *opts, struct weft_future **out);

/* Counters of one client, for benchmarks, tests and dashboards. */
struct weft_stats {
	size_t size;			/* sizeof(struct weft_stats), set by the caller */
	unsigned nthreads;		/* threads running tasks */
	unsigned nnuma;			/* NUMA domains they span */
	uint64_t tasks_run;		/* task functions run (retries count again) */
	uint64_t tasks_failed;		/* tasks ended with an error (not cancelled) */
	uint64_t tasks_cancelled;	/* tasks ended -ECANCELED */
	uint64_t steals;		/* tasks taken from another thread's deque */
	uint64_t parks;			/* times a thread went to sleep for lack of work */
	size_t mem_bytes;		/* bytes of results in memory now (exact) */
	size_t mem_limit;		/* the memory limit in force */
	size_t mem_peak;		/* the most mem_bytes has been */
	uint64_t spilled_bytes;		/* result bytes written to the spill file */
	uint64_t spilled_results;
	uint64_t restored_bytes;	/* result bytes read back */
	uint64_t restored_results;
	uint64_t prefetched_results;	/* of those, read back ahead of their task */
	uint64_t spill_ns;		/* time spent writing them */
	uint64_t restore_ns;		/* time spent reading them back */
	uint64_t spill_file_bytes;	/* the spill file's size now */
	int paused;			/* 1: above the pause threshold, no task starts */
	int spill_blocked;		/* 1: the last spill failed (disk full, I/O error) */
	size_t mem_available;		/* memory this process may use: physical memory,
					 * or its cgroup's limit if lower */
	/* Added later: a caller built with an older weft.h sets a smaller @size and
	 * gets the fields above only. */
	uint64_t tasks_pending;		/* tasks submitted and not yet ended: waiting
					 * for inputs, queued or running */
	unsigned tasks_running;		/* threads running a task now (neither looking
					 * for work nor asleep) */
	size_t mem_target;		/* mem_bytes above which results are spilled */
	size_t mem_pause;		/* mem_bytes above which no task starts */
	/*
	 * On a cluster: tasks_pending counts those sent to workers and not ended
	 * (not those waiting in the scheduler for inputs); mem_target and mem_pause
	 * are each worker's own, 0 here (weft_workers gives each worker's figures).
	 */
};

/* A worker and its figures, as weft_workers() gives them. */
struct weft_worker_info {
	size_t size;			/* sizeof(struct weft_worker_info), set by the caller */
	char name[256];			/* "engine" for an engine in this process */
	unsigned nthreads;
	uint64_t tasks_run;
	unsigned tasks_queued;		/* submitted to it and not ended */
	unsigned tasks_running;
	size_t mem_bytes, mem_limit;
	uint64_t spilled_bytes, restored_bytes;
	uint64_t bytes_received;	/* inputs it read from other workers */
	uint64_t bytes_sent;		/* its results other workers read */
	int paused;			/* 1: above its pause threshold */
};

/**
 * weft_stats() - Read the client's counters.
 * @c:  the client.
 * @st: @st->size must be set, at least sizeof(size_t); fields beyond it are not
 *      written, and @st->size becomes the size written.
 *
 * The counters are read without stopping the engine, so while tasks run they are a
 * recent picture rather than one instant.
 *
 * Context: any thread.
 * Return: 0, -EINVAL, -EBADF (a client closed already).
 */
WEFT_API int weft_stats(struct weft_client *c, struct weft_stats *st);

/**
 * weft_trace() - Write what the engine recorded of the tasks it ran as a trace.
 * @c:    the client.
 * @path: the file to write, replaced whole once written: Chrome's Trace Event
 *        JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Each thread that runs tasks keeps its latest 4096 recorded tasks: a track per
 * thread, an event per task with its label, start and duration, and in its args
 * the outcome, the bytes of its results, the time it spent pinning its inputs
 * (reading spilled ones back) and its weight; a flow arrow from a recorded task to
 * each recorded task that read its result (through its first two inputs). Under
 * about 20,000 tasks a second a
 * thread every task is recorded; above that one in N, of weight N, so that
 * recording stays cheap at any rate. A failed task is always recorded (of weight 0
 * when it was not sampled: the next sampled task's weight counts it).
 * $WEFT_RECORD=0 turns recording off.
 *
 * On a cluster the trace has a process per worker and a track of its reads of
 * inputs from other workers, with a flow from the holder to the reader for each:
 * the scheduler gathers the tasks the workers recorded (each sends the latest
 * 8,192 every half second at most) and keeps the cluster's latest 65,536.
 *
 * Context: any thread.
 * Return: 0; -EINVAL (NULL @c or @path); -EBADF (a client closed already);
 * -ENODATA when recording is off; -ENOMEM; the file's -errno; on a cluster
 * -ETIMEDOUT (no answer within 30 s), -ENOTCONN, -EFBIG (past 256 MiB).
 */
WEFT_API int weft_trace(struct weft_client *c, const char *path);

/**
 * weft_report() - Write a performance report of the run so far.
 * @c:    the client.
 * @path: the file to write, replaced whole once written: one HTML page, with
 *        nothing to fetch (the figures and the chart library are in it), that a
 *        browser opens offline.
 *
 * The report is the dashboard's page as it stands now: the counts of weft_stats,
 * the tasks by label (count, failures, mean, p50 and p99 run time), the task
 * stream of what the threads recorded (the same tasks weft_trace writes), memory
 * and spill over the run (a sample every 20 ms at first, every 40 ms once 1,024
 * were taken, and so on) and their rates. Its size does not grow with the tasks
 * run: each thread's latest 4096 recorded tasks, about 0.6 MB a thread, and
 * Chart.js's 0.2 MB (from Debian's libjs-chart.js; without it the report has no
 * charts and a log line says so).
 *
 * On a cluster it is the cluster's, as the scheduler keeps it: a row per worker
 * thread in the task stream (its latest 16,384 tasks), a memory bar per worker,
 * the totals over time from the heartbeats, and the reads of inputs between
 * workers.
 *
 * Context: any thread.
 * Return: as weft_trace.
 */
WEFT_API int weft_report(struct weft_client *c, const char *path);

/**
 * weft_workers() - List the workers and their figures.
 * @c:   the client.
 * @out: room for @n workers; @out[0].size must be set (the size of each element:
 *       a caller built with an older weft.h gets the fields it knows). May be NULL
 *       when @n is 0, to count the workers.
 * @n:   how many @out has room for.
 *
 * An engine in this process is one worker, named "engine". A cluster's are as
 * their latest heartbeats (every half second) told the scheduler, with the bytes
 * of inputs they read from each other.
 *
 * Context: any thread (not a task's).
 * Return: the number of workers (more than @n: only @n were written), or -EINVAL,
 * -EBADF, or for a cluster -ETIMEDOUT (no answer within 5 s), -ENOTCONN.
 */
WEFT_API int weft_workers(struct weft_client *c, struct weft_worker_info *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
