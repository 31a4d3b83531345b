/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit and differential tests of the ID allocator (include/vmres/ids.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/ids.h>

#include "helpers.h"

#include "model/ids_model.h"

#define SNAP_MAX 16384

/* Everything observable: the allocated numbers (via vmres_ids_next) and stats. */
struct snap {
	struct vmres_ids_stats st;
	uint32_t count;
	uint32_t ids[SNAP_MAX];
};

static void take(const struct vmres_ids *ids, struct snap *s)
{
	uint32_t from, id;

	memset(s, 0, sizeof(*s));
	assert_int_equal(vmres_ids_stats(ids, &s->st), 0);
	from = s->st.lo;
	while (vmres_ids_next(ids, from, &id) == 0) {
		assert_true(s->count < SNAP_MAX);
		assert_true(id >= from);
		s->ids[s->count++] = id;
		if (id == UINT32_MAX)
			break;
		from = id + 1;
	}
	assert_int_equal(s->count, s->st.used);
}

static void assert_same(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->count, b->count);
	assert_memory_equal(a->ids, b->ids, a->count * sizeof(a->ids[0]));
	assert_memory_equal(&a->st, &b->st, sizeof(a->st));
}

/* Run one failing call: check its code and that nothing changed. */
#define EXPECT_UNCHANGED(ids, call, code)                                                          \
	do {                                                                                       \
		static struct snap before_, after_;                                                \
		take(ids, &before_);                                                               \
		assert_int_equal((call), (code));                                                  \
		assert_int_equal(vmres_ids_validate(ids), 0);                                      \
		take(ids, &after_);                                                                \
		assert_same(&before_, &after_);                                                    \
	} while (0)

static struct vmres_ids *make(uint32_t lo, uint32_t hi)
{
	struct vmres_ids *ids = NULL;

	assert_int_equal(vmres_ids_new(lo, hi, &ids), 0);
	assert_non_null(ids);
	assert_int_equal(vmres_ids_validate(ids), 0);
	return ids;
}

static void test_new_rejects_bad_arguments(void **state)
{
	struct vmres_ids *ids = (struct vmres_ids *)&ids;

	(void)state;
	assert_int_equal(vmres_ids_new(0, 10, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_new(11, 10, &ids), VMRES_EINVAL);
	assert_ptr_equal(ids, (struct vmres_ids *)&ids);
	vmres_ids_free(NULL);
}

static void test_null_pointers_rejected(void **state)
{
	struct vmres_ids *ids = make(0, 100);
	struct vmres_ids_stats st;
	uint32_t out = 77;

	(void)state;
	assert_int_equal(vmres_ids_alloc(NULL, &out), VMRES_EINVAL);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc(ids, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_alloc_from(NULL, 0, &out), VMRES_EINVAL);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, 0, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_reserve(NULL, 1), VMRES_EINVAL);
	assert_int_equal(vmres_ids_alloc_block(NULL, 4, &out), VMRES_EINVAL);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 4, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_reserve_block(NULL, 0, 4), VMRES_EINVAL);
	assert_int_equal(vmres_ids_release(NULL, 1), VMRES_EINVAL);
	assert_int_equal(vmres_ids_release_block(NULL, 0, 4), VMRES_EINVAL);
	assert_int_equal(vmres_ids_test(NULL, 1), VMRES_EINVAL);
	assert_int_equal(vmres_ids_next(NULL, 0, &out), VMRES_EINVAL);
	assert_int_equal(vmres_ids_next(ids, 0, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_stats(NULL, &st), VMRES_EINVAL);
	assert_int_equal(vmres_ids_stats(ids, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_ids_validate(NULL), VMRES_EINVAL);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

static void test_alloc_returns_lowest_free_until_full(void **state)
{
	struct vmres_ids *ids = make(10, 20);
	struct vmres_ids_stats st;
	uint32_t id, out = 77;

	(void)state;
	for (uint32_t want = 10; want <= 20; want++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, want);
	}
	EXPECT_UNCHANGED(ids, vmres_ids_alloc(ids, &out), VMRES_ENOSPC);
	assert_int_equal(out, 77);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.lo, 10);
	assert_int_equal(st.hi, 20);
	assert_int_equal(st.used, 11);
	assert_int_equal(st.free, 0);
	assert_int_equal(vmres_ids_release(ids, 13), 0);
	assert_int_equal(vmres_ids_release(ids, 17), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 13);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 17);
	vmres_ids_free(ids);
}

static void test_alloc_from_respects_bounds(void **state)
{
	struct vmres_ids *ids = make(100, 300);
	uint32_t id, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_alloc_from(ids, 0, &id), 0);
	assert_int_equal(id, 100);
	assert_int_equal(vmres_ids_alloc_from(ids, 250, &id), 0);
	assert_int_equal(id, 250);
	assert_int_equal(vmres_ids_alloc_from(ids, 250, &id), 0);
	assert_int_equal(id, 251);
	assert_int_equal(vmres_ids_reserve_block(ids, 252, 49), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, 250, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, 301, &out), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, UINT32_MAX, &out), VMRES_ERANGE);
	assert_int_equal(out, 77);
	/* The lower part is still free. */
	assert_int_equal(vmres_ids_alloc_from(ids, 120, &id), 0);
	assert_int_equal(id, 120);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 101);
	vmres_ids_free(ids);
}

static void test_reserve_specific_number(void **state)
{
	struct vmres_ids *ids = make(5, 70);
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_ids_reserve(ids, 5), 0);
	assert_int_equal(vmres_ids_reserve(ids, 70), 0);
	assert_int_equal(vmres_ids_reserve(ids, 64), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, 64), VMRES_EOVERLAP);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, 4), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, 71), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, UINT32_MAX), VMRES_ERANGE);
	assert_int_equal(vmres_ids_test(ids, 64), 1);
	assert_int_equal(vmres_ids_test(ids, 63), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 6);
	vmres_ids_free(ids);
}

