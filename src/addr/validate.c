/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmres_addr_validate(): every invariant of the tree, checked from scratch. */
#include "addr_int.h"

/* ---- validation ---------------------------------------------------------- */

struct check {
	uint32_t leaf;	    /* the next leaf expected in address order */
	uint32_t prev_leaf; /* the leaf visited before it */
	bool any;	    /* an entry was seen */
	uint64_t prev_last; /* last address of the previous entry */
	uint64_t count;
	uint64_t used;
	uint64_t gaps;
	uint32_t leaves;
	uint32_t inodes;
};

static int check_node(const struct vmres_addr *a, struct check *c, unsigned int level,
		      uint32_t node, uint64_t *key, struct bound *truth)
{
	bool is_root = level == 0;

	if (level == a->height) {
		const struct leaf *l;

		if (node >= a->leaves.used || node != c->leaf)
			return VMRES_ECORRUPT;
		l = leaf_at(a, node);
		if (l->count > LEAF_CAP || (!is_root && l->count < LEAF_MIN) ||
		    (!is_root && l->count == 0) || l->prev != c->prev_leaf)
			return VMRES_ECORRUPT;
		for (uint32_t i = 0; i < l->count; i++) {
			uint64_t expect_start = c->any ? c->prev_last + 1 : a->wbase;

			if (c->any && c->prev_last == UINT64_MAX)
				return VMRES_ECORRUPT;
			if (l->e[i].base < expect_start || l->e[i].last < l->e[i].base ||
			    l->e[i].last > a->wlast || l->e[i].gap != l->e[i].base - expect_start ||
			    l->blk[i] != gap_bound(l->e[i].base, l->e[i].gap).block ||
			    l->bits[i] != bit_length(l->e[i].gap))
				return VMRES_ECORRUPT;
			c->gaps += l->e[i].gap != 0;
			c->used += l->e[i].last - l->e[i].base + 1;
			c->count++;
			c->prev_last = l->e[i].last;
			c->any = true;
		}
		*key = l->count ? l->e[0].base : 0;
		*truth = vmres__addr_leaf_bound(l);
		c->prev_leaf = node;
		c->leaf = l->next;
		c->leaves++;
		return 0;
	}

	const struct inode *n;

	if (node >= a->inodes.used)
		return VMRES_ECORRUPT;
	n = inode_at(a, node);
	if (n->count > NODE_CAP || n->count < (is_root ? 2u : NODE_MIN))
		return VMRES_ECORRUPT;
	c->inodes++;
	*truth = (struct bound){0, 0};
	for (uint32_t i = 0; i < n->count; i++) {
		uint64_t k;
		struct bound t;
		int rc = check_node(a, c, level + 1, n->child[i], &k, &t);

		if (rc)
			return rc;
		/* Stored summaries are exact. */
		if (k != n->key[i] || t.gap != n->max_gap[i] || t.block != n->blocks[i] ||
		    n->bits[i] != bit_length(n->max_gap[i]) || (i && n->key[i] <= n->key[i - 1]))
			return VMRES_ECORRUPT;
		*truth = bound_max(*truth, t);
	}
	*key = n->key[0];
	return 0;
}

int vmres_addr_validate(const struct vmres_addr *a)
{
	struct check c = {.leaf = 0, .prev_leaf = NIL};
	uint64_t key, expect_tail;
	struct bound truth;

	if (!a)
		return VMRES_EINVAL;
	if (a->wbase > a->wlast || a->height > MAX_DEPTH)
		return VMRES_ECORRUPT;
	c.leaf = a->first_leaf;
	if (check_node(a, &c, 0, a->root, &key, &truth))
		return VMRES_ECORRUPT;
	if (c.leaf != NIL || c.prev_leaf != a->last_leaf)
		return VMRES_ECORRUPT;
	if (c.leaves != a->leaves.live || c.inodes != a->inodes.live)
		return VMRES_ECORRUPT;
	/* The tail: free exactly when the last entry stops short of the window's end. */
	if (c.any && c.prev_last == a->wlast) {
		if (a->tail_free)
			return VMRES_ECORRUPT;
	} else {
		expect_tail = c.any ? c.prev_last + 1 : a->wbase;
		if (!a->tail_free || a->tail_base != expect_tail)
			return VMRES_ECORRUPT;
		c.gaps++;
	}
	if (c.count != a->count || c.used != a->used || c.gaps != a->gaps)
		return VMRES_ECORRUPT;
	return 0;
}
