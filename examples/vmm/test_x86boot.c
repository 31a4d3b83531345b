/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux loader of the demo VMM (x86boot.c) against a synthetic bzImage:
 * what it writes where, that the MP table's checksums hold, and that it
 * refuses what it cannot boot. The real kernel boots in the demo-linux test;
 * this one runs in a second and without KVM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "x86boot.h"

#define RAM	   (64u << 20)
#define SETUP_SECT 4u
#define PM_SIZE	   0x3000u /* protected-mode part of the fake kernel */

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A bzImage with a 2.15 setup header, a 64-bit entry and a version string. */
static void write_kernel(const char *path, uint16_t version, uint16_t xloadflags)
{
	size_t setup = (SETUP_SECT + 1) * 512, size = setup + PM_SIZE;
	uint8_t *img = calloc(1, size);
	FILE *f = fopen(path, "wb");

	assert_non_null(img);
	assert_non_null(f);
	img[0x1f1] = SETUP_SECT;
	img[0x1fe] = 0x55, img[0x1ff] = 0xaa;
	img[0x201] = 0x66; /* header ends at 0x268 */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = (uint8_t)version, img[0x207] = (uint8_t)(version >> 8);
	img[0x20e] = 0x00, img[0x20f] = 0x02; /* version string at 0x400 */
	memcpy(img + 0x400, "6.1.0-test", 11);
	img[0x211] = 0x01;				       /* LOADED_HIGH */
	img[0x22c] = 0xff, img[0x22d] = 0xff, img[0x22e] = 0xff, img[0x22f] = 0x7f; /* initrd max */
	img[0x236] = (uint8_t)xloadflags;
	img[0x238] = 0xff, img[0x239] = 0x07; /* cmdline_size 2047 */
	img[0x260] = 0x00, img[0x261] = 0x00, img[0x262] = 0x80; /* init_size 8 MiB */
	for (size_t i = setup; i < size; i++)
		img[i] = (uint8_t)(i * 7);
	assert_int_equal(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
}

static void write_initrd(const char *path, size_t size)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		fputc((int)(i & 0xff), f);
	fclose(f);
}

struct fixture {
	char kernel[64], initrd[64];
	struct vmm vm;
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	snprintf(x->kernel, sizeof(x->kernel), "/tmp/x86boot-k-%d", (int)getpid());
	snprintf(x->initrd, sizeof(x->initrd), "/tmp/x86boot-i-%d", (int)getpid());
	x->vm.ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(x->vm.ram != MAP_FAILED);
	x->vm.ram_size = RAM;
	x->vm.nr_vcpus = 2;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;

	unlink(x->kernel);
	unlink(x->initrd);
	munmap(x->vm.ram, RAM);
	free(x);
	return 0;
}

static const struct vmm_e820 e820[] = {
	{0, 0x9fc00, VMM_E820_RAM},
	{0x9fc00, 0x60400, VMM_E820_RESERVED},
	{0x100000, RAM - 0x100000, VMM_E820_RAM},
};

static int load(struct fixture *x, const char *initrd, struct vmm_x86boot_info *info)
{
	struct vmm_x86boot_opts o = {
		.kernel = x->kernel,
		.initrd = initrd,
		.cmdline = "console=ttyS0 quiet",
		.e820 = e820,
		.n_e820 = 3,
	};

	return vmm_x86boot_load(&x->vm, &o, info);
}

