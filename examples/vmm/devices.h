/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The demo's device models. Each is a struct vmres_device (read/write callbacks
 * and an opaque pointer) that machine.c registers with vmres's device manager,
 * with resources from vmres's system allocator; none of them knows where it is
 * mapped, except through the offsets vmres hands it.
 *
 * Each keeps a struct vmm_devstat so that the demo can print exits by device.
 */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vmres/device.h>
#include <vmres/irq.h>
#include <vmres/pci.h>

#include "../guest/bootinfo.h"
#include "vmm.h"

/* Accesses a device answered. Counted without an atomic read-modify-write (which
 * would cost more than the software CPU's whole exit): exact with one vCPU, a
 * lower bound with several. */
struct vmm_devstat {
	const char *name;
	uint64_t reads;
	uint64_t writes;
};

/* The exit table: exits by kind and vCPU, accesses by device (those with any),
 * and the accesses no device took. After the run. */
void vmm_print_exits(struct vmm *vm, struct vmm_devstat *const *devs, size_t n_devs, FILE *f);

static inline void vmm_devstat_count(struct vmm_devstat *s, bool is_write)
{
	uint64_t *c = is_write ? &s->writes : &s->reads;

	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* 16550 UART: transmit goes to stdout, receive is always empty. */
struct vmm_uart;
int vmm_uart_new(const char *name, struct vmm_uart **out);
void vmm_uart_free(struct vmm_uart *u);
/* Its interrupt: @fn(@ctx) is called (under the UART's lock, from the vCPU
 * thread that caused it) at every rise of the line; set before the guest runs. */
void vmm_uart_set_irq(struct vmm_uart *u, void (*fn)(void *ctx), void *ctx);
/* Also hand what it prints to @fn(@ctx) (a line at a time, or 256 bytes), under
 * the UART's lock, before it goes to stdout. */
void vmm_uart_set_output(struct vmm_uart *u, void (*fn)(void *ctx, const char *text, size_t len),
			 void *ctx);
void vmm_uart_device(struct vmm_uart *u, struct vmres_device *dev);
void vmm_uart_flush(struct vmm_uart *u);
struct vmm_devstat *vmm_uart_stat(struct vmm_uart *u);

/* The control device (bootinfo.h VMM_CTL_*): exit, benchmark mark, sink. */
struct vmm_ctl;
int vmm_ctl_new(struct vmm *vm, struct vmm_ctl **out);
void vmm_ctl_free(struct vmm_ctl *c);
void vmm_ctl_device(struct vmm_ctl *c, struct vmres_device *dev);
uint64_t vmm_ctl_sink_sum(struct vmm_ctl *c);
struct vmm_devstat *vmm_ctl_stat(struct vmm_ctl *c);

/* Configuration mechanism #1 ports, forwarded to vmres's PCI host. */
struct vmm_conf1 {
	struct vmres_pci_host *host;
	struct vmm_devstat stat;
};
void vmm_conf1_device(struct vmm_conf1 *c, struct vmres_device *dev);

/* The ECAM window (one MMIO range, bus 0 first), forwarded to vmres's ECAM
 * window onto the same PCI host. */
struct vmm_ecam {
	struct vmres_pci_ecam *ecam;
	struct vmm_devstat stat;
};
void vmm_ecam_device(struct vmm_ecam *e, struct vmres_device *dev);

/* The soft local APIC window (software CPU only): the calling vCPU's APIC. */
struct vmm_lapic_window {
	struct vmm *vm;
	struct vmm_devstat stat;
};
void vmm_lapic_window_device(struct vmm_lapic_window *w, struct vmres_device *dev);

/* The test PCI device (testdev.c): BAR0 4 KiB MMIO, BAR1 8 I/O ports, BAR2
 * 16 KiB MMIO (MSI-X table and PBA, notify registers), BAR3 4 KiB of host
 * memory, one MSI vector, two MSI-X vectors. Its resources, in this order. */
#define VMM_TESTDEV_RES_BAR0 0u
#define VMM_TESTDEV_RES_BAR1 1u
#define VMM_TESTDEV_RES_MSI  2u
#define VMM_TESTDEV_RES_BAR2 3u
#define VMM_TESTDEV_RES_BAR3 4u
#define VMM_TESTDEV_RES_MSIX 5u /* + vector */
#define VMM_TESTDEV_NRES     (VMM_TESTDEV_RES_MSIX + VMM_TESTDEV_MSIX_VECTORS)

struct vmm_testdev;
/* @bar: the firmware addresses of BAR0 to BAR3 (the resources' bases). */
int vmm_testdev_new(const uint64_t bar[4], struct vmm_testdev **out);
void vmm_testdev_free(struct vmm_testdev *t);
void vmm_testdev_device(struct vmm_testdev *t, struct vmres_device *dev);
struct vmres_pci_func *vmm_testdev_func(struct vmm_testdev *t);
/* The interrupt source its doorbell triggers (set once, before the guest runs). */
void vmm_testdev_set_msi(struct vmm_testdev *t, struct vmres_irq_src *src);
/* The eventfd of notify queue @queue (owned by the device), -1 for none. */
int vmm_testdev_notify_fd(struct vmm_testdev *t, unsigned int queue);
/* BAR3's host memory (VMM_TESTDEV_SHM_SIZE bytes, page aligned). */
void *vmm_testdev_shm(struct vmm_testdev *t);
/* Hand the MSI-X vectors' sources (@n of them) to the PCI helper and start the
 * notify thread; once, before the guest runs. 0 or -1. */
int vmm_testdev_start(struct vmm_testdev *t, struct vmres_irq_src *const *msix, unsigned int n);
/* End the notify thread (before the sources or the device go). */
void vmm_testdev_stop(struct vmm_testdev *t);

/* What the device saw, for the VMM's own checks after the run. */
struct vmm_testdev_counts {
	uint32_t kicks[VMM_TESTDEV_MSIX_VECTORS]; /* per queue, from the eventfds */
	uint32_t answered;			  /* wake-ups answered by an MSI-X vector */
	uint32_t notify_leaks;			  /* notify writes that reached the handler */
	uint32_t shm_note;			  /* the host buffer at VMM_TESTDEV_SHM_GUEST */
	/* BAR3 accesses that reached the device (not the backend's mapping), by
	 * vCPU: [0] at BAR3's firmware address, [1] after the guest moved it */
	uint32_t shm_served[VMM_MAX_VCPUS][2];
};
void vmm_testdev_counts(struct vmm_testdev *t, struct vmm_testdev_counts *out);
struct vmm_devstat *vmm_testdev_stat(struct vmm_testdev *t);

/* A virtio 1.x entropy device on PCI (virtio_rng.c): BAR0 16 KiB (common
 * configuration, ISR, the notify register of its one queue, MSI-X table and
 * PBA), two MSI-X vectors (configuration changes, the queue). Its resources,
 * in this order. */
#define VMM_VIRTIO_RNG_RES_BAR0	 0u
#define VMM_VIRTIO_RNG_RES_MSIX	 1u /* + vector */
#define VMM_VIRTIO_RNG_VECTORS	 2u
#define VMM_VIRTIO_RNG_NRES	 (VMM_VIRTIO_RNG_RES_MSIX + VMM_VIRTIO_RNG_VECTORS)
#define VMM_VIRTIO_RNG_BAR_SIZE	 0x4000u
#define VMM_VIRTIO_RNG_NOTIFY	 0x2000u /* the queue's notify register in BAR0 */

struct vmm_virtio_rng;
/* @bar0: BAR0's address at reset (0: unassigned, for the guest to choose). The
 * device reads and writes guest memory in vm->ram. */
int vmm_virtio_rng_new(struct vmm *vm, uint64_t bar0, struct vmm_virtio_rng **out);
void vmm_virtio_rng_free(struct vmm_virtio_rng *r);
void vmm_virtio_rng_device(struct vmm_virtio_rng *r, struct vmres_device *dev);
struct vmres_pci_func *vmm_virtio_rng_func(struct vmm_virtio_rng *r);
/* The eventfd its queue's notify register signals (owned by the device). */
int vmm_virtio_rng_notify_fd(struct vmm_virtio_rng *r);
/* Hand its MSI-X vectors' sources to the PCI helper and start the device
 * thread; once, before the guest runs. 0 or -1. */
int vmm_virtio_rng_start(struct vmm_virtio_rng *r, struct vmres_irq_src *const *msix);
/* End the device thread (before the sources or the device go). */
void vmm_virtio_rng_stop(struct vmm_virtio_rng *r);
#define VMM_VIRTIO_RNG_KICK_PLACES 4
struct vmm_virtio_rng_counts {
	uint64_t bytes;	     /* random bytes written into the driver's buffers */
	uint64_t buffers;    /* buffers returned in the used ring */
	uint64_t kicks;	     /* notifications (eventfd counts) */
	uint64_t interrupts; /* MSI-X messages sent */
	/* kicks_at[i] kicks taken while BAR0 was at kick_at[i] (the first
	 * places; 0 kicks: unused) */
	uint64_t kick_at[VMM_VIRTIO_RNG_KICK_PLACES];
	uint64_t kicks_at[VMM_VIRTIO_RNG_KICK_PLACES];
};
void vmm_virtio_rng_counts(struct vmm_virtio_rng *r, struct vmm_virtio_rng_counts *out);
struct vmm_devstat *vmm_virtio_rng_stat(struct vmm_virtio_rng *r);

/*
 * Firmware mode (firmware.c): what SeaBIOS needs of a PC besides the PCI host.
 */

/* SeaBIOS's debug console ("debugcon", one port, 0x402 on QEMU): reads 0xe9 (how
 * SeaBIOS tells that it is there), writes are characters. Each complete line is
 * printed to stdout with a prefix (if @echo) and kept in the log; @line_fn, if set,
 * is called with each line (no newline) from the vCPU thread. */
struct vmm_debugcon;
typedef void (*vmm_debugcon_line_fn)(void *ctx, const char *line);
int vmm_debugcon_new(bool echo, vmm_debugcon_line_fn line_fn, void *ctx, struct vmm_debugcon **out);
void vmm_debugcon_free(struct vmm_debugcon *d);
void vmm_debugcon_device(struct vmm_debugcon *d, struct vmres_device *dev);
/* Everything written so far (a partial last line included), NUL-terminated; valid
 * until the next write. Call after the vCPUs stopped. */
const char *vmm_debugcon_log(struct vmm_debugcon *d);
struct vmm_devstat *vmm_debugcon_stat(struct vmm_debugcon *d);

/* MC146818 CMOS/RTC at 0x70-0x71: index (bit 7 is the NMI mask) and data. The
 * clock reads a fixed date, never "update in progress"; the NVRAM bytes hold the
 * memory sizes a PC BIOS reads (bases 640 KiB, 1-16 MiB in 0x17/0x18 and
 * 0x30/0x31, above 16 MiB in 64 KiB units in 0x34/0x35, above 4 GiB in 0x5b-0x5d)
 * and the vCPU count minus one (0x5f, SeaBIOS's QEMU convention). */
struct vmm_cmos;
int vmm_cmos_new(uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned int nr_cpus,
		 struct vmm_cmos **out);
void vmm_cmos_free(struct vmm_cmos *c);
void vmm_cmos_device(struct vmm_cmos *c, struct vmres_device *dev);
struct vmm_devstat *vmm_cmos_stat(struct vmm_cmos *c);

/* The 8254 PIT's counters as a clock (ports 0x40-0x43) and port 0x61's timer-2
 * gate and output bits, for the software CPU (KVM has the kernel's PIT): the
 * counters count down at 1.193182 MHz of host time, so that firmware that times
 * its waits by reading them (SeaBIOS without a TSC) sees time pass. No
 * interrupts. Resources: 0 = ports 0x40-0x43, 1 = port 0x61. */
struct vmm_pit;
int vmm_pit_new(struct vmm_pit **out);
void vmm_pit_free(struct vmm_pit *p);
void vmm_pit_device(struct vmm_pit *p, struct vmres_device *dev);
struct vmm_devstat *vmm_pit_stat(struct vmm_pit *p);

/* Timer 0's interrupt (IRQ 0): has the counter wrapped since the last ack? */
bool vmm_pit_irq0_due(struct vmm_pit *p);
void vmm_pit_irq0_ack(struct vmm_pit *p);

/* The two 8259A PICs (master 0x20-0x21, slave 0xa0-0xa1; resources 0 and 1), for
 * the software CPU in firmware mode: the initialisation words set the vector
 * bases, the mask registers mask, a non-specific EOI ends the interrupt in
 * service. Its only input is timer 0 (IRQ 0). vmm_pic_pending() and
 * vmm_pic_ack() are struct vmm's legacy_pending and legacy_ack. */
struct vmm_pic;
int vmm_pic_new(struct vmm_pit *pit, struct vmm_pic **out);
void vmm_pic_free(struct vmm_pic *p);
void vmm_pic_device(struct vmm_pic *p, struct vmres_device *dev);
int vmm_pic_pending(void *pic);
void vmm_pic_ack(void *pic, int vector);
struct vmm_devstat *vmm_pic_stat(struct vmm_pic *p);

/* A stub PCI function with the BARs it is given (resource i is the BAR of the
 * i-th non-empty slot in slot order, see vmm_pcistub_new()); its registers read
 * zero and ignore writes. Only its configuration space matters: firmware sizes
 * and places its BARs. */
struct vmm_pcistub;
/* @cfg: IDs, class, command and BARs (res_index of each BAR is set here);
 * @name is kept (not copied). */
int vmm_pcistub_new(const char *name, const struct vmres_pci_func_config *cfg,
		    struct vmm_pcistub **out);
void vmm_pcistub_free(struct vmm_pcistub *p);
void vmm_pcistub_device(struct vmm_pcistub *p, struct vmres_device *dev);
struct vmres_pci_func *vmm_pcistub_func(struct vmm_pcistub *p);
struct vmm_devstat *vmm_pcistub_stat(struct vmm_pcistub *p);

#endif
