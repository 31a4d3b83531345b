/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file kvmres.h
 * @brief What a VMM keeps per BAR that must follow it: notify regions
 * (ioeventfds) and host memory (memory slots).
 *
 * A virtio notify register is served by an ioeventfd, so that a guest kick
 * costs no exit to user space; a BAR backed by host memory is a memory slot.
 * Both are tied to the address where the guest put the BAR. This module
 * keeps them there: for every address resource it serves it installs the
 * device manager's listener (vmres_devmgr_set_listener()), so a guest-driven
 * move, map or unmap changes them in the same transaction as the bus and the
 * allocator:
 *
 * @verbatim
 *   change           prepare (may refuse)         commit            abort
 *   move, mapped     assign at new; new slot      deassign old;     deassign new;
 *                    at new (another number)      delete old slot   delete new slot
 *   map              assign; slot at base         -                 deassign; delete
 *   unmap            deassign; delete slot        -                 assign; slot again
 *   move, unmapped   -                            record the base   -
 * @endverbatim
 *
 * A prepare step that fails undoes the steps before it, so a refused change
 * leaves KVM and this module's record as they were (the caller of the move
 * gets the code). A move whose new range overlaps the old one (possible only
 * for a resource aligned below its size) cannot have both placements at once
 * (KVM refuses overlapping slots): prepare then takes the old ones down first
 * and puts them back if a later step fails.
 *
 * Commit and abort cannot fail by contract; the system calls they make
 * (deassign, delete a slot) can, in principle, when the host is out of
 * memory. Such a failure is counted (struct vmres_kvmres_info.undo_failures)
 * and leaves the old registration in KVM: a kick at the old address still
 * signals, nothing is lost.
 *
 * Backends: the KVM one (vmres_kvmres_backend_kvm_new(): KVM_IOEVENTFD and
 * KVM_SET_USER_MEMORY_REGION on a VM, through the system-call seam of irq.h),
 * or the VMM's own (vmres_kvmres_backend_new(): e.g. uc_mem_map_ptr() and
 * uc_mem_unmap() for Unicorn). Whatever the backend, the bus serves the
 * notify regions too: a write that reaches dispatch and matches a region (as
 * KVM would match it) signals the eventfd instead of reaching the device. That
 * is how a backend without ioeventfds serves them, and it covers the moment of
 * a move when the bus and KVM are not yet at the same place. Dispatch pays
 * for it only on writes to a range with notify regions (one load in the bus
 * entry's cache line and a branch otherwise).
 *
 * Lifetime: remove what a device has here (vmres_kvmres_notify_remove(),
 * vmres_kvmres_mem_detach()) before unregistering it, and free this object
 * before the device manager; vmres_devmgr_update() is not reported to
 * listeners, so re-add after it. The listener is this module's: a resource
 * that already has another listener is refused (VMRES_ESTATE).
 *
 * Cost: every call and every listener step is O(r) for the r regions of the
 * resource plus O(k) for the k resources served, one system call per region
 * and slot changed. Memory: about 64 bytes per region, 128 per resource.
 *
 * Context: every function may be called from any thread, also from a device
 * callback (they take the device manager's writer lock, as its writers do);
 * not from a listener or the MSI notifier.
 */
#ifndef VMRES_KVMRES_H
#define VMRES_KVMRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/common.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque: the BAR-tied resources of one VM, kept in step with one device manager. */
struct vmres_kvmres;
/** Opaque: how they are installed (KVM, or the VMM's own). */
struct vmres_kvmres_backend;
/** The device manager (devmgr.h). */
struct vmres_devmgr;
/** The system-call seam (irq.h). */
struct vmres_irq_kvm_sys;

/** One ioeventfd at an absolute address, as a backend installs it. */
struct vmres_kvmres_ioevent {
	enum vmres_space space; /**< PIO or MMIO */
	uint64_t addr;		/**< where the write must start */
	uint32_t len;		/**< 1, 2, 4 or 8; 0: any length (no data match) */
	bool match;		/**< signal only when the write carries @c data */
	uint64_t data;		/**< the value matched */
	int fd;			/**< the eventfd */
};

/** One memory slot, as a backend installs it. */
struct vmres_kvmres_mem_map {
	uint32_t slot; /**< its number */
	uint64_t gpa;  /**< guest-physical address (the BAR's base) */
	uint64_t size; /**< bytes (the BAR's size) */
	void *host;    /**< the host memory */
	bool readonly; /**< guest writes exit instead */
};

/** Version of struct vmres_kvmres_backend_ops this header describes. */
#define VMRES_KVMRES_BACKEND_OPS_VERSION 1

/**
 * A backend's operations, each returning 0 or a negative VMRES_E* code; a
 * failed call must leave nothing behind. They run under the device manager's
 * writer lock. An operation left NULL is not needed by the backend: without
 * @c notify_assign the bus alone serves the notify regions; without
 * @c mem_map memory cannot be attached (VMRES_ENOTSUP).
 */
struct vmres_kvmres_backend_ops {
	unsigned int version; /**< VMRES_KVMRES_BACKEND_OPS_VERSION */
	/** install an ioeventfd (KVM: VMRES_EEXIST for one already there) */
	int (*notify_assign)(void *ctx, const struct vmres_kvmres_ioevent *ev);
	/** remove one that notify_assign installed */
	int (*notify_deassign)(void *ctx, const struct vmres_kvmres_ioevent *ev);
	/** map host memory at a guest address */
	int (*mem_map)(void *ctx, const struct vmres_kvmres_mem_map *mm);
	/** undo mem_map (the same description) */
	int (*mem_unmap)(void *ctx, const struct vmres_kvmres_mem_map *mm);
	/** release the backend's context; may be NULL */
	void (*destroy)(void *ctx);
};

/**
 * vmres_kvmres_backend_new() - wrap a backend of the VMM's own.
 * @param ops the operations (not copied: a static const table).
 * @param ctx their first argument.
 * @param out receives the backend.
 * @return 0; VMRES_EINVAL for a NULL @p ops or @p out, or one of a pair
 *   (assign/deassign, map/unmap) without the other; VMRES_EVERSION;
 *   VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_kvmres_backend_new(const struct vmres_kvmres_backend_ops *ops, void *ctx,
			     struct vmres_kvmres_backend **out);

/**
 * vmres_kvmres_backend_kvm_new() - the KVM backend of one VM: KVM_IOEVENTFD
 * (KVM_IOEVENTFD_FLAG_PIO for port ranges, DATAMATCH for a data match,
 * DEASSIGN to remove) and KVM_SET_USER_MEMORY_REGION (size 0 deletes a slot;
 * KVM_MEM_READONLY for read-only memory). Only the seam's ioctl is used.
 * @param vm_fd the VM (not closed by vmres).
 * @param sys the system-call seam (irq.h), copied; NULL for the real calls.
 * @param out receives the backend.
 * @return 0; VMRES_EINVAL for a negative @p vm_fd, a NULL @p out or a seam
 *   without ioctl; VMRES_EVERSION for an unknown seam version; VMRES_ENOMEM.
 *   Its operations return VMRES_ESYS (errno kept) when an ioctl fails,
 *   VMRES_EEXIST for an ioeventfd that collides with one registered, and
 *   VMRES_EMISALIGNED for memory not on 4 KiB pages.
 * Context: any thread.
 */
int vmres_kvmres_backend_kvm_new(int vm_fd, const struct vmres_irq_kvm_sys *sys,
				 struct vmres_kvmres_backend **out);

/**
 * vmres_kvmres_backend_free() - free a backend that no vmres_kvmres took.
 * @param be the backend, or NULL.
 * Context: any thread.
 */
void vmres_kvmres_backend_free(struct vmres_kvmres_backend *be);

/** Version of struct vmres_kvmres_opts understood by this build. */
#define VMRES_KVMRES_OPTS_VERSION 1

/**
 * Where memory slot numbers come from: an ID pool of the device manager's
 * sysalloc (@c slot_pool, taken with owner @c slot_owner), else the numbers
 * [@c slot_first, @c slot_first + @c slot_count). A memory-backed resource
 * holds one number, two during a move. Numbers below the range are the
 * VMM's (its RAM).
 */
struct vmres_kvmres_opts {
	unsigned int version;  /**< VMRES_KVMRES_OPTS_VERSION */
	const char *slot_pool; /**< an ID pool's name, or NULL */
	uint64_t slot_owner;   /**< owner of the numbers taken from @c slot_pool */
	uint32_t slot_first;   /**< without a pool: the first number */
	uint32_t slot_count;   /**< without a pool: how many (0: no memory) */
};

/** Initializer: no slot numbers (notify regions only). */
#define VMRES_KVMRES_OPTS_INIT                                                                     \
	{                                                                                          \
		.version = VMRES_KVMRES_OPTS_VERSION, .slot_pool = NULL, .slot_owner = 0,          \
		.slot_first = 0, .slot_count = 0                                                   \
	}

/**
 * vmres_kvmres_new() - keep BAR-tied resources in step with @p m.
 * @param m the device manager (not owned; it must outlive the object).
 * @param be the backend; owned by the object on success.
 * @param opts NULL for VMRES_KVMRES_OPTS_INIT's.
 * @param out receives the object.
 * @return 0; VMRES_EINVAL for a NULL @p m, @p be or @p out, or a pool name
 *   that is not text; VMRES_EVERSION for unknown options; VMRES_ESTATE for a
 *   slot pool without a sysalloc attached to @p m; VMRES_EOVERFLOW for a
 *   range of numbers past 2^32; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_kvmres_new(struct vmres_devmgr *m, struct vmres_kvmres_backend *be,
		     const struct vmres_kvmres_opts *opts, struct vmres_kvmres **out);

/**
 * vmres_kvmres_free() - remove everything still installed (ioeventfds,
 * slots, slot numbers, the listeners and the bus's notify regions of devices
 * still registered), wait until no dispatch can read a notify table, and free
 * the object and its backend.
 * @param k the object, or NULL.
 * Context: any thread; not from a device callback; before vmres_devmgr_free().
 */
void vmres_kvmres_free(struct vmres_kvmres *k);

/** A notify region: a write to one place of an address resource signals @c fd. */
struct vmres_kvmres_notify {
	uint32_t instance;	/**< the device */
	unsigned int res_index; /**< its address resource (a BAR) */
	uint64_t offset;	/**< from the resource's base */
	uint32_t len;		/**< 1, 2, 4 or 8; 0: a write of any size */
	bool match;		/**< only writes that carry @c data (needs a length) */
	uint64_t data;		/**< the value, below 2^(8 len) */
	int fd;			/**< an eventfd (not owned, not closed) */
};

/**
 * vmres_kvmres_notify_add() - serve a notify region: installed with the
 * backend at base + offset while the resource is mapped, and on the bus.
 * @param k the object.
 * @param n the region (copied).
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL   NULL pointer; a length not 0, 1, 2, 4 or 8; a match
 *                  without a length or with data wider than it; a negative fd;
 *   VMRES_EDEVICE  no such device;
 *   VMRES_ENOENT   not an address resource;
 *   VMRES_ERANGE   the region does not lie inside the resource;
 *   VMRES_EEXIST   it collides with a region of the resource (same offset,
 *                  and a length or data that KVM could not tell apart);
 *   VMRES_ESTATE   the resource has a listener that is not this module's;
 *   the backend's code (KVM: VMRES_EEXIST for a collision with another
 *                  ioeventfd of the VM, VMRES_ESYS);
 *   VMRES_ENOMEM.
 * Context: see the file comment. O(r + k).
 */
int vmres_kvmres_notify_add(struct vmres_kvmres *k, const struct vmres_kvmres_notify *n);

/**
 * vmres_kvmres_notify_remove() - stop serving a region added with exactly
 * this description.
 * @param k the object.
 * @param n the region.
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL pointer;
 *   VMRES_ENOENT for a region not served; the backend's code (KVM:
 *   VMRES_ESYS); VMRES_ENOMEM. Once the device is unregistered, only the
 *   record (and the backend's registration) is removed.
 * Context: see the file comment. O(r + k).
 */
int vmres_kvmres_notify_remove(struct vmres_kvmres *k, const struct vmres_kvmres_notify *n);

/**
 * vmres_kvmres_mem_attach() - back address resource @p res_index of a device
 * (its whole size) by @p host: a memory slot at its base while it is mapped,
 * following it when it moves.
 * @param k the object.
 * @param instance the device.
 * @param res_index an MMIO address resource.
 * @param host the memory (not owned), at least the resource's size.
 * @param readonly whether guest writes exit instead of writing @p host.
 * @param slot NULL, or receives the slot number in use now (it changes on
 *   each mapped move).
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL @p k or @p host;
 *   VMRES_EDEVICE; VMRES_ENOENT; VMRES_EKIND for a PIO resource; VMRES_EEXIST
 *   if it is backed already; VMRES_ESTATE as for vmres_kvmres_notify_add();
 *   VMRES_ENOTSUP for a backend without memory or an object without slot
 *   numbers; VMRES_ENOSPC when the numbers are used up (or the pool's code);
 *   the backend's code (KVM: VMRES_EMISALIGNED, VMRES_ESYS); VMRES_ENOMEM.
 * Context: see the file comment. O(k).
 */
int vmres_kvmres_mem_attach(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index,
			    void *host, bool readonly, uint32_t *slot);

/**
 * vmres_kvmres_mem_detach() - delete the resource's slot and give its number back.
 * @param k the object.
 * @param instance the device.
 * @param res_index the resource.
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL @p k; VMRES_ENOENT
 *   if it is not backed; the backend's code (KVM: VMRES_ESYS).
 * Context: see the file comment. O(k).
 */
int vmres_kvmres_mem_detach(struct vmres_kvmres *k, uint32_t instance, unsigned int res_index);

/** Figures of vmres_kvmres_get_info(). */
struct vmres_kvmres_info {
	size_t resources;	/**< address resources served */
	size_t regions;		/**< notify regions */
	size_t memory;		/**< memory-backed resources */
	uint64_t undo_failures; /**< failed deassigns and deletes in commit or abort */
};

/**
 * vmres_kvmres_get_info() - the counts above.
 * @param k the object.
 * @param out receives them.
 * @return 0; VMRES_EINVAL for a NULL pointer.
 * Context: see the file comment.
 */
int vmres_kvmres_get_info(struct vmres_kvmres *k, struct vmres_kvmres_info *out);

/**
 * vmres_kvmres_dump_str() - the record as text, one resource per line and its
 * regions and memory below it, in the order they were added:
 *
 *     dev 2 res 0 mmio 0xfe000000 size 0x4000 mapped
 *       notify +0x3000 len 2 fd 7
 *       notify +0x3004 len 4 data 0x1 fd 8
 *       mem slot 9 size 0x4000 rw
 *
 * @param k the object.
 * @param out receives a NUL-terminated string; free it with free().
 * @return 0; VMRES_EINVAL for a NULL pointer; VMRES_ENOMEM.
 * Context: see the file comment.
 */
int vmres_kvmres_dump_str(struct vmres_kvmres *k, char **out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_KVMRES_H */
