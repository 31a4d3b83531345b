/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A deliberately simple model of the address-space allocator (addr.h) for
 * differential tests: a sorted array of allocations, searched linearly, with
 * 128-bit arithmetic so that no sum can wrap. Every function returns what the
 * real one documents (same codes, checked in the same order), so a test can
 * compare return code, result and state after each step. O(n) per call; meant
 * for a few hundred allocations at most.
 */
#ifndef VMRES_TEST_ADDR_MODEL_H
#define VMRES_TEST_ADDR_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/addr.h>

typedef unsigned __int128 addr_model_u128;

struct addr_model {
	uint64_t base, last;	    /* the window */
	struct vmres_addr_entry *e; /* allocations sorted by base */
	size_t n, cap;
};

static inline void addr_model_init(struct addr_model *m, uint64_t base, uint64_t last)
{
	memset(m, 0, sizeof(*m));
	m->base = base;
	m->last = last;
}

static inline void addr_model_fini(struct addr_model *m)
{
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* Index of the first allocation whose last address is >= @p addr (n if none). */
static inline size_t addr_model_lower(const struct addr_model *m, uint64_t addr)
{
	size_t i = 0;

	while (i < m->n && m->e[i].last < addr)
		i++;
	return i;
}

static inline bool addr_model_is_free(const struct addr_model *m, uint64_t a, uint64_t b)
{
	size_t i = addr_model_lower(m, a);

	return i == m->n || m->e[i].base > b;
}

static inline int addr_model_insert(struct addr_model *m, uint64_t base, uint64_t last,
				    uint64_t owner)
{
	size_t i = addr_model_lower(m, base);

	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct vmres_addr_entry *e = realloc(m->e, cap * sizeof(*e));

		if (!e)
			return VMRES_ENOMEM;
		m->e = e;
		m->cap = cap;
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = (struct vmres_addr_entry){.base = base, .last = last, .owner = owner};
	m->n++;
	return 0;
}

/*
 * Free gap number @p k in address order: [*gs, *ge]. Returns false past the
 * last gap. Gaps are the maximal free runs of the window.
 */
/* Every free gap in address order, into @gs/@ge (room for n + 1); returns
 * how many. One pass, so that the tests stay linear per operation. */
static inline size_t addr_model_gaps(const struct addr_model *m, uint64_t *gs, uint64_t *ge)
{
	addr_model_u128 start = m->base;
	size_t k = 0;

	for (size_t i = 0; i <= m->n; i++) {
		addr_model_u128 end =
			i < m->n ? (addr_model_u128)m->e[i].base : (addr_model_u128)m->last + 1;

		if (end > start) {
			gs[k] = (uint64_t)start;
			ge[k] = (uint64_t)(end - 1);
			k++;
		}
		if (i < m->n)
			start = (addr_model_u128)m->e[i].last + 1;
	}
	return k;
}

static inline addr_model_u128 addr_model_align_up(addr_model_u128 x, uint64_t align)
{
	if (align <= 1)
		return x;
	return (x + align - 1) / align * align;
}

/* First or last fit of @p size at a multiple of @p align inside [lo, hi]. */
static inline bool addr_model_fit(const struct addr_model *m, bool last_fit, uint64_t size,
				  uint64_t align, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t *gs = malloc((m->n + 1) * sizeof(*gs)), *ge = malloc((m->n + 1) * sizeof(*ge));
	size_t ngaps = gs && ge ? addr_model_gaps(m, gs, ge) : 0;
	uint64_t a = align > 1 ? align : 1;
	bool found = false;

	for (size_t j = 0; j < ngaps && !found; j++) {
		size_t k = last_fit ? ngaps - 1 - j : j;
		addr_model_u128 s, e;

		s = gs[k] > lo ? gs[k] : lo;
		e = ge[k] < hi ? ge[k] : hi;
		if (s > e || e - s + 1 < size)
			continue;
		if (last_fit)
			s = (e + 1 - size) / a * a;
		else
			s = addr_model_align_up(s, a);
		if (s >= (gs[k] > lo ? gs[k] : lo) && s + size - 1 <= e) {
			*out = (uint64_t)s;
			found = true;
		}
	}
	free(gs);
	free(ge);
	return found;
}

static inline int addr_model_alloc(struct addr_model *m, const struct vmres_addr_req *req,
				   uint64_t *base_out)
{
	addr_model_u128 last;
	uint64_t lo, hi, start;
	int rc;

	if (req->version != VMRES_ADDR_REQ_VERSION)
		return VMRES_EINVAL;
	if (req->policy != VMRES_ADDR_FIRST_FIT && req->policy != VMRES_ADDR_LAST_FIT &&
	    req->policy != VMRES_ADDR_EXACT)
		return VMRES_EINVAL;
	if (req->min > req->max)
		return VMRES_EINVAL;
	if (req->size == 0)
		return VMRES_ESIZE;
	if (req->align > 1 && (req->align & (req->align - 1)))
		return VMRES_EALIGN;
	if (req->policy == VMRES_ADDR_EXACT) {
		last = (addr_model_u128)req->addr + req->size - 1;
		if (last > UINT64_MAX)
			return VMRES_EOVERFLOW;
		if (req->addr < m->base || last > m->last || req->addr < req->min ||
		    last > req->max)
			return VMRES_ERANGE;
		if (req->align > 1 && req->addr % req->align)
			return VMRES_EMISALIGNED;
		if (!addr_model_is_free(m, req->addr, (uint64_t)last))
			return VMRES_EOVERLAP;
		rc = addr_model_insert(m, req->addr, (uint64_t)last, req->owner);
		if (rc)
			return rc;
		*base_out = req->addr;
		return 0;
	}
	/* The sub-window clipped to the window; then the lowest aligned start at
	 * or above its base, and its end, must exist. */
	if (req->max < m->base || req->min > m->last)
		return VMRES_ERANGE;
	lo = req->min > m->base ? req->min : m->base;
	hi = req->max < m->last ? req->max : m->last;
	if (addr_model_align_up(lo, req->align) + req->size - 1 > UINT64_MAX)
		return VMRES_EOVERFLOW;
	if (!addr_model_fit(m, req->policy == VMRES_ADDR_LAST_FIT, req->size, req->align, lo, hi,
			    &start))
		return VMRES_ENOSPC;
	rc = addr_model_insert(m, start, start + (req->size - 1), req->owner);
	if (rc)
		return rc;
	*base_out = start;
	return 0;
}

static inline int addr_model_release(struct addr_model *m, uint64_t base, uint64_t size,
				     uint64_t *owner_out)
{
	addr_model_u128 last = (addr_model_u128)base + size - 1;
	size_t i;

	if (size == 0)
		return VMRES_ESIZE;
	if (last > UINT64_MAX)
		return VMRES_EOVERFLOW;
	i = addr_model_lower(m, base);
	if (i == m->n || m->e[i].base != base || m->e[i].last != (uint64_t)last)
		return VMRES_ENOENT;
	if (owner_out)
		*owner_out = m->e[i].owner;
	memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
	m->n--;
	return 0;
}

static inline int addr_model_find(const struct addr_model *m, uint64_t addr,
				  struct vmres_addr_entry *out)
{
	size_t i = addr_model_lower(m, addr);

	if (i == m->n || m->e[i].base > addr)
		return VMRES_ENOENT;
	*out = m->e[i];
	return 0;
}

static inline int addr_model_next(const struct addr_model *m, uint64_t from,
				  struct vmres_addr_entry *out)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].base >= from) {
			*out = m->e[i];
			return 0;
		}
	return VMRES_ENOENT;
}

/* 2^64 is reported as UINT64_MAX, as vmres_addr_stats() does. */
static inline uint64_t addr_model_clamp(addr_model_u128 x)
{
	return x > UINT64_MAX ? UINT64_MAX : (uint64_t)x;
}

static inline void addr_model_stats(const struct addr_model *m, struct vmres_addr_stats *out)
{
	addr_model_u128 used = 0, window = (addr_model_u128)m->last - m->base + 1;

	for (size_t i = 0; i < m->n; i++)
		used += (addr_model_u128)m->e[i].last - m->e[i].base + 1;
	out->base = m->base;
	out->last = m->last;
	out->count = m->n;
	out->used = addr_model_clamp(used);
	out->free = addr_model_clamp(window - used);
	/* A gap before entry i, or after the last, where that space is not empty. */
	out->gaps = 0;
	for (size_t i = 0; i <= m->n; i++) {
		addr_model_u128 start = i ? (addr_model_u128)m->e[i - 1].last + 1 : m->base;
		addr_model_u128 end =
			i < m->n ? (addr_model_u128)m->e[i].base : (addr_model_u128)m->last + 1;

		out->gaps += end > start;
	}
}

#endif /* VMRES_TEST_ADDR_MODEL_H */
