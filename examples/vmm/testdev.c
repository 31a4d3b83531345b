/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test PCI device, a PCI Express integrated endpoint. Its configuration
 * space (header, BARs, MSI and MSI-X capabilities, PCI Express capability) is
 * vmres's PCI helper, and so are the MSI-X table and pending-bit array in
 * BAR2; what is left here is the device's own registers, its doorbell (which
 * raises its MSI through a vmres interrupt source), its notify queues and its
 * shared-memory page:
 *
 *     BAR0 (4 KiB MMIO)                      BAR1 (8 I/O ports)
 *     0x00 ID       ro  VMM_TESTDEV_MAGIC    0x0 ID  ro  VMM_TESTDEV_MAGIC
 *     0x04 SCRATCH  rw                       0x4 SCRATCH rw (the same register)
 *     0x08 DOORBELL wo  raise the MSI
 *     0x0c RINGS    ro  doorbell writes so far
 *     0x10 KICKS(0) ro  kicks of queue 0     0x14 KICKS(1)
 *     0x18 ANSWERED ro  MSI-X vectors fired in answer to kicks
 *
 *     BAR2 (16 KiB MMIO)                     BAR3 (4 KiB MMIO)
 *     0x0000 MSI-X table (2 vectors)  vmres  host memory (vmm_testdev_shm()),
 *     0x0800 MSI-X PBA                vmres  a memory slot where the backend
 *     0x1000 NOTIFY(0) wo  eventfd 0         has them; else served here from
 *     0x1004 NOTIFY(1) wo  eventfd 1         the same buffer
 *
 * A guest write at NOTIFY(q) never reaches this file: vmres_kvmres installs a
 * KVM ioeventfd there (no exit at all), and where there is none (the software
 * CPU) vmres's bus signals the eventfd itself. The device's notify thread
 * waits on the eventfds, counts the kicks and answers each wake-up of queue q
 * with MSI-X vector q (vmres_pci_func_fire(): pending while the guest masks it).
 *
 * BAR3's accesses that do reach this file are counted by vCPU and by whether
 * BAR3 was still at its firmware address: where the backend maps the buffer
 * (a KVM memory slot, uc_mem_map_ptr() in the vCPU's engine) there are none;
 * a Unicorn vCPU that has not applied a move yet still comes here.
 *
 * Registers are 32 bits; narrower reads return the addressed bytes.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../guest/bootinfo.h"
#include "devices.h"
#include "setup.h"

#define QUEUES VMM_TESTDEV_MSIX_VECTORS

struct vmm_testdev {
	struct vmres_pci_func *func;
	struct vmres_irq_src *msi;
	_Atomic uint32_t scratch;
	_Atomic uint32_t rings;
	_Atomic uint32_t kicks[QUEUES];
	_Atomic uint32_t answered;
	_Atomic uint32_t notify_leaks;		       /* notify writes that reached the handler */
	int notify_fd[QUEUES];			       /* eventfds of the notify regions */
	struct vmm_worker notifier;		       /* the notify thread */
	uint8_t *shm;				       /* BAR3's host memory, one page */
	uint64_t shm_home;			       /* BAR3's firmware address */
	_Atomic uint32_t shm_served[VMM_MAX_VCPUS][2]; /* BAR3 accesses [cpu][moved] */
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

static void testdev_describe(struct vmm_testdev *t, const uint64_t bar[4],
			     struct vmres_pci_func_config *cfg)
{
	static const unsigned int res[4] = {VMM_TESTDEV_RES_BAR0, VMM_TESTDEV_RES_BAR1,
					    VMM_TESTDEV_RES_BAR2, VMM_TESTDEV_RES_BAR3};
	static const uint64_t size[4] = {0x1000, VMM_TESTDEV_IO_SIZE, VMM_TESTDEV_MSIX_BAR_SIZE,
					 VMM_TESTDEV_SHM_SIZE};

	cfg->vendor_id = VMM_TESTDEV_VENDOR;
	cfg->device_id = VMM_TESTDEV_DEVICE;
	cfg->class_code = 0xff0000; /* "does not fit any class" */
	cfg->command = VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_IO; /* as firmware left it */
	for (unsigned int i = 0; i < 4; i++) {
		cfg->bars[i].kind = i == 1 ? VMRES_PCI_BAR_IO : VMRES_PCI_BAR_MEM32;
		cfg->bars[i].size = size[i];
		cfg->bars[i].addr = bar[i];
		cfg->bars[i].res_index = res[i];
	}
	cfg->msi.vectors = 1;
	cfg->msi.res_index = VMM_TESTDEV_RES_MSI;
	cfg->msix.vectors = VMM_TESTDEV_MSIX_VECTORS;
	cfg->msix.table_bar = 2;
	cfg->msix.table_offset = VMM_TESTDEV_MSIX_TABLE;
	cfg->msix.pba_bar = 2;
	cfg->msix.pba_offset = VMM_TESTDEV_MSIX_PBA;
	cfg->msix.res_index = VMM_TESTDEV_RES_MSIX;
	cfg->express.enabled = true;
	cfg->express.integrated = true; /* on bus 0 of the root complex, no link */
	cfg->ops = &testdev_ops;
	cfg->opaque = t;
}

int vmm_testdev_new(const uint64_t bar[4], struct vmm_testdev **out)
{
	struct vmm_testdev *t = calloc(1, sizeof(*t));
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	void *shm;

	if (!t)
		return -1;
	t->stat.name = "testdev";
	for (unsigned int q = 0; q < QUEUES; q++)
		t->notify_fd[q] = -1;
	if (vmm_worker_init(&t->notifier) != 0)
		goto fail;
	shm = mmap(NULL, VMM_TESTDEV_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	if (shm == MAP_FAILED)
		goto fail;
	t->shm = shm;
	t->shm_home = bar[3];
	memcpy(t->shm, &(uint32_t){VMM_TESTDEV_SHM_MAGIC}, 4);
	for (unsigned int q = 0; q < QUEUES; q++) {
		t->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_fd[q] < 0)
			goto fail;
	}
	testdev_describe(t, bar, &cfg);
	if (vmres_pci_func_new(&cfg, &t->func) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	vmm_testdev_free(t);
	return -1;
}

void vmm_testdev_stop(struct vmm_testdev *t)
{
	if (t)
		vmm_worker_stop(&t->notifier);
}

void vmm_testdev_free(struct vmm_testdev *t)
{
	if (!t)
		return;
	vmm_worker_free(&t->notifier);
	vmres_pci_func_free(t->func);
	for (unsigned int q = 0; q < QUEUES; q++)
		if (t->notify_fd[q] >= 0)
			close(t->notify_fd[q]);
	if (t->shm)
		munmap(t->shm, VMM_TESTDEV_SHM_SIZE);
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

int vmm_testdev_notify_fd(struct vmm_testdev *t, unsigned int queue)
{
	return queue < QUEUES ? t->notify_fd[queue] : -1;
}

void *vmm_testdev_shm(struct vmm_testdev *t)
{
	return t->shm;
}

void vmm_testdev_counts(struct vmm_testdev *t, struct vmm_testdev_counts *out)
{
	for (unsigned int q = 0; q < QUEUES; q++)
		out->kicks[q] = atomic_load(&t->kicks[q]);
	out->answered = atomic_load(&t->answered);
	out->notify_leaks = atomic_load(&t->notify_leaks);
	memcpy(&out->shm_note, t->shm + VMM_TESTDEV_SHM_GUEST, 4);
	for (unsigned int c = 0; c < VMM_MAX_VCPUS; c++)
		for (unsigned int moved = 0; moved < 2; moved++)
			out->shm_served[c][moved] = atomic_load(&t->shm_served[c][moved]);
}

struct vmm_devstat *vmm_testdev_stat(struct vmm_testdev *t)
{
	return &t->stat;
}

/* Queue @q was kicked @n times since the last wake-up: count, answer once. */
static void testdev_answer(struct vmm_testdev *t, unsigned int q, uint64_t n)
{
	int rc;

	atomic_fetch_add(&t->kicks[q], (uint32_t)n);
	rc = vmres_pci_func_fire(t->func, q); /* VMRES_ESTATE while MSI-X is off: dropped */
	if (rc != 0 && rc != VMRES_ESTATE)
		fprintf(stderr, "vmres-demo: testdev: firing MSI-X vector %u: %s\n", q,
			vmres_strerror(rc));
	atomic_fetch_add(&t->answered, 1);
}

/* The VMM side of the notify queues: what a virtio device's I/O thread does. */
static void *testdev_notify_thread(void *arg)
{
	struct vmm_testdev *t = arg;
	struct pollfd pfd[QUEUES + 1];

	for (unsigned int q = 0; q < QUEUES; q++)
		pfd[q] = (struct pollfd){.fd = t->notify_fd[q], .events = POLLIN};
	pfd[QUEUES] = (struct pollfd){.fd = t->notifier.stop_fd, .events = POLLIN};
	for (;;) {
		if (poll(pfd, QUEUES + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("vmres-demo: testdev: poll");
			return NULL;
		}
		if (pfd[QUEUES].revents)
			return NULL;
		for (unsigned int q = 0; q < QUEUES; q++) {
			eventfd_t n;

			if ((pfd[q].revents & POLLIN) && eventfd_read(t->notify_fd[q], &n) == 0)
				testdev_answer(t, q, n);
		}
	}
}

int vmm_testdev_start(struct vmm_testdev *t, struct vmres_irq_src *const *msix, unsigned int n)
{
	int rc = vmres_pci_func_set_msix_sources(t->func, msix, n);

	if (rc != 0)
		return vmm_fail("test device MSI-X sources", rc);
	return vmm_worker_start(&t->notifier, testdev_notify_thread, t, "testdev");
}

static uint32_t testdev_reg(struct vmm_testdev *t, unsigned int range, uint64_t reg)
{
	if (reg == VMM_TESTDEV_ID)
		return VMM_TESTDEV_MAGIC;
	if (reg == VMM_TESTDEV_SCRATCH)
		return atomic_load(&t->scratch);
	if (range != VMM_TESTDEV_RES_BAR0)
		return 0;
	if (reg == VMM_TESTDEV_RINGS)
		return atomic_load(&t->rings);
	for (unsigned int q = 0; q < QUEUES; q++)
		if (reg == VMM_TESTDEV_KICKS(q))
			return atomic_load(&t->kicks[q]);
	if (reg == VMM_TESTDEV_ANSWERED)
		return atomic_load(&t->answered);
	return 0;
}

/* A BAR3 access the backend's mapping did not take: count it. */
static void testdev_shm_served(struct vmm_testdev *t, uint64_t offset, uint64_t addr)
{
	unsigned int cpu = vmm_this_cpu < VMM_MAX_VCPUS ? vmm_this_cpu : 0;

	atomic_fetch_add_explicit(&t->shm_served[cpu][addr - offset != t->shm_home], 1,
				  memory_order_relaxed);
}

static uint64_t testdev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			     unsigned int size)
{
	struct vmm_testdev *t = opaque;
	uint64_t v = 0;
	uint32_t reg;

	vmm_devstat_count(&t->stat, false);
	if (vmres_pci_func_bar_read(t->func, range, offset, size, &v) == 0)
		return v; /* MSI-X table or PBA */
	if (range == VMM_TESTDEV_RES_BAR3) {
		/* no memory slot (or not yet at this address): the same bytes */
		testdev_shm_served(t, offset, addr);
		if (offset + size <= VMM_TESTDEV_SHM_SIZE && size <= sizeof(v))
			memcpy(&v, t->shm + offset, size);
		return v;
	}
	if (range == VMM_TESTDEV_RES_BAR2)
		return 0;
	reg = testdev_reg(t, range, offset & ~3ull) >> (8 * (offset & 3));
	return size >= 4 ? reg : reg & ((1u << (8 * size)) - 1);
}

static void testdev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size, uint64_t value)
{
	struct vmm_testdev *t = opaque;

	vmm_devstat_count(&t->stat, true);
	if (vmres_pci_func_bar_write(t->func, range, offset, size, value) == 0)
		return; /* MSI-X table (or the read-only PBA) */
	if (range == VMM_TESTDEV_RES_BAR3) {
		testdev_shm_served(t, offset, addr);
		if (offset + size <= VMM_TESTDEV_SHM_SIZE && size <= sizeof(value))
			memcpy(t->shm + offset, &value, size);
		return;
	}
	if (range == VMM_TESTDEV_RES_BAR2) {
		for (unsigned int q = 0; q < QUEUES; q++)
			if (offset == VMM_TESTDEV_NOTIFY(q))
				atomic_fetch_add(&t->notify_leaks, 1);
		return;
	}
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
