/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A deliberately simple model of the system allocator (sysalloc.h) for
 * differential tests: per pool, the address model of addr_model.h (address
 * pools, plus each allocation's alignment) or a sorted array of (number, owner)
 * (number pools; a shared legacy line is one entry per sharer, marked shared,
 * in the order they joined). A batch is applied request by request on a copy of the whole
 * model, which replaces the model only if every request succeeded: all or
 * nothing, as the contract says. Errors are the documented ones in the
 * library's order of checks. O(allocations) per call; for tests only.
 */
#ifndef VMRES_TEST_SYSALLOC_MODEL_H
#define VMRES_TEST_SYSALLOC_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/sysalloc.h>

#include "addr_model.h"

struct sa_model_num {
	uint64_t n, owner;
	bool shared; /* a share of a shared line */
};

struct sa_model_align {
	uint64_t base, align;
};

struct sa_model_pool {
	char name[VMRES_POOL_NAME_MAX];
	enum vmres_res_kind kind;
	enum vmres_space space;
	uint64_t base, last;
	struct addr_model addr;	      /* address pools */
	struct sa_model_align *align; /* address pools: the align of each allocation */
	struct sa_model_num *num;     /* number pools, sorted by number */
	size_t n_num, cap;	      /* entries of num (or align), room */
};

struct sa_model {
	struct sa_model_pool *pool; /* in the order they were added */
	size_t n_pools;
};

static inline void *sa_model_xalloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		abort(); /* a test helper: out of memory ends the test */
	return q;
}

static inline void sa_model_fini(struct sa_model *m)
{
	for (size_t i = 0; i < m->n_pools; i++) {
		addr_model_fini(&m->pool[i].addr);
		free(m->pool[i].align);
		free(m->pool[i].num);
	}
	free(m->pool);
	memset(m, 0, sizeof(*m));
}

static inline void sa_model_add_pool(struct sa_model *m, const char *name, enum vmres_res_kind kind,
				     enum vmres_space space, uint64_t base, uint64_t last)
{
	struct sa_model_pool *p;

	m->pool = sa_model_xalloc(m->pool, (m->n_pools + 1) * sizeof(*m->pool));
	p = &m->pool[m->n_pools++];
	memset(p, 0, sizeof(*p));
	strncpy(p->name, name, sizeof(p->name) - 1);
	p->kind = kind;
	p->space = kind == VMRES_RES_ADDR ? space : 0;
	p->base = base;
	p->last = last;
	addr_model_init(&p->addr, base, last);
}

static inline void sa_model_copy(struct sa_model *dst, const struct sa_model *src)
{
	dst->n_pools = src->n_pools;
	dst->pool = sa_model_xalloc(NULL, src->n_pools * sizeof(*dst->pool));
	if (src->pool)
		memcpy(dst->pool, src->pool, src->n_pools * sizeof(*dst->pool));
	for (size_t i = 0; i < src->n_pools; i++) {
		struct sa_model_pool *d = &dst->pool[i];
		const struct sa_model_pool *s = &src->pool[i];

		d->addr.e = sa_model_xalloc(NULL, s->addr.cap * sizeof(*d->addr.e));
		if (s->addr.e)
			memcpy(d->addr.e, s->addr.e, s->addr.n * sizeof(*d->addr.e));
		d->align = sa_model_xalloc(NULL, s->cap * sizeof(*d->align));
		d->num = sa_model_xalloc(NULL, s->cap * sizeof(*d->num));
		if (s->align)
			memcpy(d->align, s->align, s->n_num * sizeof(*d->align));
		if (s->num)
			memcpy(d->num, s->num, s->n_num * sizeof(*d->num));
	}
}

static inline struct sa_model_pool *sa_model_pool(struct sa_model *m, const char *name)
{
	if (strnlen(name, VMRES_POOL_NAME_MAX) == VMRES_POOL_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < m->n_pools; i++)
		if (strcmp(m->pool[i].name, name) == 0)
			return &m->pool[i];
	return NULL;
}

static inline void sa_model_grow(struct sa_model_pool *p)
{
	if (p->n_num < p->cap)
		return;
	p->cap = p->cap ? 2 * p->cap : 16;
	p->align = sa_model_xalloc(p->align, p->cap * sizeof(*p->align));
	p->num = sa_model_xalloc(p->num, p->cap * sizeof(*p->num));
}

/* Index of the first number entry >= @p n. */
static inline size_t sa_model_num_lower(const struct sa_model_pool *p, uint64_t n)
{
	size_t i = 0;

	while (i < p->n_num && p->num[i].n < n)
		i++;
	return i;
}

