/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <vmres/sysalloc.h>

#include "helpers.h"
#include "json_alloc.h"

/* ---- request builders ---- */

static struct vmres_request rq_mmio(const char *pool, uint64_t size, uint64_t align)
{
	return test_rq_addr(pool, VMRES_SPACE_MMIO, size, align, VMRES_ADDR_FIRST_FIT, 0);
}

static struct vmres_request rq_exact(const char *pool, enum vmres_space space, uint64_t at,
				     uint64_t size)
{
	return test_rq_addr(pool, space, size, 0, VMRES_ADDR_EXACT, at);
}

static struct vmres_request rq_irq(const char *pool, bool any, uint32_t gsi)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_IRQ;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	q.u.irq.any = any;
	q.u.irq.gsi = gsi;
	return q;
}

static struct vmres_request rq_msi(const char *pool, uint32_t count, bool contiguous, bool any,
				   uint32_t gsi)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_MSI;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	q.u.msi.count = count;
	q.u.msi.contiguous = contiguous;
	q.u.msi.any = any;
	q.u.msi.gsi = gsi;
	return q;
}

static struct vmres_request rq_id(const char *pool, bool any, uint32_t id)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_ID;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	q.u.id.any = any;
	q.u.id.id = id;
	return q;
}

/* ---- fixtures and checks ---- */

/* pio PIO [0, 0xffff]; mmio32 MMIO [0xc0000000, 0xffffffff]; gsi IRQ [0, 23];
 * msi MSI [24, 4095]; ids ID [0, 1023] */
static struct vmres_sysalloc *small_sa(void)
{
	struct vmres_sysalloc *sa = NULL;

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "pio", VMRES_SPACE_PIO, 0, 0xffff), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio32", VMRES_SPACE_MMIO, 0xc0000000,
						      0xffffffff),
			 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "gsi", VMRES_RES_IRQ, 0, 23), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "msi", VMRES_RES_MSI, 24, 4095), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "ids", VMRES_RES_ID, 0, 1023), 0);
	return sa;
}

static char *dump(const struct vmres_sysalloc *sa)
{
	char *s = NULL;

	assert_int_equal(vmres_sysalloc_dump_str(sa, &s), 0);
	assert_non_null(s);
	return s;
}

#define OUT_CAP 64

static size_t alloc_ok(struct vmres_sysalloc *sa, const struct vmres_request *q, size_t n,
		       uint64_t owner, struct vmres_resource *out)
{
	size_t n_out = 12345;
	struct vmres_sysalloc_error err = {0, 0};
	int ret = vmres_sysalloc_alloc(sa, q, n, owner, out, OUT_CAP, &n_out, &err);

	if (ret)
		fail_msg("alloc failed: %s at request %zu", vmres_errname(err.code), err.index);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	return n_out;
}

/* A failing batch returns code for request index and changes nothing at all. */
static void alloc_fails(struct vmres_sysalloc *sa, const struct vmres_request *q, size_t n,
			uint64_t owner, int code, size_t index)
{
	struct vmres_resource out[OUT_CAP], untouched[OUT_CAP];
	struct vmres_sysalloc_error err = {1, 999};
	size_t n_out = 12345;
	char *before = dump(sa), *after;
	int ret;

	memset(out, 0x5c, sizeof(out));
	memcpy(untouched, out, sizeof(out));
	ret = vmres_sysalloc_alloc(sa, q, n, owner, out, OUT_CAP, &n_out, &err);
	if (ret != code)
		fail_msg("expected %s, got %s", vmres_errname(code), vmres_errname(ret));
	assert_int_equal(err.code, code);
	assert_int_equal(err.index, index);
	assert_int_equal(n_out, 12345);
	assert_memory_equal(out, untouched, sizeof(out));
	after = dump(sa);
	assert_string_equal(before, after);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	free(before);
	free(after);
}

static void release_fails(struct vmres_sysalloc *sa, const struct vmres_resource *r, uint64_t owner,
			  int code)
{
	char *before = dump(sa), *after;

	assert_int_equal(vmres_sysalloc_release(sa, r, owner), code);
	after = dump(sa);
	assert_string_equal(before, after);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	free(before);
	free(after);
}

/* ---- each request kind ---- */

static void test_addr_requests_place_first_last_exact_and_in_subwindow(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[4] = {
		rq_mmio("mmio32", 0x1000, 0x1000),
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x2000, 0x2000, VMRES_ADDR_LAST_FIT, 0),
		rq_exact("pio", VMRES_SPACE_PIO, 0x3f8, 8),
		rq_mmio("mmio32", 0x100, 0x100),
	};

	q[3].u.addr.req.min = 0xd0000000;
	q[3].u.addr.req.max = 0xdfffffff;
	assert_int_equal(alloc_ok(sa, q, 4, 7, out), 4);
	assert_int_equal(out[0].kind, VMRES_RES_ADDR);
	assert_string_equal(out[0].pool, "mmio32");
	assert_int_equal(out[0].u.addr.space, VMRES_SPACE_MMIO);
	assert_int_equal(out[0].u.addr.base, 0xc0000000);
	assert_int_equal(out[0].u.addr.size, 0x1000);
	assert_int_equal(out[0].u.addr.align, 0x1000);
	assert_int_equal(out[1].u.addr.base, 0xffffe000);
	assert_int_equal(out[2].u.addr.space, VMRES_SPACE_PIO);
	assert_int_equal(out[2].u.addr.base, 0x3f8);
	assert_int_equal(out[2].u.addr.size, 8);
	assert_int_equal(out[3].u.addr.base, 0xd0000000);

	/* the next first fit comes after the first allocation */
	assert_int_equal(alloc_ok(sa, q, 1, 7, out), 1);
	assert_int_equal(out[0].u.addr.base, 0xc0001000);
	vmres_sysalloc_free(sa);
}

static void test_irq_requests_take_lowest_free_or_specific_gsi(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[3] = {rq_irq("gsi", false, 0), rq_irq("gsi", true, 0),
				     rq_irq("gsi", false, 23)};

	assert_int_equal(alloc_ok(sa, q, 3, 1, out), 3);
	assert_int_equal(out[0].kind, VMRES_RES_IRQ);
	assert_int_equal(out[0].u.irq.gsi, 0);
	assert_int_equal(out[1].u.irq.gsi, 1);
	assert_int_equal(out[2].u.irq.gsi, 23);
	assert_string_equal(out[2].pool, "gsi");
	vmres_sysalloc_free(sa);
}

static void test_msi_requests_yield_one_resource_per_vector(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[4] = {
		rq_msi("msi", 3, false, true, 0),    /* 24, 25, 26 */
		rq_msi("msi", 4, true, true, 0),     /* aligned block: 28-31 */
		rq_msi("msi", 1, false, true, 0),    /* 27 */
		rq_msi("msi", 3, false, false, 100), /* what firmware chose: 100-102 */
	};

	assert_int_equal(alloc_ok(sa, q, 4, 2, out), 11);
	static const uint32_t want[] = {24, 25, 26, 28, 29, 30, 31, 27, 100, 101, 102};

	for (size_t i = 0; i < 11; i++) {
		assert_int_equal(out[i].kind, VMRES_RES_MSI);
		assert_int_equal(out[i].u.msi.gsi, want[i]);
		assert_int_equal(out[i].u.msi.msg.addr_lo, 0);
		assert_int_equal(out[i].u.msi.msg.data, 0);
	}
	/* a contiguous specific block must be aligned to its count */
	struct vmres_request blk = rq_msi("msi", 8, true, false, 200);

	assert_int_equal(alloc_ok(sa, &blk, 1, 2, out), 8);
	assert_int_equal(out[0].u.msi.gsi, 200);
	assert_int_equal(out[7].u.msi.gsi, 207);
	vmres_sysalloc_free(sa);
}

static void test_id_requests_take_lowest_free_or_specific_id(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[3] = {rq_id("ids", false, 1), rq_id("ids", true, 0),
				     rq_id("ids", true, 0)};

	assert_int_equal(alloc_ok(sa, q, 3, 3, out), 3);
	assert_int_equal(out[0].u.id.id, 1);
	assert_int_equal(out[1].u.id.id, 0);
	assert_int_equal(out[2].u.id.id, 2);
	assert_int_equal(out[2].kind, VMRES_RES_ID);
	vmres_sysalloc_free(sa);
}

static void test_empty_batch_allocates_nothing(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	size_t n_out = 99;

	assert_int_equal(vmres_sysalloc_alloc(sa, NULL, 0, 1, NULL, 0, &n_out, NULL), 0);
	assert_int_equal(n_out, 0);
	vmres_sysalloc_free(sa);
}

/* ---- errors ---- */

static void test_each_bad_request_has_its_own_error_and_changes_nothing(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request taken[3] = {rq_exact("pio", VMRES_SPACE_PIO, 0x3f8, 8),
					 rq_irq("gsi", false, 4), rq_id("ids", false, 9)};
	struct vmres_request q;

	alloc_ok(sa, taken, 3, 1, out);

	q = rq_mmio("nosuch", 0x1000, 0);
	alloc_fails(sa, &q, 1, 2, VMRES_EPOOL, 0);
	q = rq_irq("mmio32", true, 0); /* a pool of another kind */
	alloc_fails(sa, &q, 1, 2, VMRES_EKIND, 0);
	q = rq_msi("gsi", 1, false, true, 0); /* legacy pool, MSI request */
	alloc_fails(sa, &q, 1, 2, VMRES_EKIND, 0);
	q = test_rq_addr("mmio32", VMRES_SPACE_PIO, 0x10, 0, VMRES_ADDR_FIRST_FIT, 0);
	alloc_fails(sa, &q, 1, 2, VMRES_EKIND, 0);
	q = rq_mmio("mmio32", 0, 0);
	alloc_fails(sa, &q, 1, 2, VMRES_ESIZE, 0);
	q = rq_msi("msi", 0, false, true, 0);
	alloc_fails(sa, &q, 1, 2, VMRES_ESIZE, 0);
	q = rq_msi("msi", 3, true, true, 0);
	alloc_fails(sa, &q, 1, 2, VMRES_EALIGN, 0);
	q = rq_mmio("mmio32", 0x1000, 3);
	alloc_fails(sa, &q, 1, 2, VMRES_EALIGN, 0);
	q = rq_msi("msi", 4, true, false, 26);
	alloc_fails(sa, &q, 1, 2, VMRES_EMISALIGNED, 0);
	q = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_EXACT, 0xc0000800);
	alloc_fails(sa, &q, 1, 2, VMRES_EMISALIGNED, 0);
	q = rq_irq("gsi", false, 24);
	alloc_fails(sa, &q, 1, 2, VMRES_ERANGE, 0);
	q = rq_id("ids", false, 1024);
	alloc_fails(sa, &q, 1, 2, VMRES_ERANGE, 0);
	q = rq_msi("msi", 2, false, false, 4095); /* 4095-4096 leaves the pool */
	alloc_fails(sa, &q, 1, 2, VMRES_ERANGE, 0);
	q = rq_msi("msi", 1, false, false, 23);
	alloc_fails(sa, &q, 1, 2, VMRES_ERANGE, 0);
	q = rq_exact("mmio32", VMRES_SPACE_MMIO, 0xbffff000, 0x1000);
	alloc_fails(sa, &q, 1, 2, VMRES_ERANGE, 0);
	q = rq_exact("pio", VMRES_SPACE_PIO, 0x3fc, 2);
	alloc_fails(sa, &q, 1, 2, VMRES_EOVERLAP, 0);
	q = rq_irq("gsi", false, 4);
	alloc_fails(sa, &q, 1, 2, VMRES_EOVERLAP, 0);
	q = rq_id("ids", false, 9);
	alloc_fails(sa, &q, 1, 2, VMRES_EOVERLAP, 0);
	q = rq_exact("mmio32", VMRES_SPACE_MMIO, 0xfffffffffffff000, 0x2000);
	alloc_fails(sa, &q, 1, 2, VMRES_EOVERFLOW, 0);
	q = rq_mmio("mmio32", 0x80000000, 0); /* larger than the 1 GiB window */
	alloc_fails(sa, &q, 1, 2, VMRES_ENOSPC, 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "one", VMRES_RES_ID, 5, 5), 0);
	q = rq_id("one", true, 0);
	alloc_ok(sa, &q, 1, 1, out);
	alloc_fails(sa, &q, 1, 2, VMRES_ENOSPC, 0);
	q = rq_id("ids", true, 0);
	q.kind = (enum vmres_res_kind)77;
	alloc_fails(sa, &q, 1, 2, VMRES_EINVAL, 0);
	q = rq_mmio("mmio32", 0x1000, 0);
	q.u.addr.req.version = 99;
	alloc_fails(sa, &q, 1, 2, VMRES_EINVAL, 0);

	/* more resources than room in out[]: nothing is allocated */
	struct vmres_request big[3] = {rq_irq("gsi", true, 0),
				       rq_msi("msi", OUT_CAP - 1, false, true, 0),
				       rq_id("ids", true, 0)};
	alloc_fails(sa, big, 3, 2, VMRES_EFULL, 2);

	/* NULL pointers */
	size_t n_out = 5;
	struct vmres_sysalloc_error err = {0, 0};

	q = rq_id("ids", true, 0);
	assert_int_equal(vmres_sysalloc_alloc(NULL, &q, 1, 1, out, OUT_CAP, &n_out, &err),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_alloc(sa, NULL, 1, 1, out, OUT_CAP, &n_out, &err),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 1, NULL, OUT_CAP, &n_out, &err),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 1, out, OUT_CAP, NULL, &err),
			 VMRES_EINVAL);
	assert_int_equal(n_out, 5);
	vmres_sysalloc_free(sa);
}

