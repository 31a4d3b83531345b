/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests of the PCI helper (include/vmres/pci.h): the configuration space on its
 * own, BAR and MSI changes against a deliberately simple mapper model, the
 * conf1 host, and the same changes through a real device manager and system
 * allocator (allocator, bus and dispatch checked against the BAR registers).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "helpers.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

static uint32_t rd(struct vmres_pci_func *f, unsigned int off, unsigned int size)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(vmres_pci_func_config_read(f, off, size, &v), 0);
	return v;
}

static void wr(struct vmres_pci_func *f, unsigned int off, unsigned int size, uint32_t val)
{
	assert_int_equal(vmres_pci_func_config_write(f, off, size, val), 0);
}

static void dump_space(struct vmres_pci_func *f, uint8_t out[VMRES_PCI_CONFIG_SIZE])
{
	for (unsigned int off = 0; off < VMRES_PCI_CONFIG_SIZE; off += 4) {
		uint32_t v = rd(f, off, 4);

		memcpy(out + off, &v, 4); /* test hosts are little-endian, as x86 and arm64 */
	}
}

static struct vmres_pci_bar_state bar_state(struct vmres_pci_func *f, unsigned int bar)
{
	struct vmres_pci_bar_state s;

	assert_int_equal(vmres_pci_func_bar_get(f, bar, &s), 0);
	return s;
}

/* A function with one BAR of each kind and a 64-bit maskable 4-vector MSI. */
enum { RES_MMIO32 = 0, RES_IO = 1, RES_MMIO64 = 2, RES_MSI = 3, N_RES = 7 };

static struct vmres_pci_func_config test_config(void)
{
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;

	c.vendor_id = 0x1af4;
	c.device_id = 0x10f0;
	c.class_code = 0xff0000;
	c.revision = 3;
	c.subsystem_vendor_id = 0x1af4;
	c.subsystem_id = 0x0042;
	c.interrupt_pin = 1;
	c.bars[0] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM32,
					   .size = 0x1000,
					   .addr = 0xc0000000,
					   .res_index = RES_MMIO32};
	c.bars[1] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_IO, .size = 0x20, .addr = 0x1000, .res_index = RES_IO};
	c.bars[2] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM64,
					   .prefetchable = true,
					   .size = 0x4000,
					   .addr = 0x1000000000ull,
					   .res_index = RES_MMIO64};
	c.msi = (struct vmres_pci_msi){
		.vectors = 4, .addr64 = true, .per_vector_mask = true, .res_index = RES_MSI};
	return c;
}

static struct vmres_pci_func *new_func(const struct vmres_pci_func_config *c)
{
	struct vmres_pci_func *f = NULL;

	assert_int_equal(vmres_pci_func_new(c, &f), 0);
	assert_non_null(f);
	return f;
}

/* ------------------------------------------------------------------------ */
/* the mapper model: ranges in windows, obstacles, alignment; nothing else   */

/* An inclusive range [base, last]. */
struct span {
	uint64_t base, last;
};

static bool span_contains(struct span r, struct span x)
{
	return x.base >= r.base && x.last <= r.last;
}

static bool span_overlaps(struct span a, struct span b)
{
	return a.base <= b.last && b.base <= a.last;
}

struct model_range {
	bool is_addr;
	bool pio;
	uint64_t base, size, align;
	bool mapped;
};

struct model {
	struct model_range r[N_RES];
	struct span obstacles[4]; /* other devices */
	unsigned int n_obstacles;
	unsigned int calls;
	unsigned int reroutes;
	struct vmres_msi_msg msi[N_RES];
	bool msi_set[N_RES];
	int fail_reroute;
	int fail_unmap;
};

static const struct span mmio_windows[] = {
	{0xc0000000u, 0xffffffffu},
	{0x1000000000ull, 0x17ffffffffull},
};
static const struct span pio_window = {0x1000, 0xffff};

static int model_check(const struct model *m, unsigned int res, uint64_t base)
{
	const struct model_range *r = &m->r[res];
	struct span want = {base, base + r->size - 1};
	bool inside = false;

	if (r->align > 1 && (base & (r->align - 1)))
		return VMRES_EMISALIGNED;
	if (want.last < want.base)
		return VMRES_ERANGE;
	if (r->pio)
		inside = span_contains(pio_window, want);
	for (unsigned int i = 0; !r->pio && i < 2; i++)
		inside |= span_contains(mmio_windows[i], want);
	if (!inside)
		return VMRES_ERANGE;
	for (unsigned int i = 0; i < m->n_obstacles; i++)
		if (span_overlaps(m->obstacles[i], want))
			return VMRES_EOVERLAP;
	for (unsigned int i = 0; i < N_RES; i++) {
		const struct model_range *o = &m->r[i];

		/* every range is reserved where it is, mapped or not */
		if (i == res || !o->is_addr || !o->base || o->pio != r->pio)
			continue;
		if (span_overlaps((struct span){o->base, o->base + o->size - 1}, want))
			return VMRES_EOVERLAP;
	}
	return 0;
}

static int model_move(void *ctx, unsigned int res, uint64_t base)
{
	struct model *m = ctx;
	int rc;

	m->calls++;
	if (res >= N_RES || !m->r[res].is_addr)
		return VMRES_ENOENT;
	/* The range's reservation moves, mapped or not. */
	rc = model_check(m, res, base);
	if (rc)
		return rc;
	m->r[res].base = base;
	return 0;
}

static int model_map(void *ctx, unsigned int res)
{
	struct model *m = ctx;
	int rc;

	m->calls++;
	if (res >= N_RES || !m->r[res].is_addr)
		return VMRES_ENOENT;
	if (m->r[res].mapped)
		return VMRES_ESTATE;
	rc = model_check(m, res, m->r[res].base);
	if (!rc)
		m->r[res].mapped = true;
	return rc;
}

static int model_unmap(void *ctx, unsigned int res)
{
	struct model *m = ctx;

	m->calls++;
	if (res >= N_RES || !m->r[res].is_addr)
		return VMRES_ENOENT;
	if (!m->r[res].mapped)
		return VMRES_ESTATE;
	if (m->fail_unmap)
		return m->fail_unmap;
	m->r[res].mapped = false;
	return 0;
}

static int model_reroute(void *ctx, unsigned int res, const struct vmres_msi_msg *msg)
{
	struct model *m = ctx;

	m->calls++;
	if (res >= N_RES || m->r[res].is_addr)
		return VMRES_ENOENT;
	if (m->fail_reroute)
		return m->fail_reroute;
	m->reroutes++;
	m->msi[res] = *msg;
	m->msi_set[res] = true;
	return 0;
}

static const struct vmres_pci_mapper model_mapper = {
	.version = VMRES_PCI_MAPPER_VERSION,
	.move = model_move,
	.unmap = model_unmap,
	.map = model_map,
	.reroute_msi = model_reroute,
};

/* The model starts as the function's description says (decode bits of @cmd). */
static void model_init(struct model *m, const struct vmres_pci_func_config *c)
{
	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct vmres_pci_bar *b = &c->bars[i];
		struct model_range *r;
		uint16_t bit;

		if (b->kind == VMRES_PCI_BAR_NONE)
			continue;
		r = &m->r[b->res_index];
		r->is_addr = true;
		r->pio = b->kind == VMRES_PCI_BAR_IO;
		r->base = b->addr;
		r->size = b->size;
		r->align = b->size;
		bit = r->pio ? VMRES_PCI_COMMAND_IO : VMRES_PCI_COMMAND_MEMORY;
		r->mapped = (c->command & bit) && b->addr;
	}
	m->obstacles[m->n_obstacles++] = (struct span){0xd0000000u, 0xd0ffffffu};
	m->obstacles[m->n_obstacles++] = (struct span){0x2000, 0x20ff};
}

/* Every BAR's state agrees with the model's range. */
static void assert_bars_match_model(struct vmres_pci_func *f, const struct model *m)
{
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		struct vmres_pci_bar_state s = bar_state(f, i);
		const struct model_range *r;

		if (s.kind == VMRES_PCI_BAR_NONE)
			continue;
		r = &m->r[i == 0 ? RES_MMIO32 : i == 1 ? RES_IO : RES_MMIO64];
		assert_int_equal(s.mapped, r->mapped);
		assert_int_equal(s.mapped_base, r->base);
	}
}

static struct vmres_pci_func *new_mapped_func(struct model *m, uint16_t command)
{
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;

	c.command = command;
	f = new_func(&c);
	model_init(m, &c);
	assert_int_equal(vmres_pci_func_set_mapper(f, &model_mapper, m), 0);
	assert_bars_match_model(f, m);
	return f;
}

#define DECODE (VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY)

/* ------------------------------------------------------------------------ */
/* configuration space on its own                                           */

static void test_header_shows_ids_class_and_interrupt_pin(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;

	c.multifunction = true;
	c.interrupt_line = 11;
	f = new_func(&c);
	assert_int_equal(rd(f, 0x00, 4), 0x10f01af4);
	assert_int_equal(rd(f, 0x08, 4), 0xff000003);
	assert_int_equal(rd(f, 0x0e, 1), 0x80);
	assert_int_equal(rd(f, 0x2c, 4), 0x00421af4);
	assert_int_equal(rd(f, 0x3c, 2), 0x010b);
	assert_int_equal(rd(f, 0x06, 2) & VMRES_PCI_STATUS_CAP_LIST, VMRES_PCI_STATUS_CAP_LIST);
	assert_int_equal(rd(f, 0x04, 2), 0);
	vmres_pci_func_free(f);
}

static void test_read_only_fields_ignore_guest_writes(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	uint8_t before[VMRES_PCI_CONFIG_SIZE], after[VMRES_PCI_CONFIG_SIZE];

	dump_space(f, before);
	wr(f, 0x00, 4, 0x12345678);
	wr(f, 0x08, 4, 0xffffffff);
	wr(f, 0x0e, 1, 0x7f);
	wr(f, 0x06, 2, 0xffff);
	wr(f, 0x2c, 4, 0);
	wr(f, 0x34, 1, 0x80);
	wr(f, 0x3d, 1, 4);
	wr(f, 0x28, 4, 0xffffffff);
	dump_space(f, after);
	assert_memory_equal(before, after, sizeof(before));

	/* Writable: command (implemented bits only), cache line size, interrupt line. */
	wr(f, 0x04, 2, 0xffff);
	assert_int_equal(rd(f, 0x04, 2), 0x0547);
	wr(f, 0x0c, 1, 0x10);
	assert_int_equal(rd(f, 0x0c, 1), 0x10);
	wr(f, 0x3c, 1, 5);
	assert_int_equal(rd(f, 0x3c, 2), 0x0105);
	vmres_pci_func_free(f);
}

static void test_mem32_bar_sizing_reads_size_mask_with_type_bits(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;

	c.bars[4] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM32,
					   .prefetchable = true,
					   .size = 0x100000,
					   .addr = 0xe0000000u,
					   .res_index = 5};
	f = new_func(&c);
	assert_int_equal(rd(f, 0x10, 4), 0xc0000000u);
	wr(f, 0x10, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x10, 4), 0xfffff000u);
	wr(f, 0x10, 4, 0xc0000000u);
	assert_int_equal(rd(f, 0x10, 4), 0xc0000000u);

	assert_int_equal(rd(f, 0x20, 4), 0xe0000008u);
	wr(f, 0x20, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x20, 4), 0xfff00008u);
	vmres_pci_func_free(f);
}

static void test_io_bar_sizing_sets_bit0_and_all_upper_bits(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);

	assert_int_equal(rd(f, 0x14, 4), 0x1001);
	wr(f, 0x14, 4, 0xffffffff);
	/* SeaBIOS computes the size as ~(val & ~3) + 1 over 32 bits. */
	assert_int_equal(rd(f, 0x14, 4), 0xffffffe1u);
	assert_int_equal((uint32_t)(~(rd(f, 0x14, 4) & ~3u) + 1), 0x20);
	wr(f, 0x14, 4, 0x1207);
	assert_int_equal(rd(f, 0x14, 4), 0x1201);
	vmres_pci_func_free(f);
}

static void test_mem64_bar_sizing_in_two_halves(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;

	c.bars[4] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM64, .size = 1ull << 33, .addr = 0, .res_index = 6};
	f = new_func(&c);
	assert_int_equal(rd(f, 0x18, 4), 0x0000000c);
	assert_int_equal(rd(f, 0x1c, 4), 0x10);
	wr(f, 0x18, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x18, 4), 0xffffc00cu);
	wr(f, 0x1c, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x1c, 4), 0xffffffffu);

	/* 8 GiB: no address bits in the low half, one bit less in the high half. */
	assert_int_equal(rd(f, 0x20, 4), 0x4);
	wr(f, 0x20, 4, 0xffffffff);
	wr(f, 0x24, 4, 0xffffffff);
	assert_int_equal(rd(f, 0x20, 4), 0x4);
	assert_int_equal(rd(f, 0x24, 4), 0xfffffffeu);
	vmres_pci_func_free(f);
}

static void test_unimplemented_bars_and_rom_read_zero_after_sizing(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);

	wr(f, 0x20, 4, 0xffffffff);
	wr(f, 0x24, 4, 0xffffffff);
	wr(f, 0x30, 4, 0xfffffffe);
	assert_int_equal(rd(f, 0x20, 4), 0);
	assert_int_equal(rd(f, 0x24, 4), 0);
	assert_int_equal(rd(f, 0x30, 4), 0);
	vmres_pci_func_free(f);
}

static void test_bar_address_is_masked_by_the_size(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);

	wr(f, 0x10, 4, 0xc0001234u);
	assert_int_equal(rd(f, 0x10, 4), 0xc0001000u);
	wr(f, 0x10, 2, 0xabcd);
	assert_int_equal(rd(f, 0x10, 4), 0xc000a000u);
	wr(f, 0x13, 1, 0xfe);
	assert_int_equal(rd(f, 0x10, 4), 0xfe00a000u);
	vmres_pci_func_free(f);
}

static void test_capability_list_walk_reaches_msi_and_added_capabilities(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;
	unsigned int seen[8], n = 0;

	c.msi.offset = 0x60;
	f = new_func(&c);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x40, 0x09, 8), 0);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x90, 0x10, 0x3c), 0);
	for (unsigned int p = rd(f, VMRES_PCI_CAP_PTR, 1) & 0xfc; p; p = rd(f, p + 1, 1) & 0xfc) {
		assert_true(n < 8);
		seen[n++] = p;
	}
	assert_int_equal(n, 3);
	assert_int_equal(seen[0], 0x60);
	assert_int_equal(rd(f, 0x60, 1), VMRES_PCI_CAP_ID_MSI);
	assert_int_equal(seen[1], 0x40);
	assert_int_equal(rd(f, 0x40, 1), 0x09);
	assert_int_equal(seen[2], 0x90);
	assert_int_equal(rd(f, 0x90, 1), 0x10);

	/* Capability headers are read-only; overlaps and bad places are refused. */
	wr(f, 0x40, 2, 0x0000);
	assert_int_equal(rd(f, 0x40, 2), 0x9009);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x64, 0x11, 4), VMRES_EOVERLAP);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x44, 0x11, 4), VMRES_EOVERLAP);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x82, 0x11, 4), VMRES_EMISALIGNED);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x3c, 0x11, 4), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_add_capability(f, 0xf8, 0x11, 12), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_add_capability(f, 0x80, 0x11, 1), VMRES_EINVAL);
	assert_int_equal(rd(f, 0x90, 2), 0x0010);
	vmres_pci_func_free(f);
}

static void test_no_capabilities_means_no_list(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f;

	c.msi.vectors = 0;
	f = new_func(&c);
	assert_int_equal(rd(f, 0x06, 2) & VMRES_PCI_STATUS_CAP_LIST, 0);
	assert_int_equal(rd(f, VMRES_PCI_CAP_PTR, 1), 0);
	vmres_pci_func_free(f);
}

static void test_msi_capability_layout_for_each_variant(void **state)
{
	(void)state;
	/* addr64, maskable -> data offset, mask offset (0: none), control bits */
	static const struct {
		bool addr64, maskable;
		unsigned int data, mask;
		uint16_t ctrl;
	} v[] = {
		{false, false, 0x8, 0, 0x0004},
		{true, false, 0xc, 0, 0x0084},
		{false, true, 0x8, 0xc, 0x0104},
		{true, true, 0xc, 0x10, 0x0184},
	};

	for (unsigned int i = 0; i < 4; i++) {
		struct vmres_pci_func_config c = test_config();
		struct vmres_pci_func *f;
		struct vmres_pci_msi_state s;

		c.msi.vectors = 4;
		c.msi.addr64 = v[i].addr64;
		c.msi.per_vector_mask = v[i].maskable;
		f = new_func(&c);
		assert_int_equal(rd(f, 0x40, 4), (uint32_t)v[i].ctrl << 16 | VMRES_PCI_CAP_ID_MSI);
		wr(f, 0x42, 2, 0xffff); /* only enable and MME are writable */
		assert_int_equal(rd(f, 0x42, 2), v[i].ctrl | 0x0071);
		wr(f, 0x44, 4, 0xfee00003u);
		assert_int_equal(rd(f, 0x44, 4), 0xfee00000u);
		wr(f, 0x48, 4, 0xffffffffu);
		assert_int_equal(rd(f, 0x48, 4), v[i].addr64 ? 0xffffffffu : 0xffffu);
		wr(f, 0x40 + v[i].data, 2, 0x4321);
		assert_int_equal(rd(f, 0x40 + v[i].data, 2), 0x4321);
		if (v[i].mask) {
			wr(f, 0x40 + v[i].mask, 4, 0xffffffffu);
			assert_int_equal(rd(f, 0x40 + v[i].mask, 4), 0xf);
			wr(f, 0x40 + v[i].mask + 4, 4, 0xffffffffu); /* pending: read-only */
			assert_int_equal(rd(f, 0x40 + v[i].mask + 4, 4), 0);
			assert_int_equal(vmres_pci_func_msi_set_pending(f, 2, true), 0);
			assert_int_equal(rd(f, 0x40 + v[i].mask + 4, 4), 0x4);
		} else {
			assert_int_equal(vmres_pci_func_msi_set_pending(f, 0, true), VMRES_ENOTSUP);
		}
		assert_int_equal(vmres_pci_func_msi_get(f, &s), 0);
		assert_true(s.enabled);
		assert_int_equal(s.vectors, 4); /* MME 7 is clamped to the 4 capable */
		assert_int_equal(s.msg.data, 0x4321);
		assert_int_equal(s.mask, v[i].mask ? 0xf : 0);
		vmres_pci_func_free(f);
	}
}

static void test_bad_accesses_are_refused_and_change_nothing(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	uint8_t before[VMRES_PCI_CONFIG_SIZE], after[VMRES_PCI_CONFIG_SIZE];
	uint32_t v = 7;

	dump_space(f, before);
	assert_int_equal(vmres_pci_func_config_write(f, 0x10, 3, 0), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_config_write(f, 0x12, 4, 0), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_config_write(f, 0x13, 2, 0), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_config_write(f, 0x1000, 1, 0), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_config_write(NULL, 0x10, 4, 0), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_config_read(f, 0x11, 4, &v), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_config_read(f, 0x1000, 4, &v), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_config_read(f, 0, 8, &v), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_config_read(f, 0, 4, NULL), VMRES_EINVAL);
	assert_int_equal(v, 7);
	assert_int_equal(vmres_pci_func_bar_get(f, 6, &(struct vmres_pci_bar_state){0}),
			 VMRES_ENOENT);
	dump_space(f, after);
	assert_memory_equal(before, after, sizeof(before));
	vmres_pci_func_free(f);
}

