/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device manager. The whole table is one immutable struct dm_state (the
 * devices in instance-id order, each an immutable struct dm_view of its
 * resources, and the two bus snapshots), published through m->state with RCU.
 * A writer, holding m->lock, builds the next state from the current one (sharing
 * every view and bus snapshot it does not change), publishes it with one pointer
 * store and retires the old state with call_rcu; the retired state records what
 * only it referenced (a replaced view, a changed bus snapshot, a removed device)
 * so that the callback frees exactly that, and releases the removed device.
 *
 * This file: the states, the writers and dispatch; devmgr_table.c has the
 * lookups, iteration and dumps; devmgr_kvm.c the struct kvm_run helper.
 */
#include "common_int.h"
#include "devmgr_int.h"

#include <stdlib.h>
#include <string.h>

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
			vmres__bus_snap_free(all ? NULL : &m->cache, st->bus[s]);
	if (all)
		for (size_t i = 0; i < st->n; i++)
			view_free(st->views[i]);
	free(st->views);
	free(st);
}

static void rec_free(struct dm_rec *rec)
{
	free(rec->labels);
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

static int cmp_entry(const void *a, const void *b)
{
	const struct vmres__bus_entry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The bus of @p space with @p rec's ranges (@p n_old of them in @p cur) replaced
 * by the mapped ranges of @p v, merged straight into the new snapshot. */
static int bus_rebuild(struct vmres_devmgr *m, const struct vmres__bus_snap *cur,
		       const struct dm_rec *rec, size_t n_old, const struct dm_view *v, int space,
		       struct vmres__bus_snap **out)
{
	size_t n_new = view_ranges(v, space), n = 0, a = 1, b = 0;
	struct vmres__bus_entry *mine, *all;
	struct vmres__bus_snap *s;
	int rc;

	mine = malloc((n_new + 1) * sizeof(*mine));
	if (!mine)
		return VMRES_ENOMEM;
	rc = vmres__bus_snap_alloc(&m->cache, cur->n - n_old + n_new, &s);
	if (rc) {
		free(mine);
		return rc;
	}
	for (size_t i = 0; v && i < v->n_res; i++) {
		const struct vmres_resource *r = &v->res[i];

		if (!v->mapped[i] || space_index(r->u.addr.space) != space)
			continue;
		mine[b++] = (struct vmres__bus_entry){
			.start = r->u.addr.base,
			.span = r->u.addr.size - 1,
			.opaque = rec->dev.opaque,
			.read = rec->dev.read,
			.write = rec->dev.write,
			.dev = &rec->dev,
			.range = (uint32_t)i,
		};
	}
	qsort(mine, n_new, sizeof(*mine), cmp_entry);
	/* Merge the old ranges of everyone else with the device's new ones. */
	all = s->entries + 1;
	b = 0;
	while (a <= cur->n || b < n_new) {
		if (a <= cur->n && cur->entries[a].dev == &rec->dev) {
			a++;
			continue;
		}
		if (n == s->n) /* the table and the bus disagree: never, but do not overrun */
			break;
		if (b >= n_new || (a <= cur->n && cur->entries[a].start < mine[b].start))
			all[n++] = cur->entries[a++];
		else
			all[n++] = mine[b++];
	}
	free(mine);
	rc = n == s->n && a > cur->n && b == n_new ? vmres__bus_snap_index(s) : VMRES_ECORRUPT;
	if (rc) {
		vmres__bus_snap_free(&m->cache, s);
		return rc;
	}
	*out = s;
	return 0;
}

/*
 * Build the state that follows @p cur when the device at index @p idx (SIZE_MAX:
 * a new device, appended) becomes @p v (NULL: removed). @p old_v is the view it
 * replaces (NULL for a new device). Nothing is published.
 */
static int state_next(struct vmres_devmgr *m, size_t idx, const struct dm_view *old_v,
		      struct dm_view *v, struct dm_state **out)
{
	const struct dm_state *cur = m->state;
	const struct dm_rec *rec = v ? v->rec : old_v->rec;
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
		if (rc || (!view_ranges(old_v, s) && !view_ranges(v, s)))
			continue;
		rc = bus_rebuild(m, cur->bus[s], rec, view_ranges(old_v, s), v, s, &st->bus[s]);
		if (rc)
			st->bus[s] = cur->bus[s];
	}
	if (rc) {
		for (int s = 0; s < N_SPACES; s++)
			if (st->bus[s] != cur->bus[s])
				vmres__bus_snap_free(&m->cache, st->bus[s]);
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
			vmres__bus_snap_free(&m->cache, st->bus[s]);
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
	if (base + (size - 1) < base)
		return VMRES_EOVERFLOW;
	if (space == VMRES_SPACE_PIO && base + (size - 1) > VMRES_BUS_PIO_LAST)
		return VMRES_ERANGE;
	return 0;
}

static int check_resources(const struct vmres_resource *res, size_t n_res)
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
	if (vmres__bus_snap_build(NULL, NULL, 0, &st->bus[PIO]))
		goto nomem;
	if (vmres__bus_snap_build(NULL, NULL, 0, &st->bus[MMIO])) {
		vmres__bus_snap_free(NULL, st->bus[PIO]);
		goto nomem;
	}
	vmres__snap_cache_init(&m->cache);
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
	vmres__snap_cache_destroy(&m->cache);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- writers ---- */

static int check_device(const struct vmres_device *dev)
{
	if (!dev || dev->version != VMRES_DEVICE_VERSION)
		return VMRES_EINVAL;
	if (dev->name && !vmres__name_valid(dev->name, VMRES_DEVICE_NAME_MAX))
		return VMRES_EINVAL;
	return 0;
}

/* The record of a checked @p dev (instance not set), or NULL when out of memory. */
static struct dm_rec *rec_new(const struct vmres_device *dev)
{
	struct dm_rec *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return NULL;
	rec->dev = *dev;
	if (dev->name)
		strcpy(rec->name, dev->name);
	rec->dev.name = rec->name;
	if (!rec->dev.read)
		rec->dev.read = vmres__read_ones;
	if (!rec->dev.write)
		rec->dev.write = vmres__write_drop;
	return rec;
}

int vmres_devmgr_register(struct vmres_devmgr *m, const struct vmres_device *dev, uint32_t parent,
			  const struct vmres_resource *res, size_t n_res, uint32_t *instance)
{
	struct dm_state *next;
	struct dm_rec *rec;
	struct dm_view *v;
	int rc;

	if (!m || !instance || check_device(dev))
		return VMRES_EINVAL;
	rc = check_resources(res, n_res);
	if (rc)
		return rc;
	rec = rec_new(dev);
	if (!rec)
		return VMRES_ENOMEM;

	pthread_mutex_lock(&m->lock);
	rc = VMRES_EPARENT;
	if (parent != VMRES_DEVMGR_NO_PARENT && find_index(m->state, parent) == SIZE_MAX)
		goto fail;
	rc = VMRES_EFULL;
	if (m->next_id == 0)
		goto fail;
	rec->instance = m->next_id;
	rc = VMRES_ENOMEM;
	v = vmres__dm_view_new(rec->instance, parent, rec, res, NULL, n_res);
	if (!v)
		goto fail;
	rc = state_next(m, SIZE_MAX, NULL, v, &next);
	if (rc) {
		view_free(v);
		goto fail;
	}
	m->next_id++;
	*instance = rec->instance;
	publish(m, next, NULL, NULL);
	pthread_mutex_unlock(&m->lock);
	return 0;
fail:
	pthread_mutex_unlock(&m->lock);
	free(rec);
	return rc;
}

int vmres_devmgr_unregister(struct vmres_devmgr *m, uint32_t instance)
{
	struct dm_state *cur, *next;
	struct dm_view *old;
	size_t idx;
	int rc;

	if (!m)
		return VMRES_EINVAL;
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
	rc = state_next(m, idx, old, NULL, &next);
	if (rc == 0)
		publish(m, next, old, old->rec);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/*
 * Build in @p next the state in which the view at @p idx is @p v (NULL: out of
 * memory); @p v is freed on failure. Nothing is published; @p m->lock held.
 */
static int stage_view(struct vmres_devmgr *m, size_t idx, struct dm_view *v, struct dm_state **next)
{
	int rc;

	if (!v)
		return VMRES_ENOMEM;
	rc = state_next(m, idx, m->state->views[idx], v, next);
	if (rc)
		view_free(v);
	return rc;
}

/* Replace the view at @p idx by @p v (consumed) and publish; @p m->lock held. */
static int replace_view(struct vmres_devmgr *m, size_t idx, struct dm_view *v)
{
	struct dm_state *next;
	int rc = stage_view(m, idx, v, &next);

	if (rc == 0)
		publish(m, next, m->state->views[idx], NULL);
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
	rc = check_resources(res, n_res);
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

/* The device's view and its address resource @p res_index; @p m->lock held. */
static int lookup_addr(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
		       size_t *idx, const struct dm_view **v)
{
	*idx = find_index(m->state, instance);
	if (*idx == SIZE_MAX)
		return VMRES_EDEVICE;
	*v = m->state->views[*idx];
	if (res_index >= (*v)->n_res || (*v)->res[res_index].kind != VMRES_RES_ADDR)
		return VMRES_ENOENT;
	return 0;
}

static bool use_sysalloc(const struct vmres_devmgr *m, const struct vmres_resource *r)
{
	return m->sa && r->pool[0];
}

/*
 * Reserve [base, +size) of @p r exactly, in the pool of r's space whose window
 * holds @p base: usually r's own pool, but the guest may move a range into
 * another window (firmware puts small 64-bit BARs below 4 GiB). On success the
 * name of that pool is written to @p pool_out.
 */
static int reserve(struct vmres_devmgr *m, const struct vmres_resource *r, uint64_t base,
		   uint64_t owner, char pool_out[VMRES_POOL_NAME_MAX], const char *label)
{
	char pool[VMRES_POOL_NAME_MAX];
	int rc;

	if (vmres_sysalloc_find_pool(m->sa, r->u.addr.space, base, pool))
		return VMRES_ERANGE;
	rc = vmres_sysalloc_reserve(m->sa, pool, base, r->u.addr.size, r->u.addr.align, owner,
				    label, NULL);
	if (rc)
		return rc;
	memcpy(pool_out, pool, VMRES_POOL_NAME_MAX);
	return 0;
}

/* The label of @p r's reservation in the attached sysalloc into @p label ("" if none). */
static void reserved_label(struct vmres_devmgr *m, const struct vmres_resource *r, uint64_t owner,
			   char label[VMRES_SYSALLOC_LABEL_MAX])
{
	struct vmres_sysalloc_alloc_info info;

	label[0] = '\0';
	if (vmres_sysalloc_find(m->sa, r->pool, r->u.addr.base, &info) == 0 &&
	    info.owner == owner && info.res.u.addr.base == r->u.addr.base && info.label)
		snprintf(label, VMRES_SYSALLOC_LABEL_MAX, "%s", info.label);
}

/* Room in @p rec for the label of every one of @p n_res resources. */
static int label_slots(struct dm_rec *rec, size_t n_res)
{
	char(*labels)[VMRES_SYSALLOC_LABEL_MAX];

	if (rec->n_labels >= n_res)
		return 0;
	labels = realloc(rec->labels, n_res * sizeof(*labels));
	if (!labels)
		return VMRES_ENOMEM;
	memset(labels + rec->n_labels, 0, (n_res - rec->n_labels) * sizeof(*labels));
	rec->labels = labels;
	rec->n_labels = n_res;
	return 0;
}

static int unreserve(struct vmres_devmgr *m, const struct vmres_resource *r, uint64_t owner)
{
	return vmres_sysalloc_release(m->sa, r, owner);
}

int vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			    uint64_t new_base)
{
	const struct vmres_resource *r;
	struct dm_state *next = NULL;
	const struct dm_view *old;
	struct dm_view *v;
	char label[VMRES_SYSALLOC_LABEL_MAX];
	uint64_t owner, align;
	bool self_overlap, mapped;
	size_t idx;
	int rc;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = lookup_addr(m, instance, res_index, &idx, &old);
	if (rc)
		goto out;
	r = &old->res[res_index];
	mapped = old->mapped[res_index];
	owner = old->rec->dev.owner;
	align = r->u.addr.align;
	rc = check_addr(r->u.addr.space, new_base, r->u.addr.size);
	if (rc == 0 && align > 1 && new_base % align)
		rc = VMRES_EMISALIGNED;
	if (rc || new_base == r->u.addr.base)
		goto out;
	rc = VMRES_ENOMEM;
	v = vmres__dm_view_copy(old);
	if (!v)
		goto out;
	v->res[res_index].u.addr.base = new_base;
	rc = stage_view(m, idx, v, &next);
	if (rc)
		goto out;
	if (mapped && use_sysalloc(m, r)) {
		/* Reserve the new range before giving up the old one, unless they share
		 * addresses (then release first, and take the old one back on failure).
		 * Either way an old range the sysalloc does not hold (a restore into
		 * another sysalloc) is no error: there is nothing to give up. */
		self_overlap = new_base <= r->u.addr.base + (r->u.addr.size - 1) &&
			       r->u.addr.base <= new_base + (r->u.addr.size - 1);
		reserved_label(m, r, owner, label); /* the moved reservation keeps it */
		if (self_overlap) {
			char back[VMRES_POOL_NAME_MAX];

			bool held = unreserve(m, r, owner) == 0;

			rc = reserve(m, r, new_base, owner, v->res[res_index].pool, label);
			if (rc && held)
				reserve(m, r, r->u.addr.base, owner, back, label);
		} else {
			rc = reserve(m, r, new_base, owner, v->res[res_index].pool, label);
			if (rc == 0)
				unreserve(m, r, owner);
		}
		if (rc) {
			state_discard(m, next, v);
			goto out;
		}
	}
	publish(m, next, m->state->views[idx], NULL);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Map or unmap address resource @p res_index (@p map says which). */
static int set_mapped(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index, bool map)
{
	const struct vmres_resource *r;
	struct dm_state *next;
	const struct dm_view *old;
	struct dm_view *v;
	size_t idx;
	int rc;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = lookup_addr(m, instance, res_index, &idx, &old);
	if (rc)
		goto out;
	rc = VMRES_ESTATE;
	if (old->mapped[res_index] == map)
		goto out;
	r = &old->res[res_index];
	if (!map && use_sysalloc(m, r)) {
		rc = label_slots(old->rec, old->n_res);
		if (rc)
			goto out;
	}
	rc = VMRES_ENOMEM;
	v = vmres__dm_view_copy(old);
	if (!v)
		goto out;
	v->mapped[res_index] = map;
	rc = stage_view(m, idx, v, &next);
	if (rc)
		goto out;
	if (use_sysalloc(m, r)) {
		struct dm_rec *rec = old->rec;
		uint64_t owner = rec->dev.owner;

		if (map) {
			rc = reserve(m, r, r->u.addr.base, owner, v->res[res_index].pool,
				     res_index < rec->n_labels ? rec->labels[res_index] : NULL);
		} else {
			reserved_label(m, r, owner, rec->labels[res_index]);
			rc = unreserve(m, r, owner);
		}
		if (rc) {
			state_discard(m, next, v);
			goto out;
		}
	}
	publish(m, next, m->state->views[idx], NULL);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index)
{
	return set_mapped(m, instance, res_index, false);
}

int vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index)
{
	return set_mapped(m, instance, res_index, true);
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

int vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			     const struct vmres_msi_msg *msg)
{
	struct dm_state *next;
	const struct dm_view *old;
	struct dm_view *v;
	size_t idx;
	int rc;

	if (!m || !msg)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	idx = find_index(m->state, instance);
	rc = VMRES_EDEVICE;
	if (idx == SIZE_MAX)
		goto out;
	old = m->state->views[idx];
	rc = VMRES_ENOENT;
	if (res_index >= old->n_res || old->res[res_index].kind != VMRES_RES_MSI)
		goto out;
	rc = VMRES_ENOMEM;
	v = vmres__dm_view_copy(old);
	if (!v)
		goto out;
	v->res[res_index].u.msi.msg = *msg;
	rc = stage_view(m, idx, v, &next);
	if (rc)
		goto out;
	if (m->msi_fn) {
		rc = m->msi_fn(m->msi_ctx, instance, res_index, old->res[res_index].u.msi.gsi, msg);
		if (rc) {
			state_discard(m, next, v);
			goto out;
		}
	}
	publish(m, next, m->state->views[idx], NULL);
out:
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

/* ---- restore ---- */

/* Is @p parent the id of one of the first @p i entries (ascending ids)? */
static bool earlier_entry(const struct vmres_devmgr_entry *e, size_t i, uint32_t parent)
{
	size_t lo = 0, hi = i;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e[mid].instance < parent)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < i && e[lo].instance == parent;
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
		rc = check_resources(x->res, x->n_res);
		if (rc)
			return rc;
		if (x->parent != VMRES_DEVMGR_NO_PARENT && !earlier_entry(e, i, x->parent))
			return VMRES_EPARENT;
	}
	return 0;
}

/* The bus of @p space holding the mapped ranges of the @p n views. */
static int bus_of_views(struct vmres_devmgr *m, struct dm_view *const *views, size_t n, int space,
			struct vmres__bus_snap **out)
{
	struct vmres__bus_snap *s;
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		k += view_ranges(views[i], space);
	rc = vmres__bus_snap_alloc(&m->cache, k, &s);
	if (rc)
		return rc;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dm_view *v = views[i];

		for (size_t j = 0; j < v->n_res; j++) {
			const struct vmres_resource *r = &v->res[j];

			if (!v->mapped[j] || space_index(r->u.addr.space) != space)
				continue;
			s->entries[1 + k++] = (struct vmres__bus_entry){
				.start = r->u.addr.base,
				.span = r->u.addr.size - 1,
				.opaque = v->rec->dev.opaque,
				.read = v->rec->dev.read,
				.write = v->rec->dev.write,
				.dev = &v->rec->dev,
				.range = (uint32_t)j,
			};
		}
	}
	qsort(s->entries + 1, k, sizeof(*s->entries), cmp_entry);
	rc = vmres__bus_snap_index(s); /* sorted: only VMRES_EOVERLAP can fail */
	if (rc) {
		vmres__bus_snap_free(&m->cache, s);
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
		struct dm_rec *rec = rec_new(x->dev);
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
				vmres__bus_snap_free(&m->cache, st->bus[PIO]);
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

/* Inlined into each caller, where space is a constant (and, for single accesses,
 * the only branch left on the hit path is hit or miss). */
static inline __attribute__((always_inline)) void access_one(struct vmres_devmgr *m,
							     const struct dm_state *st, int space,
							     uint64_t addr, unsigned int size,
							     bool is_write, uint8_t *data)
{
	const struct vmres__bus_entry *e;
	uint64_t off;

	/* space is a constant in each caller: ports go through the direct table. */
	if (space == PIO)
		e = vmres__bus_find_pio(st->bus[PIO], (uint16_t)addr, size, &off);
	else
		e = vmres__bus_find(st->bus[space], addr, size, &off);
	if (__builtin_expect(e != NULL, 1)) {
		if (is_write)
			e->write(e->opaque, e->range, off, addr, size, vmres__le_load(data, size));
		else
			vmres__le_store(data, size, e->read(e->opaque, e->range, off, addr, size));
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
						 uint32_t len, bool is_write, uint8_t *data)
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
				   is_write, data + done);
		}
		done += piece;
	}
}

