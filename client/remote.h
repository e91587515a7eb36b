/* SPDX-License-Identifier: MIT */
/*
 * remote.h - weft.h's calls for a client of a cluster (remote.c), which core's
 * entry points hand over to when a handle is a remote one.
 *
 * A remote client's and a remote future's handles have their lowest bit set
 * (objects are aligned, so an engine's handles never do): one test tells them
 * apart at every call.
 */
#ifndef WEFT_REMOTE_H
#define WEFT_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include <weft.h>

static inline bool weft__is_remote(const void *h)
{
	return (uintptr_t)h & 1;
}

int weft__remote_open(const char *address, const struct weft_options *o,
		      struct weft_client **out);
int weft__remote_close(struct weft_client *c);
int weft__remote_submit(struct weft_client *c, weft_fn *fn, const char *name,
			struct weft_future *const *deps, size_t ndeps, const void *arg,
			size_t arglen, const struct weft_task_opts *opts,
			struct weft_future **out);
int weft__remote_scatter(struct weft_client *c, const void *data, size_t len,
			 struct weft_future **out);
int weft__remote_stats(struct weft_client *c, struct weft_stats *st);
int weft__remote_wait(struct weft_future *f, int64_t timeout_ns);
int weft__remote_wait_any(struct weft_future *const *fs, size_t n, int64_t timeout_ns);
int weft__remote_result(struct weft_future *f, struct weft_buf *out);
const char *weft__remote_error(struct weft_future *f);
int weft__remote_cancel(struct weft_future *f);
void weft__remote_release(struct weft_future *f);
/* 0 if @c is a client open now, else -EBADF (logged as @call's). */
int weft__remote_live(struct weft_client *c, const char *call);
/* views.c: the scheduler's report or trace (enum weft__view_kind), malloc'd bytes. */
int weft__remote_view(struct weft_client *c, int kind, void **data, size_t *len);
int weft__remote_workers(struct weft_client *c, struct weft_worker_info *out, size_t n);

#endif /* WEFT_REMOTE_H */
