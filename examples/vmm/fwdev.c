/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The devices of firmware mode besides the PCI host (devices.h): SeaBIOS's debug
 * console, the CMOS/RTC, and stub PCI functions whose only purpose is their
 * BARs. Each is a vmres device that firmware.c registers with resources from
 * the x86_64 preset.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"

/* ---- debug console ---------------------------------------------------------- */

#define DEBUGCON_READBACK 0xe9 /* what QEMU's debugcon reads as; SeaBIOS checks it */

struct vmm_debugcon {
	pthread_mutex_t lock; /* several vCPUs may print */
	bool echo;
	vmm_debugcon_line_fn line_fn;
	void *ctx;
	char *log; /* everything, NUL-terminated */
	size_t len, cap;
	size_t line_start; /* offset of the current line in log */
	bool oom;
	struct vmm_devstat stat;
};

int vmm_debugcon_new(bool echo, vmm_debugcon_line_fn line_fn, void *ctx, struct vmm_debugcon **out)
{
	struct vmm_debugcon *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	d->cap = 4096;
	d->log = malloc(d->cap);
	if (!d->log) {
		free(d);
		return -1;
	}
	d->log[0] = '\0';
	pthread_mutex_init(&d->lock, NULL);
	d->echo = echo;
	d->line_fn = line_fn;
	d->ctx = ctx;
	d->stat.name = "debugcon";
	*out = d;
	return 0;
}

void vmm_debugcon_free(struct vmm_debugcon *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->log);
	free(d);
}

const char *vmm_debugcon_log(struct vmm_debugcon *d)
{
	return d->log;
}

struct vmm_devstat *vmm_debugcon_stat(struct vmm_debugcon *d)
{
	return &d->stat;
}

static void debugcon_putc(struct vmm_debugcon *d, char c)
{
	if (d->len + 2 > d->cap) {
		char *p = d->oom ? NULL : realloc(d->log, d->cap * 2);

		if (!p) {
			d->oom = true; /* keep what we have; drop the rest */
			return;
		}
		d->log = p;
		d->cap *= 2;
	}
	if (c == '\r')
		return;
	d->log[d->len++] = c;
	d->log[d->len] = '\0';
	if (c != '\n')
		return;
	d->log[d->len - 1] = '\0'; /* hand the line out without its newline */
	if (d->echo) {
		printf("  | %s\n", d->log + d->line_start);
		fflush(stdout);
	}
	if (d->line_fn)
		d->line_fn(d->ctx, d->log + d->line_start);
	d->log[d->len - 1] = '\n';
	d->line_start = d->len;
}

static uint64_t debugcon_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			      unsigned int size)
{
	struct vmm_debugcon *d = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	vmm_devstat_count(&d->stat, false);
	return DEBUGCON_READBACK;
}

static void debugcon_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			   unsigned int size, uint64_t value)
{
	struct vmm_debugcon *d = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	vmm_devstat_count(&d->stat, true);
	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < size; i++)
		debugcon_putc(d, (char)(value >> (8 * i)));
	pthread_mutex_unlock(&d->lock);
}

void vmm_debugcon_device(struct vmm_debugcon *d, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = d->stat.name;
	dev->opaque = d;
	dev->read = debugcon_read;
	dev->write = debugcon_write;
}

/* ---- CMOS / RTC ------------------------------------------------------------- */

enum {
	CMOS_SECONDS = 0x00,
	CMOS_MINUTES = 0x02,
	CMOS_HOURS = 0x04,
	CMOS_WEEKDAY = 0x06,
	CMOS_DAY = 0x07,
	CMOS_MONTH = 0x08,
	CMOS_YEAR = 0x09,
	CMOS_STATUS_A = 0x0a,
	CMOS_STATUS_B = 0x0b,
	CMOS_STATUS_C = 0x0c,
	CMOS_STATUS_D = 0x0d,
	CMOS_BASEMEM_LO = 0x15,
	CMOS_BASEMEM_HI = 0x16,
	CMOS_EXTMEM_LO = 0x17,
	CMOS_EXTMEM_HI = 0x18,
	CMOS_EXTMEM_LO2 = 0x30,
	CMOS_EXTMEM_HI2 = 0x31,
	CMOS_CENTURY = 0x32,
	CMOS_EXTMEM2_LO = 0x34,
	CMOS_EXTMEM2_HI = 0x35,
	CMOS_HIGHMEM_LO = 0x5b,
	CMOS_HIGHMEM_MID = 0x5c,
	CMOS_HIGHMEM_HI = 0x5d,
	CMOS_SMP_COUNT = 0x5f,
	CMOS_SIZE = 128,
};

