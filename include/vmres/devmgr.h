/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file devmgr.h
 * @brief The device manager: the table of devices, their parents and resources,
 * the PIO and MMIO buses built from it, and the VM-exit dispatch entry points.
 *
 * A VMM registers each device (device.h) with the resources it was given (usually
 * by the system allocator, sysalloc.h); every address resource is mapped on the
 * bus of its space. The manager returns an instance id, the handle by which the
 * VMM, and the device itself from inside its own callbacks, later updates, moves
 * or unregisters it. Dispatch takes exactly what a KVM exit gives
 * (vmres_devmgr_pio() for KVM_EXIT_IO, vmres_devmgr_mmio() for KVM_EXIT_MMIO;
 * vmres_devmgr_kvm_exit() in devmgr_kvm.c takes the struct kvm_run). Their
 * _ctx forms (vmres_devmgr_kvm_exit_ctx() ...) also take a caller pointer, the
 * VMM's vCPU, which reaches every device callback that asks for it (device.h).
 *
 * The whole table (devices, resources, both buses) is one immutable snapshot
 * published with RCU (liburcu, "memb" flavour, read side inlined into vmres):
 *
 *     vCPU threads (any number)          writers (one at a time: writer mutex)
 *     dispatch: rcu_read_lock,           register / update / move / unregister:
 *       st = current snapshot              copy the table, change it, check it,
 *       search st's bus (B-tree, no        record the changed ranges in the
 *       branch on the data; then the       bus's delta, or build a new bus,
 *       delta of recent changes, if        publish it in one pointer store,
 *       any), call the device,             hand the old one (and removed
 *       rcu_read_unlock                    devices) to call_rcu
 *
 * So a vCPU sees the old table or the new one, never a mix and never a gap in a
 * range that was mapped before and after a change; dispatch never blocks and
 * never takes a lock that a writer holds; writers never wait for readers.
 *
 * What a vCPU thread must do: nothing. Its first dispatch registers it with
 * liburcu and its exit unregisters it (vmres_devmgr_thread_register() and
 * vmres_devmgr_thread_unregister() do either earlier, if a VMM prefers). With the
 * memb flavour a registered thread may block in KVM_RUN for as long as it likes
 * without holding up anyone. Threads that only register, update, query or dump
 * need not register (vmres registers them with liburcu for the length of the
 * call; a thread that writes often may register once to save that).
 *
 * Building with ThreadSanitizer: vmres then publishes with C11 atomics, calls
 * liburcu's (uninstrumented) read-side functions instead of inlining them, and
 * tells TSan about each grace period, so a VMM's TSan run needs no suppressions.
 *
 * Device callbacks run on the vCPU thread, inside the read-side section, with no
 * vmres lock held. From there a device may call every writer and query of this
 * header on its own manager (register, update, unregister, the move/map/unmap
 * handle calls, lookups, dumps): writers never wait for readers, so nothing can
 * deadlock; a writer may briefly wait for another writer's mutex. It must not call
 * vmres_devmgr_free(). A removed device's release callback runs after every
 * dispatch that might still be inside it has returned, on liburcu's call_rcu
 * thread (vmres_devmgr_free() runs the remaining ones on its caller's thread).
 *
 * Misses (no range holds every byte of an access, including accesses that
 * straddle a range's end) read as all ones and drop writes; they are counted
 * (vmres_devmgr_stats()) and are not errors.
 *
 * Cost: dispatch with no lock and no allocation, O(1) through the bus's bucket
 * table where devices are spread out and O(log d) in a cluster (bus.h);
 * vmres_devmgr_pio() goes through a direct table of the 65536 ports instead,
 * O(1); every write is O(d) (copy on write: d pointers), but a refused one
 * O(log d + log n) (see "Guest-driven changes" below). A bus is a base map plus
 * a delta of up to 4 added and 4 dropped ranges: a write that changes a few
 * ranges (a move, a map or unmap) only writes a new delta, and vCPUs keep
 * the base in their caches; a range that goes back to its place in the base
 * leaves the delta, and the write that would overflow it builds a new base
 * (the bus's ranges and index, and for the PIO bus its port table). An empty
 * delta costs dispatch one load and a branch; a full one, up to 8 compares.
 * Measured figures: docs/BENCHMARKS.md;
 * lookups by id or address O(log d); iteration and dumps O(d).
 * Memory, every cache included:
 * - per device: its table entry and a copy of its resources;
 * - per mapped range, in its bus (PIO or MMIO): the published copy of the bus,
 *   about 130 bytes at worst (a 64-byte entry, about 9 bytes of index keys, the
 *   bucket table), plus up to 2 retired copies kept for reuse (the largest
 *   ones the manager has retired, of either bus): 73 bytes per range of that
 *   bus each (entry and keys; bucket tables are not kept);
 * - the port table: 512 bytes per 256-port page in use (a PC: about 5 KiB);
 * - per snapshot: the two buses' deltas, about 600 bytes.
 * The bench line devmgr-mem measures the heap growth of d one-range MMIO
 * devices after moves, all of the above included: about 540 bytes per device
 * at d = 4096, of which 3 x 73 are bus copies (figures: docs/BENCHMARKS.md).
 */
#ifndef VMRES_DEVMGR_H
#define VMRES_DEVMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <vmres/common.h>
#include <vmres/device.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque device manager. */
struct vmres_devmgr;
/** The system allocator (sysalloc.h). */
struct vmres_sysalloc;
/** Which request of a batch failed (sysalloc.h). */
struct vmres_sysalloc_error;

/** Parent argument of a device without a parent; instance ids are never 0. */
#define VMRES_DEVMGR_NO_PARENT 0u

/** Most resources one device may hold. */
#define VMRES_DEVMGR_MAX_RES 4096u

/**
 * Deepest level of the tree the dumps nest (a device without a parent is at
 * level 0): a device below it is shown at this level, right after its ancestor
 * there, naming its parent (vmres_devmgr_dump(), vmres_devmgr_dump_json()).
 */
#define VMRES_DEVMGR_DUMP_DEPTH 16u

/** A device as the table reports it. */
struct vmres_devmgr_info {
	uint32_t instance;		  /**< its instance id (never 0) */
	uint32_t parent;		  /**< parent's id, or VMRES_DEVMGR_NO_PARENT */
	char name[VMRES_DEVICE_NAME_MAX]; /**< its name */
	void *opaque;			  /**< vmres_device.opaque */
	uint64_t owner;			  /**< vmres_device.owner */
	size_t n_res;			  /**< number of resources */
};

/** Counters of the exits the manager has handled (misses only: hits are not counted). */
struct vmres_devmgr_stats {
	uint64_t devices;	   /**< devices registered now */
	uint64_t pio_miss_reads;   /**< PIO reads answered with all ones */
	uint64_t pio_miss_writes;  /**< PIO writes dropped */
	uint64_t mmio_miss_reads;  /**< MMIO reads answered with all ones */
	uint64_t mmio_miss_writes; /**< MMIO writes dropped */
};

/**
 * Iteration callback, vmres_devmgr_foreach(): one device, its resources
 * (info->n_res of them) and, for each, whether it is mapped on its bus (address
 * resources only; always false for the others). Return 0 to go on, anything else
 * to stop (vmres_devmgr_foreach() returns it). The arrays are only valid during
 * the call. The callback may call any function of this header except
 * vmres_devmgr_free(); changes it makes are not seen by the running iteration.
 */
typedef int (*vmres_devmgr_fn)(void *ctx, const struct vmres_devmgr_info *info,
			       const struct vmres_resource *res, const bool *mapped);

/**
 * MSI notifier, vmres_devmgr_reroute_msi(): told the new message of MSI resource
 * @p res_index of @p instance, whose GSI is @p gsi (the interrupt module re-routes
 * KVM here). Return 0, or a negative VMRES_E* code to refuse: the table is then
 * left unchanged and the code returned to the caller of reroute.
 * Called with the writer mutex held: it must not call writers of this manager.
 */
typedef int (*vmres_devmgr_msi_fn)(void *ctx, uint32_t instance, unsigned int res_index,
				   uint32_t gsi, const struct vmres_msi_msg *msg);

/**
 * vmres_devmgr_thread_register() - register the calling thread for dispatch now
 * rather than at its first dispatch (optional; same as
 * vmres_bus_thread_register(): registering twice does nothing, the thread's exit
 * unregisters it).
 * @return 0; VMRES_ENOMEM if the thread's exit hook cannot be set up.
 * Context: any thread; not from a device callback.
 */
int vmres_devmgr_thread_register(void);

/**
 * vmres_devmgr_thread_unregister() - unregister the calling thread before it
 * exits (optional: its exit does it; its next dispatch registers it again).
 * @return 0; VMRES_ESTATE if the thread is not registered.
 * Context: the registered thread, outside any dispatch.
 */
int vmres_devmgr_thread_unregister(void);

/**
 * vmres_devmgr_new() - create an empty device manager.
 * @param sa the system allocator that guest-driven moves reserve in and release
 *   to (not owned; it must outlive the manager), or NULL: the manager never
 *   allocates and moves ranges only on its buses. Once attached, the allocator
 *   must only be used under this manager's writer lock: through
 *   vmres_devmgr_register_ex(), vmres_devmgr_alloc(), vmres_devmgr_release()
 *   and the others below, or vmres_devmgr_with_sysalloc() for anything else.
 * @param out receives the manager; free it with vmres_devmgr_free().
 * @return 0; VMRES_EINVAL for a NULL @p out; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_devmgr_new(struct vmres_sysalloc *sa, struct vmres_devmgr **out);

/**
 * vmres_devmgr_free() - destroy the manager. Waits for pending deferred frees
 * (their release callbacks), then releases every device still registered,
 * children before parents, on the calling thread. Does not touch the sysalloc.
 * @param m the manager, or NULL.
 * Context: no dispatch or other call on @p m may be running or follow; not from a
 * device or release callback.
 */
void vmres_devmgr_free(struct vmres_devmgr *m);

/**
 * vmres_devmgr_register() - add a device and map its address resources.
 * Address resources (VMRES_RES_ADDR) are mapped on the PIO or MMIO bus; the
 * others are only recorded. The device is reachable by dispatch once this
 * returns; *@p instance is written just before that, so a device may keep a
 * pointer to the place where its id lands and use it from its first callback.
 * @param m the manager.
 * @param dev the device (copied; version VMRES_DEVICE_VERSION, or 1).
 * @param parent the parent's instance id, or VMRES_DEVMGR_NO_PARENT.
 * @param res its resources (copied); may be NULL when @p n_res is 0.
 * @param n_res how many, at most VMRES_DEVMGR_MAX_RES.
 * @param instance receives the new instance id (ids are never reused).
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL    a NULL pointer, an unknown device version, a device
 *                   that sets callbacks of both styles (device.h), a name of
 *                   VMRES_DEVICE_NAME_MAX bytes or more, a device name or a
 *                   resource's pool name that is not text (common.h: valid
 *                   UTF-8, no control characters), a resource of an unknown
 *                   kind or space, or more than VMRES_DEVMGR_MAX_RES;
 *   VMRES_ESIZE     an address resource of size 0;
 *   VMRES_EOVERFLOW an address resource that passes the end of the 64-bit space;
 *   VMRES_ERANGE    a PIO range past port 0xFFFF;
 *   VMRES_EOVERLAP  an address range that overlaps a mapped one (of any device,
 *                   or another of the same device);
 *   VMRES_EPARENT   no device @p parent;
 *   VMRES_EFULL     the instance ids are exhausted;
 *   VMRES_ENOMEM.
 * Context: any thread, also a device callback; serialized with other writers;
 * never waits for readers. O(d).
 */
int vmres_devmgr_register(struct vmres_devmgr *m, const struct vmres_device *dev, uint32_t parent,
			  const struct vmres_resource *res, size_t n_res, uint32_t *instance);

/** Version of struct vmres_devmgr_register_opts understood by this build. */
#define VMRES_DEVMGR_REGISTER_OPTS_VERSION 1

/**
 * How vmres_devmgr_register_ex() registers a device: under which parent, with
 * which resources, and which of its address ranges start on the bus. Start
 * from VMRES_DEVMGR_REGISTER_OPTS_INIT (no parent, no resources, every range
 * mapped) and set what differs; members added later will default to what
 * older callers get.
 *
 * The device's resources are @c res (what the VMM already holds) followed by
 * what @c reqs yield, in request order (an MSI request of count c yields c):
 *
 *     res[0] ... res[n_res - 1] | reqs[0]'s ... reqs[n_reqs - 1]'s resources
 *     index 0                     index n_res
 *
 * These indexes are the res_index of vmres_devmgr_map_range() and the others.
 * A resource whose flag is false is registered with decode off: recorded with
 * its base, off the bus (it may overlap a mapped range, as after restore), and
 * mapped later with vmres_devmgr_map_range() or vmres_devmgr_set_mapped(). A
 * range allocated from @c reqs is reserved in the sysalloc whether or not it
 * is mapped (one owner per address, see below).
 */
struct vmres_devmgr_register_opts {
	unsigned int version;		  /**< VMRES_DEVMGR_REGISTER_OPTS_VERSION */
	uint32_t parent;		  /**< the parent's id, or VMRES_DEVMGR_NO_PARENT */
	const struct vmres_resource *res; /**< resources given (copied); NULL if n_res is 0 */
	size_t n_res;			  /**< how many */
	/** requests allocated now, in the attached sysalloc, with the device's owner */
	const struct vmres_request *reqs;
	size_t n_reqs; /**< how many (0: nothing is allocated, no sysalloc needed) */
	/** one flag per resource, by index as above: true for on the bus; NULL: all */
	const bool *mapped;
	/** flags in @c mapped; resources at this index and beyond are mapped */
	size_t n_mapped;
};

/** Initializer: version set, no parent, no resources, every range mapped. */
#define VMRES_DEVMGR_REGISTER_OPTS_INIT                                                            \
	{                                                                                          \
		.version = VMRES_DEVMGR_REGISTER_OPTS_VERSION, .parent = VMRES_DEVMGR_NO_PARENT,   \
		.res = NULL, .n_res = 0, .reqs = NULL, .n_reqs = 0, .mapped = NULL, .n_mapped = 0  \
	}

/**
 * vmres_devmgr_register_ex() - vmres_devmgr_register() with its options: the
 * device's resources may be allocated by the call, and ranges may start off
 * the bus (struct vmres_devmgr_register_opts).
 *
 * The requests are allocated in the attached sysalloc with owner
 * dev->owner, under the writer lock, and the device is registered with the
 * resulting resources in the same locked section: a guest-driven change can
 * come neither between the two nor find them out of step. Each allocated
 * resource carries its pool and alignment and the device its owner, so later
 * moves keep the allocator and the bus in step. All or nothing: if any step
 * fails, what the call allocated is released again (in reverse order, which
 * leaves the sysalloc exactly as it was) and nothing changed.
 *
 *     struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
 *     bool mapped[1] = {false};          // BAR 0 starts with decode off
 *     o.reqs = reqs, o.n_reqs = 2;       // BAR 0 (mmio32), 2 MSI vectors
 *     o.mapped = mapped, o.n_mapped = 1;
 *     rc = vmres_devmgr_register_ex(m, &nic, &o, &id, res, 3, &n, &err);
 *
 * @param m the manager.
 * @param dev the device (copied; version VMRES_DEVICE_VERSION, or 1); its
 *   owner owns what the requests allocate.
 * @param opts the options, or NULL for VMRES_DEVMGR_REGISTER_OPTS_INIT's.
 * @param instance receives the new instance id, as for vmres_devmgr_register().
 * @param out NULL, or receives the device's resources (given and allocated, by
 *   index as in struct vmres_devmgr_register_opts).
 * @param out_cap room in @p out (0 when @p out is NULL).
 * @param n_out NULL, or receives the device's number of resources.
 * @param err NULL, or receives the index and code of the request that failed
 *   (written only when the sysalloc refused a request, as by
 *   vmres_sysalloc_alloc()).
 * @return 0, or (nothing changed, nothing allocated, the out-parameters
 *   untouched):
 *   VMRES_EINVAL    what vmres_devmgr_register() refuses with it; an unknown
 *                   options version; a NULL @c reqs or @c mapped with a
 *                   non-zero count; a NULL @p out with @p out_cap > 0; more
 *                   than VMRES_DEVMGR_MAX_RES resources in all; more flags
 *                   than resources;
 *   VMRES_EFULL     @p out_cap smaller than the number of resources; or the
 *                   instance ids are exhausted;
 *   VMRES_ESTATE    requests, and no sysalloc is attached;
 *   a request's code, as vmres_sysalloc_alloc() returns it (EINVAL, EPOOL,
 *                   EKIND, ESIZE, EALIGN, EMISALIGNED, ERANGE, EOVERLAP,
 *                   ENOSPC, EOVERFLOW, ENOMEM), with @p err set;
 *   VMRES_ESIZE, VMRES_EOVERFLOW, VMRES_ERANGE  a bad given address resource;
 *   VMRES_EOVERLAP  a mapped range that overlaps a mapped one (an allocated
 *                   range too: the bus may hold ranges that the sysalloc does
 *                   not, e.g. registered without a pool);
 *   VMRES_EPARENT   no device @c parent;
 *   VMRES_ENOMEM.
 * Context: as vmres_devmgr_register(). O(d + k log n) for k resources allocated.
 */
int vmres_devmgr_register_ex(struct vmres_devmgr *m, const struct vmres_device *dev,
			     const struct vmres_devmgr_register_opts *opts, uint32_t *instance,
			     struct vmres_resource *out, size_t out_cap, size_t *n_out,
			     struct vmres_sysalloc_error *err);

/**
 * vmres_devmgr_unregister() - remove a device and unmap its ranges.
 * Dispatches already inside the device may still complete; its release callback
 * runs after they have returned. Its resources are not given back to the sysalloc
 * (vmres_devmgr_unregister_release() does that too).
 * @param m the manager.
 * @param instance the device.
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL @p m; VMRES_EDEVICE for
 *   an unknown id; VMRES_EPARENT if the device still has children; VMRES_ENOMEM.
 * Context: as vmres_devmgr_register(); a device may unregister itself.
 */
int vmres_devmgr_unregister(struct vmres_devmgr *m, uint32_t instance);

/**
 * vmres_devmgr_unregister_release() - vmres_devmgr_unregister(), and in the
 * same locked section give back to the attached sysalloc each of the device's
 * resources that it holds for the device's owner, as the table has it now
 * (after any moves). Resources without a pool, and ones the sysalloc does not
 * hold for that owner (released already, or allocated elsewhere), are left;
 * other resources of the same owner are not touched
 * (vmres_devmgr_release_owner() gives back all of an owner's).
 * @param m the manager.
 * @param instance the device.
 * @return 0, or (nothing changed, nothing released): as
 *   vmres_devmgr_unregister(); VMRES_ESTATE if no sysalloc is attached.
 * Context: as vmres_devmgr_unregister().
 */
int vmres_devmgr_unregister_release(struct vmres_devmgr *m, uint32_t instance);

/**
 * vmres_devmgr_update() - replace a device's resources by @p res, atomically.
 * Every address resource of @p res is mapped (ranges not in @p res are unmapped);
 * a vCPU sees either the old set or the new one. The sysalloc is not touched.
 * @param m the manager.
 * @param instance the device.
 * @param res the new resources (copied); may be NULL when @p n_res is 0.
 * @param n_res how many.
 * @return 0, or (nothing changed): VMRES_EDEVICE for an unknown id, and the codes
 *   of vmres_devmgr_register() for the resources (EINVAL, also for a pool name
 *   that is not text; ESIZE, EOVERFLOW, ERANGE, EOVERLAP, ENOMEM).
 * Context: as vmres_devmgr_register().
 */
int vmres_devmgr_update(struct vmres_devmgr *m, uint32_t instance, const struct vmres_resource *res,
			size_t n_res);

/*
 * Guest-driven changes: vmres_devmgr_move_range(), vmres_devmgr_map_range(),
 * vmres_devmgr_unmap_range(), vmres_devmgr_set_mapped() and
 * vmres_devmgr_reroute_msi(). Each is one transaction under the writer lock:
 * first every check (the device, the resource, the bus, the attached sysalloc:
 * O(log d + log n), so a refusal is cheap and builds nothing), then the memory
 * and the allocator step, then one publish. A refused or failed call changes
 * nothing: not the bus, not the table, not the sysalloc.
 *
 * One owner per address. An address resource that names a pool is reserved
 * in the attached sysalloc (owner = vmres_device.owner) from the moment it is
 * mapped or moved until the VMM releases it, whether or not it is on the bus:
 * unmapping (the guest turned decode off) takes the range off the bus and
 * keeps its reservation; moving an unmapped range moves its reservation, so
 * no other device can be given those addresses meanwhile; mapping puts it on
 * the bus where it is reserved (reserving it first if the sysalloc does not
 * hold it, as after a restore into another allocator). A resource without a
 * pool (or a manager without a sysalloc) is only moved on its bus.
 * vmres_devmgr_register_ex() makes such a link by construction: it allocates
 * a device's requests with its owner and registers what they yield, mapped
 * or not, in one locked section.
 */

/** Where guest-driven moves may put a range that names a pool. */
enum vmres_devmgr_policy {
	/** Only inside a pool's window (the default): elsewhere VMRES_ERANGE. */
	VMRES_DEVMGR_STRICT = 0,
	/**
	 * Follow the guest, as hardware does, for a VMM that lets the guest
	 * assign its BARs: a range outside every pool's window is accepted when
	 * it meets no other range of the system allocator's guest pool of its
	 * space (vmres_sysalloc_add_guest_pool(), where the VMM reserves its RAM
	 * and reserved regions), and is recorded there as guest-placed, so no one
	 * else is given that space; a later move or release gives it back.
	 * Without a guest pool it is VMRES_DEVMGR_STRICT. A range that straddles a
	 * window's edge is refused either way (VMRES_ERANGE).
	 */
	VMRES_DEVMGR_FOLLOW_GUEST = 1,
};

/**
 * vmres_devmgr_set_policy() - choose where guest-driven moves and maps may put
 * a range (enum vmres_devmgr_policy). Ranges already placed stay where they are.
 * @param m the manager.
 * @param policy VMRES_DEVMGR_STRICT or VMRES_DEVMGR_FOLLOW_GUEST.
 * @return 0; VMRES_EINVAL for NULL @p m or an unknown policy.
 * Context: any thread; serialized with writers.
 */
int vmres_devmgr_set_policy(struct vmres_devmgr *m, enum vmres_devmgr_policy policy);

/**
 * vmres_devmgr_get_policy() - the policy vmres_devmgr_set_policy() chose
 * (VMRES_DEVMGR_STRICT for a new manager), e.g. for a snapshot.
 * @param m the manager.
 * @param policy receives it.
 * @return 0; VMRES_EINVAL for a NULL pointer.
 * Context: any thread; serialized with writers.
 */
int vmres_devmgr_get_policy(struct vmres_devmgr *m, enum vmres_devmgr_policy *policy);

/** Where an address resource is, for its listener. */
struct vmres_devmgr_placement {
	uint64_t base; /**< first address */
	uint64_t size; /**< bytes */
	bool mapped;   /**< on its bus (decode on) */
};

/**
 * A listener on one address resource of one device (vmres_devmgr_set_listener()):
 * how a VMM moves what it keeps per BAR (its ioeventfds, KVM memory slots,
 * IOMMU mappings) in the same transaction as the bus and the allocator. Each
 * guest-driven change of the range (move, map, unmap, set_mapped) calls
 * @c prepare with the old and new placement once every check of vmres has
 * passed and its memory is taken; if it returns 0 the change is made and
 * @c commit follows, after the new bus is published; if it refuses (a
 * negative VMRES_E* code, returned to the caller of the change) nothing
 * changes. @c abort follows an accepted prepare when a later step of the same
 * change refused (another range of a set_mapped call, its listener): undo what
 * prepare did. Every member may be NULL. They run under the manager's writer
 * lock: they must not call this manager's writers. The placements are valid
 * during the call only.
 */
struct vmres_devmgr_listener {
	unsigned int version; /**< VMRES_DEVMGR_LISTENER_VERSION */
	/** may refuse: 0 or a negative VMRES_E* code */
	int (*prepare)(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to);
	/** the change is made; cannot fail */
	void (*commit)(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to);
	/** the change that prepare accepted is not made */
	void (*abort)(void *ctx, uint32_t instance, unsigned int res_index,
		      const struct vmres_devmgr_placement *from,
		      const struct vmres_devmgr_placement *to);
};

/** Version of struct vmres_devmgr_listener understood by this build. */
#define VMRES_DEVMGR_LISTENER_VERSION 1

/**
 * vmres_devmgr_set_listener() - attach @p l to address resource @p res_index
 * of a device (replacing any), or with NULL @p l remove it. It stays until
 * replaced or the device is unregistered; vmres_devmgr_update() keeps it for
 * the index. Only guest-driven changes (move, map, unmap, set_mapped) are
 * reported, not register, update or unregister.
 * @param m the manager.
 * @param instance the device.
 * @param res_index index of an address resource in the device's resources.
 * @param l the listener (not copied: it must outlive its use), or NULL.
 * @param ctx passed to every call of @p l.
 * @return 0, or (nothing changed): VMRES_EINVAL for NULL @p m or a wrong
 *   version; VMRES_EDEVICE; VMRES_ENOENT if @p res_index is not an address
 *   resource; VMRES_ENOMEM.
 * Context: any thread, also a device callback; serialized with writers. O(log d).
 */
int vmres_devmgr_set_listener(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			      const struct vmres_devmgr_listener *l, void *ctx);

/**
 * vmres_devmgr_move_range() - move address resource @p res_index of a device to
 * @p new_base (size unchanged): the guest reprogrammed a BAR.
 * Its reservation moves with it, mapped or not: to the pool of the resource's
 * space whose window holds the new range (usually its own pool, but the guest
 * may move a range into another window, as firmware puts small 64-bit BARs
 * below 4 GiB; the resource then names that pool), keeping its label and
 * alignment; the new range may overlap the old one. If the sysalloc does not
 * hold the old range for the owner, the new range is reserved afresh. A mapped
 * range moves on its bus in the same publish. Moving to the current base does
 * nothing and succeeds.
 * @param m the manager.
 * @param instance the device.
 * @param res_index index of an address resource in the device's resources.
 * @param new_base the new first address.
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL      NULL @p m;
 *   VMRES_EDEVICE     no device @p instance;
 *   VMRES_ENOENT      @p res_index out of range or not an address resource;
 *   VMRES_EOVERFLOW   the moved range would pass the end of the 64-bit space;
 *   VMRES_ERANGE      outside every pool's window (see enum
 *                     vmres_devmgr_policy), or past port 0xFFFF;
 *   VMRES_EMISALIGNED @p new_base not a multiple of the resource's align;
 *   VMRES_EOVERLAP    onto another mapped range (of any device, this one's
 *                     other ranges included) or another allocation;
 *   VMRES_ENOMEM.
 * Context: as vmres_devmgr_register(); meant for a device's own write
 * callback. O(log d + log n) to refuse, O(d) to publish.
 */
int vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			    uint64_t new_base);

/**
 * vmres_devmgr_unmap_range() - take address resource @p res_index off its bus
 * (the guest disabled decoding). Its reservation stays: see "One owner per
 * address" above.
 * @param m the manager.
 * @param instance the device.
 * @param res_index index of an address resource in the device's resources.
 * @return 0, or (nothing changed): VMRES_EINVAL, VMRES_EDEVICE, VMRES_ENOENT as
 *   vmres_devmgr_move_range(); VMRES_ESTATE if already unmapped; VMRES_ENOMEM.
 * Context: as vmres_devmgr_move_range().
 */
int vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index);

/**
 * vmres_devmgr_map_range() - put address resource @p res_index on its bus at
 * its base, where it is reserved (or is reserved now, if the sysalloc does
 * not hold it).
 * @param m the manager.
 * @param instance the device.
 * @param res_index index of an address resource in the device's resources.
 * @return 0, or (nothing changed): the codes of vmres_devmgr_move_range();
 *   VMRES_ESTATE if already mapped.
 * Context: as vmres_devmgr_move_range().
 */
int vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index);

