/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator, part 1 of 2: the gap tree, a B+tree of every maximal
 * free gap keyed by its start. It is the search index: the record tree
 * (records.c) holds the allocations, and a failed or successful search never
 * touches it.
 *
 * Each internal node stores, per child, the lowest start in that child (the
 * routing key), the largest gap in that child's subtree (as vmalloc's
 * subtree_max_size does for a red-black tree) and the largest naturally aligned
 * power-of-two block inside one of those gaps (block_class()). First fit walks
 * down towards the leftmost child that can hold the request and checks the
 * aligned fit, clipped to the sub-window, gap by gap in the leaves; children
 * wholly outside the sub-window are skipped by their keys. Last fit is the
 * mirror image.
 *
 * The block classes are exact, so a walk for a power-of-two size aligned to
 * itself (a PCI BAR) never enters a child that cannot hold it. They are kept
 * exact on the update path, which already holds the root-to-leaf path: a gap
 * that grows raises the summaries above it; one that shrinks changes nothing
 * above unless it held the largest class of its node, and only then is that
 * node's byte array rescanned (propagate()), 16 bytes per SSE2 instruction.
 *
 * The largest lengths are upper bounds: a gap that grows raises them, one that
 * shrinks or goes leaves them alone. Keeping them exact meant, on a shrink of
 * the largest gap, reading every gap of its length class and every child's
 * length again: a third of a churn's time (see docs/BENCHMARKS.md). Only a
 * search by length (a size that is not a power of two aligned to itself, or a
 * sub-window) reads them, and one that finds no fit in a child it entered
 * tightens that child's bound to what the child holds (vmres__gaps_tighten()),
 * so each stale bound misleads at most one search: the extra work is paid for
 * once by the update that made it stale. Each summary has a byte beside it
 * (len_bits() of the length, and the block class); searches pick candidate
 * children by those bytes.
 *
 * A gap also remembers the record-tree leaf of the allocation right before it
 * (struct gap.pred), so that an allocation goes straight to its leaf; the record
 * tree calls vmres__gaps_set_pred() when it moves records between leaves.
 *
 * Leaves hold 32 gaps and internal nodes 64 children (their byte arrays are read
 * in two halves), which keeps the tree 2 levels deep at 20000 gaps. Every node
 * but the root is at least a quarter full; bytes past a node's count are kept 0,
 * so that a scan needs no mask.
 */
#include "addr_int.h"

/* ---- nodes --------------------------------------------------------------- */

static uint32_t gleaf_take(struct vmres_addr *a)
{
	uint32_t i = vmres__addr_pool_take(&a->g.leaves);
	struct gleaf *l = gleaf_at(a, i);

	l->count = 0;
	l->prev = NIL;
	l->next = NIL;
	memset(l->bits, 0, sizeof(l->bits));
	memset(l->blk, 0, sizeof(l->blk));
	return i;
}

static uint32_t ginode_take(struct vmres_addr *a)
{
	uint32_t i = vmres__addr_pool_take(&a->g.inodes);
	struct ginode *n = ginode_at(a, i);

	n->count = 0;
	keys_pad(n->key, 0, NODE_CAP);
	memset(n->bits, 0, sizeof(n->bits));
	memset(n->blocks, 0, sizeof(n->blocks));
	return i;
}

/* Cut @l to @count gaps, zeroing the bytes past them. */
static void gleaf_trim(struct gleaf *l, uint32_t count)
{
	memset(l->bits + count, 0, LEAF_CAP - count);
	memset(l->blk + count, 0, LEAF_CAP - count);
	l->count = count;
}

static void ginode_trim(struct ginode *n, uint32_t count)
{
	keys_pad(n->key, count, NODE_CAP);
	memset(n->bits + count, 0, NODE_CAP - count);
	memset(n->blocks + count, 0, NODE_CAP - count);
	n->count = count;
}

/* An empty tree, then the one gap of a new allocator: the whole window. */
int vmres__gaps_init(struct vmres_addr *a)
{
	struct gleaf *l;

	vmres__addr_pool_init(&a->g.leaves, sizeof(struct gleaf));
	vmres__addr_pool_init(&a->g.inodes, sizeof(struct ginode));
	if (vmres__addr_pool_reserve(&a->g.leaves, 1))
		return VMRES_ENOMEM;
	a->g.height = 0;
	a->g.root = gleaf_take(a);
	a->g.first_leaf = a->g.root;
	a->g.last_leaf = a->g.root;
	l = gleaf_at(a, a->g.root);
	gleaf_set(l, 0, a->wbase, a->wlast);
	l->g[0].pred = (struct pred){NIL, 0};
	l->count = 1;
	return 0;
}

