/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit and differential tests of the device manager (include/vmres/devmgr.h). */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <linux/kvm.h>

#include <vmres/devmgr.h>
#include <vmres/sysalloc.h>

#include "helpers.h"
#include "json_alloc.h"

/* ---- helpers ---- */

static struct vmres_resource msi_res(uint32_t gsi)
{
	return VMRES_RESOURCE_MSI("", gsi);
}

static bool wait_released(struct tdev *d, int count)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&d->releases, __ATOMIC_ACQUIRE) == count)
			return true;
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 1000000}, NULL);
	}
	return false;
}

/* Everything observable about the table, as text. */
static char *state_of(struct vmres_devmgr *m)
{
	char *text, *json, *both;
	size_t len;

	assert_int_equal(vmres_devmgr_dump_str(m, &text), 0);
	assert_int_equal(vmres_devmgr_dump_json(m, &json), 0);
	len = strlen(text) + strlen(json) + 2;
	both = malloc(len);
	assert_non_null(both);
	snprintf(both, len, "%s\n%s", text, json);
	free(text);
	free(json);
	return both;
}

static void assert_state(struct vmres_devmgr *m, const char *before)
{
	char *now = state_of(m);

	assert_string_equal(now, before);
	free(now);
}

static int setup_thread(void **state)
{
	(void)state;
	return vmres_devmgr_thread_register();
}

static int teardown_thread(void **state)
{
	(void)state;
	return vmres_devmgr_thread_unregister();
}

static uint32_t read_mmio(struct vmres_devmgr *m, uint64_t addr, uint32_t len)
{
	uint8_t data[8] = {0};
	uint32_t v = 0;

	assert_int_equal(vmres_devmgr_mmio(m, addr, len, false, data), 0);
	memcpy(&v, data, len < 4 ? len : 4);
	return v;
}

/* ---- register / unregister / lookups ---- */

static void test_register_maps_address_resources(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_devmgr_info info;
	struct vmres_resource res[3], got[3];
	bool mapped[3];
	struct tdev d;
	uint32_t id = 0, found;
	unsigned int idx;
	uint64_t off;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "uart0", m);
	d.dev.owner = 77;
	res[0] = test_addr_res(VMRES_SPACE_PIO, 0x3f8, 8);
	res[1] = test_irq_res(4);
	res[2] = test_addr_res(VMRES_SPACE_MMIO, 0xfe000000, 0x1000);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, VMRES_DEVMGR_NO_PARENT, res, 3, &id), 0);
	assert_int_not_equal(id, 0);

	assert_int_equal(vmres_devmgr_get(m, id, &info, got, mapped, 3), 0);
	assert_int_equal(info.instance, id);
	assert_int_equal(info.parent, 0);
	assert_string_equal(info.name, "uart0");
	assert_ptr_equal(info.opaque, &d);
	assert_int_equal(info.owner, 77);
	assert_int_equal(info.n_res, 3);
	assert_memory_equal(got, res, sizeof(res));
	assert_true(mapped[0]);
	assert_false(mapped[1]);
	assert_true(mapped[2]);

	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_PIO, 0x3fd, &found, &idx, &off), 0);
	assert_int_equal(found, id);
	assert_int_equal(idx, 0);
	assert_int_equal(off, 5);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0xfe000fff, &found, &idx, NULL), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x3f8, &found, NULL, NULL),
			 VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_PIO, 0x400, &found, NULL, NULL),
			 VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_find(m, (enum vmres_space)9, 0, &found, NULL, NULL),
			 VMRES_EINVAL);

	/* Dispatch reaches it in both spaces, with the resource index as range. */
	uint8_t b = 0x5a;
	assert_int_equal(vmres_devmgr_pio(m, 0x3f9, true, 1, 1, &b), 0);
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.range, 0);
	assert_int_equal(d.offset, 1);
	assert_int_equal(d.value, 0x5a);
	assert_int_equal(read_mmio(m, 0xfe000010, 4), 0x44332211);
	assert_int_equal(d.range, 2);
	assert_int_equal(d.offset, 0x10);
	assert_int_equal(d.addr, 0xfe000010);

	vmres_devmgr_free(m);
	assert_int_equal(d.releases, 1);
}

static void test_register_errors_change_nothing(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device bad;
	struct vmres_resource r, ok = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x1000);
	struct tdev d, e;
	uint32_t id = 0, keep = 12345;
	char *before;
	char long_name[VMRES_DEVICE_NAME_MAX + 1];

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "a", m);
	tdev_init(&e, "b", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &ok, 1, &id), 0);
	before = state_of(m);

	assert_int_equal(vmres_devmgr_register(NULL, &e.dev, 0, NULL, 0, &keep), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register(m, NULL, 0, NULL, 0, &keep), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, NULL, 0, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, NULL, 1, &keep), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &ok, VMRES_DEVMGR_MAX_RES + 1, &keep),
			 VMRES_EINVAL);
	bad = e.dev;
	bad.version = 0;
	assert_int_equal(vmres_devmgr_register(m, &bad, 0, NULL, 0, &keep), VMRES_EINVAL);
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	bad = e.dev;
	bad.name = long_name;
	assert_int_equal(vmres_devmgr_register(m, &bad, 0, NULL, 0, &keep), VMRES_EINVAL);

	r = ok;
	r.kind = (enum vmres_res_kind)0;
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_EINVAL);
	r = test_addr_res((enum vmres_space)3, 0x5000, 1);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_EINVAL);
	r = test_addr_res(VMRES_SPACE_MMIO, 0x5000, 0);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_ESIZE);
	r = test_addr_res(VMRES_SPACE_MMIO, UINT64_MAX - 1, 3);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_EOVERFLOW);
	r = test_addr_res(VMRES_SPACE_PIO, 0xfffe, 4);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_ERANGE);
	r = test_addr_res(VMRES_SPACE_MMIO, 0x1fff, 2);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_EOVERLAP);
	r = ok;
	memset(r.pool, 'p', sizeof(r.pool)); /* not NUL-terminated */
	r.u.addr.base = 0x9000;
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, &r, 1, &keep), VMRES_EINVAL);
	/* Two ranges of the same new device that overlap each other. */
	struct vmres_resource two[2] = {test_addr_res(VMRES_SPACE_PIO, 0x60, 4),
					test_addr_res(VMRES_SPACE_PIO, 0x63, 1)};
	assert_int_equal(vmres_devmgr_register(m, &e.dev, 0, two, 2, &keep), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_register(m, &e.dev, id + 1, NULL, 0, &keep), VMRES_EPARENT);

	assert_int_equal(keep, 12345);
	assert_state(m, before);
	free(before);
	vmres_devmgr_free(m);
	assert_int_equal(d.releases, 1);
	assert_int_equal(e.releases, 0); /* never registered: never released */
}

static void test_unregister_releases_after_grace_period(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x100);
	struct tdev d;
	uint32_t id, found;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "a", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	assert_int_equal(vmres_devmgr_unregister(m, id), 0);
	assert_true(wait_released(&d, 1));
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x1000, &found, NULL, NULL),
			 VMRES_ENOENT);
	assert_int_equal(read_mmio(m, 0x1000, 4), 0xffffffff);
	assert_int_equal(d.reads, 0);
	assert_int_equal(vmres_devmgr_get(m, id, NULL, NULL, NULL, 0), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_unregister(m, id), VMRES_EDEVICE);
	/* The range is free for someone else; ids are not reused. */
	uint32_t id2;
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id2), 0);
	assert_int_not_equal(id2, id);
	vmres_devmgr_free(m);
	assert_int_equal(d.releases, 2);
}

static void test_unregister_refuses_parent_with_children(void **state)
{
	struct vmres_devmgr *m;
	struct tdev bus, child, grandchild;
	uint32_t b, c, g;
	char *before;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&bus, "pci", m);
	tdev_init(&child, "bridge", m);
	tdev_init(&grandchild, "nic", m);
	assert_int_equal(vmres_devmgr_register(m, &bus.dev, 0, NULL, 0, &b), 0);
	assert_int_equal(vmres_devmgr_register(m, &child.dev, b, NULL, 0, &c), 0);
	assert_int_equal(vmres_devmgr_register(m, &grandchild.dev, c, NULL, 0, &g), 0);
	before = state_of(m);
	assert_int_equal(vmres_devmgr_unregister(m, b), VMRES_EPARENT);
	assert_int_equal(vmres_devmgr_unregister(m, c), VMRES_EPARENT);
	assert_int_equal(vmres_devmgr_unregister(NULL, c), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_unregister(m, 0), VMRES_EDEVICE);
	assert_state(m, before);
	free(before);
	assert_int_equal(vmres_devmgr_unregister(m, g), 0);
	assert_int_equal(vmres_devmgr_unregister(m, c), 0);
	vmres_devmgr_free(m); /* releases b, and waits for c and g */
	assert_int_equal(bus.releases + child.releases + grandchild.releases, 3);
}

/* Release order at free: children before parents. */
static int release_log[8], release_count;

static void ordered_release(void *opaque)
{
	release_log[release_count++] = (int)(intptr_t)opaque;
}

static void test_free_releases_children_before_parents(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	uint32_t id[4];

	(void)state;
	release_count = 0;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	dev.release = ordered_release;
	dev.opaque = (void *)0;
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id[0]), 0);
	dev.opaque = (void *)1;
	assert_int_equal(vmres_devmgr_register(m, &dev, id[0], NULL, 0, &id[1]), 0);
	dev.opaque = (void *)2;
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id[2]), 0);
	dev.opaque = (void *)3;
	assert_int_equal(vmres_devmgr_register(m, &dev, id[1], NULL, 0, &id[3]), 0);
	vmres_devmgr_free(m);
	assert_int_equal(release_count, 4);
	int pos[4];
	for (int i = 0; i < 4; i++)
		pos[release_log[i]] = i;
	assert_true(pos[3] < pos[1]);
	assert_true(pos[1] < pos[0]);
}

/* ---- update and the handle calls ---- */

static void test_update_replaces_resources_atomically(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r1[2] = {test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x100),
				       test_addr_res(VMRES_SPACE_PIO, 0x70, 2)};
	struct vmres_resource r2[3] = {test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x100),
				       test_addr_res(VMRES_SPACE_MMIO, 0x8000, 0x10),
				       test_irq_res(9)};
	struct tdev a, b;
	uint32_t ia, ib, found;
	unsigned int idx;
	char *before;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&a, "a", m);
	tdev_init(&b, "b", m);
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, r1, 2, &ia), 0);
	struct vmres_resource rb = test_addr_res(VMRES_SPACE_MMIO, 0x9000, 0x10);
	assert_int_equal(vmres_devmgr_register(m, &b.dev, 0, &rb, 1, &ib), 0);

	assert_int_equal(vmres_devmgr_update(m, ia, r2, 3), 0);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_PIO, 0x70, &found, NULL, NULL),
			 VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x8008, &found, &idx, NULL), 0);
	assert_int_equal(found, ia);
	assert_int_equal(idx, 1);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x1000, &found, &idx, NULL), 0);
	assert_int_equal(idx, 0);

	before = state_of(m);
	struct vmres_resource clash = test_addr_res(VMRES_SPACE_MMIO, 0x9008, 0x10);
	assert_int_equal(vmres_devmgr_update(m, ia, &clash, 1), VMRES_EOVERLAP);
	struct vmres_resource zero = test_addr_res(VMRES_SPACE_MMIO, 0x9008, 0);
	assert_int_equal(vmres_devmgr_update(m, ia, &zero, 1), VMRES_ESIZE);
	assert_int_equal(vmres_devmgr_update(m, 999, r2, 3), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_update(NULL, ia, r2, 3), VMRES_EINVAL);
	assert_state(m, before);
	free(before);
	/* Moving onto its own old place is no overlap. */
	struct vmres_resource shifted = test_addr_res(VMRES_SPACE_MMIO, 0x1080, 0x100);
	assert_int_equal(vmres_devmgr_update(m, ia, &shifted, 1), 0);
	assert_int_equal(vmres_devmgr_update(m, ia, NULL, 0), 0);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x1080, &found, NULL, NULL),
			 VMRES_ENOENT);
	vmres_devmgr_free(m);
}

static void test_move_unmap_map_without_sysalloc(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[3] = {test_addr_res(VMRES_SPACE_MMIO, 0x10000, 0x1000),
				      test_irq_res(5),
				      test_addr_res(VMRES_SPACE_PIO, 0xc000, 0x20)};
	struct vmres_resource other = test_addr_res(VMRES_SPACE_MMIO, 0x40000, 0x1000);
	struct tdev a, b;
	uint32_t ia, ib, found;
	struct vmres_resource got[3];
	bool mapped[3];
	char *before;

	(void)state;
	r[0].u.addr.align = 0x1000;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&a, "a", m);
	tdev_init(&b, "b", m);
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, r, 3, &ia), 0);
	assert_int_equal(vmres_devmgr_register(m, &b.dev, 0, &other, 1, &ib), 0);

	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x20000), 0);
	assert_int_equal(read_mmio(m, 0x20004, 4), 0x44332211);
	assert_int_equal(a.offset, 4);
	assert_int_equal(read_mmio(m, 0x10004, 4), 0xffffffff);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x20000), 0); /* no-op */

	before = state_of(m);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x40000), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x20800), VMRES_EMISALIGNED);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, UINT64_MAX - 0xfff + 1),
			 VMRES_EOVERFLOW);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 2, 0xfff0), VMRES_ERANGE);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 1, 0x1000), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 3, 0x1000), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_move_range(m, 4242, 0, 0x1000), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_move_range(NULL, ia, 0, 0x1000), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 1), VMRES_ENOENT);
	assert_state(m, before);
	free(before);

	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x20000, &found, NULL, NULL),
			 VMRES_ENOENT);
	/* An unmapped range moves without checks against the bus, even onto b. */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x40000), 0);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x30000), 0);
	assert_int_equal(vmres_devmgr_get(m, ia, NULL, got, mapped, 3), 0);
	assert_false(mapped[0]);
	assert_int_equal(got[0].u.addr.base, 0x30000);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x30fff, &found, NULL, NULL), 0);
	assert_int_equal(found, ia);
	vmres_devmgr_free(m);
}

