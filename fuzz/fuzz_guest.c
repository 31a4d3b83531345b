/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a hostile guest. A PC is put together as a VMM would: the
 * x86_64 system allocator, a device manager, the conf1 PCI host on 0xcf8 with
 * an i440FX bridge, and one to three PCI functions (vmres_pci_func) with a
 * 32-bit MMIO BAR, a 64-bit prefetchable BAR, an I/O BAR and an MSI capability,
 * bound to the device manager, their vectors driven as interrupt sources of an
 * interrupt manager (callback backend) that the device manager's MSI notifier
 * (vmres_irq_mgr_msi_notify) keeps up to date. The input is what the guest
 * does: conf1 address and data accesses of any size and port (BAR sizing and
 * moves to anywhere, decode on and off, MSI programming), MMIO and PIO reads
 * and writes near the BARs, and interrupts raised by the devices. Half the
 * machines follow the guest outside the pools (guest pools holding the
 * VMM's RAM), half are strict.
 *
 * After every step, BAR register = bus = allocator, and no address has two
 * owners: each BAR, mapped or not, is reserved in the system allocator by its
 * device's owner exactly where the device manager has it and (unless it holds
 * no address, or a 64-bit half waits for the other) where its register says;
 * each BAR that is mapped has its decode bit on and is on the right bus at its
 * address with its size (vmres_devmgr_find); the owner holds no other address
 * range; each access reached the device that
 * vmres_devmgr_find named before it, at the right offset; every MSI delivered
 * carries the message the device manager recorded; the allocator validates.
 * At the end every device has been released exactly once and nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "../tests/helpers.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FUNCS 3
#define RAM_OWNER 0x7a3u
#define N_BARS	  3
#define RES_MSI	  3
#define MAX_VECS  4
#define MAX_MSIX  8
#define N_RES	  (RES_MSI + MAX_VECS + MAX_MSIX)
/* MSI-X: the table and the pending-bit array in the 64-bit BAR (16 KiB). */
#define MSIX_TABLE 0x2000u
#define MSIX_PBA   0x3800u
#define ECAM_BASE  0xe0000000ull /* the x86_64 preset's "pci ecam" */
#define ECAM_BUSES 1u
#define OWNER(i)   (0x100u + (i))

/* Which config slot each of the three BARs is in, and its resource. */
static const unsigned int bar_slot[N_BARS] = {0, 1, 2};

struct func {
	unsigned int index;
	struct vmres_pci_func *f;
	uint32_t id;
	unsigned int vectors, msix_vectors;
	struct vmres_resource res[N_RES];
	size_t n_res;
	struct vmres_irq_group *group, *msix_group;
	int released;
	/* the last access the device saw */
	unsigned int hits, range;
	uint64_t offset;
};

/* The resource of MSI-X vector 0: after the MSI vectors. */
static unsigned int msix_res(const struct func *fn)
{
	return RES_MSI + fn->vectors;
}

struct machine {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_pci_host *host;
	struct vmres_pci_ecam *ecam;
	struct vmres_pci_func *bridge;
	struct vmres_irq_mgr *irq;
	uint32_t host_id, ecam_id;
	struct func fn[MAX_FUNCS];
	unsigned int n_fn;
	unsigned int deliveries;
	int host_released;
};

static void deliver(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		    const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct machine *mc = ctx;

	FUZZ_CHECK(kind == VMRES_IRQ_MSI && signal == VMRES_IRQ_SIGNAL_EDGE && msg);
	/* The message is the one the device manager recorded for that vector. */
	for (unsigned int i = 0; i < mc->n_fn; i++) {
		struct vmres_resource res[N_RES];

		FUZZ_CHECK(vmres_devmgr_get(mc->m, mc->fn[i].id, NULL, res, NULL, N_RES) == 0);
		for (size_t r = RES_MSI; r < mc->fn[i].n_res; r++) {
			if (res[r].u.msi.gsi == gsi) {
				FUZZ_CHECK(memcmp(&res[r].u.msi.msg, msg, sizeof(*msg)) == 0);
				mc->deliveries++;
				return;
			}
		}
	}
	FUZZ_CHECK(!"an MSI of no device");
}