static void test_release_errors_leave_state(void **state)
{
	struct vmres_ids *ids = make(1000, 2000);

	(void)state;
	assert_int_equal(vmres_ids_reserve(ids, 1500), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_release(ids, 1501), VMRES_ENOENT);
	EXPECT_UNCHANGED(ids, vmres_ids_release(ids, 999), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_release(ids, 2001), VMRES_ERANGE);
	/* Free in a region that was never touched. */
	EXPECT_UNCHANGED(ids, vmres_ids_release(ids, 1001), VMRES_ENOENT);
	assert_int_equal(vmres_ids_release(ids, 1500), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_release(ids, 1500), VMRES_ENOENT);
	vmres_ids_free(ids);
}

static void test_alloc_block_is_lowest_aligned_free_block(void **state)
{
	struct vmres_ids *ids = make(0, 1023);
	uint32_t first, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_reserve(ids, 0), 0);
	assert_int_equal(vmres_ids_alloc_block(ids, 4, &first), 0);
	assert_int_equal(first, 4);
	assert_int_equal(vmres_ids_alloc_block(ids, 2, &first), 0);
	assert_int_equal(first, 2);
	assert_int_equal(vmres_ids_alloc_block(ids, 1, &first), 0);
	assert_int_equal(first, 1);
	assert_int_equal(vmres_ids_alloc_block(ids, 32, &first), 0);
	assert_int_equal(first, 32);
	assert_int_equal(vmres_ids_alloc_block(ids, 64, &first), 0);
	assert_int_equal(first, 64);
	assert_int_equal(vmres_ids_alloc_block(ids, 128, &first), 0);
	assert_int_equal(first, 128);
	assert_int_equal(vmres_ids_alloc_block(ids, 8, &first), 0);
	assert_int_equal(first, 8);
	assert_int_equal(vmres_ids_alloc_block(ids, 512, &first), 0);
	assert_int_equal(first, 512);
	for (uint32_t id = 0; id < 32; id++)
		assert_int_equal(vmres_ids_test(ids, id), id < 16);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 512, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 1024, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 2048, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 0, &out), VMRES_ESIZE);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 3, &out), VMRES_EALIGN);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 96, &out), VMRES_EALIGN);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, UINT32_MAX, &out), VMRES_EALIGN);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

static void test_alloc_block_stays_inside_unaligned_window(void **state)
{
	struct vmres_ids *ids = make(70, 200);
	uint32_t first, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_alloc_block(ids, 64, &first), 0);
	assert_int_equal(first, 128);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 64, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 128, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 4, &first), 0);
	assert_int_equal(first, 72);
	assert_int_equal(vmres_ids_alloc_block(ids, 8, &first), 0);
	assert_int_equal(first, 80);
	assert_int_equal(vmres_ids_alloc_block(ids, 8, &first), 0);
	assert_int_equal(first, 88);
	assert_int_equal(vmres_ids_alloc_block(ids, 16, &first), 0);
	assert_int_equal(first, 96);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 32, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 8, &first), 0);
	assert_int_equal(first, 112);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

static void test_reserve_block_any_alignment(void **state)
{
	struct vmres_ids *ids = make(10, 5000);
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_ids_reserve_block(ids, 10, 3), 0);
	assert_int_equal(vmres_ids_reserve_block(ids, 60, 4000), 0);
	assert_int_equal(vmres_ids_test(ids, 59), 0);
	assert_int_equal(vmres_ids_test(ids, 60), 1);
	assert_int_equal(vmres_ids_test(ids, 4059), 1);
	assert_int_equal(vmres_ids_test(ids, 4060), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 50, 11), VMRES_EOVERLAP);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 4059, 1), VMRES_EOVERLAP);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 20, 0), VMRES_ESIZE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 9, 1), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 4990, 12), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, UINT32_MAX, 2), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, 20, UINT32_MAX), VMRES_ERANGE);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 13);
	assert_int_equal(vmres_ids_alloc_from(ids, 60, &id), 0);
	assert_int_equal(id, 4060);
	vmres_ids_free(ids);
}

static void test_release_block_needs_all_allocated(void **state)
{
	struct vmres_ids *ids = make(0, 9999);
	struct vmres_ids_stats st0, st;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	assert_int_equal(vmres_ids_reserve_block(ids, 100, 5000), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, 99, 2), VMRES_ENOENT);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, 5099, 2), VMRES_ENOENT);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, 100, 0), VMRES_ESIZE);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, 9999, 2), VMRES_ERANGE);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, 10000, 1), VMRES_ERANGE);
	assert_int_equal(vmres_ids_release_block(ids, 200, 100), 0);
	assert_int_equal(vmres_ids_test(ids, 199), 1);
	assert_int_equal(vmres_ids_test(ids, 200), 0);
	assert_int_equal(vmres_ids_test(ids, 299), 0);
	assert_int_equal(vmres_ids_test(ids, 300), 1);
	assert_int_equal(vmres_ids_release_block(ids, 100, 100), 0);
	assert_int_equal(vmres_ids_release_block(ids, 300, 4800), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 0);
	/* Releasing everything gives the memory back. */
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	vmres_ids_free(ids);
}

