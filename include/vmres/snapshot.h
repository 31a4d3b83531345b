/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file snapshot.h
 * @brief Save and restore the resource state of a VMM: the system allocator and
 * the device manager's table.
 *
 * A snapshot holds every pool of a system allocator (sysalloc.h), every
 * allocation with its owner, align and label, the owners' names, and the device
 * manager's table (devmgr.h): instance ids, names, owners, parents, resources,
 * MSI messages and which ranges are mapped. It does not hold the devices' own
 * internal state: each device saves that itself, keyed by its instance id.
 *
 * The format (docs/SNAPSHOT.md, byte by byte) is versioned, little-endian, made
 * of length-prefixed sections of fixed-size records and closed by a zlib crc32.
 * A reader accepts every minor version of its major version and refuses another
 * major version with VMRES_EVERSION; unknown optional sections and unknown
 * trailing record bytes are skipped, so an older vmres reads a newer minor.
 *
 * Restore builds a new system allocator and a new device manager. It first
 * parses and checks the whole input (bounds, checksum, versions, pool windows,
 * allocations inside their pools and disjoint, owners, devices' parents known and
 * older than their children, mapped ranges disjoint, resources naming existing
 * pools), and only then builds the objects. On any error nothing is returned,
 * every object it built is freed (devices created by the bind callback are
 * released through their release callback), and the error detail names the code
 * and the byte offset of the first problem.
 *
 *     struct vmres_snapshot_error e;
 *     struct vmres_sysalloc *sa;
 *     struct vmres_devmgr *m;
 *     rc = vmres_snapshot_restore(buf, len, bind_my_device, vmm, &sa, &m, &e);
 *     if (rc)
 *             fprintf(stderr, "restore: %s at byte %zu\n", vmres_strerror(rc), e.offset);
 *
 * Cost: save O(n log n) for n allocations and resources, output about 64 bytes
 * per allocation and 72 per device resource; restore O(n log n), the device table
 * being rebuilt in one vmres_devmgr_restore() call. Memory: the input plus a
 * parsed copy about its size.
 *
 * Context: no internal lock and no global state. Save reads both objects through
 * their public iteration and must not race with writers: stop the vCPUs (and any
 * thread that allocates) first, as any VMM does before a snapshot. Restore
 * touches only the objects it creates. Neither may be called from a device
 * callback of the manager being saved.
 */
#ifndef VMRES_SNAPSHOT_H
#define VMRES_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/common.h>
#include <vmres/device.h>
#include <vmres/devmgr.h>
#include <vmres/resource.h>
#include <vmres/sysalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The eight bytes every snapshot starts with. */
#define VMRES_SNAPSHOT_MAGIC "VMRESNAP"

/** Format major version this build writes; it reads exactly this major. */
#define VMRES_SNAPSHOT_VERSION_MAJOR 1
/** Format minor version this build writes; it reads every minor of its major. */
#define VMRES_SNAPSHOT_VERSION_MINOR 0

/** Where and why restore failed. */
struct vmres_snapshot_error {
	int code;      /**< the VMRES_E* code restore returned (0 on success) */
	size_t offset; /**< byte offset in the input of the first problem */
};

/**
 * Bind callback of vmres_snapshot_restore(): the VMM re-creates the device of one
 * restored table entry and fills in its object. Called once per device, in
 * instance-id order (parents before children), after the whole input was checked
 * and before the table is handed to the new manager (no device is reachable
 * while the callbacks run).
 * @param ctx the restore's @p bind_ctx.
 * @param entry the entry: instance id, parent, name, owner, n_res (opaque is NULL).
 * @param res its resources, as saved (MSI messages included).
 * @param mapped for each resource, whether it is mapped (address resources only).
 * @param dev pre-filled with VMRES_DEVICE_INIT and the saved name and owner; set
 *   opaque, read, write and release (name, owner and version are restored from the
 *   snapshot whatever the callback writes there).
 * @return 0, or a negative VMRES_E* code: restore then stops and returns it, with
 *   the offset of the device's record (any other value is returned as
 *   VMRES_EINVAL). A failing callback must not leave an object behind; devices
 *   bound before it are released through their release callback.
 */
typedef int (*vmres_snapshot_bind_fn)(void *ctx, const struct vmres_devmgr_info *entry,
				      const struct vmres_resource *res, const bool *mapped,
				      struct vmres_device *dev);

/**
 * vmres_snapshot_save() - save @p sa and @p m to a new buffer.
 * @param sa the system allocator.
 * @param m the device manager (attached to @p sa or to no sysalloc).
 * @param buf receives the malloc'd snapshot; free it with free().
 * @param len receives its length in bytes.
 * @return 0, or (@p buf and @p len untouched):
 *   VMRES_EINVAL  a NULL pointer, or @p m is attached to another sysalloc;
 *   VMRES_ECORRUPT an object failed its own consistency check while iterated,
 *                 or a device's resource names a pool that @p sa does not have
 *                 (or one of another kind or space): restore would refuse it;
 *   VMRES_ENOMEM.
 * Context: see the header: writers of @p sa and @p m must be stopped.
 */
