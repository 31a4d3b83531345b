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

/*
 * Initialisers. Each macro is a compound literal of struct vmres_request or
 * struct vmres_resource with every member set (the unnamed ones zero, the
 * address request's from VMRES_ADDR_REQ_INIT), so a request needs neither a
 * memset nor a copy of the pool name:
 *
 *     struct vmres_request req[2] = {
 *             VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000),
 *             VMRES_REQUEST_MSI("gsi-msi", 2, false),
 *     };
 *     q = VMRES_REQUEST_IRQ_SHARED("gsi-legacy");   // assignment works too
 *
 * @p pool must be a string literal (or another char array initialiser) of at
 * most VMRES_POOL_NAME_MAX - 1 characters; a pointer does not compile. They
 * are expressions, usable in a function (at file scope, in a static
 * initialiser, strict C11 does not accept a compound literal). Set any other
 * member afterwards (e.g. q.u.addr.req.min for a sub-window).
 */

/** @cond */
#define VMRES__ADDR_REQ(policy_, size_, align_, addr_)                                             \
	{                                                                                          \
		.version = VMRES_ADDR_REQ_VERSION, .policy = (policy_), .size = (size_),           \
		.align = (align_), .addr = (addr_), .min = 0, .max = UINT64_MAX, .owner = 0        \
	}
/** @endcond */

/** @p size bytes aligned to @p align (0: none) in @p space, first fit in @p pool. */
#define VMRES_REQUEST_ADDR(pool_, space_, size_, align_)                                           \
	((struct vmres_request){                                                                   \
		.kind = VMRES_RES_ADDR,                                                            \
		.pool = pool_,                                                                     \
		.u.addr = {.space = (space_),                                                      \
			   .req = VMRES__ADDR_REQ(VMRES_ADDR_FIRST_FIT, (size_), (align_), 0)}})

/** @p size bytes exactly at @p base in @p space of @p pool (no alignment asked). */
#define VMRES_REQUEST_ADDR_EXACT(pool_, space_, base_, size_)                                      \
	((struct vmres_request){                                                                   \
		.kind = VMRES_RES_ADDR,                                                            \
		.pool = pool_,                                                                     \
		.u.addr = {.space = (space_),                                                      \
			   .req = VMRES__ADDR_REQ(VMRES_ADDR_EXACT, (size_), 0, (base_))}})

/** The lowest free legacy interrupt (GSI) of @p pool, exclusive. */
#define VMRES_REQUEST_IRQ_ANY(pool_)                                                               \
	((struct vmres_request){.kind = VMRES_RES_IRQ,                                             \
				.pool = pool_,                                                     \
				.u.irq = {.any = true, .gsi = 0, .shared = false}})

/** Legacy interrupt @p gsi of @p pool, exclusive. */
#define VMRES_REQUEST_IRQ(pool_, gsi_)                                                             \
	((struct vmres_request){.kind = VMRES_RES_IRQ,                                             \
				.pool = pool_,                                                     \
				.u.irq = {.any = false, .gsi = (gsi_), .shared = false}})

/** A share of the least-shared line of @p pool (PCI INTx; sysalloc.h). */
#define VMRES_REQUEST_IRQ_SHARED(pool_)                                                            \
	((struct vmres_request){.kind = VMRES_RES_IRQ,                                             \
				.pool = pool_,                                                     \
				.u.irq = {.any = true, .gsi = 0, .shared = true}})

/** A share of line @p gsi of @p pool (joins it, or starts it if free). */
#define VMRES_REQUEST_IRQ_SHARED_GSI(pool_, gsi_)                                                  \
	((struct vmres_request){.kind = VMRES_RES_IRQ,                                             \
				.pool = pool_,                                                     \
				.u.irq = {.any = false, .gsi = (gsi_), .shared = true}})

/** @p count MSI vectors, the lowest free of @p pool; @p contiguous: one block aligned to
 * @p count (a power of two, for multi-message MSI). Yields @p count resources. */
#define VMRES_REQUEST_MSI(pool_, count_, contiguous_)                                              \
	((struct vmres_request){                                                                   \
		.kind = VMRES_RES_MSI,                                                             \
		.pool = pool_,                                                                     \
		.u.msi = {.count = (count_), .contiguous = (contiguous_), .any = true, .gsi = 0}})

/** @p count MSI vectors of @p pool from @p gsi on (what firmware chose). */
#define VMRES_REQUEST_MSI_AT(pool_, count_, contiguous_, gsi_)                                     \
	((struct vmres_request){.kind = VMRES_RES_MSI,                                             \
				.pool = pool_,                                                     \
				.u.msi = {.count = (count_),                                       \
					  .contiguous = (contiguous_),                             \
					  .any = false,                                            \
					  .gsi = (gsi_)}})

/** The lowest free id of @p pool. */
#define VMRES_REQUEST_ID_ANY(pool_)                                                                \
	((struct vmres_request){                                                                   \
		.kind = VMRES_RES_ID, .pool = pool_, .u.id = {.any = true, .id = 0}})

/** Id @p id of @p pool. */
#define VMRES_REQUEST_ID(pool_, id_)                                                               \
	((struct vmres_request){                                                                   \
		.kind = VMRES_RES_ID, .pool = pool_, .u.id = {.any = false, .id = (id_)}})

/** An address range [@p base, @p base + @p size) in @p space, from @p pool ("" for none),
 * no alignment recorded. */
#define VMRES_RESOURCE_ADDR(pool_, space_, base_, size_)                                           \
	((struct vmres_resource){                                                                  \
		.kind = VMRES_RES_ADDR,                                                            \
		.pool = pool_,                                                                     \
		.u.addr = {.space = (space_), .base = (base_), .size = (size_), .align = 0}})

/** Legacy interrupt @p gsi from @p pool ("" for none), exclusive. */
#define VMRES_RESOURCE_IRQ(pool_, gsi_)                                                            \
	((struct vmres_resource){                                                                  \
		.kind = VMRES_RES_IRQ, .pool = pool_, .u.irq = {.gsi = (gsi_), .shared = false}})

/** MSI vector on @p gsi from @p pool ("" for none), message not programmed (zero). */
#define VMRES_RESOURCE_MSI(pool_, gsi_)                                                            \
	((struct vmres_resource){                                                                  \
		.kind = VMRES_RES_MSI,                                                             \
		.pool = pool_,                                                                     \
		.u.msi = {.gsi = (gsi_), .msg = {.addr_lo = 0, .addr_hi = 0, .data = 0}}})

/** Id @p id from @p pool ("" for none). */
#define VMRES_RESOURCE_ID(pool_, id_)                                                              \
	((struct vmres_resource){.kind = VMRES_RES_ID, .pool = pool_, .u.id = {.id = (id_)}})

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
