/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Little-endian loads and stores: guest access buffers (whose byte order is the
 * guest's, little-endian on every target vmres serves), PCI configuration space
 * and the snapshot format. The fixed-width helpers are written byte by byte,
 * which compilers turn into one load or store on little-endian hosts and which
 * is right on any other; vmres__le_load() and vmres__le_store() sit on the
 * dispatch path and take the plain memcpy route where the host order allows.
 * Not installed.
 */
#ifndef VMRES_UTIL_BYTEORDER_H
#define VMRES_UTIL_BYTEORDER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t vmres__le_load16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t vmres__le_load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t vmres__le_load64(const uint8_t *p)
{
	return (uint64_t)vmres__le_load32(p) | (uint64_t)vmres__le_load32(p + 4) << 32;
}

static inline void vmres__le_store16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void vmres__le_store32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vmres__le_store64(uint8_t *p, uint64_t v)
{
	vmres__le_store32(p, (uint32_t)v);
	vmres__le_store32(p + 4, (uint32_t)(v >> 32));
}

/* Low @p size (1, 2, 4 or 8) bytes of a guest buffer as a little-endian number, and back. */
static inline uint64_t vmres__le_load(const uint8_t *p, unsigned int size)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint8_t b1;
	uint16_t b2;
	uint32_t b4;
	uint64_t b8;

	switch (size) {
	case 1:
		memcpy(&b1, p, 1);
		return b1;
	case 2:
		memcpy(&b2, p, 2);
		return b2;
	case 4:
		memcpy(&b4, p, 4);
		return b4;
	default:
		memcpy(&b8, p, 8);
		return b8;
	}
#else
	uint64_t v = 0;

	for (unsigned int i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
#endif
}

static inline void vmres__le_store(uint8_t *p, unsigned int size, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint8_t b1 = (uint8_t)v;
	uint16_t b2 = (uint16_t)v;
	uint32_t b4 = (uint32_t)v;

	switch (size) {
	case 1:
		memcpy(p, &b1, 1);
		break;
	case 2:
		memcpy(p, &b2, 2);
		break;
	case 4:
		memcpy(p, &b4, 4);
		break;
	default:
		memcpy(p, &v, 8);
		break;
	}
#else
	for (unsigned int i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
#endif
}

/* Is @p size the width of a guest access: 1, 2, 4 or 8 bytes? */
static inline bool vmres__valid_size(unsigned int size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* All ones in the low @p size bytes. */
#define VMRES__ONES(size) ((size) >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * (size))) - 1)

#endif /* VMRES_UTIL_BYTEORDER_H */
