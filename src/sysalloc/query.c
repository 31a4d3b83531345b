/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-only views of a system allocator: iteration (for dumps and snapshots),
 * lookups, and the consistency check the tests run after every operation.
 * Allocations are enumerated in order by asking each pool's own allocator
 * (vmres_addr_next, vmres_ids_next) and attaching the record found by hash.
 */
#include "sysalloc_int.h"
#include "../util/bits.h"

#include <stdlib.h>
#include <string.h>

/* ---- iteration and lookups ---- */

int vmres_sysalloc_foreach_pool(const struct vmres_sysalloc *sa, vmres_sysalloc_pool_fn fn,
				void *ctx)
{
	if (!sa || !fn)
		return VMRES_EINVAL;
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		const struct vmres__pool *p = sa->pools[i];
		struct vmres_sysalloc_pool_info info = {
			.name = p->name,
			.kind = p->kind,
			.space = p->kind == VMRES_RES_ADDR ? p->space : 0,
			.base = p->base,
			.last = p->last,
			.count = p->count,
			.guest = p->guest,
		};
		int ret = fn(ctx, &info);

		if (ret)
			return ret;
	}
	return 0;
}

/* Call @p fn on each record of the list from @p r: an owner's (@p by_owner,
 * linked by o_next) or a shared line's sharers (by s_next, in the order they
 * joined). */
static int visit_list(const struct vmres__rec *r, bool by_owner, vmres_sysalloc_alloc_fn fn,
		      void *ctx)
{
	for (; r; r = by_owner ? r->o_next : r->s_next) {
		struct vmres_sysalloc_alloc_info info;
		int ret;

		vmres__sysalloc_info(r, &info);
		ret = fn(ctx, &info);
		if (ret)
			return ret;
	}
	return 0;
}

/* Call @p fn on the record of the allocation at @p key in pool @p p (on every
 * sharer's, for a shared line). */
static int visit_pool(const struct vmres_sysalloc *sa, const struct vmres__pool *p, uint64_t key,
		 vmres_sysalloc_alloc_fn fn, void *ctx)
{
	struct vmres_sysalloc_alloc_info info;
	struct vmres__rec *r = vmres__sysalloc_rec(sa, p, key);
	const struct vmres__line *l = p->n_heap ? vmres__sysalloc_line(p, key) : NULL;

	if (l && !r)
		return visit_list(l->first, false, fn, ctx);
	if (!r || l)
		return VMRES_ECORRUPT;
	vmres__sysalloc_info(r, &info);
	return fn(ctx, &info);
}

/* Visit one pool's records in order, as its allocator enumerates them. */
int vmres__sysalloc_foreach_in_pool(const struct vmres_sysalloc *sa, const struct vmres__pool *p,
				    vmres_sysalloc_alloc_fn fn, void *ctx)
{
	int ret;

	if (p->kind == VMRES_RES_ADDR) {
		struct vmres_addr_entry e;
		uint64_t from = p->base;

		while (vmres_addr_next(p->addr, from, &e) == 0) {
			ret = visit_pool(sa, p, e.base, fn, ctx);
			if (ret)
				return ret;
			if (e.last >= p->last)
				break;
			from = e.last + 1;
		}
		return 0;
	}
	for (uint32_t n, from = (uint32_t)p->base; vmres_ids_next(p->ids, from, &n) == 0;
	     from = n + 1) {
		ret = visit_pool(sa, p, n, fn, ctx);
		if (ret)
			return ret;
		if (n >= p->last)
			break;
	}
	return 0;
}

int vmres_sysalloc_foreach_alloc(const struct vmres_sysalloc *sa, vmres_sysalloc_alloc_fn fn,
				 void *ctx)
{
	if (!sa || !fn)
		return VMRES_EINVAL;
	/* A shared line's sharers come one after another at its number, in the
	 * order they joined (as the dumps show them): replayed in that order as
	 * shared requests for that number, they join in the same order. */
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		int ret = vmres__sysalloc_foreach_in_pool(sa, sa->pools[i], fn, ctx);

		if (ret)
			return ret;
	}
	return 0;
}