/**
 * vmres_devmgr_set_mapped() - map and unmap several address resources of one
 * device in one publish: resource i is to be mapped iff @p mapped[i] (the
 * flags of resources that are not addresses are ignored). Each range mapped
 * is reserved as by vmres_devmgr_map_range(); all of it happens, or none.
 * @param m the manager.
 * @param instance the device.
 * @param mapped one flag per resource of the device.
 * @param n_res how many: the device's number of resources.
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL pointer or another
 *   count; VMRES_EDEVICE; VMRES_ERANGE, VMRES_EOVERLAP as
 *   vmres_devmgr_map_range(); VMRES_ENOMEM.
 * Context: as vmres_devmgr_move_range().
 */
int vmres_devmgr_set_mapped(struct vmres_devmgr *m, uint32_t instance, const bool *mapped,
			    size_t n_res);

/** One device for vmres_devmgr_restore(): a table entry as it was saved. */
struct vmres_devmgr_entry {
	uint32_t instance;		  /**< its instance id (>= 1) */
	uint32_t parent;		  /**< an earlier entry's id, or VMRES_DEVMGR_NO_PARENT */
	const struct vmres_device *dev;	  /**< the device (copied, as for register) */
	const struct vmres_resource *res; /**< its resources (copied); NULL if n_res is 0 */
	const bool *mapped;		  /**< n_res flags, or NULL: all address ranges mapped */
	size_t n_res;			  /**< how many, at most VMRES_DEVMGR_MAX_RES */
};

