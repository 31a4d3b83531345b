/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file irq.h
 * @brief Interrupt sources: enable, mask, pending, trigger, ack; KVM and callback backends.
 *
 * An interrupt manager turns the GSI resources a device was given (VMRES_RES_IRQ
 * and VMRES_RES_MSI, as the system allocator hands them out) into a group of
 * interrupt sources, one per resource and in the same order. A source is either
 * a legacy line (edge or level) or an MSI (address high/low and data, as the
 * guest programs them). Each source has a small state machine:
 *
 * @verbatim
 *                 enable                              mask
 *   DISABLED  ------------>  ENABLED  ------------------------------>  ENABLED,
 *             <------------  unmasked <------------------------------  MASKED
 *             disable                   unmask: if pending, deliver
 *             (pending := 0)            once, with the message then
 *                                       in force; pending := 0
 *
 *   trigger:  VMRES_ESTATE,  deliver now                               pending := 1,
 *             nothing kept                                             deliver nothing
 * @endverbatim
 *
 * An MSI raised while masked is thus delivered on unmask, as PCI requires, and
 * with the message in force at unmask time. A level-triggered legacy line is
 * raised by trigger and lowered by ack (the guest's EOI, or the device dropping
 * its line).
 *
 * Shared lines (PCI INTx). The shares of a shared legacy line that the system
 * allocator hands out (VMRES_RES_IRQ with u.irq.shared, sysalloc.h) become
 * sources that drive one line: one source per device, in any number of
 * groups, all on that GSI. Such a source is level-triggered for its whole
 * life (configuring it edge-triggered is refused: an edge cannot be shared
 * reliably), and its "asserted" state means that this device drives the
 * line. The line is raised while any of its sources drives it (OR): trigger
 * starts driving it, ack stops, and the line is lowered only when the last
 * driver stops (or its source's group is freed). The backend sees the line,
 * not the devices: one attach per GSI (KVM: one irqfd with resample), ASSERT
 * when a source starts driving, DEASSERT when the last stops. When the guest
 * EOIs the line (KVM: the resample fd, shared by its sources, is readable)
 * call vmres_irq_src_resample() on any of them: the line is raised again
 * while a device still drives it, which is what the guest's next look at its
 * devices needs. A GSI holds either shares or unshared sources, never both.
 * Unshared legacy sources on one GSI (groups made from unshared resources of
 * the same GSI) stay independent: each has its own backend state and signals,
 * so an ack of one lowers the line for all; the manager orders them (in
 * vmres_irq_mgr_save_state()) in the order their groups were created.
 *
 * Delivery goes through a backend, a small versioned table of operations
 * (struct vmres_irq_backend_ops) so that users can add their own:
 *  - KVM (vmres_irq_backend_kvm_new()): an eventfd per source bound to its GSI
 *    with KVM_IRQFD (plus a resample eventfd for level-triggered lines); MSI
 *    messages are installed with KVM_SET_GSI_ROUTING. That ioctl replaces the
 *    whole table, so the manager keeps its own record of routes and pushes the
 *    complete table, rebuilt from that record, once per commit; the default
 *    irqchip entries of GSIs 0-23 that KVM_CREATE_IRQCHIP installed are kept.
 *  - callback (vmres_irq_backend_callback_new()): a function called on every
 *    delivery; for tests and for hypervisors other than KVM.
 *
 * Route changes (MSI message changes, groups created or freed) are committed
 * at the end of each call, or, between vmres_irq_mgr_begin_update() and
 * vmres_irq_mgr_commit(), once for the whole batch. A call that fails half way
 * (say the third KVM_IRQFD of a group) undoes what it did: the sources, the
 * table and the open file descriptors are exactly as before.
 *
 * Cost model: trigger, ack, mask, unmask, enable and disable are lock-free
 * (one atomic state word per source, a sequence lock for the message in force)
 * and allocate nothing; with KVM a trigger is one 8-byte eventfd write. The
 * configuration calls take the manager's mutex; a commit is O(sources) plus one
 * backend push (one KVM_SET_GSI_ROUTING). Memory: about 64 bytes per source, an
 * 8-byte index slot, and the backend's per-source state (KVM: 16 bytes and one
 * eventfd, two for a level line).
 *
 * Context (thread-safety): every function may be called from any thread. The
 * configuration calls (configure, group creation and freeing, batches, MSI
 * notifications, queries) are serialized by the manager's mutex and may be
 * called from a device's handler, including for the handler's own device.
 * vmres_irq_src_trigger(), _ack(), _enable(), _disable(), _mask() and
 * _unmask() take no lock and may run on any number of vCPU or device threads
 * at once, concurrently with the configuration calls. Lifetime rule: a source
 * must not be triggered or acked while its group is being freed, nor while a
 * change of its legacy trigger mode (which replaces its backend state) is in
 * progress. A trigger that runs concurrently with mask or disable may still be
 * delivered just after that call returns, as a message already in flight on a
 * real bus would be. Deliveries (the callback backend's function) are made
 * without the manager's mutex held, so they may call back into the manager.
 */
#ifndef VMRES_IRQ_H
#define VMRES_IRQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmres/common.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque interrupt manager: the sources of one VM and the record of their routes. */
struct vmres_irq_mgr;
/** Opaque group of sources, made from one device's IRQ/MSI resources. */
struct vmres_irq_group;
/** Opaque interrupt source, owned by its group. */
struct vmres_irq_src;
/** Opaque delivery backend (KVM, callback, or the user's own). */
struct vmres_irq_backend;

/** What kind of interrupt a source delivers. */
enum vmres_irq_kind {
	VMRES_IRQ_LEGACY = 1, /**< a pin-based line, routed by the platform's irqchip */
	VMRES_IRQ_MSI = 2,    /**< a message-signalled interrupt (address + data) */
};

/** How a legacy line signals. MSIs are always edge. */
enum vmres_irq_trigger {
	VMRES_IRQ_EDGE = 0,  /**< a pulse per trigger (ISA-style lines, MSIs) */
	VMRES_IRQ_LEVEL = 1, /**< raised by trigger, lowered by ack (PCI INTx-style lines) */
};

/** What one delivery asks the interrupt controller to do. */
enum vmres_irq_signal {
	VMRES_IRQ_SIGNAL_EDGE = 1,     /**< one edge-triggered interrupt or one MSI */
	VMRES_IRQ_SIGNAL_ASSERT = 2,   /**< raise a level-triggered line */
	VMRES_IRQ_SIGNAL_DEASSERT = 3, /**< lower a level-triggered line */
};

/** A source's configuration: legacy line with its trigger mode, or MSI message. */
struct vmres_irq_config {
	enum vmres_irq_kind kind;	/**< must be the kind of the source's resource */
	enum vmres_irq_trigger trigger; /**< legacy: edge or level; MSI: must be EDGE */
	struct vmres_msi_msg msg;	/**< MSI: the message; ignored for legacy */
};

/** A snapshot of one source, from vmres_irq_src_get_state(). */
struct vmres_irq_src_state {
	uint32_t gsi;			/**< its GSI (fixed for the source's life) */
	struct vmres_irq_config config; /**< as last configured (the manager's record) */
	struct vmres_msi_msg live_msg;	/**< MSI: message in force (last committed) */
	bool enabled;			/**< enabled by the device / guest */
	bool masked;			/**< masked (vector or function mask) */
	bool pending;			/**< triggered while masked, not yet delivered */
	bool asserted;			/**< level line raised and not yet acked */
};

/** Manager-wide figures, from vmres_irq_mgr_get_info(). */
struct vmres_irq_mgr_info {
	size_t groups;		  /**< live groups */
	size_t sources;		  /**< live sources */
	unsigned int batch_depth; /**< open vmres_irq_mgr_begin_update() calls */
	bool dirty;		  /**< the record holds route changes not yet committed */
	uint64_t commits;	  /**< successful backend pushes so far */
};

/** One route of the manager's record, as handed to a backend's commit. */
struct vmres_irq_route {
	uint32_t gsi;		  /**< routes are sorted by GSI, one per GSI */
	enum vmres_irq_kind kind; /**< LEGACY: keep the platform's irqchip route */
	struct vmres_msi_msg msg; /**< MSI: the message; zero for LEGACY */
};

/** Which file descriptor vmres_irq_src_get_fd() returns. */
enum vmres_irq_fd {
	VMRES_IRQ_FD_TRIGGER = 1,  /**< writing 1 (8 bytes) to it raises the source (KVM irqfd) */
	VMRES_IRQ_FD_RESAMPLE = 2, /**< readable when the guest EOIs a level line; then ack */
};

/** Version of struct vmres_irq_backend_ops this header describes. */
#define VMRES_IRQ_BACKEND_OPS_VERSION 1

/**
 * The operations of a delivery backend. All are called with the manager's
 * mutex held (or, for detach and destroy, while the manager is being freed)
 * except @c deliver, which runs on the lock-free paths (trigger, ack, unmask)
 * and must therefore be safe to call concurrently, for different sources and
 * for the same one, and concurrently with commit and with attach and detach of
 * other sources.
 *
 * A backend may keep per-source state: @c attach returns it as an opaque
 * handle, which every later call for that source receives.
 */
struct vmres_irq_backend_ops {
	/** VMRES_IRQ_BACKEND_OPS_VERSION. */
	unsigned int version;
	/**
	 * Prepare delivery for a new source (KVM: eventfd + KVM_IRQFD). On error
	 * nothing may be left behind. Returns 0 or a VMRES_E* code (VMRES_ERANGE
	 * for a GSI the backend cannot route). Required.
	 */
	int (*attach)(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		      enum vmres_irq_trigger trigger, void **handle);
	/** Undo attach; cannot fail. Required. */
	void (*detach)(void *ctx, void *handle);
	/**
	 * Replace the whole route table with @p routes (sorted by GSI, one entry
	 * per GSI). Either every route is in force afterwards, or (on error) the
	 * previous table still is. Optional (NULL: routes need no installing).
	 */
	int (*commit)(void *ctx, const struct vmres_irq_route *routes, size_t n);
	/**
	 * Deliver one signal of a source. @p msg is the message in force for an
	 * MSI, NULL for a legacy line. Lock-free path: see above. Required.
	 */
	int (*deliver)(void *ctx, void *handle, uint32_t gsi, enum vmres_irq_kind kind,
		       const struct vmres_msi_msg *msg, enum vmres_irq_signal signal);
	/** Return a file descriptor of a source, or VMRES_ENOTSUP. Optional. */
	int (*get_fd)(void *ctx, void *handle, enum vmres_irq_fd which, int *fd);
	/** Release the backend (not the VM). Optional. */
	void (*destroy)(void *ctx);
};

/**
 * vmres_irq_backend_new() - wrap a user-written backend.
 * @param ops operation table; must outlive the backend (a static const table).
 * @param ctx passed as first argument to every operation.
 * @param out receives the backend.
 * @return 0; VMRES_EINVAL if @p ops or @p out is NULL or a required operation
 *   is missing; VMRES_EVERSION if @c ops->version is not one this build knows;
 *   VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_irq_backend_new(const struct vmres_irq_backend_ops *ops, void *ctx,
			  struct vmres_irq_backend **out);

/**
 * vmres_irq_backend_free() - destroy a backend that no manager owns; NULL is
 * accepted. A manager frees its backend itself.
 * Context: any thread.
 */
void vmres_irq_backend_free(struct vmres_irq_backend *be);

/**
 * Delivery function of the callback backend.
 * @param ctx the context given to vmres_irq_backend_callback_new().
 * @param gsi the source's GSI.
 * @param kind legacy or MSI.
 * @param msg for an MSI the message in force; NULL for a legacy line.
 * @param signal edge, or assert / deassert of a level-triggered line.
 * Context: called from vmres_irq_src_trigger(), _unmask() and _ack(), on the
 * caller's thread, possibly on several threads at once, never with a vmres lock
 * held.
 */
typedef void (*vmres_irq_deliver_fn)(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
				     const struct vmres_msi_msg *msg, enum vmres_irq_signal signal);

/**
 * vmres_irq_backend_callback_new() - a backend that calls @p fn on every delivery.
 * Every GSI is accepted; routes need no installing (the message in force is
 * passed to @p fn).
 * @param fn delivery function.
 * @param ctx its first argument.
 * @param out receives the backend.
 * @return 0; VMRES_EINVAL if @p fn or @p out is NULL; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_irq_backend_callback_new(vmres_irq_deliver_fn fn, void *ctx,
				   struct vmres_irq_backend **out);

/** Version of struct vmres_irq_kvm_sys this header describes. */
#define VMRES_IRQ_KVM_SYS_VERSION 1

/**
 * The system calls the KVM backend makes: the seam that tests and
 * instrumentation replace. Each function behaves as its libc namesake (returns
 * -1 and sets errno on failure) with @c ctx as an extra first argument. Pass
 * NULL to vmres_irq_backend_kvm_new() for the real system calls.
 */
struct vmres_irq_kvm_sys {
	unsigned int version; /**< VMRES_IRQ_KVM_SYS_VERSION */
	void *ctx;	      /**< first argument of every call */
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg); /**< ioctl(2) */
	int (*eventfd)(void *ctx, unsigned int initval, int flags);	   /**< eventfd(2) */
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);	   /**< read(2) */
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);  /**< write(2) */
	int (*close)(void *ctx, int fd);				   /**< close(2) */
};