static void test_test_and_next_iterate(void **state)
{
	struct vmres_ids *ids = make(7, 100000);
	uint32_t id = 77;

	(void)state;
	assert_int_equal(vmres_ids_next(ids, 0, &id), VMRES_ENOENT);
	assert_int_equal(id, 77);
	assert_int_equal(vmres_ids_reserve(ids, 7), 0);
	assert_int_equal(vmres_ids_reserve(ids, 99999), 0);
	assert_int_equal(vmres_ids_next(ids, 0, &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(vmres_ids_next(ids, 8, &id), 0);
	assert_int_equal(id, 99999);
	id = 77;
	assert_int_equal(vmres_ids_next(ids, 100000, &id), VMRES_ENOENT);
	assert_int_equal(vmres_ids_next(ids, UINT32_MAX, &id), VMRES_ENOENT);
	assert_int_equal(id, 77);
	assert_int_equal(vmres_ids_test(ids, 6), VMRES_ERANGE);
	assert_int_equal(vmres_ids_test(ids, 100001), VMRES_ERANGE);
	assert_int_equal(vmres_ids_test(ids, 7), 1);
	assert_int_equal(vmres_ids_test(ids, 8), 0);
	vmres_ids_free(ids);
}

static void test_single_number_ranges(void **state)
{
	uint32_t edges[] = {0, 63, 64, 4095, 4096, UINT32_MAX - 64, UINT32_MAX};

	(void)state;
	for (size_t k = 0; k < sizeof(edges) / sizeof(edges[0]); k++) {
		uint32_t n = edges[k], id, out = 77;
		struct vmres_ids *ids = make(n, n);

		assert_int_equal(vmres_ids_alloc_block(ids, 1, &id), 0);
		assert_int_equal(id, n);
		EXPECT_UNCHANGED(ids, vmres_ids_alloc(ids, &out), VMRES_ENOSPC);
		EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, n, &out), VMRES_ENOSPC);
		assert_int_equal(vmres_ids_release(ids, n), 0);
		EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 2, &out), VMRES_ENOSPC);
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, n);
		assert_int_equal(vmres_ids_next(ids, 0, &id), 0);
		assert_int_equal(id, n);
		assert_int_equal(out, 77);
		vmres_ids_free(ids);
	}
}

static void test_full_u32_range_top_edges(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st, st2;
	uint32_t id, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.free, (uint64_t)1 << 32);
	assert_int_equal(vmres_ids_alloc_from(ids, UINT32_MAX, &id), 0);
	assert_int_equal(id, UINT32_MAX);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_from(ids, UINT32_MAX, &out), VMRES_ENOSPC);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, UINT32_MAX), VMRES_EOVERLAP);
	assert_int_equal(vmres_ids_next(ids, UINT32_MAX, &id), 0);
	assert_int_equal(id, UINT32_MAX);
	assert_int_equal(vmres_ids_reserve_block(ids, UINT32_MAX - 63, 63), 0);
	assert_int_equal(vmres_ids_alloc_from(ids, UINT32_MAX - 100, &id), 0);
	assert_int_equal(id, UINT32_MAX - 100);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, UINT32_MAX - 64, 65), VMRES_ENOENT);
	assert_int_equal(vmres_ids_release_block(ids, UINT32_MAX - 63, 64), 0);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);

	/* The topmost aligned blocks, in the top 2^28 numbers. */
	ids = make(0xF0000000u, UINT32_MAX);
	assert_int_equal(vmres_ids_reserve(ids, 0xF0000000u), 0);
	assert_int_equal(vmres_ids_reserve(ids, 0xF7FFFFFFu), 0);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 26, &id), 0);
	assert_int_equal(id, 0xF8000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 64, &id), 0);
	assert_int_equal(id, 0xF0000040u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 25, &id), 0);
	assert_int_equal(id, 0xF2000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 25, &id), 0);
	assert_int_equal(id, 0xF4000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 25, &id), 0);
	assert_int_equal(id, 0xFC000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 25, &id), 0);
	assert_int_equal(id, 0xFE000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 25, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 24, &id), 0);
	assert_int_equal(id, 0xF1000000u);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 24, &id), 0);
	assert_int_equal(id, 0xF6000000u);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 24, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 1u << 28, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_stats(ids, &st2), 0);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(vmres_ids_test(ids, UINT32_MAX), 1);
	assert_int_equal(vmres_ids_test(ids, 0xF7FFFFFEu), 0);
	assert_int_equal(vmres_ids_next(ids, 0xF7000000u, &id), 0);
	assert_int_equal(id, 0xF7FFFFFFu);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(st.used, 2 + 64 + (1ull << 26) + 4 * (1ull << 25) + 2 * (1ull << 24));
	assert_int_equal(st.used + st.free, 1ull << 28);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

static void test_block_of_2_pow_31(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st, st1;
	uint32_t id, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	assert_int_equal(vmres_ids_reserve(ids, 5), 0);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x80000000u, &id), 0);
	assert_int_equal(id, 0x80000000u);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 0x80000001ull);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x80000000u, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_from(ids, 0x80000000u, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_stats(ids, &st1), 0);
	assert_memory_equal(&st, &st1, sizeof(st));
	assert_int_equal(vmres_ids_release_block(ids, 0x80000000u, 0x80000000u), 0);
	assert_int_equal(vmres_ids_release(ids, 5), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x80000000u, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(vmres_ids_test(ids, 0x7FFFFFFFu), 1);
	assert_int_equal(vmres_ids_test(ids, 0x80000000u), 0);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);

	/* Not at 0 when the window starts above it; not above a used number. */
	ids = make(1, UINT32_MAX);
	assert_int_equal(vmres_ids_reserve(ids, 0x80000005u), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 0x80000000u, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x40000000u, &id), 0);
	assert_int_equal(id, 0x40000000u);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
	ids = make(0, 4095);
	assert_int_equal(vmres_ids_alloc_block(ids, 4096, &id), 0);
	assert_int_equal(id, 0);
	EXPECT_UNCHANGED(ids, vmres_ids_alloc_block(ids, 8192, &out), VMRES_ENOSPC);
	vmres_ids_free(ids);
}