int vmres_sysalloc_foreach_owner_alloc(const struct vmres_sysalloc *sa, uint64_t owner,
				       vmres_sysalloc_alloc_fn fn, void *ctx)
{
	const struct vmres__owner *o;

	if (!sa || !fn)
		return VMRES_EINVAL;
	o = vmres__sysalloc_owner(sa, owner);
	return visit_list(o ? o->head : NULL, true, fn, ctx);
}

int vmres_sysalloc_foreach_sharer(const struct vmres_sysalloc *sa, const char *pool, uint32_t gsi,
				  vmres_sysalloc_alloc_fn fn, void *ctx)
{
	const struct vmres__line *l;
	struct vmres__pool *p;
	int ret;

	if (!sa || !pool || !fn)
		return VMRES_EINVAL;
	ret = vmres__sysalloc_pool_arg(sa, pool, &p);
	if (ret)
		return ret;
	if (p->kind != VMRES_RES_IRQ)
		return VMRES_EKIND;
	l = vmres__sysalloc_line(p, gsi);
	if (!l)
		return VMRES_ENOENT;
	return visit_list(l->first, false, fn, ctx);
}

static int cmp_owner(const void *a, const void *b)
{
	uint64_t x = (*(const struct vmres__owner *const *)a)->node.key;
	uint64_t y = (*(const struct vmres__owner *const *)b)->node.key;

	return x < y ? -1 : x > y;
}

int vmres_sysalloc_foreach_owner(const struct vmres_sysalloc *sa, vmres_sysalloc_owner_fn fn,
				 void *ctx)
{
	const struct vmres__owner **all;
	size_t n = 0;
	int ret = 0;

	if (!sa || !fn)
		return VMRES_EINVAL;
	/* The table's order depends on its history; callers want a stable one. */
	all = malloc((sa->owners.count ? sa->owners.count : 1) * sizeof(*all));
	if (!all)
		return VMRES_ENOMEM;
	for (size_t b = 0; b <= sa->owners.mask; b++)
		for (const struct vmres__hnode *h = sa->owners.buckets[b]; h; h = h->next)
			all[n++] = (const struct vmres__owner *)h;
	qsort(all, n, sizeof(*all), cmp_owner);
	for (size_t i = 0; i < n && !ret; i++)
		ret = fn(ctx, all[i]->node.key, all[i]->name[0] ? all[i]->name : NULL,
			 all[i]->count);
	free(all);
	return ret;
}

int vmres_sysalloc_find_pool(const struct vmres_sysalloc *sa, enum vmres_space space, uint64_t addr,
			     char name_out[VMRES_POOL_NAME_MAX])
{
	if (!sa || !name_out)
		return VMRES_EINVAL;
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		const struct vmres__pool *p = sa->pools[i];

		if (p->kind == VMRES_RES_ADDR && !p->guest && p->space == space &&
		    vmres__range_within(addr, addr, p->base, p->last)) {
			memcpy(name_out, p->name, VMRES_POOL_NAME_MAX);
			return 0;
		}
	}
	return VMRES_ENOENT;
}

int vmres_sysalloc_find(const struct vmres_sysalloc *sa, const char *pool, uint64_t value,
			struct vmres_sysalloc_alloc_info *out)
{
	struct vmres__pool *p;
	const struct vmres__rec *r;
	int ret;

	if (!sa || !pool || !out)
		return VMRES_EINVAL;
	ret = vmres__sysalloc_pool_arg(sa, pool, &p);
	if (ret)
		return ret;
	if (p->kind == VMRES_RES_ADDR) {
		struct vmres_addr_entry e;

		if (vmres_addr_find(p->addr, value, &e))
			return VMRES_ENOENT;
		value = e.base;
	}
	r = vmres__sysalloc_rec(sa, p, value);
	if (!r && p->kind == VMRES_RES_IRQ) {
		const struct vmres__line *l = vmres__sysalloc_line(p, value);

		r = l ? l->first : NULL;
	}
	if (!r)
		return VMRES_ENOENT;
	vmres__sysalloc_info(r, out);
	return 0;
}

/* ---- validation ---- */

struct pool_check {
	const struct vmres__pool *pool;
	uint64_t seen;
};

static int check_rec(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct pool_check *c = ctx;

	(void)a;
	c->seen++;
	return 0;
}

/* A pool's lines: in their table and heap, the heap ordered, each line's
 * sharers linked both ways, counted, and found under their owners' keys. */
