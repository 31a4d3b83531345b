/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The software-CPU backend, on the Unicorn engine: one Unicorn instance per vCPU
 * thread, each mapping the same guest RAM (uc_mem_map_ptr) and the rest of the
 * 4 GiB physical space as one MMIO region whose callbacks, like the IN/OUT
 * instruction hooks, hand every access to vmm_exit_mmio() / vmm_exit_pio():
 * exactly the accesses that would be VM exits under KVM, decoded by vmres.
 *
 * Interrupts: a software local APIC per vCPU (lapic.c) collects MSIs. Between two
 * runs of the engine, if the guest has IF=1 and the APIC has a deliverable
 * vector, the loop delivers it as the CPU would through a 32-bit interrupt or
 * trap gate of the guest's IDT: push EFLAGS, CS, EIP, clear IF (interrupt gate),
 * continue at the gate's offset.
 *
 * Kicks: a kick (an MSI for this vCPU, the end of the run) only raises the
 * vCPU's "attention" flag; a block hook, run by the engine at the start of every
 * translation block, stops the engine when the flag is up and there is something
 * to do (the run is over, or a vector is deliverable and IF=1). A real CPU
 * likewise takes interrupts between instructions, never inside one. uc_emu_stop()
 * is never called from a device callback: inside an MMIO callback Unicorn would
 * stop *before* the instruction that made the access and execute it again (the
 * device would see the access twice), and from another thread the stop could
 * land inside such a callback. The hook costs one load per block while nothing
 * is pending, in both runs of the guest-pio benchmark; kicks are never lost and
 * runs need no timeout.
 *
 * Firmware mode (vm->rom, vm->reset_vector): the engine is opened in 16-bit mode
 * and starts in real mode at F000:FFF0. Unicorn loads CS in real mode with base
 * 0xF0000 (a real CPU has base 0xFFFF0000 until the first far jump), so the first
 * fetch is at 0xFFFF0 instead of 0xFFFFFFF0: the machine maps the same bytes
 * there, as a PC's chipset aliases the BIOS. The ROM at the top of the 4 GiB is
 * memory the engine executes from; Unicorn cannot drop a store to mapped memory
 * (a write-protection hook that "handles" it lets the store through), so a store
 * there is counted and the image restored from vm->rom at the start of the next
 * translation block. In 16-bit mode Unicorn's uc_emu_start() takes CS.selector * 16
 * + EIP as the start (it subtracts selector * 16 to get EIP), also once the guest
 * runs in protected mode: the loop passes exactly that, so the guest resumes at
 * its EIP whatever its mode. In real mode an "int n" (Unicorn hands it to the
 * interrupt hook instead of executing it) is delivered through the vector table
 * at 0 as the CPU would, and so is the PIC's interrupt (vm->legacy_pending) when
 * vCPU 0 has IF=1 between two runs of the engine: firmware waits for it with
 * "sti; hlt", and Unicorn ends a run at every hlt.
 *
 * Memory behind a BAR (vmm_unicorn_mem_map(), vmres_kvmres's backend here):
 * each engine may only be changed from its own thread, so a request (made by
 * whichever thread moves the BAR, under vmres's writer lock) only updates a
 * small shared table and its generation, under a mutex; each vCPU applies the
 * table to its own engine at safe points: before uc_emu_start(), at the start
 * of its next translation block (the request raises every vCPU's attention),
 * and right away when the requesting thread is that vCPU in a port hook (the
 * guest's own BAR write through conf1). Not inside an MMIO callback: the
 * region being dispatched could be the one unmapped and freed.
 *
 * Unicorn hands an MMIO callback the offset into its region, and when a part
 * of a region is unmapped it splits the region and renumbers the offsets of
 * the upper part (a read at 0x30000 of a region at 0x10000 with a page carved
 * out at 0x20000 came back as offset 0xf000, not 0x20000). So nothing relies
 * on that: each vCPU keeps the list of MMIO regions it mapped, each with its
 * own base address as user data, and the callbacks add it. Memory [a, b)
 * inside region [s, e): unmap [s, e) whole (no split), map [s, a) and [b, e)
 * as regions of their own, and [a, b) with uc_mem_map_ptr(); memory removed:
 * unmap it and map the hole as MMIO again, merged with its neighbours.
 *
 *     before    |---------------- MMIO [s, e) ----------------|
 *     after     |-- MMIO [s, a) --|== memory ==|-- MMIO [b, e) --|
 *
 * Unicorn 2.0 flushes the TLB page by page when it unmaps a region, about
 * 110 ms for the 3 GiB above the demo's RAM (measured: each of the demo's
 * BAR3 changes cost each vCPU that much). So no region crosses a multiple of
 * 256 MiB (UC_MMIO_GRAIN): the space starts as one region per 256 MiB, a
 * change unmaps at most the region around the BAR, and merging stops there.
 *
 * Until a vCPU has applied a change, its accesses at the new place reach the
 * MMIO callback and vmres's bus, where the device serves the same buffer: a
 * lazily applied mapping is still correct. Its accesses at the old place see
 * the buffer instead of nothing until it applies (within the translation
 * block it is in): the requester does not wait, as it holds vmres's writer
 * lock that the other vCPU's dispatch may be waiting for. Read-only memory
 * stays MMIO (the device serves reads, writes reach it, as under KVM).
 * Unmapping a region costs Unicorn 2.0 a TLB flush per 4 KiB page of it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>

#include "lapic.h"
#include "vmm.h"

#define EFLAGS_TF (1u << 8)
#define EFLAGS_IF (1u << 9)
#define EFLAGS_NT (1u << 14)
#define EFLAGS_RF (1u << 16)

#define GATE_PRESENT 0x80u
#define GATE_INTR32  0xeu
#define GATE_TRAP32  0xfu

/* Bounds of the memory mappings: BAR-backed memory is a handful of BARs. */
#define UC_MEM_MAPS 8
#define UC_PAGE	    0x1000ull
/* No MMIO region crosses a multiple of this: see the top of the file. */
#define UC_MMIO_GRAIN (256ull << 20)
/* The grains of the 4 GiB, and one more region for each memory mapping. */
#define UC_MMIO_REGIONS ((0x100000000ull / UC_MMIO_GRAIN) + UC_MEM_MAPS + 2)

/* One mapping of host memory: the shared table's entries and each vCPU's own. */
struct uc_mem {
	uint64_t gpa;
	uint64_t size;
	void *host;
	bool readonly;
};

/* An MMIO region one engine has: the callbacks' user data, so that they know
 * the base whatever Unicorn does with offsets. */
struct uc_mmio_region {
	struct uc_vcpu *vcpu;
	uint64_t base;
	uint64_t end; /* exclusive */
	bool used;
};

struct uc_vcpu {
	struct vmm *vm;
	unsigned int index;
	uc_engine *uc;
	int exception;	       /* vector of a CPU exception the engine raised, else -1 */
	atomic_bool attention; /* raised by kicks, looked at by hook_block() */
	uint8_t *rom;	       /* firmware mode: the engine's copy of vm->rom */
	bool rom_dirty;	       /* the guest stored into it */
	uint64_t rom_writes;
	pthread_t thread;
	bool started;
	/* Only this vCPU's thread touches these (and anyone once it stopped). */
	struct uc_mmio_region mmio[UC_MMIO_REGIONS];
	struct uc_mem mem[UC_MEM_MAPS]; /* memory this engine has mapped */
	unsigned int nr_mem;
	uint64_t mem_gen;     /* generation of the table applied */
	unsigned int in_mmio; /* inside an MMIO callback: do not remap now */
	struct vmm_unicorn_mem_stats mem_stats;
};

struct uc_vm {
	struct uc_vcpu vcpu[VMM_MAX_VCPUS];
	/* The memory mappings wanted: written by requests, read by every vCPU. */
	pthread_mutex_t mem_lock;
	struct uc_mem table[UC_MEM_MAPS];
	unsigned int nr_table;
	_Atomic uint64_t mem_gen; /* bumped under mem_lock at each change */
	uint64_t mmio_top;	  /* the MMIO space is [ram_size, mmio_top) */
};

/* The vCPU the calling thread runs, NULL on other threads. */
static _Thread_local struct uc_vcpu *uc_self;

static int uc_probe(char *why, size_t len)
{
	if (!uc_arch_supported(UC_ARCH_X86)) {
		snprintf(why, len, "this Unicorn build has no x86 support");
		return -1;
	}
	return 0;
}

static void hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user)
{
	struct uc_vcpu *c = user;
	uint8_t data[4];

	(void)uc;
	memcpy(data, &value, sizeof(data)); /* x86: little endian */
	vmm_exit_pio(c->vm, c->index, (uint16_t)port, data, (uint8_t)size, 1, true);
}

static uint32_t hook_in(uc_engine *uc, uint32_t port, int size, void *user)
{
	struct uc_vcpu *c = user;
	uint8_t data[4] = {0};
	uint32_t value;

	(void)uc;
	vmm_exit_pio(c->vm, c->index, (uint16_t)port, data, (uint8_t)size, 1, false);
	memcpy(&value, data, sizeof(value));
	return value;
}

static uint64_t mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
	struct uc_mmio_region *r = user;
	struct uc_vcpu *c = r->vcpu;
	uint8_t data[8] = {0};
	uint64_t value;

	(void)uc;
	c->in_mmio++;
	vmm_exit_mmio(c->vm, c->index, r->base + offset, data, size, false);
	c->in_mmio--;
	memcpy(&value, data, sizeof(value));
	return value;
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
	struct uc_mmio_region *r = user;
	struct uc_vcpu *c = r->vcpu;
	uint8_t data[8];

	(void)uc;
	memcpy(data, &value, sizeof(data));
	c->in_mmio++;
	vmm_exit_mmio(c->vm, c->index, r->base + offset, data, size, true);
	c->in_mmio--;
}

/* Map [base, end) of this engine as an MMIO region of its own. */
static uc_err mmio_region_map(struct uc_vcpu *c, uint64_t base, uint64_t end)
{
	struct uc_mmio_region *r = NULL;
	uc_err err;

	for (unsigned int i = 0; i < UC_MMIO_REGIONS && !r; i++)
		if (!c->mmio[i].used)
			r = &c->mmio[i];
	if (!r)
		return UC_ERR_NOMEM;
	*r = (struct uc_mmio_region){.vcpu = c, .base = base, .end = end};
	err = uc_mmio_map(c->uc, base, (size_t)(end - base), mmio_read, r, mmio_write, r);
	r->used = err == UC_ERR_OK;
	return err;
}

/* Map [base, end) as MMIO, one region per UC_MMIO_GRAIN it touches. */
static uc_err mmio_map_range(struct uc_vcpu *c, uint64_t base, uint64_t end)
{
	uc_err err = UC_ERR_OK;

	while (base < end && !err) {
		uint64_t grain_end = (base / UC_MMIO_GRAIN + 1) * UC_MMIO_GRAIN;
		uint64_t to = grain_end < end ? grain_end : end;

		err = mmio_region_map(c, base, to);
		base = to;
	}
	return err;
}

/* Unmap a region whole (never a part: see the top of the file). */
static uc_err mmio_region_unmap(struct uc_vcpu *c, struct uc_mmio_region *r)
{
	uc_err err = uc_mem_unmap(c->uc, r->base, (size_t)(r->end - r->base));

	if (!err)
		r->used = false;
	return err;
}

/* Host memory at [a, b): the MMIO regions there give way, what is left of
 * them on either side is mapped again as regions of their own. */
static uc_err engine_map_memory(struct uc_vcpu *c, const struct uc_mem *m)
{
	uint64_t a = m->gpa, b = m->gpa + m->size, s = a, e = b, covered = 0;
	uc_err err = UC_ERR_OK;

	for (unsigned int i = 0; i < UC_MMIO_REGIONS; i++) {
		struct uc_mmio_region *r = &c->mmio[i];

		if (r->used && r->base < b && r->end > a)
			covered += (r->end < b ? r->end : b) - (r->base > a ? r->base : a);
	}
	if (covered != m->size)
		return UC_ERR_MAP; /* not all MMIO here: RAM, ROM or memory */
	for (unsigned int i = 0; i < UC_MMIO_REGIONS && !err; i++) {
		struct uc_mmio_region *r = &c->mmio[i];

		if (!r->used || r->base >= b || r->end <= a)
			continue;
		s = r->base < s ? r->base : s;
		e = r->end > e ? r->end : e;
		err = mmio_region_unmap(c, r);
	}
	if (!err && s < a)
		err = mmio_map_range(c, s, a);
	if (!err && b < e)
		err = mmio_map_range(c, b, e);
	if (!err)
		err = uc_mem_map_ptr(c->uc, a, (size_t)m->size, UC_PROT_ALL, m->host);
	return err;
}

/* Host memory at [a, b) goes: MMIO there again, with the regions that end at
 * a and begin at b where they are in the same grain. */
static uc_err engine_unmap_memory(struct uc_vcpu *c, const struct uc_mem *m)
{
	uint64_t a = m->gpa, b = m->gpa + m->size, s = a, e = b;
	uc_err err = uc_mem_unmap(c->uc, a, (size_t)m->size);

	for (unsigned int i = 0; i < UC_MMIO_REGIONS && !err; i++) {
		struct uc_mmio_region *r = &c->mmio[i];

		if (!r->used ||
		    !((r->end == a && a % UC_MMIO_GRAIN) || (r->base == b && b % UC_MMIO_GRAIN)))
			continue;
		s = r->base < s ? r->base : s;
		e = r->end > e ? r->end : e;
		err = mmio_region_unmap(c, r);
	}
	return err ? err : mmio_map_range(c, s, e);
}

static bool uc_mem_same(const struct uc_mem *x, const struct uc_mem *y)
{
	return x->gpa == y->gpa && x->size == y->size && x->host == y->host &&
	       x->readonly == y->readonly;
}

static bool uc_mem_in(const struct uc_mem *m, const struct uc_mem *set, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (uc_mem_same(m, &set[i]))
			return true;
	return false;
}

static int uc_fail(struct uc_vcpu *c, const char *what, uc_err err);

/*
 * Bring this engine in line with the shared table: what it has and the table
 * lacks goes first (a move's new place may overlap its old one), then what
 * is new. Read-only memory is left to the device (MMIO). Only from @c's own
 * thread, never inside an MMIO callback. @when counts where it happened.
 * 0, or -1 with the VM stopped (the engine is then half changed).
 */
static int apply_memory(struct uc_vcpu *c, uint64_t *when)
{
	struct uc_vm *u = c->vm->backend_priv;
	struct uc_mem want[UC_MEM_MAPS];
	unsigned int n = 0;
	uint64_t gen;
	uc_err err = UC_ERR_OK;

	if (atomic_load_explicit(&u->mem_gen, memory_order_acquire) == c->mem_gen)
		return 0;
	pthread_mutex_lock(&u->mem_lock);
	gen = atomic_load_explicit(&u->mem_gen, memory_order_relaxed);
	for (unsigned int i = 0; i < u->nr_table; i++)
		if (!u->table[i].readonly)
			want[n++] = u->table[i];
	pthread_mutex_unlock(&u->mem_lock);
	for (unsigned int i = 0; i < c->nr_mem && !err;) {
		if (uc_mem_in(&c->mem[i], want, n)) {
			i++;
			continue;
		}
		err = engine_unmap_memory(c, &c->mem[i]);
		if (!err)
			c->mem[i] = c->mem[--c->nr_mem];
	}
	for (unsigned int i = 0; i < n && !err; i++) {
		if (uc_mem_in(&want[i], c->mem, c->nr_mem))
			continue;
		err = engine_map_memory(c, &want[i]);
		if (!err)
			c->mem[c->nr_mem++] = want[i];
	}
	if (err)
		return uc_fail(c, "applying a memory mapping", err);
	c->mem_gen = gen;
	(*when)++;
	return 0;
}

/* A store into the ROM: let it land in the copy, undo it at the next block. */
static bool hook_rom_write(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
			   void *user)
{
	struct uc_vcpu *c = user;

	(void)uc;
	(void)type;
	(void)addr;
	(void)size;
	(void)value;
	c->rom_dirty = true;
	c->rom_writes++;
	c->vm->stats[c->index].exits[VMM_EXIT_MMIO_WRITE]++;
	return true;
}

/*
 * Real mode (firmware): an "int n" goes through the interrupt vector table, as
 * the CPU does: push FLAGS, CS, IP (Unicorn has already moved EIP past the
 * instruction), clear IF and TF, continue at the vector. 0 or -1.
 */
static int real_mode_int(struct uc_vcpu *c, uint32_t intno)
{
	uint32_t eip, cs, eflags, ss, esp, vec;
	uint16_t frame[3];
	uint64_t sp;
	uc_err err;

	err = uc_reg_read(c->uc, UC_X86_REG_EIP, &eip);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_EFLAGS, &eflags);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_SS, &ss);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_ESP, &esp);
	if (!err)
		err = uc_mem_read(c->uc, (uint64_t)intno * 4, &vec, sizeof(vec));
	if (err)
		return -1;
	frame[0] = (uint16_t)eip;
	frame[1] = (uint16_t)cs;
	frame[2] = (uint16_t)eflags;
	esp = (esp & ~0xffffu) | ((esp - sizeof(frame)) & 0xffffu);
	sp = ((uint64_t)(ss & 0xffff) << 4) + (esp & 0xffff);
	eflags &= ~(EFLAGS_IF | EFLAGS_TF);
	cs = vec >> 16;
	eip = vec & 0xffff;
	err = uc_mem_write(c->uc, sp, frame, sizeof(frame));
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_ESP, &esp);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EFLAGS, &eflags);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_CS, &cs);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EIP, &eip);
	return err ? -1 : 0;
}