/* With a sysalloc: the pool follows the bus. */
static void test_move_reserves_in_pool_and_releases_old(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_request q;
	struct vmres_resource bar, blocker;
	struct vmres_sysalloc_alloc_info info;
	size_t n;
	struct tdev a;
	uint32_t ia;
	char *before;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio32", VMRES_SPACE_MMIO, 0xc0000000,
						      0xffffffff),
			 0);
	q = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 5, &bar, 1, &n, NULL), 0);
	q = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_EXACT, 0xd0000000);
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 6, &blocker, 1, &n, NULL), 0);

	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&a, "bar-dev", m);
	a.dev.owner = 5;
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, &bar, 1, &ia), 0);

	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0000000), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xe0000000, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", bar.u.addr.base, &info), VMRES_ENOENT);

	char *sa_before;
	before = state_of(m);
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_before), 0);
	/* Onto an allocation that no device maps: only the pool knows. */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xd0000000), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x1000), VMRES_ERANGE);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0000800), VMRES_EMISALIGNED);
	assert_state(m, before);
	free(before);
	char *sa_after;
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_after), 0);
	assert_string_equal(sa_after, sa_before);
	free(sa_after);
	free(sa_before);

	/* Unmap keeps the reservation: one owner per address, decode on or off. */
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xe0000000, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xe0000000, &info), 0);
	/* Unmapped, a move takes its reservation along, and is refused as a mapped
	 * one is: onto the blocker, or outside the pools, nothing changes. */
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	before = state_of(m);
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_before), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xd0000000), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x1000), VMRES_ERANGE);
	assert_state(m, before);
	free(before);
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_after), 0);
	assert_string_equal(sa_after, sa_before);
	free(sa_before);
	free(sa_after);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xf0000000), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xe0000000, &info), VMRES_ENOENT);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xf0000000, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);

	/* Sharing the sysalloc with the manager's writer lock. */
	assert_int_equal(vmres_sysalloc_release(sa, &blocker, 6), 0);

	/* Into another window of the same space: the pool that holds the address. */
	struct vmres_resource got;
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio64", VMRES_SPACE_MMIO,
						      0x100000000ULL, 0x1ffffffffULL),
			 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x180000000ULL), 0);
	assert_int_equal(vmres_devmgr_get(m, ia, NULL, &got, NULL, 1), 0);
	assert_string_equal(got.pool, "mmio64");
	assert_int_equal(vmres_sysalloc_find(sa, "mmio64", 0x180000000ULL, &info), 0);
	assert_int_equal(info.owner, 5);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xf0000000, &info), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x200000000ULL), VMRES_ERANGE);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xc0000000), 0);
	assert_int_equal(vmres_devmgr_get(m, ia, NULL, &got, NULL, 1), 0);
	assert_string_equal(got.pool, "mmio32");
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* A mapped range whose reservation the sysalloc no longer holds (as after a
 * restore into another sysalloc) moves the same way whether the new range
 * overlaps the old one or not: the new range is reserved, nothing else fails. */
static void test_move_without_old_reservation_overlapping_or_not(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource res, got;
	struct vmres_sysalloc_alloc_info info;
	struct tdev a;
	uint32_t ia;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio32", VMRES_SPACE_MMIO, 0xc0000000,
						      0xffffffff),
			 0);
	assert_int_equal(
		vmres_sysalloc_reserve(sa, "mmio32", 0xc0000000, 0x2000, 0x1000, 5, NULL, &res), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&a, "bar-dev", m);
	a.dev.owner = 5;
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, &res, 1, &ia), 0);

	for (int step = 0; step < 2; step++) {
		/* Step 0 moves by half the size (overlapping), step 1 far away. */
		uint64_t to = step == 0 ? res.u.addr.base + 0x1000 : 0xd0000000;

		assert_int_equal(vmres_devmgr_get(m, ia, NULL, &got, NULL, 1), 0);
		assert_int_equal(vmres_sysalloc_release(sa, &got, 5), 0);
		assert_int_equal(vmres_sysalloc_find(sa, "mmio32", got.u.addr.base, &info),
				 VMRES_ENOENT);
		assert_int_equal(vmres_devmgr_move_range(m, ia, 0, to), 0);
		assert_int_equal(vmres_sysalloc_find(sa, "mmio32", to, &info), 0);
		assert_int_equal(info.owner, 5);
		assert_int_equal(vmres_devmgr_get(m, ia, NULL, &got, NULL, 1), 0);
		assert_int_equal(got.u.addr.base, to);
		assert_int_equal(vmres_sysalloc_validate(sa), 0);
	}
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- register from requests, register unmapped, the sysalloc wrappers ---- */

/* The manager's and the sysalloc's state together. */
static char *both_of(struct vmres_devmgr *m, struct vmres_sysalloc *sa)
{
	char *dm = state_of(m), *text, *both;
	size_t len;

	assert_int_equal(vmres_sysalloc_dump_str(sa, &text), 0);
	len = strlen(dm) + strlen(text) + 2;
	both = malloc(len);
	assert_non_null(both);
	snprintf(both, len, "%s\n%s", dm, text);
	free(dm);
	free(text);
	return both;
}

static void assert_both(struct vmres_devmgr *m, struct vmres_sysalloc *sa, const char *before)
{
	char *now = both_of(m, sa);

	assert_string_equal(now, before);
	free(now);
}

static struct vmres_request msi_rq(uint32_t count)
{
	return VMRES_REQUEST_MSI("gsi-msi", count, false);
}