static int validate_lines(const struct vmres_sysalloc *sa, const struct vmres__pool *p)
{
	uint64_t sharers = 0;

	if (p->n_heap && p->kind != VMRES_RES_IRQ)
		return VMRES_ECORRUPT;
	if (p->n_heap != (p->lines.buckets ? p->lines.count : 0))
		return VMRES_ECORRUPT;
	for (uint32_t i = 0; i < p->n_heap; i++) {
		const struct vmres__line *l = p->heap[i], *up = p->heap[i ? (i - 1) / 2 : 0];
		const struct vmres__rec *prev = NULL;
		uint32_t n = 0;

		if (l->heap_pos != i || vmres__sysalloc_line(p, l->node.key) != l || !l->sharers ||
		    vmres_ids_test(p->ids, (uint32_t)l->node.key) != 1 ||
		    vmres__sysalloc_rec(sa, p, l->node.key))
			return VMRES_ECORRUPT;
		if (i && (up->sharers > l->sharers ||
			  (up->sharers == l->sharers && up->node.key > l->node.key)))
			return VMRES_ECORRUPT;
		for (const struct vmres__rec *r = l->first; r; prev = r, r = r->s_next, n++) {
			if (r->line != l || r->s_prev != prev || r->pool != p ||
			    r->node.key != l->node.key || r->node.sub != r->owner->node.key ||
			    r->node.ns != (p->index | VMRES__NS_SHARED))
				return VMRES_ECORRUPT;
		}
		if (l->last != prev || n != l->sharers)
			return VMRES_ECORRUPT;
		sharers += n;
	}
	return sharers == p->n_shared ? 0 : VMRES_ECORRUPT;
}

static int validate_pool(const struct vmres_sysalloc *sa, const struct vmres__pool *p)
{
	struct pool_check c = {p, 0};

	if (p->kind == VMRES_RES_ADDR) {
		struct vmres_addr_stats st;
		struct vmres_addr_entry e;
		uint64_t from = p->base;

		if (vmres_addr_validate(p->addr) || vmres_addr_stats(p->addr, &st) ||
		    st.count != p->count)
			return VMRES_ECORRUPT;
		while (vmres_addr_next(p->addr, from, &e) == 0) {
			const struct vmres__rec *r = vmres__sysalloc_rec(sa, p, e.base);

			if (!r || r->size != e.last - e.base + 1 || r->owner->node.key != e.owner)
				return VMRES_ECORRUPT;
			if (e.last >= p->last)
				break;
			from = e.last + 1;
		}
	} else {
		struct vmres_ids_stats st;

		/* Every exclusive record holds a number, and so does every line. */
		if (vmres_ids_validate(p->ids) || vmres_ids_stats(p->ids, &st) ||
		    p->n_shared > p->count || st.used != p->count - p->n_shared + p->n_heap ||
		    validate_lines(sa, p))
			return VMRES_ECORRUPT;
	}
	if (vmres__sysalloc_foreach_in_pool(sa, p, check_rec, &c) || c.seen != p->count)
		return VMRES_ECORRUPT;
	return 0;
}

int vmres_sysalloc_validate(const struct vmres_sysalloc *sa)
{
	uint64_t in_pools = 0, in_owners = 0;

	if (!sa)
		return VMRES_EINVAL;
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		if (validate_pool(sa, sa->pools[i]))
			return VMRES_ECORRUPT;
		in_pools += sa->pools[i]->count;
	}
	if (in_pools != sa->n_recs || sa->recs.count != sa->n_recs)
		return VMRES_ECORRUPT;
	for (size_t b = 0; b <= sa->owners.mask; b++) {
		for (const struct vmres__hnode *n = sa->owners.buckets[b]; n; n = n->next) {
			const struct vmres__owner *o = (const struct vmres__owner *)n;
			uint64_t len = 0;

			if (!o->count && !o->name[0])
				return VMRES_ECORRUPT;
			for (const struct vmres__rec *r = o->head; r; r = r->o_next, len++)
				if (r->owner != o || (r->o_next && r->o_next->o_prev != r))
					return VMRES_ECORRUPT;
			if (len != o->count)
				return VMRES_ECORRUPT;
			in_owners += len;
		}
	}
	return in_owners == sa->n_recs ? 0 : VMRES_ECORRUPT;
}
