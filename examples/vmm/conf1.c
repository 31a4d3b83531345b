/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI configuration mechanism #1 on ports 0xcf8-0xcff: a vmres device whose
 * accesses go straight to vmres's PCI host (pci.h), which decodes the address
 * latch and forwards to the functions on bus 0. And the same functions through
 * the ECAM window (memory-mapped configuration, 1 MiB per bus), another vmres
 * device in front of vmres's ECAM window onto that host.
 */
#include "devices.h"

static uint64_t conf1_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			   unsigned int size)
{
	struct vmm_conf1 *c = opaque;
	uint32_t v = 0xffffffffu;

	(void)range;
	(void)addr;
	vmm_devstat_count(&c->stat, false);
	if (vmres_pci_host_conf1_read(c->host, (unsigned int)offset, size, &v) != 0)
		v = 0xffffffffu; /* an access the mechanism does not take reads as all ones */
	return v;
}

static void conf1_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			unsigned int size, uint64_t value)
{
	struct vmm_conf1 *c = opaque;

	(void)range;
	(void)addr;
	vmm_devstat_count(&c->stat, true);
	vmres_pci_host_conf1_write(c->host, (unsigned int)offset, size, (uint32_t)value);
}

void vmm_conf1_device(struct vmm_conf1 *c, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = c->stat.name;
	dev->opaque = c;
	dev->read = conf1_read;
	dev->write = conf1_write;
}

static uint64_t ecam_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size)
{
	struct vmm_ecam *e = opaque;
	uint64_t v = ~0ull;

	(void)range;
	(void)addr;
	vmm_devstat_count(&e->stat, false);
	if (vmres_pci_ecam_read(e->ecam, offset, size, &v) != 0)
		v = ~0ull;
	return v;
}

static void ecam_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		       unsigned int size, uint64_t value)
{
	struct vmm_ecam *e = opaque;

	(void)range;
	(void)addr;
	vmm_devstat_count(&e->stat, true);
	vmres_pci_ecam_write(e->ecam, offset, size, value);
}

void vmm_ecam_device(struct vmm_ecam *e, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = e->stat.name;
	dev->opaque = e;
	dev->read = ecam_read;
	dev->write = ecam_write;
}
