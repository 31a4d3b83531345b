/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file device.h
 * @brief What a device is to vmres: a name, an opaque pointer and a few callbacks.
 *
 * A device answers reads and writes of 1, 2, 4 or 8 bytes at an offset inside one
 * of its address ranges. vmres tells it which range (the index of the address
 * resource in the array the device was registered with, or the range number given
 * to vmres_bus_insert()), the offset inside that range, the absolute address and
 * the access size. Values travel as the low @c size bytes of a uint64_t, in the
 * guest's byte order read as a little-endian number (what x86 and arm64 guests do).
 *
 * The device owns its state and its locking: vmres adds no lock around a callback,
 * and several vCPU threads may call the same device at once. A callback may call
 * back into the device manager (register, update, move, unregister, lookups) on the
 * same thread; see devmgr.h.
 *
 *     struct vmres_device uart = VMRES_DEVICE_INIT;
 *     uart.name = "uart0";
 *     uart.opaque = &my_uart;
 *     uart.read = uart_read;
 *     uart.write = uart_write;
 *     uart.release = uart_free;   // runs once nothing can reach the device
 *
 * The struct is a plain value that vmres copies when the device is registered;
 * the caller's copy may be discarded afterwards.
 *
 * Caller context: a device that wants to know who made the access (the VMM's
 * vCPU, to raise an interrupt on it or read its registers) sets @c read_ctx and
 * @c write_ctx instead of @c read and @c write. They take one more argument,
 * the @c caller pointer that the VMM handed to the dispatch entry point
 * (vmres_devmgr_mmio_ctx(), vmres_devmgr_pio_ctx(), vmres_devmgr_kvm_exit_ctx(),
 * vmres_bus_read_ctx(), vmres_bus_write_ctx(); the entry points without _ctx pass
 * NULL). Dispatch costs the same either way: the bus entry records which pair
 * the device uses, and the call takes one well-predicted branch.
 *
 *     static uint64_t uart_read(void *opaque, void *caller, unsigned int range,
 *                               uint64_t offset, uint64_t addr, unsigned int size)
 *     {
 *             struct my_vcpu *vcpu = caller;   // what the VMM passed, or NULL
 *             ...
 *     }
 *     uart.read_ctx = uart_read;
 *
 * Versions: version 2 (this one) added @c read_ctx and @c write_ctx; a struct
 * of version 1 (built against the older header, without those members) is
 * still accepted everywhere a device is taken, and vmres reads none of the
 * members it lacks.
 */
#ifndef VMRES_DEVICE_H
#define VMRES_DEVICE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of struct vmres_device understood by this build. */
#define VMRES_DEVICE_VERSION 2

/** Longest device name kept, including the terminating NUL (longer names are refused). */
#define VMRES_DEVICE_NAME_MAX 32

/**
 * Read callback: return the @p size bytes at @p offset of range @p range.
 * @param opaque the device's vmres_device.opaque.
 * @param range which range (resource index) the access fell in.
 * @param offset offset of @p addr from the start of that range; the whole access
 *   [offset, offset + size - 1] lies inside the range.
 * @param addr absolute address (port number for PIO).
 * @param size 1, 2, 4 or 8.
 * @return the value; only its low @p size bytes are used.
 */
typedef uint64_t (*vmres_device_read_fn)(void *opaque, unsigned int range, uint64_t offset,
					 uint64_t addr, unsigned int size);

/** Write callback: store the low @p size bytes of @p value; arguments as for read. */
typedef void (*vmres_device_write_fn)(void *opaque, unsigned int range, uint64_t offset,
				      uint64_t addr, unsigned int size, uint64_t value);

/**
 * Read callback with the caller's context (struct vmres_device version 2).
 * @param opaque the device's vmres_device.opaque.
 * @param caller what the VMM passed to the dispatch entry point (its vCPU), or
 *   NULL from an entry point that takes none.
 * @param range which range (resource index) the access fell in.
 * @param offset offset of @p addr from the start of that range.
 * @param addr absolute address (port number for PIO).
 * @param size 1, 2, 4 or 8.
 * @return the value; only its low @p size bytes are used.
 */
typedef uint64_t (*vmres_device_read_ctx_fn)(void *opaque, void *caller, unsigned int range,
					     uint64_t offset, uint64_t addr, unsigned int size);

/** Write callback with the caller's context: arguments as for vmres_device_read_ctx_fn. */
typedef void (*vmres_device_write_ctx_fn)(void *opaque, void *caller, unsigned int range,
					  uint64_t offset, uint64_t addr, unsigned int size,
					  uint64_t value);

/**
 * Release callback: called exactly once, after the device was removed and every
 * access that might still have been inside one of its callbacks has returned, so
 * the device may be freed right there. It runs on liburcu's call_rcu thread (or on
 * the thread that frees the manager or bus); it must not block for long and must
 * not free the manager or bus that is releasing it.
 */
typedef void (*vmres_device_release_fn)(void *opaque);

/**
 * A device. All fields public; start from VMRES_DEVICE_INIT. A device uses
 * either the plain pair (@c read, @c write) or the pair with the caller's
 * context (@c read_ctx, @c write_ctx), not one of each: a device that sets a
 * member of both pairs is refused (VMRES_EINVAL). Within its pair, a NULL read
 * reads as all ones and a NULL write is dropped.
 */
struct vmres_device {
	unsigned int version;		 /**< VMRES_DEVICE_VERSION (1 is accepted too) */
	const char *name;		 /**< for dumps; copied; NULL means ""; text (common.h) */
	void *opaque;			 /**< passed to every callback */
	vmres_device_read_fn read;	 /**< NULL: reads as all ones */
	vmres_device_write_fn write;	 /**< NULL: writes are dropped */
	vmres_device_release_fn release; /**< NULL: nothing to release */
	/** Owner tag of the device's resources in the system allocator (devmgr only):
	 * guest-driven moves reserve and release with this tag. */
	uint64_t owner;
	/* Version 2: */
	vmres_device_read_ctx_fn read_ctx;   /**< instead of @c read: also gets the caller */
	vmres_device_write_ctx_fn write_ctx; /**< instead of @c write: also gets the caller */
};

/** Initializer: version set, everything else zero. */
#define VMRES_DEVICE_INIT                                                                          \
	{                                                                                          \
		.version = VMRES_DEVICE_VERSION, .name = NULL, .opaque = NULL, .read = NULL,       \
		.write = NULL, .release = NULL, .owner = 0, .read_ctx = NULL, .write_ctx = NULL    \
	}

#ifdef __cplusplus
}
#endif

#endif /* VMRES_DEVICE_H */
