// SPDX-License-Identifier: MIT
/*
 * config.c - the engine's settings from its options and the environment: values
 * given as text, the memory this process may use, and their resolution into one
 * struct weft__config.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int weft__parse_size(const char *s, size_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	case 't': case 'T': mul = 1ull << 40; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (mul > 1 && (*end == 'b' || *end == 'B'))
		end++;
	if (*end || (v && mul > SIZE_MAX / v))
		return -EINVAL;
	*out = (size_t)(v * mul);
	return 0;
}

int weft__parse_uint(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > UINT_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/*
 * A number in (0, 1], for the memory thresholds. Return: 0 or -EINVAL.
 */
int weft__parse_fraction(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0.0 && v <= 1.0))
		return -EINVAL;
	*out = v;
	return 0;
}

/* The first line of @path as a byte count; 0 if absent, "max" or unreadable. */
static size_t read_limit_file(const char *path)
{
	char buf[64];
	size_t v = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && isdigit((unsigned char)buf[0])) {
		buf[strcspn(buf, "\n")] = 0;
		if (weft__parse_size(buf, &v))
			v = 0;
	}
	fclose(f);
	return v;
}

/* This process's cgroup memory limit (v2, then v1), or 0 if there is none. */
static size_t cgroup_limit(void)
{
	char line[512], path[1024];
	size_t best = 0, v;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':'), *cg;

		if (!ctrl || !(cg = strchr(ctrl + 1, ':')))
			continue;
		*cg++ = 0;
		cg[strcspn(cg, "\n")] = 0;
		ctrl++;
		if (!*ctrl)		/* v2: "0::/path" */
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", cg);
		else if (!strcmp(ctrl, "memory"))
			snprintf(path, sizeof(path),
				 "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg);
		else
			continue;
		v = read_limit_file(path);
		if (v && (!best || v < best))
			best = v;
	}
	if (f)
		fclose(f);
	/* Inside a container the cgroup's own files sit at the root of the mount. */
	v = read_limit_file("/sys/fs/cgroup/memory.max");
	if (v && (!best || v < best))
		best = v;
	v = read_limit_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
	if (v && (!best || v < best))
		best = v;
	return best;
}

size_t weft__memory_available(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	size_t phys = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
	size_t cg = cgroup_limit();

	/* cgroup v1 reports "no limit" as a huge number: take the smaller. */
	if (cg && (!phys || cg < phys))
		return cg;
	return phys;
}

/* ---- the engine's settings: options over the environment over defaults ---- */

/* Where a threshold came from, lowest first: what wins a conflict (thresholds_order). */
enum source { FROM_DEFAULT, FROM_ENV, FROM_OPTION };

/* One threshold: the option, else the environment, else the default. */
static __cold int fraction_resolve(double opt, const char *env, double dflt, double *out,
				   enum source *from)
{
	const char *s = getenv(env);

	if (opt != 0.0) {
		if (!(opt > 0.0 && opt <= 1.0)) {
			weft__log(WEFT_LOG_ERROR, "core", "memory threshold %g: not in (0, 1]",
				  opt);
			return -EINVAL;
		}
		*out = opt;
		*from = FROM_OPTION;
		return 0;
	}
	if (s && *s) {
		if (weft__parse_fraction(s, out)) {
			weft__log(WEFT_LOG_ERROR, "core", "%s=%s: not a fraction in (0, 1]",
				  env, s);
			return -EINVAL;
		}
		*from = FROM_ENV;
		return 0;
	}
	*out = dflt;
	*from = FROM_DEFAULT;
	return 0;
}

/*
 * The thresholds come from the options, else the environment, else the defaults,
 * and must not decrease. One from a lower source is moved, with a warning, as
 * little as keeps it in order with those from higher ones: the program's options
 * win over the environment, and what anyone set wins over a default. Two from one
 * source out of order are an error of whoever set them.
 */
