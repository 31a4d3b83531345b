/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test PCI device. Its configuration space (header, BARs, MSI capability) is
 * vmres's PCI helper; what is left here is the device's own registers and its
 * doorbell, which raises its MSI through a vmres interrupt source.
 *
 *     BAR0 (4 KiB MMIO)                      BAR1 (8 I/O ports)
 *     0x00 ID       ro  VMM_TESTDEV_MAGIC    0x0 ID  ro  VMM_TESTDEV_MAGIC
 *     0x04 SCRATCH  rw                       0x4 SCRATCH rw (the same register)
 *     0x08 DOORBELL wo  raise the MSI
 *     0x0c RINGS    ro  doorbell writes so far
 *
 * Registers are 32 bits; narrower reads return the addressed bytes.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "../guest/bootinfo.h"
#include "devices.h"

struct vmm_testdev {
	struct vmres_pci_func *func;
	struct vmres_irq_src *msi;
	_Atomic uint32_t scratch;
	_Atomic uint32_t rings;
	struct vmm_devstat stat;
};

/* The guest enabled or disabled MSI: let the source's triggers through or not. */
static void testdev_msi_changed(void *opaque, struct vmres_pci_func *f)
{
	struct vmm_testdev *t = opaque;
	struct vmres_pci_msi_state st;

	if (!t->msi || vmres_pci_func_msi_get(f, &st) != 0)
		return;
	if (st.enabled)
		vmres_irq_src_enable(t->msi);
	else
		vmres_irq_src_disable(t->msi);
}

static const struct vmres_pci_func_ops testdev_ops = {
	.version = VMRES_PCI_FUNC_OPS_VERSION,
	.msi_changed = testdev_msi_changed,
};

int vmm_testdev_new(uint64_t bar0, uint64_t bar1, struct vmm_testdev **out)
{
	struct vmm_testdev *t = calloc(1, sizeof(*t));
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;

	if (!t)
		return -1;
	t->stat.name = "testdev";
	cfg.vendor_id = VMM_TESTDEV_VENDOR;
	cfg.device_id = VMM_TESTDEV_DEVICE;
	cfg.class_code = 0xff0000; /* "does not fit any class" */
	cfg.command = VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_IO; /* as firmware left it */
	cfg.bars[0].kind = VMRES_PCI_BAR_MEM32;
	cfg.bars[0].size = 0x1000;
	cfg.bars[0].addr = bar0;
	cfg.bars[0].res_index = VMM_TESTDEV_RES_BAR0;
	cfg.bars[1].kind = VMRES_PCI_BAR_IO;
	cfg.bars[1].size = VMM_TESTDEV_IO_SIZE;
	cfg.bars[1].addr = bar1;
	cfg.bars[1].res_index = VMM_TESTDEV_RES_BAR1;
	cfg.msi.vectors = 1;
	cfg.msi.res_index = VMM_TESTDEV_RES_MSI;
	cfg.ops = &testdev_ops;
	cfg.opaque = t;
	if (vmres_pci_func_new(&cfg, &t->func) != 0) {
		free(t);
		return -1;
	}
	*out = t;
	return 0;
}

void vmm_testdev_free(struct vmm_testdev *t)
{
	if (!t)
		return;
	vmres_pci_func_free(t->func);
	free(t);
}

struct vmres_pci_func *vmm_testdev_func(struct vmm_testdev *t)
{
	return t->func;
}

void vmm_testdev_set_msi(struct vmm_testdev *t, struct vmres_irq_src *src)
{
	t->msi = src;
}

struct vmm_devstat *vmm_testdev_stat(struct vmm_testdev *t)
{
	return &t->stat;
}

static uint64_t testdev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			     unsigned int size)
{
	struct vmm_testdev *t = opaque;
	uint64_t reg = offset & ~3ull;
	uint32_t v = 0;

	(void)addr;
	vmm_devstat_count(&t->stat, false);
	if (reg == VMM_TESTDEV_ID)
		v = VMM_TESTDEV_MAGIC;
	else if (reg == VMM_TESTDEV_SCRATCH)
		v = atomic_load(&t->scratch);
	else if (range == VMM_TESTDEV_RES_BAR0 && reg == VMM_TESTDEV_RINGS)
		v = atomic_load(&t->rings);
	v >>= 8 * (offset & 3);
	return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void testdev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size, uint64_t value)
{
	struct vmm_testdev *t = opaque;

	(void)addr;
	vmm_devstat_count(&t->stat, true);
	if (size != 4)
		return;
	if (offset == VMM_TESTDEV_SCRATCH) {
		atomic_store(&t->scratch, (uint32_t)value);
	} else if (range == VMM_TESTDEV_RES_BAR0 && offset == VMM_TESTDEV_DOORBELL) {
		atomic_fetch_add(&t->rings, 1);
		if (t->msi)
			vmres_irq_src_trigger(t->msi); /* VMRES_ESTATE while MSI is off: dropped */
	}
}

void vmm_testdev_device(struct vmm_testdev *t, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = t->stat.name;
	dev->opaque = t;
	dev->read = testdev_read;
	dev->write = testdev_write;
}
