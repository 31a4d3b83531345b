/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Linux mode (linux.h): the machine, the run, and the check of vmres against
 * what the guest printed.
 *
 * What vmres-guest prints (examples/linux/vmres-guest.c), one line each:
 *     vmres-guest: init <uptime>               /init started, at this uptime
 *     vmres-guest: ok   <what> / FAIL <what>   one of its checks
 *     vmres-guest: dump <phase> begin|end      around a dump of its view:
 *     vmres-guest: iomem <line of /proc/iomem>
 *     vmres-guest: ioports <line of /proc/ioports>
 *     vmres-guest: resource <bdf> <bar> <start> <end> <flags>
 *     vmres-guest: kick <addr>                 it kicked the queue with BAR0 at addr
 * The last complete dump is the one checked, and every kick must have reached
 * the device thread while BAR0 was at that address.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "../guest/bootinfo.h"
#include "check.h"
#include "devices.h"
#include "linux.h"
#include "setup.h"
#include "x86boot.h"

#define EXIT_SKIP 77

enum {
	OWNER_UART = 1,
	OWNER_CTL,
	OWNER_PCI_HOST,
	OWNER_STUB,
	OWNER_RNG,
	OWNER_CMOS,
};

#define STUB_SLOT     1u
#define RNG_SLOT      2u
#define STUB_BAR_SIZE 0x1000u
#define COM1_PORT     0x3f8u
#define COM1_IRQ      4u
#define KVMRES_SLOT   2u /* memory slots from here on are vmres_kvmres's (none used) */
#define MAX_E820      32u
#define LX_STALL_S    30.0 /* no progress for this long ends the run */

struct lx_machine {
	struct vmm vm;
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *dm;
	struct vmres_irq_mgr *irq;
	struct vmres_irq_group *uart_irq, *rng_msix;
	struct vmres_irq_src *uart_src;
	struct vmres_kvmres *kvmres;
	struct vmres_pci_host *pci;
	struct vmres_pci_func *bridge;
	struct vmm_uart *uart;
	struct vmm_ctl *ctl;
	struct vmm_cmos *cmos;
	struct vmm_conf1 conf1;
	struct vmm_pcistub *stub;
	struct vmm_virtio_rng *rng;
	uint32_t stub_id, rng_id;
	uint16_t ctl_port;
	uint64_t mmio32_base; /* where the preset's PCI window starts: RAM ends below */
	struct vmm_e820 e820[MAX_E820];
	size_t n_e820;
	_Atomic uint64_t uart_irqs;
	_Atomic uint64_t out_bytes; /* console bytes, for the progress watchdog */
	/* the console, as printed; written under the UART's lock */
	char *log;
	size_t log_len, log_cap;
	bool log_oom;
	double start_ns, init_ns;
};

/* ---- building the machine ------------------------------------------------------- */

static void add_e820(struct lx_machine *m, uint64_t addr, uint64_t size, uint32_t type)
{
	if (m->n_e820 < MAX_E820)
		m->e820[m->n_e820++] = (struct vmm_e820){addr, size, type};
}

static int find_mmio32(void *ctx, const struct vmres_sysalloc_pool_info *p)
{
	struct lx_machine *m = ctx;

	if (!strcmp(p->name, "mmio32"))
		m->mmio32_base = p->base;
	return 0;
}

/* Every platform range of "mmio32" (ECAM, IOAPIC, HPET, local APIC) is reserved. */
static int reserve_platform(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct lx_machine *m = ctx;

	if (a->res.kind == VMRES_RES_ADDR && !strcmp(a->res.pool, "mmio32"))
		add_e820(m, a->res.u.addr.base, a->res.u.addr.size, VMM_E820_RESERVED);
	return 0;
}

/* The memory map the preset implies for @ram bytes of RAM (linux.h). */
static int build_e820(struct lx_machine *m)
{
	int rc = vmres_sysalloc_foreach_pool(m->sa, find_mmio32, m);

	if (rc == 0 && !m->mmio32_base)
		rc = VMRES_EPOOL;
	if (rc != 0)
		return vmm_fail("the preset's mmio32 pool", rc);
	if (m->vm.ram_size > m->mmio32_base) {
		fprintf(stderr, "vmres-demo: linux: RAM must end below 0x%" PRIx64 "\n",
			m->mmio32_base);
		return -1;
	}
	add_e820(m, 0, 0x9fc00, VMM_E820_RAM);
	add_e820(m, 0x9fc00, 0x100000 - 0x9fc00, VMM_E820_RESERVED);
	add_e820(m, 0x100000, m->vm.ram_size - 0x100000, VMM_E820_RAM);
	if (m->vm.ram_size < m->mmio32_base)
		add_e820(m, m->vm.ram_size, m->mmio32_base - m->vm.ram_size, VMM_E820_RESERVED);
	rc = vmres_sysalloc_foreach_owner_alloc(m->sa, VMRES_SYSALLOC_OWNER_PLATFORM,
						reserve_platform, m);
	return rc ? vmm_fail("the preset's platform ranges", rc) : 0;
}

