/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmres_addr_validate(): every invariant of the tree, checked from scratch. */
#include "addr_int.h"

struct tree_check {
	uint32_t leaf;	    /* the next leaf expected in address order */
	uint32_t prev_leaf; /* the leaf visited before it */
	uint64_t cursor;    /* where the next entry must start */
	bool end;	    /* an entry ended at UINT64_MAX: none may follow */
	bool prev_gap;	    /* the entry before was a gap */
	uint64_t count;
	uint64_t used;
	uint64_t gaps;
	uint32_t leaves;
	uint32_t inodes;
};

/* Bytes [from, cap) are 0. */
static bool zero_from(const uint8_t *bytes, uint32_t from, uint32_t cap)
{
	for (uint32_t i = from; i < cap; i++)
		if (bytes[i])
			return false;
	return true;
}

/* The keys of an internal node past its count are UINT64_MAX (keys_pad()). */
static bool padded_from(const uint64_t *key, uint32_t from, uint32_t cap)
{
	for (uint32_t i = from; i < cap; i++)
		if (key[i] != UINT64_MAX)
			return false;
	return true;
}

/* Entry @i of @l: it starts where the one before ended, and its bytes say
 * what it is; two gaps never touch. */
static bool check_entry(const struct vmres_addr *a, struct tree_check *c, const struct leaf *l,
			uint32_t i)
{
	const struct ent *e = &l->e[i];
	bool gap = ent_is_gap(l, i);

	if (c->end || e->start != c->cursor || e->last < e->start || e->last > a->wlast)
		return false;
	if (gap) {
		if (c->prev_gap || e->owner || l->bits[i] != len_bits(e->last - e->start) ||
		    l->blk[i] != block_class(e->start, e->last))
			return false;
		c->gaps++;
	} else {
		if (l->blk[i])
			return false;
		c->count++;
		c->used += e->last - e->start + 1;
	}
	c->prev_gap = gap;
	c->end = e->last == UINT64_MAX;
	c->cursor = e->last + 1;
	return true;
}

static int check_tree_node(const struct vmres_addr *a, struct tree_check *c, unsigned int level,
		      uint32_t node, uint64_t *key, struct bound *truth)
{
	bool is_root = level == 0;

	if (level == a->t.height) {
		const struct leaf *l;

		if (node >= a->t.leaves.used || node != c->leaf)
			return VMRES_ECORRUPT;
		l = leaf_at(a, node);
		if (l->count > LEAF_CAP || l->count == 0 || (!is_root && l->count < LEAF_MIN) ||
		    l->prev != c->prev_leaf || !zero_from(l->bits, l->count, LEAF_CAP) ||
		    !zero_from(l->blk, l->count, LEAF_CAP))
			return VMRES_ECORRUPT;
		for (uint32_t i = 0; i < l->count; i++)
			if (!check_entry(a, c, l, i))
				return VMRES_ECORRUPT;
		*key = l->e[0].start;
		*truth = vmres__leaf_bound(l);
		c->prev_leaf = node;
		c->leaf = l->next;
		c->leaves++;
		return 0;
	}

	const struct inode *n;

	if (node >= a->t.inodes.used)
		return VMRES_ECORRUPT;
	n = inode_at(a, node);
	if (n->count > NODE_CAP || n->count < (is_root ? 2u : NODE_MIN) ||
	    !zero_from(n->bits, n->count, NODE_CAP) || !zero_from(n->blocks, n->count, NODE_CAP) ||
	    !padded_from(n->key, n->count, NODE_CAP))
		return VMRES_ECORRUPT;
	c->inodes++;
	*truth = (struct bound){0, 0};
	for (uint32_t i = 0; i < n->count; i++) {
		uint64_t k;
		struct bound t;
		int rc = check_tree_node(a, c, level + 1, n->child[i], &k, &t);

		if (rc)
			return rc;
		/* Block classes are exact, lengths upper bounds. */
		if (k != n->key[i] || t.len > n->max_len[i] || t.block != n->blocks[i] ||
		    n->bits[i] != len_bits(n->max_len[i]))
			return VMRES_ECORRUPT;
		*truth = bound_max(*truth, t);
	}
	*key = n->key[0];
	return 0;
}

/* While the finger counts (finger_shape is shape), its path leads from the root
 * to a leaf, and side[] bounds the block classes of the gaps before and after
 * that leaf (see finger_fit() in addr.c). */
static bool check_finger(const struct vmres_addr *a)
{
	const struct path *f = &a->finger;
	unsigned int h = a->t.height;
	uint8_t side[2] = {0, 0};
	bool seen = false;

	if (a->finger_shape != a->shape)
		return true;
	if (f->node[0] != a->t.root)
		return false;
	for (unsigned int level = 0; level < h; level++) {
		const struct inode *n = inode_at(a, f->node[level]);

		if (f->pos[level] >= n->count || n->child[f->pos[level]] != f->node[level + 1])
			return false;
	}
	for (uint32_t li = a->t.first_leaf; li != NIL; li = leaf_at(a, li)->next) {
		const struct leaf *l = leaf_at(a, li);
		uint8_t m = max_byte(l->blk, LEAF_CAP);

		if (li == f->node[h])
			seen = true;
		else if (m > side[seen])
			side[seen] = m;
	}
	return seen && (a->side[0] == FINGER_UNKNOWN || a->side[0] >= side[0]) &&
	       (a->side[1] == FINGER_UNKNOWN || a->side[1] >= side[1]);
}

int vmres_addr_validate(const struct vmres_addr *a)
{
	struct tree_check c = {.leaf = NIL, .prev_leaf = NIL};
	struct bound truth;
	uint64_t key;

	if (!a)
		return VMRES_EINVAL;
	c.leaf = a->t.first_leaf;
	c.cursor = a->wbase;
	if (a->wbase > a->wlast || a->t.height > MAX_DEPTH ||
	    check_tree_node(a, &c, 0, a->t.root, &key, &truth))
		return VMRES_ECORRUPT;
	/* The entries tile the window; the counts add up. */
	if ((!c.end && c.cursor != a->wlast + 1) || c.leaf != NIL ||
	    c.prev_leaf != a->t.last_leaf || c.leaves != a->t.leaves.live ||
	    c.inodes != a->t.inodes.live || c.count != a->count || c.used != a->used ||
	    c.gaps != a->gaps || !check_finger(a))
		return VMRES_ECORRUPT;
	return 0;
}
