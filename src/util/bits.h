/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small arithmetic on integers that several modules need: powers of two and
 * ranges given as (base, size) that must not wrap past the top of the 64-bit
 * space. Not installed.
 */
#ifndef VMRES_UTIL_BITS_H
#define VMRES_UTIL_BITS_H

#include <stdbool.h>
#include <stdint.h>

/* Is @p x a power of two (0 is not)? */
static inline bool vmres__is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Does [@p base, @p base + @p size - 1] wrap past UINT64_MAX? @p size is at
 * least 1 (a caller refuses 0 first, with its own message). */
static inline bool vmres__range_wraps(uint64_t base, uint64_t size)
{
	return base + (size - 1) < base;
}

#endif /* VMRES_UTIL_BITS_H */