static void test_failed_batch_gives_back_everything_it_took(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP], again[OUT_CAP];
	struct vmres_request pre[2] = {rq_irq("gsi", false, 6), rq_mmio("mmio32", 0x3000, 0)};
	struct vmres_request batch[6] = {
		rq_mmio("mmio32", 0x1000, 0x1000),
		rq_msi("msi", 4, true, true, 0),
		rq_irq("gsi", true, 0),
		rq_exact("pio", VMRES_SPACE_PIO, 0x500, 0x10),
		rq_msi("msi", 3, false, true, 0),
		rq_id("ids", true, 0),
	};
	size_t n;

	alloc_ok(sa, pre, 2, 1, out);
	/* fail at every position in turn by making that request impossible */
	for (size_t bad = 0; bad < 6; bad++) {
		struct vmres_request q[6];

		memcpy(q, batch, sizeof(q));
		strcpy(q[bad].pool, "nosuch");
		alloc_fails(sa, q, 6, 2, VMRES_EPOOL, bad);
	}
	/* a conflict between two requests of one batch: the second fails */
	struct vmres_request clash[3] = {rq_id("ids", false, 3), rq_msi("msi", 2, false, true, 0),
					 rq_id("ids", false, 3)};
	alloc_fails(sa, clash, 3, 2, VMRES_EOVERLAP, 2);

	/* after all the failures, the same batch gets what a fresh allocator gives */
	n = alloc_ok(sa, batch, 6, 2, out);
	assert_int_equal(n, 1 + 4 + 1 + 1 + 3 + 1);
	struct vmres_sysalloc *fresh = small_sa();

	alloc_ok(fresh, pre, 2, 1, again);
	assert_int_equal(alloc_ok(fresh, batch, 6, 2, again), n);
	for (size_t i = 0; i < n; i++)
		assert_true(vmres_resource_equal(&out[i], &again[i]));
	char *a = dump(sa), *b = dump(fresh);

	assert_string_equal(a, b);
	free(a);
	free(b);
	vmres_sysalloc_free(fresh);
	vmres_sysalloc_free(sa);
}

static void test_failed_separate_msi_vectors_are_all_given_back(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q = rq_msi("m", 5, false, true, 0);

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "m", VMRES_RES_MSI, 0, 3), 0);
	/* four vectors fit, the fifth does not: the four are given back */
	alloc_fails(sa, &q, 1, 1, VMRES_ENOSPC, 0);
	q.u.msi.count = 4;
	assert_int_equal(alloc_ok(sa, &q, 1, 1, out), 4);
	vmres_sysalloc_free(sa);
}

/* ---- release ---- */

static void test_release_checks_pool_kind_owner_and_double_free(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP], r;
	struct vmres_request q[4] = {rq_mmio("mmio32", 0x1000, 0), rq_irq("gsi", true, 0),
				     rq_msi("msi", 2, true, true, 0), rq_id("ids", true, 0)};

	assert_int_equal(alloc_ok(sa, q, 4, 5, out), 5);

	r = out[0];
	strcpy(r.pool, "nosuch");
	release_fails(sa, &r, 5, VMRES_EPOOL);
	r = out[0];
	r.u.addr.space = VMRES_SPACE_PIO;
	release_fails(sa, &r, 5, VMRES_EKIND);
	r = out[1];
	strcpy(r.pool, "ids");
	release_fails(sa, &r, 5, VMRES_EKIND);
	r = out[0];
	r.u.addr.size = 0x800; /* not what was handed out */
	release_fails(sa, &r, 5, VMRES_ENOENT);
	r = out[0];
	r.u.addr.base += 0x1000;
	release_fails(sa, &r, 5, VMRES_ENOENT);
	for (size_t i = 0; i < 5; i++)
		release_fails(sa, &out[i], 6, VMRES_EOWNER);
	assert_int_equal(vmres_sysalloc_release(NULL, &out[0], 5), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_release(sa, NULL, 5), VMRES_EINVAL);

	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(vmres_sysalloc_release(sa, &out[i], 5), 0);
		assert_int_equal(vmres_sysalloc_validate(sa), 0);
		release_fails(sa, &out[i], 5, VMRES_ENOENT);
	}
	/* all gone: the state is that of a fresh allocator */
	struct vmres_sysalloc *fresh = small_sa();
	char *a = dump(sa), *b = dump(fresh);

	assert_string_equal(a, b);
	free(a);
	free(b);
	vmres_sysalloc_free(fresh);
	vmres_sysalloc_free(sa);
}

static void test_moving_a_bar_is_alloc_exact_then_release(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP], moved[OUT_CAP];
	struct vmres_request q =
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	struct vmres_request to = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000,
					       VMRES_ADDR_EXACT, 0xe0000000);

	alloc_ok(sa, &q, 1, 9, out);
	alloc_ok(sa, &to, 1, 9, moved);
	assert_int_equal(vmres_sysalloc_release(sa, &out[0], 9), 0);
	struct vmres_sysalloc_alloc_info info;

	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xe0000fff, &info), 0);
	assert_true(vmres_resource_equal(&info.res, &moved[0]));
	assert_int_equal(info.owner, 9);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xc0000000, &info), VMRES_ENOENT);
	vmres_sysalloc_free(sa);
}

/* A prepared and committed move: the allocation (owner, label, alignment)
 * moves in its pool, onto itself, or into another pool's window. */
static void test_move_transaction_moves_the_allocation_whole(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_sysalloc_move mv;
	struct vmres_sysalloc_alloc_info info;
	struct vmres_resource r, now;
	char *before, *after;

	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio64", VMRES_SPACE_MMIO,
						      0x1000000000ull, 0x1fffffffffull),
			 0);
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio32", 0xc0000000, 0x2000, 0x2000, 9, "bar0", &r), 0);
	/* in its pool, by half its size: it overlaps its old place */
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 9, 0xc0001000, 0, &mv),
			 VMRES_EMISALIGNED);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 9, 0xc0002000, 0, &mv), 0);
	vmres_sysalloc_move_commit(sa, &mv, &now);
	assert_int_equal(now.u.addr.base, 0xc0002000);
	assert_string_equal(now.pool, "mmio32");
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xc0003fff, &info), 0);
	assert_int_equal(info.owner, 9);
	assert_string_equal(info.label, "bar0");
	assert_int_equal(info.res.u.addr.align, 0x2000);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xc0000000, &info), VMRES_ENOENT);
	/* into the 64-bit pool: the resource then names it */
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0x1000004000ull, 0, &mv), 0);
	vmres_sysalloc_move_commit(sa, &mv, &r);
	assert_string_equal(r.pool, "mmio64");
	assert_int_equal(vmres_sysalloc_find(sa, "mmio64", 0x1000004000ull, &info), 0);
	assert_string_equal(info.label, "bar0");
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &r, 9), 0);

	/* not held: the move is a new exact allocation, without a label */
	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_ADDR;
	r.u.addr.space = VMRES_SPACE_MMIO;
	r.u.addr.size = 0x1000;
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 5, 0xd0000000, 0, &mv), 0);
	vmres_sysalloc_move_commit(sa, &mv, &now);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);

	/* refusals and aborts change nothing */
	before = dump(sa);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 6, 0xd0000800, 0, &mv),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 5, 0xa0000000, 0, &mv),
			 VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 5, UINT64_MAX - 0x10, 0, &mv),
			 VMRES_EOVERFLOW);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, NULL, 5, 0, 0, &mv), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 5, 0xe0000000, 0, &mv), 0);
	vmres_sysalloc_move_abort(sa, &mv);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 77, 0xe0000000, 0, &mv), 0);
	vmres_sysalloc_move_abort(sa, &mv); /* a new record and owner, both dropped */
	after = dump(sa);
	assert_string_equal(before, after);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	free(before);
	free(after);
	vmres_sysalloc_free(sa);
}

/* A guest pool records what lies outside every window: the VMM's RAM and what
 * the guest placed there; its ranges and the ordinary windows never meet. */