/* A CPU exception (or int n): the guest is broken; stop and report. In real mode
 * (firmware), "int n" is the BIOS calling itself: deliver it. */
static void hook_intr(uc_engine *uc, uint32_t intno, void *user)
{
	struct uc_vcpu *c = user;
	uint64_t cr0 = 1;

	if (c->vm->reset_vector && uc_reg_read(uc, UC_X86_REG_CR0, &cr0) == UC_ERR_OK &&
	    !(cr0 & 1) && real_mode_int(c, intno) == 0)
		return;
	c->exception = (int)intno;
	uc_emu_stop(uc);
}

static bool guest_if(uc_engine *uc)
{
	uint32_t eflags = 0;

	uc_reg_read(uc, UC_X86_REG_EFLAGS, &eflags);
	return eflags & EFLAGS_IF;
}

/* Start of every translation block: one load unless a kick raised attention. */
static void hook_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
	struct uc_vcpu *c = user;

	(void)address;
	(void)size;
	if (c->rom_dirty) {
		memcpy(c->rom, c->vm->rom, c->vm->rom_size);
		c->rom_dirty = false;
	}
	if (!atomic_load_explicit(&c->attention, memory_order_acquire))
		return;
	/* Lower it before looking, so that a kick from now on raises it again. */
	atomic_store_explicit(&c->attention, false, memory_order_seq_cst);
	if (apply_memory(c, &c->mem_stats.at_block) < 0)
		return; /* stopped */
	if (atomic_load_explicit(&c->vm->stop, memory_order_acquire)) {
		uc_emu_stop(uc);
	} else if (vmm_lapic_pending(c->vm->lapic[c->index]) >= 0) {
		if (guest_if(uc))
			uc_emu_stop(uc);
		else /* keep looking until the guest sets IF */
			atomic_store_explicit(&c->attention, true, memory_order_relaxed);
	}
}

