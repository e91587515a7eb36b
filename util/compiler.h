/* SPDX-License-Identifier: MIT */
/* compiler.h - compiler helpers, and the few constants and helpers every folder uses. */
#ifndef WEFT_COMPILER_H
#define WEFT_COMPILER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "huge.h"		/* HUGE_PAGE */

#define WEFT_CACHELINE 64
#define NSEC_PER_SEC 1000000000LL
/*
 * Records a thread walks through are often a constant distance apart (a cache
 * hands them out in slab order): a distance within this many bytes either way is
 * taken as a stride worth prefetching along.
 */
#define WEFT_STRIDE_WINDOW 4096

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define __cold		__attribute__((cold))
#ifndef __always_inline			/* glibc's sys/cdefs.h has it */
#define __always_inline	inline __attribute__((always_inline))
#endif
#define __must_check	__attribute__((warn_unused_result))
#define __cacheline_aligned __attribute__((aligned(WEFT_CACHELINE)))
#define __printf(a, b)	__attribute__((format(printf, a, b)))

#ifndef container_of			/* rdma/fabric.h has the same */
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * An invariant the code relies on, checked in debug builds (DEBUG=1, OPT=-O0) and
 * compiled out of release ones, whose hot paths it would cost.
 */
#ifdef WEFT_DEBUG
void weft__assert_fail(const char *expr, const char *file, int line, const char *func)
	__attribute__((noreturn, cold));
#define WEFT_ASSERT(e)								\
	((e) ? (void)0 : weft__assert_fail(#e, __FILE__, __LINE__, __func__))
#else
#define WEFT_ASSERT(e)	((void)0)
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The monotonic clock in nanoseconds: the one clock weft times and sleeps by. */
static inline int64_t weft__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

#endif /* WEFT_COMPILER_H */