static void note_access(struct func *fn, unsigned int range, uint64_t offset)
{
	fn->hits++;
	fn->range = range;
	fn->offset = offset;
}

/* The device's BAR handlers forward to the helper first: the MSI-X table
 * and PBA are the helper's (VMRES_ENOENT: the device's own bytes). */
static uint64_t dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	struct func *fn = opaque;
	uint64_t v;

	(void)addr;
	note_access(fn, range, offset);
	if (vmres_pci_func_bar_read(fn->f, range, offset, size, &v) == 0)
		return v;
	return 0x5100u + range;
}

static void dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct func *fn = opaque;

	(void)addr;
	note_access(fn, range, offset);
	(void)vmres_pci_func_bar_write(fn->f, range, offset, size, value);
}

static void dev_release(void *opaque)
{
	struct func *fn = opaque;

	__atomic_fetch_add(&fn->released, 1, __ATOMIC_RELAXED);
}

static void host_release(void *opaque)
{
	(void)opaque; /* the host is freed by the machine */
}

static struct vmres_request addr_req(const char *pool, enum vmres_space space, uint64_t size)
{
	return test_rq_addr(pool, space, size, size, VMRES_ADDR_FIRST_FIT, 0);
}

/* Function @p i: resources from the allocator, registered, bound, attached. */
static void add_func(struct machine *mc, unsigned int i, uint8_t shape)
{
	struct func *fn = &mc->fn[i];
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_irq_src *src[MAX_MSIX];
	struct vmres_request q[5];
	uint64_t io_size = 4u << (shape & 3), mem_size = 0x1000u << (shape >> 2 & 1);

	fn->index = i;
	fn->vectors = 1u << (shape >> 3 & 3);
	if (fn->vectors > MAX_VECS)
		fn->vectors = MAX_VECS;
	q[0] = addr_req("mmio32", VMRES_SPACE_MMIO, mem_size);
	q[1] = addr_req("pio", VMRES_SPACE_PIO, io_size);
	q[2] = addr_req("mmio64", VMRES_SPACE_MMIO, 0x4000);
	memset(&q[3], 0, sizeof(q[3]));
	q[3].kind = VMRES_RES_MSI;
	strcpy(q[3].pool, "gsi-msi");
	q[3].u.msi.count = fn->vectors;
	q[3].u.msi.contiguous = true;
	q[3].u.msi.any = true;
	fn->msix_vectors = 1 + (shape >> 1 & 7);
	q[4] = q[3];
	q[4].u.msi.count = fn->msix_vectors;
	q[4].u.msi.contiguous = false;
	/* the MSI vectors from RES_MSI, then the MSI-X vectors (msix_res()) */
	FUZZ_CHECK(vmres_sysalloc_alloc(mc->sa, q, 5, OWNER(i), fn->res, N_RES, &fn->n_res, NULL) ==
		   0);

	dev.name = "pci-fuzz";
	dev.opaque = fn;
	dev.read = dev_read;
	dev.write = dev_write;
	dev.release = dev_release;
	dev.owner = OWNER(i);
	FUZZ_CHECK(vmres_devmgr_register(mc->m, &dev, mc->host_id, fn->res, fn->n_res, &fn->id) ==
		   0);

	c.vendor_id = 0x1af4;
	c.device_id = (uint16_t)(0x10f0 + i);
	c.class_code = 0xff0000;
	c.interrupt_pin = 1;
	c.command = shape & 0x20 ? VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY : 0;
	c.bars[bar_slot[0]] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM32, .size = mem_size, .res_index = 0};
	c.bars[bar_slot[1]] =
		(struct vmres_pci_bar){.kind = VMRES_PCI_BAR_IO, .size = io_size, .res_index = 1};
	c.bars[bar_slot[2]] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM64, .prefetchable = true, .size = 0x4000, .res_index = 2};
	c.msi = (struct vmres_pci_msi){.vectors = fn->vectors,
				       .addr64 = !(shape & 0x40),
				       .per_vector_mask = !(shape & 0x80),
				       .res_index = RES_MSI};
	c.msix = (struct vmres_pci_msix){.vectors = fn->msix_vectors,
					 .table_bar = bar_slot[2],
					 .table_offset = MSIX_TABLE,
					 .pba_bar = bar_slot[2],
					 .pba_offset = MSIX_PBA,
					 .res_index = msix_res(fn)};
	FUZZ_CHECK(vmres_pci_func_new(&c, &fn->f) == 0);
	FUZZ_CHECK(vmres_pci_func_bind(fn->f, mc->m, fn->id) == 0);
	FUZZ_CHECK(vmres_irq_group_new(mc->irq, &fn->res[RES_MSI], fn->vectors, &fn->group) == 0);
	for (unsigned int v = 0; v < fn->vectors; v++)
		FUZZ_CHECK(vmres_irq_group_src(fn->group, v, &src[v]) == 0);
	FUZZ_CHECK(vmres_pci_func_set_msi_sources(fn->f, src, fn->vectors) == 0);
	FUZZ_CHECK(vmres_irq_group_new(mc->irq, &fn->res[msix_res(fn)], fn->msix_vectors,
				       &fn->msix_group) == 0);
	for (unsigned int v = 0; v < fn->msix_vectors; v++)
		FUZZ_CHECK(vmres_irq_group_src(fn->msix_group, v, &src[v]) == 0);
	FUZZ_CHECK(vmres_pci_func_set_msix_sources(fn->f, src, fn->msix_vectors) == 0);
	FUZZ_CHECK(vmres_pci_host_attach(mc->host, 1 + i, 0, fn->f) == 0);
}

