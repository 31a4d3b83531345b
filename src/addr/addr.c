/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator: searches and the public API over the B+tree of
 * tree.c (the design is described there).
 */
#include "addr_int.h"

#include <stdlib.h>

/* ---- fits ---------------------------------------------------------------- */

/* The children of @n whose subtree may hold @w, as a bit mask: the bit length
 * of their largest gap and their largest block class are large enough. */
static inline uint32_t node_candidates(const struct inode *n, const struct want *w)
{
	return bytes_ge_mask(n->bits, w->size_bits) & bytes_ge_mask(n->blocks, w->block) &
	       count_mask(n->count);
}

/* The entries of @l whose gap may hold @w, likewise. */
static inline uint32_t leaf_candidates(const struct leaf *l, const struct want *w)
{
	return bytes_ge_mask(l->bits, w->size_bits) & bytes_ge_mask(l->blk, w->block) &
	       count_mask(l->count);
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
 * First fit below the node at @level. Every gap in this subtree starts at or
 * after @lb and ends before @mb (the bounds come from the neighbouring keys), so
 * children wholly before the sub-window are skipped and the walk stops at the
 * first child wholly after it.
 */
static bool first_fit_in(struct vmres_addr *a, const struct want *w, struct path *p,
			 unsigned int level, uint32_t node, uint64_t lb, uint64_t mb, uint32_t *pos,
			 uint64_t *start)
{
	p->node[level] = node;
	if (level == a->height) {
		const struct leaf *l = leaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f; f &= f - 1) {
			uint32_t i = (uint32_t)__builtin_ctz(f);
			uint64_t g = l->e[i].gap, b = l->e[i].base;

			if (g < w->size)
				continue;
			if (b - g > w->hi_start)
				return false;
			if (fit_low(w, b - g, b - 1, start)) {
				*pos = i;
				return true;
			}
		}
		return false;
	}

	struct inode *n = inode_at(a, node);

	for (uint32_t f = node_candidates(n, w); f; f &= f - 1) {
		uint32_t i = (uint32_t)__builtin_ctz(f);
		uint64_t clb, cmb;

		if (n->max_gap[i] < w->size)
			continue;
		clb = lb;
		cmb = mb;
		if (w->bounded) {
			clb = i ? n->key[i - 1] + 1 : lb;
			if (clb > w->hi_start)
				return false;
			cmb = i + 1 < n->count ? n->key[i + 1] - 1 : mb;
			if (cmb <= w->lo_end)
				continue;
		}
		p->pos[level] = i;
		if (first_fit_in(a, w, p, level + 1, n->child[i], clb, cmb, pos, start))
			return true;
	}
	return false;
}

/* Mirror image of first_fit_in(). */
static bool last_fit_in(struct vmres_addr *a, const struct want *w, struct path *p,
			unsigned int level, uint32_t node, uint64_t lb, uint64_t mb, uint32_t *pos,
			uint64_t *start)
{
	p->node[level] = node;
	if (level == a->height) {
		const struct leaf *l = leaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f;) {
			uint32_t i = 31 - (uint32_t)__builtin_clz(f);
			uint64_t g = l->e[i].gap, b = l->e[i].base;

			f &= ~(1u << i);
			if (g < w->size)
				continue;
			if (b - 1 < w->lo_end)
				return false;
			if (fit_high(w, b - g, b - 1, start)) {
				*pos = i;
				return true;
			}
		}
		return false;
	}

	struct inode *n = inode_at(a, node);

	for (uint32_t f = node_candidates(n, w); f;) {
		uint32_t i = 31 - (uint32_t)__builtin_clz(f);
		uint64_t clb, cmb;

		f &= ~(1u << i);
		if (n->max_gap[i] < w->size)
			continue;
		clb = lb;
		cmb = mb;
		if (w->bounded) {
			cmb = i + 1 < n->count ? n->key[i + 1] - 1 : mb;
			if (cmb <= w->lo_end)
				return false;
			clb = i ? n->key[i - 1] + 1 : lb;
			if (clb > w->hi_start)
				continue;
		}
		p->pos[level] = i;
		if (last_fit_in(a, w, p, level + 1, n->child[i], clb, cmb, pos, start))
			return true;
	}
	return false;
}

