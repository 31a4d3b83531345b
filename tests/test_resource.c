/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/resource.h>

/* Values built over different garbage, so that padding never matches. */
static void fill(void *p, size_t n, int byte)
{
	memset(p, byte, n);
}

static struct vmres_resource mmio_res(int garbage)
{
	struct vmres_resource r;

	fill(&r, sizeof(r), garbage);
	r.kind = VMRES_RES_ADDR;
	memset(r.pool, 0, sizeof(r.pool));
	strcpy(r.pool, "mmio32");
	r.u.addr.space = VMRES_SPACE_MMIO;
	r.u.addr.base = 0xfe000000;
	r.u.addr.size = 0x1000;
	r.u.addr.align = 0x1000;
	return r;
}

static struct vmres_resource msi_res(int garbage)
{
	struct vmres_resource r;

	fill(&r, sizeof(r), garbage);
	r.kind = VMRES_RES_MSI;
	memset(r.pool, garbage, sizeof(r.pool));
	strcpy(r.pool, "gsi-msi"); /* bytes after the NUL differ */
	r.u.msi.gsi = 24;
	r.u.msi.msg.addr_lo = 0xfee00000;
	r.u.msi.msg.addr_hi = 0;
	r.u.msi.msg.data = 0x4021;
	return r;
}

static struct vmres_resource small_res(enum vmres_res_kind kind, const char *pool, uint32_t n,
				       int garbage)
{
	struct vmres_resource r;

	fill(&r, sizeof(r), garbage);
	r.kind = kind;
	memset(r.pool, 0, sizeof(r.pool));
	strcpy(r.pool, pool);
	if (kind == VMRES_RES_IRQ) {
		r.u.irq.gsi = n;
		r.u.irq.shared = false; /* a field, not padding (since shared lines) */
	} else {
		r.u.id.id = n;
	}
	return r;
}

static void test_resource_equal_ignores_padding_and_bytes_after_the_pool_name(void **state)
{
	(void)state;
	struct vmres_resource a = mmio_res(0x00), b = mmio_res(0xa5);
	struct vmres_resource m1 = msi_res(0x00), m2 = msi_res(0x5a);
	struct vmres_resource i1 = small_res(VMRES_RES_IRQ, "gsi-legacy", 4, 0);
	struct vmres_resource i2 = small_res(VMRES_RES_IRQ, "gsi-legacy", 4, 0xff);
	struct vmres_resource d1 = small_res(VMRES_RES_ID, "device-id", 7, 0);
	struct vmres_resource d2 = small_res(VMRES_RES_ID, "device-id", 7, 0x11);

	assert_true(vmres_resource_equal(&a, &b));
	assert_true(vmres_resource_equal(&m1, &m2));
	assert_true(vmres_resource_equal(&i1, &i2));
	assert_true(vmres_resource_equal(&d1, &d2));
	assert_true(vmres_resource_equal(&a, &a));
}

static void test_resource_equal_sees_every_field(void **state)
{
	(void)state;
	struct vmres_resource a = mmio_res(0), b;

	b = a;
	b.kind = VMRES_RES_IRQ;
	assert_false(vmres_resource_equal(&a, &b));
	b = a;
	strcpy(b.pool, "mmio64");
	assert_false(vmres_resource_equal(&a, &b));
	b = a;
	b.u.addr.space = VMRES_SPACE_PIO;
	assert_false(vmres_resource_equal(&a, &b));
	b = a;
	b.u.addr.base++;
	assert_false(vmres_resource_equal(&a, &b));
	b = a;
	b.u.addr.size++;
	assert_false(vmres_resource_equal(&a, &b));
	b = a;
	b.u.addr.align = 0;
	assert_false(vmres_resource_equal(&a, &b));

	struct vmres_resource i = small_res(VMRES_RES_IRQ, "gsi-legacy", 16, 0), j = i;

	j.u.irq.shared = true; /* a share of line 16 is not line 16 held alone */
	assert_false(vmres_resource_equal(&i, &j));

	struct vmres_resource m = msi_res(0), n;

	n = m;
	n.u.msi.gsi++;
	assert_false(vmres_resource_equal(&m, &n));
	n = m;
	n.u.msi.msg.addr_lo ^= 4;
	assert_false(vmres_resource_equal(&m, &n));
	n = m;
	n.u.msi.msg.addr_hi = 1;
	assert_false(vmres_resource_equal(&m, &n));
	n = m;
	n.u.msi.msg.data++;
	assert_false(vmres_resource_equal(&m, &n));

	struct vmres_resource i1 = small_res(VMRES_RES_IRQ, "gsi-legacy", 4, 0);
	struct vmres_resource i2 = small_res(VMRES_RES_IRQ, "gsi-legacy", 5, 0);
	struct vmres_resource d1 = small_res(VMRES_RES_ID, "device-id", 7, 0);
	struct vmres_resource d2 = small_res(VMRES_RES_ID, "device-id", 8, 0);
	struct vmres_resource d3 = small_res(VMRES_RES_ID, "slot", 7, 0);

	assert_false(vmres_resource_equal(&i1, &i2));
	assert_false(vmres_resource_equal(&d1, &d2));
	assert_false(vmres_resource_equal(&d1, &d3));
}