static void machine_new(struct machine *mc, uint8_t shape)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_irq_backend *be;
	struct vmres_resource conf1;

	memset(mc, 0, sizeof(*mc));
	FUZZ_CHECK(vmres_sysalloc_new_x86_64(&mc->sa) == 0);
	FUZZ_CHECK(vmres_devmgr_new(mc->sa, &mc->m) == 0);
	FUZZ_CHECK(vmres_irq_backend_callback_new(deliver, mc, &be) == 0);
	FUZZ_CHECK(vmres_irq_mgr_new(be, &mc->irq) == 0);
	FUZZ_CHECK(vmres_devmgr_set_msi_notifier(mc->m, vmres_irq_mgr_msi_notify, mc->irq) == 0);

	FUZZ_CHECK(vmres_pci_host_new(&mc->host) == 0);
	FUZZ_CHECK(vmres_pci_host_bridge_new(NULL, NULL, &mc->bridge) == 0);
	FUZZ_CHECK(vmres_pci_host_attach(mc->host, 0, 0, mc->bridge) == 0);
	FUZZ_CHECK(vmres_pci_host_device(mc->host, &dev) == 0);
	dev.release = host_release;
	dev.opaque = mc->host;
	memset(&conf1, 0, sizeof(conf1));
	conf1.kind = VMRES_RES_ADDR;
	conf1.u.addr.space = VMRES_SPACE_PIO;
	conf1.u.addr.base = VMRES_PCI_CONF1_PORT;
	conf1.u.addr.size = VMRES_PCI_CONF1_SIZE;
	FUZZ_CHECK(vmres_devmgr_register(mc->m, &dev, VMRES_DEVMGR_NO_PARENT, &conf1, 1,
					 &mc->host_id) == 0);
	/* the same functions through an ECAM window, where the preset reserved it */
	FUZZ_CHECK(vmres_pci_ecam_new(mc->host, ECAM_BUSES, &mc->ecam) == 0);
	FUZZ_CHECK(vmres_pci_ecam_device(mc->ecam, &dev) == 0);
	conf1.u.addr.space = VMRES_SPACE_MMIO;
	conf1.u.addr.base = ECAM_BASE;
	conf1.u.addr.size = ECAM_BUSES << 20;
	FUZZ_CHECK(vmres_devmgr_register(mc->m, &dev, VMRES_DEVMGR_NO_PARENT, &conf1, 1,
					 &mc->ecam_id) == 0);
	mc->n_fn = 1 + shape % MAX_FUNCS;
	for (unsigned int i = 0; i < mc->n_fn; i++)
		add_func(mc, i, (uint8_t)(shape * (i + 3) + i));
	if (shape & 0x80) {
		/* A VMM that lets the guest place BARs anywhere but on its RAM. */
		FUZZ_CHECK(vmres_devmgr_set_policy(mc->m, VMRES_DEVMGR_FOLLOW_GUEST) == 0);
		FUZZ_CHECK(vmres_sysalloc_add_guest_pool(mc->sa, "guest-mmio", VMRES_SPACE_MMIO) ==
			   0);
		FUZZ_CHECK(vmres_sysalloc_add_guest_pool(mc->sa, "guest-pio", VMRES_SPACE_PIO) ==
			   0);
		FUZZ_CHECK(vmres_sysalloc_reserve(mc->sa, "guest-mmio", 0, 0xc0000000u, 0,
						  RAM_OWNER, "ram", NULL) == 0);
		FUZZ_CHECK(vmres_sysalloc_reserve(mc->sa, "guest-mmio", 0x100000000ull,
						  0x100000000ull, 0, RAM_OWNER, "ram-high",
						  NULL) == 0);
	}
}

