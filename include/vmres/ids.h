/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file ids.h
 * @brief ID / interrupt-number allocator over an inclusive u32 range [lo, hi].
 *
 * Used for legacy GSIs, MSI vectors (including aligned power-of-two blocks for
 * multi-message MSI) and unique device IDs. A bitmap with summary levels (a
 * 64-ary tree of bit words): the lowest free number in O(log64 range), a
 * specific number in O(1), an aligned block by searching summary words.
 *
 * Memory (vmres_ids_stats() mem_bytes counts all of it; malloc adds its own
 * per-block overhead, about 8 to 16 bytes):
 * - A range of at most 2^21 numbers (512 leaves of 4096) holds its whole
 *   bitmap from creation: 528 bytes per 4096 numbers of the range (at most
 *   264 KiB), plus about 1.2 KiB, whatever is in use. Every operation is then
 *   one computed address.
 * - A larger range (up to the full u32 range) costs memory in proportion to
 *   use: 528 bytes per interior node (one per 2^18 numbers touched, and a few
 *   above), and per touched 4096-number leaf either a sparse leaf of
 *   4 + 2 * capacity bytes (capacity 4, 8, 16 or 32 numbers, sorted) or, past
 *   32 numbers, a 528-byte bitmap leaf. A leaf becomes a bitmap for good once
 *   it held more than 32 numbers, until it is emptied. 1M random numbers of
 *   the u32 range take about 16 bytes each (17 MB). An allocated block that
 *   covers whole aligned leaves or subtrees (for example an aligned 2^31
 *   block) is held as a "full" marker and costs no memory; releasing part of
 *   it copies the markers on that number's path (up to 5 nodes, 2.6 KiB).
 * Emptied nodes and leaves are freed.
 *
 * The allocator stores no owner per number (that would cost 64 bits each); the
 * system allocator keeps owners for what it hands out.
 *
 * Errors leave the allocator exactly as it was and out-parameters untouched.
 *
 * Context: no internal lock. Calls on one allocator are serialized by the
 * caller; const functions may run concurrently with each other only.
 */
#ifndef VMRES_IDS_H
#define VMRES_IDS_H

#include <stdint.h>

#include <vmres/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque allocator. */
struct vmres_ids;

/** Totals reported by vmres_ids_stats(). */
struct vmres_ids_stats {
	uint32_t lo;	    /**< lowest managed number */
	uint32_t hi;	    /**< highest managed number (inclusive) */
	uint64_t used;	    /**< numbers allocated */
	uint64_t free;	    /**< numbers free */
	uint64_t mem_bytes; /**< heap bytes currently held by the allocator */
};

/**
 * vmres_ids_new() - create an allocator for [@p lo, @p hi].
 * @return 0; VMRES_EINVAL if @p out is NULL or lo > hi; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_ids_new(uint32_t lo, uint32_t hi, struct vmres_ids **out);

/** vmres_ids_free() - destroy an allocator; NULL is accepted. */
void vmres_ids_free(struct vmres_ids *ids);

/**
 * vmres_ids_alloc() - allocate the lowest free number.
 * @return 0 and *@p out; VMRES_EINVAL for NULL pointers; VMRES_ENOSPC if all are
 *   in use; VMRES_ENOMEM. Context: caller serializes; O(log64 range).
 */
int vmres_ids_alloc(struct vmres_ids *ids, uint32_t *out);

/**
 * vmres_ids_alloc_from() - allocate the lowest free number >= @p from.
 * @return as vmres_ids_alloc(); VMRES_ERANGE if @p from > hi.
 */
int vmres_ids_alloc_from(struct vmres_ids *ids, uint32_t from, uint32_t *out);

/**
 * vmres_ids_reserve() - allocate the specific number @p id.
 * @return 0; VMRES_EINVAL for NULL; VMRES_ERANGE outside [lo, hi];
 *   VMRES_EOVERLAP if already allocated; VMRES_ENOMEM. Context: O(1) amortised.
 */
int vmres_ids_reserve(struct vmres_ids *ids, uint32_t id);

/**
 * vmres_ids_alloc_block() - allocate @p count contiguous numbers, the first a
 * multiple of @p count (the lowest such block), as multi-message MSI needs.
 * @param ids the allocator.
 * @param count a power of two, 1 to 2^31.
 * @param first_out receives the first number of the block.
 * @return 0 and *@p first_out; VMRES_EINVAL for NULL; VMRES_ESIZE for count 0;
 *   VMRES_EALIGN if count is not a power of two; VMRES_ENOSPC if no aligned block
 *   of that size is wholly free inside [lo, hi]; VMRES_ENOMEM.
 */
int vmres_ids_alloc_block(struct vmres_ids *ids, uint32_t count, uint32_t *first_out);

/**
 * vmres_ids_reserve_block() - allocate exactly [@p first, @p first + @p count - 1].
 * Any count and alignment: this is what a guest or firmware already chose.
 * @return 0; VMRES_EINVAL for NULL; VMRES_ESIZE for count 0; VMRES_ERANGE if the
 *   block leaves [lo, hi] (or wraps); VMRES_EOVERLAP if any number is in use;
 *   VMRES_ENOMEM.
 */
int vmres_ids_reserve_block(struct vmres_ids *ids, uint32_t first, uint32_t count);

/**
 * vmres_ids_release() - free one allocated number.
 * @return 0; VMRES_EINVAL for NULL; VMRES_ERANGE outside [lo, hi]; VMRES_ENOENT if
 *   it is not allocated; VMRES_ENOMEM only in a range of more than 2^21
 *   numbers, when the number lies in a block that covered whole 4096-number
 *   leaves when it was allocated (held as a marker, see above) and the nodes
 *   it stands for cannot be made.
 */
int vmres_ids_release(struct vmres_ids *ids, uint32_t id);

/**
 * vmres_ids_release_block() - free @p count numbers from @p first, all of which
 * must be allocated (otherwise nothing is freed).
 * @return 0; VMRES_EINVAL for NULL; VMRES_ESIZE for count 0; VMRES_ERANGE if the
 *   block leaves [lo, hi]; VMRES_ENOENT if any of them is free; VMRES_ENOMEM as
 *   vmres_ids_release(), when the block cuts a marker's block.
 */
int vmres_ids_release_block(struct vmres_ids *ids, uint32_t first, uint32_t count);

/**
 * vmres_ids_test() - is @p id allocated?
 * @return 1 if allocated, 0 if free; VMRES_EINVAL for NULL; VMRES_ERANGE outside
 *   [lo, hi]. Context: read-only, O(1).
 */
int vmres_ids_test(const struct vmres_ids *ids, uint32_t id);

/**
 * vmres_ids_next() - the lowest allocated number >= @p from (for iteration).
 * @return 0 and *@p out; VMRES_EINVAL for NULL; VMRES_ENOENT if none.
 * Context: read-only.
 */
int vmres_ids_next(const struct vmres_ids *ids, uint32_t from, uint32_t *out);

/** vmres_ids_stats() - totals. @return 0; VMRES_EINVAL for NULL. O(1). */
int vmres_ids_stats(const struct vmres_ids *ids, struct vmres_ids_stats *out);

/**
 * vmres_ids_validate() - check every internal invariant (summary bits agree with
 * the leaves, counts agree). @return 0, VMRES_ECORRUPT, or VMRES_EINVAL for NULL.
 */
int vmres_ids_validate(const struct vmres_ids *ids);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_IDS_H */
