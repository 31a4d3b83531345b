/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file snapshot.h
 * @brief Save and restore the resource state of a VMM: the system allocator and
 * the device manager's table.
 *
 * A snapshot holds every pool of a system allocator (sysalloc.h, guest pools
 * included), every allocation with its owner, align and label (every share of
 * a shared legacy line too, in the order the sharers joined), the owners'
 * names, and the device manager's table (devmgr.h): instance ids, names,
 * owners, parents, resources, MSI messages, which ranges are mapped, and the
 * placement policy. With vmres_snapshot_save_ex() it also holds what the
 * guest programmed into PCI functions (pci.h: registers, BAR, MSI and MSI-X
 * state, the PCI Express 4 KiB space) and into an interrupt manager's sources
 * (irq.h: messages, trigger modes, enabled, masked, pending), which
 * vmres_snapshot_restore_ex() loads into the functions and sources the VMM
 * re-created, so that nothing is replayed by hand; and a kvmres object's
 * notify regions and memory-backed resources by description, which restore
 * re-installs with the eventfds and host memory the VMM hands back. An ECAM
 * window is a device-manager resource like any other: the VMM re-creates its
 * object from that resource in the bind callback (docs/SNAPSHOT.md). It does not hold the devices'
 * own internal state: each device saves that itself, keyed by its instance id.
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

struct vmres_irq_mgr;
struct vmres_kvmres;
struct vmres_kvmres_notify;
struct vmres_pci_func;

