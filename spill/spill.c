// SPDX-License-Identifier: MIT
/* spill.c - opening and closing a spill file. */
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
	fd = weft__spill_create_file(dir, &s->direct);
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
		if (weft__spill_seg_fd(s, i) >= 0)
			close(weft__spill_seg_fd(s, i));	/* no names: closing removes them */
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
	return weft__spill_seg_fd(s, 0);
}

void weft__spill_stats(struct weft__spill *s, struct weft__spill_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->file_bytes = weft__spill_used_end(s);
	pthread_mutex_unlock(&s->lock);
}
