/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Firmware mode (firmware.h): SeaBIOS as the guest. The machine is a small PC,
 * every device registered through vmres's device manager with resources from the
 * x86_64 preset; SeaBIOS runs from the reset vector until it has finished its PCI
 * initialisation (or a time limit), then its log is parsed and every BAR it says
 * it mapped is looked up in vmres.
 *
 * Shadow RAM: a PC starts with the BIOS visible (read-only) below 1 MiB and
 * SeaBIOS makes that area RAM through the i440FX PAM registers, then copies
 * itself there from the high flash. Here 0xe0000-0xfffff is RAM from the start,
 * holding the image's last 128 KiB: SeaBIOS's copy writes the same bytes again,
 * so the PAM registers (plain bytes of vmres's host bridge) need no effect, and
 * the later "read-only" setting is not enforced.
 *
 * No fw_cfg (ports 0x510/0x511 miss and read all ones): SeaBIOS then takes the
 * memory size from CMOS and the CPU count from CMOS 0x5f. No keyboard controller,
 * DMA or port 0x92: their accesses miss (SeaBIOS times out on the keyboard and
 * goes on). What SeaBIOS needs after its PCI set-up is a timer: it times its
 * waits with the PIT's counter 0 (the software CPU reports no TSC) and counts
 * IRQ 0 ticks for the boot menu's timeout. Under KVM the kernel's PIC and PIT
 * (vcpu_kvm.c) do it; on the software CPU fwdev.c's PIT counters and PICs, with
 * IRQ 0 delivered in real mode by the Unicorn backend. With --until=boot SeaBIOS
 * thus reaches its boot phase ("Booting from Floppy...") on both.
 *
 * The check (fw_check()): for every "PCI: map device" line of the log, the BAR
 * register and the PCI helper's state, the device manager's bus (first and last
 * byte), its device table and the system allocator's reservation (owner, base,
 * size, and the pool whose window holds the address) must all say the same;
 * every BAR of our devices must be reported, and nothing of theirs be mapped that
 * SeaBIOS did not report. --collide reserves, before a second run, the range a
 * first run saw SeaBIOS choose for one BAR of a device that decodes from the
 * start: SeaBIOS's move of it must be refused (VMRES_EOVERLAP) and the BAR keep
 * its old address, mapped there; that one disagreement is then the expected one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmres/devmgr.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "check.h"
#include "devices.h"
#include "firmware.h"
#include "setup.h"

#define EXIT_SKIP 77

#define FW_RAM_SIZE    (64u << 20)
#define FW_LOW_BIOS    0xe0000u
#define FW_LOW_SIZE    0x20000u
#define DEBUGCON_PORT  0x402u
#define RTC_PORT       0x70u
#define RTC_PORTS      2u
#define PIT_PORT       0x40u
#define PIT_PORTS      4u
#define PORT_B	       0x61u   /* timer 2 gate and output */
#define FW_VENDOR      0x1af4u /* Red Hat's virtio range, device ids that none use */
#define FW_MAX_DEVICES (VMRES_PCI_HOST_SLOTS - 1)
#define NO_RES	       UINT32_MAX

/* What SeaBIOS prints when its PCI initialisation is over (pci_setup()'s last
 * line without a VGA device), and when it reaches the boot phase (--until=boot:
 * the first is then not a stop mark). */
static const char *const stop_marks[] = {
	"PCI: No VGA devices found",
	"No bootable device",
	"Booting from",
};
#define FIRST_BOOT_MARK 1u

enum {
	OWNER_DEBUGCON = 1,
	OWNER_CMOS,
	OWNER_PCI_HOST,
	OWNER_COLLIDER,
	OWNER_PIT,
	OWNER_PIC,
	OWNER_PCI_BASE = 0x100, /* + device index */
};

/* ---- the device set ------------------------------------------------------------ */

struct fw_bar {
	enum vmres_pci_bar_kind kind;
	bool prefetchable;
	uint64_t size;
};

struct fw_spec {
	const char *name;
	uint16_t device_id;
	uint16_t command; /* at reset; non-zero: decoding at vmres's addresses already */
	struct fw_bar bars[VMRES_PCI_NUM_BARS];
};

/*
 * The default set: a 32-bit MMIO BAR, a 64-bit prefetchable one, an I/O BAR, and
 * a device with BARs of every kind and size that is already decoding when
 * SeaBIOS starts (as after a warm reboot): its BAR writes are moves of mapped
 * ranges, where the others' are recorded and mapped when SeaBIOS turns decoding on.
 */
