/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI workloads (bench/WORKLOADS.md), each a guest access dispatched through
 * a device manager on the x86_64 preset, as a vCPU exit would be:
 *   pci-msix-write    n aligned dword writes of a masked MSI-X entry's data,
 *                     cycling over d vectors (the device's BAR handler forwards
 *                     to vmres_pci_func_bar_write(); nothing is rerouted);
 *   pci-msix-retarget n retargets of an active vector the way Linux moves an
 *                     interrupt: mask, write the data, unmask (one reroute
 *                     through the device manager each time), over d vectors;
 *   pci-ecam-read     n dword reads through the ECAM window, cycling over d
 *                     functions and the 64 dwords of their standard header.
 */
#include <stdio.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "bench.h"

#define MSIX_TABLE 0x0
#define MSIX_PBA   0x8000
#define ECAM_BASE  0xe0000000ull

struct msix_bench {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_pci_func *f;
	uint64_t bar;
};

static uint64_t msix_dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			      unsigned int size)
{
	struct msix_bench *b = opaque;
	uint64_t v;

	(void)addr;
	return vmres_pci_func_bar_read(b->f, range, offset, size, &v) ? 0 : v;
}

static void msix_dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			   unsigned int size, uint64_t value)
{
	struct msix_bench *b = opaque;

	(void)addr;
	(void)vmres_pci_func_bar_write(b->f, range, offset, size, value);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "pci bench: %s: %s\n", what, vmres_strerror(rc));
	return -1;
}

/* A function with d MSI-X vectors in a 64 KiB BAR, bound, MSI-X enabled. */
static int msix_setup(struct msix_bench *b, unsigned int d)
{
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource res[1 + VMRES_PCI_MSIX_MAX_VECTORS];
	struct vmres_request q[2];
	uint32_t id;
	size_t n;
	int rc;

	memset(b, 0, sizeof(*b));
	memset(q, 0, sizeof(q));
	rc = vmres_sysalloc_new_x86_64(&b->sa);
	if (!rc)
		rc = vmres_devmgr_new(b->sa, &b->m);
	if (rc)
		return fail("setup", rc);
	q[0].kind = VMRES_RES_ADDR;
	strcpy(q[0].pool, "mmio32");
	q[0].u.addr.space = VMRES_SPACE_MMIO;
	q[0].u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
	q[0].u.addr.req.size = 0x10000;
	q[0].u.addr.req.align = 0x10000;
	q[1].kind = VMRES_RES_MSI;
	strcpy(q[1].pool, "gsi-msi");
	q[1].u.msi.count = d;
	q[1].u.msi.any = true;
	rc = vmres_sysalloc_alloc(b->sa, q, 2, 1, res, 1 + d, &n, NULL);
	if (rc)
		return fail("alloc", rc);
	dev.name = "msix-bench";
	dev.opaque = b;
	dev.read = msix_dev_read;
	dev.write = msix_dev_write;
	dev.owner = 1;
	rc = vmres_devmgr_register(b->m, &dev, VMRES_DEVMGR_NO_PARENT, res, 1 + d, &id);
	if (rc)
		return fail("register", rc);
	c.vendor_id = 0x1af4;
	c.command = VMRES_PCI_COMMAND_MEMORY;
	c.bars[0] = (struct vmres_pci_bar){.kind = VMRES_PCI_BAR_MEM32, .size = 0x10000};
	c.msix = (struct vmres_pci_msix){
		.vectors = d, .table_offset = MSIX_TABLE, .pba_offset = MSIX_PBA, .res_index = 1};
	rc = vmres_pci_func_new(&c, &b->f);
	if (!rc)
		rc = vmres_pci_func_bind(b->f, b->m, id);
	if (rc)
		return fail("function", rc);
	b->bar = res[0].u.addr.base;
	(void)vmres_pci_func_config_write(b->f, 0x42, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	for (unsigned int v = 0; v < d; v++)
		(void)vmres_pci_func_bar_write(b->f, 0, MSIX_TABLE + 16 * v, 4, 0xfee00000u);
	return 0;
}

static void msix_teardown(struct msix_bench *b)
{
	vmres_devmgr_free(b->m);
	vmres_pci_func_free(b->f);
	vmres_sysalloc_free(b->sa);
}

static void mmio_write32(struct vmres_devmgr *m, uint64_t addr, uint32_t v)
{
	uint8_t buf[4];

	memcpy(buf, &v, 4);
	(void)vmres_devmgr_mmio(m, addr, 4, true, buf);
}

static uint32_t mmio_read32(struct vmres_devmgr *m, uint64_t addr)
{
	uint8_t buf[4] = {0};
	uint32_t v;

	(void)vmres_devmgr_mmio(m, addr, 4, false, buf);
	memcpy(&v, buf, 4);
	return v;
}

/* The check of @p d, the thread's registration and the set-up both MSI-X
 * workloads start with; 0, or -1 with nothing left to undo. */
static int msix_begin(struct msix_bench *b, uint64_t d)
{
	if (d < 1 || d > VMRES_PCI_MSIX_MAX_VECTORS) {
		fprintf(stderr, "pci bench: d must be 1..%u\n", VMRES_PCI_MSIX_MAX_VECTORS);
		return -1;
	}
	if (vmres_devmgr_thread_register())
		return -1;
	if (msix_setup(b, (unsigned int)d)) {
		vmres_devmgr_thread_unregister();
		return -1;
	}
	return 0;
}

int bench_pci_msix_write(uint64_t n, uint64_t d)
{
	struct msix_bench b;
	uint64_t sum = 0;
	double t0, t1;

	if (msix_begin(&b, d))
		return -1;
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++)
		mmio_write32(b.m, b.bar + MSIX_TABLE + 16 * (k % d) + 8, (uint32_t)k);
	t1 = bench_now_ns();
	for (uint64_t v = 0; v < d; v++)
		sum += mmio_read32(b.m, b.bar + MSIX_TABLE + 16 * v + 8);
	msix_teardown(&b);
	vmres_devmgr_thread_unregister();
	bench_report("pci-msix-write", n, d, NULL, (t1 - t0) / (double)n, sum);
	return 0;
}