struct vmm_cmos {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t nvram[CMOS_SIZE];
	struct vmm_devstat stat;
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int vmm_cmos_new(uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned int nr_cpus,
		 struct vmm_cmos **out)
{
	struct vmm_cmos *c = calloc(1, sizeof(*c));
	uint64_t ext, ext2, high;

	if (!c)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	c->stat.name = "cmos";
	/* 2026-01-01 00:00:00, BCD, 24-hour mode */
	c->nvram[CMOS_WEEKDAY] = 0x05;
	c->nvram[CMOS_DAY] = 0x01;
	c->nvram[CMOS_MONTH] = 0x01;
	c->nvram[CMOS_YEAR] = 0x26;
	c->nvram[CMOS_CENTURY] = 0x20;
	c->nvram[CMOS_STATUS_A] = 0x26; /* 32.768 kHz, 1024 Hz; bit 7 (UIP) clear */
	c->nvram[CMOS_STATUS_B] = 0x02; /* 24-hour, BCD */
	c->nvram[CMOS_STATUS_D] = 0x80; /* valid RAM and time */
	c->nvram[CMOS_BASEMEM_LO] = 640 & 0xff;
	c->nvram[CMOS_BASEMEM_HI] = 640 >> 8;
	/* 1 MiB to min(RAM, 64 MiB) in KiB; above 16 MiB in 64 KiB units */
	ext = ram_below_4g > 0x100000 ? min_u64((ram_below_4g - 0x100000) >> 10, 0xfc00) : 0;
	ext2 = ram_below_4g > 0x1000000 ? min_u64((ram_below_4g - 0x1000000) >> 16, 0xffff) : 0;
	high = ram_above_4g >> 16;
	c->nvram[CMOS_EXTMEM_LO] = c->nvram[CMOS_EXTMEM_LO2] = (uint8_t)ext;
	c->nvram[CMOS_EXTMEM_HI] = c->nvram[CMOS_EXTMEM_HI2] = (uint8_t)(ext >> 8);
	c->nvram[CMOS_EXTMEM2_LO] = (uint8_t)ext2;
	c->nvram[CMOS_EXTMEM2_HI] = (uint8_t)(ext2 >> 8);
	c->nvram[CMOS_HIGHMEM_LO] = (uint8_t)high;
	c->nvram[CMOS_HIGHMEM_MID] = (uint8_t)(high >> 8);
	c->nvram[CMOS_HIGHMEM_HI] = (uint8_t)(high >> 16);
	c->nvram[CMOS_SMP_COUNT] = (uint8_t)(nr_cpus - 1);
	*out = c;
	return 0;
}

void vmm_cmos_free(struct vmm_cmos *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct vmm_devstat *vmm_cmos_stat(struct vmm_cmos *c)
{
	return &c->stat;
}

static uint64_t cmos_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size)
{
	struct vmm_cmos *c = opaque;
	uint8_t v;

	(void)range;
	(void)addr;
	(void)size;
	vmm_devstat_count(&c->stat, false);
	pthread_mutex_lock(&c->lock);
	if (offset == 0) {
		v = 0xff; /* the index register is write-only */
	} else {
		v = c->nvram[c->index];
		if (c->index == CMOS_STATUS_C)
			c->nvram[CMOS_STATUS_C] = 0; /* read clears the interrupt flags */
	}
	pthread_mutex_unlock(&c->lock);
	return v;
}

static void cmos_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		       unsigned int size, uint64_t value)
{
	struct vmm_cmos *c = opaque;

	(void)range;
	(void)addr;
	(void)size;
	vmm_devstat_count(&c->stat, true);
	pthread_mutex_lock(&c->lock);
	if (offset == 0)
		c->index = (uint8_t)(value & 0x7f); /* bit 7 masks the NMI */
	else if (c->index != CMOS_STATUS_C && c->index != CMOS_STATUS_D)
		c->nvram[c->index] = (uint8_t)value;
	pthread_mutex_unlock(&c->lock);
}

