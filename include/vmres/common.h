/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file common.h
 * @brief Error codes, the inclusive range type and the library version.
 *
 * Every vmres function returns 0 on success or one negative VMRES_E* code, each
 * naming one cause. Results come back through out-parameters, which are left
 * untouched on error. Nothing here keeps global state; every function in this
 * header is thread-safe.
 *
 * Names: every device name, pool name, owner name and label the library takes
 * must be text, so that the text and JSON dumps can show it: valid UTF-8 (no
 * overlong forms, surrogates or code points above U+10FFFF) with no control
 * character (a byte below 0x20, or 0x7f), shorter than its field's maximum.
 * Every call that takes a name refuses one that is not text with VMRES_EINVAL
 * (a pool looked up by a name too long to be a pool's is VMRES_EPOOL, no such
 * pool, as before), and a snapshot holding one is refused with VMRES_ECORRUPT.
 */
#ifndef VMRES_COMMON_H
#define VMRES_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. 0 is success; every error is negative and names one cause. */
enum vmres_error {
	VMRES_OK = 0,
	VMRES_EINVAL = -1,	/**< a required pointer is NULL or an argument is malformed */
	VMRES_ENOMEM = -2,	/**< the host is out of memory */
	VMRES_ESIZE = -3,	/**< a size or count of zero */
	VMRES_EOVERFLOW = -4,	/**< base + size (or an alignment) overflows the space */
	VMRES_EALIGN = -5,	/**< an alignment or block count that is not a power of two */
	VMRES_EMISALIGNED = -6, /**< an exact address that is not a multiple of the alignment */
	VMRES_ERANGE = -7,	/**< an address, number or sub-window outside the managed space */
	VMRES_ENOSPC = -8,	/**< no free room satisfies the request */
	VMRES_EOVERLAP = -9,	/**< the range or number overlaps one already allocated */
	VMRES_ENOENT = -10,	/**< nothing allocated or registered there */
	VMRES_EPOOL = -11,	/**< no pool of that name */
	VMRES_EKIND = -12,	/**< the pool does not hold that kind of resource */
	VMRES_EOWNER = -13,	/**< the resource belongs to another owner */
	VMRES_EEXIST = -14,	/**< a pool, device or entry of that name or id exists */
	VMRES_EDEVICE = -15,	/**< no device with that instance id */
	VMRES_EPARENT = -16,	/**< unknown parent, or a parent that still has children */
	VMRES_ESTATE = -17,	/**< the object is not in a state that allows the call */
	VMRES_ESYS = -18,	/**< a system call (e.g. a KVM ioctl) failed; see errno */
	VMRES_ETRUNC = -19,	/**< input ends before a complete record */
	VMRES_EMAGIC = -20,	/**< input does not start with the expected magic */
	VMRES_EVERSION = -21,	/**< input has a format version this build cannot read */
	VMRES_ECHECKSUM = -22,	/**< input's checksum does not match its bytes */
	VMRES_ECORRUPT = -23,	/**< input is well formed but inconsistent */
	VMRES_ENOTSUP = -24,	/**< the operation is not supported by this object */
	VMRES_EFULL = -25,	/**< a fixed-size table (e.g. a bus or routing table) is full */
	VMRES_EACCESS = -26,	/**< an access size or length that the call cannot take */
};

/** The lowest error code; every code lies in [VMRES_ERRNO_MIN, 0]. */
#define VMRES_ERRNO_MIN VMRES_EACCESS

/**
 * vmres_strerror() - what an error code means and, where one usually helps,
 * what to do about it, in one English sentence.
 * @param err 0 or a VMRES_E* code.
 * @return a static string; "unknown error" for a value that is not a code.
 * Context: thread-safe, never fails.
 */
const char *vmres_strerror(int err);

/**
 * vmres_error_detail() - what went wrong in the calling thread's last failed
 * call, with the numbers involved and what to do, e.g. "output array too small:
 * out_cap is 2, the device has 3 resources; pass an array of at least 3".
 * Calls record such a detail where a bare code would leave the caller guessing:
 * an output array that is too small (need N), a struct not initialised with its
 * _INIT macro, a name that is too long (max N) or not text, a thread that is not
 * registered.
 * @param err the code the call returned.
 * @return a string owned by the calling thread, valid until its next vmres call:
 *   the detail of the thread's most recent failure that recorded one, if that
 *   failure returned @p err; else vmres_strerror(@p err).
 * Context: any thread; reads only the calling thread's record.
 */
const char *vmres_error_detail(int err);

/**
 * vmres_errname() - the symbolic name of an error code ("VMRES_ENOSPC").
 * @param err 0 or a VMRES_E* code.
 * @return a static string; "VMRES_E?" for a value that is not a code.
 * Context: thread-safe, never fails.
 */
const char *vmres_errname(int err);

#define VMRES_VERSION_MAJOR 0 /**< major version: changes break the API or ABI */
#define VMRES_VERSION_MINOR 2 /**< minor version: compatible additions */
#define VMRES_VERSION_PATCH 0 /**< patch version: fixes only */

/**
 * vmres_version() - the version of the library actually linked.
 * @return a static string such as "0.2.0".
 * Context: thread-safe.
 */
const char *vmres_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_COMMON_H */
