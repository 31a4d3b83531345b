/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "../guest/bootinfo.h"
#include "devices.h"
#include "guest_image.h"
#include "lapic.h"
#include "machine.h"
#include "setup.h"

/* Owner tags of the devices' allocations in the system allocator. */
enum {
	OWNER_UART = 1,
	OWNER_CTL,
	OWNER_PCI_HOST,
	OWNER_TESTDEV,
	OWNER_LAPIC,
	OWNER_PCI_ECAM,
};

#define PIO_POOL  "pio"
#define MMIO_POOL "mmio32"
#define MSI_POOL  "gsi-msi"

_Static_assert(VMM_MAX_VCPUS <= VMM_GUEST_MAX_CPUS, "the guest has a stack for every vCPU");

/* Where the guest may place 32-bit BARs: the PCI hole below the IOAPIC. */
#define PCI_HOLE_BASE 0xc0000000u
#define PCI_HOLE_LAST 0xfebfffffu

/* The x86_64 preset's ECAM reservation: 256 buses of 1 MiB. */
#define ECAM_BASE  0xe0000000u
#define ECAM_BUSES 256u

/* Memory slots 0 and 1 are the VMM's (RAM, firmware ROM); BAR-backed memory
 * takes its numbers from here on. */
#define KVMRES_SLOT_FIRST 2u
#define KVMRES_SLOTS	  8u

struct vmm_machine {
	struct vmm vm;
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *dm;
	struct vmres_irq_mgr *irq;
	struct vmres_irq_group *testdev_irqs;
	struct vmres_irq_group *testdev_msix;
	struct vmres_kvmres *kvmres; /* the test device's notify regions and memory */
	struct vmres_pci_host *pci;
	struct vmres_pci_ecam *ecam;
	struct vmres_pci_func *bridge;
	struct vmm_uart *uart;
	struct vmm_ctl *ctl;
	struct vmm_testdev *testdev;
	struct vmm_conf1 conf1;
	struct vmm_ecam ecam_dev;
	struct vmm_lapic_window lapic_window;
	uint16_t ctl_port;
	uint32_t testdev_id;
	bool shm_slot; /* BAR3 is a memory slot (else the device serves it) */
};

/* A fixed legacy range the x86_64 preset reserves for the platform (com1, conf1):
 * the device that implements it takes it over, so that the map names it. */
static int claim_platform_range(struct vmm_machine *m, uint64_t base, uint64_t size, uint64_t owner,
				const char *owner_name, const char *label,
				struct vmres_resource *out)
{
	struct vmres_request q;
	const char *labels[1] = {label};

	if (vmm_exact_pio_request(m->sa, PIO_POOL, base, size, &q) < 0)
		return -1;
	return vmm_alloc(m->sa, &q, 1, owner, owner_name, labels, out);
}

/* Callback backend (software CPU): an MSI is a write to the LAPIC it names. */
static void deliver_to_lapic(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			     const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct vmm *vm = ctx;

	(void)gsi;
	if (kind == VMRES_IRQ_MSI && msg && signal == VMRES_IRQ_SIGNAL_EDGE)
		vmm_lapic_msi(vm, (uint64_t)msg->addr_hi << 32 | msg->addr_lo, msg->data);
}

static int setup_irq(struct vmm_machine *m)
{
	struct vmres_irq_backend *be = NULL;
	int rc;

	if (m->vm.backend == &vmm_backend_kvm)
		rc = vmres_irq_backend_kvm_new(vmm_kvm_vm_fd(&m->vm), NULL, &be);
	else
		rc = vmres_irq_backend_callback_new(deliver_to_lapic, &m->vm, &be);
	if (rc != 0)
		return vmm_fail("interrupt backend", rc);
	rc = vmres_irq_mgr_new(be, &m->irq);
	if (rc != 0) {
		vmres_irq_backend_free(be);
		return vmm_fail("interrupt manager", rc);
	}
	rc = vmres_devmgr_set_msi_notifier(m->dm, vmres_irq_mgr_msi_notify, m->irq);
	return rc ? vmm_fail("MSI notifier", rc) : 0;
}