/* The preset's reservation of ISA IRQ 4 (COM1's), copied into @ctx. */
static int find_platform_irq(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct vmres_resource *r = ctx;

	if (a->res.kind != VMRES_RES_IRQ || a->res.u.irq.gsi != COM1_IRQ)
		return 0;
	*r = a->res;
	return 1; /* found: stop */
}

static void uart_irq(void *ctx)
{
	struct lx_machine *m = ctx;

	if (vmres_irq_src_trigger(m->uart_src) == 0)
		atomic_fetch_add_explicit(&m->uart_irqs, 1, memory_order_relaxed);
}

static void uart_output(void *ctx, const char *text, size_t len)
{
	struct lx_machine *m = ctx;

	if (m->log_len + len + 1 > m->log_cap) {
		size_t cap = (m->log_cap ? m->log_cap * 2 : 1 << 16) + len;
		char *p = m->log_oom ? NULL : realloc(m->log, cap);

		if (!p) {
			m->log_oom = true;
			return;
		}
		m->log = p;
		m->log_cap = cap;
	}
	atomic_fetch_add_explicit(&m->out_bytes, len, memory_order_relaxed);
	memcpy(m->log + m->log_len, text, len);
	m->log_len += len;
	m->log[m->log_len] = '\0';
	if (!m->init_ns && memmem(text, len, "vmres-guest: init ", 18))
		m->init_ns = vmm_now_ns();
}

static int setup_uart(struct lx_machine *m)
{
	struct vmres_request q[2];
	struct vmres_resource res[2];
	struct vmres_device dev;
	uint32_t id;
	int rc;

	if (vmm_uart_new("uart0", &m->uart) < 0 ||
	    vmm_exact_pio_request(m->sa, "pio", COM1_PORT, 8, &q[0]) < 0)
		return -1;
	/* the preset reserves IRQ 4 for COM1: the UART that implements it takes it */
	rc = vmres_sysalloc_foreach_owner_alloc(m->sa, VMRES_SYSALLOC_OWNER_PLATFORM,
						find_platform_irq, &res[1]);
	if (rc == 1)
		rc = vmres_sysalloc_release(m->sa, &res[1], VMRES_SYSALLOC_OWNER_PLATFORM);
	if (rc != 0)
		return vmm_fail("releasing IRQ 4", rc);
	q[1] = VMRES_REQUEST_IRQ("gsi-legacy", COM1_IRQ);
	if (vmm_alloc(m->sa, q, 2, OWNER_UART, "uart0", NULL, res) < 0)
		return -1;
	rc = vmres_irq_group_new(m->irq, &res[1], 1, &m->uart_irq);
	if (rc == 0)
		rc = vmres_irq_group_src(m->uart_irq, 0, &m->uart_src);
	if (rc == 0)
		rc = vmres_irq_src_enable(m->uart_src); /* edge, as ISA lines are */
	if (rc != 0)
		return vmm_fail("uart0 IRQ 4", rc);
	vmm_uart_set_irq(m->uart, uart_irq, m);
	vmm_uart_set_output(m->uart, uart_output, m);
	vmm_uart_device(m->uart, &dev);
	dev.owner = OWNER_UART;
	return vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, res, 1, &id);
}

/* The RTC and CMOS (0x70-0x71): Linux reads the time there at boot. */
static int setup_cmos(struct lx_machine *m)
{
	struct vmres_request q;
	struct vmres_resource res;
	struct vmres_device dev;
	uint32_t id;

	if (vmm_cmos_new(m->vm.ram_size, 0, m->vm.nr_vcpus, &m->cmos) < 0 ||
	    vmm_exact_pio_request(m->sa, "pio", 0x70, 2, &q) < 0 ||
	    vmm_alloc(m->sa, &q, 1, OWNER_CMOS, "cmos", NULL, &res) < 0)
		return -1;
	vmm_cmos_device(m->cmos, &dev);
	dev.owner = OWNER_CMOS;
	return vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, &id);
}

