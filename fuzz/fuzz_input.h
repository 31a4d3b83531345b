/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every fuzz target shares: reading the fuzzer's bytes as a stream of
 * numbers (an exhausted input reads as zeros, so every input is a complete
 * program), and FUZZ_CHECK(), which reports the failing line and aborts: a
 * divergence from the model is a crash that libFuzzer keeps.
 */
#ifndef VMRES_FUZZ_INPUT_H
#define VMRES_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static inline bool fuzz_done(const struct fuzz_in *in)
{
	return in->n == 0;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)(fuzz_u8(in) | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	return fuzz_u16(in) | (uint32_t)fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	return fuzz_u32(in) | (uint64_t)fuzz_u32(in) << 32;
}

static inline bool fuzz_bool(struct fuzz_in *in)
{
	return fuzz_u8(in) & 1;
}

/* @p centre moved by a small signed step (-128..127), wrapping like the u64 it is. */
static inline uint64_t fuzz_near(struct fuzz_in *in, uint64_t centre)
{
	return centre + (uint64_t)(int64_t)(int8_t)fuzz_u8(in);
}

/* A size: small, a power of two (maybe minus or plus one), or any 64-bit value. */
static inline uint64_t fuzz_size(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);
	uint64_t p = (uint64_t)1 << (sel & 63);

	switch (sel >> 6) {
	case 0:
		return fuzz_u8(in) & 0x3f;
	case 1:
		return p;
	case 2:
		return fuzz_bool(in) ? p - 1 : p + 1;
	default:
		return fuzz_u64(in);
	}
}

#endif /* VMRES_FUZZ_INPUT_H */
