/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of the address-space allocator: every operation and error path, the edges
 * of the 64-bit space, and a randomized differential test against a simple model
 * (a sorted array scanned linearly, with 128-bit arithmetic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/addr.h>

#include "helpers.h"
#include "model/addr_model.h"

#define TOP   UINT64_MAX
#define BIT63 (1ULL << 63)

typedef unsigned __int128 u128;

/* ---- a snapshot of the complete observable state ------------------------- */

struct snap {
	struct vmres_addr_entry *allocs;
	size_t n_allocs;
	struct vmres_addr_entry *gaps;
	size_t n_gaps;
	size_t cap_allocs;
	size_t cap_gaps;
	struct vmres_addr_stats stats;
};

static int push(struct vmres_addr_entry **v, size_t *n, size_t *cap,
		const struct vmres_addr_entry *e)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = realloc(*v, *cap * sizeof(**v));
		assert_non_null(*v);
	}
	(*v)[(*n)++] = *e;
	return 0;
}

static int visit_alloc(void *ctx, const struct vmres_addr_entry *e)
{
	struct snap *s = ctx;

	return push(&s->allocs, &s->n_allocs, &s->cap_allocs, e);
}

static int visit_gap(void *ctx, const struct vmres_addr_entry *e)
{
	struct snap *s = ctx;

	return push(&s->gaps, &s->n_gaps, &s->cap_gaps, e);
}

static void snap_take(const struct vmres_addr *a, struct snap *s)
{
	s->n_allocs = 0;
	s->n_gaps = 0;
	assert_int_equal(vmres_addr_foreach(a, visit_alloc, s), 0);
	assert_int_equal(vmres_addr_foreach_gap(a, visit_gap, s), 0);
	assert_int_equal(vmres_addr_stats(a, &s->stats), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
}

static void snap_free(struct snap *s)
{
	free(s->allocs);
	free(s->gaps);
	memset(s, 0, sizeof(*s));
}

static void assert_snap_equal(const struct snap *x, const struct snap *y)
{
	assert_int_equal(x->n_allocs, y->n_allocs);
	assert_int_equal(x->n_gaps, y->n_gaps);
	if (x->n_allocs)
		assert_memory_equal(x->allocs, y->allocs, x->n_allocs * sizeof(*x->allocs));
	if (x->n_gaps)
		assert_memory_equal(x->gaps, y->gaps, x->n_gaps * sizeof(*x->gaps));
	assert_memory_equal(&x->stats, &y->stats, sizeof(x->stats));
}

/* The call must fail with @code and change nothing. */
#define EXPECT_UNCHANGED(a, code, call)                                                            \
	do {                                                                                       \
		struct snap before_ = {0}, after_ = {0};                                           \
		snap_take((a), &before_);                                                          \
		assert_int_equal((call), (code));                                                  \
		snap_take((a), &after_);                                                           \
		assert_snap_equal(&before_, &after_);                                              \
		snap_free(&before_);                                                               \
		snap_free(&after_);                                                                \
	} while (0)

static struct vmres_addr *new_addr(uint64_t base, uint64_t last)
{
	struct vmres_addr *a = NULL;

	assert_int_equal(vmres_addr_new(base, last, &a), 0);
	assert_non_null(a);
	return a;
}

static int alloc_with(struct vmres_addr *a, enum vmres_addr_policy policy, uint64_t size,
		      uint64_t align, uint64_t min, uint64_t max, uint64_t *out)
{
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;

	req.policy = policy;
	req.size = size;
	req.align = align;
	req.min = min;
	req.max = max;
	req.owner = size ^ 0x5a5a;
	return vmres_addr_alloc(a, &req, out);
}

static uint64_t first_fit(struct vmres_addr *a, uint64_t size, uint64_t align)
{
	uint64_t out = 0;

	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, size, align, 0, TOP, &out), 0);
	return out;
}

static uint64_t last_fit(struct vmres_addr *a, uint64_t size, uint64_t align)
{
	uint64_t out = 0;

	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, size, align, 0, TOP, &out), 0);
	return out;
}

/* ---- construction -------------------------------------------------------- */

static void test_new_rejects_bad_arguments(void **state)
{
	struct vmres_addr *a = (struct vmres_addr *)&state; /* must stay untouched */

	(void)state;
	assert_int_equal(vmres_addr_new(0, 10, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_addr_new(11, 10, &a), VMRES_EINVAL);
	assert_ptr_equal(a, (struct vmres_addr *)&state);
	vmres_addr_free(NULL);
}

static void test_new_window_is_one_free_gap(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0x1fff);
	struct snap s = {0};

	(void)state;
	snap_take(a, &s);
	assert_int_equal(s.n_allocs, 0);
	assert_int_equal(s.n_gaps, 1);
	assert_int_equal(s.gaps[0].base, 0x1000);
	assert_int_equal(s.gaps[0].last, 0x1fff);
	assert_int_equal(s.stats.base, 0x1000);
	assert_int_equal(s.stats.last, 0x1fff);
	assert_int_equal(s.stats.count, 0);
	assert_int_equal(s.stats.used, 0);
	assert_int_equal(s.stats.free, 0x1000);
	assert_int_equal(s.stats.gaps, 1);
	snap_free(&s);
	vmres_addr_free(a);
}

/* ---- placement ----------------------------------------------------------- */

static void test_first_fit_returns_lowest_aligned_address(void **state)
{
	struct vmres_addr *a = new_addr(0x1001, 0xffff);

	(void)state;
	assert_int_equal(first_fit(a, 0x10, 0), 0x1001);
	assert_int_equal(first_fit(a, 0x10, 1), 0x1011);
	assert_int_equal(first_fit(a, 0x100, 0x100), 0x1100);
	/* The padding left below 0x1100 still takes small requests, lowest first. */
	assert_int_equal(first_fit(a, 0x20, 0x20), 0x1040);
	assert_int_equal(first_fit(a, 0x8, 0), 0x1021);
	vmres_addr_free(a);
}

static void test_last_fit_returns_highest_aligned_address(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0xfffe);

	(void)state;
	assert_int_equal(last_fit(a, 0x10, 0), 0xffef);
	assert_int_equal(last_fit(a, 0x100, 0x100), 0xfe00);
	assert_int_equal(last_fit(a, 0x10, 0x10), 0xffd0);
	assert_int_equal(last_fit(a, 0x1000, 0x1000), 0xe000);
	vmres_addr_free(a);
}

static void test_exact_allocation_is_placed_at_its_address(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	struct vmres_addr_entry e;
	uint64_t out = 0;

	(void)state;
	req.policy = VMRES_ADDR_EXACT;
	req.addr = 0x4000;
	req.size = 0x800;
	req.align = 0x800;
	req.owner = 77;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), 0);
	assert_int_equal(out, 0x4000);
	assert_int_equal(vmres_addr_find(a, 0x47ff, &e), 0);
	assert_int_equal(e.base, 0x4000);
	assert_int_equal(e.last, 0x47ff);
	assert_int_equal(e.owner, 77);
	/* Touching neighbours on both sides are fine. */
	assert_int_equal(vmres_addr_reserve(a, 0x3800, 0x800, 1), 0);
	assert_int_equal(vmres_addr_reserve(a, 0x4800, 0x1, 2), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

static void test_first_fit_respects_subwindow(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	uint64_t out = 0;

	(void)state;
	/* A gap that straddles min: the range starts at min, aligned up. */
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x100, 0x100, 0x1234, TOP, &out), 0);
	assert_int_equal(out, 0x1300);
	/* A gap that straddles max: the range must end at or below max. */
	assert_int_equal(vmres_addr_reserve(a, 0x2000, 0x1000, 0), 0);
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x400, 0, 0x3000, 0x33ff, &out), 0);
	assert_int_equal(out, 0x3000);
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x400, 0, 0x3000, 0x37fe, &out),
			 VMRES_ENOSPC);
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x3ff, 0, 0x3000, 0x37fe, &out), 0);
	assert_int_equal(out, 0x3400);
	/* A sub-window far above every allocation. */
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x10, 0x10, 0xfff0, TOP, &out), 0);
	assert_int_equal(out, 0xfff0);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

