/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BAR-tied resources (kvmres.h): the record of notify regions and memory per
 * address resource, and the device manager's listener that moves them.
 *
 * Everything here changes under the device manager's writer lock: the API
 * calls take it through vmres__devmgr_locked(), the listener is called with
 * it held. So a record never sees a guest-driven change half made, and this
 * file needs no lock of its own.
 *
 * The record of a resource (struct kvm_bar) holds its placement as last committed
 * (base, mapped), its regions and its memory. A transaction in flight is
 * described by the listener's from/to placements plus bar->tx (which way
 * prepare went) and bar->new_slot; commit and abort finish from those.
 */
#include "common_int.h"
#include "devmgr_int.h"
#include "kvmres_int.h"
#include "util/bits.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/ids.h>
#include <vmres/kvmres.h>
#include <vmres/sysalloc.h>

struct vmres_kvmres_backend {
	const struct vmres_kvmres_backend_ops *ops;
	void *ctx;
};

/* How prepare made a change of a mapped placement. */
enum tx {
	TX_NONE,    /* nothing to finish */
	TX_BOTH,    /* the new placement beside the old: commit takes the old down */
	TX_REPLACE, /* the old taken down first (overlapping move, unmap) */
	TX_UP,	    /* map: the new placement only */
};

struct kvm_bar {
	struct vmres_kvmres *k;
	struct kvm_bar *next;
	uint32_t instance;
	unsigned int res_index;
	enum vmres_space space;
	uint64_t base, size;
	bool mapped;
	struct vmres_kvmres_notify *regions;
	size_t n_regions;
	/* memory */
	void *host;
	bool readonly;
	bool has_mem;
	uint32_t slot;
	/* the transaction in flight */
	enum tx tx;
	uint32_t new_slot;
};

struct vmres_kvmres {
	struct vmres_devmgr *m;
	struct vmres_kvmres_backend *be;
	struct kvm_bar *bars; /* in the order they were added */
	char slot_pool[VMRES_POOL_NAME_MAX];
	uint64_t slot_owner;
	struct vmres_ids *slots; /* without a pool; NULL: no numbers */
	uint64_t undo_failures;
	uint64_t pending; /* notify tables waiting for a grace period (atomic) */
};

static const struct vmres_devmgr_listener listener;

/* ---- backends ---- */

int vmres_kvmres_backend_new(const struct vmres_kvmres_backend_ops *ops, void *ctx,
			     struct vmres_kvmres_backend **out)
{
	struct vmres_kvmres_backend *be;

	if (!ops || !out)
		return VMRES_EINVAL;
	if (ops->version != VMRES_KVMRES_BACKEND_OPS_VERSION)
		return VMRES_EVERSION;
	if (!ops->notify_assign != !ops->notify_deassign || !ops->mem_map != !ops->mem_unmap)
		return VMRES_EINVAL;
	be = malloc(sizeof(*be));
	if (!be)
		return VMRES_ENOMEM;
	be->ops = ops;
	be->ctx = ctx;
	*out = be;
	return 0;
}

void vmres_kvmres_backend_free(struct vmres_kvmres_backend *be)
{
	if (!be)
		return;
	if (be->ops->destroy)
		be->ops->destroy(be->ctx);
	free(be);
}

/* ---- slot numbers ---- */

static int slot_take(struct vmres_kvmres *k, uint32_t *slot)
{
	struct vmres_request q;
	struct vmres_resource r;
	size_t n;
	int rc;

	if (k->slots) {
		rc = vmres_ids_alloc(k->slots, slot);
		return rc == VMRES_EFULL ? VMRES_ENOSPC : rc;
	}
	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_ID;
	memcpy(q.pool, k->slot_pool, sizeof(q.pool));
	q.u.id.any = true;
	rc = vmres_sysalloc_alloc(vmres__devmgr_sysalloc(k->m), &q, 1, k->slot_owner, &r, 1, &n,
				  NULL);
	if (rc == 0)
		*slot = r.u.id.id;
	return rc;
}

static bool slot_in_use(const struct vmres_kvmres *k, uint32_t slot)
{
	for (const struct kvm_bar *b = k->bars; b; b = b->next)
		if (b->has_mem && b->slot == slot)
			return true;
	return false;
}

