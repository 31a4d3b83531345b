/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVM vCPU backend: a VM with the in-kernel irqchip (PIC, IOAPIC and one
 * local APIC per vCPU, so MSIs and the guest's LAPIC accesses never leave the
 * kernel), one memory slot for guest RAM, one thread per vCPU running KVM_RUN.
 * Every KVM_EXIT_IO and KVM_EXIT_MMIO goes to vmm_exit_pio() / vmm_exit_mmio().
 *
 * Kicking a vCPU: set its kvm_run.immediate_exit and send its thread SIGUSR1
 * (blocked handler-less signals would not interrupt KVM_RUN, so the handler is an
 * empty function installed without SA_RESTART); KVM_RUN then returns EINTR.
 *
 * Firmware mode (vm->rom, vm->reset_vector): a second, read-only memory slot holds
 * the ROM at the top of the 4 GiB (a guest store there exits as MMIO and misses,
 * so it is dropped) and every vCPU keeps KVM's reset state: real mode, CS base
 * 0xFFFF0000, IP 0xFFF0.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define KVM_TSS_ADDR 0xfffbd000u /* 3 pages Intel VMX needs; above every device window */

struct kvm_vcpu {
	struct vmm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	atomic_bool started;
};

struct kvm_vm {
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct kvm_vcpu vcpu[VMM_MAX_VCPUS];
};

int vmm_kvm_vm_fd(struct vmm *vm)
{
	struct kvm_vm *k = vm->backend_priv;

	return k ? k->vm_fd : -1;
}

static int kvm_probe(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm_fd, api;

	if (fd < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return -1;
	}
	api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		snprintf(why, len, "/dev/kvm: API version %d, want %d", api, KVM_API_VERSION);
		close(fd);
		return -1;
	}
	if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		snprintf(why, len, "/dev/kvm: no in-kernel irqchip or immediate exit");
		close(fd);
		return -1;
	}
	vm_fd = ioctl(fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(vm_fd);
	close(fd);
	return 0;
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* What KVM supports, with vCPU @index's APIC ID where CPUID reports one (the
 * in-kernel APIC's ID is the vCPU index). */
static int set_cpuid(struct kvm_vm *k, int vcpu_fd, unsigned int index)
{
	const unsigned int max = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(cpuid->entries[0]));
	int rc = -1;

	if (!cpuid)
		return -1;
	cpuid->nent = max;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		goto out;
	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | index << 24;
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = index;
	}
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) == 0)
		rc = 0;
out:
	free(cpuid);
	return rc;
}

/*
 * Where vCPU 0 (every vCPU of the demo guest) starts: flat 4 GiB segments,
 * interrupts off, and either 32-bit protected mode without paging at
 * vm->entry (the demo guest), or long mode as the kernel's 64-bit boot
 * protocol asks (vm->boot64: the loader's page tables and GDT, its selectors,
 * the zero page in rsi).
 */
static int set_entry_state(struct vmm *vm, int vcpu_fd)
{
	const bool lm = vm->boot64;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment code = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = lm ? vm->boot.cs : 0x08,
		.type = 0xb, /* execute/read, accessed */
		.present = 1,
		.db = !lm,
		.s = 1,
		.l = lm,
		.g = 1,
	};
	struct kvm_segment data = code;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	data.selector = lm ? vm->boot.ds : 0x10;
	data.type = 0x3; /* read/write, accessed */
	data.db = 1;
	data.l = 0;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	if (lm) {
		sregs.gdt.base = vm->boot.gdt_base;
		sregs.gdt.limit = vm->boot.gdt_limit;
		sregs.cr3 = vm->boot.cr3;
		sregs.cr4 = 1u << 5;				/* PAE */
		sregs.cr0 = 1u | 1u << 4 | 1u << 5 | 1u << 31; /* PE, ET, NE, PG */
		sregs.efer = 1u << 8 | 1u << 10;		/* LME, LMA */
	} else {
		sregs.cr0 |= 1;		  /* PE */
		sregs.cr0 &= ~(1u << 31); /* PG */
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -1;
	memset(&regs, 0, sizeof(regs));
	regs.rip = lm ? vm->boot.rip : vm->entry;
	regs.rsi = lm ? vm->boot.rsi : 0;
	regs.rflags = 0x2;
	return ioctl(vcpu_fd, KVM_SET_REGS, &regs);
}

static int kvm_init(struct vmm *vm)
{
	struct kvm_vm *k = calloc(1, sizeof(*k));
	struct kvm_userspace_memory_region mem = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = vm->ram_size,
		.userspace_addr = (uintptr_t)vm->ram,
	};
	struct sigaction sa;
	int size;

	if (!k)
		return -1;
	k->kvm_fd = k->vm_fd = -1;
	for (unsigned int i = 0; i < VMM_MAX_VCPUS; i++)
		k->vcpu[i].fd = -1;
	vm->backend_priv = k;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		goto fail;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0)
		goto fail;
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		goto fail;
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0 ||
	    ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &mem) < 0)
		goto fail;
	if (vm->rom) {
		struct kvm_userspace_memory_region rom = {
			.slot = 1,
			.flags = KVM_MEM_READONLY,
			.guest_phys_addr = 0x100000000ull - vm->rom_size,
			.memory_size = vm->rom_size,
			.userspace_addr = (uintptr_t)vm->rom,
		};

		if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) {
			fprintf(stderr, "vmres-demo: kvm: no read-only memory slots\n");
			return -1;
		}
		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &rom) < 0)
			goto fail;
	}
	if (vm->pit) {
		/* A PC's timer (ports 0x40-0x43, 0x61) on IRQ 0, in the kernel: firmware
		 * waits for its ticks once it is past PCI set-up. */
		struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

		if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
			goto fail;
	}
	size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		goto fail;
	k->run_size = (size_t)size;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct kvm_vcpu *c = &k->vcpu[i];
		void *run;

		c->vm = vm;
		c->index = i;
		c->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0)
			goto fail;
		run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (run == MAP_FAILED)
			goto fail;
		c->run = run;
		if (set_cpuid(k, c->fd, i) < 0)
			goto fail;
		if (vm->boot64) {
			/* vCPU 0 at the kernel's entry; the others wait for INIT/SIPI */
			if (i == 0 && set_entry_state(vm, c->fd) < 0)
				goto fail;
			continue;
		}
		if (!vm->reset_vector && set_entry_state(vm, c->fd) < 0)
			goto fail;
		/* With the in-kernel APIC, vCPUs other than 0 wait for INIT/SIPI; ours
		 * start at the entry point like vCPU 0. */
		if (i > 0) {
			struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};

			if (ioctl(c->fd, KVM_SET_MP_STATE, &mp) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	fprintf(stderr, "vmres-demo: kvm: setting up the VM failed: %s\n", strerror(errno));
	return -1;
}