static void test_guest_pool_takes_only_what_lies_outside_every_window(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_sysalloc_move mv;
	struct vmres_sysalloc_alloc_info info;
	struct vmres_resource r, ram, now;
	struct vmres_request q;
	char *before, *after;

	assert_int_equal(vmres_sysalloc_add_guest_pool(sa, "guest-mmio", VMRES_SPACE_MMIO), 0);
	assert_int_equal(vmres_sysalloc_add_guest_pool(sa, "guest2", VMRES_SPACE_MMIO),
			 VMRES_EEXIST);
	assert_int_equal(vmres_sysalloc_add_guest_pool(sa, "guest-pio", VMRES_SPACE_PIO), 0);
	assert_int_equal(vmres_sysalloc_add_guest_pool(sa, "bad", (enum vmres_space)9),
			 VMRES_EINVAL);
	/* the VMM's RAM: below the 32-bit window and above 4 GiB */
	assert_int_equal(vmres_sysalloc_reserve(sa, "guest-mmio", 0, 0x80000000, 0, 1, "ram", &ram),
			 0);
	assert_int_equal(vmres_sysalloc_reserve(sa, "guest-mmio", 0x100000000ull, 0x40000000, 0, 1,
						"ram-high", NULL),
			 0);
	/* not over a window, and only exact */
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "guest-mmio", 0xbffff000, 0x2000, 0, 1, NULL, NULL),
		VMRES_ERANGE);
	q = test_rq_addr("guest-mmio", VMRES_SPACE_MMIO, 0x1000, 0, VMRES_ADDR_FIRST_FIT, 0);
	alloc_fails(sa, &q, 1, 1, VMRES_EINVAL, 0);
	/* no pool may be added over one of its ranges */
	assert_int_equal(
		vmres_sysalloc_add_addr_pool(sa, "low", VMRES_SPACE_MMIO, 0x7ffff000, 0x80000fff),
		VMRES_EOVERLAP);
	assert_int_equal(
		vmres_sysalloc_add_addr_pool(sa, "gap", VMRES_SPACE_MMIO, 0x80000000, 0xbfffffff),
		0);
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "gap"), 0);

	/* a BAR in mmio32 moves out to where the guest put it, and back */
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio32", 0xc0000000, 0x1000, 0x1000, 9, "bar", &r), 0);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 9, 0x200000000ull, 0, &mv),
			 VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &r, 9, 0x200000000ull,
						     VMRES_SYSALLOC_MOVE_GUEST, &mv),
			 0);
	vmres_sysalloc_move_commit(sa, &mv, &now);
	assert_string_equal(now.pool, "guest-mmio");
	assert_int_equal(vmres_sysalloc_find(sa, "guest-mmio", 0x200000fffull, &info), 0);
	assert_int_equal(info.owner, 9);
	assert_string_equal(info.label, "bar");
	before = dump(sa);
	/* onto RAM, across a window's edge, or with unknown flags: refused */
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0x100001000ull,
						     VMRES_SYSALLOC_MOVE_GUEST, &mv),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0xbffff800,
						     VMRES_SYSALLOC_MOVE_GUEST, &mv),
			 VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0x300000000ull, 0x80, &mv),
			 VMRES_EINVAL);
	/* strict, a guest-placed range cannot move within the guest pool */
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0x300000000ull, 0, &mv),
			 VMRES_ERANGE);
	after = dump(sa);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(vmres_sysalloc_move_prepare(sa, &now, 9, 0xd0000000, 0, &mv), 0);
	vmres_sysalloc_move_commit(sa, &mv, &r);
	assert_string_equal(r.pool, "mmio32");
	assert_int_equal(vmres_sysalloc_find(sa, "guest-mmio", 0x200000000ull, &info),
			 VMRES_ENOENT);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &ram, 1), 0);
	vmres_sysalloc_free(sa);
}

/* A preset is a starting point: windows grow, shrink and go, but never strand
 * an allocation or meet another pool. */
static void test_pools_resize_and_remove_without_stranding_allocations(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_sysalloc_alloc_info info;
	struct vmres_resource r, id;
	struct vmres_request q = rq_id("ids", true, 0);
	char *before, *after;

	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio-hi", VMRES_SPACE_MMIO,
						      0x100000000ull, 0x1ffffffffull),
			 0);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0xd0000000, 0x1000, 0, 4, "x", &r),
			 0);
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio-hi", 0x180000000ull, 0x1000, 0, 5, "y", NULL), 0);
	alloc_ok(sa, &q, 1, 6, &id);
	before = dump(sa);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio32", 0xd0001000, 0xffffffff),
			 VMRES_ESTATE);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio32", 0xc0000000, 0x100000000ull),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "pio", 0, 0x10000), VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "ids", 0, 10), VMRES_EKIND);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "nope", 0, 10), VMRES_EPOOL);
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio32", 2, 1), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "mmio32"), VMRES_ESTATE);
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "nope"), VMRES_EPOOL);
	after = dump(sa);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* shrink around the allocation, then grow below it */
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio32", 0xd0000000, 0xd0000fff), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &info), 0);
	assert_int_equal(info.owner, 4);
	assert_string_equal(info.label, "x");
	assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio32", 0x80000000, 0xdfffffff), 0);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0x80000000, 0x1000, 0, 4, NULL, NULL),
			 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	/* remove an empty pool from the middle: every later pool's records stay found */
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "gsi"), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio-hi", 0x180000000ull, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_sysalloc_find(sa, "ids", id.u.id.id, &info), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &id, 6), 0);
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "ids"), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &r, 4), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);
}

/* vmres_sysalloc_reserve(): what was already chosen, in each kind of pool, with
 * its label; each error leaves the dump byte for byte as it was. */
static void test_reserve_takes_exactly_what_is_given(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_sysalloc_alloc_info info;
	struct vmres_resource r, back;
	char long_label[VMRES_SYSALLOC_LABEL_MAX + 1];
	char *before, *after;

	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio32", 0xfee00000, 0x1000, 0x1000, 7, "lapic", &r),
		0);
	assert_int_equal(r.kind, VMRES_RES_ADDR);
	assert_int_equal(r.u.addr.base, 0xfee00000);
	assert_int_equal(r.u.addr.size, 0x1000);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xfee00fff, &info), 0);
	assert_true(vmres_resource_equal(&info.res, &r));
	assert_int_equal(info.owner, 7);
	assert_string_equal(info.label, "lapic");
	assert_int_equal(vmres_sysalloc_reserve(sa, "pio", 0x3f8, 8, 0, 7, NULL, NULL), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "pio", 0x3ff, &info), 0);
	assert_null(info.label);
	assert_int_equal(vmres_sysalloc_reserve(sa, "gsi", 4, 0, 0, 7, "com1", &r), 0);
	assert_int_equal(r.kind, VMRES_RES_IRQ);
	assert_int_equal(r.u.irq.gsi, 4);
	assert_int_equal(vmres_sysalloc_reserve(sa, "msi", 100, 0, 0, 7, "", &r), 0);
	assert_int_equal(r.kind, VMRES_RES_MSI);
	assert_int_equal(r.u.msi.gsi, 100);
	assert_int_equal(vmres_sysalloc_reserve(sa, "ids", 1023, 0, 0, 7, "last", &r), 0);
	assert_int_equal(r.u.id.id, 1023);

	memset(long_label, 'x', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = '\0';
	before = dump(sa);
	memset(&back, 0x5a, sizeof(back));
	r = back;
	assert_int_equal(vmres_sysalloc_reserve(NULL, "gsi", 5, 0, 0, 7, NULL, &r), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_reserve(sa, NULL, 5, 0, 0, 7, NULL, &r), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_reserve(sa, "gsi", 5, 0, 0, 7, long_label, &r),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_reserve(sa, "nope", 5, 0, 0, 7, NULL, &r), VMRES_EPOOL);
	assert_int_equal(vmres_sysalloc_reserve(sa, "gsi", 4, 0, 0, 8, NULL, &r), VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_reserve(sa, "gsi", 24, 0, 0, 8, NULL, &r), VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_reserve(sa, "ids", 0x100000000ULL, 0, 0, 8, NULL, &r),
			 VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0xfee00800, 0x1000, 0, 8, NULL, &r),
			 VMRES_EOVERLAP);
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio32", 0xc0000800, 0x1000, 0x1000, 8, NULL, &r),
		VMRES_EMISALIGNED);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0xc0000000, 0, 0, 8, NULL, &r),
			 VMRES_ESIZE);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0xc0000000, 0x1000, 3, 8, NULL, &r),
			 VMRES_EALIGN);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", 0xfffff000, 0x2000, 0, 8, NULL, &r),
			 VMRES_ERANGE);
	assert_int_equal(vmres_sysalloc_reserve(sa, "mmio32", UINT64_MAX, 2, 0, 8, NULL, &r),
			 VMRES_EOVERFLOW);
	assert_memory_equal(&r, &back, sizeof(r));
	after = dump(sa);
	assert_string_equal(after, before);
	free(before);
	free(after);
	vmres_sysalloc_free(sa);
}

static int count_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	(void)a;
	(*(size_t *)ctx)++;
	return 0;
}

static void test_release_owner_frees_that_owner_only(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[3] = {rq_mmio("mmio32", 0x1000, 0), rq_msi("msi", 3, false, true, 0),
				     rq_id("ids", true, 0)};
	size_t n = 0;

	alloc_ok(sa, q, 3, 1, out);
	char *only_one = dump(sa);

	alloc_ok(sa, q, 3, 2, out);
	alloc_ok(sa, q, 2, 2, out);
	assert_int_equal(vmres_sysalloc_foreach_owner_alloc(sa, 2, count_alloc, &n), 0);
	assert_int_equal(n, 5 + 4);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 2), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	char *after = dump(sa);

	assert_string_equal(after, only_one);
	n = 0;
	assert_int_equal(vmres_sysalloc_foreach_owner_alloc(sa, 2, count_alloc, &n), 0);
	assert_int_equal(n, 0);
	/* an owner with nothing is fine, and changes nothing */
	assert_int_equal(vmres_sysalloc_release_owner(sa, 2), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 12345), 0);
	free(after);
	after = dump(sa);
	assert_string_equal(after, only_one);
	assert_int_equal(vmres_sysalloc_release_owner(NULL, 1), VMRES_EINVAL);
	free(after);
	free(only_one);
	vmres_sysalloc_free(sa);
}

/* ---- pools ---- */

static void test_add_pool_rejects_bad_names_windows_and_overlaps(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	char *before = dump(sa), *after;
	char long_name[VMRES_POOL_NAME_MAX + 1];

	memset(long_name, 'p', VMRES_POOL_NAME_MAX);
	long_name[VMRES_POOL_NAME_MAX] = '\0';
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "pio", VMRES_SPACE_MMIO, 0, 1),
			 VMRES_EEXIST);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "gsi", VMRES_RES_ID, 0, 1), VMRES_EEXIST);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "", VMRES_SPACE_MMIO, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, long_name, VMRES_SPACE_MMIO, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, long_name, VMRES_RES_ID, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, NULL, VMRES_SPACE_MMIO, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_addr_pool(NULL, "x", VMRES_SPACE_MMIO, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "x", VMRES_SPACE_MMIO, 2, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "x", (enum vmres_space)9, 0, 1),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "x", VMRES_RES_ID, 2, 1), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "x", VMRES_RES_ADDR, 0, 1), VMRES_EKIND);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "x", VMRES_SPACE_PIO, 0x10000, 0x10001),
			 VMRES_ERANGE);
	assert_int_equal(
		vmres_sysalloc_add_addr_pool(sa, "x", VMRES_SPACE_MMIO, 0xfffff000, 0x100000000),
		VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "x", VMRES_SPACE_PIO, 0xffff, 0xffff),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "x", VMRES_RES_MSI, 23, 23),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "x", VMRES_RES_IRQ, 4000, 5000),
			 VMRES_EOVERLAP);
	after = dump(sa);
	assert_string_equal(before, after);
	free(after);
	/* what may coexist: ID pools are separate namespaces; PIO and MMIO too */
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "slot", VMRES_RES_ID, 0, 31), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "low", VMRES_SPACE_MMIO, 0, 0xffff), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio64", VMRES_SPACE_MMIO, 0x100000000,
						      UINT64_MAX),
			 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "gsi2", VMRES_RES_IRQ, 4096, UINT32_MAX),
			 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	free(before);
	vmres_sysalloc_free(sa);
	vmres_sysalloc_free(NULL);
}