static void test_memory_is_lazy_over_full_range(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st;
	uint32_t spread[10];

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	assert_true(st0.mem_bytes < 4096);
	for (uint32_t k = 0; k < 10; k++) {
		spread[k] = k == 9 ? UINT32_MAX : k * 477218588u + 12345u;
		assert_int_equal(vmres_ids_reserve(ids, spread[k]), 0);
	}
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	printf("ids: full u32 range with 10 spread numbers: %llu bytes\n",
	       (unsigned long long)st.mem_bytes);
	assert_true(st.mem_bytes < 64 * 1024);
	assert_int_equal(st.used, 10);
	for (uint32_t k = 0; k < 10; k++)
		assert_int_equal(vmres_ids_release(ids, spread[k]), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	vmres_ids_free(ids);

	/* A small window high up costs memory for its own size only. */
	ids = make(0xFFFFFF00u, UINT32_MAX);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_true(st.mem_bytes < 4096);
	vmres_ids_free(ids);
	ids = make(0x7FFFF00Fu, 0x7FFFF00Fu + 8999);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_true(st.mem_bytes < 3 * 4096);
	vmres_ids_free(ids);
}

static void test_full_leaves_update_summaries(void **state)
{
	/* Leaves in one array (small range) and leaves made on demand (large). */
	const uint32_t his[] = {3 * 4096 - 1, (1u << 21) + 4095};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct vmres_ids *ids = make(0, his[k]);
		struct vmres_ids_stats st, st_full;
		uint32_t id, out = 77;

		for (uint32_t want = 0; want < 3 * 4096; want++) {
			assert_int_equal(vmres_ids_alloc(ids, &id), 0);
			assert_int_equal(id, want);
			if (want % 1000 == 0 || want % 4096 == 4095)
				assert_int_equal(vmres_ids_validate(ids), 0);
		}
		if (k == 0)
			EXPECT_UNCHANGED(ids, vmres_ids_alloc(ids, &out), VMRES_ENOSPC);
		assert_int_equal(vmres_ids_stats(ids, &st_full), 0);
		/* A full leaf becomes not full, and full again. */
		assert_int_equal(vmres_ids_release(ids, 5000), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, 5000);
		assert_int_equal(vmres_ids_validate(ids), 0);
		/* Empty a whole leaf, then take it back as one aligned block. */
		assert_int_equal(vmres_ids_release_block(ids, 4096, 4096), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
		assert_int_equal(vmres_ids_stats(ids, &st), 0);
		assert_int_equal(st.used, 2 * 4096);
		if (k == 1)
			assert_true(st.mem_bytes < st_full.mem_bytes);
		assert_int_equal(vmres_ids_alloc_block(ids, 4096, &id), 0);
		assert_int_equal(id, 4096);
		assert_int_equal(vmres_ids_validate(ids), 0);
		/* Empty a leaf one number at a time, then refill it the same way. */
		for (uint32_t n = 8192; n < 3 * 4096; n++)
			assert_int_equal(vmres_ids_release(ids, n), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
		for (uint32_t want = 8192; want < 3 * 4096; want++) {
			assert_int_equal(vmres_ids_alloc(ids, &id), 0);
			assert_int_equal(id, want);
		}
		assert_int_equal(vmres_ids_validate(ids), 0);
		assert_int_equal(vmres_ids_stats(ids, &st), 0);
		assert_int_equal(st.used, st_full.used);
		assert_int_equal(st.free, st_full.free);
		/* On demand, the block's leaf is a full marker, not a bitmap leaf. */
		if (k == 0)
			assert_int_equal(st.mem_bytes, st_full.mem_bytes);
		else
			assert_true(st.mem_bytes < st_full.mem_bytes);
		assert_int_equal(out, 77);
		vmres_ids_free(ids);
	}
}

static void test_alloc_after_leaf_emptied(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st;
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, 0);
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, 1);
		assert_int_equal(vmres_ids_release(ids, 0), 0);
		assert_int_equal(vmres_ids_release(ids, 1), 0);
		/* The leaf is gone; the next allocation must build it again. */
		assert_int_equal(vmres_ids_stats(ids, &st), 0);
		assert_int_equal(st.mem_bytes, st0.mem_bytes);
		assert_int_equal(vmres_ids_reserve(ids, 7), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
		assert_int_equal(vmres_ids_release_block(ids, 7, 1), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
	}
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(vmres_ids_test(ids, 0), 1);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 1);
	vmres_ids_free(ids);
}

/*
 * The in-order fast path (a cursor on the word that holds the lowest free
 * number) at its edges, in a small range (leaf array) and a large one (leaves
 * on demand): a release below the cursor, a release in its word, a specific
 * reservation just ahead, blocks across it, a word emptied under it, the word
 * that fills, and the end of the range inside a word.
 */
static void check_cursor_edges(uint32_t lo, uint32_t hi)
{
	struct vmres_ids *ids = make(lo, hi);
	uint32_t id, first;

	for (uint32_t k = 0; k < 10; k++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, lo + k);
	}
	/* Release below the cursor, in its word: that number comes back first. */
	assert_int_equal(vmres_ids_release(ids, lo + 3), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 3);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 10);
	/* Specific numbers just ahead: allocation skips them. */
	assert_int_equal(vmres_ids_reserve(ids, lo + 11), 0);
	assert_int_equal(vmres_ids_reserve(ids, lo + 13), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 12);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 14);
	/* A block reserved over the rest of the word and beyond. */
	assert_int_equal(vmres_ids_reserve_block(ids, lo + 15, 100), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 115);
	assert_int_equal(vmres_ids_validate(ids), 0);
	/* Release a block below the cursor, in an earlier word. */
	assert_int_equal(vmres_ids_release_block(ids, lo + 20, 50), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo + 20);
	/* An aligned block ahead of the cursor: later fills go around it. */
	assert_int_equal(vmres_ids_alloc_block(ids, 64, &first), 0);
	assert_true(first >= lo + 116 && first % 64 == 0);
	for (uint32_t k = 21; k < 70; k++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, lo + k);
	}
	assert_int_equal(vmres_ids_validate(ids), 0);
	/* Empty the word under the cursor and the whole range: nothing stale. */
	while (vmres_ids_next(ids, lo, &id) == 0)
		assert_int_equal(vmres_ids_release(ids, id), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo);
	assert_int_equal(vmres_ids_release(ids, lo), 0);
	assert_int_equal(vmres_ids_alloc_from(ids, lo + 1, &id), 0);
	assert_int_equal(id, lo + 1);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo);
	assert_int_equal(vmres_ids_validate(ids), 0);
	vmres_ids_free(ids);
}

