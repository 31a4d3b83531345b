/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The system allocator: named pools over addr and ids allocators, one record per
 * allocated resource, atomic multi-request allocation.
 *
 * Atomicity: every record created by one vmres_sysalloc_alloc() call is pushed
 * on a stack (rec->txn) as soon as its resource is taken from a pool. If a later
 * request fails, the stack is popped (most recent first) and each resource given
 * back, which restores the pools exactly: the addr and ids allocators are
 * deterministic, so "allocate then release" leaves them as they were.
 * Releasing never allocates memory, so a rollback cannot fail.
 */
#include "sysalloc_int.h"
#include "../common_int.h"
#include "../util/bits.h"

#include <stdlib.h>
#include <string.h>

#define HTAB_MIN_BUCKETS 64

/* ---- hash tables (chained, power-of-two buckets, grown at load 1) ---- */

static size_t hash(uint32_t ns, uint64_t key, uint64_t sub)
{
	uint64_t x = key ^ ((uint64_t)ns * 0x9e3779b97f4a7c15ull) ^ (sub * 0xc2b2ae3d27d4eb4full);

	/* splitmix64's finalizer: every key bit reaches every hash bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (size_t)x;
}

static int htab_init(struct vmres__htab *t)
{
	t->buckets = calloc(HTAB_MIN_BUCKETS, sizeof(*t->buckets));
	if (!t->buckets)
		return VMRES_ENOMEM;
	t->mask = HTAB_MIN_BUCKETS - 1;
	t->count = 0;
	return 0;
}

static struct vmres__hnode *htab_find(const struct vmres__htab *t, uint32_t ns, uint64_t key,
				      uint64_t sub)
{
	struct vmres__hnode *n;

	if (!t->buckets)
		return NULL; /* a pool's line table before its first line */
	n = t->buckets[hash(ns, key, sub) & t->mask];
	while (n && (n->key != key || n->ns != ns || n->sub != sub))
		n = n->next;
	return n;
}

/*
 * Growing is an optimisation: if memory is short the chains just get longer.
 * Each old chain is split in order (appended at its new chain's tail), so
 * nodes of equal keys (an owner's shares of one line) stay most recent first
 * and a lookup finds the same one before and after: the share that release
 * and set_label act on must not depend on the table's history (a restored
 * sysalloc has another one).
 */