static int uc_fail(struct uc_vcpu *c, const char *what, uc_err err)
{
	uint32_t eip = 0;

	uc_reg_read(c->uc, UC_X86_REG_EIP, &eip);
	fprintf(stderr, "vmres-demo: unicorn: vcpu %u: %s%s%s at eip 0x%08x\n", c->index, what,
		err ? ": " : "", err ? uc_strerror(err) : "", eip);
	if (!c->vm->failed)
		snprintf(c->vm->failure, sizeof(c->vm->failure), "vcpu %u: %s%s%s at eip 0x%08x",
			 c->index, what, err ? ": " : "", err ? uc_strerror(err) : "", eip);
	c->vm->failed = true;
	vmm_request_stop(c->vm);
	return -1;
}

/* Firmware mode: the ROM at the top of the 4 GiB, real mode at the reset vector. */
static uc_err uc_init_firmware(struct vmm *vm, struct uc_vcpu *c)
{
	uint32_t cs = 0xf000, eip = 0xfff0;
	uc_hook h;
	uc_err err;

	c->rom = malloc(vm->rom_size);
	if (!c->rom)
		return UC_ERR_NOMEM;
	memcpy(c->rom, vm->rom, vm->rom_size);
	err = uc_mem_map_ptr(c->uc, 0x100000000ull - vm->rom_size, vm->rom_size,
			     UC_PROT_READ | UC_PROT_EXEC, c->rom);
	if (!err)
		err = uc_hook_add(c->uc, &h, UC_HOOK_MEM_WRITE_PROT, (void *)hook_rom_write, c, 1,
				  0);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_CS, &cs);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EIP, &eip);
	return err;
}

