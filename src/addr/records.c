/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator, part 2 of 2: the record tree, a plain B+tree of the
 * allocations (base, last, owner) keyed by base. It answers release, find and
 * iteration; the gap tree (gaps.c) does the searching.
 *
 * Its keys are separators: child i of a node holds the records with bases in
 * [key[i], key[i + 1]), and a leaf keeps its own separator in lo. A removal never
 * changes a separator, and an insertion never needs the path from the root: the
 * gap an allocation comes from names the leaf of the record before it
 * (struct gap.pred), the new record goes right after that one, and only when it
 * would pass the leaf's end does it go to the next leaf instead (when its base
 * reaches that leaf's lo). A leaf that must split finds its path again by
 * descending to its lo. Whenever records move to another leaf (a split, a merge
 * or a shared refill), the gaps that follow them are told their new leaf.
 *
 * Leaves hold 32 records with their free slots at either end (struct rleaf), so
 * that an insertion or removal moves the shorter side; internal nodes, which
 * keep no summaries, hold 128 children, so that 100000 allocations need only two
 * levels above the leaves.
 */
#include "addr_int.h"

/* ---- nodes --------------------------------------------------------------- */

static uint32_t rleaf_take(struct vmres_addr *a)
{
	uint32_t i = vmres__addr_pool_take(&a->r.leaves);
	struct rleaf *l = rleaf_at(a, i);

	l->count = 0;
	l->head = 0;
	l->prev = NIL;
	l->next = NIL;
	l->lo = 0;
	return i;
}

static uint32_t rinode_take(struct vmres_addr *a)
{
	uint32_t i = vmres__addr_pool_take(&a->r.inodes);

	rinode_at(a, i)->count = 0;
	keys_pad(rinode_at(a, i)->key, 0, RNODE_CAP);
	return i;
}

int vmres__recs_init(struct vmres_addr *a)
{
	vmres__addr_pool_init(&a->r.leaves, sizeof(struct rleaf));
	vmres__addr_pool_init(&a->r.inodes, sizeof(struct rinode));
	if (vmres__addr_pool_reserve(&a->r.leaves, 1))
		return VMRES_ENOMEM;
	a->r.height = 0;
	a->r.root = rleaf_take(a);
	a->r.first_leaf = a->r.root;
	a->r.last_leaf = a->r.root;
	return 0;
}

/* Move the records of @l to the front of its slots. */
static void rleaf_pack(struct rleaf *l)
{
	if (l->head) {
		memmove(l->slot, &l->slot[l->head], l->count * sizeof(l->slot[0]));
		l->head = 0;
	}
}

/* The separator of the node at @level. */
static uint64_t separator(const struct vmres_addr *a, unsigned int level, uint32_t node)
{
	return level == a->r.height ? rleaf_at(a, node)->lo : rinode_at(a, node)->key[0];
}

/* ---- descent ------------------------------------------------------------- */

/* Walk from the root to the leaf whose range holds @x. */
void vmres__recs_descend(const struct vmres_addr *a, uint64_t x, struct path *p)
{
	uint32_t node = a->r.root;

	for (unsigned int l = 0; l < a->r.height; l++) {
		const struct rinode *n = rinode_at(a, node);
		uint32_t i;

		prefetch_node(n->key, sizeof(n->key));
		i = route(n->key, RNODE_CAP, n->count, x);
		p->node[l] = node;
		p->pos[l] = i;
		node = n->child[i];
	}
	p->node[a->r.height] = node;
	prefetch_node(rleaf_at(a, node), sizeof(struct rleaf));
}

/* ---- insertion ----------------------------------------------------------- */

/* Move @cnt children of @src starting at @from to @dst at @at. */
static void rinode_copy(struct rinode *dst, uint32_t at, const struct rinode *src, uint32_t from,
			uint32_t cnt)
{
	memmove(&dst->key[at], &src->key[from], cnt * sizeof(src->key[0]));
	memmove(&dst->child[at], &src->child[from], cnt * sizeof(src->child[0]));
}

/* Cut @n to @count children, padding the keys past them. */
static void rinode_trim(struct rinode *n, uint32_t count)
{
	keys_pad(n->key, count, RNODE_CAP);
	n->count = count;
}

static void rinode_put_child(struct rinode *n, uint32_t pos, uint32_t c, uint64_t key)
{
	rinode_copy(n, pos + 1, n, pos, n->count - pos);
	n->key[pos] = key;
	n->child[pos] = c;
	n->count++;
}

