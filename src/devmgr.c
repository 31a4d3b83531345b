/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device manager. The whole table is one immutable struct dm_state (the
 * devices in instance-id order, each an immutable struct dm_view of its
 * resources, and the two bus maps), published through m->state with RCU.
 * A writer, holding m->lock, builds the next state from the current one (sharing
 * every view and bus map it does not change), publishes it with one pointer
 * store and retires the old state with call_rcu; the retired state records what
 * only it referenced (a replaced view, a changed bus map, a removed device)
 * so that the callback frees exactly that, and releases the removed device.
 *
 * This file: the states, the writers and dispatch; devmgr_table.c has the
 * lookups, iteration and dumps; devmgr_kvm.c the struct kvm_run helper.
 */
#include "common_int.h"
#include "devmgr_int.h"
#include "util/bits.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmres/bus.h>
#include <vmres/sysalloc.h>

/* ---- states ---- */

struct dm_view *vmres__dm_view_new(uint32_t instance, uint32_t parent, struct dm_rec *rec,
				   const struct vmres_resource *res, const bool *mapped,
				   size_t n_res)
{
	struct dm_view *v = malloc(sizeof(*v) + n_res * (sizeof(v->res[0]) + sizeof(bool)));

	if (!v)
		return NULL;
	v->instance = instance;
	v->parent = parent;
	v->rec = rec;
	v->n_res = n_res;
	v->mapped = (bool *)&v->res[n_res];
	if (n_res)
		memcpy(v->res, res, n_res * sizeof(*res));
	for (size_t i = 0; i < n_res; i++)
		v->mapped[i] = mapped ? mapped[i] : res[i].kind == VMRES_RES_ADDR;
	return v;
}

struct dm_view *vmres__dm_view_copy(const struct dm_view *v)
{
	return vmres__dm_view_new(v->instance, v->parent, v->rec, v->res, v->mapped, v->n_res);
}

static void state_free(struct vmres_devmgr *m, struct dm_state *st, bool all)
{
	for (int s = 0; s < N_SPACES; s++)
		if (all || st->free_bus[s])
			vmres__bus_map_free(all ? NULL : &m->cache, st->bus[s]);
	if (all)
		for (size_t i = 0; i < st->n; i++)
			view_free(st->views[i]);
	free(st->views);
	free(st);
}

static void rec_free(struct dm_rec *rec)
{
	for (size_t i = 0; i < rec->n_notify; i++)
		free(rec->notify[i]);
	free(rec->notify);
	free(rec->listeners);
	free(rec);
}

static void retire_cb(struct rcu_head *head)
{
	struct dm_state *st = caa_container_of(head, struct dm_state, rcu);
	struct vmres_devmgr *m;
	struct dm_rec *rec;

	vmres__tsan_acquire();
	m = st->m;
	rec = st->dead_rec;
	view_free(st->dead_view);
	state_free(m, st, false);
	if (rec) {
		if (rec->dev.release)
			rec->dev.release(rec->dev.opaque);
		rec_free(rec);
	}
	__atomic_fetch_sub(&m->pending, 1, __ATOMIC_RELEASE);
}

static size_t view_ranges(const struct dm_view *v, int space)
{
	size_t k = 0;

	for (size_t i = 0; v && i < v->n_res; i++)
		k += v->mapped[i] && space_index(v->res[i].u.addr.space) == space;
	return k;
}