/* Take number @p slot: free, or held in the pool for our owner by nobody here. */
static int slot_adopt(struct vmres_kvmres *k, uint32_t slot)
{
	struct vmres_sysalloc *sa = vmres__devmgr_sysalloc(k->m);
	struct vmres_sysalloc_alloc_info a;
	int rc;

	if (k->slots) {
		rc = vmres_ids_reserve(k->slots, slot);
		return rc == VMRES_EOVERLAP || rc == VMRES_EEXIST ? VMRES_EEXIST : rc;
	}
	if (slot_in_use(k, slot))
		return VMRES_EEXIST;
	rc = vmres_sysalloc_reserve(sa, k->slot_pool, slot, 1, 0, k->slot_owner, NULL, NULL);
	if (rc != VMRES_EOVERLAP)
		return rc;
	rc = vmres_sysalloc_find(sa, k->slot_pool, slot, &a);
	return rc == 0 && a.owner == k->slot_owner ? 0 : VMRES_EEXIST;
}

static void slot_give(struct vmres_kvmres *k, uint32_t slot)
{
	struct vmres_resource r;

	if (k->slots) {
		(void)vmres_ids_release(k->slots, slot);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_ID;
	memcpy(r.pool, k->slot_pool, sizeof(r.pool));
	r.u.id.id = slot;
	(void)vmres_sysalloc_release(vmres__devmgr_sysalloc(k->m), &r, k->slot_owner);
}

/* ---- what one placement installs ---- */

static struct vmres_kvmres_ioevent ioevent(const struct kvm_bar *b, const struct vmres_kvmres_notify *n,
					   uint64_t base)
{
	return (struct vmres_kvmres_ioevent){.space = b->space,
					     .addr = base + n->offset,
					     .len = n->len,
					     .match = n->match,
					     .data = n->data,
					     .fd = n->fd};
}

static struct vmres_kvmres_mem_map mem_map(const struct kvm_bar *b, uint32_t slot, uint64_t base)
{
	return (struct vmres_kvmres_mem_map){.slot = slot,
					     .gpa = base,
					     .size = b->size,
					     .host = b->host,
					     .readonly = b->readonly};
}

static int notify_set(struct kvm_bar *b, const struct vmres_kvmres_notify *n, uint64_t base, bool up)
{
	const struct vmres_kvmres_backend *be = b->k->be;
	struct vmres_kvmres_ioevent ev = ioevent(b, n, base);

	if (!be->ops->notify_assign)
		return 0;
	return up ? be->ops->notify_assign(be->ctx, &ev) : be->ops->notify_deassign(be->ctx, &ev);
}

static int mem_set(struct kvm_bar *b, uint32_t slot, uint64_t base, bool up)
{
	const struct vmres_kvmres_backend *be = b->k->be;
	struct vmres_kvmres_mem_map mm = mem_map(b, slot, base);

	if (!b->has_mem)
		return 0;
	return up ? be->ops->mem_map(be->ctx, &mm) : be->ops->mem_unmap(be->ctx, &mm);
}

/* An undo step that must not fail: count it if it does. */
static void undo(struct kvm_bar *b, int rc)
{
	if (rc)
		b->k->undo_failures++;
}

/*
 * Put every region and the memory up (or take them down) at @p base, with
 * slot @p slot: all or nothing (a step that fails undoes the ones before it).
 */
static int placement_set(struct kvm_bar *b, uint64_t base, uint32_t slot, bool up)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < b->n_regions && rc == 0; i++)
		rc = notify_set(b, &b->regions[i], base, up);
	if (rc) {
		i--;
	} else {
		rc = mem_set(b, slot, base, up);
		if (rc == 0)
			return 0;
	}
	while (i-- > 0)
		undo(b, notify_set(b, &b->regions[i], base, !up));
	return rc;
}

/* ---- the listener ---- */