static void test_cursor_edges(void **state)
{
	(void)state;
	check_cursor_edges(0, (1u << 20) - 1);
	check_cursor_edges(5, 100000);
	check_cursor_edges(0, UINT32_MAX);
	check_cursor_edges(4095 - 70, UINT32_MAX - 7);
}

/* Filling in order up to hi, where hi ends inside a word: exactly hi - lo + 1
 * numbers, then ENOSPC, and a release at the top is handed out again. */
static void check_fill_to_end(uint32_t lo, uint32_t hi)
{
	struct vmres_ids *ids = make(lo, hi);
	uint32_t id;

	for (uint64_t k = lo; k <= hi; k++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, (uint32_t)k);
	}
	assert_int_equal(vmres_ids_alloc(ids, &id), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_release(ids, hi), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, hi);
	assert_int_equal(vmres_ids_alloc(ids, &id), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_release(ids, lo), 0);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, lo);
	assert_int_equal(vmres_ids_validate(ids), 0);
	vmres_ids_free(ids);
}

static void test_fill_to_end_of_range(void **state)
{
	(void)state;
	check_fill_to_end(0, 99);
	check_fill_to_end(3, 127);
	check_fill_to_end(60, 64);
	check_fill_to_end(7, 7);
	check_fill_to_end(0, 8191 + 30);
	check_fill_to_end(UINT32_MAX - 200, UINT32_MAX);
	check_fill_to_end(UINT32_MAX - 5000, UINT32_MAX - 1);
}

/* ---- differential test against simple models ---- */

/* The model (tests/model/ids_model.h): a byte per number for a small range, or
 * sorted disjoint intervals. */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return test_splitmix64(&rng_state);
}

/* A number near the interesting places: the window's edges and a few centres. */
static uint64_t pick(const struct ids_model *m, const uint64_t *centres, int ncentres)
{
	uint64_t c, span = m->hi - m->lo + 1;
	int64_t off;

	switch (rnd() % 4) {
	case 0:
		c = m->lo;
		break;
	case 1:
		c = m->hi;
		break;
	default:
		c = centres[rnd() % (uint64_t)ncentres];
		break;
	}
	off = (int64_t)(rnd() % 600) - 300;
	if (span < 600)
		off = (int64_t)(rnd() % span) - (int64_t)(span / 2);
	if (off < 0 && (uint64_t)-off > c)
		return 0;
	if (off > 0 && c + (uint64_t)off > UINT32_MAX)
		return UINT32_MAX;
	return c + (uint64_t)off;
}

static uint32_t pick_count(bool small_range)
{
	switch (rnd() % 8) {
	case 0:
		return (uint32_t)(rnd() % 3); /* 0, 1, 2 */
	case 1:
		return (uint32_t)(rnd() % 200) + 1;
	case 2:
		return (uint32_t)(rnd() % 5000) + 1;
	default:
		return (uint32_t)1 << (rnd() % (small_range ? 14 : 19));
	}
}

/* True when every number of [a, b] is allocated (checked by releasing and
 * re-reserving the run, which must both succeed exactly then). */
static bool all_allocated(struct vmres_ids *ids, uint64_t a, uint64_t b)
{
	uint32_t n = (uint32_t)(b - a + 1);

	if (vmres_ids_release_block(ids, (uint32_t)a, n))
		return false;
	assert_int_equal(vmres_ids_reserve_block(ids, (uint32_t)a, n), 0);
	return true;
}

/* The allocator holds exactly what the model holds. */
static void compare_all(struct vmres_ids *ids, const struct ids_model *m)
{
	struct vmres_ids_stats st;
	uint32_t id;
	uint64_t from = m->lo, a, b;

	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, ids_model_used(m));
	assert_int_equal(st.used + st.free, m->hi - m->lo + 1);
	while (from <= m->hi) {
		a = ids_model_first_alloc(m, from, m->hi);
		if (a == UINT64_MAX) {
			assert_int_equal(vmres_ids_next(ids, (uint32_t)from, &id), VMRES_ENOENT);
			break;
		}
		b = ids_model_first_free(m, a, m->hi);
		b = b == UINT64_MAX ? m->hi : b - 1;
		/* [from, a) is free, [a, b] allocated, b + 1 free (or past hi). */
		assert_int_equal(vmres_ids_next(ids, (uint32_t)from, &id), 0);
		assert_int_equal(id, a);
		if (b - a < 64) {
			for (uint64_t x = a; x <= b; x++) {
				assert_int_equal(vmres_ids_next(ids, (uint32_t)x, &id), 0);
				assert_int_equal(id, x);
			}
		} else {
			assert_true(all_allocated(ids, a, b));
		}
		if (b < m->hi)
			assert_int_equal(vmres_ids_test(ids, (uint32_t)b + 1), 0);
		from = b + 1;
	}
	assert_int_equal(vmres_ids_validate(ids), 0);
}

