/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The demo machine: guest RAM with the guest image, a vCPU backend, and the
 * devices, all registered through vmres's device manager with resources from
 * vmres's x86_64 system allocator:
 *
 *     device        resources (pool)                      how it is reached
 *     uart0         com1 0x3f8-0x3ff (pio)                port I/O
 *     ctl           16 ports (pio, first fit >= 0x500)    port I/O
 *     pci-host      conf1 0xcf8-0xcff (pio)               port I/O -> vmres PCI host
 *       i440fx      (none)                                config space, slot 0
 *       pci-ecam    0xe0000000 256 MiB (mmio32, the       MMIO -> vmres ECAM window
 *                   preset's "pci ecam" reservation)      onto the same host
 *       testdev     BAR0 4 KiB (mmio32), BAR1 8 ports     MMIO, port I/O, config
 *                   (pio >= 0xc000), 1 MSI (gsi-msi),     space slot 1; BAR2's
 *                   BAR2 16 KiB (MSI-X, notify), BAR3     notify registers by
 *                   4 KiB (host memory), 2 MSI-X vectors  eventfd, BAR3 host
 *                                                         memory (both backends)
 *     lapic         0xfee00000 4 KiB (mmio32, in the      MMIO (software CPU only;
 *                   platform's lapic/msi reservation)     KVM's APIC is in-kernel)
 *
 * Every vCPU starts at the guest's entry point (no INIT/SIPI); the guest tells
 * them apart by local APIC id. Interrupts go through vmres's interrupt manager: its KVM backend
 * (irqfd + GSI routing) under KVM, its callback backend into the software LAPIC otherwise.
 *
 * The test device's BAR-tied resources are vmres_kvmres's: under KVM its KVM
 * backend (an ioeventfd per notify register, a memory slot for BAR3), on the
 * software CPU a backend of the demo's own: no ioeventfds (vmres's bus
 * signals the eventfds), BAR3 mapped with uc_mem_map_ptr() in every vCPU's
 * engine (vmm_unicorn_mem_map()); until a vCPU has applied a move, the device
 * serves BAR3 from the same buffer. Either way they follow the BARs when the
 * guest moves them.
 */
#ifndef VMM_MACHINE_H
#define VMM_MACHINE_H

#include <stdint.h>
#include <stdio.h>

#include "vmm.h"

struct vmm_machine_opts {
	const struct vmm_backend *backend;
	uint32_t mode;	       /* enum vmm_guest_mode (bootinfo.h) */
	uint32_t bench_n;      /* VMM_GUEST_BENCH_PIO: number of port writes */
	bool direct;	       /* benchmark: the loop handles the sink port itself */
	unsigned int nr_vcpus; /* 1 to VMM_MAX_VCPUS */
};

struct vmm_machine;

/* Build the machine; 0 or -1 (with a message on stderr). */
int vmm_machine_new(const struct vmm_machine_opts *opts, struct vmm_machine **out);
void vmm_machine_free(struct vmm_machine *m);

/* Run the guest until it ends the run or a vCPU fails. */
int vmm_machine_run(struct vmm_machine *m);
struct vmm *vmm_machine_vm(struct vmm_machine *m);

/* The device tree and the system allocator's pools as vmres prints them (the
 * pools devices draw from), in a malloc'd string; NULL if out of memory. */
char *vmm_machine_map(struct vmm_machine *m);
/* Exits by kind (from the vCPU loops) and by device (from the devices and
 * vmres's miss counters). */
void vmm_machine_print_exits(struct vmm_machine *m, FILE *f);

/* After a run of the scenario: print what the test device saw (kicks per queue,
 * MSI-X vectors fired, where the notify regions and the memory BAR are) and
 * check it against what the guest did (bootinfo.h); 0 if it agrees, else -1. */
int vmm_machine_check_testdev(struct vmm_machine *m, FILE *f);

/* Benchmark: what the sink saw (vmres path) or the loop summed (direct path). */
uint64_t vmm_machine_bench_sum(struct vmm_machine *m);

#endif