/* The ECAM window, where the preset reserved it: the same functions as conf1. */
static int setup_ecam(struct vmm_machine *m, uint32_t pci_id)
{
	struct vmres_device dev;
	struct vmres_resource res;
	struct vmres_request q;
	const char *labels[1] = {"pci ecam"};
	uint32_t id;
	int rc = vmres_pci_ecam_new(m->pci, ECAM_BUSES, &m->ecam);

	if (rc != 0)
		return vmm_fail("ECAM window", rc);
	if (vmm_exact_request(m->sa, MMIO_POOL, VMRES_SPACE_MMIO, ECAM_BASE,
			      (uint64_t)ECAM_BUSES * VMRES_PCI_ECAM_BUS_SIZE, &q) < 0 ||
	    vmm_alloc(m->sa, &q, 1, OWNER_PCI_ECAM, "pci-ecam", labels, &res) < 0)
		return -1;
	m->ecam_dev.ecam = m->ecam;
	m->ecam_dev.stat.name = "pci-ecam";
	vmm_ecam_device(&m->ecam_dev, &dev);
	dev.owner = OWNER_PCI_ECAM;
	return vmm_register_device(m->dm, &dev, pci_id, &res, 1, &id);
}

static struct vmres_request msi_request(unsigned int count)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_MSI;
	snprintf(q.pool, VMRES_POOL_NAME_MAX, "%s", MSI_POOL);
	q.u.msi.count = count;
	q.u.msi.any = true;
	return q;
}

/* The test device at slot 1: four BARs, one MSI, two MSI-X vectors. */
static int setup_testdev(struct vmm_machine *m, uint32_t pci_id)
{
	static const char *const labels[VMM_TESTDEV_NRES] = {
		"bar0", "bar1", "msi", "bar2 msix+notify", "bar3 shm", "msix 0", "msix 1",
	};
	struct vmres_request q[VMM_TESTDEV_NRES];
	struct vmres_resource res[VMM_TESTDEV_NRES];
	struct vmres_irq_src *src, *msix[VMM_TESTDEV_MSIX_VECTORS];
	struct vmres_device dev;
	uint64_t bar[4];
	int rc;

	_Static_assert(VMM_TESTDEV_NRES == sizeof(labels) / sizeof(labels[0]), "one label each");
	q[VMM_TESTDEV_RES_BAR0] =
		vmm_addr_request(MMIO_POOL, VMRES_SPACE_MMIO, 0x1000, 0x1000, 0, UINT64_MAX);
	q[VMM_TESTDEV_RES_BAR1] = vmm_addr_request(PIO_POOL, VMRES_SPACE_PIO, VMM_TESTDEV_IO_SIZE,
						   VMM_TESTDEV_IO_SIZE, 0xc000, 0xffff);
	q[VMM_TESTDEV_RES_MSI] = msi_request(1);
	q[VMM_TESTDEV_RES_BAR2] =
		vmm_addr_request(MMIO_POOL, VMRES_SPACE_MMIO, VMM_TESTDEV_MSIX_BAR_SIZE,
				 VMM_TESTDEV_MSIX_BAR_SIZE, 0, UINT64_MAX);
	q[VMM_TESTDEV_RES_BAR3] =
		vmm_addr_request(MMIO_POOL, VMRES_SPACE_MMIO, VMM_TESTDEV_SHM_SIZE,
				 VMM_TESTDEV_SHM_SIZE, 0, UINT64_MAX);
	for (unsigned int v = 0; v < VMM_TESTDEV_MSIX_VECTORS; v++)
		q[VMM_TESTDEV_RES_MSIX + v] = msi_request(1);
	if (vmm_alloc(m->sa, q, VMM_TESTDEV_NRES, OWNER_TESTDEV, "testdev", labels, res) < 0)
		return -1;
	bar[0] = res[VMM_TESTDEV_RES_BAR0].u.addr.base;
	bar[1] = res[VMM_TESTDEV_RES_BAR1].u.addr.base;
	bar[2] = res[VMM_TESTDEV_RES_BAR2].u.addr.base;
	bar[3] = res[VMM_TESTDEV_RES_BAR3].u.addr.base;
	if (vmm_testdev_new(bar, &m->testdev) < 0)
		return vmm_fail("test device", VMRES_ENOMEM);
	vmm_testdev_device(m->testdev, &dev);
	dev.owner = OWNER_TESTDEV;
	if (vmm_register_device(m->dm, &dev, pci_id, res, VMM_TESTDEV_NRES, &m->testdev_id) < 0)
		return -1;
	rc = vmres_pci_func_bind(vmm_testdev_func(m->testdev), m->dm, m->testdev_id);
	if (rc == 0)
		rc = vmres_pci_host_attach(m->pci, 1, 0, vmm_testdev_func(m->testdev));
	if (rc != 0)
		return vmm_fail("binding the test device", rc);
	rc = vmres_irq_group_new(m->irq, &res[VMM_TESTDEV_RES_MSI], 1, &m->testdev_irqs);
	if (rc == 0)
		rc = vmres_irq_group_src(m->testdev_irqs, 0, &src);
	if (rc != 0)
		return vmm_fail("test device MSI", rc);
	vmm_testdev_set_msi(m->testdev, src);
	rc = vmres_irq_group_new(m->irq, &res[VMM_TESTDEV_RES_MSIX], VMM_TESTDEV_MSIX_VECTORS,
				 &m->testdev_msix);
	for (unsigned int v = 0; rc == 0 && v < VMM_TESTDEV_MSIX_VECTORS; v++)
		rc = vmres_irq_group_src(m->testdev_msix, v, &msix[v]);
	if (rc != 0)
		return vmm_fail("test device MSI-X", rc);
	return vmm_testdev_start(m->testdev, msix, VMM_TESTDEV_MSIX_VECTORS);
}