static void test_window_ending_at_the_top_of_the_space_works(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[3] = {
		test_rq_addr("top", VMRES_SPACE_MMIO, 0x1000, 0, VMRES_ADDR_LAST_FIT, 0),
		rq_id("all", false, UINT32_MAX), rq_id("all", true, 0)};

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "top", VMRES_SPACE_MMIO, 0, UINT64_MAX),
			 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "all", VMRES_RES_ID, 0, UINT32_MAX), 0);
	assert_int_equal(alloc_ok(sa, q, 3, 1, out), 3);
	assert_int_equal(out[0].u.addr.base, 0xfffffffffffff000);
	assert_int_equal(out[1].u.id.id, UINT32_MAX);
	assert_int_equal(out[2].u.id.id, 0);
	char *d = dump(sa);

	assert_string_equal(d, "pool top: mmio [0000000000000000-ffffffffffffffff]\n"
			       "  fffffffffffff000-ffffffffffffffff : owner 0x1\n"
			       "pool all: id [0-4294967295]\n"
			       "           0 : owner 0x1\n"
			       "  4294967295 : owner 0x1\n");
	free(d);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 1), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);
}

/* ---- names, labels, dumps ---- */

static void test_dump_shows_pools_owner_names_and_labels(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[5] = {rq_exact("pio", VMRES_SPACE_PIO, 0x3f8, 8),
				     rq_mmio("mmio32", 0x1000, 0x1000), rq_irq("gsi", false, 5),
				     rq_msi("msi", 2, true, true, 0), rq_id("ids", true, 0)};
	struct vmres_request other = rq_id("ids", false, 3);
	char *d;

	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, "virtio-net0"), 0);
	alloc_ok(sa, q, 5, 7, out);
	alloc_ok(sa, &other, 1, 9, out + 8);
	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 7, "com1"), 0);
	d = dump(sa);
	assert_string_equal(d, "pool pio: pio [0000-ffff]\n"
			       "  03f8-03ff : virtio-net0 com1\n"
			       "pool mmio32: mmio [c0000000-ffffffff]\n"
			       "  c0000000-c0000fff : virtio-net0\n"
			       "pool gsi: irq [0-23]\n"
			       "     5 : virtio-net0\n"
			       "pool msi: msi [24-4095]\n"
			       "    24 : virtio-net0\n"
			       "    25 : virtio-net0\n"
			       "pool ids: id [0-1023]\n"
			       "     0 : virtio-net0\n"
			       "     3 : owner 0x9\n");
	free(d);

	/* label errors: as release's, plus a too long label; nothing changes */
	char *before = dump(sa), *after;

	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 9, "x"), VMRES_EOWNER);
	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 7, "0123456789abcdef01234567"),
			 VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, ""), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, "0123456789abcdef01234567"),
			 VMRES_EINVAL);
	after = dump(sa);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* removing a name and a label */
	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 7, NULL), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, NULL), 0);
	d = dump(sa);
	assert_non_null(strstr(d, "  03f8-03ff : owner 0x7\n"));
	free(d);
	/* a named owner outlives its allocations */
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 9, "blk"), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 9), 0);
	alloc_ok(sa, &other, 1, 9, out);
	d = dump(sa);
	assert_non_null(strstr(d, "     3 : blk\n"));
	free(d);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);
}

static const json_t *find_pool_json(const json_t *root, const char *name)
{
	const json_t *pools = json_object_get(root, "pools");
	size_t i;
	json_t *p;

	json_array_foreach(pools, i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
			return p;
	}
	return NULL;
}

static void test_json_dump_parses_back_to_the_same_state(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[2] = {rq_msi("gsi-msi", 2, false, true, 0),
				     rq_mmio("mmio64", 0x4000, 0x4000)};
	json_error_t jerr;
	char *text = NULL;
	json_t *root;
	size_t n = 0;

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 0x42, "virtio-blk"), 0);
	alloc_ok(sa, q, 2, 0x42, out);
	assert_int_equal(vmres_sysalloc_dump_json(sa, &text), 0);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);

	/* every allocation appears once, in the pools foreach reports */
	size_t i, total = 0;
	json_t *p;

	json_array_foreach(json_object_get(root, "pools"), i, p)
	{
		total += json_array_size(json_object_get(p, "allocations"));
	}
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, count_alloc, &n), 0);
	assert_int_equal(total, n);
	assert_int_equal(json_array_size(json_object_get(root, "pools")), 6);

	const json_t *pio = find_pool_json(root, "pio");
	const json_t *com1 = NULL, *a;

	assert_non_null(pio);
	assert_string_equal(json_string_value(json_object_get(pio, "kind")), "addr");
	assert_string_equal(json_string_value(json_object_get(pio, "space")), "pio");
	assert_string_equal(json_string_value(json_object_get(pio, "last")), "0xffff");
	json_array_foreach(json_object_get(pio, "allocations"), i, a)
	{
		if (strcmp(json_string_value(json_object_get(a, "base")), "0x3f8") == 0)
			com1 = a;
	}
	assert_non_null(com1);
	assert_string_equal(json_string_value(json_object_get(com1, "last")), "0x3ff");
	assert_string_equal(json_string_value(json_object_get(com1, "size")), "0x8");
	assert_string_equal(json_string_value(json_object_get(com1, "owner")),
			    "0xffffffffffffffff");
	assert_string_equal(json_string_value(json_object_get(com1, "owner_name")), "platform");
	assert_string_equal(json_string_value(json_object_get(com1, "label")), "com1");

	const json_t *msi = find_pool_json(root, "gsi-msi");
	const json_t *allocs = json_object_get(msi, "allocations");

	assert_string_equal(json_string_value(json_object_get(msi, "kind")), "msi");
	assert_int_equal(json_integer_value(json_object_get(msi, "base")), 24);
	assert_int_equal(json_integer_value(json_object_get(msi, "last")), 4095);
	assert_int_equal(json_array_size(allocs), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(allocs, 1), "number")),
			 25);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(allocs, 0), "owner_name")),
		"virtio-blk");
	assert_true(json_is_null(json_object_get(json_array_get(allocs, 0), "label")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(allocs, 0), "owner")),
			    "0x42");

	const json_t *m64 = find_pool_json(root, "mmio64");

	assert_string_equal(json_string_value(json_object_get(m64, "base")), "0x1000000000");
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(m64, "allocations"), 0), "align")),
		"0x4000");
	json_decref(root);
	free(text);
	assert_int_equal(vmres_sysalloc_dump_json(NULL, &text), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_dump_json(sa, NULL), VMRES_EINVAL);
	vmres_sysalloc_free(sa);
}

/* ---- presets ---- */

static char *json_dump(const struct vmres_sysalloc *sa)
{
	char *s = NULL;

	assert_int_equal(vmres_sysalloc_dump_json(sa, &s), 0);
	assert_non_null(s);
	return s;
}

/* Pool names, owner names and labels must be text the dumps can carry: every
 * call that takes one refuses the rest with VMRES_EINVAL and changes nothing. */
static void test_names_and_labels_that_are_not_text_are_refused(void **state)
{
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP], keep, other;
	struct vmres_sysalloc_alloc_info info;
	struct vmres_request q[2];
	char *text, *json, *now;
	const char *bad;

	(void)state;
	q[0] = rq_mmio("mmio32", 0x1000, 0x1000);
	assert_int_equal(alloc_ok(sa, q, 1, 7, out), 1);
	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 7, "bar0"), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, "nic"), 0);
	text = dump(sa);
	json = json_dump(sa);
	memset(&keep, 0x5c, sizeof(keep));
	for (size_t i = 0; (bad = test_bad_name(i)) != NULL; i++) {
		assert_int_equal(vmres_sysalloc_add_addr_pool(sa, bad, VMRES_SPACE_MMIO, 0, 0xfff),
				 VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_add_id_pool(sa, bad, VMRES_RES_ID, 0, 1),
				 VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, bad), VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_set_owner_name(sa, 8, bad), VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 7, bad), VMRES_EINVAL);
		other = keep;
		assert_int_equal(
			vmres_sysalloc_reserve(sa, "mmio32", 0xc0100000, 0x1000, 0, 7, bad, &other),
			VMRES_EINVAL);
		assert_int_equal(
			vmres_sysalloc_reserve(sa, bad, 0xc0100000, 0x1000, 0, 7, NULL, &other),
			VMRES_EINVAL);
		assert_memory_equal(&other, &keep, sizeof(keep));
		q[0] = rq_id("ids", true, 0);
		q[1] = rq_id(bad, true, 0);
		alloc_fails(sa, q, 2, 7, VMRES_EINVAL, 1);
		other = out[0];
		snprintf(other.pool, sizeof(other.pool), "%s", bad);
		assert_int_equal(vmres_sysalloc_release(sa, &other, 7), VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_set_label(sa, &other, 7, "x"), VMRES_EINVAL);
		assert_int_equal(vmres_sysalloc_find(sa, bad, 0, &info), VMRES_EINVAL);

		now = dump(sa);
		assert_string_equal(now, text);
		free(now);
		now = json_dump(sa);
		assert_string_equal(now, json);
		free(now);
	}
	free(text);
	free(json);

	/* UTF-8 is text: taken, and the JSON dump carries it. */
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, TEST_UTF8_NAME, VMRES_RES_ID, 0, 7), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 9, TEST_UTF8_NAME), 0);
	assert_int_equal(
		vmres_sysalloc_reserve(sa, TEST_UTF8_NAME, 3, 0, 0, 9, TEST_UTF8_NAME, NULL), 0);
	assert_int_equal(vmres_sysalloc_find(sa, TEST_UTF8_NAME, 3, &info), 0);
	json = json_dump(sa);
	assert_non_null(strstr(json, "\"name\": \"" TEST_UTF8_NAME "\""));
	assert_non_null(strstr(json, "\"owner_name\": \"" TEST_UTF8_NAME "\""));
	assert_non_null(strstr(json, "\"label\": \"" TEST_UTF8_NAME "\""));
	free(json);
	vmres_sysalloc_free(sa);
}

/* json_failure_sweep()'s view of vmres_sysalloc_dump_json(). */
static int dump_sysalloc_json(void *obj, char **out)
{
	const struct vmres_sysalloc *x = obj;

	return vmres_sysalloc_dump_json(x, out);
}

static void test_json_dump_fails_cleanly_at_every_jansson_allocation(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_request q = rq_msi("gsi-msi", 2, false, true, 0);
	struct vmres_resource out[OUT_CAP];
	char *want;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(alloc_ok(sa, &q, 1, 7, out), 2);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, "nic"), 0);
	want = json_dump(sa);
	assert_true(json_failure_sweep(dump_sysalloc_json, sa, want) > 20);
	free(want);
	vmres_sysalloc_free(sa);
}

