/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The demo guest: a freestanding 32-bit protected-mode program, the same binary on
 * KVM and on the software CPU. It talks only to hardware as an OS would: a 16550
 * UART on COM1, PCI configuration mechanism #1 and the ECAM window, a test
 * device's BARs, MSI and MSI-X, its notify registers and shared memory, the
 * local APIC. Each check that fails sets one bit of the status word it reports
 * through the control port at the end; 0 means every check passed.
 */
#include <stdbool.h>
#include <stdint.h>

#include "bootinfo.h"

#define COM1	      0x3f8
#define UART_THR      0
#define UART_LSR      5
#define UART_LSR_THRE 0x20

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

#define PCI_VENDOR	    0x00
#define PCI_COMMAND	    0x04
#define PCI_STATUS	    0x06
#define PCI_CLASS	    0x08
#define PCI_BAR0	    0x10
#define PCI_CAP_PTR	    0x34
#define PCI_CMD_MEM	    0x0002
#define PCI_CMD_MASTER	    0x0004
#define PCI_STATUS_CAPS	    0x0010
#define PCI_CAP_MSI	    0x05
#define PCI_MSI_CTRL_ENABLE 0x0001
#define PCI_MSI_CTRL_64BIT  0x0080
#define PCI_CAP_EXP	    0x10
#define PCI_CAP_MSIX	    0x11
#define PCI_MSIX_CTRL	    2 /* message control: table size - 1, mask all, enable */
#define PCI_MSIX_TABLE	    4 /* BAR indicator (bits 2:0) | offset */
#define PCI_MSIX_PBA	    8
#define PCI_MSIX_ENABLE	    0x8000
#define PCI_MSIX_MASKALL    0x4000
#define PCI_EXT_CAP_START   0x100
#define MSIX_ENTRY_DATA	    8
#define MSIX_ENTRY_CTRL	    12
#define MSIX_MASKED	    1u

#define LAPIC_BASE	 0xfee00000u
#define LAPIC_EOI	 0xb0
#define LAPIC_SVR	 0xf0
#define LAPIC_SVR_ENABLE 0x100

/* Status bits: one per check. */
#define FAIL_BOOTINFO  (1u << 0)  /* no boot table */
#define FAIL_PCI_ENUM  (1u << 1)  /* host bridge or test device missing */
#define FAIL_BAR_SIZE  (1u << 2)  /* BAR0 does not size as a 4 KiB 32-bit MMIO BAR */
#define FAIL_BAR_MOVE  (1u << 3)  /* BAR0 does not read back the new address */
#define FAIL_NEW_ADDR  (1u << 4)  /* the device does not answer at the new address */
#define FAIL_OLD_ADDR  (1u << 5)  /* the old address does not read all ones */
#define FAIL_MSI_CAP   (1u << 6)  /* no MSI capability */
#define FAIL_MSI       (1u << 7)  /* interrupts not counted as raised */
#define FAIL_BAD_MOVE  (1u << 8)  /* an invalid move changed the BAR or lost the device */
#define FAIL_AP	       (1u << 9)  /* another CPU saw a wrong value or did not report */
#define FAIL_ECAM      (1u << 10) /* ECAM does not read what conf1 reads */
#define FAIL_MSIX      (1u << 11) /* MSI-X set-up, kicks or vectors before the move */
#define FAIL_MSIX_MOVE (1u << 12) /* kicks or MSI-X vectors lost, or heard at the old place */
#define FAIL_SHM       (1u << 13) /* the memory BAR does not show the host buffer */
#define FAIL_EXCEPTION (1u << 31) /* a CPU exception; the vector is in the low bits */

#define MSI_RINGS     3
#define MSI_WAIT_SPIN 20000000u
#define AP_START_SPIN 200000000u

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uint32_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint32_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

/* ---- console -------------------------------------------------------------- */

static void con_putc(char c)
{
	for (unsigned spin = 0; spin < 100000; spin++)
		if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
			break;
	outb(COM1 + UART_THR, (uint8_t)c);
}

static void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

static void con_puthex(uint32_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = digits - 1; i >= 0; i--)
		con_putc(hex[(v >> (4 * i)) & 0xf]);
}

static void con_putdec(uint32_t v)
{
	char buf[11];
	int i = 0;

	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		con_putc(buf[--i]);
}

static void check(bool ok, uint32_t bit, uint32_t *status, const char *what)
{
	con_puts(ok ? "guest: ok   " : "guest: FAIL ");
	con_puts(what);
	con_putc('\n');
	if (!ok)
		*status |= bit;
}

/* ---- run control ---------------------------------------------------------- */

static const struct vmm_bootinfo *const boot = (const struct vmm_bootinfo *)VMM_BOOTINFO_ADDR;