static void test_bad_descriptions_are_refused(void **state)
{
	(void)state;
	struct vmres_pci_func *f = (struct vmres_pci_func *)&f;
	struct vmres_pci_func *const keep = f;
	static const struct vmres_pci_func_ops bad_ops = {.version = 99};
	struct {
		int rc;
		struct vmres_pci_func_config c;
	} cases[16];
	unsigned int n = 0;

	for (unsigned int i = 0; i < 16; i++)
		cases[i].c = test_config();
	cases[n].c.version = 0, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.vendor_id = 0xffff, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.interrupt_pin = 5, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.ops = &bad_ops, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.bars[0].size = 0x1800, cases[n++].rc = VMRES_EALIGN;
	cases[n].c.bars[0].size = 8, cases[n].c.bars[0].addr = 0, cases[n++].rc = VMRES_ESIZE;
	cases[n].c.bars[1].size = 0x20000, cases[n++].rc = VMRES_ERANGE;
	cases[n].c.bars[0].addr = 0xc0000800u, cases[n++].rc = VMRES_EMISALIGNED;
	cases[n].c.bars[0].addr = 0x100000000ull, cases[n++].rc = VMRES_ERANGE;
	cases[n].c.bars[3].kind = VMRES_PCI_BAR_IO, cases[n].c.bars[3].size = 4;
	cases[n++].rc = VMRES_EINVAL; /* the upper half of BAR2 */
	cases[n].c.bars[5].kind = VMRES_PCI_BAR_MEM64, cases[n].c.bars[5].size = 16;
	cases[n++].rc = VMRES_EINVAL;
	cases[n].c.bars[4].kind = 9, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.msi.vectors = 3, cases[n++].rc = VMRES_EALIGN;
	cases[n].c.msi.vectors = 64, cases[n++].rc = VMRES_EALIGN;
	cases[n].c.msi.offset = 0x42, cases[n++].rc = VMRES_EINVAL;
	cases[n].c.msi.offset = 0xf0, cases[n++].rc = VMRES_EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(vmres_pci_func_new(&cases[i].c, &f), cases[i].rc);
		assert_ptr_equal(f, keep);
	}
	assert_int_equal(vmres_pci_func_new(NULL, &f), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_new(&cases[0].c, NULL), VMRES_EINVAL);
	vmres_pci_func_free(NULL);
}

/* Device-implemented bytes: defined values, masks and both callbacks. */
struct dev_log {
	unsigned int writes, reads;
	unsigned int last_off, last_size;
	uint32_t last_val;
	unsigned int msi_changes;
	struct vmres_pci_msi_state msi;
};

static void dev_config_read(void *opaque, struct vmres_pci_func *f, unsigned int off,
			    unsigned int size, uint32_t *val)
{
	struct dev_log *log = opaque;

	(void)f;
	log->reads++;
	if (off == 0xa0 && size == 4)
		*val = 0x5a5a0000u | (*val & 0xffff);
}

static void dev_config_write(void *opaque, struct vmres_pci_func *f, unsigned int off,
			     unsigned int size, uint32_t val)
{
	struct dev_log *log = opaque;

	(void)f;
	log->writes++;
	log->last_off = off;
	log->last_size = size;
	log->last_val = val;
}

static void dev_msi_changed(void *opaque, struct vmres_pci_func *f)
{
	struct dev_log *log = opaque;

	log->msi_changes++;
	/* The mutex is recursive: a callback may read the state back. */
	assert_int_equal(vmres_pci_func_msi_get(f, &log->msi), 0);
}

static const struct vmres_pci_func_ops dev_ops = {
	.version = VMRES_PCI_FUNC_OPS_VERSION,
	.config_read = dev_config_read,
	.config_write = dev_config_write,
	.msi_changed = dev_msi_changed,
};

static void test_device_bytes_use_their_masks_and_reach_the_callbacks(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct dev_log log = {0};
	struct vmres_pci_func *f;

	c.ops = &dev_ops;
	c.opaque = &log;
	f = new_func(&c);
	assert_int_equal(vmres_pci_func_define(f, 0xa0, 4, 0x1234, 0x00ff), 0);
	assert_int_equal(vmres_pci_func_define(f, 0x3c, 1, 0, 0xff), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_define(f, 0x48, 4, 0, 0xff), VMRES_ERANGE); /* MSI */
	assert_int_equal(vmres_pci_func_define(f, 0xa1, 4, 0, 0), VMRES_EACCESS);

	wr(f, 0xa0, 4, 0xffffffffu);
	assert_int_equal(log.writes, 1);
	assert_int_equal(log.last_off, 0xa0);
	assert_int_equal(log.last_val, 0xffffffffu);
	assert_int_equal(rd(f, 0xa0, 4), 0x5a5a12ffu);
	assert_int_equal(rd(f, 0xa0, 1), 0xff); /* the hook only rewrites dword reads */
	/* Header and MSI accesses never reach the device. */
	unsigned int reads = log.reads;

	wr(f, 0x3c, 1, 9);
	(void)rd(f, 0x00, 4);
	(void)rd(f, 0x44, 4);
	assert_int_equal(log.writes, 1);
	assert_int_equal(log.reads, reads);
	vmres_pci_func_free(f);
}

/* ------------------------------------------------------------------------ */
/* BAR moves against the mapper model                                       */

static void test_bar_write_with_decode_on_moves_the_range(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);

	wr(f, 0x10, 4, 0xc0010000u);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0010000u);
	assert_true(m.r[RES_MMIO32].mapped);
	wr(f, 0x14, 4, 0x3000);
	assert_int_equal(m.r[RES_IO].base, 0x3000);
	assert_int_equal(bar_state(f, 1).reg_addr, 0x3000);
	assert_int_equal(bar_state(f, 1).last_error, 0);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_refused_moves_keep_the_old_bar_value(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	static const struct {
		unsigned int off;
		uint32_t val;
		int rc;
	} cases[] = {
		{0x10, 0xd0001000u, VMRES_EOVERLAP}, /* onto another device */
		{0x10, 0x80000000u, VMRES_ERANGE},   /* outside the windows */
		{0x14, 0x2080, VMRES_EOVERLAP},	     /* ports of another device */
		{0x14, 0x0100, VMRES_ERANGE},	     /* below the PIO window */
		{0x14, 0x10000, VMRES_ERANGE},	     /* above 64 KiB */
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned int bar = (cases[i].off - 0x10) / 4;
		uint32_t before = rd(f, cases[i].off, 4);
		struct model snap;
		uint64_t refused = bar_state(f, bar).refused;

		memcpy(&snap, &m, sizeof(m));

		wr(f, cases[i].off, 4, cases[i].val);
		assert_int_equal(rd(f, cases[i].off, 4), before);
		assert_int_equal(bar_state(f, bar).last_error, cases[i].rc);
		assert_int_equal(bar_state(f, bar).refused, refused + 1);
		snap.calls = m.calls;
		assert_memory_equal(&snap, &m, sizeof(m));
		assert_bars_match_model(f, &m);
	}
	vmres_pci_func_free(f);
}

static void test_move_misaligned_for_the_resource_is_refused(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	uint32_t before = rd(f, 0x14, 4);

	/* The I/O range was allocated with a 0x100 alignment, more than its size. */
	m.r[RES_IO].align = 0x100;
	wr(f, 0x14, 4, 0x3020);
	assert_int_equal(rd(f, 0x14, 4), before);
	assert_int_equal(bar_state(f, 1).last_error, VMRES_EMISALIGNED);
	wr(f, 0x14, 4, 0x3100);
	assert_int_equal(rd(f, 0x14, 4), 0x3101);
	assert_int_equal(bar_state(f, 1).last_error, 0);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_decode_off_unmaps_and_on_maps_at_the_register_address(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	unsigned int calls;

	wr(f, 0x04, 2, VMRES_PCI_COMMAND_IO);
	assert_false(m.r[RES_MMIO32].mapped);
	assert_false(m.r[RES_MMIO64].mapped);
	assert_true(m.r[RES_IO].mapped);
	assert_bars_match_model(f, &m);

	/* With decode off, a BAR write moves the range's reservation at once; a
	 * refused one shows where the range is again. */
	calls = m.calls;
	wr(f, 0x10, 4, 0xd0000000u); /* onto another device */
	assert_int_equal(bar_state(f, 0).last_error, VMRES_EOVERLAP);
	assert_int_equal(bar_state(f, 0).reg_addr, 0xc0000000u);
	assert_int_equal(bar_state(f, 0).mapped_base, 0xc0000000u);
	wr(f, 0x18, 4, 0x00100000u);
	wr(f, 0x1c, 4, 0x11);
	assert_int_equal(m.calls, calls + 3);
	assert_false(m.r[RES_MMIO64].mapped);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1100100000ull);

	/* Decode on: each maps where its register (and reservation) is. */
	wr(f, 0x04, 2, DECODE);
	assert_true(m.r[RES_MMIO64].mapped);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1100100000ull);
	assert_true(m.r[RES_MMIO32].mapped);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0000000u);
	assert_int_equal(bar_state(f, 0).last_error, 0);
	assert_int_equal(rd(f, 0x04, 2), DECODE);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_decode_toggle_without_changes_restores_the_same_ranges(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	struct model before;

	memcpy(&before, &m, sizeof(m));
	wr(f, 0x04, 2, 0);
	for (unsigned int i = 0; i < N_RES; i++)
		assert_false(m.r[i].mapped);
	wr(f, 0x04, 2, DECODE);
	before.calls = m.calls;
	assert_memory_equal(&before, &m, sizeof(m));
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_sizing_with_decode_on_does_not_move_anything(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	struct model before;

	memcpy(&before, &m, sizeof(m));
	for (unsigned int off = 0x10; off < 0x20; off += 4) {
		uint32_t old = rd(f, off, 4);

		wr(f, off, 4, 0xffffffffu);
		assert_int_not_equal(rd(f, off, 4), old);
		assert_bars_match_model(f, &before);
		wr(f, off, 4, old);
		assert_int_equal(rd(f, off, 4), old);
	}
	/* An address of 0 is "unassigned", not a move either. */
	wr(f, 0x10, 4, 0);
	assert_int_equal(m.calls, 0);
	assert_bars_match_model(f, &before);
	assert_int_equal(bar_state(f, 0).reg_addr, 0);
	/* Decode off and on with the BAR at 0: it stays unmapped, nothing is asked. */
	wr(f, 0x04, 2, VMRES_PCI_COMMAND_IO);
	unsigned int calls = m.calls;

	wr(f, 0x04, 2, DECODE);
	assert_false(m.r[RES_MMIO32].mapped);
	assert_int_equal(m.calls, calls + 1); /* BAR2's map only */
	assert_int_equal(bar_state(f, 0).refused, 0);
	/* A real address then maps it. */
	wr(f, 0x10, 4, 0xc0004000u);
	assert_true(m.r[RES_MMIO32].mapped);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0004000u);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_mem64_halves_with_decode_on_in_either_order(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);

	/* low then high, both intermediate addresses valid */
	wr(f, 0x18, 4, 0x00200000u);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1000200000ull);
	wr(f, 0x1c, 4, 0x11);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1100200000ull);
	assert_int_equal(bar_state(f, 2).reg_addr, 0x1100200000ull);

	/* high then low, into the 32-bit window: (0, old low) is refused, waits */
	wr(f, 0x1c, 4, 0);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1100200000ull);
	assert_int_equal(bar_state(f, 2).last_error, VMRES_ERANGE);
	assert_int_equal(rd(f, 0x1c, 4), 0); /* the half is kept */
	wr(f, 0x18, 4, 0xc0100000u);
	assert_int_equal(m.r[RES_MMIO64].base, 0xc0100000u);
	assert_int_equal(bar_state(f, 2).reg_addr, 0xc0100000u);
	assert_int_equal(bar_state(f, 2).last_error, 0);

	/* low then high out of the 32-bit window: (0, 0x300000) refused, high completes */
	wr(f, 0x18, 4, 0x00300000u);
	assert_int_equal(m.r[RES_MMIO64].base, 0xc0100000u);
	wr(f, 0x1c, 4, 0x12);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1200300000ull);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_mem64_pair_refused_goes_back_to_where_the_range_is(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	struct model before;

	memcpy(&before, &m, sizeof(m));
	wr(f, 0x18, 4, 0x00100000u); /* (0x10, 0x100000) is fine... */
	wr(f, 0x18, 4, 0x00000000u); /* ...and back */
	assert_int_equal(m.r[RES_MMIO64].base, 0x1000000000ull);
	wr(f, 0x1c, 4, 0x20); /* (0x20, 0) outside: kept, waits */
	assert_int_equal(rd(f, 0x1c, 4), 0x20);
	wr(f, 0x18, 4, 0xd0000000u); /* (0x20, 0xd0000000) outside too: both go back */
	assert_int_equal(rd(f, 0x18, 4), 0x0000000c);
	assert_int_equal(rd(f, 0x1c, 4), 0x10);
	assert_int_equal(bar_state(f, 2).last_error, VMRES_ERANGE);
	before.calls = m.calls;
	assert_memory_equal(&before, &m, sizeof(m));
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_mem64_half_rewritten_unchanged_completes_the_pending_half(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);

	/* (0x20, 0) is outside both windows: the high half waits... */
	wr(f, 0x1c, 4, 0x20);
	assert_int_equal(bar_state(f, 2).half_pending, true);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1000000000ull);
	/* ...and the guest rewrites the low half with the value it had: the pair is
	 * complete, refused, and the register goes back to where the range is. */
	wr(f, 0x18, 4, rd(f, 0x18, 4));
	assert_int_equal(bar_state(f, 2).half_pending, false);
	assert_int_equal(bar_state(f, 2).reg_addr, 0x1000000000ull);
	assert_int_equal(bar_state(f, 2).last_error, VMRES_ERANGE);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_decode_on_after_a_refused_unmap_follows_the_register(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);

	/* Decode off, but the unmap is refused: BAR0 stays mapped where it was. */
	m.fail_unmap = VMRES_ENOMEM;
	wr(f, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_IO);
	assert_true(bar_state(f, 0).mapped);
	assert_int_equal(bar_state(f, 0).last_error, VMRES_ENOMEM);
	m.fail_unmap = 0;
	/* The guest moves the BAR while decode is off: the range follows at once. */
	wr(f, 0x10, 4, 0xc0100000u);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0100000u);
	wr(f, VMRES_PCI_COMMAND, 2, DECODE);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0100000u);
	assert_int_equal(bar_state(f, 0).reg_addr, 0xc0100000u);
	assert_bars_match_model(f, &m);

	/* The same with a register the mapper refuses: it shows the range again. */
	m.fail_unmap = VMRES_ENOMEM;
	wr(f, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_IO);
	m.fail_unmap = 0;
	wr(f, 0x10, 4, 0x80000000u); /* outside the 32-bit window */
	wr(f, VMRES_PCI_COMMAND, 2, DECODE);
	assert_int_equal(bar_state(f, 0).last_error, VMRES_ERANGE);
	assert_int_equal(bar_state(f, 0).reg_addr, 0xc0100000u);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

static void test_seabios_sequence_sizes_assigns_then_enables(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, 0);
	static const uint32_t want[6] = {0xfffff000u, 0xffffffe1u, 0xffffc00cu, 0xffffffffu};
	unsigned int calls = m.calls;

	for (unsigned int i = 0; i < 6; i++) {
		unsigned int off = 0x10 + 4 * i;
		uint32_t old = rd(f, off, 4);

		wr(f, off, 4, 0xffffffffu);
		assert_int_equal(rd(f, off, 4), want[i]);
		wr(f, off, 4, old);
	}
	wr(f, 0x10, 4, 0xc0200000u);
	wr(f, 0x14, 4, 0x1100);
	wr(f, 0x18, 4, 0x00400000u);
	wr(f, 0x1c, 4, 0x13);
	/* Each address moved its range as written (the 64-bit one in two steps);
	 * nothing is on the bus before decode is on. */
	assert_int_equal(m.calls, calls + 4);
	assert_false(m.r[RES_MMIO32].mapped || m.r[RES_IO].mapped || m.r[RES_MMIO64].mapped);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1300400000ull);
	wr(f, 0x04, 2, DECODE | VMRES_PCI_COMMAND_MASTER);
	assert_true(m.r[RES_MMIO32].mapped && m.r[RES_IO].mapped && m.r[RES_MMIO64].mapped);
	assert_int_equal(m.r[RES_MMIO32].base, 0xc0200000u);
	assert_int_equal(m.r[RES_IO].base, 0x1100);
	assert_int_equal(m.r[RES_MMIO64].base, 0x1300400000ull);
	assert_bars_match_model(f, &m);
	vmres_pci_func_free(f);
}

/*
 * Sizing is a write, not an address: 64-bit BAR addresses whose address bits
 * in one dword are all ones (a 1 GiB BAR at 0x10_c000_0000, 2 GiB at
 * 0x10_8000_0000) are addresses like any other, in either order of the
 * halves, with decode on or off.
 */
static void test_mem64_addresses_that_look_like_sizing_are_addresses(void **state)
{
	(void)state;
	static const struct {
		uint64_t size, addr;
	} cases[] = {
		{1ull << 30, 0x10c0000000ull}, {1ull << 31, 0x1080000000ull},
		{1ull << 31, 0x1180000000ull}, {1ull << 30, 0xc0000000ull},
		{1ull << 34, 0x1400000000ull}, {0x1000, 0x17fffff000ull},
		{0x4000, 0xffffc000ull},       {1ull << 32, 0x1700000000ull},
	};

	for (unsigned int k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (unsigned int variant = 0; variant < 4; variant++) {
			bool decode_on = variant & 1, high_first = variant & 2;
			struct vmres_pci_func_config c = test_config();
			struct vmres_pci_func *f;
			struct vmres_pci_bar_state st;
			uint32_t lo = (uint32_t)cases[k].addr | 0xc,
				 hi = (uint32_t)(cases[k].addr >> 32);
			struct model m;

			c.bars[0].kind = VMRES_PCI_BAR_NONE; /* out of the 64-bit BAR's way */
			c.bars[2].size = cases[k].size;
			c.bars[2].addr = 0x1000000000ull;
			c.command = decode_on ? DECODE : 0;
			f = new_func(&c);
			model_init(&m, &c);
			m.n_obstacles = 0;
			assert_int_equal(vmres_pci_func_set_mapper(f, &model_mapper, &m), 0);
			wr(f, high_first ? 0x1c : 0x18, 4, high_first ? hi : lo);
			wr(f, high_first ? 0x18 : 0x1c, 4, high_first ? lo : hi);
			if (!decode_on)
				wr(f, 0x04, 2, DECODE);
			st = bar_state(f, 2);
			if (st.mapped_base != cases[k].addr || !st.mapped || !st.reg_is_address)
				fail_msg("case %u variant %u: at 0x%llx mapped %d (error %d)", k,
					 variant, (unsigned long long)st.mapped_base, st.mapped,
					 st.last_error);
			assert_int_equal(st.reg_addr, cases[k].addr);
			assert_int_equal(m.r[RES_MMIO64].base, cases[k].addr);
			assert_true(m.r[RES_MMIO64].mapped);
			assert_int_equal(rd(f, 0x18, 4), lo);
			assert_int_equal(rd(f, 0x1c, 4), hi);
			/* sizing it there still reads the size and moves nothing */
			wr(f, 0x18, 4, 0xffffffffu);
			wr(f, 0x1c, 4, 0xffffffffu);
			assert_int_equal(rd(f, 0x1c, 4), (uint32_t)(~(cases[k].size - 1) >> 32));
			assert_false(bar_state(f, 2).reg_is_address);
			wr(f, 0x18, 4, lo);
			wr(f, 0x1c, 4, hi);
			assert_int_equal(m.r[RES_MMIO64].base, cases[k].addr);
			assert_true(bar_state(f, 2).reg_is_address);
			assert_int_equal(bar_state(f, 2).refused, 0);
			vmres_pci_func_free(f);
		}
	}
}

/* A saved state loads into a new function of the same layout: every config
 * read then matches, including a BAR mid-sizing and a pending 64-bit half;
 * each refusal names its reason and changes nothing. */