/* The bus entry of address resource @p i, @p r, of @p rec. */
static struct vmres__bus_entry entry_of(const struct dm_rec *rec, const struct vmres_resource *r,
					size_t i)
{
	struct vmres__bus_entry e = {
		.start = r->u.addr.base,
		.span = r->u.addr.size - 1,
		.dev = &rec->dev,
		.range = (uint32_t)i,
		.notify = i < rec->n_notify ? rec->notify[i] : NULL,
	};

	vmres__device_entry(&e, &rec->dev);
	return e;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct vmres__bus_entry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The bus of @p space (in @p st, from @p cur's) with the mapped ranges of
 * @p old_v (NULL: a new device) replaced by those of @p v (NULL: removed): a
 * new delta on cur's base, or a new base (vmres__bus_change()). */
static int bus_rebuild(struct vmres_devmgr *m, const struct dm_state *cur, struct dm_state *st,
		       const struct dm_view *old_v, const struct dm_view *v, int space)
{
	size_t n_old = view_ranges(old_v, space), n_new = view_ranges(v, space), a = 0, b = 0;
	struct vmres__bus_entry *mine = malloc((n_new + 1) * sizeof(*mine));
	struct vmres__bus_entry *gone = malloc((n_old + 1) * sizeof(*gone));
	int rc;

	if (!mine || !gone) {
		free(mine);
		free(gone);
		return VMRES_ENOMEM;
	}
	for (size_t i = 0; old_v && i < old_v->n_res; i++) {
		const struct vmres_resource *r = &old_v->res[i];

		if (old_v->mapped[i] && space_index(r->u.addr.space) == space)
			gone[a++] = entry_of(old_v->rec, r, i);
	}
	for (size_t i = 0; v && i < v->n_res; i++) {
		const struct vmres_resource *r = &v->res[i];

		if (v->mapped[i] && space_index(r->u.addr.space) == space)
			mine[b++] = entry_of(v->rec, r, i);
	}
	rc = vmres__bus_change(&m->cache, cur->bus[space], &cur->delta[space], gone, a, mine, b,
			       &st->bus[space], &st->delta[space]);
	free(mine);
	free(gone);
	return rc;
}

/*
 * Build the state that follows @p cur when the device at index @p idx (SIZE_MAX:
 * a new device, appended) becomes @p v (NULL: removed). @p old_v is the view it
 * replaces (NULL for a new device). Only the buses of @p spaces (bits 1 << PIO,
 * 1 << MMIO) are rebuilt: the others' ranges must not have changed. Nothing is
 * published.
 */
static int state_next(struct vmres_devmgr *m, size_t idx, const struct dm_view *old_v,
		      struct dm_view *v, unsigned int spaces, struct dm_state **out)
{
	const struct dm_state *cur = m->state;
	size_t n = cur->n + (v && !old_v) - (!v);
	struct dm_state *st = calloc(1, sizeof(*st));
	int rc = 0;

	if (!st || !(st->views = malloc((n + 1) * sizeof(*st->views)))) {
		free(st);
		return VMRES_ENOMEM;
	}
	st->n = n;
	if (!old_v) {
		if (cur->n) /* the first state has no views array */
			memcpy(st->views, cur->views, cur->n * sizeof(*cur->views));
		st->views[cur->n] = v;
	} else if (v) {
		memcpy(st->views, cur->views, cur->n * sizeof(*cur->views));
		st->views[idx] = v;
	} else {
		memcpy(st->views, cur->views, idx * sizeof(*cur->views));
		memcpy(st->views + idx, cur->views + idx + 1,
		       (cur->n - idx - 1) * sizeof(*cur->views));
	}
	for (int s = 0; s < N_SPACES; s++) {
		st->bus[s] = cur->bus[s];
		st->delta[s] = cur->delta[s];
		if (rc || !(spaces & (1u << s)) || (!view_ranges(old_v, s) && !view_ranges(v, s)))
			continue;
		rc = bus_rebuild(m, cur, st, old_v, v, s);
		if (rc)
			st->bus[s] = cur->bus[s];
	}
	if (rc) {
		for (int s = 0; s < N_SPACES; s++)
			if (st->bus[s] != cur->bus[s])
				vmres__bus_map_free(&m->cache, st->bus[s]);
		free(st->views);
		free(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* Drop @p st, built by state_next() but not published, and the new view @p v in it. */
static void state_discard(struct vmres_devmgr *m, struct dm_state *st, struct dm_view *v)
{
	for (int s = 0; s < N_SPACES; s++)
		if (st->bus[s] != m->state->bus[s])
			vmres__bus_map_free(&m->cache, st->bus[s]);
	free(st->views);
	free(st);
	view_free(v);
}

/* Publish @p next; retire the current state with what only it referenced. */
static void publish(struct vmres_devmgr *m, struct dm_state *next, struct dm_view *dead_view,
		    struct dm_rec *dead_rec)
{
	struct dm_state *cur = m->state;
	bool here = vmres__rcu_enter();

	cur->m = m;
	for (int s = 0; s < N_SPACES; s++)
		cur->free_bus[s] = cur->bus[s] != next->bus[s];
	cur->dead_view = dead_view;
	cur->dead_rec = dead_rec;
	__atomic_fetch_add(&m->pending, 1, __ATOMIC_RELAXED);
	vmres__rcu_store(m->state, next);
	vmres__call_rcu(&cur->rcu, retire_cb);
	vmres__rcu_leave(here);
}

/* ---- validation ---- */

static int check_addr(enum vmres_space space, uint64_t base, uint64_t size)
{
	if (space_index(space) < 0)
		return VMRES_EINVAL;
	if (size == 0)
		return VMRES_ESIZE;
	if (vmres__range_wraps(base, size))
		return VMRES_EOVERFLOW;
	if (space == VMRES_SPACE_PIO && vmres__range_last(base, size) > VMRES_BUS_PIO_LAST)
		return VMRES_ERANGE;
	return 0;
}

static int check_resource_list(const struct vmres_resource *res, size_t n_res)
{
	if ((!res && n_res) || n_res > VMRES_DEVMGR_MAX_RES)
		return VMRES_EINVAL;
	for (size_t i = 0; i < n_res; i++) {
		const struct vmres_resource *r = &res[i];
		int rc;

		if (!vmres__name_valid(r->pool, sizeof(r->pool)))
			return VMRES_EINVAL;
		switch (r->kind) {
		case VMRES_RES_ADDR:
			rc = check_addr(r->u.addr.space, r->u.addr.base, r->u.addr.size);
			if (rc)
				return rc;
			break;
		case VMRES_RES_IRQ:
		case VMRES_RES_MSI:
		case VMRES_RES_ID:
			break;
		default:
			return VMRES_EINVAL;
		}
	}
	return 0;
}

/* ---- lifetime ---- */

/* A device manager's dispatch is a bus lookup: the same RCU reader registration. */
int vmres_devmgr_thread_register(void)
{
	return vmres_bus_thread_register();
}

int vmres_devmgr_thread_unregister(void)
{
	return vmres_bus_thread_unregister();
}

int vmres_devmgr_new(struct vmres_sysalloc *sa, struct vmres_devmgr **out)
{
	struct vmres_devmgr *m;
	struct dm_state *st;

	if (!out)
		return VMRES_EINVAL;
	m = aligned_alloc(64, sizeof(*m));
	st = calloc(1, sizeof(*st));
	if (!m || !st)
		goto nomem;
	memset(m, 0, sizeof(*m));
	if (vmres__bus_map_build(NULL, NULL, 0, &st->bus[PIO]))
		goto nomem;
	if (vmres__bus_map_build(NULL, NULL, 0, &st->bus[MMIO])) {
		vmres__bus_map_free(NULL, st->bus[PIO]);
		goto nomem;
	}
	vmres__bus_map_cache_init(&m->cache);
	pthread_mutex_init(&m->lock, NULL);
	m->sa = sa;
	m->next_id = 1;
	m->state = st;
	*out = m;
	return 0;
nomem:
	free(m);
	free(st);
	return VMRES_ENOMEM;
}

void vmres_devmgr_free(struct vmres_devmgr *m)
{
	struct dm_state *st;

	if (!m)
		return;
	vmres__rcu_drain(&m->pending);
	st = m->state;
	/* A child's id is always above its parent's: release from the highest id. */
	for (size_t i = st->n; i-- > 0;) {
		struct dm_rec *rec = st->views[i]->rec;

		if (rec->dev.release)
			rec->dev.release(rec->dev.opaque);
		rec_free(rec);
	}
	state_free(m, st, true);
	vmres__bus_map_cache_destroy(&m->cache);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- writers ---- */

static int check_device(const struct vmres_device *dev)
{
	if (vmres__device_check(dev))
		return VMRES_EINVAL;
	if (dev->name)
		return vmres__name_check("device name", dev->name, VMRES_DEVICE_NAME_MAX);
	return 0;
}

/* The record of a checked @p dev (instance not set), or NULL when out of memory. */
static struct dm_rec *dm_rec_new(const struct vmres_device *dev)
{
	struct dm_rec *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return NULL;
	vmres__device_copy(&rec->dev, dev);
	if (dev->name)
		strcpy(rec->name, dev->name);
	rec->dev.name = rec->name;
	return rec;
}

/* Resources that @p n_reqs requests yield (an MSI request: its count). */
static uint64_t requested_resources(const struct vmres_request *reqs, size_t n_reqs)
{
	uint64_t n = 0;

	for (size_t i = 0; i < n_reqs; i++)
		n += reqs[i].kind == VMRES_RES_MSI ? reqs[i].u.msi.count : 1;
	return n;
}

/* Give back, most recent first, the @p n resources @p res that this call
 * allocated for @p owner: the allocators are deterministic, so allocating and
 * releasing in reverse leaves them as they were (as vmres_sysalloc_alloc()'s
 * own rollback). A release of what was just allocated cannot fail. */
static void release_fresh(struct vmres_devmgr *m, const struct vmres_resource *res, size_t n,
			  uint64_t owner)
{
	while (n-- > 0)
		(void)vmres_sysalloc_release(m->sa, &res[n], owner);
}

/*
 * The checks of vmres_devmgr_register_ex() that need no lock: the device, the
 * options, the given resources, the counts. *@p total receives the number of
 * resources the device will have.
 */
static int check_register(const struct vmres_devmgr *m, const struct vmres_device *dev,
			  const struct vmres_devmgr_register_opts *o, const uint32_t *instance,
			  const struct vmres_resource *out, size_t out_cap, size_t *total)
{
	uint64_t n;
	int rc;

	if (!m || !instance)
		return VMRES_EINVAL;
	rc = check_device(dev);
	if (rc)
		return rc;
	if (o->version != VMRES_DEVMGR_REGISTER_OPTS_VERSION)
		return vmres__fail(VMRES_EINVAL,
				   "struct vmres_devmgr_register_opts has version %u, not %u: "
				   "initialise it with VMRES_DEVMGR_REGISTER_OPTS_INIT",
				   (unsigned int)o->version,
				   (unsigned int)VMRES_DEVMGR_REGISTER_OPTS_VERSION);
	if ((!o->reqs && o->n_reqs) || (!o->mapped && o->n_mapped) || (!out && out_cap))
		return VMRES_EINVAL;
	rc = check_resource_list(o->res, o->n_res);
	if (rc)
		return rc;
	n = requested_resources(o->reqs, o->n_reqs);
	if (n > VMRES_DEVMGR_MAX_RES - o->n_res || o->n_mapped > o->n_res + n)
		return VMRES_EINVAL;
	if (out && out_cap < o->n_res + n)
		return vmres__fail(VMRES_EFULL,
				   "output array too small: out_cap is %zu, the device has %llu "
				   "resources; pass an array of at least %llu",
				   out_cap, (unsigned long long)(o->n_res + n),
				   (unsigned long long)(o->n_res + n));
	*total = o->n_res + (size_t)n;
	return 0;
}

/* The resources and mapped flags of a new device: the given resources, then
 * room for what the requests yield; a flag for each (address resources only). */
static struct vmres_resource *resources_new(const struct vmres_devmgr_register_opts *o,
					    size_t total, bool **mapped)
{
	struct vmres_resource *all = malloc((total + 1) * sizeof(*all));
	bool *flags = malloc(total + 1);

	if (!all || !flags) {
		free(all);
		free(flags);
		return NULL;
	}
	if (o->n_res)
		memcpy(all, o->res, o->n_res * sizeof(*all));
	for (size_t i = 0; i < total; i++)
		flags[i] = i < o->n_mapped ? o->mapped[i] : true;
	*mapped = flags;
	return all;
}

/* vmres_devmgr_register_ex(), with @p vet (if not NULL) asked under the writer
 * lock before anything is published (vmres__devmgr_register_vetted()). */
static int register_dev(struct vmres_devmgr *m, const struct vmres_device *dev,
			const struct vmres_devmgr_register_opts *opts, uint32_t *instance,
			struct vmres_resource *out, size_t out_cap, size_t *n_out,
			struct vmres_sysalloc_error *err, vmres__devmgr_vet_fn vet, void *vet_ctx)
{
	static const struct vmres_devmgr_register_opts defaults = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	const struct vmres_devmgr_register_opts *o = opts ? opts : &defaults;
	struct vmres_resource *all;
	struct dm_state *next;
	struct dm_rec *rec;
	struct dm_view *v;
	size_t total = 0, got = 0;
	bool *mapped;
	int rc;

	rc = check_register(m, dev, o, instance, out, out_cap, &total);
	if (rc)
		return rc;
	rec = dm_rec_new(dev);
	all = rec ? resources_new(o, total, &mapped) : NULL;
	if (!all) {
		free(rec);
		return VMRES_ENOMEM;
	}

	pthread_mutex_lock(&m->lock);
	rc = VMRES_ESTATE;
	if (o->n_reqs && !m->sa)
		goto fail;
	rc = VMRES_EPARENT;
	if (o->parent != VMRES_DEVMGR_NO_PARENT && find_index(m->state, o->parent) == SIZE_MAX)
		goto fail;
	rc = VMRES_EFULL;
	if (m->next_id == 0)
		goto fail;
	if (o->n_reqs) {
		rc = vmres_sysalloc_alloc(m->sa, o->reqs, o->n_reqs, rec->dev.owner, all + o->n_res,
					  total - o->n_res, &got, err);
		if (rc)
			goto fail;
	}
	if (vet && (rc = vet(vet_ctx, all, mapped, total)) != 0)
		goto fail;
	for (size_t i = 0; i < total; i++) /* flags of other kinds: ignored */
		mapped[i] = mapped[i] && all[i].kind == VMRES_RES_ADDR;
	rec->instance = m->next_id;
	rc = VMRES_ENOMEM;
	v = vmres__dm_view_new(rec->instance, o->parent, rec, all, mapped, total);
	if (!v)
		goto fail;
	rc = state_next(m, SIZE_MAX, NULL, v, ALL_SPACES, &next);
	if (rc) {
		view_free(v);
		goto fail;
	}
	m->next_id++;
	*instance = rec->instance;
	if (out && total)
		memcpy(out, all, total * sizeof(*out));
	if (n_out)
		*n_out = total;
	publish(m, next, NULL, NULL);
	pthread_mutex_unlock(&m->lock);
	free(all);
	free(mapped);
	return 0;
fail:
	release_fresh(m, all + o->n_res, got, rec->dev.owner);
	pthread_mutex_unlock(&m->lock);
	free(rec);
	free(all);
	free(mapped);
	return rc;
}

int vmres_devmgr_register_ex(struct vmres_devmgr *m, const struct vmres_device *dev,
			     const struct vmres_devmgr_register_opts *opts, uint32_t *instance,
			     struct vmres_resource *out, size_t out_cap, size_t *n_out,
			     struct vmres_sysalloc_error *err)
{
	return register_dev(m, dev, opts, instance, out, out_cap, n_out, err, NULL, NULL);
}

int vmres__devmgr_register_vetted(struct vmres_devmgr *m, const struct vmres_device *dev,
				  const struct vmres_devmgr_register_opts *opts,
				  uint32_t *instance, vmres__devmgr_vet_fn vet, void *vet_ctx)
{
	return register_dev(m, dev, opts, instance, NULL, 0, NULL, NULL, vet, vet_ctx);
}

int vmres_devmgr_register(struct vmres_devmgr *m, const struct vmres_device *dev, uint32_t parent,
			  const struct vmres_resource *res, size_t n_res, uint32_t *instance)
{
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;

	o.parent = parent;
	o.res = res;
	o.n_res = n_res;
	return vmres_devmgr_register_ex(m, dev, &o, instance, NULL, 0, NULL, NULL);
}

/*
 * Remove device @p instance, giving back to the sysalloc (if attached) its
 * resources from index @p release_from on, in reverse order (SIZE_MAX: none).
 */
static int remove_device(struct vmres_devmgr *m, uint32_t instance, size_t release_from)
{
	struct dm_state *cur, *next;
	struct dm_view *old;
	size_t idx;
	int rc;

	pthread_mutex_lock(&m->lock);
	cur = m->state;
	idx = find_index(cur, instance);
	rc = VMRES_EDEVICE;
	if (idx == SIZE_MAX)
		goto out;
	rc = VMRES_EPARENT;
	for (size_t i = idx + 1; i < cur->n; i++)
		if (cur->views[i]->parent == instance)
			goto out;
	old = cur->views[idx];
	rc = state_next(m, idx, old, NULL, ALL_SPACES, &next);
	if (rc)
		goto out;
	for (size_t i = old->n_res; m->sa && release_from != SIZE_MAX && i-- > release_from;)
		if (old->res[i].pool[0])
			(void)vmres_sysalloc_release(m->sa, &old->res[i], old->rec->dev.owner);
	publish(m, next, old, old->rec);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_unregister(struct vmres_devmgr *m, uint32_t instance)
{
	if (!m)
		return VMRES_EINVAL;
	return remove_device(m, instance, SIZE_MAX);
}

int vmres_devmgr_unregister_release(struct vmres_devmgr *m, uint32_t instance)
{
	if (!m)
		return VMRES_EINVAL;
	if (!m->sa)
		return VMRES_ESTATE;
	return remove_device(m, instance, 0);
}

/* Replace the view at @p idx by @p v (consumed; NULL: out of memory) and
 * publish; @p m->lock held. */
static int replace_view(struct vmres_devmgr *m, size_t idx, struct dm_view *v)
{
	struct dm_state *next;
	int rc = v ? state_next(m, idx, m->state->views[idx], v, ALL_SPACES, &next) : VMRES_ENOMEM;

	if (rc == 0)
		publish(m, next, m->state->views[idx], NULL);
	else
		view_free(v);
	return rc;
}

int vmres_devmgr_update(struct vmres_devmgr *m, uint32_t instance, const struct vmres_resource *res,
			size_t n_res)
{
	const struct dm_view *old;
	size_t idx;
	int rc;

	if (!m)
		return VMRES_EINVAL;
	rc = check_resource_list(res, n_res);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	idx = find_index(m->state, instance);
	if (idx == SIZE_MAX) {
		rc = VMRES_EDEVICE;
	} else {
		old = m->state->views[idx];
		rc = replace_view(
			m, idx,
			vmres__dm_view_new(instance, old->parent, old->rec, res, NULL, n_res));
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- guest-driven changes: prepare, then commit or abort ---- */

/*
 * A guest-driven change of one resource of one device (a BAR moved, decode
 * turned on or off, an MSI reprogrammed) is one transaction. change_prepare()
 * makes every check, takes every piece of memory and prepares every allocator
 * step, in that order, and changes nothing that a vCPU, a query or the VMM
 * sees: a refusal costs O(log d + log n) and builds no table. A step of
 * prepare that fails undoes the steps before it; change_commit() cannot fail.
 * All under m->lock.
 */
enum change_op { CHANGE_MOVE, CHANGE_MAP, CHANGE_UNMAP, CHANGE_MSI };

/* change_prepare()'s answer when the change would change nothing. */
#define CHANGE_NONE 1

struct change {
	enum change_op op;
	unsigned int res_index;
	uint64_t new_base;		 /* CHANGE_MOVE */
	const struct vmres_msi_msg *msg; /* CHANGE_MSI */
	/* Set by change_prepare(): */
	size_t idx;				/* the device's index in the table */
	struct dm_view *v;			/* its new view */
	struct dm_state *next;			/* the table to publish */
	bool sa_step;				/* mv was prepared */
	struct vmres_sysalloc_move mv;		/* the address resource's reservation */
	bool told;				/* the listener accepted in prepare */
	struct vmres_devmgr_placement from, to; /* for the listener */
};

static bool use_sysalloc(const struct vmres_devmgr *m, const struct vmres_resource *r)
{
	return m->sa && r->pool[0];
}

/* The checks and the reservation step of a change of address resource @p r. */
static int prepare_addr(struct vmres_devmgr *m, const struct dm_view *old, struct change *c)
{
	const struct vmres_resource *r = &old->res[c->res_index];
	bool mapped = old->mapped[c->res_index];
	uint64_t base = r->u.addr.base, size = r->u.addr.size;
	int rc, sp;

	switch (c->op) {
	case CHANGE_MOVE:
		rc = check_addr(r->u.addr.space, c->new_base, size);
		if (rc == 0 && r->u.addr.align > 1 && c->new_base % r->u.addr.align)
			rc = VMRES_EMISALIGNED;
		if (rc)
			return rc;
		if (c->new_base == base)
			return CHANGE_NONE;
		base = c->new_base;
		break;
	case CHANGE_MAP:
		if (mapped)
			return VMRES_ESTATE;
		mapped = true;
		break;
	default: /* CHANGE_UNMAP: the reservation stays; nothing to check */
		return mapped ? 0 : VMRES_ESTATE;
	}
	sp = space_index(r->u.addr.space) == PIO ? PIO : MMIO;
	if (mapped && vmres__bus_taken(m->state->bus[sp], &m->state->delta[sp], base,
				       vmres__range_last(base, size), &old->rec->dev, c->res_index))
		return VMRES_EOVERLAP;
	if (!use_sysalloc(m, r))
		return 0;
	rc = vmres_sysalloc_move_prepare(m->sa, r, old->rec->dev.owner, base, m->sa_flags, &c->mv);
	c->sa_step = rc == 0;
	return rc;
}

/*
 * The listener of address resource @p c->res_index of @p rec, if any, told of
 * the change from c->from to c->to: prepare (it may refuse), commit or abort.
 */
enum listen_phase { LISTEN_PREPARE, LISTEN_COMMIT, LISTEN_ABORT };

static int listen(const struct dm_rec *rec, struct change *c, enum listen_phase phase)
{
	const struct vmres_devmgr_listener *l =
		c->res_index < rec->n_listeners ? rec->listeners[c->res_index].ops : NULL;
	void *ctx = l ? rec->listeners[c->res_index].ctx : NULL;
	int rc = 0;

	if (!l)
		return 0;
	if (phase == LISTEN_PREPARE) {
		if (l->prepare)
			rc = l->prepare(ctx, rec->instance, c->res_index, &c->from, &c->to);
		c->told = rc == 0;
	} else if (c->told && phase == LISTEN_COMMIT && l->commit) {
		l->commit(ctx, rec->instance, c->res_index, &c->from, &c->to);
	} else if (c->told && phase == LISTEN_ABORT && l->abort) {
		l->abort(ctx, rec->instance, c->res_index, &c->from, &c->to);
	}
	return rc;
}

/* c->from and c->to: address resource c->res_index in @p old and in @p v. */
static void placements(const struct dm_view *old, const struct dm_view *v, struct change *c)
{
	unsigned int i = c->res_index;

	c->from = (struct vmres_devmgr_placement){old->res[i].u.addr.base, old->res[i].u.addr.size,
						  old->mapped[i]};
	c->to = (struct vmres_devmgr_placement){v->res[i].u.addr.base, v->res[i].u.addr.size,
						v->mapped[i]};
}

static int change_prepare(struct vmres_devmgr *m, uint32_t instance, struct change *c)
{
	const struct dm_view *old;
	const struct vmres_resource *r;
	enum vmres_res_kind kind = c->op == CHANGE_MSI ? VMRES_RES_MSI : VMRES_RES_ADDR;
	unsigned int spaces = 0;
	int rc;

	c->sa_step = false;
	c->told = false;
	c->idx = find_index(m->state, instance);
	if (c->idx == SIZE_MAX)
		return VMRES_EDEVICE;
	old = m->state->views[c->idx];
	if (c->res_index >= old->n_res || old->res[c->res_index].kind != kind)
		return VMRES_ENOENT;
	r = &old->res[c->res_index];
	if (kind == VMRES_RES_ADDR) {
		rc = prepare_addr(m, old, c);
		if (rc)
			return rc;
		spaces = 1u << space_index(r->u.addr.space);
	}
	c->v = vmres__dm_view_copy(old);
	rc = c->v ? 0 : VMRES_ENOMEM;
	if (rc == 0) {
		if (c->op == CHANGE_MOVE)
			c->v->res[c->res_index].u.addr.base = c->new_base;
		else if (c->op == CHANGE_MSI)
			c->v->res[c->res_index].u.msi.msg = *c->msg;
		else
			c->v->mapped[c->res_index] = c->op == CHANGE_MAP;
		rc = state_next(m, c->idx, old, c->v, spaces, &c->next);
		if (rc)
			view_free(c->v);
	}
	/* The MSI notifier re-routes the interrupt, a listener moves what the VMM
	 * keeps per range: the last steps, as they may refuse. */
	if (rc == 0 && c->op == CHANGE_MSI && m->msi_fn) {
		rc = m->msi_fn(m->msi_ctx, instance, c->res_index, r->u.msi.gsi, c->msg);
		if (rc)
			state_discard(m, c->next, c->v);
	} else if (rc == 0 && kind == VMRES_RES_ADDR) {
		placements(old, c->v, c);
		rc = listen(old->rec, c, LISTEN_PREPARE);
		if (rc)
			state_discard(m, c->next, c->v);
	}
	if (rc && c->sa_step)
		vmres_sysalloc_move_abort(m->sa, &c->mv);
	return rc;
}

static void change_commit(struct vmres_devmgr *m, struct change *c)
{
	if (c->sa_step) {
		struct vmres_resource now;

		vmres_sysalloc_move_commit(m->sa, &c->mv, &now);
		memcpy(c->v->res[c->res_index].pool, now.pool, VMRES_POOL_NAME_MAX);
	}
	publish(m, c->next, m->state->views[c->idx], NULL);
	listen(c->v->rec, c, LISTEN_COMMIT);
}

/* Prepare and commit @p c on device @p instance. */
static int change_run(struct vmres_devmgr *m, uint32_t instance, struct change *c)
{
	int rc;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = change_prepare(m, instance, c);
	if (rc == 0)
		change_commit(m, c);
	pthread_mutex_unlock(&m->lock);
	return rc == CHANGE_NONE ? 0 : rc;
}

int vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			    uint64_t new_base)
{
	struct change c = {.op = CHANGE_MOVE, .res_index = res_index, .new_base = new_base};

	return change_run(m, instance, &c);
}

int vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index)
{
	struct change c = {.op = CHANGE_UNMAP, .res_index = res_index};

	return change_run(m, instance, &c);
}

int vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index)
{
	struct change c = {.op = CHANGE_MAP, .res_index = res_index};

	return change_run(m, instance, &c);
}

int vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			     const struct vmres_msi_msg *msg)
{
	struct change c = {.op = CHANGE_MSI, .res_index = res_index, .msg = msg};

	if (!msg)
		return VMRES_EINVAL;
	return change_run(m, instance, &c);
}

int vmres__devmgr_set_listener_locked(struct vmres_devmgr *m, uint32_t instance,
				      unsigned int res_index, const struct vmres_devmgr_listener *l,
				      void *ctx)
{
	size_t idx = find_index(m->state, instance);
	const struct dm_view *v = idx == SIZE_MAX ? NULL : m->state->views[idx];
	struct dm_rec *rec = v ? v->rec : NULL;

	if (!v)
		return VMRES_EDEVICE;
	if (res_index >= v->n_res || v->res[res_index].kind != VMRES_RES_ADDR)
		return VMRES_ENOENT;
	if (res_index >= rec->n_listeners) {
		struct dm_listener *ls = realloc(rec->listeners, v->n_res * sizeof(*ls));

		if (!ls)
			return VMRES_ENOMEM;
		memset(ls + rec->n_listeners, 0, (v->n_res - rec->n_listeners) * sizeof(*ls));
		rec->listeners = ls;
		rec->n_listeners = v->n_res;
	}
	rec->listeners[res_index] = (struct dm_listener){l, ctx};
	return 0;
}

int vmres_devmgr_set_listener(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			      const struct vmres_devmgr_listener *l, void *ctx)
{
	int rc;

	if (!m)
		return VMRES_EINVAL;
	if (l && l->version != VMRES_DEVMGR_LISTENER_VERSION)
		return vmres__fail(VMRES_EINVAL,
				   "struct vmres_devmgr_listener has version %u, not %u: set "
				   "version = VMRES_DEVMGR_LISTENER_VERSION",
				   (unsigned int)l->version,
				   (unsigned int)VMRES_DEVMGR_LISTENER_VERSION);
	pthread_mutex_lock(&m->lock);
	rc = vmres__devmgr_set_listener_locked(m, instance, res_index, l, ctx);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres__devmgr_locked(struct vmres_devmgr *m, int (*fn)(struct vmres_devmgr *m, void *arg),
			 void *arg)
{
	int rc;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = fn(m, arg);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

struct vmres_sysalloc *vmres__devmgr_sysalloc(struct vmres_devmgr *m)
{
	return m->sa;
}

int vmres__devmgr_range_locked(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			       struct vmres_resource *r, bool *mapped,
			       const struct vmres_devmgr_listener **l, void **ctx)
{
	size_t idx = find_index(m->state, instance);
	const struct dm_view *v = idx == SIZE_MAX ? NULL : m->state->views[idx];

	if (!v)
		return VMRES_EDEVICE;
	if (res_index >= v->n_res || v->res[res_index].kind != VMRES_RES_ADDR)
		return VMRES_ENOENT;
	*r = v->res[res_index];
	*mapped = v->mapped[res_index];
	*l = res_index < v->rec->n_listeners ? v->rec->listeners[res_index].ops : NULL;
	*ctx = *l ? v->rec->listeners[res_index].ctx : NULL;
	return 0;
}

/* The range's notify slot, or NULL. */
static struct vmres__notify_slot *notify_slot(struct vmres_devmgr *m, uint32_t instance,
					      unsigned int res_index)
{
	size_t idx = find_index(m->state, instance);
	const struct dm_rec *rec = idx == SIZE_MAX ? NULL : m->state->views[idx]->rec;

	return rec && res_index < rec->n_notify ? rec->notify[res_index] : NULL;
}

int vmres__devmgr_notify_slot_locked(struct vmres_devmgr *m, uint32_t instance,
				     unsigned int res_index)
{
	size_t idx = find_index(m->state, instance);
	const struct dm_view *old = idx == SIZE_MAX ? NULL : m->state->views[idx];
	struct vmres__notify_slot **slots, *slot;
	struct dm_rec *rec;
	int rc;

	if (!old)
		return VMRES_EDEVICE;
	if (res_index >= old->n_res || old->res[res_index].kind != VMRES_RES_ADDR)
		return VMRES_ENOENT;
	rec = old->rec;
	if (res_index < rec->n_notify && rec->notify[res_index])
		return 0;
	slot = calloc(1, sizeof(*slot));
	slots = slot && res_index >= rec->n_notify
			? realloc(rec->notify, old->n_res * sizeof(*slots))
			: rec->notify;
	if (!slot || !slots) {
		free(slot);
		return VMRES_ENOMEM;
	}
	if (res_index >= rec->n_notify) {
		memset(slots + rec->n_notify, 0, (old->n_res - rec->n_notify) * sizeof(*slots));
		rec->notify = slots;
		rec->n_notify = old->n_res;
	}
	/* The entries are built from the record: set the slot, rebuild the
	 * range's bus with a copy of the view (nothing else changes), and take the
	 * slot back if that fails. */
	rec->notify[res_index] = slot;
	rc = old->mapped[res_index] ? replace_view(m, idx, vmres__dm_view_copy(old)) : 0;
	if (rc) {
		rec->notify[res_index] = NULL;
		free(slot);
	}
	return rc;
}

struct vmres__notify_tab *vmres__devmgr_swap_notify_locked(struct vmres_devmgr *m,
							   uint32_t instance,
							   unsigned int res_index,
							   struct vmres__notify_tab *tab)
{
	struct vmres__notify_slot *slot = notify_slot(m, instance, res_index);
	struct vmres__notify_tab *old;

	if (!slot)
		return tab;
	old = slot->tab;
	vmres__rcu_store(slot->tab, tab);
	return old;
}

int vmres_devmgr_set_policy(struct vmres_devmgr *m, enum vmres_devmgr_policy policy)
{
	if (!m || (policy != VMRES_DEVMGR_STRICT && policy != VMRES_DEVMGR_FOLLOW_GUEST))
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	m->sa_flags = policy == VMRES_DEVMGR_FOLLOW_GUEST ? VMRES_SYSALLOC_MOVE_GUEST : 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmres_devmgr_get_policy(struct vmres_devmgr *m, enum vmres_devmgr_policy *policy)
{
	if (!m || !policy)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	*policy = m->sa_flags & VMRES_SYSALLOC_MOVE_GUEST ? VMRES_DEVMGR_FOLLOW_GUEST
							  : VMRES_DEVMGR_STRICT;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmres_devmgr_set_msi_notifier(struct vmres_devmgr *m, vmres_devmgr_msi_fn fn, void *ctx)
{
	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	m->msi_fn = fn;
	m->msi_ctx = ctx;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Is address resource @p r of @p owner held by the sysalloc exactly? */
static bool reservation_held(const struct vmres_devmgr *m, const struct vmres_resource *r,
			     uint64_t owner)
{
	struct vmres_sysalloc_alloc_info info;

	return vmres_sysalloc_find(m->sa, r->pool, r->u.addr.base, &info) == 0 &&
	       info.owner == owner && info.res.u.addr.base == r->u.addr.base &&
	       info.res.u.addr.size == r->u.addr.size;
}

/*
 * Map or unmap several address resources of one device at once
 * (vmres_devmgr_set_mapped()). Ranges mapped that the sysalloc does not hold
 * are reserved first, one by one; if a later step fails, those new
 * reservations are released again (a release cannot fail).
 */
static int set_mapped_locked(struct vmres_devmgr *m, uint32_t instance, const bool *mapped,
			     size_t n_res)
{
	const struct dm_view *old;
	struct dm_state *next;
	struct dm_view *v;
	struct change *c;
	bool *fresh;
	size_t idx, k = 0, n = 0;
	bool built = false;
	int rc = 0;

	idx = find_index(m->state, instance);
	if (idx == SIZE_MAX)
		return VMRES_EDEVICE;
	old = m->state->views[idx];
	if (n_res != old->n_res)
		return VMRES_EINVAL;
	c = malloc((n_res + 1) * sizeof(*c));
	fresh = calloc(n_res + 1, sizeof(*fresh));
	v = vmres__dm_view_copy(old);
	if (!c || !fresh || !v) {
		free(c);
		free(fresh);
		view_free(v);
		return VMRES_ENOMEM;
	}
	for (size_t i = 0; i < n_res && rc == 0; i++) {
		const struct vmres_resource *r = &old->res[i];
		struct change *ci = &c[n];

		if (r->kind != VMRES_RES_ADDR || mapped[i] == old->mapped[i])
			continue;
		*ci = (struct change){.op = mapped[i] ? CHANGE_MAP : CHANGE_UNMAP,
				      .res_index = (unsigned int)i};
		v->mapped[i] = mapped[i];
		fresh[n] = use_sysalloc(m, r) && !reservation_held(m, r, old->rec->dev.owner);
		rc = prepare_addr(m, old, ci);
		if (rc)
			break;
		if (ci->sa_step)
			vmres_sysalloc_move_commit(m->sa, &ci->mv, &v->res[i]);
		placements(old, v, ci);
		n++;
	}
	if (rc == 0) {
		rc = state_next(m, idx, old, v, ALL_SPACES, &next);
		built = rc == 0;
	}
	for (; rc == 0 && k < n; k++)
		rc = listen(old->rec, &c[k], LISTEN_PREPARE);
	if (rc) {
		/* Undo in reverse: the listeners that accepted, then new reservations. */
		for (size_t j = n; j-- > 0;) {
			listen(old->rec, &c[j], LISTEN_ABORT);
			if (fresh[j])
				(void)vmres_sysalloc_release(m->sa, &v->res[c[j].res_index],
							     old->rec->dev.owner);
		}
		if (built)
			state_discard(m, next, v);
		else
			view_free(v);
	} else {
		publish(m, next, m->state->views[idx], NULL);
		for (k = 0; k < n; k++)
			listen(v->rec, &c[k], LISTEN_COMMIT);
	}
	free(c);
	free(fresh);
	return rc;
}

int vmres_devmgr_set_mapped(struct vmres_devmgr *m, uint32_t instance, const bool *mapped,
			    size_t n_res)
{
	int rc;

	if (!m || (!mapped && n_res))
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = set_mapped_locked(m, instance, mapped, n_res);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_with_sysalloc(struct vmres_devmgr *m,
			       int (*fn)(void *ctx, struct vmres_sysalloc *sa), void *ctx)
{
	int rc;

	if (!m || !fn)
		return VMRES_EINVAL;
	if (!m->sa)
		return VMRES_ESTATE;
	pthread_mutex_lock(&m->lock);
	rc = fn(ctx, m->sa);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the attached sysalloc, one call under the writer lock ---- */

/* Lock @p m for a call on its sysalloc: 0, or VMRES_EINVAL / VMRES_ESTATE. */
static int sysalloc_lock(struct vmres_devmgr *m)
{
	if (!m)
		return VMRES_EINVAL;
	if (!m->sa)
		return VMRES_ESTATE;
	pthread_mutex_lock(&m->lock);
	return 0;
}

int vmres_devmgr_alloc(struct vmres_devmgr *m, const struct vmres_request *reqs, size_t n_reqs,
		       uint64_t owner, struct vmres_resource *out, size_t out_cap, size_t *n_out,
		       struct vmres_sysalloc_error *err)
{
	int rc = sysalloc_lock(m);

	if (rc)
		return rc;
	rc = vmres_sysalloc_alloc(m->sa, reqs, n_reqs, owner, out, out_cap, n_out, err);
	pthread_mutex_unlock(&m->lock);
	if (rc == VMRES_EFULL && reqs && out_cap < requested_resources(reqs, n_reqs))
		vmres__fail(rc,
			    "output array too small: out_cap is %zu, the requests yield %llu "
			    "resources; pass an array of at least %llu",
			    out_cap, (unsigned long long)requested_resources(reqs, n_reqs),
			    (unsigned long long)requested_resources(reqs, n_reqs));
	return rc;
}

int vmres_devmgr_reserve(struct vmres_devmgr *m, const char *pool, uint64_t base, uint64_t size,
			 uint64_t align, uint64_t owner, const char *label,
			 struct vmres_resource *out)
{
	int rc = sysalloc_lock(m);

	if (rc)
		return rc;
	rc = vmres_sysalloc_reserve(m->sa, pool, base, size, align, owner, label, out);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_release(struct vmres_devmgr *m, const struct vmres_resource *r, uint64_t owner)
{
	int rc = sysalloc_lock(m);

	if (rc)
		return rc;
	rc = vmres_sysalloc_release(m->sa, r, owner);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_release_owner(struct vmres_devmgr *m, uint64_t owner)
{
	int rc = sysalloc_lock(m);

	if (rc)
		return rc;
	rc = vmres_sysalloc_release_owner(m->sa, owner);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- restore ---- */

static bool entry_before(const void *e, size_t i, const void *instance)
{
	return ((const struct vmres_devmgr_entry *)e)[i].instance < *(const uint32_t *)instance;
}

/* Is @p parent the id of one of the first @p i entries (ascending ids)? */
static bool earlier_entry(const struct vmres_devmgr_entry *e, size_t i, uint32_t parent)
{
	size_t k = vmres__lower_bound(e, 0, i, &parent, entry_before);

	return k < i && e[k].instance == parent;
}

static int check_entries(const struct vmres_devmgr_entry *e, size_t n, uint32_t next_id)
{
	if (!e && n)
		return VMRES_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct vmres_devmgr_entry *x = &e[i];
		int rc;

		if (check_device(x->dev) || x->instance == 0 ||
		    (i && x->instance <= e[i - 1].instance) || (next_id && x->instance >= next_id))
			return VMRES_EINVAL;
		rc = check_resource_list(x->res, x->n_res);
		if (rc)
			return rc;
		if (x->parent != VMRES_DEVMGR_NO_PARENT && !earlier_entry(e, i, x->parent))
			return VMRES_EPARENT;
	}
	return 0;
}

/* The bus of @p space holding the mapped ranges of the @p n views. */
static int bus_of_views(struct vmres_devmgr *m, struct dm_view *const *views, size_t n, int space,
			struct vmres__bus_map **out)
{
	struct vmres__bus_map *s;
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		k += view_ranges(views[i], space);
	rc = vmres__bus_map_alloc(&m->cache, k, &s);
	if (rc)
		return rc;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dm_view *v = views[i];

		for (size_t j = 0; j < v->n_res; j++) {
			const struct vmres_resource *r = &v->res[j];

			if (!v->mapped[j] || space_index(r->u.addr.space) != space)
				continue;
			s->entries[1 + k++] = entry_of(v->rec, r, j);
		}
	}
	qsort(s->entries + 1, k, sizeof(*s->entries), cmp_entry);
	rc = vmres__bus_map_index(s); /* sorted: only VMRES_EOVERLAP can fail */
	if (rc) {
		vmres__bus_map_free(&m->cache, s);
		return rc;
	}
	*out = s;
	return 0;
}

int vmres_devmgr_restore(struct vmres_devmgr *m, const struct vmres_devmgr_entry *e, size_t n,
			 uint32_t next_id)
{
	struct dm_state *st;
	size_t built = 0;
	int rc;

	if (!m)
		return VMRES_EINVAL;
	rc = check_entries(e, n, next_id);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	rc = VMRES_ESTATE;
	if (m->next_id != 1 || m->state->n)
		goto out;
	rc = VMRES_ENOMEM;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->views = malloc((n + 1) * sizeof(*st->views)))) {
		free(st);
		goto out;
	}
	for (; built < n; built++) {
		const struct vmres_devmgr_entry *x = &e[built];
		struct dm_rec *rec = dm_rec_new(x->dev);
		struct dm_view *v = NULL;

		if (rec) {
			rec->instance = x->instance;
			v = vmres__dm_view_new(x->instance, x->parent, rec, x->res, x->mapped,
					       x->n_res);
		}
		if (!v) {
			free(rec);
			break;
		}
		for (size_t j = 0; j < v->n_res; j++) /* flags of other kinds: ignored */
			v->mapped[j] = v->mapped[j] && v->res[j].kind == VMRES_RES_ADDR;
		st->views[built] = v;
	}
	st->n = built;
	if (built == n) {
		rc = bus_of_views(m, st->views, n, PIO, &st->bus[PIO]);
		if (!rc) {
			rc = bus_of_views(m, st->views, n, MMIO, &st->bus[MMIO]);
			if (rc)
				vmres__bus_map_free(&m->cache, st->bus[PIO]);
		}
	}
	if (rc) {
		for (size_t i = 0; i < built; i++) {
			free(st->views[i]->rec);
			view_free(st->views[i]);
		}
		free(st->views);
		free(st);
		goto out;
	}
	m->next_id = next_id;
	publish(m, st, NULL, NULL);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_next_id(struct vmres_devmgr *m, uint32_t *next_id)
{
	if (!m || !next_id)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	*next_id = m->next_id;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- dispatch: the hot path ---- */

/*
 * A write to a range with notify regions (kvmres.h): if one matches as KVM's
 * ioeventfd would (the write starts at its offset, has its length unless that
 * is 0, and carries its data if it matches on data), signal its eventfd and
 * tell the caller to keep the write from the device. Out of line: only such
 * ranges come here. Inside the read-side section.
 */
static __attribute__((noinline)) bool notify_hit(const struct vmres__notify_slot *slot,
						 uint64_t off, unsigned int size, uint64_t value)
{
	const struct vmres__notify_tab *t = vmres__rcu_load(slot->tab);
	uint64_t one = 1;

	for (size_t i = 0; t && i < t->n; i++) {
		const struct vmres__notify *n = &t->e[i];

		if (n->offset != off || (n->len && n->len != size) ||
		    (n->match && n->data != value))
			continue;
		/* An eventfd write fails only when its counter would overflow, and
		 * then the reader has a wake-up pending anyway. */
		ssize_t done = write(n->fd, &one, sizeof(one));

		(void)done;
		return true;
	}
	return false;
}

/* Inlined into each caller, where space is a constant (and, for single accesses,
 * the only branch left on the hit path is hit or miss). */
static inline __attribute__((always_inline)) void
access_one(struct vmres_devmgr *m, const struct dm_state *st, int space, uint64_t addr,
	   unsigned int size, bool is_write, uint8_t *data, void *caller)
{
	const struct vmres__bus_entry *e;
	uint64_t off;

	/* space is a constant in each caller: ports go through the direct table. */
	if (space == PIO)
		e = vmres__bus_find_pio(st->bus[PIO], &st->delta[PIO], (uint16_t)addr, size,
					      &off);
	else
		e = vmres__bus_find(st->bus[space], &st->delta[space], addr, size, &off);
	if (__builtin_expect(e != NULL, 1)) {
		if (is_write) {
			uint64_t value = vmres__le_load(data, size);

			if (__builtin_expect(!e->notify, 1) ||
			    !notify_hit(e->notify, off, size, value))
				vmres__entry_write(e, caller, off, addr, size, value);
		} else {
			vmres__le_store(data, size, vmres__entry_read(e, caller, off, addr, size));
		}
	} else {
		vmres__count_miss(&m->miss[space], addr, is_write);
		if (!is_write)
			vmres__le_store(data, size, UINT64_MAX);
	}
}

/* MMIO lengths 3, 5, 6, 7: pieces of 4, 2, 1 bytes at ascending addresses. Out of
 * line, so that the common path keeps its registers. Inside a read-side section.
 * A piece that starts past 2^64 - 1 has no address: it misses (counted at the
 * last address, UINT64_MAX) instead of wrapping around to the device at 0. */
static __attribute__((noinline)) void mmio_split(struct vmres_devmgr *m, uint64_t phys_addr,
						 uint32_t len, bool is_write, uint8_t *data,
						 void *caller)
{
	uint32_t done = 0;

	for (uint32_t piece = 4; piece; piece >>= 1) {
		if (!(len & piece))
			continue;
		if (phys_addr + done < phys_addr) {
			vmres__count_miss(&m->miss[MMIO], UINT64_MAX, is_write);
			if (!is_write)
				vmres__le_store(data + done, piece, UINT64_MAX);
		} else {
			access_one(m, vmres__rcu_load(m->state), MMIO, phys_addr + done, piece,
				   is_write, data + done, caller);
		}
		done += piece;
	}
}

/* The entry points with and without a caller inline the same code, so that
 * neither pays a call for the other. */
static inline __attribute__((always_inline)) int mmio(struct vmres_devmgr *m, uint64_t phys_addr,
						      uint32_t len, bool is_write, uint8_t *data,
						      void *caller)
{
	int rc;

	if (__builtin_expect(!m || !data, 0))
		return VMRES_EINVAL;
	if (__builtin_expect(len - 1 >= 8, 0))
		return VMRES_EACCESS;
	rc = vmres__rcu_reader();
	if (rc)
		return rc;
	vmres__read_lock();
	if (__builtin_expect(vmres__valid_size(len), 1))
		access_one(m, vmres__rcu_load(m->state), MMIO, phys_addr, len, is_write, data,
			   caller);
	else
		mmio_split(m, phys_addr, len, is_write, data, caller);
	vmres__read_unlock();
	return 0;
}

int vmres_devmgr_mmio(struct vmres_devmgr *m, uint64_t phys_addr, uint32_t len, bool is_write,
		      uint8_t *data)
{
	return mmio(m, phys_addr, len, is_write, data, NULL);
}

int vmres_devmgr_mmio_ctx(struct vmres_devmgr *m, uint64_t phys_addr, uint32_t len, bool is_write,
			  uint8_t *data, void *caller)
{
	return mmio(m, phys_addr, len, is_write, data, caller);
}

int vmres_devmgr_mmio_access(struct vmres_devmgr *m, uint64_t addr, uint8_t *data, uint32_t len,
			     bool is_write, void *caller)
{
	return mmio(m, addr, len, is_write, data, caller);
}

/* rep ins/outs: count accesses to the same port; the table is read again for
 * each, so a device that moves itself is found at its new place. Out of line,
 * as mmio_split(). Inside a read-side section. */
static __attribute__((noinline)) void pio_rep(struct vmres_devmgr *m, uint16_t port, bool is_write,
					      uint8_t size, uint32_t count, uint8_t *data,
					      void *caller)
{
	for (uint32_t i = 0; i < count; i++)
		access_one(m, vmres__rcu_load(m->state), PIO, port, size, is_write,
			   data + (size_t)i * size, caller);
}

static inline __attribute__((always_inline)) int pio(struct vmres_devmgr *m, uint16_t port,
						     bool is_write, uint8_t size, uint32_t count,
						     uint8_t *data, void *caller)
{
	int rc;

	if (__builtin_expect(!m || !data, 0))
		return VMRES_EINVAL;
	if (__builtin_expect(!vmres__valid_size(size) || count == 0, 0))
		return VMRES_EACCESS;
	rc = vmres__rcu_reader();
	if (rc)
		return rc;
	vmres__read_lock();
	if (__builtin_expect(count == 1, 1))
		access_one(m, vmres__rcu_load(m->state), PIO, port, size, is_write, data, caller);
	else
		pio_rep(m, port, is_write, size, count, data, caller);
	vmres__read_unlock();
	return 0;
}

int vmres_devmgr_pio(struct vmres_devmgr *m, uint16_t port, bool is_write, uint8_t size,
		     uint32_t count, uint8_t *data)
{
	return pio(m, port, is_write, size, count, data, NULL);
}

int vmres_devmgr_pio_ctx(struct vmres_devmgr *m, uint16_t port, bool is_write, uint8_t size,
			 uint32_t count, uint8_t *data, void *caller)
{
	return pio(m, port, is_write, size, count, data, caller);
}

int vmres_devmgr_pio_access(struct vmres_devmgr *m, uint16_t port, uint8_t *data, uint8_t size,
			    uint32_t count, bool is_write, void *caller)
{
	return pio(m, port, is_write, size, count, data, caller);
}