static void test_register_ex_allocates_requests_for_the_device_owner(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	struct vmres_request q[3] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		msi_rq(2),
		test_rq_addr("pio", VMRES_SPACE_PIO, 0x20, 0x20, VMRES_ADDR_FIRST_FIT, 0),
	};
	struct vmres_resource given = test_irq_res(5), out[5], got[5];
	struct vmres_sysalloc_alloc_info info;
	struct vmres_sysalloc_error err = {0};
	bool mapped[5];
	struct tdev d;
	uint32_t id = 0, found;
	size_t n = 0;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&d, "nic0", m);
	d.dev.owner = 42;
	o.res = &given;
	o.n_res = 1;
	o.reqs = q;
	o.n_reqs = 3;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 5, &n, &err), 0);
	assert_int_not_equal(id, 0);
	assert_int_equal(n, 5);
	assert_int_equal(err.code, 0);
	/* given first, then each request's resources in order */
	assert_true(vmres_resource_equal(&out[0], &given));
	assert_int_equal(out[1].kind, VMRES_RES_ADDR);
	assert_string_equal(out[1].pool, "mmio32");
	assert_int_equal(out[1].u.addr.align, 0x1000);
	assert_int_equal(out[2].kind, VMRES_RES_MSI);
	assert_int_equal(out[3].u.msi.gsi, out[2].u.msi.gsi + 1);
	assert_int_equal(out[4].u.addr.space, VMRES_SPACE_PIO);
	/* the table holds the same, all address ranges mapped */
	assert_int_equal(vmres_devmgr_get(m, id, NULL, got, mapped, 5), 0);
	assert_memory_equal(got, out, sizeof(out));
	assert_false(mapped[0]);
	assert_true(mapped[1]);
	assert_false(mapped[2]);
	assert_true(mapped[4]);
	/* the sysalloc holds each for the device's owner */
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", out[1].u.addr.base, &info), 0);
	assert_int_equal(info.owner, 42);
	assert_int_equal(vmres_sysalloc_find(sa, "gsi-msi", out[3].u.msi.gsi, &info), 0);
	assert_int_equal(info.owner, 42);
	assert_int_equal(vmres_sysalloc_find(sa, "pio", out[4].u.addr.base, &info), 0);
	assert_int_equal(info.owner, 42);
	/* dispatch reaches it, with the resource index as range */
	assert_int_equal(read_mmio(m, out[1].u.addr.base + 8, 4), 0x44332211u);
	assert_int_equal(d.range, 1);
	assert_int_equal(
		vmres_devmgr_find(m, VMRES_SPACE_PIO, out[4].u.addr.base, &found, NULL, NULL), 0);
	assert_int_equal(found, id);
	/* a move keeps the allocator in step: the resource names its pool */
	assert_int_equal(vmres_devmgr_move_range(m, id, 1, 0xd0000000), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &info), 0);
	assert_int_equal(info.owner, 42);
	assert_int_equal(info.res.u.addr.align, 0x1000);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", out[1].u.addr.base, &info),
			 VMRES_ENOENT);
	/* out and n_out are optional; NULL options are the defaults */
	o.res = NULL;
	o.n_res = 0;
	o.n_reqs = 1;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, NULL, &id, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmres_devmgr_get(m, id, NULL, NULL, NULL, 0), 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_register_ex_unmapped_range_is_reserved_off_the_bus(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	struct vmres_request q[2] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
	};
	struct vmres_request taken;
	struct vmres_resource out[2], got[2], other, r;
	struct vmres_sysalloc_alloc_info info;
	bool off[1] = {false}, mapped[2];
	struct tdev d, e;
	uint32_t id, ie, found;
	size_t n;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&d, "bars", m);
	d.dev.owner = 7;
	o.reqs = q;
	o.n_reqs = 2;
	o.mapped = off; /* resource 0 off; resource 1 beyond n_mapped: on */
	o.n_mapped = 1;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 2, &n, NULL), 0);
	assert_int_equal(vmres_devmgr_get(m, id, NULL, got, mapped, 2), 0);
	assert_false(mapped[0]);
	assert_true(mapped[1]);
	/* off the bus ... */
	assert_int_equal(read_mmio(m, out[0].u.addr.base, 4), 0xffffffffu);
	assert_int_equal(d.reads, 0);
	assert_int_equal(
		vmres_devmgr_find(m, VMRES_SPACE_MMIO, out[0].u.addr.base, &found, NULL, NULL),
		VMRES_ENOENT);
	assert_int_equal(read_mmio(m, out[1].u.addr.base, 4), 0x44332211u);
	/* ... and still reserved: one owner per address */
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", out[0].u.addr.base, &info), 0);
	assert_int_equal(info.owner, 7);
	taken = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0, VMRES_ADDR_EXACT,
			     out[0].u.addr.base);
	assert_int_equal(vmres_devmgr_alloc(m, &taken, 1, 8, &other, 1, &n, NULL), VMRES_EOVERLAP);
	/* decode on: mapped where it is reserved */
	assert_int_equal(vmres_devmgr_map_range(m, id, 0), 0);
	assert_int_equal(read_mmio(m, out[0].u.addr.base + 4, 4), 0x44332211u);
	assert_int_equal(d.range, 0);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);

	/* The plain form: a given range registered with decode off may lie on a
	 * mapped one (as after restore); mapping it there is refused. */
	tdev_init(&e, "parked", m);
	r = test_addr_res(VMRES_SPACE_MMIO, out[1].u.addr.base, 0x100);
	o = (struct vmres_devmgr_register_opts)VMRES_DEVMGR_REGISTER_OPTS_INIT;
	o.res = &r;
	o.n_res = 1;
	o.mapped = off;
	o.n_mapped = 1;
	assert_int_equal(vmres_devmgr_register_ex(m, &e.dev, &o, &ie, NULL, 0, NULL, NULL), 0);
	assert_int_equal(read_mmio(m, out[1].u.addr.base, 4), 0x44332211u);
	assert_int_equal(e.reads, 0);
	assert_int_equal(vmres_devmgr_map_range(m, ie, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ie, 0, 0xd0000000), 0);
	assert_int_equal(vmres_devmgr_map_range(m, ie, 0), 0);
	assert_int_equal(read_mmio(m, 0xd0000000, 4), 0x44332211u);
	assert_int_equal(e.reads, 1);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_register_ex_failures_release_what_they_allocated(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m, *bare;
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT, bad;
	struct vmres_request q[3] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		msi_rq(4),
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0, VMRES_ADDR_EXACT, 0xd0000000),
	};
	struct vmres_resource out[6], squatter = test_addr_res(VMRES_SPACE_MMIO, 0xd0000800, 8);
	struct vmres_sysalloc_error err = {0};
	bool flags[7] = {true, true, true, true, true, true, true};
	struct tdev d, s;
	uint32_t id = 0, is;
	size_t n = 99;
	char *before;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&d, "dev", m);
	d.dev.owner = 3;
	/* a range on the bus that the sysalloc does not hold (no pool) */
	tdev_init(&s, "squatter", m);
	assert_int_equal(vmres_devmgr_register(m, &s.dev, 0, &squatter, 1, &is), 0);
	before = both_of(m, sa);
	o.reqs = q;
	o.n_reqs = 3;

	/* the sysalloc takes all three, the bus refuses the last: all given back */
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 6, &n, &err),
			 VMRES_EOVERLAP);
	assert_int_equal(err.code, 0); /* no request failed */
	assert_both(m, sa, before);
	/* the same range with decode off is fine: it is reserved, off the bus */
	o.mapped = flags;
	o.n_mapped = 6;
	flags[5] = false;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 6, &n, &err), 0);
	assert_int_equal(vmres_devmgr_unregister_release(m, id), 0);
	assert_int_equal(vmres_devmgr_unregister(m, is), 0);
	assert_int_equal(vmres_devmgr_register(m, &s.dev, 0, &squatter, 1, &is), 0);
	free(before);
	before = both_of(m, sa);
	id = 0;
	n = 99;

	/* a later request fails: the earlier ones are given back; err names it */
	q[1].u.msi.count = 4090; /* more than the pool's 4072 GSIs */
	o.n_mapped = 0;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, NULL, 0, &n, &err),
			 VMRES_ENOSPC);
	o.n_mapped = 6;
	assert_int_equal(err.code, VMRES_ENOSPC);
	assert_int_equal(err.index, 1);
	q[1].u.msi.count = 4;
	strcpy(q[2].pool, "nope");
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 6, &n, &err),
			 VMRES_EPOOL);
	assert_int_equal(err.index, 2);
	strcpy(q[2].pool, "mmio32");
	assert_both(m, sa, before);
	/* refused before anything is allocated */
	o.parent = 999;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 6, &n, NULL),
			 VMRES_EPARENT);
	o.parent = VMRES_DEVMGR_NO_PARENT;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, out, 5, &n, NULL),
			 VMRES_EFULL);
	bad = o;
	bad.version = 99;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &bad, &id, out, 6, &n, NULL),
			 VMRES_EINVAL);
	bad = o;
	bad.mapped = NULL;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &bad, &id, out, 6, &n, NULL),
			 VMRES_EINVAL);
	bad = o;
	bad.n_mapped = 7; /* more flags than resources */
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &bad, &id, out, 6, &n, NULL),
			 VMRES_EINVAL);
	bad = o;
	bad.reqs = NULL;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &bad, &id, out, 6, &n, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, NULL, 6, &n, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, NULL, out, 6, &n, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_register_ex(NULL, &d.dev, &o, &id, out, 6, &n, NULL),
			 VMRES_EINVAL);
	bad = o;
	bad.n_reqs = 1;
	bad.reqs = &q[1];
	q[1].u.msi.count = VMRES_DEVMGR_MAX_RES + 1;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &bad, &id, NULL, 0, &n, NULL),
			 VMRES_EINVAL);
	q[1].u.msi.count = 4;
	assert_both(m, sa, before);
	assert_int_equal(id, 0);
	assert_int_equal(n, 99);

	/* requests need an attached sysalloc */
	assert_int_equal(vmres_devmgr_new(NULL, &bare), 0);
	free(before);
	before = state_of(bare);
	assert_int_equal(vmres_devmgr_register_ex(bare, &d.dev, &o, &id, out, 6, &n, NULL),
			 VMRES_ESTATE);
	assert_state(bare, before);
	o.n_reqs = 0; /* without requests, it registers */
	o.n_mapped = 0;
	assert_int_equal(vmres_devmgr_register_ex(bare, &d.dev, &o, &id, out, 6, &n, NULL), 0);
	assert_int_equal(n, 0);
	vmres_devmgr_free(bare);
	free(before);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_unregister_release_gives_back_the_device_resources_only(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m, *bare;
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	struct vmres_request q[2] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		msi_rq(1),
	};
	struct vmres_resource out[2], kept, plain = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x10);
	struct vmres_sysalloc_alloc_info info;
	struct tdev d, child;
	uint32_t id, ic;
	size_t n;
	char *before;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&d, "dev", m);
	d.dev.owner = 9;
	o.res = &plain; /* no pool: nothing to give back */
	o.n_res = 1;
	o.reqs = q;
	o.n_reqs = 2;
	assert_int_equal(vmres_devmgr_register_ex(m, &d.dev, &o, &id, NULL, 0, NULL, NULL), 0);
	assert_int_equal(vmres_devmgr_get(m, id, NULL, out, NULL, 0), 0);
	/* the same owner holds something else too */
	assert_int_equal(vmres_devmgr_alloc(m, q, 1, 9, &kept, 1, &n, NULL), 0);
	assert_int_equal(vmres_devmgr_move_range(m, id, 1, 0xd0000000), 0);
	/* a parent with a child: refused, nothing released */
	tdev_init(&child, "child", m);
	assert_int_equal(vmres_devmgr_register(m, &child.dev, id, NULL, 0, &ic), 0);
	before = both_of(m, sa);
	assert_int_equal(vmres_devmgr_unregister_release(m, id), VMRES_EPARENT);
	assert_int_equal(vmres_devmgr_unregister_release(m, 999), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_unregister_release(NULL, id), VMRES_EINVAL);
	assert_both(m, sa, before);
	free(before);
	assert_int_equal(vmres_devmgr_unregister(m, ic), 0);

	assert_int_equal(vmres_devmgr_unregister_release(m, id), 0);
	assert_int_equal(vmres_devmgr_get(m, id, NULL, NULL, NULL, 0), VMRES_EDEVICE);
	/* where it was moved to, and its MSI, are free; the other allocation stays */
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &info), VMRES_ENOENT);
	o = (struct vmres_devmgr_register_opts)VMRES_DEVMGR_REGISTER_OPTS_INIT;
	assert_int_equal(vmres_devmgr_alloc(m, &q[1], 1, 10, out, 1, &n, NULL), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "gsi-msi", out[0].u.msi.gsi, &info), 0);
	assert_int_equal(info.owner, 10);
	assert_int_equal(out[0].u.msi.gsi, 24); /* the first of the pool again */
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", kept.u.addr.base, &info), 0);
	assert_int_equal(info.owner, 9);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	assert_true(wait_released(&d, 1));

	assert_int_equal(vmres_devmgr_new(NULL, &bare), 0);
	assert_int_equal(vmres_devmgr_register(bare, &d.dev, 0, NULL, 0, &id), 0);
	assert_int_equal(vmres_devmgr_unregister_release(bare, id), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_get(bare, id, NULL, NULL, NULL, 0), 0);
	vmres_devmgr_free(bare);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_sysalloc_wrappers_make_one_call_under_the_lock(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m, *bare;
	struct vmres_request q[2] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0, 0, VMRES_ADDR_FIRST_FIT, 0),
	};
	struct vmres_resource out[2], fixed;
	struct vmres_sysalloc_alloc_info info;
	struct vmres_sysalloc_error err = {0};
	size_t n = 0;
	char *before;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	assert_int_equal(vmres_devmgr_alloc(m, q, 1, 4, out, 2, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", out[0].u.addr.base, &info), 0);
	assert_int_equal(info.owner, 4);
	assert_int_equal(vmres_devmgr_reserve(m, "pio", 0x510, 2, 0, 4, "fw-cfg", &fixed), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "pio", 0x511, &info), 0);
	assert_string_equal(info.label, "fw-cfg");

	/* a failed call changes nothing; err says which request */
	assert_int_equal(vmres_sysalloc_dump_str(sa, &before), 0);
	assert_int_equal(vmres_devmgr_alloc(m, q, 2, 4, out, 2, &n, &err), VMRES_ESIZE);
	assert_int_equal(err.index, 1);
	assert_int_equal(vmres_devmgr_reserve(m, "pio", 0x510, 1, 0, 5, NULL, NULL),
			 VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_release(m, &fixed, 5), VMRES_EOWNER);
	{
		char *now;

		assert_int_equal(vmres_sysalloc_dump_str(sa, &now), 0);
		assert_string_equal(now, before);
		free(now);
	}
	free(before);

	assert_int_equal(vmres_devmgr_release(m, &fixed, 4), 0);
	assert_int_equal(vmres_devmgr_release(m, &fixed, 4), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_release_owner(m, 4), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", out[0].u.addr.base, &info),
			 VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_release_owner(m, 4), 0); /* nothing left: fine */

	/* without a sysalloc, or a manager */
	assert_int_equal(vmres_devmgr_new(NULL, &bare), 0);
	assert_int_equal(vmres_devmgr_alloc(bare, q, 1, 4, out, 2, &n, NULL), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_reserve(bare, "pio", 0x510, 2, 0, 4, NULL, NULL),
			 VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_release(bare, &fixed, 4), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_release_owner(bare, 4), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_alloc(NULL, q, 1, 4, out, 2, &n, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_reserve(NULL, "pio", 0x510, 2, 0, 4, NULL, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_release(NULL, &fixed, 4), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_release_owner(NULL, 4), VMRES_EINVAL);
	vmres_devmgr_free(bare);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static int count_allocs(void *ctx, struct vmres_sysalloc *sa)
{
	(void)sa;
	return *(int *)ctx = 7;
}

static void test_with_sysalloc_runs_under_lock(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_sysalloc *sa;
	int ctx = 0;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_with_sysalloc(m, count_allocs, &ctx), VMRES_ESTATE);
	vmres_devmgr_free(m);
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	assert_int_equal(vmres_devmgr_with_sysalloc(m, count_allocs, &ctx), 7);
	assert_int_equal(ctx, 7);
	assert_int_equal(vmres_devmgr_with_sysalloc(m, NULL, &ctx), VMRES_EINVAL);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

struct msi_log {
	int calls;
	int refuse;
	uint32_t instance, gsi;
	unsigned int index;
	struct vmres_msi_msg msg;
};

static int msi_notify(void *ctx, uint32_t instance, unsigned int res_index, uint32_t gsi,
		      const struct vmres_msi_msg *msg)
{
	struct msi_log *l = ctx;

	l->calls++;
	l->instance = instance;
	l->index = res_index;
	l->gsi = gsi;
	l->msg = *msg;
	return l->refuse;
}

static void test_reroute_msi_notifies_then_records(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[2] = {test_irq_res(3), msi_res(24)};
	struct vmres_msi_msg msg = {.addr_lo = 0xfee00000, .addr_hi = 0, .data = 0x4021};
	struct vmres_resource got[2];
	struct msi_log log = {0};
	struct tdev a;
	uint32_t ia;
	char *before;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&a, "nic", m);
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, r, 2, &ia), 0);
	/* Without a notifier the table alone changes. */
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 1, &msg), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(m, msi_notify, &log), 0);
	msg.data = 0x4022;
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 1, &msg), 0);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.instance, ia);
	assert_int_equal(log.index, 1);
	assert_int_equal(log.gsi, 24);
	assert_int_equal(log.msg.data, 0x4022);
	assert_int_equal(vmres_devmgr_get(m, ia, NULL, got, NULL, 2), 0);
	assert_int_equal(got[1].u.msi.msg.data, 0x4022);
	assert_int_equal(got[1].u.msi.msg.addr_lo, 0xfee00000);

	before = state_of(m);
	log.refuse = VMRES_ESYS;
	msg.data = 0x4023;
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 1, &msg), VMRES_ESYS);
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 0, &msg), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 2, &msg), VMRES_ENOENT);
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia + 1, 1, &msg), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_reroute_msi(m, ia, 1, NULL), VMRES_EINVAL);
	assert_state(m, before);
	free(before);
	assert_int_equal(vmres_devmgr_set_msi_notifier(NULL, NULL, NULL), VMRES_EINVAL);
	vmres_devmgr_free(m);
}

/* ---- dispatch ---- */

static void test_pio_in_out_and_rep_string(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_PIO, 0x1f0, 8);
	struct vmres_devmgr_stats st;
	struct tdev d;
	uint32_t id;
	uint8_t buf[16];

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "ide", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);

	d.reply = 0xabcd;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vmres_devmgr_pio(m, 0x1f0, false, 2, 4, buf), 0); /* rep insw */
	assert_int_equal(d.reads, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(buf[2 * i], 0xcd);
		assert_int_equal(buf[2 * i + 1], 0xab);
	}
	assert_int_equal(buf[8], 0);
	for (int i = 0; i < 12; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(vmres_devmgr_pio(m, 0x1f4, true, 4, 3, buf), 0); /* rep outsl */
	assert_int_equal(d.writes, 3);
	assert_int_equal(d.value, 0x0b0a0908);
	assert_int_equal(d.offset, 4);
	assert_int_equal(d.size, 4);

	/* 0x1f6 + 4 straddles the end: a miss, all ones. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vmres_devmgr_pio(m, 0x1f6, false, 4, 2, buf), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(buf[i], 0xff);
	assert_int_equal(buf[8], 0);
	assert_int_equal(vmres_devmgr_pio(m, 0xffff, true, 2, 1, buf), 0); /* past 0xffff */
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(st.pio_miss_reads, 2);
	assert_int_equal(st.pio_miss_writes, 1);
	assert_int_equal(st.mmio_miss_reads + st.mmio_miss_writes, 0);
	assert_int_equal(st.devices, 1);

	assert_int_equal(vmres_devmgr_pio(m, 0x1f0, false, 3, 1, buf), VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_pio(m, 0x1f0, false, 4, 0, buf), VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_pio(m, 0x1f0, false, 4, 1, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_pio(NULL, 0x1f0, false, 4, 1, buf), VMRES_EINVAL);
	vmres_devmgr_free(m);
}

static void test_mmio_sizes_and_split_lengths(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x10);
	struct vmres_devmgr_stats st;
	struct tdev d;
	uint32_t id;
	uint8_t data[8];

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "m", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	for (uint32_t len = 1; len <= 8; len *= 2) {
		memset(data, 0, 8);
		assert_int_equal(vmres_devmgr_mmio(m, 0x1008, len, false, data), 0);
		assert_int_equal(d.size, len);
		for (uint32_t i = 0; i < 8; i++)
			assert_int_equal(data[i], i < len ? 0x11 * (i + 1) : 0);
	}
	/* 7 bytes at 0x1009 = 4 at 0x1009, 2 at 0x100d, 1 at 0x100f. */
	memcpy(data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	d.writes = 0;
	assert_int_equal(vmres_devmgr_mmio(m, 0x1009, 7, true, data), 0);
	assert_int_equal(d.writes, 3);
	assert_int_equal(d.offset, 0xf);
	assert_int_equal(d.size, 1);
	assert_int_equal(d.value, 0x07);
	/* 3 bytes at 0x100e: 2 hit, the last byte at 0x1010 misses. */
	memset(data, 0, 8);
	assert_int_equal(vmres_devmgr_mmio(m, 0x100e, 3, false, data), 0);
	assert_int_equal(data[0], 0x11);
	assert_int_equal(data[1], 0x22);
	assert_int_equal(data[2], 0xff);
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(st.mmio_miss_reads, 1);

	assert_int_equal(vmres_devmgr_mmio(m, 0x1000, 0, false, data), VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_mmio(m, 0x1000, 9, false, data), VMRES_EACCESS);
	vmres_devmgr_free(m);
}

static void test_mmio_split_pieces_past_the_end_miss_instead_of_wrapping(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource low = test_addr_res(VMRES_SPACE_MMIO, 0, 0x1000);
	struct vmres_resource top = test_addr_res(VMRES_SPACE_MMIO, UINT64_MAX - 0xfff, 0x1000);
	struct vmres_devmgr_stats st;
	struct tdev d0, dt;
	uint32_t id;
	uint8_t data[8];

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d0, "at-zero", m);
	tdev_init(&dt, "at-top", m);
	dt.reply = 0x44332211;
	assert_int_equal(vmres_devmgr_register(m, &d0.dev, 0, &low, 1, &id), 0);
	assert_int_equal(vmres_devmgr_register(m, &dt.dev, 0, &top, 1, &id), 0);

	/* 7 bytes at 2^64 - 4: 4 at 2^64 - 4 hit the top device; the 2 and the 1
	 * after them lie past the end and miss. */
	memset(data, 0, sizeof(data));
	assert_int_equal(vmres_devmgr_mmio(m, UINT64_MAX - 3, 7, false, data), 0);
	assert_int_equal(dt.reads, 1);
	assert_int_equal(dt.offset, 0xffc);
	assert_int_equal(dt.size, 4);
	assert_memory_equal(data, "\x11\x22\x33\x44\xff\xff\xff\x00", 8);
	/* 3 bytes at 2^64 - 1: the 2-byte piece straddles the end, the 1-byte
	 * piece starts past it; neither write reaches a device. */
	memset(data, 0x5a, sizeof(data));
	assert_int_equal(vmres_devmgr_mmio(m, UINT64_MAX, 3, true, data), 0);
	/* 5 and 6 bytes at 2^64 - 4: the 4-byte piece hits, the rest misses. */
	assert_int_equal(vmres_devmgr_mmio(m, UINT64_MAX - 3, 5, true, data), 0);
	assert_int_equal(vmres_devmgr_mmio(m, UINT64_MAX - 3, 6, false, data), 0);
	assert_int_equal(data[4], 0xff);
	assert_int_equal(data[5], 0xff);
	assert_int_equal(dt.writes, 1);
	assert_int_equal(dt.reads, 2);

	assert_int_equal(d0.reads, 0);
	assert_int_equal(d0.writes, 0);
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(st.mmio_miss_reads, 3);
	assert_int_equal(st.mmio_miss_writes, 3);
	vmres_devmgr_free(m);
}