int bench_pci_msix_retarget(uint64_t n, uint64_t d)
{
	struct msix_bench b;
	struct vmres_pci_msix_vector x;
	uint64_t sum = 0;
	double t0, t1;

	if (msix_begin(&b, d))
		return -1;
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint64_t e = b.bar + MSIX_TABLE + 16 * (k % d);

		mmio_write32(b.m, e + 12, VMRES_PCI_MSIX_VECTOR_MASKED);
		mmio_write32(b.m, e + 8, (uint32_t)k);
		mmio_write32(b.m, e + 12, 0);
	}
	t1 = bench_now_ns();
	for (unsigned int v = 0; v < d; v++)
		if (!vmres_pci_func_msix_vector_get(b.f, v, &x) && x.routed)
			sum += x.routed_msg.data;
	msix_teardown(&b);
	vmres_devmgr_thread_unregister();
	bench_report("pci-msix-retarget", n, d, NULL, (t1 - t0) / (double)n, sum);
	return 0;
}

int bench_pci_ecam_read(uint64_t n, uint64_t d)
{
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;
	struct vmres_pci_host *host = NULL;
	struct vmres_pci_ecam *e = NULL;
	struct vmres_pci_func *f[VMRES_PCI_HOST_SLOTS] = {0};
	struct vmres_device dev;
	struct vmres_resource win;
	uint64_t sum = 0;
	double t0 = 0, t1 = 0;
	uint32_t id;
	int rc;

	if (d < 1 || d > VMRES_PCI_HOST_SLOTS) {
		fprintf(stderr, "pci-ecam-read: d must be 1..%u\n", VMRES_PCI_HOST_SLOTS);
		return -1;
	}
	if (vmres_devmgr_thread_register())
		return -1;
	rc = vmres_sysalloc_new_x86_64(&sa);
	if (!rc)
		rc = vmres_devmgr_new(sa, &m);
	if (!rc)
		rc = vmres_pci_host_new(&host);
	if (!rc)
		rc = vmres_pci_ecam_new(host, 256, &e);
	if (!rc)
		rc = vmres_pci_ecam_device(e, &dev);
	memset(&win, 0, sizeof(win));
	win.kind = VMRES_RES_ADDR;
	win.u.addr.space = VMRES_SPACE_MMIO;
	win.u.addr.base = ECAM_BASE;
	win.u.addr.size = 256 * VMRES_PCI_ECAM_BUS_SIZE;
	if (!rc)
		rc = vmres_devmgr_register(m, &dev, VMRES_DEVMGR_NO_PARENT, &win, 1, &id);
	for (unsigned int s = 0; !rc && s < d; s++) {
		struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;

		c.vendor_id = 0x1af4;
		c.device_id = (uint16_t)(0x1040 + s);
		c.express.enabled = true;
		rc = vmres_pci_func_new(&c, &f[s]);
		if (!rc)
			rc = vmres_pci_host_attach(host, s, 0, f[s]);
	}
	if (!rc) {
		t0 = bench_now_ns();
		for (uint64_t k = 0; k < n; k++) {
			uint64_t s = k % d, reg = (k / d) % 64 * 4;

			sum += mmio_read32(m, ECAM_BASE + (s << 15) + reg);
		}
		t1 = bench_now_ns();
	}
	vmres_devmgr_free(m);
	vmres_pci_ecam_free(e);
	vmres_pci_host_free(host);
	for (unsigned int s = 0; s < d; s++)
		vmres_pci_func_free(f[s]);
	vmres_sysalloc_free(sa);
	vmres_devmgr_thread_unregister();
	if (rc)
		return fail("pci-ecam-read", rc);
	bench_report("pci-ecam-read", n, d, NULL, (t1 - t0) / (double)n, sum);
	return 0;
}