static void test_zero_page_kernel_initrd_and_entry(void **state)
{
	struct fixture *x = *state;
	struct vmm_x86boot_info info;
	const uint8_t *zp = x->vm.ram + 0x7000, *ram = x->vm.ram;
	uint32_t rd;

	write_kernel(x->kernel, 0x020f, 1);
	write_initrd(x->initrd, 100000);
	assert_int_equal(load(x, x->initrd, &info), 0);
	assert_int_equal(info.protocol, 0x020f);
	assert_string_equal(info.version, "6.1.0-test");
	assert_int_equal(info.kernel_size, PM_SIZE);
	/* the protected-mode part at 1 MiB, byte for byte */
	for (size_t i = 0; i < PM_SIZE; i++)
		assert_int_equal(ram[0x100000 + i], (uint8_t)((i + (SETUP_SECT + 1) * 512) * 7));
	/* the setup header copied, loader fields set */
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(get32(zp + 0x228), 0x20000);
	assert_string_equal((const char *)ram + 0x20000, "console=ttyS0 quiet");
	/* the initramfs: page aligned, at the top of RAM, as read */
	rd = get32(zp + 0x218);
	assert_int_equal(rd % 4096, 0);
	assert_true(rd + 100000 <= RAM && rd + 100000 + 4096 > RAM);
	assert_int_equal(get32(zp + 0x21c), 100000);
	assert_int_equal(info.initrd_addr, rd);
	for (size_t i = 0; i < 100000; i += 997)
		assert_int_equal(ram[rd + i], (uint8_t)(i & 0xff));
	/* e820 */
	assert_int_equal(zp[0x1e8], 3);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(get64(zp + 0x2d0 + 20 * i), e820[i].addr);
		assert_int_equal(get64(zp + 0x2d0 + 20 * i + 8), e820[i].size);
		assert_int_equal(get32(zp + 0x2d0 + 20 * i + 16), e820[i].type);
	}
	/* entry state: the 64-bit entry, the zero page in rsi, the protocol's selectors */
	assert_true(x->vm.boot64);
	assert_int_equal(x->vm.boot.rip, 0x100200);
	assert_int_equal(x->vm.boot.rsi, 0x7000);
	assert_int_equal(x->vm.boot.cs, 0x10);
	assert_int_equal(x->vm.boot.ds, 0x18);
	/* GDT: 64-bit code at 0x10, data at 0x18 */
	assert_int_equal(get64(ram + x->vm.boot.gdt_base + 0x10) >> 53 & 1, 1); /* L */
	assert_int_equal(get64(ram + x->vm.boot.gdt_base + 0x18) >> 47 & 1, 1); /* P */
	/* page tables: identity, 2 MiB pages, the first 4 GiB */
	{
		uint64_t pml4 = get64(ram + x->vm.boot.cr3);
		uint64_t pdpt3 = get64(ram + (pml4 & ~0xfffull) + 3 * 8);
		uint64_t pde = get64(ram + (pdpt3 & ~0xfffull) + 511 * 8);

		assert_int_equal(pml4 & 1, 1);
		assert_int_equal(pde & ~0xfffull, 0xffe00000ull);
		assert_int_equal(pde & 0x83, 0x83);
	}
}

static void test_mp_table_checksums_and_entries(void **state)
{
	struct fixture *x = *state;
	struct vmm_x86boot_info info;
	const uint8_t *ram = x->vm.ram, *fp = NULL, *t;
	unsigned int cpus = 0, ioapics = 0, ints = 0;

	write_kernel(x->kernel, 0x020f, 1);
	assert_int_equal(load(x, NULL, &info), 0);
	/* Linux looks for "_MP_" on 16-byte boundaries in the BIOS area */
	for (uint32_t a = 0xf0000; a < 0x100000 && !fp; a += 16)
		if (!memcmp(ram + a, "_MP_", 4))
			fp = ram + a;
	assert_non_null(fp);
	assert_int_equal(sum8(fp, 16), 0);
	t = ram + get32(fp + 4);
	assert_memory_equal(t, "PCMP", 4);
	assert_int_equal(sum8(t, t[4] | t[5] << 8), 0);
	assert_int_equal(get32(t + 36), VMM_LAPIC_ADDR);
	for (const uint8_t *e = t + 44; e < t + (t[4] | t[5] << 8);) {
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], cpus);		     /* APIC ID = vCPU index */
			assert_int_equal(e[3] & 2, cpus == 0 ? 2 : 0); /* bootstrap: vCPU 0 */
			cpus++, e += 20;
			break;
		case 2:
			assert_int_equal(get32(e + 4), VMM_IOAPIC_BASE);
			ioapics++, e += 8;
			break;
		case 3:
			assert_int_equal(e[5], e[7]); /* ISA IRQ n on pin n */
			ints++, e += 8;
			break;
		default:
			e += 8;
		}
	}
	assert_int_equal(cpus, 2);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ints, 15); /* 0-15 but the cascade */
}

static void test_what_it_cannot_boot_is_refused(void **state)
{
	struct fixture *x = *state;
	struct vmm_x86boot_info info;
	FILE *f;

	write_kernel(x->kernel, 0x020b, 1); /* 2.11: no xloadflags */
	assert_int_equal(load(x, NULL, &info), -1);
	write_kernel(x->kernel, 0x020f, 0); /* no 64-bit entry point */
	assert_int_equal(load(x, NULL, &info), -1);
	f = fopen(x->kernel, "wb"); /* not a bzImage */
	assert_non_null(f);
	fputs("MZ not a kernel", f);
	fclose(f);
	assert_int_equal(load(x, NULL, &info), -1);
	write_kernel(x->kernel, 0x020f, 1);
	write_initrd(x->initrd, RAM - (20u << 20)); /* over the decompressed kernel */
	assert_int_equal(load(x, x->initrd, &info), -1);
	assert_int_equal(load(x, "/nonexistent/initrd", &info), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zero_page_kernel_initrd_and_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mp_table_checksums_and_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_it_cannot_boot_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
