/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node pools of the address-space allocator's two B+trees: nodes of one size in
 * fixed-size chunks, addressed by 32-bit index, with a free list. Steady-state
 * operations allocate nothing, growing never copies or re-touches memory already
 * in use, and a large pool takes its chunks from 2 MiB huge-page slabs.
 */
#include "addr_int.h"

#include <stdlib.h>
#include <sys/mman.h>

/* ---- node pools ---------------------------------------------------------- */

void vmres__addr_pool_init(struct pool *pl, uint32_t node_size)
{
	memset(pl, 0, sizeof(*pl));
	pl->free = NIL;
	pl->node_size = node_size;
}

void vmres__addr_pool_destroy(struct pool *pl)
{
	for (uint32_t i = 0; i < pl->chunks && i < SLAB_AFTER; i++)
		free(pl->chunk[i]);
	for (uint32_t i = 0; i < pl->slabs; i++)
		free(pl->slab[i]);
	free(pl->chunk);
	free(pl->slab);
}

/*
 * Memory for one more chunk. A large pool takes its chunks from 2 MiB slabs
 * aligned to 2 MiB and marked for transparent huge pages: in a VM, faulting in
 * node memory page by page costs more than the tree work of a fill (measured
 * here: 1.6 us per 4 KiB page against 0.35 us per 4 KiB of a huge page).
 */
static void *pool_new_chunk(struct pool *pl)
{
	size_t bytes = (size_t)CHUNK_NODES * pl->node_size;
	void *s;

	if (pl->chunks < SLAB_AFTER)
		return malloc(bytes);
	if (pl->slab_left == 0) {
		if (pl->slabs == pl->slabs_cap) {
			uint32_t cap = pl->slabs_cap ? pl->slabs_cap * 2 : 8;
			void **t = realloc(pl->slab, cap * sizeof(*t));

			if (!t)
				return NULL;
			pl->slab = t;
			pl->slabs_cap = cap;
		}
		s = aligned_alloc(SLAB_BYTES, SLAB_BYTES);
		if (!s)
			return NULL;
#ifdef MADV_HUGEPAGE
		(void)madvise(s, SLAB_BYTES, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
		pl->slab[pl->slabs++] = s;
		pl->slab_left = (uint32_t)(SLAB_BYTES / bytes);
	}
	s = pl->slab[pl->slabs - 1];
	return (char *)s + (size_t)(SLAB_BYTES / bytes - pl->slab_left--) * bytes;
}

/* Make sure that @n nodes can be taken without failing. */
int vmres__addr_pool_reserve(struct pool *pl, uint32_t n)
{
	uint32_t avail = pl->chunks * CHUNK_NODES - pl->used;

	if (avail >= n)
		return 0;
	for (uint32_t i = pl->free; i != NIL && avail < n; avail++)
		memcpy(&i, pool_at(pl, i), sizeof(i));
	while (avail < n) {
		void *c;

		if (pl->chunks >= (NIL >> CHUNK_SHIFT) - 1)
			return VMRES_ENOMEM;
		if (pl->chunks == pl->chunks_cap) {
			uint32_t cap = pl->chunks_cap ? pl->chunks_cap * 2 : 16;
			void **t = realloc(pl->chunk, cap * sizeof(*t));

			if (!t)
				return VMRES_ENOMEM;
			pl->chunk = t;
			pl->chunks_cap = cap;
		}
		c = pool_new_chunk(pl);
		if (!c)
			return VMRES_ENOMEM;
		pl->chunk[pl->chunks++] = c;
		avail += CHUNK_NODES;
	}
	return 0;
}

/* Take a node; pool_reserve() made sure there is one. */
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