static int bar_prepare(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to)
{
	struct kvm_bar *b = ctx;
	int rc;

	(void)instance;
	(void)res_index;
	b->tx = TX_NONE;
	if (!from->mapped && !to->mapped)
		return 0;
	if (!from->mapped) {
		rc = placement_set(b, to->base, b->slot, true);
		b->tx = rc ? TX_NONE : TX_UP;
		return rc;
	}
	if (!to->mapped || vmres__ranges_overlap(from->base, vmres__range_last(from->base, b->size), to->base,
							vmres__range_last(to->base, b->size))) {
		/* Down first; for an overlapping move, up again at the new base with
		 * the same slot number. */
		rc = placement_set(b, from->base, b->slot, false);
		if (rc == 0 && to->mapped) {
			rc = placement_set(b, to->base, b->slot, true);
			if (rc)
				undo(b, placement_set(b, from->base, b->slot, true));
		}
		b->tx = rc ? TX_NONE : TX_REPLACE;
		return rc;
	}
	b->new_slot = b->slot;
	if (b->has_mem) {
		rc = slot_take(b->k, &b->new_slot);
		if (rc)
			return rc;
	}
	rc = placement_set(b, to->base, b->new_slot, true);
	if (rc && b->has_mem)
		slot_give(b->k, b->new_slot);
	b->tx = rc ? TX_NONE : TX_BOTH;
	return rc;
}

static void bar_commit(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to)
{
	struct kvm_bar *b = ctx;

	(void)instance;
	(void)res_index;
	if (b->tx == TX_BOTH) {
		for (size_t i = 0; i < b->n_regions; i++)
			undo(b, notify_set(b, &b->regions[i], from->base, false));
		if (b->has_mem) {
			undo(b, mem_set(b, b->slot, from->base, false));
			slot_give(b->k, b->slot);
			b->slot = b->new_slot;
		}
	}
	b->tx = TX_NONE;
	b->base = to->base;
	b->mapped = to->mapped;
}

static void bar_abort(void *ctx, uint32_t instance, unsigned int res_index,
		      const struct vmres_devmgr_placement *from,
		      const struct vmres_devmgr_placement *to)
{
	struct kvm_bar *b = ctx;

	(void)instance;
	(void)res_index;
	switch (b->tx) {
	case TX_BOTH:
		undo(b, placement_set(b, to->base, b->new_slot, false));
		if (b->has_mem)
			slot_give(b->k, b->new_slot);
		break;
	case TX_UP:
		undo(b, placement_set(b, to->base, b->slot, false));
		break;
	case TX_REPLACE:
		if (to->mapped)
			undo(b, placement_set(b, to->base, b->slot, false));
		undo(b, placement_set(b, from->base, b->slot, true));
		break;
	case TX_NONE:
		break;
	}
	b->tx = TX_NONE;
}

static const struct vmres_devmgr_listener listener = {
	.version = VMRES_DEVMGR_LISTENER_VERSION,
	.prepare = bar_prepare,
	.commit = bar_commit,
	.abort = bar_abort,
};

/* ---- records ---- */

static struct kvm_bar *bar_find(const struct vmres_kvmres *k, uint32_t instance, unsigned int res_index)
{
	for (struct kvm_bar *b = k->bars; b; b = b->next)
		if (b->instance == instance && b->res_index == res_index)
			return b;
	return NULL;
}

/*
 * The record of the resource, made (and the listener installed) if it has
 * none; *@p made says whether it was, for bar_drop_if_empty() on failure.
 */
static int bar_get(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index,
		   struct kvm_bar **out, bool *made)
{
	const struct vmres_devmgr_listener *l;
	struct vmres_resource r;
	struct kvm_bar *b, **p;
	bool mapped;
	void *ctx;
	int rc;

	*made = false;
	rc = vmres__devmgr_range_locked(k->m, instance, res_index, &r, &mapped, &l, &ctx);
	if (rc)
		return rc;
	b = bar_find(k, instance, res_index);
	if (b) {
		*out = b;
		return 0;
	}
	if (l)
		return VMRES_ESTATE;
	b = calloc(1, sizeof(*b));
	if (!b)
		return VMRES_ENOMEM;
	*b = (struct kvm_bar){.k = k,
			  .instance = instance,
			  .res_index = res_index,
			  .space = r.u.addr.space,
			  .base = r.u.addr.base,
			  .size = r.u.addr.size,
			  .mapped = mapped};
	rc = vmres__devmgr_set_listener_locked(k->m, instance, res_index, &listener, b);
	if (rc) {
		free(b);
		return rc;
	}
	for (p = &k->bars; *p; p = &(*p)->next)
		;
	*p = b;
	*out = b;
	*made = true;
	return 0;
}