static void test_pc_preset_refuses_fixed_ports_mmio_and_gsis_twice(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q;

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	q = rq_exact("pio", VMRES_SPACE_PIO, 0x3f8, 8);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_exact("pio", VMRES_SPACE_PIO, 0xcfc, 4);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_exact("pio", VMRES_SPACE_PIO, 0x70, 1);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_irq("gsi-legacy", false, 4);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_irq("gsi-legacy", false, 0);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_exact("mmio32", VMRES_SPACE_MMIO, 0xfec00000, 0x1000);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_exact("mmio32", VMRES_SPACE_MMIO, 0xfee80000, 0x1000);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_irq("gsi-legacy", false, 24); /* an MSI GSI, not a legacy one */
	alloc_fails(sa, &q, 1, 1, VMRES_ERANGE, 0);
	q = rq_msi("gsi-msi", 1, false, false, 4096); /* past KVM's 4096 routes */
	alloc_fails(sa, &q, 1, 1, VMRES_ERANGE, 0);

	/* what is free goes to devices */
	struct vmres_request dev[6] = {
		rq_irq("gsi-legacy", true, 0),
		rq_msi("gsi-msi", 2, true, true, 0),
		rq_exact("pio", VMRES_SPACE_PIO, 0x3f0, 8),
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_LAST_FIT, 0),
		rq_id("device-id", true, 0),
		test_rq_addr("pio", VMRES_SPACE_PIO, 0x20, 0x20, VMRES_ADDR_FIRST_FIT, 0),
	};
	assert_int_equal(alloc_ok(sa, dev, 6, 1, out), 7);
	assert_int_equal(out[0].u.irq.gsi, 5);
	assert_int_equal(out[1].u.msi.gsi, 24);
	assert_int_equal(out[2].u.msi.gsi, 25);
	assert_int_equal(out[4].u.addr.base, 0xfffff000);
	assert_int_equal(out[5].u.id.id, 0);
	assert_int_equal(out[6].u.addr.base, 0x100); /* first 0x20-aligned gap after fpu */

	char *d = dump(sa);

	assert_non_null(strstr(d, "pool pio: pio [0000-ffff]\n  0000-001f : platform dma1\n"));
	assert_non_null(strstr(d, "  03f8-03ff : platform com1\n"));
	assert_non_null(strstr(d, "  0cf8-0cff : platform pci conf1\n"));
	assert_non_null(strstr(d, "  fee00000-feefffff : platform lapic/msi\n"));
	assert_non_null(strstr(d, "pool gsi-legacy: irq [0-23]\n     0 : platform timer\n"));
	assert_non_null(strstr(d, "     4 : platform com1\n"));
	assert_non_null(strstr(d, "pool gsi-msi: msi [24-4095]\n    24 : owner 0x1\n"));
	assert_non_null(strstr(d, "pool mmio64: mmio [1000000000-17ffffffff]\n"));
	free(d);

	char name[VMRES_POOL_NAME_MAX];

	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_MMIO, 0xfed00000, name), 0);
	assert_string_equal(name, "mmio32");
	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_MMIO, 0x1000000000, name), 0);
	assert_string_equal(name, "mmio64");
	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_PIO, 0x60, name), 0);
	assert_string_equal(name, "pio");
	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_MMIO, 0x1000, name),
			 VMRES_ENOENT);

	struct vmres_sysalloc_alloc_info info;

	assert_int_equal(vmres_sysalloc_find(sa, "pio", 0x64, &info), 0);
	assert_string_equal(info.label, "keyboard");
	assert_string_equal(info.owner_name, "platform");
	assert_int_equal(info.owner, VMRES_SYSALLOC_OWNER_PLATFORM);
	assert_int_equal(vmres_sysalloc_find(sa, "gsi-legacy", 8, &info), 0);
	assert_string_equal(info.label, "rtc");
	assert_int_equal(vmres_sysalloc_find(sa, "gsi-legacy", 9, &info), VMRES_ENOENT);
	assert_int_equal(vmres_sysalloc_find(sa, "nosuch", 9, &info), VMRES_EPOOL);

	/* a device may not give back what the platform owns */
	assert_int_equal(vmres_sysalloc_find(sa, "pio", 0x3f8, &info), 0);
	release_fails(sa, &info.res, 1, VMRES_EOWNER);
	vmres_sysalloc_free(sa);
}

static void test_aarch64_preset_has_spis_and_platform_mmio(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q;

	assert_int_equal(vmres_sysalloc_new_aarch64(&sa), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	q = rq_irq("gsi-spi", false, 33);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_irq("gsi-spi", false, 31); /* a PPI, not an SPI */
	alloc_fails(sa, &q, 1, 1, VMRES_ERANGE, 0);
	q = rq_irq("gsi-spi", false, 1020);
	alloc_fails(sa, &q, 1, 1, VMRES_ERANGE, 0);
	q = rq_exact("mmio32", VMRES_SPACE_MMIO, 0x09000000, 0x1000);
	alloc_fails(sa, &q, 1, 1, VMRES_EOVERLAP, 0);
	q = rq_exact("pio", VMRES_SPACE_PIO, 0x3f8, 8);
	alloc_fails(sa, &q, 1, 1, VMRES_EPOOL, 0);

	struct vmres_request dev[3] = {rq_irq("gsi-spi", true, 0), rq_irq("gsi-spi", true, 0),
				       rq_mmio("mmio32", 0x200, 0x200)};
	assert_int_equal(alloc_ok(sa, dev, 3, 1, out), 3);
	assert_int_equal(out[0].u.irq.gsi, 32);
	assert_int_equal(out[1].u.irq.gsi, 35);
	assert_int_equal(out[2].u.addr.base, 0x08010000); /* right after the distributor */

	char name[VMRES_POOL_NAME_MAX];

	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_MMIO, 0x8000000000, name), 0);
	assert_string_equal(name, "mmio64");
	assert_int_equal(vmres_sysalloc_find_pool(sa, VMRES_SPACE_MMIO, 0x40000000, name),
			 VMRES_ENOENT); /* RAM */
	assert_int_equal(vmres_sysalloc_new_aarch64(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_new_x86_64(NULL), VMRES_EINVAL);
	vmres_sysalloc_free(sa);
}

/* ---- enumeration and replay (what a snapshot does) ---- */

struct collected {
	struct vmres_sysalloc_pool_info pools[16];
	char pool_names[16][VMRES_POOL_NAME_MAX];
	size_t n_pools;
	struct vmres_sysalloc_alloc_info *allocs;
	char (*labels)[VMRES_SYSALLOC_LABEL_MAX];
	size_t n, cap;
};

static int collect_pool(void *ctx, const struct vmres_sysalloc_pool_info *p)
{
	struct collected *c = ctx;

	assert_true(c->n_pools < 16);
	c->pools[c->n_pools] = *p;
	strcpy(c->pool_names[c->n_pools], p->name);
	c->n_pools++;
	return 0;
}

static int collect_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct collected *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->allocs = realloc(c->allocs, c->cap * sizeof(*c->allocs));
		c->labels = realloc(c->labels, c->cap * sizeof(*c->labels));
		assert_non_null(c->allocs);
		assert_non_null(c->labels);
	}
	c->allocs[c->n] = *a;
	snprintf(c->labels[c->n], VMRES_SYSALLOC_LABEL_MAX, "%s", a->label ? a->label : "");
	c->n++;
	return 0;
}

struct owners {
	uint64_t owner[8], count[8];
	const char *name[8];
	size_t n;
};

static int collect_owner(void *ctx, uint64_t owner, const char *name, uint64_t count)
{
	struct owners *o = ctx;

	assert_true(o->n < 8);
	o->owner[o->n] = owner;
	o->name[o->n] = name;
	o->count[o->n] = count;
	o->n++;
	return 0;
}

static int stop_at_third(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	(void)a;
	return ++*(int *)ctx == 3 ? 42 : 0;
}

static void test_foreach_replay_rebuilds_the_same_state(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL, *copy = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[4] = {rq_msi("gsi-msi", 4, true, true, 0),
				     rq_mmio("mmio32", 0x3000, 0x1000),
				     rq_irq("gsi-legacy", true, 0), rq_id("device-id", true, 0)};
	struct collected c = {0};
	char *a, *b;

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	struct vmres_request share = rq_irq("gsi-legacy", false, 20);

	share.u.irq.shared = true;
	for (uint64_t owner = 1; owner <= 3; owner++)
		alloc_ok(sa, q, 4, owner, out);
	/* Shared lines: 20 joined by 3, 2, 1 (then 2 leaves), 21 twice by 1. */
	for (uint64_t owner = 3; owner >= 1; owner--)
		alloc_ok(sa, &share, 1, owner, out);
	share.u.irq.gsi = 21;
	alloc_ok(sa, &share, 1, 1, out);
	assert_int_equal(vmres_sysalloc_set_label(sa, &out[0], 1, "intb"), 0);
	alloc_ok(sa, &share, 1, 1, out);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 2), 0);
	assert_int_equal(vmres_sysalloc_foreach_pool(sa, collect_pool, &c), 0);
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, collect_alloc, &c), 0);
	/* The shares come at their number, in the order they joined. */
	size_t at = 0;

	while (at < c.n &&
	       (c.allocs[at].res.kind != VMRES_RES_IRQ || c.allocs[at].res.u.irq.gsi != 20))
		at++;
	assert_true(at + 4 <= c.n);
	assert_true(c.allocs[at].res.u.irq.shared && c.allocs[at].owner == 3);
	assert_true(c.allocs[at + 1].res.u.irq.shared && c.allocs[at + 1].owner == 1);
	assert_int_equal(c.allocs[at + 2].res.u.irq.gsi, 21);
	assert_string_equal(c.labels[at + 2], "intb");
	assert_int_equal(c.allocs[at + 3].res.u.irq.gsi, 21);
	assert_string_equal(c.labels[at + 3], "");
	assert_int_equal(c.n_pools, 6);
	assert_string_equal(c.pool_names[4], "gsi-msi");
	assert_int_equal(c.pools[4].kind, VMRES_RES_MSI);
	assert_int_equal(c.pools[4].base, 24);
	assert_int_equal(c.pools[4].last, 4095);
	assert_int_equal(c.pools[4].count, 8);

	/* rebuild: same pools, then every allocation as an exact/specific request */
	assert_int_equal(vmres_sysalloc_new(&copy), 0);
	for (size_t i = 0; i < c.n_pools; i++) {
		const struct vmres_sysalloc_pool_info *p = &c.pools[i];

		if (p->kind == VMRES_RES_ADDR)
			assert_int_equal(vmres_sysalloc_add_addr_pool(copy, c.pool_names[i],
								      p->space, p->base, p->last),
					 0);
		else
			assert_int_equal(vmres_sysalloc_add_id_pool(copy, c.pool_names[i], p->kind,
								    (uint32_t)p->base,
								    (uint32_t)p->last),
					 0);
	}
	assert_int_equal(
		vmres_sysalloc_set_owner_name(copy, VMRES_SYSALLOC_OWNER_PLATFORM, "platform"), 0);
	for (size_t i = 0; i < c.n; i++) {
		const struct vmres_resource *r = &c.allocs[i].res;
		struct vmres_request rq;

		switch (r->kind) {
		case VMRES_RES_ADDR:
			rq = test_rq_addr(r->pool, r->u.addr.space, r->u.addr.size, r->u.addr.align,
					  VMRES_ADDR_EXACT, r->u.addr.base);
			break;
		case VMRES_RES_IRQ:
			rq = rq_irq(r->pool, false, r->u.irq.gsi);
			rq.u.irq.shared = r->u.irq.shared;
			break;
		case VMRES_RES_MSI:
			rq = rq_msi(r->pool, 1, false, false, r->u.msi.gsi);
			break;
		default:
			rq = rq_id(r->pool, false, r->u.id.id);
			break;
		}
		assert_int_equal(alloc_ok(copy, &rq, 1, c.allocs[i].owner, out), 1);
		assert_true(vmres_resource_equal(&out[0], r));
		if (c.labels[i][0])
			assert_int_equal(
				vmres_sysalloc_set_label(copy, r, c.allocs[i].owner, c.labels[i]),
				0);
	}
	a = dump(sa);
	b = dump(copy);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(vmres_sysalloc_dump_json(sa, &a), 0);
	assert_int_equal(vmres_sysalloc_dump_json(copy, &b), 0);
	assert_string_equal(a, b);
	free(a);
	free(b);

	struct owners o = {0};

	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 77, "idle"), 0);
	assert_int_equal(vmres_sysalloc_foreach_owner(sa, collect_owner, &o), 0);
	assert_int_equal(o.n, 4); /* 1, 3, 77 (named, nothing held), platform */
	assert_int_equal(o.owner[0], 1);
	assert_int_equal(o.count[0], 4 + 3 + 3);
	assert_null(o.name[0]);
	assert_int_equal(o.owner[1], 3);
	assert_int_equal(o.owner[2], 77);
	assert_int_equal(o.count[2], 0);
	assert_string_equal(o.name[2], "idle");
	assert_int_equal(o.owner[3], VMRES_SYSALLOC_OWNER_PLATFORM);
	assert_string_equal(o.name[3], "platform");
	assert_int_equal(o.count[3], 16 + 4 + 8);
	assert_int_equal(vmres_sysalloc_foreach_owner(sa, NULL, NULL), VMRES_EINVAL);

	int seen = 0;

	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, stop_at_third, &seen), 42);
	assert_int_equal(seen, 3);
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, NULL, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_foreach_pool(NULL, collect_pool, &c), VMRES_EINVAL);
	free(c.allocs);
	free(c.labels);
	vmres_sysalloc_free(copy);
	vmres_sysalloc_free(sa);
}

