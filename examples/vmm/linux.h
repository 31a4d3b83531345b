/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Linux mode of the demo VMM: an unmodified Linux kernel (Debian's) as the
 * guest, booted by the 64-bit boot protocol (x86boot.h) on KVM with the
 * in-kernel irqchip and PIT, 2 vCPUs, and this PC, every device registered
 * through vmres's device manager with resources from the x86_64 preset:
 *
 *     device        resources (pool)                     how the guest finds it
 *     uart0         com1 0x3f8-0x3ff (pio), IRQ 4        the PC's COM1 (console)
 *                   (gsi-legacy, edge)
 *     ctl           16 ports (pio, >= 0x500)             "vmres.ctl=" on the command line
 *     pci-host      conf1 0xcf8-0xcff (pio)              configuration mechanism #1
 *       00:00.0     i440fx host bridge
 *       00:01.0     stub: BAR0 4 KiB (mmio32, placed     the BAR as the VMM assigned it
 *                   by vmres), decoding
 *       00:02.0     virtio-rng: BAR0 16 KiB (mmio32),    BAR0 unassigned (0): Linux's
 *                   2 MSI-X vectors (gsi-msi)            PCI core chooses its address
 *
 * e820 (from the preset): RAM [0, 0x9fc00) and [1 MiB, RAM size); reserved
 * [0x9fc00, 1 MiB), [RAM size, 3 GiB) (the preset's RAM space that this VM
 * leaves empty, so that Linux looks for PCI space only in the preset's MMIO
 * window) and every platform range the preset reserves in "mmio32" (ECAM,
 * IOAPIC, HPET, local APIC). No ACPI tables (acpi=off): the MP table tells
 * the CPUs and interrupt lines, PCI is reached by conf1.
 *
 * The virtio device's BAR0 is reserved where no one looks first (the top of
 * mmio32) and its register reads 0, so Linux assigns it from the bottom of
 * its PCI window; each address it writes moves the reservation, the bus range,
 * the notify ioeventfd and the MSI-X table (vmres_kvmres, the PCI helper).
 *
 * The guest's /init (examples/linux/) loads the virtio modules and runs
 * vmres-guest, which reads /dev/hwrng, moves the device through sysfs, and
 * prints /proc/iomem, /proc/ioports and each device's resource file; after
 * the run the VMM checks those against vmres (check.h).
 */
#ifndef VMM_LINUX_H
#define VMM_LINUX_H

#include <stdint.h>

#include "vmm.h"

struct vmm_linux_opts {
	const char *kernel;	/* bzImage */
	const char *initrd;	/* initramfs (cpio) */
	const char *append;	/* more of the command line, or NULL */
	unsigned int nr_vcpus;	/* 1 to VMM_MAX_VCPUS */
	uint64_t ram_mib;	/* guest RAM, 64 to 3072 MiB */
	double timeout_s;	/* stop the guest after this long at the latest */
};

/* Exit status when the guest stopped on its own: a triple fault, or no
 * progress (console output, queue kicks) for 30 s. */
#define VMM_LINUX_STOPPED 3

/* Boot and check: 0 if the guest reported success and vmres agrees with its
 * view, VMM_LINUX_STOPPED if the guest stopped on its own (above), 1 for any
 * other failure, 77 if this host's KVM cannot run Linux (reason printed). */
int vmm_linux_main(const struct vmm_linux_opts *opts);

#endif