/* ---- summaries ----------------------------------------------------------- */

/* The exact bound of @l. The bytes find the largest len_bits() and block class;
 * only the gaps of the largest len_bits() are compared. */
struct bound vmres__gleaf_bound(const struct gleaf *l)
{
	uint8_t top, block;
	uint64_t m = 0;

	max_bytes2(l->bits, l->blk, l->count, &top, &block);
	if (top)
		for (uint32_t f = bytes_ge_mask(l->bits, top); f; f &= f - 1) {
			const struct gap *g = &l->g[__builtin_ctz(f)];

			m = max_u64(m, g->last - g->start);
		}
	return (struct bound){m, block};
}

/* The bound of @n from its children's: its block class is exact, its length an
 * upper bound like theirs. Both 32-byte halves at once: the bytes past count
 * are 0. */
static struct bound ginode_bound(const struct ginode *n)
{
	uint8_t top, block, top2, block2;

	max_bytes2(n->bits, n->blocks, 32, &top, &block);
	if (n->count > 32) {
		max_bytes2(n->bits + 32, n->blocks + 32, 32, &top2, &block2);
		top = top2 > top ? top2 : top;
		block = block2 > block ? block2 : block;
	}
	return (struct bound){max_of_top64(n->max_len, n->bits, top), block};
}

/* The largest block class of @n's children. */
static uint8_t ginode_block(const struct ginode *n)
{
	uint8_t lo = max_byte(n->blocks, 32), hi = max_byte(n->blocks + 32, 32);

	return lo > hi ? lo : hi;
}

/* Lowest start and bound of the node at @level. */
static void summary(const struct vmres_addr *a, unsigned int level, uint32_t node, uint64_t *key,
		    struct bound *b)
{
	if (level == a->g.height) {
		const struct gleaf *l = gleaf_at(a, node);

		*key = l->count ? l->g[0].start : 0;
		*b = vmres__gleaf_bound(l);
	} else {
		const struct ginode *n = ginode_at(a, node);

		*key = n->key[0];
		*b = ginode_bound(n);
	}
}

/* The node at @level of @p changed: bring the keys and bounds of its ancestors
 * up to date, stopping as soon as nothing changes. */
static void fix_up(struct vmres_addr *a, const struct path *p, unsigned int level)
{
	while (level > 0) {
		struct ginode *parent = ginode_at(a, p->node[level - 1]);
		uint32_t i = p->pos[level - 1];
		uint64_t key;
		struct bound b;

		summary(a, level, p->node[level], &key, &b);
		if (parent->key[i] == key && bound_equal(parent, i, b))
			return;
		parent->key[i] = key;
		set_bound(parent, i, b);
		level--;
	}
}

/*
 * A parent's block class after child @i's went from @old to @now, given the
 * parent's class @total before; or, when the child held the largest class and
 * its class shrank, *rescan is set and the parent must be rescanned.
 */
static inline uint8_t block_after(uint8_t old, uint8_t now, uint8_t total, bool *rescan)
{
	if (now >= old)
		return now > total ? now : total;
	if (old < total)
		return total;
	*rescan = true;
	return 0;
}

/*
 * Cheaper fix_up() for a change that moved no gap between nodes: the leaf of @p
 * now has lowest start @key and bound @b (its length an upper bound). Each
 * ancestor's summary is derived from its old one: a length only ever grows
 * here; a block class that grew or was not the largest is taken as is, and
 * only a node whose largest class shrank is rescanned. Stops as soon as nothing
 * changes. Inlined into the update paths (a call costs a tenth of its usual work).
 */
static inline __attribute__((always_inline)) void
propagate(struct vmres_addr *a, const struct path *p, uint64_t key, struct bound b)
{
	unsigned int h = a->g.height;
	struct ginode *parent = h ? ginode_at(a, p->node[h - 1]) : NULL;

	for (unsigned int level = h; level > 0; level--) {
		uint32_t i = p->pos[level - 1];
		struct ginode *grand;
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
		grand = ginode_at(a, p->node[level - 2]);
		total = bound_of(grand, p->pos[level - 2]);
		b.len = max_u64(b.len, total.len);
		b.block = block_after(old.block, b.block, total.block, &rescan);
		if (rescan)
			b.block = ginode_block(parent);
		parent = grand;
	}
}