static void htab_grow(struct vmres__htab *t)
{
	size_t nb = (t->mask + 1) * 2;
	struct vmres__hnode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		/* A chain of bucket i goes to buckets i and i + old count only. */
		struct vmres__hnode **tail[2] = {&b[i], &b[i + t->mask + 1]};
		struct vmres__hnode *n = t->buckets[i];

		while (n) {
			struct vmres__hnode *next = n->next;
			size_t h = hash(n->ns, n->key, n->sub) & (nb - 1);
			int which = h != i;

			n->next = NULL;
			*tail[which] = n;
			tail[which] = &n->next;
			n = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->mask = nb - 1;
}

static void htab_insert(struct vmres__htab *t, struct vmres__hnode *n)
{
	size_t h;

	if (t->count > t->mask)
		htab_grow(t);
	h = hash(n->ns, n->key, n->sub) & t->mask;
	n->next = t->buckets[h];
	t->buckets[h] = n;
	t->count++;
}

static void htab_remove(struct vmres__htab *t, struct vmres__hnode *n)
{
	struct vmres__hnode **p = &t->buckets[hash(n->ns, n->key, n->sub) & t->mask];

	while (*p != n)
		p = &(*p)->next;
	*p = n->next;
	t->count--;
}

/* ---- lookups shared with presets.c and dump.c ---- */

struct vmres__pool *vmres__sysalloc_pool(const struct vmres_sysalloc *sa, const char *name)
{
	if (strnlen(name, VMRES_POOL_NAME_MAX) == VMRES_POOL_NAME_MAX)
		return NULL;
	for (uint32_t i = 0; i < sa->n_pools; i++)
		if (strcmp(sa->pools[i]->name, name) == 0)
			return sa->pools[i];
	return NULL;
}

int vmres__sysalloc_pool_arg(const struct vmres_sysalloc *sa, const char *name,
			     struct vmres__pool **out)
{
	/* One too long to be a pool's name is no pool's, as it always was. */
	if (strnlen(name, VMRES_POOL_NAME_MAX) < VMRES_POOL_NAME_MAX &&
	    !vmres__name_valid(name, VMRES_POOL_NAME_MAX))
		return VMRES_EINVAL;
	*out = vmres__sysalloc_pool(sa, name);
	return *out ? 0 : VMRES_EPOOL;
}

struct vmres__rec *vmres__sysalloc_rec(const struct vmres_sysalloc *sa, const struct vmres__pool *p,
				       uint64_t key)
{
	struct vmres__hnode *n = htab_find(&sa->recs, p->index, key, 0);

	return n ? (struct vmres__rec *)n : NULL;
}

struct vmres__line *vmres__sysalloc_line(const struct vmres__pool *p, uint64_t number)
{
	return (struct vmres__line *)htab_find(&p->lines, 0, number, 0);
}

/* The record of @p owner's share of @p line: the one it joined last (the
 * table keeps equal keys most recent first, htab_grow() included). */
static struct vmres__rec *sharer_rec(const struct vmres_sysalloc *sa, const struct vmres__pool *p,
				     const struct vmres__line *line, uint64_t owner)
{
	return (struct vmres__rec *)htab_find(&sa->recs, p->index | VMRES__NS_SHARED,
					      line->node.key, owner);
}

struct vmres__owner *vmres__sysalloc_owner(const struct vmres_sysalloc *sa, uint64_t owner)
{
	struct vmres__hnode *n = htab_find(&sa->owners, 0, owner, 0);

	return n ? (struct vmres__owner *)n : NULL;
}

void vmres__sysalloc_info(const struct vmres__rec *r, struct vmres_sysalloc_alloc_info *out)
{
	const struct vmres__pool *p = r->pool;

	memset(out, 0, sizeof(*out));
	out->res.kind = p->kind;
	memcpy(out->res.pool, p->name, sizeof(out->res.pool));
	switch (p->kind) {
	case VMRES_RES_ADDR:
		out->res.u.addr.space = p->space;
		out->res.u.addr.base = r->node.key;
		out->res.u.addr.size = r->size;
		out->res.u.addr.align = r->align;
		break;
	case VMRES_RES_IRQ:
		out->res.u.irq.gsi = (uint32_t)r->node.key;
		out->res.u.irq.shared = r->line != NULL;
		break;
	case VMRES_RES_MSI:
		out->res.u.msi.gsi = (uint32_t)r->node.key;
		break;
	case VMRES_RES_ID:
		out->res.u.id.id = (uint32_t)r->node.key;
		break;
	}
	out->owner = r->owner->node.key;
	out->owner_name = r->owner->name[0] ? r->owner->name : NULL;
	out->label = r->label[0] ? r->label : NULL;
}

/* ---- construction ---- */

int vmres_sysalloc_new(struct vmres_sysalloc **out)
{
	struct vmres_sysalloc *sa;

	if (!out)
		return VMRES_EINVAL;
	sa = calloc(1, sizeof(*sa));
	if (!sa)
		return VMRES_ENOMEM;
	if (htab_init(&sa->recs) || htab_init(&sa->owners)) {
		free(sa->recs.buckets);
		free(sa);
		return VMRES_ENOMEM;
	}
	*out = sa;
	return 0;
}

static void free_chains(struct vmres__htab *t)
{
	for (size_t i = 0; t->buckets && i <= t->mask; i++) {
		struct vmres__hnode *n = t->buckets[i];

		while (n) {
			struct vmres__hnode *next = n->next;

			free(n); /* the node is the first member of a record or owner */
			n = next;
		}
	}
	free(t->buckets);
}

static void pool_free(struct vmres__pool *p)
{
	free_chains(&p->lines);
	free(p->heap);
	vmres_addr_free(p->addr);
	vmres_ids_free(p->ids);
	free(p);
}

void vmres_sysalloc_free(struct vmres_sysalloc *sa)
{
	if (!sa)
		return;
	free_chains(&sa->recs);
	free_chains(&sa->owners);
	for (uint32_t i = 0; i < sa->n_pools; i++)
		pool_free(sa->pools[i]);
	free(sa->pools);
	free(sa);
}

/* A pool or owner name: 1 to max - 1 bytes of vmres__name_valid() text. */
static int check_name(const char *name, size_t max)
{
	if (!name || !name[0] || !vmres__name_valid(name, max))
		return VMRES_EINVAL;
	return 0;
}

/* A label: NULL or "" for none, else as check_name(). */
static int check_label(const char *label)
{
	return label && label[0] ? check_name(label, VMRES_SYSALLOC_LABEL_MAX) : 0;
}

static bool gsi_kind(enum vmres_res_kind k)
{
	return k == VMRES_RES_IRQ || k == VMRES_RES_MSI;
}

/* Two pools may not hand out the same address or the same GSI. (A guest pool
 * spans its whole space: its ranges keep out of the others' windows instead.) */
static bool clashes(const struct vmres__pool *p, const struct vmres__pool *q)
{
	bool same_space =
		(p->kind == VMRES_RES_ADDR && q->kind == VMRES_RES_ADDR && p->space == q->space) ||
		(gsi_kind(p->kind) && gsi_kind(q->kind));

	return !p->guest && !q->guest && same_space &&
	       vmres__ranges_overlap(p->base, p->last, q->base, q->last);
}

/* Does an allocation of @p a meet [base, last]? */
static bool addr_taken(const struct vmres_addr *a, uint64_t base, uint64_t last)
{
	struct vmres_addr_entry e;

	return vmres_addr_find(a, base, &e) == 0 ||
	       (vmres_addr_next(a, base, &e) == 0 && e.base <= last);
}

/* Could @p np (new, or @p np resized to [base, last]) be a pool of @p sa?
 * VMRES_EOVERLAP if its window would meet another pool's, or a guest-placed
 * range. */
static int window_free(const struct vmres_sysalloc *sa, const struct vmres__pool *np, uint64_t base,
		       uint64_t last)
{
	struct vmres__pool probe = *np;

	probe.base = base;
	probe.last = last;
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		const struct vmres__pool *p = sa->pools[i];

		if (p == np)
			continue;
		if (clashes(p, &probe))
			return VMRES_EOVERLAP;
		if (p->guest && !np->guest && np->kind == VMRES_RES_ADDR && p->space == np->space &&
		    addr_taken(p->addr, base, last))
			return VMRES_EOVERLAP;
		if (p->guest && np->guest && p->space == np->space)
			return VMRES_EEXIST;
	}
	return 0;
}