/* Forget @p b if it serves nothing (and its device still has our listener). */
static void bar_drop_if_empty(struct vmres_kvmres *k, struct kvm_bar *b)
{
	struct kvm_bar **p;

	if (b->n_regions || b->has_mem)
		return;
	(void)vmres__devmgr_set_listener_locked(k->m, b->instance, b->res_index, NULL, NULL);
	for (p = &k->bars; *p != b; p = &(*p)->next)
		;
	*p = b->next;
	free(b->regions);
	free(b);
}

static void tab_free_cb(struct rcu_head *head)
{
	struct vmres__notify_tab *t = caa_container_of(head, struct vmres__notify_tab, rcu);
	uint64_t *pending;

	vmres__tsan_acquire();
	memcpy(&pending, &t->e[t->n], sizeof(pending));
	free(t);
	__atomic_fetch_sub(pending, 1, __ATOMIC_RELEASE);
}

/* Free @p t once no dispatch can be reading it. The counter's address rides
 * behind the entries, so that the callback needs nothing else. */
static void tab_retire(struct vmres_kvmres *k, struct vmres__notify_tab *t)
{
	bool here;

	if (!t)
		return;
	here = vmres__rcu_enter();
	__atomic_fetch_add(&k->pending, 1, __ATOMIC_RELAXED);
	vmres__call_rcu(&t->rcu, tab_free_cb);
	vmres__rcu_leave(here);
}

/* The bus's table of @p regions (NULL for none); *@p out NULL on ENOMEM. */
static int tab_new(struct vmres_kvmres *k, const struct vmres_kvmres_notify *regions, size_t n,
		   struct vmres__notify_tab **out)
{
	struct vmres__notify_tab *t;
	uint64_t *pending = &k->pending;

	*out = NULL;
	if (!n)
		return 0;
	t = malloc(sizeof(*t) + n * sizeof(t->e[0]) + sizeof(pending));
	if (!t)
		return VMRES_ENOMEM;
	t->n = n;
	for (size_t i = 0; i < n; i++)
		t->e[i] = (struct vmres__notify){.offset = regions[i].offset,
						 .data = regions[i].data,
						 .len = regions[i].len,
						 .match = regions[i].match,
						 .fd = regions[i].fd};
	memcpy(&t->e[n], &pending, sizeof(pending));
	*out = t;
	return 0;
}

/* ---- notify regions ---- */

static bool notify_same(const struct vmres_kvmres_notify *a, const struct vmres_kvmres_notify *b)
{
	return a->instance == b->instance && a->res_index == b->res_index &&
	       a->offset == b->offset && a->len == b->len && a->match == b->match &&
	       (!a->match || a->data == b->data) && a->fd == b->fd;
}

/* KVM's collision rule (ioeventfd_check_collision()). */
static bool notify_collide(const struct vmres_kvmres_notify *a, const struct vmres_kvmres_notify *b)
{
	if (a->offset != b->offset)
		return false;
	if (!a->len || !b->len)
		return true;
	return a->len == b->len && (!a->match || !b->match || a->data == b->data);
}

static int notify_check(const struct vmres_kvmres_notify *n)
{
	if (n->len != 0 && n->len != 1 && n->len != 2 && n->len != 4 && n->len != 8)
		return VMRES_EINVAL;
	if (n->match && (!n->len || (n->len < 8 && n->data >> (8 * n->len))))
		return VMRES_EINVAL;
	return n->fd < 0 ? VMRES_EINVAL : 0;
}

struct notify_call {
	struct vmres_kvmres *k;
	const struct vmres_kvmres_notify *n;
};