/* ---- randomized differential test against a simple model ---- */

/*
 * The model keeps, per pool, a plain array of ranges (address pools) or an
 * owner per number (number pools), and finds room by walking candidates from
 * the bottom (first fit) or the top (last fit), jumping past whatever overlaps.
 * A batch is applied request by request with an undo log, as the contract says.
 */
#define M_RANGES 1024
#define M_NUMS	 64

struct m_range {
	uint64_t base, size, align, owner;
};

struct m_pool {
	const char *name;
	enum vmres_res_kind kind;
	enum vmres_space space;
	uint64_t base, last;
	struct m_range r[M_RANGES]; /* address pools, unsorted */
	size_t n;
	uint64_t owner[M_NUMS]; /* number pools: 0 = free */
};

struct m_undo {
	struct m_pool *pool;
	uint64_t key;
};

static struct m_pool m_pools[5] = {
	{"pio", VMRES_RES_ADDR, VMRES_SPACE_PIO, 0x0, 0xfff, {{0}}, 0, {0}},
	{"mmio", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x10000, 0x1ffff, {{0}}, 0, {0}},
	{"irq", VMRES_RES_IRQ, 0, 0, 31, {{0}}, 0, {0}},
	{"msi", VMRES_RES_MSI, 0, 32, 95, {{0}}, 0, {0}},
	{"id", VMRES_RES_ID, 0, 0, 63, {{0}}, 0, {0}},
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static int m_overlap(const struct m_pool *p, uint64_t base, uint64_t last)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].base <= last && base <= p->r[i].base + p->r[i].size - 1)
			return (int)i;
	return -1;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static int m_fit(const struct m_pool *p, const struct vmres_addr_req *q, uint64_t *base)
{
	uint64_t a = q->align > 1 ? q->align : 1;
	uint64_t lo = q->min > p->base ? q->min : p->base;
	uint64_t hi = q->max < p->last ? q->max : p->last;
	uint64_t cand;
	int k;

	if (hi < lo || hi - lo + 1 < q->size)
		return VMRES_ENOSPC;
	if (q->policy == VMRES_ADDR_FIRST_FIT) {
		for (cand = align_up(lo, a); cand + q->size - 1 <= hi;) {
			k = m_overlap(p, cand, cand + q->size - 1);
			if (k < 0) {
				*base = cand;
				return 0;
			}
			cand = align_up(p->r[k].base + p->r[k].size, a);
		}
		return VMRES_ENOSPC;
	}
	cand = (hi - q->size + 1) / a * a;
	while (cand >= lo) {
		k = m_overlap(p, cand, cand + q->size - 1);
		if (k < 0) {
			*base = cand;
			return 0;
		}
		if (p->r[k].base < q->size)
			break;
		cand = (p->r[k].base - q->size) / a * a;
	}
	return VMRES_ENOSPC;
}

static struct m_pool *m_pool(const char *name)
{
	for (size_t i = 0; i < 5; i++)
		if (strcmp(m_pools[i].name, name) == 0)
			return &m_pools[i];
	return NULL;
}

static void m_res(const struct m_pool *p, uint64_t key, const struct m_range *r,
		  struct vmres_resource *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = p->kind;
	strcpy(out->pool, p->name);
	switch (p->kind) {
	case VMRES_RES_ADDR:
		out->u.addr.space = p->space;
		out->u.addr.base = r->base;
		out->u.addr.size = r->size;
		out->u.addr.align = r->align;
		break;
	case VMRES_RES_IRQ:
		out->u.irq.gsi = (uint32_t)key;
		break;
	case VMRES_RES_MSI:
		out->u.msi.gsi = (uint32_t)key;
		break;
	default:
		out->u.id.id = (uint32_t)key;
		break;
	}
}

struct m_batch {
	struct m_undo undo[OUT_CAP];
	size_t n_undo;
	struct vmres_resource out[OUT_CAP];
};

static void m_take_number(struct m_batch *b, struct m_pool *p, uint64_t n, uint64_t owner)
{
	p->owner[n - p->base] = owner;
	b->undo[b->n_undo++] = (struct m_undo){p, n};
	m_res(p, n, NULL, &b->out[b->n_undo - 1]);
}

static bool m_free(const struct m_pool *p, uint64_t n)
{
	return p->owner[n - p->base] == 0;
}

static int m_lowest_free(const struct m_pool *p, uint64_t *n)
{
	for (uint64_t i = p->base; i <= p->last; i++)
		if (m_free(p, i)) {
			*n = i;
			return 0;
		}
	return VMRES_ENOSPC;
}

static int m_alloc_one(struct m_batch *b, const struct vmres_request *q, uint64_t owner)
{
	struct m_pool *p = m_pool(q->pool);
	uint64_t n = 0, base = 0;

	if (q->kind == VMRES_RES_ADDR) {
		const struct vmres_addr_req *a = &q->u.addr.req;
		int ret = 0;

		if (a->policy == VMRES_ADDR_EXACT) {
			base = a->addr;
			if (base < p->base || base + a->size - 1 > p->last)
				return VMRES_ERANGE;
			if (m_overlap(p, base, base + a->size - 1) >= 0)
				return VMRES_EOVERLAP;
		} else {
			ret = m_fit(p, a, &base);
			if (ret)
				return ret;
		}
		assert_true(p->n < M_RANGES);
		p->r[p->n++] = (struct m_range){base, a->size, a->align, owner};
		b->undo[b->n_undo++] = (struct m_undo){p, base};
		m_res(p, base, &p->r[p->n - 1], &b->out[b->n_undo - 1]);
		return 0;
	}
	if (q->kind == VMRES_RES_IRQ || q->kind == VMRES_RES_ID) {
		bool any = q->kind == VMRES_RES_IRQ ? q->u.irq.any : q->u.id.any;
		uint64_t want = q->kind == VMRES_RES_IRQ ? q->u.irq.gsi : q->u.id.id;

		if (any) {
			if (m_lowest_free(p, &n))
				return VMRES_ENOSPC;
		} else {
			if (want < p->base || want > p->last)
				return VMRES_ERANGE;
			if (!m_free(p, want))
				return VMRES_EOVERLAP;
			n = want;
		}
		m_take_number(b, p, n, owner);
		return 0;
	}
	/* MSI */
	uint32_t count = q->u.msi.count;

	if (q->u.msi.contiguous && (count & (count - 1)))
		return VMRES_EALIGN;
	if (!q->u.msi.any) {
		uint64_t first = q->u.msi.gsi;

		if (first < p->base || first + count - 1 > p->last)
			return VMRES_ERANGE;
		if (q->u.msi.contiguous && first % count)
			return VMRES_EMISALIGNED;
		for (uint64_t i = first; i < first + count; i++)
			if (!m_free(p, i))
				return VMRES_EOVERLAP;
		for (uint64_t i = first; i < first + count; i++)
			m_take_number(b, p, i, owner);
		return 0;
	}
	if (q->u.msi.contiguous) {
		for (uint64_t f = align_up(p->base, count); f + count - 1 <= p->last; f += count) {
			bool ok = true;

			for (uint64_t i = f; i < f + count; i++)
				ok = ok && m_free(p, i);
			if (ok) {
				for (uint64_t i = f; i < f + count; i++)
					m_take_number(b, p, i, owner);
				return 0;
			}
		}
		return VMRES_ENOSPC;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (m_lowest_free(p, &n))
			return VMRES_ENOSPC;
		m_take_number(b, p, n, owner);
	}
	return 0;
}

static void m_remove(struct m_pool *p, uint64_t key)
{
	if (p->kind != VMRES_RES_ADDR) {
		p->owner[key - p->base] = 0;
		return;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].base == key) {
			p->r[i] = p->r[--p->n];
			return;
		}
	fail_msg("model: no range at 0x%llx", (unsigned long long)key);
}

static int m_alloc(struct m_batch *b, const struct vmres_request *q, size_t n, uint64_t owner,
		   size_t *index)
{
	b->n_undo = 0;
	for (size_t i = 0; i < n; i++) {
		int ret = m_alloc_one(b, &q[i], owner);

		if (ret) {
			while (b->n_undo) {
				b->n_undo--;
				m_remove(b->undo[b->n_undo].pool, b->undo[b->n_undo].key);
			}
			*index = i;
			return ret;
		}
	}
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct m_range *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* The whole state, in foreach order: pools as added, each in address order. */
static void m_expect(struct collected *want)
{
	struct vmres_sysalloc_alloc_info info;

	want->n = 0;
	for (size_t i = 0; i < 5; i++) {
		struct m_pool *p = &m_pools[i];

		memset(&info, 0, sizeof(info));
		if (p->kind == VMRES_RES_ADDR) {
			struct m_range sorted[M_RANGES];

			memcpy(sorted, p->r, p->n * sizeof(sorted[0]));
			qsort(sorted, p->n, sizeof(sorted[0]), cmp_range);
			for (size_t j = 0; j < p->n; j++) {
				m_res(p, 0, &sorted[j], &info.res);
				info.owner = sorted[j].owner;
				collect_alloc(want, &info);
			}
			continue;
		}
		for (uint64_t n = p->base; n <= p->last; n++) {
			if (m_free(p, n))
				continue;
			m_res(p, n, NULL, &info.res);
			info.owner = p->owner[n - p->base];
			collect_alloc(want, &info);
		}
	}
}

static void compare_state(struct vmres_sysalloc *sa, struct collected *got, struct collected *want,
			  unsigned long step)
{
	got->n = 0;
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, collect_alloc, got), 0);
	m_expect(want);
	if (got->n != want->n)
		fail_msg("step %lu: %zu allocations, model has %zu", step, got->n, want->n);
	for (size_t i = 0; i < got->n; i++) {
		if (!vmres_resource_equal(&got->allocs[i].res, &want->allocs[i].res) ||
		    got->allocs[i].owner != want->allocs[i].owner) {
			char g[128], w[128];

			vmres_resource_format(&got->allocs[i].res, g, sizeof(g));
			vmres_resource_format(&want->allocs[i].res, w, sizeof(w));
			fail_msg("step %lu: entry %zu is %s (owner %llu), model %s (owner %llu)",
				 step, i, g, (unsigned long long)got->allocs[i].owner, w,
				 (unsigned long long)want->allocs[i].owner);
		}
	}
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
}

