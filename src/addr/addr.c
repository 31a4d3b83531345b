/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator: the public API over the tree of tree.c, whose
 * entries (allocations and free gaps) tile the window.
 */
#include "addr_int.h"
#include "../common_int.h"

#include <stdlib.h>

/* ---- fits ---------------------------------------------------------------- */

/* The children of @n whose subtree may hold @w, as a bit mask: their largest gap
 * and their largest block class are large enough (bytes past count are 0). */
static inline uint64_t node_candidates(const struct inode *n, const struct want *w)
{
	return bytes_ge_mask64(n->bits, w->bits) & bytes_ge_mask64(n->blocks, w->block);
}

/* The gaps of @l that may hold @w, likewise. */
static inline uint32_t leaf_candidates(const struct leaf *l, const struct want *w)
{
	return bytes_ge_mask(l->bits, w->bits) & bytes_ge_mask(l->blk, w->block);
}

/* Lowest aligned start of @w inside the free range [gs, ge]. */
static inline bool fit_low(const struct want *w, uint64_t gs, uint64_t ge, uint64_t *out)
{
	uint64_t s = max_u64(gs, w->lo), e = min_u64(ge, w->hi), start;

	if (s > e || e - s < w->size_m1)
		return false;
	start = (s + w->mask) & ~w->mask;
	if (start < s || start > e || e - start < w->size_m1)
		return false;
	*out = start;
	return true;
}

/* Highest aligned start of @w inside the free range [gs, ge]. */
static inline bool fit_high(const struct want *w, uint64_t gs, uint64_t ge, uint64_t *out)
{
	uint64_t s = max_u64(gs, w->lo), e = min_u64(ge, w->hi), start;

	if (s > e || e - s < w->size_m1)
		return false;
	start = (e - w->size_m1) & ~w->mask;
	if (start < s)
		return false;
	*out = start;
	return true;
}

/*
 * First fit below the node at @level. Every gap of child i starts at or after
 * key[i] and ends before key[i + 1], so children wholly before the sub-window
 * are skipped and the walk stops at the first child wholly after it.
 */
static bool first_fit_in(struct vmres_addr *a, const struct want *w, struct path *p,
			 unsigned int level, uint32_t node, uint32_t *pos, uint64_t *start)
{
	p->node[level] = node;
	if (level == a->t.height) {
		const struct leaf *l = leaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f; f &= f - 1) {
			uint32_t i = (uint32_t)__builtin_ctz(f);
			const struct ent *g = &l->e[i];

			if (g->last - g->start < w->size_m1)
				continue;
			if (g->start > w->hi_start)
				return false;
			if (fit_low(w, g->start, g->last, start)) {
				*pos = i;
				return true;
			}
		}
		return false;
	}

	struct inode *n = inode_at(a, node);

	for (uint64_t f = node_candidates(n, w); f; f &= f - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(f);

		if (n->max_len[i] < w->size_m1)
			continue;
		if (w->bounded) {
			if (n->key[i] > w->hi_start)
				return false;
			if (i + 1 < n->count && n->key[i + 1] - 1 < w->lo_end)
				continue;
		}
		p->pos[level] = i;
		if (first_fit_in(a, w, p, level + 1, n->child[i], pos, start))
			return true;
		vmres__tree_tighten(a, n, level, i);
	}
	return false;
}

/* Mirror image of first_fit_in(). */
static bool last_fit_in(struct vmres_addr *a, const struct want *w, struct path *p,
			unsigned int level, uint32_t node, uint32_t *pos, uint64_t *start)
{
	p->node[level] = node;
	if (level == a->t.height) {
		const struct leaf *l = leaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f;) {
			uint32_t i = 31 - (uint32_t)__builtin_clz(f);
			const struct ent *g = &l->e[i];

			f &= ~(1u << i);
			if (g->last - g->start < w->size_m1)
				continue;
			if (g->last < w->lo_end)
				return false;
			if (fit_high(w, g->start, g->last, start)) {
				*pos = i;
				return true;
			}
		}
		return false;
	}

	struct inode *n = inode_at(a, node);

	for (uint64_t f = node_candidates(n, w); f;) {
		uint32_t i = 63 - (uint32_t)__builtin_clzll(f);

		f &= ~(1ULL << i);
		if (n->max_len[i] < w->size_m1)
			continue;
		if (w->bounded) {
			if (i + 1 < n->count && n->key[i + 1] - 1 < w->lo_end)
				return false;
			if (n->key[i] > w->hi_start)
				continue;
		}
		p->pos[level] = i;
		if (last_fit_in(a, w, p, level + 1, n->child[i], pos, start))
			return true;
		vmres__tree_tighten(a, n, level, i);
	}
	return false;
}