#ifdef __cplusplus
extern "C" {
#endif

/** The eight bytes every snapshot starts with. */
#define VMRES_SNAPSHOT_MAGIC "VMRESNAP"

/** Format major version this build writes; it reads exactly this major. */
#define VMRES_SNAPSHOT_VERSION_MAJOR 1
/** Format minor version this build writes; it reads every minor of its major. */
#define VMRES_SNAPSHOT_VERSION_MINOR 3

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
 * A memory-backed address resource as a snapshot describes it (kvmres.h):
 * what the VMM needs to find the host memory again.
 */
struct vmres_snapshot_mem {
	uint32_t instance;	/**< the device */
	unsigned int res_index; /**< its MMIO address resource */
	uint64_t size;		/**< the resource's size: bytes of host memory needed */
	bool readonly;		/**< guest writes exit */
	uint32_t slot;		/**< the memory slot number it had, and gets back */
};

/**
 * Version of struct vmres_snapshot_options understood by this build: 2 added
 * the kvmres members (a version-1 struct is read no further than @c irq).
 */
#define VMRES_SNAPSHOT_OPTIONS_VERSION 2

/**
 * What a snapshot holds besides the sysalloc and the device manager: the
 * guest-programmed state of PCI functions and of an interrupt manager, and
 * kvmres's record. Initialise with VMRES_SNAPSHOT_OPTIONS_INIT. Save reads
 * @c pci_funcs, @c irq and @c kvmres; restore reads @c pci_func, @c pci_ctx,
 * @c irq and the kvmres callbacks.
 */
struct vmres_snapshot_options {
	unsigned int version; /**< VMRES_SNAPSHOT_OPTIONS_VERSION */
	/**
	 * Save: functions whose state to save (vmres_pci_func_save_state()),
	 * each bound with vmres_pci_func_bind() to the manager being saved, at
	 * most one per device; saved by that device's instance id.
	 */
	struct vmres_pci_func *const *pci_funcs;
	size_t n_pci_funcs; /**< entries of @c pci_funcs */
	/**
	 * Restore: the VMM's function of device @p instance, called once per
	 * saved function after every bind callback (the VMM creates its
	 * functions there), or NULL to ignore the saved functions. The function
	 * must be new (vmres_pci_func_new() from the same config, no mapper):
	 * restore loads its state and binds it to the new manager, asking
	 * nothing of the manager (vmres_pci_func_load_state(), then
	 * vmres_pci_func_bind()). Return NULL to refuse (VMRES_ENOENT).
	 */
	struct vmres_pci_func *(*pci_func)(void *ctx, uint32_t instance);
	void *pci_ctx; /**< first argument of @c pci_func */
	/**
	 * Save: the interrupt manager whose sources' state to save
	 * (vmres_irq_mgr_save_state()), or NULL. Restore: the manager to load
	 * it into (vmres_irq_mgr_load_state()), whose sources the VMM re-created
	 * (usually in the bind callbacks, from each device's resources), or NULL
	 * to ignore the saved state.
	 */
	struct vmres_irq_mgr *irq;
	/* Version 2: */
	/**
	 * Save: the object whose notify regions and memory-backed resources to
	 * save by description (no file descriptor, no host pointer), or NULL. It
	 * must serve the manager being saved.
	 */
	struct vmres_kvmres *kvmres;
	/**
	 * Restore: create the VMM's kvmres object (vmres_kvmres_new(), with its
	 * backend and slot options) on the restored manager @p m, or NULL to
	 * ignore the saved descriptions. Called once, after the manager holds
	 * its table and before the interrupt and PCI state are loaded; the
	 * object is restore's until restore returns: on success it is stored in
	 * @c *kvmres_out, on failure restore frees it (vmres_kvmres_free(), which
	 * removes whatever it had installed). Return 0 or a VMRES_E* code.
	 */
	int (*kvmres_new)(void *ctx, struct vmres_devmgr *m, struct vmres_kvmres **out);
	/**
	 * Restore: the eventfd of a saved notify region; @p n is its description
	 * (fd -1). Return the descriptor (>= 0; not owned by vmres: the VMM
	 * closes it if restore fails) or a negative VMRES_E* code. Required
	 * with @c kvmres_new if the snapshot has notify regions.
	 */
	int (*notify_fd)(void *ctx, const struct vmres_kvmres_notify *n);
	/**
	 * Restore: the host memory of a saved memory-backed resource, at least
	 * @c mem->size bytes (not owned). Return 0 and set @p *host, or a
	 * negative VMRES_E* code. Required with @c kvmres_new if the snapshot
	 * has memory-backed resources.
	 */
	int (*mem_host)(void *ctx, const struct vmres_snapshot_mem *mem, void **host);
	void *kvmres_ctx; /**< first argument of the three callbacks above */
	/** Restore: receives the object @c kvmres_new made (on success only). */
	struct vmres_kvmres **kvmres_out;
};

/** Initialiser for struct vmres_snapshot_options: nothing but the sysalloc and manager. */
#define VMRES_SNAPSHOT_OPTIONS_INIT                                                                \
	{                                                                                          \
		.version = VMRES_SNAPSHOT_OPTIONS_VERSION                                          \
	}

/**
 * vmres_snapshot_save() - save @p sa and @p m to a new buffer.
 * @param sa the system allocator.
 * @param m the device manager (attached to @p sa or to no sysalloc).
 * @param buf receives the malloc'd snapshot; free it with free().
 * @param len receives its length in bytes.
 * @return 0, or (@p buf and @p len untouched):
 *   VMRES_EINVAL  a NULL pointer, or @p m is attached to another sysalloc;
 *   VMRES_EPOOL   a device's resource names a pool that @p sa does not have,
 *   VMRES_EKIND   or one of another kind (or space): restore would refuse it;
 *   VMRES_ECORRUPT an object failed its own consistency check while iterated;
 *   VMRES_ENOMEM.
 * Shares of shared legacy lines (sysalloc.h) are saved since format 1.3, in
 * a section that a 1.2 or older reader refuses (VMRES_EVERSION) rather than
 * misread; a snapshot without a share stays readable by them.
 * Context: see the header: writers of @p sa and @p m must be stopped.
 */
int vmres_snapshot_save(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, void **buf,
			size_t *len);

/**
 * vmres_snapshot_save_ex() - vmres_snapshot_save() plus what @p opts names:
 * the state of PCI functions and of an interrupt manager (optional sections,
 * docs/SNAPSHOT.md). With NULL @p opts, or nothing in it, it writes exactly
 * what vmres_snapshot_save() writes.
 * @param sa the system allocator.
 * @param m the device manager.
 * @param opts NULL, or what else to save.
 * @param buf receives the malloc'd snapshot; free it with free().
 * @param len receives its length in bytes.
 * @return 0, or (@p buf and @p len untouched) the codes of vmres_snapshot_save(), and:
 *   VMRES_EINVAL  a wrong @c opts->version (1 and 2 are read), NULL
 *                 @c pci_funcs with a count, a NULL function, one not bound
 *                 to @p m, two bound to one device, a @c kvmres serving
 *                 another manager;
 *   VMRES_ECORRUPT a function's state disagrees with its device's entry in
 *                 @p m (a range or message moved behind the function's back,
 *                 e.g. by vmres_devmgr_update()): restore would refuse it;
 *   VMRES_ESTATE  @c opts->irq has a batch open.
 * Context: as vmres_snapshot_save(); also stop every thread that triggers the
 *   interrupt sources; takes each function's mutex.
 */
int vmres_snapshot_save_ex(const struct vmres_sysalloc *sa, struct vmres_devmgr *m,
			   const struct vmres_snapshot_options *opts, void **buf, size_t *len);

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
 *                  of its kind, a share of a shared line outside a legacy IRQ
 *                  pool or at a number held exclusively, a line's shares not
 *                  together (offset of the offending field or record);
 *   a code returned by @p bind (offset of the device record);
 *   VMRES_ENOMEM   (offset of the section or record being built).
 * Context: any thread; touches only what it creates.
 */
int vmres_snapshot_restore(const void *buf, size_t len, vmres_snapshot_bind_fn bind, void *bind_ctx,
			   struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			   struct vmres_snapshot_error *err);

/**
 * vmres_snapshot_restore_ex() - vmres_snapshot_restore(), then the guest's
 * state into the VMM's objects that @p opts names. Every check comes first:
 * the input (the optional sections too, whether or not @p opts asks for
 * them: each function's state against its device's entry), then, after the
 * bind callbacks, each function that @c pci_func returns against its state.
 * Then the manager takes its table, the interrupt manager its sources' state
 * (the one step that may still fail: VMRES_ENOMEM or the backend's error, with
 * nothing changed in it), and each function its state and its binding to the
 * new manager. With @c kvmres_new and saved kvmres records, the VMM's kvmres
 * object is made and every region and memory re-attached right after the
 * manager takes its table, before the interrupt state (docs/SNAPSHOT.md says
 * who re-attaches what). A snapshot without those sections (format 1.0, or
 * saved without them) leaves the functions, the interrupt manager and the
 * kvmres callbacks alone.
 * @param buf the snapshot.
 * @param len its length.
 * @param bind as vmres_snapshot_restore().
 * @param bind_ctx as vmres_snapshot_restore().
 * @param opts NULL (then exactly vmres_snapshot_restore()), or what else to restore.
 * @param sa_out as vmres_snapshot_restore().
 * @param m_out as vmres_snapshot_restore().
 * @param err as vmres_snapshot_restore().
 * @return 0, or (nothing returned, no function and no interrupt source
 *   changed) the codes of vmres_snapshot_restore(), and:
 *   VMRES_EINVAL   a wrong @c opts->version, @c kvmres_new without
 *                  @c kvmres_out; @c pci_func returned one function for two
 *                  devices (offset of the second record); a kvmres callback
 *                  missing, returning no memory, or returning a code that is
 *                  not a VMRES_E* one (offset of the record);
 *   VMRES_ENOENT   @c pci_func returned NULL (offset of the function's record);
 *   VMRES_ESTATE, VMRES_EKIND: a function that cannot take its state
 *                  (vmres_pci_func_load_state(); offset of the state);
 *   the codes of vmres_irq_mgr_load_state() (offset of the IRQ section);
 *   the codes of @c kvmres_new (offset of the KVMRES section's header), of
 *                  @c notify_fd and @c mem_host, of vmres_kvmres_notify_add()
 *                  and vmres_kvmres_mem_attach() (VMRES_EEXIST for a slot
 *                  number in use) (offset of the record); the kvmres object
 *                  is then freed, removing what it had installed.
 * Context: as vmres_snapshot_restore(); no function or interrupt source named
 *   by @p opts may be in use meanwhile.
 */
int vmres_snapshot_restore_ex(const void *buf, size_t len, vmres_snapshot_bind_fn bind,
			      void *bind_ctx, const struct vmres_snapshot_options *opts,
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