/**
 * vmres_irq_backend_kvm_new() - the KVM backend for one VM.
 *
 * Each source gets a non-blocking eventfd bound to its GSI with KVM_IRQFD; a
 * level-triggered legacy line also gets a resample eventfd
 * (KVM_IRQFD_FLAG_RESAMPLE), which becomes readable when the guest EOIs the
 * line (KVM has then lowered it): call vmres_irq_src_ack(), and trigger again
 * if the device still holds its line. MSI routes are pushed with
 * KVM_SET_GSI_ROUTING, one ioctl per commit, holding the full table: the MSI
 * routes of the record plus, for every other GSI, the default irqchip routes
 * that KVM_CREATE_IRQCHIP installed (x86: GSIs 0-15 to the PIC and IOAPIC,
 * 16-23 to the IOAPIC). The constructor finds out whether the VM has an
 * in-kernel PIC/IOAPIC (KVM_GET_IRQCHIP); with a split or no irqchip there are
 * no irqchip routes and legacy sources are refused with VMRES_ERANGE.
 * The VM must have an in-kernel irqchip (full or split) before sources are
 * created. GSIs must be below 4096 (KVM_MAX_IRQ_ROUTES).
 *
 * @param vm_fd the VM's file descriptor (KVM_CREATE_VM); not closed by vmres.
 * @param sys system-call seam; NULL for the real calls. Copied.
 * @param out receives the backend.
 * @return 0; VMRES_EINVAL if @p out is NULL, @p vm_fd is negative, or @p sys
 *   lacks a function; VMRES_EVERSION for an unknown @c sys->version;
 *   VMRES_ESYS if the probe ioctl fails other than for a missing PIC (errno
 *   kept); VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_irq_backend_kvm_new(int vm_fd, const struct vmres_irq_kvm_sys *sys,
			      struct vmres_irq_backend **out);

/**
 * vmres_irq_mgr_new() - create an interrupt manager delivering through @p be.
 * @param be backend; on success the manager owns it and frees it with itself.
 * @param out receives the manager.
 * @return 0; VMRES_EINVAL if an argument is NULL; VMRES_EEXIST if @p be
 *   already belongs to a manager; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_irq_mgr_new(struct vmres_irq_backend *be, struct vmres_irq_mgr **out);

/**
 * vmres_irq_mgr_free() - free the manager, every group still in it, and its
 * backend; NULL is accepted. No source may be in use (triggered) meanwhile.
 * Context: any thread, not from a delivery of this manager.
 */