/*
 * First or last fit of a request whose alignment equals its size (a power of two:
 * a PCI BAR) in the whole window. Then a gap fits it exactly when its block class
 * reaches w->block, and the summaries are exact, so the first (last) candidate at
 * each level leads to the fit: one walk down, no backtracking. False when no gap
 * of the tree fits.
 */
static inline __attribute__((always_inline)) bool block_fit(struct vmres_addr *a,
							    const struct want *w, struct path *p,
							    bool last, uint32_t *pos,
							    uint64_t *start)
{
	uint32_t node = a->root, f, i;
	const struct leaf *l;
	uint64_t b;

	for (unsigned int level = 0; level < a->height; level++) {
		const struct inode *n = inode_at(a, node);

		f = node_candidates(n, w);
		if (!f)
			return false;
		i = last ? 31 - (uint32_t)__builtin_clz(f) : (uint32_t)__builtin_ctz(f);
		p->node[level] = node;
		p->pos[level] = i;
		node = n->child[i];
	}
	p->node[a->height] = node;
	l = leaf_at(a, node);
	f = leaf_candidates(l, w);
	if (!f)
		return false;
	i = last ? 31 - (uint32_t)__builtin_clz(f) : (uint32_t)__builtin_ctz(f);
	b = l->e[i].base;
	*pos = i;
	*start = last ? (b - w->size) & ~w->mask : (b - l->e[i].gap + w->mask) & ~w->mask;
	return true;
}

/* ---- public API ---------------------------------------------------------- */

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
	a->tail_base = base;
	a->tail_free = true;
	a->gaps = 1;
	vmres__addr_pool_init(&a->leaves, sizeof(struct leaf));
	vmres__addr_pool_init(&a->inodes, sizeof(struct inode));
	if (vmres__addr_reserve_nodes(a, 1, 0)) {
		vmres__addr_pool_destroy(&a->leaves);
		free(a);
		return VMRES_ENOMEM;
	}
	a->root = vmres__addr_leaf_take(a);
	a->first_leaf = a->root;
	a->last_leaf = a->root;
	*out = a;
	return 0;
}

void vmres_addr_free(struct vmres_addr *a)
{
	if (!a)
		return;
	vmres__addr_pool_destroy(&a->leaves);
	vmres__addr_pool_destroy(&a->inodes);
	free(a);
}

static bool is_pow2_or_none(uint64_t align)
{
	return (align & (align - 1)) == 0 || align == 1;
}

static int alloc_exact(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	uint64_t addr = req->addr, last = addr + (req->size - 1);
	struct path p;
	struct leaf *l;
	uint32_t pos;

	if (addr < a->wbase || last > a->wlast || addr < req->min || last > req->max)
		return VMRES_ERANGE;
	if (req->align > 1 && (addr & (req->align - 1)))
		return VMRES_EMISALIGNED;

	vmres__addr_descend(a, addr, &p);
	l = leaf_at(a, p.node[a->height]);
	pos = leaf_rank(l, addr);
	if (pos > 0 && l->e[pos - 1].last >= addr)
		return VMRES_EOVERLAP;
	if (pos == l->count && vmres__addr_path_next_leaf(a, &p)) {
		l = leaf_at(a, p.node[a->height]);
		pos = 0;
	}
	if (pos < l->count && l->e[pos].base <= last)
		return VMRES_EOVERLAP;
	if (vmres__addr_reserve_for_insert(a))
		return VMRES_ENOMEM;
	vmres__addr_commit_alloc(a, &p, pos, addr, req->size, req->owner);
	*base_out = addr;
	return 0;
}