/**
 * vmres_devmgr_restore() - fill a manager that has never registered a device with
 * a whole table (a snapshot being restored): each entry under its own instance
 * id, with its parent, resources and mapped flags, published at once.
 *
 * The buses are built from the mapped address ranges only; an unmapped range
 * keeps its base (for vmres_devmgr_map_range()) and may overlap anything. The
 * mapped flag of a resource that is not an address is ignored. The next
 * register gets @p next_id.
 *
 * Who checks what: this call checks the table (ids, parents, resources, that no
 * two mapped ranges meet). It neither touches nor checks the attached sysalloc:
 * the caller restores that too, and it should hold, for every address range
 * that names a pool, an allocation of exactly that range with the device's
 * owner (a range it does not hold is reserved afresh by its next map or
 * move). vmres_snapshot_restore() rebuilds the sysalloc from the same
 * snapshot, whose allocations are what the saved manager had reserved.
 *
 * On success the manager owns the devices (their release callbacks run when they
 * are unregistered or the manager is freed); on failure it takes none of them.
 * @param m the manager.
 * @param e the entries, in ascending instance-id order (may be NULL when @p n is 0).
 * @param n how many.
 * @param next_id the id the next register hands out: above every entry's id, or
 *   0 when the ids are exhausted (register then fails with VMRES_EFULL).
 * @return 0, or (nothing changed; the manager stays empty):
 *   VMRES_EINVAL    a NULL pointer (@p m; @p e with @p n > 0; an entry's dev, or
 *                   its res with n_res > 0), an id of 0 or not above the previous
 *                   entry's, an id not below a non-zero @p next_id, and what
 *                   vmres_devmgr_register() refuses with it for the device or
 *                   its resources;
 *   VMRES_ESIZE, VMRES_EOVERFLOW, VMRES_ERANGE  a bad address resource, as for
 *                   vmres_devmgr_register();
 *   VMRES_EPARENT   a parent that is not an earlier entry;
 *   VMRES_ESTATE    the manager has registered (or restored) a device before;
 *   VMRES_EOVERLAP  two mapped ranges of one space meet;
 *   VMRES_ENOMEM.
 * Context: any thread; serialized with writers; not from a device callback of
 * @p m. O(d + r log r) for d devices and r ranges.
 */
