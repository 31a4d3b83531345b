/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Booting a Linux kernel the way its x86 boot protocol describes it
 * (Documentation/arch/x86/boot.rst and zero-page.rst of the kernel): the
 * bzImage's protected-mode part at 1 MiB, a zero page (boot_params) holding the
 * setup header, the command line, the initramfs and the e820 memory map, and
 * vCPU 0 entering at the 64-bit entry point in long mode, with identity-mapped
 * page tables and a GDT of the protocol's selectors. An Intel MultiProcessor
 * table (version 1.4) in the BIOS area tells the kernel about the vCPUs, the
 * IOAPIC and the ISA interrupt lines, as a PC's firmware would without ACPI.
 *
 *     guest physical            what
 *     0x00500 - 0x0051f         GDT: null, null, 0x10 64-bit code, 0x18 data
 *     0x07000 - 0x07fff         zero page (boot_params)
 *     0x09000 - 0x0efff         page tables: PML4, PDPT, 4 PDs (first 4 GiB, 2 MiB pages)
 *     0x20000 -                 command line
 *     0x9fc00 - 0xfffff         reserved in e820 (EBDA, BIOS area)
 *     0xf0000 -                 MP floating pointer, then the MP configuration table
 *     0x100000 -                the kernel (its protected-mode part)
 *     top of RAM - size         the initramfs, page aligned
 */
#ifndef VMM_X86BOOT_H
#define VMM_X86BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

/* e820 entry types (zero-page.rst / ACPI address range types). */
#define VMM_E820_RAM	  1u
#define VMM_E820_RESERVED 2u
#define VMM_E820_MAX	  128u /* entries the zero page holds */

struct vmm_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* The IOAPIC the MP table names (KVM's in-kernel one) and its pins. */
#define VMM_IOAPIC_BASE 0xfec00000u
#define VMM_LAPIC_ADDR	0xfee00000u

struct vmm_x86boot_opts {
	const char *kernel;  /* path of a bzImage (boot protocol 2.12 or later, 64-bit) */
	const char *initrd;  /* path of the initramfs, or NULL */
	const char *cmdline; /* the kernel command line */
	const struct vmm_e820 *e820;
	size_t n_e820; /* at most VMM_E820_MAX */
};

/* What was loaded where, for the VMM to print. */
struct vmm_x86boot_info {
	uint16_t protocol;    /* boot protocol version (0x020f = 2.15) */
	uint64_t kernel_size; /* bytes of the protected-mode part at 1 MiB */
	uint64_t initrd_addr, initrd_size;
	char version[128]; /* the kernel's version string, "" if not found */
};

/*
 * Load the kernel, initramfs, command line, zero page, page tables, GDT and MP
 * table (for vm->nr_vcpus vCPUs) into vm->ram, and set vm->boot64 and vm->boot
 * for the backend's init(). 0, or -1 with a message on stderr (an unreadable
 * file, not a 64-bit bzImage, too little RAM).
 */
int vmm_x86boot_load(struct vmm *vm, const struct vmm_x86boot_opts *o,
		     struct vmm_x86boot_info *info);

#endif