static void test_last_fit_respects_subwindow(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	uint64_t out = 0;

	(void)state;
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x100, 0x100, 0, 0x8fff, &out), 0);
	assert_int_equal(out, 0x8f00);
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x100, 0x100, 0, 0x8ffe, &out), 0);
	assert_int_equal(out, 0x8e00);
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x10, 0, 0x10, 0x1f, &out), 0);
	assert_int_equal(out, 0x10);
	EXPECT_UNCHANGED(a, VMRES_ENOSPC,
			 alloc_with(a, VMRES_ADDR_LAST_FIT, 0x10, 0, 0x10, 0x2e, &out));
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x10, 0, 0x10, 0x3e, &out), 0);
	assert_int_equal(out, 0x2f);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

static void test_subwindow_larger_than_window_is_clipped(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0x1fff);
	uint64_t out = 0;

	(void)state;
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x10, 0, 0, TOP, &out), 0);
	assert_int_equal(out, 0x1ff0);
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x10, 0, 0x800, 0x100f, &out), 0);
	assert_int_equal(out, 0x1000);
	vmres_addr_free(a);
}

static void test_no_space_only_when_truly_none(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xff);
	uint64_t out = 0;

	(void)state;
	/* Leave free: [0x11, 0x1f] (one 8-aligned 8 at 0x18) and [0xf8, 0xff]. */
	assert_int_equal(vmres_addr_reserve(a, 0, 0x11, 0), 0);
	assert_int_equal(vmres_addr_reserve(a, 0x20, 0xd8, 0), 0);
	assert_int_equal(first_fit(a, 8, 8), 0x18);
	assert_int_equal(first_fit(a, 8, 8), 0xf8);
	EXPECT_UNCHANGED(a, VMRES_ENOSPC, alloc_with(a, VMRES_ADDR_FIRST_FIT, 8, 8, 0, TOP, &out));
	assert_int_equal(first_fit(a, 7, 0), 0x11);
	EXPECT_UNCHANGED(a, VMRES_ENOSPC, alloc_with(a, VMRES_ADDR_LAST_FIT, 1, 0, 0, TOP, &out));
	vmres_addr_free(a);
}

/* ---- error paths of alloc ------------------------------------------------ */

static void test_alloc_rejects_invalid_arguments(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0xffff);
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t out = 0xdead;

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, 0x2000, 0x100, 1), 0);
	req.size = 0x10;
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(NULL, &req, &out));
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(a, NULL, &out));
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(a, &req, NULL));
	req.version = 2;
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(a, &req, &out));
	req.version = VMRES_ADDR_REQ_VERSION;
	req.policy = (enum vmres_addr_policy)3;
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(a, &req, &out));
	req.policy = VMRES_ADDR_FIRST_FIT;
	req.min = 0x5000;
	req.max = 0x4fff;
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_alloc(a, &req, &out));
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_reserve(NULL, 0x3000, 1, 0));
	assert_int_equal(out, 0xdead);
	vmres_addr_free(a);
}

static void test_alloc_rejects_zero_size_and_bad_alignment(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0xffff);
	uint64_t out = 0xdead;

	(void)state;
	EXPECT_UNCHANGED(a, VMRES_ESIZE, alloc_with(a, VMRES_ADDR_FIRST_FIT, 0, 0, 0, TOP, &out));
	EXPECT_UNCHANGED(a, VMRES_ESIZE, vmres_addr_reserve(a, 0x2000, 0, 0));
	EXPECT_UNCHANGED(a, VMRES_EALIGN, alloc_with(a, VMRES_ADDR_FIRST_FIT, 1, 3, 0, TOP, &out));
	EXPECT_UNCHANGED(a, VMRES_EALIGN,
			 alloc_with(a, VMRES_ADDR_LAST_FIT, 1, BIT63 + 1, 0, TOP, &out));
	EXPECT_UNCHANGED(a, VMRES_EALIGN,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 1, TOP, 0, TOP, &out));
	assert_int_equal(out, 0xdead);
	vmres_addr_free(a);
}

/* min and max outside the window mean the window's own bounds: min 0 and min at
 * the window's base are the same request, with the same answer. */
static void test_alloc_clips_subwindow_to_window_before_checking(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, TOP);
	uint64_t out = 0xdead;

	(void)state;
	/* One byte more than the window: its lowest start, the window's base, ends
	 * past 2^64 - 1. */
	for (int p = VMRES_ADDR_FIRST_FIT; p <= VMRES_ADDR_LAST_FIT; p++) {
		EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
				 alloc_with(a, p, TOP - 0xffe, 0, 0, TOP, &out));
		EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
				 alloc_with(a, p, TOP - 0xffe, 0, 0x1000, TOP, &out));
		/* Aligned: the lowest aligned start in the window is 0x10000. */
		EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
				 alloc_with(a, p, TOP - 0xfffe, 0x10000, 0, TOP, &out));
		EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
				 alloc_with(a, p, TOP - 0xfffe, 0x10000, 0x1000, TOP, &out));
	}
	/* A sub-window that misses the window is ERANGE whatever the size. */
	EXPECT_UNCHANGED(a, VMRES_ERANGE,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, TOP, 0, 0, 0xfff, &out));
	assert_int_equal(out, 0xdead);
	/* The whole window still fits, from either bound. */
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, TOP - 0xfff, 0, 0, TOP, &out), 0);
	assert_int_equal(out, 0x1000);
	vmres_addr_free(a);
}

static void test_alloc_rejects_ranges_that_overflow(void **state)
{
	struct vmres_addr *a = new_addr(0, TOP);
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t out = 0xdead;

	(void)state;
	req.policy = VMRES_ADDR_EXACT;
	req.addr = TOP;
	req.size = 2;
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_alloc(a, &req, &out));
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_reserve(a, 2, TOP, 0));
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_reserve(a, BIT63, BIT63 + 1, 0));
	/* The lowest aligned start at or above min does not exist. */
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 1, BIT63, BIT63 + 1, TOP, &out));
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW,
			 alloc_with(a, VMRES_ADDR_LAST_FIT, 0x10, 0, TOP - 0xe, TOP, &out));
	/* ...but the largest size that exists does fit. */
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, TOP, 0, 0, TOP, &out), 0);
	assert_int_equal(out, 0);
	vmres_addr_free(a);
}

static void test_alloc_rejects_ranges_outside_the_window(void **state)
{
	struct vmres_addr *a = new_addr(0x1000, 0x1fff);
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t out = 0xdead;

	(void)state;
	/* Sub-window that does not meet the window. */
	EXPECT_UNCHANGED(a, VMRES_ERANGE,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 1, 0, 0x2000, 0x3000, &out));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, alloc_with(a, VMRES_ADDR_LAST_FIT, 1, 0, 0, 0xfff, &out));
	/* Exact ranges leaving the window or the sub-window. */
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_reserve(a, 0xfff, 2, 0));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_reserve(a, 0x1fff, 2, 0));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_reserve(a, 0x2000, 1, 0));
	req.policy = VMRES_ADDR_EXACT;
	req.addr = 0x1800;
	req.size = 0x100;
	req.min = 0x1801;
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_alloc(a, &req, &out));
	req.min = 0;
	req.max = 0x18fe;
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_alloc(a, &req, &out));
	/* A sub-window that meets the window but is too small: no space. */
	EXPECT_UNCHANGED(a, VMRES_ENOSPC,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x10, 0, 0x1ff8, TOP, &out));
	assert_int_equal(out, 0xdead);
	vmres_addr_free(a);
}