/* The finger's path now leads to a leaf: it counts, what lies beside it to be
 * learnt. */
static inline void finger_set(struct vmres_addr *a)
{
	a->finger_shape = a->shape;
	a->side[0] = a->side[1] = FINGER_UNKNOWN;
}

/* What is before (@last false) or after the finger's leaf, from its path. */
static __attribute__((noinline)) uint8_t finger_side(const struct vmres_addr *a, bool last)
{
	const struct path *f = &a->finger;
	uint8_t side = 0;

	for (unsigned int level = 0; level < a->t.height; level++) {
		const struct inode *n = inode_at(a, f->node[level]);
		uint32_t i = f->pos[level];
		uint8_t s = last ? max_byte_span64(n->blocks, i + 1, NODE_CAP)
				 : max_byte_span64(n->blocks, 0, i);

		side = s > side ? s : side;
	}
	return side;
}

/*
 * Whether the leaf of the last block fit, @a->finger, holds the first (last)
 * fit for @w: no gap before (after) that leaf has the class, and the leaf has a
 * gap that does. What is before or after is learnt once from the path's
 * nodes, and stays a bound while the shape does: allocations only take from
 * gaps, and a release changes the shape. A fill or a last fit mostly ends in
 * the leaf of the one before.
 */
static inline bool finger_fit(struct vmres_addr *a, const struct want *w, bool last, uint32_t *pos)
{
	uint32_t m;

	if (a->finger_shape != a->shape)
		return false;
	if (a->side[last] == FINGER_UNKNOWN)
		a->side[last] = finger_side(a, last);
	if (w->block <= a->side[last])
		return false;
	m = bytes_ge_mask(leaf_at(a, a->finger.node[a->t.height])->blk, w->block);
	if (!m)
		return false;
	*pos = last ? 31 - (uint32_t)__builtin_clz(m) : (uint32_t)__builtin_ctz(m);
	return true;
}

/*
 * First or last fit of a request whose alignment equals its size (a power of
 * two: a PCI BAR) in the whole window. Then a gap fits it exactly when its
 * block class reaches w->block, and the classes are exact, so the first (last)
 * candidate at each level leads to the fit: one walk down, no backtracking.
 * False when no gap fits.
 */
static inline __attribute__((always_inline)) bool
block_fit(struct vmres_addr *a, const struct want *w, bool last, uint32_t *pos, uint64_t *start)
{
	struct path *p = &a->finger;
	uint32_t node = a->t.root, f, i;
	const struct leaf *l;

	if (finger_fit(a, w, last, &i)) {
		l = leaf_at(a, p->node[a->t.height]);
		goto found;
	}
	/* The walk writes the finger's path: until it ends, the finger is void. */
	a->finger_shape = a->shape - 1;
	for (unsigned int level = 0; level < a->t.height; level++) {
		const struct inode *n = inode_at(a, node);
		uint64_t f64 = bytes_ge_mask64(n->blocks, w->block);

		if (!f64)
			return false;
		i = last ? 63 - (uint32_t)__builtin_clzll(f64) : (uint32_t)__builtin_ctzll(f64);
		p->node[level] = node;
		p->pos[level] = i;
		node = n->child[i];
	}
	p->node[a->t.height] = node;
	l = leaf_at(a, node);
	f = bytes_ge_mask(l->blk, w->block);
	if (!f)
		return false;
	i = last ? 31 - (uint32_t)__builtin_clz(f) : (uint32_t)__builtin_ctz(f);
	finger_set(a);
found:
	*pos = i;
	*start = last ? (l->e[i].last - w->size_m1) & ~w->mask
		      : (l->e[i].start + w->mask) & ~w->mask;
	return true;
}

/* ---- allocation ---------------------------------------------------------- */