/* The software CPU's kvmres backend: memory by uc_mem_map_ptr() on every
 * vCPU's engine (vcpu_unicorn.c), notify regions by vmres's bus. */
static int unicorn_mem_map(void *ctx, const struct vmres_kvmres_mem_map *mm)
{
	return vmm_unicorn_mem_map(ctx, mm->gpa, mm->size, mm->host, mm->readonly);
}

static int unicorn_mem_unmap(void *ctx, const struct vmres_kvmres_mem_map *mm)
{
	return vmm_unicorn_mem_unmap(ctx, mm->gpa, mm->size, mm->host, mm->readonly);
}

static int setup_kvmres(struct vmm_machine *m)
{
	static const struct vmres_kvmres_backend_ops unicorn_ops = {
		.version = VMRES_KVMRES_BACKEND_OPS_VERSION,
		.mem_map = unicorn_mem_map,
		.mem_unmap = unicorn_mem_unmap,
	};
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres_backend *be = NULL;
	int rc;

	if (m->vm.backend == &vmm_backend_kvm)
		rc = vmres_kvmres_backend_kvm_new(vmm_kvm_vm_fd(&m->vm), NULL, &be);
	else
		rc = vmres_kvmres_backend_new(&unicorn_ops, &m->vm, &be);
	if (rc != 0)
		return vmm_fail("kvmres backend", rc);
	o.slot_first = KVMRES_SLOT_FIRST;
	o.slot_count = KVMRES_SLOTS;
	rc = vmres_kvmres_new(m->dm, be, &o, &m->kvmres);
	if (rc != 0) {
		vmres_kvmres_backend_free(be);
		return vmm_fail("kvmres", rc);
	}
	for (unsigned int q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++) {
		struct vmres_kvmres_notify n = {
			.instance = m->testdev_id,
			.res_index = VMM_TESTDEV_RES_BAR2,
			.offset = VMM_TESTDEV_NOTIFY(q),
			.len = 4,
			.fd = vmm_testdev_notify_fd(m->testdev, q),
		};

		rc = vmres_kvmres_notify_add(m->kvmres, &n);
		if (rc != 0)
			return vmm_fail("test device notify region", rc);
	}
	rc = vmres_kvmres_mem_attach(m->kvmres, m->testdev_id, VMM_TESTDEV_RES_BAR3,
				     vmm_testdev_shm(m->testdev), false, NULL);
	if (rc == VMRES_ENOTSUP)
		return 0; /* this backend has no memory: the device serves BAR3 */
	if (rc != 0)
		return vmm_fail("test device memory BAR", rc);
	m->shm_slot = true;
	return 0;
}