static uint16_t ctl_port(void)
{
	return (uint16_t)boot->ctl_port;
}

static __attribute__((noreturn)) void guest_exit(uint32_t status)
{
	outl(ctl_port() + VMM_CTL_EXIT, status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* Called by exc_common (start.S) with {vector, error code, eip, cs, eflags}. */
void guest_exception(const uint32_t *frame);
void guest_exception(const uint32_t *frame)
{
	con_puts("guest: exception ");
	con_putdec(frame[0]);
	con_puts(" error ");
	con_puthex(frame[1], 8);
	con_puts(" at eip ");
	con_puthex(frame[2], 8);
	con_putc('\n');
	guest_exit(FAIL_EXCEPTION | frame[0]);
}

/* ---- interrupts ----------------------------------------------------------- */

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t zero;
	uint8_t type_attr;
	uint16_t offset_hi;
};

/* What interrupts arrive from: the MSI, MSI-X vector 0, 1 (start.S's order). */
enum irq_source { IRQ_MSI, IRQ_MSIX0, IRQ_MSIX1, IRQ_SOURCES };

static struct idt_gate idt[256];
static volatile uint32_t irq_count[IRQ_SOURCES];

extern char msi_entry[], msix0_entry[], msix1_entry[];
/* start.S: the entry stubs of exceptions 0..31. */
extern void *const exc_table[32];

static void set_gate(unsigned vector, void *entry)
{
	uint32_t off = (uint32_t)entry;

	idt[vector].offset_lo = (uint16_t)off;
	idt[vector].selector = 0x08;
	idt[vector].zero = 0;
	idt[vector].type_attr = 0x8e; /* present, ring 0, 32-bit interrupt gate */
	idt[vector].offset_hi = (uint16_t)(off >> 16);
}

static void idt_load(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint32_t base;
	} desc = {sizeof(idt) - 1, (uint32_t)idt};

	__asm__ volatile("lidt %0" : : "m"(desc));
}

static void idt_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		set_gate(v, exc_table[v]);
	set_gate(VMM_GUEST_MSI_VECTOR, msi_entry);
	set_gate(VMM_GUEST_MSIX_VECTOR + 0, msix0_entry);
	set_gate(VMM_GUEST_MSIX_VECTOR + 1, msix1_entry);
	idt_load();
}

/* Called by the entries of start.S with interrupts off. */
void guest_irq(uint32_t source);
void guest_irq(uint32_t source)
{
	if (source < IRQ_SOURCES)
		irq_count[source]++;
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

/* ---- PCI configuration mechanism #1 --------------------------------------- */

static uint32_t pci_addr(unsigned dev, unsigned off)
{
	return 0x80000000u | (dev << 11) | (off & 0xfc);
}

static uint32_t pci_read32(unsigned dev, unsigned off)
{
	outl(PCI_ADDR, pci_addr(dev, off));
	return inl(PCI_DATA);
}

static uint16_t pci_read16(unsigned dev, unsigned off)
{
	outl(PCI_ADDR, pci_addr(dev, off));
	return inw((uint16_t)(PCI_DATA + (off & 2)));
}

static uint8_t pci_read8(unsigned dev, unsigned off)
{
	outl(PCI_ADDR, pci_addr(dev, off));
	return inb((uint16_t)(PCI_DATA + (off & 3)));
}

static void pci_write32(unsigned dev, unsigned off, uint32_t v)
{
	outl(PCI_ADDR, pci_addr(dev, off));
	outl(PCI_DATA, v);
}

static void pci_write16(unsigned dev, unsigned off, uint16_t v)
{
	outl(PCI_ADDR, pci_addr(dev, off));
	outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

#define PCI_BARS 6

struct pci_found {
	bool present;
	unsigned slot;
	uint32_t bar0;		/* address bits of a memory BAR0, 0 if none */
	uint32_t bar1;		/* address bits of an I/O BAR1, 0 if none */
	uint32_t bar[PCI_BARS]; /* address bits of each BAR, 0 if none */
	bool bar_io[PCI_BARS];	/* an I/O BAR */
};

static uint32_t bar_address(uint32_t bar)
{
	return (bar & 1) ? bar & ~0x3u : bar & ~0xfu;
}

/* Bus 0, function 0 of each slot: print what answers, remember ours. */
static void pci_enumerate(struct pci_found *bridge, struct pci_found *testdev)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read32(dev, PCI_VENDOR);
		uint32_t class, bar[PCI_BARS];
		struct pci_found *f = 0;

		if ((id & 0xffff) == 0xffff)
			continue;
		class = pci_read32(dev, PCI_CLASS) >> 8;
		con_puts("guest: pci 00:");
		con_puthex(dev, 2);
		con_puts(".0 ");
		con_puthex(id & 0xffff, 4);
		con_putc(':');
		con_puthex(id >> 16, 4);
		con_puts(" class ");
		con_puthex(class, 6);
		for (unsigned i = 0; i < PCI_BARS; i++) {
			bar[i] = pci_read32(dev, PCI_BAR0 + 4 * i);
			if (!bar_address(bar[i]))
				continue;
			con_puts(" bar");
			con_putdec(i);
			con_puts(bar[i] & 1 ? " io 0x" : " mmio 0x");
			con_puthex(bar_address(bar[i]), bar[i] & 1 ? 4 : 8);
		}
		con_putc('\n');
		if (class >> 8 == 0x0600 && !bridge->present)
			f = bridge;
		else if (id == (VMM_TESTDEV_DEVICE << 16 | VMM_TESTDEV_VENDOR))
			f = testdev;
		if (!f)
			continue;
		f->present = true;
		f->slot = dev;
		f->bar0 = (bar[0] & 1) ? 0 : bar_address(bar[0]);
		f->bar1 = (bar[1] & 1) ? bar_address(bar[1]) : 0;
		for (unsigned i = 0; i < PCI_BARS; i++) {
			f->bar[i] = bar_address(bar[i]);
			f->bar_io[i] = bar[i] & 1;
		}
	}
}

