/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address-space allocator: the public API over two B+trees.
 *
 * The gap tree (gaps.c) holds every maximal free gap with the summaries that
 * searches need: a first or last fit walks it alone. The record tree
 * (records.c) holds the allocations, for release, lookup and iteration; it has
 * no summaries to keep. Each gap names the record leaf (and, as a checked guess,
 * the index) of the allocation right before it, so an allocation goes straight
 * to its place in the record tree without a walk from the root, and a release
 * walks both trees side by side, so that their cache misses overlap.
 *
 * Why two trees: a fill leaves a handful of gaps, so its searches and gap
 * updates touch one small node and the record goes into a leaf that needs no
 * summary; one tree keeping both (the first design) rescanned and propagated
 * summaries through every level on almost every allocation. The price is the
 * second walk of a release. Nodes live in the pools of pool.c.
 */
#include "addr_int.h"

#include <stdlib.h>

/* ---- fits ---------------------------------------------------------------- */

/* The children of @n whose subtree may hold @w, as a bit mask: their largest gap
 * and their largest block class are large enough (bytes past count are 0). */
static inline uint64_t node_candidates(const struct ginode *n, const struct want *w)
{
	return bytes_ge_mask64(n->bits, w->bits) & bytes_ge_mask64(n->blocks, w->block);
}

/* The gaps of @l that may hold @w, likewise. */
static inline uint32_t leaf_candidates(const struct gleaf *l, const struct want *w)
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
	if (level == a->g.height) {
		const struct gleaf *l = gleaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f; f &= f - 1) {
			uint32_t i = (uint32_t)__builtin_ctz(f);
			const struct gap *g = &l->g[i];

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

	struct ginode *n = ginode_at(a, node);

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
		vmres__gaps_tighten(a, n, level, i);
	}
	return false;
}

