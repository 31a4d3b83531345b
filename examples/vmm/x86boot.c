/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The 64-bit Linux boot protocol and an MP table (x86boot.h). Offsets of the
 * setup header and zero page fields are those of the kernel's boot.rst and
 * zero-page.rst; the MP structures those of the Intel MultiProcessor
 * Specification 1.4, chapter 4.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "x86boot.h"

/* Guest-physical layout (x86boot.h). */
#define GDT_ADDR	0x500u
#define ZERO_PAGE_ADDR	0x7000u
#define PML4_ADDR	0x9000u
#define PDPT_ADDR	0xa000u
#define PD_ADDR		0xb000u /* 4 pages */
#define CMDLINE_ADDR	0x20000u
#define CMDLINE_MAX	0x10000u
#define MP_ADDR		0xf0000u
#define MP_END		0x100000u
#define KERNEL_ADDR	0x100000u
#define BOOT_CS		0x10u
#define BOOT_DS		0x18u

/* Setup header fields: offsets in the bzImage's first sector and in the zero page. */
#define HDR_START	   0x1f1u
#define HDR_SETUP_SECTS	   0x1f1u /* u8 */
#define HDR_BOOT_FLAG	   0x1feu /* u16, 0xaa55 */
#define HDR_JUMP	   0x200u /* u16; the byte at 0x201 gives the header's end */
#define HDR_MAGIC	   0x202u /* u32, "HdrS" */
#define HDR_VERSION	   0x206u /* u16 */
#define HDR_KERNEL_VERSION 0x20eu /* u16: version string at 0x200 + this */
#define HDR_TYPE_OF_LOADER 0x210u /* u8 */
#define HDR_LOADFLAGS	   0x211u /* u8 */
#define HDR_RAMDISK_IMAGE  0x218u /* u32 */
#define HDR_RAMDISK_SIZE   0x21cu /* u32 */
#define HDR_CMD_LINE_PTR   0x228u /* u32 */
#define HDR_INITRD_MAX	   0x22cu /* u32 */
#define HDR_XLOADFLAGS	   0x236u /* u16 */
#define HDR_CMDLINE_SIZE   0x238u /* u32 */
#define HDR_INIT_SIZE	   0x260u /* u32 */
#define HDR_MAGIC_VALUE	   0x53726448u
#define LOADED_HIGH	   0x01u
#define XLF_KERNEL_64	   0x01u
#define PREF_LOAD_ADDR	   0x1000000u /* where a relocatable kernel decompresses (16 MiB) */