static int notify_add_locked(struct vmres_devmgr *m, void *arg)
{
	struct notify_call *c = arg;
	struct vmres_kvmres *k = c->k;
	struct vmres_kvmres_notify n = *c->n, *regions;
	struct vmres__notify_tab *tab;
	struct kvm_bar *b;
	bool made;
	int rc;

	rc = bar_get(k, n.instance, n.res_index, &b, &made);
	if (rc)
		return rc;
	if (n.offset >= b->size || (n.len > 1 && b->size - n.offset < n.len))
		rc = VMRES_ERANGE;
	for (size_t i = 0; rc == 0 && i < b->n_regions; i++)
		if (notify_collide(&b->regions[i], &n))
			rc = VMRES_EEXIST;
	if (!n.match)
		n.data = 0;
	regions = rc ? NULL : realloc(b->regions, (b->n_regions + 1) * sizeof(*regions));
	if (!rc && !regions)
		rc = VMRES_ENOMEM;
	if (regions) {
		b->regions = regions;
		regions[b->n_regions] = n;
	}
	if (!rc)
		rc = tab_new(k, regions, b->n_regions + 1, &tab);
	if (!rc) {
		rc = vmres__devmgr_notify_slot_locked(m, n.instance, n.res_index);
		if (!rc && b->mapped)
			rc = notify_set(b, &n, b->base, true);
		if (rc)
			free(tab);
	}
	if (rc) {
		if (made)
			bar_drop_if_empty(k, b);
		return rc;
	}
	b->n_regions++;
	tab_retire(k, vmres__devmgr_swap_notify_locked(m, n.instance, n.res_index, tab));
	return 0;
}

int vmres_kvmres_notify_add(struct vmres_kvmres *k, const struct vmres_kvmres_notify *n)
{
	struct notify_call c = {k, n};
	int rc;

	if (!k || !n)
		return VMRES_EINVAL;
	rc = notify_check(n);
	return rc ? rc : vmres__devmgr_locked(k->m, notify_add_locked, &c);
}

static int notify_remove_locked(struct vmres_devmgr *m, void *arg)
{
	struct notify_call *c = arg;
	struct vmres_kvmres *k = c->k;
	struct kvm_bar *b = bar_find(k, c->n->instance, c->n->res_index);
	struct vmres__notify_tab *tab;
	size_t i = 0;
	int rc;

	while (b && i < b->n_regions && !notify_same(&b->regions[i], c->n))
		i++;
	if (!b || i == b->n_regions)
		return VMRES_ENOENT;
	/* The table without region i: built before anything changes. */
	b->n_regions--;
	{
		struct vmres_kvmres_notify gone = b->regions[i];

		memmove(&b->regions[i], &b->regions[i + 1],
			(b->n_regions - i) * sizeof(b->regions[0]));
		rc = tab_new(k, b->regions, b->n_regions, &tab);
		if (rc == 0 && b->mapped) {
			rc = notify_set(b, &gone, b->base, false);
			if (rc)
				free(tab);
		}
		if (rc) {
			memmove(&b->regions[i + 1], &b->regions[i],
				(b->n_regions - i) * sizeof(b->regions[0]));
			b->regions[i] = gone;
			b->n_regions++;
			return rc;
		}
	}
	tab_retire(k, vmres__devmgr_swap_notify_locked(m, b->instance, b->res_index, tab));
	bar_drop_if_empty(k, b);
	return 0;
}

int vmres_kvmres_notify_remove(struct vmres_kvmres *k, const struct vmres_kvmres_notify *n)
{
	struct notify_call c = {k, n};

	if (!k || !n)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, notify_remove_locked, &c);
}

/* ---- memory ---- */

struct mem_call {
	struct vmres_kvmres *k;
	uint32_t instance;
	unsigned int res_index;
	void *host;
	bool readonly;
	uint32_t *slot;
	bool given; /* take @c want rather than any number */
	uint32_t want;
};