static int alloc_fit(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	struct want w;
	struct path p;
	uint32_t pos = 0;
	uint64_t start = 0;
	bool found, block;

	if (req->max < a->wbase || req->min > a->wlast)
		return VMRES_ERANGE;
	w.size = req->size;
	w.size_m1 = req->size - 1;
	w.mask = req->align > 1 ? req->align - 1 : 0;
	w.lo = max_u64(req->min, a->wbase);
	w.hi = min_u64(req->max, a->wlast);
	if (w.hi - w.lo < w.size_m1)
		return VMRES_ENOSPC;
	w.lo_end = w.lo + w.size_m1;
	w.hi_start = w.hi - w.size_m1;
	w.bounded = w.lo > a->wbase || w.hi < a->wlast;
	w.size_bits = bit_length(w.size);
	/* A fit at a multiple of the alignment holds the aligned block of
	 * min(alignment, 2^floor(log2 size)) bytes that starts there. */
	w.block = (uint8_t)min_u64(bit_length(w.mask + 1), w.size_bits);

	block = !w.bounded && w.mask == w.size_m1;
	if (req->policy == VMRES_ADDR_FIRST_FIT) {
		if (block)
			found = block_fit(a, &w, &p, false, &pos, &start);
		else
			found = first_fit_in(a, &w, &p, 0, a->root, a->wbase, UINT64_MAX, &pos,
					     &start);
		if (!found && a->tail_free && fit_low(&w, a->tail_base, a->wlast, &start)) {
			vmres__addr_descend_last(a, &p);
			pos = leaf_at(a, a->last_leaf)->count;
			found = true;
		}
	} else {
		found = a->tail_free && fit_high(&w, a->tail_base, a->wlast, &start);
		if (found) {
			vmres__addr_descend_last(a, &p);
			pos = leaf_at(a, a->last_leaf)->count;
		} else if (block) {
			found = block_fit(a, &w, &p, true, &pos, &start);
		} else {
			found = last_fit_in(a, &w, &p, 0, a->root, a->wbase, UINT64_MAX, &pos,
					    &start);
		}
	}
	if (!found)
		return VMRES_ENOSPC;
	if (vmres__addr_reserve_for_insert(a))
		return VMRES_ENOMEM;
	vmres__addr_commit_alloc(a, &p, pos, start, req->size, req->owner);
	*base_out = start;
	return 0;
}