static int setup_ctl(struct lx_machine *m)
{
	struct vmres_request q = vmm_addr_request("pio", VMRES_SPACE_PIO, VMM_CTL_PORTS, 16,
						  0x500, 0xfff);
	struct vmres_resource res;
	struct vmres_device dev;
	uint32_t id;

	if (vmm_ctl_new(&m->vm, &m->ctl) < 0 || vmm_alloc(m->sa, &q, 1, OWNER_CTL, "ctl", NULL, &res) < 0)
		return -1;
	m->ctl_port = (uint16_t)res.u.addr.base;
	vmm_ctl_device(m->ctl, &dev);
	dev.owner = OWNER_CTL;
	return vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, &id);
}

/* 00:01.0: a device whose BAR the VMM assigned (vmres's first fit), decoding. */
static int setup_stub(struct lx_machine *m, uint32_t host_id)
{
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_request q = vmm_addr_request("mmio32", VMRES_SPACE_MMIO, STUB_BAR_SIZE,
						  STUB_BAR_SIZE, 0, UINT64_MAX);
	struct vmres_resource res;
	struct vmres_device dev;
	int rc;

	if (vmm_alloc(m->sa, &q, 1, OWNER_STUB, "stub", NULL, &res) < 0)
		return -1;
	cfg.vendor_id = 0x1af4;
	cfg.device_id = 0x10f0; /* in Red Hat's range, no driver */
	cfg.class_code = 0xff0000;
	cfg.command = VMRES_PCI_COMMAND_MEMORY;
	cfg.bars[0] = (struct vmres_pci_bar){
		.kind = VMRES_PCI_BAR_MEM32, .size = STUB_BAR_SIZE, .addr = res.u.addr.base};
	if (vmm_pcistub_new("stub", &cfg, &m->stub) < 0)
		return vmm_fail("stub", VMRES_ENOMEM);
	vmm_pcistub_device(m->stub, &dev);
	dev.owner = OWNER_STUB;
	if (vmm_register_device(m->dm, &dev, host_id, &res, 1, &m->stub_id) < 0)
		return -1;
	rc = vmres_pci_func_bind(vmm_pcistub_func(m->stub), m->dm, m->stub_id);
	if (rc == 0)
		rc = vmres_pci_host_attach(m->pci, STUB_SLOT, 0, vmm_pcistub_func(m->stub));
	return rc ? vmm_fail("stub", rc) : 0;
}

/* 00:02.0: the virtio entropy device, BAR0 left for the guest to assign. */
static int setup_rng(struct lx_machine *m, uint32_t host_id)
{
	struct vmres_request q[VMM_VIRTIO_RNG_NRES];
	struct vmres_resource res[VMM_VIRTIO_RNG_NRES];
	struct vmres_irq_src *msix[VMM_VIRTIO_RNG_VECTORS];
	struct vmres_pci_func *f;
	struct vmres_device dev;
	int rc;

	/* reserved at the top of the window: Linux assigns from the bottom */
	q[VMM_VIRTIO_RNG_RES_BAR0] = vmm_addr_request("mmio32", VMRES_SPACE_MMIO,
						      VMM_VIRTIO_RNG_BAR_SIZE,
						      VMM_VIRTIO_RNG_BAR_SIZE, 0, UINT64_MAX);
	q[VMM_VIRTIO_RNG_RES_BAR0].u.addr.req.policy = VMRES_ADDR_LAST_FIT;
	for (unsigned int v = 0; v < VMM_VIRTIO_RNG_VECTORS; v++)
		q[VMM_VIRTIO_RNG_RES_MSIX + v] = VMRES_REQUEST_MSI("gsi-msi", 1, false);
	if (vmm_alloc(m->sa, q, VMM_VIRTIO_RNG_NRES, OWNER_RNG, "virtio-rng", NULL, res) < 0)
		return -1;
	if (vmm_virtio_rng_new(&m->vm, res[VMM_VIRTIO_RNG_RES_BAR0].u.addr.base, &m->rng) < 0)
		return vmm_fail("virtio-rng", VMRES_ENOMEM);
	f = vmm_virtio_rng_func(m->rng);
	vmm_virtio_rng_device(m->rng, &dev);
	dev.owner = OWNER_RNG;
	if (vmm_register_device(m->dm, &dev, host_id, res, VMM_VIRTIO_RNG_NRES, &m->rng_id) < 0)
		return -1;
	rc = vmres_pci_func_bind(f, m->dm, m->rng_id);
	if (rc == 0) /* unassigned, as firmware that left it to the OS */
		rc = vmres_pci_func_config_write(f, VMRES_PCI_BAR_OFFSET(0), 4, 0);
	if (rc == 0)
		rc = vmres_pci_host_attach(m->pci, RNG_SLOT, 0, f);
	if (rc == 0)
		rc = vmres_irq_group_new(m->irq, &res[VMM_VIRTIO_RNG_RES_MSIX],
					 VMM_VIRTIO_RNG_VECTORS, &m->rng_msix);
	for (unsigned int v = 0; rc == 0 && v < VMM_VIRTIO_RNG_VECTORS; v++)
		rc = vmres_irq_group_src(m->rng_msix, v, &msix[v]);
	if (rc != 0)
		return vmm_fail("virtio-rng", rc);
	return vmm_virtio_rng_start(m->rng, msix);
}

