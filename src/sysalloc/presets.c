/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ready-made pool layouts. Each fixed number below names its source; the
 * pre-reserved ranges belong to VMRES_SYSALLOC_OWNER_PLATFORM ("platform") and
 * carry the label a dump shows.
 */
#include "sysalloc_int.h"

#include <stddef.h>

struct fixed {
	const char *pool;
	uint64_t base;
	uint64_t size;
	const char *label;
};

struct pool_def {
	const char *name;
	enum vmres_res_kind kind;
	enum vmres_space space; /* VMRES_RES_ADDR only */
	uint64_t base, last;
};

/*
 * x86_64 (PC).
 *
 * Port I/O: the PC/AT port map (IBM PC AT Technical Reference, "I/O Address
 * Map"), as Linux reserves it in arch/x86/kernel/setup.c standard_io_resources[]
 * (dma1, pic1, timer0, timer1, keyboard 0x60 and 0x64, dma page reg, pic2, dma2,
 * fpu); the MC146818 RTC index/data ports 0x70-0x71 (Linux RTC_PORT(0) = 0x70,
 * two ports); the 16550 UARTs at their conventional bases COM1 0x3f8, COM2 0x2f8,
 * COM3 0x3e8, COM4 0x2e8, 8 ports each (Linux arch/x86/include/asm/serial.h);
 * PCI configuration mechanism #1, CONFIG_ADDRESS 0xcf8 and CONFIG_DATA 0xcfc,
 * 8 ports (PCI Local Bus Specification 3.0, section 3.2.2.3.2).
 *
 * MMIO below 4 GiB: a 1 GiB hole [3 GiB, 4 GiB), the layout cloud-hypervisor
 * uses (its 32-bit device area starts at 0xc000_0000). Inside it, at fixed
 * addresses no BAR may take: the IOAPIC at 0xfec00000, 4 KiB (Intel 82093AA
 * datasheet; KVM's IOAPIC_DEFAULT_BASE_ADDRESS); the HPET at 0xfed00000, 1 KiB of
 * registers (IA-PC HPET specification 1.0a, "Register Definition"; Linux's
 * ACPI HPET parsing in arch/x86/kernel/acpi/boot.c reserves 1 KiB); the local
 * APIC at 0xfee00000, reserved as the whole 1 MiB 0xfee00000-0xfeefffff because
 * every DWORD write in that range is an MSI (Intel SDM vol. 3A, "Message Address
 * Register Format": bits 31-20 are 0xfee), not only the 4 KiB of APIC registers
 * that Linux's lapic_resource covers.
 *
 * PCI Express ECAM: 256 MiB at 0xe000_0000 (256 buses of 1 MiB, PCI Express Base
 * 6.0, 7.2.2), pre-reserved inside the hole as the fixed devices are, where
 * Firecracker-style and QEMU "microvm"/pc-i440fx layouts with an MCFG put it;
 * it leaves 32-bit BARs [0xc000_0000, 0xdfff_ffff] and [0xf000_0000,
 * 0xfebf_ffff]. (q35's 0xb000_0000 would move the lowmem limit that VMMs
 * built on this preset assume: RAM up to 3 GiB.)
 *
 * MMIO above 4 GiB: 32 GiB at 64 GiB, the size QEMU's q35 gives its 64-bit PCI
 * hole by default (pci-hole64-size); it ends below 2^39, so it fits CPUs with a
 * 39-bit physical address space. Guest RAM above 4 GiB must end below 64 GiB;
 * a VMM with larger guests composes its own pools.
 *
 * GSIs: KVM's IOAPIC has 24 pins (KVM_IOAPIC_NUM_PINS), GSIs 0-23; the in-kernel
 * routing table holds KVM_MAX_IRQ_ROUTES = 4096 entries (include/linux/kvm_host.h),
 * so MSI routes use GSIs 24-4095. Of the ISA IRQs (the PC/AT assignment, as
 * ACPI's MADT interrupt source overrides assume), those of the legacy devices
 * whose ports are reserved above are pre-reserved: 0 timer (PIT; 2 is the PIC
 * cascade, to which ACPI's override routes IRQ0 on IOAPIC systems), 1 keyboard,
 * 3 com2 (shared by COM4), 4 com1 (shared by COM3), 8 rtc, 12 mouse (i8042 AUX),
 * 13 fpu. Free for devices: 5, 6, 7, 9, 10, 11, 14, 15 (no floppy, LPT or IDE
 * here) and 16-23 (PCI INTx).
 */
static const struct pool_def x86_pools[] = {
	{"pio", VMRES_RES_ADDR, VMRES_SPACE_PIO, 0x0, 0xffff},
	{"mmio32", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0xc0000000, 0xffffffff},
	{"mmio64", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x1000000000, 0x17ffffffff},
	{"gsi-legacy", VMRES_RES_IRQ, 0, 0, 23},
	{"gsi-msi", VMRES_RES_MSI, 0, 24, 4095},
	{"device-id", VMRES_RES_ID, 0, 0, UINT32_MAX},
};