static const struct fw_spec default_set[] = {
	{"mem32", 0x10f0, 0, {{VMRES_PCI_BAR_MEM32, false, 0x1000}}},
	{"mem64pref", 0x10f1, 0, {{VMRES_PCI_BAR_MEM64, true, 0x100000}}},
	{"io", 0x10f2, 0, {{VMRES_PCI_BAR_IO, false, 0x100}}},
	{"multi",
	 0x10f3,
	 VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_IO,
	 {{VMRES_PCI_BAR_MEM32, false, 0x10000},
	  {VMRES_PCI_BAR_IO, false, 0x40},
	  {VMRES_PCI_BAR_MEM64, false, 0x4000},
	  {VMRES_PCI_BAR_NONE, false, 0},
	  {VMRES_PCI_BAR_MEM32, true, 0x200000},
	  {VMRES_PCI_BAR_IO, false, 0x8}}},
};
#define SET_SIZE (sizeof(default_set) / sizeof(default_set[0]))
/* --collide: this device of the first copy, this BAR (decoding from the start). */
#define COLLIDE_DEV 3u
#define COLLIDE_BAR 0u

struct fw_pci {
	char name[24];
	unsigned int slot;
	const struct fw_spec *spec;
	struct vmm_pcistub *stub;
	uint32_t instance;
	uint64_t owner;
	uint32_t bar_res[VMRES_PCI_NUM_BARS]; /* resource index, or NO_RES */
	uint64_t initial[VMRES_PCI_NUM_BARS]; /* the register after binding */
};

struct fw_machine {
	struct vmm vm;
	uint8_t *rom;
	size_t rom_map;
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *dm;
	struct vmres_pci_host *pci;
	struct vmres_pci_func *bridge;
	struct vmm_debugcon *con;
	struct vmm_cmos *cmos;
	struct vmm_pit *pit; /* software CPU only */
	struct vmm_pic *pic; /* software CPU only */
	struct vmm_conf1 conf1;
	struct fw_pci dev[FW_MAX_DEVICES];
	unsigned int ndev;
	const char *stopped_by; /* the stop mark seen, or NULL */
	bool until_boot;	/* only the boot marks stop the run */
	/* --collide: the range reserved in the way of SeaBIOS's choice */
	bool collide;
	uint64_t collide_base, collide_size;
};

static const char *bar_kind_name(const struct fw_bar *b)
{
	if (b->kind == VMRES_PCI_BAR_IO)
		return "io";
	return b->prefetchable ? "prefmem" : "mem";
}

/* ---- building the machine -------------------------------------------------------- */

static int load_bios(struct fw_machine *m, const char *path)
{
	struct stat st;
	ssize_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "vmres-demo: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size < FW_LOW_SIZE || st.st_size > (16 << 20) ||
	    st.st_size % 0x10000) {
		fprintf(stderr,
			"vmres-demo: %s: not a BIOS image (128 KiB to 16 MiB, 64 KiB "
			"multiple)\n",
			path);
		close(fd);
		return -1;
	}
	m->rom_map = (size_t)st.st_size;
	m->rom = mmap(NULL, m->rom_map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->rom == MAP_FAILED) {
		m->rom = NULL;
		close(fd);
		return -1;
	}
	while ((size_t)got < m->rom_map) {
		ssize_t n = read(fd, m->rom + got, m->rom_map - (size_t)got);

		if (n <= 0) {
			fprintf(stderr, "vmres-demo: %s: short read\n", path);
			close(fd);
			return -1;
		}
		got += n;
	}
	close(fd);
	m->vm.rom = m->rom;
	m->vm.rom_size = m->rom_map;
	m->vm.reset_vector = true;
	m->vm.pit = true;
	return 0;
}