void vmres_irq_mgr_free(struct vmres_irq_mgr *mgr);

/**
 * vmres_irq_mgr_begin_update() - open (or nest) a batch: route changes are
 * recorded but pushed only by the matching outermost vmres_irq_mgr_commit().
 * Triggers meanwhile use the routes last committed.
 * @return 0; VMRES_EINVAL if @p mgr is NULL; VMRES_ESTATE if too deeply nested.
 * Context: configuration call (takes the manager's mutex).
 */
int vmres_irq_mgr_begin_update(struct vmres_irq_mgr *mgr);

/**
 * vmres_irq_mgr_commit() - close a batch; the outermost one pushes the whole
 * route table to the backend (one KVM_SET_GSI_ROUTING), if anything changed.
 * If the push fails nothing changes: the backend keeps the previous table and
 * the batch stays open with every recorded change, so the caller may retry, or
 * undo its changes and commit.
 * @return 0; VMRES_EINVAL if @p mgr is NULL; VMRES_ESTATE if no batch is open;
 *   VMRES_ENOMEM; VMRES_EFULL if the table exceeds the backend's limit;
 *   VMRES_ESYS if the push failed (errno kept); or another code the backend's
 *   commit returns.
 * Context: configuration call.
 */
int vmres_irq_mgr_commit(struct vmres_irq_mgr *mgr);