static void test_state_saves_and_loads_guest_visible_registers(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	uint8_t st[VMRES_PCI_FUNC_STATE_SIZE], bad[VMRES_PCI_FUNC_STATE_SIZE];
	uint8_t space_a[VMRES_PCI_CONFIG_SIZE], space_b[VMRES_PCI_CONFIG_SIZE];
	struct vmres_pci_func *f, *g, *h;
	struct model m;

	f = new_mapped_func(&m, DECODE);
	wr(f, 0x10, 4, 0xc0100000u); /* moved */
	wr(f, 0x14, 4, 0xffffffffu); /* the I/O BAR mid-sizing */
	wr(f, 0x1c, 4, 0x20);	     /* a refused high half, pending */
	wr(f, 0x44, 4, 0xfee01000u); /* MSI programmed and enabled */
	wr(f, 0x4c, 2, 0x4041);
	wr(f, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE);
	assert_int_equal(vmres_pci_func_save_state(f, st, sizeof(st) - 1), VMRES_ESIZE);
	assert_int_equal(vmres_pci_func_save_state(f, NULL, sizeof(st)), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_save_state(f, st, sizeof(st)), 0);

	g = new_func(&c);
	dump_space(g, space_b);
	/* refusals change nothing */
	assert_int_equal(vmres_pci_func_load_state(g, st, sizeof(st) - 1), VMRES_ESIZE);
	assert_int_equal(vmres_pci_func_load_state(g, NULL, sizeof(st)), VMRES_EINVAL);
	memcpy(bad, st, sizeof(bad));
	bad[0] ^= 0xff; /* the layout's version */
	assert_int_equal(vmres_pci_func_load_state(g, bad, sizeof(bad)), VMRES_EVERSION);
	c.bars[0].size = 0x2000; /* another layout */
	h = new_func(&c);
	assert_int_equal(vmres_pci_func_load_state(h, st, sizeof(st)), VMRES_EKIND);
	vmres_pci_func_free(h);
	c = test_config();
	h = new_mapped_func(&m, 0); /* has a mapper */
	assert_int_equal(vmres_pci_func_load_state(h, st, sizeof(st)), VMRES_ESTATE);
	vmres_pci_func_free(h);
	dump_space(g, space_a);
	assert_memory_equal(space_a, space_b, sizeof(space_a));

	assert_int_equal(vmres_pci_func_load_state(g, st, sizeof(st)), 0);
	dump_space(f, space_a);
	dump_space(g, space_b);
	assert_memory_equal(space_a, space_b, sizeof(space_a));
	for (unsigned int i = 0; i < 3; i++) {
		struct vmres_pci_bar_state a = bar_state(f, i), b = bar_state(g, i);

		assert_int_equal(a.reg_addr, b.reg_addr);
		assert_int_equal(a.reg_is_address, b.reg_is_address);
		assert_int_equal(a.half_pending, b.half_pending);
		assert_int_equal(a.mapped, b.mapped);
		assert_int_equal(a.mapped_base, b.mapped_base);
	}
	/* the probe and the pending half go on where they were */
	assert_false(bar_state(g, 1).reg_is_address);
	assert_true(bar_state(g, 2).half_pending);
	vmres_pci_func_free(f);
	vmres_pci_func_free(g);
}

/* ------------------------------------------------------------------------ */
/* MSI                                                                      */

static void test_msi_reroutes_on_enable_and_on_message_change_only(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct dev_log log = {0};
	struct vmres_pci_func *f;
	struct model m;

	c.ops = &dev_ops;
	c.opaque = &log;
	f = new_func(&c);
	model_init(&m, &c);
	assert_int_equal(vmres_pci_func_set_mapper(f, &model_mapper, &m), 0);

	/* Programming while disabled routes nothing. */
	wr(f, 0x44, 4, 0xfee01000u);
	wr(f, 0x48, 4, 0);
	wr(f, 0x4c, 2, 0x4040);
	assert_int_equal(m.reroutes, 0);
	assert_int_equal(log.msi_changes, 0);

	/* Enable with 2 of 4 vectors: two routes, data | vector. */
	wr(f, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE | (1u << VMRES_PCI_MSI_CTRL_MME_SHIFT));
	assert_int_equal(m.reroutes, 2);
	assert_int_equal(m.msi[RES_MSI].data, 0x4040);
	assert_int_equal(m.msi[RES_MSI + 1].data, 0x4041);
	assert_int_equal(m.msi[RES_MSI + 1].addr_lo, 0xfee01000u);
	assert_false(m.msi_set[RES_MSI + 2]);
	assert_int_equal(log.msi_changes, 1);
	assert_true(log.msi.enabled);
	assert_int_equal(log.msi.vectors, 2);

	/* Same message again: nothing; a new address: both vectors. */
	wr(f, 0x44, 4, 0xfee01000u);
	assert_int_equal(m.reroutes, 2);
	wr(f, 0x44, 4, 0xfee02000u);
	assert_int_equal(m.reroutes, 4);
	assert_int_equal(m.msi[RES_MSI].addr_lo, 0xfee02000u);

	/* Mask bits are reported; no reroute. */
	wr(f, 0x50, 4, 0x2);
	assert_int_equal(log.msi_changes, 2);
	assert_int_equal(log.msi.mask, 0x2);
	assert_int_equal(m.reroutes, 4);

	/* Disable, reprogram, enable: reroute with the new data. */
	wr(f, 0x42, 2, 1u << VMRES_PCI_MSI_CTRL_MME_SHIFT);
	assert_int_equal(log.msi_changes, 3);
	assert_false(log.msi.enabled);
	wr(f, 0x4c, 2, 0x5050);
	assert_int_equal(m.reroutes, 4);
	wr(f, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE | (1u << VMRES_PCI_MSI_CTRL_MME_SHIFT));
	assert_int_equal(m.reroutes, 6);
	assert_int_equal(m.msi[RES_MSI + 1].data, 0x5051);

	/* A failing reroute is reported and retried on the next change. */
	m.fail_reroute = VMRES_ENOSPC;
	wr(f, 0x4c, 2, 0x6060);
	struct vmres_pci_msi_state s;

	assert_int_equal(vmres_pci_func_msi_get(f, &s), 0);
	assert_int_equal(s.last_error, VMRES_ENOSPC);
	m.fail_reroute = 0;
	wr(f, 0x44, 4, 0xfee02000u); /* same address: the failed vectors still go */
	assert_int_equal(m.msi[RES_MSI].data, 0x6060);
	assert_int_equal(vmres_pci_func_msi_get(f, &s), 0);
	assert_int_equal(s.last_error, 0);
	vmres_pci_func_free(f);
}

static void test_mapper_must_be_complete(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	struct vmres_pci_mapper bad = model_mapper;

	bad.reroute_msi = NULL;
	assert_int_equal(vmres_pci_func_set_mapper(f, &bad, NULL), VMRES_EINVAL);
	bad = model_mapper;
	bad.version = 0;
	assert_int_equal(vmres_pci_func_set_mapper(f, &bad, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_set_mapper(NULL, &model_mapper, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_set_mapper(f, NULL, NULL), 0);
	vmres_pci_func_free(f);
}

/* ------------------------------------------------------------------------ */
/* randomized: after every guest write, the function and the model agree    */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* An address a guest might write to a BAR dword: real, sizing, 0, or colliding. */
static uint32_t random_bar_value(void)
{
	static const uint32_t picks[] = {
		0xffffffffu, 0,		  0xc0000000u, 0xc0001000u, 0xd0000000u, 0xfffff000u,
		0x1000,	     0x1020,	  0x2000,      0x3000,	    0x10,	 0x11,
		0x12,	     0x00004000u, 0xc0004000u, 0x80000000u,
	};

	if (rnd() % 4 == 0)
		return (uint32_t)rnd();
	return picks[rnd() % (sizeof(picks) / sizeof(picks[0]))];
}

static void check_invariants(struct vmres_pci_func *f, const struct model *m)
{
	uint16_t cmd = (uint16_t)rd(f, 0x04, 2);

	assert_bars_match_model(f, m);
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		struct vmres_pci_bar_state s = bar_state(f, i);
		uint16_t bit = s.kind == VMRES_PCI_BAR_IO ? VMRES_PCI_COMMAND_IO
							  : VMRES_PCI_COMMAND_MEMORY;

		if (s.kind == VMRES_PCI_BAR_NONE)
			continue;
		if (!(cmd & bit))
			assert_false(s.mapped); /* decode off: never on the bus */
		if (s.mapped)
			assert_int_equal(s.mapped_base & (s.size - 1), 0);
	}
	/* The model's own rule: mapped ranges never overlap each other or obstacles. */
	for (unsigned int i = 0; i < N_RES; i++)
		if (m->r[i].is_addr && m->r[i].mapped)
			assert_int_equal(model_check(m, i, m->r[i].base), 0);
}

static void test_random_guest_writes_keep_function_and_mapper_in_agreement(void **state)
{
	(void)state;
	struct model m;
	struct vmres_pci_func *f = new_mapped_func(&m, DECODE);
	unsigned int moved = 0, unmapped_steps = 0, pending_steps = 0;
	uint64_t refused = 0;

	rng_state = 0x9e3779b97f4a7c15ull;
	printf("# seed 0x%016llx\n", (unsigned long long)rng_state);
	for (unsigned int step = 0; step < 20000; step++) {
		unsigned int what = (unsigned int)(rnd() % 8);

		if (what == 0) {
			wr(f, 0x04, 2, (uint32_t)(rnd() & DECODE));
		} else {
			unsigned int off = 0x10 + 4 * (unsigned int)(rnd() % 4);

			wr(f, off, 4, random_bar_value());
		}
		check_invariants(f, &m);
		/*
		 * With decode on, a BAR whose register holds a real address and
		 * is not waiting for its other half is where its register says.
		 */
		uint16_t cmd = (uint16_t)rd(f, 0x04, 2);

		for (unsigned int i = 0; i < 3; i++) {
			struct vmres_pci_bar_state s = bar_state(f, i);
			uint16_t bit = i == 1 ? VMRES_PCI_COMMAND_IO : VMRES_PCI_COMMAND_MEMORY;

			if ((cmd & bit) && s.mapped && s.reg_is_address && !s.half_pending)
				assert_int_equal(s.reg_addr, s.mapped_base);
			if (i != 2)
				assert_false(s.half_pending);
			pending_steps += s.half_pending;
			moved += s.mapped && s.mapped_base != (i == 0	? 0xc0000000u
							       : i == 1 ? 0x1000u
									: 0x1000000000ull);
			unmapped_steps += !s.mapped;
		}
	}
	for (unsigned int i = 0; i < 3; i++)
		refused += bar_state(f, i).refused;
	printf("# %u steps moved, %u unmapped, %u half pending, %llu refused\n", moved,
	       unmapped_steps, pending_steps, (unsigned long long)refused);
	/* The script must reach every state, or it checks nothing. */
	assert_true(moved > 1000 && unmapped_steps > 1000 && refused > 1000);
	assert_true(pending_steps > 100);
	vmres_pci_func_free(f);
}

/* ------------------------------------------------------------------------ */
/* configuration mechanism #1                                               */

static uint32_t conf1_rd(struct vmres_pci_host *h, unsigned int port, unsigned int size)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(vmres_pci_host_conf1_read(h, port - 0xcf8, size, &v), 0);
	return v;
}

static void conf1_wr(struct vmres_pci_host *h, unsigned int port, unsigned int size, uint32_t v)
{
	assert_int_equal(vmres_pci_host_conf1_write(h, port - 0xcf8, size, v), 0);
}

static uint32_t conf1_addr(unsigned int bus, unsigned int dev, unsigned int fn, unsigned int reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | reg;
}

static void test_conf1_reaches_the_addressed_function_at_byte_offsets(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *bridge, *f = new_func(&c);
	struct vmres_pci_host *h;

	assert_int_equal(vmres_pci_host_new(&h), 0);
	assert_int_equal(vmres_pci_host_bridge_new(NULL, NULL, &bridge), 0);
	assert_int_equal(vmres_pci_host_attach(h, 0, 0, bridge), 0);
	assert_int_equal(vmres_pci_host_attach(h, 3, 0, f), 0);
	assert_int_equal(vmres_pci_host_attach(h, 3, 0, f), VMRES_EEXIST);
	assert_int_equal(vmres_pci_host_attach(h, 32, 0, f), VMRES_ERANGE);
	assert_int_equal(vmres_pci_host_attach(h, 1, 8, f), VMRES_ERANGE);

	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 0, 0, 0));
	assert_int_equal(conf1_rd(h, 0xcf8, 4), conf1_addr(0, 0, 0, 0));
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0x12378086u);
	assert_int_equal(conf1_rd(h, 0xcfe, 2), 0x1237);
	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 0, 0, 8));
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0x06000002u);
	assert_int_equal(conf1_rd(h, 0xcff, 1), 0x06);

	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 3, 0, 0x10));
	conf1_wr(h, 0xcfc, 4, 0xffffffffu);
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0xfffff000u);
	conf1_wr(h, 0xcfd, 1, 0x50);
	conf1_wr(h, 0xcff, 1, 0xc1);
	assert_int_equal(rd(f, 0x10, 4), 0xc1ff5000u);

	/* Bits 1:0 of the address register are not kept. */
	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 3, 0, 0x3c) | 3);
	assert_int_equal(conf1_rd(h, 0xcf8, 4), conf1_addr(0, 3, 0, 0x3c));
	assert_int_equal(conf1_rd(h, 0xcfd, 1), 1);
	vmres_pci_host_free(h);
	vmres_pci_func_free(bridge);
	vmres_pci_func_free(f);
}

static void test_conf1_reads_all_ones_where_nothing_answers(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	struct vmres_pci_host *h;
	uint8_t before[VMRES_PCI_CONFIG_SIZE], after[VMRES_PCI_CONFIG_SIZE];
	uint32_t v = 5;

	assert_int_equal(vmres_pci_host_new(&h), 0);
	assert_int_equal(vmres_pci_host_attach(h, 2, 0, f), 0);
	dump_space(f, before);

	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 2, 0, 0) & ~0x80000000u); /* enable clear */
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0xffffffffu);
	conf1_wr(h, 0xcfc, 4, 0);
	conf1_wr(h, 0xcf8, 4, conf1_addr(1, 2, 0, 0x3c)); /* bus 1 */
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0xffffffffu);
	conf1_wr(h, 0xcfc, 1, 0);
	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 5, 0, 0)); /* empty slot */
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0xffffffffu);
	assert_int_equal(conf1_rd(h, 0xcfe, 2), 0xffff);
	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 2, 1, 0)); /* empty function */
	assert_int_equal(conf1_rd(h, 0xcfc, 1), 0xff);

	/* Byte and word accesses to 0xcf8-0xcfb are not the address register. */
	conf1_wr(h, 0xcfb, 1, 0x01);
	conf1_wr(h, 0xcf9, 1, 0x06);
	assert_int_equal(conf1_rd(h, 0xcf8, 4), conf1_addr(0, 2, 1, 0));
	assert_int_equal(conf1_rd(h, 0xcf8, 2), 0xffff);
	assert_int_equal(conf1_rd(h, 0xcfa, 1), 0xff);

	/* Malformed accesses are errors and change nothing. */
	assert_int_equal(vmres_pci_host_conf1_read(h, 8, 1, &v), VMRES_ERANGE);
	assert_int_equal(vmres_pci_host_conf1_read(h, 3, 2, &v), VMRES_EACCESS);
	assert_int_equal(vmres_pci_host_conf1_write(h, 4, 8, 0), VMRES_EACCESS);
	assert_int_equal(vmres_pci_host_conf1_write(h, 0, 3, 0), VMRES_EACCESS);
	assert_int_equal(v, 5);
	assert_int_equal(conf1_rd(h, 0xcf8, 4), conf1_addr(0, 2, 1, 0));

	dump_space(f, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_int_equal(vmres_pci_host_detach(h, 2, 0), 0);
	assert_int_equal(vmres_pci_host_detach(h, 2, 0), VMRES_ENOENT);
	conf1_wr(h, 0xcf8, 4, conf1_addr(0, 2, 0, 0));
	assert_int_equal(conf1_rd(h, 0xcfc, 4), 0xffffffffu);
	vmres_pci_host_free(h);
	vmres_pci_func_free(f);
}

static void test_host_device_callbacks_are_conf1(void **state)
{
	(void)state;
	struct vmres_pci_func *bridge;
	struct vmres_pci_host *h;
	struct vmres_device dev;

	assert_int_equal(vmres_pci_host_new(&h), 0);
	assert_int_equal(vmres_pci_host_bridge_new(NULL, NULL, &bridge), 0);
	assert_int_equal(vmres_pci_host_attach(h, 0, 0, bridge), 0);
	assert_int_equal(vmres_pci_host_device(h, &dev), 0);
	assert_int_equal(dev.version, VMRES_DEVICE_VERSION);
	assert_ptr_equal(dev.opaque, h);
	assert_string_equal(dev.name, "pci-conf1");
	dev.write(dev.opaque, 0, 0, 0xcf8, 4, conf1_addr(0, 0, 0, 0x58));
	dev.write(dev.opaque, 0, 5, 0xcfd, 1, 0x33); /* PAM0 at 0x59 */
	assert_int_equal(dev.read(dev.opaque, 0, 4, 0xcfc, 4), 0x3300u);
	assert_int_equal(dev.read(dev.opaque, 0, 4, 0xcfc, 8), UINT64_MAX);
	assert_int_equal(vmres_pci_host_device(NULL, &dev), VMRES_EINVAL);
	vmres_pci_host_free(h);
	vmres_pci_func_free(bridge);
}

static void test_host_bridge_is_i440fx_with_writable_pam(void **state)
{
	(void)state;
	struct vmres_pci_func *b;
	struct dev_log log = {0};

	assert_int_equal(vmres_pci_host_bridge_new(&dev_ops, &log, &b), 0);
	assert_int_equal(rd(b, 0x00, 4), 0x12378086u);
	assert_int_equal(rd(b, 0x08, 4), 0x06000002u);
	assert_int_equal(rd(b, 0x0e, 1), 0);
	assert_int_equal(rd(b, 0x2c, 4), 0x11001af4u);
	for (unsigned int i = 0; i < 6; i++) {
		wr(b, 0x10 + 4 * i, 4, 0xffffffffu);
		assert_int_equal(rd(b, 0x10 + 4 * i, 4), 0);
	}
	wr(b, 0x5a, 1, 0x33);
	assert_int_equal(rd(b, 0x5a, 1), 0x33);
	assert_int_equal(log.writes, 1);
	assert_int_equal(log.last_off, 0x5a);
	wr(b, 0x50, 4, 0xffffffffu); /* not a PAM register: read-only */
	assert_int_equal(rd(b, 0x50, 4), 0);
	assert_int_equal(vmres_pci_host_bridge_new(NULL, NULL, NULL), VMRES_EINVAL);
	vmres_pci_func_free(b);
}

/* ------------------------------------------------------------------------ */
/* through a real device manager and system allocator (x86_64 preset)       */

#define DEV_OWNER   0x100u
#define OTHER_OWNER 0x200u
#define TEST_SLOT   4u

struct rig {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_pci_host *host;
	struct vmres_pci_func *bridge, *f;
	uint32_t host_id, dev_id, other_id;
	struct vmres_resource res[N_RES];
	struct vmres_resource other[2];
	/* MSI notifier log */
	unsigned int notified;
	uint32_t last_gsi;
	struct vmres_msi_msg last_msg;
};

/* The test device answers every read with a signature naming the range. */
static uint64_t sig_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	(void)opaque;
	(void)offset;
	(void)addr;
	(void)size;
	return 0x5100u + range;
}

static int rig_notifier(void *ctx, uint32_t instance, unsigned int res_index, uint32_t gsi,
			const struct vmres_msi_msg *msg)
{
	struct rig *r = ctx;

	(void)instance;
	(void)res_index;
	r->notified++;
	r->last_gsi = gsi;
	r->last_msg = *msg;
	return 0;
}

static struct vmres_request addr_req(const char *pool, enum vmres_space space, uint64_t size,
				     uint64_t align)
{
	return test_rq_addr(pool, space, size, align, VMRES_ADDR_FIRST_FIT, 0);
}