static int setup_kvmres(struct lx_machine *m)
{
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres_backend *be = NULL;
	struct vmres_kvmres_notify n = {
		.instance = m->rng_id,
		.res_index = VMM_VIRTIO_RNG_RES_BAR0,
		.offset = VMM_VIRTIO_RNG_NOTIFY,
		.len = 2, /* the queue index, 16 bits */
		.fd = vmm_virtio_rng_notify_fd(m->rng),
	};
	int rc = vmres_kvmres_backend_kvm_new(vmm_kvm_vm_fd(&m->vm), NULL, &be);

	if (rc != 0)
		return vmm_fail("kvmres backend", rc);
	o.slot_first = KVMRES_SLOT;
	o.slot_count = 1;
	rc = vmres_kvmres_new(m->dm, be, &o, &m->kvmres);
	if (rc != 0) {
		vmres_kvmres_backend_free(be);
		return vmm_fail("kvmres", rc);
	}
	rc = vmres_kvmres_notify_add(m->kvmres, &n);
	return rc ? vmm_fail("virtio-rng notify region", rc) : 0;
}

static int setup_devices(struct lx_machine *m)
{
	struct vmres_irq_backend *be = NULL;
	uint32_t host_id;
	int rc = vmres_irq_backend_kvm_new(vmm_kvm_vm_fd(&m->vm), NULL, &be);

	if (rc == 0)
		rc = vmres_irq_mgr_new(be, &m->irq);
	if (rc != 0) {
		vmres_irq_backend_free(be);
		return vmm_fail("interrupt manager", rc);
	}
	rc = vmres_devmgr_set_msi_notifier(m->dm, vmres_irq_mgr_msi_notify, m->irq);
	if (rc != 0)
		return vmm_fail("MSI notifier", rc);
	if (setup_uart(m) < 0 || setup_cmos(m) < 0)
		return -1;
	if (vmm_add_pci_host(m->dm, m->sa, OWNER_PCI_HOST, &m->conf1, &m->pci, &m->bridge,
			     &host_id) < 0)
		return -1;
	if (setup_stub(m, host_id) < 0 || setup_rng(m, host_id) < 0)
		return -1;
	return setup_kvmres(m);
}

static void lx_free(struct lx_machine *m)
{
	if (!m)
		return;
	vmm_virtio_rng_stop(m->rng);
	vmres_kvmres_free(m->kvmres);
	vmres_devmgr_free(m->dm);
	vmres_irq_mgr_free(m->irq);
	vmres_pci_host_free(m->pci);
	vmres_pci_func_free(m->bridge);
	vmm_pcistub_free(m->stub);
	vmm_virtio_rng_free(m->rng);
	vmm_ctl_free(m->ctl);
	vmm_cmos_free(m->cmos);
	vmm_uart_free(m->uart);
	vmres_sysalloc_free(m->sa);
	vmm_release_vm(&m->vm);
	free(m->log);
	free(m);
}

