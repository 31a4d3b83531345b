/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node pools of the address-space allocator's two B+trees: nodes of one size in
 * one array, addressed by 32-bit index, with a free list.
 *
 * One array, so that a node is one multiply away from its index (a table of
 * chunks cost a dependent load on every step of every walk: about 10% of the
 * instructions of a churn). The array lives in address space reserved up front
 * (PROT_NONE, nothing behind it) and aligned to 2 MiB; it is committed in steps
 * as it grows, and when the reservation is full a four times larger one is
 * reserved and the pages are moved there with mremap(), which moves page-table
 * entries rather than bytes. Large pools ask for transparent huge pages: in a
 * VM, faulting in node memory page by page costs more than the tree work of a
 * fill (measured here: 1.6 us per 4 KiB page against 0.35 us per 4 KiB of a
 * huge page).
 *
 * All growth happens in vmres__addr_pool_reserve(), before an operation changes
 * anything: a node pointer stays valid until the next reservation.
 */
#include "addr_int.h"

#include <stdint.h>
#include <sys/mman.h>

/* A pool this small stays in small pages (a huge page each would waste most of
 * 2 MiB); a larger one moves, once, to space that asks for huge pages. */
#define SMALL_RESERVE ((size_t)256 << 10)
#define LARGE_RESERVE ((size_t)8 << 20)

void vmres__addr_pool_init(struct pool *pl, uint32_t node_size)
{
	memset(pl, 0, sizeof(*pl));
	pl->free = NIL;
	pl->node_size = node_size;
}

void vmres__addr_pool_destroy(struct pool *pl)
{
	if (pl->base)
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

/* Move the array to new space for at least @bytes, committed. */
static int move_to_larger(struct pool *pl, size_t bytes)
{
	bool small = pl->reserved <= SMALL_RESERVE;
	size_t res = SMALL_RESERVE;
	char *p;

	if (bytes > SMALL_RESERVE)
		for (res = small ? LARGE_RESERVE : pl->reserved * 4; res < bytes; res *= 4)
			;
	p = reserve_space(res);
	if (!p)
		return VMRES_ENOMEM;
	if (mprotect(p, bytes, PROT_READ | PROT_WRITE))
		goto fail;
#ifdef MADV_HUGEPAGE
	if (res > SMALL_RESERVE) /* a hint: failure is harmless */
		(void)madvise(p, res, MADV_HUGEPAGE);
#endif
	if (pl->committed && small) {
		/* A few small pages: copy them, so that the new space is all huge. */
		memcpy(p, pl->base, pl->committed);
		munmap(pl->base, pl->reserved);
	} else if (pl->committed) {
		/* Move the pages (page-table entries, not bytes). */
		if (mremap(pl->base, pl->committed, pl->committed, MREMAP_MAYMOVE | MREMAP_FIXED,
			   p) == MAP_FAILED)
			goto fail;
		munmap(pl->base + pl->committed, pl->reserved - pl->committed);
	}
	pl->base = p;
	pl->reserved = res;
	pl->committed = bytes;
	return 0;
fail:
	munmap(p, res);
	return VMRES_ENOMEM;
}

/* Make the first @bytes of the array usable. */
static int commit(struct pool *pl, size_t bytes)
{
	if (bytes > pl->reserved) {
		if (move_to_larger(pl, bytes))
			return VMRES_ENOMEM;
	} else if (mprotect(pl->base + pl->committed, bytes - pl->committed,
			    PROT_READ | PROT_WRITE)) {
		return VMRES_ENOMEM;
	}
	pl->committed = bytes;
	pl->cap = bytes / pl->node_size < NIL ? (uint32_t)(bytes / pl->node_size) : NIL - 1;
	return 0;
}

/* Make sure that @n nodes can be taken without failing. */
int vmres__addr_pool_reserve(struct pool *pl, uint32_t n)
{
	uint32_t avail = pl->cap - pl->used;
	uint64_t need;
	size_t bytes;

	if (avail >= n)
		return 0;
	for (uint32_t i = pl->free; i != NIL && avail < n; avail++)
		memcpy(&i, pool_at(pl, i), sizeof(i));
	if (avail >= n)
		return 0;
	/* Indices stay below NIL. */
	need = (uint64_t)pl->used + (n - avail);
	if (need >= NIL)
		return VMRES_ENOMEM;
	bytes = (size_t)need * pl->node_size;
	if (bytes < pl->committed * 2)
		bytes = pl->committed * 2;
	/* Past the small reservation, whole huge pages: the kernel backs a 2 MiB
	 * range with one only if all of it is in one mapping. */
	bytes = round_up(bytes, bytes > SMALL_RESERVE ? HUGE_BYTES : COMMIT_BYTES);
	return commit(pl, bytes);
}

/* Take a node; vmres__addr_pool_reserve() made sure there is one. */
uint32_t vmres__addr_pool_take(struct pool *pl)
{
	uint32_t i = pl->free;

	if (i != NIL)
		memcpy(&pl->free, pool_at(pl, i), sizeof(pl->free));
	else
		i = pl->used++;
	pl->live++;
	return i;
}

void vmres__addr_pool_put(struct pool *pl, uint32_t i)
{
	memcpy(pool_at(pl, i), &pl->free, sizeof(pl->free));
	pl->free = i;
	pl->live--;
}