static void rig_alloc(struct rig *r)
{
	struct vmres_request q[4];
	size_t n = 0;

	q[0] = addr_req("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	q[1] = addr_req("pio", VMRES_SPACE_PIO, 0x20, 0x100); /* aligned more than its size */
	q[2] = addr_req("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	memset(&q[3], 0, sizeof(q[3]));
	q[3].kind = VMRES_RES_MSI;
	strcpy(q[3].pool, "gsi-msi");
	q[3].u.msi.count = 4;
	q[3].u.msi.contiguous = true;
	q[3].u.msi.any = true;
	assert_int_equal(vmres_sysalloc_alloc(r->sa, q, 4, DEV_OWNER, r->res, N_RES, &n, NULL), 0);
	assert_int_equal(n, N_RES);
	q[0] = addr_req("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	q[1] = addr_req("pio", VMRES_SPACE_PIO, 0x20, 0x100);
	assert_int_equal(vmres_sysalloc_alloc(r->sa, q, 2, OTHER_OWNER, r->other, 2, &n, NULL), 0);
}

/* Everything registered and bound; the function's decode bits start as @command. */
static struct rig *rig_new(uint16_t command)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct vmres_pci_func_config c = test_config();
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource conf1;

	assert_non_null(r);
	assert_int_equal(vmres_sysalloc_new_x86_64(&r->sa), 0);
	assert_int_equal(vmres_devmgr_new(r->sa, &r->m), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(r->m, rig_notifier, r), 0);
	rig_alloc(r);

	/* The host on the "pci conf1" ports the preset pre-reserved. */
	assert_int_equal(vmres_pci_host_new(&r->host), 0);
	assert_int_equal(vmres_pci_host_bridge_new(NULL, NULL, &r->bridge), 0);
	assert_int_equal(vmres_pci_host_attach(r->host, 0, 0, r->bridge), 0);
	assert_int_equal(vmres_pci_host_device(r->host, &dev), 0);
	memset(&conf1, 0, sizeof(conf1));
	conf1.kind = VMRES_RES_ADDR;
	conf1.u.addr.space = VMRES_SPACE_PIO;
	conf1.u.addr.base = VMRES_PCI_CONF1_PORT;
	conf1.u.addr.size = VMRES_PCI_CONF1_SIZE;
	assert_int_equal(
		vmres_devmgr_register(r->m, &dev, VMRES_DEVMGR_NO_PARENT, &conf1, 1, &r->host_id),
		0);

	dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev.name = "other";
	dev.read = sig_read;
	dev.owner = OTHER_OWNER;
	assert_int_equal(vmres_devmgr_register(r->m, &dev, VMRES_DEVMGR_NO_PARENT, r->other, 2,
					       &r->other_id),
			 0);

	dev.name = "pci-test";
	dev.owner = DEV_OWNER;
	assert_int_equal(vmres_devmgr_register(r->m, &dev, r->host_id, r->res, N_RES, &r->dev_id),
			 0);
	c.command = command;
	c.msi.res_index = RES_MSI;
	r->f = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(r->f, r->m, r->dev_id), 0);
	assert_int_equal(vmres_pci_host_attach(r->host, TEST_SLOT, 0, r->f), 0);
	return r;
}

static void rig_free(struct rig *r)
{
	vmres_devmgr_free(r->m); /* nothing dispatches any more */
	vmres_pci_host_free(r->host);
	vmres_pci_func_free(r->f);
	vmres_pci_func_free(r->bridge);
	vmres_sysalloc_free(r->sa);
	free(r);
}

/* Guest config accesses, as PIO exits through the device manager. */
static void guest_cfg_write(struct rig *r, unsigned int reg, unsigned int size, uint32_t val)
{
	uint32_t a = conf1_addr(0, TEST_SLOT, 0, reg & 0xfc);
	uint8_t buf[4];

	memcpy(buf, &a, 4);
	assert_int_equal(vmres_devmgr_pio(r->m, 0xcf8, true, 4, 1, buf), 0);
	memcpy(buf, &val, 4);
	assert_int_equal(
		vmres_devmgr_pio(r->m, (uint16_t)(0xcfc + (reg & 3)), true, (uint8_t)size, 1, buf),
		0);
}

static uint32_t guest_cfg_read(struct rig *r, unsigned int reg)
{
	uint32_t a = conf1_addr(0, TEST_SLOT, 0, reg & 0xfc), v = 0;
	uint8_t buf[4];

	memcpy(buf, &a, 4);
	assert_int_equal(vmres_devmgr_pio(r->m, 0xcf8, true, 4, 1, buf), 0);
	assert_int_equal(vmres_devmgr_pio(r->m, 0xcfc, false, 4, 1, buf), 0);
	memcpy(&v, buf, 4);
	return v;
}

static uint64_t guest_read(struct rig *r, enum vmres_space space, uint64_t addr)
{
	uint8_t buf[8] = {0};
	uint64_t v = 0;

	if (space == VMRES_SPACE_PIO)
		assert_int_equal(vmres_devmgr_pio(r->m, (uint16_t)addr, false, 4, 1, buf), 0);
	else
		assert_int_equal(vmres_devmgr_mmio(r->m, addr, 4, false, buf), 0);
	memcpy(&v, buf, 4);
	return v;
}

static const unsigned int bar_res[3] = {RES_MMIO32, RES_IO, RES_MMIO64};

/*
 * The BAR registers, the device manager's table and bus, the system allocator
 * and dispatch all tell the same story.
 */
static void assert_rig_agrees(struct rig *r)
{
	struct vmres_resource res[N_RES];
	bool mapped[N_RES];
	struct vmres_devmgr_info info;

	assert_int_equal(vmres_sysalloc_validate(r->sa), 0);
	assert_int_equal(vmres_devmgr_get(r->m, r->dev_id, &info, res, mapped, N_RES), 0);
	for (unsigned int i = 0; i < 3; i++) {
		struct vmres_pci_bar_state s = bar_state(r->f, i);
		const struct vmres_resource *x = &res[bar_res[i]];
		enum vmres_space space = x->u.addr.space;
		struct vmres_sysalloc_alloc_info a;
		uint32_t inst = 0;
		unsigned int idx = 99;
		int rc;

		assert_int_equal(s.mapped, mapped[bar_res[i]]);
		assert_int_equal(s.mapped_base, x->u.addr.base);
		/* One owner per address: reserved for this device, exactly, on the
		 * bus or not, where the register says (unless it holds no address). */
		rc = vmres_sysalloc_find(r->sa, x->pool, x->u.addr.base, &a);
		assert_int_equal(rc, 0);
		assert_int_equal(a.owner, DEV_OWNER);
		assert_int_equal(a.res.u.addr.base, s.mapped_base);
		assert_int_equal(a.res.u.addr.size, s.size);
		if (s.reg_is_address && !s.half_pending)
			assert_int_equal(s.reg_addr, s.mapped_base);
		if (s.mapped) {
			/* on the bus; dispatched to it */
			assert_int_equal(vmres_devmgr_find(r->m, space, s.mapped_base + s.size - 1,
							   &inst, &idx, NULL),
					 0);
			assert_int_equal(inst, r->dev_id);
			assert_int_equal(idx, bar_res[i]);
			assert_int_equal(guest_read(r, space, s.mapped_base), 0x5100u + bar_res[i]);
		} else {
			/* off the bus; the guest reads all ones there */
			rc = vmres_devmgr_find(r->m, space, s.mapped_base, &inst, &idx, NULL);
			assert_true(rc == VMRES_ENOENT || inst != r->dev_id);
			if (rc == VMRES_ENOENT)
				assert_int_equal(guest_read(r, space, s.mapped_base), 0xffffffffu);
		}
	}
}

/* Everything observable about the rig, to compare before and after a refusal. */
struct rig_snap {
	char *sysalloc, *devmgr;
	uint32_t regs[6];
};

static void rig_snap(struct rig *r, struct rig_snap *s)
{
	assert_int_equal(vmres_sysalloc_dump_str(r->sa, &s->sysalloc), 0);
	assert_int_equal(vmres_devmgr_dump_str(r->m, &s->devmgr), 0);
	for (unsigned int i = 0; i < 6; i++)
		s->regs[i] = guest_cfg_read(r, 0x10 + 4 * i);
}

static void assert_rig_unchanged(struct rig *r, struct rig_snap *before)
{
	struct rig_snap now;

	rig_snap(r, &now);
	assert_string_equal(now.sysalloc, before->sysalloc);
	assert_string_equal(now.devmgr, before->devmgr);
	assert_memory_equal(now.regs, before->regs, sizeof(now.regs));
	free(now.sysalloc);
	free(now.devmgr);
	free(before->sysalloc);
	free(before->devmgr);
}

static void test_devmgr_bind_takes_the_resource_bases(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);

	assert_int_equal(guest_cfg_read(r, 0x00), 0x10f01af4);
	assert_int_equal(guest_cfg_read(r, 0x10), (uint32_t)r->res[RES_MMIO32].u.addr.base);
	assert_int_equal(guest_cfg_read(r, 0x14), (uint32_t)r->res[RES_IO].u.addr.base | 1);
	assert_int_equal(guest_cfg_read(r, 0x1c), r->res[RES_MMIO64].u.addr.base >> 32);
	assert_rig_agrees(r);
	rig_free(r);
}

/* pci.h's own example: allocate, register, bind with command 0. The ranges
 * leave the bus but stay reserved, so no other device is given them. */
static void test_devmgr_bind_with_decode_off_keeps_the_reservations(void **state)
{
	(void)state;
	struct rig *r = rig_new(0);
	struct vmres_request q[3];
	struct vmres_resource got[3];
	size_t n;

	for (unsigned int i = 0; i < 3; i++)
		assert_false(bar_state(r->f, i).mapped);
	assert_rig_agrees(r);
	/* The next device's allocations, of the same shapes, land elsewhere. */
	q[0] = addr_req("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	q[1] = addr_req("pio", VMRES_SPACE_PIO, 0x20, 0x100);
	q[2] = addr_req("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	assert_int_equal(vmres_sysalloc_alloc(r->sa, q, 3, 0x77, got, 3, &n, NULL), 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_not_equal(got[i].u.addr.base, r->res[bar_res[i]].u.addr.base);
	guest_cfg_write(r, 0x04, 2, DECODE);
	for (unsigned int i = 0; i < 3; i++)
		assert_true(bar_state(r->f, i).mapped);
	assert_rig_agrees(r);
	rig_free(r);
}

static void test_devmgr_bind_refuses_resources_that_do_not_fit(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *g;
	struct rig_snap before;

	rig_snap(r, &before);
	c.bars[0].res_index = RES_IO; /* a PIO range for a memory BAR */
	g = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(g, r->m, r->dev_id), VMRES_EKIND);
	vmres_pci_func_free(g);
	c = test_config();
	c.bars[0].size = 0x2000;
	g = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(g, r->m, r->dev_id), VMRES_ESIZE);
	vmres_pci_func_free(g);
	c = test_config();
	c.msi.res_index = RES_MMIO64;
	g = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(g, r->m, r->dev_id), VMRES_EKIND);
	vmres_pci_func_free(g);
	c = test_config();
	c.msi.res_index = 5; /* vectors 5..8 of 7 resources */
	g = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(g, r->m, r->dev_id), VMRES_ENOENT);
	assert_int_equal(vmres_pci_func_bind(g, r->m, 999), VMRES_EDEVICE);
	assert_int_equal(vmres_pci_func_bind(g, NULL, r->dev_id), VMRES_EINVAL);
	vmres_pci_func_free(g);
	assert_rig_unchanged(r, &before);
	rig_free(r);
}

static void test_devmgr_valid_move_updates_allocator_bus_and_dispatch(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	uint64_t old = r->res[RES_MMIO32].u.addr.base;
	struct vmres_sysalloc_alloc_info a;

	guest_cfg_write(r, 0x10, 4, 0xc0100000u);
	assert_int_equal(guest_cfg_read(r, 0x10), 0xc0100000u);
	assert_int_equal(bar_state(r->f, 0).mapped_base, 0xc0100000u);
	assert_rig_agrees(r);
	assert_int_equal(vmres_sysalloc_find(r->sa, "mmio32", old, &a), VMRES_ENOENT);
	assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, old), 0xffffffffu);

	guest_cfg_write(r, 0x14, 4, 0x3000);
	assert_int_equal(guest_cfg_read(r, 0x14), 0x3001);
	assert_rig_agrees(r);
	rig_free(r);
}

static void test_devmgr_refused_moves_change_nothing(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	const struct {
		unsigned int reg;
		uint32_t val;
		int rc;
	} cases[] = {
		{0x10, (uint32_t)r->other[0].u.addr.base, VMRES_EOVERLAP}, /* another device */
		{0x10, 0xfee00000u, VMRES_EOVERLAP},			   /* the LAPIC/MSI */
		{0x10, 0x80000000u, VMRES_ERANGE},			   /* below the window */
		{0x14, (uint32_t)r->other[1].u.addr.base, VMRES_EOVERLAP},
		{0x14, 0x0400, VMRES_EOVERLAP},	   /* an allocation that is on no bus */
		{0x14, 0x3020, VMRES_EMISALIGNED}, /* aligned to 0x20, not to 0x100 */
		{0x14, 0x10000, VMRES_ERANGE},	   /* past port 0xffff */
	};
	struct vmres_request q = addr_req("pio", VMRES_SPACE_PIO, 0x10, 0);
	struct vmres_resource got;
	size_t n;

	q.u.addr.req.policy = VMRES_ADDR_EXACT;
	q.u.addr.req.addr = 0x410;
	assert_int_equal(vmres_sysalloc_alloc(r->sa, &q, 1, OTHER_OWNER, &got, 1, &n, NULL), 0);

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig_snap before;

		rig_snap(r, &before);
		guest_cfg_write(r, cases[i].reg, 4, cases[i].val);
		assert_int_equal(bar_state(r->f, (cases[i].reg - 0x10) / 4).last_error,
				 cases[i].rc);
		assert_rig_unchanged(r, &before);
		assert_rig_agrees(r);
	}
	rig_free(r);
}

static void test_devmgr_mem64_halves_move_within_the_64bit_pool(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);

	/* low then high, decode on */
	guest_cfg_write(r, 0x18, 4, 0x00100000u);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x1c, 4, 0x11);
	assert_int_equal(bar_state(r->f, 2).mapped_base, 0x1100100000ull);
	assert_rig_agrees(r);
	/* high then low, where the intermediate address is outside every pool */
	guest_cfg_write(r, 0x1c, 4, 0x30);
	assert_int_equal(bar_state(r->f, 2).last_error, VMRES_ERANGE);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x1c, 4, 0x12);
	guest_cfg_write(r, 0x18, 4, 0x00200000u);
	assert_int_equal(bar_state(r->f, 2).mapped_base, 0x1200200000ull);
	assert_rig_agrees(r);
	/* decode off, both halves, decode on */
	guest_cfg_write(r, 0x04, 2, VMRES_PCI_COMMAND_IO);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x18, 4, 0x00300000u);
	guest_cfg_write(r, 0x1c, 4, 0x13);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x04, 2, DECODE);
	assert_int_equal(bar_state(r->f, 2).mapped_base, 0x1300300000ull);
	assert_true(bar_state(r->f, 2).mapped);
	assert_rig_agrees(r);
	rig_free(r);
}

static void test_devmgr_decode_off_and_on(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct vmres_sysalloc_alloc_info a;

	guest_cfg_write(r, 0x04, 2, VMRES_PCI_COMMAND_MEMORY);
	assert_false(bar_state(r->f, 1).mapped);
	/* Off the bus, still reserved for the device (one owner per address). */
	assert_int_equal(vmres_sysalloc_find(r->sa, "pio", r->res[RES_IO].u.addr.base, &a), 0);
	assert_int_equal(a.owner, DEV_OWNER);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x04, 2, 0);
	assert_rig_agrees(r);
	/* While unmapped, nobody else can be given BAR0's place. */
	struct vmres_request q = addr_req("mmio32", VMRES_SPACE_MMIO, 0x1000, 0);
	struct vmres_resource got;
	size_t n;

	q.u.addr.req.policy = VMRES_ADDR_EXACT;
	q.u.addr.req.addr = r->res[RES_MMIO32].u.addr.base;
	assert_int_equal(vmres_sysalloc_alloc(r->sa, &q, 1, OTHER_OWNER, &got, 1, &n, NULL),
			 VMRES_EOVERLAP);
	/* Linux's way of moving a BAR (decode off, write, decode on), onto another
	 * device's range: refused at the write, the register shows the range's
	 * place, and decode on maps it there. */
	guest_cfg_write(r, 0x10, 4, (uint32_t)r->other[0].u.addr.base);
	assert_int_equal(bar_state(r->f, 0).last_error, VMRES_EOVERLAP);
	assert_int_equal(guest_cfg_read(r, 0x10), (uint32_t)r->res[RES_MMIO32].u.addr.base);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x04, 2, DECODE);
	assert_true(bar_state(r->f, 0).mapped);
	assert_true(bar_state(r->f, 1).mapped);
	assert_true(bar_state(r->f, 2).mapped);
	assert_int_equal(bar_state(r->f, 0).mapped_base, r->res[RES_MMIO32].u.addr.base);
	assert_rig_agrees(r);
	/* The same to a free place: moved at the write, mapped there at decode on. */
	guest_cfg_write(r, 0x04, 2, 0);
	guest_cfg_write(r, 0x10, 4, 0xc0200000u);
	assert_int_equal(bar_state(r->f, 0).mapped_base, 0xc0200000u);
	assert_rig_agrees(r);
	guest_cfg_write(r, 0x04, 2, DECODE);
	assert_true(bar_state(r->f, 0).mapped);
	assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, 0xc0200000u), 0x5100u + RES_MMIO32);
	assert_rig_agrees(r);
	rig_free(r);
}

static void test_devmgr_sizing_with_decode_on_keeps_everything(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct rig_snap before;

	rig_snap(r, &before);
	for (unsigned int reg = 0x10; reg < 0x28; reg += 4) {
		uint32_t old = guest_cfg_read(r, reg);

		guest_cfg_write(r, reg, 4, 0xffffffffu);
		assert_rig_agrees(r);
		guest_cfg_write(r, reg, 4, old);
	}
	assert_rig_unchanged(r, &before);
	rig_free(r);
}

static void test_devmgr_msi_reroute_reaches_the_notifier(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct vmres_resource res[N_RES];
	struct vmres_devmgr_info info;

	guest_cfg_write(r, 0x44, 4, 0xfee00000u);
	guest_cfg_write(r, 0x4c, 2, 0x0031);
	assert_int_equal(r->notified, 0);
	guest_cfg_write(r, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE);
	assert_int_equal(r->notified, 1);
	assert_int_equal(r->last_gsi, r->res[RES_MSI].u.msi.gsi);
	assert_int_equal(r->last_msg.addr_lo, 0xfee00000u);
	assert_int_equal(r->last_msg.data, 0x0031);
	guest_cfg_write(r, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE | (2u << 4));
	/* Four vectors own the data's low two bits: vector 0's message changes too. */
	assert_int_equal(r->notified, 5);
	assert_int_equal(r->last_gsi, r->res[RES_MSI + 3].u.msi.gsi);
	assert_int_equal(r->last_msg.data, 0x0033);
	assert_int_equal(vmres_devmgr_get(r->m, r->dev_id, &info, res, NULL, N_RES), 0);
	assert_int_equal(res[RES_MSI + 2].u.msi.msg.data, 0x0032);
	assert_int_equal(res[RES_MSI + 2].u.msi.msg.addr_lo, 0xfee00000u);
	rig_free(r);
}

static int rig_setup(void **state)
{
	*state = rig_new(DECODE);
	return 0;
}

/* Frees the rig even when the test failed half-way. */
static int rig_teardown(void **state)
{
	rig_free(*state);
	return 0;
}

static void test_devmgr_mem64_bar_moves_below_4g_into_the_32bit_pool(void **state)
{
	struct rig *r = *state;
	struct vmres_sysalloc_alloc_info a;

	/* SeaBIOS puts small 64-bit BARs below 4 GiB: high half 0, then low. */
	guest_cfg_write(r, 0x1c, 4, 0);
	guest_cfg_write(r, 0x18, 4, 0xc0400000u);
	assert_int_equal(bar_state(r->f, 2).last_error, 0);
	assert_int_equal(bar_state(r->f, 2).mapped_base, 0xc0400000u);
	assert_int_equal(vmres_sysalloc_find(r->sa, "mmio32", 0xc0400000u, &a), 0);
	assert_int_equal(a.owner, DEV_OWNER);
	assert_rig_agrees(r);
}

/* Linux reassigns a 64-bit BAR into what it sees as free space above RAM,
 * outside the preset's windows (decode off, both halves, decode on). Strict,
 * the device manager refuses and the BAR snaps back; following the guest, the
 * range goes there, recorded in the guest pool, and never onto RAM. */