static int lx_new(const struct vmm_linux_opts *o, struct lx_machine **out)
{
	struct lx_machine *m = calloc(1, sizeof(*m));
	struct vmm_x86boot_opts bo = {.kernel = o->kernel, .initrd = o->initrd};
	struct vmm_x86boot_info info;
	char cmdline[1024];
	void *ram;
	int rc;

	if (!m)
		return -1;
	m->vm.backend = &vmm_backend_kvm;
	m->vm.nr_vcpus = o->nr_vcpus;
	m->vm.direct_port = -1;
	m->vm.pit = true;
	rc = vmres_sysalloc_new_x86_64(&m->sa);
	if (rc != 0) {
		vmm_fail("system allocator", rc);
		goto fail;
	}
	ram = mmap(NULL, o->ram_mib << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED) {
		perror("vmres-demo: guest memory");
		goto fail;
	}
	m->vm.ram = ram;
	m->vm.ram_size = o->ram_mib << 20;
	if (build_e820(m) < 0)
		goto fail;
	rc = vmres_devmgr_new(m->sa, &m->dm);
	if (rc != 0) {
		vmm_fail("device manager", rc);
		goto fail;
	}
	m->vm.devmgr = m->dm;
	/* the control port goes on the command line, the kernel before init() */
	if (setup_ctl(m) < 0)
		goto fail;
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 quiet acpi=off 8250.nr_uarts=1 panic=-1 vmres.ctl=0x%x%s%s",
		 m->ctl_port, o->append ? " " : "", o->append ? o->append : "");
	bo.cmdline = cmdline;
	bo.e820 = m->e820;
	bo.n_e820 = m->n_e820;
	if (vmm_x86boot_load(&m->vm, &bo, &info) < 0 || m->vm.backend->init(&m->vm) < 0 ||
	    setup_devices(m) < 0)
		goto fail;
	printf("vmres-demo: linux %s (boot protocol %u.%02u), %" PRIu64 " KiB at 1 MiB; "
	       "initramfs %" PRIu64 " KiB at 0x%" PRIx64 "\n",
	       info.version[0] ? info.version : "(no version string)", info.protocol >> 8,
	       info.protocol & 0xff, info.kernel_size >> 10, info.initrd_size >> 10,
	       info.initrd_addr);
	printf("vmres-demo: command line: %s\n", cmdline);
	printf("vmres-demo: e820:");
	for (size_t i = 0; i < m->n_e820; i++)
		printf("%s [0x%" PRIx64 ", 0x%" PRIx64 ") %s", i ? "," : "", m->e820[i].addr,
		       m->e820[i].addr + m->e820[i].size,
		       m->e820[i].type == VMM_E820_RAM ? "ram" : "reserved");
	printf("\n");
	*out = m;
	return 0;
fail:
	lx_free(m);
	return -1;
}

/* ---- the check ---------------------------------------------------------------- */

struct lx_check {
	struct lx_machine *m;
	struct vmm_check c;
	bool listed[2]; /* the stub's and the virtio device's BAR0 seen in iomem */
};

/* "  c0004000-c0007fff : 0000:00:02.0": depth (2 spaces a level), range, name. */
static bool parse_range_line(const char *line, unsigned int *depth, uint64_t *start,
			     uint64_t *end, char *name, size_t name_cap)
{
	unsigned int sp = 0;
	int used = 0;

	while (line[sp] == ' ')
		sp++;
	if (sscanf(line + sp, "%" SCNx64 "-%" SCNx64 " : %n", start, end, &used) != 2 || !used)
		return false;
	*depth = sp / 2;
	snprintf(name, name_cap, "%s", line + sp + used);
	return true;
}

static const struct vmm_e820 *e820_holding(const struct lx_machine *m, uint64_t start,
					   uint64_t end)
{
	for (size_t i = 0; i < m->n_e820; i++)
		if (start >= m->e820[i].addr && end <= m->e820[i].addr + m->e820[i].size - 1)
			return &m->e820[i];
	return NULL;
}

/* Our PCI device at @bdf ("0000:00:ss.f"), as a BAR reference for BAR @bar. */
static bool device_bar(struct lx_machine *m, const char *bdf, unsigned int bar,
		       struct vmm_bar_ref *ref)
{
	unsigned int dom, bus, slot, fn;

	if (sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4 || dom || bus || fn ||
	    bar != 0)
		return false;
	if (slot == STUB_SLOT)
		*ref = (struct vmm_bar_ref){"stub", vmm_pcistub_func(m->stub), 0, m->stub_id, 0,
					    OWNER_STUB, VMRES_SPACE_MMIO};
	else if (slot == RNG_SLOT)
		*ref = (struct vmm_bar_ref){"virtio-rng", vmm_virtio_rng_func(m->rng), 0, m->rng_id,
					    VMM_VIRTIO_RNG_RES_BAR0, OWNER_RNG, VMRES_SPACE_MMIO};
	else
		return false;
	return true;
}

/* Is [start, end] inside a range vmres knows in @space: a device's range on the
 * bus, or a reservation of the system allocator? Its name in @what. */
