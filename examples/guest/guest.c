/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The demo guest: a freestanding 32-bit protected-mode program, the same binary on
 * KVM and on the software CPU. It talks only to hardware as an OS would: a 16550
 * UART on COM1, PCI configuration mechanism #1, a test device's BAR and MSI, the
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
#define PCI_STATUS_CAPS	    0x0010
#define PCI_CAP_MSI	    0x05
#define PCI_MSI_CTRL_ENABLE 0x0001
#define PCI_MSI_CTRL_64BIT  0x0080

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

static struct idt_gate idt[256];
static volatile uint32_t msi_count;

extern char msi_entry[];
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
	idt_load();
}

/* Called by msi_entry (start.S) with interrupts off. */
void guest_msi(void);
void guest_msi(void)
{
	msi_count++;
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

struct pci_found {
	bool present;
	unsigned slot;
	uint32_t bar0; /* address bits of a memory BAR0, 0 if none */
	uint32_t bar1; /* address bits of an I/O BAR1, 0 if none */
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
		uint32_t class, bar[2];
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
		for (unsigned i = 0; i < 2; i++) {
			bar[i] = pci_read32(dev, PCI_BAR0 + 4 * i);
			if (!bar_address(bar[i]))
				continue;
			con_puts(i ? " bar1 " : " bar0 ");
			con_puts(bar[i] & 1 ? "io 0x" : "mmio 0x");
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

/* A page of the window the device does not use yet: the highest one. */
static uint32_t choose_bar_address(uint32_t size, uint32_t avoid)
{
	uint32_t a = (boot->mmio_window_last + 1 - size) & ~(size - 1);

	while (a >= boot->mmio_window_base && a < avoid + size && avoid < a + size)
		a -= size;
	return a >= boot->mmio_window_base ? a : 0;
}

static void wait_for_msi(uint32_t want)
{
	for (uint32_t spin = 0; spin < MSI_WAIT_SPIN && msi_count < want; spin++)
		__asm__ volatile("sti; pause" ::: "memory");
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
	old_bar = testdev.bar0;
	new_bar = choose_bar_address(size, old_bar);
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
			wait_for_msi(i);
		}
		__asm__ volatile("cli");
		con_puts("guest: MSI interrupts counted: ");
		con_putdec(msi_count);
		con_putc('\n');
		check(msi_count == MSI_RINGS &&
			      mmio_read32(new_bar + VMM_TESTDEV_RINGS) == MSI_RINGS,
		      FAIL_MSI, &status, "every doorbell delivered one interrupt");
	}

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
