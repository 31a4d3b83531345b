/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the ID allocator (ids.h): the input picks a range (small
 * with lo at an odd offset, ending at UINT32_MAX, or large enough that leaves
 * are allocated lazily) and a sequence of operations (alloc, alloc_from,
 * reserve, aligned blocks, exact blocks, release of numbers and blocks, test,
 * next). Each runs on vmres_ids and on the model in tests/model/ids_model.h (a
 * byte per number for small ranges, intervals otherwise); any difference in
 * return code, result or state aborts, as does a failed vmres_ids_validate().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/ids.h>

#include "../tests/model/ids_model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UNTOUCHED 0x5a5a5a5au
#define NONE	  UINT64_MAX

/* Every allocated run of the model is allocated in @p ids, and nothing else. */
static void check_state(struct vmres_ids *ids, const struct ids_model *m)
{
	struct vmres_ids_stats st;
	uint64_t from = m->lo, a, b;
	uint32_t id;

	FUZZ_CHECK(vmres_ids_validate(ids) == 0);
	FUZZ_CHECK(vmres_ids_stats(ids, &st) == 0);
	FUZZ_CHECK(st.lo == m->lo && st.hi == m->hi);
	FUZZ_CHECK(st.used == ids_model_used(m));
	FUZZ_CHECK(st.used + st.free == m->hi - m->lo + 1);
	while (from <= m->hi) {
		a = ids_model_first_alloc(m, from, m->hi);
		if (a == NONE) {
			FUZZ_CHECK(vmres_ids_next(ids, (uint32_t)from, &id) == VMRES_ENOENT);
			break;
		}
		b = ids_model_first_free(m, a, m->hi);
		b = b == NONE ? m->hi : b - 1;
		FUZZ_CHECK(vmres_ids_next(ids, (uint32_t)from, &id) == 0 && id == a);
		if (b - a < 64) {
			for (uint64_t x = a; x <= b; x++)
				FUZZ_CHECK(vmres_ids_next(ids, (uint32_t)x, &id) == 0 && id == x);
		} else {
			/* Releasing the whole run succeeds only if all of it is allocated. */
			FUZZ_CHECK(vmres_ids_release_block(ids, (uint32_t)a,
							   (uint32_t)(b - a + 1)) == 0);
			FUZZ_CHECK(vmres_ids_reserve_block(ids, (uint32_t)a,
							   (uint32_t)(b - a + 1)) == 0);
		}
		if (b < m->hi)
			FUZZ_CHECK(vmres_ids_test(ids, (uint32_t)b + 1) == 0);
		from = b + 1;
	}
}

