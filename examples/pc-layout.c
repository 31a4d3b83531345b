/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmres-pc-layout: lay out the resources of a plausible x86 PC with the public
 * allocators alone (vmres/addr.h, vmres/ids.h) and print them the way Linux
 * shows them in /proc/ioports, /proc/iomem and /proc/interrupts.
 *
 *   port I/O   [0, 0xFFFF]       legacy devices at their fixed ports, PCI I/O
 *                                BARs first fit from 0x1000
 *   MMIO       [0xC000_0000, 0xFFFF_FFFF]  the 32-bit PCI hole: IOAPIC, HPET,
 *                                LAPIC fixed, BARs first fit aligned to size
 *              [0x80_0000_0000, 0xFF_FFFF_FFFF]  64-bit prefetchable window
 *   GSIs       [0, 23]           ISA IRQs fixed, PCI INTx from 16 up
 *   MSI        [24, 255]         per-device vectors and an aligned block
 *
 * Owner tags are indexes into owners[]. Exits non-zero if any allocation fails.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmres/addr.h>
#include <vmres/ids.h>

enum owner {
	DMA1,
	PIC1,
	PIT,
	KBD,
	RTC,
	DMA_PAGE,
	PIC2,
	DMA2,
	FPU,
	COM1,
	COM2,
	COM3,
	COM4,
	VGA,
	PCI_CONF1,
	IOAPIC,
	HPET,
	LAPIC,
	ACPI,
	MOUSE,
	IDE0,
	IDE1,
	CASCADE,
	VIRTIO_NET,
	VIRTIO_BLK,
	NVME,
	GPU,
	N_OWNERS
};

static const char *const owners[N_OWNERS] = {
	[DMA1] = "dma1",
	[PIC1] = "pic1",
	[PIT] = "timer0",
	[KBD] = "keyboard",
	[RTC] = "rtc0",
	[DMA_PAGE] = "dma page reg",
	[PIC2] = "pic2",
	[DMA2] = "dma2",
	[FPU] = "fpu",
	[COM1] = "serial (COM1)",
	[COM2] = "serial (COM2)",
	[COM3] = "serial (COM3)",
	[COM4] = "serial (COM4)",
	[VGA] = "vga+",
	[PCI_CONF1] = "PCI conf1",
	[IOAPIC] = "IOAPIC 0",
	[HPET] = "HPET 0",
	[LAPIC] = "Local APIC",
	[ACPI] = "acpi",
	[MOUSE] = "i8042 mouse",
	[IDE0] = "ide0",
	[IDE1] = "ide1",
	[CASCADE] = "cascade",
	[VIRTIO_NET] = "0000:00:03.0 virtio-net",
	[VIRTIO_BLK] = "0000:00:04.0 virtio-blk",
	[NVME] = "0000:00:05.0 nvme",
	[GPU] = "0000:00:06.0 gpu",
};

static int failures;

/* Report a failed call and remember it for the exit status. */
static int check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "vmres-pc-layout: %s: %s (%s)\n", what, vmres_strerror(rc),
			vmres_errname(rc));
		failures++;
	}
	return rc;
}

static void reserve(struct vmres_addr *a, uint64_t base, uint64_t size, enum owner o)
{
	char what[96];

	snprintf(what, sizeof(what), "reserve %s at %#" PRIx64, owners[o], base);
	check(vmres_addr_reserve(a, base, size, o), what);
}

/* First fit of a BAR: size-aligned, at or above @min. */
static uint64_t bar(struct vmres_addr *a, uint64_t size, uint64_t min, enum owner o)
{
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint64_t base = 0;
	char what[96];

	req.size = size;
	req.align = size;
	req.min = min;
	req.owner = o;
	snprintf(what, sizeof(what), "BAR of %#" PRIx64 " bytes for %s", size, owners[o]);
	check(vmres_addr_alloc(a, &req, &base), what);
	return base;
}

struct print_ctx {
	int digits;
};

