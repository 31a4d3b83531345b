/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file bus.h
 * @brief A PIO or MMIO bus: disjoint address ranges mapped to devices, with
 * lock-free dispatch.
 *
 * A bus maps disjoint inclusive ranges of its space (PIO: ports 0 to 0xFFFF; MMIO:
 * the whole 64-bit space) to devices (device.h). It resolves an address to the
 * device and the offset inside the range, and dispatches reads and writes of 1, 2,
 * 4 or 8 bytes. An access that does not lie entirely inside one range (a miss, or
 * one that straddles the end of a range) reads as all ones and its write is
 * dropped, as on real hardware; it is counted (vmres_bus_stats()) and is not an
 * error. The device manager (devmgr.h) uses the same structure for its two buses;
 * this header is the bus on its own, for a VMM that keeps its own device table.
 *
 *     readers (vCPUs)                     writers (serialized by one mutex)
 *     rcu_read_lock                       copy + change the sorted array
 *     snap = current ------------.        build the index, publish the new snap
 *     search snap, call device    `-----> old snap (and removed devices) are
 *     rcu_read_unlock                     freed after a grace period (call_rcu)
 *
 * Cost: lookup O(log n) with no branch on the data, and O(1) where ranges are
 * spread out. A bucket table cuts the span of the ranges into at least 4n equal
 * buckets; where at most 2 ranges start in a bucket (ranges laid out with room
 * between them, as a VMM places devices), a lookup is a shift, one table load and
 * 2 compares, at any n (measured figures: docs/BENCHMARKS.md). An address in a
 * bucket where more start (a cluster of small ranges) searches a B-tree of one
 * cache line (8 keys) per node over the starts: 4 levels for 4096 ranges. A bus
 * whose ranges all lie in the PIO space (every PIO bus) also has a direct table of
 * the 65536 ports, so an access to a port is three dependent loads and no search.
 * Insert and remove copy the array and rebuild the index, the bucket table (and
 * the port table): O(n), about 130 bytes per range at worst, and the bus keeps
 * up to 2 retired copies (73 bytes per range each) for reuse; the port table takes
 * 512 bytes per 256-port page that holds a range boundary or lies inside a range
 * (a PC's ports: about 10 pages; at most 257).
 *
 * Thread-safety: lookups and dispatch take no lock and never wait; they may run on
 * any number of threads. A thread's first lookup registers it with liburcu (the
 * "memb" flavour, read side inlined into vmres) and its exit unregisters it, so
 * no registration call is needed. Insert and remove are
 * serialized by the bus's mutex and never wait for readers, so a device callback
 * may insert or remove ranges. A removed range may still be entered by accesses
 * that started before the removal; the device's release callback runs only after
 * all of them have returned (on liburcu's call_rcu thread).
 */
#ifndef VMRES_BUS_H
#define VMRES_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <vmres/common.h>
#include <vmres/device.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque bus. */
struct vmres_bus;

/** The last port of the PIO space. */
#define VMRES_BUS_PIO_LAST 0xFFFFu

/** A mapped range, as resolve and vmres_bus_ranges() report it. */
struct vmres_bus_hit {
	const struct vmres_device *dev; /**< the device given to vmres_bus_insert(); NULL: miss */
	unsigned int range;		/**< its range number */
	uint64_t base;			/**< first address of the range */
	uint64_t last;			/**< last address of the range (inclusive) */
	uint64_t offset;		/**< resolve: address - base; else 0 */
};

/** Miss counters: accesses that fell outside every range (or straddled one's end). */
struct vmres_bus_stats {
	uint64_t ranges;      /**< ranges mapped now */
	uint64_t miss_reads;  /**< reads answered with all ones */
	uint64_t miss_writes; /**< writes dropped */
	uint64_t last_miss;   /**< address of a recent miss (the latest on one thread) */
};

/**
 * vmres_bus_thread_register() - register the calling thread with liburcu for
 * lookups and dispatch (on any bus or device manager) now rather than at its
 * first lookup, which does it anyway. Optional: a thread registered either way
 * is unregistered when it exits (a pthread key destructor), or earlier by
 * vmres_bus_thread_unregister(). Registering a registered thread does nothing.
 * @return 0; VMRES_ENOMEM if the thread's exit hook cannot be set up (the
 *   thread stays unregistered).
 * Context: any thread; not from a device callback.
 */
int vmres_bus_thread_register(void);

/**
 * vmres_bus_thread_unregister() - unregister the calling thread from liburcu
 * before it exits (optional: its exit does it). Its next lookup registers it
 * again.
 * @return 0; VMRES_ESTATE if the thread is not registered (vmres_error_detail()
 *   says so).
 * Context: the registered thread, outside any access.
 */
int vmres_bus_thread_unregister(void);

/**
 * vmres_bus_new() - create an empty bus.
 * @param space VMRES_SPACE_PIO (ports 0 to 0xFFFF) or VMRES_SPACE_MMIO (64-bit).
 * @param out receives the bus; free it with vmres_bus_free().
 * @return 0; VMRES_EINVAL for a NULL @p out or an unknown space; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_bus_new(enum vmres_space space, struct vmres_bus **out);

/**
 * vmres_bus_free() - destroy a bus. Waits for pending deferred frees, then calls
 * the release callback of every device still mapped (once per device).
 * @param bus the bus, or NULL.
 * Context: no access or other call on @p bus may be running or follow; not from a
 * device or release callback (it waits for liburcu's call_rcu thread).
 */
void vmres_bus_free(struct vmres_bus *bus);

/**
 * vmres_bus_insert() - map [@p base, @p base + @p size - 1] to a device.
 * The bus copies the callbacks and opaque pointer; @p dev itself must stay valid
 * while any of its ranges is mapped (its pointer identifies the device: its
 * release callback runs after its last range on this bus is removed).
 * @param bus the bus.
 * @param base first address.
 * @param size bytes (ports), >= 1.
 * @param dev the device (version VMRES_DEVICE_VERSION, or 1).
 * @param range number passed back to the device's callbacks.
 * @return 0, or:
 *   VMRES_EINVAL    NULL @p bus or @p dev, an unknown device version, or a
 *                   device that sets callbacks of both styles (device.h);
 *   VMRES_ESIZE     @p size is 0;
 *   VMRES_EOVERFLOW base + size - 1 passes the end of the 64-bit space;
 *   VMRES_ERANGE    a PIO range past port 0xFFFF;
 *   VMRES_EOVERLAP  the range overlaps a mapped one;
 *   VMRES_ENOMEM.
 * Context: any thread, also a device callback; serialized with other writers of
 * this bus; never waits for readers. O(n).
 */
int vmres_bus_insert(struct vmres_bus *bus, uint64_t base, uint64_t size,
		     const struct vmres_device *dev, unsigned int range);

/**
 * vmres_bus_remove() - unmap the range that starts at @p base.
 * Accesses already inside the range may still complete; if it was the device's
 * last range, its release callback runs after they have.
 * @param bus the bus.
 * @param base first address of a mapped range.
 * @return 0; VMRES_EINVAL for a NULL @p bus; VMRES_ENOENT if no range starts at
 *   @p base; VMRES_ENOMEM.
 * Context: as vmres_bus_insert().
 */
int vmres_bus_remove(struct vmres_bus *bus, uint64_t base);

/**
 * vmres_bus_resolve() - which range holds @p addr?
 * A miss is not an error (as for accesses): it is reported by out->dev == NULL.
 * @param bus the bus.
 * @param addr the address.
 * @param out receives the range and the offset of @p addr in it, or dev == NULL
 *   (and the other fields meaningless) when no range holds @p addr. out->dev is
 *   only safe to use while the range cannot be removed.
 * @return 0 (hit or miss); VMRES_EINVAL for a NULL argument; VMRES_ENOMEM if the
 *   thread is not registered yet and registering it fails
 *   (vmres_bus_thread_register()).
 * Context: any thread (its first lookup registers it); lock-free, never waits. O(1) through the
 * bucket table, O(log n) in a dense bucket; no branch on the data.
 */
int vmres_bus_resolve(struct vmres_bus *bus, uint64_t addr, struct vmres_bus_hit *out);

/**
 * vmres_bus_read() - read @p size bytes at @p addr through the device there.
 * A miss yields all ones in the low @p size bytes and counts a missed read.
 * @param bus the bus.
 * @param addr the address.
 * @param size 1, 2, 4 or 8.
 * @param value receives the value (bits above @p size bytes are 0).
 * @return 0 (hit or miss); VMRES_EINVAL for a NULL argument; VMRES_EACCESS for
 *   another size; VMRES_ENOMEM as vmres_bus_resolve().
 * Context: as vmres_bus_resolve(); lock-free, never waits; the device callback runs
 * on this thread.
 */
int vmres_bus_read(struct vmres_bus *bus, uint64_t addr, unsigned int size, uint64_t *value);

/**
 * vmres_bus_write() - write the low @p size bytes of @p value at @p addr.
 * A miss drops the write and counts a missed write.
 * @param bus the bus.
 * @param addr the address.
 * @param size 1, 2, 4 or 8.
 * @param value the value (bits above @p size bytes are ignored).
 * @return 0 (hit or miss); VMRES_EINVAL for a NULL @p bus; VMRES_EACCESS for
 *   another size; VMRES_ENOMEM as vmres_bus_resolve().
 * Context: as vmres_bus_read().
 */
int vmres_bus_write(struct vmres_bus *bus, uint64_t addr, unsigned int size, uint64_t value);

/**
 * vmres_bus_read_ctx() - vmres_bus_read(), passing @p caller to a device that
 * takes the caller's context (vmres_device.read_ctx, device.h); a device with
 * the plain callback does not see it.
 * @param bus the bus.
 * @param addr the address.
 * @param size 1, 2, 4 or 8.
 * @param value receives the value (bits above @p size bytes are 0).
 * @param caller passed to the device's read_ctx as is (the VMM's vCPU); may be NULL.
 * @return as vmres_bus_read().
 * Context: as vmres_bus_read().
 */
int vmres_bus_read_ctx(struct vmres_bus *bus, uint64_t addr, unsigned int size, uint64_t *value,
		       void *caller);

/**
 * vmres_bus_write_ctx() - vmres_bus_write(), passing @p caller to a device that
 * takes the caller's context (vmres_device.write_ctx).
 * @param bus the bus.
 * @param addr the address.
 * @param size 1, 2, 4 or 8.
 * @param value the value (bits above @p size bytes are ignored).
 * @param caller passed to the device's write_ctx as is; may be NULL.
 * @return as vmres_bus_write().
 * Context: as vmres_bus_read().
 */
int vmres_bus_write_ctx(struct vmres_bus *bus, uint64_t addr, unsigned int size, uint64_t value,
			void *caller);

/**
 * vmres_bus_ranges() - copy the mapped ranges, sorted by base.
 * @param bus the bus.
 * @param out array of @p cap entries (may be NULL when @p cap is 0).
 * @param cap capacity of @p out.
 * @param n receives the number of ranges mapped (also when it exceeds @p cap,
 *   in which case only the first @p cap are copied).
 * @return 0; VMRES_EINVAL for a NULL @p bus or @p n, or NULL @p out with @p cap > 0.
 * Context: any thread, also a device callback; takes the writer mutex briefly. O(n).
 */
int vmres_bus_ranges(struct vmres_bus *bus, struct vmres_bus_hit *out, size_t cap, size_t *n);

/**
 * vmres_bus_stats() - the bus's miss counters and range count.
 * @param bus the bus.
 * @param out receives the counters.
 * @return 0; VMRES_EINVAL for a NULL argument.
 * Context: any thread; counters are read without stopping dispatch.
 */
int vmres_bus_stats(struct vmres_bus *bus, struct vmres_bus_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_BUS_H */