static void kvm_io_exit(struct kvm_vcpu *c)
{
	struct kvm_run *run = c->run;

	vmm_exit_pio(c->vm, c->index, run->io.port, (uint8_t *)run + run->io.data_offset,
		     run->io.size, run->io.count, run->io.direction == KVM_EXIT_IO_OUT);
}

static void vcpu_fail(struct kvm_vcpu *c, const char *what)
{
	fprintf(stderr, "vmres-demo: kvm: vcpu %u: %s\n", c->index, what);
	if (!c->vm->failed)
		snprintf(c->vm->failure, sizeof(c->vm->failure), "vcpu %u: %s", c->index, what);
	c->vm->failed = true;
	vmm_request_stop(c->vm);
}

/* vcpu_fail() with where the guest was: rip, rsp, cr2 and cr3. */
static void vcpu_fail_at(struct kvm_vcpu *c, const char *what)
{
	struct kvm_regs regs = {0};
	struct kvm_sregs sregs = {0};
	char msg[160];

	ioctl(c->fd, KVM_GET_REGS, &regs);
	ioctl(c->fd, KVM_GET_SREGS, &sregs);
	snprintf(msg, sizeof(msg), "%s at rip 0x%llx rsp 0x%llx cr2 0x%llx cr3 0x%llx", what,
		 (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		 (unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3);
	vcpu_fail(c, msg);
}

static void *kvm_vcpu_thread(void *arg)
{
	struct kvm_vcpu *c = arg;
	struct vmm *vm = c->vm;
	struct kvm_run *run = c->run;
	char msg[96];

	if (vmm_vcpu_thread_enter(vm, c->index) < 0)
		return NULL;
	while (!atomic_load_explicit(&vm->stop, memory_order_acquire)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_RELAXED);
				continue;
			}
			snprintf(msg, sizeof(msg), "KVM_RUN: %s", strerror(errno));
			vcpu_fail(c, msg);
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			kvm_io_exit(c);
			break;
		case KVM_EXIT_MMIO:
			vmm_exit_mmio(vm, c->index, run->mmio.phys_addr, run->mmio.data,
				      run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_INTR:
			vm->stats[c->index].exits[VMM_EXIT_OTHER]++;
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fail_at(c, "guest shutdown (triple fault)");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(msg, sizeof(msg), "entry failed, reason 0x%llx",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vcpu_fail(c, msg);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(msg, sizeof(msg), "internal error, suberror %u",
				 run->internal.suberror);
			vcpu_fail_at(c, msg);
			break;
		default:
			snprintf(msg, sizeof(msg), "unexpected exit reason %u", run->exit_reason);
			vcpu_fail(c, msg);
			break;
		}
	}
	vmm_vcpu_thread_leave();
	return NULL;
}

static int kvm_run_vm(struct vmm *vm)
{
	struct kvm_vm *k = vm->backend_priv;
	int rc = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct kvm_vcpu *c = &k->vcpu[i];

		if (pthread_create(&c->thread, NULL, kvm_vcpu_thread, c) != 0) {
			fprintf(stderr, "vmres-demo: kvm: cannot start vcpu %u\n", i);
			vm->failed = true;
			vmm_request_stop(vm);
			rc = -1;
			break;
		}
		c->started = true;
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (k->vcpu[i].started)
			pthread_join(k->vcpu[i].thread, NULL);
		k->vcpu[i].started = false;
	}
	return rc;
}

static void kvm_kick(struct vmm *vm, unsigned int cpu)
{
	struct kvm_vm *k = vm->backend_priv;
	struct kvm_vcpu *c;

	if (!k || cpu >= vm->nr_vcpus)
		return;
	c = &k->vcpu[cpu];
	if (!c->run)
		return;
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELAXED);
	if (c->started && !pthread_equal(c->thread, pthread_self()))
		pthread_kill(c->thread, SIGUSR1);
}

static void kvm_fini(struct vmm *vm)
{
	struct kvm_vm *k = vm->backend_priv;

	if (!k)
		return;
	for (unsigned int i = 0; i < VMM_MAX_VCPUS; i++) {
		if (k->vcpu[i].run)
			munmap(k->vcpu[i].run, k->run_size);
		if (k->vcpu[i].fd >= 0)
			close(k->vcpu[i].fd);
	}
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k);
	vm->backend_priv = NULL;
}

const struct vmm_backend vmm_backend_kvm = {
	.name = "kvm",
	.probe = kvm_probe,
	.init = kvm_init,
	.run = kvm_run_vm,
	.kick = kvm_kick,
	.fini = kvm_fini,
};