static int setup_memory(struct fw_machine *m)
{
	void *ram = mmap(NULL, FW_RAM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (ram == MAP_FAILED) {
		perror("vmres-demo: guest memory");
		return -1;
	}
	m->vm.ram = ram;
	m->vm.ram_size = FW_RAM_SIZE;
	/* the PC's alias of the image's last 128 KiB below 1 MiB (see the top) */
	memcpy(m->vm.ram + FW_LOW_BIOS, m->rom + m->rom_map - FW_LOW_SIZE, FW_LOW_SIZE);
	return 0;
}

/* An exact port range; a platform reservation of exactly that range (the
 * preset's "rtc") is taken over by the device that implements it. */
static int claim_ports(struct fw_machine *m, uint64_t base, uint64_t size, uint64_t owner,
		       const char *owner_name, struct vmres_resource *out)
{
	struct vmres_request q;

	if (vmm_exact_pio_request(m->sa, "pio", base, size, &q) < 0)
		return -1;
	return vmm_alloc(m->sa, &q, 1, owner, owner_name, NULL, out);
}

static void on_line(void *ctx, const char *line)
{
	struct fw_machine *m = ctx;

	for (size_t i = m->until_boot ? FIRST_BOOT_MARK : 0;
	     i < sizeof(stop_marks) / sizeof(stop_marks[0]); i++) {
		if (!m->stopped_by && strstr(line, stop_marks[i])) {
			m->stopped_by = stop_marks[i];
			vmm_request_stop(&m->vm);
		}
	}
}

static int setup_platform(struct fw_machine *m, uint32_t *host_id)
{
	struct vmres_device dev;
	struct vmres_resource res;
	uint32_t id;

	if (vmm_debugcon_new(false, on_line, m, &m->con) < 0 ||
	    claim_ports(m, DEBUGCON_PORT, 1, OWNER_DEBUGCON, "debugcon", &res) < 0)
		return -1;
	vmm_debugcon_device(m->con, &dev);
	dev.owner = OWNER_DEBUGCON;
	if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, &id) < 0)
		return -1;

	if (vmm_cmos_new(FW_RAM_SIZE, 0, m->vm.nr_vcpus, &m->cmos) < 0 ||
	    claim_ports(m, RTC_PORT, RTC_PORTS, OWNER_CMOS, "cmos", &res) < 0)
		return -1;
	vmm_cmos_device(m->cmos, &dev);
	dev.owner = OWNER_CMOS;
	if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, &id) < 0)
		return -1;

	if (m->vm.backend != &vmm_backend_kvm) { /* KVM: the kernel's PIT and PICs */
		struct vmres_resource pit[2];

		if (vmm_pit_new(&m->pit) < 0 ||
		    claim_ports(m, PIT_PORT, PIT_PORTS, OWNER_PIT, "pit", &pit[0]) < 0 ||
		    claim_ports(m, PORT_B, 1, OWNER_PIT, "pit", &pit[1]) < 0)
			return -1;
		vmm_pit_device(m->pit, &dev);
		dev.owner = OWNER_PIT;
		if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, pit, 2, &id) < 0)
			return -1;
		if (vmm_pic_new(m->pit, &m->pic) < 0 ||
		    claim_ports(m, 0x20, 2, OWNER_PIC, "pic", &pit[0]) < 0 ||
		    claim_ports(m, 0xa0, 2, OWNER_PIC, "pic", &pit[1]) < 0)
			return -1;
		vmm_pic_device(m->pic, &dev);
		dev.owner = OWNER_PIC;
		if (vmm_register_device(m->dm, &dev, VMRES_DEVMGR_NO_PARENT, pit, 2, &id) < 0)
			return -1;
		m->vm.legacy_pending = vmm_pic_pending;
		m->vm.legacy_ack = vmm_pic_ack;
		m->vm.legacy_ctx = m->pic;
	}

	return vmm_add_pci_host(m->dm, m->sa, OWNER_PCI_HOST, &m->conf1, &m->pci, &m->bridge,
				host_id);
}

/* One stub function at @slot: its BARs' resources from the preset's pools. */
static int add_pci_device(struct fw_machine *m, const struct fw_spec *spec, unsigned int copy,
			  unsigned int slot, uint32_t host_id)
{
	struct fw_pci *d = &m->dev[m->ndev];
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_request q[VMRES_PCI_NUM_BARS];
	struct vmres_resource res[VMRES_PCI_NUM_BARS];
	struct vmres_device dev;
	unsigned int n = 0;
	int rc;

	snprintf(d->name, sizeof(d->name), "%s.%u", spec->name, copy);
	d->slot = slot;
	d->spec = spec;
	d->owner = OWNER_PCI_BASE + m->ndev;
	cfg.vendor_id = FW_VENDOR;
	cfg.device_id = spec->device_id;
	cfg.class_code = 0xff0000; /* "does not fit any class" */
	cfg.command = spec->command;
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct fw_bar *b = &spec->bars[i];

		d->bar_res[i] = NO_RES;
		if (b->kind == VMRES_PCI_BAR_NONE)
			continue;
		/* Low in each pool: SeaBIOS places BARs from the top of its windows. */
		if (b->kind == VMRES_PCI_BAR_IO)
			q[n] = vmm_addr_request("pio", VMRES_SPACE_PIO, b->size, b->size, 0x1000,
						0xbfff);
		else if (b->kind == VMRES_PCI_BAR_MEM64)
			q[n] = vmm_addr_request("mmio64", VMRES_SPACE_MMIO, b->size, b->size, 0,
						UINT64_MAX);
		else
			q[n] = vmm_addr_request("mmio32", VMRES_SPACE_MMIO, b->size, b->size, 0,
						UINT64_MAX);
		cfg.bars[i].kind = b->kind;
		cfg.bars[i].prefetchable = b->prefetchable;
		cfg.bars[i].size = b->size;
		cfg.bars[i].res_index = n;
		d->bar_res[i] = n++;
	}
	if (vmm_alloc(m->sa, q, n, d->owner, d->name, NULL, res) < 0)
		return -1;
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++)
		if (d->bar_res[i] != NO_RES)
			cfg.bars[i].addr = res[d->bar_res[i]].u.addr.base;
	if (vmm_pcistub_new(d->name, &cfg, &d->stub) < 0)
		return vmm_fail(d->name, VMRES_EINVAL);
	m->ndev++; /* freed with the machine from now on */
	vmm_pcistub_device(d->stub, &dev);
	dev.owner = d->owner;
	if (vmm_register_device(m->dm, &dev, host_id, res, n, &d->instance) < 0)
		return -1;
	rc = vmres_pci_func_bind(vmm_pcistub_func(d->stub), m->dm, d->instance);
	if (rc == 0)
		rc = vmres_pci_host_attach(m->pci, slot, 0, vmm_pcistub_func(d->stub));
	if (rc != 0)
		return vmm_fail(d->name, rc);
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		struct vmres_pci_bar_state st;

		if (d->bar_res[i] != NO_RES &&
		    vmres_pci_func_bar_get(vmm_pcistub_func(d->stub), i, &st) == 0)
			d->initial[i] = st.reg_addr;
	}
	return 0;
}