void vmm_cmos_device(struct vmm_cmos *c, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = c->stat.name;
	dev->opaque = c;
	dev->read = cmos_read;
	dev->write = cmos_write;
}

/* ---- stub PCI functions ----------------------------------------------------- */

struct vmm_pcistub {
	struct vmres_pci_func *func;
	struct vmm_devstat stat;
};

int vmm_pcistub_new(const char *name, const struct vmres_pci_func_config *cfg,
		    struct vmm_pcistub **out)
{
	struct vmm_pcistub *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	p->stat.name = name;
	if (vmres_pci_func_new(cfg, &p->func) != 0) {
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

void vmm_pcistub_free(struct vmm_pcistub *p)
{
	if (!p)
		return;
	vmres_pci_func_free(p->func);
	free(p);
}

struct vmres_pci_func *vmm_pcistub_func(struct vmm_pcistub *p)
{
	return p->func;
}

struct vmm_devstat *vmm_pcistub_stat(struct vmm_pcistub *p)
{
	return &p->stat;
}

static uint64_t pcistub_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			     unsigned int size)
{
	struct vmm_pcistub *p = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	vmm_devstat_count(&p->stat, false);
	return 0;
}

static void pcistub_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size, uint64_t value)
{
	struct vmm_pcistub *p = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	(void)value;
	vmm_devstat_count(&p->stat, true);
}

void vmm_pcistub_device(struct vmm_pcistub *p, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = p->stat.name;
	dev->opaque = p;
	dev->read = pcistub_read;
	dev->write = pcistub_write;
}

/* ---- PIT counters ------------------------------------------------------------- */

#define PIT_HZ	     1193182.0
#define PIT_CHANNELS 3
#define PORT61_GATE2 0x01u /* timer 2 gate */
#define PORT61_OUT2  0x20u /* timer 2 output */

struct pit_channel {
	uint32_t reload;  /* 1..0x10000 */
	uint8_t access;	  /* 1 low byte, 2 high byte, 3 low then high */
	uint8_t mode;	  /* 0..5 */
	bool write_high;  /* lo/hi access: the next write is the high byte */
	bool read_high;	  /* lo/hi access: the next read is the high byte */
	bool latched;	  /* a latched count is waiting to be read */
	uint16_t latch;	  /* that count */
	double start_ns;  /* when counting started from reload */
	uint16_t pending; /* low byte written, high byte awaited */
};

struct vmm_pit {
	pthread_mutex_t lock;
	struct pit_channel ch[PIT_CHANNELS];
	uint8_t port61;
	uint64_t irq0_acked; /* timer 0 periods whose interrupt was taken */
	struct vmm_devstat stat;
};

int vmm_pit_new(struct vmm_pit **out)
{
	struct vmm_pit *p = calloc(1, sizeof(*p));
	double now = vmm_now_ns();

	if (!p)
		return -1;
	pthread_mutex_init(&p->lock, NULL);
	for (int i = 0; i < PIT_CHANNELS; i++) {
		p->ch[i].reload = 0x10000;
		p->ch[i].access = 3;
		p->ch[i].mode = 3;
		p->ch[i].start_ns = now;
	}
	p->stat.name = "pit";
	*out = p;
	return 0;
}