static void test_dispatch_on_unregistered_thread_registers_it(void **state)
{
	struct vmres_devmgr *m;
	uint8_t data[8] = {0};

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_thread_unregister(), 0);
	assert_int_equal(vmres_devmgr_thread_unregister(), VMRES_ESTATE);
	assert_int_equal(vmres_devmgr_mmio(m, 0, 4, false, data), 0);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(vmres_devmgr_thread_unregister(), 0);
	assert_int_equal(vmres_devmgr_pio(m, 0, false, 4, 1, data), 0);
	assert_int_equal(vmres_devmgr_thread_register(), 0);
	assert_int_equal(vmres_devmgr_thread_register(), 0);
	vmres_devmgr_free(m);
}

struct vcpu_arg {
	struct vmres_devmgr *m;
	uint16_t port;
	int rc;
};

/* A vCPU thread as a VMM writes it without any registration call. */
static void *vcpu_without_registration(void *p)
{
	struct vcpu_arg *a = p;
	uint8_t data[4] = {1, 2, 3, 4};

	a->rc = vmres_devmgr_pio(a->m, a->port, true, 4, 1, data);
	return NULL;
}

static void test_vcpu_threads_register_themselves_and_unregister_at_exit(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_PIO, 0x80, 4);
	struct tdev d;
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "dev", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	/* Threads that exit registered would leave liburcu's registry pointing at
	 * their freed thread-local storage: grace periods (the updates below, and
	 * the free) would then read it. */
	for (uint16_t i = 0, base = 0x80; i < 64; i++, base ^= 0x80 ^ 0x90) {
		struct vcpu_arg a = {m, base, -1};
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, vcpu_without_registration, &a), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(a.rc, 0);
		assert_int_equal(vmres_devmgr_move_range(m, id, 0, base ^ 0x80 ^ 0x90), 0);
	}
	assert_int_equal(d.writes, 64);
	vmres_devmgr_free(m);
}

static void test_errors_detail_what_to_do(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT, bad;
	struct vmres_request q[2] = {
		test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0),
		msi_rq(2),
	};
	struct vmres_resource out[3];
	struct vmres_device dev = VMRES_DEVICE_INIT, raw;
	char name[VMRES_DEVICE_NAME_MAX + 4];
	uint32_t id = 0;
	size_t n = 0;
	char *before;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	before = state_of(m);
	dev.name = "nic0";
	o.reqs = q;
	o.n_reqs = 2;
	/* output array too small: the size needed */
	assert_int_equal(vmres_devmgr_register_ex(m, &dev, &o, &id, out, 2, &n, NULL), VMRES_EFULL);
	assert_non_null(strstr(vmres_error_detail(VMRES_EFULL), "out_cap is 2"));
	assert_non_null(strstr(vmres_error_detail(VMRES_EFULL), "at least 3"));
	assert_int_equal(vmres_devmgr_alloc(m, q, 2, 7, out, 1, &n, NULL), VMRES_EFULL);
	assert_non_null(strstr(vmres_error_detail(VMRES_EFULL), "at least 3"));
	/* structs not set up with their _INIT macros */
	memset(&raw, 0, sizeof(raw));
	raw.name = "nic0";
	assert_int_equal(vmres_devmgr_register_ex(m, &raw, &o, &id, out, 3, &n, NULL),
			 VMRES_EINVAL);
	assert_non_null(strstr(vmres_error_detail(VMRES_EINVAL), "VMRES_DEVICE_INIT"));
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(vmres_devmgr_register_ex(m, &dev, &bad, &id, out, 3, &n, NULL),
			 VMRES_EINVAL);
	assert_non_null(
		strstr(vmres_error_detail(VMRES_EINVAL), "VMRES_DEVMGR_REGISTER_OPTS_INIT"));
	q[0].u.addr.req.version = 0;
	assert_int_equal(vmres_devmgr_register_ex(m, &dev, &o, &id, out, 3, &n, NULL),
			 VMRES_EINVAL);
	assert_non_null(strstr(vmres_error_detail(VMRES_EINVAL), "VMRES_ADDR_REQ_INIT"));
	q[0].u.addr.req.version = VMRES_ADDR_REQ_VERSION;
	/* a name too long: the limit */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	dev.name = name;
	assert_int_equal(vmres_devmgr_register_ex(m, &dev, &o, &id, out, 3, &n, NULL),
			 VMRES_EINVAL);
	assert_non_null(strstr(vmres_error_detail(VMRES_EINVAL), "device name too long"));
	assert_non_null(strstr(vmres_error_detail(VMRES_EINVAL), "maximum is 31"));
	/* a detail answers only for its own code */
	assert_string_equal(vmres_error_detail(VMRES_ENOSPC), vmres_strerror(VMRES_ENOSPC));
	/* nothing changed */
	assert_int_equal(id, 0);
	assert_int_equal(n, 0);
	assert_state(m, before);
	free(before);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- the caller's context ---- */

static void test_ctx_entry_points_hand_the_caller_to_the_device(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[2] = {test_addr_res(VMRES_SPACE_PIO, 0x80, 4),
				      test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100)};
	struct tdev d, plain;
	struct vmres_resource pr = test_addr_res(VMRES_SPACE_MMIO, 0xd0001000, 0x100);
	int vcpu0, vcpu1;
	uint8_t data[8] = {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
	uint32_t id, pid;
	union {
		struct kvm_run run;
		uint8_t page[4096];
	} *u = calloc(1, sizeof(*u));

	(void)state;
	assert_non_null(u);
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "ctx", m);
	tdev_use_caller(&d);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, r, 2, &id), 0);

	/* PIO, one access and rep */
	assert_int_equal(vmres_devmgr_pio_ctx(m, 0x81, true, 1, 1, data, &vcpu0), 0);
	assert_ptr_equal(d.caller, &vcpu0);
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.offset, 1);
	assert_int_equal(vmres_devmgr_pio_ctx(m, 0x80, false, 2, 3, data, &vcpu1), 0);
	assert_ptr_equal(d.caller, &vcpu1);
	assert_int_equal(d.reads, 3);
	/* MMIO, one access and a split one (4 + 2 + 1) */
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000010, 4, false, data, &vcpu0), 0);
	assert_ptr_equal(d.caller, &vcpu0);
	assert_int_equal(data[0], 0x11);
	d.caller = NULL;
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000020, 7, true, data, &vcpu1), 0);
	assert_ptr_equal(d.caller, &vcpu1);
	assert_int_equal(d.writes, 4);
	/* the entry points without a caller pass NULL */
	assert_int_equal(vmres_devmgr_mmio(m, 0xd0000010, 4, false, data), 0);
	assert_null(d.caller);
	d.caller = &vcpu0;
	assert_int_equal(vmres_devmgr_pio(m, 0x80, true, 1, 1, data), 0);
	assert_null(d.caller);
	/* through struct kvm_run */
	u->run.exit_reason = KVM_EXIT_MMIO;
	u->run.mmio.phys_addr = 0xd0000004;
	u->run.mmio.len = 2;
	assert_int_equal(vmres_devmgr_kvm_exit_ctx(m, &u->run, &vcpu1), 0);
	assert_ptr_equal(d.caller, &vcpu1);
	assert_int_equal(d.offset, 4);
	assert_int_equal(u->run.mmio.data[1], 0x22);
	u->run.exit_reason = KVM_EXIT_IO;
	u->run.io.direction = KVM_EXIT_IO_OUT;
	u->run.io.size = 1;
	u->run.io.port = 0x83;
	u->run.io.count = 1;
	u->run.io.data_offset = 2048;
	assert_int_equal(vmres_devmgr_kvm_exit_ctx(m, &u->run, &vcpu0), 0);
	assert_ptr_equal(d.caller, &vcpu0);
	assert_int_equal(d.offset, 3);
	assert_int_equal(vmres_devmgr_kvm_exit(m, &u->run), 0);
	assert_null(d.caller);
	u->run.exit_reason = KVM_EXIT_HLT;
	assert_int_equal(vmres_devmgr_kvm_exit_ctx(m, &u->run, &vcpu0), VMRES_ENOTSUP);
	assert_int_equal(vmres_devmgr_kvm_exit_ctx(NULL, &u->run, &vcpu0), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000010, 0, false, data, &vcpu0),
			 VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_pio_ctx(m, 0x80, false, 3, 1, data, &vcpu0), VMRES_EACCESS);

	/* a device with the plain callbacks is reached from the ctx entry points */
	tdev_init(&plain, "plain", m);
	assert_int_equal(vmres_devmgr_register(m, &plain.dev, 0, &pr, 1, &pid), 0);
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0001008, 8, false, data, &vcpu0), 0);
	assert_int_equal(plain.reads, 1);
	assert_int_equal(plain.offset, 8);
	assert_int_equal(data[7], 0x88);
	vmres_devmgr_free(m);
	free(u);
}

static void test_access_entry_points_match_the_ctx_forms(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[2] = {test_addr_res(VMRES_SPACE_PIO, 0x80, 4),
				      test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100)};
	struct tdev d;
	int vcpu0, vcpu1;
	uint8_t data[8] = {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
	uint8_t want[8] = {0};
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "access", m);
	tdev_use_caller(&d);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, r, 2, &id), 0);

	/* PIO: (m, port, data, size, count, is_write, caller) */
	assert_int_equal(vmres_devmgr_pio_access(m, 0x81, data, 1, 1, true, &vcpu0), 0);
	assert_ptr_equal(d.caller, &vcpu0);
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.offset, 1);
	assert_int_equal(vmres_devmgr_pio_access(m, 0x80, data, 2, 3, false, &vcpu1), 0);
	assert_ptr_equal(d.caller, &vcpu1);
	assert_int_equal(d.reads, 3);
	/* MMIO: (m, addr, data, len, is_write, caller), the same bytes as _ctx */
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000010, 4, false, want, &vcpu0), 0);
	assert_int_equal(vmres_devmgr_mmio_access(m, 0xd0000010, data, 4, false, &vcpu0), 0);
	assert_ptr_equal(d.caller, &vcpu0);
	assert_memory_equal(data, want, 4);
	assert_int_equal(vmres_devmgr_mmio_access(m, 0xd0000020, data, 7, true, NULL), 0);
	assert_null(d.caller);
	assert_int_equal(d.writes, 4); /* split 4 + 2 + 1 */
	/* the same errors as the other forms */
	assert_int_equal(vmres_devmgr_mmio_access(m, 0xd0000010, data, 0, false, NULL),
			 VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_mmio_access(m, 0xd0000010, NULL, 4, false, NULL),
			 VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_pio_access(m, 0x80, data, 3, 1, false, NULL), VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_pio_access(m, 0x80, data, 4, 0, false, NULL), VMRES_EACCESS);
	assert_int_equal(vmres_devmgr_pio_access(NULL, 0x80, data, 4, 1, false, NULL),
			 VMRES_EINVAL);
	vmres_devmgr_free(m);
}

static void test_ctx_device_without_read_reads_ones_and_drops_writes(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100);
	struct tdev d;
	uint8_t data[4] = {0};
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "wo", m);
	tdev_use_caller(&d);
	d.dev.read_ctx = NULL;
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000000, 4, false, data, &d), 0);
	assert_int_equal(read_mmio(m, 0xd0000000, 4), 0xffffffffu);
	assert_int_equal(d.reads, 0);
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000000, 4, true, data, &d), 0);
	assert_int_equal(d.writes, 1);
	assert_ptr_equal(d.caller, &d);
	d.dev.write_ctx = NULL; /* both NULL: a plain device that answers nothing */
	d.dev.read = NULL;
	r.u.addr.base = 0xd0001000;
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	assert_int_equal(read_mmio(m, 0xd0001000, 2), 0xffffu);
	vmres_devmgr_free(m);
}

