/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A deliberately simple model of the device manager (devmgr.h) without a system
 * allocator, for differential tests: an array of every device ever registered
 * (dead ones kept, marked), each with a copy of its resources and mapped flags.
 * The buses are not modelled separately: an address resolves by scanning every
 * live device's mapped ranges. Every call returns what the real one documents,
 * in the library's order of checks. O(devices x resources) per call.
 */
#ifndef VMRES_TEST_DEVMGR_MODEL_H
#define VMRES_TEST_DEVMGR_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <vmres/devmgr.h>

#define DM_MODEL_MAX_RES  4
#define DM_MODEL_MAX_DEVS 64

typedef unsigned __int128 dm_model_u128;

struct dm_model_dev {
	uint32_t instance, parent;
	bool live;
	bool silent;	  /* no read/write callbacks: hits read all ones */
	unsigned int tag; /* the caller's number for the device */
	char name[VMRES_DEVICE_NAME_MAX];
	uint64_t owner;
	size_t n_res;
	struct vmres_resource res[DM_MODEL_MAX_RES];
	bool mapped[DM_MODEL_MAX_RES];
};

struct dm_model {
	struct dm_model_dev dev[DM_MODEL_MAX_DEVS]; /* in registration order */
	size_t n;
	uint32_t next_id;
	uint64_t miss[2][2]; /* [PIO, MMIO][read, write] */
};

static inline void dm_model_init(struct dm_model *m)
{
	memset(m, 0, sizeof(*m));
	m->next_id = 1;
}

static inline struct dm_model_dev *dm_model_live(struct dm_model *m, uint32_t instance)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->dev[i].live && m->dev[i].instance == instance)
			return &m->dev[i];
	return NULL;
}

static inline int dm_model_check_addr(enum vmres_space space, uint64_t base, uint64_t size)
{
	if (space != VMRES_SPACE_PIO && space != VMRES_SPACE_MMIO)
		return VMRES_EINVAL;
	if (size == 0)
		return VMRES_ESIZE;
	if ((dm_model_u128)base + size - 1 > UINT64_MAX)
		return VMRES_EOVERFLOW;
	if (space == VMRES_SPACE_PIO && base + (size - 1) > 0xffff)
		return VMRES_ERANGE;
	return 0;
}

static inline int dm_model_check_resources(const struct vmres_resource *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vmres_resource *r = &res[i];
		int rc;

		if (!memchr(r->pool, '\0', sizeof(r->pool)))
			return VMRES_EINVAL;
		if (r->kind == VMRES_RES_ADDR) {
			rc = dm_model_check_addr(r->u.addr.space, r->u.addr.base, r->u.addr.size);
			if (rc)
				return rc;
		} else if (r->kind < VMRES_RES_ADDR || r->kind > VMRES_RES_ID) {
			return VMRES_EINVAL;
		}
	}
	return 0;
}

static inline bool dm_model_meet(const struct vmres_resource *a, const struct vmres_resource *b)
{
	return a->u.addr.space == b->u.addr.space &&
	       a->u.addr.base <= b->u.addr.base + (b->u.addr.size - 1) &&
	       b->u.addr.base <= a->u.addr.base + (a->u.addr.size - 1);
}

/*
 * Does address resource @p r meet a mapped range of a live device other than
 * @p skip_dev (all of its ranges if @p skip_res is SIZE_MAX, else that one only)?
 */
static inline bool dm_model_overlaps(const struct dm_model *m, const struct vmres_resource *r,
				     const struct dm_model_dev *skip_dev, size_t skip_res)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct dm_model_dev *d = &m->dev[i];

		if (!d->live || (d == skip_dev && skip_res == SIZE_MAX))
			continue;
		for (size_t k = 0; k < d->n_res; k++)
			if (d->mapped[k] && !(d == skip_dev && k == skip_res) &&
			    dm_model_meet(r, &d->res[k]))
				return true;
	}
	return false;
}

/* A new set of resources, all mapped: do they meet each other or another device? */
static inline bool dm_model_set_overlaps(const struct dm_model *m, const struct vmres_resource *res,
					 size_t n, const struct dm_model_dev *skip_dev)
{
	for (size_t i = 0; i < n; i++) {
		if (res[i].kind != VMRES_RES_ADDR)
			continue;
		if (dm_model_overlaps(m, &res[i], skip_dev, SIZE_MAX))
			return true;
		for (size_t j = 0; j < i; j++)
			if (res[j].kind == VMRES_RES_ADDR && dm_model_meet(&res[i], &res[j]))
				return true;
	}
	return false;
}

static inline void dm_model_set_res(struct dm_model_dev *d, const struct vmres_resource *res,
				    size_t n)
{
	d->n_res = n;
	for (size_t i = 0; i < n; i++) {
		d->res[i] = res[i];
		d->mapped[i] = res[i].kind == VMRES_RES_ADDR;
	}
}