void vmm_pit_free(struct vmm_pit *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct vmm_devstat *vmm_pit_stat(struct vmm_pit *p)
{
	return &p->stat;
}

static uint64_t pit_ticks(const struct pit_channel *c)
{
	double ns = vmm_now_ns() - c->start_ns;

	return ns > 0 ? (uint64_t)(ns * PIT_HZ / 1e9) : 0;
}

/* The count now: modes 0 and 1 count down once (and wrap), the others repeat. */
static uint16_t pit_count(const struct pit_channel *c)
{
	uint64_t t = pit_ticks(c);

	if (c->mode == 0 || c->mode == 1)
		return (uint16_t)(c->reload - t);
	return (uint16_t)(c->reload - t % c->reload);
}

/* Whole periods of timer 0 since it was loaded. */
static uint64_t pit_periods0(const struct vmm_pit *p)
{
	return pit_ticks(&p->ch[0]) / p->ch[0].reload;
}

bool vmm_pit_irq0_due(struct vmm_pit *p)
{
	bool due;

	pthread_mutex_lock(&p->lock);
	due = pit_periods0(p) > p->irq0_acked;
	pthread_mutex_unlock(&p->lock);
	return due;
}

void vmm_pit_irq0_ack(struct vmm_pit *p)
{
	pthread_mutex_lock(&p->lock);
	p->irq0_acked = pit_periods0(p); /* missed ticks are lost, as on a busy PC */
	pthread_mutex_unlock(&p->lock);
}

static bool pit_out2(struct vmm_pit *p)
{
	const struct pit_channel *c = &p->ch[2];

	if (!(p->port61 & PORT61_GATE2))
		return false;
	if (c->mode == 0 || c->mode == 1)
		return pit_ticks(c) >= c->reload;
	return pit_ticks(c) % c->reload < c->reload / 2; /* square wave */
}

static uint8_t pit_read_counter(struct pit_channel *c)
{
	uint16_t v = c->latched ? c->latch : pit_count(c);
	uint8_t b;

	if (c->access == 1) {
		b = (uint8_t)v;
	} else if (c->access == 2) {
		b = (uint8_t)(v >> 8);
	} else {
		b = c->read_high ? (uint8_t)(v >> 8) : (uint8_t)v;
		c->read_high = !c->read_high;
		if (c->read_high)
			return b; /* a latch holds until its high byte is read */
	}
	c->latched = false;
	return b;
}

static void pit_latch(struct pit_channel *c)
{
	if (!c->latched) {
		c->latch = pit_count(c);
		c->latched = true;
		c->read_high = false;
	}
}

static void pit_control(struct vmm_pit *p, uint8_t v)
{
	unsigned int sel = v >> 6;

	if (sel == 3) { /* read-back: bit 5 clear latches the selected counts */
		for (unsigned int i = 0; i < PIT_CHANNELS; i++)
			if ((v & (2u << i)) && !(v & 0x20))
				pit_latch(&p->ch[i]);
		return;
	}
	if (((v >> 4) & 3) == 0) {
		pit_latch(&p->ch[sel]);
		return;
	}
	p->ch[sel].access = (v >> 4) & 3;
	p->ch[sel].mode = (v >> 1) & 7;
	if (p->ch[sel].mode > 5)
		p->ch[sel].mode -= 4; /* 6 and 7 are 2 and 3 */
	p->ch[sel].write_high = false;
	p->ch[sel].read_high = false;
	p->ch[sel].latched = false;
}

static void pit_write_counter(struct pit_channel *c, uint8_t v)
{
	uint32_t value;

	if (c->access == 1) {
		value = v;
	} else if (c->access == 2) {
		value = (uint32_t)v << 8;
	} else if (!c->write_high) {
		c->pending = v;
		c->write_high = true;
		return;
	} else {
		value = c->pending | (uint32_t)v << 8;
		c->write_high = false;
	}
	c->reload = value ? value : 0x10000;
	c->start_ns = vmm_now_ns();
}

static void pit_reload(struct vmm_pit *p, unsigned int i, uint8_t v)
{
	pit_write_counter(&p->ch[i], v);
	if (i == 0)
		p->irq0_acked = 0; /* counting starts again */
}

static uint64_t pit_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	struct vmm_pit *p = opaque;
	uint8_t v = 0xff;

	(void)addr;
	(void)size;
	vmm_devstat_count(&p->stat, false);
	pthread_mutex_lock(&p->lock);
	if (range == 1) {
		/* refresh toggles every 15 us; say it toggled at each read */
		p->port61 ^= 0x10;
		v = (uint8_t)((p->port61 & 0x1f) | (pit_out2(p) ? PORT61_OUT2 : 0));
	} else if (offset < PIT_CHANNELS) {
		v = pit_read_counter(&p->ch[offset]);
	}
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pit_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct vmm_pit *p = opaque;

	(void)addr;
	(void)size;
	vmm_devstat_count(&p->stat, true);
	pthread_mutex_lock(&p->lock);
	if (range == 1)
		p->port61 = (uint8_t)(value & 0x0f);
	else if (offset == 3)
		pit_control(p, (uint8_t)value);
	else
		pit_reload(p, (unsigned int)offset, (uint8_t)value);
	pthread_mutex_unlock(&p->lock);
}

void vmm_pit_device(struct vmm_pit *p, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = p->stat.name;
	dev->opaque = p;
	dev->read = pit_read;
	dev->write = pit_write;
}

/* ---- PICs --------------------------------------------------------------------- */