int vmres_devmgr_restore(struct vmres_devmgr *m, const struct vmres_devmgr_entry *e, size_t n,
			 uint32_t next_id);

/**
 * vmres_devmgr_next_id() - the instance id the next register will hand out (what
 * a snapshot saves; 0 when the ids are exhausted).
 * @param m the manager.
 * @param next_id receives the id.
 * @return 0; VMRES_EINVAL for a NULL argument.
 * Context: any thread, also a device callback; O(1).
 */
int vmres_devmgr_next_id(struct vmres_devmgr *m, uint32_t *next_id);

/**
 * vmres_devmgr_set_msi_notifier() - set (or with NULL @p fn, clear) the function
 * vmres_devmgr_reroute_msi() calls.
 * @param m the manager.
 * @param fn the notifier, or NULL.
 * @param ctx passed to @p fn.
 * @return 0; VMRES_EINVAL for a NULL @p m.
 * Context: any thread; serialized with writers.
 */
int vmres_devmgr_set_msi_notifier(struct vmres_devmgr *m, vmres_devmgr_msi_fn fn, void *ctx);

/**
 * vmres_devmgr_reroute_msi() - the guest programmed a new message for MSI
 * resource @p res_index: call the notifier (if any), then record the message.
 * @param m the manager.
 * @param instance the device.
 * @param res_index index of an MSI resource in the device's resources.
 * @param msg the new message (copied).
 * @return 0, or (nothing changed): VMRES_EINVAL for a NULL pointer; VMRES_EDEVICE;
 *   VMRES_ENOENT if @p res_index is out of range or not an MSI resource; the
 *   notifier's error; VMRES_ENOMEM.
 * Context: as vmres_devmgr_move_range().
 */
int vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index,
			     const struct vmres_msi_msg *msg);

/**
 * vmres_devmgr_with_sysalloc() - run @p fn(@p ctx, sa) under the writer lock, so
 * the VMM can use the attached sysalloc while guest-driven moves may run (for
 * one allocation or release, vmres_devmgr_alloc() and the others need no
 * callback). @p fn must not call this manager's writers.
 * @param m the manager.
 * @param fn the function to run.
 * @param ctx passed to @p fn.
 * @return what @p fn returns; VMRES_EINVAL for a NULL @p m or @p fn;
 *   VMRES_ESTATE if no sysalloc is attached.
 * Context: any thread, also a device callback.
 */
int vmres_devmgr_with_sysalloc(struct vmres_devmgr *m,
			       int (*fn)(void *ctx, struct vmres_sysalloc *sa), void *ctx);

/*
 * The attached sysalloc, one call at a time: each of these runs the sysalloc
 * function of the same name under the writer lock, so that it is serialized
 * with guest-driven moves, as vmres_devmgr_with_sysalloc() would, without a
 * callback. They return VMRES_EINVAL for a NULL @p m and VMRES_ESTATE if no
 * sysalloc is attached; else what the sysalloc function returns, with its
 * contract (a failed call changes nothing). Context: any thread, also a device
 * callback; not from a listener or the MSI notifier (they run under the lock).
 *
 * The VMM must not release what a registered device still holds (the address
 * could be given to another device while the first still decodes it):
 * unregister the device first, or use vmres_devmgr_unregister_release().
 */