static int add_pool(struct vmres_sysalloc *sa, struct vmres__pool *np)
{
	int ret;

	if (vmres__sysalloc_pool(sa, np->name))
		return VMRES_EEXIST;
	ret = window_free(sa, np, np->base, np->last);
	if (ret)
		return ret;
	if (sa->n_pools == sa->cap_pools) {
		uint32_t cap = sa->cap_pools ? sa->cap_pools * 2 : 8;
		struct vmres__pool **pools = realloc(sa->pools, cap * sizeof(*pools));

		if (!pools)
			return VMRES_ENOMEM;
		sa->pools = pools;
		sa->cap_pools = cap;
	}
	np->index = sa->n_pools;
	sa->pools[sa->n_pools++] = np;
	return 0;
}

/* Add @p p, whose allocator was made with result @p ret, to @p sa; free it on failure. */
static int add_pool_or_free(struct vmres_sysalloc *sa, struct vmres__pool *p, int ret)
{
	if (!ret)
		ret = add_pool(sa, p);
	if (ret)
		pool_free(p);
	return ret;
}

static struct vmres__pool *pool_template(const char *name, enum vmres_res_kind kind, uint64_t base,
					 uint64_t last)
{
	struct vmres__pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	strcpy(p->name, name);
	p->kind = kind;
	p->base = base;
	p->last = last;
	return p;
}

int vmres_sysalloc_add_addr_pool(struct vmres_sysalloc *sa, const char *name,
				 enum vmres_space space, uint64_t base, uint64_t last)
{
	struct vmres__pool *p;

	if (!sa || check_name(name, VMRES_POOL_NAME_MAX) || base > last)
		return VMRES_EINVAL;
	if (space != VMRES_SPACE_PIO && space != VMRES_SPACE_MMIO)
		return VMRES_EINVAL;
	if (space == VMRES_SPACE_PIO && last > 0xffff)
		return VMRES_ERANGE;
	p = pool_template(name, VMRES_RES_ADDR, base, last);
	if (!p)
		return VMRES_ENOMEM;
	p->space = space;
	return add_pool_or_free(sa, p, vmres_addr_new(base, last, &p->addr));
}

int vmres_sysalloc_add_guest_pool(struct vmres_sysalloc *sa, const char *name,
				  enum vmres_space space)
{
	uint64_t last = space == VMRES_SPACE_PIO ? 0xffff : UINT64_MAX;
	struct vmres__pool *p;

	if (!sa || check_name(name, VMRES_POOL_NAME_MAX))
		return VMRES_EINVAL;
	if (space != VMRES_SPACE_PIO && space != VMRES_SPACE_MMIO)
		return VMRES_EINVAL;
	p = pool_template(name, VMRES_RES_ADDR, 0, last);
	if (!p)
		return VMRES_ENOMEM;
	p->space = space;
	p->guest = true;
	return add_pool_or_free(sa, p, vmres_addr_new(0, last, &p->addr));
}

/* Re-key every record after pools were renumbered. */
static void rekey_records(struct vmres_sysalloc *sa)
{
	struct vmres__hnode *all = NULL;

	for (size_t b = 0; b <= sa->recs.mask; b++) {
		while (sa->recs.buckets[b]) {
			struct vmres__hnode *n = sa->recs.buckets[b];

			sa->recs.buckets[b] = n->next;
			n->next = all;
			all = n;
		}
	}
	sa->recs.count = 0;
	while (all) {
		struct vmres__hnode *n = all;
		struct vmres__rec *r = (struct vmres__rec *)n; /* node is the first member */

		all = n->next;
		n->ns = r->pool->index | (r->line ? VMRES__NS_SHARED : 0);
		htab_insert(&sa->recs, n);
	}
}

int vmres_sysalloc_remove_pool(struct vmres_sysalloc *sa, const char *name)
{
	struct vmres__pool *p;

	if (!sa || !name)
		return VMRES_EINVAL;
	p = vmres__sysalloc_pool(sa, name);
	if (!p)
		return VMRES_EPOOL;
	if (p->count)
		return VMRES_ESTATE;
	memmove(sa->pools + p->index, sa->pools + p->index + 1,
		(sa->n_pools - p->index - 1) * sizeof(*sa->pools));
	sa->n_pools--;
	for (uint32_t i = p->index; i < sa->n_pools; i++)
		sa->pools[i]->index = i;
	if (p->index < sa->n_pools)
		rekey_records(sa);
	pool_free(p);
	return 0;
}

struct rebuild {
	struct vmres_addr *to;
	int ret;
};

static int copy_alloc(void *ctx, const struct vmres_addr_entry *e)
{
	struct rebuild *rb = ctx;

	rb->ret = vmres_addr_reserve(rb->to, e->base, e->last - e->base + 1, e->owner);
	return rb->ret;
}

/* The lowest and highest address of a tree's allocations. */
struct bounds {
	uint64_t base, last;
};

static int bounds_of(void *ctx, const struct vmres_addr_entry *e)
{
	struct bounds *r = ctx;

	if (r->base > e->base)
		r->base = e->base;
	if (r->last < e->last)
		r->last = e->last;
	return 0;
}

