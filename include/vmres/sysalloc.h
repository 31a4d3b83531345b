/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file sysalloc.h
 * @brief The system allocator: named pools, atomic multi-request allocation, dumps.
 *
 * A VMM composes its system allocator from the pools it needs, each a named
 * address-space allocator (PIO or MMIO window, see addr.h) or a named number
 * allocator (legacy GSIs, MSI GSIs or IDs, see ids.h). No pool is mandatory;
 * vmres_sysalloc_new_x86_64() and vmres_sysalloc_new_aarch64() build ready-made
 * layouts with the platform's fixed devices pre-reserved.
 *
 * vmres_sysalloc_alloc() takes a list of requests ("a 4 KiB MMIO window below
 * 4 GiB, two MSI vectors and an instance id") and satisfies all of them or none:
 * on failure everything this call had already taken is given back in reverse
 * order, so the state is exactly as before, and the error says which request
 * failed and why. What the guest or firmware already chose (an exact address, a
 * specific GSI or ID) is reserved through the same call.
 *
 * Every allocation has an owner (a caller-chosen u64: a device instance id or a
 * pointer) and optionally a label; owners may be given names for the dumps.
 * VMRES_SYSALLOC_OWNER_PLATFORM owns what the presets pre-reserve.
 *
 * Shared legacy lines. PCI INTx lines are level-triggered and shared by design
 * (a PC has 16-24 of them), so an IRQ pool can also hand out shares of a line:
 * an IRQ request with u.irq.shared gets one. With u.irq.any it gets the
 * least-shared line of the pool: the lowest free number (which becomes a new
 * shared line) while there is one, else the shared line with the fewest
 * sharers (the lowest of those). Without, it gets the specific u.irq.gsi: it
 * joins the line there, or makes a free number a new line. A number held
 * exclusively is never shared, and a shared line is never handed out
 * exclusively (both are refused with VMRES_EOVERLAP, as any taken number).
 * Each share is a resource of its own (u.irq.shared set) with its owner and
 * label: released alone (vmres_sysalloc_release(), _release_owner()), and shown
 * by the dumps, a row or object per sharer in the order they joined. The line's
 * number returns to the pool with its last sharer. An owner may hold several
 * shares of one line (two functions of one PCI device); release and set_label
 * then act on one of them. The number counts once in the pool's allocator;
 * every share counts in vmres_sysalloc_pool_info.count.
 *
 * Cost: a pool is found by name in O(p), p the number of pools (a handful). An
 * allocation of k requests costs O(k log n) (an MSI request of count c counts as
 * c requests); releasing one resource O(log n); releasing all of an owner's k
 * resources O(k log n). Nothing scans a pool: allocation records are kept in a
 * hash table keyed by (pool, address or number; and owner, for a share of a
 * shared line) and in a per-owner list found through a hash table of owners.
 * A shared request costs O(log l) for the pool's l shared lines (a heap by
 * sharers finds the least-shared one); visiting a line's s sharers O(s).
 * Memory: about 150 bytes per allocated resource (every MSI vector and every
 * share is a resource; a record is 136 bytes on x86_64, 104 before shared
 * lines), about 64 more per shared line, on top of the pools' own cost.
 *
 * Context: no internal lock. Calls on one system allocator must be serialized by
 * the caller (e.g. under the device manager's writer lock); the const functions
 * (iteration, find, dumps, validate) may run concurrently with each other only.
 * Nothing here blocks, so any of it may be called from a device handler that
 * holds the caller's lock.
 */
#ifndef VMRES_SYSALLOC_H
#define VMRES_SYSALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <vmres/common.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque system allocator. */
struct vmres_sysalloc;

/** The owner of everything a preset pre-reserves (named "platform" in dumps). */
#define VMRES_SYSALLOC_OWNER_PLATFORM UINT64_MAX

/** Longest allocation label or owner name, including the terminating NUL. */
#define VMRES_SYSALLOC_LABEL_MAX 24

/** Which request of a batch failed, and why. */
struct vmres_sysalloc_error {
	int code;     /**< the VMRES_E* code of the failing request (0 on success) */
	size_t index; /**< index of that request in the batch */
};

/** A pool as reported by vmres_sysalloc_foreach_pool(). */
struct vmres_sysalloc_pool_info {
	const char *name;	  /**< the pool's name (valid while the pool lives) */
	enum vmres_res_kind kind; /**< VMRES_RES_ADDR, _IRQ, _MSI or _ID */
	enum vmres_space space;	  /**< VMRES_RES_ADDR only: PIO or MMIO; else 0 */
	uint64_t base;		  /**< first address or number of the pool */
	uint64_t last;		  /**< last address or number (inclusive) */
	uint64_t count;		  /**< resources currently allocated from it */
	bool guest;		  /**< a guest pool (vmres_sysalloc_add_guest_pool()) */
};

/** One allocated resource as reported by iteration and lookups. */
struct vmres_sysalloc_alloc_info {
	struct vmres_resource res; /**< the resource (an MSI's message is all zero) */
	uint64_t owner;		   /**< its owner */
	const char *owner_name;	   /**< the owner's name, or NULL if none was set */
	const char *label;	   /**< the allocation's label, or NULL if none */
};

/**
 * Iteration callback: return 0 to go on, anything else to stop (the iterating
 * function then returns that value). It must not modify the allocator.
 */
typedef int (*vmres_sysalloc_pool_fn)(void *ctx, const struct vmres_sysalloc_pool_info *pool);
/** Iteration callback for allocations; as vmres_sysalloc_pool_fn. */
typedef int (*vmres_sysalloc_alloc_fn)(void *ctx, const struct vmres_sysalloc_alloc_info *alloc);

/**
 * vmres_sysalloc_new() - create an empty system allocator (no pools).
 * @param out receives the allocator; free it with vmres_sysalloc_free().
 * @return 0; VMRES_EINVAL if @p out is NULL; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_sysalloc_new(struct vmres_sysalloc **out);

/**
 * vmres_sysalloc_free() - destroy an allocator, its pools and all records.
 * @param sa the allocator, or NULL (then nothing happens).
 * Context: no other call on @p sa may be running.
 */
void vmres_sysalloc_free(struct vmres_sysalloc *sa);

/**
 * vmres_sysalloc_add_addr_pool() - add an address pool over [@p base, @p last].
 * @param sa the allocator.
 * @param name the pool's name: 1 to VMRES_POOL_NAME_MAX - 1 bytes of text (common.h).
 * @param space VMRES_SPACE_PIO (the window must lie in [0, 0xFFFF]) or VMRES_SPACE_MMIO.
 * @param base first address of the window.
 * @param last last address of the window (inclusive).
 * @return 0, or:
 *   VMRES_EINVAL  NULL @p sa or @p name, an empty or too long name or one that
 *                 is not text, an unknown space, or @p base > @p last;
 *   VMRES_ERANGE  a PIO window that passes 0xFFFF;
 *   VMRES_EEXIST  a pool of that name exists;
 *   VMRES_EOVERLAP the window overlaps another pool's window in the same space
 *                 (two pools must never hand out the same address);
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(p).
 */
int vmres_sysalloc_add_addr_pool(struct vmres_sysalloc *sa, const char *name,
				 enum vmres_space space, uint64_t base, uint64_t last);

/**
 * vmres_sysalloc_add_guest_pool() - add the pool of @p space that records
 * ranges placed outside every ordinary pool: by the guest (a BAR that Linux
 * assigned above RAM, vmres_devmgr_set_policy()) or by the VMM, which
 * reserves there, with an owner tag of its own, what the guest must never be
 * given (its RAM, firmware, reserved regions). Its window is the whole space,
 * but its ranges stay out of every ordinary pool's window: it takes only exact
 * requests (vmres_sysalloc_reserve()), each outside all of them, and no pool
 * is added or resized over one of its ranges. At most one per space; it
 * cannot be resized.
 * @param sa the allocator.
 * @param name the pool's name: 1 to VMRES_POOL_NAME_MAX - 1 bytes of text.
 * @param space VMRES_SPACE_PIO ([0, 0xFFFF]) or VMRES_SPACE_MMIO ([0, 2^64 - 1]).
 * @return 0, or: VMRES_EINVAL (NULL @p sa, a bad name, an unknown space);
 *   VMRES_EEXIST (a pool of that name, or a guest pool of that space);
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(p).
 */
int vmres_sysalloc_add_guest_pool(struct vmres_sysalloc *sa, const char *name,
				  enum vmres_space space);

/**
 * vmres_sysalloc_resize_pool() - give an ordinary address pool the window
 * [@p base, @p last]: a preset is a starting point that the VMM adapts to its
 * memory map. Its allocations stay as they are (owners, labels, alignment).
 * @param sa the allocator.
 * @param name the pool.
 * @param base the new window's first address.
 * @param last its last address (inclusive).
 * @return 0, or (nothing changed): VMRES_EINVAL (NULL pointer, @p base >
 *   @p last); VMRES_EPOOL (no such pool); VMRES_EKIND (a number pool or a guest
 *   pool); VMRES_ERANGE (a PIO window past 0xFFFF); VMRES_ESTATE (an
 *   allocation would lie outside the new window); VMRES_EOVERLAP (the window
 *   would meet another pool's or a range of the guest pool); VMRES_ENOMEM.
 * Context: caller serializes; O(p + n log n) for the pool's n allocations.
 */
int vmres_sysalloc_resize_pool(struct vmres_sysalloc *sa, const char *name, uint64_t base,
			       uint64_t last);

/**
 * vmres_sysalloc_remove_pool() - remove an empty pool of any kind. The pools
 * added after it move up one place in iteration, dumps and snapshots.
 * @param sa the allocator.
 * @param name the pool.
 * @return 0, or (nothing changed): VMRES_EINVAL (NULL pointer); VMRES_EPOOL (no
 *   such pool); VMRES_ESTATE (it still holds allocations).
 * Context: caller serializes; O(p + n) for the n allocations of all pools.
 */
int vmres_sysalloc_remove_pool(struct vmres_sysalloc *sa, const char *name);

/**
 * vmres_sysalloc_add_id_pool() - add a number pool over [@p lo, @p hi].
 * IRQ and MSI pools share one namespace (GSIs), so their ranges may not
 * overlap; ID pools are independent namespaces and may.
 * @param sa the allocator.
 * @param name the pool's name: 1 to VMRES_POOL_NAME_MAX - 1 bytes of text (common.h).
 * @param kind VMRES_RES_IRQ (legacy GSIs), VMRES_RES_MSI (MSI GSIs) or VMRES_RES_ID.
 * @param lo lowest number.
 * @param hi highest number (inclusive).
 * @return 0, or:
 *   VMRES_EINVAL  NULL @p sa or @p name, an empty or too long name or one that
 *                 is not text, or @p lo > @p hi;
 *   VMRES_EKIND   @p kind is not IRQ, MSI or ID;
 *   VMRES_EEXIST  a pool of that name exists;
 *   VMRES_EOVERLAP an IRQ or MSI range that overlaps another IRQ or MSI pool;
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(p).
 */
int vmres_sysalloc_add_id_pool(struct vmres_sysalloc *sa, const char *name,
			       enum vmres_res_kind kind, uint32_t lo, uint32_t hi);

/**
 * vmres_sysalloc_new_x86_64() - a PC layout (sources in src/sysalloc/presets.c):
 *
 *   "pio"        PIO  [0x0, 0xFFFF]; pre-reserved: dma1 0x00-0x1f, pic1 0x20-0x21,
 *                timer0 0x40-0x43, timer1 0x50-0x53, keyboard 0x60 and 0x64,
 *                rtc 0x70-0x71, dma page reg 0x80-0x8f, pic2 0xa0-0xa1,
 *                dma2 0xc0-0xdf, fpu 0xf0-0xff, com4 0x2e8-0x2ef, com2 0x2f8-0x2ff,
 *                com3 0x3e8-0x3ef, com1 0x3f8-0x3ff, pci conf1 0xcf8-0xcff.
 *   "mmio32"     MMIO [0xC0000000, 0xFFFFFFFF] (the 1 GiB hole below 4 GiB);
 *                pre-reserved: ioapic 0xFEC00000 (4 KiB), hpet 0xFED00000 (1 KiB),
 *                lapic/msi 0xFEE00000 (1 MiB: every write there is an MSI),
 *                pci ecam 0xE0000000 (256 MiB: 256 buses, vmres_pci_ecam_new()).
 *   "mmio64"     MMIO [0x10_0000_0000, 0x17_FFFF_FFFF] (32 GiB from 64 GiB; guest
 *                RAM must end below 64 GiB, and it fits a 39-bit physical space).
 *   "gsi-legacy" IRQ  [0, 23] (the IOAPIC's pins); pre-reserved: 0 timer,
 *                1 keyboard, 2 cascade, 3 com2, 4 com1, 8 rtc, 12 mouse, 13 fpu.
 *   "gsi-msi"    MSI  [24, 4095] (KVM_MAX_IRQ_ROUTES is 4096).
 *   "device-id"  ID   [0, 0xFFFFFFFF].
 *
 * The memory map it implies (guest RAM is the VMM's: below 3 GiB, and from
 * 4 GiB to below 64 GiB):
 *
 *     0x0000_0000  RAM (low)                  ...  0xBFFF_FFFF
 *     0xC000_0000  mmio32: 32-bit BARs        ...  0xDFFF_FFFF
 *     0xE000_0000  mmio32: pci ecam (reserved) ... 0xEFFF_FFFF
 *     0xF000_0000  mmio32: 32-bit BARs        ...  0xFFFF_FFFF
 *                    0xFEC0_0000 ioapic, 0xFED0_0000 hpet, 0xFEE0_0000 lapic/msi
 *     0x1_0000_0000  RAM (high)               ...  below 0x10_0000_0000
 *     0x10_0000_0000 mmio64: 64-bit BARs      ...  0x17_FFFF_FFFF
 * @param out receives the allocator.
 * @return 0; VMRES_EINVAL if @p out is NULL; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_sysalloc_new_x86_64(struct vmres_sysalloc **out);

/**
 * vmres_sysalloc_new_aarch64() - a layout after QEMU's "virt" machine:
 *
 *   "mmio32"     MMIO [0x08000000, 0x0FFFFFFF] (platform devices below RAM at
 *                1 GiB); pre-reserved: gic-dist 0x08000000 (64 KiB), gic-redist
 *                0x080A0000 (15.375 MiB, 123 redistributors), uart 0x09000000
 *                (4 KiB), rtc 0x09010000 (4 KiB).
 *   "pci-mmio32" MMIO [0x10000000, 0x3EFEFFFF] (the PCI host's 32-bit window).
 *   "mmio64"     MMIO [0x80_0000_0000, 0xFF_FFFF_FFFF] (512 GiB at 512 GiB: the
 *                PCI host's 64-bit window, and other 64-bit devices).
 *   "pci-ecam"   MMIO [0x40_1000_0000, 0x40_1FFF_FFFF]; pre-reserved whole: pci
 *                ecam (256 buses, QEMU virt's high ECAM).
 *   "gsi-spi"    IRQ  [32, 1019] (GIC SPI INTIDs; the KVM irqchip pin is INTID - 32);
 *                pre-reserved: 33 uart, 34 rtc.
 *   "device-id"  ID   [0, 0xFFFFFFFF].
 * No PIO pool (Arm has no port I/O) and no MSI pool (ITS LPIs are the VMM's choice).
 *
 * The memory map it implies (guest RAM is the VMM's, from 1 GiB up to below
 * 0x40_1000_0000):
 *
 *     0x0000_0000    flash (not in a pool)     ...  0x07FF_FFFF
 *     0x0800_0000    mmio32: GIC, UART, RTC    ...  0x0FFF_FFFF
 *     0x1000_0000    pci-mmio32: 32-bit BARs   ...  0x3EFE_FFFF
 *     0x4000_0000    RAM                       ...
 *     0x40_1000_0000 pci-ecam (all reserved)   ...  0x40_1FFF_FFFF
 *     0x80_0000_0000 mmio64: 64-bit BARs       ...  0xFF_FFFF_FFFF
 * @return as vmres_sysalloc_new_x86_64().
 */
int vmres_sysalloc_new_aarch64(struct vmres_sysalloc **out);

/**
 * vmres_sysalloc_alloc() - satisfy every request, or none.
 *
 * Requests are taken in order, so a later request sees what an earlier one of
 * the same call took. Kinds:
 *   ADDR  vmres_addr_alloc() in the pool, with @p owner as the allocator's tag
 *         (req.owner is ignored); u.addr.space must be the pool's space.
 *   IRQ   any: the lowest free GSI; else the specific u.irq.gsi. With
 *         u.irq.shared a share of a shared line (see the file comment): any:
 *         the lowest free GSI, else the least-shared line; else u.irq.gsi,
 *         joined if shared, taken if free.
 *   MSI   count vectors; contiguous: one block of count (a power of two) aligned
 *         to count; else count separate lowest-free GSIs. !any: exactly
 *         [gsi, gsi + count - 1] (contiguous also demands gsi % count == 0).
 *         Yields count resources in ascending order.
 *   ID    any: the lowest free id; else the specific u.id.id.
 * @param sa the allocator.
 * @param reqs the requests.
 * @param n_reqs how many (0 is allowed and allocates nothing).
 * @param owner the owner of every resource allocated.
 * @param out receives the resources, in request order.
 * @param out_cap room in @p out.
 * @param n_out receives the number of resources written.
 * @param err if not NULL, receives the index and code of the failing request
 *        (written on failure only; on VMRES_EFULL the index is the first
 *        request that does not fit).
 * @return 0, or (nothing allocated, @p out and @p n_out untouched):
 *   VMRES_EINVAL  a NULL pointer (also @p reqs or @p out with n_reqs > 0), an
 *                 unknown request kind, a pool name that is not text
 *                 (common.h), or a malformed addr request (see addr.h);
 *   VMRES_EFULL   @p out_cap is smaller than the number of resources;
 *   VMRES_EPOOL   no pool of that name (also one too long to be a pool's);
 *   VMRES_EKIND   the pool holds another kind, or an addr request for another space;
 *   VMRES_ESIZE   a zero size or MSI count;
 *   VMRES_EALIGN  a bad alignment, or a contiguous MSI count not a power of two;
 *   VMRES_EMISALIGNED an exact address or contiguous MSI start not aligned;
 *   VMRES_ERANGE  a specific GSI or ID (or block) outside the pool, or an exact
 *                 range or sub-window outside the window;
 *   VMRES_EOVERLAP a specific address, GSI or ID that is already taken (a
 *                 shared line for an exclusive IRQ request, an exclusively
 *                 held GSI for a shared one);
 *   VMRES_ENOSPC  no room for the request (shared: no free GSI and no
 *                 shared line in the pool);
 *   VMRES_EOVERFLOW an addr request that cannot exist in 64 bits;
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(k log n).
 */
int vmres_sysalloc_alloc(struct vmres_sysalloc *sa, const struct vmres_request *reqs, size_t n_reqs,
			 uint64_t owner, struct vmres_resource *out, size_t out_cap, size_t *n_out,
			 struct vmres_sysalloc_error *err);

/**
 * vmres_sysalloc_reserve() - take exactly what was already chosen (by the guest,
 * the firmware, a snapshot, or the platform's fixed devices) in pool @p pool: the
 * range [base, base + size - 1] of an address pool, or the number @p base of an
 * IRQ, MSI or ID pool (@p size and @p align are then ignored), and label it. The
 * one-request form of vmres_sysalloc_alloc() with an exact address or a specific
 * number; an IRQ number is taken exclusively (a share is asked for with
 * vmres_sysalloc_alloc()).
 * @param sa the allocator.
 * @param pool the pool's name (text, common.h).
 * @param base the first address, or the number.
 * @param size the range's size (address pools).
 * @param align 0 or 1 for none, else a power of two that @p base must be a
 *        multiple of; recorded in the resource (address pools).
 * @param owner the owner.
 * @param label NULL or "" for none, else up to VMRES_SYSALLOC_LABEL_MAX - 1
 *        bytes of text (vmres_sysalloc_set_label()).
 * @param out NULL, or receives the resource (for vmres_sysalloc_release()).
 * @return 0, or (nothing allocated, @p out untouched):
 *   VMRES_EINVAL  NULL @p sa or @p pool, a pool name or label that is not text
 *                 (common.h; also a too long label);
 *   VMRES_EPOOL   no pool of that name;
 *   VMRES_ERANGE  outside the pool's window or range (a number above
 *                 UINT32_MAX for a number pool);
 *   VMRES_ESIZE, VMRES_EALIGN, VMRES_EMISALIGNED, VMRES_EOVERFLOW: a zero size,
 *                 a bad alignment, a misaligned @p base, a range past 2^64 - 1;
 *   VMRES_EOVERLAP already taken (in part);
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(log n).
 */
int vmres_sysalloc_reserve(struct vmres_sysalloc *sa, const char *pool, uint64_t base,
			   uint64_t size, uint64_t align, uint64_t owner, const char *label,
			   struct vmres_resource *out);

/**
 * vmres_sysalloc_release() - give back one resource that vmres_sysalloc_alloc()
 * handed out: same pool, kind, and (for addresses) the same base and size. An MSI
 * message, and an address resource's align, are not compared. For a GSI that
 * is a shared line, @p owner's share is released (u.irq.shared is not
 * compared); the number returns to the pool with the last share.
 * @param sa the allocator.
 * @param r the resource.
 * @param owner its owner.
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL  NULL @p sa or @p r, or an r->pool that is not text (common.h);
 *   VMRES_EPOOL   no pool named r->pool;
 *   VMRES_EKIND   the pool holds another kind (or another space);
 *   VMRES_ENOENT  nothing is allocated exactly there (e.g. released twice);
 *   VMRES_EOWNER  it belongs to another owner (a shared line: @p owner holds
 *                 no share of it).
 * Context: caller serializes; O(log n + log l).
 */
int vmres_sysalloc_release(struct vmres_sysalloc *sa, const struct vmres_resource *r,
			   uint64_t owner);

/**
 * A move of an address allocation, prepared by vmres_sysalloc_move_prepare()
 * and then either committed or aborted. Every field is private.
 */
struct vmres_sysalloc_move {
	void *priv_rec;	    /**< private: the record moved, or a new one */
	void *priv_pool;    /**< private: the destination pool */
	void *priv_owner;   /**< private: the owner, for a new record */
	uint64_t priv_base; /**< private: the new base */
	bool priv_held;	    /**< private: an allocation is moved (not a new one made) */
};

/**
 * vmres_sysalloc_move_prepare() - first half of moving the address resource
 * @p r of @p owner to start at @p new_base, same size: a guest reprogrammed a
 * BAR. The destination is the pool of r's space whose window holds
 * @p new_base: r's own pool when it does, else another (firmware puts small
 * 64-bit BARs below 4 GiB). If @p sa holds r for @p owner (r->pool, r's base
 * and size), that allocation moves, keeping its label and alignment, and the
 * new range may overlap the old one; otherwise (r names no pool of @p sa, or
 * nothing of @p owner's is exactly there, as after a restore into another
 * allocator) the move makes a new exact allocation of @p owner with r's
 * alignment and no label. @p new_base equal to r's base with r held is a move
 * that changes nothing.
 *
 * Prepare makes every check and takes every piece of memory the move needs,
 * and changes nothing that a query or dump shows. It must be followed by
 * exactly one vmres_sysalloc_move_commit() (which cannot fail) or
 * vmres_sysalloc_move_abort(), with no other call that changes @p sa in
 * between.
 *
 * With VMRES_SYSALLOC_MOVE_GUEST in @p flags, a new range that lies outside
 * every ordinary pool's window goes to the guest pool of its space
 * (vmres_sysalloc_add_guest_pool()), where it must not meet another range.
 * @param sa the allocator.
 * @param r the resource as its holder knows it (kind VMRES_RES_ADDR).
 * @param owner its owner.
 * @param new_base the new first address.
 * @param flags 0, or VMRES_SYSALLOC_MOVE_GUEST.
 * @param mv receives the prepared move.
 * @return 0, or (nothing changed, @p mv untouched):
 *   VMRES_EINVAL    a NULL pointer, @p r not an address resource, unknown flags;
 *   VMRES_ESIZE     r's size is 0;
 *   VMRES_EOVERFLOW the new range passes 2^64 - 1;
 *   VMRES_ERANGE    no pool of r's space holds the new range whole (with
 *                   VMRES_SYSALLOC_MOVE_GUEST: nor is it outside every
 *                   window with a guest pool to take it);
 *   VMRES_EMISALIGNED @p new_base not a multiple of r's alignment;
 *   VMRES_EOVERLAP  another allocation holds part of the new range;
 *   VMRES_ENOMEM.
 * Context: caller serializes; O(p + log n) for p pools.
 */
int vmres_sysalloc_move_prepare(struct vmres_sysalloc *sa, const struct vmres_resource *r,
				uint64_t owner, uint64_t new_base, unsigned int flags,
				struct vmres_sysalloc_move *mv);

/** vmres_sysalloc_move_prepare() flag: follow the guest outside every pool. */
#define VMRES_SYSALLOC_MOVE_GUEST 0x1u

/**
 * vmres_sysalloc_move_commit() - make a prepared move: the allocation is now
 * at its new base, in its destination pool.
 * @param sa the allocator the move was prepared on.
 * @param mv the prepared move (spent).
 * @param out NULL, or receives the resource as it now is (for release): r
 *   with the new base and the destination pool's name.
 * Context: caller serializes; cannot fail; O(log n).
 */
void vmres_sysalloc_move_commit(struct vmres_sysalloc *sa, struct vmres_sysalloc_move *mv,
				struct vmres_resource *out);

/**
 * vmres_sysalloc_move_abort() - drop a prepared move; nothing changes.
 * @param sa the allocator the move was prepared on.
 * @param mv the prepared move (spent).
 * Context: caller serializes; cannot fail; O(1).
 */
void vmres_sysalloc_move_abort(struct vmres_sysalloc *sa, struct vmres_sysalloc_move *mv);

/**
 * vmres_sysalloc_release_owner() - give back every resource of @p owner
 * (an owner with none is fine). The owner's name, if any, is kept.
 * @return 0; VMRES_EINVAL for NULL @p sa.
 * Context: caller serializes; O(k log n) for k resources.
 */
int vmres_sysalloc_release_owner(struct vmres_sysalloc *sa, uint64_t owner);

/**
 * vmres_sysalloc_set_owner_name() - name an owner for dumps ("virtio-net0").
 * @param sa the allocator.
 * @param owner the owner tag.
 * @param name 1 to VMRES_SYSALLOC_LABEL_MAX - 1 bytes of text (common.h), or NULL
 *        to remove it.
 * @return 0; VMRES_EINVAL for NULL @p sa, an empty or too long name or one that is
 *   not text; VMRES_ENOMEM.
 * Context: caller serializes; O(1).
 */
int vmres_sysalloc_set_owner_name(struct vmres_sysalloc *sa, uint64_t owner, const char *name);

/**
 * vmres_sysalloc_set_label() - label one allocated resource ("com1") for dumps.
 * @param sa the allocator.
 * @param r the resource, as for vmres_sysalloc_release().
 * @param owner its owner.
 * @param label up to VMRES_SYSALLOC_LABEL_MAX - 1 bytes of text (common.h); "" or
 *        NULL removes it.
 * @return 0, or as vmres_sysalloc_release(); VMRES_EINVAL for a label that is not
 *   text (a too long one included).
 * Context: caller serializes; O(log n).
 */
int vmres_sysalloc_set_label(struct vmres_sysalloc *sa, const struct vmres_resource *r,
			     uint64_t owner, const char *label);

/**
 * vmres_sysalloc_foreach_pool() - visit every pool in the order it was added.
 * @return 0; VMRES_EINVAL for NULL pointers; or the callback's non-zero value.
 * Context: read-only; O(p).
 */
int vmres_sysalloc_foreach_pool(const struct vmres_sysalloc *sa, vmres_sysalloc_pool_fn fn,
				void *ctx);

/**
 * vmres_sysalloc_foreach_alloc() - visit every allocated resource: pools in the
 * order they were added, each in address or number order; a shared line's
 * shares (res.u.irq.shared set) one after another at its number, in the order
 * they joined. Replaying each as an exact (ADDR, with its align) or specific
 * (IRQ, MSI count 1, ID) request with its owner, then its label, rebuilds the
 * same state in a sysalloc with the same pools (this is what a snapshot does):
 * a share as a specific IRQ request with u.irq.shared, which makes the line at
 * its first share and joins it at the others, in the same order.
 * @param sa the allocator.
 * @param fn called once per resource (once per share of a shared line).
 * @param ctx its first argument.
 * @return 0; VMRES_EINVAL for NULL pointers; or the callback's non-zero value;
 *   VMRES_ECORRUPT if a pool holds an allocation without a record (a bug that
 *   vmres_sysalloc_validate() reports too).
 * Context: read-only; O(n log n).
 */
int vmres_sysalloc_foreach_alloc(const struct vmres_sysalloc *sa, vmres_sysalloc_alloc_fn fn,
				 void *ctx);

/**
 * vmres_sysalloc_foreach_owner_alloc() - visit every resource of @p owner, most
 * recently allocated first.
 * @return as vmres_sysalloc_foreach_alloc(). Context: read-only; O(k).
 */
int vmres_sysalloc_foreach_owner_alloc(const struct vmres_sysalloc *sa, uint64_t owner,
				       vmres_sysalloc_alloc_fn fn, void *ctx);

/**
 * vmres_sysalloc_foreach_sharer() - visit every share of the shared line
 * @p gsi of IRQ pool @p pool, in the order they joined (each with
 * res.u.irq.shared set).
 * @param sa the allocator.
 * @param pool the pool's name (text, common.h).
 * @param gsi the line's number.
 * @param fn called once per share.
 * @param ctx its first argument.
 * @return 0; VMRES_EINVAL for NULL pointers or a pool name that is not text;
 *   VMRES_EPOOL no such pool; VMRES_EKIND not an IRQ pool; VMRES_ENOENT
 *   @p gsi is no shared line (free, held exclusively, or outside the pool);
 *   or the callback's non-zero value.
 * Context: read-only; O(1 + s) for s sharers.
 */
int vmres_sysalloc_foreach_sharer(const struct vmres_sysalloc *sa, const char *pool, uint32_t gsi,
				  vmres_sysalloc_alloc_fn fn, void *ctx);

/** Callback for vmres_sysalloc_foreach_owner(); as vmres_sysalloc_pool_fn. */
typedef int (*vmres_sysalloc_owner_fn)(void *ctx, uint64_t owner, const char *name, uint64_t count);

/**
 * vmres_sysalloc_foreach_owner() - visit every owner that holds resources or has
 * a name, in ascending owner order, with its name (NULL if none) and the number
 * of resources it holds. With foreach_alloc, this is all a snapshot needs.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOMEM; or the callback's
 *   non-zero value.
 * Context: read-only; O(o log o) for o owners.
 */
int vmres_sysalloc_foreach_owner(const struct vmres_sysalloc *sa, vmres_sysalloc_owner_fn fn,
				 void *ctx);

/**
 * vmres_sysalloc_find_pool() - the ordinary (not guest) address pool whose window
 * holds @p addr in @p space.
 * @param sa the allocator.
 * @param space VMRES_SPACE_PIO or VMRES_SPACE_MMIO.
 * @param addr the address.
 * @param name_out receives the pool's name (VMRES_POOL_NAME_MAX bytes).
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT if no pool holds it.
 * Context: read-only; O(p).
 */
int vmres_sysalloc_find_pool(const struct vmres_sysalloc *sa, enum vmres_space space, uint64_t addr,
			     char name_out[VMRES_POOL_NAME_MAX]);

/**
 * vmres_sysalloc_find() - the allocation in pool @p pool that contains @p value
 * (an address, or a GSI / id number); for a shared line, its first sharer
 * (vmres_sysalloc_foreach_sharer() visits them all).
 * @param sa the allocator.
 * @param pool the pool's name.
 * @param value the address or number.
 * @param out receives it; its name pointers stay valid until the next change.
 * @return 0; VMRES_EINVAL for NULL pointers or a @p pool that is not text
 *   (common.h); VMRES_EPOOL no such pool; VMRES_ENOENT @p value is free or
 *   outside the pool.
 * Context: read-only; O(log n).
 */
int vmres_sysalloc_find(const struct vmres_sysalloc *sa, const char *pool, uint64_t value,
			struct vmres_sysalloc_alloc_info *out);

/**
 * vmres_sysalloc_dump() - print the whole state, grouped by pool, in the style
 * of /proc/iomem, /proc/ioports and /proc/interrupts:
 *
 *     pool mmio32: mmio [c0000000-ffffffff]
 *       fec00000-fec00fff : platform ioapic
 *     pool gsi-legacy: irq [0-23]
 *          4 : platform com1
 *         16 : virtio-net0 intx [shared]
 *         16 : virtio-blk0 intx [shared]
 *
 * Each allocation shows its owner's name (or "owner 0x..") and its label; a
 * shared line has a row per sharer, in the order they joined, marked
 * "[shared]".
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ESYS if writing fails;
 *   VMRES_ECORRUPT as vmres_sysalloc_foreach_alloc().
 * Context: read-only; O(n log n).
 */
int vmres_sysalloc_dump(const struct vmres_sysalloc *sa, FILE *f);

/**
 * vmres_sysalloc_dump_str() - vmres_sysalloc_dump() into a malloc'd string.
 * @param sa the allocator.
 * @param out receives the NUL-terminated text; free it with free().
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOMEM.
 * Context: read-only; O(n log n).
 */
int vmres_sysalloc_dump_str(const struct vmres_sysalloc *sa, char **out);

/**
 * vmres_sysalloc_dump_json() - the same state as JSON (made with jansson):
 *
 *     {"pools": [{"name": "pio", "kind": "addr", "space": "pio",
 *                 "base": "0x0", "last": "0xffff",
 *                 "allocations": [{"base": "0x20", "last": "0x21", "size": "0x2",
 *                                  "align": "0x0", "owner": "0xffffffffffffffff",
 *                                  "owner_name": "platform", "label": "pic1"}]},
 *                {"name": "gsi-msi", "kind": "msi", "base": 24, "last": 4095,
 *                 "allocations": [{"number": 24, "owner": "0x7",
 *                                  "owner_name": null, "label": null}]}]}
 *
 * Addresses, sizes and owners are 64-bit values and are written as "0x..."
 * strings (JSON numbers lose precision above 2^53); numbers of number pools are
 * JSON integers. Names and labels are always text (common.h), so every one
 * appears. Each share of a shared line is an allocation object of its own,
 * in the order they joined, with one more key, "shared": true (unshared
 * objects have no such key).
 * @param sa the allocator.
 * @param out receives the NUL-terminated text; free it with free() (it is not
 *   allocated through jansson's allocator).
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOMEM (@p out untouched,
 *   nothing leaked; never a partial text).
 * Context: read-only; O(n log n).
 */
int vmres_sysalloc_dump_json(const struct vmres_sysalloc *sa, char **out);

/**
 * vmres_sysalloc_validate() - check that the records agree with the pools'
 * allocators and the owner lists, and the shared lines with their sharers and
 * the heap that orders them (debug aid for tests).
 * @return 0; VMRES_ECORRUPT; VMRES_EINVAL for NULL. Context: read-only; O(n log n).
 */
int vmres_sysalloc_validate(const struct vmres_sysalloc *sa);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_SYSALLOC_H */