/**
 * vmres_devmgr_alloc() - vmres_sysalloc_alloc() under the writer lock.
 * @param m the manager.
 * @param reqs the requests.
 * @param n_reqs how many.
 * @param owner the owner of every resource allocated.
 * @param out receives the resources, in request order.
 * @param out_cap room in @p out.
 * @param n_out receives the number of resources written.
 * @param err NULL, or receives the index and code of the failing request.
 * @return 0; VMRES_EINVAL for a NULL @p m; VMRES_ESTATE without a sysalloc;
 *   else as vmres_sysalloc_alloc() (EINVAL, EFULL, EPOOL, EKIND, ESIZE,
 *   EALIGN, EMISALIGNED, ERANGE, EOVERLAP, ENOSPC, EOVERFLOW, ENOMEM).
 * Context: see above; O(k log n).
 */
int vmres_devmgr_alloc(struct vmres_devmgr *m, const struct vmres_request *reqs, size_t n_reqs,
		       uint64_t owner, struct vmres_resource *out, size_t out_cap, size_t *n_out,
		       struct vmres_sysalloc_error *err);

/**
 * vmres_devmgr_reserve() - vmres_sysalloc_reserve() under the writer lock:
 * take exactly what was already chosen (the guest, the firmware, a fixed
 * device).
 * @param m the manager.
 * @param pool the pool's name.
 * @param base the first address, or the number.
 * @param size the range's size (address pools).
 * @param align 0 or 1 for none, else a power of two (address pools).
 * @param owner the owner.
 * @param label NULL or "" for none, else its label.
 * @param out NULL, or receives the resource.
 * @return 0; VMRES_EINVAL for a NULL @p m; VMRES_ESTATE without a sysalloc;
 *   else as vmres_sysalloc_reserve() (EINVAL, EPOOL, ERANGE, ESIZE, EALIGN,
 *   EMISALIGNED, EOVERFLOW, EOVERLAP, ENOMEM).
 * Context: see above; O(log n).
 */
int vmres_devmgr_reserve(struct vmres_devmgr *m, const char *pool, uint64_t base, uint64_t size,
			 uint64_t align, uint64_t owner, const char *label,
			 struct vmres_resource *out);

/**
 * vmres_devmgr_release() - vmres_sysalloc_release() under the writer lock.
 * @param m the manager.
 * @param r the resource, as allocated (or as the table has it after a move).
 * @param owner its owner.
 * @return 0; VMRES_EINVAL for a NULL @p m; VMRES_ESTATE without a sysalloc;
 *   else as vmres_sysalloc_release() (EINVAL, EPOOL, EKIND, ENOENT, EOWNER).
 * Context: see above; O(log n).
 */
int vmres_devmgr_release(struct vmres_devmgr *m, const struct vmres_resource *r, uint64_t owner);

/**
 * vmres_devmgr_release_owner() - vmres_sysalloc_release_owner() under the
 * writer lock: give back every resource of @p owner.
 * @param m the manager.
 * @param owner the owner.
 * @return 0; VMRES_EINVAL for a NULL @p m; VMRES_ESTATE without a sysalloc.
 * Context: see above; O(k log n) for k resources.
 */
int vmres_devmgr_release_owner(struct vmres_devmgr *m, uint64_t owner);

/**
 * vmres_devmgr_get() - a device's table entry and resources.
 * @param m the manager.
 * @param instance the device.
 * @param info receives the entry (may be NULL).
 * @param res receives up to @p cap resources (may be NULL when @p cap is 0).
 * @param mapped receives up to @p cap mapped flags (may be NULL).
 * @param cap room in @p res and @p mapped.
 * @return 0; VMRES_EINVAL for a NULL @p m or a NULL @p res with @p cap > 0;
 *   VMRES_EDEVICE for an unknown id. info->n_res says how many resources exist.
 * Context: any thread, also a device callback; O(log d + n_res).
 */
int vmres_devmgr_get(struct vmres_devmgr *m, uint32_t instance, struct vmres_devmgr_info *info,
		     struct vmres_resource *res, bool *mapped, size_t cap);

/**
 * vmres_devmgr_find() - which device's mapped range holds @p addr?
 * @param m the manager.
 * @param space VMRES_SPACE_PIO or VMRES_SPACE_MMIO.
 * @param addr the address or port.
 * @param instance receives the device's id.
 * @param res_index receives the index of the address resource (may be NULL).
 * @param offset receives @p addr minus the range's base (may be NULL).
 * @return 0; VMRES_EINVAL for a NULL @p m or @p instance or an unknown space;
 *   VMRES_ENOENT if no mapped range holds @p addr.
 * Context: any thread, also a device callback; O(log d).
 */