static int setup_devices(struct vmm_machine *m)
{
	struct vmres_device dev;
	struct vmres_resource res[1];
	uint32_t id, pci_id;

	/* uart0 on COM1 */
	if (vmm_uart_new("uart0", &m->uart) < 0 ||
	    claim_platform_range(m, 0x3f8, 8, OWNER_UART, "uart0", "com1", &res[0]) < 0)
		return -1;
	vmm_uart_device(m->uart, &dev);
	dev.owner = OWNER_UART;
	if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, res, 1, &id) < 0)
		return -1;

	/* the control device, anywhere in the ports above the legacy ones */
	{
		struct vmres_request q = vmm_addr_request(PIO_POOL, VMRES_SPACE_PIO, VMM_CTL_PORTS,
							  16, 0x500, 0xfff);
		const char *labels[1] = {"ctl"};

		if (vmm_ctl_new(&m->vm, &m->ctl) < 0 ||
		    vmm_alloc(m->sa, &q, 1, OWNER_CTL, "ctl", labels, res) < 0)
			return -1;
	}
	m->ctl_port = (uint16_t)res[0].u.addr.base;
	vmm_ctl_device(m->ctl, &dev);
	dev.owner = OWNER_CTL;
	if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, res, 1, &id) < 0)
		return -1;

	/* PCI: conf1 ports, the host bridge at slot 0 */
	if (vmm_add_pci_host(m->dm, m->sa, OWNER_PCI_HOST, &m->conf1, &m->pci, &m->bridge,
			     &pci_id) < 0)
		return -1;

	if (setup_ecam(m, pci_id) < 0 || setup_testdev(m, pci_id) < 0 || setup_kvmres(m) < 0)
		return -1;

	/* the software CPU's LAPIC window (KVM: in the kernel, never exits) */
	if (m->vm.backend != &vmm_backend_kvm) {
		memset(&res[0], 0, sizeof(res[0]));
		res[0].kind = VMRES_RES_ADDR;
		snprintf(res[0].pool, sizeof(res[0].pool), "%s", MMIO_POOL);
		res[0].u.addr.space = VMRES_SPACE_MMIO;
		res[0].u.addr.base = VMM_LAPIC_BASE;
		res[0].u.addr.size = VMM_LAPIC_SIZE;
		m->lapic_window.vm = &m->vm;
		m->lapic_window.stat.name = "lapic";
		vmm_lapic_window_device(&m->lapic_window, &dev);
		dev.owner = OWNER_LAPIC;
		if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, res, 1, &id) < 0)
			return -1;
	}
	return 0;
}

