/* SPDX-License-Identifier: MIT */
/* Temporary paths of the tests (common.h's, tests/cluster's and tests/join's), and reading their files. */
#ifndef WEFT_TEST_TMP_H
#define WEFT_TEST_TMP_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A mkdtemp()/mkstemp() template in @buf: $TMPDIR/@name-XXXXXX. tests/run.sh points
 * TMPDIR at a directory of its own and removes it when the run ends, so that a test
 * that fails or times out midway leaves nothing behind.
 */
static inline char *t_template(char *buf, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	cr_assert(snprintf(buf, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name) <
		  (int)size, "temporary path too long");
	return buf;
}

/* The whole of the file at @path, NUL-terminated; its length in @len. */
static inline void *t_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = n;
	return buf;
}

/* How many times @what occurs in @text. */
static inline int t_count(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

#endif
