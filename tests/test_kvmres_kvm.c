/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvmres.h's KVM backend against a real VM with one vCPU running two
 * instructions of real-mode code (DS based at the address under test, so
 * 16-bit code reaches any 32-bit address): "mov [bx], al; hlt" and
 * "mov al, [bx]; hlt". A guest write at a notify region must signal its
 * eventfd without an exit to user space, at the BAR's new address after a
 * move and not at the old one; a memory-backed BAR must read the host buffer
 * at its new address, and the old address must exit as MMIO. KVM itself
 * confirms that nothing is left at the old address: deassigning the
 * ioeventfd there fails with ENOENT.
 *
 * Exits 77 (skipped) with the reason when /dev/kvm is missing or unusable.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm_probe.h"

#include <linux/kvm.h>

#include <vmres/devmgr.h>
#include <vmres/kvmres.h>

#include "helpers.h"

#define GUEST_MEM  0x10000
#define CODE_ADDR  0x1000
#define NOTIFY_BAR 0x100000u
#define NOTIFY_NEW 0x300000u
#define MEM_BAR	   0x200000u
#define MEM_NEW	   0x400000u

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem, *bar_mem;
	struct vmres_devmgr *m;
	struct vmres_kvmres *k;
	uint32_t dev;
	uint64_t mmio_addr; /* of the last KVM_EXIT_MMIO */
};

static int vm_setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct kvm_userspace_memory_region ram;
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres_backend *be;
	struct vmres_device d = VMRES_DEVICE_INIT;
	struct vmres_resource res[2] = {test_addr_res(VMRES_SPACE_MMIO, NOTIFY_BAR, 0x1000),
					test_addr_res(VMRES_SPACE_MMIO, MEM_BAR, 0x1000)};
	int mmap_size;

	assert_non_null(vm);
	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(vm->kvm >= 0);
	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	assert_true(vm->fd >= 0);
	vm->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(vm->mem != MAP_FAILED);
	memset(&ram, 0, sizeof(ram));
	ram.memory_size = GUEST_MEM;
	ram.userspace_addr = (uintptr_t)vm->mem;
	assert_int_equal(ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &ram), 0);
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	assert_true(vm->vcpu >= 0);
	mmap_size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	assert_true(mmap_size > 0);
	vm->run_size = (size_t)mmap_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	assert_true(vm->run != MAP_FAILED);
	vm->bar_mem =
		mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(vm->bar_mem != MAP_FAILED);
	memset(vm->bar_mem, 0x5a, 0x1000);

	assert_int_equal(vmres_devmgr_new(NULL, &vm->m), 0);
	assert_int_equal(vmres_devmgr_register(vm->m, &d, 0, res, 2, &vm->dev), 0);
	assert_int_equal(vmres_kvmres_backend_kvm_new(vm->fd, NULL, &be), 0);
	o.slot_first = 1; /* slot 0 is the RAM */
	o.slot_count = 8;
	assert_int_equal(vmres_kvmres_new(vm->m, be, &o, &vm->k), 0);
	*state = vm;
	return 0;
}

static int vm_teardown(void **state)
{
	struct vm *vm = *state;

	vmres_kvmres_free(vm->k);
	vmres_devmgr_free(vm->m);
	munmap(vm->run, vm->run_size);
	munmap(vm->mem, GUEST_MEM);
	munmap(vm->bar_mem, 0x1000);
	close(vm->vcpu);
	close(vm->fd);
	close(vm->kvm);
	free(vm);
	return 0;
}

/* Run "@p op [bx], al; hlt" in real mode with DS at @p addr's page and BX its
 * offset there, AL = @p al; return the exit reason, and AL in *@p out_al. */