static inline int dm_model_register(struct dm_model *m, const char *name, uint64_t owner,
				    uint32_t parent, const struct vmres_resource *res, size_t n,
				    unsigned int tag)
{
	struct dm_model_dev *d;
	int rc;

	if (name && strnlen(name, VMRES_DEVICE_NAME_MAX) == VMRES_DEVICE_NAME_MAX)
		return VMRES_EINVAL;
	rc = dm_model_check_resources(res, n);
	if (rc)
		return rc;
	if (parent != VMRES_DEVMGR_NO_PARENT && !dm_model_live(m, parent))
		return VMRES_EPARENT;
	if (dm_model_set_overlaps(m, res, n, NULL))
		return VMRES_EOVERLAP;
	d = &m->dev[m->n++];
	memset(d, 0, sizeof(*d));
	d->instance = m->next_id++;
	d->parent = parent;
	d->live = true;
	d->tag = tag;
	if (name)
		strcpy(d->name, name);
	d->owner = owner;
	dm_model_set_res(d, res, n);
	return 0;
}

static inline int dm_model_unregister(struct dm_model *m, uint32_t instance)
{
	struct dm_model_dev *d = dm_model_live(m, instance);

	if (!d)
		return VMRES_EDEVICE;
	for (size_t i = 0; i < m->n; i++)
		if (m->dev[i].live && m->dev[i].parent == instance)
			return VMRES_EPARENT;
	d->live = false;
	return 0;
}

static inline int dm_model_update(struct dm_model *m, uint32_t instance,
				  const struct vmres_resource *res, size_t n)
{
	struct dm_model_dev *d;
	int rc = dm_model_check_resources(res, n);

	if (rc)
		return rc;
	d = dm_model_live(m, instance);
	if (!d)
		return VMRES_EDEVICE;
	if (dm_model_set_overlaps(m, res, n, d))
		return VMRES_EOVERLAP;
	dm_model_set_res(d, res, n);
	return 0;
}

/* The live device and its address resource @p idx, or the error. */
static inline int dm_model_lookup_addr(struct dm_model *m, uint32_t instance, size_t idx,
				       struct dm_model_dev **out)
{
	struct dm_model_dev *d = dm_model_live(m, instance);

	if (!d)
		return VMRES_EDEVICE;
	if (idx >= d->n_res || d->res[idx].kind != VMRES_RES_ADDR)
		return VMRES_ENOENT;
	*out = d;
	return 0;
}

static inline int dm_model_move(struct dm_model *m, uint32_t instance, size_t idx, uint64_t base)
{
	struct dm_model_dev *d;
	struct vmres_resource moved;
	int rc = dm_model_lookup_addr(m, instance, idx, &d);

	if (rc)
		return rc;
	moved = d->res[idx];
	rc = dm_model_check_addr(moved.u.addr.space, base, moved.u.addr.size);
	if (rc)
		return rc;
	if (moved.u.addr.align > 1 && base % moved.u.addr.align)
		return VMRES_EMISALIGNED;
	if (base == moved.u.addr.base)
		return 0;
	moved.u.addr.base = base;
	if (d->mapped[idx] && dm_model_overlaps(m, &moved, d, idx))
		return VMRES_EOVERLAP;
	d->res[idx] = moved;
	return 0;
}

static inline int dm_model_set_mapped(struct dm_model *m, uint32_t instance, size_t idx, bool map)
{
	struct dm_model_dev *d;
	int rc = dm_model_lookup_addr(m, instance, idx, &d);

	if (rc)
		return rc;
	if (d->mapped[idx] == map)
		return VMRES_ESTATE;
	if (map && dm_model_overlaps(m, &d->res[idx], d, idx))
		return VMRES_EOVERLAP;
	d->mapped[idx] = map;
	return 0;
}

static inline int dm_model_reroute(struct dm_model *m, uint32_t instance, size_t idx,
				   const struct vmres_msi_msg *msg)
{
	struct dm_model_dev *d = dm_model_live(m, instance);

	if (!d)
		return VMRES_EDEVICE;
	if (idx >= d->n_res || d->res[idx].kind != VMRES_RES_MSI)
		return VMRES_ENOENT;
	d->res[idx].u.msi.msg = *msg;
	return 0;
}

/* The live device and range that hold every byte of [addr, addr + size - 1]. */
static inline bool dm_model_resolve(const struct dm_model *m, enum vmres_space space, uint64_t addr,
				    unsigned int size, const struct dm_model_dev **dev,
				    unsigned int *range)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct dm_model_dev *d = &m->dev[i];

		if (!d->live)
			continue;
		for (size_t k = 0; k < d->n_res; k++) {
			const struct vmres_resource *r = &d->res[k];

			if (!d->mapped[k] || r->u.addr.space != space || addr < r->u.addr.base ||
			    (dm_model_u128)addr + size - 1 >
				    (dm_model_u128)r->u.addr.base + r->u.addr.size - 1)
				continue;
			*dev = d;
			*range = (unsigned int)k;
			return true;
		}
	}
	return false;
}

#endif /* VMRES_TEST_DEVMGR_MODEL_H */