static __cold int thresholds_order(struct weft__config *cfg, const enum source rank[3])
{
	static const char *const name[3] = { "target", "pause", "hard" };
	static const char *const source[3] = { "default", "environment", "options" };
	double *v[3] = { &cfg->mem_target, &cfg->mem_pause, &cfg->mem_hard };
	unsigned i, k;

	for (i = 0; i < 3; i++) {
		for (k = i + 1; k < 3; k++) {
			if (rank[i] == rank[k] && rank[i] != FROM_DEFAULT && *v[i] > *v[k]) {
				weft__log(WEFT_LOG_ERROR, "core",
					  "memory %s %g above %s %g, both from the %s",
					  name[i], *v[i], name[k], *v[k], source[rank[i]]);
				return -EINVAL;
			}
		}
	}
	/* The environment's against the options, then the defaults against both. */
	for (unsigned r = FROM_OPTION; r-- > FROM_DEFAULT;) {
		for (i = 0; i < 3; i++) {
			int by = -1;
			double was = *v[i];

			if (rank[i] != r)
				continue;
			for (k = 0; k < 3; k++) {
				if (rank[k] <= r)
					continue;
				if ((k < i && *v[k] > *v[i]) || (k > i && *v[k] < *v[i])) {
					*v[i] = *v[k];
					by = (int)k;
				}
			}
			/* A default making way refuses nothing anyone set. */
			if (by >= 0)
				weft__log(r ? WEFT_LOG_WARN : WEFT_LOG_INFO, "core",
					  "memory %s %g (%s) is out of order with the %s %g "
					  "(%s): %g instead", name[i], was, source[r], name[by],
					  *v[by], source[rank[by]], *v[i]);
		}
	}
	return 0;
}

static __cold int memory_resolve(struct weft__config *cfg, const struct weft_options *o)
{
	const char *s = getenv("WEFT_MEMORY_LIMIT");
	enum source from[3];
	int ret;

	cfg->memory_limit = o->memory_limit;
	if (!cfg->memory_limit && s && *s) {
		ret = weft__parse_size(s, &cfg->memory_limit);
		if (ret || !cfg->memory_limit) {
			weft__log(WEFT_LOG_ERROR, "core",
				  "WEFT_MEMORY_LIMIT=%s: not a positive size (e.g. 512M, 4G)", s);
			return -EINVAL;
		}
	}
	if (!cfg->memory_limit)
		cfg->memory_limit = (size_t)(weft__memory_available() *
					     WEFT_DEFAULT_LIMIT_SHARE);
	if (cfg->memory_limit < WEFT_MIN_MEMORY_LIMIT) {
		weft__log(WEFT_LOG_ERROR, "core",
			  "memory limit of %zu bytes: the engine needs at least %u",
			  cfg->memory_limit, WEFT_MIN_MEMORY_LIMIT);
		return -EINVAL;
	}
	ret = fraction_resolve(o->memory_target, "WEFT_MEMORY_TARGET", WEFT_DEFAULT_TARGET,
			       &cfg->mem_target, &from[0]) ?:
	      fraction_resolve(o->memory_pause, "WEFT_MEMORY_PAUSE", WEFT_DEFAULT_PAUSE,
			       &cfg->mem_pause, &from[1]) ?:
	      fraction_resolve(o->memory_hard, "WEFT_MEMORY_HARD", WEFT_DEFAULT_HARD,
			       &cfg->mem_hard, &from[2]);
	if (ret)
		return ret;
	return thresholds_order(cfg, from);
}

/*
 * How far the spill thread (and the trimmer and io_uring workers it starts) runs
 * above the process. While the workers keep every core busy, a spill thread that
 * waits for a core leaves the disk idle.
 */
static __cold int io_nice_resolve(struct weft__config *cfg)
{
	const char *s = getenv("WEFT_IO_NICE");

	cfg->io_nice = WEFT_DEFAULT_IO_NICE;
	if (!s || !*s)
		return 0;
	cfg->io_nice_set = true;
	if (!strcmp(s, "0")) {
		cfg->io_nice = 0;
		return 0;
	}
	if (weft__parse_uint(s, &cfg->io_nice) || cfg->io_nice > WEFT_MAX_IO_NICE) {
		weft__log(WEFT_LOG_ERROR, "core", "WEFT_IO_NICE=%s: not a count of nice levels "
			  "from 0 to %u", s, WEFT_MAX_IO_NICE);
		return -EINVAL;
	}
	return 0;
}

