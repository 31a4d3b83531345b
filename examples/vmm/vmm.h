/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The demo VMM: one VM, its guest memory, its vCPUs and the vCPU backend that runs
 * them (KVM or the Unicorn software CPU).
 *
 * A backend turns guest port and MMIO accesses into calls of vmm_exit_pio() and
 * vmm_exit_mmio(), which hand them to vmres's device manager: the vCPU loops do
 * no address decoding of their own. The only exception is the guest-pio
 * benchmark's "direct" run, which compares vmres's dispatch with a hard-coded
 * `if (port == P)` in the same loop (vm->direct_port).
 *
 * Threads: one per vCPU, started by the backend's run(); the main thread waits.
 * A vCPU stops when vm->stop is set (by the control device when the guest ends
 * the run, or by a fatal exit) and the backend has kicked it.
 */
#ifndef VMM_H
#define VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/devmgr.h>

struct vmm;
struct vmm_lapic;

#define VMM_MAX_VCPUS 8

/* Exit kinds counted by every backend. */
enum vmm_exit_kind {
	VMM_EXIT_PIO_READ,
	VMM_EXIT_PIO_WRITE,
	VMM_EXIT_MMIO_READ,
	VMM_EXIT_MMIO_WRITE,
	VMM_EXIT_IRQ_INJECT, /* software CPU: an interrupt delivered through the IDT */
	VMM_EXIT_OTHER,	     /* anything else that returned to the loop */
	VMM_EXIT_KINDS
};

/* Per-vCPU counters: written by its own thread only, read after it stopped. */
struct vmm_vcpu_stats {
	uint64_t exits[VMM_EXIT_KINDS];
} __attribute__((aligned(64)));

/* A vCPU backend. */
struct vmm_backend {
	const char *name; /* "kvm" or "unicorn" */
	/* 0 if this machine can run it; otherwise -1 and a reason in @why. */
	int (*probe)(char *why, size_t len);
	/* Create the VM (guest memory already in vm->ram), its vCPUs in reset state at
	 * vm->entry. 0 or -1 with a message on stderr. */
	int (*init)(struct vmm *vm);
	/* Start one thread per vCPU; return when every vCPU has stopped. */
	int (*run)(struct vmm *vm);
	/* Make vCPU @cpu leave guest mode soon and look at vm->stop and interrupts.
	 * Any thread, device handlers included. */
	void (*kick)(struct vmm *vm, unsigned int cpu);
	void (*fini)(struct vmm *vm);
};

extern const struct vmm_backend vmm_backend_kvm;
extern const struct vmm_backend vmm_backend_unicorn;

/* KVM backend: the VM's file descriptor (for vmres's KVM interrupt backend), or
 * -1 before init(). */
int vmm_kvm_vm_fd(struct vmm *vm);

/* Unicorn backend: host memory in the guest-physical space (vmres_kvmres's
 * mem_map and mem_unmap; see vcpu_unicorn.c). A request records the mapping
 * in a table each vCPU applies to its own engine at its next safe point
 * (right away if the caller is that vCPU in a port hook). [@gpa, @gpa + @size)
 * must lie in the MMIO space above the RAM, on 4 KiB pages, and overlap no
 * other mapping; @host stays valid until it is unmapped. Any thread, after
 * init(). 0 or a negative VMRES_E* code: VMRES_EINVAL, VMRES_EMISALIGNED,
 * VMRES_EEXIST (overlap), VMRES_ENOSPC (table full); unmap: VMRES_ENOENT
 * unless exactly that mapping is there. */
int vmm_unicorn_mem_map(struct vmm *vm, uint64_t gpa, uint64_t size, void *host, bool readonly);
int vmm_unicorn_mem_unmap(struct vmm *vm, uint64_t gpa, uint64_t size, void *host, bool readonly);

/* How one vCPU applied the table's changes, and whether its engine has host
 * memory at a given address: after the run. */
struct vmm_unicorn_mem_stats {
	uint64_t own;	   /* right away, in the vCPU's own request */
	uint64_t at_block; /* at the start of a translation block, after a kick */
	uint64_t at_start; /* before uc_emu_start() */
	bool mapped;	   /* memory at the address asked about */
};
/* 0, or -1 if @vm does not run on Unicorn or has no vCPU @cpu. */
int vmm_unicorn_mem_stats(struct vmm *vm, unsigned int cpu, uint64_t gpa,
			  struct vmm_unicorn_mem_stats *out);

struct vmm {
	const struct vmm_backend *backend;
	void *backend_priv;

	uint8_t *ram; /* guest physical [0, ram_size) */
	size_t ram_size;
	uint32_t entry; /* first instruction, 32-bit flat protected mode */
	/* Firmware mode: a ROM image mapped read-only at [4 GiB - rom_size, 4 GiB)
	 * (writes to it are dropped), and every vCPU starts as after a reset, in
	 * real mode at F000:FFF0 (entry is then unused). */
	const uint8_t *rom;
	size_t rom_size;
	bool reset_vector;
	/* Linux mode (x86boot.h): vCPU 0 starts in 64-bit mode with these registers,
	 * as the kernel's 64-bit boot protocol asks; the others wait for the guest's
	 * INIT/SIPI as on a PC (KVM backend only). */
	bool boot64;
	struct vmm_boot64 {
		uint64_t rip, rsi, cr3, gdt_base;
		uint16_t gdt_limit, cs, ds;
	} boot;
	/* A PC's timer (PIT, IRQ 0) in the kernel (KVM); firmware mode wants it too. */
	bool pit;
	unsigned int nr_vcpus;

