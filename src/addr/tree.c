/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator: a B+tree of allocations keyed by start address.
 *
 * Every allocation remembers the size of the free gap right before it, so the
 * gaps need no tree of their own: the gap before entry e is
 * [e.base - e.gap, e.base - 1], and the one gap that precedes no allocation (the
 * "tail", from the last allocation to the window's end) lives in the allocator.
 * Each internal node stores, per child, the lowest start in that child (the
 * routing key), the largest gap in that child's subtree (as vmalloc's
 * subtree_max_size does for a red-black tree) and the largest naturally aligned
 * power-of-two block inside one of those gaps (block_class()). First fit walks
 * down towards the leftmost child that can hold the request and checks the
 * aligned fit, clipped to the sub-window, gap by gap in the leaves; children
 * wholly outside the sub-window are skipped by their keys. Last fit is the
 * mirror image.
 *
 * The summaries are exact, so a walk never enters a child that cannot hold the
 * request by size, and for a power-of-two size aligned to itself (a PCI BAR) not
 * by alignment either. They are kept exact on the update path, which already
 * holds the root-to-leaf path: a gap that grows raises the summaries above it;
 * one that shrinks changes nothing above unless it was the largest of its node,
 * and only then is that node rescanned (vmres__addr_propagate()). Rescans are
 * cheap because every summary has a byte beside it (the bit length of the gap,
 * and the block class), and 16 bytes are compared per SSE2 instruction: the
 * largest bit length is found among the bytes, and only the gaps of that bit
 * length are compared. Searches use the same bytes to pick candidate children.
 *
 * Nodes of 32 entries keep the tree 3-4 levels deep at 100k allocations, so a
 * walk touches few cache lines. A leaf keeps its entries side by side (one
 * memmove per insertion) and the bytes in arrays of their own. Nodes live in two
 * pools (one for leaves, one for internal nodes) of fixed-size chunks, addressed
 * by 32-bit index, with free lists: steady-state operations allocate nothing,
 * growing never copies or re-touches memory already in use, and a large pool
 * takes its chunks from 2 MiB huge-page slabs. Every node but the root is at
 * least a quarter full.
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
static int pool_reserve(struct pool *pl, uint32_t n)
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
static uint32_t pool_take(struct pool *pl)
{
	uint32_t i = pl->free;

	if (i != NIL)
		memcpy(&pl->free, pool_at(pl, i), sizeof(pl->free));
	else
		i = pl->used++;
	pl->live++;
	return i;
}

static void pool_put(struct pool *pl, uint32_t i)
{
	memcpy(pool_at(pl, i), &pl->free, sizeof(pl->free));
	pl->free = i;
	pl->live--;
}

int vmres__addr_reserve_nodes(struct vmres_addr *a, uint32_t leaves, uint32_t inodes)
{
	if (pool_reserve(&a->leaves, leaves) || pool_reserve(&a->inodes, inodes))
		return VMRES_ENOMEM;
	return 0;
}

uint32_t vmres__addr_leaf_take(struct vmres_addr *a)
{
	uint32_t i = pool_take(&a->leaves);
	struct leaf *l = leaf_at(a, i);

	l->count = 0;
	l->prev = NIL;
	l->next = NIL;
	return i;
}

static void leaf_put(struct vmres_addr *a, uint32_t i)
{
	pool_put(&a->leaves, i);
}

static uint32_t inode_take(struct vmres_addr *a)
{
	uint32_t i = pool_take(&a->inodes);

	inode_at(a, i)->count = 0;
	return i;
}

static void inode_put(struct vmres_addr *a, uint32_t i)
{
	pool_put(&a->inodes, i);
}

/* vmres__addr_reserve_for_insert() when the unused chunk slots do not suffice. */
int vmres__addr_reserve_slow(struct vmres_addr *a)
{
	return vmres__addr_reserve_nodes(a, 1, a->height + 1);
}

/* ---- summaries ----------------------------------------------------------- */

/* The bytes find the largest bit length and block class; only the gaps of the
 * largest bit length are compared. */
struct bound vmres__addr_leaf_bound(const struct leaf *l)
{
	uint8_t top, block;
	uint64_t g = 0;

	max_bytes2(l->bits, l->blk, l->count, &top, &block);
	if (top)
		for (uint32_t f = bytes_ge_mask(l->bits, top) & count_mask(l->count); f; f &= f - 1)
			g = max_u64(g, l->e[__builtin_ctz(f)].gap);
	return (struct bound){g, block};
}