/* Mirror image of first_fit_in(). */
static bool last_fit_in(struct vmres_addr *a, const struct want *w, struct path *p,
			unsigned int level, uint32_t node, uint32_t *pos, uint64_t *start)
{
	p->node[level] = node;
	if (level == a->g.height) {
		const struct gleaf *l = gleaf_at(a, node);

		for (uint32_t f = leaf_candidates(l, w); f;) {
			uint32_t i = 31 - (uint32_t)__builtin_clz(f);
			const struct gap *g = &l->g[i];

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

	struct ginode *n = ginode_at(a, node);

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
		vmres__gaps_tighten(a, n, level, i);
	}
	return false;
}

/*
 * First or last fit of a request whose alignment equals its size (a power of two:
 * a PCI BAR) in the whole window. Then a gap fits it exactly when its block class
 * reaches w->block, and the summaries are exact, so the first (last) candidate at
 * each level leads to the fit: one walk down, no backtracking. False when no gap
 * fits.
 */
static inline __attribute__((always_inline)) bool block_fit(const struct vmres_addr *a,
							    const struct want *w, struct path *p,
							    bool last, uint32_t *pos,
							    uint64_t *start)
{
	uint32_t node = a->g.root, f, i;
	const struct gleaf *l;

	for (unsigned int level = 0; level < a->g.height; level++) {
		const struct ginode *n = ginode_at(a, node);
		uint64_t f64 = bytes_ge_mask64(n->blocks, w->block);

		if (!f64)
			return false;
		i = last ? 63 - (uint32_t)__builtin_clzll(f64) : (uint32_t)__builtin_ctzll(f64);
		p->node[level] = node;
		p->pos[level] = i;
		node = n->child[i];
	}
	p->node[a->g.height] = node;
	l = gleaf_at(a, node);
	f = bytes_ge_mask(l->blk, w->block);
	if (!f)
		return false;
	i = last ? 31 - (uint32_t)__builtin_clz(f) : (uint32_t)__builtin_ctz(f);
	*pos = i;
	*start = last ? (l->g[i].last - w->size_m1) & ~w->mask
		      : (l->g[i].start + w->mask) & ~w->mask;
	return true;
}

/* ---- allocation ---------------------------------------------------------- */

/*
 * Allocate [base, last] out of gap @pos of the gap leaf of @p, which holds it.
 * Nodes were reserved in both trees. The gap keeps what is left on either side;
 * the record goes right after the record before the gap.
 */
static inline __attribute__((always_inline)) void commit(struct vmres_addr *a, struct path *p,
							 uint32_t pos, uint64_t base, uint64_t last,
							 uint64_t owner)
{
	struct gleaf *l = gleaf_at(a, p->node[a->g.height]);
	uint64_t s = l->g[pos].start, t = l->g[pos].last;
	struct pred pr = l->g[pos].pred;
	uint32_t target = pr.leaf == NIL ? a->r.first_leaf : pr.leaf, leaf, at;
	/* The new record's place, and so the allocation before the rest of the gap. */
	struct pred np = {target, vmres__recs_place(a, target, pr, s, base)};

	/* What is left before the range keeps its allocation before it, now known
	 * to sit right before the new record. */
	if (pr.leaf != NIL)
		l->g[pos].pred.pos = np.pos - 1;
	if (base > s && last < t) {
		vmres__gaps_split(a, p, pos, base, last, np);
	} else if (base > s) {
		/* A one-leaf gap tree (a fill) has no summaries to keep. */
		if (a->g.height)
			vmres__gaps_set(a, p, pos, s, base - 1);
		else
			gleaf_set(l, pos, s, base - 1);
	} else if (last < t) {
		if (a->g.height)
			vmres__gaps_set(a, p, pos, last + 1, t);
		else
			gleaf_set(l, pos, last + 1, t);
		l->g[pos].pred = np;
	} else {
		vmres__gaps_remove(a, p, pos);
	}
	leaf = vmres__recs_insert(a, target, np.pos, base, last, owner, &at);
	if (last < t && (leaf != target || at != np.pos))
		vmres__gaps_set_pred(a, leaf, at, at + 1);
	a->count++;
	a->used += last - base + 1;
}

/* Nodes for one more allocation: one insertion into the record tree, and gap
 * tree nodes for as many gaps as there can then be (see gap_leaves_for()). The
 * gap pools are checked against a precomputed count, gap_room. */
static int reserve_alloc(struct vmres_addr *a)
{
	if (a->count >= a->gap_room) {
		uint32_t leaves = gap_leaves_for(a->count + 2);
		uint32_t inodes = gap_inodes_for(a->count + 2);

		if (vmres__addr_pool_reserve_total(&a->g.leaves, leaves) ||
		    vmres__addr_pool_reserve_total(&a->g.inodes, inodes))
			return VMRES_ENOMEM;
		a->gap_room = gap_room_of(a->g.leaves.cap, a->g.inodes.cap);
	}
	return vmres__addr_reserve_insert(&a->r);
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
	if (vmres__gaps_init(a) || vmres__recs_init(a)) {
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
	vmres__addr_pool_destroy(&a->g.leaves);
	vmres__addr_pool_destroy(&a->g.inodes);
	vmres__addr_pool_destroy(&a->r.leaves);
	vmres__addr_pool_destroy(&a->r.inodes);
	free(a);
}

static int alloc_exact(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	uint64_t addr = req->addr, last = addr + (req->size - 1);
	const struct gleaf *l;
	struct path p;
	uint32_t pos;

	if (addr < a->wbase || last > a->wlast || addr < req->min || last > req->max)
		return VMRES_ERANGE;
	if (req->align > 1 && (addr & (req->align - 1)))
		return VMRES_EMISALIGNED;
	if (!vmres__gaps_find(a, addr, &p, &pos))
		return VMRES_EOVERLAP;
	l = gleaf_at(a, p.node[a->g.height]);
	if (l->g[pos].last < last)
		return VMRES_EOVERLAP;
	if (reserve_alloc(a))
		return VMRES_ENOMEM;
	commit(a, &p, pos, addr, last, req->owner);
	*base_out = addr;
	return 0;
}

static int alloc_fit(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t mask,
		     uint64_t *base_out)
{
	struct want w;
	struct path p;
	uint32_t pos = 0;
	uint64_t start = 0;
	bool found;

	if (req->max < a->wbase || req->min > a->wlast)
		return VMRES_ERANGE;
	w.size_m1 = req->size - 1;
	w.mask = mask;
	w.lo = max_u64(req->min, a->wbase);
	w.hi = min_u64(req->max, a->wlast);
	if (w.hi - w.lo < w.size_m1)
		return VMRES_ENOSPC;
	/* A fit at a multiple of the alignment holds the aligned block of
	 * min(alignment, 2^floor(log2 size)) bytes that starts there. */
	w.block = (uint8_t)min_u64(bit_length(mask + 1), bit_length(req->size));
	if (mask == w.size_m1 && w.lo == a->wbase && w.hi == a->wlast) {
		found = block_fit(a, &w, &p, req->policy == VMRES_ADDR_LAST_FIT, &pos, &start);
	} else {
		w.lo_end = w.lo + w.size_m1;
		w.hi_start = w.hi - w.size_m1;
		w.bounded = w.lo > a->wbase || w.hi < a->wlast;
		w.bits = len_bits(w.size_m1);
		if (req->policy == VMRES_ADDR_FIRST_FIT)
			found = first_fit_in(a, &w, &p, 0, a->g.root, &pos, &start);
		else
			found = last_fit_in(a, &w, &p, 0, a->g.root, &pos, &start);
	}
	if (!found)
		return VMRES_ENOSPC;
	if (reserve_alloc(a))
		return VMRES_ENOMEM;
	commit(a, &p, pos, start, start + w.size_m1, req->owner);
	*base_out = start;
	return 0;
}

int vmres_addr_alloc(struct vmres_addr *a, const struct vmres_addr_req *req, uint64_t *base_out)
{
	uint64_t mask, first;

	if (!a || !req || !base_out || req->version != VMRES_ADDR_REQ_VERSION ||
	    (unsigned int)req->policy > VMRES_ADDR_EXACT || req->min > req->max)
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
	/* The lowest aligned start at or above min, and its end, must exist. */
	mask = req->align ? req->align - 1 : 0;
	first = (req->min + mask) & ~mask;
	if (first < req->min || first + (req->size - 1) < first)
		return VMRES_EOVERFLOW;
	return alloc_fit(a, req, mask, base_out);
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
 * Both walks of a release at once, level by level: the record tree's to the
 * record at @x (into @rp) and the gap tree's to the leaf of the gap before it
 * (into @gp). They are independent, so the processor overlaps their cache
 * misses instead of taking them one after the other.
 */
static void descend_both(const struct vmres_addr *a, uint64_t x, struct path *rp, struct path *gp)
{
	unsigned int rh = a->r.height, gh = a->g.height;
	uint32_t rn = a->r.root, gn = a->g.root;

	for (unsigned int l = 0; l < rh || l < gh; l++) {
		if (l < rh) {
			const struct rinode *n = rinode_at(a, rn);
			uint32_t i = route(n->key, RNODE_CAP, n->count, x);

			rp->node[l] = rn;
			rp->pos[l] = i;
			rn = n->child[i];
			/* Constant sizes: the prefetch loops then always run alike. */
			if (l + 1 < rh)
				prefetch_node(rinode_at(a, rn)->key, sizeof(n->key));
			else
				prefetch_node(rleaf_at(a, rn), sizeof(struct rleaf));
		}
		if (l < gh) {
			const struct ginode *n = ginode_at(a, gn);
			uint32_t i = route(n->key, NODE_CAP, n->count, x);

			gp->node[l] = gn;
			gp->pos[l] = i;
			gn = n->child[i];
			if (l + 1 < gh)
				prefetch_node(ginode_at(a, gn)->key, sizeof(n->key));
			else
				prefetch_node(gleaf_at(a, gn), sizeof(struct gleaf));
		}
	}
	rp->node[rh] = rn;
	gp->node[gh] = gn;
}

/*
 * The freed range [base, last] joins the free gaps on either side. One lookup
 * (@p, from descend_both()) finds both: the gap before it is the one with the
 * greatest start <= base (if it ends at base - 1), the gap after it the next one
 * (if it starts at last + 1). @pred is where the allocation before the range is
 * (leaf NIL if none).
 */
static void free_range(struct vmres_addr *a, struct path *p, uint64_t base, uint64_t last,
		       struct pred pred)
{
	struct gleaf *l = gleaf_at(a, p->node[a->g.height]);
	uint32_t r = gleaf_rank(l, base), pos = r ? r - 1 : 0, nxt;
	bool found = r > 0, before, after, here;

	before = found && l->g[pos].last == base - 1;
	nxt = found ? pos + 1 : 0;
	here = nxt < l->count; /* the next gap is in this leaf */
	if (here)
		after = l->g[nxt].start == last + 1;
	else if (l->next != NIL)
		after = gleaf_at(a, l->next)->g[0].start == last + 1;
	else
		after = false;
	if (!before && !after) {
		/* The nodes are there: see reserve_alloc(). */
		vmres__gaps_insert(a, p, nxt, base, last, pred);
		return;
	}
	if (before && !after) {
		vmres__gaps_set(a, p, pos, l->g[pos].start, last);
		return;
	}
	if (!here) {
		/* The gap after starts the next leaf: walk there. */
		vmres__gaps_find(a, last + 1, p, &nxt);
		l = gleaf_at(a, p->node[a->g.height]);
	}
	if (!before) {
		vmres__gaps_set(a, p, nxt, base, l->g[nxt].last);
		l->g[nxt].pred = pred;
	} else if (here) {
		vmres__gaps_merge(a, p, nxt);
	} else {
		uint64_t t = l->g[nxt].last;

		vmres__gaps_remove(a, p, nxt);
		vmres__gaps_find(a, base - 1, p, &pos);
		l = gleaf_at(a, p->node[a->g.height]);
		vmres__gaps_set(a, p, pos, l->g[pos].start, t);
	}
}

int vmres_addr_release(struct vmres_addr *a, uint64_t base, uint64_t size, uint64_t *owner_out)
{
	const struct rleaf *l;
	uint32_t pos, leaf;
	struct pred pred;
	uint64_t last, owner;
	struct path p, gp;

	if (!a)
		return VMRES_EINVAL;
	if (size == 0)
		return VMRES_ESIZE;
	last = base + (size - 1);
	if (last < base)
		return VMRES_EOVERFLOW;
	descend_both(a, base, &p, &gp);
	leaf = p.node[a->r.height];
	l = rleaf_at(a, leaf);
	pos = rleaf_rank(l, base);
	if (pos == 0 || rec_at(l, pos - 1)->base != base || rec_at(l, pos - 1)->last != last)
		return VMRES_ENOENT;
	pos--;
	owner = rec_at(l, pos)->owner;
	if (pos > 0)
		pred = (struct pred){leaf, pos - 1};
	else if (l->prev != NIL)
		pred = (struct pred){l->prev, rleaf_at(a, l->prev)->count - 1};
	else
		pred = (struct pred){NIL, 0};
	free_range(a, &gp, base, last, pred);
	vmres__recs_remove(a, &p, pos);
	if (owner_out)
		*owner_out = owner;
	a->count--;
	a->used -= size;
	return 0;
}

/* ---- lookups ------------------------------------------------------------- */

static void fill_entry(const struct rleaf *l, uint32_t i, struct vmres_addr_entry *out)
{
	const struct rec *r = rec_at(l, i);

	out->base = r->base;
	out->last = r->last;
	out->owner = r->owner;
}

int vmres_addr_find(const struct vmres_addr *a, uint64_t addr, struct vmres_addr_entry *out)
{
	struct path p;
	const struct rleaf *l;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	vmres__recs_descend(a, addr, &p);
	l = rleaf_at(a, p.node[a->r.height]);
	pos = rleaf_rank(l, addr);
	if (pos == 0 && l->prev != NIL) {
		/* A separator may lie below the leaf's first base: the allocation
		 * holding addr can be the previous leaf's last. */
		l = rleaf_at(a, l->prev);
		pos = l->count;
	}
	if (pos == 0 || rec_at(l, pos - 1)->last < addr)
		return VMRES_ENOENT;
	fill_entry(l, pos - 1, out);
	return 0;
}

int vmres_addr_next(const struct vmres_addr *a, uint64_t from, struct vmres_addr_entry *out)
{
	struct path p;
	const struct rleaf *l;
	uint32_t pos;

	if (!a || !out)
		return VMRES_EINVAL;
	vmres__recs_descend(a, from, &p);
	l = rleaf_at(a, p.node[a->r.height]);
	pos = rleaf_rank(l, from);
	if (pos > 0 && rec_at(l, pos - 1)->base == from) {
		pos--;
	} else if (pos == l->count) {
		if (l->next == NIL)
			return VMRES_ENOENT;
		l = rleaf_at(a, l->next);
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
	for (uint32_t li = a->r.first_leaf; li != NIL; li = rleaf_at(a, li)->next) {
		const struct rleaf *l = rleaf_at(a, li);

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

	if (!a || !fn)
		return VMRES_EINVAL;
	for (uint32_t li = a->g.first_leaf; li != NIL; li = gleaf_at(a, li)->next) {
		const struct gleaf *l = gleaf_at(a, li);

		for (uint32_t i = 0; i < l->count; i++) {
			int rc;

			e.base = l->g[i].start;
			e.last = l->g[i].last;
			rc = fn(ctx, &e);
			if (rc)
				return rc;
		}
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