static int print_range(void *ctx, const struct vmres_addr_entry *e)
{
	const struct print_ctx *p = ctx;
	const char *name = e->owner < N_OWNERS ? owners[e->owner] : "?";

	printf("  %0*" PRIx64 "-%0*" PRIx64 " : %s\n", p->digits, e->base, p->digits, e->last,
	       name);
	return 0;
}

static void print_space(const char *title, const struct vmres_addr *a, int digits)
{
	struct print_ctx p = {digits};

	printf("%s\n", title);
	check(vmres_addr_foreach(a, print_range, &p), title);
}

/* Interrupt numbers and their owners (vmres_ids keeps no owner). */
struct irq_owner {
	const struct vmres_ids *space;
	uint32_t first;
	uint32_t count;
	enum owner owner;
};

#define MAX_IRQS 64
static struct irq_owner irqs[MAX_IRQS];
static unsigned n_irqs;

static void note_irq(const struct vmres_ids *space, uint32_t first, uint32_t count, enum owner o)
{
	if (n_irqs < MAX_IRQS)
		irqs[n_irqs++] = (struct irq_owner){space, first, count, o};
}

static void reserve_gsi(struct vmres_ids *gsi, uint32_t n, enum owner o)
{
	char what[64];

	snprintf(what, sizeof(what), "reserve GSI %u for %s", n, owners[o]);
	if (check(vmres_ids_reserve(gsi, n), what) == 0)
		note_irq(gsi, n, 1, o);
}

static void alloc_irq(struct vmres_ids *ids, uint32_t from, enum owner o)
{
	uint32_t n;

	if (check(vmres_ids_alloc_from(ids, from, &n), owners[o]) == 0)
		note_irq(ids, n, 1, o);
}

static void alloc_irq_block(struct vmres_ids *ids, uint32_t count, enum owner o)
{
	uint32_t first;

	if (check(vmres_ids_alloc_block(ids, count, &first), owners[o]) == 0)
		note_irq(ids, first, count, o);
}

/* Walk what the allocator holds and name each number from irqs[]. */
static void print_irqs(const char *kind, const struct vmres_ids *ids)
{
	struct vmres_ids_stats st;
	uint32_t n, from;

	if (check(vmres_ids_stats(ids, &st), kind) < 0)
		return;
	printf("  %s [%u-%u], %" PRIu64 " in use:\n", kind, st.lo, st.hi, st.used);
	for (from = st.lo; vmres_ids_next(ids, from, &n) == 0; from = n + 1) {
		const char *name = "?";
		const char *block = "";

		for (unsigned k = 0; k < n_irqs; k++)
			if (irqs[k].space == ids && n >= irqs[k].first &&
			    n - irqs[k].first < irqs[k].count) {
				name = owners[irqs[k].owner];
				block = irqs[k].count > 1 ? " (aligned block)" : "";
			}
		printf("  %4s %3u : %s%s\n", kind, n, name, block);
		if (n == st.hi)
			break;
	}
}