/* --collide: hold [base, +size) in mmio32 under an owner of its own. */
static int reserve_collider(struct fw_machine *m, uint64_t base, uint64_t size)
{
	struct vmres_request q =
		vmm_addr_request("mmio32", VMRES_SPACE_MMIO, size, 0, 0, UINT64_MAX);
	struct vmres_resource res;

	q.u.addr.req.policy = VMRES_ADDR_EXACT;
	q.u.addr.req.addr = base;
	if (vmm_alloc(m->sa, &q, 1, OWNER_COLLIDER, "collider", NULL, &res) < 0)
		return -1;
	m->collide = true;
	m->collide_base = base;
	m->collide_size = size;
	return 0;
}

static void fw_free(struct fw_machine *m)
{
	if (!m)
		return;
	vmres_devmgr_free(m->dm);
	vmres_pci_host_free(m->pci);
	vmres_pci_func_free(m->bridge);
	for (unsigned int i = 0; i < m->ndev; i++)
		vmm_pcistub_free(m->dev[i].stub);
	vmm_debugcon_free(m->con);
	vmm_cmos_free(m->cmos);
	vmm_pic_free(m->pic);
	vmm_pit_free(m->pit);
	vmres_sysalloc_free(m->sa);
	vmm_release_vm(&m->vm);
	if (m->rom)
		munmap(m->rom, m->rom_map);
	free(m);
}

static int fw_new(const struct vmm_fw_opts *opts, uint64_t collide_base, struct fw_machine **out)
{
	struct fw_machine *m = calloc(1, sizeof(*m));
	unsigned int slots;
	uint32_t host_id;
	int rc;

	if (!m)
		return -1;
	m->vm.backend = opts->backend;
	m->until_boot = opts->until_boot;
	m->vm.nr_vcpus = 1;
	m->vm.direct_port = -1;
	if (load_bios(m, opts->bios) < 0 || setup_memory(m) < 0 || opts->backend->init(&m->vm) < 0)
		goto fail;
	rc = vmres_sysalloc_new_x86_64(&m->sa);
	if (rc == 0)
		rc = vmres_devmgr_new(m->sa, &m->dm);
	if (rc != 0) {
		vmm_fail("system allocator / device manager", rc);
		goto fail;
	}
	m->vm.devmgr = m->dm;
	if (setup_platform(m, &host_id) < 0)
		goto fail;
	slots = opts->copies * SET_SIZE;
	if (slots > FW_MAX_DEVICES)
		slots = FW_MAX_DEVICES;
	for (unsigned int i = 0; i < slots; i++)
		if (add_pci_device(m, &default_set[i % SET_SIZE], i / SET_SIZE, i + 1, host_id) < 0)
			goto fail;
	if (collide_base &&
	    reserve_collider(m, collide_base, default_set[COLLIDE_DEV].bars[COLLIDE_BAR].size) < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	fw_free(m);
	return -1;
}

/* ---- running ------------------------------------------------------------------ */

/* ---- can this KVM run real mode? ---------------------------------------------------- */

/*
 * Not every KVM can run a PC's reset state (PVM-based nested KVM has been seen
 * to fail a 32-bit iret). Before SeaBIOS, a 4 KiB ROM of this code runs on
 * its own VM; the firmware run is skipped if it does not get to the end:
 *
 *     f000: cli; xor ax,ax; mov ss,ax; mov sp,0x7000
 *     f008: pushf; push cs; push 0xf00e; iret          ; 16-bit iret
 *     f00e: pushfd; push dword 0xf000; push dword 0xf01e; iretd  ; 32-bit iret
 *     f01e: mov dx,0x404; mov eax,0x600df00d; out dx,eax
 *     f029: hlt; jmp f029
 *     fff0: jmp f000                                   ; the reset vector
 *
 * The first iret reloads CS, so from f00e on the code runs from the copy at
 * 0xff000, as SeaBIOS runs from its copy below 1 MiB.
 */
static const uint8_t probe_code[] = {
	0xfa, 0x31, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x9c, 0x0e, 0x68, 0x0e, 0xf0, 0xcf, 0x66,
	0x9c, 0x66, 0x68, 0x00, 0xf0, 0x00, 0x00, 0x66, 0x68, 0x1e, 0xf0, 0x00, 0x00, 0x66, 0xcf,
	0xba, 0x04, 0x04, 0x66, 0xb8, 0x0d, 0xf0, 0x0d, 0x60, 0x66, 0xef, 0xf4, 0xeb, 0xfd,
};
static const uint8_t probe_reset[] = {0xe9, 0x0d, 0xf0}; /* at 0xff0: jmp 0xf000 */
#define PROBE_ROM_SIZE 0x1000u
#define PROBE_RAM_SIZE 0x100000u
#define PROBE_PORT     0x404u
#define PROBE_MAGIC    0x600df00du
#define PROBE_SECONDS  5.0

struct probe {
	struct vmm *vm;
	bool done;
};

static void probe_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			unsigned int size, uint64_t value)
{
	struct probe *p = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	p->done = size == 4 && value == PROBE_MAGIC;
	vmm_request_stop(p->vm);
}

