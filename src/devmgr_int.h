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
#include "miss_int.h"
#include "util/search.h"

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
	/* Writers only: by index, the notify slot of an address resource that
	 * has had notify regions (NULL: never); each slot lives as long as the
	 * record, as the bus entries that point at it may. */
	struct vmres__notify_slot **notify;
	size_t n_notify;
};

/*
 * Notify regions (kvmres.h served by the bus): writes to one address range
 * that signal an eventfd instead of reaching the device. kvmres.c builds each
 * table (immutable once published, freed after a grace period); dispatch
 * reads it through the range's slot, inside its read-side section.
 */
struct vmres__notify {
	uint64_t offset; /* from the range's base: where the write must start */
	uint64_t data;	 /* the value a write must carry, if match */
	uint32_t len;	 /* 1, 2, 4 or 8; 0: a write of any size */
	bool match;	 /* compare data */
	int fd;		 /* the eventfd to signal */
};

struct vmres__notify_tab {
	struct rcu_head rcu;
	size_t n;
	struct vmres__notify e[];
};

struct vmres__notify_slot {
	struct vmres__notify_tab *tab; /* RCU-published; NULL: no region */
};

/*
 * For kvmres.c, which keeps its records under the manager's writer lock (its
 * listener calls come there too). Run @p fn(@p m, @p arg) under the lock and
 * return what it returns (VMRES_EINVAL for a NULL @p m).
 */
int vmres__devmgr_locked(struct vmres_devmgr *m, int (*fn)(struct vmres_devmgr *m, void *arg),
			 void *arg);

/* Under the lock: address resource @p res_index of @p instance and whether it is
 * mapped; its listener in @p l and @p ctx (NULL: none). VMRES_EDEVICE,
 * VMRES_ENOENT (not an address resource). */
int vmres__devmgr_range_locked(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			       struct vmres_resource *r, bool *mapped,
			       const struct vmres_devmgr_listener **l, void **ctx);

/* vmres_devmgr_set_listener() with the lock held. */
int vmres__devmgr_set_listener_locked(struct vmres_devmgr *m, uint32_t instance,
				      unsigned int res_index, const struct vmres_devmgr_listener *l,
				      void *ctx);

/* Under the lock: give the range a notify slot if it has none, publishing a
 * table whose bus entries point at it (nothing else changes); afterwards
 * vmres__devmgr_swap_notify_locked() cannot fail. 0, VMRES_EDEVICE,
 * VMRES_ENOENT, VMRES_ENOMEM. */
int vmres__devmgr_notify_slot_locked(struct vmres_devmgr *m, uint32_t instance,
				     unsigned int res_index);

/* Under the lock: publish @p tab (NULL: none) in the range's slot and return the
 * one it replaces, which readers may still use until a grace period has
 * passed. With no slot (the device is gone, or never had one), return @p tab
 * itself, unpublished. */
struct vmres__notify_tab *vmres__devmgr_swap_notify_locked(struct vmres_devmgr *m,
							   uint32_t instance,
							   unsigned int res_index,
							   struct vmres__notify_tab *tab);

/*
 * Asked by vmres__devmgr_register_vetted() under the writer lock, with the
 * device's resources (the requests allocated) and their mapped flags, before
 * anything is published: may change the flags of address ranges; nonzero
 * refuses the registration, which then changes nothing.
 */
typedef int (*vmres__devmgr_vet_fn)(void *ctx, const struct vmres_resource *res, bool *mapped,
				    size_t n);

/* vmres_devmgr_register_ex() without out parameters, asking @p vet before it
 * publishes: the same codes, and @p vet's. */
int vmres__devmgr_register_vetted(struct vmres_devmgr *m, const struct vmres_device *dev,
				  const struct vmres_devmgr_register_opts *opts,
				  uint32_t *instance, vmres__devmgr_vet_fn vet, void *vet_ctx);

/* The attached sysalloc (NULL: none); use it under the lock only. */
struct vmres_sysalloc *vmres__devmgr_sysalloc(struct vmres_devmgr *m);

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
	/* Each bus is a base map and a delta (bus_int.h); a state that changes
	 * only a delta shares the base with the state before it. */
	struct vmres__bus_map *bus[N_SPACES];
	struct vmres__bus_delta delta[N_SPACES];
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
	struct vmres__bus_map_cache cache;
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

static inline bool view_before(const void *views, size_t i, const void *instance)
{
	return ((struct dm_view *const *)views)[i]->instance < *(const uint32_t *)instance;
}

/* Index of @p instance in @p st->views, or SIZE_MAX. */
static inline size_t find_index(const struct dm_state *st, uint32_t instance)
{
	size_t lo = vmres__lower_bound(st->views, 0, st->n, &instance, view_before);

	return lo < st->n && st->views[lo]->instance == instance ? lo : SIZE_MAX;
}

/* PIO, MMIO, or -1 for another value. */
static inline int space_index(enum vmres_space space)
{
	return space == VMRES_SPACE_PIO ? PIO : space == VMRES_SPACE_MMIO ? MMIO : -1;
}

#endif /* VMRES_DEVMGR_INT_H */