/*
 * Allocate [base, last] of @owner out of the gap at @pos of the leaf of @p,
 * which holds it: the gap becomes up to three entries, what is left of it on
 * either side staying free. Nodes were reserved for a leaf split.
 */
static inline __attribute__((always_inline)) void commit(struct vmres_addr *a, struct path *p,
							 uint32_t pos, uint64_t base, uint64_t last,
							 uint64_t owner)
{
	/* The gap became the gaps left of it. */
	a->gaps = a->gaps + vmres__tree_carve(a, p, pos, base, last, owner) - 1;
	a->count++;
	a->used += last - base + 1;
}

int vmres_addr_new(uint64_t base, uint64_t last, struct vmres_addr **out)
{
	struct vmres_addr *a;

	if (!out || base > last)
		return VMRES_EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return VMRES_ENOMEM;
	a->wbase = base;
	a->wlast = last;
	a->gaps = 1;
	a->shape = 1; /* the finger (finger_shape 0) is void */
	if (vmres__tree_init(a)) {
		vmres_addr_free(a);
		return VMRES_ENOMEM;
	}
	*out = a;
	return 0;
}

void vmres_addr_free(struct vmres_addr *a)
{
	if (!a)
		return;
	vmres__node_pool_destroy(&a->t.leaves);
	vmres__node_pool_destroy(&a->t.inodes);
	free(a);
}

static int alloc_exact(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	uint64_t addr = req->addr, last = addr + (req->size - 1);
	const struct leaf *l;
	struct path p;
	uint32_t pos;

	if (addr < a->wbase || last > a->wlast || addr < req->min || last > req->max)
		return VMRES_ERANGE;
	if (req->align > 1 && (addr & (req->align - 1)))
		return VMRES_EMISALIGNED;
	pos = vmres__tree_find(a, addr, &p);
	l = leaf_at(a, p.node[a->t.height]);
	if (!ent_is_gap(l, pos) || l->e[pos].last < last)
		return VMRES_EOVERLAP;
	if (vmres__tree_reserve(a))
		return VMRES_ENOMEM;
	commit(a, &p, pos, addr, last, req->owner);
	*base_out = addr;
	return 0;
}

/* First or last fit in [lo, hi], the sub-window already clipped to the window. */
static int alloc_fit(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t mask,
		     uint64_t lo, uint64_t hi, uint64_t *base_out)
{
	struct want w;
	struct path local, *p = &local;
	uint32_t pos = 0;
	uint64_t start = 0;
	bool found;

	w.size_m1 = req->size - 1;
	w.mask = mask;
	w.lo = lo;
	w.hi = hi;
	if (w.hi - w.lo < w.size_m1)
		return VMRES_ENOSPC;
	/* A fit at a multiple of the alignment holds the aligned block of
	 * min(alignment, 2^floor(log2 size)) bytes that starts there. */
	w.block = (uint8_t)min_u64(bit_length(mask + 1), bit_length(req->size));
	if (mask == w.size_m1 && w.lo == a->wbase && w.hi == a->wlast) {
		/* On the finger's path, which the next fit may take again. */
		p = &a->finger;
		found = block_fit(a, &w, req->policy == VMRES_ADDR_LAST_FIT, &pos, &start);
	} else {
		w.lo_end = w.lo + w.size_m1;
		w.hi_start = w.hi - w.size_m1;
		w.bounded = w.lo > a->wbase || w.hi < a->wlast;
		w.bits = len_bits(w.size_m1);
		if (req->policy == VMRES_ADDR_FIRST_FIT)
			found = first_fit_in(a, &w, p, 0, a->t.root, &pos, &start);
		else
			found = last_fit_in(a, &w, p, 0, a->t.root, &pos, &start);
	}
	if (!found)
		return VMRES_ENOSPC;
	if (vmres__tree_reserve(a))
		return VMRES_ENOMEM;
	commit(a, p, pos, start, start + w.size_m1, req->owner);
	/* A split walked the finger's path again (vmres__tree_carve()). */
	if (p == &a->finger && a->finger_shape != a->shape)
		finger_set(a);
	*base_out = start;
	return 0;
}