/**
 * vmres_irq_mgr_get_info() - manager-wide figures.
 * @return 0; VMRES_EINVAL if an argument is NULL.
 * Context: configuration call.
 */
int vmres_irq_mgr_get_info(struct vmres_irq_mgr *mgr, struct vmres_irq_mgr_info *out);

/**
 * vmres_irq_mgr_get_routes() - copy the manager's record of routes (what the
 * next commit pushes), sorted by GSI.
 * @param mgr the manager.
 * @param routes destination, may be NULL when @p cap is 0.
 * @param cap entries available at @p routes.
 * @param n receives the number of routes (even when more than @p cap).
 * @return 0; VMRES_EINVAL if @p mgr or @p n is NULL, or @p routes is NULL with
 *   @p cap > 0; VMRES_ENOMEM.
 * Context: configuration call.
 */
int vmres_irq_mgr_get_routes(struct vmres_irq_mgr *mgr, struct vmres_irq_route *routes, size_t cap,
			     size_t *n);

/**
 * vmres_irq_mgr_msi_notify() - a device reprogrammed an MSI: reconfigure the
 * MSI source of @p gsi with @p msg and commit (unless a batch is open). Has the
 * signature of the device manager's MSI notifier (vmres_devmgr_msi_fn): pass
 * it with the interrupt manager as context.
 * @param irq_mgr the struct vmres_irq_mgr.
 * @param instance device instance (informational; not checked).
 * @param res_index index of the resource in the device (informational).
 * @param gsi the MSI's GSI.
 * @param msg the new message.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT if no MSI source has
 *   @p gsi; and the errors of the commit (VMRES_ENOMEM, VMRES_EFULL,
 *   VMRES_ESYS), in which case nothing changed.
 * Context: configuration call; may be called from a device handler.
 */