static int uc_init_vcpu(struct vmm *vm, struct uc_vcpu *c)
{
	uc_hook h;
	uint32_t eip = vm->entry, eflags = 0x2, esp = 0;
	uint64_t top = 0x100000000ull - (vm->rom ? vm->rom_size : 0);
	uc_err err;

	err = uc_open(UC_ARCH_X86, vm->reset_vector ? UC_MODE_16 : UC_MODE_32, &c->uc);
	if (err)
		goto fail;
	err = uc_mem_map_ptr(c->uc, 0, vm->ram_size, UC_PROT_ALL, vm->ram);
	if (err)
		goto fail;
	err = mmio_map_range(c, vm->ram_size, top);
	if (!err && vm->rom)
		err = uc_init_firmware(vm, c);
	if (err)
		goto fail;
	err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, (void *)hook_out, c, 1, 0, UC_X86_INS_OUT);
	if (!err)
		err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, (void *)hook_in, c, 1, 0, UC_X86_INS_IN);
	if (!err)
		err = uc_hook_add(c->uc, &h, UC_HOOK_INTR, (void *)hook_intr, c, 1, 0);
	if (!err)
		err = uc_hook_add(c->uc, &h, UC_HOOK_BLOCK, (void *)hook_block, c, 1, 0);
	if (err)
		goto fail;
	if (!vm->reset_vector)
		err = uc_reg_write(c->uc, UC_X86_REG_EIP, &eip);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EFLAGS, &eflags);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_ESP, &esp);
	if (err)
		goto fail;
	if (vmm_lapic_new(vm, c->index, &vm->lapic[c->index]) < 0)
		return -1;
	return 0;