int vmres_sysalloc_resize_pool(struct vmres_sysalloc *sa, const char *name, uint64_t base,
			       uint64_t last)
{
	struct bounds used = {UINT64_MAX, 0};
	struct rebuild rb = {NULL, 0};
	struct vmres__pool *p;
	int ret;

	if (!sa || !name || base > last)
		return VMRES_EINVAL;
	p = vmres__sysalloc_pool(sa, name);
	if (!p)
		return VMRES_EPOOL;
	if (p->kind != VMRES_RES_ADDR || p->guest)
		return VMRES_EKIND;
	if (p->space == VMRES_SPACE_PIO && last > 0xffff)
		return VMRES_ERANGE;
	(void)vmres_addr_foreach(p->addr, bounds_of, &used);
	if (p->count && (used.base < base || used.last > last))
		return VMRES_ESTATE;
	ret = window_free(sa, p, base, last);
	if (ret)
		return ret;
	/* A new tree for the new window, then the allocations again: all or nothing. */
	ret = vmres_addr_new(base, last, &rb.to);
	if (!ret)
		ret = vmres_addr_foreach(p->addr, copy_alloc, &rb) ? rb.ret : 0;
	if (ret) {
		vmres_addr_free(rb.to);
		return ret;
	}
	vmres_addr_free(p->addr);
	p->addr = rb.to;
	p->base = base;
	p->last = last;
	return 0;
}

int vmres_sysalloc_add_id_pool(struct vmres_sysalloc *sa, const char *name,
			       enum vmres_res_kind kind, uint32_t lo, uint32_t hi)
{
	struct vmres__pool *p;

	if (!sa || check_name(name, VMRES_POOL_NAME_MAX) || lo > hi)
		return VMRES_EINVAL;
	if (kind != VMRES_RES_IRQ && kind != VMRES_RES_MSI && kind != VMRES_RES_ID)
		return VMRES_EKIND;
	p = pool_template(name, kind, lo, hi);
	if (!p)
		return VMRES_ENOMEM;
	return add_pool_or_free(sa, p, vmres_ids_new(lo, hi, &p->ids));
}

/* ---- records and owners ---- */

static struct vmres__owner *owner_get(struct vmres_sysalloc *sa, uint64_t owner)
{
	struct vmres__owner *o = vmres__sysalloc_owner(sa, owner);

	if (o)
		return o;
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->node.key = owner;
	htab_insert(&sa->owners, &o->node);
	return o;
}

/* An owner with nothing allocated and no name is forgotten. */
static void owner_put(struct vmres_sysalloc *sa, struct vmres__owner *o)
{
	if (o->count || o->name[0])
		return;
	htab_remove(&sa->owners, &o->node);
	free(o);
}

static void rec_link(struct vmres_sysalloc *sa, struct vmres__rec *r, struct vmres__owner *o,
		     struct vmres__rec **txn)
{
	htab_insert(&sa->recs, &r->node);
	r->owner = o;
	r->o_prev = NULL;
	r->o_next = o->head;
	if (o->head)
		o->head->o_prev = r;
	o->head = r;
	o->count++;
	r->pool->count++;
	sa->n_recs++;
	r->txn = *txn;
	*txn = r;
}

static void rec_unlink(struct vmres_sysalloc *sa, struct vmres__rec *r)
{
	struct vmres__owner *o = r->owner;

	htab_remove(&sa->recs, &r->node);
	if (r->o_prev)
		r->o_prev->o_next = r->o_next;
	else
		o->head = r->o_next;
	if (r->o_next)
		r->o_next->o_prev = r->o_prev;
	o->count--;
	r->pool->count--;
	sa->n_recs--;
	owner_put(sa, o);
}

/* ---- shared lines: the heap of a pool's lines by (sharers, number) ---- */

static bool line_before(const struct vmres__line *a, const struct vmres__line *b)
{
	return a->sharers < b->sharers || (a->sharers == b->sharers && a->node.key < b->node.key);
}

static void heap_set(struct vmres__pool *p, uint32_t i, struct vmres__line *l)
{
	p->heap[i] = l;
	l->heap_pos = i;
}

static void heap_up(struct vmres__pool *p, uint32_t i)
{
	struct vmres__line *l = p->heap[i];

	while (i && line_before(l, p->heap[(i - 1) / 2])) {
		heap_set(p, i, p->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(p, i, l);
}

static void heap_down(struct vmres__pool *p, uint32_t i)
{
	struct vmres__line *l = p->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= p->n_heap)
			break;
		if (c + 1 < p->n_heap && line_before(p->heap[c + 1], p->heap[c]))
			c++;
		if (!line_before(p->heap[c], l))
			break;
		heap_set(p, i, p->heap[c]);
		i = c;
	}
	heap_set(p, i, l);
}

static void heap_remove(struct vmres__pool *p, struct vmres__line *l)
{
	uint32_t i = l->heap_pos;
	struct vmres__line *moved = p->heap[--p->n_heap];

	if (i == p->n_heap)
		return;
	heap_set(p, i, moved);
	heap_up(p, i);
	heap_down(p, moved->heap_pos);
}

/* A sharer leaves its line; the last one gives the number back. Cannot fail. */
static void line_leave(struct vmres__pool *p, struct vmres__rec *r)
{
	struct vmres__line *l = r->line;

	if (r->s_prev)
		r->s_prev->s_next = r->s_next;
	else
		l->first = r->s_next;
	if (r->s_next)
		r->s_next->s_prev = r->s_prev;
	else
		l->last = r->s_prev;
	p->n_shared--;
	if (--l->sharers) {
		heap_up(p, l->heap_pos);
		return;
	}
	heap_remove(p, l);
	htab_remove(&p->lines, &l->node);
	(void)vmres_ids_release(p->ids, (uint32_t)l->node.key);
	free(l);
}

/* Give a record's resource back to its pool and forget the record. */
static void rec_release(struct vmres_sysalloc *sa, struct vmres__rec *r)
{
	struct vmres__pool *p = r->pool;

	/* Cannot fail: the record proves the allocation exists. */
	if (r->line)
		line_leave(p, r);
	else if (p->kind == VMRES_RES_ADDR)
		(void)vmres_addr_release(p->addr, r->node.key, r->size, NULL);
	else
		(void)vmres_ids_release(p->ids, (uint32_t)r->node.key);
	rec_unlink(sa, r);
	free(r);
}