int vmres_irq_mgr_msi_notify(void *irq_mgr, uint32_t instance, unsigned int res_index, uint32_t gsi,
			     const struct vmres_msi_msg *msg);

/**
 * vmres_irq_mgr_save_state() - what the guest programmed, source by source:
 * each source's state (vmres_irq_src_get_state(): GSI, configuration with
 * the MSI message and the legacy trigger mode, enabled, masked, pending,
 * asserted), in the manager's order: by GSI, legacy lines that share a GSI
 * (shares of one line, or unshared sources) in the order their groups were
 * created. A share's asserted bit says whether that device drives its line.
 * @param mgr the manager.
 * @param out destination, may be NULL when @p cap is 0.
 * @param cap entries available at @p out.
 * @param n receives the number of sources (even when more than @p cap).
 * @return 0; VMRES_EINVAL if @p mgr or @p n is NULL, or @p out is NULL with
 *   @p cap > 0; VMRES_ESTATE if a batch is open (its changes are not in
 *   force: commit first).
 * Context: configuration call. The sources' state words are read one by one:
 *   stop every thread that triggers them (the vCPUs and the devices) first.
 */
int vmres_irq_mgr_save_state(struct vmres_irq_mgr *mgr, struct vmres_irq_src_state *out, size_t cap,
			     size_t *n);

