/* SPDX-License-Identifier: MIT */
/* compiler.h - compiler helpers used across weft's sources. */
#ifndef WEFT_COMPILER_H
#define WEFT_COMPILER_H

#include <stddef.h>

#define WEFT_CACHELINE 64

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define __cold		__attribute__((cold))
#ifndef __always_inline			/* glibc's sys/cdefs.h has it */
#define __always_inline	inline __attribute__((always_inline))
#endif
#define __must_check	__attribute__((warn_unused_result))
#define __cacheline_aligned __attribute__((aligned(WEFT_CACHELINE)))
#define __printf(a, b)	__attribute__((format(printf, a, b)))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* WEFT_COMPILER_H */