static int setup_memory(struct vmm_machine *m, const struct vmm_machine_opts *opts)
{
	struct vmm_bootinfo *boot;
	void *ram;

	if (vmm_guest_image_size > VMM_GUEST_RAM_SIZE - VMM_GUEST_LOAD_ADDR) {
		fprintf(stderr, "vmres-demo: guest image too large\n");
		return -1;
	}
	ram = mmap(NULL, VMM_GUEST_RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED) {
		perror("vmres-demo: guest memory");
		return -1;
	}
	m->vm.ram = ram;
	m->vm.ram_size = VMM_GUEST_RAM_SIZE;
	m->vm.entry = VMM_GUEST_LOAD_ADDR;
	memcpy(m->vm.ram + VMM_GUEST_LOAD_ADDR, vmm_guest_image, vmm_guest_image_size);
	boot = (struct vmm_bootinfo *)(m->vm.ram + VMM_BOOTINFO_ADDR);
	boot->magic = VMM_BOOTINFO_MAGIC;
	boot->mode = opts->mode;
	boot->bench_n = opts->bench_n;
	boot->mmio_window_base = PCI_HOLE_BASE;
	boot->mmio_window_last = PCI_HOLE_LAST;
	boot->nr_cpus = opts->nr_vcpus;
	boot->ecam_base = ECAM_BASE;
	return 0;
}

int vmm_machine_new(const struct vmm_machine_opts *opts, struct vmm_machine **out)
{
	struct vmm_machine *m = calloc(1, sizeof(*m));
	struct vmm_bootinfo *boot;
	int rc;

	if (!m)
		return -1;
	m->vm.backend = opts->backend;
	if (opts->nr_vcpus < 1 || opts->nr_vcpus > VMM_MAX_VCPUS) {
		fprintf(stderr, "vmres-demo: 1 to %d vCPUs\n", VMM_MAX_VCPUS);
		free(m);
		return -1;
	}
	m->vm.nr_vcpus = opts->nr_vcpus;
	m->vm.direct_port = -1;
	if (setup_memory(m, opts) < 0 || opts->backend->init(&m->vm) < 0)
		goto fail;
	rc = vmres_sysalloc_new_x86_64(&m->sa);
	if (rc == 0)
		rc = vmres_devmgr_new(m->sa, &m->dm);
	if (rc != 0) {
		vmm_fail("system allocator / device manager", rc);
		goto fail;
	}
	m->vm.devmgr = m->dm;
	if (setup_irq(m) < 0 || setup_devices(m) < 0)
		goto fail;
	boot = (struct vmm_bootinfo *)(m->vm.ram + VMM_BOOTINFO_ADDR);
	boot->ctl_port = m->ctl_port;
	boot->bench_port = m->ctl_port + VMM_CTL_SINK;
	if (opts->direct)
		m->vm.direct_port = m->ctl_port + VMM_CTL_SINK;
	*out = m;
	return 0;
fail:
	vmm_machine_free(m);
	return -1;
}

void vmm_machine_free(struct vmm_machine *m)
{
	if (!m)
		return;
	/* The notify thread (it fires MSI-X vectors), the BAR-tied resources,
	 * the devices (no vCPU runs any more), then what they used. */
	vmm_testdev_stop(m->testdev);
	vmres_kvmres_free(m->kvmres);
	vmres_devmgr_free(m->dm);
	vmres_irq_mgr_free(m->irq); /* with the test device's groups */
	vmres_pci_ecam_free(m->ecam);
	vmres_pci_host_free(m->pci);
	vmres_pci_func_free(m->bridge);
	vmm_testdev_free(m->testdev);
	vmm_ctl_free(m->ctl);
	vmm_uart_free(m->uart);
	vmres_sysalloc_free(m->sa);
	vmm_release_vm(&m->vm);
	free(m);
}

int vmm_machine_run(struct vmm_machine *m)
{
	int rc = m->vm.backend->run(&m->vm);

	vmm_uart_flush(m->uart);
	return rc;
}

struct vmm *vmm_machine_vm(struct vmm_machine *m)
{
	return &m->vm;
}

uint64_t vmm_machine_bench_sum(struct vmm_machine *m)
{
	return m->vm.direct_port >= 0 ? m->vm.direct_sum : vmm_ctl_sink_sum(m->ctl);
}