/**
 * vmres_irq_mgr_load_state() - give the sources the state saved by
 * vmres_irq_mgr_save_state() from a manager with the same sources (the VMM
 * re-created its groups from the same resources): entry i goes to the
 * manager's source i. Every MSI message is installed in one commit (KVM: one
 * KVM_SET_GSI_ROUTING), a legacy line whose trigger mode changes gets new
 * backend state (KVM: a new irqfd, with a resample eventfd for a level line),
 * and each source's enabled, masked, pending and asserted bits are set as
 * saved, delivering nothing: a pending MSI is delivered, with the loaded
 * message, when the guest unmasks it. A shared line is driven by the shares
 * loaded as asserted (raised again at the guest's next EOI, see
 * vmres_irq_src_resample(), or the next trigger). The live_msg field of
 * @p st is ignored.
 * @param mgr the manager.
 * @param st the saved states.
 * @param n their number: the manager's source count.
 * @return 0, or (nothing changed: sources, routes, backend):
 *   VMRES_EINVAL  NULL @p mgr, NULL @p st with @p n > 0, an unknown trigger
 *                 mode, a level MSI, or asserted without a level trigger;
 *   VMRES_ESIZE   @p n is not the number of sources;
 *   VMRES_ENOENT  entry i's GSI is not source i's;
 *   VMRES_EKIND   entry i's kind is not source i's, or an edge trigger for a
 *                 share of a shared line;
 *   VMRES_ESTATE  a batch is open;
 *   VMRES_ENOMEM, VMRES_EFULL, VMRES_ESYS (errno kept): the backend failed.
 * Context: configuration call; no source may be triggered or acked meanwhile
 *   (the lifetime rule: backend state may be replaced).
 */
int vmres_irq_mgr_load_state(struct vmres_irq_mgr *mgr, const struct vmres_irq_src_state *st,
			     size_t n);

/**
 * vmres_irq_group_new() - make one source per resource of @p res, in order.
 * Legacy sources start as edge-triggered (a share of a shared line,
 * u.irq.shared: level-triggered, on its line; see the file comment), MSI
 * sources with the resource's message; all start disabled and unmasked. MSI
 * routes are committed before return (unless a batch is open). Legacy lines
 * may share a GSI (unshared sources each with backend state of their own, or
 * shares of one line, which has the only backend state of its GSI); an MSI's
 * GSI is used by no other source.
 * @param mgr the manager.
 * @param res array of VMRES_RES_IRQ and VMRES_RES_MSI resources.
 * @param n number of resources, >= 1.
 * @param out receives the group.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ESIZE if @p n is 0;
 *   VMRES_EKIND if a resource is of another kind; VMRES_EEXIST if an MSI's GSI
 *   is already used (or used twice in @p res), or a legacy GSI is an MSI's,
 *   or a share's GSI has unshared sources or an unshared one's has shares
 *   (in the record or in @p res);
 *   VMRES_ERANGE if the backend cannot route a GSI; VMRES_ENOMEM; VMRES_EFULL;
 *   VMRES_ESYS (errno kept). On error nothing was created and every file
 *   descriptor opened meanwhile is closed.
 * Context: configuration call.
 */