int vmres_devmgr_find(struct vmres_devmgr *m, enum vmres_space space, uint64_t addr,
		      uint32_t *instance, unsigned int *res_index, uint64_t *offset);

/**
 * vmres_devmgr_foreach() - call @p fn for every device, in instance-id order, on
 * a consistent copy of the table taken when the call starts.
 * @param m the manager.
 * @param fn the callback.
 * @param ctx passed to @p fn.
 * @return 0, or the first non-zero value @p fn returned; VMRES_EINVAL for a NULL
 *   @p m or @p fn; VMRES_ENOMEM.
 * Context: any thread, also a device callback; O(d + resources).
 */
int vmres_devmgr_foreach(struct vmres_devmgr *m, vmres_devmgr_fn fn, void *ctx);

/**
 * vmres_devmgr_dump() - print the table as a tree, children under their parent:
 *
 *     devices: 3
 *     [1] pci-host
 *       mmio [0xe0000000-0xefffffff] ecam
 *       [2] virtio-net0 (owner 0x2)
 *         mmio [0xfe000000-0xfe000fff] (unmapped)
 *         msi gsi 24 msg 0x00000000:fee00000/0x4021
 *     [3] uart0
 *       pio [0x3f8-0x3ff]
 *       irq gsi 4
 *
 * Each level indents by two spaces, down to level VMRES_DEVMGR_DUMP_DEPTH (16;
 * a device without a parent is at level 0). A device deeper than that is shown
 * at level 16, after its ancestor there and in the same tree order, with its
 * parent's id, so that a chain of any length prints in space linear in its
 * number of devices:
 *
 *                                     [17] bridge16
 *                                     [18] bridge17 (parent 17)
 *                                     [19] nic (parent 18) (owner 0x5)
 *                                       mmio [0xfe000000-0xfe000fff]
 *
 * @param m the manager.
 * @param f where to write.
 * @return 0; VMRES_EINVAL for a NULL argument; VMRES_ESYS if writing fails;
 *   VMRES_ENOMEM.
 * Context: any thread, also a device callback; O(d log d) time, output linear
 * in the number of devices and resources.
 */
int vmres_devmgr_dump(struct vmres_devmgr *m, FILE *f);

/**
 * vmres_devmgr_dump_str() - vmres_devmgr_dump() into a malloc'd string.
 * @param m the manager.
 * @param out receives the NUL-terminated text; free it with free().
 * @return 0; VMRES_EINVAL for a NULL argument; VMRES_ENOMEM.
 */
int vmres_devmgr_dump_str(struct vmres_devmgr *m, char **out);

/**
 * vmres_devmgr_dump_json() - the same tree as JSON (made with jansson):
 *
 *     {"devices": [{"instance": 1, "name": "pci-host", "owner": "0x0",
 *                   "resources": [{"kind": "addr", "space": "mmio", "pool": "",
 *                                  "base": "0xe0000000", "last": "0xefffffff",
 *                                  "size": "0x10000000", "align": "0x0",
 *                                  "mapped": true}],
 *                   "children": [{"instance": 2, ...}]}]}
 *
 * Nesting stops at level VMRES_DEVMGR_DUMP_DEPTH, as in vmres_devmgr_dump(): a
 * device deeper than that is listed in the same "children" array as its
 * ancestor at level 16, after it in tree order, and has a "parent" member with
 * its parent's id (no other device has one: its parent is the device whose
 * "children" holds it). So the JSON nests at most 16 devices deep, which any
 * parser takes, and its size is linear in the number of devices:
 *
 *     "children": [{"instance": 17, "name": "bridge16", ..., "children": []},
 *                  {"instance": 18, "parent": 17, "name": "bridge17", ...},
 *                  {"instance": 19, "parent": 18, "name": "nic", ...}]
 *
 * Addresses are "0x..." strings (JSON numbers lose precision above 2^53); GSIs
 * and ids are integers; an MSI has "gsi" and "msg": {"addr_lo", "addr_hi", "data"}.
 * Names and pool names are always text (common.h), so every field appears.
 * @param m the manager.
 * @param out receives the NUL-terminated text; free it with free() (it is not
 *   allocated through jansson's allocator).
 * @return 0; VMRES_EINVAL for a NULL argument; VMRES_ENOMEM (@p out untouched,
 *   nothing leaked; never a partial text).
 * Context: as vmres_devmgr_dump().
 */
int vmres_devmgr_dump_json(struct vmres_devmgr *m, char **out);

/**
 * vmres_devmgr_stats() - device count and miss counters.
 * @param m the manager.
 * @param out receives the counters.
 * @return 0; VMRES_EINVAL for a NULL argument.
 * Context: any thread; counters are read without stopping dispatch.
 */
int vmres_devmgr_stats(struct vmres_devmgr *m, struct vmres_devmgr_stats *out);

/**
 * vmres_devmgr_pio() - handle a KVM_EXIT_IO: @p count accesses of @p size bytes to
 * @p port (count > 1 for rep ins/outs), the i-th at @p data + i * @p size.
 * A miss reads as all ones and drops writes (counted, not an error).
 * @param m the manager.
 * @param port kvm_run->io.port.
 * @param is_write kvm_run->io.direction == KVM_EXIT_IO_OUT.
 * @param size kvm_run->io.size: 1, 2 or 4 (8 is accepted too).
 * @param count kvm_run->io.count, >= 1.
 * @param data (uint8_t *)kvm_run + kvm_run->io.data_offset.
 * @return 0 (also for misses); VMRES_EINVAL for a NULL @p m or @p data;
 *   VMRES_EACCESS for another size or a count of 0; VMRES_ENOMEM if the thread's
 *   first dispatch cannot register it (vmres_devmgr_thread_register()).
 * Context: any thread (a vCPU; its first dispatch registers it); lock-free,
 * never blocks; the device
 * callbacks run on this thread.
 */
int vmres_devmgr_pio(struct vmres_devmgr *m, uint16_t port, bool is_write, uint8_t size,
		     uint32_t count, uint8_t *data);

/**
 * vmres_devmgr_mmio() - handle a KVM_EXIT_MMIO of @p len bytes at @p phys_addr.
 * Lengths 1, 2, 4 and 8 are one access; 3, 5, 6 and 7 (rare: some string and
 * vector instructions) are split into accesses of 4, 2 and 1 bytes at ascending
 * addresses, each dispatched (or missed) on its own. The space ends at 2^64 - 1
 * and does not wrap: an access, or a piece of a split one, that passes the end
 * misses (reads all ones, a write is dropped, each counted as a miss), never
 * reaching a device at address 0.
 * @param m the manager.
 * @param phys_addr kvm_run->mmio.phys_addr.
 * @param len kvm_run->mmio.len, 1 to 8.
 * @param is_write kvm_run->mmio.is_write.
 * @param data kvm_run->mmio.data: the value written, or receives the value read.
 * @return as vmres_devmgr_pio(); VMRES_EACCESS for a length of 0 or above 8.
 * Context: as vmres_devmgr_pio().
 */