int vmres_devmgr_mmio(struct vmres_devmgr *m, uint64_t phys_addr, uint32_t len, bool is_write,
		      uint8_t *data)
{
	if (__builtin_expect(!m || !data, 0))
		return VMRES_EINVAL;
	if (__builtin_expect(len - 1 >= 8, 0))
		return VMRES_EACCESS;
	if (__builtin_expect(!vmres__rcu_registered(), 0))
		return VMRES_ESTATE;
	vmres__read_lock();
	if (__builtin_expect(vmres__valid_size(len), 1))
		access_one(m, vmres__rcu_load(m->state), MMIO, phys_addr, len, is_write, data);
	else
		mmio_split(m, phys_addr, len, is_write, data);
	vmres__read_unlock();
	return 0;
}

/* rep ins/outs: count accesses to the same port; the table is read again for
 * each, so a device that moves itself is found at its new place. Out of line,
 * as mmio_split(). Inside a read-side section. */
static __attribute__((noinline)) void pio_rep(struct vmres_devmgr *m, uint16_t port, bool is_write,
					      uint8_t size, uint32_t count, uint8_t *data)
{
	for (uint32_t i = 0; i < count; i++)
		access_one(m, vmres__rcu_load(m->state), PIO, port, size, is_write,
			   data + (size_t)i * size);
}

int vmres_devmgr_pio(struct vmres_devmgr *m, uint16_t port, bool is_write, uint8_t size,
		     uint32_t count, uint8_t *data)
{
	if (__builtin_expect(!m || !data, 0))
		return VMRES_EINVAL;
	if (__builtin_expect(!vmres__valid_size(size) || count == 0, 0))
		return VMRES_EACCESS;
	if (__builtin_expect(!vmres__rcu_registered(), 0))
		return VMRES_ESTATE;
	vmres__read_lock();
	if (__builtin_expect(count == 1, 1))
		access_one(m, vmres__rcu_load(m->state), PIO, port, size, is_write, data);
	else
		pio_rep(m, port, is_write, size, count, data);
	vmres__read_unlock();
	return 0;
}
