/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file resource.h
 * @brief The resource a device holds, and the request that asks for one.
 *
 * Resources are a small closed set of different kinds, so they are one tagged
 * value (not a hierarchy): an address range in the PIO or MMIO space, a legacy
 * interrupt (GSI), an MSI (GSI plus the message the guest programs), an ID.
 * Each resource names the pool it came from, so that it can be given back
 * without the caller remembering where it was allocated.
 *
 * A request ("constraint") is the matching tagged value that the system
 * allocator turns into resources. Both are plain values: copy them freely.
 *
 * Context: every function here is pure and thread-safe.
 */
#ifndef VMRES_RESOURCE_H
#define VMRES_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest pool name, including the terminating NUL. Pool names are text (common.h). */
#define VMRES_POOL_NAME_MAX 24

/** The kinds of resource. */
enum vmres_res_kind {
	VMRES_RES_ADDR = 1, /**< an address range (PIO or MMIO) */
	VMRES_RES_IRQ = 2,  /**< a legacy (pin-based) interrupt: one GSI */
	VMRES_RES_MSI = 3,  /**< a message-signalled interrupt: GSI plus message */
	VMRES_RES_ID = 4,   /**< a unique number (instance id, slot, ...) */
};

/** The address spaces a range can live in. */
enum vmres_space {
	VMRES_SPACE_PIO = 1,  /**< x86 port I/O, 16-bit */
	VMRES_SPACE_MMIO = 2, /**< memory-mapped I/O, 64-bit */
};

/** An MSI message as the guest programs it (PCI MSI / MSI-X). */
struct vmres_msi_msg {
	uint32_t addr_lo; /**< message address, low 32 bits */
	uint32_t addr_hi; /**< message address, high 32 bits */
	uint32_t data;	  /**< message data */
};

/** One resource. */
struct vmres_resource {
	enum vmres_res_kind kind;	/**< which member of the union is valid */
	char pool[VMRES_POOL_NAME_MAX]; /**< pool it came from ("" if none) */
	union {
		struct {
			enum vmres_space space; /**< PIO or MMIO */
			uint64_t base;		/**< first address */
			uint64_t size;		/**< bytes, >= 1 */
			uint64_t align;		/**< alignment it was made with (0: none) */
		} addr;				/**< VMRES_RES_ADDR */
		struct {
			uint32_t gsi; /**< global system interrupt number */
			bool shared;  /**< a share of a shared line (sysalloc.h) */
		} irq;		      /**< VMRES_RES_IRQ */
		struct {
			uint32_t gsi;		  /**< GSI (KVM route) of this vector */
			struct vmres_msi_msg msg; /**< message; all zero until programmed */
		} msi;				  /**< VMRES_RES_MSI */
		struct {
			uint32_t id; /**< the number */
		} id;		     /**< VMRES_RES_ID */
	} u;			     /**< kind-specific value */
};

/** One request ("constraint"). */
struct vmres_request {
	enum vmres_res_kind kind;	/**< which member of the union is valid */
	char pool[VMRES_POOL_NAME_MAX]; /**< pool to draw from (required) */
	union {
		struct {
			enum vmres_space space;	   /**< must match the pool's space */
			struct vmres_addr_req req; /**< size, alignment, policy, sub-window */
		} addr;				   /**< VMRES_RES_ADDR */
		struct {
			bool any;     /**< any free GSI of the pool (lowest) */
			uint32_t gsi; /**< else this specific one */
			bool shared;  /**< a share of a line (PCI INTx; sysalloc.h) */
		} irq;		      /**< VMRES_RES_IRQ */
		struct {
			uint32_t count;	 /**< number of vectors, >= 1 */
			bool contiguous; /**< one block aligned to count (a power of two) */
			bool any;	 /**< false: reserve from @c gsi on (what firmware chose) */
			uint32_t gsi;	 /**< first GSI when !any */
		} msi;			 /**< VMRES_RES_MSI: yields @c count resources */
		struct {
			bool any;    /**< the lowest free id of the pool */
			uint32_t id; /**< else this specific one */
		} id;		     /**< VMRES_RES_ID */
	} u;			     /**< kind-specific value */
};

/**
 * vmres_resource_equal() - are two resources the same value?
 * Compares kind, pool and the kind's fields (not padding).
 * @return true if equal; false if different or either is NULL.
 */
bool vmres_resource_equal(const struct vmres_resource *a, const struct vmres_resource *b);

/**
 * vmres_request_equal() - are two requests the same value? As above.
 */
bool vmres_request_equal(const struct vmres_request *a, const struct vmres_request *b);

/**
 * vmres_resource_format() - print a resource for logs, snprintf-style, e.g.
 * "mmio mmio32 [0xfe000000-0xfe000fff] align 0x1000", "irq gsi-legacy 4",
 * "irq gsi-legacy 16 shared",
 * "msi gsi-msi 24 msg 0x00000000:fee00000/0x4021", "id device-id 7".
 * @param r the resource.
 * @param buf destination (may be NULL when @p len is 0).
 * @param len size of @p buf.
 * @return the length the full text needs (excluding the NUL), like snprintf;
 *   VMRES_EINVAL for a NULL resource or an unknown kind.
 */
int vmres_resource_format(const struct vmres_resource *r, char *buf, size_t len);

/**
 * vmres_request_format() - print a request for logs, as vmres_resource_format().
 */
int vmres_request_format(const struct vmres_request *q, char *buf, size_t len);

/** vmres_res_kind_name() - "addr", "irq", "msi", "id", or "?" for other values. */
const char *vmres_res_kind_name(enum vmres_res_kind kind);

/** vmres_space_name() - "pio", "mmio", or "?" for other values. */
const char *vmres_space_name(enum vmres_space space);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_RESOURCE_H */