fail:
	fprintf(stderr, "vmres-demo: unicorn: vcpu %u: %s\n", c->index, uc_strerror(err));
	return -1;
}

static int uc_init(struct vmm *vm)
{
	struct uc_vm *u = calloc(1, sizeof(*u));

	if (!u)
		return -1;
	pthread_mutex_init(&u->mem_lock, NULL);
	u->mmio_top = 0x100000000ull - (vm->rom ? vm->rom_size : 0);
	vm->backend_priv = u;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		u->vcpu[i].vm = vm;
		u->vcpu[i].index = i;
		u->vcpu[i].exception = -1;
		if (uc_init_vcpu(vm, &u->vcpu[i]) < 0)
			return -1;
	}
	return 0;
}

/* Deliver @vector through the guest's IDT, as the CPU would from ring 0. */
static int deliver(struct uc_vcpu *c, int vector)
{
	uc_x86_mmr idtr;
	uint8_t gate[8];
	uint32_t eip, cs, eflags, esp, frame[3], offset, selector;
	uc_err err;

	err = uc_reg_read(c->uc, UC_X86_REG_IDTR, &idtr);
	if (!err && (uint32_t)vector * 8 + 7 > idtr.limit)
		return uc_fail(c, "interrupt vector beyond the IDT", UC_ERR_OK);
	if (!err)
		err = uc_mem_read(c->uc, idtr.base + (uint64_t)vector * 8, gate, sizeof(gate));
	if (err)
		return uc_fail(c, "reading the IDT", err);
	if (!(gate[5] & GATE_PRESENT) ||
	    ((gate[5] & 0xf) != GATE_INTR32 && (gate[5] & 0xf) != GATE_TRAP32))
		return uc_fail(c, "interrupt gate not present or not 32-bit", UC_ERR_OK);
	offset = (uint32_t)gate[0] | (uint32_t)gate[1] << 8 | (uint32_t)gate[6] << 16 |
		 (uint32_t)gate[7] << 24;
	selector = (uint32_t)gate[2] | (uint32_t)gate[3] << 8;

	err = uc_reg_read(c->uc, UC_X86_REG_EIP, &eip);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_EFLAGS, &eflags);
	if (!err)
		err = uc_reg_read(c->uc, UC_X86_REG_ESP, &esp);
	if (err)
		return uc_fail(c, "reading the registers", err);
	frame[0] = eip;
	frame[1] = cs & 0xffff;
	frame[2] = eflags;
	esp -= sizeof(frame);
	if (!err)
		err = uc_mem_write(c->uc, esp, frame, sizeof(frame));
	if ((gate[5] & 0xf) == GATE_INTR32)
		eflags &= ~EFLAGS_IF;
	eflags &= ~(EFLAGS_TF | EFLAGS_NT | EFLAGS_RF);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_ESP, &esp);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EFLAGS, &eflags);
	if (!err && selector != (cs & 0xffff))
		err = uc_reg_write(c->uc, UC_X86_REG_CS, &selector);
	if (!err)
		err = uc_reg_write(c->uc, UC_X86_REG_EIP, &offset);
	if (err)
		return uc_fail(c, "delivering an interrupt", err);
	vmm_lapic_ack(c->vm->lapic[c->index], vector);
	c->vm->stats[c->index].exits[VMM_EXIT_IRQ_INJECT]++;
	return 0;
}

