/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Binary search over a sorted array, written once: every module that keeps a
 * sorted table (bus maps, device-manager states and tables, the interrupt
 * manager's index, a snapshot's parsed model) finds its place with
 * vmres__lower_bound() and a comparison of its own. Not installed.
 */
#ifndef VMRES_UTIL_SEARCH_H
#define VMRES_UTIL_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

/* Is element @p i of @p array ordered before @p key? True for a prefix of the
 * searched indices, false for the rest. */
typedef bool vmres__before_fn(const void *array, size_t i, const void *key);

/* The first index in [@p lo, @p hi) whose element is not before @p key (@p hi
 * if there is none): a lower bound, O(log(hi - lo)) calls of @p before. Static
 * inline, so that a constant @p before is inlined at each call. */
static inline size_t vmres__lower_bound(const void *array, size_t lo, size_t hi, const void *key,
					vmres__before_fn *before)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (before(array, mid, key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#endif /* VMRES_UTIL_SEARCH_H */