	struct vmres_devmgr *devmgr; /* every access goes here */

	/* guest-pio "direct": accesses to this port bypass vmres (-1: none). */
	int direct_port;
	uint64_t direct_sum;

	/* Software CPU, firmware mode: the legacy interrupt controller (PIC) that
	 * vCPU 0 takes interrupts from in real mode, between two runs of the engine
	 * (SeaBIOS waits for them with "sti; hlt"). pending() returns the vector of
	 * the interrupt the PIC would hand out now, or -1; ack() is the CPU's
	 * acknowledge cycle for it. NULL: none. */
	int (*legacy_pending)(void *ctx);
	void (*legacy_ack)(void *ctx, int vector);
	void *legacy_ctx;

	/* Software CPU only: one local APIC per vCPU (NULL under KVM). */
	struct vmm_lapic *lapic[VMM_MAX_VCPUS];

	/* Optional: a count that grows while the guest makes progress (exits,
	 * kicks, output), read by vmm_run_until()'s watchdog every second from
	 * its own thread; no change for stall_s seconds ends the run. */
	uint64_t (*progress)(void *ctx);
	void *progress_ctx;
	double stall_s;

	atomic_bool stop;      /* the run is over */
	bool guest_exited;     /* the guest wrote the exit port */
	uint32_t guest_status; /* what it wrote */
	atomic_bool failed;    /* a vCPU stopped on an error */
	char failure[192];     /* the first such error, as printed (set before failed) */
	double mark_ns;	       /* when the guest wrote VMM_CTL_MARK */
	double end_ns;	       /* when the guest wrote VMM_CTL_EXIT */

	struct vmm_vcpu_stats stats[VMM_MAX_VCPUS];
};

/* What every backend's loop calls for a port exit: @count accesses of @size bytes
 * (count > 1 for rep ins/outs under KVM) at @data, little endian, filled in for
 * reads. Misses read as all ones (vmres). */
static inline void vmm_exit_pio(struct vmm *vm, unsigned int cpu, uint16_t port, uint8_t *data,
				uint8_t size, uint32_t count, bool is_write)
{
	vm->stats[cpu].exits[is_write ? VMM_EXIT_PIO_WRITE : VMM_EXIT_PIO_READ]++;
	if (port == vm->direct_port && is_write && size == 4 && count == 1) {
		uint32_t v;

		__builtin_memcpy(&v, data, 4);
		vm->direct_sum += v;
		return;
	}
	vmres_devmgr_pio(vm->devmgr, port, is_write, size, count, data);
}

/* What every backend's loop calls for an MMIO access. */
static inline void vmm_exit_mmio(struct vmm *vm, unsigned int cpu, uint64_t addr, uint8_t *data,
				 uint32_t len, bool is_write)
{
	vm->stats[cpu].exits[is_write ? VMM_EXIT_MMIO_WRITE : VMM_EXIT_MMIO_READ]++;
	vmres_devmgr_mmio(vm->devmgr, addr, len, is_write, data);
}

/* The vCPU the calling thread runs (0 on threads that run none). */
extern _Thread_local unsigned int vmm_this_cpu;

/* Every vCPU thread calls enter() first (registers it with vmres; -1 stops the
 * run) and leave() last. */
int vmm_vcpu_thread_enter(struct vmm *vm, unsigned int cpu);
void vmm_vcpu_thread_leave(void);

/* How vmm_run_until() ended. */
enum vmm_run_end {
	VMM_RUN_ENDED,	 /* the guest or a vCPU failure ended it */
	VMM_RUN_TIMEOUT, /* the time limit */
	VMM_RUN_STALLED, /* vm->progress did not change for vm->stall_s seconds */
};

/* Run the vCPUs (the backend's run()) until the run ends, @timeout_s seconds
 * have passed, or (with vm->progress) the guest stalled, whichever comes first. */
enum vmm_run_end vmm_run_until(struct vmm *vm, double timeout_s);

/* End the run: set vm->stop and kick every vCPU. Any thread. */
void vmm_request_stop(struct vmm *vm);

/* Monotonic clock in nanoseconds. */
double vmm_now_ns(void);

/* A device's I/O thread: it polls stop_fd beside its own eventfds and returns
 * once stop_fd is readable. */
struct vmm_worker {
	int stop_fd; /* -1: none */
	bool started;
	pthread_t thread;
};

/* The stop eventfd, before anything else of the device can fail: 0, or -1
 * (then stop_fd is -1, and vmm_worker_free() is still right). */
int vmm_worker_init(struct vmm_worker *w);
/* Run @p fn(@p arg) on the worker's thread: 0, or -1 (said on stderr, naming
 * @p what). */
int vmm_worker_start(struct vmm_worker *w, void *(*fn)(void *), void *arg, const char *what);
/* End the thread if it runs and wait for it; again: nothing. */
void vmm_worker_stop(struct vmm_worker *w);
/* Stop, and close the eventfd. */
void vmm_worker_free(struct vmm_worker *w);

#endif