static bool vmres_holds(struct lx_machine *m, enum vmres_space space, uint64_t start,
			uint64_t end, char *what, size_t cap)
{
	struct vmres_devmgr_info info;
	struct vmm_pool_lookup l;
	uint32_t inst;
	unsigned int ridx;
	uint64_t off;

	if (vmres_devmgr_find(m->dm, space, start, &inst, &ridx, &off) == 0 &&
	    vmres_devmgr_find(m->dm, space, end, &inst, &ridx, &off) == 0 &&
	    vmres_devmgr_get(m->dm, inst, &info, NULL, NULL, 0) == 0) {
		snprintf(what, cap, "device %s", info.name);
		return true;
	}
	vmm_lookup_pool(m->dm, space, start, &l);
	if (l.find_rc == 0 && end <= l.info.res.u.addr.base + l.info.res.u.addr.size - 1) {
		snprintf(what, cap, "%s range \"%s\" in %s",
			 l.info.owner == VMRES_SYSALLOC_OWNER_PLATFORM ? "platform" : "reserved",
			 l.label[0] ? l.label : l.owner_name, l.pool);
		return true;
	}
	return false;
}

/* One range the guest lists in /proc/iomem (@space MMIO) or /proc/ioports. */
static void check_range(struct lx_check *k, enum vmres_space space, uint64_t start,
			uint64_t end, const char *name)
{
	struct lx_machine *m = k->m;
	struct vmm_bar_ref ref;
	char what[96] = "", pool[VMRES_POOL_NAME_MAX];
	const struct vmm_e820 *e;
	const char *kind = space == VMRES_SPACE_PIO ? "port" : "mem";

	if (device_bar(m, name, 0, &ref)) {
		if (space != VMRES_SPACE_MMIO) {
			vmm_disagree(&k->c, "%s: the guest lists an I/O range it does not have",
				     name);
			return;
		}
		k->listed[ref.instance == m->rng_id] = true;
		if (vmm_check_bar(&k->c, m->dm, &ref, start, end - start + 1, pool)) {
			k->c.agreed++;
			printf("  ok  %s %-26s [0x%08" PRIx64 "-0x%08" PRIx64
			       "] %s BAR0: register, bus, device table, pool %s\n",
			       kind, name, start, end, ref.name, pool);
		}
		return;
	}
	if (vmres_holds(m, space, start, end, what, sizeof(what))) {
		k->c.agreed++;
		printf("  ok  %s %-26s [0x%08" PRIx64 "-0x%08" PRIx64 "] %s\n", kind, name, start,
		       end, what);
		return;
	}
	/* RAM, and what the kernel keeps of it for itself ("Reserved" page 0) */
	e = space == VMRES_SPACE_MMIO ? e820_holding(m, start, end) : NULL;
	if (e && (e->type == VMM_E820_RAM ? !strcmp(name, "System RAM") || !strcmp(name, "Reserved")
					  : strcmp(name, "System RAM") != 0)) {
		k->c.agreed++;
		printf("  ok  %s %-26s [0x%08" PRIx64 "-0x%08" PRIx64 "] e820 %s\n", kind, name,
		       start, end, e->type == VMM_E820_RAM ? "RAM" : "reserved");
		return;
	}
	vmm_disagree(&k->c, "%s %s [0x%" PRIx64 "-0x%" PRIx64 "]: vmres has nothing there", kind,
		     name, start, end);
}

/* "<bdf> <bar> <start> <end> <flags>" from a resource file: the register agrees. */
static void check_resource(struct lx_check *k, const char *line)
{
	struct vmm_bar_ref ref;
	struct vmres_pci_bar_state st;
	char bdf[16];
	unsigned int bar;
	uint64_t start, end, flags;

	if (sscanf(line, "%15s %u %" SCNx64 " %" SCNx64 " %" SCNx64, bdf, &bar, &start, &end,
		   &flags) != 5 ||
	    !device_bar(k->m, bdf, bar, &ref) || !start)
		return;
	if (vmres_pci_func_bar_get(ref.func, bar, &st) != 0 || st.reg_addr != start ||
	    st.size != end - start + 1) {
		vmm_disagree(&k->c,
			     "%s resource %u: the guest has [0x%" PRIx64 "-0x%" PRIx64
			     "], the register 0x%" PRIx64,
			     bdf, bar, start, end, st.reg_addr);
		return;
	}
	k->c.agreed++;
	printf("  ok  res %-26s [0x%08" PRIx64 "-0x%08" PRIx64 "] %s BAR%u register\n", bdf, start,
	       end, ref.name, bar);
}

