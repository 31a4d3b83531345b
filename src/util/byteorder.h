/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Little-endian loads and stores: guest access buffers (whose byte order is the
 * guest's, little-endian on every target vmres serves), PCI configuration space
 * and the snapshot format. vmres builds for little-endian hosts only (x86_64 and
 * aarch64 KVM hosts are; meson.build refuses others and so does the #error
 * below), so each helper is a plain memcpy() of the host's own representation,
 * which compilers turn into one unaligned load or store. Not installed.
 */
#ifndef VMRES_UTIL_BYTEORDER_H
#define VMRES_UTIL_BYTEORDER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vmres supports little-endian hosts only (README.md, \"Requirements\")"
#endif

static inline uint16_t vmres__le_load16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t vmres__le_load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t vmres__le_load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void vmres__le_store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void vmres__le_store32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void vmres__le_store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Low @p size (1, 2, 4 or 8) bytes of a guest buffer as a little-endian number, and back. */
static inline uint64_t vmres__le_load(const uint8_t *p, unsigned int size)
{
	switch (size) {
	case 1:
		return p[0];
	case 2:
		return vmres__le_load16(p);
	case 4:
		return vmres__le_load32(p);
	default:
		return vmres__le_load64(p);
	}
}

static inline void vmres__le_store(uint8_t *p, unsigned int size, uint64_t v)
{
	switch (size) {
	case 1:
		p[0] = (uint8_t)v;
		break;
	case 2:
		vmres__le_store16(p, (uint16_t)v);
		break;
	case 4:
		vmres__le_store32(p, (uint32_t)v);
		break;
	default:
		vmres__le_store64(p, v);
		break;
	}
}

/* Is @p size the width of a guest access: 1, 2, 4 or 8 bytes? */
static inline bool vmres__valid_size(unsigned int size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* All ones in the low @p size bytes. */
#define VMRES__ONES(size) ((size) >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * (size))) - 1)

#endif /* VMRES_UTIL_BYTEORDER_H */
