/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The contract between the demo VMM and its guest: where the guest is loaded and
 * the small table the VMM leaves in guest memory before the first instruction
 * (what firmware tables would tell a real OS). Included by both sides, so only
 * fixed-size types.
 *
 *   0x0000_7000  struct vmm_bootinfo (written by the VMM)
 *   0x0010_0000  guest image (flat binary), entry point at its first byte
 *   ...          guest .bss and stack, up to VMM_GUEST_RAM_SIZE
 */
#ifndef VMM_BOOTINFO_H
#define VMM_BOOTINFO_H

#include <stdint.h>

#define VMM_GUEST_RAM_SIZE  0x400000u /* 4 MiB of RAM at guest physical 0 */
#define VMM_GUEST_LOAD_ADDR 0x100000u
#define VMM_BOOTINFO_ADDR   0x7000u
#define VMM_BOOTINFO_MAGIC  0x544f4f42u /* "BOOT" */

/* What the guest is asked to do. */
enum vmm_guest_mode {
	VMM_GUEST_SCENARIO = 0,	 /* the demo: UART, PCI, BAR move, MSI */
	VMM_GUEST_BENCH_PIO = 1, /* guest-pio: bench_n 4-byte outs of k to bench_port */
};

/* The control device's registers (4-byte port writes at ctl_port + offset). */
#define VMM_CTL_EXIT  0	 /* write: the run ends; the value is the guest's status (0 = success) */
#define VMM_CTL_MARK  4	 /* write: the timed part of a benchmark starts now */
#define VMM_CTL_SINK  8	 /* write: added to the benchmark sum (the guest-pio target) */
#define VMM_CTL_PORTS 16 /* size of the control device's port range */

/* The guest's final status word: 0, or bits naming each check that failed. */
#define VMM_GUEST_OK 0u

/* The MSI vector the guest installs a handler for. */
#define VMM_GUEST_MSI_VECTOR 0x41u

/* The test PCI device: its identity, its BAR0 registers (4 KiB MMIO) and its
 * BAR1 registers (8 I/O ports). */
#define VMM_TESTDEV_VENDOR   0x7672u /* "vr": an unregistered id, for this demo only */
#define VMM_TESTDEV_DEVICE   0x0001u
#define VMM_TESTDEV_ID	     0x00u	 /* ro: VMM_TESTDEV_MAGIC */
#define VMM_TESTDEV_SCRATCH  0x04u	 /* rw */
#define VMM_TESTDEV_DOORBELL 0x08u	 /* wo: raise the device's MSI */
#define VMM_TESTDEV_RINGS    0x0cu	 /* ro: doorbell writes so far */
#define VMM_TESTDEV_MAGIC    0x54455354u /* "TEST" */
#define VMM_TESTDEV_IO_SIZE  8u		 /* BAR1: offset 0 reads VMM_TESTDEV_MAGIC */

struct vmm_bootinfo {
	uint32_t magic;		   /* VMM_BOOTINFO_MAGIC */
	uint32_t mode;		   /* enum vmm_guest_mode */
	uint32_t ctl_port;	   /* base of the control device's ports */
	uint32_t bench_port;	   /* VMM_GUEST_BENCH_PIO: the port to write (ctl + SINK) */
	uint32_t bench_n;	   /* VMM_GUEST_BENCH_PIO: how many writes */
	uint32_t mmio_window_base; /* where the guest may place 32-bit BARs ... */
	uint32_t mmio_window_last; /* ... inclusive end */
	uint32_t nr_cpus;	   /* vCPUs running the guest (local APIC ids 0..n-1) */
};

/* Most vCPUs the guest handles (start.S gives each a 16 KiB stack). */
#define VMM_GUEST_MAX_CPUS 8

#endif