static void test_device_with_both_callback_styles_is_refused(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100);
	struct tdev d;
	uint32_t id = 0;
	char *before;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "both", m);
	d.dev.read_ctx = tdev_read_ctx; /* with the plain read and write */
	before = state_of(m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), VMRES_EINVAL);
	d.dev.read_ctx = NULL;
	d.dev.write_ctx = tdev_write_ctx;
	d.dev.write = NULL; /* a plain read, a ctx write */
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), VMRES_EINVAL);
	assert_int_equal(id, 0);
	assert_state(m, before);
	free(before);
	vmres_devmgr_free(m);
}

/* A struct vmres_device of version 1 ends before read_ctx: vmres must read
 * nothing past it. Here the bytes past it are garbage. */
static void test_version_1_device_is_taken_without_reading_past_it(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100);
	struct vmres_devmgr_info info;
	struct tdev d;
	int vcpu;
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "v1", m);
	d.dev.version = 1;
	memset(&d.dev.read_ctx, 0xa5, sizeof(d.dev) - offsetof(struct vmres_device, read_ctx));
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &id), 0);
	assert_int_equal(vmres_devmgr_get(m, id, &info, NULL, NULL, 0), 0);
	assert_string_equal(info.name, "v1");
	assert_int_equal(read_mmio(m, 0xd0000008, 4), 0x44332211u);
	assert_int_equal(vmres_devmgr_mmio_ctx(m, 0xd0000008, 4, false, (uint8_t *)&vcpu, &vcpu),
			 0);
	assert_int_equal(d.reads, 2);
	assert_int_equal(vmres_devmgr_unregister(m, id), 0);
	vmres_devmgr_free(m);
	assert_int_equal(d.releases, 1);
}

static void test_kvm_exit_helper_reads_kvm_run(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[2] = {test_addr_res(VMRES_SPACE_PIO, 0x80, 1),
				      test_addr_res(VMRES_SPACE_MMIO, 0xd0000000, 0x100)};
	struct tdev d;
	uint32_t id;
	/* A kvm_run as KVM lays it out, with the PIO data in the same page. */
	union {
		struct kvm_run run;
		uint8_t page[4096];
	} *u = calloc(1, sizeof(*u));

	(void)state;
	assert_non_null(u);
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "kvm", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, r, 2, &id), 0);

	u->run.exit_reason = KVM_EXIT_IO;
	u->run.io.direction = KVM_EXIT_IO_OUT;
	u->run.io.size = 1;
	u->run.io.port = 0x80;
	u->run.io.count = 2;
	u->run.io.data_offset = 2048;
	u->page[2048] = 0x12;
	u->page[2049] = 0x34;
	assert_int_equal(vmres_devmgr_kvm_exit(m, &u->run), 0);
	assert_int_equal(d.writes, 2);
	assert_int_equal(d.value, 0x34);

	u->run.exit_reason = KVM_EXIT_MMIO;
	u->run.mmio.phys_addr = 0xd0000004;
	u->run.mmio.len = 2;
	u->run.mmio.is_write = 0;
	assert_int_equal(vmres_devmgr_kvm_exit(m, &u->run), 0);
	assert_int_equal(d.reads, 1);
	assert_int_equal(d.offset, 4);
	assert_int_equal(u->run.mmio.data[0], 0x11);
	assert_int_equal(u->run.mmio.data[1], 0x22);

	u->run.exit_reason = KVM_EXIT_HLT;
	assert_int_equal(vmres_devmgr_kvm_exit(m, &u->run), VMRES_ENOTSUP);
	assert_int_equal(vmres_devmgr_kvm_exit(NULL, &u->run), VMRES_EINVAL);
	vmres_devmgr_free(m);
	free(u);
}

/* ---- callbacks that reconfigure from inside the handler ---- */

static void self_move(struct tdev *d, uint64_t value)
{
	switch (value) {
	case 1: /* the guest moved our BAR */
		d->action_rc = vmres_devmgr_move_range(d->m, d->instance, 0, 0x50000);
		break;
	case 2: { /* hot-plug a sibling */
		struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0x60000, 0x1000);
		static struct vmres_device sib = VMRES_DEVICE_INIT;
		uint32_t id;

		d->action_rc = vmres_devmgr_register(d->m, &sib, d->instance, &r, 1, &id);
		break;
	}
	case 3: { /* query and dump from inside */
		char *text;
		uint32_t found;

		d->action_rc =
			vmres_devmgr_find(d->m, VMRES_SPACE_MMIO, 0x60000, &found, NULL, NULL);
		if (d->action_rc == 0)
			d->action_rc = vmres_devmgr_dump_str(d->m, &text);
		if (d->action_rc == 0)
			free(text);
		break;
	}
	default: /* remove ourselves */
		d->action_rc = vmres_devmgr_unregister(d->m, d->instance);
		break;
	}
}

static void test_handler_may_move_register_and_unregister_itself(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0x40000, 0x1000);
	struct tdev d;
	uint32_t found, child;
	uint8_t data[4] = {1, 0, 0, 0};

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&d, "self", m);
	d.action = self_move;
	/* The id lands in d.instance before the device is reachable. */
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &d.instance), 0);

	assert_int_equal(vmres_devmgr_mmio(m, 0x40000, 4, true, data), 0);
	assert_int_equal(d.action_rc, 0);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x50000, &found, NULL, NULL), 0);
	data[0] = 2;
	assert_int_equal(vmres_devmgr_mmio(m, 0x50000, 4, true, data), 0);
	assert_int_equal(d.action_rc, 0);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x60000, &child, NULL, NULL), 0);
	data[0] = 3;
	assert_int_equal(vmres_devmgr_mmio(m, 0x50000, 4, true, data), 0);
	assert_int_equal(d.action_rc, 0);
	data[0] = 4; /* has a child: refused */
	assert_int_equal(vmres_devmgr_mmio(m, 0x50000, 4, true, data), 0);
	assert_int_equal(d.action_rc, VMRES_EPARENT);
	assert_int_equal(vmres_devmgr_unregister(m, child), 0);
	assert_int_equal(vmres_devmgr_mmio(m, 0x50000, 4, true, data), 0);
	assert_int_equal(d.action_rc, 0);
	assert_true(wait_released(&d, 1));
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x50000, &found, NULL, NULL),
			 VMRES_ENOENT);
	vmres_devmgr_free(m);
	assert_int_equal(d.releases, 1);
}

/* ---- iteration and dumps ---- */

struct visit {
	int n;
	uint32_t ids[8];
	size_t n_res[8];
	int stop_at;
	struct vmres_devmgr *m;
};

static int visit(void *ctx, const struct vmres_devmgr_info *info, const struct vmres_resource *res,
		 const bool *mapped)
{
	struct visit *v = ctx;

	(void)res;
	(void)mapped;
	v->ids[v->n] = info->instance;
	v->n_res[v->n] = info->n_res;
	v->n++;
	if (v->m) /* changing the table from the callback neither deadlocks nor shows */
		assert_int_equal(vmres_devmgr_unregister(v->m, info->instance), 0);
	return v->n == v->stop_at ? 99 : 0;
}

static void test_foreach_visits_in_id_order_on_a_copy(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_resource r[2] = {test_irq_res(1), test_irq_res(2)};
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct visit v = {0};
	uint32_t id[3];

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmres_devmgr_register(m, &dev, 0, r, (size_t)i, &id[i]), 0);
	assert_int_equal(vmres_devmgr_foreach(m, visit, &v), 0);
	assert_int_equal(v.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v.ids[i], id[i]);
		assert_int_equal(v.n_res[i], (size_t)i);
	}
	memset(&v, 0, sizeof(v));
	v.stop_at = 2;
	assert_int_equal(vmres_devmgr_foreach(m, visit, &v), 99);
	assert_int_equal(v.n, 2);
	memset(&v, 0, sizeof(v));
	v.m = m;
	assert_int_equal(vmres_devmgr_foreach(m, visit, &v), 0);
	assert_int_equal(v.n, 3);
	struct vmres_devmgr_stats st;
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(st.devices, 0);
	assert_int_equal(vmres_devmgr_foreach(m, NULL, &v), VMRES_EINVAL);
	vmres_devmgr_free(m);
}

static void test_dump_text_is_a_tree(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource host = test_addr_res(VMRES_SPACE_MMIO, 0xe0000000, 0x10000000);
	struct vmres_resource nic[2] = {test_addr_res(VMRES_SPACE_MMIO, 0xfe000000, 0x1000),
					msi_res(24)};
	struct vmres_resource uart[2] = {test_addr_res(VMRES_SPACE_PIO, 0x3f8, 8), test_irq_res(4)};
	uint32_t h, n, u;
	char *text;

	(void)state;
	nic[1].u.msi.msg = (struct vmres_msi_msg){.addr_lo = 0xfee00000, .data = 0x4021};
	strcpy(nic[0].pool, "mmio32");
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	dev.name = "pci-host";
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, &host, 1, &h), 0);
	dev.name = "uart0";
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, uart, 2, &u), 0);
	dev.name = "virtio-net0";
	dev.owner = 2;
	assert_int_equal(vmres_devmgr_register(m, &dev, h, nic, 2, &n), 0);
	assert_int_equal(vmres_devmgr_unmap_range(m, n, 0), 0);
	assert_int_equal(vmres_devmgr_dump_str(m, &text), 0);
	assert_string_equal(text, "devices: 3\n"
				  "[1] pci-host\n"
				  "  mmio [0xe0000000-0xefffffff]\n"
				  "  [3] virtio-net0 (owner 0x2)\n"
				  "    mmio [0xfe000000-0xfe000fff] pool mmio32 (unmapped)\n"
				  "    msi gsi 24 msg 0x00000000:fee00000/0x4021\n"
				  "[2] uart0\n"
				  "  pio [0x3f8-0x3ff]\n"
				  "  irq gsi 4\n");
	free(text);
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(vmres_devmgr_dump(m, f), 0);
	assert_true(ftell(f) > 0);
	fclose(f);
	assert_int_equal(vmres_devmgr_dump(m, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_dump_str(m, NULL), VMRES_EINVAL);
	vmres_devmgr_free(m);
}

static void test_dump_json_nests_children(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource bar = test_addr_res(VMRES_SPACE_MMIO, 0xfffffffff000ULL, 0x1000);
	struct vmres_resource msi = msi_res(30);
	uint32_t a, b, c;
	json_error_t err;
	char *text;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	dev.name = "root";
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &a), 0);
	dev.name = "mid";
	assert_int_equal(vmres_devmgr_register(m, &dev, a, &bar, 1, &b), 0);
	dev.name = "leaf";
	assert_int_equal(vmres_devmgr_register(m, &dev, b, &msi, 1, &c), 0);
	assert_int_equal(vmres_devmgr_dump_json(m, &text), 0);
	json_t *root = json_loads(text, 0, &err);
	free(text);
	assert_non_null(root);
	json_t *devs = json_object_get(root, "devices");
	assert_int_equal(json_array_size(devs), 1);
	json_t *r = json_array_get(devs, 0);
	assert_string_equal(json_string_value(json_object_get(r, "name")), "root");
	json_t *mid = json_array_get(json_object_get(r, "children"), 0);
	assert_int_equal(json_integer_value(json_object_get(mid, "instance")), b);
	json_t *res = json_array_get(json_object_get(mid, "resources"), 0);
	assert_string_equal(json_string_value(json_object_get(res, "base")), "0xfffffffff000");
	assert_string_equal(json_string_value(json_object_get(res, "last")), "0xffffffffffff");
	assert_true(json_is_true(json_object_get(res, "mapped")));
	json_t *leaf = json_array_get(json_object_get(mid, "children"), 0);
	json_t *lr = json_array_get(json_object_get(leaf, "resources"), 0);
	assert_int_equal(json_integer_value(json_object_get(lr, "gsi")), 30);
	assert_int_equal(json_array_size(json_object_get(leaf, "children")), 0);
	json_decref(root);
	assert_int_equal(vmres_devmgr_dump_json(NULL, &text), VMRES_EINVAL);
	vmres_devmgr_free(m);
}

/* A chain of @p n devices named "c", each the child of the one before, restored
 * in one call (registering them one by one would cost O(n^2)). */
static struct vmres_devmgr *chain(uint32_t n, const uint32_t *parents)
{
	struct vmres_devmgr_entry *e = calloc(n, sizeof(*e));
	static struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_devmgr *m;

	assert_non_null(e);
	dev.name = "c";
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct vmres_devmgr_entry){
			.instance = i + 1, .parent = parents ? parents[i] : i, .dev = &dev};
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_restore(m, e, n, n + 1), 0);
	free(e);
	return m;
}

/* Levels below VMRES_DEVMGR_DUMP_DEPTH are shown at that level, in tree order,
 * naming their parent; the dumps of a chain of 30,000 devices (which a snapshot
 * can restore) stay linear in size and do not overflow jansson's recursive
 * encoder. */