/* Insert child @c with separator @key at @pos of the internal node at @level of
 * @p, splitting upwards as needed. Nodes were reserved beforehand. */
static void insert_child(struct vmres_addr *a, struct path *p, int level, uint32_t pos, uint32_t c,
			 uint64_t key)
{
	if (level < 0) {
		/* The old root split: grow a new root above both halves. */
		uint32_t r = rinode_take(a);
		struct rinode *n = rinode_at(a, r);

		n->count = 2;
		n->child[0] = a->r.root;
		n->key[0] = separator(a, 0, a->r.root);
		n->child[1] = c;
		n->key[1] = key;
		a->r.root = r;
		a->r.height++;
		return;
	}

	struct rinode *n = rinode_at(a, p->node[level]);

	if (n->count < RNODE_CAP) {
		rinode_put_child(n, pos, c, key);
		return;
	}

	/* An append leaves the old node 3/4 full rather than half. */
	uint32_t ridx = rinode_take(a);
	struct rinode *r = rinode_at(a, ridx);
	uint32_t half = pos == RNODE_CAP ? RNODE_CAP - RNODE_MIN : RNODE_CAP / 2;

	n = rinode_at(a, p->node[level]);
	rinode_copy(r, 0, n, half, RNODE_CAP - half);
	r->count = RNODE_CAP - half;
	rinode_trim(n, half);
	if (pos <= half)
		rinode_put_child(n, pos, c, key);
	else
		rinode_put_child(r, pos - half, c, key);
	insert_child(a, p, level - 1, level > 0 ? p->pos[level - 1] + 1 : 0, ridx, r->key[0]);
}

/* Insert into the full leaf @idx at @pos; returns the leaf that holds the new
 * record. Out of line: about one insertion in 20. */
static __attribute__((noinline)) uint32_t split_insert(struct vmres_addr *a, uint32_t idx,
						       uint32_t pos, uint64_t base, uint64_t last,
						       uint64_t owner, uint32_t *at)
{
	unsigned int h = a->r.height;
	struct path p;
	uint32_t half = pos == LEAF_CAP ? LEAF_CAP - LEAF_MIN : pos == 0 ? LEAF_MIN : LEAF_CAP / 2;
	uint32_t ridx = rleaf_take(a);
	struct rleaf *l = rleaf_at(a, idx), *r = rleaf_at(a, ridx);

	vmres__recs_descend(a, l->lo, &p);
	memcpy(r->slot, rec_at(l, half), (LEAF_CAP - half) * sizeof(r->slot[0]));
	r->count = LEAF_CAP - half;
	l->count = half;
	r->prev = idx;
	r->next = l->next;
	if (l->next != NIL)
		rleaf_at(a, l->next)->prev = ridx;
	else
		a->r.last_leaf = ridx;
	l->next = ridx;
	if (pos <= half)
		vmres__rleaf_put(l, pos, base, last, owner);
	else
		vmres__rleaf_put(r, pos - half, base, last, owner);
	r->lo = rec_at(r, 0)->base;
	insert_child(a, &p, (int)h - 1, h ? p.pos[h - 1] + 1 : 0, ridx, r->lo);
	vmres__gaps_set_pred(a, ridx, 0, r->count);
	*at = pos <= half ? pos : pos - half;
	return pos <= half ? idx : ridx;
}

/* vmres__recs_insert() into a full leaf, or one whose successor must take the
 * record. */
uint32_t vmres__recs_insert_slow(struct vmres_addr *a, uint32_t leaf, uint32_t pos, uint64_t base,
				 uint64_t last, uint64_t owner, uint32_t *at)
{
	struct rleaf *l = rleaf_at(a, leaf);

	if (pos == l->count && l->next != NIL && base >= rleaf_at(a, l->next)->lo) {
		leaf = l->next;
		l = rleaf_at(a, leaf);
		pos = 0;
	}
	if (l->count == LEAF_CAP)
		return split_insert(a, leaf, pos, base, last, owner, at);
	vmres__rleaf_put(l, pos, base, last, owner);
	*at = pos;
	return leaf;
}

/* ---- deletion ------------------------------------------------------------ */