static void test_exact_misaligned_address_is_rejected(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t out = 0xdead;

	(void)state;
	req.policy = VMRES_ADDR_EXACT;
	req.addr = 0x1080;
	req.size = 0x100;
	req.align = 0x100;
	EXPECT_UNCHANGED(a, VMRES_EMISALIGNED, vmres_addr_alloc(a, &req, &out));
	req.align = 0x80;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), 0);
	assert_int_equal(out, 0x1080);
	vmres_addr_free(a);
}

static void test_exact_inside_an_allocation_fails(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, 0x1000, 0x1000, 1), 0);
	/* Wholly inside, same start, same end, straddling either edge, covering it. */
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x1400, 0x100, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x1000, 0x10, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x1ff0, 0x10, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0xff0, 0x20, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x1ff0, 0x20, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x800, 0x2000, 2));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve(a, 0x1000, 0x1000, 2));
	vmres_addr_free(a);
}

/* ---- the edges of the 64-bit space --------------------------------------- */

static void test_range_ending_at_the_top_is_allocatable_and_releasable(void **state)
{
	struct vmres_addr *a = new_addr(0, TOP);
	struct vmres_addr_entry e;
	struct vmres_addr_stats st;
	uint64_t owner = 0;

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, TOP - 0xfff, 0x1000, 9), 0);
	assert_int_equal(vmres_addr_find(a, TOP, &e), 0);
	assert_int_equal(e.base, TOP - 0xfff);
	assert_int_equal(e.last, TOP);
	assert_int_equal(vmres_addr_next(a, TOP - 0xfff, &e), 0);
	assert_int_equal(e.last, TOP);
	assert_int_equal(vmres_addr_next(a, TOP - 0xffe, &e), VMRES_ENOENT);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.gaps, 1);
	assert_int_equal(last_fit(a, 0x1000, 0x1000), TOP - 0x1fff);
	assert_int_equal(vmres_addr_release(a, TOP - 0xfff, 0x1000, &owner), 0);
	assert_int_equal(owner, 9);
	assert_int_equal(last_fit(a, 1, 0), TOP);
	assert_int_equal(vmres_addr_reserve(a, TOP - 1, 1, 0), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

static void test_whole_space_reports_two_to_the_64(void **state)
{
	struct vmres_addr *a = new_addr(0, TOP);
	struct vmres_addr_stats st;
	struct vmres_addr_entry e;

	(void)state;
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.free, UINT64_MAX);
	assert_int_equal(st.used, 0);
	assert_int_equal(vmres_addr_reserve(a, 0, BIT63, 1), 0);
	assert_int_equal(vmres_addr_reserve(a, BIT63, BIT63, 2), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.used, UINT64_MAX);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.gaps, 0);
	assert_int_equal(st.count, 2);
	assert_int_equal(vmres_addr_find(a, 0, &e), 0);
	assert_int_equal(e.owner, 1);
	assert_int_equal(vmres_addr_release(a, 0, BIT63, NULL), 0);
	assert_int_equal(vmres_addr_release(a, BIT63, BIT63, NULL), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.free, UINT64_MAX);
	assert_int_equal(st.gaps, 1);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

static void test_alignment_of_two_to_the_63(void **state)
{
	struct vmres_addr *a = new_addr(0, TOP);
	uint64_t out = 0;

	(void)state;
	assert_int_equal(first_fit(a, 1, BIT63), 0);
	assert_int_equal(last_fit(a, 1, BIT63), BIT63);
	EXPECT_UNCHANGED(a, VMRES_ENOSPC,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 1, BIT63, 0, TOP, &out));
	assert_int_equal(vmres_addr_release(a, 0, 1, NULL), 0);
	assert_int_equal(last_fit(a, BIT63 - 1, BIT63), 0);
	vmres_addr_free(a);
}

static void test_window_of_one_address(void **state)
{
	struct vmres_addr *a = new_addr(TOP, TOP);
	uint64_t out = 0;

	(void)state;
	assert_int_equal(first_fit(a, 1, 0), TOP);
	EXPECT_UNCHANGED(a, VMRES_ENOSPC, alloc_with(a, VMRES_ADDR_LAST_FIT, 1, 0, 0, TOP, &out));
	assert_int_equal(vmres_addr_release(a, TOP, 1, NULL), 0);
	vmres_addr_free(a);
	a = new_addr(0, 0);
	assert_int_equal(last_fit(a, 1, 0), 0);
	vmres_addr_free(a);
}

/* ---- release ------------------------------------------------------------- */

static void test_release_merges_the_gaps_on_both_sides(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	struct snap s = {0};

	(void)state;
	for (uint64_t i = 0; i < 5; i++)
		assert_int_equal(vmres_addr_reserve(a, 0x1000 * (i + 1), 0x1000, i), 0);
	assert_int_equal(vmres_addr_release(a, 0x2000, 0x1000, NULL), 0);
	assert_int_equal(vmres_addr_release(a, 0x4000, 0x1000, NULL), 0);
	snap_take(a, &s);
	assert_int_equal(s.n_gaps, 4);
	snap_free(&s);
	assert_int_equal(vmres_addr_release(a, 0x3000, 0x1000, NULL), 0);
	snap_take(a, &s);
	assert_int_equal(s.n_gaps, 3);
	assert_int_equal(s.gaps[1].base, 0x2000);
	assert_int_equal(s.gaps[1].last, 0x4fff);
	assert_int_equal(s.stats.gaps, 3);
	snap_free(&s);
	/* The last allocation merges with the gap before it and the tail. */
	assert_int_equal(vmres_addr_release(a, 0x5000, 0x1000, NULL), 0);
	snap_take(a, &s);
	assert_int_equal(s.n_gaps, 2);
	assert_int_equal(s.gaps[1].base, 0x2000);
	assert_int_equal(s.gaps[1].last, 0xffff);
	snap_free(&s);
	vmres_addr_free(a);
}

static void test_release_must_match_an_allocation_exactly(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	uint64_t owner = 0xdead;

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, 0x1000, 0x1000, 5), 0);
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x1000, 0xfff, &owner));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x1000, 0x1001, &owner));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x1001, 0xfff, &owner));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x3000, 0x10, &owner));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x0, 0x10, &owner));
	EXPECT_UNCHANGED(a, VMRES_ESIZE, vmres_addr_release(a, 0x1000, 0, &owner));
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_release(a, 0x1000, TOP, &owner));
	EXPECT_UNCHANGED(a, VMRES_EINVAL, vmres_addr_release(NULL, 0x1000, 0x1000, &owner));
	assert_int_equal(owner, 0xdead);
	assert_int_equal(vmres_addr_release(a, 0x1000, 0x1000, &owner), 0);
	assert_int_equal(owner, 5);
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_release(a, 0x1000, 0x1000, &owner));
	vmres_addr_free(a);
}

/* ---- lookups ------------------------------------------------------------- */

static void test_find_returns_the_containing_allocation(void **state)
{
	struct vmres_addr *a = new_addr(0x100, 0xffff);
	struct vmres_addr_entry e = {1, 2, 3}, keep = e;

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, 0x1000, 0x10, 11), 0);
	assert_int_equal(vmres_addr_reserve(a, 0x1010, 0x10, 12), 0);
	assert_int_equal(vmres_addr_find(a, 0x1000, &e), 0);
	assert_int_equal(e.owner, 11);
	assert_int_equal(vmres_addr_find(a, 0x100f, &e), 0);
	assert_int_equal(e.owner, 11);
	assert_int_equal(vmres_addr_find(a, 0x1010, &e), 0);
	assert_int_equal(e.owner, 12);
	e = keep;
	assert_int_equal(vmres_addr_find(a, 0xfff, &e), VMRES_ENOENT);
	assert_int_equal(vmres_addr_find(a, 0x1020, &e), VMRES_ENOENT);
	assert_int_equal(vmres_addr_find(a, 0, &e), VMRES_ENOENT);
	assert_int_equal(vmres_addr_find(a, TOP, &e), VMRES_ENOENT);
	assert_memory_equal(&e, &keep, sizeof(e));
	assert_int_equal(vmres_addr_find(NULL, 0x1000, &e), VMRES_EINVAL);
	assert_int_equal(vmres_addr_find(a, 0x1000, NULL), VMRES_EINVAL);
	vmres_addr_free(a);
}