static struct vmres__rec *alloc_rec_new(struct vmres__pool *p)
{
	struct vmres__rec *r = calloc(1, sizeof(*r));

	if (r) {
		r->pool = p;
		r->node.ns = p->index;
		r->size = 1;
	}
	return r;
}

/* ---- allocation ---- */

struct txn {
	struct vmres_sysalloc *sa;
	struct vmres__owner *owner;
	struct vmres__rec *top; /* most recent record first */
};

static void txn_push(struct txn *t, struct vmres__rec *r, uint64_t key)
{
	r->node.key = key;
	rec_link(t->sa, r, t->owner, &t->top);
}

/* Does [base, last] meet the window of an ordinary address pool of @p space? */
static bool meets_windows(const struct vmres_sysalloc *sa, enum vmres_space space, uint64_t base,
			  uint64_t last)
{
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		const struct vmres__pool *p = sa->pools[i];

		if (p->kind == VMRES_RES_ADDR && !p->guest && p->space == space &&
		    vmres__ranges_overlap(base, last, p->base, p->last))
			return true;
	}
	return false;
}

static int alloc_addr(struct txn *t, struct vmres__pool *p, const struct vmres_request *q)
{
	struct vmres_addr_req req = q->u.addr.req;
	struct vmres__rec *r;
	uint64_t base;
	int ret;

	if (q->u.addr.space != p->space)
		return VMRES_EKIND;
	if (req.size == 0)
		return VMRES_ESIZE;
	if (p->guest) {
		/* Exactly what the guest or the VMM placed, outside every window. */
		if (req.policy != VMRES_ADDR_EXACT)
			return VMRES_EINVAL;
		if (vmres__range_wraps(req.addr, req.size))
			return VMRES_EOVERFLOW;
		if (meets_windows(t->sa, p->space, req.addr, vmres__range_last(req.addr, req.size)))
			return VMRES_ERANGE;
	}
	req.owner = t->owner->node.key;
	r = alloc_rec_new(p);
	if (!r)
		return VMRES_ENOMEM;
	ret = vmres_addr_alloc(p->addr, &req, &base);
	if (ret) {
		free(r);
		return ret;
	}
	r->size = req.size;
	r->align = req.align;
	txn_push(t, r, base);
	return 0;
}

static bool in_pool(const struct vmres__pool *p, uint64_t first, uint64_t count)
{
	return vmres__range_within(first, vmres__range_last(first, count), p->base, p->last);
}

/* One number: the lowest free one (any) or a specific one. */
static int alloc_number(struct txn *t, struct vmres__pool *p, bool any, uint32_t want)
{
	struct vmres__rec *r;
	uint32_t n = want;
	int ret;

	if (!any && !in_pool(p, want, 1))
		return VMRES_ERANGE;
	r = alloc_rec_new(p);
	if (!r)
		return VMRES_ENOMEM;
	ret = any ? vmres_ids_alloc(p->ids, &n) : vmres_ids_reserve(p->ids, want);
	if (ret) {
		free(r);
		return ret;
	}
	txn_push(t, r, n);
	return 0;
}

/* Room for one more line in @p p's heap and table (made at the first line). */
static int line_room(struct vmres__pool *p)
{
	if (!p->lines.buckets && htab_init(&p->lines))
		return VMRES_ENOMEM;
	if (p->n_heap == p->cap_heap) {
		uint32_t cap = p->cap_heap ? 2 * p->cap_heap : 8;
		struct vmres__line **heap = realloc(p->heap, cap * sizeof(*heap));

		if (!heap)
			return VMRES_ENOMEM;
		p->heap = heap;
		p->cap_heap = cap;
	}
	return 0;
}

/* Make @p number (just taken from the ids allocator) a line of @p p. */
static void line_add(struct vmres__pool *p, struct vmres__line *l, uint32_t number)
{
	l->node.key = number;
	htab_insert(&p->lines, &l->node);
	p->heap[p->n_heap] = l;
	l->heap_pos = p->n_heap++;
	heap_up(p, l->heap_pos);
}

/* @p r joins @p l as its last sharer. */
static void line_join(struct txn *t, struct vmres__pool *p, struct vmres__line *l,
		      struct vmres__rec *r)
{
	r->line = l;
	r->node.ns = p->index | VMRES__NS_SHARED;
	r->node.sub = t->owner->node.key;
	r->s_prev = l->last;
	if (l->last)
		l->last->s_next = r;
	else
		l->first = r;
	l->last = r;
	l->sharers++;
	p->n_shared++;
	heap_down(p, l->heap_pos);
	txn_push(t, r, l->node.key);
}

/*
 * A share of a legacy line: a free number becomes a new line; else (any) the
 * least-shared line, or (specific) the line at @p want. A number held by an
 * exclusive record is never joined, and a line is never handed out exclusively
 * (its number stays taken in the ids allocator).
 */
