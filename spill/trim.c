// SPDX-License-Identifier: MIT
/* trim.c - handing released space back to the file system. */
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

/* ---- trimming ---- */

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sort and merge the writer's work list in place. */
static void work_merge(struct weft__spill *s)
{
	size_t n = 0;

	qsort(s->work, s->nwork, sizeof(*s->work), range_cmp);
	for (size_t i = 0; i < s->nwork; i++) {
		struct range *last = n ? &s->work[n - 1] : NULL;

		if (last && s->work[i].off <= last->off + last->len) {
			uint64_t e = s->work[i].off + s->work[i].len;

			if (e > last->off + last->len)
				last->len = e - last->off;
		} else {
			s->work[n++] = s->work[i];
		}
	}
	s->nwork = n;
	s->work_at = 0;
}

/*
 * Punch out [off, off + len) of the file's space, whole blocks only (a partial one
 * is zeroed, not freed), segment by segment. Return: bytes punched; *cannot is set
 * if the file system never will.
 */
static uint64_t punch(struct weft__spill *s, uint64_t off, uint64_t len, bool *cannot)
{
	uint64_t a = round_up(off, BLOCK), b = (off + len) & ~(uint64_t)(BLOCK - 1);
	uint64_t done = 0, base, size;

	for (uint64_t at = a; at < b && !*cannot; at = base + size) {
		int fd = weft__spill_seg_fd(s, weft__spill_seg_of(s, at, &base, &size));
		uint64_t e = b < base + size ? b : base + size;

		if (fd < 0)
			continue;	/* never written: nothing to free */
		if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(at - base), (off_t)(e - at)))
			done += e - at;
		else
			*cannot = errno == EOPNOTSUPP || errno == ENOSYS;
	}
	return done;
}

/*
 * The trimmer: punches out the ranges the writer reserved, then frees them again.
 * While it punches a segment, reads of that segment wait for the discards; reads
 * of the others, and the writer, go on.
 */
static void *trimmer_main(void *arg)
{
	struct weft__spill *s = arg;

	pthread_setname_np(pthread_self(), "weft-trim");
	pthread_mutex_lock(&s->lock);
	while (!s->trim_stop) {
		struct trim_job j;
		bool cannot = false;
		uint64_t done;

		if (s->jobs_at == s->njobs) {
			s->jobs_at = s->njobs = 0;
			pthread_cond_wait(&s->trim_wake, &s->lock);
			continue;
		}
		j = s->jobs[s->jobs_at++];
		pthread_mutex_unlock(&s->lock);
		done = punch(s, j.off, j.len, &cannot);
		pthread_mutex_lock(&s->lock);
		weft__spill_space_free(s, j.off, j.len);	/* the writer may use it again */
		s->trim_pending -= j.len;
		s->st.trimmed_bytes += done;
		if (!s->trim_pending)
			pthread_cond_broadcast(&s->trim_idle);
		if (cannot)
			s->no_trim = true;	/* then releases stop keeping their ranges */
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* With the lock held: reserve [off, off + len), which is free, and queue its punch. */
static int trim_queue(struct weft__spill *s, uint64_t off, uint64_t len)
{
	if (!s->trimmer_on) {
		if (pthread_create(&s->trimmer, NULL, trimmer_main, s))
			return -EAGAIN;
		s->trimmer_on = true;
	}
	if (s->njobs == s->jobs_cap) {
		size_t cap = s->jobs_cap ? 2 * s->jobs_cap : TRIM_CUTS;
		struct trim_job *j = realloc(s->jobs, cap * sizeof(*j));

		if (!j)
			return -ENOMEM;
		s->jobs = j;
		s->jobs_cap = cap;
	}
	weft__spill_space_take(s, off, len);
	s->jobs[s->njobs++] = (struct trim_job){ off, len };
	s->trim_pending += len;
	pthread_cond_signal(&s->trim_wake);
	return 0;
}

/*
 * Only the writer allocates space, and it is the caller: what is free when the
 * cuts are chosen under the lock is reserved for the trimmer until punched (the
 * writer cannot use it meanwhile). Of what was released, only what is still free
 * is cut: the writer may have used some of it again since. Nothing is queued
 * while the trimmer has TRIM_AHEAD slices to do, nor until writes have paused.
 */
uint64_t weft__spill_trim(struct weft__spill *s, uint64_t due, uint64_t budget)
{
	uint64_t planned = 0;
	size_t ncut = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->no_trim || s->trim_pending >= TRIM_AHEAD * budget ||
	    now_ns() - s->wrote_ns < s->trim_quiet_ns ||
	    (s->work_at == s->nwork && (!s->nrel || s->released < due))) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (s->work_at == s->nwork) {
		free(s->work);
		s->work = s->rel;
		s->nwork = s->nrel;
		s->rel = NULL;
		s->nrel = s->rel_cap = 0;
		s->released = 0;
		work_merge(s);
	}
	while (s->work_at < s->nwork && planned < budget && ncut < TRIM_CUTS) {
		struct range *w = &s->work[s->work_at];
		size_t f = weft__spill_free_after(s, w->off);
		uint64_t a, b, fa, fb, wend;

		if (!w->len || f == s->nfree || s->free[f].off >= w->off + w->len) {
			s->work_at++;	/* done, or what is left was used again */
			continue;
		}
		fa = s->free[f].off;
		fb = fa + s->free[f].len;
		wend = w->off + w->len;
		a = fa > w->off ? fa : w->off;
		b = fb < wend ? fb : wend;
		if (b - a > budget - planned)
			b = a + (budget - planned);	/* the rest next time */
		/*
		 * Out to whole blocks while they are free: a block that two released
		 * items share is freed with the second.
		 */
		a = fa > (a & ~(uint64_t)(BLOCK - 1)) ? fa : a & ~(uint64_t)(BLOCK - 1);
		b = fb < round_up(b, BLOCK) ? fb : round_up(b, BLOCK);
		if (trim_queue(s, a, b - a))
			break;				/* not queued: later */
		ncut++;
		planned += b - a;
		w->off = b < wend ? b : wend;
		w->len = wend - w->off;
	}
	pthread_mutex_unlock(&s->lock);
	return planned;
}

#ifdef WEFT_TESTING
void weft__spill_trim_wait(struct weft__spill *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->trim_pending && s->trimmer_on)
		pthread_cond_wait(&s->trim_idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

uint64_t weft__spill_disk_bytes(struct weft__spill *s)
{
	uint64_t bytes = 0;
	struct stat st;

	for (unsigned i = 0; i < MAX_SEGS; i++) {
		int fd = weft__spill_seg_fd(s, i);

		if (fd >= 0 && !fdatasync(fd) && !fstat(fd, &st))
			bytes += (uint64_t)st.st_blocks * 512;
	}
	return bytes;
}
#endif /* WEFT_TESTING */