static void test_devmgr_following_the_guest_places_bars_outside_the_pools(void **state)
{
	struct rig *r = *state;
	struct vmres_sysalloc_alloc_info a;
	const uint64_t above_ram = 0x800000000ull;

	guest_cfg_write(r, 0x04, 2, VMRES_PCI_COMMAND_IO);
	guest_cfg_write(r, 0x18, 4, 0x0000000c);
	guest_cfg_write(r, 0x1c, 4, (uint32_t)(above_ram >> 32));
	assert_int_equal(bar_state(r->f, 2).last_error, VMRES_ERANGE);
	guest_cfg_write(r, 0x04, 2, DECODE); /* the refused half snaps back */
	assert_int_equal(bar_state(r->f, 2).reg_addr, r->res[RES_MMIO64].u.addr.base);
	assert_true(bar_state(r->f, 2).mapped);
	assert_rig_agrees(r);

	assert_int_equal(vmres_devmgr_set_policy(r->m, VMRES_DEVMGR_FOLLOW_GUEST), 0);
	assert_int_equal(vmres_devmgr_set_policy(r->m, (enum vmres_devmgr_policy)7), VMRES_EINVAL);
	assert_int_equal(vmres_sysalloc_add_guest_pool(r->sa, "guest-mmio", VMRES_SPACE_MMIO), 0);
	assert_int_equal(
		vmres_sysalloc_reserve(r->sa, "guest-mmio", 0, 0xc0000000u, 0, 1, "ram", NULL), 0);
	assert_int_equal(vmres_sysalloc_reserve(r->sa, "guest-mmio", 0x100000000ull, 0x100000000ull,
						0, 1, "ram-high", NULL),
			 0);
	/* onto RAM: refused; at decode on the BAR shows where its range is */
	guest_cfg_write(r, 0x04, 2, VMRES_PCI_COMMAND_IO);
	guest_cfg_write(r, 0x18, 4, 0x0000000c);
	guest_cfg_write(r, 0x1c, 4, 1);
	assert_int_equal(bar_state(r->f, 2).last_error, VMRES_EOVERLAP);
	guest_cfg_write(r, 0x04, 2, DECODE);
	assert_int_equal(bar_state(r->f, 2).reg_addr, r->res[RES_MMIO64].u.addr.base);
	assert_rig_agrees(r);
	/* above RAM: taken, recorded as guest-placed, mapped at decode on */
	guest_cfg_write(r, 0x04, 2, VMRES_PCI_COMMAND_IO);
	guest_cfg_write(r, 0x18, 4, 0x0000000c);
	guest_cfg_write(r, 0x1c, 4, (uint32_t)(above_ram >> 32));
	assert_int_equal(bar_state(r->f, 2).last_error, 0);
	assert_int_equal(bar_state(r->f, 2).mapped_base, above_ram);
	guest_cfg_write(r, 0x04, 2, DECODE);
	assert_true(bar_state(r->f, 2).mapped);
	assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, above_ram), 0x5100u + RES_MMIO64);
	assert_int_equal(vmres_sysalloc_find(r->sa, "guest-mmio", above_ram, &a), 0);
	assert_int_equal(a.owner, DEV_OWNER);
	assert_rig_agrees(r);
	/* no one else is given that space, and a move back into a window frees it */
	assert_int_equal(
		vmres_sysalloc_reserve(r->sa, "guest-mmio", above_ram, 0x1000, 0, 0x77, NULL, NULL),
		VMRES_EOVERLAP);
	guest_cfg_write(r, 0x1c, 4, 0);
	guest_cfg_write(r, 0x18, 4, 0xc0400000u);
	assert_int_equal(bar_state(r->f, 2).mapped_base, 0xc0400000u);
	assert_int_equal(vmres_sysalloc_find(r->sa, "guest-mmio", above_ram, &a), VMRES_ENOENT);
	assert_rig_agrees(r);
}

/*
 * Where firmware and Linux put BARs, through the device manager and the
 * x86_64 preset (mmio64 grown to hold a 64 GiB BAR): 64-bit BARs of 4 KiB to
 * 64 GiB at the lowest and highest aligned places of mmio64 and, up to 256 MiB,
 * below 4 GiB; 32-bit BARs up to the top of what mmio32 leaves free. Each is
 * written as Linux does (decode off, low half, high half, decode on), then as
 * a 64-bit BAR is written with decode on (high half first), and must end on the
 * bus, reserved for the device, where the register says.
 */
static void test_devmgr_bars_of_every_size_at_the_edges_of_the_pools(void **state)
{
	(void)state;
	static const uint64_t sizes64[] = {0x1000,     0x10000,	   0x100000,
					   0x10000000, 1ull << 30, 1ull << 31,
					   1ull << 32, 1ull << 34, 1ull << 36};
	static const uint64_t sizes32[] = {0x1000, 0x100000, 0x10000000};
	const uint64_t lo64 = 0x1000000000ull, hi64 = 0x3fffffffffull; /* 192 GiB */
	const uint64_t top32 = 0xfec00000u;  /* the preset reserves from here up */
	const uint64_t ecam32 = 0xe0000000u; /* and 256 MiB here */

	for (unsigned int k = 0; k < 9 + 3; k++) {
		bool is64 = k < 9;
		uint64_t size = is64 ? sizes64[k] : sizes32[k - 9];
		uint64_t at[3];
		unsigned int n_at = 0;

		if (is64) {
			at[n_at++] = lo64;
			at[n_at++] = (hi64 + 1 - size) & ~(size - 1);
			if (size <= 0x10000000) /* below the preset's platform devices */
				at[n_at++] = 0xc0000000u;
		} else {
			at[n_at++] = 0xc0000000u;
			at[n_at] = (top32 - size) & ~(size - 1);
			if (at[n_at] < ecam32 + 0x10000000 && at[n_at] + size > ecam32)
				at[n_at] = ecam32 - size; /* below the preset's ECAM */
			n_at++;
		}
		for (unsigned int j = 0; j < n_at; j++) {
			struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
			struct vmres_device dev = VMRES_DEVICE_INIT;
			struct vmres_sysalloc_alloc_info a;
			struct vmres_request q;
			struct vmres_resource res;
			struct vmres_sysalloc *sa;
			struct vmres_devmgr *m;
			struct vmres_pci_func *f;
			uint32_t id, found;
			size_t n;

			assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
			assert_int_equal(vmres_sysalloc_resize_pool(sa, "mmio64", lo64, hi64), 0);
			assert_int_equal(vmres_devmgr_new(sa, &m), 0);
			q = test_rq_addr(is64 ? "mmio64" : "mmio32", VMRES_SPACE_MMIO, size, size,
					 VMRES_ADDR_FIRST_FIT, 0);
			assert_int_equal(
				vmres_sysalloc_alloc(sa, &q, 1, DEV_OWNER, &res, 1, &n, NULL), 0);
			dev.owner = DEV_OWNER;
			assert_int_equal(vmres_devmgr_register(m, &dev, 0, &res, 1, &id), 0);
			c.vendor_id = 0x1af4;
			c.bars[0] = (struct vmres_pci_bar){.kind = is64 ? VMRES_PCI_BAR_MEM64
									: VMRES_PCI_BAR_MEM32,
							   .size = size};
			f = new_func(&c);
			assert_int_equal(vmres_pci_func_bind(f, m, id), 0);
			/* Linux: decode off, low, high, decode on */
			wr(f, 0x10, 4, (uint32_t)at[j] | (is64 ? 0x4 : 0));
			if (is64)
				wr(f, 0x14, 4, (uint32_t)(at[j] >> 32));
			wr(f, 0x04, 2, VMRES_PCI_COMMAND_MEMORY);
			if (!bar_state(f, 0).mapped || bar_state(f, 0).mapped_base != at[j])
				fail_msg("size 0x%llx at 0x%llx: at 0x%llx mapped %d error %d",
					 (unsigned long long)size, (unsigned long long)at[j],
					 (unsigned long long)bar_state(f, 0).mapped_base,
					 bar_state(f, 0).mapped, bar_state(f, 0).last_error);
			assert_int_equal(bar_state(f, 0).reg_addr, at[j]);
			assert_int_equal(
				vmres_sysalloc_find(sa, is64 && at[j] >= lo64 ? "mmio64" : "mmio32",
						    at[j] + size - 1, &a),
				0);
			assert_int_equal(a.owner, DEV_OWNER);
			assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, at[j] + size - 1,
							   &found, NULL, NULL),
					 0);
			assert_int_equal(found, id);
			/* back where it was with decode on, high half first */
			if (is64)
				wr(f, 0x14, 4, (uint32_t)(res.u.addr.base >> 32));
			wr(f, 0x10, 4, (uint32_t)res.u.addr.base | (is64 ? 0x4 : 0));
			assert_int_equal(bar_state(f, 0).mapped_base, res.u.addr.base);
			assert_int_equal(bar_state(f, 0).refused, 0);
			assert_int_equal(vmres_sysalloc_validate(sa), 0);
			vmres_devmgr_free(m);
			vmres_pci_func_free(f);
			vmres_sysalloc_free(sa);
		}
	}
}

static void test_devmgr_bind_that_cannot_map_changes_nothing(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *off, *on;
	struct vmres_request q = addr_req("mmio64", VMRES_SPACE_MMIO, 0x1000, 0);
	struct vmres_resource got;
	struct rig_snap before;
	size_t n;

	/* A second view of the device with decode off takes every range off the bus... */
	off = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(off, r->m, r->dev_id), 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_false(bar_state(off, i).mapped);
	/* ...whose reservations nobody else can take meanwhile... */
	q.u.addr.req.policy = VMRES_ADDR_EXACT;
	q.u.addr.req.addr = r->res[RES_MMIO64].u.addr.base + 0x1000;
	assert_int_equal(vmres_sysalloc_alloc(r->sa, &q, 1, OTHER_OWNER, &got, 1, &n, NULL),
			 VMRES_EOVERLAP);
	/* ...but a device with a fixed range outside the pools' books may map
	 * over BAR2's place while it is off. */
	struct vmres_device fixed = VMRES_DEVICE_INIT;
	struct vmres_resource over = {.kind = VMRES_RES_ADDR};
	uint32_t fixed_id;

	fixed.name = "fixed";
	over.u.addr.space = VMRES_SPACE_MMIO;
	over.u.addr.base = r->res[RES_MMIO64].u.addr.base + 0x1000;
	over.u.addr.size = 0x1000;
	assert_int_equal(
		vmres_devmgr_register(r->m, &fixed, VMRES_DEVMGR_NO_PARENT, &over, 1, &fixed_id),
		0);
	rig_snap(r, &before);

	/* Binding with decode on maps BAR0 and BAR1, fails on BAR2, and undoes them. */
	c.command = DECODE;
	on = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(on, r->m, r->dev_id), VMRES_EOVERLAP);
	assert_rig_unchanged(r, &before);
	vmres_pci_func_free(on);
	vmres_pci_func_free(off);
	rig_free(r);
}

struct delivery_log {
	unsigned int count;
	uint32_t gsi;
	struct vmres_msi_msg msg;
};

static void log_delivery(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			 const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct delivery_log *log = ctx;

	if (kind != VMRES_IRQ_MSI || signal != VMRES_IRQ_SIGNAL_EDGE || !msg)
		return;
	log->count++;
	log->gsi = gsi;
	log->msg = *msg;
}

static void test_msi_sources_follow_enable_mask_and_message(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct delivery_log log = {0};
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *mgr;
	struct vmres_irq_group *group;
	struct vmres_irq_src *src[4];
	struct vmres_pci_msi_state s;

	assert_int_equal(vmres_irq_backend_callback_new(log_delivery, &log, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &mgr), 0);
	assert_int_equal(vmres_irq_group_new(mgr, &r->res[RES_MSI], 4, &group), 0);
	for (unsigned int v = 0; v < 4; v++)
		assert_int_equal(vmres_irq_group_src(group, v, &src[v]), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(r->m, vmres_irq_mgr_msi_notify, mgr), 0);
	assert_int_equal(vmres_pci_func_set_msi_sources(r->f, src, 3), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_set_msi_sources(r->f, src, 4), 0);

	/* MSI off: the sources are disabled. */
	assert_int_equal(vmres_irq_src_trigger(src[0]), VMRES_ESTATE);
	guest_cfg_write(r, 0x44, 4, 0xfee00000u);
	guest_cfg_write(r, 0x4c, 2, 0x0020);
	guest_cfg_write(r, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE | (1u << 4));
	assert_int_equal(vmres_irq_src_trigger(src[1]), 0);
	assert_int_equal(log.count, 1);
	assert_int_equal(log.gsi, r->res[RES_MSI + 1].u.msi.gsi);
	assert_int_equal(log.msg.addr_lo, 0xfee00000u);
	assert_int_equal(log.msg.data, 0x0021);
	assert_int_equal(vmres_irq_src_trigger(src[2]), VMRES_ESTATE); /* only 2 enabled */

	/* Masked: held and shown pending; the message changes meanwhile. */
	guest_cfg_write(r, 0x50, 4, 0x1);
	assert_int_equal(vmres_irq_src_trigger(src[0]), 0);
	assert_int_equal(log.count, 1);
	assert_int_equal(guest_cfg_read(r, 0x54), 0x1);
	assert_int_equal(vmres_pci_func_msi_get(r->f, &s), 0);
	assert_int_equal(s.pending, 0x1);
	guest_cfg_write(r, 0x4c, 2, 0x0040);
	assert_int_equal(log.count, 1);
	/* Unmasked: delivered once, with the new message. */
	guest_cfg_write(r, 0x50, 4, 0x0);
	assert_int_equal(log.count, 2);
	assert_int_equal(log.gsi, r->res[RES_MSI].u.msi.gsi);
	assert_int_equal(log.msg.data, 0x0040);
	assert_int_equal(guest_cfg_read(r, 0x54), 0);

	/* MSI off again: triggers are refused. */
	guest_cfg_write(r, 0x42, 2, 0);
	assert_int_equal(vmres_irq_src_trigger(src[0]), VMRES_ESTATE);
	assert_int_equal(log.count, 2);
	assert_int_equal(vmres_pci_func_set_msi_sources(r->f, NULL, 0), 0);
	rig_free(r);
	vmres_irq_group_free(group);
	vmres_irq_mgr_free(mgr); /* and its backend */
}

/* ------------------------------------------------------------------------ */
/* MSI-X through a device manager (x86_64 preset) and an interrupt manager   */
/* (callback backend): BAR0 of 16 KiB, the table at 0x2000, the PBA at 0x3000 */

#define MX_VECTORS 8u
#define MX_TABLE   0x2000u
#define MX_PBA	   0x3000u
#define MX_CAP	   0x40u
#define MX_CTRL	   (MX_CAP + 2)
enum { MX_RES_BAR = 0, MX_RES_MSIX = 1, MX_RES_MSI = 1 + MX_VECTORS, MX_N_RES = 2 + MX_VECTORS };

struct mx_rig {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_irq_mgr *irq;
	struct vmres_irq_group *group, *msi_group;
	struct vmres_irq_src *src[MX_VECTORS], *msi_src;
	struct vmres_pci_func *f;
	uint32_t id;
	struct vmres_resource res[MX_N_RES];
	uint64_t bar;
	struct delivery_log log;
	unsigned int dev_reads, dev_writes; /* BAR accesses that reached the device */
	int refuse_reroute;		    /* the MSI notifier's answer, when not 0 */
};

/* The interrupt manager's notifier, or a refusal the test asks for. */
static int mx_notifier(void *ctx, uint32_t instance, unsigned int res_index, uint32_t gsi,
		       const struct vmres_msi_msg *msg)
{
	struct mx_rig *r = ctx;

	if (r->refuse_reroute)
		return r->refuse_reroute;
	return vmres_irq_mgr_msi_notify(r->irq, instance, res_index, gsi, msg);
}

/* The device's BAR handlers: the helper first, then the device's registers. */
static uint64_t mx_dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			    unsigned int size)
{
	struct mx_rig *r = opaque;
	uint64_t v;

	(void)addr;
	if (!vmres_pci_func_bar_read(r->f, range, offset, size, &v))
		return v;
	r->dev_reads++;
	return 0x5e;
}

static void mx_dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size, uint64_t value)
{
	struct mx_rig *r = opaque;

	(void)addr;
	if (!vmres_pci_func_bar_write(r->f, range, offset, size, value))
		return;
	r->dev_writes++;
}

static struct mx_rig *mx_rig_new(bool with_msi, bool sources)
{
	struct mx_rig *r = calloc(1, sizeof(*r));
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_irq_backend *be;
	struct vmres_request q[3];
	size_t n = 0;

	assert_non_null(r);
	assert_int_equal(vmres_sysalloc_new_x86_64(&r->sa), 0);
	assert_int_equal(vmres_devmgr_new(r->sa, &r->m), 0);
	assert_int_equal(vmres_irq_backend_callback_new(log_delivery, &r->log, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &r->irq), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(r->m, mx_notifier, r), 0);
	q[0] = addr_req("mmio32", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	for (unsigned int i = 1; i < 3; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		q[i].kind = VMRES_RES_MSI;
		strcpy(q[i].pool, "gsi-msi");
		q[i].u.msi.count = i == 1 ? MX_VECTORS : 1;
		q[i].u.msi.any = true;
	}
	assert_int_equal(vmres_sysalloc_alloc(r->sa, q, 3, DEV_OWNER, r->res, MX_N_RES, &n, NULL),
			 0);
	assert_int_equal(n, MX_N_RES);
	dev.name = "msix-test";
	dev.opaque = r;
	dev.read = mx_dev_read;
	dev.write = mx_dev_write;
	dev.owner = DEV_OWNER;
	assert_int_equal(
		vmres_devmgr_register(r->m, &dev, VMRES_DEVMGR_NO_PARENT, r->res, MX_N_RES, &r->id),
		0);
	c.vendor_id = 0x1af4;
	c.device_id = 0x1041;
	c.class_code = 0x020000;
	c.command = VMRES_PCI_COMMAND_MEMORY;
	c.bars[0] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM32, .size = 0x4000, .res_index = MX_RES_BAR};
	c.msix = (struct vmres_pci_msix){.vectors = MX_VECTORS,
					 .offset = with_msi ? 0x50 : 0,
					 .table_bar = 0,
					 .table_offset = MX_TABLE,
					 .pba_bar = 0,
					 .pba_offset = MX_PBA,
					 .res_index = MX_RES_MSIX};
	if (with_msi)
		c.msi = (struct vmres_pci_msi){
			.vectors = 1, .addr64 = true, .res_index = MX_RES_MSI};
	r->f = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(r->f, r->m, r->id), 0);
	r->bar = r->res[MX_RES_BAR].u.addr.base;
	assert_int_equal(vmres_irq_group_new(r->irq, &r->res[MX_RES_MSIX], MX_VECTORS, &r->group),
			 0);
	for (unsigned int v = 0; v < MX_VECTORS; v++)
		assert_int_equal(vmres_irq_group_src(r->group, v, &r->src[v]), 0);
	assert_int_equal(vmres_irq_group_new(r->irq, &r->res[MX_RES_MSI], 1, &r->msi_group), 0);
	assert_int_equal(vmres_irq_group_src(r->msi_group, 0, &r->msi_src), 0);
	if (sources)
		assert_int_equal(vmres_pci_func_set_msix_sources(r->f, r->src, MX_VECTORS), 0);
	if (with_msi)
		assert_int_equal(vmres_pci_func_set_msi_sources(r->f, &r->msi_src, 1), 0);
	return r;
}

static void mx_rig_free(struct mx_rig *r)
{
	vmres_devmgr_free(r->m);
	vmres_pci_func_free(r->f);
	vmres_irq_group_free(r->group);
	vmres_irq_group_free(r->msi_group);
	vmres_irq_mgr_free(r->irq);
	vmres_sysalloc_free(r->sa);
	free(r);
}

/* Guest MMIO through the device manager. */
static void mx_write(struct mx_rig *r, uint64_t off, unsigned int size, uint64_t val)
{
	uint8_t buf[8];

	memcpy(buf, &val, 8);
	assert_int_equal(vmres_devmgr_mmio(r->m, r->bar + off, size, true, buf), 0);
}

static uint64_t mx_read(struct mx_rig *r, uint64_t off, unsigned int size)
{
	uint8_t buf[8] = {0};
	uint64_t v = 0;

	assert_int_equal(vmres_devmgr_mmio(r->m, r->bar + off, size, false, buf), 0);
	memcpy(&v, buf, size);
	return v;
}

static uint64_t entry_off(unsigned int v, unsigned int word)
{
	return MX_TABLE + 16u * v + 4u * word;
}

/* The guest programs vector @v's message: address 0xfee0_0000 | apic << 12, data. */
static void mx_program(struct mx_rig *r, unsigned int v, uint32_t apic, uint32_t data)
{
	mx_write(r, entry_off(v, 0), 4, 0xfee00000u | apic << 12);
	mx_write(r, entry_off(v, 1), 4, 0);
	mx_write(r, entry_off(v, 2), 4, data);
}

static struct vmres_msi_msg devmgr_msg(struct mx_rig *r, unsigned int res_index)
{
	struct vmres_resource res[MX_N_RES];
	struct vmres_devmgr_info info;

	assert_int_equal(vmres_devmgr_get(r->m, r->id, &info, res, NULL, MX_N_RES), 0);
	return res[res_index].u.msi.msg;
}

static struct vmres_pci_msix_vector mx_vector(struct mx_rig *r, unsigned int v)
{
	struct vmres_pci_msix_vector x;

	assert_int_equal(vmres_pci_func_msix_vector_get(r->f, v, &x), 0);
	return x;
}