static uint64_t rnd_align(void)
{
	uint64_t k = rnd_below(10);

	return k == 0 ? 0 : (uint64_t)1 << (k - 1); /* 0, 1, 2, ..., 0x100 */
}

static struct vmres_request rnd_request(void)
{
	struct m_pool *p = &m_pools[rnd_below(5)];
	uint64_t span = p->last - p->base + 1;
	struct vmres_request q;

	switch (p->kind) {
	case VMRES_RES_ADDR: {
		uint64_t size = 1 + rnd_below(rnd_below(4) ? 0x100 : 0x1000);
		uint64_t align = rnd_align();
		uint64_t pick = rnd_below(4);

		if (pick == 0) {
			uint64_t a = align > 1 ? align : 1;
			uint64_t at = align_up(p->base + rnd_below(span + 0x100), a);

			return test_rq_addr(p->name, p->space, size, align, VMRES_ADDR_EXACT, at);
		}
		q = test_rq_addr(p->name, p->space, size, align,
				 pick == 1 ? VMRES_ADDR_LAST_FIT : VMRES_ADDR_FIRST_FIT, 0);
		if (rnd_below(3) == 0) {
			uint64_t x = p->base + rnd_below(span), y = p->base + rnd_below(span);

			q.u.addr.req.min = x < y ? x : y;
			q.u.addr.req.max = x < y ? y : x;
		}
		return q;
	}
	case VMRES_RES_IRQ:
		return rq_irq(p->name, rnd_below(2), (uint32_t)(p->base + rnd_below(span + 2)));
	case VMRES_RES_ID:
		return rq_id(p->name, rnd_below(2), (uint32_t)(p->base + rnd_below(span + 2)));
	default: {
		bool contiguous = rnd_below(2);
		uint32_t count = contiguous ? 1u << rnd_below(4) : 1 + (uint32_t)rnd_below(5);

		if (contiguous && rnd_below(20) == 0)
			count = 3; /* not a power of two */
		return rq_msi(p->name, count, contiguous, rnd_below(2),
			      (uint32_t)(p->base + rnd_below(span)));
	}
	}
}

/* Release one random allocation, sometimes as the wrong owner or twice. */
static void rnd_release(struct vmres_sysalloc *sa, struct collected *want, unsigned long step)
{
	if (want->n == 0)
		return;
	const struct vmres_sysalloc_alloc_info *a = &want->allocs[rnd_below(want->n)];
	struct vmres_resource r = a->res;
	uint64_t owner = a->owner;
	int ret;

	if (rnd_below(10) == 0) {
		assert_int_equal(vmres_sysalloc_release(sa, &r, owner % 4 + 1), VMRES_EOWNER);
		return;
	}
	r.u.msi.msg.data = (uint32_t)rnd(); /* the message is not part of the identity */
	if (r.kind != VMRES_RES_MSI)
		r = a->res;
	ret = vmres_sysalloc_release(sa, &r, owner);
	if (ret)
		fail_msg("step %lu: release: %s", step, vmres_errname(ret));
	m_remove(m_pool(r.pool), r.kind == VMRES_RES_ADDR  ? r.u.addr.base
				 : r.kind == VMRES_RES_IRQ ? r.u.irq.gsi
				 : r.kind == VMRES_RES_MSI ? r.u.msi.gsi
							   : r.u.id.id);
	if (rnd_below(4) == 0)
		assert_int_equal(vmres_sysalloc_release(sa, &r, owner), VMRES_ENOENT);
}

static void test_random_mixed_requests_match_a_simple_model(void **state)
{
	(void)state;
	const uint64_t seed = 0x5eed5a11c0ffeeull;
	struct vmres_sysalloc *sa = NULL;
	struct collected got = {0}, want = {0};
	struct m_batch b;
	unsigned long step;
	unsigned long fails = 0, oks = 0;

	printf("test_random_mixed_requests_match_a_simple_model: seed 0x%llx\n",
	       (unsigned long long)seed);
	rng_state = seed;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	for (size_t i = 0; i < 5; i++) {
		struct m_pool *p = &m_pools[i];

		p->n = 0;
		memset(p->owner, 0, sizeof(p->owner));
		if (p->kind == VMRES_RES_ADDR)
			assert_int_equal(vmres_sysalloc_add_addr_pool(sa, p->name, p->space,
								      p->base, p->last),
					 0);
		else
			assert_int_equal(vmres_sysalloc_add_id_pool(sa, p->name, p->kind,
								    (uint32_t)p->base,
								    (uint32_t)p->last),
					 0);
	}
	for (step = 0; step < 10000; step++) {
		uint64_t op = rnd_below(100);

		if (op < 60) {
			struct vmres_request q[4];
			struct vmres_resource out[OUT_CAP];
			struct vmres_sysalloc_error err = {0, 0};
			size_t n = 1 + rnd_below(4), n_out = 0, m_index = 0;
			uint64_t owner = 1 + rnd_below(4);
			int m_ret, ret;

			for (size_t i = 0; i < n; i++)
				q[i] = rnd_request();
			m_ret = m_alloc(&b, q, n, owner, &m_index);
			ret = vmres_sysalloc_alloc(sa, q, n, owner, out, OUT_CAP, &n_out, &err);
			if (ret != m_ret || (ret && err.index != m_index)) {
				char text[128];

				vmres_request_format(&q[m_ret ? m_index : err.index], text,
						     sizeof(text));
				fail_msg("step %lu: alloc returned %s at %zu, model %s at %zu (%s)",
					 step, vmres_errname(ret), err.index, vmres_errname(m_ret),
					 m_index, text);
			}
			if (!ret) {
				assert_int_equal(n_out, b.n_undo);
				for (size_t i = 0; i < n_out; i++)
					assert_true(vmres_resource_equal(&out[i], &b.out[i]));
				oks++;
			} else {
				fails++;
			}
		} else if (op < 97) {
			rnd_release(sa, &want, step);
		} else {
			uint64_t owner = 1 + rnd_below(4);

			assert_int_equal(vmres_sysalloc_release_owner(sa, owner), 0);
			for (size_t i = 0; i < 5; i++) {
				struct m_pool *p = &m_pools[i];

				for (size_t j = 0; j < p->n;)
					if (p->r[j].owner == owner)
						p->r[j] = p->r[--p->n];
					else
						j++;
				for (size_t j = 0; j < M_NUMS; j++)
					if (p->owner[j] == owner)
						p->owner[j] = 0;
			}
		}
		compare_state(sa, &got, &want, step);
	}
	printf("  %lu batches allocated, %lu refused\n", oks, fails);
	assert_true(oks > 2000 && fails > 1000); /* both paths were exercised */
	free(got.allocs);
	free(got.labels);
	free(want.allocs);
	free(want.labels);
	vmres_sysalloc_free(sa);
}

/* ---- shared legacy lines ---- */

static struct vmres_request rq_shared(const char *pool, bool any, uint32_t gsi)
{
	struct vmres_request q = rq_irq(pool, any, gsi);

	q.u.irq.shared = true;
	return q;
}

/* One shared request of @p owner; returns the GSI it got. */
static uint32_t share_ok(struct vmres_sysalloc *sa, const char *pool, bool any, uint32_t gsi,
			 uint64_t owner)
{
	struct vmres_request q = rq_shared(pool, any, gsi);
	struct vmres_resource out[OUT_CAP];

	assert_int_equal(alloc_ok(sa, &q, 1, owner, out), 1);
	assert_int_equal(out[0].kind, VMRES_RES_IRQ);
	assert_true(out[0].u.irq.shared);
	assert_string_equal(out[0].pool, pool);
	return out[0].u.irq.gsi;
}

struct sharers {
	uint64_t owner[32];
	size_t n;
	bool all_shared;
};

static int collect_sharer(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct sharers *o = ctx;

	if (!a->res.u.irq.shared)
		o->all_shared = false;
	if (o->n < 32)
		o->owner[o->n] = a->owner;
	o->n++;
	return 0;
}

static struct sharers sharers_of(const struct vmres_sysalloc *sa, const char *pool, uint32_t gsi)
{
	struct sharers o = {.all_shared = true};

	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, pool, gsi, collect_sharer, &o), 0);
	return o;
}

struct pool_count {
	const char *name;
	uint64_t count;
};

static int find_pool_count(void *ctx, const struct vmres_sysalloc_pool_info *p)
{
	struct pool_count *c = ctx;

	if (strcmp(p->name, c->name) == 0)
		c->count = p->count;
	return 0;
}

static uint64_t pool_count(const struct vmres_sysalloc *sa, const char *pool)
{
	struct pool_count c = {pool, UINT64_MAX};

	assert_int_equal(vmres_sysalloc_foreach_pool(sa, find_pool_count, &c), 0);
	return c.count;
}

static void test_shared_requests_put_twenty_devices_on_four_lines_least_shared_first(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct sharers o;

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "intx", VMRES_RES_IRQ, 16, 19), 0);
	/* The four free lines first, then round and round, lowest first on ties. */
	for (uint64_t dev = 1; dev <= 20; dev++)
		assert_int_equal(share_ok(sa, "intx", true, 0, dev), 16 + (dev - 1) % 4);
	for (uint32_t gsi = 16; gsi <= 19; gsi++) {
		o = sharers_of(sa, "intx", gsi);
		assert_int_equal(o.n, 5);
		assert_true(o.all_shared);
		for (size_t i = 0; i < 5; i++) /* in the order they joined */
			assert_int_equal(o.owner[i], gsi - 16 + 1 + 4 * i);
	}
	assert_int_equal(pool_count(sa, "intx"), 20); /* every share counts */
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);

	/* A PC: the 16 free legacy GSIs become lines, the 17th device shares GSI 5. */
	static const uint32_t free_gsis[] = {5,	 6,  7,	 9,  10, 11, 14, 15,
					     16, 17, 18, 19, 20, 21, 22, 23};
	struct vmres_request excl = rq_irq("gsi-legacy", true, 0);

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	for (uint64_t dev = 0; dev < 16; dev++)
		assert_int_equal(share_ok(sa, "gsi-legacy", true, 0, 100 + dev), free_gsis[dev]);
	assert_int_equal(share_ok(sa, "gsi-legacy", true, 0, 116), 5);
	assert_int_equal(share_ok(sa, "gsi-legacy", true, 0, 117), 6);
	/* No line is free any more for a device that wants one alone. */
	alloc_fails(sa, &excl, 1, 200, VMRES_ENOSPC, 0);
	vmres_sysalloc_free(sa);
}