static void machine_free(struct machine *mc)
{
	for (unsigned int i = 0; i < mc->n_fn; i++) {
		FUZZ_CHECK(vmres_pci_func_set_msi_sources(mc->fn[i].f, NULL, 0) == 0);
		FUZZ_CHECK(vmres_pci_func_set_msix_sources(mc->fn[i].f, NULL, 0) == 0);
	}
	vmres_devmgr_free(mc->m); /* nothing dispatches any more */
	for (unsigned int i = 0; i < mc->n_fn; i++) {
		FUZZ_CHECK(mc->fn[i].released == 1);
		vmres_pci_func_free(mc->fn[i].f);
		vmres_irq_group_free(mc->fn[i].group);
		vmres_irq_group_free(mc->fn[i].msix_group);
	}
	vmres_pci_ecam_free(mc->ecam);
	vmres_pci_host_free(mc->host);
	vmres_pci_func_free(mc->bridge);
	vmres_irq_mgr_free(mc->irq);
	vmres_sysalloc_free(mc->sa);
}

/* ---- invariants ---- */

struct owner_ranges {
	unsigned int n;
	struct vmres_resource r[8];
};

static int collect_addr(void *ctx, const struct vmres_sysalloc_alloc_info *info)
{
	struct owner_ranges *o = ctx;

	if (info->res.kind == VMRES_RES_ADDR) {
		FUZZ_CHECK(o->n < 8);
		o->r[o->n++] = info->res;
	}
	return 0;
}

static uint16_t command_of(struct vmres_pci_func *f)
{
	uint32_t v = 0;

	FUZZ_CHECK(vmres_pci_func_config_read(f, VMRES_PCI_COMMAND, 2, &v) == 0);
	return (uint16_t)v;
}