/* The last complete dump in the log: [*begin, *end). */
static bool last_dump(const char *log, const char **begin, const char **end)
{
	const char *b = NULL, *e = NULL;

	for (const char *p = strstr(log, "vmres-guest: dump "); p;
	     p = strstr(p + 1, "vmres-guest: dump ")) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		while (n && p[n - 1] == '\r') /* the guest's tty ends lines with CR LF */
			n--;
		if (n >= 5 && !memcmp(p + n - 5, "begin", 5))
			b = p;
		else if (b && n >= 3 && !memcmp(p + n - 3, "end", 3))
			e = p, *begin = b, *end = e;
	}
	return e != NULL;
}

/* Each "vmres-guest: kick <addr>" (a kick at BAR0 + the notify offset after
 * the guest moved BAR0 to addr) reached the device thread while BAR0 was
 * there: the ioeventfd followed the BAR. */
static void check_kicks(struct lx_check *k)
{
	struct vmm_virtio_rng_counts rc;

	vmm_virtio_rng_counts(k->m->rng, &rc);
	for (const char *p = strstr(k->m->log, "vmres-guest: kick "); p;
	     p = strstr(p + 1, "vmres-guest: kick ")) {
		uint64_t at = strtoull(p + strlen("vmres-guest: kick "), NULL, 0);
		bool seen = false;

		for (unsigned int i = 0; i < VMM_VIRTIO_RNG_KICK_PLACES; i++)
			seen |= rc.kicks_at[i] && rc.kick_at[i] == at;
		if (!seen) {
			vmm_disagree(&k->c, "the guest kicked the queue at BAR0 0x%" PRIx64
					    ", the device saw no kick there", at);
			continue;
		}
		k->c.agreed++;
		printf("  ok  kick with BAR0 at 0x%08" PRIx64 ": ioeventfd -> device thread\n", at);
	}
}

static int lx_check(struct lx_machine *m)
{
	struct lx_check k = {.m = m};
	const char *begin, *end;
	char line[512];

	printf("=== vmres against the guest's /proc/iomem, /proc/ioports and resource files ===\n");
	if (!m->log || !last_dump(m->log, &begin, &end)) {
		printf("  the guest printed no complete dump\n");
		return -1;
	}
	for (const char *p = begin; p < end;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		unsigned int depth;
		uint64_t start, last;
		char name[128];
		const char *rest;

		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1),
			 p);
		p += n + (nl != NULL);
		if (line[0] && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if ((rest = strstr(line, "vmres-guest: resource ")))
			check_resource(&k, rest + strlen("vmres-guest: resource "));
		else if ((rest = strstr(line, "vmres-guest: iomem ")) &&
			 parse_range_line(rest + strlen("vmres-guest: iomem "), &depth, &start,
					  &last, name, sizeof(name)) &&
			 depth == 0)
			check_range(&k, VMRES_SPACE_MMIO, start, last, name);
		else if ((rest = strstr(line, "vmres-guest: ioports ")) &&
			 parse_range_line(rest + strlen("vmres-guest: ioports "), &depth, &start,
					  &last, name, sizeof(name)) &&
			 depth == 0)
			check_range(&k, VMRES_SPACE_PIO, start, last, name);
	}
	check_kicks(&k);
	/* both BARs are mapped in vmres: the guest must list them */
	for (unsigned int i = 0; i < 2; i++)
		if (!k.listed[i])
			vmm_disagree(&k.c, "%s BAR0 is mapped in vmres but not in the guest's iomem",
				     i ? "virtio-rng" : "stub");
	printf("vmres-demo: %u ranges agree, %u disagreements\n", k.c.agreed, k.c.disagreements);
	return k.c.disagreements ? -1 : 0;
}

/* ---- the run ------------------------------------------------------------------ */

/* Why this host's KVM cannot boot Linux at a useful speed, or NULL. */
static const char *kvm_unfit(void)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return "this host's KVM is PVM (no hardware virtualization: Linux would run in "
		       "KVM's instruction emulator for hours); tools/demo-linux.sh boots it in a "
		       "nested KVM instead";
	return NULL;
}