static void test_next_returns_lowest_base_at_or_above(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	struct vmres_addr_entry e = {1, 2, 3}, keep = e;

	(void)state;
	assert_int_equal(vmres_addr_reserve(a, 0x1000, 0x10, 1), 0);
	assert_int_equal(vmres_addr_reserve(a, 0x2000, 0x10, 2), 0);
	assert_int_equal(vmres_addr_next(a, 0, &e), 0);
	assert_int_equal(e.base, 0x1000);
	assert_int_equal(vmres_addr_next(a, 0x1000, &e), 0);
	assert_int_equal(e.base, 0x1000);
	assert_int_equal(vmres_addr_next(a, 0x1001, &e), 0);
	assert_int_equal(e.base, 0x2000);
	e = keep;
	assert_int_equal(vmres_addr_next(a, 0x2001, &e), VMRES_ENOENT);
	assert_memory_equal(&e, &keep, sizeof(e));
	assert_int_equal(vmres_addr_next(NULL, 0, &e), VMRES_EINVAL);
	assert_int_equal(vmres_addr_next(a, 0, NULL), VMRES_EINVAL);
	vmres_addr_free(a);
}

static int stop_at_second(void *ctx, const struct vmres_addr_entry *e)
{
	int *seen = ctx;

	(void)e;
	return ++*seen == 2 ? 42 : 0;
}

static void test_iteration_stops_on_the_callback_value(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	int seen = 0;

	(void)state;
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(vmres_addr_reserve(a, 0x100 * (2 * i + 1), 0x100, i), 0);
	assert_int_equal(vmres_addr_foreach(a, stop_at_second, &seen), 42);
	assert_int_equal(seen, 2);
	seen = 0;
	assert_int_equal(vmres_addr_foreach_gap(a, stop_at_second, &seen), 42);
	assert_int_equal(seen, 2);
	assert_int_equal(vmres_addr_foreach(NULL, stop_at_second, &seen), VMRES_EINVAL);
	assert_int_equal(vmres_addr_foreach(a, NULL, &seen), VMRES_EINVAL);
	assert_int_equal(vmres_addr_foreach_gap(NULL, stop_at_second, &seen), VMRES_EINVAL);
	assert_int_equal(vmres_addr_foreach_gap(a, NULL, &seen), VMRES_EINVAL);
	vmres_addr_free(a);
}

static void test_stats_and_validate_reject_null(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xffff);
	struct vmres_addr_stats st;

	(void)state;
	assert_int_equal(vmres_addr_stats(NULL, &st), VMRES_EINVAL);
	assert_int_equal(vmres_addr_stats(a, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_addr_validate(NULL), VMRES_EINVAL);
	vmres_addr_free(a);
}

static void test_padding_left_by_a_tail_allocation_is_found_again(void **state)
{
	struct vmres_addr *a = new_addr(0, 0xfffff);

	(void)state;
	/* Enough packed allocations for a tree with internal nodes and no gap (the
	 * next allocation must not split the last leaf, which would recompute it). */
	for (uint64_t i = 0; i < 190; i++)
		assert_int_equal(first_fit(a, 0x10, 0), i * 0x10);
	/* The tail allocation leaves the padding [0xbe0, 0xfff] behind it... */
	assert_int_equal(first_fit(a, 0x10, 0x1000), 0x1000);
	assert_int_equal(vmres_addr_validate(a), 0);
	/* ...where the lowest fits of these requests are. */
	assert_int_equal(first_fit(a, 0x200, 0x200), 0xc00);
	assert_int_equal(first_fit(a, 0x20, 0), 0xbe0);
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

/* ---- scale: a tree several levels deep ----------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	return test_splitmix64(&rng_state);
}

static void shuffle(uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng() % (i + 1);
		uint64_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

static void test_deep_tree_survives_random_insert_and_release(void **state)
{
	const size_t n = 40000;
	struct vmres_addr *a = new_addr(0x10000, 0x10000 + n * 0x100 - 1);
	uint64_t *order = malloc(n * sizeof(*order));
	struct vmres_addr_entry e;
	struct vmres_addr_stats st;

	(void)state;
	assert_non_null(order);
	rng_state = 7;
	shuffle(order, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(vmres_addr_reserve(a, 0x10000 + order[i] * 0x100, 0x80, order[i]),
				 0);
		if (i % 4096 == 0)
			assert_int_equal(vmres_addr_validate(a), 0);
	}
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.count, n);
	assert_int_equal(st.gaps, n);
	for (size_t i = 0; i < n; i += 97) {
		assert_int_equal(vmres_addr_find(a, 0x10000 + i * 0x100 + 0x7f, &e), 0);
		assert_int_equal(e.owner, i);
		assert_int_equal(vmres_addr_find(a, 0x10000 + i * 0x100 + 0x80, &e), VMRES_ENOENT);
		assert_int_equal(vmres_addr_next(a, 0x10000 + i * 0x100 + 1, &e),
				 i + 1 < n ? 0 : VMRES_ENOENT);
	}
	/* Every free gap is 0x80 bytes: a first fit of 0x81 must fail, and one of
	 * 0x80 aligned to 0x100 lands in the first gap. */
	assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x81, 0, 0, TOP, &e.base),
			 VMRES_ENOSPC);
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x80, 0x80, 0, TOP, &e.base), 0);
	assert_int_equal(e.base, 0x10000 + n * 0x100 - 0x80);
	assert_int_equal(vmres_addr_release(a, e.base, 0x80, NULL), 0);
	shuffle(order, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t owner = 0;

		assert_int_equal(vmres_addr_release(a, 0x10000 + order[i] * 0x100, 0x80, &owner),
				 0);
		assert_int_equal(owner, order[i]);
		if (i % 4096 == 0)
			assert_int_equal(vmres_addr_validate(a), 0);
	}
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.count, 0);
	assert_int_equal(st.gaps, 1);
	assert_int_equal(st.free, n * 0x100);
	free(order);
	vmres_addr_free(a);
}

/*
 * Length summaries are upper bounds (tree.c): taking the 1 MiB gaps of a deep
 * tree with BAR fits leaves every node's bound at 1 MiB. A search by length
 * must still find the one gap left, past all those stale bounds, from either
 * end, and again on the next search.
 */
static void test_stale_length_bounds_hide_no_fit(void **state)
{
	const uint64_t n = 3000, base = 0x100000, stride = 0x200000, mib = 0x100000;
	const uint64_t keep = 1777, hole = base + keep * stride + mib;
	struct vmres_addr *a = new_addr(base, base + n * stride - 1);
	uint64_t out;

	(void)state;
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(vmres_addr_reserve(a, base + i * stride, mib, i), 0);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, mib, mib, 0, TOP, &out), 0);
		assert_int_equal(out, base + i * stride + mib);
	}
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_release(a, hole, mib, NULL), 0);
	for (int round = 0; round < 2; round++) {
		/* Not a power of two: a search by length. */
		assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0xc0000, 0x1000, 0, TOP, &out),
				 0);
		assert_int_equal(out, hole);
		assert_int_equal(vmres_addr_release(a, out, 0xc0000, NULL), 0);
		assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0xc0000, 0x1000, 0, TOP, &out),
				 0);
		assert_int_equal(out, hole + mib - 0xc0000);
		assert_int_equal(vmres_addr_release(a, out, 0xc0000, NULL), 0);
		EXPECT_UNCHANGED(a, VMRES_ENOSPC,
				 alloc_with(a, VMRES_ADDR_FIRST_FIT, mib + 1, 0, 0, TOP, &out));
		assert_int_equal(vmres_addr_validate(a), 0);
	}
	vmres_addr_free(a);
}