int vmres_irq_group_new(struct vmres_irq_mgr *mgr, const struct vmres_resource *res, size_t n,
			struct vmres_irq_group **out);

/**
 * vmres_irq_group_free() - detach and free every source of the group (KVM:
 * KVM_IRQFD deassign, close the eventfds) and drop its routes (committed
 * unless a batch is open; if that push fails the manager stays dirty and the
 * next commit retries). NULL is accepted. Lifetime rule: no trigger or ack of
 * these sources may be running.
 * Context: configuration call.
 */
void vmres_irq_group_free(struct vmres_irq_group *group);

/** vmres_irq_group_count() - number of sources in @p group (0 for NULL). */
unsigned int vmres_irq_group_count(const struct vmres_irq_group *group);

/**
 * vmres_irq_group_src() - the source made from resource @p index.
 * @return 0 and *@p out; VMRES_EINVAL for NULL pointers; VMRES_ERANGE if
 *   @p index >= the group's count.
 * Context: any thread; the group must stay alive.
 */
int vmres_irq_group_src(struct vmres_irq_group *group, unsigned int index,
			struct vmres_irq_src **out);

/**
 * vmres_irq_src_enable() - let triggers through (idempotent).
 * @return 0; VMRES_EINVAL if @p src is NULL.
 * Context: lock-free; any thread, device handlers included.
 */
int vmres_irq_src_enable(struct vmres_irq_src *src);

/**
 * vmres_irq_src_disable() - refuse triggers and forget a pending interrupt
 * (idempotent). A raised level line stays raised until acked.
 * @return 0; VMRES_EINVAL if @p src is NULL.
 * Context: lock-free; any thread, device handlers included.
 */
int vmres_irq_src_disable(struct vmres_irq_src *src);

/**
 * vmres_irq_src_configure() - set a source's configuration.
 * MSI: the new message takes effect for the next trigger once committed (at
 * once unless a batch is open); a pending MSI is delivered with it on unmask.
 * Setting the message in force again pushes nothing. Legacy: a new trigger
 * mode replaces the backend's state for the source (KVM: a new irqfd, with or
 * without resample), new before old, so that a failure leaves the old one.
 * @param src the source.
 * @param config the configuration; its kind must be the source's.
 * @return 0; VMRES_EINVAL for NULL pointers, an unknown trigger mode, or an
 *   MSI with a level trigger; VMRES_EKIND if @c config->kind is not the
 *   source's kind, or an edge trigger for a share of a shared line (always
 *   level; configuring level again is a no-op); VMRES_ENOMEM; VMRES_EFULL;
 *   VMRES_ESYS (errno kept).
 *   On error the source and the routes are unchanged.
 * Context: configuration call; for a change of legacy trigger mode see the
 * lifetime rule in the file comment.
 */
int vmres_irq_src_configure(struct vmres_irq_src *src, const struct vmres_irq_config *config);

/**
 * vmres_irq_src_mask() - hold back deliveries: triggers now set pending.
 * @return 0; VMRES_EINVAL if @p src is NULL.
 * Context: lock-free; any thread, device handlers included (e.g. a guest write
 * to an MSI-X vector's mask bit).
 */
int vmres_irq_src_mask(struct vmres_irq_src *src);

/**
 * vmres_irq_src_unmask() - let deliveries through; if an interrupt is pending
 * (and the source enabled), deliver it once, with the message now in force.
 * @return 0; VMRES_EINVAL if @p src is NULL; an error of the backend's
 *   delivery (VMRES_ESYS), in which case the source is masked and pending again.
 * Context: lock-free; any thread, device handlers included.
 */