static void check_func(struct machine *mc, struct func *fn)
{
	struct vmres_resource res[N_RES];
	bool mapped[N_RES];
	struct owner_ranges owned = {0};
	uint16_t cmd = command_of(fn->f);
	unsigned int n_reserved = 0;
	struct vmres_pci_msi_state ms;

	FUZZ_CHECK(vmres_devmgr_get(mc->m, fn->id, NULL, res, mapped, N_RES) == 0);
	FUZZ_CHECK(vmres_sysalloc_foreach_owner_alloc(mc->sa, OWNER(fn->index), collect_addr,
						      &owned) == 0);
	for (unsigned int b = 0; b < N_BARS; b++) {
		struct vmres_pci_bar_state s;
		const struct vmres_resource *r = &res[b];
		enum vmres_space space = r->u.addr.space;
		bool decode = cmd & (space == VMRES_SPACE_PIO ? VMRES_PCI_COMMAND_IO
							      : VMRES_PCI_COMMAND_MEMORY);
		struct vmres_sysalloc_alloc_info a;
		unsigned int idx = 99;
		uint64_t off = 1;
		uint32_t inst = 0;

		FUZZ_CHECK(vmres_pci_func_bar_get(fn->f, bar_slot[b], &s) == 0);
		FUZZ_CHECK(s.mapped == mapped[b]);
		FUZZ_CHECK(s.mapped_base == r->u.addr.base && s.size == r->u.addr.size);
		/* register = allocator, decode on or off; one owner per address:
		 * reserved by the device's owner, exactly, in the pool the resource
		 * names, mapped or not */
		if (s.reg_is_address && !s.half_pending)
			FUZZ_CHECK(s.reg_addr == s.mapped_base);
		FUZZ_CHECK(vmres_sysalloc_find(mc->sa, r->pool, s.mapped_base, &a) == 0);
		FUZZ_CHECK(a.owner == OWNER(fn->index));
		FUZZ_CHECK(a.res.u.addr.base == s.mapped_base && a.res.u.addr.size == s.size);
		FUZZ_CHECK(a.res.u.addr.space == space);
		n_reserved++;
		if (!s.mapped)
			continue;
		FUZZ_CHECK(decode);
		/* on the bus, at both ends */
		FUZZ_CHECK(vmres_devmgr_find(mc->m, space, s.mapped_base, &inst, &idx, &off) == 0);
		FUZZ_CHECK(inst == fn->id && idx == b && off == 0);
		FUZZ_CHECK(vmres_devmgr_find(mc->m, space, s.mapped_base + s.size - 1, &inst, &idx,
					     &off) == 0);
		FUZZ_CHECK(inst == fn->id && idx == b && off == s.size - 1);
	}
	/* The owner holds exactly its BARs' ranges. */
	FUZZ_CHECK(owned.n == n_reserved);
	for (unsigned int k = 0; k < owned.n; k++) {
		bool found = false;

		for (unsigned int b = 0; b < N_BARS; b++)
			found = found || (strcmp(owned.r[k].pool, res[b].pool) == 0 &&
					  owned.r[k].u.addr.space == res[b].u.addr.space &&
					  owned.r[k].u.addr.base == res[b].u.addr.base &&
					  owned.r[k].u.addr.size == res[b].u.addr.size);
		FUZZ_CHECK(found);
	}
	/* An MSI-X vector the helper says is routed has that message in the device
	 * manager; an active one is routed with the message in its table entry. */
	for (unsigned int v = 0; v < fn->msix_vectors; v++) {
		struct vmres_pci_msix_vector xv;
		const struct vmres_msi_msg *g = &res[msix_res(fn) + v].u.msi.msg;

		FUZZ_CHECK(vmres_pci_func_msix_vector_get(fn->f, v, &xv) == 0);
		if (xv.routed)
			FUZZ_CHECK(memcmp(g, &xv.routed_msg, sizeof(*g)) == 0);
		if (xv.active)
			FUZZ_CHECK(xv.routed && memcmp(&xv.msg, &xv.routed_msg, sizeof(*g)) == 0);
	}
	/* Enabled vectors carry the programmed message (unless a reroute was refused). */
	FUZZ_CHECK(vmres_pci_func_msi_get(fn->f, &ms) == 0);
	if (ms.enabled && ms.last_error == 0) {
		uint32_t low = ms.vectors - 1;

		FUZZ_CHECK(ms.vectors >= 1 && ms.vectors <= fn->vectors);
		for (unsigned int v = 0; v < ms.vectors; v++) {
			const struct vmres_msi_msg *g = &res[RES_MSI + v].u.msi.msg;

			FUZZ_CHECK(g->addr_lo == ms.msg.addr_lo && g->addr_hi == ms.msg.addr_hi);
			FUZZ_CHECK(g->data == ((ms.msg.data & ~low) | v));
		}
	}
}

