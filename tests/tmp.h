/* SPDX-License-Identifier: MIT */
/* Temporary paths of the tests (common.h's and tests/cluster's). */
#ifndef WEFT_TEST_TMP_H
#define WEFT_TEST_TMP_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
