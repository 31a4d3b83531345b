/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node pools of the address-space allocator's B+tree: nodes of one size in
 * one array, addressed by 32-bit index, with a free list.
 *
 * One array, so that a node is one multiply away from its index (a table of
 * chunks cost a dependent load on every step of every walk: about 5% of the
 * instructions of a churn). A small pool is an ordinary heap block that doubles
 * by realloc(): creating an allocator stays as cheap as a few malloc() calls.
 * Past SMALL_RESERVE the array moves into address space reserved up front
 * (PROT_NONE, nothing behind it) and aligned to 2 MiB, committed there in whole
 * huge pages as it grows; when the reservation is full a four times larger one
 * is reserved and the pages move with mremap(), which moves page-table entries
 * rather than bytes. Once the nodes in use fill half a heap block's worth, the
 * array asks for transparent huge pages (moving once more, so that no 2 MiB
 * range is already touched): in a VM, faulting in node memory page by page costs
 * more than the tree work of a fill (measured here: 1.6 us per 4 KiB page
 * against 0.35 us per 4 KiB of a huge page). A pool that only keeps room stays
 * in small pages.
 *
 * All growth happens in vmres__node_pool_reserve(), before an operation changes
 * anything: a node pointer stays valid until the next reservation. Growth at
 * least doubles the array (past the heap block, in whole 2 MiB steps) and
 * leaves page faults to first use: faulting the new part in at once
 * (MADV_POPULATE_WRITE) was measured slower, as it filled ranges with 4 KiB
 * pages before they could get a huge one. vmres_addr_reserve_capacity()
 * instead sizes the pools once, for the worst case, asks for huge pages if they
 * are large enough, and faults them in there (vmres__node_pool_capacity()).
 */
#include "node_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A pool up to this size is a heap block; a larger one lives in reserved
 * address space, first LARGE_RESERVE bytes of it. */
#define SMALL_RESERVE ((size_t)64 << 10)
#define LARGE_RESERVE ((size_t)8 << 20)

void vmres__node_pool_init(struct node_pool *pl, uint32_t node_size)
{
	memset(pl, 0, sizeof(*pl));
	pl->free = NIL;
	pl->node_size = node_size;
}

void vmres__node_pool_destroy(struct node_pool *pl)
{
	if (pl->reserved <= SMALL_RESERVE)
		free(pl->base);
	else
		munmap(pl->base, pl->reserved);
}

static size_t round_up(size_t x, size_t to)
{
	return (x + to - 1) / to * to;
}

/* @bytes of inaccessible address space aligned to HUGE_BYTES, or NULL. */
static char *reserve_space(size_t bytes)
{
	size_t span = bytes + HUGE_BYTES;
	char *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start;

	if (p == MAP_FAILED)
		return NULL;
	start = (char *)round_up((uintptr_t)p, HUGE_BYTES);
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + span > start + bytes)
		munmap(start + bytes, (size_t)(p + span - (start + bytes)));
	return start;
}

/* True once the nodes in use fill half a heap block: from then on the pool asks
 * for huge pages. A pool that only keeps room stays in small pages. */
static bool wants_huge(const struct node_pool *pl)
{
	return (size_t)pl->used * pl->node_size >= SMALL_RESERVE / 2 || pl->sized;
}

/*
 * Move the array to new reserved space of @res bytes, the first @bytes usable.
 * A heap block, or an array that is to ask for huge pages from now on, is
 * copied (the kernel gives a huge page only to a 2 MiB range nothing has
 * touched); otherwise its pages move with mremap(). Changes nothing on failure.
 */
static int move_array(struct node_pool *pl, size_t res, size_t bytes)
{
	bool huge = pl->huge || wants_huge(pl);
	bool copy = pl->reserved <= SMALL_RESERVE || huge != pl->huge;
	char *p = reserve_space(res);

	if (!p)
		return VMRES_ENOMEM;
	if (mprotect(p, bytes, PROT_READ | PROT_WRITE))
		goto fail;
#ifdef MADV_HUGEPAGE
	if (huge) /* a hint: failure is harmless */
		(void)madvise(p, res, MADV_HUGEPAGE);
#endif
	if (copy) {
		if (pl->used) /* (a pool sized before its first node has no array) */
			memcpy(p, pl->base, (size_t)pl->used * pl->node_size);
		if (pl->reserved <= SMALL_RESERVE)
			free(pl->base);
		else
			munmap(pl->base, pl->reserved);
	} else if (mremap(pl->base, pl->committed, pl->committed, MREMAP_MAYMOVE | MREMAP_FIXED,
			  p) == MAP_FAILED) {
		goto fail;
	} else {
		munmap(pl->base + pl->committed, pl->reserved - pl->committed);
	}
	pl->base = p;
	pl->reserved = res;
	pl->huge = huge;
	return 0;
fail:
	munmap(p, res);
	return VMRES_ENOMEM;
}

