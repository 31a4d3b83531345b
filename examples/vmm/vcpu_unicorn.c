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
};

struct uc_vm {
	struct uc_vcpu vcpu[VMM_MAX_VCPUS];
};

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
	struct uc_vcpu *c = user;
	uint8_t data[8] = {0};
	uint64_t value;

	(void)uc;
	vmm_exit_mmio(c->vm, c->index, c->vm->ram_size + offset, data, size, false);
	memcpy(&value, data, sizeof(value));
	return value;
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
	struct uc_vcpu *c = user;
	uint8_t data[8];

	(void)uc;
	memcpy(data, &value, sizeof(data));
	vmm_exit_mmio(c->vm, c->index, c->vm->ram_size + offset, data, size, true);
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
	err = uc_mmio_map(c->uc, vm->ram_size, (size_t)(top - vm->ram_size), mmio_read, c,
			  mmio_write, c);
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
	while (!atomic_load_explicit(&vm->stop, memory_order_acquire)) {
		if (check_interrupts(c) < 0)
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
	free(u);
	vm->backend_priv = NULL;
}

const struct vmm_backend vmm_backend_unicorn = {
	.name = "unicorn",
	.probe = uc_probe,
	.init = uc_init,
	.run = uc_run,
	.kick = uc_kick,
	.fini = uc_fini,
};
