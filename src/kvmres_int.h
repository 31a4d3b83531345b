/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What kvmres.c shares with the snapshot module: its record by description
 * (no file descriptor, no host pointer), and a memory attach that takes a
 * given slot number, so that a restored resource gets its slot back.
 */
#ifndef VMRES_KVMRES_INT_H
#define VMRES_KVMRES_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <vmres/kvmres.h>

/* One memory-backed resource of the record. */
struct vmres__kvmres_mem {
	uint32_t instance;
	unsigned int res_index;
	bool readonly;
	uint32_t slot;
};

/* Callbacks of vmres__kvmres_describe(); a non-zero return stops the walk. */
struct vmres__kvmres_walk {
	int (*notify)(void *ctx, const struct vmres_kvmres_notify *n);
	int (*mem)(void *ctx, const struct vmres__kvmres_mem *mem);
	void *ctx;
};

/* Every region and memory of @p k, resource by resource in the order they
 * were added (each resource's regions, then its memory), under the device
 * manager's writer lock. VMRES_EINVAL if @p k serves another manager than
 * @p m; else 0 or what a callback returned. */
int vmres__kvmres_describe(struct vmres_kvmres *k, struct vmres_devmgr *m,
			   const struct vmres__kvmres_walk *w);

/* vmres_kvmres_mem_attach() with slot number @p slot: taken from the numbers
 * if free, or, from a sysalloc pool, adopted if the pool holds it for the
 * object's owner and no resource of @p k has it (a restored allocation).
 * VMRES_EEXIST if the number is in use; else attach's codes. */
int vmres__kvmres_mem_attach_slot(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index,
				  void *host, bool readonly, uint32_t slot);

#endif /* VMRES_KVMRES_INT_H */