static void check_machine(struct machine *mc)
{
	FUZZ_CHECK(vmres_sysalloc_validate(mc->sa) == 0);
	for (unsigned int i = 0; i < mc->n_fn; i++)
		check_func(mc, &mc->fn[i]);
}

/* ---- the guest ---- */

static const uint8_t regs[] = {0x00, 0x04, 0x06, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24,
			       0x30, 0x34, 0x3c, 0x40, 0x42, 0x44, 0x48, 0x4c, 0x50, 0x54};

/* A BAR's address (current, or another function's) or something else. */
static uint32_t pick_value(struct fuzz_in *in, struct machine *mc)
{
	static const uint32_t fixed[] = {
		0xffffffffu, 0,	   0xc0000000u, 0xc0001000u, 0xfebff000u, 0xfec00000u, 0xfee00000u,
		0x10,	     0x17, 0x18,	0x1000,	     0xcf8,	  0x3f8,       0xfff0,
		0x7,	     0x3,  0x1,		0x2,	     0xffff};
	uint8_t sel = fuzz_u8(in);
	struct vmres_pci_bar_state s;

	switch (sel >> 5) {
	case 0:
	case 1:
		return fixed[sel % (sizeof(fixed) / sizeof(fixed[0]))];
	case 2: {
		struct func *fn = &mc->fn[sel % mc->n_fn];

		FUZZ_CHECK(vmres_pci_func_bar_get(fn->f, bar_slot[sel % N_BARS], &s) == 0);
		return (uint32_t)(sel & 8 ? s.mapped_base >> 32 : s.mapped_base) +
		       (sel & 0x10 ? (uint32_t)s.size : 0);
	}
	case 3:
		return 0xc0000000u + ((uint32_t)fuzz_u16(in) << 4);
	case 4:
		return fuzz_u16(in);
	case 5:
		/* a 64-bit BAR's high dword, or a 32-bit address over RAM */
		if (sel & 1)
			return 0x8u + (uint32_t)(sel >> 1 & 7);
		return 0x80000000u + ((uint32_t)fuzz_u16(in) << 12);
	default:
		return fuzz_u32(in);
	}
}

static void guest_pio(struct machine *mc, uint16_t port, bool is_write, uint8_t size,
		      uint32_t value, uint32_t *out)
{
	uint8_t buf[8];

	memcpy(buf, &value, 4);
	memset(buf + 4, 0, 4);
	FUZZ_CHECK(vmres_devmgr_pio(mc->m, port, is_write, size, 1, buf) == 0);
	if (out)
		memcpy(out, buf, 4);
}

static void conf1_address(struct machine *mc, struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);
	uint32_t a = 0x80000000u | (uint32_t)(sel % (MAX_FUNCS + 2)) << 11 |
		     regs[fuzz_u8(in) % sizeof(regs)];

	if ((sel & 0xe0) == 0xe0)
		a = fuzz_u32(in); /* any bus, function, register, enable bit */
	guest_pio(mc, 0xcf8, true, 4, a, NULL);
}

/* A config-space access through 0xcfc-0xcff. */
static void conf1_data(struct machine *mc, struct fuzz_in *in, bool is_write)
{
	uint8_t sel = fuzz_u8(in);
	uint8_t size = (uint8_t)(1u << (sel & 3)); /* 8: dropped */
	uint16_t port = (uint16_t)(0xcf8 + (sel >> 2 & 7));
	uint32_t v = is_write ? pick_value(in, mc) : 0;

	guest_pio(mc, port, is_write, size, v, &v);
}