/* Zero page fields outside the setup header. */
#define ZP_E820_ENTRIES 0x1e8u /* u8 */
#define ZP_E820_TABLE	0x2d0u /* 20-byte entries */
#define ZP_SIZE		0x1000u

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The whole file in a malloc'd buffer; NULL with a message on failure. */
static uint8_t *read_file(const char *path, size_t *size)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vmres-demo: %s: %s\n", path, strerror(errno));
		goto fail;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		goto fail;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			fprintf(stderr, "vmres-demo: %s: short read\n", path);
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*size = got;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* Identity map of the first 4 GiB with 2 MiB pages, and the protocol's GDT. */
static void write_tables(uint8_t *ram)
{
	static const uint64_t gdt[4] = {
		0, 0,
		0x00af9b000000ffffull, /* 0x10: 64-bit code, present, DPL 0 */
		0x00cf93000000ffffull, /* 0x18: data, 4 GiB, read/write */
	};

	memset(ram + PML4_ADDR, 0, 0x6000);
	put64(ram + PML4_ADDR, PDPT_ADDR | 0x3); /* present, writable */
	for (uint64_t i = 0; i < 4; i++) {
		put64(ram + PDPT_ADDR + 8 * i, (PD_ADDR + 0x1000 * i) | 0x3);
		for (uint64_t j = 0; j < 512; j++)
			put64(ram + PD_ADDR + 0x1000 * i + 8 * j,
			      ((i << 30) | (j << 21)) | 0x83); /* present, writable, 2 MiB */
	}
	for (unsigned int i = 0; i < 4; i++)
		put64(ram + GDT_ADDR + 8 * i, gdt[i]);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/*
 * The MP floating pointer and configuration table: one processor entry per
 * vCPU (local APIC ID = vCPU index, vCPU 0 the bootstrap processor), a PCI bus
 * (0) and an ISA bus (1), the IOAPIC (ID = number of vCPUs), ISA IRQs 0-15 on
 * IOAPIC pins 0-15 as KVM's default routing wires them (2, the PIC cascade,
 * left out), and LINT0/LINT1 as ExtINT/NMI. Returns its end address.
 */
static uint32_t write_mp_table(uint8_t *ram, unsigned int cpus)
{
	uint8_t *fp = ram + MP_ADDR, *t = ram + MP_ADDR + 16, *e = t + 44;
	const uint8_t ioapic_id = (uint8_t)cpus;
	uint16_t entries = 0;

	memset(fp, 0, MP_END - MP_ADDR);
	for (unsigned int c = 0; c < cpus; c++, entries++, e += 20) {
		e[0] = 0;			  /* processor */
		e[1] = (uint8_t)c;		  /* local APIC ID */
		e[2] = 0x14;			  /* local APIC version */
		e[3] = (uint8_t)(c == 0 ? 3 : 1); /* enabled, bootstrap */
		put32(e + 4, 0x600);		  /* family 6 */
		put32(e + 8, 0x201);		  /* FPU, APIC */
	}
	static const char *const buses[2] = {"PCI   ", "ISA   "};
	for (unsigned int b = 0; b < 2; b++, entries++, e += 8) {
		e[0] = 1; /* bus */
		e[1] = (uint8_t)b;
		memcpy(e + 2, buses[b], 6);
	}
	e[0] = 2; /* IOAPIC */
	e[1] = ioapic_id;
	e[2] = 0x11;
	e[3] = 1; /* enabled */
	put32(e + 4, VMM_IOAPIC_BASE);
	e += 8, entries++;
	for (unsigned int irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		e[0] = 3;     /* I/O interrupt */
		e[1] = 0;     /* INT */
		put16(e + 2, 0); /* conforms to the bus: ISA, edge, active high */
		e[4] = 1;     /* ISA */
		e[5] = (uint8_t)irq;
		e[6] = ioapic_id;
		e[7] = (uint8_t)irq;
		e += 8, entries++;
	}
	for (unsigned int lint = 0; lint < 2; lint++, entries++, e += 8) {
		e[0] = 4;			  /* local interrupt */
		e[1] = (uint8_t)(lint ? 1 : 3);	  /* NMI, ExtINT */
		e[4] = 1;			  /* ISA */
		e[6] = 0xff;			  /* every local APIC */
		e[7] = (uint8_t)lint;
	}
	memcpy(t, "PCMP", 4);
	put16(t + 4, (uint16_t)(e - t));
	t[6] = 4; /* version 1.4 */
	memcpy(t + 8, "VMRES   ", 8);
	memcpy(t + 16, "vmres-demo  ", 12);
	put16(t + 34, entries);
	put32(t + 36, VMM_LAPIC_ADDR);
	t[7] = checksum(t, (size_t)(e - t));

	memcpy(fp, "_MP_", 4);
	put32(fp + 4, MP_ADDR + 16);
	fp[8] = 1; /* 16 bytes */
	fp[9] = 4;
	fp[10] = checksum(fp, 16);
	return (uint32_t)(e - ram);
}

int vmm_x86boot_load(struct vmm *vm, const struct vmm_x86boot_opts *o,
		     struct vmm_x86boot_info *info)
{
	uint8_t *img = NULL, *rd = NULL, *zp = vm->ram + ZERO_PAGE_ADDR;
	size_t img_size = 0, rd_size = 0, setup_size, hdr_end, cmd_len = strlen(o->cmdline);
	uint32_t init_size, rd_max, cmd_max;
	uint64_t rd_addr = 0, kernel_end;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	if (o->n_e820 > VMM_E820_MAX || vm->ram_size < (64u << 20)) {
		fprintf(stderr, "vmres-demo: linux: at least 64 MiB of RAM, %u e820 entries\n",
			VMM_E820_MAX);
		return -1;
	}
	img = read_file(o->kernel, &img_size);
	if (!img)
		return -1;
	if (img_size < 0x1000 || get16(img + HDR_BOOT_FLAG) != 0xaa55 ||
	    get32(img + HDR_MAGIC) != HDR_MAGIC_VALUE) {
		fprintf(stderr, "vmres-demo: %s: not a bzImage\n", o->kernel);
		goto out;
	}
	info->protocol = get16(img + HDR_VERSION);
	if (info->protocol < 0x020c || !(get16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64) ||
	    !(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		fprintf(stderr,
			"vmres-demo: %s: boot protocol %u.%u without a 64-bit entry point\n",
			o->kernel, info->protocol >> 8, info->protocol & 0xff);
		goto out;
	}
	setup_size = ((size_t)(img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4) + 1) * 512;
	hdr_end = 0x202u + img[HDR_JUMP + 1];
	init_size = get32(img + HDR_INIT_SIZE);
	if (setup_size >= img_size || hdr_end > setup_size) {
		fprintf(stderr, "vmres-demo: %s: truncated\n", o->kernel);
		goto out;
	}
	if (get16(img + HDR_KERNEL_VERSION) &&
	    0x200u + get16(img + HDR_KERNEL_VERSION) < setup_size)
		snprintf(info->version, sizeof(info->version), "%.*s",
			 (int)(setup_size - 0x200u - get16(img + HDR_KERNEL_VERSION)),
			 (const char *)img + 0x200 + get16(img + HDR_KERNEL_VERSION));
	info->kernel_size = img_size - setup_size;
	kernel_end = PREF_LOAD_ADDR + (uint64_t)init_size;
	if (KERNEL_ADDR + info->kernel_size > kernel_end)
		kernel_end = KERNEL_ADDR + info->kernel_size;
	if (o->initrd) {
		rd = read_file(o->initrd, &rd_size);
		if (!rd)
			goto out;
		rd_max = get32(img + HDR_INITRD_MAX);
		rd_addr = vm->ram_size;
		if (rd_max && rd_addr > (uint64_t)rd_max + 1)
			rd_addr = (uint64_t)rd_max + 1;
		rd_addr = (rd_addr - rd_size) & ~0xfffull;
		if (rd_size > vm->ram_size || rd_addr < kernel_end) {
			fprintf(stderr, "vmres-demo: %s: does not fit above the kernel\n",
				o->initrd);
			goto out;
		}
		memcpy(vm->ram + rd_addr, rd, rd_size);
		info->initrd_addr = rd_addr;
		info->initrd_size = rd_size;
	}
	if (kernel_end > vm->ram_size) {
		fprintf(stderr, "vmres-demo: %s: needs %llu MiB of RAM\n", o->kernel,
			(unsigned long long)(kernel_end >> 20) + 1);
		goto out;
	}
	cmd_max = get32(img + HDR_CMDLINE_SIZE);
	if (cmd_len + 1 > CMDLINE_MAX || (cmd_max && cmd_len > cmd_max)) {
		fprintf(stderr, "vmres-demo: linux: command line too long (max %u)\n", cmd_max);
		goto out;
	}
	memcpy(vm->ram + KERNEL_ADDR, img + setup_size, info->kernel_size);
	memcpy(vm->ram + CMDLINE_ADDR, o->cmdline, cmd_len + 1);

	memset(zp, 0, ZP_SIZE);
	memcpy(zp + HDR_START, img + HDR_START, hdr_end - HDR_START);
	zp[HDR_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	put32(zp + HDR_CMD_LINE_PTR, CMDLINE_ADDR);
	put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)rd_addr);
	put32(zp + HDR_RAMDISK_SIZE, (uint32_t)rd_size);
	zp[ZP_E820_ENTRIES] = (uint8_t)o->n_e820;
	for (size_t i = 0; i < o->n_e820; i++) {
		uint8_t *e = zp + ZP_E820_TABLE + 20 * i;

		put64(e, o->e820[i].addr);
		put64(e + 8, o->e820[i].size);
		put32(e + 16, o->e820[i].type);
	}
	write_tables(vm->ram);
	write_mp_table(vm->ram, vm->nr_vcpus);

	vm->boot64 = true;
	vm->boot.rip = KERNEL_ADDR + 0x200; /* the 64-bit entry point */
	vm->boot.rsi = ZERO_PAGE_ADDR;
	vm->boot.cr3 = PML4_ADDR;
	vm->boot.gdt_base = GDT_ADDR;
	vm->boot.gdt_limit = 4 * 8 - 1;
	vm->boot.cs = BOOT_CS;
	vm->boot.ds = BOOT_DS;
	rc = 0;
out:
	free(img);
	free(rd);
	return rc;
}