/* 0 if @be ran the probe to its end; else -1 and why in @why. */
static int probe_real_mode(const struct vmm_backend *be, char *why, size_t len)
{
	struct vmm *vm = calloc(1, sizeof(*vm));
	struct probe p = {.vm = vm};
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource res;
	uint8_t *rom = MAP_FAILED;
	uint32_t id;
	bool timed_out;
	int rc = -1;

	snprintf(why, len, "could not set up the probe");
	if (!vm)
		return -1;
	vm->backend = be;
	vm->nr_vcpus = 1;
	vm->direct_port = -1;
	vm->reset_vector = true;
	rom = mmap(NULL, PROBE_ROM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	vm->ram = mmap(NULL, PROBE_RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (rom == MAP_FAILED || vm->ram == MAP_FAILED)
		goto out;
	memcpy(rom, probe_code, sizeof(probe_code));
	memcpy(rom + 0xff0, probe_reset, sizeof(probe_reset));
	memcpy(vm->ram + PROBE_RAM_SIZE - PROBE_ROM_SIZE, rom, PROBE_ROM_SIZE);
	vm->ram_size = PROBE_RAM_SIZE;
	vm->rom = rom;
	vm->rom_size = PROBE_ROM_SIZE;
	memset(&res, 0, sizeof(res));
	res.kind = VMRES_RES_ADDR;
	res.u.addr.space = VMRES_SPACE_PIO;
	res.u.addr.base = PROBE_PORT;
	res.u.addr.size = 4;
	dev.name = "probe";
	dev.opaque = &p;
	dev.write = probe_write;
	if (vmres_devmgr_new(NULL, &vm->devmgr) != 0 ||
	    vmres_devmgr_register(vm->devmgr, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, &id) != 0 ||
	    be->init(vm) < 0)
		goto out;
	timed_out = vmm_run_until(vm, PROBE_SECONDS) != VMM_RUN_ENDED;
	if (p.done && !vm->failed)
		rc = 0;
	else if (vm->failed)
		snprintf(why, len, "a real-mode probe (16- and 32-bit iret) failed: %s",
			 vm->failure);
	else
		snprintf(why, len, "a real-mode probe (16- and 32-bit iret) did not finish%s",
			 timed_out ? " in time" : "");
out:
	be->fini(vm);
	vmres_devmgr_free(vm->devmgr);
	if (vm->ram && vm->ram != MAP_FAILED)
		munmap(vm->ram, PROBE_RAM_SIZE);
	if (rom != MAP_FAILED)
		munmap(rom, PROBE_ROM_SIZE);
	free(vm);
	return rc;
}

/* ---- what SeaBIOS says ------------------------------------------------------------ */

/* "PCI: map device bdf=00:03.0  bar 0, addr febff000, size 00001000 [mem]" */
struct fw_mapped {
	unsigned int bus, slot, fn, bar;
	uint64_t addr, size;
	char type[16];
	bool matched;
};

static size_t parse_log(const char *log, struct fw_mapped *out, size_t cap)
{
	static const char mark[] = "PCI: map device bdf=";
	size_t n = 0;

	for (const char *p = strstr(log, mark); p && n < cap; p = strstr(p + 1, mark)) {
		struct fw_mapped e = {0};

		if (sscanf(p + sizeof(mark) - 1,
			   "%x:%x.%x bar %u, addr %" SCNx64 ", size %" SCNx64 " [%15[a-z]]", &e.bus,
			   &e.slot, &e.fn, &e.bar, &e.addr, &e.size, e.type) == 7)
			out[n++] = e;
	}
	return n;
}

/* ---- the check ---------------------------------------------------------------- */

struct check {
	struct fw_machine *m;
	struct vmm_check c;
	/* --collide: what became of the BAR SeaBIOS was not given */
	bool collide_seen, collide_refused;
};

/* The vmres side of one BAR SeaBIOS says it mapped at @e->addr. */
static void check_mapped_bar(struct check *c, const struct fw_pci *d, unsigned int bar,
			     const struct fw_mapped *e)
{
	const struct fw_bar *b = &d->spec->bars[bar];
	struct vmm_bar_ref ref = {
		.name = d->name,
		.func = vmm_pcistub_func(d->stub),
		.bar = bar,
		.instance = d->instance,
		.res_index = d->bar_res[bar],
		.owner = d->owner,
		.space = b->kind == VMRES_PCI_BAR_IO ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO,
	};
	char pool[VMRES_POOL_NAME_MAX];
	unsigned int before = c->c.disagreements;

	if (strcmp(e->type, bar_kind_name(b)))
		vmm_disagree(&c->c, "%s bar %u: SeaBIOS says [%s], the device has a %s BAR",
			     d->name, bar, e->type, bar_kind_name(b));
	if (e->size != b->size)
		vmm_disagree(&c->c,
			     "%s bar %u: SeaBIOS says size 0x%" PRIx64
			     ", the BAR decodes 0x%" PRIx64,
			     d->name, bar, e->size, b->size);
	vmm_check_bar(&c->c, c->m->dm, &ref, e->addr, b->size, pool);
	if (c->c.disagreements == before) {
		c->c.agreed++;
		printf("  ok  %02x.0 %-12s bar %u %-7s 0x%08" PRIx64 " +0x%-7" PRIx64
		       " bus, device table, register, pool %s\n",
		       d->slot, d->name, bar, e->type, e->addr, b->size, pool);
	}
}

/* --collide: SeaBIOS chose the collider's range for this BAR; vmres must have
 * refused the move and left the BAR where it was. */
static void check_collided_bar(struct check *c, const struct fw_pci *d, unsigned int bar,
			       const struct fw_mapped *e)
{
	struct vmres_pci_bar_state st;
	struct vmm_pool_lookup l;
	uint32_t inst = 0;

	c->collide_seen = true;
	printf("  EXPECTED DISAGREEMENT: %02x.0 %s bar %u: SeaBIOS mapped it at 0x%" PRIx64
	       ", where vmres holds the collider\n",
	       d->slot, d->name, bar, e->addr);
	vmm_lookup_pool(c->m->dm, VMRES_SPACE_MMIO, e->addr, &l);
	if (vmres_pci_func_bar_get(vmm_pcistub_func(d->stub), bar, &st) != 0)
		return;
	printf("      vmres: move refused %" PRIu64 " time(s), last error %s; register 0x%" PRIx64
	       ", range %s at 0x%" PRIx64 " (initial 0x%" PRIx64 ")\n",
	       st.refused, st.last_error ? vmres_errname(st.last_error) : "none", st.reg_addr,
	       st.mapped ? "mapped" : "unmapped", st.mapped_base, d->initial[bar]);
	c->collide_refused =
		st.refused > 0 && st.last_error == VMRES_EOVERLAP &&
		st.reg_addr == d->initial[bar] && st.mapped && st.mapped_base == d->initial[bar] &&
		vmres_devmgr_find(c->m->dm, VMRES_SPACE_MMIO, d->initial[bar], &inst, NULL, NULL) ==
			0 &&
		inst == d->instance &&
		vmres_devmgr_find(c->m->dm, VMRES_SPACE_MMIO, e->addr, &inst, NULL, NULL) ==
			VMRES_ENOENT &&
		l.find_rc == 0 && l.info.owner == OWNER_COLLIDER;
}

/* Nothing of device @d is mapped that SeaBIOS did not report. */
static void check_nothing_else(struct check *c, const struct fw_pci *d,
			       const bool reported[VMRES_PCI_NUM_BARS])
{
	struct vmres_resource res[VMRES_PCI_NUM_BARS];
	bool mapped[VMRES_PCI_NUM_BARS];
	struct vmres_devmgr_info info;

	if (vmres_devmgr_get(c->m->dm, d->instance, &info, res, mapped, VMRES_PCI_NUM_BARS) != 0) {
		vmm_disagree(&c->c, "%s: not in the device table", d->name);
		return;
	}
	for (unsigned int bar = 0; bar < VMRES_PCI_NUM_BARS; bar++) {
		uint32_t r = d->bar_res[bar];

		if (r == NO_RES || reported[bar] || r >= info.n_res || !mapped[r])
			continue;
		vmm_disagree(&c->c, "%s bar %u: mapped at 0x%" PRIx64 " but SeaBIOS did not map it",
			 d->name, bar, res[r].u.addr.base);
	}
}

static int fw_check(struct fw_machine *m, const struct fw_mapped *maps, size_t n)
{
	struct check c = {.m = m};
	bool reported[FW_MAX_DEVICES][VMRES_PCI_NUM_BARS];
	struct fw_mapped *seen = calloc(n ? n : 1, sizeof(*seen));

	if (!seen)
		return 1;
	memcpy(seen, maps, n * sizeof(*seen));
	memset(reported, 0, sizeof(reported));
	printf("=== check: the BARs SeaBIOS mapped, as vmres has them ===\n");
	for (unsigned int i = 0; i < m->ndev; i++) {
		struct fw_pci *d = &m->dev[i];

		for (size_t k = 0; k < n; k++) {
			struct fw_mapped *e = &seen[k];

			if (e->bus || e->fn || e->slot != d->slot)
				continue;
			e->matched = true;
			if (e->bar >= VMRES_PCI_NUM_BARS || d->bar_res[e->bar] == NO_RES) {
				vmm_disagree(
					&c.c,
					"%s: SeaBIOS mapped bar %u, which the device does not have",
					d->name, e->bar);
				continue;
			}
			if (reported[i][e->bar])
				vmm_disagree(&c.c, "%s bar %u: SeaBIOS mapped it twice", d->name, e->bar);
			reported[i][e->bar] = true;
			if (m->collide && e->addr < m->collide_base + m->collide_size &&
			    m->collide_base < e->addr + e->size)
				check_collided_bar(&c, d, e->bar, e);
			else
				check_mapped_bar(&c, d, e->bar, e);
		}
		for (unsigned int bar = 0; bar < VMRES_PCI_NUM_BARS; bar++)
			if (d->bar_res[bar] != NO_RES && !reported[i][bar])
				vmm_disagree(&c.c, "%s bar %u: SeaBIOS did not map it", d->name, bar);
		check_nothing_else(&c, d, reported[i]);
	}
	for (size_t k = 0; k < n; k++)
		if (!seen[k].matched)
			vmm_disagree(&c.c,
				 "SeaBIOS mapped %02x:%02x.%x bar %u, which is no device of ours",
				 seen[k].bus, seen[k].slot, seen[k].fn, seen[k].bar);
	free(seen);
	printf("  %u BARs agree, %u disagreement(s)\n", c.c.agreed, c.c.disagreements);
	if (m->collide) {
		if (!c.collide_seen) {
			printf("  DISAGREE: SeaBIOS never chose the collider's range\n");
			return 1;
		}
		if (!c.collide_refused) {
			printf("  DISAGREE: the collided BAR was not refused and kept\n");
			return 1;
		}
		printf("  collision: vmres refused the move; the device kept its BAR\n");
	}
	return c.c.disagreements ? 1 : 0;
}

/* ---- output ------------------------------------------------------------------- */

static int dump_pools(void *ctx, struct vmres_sysalloc *sa)
{
	return vmres_sysalloc_dump_str(sa, ctx);
}

static void print_indented(const char *text, const char *prefix)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		printf("%s%.*s\n", prefix, len, p);
		p += len + (nl != NULL);
	}
}

