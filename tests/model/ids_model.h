/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A deliberately simple model of the ID allocator (ids.h) for differential
 * tests: a byte per number for a small range (set bytes to a calloc'd array of
 * hi - lo + 1 bytes), or sorted disjoint intervals of allocated numbers (bytes
 * NULL) for any range. Zero-initialise it with lo and hi set; free bytes and iv
 * when done. Bounds are u64 so that hi + 1 never wraps. O(range) or O(intervals)
 * per call.
 */
#ifndef VMRES_TEST_IDS_MODEL_H
#define VMRES_TEST_IDS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ids_ival {
	uint64_t a, b;
};

struct ids_model {
	uint64_t lo, hi;
	uint8_t *bytes; /* NULL: use the intervals */
	struct ids_ival *iv;
	size_t niv, cap;
};

static inline bool ids_model_is(const struct ids_model *m, uint64_t x)
{
	if (m->bytes)
		return m->bytes[x - m->lo];
	for (size_t k = 0; k < m->niv; k++)
		if (x >= m->iv[k].a && x <= m->iv[k].b)
			return true;
	return false;
}

/* The lowest allocated number in [a, b], or UINT64_MAX. */
static inline uint64_t ids_model_first_alloc(const struct ids_model *m, uint64_t a, uint64_t b)
{
	if (m->bytes) {
		for (uint64_t x = a; x <= b; x++)
			if (m->bytes[x - m->lo])
				return x;
		return UINT64_MAX;
	}
	for (size_t k = 0; k < m->niv; k++)
		if (m->iv[k].b >= a)
			return m->iv[k].a <= b ? (m->iv[k].a > a ? m->iv[k].a : a) : UINT64_MAX;
	return UINT64_MAX;
}

/* The lowest free number in [a, b], or UINT64_MAX. */
static inline uint64_t ids_model_first_free(const struct ids_model *m, uint64_t a, uint64_t b)
{
	if (m->bytes) {
		for (uint64_t x = a; x <= b; x++)
			if (!m->bytes[x - m->lo])
				return x;
		return UINT64_MAX;
	}
	for (size_t k = 0; k < m->niv && a <= b; k++)
		if (m->iv[k].a <= a && m->iv[k].b >= a)
			a = m->iv[k].b + 1;
	return a <= b ? a : UINT64_MAX;
}

static inline void ids_model_set(struct ids_model *m, uint64_t a, uint64_t b, bool v)
{
	size_t k = 0, out = 0;
	struct ids_ival *n;

	if (m->bytes) {
		memset(m->bytes + (a - m->lo), v, b - a + 1);
		return;
	}
	n = malloc((m->niv + 2) * sizeof(*n));
	if (!n)
		abort(); /* a test helper: out of memory ends the test */
	/* Rebuild: keep the parts outside [a, b], insert [a, b] if v, merge. */
	for (k = 0; k < m->niv; k++) {
		struct ids_ival cur = m->iv[k];

		if (cur.b < a || cur.a > b) {
			n[out++] = cur;
			continue;
		}
		if (cur.a < a)
			n[out++] = (struct ids_ival){cur.a, a - 1};
		if (cur.b > b)
			n[out++] = (struct ids_ival){b + 1, cur.b};
	}
	if (v)
		n[out++] = (struct ids_ival){a, b};
	/* Sort (insertion; small) and merge adjacent intervals. */
	for (size_t i = 1; i < out; i++)
		for (size_t j = i; j > 0 && n[j - 1].a > n[j].a; j--) {
			struct ids_ival t = n[j];

			n[j] = n[j - 1];
			n[j - 1] = t;
		}
	k = 0;
	for (size_t i = 0; i < out; i++) {
		if (k && n[k - 1].b + 1 == n[i].a)
			n[k - 1].b = n[i].b;
		else
			n[k++] = n[i];
	}
	free(m->iv);
	m->iv = n;
	m->niv = k;
}

static inline uint64_t ids_model_used(const struct ids_model *m)
{
	uint64_t used = 0;

	if (m->bytes) {
		for (uint64_t x = m->lo; x <= m->hi; x++)
			used += m->bytes[x - m->lo];
		return used;
	}
	for (size_t k = 0; k < m->niv; k++)
		used += m->iv[k].b - m->iv[k].a + 1;
	return used;
}

/* The lowest aligned block of count wholly free in [lo, hi], or UINT64_MAX. */
static inline uint64_t ids_model_block(const struct ids_model *m, uint64_t count)
{
	uint64_t f = (m->lo + count - 1) & ~(count - 1);

	while (f + count - 1 <= m->hi) {
		uint64_t busy = ids_model_first_alloc(m, f, f + count - 1);

		if (busy == UINT64_MAX)
			return f;
		f = (busy + count) & ~(count - 1);
	}
	return UINT64_MAX;
}

#endif /* VMRES_TEST_IDS_MODEL_H */
