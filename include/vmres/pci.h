/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file pci.h
 * @brief PCI configuration space of a type-0 function, BARs and MSI wired to the
 *        device manager, and a configuration-mechanism-#1 host bridge.
 *
 * A device model describes its function once (IDs, class, BARs, MSI) and then
 * forwards every config-space access of the guest to vmres_pci_func_config_read()
 * and vmres_pci_func_config_write(). The helper implements the standard type-0
 * header and the MSI capability; the device sees only what is special about it
 * (its own registers and capabilities, through struct vmres_pci_func_ops).
 *
 *     config space of a function (offsets in hex)
 *     00 vendor | device     04 command | status    08 rev | class (3 bytes)
 *     0c cls | lat | hdr | bist                     10..24 BAR0..BAR5
 *     28 cardbus (0)         2c subsys vendor | subsys id
 *     30 expansion ROM (0)   34 capability pointer  3c int line | int pin | 0 | 0
 *     40..ff capabilities: the MSI capability (if any) and the device's own bytes
 *
 * What the guest does and what happens (the "mapper" is the device manager once
 * the function is bound with vmres_pci_func_bind()):
 *  - BAR sizing is a write, not an address: a BAR dword written as all ones
 *    (its type bits aside) is a sizing probe and reads back ~(size - 1) with
 *    the type bits (bit 0 set for I/O; bits 2:1 = 10b for a 64-bit and bit 3
 *    for a prefetchable memory BAR). Every other value written is an address,
 *    whatever its bits (a 1 GiB BAR at 0x10_c000_0000 is one), masked by the
 *    size; 0 means "unassigned". While a dword is a probe, or the address is
 *    0, nothing is asked of the mapper and the range stays where it is;
 *    writing the old value back (the end of a sizing sequence) is a no-op.
 *  - One owner per address: a BAR's range is reserved for the device (with the
 *    device manager: in the system allocator) wherever the register says,
 *    decode on or off. Every address written moves the range at once: its
 *    reservation, and the range on the bus if decode is on. A refused move
 *    (outside the pools, onto another device, misaligned for the resource)
 *    leaves the range where it was and the register shows that address again;
 *    so at every moment the register, the bus and the allocator agree (but
 *    for a pending 64-bit half, below).
 *  - Command register MEM (bit 1) / IO (bit 0): turning a decode bit off takes
 *    every BAR of that kind off the bus, keeping its reservation; turning it on
 *    puts each on the bus where its register (and reservation) is. A map that
 *    is refused (a range of a device outside the allocator's books in the
 *    way) leaves that range off the bus, reserved where it is; the decode bit
 *    reads back as written and bar_get's last_error says why.
 *  - A 64-bit BAR's halves are written one at a time. Each half is applied at
 *    once with the other half's current value; if that intermediate address is
 *    refused, the written half is kept (the range does not move) so that the
 *    other half can complete the address; if the address completed by the
 *    other half is refused too, both halves go back to the address where the
 *    range is, as they do when decode comes on with a half still pending.
 *  - MSI: while MSI is enabled, every change of the message (address, data,
 *    number of enabled vectors) reroutes each enabled vector v (the data's low
 *    log2(vectors) bits replaced by v, as the PCI specification says) through
 *    the mapper (vmres_devmgr_reroute_msi() on resource msi.res_index + v).
 *    Enable, vector count and mask bit changes are reported to the device by
 *    vmres_pci_func_ops.msi_changed; the device reads the state with
 *    vmres_pci_func_msi_get() and raises or holds its interrupts accordingly,
 *    or hands its interrupt sources (irq.h) to vmres_pci_func_set_msi_sources()
 *    and the helper enables, disables, masks and unmasks them itself.
 *  - MSI-X: the helper owns the table and pending-bit array inside the BARs
 *    (the device's BAR handler forwards to vmres_pci_func_bar_read() and
 *    _write() first, so they follow their BAR wherever it moves), routes each
 *    active vector (enabled, function and vector unmasked) through the mapper
 *    (vmres_devmgr_reroute_msi() on resource msix.res_index + v) when it
 *    becomes active or its message changes while active, and drives the
 *    sources given to vmres_pci_func_set_msix_sources(): an interrupt fired
 *    while its vector is masked is pending, and is delivered once on unmask
 *    with the message in force then. vmres_pci_func_fire() raises a vector of
 *    whichever of MSI-X or MSI is enabled; with both enabled (undefined by
 *    the specification) MSI-X wins and MSI delivers nothing.
 *  - PCI Express: a function with the PCI Express capability has 4 KiB of
 *    configuration space, with an extended capability list from 0x100
 *    (vmres_pci_func_add_ext_capability()); a conventional one answers the
 *    extended offsets with all ones. An ECAM window (vmres_pci_ecam_new())
 *    reaches a host's functions by memory accesses, beside conf1 or alone.
 *
 * A VMM puts it together like this (error checks left out):
 *
 *     vmres_pci_host_new(&host);                    // bus 0 behind 0xcf8/0xcfc
 *     vmres_pci_host_bridge_new(NULL, NULL, &bridge);
 *     vmres_pci_host_attach(host, 0, 0, bridge);    // 00:00.0 i440FX
 *     vmres_pci_host_device(host, &dev);            // register with the PIO
 *     vmres_devmgr_register(m, &dev, 0, &conf1_res, 1, &host_id); // 0xcf8-0xcff
 *
 *     struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
 *     c.vendor_id = 0x1af4, c.device_id = 0x10f0, c.class_code = 0xff0000;
 *     c.bars[0] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM32,
 *                                        .size = 0x1000, .res_index = 0};
 *     c.msi = (struct vmres_pci_msi){.vectors = 1, .addr64 = true, .res_index = 1};
 *     vmres_pci_func_new(&c, &fn);
 *     // res[0]: 4 KiB from "mmio32", res[1]: one MSI from "gsi-msi" (sysalloc)
 *     vmres_devmgr_register(m, &test_dev, host_id, res, 2, &id);
 *     vmres_pci_func_bind(fn, m, id);               // BAR0 := res[0]'s base
 *     // command 0 (reset): BAR0 stays off the bus, still reserved, until the
 *     // guest enables memory decode (firmware, or pci_enable_device(), does)
 *     vmres_pci_host_attach(host, 1, 0, fn);        // 00:01.0
 *
 * Cost: a config access is O(1) (bytes of a 4 KiB array plus at most one
 * mapper call per BAR); an MSI-X table access is O(1) (plus one mapper call
 * when a vector's route changes), enable and function-mask changes O(vectors).
 * Memory is about 13 KiB per function plus 48 bytes per MSI-X vector, and 2 KiB
 * per host.
 *
 * Context: each function has its own mutex, taken by every call on it, so
 * config accesses may come from any vCPU thread; mapper calls are made under
 * it, which is allowed because device-manager writers never wait for readers.
 * The device's callbacks are called with that mutex held; it is recursive, so a
 * callback may call vmres_pci_func_* on the same function (but must not free
 * it). The host has its own mutex (the conf1 address latch, and attach/detach
 * against accesses), taken before the function's and held while the function
 * runs, so a function's callbacks must not call vmres_pci_host_* on its host.
 * Config accesses may be made from inside a device's bus handler: that is
 * their purpose. Lock order: host, then function, then the device manager's
 * writer lock; so the device manager's MSI notifier (called under that lock)
 * must not make config accesses.
 */
#ifndef VMRES_PCI_H
#define VMRES_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/common.h>
#include <vmres/device.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_devmgr;
struct vmres_devmgr_register_opts;
struct vmres_irq_src;

/** Opaque PCI function (type-0 configuration space). */
struct vmres_pci_func;
/** Opaque host bridge implementing configuration mechanism #1 for bus 0. */
struct vmres_pci_host;

/** Bytes of a function's configuration space. */
#define VMRES_PCI_CONFIG_SIZE 256
/** BAR slots of a type-0 header. */
#define VMRES_PCI_NUM_BARS 6
/** Configuration space offset of BAR @p i. */
#define VMRES_PCI_BAR_OFFSET(i) (0x10u + 4u * (unsigned int)(i))
/** Most MSI vectors a function can have. */
#define VMRES_PCI_MSI_MAX_VECTORS 32

/** Standard config-space offsets. */
#define VMRES_PCI_VENDOR_ID 0x00 /**< vendor ID (16 bits) */
#define VMRES_PCI_DEVICE_ID 0x02 /**< device ID (16 bits) */
#define VMRES_PCI_COMMAND   0x04 /**< command register (16 bits) */
#define VMRES_PCI_STATUS    0x06 /**< status register (16 bits) */
#define VMRES_PCI_REVISION  0x08 /**< revision ID (8 bits) */
#define VMRES_PCI_CLASS_PROG                                                                       \
	0x09 /**< programming interface, then sub-class and class (24 bits)                        \
	      */
#define VMRES_PCI_HEADER_TYPE	0x0e /**< header type; bit 7 = multi-function */
#define VMRES_PCI_SUBSYS_VENDOR 0x2c /**< subsystem vendor ID (16 bits) */
#define VMRES_PCI_SUBSYS_ID	0x2e /**< subsystem ID (16 bits) */
#define VMRES_PCI_ROM_ADDRESS	0x30 /**< expansion ROM base address */
#define VMRES_PCI_CAP_PTR	0x34 /**< first capability pointer */
#define VMRES_PCI_INT_LINE	0x3c /**< interrupt line (written by firmware) */
#define VMRES_PCI_INT_PIN	0x3d /**< interrupt pin: 0 none, 1-4 INTA#-INTD# */

/** Command register bits the helper implements (all others read as 0). */
#define VMRES_PCI_COMMAND_IO	       0x0001u /**< I/O space decode */
#define VMRES_PCI_COMMAND_MEMORY       0x0002u /**< memory space decode */
#define VMRES_PCI_COMMAND_MASTER       0x0004u /**< bus master */
#define VMRES_PCI_COMMAND_PARITY       0x0040u /**< parity error response */
#define VMRES_PCI_COMMAND_SERR	       0x0100u /**< SERR# enable */
#define VMRES_PCI_COMMAND_INTX_DISABLE 0x0400u /**< INTx emulation disable */

/** Status bit: the function has a capability list. */
#define VMRES_PCI_STATUS_CAP_LIST 0x0010u

/** MSI capability: ID and message control bits. */
#define VMRES_PCI_CAP_ID_MSI	     0x05
#define VMRES_PCI_MSI_CTRL_ENABLE    0x0001u /**< MSI enable */
#define VMRES_PCI_MSI_CTRL_MMC_SHIFT 1	     /**< multiple message capable, log2 */
#define VMRES_PCI_MSI_CTRL_MME_SHIFT 4	     /**< multiple message enable, log2 */
#define VMRES_PCI_MSI_CTRL_64BIT     0x0080u /**< 64-bit message address */
#define VMRES_PCI_MSI_CTRL_MASKABLE  0x0100u /**< per-vector masking */

/** What a BAR slot decodes. */
enum vmres_pci_bar_kind {
	VMRES_PCI_BAR_NONE = 0,	 /**< unimplemented: reads 0, ignores writes */
	VMRES_PCI_BAR_MEM32 = 1, /**< 32-bit memory BAR */
	VMRES_PCI_BAR_MEM64 = 2, /**< 64-bit memory BAR: this slot and the next (which is NONE) */
	VMRES_PCI_BAR_IO = 3,	 /**< I/O BAR (16-bit port space) */
};

/** One BAR as the device declares it. */
struct vmres_pci_bar {
	enum vmres_pci_bar_kind kind; /**< what it decodes */
	bool prefetchable;	      /**< memory BARs: the prefetchable bit (bit 3) */
	/**
	 * Bytes decoded: a power of two, >= 16 for memory (<= 2 GiB for MEM32),
	 * 4 to 0x10000 for I/O. The device-manager resource must have this size.
	 */
	uint64_t size;
	/**
	 * Initial address (a multiple of @c size; 0 for "unassigned"). When the
	 * function is bound to a device manager, the resource's base replaces it.
	 */
	uint64_t addr;
	unsigned int res_index; /**< the device-manager resource this BAR controls */
};

/** The MSI capability as the device declares it. */
struct vmres_pci_msi {
	/** 0: no MSI capability; else 1, 2, 4, 8, 16 or 32 (multiple message capable). */
	unsigned int vectors;
	bool addr64;	      /**< 64-bit message address */
	bool per_vector_mask; /**< mask and pending bits */
	/** Config offset of the capability: dword aligned, >= 0x40; 0 for 0x40. */
	unsigned int offset;
	/** Vector v is device-manager resource @c res_index + v (kind VMRES_RES_MSI). */
	unsigned int res_index;
};

/** Most MSI-X vectors a function can have (a table size field of 11 bits). */
#define VMRES_PCI_MSIX_MAX_VECTORS 2048
/** Bytes of one MSI-X table entry: address low, address high, data, vector control. */
#define VMRES_PCI_MSIX_ENTRY_SIZE 16

/** MSI-X capability: ID, message control bits, vector control bit. */
#define VMRES_PCI_CAP_ID_MSIX	     0x11
#define VMRES_PCI_MSIX_CTRL_ENABLE   0x8000u /**< MSI-X enable */
#define VMRES_PCI_MSIX_CTRL_MASKALL  0x4000u /**< function mask */
#define VMRES_PCI_MSIX_VECTOR_MASKED 0x1u    /**< vector control: mask bit */
/** Bytes of the MSI-X capability in configuration space. */
#define VMRES_PCI_MSIX_CAP_SIZE 12

/**
 * The MSI-X capability as the device declares it. The table (16 bytes per
 * vector) and the pending-bit array (one bit per vector, in whole qwords) each
 * live in a memory BAR at an offset, possibly the same BAR:
 *
 *     BAR table_bar:  table_offset ->  entry 0: addr lo | addr hi | data | ctrl
 *                                      entry 1 ...      (vectors x 16 bytes)
 *     BAR pba_bar:    pba_offset   ->  bits 0-63 | bits 64-127 ... (8-byte words)
 *
 * The helper owns both: the device's BAR handler forwards to
 * vmres_pci_func_bar_read() and vmres_pci_func_bar_write() first.
 */
struct vmres_pci_msix {
	/** 0: no MSI-X capability; else 1 to VMRES_PCI_MSIX_MAX_VECTORS. */
	unsigned int vectors;
	/** Config offset of the capability: dword aligned, >= 0x40; 0 places it
	 * right after the MSI capability (at 0x40 without MSI). */
	unsigned int offset;
	unsigned int table_bar; /**< BAR slot of the table: a memory BAR (a MEM64's low slot) */
	uint32_t table_offset;	/**< its offset in that BAR: a multiple of 8 */
	unsigned int pba_bar;	/**< BAR slot of the pending-bit array: a memory BAR */
	uint32_t pba_offset;	/**< its offset in that BAR: a multiple of 8 */
	/** Vector v is device-manager resource @c res_index + v (kind VMRES_RES_MSI). */
	unsigned int res_index;
};

/** PCI Express capability ID. */
#define VMRES_PCI_CAP_ID_EXP 0x10
/** Bytes of the PCI Express capability (version 2, endpoint). */
#define VMRES_PCI_EXP_CAP_SIZE 0x3c
/** Bytes of a PCI Express function's configuration space. */
#define VMRES_PCIE_CONFIG_SIZE 4096
/** First extended capability's offset. */
#define VMRES_PCIE_EXT_CAP_START 0x100

/** The PCI Express capability as the device declares it. */
struct vmres_pci_express {
	/** false: a conventional PCI function (256 bytes of configuration space). */
	bool enabled;
	/** Device/port type 9 (root-complex integrated endpoint, no link
	 * registers) instead of 0 (PCI Express endpoint, a x1 2.5 GT/s link). */
	bool integrated;
	/** Config offset: dword aligned, >= 0x40; 0 places it after MSI and MSI-X. */
	unsigned int offset;
};

/**
 * Device callbacks; every member may be NULL. They are called with the
 * function's (recursive) mutex held, after the library has updated its state.
 */
struct vmres_pci_func_ops {
	unsigned int version; /**< VMRES_PCI_FUNC_OPS_VERSION */
	/**
	 * A guest read of bytes the library does not implement (outside the
	 * header and the MSI capability): @p val holds the stored bytes (see
	 * vmres_pci_func_define()) and may be changed. @p off and @p size are the
	 * guest's access (it lies within one dword).
	 */
	void (*config_read)(void *opaque, struct vmres_pci_func *f, unsigned int off,
			    unsigned int size, uint32_t *val);
	/**
	 * A guest write touching bytes the library does not implement; the
	 * writable bits have already been stored.
	 */
	void (*config_write)(void *opaque, struct vmres_pci_func *f, unsigned int off,
			     unsigned int size, uint32_t val);
	/** MSI enable, enabled vector count, or mask bits changed; or MSI-X
	 * enable, function mask or a vector's mask bit. */
	void (*msi_changed)(void *opaque, struct vmres_pci_func *f);
};

/** Version of struct vmres_pci_func_ops understood by this build. */
#define VMRES_PCI_FUNC_OPS_VERSION 1

/**
 * Version of struct vmres_pci_func_config understood by this build: 2 added
 * @c msix and @c express (a version-1 description is accepted, without them).
 */
#define VMRES_PCI_FUNC_CONFIG_VERSION 2

/** A function's description; initialise with VMRES_PCI_FUNC_CONFIG_INIT. */
struct vmres_pci_func_config {
	unsigned int version;	      /**< VMRES_PCI_FUNC_CONFIG_VERSION */
	uint16_t vendor_id;	      /**< must not be 0xffff */
	uint16_t device_id;	      /**< device ID */
	uint32_t class_code;	      /**< base class << 16 | subclass << 8 | prog-if */
	uint8_t revision;	      /**< revision ID */
	uint16_t subsystem_vendor_id; /**< subsystem vendor ID */
	uint16_t subsystem_id;	      /**< subsystem ID */
	bool multifunction;	      /**< header type bit 7 (set it on function 0) */
	uint8_t interrupt_pin;	      /**< 0 none, 1..4 INTA#..INTD# */
	uint8_t interrupt_line;	      /**< initial interrupt line (guest-writable) */
	/**
	 * Initial command register (0 as after reset). The mapper is assumed to
	 * start in agreement: a BAR's range mapped at its @c addr iff the decode bit
	 * of its kind is set and @c addr is not 0; vmres_pci_func_bind() makes the
	 * device manager agree.
	 */
	uint16_t command;
	struct vmres_pci_bar bars[VMRES_PCI_NUM_BARS]; /**< BAR slots */
	struct vmres_pci_msi msi;		       /**< MSI capability */
	const struct vmres_pci_func_ops *ops;	       /**< device callbacks, or NULL */
	void *opaque;				       /**< passed to the callbacks */
	/* Version 2: */
	struct vmres_pci_msix msix;	  /**< MSI-X capability */
	struct vmres_pci_express express; /**< PCI Express capability and extended space */
};

/** Initialiser for struct vmres_pci_func_config. */
#define VMRES_PCI_FUNC_CONFIG_INIT                                                                 \
	{                                                                                          \
		.version = VMRES_PCI_FUNC_CONFIG_VERSION                                           \
	}

/**
 * Where a function's address ranges and MSI routes live. vmres_pci_func_bind()
 * installs one that forwards to the device manager; a VMM with its own buses
 * (or a test) may install its own. Each call returns 0 or a VMRES_E* code and
 * must change nothing when it fails. @c move moves the range's reservation
 * whether or not it is mapped (and the range on the bus if it is); @c unmap
 * takes it off the bus and keeps the reservation; @c map puts it on the bus at
 * its base.
 */
struct vmres_pci_mapper {
	unsigned int version; /**< VMRES_PCI_MAPPER_VERSION */
	int (*move)(void *ctx, unsigned int res_index, uint64_t new_base); /**< required */
	int (*unmap)(void *ctx, unsigned int res_index);		   /**< required */
	int (*map)(void *ctx, unsigned int res_index);			   /**< required */
	/** required if the function has MSI */
	int (*reroute_msi)(void *ctx, unsigned int res_index, const struct vmres_msi_msg *msg);
};

/** Version of struct vmres_pci_mapper understood by this build. */
#define VMRES_PCI_MAPPER_VERSION 1

/** The state of one BAR, for the device, the VMM's logs and tests. */
struct vmres_pci_bar_state {
	enum vmres_pci_bar_kind kind; /**< as declared (NONE for a MEM64's upper slot) */
	uint64_t size;		      /**< bytes decoded */
	uint64_t reg_addr;	      /**< the address bits the guest reads back now */
	bool reg_is_address;	      /**< reg_addr is not 0 and neither dword is a sizing probe */
	bool half_pending;	      /**< MEM64: a refused half waits for the other half */
	bool mapped;		      /**< the range is on the bus */
	uint64_t mapped_base;	      /**< where it is (or is remembered, if unmapped) */
	int last_error;	  /**< the mapper's code for the last refused change, 0 after a success */
	uint64_t refused; /**< how many changes the mapper refused */
};

/** The MSI state the guest programmed. */
struct vmres_pci_msi_state {
	bool enabled;	      /**< MSI enable bit */
	unsigned int vectors; /**< enabled vectors (1..32), as clamped to the capability */
	uint32_t mask;	      /**< mask bits (0 without per-vector masking) */
	uint32_t pending;     /**< pending bits */
	/** The message as programmed; vector v sends it with the low log2(vectors)
	 * bits of the data replaced by v. */
	struct vmres_msi_msg msg;
	int last_error; /**< the mapper's code for the last failed reroute, else 0 */
};

/** The MSI-X state the guest programmed (the function-wide part). */
struct vmres_pci_msix_state {
	bool enabled;	      /**< MSI-X enable bit */
	bool function_mask;   /**< function mask bit */
	bool msi_overridden;  /**< MSI is enabled too: MSI-X wins, MSI delivers nothing */
	unsigned int vectors; /**< table size */
	int last_error;	      /**< the mapper's code for the last failed reroute, else 0 */
};

/** One MSI-X vector as the guest programmed it. */
struct vmres_pci_msix_vector {
	struct vmres_msi_msg msg; /**< the table entry's message */
	bool masked;		  /**< its vector-control mask bit */
	bool pending;		  /**< its pending bit */
	/** MSI-X enabled, function and vector unmasked, and the message routed:
	 * an interrupt now is delivered now. */
	bool active;
	bool routed;			 /**< the mapper holds the message it last accepted */
	struct vmres_msi_msg routed_msg; /**< that message (zero if not routed) */
};

/**
 * vmres_pci_func_new() - create a function from its description.
 * @param cfg the description (copied; @c ops must outlive the function).
 * @param out receives the function; free it with vmres_pci_func_free().
 * @return 0, or:
 *   VMRES_EINVAL  NULL @p cfg or @p out, a wrong @c version (config or ops), vendor
 *                 0xffff, a class code above 24 bits, interrupt pin > 4, an
 *                 unknown BAR kind, a MEM64 BAR in
 *                 slot 5 or followed by a slot that is not NONE, a misplaced MSI
 *                 capability (unaligned, below 0x40 or past the end);
 *   VMRES_EALIGN  a BAR size that is not a power of two, or an MSI vector count
 *                 that is not 1, 2, 4, 8, 16 or 32;
 *   VMRES_ESIZE   a BAR size below the minimum (16 memory, 4 I/O);
 *   VMRES_ERANGE  a BAR size too large for its kind, or an address it cannot hold;
 *   VMRES_EMISALIGNED an initial address that is not a multiple of the size;
 *   VMRES_ENOMEM.
 * MSI-X (@c msix.vectors not 0) and PCI Express add, nothing created:
 *   VMRES_EINVAL  more than 2048 vectors; a table or PBA BAR slot that is not a
 *                 memory BAR (none, I/O, a MEM64's upper slot, past slot 5); a
 *                 capability offset unaligned, below 0x40 or past the end;
 *   VMRES_EMISALIGNED a table or PBA offset that is not a multiple of 8;
 *   VMRES_ERANGE  a table or PBA that straddles the end of its BAR or lies outside it;
 *   VMRES_EOVERLAP the table and PBA overlap in one BAR, or two of the MSI,
 *                 MSI-X and PCI Express capabilities overlap.
 * Context: any thread.
 */
int vmres_pci_func_new(const struct vmres_pci_func_config *cfg, struct vmres_pci_func **out);

/**
 * vmres_pci_func_free() - destroy a function.
 * @param f the function, or NULL. It must not be attached to a host that may
 *   still dispatch to it, and no call on it may be running.
 * Context: any thread; does not unmap anything (the device manager releases the
 *   device's ranges when it is unregistered).
 */
void vmres_pci_func_free(struct vmres_pci_func *f);

/**
 * vmres_pci_func_set_mapper() - install the mapper that BAR and MSI changes go to.
 * The mapper is assumed to agree with the current registers (see
 * vmres_pci_func_config.command). Without a mapper, the registers behave the
 * same and nothing is ever refused.
 * @param f the function.
 * @param mapper the callbacks (must outlive their use), or NULL to remove.
 * @param ctx passed to every callback.
 * @return 0; VMRES_EINVAL for NULL @p f, a wrong version or a missing required callback.
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_set_mapper(struct vmres_pci_func *f, const struct vmres_pci_mapper *mapper,
			      void *ctx);

/**
 * vmres_pci_func_config_read() - a guest read of the configuration space.
 * A conventional function answers the extended offsets (0x100-0xfff) with
 * all ones, as a bridge completes the Unsupported Request, and ignores writes
 * there; a PCI Express function has all 4 KiB.
 * @param f the function.
 * @param off byte offset, < VMRES_PCIE_CONFIG_SIZE.
 * @param size 1, 2 or 4; the access must not cross a dword boundary.
 * @param val receives the value (little-endian bytes of the space).
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ERANGE for @p off out of the
 *   space; VMRES_EACCESS for a bad size or a dword-crossing access.
 * Context: any thread, device handlers included; takes the function's mutex.
 */
int vmres_pci_func_config_read(struct vmres_pci_func *f, unsigned int off, unsigned int size,
			       uint32_t *val);

/**
 * vmres_pci_func_config_write() - a guest write of the configuration space,
 * with every consequence described at the top of this file (BAR moves, decode
 * on/off, MSI reroutes). A change the mapper refuses is not an error of this
 * call (the guest's write is handled: the register shows what the guest
 * sees); vmres_pci_func_bar_get() and vmres_pci_func_msi_get() report it.
 * @param f the function.
 * @param off byte offset, < VMRES_PCIE_CONFIG_SIZE (see config_read()).
 * @param size 1, 2 or 4; the access must not cross a dword boundary.
 * @param val the value (its low @p size bytes).
 * @return 0; VMRES_EINVAL for NULL @p f; VMRES_ERANGE for @p off out of the space;
 *   VMRES_EACCESS for a bad size or a dword-crossing access (nothing changes).
 * Context: any thread, device handlers included; takes the function's mutex and
 *   calls the mapper under it.
 */
int vmres_pci_func_config_write(struct vmres_pci_func *f, unsigned int off, unsigned int size,
				uint32_t val);

/**
 * vmres_pci_func_define() - set bytes that the device implements itself (a
 * vendor-specific register, a capability body): their value and which bits
 * the guest may write. Outside the header and the capabilities the library
 * implements (MSI, MSI-X, PCI Express, the headers of added ones) only.
 * @param f the function.
 * @param off byte offset, >= 0x40, below 256 (4096 for a PCI Express function).
 * @param size 1, 2 or 4; within one dword.
 * @param val the value now.
 * @param wmask the bits the guest may change.
 * @return 0; VMRES_EINVAL for NULL @p f; VMRES_ERANGE for an offset in the header,
 *   the MSI capability or past the space; VMRES_EACCESS as for config_read().
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_define(struct vmres_pci_func *f, unsigned int off, unsigned int size,
			  uint32_t val, uint32_t wmask);

/**
 * vmres_pci_func_add_capability() - link a device-implemented capability into the
 * capability list (after those already there). The library writes its ID and
 * next pointer (read-only to the guest); the device defines the body with
 * vmres_pci_func_define().
 * @param f the function.
 * @param off its offset: dword aligned, >= 0x40, with @p len bytes free (not in
 *   the MSI capability, not in another added capability).
 * @param cap_id the capability ID.
 * @param len its length in bytes, >= 2.
 * @return 0; VMRES_EINVAL for NULL @p f or @p len < 2; VMRES_EMISALIGNED for an
 *   unaligned @p off; VMRES_ERANGE for a range outside [0x40, 0xff];
 *   VMRES_EOVERLAP for a range that overlaps another capability (MSI, MSI-X,
 *   PCI Express or an added one); VMRES_EFULL when
 *   16 capabilities were added already.
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_add_capability(struct vmres_pci_func *f, unsigned int off, uint8_t cap_id,
				  unsigned int len);

/**
 * vmres_pci_func_bar_get() - the state of BAR slot @p bar.
 * @param f the function.
 * @param bar 0..5.
 * @param out receives the state.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT for a slot out of range.
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_bar_get(struct vmres_pci_func *f, unsigned int bar,
			   struct vmres_pci_bar_state *out);

/**
 * vmres_pci_func_msi_get() - the MSI state the guest programmed.
 * @param f the function.
 * @param out receives the state.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT if the function has no
 *   MSI capability.
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_msi_get(struct vmres_pci_func *f, struct vmres_pci_msi_state *out);

/**
 * vmres_pci_func_msi_set_pending() - set or clear vector @p vector's pending bit
 * (what the device shows while it holds a masked vector's interrupt). With
 * sources (vmres_pci_func_set_msi_sources()) the bits are theirs and this
 * value is replaced at the next read.
 * @return 0; VMRES_EINVAL for NULL @p f; VMRES_ENOENT without MSI; VMRES_ENOTSUP
 *   without per-vector masking; VMRES_ERANGE for a vector beyond the capability.
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_msi_set_pending(struct vmres_pci_func *f, unsigned int vector, bool pending);

/**
 * vmres_pci_func_set_msi_sources() - let the helper drive the MSI vectors'
 * interrupt sources (irq.h, e.g. from vmres_irq_group_new() on the device's MSI
 * resources): vector v's source is enabled while MSI is enabled and v is below
 * the enabled vector count (disabled otherwise), masked while its mask bit is
 * set, and the pending bits the guest reads are the sources' pending state (an
 * interrupt triggered while masked is delivered when the guest unmasks it).
 * The device then only triggers the source of the vector it raises. The
 * current state is applied at once. The message itself reaches the sources
 * through the device manager's MSI notifier (vmres_irq_mgr_msi_notify()).
 * @param f the function.
 * @param srcs one source per vector of the capability (the array is copied;
 *   the sources must outlive the function or the next call), or NULL.
 * @param n the capability's vector count, or 0 to stop driving sources.
 * @return 0; VMRES_EINVAL for NULL @p f, NULL @p srcs or a NULL source with
 *   @p n > 0, or another count; VMRES_ENOENT if the function has no MSI.
 * Context: any thread; takes the function's mutex; the sources' deliveries
 *   (an unmask that finds an interrupt pending) happen under it.
 */
int vmres_pci_func_set_msi_sources(struct vmres_pci_func *f, struct vmres_irq_src *const *srcs,
				   unsigned int n);

/**
 * vmres_pci_func_bar_read() - serve a guest read of a BAR if it falls in the
 * MSI-X table or pending-bit array; the device's BAR handler calls it first
 * and serves the access itself only on VMRES_ENOENT:
 *
 *     static uint64_t dev_read(void *opaque, unsigned int range, uint64_t off,
 *                              uint64_t addr, unsigned int size)
 *     {
 *             struct my_dev *d = opaque;
 *             uint64_t v;
 *
 *             if (!vmres_pci_func_bar_read(d->fn, range, off, size, &v))
 *                     return v;                // table or PBA
 *             return my_registers_read(d, range, off, size);
 *     }
 *     // and the same with vmres_pci_func_bar_write() in dev_write
 *
 * The table is addressed by its offset in the BAR, so it follows the BAR
 * wherever the guest moves it. A read of any size (1, 2, 4, 8) inside the
 * table or PBA returns its bytes; one that only partly overlaps them reads
 * all ones (the specification leaves it undefined).
 * @param f the function.
 * @param res_index the device-manager resource of the BAR (the @c range the
 *   bus passes to the device's callback).
 * @param offset offset of the access in the BAR.
 * @param size 1, 2, 4 or 8.
 * @param val receives the value.
 * @return 0 (served); VMRES_ENOENT when the access touches neither the table
 *   nor the PBA, or the function has no MSI-X (the device serves it, *@p val
 *   untouched); VMRES_EINVAL for NULL pointers; VMRES_EACCESS for another size.
 * Context: any thread, bus handlers included; takes the function's mutex only
 *   for an access it serves (others cost two comparisons).
 */
int vmres_pci_func_bar_read(struct vmres_pci_func *f, unsigned int res_index, uint64_t offset,
			    unsigned int size, uint64_t *val);

/**
 * vmres_pci_func_bar_write() - serve a guest write of a BAR if it falls in the
 * MSI-X table or pending-bit array (see vmres_pci_func_bar_read()).
 *
 * The specification allows aligned dword and aligned qword accesses only;
 * this helper applies a table write of 4 bytes at a multiple of 4 and of 8
 * bytes at a multiple of 8 (both dwords, then the consequences once), and
 * ignores every other table write (1 or 2 bytes, misaligned, partly outside),
 * and every PBA write (it is read-only). The two low bits of a message
 * address and the reserved bits of vector control read as 0 whatever is
 * written. Consequences, as the specification says:
 *  - a vector is active while MSI-X is enabled and neither the function mask
 *    nor its own mask bit is set; an active vector's message is routed
 *    through the mapper (vmres_devmgr_reroute_msi() on resource
 *    msix.res_index + v) before its source is unmasked;
 *  - a message written while the vector is masked is only stored: it is
 *    routed when the vector becomes active, so an interrupt held pending
 *    meanwhile is delivered once, with the message in force then;
 *  - a message written while the vector is active (undefined by the
 *    specification) is routed at once;
 *  - a refused reroute keeps the vector's source masked (its interrupts
 *    wait as pending) until a later write routes it; last_error says why.
 * @return as vmres_pci_func_bar_read() (0 also for an ignored write).
 * Context: as vmres_pci_func_bar_read(); calls the mapper and the sources
 *   under the function's mutex.
 */
int vmres_pci_func_bar_write(struct vmres_pci_func *f, unsigned int res_index, uint64_t offset,
			     unsigned int size, uint64_t val);

/**
 * vmres_pci_func_msix_get() - the MSI-X state the guest programmed.
 * @param f the function.
 * @param out receives the state.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT without MSI-X.
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_msix_get(struct vmres_pci_func *f, struct vmres_pci_msix_state *out);

/**
 * vmres_pci_func_msix_vector_get() - MSI-X vector @p vector as programmed.
 * @param f the function.
 * @param vector 0 to the table size - 1.
 * @param out receives the vector.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ENOENT without MSI-X;
 *   VMRES_ERANGE for a vector beyond the table.
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_msix_vector_get(struct vmres_pci_func *f, unsigned int vector,
				   struct vmres_pci_msix_vector *out);

/**
 * vmres_pci_func_msix_set_pending() - set or clear MSI-X vector @p vector's
 * pending bit, for a device that delivers its interrupts itself. With
 * sources (vmres_pci_func_set_msix_sources()) the bits are theirs and this
 * value is replaced at the next read.
 * @return 0; VMRES_EINVAL for NULL @p f; VMRES_ENOENT without MSI-X;
 *   VMRES_ERANGE for a vector beyond the table.
 * Context: any thread (callbacks included); takes the function's mutex.
 */
int vmres_pci_func_msix_set_pending(struct vmres_pci_func *f, unsigned int vector, bool pending);

/**
 * vmres_pci_func_set_msix_sources() - let the helper drive the MSI-X vectors'
 * interrupt sources (irq.h): vector v's source is enabled while MSI-X is
 * enabled, unmasked while v is active and routed (masked otherwise), and the
 * pending bits the guest reads in the PBA are the sources' pending state. The
 * current state is applied at once.
 * @param f the function.
 * @param srcs one source per vector of the table (the array is copied; the
 *   sources must outlive the function or the next call), or NULL.
 * @param n the table size, or 0 to stop driving sources.
 * @return 0; VMRES_EINVAL for NULL @p f, NULL @p srcs or a NULL source with
 *   @p n > 0, or another count; VMRES_ENOENT without MSI-X; VMRES_ENOMEM.
 * Context: any thread; takes the function's mutex; an unmask that finds an
 *   interrupt pending delivers it under it.
 */
int vmres_pci_func_set_msix_sources(struct vmres_pci_func *f, struct vmres_irq_src *const *srcs,
				    unsigned int n);

/**
 * vmres_pci_func_fire() - the device raises vector @p vector of whichever
 * mechanism the guest enabled: MSI-X if its enable bit is set (enabling both
 * is undefined by the specification; here MSI-X wins and MSI's sources stay
 * disabled), else MSI. It triggers that vector's source: delivered now if
 * active, else held pending and delivered once when the guest unmasks it.
 * @param f the function.
 * @param vector the vector (MSI: below the enabled count).
 * @return 0 (delivered or made pending); VMRES_EINVAL for NULL @p f;
 *   VMRES_ESTATE if neither MSI nor MSI-X is enabled, or the MSI vector is not
 *   enabled (nothing delivered, nothing remembered); VMRES_ERANGE for a vector
 *   beyond the table or capability; VMRES_ENOTSUP if the enabled mechanism
 *   was given no sources; VMRES_ESYS as vmres_irq_src_trigger().
 * Context: any thread, device handlers included; takes the function's mutex.
 */
int vmres_pci_func_fire(struct vmres_pci_func *f, unsigned int vector);

/**
 * vmres_pci_func_add_ext_capability() - link a device-implemented extended
 * capability (PCI Express functions only) into the extended list. The first
 * one must be at 0x100; each next one is linked from the previous one's
 * header, which the library writes (ID, version, next offset; read-only to
 * the guest). The device defines the body with vmres_pci_func_define().
 * Without any, the dword at 0x100 reads 0 (the specification's "no
 * extended capabilities").
 * @param f the function.
 * @param off dword aligned, >= 0x100, with @p len bytes free below 4 KiB.
 * @param cap_id the extended capability ID (16 bits).
 * @param version its version (4 bits).
 * @param len its length in bytes, >= 4.
 * @return 0; VMRES_EINVAL for NULL @p f, @p len < 4, a version above 15, the
 *   first one not at 0x100; VMRES_ENOTSUP for a conventional function;
 *   VMRES_EMISALIGNED for an unaligned @p off; VMRES_ERANGE outside
 *   [0x100, 0xfff]; VMRES_EOVERLAP over another extended capability;
 *   VMRES_EFULL when 16 were added already.
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_add_ext_capability(struct vmres_pci_func *f, unsigned int off, uint16_t cap_id,
				      unsigned int version, unsigned int len);

/**
 * vmres_pci_func_bind() - send the function's BAR and MSI changes to the device
 * manager: instance @p instance, whose resources are those the BARs and MSI
 * name by index. Each BAR register takes its resource's base, and the device
 * manager is brought in line with the command register, in one
 * vmres_devmgr_set_mapped(): a range is mapped iff its decode bit is on (and
 * its base is not 0), so with a command of 0 (as after reset, what firmware
 * expects) every BAR's range is off the bus, still reserved, until the guest
 * enables decoding. Replaces any mapper.
 *
 * After vmres_pci_func_load_state() it keeps the loaded state instead: the
 * manager must already hold each BAR's range at the loaded address, mapped as
 * loaded, and each routed MSI vector's message; then nothing changes but the
 * mapper.
 * @param f the function.
 * @param m the device manager.
 * @param instance the device's instance id.
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL  NULL @p f or @p m;
 *   VMRES_EDEVICE no device @p instance;
 *   VMRES_ENOENT  a BAR or MSI vector names a resource the device does not have;
 *   VMRES_EKIND   that resource is of another kind or space (I/O BAR: PIO, memory: MMIO);
 *   VMRES_ESIZE   a BAR's resource has another size;
 *   VMRES_EMISALIGNED a BAR's resource base is not a multiple of its size;
 *   VMRES_ERANGE  a resource base a BAR cannot hold (a MEM32 above 4 GiB);
 *   VMRES_ESTATE  after a load, the manager does not hold a range, its mapped
 *                 flag or an MSI message where the loaded state has it;
 *   VMRES_ENOMEM;
 *   and any error of vmres_devmgr_set_mapped().
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_bind(struct vmres_pci_func *f, struct vmres_devmgr *m, uint32_t instance);

/**
 * Bytes of the state of a conventional function without MSI-X (layout
 * version 1), which every function of that kind saves.
 */
#define VMRES_PCI_FUNC_STATE_SIZE 960
/**
 * Most bytes any function's state takes (layout version 2: PCI Express and
 * 2048 MSI-X vectors); vmres_pci_func_state_size() gives a function's own.
 */
#define VMRES_PCI_FUNC_STATE_MAX 70368

/**
 * vmres_pci_func_state_size() - the bytes vmres_pci_func_save_state() writes
 * for @p f: VMRES_PCI_FUNC_STATE_SIZE for a conventional function without
 * MSI-X, else 992 + (configuration space - 256) + 32 per MSI-X vector. It
 * depends only on the function's description, so it never changes.
 * @param f the function.
 * @param size receives the size.
 * @return 0; VMRES_EINVAL for NULL pointers.
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_state_size(struct vmres_pci_func *f, size_t *size);

/**
 * vmres_pci_func_save_state() - save what the guest programmed: the whole
 * configuration space (command, BAR registers, MSI and MSI-X capabilities,
 * the PCI Express capability's control registers, the guest-writable bytes
 * of the device and of its extended capabilities), per BAR the sizing-probe
 * latch, a pending 64-bit half, where the range is and whether it is on the
 * bus, per MSI vector the message last routed, and per MSI-X vector its
 * table entry, its pending bit and the message last routed. The layout
 * (little-endian, versioned: version 1 of VMRES_PCI_FUNC_STATE_SIZE bytes
 * for a conventional function without MSI-X, version 2 otherwise) is in
 * docs/SNAPSHOT.md; the snapshot module saves it for the functions it is
 * given (vmres_snapshot_save_ex()).
 * @param f the function.
 * @param buf receives vmres_pci_func_state_size() bytes.
 * @param len bytes at @p buf.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ESIZE if @p len is below
 *   vmres_pci_func_state_size() (nothing written).
 * Context: any thread; takes the function's mutex. The guest must be stopped
 *   for the state to match the device manager's.
 */
int vmres_pci_func_save_state(struct vmres_pci_func *f, void *buf, size_t len);

/**
 * vmres_pci_func_load_state() - give a new function the state saved from a
 * function of the same layout (created from the same vmres_pci_func_config,
 * with the same capabilities, extended capabilities and device bytes
 * defined). Registers and the helper's record only: no mapper is called, no
 * device callback, and no MSI or MSI-X source is touched (the interrupt
 * manager restores its own, irq.h, pending bits included; sources handed
 * over with vmres_pci_func_set_msi_sources() or _set_msix_sources()
 * afterwards are synced to the loaded registers, which then agree). Without
 * sources an MSI-X vector's pending bit is the loaded one. The bits of the
 * device's own bytes that the guest cannot write keep the values the device
 * defined.
 *
 * Load before binding: the function must have no mapper. The loaded state
 * says where each range is and whether it is on the bus, so the next
 * vmres_pci_func_bind() keeps it: it checks that the device manager (restored
 * from the same snapshot) holds every range there, mapped as saved, and every
 * routed MSI and MSI-X message, and changes nothing in the manager or the
 * registers (VMRES_ESTATE if it disagrees). vmres_snapshot_restore_ex() does
 * both steps.
 * @param f the function.
 * @param buf the state.
 * @param len its length: the size it was saved with.
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL  NULL pointers;
 *   VMRES_ESIZE   a @p len the state does not have (version 1: other than
 *                 VMRES_PCI_FUNC_STATE_SIZE; version 2: other than its size
 *                 field), or below 8;
 *   VMRES_EVERSION a state layout this build does not know;
 *   VMRES_ECORRUPT an inconsistent state (a BAR or MSI-X capability the
 *                 helper would refuse to create, a register that disagrees
 *                 with the latch or with where the range is, an MSI vector
 *                 routed beyond the capability, an MSI-X entry with bits a
 *                 guest cannot write, a size field that disagrees with the
 *                 space and the vectors);
 *   VMRES_EKIND   saved from a function of another layout (BAR kinds, sizes or
 *                 resource indices, the MSI or MSI-X capability, PCI Express
 *                 or not, or any bit of the header and capabilities, standard
 *                 or extended, that the guest cannot write);
 *   VMRES_ESTATE  @p f has a mapper (bound or set_mapper()).
 * Context: any thread; takes the function's mutex.
 */
int vmres_pci_func_load_state(struct vmres_pci_func *f, const void *buf, size_t len);

/**
 * vmres_pci_host_bridge_new() - a ready-made i440FX-compatible host bridge
 * function (8086:1237, class 0x060000, revision 2, subsystem 1af4:1100, no
 * BARs). Its PAM registers (0x59-0x5f) and SMRAM register (0x72) are
 * guest-writable bytes that read back what was written; a VMM that emulates
 * shadow RAM watches them with @p ops (config_write).
 * @param ops device callbacks or NULL.
 * @param opaque passed to them.
 * @param out receives the function.
 * @return 0; VMRES_EINVAL for NULL @p out; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_pci_host_bridge_new(const struct vmres_pci_func_ops *ops, void *opaque,
			      struct vmres_pci_func **out);

/** First port of configuration mechanism #1 (address register). */
#define VMRES_PCI_CONF1_PORT 0xcf8
/** Ports it decodes: 0xcf8-0xcff. */
#define VMRES_PCI_CONF1_SIZE 8
/** Slots on bus 0. */
#define VMRES_PCI_HOST_SLOTS 32

/**
 * vmres_pci_host_new() - an empty bus 0 behind configuration mechanism #1:
 *
 *     0xcf8 (dword only)  address: bit 31 enable | 23:16 bus | 15:11 device
 *                         | 10:8 function | 7:2 register (bits 1:0 read as 0)
 *     0xcfc-0xcff         data: the addressed dword, at byte offset (port - 0xcfc)
 *
 * A data access with the enable bit clear, to a bus other than 0, or to an
 * empty slot or function reads all ones and drops writes; so do byte and word
 * accesses to 0xcf8-0xcfb (0xcf9 is the PIIX reset control register, which
 * this host does not implement).
 * @param out receives the host; free it with vmres_pci_host_free().
 * @return 0; VMRES_EINVAL for NULL @p out; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_pci_host_new(struct vmres_pci_host **out);

/**
 * vmres_pci_host_free() - destroy a host (not the functions attached to it).
 * @param h the host, or NULL; nothing may dispatch to it any more (e.g. its
 *   device-manager registration has been released).
 */
void vmres_pci_host_free(struct vmres_pci_host *h);

/**
 * vmres_pci_host_attach() - put function @p f at bus 0, slot @p slot, function @p fn.
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ERANGE for slot > 31 or fn > 7;
 *   VMRES_EEXIST if that place is taken.
 * Context: any thread; takes the host's mutex.
 */
int vmres_pci_host_attach(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			  struct vmres_pci_func *f);

/**
 * vmres_pci_host_detach() - empty bus 0, slot @p slot, function @p fn. When this
 * returns, no access of this host is inside the function any more.
 * @return 0; VMRES_EINVAL for NULL @p h; VMRES_ERANGE as for attach; VMRES_ENOENT if empty.
 * Context: any thread except the function's own callbacks; takes the host's mutex.
 */
int vmres_pci_host_detach(struct vmres_pci_host *h, unsigned int slot, unsigned int fn);

/*
 * A PCI device into the VM and out of it, one call each. Without them a VMM
 * makes the calls in order itself:
 *
 *     add:    vmres_devmgr_register_ex()  (allocate from the attached sysalloc)
 *             vmres_pci_func_bind()       (BARs take the resources' bases)
 *             vmres_pci_host_attach()     (the guest can see it)
 *     remove: vmres_pci_host_detach()     (the guest cannot see it)
 *             vmres_pci_func_set_msi_sources(f, NULL, 0), _set_msix_sources()
 *             vmres_devmgr_unregister_release()  (off the buses, resources back)
 *
 * and undoes the earlier steps by hand when a later one fails. The two calls
 * below do the same sequence all or nothing, under the host's mutex, so that
 * no configuration access of the guest sees it half done.
 *
 * Who owns what: the function @p f stays the VMM's; add does not take it and
 * remove does not free it (after remove it is unbound and detached: free it
 * with vmres_pci_func_free() or add it again). The device @p dev is copied;
 * its release callback runs after remove, once no dispatch is inside it (as
 * for vmres_devmgr_unregister()), and never for a failed add. The interrupt
 * sources are the VMM's too: after add it makes them from the device's MSI
 * resources (vmres_devmgr_get() lists them; vmres_irq_group_new()) and hands
 * them over with vmres_pci_func_set_msi_sources() or _set_msix_sources();
 * remove stops the function driving them, and the VMM frees them after it.
 * The device's resources that the attached sysalloc holds for @c dev->owner
 * (what the requests allocated, and given ones allocated for that owner) go
 * back to it on remove.
 */

/**
 * vmres_pci_device_add() - put function @p f into the VM at bus 0, slot
 * @p slot, function @p fn of host @p h: register @p dev with @p m
 * (vmres_devmgr_register_ex() with @p opts: its parent, given resources and
 * requests allocated for @c dev->owner from the manager's sysalloc), bind
 * @p f to the new device (vmres_pci_func_bind(): the BAR registers take the
 * resources' bases; with the function's command register at 0 the BARs stay
 * off the bus, reserved, until the guest enables decoding), then attach it.
 * The bind's checks run before the device is published, which it is with
 * its ranges on the bus or off it as the bind wants them: no step is left
 * that could fail after the registration.
 *
 *     struct vmres_request reqs[2] = {
 *             VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000),
 *             VMRES_REQUEST_MSI("gsi-msi", 1, false),
 *     };   // BAR 0 is resource 0, the MSI vector resource 1
 *     struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
 *     o.parent = host_id, o.reqs = reqs, o.n_reqs = 2;
 *     rc = vmres_pci_device_add(host, 1, 0, fn, m, &nic, &o, &id);
 *
 * @param h the host.
 * @param slot 0 to 31.
 * @param fn 0 to 7.
 * @param f the function, in no VM (no mapper, on no place of @p h).
 * @param m the device manager.
 * @param dev the device (copied), as for vmres_devmgr_register_ex().
 * @param opts its options, or NULL for VMRES_DEVMGR_REGISTER_OPTS_INIT's;
 *   the BARs' and MSI's res_index count in the resources they give.
 * @param instance receives the device's instance id.
 * @return 0, or (nothing changed, nothing allocated, no instance id taken):
 *   VMRES_EINVAL  a NULL @p h, @p f, @p m, @p dev or @p instance;
 *   VMRES_ERANGE  @p slot above 31 or @p fn above 7;
 *   VMRES_EEXIST  that place holds a function;
 *   VMRES_ESTATE  @p f is on a place of @p h already, or has a mapper (bound
 *                 or vmres_pci_func_set_mapper());
 *   the codes of vmres_devmgr_register_ex() (EINVAL, EFULL, ESTATE, a
 *   request's code, ESIZE, EOVERFLOW, ERANGE, EOVERLAP, EPARENT, ENOMEM);
 *   the codes of vmres_pci_func_bind()'s checks (ENOENT, EKIND, ESIZE,
 *   EMISALIGNED, ERANGE, ESTATE).
 * Context: any thread, also a device callback, but not a callback of this
 *   host's functions or of its conf1 or ECAM device (they run under the
 *   host's mutex); takes the host's mutex (configuration accesses of the
 *   guest wait), then the function's and the manager's writer lock.
 *   O(d + k log n), as vmres_devmgr_register_ex().
 */
int vmres_pci_device_add(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			 struct vmres_pci_func *f, struct vmres_devmgr *m,
			 const struct vmres_device *dev,
			 const struct vmres_devmgr_register_opts *opts, uint32_t *instance);

/**
 * vmres_pci_device_remove() - take the function at bus 0, slot @p slot,
 * function @p fn of host @p h out of the VM: unregister its device from
 * @p m and give its resources back to the attached sysalloc
 * (vmres_devmgr_unregister_release(); vmres_devmgr_unregister() for a
 * manager without one), detach it, stop it driving its MSI and MSI-X
 * sources, and unbind it. Afterwards a guest access to its BARs or its
 * configuration space misses (reads all ones, writes dropped).
 * @param h the host.
 * @param slot 0 to 31.
 * @param fn 0 to 7.
 * @param m the device manager the function is bound to.
 * @return 0, or (nothing changed):
 *   VMRES_EINVAL  a NULL @p h or @p m;
 *   VMRES_ERANGE  @p slot above 31 or @p fn above 7;
 *   VMRES_ENOENT  that place is empty;
 *   VMRES_ESTATE  the function there is not bound to @p m;
 *   VMRES_EDEVICE its device is not registered any more;
 *   VMRES_EPARENT its device still has children;
 *   VMRES_ENOMEM.
 * Context: as vmres_pci_device_add(); a dispatch already inside the device
 *   may still complete after this returns (its release callback waits for
 *   it). O(d).
 */
int vmres_pci_device_remove(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			    struct vmres_devmgr *m);

/**
 * vmres_pci_host_conf1_read() - a guest read of port 0xcf8 + @p port_off.
 * @param h the host.
 * @param port_off 0..7.
 * @param size 1, 2 or 4, within one dword of the ports.
 * @param val receives the value (all ones where nothing answers).
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ERANGE for @p port_off > 7;
 *   VMRES_EACCESS for a bad size or an access crossing 0xcfb/0xcfc.
 * Context: any thread, bus handlers included; takes the host's mutex, then the
 *   addressed function's.
 */
int vmres_pci_host_conf1_read(struct vmres_pci_host *h, unsigned int port_off, unsigned int size,
			      uint32_t *val);

/**
 * vmres_pci_host_conf1_write() - a guest write of port 0xcf8 + @p port_off.
 * @return as vmres_pci_host_conf1_read().
 * Context: as vmres_pci_host_conf1_read(); the function may call its mapper.
 */
int vmres_pci_host_conf1_write(struct vmres_pci_host *h, unsigned int port_off, unsigned int size,
			       uint32_t val);

/**
 * vmres_pci_host_device() - the host as a vmres device for ports 0xcf8-0xcff:
 * register it (with the device manager, with the "pci-conf1" PIO resource the
 * x86_64 preset pre-reserves, or on a bus) so that range offset 0-7 is port
 * 0xcf8-0xcff. Its release callback is NULL: a VMM that wants the host freed
 * when the registration is released sets @c release to a function that calls
 * vmres_pci_host_free(). Accesses of 8 bytes read all ones and are dropped.
 * @param h the host.
 * @param out receives the device (name "pci-conf1", opaque @p h).
 * @return 0; VMRES_EINVAL for NULL pointers.
 * Context: any thread.
 */
int vmres_pci_host_device(struct vmres_pci_host *h, struct vmres_device *out);

/** Opaque ECAM (memory-mapped configuration) window onto a host's functions. */
struct vmres_pci_ecam;

/** Bytes of ECAM window per bus: 32 devices x 8 functions x 4 KiB. */
#define VMRES_PCI_ECAM_BUS_SIZE 0x100000u

/**
 * vmres_pci_ecam_new() - an ECAM window (PCI Express Base 6.0, 7.2.2) onto the
 * functions of host @p h, covering buses 0 to @p n_buses - 1, 1 MiB each:
 *
 *     offset in the window:  27:20 bus | 19:15 device | 14:12 function | 11:0 register
 *
 * The host is the one "bus" of functions: attach a function once
 * (vmres_pci_host_attach()) and it answers both through conf1 (x86) and
 * through this window; or register only the window (aarch64). The host has
 * bus 0 only: the other buses of the window read all ones and drop writes,
 * as do empty slots. Accesses of 1, 2 and 4 bytes within a dword go to the
 * function's configuration space; one of 8 bytes at a multiple of 8 is split
 * into its two dwords (low first); any other (crossing a dword, or 8 bytes
 * unaligned) reads all ones and is dropped.
 * @param h the host (must outlive the window).
 * @param n_buses 1 to 256.
 * @param out receives the window; free it with vmres_pci_ecam_free().
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ERANGE for another
 *   @p n_buses; VMRES_ENOMEM.
 * Context: any thread.
 */
int vmres_pci_ecam_new(struct vmres_pci_host *h, unsigned int n_buses, struct vmres_pci_ecam **out);

/**
 * vmres_pci_ecam_free() - destroy a window (not its host).
 * @param e the window, or NULL; nothing may dispatch to it any more.
 */
void vmres_pci_ecam_free(struct vmres_pci_ecam *e);

/**
 * vmres_pci_ecam_read() - a guest read at @p offset of the window.
 * @param e the window.
 * @param offset below n_buses MiB.
 * @param size 1, 2, 4 or 8.
 * @param val receives the value (all ones where nothing answers).
 * @return 0; VMRES_EINVAL for NULL pointers; VMRES_ERANGE for an offset
 *   outside the window; VMRES_EACCESS for another size.
 * Context: any thread, bus handlers included; takes the host's mutex, then
 *   the addressed function's.
 */
int vmres_pci_ecam_read(struct vmres_pci_ecam *e, uint64_t offset, unsigned int size,
			uint64_t *val);

/**
 * vmres_pci_ecam_write() - a guest write at @p offset of the window.
 * @return as vmres_pci_ecam_read().
 * Context: as vmres_pci_ecam_read(); the function may call its mapper.
 */
int vmres_pci_ecam_write(struct vmres_pci_ecam *e, uint64_t offset, unsigned int size,
			 uint64_t val);

/**
 * vmres_pci_ecam_device() - the window as a vmres device: register it with
 * one MMIO range of n_buses MiB (the x86_64 preset pre-reserves 256 MiB at
 * 0xe0000000 in "mmio32", the aarch64 preset 256 MiB at 0x40_1000_0000 as the
 * pool "pci-ecam"; both labelled "pci ecam").
 * Its release callback is NULL, as for vmres_pci_host_device().
 * @param e the window.
 * @param out receives the device (name "pci-ecam", opaque @p e).
 * @return 0; VMRES_EINVAL for NULL pointers.
 * Context: any thread.
 */
int vmres_pci_ecam_device(struct vmres_pci_ecam *e, struct vmres_device *out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_PCI_H */