static void print_map(struct fw_machine *m)
{
	char *tree = NULL, *pools = NULL, *line, *save;
	bool show = false;

	printf("=== vmres: device tree ===\n");
	if (vmres_devmgr_dump_str(m->dm, &tree) == 0)
		print_indented(tree, "  ");
	printf("=== vmres: resource map (the pools devices draw from) ===\n");
	if (vmres_devmgr_with_sysalloc(m->dm, dump_pools, &pools) == 0) {
		for (line = strtok_r(pools, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(line, "pool ", 5))
				show = !strncmp(line, "pool pio:", 9) ||
				       !strncmp(line, "pool mmio32:", 12) ||
				       !strncmp(line, "pool mmio64:", 12);
			if (show)
				printf("  %s\n", line);
		}
	}
	free(tree);
	free(pools);
}

static void print_exits(struct fw_machine *m)
{
	struct vmres_devmgr_stats st = {0};
	const struct vmm_vcpu_stats *s = &m->vm.stats[0];

	vmres_devmgr_stats(m->dm, &st);
	printf("=== exits (%s) ===\n", m->vm.backend->name);
	printf("  pio %" PRIu64 " reads, %" PRIu64 " writes; mmio %" PRIu64 " reads, %" PRIu64
	       " writes\n",
	       s->exits[VMM_EXIT_PIO_READ], s->exits[VMM_EXIT_PIO_WRITE],
	       s->exits[VMM_EXIT_MMIO_READ], s->exits[VMM_EXIT_MMIO_WRITE]);
	printf("  debugcon %" PRIu64 "/%" PRIu64 ", cmos %" PRIu64 "/%" PRIu64 ", pci-host %" PRIu64
	       "/%" PRIu64 " (reads/writes)\n",
	       vmm_debugcon_stat(m->con)->reads, vmm_debugcon_stat(m->con)->writes,
	       vmm_cmos_stat(m->cmos)->reads, vmm_cmos_stat(m->cmos)->writes, m->conf1.stat.reads,
	       m->conf1.stat.writes);
	if (m->pit)
		printf("  pit %" PRIu64 "/%" PRIu64 ", pic %" PRIu64 "/%" PRIu64
		       " (reads/writes), %" PRIu64 " interrupts delivered\n",
		       vmm_pit_stat(m->pit)->reads, vmm_pit_stat(m->pit)->writes,
		       vmm_pic_stat(m->pic)->reads, vmm_pic_stat(m->pic)->writes,
		       s->exits[VMM_EXIT_IRQ_INJECT]);
	printf("  no device: pio %" PRIu64 "/%" PRIu64 ", mmio %" PRIu64 "/%" PRIu64
	       " (reads as all ones / dropped)\n",
	       st.pio_miss_reads, st.pio_miss_writes, st.mmio_miss_reads, st.mmio_miss_writes);
}