/* An MMIO or PIO access near a BAR: it reaches what devmgr_find names. */
static void bar_access(struct machine *mc, struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in), data[8] = {0};
	struct func *fn = &mc->fn[fuzz_u8(in) % mc->n_fn];
	unsigned int b = fuzz_u8(in) % N_BARS, size = 1u << (sel & 3);
	struct vmres_pci_bar_state s;
	bool is_write = sel & 4;
	enum vmres_space space = b == 1 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;
	uint64_t addr, off = 0;
	uint32_t inst = 0;
	unsigned int idx = 0, hits_before[MAX_FUNCS];
	struct vmres_resource res[N_RES];
	struct func *target = NULL;

	FUZZ_CHECK(vmres_pci_func_bar_get(fn->f, bar_slot[b], &s) == 0);
	addr = fuzz_near(in, sel & 8 ? s.reg_addr : s.mapped_base);
	if (space == VMRES_SPACE_PIO)
		addr &= 0xffff;
	if (vmres_devmgr_find(mc->m, space, addr, &inst, &idx, &off) == 0) {
		for (unsigned int i = 0; i < mc->n_fn; i++)
			if (mc->fn[i].id == inst)
				target = &mc->fn[i];
	}
	for (unsigned int i = 0; i < mc->n_fn; i++)
		hits_before[i] = mc->fn[i].hits;
	if (space == VMRES_SPACE_PIO) {
		size = size == 8 ? 4 : size;
		FUZZ_CHECK(vmres_devmgr_pio(mc->m, (uint16_t)addr, is_write, (uint8_t)size, 1,
					    data) == 0);
	} else {
		FUZZ_CHECK(vmres_devmgr_mmio(mc->m, addr, size, is_write, data) == 0);
	}
	if (target) {
		FUZZ_CHECK(vmres_devmgr_get(mc->m, target->id, NULL, res, NULL, N_RES) == 0);
		if (off + size - 1 < res[idx].u.addr.size) { /* wholly inside: a hit */
			FUZZ_CHECK(target->hits == hits_before[target->index] + 1);
			FUZZ_CHECK(target->range == idx && target->offset == off);
			if (!is_write)
				FUZZ_CHECK(data[0] == (uint8_t)(0x5100u + idx));
		}
	}
	for (unsigned int i = 0; i < mc->n_fn; i++)
		if (&mc->fn[i] != target)
			FUZZ_CHECK(mc->fn[i].hits == hits_before[i]);
}

static void raise_msi(struct machine *mc, struct fuzz_in *in)
{
	struct func *fn = &mc->fn[fuzz_u8(in) % mc->n_fn];
	struct vmres_irq_src *src;
	struct vmres_pci_msi_state ms;
	struct vmres_pci_msix_state xs;
	unsigned int v = fuzz_u8(in) % fn->vectors, before = mc->deliveries;
	int rc;

	FUZZ_CHECK(vmres_irq_group_src(fn->group, v, &src) == 0);
	FUZZ_CHECK(vmres_pci_func_msi_get(fn->f, &ms) == 0);
	FUZZ_CHECK(vmres_pci_func_msix_get(fn->f, &xs) == 0);
	rc = vmres_irq_src_trigger(src);
	/* MSI-X enabled too: it wins, and MSI's sources stay disabled */
	if (!ms.enabled || v >= ms.vectors || xs.enabled) {
		FUZZ_CHECK(rc == VMRES_ESTATE && mc->deliveries == before);
		return;
	}
	FUZZ_CHECK(rc == 0);
	/* Delivered at once unless masked (then pending, delivered at unmask). */
	FUZZ_CHECK(mc->deliveries == before + !(ms.mask >> v & 1));
}

