/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the device manager's source files share (devmgr.c: states, writers and
 * dispatch; devmgr_table.c: lookups, iteration and dumps).
 *
 * struct dm_rec is the part of a device that lives from register to release: the
 * copy of its struct vmres_device that bus entries point at. struct dm_view is
 * one immutable version of a device's table entry (parent, resources, which
 * address resources are mapped); struct dm_state one immutable version of the
 * whole table. See devmgr.c for how they are published and retired.
 */
#ifndef VMRES_DEVMGR_INT_H
#define VMRES_DEVMGR_INT_H

#include "bus_int.h"

#include <pthread.h>
#include <stdlib.h>

#include <vmres/devmgr.h>
#include <vmres/sysalloc.h>

enum { PIO = 0, MMIO = 1, N_SPACES = 2 };
#define ALL_SPACES ((1u << PIO) | (1u << MMIO))

struct dm_rec {
	struct vmres_device dev; /* dev.name points at name; NULL read/write replaced */
	char name[VMRES_DEVICE_NAME_MAX];
	uint32_t instance;
	/* Writers only (under the lock): the listeners of address resources, by
	 * index (vmres_devmgr_set_listener()); n_listeners may be below n_res. */
	struct dm_listener *listeners;
	size_t n_listeners;
};

struct dm_listener {
	const struct vmres_devmgr_listener *ops; /* NULL: none */
	void *ctx;
};

struct dm_view {
	uint32_t instance;
	uint32_t parent;
	struct dm_rec *rec;
	size_t n_res;
	bool *mapped; /* n_res flags, after res[] */
	struct vmres_resource res[];
};

struct dm_state {
	struct vmres__bus_snap *bus[N_SPACES];
	size_t n;
	struct dm_view **views; /* sorted by instance */
	/* Filled when the state is retired: */
	struct rcu_head rcu;
	struct vmres_devmgr *m;
	bool free_bus[N_SPACES];
	struct dm_view *dead_view;
	struct dm_rec *dead_rec;
};

struct vmres_devmgr {
	/* RCU-published; alone in its cache line, which every exit reads and
	 * only a publish writes. */
	struct dm_state *state;
	_Alignas(64) pthread_mutex_t lock; /* serializes writers and the sysalloc */
	struct vmres_sysalloc *sa;
	uint32_t next_id;
	uint64_t pending;      /* retired states not yet freed (atomic) */
	unsigned int sa_flags; /* vmres_sysalloc_move_prepare() flags: the policy */
	vmres_devmgr_msi_fn msi_fn;
	void *msi_ctx;
	struct vmres__snap_cache cache;
	struct vmres__miss_stats miss[N_SPACES];
};

/* A view of @p n_res resources (copied); @p mapped NULL: every address resource
 * mapped. NULL when out of memory. */
struct dm_view *vmres__dm_view_new(uint32_t instance, uint32_t parent, struct dm_rec *rec,
				   const struct vmres_resource *res, const bool *mapped,
				   size_t n_res);
struct dm_view *vmres__dm_view_copy(const struct dm_view *v);

static inline void view_free(struct dm_view *v)
{
	free(v);
}

/* Index of @p instance in @p st->views, or SIZE_MAX. */
static inline size_t find_index(const struct dm_state *st, uint32_t instance)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->views[mid]->instance < instance)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->n && st->views[lo]->instance == instance ? lo : SIZE_MAX;
}

/* PIO, MMIO, or -1 for another value. */
static inline int space_index(enum vmres_space space)
{
	return space == VMRES_SPACE_PIO ? PIO : space == VMRES_SPACE_MMIO ? MMIO : -1;
}

#endif /* VMRES_DEVMGR_INT_H */