static const struct fixed x86_fixed[] = {
	{"pio", 0x00, 0x20, "dma1"},
	{"pio", 0x20, 0x02, "pic1"},
	{"pio", 0x40, 0x04, "timer0"},
	{"pio", 0x50, 0x04, "timer1"},
	{"pio", 0x60, 0x01, "keyboard"},
	{"pio", 0x64, 0x01, "keyboard"},
	{"pio", 0x70, 0x02, "rtc"},
	{"pio", 0x80, 0x10, "dma page reg"},
	{"pio", 0xa0, 0x02, "pic2"},
	{"pio", 0xc0, 0x20, "dma2"},
	{"pio", 0xf0, 0x10, "fpu"},
	{"pio", 0x2e8, 0x08, "com4"},
	{"pio", 0x2f8, 0x08, "com2"},
	{"pio", 0x3e8, 0x08, "com3"},
	{"pio", 0x3f8, 0x08, "com1"},
	{"pio", 0xcf8, 0x08, "pci conf1"},
	{"mmio32", 0xfec00000, 0x1000, "ioapic"},
	{"mmio32", 0xfed00000, 0x400, "hpet"},
	{"mmio32", 0xfee00000, 0x100000, "lapic/msi"},
	{"mmio32", 0xe0000000, 0x10000000, "pci ecam"},
	{"gsi-legacy", 0, 1, "timer"},
	{"gsi-legacy", 1, 1, "keyboard"},
	{"gsi-legacy", 2, 1, "cascade"},
	{"gsi-legacy", 3, 1, "com2"},
	{"gsi-legacy", 4, 1, "com1"},
	{"gsi-legacy", 8, 1, "rtc"},
	{"gsi-legacy", 12, 1, "mouse"},
	{"gsi-legacy", 13, 1, "fpu"},
};

/*
 * aarch64, after QEMU's "virt" machine (hw/arm/virt.c, base_memmap[] and
 * a15irqmap[]): devices live below RAM, which starts at 1 GiB. The low window
 * [0x0800_0000, 0x3fff_ffff] starts after the 128 MiB flash; in it the GICv3
 * distributor (0x0800_0000, 64 KiB), the redistributor region (0x080a_0000,
 * 0xf6_0000 bytes: 123 redistributors of 128 KiB), the PL011 UART
 * (0x0900_0000, 4 KiB) and the PL031 RTC (0x0901_0000, 4 KiB) are fixed.
 *
 * PCI: QEMU virt's generic PCIe host ("pci-host-ecam-generic"). Its 32-bit
 * MMIO window VIRT_PCIE_MMIO, [0x1000_0000, 0x3efe_ffff], is the pool
 * "pci-mmio32" (so "mmio32", the platform devices', ends at 0x0fff_ffff); its
 * 64-bit window VIRT_HIGH_PCIE_MMIO, 512 GiB at 512 GiB, is "mmio64"; its ECAM
 * VIRT_HIGH_PCIE_ECAM, 256 MiB at 0x40_1000_0000 (256 buses), is "pci-ecam",
 * pre-reserved whole. (The 64 KiB PCI I/O window at 0x3eff_0000 and the
 * 16 MiB low ECAM at 0x3f00_0000, used when highmem is off, are left out.)
 *
 * Interrupts: GIC SPIs are INTIDs 32-1019 (GICv3 architecture specification,
 * IHI 0069, "INTIDs": 1020-1023 are special); KVM_IRQ_LINE and irqchip routes
 * name an SPI by INTID - 32. QEMU virt wires the UART to SPI 1 (INTID 33) and the
 * RTC to SPI 2 (INTID 34).
 */
static const struct pool_def arm_pools[] = {
	{"mmio32", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x08000000, 0x0fffffff},
	{"pci-mmio32", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x10000000, 0x3efeffff},
	{"mmio64", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x8000000000, 0xffffffffff},
	{"pci-ecam", VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x4010000000, 0x401fffffff},
	{"gsi-spi", VMRES_RES_IRQ, 0, 32, 1019},
	{"device-id", VMRES_RES_ID, 0, 0, UINT32_MAX},
};

static const struct fixed arm_fixed[] = {
	{"mmio32", 0x08000000, 0x10000, "gic-dist"},
	{"mmio32", 0x080a0000, 0xf60000, "gic-redist"},
	{"mmio32", 0x09000000, 0x1000, "uart"},
	{"mmio32", 0x09010000, 0x1000, "rtc"},
	{"pci-ecam", 0x4010000000, 0x10000000, "pci ecam"},
	{"gsi-spi", 33, 1, "uart"},
	{"gsi-spi", 34, 1, "rtc"},
};

static int build(const struct pool_def *pools, size_t n_pools, const struct fixed *fixed,
		 size_t n_fixed, struct vmres_sysalloc **out)
{
	struct vmres_sysalloc *sa;
	int ret;

	if (!out)
		return VMRES_EINVAL;
	ret = vmres_sysalloc_new(&sa);
	if (ret)
		return ret;
	for (size_t i = 0; i < n_pools && !ret; i++) {
		const struct pool_def *d = &pools[i];

		if (d->kind == VMRES_RES_ADDR)
			ret = vmres_sysalloc_add_addr_pool(sa, d->name, d->space, d->base, d->last);
		else
			ret = vmres_sysalloc_add_id_pool(sa, d->name, d->kind, (uint32_t)d->base,
							 (uint32_t)d->last);
	}
	if (!ret)
		ret = vmres_sysalloc_set_owner_name(sa, VMRES_SYSALLOC_OWNER_PLATFORM, "platform");
	for (size_t i = 0; i < n_fixed && !ret; i++)
		ret = vmres_sysalloc_reserve(sa, fixed[i].pool, fixed[i].base, fixed[i].size, 0,
					     VMRES_SYSALLOC_OWNER_PLATFORM, fixed[i].label, NULL);
	if (ret) {
		vmres_sysalloc_free(sa);
		return ret;
	}
	*out = sa;
	return 0;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int vmres_sysalloc_new_x86_64(struct vmres_sysalloc **out)
{
	return build(x86_pools, ARRAY_SIZE(x86_pools), x86_fixed, ARRAY_SIZE(x86_fixed), out);
}

int vmres_sysalloc_new_aarch64(struct vmres_sysalloc **out)
{
	return build(arm_pools, ARRAY_SIZE(arm_pools), arm_fixed, ARRAY_SIZE(arm_fixed), out);
}