int vmres_addr_alloc(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	uint64_t mask, first, lo, hi;

	if (!a || !req || !base_out)
		return VMRES_EINVAL;
	if (req->version != VMRES_ADDR_REQ_VERSION)
		return vmres__fail(VMRES_EINVAL,
				   "struct vmres_addr_req has version %u, not %u: initialise it "
				   "with VMRES_ADDR_REQ_INIT",
				   (unsigned int)req->version,
				   (unsigned int)VMRES_ADDR_REQ_VERSION);
	if ((unsigned int)req->policy > VMRES_ADDR_EXACT || req->min > req->max)
		return VMRES_EINVAL;
	if (req->size == 0)
		return VMRES_ESIZE;
	/* 0, 1 or a power of two. */
	if (req->align & (req->align - 1))
		return VMRES_EALIGN;
	if (req->policy == VMRES_ADDR_EXACT) {
		if (req->addr + (req->size - 1) < req->addr)
			return VMRES_EOVERFLOW;
		return alloc_exact(a, req, base_out);
	}
	/* The sub-window clipped to the window first, so that a bound outside
	 * the window (min 0, max UINT64_MAX) and the window's own bound are the
	 * same request and get the same answer. */
	if (req->max < a->wbase || req->min > a->wlast)
		return VMRES_ERANGE;
	lo = max_u64(req->min, a->wbase);
	hi = min_u64(req->max, a->wlast);
	/* The lowest aligned start at or above lo, and its end, must exist. */
	mask = req->align ? req->align - 1 : 0;
	first = (lo + mask) & ~mask;
	if (first < lo || first + (req->size - 1) < first)
		return VMRES_EOVERFLOW;
	return alloc_fit(a, req, mask, lo, hi, base_out);
}

int vmres_addr_reserve(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t owner)
{
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t out;

	req.policy = VMRES_ADDR_EXACT;
	req.addr = base;
	req.size = size;
	req.owner = owner;
	return vmres_addr_alloc(a, &req, &out);
}

/* ---- release ------------------------------------------------------------ */

/*
 * The allocation at @pos of the leaf of @p becomes free and joins the gaps on
 * either side, when there are. Those in the same leaf go in one step; one in
 * a neighbouring leaf (an allocation first or last in its leaf) takes a walk
 * of its own.
 */
static void free_entry(struct vmres_addr *a, struct path *p, uint32_t pos)
{
	const struct leaf *l = leaf_at(a, p->node[a->t.height]);
	uint64_t start = l->e[pos].start, last = l->e[pos].last;
	uint32_t lo = pos, n = 1;
	const struct leaf *nb;
	bool prev_far = false, next_far = false;

	if (pos > 0) {
		if (ent_is_gap(l, pos - 1)) {
			lo = pos - 1;
			n++;
			start = l->e[lo].start;
		}
	} else if (l->prev != NIL) {
		nb = leaf_at(a, l->prev);
		prev_far = ent_is_gap(nb, nb->count - 1);
	}
	if (pos + 1 < l->count) {
		if (ent_is_gap(l, pos + 1)) {
			n++;
			last = l->e[pos + 1].last;
		}
	} else if (l->next != NIL) {
		nb = leaf_at(a, l->next);
		next_far = ent_is_gap(nb, 0);
	}
	a->gaps = a->gaps + 2 - n;
	vmres__tree_collapse(a, p, lo, n, start, last);
	if (next_far) {
		/* The gap after starts the next leaf: it goes, this one grows. */
		uint32_t i = vmres__tree_find(a, last + 1, p);
		uint64_t end = leaf_at(a, p->node[a->t.height])->e[i].last;

		vmres__tree_remove(a, p, i);
		i = vmres__tree_find(a, start, p);
		vmres__tree_collapse(a, p, i, 1, start, end);
		last = end;
		a->gaps--;
	}
	if (prev_far) {
		/* The gap before ends the previous leaf: this one goes, it grows. */
		uint32_t i = vmres__tree_find(a, start, p);
		uint64_t from;

		vmres__tree_remove(a, p, i);
		i = vmres__tree_find(a, start - 1, p);
		from = leaf_at(a, p->node[a->t.height])->e[i].start;
		vmres__tree_collapse(a, p, i, 1, from, last);
		a->gaps--;
	}
}

/* Find the allocation that is exactly [base, base + size - 1]: its path and
 * position, or the reason there is none (VMRES_ESIZE, _EOVERFLOW, _ENOENT). */