static int alloc_shared(struct txn *t, struct vmres__pool *p, bool any, uint32_t want)
{
	struct vmres__line *l = NULL, *nl = NULL;
	struct vmres__rec *r;
	uint32_t n = want;
	int ret;

	if (!any && !in_pool(p, want, 1))
		return VMRES_ERANGE;
	if (!any)
		l = vmres__sysalloc_line(p, want);
	r = alloc_rec_new(p);
	if (!r)
		return VMRES_ENOMEM;
	if (!l) {
		/* Everything a new line needs, before its number is taken. */
		ret = line_room(p);
		nl = ret ? NULL : calloc(1, sizeof(*nl));
		if (!nl) {
			free(r);
			return VMRES_ENOMEM;
		}
		ret = any ? vmres_ids_alloc(p->ids, &n) : vmres_ids_reserve(p->ids, want);
		if (ret == 0) {
			line_add(p, nl, n);
			l = nl;
		} else if (any && ret == VMRES_ENOSPC && p->n_heap) {
			free(nl);
			l = p->heap[0];
		} else {
			free(nl);
			free(r);
			return ret;
		}
	}
	line_join(t, p, l, r);
	return 0;
}

/* A block of count numbers taken from the ids allocator in one call. */
static int alloc_msi_block(struct txn *t, struct vmres__pool *p, const struct vmres_request *q)
{
	uint32_t count = q->u.msi.count;
	struct vmres__rec *recs = NULL, *r;
	uint32_t first = q->u.msi.gsi;
	int ret = 0;

	/* Records first: once the block is taken nothing may fail. */
	for (uint32_t i = 0; i < count; i++) {
		r = alloc_rec_new(p);
		if (!r) {
			ret = VMRES_ENOMEM;
			break;
		}
		r->txn = recs;
		recs = r;
	}
	if (!ret && q->u.msi.any)
		ret = vmres_ids_alloc_block(p->ids, count, &first);
	else if (!ret)
		ret = vmres_ids_reserve_block(p->ids, first, count);
	for (uint32_t i = 0; recs; i++) {
		r = recs;
		recs = r->txn;
		if (ret)
			free(r);
		else
			txn_push(t, r, (uint64_t)first + i);
	}
	return ret;
}

static int alloc_msi(struct txn *t, struct vmres__pool *p, const struct vmres_request *q)
{
	uint32_t count = q->u.msi.count;

	if (count == 0)
		return VMRES_ESIZE;
	if (q->u.msi.contiguous && !vmres__is_pow2(count))
		return VMRES_EALIGN;
	if (!q->u.msi.any && !in_pool(p, q->u.msi.gsi, count))
		return VMRES_ERANGE;
	if (!q->u.msi.any && q->u.msi.contiguous && q->u.msi.gsi % count)
		return VMRES_EMISALIGNED;
	if (q->u.msi.contiguous || !q->u.msi.any)
		return alloc_msi_block(t, p, q);
	/* Separate vectors: a failure part-way is undone with the whole call. */
	for (uint32_t i = 0; i < count; i++) {
		int ret = alloc_number(t, p, true, 0);

		if (ret)
			return ret;
	}
	return 0;
}

static int alloc_one(struct txn *t, const struct vmres_request *q)
{
	struct vmres__pool *p;
	int ret;

	if (q->kind < VMRES_RES_ADDR || q->kind > VMRES_RES_ID)
		return VMRES_EINVAL;
	ret = vmres__sysalloc_pool_arg(t->sa, q->pool, &p);
	if (ret)
		return ret;
	if (p->kind != q->kind)
		return VMRES_EKIND;
	switch (q->kind) {
	case VMRES_RES_ADDR:
		return alloc_addr(t, p, q);
	case VMRES_RES_IRQ:
		if (q->u.irq.shared)
			return alloc_shared(t, p, q->u.irq.any, q->u.irq.gsi);
		return alloc_number(t, p, q->u.irq.any, q->u.irq.gsi);
	case VMRES_RES_MSI:
		return alloc_msi(t, p, q);
	case VMRES_RES_ID:
		return alloc_number(t, p, q->u.id.any, q->u.id.id);
	}
	return VMRES_EINVAL;
}

static uint64_t resources_of(const struct vmres_request *q)
{
	return q->kind == VMRES_RES_MSI ? q->u.msi.count : 1;
}

int vmres_sysalloc_alloc(struct vmres_sysalloc *sa, const struct vmres_request *reqs, size_t n_reqs,
			 uint64_t owner, struct vmres_resource *out, size_t out_cap, size_t *n_out,
			 struct vmres_sysalloc_error *err)
{
	struct txn t = {sa, NULL, NULL};
	uint64_t total = 0;
	size_t i;
	int ret = 0;

	if (!sa || !n_out || (n_reqs && (!reqs || !out)))
		return VMRES_EINVAL;
	for (i = 0; i < n_reqs; i++) {
		total += resources_of(&reqs[i]);
		if (total > out_cap) {
			if (err)
				*err = (struct vmres_sysalloc_error){VMRES_EFULL, i};
			return VMRES_EFULL;
		}
	}
	if (n_reqs == 0) {
		*n_out = 0;
		return 0;
	}
	t.owner = owner_get(sa, owner);
	if (!t.owner) {
		if (err)
			*err = (struct vmres_sysalloc_error){VMRES_ENOMEM, 0};
		return VMRES_ENOMEM;
	}
	t.owner->count++; /* pin: rollback must not free it under us */
	for (i = 0; i < n_reqs && !ret; i++)
		ret = alloc_one(&t, &reqs[i]);
	while (ret && t.top) {
		struct vmres__rec *r = t.top;

		t.top = r->txn;
		rec_release(sa, r);
	}
	t.owner->count--;
	if (ret) {
		owner_put(sa, t.owner);
		if (err)
			*err = (struct vmres_sysalloc_error){ret, i - 1};
		return ret;
	}
	for (size_t j = total; t.top; j--) {
		struct vmres_sysalloc_alloc_info info;

		vmres__sysalloc_info(t.top, &info);
		out[j - 1] = info.res;
		t.top = t.top->txn;
	}
	*n_out = (size_t)total;
	return 0;
}