static int mem_attach_locked(struct vmres_devmgr *m, void *arg)
{
	struct mem_call *c = arg;
	struct vmres_kvmres *k = c->k;
	struct kvm_bar *b;
	uint32_t slot;
	bool made;
	int rc;

	(void)m;
	rc = bar_get(k, c->instance, c->res_index, &b, &made);
	if (rc)
		return rc;
	if (b->has_mem)
		return VMRES_EEXIST;
	if (b->space != VMRES_SPACE_MMIO)
		rc = VMRES_EKIND;
	else if (!k->be->ops->mem_map || (!k->slots && !k->slot_pool[0]))
		rc = VMRES_ENOTSUP;
	else if (c->given)
		rc = slot_adopt(k, slot = c->want);
	else
		rc = slot_take(k, &slot);
	if (rc == 0) {
		b->host = c->host;
		b->readonly = c->readonly;
		b->has_mem = true;
		rc = b->mapped ? mem_set(b, slot, b->base, true) : 0;
		if (rc) {
			b->has_mem = false;
			slot_give(k, slot);
		}
	}
	if (rc) {
		if (made)
			bar_drop_if_empty(k, b);
		return rc;
	}
	b->slot = slot;
	if (c->slot)
		*c->slot = slot;
	return 0;
}

int vmres_kvmres_mem_attach(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index,
			    void *host, bool readonly, uint32_t *slot)
{
	struct mem_call c = {k, instance, res_index, host, readonly, slot, false, 0};

	if (!k || !host)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, mem_attach_locked, &c);
}

int vmres__kvmres_mem_attach_slot(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index,
				  void *host, bool readonly, uint32_t slot)
{
	struct mem_call c = {k, instance, res_index, host, readonly, NULL, true, slot};

	if (!k || !host)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, mem_attach_locked, &c);
}

static int mem_detach_locked(struct vmres_devmgr *m, void *arg)
{
	struct mem_call *c = arg;
	struct kvm_bar *b = bar_find(c->k, c->instance, c->res_index);
	int rc;

	(void)m;
	if (!b || !b->has_mem)
		return VMRES_ENOENT;
	rc = b->mapped ? mem_set(b, b->slot, b->base, false) : 0;
	if (rc)
		return rc;
	slot_give(c->k, b->slot);
	b->has_mem = false;
	bar_drop_if_empty(c->k, b);
	return 0;
}

int vmres_kvmres_mem_detach(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index)
{
	struct mem_call c = {k, instance, res_index, NULL, false, NULL, false, 0};

	if (!k)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, mem_detach_locked, &c);
}

/* ---- the object ---- */

int vmres_kvmres_new(struct vmres_devmgr *m, struct vmres_kvmres_backend *be,
		     const struct vmres_kvmres_opts *opts, struct vmres_kvmres **out)
{
	const struct vmres_kvmres_opts def = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres *k;
	int rc;

	if (!m || !be || !out)
		return VMRES_EINVAL;
	if (!opts)
		opts = &def;
	if (opts->version != VMRES_KVMRES_OPTS_VERSION)
		return VMRES_EVERSION;
	if (opts->slot_pool &&
	    (!opts->slot_pool[0] || !vmres__name_valid(opts->slot_pool, VMRES_POOL_NAME_MAX) ||
	     strlen(opts->slot_pool) >= VMRES_POOL_NAME_MAX))
		return VMRES_EINVAL;
	if (opts->slot_pool && !vmres__devmgr_sysalloc(m))
		return VMRES_ESTATE;
	if (!opts->slot_pool && opts->slot_count &&
	    (uint64_t)opts->slot_first + opts->slot_count - 1 > UINT32_MAX)
		return VMRES_EOVERFLOW;
	k = calloc(1, sizeof(*k));
	if (!k)
		return VMRES_ENOMEM;
	k->m = m;
	k->be = be;
	k->slot_owner = opts->slot_owner;
	if (opts->slot_pool) {
		snprintf(k->slot_pool, sizeof(k->slot_pool), "%s", opts->slot_pool);
	} else if (opts->slot_count) {
		rc = vmres_ids_new(opts->slot_first, opts->slot_first + (opts->slot_count - 1),
				   &k->slots);
		if (rc) {
			free(k);
			return rc;
		}
	}
	*out = k;
	return 0;
}

static int free_locked(struct vmres_devmgr *m, void *arg)
{
	struct vmres_kvmres *k = arg;

	while (k->bars) {
		struct kvm_bar *b = k->bars;

		if (b->mapped)
			undo(b, placement_set(b, b->base, b->slot, false));
		if (b->has_mem)
			slot_give(k, b->slot);
		tab_retire(k, vmres__devmgr_swap_notify_locked(m, b->instance, b->res_index, NULL));
		b->n_regions = 0;
		b->has_mem = false;
		bar_drop_if_empty(k, b);
	}
	return 0;
}

