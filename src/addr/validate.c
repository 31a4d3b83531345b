/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmres_addr_validate(): every invariant of both trees, checked from scratch. */
#include "addr_int.h"

/* ---- the gap tree -------------------------------------------------------- */

struct gcheck {
	uint32_t leaf;	    /* the next leaf expected in address order */
	uint32_t prev_leaf; /* the leaf visited before it */
	bool any;
	uint64_t prev_last;
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

static int check_gnode(const struct vmres_addr *a, struct gcheck *c, unsigned int level,
		       uint32_t node, uint64_t *key, struct bound *truth)
{
	bool is_root = level == 0;

	if (level == a->g.height) {
		const struct gleaf *l;

		if (node >= a->g.leaves.used || node != c->leaf)
			return VMRES_ECORRUPT;
		l = gleaf_at(a, node);
		if (l->count > LEAF_CAP || (!is_root && l->count < LEAF_MIN) ||
		    l->prev != c->prev_leaf || !zero_from(l->bits, l->count, LEAF_CAP) ||
		    !zero_from(l->blk, l->count, LEAF_CAP))
			return VMRES_ECORRUPT;
		for (uint32_t i = 0; i < l->count; i++) {
			const struct gap *g = &l->g[i];

			/* Gaps are maximal: two of them never touch. */
			if (g->start > g->last || g->start < a->wbase || g->last > a->wlast ||
			    (c->any &&
			     (c->prev_last == UINT64_MAX || g->start <= c->prev_last + 1)) ||
			    l->bits[i] != len_bits(g->last - g->start) ||
			    l->blk[i] != block_class(g->start, g->last))
				return VMRES_ECORRUPT;
			c->prev_last = g->last;
			c->any = true;
		}
		*key = l->count ? l->g[0].start : 0;
		*truth = vmres__gleaf_bound(l);
		c->prev_leaf = node;
		c->leaf = l->next;
		c->leaves++;
		return 0;
	}

	const struct ginode *n;

	if (node >= a->g.inodes.used)
		return VMRES_ECORRUPT;
	n = ginode_at(a, node);
	if (n->count > NODE_CAP || n->count < (is_root ? 2u : NODE_MIN) ||
	    !zero_from(n->bits, n->count, NODE_CAP) || !zero_from(n->blocks, n->count, NODE_CAP) ||
	    !padded_from(n->key, n->count, NODE_CAP))
		return VMRES_ECORRUPT;
	c->inodes++;
	*truth = (struct bound){0, 0};
	for (uint32_t i = 0; i < n->count; i++) {
		uint64_t k;
		struct bound t;
		int rc = check_gnode(a, c, level + 1, n->child[i], &k, &t);

		if (rc)
			return rc;
		/* Stored block classes are exact, lengths upper bounds. */
		if (k != n->key[i] || t.len > n->max_len[i] || t.block != n->blocks[i] ||
		    n->bits[i] != len_bits(n->max_len[i]))
			return VMRES_ECORRUPT;
		*truth = bound_max(*truth, t);
	}
	*key = n->key[0];
	return 0;
}

static int check_gaps(const struct vmres_addr *a)
{
	struct gcheck c = {.leaf = a->g.first_leaf, .prev_leaf = NIL};
	uint64_t key;
	struct bound truth;

	if (a->g.height > MAX_DEPTH || check_gnode(a, &c, 0, a->g.root, &key, &truth))
		return VMRES_ECORRUPT;
	if (c.leaf != NIL || c.prev_leaf != a->g.last_leaf || c.leaves != a->g.leaves.live ||
	    c.inodes != a->g.inodes.live)
		return VMRES_ECORRUPT;
	return 0;
}

/* ---- the record tree ----------------------------------------------------- */

struct rcheck {
	uint32_t leaf;
	uint32_t prev_leaf;
	uint32_t leaves;
	uint32_t inodes;
};

/* The node covers bases in [lo, hi) (hi 0: no upper bound). */
static int check_rnode(const struct vmres_addr *a, struct rcheck *c, unsigned int level,
		       uint32_t node, uint64_t lo, uint64_t hi, bool top)
{
	bool is_root = level == 0;

	if (level == a->r.height) {
		const struct rleaf *l;

		if (node >= a->r.leaves.used || node != c->leaf)
			return VMRES_ECORRUPT;
		l = rleaf_at(a, node);
		if (l->count > LEAF_CAP || l->head > LEAF_CAP - l->count ||
		    (!is_root && l->count < LEAF_MIN) || l->prev != c->prev_leaf || l->lo != lo)
			return VMRES_ECORRUPT;
		for (uint32_t i = 0; i < l->count; i++)
			if (rec_at(l, i)->base < lo || (!top && rec_at(l, i)->base >= hi))
				return VMRES_ECORRUPT;
		c->prev_leaf = node;
		c->leaf = l->next;
		c->leaves++;
		return 0;
	}

	const struct rinode *n;

	if (node >= a->r.inodes.used)
		return VMRES_ECORRUPT;
	n = rinode_at(a, node);
	if (n->count > RNODE_CAP || n->count < (is_root ? 2u : RNODE_MIN) || n->key[0] != lo ||
	    !padded_from(n->key, n->count, RNODE_CAP))
		return VMRES_ECORRUPT;
	c->inodes++;
	for (uint32_t i = 0; i < n->count; i++) {
		bool last = i + 1 == n->count;
		int rc;

		if (!last && n->key[i + 1] <= n->key[i])
			return VMRES_ECORRUPT;
		rc = check_rnode(a, c, level + 1, n->child[i], n->key[i], last ? hi : n->key[i + 1],
				 last && top);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_records(const struct vmres_addr *a)
{
	struct rcheck c = {.leaf = a->r.first_leaf, .prev_leaf = NIL};

	/* The leftmost separators are 0, so that every base is at or above them. */
	if (a->r.height > MAX_DEPTH || check_rnode(a, &c, 0, a->r.root, 0, 0, true))
		return VMRES_ECORRUPT;
	if (c.leaf != NIL || c.prev_leaf != a->r.last_leaf || c.leaves != a->r.leaves.live ||
	    c.inodes != a->r.inodes.live)
		return VMRES_ECORRUPT;
	return 0;
}

/* ---- both together ------------------------------------------------------- */

/* A cursor over the gaps in address order. */
struct gap_cursor {
	const struct vmres_addr *a;
	uint32_t leaf;
	uint32_t i;
};

static const struct gap *next_gap(struct gap_cursor *gc)
{
	while (gc->leaf != NIL) {
		const struct gleaf *l = gleaf_at(gc->a, gc->leaf);

		if (gc->i < l->count)
			return &l->g[gc->i++];
		gc->leaf = l->next;
		gc->i = 0;
	}
	return NULL;
}

/* The free space [start, last] must be the next gap, and know @pred. */
static bool expect_gap(struct gap_cursor *gc, uint64_t start, uint64_t last, uint32_t pred)
{
	const struct gap *g = next_gap(gc);

	return g && g->start == start && g->last == last && g->pred.leaf == pred;
}

int vmres_addr_validate(const struct vmres_addr *a)
{
	struct gap_cursor gc;
	uint64_t cursor, count = 0, used = 0, gaps = 0;
	uint32_t pred = NIL;
	bool end = false;

	if (!a)
		return VMRES_EINVAL;
	if (a->wbase > a->wlast || check_gaps(a) || check_records(a))
		return VMRES_ECORRUPT;
	/* A release never needs memory: the gap tree has room for every gap there
	 * can be (reserve_alloc() in addr.c). */
	if ((a->count && (a->g.leaves.cap < gap_leaves_for(a->count + 1) ||
			  a->g.inodes.cap < gap_inodes_for(a->count + 1))) ||
	    a->gap_room > gap_room_of(a->g.leaves.cap, a->g.inodes.cap))
		return VMRES_ECORRUPT;

	/* Records and gaps tile the window, alternately. */
	gc = (struct gap_cursor){a, a->g.first_leaf, 0};
	cursor = a->wbase;
	for (uint32_t li = a->r.first_leaf; li != NIL; li = rleaf_at(a, li)->next) {
		const struct rleaf *l = rleaf_at(a, li);

		for (uint32_t i = 0; i < l->count; i++) {
			const struct rec *r = rec_at(l, i);

			if (end || r->base < cursor || r->last < r->base || r->last > a->wlast)
				return VMRES_ECORRUPT;
			if (r->base > cursor) {
				if (!expect_gap(&gc, cursor, r->base - 1, pred))
					return VMRES_ECORRUPT;
				gaps++;
			}
			count++;
			used += r->last - r->base + 1;
			pred = li;
			end = r->last == a->wlast;
			cursor = r->last + 1;
		}
	}
	if (!end) {
		if (!expect_gap(&gc, cursor, a->wlast, pred))
			return VMRES_ECORRUPT;
		gaps++;
	}
	if (next_gap(&gc) || count != a->count || used != a->used || gaps != a->gaps)
		return VMRES_ECORRUPT;
	return 0;
}
