// SPDX-License-Identifier: MIT
/*
 * config.c - option values given as text (environment variables), and the memory
 * this process may use.
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