static struct bound inode_bound(const struct inode *n)
{
	uint8_t top, block;

	max_bytes2(n->bits, n->blocks, n->count, &top, &block);
	return (struct bound){max_of_top(n->max_gap, n->bits, n->count, top), block};
}

/* Lowest base and bound of the node at @level of a tree of @height. */
void vmres__addr_summary(const struct vmres_addr *a, unsigned int level, uint32_t node,
			 uint64_t *key, struct bound *b)
{
	if (level == a->height) {
		const struct leaf *l = leaf_at(a, node);

		*key = l->count ? l->e[0].base : 0;
		*b = vmres__addr_leaf_bound(l);
	} else {
		const struct inode *n = inode_at(a, node);

		*key = n->key[0];
		*b = inode_bound(n);
	}
}

/* The node at @level of @p changed: bring the keys and bounds of its ancestors
 * up to date, stopping as soon as nothing changes. */
static void fix_up(struct vmres_addr *a, const struct path *p, unsigned int level)
{
	while (level > 0) {
		struct inode *parent = inode_at(a, p->node[level - 1]);
		uint32_t i = p->pos[level - 1];
		uint64_t key;
		struct bound b;

		vmres__addr_summary(a, level, p->node[level], &key, &b);
		if (parent->key[i] == key && bound_equal(parent, i, b))
			return;
		parent->key[i] = key;
		set_bound(parent, i, b);
		level--;
	}
}

/*
 * One component of a parent's summary after child @i's value went from @old to
 * @now, given the parent's summary @total before: the new summary, or -1 when the
 * child held the largest value and shrank: then *rescan is set and the parent
 * must be rescanned.
 */
static inline uint64_t summary_after(uint64_t old, uint64_t now, uint64_t total, bool *rescan)
{
	if (now >= old)
		return max_u64(now, total);
	if (old < total)
		return total;
	*rescan = true;
	return 0;
}

/*
 * Cheaper fix_up() for a change that moved no entry between nodes: the leaf of @p
 * now has lowest base @key and exact bound @b. Each ancestor's summary is derived
 * from its old one when a child's value grew or was not the largest; only a node
 * whose largest value shrank is rescanned. Stops as soon as nothing changes.
 * Inlined into the insertion path (a call costs a tenth of its usual work).
 */
static inline __attribute__((always_inline)) void
propagate(struct vmres_addr *a, const struct path *p, uint64_t key, struct bound b)
{
	struct inode *parent = a->height ? inode_at(a, p->node[a->height - 1]) : NULL;

	for (unsigned int level = a->height; level > 0; level--) {
		uint32_t i = p->pos[level - 1];
		struct inode *grand;
		struct bound old, total;
		bool rescan = false;

		if (parent->key[i] == key && bound_equal(parent, i, b))
			return;
		old = bound_of(parent, i);
		parent->key[i] = key;
		set_bound(parent, i, b);
		if (level == 1)
			return;
		key = parent->key[0];
		grand = inode_at(a, p->node[level - 2]);
		total = bound_of(grand, p->pos[level - 2]);
		b.gap = summary_after(old.gap, b.gap, total.gap, &rescan);
		b.block = (uint8_t)summary_after(old.block, b.block, total.block, &rescan);
		if (rescan)
			b = inode_bound(parent);
		parent = grand;
	}
}

void vmres__addr_propagate(struct vmres_addr *a, const struct path *p, uint64_t key, struct bound b)
{
	propagate(a, p, key, b);
}

/* ---- descent ------------------------------------------------------------- */

/* Walk from the root to the leaf that would hold base @x. */
void vmres__addr_descend(const struct vmres_addr *a, uint64_t x, struct path *p)
{
	uint32_t node = a->root;

	for (unsigned int l = 0; l < a->height; l++) {
		const struct inode *n = inode_at(a, node);
		uint32_t i;

		prefetch_node(n, sizeof(*n));
		i = route(n, x);

		p->node[l] = node;
		p->pos[l] = i;
		node = n->child[i];
	}
	p->node[a->height] = node;
	prefetch_node(leaf_at(a, node), sizeof(struct leaf));
}