static int find_exact(const struct vmres_addr *a, uint64_t base, uint64_t size, struct path *p,
		      uint32_t *pos)
{
	uint64_t last = base + (size - 1);
	const struct leaf *l;

	if (size == 0)
		return VMRES_ESIZE;
	if (last < base)
		return VMRES_EOVERFLOW;
	if (base < a->wbase || last > a->wlast)
		return VMRES_ENOENT;
	*pos = vmres__tree_find(a, base, p);
	l = leaf_at(a, p->node[a->t.height]);
	if (ent_is_gap(l, *pos) || l->e[*pos].start != base || l->e[*pos].last != last)
		return VMRES_ENOENT;
	return 0;
}

int vmres_addr_release(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t *owner_out)
{
	uint64_t owner;
	struct path p;
	uint32_t pos;
	int rc;

	if (!a)
		return VMRES_EINVAL;
	rc = find_exact(a, base, size, &p, &pos);
	if (rc)
		return rc;
	owner = leaf_at(a, p.node[a->t.height])->e[pos].owner;
	/* A gap grows: the finger may no longer lead to a first or last fit. */
	a->shape++;
	free_entry(a, &p, pos);
	if (owner_out)
		*owner_out = owner;
	a->count--;
	a->used -= size;
	return 0;
}

/* ---- moves --------------------------------------------------------------- */

/* Is [start, last] (inside the window) one free gap's? */
static bool range_free(const struct vmres_addr *a, uint64_t start, uint64_t last)
{
	struct path p;
	uint32_t pos = vmres__tree_find(a, start, &p);
	const struct leaf *l = leaf_at(a, p.node[a->t.height]);

	return ent_is_gap(l, pos) && l->e[pos].last >= last;
}

/*
 * Could the allocation [base, +size) (none if @held is false) become
 * [new_base, +size)? The new range must lie in the window and be free, but for
 * the addresses the allocation itself holds: those of it below the allocation
 * are in the gap just before it, those above in the gap just after.
 */
static int move_check(const struct vmres_addr *a, bool held, uint64_t base, uint64_t size,
		      uint64_t new_base)
{
	uint64_t last = base + (size - 1), new_last = new_base + (size - 1);
	struct path p;
	uint32_t pos;
	int rc;

	if (!a)
		return VMRES_EINVAL;
	if (size == 0)
		return VMRES_ESIZE;
	if (new_last < new_base)
		return VMRES_EOVERFLOW;
	rc = held ? find_exact(a, base, size, &p, &pos) : 0;
	if (rc)
		return rc;
	if (new_base < a->wbase || new_last > a->wlast)
		return VMRES_ERANGE;
	if (!held || new_last < base || new_base > last)
		return range_free(a, new_base, new_last) ? 0 : VMRES_EOVERLAP;
	if (new_base < base && !range_free(a, new_base, base - 1))
		return VMRES_EOVERLAP;
	if (new_last > last && !range_free(a, last + 1, new_last))
		return VMRES_EOVERLAP;
	return 0;
}

int vmres_addr_reserve_check(struct vmres_addr *a, uint64_t base, uint64_t size)
{
	int rc = move_check(a, false, 0, size, base);

	return rc ? rc : vmres__tree_reserve(a);
}

int vmres_addr_move_check(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t new_base)
{
	int rc = move_check(a, true, base, size, new_base);

	return rc ? rc : vmres__tree_reserve(a);
}

int vmres_addr_move(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t new_base)
{
	uint64_t owner;
	int rc = vmres_addr_move_check(a, base, size, new_base);

	if (rc || new_base == base)
		return rc;
	/* A release takes no memory and only gives nodes back, so the nodes the
	 * check set aside are still there for the reservation, which cannot fail. */
	(void)vmres_addr_release(a, base, size, &owner);
	return vmres_addr_reserve(a, new_base, size, owner);
}

/* ---- lookups ------------------------------------------------------------- */

static void fill_entry(const struct leaf *l, uint32_t i, struct vmres_addr_entry *out)
{
	out->base = l->e[i].start;
	out->last = l->e[i].last;
	out->owner = l->e[i].owner;
}