static void test_resource_equal_rejects_null_and_unknown_kinds(void **state)
{
	(void)state;
	struct vmres_resource a = mmio_res(0), b = mmio_res(0);

	assert_false(vmres_resource_equal(NULL, &a));
	assert_false(vmres_resource_equal(&a, NULL));
	assert_false(vmres_resource_equal(NULL, NULL));
	a.kind = b.kind = (enum vmres_res_kind)99;
	assert_false(vmres_resource_equal(&a, &b));
}

static struct vmres_request addr_req(int garbage)
{
	struct vmres_request q;

	fill(&q, sizeof(q), garbage);
	q.kind = VMRES_RES_ADDR;
	memset(q.pool, 0, sizeof(q.pool));
	strcpy(q.pool, "mmio32");
	q.u.addr.space = VMRES_SPACE_MMIO;
	q.u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
	q.u.addr.req.size = 0x1000;
	q.u.addr.req.align = 0x1000;
	return q;
}

static struct vmres_request num_req(enum vmres_res_kind kind, bool any, uint32_t n, int garbage)
{
	struct vmres_request q;

	fill(&q, sizeof(q), garbage);
	q.kind = kind;
	memset(q.pool, 0, sizeof(q.pool));
	strcpy(q.pool, "p");
	switch (kind) {
	case VMRES_RES_IRQ:
		q.u.irq.any = any;
		q.u.irq.gsi = n;
		q.u.irq.shared = false;
		break;
	case VMRES_RES_MSI:
		q.u.msi.any = any;
		q.u.msi.gsi = n;
		q.u.msi.count = 2;
		q.u.msi.contiguous = true;
		break;
	default:
		q.u.id.any = any;
		q.u.id.id = n;
		break;
	}
	return q;
}