static void print_report(struct lx_machine *m, double run_s)
{
	struct vmm_devstat *devs[] = {
		vmm_uart_stat(m->uart), vmm_cmos_stat(m->cmos), vmm_ctl_stat(m->ctl), &m->conf1.stat,
		vmm_pcistub_stat(m->stub), vmm_virtio_rng_stat(m->rng),
	};
	struct vmm_virtio_rng_counts rc;
	struct vmres_pci_bar_state st;

	vmm_print_exits(&m->vm, devs, sizeof(devs) / sizeof(devs[0]), stdout);
	vmm_virtio_rng_counts(m->rng, &rc);
	printf("=== interrupts and the virtio device, VMM side ===\n");
	printf("  boot to /init: %.2f s; whole run %.2f s\n",
	       m->init_ns ? (m->init_ns - m->start_ns) / 1e9 : -1.0, run_s);
	printf("  virtio-rng: %" PRIu64 " bytes in %" PRIu64 " buffers, %" PRIu64
	       " kicks (ioeventfd), %" PRIu64 " MSI-X interrupts sent\n",
	       rc.bytes, rc.buffers, rc.kicks, rc.interrupts);
	for (unsigned int i = 0; i < VMM_VIRTIO_RNG_KICK_PLACES && rc.kicks_at[i]; i++)
		printf("  virtio-rng kicks while BAR0 was at 0x%08" PRIx64 ": %" PRIu64 "\n",
		       rc.kick_at[i], rc.kicks_at[i]);
	printf("  uart0: %" PRIu64 " interrupts on IRQ 4\n", atomic_load(&m->uart_irqs));
	if (vmres_pci_func_bar_get(vmm_virtio_rng_func(m->rng), 0, &st) == 0)
		printf("  virtio-rng BAR0: register 0x%08" PRIx64 ", %s at 0x%08" PRIx64
		       "; %" PRIu64 " moves refused (last: %s)\n",
		       st.reg_addr, st.mapped ? "mapped" : "unmapped", st.mapped_base, st.refused,
		       st.last_error ? vmres_errname(st.last_error) : "none");
}

/* The guest's progress: its console output and its kicks of the virtio queue
 * (a 1 MiB read prints nothing for seconds, but kicks all along). */
static uint64_t lx_progress(void *ctx)
{
	struct lx_machine *m = ctx;
	struct vmm_virtio_rng_counts rc;

	vmm_virtio_rng_counts(m->rng, &rc);
	return atomic_load_explicit(&m->out_bytes, memory_order_relaxed) + rc.kicks;
}

int vmm_linux_main(const struct vmm_linux_opts *opts)
{
	struct lx_machine *m = NULL;
	const char *why = kvm_unfit();
	char probe_why[160];
	enum vmm_run_end end;
	double run_s;
	int rc = 1;

	if (!why && vmm_backend_kvm.probe(probe_why, sizeof(probe_why)) < 0)
		why = probe_why;
	if (why) {
		printf("vmres-demo: linux: skipped: %s\n", why);
		return EXIT_SKIP;
	}
	printf("vmres-demo: vCPU backend: kvm (hardware-assisted), %u vCPUs, %" PRIu64
	       " MiB\n",
	       opts->nr_vcpus, opts->ram_mib);
	if (lx_new(opts, &m) < 0)
		return 1;
	m->vm.progress = lx_progress;
	m->vm.progress_ctx = m;
	m->vm.stall_s = LX_STALL_S;
	m->start_ns = vmm_now_ns();
	end = vmm_run_until(&m->vm, opts->timeout_s);
	run_s = (vmm_now_ns() - m->start_ns) / 1e9;
	vmm_uart_flush(m->uart);
	vmm_virtio_rng_stop(m->rng);
	printf("\n");
	if (end == VMM_RUN_TIMEOUT)
		printf("vmres-demo: linux: stopped after %.0f s without the guest's end\n",
		       opts->timeout_s);
	else if (end == VMM_RUN_STALLED)
		printf("vmres-demo: linux: stopped: the guest made no progress (console output, "
		       "queue kicks) for %.0f s\n",
		       LX_STALL_S);
	else if (m->vm.failed)
		printf("vmres-demo: linux: %s\n", m->vm.failure);
	print_report(m, run_s);
	if (lx_check(m) == 0 && end == VMM_RUN_ENDED && !m->vm.failed && m->vm.guest_exited &&
	    m->vm.guest_status == 0)
		rc = 0;
	else if (end == VMM_RUN_STALLED || (m->vm.failed && strstr(m->vm.failure, "triple fault")))
		rc = VMM_LINUX_STOPPED;
	printf("vmres-demo: linux: the guest %s (status %u); %s\n",
	       m->vm.guest_exited ? "ended its run" : "did not end its run", m->vm.guest_status,
	       rc == 0 ? "success" : "FAILED");
	lx_free(m);
	return rc;
}