static inline bool sa_model_num_taken(const struct sa_model_pool *p, uint64_t n)
{
	size_t i = sa_model_num_lower(p, n);

	return i < p->n_num && p->num[i].n == n;
}

/* A new entry for @p n after those already there (a share joins last). */
static inline void sa_model_num_put(struct sa_model_pool *p, uint64_t n, uint64_t owner,
				    bool shared)
{
	size_t i = sa_model_num_lower(p, n);

	while (i < p->n_num && p->num[i].n == n)
		i++;
	sa_model_grow(p);
	memmove(&p->num[i + 1], &p->num[i], (p->n_num - i) * sizeof(*p->num));
	p->num[i] = (struct sa_model_num){n, owner, shared};
	p->n_num++;
}

static inline void sa_model_num_take(struct sa_model_pool *p, uint64_t n, uint64_t owner)
{
	sa_model_num_put(p, n, owner, false);
}

/* The lowest free number of the pool, or UINT64_MAX. */
static inline uint64_t sa_model_num_lowest(const struct sa_model_pool *p)
{
	uint64_t n = p->base;

	/* A shared line has an entry per sharer: skip to its last one. */
	for (size_t i = 0; i < p->n_num && p->num[i].n <= n; i++)
		if (p->num[i].n == n)
			n++;
	return n <= p->last && n >= p->base ? n : UINT64_MAX;
}

/* The lowest block of @p count numbers at a multiple of @p count, or UINT64_MAX. */
static inline uint64_t sa_model_num_block(const struct sa_model_pool *p, uint64_t count)
{
	uint64_t f = (p->base + count - 1) / count * count;

	while (f + count - 1 <= p->last) {
		size_t i = sa_model_num_lower(p, f);

		if (i == p->n_num || p->num[i].n > f + count - 1)
			return f;
		f = (p->num[i].n + count) / count * count;
	}
	return UINT64_MAX;
}

static inline void sa_model_res(const struct sa_model_pool *p, uint64_t key, uint64_t size,
				uint64_t align, struct vmres_resource *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = p->kind;
	memcpy(out->pool, p->name, sizeof(out->pool));
	switch (p->kind) {
	case VMRES_RES_ADDR:
		out->u.addr.space = p->space;
		out->u.addr.base = key;
		out->u.addr.size = size;
		out->u.addr.align = align;
		break;
	case VMRES_RES_IRQ:
		out->u.irq.gsi = (uint32_t)key;
		break;
	case VMRES_RES_MSI:
		out->u.msi.gsi = (uint32_t)key;
		break;
	default:
		out->u.id.id = (uint32_t)key;
		break;
	}
}

static inline bool sa_model_in_pool(const struct sa_model_pool *p, uint64_t first, uint64_t count)
{
	return first >= p->base && first + count - 1 <= p->last;
}

/* The sharers of the shared line at entry @p i (its first). */
static inline size_t sa_model_sharers(const struct sa_model_pool *p, size_t i)
{
	size_t k = i;

	while (k < p->n_num && p->num[k].n == p->num[i].n)
		k++;
	return k - i;
}

/*
 * A share of a legacy line: the lowest free number makes a new line (any),
 * else the line with the fewest sharers, the lowest of those; specific: join
 * the line at @p want, or make a free @p want a line. An exclusive number is
 * never joined.
 */
static inline int sa_model_shared(struct sa_model_pool *p, bool any, uint64_t want,
				  uint64_t owner, struct vmres_resource *out, size_t *n_out)
{
	uint64_t n = want;

	if (!any && !sa_model_in_pool(p, want, 1))
		return VMRES_ERANGE;
	if (any) {
		n = sa_model_num_lowest(p);
		if (n == UINT64_MAX) {
			size_t best = 0, fewest = SIZE_MAX;

			for (size_t i = 0; i < p->n_num; i += sa_model_sharers(p, i))
				if (p->num[i].shared && sa_model_sharers(p, i) < fewest) {
					fewest = sa_model_sharers(p, i);
					best = i;
				}
			if (fewest == SIZE_MAX)
				return VMRES_ENOSPC;
			n = p->num[best].n;
		}
	} else if (sa_model_num_taken(p, n) && !p->num[sa_model_num_lower(p, n)].shared) {
		return VMRES_EOVERLAP;
	}
	sa_model_num_put(p, n, owner, true);
	sa_model_res(p, n, 0, 0, &out[*n_out]);
	out[(*n_out)++].u.irq.shared = true;
	return 0;
}

/* One number (vmres_ids semantics: reserve a specific one or take the lowest). */
static inline int sa_model_number(struct sa_model_pool *p, bool any, uint64_t want, uint64_t owner,
				  struct vmres_resource *out, size_t *n_out)
{
	uint64_t n = want;

