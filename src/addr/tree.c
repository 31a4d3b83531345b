/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator: the tree. One B+tree whose entries tile the window
 * in address order: each is an allocation (start, last, owner) or a maximal
 * free gap, and no two gaps are neighbours. A release turns its allocation into
 * a gap in place and joins the gaps on either side; an allocation turns a gap,
 * or a piece of it, into an allocation in place. Most of both move no entry
 * (an exact fit, a release between two allocations), and a release never needs
 * a node. A gap is an entry whose two summary bytes are not 0 (len_bits() of
 * its length, and its block class); an allocation's are 0.
 *
 * Each internal node stores, per child, the lowest start in that child (the
 * routing key), an upper bound on the largest gap in that child's subtree (as
 * vmalloc's subtree_max_size does, but not kept exact) and the largest
 * naturally aligned power-of-two block inside one of its gaps (block_class(),
 * exact). First fit walks down towards the leftmost child that can hold the
 * request and checks the aligned fit, clipped to the sub-window, gap by gap in
 * the leaves; children wholly outside the sub-window are skipped by their
 * keys. Last fit is the mirror image.
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
 * length again (a third of a churn's time when it was measured). Only a
 * search by length (a size that is not a power of two aligned to itself, or a
 * sub-window) reads them, and one that finds no fit in a child it entered
 * tightens that child's bound to what the child holds (vmres__tree_tighten()),
 * so each stale bound misleads at most one search: the extra work is paid for
 * once by the update that made it stale. Searches pick candidate children by
 * the bytes beside each summary.
 *
 * Leaves hold 32 entries and internal nodes 64 children (their byte arrays are
 * read in two halves): at 100000 allocations the tree has 3 levels of internal
 * nodes. Every node but the root is at least a quarter full; bytes past a
 * node's count are kept 0, so that a scan needs no mask.
 */
#include "addr_int.h"

/* ---- nodes --------------------------------------------------------------- */

static uint32_t leaf_take(struct vmres_addr *a)
{
	uint32_t i = vmres__node_pool_take(&a->t.leaves);
	struct leaf *l = leaf_at(a, i);

	l->count = 0;
	l->prev = NIL;
	l->next = NIL;
	memset(l->bits, 0, sizeof(l->bits));
	memset(l->blk, 0, sizeof(l->blk));
	return i;
}

static uint32_t inode_take(struct vmres_addr *a)
{
	uint32_t i = vmres__node_pool_take(&a->t.inodes);
	struct inode *n = inode_at(a, i);

	n->count = 0;
	keys_pad(n->key, 0, NODE_CAP);
	memset(n->bits, 0, sizeof(n->bits));
	memset(n->blocks, 0, sizeof(n->blocks));
	return i;
}

/* Cut @l to @count entries, zeroing the bytes past them. */
static void leaf_trim(struct leaf *l, uint32_t count)
{
	memset(l->bits + count, 0, LEAF_CAP - count);
	memset(l->blk + count, 0, LEAF_CAP - count);
	l->count = count;
}

static void inode_trim(struct inode *n, uint32_t count)
{
	keys_pad(n->key, count, NODE_CAP);
	memset(n->bits + count, 0, NODE_CAP - count);
	memset(n->blocks + count, 0, NODE_CAP - count);
	n->count = count;
}

/* An empty tree, then the one entry of a new allocator: the whole window free. */
int vmres__tree_init(struct vmres_addr *a)
{
	struct leaf *l;

	vmres__node_pool_init(&a->t.leaves, sizeof(struct leaf));
	vmres__node_pool_init(&a->t.inodes, sizeof(struct inode));
	if (vmres__node_pool_reserve(&a->t.leaves, 1))
		return VMRES_ENOMEM;
	a->t.height = 0;
	a->t.root = leaf_take(a);
	a->t.first_leaf = a->t.root;
	a->t.last_leaf = a->t.root;
	l = leaf_at(a, a->t.root);
	leaf_set_gap(l, 0, a->wbase, a->wlast);
	l->count = 1;
	return 0;
}

/* ---- summaries ----------------------------------------------------------- */

/* The exact bound of @l. The bytes find the largest len_bits() and block class;
 * only the gaps of the largest len_bits() are compared (an allocation's byte is
 * 0). */
struct bound vmres__leaf_bound(const struct leaf *l)
{
	uint8_t top, block;
	uint64_t m = 0;

	max_bytes2(l->bits, l->blk, l->count, &top, &block);
	if (top)
		for (uint32_t f = bytes_ge_mask(l->bits, top); f; f &= f - 1) {
			const struct ent *g = &l->e[__builtin_ctz(f)];

			m = max_u64(m, g->last - g->start);
		}
	return (struct bound){m, block};
}

/* The bound of @n from its children's: its block class is exact, its length an
 * upper bound like theirs. Both 32-byte halves at once: the bytes past count
 * are 0. */
static struct bound inode_bound(const struct inode *n)
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
static uint8_t inode_block(const struct inode *n)
{
	uint8_t lo = max_byte(n->blocks, 32), hi = max_byte(n->blocks + 32, 32);

	return lo > hi ? lo : hi;
}

/* Lowest start and bound of the node at @level. */
static void summary(const struct vmres_addr *a, unsigned int level, uint32_t node, uint64_t *key,
		    struct bound *b)
{
	if (level == a->t.height) {
		const struct leaf *l = leaf_at(a, node);

		*key = l->count ? l->e[0].start : 0;
		*b = vmres__leaf_bound(l);
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
 * Cheaper fix_up() for a change that moved no entry between nodes: the leaf of @p
 * now has lowest start @key and bound @b (its length an upper bound). Each
 * ancestor's summary is derived from its old one: a length only ever grows
 * here; a block class that grew or was not the largest is taken as is, and
 * only a node whose largest class shrank is rescanned. Stops as soon as nothing
 * changes. Inlined into the update paths (a call costs a tenth of its usual work).
 */
static inline __attribute__((always_inline)) void
propagate(struct vmres_addr *a, const struct path *p, uint64_t key, struct bound b)
{
	unsigned int h = a->t.height;
	struct inode *parent = h ? inode_at(a, p->node[h - 1]) : NULL;

	for (unsigned int level = h; level > 0; level--) {
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
		b.len = max_u64(b.len, total.len);
		b.block = block_after(old.block, b.block, total.block, &rescan);
		if (rescan)
			b.block = inode_block(parent);
		parent = grand;
	}
}

/* The entries of leaf @l of @p changed in place; its bound is @b, or its block
 * class must be rescanned. */
static inline void leaf_changed(struct vmres_addr *a, const struct path *p, const struct leaf *l,
				struct bound b, bool rescan)
{
	if (a->t.height == 0)
		return;
	if (rescan)
		b.block = max_byte(l->blk, l->count);
	propagate(a, p, l->e[0].start, b);
}

/*
 * A search found no fit in child @i of the internal node @n at @level, which
 * its length bound let it enter: lower that bound to what the child holds
 * (exactly for a leaf; for an internal node, from its children's bounds, which
 * the search may just have tightened). The bounds above stay upper bounds.
 */
void vmres__tree_tighten(struct vmres_addr *a, struct inode *n, unsigned int level, uint32_t i)
{
	uint32_t c = n->child[i];
	uint64_t len = level + 1 == a->t.height ? vmres__leaf_bound(leaf_at(a, c)).len
						: inode_bound(inode_at(a, c)).len;

	if (len < n->max_len[i]) {
		n->max_len[i] = len;
		n->bits[i] = len_bits(len);
	}
}

/* ---- descent ------------------------------------------------------------- */

/* Walk from the root to the leaf that holds (or would hold) an entry starting
 * at @x, asking for its lines on the way. */
void vmres__tree_descend(const struct vmres_addr *a, uint64_t x, struct path *p)
{
	uint32_t node = a->t.root;

	for (unsigned int l = 0; l < a->t.height; l++) {
		const struct inode *n = inode_at(a, node);
		uint32_t i;

		prefetch_node(n->key, sizeof(n->key));
		i = route(n->key, NODE_CAP, n->count, x);
		p->node[l] = node;
		p->pos[l] = i;
		node = n->child[i];
	}
	p->node[a->t.height] = node;
	prefetch_node(leaf_at(a, node), sizeof(struct leaf));
}

/* The entry that holds @x, in the window: its leaf is at the end of @p and its
 * index is returned. */
uint32_t vmres__tree_find(const struct vmres_addr *a, uint64_t x, struct path *p)
{
	vmres__tree_descend(a, x, p);
	return leaf_rank(leaf_at(a, p->node[a->t.height]), x) - 1;
}

/* ---- insertion ----------------------------------------------------------- */

/* Move @cnt children of @src starting at @from to @dst at @at. */
static void inode_copy(struct inode *dst, uint32_t at, const struct inode *src, uint32_t from,
		       uint32_t cnt)
{
	memmove(&dst->key[at], &src->key[from], cnt * sizeof(src->key[0]));
	memmove(&dst->max_len[at], &src->max_len[from], cnt * sizeof(src->max_len[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blocks[at], &src->blocks[from], cnt * sizeof(src->blocks[0]));
	memmove(&dst->child[at], &src->child[from], cnt * sizeof(src->child[0]));
}

static void inode_put_child(struct inode *n, uint32_t pos, uint32_t c, uint64_t key, struct bound b)
{
	if (pos < n->count)
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

		a->shape++;
		summary(a, 0, a->t.root, &k0, &b0);
		n->count = 2;
		n->child[0] = a->t.root;
		n->key[0] = k0;
		set_bound(n, 0, b0);
		n->child[1] = c;
		n->key[1] = key;
		set_bound(n, 1, b);
		a->t.root = r;
		a->t.height++;
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

	a->shape++;
	n = inode_at(a, idx);
	inode_copy(r, 0, n, half, NODE_CAP - half);
	r->count = NODE_CAP - half;
	inode_trim(n, half);
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

/* Move @cnt entries of @src starting at @from to @dst at @at. */
static void leaf_copy(struct leaf *dst, uint32_t at, const struct leaf *src, uint32_t from,
		      uint32_t cnt)
{
	memmove(&dst->e[at], &src->e[from], cnt * sizeof(src->e[0]));
	memmove(&dst->bits[at], &src->bits[from], cnt * sizeof(src->bits[0]));
	memmove(&dst->blk[at], &src->blk[from], cnt * sizeof(src->blk[0]));
}

/*
 * Split the full leaf of @p: its entries from @half on move to a new leaf after
 * it. The two hold the gaps the one held, so only their own summaries in the
 * parent change: exact block classes, and the old length bound for both.
 */
static void leaf_split(struct vmres_addr *a, struct path *p, uint32_t half)
{
	unsigned int h = a->t.height;
	uint32_t idx = p->node[h];
	uint32_t ridx = leaf_take(a);
	struct leaf *l = leaf_at(a, idx), *r = leaf_at(a, ridx);
	struct bound b;

	a->shape++;
	leaf_copy(r, 0, l, half, l->count - half);
	r->count = l->count - half;
	leaf_trim(l, half);
	r->prev = idx;
	r->next = l->next;
	if (l->next != NIL)
		leaf_at(a, l->next)->prev = ridx;
	else
		a->t.last_leaf = ridx;
	l->next = ridx;
	if (h == 0) {
		insert_child(a, p, -1, 0, ridx, r->e[0].start, vmres__leaf_bound(r));
		return;
	}
	struct inode *parent = inode_at(a, p->node[h - 1]);
	uint32_t i = p->pos[h - 1];

	b = (struct bound){parent->max_len[i], max_byte(r->blk, r->count)};
	parent->blocks[i] = max_byte(l->blk, l->count);
	/* The parent's own summary does not change: no fix_up(). */
	if (parent->count < NODE_CAP)
		inode_put_child(parent, i + 1, ridx, r->e[0].start, b);
	else
		insert_child(a, p, (int)h - 1, i + 1, ridx, r->e[0].start, b);
}

static inline struct bound leaf_stored(const struct vmres_addr *a, const struct path *p)
{
	return a->t.height ? stored_bound(a, p, a->t.height) : (struct bound){0, 0};
}

/* ---- updates ------------------------------------------------------------- */

/*
 * The gap of block class @old in the leaf of @p shrank or went, and nothing in
 * that leaf grew: if it held the leaf's largest class, the classes stored
 * above are brought down, each node rescanned only while it held its parent's
 * largest. Lengths are upper bounds and stay, keys did not change.
 */
static void block_shrunk(struct vmres_addr *a, const struct path *p, const struct leaf *l,
			 uint8_t old)
{
	unsigned int level = a->t.height;
	uint8_t now;

	if (level == 0 || old < inode_at(a, p->node[level - 1])->blocks[p->pos[level - 1]])
		return;
	now = max_byte(l->blk, l->count);
	for (; level > 0; level--) {
		struct inode *parent = inode_at(a, p->node[level - 1]);
		uint32_t i = p->pos[level - 1];

		old = parent->blocks[i];
		if (old == now)
			return;
		parent->blocks[i] = now;
		if (level == 1 || old < inode_at(a, p->node[level - 2])->blocks[p->pos[level - 2]])
			return;
		now = inode_block(parent);
	}
}

/*
 * The gap at @pos of the leaf of @p gives [base, last] to an allocation of
 * @owner; what is left of it on either side stays free. Returns how many gaps
 * are left of it (0 to 2). Nodes were reserved beforehand for a split.
 * Nothing grows and the first entry still starts where the gap did, so only a
 * block class can change above the leaf, and only down.
 */
uint32_t vmres__tree_carve(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			   uint64_t last, uint64_t owner)
{
	struct leaf *l = leaf_at(a, p->node[a->t.height]);
	uint64_t s = l->e[pos].start, t = l->e[pos].last;
	uint32_t left = base > s, extra = left + (last < t);
	uint8_t old = l->blk[pos], top = 0;

	if (l->count + extra > LEAF_CAP) {
		/* Make room first: an append keeps the old leaf 3/4 full, an
		 * insertion near the front 1/4, so that more of the same fit. */
		uint32_t half = pos + 1 < LEAF_MIN	     ? LEAF_MIN
				: pos >= LEAF_CAP - LEAF_MIN ? LEAF_CAP - LEAF_MIN
							     : LEAF_CAP / 2;

		leaf_split(a, p, min_u64(half, l->count - LEAF_MIN));
		pos = vmres__tree_find(a, s, p);
		l = leaf_at(a, p->node[a->t.height]);
	}
	if (extra) {
		uint32_t move = l->count - pos - 1;

		/* Past the last entry (a fill's tail) the bytes are 0 already. */
		if (move) {
			memmove(&l->e[pos + 1 + extra], &l->e[pos + 1], move * sizeof(l->e[0]));
			for (uint32_t k = 0; k < extra; k++) {
				bytes_insert(l->bits, pos + 1, 0);
				bytes_insert(l->blk, pos + 1, 0);
			}
		}
		l->count += extra;
	}
	if (left) {
		leaf_set_gap(l, pos, s, base - 1);
		top = l->blk[pos++];
	}
	leaf_set_alloc(l, pos, base, last, owner);
	if (last < t) {
		leaf_set_gap(l, pos + 1, last + 1, t);
		top = l->blk[pos + 1] > top ? l->blk[pos + 1] : top;
	}
	if (top < old)
		block_shrunk(a, p, l, old);
	return extra;
}

/* ---- deletion ------------------------------------------------------------ */

/* The entry moves of one node type: copy @cnt entries of @src from @from to @dst
 * at @at (the ranges may overlap), and set a node's count. */
struct node_ops {
	uint32_t cap;
	void (*copy)(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt);
	void (*set_count)(void *node, uint32_t count);
};

/*
 * Rebalance sibling nodes @l and @r (@lc and @rc entries, @l first): all of @r
 * moves into @l if they fit (true: merged), else half the difference moves
 * from the fuller to the other. Deletions use it for leaves and internal nodes
 * alike.
 */
static bool share_nodes(void *l, uint32_t lc, void *r, uint32_t rc, const struct node_ops *o)
{
	uint32_t k;

	if (lc + rc <= o->cap) {
		o->copy(l, lc, r, 0, rc);
		o->set_count(l, lc + rc);
		return true;
	}
	if (lc < rc) {
		k = (rc - lc) / 2;
		o->copy(l, lc, r, 0, k);
		o->set_count(l, lc + k);
		o->copy(r, 0, r, k, rc - k);
		o->set_count(r, rc - k);
		return false;
	}
	k = (lc - rc) / 2;
	o->copy(r, k, r, 0, rc);
	o->copy(r, 0, l, lc - k, k);
	o->set_count(r, rc + k);
	o->set_count(l, lc - k);
	return false;
}

static void leaf_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	leaf_copy(dst, at, src, from, cnt);
}

static void leaf_trim_v(void *l, uint32_t count)
{
	leaf_trim(l, count);
}

static void inode_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	inode_copy(dst, at, src, from, cnt);
}

static void inode_trim_v(void *n, uint32_t count)
{
	inode_trim(n, count);
}

static const struct node_ops leaf_ops = {LEAF_CAP, leaf_copy_v, leaf_trim_v};
static const struct node_ops inode_ops = {NODE_CAP, inode_copy_v, inode_trim_v};

/*
 * Rebalance the two adjacent children @li and @li + 1 of the internal node at
 * @level (share_nodes()). Returns true if they were merged (the parent
 * lost a child).
 */
static bool join_children(struct vmres_addr *a, unsigned int level, uint32_t parent, uint32_t li)
{
	struct inode *pn = inode_at(a, parent);
	uint32_t lidx = pn->child[li], ridx = pn->child[li + 1];
	bool merged;
	struct bound b;

	a->shape++;
	if (level + 1 == a->t.height) {
		struct leaf *l = leaf_at(a, lidx), *r = leaf_at(a, ridx);

		merged = share_nodes(l, l->count, r, r->count, &leaf_ops);
		if (merged) {
			l->next = r->next;
			if (r->next != NIL)
				leaf_at(a, r->next)->prev = lidx;
			else
				a->t.last_leaf = lidx;
			vmres__node_pool_put(&a->t.leaves, ridx);
		}
	} else {
		struct inode *l = inode_at(a, lidx), *r = inode_at(a, ridx);

		merged = share_nodes(l, l->count, r, r->count, &inode_ops);
		if (merged)
			vmres__node_pool_put(&a->t.inodes, ridx);
	}
	summary(a, level + 1, lidx, &pn->key[li], &b);
	set_bound(pn, li, b);
	if (merged) {
		inode_copy(pn, li + 1, pn, li + 2, pn->count - li - 2);
		inode_trim(pn, pn->count - 1);
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
		bool leaf = level == a->t.height;
		uint32_t cnt = leaf ? leaf_at(a, node)->count : inode_at(a, node)->count;
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
	if (a->t.height > 0 && inode_at(a, a->t.root)->count == 1) {
		uint32_t old = a->t.root;

		a->shape++;
		a->t.root = inode_at(a, old)->child[0];
		a->t.height--;
		vmres__node_pool_put(&a->t.inodes, old);
	}
}

/* Remove @n entries at @pos of @l (their bytes shift in registers, zeros come
 * in at the end). */
static inline void leaf_drop(struct leaf *l, uint32_t pos, uint32_t n)
{
	uint32_t move = l->count - pos - n;

	if (move)
		memmove(&l->e[pos], &l->e[pos + n], move * sizeof(l->e[0]));
	for (uint32_t k = 0; k < n; k++) {
		bytes_remove(l->bits, pos);
		bytes_remove(l->blk, pos);
	}
	l->count -= n;
}

/* Remove entry @pos of the leaf of @p. */
void vmres__tree_remove(struct vmres_addr *a, struct path *p, uint32_t pos)
{
	unsigned int h = a->t.height;
	struct leaf *l = leaf_at(a, p->node[h]);
	struct bound gone = ent_bound(l, pos), stored = leaf_stored(a, p);

	leaf_drop(l, pos, 1);
	if (h > 0 && l->count < LEAF_MIN)
		rebalance(a, p, h);
	else
		leaf_changed(a, p, l, stored, gone.block && gone.block >= stored.block);
}

/* The @n entries from @pos of the leaf of @p (an allocation and the gaps
 * beside it) become one gap [start, last], which starts where the first of
 * them did. */
void vmres__tree_collapse(struct vmres_addr *a, struct path *p, uint32_t pos, uint32_t n,
			  uint64_t start, uint64_t last)
{
	unsigned int h = a->t.height;
	struct leaf *l = leaf_at(a, p->node[h]);
	struct bound stored = leaf_stored(a, p);

	leaf_set_gap(l, pos, start, last);
	if (n > 1)
		leaf_drop(l, pos + 1, n - 1);
	/* The new gap holds those it swallowed: no class shrank. */
	if (h > 0 && l->count < LEAF_MIN)
		rebalance(a, p, h);
	else
		leaf_changed(a, p, l, bound_max(stored, ent_bound(l, pos)), false);
}