static void test_a_shared_line_is_released_with_its_last_sharer(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource r;
	struct vmres_request excl = rq_irq("intx", false, 17);
	struct sharers o;
	char *d;

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "intx", VMRES_RES_IRQ, 16, 19), 0);
	for (uint64_t dev = 1; dev <= 12; dev++) /* three sharers per line */
		share_ok(sa, "intx", true, 0, dev);
	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_IRQ;
	strcpy(r.pool, "intx");
	r.u.irq.gsi = 17;
	r.u.irq.shared = true;
	/* Owner 6 (the middle sharer of 17) leaves: the others keep their order. */
	release_fails(sa, &r, 7, VMRES_EOWNER); /* 7 shares 19, not 17 */
	assert_int_equal(vmres_sysalloc_release(sa, &r, 6), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	o = sharers_of(sa, "intx", 17);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.owner[0], 2);
	assert_int_equal(o.owner[1], 10);
	release_fails(sa, &r, 6, VMRES_EOWNER); /* released twice */
	/* 17 is now the least-shared line: the next device goes there. */
	assert_int_equal(share_ok(sa, "intx", true, 0, 13), 17);
	/* release_owner takes an owner's shares too; the line lives on. */
	assert_int_equal(vmres_sysalloc_release_owner(sa, 2), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 10), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	alloc_fails(sa, &excl, 1, 50, VMRES_EOVERLAP, 0);
	/* With its last sharer the number goes back to the pool. */
	assert_int_equal(vmres_sysalloc_release_owner(sa, 13), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "intx", 17, collect_sharer, &o),
			 VMRES_ENOENT);
	r.u.irq.shared = false;
	release_fails(sa, &r, 13, VMRES_ENOENT);
	d = dump(sa);
	assert_null(strstr(d, "    17 :"));
	free(d);
	alloc_ok(sa, &excl, 1, 50, &r);
	assert_false(r.u.irq.shared);
	assert_int_equal(pool_count(sa, "intx"), 9 + 1);
	/* Everything goes: the pool is empty and may be removed. */
	for (uint64_t dev = 1; dev <= 12; dev++)
		assert_int_equal(vmres_sysalloc_release_owner(sa, dev), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 50), 0);
	assert_int_equal(pool_count(sa, "intx"), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_int_equal(vmres_sysalloc_remove_pool(sa, "intx"), 0);
	vmres_sysalloc_free(sa);
}

static void test_exclusive_and_shared_requests_never_take_each_others_lines(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_resource out[OUT_CAP];
	struct vmres_request q[3];

	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "intx", VMRES_RES_IRQ, 16, 19), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "msi", VMRES_RES_MSI, 24, 31), 0);
	q[0] = rq_irq("intx", false, 16);
	alloc_ok(sa, q, 1, 1, out); /* 16: exclusive */
	assert_int_equal(share_ok(sa, "intx", false, 17, 2), 17);
	/* Each refusal returns its code and leaves dumps and validate unchanged. */
	q[0] = rq_shared("intx", false, 16);
	alloc_fails(sa, q, 1, 3, VMRES_EOVERLAP, 0); /* exclusive: never shared */
	q[0] = rq_irq("intx", false, 17);
	alloc_fails(sa, q, 1, 3, VMRES_EOVERLAP, 0); /* shared: never exclusive */
	q[0] = rq_shared("intx", false, 20);
	alloc_fails(sa, q, 1, 3, VMRES_ERANGE, 0);
	q[0] = rq_shared("msi", true, 0);
	q[0].kind = VMRES_RES_IRQ;
	alloc_fails(sa, q, 1, 3, VMRES_EKIND, 0);
	q[0] = rq_shared("nope", true, 0);
	alloc_fails(sa, q, 1, 3, VMRES_EPOOL, 0);
	/* A failing batch gives back the lines it made and the shares it joined. */
	q[0] = rq_shared("intx", true, 0);   /* makes line 18 */
	q[1] = rq_shared("intx", false, 17); /* joins 17 */
	q[2] = rq_irq("intx", false, 16);    /* taken */
	alloc_fails(sa, q, 3, 3, VMRES_EOVERLAP, 2);
	/* An exclusive "any" skips shared lines; a shared one skips held ones. */
	q[0] = rq_irq("intx", true, 0);
	alloc_ok(sa, q, 1, 4, out);
	assert_int_equal(out[0].u.irq.gsi, 18);
	assert_int_equal(share_ok(sa, "intx", true, 0, 5), 19);
	assert_int_equal(share_ok(sa, "intx", true, 0, 6), 17); /* 17 and 19: tie, lowest */
	/* No free line left: exclusive requests are refused, shared ones share. */
	q[0] = rq_irq("intx", true, 0);
	alloc_fails(sa, q, 1, 7, VMRES_ENOSPC, 0);
	assert_int_equal(share_ok(sa, "intx", true, 0, 7), 19);
	/* No free line and no shared one: nothing to share. */
	vmres_sysalloc_free(sa);
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(sa, "one", VMRES_RES_IRQ, 9, 9), 0);
	q[0] = rq_irq("one", true, 0);
	alloc_ok(sa, q, 1, 1, out);
	q[0] = rq_shared("one", true, 0);
	alloc_fails(sa, q, 1, 2, VMRES_ENOSPC, 0);
	/* An owner may hold two shares of one line (two functions of a device). */
	assert_int_equal(vmres_sysalloc_release_owner(sa, 1), 0);
	assert_int_equal(share_ok(sa, "one", true, 0, 1), 9);
	assert_int_equal(share_ok(sa, "one", false, 9, 1), 9);
	assert_int_equal(pool_count(sa, "one"), 2);
	assert_int_equal(vmres_sysalloc_release(sa, &out[0], 1), 0);
	assert_int_equal(pool_count(sa, "one"), 1);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);
}

static int count_all(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	(void)a;
	(*(size_t *)ctx)++;
	return 0;
}

static void test_dumps_and_iteration_show_every_sharer_in_join_order(void **state)
{
	(void)state;
	struct vmres_sysalloc *sa = small_sa();
	struct vmres_resource out[OUT_CAP], r;
	struct vmres_sysalloc_alloc_info info;
	struct vmres_request q = rq_irq("gsi", false, 5);
	json_error_t jerr;
	json_t *root, *allocs;
	size_t n = 0;
	char *d, *j;

	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 7, "virtio-net0"), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 8, "virtio-blk0"), 0);
	alloc_ok(sa, &q, 1, 7, out);
	/* No shared line yet: iteration for replay works. */
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, count_all, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(share_ok(sa, "gsi", false, 16, 8), 16);
	assert_int_equal(share_ok(sa, "gsi", false, 16, 7), 16);
	assert_int_equal(share_ok(sa, "gsi", false, 16, 9), 16);
	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_IRQ;
	strcpy(r.pool, "gsi");
	r.u.irq.gsi = 16;
	assert_int_equal(vmres_sysalloc_set_label(sa, &r, 7, "intx"), 0);
	assert_int_equal(vmres_sysalloc_set_label(sa, &r, 1, "intx"), VMRES_EOWNER);
	d = dump(sa);
	assert_string_equal(d, "pool pio: pio [0000-ffff]\n"
			       "pool mmio32: mmio [c0000000-ffffffff]\n"
			       "pool gsi: irq [0-23]\n"
			       "     5 : virtio-net0\n"
			       "    16 : virtio-blk0 [shared]\n"
			       "    16 : virtio-net0 intx [shared]\n"
			       "    16 : owner 0x9 [shared]\n"
			       "pool msi: msi [24-4095]\n"
			       "pool ids: id [0-1023]\n");
	free(d);
	assert_int_equal(vmres_sysalloc_dump_json(sa, &j), 0);
	root = json_loads(j, 0, &jerr);
	assert_non_null(root);
	allocs = json_object_get(find_pool_json(root, "gsi"), "allocations");
	assert_int_equal(json_array_size(allocs), 4);
	assert_null(json_object_get(json_array_get(allocs, 0), "shared"));
	for (size_t i = 1; i < 4; i++) {
		json_t *a = json_array_get(allocs, i);

		assert_int_equal(json_integer_value(json_object_get(a, "number")), 16);
		assert_true(json_is_true(json_object_get(a, "shared")));
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(allocs, 1), "owner")),
			    "0x8");
	assert_string_equal(json_string_value(json_object_get(json_array_get(allocs, 2), "label")),
			    "intx");
	json_decref(root);
	free(j);
	/* find gives the first sharer; an owner's iteration marks its share. */
	assert_int_equal(vmres_sysalloc_find(sa, "gsi", 16, &info), 0);
	assert_int_equal(info.owner, 8);
	assert_true(info.res.u.irq.shared);
	/* Iteration visits every share, as the dumps show them. */
	n = 0;
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, count_all, &n), 0);
	assert_int_equal(n, 4);
	n = 0;
	assert_int_equal(vmres_sysalloc_foreach_owner_alloc(sa, 7, count_all, &n), 0);
	assert_int_equal(n, 2);
	/* foreach_sharer's own errors */
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "gsi", 5, count_all, &n), VMRES_ENOENT);
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "gsi", 99, count_all, &n), VMRES_ENOENT);
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "msi", 24, count_all, &n), VMRES_EKIND);
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "nope", 16, count_all, &n), VMRES_EPOOL);
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "gsi", 16, NULL, &n), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_foreach_sharer(NULL, "gsi", 16, count_all, &n),
			 VMRES_EINVAL);
	int k = 0;

	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "gsi", 16, stop_at_third, &k), 42);
	for (uint64_t o = 7; o <= 9; o++)
		assert_int_equal(vmres_sysalloc_release(sa, &r, o), 0);
	n = 0;
	assert_int_equal(vmres_sysalloc_foreach_alloc(sa, count_all, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_sysalloc_free(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_requests_place_first_last_exact_and_in_subwindow),
		cmocka_unit_test(test_irq_requests_take_lowest_free_or_specific_gsi),
		cmocka_unit_test(test_msi_requests_yield_one_resource_per_vector),
		cmocka_unit_test(test_id_requests_take_lowest_free_or_specific_id),
		cmocka_unit_test(test_empty_batch_allocates_nothing),
		cmocka_unit_test(test_each_bad_request_has_its_own_error_and_changes_nothing),
		cmocka_unit_test(test_failed_batch_gives_back_everything_it_took),
		cmocka_unit_test(test_failed_separate_msi_vectors_are_all_given_back),
		cmocka_unit_test(test_release_checks_pool_kind_owner_and_double_free),
		cmocka_unit_test(test_moving_a_bar_is_alloc_exact_then_release),
		cmocka_unit_test(test_move_transaction_moves_the_allocation_whole),
		cmocka_unit_test(test_guest_pool_takes_only_what_lies_outside_every_window),
		cmocka_unit_test(test_pools_resize_and_remove_without_stranding_allocations),
		cmocka_unit_test(test_reserve_takes_exactly_what_is_given),
		cmocka_unit_test(test_release_owner_frees_that_owner_only),
		cmocka_unit_test(test_add_pool_rejects_bad_names_windows_and_overlaps),
		cmocka_unit_test(test_window_ending_at_the_top_of_the_space_works),
		cmocka_unit_test(test_dump_shows_pools_owner_names_and_labels),
		cmocka_unit_test(test_json_dump_parses_back_to_the_same_state),
		cmocka_unit_test(test_names_and_labels_that_are_not_text_are_refused),
		cmocka_unit_test(test_json_dump_fails_cleanly_at_every_jansson_allocation),
		cmocka_unit_test(test_pc_preset_refuses_fixed_ports_mmio_and_gsis_twice),
		cmocka_unit_test(test_aarch64_preset_has_spis_and_platform_mmio),
		cmocka_unit_test(test_foreach_replay_rebuilds_the_same_state),
		cmocka_unit_test(test_random_mixed_requests_match_a_simple_model),
		cmocka_unit_test(
			test_shared_requests_put_twenty_devices_on_four_lines_least_shared_first),
		cmocka_unit_test(test_a_shared_line_is_released_with_its_last_sharer),
		cmocka_unit_test(test_exclusive_and_shared_requests_never_take_each_others_lines),
		cmocka_unit_test(test_dumps_and_iteration_show_every_sharer_in_join_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