/* Firmware mode, vCPU 0 in real mode with IF=1: what the PIC has. */
static void check_legacy_interrupt(struct uc_vcpu *c)
{
	struct vmm *vm = c->vm;
	uint64_t cr0 = 1;
	int vector;

	if (!vm->legacy_pending || c->index != 0 || !guest_if(c->uc) ||
	    uc_reg_read(c->uc, UC_X86_REG_CR0, &cr0) != UC_ERR_OK || (cr0 & 1))
		return;
	vector = vm->legacy_pending(vm->legacy_ctx);
	if (vector < 0 || real_mode_int(c, (uint32_t)vector) < 0)
		return;
	vm->legacy_ack(vm->legacy_ctx, vector);
	vm->stats[c->index].exits[VMM_EXIT_IRQ_INJECT]++;
}

/* Between two runs: deliver what the APIC has, or have the block hook wait for
 * IF=1. */
static int check_interrupts(struct uc_vcpu *c)
{
	int vector;

	check_legacy_interrupt(c);
	vector = vmm_lapic_pending(c->vm->lapic[c->index]);

	if (vector < 0)
		return 0;
	if (guest_if(c->uc))
		return deliver(c, vector);
	atomic_store_explicit(&c->attention, true, memory_order_relaxed);
	return 0;
}