/* The size a memory BAR decodes, found the standard way: decoding off, all ones,
 * read back, restore. */
static uint32_t pci_bar_size(unsigned dev, unsigned bar)
{
	uint16_t cmd = pci_read16(dev, PCI_COMMAND);
	uint32_t old = pci_read32(dev, bar), mask;

	pci_write16(dev, PCI_COMMAND, cmd & ~PCI_CMD_MEM);
	pci_write32(dev, bar, 0xffffffffu);
	mask = pci_read32(dev, bar);
	pci_write32(dev, bar, old);
	pci_write16(dev, PCI_COMMAND, cmd);
	if ((mask & 0x7) != 0) /* I/O or 64-bit: not what we expect */
		return 0;
	return ~(mask & ~0xfu) + 1;
}

/* Find the MSI capability; 0 if there is none. */
static unsigned pci_find_msi(unsigned dev)
{
	unsigned ptr, hops = 0;

	if (!(pci_read16(dev, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	ptr = pci_read8(dev, PCI_CAP_PTR) & 0xfc;
	while (ptr >= 0x40 && hops++ < 48) {
		if (pci_read8(dev, ptr) == PCI_CAP_MSI)
			return ptr;
		ptr = pci_read8(dev, ptr + 1) & 0xfc;
	}
	return 0;
}

/* The memory ranges the guest knows to be taken (BARs where firmware put them,
 * and where the guest moved them). */
#define MAX_PLACED 16
static uint32_t placed_base[MAX_PLACED], placed_size[MAX_PLACED];
static unsigned n_placed;

static void mark_placed(uint32_t base, uint32_t size)
{
	if (base && n_placed < MAX_PLACED) {
		placed_base[n_placed] = base;
		placed_size[n_placed++] = size;
	}
}

static bool is_placed(uint32_t a, uint32_t size)
{
	for (unsigned i = 0; i < n_placed; i++)
		if (a < placed_base[i] + placed_size[i] && placed_base[i] < a + size)
			return true;
	return false;
}

/* The highest naturally aligned range of the window nothing is known to use;
 * 0 if there is none. */
static uint32_t choose_bar_address(uint32_t size)
{
	uint32_t a = (boot->mmio_window_last + 1 - size) & ~(size - 1);

	while (a >= boot->mmio_window_base && is_placed(a, size))
		a -= size;
	if (a < boot->mmio_window_base)
		return 0;
	mark_placed(a, size);
	return a;
}

static void wait_for_irq(enum irq_source src, uint32_t want)
{
	for (uint32_t spin = 0; spin < MSI_WAIT_SPIN && irq_count[src] < want; spin++)
		__asm__ volatile("sti; pause" ::: "memory");
}

/* ---- PCI Express: the ECAM window ----------------------------------------- */

static uint32_t ecam_addr(unsigned dev, unsigned off)
{
	return boot->ecam_base + (dev << 15) + off; /* bus 0, function 0 */
}

static uint32_t ecam_read32(unsigned dev, unsigned off)
{
	return mmio_read32(ecam_addr(dev, off));
}

static uint16_t ecam_read16(unsigned dev, unsigned off)
{
	return *(volatile uint16_t *)ecam_addr(dev, off);
}

static uint8_t ecam_read8(unsigned dev, unsigned off)
{
	return *(volatile uint8_t *)ecam_addr(dev, off);
}

static void ecam_write16(unsigned dev, unsigned off, uint16_t v)
{
	*(volatile uint16_t *)ecam_addr(dev, off) = v;
}

/* A capability of the standard list, walked through ECAM; 0 if none. */
static unsigned ecam_find_cap(unsigned dev, uint8_t id)
{
	unsigned ptr, hops = 0;

	if (!(ecam_read16(dev, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	ptr = ecam_read8(dev, PCI_CAP_PTR) & 0xfc;
	while (ptr >= 0x40 && hops++ < 48) {
		if (ecam_read8(dev, ptr) == id)
			return ptr;
		ptr = ecam_read8(dev, ptr + 1) & 0xfc;
	}
	return 0;
}

/* The 256 bytes conf1 reaches must read the same through ECAM; beyond them a
 * PCI Express function has its extended space (0 at 0x100: no extended
 * capabilities) and a conventional one reads all ones. */
static void ecam_check(const struct pci_found *bridge, const struct pci_found *dev,
		       uint32_t *status)
{
	const struct pci_found *fn[2] = {bridge, dev};
	unsigned differ = 0, exp;
	uint32_t ext[2];

	con_puts("guest: ECAM window at 0x");
	con_puthex(boot->ecam_base, 8);
	con_putc('\n');
	if (!boot->ecam_base) {
		check(false, FAIL_ECAM, status, "the VMM told where ECAM is");
		return;
	}
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned off = 0; off < 0x100; off += 4)
			differ += ecam_read32(fn[i]->slot, off) != pci_read32(fn[i]->slot, off);
		ext[i] = ecam_read32(fn[i]->slot, PCI_EXT_CAP_START);
	}
	exp = ecam_find_cap(dev->slot, PCI_CAP_EXP);
	con_puts("guest: test device: PCI Express capability at 0x");
	con_puthex(exp, 2);
	con_puts(", ECAM 0x100 reads 0x");
	con_puthex(ext[1], 8);
	con_puts(" (host bridge: 0x");
	con_puthex(ext[0], 8);
	con_puts(")\n");
	check(!differ, FAIL_ECAM, status, "ECAM reads 0x00-0xff of both functions as conf1 does");
	check(exp && ext[1] == 0 && ext[0] == 0xffffffffu, FAIL_ECAM, status,
	      "extended space: PCI Express function 0, conventional one all ones");
}

/* ---- MSI-X and notify queues ---------------------------------------------- */

struct msix_dev {
	unsigned slot;
	unsigned cap;	    /* MSI-X capability offset */
	unsigned table_bar; /* BAR of the table (and, here, of the PBA and the notify registers) */
	uint32_t table_off, pba_off;
	uint32_t base; /* where that BAR is now */
	uint32_t regs; /* where BAR0 (KICKS, ANSWERED) is now */
};

static uint32_t msix_entry(const struct msix_dev *x, unsigned v, unsigned field)
{
	return x->base + x->table_off + 16 * v + field;
}

static void msix_mask(const struct msix_dev *x, unsigned v, bool masked)
{
	mmio_write32(msix_entry(x, v, MSIX_ENTRY_CTRL), masked ? MSIX_MASKED : 0);
}

static bool msix_pending(const struct msix_dev *x, unsigned v)
{
	return mmio_read32(x->base + x->pba_off + 4 * (v / 32)) & (1u << (v % 32));
}

/* Kick queue @q at @base and wait for its vector; whether it came. */
static bool kick(const struct msix_dev *x, uint32_t base, unsigned q)
{
	uint32_t want = irq_count[IRQ_MSIX0 + q] + 1;

	mmio_write32(base + VMM_TESTDEV_NOTIFY(q), 1);
	wait_for_irq(IRQ_MSIX0 + q, want);
	return irq_count[IRQ_MSIX0 + q] == want && mmio_read32(x->regs + VMM_TESTDEV_KICKS(q)) != 0;
}

/* Linux's order: MSI off, MSI-X on with the function masked, program the
 * table, unmask the function. Capability writes through ECAM, a check of them
 * through conf1. Whether MSI-X is on. */
static bool msix_setup(struct msix_dev *x, const struct pci_found *dev, unsigned msi,
		       uint32_t *status)
{
	uint32_t table, pba;
	uint16_t ctrl;
	unsigned vectors;

	x->cap = ecam_find_cap(dev->slot, PCI_CAP_MSIX);
	if (!x->cap) {
		check(false, FAIL_MSIX, status, "MSI-X capability found");
		return false;
	}
	ctrl = ecam_read16(dev->slot, x->cap + PCI_MSIX_CTRL);
	table = ecam_read32(dev->slot, x->cap + PCI_MSIX_TABLE);
	pba = ecam_read32(dev->slot, x->cap + PCI_MSIX_PBA);
	vectors = (ctrl & 0x7ff) + 1u;
	x->slot = dev->slot;
	x->table_bar = table & 7;
	x->table_off = table & ~7u;
	x->pba_off = pba & ~7u;
	x->base = dev->bar[x->table_bar];
	con_puts("guest: MSI-X capability at 0x");
	con_puthex(x->cap, 2);
	con_puts(": ");
	con_putdec(vectors);
	con_puts(" vectors, table bar");
	con_putdec(x->table_bar);
	con_puts("+0x");
	con_puthex(x->table_off, 4);
	con_puts(", PBA bar");
	con_putdec(pba & 7);
	con_puts("+0x");
	con_puthex(x->pba_off, 4);
	con_putc('\n');
	if (vectors < VMM_TESTDEV_MSIX_VECTORS || (pba & 7) != x->table_bar ||
	    x->table_bar >= PCI_BARS || !x->base || dev->bar_io[x->table_bar]) {
		check(false, FAIL_MSIX, status, "MSI-X table and PBA in one memory BAR");
		return false;
	}
	if (msi)
		pci_write16(dev->slot, msi + 2,
			    pci_read16(dev->slot, msi + 2) & ~PCI_MSI_CTRL_ENABLE);
	pci_write16(dev->slot, PCI_COMMAND, pci_read16(dev->slot, PCI_COMMAND) | PCI_CMD_MASTER);
	ecam_write16(dev->slot, x->cap + PCI_MSIX_CTRL, PCI_MSIX_ENABLE | PCI_MSIX_MASKALL);
	for (unsigned v = 0; v < VMM_TESTDEV_MSIX_VECTORS; v++) {
		mmio_write32(msix_entry(x, v, 0), LAPIC_BASE); /* destination APIC id 0 */
		mmio_write32(msix_entry(x, v, 4), 0);
		mmio_write32(msix_entry(x, v, MSIX_ENTRY_DATA), VMM_GUEST_MSIX_VECTOR + v);
		msix_mask(x, v, false);
	}
	ecam_write16(dev->slot, x->cap + PCI_MSIX_CTRL, PCI_MSIX_ENABLE);
	ctrl = pci_read16(dev->slot, x->cap + PCI_MSIX_CTRL);
	check((ctrl & (PCI_MSIX_ENABLE | PCI_MSIX_MASKALL)) == PCI_MSIX_ENABLE &&
		      mmio_read32(msix_entry(x, 1, MSIX_ENTRY_DATA)) == VMM_GUEST_MSIX_VECTOR + 1,
	      FAIL_MSIX, status, "MSI-X enabled through ECAM (conf1 agrees), table programmed");
	return !*status;
}

/* Each queue: a kick answered by its vector; then with the vector masked, a
 * kick that the device answers into the PBA, delivered once on unmask. */
static void msix_before_move(const struct msix_dev *x, uint32_t *status)
{
	bool kicked = true, held = true;

	__asm__ volatile("sti");
	for (unsigned q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++)
		kicked &= kick(x, x->base, q);
	for (unsigned q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++) {
		uint32_t answered = mmio_read32(x->regs + VMM_TESTDEV_ANSWERED);
		uint32_t before = irq_count[IRQ_MSIX0 + q];

		msix_mask(x, q, true);
		mmio_write32(x->base + VMM_TESTDEV_NOTIFY(q), 1);
		for (uint32_t spin = 0; spin < MSI_WAIT_SPIN &&
					mmio_read32(x->regs + VMM_TESTDEV_ANSWERED) == answered;
		     spin++)
			__asm__ volatile("pause");
		held &= msix_pending(x, q) && irq_count[IRQ_MSIX0 + q] == before;
		msix_mask(x, q, false);
		wait_for_irq(IRQ_MSIX0 + q, before + 1);
		held &= irq_count[IRQ_MSIX0 + q] == before + 1 && !msix_pending(x, q);
	}
	__asm__ volatile("cli");
	con_puts("guest: MSI-X interrupts counted: vector 0: ");
	con_putdec(irq_count[IRQ_MSIX0]);
	con_puts(", vector 1: ");
	con_putdec(irq_count[IRQ_MSIX1]);
	con_putc('\n');
	check(kicked, FAIL_MSIX, status, "each queue's kick answered by its MSI-X vector");
	check(held, FAIL_MSIX, status, "masked vector: pending bit set, delivered once on unmask");
}

/* Move BAR @bar of @dev (decoding on); the new address, or 0 if refused. */
static uint32_t move_bar(const struct pci_found *dev, unsigned bar, uint32_t size, uint32_t *status,
			 uint32_t fail_bit)
{
	uint32_t to = choose_bar_address(size), got;

	con_puts("guest: moving BAR");
	con_putdec(bar);
	con_puts(" from 0x");
	con_puthex(dev->bar[bar], 8);
	con_puts(" to 0x");
	con_puthex(to, 8);
	con_putc('\n');
	if (!to) {
		check(false, fail_bit, status, "a free place in the window");
		return 0;
	}
	pci_write32(dev->slot, PCI_BAR0 + 4 * bar, to);
	got = pci_read32(dev->slot, PCI_BAR0 + 4 * bar) & ~0xfu;
	return got == to ? to : 0;
}

/* After the move: the table is at the new place with what the guest wrote,
 * nothing at the old one; a kick at the old place is not heard, one at the new
 * place is, and answered by its vector. The device's kick counters say
 * exactly how many kicks it heard. */
static void msix_after_move(struct msix_dev *x, uint32_t old, uint32_t *status)
{
	bool table = true, kicked = true, counted = true;

	for (unsigned v = 0; v < VMM_TESTDEV_MSIX_VECTORS; v++) {
		table &=
			mmio_read32(msix_entry(x, v, MSIX_ENTRY_DATA)) == VMM_GUEST_MSIX_VECTOR + v;
		table &= mmio_read32(old + x->table_off + 16 * v + MSIX_ENTRY_DATA) == 0xffffffffu;
	}
	check(table, FAIL_MSIX_MOVE, status, "MSI-X table at the new address, all ones at the old");
	__asm__ volatile("sti");
	for (unsigned q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++) {
		mmio_write32(old + VMM_TESTDEV_NOTIFY(q), 1); /* nobody there */
		kicked &= kick(x, x->base, q);
	}
	__asm__ volatile("cli");
	con_puts("guest: after the move: MSI-X vector 0: ");
	con_putdec(irq_count[IRQ_MSIX0]);
	con_puts(", vector 1: ");
	con_putdec(irq_count[IRQ_MSIX1]);
	con_puts("; kicks heard: ");
	for (unsigned q = 0; q < VMM_TESTDEV_MSIX_VECTORS; q++) {
		uint32_t k = mmio_read32(x->regs + VMM_TESTDEV_KICKS(q));

		con_putdec(k);
		con_puts(q + 1 < VMM_TESTDEV_MSIX_VECTORS ? ", " : "\n");
		counted &= k == VMM_GUEST_KICKS_PER_QUEUE &&
			   irq_count[IRQ_MSIX0 + q] == VMM_GUEST_KICKS_PER_QUEUE;
	}
	check(kicked, FAIL_MSIX_MOVE, status, "kicks at the new address answered by MSI-X vectors");
	check(counted, FAIL_MSIX_MOVE, status, "kicks at the old address not heard");
}

/* BAR3 is the VMM's buffer: its magic where firmware put it and where the guest
 * moves it, nothing at the old place; a word left at the new place is for the
 * VMM to find in its buffer. */
static void shm_check(const struct pci_found *dev, uint32_t *status)
{
	uint32_t old = dev->bar[3], to;
	bool before = old && mmio_read32(old) == VMM_TESTDEV_SHM_MAGIC;

	check(before, FAIL_SHM, status, "BAR3 shows the host buffer");
	if (!before)
		return;
	to = move_bar(dev, 3, VMM_TESTDEV_SHM_SIZE, status, FAIL_SHM);
	if (!to) {
		check(false, FAIL_SHM, status, "BAR3 reads back the new address");
		return;
	}
	mmio_write32(to + VMM_TESTDEV_SHM_GUEST, VMM_TESTDEV_SHM_NOTE);
	check(mmio_read32(to) == VMM_TESTDEV_SHM_MAGIC &&
		      mmio_read32(to + VMM_TESTDEV_SHM_GUEST) == VMM_TESTDEV_SHM_NOTE &&
		      mmio_read32(old) == 0xffffffffu,
	      FAIL_SHM, status, "host buffer at the new address, all ones at the old");
}

/* ECAM, then MSI-X and the notify queues before and after moving their BAR,
 * then the memory BAR. */
static void run_pcie(const struct pci_found *bridge, struct pci_found *dev, unsigned msi,
		     uint32_t regs, uint32_t *status)
{
	struct msix_dev x = {.regs = regs};
	uint32_t old, to, st = 0;

	ecam_check(bridge, dev, status);
	if (*status & FAIL_ECAM)
		return;
	if (msix_setup(&x, dev, msi, &st)) {
		msix_before_move(&x, &st);
		old = x.base;
		to = move_bar(dev, x.table_bar, VMM_TESTDEV_MSIX_BAR_SIZE, &st, FAIL_MSIX_MOVE);
		check(to != 0, FAIL_MSIX_MOVE, &st, "MSI-X BAR reads back the new address");
		if (to) {
			x.base = to;
			msix_after_move(&x, old, &st);
		}
	}
	shm_check(dev, &st);
	*status |= st;
}

/* ---- the other CPUs --------------------------------------------------------- */

/*
 * While CPU 0 sizes, moves and fails to move BARs (each a new device table in
 * vmres, published under the other CPUs' feet), every other CPU keeps reading
 * two ports whose answers must never change: the test device's ID in BAR1 and
 * the UART's line status.
 */
static volatile uint32_t ap_port; /* BAR1; 0 until CPU 0 has found it */
static volatile uint32_t ap_stop; /* CPU 0: the moves are over */
static volatile uint32_t ap_ready[VMM_GUEST_MAX_CPUS];
static volatile uint32_t ap_done[VMM_GUEST_MAX_CPUS];
static volatile uint32_t ap_reads[VMM_GUEST_MAX_CPUS];
static volatile uint32_t ap_wrong[VMM_GUEST_MAX_CPUS];

void guest_ap_main(uint32_t cpu);
void guest_ap_main(uint32_t cpu)
{
	uint32_t reads = 0, wrong = 0;

	idt_load();
	while (!ap_port && !ap_stop)
		__asm__ volatile("pause");
	while (!ap_stop) {
		wrong += inl((uint16_t)ap_port) != VMM_TESTDEV_MAGIC;
		wrong += !(inb(COM1 + UART_LSR) & UART_LSR_THRE);
		reads += 2;
		ap_ready[cpu] = 1;
	}
	ap_reads[cpu] = reads;
	ap_wrong[cpu] = wrong;
	ap_done[cpu] = 1;
	for (;;)
		__asm__ volatile("pause");
}

/* Hand the other CPUs their port and wait until each is reading it (a vCPU
 * thread of a loaded host may take a while to be scheduled). */
static void start_aps(uint32_t port)
{
	uint32_t n = boot->nr_cpus < VMM_GUEST_MAX_CPUS ? boot->nr_cpus : VMM_GUEST_MAX_CPUS;

	ap_port = port;
	for (uint32_t cpu = 1; cpu < n; cpu++)
		for (uint32_t spin = 0; spin < AP_START_SPIN && !ap_ready[cpu]; spin++)
			__asm__ volatile("pause");
}

/* Stop the other CPUs and check what they saw. */
static void collect_aps(uint32_t *status)
{
	uint32_t n = boot->nr_cpus < VMM_GUEST_MAX_CPUS ? boot->nr_cpus : VMM_GUEST_MAX_CPUS;

	ap_stop = 1;
	for (uint32_t cpu = 1; cpu < n; cpu++) {
		for (uint32_t spin = 0; spin < MSI_WAIT_SPIN && !ap_done[cpu]; spin++)
			__asm__ volatile("pause");
		con_puts("guest: cpu ");
		con_putdec(cpu);
		con_puts(": ");
		con_putdec(ap_reads[cpu]);
		con_puts(" port reads during the moves, ");
		con_putdec(ap_wrong[cpu]);
		con_puts(" wrong\n");
		check(ap_done[cpu] && ap_reads[cpu] && !ap_wrong[cpu], FAIL_AP, status,
		      "the other CPU saw its devices all along");
	}
}

static uint32_t run_scenario(void)
{
	struct pci_found bridge = {0}, testdev = {0};
	unsigned slot, msi;
	uint32_t status = 0, size, old_bar, new_bar, bar;

	con_puts("guest: hello from the vmres demo guest\n");
	pci_enumerate(&bridge, &testdev);
	check(bridge.present && testdev.present && testdev.bar0 && testdev.bar1, FAIL_PCI_ENUM,
	      &status, "host bridge and test device found");
	if (status)
		return status;
	slot = testdev.slot;
	start_aps(testdev.bar1);

	size = pci_bar_size(slot, PCI_BAR0);
	con_puts("guest: test device BAR0 at 0x");
	con_puthex(testdev.bar0, 8);
	con_puts(", size 0x");
	con_puthex(size, 8);
	con_putc('\n');
	check(size == 0x1000, FAIL_BAR_SIZE, &status, "BAR0 sizes as 4 KiB");
	check(pci_read32(slot, PCI_COMMAND) & PCI_CMD_MEM, FAIL_BAR_SIZE, &status,
	      "memory decoding still on after sizing");
	check(mmio_read32(testdev.bar0 + VMM_TESTDEV_ID) == VMM_TESTDEV_MAGIC, FAIL_BAR_SIZE,
	      &status, "device answers at its firmware address");
	if (status)
		return status;

	/* Move it, with decoding on: the device must follow at once. */
	mark_placed(testdev.bar0, size);
	mark_placed(testdev.bar[2], VMM_TESTDEV_MSIX_BAR_SIZE);
	mark_placed(testdev.bar[3], VMM_TESTDEV_SHM_SIZE);
	old_bar = testdev.bar0;
	new_bar = choose_bar_address(size);
	con_puts("guest: moving BAR0 to 0x");
	con_puthex(new_bar, 8);
	con_putc('\n');
	pci_write32(slot, PCI_BAR0, new_bar);
	bar = pci_read32(slot, PCI_BAR0) & ~0xfu;
	check(new_bar && bar == new_bar, FAIL_BAR_MOVE, &status, "BAR0 reads back the new address");
	mmio_write32(new_bar + VMM_TESTDEV_SCRATCH, 0x5ca1ab1e);
	check(mmio_read32(new_bar + VMM_TESTDEV_SCRATCH) == 0x5ca1ab1e &&
		      mmio_read32(new_bar + VMM_TESTDEV_ID) == VMM_TESTDEV_MAGIC,
	      FAIL_NEW_ADDR, &status, "register written and read at the new address");
	check(mmio_read32(old_bar + VMM_TESTDEV_ID) == 0xffffffffu &&
		      mmio_read32(old_bar + VMM_TESTDEV_SCRATCH) == 0xffffffffu,
	      FAIL_OLD_ADDR, &status, "old address reads all ones");

	/* MSI: local APIC on, message to APIC 0 with our vector, ring the doorbell. */
	msi = pci_find_msi(slot);
	check(msi != 0, FAIL_MSI_CAP, &status, "MSI capability found");
	if (msi) {
		uint16_t ctrl = pci_read16(slot, msi + 2);
		unsigned data_off = (ctrl & PCI_MSI_CTRL_64BIT) ? 12 : 8;

		mmio_write32(LAPIC_BASE + LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
		pci_write32(slot, msi + 4, LAPIC_BASE); /* destination APIC id 0 */
		if (ctrl & PCI_MSI_CTRL_64BIT)
			pci_write32(slot, msi + 8, 0);
		pci_write16(slot, msi + data_off, VMM_GUEST_MSI_VECTOR);
		pci_write16(slot, msi + 2, (uint16_t)((ctrl & ~0x70u) | PCI_MSI_CTRL_ENABLE));
		__asm__ volatile("sti");
		for (uint32_t i = 1; i <= MSI_RINGS; i++) {
			mmio_write32(new_bar + VMM_TESTDEV_DOORBELL, 1);
			wait_for_irq(IRQ_MSI, i);
		}
		__asm__ volatile("cli");
		con_puts("guest: MSI interrupts counted: ");
		con_putdec(irq_count[IRQ_MSI]);
		con_putc('\n');
		check(irq_count[IRQ_MSI] == MSI_RINGS &&
			      mmio_read32(new_bar + VMM_TESTDEV_RINGS) == MSI_RINGS,
		      FAIL_MSI, &status, "every doorbell delivered one interrupt");
	}

	/* PCI Express: ECAM, MSI-X and notify queues, the memory BAR. */
	run_pcie(&bridge, &testdev, msi, new_bar, &status);

	/* An invalid move: the I/O BAR onto the UART's ports. */
	con_puts("guest: trying to move BAR1 (io 0x");
	con_puthex(testdev.bar1, 4);
	con_puts(") onto the UART at 0x03f8\n");
	pci_write32(slot, PCI_BAR0 + 4, COM1);
	bar = bar_address(pci_read32(slot, PCI_BAR0 + 4));
	check(bar == testdev.bar1 && inl((uint16_t)testdev.bar1) == VMM_TESTDEV_MAGIC &&
		      (inb(COM1 + UART_LSR) & UART_LSR_THRE),
	      FAIL_BAD_MOVE, &status, "invalid move refused, BAR1 kept its value");
	collect_aps(&status);
	return status;
}

static void run_bench_pio(void)
{
	uint16_t port = (uint16_t)boot->bench_port;
	uint32_t n = boot->bench_n;

	outl(ctl_port() + VMM_CTL_MARK, 0);
	for (uint32_t k = 0; k < n; k++)
		outl(port, k);
	guest_exit(VMM_GUEST_OK);
}

void guest_main(void);
void guest_main(void)
{
	uint32_t status;

	if (boot->magic != VMM_BOOTINFO_MAGIC)
		guest_exit(FAIL_BOOTINFO);
	idt_init();
	if (boot->mode == VMM_GUEST_BENCH_PIO)
		run_bench_pio();
	status = run_scenario();
	ap_stop = 1; /* also after an early return */
	con_puts(status ? "guest: some checks FAILED\n" : "guest: all checks passed\n");
	guest_exit(status);
}