static uint32_t clamp32(uint64_t x)
{
	return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static uint32_t pick_id(struct fuzz_in *in, const struct ids_model *m)
{
	uint8_t sel = fuzz_u8(in);
	int64_t step = (int8_t)fuzz_u8(in);
	uint64_t c;

	switch (sel & 7) {
	case 0:
		c = m->lo;
		break;
	case 1:
		c = m->hi;
		break;
	case 2: /* near an allocated number */
		c = ids_model_first_alloc(m, m->lo + (fuzz_u32(in) % (m->hi - m->lo + 1)), m->hi);
		c = c == NONE ? m->lo : c;
		break;
	case 3:
		return fuzz_u32(in);
	case 4:
		c = m->lo + fuzz_u16(in);
		break;
	default:
		c = m->lo + (m->hi - m->lo) / 2;
		break;
	}
	if (step < 0 && (uint64_t)-step > c)
		return 0;
	return clamp32(c + (uint64_t)step);
}

/*
 * A block size. In a large range, at most 2^20 numbers (128 KiB of bitmap): a
 * block of 2^31 would make each run allocate and scan 256 MiB of leaves.
 */
static uint32_t pick_count(struct fuzz_in *in, const struct ids_model *m)
{
	uint32_t limit = m->bytes ? UINT32_MAX : (1u << 21) - 1;
	uint8_t sel = fuzz_u8(in);

	switch (sel >> 6) {
	case 0:
		return sel & 3;
	case 1:
		return ((uint32_t)1 << (sel & 31)) & limit;
	case 2:
		return fuzz_u8(in);
	default:
		return fuzz_u32(in) & limit;
	}
}

static void step(struct fuzz_in *in, struct vmres_ids *ids, struct ids_model *m)
{
	uint32_t out = UNTOUCHED, x, count;
	uint64_t want = UNTOUCHED, last;
	int rc, mrc;

	switch (fuzz_u8(in) % 9) {
	case 0:
		rc = vmres_ids_alloc(ids, &out);
		want = ids_model_first_free(m, m->lo, m->hi);
		mrc = want == NONE ? VMRES_ENOSPC : 0;
		if (mrc == 0)
			ids_model_set(m, want, want, true);
		break;
	case 1:
		x = pick_id(in, m);
		rc = vmres_ids_alloc_from(ids, x, &out);
		if (x > m->hi) {
			mrc = VMRES_ERANGE;
		} else {
			want = ids_model_first_free(m, x > m->lo ? x : m->lo, m->hi);
			mrc = want == NONE ? VMRES_ENOSPC : 0;
			if (mrc == 0)
				ids_model_set(m, want, want, true);
		}
		break;
	case 2:
		x = pick_id(in, m);
		rc = vmres_ids_reserve(ids, x);
		mrc = x < m->lo || x > m->hi ? VMRES_ERANGE
		      : ids_model_is(m, x)   ? VMRES_EOVERLAP
					     : 0;
		if (mrc == 0)
			ids_model_set(m, x, x, true);
		want = out; /* no out-parameter */
		break;
	case 3:
		count = pick_count(in, m);
		rc = vmres_ids_alloc_block(ids, count, &out);
		if (count == 0) {
			mrc = VMRES_ESIZE;
		} else if (count & (count - 1)) {
			mrc = VMRES_EALIGN;
		} else {
			want = ids_model_block(m, count);
			mrc = want == NONE ? VMRES_ENOSPC : 0;
			if (mrc == 0)
				ids_model_set(m, want, want + count - 1, true);
		}
		break;
	case 4:
	case 6: {
		bool reserve;

		x = pick_id(in, m);
		count = pick_count(in, m);
		last = (uint64_t)x + count - 1;
		reserve = !(fuzz_u8(in) & 1);
		rc = reserve ? vmres_ids_reserve_block(ids, x, count)
			     : vmres_ids_release_block(ids, x, count);
		if (count == 0)
			mrc = VMRES_ESIZE;
		else if (x < m->lo || last > m->hi)
			mrc = VMRES_ERANGE;
		else if (reserve)
			mrc = ids_model_first_alloc(m, x, last) != NONE ? VMRES_EOVERLAP : 0;
		else
			mrc = ids_model_first_free(m, x, last) != NONE ? VMRES_ENOENT : 0;
		if (mrc == 0)
			ids_model_set(m, x, last, reserve);
		want = out;
		break;
	}
	case 5:
		x = pick_id(in, m);
		rc = vmres_ids_release(ids, x);
		mrc = x < m->lo || x > m->hi ? VMRES_ERANGE
		      : !ids_model_is(m, x)  ? VMRES_ENOENT
					     : 0;
		if (mrc == 0)
			ids_model_set(m, x, x, false);
		want = out;
		break;
	case 7:
		x = pick_id(in, m);
		rc = vmres_ids_test(ids, x);
		mrc = x < m->lo || x > m->hi ? VMRES_ERANGE : ids_model_is(m, x);
		break;
	default:
		x = pick_id(in, m);
		rc = vmres_ids_next(ids, x, &out);
		want = x > m->hi ? NONE : ids_model_first_alloc(m, x > m->lo ? x : m->lo, m->hi);
		mrc = want == NONE ? VMRES_ENOENT : 0;
		break;
	}
	if (mrc == 0 && rc == 0 && want != out)
		fprintf(stderr, "vmres %#x, model %#llx\n", out, (unsigned long long)want);
	if (rc != mrc)
		fprintf(stderr, "vmres %s, model %s\n", vmres_strerror(rc), vmres_strerror(mrc));
	FUZZ_CHECK(rc == mrc);
	if (mrc == 0)
		FUZZ_CHECK(out == want);
	else
		FUZZ_CHECK(out == UNTOUCHED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct vmres_ids *ids = NULL;
	struct ids_model m;
	uint8_t mode = fuzz_u8(&in);
	uint64_t lo, hi;

	memset(&m, 0, sizeof(m));
	switch (mode & 3) {
	case 0: /* small, lo at any (often odd) offset */
		lo = fuzz_u32(&in) & 0xfffff;
		hi = lo + fuzz_u16(&in) % 600;
		break;
	case 1: /* ending at UINT32_MAX */
		hi = UINT32_MAX;
		lo = hi - fuzz_u16(&in) % 600;
		break;
	case 2: /* large: leaves allocated lazily */
		lo = fuzz_u32(&in) & 0xffff;
		hi = mode & 4 ? UINT32_MAX : lo + ((uint64_t)1 << 22) + fuzz_u16(&in);
		break;
	default: /* anything, maybe invalid */
		lo = fuzz_u32(&in);
		hi = fuzz_u32(&in);
		break;
	}
	if (lo > hi) {
		FUZZ_CHECK(vmres_ids_new((uint32_t)lo, (uint32_t)hi, &ids) == VMRES_EINVAL);
		FUZZ_CHECK(ids == NULL);
		return 0;
	}
	FUZZ_CHECK(vmres_ids_new((uint32_t)lo, (uint32_t)hi, &ids) == 0);
	m.lo = lo;
	m.hi = hi;
	if (hi - lo < 4096) {
		m.bytes = calloc(hi - lo + 1, 1);
		FUZZ_CHECK(m.bytes != NULL);
	}
	while (!fuzz_done(&in)) {
		step(&in, ids, &m);
		check_state(ids, &m);
	}
	vmres_ids_free(ids);
	free(m.bytes);
	free(m.iv);
	return 0;
}