/*
 * A deep tree whose last allocation ends at, and whose last gap starts at, the
 * top of the u64 space: searches by the address UINT64_MAX go through internal
 * nodes whose unused keys are UINT64_MAX too (keys_pad() in addr_int.h).
 */
static void test_deep_tree_at_top_of_space(void **state)
{
	const uint64_t n = 20000, base = TOP - n * 0x100 + 1;
	struct vmres_addr *a = new_addr(base, TOP);
	struct vmres_addr_entry e;
	uint64_t owner = 0, out;

	(void)state;
	/* Slots of 0x100 bytes, each allocation 0x80 bytes followed by a gap. */
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(vmres_addr_reserve(a, base + i * 0x100, 0x80, i), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
	/* The last gap is [TOP - 0x7f, TOP]: its last byte, then all of it. */
	assert_int_equal(vmres_addr_find(a, TOP, &e), VMRES_ENOENT);
	assert_int_equal(vmres_addr_reserve(a, TOP, 1, 77), 0);
	assert_int_equal(vmres_addr_find(a, TOP, &e), 0);
	assert_int_equal(e.base, TOP);
	assert_int_equal(e.owner, 77);
	assert_int_equal(vmres_addr_next(a, TOP - 0x80, &e), 0);
	assert_int_equal(e.base, TOP);
	assert_int_equal(vmres_addr_next(a, TOP, &e), 0);
	assert_int_equal(e.last, TOP);
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_release(a, TOP, 1, &owner), 0);
	assert_int_equal(vmres_addr_next(a, TOP, &e), VMRES_ENOENT);
	assert_int_equal(owner, 77);
	assert_int_equal(alloc_with(a, VMRES_ADDR_LAST_FIT, 0x80, 0, 0, TOP, &out), 0);
	assert_int_equal(out, TOP - 0x7f);
	assert_int_equal(vmres_addr_find(a, TOP, &e), 0);
	assert_int_equal(e.base, TOP - 0x7f);
	assert_int_equal(vmres_addr_validate(a), 0);
	/* Release from the top down: each release merges two gaps at the top. */
	assert_int_equal(vmres_addr_release(a, TOP - 0x7f, 0x80, NULL), 0);
	for (uint64_t i = n; i-- > 0;) {
		assert_int_equal(vmres_addr_release(a, base + i * 0x100, 0x80, &owner), 0);
		assert_int_equal(owner, i);
		if (i % 2048 == 0)
			assert_int_equal(vmres_addr_validate(a), 0);
	}
	assert_int_equal(vmres_addr_find(a, TOP, &e), VMRES_ENOENT);
	vmres_addr_free(a);
}

/* The largest free gap of the allocator, found by visiting every gap. */
static int visit_largest(void *ctx, const struct vmres_addr_entry *e)
{
	struct vmres_addr_entry *best = ctx;

	if (e->last - e->base > best->last - best->base)
		*best = *e;
	return 0;
}

static void test_largest_gap_shrinking_is_seen_by_later_searches(void **state)
{
	/* Allocations of 0x100 bytes with gaps of 1 to 97 units of 0x100 before
	 * them, and no tail gap: a tree of a few levels whose largest gaps are
	 * then taken one by one, each time from the node that held the largest. */
	const uint64_t n = 3000;
	uint64_t at = 0, base;
	struct vmres_addr *a;
	struct vmres_addr_entry best;

	(void)state;
	for (uint64_t k = 0; k < n; k++)
		at += ((k * 37) % 97 + 1) * 0x100 + 0x100;
	a = new_addr(0, at - 1);
	at = 0;
	for (uint64_t k = 0; k < n; k++) {
		at += ((k * 37) % 97 + 1) * 0x100;
		assert_int_equal(vmres_addr_reserve(a, at, 0x100, k), 0);
		at += 0x100;
	}
	assert_int_equal(vmres_addr_validate(a), 0);
	for (int round = 0; round < 300; round++) {
		uint64_t size;

		best = (struct vmres_addr_entry){0, 0, 0}; /* every gap is longer */
		assert_int_equal(vmres_addr_foreach_gap(a, visit_largest, &best), 0);
		size = best.last - best.base + 1;
		/* Nothing larger than the largest gap fits... */
		EXPECT_UNCHANGED(a, VMRES_ENOSPC,
				 alloc_with(a, VMRES_ADDR_FIRST_FIT, size + 1, 0, 0, TOP, &base));
		EXPECT_UNCHANGED(a, VMRES_ENOSPC,
				 alloc_with(a, VMRES_ADDR_LAST_FIT, size + 1, 0, 0, TOP, &base));
		/* ...and the largest is taken whole, at the lowest of its size (the
		 * visit kept the first one), or from the top by last fit. */
		if (round % 2) {
			assert_int_equal(first_fit(a, size, 0), best.base);
		} else {
			base = last_fit(a, size, 0);
			assert_int_equal(base + size - 1 <= at - 1, 1);
			assert_int_equal(base % 0x100, 0);
		}
		assert_int_equal(vmres_addr_validate(a), 0);
	}
	vmres_addr_free(a);
}

static void test_large_allocator_grows_its_node_pools(void **state)
{
	/* Enough allocations, in random order, for hundreds of internal nodes and
	 * thousands of leaves: the node pools outgrow their small first space,
	 * move to huge-page space, and outgrow that too (about 10 MB of leaves per
	 * tree: moved by mremap()). Everything stays findable and is released. */
	const size_t n = 300000;
	struct vmres_addr *a = new_addr(0x1000, 0x1000 + n * 2 - 1);
	uint64_t *order = malloc(n * sizeof(*order));
	struct vmres_addr_entry e;
	struct vmres_addr_stats st;

	(void)state;
	assert_non_null(order);
	rng_state = 11;
	shuffle(order, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vmres_addr_reserve(a, 0x1000 + order[i] * 2, 1, order[i]), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.count, n);
	for (size_t i = 0; i < n; i += 1009) {
		assert_int_equal(vmres_addr_find(a, 0x1000 + i * 2, &e), 0);
		assert_int_equal(e.owner, i);
		assert_int_equal(vmres_addr_find(a, 0x1000 + i * 2 + 1, &e), VMRES_ENOENT);
	}
	/* Every gap is one byte: the lowest two-byte fit is none, a one-byte fit
	 * is the first gap. */
	EXPECT_UNCHANGED(a, VMRES_ENOSPC,
			 alloc_with(a, VMRES_ADDR_FIRST_FIT, 2, 0, 0, TOP, &e.base));
	assert_int_equal(first_fit(a, 1, 0), 0x1001);
	assert_int_equal(vmres_addr_release(a, 0x1001, 1, NULL), 0);
	shuffle(order, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vmres_addr_release(a, 0x1000 + order[i] * 2, 1, NULL), 0);
	assert_int_equal(vmres_addr_validate(a), 0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.count, 0);
	assert_int_equal(st.gaps, 1);
	free(order);
	vmres_addr_free(a);
}

/* ---- the model ----------------------------------------------------------- */

/* The model is tests/model/addr_model.h (shared with fuzz/fuzz_addr.c): a sorted
 * array of allocations, searched linearly, with 128-bit arithmetic. */