/*
 * The spill file's I/O: $WEFT_SPILL_BACKEND (uring, pread or auto) and
 * $WEFT_SPILL_DIRECT (0 goes through the page cache).
 */
static __cold int spill_io_resolve(struct weft__config *cfg)
{
	const char *b = getenv("WEFT_SPILL_BACKEND"), *d = getenv("WEFT_SPILL_DIRECT");

	cfg->spill_backend = WEFT_SPILL_AUTO;
	if (b && !strcmp(b, "uring")) {
		cfg->spill_backend = WEFT_SPILL_URING;
	} else if (b && !strcmp(b, "pread")) {
		cfg->spill_backend = WEFT_SPILL_PREAD;
	} else if (b && *b && strcmp(b, "auto")) {
		weft__log(WEFT_LOG_ERROR, "spill",
			  "WEFT_SPILL_BACKEND=%s: not uring, pread or auto", b);
		return -EINVAL;
	}
	cfg->spill_direct = !(d && !strcmp(d, "0"));
	return 0;
}

/* $WEFT_RECORD: 1 (the default) records what tasks run, for weft_trace; 0 does not. */
static __cold int record_resolve(struct weft__config *cfg)
{
	const char *s = getenv("WEFT_RECORD");

	cfg->record = true;
	if (!s || !*s || !strcmp(s, "1"))
		return 0;
	if (!strcmp(s, "0")) {
		cfg->record = false;
		return 0;
	}
	weft__log(WEFT_LOG_ERROR, "core", "WEFT_RECORD=%s: not 0 or 1", s);
	return -EINVAL;
}

int weft__config_resolve(struct weft__config *cfg, const struct weft_options *o,
			 unsigned ncores)
{
	const char *s;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->nthreads = o->nthreads;
	if (!cfg->nthreads && (s = getenv("WEFT_NTHREADS")) && *s) {
		ret = weft__parse_uint(s, &cfg->nthreads);
		if (ret) {
			weft__log(WEFT_LOG_ERROR, "core", "WEFT_NTHREADS=%s: not a positive count", s);
			return ret;
		}
	}
	if (!cfg->nthreads)
		cfg->nthreads = ncores;
	if (cfg->nthreads > WEFT_MAX_THREADS) {
		weft__log(WEFT_LOG_ERROR, "core", "%u threads: at most %u", cfg->nthreads,
			  WEFT_MAX_THREADS);
		return -EINVAL;
	}
	ret = memory_resolve(cfg, o) ?: io_nice_resolve(cfg) ?: spill_io_resolve(cfg) ?:
	      record_resolve(cfg);
	if (ret)
		return ret;
	s = getenv("WEFT_DASHBOARD");
	if (s && *s && !(cfg->dashboard = strdup(s)))
		return -ENOMEM;
	s = o->spill_dir;
	if (!s || !*s)
		s = getenv("WEFT_SPILL_DIR");
	if (!s || !*s)
		s = getenv("TMPDIR");
	if (!s || !*s)
		s = "/tmp";
	ret = weft__spill_dir_check(s);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "core", "spill directory %s: %s%s", s,
			  ret == -ENOENT ? "does not exist" :
			  ret == -ENOTDIR ? "is not a directory" : "cannot create a file there: ",
			  ret == -ENOENT || ret == -ENOTDIR ? "" : weft_strerror(ret));
		return ret;
	}
	cfg->spill_dir = strdup(s);
	return cfg->spill_dir ? 0 : -ENOMEM;
}

void weft__config_fini(struct weft__config *cfg)
{
	free(cfg->spill_dir);
	cfg->spill_dir = NULL;
	free(cfg->dashboard);
	cfg->dashboard = NULL;
}