/* Move @p to the next leaf in address order; false if it is the last one. */
bool vmres__addr_path_next_leaf(const struct vmres_addr *a, struct path *p)
{
	int l = (int)a->height - 1;

	while (l >= 0 && p->pos[l] + 1 >= inode_at(a, p->node[l])->count)
		l--;
	if (l < 0)
		return false;
	p->pos[l]++;
	for (; l < (int)a->height; l++) {
		p->node[l + 1] = inode_at(a, p->node[l])->child[p->pos[l]];
		if (l + 1 < (int)a->height)
			p->pos[l + 1] = 0;
	}
	return true;
}

/* Walk to the last leaf. */
void vmres__addr_descend_last(const struct vmres_addr *a, struct path *p)
{
	uint32_t node = a->root;

	for (unsigned int l = 0; l < a->height; l++) {
		const struct inode *n = inode_at(a, node);

		p->node[l] = node;
		p->pos[l] = n->count - 1;
		node = n->child[n->count - 1];
	}
	p->node[a->height] = node;
}

/* ---- insertion ----------------------------------------------------------- */

/* Move @cnt children of @src starting at @from to @dst at @at. */
static void inode_copy(struct inode *dst, uint32_t at, const struct inode *src, uint32_t from,
		       uint32_t cnt)
{
	memmove(&dst->key[at], &src->key[from], cnt * sizeof(src->key[0]));
	memmove(&dst->max_gap[at], &src->max_gap[from], cnt * sizeof(src->max_gap[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blocks[at], &src->blocks[from], cnt * sizeof(src->blocks[0]));
	memmove(&dst->child[at], &src->child[from], cnt * sizeof(src->child[0]));
}

static void inode_put_child(struct inode *n, uint32_t pos, uint32_t c, uint64_t key, struct bound b)
{
	inode_copy(n, pos + 1, n, pos, n->count - pos);
	n->key[pos] = key;
	set_bound(n, pos, b);
	n->child[pos] = c;
	n->count++;
}

/* Insert child @c (with its key and bound) at @pos of the internal node at
 * @level of @p, splitting upwards as needed. Nodes were reserved beforehand. */
static void insert_child(struct vmres_addr *a, struct path *p, int level, uint32_t pos, uint32_t c,
			 uint64_t key, struct bound b)
{
	if (level < 0) {
		/* The old root split: grow a new root above both halves. */
		uint32_t r = inode_take(a);
		struct inode *n = inode_at(a, r);
		uint64_t k0;
		struct bound b0;

		vmres__addr_summary(a, 0, a->root, &k0, &b0);
		n->count = 2;
		n->child[0] = a->root;
		n->key[0] = k0;
		set_bound(n, 0, b0);
		n->child[1] = c;
		n->key[1] = key;
		set_bound(n, 1, b);
		a->root = r;
		a->height++;
		return;
	}

	uint32_t idx = p->node[level];
	struct inode *n = inode_at(a, idx);

	if (n->count < NODE_CAP) {
		inode_put_child(n, pos, c, key, b);
		fix_up(a, p, (unsigned int)level);
		return;
	}

	/* An append leaves the old node 3/4 full rather than half. */
	uint32_t ridx = inode_take(a);
	struct inode *r = inode_at(a, ridx);
	uint32_t half = pos == NODE_CAP ? NODE_CAP - NODE_MIN : NODE_CAP / 2;

	n = inode_at(a, idx);
	inode_copy(r, 0, n, half, NODE_CAP - half);
	r->count = NODE_CAP - half;
	n->count = half;
	if (pos <= half)
		inode_put_child(n, pos, c, key, b);
	else
		inode_put_child(r, pos - half, c, key, b);

	if (level > 0) {
		struct inode *parent = inode_at(a, p->node[level - 1]);
		uint32_t ppos = p->pos[level - 1];

		parent->key[ppos] = n->key[0];
		set_bound(parent, ppos, inode_bound(n));
	}
	insert_child(a, p, level - 1, level > 0 ? p->pos[level - 1] + 1 : 0, ridx, r->key[0],
		     inode_bound(r));
}

/* Move @cnt entries from @src starting at @from to @dst at @at. */
static void leaf_copy(struct leaf *dst, uint32_t at, const struct leaf *src, uint32_t from,
		      uint32_t cnt)
{
	memmove(&dst->e[at], &src->e[from], cnt * sizeof(src->e[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blk[at], &src->blk[from], cnt * sizeof(src->blk[0]));
}

/* Inlined: it is on every insertion's path, and the call cost as much as the
 * work when nothing moves. */
static inline __attribute__((always_inline)) void leaf_put_entry(struct leaf *l, uint32_t pos,
								 uint64_t base, uint64_t last,
								 uint64_t gap, uint64_t owner)
{
	uint32_t move = l->count - pos;

	if (move) /* appends (ascending fills) skip the call */
		memmove(&l->e[pos + 1], &l->e[pos], move * sizeof(l->e[0]));
	l->e[pos].base = base;
	l->e[pos].last = last;
	l->e[pos].owner = owner;
	l->e[pos].gap = gap;
	bytes_insert(l->bits, pos, bit_length(gap));
	bytes_insert(l->blk, pos, gap ? block_class(base - gap, base - 1) : 0);
	l->count++;
}

/* Insert an entry at @pos of the leaf of @p, whose bound becomes @b (or is
 * recomputed if @rescan) unless the leaf splits. Nodes were reserved beforehand. */
static void leaf_split_insert(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			      uint64_t last, uint64_t gap, uint64_t owner);

static inline void leaf_insert(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			       uint64_t last, uint64_t gap, uint64_t owner, struct bound b,
			       bool rescan)
{
	struct leaf *l = leaf_at(a, p->node[a->height]);

	if (l->count == LEAF_CAP) {
		leaf_split_insert(a, p, pos, base, last, gap, owner);
		return;
	}
	leaf_put_entry(l, pos, base, last, gap, owner);
	if (a->height > 0) {
		if (rescan)
			b = vmres__addr_leaf_bound(l);
		propagate(a, p, l->e[0].base, b);
	}
}

/* leaf_insert() into a full leaf; out of line, so that the common path keeps
 * its registers (one insertion in about 24 splits). */
static __attribute__((noinline)) void leaf_split_insert(struct vmres_addr *a, struct path *p,
							uint32_t pos, uint64_t base, uint64_t last,
							uint64_t gap, uint64_t owner)
{
	uint32_t idx = p->node[a->height];
	struct leaf *l;

	/* An append or prepend (ascending or descending fills) leaves the old entries
	 * in a node 3/4 full rather than half. */
	uint32_t half = pos == LEAF_CAP ? LEAF_CAP - LEAF_MIN : pos == 0 ? LEAF_MIN : LEAF_CAP / 2;
	uint32_t ridx = vmres__addr_leaf_take(a);
	struct leaf *r = leaf_at(a, ridx);
	uint32_t rn = LEAF_CAP - half;

	l = leaf_at(a, idx);
	leaf_copy(r, 0, l, half, rn);
	r->count = rn;
	l->count = half;
	r->prev = idx;
	r->next = l->next;
	if (l->next != NIL)
		leaf_at(a, l->next)->prev = ridx;
	else
		a->last_leaf = ridx;
	l->next = ridx;
	if (pos <= half)
		leaf_put_entry(l, pos, base, last, gap, owner);
	else
		leaf_put_entry(r, pos - half, base, last, gap, owner);

	if (a->height == 0) {
		insert_child(a, p, -1, 0, ridx, r->e[0].base, vmres__addr_leaf_bound(r));
		return;
	}
	fix_up(a, p, a->height);
	insert_child(a, p, (int)a->height - 1, p->pos[a->height - 1] + 1, ridx, r->e[0].base,
		     vmres__addr_leaf_bound(r));
}

/*
 * Record the allocation [base, base + size - 1] in the gap right before entry
 * @pos of the leaf of @p (or in the tail gap when @pos is past the last entry of
 * the last leaf). The caller checked that it fits and reserved nodes.
 */
void vmres__addr_commit_alloc(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			      uint64_t size, uint64_t owner)
{
	struct leaf *l = leaf_at(a, p->node[a->height]);
	uint64_t last = base + (size - 1);
	uint64_t gap_start;
	struct bound b = {0, 0};
	bool rescan = false;

	/* Splitting a gap only makes gaps smaller: the leaf's bound stays unless the
	 * split gap held its largest gap or block. */
	if (a->height > 0)
		b = stored_bound(a, p, a->height);
	if (pos < l->count) {
		rescan = l->e[pos].gap >= b.gap || l->blk[pos] >= b.block;
		gap_start = l->e[pos].base - l->e[pos].gap;
		leaf_set_gap(l, pos, l->e[pos].base - last - 1);
		a->gaps -= l->e[pos].gap == 0;
	} else {
		gap_start = a->tail_base;
		if (last == a->wlast) {
			a->tail_free = false;
			a->gaps--;
		} else {
			a->tail_base = last + 1;
		}
	}
	a->gaps += base != gap_start;
	if (a->height > 0 && pos == l->count)
		b = bound_max(b, gap_bound(base, base - gap_start));
	leaf_insert(a, p, pos, base, last, base - gap_start, owner, b, rescan);
	a->count++;
	a->used += size;
}

/* ---- deletion ------------------------------------------------------------ */

void vmres__addr_leaf_remove_entry(struct leaf *l, uint32_t pos)
{
	leaf_copy(l, pos, l, pos + 1, l->count - pos - 1);
	l->count--;
}

/*
 * Rebalance the two adjacent children @li and @li + 1 of the internal node at
 * @level: merge them if they fit in one node, else share their entries evenly.
 * Returns true if they were merged (the parent lost a child).
 */
static bool join_children(struct vmres_addr *a, unsigned int level, uint32_t parent, uint32_t li)
{
	struct inode *pn = inode_at(a, parent);
	uint32_t lidx = pn->child[li], ridx = pn->child[li + 1];
	bool merged;

	if (level + 1 == a->height) {
		struct leaf *l = leaf_at(a, lidx), *r = leaf_at(a, ridx);
		uint32_t total = l->count + r->count;

		merged = total <= LEAF_CAP;
		if (merged) {
			leaf_copy(l, l->count, r, 0, r->count);
			l->count = total;
			l->next = r->next;
			if (r->next != NIL)
				leaf_at(a, r->next)->prev = lidx;
			else
				a->last_leaf = lidx;
			leaf_put(a, ridx);
		} else if (l->count < r->count) {
			uint32_t k = (r->count - l->count) / 2;

			leaf_copy(l, l->count, r, 0, k);
			leaf_copy(r, 0, r, k, r->count - k);
			l->count += k;
			r->count -= k;
		} else {
			uint32_t k = (l->count - r->count) / 2;

			leaf_copy(r, k, r, 0, r->count);
			leaf_copy(r, 0, l, l->count - k, k);
			l->count -= k;
			r->count += k;
		}
	} else {
		struct inode *l = inode_at(a, lidx), *r = inode_at(a, ridx);
		uint32_t total = l->count + r->count;

		merged = total <= NODE_CAP;
		if (merged) {
			inode_copy(l, l->count, r, 0, r->count);
			l->count = total;
			inode_put(a, ridx);
		} else if (l->count < r->count) {
			uint32_t k = (r->count - l->count) / 2;

			inode_copy(l, l->count, r, 0, k);
			inode_copy(r, 0, r, k, r->count - k);
			l->count += k;
			r->count -= k;
		} else {
			uint32_t k = (l->count - r->count) / 2;

			inode_copy(r, k, r, 0, r->count);
			inode_copy(r, 0, l, l->count - k, k);
			l->count -= k;
			r->count += k;
		}
	}

	struct bound b;

	vmres__addr_summary(a, level + 1, lidx, &pn->key[li], &b);
	set_bound(pn, li, b);
	if (merged) {
		uint32_t move = pn->count - li - 2;

		inode_copy(pn, li + 1, pn, li + 2, move);
		pn->count--;
	} else {
		vmres__addr_summary(a, level + 1, ridx, &pn->key[li + 1], &b);
		set_bound(pn, li + 1, b);
	}
	return merged;
}

/* The node at @level of @p lost an entry or child: refill it from a sibling if it
 * became too small, then fix the ancestors. */
void vmres__addr_rebalance(struct vmres_addr *a, struct path *p, unsigned int level)
{
	while (level > 0) {
		uint32_t node = p->node[level];
		uint32_t cnt =
			level == a->height ? leaf_at(a, node)->count : inode_at(a, node)->count;
		uint32_t min = level == a->height ? LEAF_MIN : NODE_MIN;
		uint32_t parent = p->node[level - 1];
		uint32_t i = p->pos[level - 1];

		if (cnt >= min) {
			fix_up(a, p, level);
			return;
		}
		if (!join_children(a, level - 1, parent, i ? i - 1 : i)) {
			fix_up(a, p, level - 1);
			return;
		}
		level--;
	}
	/* The root lost a child: drop it if only one is left. */
	if (a->height > 0 && inode_at(a, a->root)->count == 1) {
		uint32_t old = a->root;

		a->root = inode_at(a, old)->child[0];
		a->height--;
		inode_put(a, old);
	}
}