static void assert_matches_model(const struct vmres_addr *a, const struct addr_model *m)
{
	struct snap s = {0};
	struct vmres_addr_entry *gaps = malloc((m->n + 1) * sizeof(*gaps));
	uint64_t *gs = malloc((m->n + 1) * sizeof(*gs)), *ge = malloc((m->n + 1) * sizeof(*ge));
	struct vmres_addr_stats want;
	size_t ng;

	assert_non_null(gaps);
	assert_non_null(gs);
	assert_non_null(ge);
	ng = addr_model_gaps(m, gs, ge);
	for (size_t k = 0; k < ng; k++)
		gaps[k] = (struct vmres_addr_entry){gs[k], ge[k], 0};
	free(gs);
	free(ge);
	addr_model_stats(m, &want);
	snap_take(a, &s);
	assert_int_equal(s.n_allocs, m->n);
	if (m->n)
		assert_memory_equal(s.allocs, m->e, m->n * sizeof(*m->e));
	assert_int_equal(s.n_gaps, ng);
	if (ng)
		assert_memory_equal(s.gaps, gaps, ng * sizeof(*gaps));
	assert_int_equal(s.stats.base, m->base);
	assert_int_equal(s.stats.last, m->last);
	assert_int_equal(s.stats.count, m->n);
	assert_int_equal(s.stats.gaps, ng);
	assert_int_equal(s.stats.used, want.used);
	assert_int_equal(s.stats.free, want.free);
	snap_free(&s);
	free(gaps);
}

/* A random number in [0, n), n >= 1. */
static uint64_t below(uint64_t n)
{
	return rng() % n;
}

/* An address of the window, or now and then one just outside it. */
static uint64_t random_addr(const struct addr_model *m)
{
	uint64_t span = m->last - m->base;

	switch (below(16)) {
	case 0:
		return m->base - 1;
	case 1:
		return m->last + 1;
	case 2:
		return m->base;
	case 3:
		return m->last;
	default:
		return m->base + (span == TOP ? rng() : below(span + 1));
	}
}

static uint64_t random_size(uint64_t max_size)
{
	switch (below(20)) {
	case 0:
		return 0;
	case 1:
		return TOP - below(4);
	case 2:
		return 1ULL << below(64);
	default:
		return 1 + below(max_size);
	}
}

static uint64_t random_align(uint64_t max_log2)
{
	switch (below(12)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return 3 + 2 * below(8); /* not a power of two */
	case 3:
		return BIT63;
	default:
		return 1ULL << below(max_log2 + 1);
	}
}

/* Every differential run starts from its own seed, printed so a failure can be
 * replayed. */
#define SEED 0x5eed0000ULL

static void run_differential(uint64_t seed, uint64_t base, uint64_t last, uint64_t max_size,
			     uint64_t max_align_log2, unsigned int ops)
{
	struct vmres_addr *a = new_addr(base, last);
	struct addr_model m;

	addr_model_init(&m, base, last);
	rng_state = seed;
	printf("differential: seed %#llx window [%#llx, %#llx], %u operations\n",
	       (unsigned long long)seed, (unsigned long long)base, (unsigned long long)last, ops);

	for (unsigned int op = 0; op < ops; op++) {
		unsigned int kind = below(100);
		struct vmres_addr_entry e1 = {0, 0, 0}, e2 = {0, 0, 0};
		uint64_t out1 = 0, out2 = 0;
		int rc1, rc2;

		if (kind < 45) {
			struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;

			req.policy = (enum vmres_addr_policy)below(3);
			req.size = random_size(max_size);
			req.align = random_align(max_align_log2);
			if (below(3) == 0) /* a BAR: aligned to its power-of-two size */
				req.align = req.size = 1ULL << below(max_align_log2 + 1);
			req.owner = rng();
			if (req.policy == VMRES_ADDR_EXACT) {
				req.addr = random_addr(&m);
				if (req.align > 1 && below(4))
					req.addr &= ~(req.align - 1);
			}
			if (below(2)) {
				req.min = random_addr(&m);
				req.max = random_addr(&m);
				if (req.min > req.max && below(8)) {
					uint64_t t = req.min;

					req.min = req.max;
					req.max = t;
				}
			}
			if (below(200) == 0)
				req.version = 0;
			if (below(200) == 0)
				req.policy = (enum vmres_addr_policy)7;
			rc1 = vmres_addr_alloc(a, &req, &out1);
			rc2 = addr_model_alloc(&m, &req, &out2);
			assert_int_equal(rc1, rc2);
			assert_int_equal(out1, out2);
		} else if (kind < 52) {
			uint64_t addr = random_addr(&m), size = random_size(max_size);
			uint64_t owner = rng();
			struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;

			req.policy = VMRES_ADDR_EXACT;
			req.addr = addr;
			req.size = size;
			req.owner = owner;
			rc1 = vmres_addr_reserve(a, addr, size, owner);
			rc2 = addr_model_alloc(&m, &req, &out2);
			assert_int_equal(rc1, rc2);
		} else if (kind < 85) {
			uint64_t base_r, size;

			if (m.n && below(4)) {
				struct vmres_addr_entry *v = &m.e[below(m.n)];

				base_r = v->base;
				size = v->last - v->base + 1;
				if (below(8) == 0)
					size += below(3) - 1; /* an off-by-one size: must fail */
			} else {
				base_r = random_addr(&m);
				size = random_size(max_size);
			}
			out1 = out2 = 0xdead;
			rc1 = vmres_addr_release(a, base_r, size, &out1);
			rc2 = addr_model_release(&m, base_r, size, &out2);
			assert_int_equal(rc1, rc2);
			assert_int_equal(out1, out2);
		} else if (kind < 93) {
			uint64_t addr = random_addr(&m);

			rc1 = vmres_addr_find(a, addr, &e1);
			rc2 = addr_model_find(&m, addr, &e2);
			assert_int_equal(rc1, rc2);
			assert_memory_equal(&e1, &e2, sizeof(e1));
		} else {
			uint64_t from = random_addr(&m);

			rc1 = vmres_addr_next(a, from, &e1);
			rc2 = addr_model_next(&m, from, &e2);
			assert_int_equal(rc1, rc2);
			assert_memory_equal(&e1, &e2, sizeof(e1));
		}
		assert_int_equal(vmres_addr_validate(a), 0);
		assert_matches_model(a, &m);
	}
	addr_model_fini(&m);
	vmres_addr_free(a);
}

static void test_matches_model_in_small_windows(void **state)
{
	(void)state;
	run_differential(SEED + 1, 1000, 1000 + 2047, 64, 6, 6000);
	run_differential(SEED + 2, 0, 4095, 48, 7, 6000);
	run_differential(SEED + 3, TOP - 4095, TOP, 64, 8, 6000);
	run_differential(SEED + 4, 0x12345, 0x12345 + 299, 16, 4, 4000);
}

static void test_matches_model_over_the_whole_space(void **state)
{
	(void)state;
	run_differential(SEED + 5, 0, TOP, 1ULL << 62, 63, 6000);
	run_differential(SEED + 6, 1, TOP - 1, 1ULL << 40, 40, 6000);
}

static void test_matches_model_with_many_allocations(void **state)
{
	(void)state;
	/* Large enough for a tree of two or three levels with merges and splits. */
	run_differential(SEED + 7, 0x100000, 0x100000 + 0x3ffff, 24, 5, 25000);
}

/*
 * Runs of BAR fits over the whole window, first or last, the way a fill goes:
 * most of them start from the leaf of the fit before (the finger in addr.c),
 * which must give way when a release frees room before (after) it, an exact
 * reservation takes a gap, or a leaf splits. Every result is checked against
 * the model.
 */
