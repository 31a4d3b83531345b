/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVM interrupt backend against a real VM: what the ioctls actually do.
 * Each test creates a VM with an in-kernel irqchip and one vCPU, and reads the
 * effect of vmres's calls back from KVM: the vector pending in the local APIC
 * (KVM_GET_LAPIC's IRR), the IOAPIC's irr bits (KVM_GET_IRQCHIP), and, with a
 * few bytes of real-mode guest code, the EOI that makes a level line resample.
 *
 * Found on the nested (kvm-pvm) host this was written on: once the guest has
 * taken a level interrupt, the line is lowered and the resample fd signalled
 * even if the handler leaves out its EOI write. So the resample test checks
 * "after the guest handled the interrupt" against a control run with
 * interrupts disabled, not the EOI write by itself.
 *
 * Exits 77 (skipped) with the reason when /dev/kvm is missing or unusable.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm_probe.h"

#include <linux/kvm.h>

#include <vmres/irq.h>

#include "helpers.h"

#define GUEST_MEM  0x10000
#define CODE_ADDR  0x1000
#define ISR_ADDR   0x1100
#define LAPIC_BASE 0xfee00000u

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	struct vmres_irq_mgr *mgr;
};

static int vm_setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct kvm_lapic_state lapic;
	struct vmres_irq_backend *be;
	uint32_t svr;
	int mmap_size;

	assert_non_null(vm);
	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(vm->kvm >= 0);
	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	assert_true(vm->fd >= 0);
	assert_int_equal(ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0), 0);
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	assert_true(vm->vcpu >= 0);
	/* Software-enable the local APIC (SVR bit 8) so that it accepts interrupts. */
	assert_int_equal(ioctl(vm->vcpu, KVM_GET_LAPIC, &lapic), 0);
	memcpy(&svr, &lapic.regs[0xf0], 4);
	svr |= 0x100;
	memcpy(&lapic.regs[0xf0], &svr, 4);
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_LAPIC, &lapic), 0);
	mmap_size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	assert_true(mmap_size > 0);
	vm->run_size = (size_t)mmap_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	assert_true(vm->run != MAP_FAILED);
	assert_int_equal(vmres_irq_backend_kvm_new(vm->fd, NULL, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &vm->mgr), 0);
	*state = vm;
	return 0;
}

static int vm_teardown(void **state)
{
	struct vm *vm = *state;

	vmres_irq_mgr_free(vm->mgr);
	munmap(vm->run, vm->run_size);
	if (vm->mem)
		munmap(vm->mem, GUEST_MEM);
	close(vm->vcpu);
	close(vm->fd);
	close(vm->kvm);
	free(vm);
	return 0;
}

/* ---- reading KVM's state ----------------------------------------------- */

static bool lapic_irr(struct vm *vm, unsigned int vector)
{
	struct kvm_lapic_state lapic;
	uint32_t word;

	assert_int_equal(ioctl(vm->vcpu, KVM_GET_LAPIC, &lapic), 0);
	memcpy(&word, &lapic.regs[0x200 + (vector / 32) * 0x10], 4);
	return (word >> (vector % 32)) & 1;
}