static void run_differential(uint32_t lo, uint32_t hi, bool bytes, int ops, uint64_t seed)
{
	struct vmres_ids *ids = make(lo, hi);
	struct ids_model m = {.lo = lo, .hi = hi};
	uint64_t centres[6];
	bool small = bytes;

	printf("ids: differential [%#x, %#x] %s model, %d ops, seed %#llx\n", lo, hi,
	       bytes ? "byte" : "interval", ops, (unsigned long long)seed);
	rng_state = seed;
	if (bytes) {
		m.bytes = calloc(hi - lo + 1, 1);
		assert_non_null(m.bytes);
	}
	for (int k = 0; k < 6; k++)
		centres[k] = lo + rnd() % ((uint64_t)hi - lo + 1);
	for (int op = 0; op < ops; op++) {
		uint64_t x = pick(&m, centres, 6), want;
		uint32_t out = 77, count;
		int rc, kind = (int)(rnd() % 10);

		switch (kind) {
		case 0: /* alloc */
			rc = vmres_ids_alloc(ids, &out);
			want = ids_model_first_free(&m, m.lo, m.hi);
			if (want == UINT64_MAX) {
				assert_int_equal(rc, VMRES_ENOSPC);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(out, want);
				ids_model_set(&m, want, want, true);
			}
			break;
		case 1: /* alloc_from */
			rc = vmres_ids_alloc_from(ids, (uint32_t)x, &out);
			if (x > m.hi) {
				assert_int_equal(rc, VMRES_ERANGE);
				break;
			}
			want = ids_model_first_free(&m, x > m.lo ? x : m.lo, m.hi);
			if (want == UINT64_MAX) {
				assert_int_equal(rc, VMRES_ENOSPC);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(out, want);
				ids_model_set(&m, want, want, true);
			}
			break;
		case 2: /* reserve */
			rc = vmres_ids_reserve(ids, (uint32_t)x);
			if (x < m.lo || x > m.hi) {
				assert_int_equal(rc, VMRES_ERANGE);
			} else if (ids_model_is(&m, x)) {
				assert_int_equal(rc, VMRES_EOVERLAP);
			} else {
				assert_int_equal(rc, 0);
				ids_model_set(&m, x, x, true);
			}
			break;
		case 3: /* alloc_block */
			count = pick_count(small);
			if (count > 2 && rnd() % 2)
				count |= 1; /* sometimes not a power of two */
			rc = vmres_ids_alloc_block(ids, count, &out);
			if (count == 0) {
				assert_int_equal(rc, VMRES_ESIZE);
			} else if (count & (count - 1)) {
				assert_int_equal(rc, VMRES_EALIGN);
			} else if ((want = ids_model_block(&m, count)) == UINT64_MAX) {
				assert_int_equal(rc, VMRES_ENOSPC);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(out, want);
				ids_model_set(&m, want, want + count - 1, true);
			}
			break;
		case 4: /* reserve_block */
			count = pick_count(small) % 700;
			rc = vmres_ids_reserve_block(ids, (uint32_t)x, count);
			if (count == 0)
				assert_int_equal(rc, VMRES_ESIZE);
			else if (x < m.lo || x + count - 1 > m.hi)
				assert_int_equal(rc, VMRES_ERANGE);
			else if (ids_model_first_alloc(&m, x, x + count - 1) != UINT64_MAX)
				assert_int_equal(rc, VMRES_EOVERLAP);
			else {
				assert_int_equal(rc, 0);
				ids_model_set(&m, x, x + count - 1, true);
			}
			break;
		case 5:
		case 6: /* release */
			rc = vmres_ids_release(ids, (uint32_t)x);
			if (x < m.lo || x > m.hi) {
				assert_int_equal(rc, VMRES_ERANGE);
			} else if (!ids_model_is(&m, x)) {
				assert_int_equal(rc, VMRES_ENOENT);
			} else {
				assert_int_equal(rc, 0);
				ids_model_set(&m, x, x, false);
			}
			break;
		case 7: /* release_block: often exactly an allocated run's prefix */
			count = rnd() % 3 ? (uint32_t)(rnd() % 64) + 1 : pick_count(small);
			if (x >= m.lo && x <= m.hi && rnd() % 2 &&
			    ids_model_first_alloc(&m, x, m.hi) != UINT64_MAX) {
				x = ids_model_first_alloc(&m, x, m.hi);
				if (rnd() % 2) { /* the whole allocated run */
					want = ids_model_first_free(&m, x, m.hi);
					count = (uint32_t)((want == UINT64_MAX ? m.hi + 1 : want) -
							   x);
				}
			}
			rc = vmres_ids_release_block(ids, (uint32_t)x, count);
			if (count == 0)
				assert_int_equal(rc, VMRES_ESIZE);
			else if (x < m.lo || x + count - 1 > m.hi)
				assert_int_equal(rc, VMRES_ERANGE);
			else if (ids_model_first_free(&m, x, x + count - 1) != UINT64_MAX)
				assert_int_equal(rc, VMRES_ENOENT);
			else {
				assert_int_equal(rc, 0);
				ids_model_set(&m, x, x + count - 1, false);
			}
			break;
		case 8: /* test */
			rc = vmres_ids_test(ids, (uint32_t)x);
			if (x < m.lo || x > m.hi)
				assert_int_equal(rc, VMRES_ERANGE);
			else
				assert_int_equal(rc, ids_model_is(&m, x) ? 1 : 0);
			break;
		default: /* next */
			rc = vmres_ids_next(ids, (uint32_t)x, &out);
			want = x > m.hi ? UINT64_MAX
					: ids_model_first_alloc(&m, x > m.lo ? x : m.lo, m.hi);
			if (want == UINT64_MAX) {
				assert_int_equal(rc, VMRES_ENOENT);
				assert_int_equal(out, 77);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(out, want);
			}
			break;
		}
		if (rc < 0)
			assert_int_equal(out, 77);
		assert_int_equal(vmres_ids_validate(ids), 0);
		if (op % 16 == 0 || rc < 0)
			compare_all(ids, &m);
	}
	compare_all(ids, &m);
	free(m.bytes);
	free(m.iv);
	vmres_ids_free(ids);
}

static void test_differential_small_range_byte_model(void **state)
{
	(void)state;
	run_differential(1001, 1001 + 4999, true, 6000, 0x1d5c0ffee);
	run_differential(0, 130, true, 3000, 0x5eed);
	run_differential(0x7FFFF00Fu, 0x7FFFF00Fu + 8999u, true, 4000, 0x7777);
}

/* 1M random numbers over the whole u32 range: memory in proportion to use
 * (sparse leaves), at most 64 bytes per number; releasing all gives it back. */
