// SPDX-License-Identifier: MIT
/*
 * tsan-boxfort.c - linked into ThreadSanitizer test programs only.
 *
 * Criterion's sandbox (BoxFort) maps its shared arena at a random base
 * 0x2000_0000_0000 + rand_r() * 16 MiB, mostly inside ThreadSanitizer's shadow,
 * where TSan refuses the mapping and Criterion aborts ("Could not initialize
 * inheritable arena", Criterion issue #274). Its only rand_r() call picks that base,
 * so this rand_r steers it into 0x5500_0000_0000 and up, which TSan leaves free as
 * application memory. Successive calls walk up, as BoxFort retries taken ranges.
 */
#include <stdlib.h>

__attribute__((visibility("default"))) int rand_r(unsigned int *seed)
{
	static unsigned int next = 0x350000;	/* (0x5500 - 0x2000) << 32 >> 24 */

	(void)seed;
	return (int)next++;
}