static void test_dumps_of_a_deep_chain_are_linear_and_capped(void **state)
{
	/* 1 <- 2 <- ... <- 18; 19 and 20 children of 18; 21 child of 19. */
	const uint32_t parents[21] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10,
				      11, 12, 13, 14, 15, 16, 17, 18, 18, 19};
	const uint32_t n = 30000;
	struct vmres_devmgr *m;
	json_error_t err;
	json_t *root, *list, *dev;
	char *text, want[128];
	size_t len;

	(void)state;
	m = chain(21, parents);
	assert_int_equal(vmres_devmgr_dump_str(m, &text), 0);
	assert_non_null(strstr(text, "\n                              [16] c\n"
				     "                                [17] c\n"
				     "                                [18] c (parent 17)\n"
				     "                                [19] c (parent 18)\n"
				     "                                [21] c (parent 19)\n"
				     "                                [20] c (parent 18)\n"));
	free(text);
	vmres_devmgr_free(m);

	m = chain(n, NULL);
	assert_int_equal(vmres_devmgr_dump_str(m, &text), 0);
	len = strlen(text);
	assert_true(len < 64 * (size_t)n);
	snprintf(want, sizeof(want), "\n%*s[%" PRIu32 "] c (parent %" PRIu32 ")\n",
		 2 * VMRES_DEVMGR_DUMP_DEPTH, "", n, n - 1);
	assert_non_null(strstr(text, want));
	assert_int_equal(strlen(strstr(text, want)), strlen(want));
	free(text);

	assert_int_equal(vmres_devmgr_dump_json(m, &text), 0);
	assert_true(strlen(text) < 1024 * (size_t)n); /* about 660 bytes each */
	root = json_loads(text, 0, &err);
	free(text);
	assert_non_null(root);
	/* Down the nesting to level 15: its "children" holds the rest. */
	list = json_object_get(root, "devices");
	for (unsigned int level = 0; level < VMRES_DEVMGR_DUMP_DEPTH; level++) {
		assert_int_equal(json_array_size(list), 1);
		dev = json_array_get(list, 0);
		assert_int_equal(json_integer_value(json_object_get(dev, "instance")), level + 1);
		assert_null(json_object_get(dev, "parent"));
		list = json_object_get(dev, "children");
	}
	assert_int_equal(json_array_size(list), n - VMRES_DEVMGR_DUMP_DEPTH);
	dev = json_array_get(list, 0);
	assert_int_equal(json_integer_value(json_object_get(dev, "instance")),
			 VMRES_DEVMGR_DUMP_DEPTH + 1);
	assert_null(json_object_get(dev, "parent"));
	assert_int_equal(json_array_size(json_object_get(dev, "children")), 0);
	for (size_t k = 1; k < json_array_size(list); k++) {
		dev = json_array_get(list, k);
		assert_int_equal(json_integer_value(json_object_get(dev, "instance")),
				 VMRES_DEVMGR_DUMP_DEPTH + 1 + k);
		assert_int_equal(json_integer_value(json_object_get(dev, "parent")),
				 VMRES_DEVMGR_DUMP_DEPTH + k);
		assert_int_equal(json_array_size(json_object_get(dev, "children")), 0);
	}
	json_decref(root);
	vmres_devmgr_free(m);
}

/* ---- differential test against a plain table ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return test_splitmix64(&rng_state);
}

#define MD_MAX 40
#define MD_RES 3

struct md_dev {
	bool live;
	uint32_t id, parent;
	size_t n;
	struct vmres_resource res[MD_RES];
	bool mapped[MD_RES];
};

struct md {
	struct md_dev d[MD_MAX];
};

static bool md_clash(const struct md *md, int skip, const struct vmres_resource *res,
		     const bool *mapped, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (res[i].kind != VMRES_RES_ADDR || !mapped[i])
			continue;
		uint64_t b = res[i].u.addr.base, l = b + res[i].u.addr.size - 1;
		for (size_t j = i + 1; j < n; j++)
			if (res[j].kind == VMRES_RES_ADDR && mapped[j] &&
			    res[j].u.addr.space == res[i].u.addr.space &&
			    b <= res[j].u.addr.base + res[j].u.addr.size - 1 &&
			    res[j].u.addr.base <= l)
				return true;
		for (int k = 0; k < MD_MAX; k++) {
			if (!md->d[k].live || k == skip)
				continue;
			for (size_t j = 0; j < md->d[k].n; j++) {
				const struct vmres_resource *o = &md->d[k].res[j];
				if (o->kind == VMRES_RES_ADDR && md->d[k].mapped[j] &&
				    o->u.addr.space == res[i].u.addr.space &&
				    b <= o->u.addr.base + o->u.addr.size - 1 && o->u.addr.base <= l)
					return true;
			}
		}
	}
	return false;
}

static void random_res(struct vmres_resource *r)
{
	if (rnd() % 4 == 0) {
		*r = test_irq_res((uint32_t)(rnd() % 24));
		return;
	}
	enum vmres_space s = rnd() % 3 ? VMRES_SPACE_MMIO : VMRES_SPACE_PIO;
	*r = test_addr_res(s, (rnd() % 64) * 0x10, 1 + rnd() % 0x30);
}

/* The differential test's device: a read tells who answered (model slot + 1),
 * through which resource and at which offset. */
static uint64_t md_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			unsigned int size)
{
	(void)addr;
	(void)size;
	return (uint64_t)(uintptr_t)opaque << 24 | (uint64_t)range << 16 | offset;
}

/* Port dispatch (the PIO direct table) agrees with the model at every port of the
 * window: 1- and 4-byte reads (those that straddle a range's end miss), as rep
 * ins of 2. */
static void md_check_pio(struct vmres_devmgr *m, const struct md *md)
{
	for (uint64_t a = 0; a < 0x440; a++) {
		static const uint8_t sizes[] = {1, 4};

		for (int z = 0; z < 2; z++) {
			uint8_t size = sizes[z], buf[8];
			uint32_t want = UINT32_MAX, got[2] = {0, 0};

			for (int k = 0; k < MD_MAX && want == UINT32_MAX; k++)
				for (size_t j = 0; md->d[k].live && j < md->d[k].n; j++) {
					const struct vmres_resource *r = &md->d[k].res[j];
					if (r->kind == VMRES_RES_ADDR && md->d[k].mapped[j] &&
					    r->u.addr.space == VMRES_SPACE_PIO &&
					    a >= r->u.addr.base &&
					    a + size - 1 <= r->u.addr.base + r->u.addr.size - 1)
						want = (uint32_t)(k + 1) << 24 | (uint32_t)j << 16 |
						       (uint32_t)(a - r->u.addr.base);
				}
			if (size == 1 && want != UINT32_MAX)
				want &= 0xFF;
			else if (size == 1)
				want = 0xFF;
			memset(buf, 0, sizeof(buf));
			assert_int_equal(vmres_devmgr_pio(m, (uint16_t)a, false, size, 2, buf), 0);
			memcpy(&got[0], buf, size);
			memcpy(&got[1], buf + size, size);
			assert_int_equal(got[0], want);
			assert_int_equal(got[1], want);
		}
	}
}

static void md_check(struct vmres_devmgr *m, const struct md *md)
{
	md_check_pio(m, md);
	/* Every address of the small window resolves as the model says. */
	for (int s = 0; s < 2; s++) {
		enum vmres_space space = s ? VMRES_SPACE_MMIO : VMRES_SPACE_PIO;

		for (uint64_t a = 0; a < 0x440; a += 3) {
			uint32_t want = 0, got = 0;
			unsigned int want_idx = 0, got_idx = 0;

			for (int k = 0; k < MD_MAX && !want; k++)
				for (size_t j = 0; md->d[k].live && j < md->d[k].n; j++) {
					const struct vmres_resource *r = &md->d[k].res[j];
					if (r->kind == VMRES_RES_ADDR && md->d[k].mapped[j] &&
					    r->u.addr.space == space && a >= r->u.addr.base &&
					    a <= r->u.addr.base + r->u.addr.size - 1) {
						want = md->d[k].id;
						want_idx = (unsigned int)j;
					}
				}
			int rc = vmres_devmgr_find(m, space, a, &got, &got_idx, NULL);
			assert_int_equal(rc, want ? 0 : VMRES_ENOENT);
			if (want) {
				assert_int_equal(got, want);
				assert_int_equal(got_idx, want_idx);
			}
		}
	}
	for (int k = 0; k < MD_MAX; k++) {
		struct vmres_devmgr_info info;
		struct vmres_resource res[MD_RES];
		bool mapped[MD_RES];

		if (!md->d[k].live)
			continue;
		assert_int_equal(vmres_devmgr_get(m, md->d[k].id, &info, res, mapped, MD_RES), 0);
		assert_int_equal(info.n_res, md->d[k].n);
		assert_int_equal(info.parent, md->d[k].parent);
		assert_memory_equal(res, md->d[k].res, md->d[k].n * sizeof(res[0]));
		assert_memory_equal(mapped, md->d[k].mapped, md->d[k].n * sizeof(bool));
	}
}

/* A randomized test's start: seed the draws and print the seed, make @p dev
 * answer with md_read(), and a manager without a sysalloc. */
static struct vmres_devmgr *md_begin(const char *what, int steps, uint64_t seed,
				     struct vmres_device *dev)
{
	struct vmres_devmgr *m;

	rng_state = seed;
	printf("devmgr: %s, %d steps, seed %#llx\n", what, steps, (unsigned long long)seed);
	dev->read = md_read;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	return m;
}

static void test_differential_against_table_model(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	static struct md md;
	const int steps = 1500;

	(void)state;
	memset(&md, 0, sizeof(md));
	m = md_begin("differential", steps, 0xd3f1ce5ULL, &dev);
	for (int step = 0; step < steps; step++) {
		int op = (int)(rnd() % 8), k = (int)(rnd() % MD_MAX);
		struct md_dev *d = &md.d[k];
		struct vmres_resource res[MD_RES];
		bool mapped[MD_RES];
		size_t n = rnd() % (MD_RES + 1);

		for (size_t i = 0; i < n; i++) {
			random_res(&res[i]);
			mapped[i] = res[i].kind == VMRES_RES_ADDR;
		}
		if (op < 3 && !d->live) { /* register, sometimes under a live parent */
			int p = (int)(rnd() % MD_MAX);
			uint32_t parent = md.d[p].live && rnd() % 2 ? md.d[p].id : 0;
			uint32_t id;
			int want = md_clash(&md, -1, res, mapped, n) ? VMRES_EOVERLAP : 0;

			dev.opaque = (void *)(uintptr_t)(k + 1);
			assert_int_equal(vmres_devmgr_register(m, &dev, parent, res, n, &id), want);
			if (!want) {
				*d = (struct md_dev){
					.live = true, .id = id, .parent = parent, .n = n};
				memcpy(d->res, res, sizeof(res));
				memcpy(d->mapped, mapped, sizeof(mapped));
			}
		} else if (op == 3 && d->live) { /* unregister */
			bool parent = false;
			for (int j = 0; j < MD_MAX; j++)
				parent |= md.d[j].live && md.d[j].parent == d->id;
			assert_int_equal(vmres_devmgr_unregister(m, d->id),
					 parent ? VMRES_EPARENT : 0);
			if (!parent)
				d->live = false;
		} else if (op == 4 && d->live) { /* update */
			int want = md_clash(&md, k, res, mapped, n) ? VMRES_EOVERLAP : 0;

			assert_int_equal(vmres_devmgr_update(m, d->id, res, n), want);
			if (!want) {
				d->n = n;
				memcpy(d->res, res, sizeof(res));
				memcpy(d->mapped, mapped, sizeof(mapped));
			}
		} else if (op >= 5 && d->live && d->n) { /* move, unmap or map */
			unsigned int i = (unsigned int)(rnd() % d->n);
			struct vmres_resource nr[MD_RES];
			bool nm[MD_RES];
			int want;

			memcpy(nr, d->res, sizeof(nr));
			memcpy(nm, d->mapped, sizeof(nm));
			if (d->res[i].kind != VMRES_RES_ADDR) {
				assert_int_equal(vmres_devmgr_unmap_range(m, d->id, i),
						 VMRES_ENOENT);
				continue;
			}
			if (op == 5) {
				uint64_t nb = (rnd() % 64) * 0x10;
				nr[i].u.addr.base = nb;
				want = nm[i] && md_clash(&md, k, nr, nm, d->n) ? VMRES_EOVERLAP : 0;
				assert_int_equal(vmres_devmgr_move_range(m, d->id, i, nb), want);
			} else if (d->mapped[i]) {
				nm[i] = false;
				want = 0;
				assert_int_equal(vmres_devmgr_unmap_range(m, d->id, i), 0);
			} else {
				nm[i] = true;
				want = md_clash(&md, k, nr, nm, d->n) ? VMRES_EOVERLAP : 0;
				assert_int_equal(vmres_devmgr_map_range(m, d->id, i), want);
			}
			if (!want) {
				memcpy(d->res, nr, sizeof(nr));
				memcpy(d->mapped, nm, sizeof(nm));
			}
		}
		if (step % 10 == 0)
			md_check(m, &md);
	}
	md_check(m, &md);
	vmres_devmgr_free(m);
}

/* ---- restore, next id, labels of moved reservations ---- */

static struct vmres_devmgr_entry entry(uint32_t instance, uint32_t parent,
				       const struct vmres_device *dev,
				       const struct vmres_resource *res, const bool *mapped,
				       size_t n_res)
{
	return (struct vmres_devmgr_entry){instance, parent, dev, res, mapped, n_res};
}