/*
 * Fault in @bytes at @p (never handed out nodes) now, so that the allocations
 * that use them later take no page fault: a write to every 4 KiB (in a range
 * that asked for huge pages, the first write to each 2 MiB faults in one).
 */
static void prefault(char *p, size_t bytes)
{
	if (!bytes)
		return;
	for (size_t off = 0; off < bytes; off += 4096)
		((volatile char *)p)[off] = 0;
	((volatile char *)p)[bytes - 1] = 0;
}

/* Make the first @bytes of the array usable. */
static int commit(struct node_pool *pl, size_t bytes)
{
	if (bytes <= SMALL_RESERVE) {
		char *p = realloc(pl->base, bytes);

		if (!p)
			return VMRES_ENOMEM;
		pl->base = p;
		pl->reserved = bytes;
	} else if (bytes > pl->reserved) {
		size_t res = pl->reserved <= SMALL_RESERVE ? LARGE_RESERVE : pl->reserved * 4;

		while (res < bytes)
			res *= 4;
		if (move_array(pl, res, bytes))
			return VMRES_ENOMEM;
	} else if (!pl->huge && wants_huge(pl)) {
		/* Time for huge pages: into fresh space of the same size. */
		if (move_array(pl, pl->reserved, bytes))
			return VMRES_ENOMEM;
	} else if (mprotect(pl->base + pl->committed, bytes - pl->committed,
			    PROT_READ | PROT_WRITE)) {
		return VMRES_ENOMEM;
	}
	pl->committed = bytes;
	pl->cap = bytes / pl->node_size < NIL ? (uint32_t)(bytes / pl->node_size) : NIL - 1;
	return 0;
}

/* Make the array hold at least @total nodes (at least double what it holds;
 * @exact: just what it takes, in whole pages below a huge page). */
static int grow_to(struct node_pool *pl, uint64_t total, bool exact)
{
	size_t bytes;

	/* Indices stay below NIL. */
	if (total >= NIL)
		return VMRES_ENOMEM;
	bytes = (size_t)total * pl->node_size;
	if (!exact && bytes < pl->committed * 2)
		bytes = pl->committed * 2;
	/* Past the heap block, whole huge pages: the kernel backs a 2 MiB range with
	 * one only if all of it is in one mapping. */
	if (bytes > SMALL_RESERVE)
		bytes = round_up(bytes, exact && bytes < HUGE_BYTES ? 4096 : HUGE_BYTES);
	return commit(pl, bytes);
}

/* vmres__node_pool_reserve() when the nodes never handed out are too few:
 * count the free list, then grow. */
int vmres__node_pool_reserve_slow(struct node_pool *pl, uint32_t n)
{
	uint32_t avail = pl->cap - pl->used;

	for (uint32_t i = pl->free; i != NIL && avail < n; avail++)
		memcpy(&i, node_pool_at(pl, i), sizeof(i));
	if (avail >= n)
		return 0;
	return grow_to(pl, (uint64_t)pl->used + (n - avail), false);
}

/* Make room for @total live nodes in all, committed and faulted in. */
int vmres__node_pool_capacity(struct node_pool *pl, uint64_t total)
{
	if (total >= NIL)
		return VMRES_ENOMEM;
	size_t from;
	int rc;

	if (total <= pl->live || pl->cap - pl->live >= total - pl->live)
		return 0; /* (nodes on the free list count as room) */
	/* A pool sized for this much asks for huge pages from the start. */
	pl->sized = total * pl->node_size >= SMALL_RESERVE / 2;
	from = (size_t)pl->used * pl->node_size;
	rc = grow_to(pl, total, true);
	if (rc == 0)
		prefault(pl->base + from, pl->committed - from);
	return rc;
}

size_t vmres__node_pool_bytes(const struct node_pool *pl)
{
	return pl->reserved <= SMALL_RESERVE ? pl->reserved : pl->committed;
}

/* Take a node; vmres__node_pool_reserve() made sure there is one. */
uint32_t vmres__node_pool_take(struct node_pool *pl)
{
	uint32_t i = pl->free;

	if (i != NIL)
		memcpy(&pl->free, node_pool_at(pl, i), sizeof(pl->free));
	else
		i = pl->used++;
	pl->live++;
	return i;
}

void vmres__node_pool_put(struct node_pool *pl, uint32_t i)
{
	memcpy(node_pool_at(pl, i), &pl->free, sizeof(pl->free));
	pl->free = i;
	pl->live--;
}