static void test_msix_capability_and_table_start_masked_and_empty(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);
	struct vmres_pci_msix_state s;

	assert_int_equal(rd(r->f, VMRES_PCI_CAP_PTR, 1), MX_CAP);
	assert_true(rd(r->f, VMRES_PCI_STATUS, 2) & VMRES_PCI_STATUS_CAP_LIST);
	assert_int_equal(rd(r->f, MX_CAP, 1), VMRES_PCI_CAP_ID_MSIX);
	assert_int_equal(rd(r->f, MX_CAP + 1, 1), 0);
	assert_int_equal(rd(r->f, MX_CTRL, 2), MX_VECTORS - 1);
	assert_int_equal(rd(r->f, MX_CAP + 4, 4), MX_TABLE | 0);
	assert_int_equal(rd(r->f, MX_CAP + 8, 4), MX_PBA | 0);
	/* Read-only: table size, BIR and offsets. */
	wr(r->f, MX_CAP + 4, 4, 0xffffffffu);
	wr(r->f, MX_CAP + 8, 4, 0);
	wr(r->f, MX_CTRL, 2, 0x07ff);
	assert_int_equal(rd(r->f, MX_CAP + 4, 4), MX_TABLE);
	assert_int_equal(rd(r->f, MX_CAP + 8, 4), MX_PBA);
	assert_int_equal(rd(r->f, MX_CTRL, 2), MX_VECTORS - 1);
	for (unsigned int v = 0; v < MX_VECTORS; v++) {
		assert_int_equal(mx_read(r, entry_off(v, 0), 4), 0);
		assert_int_equal(mx_read(r, entry_off(v, 2), 4), 0);
		assert_int_equal(mx_read(r, entry_off(v, 3), 4), VMRES_PCI_MSIX_VECTOR_MASKED);
	}
	assert_int_equal(mx_read(r, MX_PBA, 8), 0);
	assert_int_equal(r->dev_reads, 0);
	/* Bytes outside the table and PBA are the device's. */
	assert_int_equal(mx_read(r, MX_TABLE - 4, 4), 0x5e);
	assert_int_equal(mx_read(r, MX_TABLE + 16 * MX_VECTORS, 4), 0x5e);
	assert_int_equal(mx_read(r, MX_PBA + 8, 4), 0x5e);
	mx_write(r, 0, 4, 1);
	assert_int_equal(r->dev_reads, 3);
	assert_int_equal(r->dev_writes, 1);
	assert_int_equal(vmres_pci_func_msix_get(r->f, &s), 0);
	assert_false(s.enabled);
	assert_false(s.function_mask);
	assert_int_equal(s.vectors, MX_VECTORS);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), VMRES_ESTATE);
	assert_int_equal(r->log.count, 0);
	mx_rig_free(r);
}

/* Linux (drivers/pci/msi/msi.c, msix_capability_init()): enable with the
 * function masked, program the entries, clear the function mask, then
 * request_irq() unmasks the vectors one by one. */
static void test_msix_linux_sequence_routes_each_vector_as_it_is_unmasked(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);
	struct vmres_pci_msix_vector x;

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	for (unsigned int v = 0; v < MX_VECTORS; v++)
		mx_program(r, v, v, 0x4020 + v);
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	/* Still masked per vector: nothing routed, a fire is held pending. */
	for (unsigned int v = 0; v < MX_VECTORS; v++) {
		x = mx_vector(r, v);
		assert_true(x.masked);
		assert_false(x.routed);
		assert_false(x.active);
		assert_int_equal(devmgr_msg(r, MX_RES_MSIX + v).data, 0);
	}
	for (unsigned int v = 0; v < MX_VECTORS; v++) {
		mx_write(r, entry_off(v, 3), 4, 0);
		x = mx_vector(r, v);
		assert_true(x.active);
		assert_int_equal(x.routed_msg.addr_lo, 0xfee00000u | v << 12);
		assert_int_equal(devmgr_msg(r, MX_RES_MSIX + v).data, 0x4020 + v);
		assert_int_equal(vmres_pci_func_fire(r->f, v), 0);
		assert_int_equal(r->log.count, v + 1);
		assert_int_equal(r->log.gsi, r->res[MX_RES_MSIX + v].u.msi.gsi);
		assert_int_equal(r->log.msg.addr_lo, 0xfee00000u | v << 12);
		assert_int_equal(r->log.msg.data, 0x4020 + v);
		/* the next vector is still masked */
		if (v + 1 < MX_VECTORS)
			assert_false(mx_vector(r, v + 1).active);
	}
	assert_int_equal(mx_read(r, MX_PBA, 8), 0);
	/* Disable: the sources refuse, nothing pending. */
	wr(r->f, MX_CTRL, 2, 0);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), VMRES_ESTATE);
	assert_int_equal(r->log.count, MX_VECTORS);
	mx_rig_free(r);
}

/* Firmware (e.g. a UEFI driver): BAR assigned elsewhere and decode on first,
 * one entry programmed and unmasked, then MSI-X enabled with no function mask.
 * The table follows its BAR. */
static void test_msix_firmware_sequence_and_the_table_follows_its_bar(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);
	uint64_t old = r->bar, moved = 0xc1000000u;

	wr(r->f, VMRES_PCI_COMMAND, 2, 0);
	wr(r->f, VMRES_PCI_BAR_OFFSET(0), 4, 0xffffffffu);
	assert_int_equal(rd(r->f, VMRES_PCI_BAR_OFFSET(0), 4), 0xffffc000u);
	wr(r->f, VMRES_PCI_BAR_OFFSET(0), 4, (uint32_t)moved);
	wr(r->f, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_MASTER);
	assert_int_equal(bar_state(r->f, 0).mapped_base, moved);
	r->bar = moved;
	mx_program(r, 0, 1, 0x31);
	mx_write(r, entry_off(0, 3), 4, 0);
	assert_false(mx_vector(r, 0).routed); /* not enabled yet */
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	assert_true(mx_vector(r, 0).active);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), 0);
	assert_int_equal(r->log.count, 1);
	assert_int_equal(r->log.msg.data, 0x31);

	/* The guest moves the BAR: the table answers at the new address only. */
	wr(r->f, VMRES_PCI_BAR_OFFSET(0), 4, 0xc2000000u);
	r->bar = 0xc2000000u;
	assert_int_equal(mx_read(r, entry_off(0, 2), 4), 0x31);
	assert_int_equal(mx_read(r, entry_off(0, 3), 4), 0);
	mx_write(r, entry_off(0, 2), 4, 0x32);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX).data, 0x32);
	r->bar = moved;
	assert_int_equal(mx_read(r, entry_off(0, 2), 4), 0xffffffffu);
	r->bar = old;
	assert_int_equal(mx_read(r, entry_off(0, 2), 4), 0xffffffffu);
	assert_int_equal(r->dev_reads, 0);
	mx_rig_free(r);
}

/* Every size (1, 2, 4, 8) at every offset of an entry: only aligned dwords
 * and qwords write; every read returns the entry's bytes. */
static void test_msix_table_accesses_of_every_size_and_alignment(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);
	static const unsigned int sizes[] = {1, 2, 4, 8};

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	for (unsigned int si = 0; si < 4; si++) {
		unsigned int size = sizes[si];

		for (unsigned int at = 0; at + size <= 16; at++) {
			uint8_t want[16], got[16];
			uint64_t val = 0x8877665544332211ull;
			uint64_t v;

			/* A known entry 1: address 0xfee01000, data 0x1234, masked. */
			mx_write(r, entry_off(1, 0), 8, 0xfee01000u);
			mx_write(r, entry_off(1, 2), 8, 0x1ull << 32 | 0x1234);
			for (unsigned int k = 0; k < 16; k++)
				want[k] = (uint8_t)(mx_read(r, MX_TABLE + 16 + k, 1));
			assert_int_equal(vmres_pci_func_bar_write(r->f, MX_RES_BAR,
								  MX_TABLE + 16 + at, size, val),
					 0);
			if ((size == 4 || size == 8) && at % size == 0) {
				for (unsigned int k = 0; k < size; k++)
					want[at + k] = (uint8_t)(val >> (8 * k));
				want[0] &= 0xfc;		    /* address bits 1:0 */
				want[12] &= 0x01;		    /* vector control */
				want[13] = want[14] = want[15] = 0; /* reserved */
			}
			for (unsigned int k = 0; k < 16; k++) {
				assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR,
									 MX_TABLE + 16 + k, 1, &v),
						 0);
				got[k] = (uint8_t)v;
			}
			assert_memory_equal(got, want, 16);
			/* reads of every size agree with the bytes */
			for (unsigned int rs = 0; rs < 4; rs++) {
				uint64_t w = 0;

				if (at + sizes[rs] > 16)
					continue;
				assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR,
									 MX_TABLE + 16 + at,
									 sizes[rs], &v),
						 0);
				for (unsigned int k = 0; k < sizes[rs]; k++)
					w |= (uint64_t)want[at + k] << (8 * k);
				assert_true(v == w);
			}
		}
	}
	/* Straddling the end of the table: ignored, reads all ones. */
	assert_int_equal(
		vmres_pci_func_bar_write(r->f, MX_RES_BAR, MX_TABLE + 16 * MX_VECTORS - 4, 8, 0),
		0);
	assert_int_equal(mx_read(r, entry_off(MX_VECTORS - 1, 3), 4), VMRES_PCI_MSIX_VECTOR_MASKED);
	uint64_t v = 0;

	assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR, MX_TABLE - 4, 8, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR, MX_TABLE, 3, &v), VMRES_EACCESS);
	assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR + 1, MX_TABLE, 4, &v),
			 VMRES_ENOENT);
	assert_int_equal(vmres_pci_func_bar_read(NULL, MX_RES_BAR, MX_TABLE, 4, &v), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR, MX_TABLE, 4, NULL),
			 VMRES_EINVAL);
	assert_int_equal(r->dev_writes, 0);
	mx_rig_free(r);
}

static void test_msix_pba_shows_pending_and_ignores_writes(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_program(r, 3, 0, 0x43);
	assert_int_equal(vmres_pci_func_fire(r->f, 3), 0); /* masked: pending */
	assert_int_equal(r->log.count, 0);
	assert_int_equal(mx_read(r, MX_PBA, 8), 1u << 3);
	assert_int_equal(mx_read(r, MX_PBA, 1), 1u << 3);
	mx_write(r, MX_PBA, 8, 0);
	mx_write(r, MX_PBA, 4, 0xff);
	assert_int_equal(mx_read(r, MX_PBA, 4), 1u << 3);
	assert_true(mx_vector(r, 3).pending);
	assert_int_equal(r->dev_writes, 0);
	mx_rig_free(r);
}

/* PCI Express Base 6.0, 6.1.4.5: a masked vector's interrupt sets its pending
 * bit; on unmask it is sent once, with the message then in force. */
static void test_msix_pending_then_unmask_delivers_once_with_the_current_message(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_program(r, 2, 0, 0x50);
	mx_write(r, entry_off(2, 3), 4, 0);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX + 2).data, 0x50);

	/* The vector's own mask. */
	mx_write(r, entry_off(2, 3), 4, 1);
	assert_int_equal(vmres_pci_func_fire(r->f, 2), 0);
	assert_int_equal(vmres_pci_func_fire(r->f, 2), 0);
	assert_int_equal(r->log.count, 0);
	mx_program(r, 2, 3, 0x51); /* retargeted while masked: not routed yet */
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX + 2).data, 0x50);
	mx_write(r, entry_off(2, 3), 4, 0);
	assert_int_equal(r->log.count, 1);
	assert_int_equal(r->log.msg.data, 0x51);
	assert_int_equal(r->log.msg.addr_lo, 0xfee03000u);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX + 2).data, 0x51);
	assert_int_equal(mx_read(r, MX_PBA, 8), 0);
	mx_write(r, entry_off(2, 3), 4, 0); /* unmasked again: nothing more */
	assert_int_equal(r->log.count, 1);

	/* The function mask. */
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	assert_int_equal(vmres_pci_func_fire(r->f, 2), 0);
	assert_int_equal(r->log.count, 1);
	assert_int_equal(mx_read(r, MX_PBA, 8), 1u << 2);
	mx_write(r, entry_off(2, 2), 4, 0x52);
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(r->log.count, 2);
	assert_int_equal(r->log.msg.data, 0x52);
	assert_int_equal(mx_read(r, MX_PBA, 8), 0);
	mx_rig_free(r);
}

/* The device manager refuses a vector's route (its notifier failed): the
 * vector stays inactive with its interrupt pending, the refusal is reported,
 * and the next unmask routes it and delivers the pending interrupt once. */
static void test_msix_refused_route_keeps_the_vector_pending_until_routed(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);
	struct vmres_pci_msix_state xs;

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_program(r, 1, 2, 0x70);
	r->refuse_reroute = VMRES_ESYS;
	mx_write(r, entry_off(1, 3), 4, 0); /* unmask: the route is refused */
	assert_int_equal(vmres_pci_func_msix_get(r->f, &xs), 0);
	assert_int_equal(xs.last_error, VMRES_ESYS);
	assert_false(mx_vector(r, 1).active);
	assert_false(mx_vector(r, 1).routed);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX + 1).data, 0);
	assert_int_equal(vmres_pci_func_fire(r->f, 1), 0);
	assert_int_equal(r->log.count, 0);
	assert_int_equal(mx_read(r, MX_PBA, 8), 1u << 1);
	/* the guest masks and unmasks again; now the route is taken */
	r->refuse_reroute = 0;
	mx_write(r, entry_off(1, 3), 4, 1);
	mx_write(r, entry_off(1, 3), 4, 0);
	assert_true(mx_vector(r, 1).active);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX + 1).data, 0x70);
	assert_int_equal(r->log.count, 1);
	assert_int_equal(r->log.msg.data, 0x70);
	assert_int_equal(mx_read(r, MX_PBA, 8), 0);
	assert_int_equal(vmres_pci_func_msix_get(r->f, &xs), 0);
	assert_int_equal(xs.last_error, 0);
	mx_rig_free(r);
}

/* Undefined by the specification; here the new message is routed at once. */
static void test_msix_message_written_while_unmasked_is_routed_at_once(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, true);

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_program(r, 0, 0, 0x60);
	mx_write(r, entry_off(0, 3), 4, 0);
	mx_write(r, entry_off(0, 2), 4, 0x61);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX).data, 0x61);
	/* A qword write of data and control at once: routed, then unmasked. */
	mx_write(r, entry_off(0, 2), 8, 0x62);
	assert_int_equal(devmgr_msg(r, MX_RES_MSIX).data, 0x62);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), 0);
	assert_int_equal(r->log.msg.data, 0x62);
	assert_int_equal(r->log.count, 1);
	mx_rig_free(r);
}

static void test_msix_and_msi_enabled_together_msix_wins(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(true, true);
	struct vmres_pci_msix_state s;

	assert_int_equal(rd(r->f, VMRES_PCI_CAP_PTR, 1), 0x40);
	assert_int_equal(rd(r->f, 0x41, 1), 0x50); /* MSI, then MSI-X */
	assert_int_equal(rd(r->f, 0x50, 1), VMRES_PCI_CAP_ID_MSIX);
	wr(r->f, 0x44, 4, 0xfee00000u);
	wr(r->f, 0x4c, 2, 0x70);
	wr(r->f, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), 0);
	assert_int_equal(r->log.count, 1);
	assert_int_equal(r->log.msg.data, 0x70);

	wr(r->f, 0x52, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_program(r, 0, 0, 0x71);
	mx_write(r, entry_off(0, 3), 4, 0);
	assert_int_equal(vmres_pci_func_msix_get(r->f, &s), 0);
	assert_true(s.msi_overridden);
	assert_int_equal(vmres_irq_src_trigger(r->msi_src), VMRES_ESTATE);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), 0);
	assert_int_equal(r->log.count, 2);
	assert_int_equal(r->log.msg.data, 0x71);

	wr(r->f, 0x52, 2, 0); /* MSI-X off: MSI delivers again */
	assert_int_equal(vmres_pci_func_fire(r->f, 0), 0);
	assert_int_equal(r->log.count, 3);
	assert_int_equal(r->log.msg.data, 0x70);
	mx_rig_free(r);
}

static void test_msix_without_sources_fire_is_refused_and_pending_is_the_devices(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, false);
	uint8_t buf[VMRES_PCI_FUNC_STATE_SIZE];

	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(vmres_pci_func_fire(r->f, 0), VMRES_ENOTSUP);
	assert_int_equal(vmres_pci_func_fire(r->f, MX_VECTORS), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_msix_set_pending(r->f, 7, true), 0);
	assert_int_equal(mx_read(r, MX_PBA, 8), 0x80);
	assert_int_equal(vmres_pci_func_msix_set_pending(r->f, 8, true), VMRES_ERANGE);
	assert_int_equal(
		vmres_pci_func_msix_vector_get(r->f, 8, &(struct vmres_pci_msix_vector){0}),
		VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_set_msix_sources(r->f, r->src, 3), VMRES_EINVAL);
	/* The version-1 layout cannot hold MSI-X: the state is larger. */
	assert_int_equal(vmres_pci_func_save_state(r->f, buf, sizeof(buf)), VMRES_ESIZE);
	mx_rig_free(r);
}

static struct vmres_pci_func_config express_config(bool integrated);