static void test_restore_errors_change_nothing(void **state)
{
	struct vmres_devmgr *m, *used;
	struct vmres_device dev = VMRES_DEVICE_INIT, bad = VMRES_DEVICE_INIT;
	struct vmres_resource r[2] = {test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x1000),
				      test_addr_res(VMRES_SPACE_MMIO, 0x1800, 0x1000)};
	struct vmres_resource zero = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0);
	struct vmres_resource wrap = test_addr_res(VMRES_SPACE_MMIO, UINT64_MAX, 2);
	struct vmres_resource port = test_addr_res(VMRES_SPACE_PIO, 0xfff0, 0x20);
	struct vmres_devmgr_entry e[2];
	struct tdev a;
	uint32_t id, next;
	char *empty;

	(void)state;
	bad.version = VMRES_DEVICE_VERSION + 1;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&a, "a", m);
	empty = state_of(m);

	assert_int_equal(vmres_devmgr_restore(NULL, NULL, 0, 1), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_restore(m, NULL, 1, 9), VMRES_EINVAL);
	e[0] = entry(1, 0, NULL, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EINVAL);
	e[0] = entry(1, 0, &bad, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EINVAL);
	e[0] = entry(0, 0, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EINVAL);
	e[0] = entry(5, 0, &dev, NULL, NULL, 0);
	e[1] = entry(5, 0, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 2, 9), VMRES_EINVAL); /* not ascending */
	e[1] = entry(4, 0, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 2, 9), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 5), VMRES_EINVAL); /* next_id not above */
	e[0] = entry(5, 0, &dev, NULL, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EINVAL);
	e[0] = entry(5, 0, &dev, r, NULL, VMRES_DEVMGR_MAX_RES + 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EINVAL);
	e[0] = entry(5, 0, &dev, &zero, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_ESIZE);
	e[0] = entry(5, 0, &dev, &wrap, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EOVERFLOW);
	e[0] = entry(5, 0, &dev, &port, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_ERANGE);
	/* A parent that is unknown, or a later entry. */
	e[0] = entry(5, 3, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EPARENT);
	e[0] = entry(5, 6, &dev, NULL, NULL, 0);
	e[1] = entry(6, 0, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(m, e, 2, 9), VMRES_EPARENT);
	/* Mapped ranges that meet: in one device, and across devices. */
	e[0] = entry(5, 0, &a.dev, r, NULL, 2);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_EOVERLAP);
	e[0] = entry(5, 0, &a.dev, &r[0], NULL, 1);
	e[1] = entry(6, 5, &dev, &r[1], NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 2, 9), VMRES_EOVERLAP);
	assert_state(m, empty);
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 1);
	assert_int_equal(a.releases, 0); /* a failed restore takes no device */

	/* A manager that has registered a device refuses, and is unchanged. */
	assert_int_equal(vmres_devmgr_new(NULL, &used), 0);
	assert_int_equal(vmres_devmgr_register(used, &dev, 0, NULL, 0, &id), 0);
	assert_int_equal(vmres_devmgr_unregister(used, id), 0);
	char *before = state_of(used);
	e[0] = entry(5, 0, &dev, NULL, NULL, 0);
	assert_int_equal(vmres_devmgr_restore(used, e, 1, 9), VMRES_ESTATE);
	assert_state(used, before);
	assert_int_equal(vmres_devmgr_next_id(used, &next), 0);
	assert_int_equal(next, 2);
	free(before);
	vmres_devmgr_free(used);

	/* After the errors the manager still takes a restore, and only one. */
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), 0);
	before = state_of(m);
	assert_int_equal(vmres_devmgr_restore(m, e, 1, 9), VMRES_ESTATE);
	assert_state(m, before);
	free(before);
	assert_int_equal(vmres_devmgr_next_id(NULL, &next), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_next_id(m, NULL), VMRES_EINVAL);
	free(empty);
	vmres_devmgr_free(m);
}

/* Names and pool names must be text the dumps can carry: every call that takes
 * one refuses the rest with VMRES_EINVAL and changes nothing. */
static void test_names_that_are_not_text_are_refused(void **state)
{
	struct vmres_devmgr *m, *fresh;
	struct vmres_resource ok = test_addr_res(VMRES_SPACE_MMIO, 0x1000, 0x1000), r;
	struct vmres_devmgr_entry e;
	struct vmres_device dev;
	struct tdev d;
	uint32_t id, keep = 12345;
	char *before, *json;
	const char *bad;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_new(NULL, &fresh), 0);
	tdev_init(&d, "a", m);
	assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &ok, 1, &id), 0);
	before = state_of(m);
	for (size_t i = 0; (bad = test_bad_name(i)) != NULL; i++) {
		dev = d.dev;
		dev.name = bad;
		assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &keep), VMRES_EINVAL);
		r = test_addr_res(VMRES_SPACE_MMIO, 0x8000, 0x1000);
		snprintf(r.pool, sizeof(r.pool), "%s", bad);
		assert_int_equal(vmres_devmgr_register(m, &d.dev, 0, &r, 1, &keep), VMRES_EINVAL);
		assert_int_equal(vmres_devmgr_update(m, id, &r, 1), VMRES_EINVAL);
		r = test_irq_res(5);
		snprintf(r.pool, sizeof(r.pool), "%s", bad);
		assert_int_equal(vmres_devmgr_update(m, id, &r, 1), VMRES_EINVAL);
		assert_int_equal(keep, 12345);
		assert_state(m, before);

		e = entry(1, 0, &dev, NULL, NULL, 0);
		assert_int_equal(vmres_devmgr_restore(fresh, &e, 1, 2), VMRES_EINVAL);
		e = entry(1, 0, &d.dev, &r, NULL, 1);
		assert_int_equal(vmres_devmgr_restore(fresh, &e, 1, 2), VMRES_EINVAL);
	}
	free(before);

	/* UTF-8 is text: taken, and both dumps carry it. */
	dev = d.dev;
	dev.name = TEST_UTF8_NAME;
	r = test_irq_res(5);
	snprintf(r.pool, sizeof(r.pool), "%s", TEST_UTF8_NAME);
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, &r, 1, &keep), 0);
	assert_int_equal(vmres_devmgr_dump_json(m, &json), 0);
	assert_non_null(strstr(json, "\"name\": \"" TEST_UTF8_NAME "\""));
	assert_non_null(strstr(json, "\"pool\": \"" TEST_UTF8_NAME "\""));
	free(json);
	e = entry(1, 0, &dev, &r, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(fresh, &e, 1, 2), 0);
	vmres_devmgr_free(fresh);
	vmres_devmgr_free(m);
}

/* json_failure_sweep()'s view of vmres_devmgr_dump_json(). */
static int dump_devmgr_json(void *obj, char **out)
{
	struct vmres_devmgr *x = obj;

	return vmres_devmgr_dump_json(x, out);
}

static void test_dump_json_fails_cleanly_at_every_jansson_allocation(void **state)
{
	struct vmres_resource res[4];
	struct vmres_msi_msg msg = {.addr_lo = 0xfee00000, .data = 0x4021};
	struct vmres_devmgr *m;
	struct tdev host, nic;
	uint32_t host_id, nic_id;
	char *want;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&host, "pci-host", m);
	tdev_init(&nic, "virtio-net0", m);
	nic.dev.owner = 2;
	res[0] = test_addr_res(VMRES_SPACE_MMIO, 0xe0000000, 0x10000000);
	assert_int_equal(vmres_devmgr_register(m, &host.dev, 0, res, 1, &host_id), 0);
	res[0] = test_addr_res(VMRES_SPACE_MMIO, 0xfe000000, 0x1000);
	res[1] = msi_res(24);
	res[2] = test_irq_res(5);
	memset(&res[3], 0, sizeof(res[3]));
	res[3].kind = VMRES_RES_ID;
	res[3].u.id.id = 7;
	assert_int_equal(vmres_devmgr_register(m, &nic.dev, host_id, res, 4, &nic_id), 0);
	assert_int_equal(vmres_devmgr_reroute_msi(m, nic_id, 1, &msg), 0);
	assert_int_equal(vmres_devmgr_unmap_range(m, nic_id, 0), 0);
	assert_int_equal(vmres_devmgr_dump_json(m, &want), 0);

	assert_true(json_failure_sweep(dump_devmgr_json, m, want) > 20);
	free(want);
	vmres_devmgr_free(m);
}

static void test_restore_then_dispatch_hits(void **state)
{
	struct vmres_devmgr *m;
	struct tdev a, b, c;
	/* a: a mapped range and an unmapped one inside it. */
	struct vmres_resource ra[3] = {test_addr_res(VMRES_SPACE_MMIO, 0x10000, 0x1000),
				       test_addr_res(VMRES_SPACE_MMIO, 0x10800, 0x100),
				       test_irq_res(5)};
	const bool ma[3] = {true, false, true}; /* an irq's flag is ignored */
	/* b (child of a): unmapped on a's mapped range; a mapped port. */
	struct vmres_resource rb[2] = {test_addr_res(VMRES_SPACE_MMIO, 0x10000, 0x1000),
				       test_addr_res(VMRES_SPACE_PIO, 0x3f8, 8)};
	const bool mb[2] = {false, true};
	struct vmres_resource rc_[1] = {test_addr_res(VMRES_SPACE_MMIO, 0x20000, 0x1000)};
	struct vmres_devmgr_entry e[3];
	struct vmres_resource got[3];
	bool mapped[3];
	uint32_t found, id, next;
	unsigned int idx;
	uint8_t data[4] = {0};
	char *text;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	tdev_init(&a, "a", m);
	tdev_init(&b, "b", m);
	tdev_init(&c, "c", m);
	b.reply = 0x55;
	e[0] = entry(3, 0, &a.dev, ra, ma, 3);
	e[1] = entry(7, 3, &b.dev, rb, mb, 2);
	e[2] = entry(9, 0, &c.dev, rc_, NULL, 1);
	assert_int_equal(vmres_devmgr_restore(m, e, 3, 20), 0);

	assert_int_equal(read_mmio(m, 0x10804, 4), 0x44332211);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.range, 0);
	assert_int_equal(a.offset, 0x804);
	assert_int_equal(vmres_devmgr_pio(m, 0x3f9, false, 1, 1, data), 0);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.range, 1);
	assert_int_equal(data[0], 0x55);
	assert_int_equal(read_mmio(m, 0x20ffc, 4), 0x44332211);
	assert_int_equal(c.reads, 1);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0x10000, &found, &idx, NULL), 0);
	assert_int_equal(found, 3);
	assert_int_equal(idx, 0);

	assert_int_equal(vmres_devmgr_get(m, 3, NULL, got, mapped, 3), 0);
	assert_true(mapped[0]);
	assert_false(mapped[1]);
	assert_false(mapped[2]);
	assert_int_equal(got[1].u.addr.base, 0x10800);
	assert_int_equal(vmres_devmgr_dump_str(m, &text), 0);
	assert_string_equal(text, "devices: 3\n"
				  "[3] a\n"
				  "  mmio [0x10000-0x10fff]\n"
				  "  mmio [0x10800-0x108ff] (unmapped)\n"
				  "  irq gsi 5\n"
				  "  [7] b\n"
				  "    mmio [0x10000-0x10fff] (unmapped)\n"
				  "    pio [0x3f8-0x3ff]\n"
				  "[9] c\n"
				  "  mmio [0x20000-0x20fff]\n");
	free(text);

	/* The restored table behaves as a registered one. */
	assert_int_equal(vmres_devmgr_map_range(m, 7, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, 7, 0, 0x30000), 0);
	assert_int_equal(vmres_devmgr_map_range(m, 7, 0), 0);
	assert_int_equal(read_mmio(m, 0x30000, 1), 0x55);
	assert_int_equal(vmres_devmgr_unregister(m, 3), VMRES_EPARENT);

	/* next_id is honoured: ids of unplugged devices are not handed out again. */
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 20);
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 9, NULL, 0, &id), 0);
	assert_int_equal(id, 20);
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 21);
	vmres_devmgr_free(m);
	assert_int_equal(a.releases, 2); /* the restored a and the registered copy */
	assert_int_equal(b.releases, 1);
	assert_int_equal(c.releases, 1);
}

static void test_restore_next_id_zero_means_exhausted(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_devmgr_entry e = entry(UINT32_MAX, 0, &dev, NULL, NULL, 0);
	uint32_t id = 77, next = 1;
	char *before;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_restore(m, &e, 1, 0), 0);
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 0);
	before = state_of(m);
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id), VMRES_EFULL);
	assert_int_equal(id, 77);
	assert_state(m, before);
	free(before);
	vmres_devmgr_free(m);
}

static void test_next_id_follows_register_not_unregister(void **state)
{
	struct vmres_devmgr *m;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	uint32_t id, next;

	(void)state;
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 1);
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id), 0);
	assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id), 0);
	assert_int_equal(vmres_devmgr_unregister(m, id), 0);
	assert_int_equal(vmres_devmgr_next_id(m, &next), 0);
	assert_int_equal(next, 3);
	vmres_devmgr_free(m);
}

/* The sysalloc's text dump holds @p line. */
static void assert_dump_has(struct vmres_sysalloc *sa, const char *line)
{
	char *text;

	assert_int_equal(vmres_sysalloc_dump_str(sa, &text), 0);
	if (!strstr(text, line))
		fail_msg("\"%s\" not in:\n%s", line, text);
	free(text);
}

/*
 * Moves, unmaps and maps of one range at a time: the manager publishes each as
 * a delta on a shared bus map and merges the delta into a new map when a fifth
 * range is pending (bus_int.h). Ranges of 8 devices go back and forth between
 * 24 slots of each space (back to where the map has them, onto a slot another
 * range just left, away and back again), and after every step each slot answers
 * as the model says: through the port table, the MMIO search and
 * vmres_devmgr_find(), at its first and last bytes.
 */
#define DS_DEV	 8
#define DS_SLOTS 24

static uint64_t ds_base(int space, int slot)
{
	return space ? 0x100000 + (uint64_t)slot * 0x10000 : 0x100 + (uint64_t)slot * 0x10;
}

static uint64_t ds_size(int space)
{
	return space ? 0x1000 : 0x10;
}

/* The device whose range of @p space is mapped at @p slot, or -1. */
static int ds_owner(int slot_of[][2], bool on[][2], int space, int slot)
{
	for (int j = 0; j < DS_DEV; j++)
		if (on[j][space] && slot_of[j][space] == slot)
			return j;
	return -1;
}

/* A 4-byte read at @p addr of space @p sp (0: ports, 1: MMIO). */
static uint32_t ds_read(struct vmres_devmgr *m, int sp, uint64_t addr)
{
	uint8_t buf[4];
	uint32_t v;

	if (sp == 1)
		return read_mmio(m, addr, 4);
	assert_int_equal(vmres_devmgr_pio(m, (uint16_t)addr, false, 4, 1, buf), 0);
	memcpy(&v, buf, 4);
	return v;
}

static void ds_check(struct vmres_devmgr *m, int slot_of[][2], bool on[][2], const uint32_t *id)
{
	for (int sp = 0; sp < 2; sp++) {
		enum vmres_space space = sp ? VMRES_SPACE_MMIO : VMRES_SPACE_PIO;

		for (int s = 0; s < DS_SLOTS; s++) {
			int j = ds_owner(slot_of, on, sp, s);
			uint64_t first = ds_base(sp, s), last = first + ds_size(sp) - 4;

			for (uint64_t a = first; a <= last; a += last - first) {
				/* md_read(): device, range and offset. */
				uint32_t want = (uint32_t)(j + 1) << 24 | (uint32_t)sp << 16 |
						(uint32_t)(a - first);
				uint32_t found = 0;
				unsigned int idx = 0;
				int rc = vmres_devmgr_find(m, space, a, &found, &idx, NULL);

				assert_int_equal(ds_read(m, sp, a), j < 0 ? UINT32_MAX : want);
				assert_int_equal(rc, j < 0 ? VMRES_ENOENT : 0);
				if (j >= 0) {
					assert_int_equal(found, id[j]);
					assert_int_equal(idx, sp);
				}
			}
		}
	}
}