/* The gaps of leaf @l of @p changed in place; its bound is @b, or its block
 * class must be rescanned. */
static inline void leaf_changed(struct vmres_addr *a, const struct path *p, const struct gleaf *l,
				struct bound b, bool rescan)
{
	if (a->g.height == 0)
		return;
	if (rescan)
		b.block = max_byte(l->blk, l->count);
	propagate(a, p, l->g[0].start, b);
}

/* True if a gap of block class @old, which became @now, may have held its
 * leaf's largest class (@stored). */
static inline bool lost_top(uint8_t old, uint8_t now, uint8_t stored)
{
	return now < old && old >= stored;
}

/*
 * A search found no fit in child @i of the internal node @n at @level, which
 * its length bound let it enter: lower that bound to what the child holds
 * (exactly for a leaf; for an internal node, from its children's bounds, which
 * the search may just have tightened). The bounds above stay upper bounds.
 */
void vmres__gaps_tighten(struct vmres_addr *a, struct ginode *n, unsigned int level, uint32_t i)
{
	uint32_t c = n->child[i];
	uint64_t len = level + 1 == a->g.height ? vmres__gleaf_bound(gleaf_at(a, c)).len
						: ginode_bound(ginode_at(a, c)).len;

	if (len < n->max_len[i]) {
		n->max_len[i] = len;
		n->bits[i] = len_bits(len);
	}
}

/* ---- descent ------------------------------------------------------------- */

/* Walk from the root to the leaf that would hold a gap starting at @x. */
static void descend(const struct vmres_addr *a, uint64_t x, struct path *p)
{
	uint32_t node = a->g.root;

	for (unsigned int l = 0; l < a->g.height; l++) {
		const struct ginode *n = ginode_at(a, node);
		uint32_t i;

		prefetch_node(n->key, sizeof(n->key));
		i = route(n->key, NODE_CAP, n->count, x);
		p->node[l] = node;
		p->pos[l] = i;
		node = n->child[i];
	}
	p->node[a->g.height] = node;
	prefetch_node(gleaf_at(a, node), sizeof(struct gleaf));
}

/* The gap with the greatest start <= @x: false if there is none; else its leaf
 * is at the end of @p and its index in *pos. Either way @p leads to the leaf
 * where a gap starting at @x belongs, after *pos (or at 0 when false). */
bool vmres__gaps_find(const struct vmres_addr *a, uint64_t x, struct path *p, uint32_t *pos)
{
	uint32_t r;

	descend(a, x, p);
	r = gleaf_rank(gleaf_at(a, p->node[a->g.height]), x);
	*pos = r ? r - 1 : 0;
	return r > 0;
}

/* Records [from, to) of record leaf @leaf moved there (or were just put
 * there): every gap right after one of them learns where it is. The gaps are
 * side by side in address order: one descent, then a walk beside the records. */
void vmres__gaps_set_pred(struct vmres_addr *a, uint32_t leaf, uint32_t from, uint32_t to)
{
	const struct rleaf *r = rleaf_at(a, leaf);
	uint64_t lo, hi;
	struct path p;
	uint32_t pos, li;

	/* A record that ends the 64-bit space has no gap after it. */
	if (from >= to || rec_at(r, from)->last == UINT64_MAX)
		return;
	lo = rec_at(r, from)->last + 1;
	hi = rec_at(r, to - 1)->last == UINT64_MAX ? UINT64_MAX : rec_at(r, to - 1)->last + 1;
	if (vmres__gaps_find(a, lo, &p, &pos) &&
	    gleaf_at(a, p.node[a->g.height])->g[pos].start < lo)
		pos++;
	for (li = p.node[a->g.height]; li != NIL; li = gleaf_at(a, li)->next, pos = 0) {
		struct gleaf *l = gleaf_at(a, li);

		for (; pos < l->count; pos++) {
			struct gap *g = &l->g[pos];

			if (g->start > hi)
				return;
			while (rec_at(r, from)->last + 1 < g->start)
				from++;
			g->pred = (struct pred){leaf, from};
		}
	}
}