int vmres_addr_alloc(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	if (!a || !req || !base_out || req->version != VMRES_ADDR_REQ_VERSION)
		return VMRES_EINVAL;
	if (req->policy != VMRES_ADDR_FIRST_FIT && req->policy != VMRES_ADDR_LAST_FIT &&
	    req->policy != VMRES_ADDR_EXACT)
		return VMRES_EINVAL;
	if (req->min > req->max)
		return VMRES_EINVAL;
	if (req->size == 0)
		return VMRES_ESIZE;
	if (!is_pow2_or_none(req->align))
		return VMRES_EALIGN;
	if (req->policy == VMRES_ADDR_EXACT) {
		if (req->addr + (req->size - 1) < req->addr)
			return VMRES_EOVERFLOW;
		return alloc_exact(a, req, base_out);
	}
	/* The lowest aligned start at or above min, and its end, must exist. */
	uint64_t mask = req->align > 1 ? req->align - 1 : 0;
	uint64_t first = (req->min + mask) & ~mask;

	if (first < req->min || first + (req->size - 1) < first)
		return VMRES_EOVERFLOW;
	return alloc_fit(a, req, base_out);
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

int vmres_addr_release(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t *owner_out)
{
	uint64_t last, gap_start;
	struct bound b = {0, 0};
	struct path p, succ;
	struct leaf *l;
	uint32_t pos;
	bool rescan = false;

	if (!a)
		return VMRES_EINVAL;
	if (size == 0)
		return VMRES_ESIZE;
	last = base + (size - 1);
	if (last < base)
		return VMRES_EOVERFLOW;
	vmres__addr_descend(a, base, &p);
	l = leaf_at(a, p.node[a->height]);
	pos = leaf_rank(l, base);
	if (pos == 0 || l->e[pos - 1].base != base || l->e[pos - 1].last != last)
		return VMRES_ENOENT;
	pos--;
	if (owner_out)
		*owner_out = l->e[pos].owner;

	/* The freed range, the gap before it and the gap after it become one gap. */
	gap_start = base - l->e[pos].gap;
	a->gaps -= l->e[pos].gap != 0;
	if (a->height > 0)
		b = stored_bound(a, &p, a->height);
	if (pos + 1 < l->count) {
		/* The gap after it grows over the gap before it: the leaf's bound can
		 * only grow. */
		a->gaps -= l->e[pos + 1].gap != 0;
		leaf_set_gap(l, pos + 1, l->e[pos + 1].base - gap_start);
		b = bound_max(b, entry_bound(l, pos + 1));
	} else {
		/* The gap before it leaves this leaf: rescan if it was the largest. */
		rescan = l->e[pos].gap >= b.gap || l->blk[pos] >= b.block;
		succ = p;
		if (vmres__addr_path_next_leaf(a, &succ)) {
			struct leaf *s = leaf_at(a, succ.node[a->height]);

			a->gaps -= s->e[0].gap != 0;
			leaf_set_gap(s, 0, s->e[0].base - gap_start);
			vmres__addr_propagate(
				a, &succ, s->e[0].base,
				bound_max(stored_bound(a, &succ, a->height), entry_bound(s, 0)));
		} else {
			a->gaps -= a->tail_free;
			a->tail_base = gap_start;
			a->tail_free = true;
		}
	}
	a->gaps++;
	vmres__addr_leaf_remove_entry(l, pos);
	if (a->height > 0 && l->count < LEAF_MIN) {
		vmres__addr_rebalance(a, &p, a->height);
	} else if (a->height > 0) {
		if (rescan)
			b = vmres__addr_leaf_bound(l);
		vmres__addr_propagate(a, &p, l->e[0].base, b);
	}
	a->count--;
	a->used -= size;
	return 0;
}

static void fill_entry(const struct leaf *l, uint32_t i, struct vmres_addr_entry *out)
{
	out->base = l->e[i].base;
	out->last = l->e[i].last;
	out->owner = l->e[i].owner;
}

int vmres_addr_find(const struct vmres_addr *a, uint64_t addr, struct vmres_addr_entry *out)
{
	struct path p;
	const struct leaf *l;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	vmres__addr_descend(a, addr, &p);
	l = leaf_at(a, p.node[a->height]);
	pos = leaf_rank(l, addr);
	if (pos == 0 || l->e[pos - 1].last < addr)
		return VMRES_ENOENT;
	fill_entry(l, pos - 1, out);
	return 0;
}

int vmres_addr_next(const struct vmres_addr *a, uint64_t from, struct vmres_addr_entry *out)
{
	struct path p;
	const struct leaf *l;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	vmres__addr_descend(a, from, &p);
	l = leaf_at(a, p.node[a->height]);
	pos = leaf_rank(l, from);
	if (pos > 0 && l->e[pos - 1].base == from) {
		pos--;
	} else if (pos == l->count) {
		if (l->next == NIL)
			return VMRES_ENOENT;
		l = leaf_at(a, l->next);
		pos = 0;
	}
	fill_entry(l, pos, out);
	return 0;
}

int vmres_addr_foreach(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx)
{
	struct vmres_addr_entry e;

	if (!a || !fn)
		return VMRES_EINVAL;
	for (uint32_t li = a->first_leaf; li != NIL; li = leaf_at(a, li)->next) {
		const struct leaf *l = leaf_at(a, li);

		for (uint32_t i = 0; i < l->count; i++) {
			int rc;

			fill_entry(l, i, &e);
			rc = fn(ctx, &e);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int vmres_addr_foreach_gap(const struct vmres_addr *a, vmres_addr_visit_fn fn, void *ctx)
{
	struct vmres_addr_entry e = {0, 0, 0};
	int rc;

	if (!a || !fn)
		return VMRES_EINVAL;
	for (uint32_t li = a->first_leaf; li != NIL; li = leaf_at(a, li)->next) {
		const struct leaf *l = leaf_at(a, li);

		for (uint32_t i = 0; i < l->count; i++) {
			if (!l->e[i].gap)
				continue;
			e.base = l->e[i].base - l->e[i].gap;
			e.last = l->e[i].base - 1;
			rc = fn(ctx, &e);
			if (rc)
				return rc;
		}
	}
	if (a->tail_free) {
		e.base = a->tail_base;
		e.last = a->wlast;
		return fn(ctx, &e);
	}
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