/* ---- release ---- */

static uint64_t resource_key(const struct vmres_resource *r)
{
	switch (r->kind) {
	case VMRES_RES_ADDR:
		return r->u.addr.base;
	case VMRES_RES_IRQ:
		return r->u.irq.gsi;
	case VMRES_RES_MSI:
		return r->u.msi.gsi;
	case VMRES_RES_ID:
		return r->u.id.id;
	}
	return 0;
}

/* The record of a resource handed out to owner, or the reason there is none. */
static int find_owned(const struct vmres_sysalloc *sa, const struct vmres_resource *r,
		      uint64_t owner, struct vmres__rec **out)
{
	struct vmres__line *line;
	struct vmres__pool *p;
	struct vmres__rec *rec;
	int ret = vmres__sysalloc_pool_arg(sa, r->pool, &p);

	if (ret)
		return ret;
	if (p->kind != r->kind || (p->kind == VMRES_RES_ADDR && p->space != r->u.addr.space))
		return VMRES_EKIND;
	line = p->kind == VMRES_RES_IRQ ? vmres__sysalloc_line(p, resource_key(r)) : NULL;
	if (line) {
		/* A shared line: the owner's own share, not the first sharer's. */
		rec = sharer_rec(sa, p, line, owner);
		if (!rec)
			return VMRES_EOWNER;
		*out = rec;
		return 0;
	}
	rec = vmres__sysalloc_rec(sa, p, resource_key(r));
	if (!rec || (p->kind == VMRES_RES_ADDR && rec->size != r->u.addr.size))
		return VMRES_ENOENT;
	if (rec->owner->node.key != owner)
		return VMRES_EOWNER;
	*out = rec;
	return 0;
}

int vmres_sysalloc_release(struct vmres_sysalloc *sa, const struct vmres_resource *r,
			   uint64_t owner)
{
	struct vmres__rec *rec;
	int ret;

	if (!sa || !r)
		return VMRES_EINVAL;
	ret = find_owned(sa, r, owner, &rec);
	if (ret)
		return ret;
	rec_release(sa, rec);
	return 0;
}

/* ---- moves ---- */

struct vmres__pool *vmres__sysalloc_pool_holding(const struct vmres_sysalloc *sa,
						 enum vmres_space space, uint64_t base,
						 uint64_t last)
{
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		struct vmres__pool *p = sa->pools[i];

		if (p->kind == VMRES_RES_ADDR && !p->guest && p->space == space &&
		    vmres__range_within(base, last, p->base, p->last))
			return p;
	}
	return NULL;
}

/* The guest pool of @p space, or NULL. */
static struct vmres__pool *guest_pool(const struct vmres_sysalloc *sa, enum vmres_space space)
{
	for (uint32_t i = 0; i < sa->n_pools; i++)
		if (sa->pools[i]->guest && sa->pools[i]->space == space)
			return sa->pools[i];
	return NULL;
}

int vmres_sysalloc_move_prepare(struct vmres_sysalloc *sa, const struct vmres_resource *r,
				uint64_t owner, uint64_t new_base, unsigned int flags,
				struct vmres_sysalloc_move *mv)
{
	struct vmres_sysalloc_move m = {.priv_base = new_base};
	uint64_t size, align, last;
	struct vmres__pool *dst;
	struct vmres__rec *rec = NULL;
	int ret;

	if (!sa || !r || !mv || r->kind != VMRES_RES_ADDR || (flags & ~VMRES_SYSALLOC_MOVE_GUEST))
		return VMRES_EINVAL;
	size = r->u.addr.size;
	if (size == 0)
		return VMRES_ESIZE;
	if (vmres__range_wraps(new_base, size))
		return VMRES_EOVERFLOW;
	last = vmres__range_last(new_base, size);
	m.priv_held = find_owned(sa, r, owner, &rec) == 0;
	align = m.priv_held ? rec->align : r->u.addr.align;
	if (m.priv_held && new_base == rec->node.key) {
		m.priv_rec = rec;
		m.priv_pool = rec->pool;
		*mv = m;
		return 0;
	}
	/* Its own pool if it holds the new range, else the pool that does, else
	 * (if the caller follows the guest) the guest pool, outside every window. */
	if (m.priv_held && !rec->pool->guest && new_base >= rec->pool->base &&
	    last <= rec->pool->last)
		dst = rec->pool;
	else
		dst = vmres__sysalloc_pool_holding(sa, r->u.addr.space, new_base, last);
	if (!dst && (flags & VMRES_SYSALLOC_MOVE_GUEST) &&
	    !meets_windows(sa, r->u.addr.space, new_base, last))
		dst = guest_pool(sa, r->u.addr.space);
	if (!dst)
		return VMRES_ERANGE;
	if (align > 1 && new_base % align)
		return VMRES_EMISALIGNED;
	if (m.priv_held && dst == rec->pool)
		ret = vmres_addr_move_check(dst->addr, rec->node.key, size, new_base);
	else
		ret = vmres_addr_reserve_check(dst->addr, new_base, size);
	if (ret)
		return ret;
	if (!m.priv_held) {
		/* A new record, and the owner it joins, are made now. */
		rec = alloc_rec_new(dst);
		m.priv_owner = rec ? owner_get(sa, owner) : NULL;
		if (!m.priv_owner) {
			free(rec);
			return VMRES_ENOMEM;
		}
		rec->size = size;
		rec->align = align;
	}
	m.priv_rec = rec;
	m.priv_pool = dst;
	*mv = m;
	return 0;
}