	if (!any && !sa_model_in_pool(p, want, 1))
		return VMRES_ERANGE;
	if (any) {
		n = sa_model_num_lowest(p);
		if (n == UINT64_MAX)
			return VMRES_ENOSPC;
	} else if (sa_model_num_taken(p, n)) {
		return VMRES_EOVERLAP;
	}
	sa_model_num_take(p, n, owner);
	sa_model_res(p, n, 0, 0, &out[(*n_out)++]);
	return 0;
}

static inline int sa_model_msi(struct sa_model_pool *p, const struct vmres_request *q,
			       uint64_t owner, struct vmres_resource *out, size_t *n_out)
{
	uint64_t count = q->u.msi.count, first = q->u.msi.gsi;

	if (count == 0)
		return VMRES_ESIZE;
	if (q->u.msi.contiguous && (count & (count - 1)))
		return VMRES_EALIGN;
	if (!q->u.msi.any && !sa_model_in_pool(p, first, count))
		return VMRES_ERANGE;
	if (!q->u.msi.any && q->u.msi.contiguous && first % count)
		return VMRES_EMISALIGNED;
	if (q->u.msi.contiguous || !q->u.msi.any) {
		if (q->u.msi.any) {
			first = sa_model_num_block(p, count);
			if (first == UINT64_MAX)
				return VMRES_ENOSPC;
		} else {
			for (uint64_t i = first; i < first + count; i++)
				if (sa_model_num_taken(p, i))
					return VMRES_EOVERLAP;
		}
		for (uint64_t i = first; i < first + count; i++) {
			sa_model_num_take(p, i, owner);
			sa_model_res(p, i, 0, 0, &out[(*n_out)++]);
		}
		return 0;
	}
	for (uint64_t i = 0; i < count; i++) {
		int ret = sa_model_number(p, true, 0, owner, out, n_out);

		if (ret)
			return ret;
	}
	return 0;
}

static inline int sa_model_alloc_one(struct sa_model *m, const struct vmres_request *q,
				     uint64_t owner, struct vmres_resource *out, size_t *n_out)
{
	struct sa_model_pool *p;

	if (q->kind < VMRES_RES_ADDR || q->kind > VMRES_RES_ID)
		return VMRES_EINVAL;
	p = sa_model_pool(m, q->pool);
	if (!p)
		return VMRES_EPOOL;
	if (p->kind != q->kind)
		return VMRES_EKIND;
	switch (q->kind) {
	case VMRES_RES_ADDR: {
		struct vmres_addr_req req = q->u.addr.req;
		uint64_t base;
		int ret;

		if (q->u.addr.space != p->space)
			return VMRES_EKIND;
		if (req.size == 0)
			return VMRES_ESIZE;
		req.owner = owner;
		ret = addr_model_alloc(&p->addr, &req, &base);
		if (ret)
			return ret;
		sa_model_grow(p);
		p->align[p->n_num++] = (struct sa_model_align){base, req.align};
		sa_model_res(p, base, req.size, req.align, &out[(*n_out)++]);
		return 0;
	}
	case VMRES_RES_IRQ:
		if (q->u.irq.shared)
			return sa_model_shared(p, q->u.irq.any, q->u.irq.gsi, owner, out, n_out);
		return sa_model_number(p, q->u.irq.any, q->u.irq.gsi, owner, out, n_out);
	case VMRES_RES_MSI:
		return sa_model_msi(p, q, owner, out, n_out);
	default:
		return sa_model_number(p, q->u.id.any, q->u.id.id, owner, out, n_out);
	}
}

/* vmres_sysalloc_alloc(): all or nothing; @p err gets the code and the index. */
static inline int sa_model_alloc(struct sa_model *m, const struct vmres_request *q, size_t n_reqs,
				 uint64_t owner, struct vmres_resource *out, size_t out_cap,
				 size_t *n_out, struct vmres_sysalloc_error *err)
{
	struct sa_model work;
	uint64_t total = 0;
	size_t n = 0;
	int ret = 0;

	for (size_t i = 0; i < n_reqs; i++) {
		total += q[i].kind == VMRES_RES_MSI ? q[i].u.msi.count : 1;
		if (total > out_cap) {
			*err = (struct vmres_sysalloc_error){VMRES_EFULL, i};
			return VMRES_EFULL;
		}
	}
	sa_model_copy(&work, m);
	for (size_t i = 0; i < n_reqs; i++) {
		ret = sa_model_alloc_one(&work, &q[i], owner, out, &n);
		if (ret) {
			*err = (struct vmres_sysalloc_error){ret, i};
			sa_model_fini(&work);
			return ret;
		}
	}
	sa_model_fini(m);
	*m = work;
	*n_out = n;
	return 0;
}

