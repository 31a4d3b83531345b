/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node pools of the address-space allocator's B+tree (node_pool.c; never
 * installed): nodes of one size in one array, addressed by 32-bit index, with a
 * free list. The tree (addr_int.h) is built on them; they know nothing of it. */
#ifndef VMRES_ADDR_NODE_POOL_H
#define VMRES_ADDR_NODE_POOL_H

#include <vmres/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No node: indices stay below it. */
#define NIL UINT32_MAX
/* A transparent huge page: large node pools grow in steps of these. */
#define HUGE_BYTES (2u << 20)

/* Nodes of one size in one array: node i is at base + i * node_size. A free
 * node holds the index of the next free one in its first four bytes. */
struct node_pool {
	char *base;	  /* a heap block, or (when large) reserved address space */
	size_t reserved;  /* bytes of the block or of address space at base */
	size_t committed; /* bytes at base that may be used */
	uint32_t cap;	  /* nodes that fit in the committed bytes */
	uint32_t used;	  /* nodes ever handed out */
	uint32_t free;
	uint32_t live;
	uint32_t node_size;
	bool huge;  /* asked for huge pages */
	bool sized; /* vmres__node_pool_capacity() made it large: huge pages */
};

static inline void *node_pool_at(const struct node_pool *pl, uint32_t i)
{
	return pl->base + (size_t)i * pl->node_size;
}

/* An empty pool of @p node_size-byte nodes (at least 4); allocates nothing. */
void vmres__node_pool_init(struct node_pool *pl, uint32_t node_size);
/* Frees the array; every node index becomes invalid. */
void vmres__node_pool_destroy(struct node_pool *pl);
/* vmres__node_pool_reserve()'s slow path: 0, or VMRES_ENOMEM with nothing changed. */
int vmres__node_pool_reserve_slow(struct node_pool *pl, uint32_t n);
/* Takes a node; vmres__node_pool_reserve() must have made sure there is one. */
uint32_t vmres__node_pool_take(struct node_pool *pl);
/* Room for @p total live nodes in all, committed and faulted in now (the
 * capacity hint, vmres_addr_reserve_capacity()): 0, or VMRES_ENOMEM with
 * nothing changed. */
int vmres__node_pool_capacity(struct node_pool *pl, uint64_t total);
/* Bytes the pool holds (its heap block, or its committed address space). */
size_t vmres__node_pool_bytes(const struct node_pool *pl);
/* Gives node @p i back to the free list. */
void vmres__node_pool_put(struct node_pool *pl, uint32_t i);

/* Make sure that @p n nodes can be taken without failing (0, or VMRES_ENOMEM
 * with nothing changed); a node pointer stays valid until the next call that
 * grows the array. Inline, since it is on every allocation's path and the nodes
 * never handed out mostly suffice. */
static inline int vmres__node_pool_reserve(struct node_pool *pl, uint32_t n)
{
	return pl->cap - pl->used >= n ? 0 : vmres__node_pool_reserve_slow(pl, n);
}

#endif /* VMRES_ADDR_NODE_POOL_H */