void vmres_sysalloc_move_commit(struct vmres_sysalloc *sa, struct vmres_sysalloc_move *mv,
				struct vmres_resource *out)
{
	struct vmres__rec *r = mv->priv_rec, *top = NULL;
	struct vmres__pool *dst = mv->priv_pool;
	uint64_t owner;

	/* None of these can fail: prepare checked the ranges and set the memory aside. */
	if (!mv->priv_held) {
		(void)vmres_addr_reserve(dst->addr, mv->priv_base, r->size,
					 ((struct vmres__owner *)mv->priv_owner)->node.key);
		r->node.key = mv->priv_base;
		rec_link(sa, r, mv->priv_owner, &top);
	} else if (r->node.key != mv->priv_base) {
		owner = r->owner->node.key;
		htab_remove(&sa->recs, &r->node);
		if (dst == r->pool) {
			(void)vmres_addr_move(dst->addr, r->node.key, r->size, mv->priv_base);
		} else {
			(void)vmres_addr_reserve(dst->addr, mv->priv_base, r->size, owner);
			(void)vmres_addr_release(r->pool->addr, r->node.key, r->size, NULL);
			r->pool->count--;
			dst->count++;
			r->pool = dst;
			r->node.ns = dst->index;
		}
		r->node.key = mv->priv_base;
		htab_insert(&sa->recs, &r->node);
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		out->kind = VMRES_RES_ADDR;
		strcpy(out->pool, dst->name);
		out->u.addr.space = dst->space;
		out->u.addr.base = mv->priv_base;
		out->u.addr.size = r->size;
		out->u.addr.align = r->align;
	}
	memset(mv, 0, sizeof(*mv));
}

void vmres_sysalloc_move_abort(struct vmres_sysalloc *sa, struct vmres_sysalloc_move *mv)
{
	if (!mv->priv_held) {
		free(mv->priv_rec);
		owner_put(sa, mv->priv_owner);
	}
	memset(mv, 0, sizeof(*mv));
}

int vmres_sysalloc_release_owner(struct vmres_sysalloc *sa, uint64_t owner)
{
	struct vmres__owner *o;
	struct vmres__rec *r;

	if (!sa)
		return VMRES_EINVAL;
	o = vmres__sysalloc_owner(sa, owner);
	if (!o)
		return 0;
	/* The last release may free o (if unnamed); r->o_next is read first. */
	r = o->head;
	while (r) {
		struct vmres__rec *next = r->o_next;

		rec_release(sa, r);
		r = next;
	}
	return 0;
}

int vmres_sysalloc_set_owner_name(struct vmres_sysalloc *sa, uint64_t owner, const char *name)
{
	struct vmres__owner *o;

	if (!sa || (name && check_name(name, VMRES_SYSALLOC_LABEL_MAX)))
		return VMRES_EINVAL;
	if (!name) {
		o = vmres__sysalloc_owner(sa, owner);
		if (o) {
			o->name[0] = '\0';
			owner_put(sa, o);
		}
		return 0;
	}
	o = owner_get(sa, owner);
	if (!o)
		return VMRES_ENOMEM;
	strcpy(o->name, name);
	return 0;
}

int vmres_sysalloc_set_label(struct vmres_sysalloc *sa, const struct vmres_resource *r,
			     uint64_t owner, const char *label)
{
	struct vmres__rec *rec;
	int ret;

	if (!sa || !r || check_label(label))
		return VMRES_EINVAL;
	ret = find_owned(sa, r, owner, &rec);
	if (ret)
		return ret;
	strcpy(rec->label, label ? label : "");
	return 0;
}

int vmres_sysalloc_reserve(struct vmres_sysalloc *sa, const char *pool, uint64_t base,
			   uint64_t size, uint64_t align, uint64_t owner, const char *label,
			   struct vmres_resource *out)
{
	struct vmres_request q = {0};
	struct vmres_resource res;
	struct vmres__pool *p;
	size_t n;
	int ret;

	if (!sa || !pool || check_label(label))
		return VMRES_EINVAL;
	ret = vmres__sysalloc_pool_arg(sa, pool, &p);
	if (ret)
		return ret;
	if (p->kind != VMRES_RES_ADDR && base > UINT32_MAX)
		return VMRES_ERANGE;
	q.kind = p->kind;
	strcpy(q.pool, p->name);
	switch (p->kind) {
	case VMRES_RES_ADDR:
		q.u.addr.space = p->space;
		q.u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
		q.u.addr.req.policy = VMRES_ADDR_EXACT;
		q.u.addr.req.addr = base;
		q.u.addr.req.size = size;
		q.u.addr.req.align = align;
		break;
	case VMRES_RES_IRQ:
		q.u.irq.gsi = (uint32_t)base;
		break;
	case VMRES_RES_MSI:
		q.u.msi.gsi = (uint32_t)base;
		q.u.msi.count = 1;
		break;
	case VMRES_RES_ID:
		q.u.id.id = (uint32_t)base;
		break;
	}
	ret = vmres_sysalloc_alloc(sa, &q, 1, owner, &res, 1, &n, NULL);
	if (ret)
		return ret;
	/* Cannot fail: the label was checked and the resource was just taken. */
	vmres_sysalloc_set_label(sa, &res, owner, label);
	if (out)
		*out = res;
	return 0;
}