/* ---- the whole run ---------------------------------------------------------------- */

#define MAX_MAPPED 256

/* Run once; with @quiet, only to learn where SeaBIOS puts the collide BAR. */
static int fw_once(const struct vmm_fw_opts *opts, uint64_t collide_base, bool quiet,
		   uint64_t *learned)
{
	struct fw_machine *m;
	struct fw_mapped *maps;
	const char *log;
	size_t n;
	bool timed_out;
	int rc;

	if (fw_new(opts, collide_base, &m) < 0)
		return 1;
	maps = calloc(MAX_MAPPED, sizeof(*maps));
	if (!maps) {
		fw_free(m);
		return 1;
	}
	if (!quiet) {
		printf("vmres-demo: SeaBIOS (%s, %zu KiB) on %s, %u PCI devices%s\n", opts->bios,
		       m->rom_map >> 10, opts->backend->name, m->ndev,
		       m->collide ? ", one BAR's range held by a collider" : "");
		if (m->collide)
			printf("vmres-demo: collider: mmio32 [0x%" PRIx64 ", +0x%" PRIx64
			       ") reserved before SeaBIOS runs\n",
			       m->collide_base, m->collide_size);
		fflush(stdout);
	}
	timed_out = vmm_run_until(&m->vm, opts->timeout_s) != VMM_RUN_ENDED;
	log = vmm_debugcon_log(m->con);
	n = parse_log(log, maps, MAX_MAPPED);
	if (!quiet) {
		printf("=== SeaBIOS log (debugcon, port 0x%x) ===\n", DEBUGCON_PORT);
		print_indented(log, "  | ");
		if (m->stopped_by)
			printf("=== SeaBIOS done: stopped as planned at \"%s\" (%s) ===\n",
			       m->stopped_by,
			       strcmp(m->stopped_by, stop_marks[0]) == 0
				       ? "its PCI set-up is over; this machine has no VGA device"
				       : "it reached the boot phase");
		else
			printf("=== SeaBIOS stopped early: %s ===\n", m->vm.failed ? m->vm.failure
								      : timed_out
									      ? "time limit"
									      : "the vCPU stopped");
	}
	if (quiet) {
		rc = 1;
		for (size_t k = 0; k < n; k++)
			if (maps[k].slot == COLLIDE_DEV + 1 && maps[k].bar == COLLIDE_BAR) {
				*learned = maps[k].addr;
				rc = 0;
			}
		if (rc)
			printf("vmres-demo: SeaBIOS did not map %s bar %u\n",
			       default_set[COLLIDE_DEV].name, COLLIDE_BAR);
	} else {
		print_map(m);
		print_exits(m);
		if (!m->stopped_by)
			printf("vmres-demo: SeaBIOS did not reach %s (%s)\n",
			       m->until_boot ? "its boot phase"
					     : "the end of its PCI initialisation",
			       m->vm.failed ? m->vm.failure : "time limit");
		rc = fw_check(m, maps, n);
		if (!m->stopped_by)
			rc = 1;
		printf("vmres-demo: SeaBIOS and vmres %s on %s\n", rc ? "DISAGREE" : "agree",
		       opts->backend->name);
	}
	free(maps);
	fw_free(m);
	return rc;
}

int vmm_fw_main(const struct vmm_fw_opts *opts)
{
	uint64_t collide_base = 0;
	int rc;

	char why[256];

	if (access(opts->bios, R_OK) != 0) {
		printf("vmres-demo: skipped: %s: %s (Debian package seabios)\n", opts->bios,
		       strerror(errno));
		return EXIT_SKIP;
	}
	if (opts->backend == &vmm_backend_kvm &&
	    probe_real_mode(opts->backend, why, sizeof(why)) < 0) {
		/* Not a vmres matter: this host's KVM cannot run a PC's reset state.
		 * (The software CPU is not probed: there, SeaBIOS must run.) */
		printf("vmres-demo: skipped: the %s backend cannot run SeaBIOS here: %s\n",
		       opts->backend->name, why);
		return EXIT_SKIP;
	}
	if (opts->collide) {
		/* SeaBIOS's placement depends only on the device set: learn it first. */
		printf("vmres-demo: --collide: a first run learns where SeaBIOS puts %s.0 bar %u\n",
		       default_set[COLLIDE_DEV].name, COLLIDE_BAR);
		rc = fw_once(opts, 0, true, &collide_base);
		if (rc)
			return rc;
	}
	return fw_once(opts, collide_base, false, NULL);
}