/* Node moves for vmres__addr_share(); leaves are packed first (rleaf_pack()). */
static void rleaf_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	struct rleaf *d = dst;
	const struct rleaf *s = src;

	memmove(&d->slot[at], &s->slot[from], cnt * sizeof(s->slot[0]));
}

static void rleaf_count_v(void *l, uint32_t count)
{
	((struct rleaf *)l)->count = count;
}

static void rinode_copy_v(void *dst, uint32_t at, const void *src, uint32_t from, uint32_t cnt)
{
	rinode_copy(dst, at, src, from, cnt);
}

static void rinode_count_v(void *n, uint32_t count)
{
	rinode_trim(n, count);
}

static const struct node_ops rleaf_ops = {LEAF_CAP, rleaf_copy_v, rleaf_count_v};
static const struct node_ops rinode_ops = {RNODE_CAP, rinode_copy_v, rinode_count_v};

/*
 * Rebalance the two adjacent children @li and @li + 1 of the internal node at
 * @level (vmres__addr_share()). Returns true if they were merged (the parent
 * lost a child); else the right one's separator is its new first key.
 */
static bool join_children(struct vmres_addr *a, unsigned int level, uint32_t parent, uint32_t li)
{
	struct rinode *pn = rinode_at(a, parent);
	uint32_t lidx = pn->child[li], ridx = pn->child[li + 1], moved;
	enum share how;

	if (level + 1 == a->r.height) {
		struct rleaf *l = rleaf_at(a, lidx), *r = rleaf_at(a, ridx);
		uint32_t lc = l->count;

		rleaf_pack(l);
		rleaf_pack(r);
		how = vmres__addr_share(l, lc, r, r->count, &rleaf_ops, &moved);
		if (how == SHARE_MERGED) {
			l->next = r->next;
			if (r->next != NIL)
				rleaf_at(a, r->next)->prev = lidx;
			else
				a->r.last_leaf = lidx;
			vmres__addr_pool_put(&a->r.leaves, ridx);
		} else {
			r->lo = r->slot[0].base;
			pn->key[li + 1] = r->lo;
		}
		/* The gaps after the records that moved learn where they are. */
		if (how == SHARE_TO_RIGHT)
			vmres__gaps_set_pred(a, ridx, 0, moved);
		else
			vmres__gaps_set_pred(a, lidx, lc, lc + moved);
	} else {
		struct rinode *l = rinode_at(a, lidx), *r = rinode_at(a, ridx);

		how = vmres__addr_share(l, l->count, r, r->count, &rinode_ops, &moved);
		if (how == SHARE_MERGED)
			vmres__addr_pool_put(&a->r.inodes, ridx);
		else
			pn->key[li + 1] = r->key[0];
	}
	if (how == SHARE_MERGED) {
		rinode_copy(pn, li + 1, pn, li + 2, pn->count - li - 2);
		rinode_trim(pn, pn->count - 1);
	}
	return how == SHARE_MERGED;
}

/* Remove record @pos of the leaf of @p (a path from vmres__recs_descend()). */
void vmres__recs_remove(struct vmres_addr *a, struct path *p, uint32_t pos)
{
	struct rleaf *l = rleaf_at(a, p->node[a->r.height]);
	unsigned int level = a->r.height;
	uint32_t after = l->count - pos - 1;

	/* Close the hole from the shorter side. */
	if (pos < after) {
		memmove(&l->slot[l->head + 1], &l->slot[l->head], pos * sizeof(l->slot[0]));
		l->head++;
	} else {
		memmove(rec_at(l, pos), rec_at(l, pos + 1), after * sizeof(l->slot[0]));
	}
	l->count--;
	while (level > 0) {
		uint32_t node = p->node[level];
		bool leaf = level == a->r.height;
		uint32_t cnt = leaf ? rleaf_at(a, node)->count : rinode_at(a, node)->count;
		uint32_t i = p->pos[level - 1];

		if (cnt >= (leaf ? LEAF_MIN : RNODE_MIN))
			return;
		if (!join_children(a, level - 1, p->node[level - 1], i ? i - 1 : i))
			return;
		level--;
	}
	/* The root lost a child: drop it if only one is left. */
	if (a->r.height > 0 && rinode_at(a, a->r.root)->count == 1) {
		uint32_t old = a->r.root;

		a->r.root = rinode_at(a, old)->child[0];
		a->r.height--;
		vmres__addr_pool_put(&a->r.inodes, old);
	}
}