int vmres_addr_find(const struct vmres_addr *a, uint64_t addr, struct vmres_addr_entry *out)
{
	const struct leaf *l;
	struct path p;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	if (addr < a->wbase || addr > a->wlast)
		return VMRES_ENOENT;
	pos = vmres__tree_find(a, addr, &p);
	l = leaf_at(a, p.node[a->t.height]);
	if (ent_is_gap(l, pos))
		return VMRES_ENOENT;
	fill_entry(l, pos, out);
	return 0;
}

int vmres_addr_next(const struct vmres_addr *a, uint64_t from, struct vmres_addr_entry *out)
{
	const struct leaf *l;
	struct path p;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	if (from > a->wlast)
		return VMRES_ENOENT;
	from = max_u64(from, a->wbase);
	pos = vmres__tree_find(a, from, &p);
	l = leaf_at(a, p.node[a->t.height]);
	/* The entry holding from, if it is an allocation starting there; else
	 * the next allocation, one or (past a gap: never two in a row) two
	 * entries on. */
	while (l->e[pos].start < from || ent_is_gap(l, pos)) {
		if (++pos == l->count) {
			if (l->next == NIL)
				return VMRES_ENOENT;
			l = leaf_at(a, l->next);
			pos = 0;
		}
	}
	fill_entry(l, pos, out);
	return 0;
}

/* Call @fn for every entry that is (@gaps) or is not a gap, in address order. */
static int visit_entries(const struct vmres_addr *a, bool gaps, vmres_addr_visit_fn fn, void *ctx)
{
	struct vmres_addr_entry e;

	if (!a || !fn)
		return VMRES_EINVAL;
	for (uint32_t li = a->t.first_leaf; li != NIL; li = leaf_at(a, li)->next) {
		const struct leaf *l = leaf_at(a, li);

		for (uint32_t i = 0; i < l->count; i++) {
			int rc;

			if (ent_is_gap(l, i) != gaps)
				continue;
			fill_entry(l, i, &e);
			rc = fn(ctx, &e);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int vmres_addr_foreach(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx)
{
	return visit_entries(a, false, fn, ctx);
}

int vmres_addr_foreach_gap(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx)
{
	return visit_entries(a, true, fn, ctx);
}

/*
 * Nodes for n allocations in the worst case: n allocations and n + 1 gaps, plus
 * the entries a move holds for a moment, in leaves a quarter full (LEAF_MIN),
 * with internal nodes a quarter full (NODE_MIN) above them, plus the nodes one
 * operation sets aside before it starts (vmres__tree_reserve()).
 */
int vmres_addr_reserve_capacity(struct vmres_addr *a, uint64_t n_ranges)
{
	uint64_t leaves, inodes = 0;

	if (!a)
		return VMRES_EINVAL;
	if (n_ranges > ((uint64_t)1 << 40))
		return VMRES_ENOMEM;
	leaves = (2 * n_ranges + 3 + LEAF_MIN - 1) / LEAF_MIN + 1;
	for (uint64_t level = leaves; level > 1; level = (level + NODE_MIN - 1) / NODE_MIN)
		inodes += (level + NODE_MIN - 1) / NODE_MIN;
	inodes += MAX_DEPTH + 1;
	if (vmres__node_pool_capacity(&a->t.leaves, leaves + 1) ||
	    vmres__node_pool_capacity(&a->t.inodes, inodes))
		return VMRES_ENOMEM;
	return 0;
}

int vmres_addr_memory(const struct vmres_addr *a, uint64_t *bytes_out)
{
	if (!a || !bytes_out)
		return VMRES_EINVAL;
	*bytes_out = sizeof(*a) + vmres__node_pool_bytes(&a->t.leaves) +
		     vmres__node_pool_bytes(&a->t.inodes);
	return 0;
}

int vmres_addr_stats(const struct vmres_addr *a, struct vmres_addr_stats *out)
{
	uint64_t window = a ? a->wlast - a->wbase + 1 : 0; /* 0 stands for 2^64 */

	if (!a || !out)
		return VMRES_EINVAL;
	out->base = a->wbase;
	out->last = a->wlast;
	out->count = a->count;
	out->used = (a->count && a->used == 0) ? UINT64_MAX : a->used;
	out->free = (!a->count && window == 0) ? UINT64_MAX : window - a->used;
	out->gaps = a->gaps;
	return 0;
}