static void test_runs_of_bar_fits_match_model(void **state)
{
	const uint64_t base = 0x10000000, last = base + (1ULL << 32) - 1;
	struct vmres_addr *a = new_addr(base, last);
	uint64_t *live = malloc(20000 * sizeof(*live)), *size = malloc(20000 * sizeof(*size));
	struct addr_model m;
	size_t n = 0;

	(void)state;
	assert_non_null(live);
	assert_non_null(size);
	addr_model_init(&m, base, last);
	rng_state = SEED + 11;
	printf("bar runs: seed %#llx\n", (unsigned long long)rng_state);
	for (unsigned int op = 0; op < 20000; op++) {
		unsigned int kind = below(100);
		struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
		uint64_t out1 = 0, out2 = 0, o1 = 0, o2 = 0;

		if (kind < 8 && n) {
			size_t i = below(n);

			assert_int_equal(vmres_addr_release(a, live[i], size[i], &o1), 0);
			assert_int_equal(addr_model_release(&m, live[i], size[i], &o2), 0);
			assert_int_equal(o1, o2);
			live[i] = live[--n];
			size[i] = size[n];
			continue;
		}
		if (kind < 12) {
			req.policy = VMRES_ADDR_EXACT;
			req.addr = base + (rng() % (1ULL << 20)) * 0x1000;
			req.size = 0x1000;
		} else {
			/* Long runs of one policy, as a fill or a last fit makes. */
			req.policy = (op / 500) % 2 ? VMRES_ADDR_LAST_FIT : VMRES_ADDR_FIRST_FIT;
			req.size = req.align = 1ULL << (12 + below(9));
		}
		req.owner = op;
		assert_int_equal(vmres_addr_alloc(a, &req, &out1),
				 addr_model_alloc(&m, &req, &out2));
		assert_int_equal(out1, out2);
		if (out1 && n < 20000) {
			live[n] = out1;
			size[n++] = req.size;
		}
		if (op % 1000 == 0)
			assert_int_equal(vmres_addr_validate(a), 0);
	}
	assert_int_equal(vmres_addr_validate(a), 0);
	addr_model_fini(&m);
	free(live);
	free(size);
	vmres_addr_free(a);
}

/* vmres_addr_move(): the allocation moves whole, also onto addresses it shares
 * with its old place, and at the top of the space; every refusal changes nothing. */
static void test_move_keeps_owner_and_may_overlap_its_old_place(void **state)
{
	(void)state;
	struct vmres_addr *a = new_addr(0x1000, 0xffff);
	struct vmres_addr_entry e;

	assert_int_equal(vmres_addr_reserve(a, 0x2000, 0x1000, 7), 0);
	assert_int_equal(vmres_addr_reserve(a, 0x4000, 0x1000, 8), 0);
	/* up by half its size, onto itself */
	assert_int_equal(vmres_addr_move(a, 0x2000, 0x1000, 0x2800), 0);
	assert_int_equal(vmres_addr_find(a, 0x2800, &e), 0);
	assert_int_equal(e.base, 0x2800);
	assert_int_equal(e.last, 0x37ff);
	assert_int_equal(e.owner, 7);
	assert_int_equal(vmres_addr_find(a, 0x27ff, &e), VMRES_ENOENT);
	/* down again, onto itself, and far away */
	assert_int_equal(vmres_addr_move(a, 0x2800, 0x1000, 0x2000), 0);
	assert_int_equal(vmres_addr_move(a, 0x2000, 0x1000, 0x8000), 0);
	assert_int_equal(vmres_addr_find(a, 0x8fff, &e), 0);
	assert_int_equal(e.owner, 7);
	/* to where it is: nothing happens */
	assert_int_equal(vmres_addr_move(a, 0x8000, 0x1000, 0x8000), 0);
	assert_int_equal(vmres_addr_validate(a), 0);

	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_move(a, 0x8000, 0x1000, 0x4800));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_move(a, 0x4000, 0x1000, 0x7801));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_move(a, 0x8000, 0x1000, 0xf001));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_move(a, 0x8000, 0x1000, 0x800));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_move(a, 0x8000, 0x800, 0x9000));
	EXPECT_UNCHANGED(a, VMRES_ENOENT, vmres_addr_move(a, 0x2000, 0x1000, 0x9000));
	EXPECT_UNCHANGED(a, VMRES_ESIZE, vmres_addr_move(a, 0x8000, 0, 0x9000));
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_move(a, 0x8000, 0x1000, TOP - 0xffe));
	/* the checks alone say the same and change nothing either */
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_move_check(a, 0x8000, 0x1000, 0x4800));
	EXPECT_UNCHANGED(a, 0, vmres_addr_move_check(a, 0x8000, 0x1000, 0x8800));
	EXPECT_UNCHANGED(a, VMRES_EOVERLAP, vmres_addr_reserve_check(a, 0x4fff, 2));
	EXPECT_UNCHANGED(a, 0, vmres_addr_reserve_check(a, 0x5000, 0x3000));
	EXPECT_UNCHANGED(a, VMRES_ERANGE, vmres_addr_reserve_check(a, 0xffff, 2));
	assert_int_equal(vmres_addr_move(NULL, 0, 1, 0), VMRES_EINVAL);
	vmres_addr_free(a);

	/* the last byte of the space */
	a = new_addr(BIT63, TOP);
	assert_int_equal(vmres_addr_reserve(a, TOP - 0xfff, 0x1000, 3), 0);
	assert_int_equal(vmres_addr_move(a, TOP - 0xfff, 0x1000, TOP - 0x17ff), 0);
	assert_int_equal(vmres_addr_move(a, TOP - 0x17ff, 0x1000, TOP - 0xfff), 0);
	assert_int_equal(vmres_addr_find(a, TOP, &e), 0);
	assert_int_equal(e.owner, 3);
	EXPECT_UNCHANGED(a, VMRES_EOVERFLOW, vmres_addr_move(a, TOP - 0xfff, 0x1000, TOP - 0xffe));
	assert_int_equal(vmres_addr_validate(a), 0);
	vmres_addr_free(a);
}

/* Moves between many neighbours agree with a release followed by a reservation. */
static void test_random_moves_match_release_then_reserve(void **state)
{
	(void)state;
	const unsigned int seed = 20261206;
	struct vmres_addr *a = new_addr(0, 0xfffff), *b = new_addr(0, 0xfffff);
	uint64_t base[64];

	printf("seed %u\n", seed);
	srand(seed);
	for (unsigned int i = 0; i < 64; i++) {
		base[i] = (uint64_t)i * 0x4000;
		assert_int_equal(vmres_addr_reserve(a, base[i], 0x1000, i), 0);
		assert_int_equal(vmres_addr_reserve(b, base[i], 0x1000, i), 0);
	}
	for (unsigned int step = 0; step < 20000; step++) {
		unsigned int i = (unsigned int)rand() % 64;
		uint64_t to = ((uint64_t)rand() % 0x100000) & ~0xffull;
		int ra = vmres_addr_move(a, base[i], 0x1000, to), rb;
		uint64_t owner;

		/* the model: release, then reserve; on refusal, take the old one back */
		assert_int_equal(vmres_addr_release(b, base[i], 0x1000, &owner), 0);
		rb = vmres_addr_reserve(b, to, 0x1000, owner);
		if (rb)
			assert_int_equal(vmres_addr_reserve(b, base[i], 0x1000, owner), 0);
		assert_int_equal(ra, rb);
		if (!ra)
			base[i] = to;
		if (step % 1000 == 0) {
			struct snap x = {0}, y = {0};

			snap_take(a, &x);
			snap_take(b, &y);
			assert_snap_equal(&x, &y);
			snap_free(&x);
			snap_free(&y);
			assert_int_equal(vmres_addr_validate(a), 0);
		}
	}
	vmres_addr_free(a);
	vmres_addr_free(b);
}

