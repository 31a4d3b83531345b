/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small arithmetic on integers that several modules need: powers of two, and
 * ranges of the 64-bit space: given as (base, size), which must not wrap past
 * the top, or inclusive as [base, last], so that a range may end at
 * UINT64_MAX. Not installed.
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

/* The last byte of [@p base, @p base + @p size - 1]: @p size is at least 1 and
 * the range does not wrap (vmres__range_wraps() said so). */
static inline uint64_t vmres__range_last(uint64_t base, uint64_t size)
{
	return base + (size - 1);
}

/* Is the inclusive range [@p base, @p last] inside [@p outer_base, @p outer_last]?
 * Both ranges have base <= last. */
static inline bool vmres__range_within(uint64_t base, uint64_t last, uint64_t outer_base,
				       uint64_t outer_last)
{
	return base >= outer_base && last <= outer_last;
}

/* Do the inclusive ranges [@p a_base, @p a_last] and [@p b_base, @p b_last] share
 * an address? Both ranges have base <= last. */
static inline bool vmres__ranges_overlap(uint64_t a_base, uint64_t a_last, uint64_t b_base,
					 uint64_t b_last)
{
	return a_base <= b_last && b_base <= a_last;
}

#endif /* VMRES_UTIL_BITS_H */