static void test_request_equal_sees_every_field_that_matters(void **state)
{
	(void)state;
	struct vmres_request a = addr_req(0), b = addr_req(0x77);

	assert_true(vmres_request_equal(&a, &b));
	b.u.addr.req.addr = 0x1234; /* ignored: not an exact request */
	assert_true(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.req.policy = VMRES_ADDR_LAST_FIT;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.req.size++;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.req.align = 0;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.req.min = 1;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.req.max = 0xffffffff;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	b.u.addr.space = VMRES_SPACE_PIO;
	assert_false(vmres_request_equal(&a, &b));
	b = a;
	strcpy(b.pool, "mmio64");
	assert_false(vmres_request_equal(&a, &b));
	a.u.addr.req.policy = b.u.addr.req.policy = VMRES_ADDR_EXACT;
	strcpy(b.pool, a.pool);
	a.u.addr.req.addr = 0x1000;
	b.u.addr.req.addr = 0x2000;
	assert_false(vmres_request_equal(&a, &b));

	static const enum vmres_res_kind kinds[] = {VMRES_RES_IRQ, VMRES_RES_MSI, VMRES_RES_ID};

	for (size_t i = 0; i < 3; i++) {
		struct vmres_request x = num_req(kinds[i], true, 5, 0);
		struct vmres_request y = num_req(kinds[i], true, 9, 0xee);

		assert_true(vmres_request_equal(&x, &y)); /* the number is unused for "any" */
		x = num_req(kinds[i], false, 5, 0);
		y = num_req(kinds[i], false, 9, 0);
		assert_false(vmres_request_equal(&x, &y));
		y = num_req(kinds[i], true, 5, 0);
		assert_false(vmres_request_equal(&x, &y));
		y = num_req(kinds[i], false, 5, 0x33);
		assert_true(vmres_request_equal(&x, &y));
	}
	struct vmres_request i1 = num_req(VMRES_RES_IRQ, true, 0, 0), i2 = i1;

	i2.u.irq.shared = true;
	assert_false(vmres_request_equal(&i1, &i2));

	struct vmres_request m1 = num_req(VMRES_RES_MSI, true, 0, 0), m2 = m1;

	m2.u.msi.count = 4;
	assert_false(vmres_request_equal(&m1, &m2));
	m2 = m1;
	m2.u.msi.contiguous = false;
	assert_false(vmres_request_equal(&m1, &m2));
	assert_false(vmres_request_equal(&m1, NULL));
	m1.kind = m2.kind = (enum vmres_res_kind)0;
	assert_false(vmres_request_equal(&m1, &m2));
}

static void expect_res(const struct vmres_resource *r, const char *want)
{
	char buf[128];
	int n = vmres_resource_format(r, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

static void expect_req(const struct vmres_request *q, const char *want)
{
	char buf[128];
	int n = vmres_request_format(q, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

static void test_resource_format_prints_each_kind(void **state)
{
	(void)state;
	struct vmres_resource r = mmio_res(0);

	expect_res(&r, "mmio mmio32 [0xfe000000-0xfe000fff] align 0x1000");
	r.u.addr.align = 1;
	r.u.addr.space = VMRES_SPACE_PIO;
	strcpy(r.pool, "pio");
	r.u.addr.base = 0x3f8;
	r.u.addr.size = 8;
	expect_res(&r, "pio pio [0x3f8-0x3ff]");
	r.u.addr.base = 0xfffffffffffff000;
	r.u.addr.size = 0x1000;
	expect_res(&r, "pio pio [0xfffffffffffff000-0xffffffffffffffff]");
	r = small_res(VMRES_RES_IRQ, "gsi-legacy", 4, 0);
	expect_res(&r, "irq gsi-legacy 4");
	r.u.irq.shared = true;
	expect_res(&r, "irq gsi-legacy 4 shared");
	r = msi_res(0);
	expect_res(&r, "msi gsi-msi 24 msg 0x00000000:fee00000/0x4021");
	r = small_res(VMRES_RES_ID, "device-id", 4294967295u, 0);
	expect_res(&r, "id device-id 4294967295");
	/* a pool name that fills its array without a NUL is printed up to the array */
	memset(r.pool, 'x', sizeof(r.pool));
	r.u.id.id = 1;
	expect_res(&r, "id xxxxxxxxxxxxxxxxxxxxxxxx 1");
}

static void test_request_format_prints_each_kind(void **state)
{
	(void)state;
	struct vmres_request q = addr_req(0);

	expect_req(&q, "mmio mmio32 size 0x1000 align 0x1000 first");
	q.u.addr.req.policy = VMRES_ADDR_LAST_FIT;
	q.u.addr.req.max = 0xffffffff;
	expect_req(&q, "mmio mmio32 size 0x1000 align 0x1000 last in [0x0-0xffffffff]");
	q.u.addr.req.policy = VMRES_ADDR_EXACT;
	q.u.addr.req.addr = 0xfe000000;
	q.u.addr.req.align = 0;
	q.u.addr.req.max = UINT64_MAX;
	expect_req(&q, "mmio mmio32 size 0x1000 at 0xfe000000");

	q = num_req(VMRES_RES_IRQ, true, 0, 0);
	strcpy(q.pool, "gsi-legacy");
	expect_req(&q, "irq gsi-legacy any");
	q.u.irq.any = false;
	q.u.irq.gsi = 4;
	expect_req(&q, "irq gsi-legacy 4");
	q.u.irq.shared = true;
	expect_req(&q, "irq gsi-legacy 4 shared");
	q.u.irq.any = true;
	expect_req(&q, "irq gsi-legacy any shared");
	q.u.irq.shared = false;

	q = num_req(VMRES_RES_MSI, true, 0, 0);
	strcpy(q.pool, "gsi-msi");
	expect_req(&q, "msi gsi-msi count 2 contiguous any");
	q.u.msi.contiguous = false;
	q.u.msi.any = false;
	q.u.msi.gsi = 24;
	q.u.msi.count = 3;
	expect_req(&q, "msi gsi-msi count 3 from 24");

	q = num_req(VMRES_RES_ID, true, 0, 0);
	strcpy(q.pool, "device-id");
	expect_req(&q, "id device-id any");
	q.u.id.any = false;
	q.u.id.id = 7;
	expect_req(&q, "id device-id 7");
}

static void test_format_truncates_like_snprintf(void **state)
{
	(void)state;
	struct vmres_resource r = small_res(VMRES_RES_IRQ, "gsi-legacy", 4, 0);
	struct vmres_request q = num_req(VMRES_RES_ID, false, 12345, 0);
	char buf[8];

	memset(buf, '#', sizeof(buf));
	assert_int_equal(vmres_resource_format(&r, buf, sizeof(buf)), 16);
	assert_string_equal(buf, "irq gsi");
	assert_int_equal(vmres_resource_format(&r, NULL, 0), 16);
	assert_int_equal(vmres_request_format(&q, NULL, 0), (int)strlen("id p 12345"));
	assert_int_equal(vmres_request_format(&q, buf, 5), (int)strlen("id p 12345"));
	assert_string_equal(buf, "id p");
}

static void test_format_rejects_null_and_unknown_kinds(void **state)
{
	(void)state;
	struct vmres_resource r = small_res(VMRES_RES_IRQ, "g", 4, 0);
	struct vmres_request q = num_req(VMRES_RES_ID, false, 1, 0);
	char buf[32] = "untouched";

	assert_int_equal(vmres_resource_format(NULL, buf, sizeof(buf)), VMRES_EINVAL);
	assert_int_equal(vmres_request_format(NULL, buf, sizeof(buf)), VMRES_EINVAL);
	assert_string_equal(buf, "untouched");
	assert_int_equal(vmres_resource_format(&r, NULL, 4), VMRES_EINVAL);
	r.kind = (enum vmres_res_kind)42;
	q.kind = (enum vmres_res_kind)0;
	assert_int_equal(vmres_resource_format(&r, buf, sizeof(buf)), VMRES_EINVAL);
	assert_int_equal(vmres_request_format(&q, buf, sizeof(buf)), VMRES_EINVAL);
}

static void test_kind_and_space_names(void **state)
{
	(void)state;
	assert_string_equal(vmres_res_kind_name(VMRES_RES_ADDR), "addr");
	assert_string_equal(vmres_res_kind_name(VMRES_RES_IRQ), "irq");
	assert_string_equal(vmres_res_kind_name(VMRES_RES_MSI), "msi");
	assert_string_equal(vmres_res_kind_name(VMRES_RES_ID), "id");
	assert_string_equal(vmres_res_kind_name((enum vmres_res_kind)0), "?");
	assert_string_equal(vmres_space_name(VMRES_SPACE_PIO), "pio");
	assert_string_equal(vmres_space_name(VMRES_SPACE_MMIO), "mmio");
	assert_string_equal(vmres_space_name((enum vmres_space)7), "?");
}

/* ---- initialisers ---- */

/* What every caller wrote before the macros: a memset and a pool-name copy. */
static struct vmres_request hand_request(enum vmres_res_kind kind, const char *pool)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = kind;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	return q;
}

static struct vmres_resource hand_resource(enum vmres_res_kind kind, const char *pool)
{
	struct vmres_resource r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	snprintf(r.pool, sizeof(r.pool), "%s", pool);
	return r;
}

/* Every member compared, also those vmres_request_equal() skips (a gsi with
 * any set), and every byte of the pool name; not padding. */
static void assert_request_same(const struct vmres_request *a, const struct vmres_request *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_memory_equal(a->pool, b->pool, sizeof(a->pool));
	switch (a->kind) {
	case VMRES_RES_ADDR:
		assert_int_equal(a->u.addr.space, b->u.addr.space);
		assert_memory_equal(&a->u.addr.req, &b->u.addr.req, sizeof(a->u.addr.req));
		break;
	case VMRES_RES_IRQ:
		assert_int_equal(a->u.irq.any, b->u.irq.any);
		assert_int_equal(a->u.irq.gsi, b->u.irq.gsi);
		assert_int_equal(a->u.irq.shared, b->u.irq.shared);
		break;
	case VMRES_RES_MSI:
		assert_int_equal(a->u.msi.count, b->u.msi.count);
		assert_int_equal(a->u.msi.contiguous, b->u.msi.contiguous);
		assert_int_equal(a->u.msi.any, b->u.msi.any);
		assert_int_equal(a->u.msi.gsi, b->u.msi.gsi);
		break;
	case VMRES_RES_ID:
		assert_int_equal(a->u.id.any, b->u.id.any);
		assert_int_equal(a->u.id.id, b->u.id.id);
		break;
	}
	assert_true(vmres_request_equal(a, b));
}

static void assert_resource_same(const struct vmres_resource *a, const struct vmres_resource *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_memory_equal(a->pool, b->pool, sizeof(a->pool));
	switch (a->kind) {
	case VMRES_RES_ADDR:
		assert_int_equal(a->u.addr.space, b->u.addr.space);
		assert_int_equal(a->u.addr.base, b->u.addr.base);
		assert_int_equal(a->u.addr.size, b->u.addr.size);
		assert_int_equal(a->u.addr.align, b->u.addr.align);
		break;
	case VMRES_RES_IRQ:
		assert_int_equal(a->u.irq.gsi, b->u.irq.gsi);
		assert_int_equal(a->u.irq.shared, b->u.irq.shared);
		break;
	case VMRES_RES_MSI:
		assert_int_equal(a->u.msi.gsi, b->u.msi.gsi);
		assert_memory_equal(&a->u.msi.msg, &b->u.msi.msg, sizeof(a->u.msi.msg));
		break;
	case VMRES_RES_ID:
		assert_int_equal(a->u.id.id, b->u.id.id);
		break;
	}
	assert_true(vmres_resource_equal(a, b));
}

static void test_request_initialisers_equal_the_hand_built_requests(void **state)
{
	struct vmres_request hand, q;
	struct vmres_addr_req def = VMRES_ADDR_REQ_INIT;

	(void)state;
	/* ADDR, first fit */
	hand = hand_request(VMRES_RES_ADDR, "mmio32");
	hand.u.addr.space = VMRES_SPACE_MMIO;
	hand.u.addr.req = def;
	hand.u.addr.req.size = 0x1000;
	hand.u.addr.req.align = 0x1000;
	q = VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	assert_request_same(&q, &hand);
	/* ADDR, exact */
	hand = hand_request(VMRES_RES_ADDR, "pio");
	hand.u.addr.space = VMRES_SPACE_PIO;
	hand.u.addr.req = def;
	hand.u.addr.req.policy = VMRES_ADDR_EXACT;
	hand.u.addr.req.addr = 0x3f8;
	hand.u.addr.req.size = 8;
	q = VMRES_REQUEST_ADDR_EXACT("pio", VMRES_SPACE_PIO, 0x3f8, 8);
	assert_request_same(&q, &hand);
	/* IRQ: any, specific, a share of any line, a share of a given line */
	hand = hand_request(VMRES_RES_IRQ, "gsi-legacy");
	hand.u.irq.any = true;
	q = VMRES_REQUEST_IRQ_ANY("gsi-legacy");
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_IRQ, "gsi-legacy");
	hand.u.irq.gsi = 4;
	q = VMRES_REQUEST_IRQ("gsi-legacy", 4);
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_IRQ, "gsi-legacy");
	hand.u.irq.any = true;
	hand.u.irq.shared = true;
	q = VMRES_REQUEST_IRQ_SHARED("gsi-legacy");
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_IRQ, "gsi-legacy");
	hand.u.irq.gsi = 11;
	hand.u.irq.shared = true;
	q = VMRES_REQUEST_IRQ_SHARED_GSI("gsi-legacy", 11);
	assert_request_same(&q, &hand);
	/* MSI: any (block or not), from a given GSI */
	hand = hand_request(VMRES_RES_MSI, "gsi-msi");
	hand.u.msi.count = 4;
	hand.u.msi.contiguous = true;
	hand.u.msi.any = true;
	q = VMRES_REQUEST_MSI("gsi-msi", 4, true);
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_MSI, "gsi-msi");
	hand.u.msi.count = 3;
	hand.u.msi.any = true;
	q = VMRES_REQUEST_MSI("gsi-msi", 3, false);
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_MSI, "gsi-msi");
	hand.u.msi.count = 2;
	hand.u.msi.gsi = 40;
	q = VMRES_REQUEST_MSI_AT("gsi-msi", 2, false, 40);
	assert_request_same(&q, &hand);
	/* ID: any, specific */
	hand = hand_request(VMRES_RES_ID, "device-id");
	hand.u.id.any = true;
	q = VMRES_REQUEST_ID_ANY("device-id");
	assert_request_same(&q, &hand);
	hand = hand_request(VMRES_RES_ID, "device-id");
	hand.u.id.id = 7;
	q = VMRES_REQUEST_ID("device-id", 7);
	assert_request_same(&q, &hand);
}

