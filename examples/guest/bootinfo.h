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
	VMM_GUEST_SCENARIO = 0,	 /* the demo: UART, PCI, BAR moves, MSI, ECAM, MSI-X */
	VMM_GUEST_BENCH_PIO = 1, /* guest-pio: bench_n 4-byte outs of k to bench_port */
};

/* The control device's registers (4-byte port writes at ctl_port + offset). */
#define VMM_CTL_EXIT  0	 /* write: the run ends; the value is the guest's status (0 = success) */
#define VMM_CTL_MARK  4	 /* write: the timed part of a benchmark starts now */
#define VMM_CTL_SINK  8	 /* write: added to the benchmark sum (the guest-pio target) */
#define VMM_CTL_PORTS 16 /* size of the control device's port range */

/* The guest's final status word: 0, or bits naming each check that failed. */
#define VMM_GUEST_OK 0u

/* The MSI vector the guest installs a handler for, and those of the test
 * device's MSI-X vectors (VMM_GUEST_MSIX_VECTOR + v for table entry v). */
#define VMM_GUEST_MSI_VECTOR  0x41u
#define VMM_GUEST_MSIX_VECTOR 0x42u

/* The test PCI device (a PCI Express integrated endpoint): its identity, its
 * BAR0 registers (4 KiB MMIO), its BAR1 registers (8 I/O ports), its BAR2
 * (16 KiB MMIO: MSI-X table and PBA, served by vmres's PCI helper, and notify
 * registers, served by ioeventfds) and its BAR3 (4 KiB of host memory).
 *
 *     BAR2  0x0000  MSI-X table, VMM_TESTDEV_MSIX_VECTORS entries of 16 bytes
 *           0x0800  MSI-X pending-bit array
 *           0x1000  NOTIFY(q): a 4-byte write kicks queue q; the VMM counts it
 *                   (KICKS(q)) and answers with MSI-X vector q
 *     BAR3  0x0000  VMM_TESTDEV_SHM_MAGIC, written by the VMM into the host
 *                   buffer; the rest of the page reads and writes that buffer
 */
#define VMM_TESTDEV_VENDOR   0x7672u /* "vr": an unregistered id, for this demo only */
#define VMM_TESTDEV_DEVICE   0x0001u
#define VMM_TESTDEV_ID	     0x00u		/* ro: VMM_TESTDEV_MAGIC */
#define VMM_TESTDEV_SCRATCH  0x04u		/* rw */
#define VMM_TESTDEV_DOORBELL 0x08u		/* wo: raise the device's MSI */
#define VMM_TESTDEV_RINGS    0x0cu		/* ro: doorbell writes so far */
#define VMM_TESTDEV_KICKS(q) (0x10u + 4u * (q)) /* ro: kicks of queue q counted so far */
#define VMM_TESTDEV_ANSWERED 0x18u		/* ro: MSI-X vectors fired in answer */
#define VMM_TESTDEV_MAGIC    0x54455354u	/* "TEST" */
#define VMM_TESTDEV_IO_SIZE  8u			/* BAR1: offset 0 reads VMM_TESTDEV_MAGIC */

#define VMM_TESTDEV_MSIX_BAR_SIZE 0x4000u
#define VMM_TESTDEV_MSIX_VECTORS  2u /* = queues */
#define VMM_TESTDEV_MSIX_TABLE	  0x0000u
#define VMM_TESTDEV_MSIX_PBA	  0x0800u
#define VMM_TESTDEV_NOTIFY(q)	  (0x1000u + 4u * (q))
#define VMM_TESTDEV_SHM_SIZE	  0x1000u
#define VMM_TESTDEV_SHM_MAGIC	  0x214d4853u /* "SHM!" */
#define VMM_TESTDEV_SHM_GUEST	  0x10u	      /* where the guest leaves VMM_TESTDEV_SHM_NOTE */
#define VMM_TESTDEV_SHM_NOTE	  0x6d6f7665u /* "evom" */

/* What the guest's scenario does with the notify registers, so that the VMM can
 * check its own counters afterwards: each queue is kicked this many times where
 * BAR2 is (twice before its move, once with the vector unmasked and once
 * masked, and once after it), and once at BAR2's old address after the move,
 * which must not count. */
#define VMM_GUEST_KICKS_PER_QUEUE 3u

struct vmm_bootinfo {
	uint32_t magic;		   /* VMM_BOOTINFO_MAGIC */
	uint32_t mode;		   /* enum vmm_guest_mode */
	uint32_t ctl_port;	   /* base of the control device's ports */
	uint32_t bench_port;	   /* VMM_GUEST_BENCH_PIO: the port to write (ctl + SINK) */
	uint32_t bench_n;	   /* VMM_GUEST_BENCH_PIO: how many writes */
	uint32_t mmio_window_base; /* where the guest may place 32-bit BARs ... */
	uint32_t mmio_window_last; /* ... inclusive end */
	uint32_t nr_cpus;	   /* vCPUs running the guest (local APIC ids 0..n-1) */
	uint32_t ecam_base;	   /* PCI Express ECAM window (bus 0 first), 0 if none */
};

/* Most vCPUs the guest handles (start.S gives each a 16 KiB stack). */
#define VMM_GUEST_MAX_CPUS 8

#endif