static void *uc_vcpu_thread(void *arg)
{
	struct uc_vcpu *c = arg;
	struct vmm *vm = c->vm;
	uint32_t eip, cs = 0;
	uc_err err;

	if (vmm_vcpu_thread_enter(vm, c->index) < 0)
		return NULL;
	uc_self = c;
	while (!atomic_load_explicit(&vm->stop, memory_order_acquire)) {
		if (apply_memory(c, &c->mem_stats.at_start) < 0 || check_interrupts(c) < 0)
			break;
		err = uc_reg_read(c->uc, UC_X86_REG_EIP, &eip);
		if (!err && vm->reset_vector) /* 16-bit mode: see the top of the file */
			err = uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
		if (!err)
			err = uc_emu_start(c->uc, (uint64_t)eip + (uint64_t)(cs & 0xffff) * 16, 0,
					   0, 0);
		if (err) {
			uc_fail(c, "emulation stopped", err);
			break;
		}
		if (c->exception >= 0) {
			char what[64];

			snprintf(what, sizeof(what), "guest CPU exception %d", c->exception);
			uc_fail(c, what, UC_ERR_OK);
			break;
		}
		vm->stats[c->index].exits[VMM_EXIT_OTHER]++;
	}
	uc_self = NULL;
	vmm_vcpu_thread_leave();
	return NULL;
}

static int uc_run(struct vmm *vm)
{
	struct uc_vm *u = vm->backend_priv;
	int rc = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (pthread_create(&u->vcpu[i].thread, NULL, uc_vcpu_thread, &u->vcpu[i]) != 0) {
			fprintf(stderr, "vmres-demo: unicorn: cannot start vcpu %u\n", i);
			vm->failed = true;
			vmm_request_stop(vm);
			rc = -1;
			break;
		}
		u->vcpu[i].started = true;
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (u->vcpu[i].started)
			pthread_join(u->vcpu[i].thread, NULL);
		u->vcpu[i].started = false;
	}
	return rc;
}