/* Every guest-visible MSI-X register and the helper's record of each vector. */
static void assert_msix_same(struct vmres_pci_func *f, struct vmres_pci_func *g)
{
	struct vmres_pci_msix_state a, b;

	assert_int_equal(vmres_pci_func_msix_get(f, &a), 0);
	assert_int_equal(vmres_pci_func_msix_get(g, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	for (unsigned int v = 0; v < a.vectors; v++) {
		struct vmres_pci_msix_vector x, y;

		memset(&x, 0, sizeof(x));
		memset(&y, 0, sizeof(y));
		assert_int_equal(vmres_pci_func_msix_vector_get(f, v, &x), 0);
		assert_int_equal(vmres_pci_func_msix_vector_get(g, v, &y), 0);
		assert_memory_equal(&x, &y, sizeof(x));
	}
}

/* The 4 KiB space as the guest reads it. */
static void dump_express_space(struct vmres_pci_func *f, uint8_t out[VMRES_PCIE_CONFIG_SIZE])
{
	for (unsigned int off = 0; off < VMRES_PCIE_CONFIG_SIZE; off += 4) {
		uint32_t v = rd(f, off, 4);

		memcpy(out + off, &v, 4);
	}
}

/* The table (entries, masks), the PBA, the function mask and each vector's
 * route come back in a new function; the 960-byte layout is refused. */
static void test_state_of_msix_function_holds_table_pending_bits_and_routes(void **state)
{
	(void)state;
	struct mx_rig *r = mx_rig_new(false, false);
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_pci_func *g, *h;
	uint8_t *st, *bad, space_a[VMRES_PCI_CONFIG_SIZE], space_b[VMRES_PCI_CONFIG_SIZE];
	size_t len;

	/* Linux's order: function mask, entries, enable, unmask some vectors. */
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_MASKALL);
	for (unsigned int v = 0; v < MX_VECTORS; v++)
		mx_program(r, v, v, 0x40 + v);
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	mx_write(r, entry_off(0, 3), 4, 0);
	mx_write(r, entry_off(1, 3), 4, 0);
	assert_true(mx_vector(r, 0).routed);
	/* vectors 2 and 5 masked and pending; then the function masked */
	assert_int_equal(vmres_pci_func_msix_set_pending(r->f, 2, true), 0);
	assert_int_equal(vmres_pci_func_msix_set_pending(r->f, 5, true), 0);
	wr(r->f, MX_CTRL, 2, VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	assert_int_equal(mx_read(r, MX_PBA, 8), 0x24);

	assert_int_equal(vmres_pci_func_state_size(r->f, &len), 0);
	assert_int_equal(len, 992 + 32 * MX_VECTORS);
	st = calloc(1, len);
	bad = calloc(1, len);
	assert_int_equal(vmres_pci_func_save_state(r->f, st, len - 1), VMRES_ESIZE);
	assert_int_equal(vmres_pci_func_save_state(r->f, st, len), 0);

	/* The rig's description, without a mapper. */
	c.vendor_id = 0x1af4;
	c.device_id = 0x1041;
	c.class_code = 0x020000;
	c.command = VMRES_PCI_COMMAND_MEMORY;
	c.bars[0] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM32, .size = 0x4000, .res_index = MX_RES_BAR};
	c.msix = (struct vmres_pci_msix){.vectors = MX_VECTORS,
					 .table_offset = MX_TABLE,
					 .pba_offset = MX_PBA,
					 .res_index = MX_RES_MSIX};
	g = new_func(&c);
	dump_space(g, space_a);
	/* Refusals, each for its reason, change nothing. */
	assert_int_equal(vmres_pci_func_load_state(g, st, VMRES_PCI_FUNC_STATE_SIZE), VMRES_ESIZE);
	memcpy(bad, st, len);
	bad[992 + 32 * 3 + 12] = 0x2; /* vector 3's control: a bit no guest can set */
	assert_int_equal(vmres_pci_func_load_state(g, bad, len), VMRES_ECORRUPT);
	memcpy(bad, st, len);
	bad[960 + 16] = 0x4; /* the table at 0x2004: misaligned */
	assert_int_equal(vmres_pci_func_load_state(g, bad, len), VMRES_ECORRUPT);
	memcpy(bad, st, len);
	bad[4] ^= 0x20; /* the size field */
	assert_int_equal(vmres_pci_func_load_state(g, bad, len), VMRES_ESIZE);
	c.msix.pba_offset = 0x3800; /* another layout */
	h = new_func(&c);
	assert_int_equal(vmres_pci_func_load_state(h, st, len), VMRES_EKIND);
	vmres_pci_func_free(h);
	c.msix.pba_offset = MX_PBA;
	c.msix.vectors = 0; /* a conventional function of the same BARs */
	h = new_func(&c);
	assert_int_equal(vmres_pci_func_load_state(h, st, len), VMRES_EKIND);
	assert_int_equal(vmres_pci_func_save_state(h, bad, VMRES_PCI_FUNC_STATE_SIZE), 0);
	assert_int_equal(vmres_pci_func_load_state(g, bad, VMRES_PCI_FUNC_STATE_SIZE), VMRES_EKIND);
	vmres_pci_func_free(h);
	dump_space(g, space_b);
	assert_memory_equal(space_a, space_b, sizeof(space_a));

	assert_int_equal(vmres_pci_func_load_state(g, st, len), 0);
	dump_space(r->f, space_a);
	dump_space(g, space_b);
	assert_memory_equal(space_a, space_b, sizeof(space_a));
	assert_msix_same(r->f, g);
	for (uint64_t k = MX_TABLE; k < MX_PBA + 8; k += 4) {
		bool ours = k < MX_TABLE + 16 * MX_VECTORS || k >= MX_PBA;
		uint64_t a = 0, b = 0;

		assert_int_equal(vmres_pci_func_bar_read(r->f, MX_RES_BAR, k, 4, &a),
				 ours ? 0 : VMRES_ENOENT);
		assert_int_equal(vmres_pci_func_bar_read(g, MX_RES_BAR, k, 4, &b),
				 ours ? 0 : VMRES_ENOENT);
		assert_int_equal(a, b);
	}
	/* Saved again, the same bytes. */
	assert_int_equal(vmres_pci_func_save_state(g, bad, len), 0);
	assert_memory_equal(st, bad, len);
	vmres_pci_func_free(g);
	free(st);
	free(bad);
	mx_rig_free(r);
}

/* The 4 KiB space: the Express capability's control registers and the
 * guest-writable bytes of an extended capability. */
static void test_state_of_express_function_holds_extended_space(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = express_config(false);
	struct vmres_pci_func *f = new_func(&c), *g, *h;
	static uint8_t space_a[VMRES_PCIE_CONFIG_SIZE], space_b[VMRES_PCIE_CONFIG_SIZE];
	unsigned int exp = 0x40 + VMRES_PCI_MSIX_CAP_SIZE;
	uint8_t *st;
	size_t len;

	/* An AER-like capability at 0x100 whose second dword the guest may write. */
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x100, 0x1, 2, 0x48), 0);
	assert_int_equal(vmres_pci_func_define(f, 0x104, 4, 0x11110000, 0x0000ffff), 0);
	wr(f, 0x104, 4, 0xabcd1234);
	wr(f, exp + 8, 2, 0x0010);    /* device control */
	wr(f, exp + 0x10, 2, 0x0040); /* link control */
	assert_int_equal(vmres_pci_func_state_size(f, &len), 0);
	assert_int_equal(len, 992 + 3840 + 32 * 4);
	st = calloc(1, len);
	assert_int_equal(vmres_pci_func_save_state(f, st, len), 0);

	g = new_func(&c); /* no extended capability: another layout */
	assert_int_equal(vmres_pci_func_load_state(g, st, len), VMRES_EKIND);
	assert_int_equal(vmres_pci_func_add_ext_capability(g, 0x100, 0x1, 2, 0x48), 0);
	assert_int_equal(vmres_pci_func_define(g, 0x104, 4, 0x11110000, 0x0000ffff), 0);
	c.express.integrated = true; /* another Express capability */
	h = new_func(&c);
	assert_int_equal(vmres_pci_func_add_ext_capability(h, 0x100, 0x1, 2, 0x48), 0);
	assert_int_equal(vmres_pci_func_load_state(h, st, len), VMRES_EKIND);
	vmres_pci_func_free(h);
	assert_int_equal(vmres_pci_func_load_state(g, st, len), 0);
	assert_int_equal(rd(g, 0x104, 4), 0x11111234u);
	assert_int_equal(rd(g, exp + 8, 2), 0x0010);
	assert_int_equal(rd(g, exp + 0x10, 2), 0x0040);
	dump_express_space(f, space_a);
	dump_express_space(g, space_b);
	assert_memory_equal(space_a, space_b, sizeof(space_a));
	vmres_pci_func_free(g);
	vmres_pci_func_free(f);
	free(st);
}

static void test_msix_bad_descriptions_are_refused(void **state)
{
	(void)state;
	struct {
		struct vmres_pci_msix msix;
		int rc;
	} cases[] = {
		{{.vectors = 2049, .table_offset = 0, .pba_offset = 0x8000}, VMRES_EINVAL},
		{{.vectors = 8, .table_bar = 1, .pba_offset = 0x800}, VMRES_EINVAL}, /* I/O */
		{{.vectors = 8, .table_bar = 3, .pba_offset = 0x800},
		 VMRES_EINVAL}, /* MEM64 upper */
		{{.vectors = 8, .table_bar = 4, .pba_offset = 0x800}, VMRES_EINVAL}, /* none */
		{{.vectors = 8, .table_bar = 6, .pba_offset = 0x800}, VMRES_EINVAL},
		{{.vectors = 8, .pba_bar = 1, .pba_offset = 0x800}, VMRES_EINVAL},
		{{.vectors = 8, .table_offset = 4, .pba_offset = 0x800}, VMRES_EMISALIGNED},
		{{.vectors = 8, .pba_offset = 0x804}, VMRES_EMISALIGNED},
		{{.vectors = 8, .table_offset = 0xf88, .pba_offset = 0x800}, VMRES_ERANGE},
		{{.vectors = 8, .table_offset = 0x1000, .pba_offset = 0x800}, VMRES_ERANGE},
		{{.vectors = 256, .table_offset = 0, .pba_offset = 0xff8}, VMRES_ERANGE},
		{{.vectors = 8, .table_offset = 0, .pba_offset = 0x78}, VMRES_EOVERLAP},
		{{.vectors = 8, .pba_offset = 0x800, .offset = 0x42}, VMRES_EINVAL},
		{{.vectors = 8, .pba_offset = 0x800, .offset = 0xf8}, VMRES_EINVAL},
		{{.vectors = 8, .pba_offset = 0x800, .offset = 0x48}, VMRES_EOVERLAP}, /* MSI */
		/* accepted: table and PBA in different BARs, 2048 vectors */
		{{.vectors = 2048, .table_bar = 2, .pba_bar = 0, .pba_offset = 0}, 0},
		{{.vectors = 8, .table_offset = 0xf80, .pba_offset = 0xf00}, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmres_pci_func_config c = test_config();
		struct vmres_pci_func *f = (struct vmres_pci_func *)&c;

		c.bars[2].size = 0x10000; /* MEM64, slots 2-3 */
		c.bars[0].size = 0x1000;
		c.msix = cases[i].msix;
		c.msix.res_index = N_RES;
		assert_int_equal(vmres_pci_func_new(&c, &f), cases[i].rc);
		if (cases[i].rc)
			assert_ptr_equal(f, (struct vmres_pci_func *)&c);
		else
			vmres_pci_func_free(f);
	}
}

/* ------------------------------------------------------------------------ */
/* PCI Express: the capability, extended space and the ECAM window         */

static struct vmres_pci_func_config express_config(bool integrated)
{
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;

	c.vendor_id = 0x1af4;
	c.device_id = 0x1042;
	c.class_code = 0x010000;
	c.bars[0] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM32, .size = 0x4000};
	c.msix = (struct vmres_pci_msix){.vectors = 4, .pba_offset = 0x2000, .res_index = 1};
	c.express = (struct vmres_pci_express){.enabled = true, .integrated = integrated};
	return c;
}

static void test_express_capability_follows_msix_and_extended_list_starts_at_0x100(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = express_config(false);
	struct vmres_pci_func *f = new_func(&c), *conv;
	unsigned int exp;

	/* MSI-X at 0x40, then the PCI Express capability right after it. */
	assert_int_equal(rd(f, VMRES_PCI_CAP_PTR, 1), 0x40);
	assert_int_equal(rd(f, 0x40, 1), VMRES_PCI_CAP_ID_MSIX);
	exp = rd(f, 0x41, 1);
	assert_int_equal(exp, 0x40 + VMRES_PCI_MSIX_CAP_SIZE);
	assert_int_equal(rd(f, exp, 1), VMRES_PCI_CAP_ID_EXP);
	assert_int_equal(rd(f, exp + 1, 1), 0);
	assert_int_equal(rd(f, exp + 2, 2), 0x0002);	/* version 2, endpoint */
	assert_int_equal(rd(f, exp + 0x12, 2), 0x0011); /* link up, x1 2.5 GT/s */
	wr(f, exp + 8, 2, 0x0000);			/* device control is the guest's */
	assert_int_equal(rd(f, exp + 8, 2), 0);
	wr(f, exp + 2, 2, 0xffff); /* the capabilities register is not */
	assert_int_equal(rd(f, exp + 2, 2), 0x0002);
	/* No extended capability yet: a zero header at 0x100; the rest reads 0. */
	assert_int_equal(rd(f, 0x100, 4), 0);
	assert_int_equal(rd(f, 0xffc, 4), 0);

	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x140, 0x1, 2, 0x48), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x100, 0x1, 2, 0x48), 0);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x144, 0xb, 1, 0x10), VMRES_EOVERLAP);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x152, 0xb, 1, 0x10),
			 VMRES_EMISALIGNED);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0xff8, 0xb, 1, 0x10), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0xfc, 0xb, 1, 0x10), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x150, 0xb, 16, 0x10), VMRES_EINVAL);
	assert_int_equal(vmres_pci_func_add_ext_capability(f, 0x150, 0xb, 1, 0x10), 0);
	assert_int_equal(rd(f, 0x100, 4), 0x15020001u); /* next 0x150, v2, AER */
	assert_int_equal(rd(f, 0x150, 4), 0x0001000bu);
	/* The body is the device's. */
	assert_int_equal(vmres_pci_func_define(f, 0x154, 4, 0x12345678, 0xffff0000), 0);
	wr(f, 0x154, 4, 0xabcdef01);
	assert_int_equal(rd(f, 0x154, 4), 0xabcd5678u);
	assert_int_equal(vmres_pci_func_define(f, 0x150, 4, 0, 0), VMRES_ERANGE);
	wr(f, 0x150, 4, 0);
	assert_int_equal(rd(f, 0x150, 4), 0x0001000bu);

	c = express_config(true);
	vmres_pci_func_free(f);
	f = new_func(&c);
	exp = rd(f, 0x41, 1);
	assert_int_equal(rd(f, exp + 2, 2), 0x0092); /* integrated endpoint */
	assert_int_equal(rd(f, exp + 0x0c, 4), 0);   /* no link */

	c = test_config();
	conv = new_func(&c);
	assert_int_equal(vmres_pci_func_add_ext_capability(conv, 0x100, 1, 1, 8), VMRES_ENOTSUP);
	vmres_pci_func_free(conv);
	vmres_pci_func_free(f);
}

static void test_conventional_function_answers_extended_offsets_with_all_ones(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);

	assert_int_equal(rd(f, 0x100, 4), 0xffffffffu);
	assert_int_equal(rd(f, 0xfff, 1), 0xff);
	assert_int_equal(rd(f, 0x802, 2), 0xffff);
	wr(f, 0x100, 4, 0);
	assert_int_equal(rd(f, 0x100, 4), 0xffffffffu);
	assert_int_equal(vmres_pci_func_define(f, 0x100, 4, 0, 0xffffffffu), VMRES_ERANGE);
	assert_int_equal(vmres_pci_func_config_read(f, 0x1000, 4, &(uint32_t){0}), VMRES_ERANGE);
	vmres_pci_func_free(f);
}

static uint64_t mmio_rd(struct vmres_devmgr *m, uint64_t addr, unsigned int size)
{
	uint8_t buf[8] = {0};
	uint64_t v = 0;

	assert_int_equal(vmres_devmgr_mmio(m, addr, size, false, buf), 0);
	memcpy(&v, buf, size);
	return v;
}

static void mmio_wr(struct vmres_devmgr *m, uint64_t addr, unsigned int size, uint64_t v)
{
	uint8_t buf[8];

	memcpy(buf, &v, 8);
	assert_int_equal(vmres_devmgr_mmio(m, addr, size, true, buf), 0);
}

#define ECAM_X86 0xe0000000ull

static uint64_t ecam_at(unsigned int bus, unsigned int dev, unsigned int fn, unsigned int reg)
{
	return (uint64_t)bus << 20 | dev << 15 | fn << 12 | reg;
}

