// SPDX-License-Identifier: MIT
/*
 * The joined rows' file and the progress bar.
 *
 * Rows go to a temporary file beside the output, renamed over it only when the
 * whole join has succeeded, so that a failed join never leaves a file that looks
 * complete; a device, a pipe or standard output is written in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

double join_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The umask, read without changing it (umask(2) would race other threads). */
static mode_t process_umask(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	unsigned mask = 022;
	char line[128];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	if (f)
		fclose(f);
	return mask;
}

/*
 * The temporary file being written, for join_abandon(): a process that exits on a
 * signal removes it. Under the lock so that it is never removed after the rename.
 */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *live_tmp;

/*
 * Written in place: standard output ("-", or a link into /proc such as /dev/stdout,
 * whose file a rename would not reach), anything under /proc, and a file that
 * exists and is not regular (a device, a pipe, a socket).
 */
static bool in_place(const char *path, const struct stat *st, bool exists)
{
	char target[16];
	ssize_t n;

	if (!strcmp(path, "-") || !strncmp(path, "/proc/", 6))
		return true;
	n = readlink(path, target, sizeof(target));
	if (n >= 6 && !strncmp(target, "/proc/", 6))
		return true;
	return exists && !S_ISREG(st->st_mode);
}

static int refuse(bool *usage, char *err, size_t errlen, const char *path, const char *why,
		  const char *name)
{
	*usage = true;
	snprintf(err, errlen, "output %s: %s%s", path, why, name ? name : "");
	return -EINVAL;
}