static void test_sparse_random_ids_memory_bound(void **state)
{
	const uint64_t seed = 0x5a4e5e;
	const uint32_t n = 1u << 20;
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st;
	uint32_t *drawn = malloc(n * sizeof(*drawn)), got = 0, id;

	(void)state;
	assert_non_null(drawn);
	printf("ids: sparse random %u numbers, seed %#llx\n", n, (unsigned long long)seed);
	rng_state = seed;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t x = (uint32_t)rnd();
		int rc = vmres_ids_reserve(ids, x);

		assert_true(rc == 0 || rc == VMRES_EOVERLAP);
		if (rc == 0)
			drawn[got++] = x;
	}
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, got);
	printf("ids: %u numbers held in %llu bytes (%.1f per number)\n", got,
	       (unsigned long long)st.mem_bytes, (double)st.mem_bytes / got);
	assert_true(st.mem_bytes <= 64ull << 20);
	for (uint32_t k = 0; k < got; k += 97) {
		assert_int_equal(vmres_ids_test(ids, drawn[k]), 1);
		if (drawn[k] < UINT32_MAX && vmres_ids_test(ids, drawn[k] + 1) == 0)
			assert_int_equal(vmres_ids_next(ids, drawn[k] + 1, &id) == 0 && id <= drawn[k], 0);
	}
	/* The lowest free is still found among sparse leaves. */
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(vmres_ids_test(ids, id), 1);
	for (uint32_t x = 0; x < id; x++)
		assert_int_equal(vmres_ids_test(ids, x), 1);
	assert_int_equal(vmres_ids_release(ids, id), 0);
	for (uint32_t k = 0; k < got; k++)
		assert_int_equal(vmres_ids_release(ids, drawn[k]), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	free(drawn);
	vmres_ids_free(ids);
}

/* One leaf's numbers at the range's edges, 0 and 2^32 - 1, from sparse to
 * bitmap and back to nothing, in an order that mixes the two ends. */