/*
 * After vmres_addr_reserve_capacity(n), an allocator that never holds more than
 * n allocations allocates no memory: vmres_addr_memory() stays the same through
 * a random mix of first and last fits, exact reservations that leave a gap
 * beside each, releases and moves (fixed seed, printed).
 */
static void test_reserve_capacity_means_no_growth(void **state)
{
	const uint64_t seed = 0xca9ac17e, wbase = 0x100000000ull;
	const uint32_t n = 6000;
	struct vmres_addr *a = new_addr(wbase, wbase + (1ull << 40) - 1);
	struct vmres_addr_stats st;
	uint64_t *held = calloc(n, sizeof(*held)), *sizes = calloc(n, sizeof(*sizes));
	uint64_t rng = seed, mem0, mem, mem_empty;
	uint32_t live = 0;

	(void)state;
	assert_non_null(held);
	assert_non_null(sizes);
	printf("addr: reserve_capacity %u ranges, seed %#llx\n", n, (unsigned long long)seed);
	assert_int_equal(vmres_addr_reserve_capacity(NULL, 1), VMRES_EINVAL);
	assert_int_equal(vmres_addr_memory(a, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_addr_memory(a, &mem_empty), 0);
	assert_int_equal(vmres_addr_reserve_capacity(a, n), 0);
	assert_int_equal(vmres_addr_memory(a, &mem0), 0);
	printf("addr: %llu bytes empty, %llu reserved (%.0f per range)\n",
	       (unsigned long long)mem_empty, (unsigned long long)mem0, (double)mem0 / n);
	assert_true(mem0 > mem_empty);
	assert_true(mem0 <= mem_empty + (uint64_t)n * VMRES_ADDR_BYTES_PER_ALLOC_MAX * 2 + (4u << 20));
	/* A smaller hint does nothing. */
	assert_int_equal(vmres_addr_reserve_capacity(a, n / 2), 0);
	assert_int_equal(vmres_addr_memory(a, &mem), 0);
	assert_int_equal(mem, mem0);
	/* Worst case first: exact 4 KiB ranges with a 4 KiB gap beside each. */
	for (uint32_t k = 0; k < n; k++) {
		held[k] = wbase + 0x2000ull * k;
		sizes[k] = 0x1000;
		assert_int_equal(vmres_addr_reserve(a, held[k], sizes[k], k), 0);
	}
	live = n;
	for (uint32_t step = 0; step < 8 * n; step++) {
		uint32_t k = (uint32_t)(test_splitmix64(&rng) % n);
		uint64_t r = test_splitmix64(&rng), size = 0x1000ull << (r % 8), base;

		if (held[k] && r % 5 == 0) { /* move it to a free place, if it fits */
			uint64_t to = wbase + ((test_splitmix64(&rng) % (1ull << 26)) << 12);
			int rc = vmres_addr_move(a, held[k], sizes[k], to);

			assert_true(rc == 0 || rc == VMRES_EOVERLAP || rc == VMRES_ERANGE);
			if (rc == 0)
				held[k] = to;
		} else if (held[k]) {
			assert_int_equal(vmres_addr_release(a, held[k], sizes[k], NULL), 0);
			held[k] = 0;
			live--;
		} else {
			int rc = alloc_with(a, r % 2 ? VMRES_ADDR_FIRST_FIT : VMRES_ADDR_LAST_FIT,
					    size, size, 0, TOP, &base);

			assert_int_equal(rc, 0);
			held[k] = base;
			sizes[k] = size;
			live++;
		}
		assert_true(live <= n);
		if (step % 1024 == 0) {
			assert_int_equal(vmres_addr_validate(a), 0);
			assert_int_equal(vmres_addr_memory(a, &mem), 0);
			assert_int_equal(mem, mem0);
		}
	}
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.count, live);
	assert_int_equal(vmres_addr_memory(a, &mem), 0);
	assert_int_equal(mem, mem0);
	vmres_addr_free(a);
	free(held);
	free(sizes);
}

/* Without a hint, memory grows with use (and vmres_addr_memory() shows it). */
static void test_memory_grows_without_hint(void **state)
{
	struct vmres_addr *a = new_addr(0, (1ull << 40) - 1);
	uint64_t mem0, mem, base;

	(void)state;
	assert_int_equal(vmres_addr_memory(a, &mem0), 0);
	for (uint32_t k = 0; k < 20000; k++)
		assert_int_equal(alloc_with(a, VMRES_ADDR_FIRST_FIT, 0x1000, 0x1000, 0, TOP, &base), 0);
	assert_int_equal(vmres_addr_memory(a, &mem), 0);
	assert_true(mem > mem0 + 20000 * 24);
	assert_true(mem < mem0 + 20000ull * VMRES_ADDR_BYTES_PER_ALLOC_MAX * 2 + (4u << 20));
	vmres_addr_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_arguments),
		cmocka_unit_test(test_new_window_is_one_free_gap),
		cmocka_unit_test(test_first_fit_returns_lowest_aligned_address),
		cmocka_unit_test(test_last_fit_returns_highest_aligned_address),
		cmocka_unit_test(test_exact_allocation_is_placed_at_its_address),
		cmocka_unit_test(test_first_fit_respects_subwindow),
		cmocka_unit_test(test_last_fit_respects_subwindow),
		cmocka_unit_test(test_subwindow_larger_than_window_is_clipped),
		cmocka_unit_test(test_no_space_only_when_truly_none),
		cmocka_unit_test(test_alloc_rejects_invalid_arguments),
		cmocka_unit_test(test_alloc_rejects_zero_size_and_bad_alignment),
		cmocka_unit_test(test_alloc_rejects_ranges_that_overflow),
		cmocka_unit_test(test_alloc_clips_subwindow_to_window_before_checking),
		cmocka_unit_test(test_alloc_rejects_ranges_outside_the_window),
		cmocka_unit_test(test_exact_misaligned_address_is_rejected),
		cmocka_unit_test(test_exact_inside_an_allocation_fails),
		cmocka_unit_test(test_range_ending_at_the_top_is_allocatable_and_releasable),
		cmocka_unit_test(test_whole_space_reports_two_to_the_64),
		cmocka_unit_test(test_alignment_of_two_to_the_63),
		cmocka_unit_test(test_window_of_one_address),
		cmocka_unit_test(test_release_merges_the_gaps_on_both_sides),
		cmocka_unit_test(test_release_must_match_an_allocation_exactly),
		cmocka_unit_test(test_find_returns_the_containing_allocation),
		cmocka_unit_test(test_next_returns_lowest_base_at_or_above),
		cmocka_unit_test(test_iteration_stops_on_the_callback_value),
		cmocka_unit_test(test_stats_and_validate_reject_null),
		cmocka_unit_test(test_padding_left_by_a_tail_allocation_is_found_again),
		cmocka_unit_test(test_deep_tree_survives_random_insert_and_release),
		cmocka_unit_test(test_deep_tree_at_top_of_space),
		cmocka_unit_test(test_stale_length_bounds_hide_no_fit),
		cmocka_unit_test(test_largest_gap_shrinking_is_seen_by_later_searches),
		cmocka_unit_test(test_large_allocator_grows_its_node_pools),
		cmocka_unit_test(test_matches_model_in_small_windows),
		cmocka_unit_test(test_matches_model_over_the_whole_space),
		cmocka_unit_test(test_matches_model_with_many_allocations),
		cmocka_unit_test(test_runs_of_bar_fits_match_model),
		cmocka_unit_test(test_move_keeps_owner_and_may_overlap_its_old_place),
		cmocka_unit_test(test_random_moves_match_release_then_reserve),
		cmocka_unit_test(test_reserve_capacity_means_no_growth),
		cmocka_unit_test(test_memory_grows_without_hint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