static void lapic_clear_irr(struct vm *vm)
{
	struct kvm_lapic_state lapic;

	assert_int_equal(ioctl(vm->vcpu, KVM_GET_LAPIC, &lapic), 0);
	for (int i = 0; i < 8; i++)
		memset(&lapic.regs[0x200 + i * 0x10], 0, 4);
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_LAPIC, &lapic), 0);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Injection may complete on a kernel worker: poll for up to a second. */
static bool wait_irr(struct vm *vm, unsigned int vector)
{
	for (int i = 0; i < 1000; i++) {
		if (lapic_irr(vm, vector))
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Nothing arrives: give a stray injection 20 ms to show up. */
static bool stays_clear(struct vm *vm, unsigned int vector)
{
	sleep_ms(20);
	return !lapic_irr(vm, vector);
}

static uint32_t ioapic_irr(struct vm *vm)
{
	struct kvm_irqchip chip;

	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	assert_int_equal(ioctl(vm->fd, KVM_GET_IRQCHIP, &chip), 0);
	return chip.chip.ioapic.irr;
}

/* Program IOAPIC pin @pin: fixed delivery of @vector to APIC 0, unmasked. */
static void ioapic_route(struct vm *vm, unsigned int pin, unsigned int vector, bool level)
{
	struct kvm_irqchip chip;

	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	assert_int_equal(ioctl(vm->fd, KVM_GET_IRQCHIP, &chip), 0);
	chip.chip.ioapic.redirtbl[pin].bits = vector | (level ? 1ull << 15 : 0);
	assert_int_equal(ioctl(vm->fd, KVM_SET_IRQCHIP, &chip), 0);
}

/* Mask every PIC input, so that only the IOAPIC delivers legacy lines. */
static void pic_mask_all(struct vm *vm)
{
	for (unsigned int id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_PIC_SLAVE; id++) {
		struct kvm_irqchip chip;

		memset(&chip, 0, sizeof(chip));
		chip.chip_id = id;
		assert_int_equal(ioctl(vm->fd, KVM_GET_IRQCHIP, &chip), 0);
		chip.chip.pic.imr = 0xff;
		assert_int_equal(ioctl(vm->fd, KVM_SET_IRQCHIP, &chip), 0);
	}
}

static struct vmres_msi_msg msi_to(unsigned int vector)
{
	/* Physical destination APIC 0, fixed delivery, edge. */
	return (struct vmres_msi_msg){LAPIC_BASE, 0, vector};
}

static struct vmres_irq_src *one_source(struct vm *vm, struct vmres_resource r,
					struct vmres_irq_group **gout)
{
	struct vmres_irq_group *g;
	struct vmres_irq_src *s;

	assert_int_equal(vmres_irq_group_new(vm->mgr, &r, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s), 0);
	assert_int_equal(vmres_irq_src_enable(s), 0);
	if (gout)
		*gout = g;
	return s;
}

static struct vmres_resource msi_res(uint32_t gsi, unsigned int vector)
{
	struct vmres_resource r;

	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_MSI;
	r.u.msi.gsi = gsi;
	r.u.msi.msg = msi_to(vector);
	return r;
}

/* ---- MSI --------------------------------------------------------------- */

static void test_msi_trigger_makes_its_vector_pending_in_the_lapic(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *s = one_source(vm, msi_res(24, 0x41), NULL);

	assert_false(lapic_irr(vm, 0x41));
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(wait_irr(vm, 0x41));
}

static void test_masked_msi_is_held_until_unmask(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *s = one_source(vm, msi_res(24, 0x42), NULL);

	assert_int_equal(vmres_irq_src_mask(s), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(stays_clear(vm, 0x42));
	assert_int_equal(vmres_irq_src_unmask(s), 0);
	assert_true(wait_irr(vm, 0x42));
}

static void test_reroute_changes_which_vector_becomes_pending(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *s = one_source(vm, msi_res(25, 0x51), NULL);
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msi_to(0x52)};
	struct vmres_msi_msg m = msi_to(0x53);

	assert_int_equal(vmres_irq_src_configure(s, &c), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(wait_irr(vm, 0x52));
	assert_false(lapic_irr(vm, 0x51));
	/* The device manager's path: the notifier with the manager as context. */
	assert_int_equal(vmres_irq_mgr_msi_notify(vm->mgr, 1, 0, 25, &m), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(wait_irr(vm, 0x53));
}

static void test_pending_msi_arrives_with_the_new_vector_on_unmask(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *s = one_source(vm, msi_res(26, 0x61), NULL);
	struct vmres_msi_msg m = msi_to(0x62);

	assert_int_equal(vmres_irq_src_mask(s), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(vm->mgr, 1, 0, 26, &m), 0);
	assert_int_equal(vmres_irq_src_unmask(s), 0);
	assert_true(wait_irr(vm, 0x62));
	assert_false(lapic_irr(vm, 0x61));
}

static void test_batched_reroutes_apply_at_commit(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *s = one_source(vm, msi_res(27, 0x71), NULL);
	struct vmres_msi_msg m = msi_to(0x72);

	assert_int_equal(vmres_irq_mgr_begin_update(vm->mgr), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(vm->mgr, 1, 0, 27, &m), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(wait_irr(vm, 0x71)); /* the committed route is still in force */
	assert_int_equal(vmres_irq_mgr_commit(vm->mgr), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	assert_true(wait_irr(vm, 0x72));
}

static void test_freeing_a_group_deassigns_its_irqfd(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_group *g;
	struct vmres_irq_src *s = one_source(vm, msi_res(28, 0x81), &g);
	struct kvm_irqfd irqfd;
	uint64_t one = 1;
	int fd, copy;

	assert_int_equal(vmres_irq_src_get_fd(s, VMRES_IRQ_FD_TRIGGER, &fd), 0);
	copy = dup(fd);
	assert_true(copy >= 0);
	/* Through our copy of the eventfd the irqfd injects... */
	assert_int_equal(write(copy, &one, 8), 8);
	assert_true(wait_irr(vm, 0x81));
	lapic_clear_irr(vm);
	/* ...until the group is freed, although the eventfd lives on. */
	vmres_irq_group_free(g);
	assert_int_equal(write(copy, &one, 8), 8);
	assert_true(stays_clear(vm, 0x81));
	/* And KVM takes the same eventfd again: it is no longer bound. */
	memset(&irqfd, 0, sizeof(irqfd));
	irqfd.fd = (uint32_t)copy;
	irqfd.gsi = 28;
	assert_int_equal(ioctl(vm->fd, KVM_IRQFD, &irqfd), 0);
	irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	assert_int_equal(ioctl(vm->fd, KVM_IRQFD, &irqfd), 0);
	close(copy);
}

/* ---- legacy lines ------------------------------------------------------ */

static void test_legacy_line_reaches_the_ioapic_after_msi_routes_are_pushed(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *leg;
	struct kvm_irq_routing *only_msi;

	pic_mask_all(vm);
	ioapic_route(vm, 5, 0x91, false);
	/* The MSI group makes vmres replace KVM's whole table. */
	one_source(vm, msi_res(24, 0x41), NULL);
	leg = one_source(vm, test_irq_res(5), NULL);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	assert_true(wait_irr(vm, 0x91));
	/* Control: a table without the irqchip routes silences the line. */
	lapic_clear_irr(vm);
	only_msi = calloc(1, sizeof(*only_msi) + sizeof(only_msi->entries[0]));
	assert_non_null(only_msi);
	only_msi->nr = 1;
	only_msi->entries[0].gsi = 24;
	only_msi->entries[0].type = KVM_IRQ_ROUTING_MSI;
	only_msi->entries[0].u.msi.address_lo = LAPIC_BASE;
	only_msi->entries[0].u.msi.data = 0x41;
	assert_int_equal(ioctl(vm->fd, KVM_SET_GSI_ROUTING, only_msi), 0);
	free(only_msi);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	assert_true(stays_clear(vm, 0x91));
}

static void test_level_line_stays_raised_in_the_ioapic(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *leg = one_source(vm, test_irq_res(7), NULL);
	struct vmres_irq_config level = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
	struct pollfd p;
	int rfd;

	/* Edge: KVM pulses the line, so the IOAPIC keeps no irr bit. */
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	sleep_ms(20);
	assert_int_equal(ioapic_irr(vm) & (1u << 7), 0);
	/* Level: raised (the redirection entry is masked, so it waits there). */
	assert_int_equal(vmres_irq_src_configure(leg, &level), 0);
	assert_int_equal(vmres_irq_src_get_fd(leg, VMRES_IRQ_FD_RESAMPLE, &rfd), 0);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	for (int i = 0; i < 1000 && !(ioapic_irr(vm) & (1u << 7)); i++)
		sleep_ms(1);
	assert_int_not_equal(ioapic_irr(vm) & (1u << 7), 0);
	p.fd = rfd;
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 0), 0); /* no EOI yet */
}

/*
 * A guest that first reports with OUT 0x80 with interrupts still disabled, then
 * enables them, takes one interrupt, EOIs it and reports again.
 */
static void guest_load_eoi_handler(struct vm *vm, unsigned int vector)
{
	static const uint8_t code[] = {
		0xe6, 0x80, /* out 0x80, al */
		0xfb,	    /* sti */
		0xf4,	    /* hlt */
		0xeb, 0xfc, /* jmp sti */
	};
	static const uint8_t isr[] = {
		0x66, 0xc7, 0x06, 0xb0, 0x00, 0, 0, 0, 0, /* mov dword [ds:0xb0], 0: EOI */
		0xe6, 0x80,				  /* out 0x80, al */
		0xcf,					  /* iret */
	};
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint16_t ivt[2] = {ISR_ADDR, 0};

	vm->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(vm->mem != MAP_FAILED);
	memcpy(vm->mem + CODE_ADDR, code, sizeof(code));
	memcpy(vm->mem + ISR_ADDR, isr, sizeof(isr));
	memcpy(vm->mem + vector * 4, ivt, sizeof(ivt));
	memset(&region, 0, sizeof(region));
	region.memory_size = GUEST_MEM;
	region.userspace_addr = (uintptr_t)vm->mem;
	assert_int_equal(ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region), 0);
	assert_int_equal(ioctl(vm->vcpu, KVM_GET_SREGS, &sregs), 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	/* Real mode with DS based at the local APIC, so that 16-bit code reaches EOI. */
	sregs.ds.base = LAPIC_BASE;
	sregs.ds.selector = 0;
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_SREGS, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_ADDR;
	regs.rflags = 0x2;
	regs.rsp = 0x8000;
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_REGS, &regs), 0);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* KVM_RUN until the guest writes port 0x80 (an alarm bounds it); returns the rip. */
static uint64_t run_to_port_0x80(struct vm *vm)
{
	struct kvm_regs regs;
	int r;

	alarm(5);
	r = ioctl(vm->vcpu, KVM_RUN, 0);
	alarm(0);
	assert_int_equal(r, 0);
	assert_int_equal(vm->run->exit_reason, KVM_EXIT_IO);
	assert_int_equal(vm->run->io.port, 0x80);
	assert_int_equal(ioctl(vm->vcpu, KVM_GET_REGS, &regs), 0);
	return regs.rip;
}

static void test_guest_eoi_signals_the_resample_fd_and_ack_drains_it(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_src *leg = one_source(vm, test_irq_res(9), NULL);
	struct vmres_irq_config level = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
	struct sigaction sa;
	struct pollfd p;
	struct vmres_irq_src_state s;
	uint64_t v;
	int rfd;

	pic_mask_all(vm);
	ioapic_route(vm, 9, 0xa1, true);
	guest_load_eoi_handler(vm, 0xa1);
	assert_int_equal(vmres_irq_src_configure(leg, &level), 0);
	assert_int_equal(vmres_irq_src_get_fd(leg, VMRES_IRQ_FD_RESAMPLE, &rfd), 0);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	assert_true(vmres_irq_src_get_state(leg, &s) == 0 && s.asserted);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	p.fd = rfd;
	p.events = POLLIN;
	/* Control: running the guest with interrupts off acknowledges nothing. */
	assert_int_equal(run_to_port_0x80(vm), CODE_ADDR + 2);
	assert_int_equal(poll(&p, 1, 20), 0);
	assert_int_not_equal(ioapic_irr(vm) & (1u << 9), 0);
	/* The guest takes the interrupt and EOIs it: KVM lowers the line, signals. */
	assert_int_equal(run_to_port_0x80(vm), ISR_ADDR + 11);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(ioapic_irr(vm) & (1u << 9), 0);
	assert_int_equal(vmres_irq_src_ack(leg), 0);
	assert_true(vmres_irq_src_get_state(leg, &s) == 0 && !s.asserted);
	assert_int_equal(read(rfd, &v, sizeof(v)), -1); /* drained by ack */
	assert_int_equal(errno, EAGAIN);
	/* The device still holds its line: trigger again, the IOAPIC delivers again. */
	lapic_clear_irr(vm);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	assert_true(wait_irr(vm, 0xa1));
}

/* ---- a shared line ----------------------------------------------------- */

/*
 * Two devices share GSI 9 (level, one irqfd with resample). The guest takes
 * the interrupt and EOIs it while the second device still drives the line:
 * resample raises it again and the IOAPIC delivers again. Once the second
 * device has dropped it too, the next EOI leaves the line low.
 */
static void test_shared_line_is_raised_again_at_eoi_while_a_sharer_drives_it(void **state)
{
	struct vm *vm = *state;
	struct vmres_resource r = test_irq_res(9);
	struct vmres_irq_src *a, *b;
	struct sigaction sa;
	struct pollfd p;
	int rfd, rfd_b;

	r.u.irq.shared = true;
	a = one_source(vm, r, NULL);
	b = one_source(vm, r, NULL);
	pic_mask_all(vm);
	ioapic_route(vm, 9, 0xa1, true);
	guest_load_eoi_handler(vm, 0xa1);
	assert_int_equal(vmres_irq_src_get_fd(a, VMRES_IRQ_FD_RESAMPLE, &rfd), 0);
	assert_int_equal(vmres_irq_src_get_fd(b, VMRES_IRQ_FD_RESAMPLE, &rfd_b), 0);
	assert_int_equal(rfd, rfd_b); /* one resample fd for the line */
	assert_int_equal(vmres_irq_src_trigger(a), 0);
	assert_int_equal(vmres_irq_src_trigger(b), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	p.fd = rfd;
	p.events = POLLIN;
	assert_int_equal(run_to_port_0x80(vm), CODE_ADDR + 2);
	/* The guest serves a and EOIs: KVM lowers the line and signals. */
	assert_int_equal(run_to_port_0x80(vm), ISR_ADDR + 11);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(ioapic_irr(vm) & (1u << 9), 0);
	assert_int_equal(vmres_irq_src_ack(a), 0);
	lapic_clear_irr(vm);
	/* b still drives it: resample raises it again, the IOAPIC delivers. */
	assert_int_equal(vmres_irq_src_resample(a), 0);
	assert_true(wait_irr(vm, 0xa1));
	assert_int_not_equal(ioapic_irr(vm) & (1u << 9), 0);
	assert_int_equal(poll(&p, 1, 0), 0); /* drained */
	/* b is served too: after this EOI the line stays low. */
	assert_int_equal(vmres_irq_src_ack(b), 0);
	assert_int_equal(run_to_port_0x80(vm), ISR_ADDR + 11);
	assert_int_equal(poll(&p, 1, 1000), 1);
	lapic_clear_irr(vm);
	assert_int_equal(vmres_irq_src_resample(b), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_true(stays_clear(vm, 0xa1));
	assert_int_equal(ioapic_irr(vm) & (1u << 9), 0);
}

/* Why KVM cannot be used here, or NULL if it can. */
static const char *kvm_unusable(void)
{
	static const long caps[] = {KVM_CAP_IRQFD_RESAMPLE, KVM_CAP_IRQ_ROUTING};

	return test_kvm_unusable(true, caps, 2, "KVM lacks irqfd resampling or GSI routing");
}

/* ---- loaded state ------------------------------------------------------ */

static void test_loaded_state_reprograms_kvm_routes_and_pending(void **state)
{
	struct vm *vm = *state;
	struct vmres_irq_group *g;
	struct vmres_resource r[2] = {msi_res(29, 0x91), msi_res(30, 0x93)};
	struct vmres_irq_src_state st[2];
	struct vmres_irq_src *s0, *s1;
	size_t n;

	assert_int_equal(vmres_irq_group_new(vm->mgr, r, 2, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s0), 0);
	assert_int_equal(vmres_irq_group_src(g, 1, &s1), 0);
	assert_int_equal(vmres_irq_mgr_save_state(vm->mgr, st, 2, &n), 0);
	assert_int_equal(n, 2);
	/* What a saved guest had: 0 enabled at vector 0x92, 1 masked and pending
	 * at vector 0x94. */
	st[0].config.msg = msi_to(0x92);
	st[0].enabled = true;
	st[1].config.msg = msi_to(0x94);
	st[1].enabled = st[1].masked = st[1].pending = true;
	assert_int_equal(vmres_irq_mgr_load_state(vm->mgr, st, 2), 0);
	assert_int_equal(vmres_irq_src_trigger(s0), 0);
	assert_true(wait_irr(vm, 0x92));
	assert_false(lapic_irr(vm, 0x91));
	assert_true(stays_clear(vm, 0x94));
	assert_int_equal(vmres_irq_src_unmask(s1), 0);
	assert_true(wait_irr(vm, 0x94));
	assert_false(lapic_irr(vm, 0x93));
	/* A state for other sources is refused. */
	st[1].gsi = 31;
	assert_int_equal(vmres_irq_mgr_load_state(vm->mgr, st, 2), VMRES_ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_msi_trigger_makes_its_vector_pending_in_the_lapic, vm_setup,
			vm_teardown),
		cmocka_unit_test_setup_teardown(test_masked_msi_is_held_until_unmask, vm_setup,
						vm_teardown),
		cmocka_unit_test_setup_teardown(test_reroute_changes_which_vector_becomes_pending,
						vm_setup, vm_teardown),
		cmocka_unit_test_setup_teardown(
			test_pending_msi_arrives_with_the_new_vector_on_unmask, vm_setup,
			vm_teardown),
		cmocka_unit_test_setup_teardown(test_batched_reroutes_apply_at_commit, vm_setup,
						vm_teardown),
		cmocka_unit_test_setup_teardown(test_freeing_a_group_deassigns_its_irqfd, vm_setup,
						vm_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_line_reaches_the_ioapic_after_msi_routes_are_pushed, vm_setup,
			vm_teardown),
		cmocka_unit_test_setup_teardown(test_level_line_stays_raised_in_the_ioapic,
						vm_setup, vm_teardown),
		cmocka_unit_test_setup_teardown(
			test_guest_eoi_signals_the_resample_fd_and_ack_drains_it, vm_setup,
			vm_teardown),
		cmocka_unit_test_setup_teardown(
			test_shared_line_is_raised_again_at_eoi_while_a_sharer_drives_it, vm_setup,
			vm_teardown),
		cmocka_unit_test_setup_teardown(test_loaded_state_reprograms_kvm_routes_and_pending,
						vm_setup, vm_teardown),
	};
	const char *why = kvm_unusable();

	if (why) {
		printf("skipped: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