static void test_sparse_leaf_edges(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st;
	uint32_t id, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	for (uint32_t k = 0; k < 40; k++) {
		assert_int_equal(vmres_ids_reserve(ids, UINT32_MAX - 3 * k), 0);
		assert_int_equal(vmres_ids_reserve(ids, 3 * k), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
	}
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, UINT32_MAX), VMRES_EOVERLAP);
	EXPECT_UNCHANGED(ids, vmres_ids_reserve(ids, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_ids_test(ids, UINT32_MAX), 1);
	assert_int_equal(vmres_ids_test(ids, UINT32_MAX - 1), 0);
	assert_int_equal(vmres_ids_next(ids, UINT32_MAX - 2, &id), 0);
	assert_int_equal(id, UINT32_MAX);
	assert_int_equal(vmres_ids_next(ids, 1, &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(vmres_ids_alloc_from(ids, UINT32_MAX - 3, &id), 0);
	assert_int_equal(id, UINT32_MAX - 2);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 1);
	/* A 4-block at the top: UINT32_MAX - 3 is taken by k = 1. */
	EXPECT_UNCHANGED(ids, vmres_ids_reserve_block(ids, UINT32_MAX - 3, 4), VMRES_EOVERLAP);
	assert_int_equal(vmres_ids_release_block(ids, UINT32_MAX - 3, 1), 0);
	assert_int_equal(vmres_ids_release_block(ids, UINT32_MAX - 2, 1), 0);
	assert_int_equal(vmres_ids_reserve_block(ids, UINT32_MAX - 3, 3), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_release_block(ids, UINT32_MAX - 3, 4), 0);
	EXPECT_UNCHANGED(ids, vmres_ids_release_block(ids, UINT32_MAX - 3, 4), VMRES_ENOENT);
	assert_int_equal(vmres_ids_release(ids, 1), 0);
	for (uint32_t k = 0; k < 40; k++) {
		if (k > 1)
			assert_int_equal(vmres_ids_release(ids, UINT32_MAX - 3 * k), 0);
		assert_int_equal(vmres_ids_release(ids, 3 * k), 0);
		assert_int_equal(vmres_ids_validate(ids), 0);
	}
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

/* An aligned 2^31 block costs O(1) memory; releasing one number inside it
 * makes only the path to that number; the rest stays allocated. */
static void test_block_of_2_pow_31_memory(void **state)
{
	struct vmres_ids *ids = make(0, UINT32_MAX);
	struct vmres_ids_stats st0, st;
	uint32_t id, out = 77;

	(void)state;
	assert_int_equal(vmres_ids_stats(ids, &st0), 0);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x80000000u, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	printf("ids: 2^31 block: %llu bytes, %llu empty\n", (unsigned long long)st.mem_bytes,
	       (unsigned long long)st0.mem_bytes);
	assert_true(st.mem_bytes - st0.mem_bytes <= 4096);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x40000000u, &id), 0);
	assert_int_equal(id, 0x80000000u);
	assert_int_equal(vmres_ids_reserve_block(ids, 0xC0000000u, 0x40000000u), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_true(st.mem_bytes - st0.mem_bytes <= 4096);
	assert_int_equal(st.free, 0);
	/* (Everything is allocated: too many numbers for EXPECT_UNCHANGED.) */
	assert_int_equal(vmres_ids_alloc(ids, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_alloc_block(ids, 2, &out), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_validate(ids), 0);
	/* Release inside: 0x12345678, then the top number. */
	assert_int_equal(vmres_ids_release(ids, 0x12345678u), 0);
	assert_int_equal(vmres_ids_release(ids, UINT32_MAX), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_true(st.mem_bytes - st0.mem_bytes <= 16 * 4096);
	assert_int_equal(vmres_ids_test(ids, 0x12345677u), 1);
	assert_int_equal(vmres_ids_test(ids, 0x12345678u), 0);
	assert_int_equal(vmres_ids_test(ids, 0x12345679u), 1);
	assert_int_equal(vmres_ids_test(ids, UINT32_MAX - 1), 1);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, 0x12345678u);
	assert_int_equal(vmres_ids_alloc(ids, &id), 0);
	assert_int_equal(id, UINT32_MAX);
	/* Release a middle part that cuts markers at every level. */
	assert_int_equal(vmres_ids_release_block(ids, 0x01234567u, 0x10000001u), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_test(ids, 0x01234566u), 1);
	assert_int_equal(vmres_ids_test(ids, 0x01234567u), 0);
	assert_int_equal(vmres_ids_test(ids, 0x11234567u), 0);
	assert_int_equal(vmres_ids_test(ids, 0x11234568u), 1);
	assert_int_equal(vmres_ids_alloc_block(ids, 0x08000000u, &id), 0);
	assert_int_equal(id, 0x08000000u);
	assert_int_equal(vmres_ids_release_block(ids, 0, 0x80000000u), VMRES_ENOENT);
	assert_int_equal(vmres_ids_reserve_block(ids, 0x01234567u, 0x08000000u - 0x01234567u), 0);
	assert_int_equal(vmres_ids_reserve_block(ids, 0x10000000u, 0x01234568u), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.free, 0);
	assert_int_equal(vmres_ids_release_block(ids, 0, 0x80000000u), 0);
	assert_int_equal(vmres_ids_release_block(ids, 0x80000000u, 0x80000000u), 0);
	assert_int_equal(vmres_ids_validate(ids), 0);
	assert_int_equal(vmres_ids_stats(ids, &st), 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.mem_bytes, st0.mem_bytes);
	assert_int_equal(out, 77);
	vmres_ids_free(ids);
}

static void test_differential_full_u32_interval_model(void **state)
{
	(void)state;
	run_differential(0, UINT32_MAX, false, 4000, 0xfeedbeef);
	run_differential(77, UINT32_MAX - 5, false, 2000, 0xabcdef);
	run_differential(0, UINT32_MAX, false, 8000, 0x5ba25e);
}

/* The id-churn pattern on leaf-array ranges that span several 64-leaf groups
 * (leaf_full[] words, up to all 9), whole groups full after the fill: release
 * at random, then test-then-toggle steps; every allocation is the lowest free
 * number of a bitmap model. */
static void check_small_churn(uint32_t lo, uint32_t hi, int steps, uint64_t seed)
{
	struct vmres_ids *ids = make(lo, hi);
	uint64_t span = (uint64_t)hi - lo + 1, lowest = 0;
	uint8_t *m = calloc(span, 1);
	uint32_t id;

	assert_non_null(m);
	rng_state = seed;
	for (uint64_t k = 0; k < span; k++) {
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, lo + k);
		m[k] = 1;
	}
	assert_int_equal(vmres_ids_alloc(ids, &id), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_validate(ids), 0);
	lowest = span;
	for (int s = 0; s < steps; s++) {
		uint64_t x = rnd() % span;
		int rc = vmres_ids_test(ids, (uint32_t)(lo + x));

		assert_int_equal(rc, m[x]);
		if (rc) {
			assert_int_equal(vmres_ids_release(ids, (uint32_t)(lo + x)), 0);
			m[x] = 0;
			if (x < lowest)
				lowest = x;
		} else if (s & 1) {
			while (lowest < span && m[lowest])
				lowest++;
			assert_int_equal(vmres_ids_alloc(ids, &id), 0);
			assert_int_equal(id, lo + lowest);
			m[lowest] = 1;
		}
		if (s % 4096 == 0)
			assert_int_equal(vmres_ids_validate(ids), 0);
	}
	assert_int_equal(vmres_ids_validate(ids), 0);
	/* Fill again: lowest first, then ENOSPC. */
	for (;;) {
		while (lowest < span && m[lowest])
			lowest++;
		if (lowest == span)
			break;
		assert_int_equal(vmres_ids_alloc(ids, &id), 0);
		assert_int_equal(id, lo + lowest);
		m[lowest] = 1;
	}
	assert_int_equal(vmres_ids_alloc(ids, &id), VMRES_ENOSPC);
	assert_int_equal(vmres_ids_validate(ids), 0);
	free(m);
	vmres_ids_free(ids);
}

static void test_small_range_churn(void **state)
{
	(void)state;
	check_small_churn(0, (1u << 20) - 1, 400000, 0xc4u);
	check_small_churn(61 * 4096 + 7, 61 * 4096 + 7 + 300000, 200000, 0x5151u);
	check_small_churn(UINT32_MAX - (1u << 21) + 1, UINT32_MAX, 200000, 0x77u);
	check_small_churn(63 * 4096 + 1, 575 * 4096 - 2, 100000, 0x99u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_arguments),
		cmocka_unit_test(test_null_pointers_rejected),
		cmocka_unit_test(test_alloc_returns_lowest_free_until_full),
		cmocka_unit_test(test_alloc_from_respects_bounds),
		cmocka_unit_test(test_reserve_specific_number),
		cmocka_unit_test(test_release_errors_leave_state),
		cmocka_unit_test(test_alloc_block_is_lowest_aligned_free_block),
		cmocka_unit_test(test_alloc_block_stays_inside_unaligned_window),
		cmocka_unit_test(test_reserve_block_any_alignment),
		cmocka_unit_test(test_release_block_needs_all_allocated),
		cmocka_unit_test(test_test_and_next_iterate),
		cmocka_unit_test(test_single_number_ranges),
		cmocka_unit_test(test_full_u32_range_top_edges),
		cmocka_unit_test(test_block_of_2_pow_31),
		cmocka_unit_test(test_memory_is_lazy_over_full_range),
		cmocka_unit_test(test_full_leaves_update_summaries),
		cmocka_unit_test(test_alloc_after_leaf_emptied),
		cmocka_unit_test(test_cursor_edges),
		cmocka_unit_test(test_fill_to_end_of_range),
		cmocka_unit_test(test_differential_small_range_byte_model),
		cmocka_unit_test(test_differential_full_u32_interval_model),
		cmocka_unit_test(test_sparse_random_ids_memory_bound),
		cmocka_unit_test(test_sparse_leaf_edges),
		cmocka_unit_test(test_block_of_2_pow_31_memory),
		cmocka_unit_test(test_small_range_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