int main(void)
{
	struct vmres_addr *pio = NULL, *mmio32 = NULL, *mmio64 = NULL;
	struct vmres_ids *gsi = NULL, *msi = NULL;

	if (check(vmres_addr_new(0, 0xFFFF, &pio), "PIO space") ||
	    check(vmres_addr_new(0xC0000000, 0xFFFFFFFF, &mmio32), "32-bit MMIO hole") ||
	    check(vmres_addr_new(0x8000000000, 0xFFFFFFFFFF, &mmio64), "64-bit MMIO window") ||
	    check(vmres_ids_new(0, 23, &gsi), "GSIs") || check(vmres_ids_new(24, 255, &msi), "MSI"))
		goto out;

	/* Legacy port I/O at the addresses every PC has used since the AT. */
	reserve(pio, 0x00, 0x20, DMA1);
	reserve(pio, 0x20, 2, PIC1);
	reserve(pio, 0x40, 4, PIT);
	reserve(pio, 0x60, 1, KBD);
	reserve(pio, 0x64, 1, KBD);
	reserve(pio, 0x70, 2, RTC);
	reserve(pio, 0x80, 0x10, DMA_PAGE);
	reserve(pio, 0xA0, 2, PIC2);
	reserve(pio, 0xC0, 0x20, DMA2);
	reserve(pio, 0xF0, 0x10, FPU);
	reserve(pio, 0x2E8, 8, COM4);
	reserve(pio, 0x2F8, 8, COM2);
	reserve(pio, 0x3C0, 0x20, VGA);
	reserve(pio, 0x3E8, 8, COM3);
	reserve(pio, 0x3F8, 8, COM1);
	reserve(pio, 0xCF8, 8, PCI_CONF1);
	/* PCI I/O BARs: first fit above the legacy area, aligned to their size. */
	bar(pio, 0x20, 0x1000, VIRTIO_NET);
	bar(pio, 0x40, 0x1000, VIRTIO_BLK);
	bar(pio, 0x100, 0x1000, GPU);

	/* The 32-bit hole: fixed chipset pages, then BARs first fit. */
	reserve(mmio32, 0xFEC00000, 0x1000, IOAPIC);
	reserve(mmio32, 0xFED00000, 0x400, HPET);
	reserve(mmio32, 0xFEE00000, 0x1000, LAPIC);
	bar(mmio32, 0x1000000, 0, GPU);
	bar(mmio32, 0x1000, 0, VIRTIO_NET);
	bar(mmio32, 0x4000, 0, NVME);
	bar(mmio32, 0x1000, 0, VIRTIO_BLK);
	/* A 256 MiB prefetchable BAR above 4 GiB. */
	bar(mmio64, 0x10000000, 0, GPU);

	/* ISA interrupts at their fixed GSIs; PCI INTx from 16. */
	reserve_gsi(gsi, 0, PIT);
	reserve_gsi(gsi, 1, KBD);
	reserve_gsi(gsi, 2, CASCADE);
	reserve_gsi(gsi, 3, COM2);
	reserve_gsi(gsi, 4, COM1);
	reserve_gsi(gsi, 8, RTC);
	reserve_gsi(gsi, 9, ACPI);
	reserve_gsi(gsi, 12, MOUSE);
	reserve_gsi(gsi, 14, IDE0);
	reserve_gsi(gsi, 15, IDE1);
	alloc_irq(gsi, 16, VIRTIO_NET);
	alloc_irq(gsi, 16, VIRTIO_BLK);
	alloc_irq(gsi, 16, GPU);
	/* MSI: single vectors, and a multi-message block of 4 (aligned to 4). */
	alloc_irq(msi, 0, VIRTIO_NET);
	alloc_irq(msi, 0, VIRTIO_NET);
	alloc_irq_block(msi, 4, NVME);
	alloc_irq(msi, 0, VIRTIO_BLK);
	alloc_irq(msi, 0, GPU);

	print_space("ioports:", pio, 4);
	print_space("iomem (32-bit PCI hole):", mmio32, 8);
	print_space("iomem (64-bit window):", mmio64, 10);
	printf("interrupts:\n");
	print_irqs("GSI", gsi);
	print_irqs("MSI", msi);
	check(vmres_addr_validate(pio), "validate PIO");
	check(vmres_addr_validate(mmio32), "validate MMIO32");
	check(vmres_addr_validate(mmio64), "validate MMIO64");
	check(vmres_ids_validate(gsi), "validate GSIs");
	check(vmres_ids_validate(msi), "validate MSI");
out:
	vmres_addr_free(pio);
	vmres_addr_free(mmio32);
	vmres_addr_free(mmio64);
	vmres_ids_free(gsi);
	vmres_ids_free(msi);
	if (failures)
		fprintf(stderr, "vmres-pc-layout: %d call(s) failed\n", failures);
	return failures ? 1 : 0;
}