/* x86: one host, fronted by conf1 and by the ECAM window the preset reserves. */
static void test_ecam_beside_conf1_reaches_the_same_functions(void **state)
{
	(void)state;
	struct rig *r = rig_new(DECODE);
	struct vmres_pci_func_config c = express_config(false);
	struct vmres_pci_func *pcie = new_func(&c);
	struct vmres_device dev;
	struct vmres_resource win;
	struct vmres_pci_ecam *e;
	uint32_t ecam_id;
	const uint64_t fn = ECAM_X86 + ecam_at(0, TEST_SLOT, 0, 0);
	const uint64_t px = ECAM_X86 + ecam_at(0, 5, 2, 0);

	assert_int_equal(vmres_pci_ecam_new(r->host, 256, &e), 0);
	assert_int_equal(vmres_pci_ecam_device(e, &dev), 0);
	win = test_addr_res(VMRES_SPACE_MMIO, ECAM_X86, 256 * VMRES_PCI_ECAM_BUS_SIZE);
	assert_int_equal(
		vmres_devmgr_register(r->m, &dev, VMRES_DEVMGR_NO_PARENT, &win, 1, &ecam_id), 0);
	assert_int_equal(vmres_pci_host_attach(r->host, 5, 2, pcie), 0);

	/* The same registers, every size. */
	assert_int_equal(mmio_rd(r->m, fn, 4), 0x10f01af4);
	assert_int_equal(mmio_rd(r->m, fn + 2, 2), 0x10f0);
	assert_int_equal(mmio_rd(r->m, fn + 3, 1), 0x10);
	assert_true(mmio_rd(r->m, fn, 8) == ((uint64_t)rd(r->f, 4, 4) << 32 | 0x10f01af4));
	assert_int_equal(mmio_rd(r->m, ECAM_X86, 4), 0x12378086); /* the bridge */
	assert_int_equal(mmio_rd(r->m, px, 4), 0x10421af4);
	/* Written through ECAM, seen through conf1, and back. */
	mmio_wr(r->m, fn + 0x3c, 1, 0x0b);
	assert_int_equal(guest_cfg_read(r, 0x3c) & 0xff, 0x0b);
	guest_cfg_write(r, 0x3c, 1, 0x0a);
	assert_int_equal(mmio_rd(r->m, fn + 0x3c, 1), 0x0a);
	/* A BAR moved through ECAM moves the range, as through conf1. */
	mmio_wr(r->m, fn + 0x10, 4, 0xc0300000u);
	assert_int_equal(bar_state(r->f, 0).mapped_base, 0xc0300000u);
	assert_rig_agrees(r);
	/* 8 bytes: both dwords, low first. */
	mmio_wr(r->m, fn + 0x10, 8, 0xffffffffull << 32 | 0xc0400000u);
	assert_int_equal(bar_state(r->f, 0).mapped_base, 0xc0400000u);

	/* Extended space: the PCI Express function's, the conventional's all ones. */
	assert_int_equal(mmio_rd(r->m, px + 0x100, 4), 0);
	assert_int_equal(mmio_rd(r->m, fn + 0x100, 4), 0xffffffffu);
	/* Nothing there: all ones, writes dropped. */
	assert_int_equal(mmio_rd(r->m, ECAM_X86 + ecam_at(0, 9, 0, 0), 4), 0xffffffffu);
	assert_int_equal(mmio_rd(r->m, ECAM_X86 + ecam_at(1, TEST_SLOT, 0, 0), 4), 0xffffffffu);
	assert_int_equal(mmio_rd(r->m, ECAM_X86 + ecam_at(255, 31, 7, 0xffc), 4), 0xffffffffu);
	mmio_wr(r->m, ECAM_X86 + ecam_at(1, TEST_SLOT, 0, 0x3c), 1, 0x05);
	assert_int_equal(mmio_rd(r->m, fn + 0x3c, 1), 0x0a);
	/* Crossing a dword, or 8 bytes unaligned: all ones, dropped. */
	assert_int_equal(mmio_rd(r->m, fn + 2, 4), 0xffffffffu);
	assert_true(mmio_rd(r->m, fn + 4, 8) == UINT64_MAX);
	mmio_wr(r->m, fn + 0x3b, 2, 0x0707);
	assert_int_equal(mmio_rd(r->m, fn + 0x3c, 1), 0x0a);

	uint64_t v;

	assert_int_equal(vmres_pci_ecam_read(e, 256 * VMRES_PCI_ECAM_BUS_SIZE, 4, &v),
			 VMRES_ERANGE);
	assert_int_equal(vmres_pci_ecam_read(e, 0, 3, &v), VMRES_EACCESS);
	assert_int_equal(vmres_pci_ecam_read(e, 0, 4, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_pci_ecam_write(NULL, 0, 4, 0), VMRES_EINVAL);
	assert_int_equal(vmres_pci_ecam_new(r->host, 0, &e), VMRES_ERANGE);
	assert_int_equal(vmres_pci_ecam_new(r->host, 257, &e), VMRES_ERANGE);
	assert_int_equal(vmres_pci_ecam_device(NULL, &dev), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_unregister(r->m, ecam_id), 0);
	rig_free(r);
	vmres_pci_ecam_free(e);
	vmres_pci_func_free(pcie);
}

/* aarch64: the ECAM window alone, in the preset's "pci-ecam", a BAR from
 * "pci-mmio32". */
static void test_ecam_alone_on_the_aarch64_preset(void **state)
{
	(void)state;
	struct vmres_pci_func_config c = express_config(true);
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_pci_host *host;
	struct vmres_pci_ecam *e;
	struct vmres_pci_func *f;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_sysalloc_alloc_info a;
	struct vmres_resource win, res[5];
	struct vmres_request q[1];
	uint32_t ecam_id, id;
	size_t n;
	uint64_t base, cfg0 = 0x4010000000ull + ecam_at(0, 1, 0, 0);

	assert_int_equal(vmres_sysalloc_new_aarch64(&sa), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "pci-ecam", 0x4010000000ull, &a), 0);
	assert_int_equal(a.owner, VMRES_SYSALLOC_OWNER_PLATFORM);
	assert_int_equal(a.res.u.addr.size, 0x10000000);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	assert_int_equal(vmres_pci_host_new(&host), 0);
	assert_int_equal(vmres_pci_ecam_new(host, 256, &e), 0);
	assert_int_equal(vmres_pci_ecam_device(e, &dev), 0);
	win = test_addr_res(VMRES_SPACE_MMIO, 0x4010000000ull, 256 * VMRES_PCI_ECAM_BUS_SIZE);
	assert_int_equal(vmres_devmgr_register(m, &dev, VMRES_DEVMGR_NO_PARENT, &win, 1, &ecam_id),
			 0);

	q[0] = addr_req("pci-mmio32", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	assert_int_equal(vmres_sysalloc_alloc(sa, q, 1, DEV_OWNER, res, 5, &n, NULL), 0);
	base = res[0].u.addr.base;
	assert_true(base >= 0x10000000 && base < 0x3eff0000);
	for (unsigned int v = 1; v < 5; v++) { /* MSI-X vectors: an ITS's, outside the pools */
		memset(&res[v], 0, sizeof(res[v]));
		res[v].kind = VMRES_RES_MSI;
		res[v].u.msi.gsi = 100 + v;
	}
	dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev.owner = DEV_OWNER;
	assert_int_equal(vmres_devmgr_register(m, &dev, VMRES_DEVMGR_NO_PARENT, res, 5, &id), 0);
	f = new_func(&c);
	assert_int_equal(vmres_pci_func_bind(f, m, id), 0);
	assert_int_equal(vmres_pci_host_attach(host, 1, 0, f), 0);

	assert_int_equal(mmio_rd(m, cfg0, 4), 0x10421af4);
	assert_int_equal(mmio_rd(m, cfg0 + 0x10, 4), (uint32_t)base);
	mmio_wr(m, cfg0 + 4, 2, VMRES_PCI_COMMAND_MEMORY);
	assert_true(bar_state(f, 0).mapped);
	assert_int_equal(mmio_rd(m, cfg0 + 0x100, 4), 0);
	assert_int_equal(mmio_rd(m, 0x4010000000ull, 4), 0xffffffffu); /* 00:00.0 empty */

	vmres_devmgr_free(m);
	vmres_pci_func_free(f);
	vmres_pci_ecam_free(e);
	vmres_pci_host_free(host);
	vmres_sysalloc_free(sa);
}

/* ------------------------------------------------------------------------ */
/* concurrency: guest moves while other vCPUs dispatch and read config      */

#define MOVES  400
#define BAR0_A 0xc0100000u
#define BAR0_B 0xc0200000u

struct race {
	struct rig *r;
	atomic_bool stop;
	atomic_uint bad;
	atomic_uint reads;
};

static void *race_mover(void *arg)
{
	struct race *x = arg;
	struct rig *r = x->r;
	uint8_t buf[4];

	if (vmres_devmgr_thread_register())
		atomic_fetch_add(&x->bad, 1);
	for (unsigned int i = 0; i < MOVES; i++) {
		uint32_t a = conf1_addr(0, TEST_SLOT, 0, 0x10);
		uint32_t v = i & 1 ? BAR0_B : BAR0_A;

		memcpy(buf, &a, 4);
		vmres_devmgr_pio(r->m, 0xcf8, true, 4, 1, buf);
		memcpy(buf, &v, 4);
		vmres_devmgr_pio(r->m, 0xcfc, true, 4, 1, buf);
		if (bar_state(r->f, 0).last_error)
			atomic_fetch_add(&x->bad, 1);
	}
	atomic_store(&x->stop, true);
	vmres_devmgr_thread_unregister();
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *x = arg;
	struct rig *r = x->r;

	if (vmres_devmgr_thread_register())
		atomic_fetch_add(&x->bad, 1);
	while (!atomic_load(&x->stop)) {
		for (unsigned int k = 0; k < 2; k++) {
			uint8_t buf[4];
			uint32_t v, reg;

			vmres_devmgr_mmio(r->m, k ? BAR0_B : BAR0_A, 4, false, buf);
			memcpy(&v, buf, 4);
			if (v != 0x5100u + RES_MMIO32 && v != 0xffffffffu)
				atomic_fetch_add(&x->bad, 1);
			if (vmres_pci_func_config_read(r->f, 0x10, 4, &reg) ||
			    (reg != BAR0_A && reg != BAR0_B && reg != 0xc0000000u))
				atomic_fetch_add(&x->bad, 1);
		}
		atomic_fetch_add(&x->reads, 1);
	}
	vmres_devmgr_thread_unregister();
	return NULL;
}

/* A third vCPU reprograms MSI directly (its own config path) during the moves. */
static void *race_msi(void *arg)
{
	struct race *x = arg;
	struct rig *r = x->r;
	unsigned int i = 0;

	vmres_pci_func_config_write(r->f, 0x42, 2, VMRES_PCI_MSI_CTRL_ENABLE);
	while (!atomic_load(&x->stop))
		if (vmres_pci_func_config_write(r->f, 0x4c, 2, 0x40 + (i++ & 0xf)))
			atomic_fetch_add(&x->bad, 1);
	return NULL;
}

static void test_moves_race_with_dispatch_and_config_reads(void **state)
{
	(void)state;
	struct race x = {.r = rig_new(DECODE)};
	pthread_t t[3];

	atomic_init(&x.stop, false);
	atomic_init(&x.bad, 0);
	atomic_init(&x.reads, 0);
	assert_int_equal(pthread_create(&t[0], NULL, race_reader, &x), 0);
	assert_int_equal(pthread_create(&t[1], NULL, race_msi, &x), 0);
	assert_int_equal(pthread_create(&t[2], NULL, race_mover, &x), 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	printf("# %u reader rounds during %u moves\n", atomic_load(&x.reads), MOVES);
	assert_int_equal(atomic_load(&x.bad), 0);
	assert_int_equal(bar_state(x.r->f, 0).mapped_base, BAR0_B);
	assert_rig_agrees(x.r);
	rig_free(x.r);
}

/* liburcu is not built with TSan: its rcu_barrier() hands a block it allocated
 * to its call_rcu thread, which frees it, through a queue TSan cannot see (as
 * in test_devmgr_stress.c). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "race:liburcu-memb.so\n";
}

/* ------------------------------------------------------------------------ */
/* one call into the VM, one out: vmres_pci_device_add() / _remove()        */

#define PLUG_SLOT 6u

/* Config dword @p reg of bus 0, slot @p slot, function 0, as PIO exits. */
static uint32_t slot_cfg_read(struct rig *r, unsigned int slot, unsigned int reg)
{
	uint32_t a = conf1_addr(0, slot, 0, reg), v = 0;
	uint8_t buf[4];

	memcpy(buf, &a, 4);
	assert_int_equal(vmres_devmgr_pio_access(r->m, 0xcf8, buf, 4, 1, true, NULL), 0);
	assert_int_equal(vmres_devmgr_pio_access(r->m, 0xcfc, buf, 4, 1, false, NULL), 0);
	memcpy(&v, buf, 4);
	return v;
}

static void slot_cfg_write(struct rig *r, unsigned int slot, unsigned int reg, uint32_t val)
{
	uint32_t a = conf1_addr(0, slot, 0, reg);
	uint8_t buf[4];

	memcpy(buf, &a, 4);
	assert_int_equal(vmres_devmgr_pio_access(r->m, 0xcf8, buf, 4, 1, true, NULL), 0);
	memcpy(buf, &val, 4);
	assert_int_equal(vmres_devmgr_pio_access(r->m, 0xcfc, buf, 4, 1, true, NULL), 0);
}

static void count_release(void *opaque)
{
	atomic_fetch_add((atomic_int *)opaque, 1);
}

/* The requests test_config()'s BARs and MSI name, in res_index order. */
static void plug_requests(struct vmres_request q[4])
{
	q[0] = VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	q[1] = VMRES_REQUEST_ADDR("pio", VMRES_SPACE_PIO, 0x20, 0x20);
	q[2] = VMRES_REQUEST_ADDR("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	q[3] = VMRES_REQUEST_MSI("gsi-msi", 4, true);
}

static struct vmres_device plug_device(atomic_int *released)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;

	dev.name = "plugged";
	dev.read = sig_read;
	dev.owner = 0x300;
	dev.release = count_release;
	dev.opaque = released;
	return dev;
}

struct dumps {
	char *sysalloc, *devmgr;
	uint32_t next_id;
};

static void take_dumps(struct rig *r, struct dumps *d)
{
	assert_int_equal(vmres_sysalloc_dump_str(r->sa, &d->sysalloc), 0);
	assert_int_equal(vmres_devmgr_dump_str(r->m, &d->devmgr), 0);
	assert_int_equal(vmres_devmgr_next_id(r->m, &d->next_id), 0);
}

static void assert_dumps_equal(struct rig *r, const struct dumps *before)
{
	struct dumps now;

	take_dumps(r, &now);
	assert_string_equal(now.sysalloc, before->sysalloc);
	assert_string_equal(now.devmgr, before->devmgr);
	assert_int_equal(now.next_id, before->next_id);
	free(now.sysalloc);
	free(now.devmgr);
}

static void test_device_add_then_remove_leaves_sysalloc_and_devmgr_as_before(void **state)
{
	struct rig *r = rig_new(0);
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	struct vmres_request q[4];
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	atomic_int released = 0;
	struct vmres_device dev = plug_device(&released);
	struct vmres_resource res[N_RES];
	struct vmres_devmgr_info info;
	struct vmres_devmgr_stats st0, st1;
	struct dumps before;
	uint32_t id = 0;

	(void)state;
	plug_requests(q);
	o.parent = r->host_id, o.reqs = q, o.n_reqs = 4;
	take_dumps(r, &before);
	assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0), 0xffffffffu);
	for (int round = 0; round < 2; round++) { /* a removed function can come back */
		assert_int_equal(
			vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id), 0);
		/* registered under the host, with what the requests allocated */
		assert_int_equal(vmres_devmgr_get(r->m, id, &info, res, NULL, N_RES), 0);
		assert_int_equal(info.parent, r->host_id);
		assert_int_equal(info.n_res, N_RES);
		assert_string_equal(res[RES_MMIO32].pool, "mmio32");
		/* the guest sees it, its BAR at the resource, off the bus until enabled */
		assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0), 0x10f01af4u);
		assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0x10),
				 (uint32_t)res[RES_MMIO32].u.addr.base);
		assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, res[RES_MMIO32].u.addr.base),
				 0xffffffffu);
		slot_cfg_write(r, PLUG_SLOT, VMRES_PCI_COMMAND, VMRES_PCI_COMMAND_MEMORY);
		assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, res[RES_MMIO32].u.addr.base),
				 0x5100u + RES_MMIO32);

		assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, r->m), 0);
		/* nothing of it is left; guest accesses miss */
		before.next_id = id + 1; /* ids are never reused */
		assert_dumps_equal(r, &before);
		assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0), 0xffffffffu);
		assert_int_equal(vmres_devmgr_stats(r->m, &st0), 0);
		assert_int_equal(guest_read(r, VMRES_SPACE_MMIO, res[RES_MMIO32].u.addr.base),
				 0xffffffffu);
		assert_int_equal(vmres_devmgr_stats(r->m, &st1), 0);
		assert_int_equal(st1.mmio_miss_reads, st0.mmio_miss_reads + 1);
		assert_int_equal(vmres_devmgr_get(r->m, id, NULL, NULL, NULL, 0), VMRES_EDEVICE);
		/* the function is the caller's again: unbound and in no place */
		assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, r->m),
				 VMRES_ENOENT);
		slot_cfg_write(r, PLUG_SLOT, VMRES_PCI_COMMAND, 0); /* a miss */
		assert_int_equal(vmres_pci_func_config_write(f, VMRES_PCI_COMMAND, 2, 0), 0);
	}
	free(before.sysalloc);
	free(before.devmgr);
	rig_free(r);
	assert_int_equal(atomic_load(&released), 2);
	vmres_pci_func_free(f);
}

static void test_device_add_failures_leave_nothing_behind(void **state)
{
	struct rig *r = rig_new(0);
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	struct vmres_request q[4];
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	atomic_int released = 0;
	struct vmres_device dev = plug_device(&released);
	struct dumps before;
	uint32_t id = 77;

	(void)state;
	plug_requests(q);
	o.parent = r->host_id, o.reqs = q, o.n_reqs = 4;
	take_dumps(r, &before);
	/* arguments */
	assert_int_equal(vmres_pci_device_add(NULL, PLUG_SLOT, 0, f, r->m, &dev, &o, &id),
			 VMRES_EINVAL);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, NULL, r->m, &dev, &o, &id),
			 VMRES_EINVAL);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_pci_device_add(r->host, 32, 0, f, r->m, &dev, &o, &id),
			 VMRES_ERANGE);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 8, f, r->m, &dev, &o, &id),
			 VMRES_ERANGE);
	/* a taken place; a function already in the VM */
	assert_int_equal(vmres_pci_device_add(r->host, 0, 0, f, r->m, &dev, &o, &id), VMRES_EEXIST);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, r->f, r->m, &dev, &o, &id),
			 VMRES_ESTATE);
	/* the registration refuses: a pool that does not exist */
	q[3] = VMRES_REQUEST_MSI("no-such-pool", 4, true);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id),
			 VMRES_EPOOL);
	/* the binding refuses after the allocation: BAR 0 is 4 KiB, not 8 */
	plug_requests(q);
	q[0] = VMRES_REQUEST_ADDR("mmio32", VMRES_SPACE_MMIO, 0x2000, 0x2000);
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id),
			 VMRES_ESIZE);
	/* the binding refuses: too few resources (no MSI) */
	plug_requests(q);
	o.n_reqs = 3;
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id),
			 VMRES_ENOENT);
	/* nothing changed: tables, allocator, next id, place, out-parameter, and the
	 * device's release was never called */
	assert_dumps_equal(r, &before);
	assert_int_equal(id, 77);
	assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0), 0xffffffffu);
	/* and the same call then succeeds, with the id it would have had */
	o.n_reqs = 4;
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id), 0);
	assert_int_equal(id, before.next_id);
	assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, r->m), 0);
	free(before.sysalloc);
	free(before.devmgr);
	rig_free(r);
	assert_int_equal(atomic_load(&released), 1);
	vmres_pci_func_free(f);
}

static void test_device_remove_failures_change_nothing(void **state)
{
	struct rig *r = rig_new(0);
	struct vmres_pci_func_config c = test_config();
	struct vmres_pci_func *f = new_func(&c);
	struct vmres_request q[4];
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	atomic_int released = 0;
	struct vmres_device dev = plug_device(&released);
	struct vmres_device child = VMRES_DEVICE_INIT;
	struct dumps before;
	uint32_t id, child_id;

	(void)state;
	plug_requests(q);
	o.parent = r->host_id, o.reqs = q, o.n_reqs = 4;
	assert_int_equal(vmres_pci_device_add(r->host, PLUG_SLOT, 0, f, r->m, &dev, &o, &id), 0);
	child.name = "child";
	assert_int_equal(vmres_devmgr_register(r->m, &child, id, NULL, 0, &child_id), 0);
	take_dumps(r, &before);
	assert_int_equal(vmres_pci_device_remove(NULL, PLUG_SLOT, 0, r->m), VMRES_EINVAL);
	assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_pci_device_remove(r->host, 32, 0, r->m), VMRES_ERANGE);
	assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 1, r->m), VMRES_ENOENT);
	/* the host bridge is in no device manager */
	assert_int_equal(vmres_pci_device_remove(r->host, 0, 0, r->m), VMRES_ESTATE);
	/* the device still has a child */
	assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, r->m), VMRES_EPARENT);
	assert_dumps_equal(r, &before);
	assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0), 0x10f01af4u);
	/* still bound: a BAR move reaches the manager */
	assert_int_equal(vmres_pci_func_config_write(f, 0x10, 4, 0xc8000000u), 0);
	assert_int_equal(slot_cfg_read(r, PLUG_SLOT, 0x10), 0xc8000000u);
	assert_int_equal(vmres_devmgr_unregister(r->m, child_id), 0);
	assert_int_equal(vmres_pci_device_remove(r->host, PLUG_SLOT, 0, r->m), 0);
	free(before.sysalloc);
	free(before.devmgr);
	rig_free(r);
	vmres_pci_func_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_shows_ids_class_and_interrupt_pin),
		cmocka_unit_test(test_read_only_fields_ignore_guest_writes),
		cmocka_unit_test(test_mem32_bar_sizing_reads_size_mask_with_type_bits),
		cmocka_unit_test(test_io_bar_sizing_sets_bit0_and_all_upper_bits),
		cmocka_unit_test(test_mem64_bar_sizing_in_two_halves),
		cmocka_unit_test(test_unimplemented_bars_and_rom_read_zero_after_sizing),
		cmocka_unit_test(test_bar_address_is_masked_by_the_size),
		cmocka_unit_test(test_capability_list_walk_reaches_msi_and_added_capabilities),
		cmocka_unit_test(test_no_capabilities_means_no_list),
		cmocka_unit_test(test_msi_capability_layout_for_each_variant),
		cmocka_unit_test(test_bad_accesses_are_refused_and_change_nothing),
		cmocka_unit_test(test_bad_descriptions_are_refused),
		cmocka_unit_test(test_device_bytes_use_their_masks_and_reach_the_callbacks),
		cmocka_unit_test(test_bar_write_with_decode_on_moves_the_range),
		cmocka_unit_test(test_refused_moves_keep_the_old_bar_value),
		cmocka_unit_test(test_move_misaligned_for_the_resource_is_refused),
		cmocka_unit_test(test_decode_off_unmaps_and_on_maps_at_the_register_address),
		cmocka_unit_test(test_decode_toggle_without_changes_restores_the_same_ranges),
		cmocka_unit_test(test_sizing_with_decode_on_does_not_move_anything),
		cmocka_unit_test(test_mem64_halves_with_decode_on_in_either_order),
		cmocka_unit_test(test_mem64_pair_refused_goes_back_to_where_the_range_is),
		cmocka_unit_test(test_mem64_half_rewritten_unchanged_completes_the_pending_half),
		cmocka_unit_test(test_decode_on_after_a_refused_unmap_follows_the_register),
		cmocka_unit_test(test_seabios_sequence_sizes_assigns_then_enables),
		cmocka_unit_test(test_mem64_addresses_that_look_like_sizing_are_addresses),
		cmocka_unit_test(test_state_saves_and_loads_guest_visible_registers),
		cmocka_unit_test(test_devmgr_bars_of_every_size_at_the_edges_of_the_pools),
		cmocka_unit_test(test_msi_reroutes_on_enable_and_on_message_change_only),
		cmocka_unit_test(test_mapper_must_be_complete),
		cmocka_unit_test(test_random_guest_writes_keep_function_and_mapper_in_agreement),
		cmocka_unit_test(test_conf1_reaches_the_addressed_function_at_byte_offsets),
		cmocka_unit_test(test_conf1_reads_all_ones_where_nothing_answers),
		cmocka_unit_test(test_host_device_callbacks_are_conf1),
		cmocka_unit_test(test_host_bridge_is_i440fx_with_writable_pam),
		cmocka_unit_test(test_devmgr_bind_takes_the_resource_bases),
		cmocka_unit_test(test_devmgr_bind_with_decode_off_keeps_the_reservations),
		cmocka_unit_test(test_devmgr_bind_refuses_resources_that_do_not_fit),
		cmocka_unit_test(test_devmgr_bind_that_cannot_map_changes_nothing),
		cmocka_unit_test(test_devmgr_valid_move_updates_allocator_bus_and_dispatch),
		cmocka_unit_test(test_devmgr_refused_moves_change_nothing),
		cmocka_unit_test(test_devmgr_mem64_halves_move_within_the_64bit_pool),
		cmocka_unit_test(test_devmgr_decode_off_and_on),
		cmocka_unit_test(test_devmgr_sizing_with_decode_on_keeps_everything),
		cmocka_unit_test(test_devmgr_msi_reroute_reaches_the_notifier),
		cmocka_unit_test(test_msi_sources_follow_enable_mask_and_message),
		cmocka_unit_test_setup_teardown(
			test_devmgr_mem64_bar_moves_below_4g_into_the_32bit_pool, rig_setup,
			rig_teardown),
		cmocka_unit_test_setup_teardown(
			test_devmgr_following_the_guest_places_bars_outside_the_pools, rig_setup,
			rig_teardown),
		cmocka_unit_test(test_msix_capability_and_table_start_masked_and_empty),
		cmocka_unit_test(test_msix_linux_sequence_routes_each_vector_as_it_is_unmasked),
		cmocka_unit_test(test_msix_firmware_sequence_and_the_table_follows_its_bar),
		cmocka_unit_test(test_msix_table_accesses_of_every_size_and_alignment),
		cmocka_unit_test(test_msix_pba_shows_pending_and_ignores_writes),
		cmocka_unit_test(
			test_msix_pending_then_unmask_delivers_once_with_the_current_message),
		cmocka_unit_test(test_msix_refused_route_keeps_the_vector_pending_until_routed),
		cmocka_unit_test(test_msix_message_written_while_unmasked_is_routed_at_once),
		cmocka_unit_test(test_msix_and_msi_enabled_together_msix_wins),
		cmocka_unit_test(
			test_msix_without_sources_fire_is_refused_and_pending_is_the_devices),
		cmocka_unit_test(test_state_of_msix_function_holds_table_pending_bits_and_routes),
		cmocka_unit_test(test_state_of_express_function_holds_extended_space),
		cmocka_unit_test(test_msix_bad_descriptions_are_refused),
		cmocka_unit_test(
			test_express_capability_follows_msix_and_extended_list_starts_at_0x100),
		cmocka_unit_test(test_conventional_function_answers_extended_offsets_with_all_ones),
		cmocka_unit_test(test_ecam_beside_conf1_reaches_the_same_functions),
		cmocka_unit_test(test_ecam_alone_on_the_aarch64_preset),
		cmocka_unit_test(test_moves_race_with_dispatch_and_config_reads),
		cmocka_unit_test(test_device_add_then_remove_leaves_sysalloc_and_devmgr_as_before),
		cmocka_unit_test(test_device_add_failures_leave_nothing_behind),
		cmocka_unit_test(test_device_remove_failures_change_nothing),
	};
	int rc;

	if (vmres_devmgr_thread_register())
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	vmres_devmgr_thread_unregister();
	return rc;
}