struct pic_chip {
	uint8_t imr;	  /* interrupt mask */
	uint8_t isr;	  /* in service */
	uint8_t base;	  /* vector of IR0 (ICW2) */
	uint8_t icw_step; /* 0: initialised; 2..4: the ICW expected next */
	bool icw4_needed; /* ICW1 bit 0 */
	bool read_isr;	  /* OCW3: reads of the command port return ISR, not IRR */
};

struct vmm_pic {
	pthread_mutex_t lock;
	struct pic_chip chip[2]; /* master, slave */
	struct vmm_pit *pit;
	struct vmm_devstat stat;
};

int vmm_pic_new(struct vmm_pit *pit, struct vmm_pic **out)
{
	struct vmm_pic *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	pthread_mutex_init(&p->lock, NULL);
	p->pit = pit;
	p->chip[0].imr = p->chip[1].imr = 0xff; /* everything masked until set up */
	p->chip[0].base = 0x08;
	p->chip[1].base = 0x70;
	p->stat.name = "pic";
	*out = p;
	return 0;
}

void vmm_pic_free(struct vmm_pic *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct vmm_devstat *vmm_pic_stat(struct vmm_pic *p)
{
	return &p->stat;
}

int vmm_pic_pending(void *pic)
{
	struct vmm_pic *p = pic;
	int vector = -1;

	pthread_mutex_lock(&p->lock);
	/* IRQ 0 is the master's highest priority: only another IRQ 0 in service
	 * holds it back. */
	if (!(p->chip[0].imr & 1) && !(p->chip[0].isr & 1) && !p->chip[0].icw_step &&
	    vmm_pit_irq0_due(p->pit))
		vector = p->chip[0].base;
	pthread_mutex_unlock(&p->lock);
	return vector;
}

void vmm_pic_ack(void *pic, int vector)
{
	struct vmm_pic *p = pic;

	pthread_mutex_lock(&p->lock);
	if (vector == p->chip[0].base) {
		p->chip[0].isr |= 1;
		vmm_pit_irq0_ack(p->pit);
	}
	pthread_mutex_unlock(&p->lock);
}

static void pic_write_locked(struct pic_chip *c, unsigned int port, uint8_t v)
{
	if (port == 0 && (v & 0x10)) { /* ICW1 */
		c->icw_step = 2;
		c->icw4_needed = v & 1;
		c->imr = 0;
		c->isr = 0;
		c->read_isr = false;
	} else if (port == 0 && (v & 0x18) == 0x08) { /* OCW3 */
		if (v & 0x02)
			c->read_isr = v & 0x01;
	} else if (port == 0) { /* OCW2: EOI */
		if ((v & 0xe0) == 0x20 && c->isr)
			c->isr &= (uint8_t)(c->isr - 1); /* the highest priority, lowest bit */
		else if ((v & 0xe0) == 0x60)
			c->isr &= (uint8_t) ~(1u << (v & 7));
	} else if (c->icw_step == 2) {
		c->base = v & 0xf8;
		c->icw_step = 3;
	} else if (c->icw_step == 3) {
		c->icw_step = c->icw4_needed ? 4 : 0;
	} else if (c->icw_step == 4) {
		c->icw_step = 0;
	} else { /* OCW1 */
		c->imr = v;
	}
}

static uint64_t pic_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	struct vmm_pic *p = opaque;
	struct pic_chip *c = &p->chip[range ? 1 : 0];
	uint8_t v;

	(void)addr;
	(void)size;
	vmm_devstat_count(&p->stat, false);
	pthread_mutex_lock(&p->lock);
	if (offset == 1)
		v = c->imr;
	else if (c->read_isr)
		v = c->isr;
	else /* IRR: timer 0's request on the master */
		v = !range && vmm_pit_irq0_due(p->pit) ? 1 : 0;
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pic_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct vmm_pic *p = opaque;

	(void)addr;
	(void)size;
	vmm_devstat_count(&p->stat, true);
	pthread_mutex_lock(&p->lock);
	pic_write_locked(&p->chip[range ? 1 : 0], (unsigned int)offset, (uint8_t)value);
	pthread_mutex_unlock(&p->lock);
}

void vmm_pic_device(struct vmm_pic *p, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = p->stat.name;
	dev->opaque = p;
	dev->read = pic_read;
	dev->write = pic_write;
}