void vmres_kvmres_free(struct vmres_kvmres *k)
{
	if (!k)
		return;
	(void)vmres__devmgr_locked(k->m, free_locked, k);
	vmres__rcu_drain(&k->pending);
	vmres_ids_free(k->slots);
	vmres_kvmres_backend_free(k->be);
	free(k);
}

struct info_call {
	struct vmres_kvmres *k;
	struct vmres_kvmres_info *out;
};

static int get_info_locked(struct vmres_devmgr *m, void *arg)
{
	struct info_call *c = arg;
	struct vmres_kvmres_info info = {0};

	(void)m;
	for (const struct kvm_bar *b = c->k->bars; b; b = b->next) {
		info.resources++;
		info.regions += b->n_regions;
		info.memory += b->has_mem;
	}
	info.undo_failures = c->k->undo_failures;
	*c->out = info;
	return 0;
}

int vmres_kvmres_get_info(struct vmres_kvmres *k, struct vmres_kvmres_info *out)
{
	struct info_call c = {k, out};

	if (!k || !out)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, get_info_locked, &c);
}

struct describe_call {
	struct vmres_kvmres *k;
	const struct vmres__kvmres_walk *w;
};

static int describe_locked(struct vmres_devmgr *m, void *arg)
{
	struct describe_call *c = arg;
	int rc = 0;

	(void)m;
	for (const struct kvm_bar *b = c->k->bars; b && !rc; b = b->next) {
		for (size_t i = 0; i < b->n_regions && !rc; i++)
			rc = c->w->notify(c->w->ctx, &b->regions[i]);
		if (!rc && b->has_mem) {
			struct vmres__kvmres_mem mem = {b->instance, b->res_index, b->readonly,
							b->slot};

			rc = c->w->mem(c->w->ctx, &mem);
		}
	}
	return rc;
}

int vmres__kvmres_describe(struct vmres_kvmres *k, struct vmres_devmgr *m,
			   const struct vmres__kvmres_walk *w)
{
	struct describe_call c = {k, w};

	if (k->m != m)
		return VMRES_EINVAL;
	return vmres__devmgr_locked(k->m, describe_locked, &c);
}

struct dump_call {
	struct vmres_kvmres *k;
	FILE *f;
};

static void dump_bar(FILE *f, const struct kvm_bar *b)
{
	fprintf(f, "dev %" PRIu32 " res %u %s 0x%" PRIx64 " size 0x%" PRIx64 " %s\n", b->instance,
		b->res_index, b->space == VMRES_SPACE_PIO ? "pio" : "mmio", b->base, b->size,
		b->mapped ? "mapped" : "unmapped");
	for (size_t i = 0; i < b->n_regions; i++) {
		const struct vmres_kvmres_notify *n = &b->regions[i];

		fprintf(f, "  notify +0x%" PRIx64 " len %" PRIu32, n->offset, n->len);
		if (n->match)
			fprintf(f, " data 0x%" PRIx64, n->data);
		fprintf(f, " fd %d\n", n->fd);
	}
	if (b->has_mem)
		fprintf(f, "  mem slot %" PRIu32 " size 0x%" PRIx64 " %s\n", b->slot, b->size,
			b->readonly ? "ro" : "rw");
}

static int dump_locked(struct vmres_devmgr *m, void *arg)
{
	struct dump_call *c = arg;

	(void)m;
	for (const struct kvm_bar *b = c->k->bars; b; b = b->next)
		dump_bar(c->f, b);
	return 0;
}

int vmres_kvmres_dump_str(struct vmres_kvmres *k, char **out)
{
	struct dump_call c = {k, NULL};
	char *buf = NULL;
	size_t len = 0;

	if (!k || !out)
		return VMRES_EINVAL;
	c.f = open_memstream(&buf, &len);
	if (!c.f)
		return VMRES_ENOMEM;
	(void)vmres__devmgr_locked(k->m, dump_locked, &c);
	if (fclose(c.f) != 0 || !buf) {
		free(buf);
		return VMRES_ENOMEM;
	}
	*out = buf;
	return 0;
}
