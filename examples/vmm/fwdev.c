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

int vmm_debugcon_new(bool echo, vmm_debugcon_line_fn line_fn, void *ctx,
		     struct vmm_debugcon **out)
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