struct dump_ctx {
	char **text;
};

/* Only the pools a guest's devices draw from; the other pools hold just the
 * preset's reservations. */
static int dump_pools(void *ctx, struct vmres_sysalloc *sa)
{
	struct dump_ctx *d = ctx;

	return vmres_sysalloc_dump_str(sa, d->text);
}

static bool shown_pool(const char *line)
{
	return !strncmp(line, "pool pio:", 9) || !strncmp(line, "pool mmio32:", 12) ||
	       !strncmp(line, "pool gsi-msi:", 13);
}

char *vmm_machine_map(struct vmm_machine *m)
{
	char *tree = NULL, *pools = NULL, *kvmres = NULL, *out = NULL, *line, *save;
	struct dump_ctx d = {&pools};
	size_t len = 0;
	FILE *f;
	bool show = false;

	if (vmres_devmgr_dump_str(m->dm, &tree) != 0 ||
	    vmres_devmgr_with_sysalloc(m->dm, dump_pools, &d) != 0 ||
	    vmres_kvmres_dump_str(m->kvmres, &kvmres) != 0)
		goto out;
	f = open_memstream(&out, &len);
	if (!f)
		goto out;
	fputs(tree, f);
	for (line = strtok_r(pools, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "pool ", 5))
			show = shown_pool(line);
		if (show)
			fprintf(f, "%s\n", line);
	}
	fprintf(f, "kvmres (%s): BAR-tied notify regions and memory\n",
		m->vm.backend == &vmm_backend_kvm
			? "KVM ioeventfds and memory slots"
			: "notify regions served by the bus, memory by uc_mem_map_ptr");
	for (line = strtok_r(kvmres, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(f, "  %s\n", line);
	if (fclose(f) != 0) {
		free(out);
		out = NULL;
	}
out:
	free(tree);
	free(pools);
	free(kvmres);
	return out;
}

void vmm_machine_print_exits(struct vmm_machine *m, FILE *f)
{
	struct vmm_devstat *devs[] = {
		vmm_uart_stat(m->uart), vmm_ctl_stat(m->ctl),	      &m->conf1.stat,
		&m->ecam_dev.stat,	vmm_testdev_stat(m->testdev), &m->lapic_window.stat,
	};

	vmm_print_exits(&m->vm, devs, sizeof(devs) / sizeof(devs[0]), f);
}

/* Unicorn: BAR3's buffer must be in every vCPU's engine at @base, and the
 * vCPU that moved it (0) must have applied its own changes right away. */
static bool check_unicorn_mapping(struct vmm_machine *m, uint64_t base, FILE *f)
{
	struct vmm_unicorn_mem_stats st[VMM_MAX_VCPUS];
	unsigned int n = m->vm.nr_vcpus, mapped = 0;

	for (unsigned int cpu = 0; cpu < n; cpu++) {
		if (vmm_unicorn_mem_stats(&m->vm, cpu, base, &st[cpu]) < 0)
			return false;
		mapped += st[cpu].mapped;
	}
	fprintf(f, "  BAR3 is mapped by uc_mem_map_ptr on %u of %u vCPUs at 0x%08" PRIx64 "\n",
		mapped, n, base);
	for (unsigned int cpu = 0; cpu < n; cpu++)
		fprintf(f,
			"    vcpu %u applied the mappings %" PRIu64
			" times in its own BAR writes, %" PRIu64 " at a block start, %" PRIu64
			" before a run\n",
			cpu, st[cpu].own, st[cpu].at_block, st[cpu].at_start);
	return mapped == n && st[0].own > 0;
}

int vmm_machine_check_testdev(struct vmm_machine *m, FILE *f)
{
	struct vmres_pci_func *fn = vmm_testdev_func(m->testdev);
	struct vmres_pci_bar_state bar2, bar3;
	struct vmm_testdev_counts c;
	struct vmres_kvmres_info info;
	char *dump = NULL, want[96];
	bool kvm = m->vm.backend == &vmm_backend_kvm, ok = true, followed;
	uint32_t kicks = 0;

	vmm_testdev_counts(m->testdev, &c);
	if (vmres_pci_func_bar_get(fn, 2, &bar2) != 0 ||
	    vmres_pci_func_bar_get(fn, 3, &bar3) != 0 ||
	    vmres_kvmres_get_info(m->kvmres, &info) != 0 ||
	    vmres_kvmres_dump_str(m->kvmres, &dump) != 0)
		return vmm_fail("reading the test device's state", VMRES_ENOMEM);
	/* the record of BAR2's notify regions is where the BAR is now */
	snprintf(want, sizeof(want), "dev %" PRIu32 " res %u mmio 0x%" PRIx64 " size 0x%x mapped\n",
		 m->testdev_id, VMM_TESTDEV_RES_BAR2, bar2.mapped_base, VMM_TESTDEV_MSIX_BAR_SIZE);
	followed = bar2.mapped && strstr(dump, want);
	free(dump);
	fprintf(f, "=== test device, VMM side ===\n");
	for (unsigned int q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++) {
		fprintf(f, "  notify queue %u: %" PRIu32 " kicks (guest made %u where BAR2 was)\n",
			q, c.kicks[q], VMM_GUEST_KICKS_PER_QUEUE);
		ok &= c.kicks[q] == VMM_GUEST_KICKS_PER_QUEUE;
		kicks += c.kicks[q];
	}
	fprintf(f, "  kicks %s; %" PRIu32 " reached the device's handler\n",
		kvm ? "by KVM ioeventfd: no exit to the VMM"
		    : "by MMIO exit, vmres's bus signalled the eventfd",
		c.notify_leaks);
	fprintf(f, "  MSI-X vectors fired in answer: %" PRIu32 "\n", c.answered);
	fprintf(f, "  notify regions %s BAR2 to 0x%08" PRIx64 "\n",
		followed ? "followed" : "did NOT follow", bar2.mapped_base);
	fprintf(f, "  BAR3 at 0x%08" PRIx64 ": %s; host buffer +0x%x holds 0x%08" PRIx32 "%s\n",
		bar3.mapped_base,
		!m->shm_slot ? "no memory backend, served by the device"
		: kvm	     ? "a memory slot (the guest's accesses do not exit)"
			     : "mapped by uc_mem_map_ptr (the guest's accesses do not exit)",
		VMM_TESTDEV_SHM_GUEST, c.shm_note,
		c.shm_note == VMM_TESTDEV_SHM_NOTE ? " (the guest's note)" : "");
	if (m->shm_slot && !kvm)
		ok &= check_unicorn_mapping(m, bar3.mapped_base, f);
	fprintf(f, "  BAR3 accesses that reached the device (before the move, after):");
	for (unsigned int cpu = 0; cpu < m->vm.nr_vcpus; cpu++)
		fprintf(f, "%s vcpu %u %" PRIu32 ", %" PRIu32, cpu ? ";" : "", cpu,
			c.shm_served[cpu][0], c.shm_served[cpu][1]);
	fprintf(f, "\n");
	/* vCPU 0 runs the scenario: it moved BAR3 and applied the move itself */
	if (m->shm_slot) {
		fprintf(f,
			"  BAR3 accesses reaching the device after the move: %" PRIu32
			" from vcpu 0, which moved it\n",
			c.shm_served[0][1]);
		ok &= c.shm_served[0][1] == 0;
	}
	ok &= c.answered == kicks && !c.notify_leaks && followed && info.regions == 2 &&
	      info.memory == (m->shm_slot ? 1u : 0u) && c.shm_note == VMM_TESTDEV_SHM_NOTE;
	fprintf(f, "vmres-demo: test device counters %s\n", ok ? "agree with the guest" : "WRONG");
	fflush(f);
	return ok ? 0 : -1;
}