/* An access to the MSI-X table or PBA, through the bus at the 64-bit BAR. */
static void msix_access(struct machine *mc, struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in), data[8];
	struct func *fn = &mc->fn[fuzz_u8(in) % mc->n_fn];
	struct vmres_pci_bar_state s;
	uint64_t v = sel & 4 ? pick_value(in, mc) : 0;
	uint32_t off = (sel & 8 ? MSIX_PBA : MSIX_TABLE) + fuzz_u8(in);

	FUZZ_CHECK(vmres_pci_func_bar_get(fn->f, bar_slot[2], &s) == 0);
	memcpy(data, &v, sizeof(data));
	FUZZ_CHECK(vmres_devmgr_mmio(mc->m, s.mapped_base + off, 1u << (sel & 3), sel & 4, data) ==
		   0);
}

/* The device raises MSI-X (or MSI) vector v. */
static void raise_msix(struct machine *mc, struct fuzz_in *in)
{
	struct func *fn = &mc->fn[fuzz_u8(in) % mc->n_fn];
	unsigned int v = fuzz_u8(in) % fn->msix_vectors, before = mc->deliveries;
	struct vmres_pci_msix_state xs;
	struct vmres_pci_msix_vector xv;
	int rc;

	FUZZ_CHECK(vmres_pci_func_msix_get(fn->f, &xs) == 0);
	FUZZ_CHECK(vmres_pci_func_msix_vector_get(fn->f, v, &xv) == 0);
	rc = vmres_pci_func_fire(fn->f, v);
	if (!xs.enabled)
		return; /* MSI's rules, or nothing enabled: raise_msi checks those */
	FUZZ_CHECK(rc == 0);
	/* delivered now if active, else pending until unmasked */
	FUZZ_CHECK(mc->deliveries == before + xv.active);
}

/* A configuration access through ECAM; a read matches the function's own. */
static void ecam_access(struct machine *mc, struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in), data[8] = {0};
	unsigned int slot = fuzz_u8(in) % (MAX_FUNCS + 2), size = 1u << (sel & 3);
	uint32_t reg = regs[fuzz_u8(in) % sizeof(regs)] + (sel >> 4 & 3);
	uint64_t off = (uint64_t)slot << 15 | reg, v = sel & 4 ? pick_value(in, mc) : 0;
	uint32_t direct;

	if (sel & 8)
		off = fuzz_u32(in) & ((ECAM_BUSES << 20) - 1); /* anywhere in the window */
	memcpy(data, &v, sizeof(data));
	FUZZ_CHECK(vmres_devmgr_mmio(mc->m, ECAM_BASE + off, size, sel & 4, data) == 0);
	/* the register and function the window decoded (bus 0, device slot, function 0) */
	slot = (unsigned int)(off >> 15);
	reg = (uint32_t)(off & 0xfff);
	if (sel & 4 || slot < 1 || slot > mc->n_fn || (off >> 12 & 7) || size > 4 ||
	    (reg & 3) + size > 4)
		return;
	FUZZ_CHECK(vmres_pci_func_config_read(mc->fn[slot - 1].f, reg, size, &direct) == 0);
	FUZZ_CHECK(memcmp(data, &direct, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool registered;
	struct fuzz_in in = {data, size};
	struct machine mc;

	if (!registered) {
		FUZZ_CHECK(vmres_devmgr_thread_register() == 0);
		registered = true;
	}
	machine_new(&mc, fuzz_u8(&in));
	check_machine(&mc);
	while (!fuzz_done(&in)) {
		switch (fuzz_u8(&in) % 11) {
		case 0:
		case 1: /* a register write: address, then data */
			conf1_address(&mc, &in);
			conf1_data(&mc, &in, true);
			break;
		case 2:
			conf1_address(&mc, &in);
			break;
		case 3:
			conf1_data(&mc, &in, true);
			break;
		case 4:
			conf1_data(&mc, &in, false);
			break;
		case 5:
		case 6:
			bar_access(&mc, &in);
			break;
		case 7:
			raise_msi(&mc, &in);
			break;
		case 8:
			msix_access(&mc, &in);
			break;
		case 9:
			raise_msix(&mc, &in);
			break;
		default:
			ecam_access(&mc, &in);
			break;
		}
		check_machine(&mc);
	}
	machine_free(&mc);
	return 0;
}
