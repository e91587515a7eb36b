// SPDX-License-Identifier: MIT
/* error.c - weft_strerror(), and the version the library was built as. */
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "proto.h"

const char *weft_strerror(int err)
{
	switch (err) {
	case 0:
		return "Success";
	case WEFT_ETASK:
		return "Task function failed";
	case WEFT_EKILLED:
		return "Task's worker died too often";
	case WEFT_ELOST:
		return "Data lost and not recomputable";
	case WEFT_ENOFN:
		return "No task function of that name";
	}
	if (err < 0)
		err = -err;
	if (err > 4096)
		return "Unknown weft error";
	/* strerror is not thread-safe in general; glibc's strerrordesc_np is. */
	return strerrordesc_np(err) ? strerrordesc_np(err) : "Unknown error";
}

#ifdef WEFT_DEBUG
#include <stdio.h>
#include <stdlib.h>

void weft__assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "weft: %s:%d: %s: invariant '%s' does not hold\n", file, line, func,
		expr);
	abort();
}
#endif

#define STR(x) #x
#define VERSION_STRING(a, b, c) STR(a) "." STR(b) "." STR(c)

unsigned weft_version(void)
{
	return WEFT_VERSION_HEX;
}

const char *weft_version_string(void)
{
	return VERSION_STRING(WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
}

void weft__print_version(const char *prog)
{
	printf("%s %s (protocol %u.%u)\n", prog, weft_version_string(), WEFT_PROTO_MAJOR,
	       WEFT_PROTO_MINOR);
}