/* ---- insertion ----------------------------------------------------------- */

/* Move @cnt children of @src starting at @from to @dst at @at. */
static void ginode_copy(struct ginode *dst, uint32_t at, const struct ginode *src, uint32_t from,
			uint32_t cnt)
{
	memmove(&dst->key[at], &src->key[from], cnt * sizeof(src->key[0]));
	memmove(&dst->max_len[at], &src->max_len[from], cnt * sizeof(src->max_len[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blocks[at], &src->blocks[from], cnt * sizeof(src->blocks[0]));
	memmove(&dst->child[at], &src->child[from], cnt * sizeof(src->child[0]));
}

static void ginode_put_child(struct ginode *n, uint32_t pos, uint32_t c, uint64_t key,
			     struct bound b)
{
	ginode_copy(n, pos + 1, n, pos, n->count - pos);
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
		uint32_t r = ginode_take(a);
		struct ginode *n = ginode_at(a, r);
		uint64_t k0;
		struct bound b0;

		summary(a, 0, a->g.root, &k0, &b0);
		n->count = 2;
		n->child[0] = a->g.root;
		n->key[0] = k0;
		set_bound(n, 0, b0);
		n->child[1] = c;
		n->key[1] = key;
		set_bound(n, 1, b);
		a->g.root = r;
		a->g.height++;
		return;
	}

	uint32_t idx = p->node[level];
	struct ginode *n = ginode_at(a, idx);

	if (n->count < NODE_CAP) {
		ginode_put_child(n, pos, c, key, b);
		fix_up(a, p, (unsigned int)level);
		return;
	}

	/* An append leaves the old node 3/4 full rather than half. */
	uint32_t ridx = ginode_take(a);
	struct ginode *r = ginode_at(a, ridx);
	uint32_t half = pos == NODE_CAP ? NODE_CAP - NODE_MIN : NODE_CAP / 2;

	n = ginode_at(a, idx);
	ginode_copy(r, 0, n, half, NODE_CAP - half);
	r->count = NODE_CAP - half;
	ginode_trim(n, half);
	if (pos <= half)
		ginode_put_child(n, pos, c, key, b);
	else
		ginode_put_child(r, pos - half, c, key, b);

	if (level > 0) {
		struct ginode *parent = ginode_at(a, p->node[level - 1]);
		uint32_t ppos = p->pos[level - 1];

		parent->key[ppos] = n->key[0];
		set_bound(parent, ppos, ginode_bound(n));
	}
	insert_child(a, p, level - 1, level > 0 ? p->pos[level - 1] + 1 : 0, ridx, r->key[0],
		     ginode_bound(r));
}

/* Move @cnt gaps from @src starting at @from to @dst at @at. */
static void gleaf_copy(struct gleaf *dst, uint32_t at, const struct gleaf *src, uint32_t from,
		       uint32_t cnt)
{
	memmove(&dst->g[at], &src->g[from], cnt * sizeof(src->g[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blk[at], &src->blk[from], cnt * sizeof(src->blk[0]));
}

/* Inlined: it is on every insertion's path. */
static inline __attribute__((always_inline)) void
gleaf_put(struct gleaf *l, uint32_t pos, uint64_t start, uint64_t last, struct pred pred)
{
	uint32_t move = l->count - pos;

	if (move)
		memmove(&l->g[pos + 1], &l->g[pos], move * sizeof(l->g[0]));
	l->g[pos].start = start;
	l->g[pos].last = last;
	l->g[pos].pred = pred;
	bytes_insert(l->bits, pos, len_bits(last - start));
	bytes_insert(l->blk, pos, block_class(start, last));
	l->count++;
}

/* Insert a gap at @pos of the full leaf of @p. Out of line, so that the common
 * path keeps its registers. */
static __attribute__((noinline)) void split_insert(struct vmres_addr *a, struct path *p,
						   uint32_t pos, uint64_t start, uint64_t last,
						   struct pred pred)
{
	unsigned int h = a->g.height;
	uint32_t idx = p->node[h];
	/* An append or prepend leaves the old gaps in a node 3/4 full. */
	uint32_t half = pos == LEAF_CAP ? LEAF_CAP - LEAF_MIN : pos == 0 ? LEAF_MIN : LEAF_CAP / 2;
	uint32_t ridx = gleaf_take(a);
	struct gleaf *l = gleaf_at(a, idx), *r = gleaf_at(a, ridx);

	gleaf_copy(r, 0, l, half, LEAF_CAP - half);
	r->count = LEAF_CAP - half;
	gleaf_trim(l, half);
	r->prev = idx;
	r->next = l->next;
	if (l->next != NIL)
		gleaf_at(a, l->next)->prev = ridx;
	else
		a->g.last_leaf = ridx;
	l->next = ridx;
	if (pos <= half)
		gleaf_put(l, pos, start, last, pred);
	else
		gleaf_put(r, pos - half, start, last, pred);

	if (h > 0)
		fix_up(a, p, h);
	insert_child(a, p, (int)h - 1, h ? p->pos[h - 1] + 1 : 0, ridx, r->g[0].start,
		     vmres__gleaf_bound(r));
}

/* Insert a gap at @pos of the leaf of @p, whose bound becomes @b (or is
 * rescanned) unless the leaf splits. Nodes were reserved beforehand. */
static inline void leaf_insert(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t start,
			       uint64_t last, struct pred pred, struct bound b, bool rescan)
{
	struct gleaf *l = gleaf_at(a, p->node[a->g.height]);

	a->gaps++;
	if (l->count == LEAF_CAP) {
		split_insert(a, p, pos, start, last, pred);
		return;
	}
	gleaf_put(l, pos, start, last, pred);
	leaf_changed(a, p, l, b, rescan);
}

/* Remove gap @pos of @l (its bytes shift in registers, a zero comes in at the
 * end). */
static inline void gleaf_drop(struct gleaf *l, uint32_t pos)
{
	uint32_t move = l->count - pos - 1;

	if (move)
		memmove(&l->g[pos], &l->g[pos + 1], move * sizeof(l->g[0]));
	bytes_remove(l->bits, pos);
	bytes_remove(l->blk, pos);
	l->count--;
}

/* ---- updates ------------------------------------------------------------- */

static inline struct bound leaf_stored(const struct vmres_addr *a, const struct path *p)
{
	return a->g.height ? stored_bound(a, p, a->g.height) : (struct bound){0, 0};
}

/* Gap @pos of the leaf of @p becomes [start, last] (order kept). */
void vmres__gaps_set(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t start,
		     uint64_t last)
{
	struct gleaf *l = gleaf_at(a, p->node[a->g.height]);
	struct bound old, now, stored;

	if (a->g.height == 0) {
		gleaf_set(l, pos, start, last);
		return;
	}
	old = gap_bound(l, pos);
	stored = stored_bound(a, p, a->g.height);
	gleaf_set(l, pos, start, last);
	now = gap_bound(l, pos);
	leaf_changed(a, p, l, bound_max(stored, now), lost_top(old.block, now.block, stored.block));
}

/*
 * Gap @pos of the leaf of @p, [s, t], loses [base, last] from its middle
 * (s < base, last < t): it becomes [s, base - 1], followed by a new gap
 * [last + 1, t] whose allocation before it is in record leaf @pred.
 */
void vmres__gaps_split(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
		       uint64_t last, struct pred pred)
{
	struct gleaf *l = gleaf_at(a, p->node[a->g.height]);
	struct bound stored = leaf_stored(a, p);
	uint64_t s = l->g[pos].start, t = l->g[pos].last;
	bool rescan = a->g.height && l->blk[pos] >= stored.block;

	gleaf_set(l, pos, s, base - 1);
	leaf_insert(a, p, pos + 1, last + 1, t, pred, stored, rescan);
}

/* Insert the gap [start, last] at @pos of the leaf of @p. */
void vmres__gaps_insert(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t start,
			uint64_t last, struct pred pred)
{
	struct bound b = {last - start, block_class(start, last)};

	leaf_insert(a, p, pos, start, last, pred, bound_max(leaf_stored(a, p), b), false);
}

/* ---- deletion ------------------------------------------------------------ */

static void gleaf_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	gleaf_copy(dst, at, src, from, cnt);
}

static void gleaf_trim_v(void *l, uint32_t count)
{
	gleaf_trim(l, count);
}

static void ginode_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	ginode_copy(dst, at, src, from, cnt);
}

static void ginode_trim_v(void *n, uint32_t count)
{
	ginode_trim(n, count);
}

static const struct node_ops gleaf_ops = {LEAF_CAP, gleaf_copy_v, gleaf_trim_v};
static const struct node_ops ginode_ops = {NODE_CAP, ginode_copy_v, ginode_trim_v};

/*
 * Rebalance the two adjacent children @li and @li + 1 of the internal node at
 * @level (vmres__addr_share()). Returns true if they were merged (the parent
 * lost a child).
 */
static bool join_children(struct vmres_addr *a, unsigned int level, uint32_t parent, uint32_t li)
{
	struct ginode *pn = ginode_at(a, parent);
	uint32_t lidx = pn->child[li], ridx = pn->child[li + 1], moved;
	bool merged;
	struct bound b;

	if (level + 1 == a->g.height) {
		struct gleaf *l = gleaf_at(a, lidx), *r = gleaf_at(a, ridx);

		merged = vmres__addr_share(l, l->count, r, r->count, &gleaf_ops, &moved) ==
			 SHARE_MERGED;
		if (merged) {
			l->next = r->next;
			if (r->next != NIL)
				gleaf_at(a, r->next)->prev = lidx;
			else
				a->g.last_leaf = lidx;
			vmres__addr_pool_put(&a->g.leaves, ridx);
		}
	} else {
		struct ginode *l = ginode_at(a, lidx), *r = ginode_at(a, ridx);

		merged = vmres__addr_share(l, l->count, r, r->count, &ginode_ops, &moved) ==
			 SHARE_MERGED;
		if (merged)
			vmres__addr_pool_put(&a->g.inodes, ridx);
	}
	summary(a, level + 1, lidx, &pn->key[li], &b);
	set_bound(pn, li, b);
	if (merged) {
		ginode_copy(pn, li + 1, pn, li + 2, pn->count - li - 2);
		ginode_trim(pn, pn->count - 1);
	} else {
		summary(a, level + 1, ridx, &pn->key[li + 1], &b);
		set_bound(pn, li + 1, b);
	}
	return merged;
}

/* The node at @level of @p lost an entry or child: refill it from a sibling if it
 * became too small, then fix the ancestors. */
static void rebalance(struct vmres_addr *a, struct path *p, unsigned int level)
{
	while (level > 0) {
		uint32_t node = p->node[level];
		bool leaf = level == a->g.height;
		uint32_t cnt = leaf ? gleaf_at(a, node)->count : ginode_at(a, node)->count;
		uint32_t i = p->pos[level - 1];

		if (cnt >= (leaf ? LEAF_MIN : NODE_MIN)) {
			fix_up(a, p, level);
			return;
		}
		if (!join_children(a, level - 1, p->node[level - 1], i ? i - 1 : i)) {
			fix_up(a, p, level - 1);
			return;
		}
		level--;
	}
	/* The root lost a child: drop it if only one is left. */
	if (a->g.height > 0 && ginode_at(a, a->g.root)->count == 1) {
		uint32_t old = a->g.root;

		a->g.root = ginode_at(a, old)->child[0];
		a->g.height--;
		vmres__addr_pool_put(&a->g.inodes, old);
	}
}

/* Remove gap @pos of the leaf of @p. */
void vmres__gaps_remove(struct vmres_addr *a, struct path *p, uint32_t pos)
{
	unsigned int h = a->g.height;
	struct gleaf *l = gleaf_at(a, p->node[h]);
	struct bound gone = gap_bound(l, pos), stored = leaf_stored(a, p);

	gleaf_drop(l, pos);
	a->gaps--;
	if (h > 0 && l->count < LEAF_MIN)
		rebalance(a, p, h);
	else
		leaf_changed(a, p, l, stored, gone.block >= stored.block);
}

/* Gap @pos of the leaf of @p (pos > 0) swallows the gap before it: the space
 * between them was freed. */
void vmres__gaps_merge(struct vmres_addr *a, struct path *p, uint32_t pos)
{
	unsigned int h = a->g.height;
	struct gleaf *l = gleaf_at(a, p->node[h]);
	struct bound stored = leaf_stored(a, p);

	gleaf_set(l, pos - 1, l->g[pos - 1].start, l->g[pos].last);
	gleaf_drop(l, pos);
	a->gaps--;
	if (h > 0 && l->count < LEAF_MIN)
		rebalance(a, p, h);
	else
		leaf_changed(a, p, l, bound_max(stored, gap_bound(l, pos - 1)), false);
}