int vmres_irq_src_unmask(struct vmres_irq_src *src);

/**
 * vmres_irq_src_trigger() - raise the source: deliver now if enabled and
 * unmasked (a level line: raise it; a share of a shared line: drive it, and
 * raise it), remember as pending if masked (a share drives its line only
 * once delivered, on unmask).
 * @return 0 (delivered or made pending); VMRES_EINVAL if @p src is NULL;
 *   VMRES_ESTATE if the source is disabled (nothing delivered, nothing
 *   remembered); VMRES_ESYS if the backend's delivery failed (errno kept).
 * Context: lock-free, allocation-free; any thread, including vCPU threads and
 * device handlers; concurrently with anything but the lifetime rule.
 */
int vmres_irq_src_trigger(struct vmres_irq_src *src);

/**
 * vmres_irq_src_ack() - lower a level-triggered line: the guest EOId it (with
 * KVM: the resample fd became readable, and is drained here) or the device
 * dropped it. Clears asserted and pending; delivers VMRES_IRQ_SIGNAL_DEASSERT.
 * A share of a shared line: the device stops driving the line; the line is
 * lowered (DEASSERT, KVM: the resample fd drained) only if it was the last
 * driver, and stays raised for the others otherwise.
 * @return 0; VMRES_EINVAL if @p src is NULL; VMRES_ENOTSUP if the source is
 *   not a level-triggered legacy line; VMRES_ESYS if the backend failed.
 * Context: lock-free, like trigger; serialize it with the same source's
 * triggers (the device knows its line). Acks and triggers of different
 * shares of one line may run at once: the line may then be raised once
 * more than needed, never left low while a share drives it.
 */
int vmres_irq_src_ack(struct vmres_irq_src *src);

/**
 * vmres_irq_src_resample() - the guest EOId the level-triggered line of
 * @p src (with KVM: its resample fd became readable; KVM lowered the line):
 * deliver VMRES_IRQ_SIGNAL_DEASSERT (KVM: drain the resample fd), then raise
 * the line again (ASSERT) while it is still driven: for a share of a shared
 * line, while any share drives it (call it on any one of them, once per
 * EOI); for an unshared line, while @p src is asserted (not acked). Changes
 * no source's state: a device that no longer drives the line acks instead.
 * @return 0; VMRES_EINVAL if @p src is NULL; VMRES_ENOTSUP if the source is
 *   not a level-triggered legacy line; VMRES_ESYS if the backend failed.
 * Context: lock-free, like trigger; any thread (the one that polls the
 *   resample fd), concurrently with triggers and acks of the line's shares.
 */
int vmres_irq_src_resample(struct vmres_irq_src *src);

/**
 * vmres_irq_src_get_state() - a snapshot of the source.
 * @return 0; VMRES_EINVAL if an argument is NULL.
 * Context: configuration call (it takes the mutex to read the record).
 */
int vmres_irq_src_get_state(struct vmres_irq_src *src, struct vmres_irq_src_state *out);

/**
 * vmres_irq_src_get_fd() - a file descriptor of the source's backend state,
 * e.g. the resample eventfd to poll for a level line's EOI, or the trigger
 * eventfd to hand to another component (vhost, VFIO). Owned by vmres: valid
 * until the group is freed or the trigger mode changes; do not close it. The
 * shares of a shared line have their line's descriptors (the same for all,
 * valid while any of them lives).
 * Writing the trigger fd directly bypasses masking and pending.
 * @return 0 and *@p fd; VMRES_EINVAL for NULL pointers or an unknown @p which;
 *   VMRES_ENOTSUP if the backend has no such descriptor for this source.
 * Context: configuration call.
 */
int vmres_irq_src_get_fd(struct vmres_irq_src *src, enum vmres_irq_fd which, int *fd);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_IRQ_H */