static uint32_t run_guest(struct vm *vm, uint8_t op, uint32_t addr, uint8_t al, uint8_t *out_al)
{
	static const uint8_t hlt = 0xf4;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint8_t code[3] = {op, 0x07, hlt}; /* op [bx], al (0x88: store; 0x8a: load) */
	uint32_t reason;

	memcpy(vm->mem + CODE_ADDR, code, sizeof(code));
	assert_int_equal(ioctl(vm->vcpu, KVM_GET_SREGS, &sregs), 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = addr & ~0xfffu;
	sregs.ds.selector = 0;
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_SREGS, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_ADDR;
	regs.rflags = 0x2;
	regs.rax = al;
	regs.rbx = addr & 0xfffu;
	assert_int_equal(ioctl(vm->vcpu, KVM_SET_REGS, &regs), 0);
	alarm(5);
	assert_int_equal(ioctl(vm->vcpu, KVM_RUN, 0), 0);
	reason = vm->run->exit_reason;
	if (reason == KVM_EXIT_MMIO) {
		/* Let KVM finish the access (a read takes all ones) and reach the hlt,
		 * so that the next run starts clean. */
		vm->mmio_addr = vm->run->mmio.phys_addr;
		if (!vm->run->mmio.is_write)
			memset(vm->run->mmio.data, 0xff, sizeof(vm->run->mmio.data));
		assert_int_equal(ioctl(vm->vcpu, KVM_RUN, 0), 0);
		assert_int_equal(vm->run->exit_reason, KVM_EXIT_HLT);
	}
	alarm(0);
	assert_int_equal(ioctl(vm->vcpu, KVM_GET_REGS, &regs), 0);
	if (out_al)
		*out_al = (uint8_t)regs.rax;
	return reason;
}

static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void test_guest_kick_signals_at_the_new_bar_address_only(void **state)
{
	struct vm *vm = *state;
	int kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct vmres_kvmres_notify n = {vm->dev, 0, 0x10, 1, false, 0, kick};
	struct kvm_ioeventfd old;

	assert_true(kick >= 0);
	assert_int_equal(vmres_kvmres_notify_add(vm->k, &n), 0);
	/* The kick at the BAR: no exit to user space, the eventfd counts it. */
	assert_int_equal(run_guest(vm, 0x88, NOTIFY_BAR + 0x10, 1, NULL), KVM_EXIT_HLT);
	assert_int_equal(eventfd_take(kick), 1);

	assert_int_equal(vmres_devmgr_move_range(vm->m, vm->dev, 0, NOTIFY_NEW), 0);
	assert_int_equal(run_guest(vm, 0x88, NOTIFY_NEW + 0x10, 1, NULL), KVM_EXIT_HLT);
	assert_int_equal(eventfd_take(kick), 1);
	/* The old address exits as MMIO like any unclaimed one, and signals nothing. */
	assert_int_equal(run_guest(vm, 0x88, NOTIFY_BAR + 0x10, 1, NULL), KVM_EXIT_MMIO);
	assert_int_equal(vm->mmio_addr, NOTIFY_BAR + 0x10);
	assert_int_equal(eventfd_take(kick), 0);
	/* And KVM has nothing registered there any more. */
	memset(&old, 0, sizeof(old));
	old.addr = NOTIFY_BAR + 0x10;
	old.len = 1;
	old.fd = kick;
	old.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
	assert_int_equal(ioctl(vm->fd, KVM_IOEVENTFD, &old), -1);
	assert_int_equal(errno, ENOENT);

	/* Unmapped: the kick exits (KVM has nothing), mapped again: it does not. */
	assert_int_equal(vmres_devmgr_unmap_range(vm->m, vm->dev, 0), 0);
	assert_int_equal(run_guest(vm, 0x88, NOTIFY_NEW + 0x10, 1, NULL), KVM_EXIT_MMIO);
	assert_int_equal(eventfd_take(kick), 0);
	assert_int_equal(vmres_devmgr_map_range(vm->m, vm->dev, 0), 0);
	assert_int_equal(run_guest(vm, 0x88, NOTIFY_NEW + 0x10, 1, NULL), KVM_EXIT_HLT);
	assert_int_equal(eventfd_take(kick), 1);
	close(kick);
}

static void test_memory_bar_reads_the_host_buffer_at_its_new_address(void **state)
{
	struct vm *vm = *state;
	uint32_t slot;
	uint8_t al = 0;

	assert_int_equal(vmres_kvmres_mem_attach(vm->k, vm->dev, 1, vm->bar_mem, false, &slot), 0);
	assert_int_equal(run_guest(vm, 0x8a, MEM_BAR, 0, &al), KVM_EXIT_HLT);
	assert_int_equal(al, 0x5a);

	assert_int_equal(vmres_devmgr_move_range(vm->m, vm->dev, 1, MEM_NEW), 0);
	vm->bar_mem[0] = 0xa7;
	assert_int_equal(run_guest(vm, 0x8a, MEM_NEW, 0, &al), KVM_EXIT_HLT);
	assert_int_equal(al, 0xa7);
	/* Nothing at the old address: the read exits to user space. */
	assert_int_equal(run_guest(vm, 0x8a, MEM_BAR, 0, NULL), KVM_EXIT_MMIO);
	assert_int_equal(vm->mmio_addr, MEM_BAR);
	/* A guest store lands in the host buffer (a read-write slot). */
	assert_int_equal(run_guest(vm, 0x88, MEM_NEW + 1, 0x3c, NULL), KVM_EXIT_HLT);
	assert_int_equal(vm->bar_mem[1], 0x3c);
	assert_int_equal(vmres_devmgr_unmap_range(vm->m, vm->dev, 1), 0);
	assert_int_equal(run_guest(vm, 0x8a, MEM_NEW, 0, NULL), KVM_EXIT_MMIO);
	assert_int_equal(vmres_kvmres_mem_detach(vm->k, vm->dev, 1), 0);
}

static const char *kvm_unusable(void)
{
	static const long caps[] = {KVM_CAP_IOEVENTFD};

	return test_kvm_unusable(false, caps, 1, "KVM lacks ioeventfd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guest_kick_signals_at_the_new_bar_address_only,
						vm_setup, vm_teardown),
		cmocka_unit_test_setup_teardown(
			test_memory_bar_reads_the_host_buffer_at_its_new_address, vm_setup,
			vm_teardown),
	};
	const char *why = kvm_unusable();

	if (why) {
		printf("skipped: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