int writer_open(struct writer *w, const char *path, const int in_fds[2],
		const char *const in_names[2], bool *usage, char *err, size_t errlen)
{
	struct stat st, in;
	bool exists;
	size_t n;
	int i;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	exists = strcmp(path, "-") && !stat(path, &st);
	if (!exists && strcmp(path, "-") && errno != ENOENT) {
		snprintf(err, errlen, "output %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!strcmp(path, "-") && fstat(STDOUT_FILENO, &st) == 0)
		exists = true;
	if (exists && S_ISDIR(st.st_mode))
		return refuse(usage, err, errlen, path, "is a directory", NULL);
	for (i = 0; exists && i < 2; i++)
		if (!fstat(in_fds[i], &in) && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
			return refuse(usage, err, errlen, path, "is the same file as the ",
				      in_names[i]);
	if (in_place(path, &st, exists)) {
		w->path = strdup(path);
		if (!w->path)
			goto err_nomem;
		/*
		 * Appending: a shell's "> file" has emptied it, and its ">> file"
		 * asks for exactly that; a device or a pipe does not care.
		 */
		w->fd = !strcmp(path, "-") ? dup(STDOUT_FILENO) :
			open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
		if (w->fd < 0) {
			int e = -errno;

			snprintf(err, errlen, "output %s: %s", path, strerror(errno));
			free(w->path);
			return e;
		}
		pthread_mutex_init(&w->lock, NULL);
		return 0;
	}
	/* A link is followed: the file it names is the one replaced. */
	w->path = exists ? realpath(path, NULL) : strdup(path);
	if (!w->path)
		goto err_nomem;
	n = strlen(w->path);
	w->tmp = malloc(n + sizeof(".partial-XXXXXX"));
	if (!w->tmp)
		goto err_free_path;
	memcpy(w->tmp, w->path, n);
	memcpy(w->tmp + n, ".partial-XXXXXX", sizeof(".partial-XXXXXX"));
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		int e = -errno;

		snprintf(err, errlen, "output %s: %s", path, strerror(errno));
		free(w->tmp);
		free(w->path);
		return e;
	}
	/* As open(2) would make it, not mkstemp's 0600. */
	fchmod(w->fd, 0666 & ~process_umask());
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_lock(&live_lock);
	live_tmp = w->tmp;
	pthread_mutex_unlock(&live_lock);
	return 0;
err_free_path:
	free(w->path);
err_nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int writer_put(struct writer *w, const void *buf, size_t len)
{
	const char *p = buf;
	int ret = 0;

	pthread_mutex_lock(&w->lock);
	while (len && !w->err) {
		ssize_t n = write(w->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->err = -errno;
			break;
		}
		p += n;
		len -= n;
		w->bytes += n;
	}
	ret = w->err;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int writer_close(struct writer *w, bool ok, char *err, size_t errlen)
{
	int ret = ok ? w->err : 0;

	/* A pipe or a terminal cannot be synced (EINVAL), and needs not be. */
	if (ok && !ret && w->tmp && fsync(w->fd))
		ret = -errno;
	if (close(w->fd) && ok && !ret)
		ret = -errno;
	if (w->tmp) {
		pthread_mutex_lock(&live_lock);
		live_tmp = NULL;
		if (ok && !ret && rename(w->tmp, w->path))
			ret = -errno;
		if (!ok || ret)
			unlink(w->tmp);
		pthread_mutex_unlock(&live_lock);
	}
	if (ok && ret)
		snprintf(err, errlen, "output %s: %s", w->path, strerror(-ret));
	pthread_mutex_destroy(&w->lock);
	free(w->path);
	free(w->tmp);
	return ret;
}

void join_abandon(void)
{
	/* Held until the process exits: no rename can follow. */
	pthread_mutex_lock(&live_lock);
	if (live_tmp)
		unlink(live_tmp);
}

void join_human(char *buf, size_t n, double bytes)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void draw(struct progress *p, bool last)
{
	uint64_t done = atomic_load_explicit(&p->done, memory_order_relaxed);
	uint64_t total = atomic_load_explicit(&p->total, memory_order_relaxed);
	const char *phase = atomic_load_explicit(&p->phase, memory_order_acquire);
	double t = join_now(), dt = t - atomic_load_explicit(&p->phase_t0,
							      memory_order_relaxed);
	double rate = dt > 0 ? done / dt : 0;
	char bar[31], d[32], tt[32], r[32], eta[32] = "";
	int fill = total ? (int)(30.0 * (done > total ? total : done) / total) : 0;

	if (!phase)
		return;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[30] = 0;
	join_human(d, sizeof(d), done);
	join_human(tt, sizeof(tt), total);
	join_human(r, sizeof(r), rate);
	if (rate > 0 && total > done)
		snprintf(eta, sizeof(eta), " ETA %.0fs", (total - done) / rate);
	pthread_mutex_lock(&p->draw);
	fprintf(stderr, "\r\033[K%-9s [%s] %s / %s  %s/s%s", phase, bar, d, tt, r, eta);
	if (last)
		fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&p->draw);
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	struct timespec tick = { 0, 200 * 1000 * 1000 };

	(void)pthread_setname_np(pthread_self(), "join-progress");
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		draw(p, false);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

void progress_start(struct progress *p, bool on)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->draw, NULL);
	atomic_init(&p->phase_t0, join_now());
	p->on = on && !pthread_create(&p->thread, NULL, progress_main, p);
}

/* A new phase: the bar ends the last one's line and starts again from 0. */
void progress_phase(struct progress *p, const char *phase, uint64_t total)
{
	if (p->on && atomic_load_explicit(&p->phase, memory_order_relaxed))
		draw(p, true);
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_store_explicit(&p->total, total, memory_order_relaxed);
	atomic_store_explicit(&p->phase_t0, join_now(), memory_order_relaxed);
	/* Release pairs with the acquire in draw(): the counters are the new phase's. */
	atomic_store_explicit(&p->phase, phase, memory_order_release);
}

void progress_stop(struct progress *p)
{
	if (p->on) {
		atomic_store_explicit(&p->stop, true, memory_order_relaxed);
		pthread_join(p->thread, NULL);
		draw(p, true);
		p->on = false;
	}
	pthread_mutex_destroy(&p->draw);
}