static void test_small_changes_against_slot_model(void **state)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_devmgr *m;
	int slot_of[DS_DEV][2];
	bool on[DS_DEV][2];
	uint32_t id[DS_DEV];
	const int steps = 3000;
	int refused = 0;

	(void)state;
	m = md_begin("small changes", steps, 0x5eed0de17aULL, &dev);
	for (int i = 0; i < DS_DEV; i++) {
		struct vmres_resource res[2] = {
			test_addr_res(VMRES_SPACE_PIO, ds_base(0, i), ds_size(0)),
			test_addr_res(VMRES_SPACE_MMIO, ds_base(1, i), ds_size(1))};

		dev.opaque = (void *)(uintptr_t)(i + 1);
		assert_int_equal(vmres_devmgr_register(m, &dev, 0, res, 2, &id[i]), 0);
		slot_of[i][0] = slot_of[i][1] = i;
		on[i][0] = on[i][1] = true;
	}
	ds_check(m, slot_of, on, id);
	for (int step = 0; step < steps; step++) {
		int i = (int)(rnd() % DS_DEV), sp = (int)(rnd() % 2), op = (int)(rnd() % 5);
		/* Mostly back to the device's own slot or a neighbour's: the cases
		 * where a delta cancels out or reuses a slot just left. */
		int s = (int)(rnd() % 3 ? rnd() % DS_DEV : rnd() % DS_SLOTS);
		int other = ds_owner(slot_of, on, sp, s);
		int want;

		if (op < 3) {
			want = on[i][sp] && other >= 0 && other != i ? VMRES_EOVERLAP : 0;
			assert_int_equal(
				vmres_devmgr_move_range(m, id[i], (unsigned int)sp, ds_base(sp, s)),
				want);
			if (!want)
				slot_of[i][sp] = s;
		} else if (on[i][sp]) {
			want = 0;
			assert_int_equal(vmres_devmgr_unmap_range(m, id[i], (unsigned int)sp), 0);
			on[i][sp] = false;
		} else {
			want = ds_owner(slot_of, on, sp, slot_of[i][sp]) >= 0 ? VMRES_EOVERLAP : 0;
			assert_int_equal(vmres_devmgr_map_range(m, id[i], (unsigned int)sp), want);
			on[i][sp] = !want;
		}
		refused += want != 0;
		ds_check(m, slot_of, on, id);
	}
	/* Both outcomes were exercised. */
	assert_true(refused > steps / 20 && refused < steps / 2);
	vmres_devmgr_free(m);
}

static void test_move_and_remap_keep_the_reservation_label(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_request q;
	struct vmres_resource bar, blocker;
	size_t n;
	struct tdev a;
	uint32_t ia;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_addr_pool(sa, "mmio32", VMRES_SPACE_MMIO, 0xc0000000,
						      0xffffffff),
			 0);
	q = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x2000, 0, VMRES_ADDR_EXACT, 0xc0000000);
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 5, &bar, 1, &n, NULL), 0);
	q.u.addr.req.addr = 0xd0000000;
	assert_int_equal(vmres_sysalloc_alloc(sa, &q, 1, 6, &blocker, 1, &n, NULL), 0);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 5, "testdev"), 0);
	assert_int_equal(vmres_sysalloc_set_label(sa, &bar, 5, "bar0"), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&a, "testdev", m);
	a.dev.owner = 5;
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, &bar, 1, &ia), 0);

	/* A move to disjoint addresses, then onto itself (release first). */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0000000), 0);
	assert_dump_has(sa, "e0000000-e0001fff : testdev bar0\n");
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0001000), 0);
	assert_dump_has(sa, "e0001000-e0002fff : testdev bar0\n");
	/* A failed overlapping move gives the label back with the old range. */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xcfffff00), VMRES_EOVERLAP);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0002000), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xe0001000), 0);
	assert_dump_has(sa, "e0001000-e0002fff : testdev bar0\n");

	/* Unmap keeps the reservation and its label; a move while unmapped moves
	 * both; map puts the range on the bus where it is reserved. */
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_dump_has(sa, "e0001000-e0002fff : testdev bar0\n");
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_dump_has(sa, "e0001000-e0002fff : testdev bar0\n");
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xf0000000), 0);
	assert_dump_has(sa, "f0000000-f0001fff : testdev bar0\n");
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_dump_has(sa, "f0000000-f0001fff : testdev bar0\n");
	/* A refused move while unmapped keeps both where they are. */
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xd0000000), VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_release(sa, &blocker, 6), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0xd0000000), 0);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_dump_has(sa, "d0000000-d0001fff : testdev bar0\n");
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- listeners ---- */

struct listen_log {
	unsigned int prepares, commits, aborts;
	int refuse; /* prepare's answer */
	uint32_t instance;
	unsigned int res_index;
	struct vmres_devmgr_placement from, to;
};

static int log_prepare(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to)
{
	struct listen_log *l = ctx;

	l->prepares++;
	l->instance = instance;
	l->res_index = res_index;
	l->from = *from;
	l->to = *to;
	return l->refuse;
}

static void log_commit(void *ctx, uint32_t instance, unsigned int res_index,
		       const struct vmres_devmgr_placement *from,
		       const struct vmres_devmgr_placement *to)
{
	struct listen_log *l = ctx;

	l->commits++;
	assert_int_equal(instance, l->instance);
	assert_int_equal(res_index, l->res_index);
	assert_memory_equal(from, &l->from, sizeof(*from));
	assert_memory_equal(to, &l->to, sizeof(*to));
}

static void log_abort(void *ctx, uint32_t instance, unsigned int res_index,
		      const struct vmres_devmgr_placement *from,
		      const struct vmres_devmgr_placement *to)
{
	struct listen_log *l = ctx;

	(void)instance;
	(void)res_index;
	(void)from;
	(void)to;
	l->aborts++;
}

static const struct vmres_devmgr_listener log_listener = {
	.version = VMRES_DEVMGR_LISTENER_VERSION,
	.prepare = log_prepare,
	.commit = log_commit,
	.abort = log_abort,
};

/* A listener sees every guest-driven change of its range with the old and new
 * placement, may refuse it (then nothing changes), and is told of an abort when
 * another range of the same change refuses after it accepted. */
static void test_listener_takes_part_in_each_change(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource r[2];
	struct vmres_request q[2];
	struct listen_log l0 = {0}, l1 = {0};
	struct tdev a;
	uint32_t ia;
	size_t n;
	bool want[2] = {false, false};
	char *before, *sa_before, *sa_after;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	q[1] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000, VMRES_ADDR_FIRST_FIT, 0);
	assert_int_equal(vmres_sysalloc_alloc(sa, q, 2, 7, r, 2, &n, NULL), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	tdev_init(&a, "a", m);
	a.dev.owner = 7;
	assert_int_equal(vmres_devmgr_register(m, &a.dev, 0, r, 2, &ia), 0);
	assert_int_equal(vmres_devmgr_set_listener(m, ia, 0, &log_listener, &l0), 0);
	assert_int_equal(vmres_devmgr_set_listener(m, ia, 1, &log_listener, &l1), 0);

	/* a move: prepare, then commit, with both placements */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, r[0].u.addr.base + 0x10000), 0);
	assert_int_equal(l0.prepares, 1);
	assert_int_equal(l0.commits, 1);
	assert_int_equal(l0.from.base, r[0].u.addr.base);
	assert_int_equal(l0.to.base, r[0].u.addr.base + 0x10000);
	assert_int_equal(l0.to.size, 0x1000);
	assert_true(l0.from.mapped && l0.to.mapped);
	/* unmap and map say so */
	assert_int_equal(vmres_devmgr_unmap_range(m, ia, 0), 0);
	assert_true(l0.from.mapped && !l0.to.mapped);
	assert_int_equal(l0.from.base, l0.to.base);
	assert_int_equal(vmres_devmgr_map_range(m, ia, 0), 0);
	assert_true(!l0.from.mapped && l0.to.mapped);
	assert_int_equal(l0.commits, 3);

	/* a refusal: the caller gets its code, nothing changes, nothing commits */
	before = state_of(m);
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_before), 0);
	l0.refuse = VMRES_ESYS;
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, r[0].u.addr.base + 0x20000), VMRES_ESYS);
	assert_int_equal(l0.prepares, 4);
	assert_int_equal(l0.commits, 3);
	assert_int_equal(l0.aborts, 0);
	/* two ranges at once: the second refuses, the first hears abort */
	l0.refuse = 0;
	l1.refuse = VMRES_ESYS;
	assert_int_equal(vmres_devmgr_set_mapped(m, ia, want, 2), VMRES_ESYS);
	assert_int_equal(l0.prepares, 5);
	assert_int_equal(l0.aborts, 1);
	assert_int_equal(l1.prepares, 1);
	assert_int_equal(l1.aborts, 0);
	assert_int_equal(l0.commits, 3);
	assert_state(m, before);
	assert_int_equal(vmres_sysalloc_dump_str(sa, &sa_after), 0);
	assert_string_equal(sa_before, sa_after);
	free(before);
	free(sa_before);
	free(sa_after);
	/* a refusal by vmres itself does not reach the listener */
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, 0x1000), VMRES_ERANGE);
	assert_int_equal(l0.prepares, 5);
	/* accepted by both: two commits, one publish */
	l1.refuse = 0;
	assert_int_equal(vmres_devmgr_set_mapped(m, ia, want, 2), 0);
	assert_int_equal(l0.commits, 4);
	assert_int_equal(l1.commits, 1);
	assert_false(l1.to.mapped);
	/* removed, it hears nothing */
	assert_int_equal(vmres_devmgr_set_listener(m, ia, 0, NULL, NULL), 0);
	assert_int_equal(vmres_devmgr_move_range(m, ia, 0, r[0].u.addr.base), 0);
	assert_int_equal(l0.prepares, 6);

	/* bad arguments */
	struct vmres_devmgr_listener bad = log_listener;

	bad.version = 99;
	assert_int_equal(vmres_devmgr_set_listener(m, ia, 0, &bad, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_set_listener(NULL, ia, 0, NULL, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_devmgr_set_listener(m, 999, 0, NULL, NULL), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_set_listener(m, ia, 2, NULL, NULL), VMRES_ENOENT);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_takes_part_in_each_change),
		cmocka_unit_test(test_register_maps_address_resources),
		cmocka_unit_test(test_small_changes_against_slot_model),
		cmocka_unit_test(test_register_errors_change_nothing),
		cmocka_unit_test(test_unregister_releases_after_grace_period),
		cmocka_unit_test(test_unregister_refuses_parent_with_children),
		cmocka_unit_test(test_free_releases_children_before_parents),
		cmocka_unit_test(test_update_replaces_resources_atomically),
		cmocka_unit_test(test_move_unmap_map_without_sysalloc),
		cmocka_unit_test(test_move_reserves_in_pool_and_releases_old),
		cmocka_unit_test(test_with_sysalloc_runs_under_lock),
		cmocka_unit_test(test_register_ex_allocates_requests_for_the_device_owner),
		cmocka_unit_test(test_register_ex_unmapped_range_is_reserved_off_the_bus),
		cmocka_unit_test(test_register_ex_failures_release_what_they_allocated),
		cmocka_unit_test(test_unregister_release_gives_back_the_device_resources_only),
		cmocka_unit_test(test_sysalloc_wrappers_make_one_call_under_the_lock),
		cmocka_unit_test(test_reroute_msi_notifies_then_records),
		cmocka_unit_test(test_pio_in_out_and_rep_string),
		cmocka_unit_test(test_mmio_sizes_and_split_lengths),
		cmocka_unit_test(test_mmio_split_pieces_past_the_end_miss_instead_of_wrapping),
		cmocka_unit_test(test_dispatch_on_unregistered_thread_registers_it),
		cmocka_unit_test(test_vcpu_threads_register_themselves_and_unregister_at_exit),
		cmocka_unit_test(test_errors_detail_what_to_do),
		cmocka_unit_test(test_kvm_exit_helper_reads_kvm_run),
		cmocka_unit_test(test_ctx_entry_points_hand_the_caller_to_the_device),
		cmocka_unit_test(test_access_entry_points_match_the_ctx_forms),
		cmocka_unit_test(test_ctx_device_without_read_reads_ones_and_drops_writes),
		cmocka_unit_test(test_device_with_both_callback_styles_is_refused),
		cmocka_unit_test(test_version_1_device_is_taken_without_reading_past_it),
		cmocka_unit_test(test_handler_may_move_register_and_unregister_itself),
		cmocka_unit_test(test_foreach_visits_in_id_order_on_a_copy),
		cmocka_unit_test(test_dump_text_is_a_tree),
		cmocka_unit_test(test_dump_json_nests_children),
		cmocka_unit_test(test_dumps_of_a_deep_chain_are_linear_and_capped),
		cmocka_unit_test(test_differential_against_table_model),
		cmocka_unit_test(test_move_without_old_reservation_overlapping_or_not),
		cmocka_unit_test(test_restore_errors_change_nothing),
		cmocka_unit_test(test_names_that_are_not_text_are_refused),
		cmocka_unit_test(test_dump_json_fails_cleanly_at_every_jansson_allocation),
		cmocka_unit_test(test_restore_then_dispatch_hits),
		cmocka_unit_test(test_restore_next_id_zero_means_exhausted),
		cmocka_unit_test(test_next_id_follows_register_not_unregister),
		cmocka_unit_test(test_move_and_remap_keep_the_reservation_label),
	};

	return cmocka_run_group_tests(tests, setup_thread, teardown_thread);
}