int vmres_devmgr_mmio(struct vmres_devmgr *m, uint64_t phys_addr, uint32_t len, bool is_write,
		      uint8_t *data);

/**
 * vmres_devmgr_pio_ctx() - vmres_devmgr_pio(), passing @p caller to every device
 * callback that takes the caller's context (vmres_device.read_ctx and
 * write_ctx, device.h); a device with the plain callbacks does not see it.
 * vmres_devmgr_pio() is this call with a NULL @p caller.
 * @param m the manager.
 * @param port kvm_run->io.port.
 * @param is_write kvm_run->io.direction == KVM_EXIT_IO_OUT.
 * @param size kvm_run->io.size: 1, 2 or 4 (8 is accepted too).
 * @param count kvm_run->io.count, >= 1.
 * @param data (uint8_t *)kvm_run + kvm_run->io.data_offset.
 * @param caller handed to the device as is: the VMM's vCPU (may be NULL).
 * @return as vmres_devmgr_pio().
 * Context: as vmres_devmgr_pio(); dispatch costs the same as without a caller.
 */
int vmres_devmgr_pio_ctx(struct vmres_devmgr *m, uint16_t port, bool is_write, uint8_t size,
			 uint32_t count, uint8_t *data, void *caller);

/**
 * vmres_devmgr_mmio_ctx() - vmres_devmgr_mmio(), passing @p caller to every
 * device callback that takes the caller's context (each piece of a split
 * access gets it too). vmres_devmgr_mmio() is this call with a NULL @p caller.
 * @param m the manager.
 * @param phys_addr kvm_run->mmio.phys_addr.
 * @param len kvm_run->mmio.len, 1 to 8.
 * @param is_write kvm_run->mmio.is_write.
 * @param data kvm_run->mmio.data: the value written, or receives the value read.
 * @param caller handed to the device as is: the VMM's vCPU (may be NULL).
 * @return as vmres_devmgr_mmio().
 * Context: as vmres_devmgr_pio().
 */
int vmres_devmgr_mmio_ctx(struct vmres_devmgr *m, uint64_t phys_addr, uint32_t len, bool is_write,
			  uint8_t *data, void *caller);

/*
 * The exit entry points in one argument order. vmres_devmgr_pio() and
 * vmres_devmgr_mmio() (and their _ctx forms) stay as they are: they take
 * their arguments in the order a KVM VMM reads them out of struct kvm_run,
 * which differs between the two exits. The _access forms below take the same
 * arguments in the same order for both spaces, the order of every other
 * vmres call (the object, then where, then the data and how much of it, then
 * the direction, then the caller's context last):
 *
 *     vmres_devmgr_pio_access (m, port, data, size, count, is_write, caller)
 *     vmres_devmgr_mmio_access(m, addr, data, len,         is_write, caller)
 *
 * They behave exactly as the _ctx forms (the same inlined dispatch; a NULL
 * caller is what the plain forms pass). New code may use either family.
 */

/**
 * vmres_devmgr_pio_access() - vmres_devmgr_pio_ctx() with its arguments in
 * the order shared with vmres_devmgr_mmio_access(): @p count accesses of
 * @p size bytes to @p port, the i-th at @p data + i * @p size.
 * @param m the manager.
 * @param port the port.
 * @param data the values written, or receives the values read.
 * @param size bytes per access: 1, 2 or 4 (8 is accepted too).
 * @param count accesses, >= 1 (more than 1 for rep ins/outs).
 * @param is_write true for a write (OUT), false for a read (IN).
 * @param caller handed to the device callbacks that take the caller's
 *   context (device.h); may be NULL.
 * @return 0 (also for misses); VMRES_EINVAL for a NULL @p m or @p data;
 *   VMRES_EACCESS for another size or a count of 0; VMRES_ENOMEM if the
 *   thread's first dispatch cannot register it.
 * Context: as vmres_devmgr_pio(): any thread, lock-free, never blocks.
 */
int vmres_devmgr_pio_access(struct vmres_devmgr *m, uint16_t port, uint8_t *data, uint8_t size,
			    uint32_t count, bool is_write, void *caller);

/**
 * vmres_devmgr_mmio_access() - vmres_devmgr_mmio_ctx() with its arguments in
 * the order shared with vmres_devmgr_pio_access(): @p len bytes at @p addr
 * (3, 5, 6 and 7 are split as vmres_devmgr_mmio() says).
 * @param m the manager.
 * @param addr the guest-physical address.
 * @param data the value written, or receives the value read.
 * @param len bytes, 1 to 8.
 * @param is_write true for a write.
 * @param caller as for vmres_devmgr_pio_access(); may be NULL.
 * @return 0 (also for misses); VMRES_EINVAL for a NULL @p m or @p data;
 *   VMRES_EACCESS for a length of 0 or above 8; VMRES_ENOMEM as for
 *   vmres_devmgr_pio_access().
 * Context: as vmres_devmgr_pio().
 */
int vmres_devmgr_mmio_access(struct vmres_devmgr *m, uint64_t addr, uint8_t *data, uint32_t len,
			     bool is_write, void *caller);

struct kvm_run;

/**
 * vmres_devmgr_kvm_exit() - handle the exit in @p run if it is KVM_EXIT_IO or
 * KVM_EXIT_MMIO (in devmgr_kvm.c, the only part that needs <linux/kvm.h>).
 * @param m the manager.
 * @param run the vCPU's mmap'ed struct kvm_run.
 * @return 0 when handled; VMRES_ENOTSUP for any other exit reason (the VMM
 *   handles it); else as vmres_devmgr_pio() / vmres_devmgr_mmio().
 * Context: as vmres_devmgr_pio().
 */
int vmres_devmgr_kvm_exit(struct vmres_devmgr *m, struct kvm_run *run);

/**
 * vmres_devmgr_kvm_exit_ctx() - vmres_devmgr_kvm_exit(), passing @p caller to
 * the device callbacks that take the caller's context: a VMM calls it from its
 * vCPU loop with its vCPU, so that a device knows which vCPU made the access
 * without a thread-local of its own.
 * @param m the manager.
 * @param run the vCPU's mmap'ed struct kvm_run.
 * @param caller handed to the device as is (may be NULL).
 * @return as vmres_devmgr_kvm_exit().
 * Context: as vmres_devmgr_pio().
 */
int vmres_devmgr_kvm_exit_ctx(struct vmres_devmgr *m, struct kvm_run *run, void *caller);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_DEVMGR_H */