int vmres_snapshot_save(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, void **buf,
			size_t *len);

/**
 * vmres_snapshot_save_fd() - save @p sa and @p m to the file descriptor @p fd,
 * from its current position (partial writes and EINTR are retried).
 * @param sa the system allocator.
 * @param m the device manager.
 * @param fd an open file descriptor (file, pipe or socket).
 * @return 0, or the codes of vmres_snapshot_save(); VMRES_EINVAL for a negative
 *   @p fd; VMRES_ESYS if a write fails (errno says why; part of the snapshot may
 *   have been written).
 * Context: as vmres_snapshot_save(); blocks on @p fd.
 */
int vmres_snapshot_save_fd(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, int fd);

/**
 * vmres_snapshot_restore() - check a snapshot, then build a new system allocator
 * and device manager holding exactly its state.
 *
 * The manager is attached to the new allocator if the saved one was attached to
 * the saved allocator. Each device gets its saved instance id, parent,
 * resources, MSI messages and mapped flags (vmres_devmgr_restore()); the buses
 * are rebuilt from the mapped ranges; the next register hands out the saved next
 * id. Unmapped ranges may lie anywhere (over mapped ranges, over other ranges of
 * their device, over allocations of the sysalloc), as in the saved manager.
 * Dumps (text and JSON) of the result equal the dumps of the saved objects, and
 * saving the result gives the same bytes.
 * @param buf the snapshot.
 * @param len its length.
 * @param bind creates the device object of each entry (may be NULL: devices then
 *   have no callbacks, read as all ones and drop writes).
 * @param bind_ctx passed to @p bind.
 * @param sa_out receives the new system allocator (free with vmres_sysalloc_free(),
 *   after the manager).
 * @param m_out receives the new device manager (free with vmres_devmgr_free()).
 * @param err if not NULL, receives the code and offset (on success: 0 and @p len).
 * @return 0, or (@p sa_out and @p m_out untouched, nothing left allocated):
 *   VMRES_EINVAL   a NULL @p sa_out or @p m_out, or a NULL @p buf with @p len > 0;
 *   VMRES_ETRUNC   the input (or a section) ends inside a record; offset: where
 *                  the input ends, or the record that does not fit;
 *   VMRES_EMAGIC   the input does not start with VMRES_SNAPSHOT_MAGIC (offset 0);
 *   VMRES_EVERSION another major format version (offset 8), or an unknown
 *                  section marked required (offset of its header);
 *   VMRES_ECHECKSUM the crc32 does not match (offset of the crc field);
 *   VMRES_ECORRUPT the input is well framed but inconsistent: a bad length,
 *                  kind, space, name (also one that is not text, common.h) or
 *                  flag, a missing or repeated section, a
 *                  pool window that is empty or overlaps another, an allocation
 *                  out of its pool or overlapping another, an unknown or younger
 *                  parent, overlapping mapped ranges, a resource naming no pool
 *                  of its kind (offset of the offending field or record);
 *   a code returned by @p bind (offset of the device record);
 *   VMRES_ENOMEM   (offset of the section or record being built).
 * Context: any thread; touches only what it creates.
 */
int vmres_snapshot_restore(const void *buf, size_t len, vmres_snapshot_bind_fn bind, void *bind_ctx,
			   struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			   struct vmres_snapshot_error *err);

/**
 * vmres_snapshot_restore_fd() - read @p fd to its end, then vmres_snapshot_restore().
 * @param fd an open file descriptor, read from its current position.
 * @param bind as vmres_snapshot_restore().
 * @param bind_ctx as vmres_snapshot_restore().
 * @param sa_out as vmres_snapshot_restore().
 * @param m_out as vmres_snapshot_restore().
 * @param err as vmres_snapshot_restore().
 * @return the codes of vmres_snapshot_restore(); VMRES_EINVAL for a negative
 *   @p fd; VMRES_ESYS if a read fails (errno says why).
 * Context: as vmres_snapshot_restore(); blocks on @p fd.
 */
int vmres_snapshot_restore_fd(int fd, vmres_snapshot_bind_fn bind, void *bind_ctx,
			      struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			      struct vmres_snapshot_error *err);

/**
 * vmres_snapshot_find_device() - the lowest instance id above @p after of a device
 * named @p name in @p m, for a VMM that binds its devices by name (names need not
 * be unique: start with @p after = 0 and pass the last id found to see the others).
 * @param m the device manager.
 * @param name the name ("" matches unnamed devices).
 * @param after find only ids above this one.
 * @param instance receives the id.
 * @return 0; VMRES_EINVAL for a NULL pointer or a @p name no device can have (not
 *   text, common.h, or VMRES_DEVICE_NAME_MAX bytes or more); VMRES_EDEVICE if no
 *   device above @p after has that name; VMRES_ENOMEM.
 * Context: any thread, also a device callback; O(d).
 */
int vmres_snapshot_find_device(struct vmres_devmgr *m, const char *name, uint32_t after,
			       uint32_t *instance);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_SNAPSHOT_H */
