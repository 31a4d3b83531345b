/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file addr.h
 * @brief Address-space allocator over one inclusive window [base, last] of u64.
 *
 * Hands out ranges of a port-I/O or MMIO space: first fit (lowest aligned
 * address), last fit (highest) or an exact address, each optionally bounded by a
 * sub-window [min, max] (e.g. "below 4 GiB"). Any window works, including one that
 * starts at 0 or ends at 0xFFFF_FFFF_FFFF_FFFF; a 16-bit PIO space is just the
 * window [0, 0xFFFF].
 *
 * Cost: allocation (every policy, with alignment and sub-window), reservation,
 * release and lookup are O(log n) in the number of allocations n in ordinary
 * use; nothing scans all allocations or all gaps. Two cases cost more. A search
 * by length (a size that is not a power of two aligned to itself, or a
 * sub-window) may enter a subtree once on a length bound that earlier updates
 * left too high, and then lowers it: O(log n) amortized. And a first or last fit
 * whose size is not its alignment looks into every gap that is long enough and
 * holds an aligned power-of-two block as large as the request's, yet cannot
 * hold the request at its alignment (size 3, alignment 4, gaps of 4 bytes that
 * start 1 past a multiple of 4): a window made of such gaps costs time linear
 * in their number. Memory: see VMRES_ADDR_BYTES_PER_ALLOC.
 *
 * Every allocation carries a caller-chosen 64-bit owner tag (an id or a pointer
 * cast to uintptr_t) that vmres never interprets.
 *
 * Errors leave the allocator exactly as it was and out-parameters untouched.
 *
 * Context: an allocator is a plain data structure with no internal lock. Calls on
 * one allocator must be serialized by the caller (sysalloc's user, or the device
 * manager's writer lock); calls on different allocators are independent. Const
 * functions may run concurrently with each other but not with a mutating call.
 */
#ifndef VMRES_ADDR_H
#define VMRES_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include <vmres/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Typical memory per allocation, in bytes. The allocator is one B+tree whose
 * entries tile the window: each allocation (base, last, owner) and each maximal
 * free gap between them is a 24-byte entry with two summary bytes, 32 to a leaf,
 * every leaf but the root at least a quarter full. Measured at 100000
 * allocations: 40 bytes after filling (a handful of gaps), 58 after heavy churn
 * (one gap per five allocations), 84 after exact reservations that each leave a
 * gap; the worst case, a gap beside every allocation in quarter-full nodes, is
 * about 235. Nodes freed by releases stay in the pool for reuse, and past 64 KiB
 * the nodes live in reserved address space that grows by doubling, so what is
 * committed can be up to twice what is in use.
 */
#define VMRES_ADDR_BYTES_PER_ALLOC 84

/** Worst-case memory per allocation, in bytes, that vmres_addr_reserve_capacity()
 * sets aside (see VMRES_ADDR_BYTES_PER_ALLOC). */
#define VMRES_ADDR_BYTES_PER_ALLOC_MAX 235

/** Opaque allocator. */
struct vmres_addr;

/** Where an allocation is placed. */
enum vmres_addr_policy {
	VMRES_ADDR_FIRST_FIT = 0, /**< the lowest aligned address where it fits */
	VMRES_ADDR_LAST_FIT = 1,  /**< the highest aligned address where it fits */
	VMRES_ADDR_EXACT = 2,	  /**< exactly at vmres_addr_req.addr */
};

/** Version of struct vmres_addr_req understood by this build. */
#define VMRES_ADDR_REQ_VERSION 1

/**
 * An allocation request. Initialise with VMRES_ADDR_REQ_INIT so that fields added
 * later get their defaults.
 */
struct vmres_addr_req {
	unsigned int version;	       /**< VMRES_ADDR_REQ_VERSION */
	enum vmres_addr_policy policy; /**< placement */
	uint64_t size;		       /**< bytes, >= 1 */
	uint64_t align;		       /**< 0 or 1 for none, else a power of two */
	uint64_t addr;		       /**< VMRES_ADDR_EXACT only: the start */
	uint64_t min;		       /**< sub-window: lowest address the range may use */
	uint64_t max;		       /**< sub-window: highest address (inclusive) */
	uint64_t owner;		       /**< caller's tag, stored with the allocation */
};

/** Defaults: first fit, no alignment, no sub-window bound. */
#define VMRES_ADDR_REQ_INIT                                                                        \
	{                                                                                          \
		.version = VMRES_ADDR_REQ_VERSION, .policy = VMRES_ADDR_FIRST_FIT, .size = 0,      \
		.align = 0, .addr = 0, .min = 0, .max = UINT64_MAX, .owner = 0                     \
	}

/** One allocation as reported by lookups and iteration. */
struct vmres_addr_entry {
	uint64_t base;	/**< first address */
	uint64_t last;	/**< last address, inclusive */
	uint64_t owner; /**< the owner tag given at allocation */
};

/** Totals reported by vmres_addr_stats(). */
struct vmres_addr_stats {
	uint64_t base;	/**< the window's first address */
	uint64_t last;	/**< the window's last address */
	uint64_t count; /**< number of allocations */
	uint64_t used;	/**< bytes allocated; UINT64_MAX stands for 2^64 */
	uint64_t free;	/**< bytes free; UINT64_MAX stands for 2^64 */
	uint64_t gaps;	/**< number of maximal free gaps */
};

/**
 * vmres_addr_new() - create an allocator for the window [@p base, @p last].
 * @param base first address of the window.
 * @param last last address of the window (inclusive).
 * @param out receives the allocator; free it with vmres_addr_free().
 * @return 0; VMRES_EINVAL if @p out is NULL or @p base > @p last; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_addr_new(uint64_t base, uint64_t last, struct vmres_addr **out);

/**
 * vmres_addr_free() - destroy an allocator and everything it holds.
 * @param a the allocator, or NULL (then nothing happens).
 */
void vmres_addr_free(struct vmres_addr *a);

/**
 * vmres_addr_alloc() - allocate a range as @p req describes.
 * @param a the allocator.
 * @param req the request. The range is placed inside both the window and the
 *        sub-window [req->min, req->max]. min and max are clipped to the window
 *        before the placement is checked (ERANGE, EOVERFLOW, ENOSPC): a bound
 *        outside the window means the window's own bound, so min = 0 and
 *        min = the window's base are the same request and get the same answer.
 * @param base_out receives the first address of the range.
 * @return 0 on success, or:
 *   VMRES_EINVAL  a NULL pointer, an unknown version or policy, or req->min > req->max;
 *   VMRES_ESIZE   req->size is 0;
 *   VMRES_EALIGN  req->align is neither 0, 1 nor a power of two;
 *   VMRES_EOVERFLOW the range cannot exist in a 64-bit space (placed at the first
 *                 multiple of the alignment at or above the clipped min, it
 *                 passes 2^64 - 1; or an exact addr + size - 1 does);
 *   VMRES_ERANGE  the sub-window does not meet the window (checked before
 *                 EOVERFLOW), or an exact range leaves the window or the
 *                 sub-window;
 *   VMRES_EMISALIGNED an exact address that is not a multiple of req->align;
 *   VMRES_EOVERLAP an exact range that overlaps an allocation;
 *   VMRES_ENOSPC  no free gap holds the request (only when truly none does);
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(log n).
 */
int vmres_addr_alloc(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out);

/**
 * vmres_addr_reserve() - allocate exactly [@p base, @p base + @p size - 1].
 * Shorthand for an exact request without alignment (what a guest or firmware chose).
 * @return as vmres_addr_alloc().
 */
int vmres_addr_reserve(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t owner);

/**
 * vmres_addr_release() - free an allocation, which must match it exactly.
 * The freed range merges with the free gaps on either side. A release never
 * needs memory (it turns the allocation into a gap in place, or joins it with
 * the gaps beside it), so it cannot fail for lack of it.
 * @param a the allocator.
 * @param base first address of the allocation.
 * @param size its size.
 * @param owner_out if not NULL, receives the allocation's owner tag.
 * @return 0; VMRES_EINVAL for a NULL allocator; VMRES_ESIZE for size 0;
 *   VMRES_EOVERFLOW if base + size - 1 passes 2^64 - 1; VMRES_ENOENT if no
 *   allocation is exactly [base, base + size - 1] (nothing allocated there, or an
 *   allocation of another size or start).
 * Context: caller serializes; O(log n).
 */
int vmres_addr_release(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t *owner_out);

/**
 * vmres_addr_move() - move the allocation [@p base, @p base + @p size - 1] to
 * start at @p new_base, keeping its size and owner: all or nothing. The new
 * range may overlap the old one (a BAR moved by less than its size).
 * @param a the allocator.
 * @param base first address of the allocation, which must match it exactly.
 * @param size its size.
 * @param new_base the new first address (no alignment is checked: the caller
 *   knows the allocation's).
 * @return 0 (also when @p new_base is @p base); VMRES_EINVAL for a NULL
 *   allocator; VMRES_ESIZE for size 0; VMRES_EOVERFLOW if either range passes
 *   2^64 - 1; VMRES_ENOENT if no allocation is exactly the old range;
 *   VMRES_ERANGE if the new range leaves the window; VMRES_EOVERLAP if it
 *   overlaps another allocation; VMRES_ENOMEM.
 * Context: caller serializes; O(log n).
 */
int vmres_addr_move(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t new_base);

/**
 * vmres_addr_move_check() - would vmres_addr_move() with the same arguments
 * succeed? Makes every check the move makes and sets aside the memory it
 * needs, so that the move, made next with no other change of @p a in between,
 * cannot fail. This is the "prepare" of a transaction whose "commit" is the
 * move; abandoning it needs no call (what was set aside stays for later use).
 * @return as vmres_addr_move().
 * Context: caller serializes; O(log n).
 */
int vmres_addr_move_check(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t new_base);

/**
 * vmres_addr_reserve_check() - would vmres_addr_reserve(@p a, @p base, @p size,
 * owner) succeed? As vmres_addr_move_check(): every check, and the memory
 * the reservation needs is set aside, so that it cannot fail if made next.
 * @return 0; VMRES_EINVAL for a NULL allocator; VMRES_ESIZE for size 0;
 *   VMRES_EOVERFLOW if the range passes 2^64 - 1; VMRES_ERANGE outside the
 *   window; VMRES_EOVERLAP if not free; VMRES_ENOMEM.
 * Context: caller serializes; O(log n).
 */
int vmres_addr_reserve_check(struct vmres_addr *a, uint64_t base, uint64_t size);

/**
 * vmres_addr_find() - the allocation that contains @p addr.
 * @return 0 and fills @p out; VMRES_EINVAL for NULL pointers; VMRES_ENOENT if
 *   @p addr is free or outside the window.
 * Context: O(log n); read-only.
 */
int vmres_addr_find(const struct vmres_addr *a, uint64_t addr, struct vmres_addr_entry *out);

/**
 * vmres_addr_next() - the allocation with the lowest base >= @p from.
 * Iterate with from = entry.last + 1 (stop when entry.last is UINT64_MAX).
 * @return 0 and fills @p out; VMRES_EINVAL for NULL pointers; VMRES_ENOENT if none.
 * Context: O(log n); read-only.
 */
int vmres_addr_next(const struct vmres_addr *a, uint64_t from, struct vmres_addr_entry *out);

/**
 * Callback for iteration: return 0 to go on, anything else to stop (that value
 * is then returned by the iterating function).
 */
typedef int (*vmres_addr_visit_fn)(void *ctx, const struct vmres_addr_entry *entry);

/**
 * vmres_addr_foreach() - visit every allocation in address order.
 * @return 0, VMRES_EINVAL for NULL pointers, or the callback's non-zero value.
 * Context: read-only; the callback must not modify @p a. O(n).
 */
int vmres_addr_foreach(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx);

/**
 * vmres_addr_foreach_gap() - visit every maximal free gap in address order.
 * The entry's owner is 0.
 * @return as vmres_addr_foreach().
 */
int vmres_addr_foreach_gap(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx);

/**
 * vmres_addr_stats() - totals of the allocator.
 * @return 0; VMRES_EINVAL for NULL pointers. Context: O(1); read-only.
 */
int vmres_addr_stats(const struct vmres_addr *a, struct vmres_addr_stats *out);

/**
 * vmres_addr_reserve_capacity() - make room up front for @p n_ranges
 * allocations, so that an allocator that never holds more allocates no memory
 * and takes no page fault afterwards, whatever the order of its allocations,
 * reservations, releases and moves.
 *
 * It sizes the node pools for the worst case (a gap beside every allocation,
 * quarter-full nodes): about VMRES_ADDR_BYTES_PER_ALLOC_MAX bytes per range,
 * committed and faulted in now (vmres_addr_memory() reports them; past 32 KiB
 * of nodes the pool asks for transparent huge pages). Without it, the pools
 * grow on demand, at least doubling each time, and the operations that first
 * touch new memory take its page faults (whose cost depends on the host: a
 * huge page must be zeroed, a VM's host may fault too). Capacity is kept until
 * vmres_addr_free(); a smaller @p n_ranges than already reserved does nothing.
 * @return 0; VMRES_EINVAL if @p a is NULL; VMRES_ENOMEM (the allocations are
 *   unchanged; part of the room may have been made). Context: caller serializes.
 */
int vmres_addr_reserve_capacity(struct vmres_addr *a, uint64_t n_ranges);

/**
 * vmres_addr_memory() - bytes the allocator holds: its header and the node
 * pools' committed bytes (free nodes kept for reuse included).
 * @return 0 and *@p bytes_out; VMRES_EINVAL for NULL pointers. Context:
 *   read-only, O(1).
 */
int vmres_addr_memory(const struct vmres_addr *a, uint64_t *bytes_out);

/**
 * vmres_addr_validate() - check every internal invariant (debug aid for tests).
 * @return 0 if the structure is consistent, VMRES_ECORRUPT otherwise,
 *   VMRES_EINVAL for NULL. Context: O(n); read-only.
 */
int vmres_addr_validate(const struct vmres_addr *a);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ADDR_H */