static void test_request_initialisers_fill_an_array(void **state)
{
	/* the README's use: an array initialiser in a function */
	struct vmres_request req[3] = {
		VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000),
		VMRES_REQUEST_MSI("gsi-msi", 2, false),
		VMRES_REQUEST_IRQ_SHARED("gsi-legacy"),
	};
	char buf[128];

	(void)state;
	assert_int_equal(req[0].kind, VMRES_RES_ADDR);
	assert_int_equal(req[0].u.addr.req.max, UINT64_MAX);
	assert_int_equal(req[0].u.addr.req.version, VMRES_ADDR_REQ_VERSION);
	assert_int_equal(req[1].u.msi.count, 2);
	assert_true(req[2].u.irq.shared);
	/* a pool name of the longest length fits with its NUL */
	req[0] = VMRES_REQUEST_ID_ANY("abcdefghijklmnopqrstuvw");
	assert_int_equal(strlen(req[0].pool), VMRES_POOL_NAME_MAX - 1);
	assert_true(vmres_request_format(&req[1], buf, sizeof(buf)) > 0);
}

static void test_resource_initialisers_equal_the_hand_built_resources(void **state)
{
	struct vmres_resource hand, r;

	(void)state;
	hand = hand_resource(VMRES_RES_ADDR, "mmio32");
	hand.u.addr.space = VMRES_SPACE_MMIO;
	hand.u.addr.base = 0xfe000000;
	hand.u.addr.size = 0x1000;
	r = VMRES_RESOURCE_ADDR("mmio32", VMRES_SPACE_MMIO, 0xfe000000, 0x1000);
	assert_resource_same(&r, &hand);
	hand = hand_resource(VMRES_RES_ADDR, "");
	hand.u.addr.space = VMRES_SPACE_PIO;
	hand.u.addr.base = 0xcf8;
	hand.u.addr.size = 8;
	r = VMRES_RESOURCE_ADDR("", VMRES_SPACE_PIO, 0xcf8, 8);
	assert_resource_same(&r, &hand);
	hand = hand_resource(VMRES_RES_IRQ, "gsi-legacy");
	hand.u.irq.gsi = 4;
	r = VMRES_RESOURCE_IRQ("gsi-legacy", 4);
	assert_resource_same(&r, &hand);
	hand = hand_resource(VMRES_RES_MSI, "gsi-msi");
	hand.u.msi.gsi = 24;
	r = VMRES_RESOURCE_MSI("gsi-msi", 24);
	assert_resource_same(&r, &hand);
	hand = hand_resource(VMRES_RES_ID, "device-id");
	hand.u.id.id = 9;
	r = VMRES_RESOURCE_ID("device-id", 9);
	assert_resource_same(&r, &hand);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resource_equal_ignores_padding_and_bytes_after_the_pool_name),
		cmocka_unit_test(test_resource_equal_sees_every_field),
		cmocka_unit_test(test_resource_equal_rejects_null_and_unknown_kinds),
		cmocka_unit_test(test_request_equal_sees_every_field_that_matters),
		cmocka_unit_test(test_resource_format_prints_each_kind),
		cmocka_unit_test(test_request_format_prints_each_kind),
		cmocka_unit_test(test_format_truncates_like_snprintf),
		cmocka_unit_test(test_format_rejects_null_and_unknown_kinds),
		cmocka_unit_test(test_kind_and_space_names),
		cmocka_unit_test(test_request_initialisers_equal_the_hand_built_requests),
		cmocka_unit_test(test_request_initialisers_fill_an_array),
		cmocka_unit_test(test_resource_initialisers_equal_the_hand_built_resources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