static inline uint64_t sa_model_key(const struct vmres_resource *r)
{
	switch (r->kind) {
	case VMRES_RES_ADDR:
		return r->u.addr.base;
	case VMRES_RES_IRQ:
		return r->u.irq.gsi;
	case VMRES_RES_MSI:
		return r->u.msi.gsi;
	default:
		return r->u.id.id;
	}
}

/* Remove the record of @p key (found) from pool @p p. */
static inline void sa_model_remove(struct sa_model_pool *p, uint64_t key)
{
	if (p->kind == VMRES_RES_ADDR) {
		struct vmres_addr_entry e = {0, 0, 0};
		size_t i = 0;

		addr_model_find(&p->addr, key, &e);
		addr_model_release(&p->addr, e.base, e.last - e.base + 1, NULL);
		while (p->align[i].base != key)
			i++;
		p->align[i] = p->align[--p->n_num];
		return;
	}
	size_t i = sa_model_num_lower(p, key);

	memmove(&p->num[i], &p->num[i + 1], (p->n_num - i - 1) * sizeof(*p->num));
	p->n_num--;
}

/* Remove number entry @p i (a sharer leaves its line: the others keep their order). */
static inline void sa_model_remove_at(struct sa_model_pool *p, size_t i)
{
	memmove(&p->num[i], &p->num[i + 1], (p->n_num - i - 1) * sizeof(*p->num));
	p->n_num--;
}

static inline int sa_model_release(struct sa_model *m, const struct vmres_resource *r,
				   uint64_t owner)
{
	struct sa_model_pool *p = sa_model_pool(m, r->pool);
	uint64_t key = sa_model_key(r), rec_owner;

	if (!p)
		return VMRES_EPOOL;
	if (p->kind != r->kind || (p->kind == VMRES_RES_ADDR && p->space != r->u.addr.space))
		return VMRES_EKIND;
	if (p->kind == VMRES_RES_ADDR) {
		struct vmres_addr_entry e = {0, 0, 0};

		if (addr_model_find(&p->addr, key, &e) || e.base != key ||
		    e.last - e.base + 1 != r->u.addr.size)
			return VMRES_ENOENT;
		rec_owner = e.owner;
	} else {
		size_t i = sa_model_num_lower(p, key);

		if (i == p->n_num || p->num[i].n != key)
			return VMRES_ENOENT;
		if (p->num[i].shared) {
			/* The owner's share that joined last, if it has one. */
			for (size_t k = i + sa_model_sharers(p, i); k-- > i;)
				if (p->num[k].owner == owner) {
					sa_model_remove_at(p, k);
					return 0;
				}
			return VMRES_EOWNER;
		}
		rec_owner = p->num[i].owner;
	}
	if (rec_owner != owner)
		return VMRES_EOWNER;
	sa_model_remove(p, key);
	return 0;
}

static inline void sa_model_release_owner(struct sa_model *m, uint64_t owner)
{
	for (size_t i = 0; i < m->n_pools; i++) {
		struct sa_model_pool *p = &m->pool[i];

		if (p->kind == VMRES_RES_ADDR) {
			for (size_t j = p->addr.n; j-- > 0;)
				if (p->addr.e[j].owner == owner)
					sa_model_remove(p, p->addr.e[j].base);
			continue;
		}
		for (size_t j = p->n_num; j-- > 0;)
			if (p->num[j].owner == owner)
				sa_model_remove_at(p, j);
	}
}

/* Allocation @p k of the model in vmres_sysalloc_foreach_alloc() order; false past the end. */
static inline bool sa_model_nth(const struct sa_model *m, size_t k,
				struct vmres_sysalloc_alloc_info *out)
{
	for (size_t i = 0; i < m->n_pools; i++) {
		const struct sa_model_pool *p = &m->pool[i];
		size_t n = p->kind == VMRES_RES_ADDR ? p->addr.n : p->n_num;

		if (k >= n) {
			k -= n;
			continue;
		}
		memset(out, 0, sizeof(*out));
		if (p->kind == VMRES_RES_ADDR) {
			const struct vmres_addr_entry *e = &p->addr.e[k];
			size_t j = 0;

			while (p->align[j].base != e->base)
				j++;
			sa_model_res(p, e->base, e->last - e->base + 1, p->align[j].align,
				     &out->res);
			out->owner = e->owner;
		} else {
			sa_model_res(p, p->num[k].n, 0, 0, &out->res);
			if (p->kind == VMRES_RES_IRQ)
				out->res.u.irq.shared = p->num[k].shared;
			out->owner = p->num[k].owner;
		}
		return true;
	}
	return false;
}

#endif /* VMRES_TEST_SYSALLOC_MODEL_H */