static void uc_kick(struct vmm *vm, unsigned int cpu)
{
	struct uc_vm *u = vm->backend_priv;

	if (u && cpu < vm->nr_vcpus)
		atomic_store_explicit(&u->vcpu[cpu].attention, true, memory_order_seq_cst);
}

static void uc_fini(struct vmm *vm)
{
	struct uc_vm *u = vm->backend_priv;

	if (!u)
		return;
	for (unsigned int i = 0; i < VMM_MAX_VCPUS; i++) {
		if (u->vcpu[i].uc)
			uc_close(u->vcpu[i].uc);
		free(u->vcpu[i].rom);
		vmm_lapic_free(vm->lapic[i]);
		vm->lapic[i] = NULL;
	}
	pthread_mutex_destroy(&u->mem_lock);
	free(u);
	vm->backend_priv = NULL;
}

/* After a change of the table: the calling vCPU applies it now if it safely
 * can, every vCPU (it too, otherwise) at its next translation block. */
static void mem_changed(struct vmm *vm)
{
	struct uc_vcpu *self = uc_self;

	if (self && self->vm == vm && !self->in_mmio)
		apply_memory(self, &self->mem_stats.own);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		uc_kick(vm, i);
}

static bool mem_valid(struct vmm *vm, uint64_t gpa, uint64_t size, void *host)
{
	struct uc_vm *u = vm->backend_priv;

	return host && size && gpa >= vm->ram_size && gpa <= u->mmio_top &&
	       size <= u->mmio_top - gpa;
}

int vmm_unicorn_mem_map(struct vmm *vm, uint64_t gpa, uint64_t size, void *host, bool readonly)
{
	struct uc_vm *u = vm->backend_priv;
	int rc = 0;

	if (!u || !mem_valid(vm, gpa, size, host))
		return VMRES_EINVAL;
	if ((gpa | size) & (UC_PAGE - 1))
		return VMRES_EMISALIGNED;
	pthread_mutex_lock(&u->mem_lock);
	for (unsigned int i = 0; i < u->nr_table && !rc; i++)
		if (gpa < u->table[i].gpa + u->table[i].size && u->table[i].gpa < gpa + size)
			rc = VMRES_EEXIST;
	if (!rc && u->nr_table == UC_MEM_MAPS)
		rc = VMRES_ENOSPC;
	if (!rc) {
		u->table[u->nr_table++] = (struct uc_mem){gpa, size, host, readonly};
		atomic_fetch_add_explicit(&u->mem_gen, 1, memory_order_release);
	}
	pthread_mutex_unlock(&u->mem_lock);
	if (!rc)
		mem_changed(vm);
	return rc;
}

int vmm_unicorn_mem_unmap(struct vmm *vm, uint64_t gpa, uint64_t size, void *host, bool readonly)
{
	struct uc_vm *u = vm->backend_priv;
	struct uc_mem m = {gpa, size, host, readonly};
	int rc = VMRES_ENOENT;

	if (!u)
		return VMRES_EINVAL;
	pthread_mutex_lock(&u->mem_lock);
	for (unsigned int i = 0; i < u->nr_table && rc; i++) {
		if (!uc_mem_same(&u->table[i], &m))
			continue;
		u->table[i] = u->table[--u->nr_table];
		atomic_fetch_add_explicit(&u->mem_gen, 1, memory_order_release);
		rc = 0;
	}
	pthread_mutex_unlock(&u->mem_lock);
	if (!rc)
		mem_changed(vm);
	return rc;
}

int vmm_unicorn_mem_stats(struct vmm *vm, unsigned int cpu, uint64_t gpa,
			  struct vmm_unicorn_mem_stats *out)
{
	struct uc_vm *u = vm->backend_priv;
	struct uc_vcpu *c;

	if (!u || vm->backend != &vmm_backend_unicorn || cpu >= vm->nr_vcpus)
		return -1;
	c = &u->vcpu[cpu];
	*out = c->mem_stats;
	out->mapped = false;
	for (unsigned int i = 0; i < c->nr_mem; i++)
		if (gpa >= c->mem[i].gpa && gpa - c->mem[i].gpa < c->mem[i].size)
			out->mapped = true;
	return 0;
}

const struct vmm_backend vmm_backend_unicorn = {
	.name = "unicorn",
	.probe = uc_probe,
	.init = uc_init,
	.run = uc_run,
	.kick = uc_kick,
	.fini = uc_fini,
};
