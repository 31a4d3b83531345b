/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit and differential tests of the standalone bus (include/vmres/bus.h) and of
 * the snapshot search it shares with the device manager. */
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

#include <vmres/bus.h>

#include "helpers.h"

/* ---- a recording device (struct tdev, tests/helpers.h) ---- */

static void rec_init(struct tdev *d)
{
	tdev_init(d, "rec", NULL);
	d->reply = 0x1122334455667788ULL;
}

/* ---- state snapshots for "a failed call changed nothing" ---- */

#define SNAP_MAX 256

struct bus_snap {
	size_t n;
	struct vmres_bus_hit r[SNAP_MAX];
};

static void take(struct vmres_bus *bus, struct bus_snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(vmres_bus_ranges(bus, s->r, SNAP_MAX, &s->n), 0);
	assert_true(s->n <= SNAP_MAX);
}

static void assert_same(struct vmres_bus *bus, const struct bus_snap *before)
{
	struct bus_snap now;

	take(bus, &now);
	assert_int_equal(now.n, before->n);
	assert_memory_equal(now.r, before->r, sizeof(now.r[0]) * now.n);
}

static int setup_thread(void **state)
{
	(void)state;
	return vmres_bus_thread_register();
}

static int teardown_thread(void **state)
{
	(void)state;
	return vmres_bus_thread_unregister();
}

static void assert_miss(struct vmres_bus *bus, uint64_t addr)
{
	struct vmres_bus_hit hit;

	memset(&hit, 0x5a, sizeof(hit));
	assert_int_equal(vmres_bus_resolve(bus, addr, &hit), 0);
	assert_null(hit.dev);
}

/* ---- unit tests ---- */

static void test_new_rejects_bad_arguments(void **state)
{
	struct vmres_bus *bus = (struct vmres_bus *)0x1;

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_bus_new((enum vmres_space)7, &bus), VMRES_EINVAL);
	assert_ptr_equal(bus, (struct vmres_bus *)0x1);
	vmres_bus_free(NULL);
}

static void test_insert_then_dispatch_reaches_device(void **state)
{
	struct vmres_bus *bus;
	struct tdev d;
	uint64_t v = 0;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x100, &d.dev, 3), 0);

	assert_int_equal(vmres_bus_read(bus, 0x1010, 4, &v), 0);
	assert_int_equal(d.reads, 1);
	assert_int_equal(d.range, 3);
	assert_int_equal(d.offset, 0x10);
	assert_int_equal(d.addr, 0x1010);
	assert_int_equal(d.size, 4);
	assert_int_equal(v, 0x55667788); /* only the low 4 bytes */

	assert_int_equal(vmres_bus_write(bus, 0x10f8, 8, 0xdeadbeefcafef00dULL), 0);
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.offset, 0xf8);
	assert_int_equal(d.value, 0xdeadbeefcafef00dULL);
	assert_int_equal(vmres_bus_write(bus, 0x1000, 1, 0x1ff), 0);
	assert_int_equal(d.value, 0xff); /* bits above the size are cut */

	vmres_bus_free(bus);
	assert_int_equal(d.releases, 1);
}

static void test_ctx_read_and_write_hand_the_caller_to_the_device(void **state)
{
	struct vmres_bus *bus;
	struct tdev d, plain;
	int vcpu;
	uint64_t v = 0;

	(void)state;
	rec_init(&d);
	tdev_use_caller(&d);
	rec_init(&plain);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x60, 8, &d.dev, 2), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x70, 2, &plain.dev, 0), 0);

	assert_int_equal(vmres_bus_read_ctx(bus, 0x61, 2, &v, &vcpu), 0);
	assert_ptr_equal(d.caller, &vcpu);
	assert_int_equal(d.range, 2);
	assert_int_equal(d.offset, 1);
	assert_int_equal(v, 0x7788);
	assert_int_equal(vmres_bus_write_ctx(bus, 0x67, 1, 0x1ab, &vcpu), 0);
	assert_ptr_equal(d.caller, &vcpu);
	assert_int_equal(d.value, 0xab);
	/* the calls without a caller pass NULL */
	assert_int_equal(vmres_bus_read(bus, 0x60, 1, &v), 0);
	assert_null(d.caller);
	d.caller = &vcpu;
	assert_int_equal(vmres_bus_write(bus, 0x60, 1, 0), 0);
	assert_null(d.caller);
	/* a plain device is reached from the ctx calls; misses are misses */
	assert_int_equal(vmres_bus_read_ctx(bus, 0x71, 1, &v, &vcpu), 0);
	assert_int_equal(plain.reads, 1);
	assert_int_equal(v, 0x88);
	assert_int_equal(vmres_bus_write_ctx(bus, 0x70, 2, 0x1234, &vcpu), 0);
	assert_int_equal(plain.value, 0x1234);
	assert_int_equal(vmres_bus_read_ctx(bus, 0x90, 4, &v, &vcpu), 0);
	assert_int_equal(v, 0xffffffffu);
	assert_int_equal(vmres_bus_read_ctx(bus, 0x60, 3, &v, &vcpu), VMRES_EACCESS);
	assert_int_equal(vmres_bus_read_ctx(bus, 0x60, 1, NULL, &vcpu), VMRES_EINVAL);
	assert_int_equal(vmres_bus_write_ctx(NULL, 0x60, 1, 0, &vcpu), VMRES_EINVAL);
	assert_int_equal(d.reads, 2);
	assert_int_equal(d.writes, 2);

	vmres_bus_free(bus);
	assert_int_equal(d.releases, 1);
}

/* A version 1 struct ends before read_ctx: the bus reads nothing past it. */
static void test_version_1_device_and_mixed_styles(void **state)
{
	struct vmres_bus *bus;
	struct tdev d, both;
	uint64_t v = 0;

	(void)state;
	rec_init(&d);
	d.dev.version = 1;
	memset(&d.dev.read_ctx, 0xa5, sizeof(d.dev) - offsetof(struct vmres_device, read_ctx));
	rec_init(&both);
	both.dev.write_ctx = tdev_write_ctx;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x100, &both.dev, 0), VMRES_EINVAL);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x100, &d.dev, 0), 0);
	assert_int_equal(vmres_bus_read_ctx(bus, 0x1000, 8, &v, &d), 0);
	assert_int_equal(v, 0x1122334455667788ULL);
	assert_int_equal(vmres_bus_write(bus, 0x1000, 8, 5), 0);
	assert_int_equal(d.value, 5);
	vmres_bus_free(bus);
	assert_int_equal(both.releases, 0);
}

static void test_miss_reads_all_ones_and_drops_write(void **state)
{
	struct vmres_bus *bus;
	struct vmres_bus_stats st;
	struct tdev d;
	uint64_t v;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x100, &d.dev, 0), 0);
	const struct {
		uint64_t addr;
		unsigned int size;
		uint64_t ones;
	} cases[] = {
		{0xfff, 1, 0xff},		 /* just below */
		{0x1100, 2, 0xffff},		 /* just above */
		{0x10fe, 4, 0xffffffff},	 /* straddles the end */
		{0x10f9, 8, UINT64_MAX},	 /* straddles by one byte */
		{0xffe, 4, 0xffffffff},		 /* starts below, ends inside */
		{UINT64_MAX, 1, 0xff},		 /* top of the space */
		{UINT64_MAX - 3, 8, UINT64_MAX}, /* would wrap */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 0;
		assert_int_equal(vmres_bus_read(bus, cases[i].addr, cases[i].size, &v), 0);
		assert_int_equal(v, cases[i].ones);
		assert_int_equal(vmres_bus_write(bus, cases[i].addr, cases[i].size, 0), 0);
	}
	assert_int_equal(d.reads, 0);
	assert_int_equal(d.writes, 0);
	assert_int_equal(vmres_bus_stats(bus, &st), 0);
	assert_int_equal(st.miss_reads, 7);
	assert_int_equal(st.miss_writes, 7);
	assert_int_equal(st.ranges, 1);
	/* The last byte of the range still hits. */
	assert_int_equal(vmres_bus_read(bus, 0x10ff, 1, &v), 0);
	assert_int_equal(d.reads, 1);
	vmres_bus_free(bus);
}

#define MISS_THREADS 20
#define MISS_EACH    1000

static void *miss_thread(void *arg)
{
	struct vmres_bus *bus = arg;
	uint64_t v;

	if (vmres_bus_thread_register())
		return arg;
	for (int i = 0; i < MISS_EACH; i++) {
		vmres_bus_read(bus, 0x10 + (uint64_t)i % 4, 1, &v);
		vmres_bus_write(bus, 0x20, 4, 0);
	}
	vmres_bus_thread_unregister();
	return NULL;
}

/* Miss counters are exact with more threads than counter stripes (the first
 * threads own a stripe each, later ones share one). */
static void test_miss_counts_exact_across_many_threads(void **state)
{
	pthread_t t[MISS_THREADS];
	struct vmres_bus_stats st;
	struct vmres_bus *bus;
	void *ret;

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &bus), 0);
	for (int i = 0; i < MISS_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, miss_thread, bus), 0);
	for (int i = 0; i < MISS_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(vmres_bus_stats(bus, &st), 0);
	assert_int_equal(st.miss_reads, (uint64_t)MISS_THREADS * MISS_EACH);
	assert_int_equal(st.miss_writes, (uint64_t)MISS_THREADS * MISS_EACH);
	assert_true(st.last_miss == 0x20 || (st.last_miss >= 0x10 && st.last_miss < 0x14));
	vmres_bus_free(bus);
}

static void test_insert_errors_change_nothing(void **state)
{
	struct vmres_bus *bus, *pio;
	struct vmres_device bad = VMRES_DEVICE_INIT;
	struct tdev d;
	struct bus_snap before;

	(void)state;
	rec_init(&d);
	bad.version = 99;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &pio), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x1000, &d.dev, 0), 0);
	take(bus, &before);

	assert_int_equal(vmres_bus_insert(NULL, 0, 1, &d.dev, 0), VMRES_EINVAL);
	assert_int_equal(vmres_bus_insert(bus, 0, 1, NULL, 0), VMRES_EINVAL);
	assert_int_equal(vmres_bus_insert(bus, 0, 1, &bad, 0), VMRES_EINVAL);
	assert_int_equal(vmres_bus_insert(bus, 0, 0, &d.dev, 0), VMRES_ESIZE);
	assert_int_equal(vmres_bus_insert(bus, UINT64_MAX, 2, &d.dev, 0), VMRES_EOVERFLOW);
	assert_int_equal(vmres_bus_insert(bus, 0x1fff, 1, &d.dev, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_bus_insert(bus, 0x800, 0x801, &d.dev, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_bus_insert(bus, 0x0, UINT64_MAX, &d.dev, 0), VMRES_EOVERLAP);
	assert_int_equal(vmres_bus_insert(bus, 0x1800, 0x10, &d.dev, 0), VMRES_EOVERLAP);
	assert_same(bus, &before);

	assert_int_equal(vmres_bus_insert(pio, 0xfff0, 0x11, &d.dev, 0), VMRES_ERANGE);
	assert_int_equal(vmres_bus_insert(pio, 0x10000, 1, &d.dev, 0), VMRES_ERANGE);
	assert_int_equal(vmres_bus_insert(pio, 0xfff0, 0x10, &d.dev, 0), 0);

	vmres_bus_free(bus);
	vmres_bus_free(pio);
	assert_int_equal(d.releases, 2); /* once per bus it was left on */
}

static void test_adjacent_ranges_and_edges_of_space(void **state)
{
	struct vmres_bus *bus;
	struct tdev a, b, c;
	struct vmres_bus_hit hit;

	(void)state;
	rec_init(&a);
	rec_init(&b);
	rec_init(&c);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0, 0x10, &a.dev, 0), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x10, 0x10, &b.dev, 0), 0);
	assert_int_equal(vmres_bus_insert(bus, UINT64_MAX - 0xf, 0x10, &c.dev, 7), 0);

	assert_int_equal(vmres_bus_resolve(bus, 0, &hit), 0);
	assert_ptr_equal(hit.dev, &a.dev);
	assert_int_equal(vmres_bus_resolve(bus, 0xf, &hit), 0);
	assert_ptr_equal(hit.dev, &a.dev);
	assert_int_equal(hit.offset, 0xf);
	assert_int_equal(vmres_bus_resolve(bus, 0x10, &hit), 0);
	assert_ptr_equal(hit.dev, &b.dev);
	assert_int_equal(hit.base, 0x10);
	assert_int_equal(hit.last, 0x1f);
	assert_int_equal(vmres_bus_resolve(bus, UINT64_MAX, &hit), 0);
	assert_ptr_equal(hit.dev, &c.dev);
	assert_int_equal(hit.range, 7);
	assert_int_equal(hit.offset, 0xf);
	assert_int_equal(hit.last, UINT64_MAX);

	/* A miss is no error: it says so with a NULL device. */
	assert_miss(bus, 0x20);
	vmres_bus_free(bus);
}

static void test_whole_space_range(void **state)
{
	struct vmres_bus *bus;
	struct tdev a;
	uint64_t v;

	(void)state;
	rec_init(&a);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	/* size 2^64 cannot be expressed; [0, UINT64_MAX - 1] plus [UINT64_MAX]. */
	assert_int_equal(vmres_bus_insert(bus, 0, UINT64_MAX, &a.dev, 0), 0);
	assert_int_equal(vmres_bus_read(bus, UINT64_MAX - 8, 8, &v), 0);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.offset, UINT64_MAX - 8);
	assert_int_equal(vmres_bus_read(bus, UINT64_MAX - 7, 8, &v), 0); /* last byte unmapped */
	assert_int_equal(a.reads, 1);
	assert_int_equal(v, UINT64_MAX);
	vmres_bus_free(bus);
}

static void test_remove_unknown_base_is_enoent(void **state)
{
	struct vmres_bus *bus;
	struct tdev d;
	struct bus_snap before;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x1000, &d.dev, 0), 0);
	take(bus, &before);
	assert_int_equal(vmres_bus_remove(bus, 0x1001), VMRES_ENOENT);
	assert_int_equal(vmres_bus_remove(bus, 0), VMRES_ENOENT);
	assert_int_equal(vmres_bus_remove(NULL, 0x1000), VMRES_EINVAL);
	assert_same(bus, &before);
	assert_int_equal(vmres_bus_remove(bus, 0x1000), 0);
	assert_int_equal(vmres_bus_remove(bus, 0x1000), VMRES_ENOENT);
	vmres_bus_free(bus);
	assert_int_equal(d.releases, 1);
}

/* Wait (bounded) for liburcu's call_rcu thread to run a release. */
static bool wait_for(const int *counter, int value)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(counter, __ATOMIC_ACQUIRE) == value)
			return true;
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 1000000}, NULL);
	}
	return false;
}

static void test_release_after_last_range_removed(void **state)
{
	struct vmres_bus *bus;
	struct tdev d;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x60, 1, &d.dev, 0), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x64, 1, &d.dev, 1), 0);
	assert_int_equal(vmres_bus_remove(bus, 0x60), 0);
	/* Still has a range: never released. */
	nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 20000000}, NULL);
	assert_int_equal(__atomic_load_n(&d.releases, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(vmres_bus_remove(bus, 0x64), 0);
	assert_true(wait_for(&d.releases, 1));
	vmres_bus_free(bus);
	assert_int_equal(d.releases, 1);
}

static void test_free_releases_each_device_once(void **state)
{
	struct vmres_bus *bus;
	struct tdev d[3];

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	for (int i = 0; i < 3; i++) {
		rec_init(&d[i]);
		for (int r = 0; r < 4; r++)
			assert_int_equal(vmres_bus_insert(bus, (uint64_t)(i * 4 + r) * 0x100, 0x100,
							  &d[i].dev, (unsigned int)r),
					 0);
	}
	vmres_bus_free(bus);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].releases, 1);
}

static void test_null_callbacks_read_ones_and_drop(void **state)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_bus *bus;
	struct vmres_bus_stats st;
	uint64_t v;

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x10, &dev, 0), 0);
	assert_int_equal(vmres_bus_read(bus, 0x1000, 2, &v), 0);
	assert_int_equal(v, 0xffff);
	assert_int_equal(vmres_bus_write(bus, 0x1000, 2, 5), 0);
	assert_int_equal(vmres_bus_stats(bus, &st), 0);
	assert_int_equal(st.miss_reads, 0); /* a hit on a device without read */
	vmres_bus_free(bus);
}

static void test_bad_size_is_eaccess(void **state)
{
	struct vmres_bus *bus;
	struct tdev d;
	uint64_t v = 42;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0, 0x100, &d.dev, 0), 0);
	for (unsigned int size = 0; size <= 16; size++) {
		if (size == 1 || size == 2 || size == 4 || size == 8)
			continue;
		assert_int_equal(vmres_bus_read(bus, 0, size, &v), VMRES_EACCESS);
		assert_int_equal(vmres_bus_write(bus, 0, size, 0), VMRES_EACCESS);
	}
	assert_int_equal(v, 42);
	assert_int_equal(vmres_bus_read(bus, 0, 4, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_bus_read(NULL, 0, 4, &v), VMRES_EINVAL);
	assert_int_equal(vmres_bus_resolve(bus, 0, NULL), VMRES_EINVAL);
	assert_int_equal(d.reads + d.writes, 0);
	vmres_bus_free(bus);
}

static void test_first_lookup_registers_the_thread(void **state)
{
	struct vmres_bus *bus;
	struct vmres_bus_hit hit;
	uint64_t v = 0;

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	assert_int_equal(vmres_bus_thread_unregister(), 0);
	assert_int_equal(vmres_bus_thread_unregister(), VMRES_ESTATE);
	assert_non_null(strstr(vmres_error_detail(VMRES_ESTATE), "not registered"));
	/* Writers work on unregistered threads, and leave them unregistered. */
	struct tdev d;
	rec_init(&d);
	assert_int_equal(vmres_bus_insert(bus, 0, 1, &d.dev, 0), 0);
	assert_int_equal(vmres_bus_remove(bus, 0), 0);
	assert_int_equal(vmres_bus_thread_unregister(), VMRES_ESTATE);
	/* Each lookup registers the thread it runs on. */
	assert_int_equal(vmres_bus_read(bus, 0, 4, &v), 0);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(vmres_bus_thread_unregister(), 0);
	assert_int_equal(vmres_bus_write(bus, 0, 4, 0), 0);
	assert_int_equal(vmres_bus_thread_unregister(), 0);
	assert_int_equal(vmres_bus_resolve(bus, 0, &hit), 0);
	/* Registering a registered thread is harmless. */
	assert_int_equal(vmres_bus_thread_register(), 0);
	assert_int_equal(vmres_bus_thread_register(), 0);
	vmres_bus_free(bus);
	assert_int_equal(d.releases, 1);
}

static void test_ranges_reports_count_beyond_capacity(void **state)
{
	struct vmres_bus *bus;
	struct vmres_bus_hit out[2];
	struct tdev d;
	size_t n = 0;

	(void)state;
	rec_init(&d);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	for (int i = 3; i >= 0; i--)
		assert_int_equal(vmres_bus_insert(bus, (uint64_t)i * 0x10, 0x10, &d.dev, 0), 0);
	assert_int_equal(vmres_bus_ranges(bus, out, 2, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(out[0].base, 0);
	assert_int_equal(out[1].base, 0x10);
	assert_int_equal(vmres_bus_ranges(bus, NULL, 0, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(vmres_bus_ranges(bus, NULL, 1, &n), VMRES_EINVAL);
	vmres_bus_free(bus);
}

/* A write callback that inserts and removes ranges on its own bus. */
struct reentrant {
	struct vmres_device dev;
	struct vmres_bus *bus;
	int rc;
};

static void reentrant_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			    unsigned int size, uint64_t value)
{
	struct reentrant *r = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	if (value == 1)
		r->rc = vmres_bus_insert(r->bus, 0x2000, 0x10, &r->dev, 1);
	else
		r->rc = vmres_bus_remove(r->bus, 0x1000);
}

static void test_callback_may_insert_and_remove(void **state)
{
	struct reentrant r = {.dev = VMRES_DEVICE_INIT};
	struct vmres_bus_hit hit;

	(void)state;
	r.dev.opaque = &r;
	r.dev.write = reentrant_write;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &r.bus), 0);
	assert_int_equal(vmres_bus_insert(r.bus, 0x1000, 0x10, &r.dev, 0), 0);
	assert_int_equal(vmres_bus_write(r.bus, 0x1000, 4, 1), 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(vmres_bus_resolve(r.bus, 0x2008, &hit), 0);
	assert_int_equal(vmres_bus_write(r.bus, 0x2000, 4, 2), 0); /* removes 0x1000 */
	assert_int_equal(r.rc, 0);
	assert_miss(r.bus, 0x1000);
	vmres_bus_free(r.bus);
}

/* ---- differential test against a plain list of ranges ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return test_splitmix64(&rng_state);
}

#define MODEL_MAX 200

struct model {
	size_t n;
	struct {
		uint64_t base, last;
		int dev;
	} r[MODEL_MAX];
};

/* The model's answer for an access of @p size bytes at @p addr: device or -1. */
static int model_find(const struct model *m, uint64_t addr, unsigned int size, uint64_t *base)
{
	uint64_t last = addr + (size - 1);

	if (last < addr)
		return -1;
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->r[i].base && last <= m->r[i].last) {
			*base = m->r[i].base;
			return m->r[i].dev;
		}
	return -1;
}

static bool model_overlaps(const struct model *m, uint64_t base, uint64_t last)
{
	for (size_t i = 0; i < m->n; i++)
		if (base <= m->r[i].last && m->r[i].base <= last)
			return true;
	return false;
}

/* Addresses near interesting places: range edges, 0, the top of the space. */
static uint64_t pick_addr(const struct model *m)
{
	uint64_t k = rnd() % 8;

	if (m->n == 0 || k == 0)
		return (rnd() & 1) ? rnd() : (rnd() & 3) ? rnd() % 16 : UINT64_MAX - rnd() % 16;
	size_t i = rnd() % m->n;
	uint64_t jitter = rnd() % 9;

	return (k & 1) ? m->r[i].base + jitter - 4 : m->r[i].last + jitter - 4;
}

static void pick_range(uint64_t *base, uint64_t *size)
{
	switch (rnd() % 4) {
	case 0: /* small, anywhere in a small window: many overlaps */
		*base = rnd() % 0x4000;
		*size = 1 + rnd() % 0x200;
		break;
	case 1: /* near the top */
		*size = 1 + rnd() % 0x100;
		*base = UINT64_MAX - (*size - 1) - rnd() % 0x200;
		break;
	case 2: /* near 0 */
		*base = rnd() % 0x40;
		*size = 1 + rnd() % 0x40;
		break;
	default: /* anywhere */
		*base = rnd();
		*size = 1 + (rnd() >> (rnd() % 64));
		break;
	}
}

/* Ranges of the PIO space, shaped for its direct table (256-port pages): small
 * ones anywhere, whole pages (shared table pages), ones at the top of the space
 * (some past port 0xFFFF: VMRES_ERANGE) and near port 0. */
static void pick_pio_range(uint64_t *base, uint64_t *size)
{
	switch (rnd() % 4) {
	case 0:
		*base = rnd() % 0x10000;
		*size = 1 + rnd() % 0x20;
		break;
	case 1:
		*base = (rnd() % 256) * 256 + ((rnd() & 1) ? 0 : rnd() % 256);
		*size = (1 + rnd() % 4) * 256 - ((rnd() & 1) ? 0 : rnd() % 3);
		break;
	case 2:
		*size = 1 + rnd() % 0x300;
		*base = 0x10000 - *size - rnd() % 0x10 + ((rnd() % 4) ? 0 : rnd() % 8);
		break;
	default:
		*base = rnd() % 0x40;
		*size = 1 + rnd() % 0x40;
		break;
	}
}

/* Ports near the interesting places of the PIO table: range edges, page edges,
 * port 0 and the last port (accesses there straddle the end of the space). */
static uint64_t pick_port(const struct model *m)
{
	static const uint64_t fixed[] = {0, 1, 0xFF, 0x100, 0xFFFC, 0xFFFE, 0xFFFF, 0x10000};
	uint64_t k = rnd() % 8;

	if (k == 0)
		return fixed[rnd() % 8];
	if (k == 1)
		return (rnd() % 256) * 256 + ((rnd() & 1) ? 0 : 255);
	if (m->n == 0 || k == 2)
		return rnd() % 0x10000;
	return pick_addr(m) & 0x1FFFF;
}

/* The bus against the list model: @p steps random inserts and removes in
 * @p space, each followed by lookups and accesses that must agree. */
static void differential(enum vmres_space space, uint64_t seed, int steps)
{
	static struct tdev devs[8];
	struct vmres_bus *bus;
	struct model *m = calloc(1, sizeof(*m));
	bool pio = space == VMRES_SPACE_PIO;
	uint64_t limit = pio ? VMRES_BUS_PIO_LAST : UINT64_MAX;

	rng_state = seed;
	printf("bus: differential (%s), %d steps, seed %#llx\n", pio ? "pio" : "mmio", steps,
	       (unsigned long long)rng_state);
	assert_non_null(m);
	for (int i = 0; i < 8; i++)
		rec_init(&devs[i]);
	assert_int_equal(vmres_bus_new(space, &bus), 0);
	for (int step = 0; step < steps; step++) {
		uint64_t op = rnd() % 10, base, size;

		if (op < 4 && m->n < MODEL_MAX) {
			int dev = (int)(rnd() % 8);
			int want;

			if (pio)
				pick_pio_range(&base, &size);
			else
				pick_range(&base, &size);
			if (base + (size - 1) < base)
				want = VMRES_EOVERFLOW;
			else if (base + (size - 1) > limit)
				want = VMRES_ERANGE;
			else if (model_overlaps(m, base, base + (size - 1)))
				want = VMRES_EOVERLAP;
			else
				want = 0;
			assert_int_equal(vmres_bus_insert(bus, base, size, &devs[dev].dev, 0),
					 want);
			if (want == 0) {
				m->r[m->n].base = base;
				m->r[m->n].last = base + (size - 1);
				m->r[m->n].dev = dev;
				m->n++;
			}
		} else if (op < 6) {
			size_t i = m->n ? rnd() % m->n : 0;
			bool real = m->n && (rnd() % 4);

			base = real ? m->r[i].base : pio ? pick_port(m) : pick_addr(m);
			uint64_t dummy;
			int present = model_find(m, base, 1, &dummy) >= 0 && dummy == base;
			assert_int_equal(vmres_bus_remove(bus, base), present ? 0 : VMRES_ENOENT);
			for (size_t j = 0; present && j < m->n; j++)
				if (m->r[j].base == base) {
					m->r[j] = m->r[--m->n];
					break;
				}
		}
		/* After every step: several lookups and accesses agree with the model. */
		for (int q = 0; q < 8; q++) {
			static const unsigned int sizes[] = {1, 2, 4, 8};
			uint64_t addr = pio ? pick_port(m) : pick_addr(m), mbase = 0, v;
			unsigned int size = sizes[rnd() % 4];
			int want = model_find(m, addr, size, &mbase);
			int before = want >= 0 ? devs[want].reads : 0;
			struct vmres_bus_hit hit;

			assert_int_equal(vmres_bus_read(bus, addr, size, &v), 0);
			if (want >= 0) {
				assert_int_equal(devs[want].reads, before + 1);
				assert_int_equal(devs[want].offset, addr - mbase);
				assert_int_equal(devs[want].size, size);
			} else {
				assert_int_equal(v,
						 size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1);
			}
			want = model_find(m, addr, 1, &mbase);
			assert_int_equal(vmres_bus_resolve(bus, addr, &hit), 0);
			if (want >= 0) {
				assert_ptr_equal(hit.dev, &devs[want].dev);
				assert_int_equal(hit.base, mbase);
				assert_int_equal(hit.offset, addr - mbase);
			} else {
				assert_null(hit.dev);
			}
		}
		struct vmres_bus_stats st;
		assert_int_equal(vmres_bus_stats(bus, &st), 0);
		assert_int_equal(st.ranges, m->n);
	}
	printf("bus: differential ended with %zu ranges\n", m->n);
	vmres_bus_free(bus);
	free(m);
}

static void test_differential_against_list_model(void **state)
{
	(void)state;
	differential(VMRES_SPACE_MMIO, 0x5eed0b05ULL, 4000);
}

/* The PIO bus dispatches through its direct port table: the same model. */
static void test_pio_differential_against_list_model(void **state)
{
	(void)state;
	differential(VMRES_SPACE_PIO, 0x5eed0f10ULL, 4000);
}

/* Edges of the port table: port 0, port 0xFFFF, an access straddling the end of
 * the space, ranges that cover whole pages next to each other, and the table
 * after a remove and a re-insert elsewhere. */
static void test_pio_table_edges(void **state)
{
	struct tdev d[4];
	struct vmres_bus *bus;
	struct vmres_bus_hit hit;
	uint64_t v;

	(void)state;
	for (int i = 0; i < 4; i++)
		rec_init(&d[i]);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0, 1, &d[0].dev, 0), 0);
	assert_int_equal(vmres_bus_insert(bus, 0xFFFE, 2, &d[1].dev, 1), 0);
	/* Two ranges of whole pages, back to back: pages inside each are shared. */
	assert_int_equal(vmres_bus_insert(bus, 0x1000, 0x300, &d[2].dev, 2), 0);
	assert_int_equal(vmres_bus_insert(bus, 0x1300, 0x200, &d[3].dev, 3), 0);

	assert_int_equal(vmres_bus_read(bus, 0, 1, &v), 0);
	assert_int_equal(d[0].reads, 1);
	assert_int_equal(vmres_bus_read(bus, 0, 2, &v), 0); /* straddles the end of port 0 */
	assert_int_equal(d[0].reads, 1);
	assert_int_equal(v, 0xFFFF);
	assert_int_equal(vmres_bus_read(bus, 0xFFFF, 1, &v), 0);
	assert_int_equal(d[1].reads, 1);
	assert_int_equal(d[1].offset, 1);
	assert_int_equal(vmres_bus_read(bus, 0xFFFE, 2, &v), 0);
	assert_int_equal(d[1].reads, 2);
	assert_int_equal(vmres_bus_read(bus, 0xFFFF, 2, &v), 0); /* past the last port */
	assert_int_equal(vmres_bus_read(bus, 0xFFFE, 4, &v), 0);
	assert_int_equal(d[1].reads, 2);
	assert_int_equal(vmres_bus_resolve(bus, 0x10000, &hit), 0);
	assert_null(hit.dev);
	for (uint64_t p = 0x0FFF; p <= 0x1500; p++) {
		int want = p < 0x1000 ? -1 : p < 0x1300 ? 2 : p < 0x1500 ? 3 : -1;

		assert_int_equal(vmres_bus_resolve(bus, p, &hit), 0);
		if (want < 0) {
			assert_null(hit.dev);
		} else {
			assert_ptr_equal(hit.dev, &d[want].dev);
			assert_int_equal(hit.offset, p - (want == 2 ? 0x1000 : 0x1300));
		}
	}
	/* An access across the boundary of two ranges belongs to neither. */
	assert_int_equal(vmres_bus_write(bus, 0x12FF, 2, 0xAAAA), 0);
	assert_int_equal(d[2].writes + d[3].writes, 0);
	/* Remove the first and map it again elsewhere: the table follows. */
	assert_int_equal(vmres_bus_remove(bus, 0x1000), 0);
	assert_int_equal(vmres_bus_resolve(bus, 0x1100, &hit), 0);
	assert_null(hit.dev);
	assert_int_equal(vmres_bus_insert(bus, 0x8000, 0x100, &d[2].dev, 2), 0);
	assert_int_equal(vmres_bus_write(bus, 0x80FF, 1, 0x5A), 0);
	assert_int_equal(d[2].writes, 1);
	assert_int_equal(d[2].offset, 0xFF);
	assert_int_equal(vmres_bus_resolve(bus, 0x1300, &hit), 0);
	assert_ptr_equal(hit.dev, &d[3].dev);
	vmres_bus_free(bus);
}

/* The whole PIO space in one range, then one port per range over several pages. */
static void test_pio_table_whole_space_and_dense_ports(void **state)
{
	static struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_bus *bus;
	struct vmres_bus_hit hit;

	(void)state;
	assert_int_equal(vmres_bus_new(VMRES_SPACE_PIO, &bus), 0);
	assert_int_equal(vmres_bus_insert(bus, 0, 0x10000, &dev, 7), 0);
	for (uint64_t p = 0; p <= 0xFFFF; p += 0xFF) {
		assert_int_equal(vmres_bus_resolve(bus, p, &hit), 0);
		assert_int_equal(hit.range, 7);
		assert_int_equal(hit.offset, p);
	}
	assert_int_equal(vmres_bus_remove(bus, 0), 0);
	for (unsigned int i = 0; i < 0x300; i++)
		assert_int_equal(vmres_bus_insert(bus, 0x3F0 + i, 1, &dev, i), 0);
	for (unsigned int i = 0; i < 0x300; i++) {
		assert_int_equal(vmres_bus_resolve(bus, 0x3F0 + i, &hit), 0);
		assert_int_equal(hit.range, i);
	}
	assert_miss(bus, 0x3EF);
	assert_miss(bus, 0x3F0 + 0x300);
	vmres_bus_free(bus);
}

/* Bus sizes around the index's level boundaries: every start and its neighbours. */
static void test_every_size_up_to_700_ranges(void **state)
{
	static struct vmres_device dev = VMRES_DEVICE_INIT;

	(void)state;
	for (size_t n = 0; n <= 700; n += (n < 90 ? 1 : 37)) {
		struct vmres_bus *bus;
		struct vmres_bus_hit hit;

		assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(vmres_bus_insert(bus, 0x1000 + i * 0x20, 0x10, &dev,
							  (unsigned int)i),
					 0);
		for (size_t i = 0; i < n; i++) {
			uint64_t b = 0x1000 + i * 0x20;

			assert_int_equal(vmres_bus_resolve(bus, b, &hit), 0);
			assert_int_equal(hit.range, i);
			assert_int_equal(vmres_bus_resolve(bus, b + 0xf, &hit), 0);
			assert_int_equal(hit.range, i);
			assert_miss(bus, b + 0x10);
			assert_miss(bus, b - 1);
		}
		assert_miss(bus, UINT64_MAX);
		assert_miss(bus, 0);
		vmres_bus_free(bus);
	}
}

/* One layout for the bucket test: @p n ranges of @p size bytes, range i at
 * starts[i] (sorted). Every address near every start and end, and a spread of
 * addresses between, resolves to the range that holds it or to nothing. */
static void check_layout(const uint64_t *starts, size_t n, uint64_t size)
{
	static struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_bus *bus;
	struct vmres_bus_hit hit;

	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &bus), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vmres_bus_insert(bus, starts[i], size, &dev, (unsigned int)i), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t last = starts[i] + (size - 1);
		uint64_t probe[] = {starts[i], starts[i] + size / 2, last};

		for (size_t j = 0; j < 3; j++) {
			assert_int_equal(vmres_bus_resolve(bus, probe[j], &hit), 0);
			assert_non_null(hit.dev);
			assert_int_equal(hit.range, i);
			assert_int_equal(hit.offset, probe[j] - starts[i]);
		}
		if (starts[i] > 0 && (i == 0 || starts[i - 1] + (size - 1) < starts[i] - 1))
			assert_miss(bus, starts[i] - 1);
		if (last < UINT64_MAX && (i + 1 == n || last + 1 < starts[i + 1]))
			assert_miss(bus, last + 1);
	}
	/* Between and beyond the ranges: a spread over the whole 64-bit space. */
	for (uint64_t k = 0; k < 4096; k++) {
		uint64_t addr = k * 0x0010000000000001ULL + (k & 7) * 0x1111;
		int want = -1;

		for (size_t i = 0; i < n; i++)
			if (addr >= starts[i] && addr - starts[i] < size)
				want = (int)i;
		assert_int_equal(vmres_bus_resolve(bus, addr, &hit), 0);
		if (want < 0) {
			assert_null(hit.dev);
		} else {
			assert_non_null(hit.dev);
			assert_int_equal(hit.range, want);
		}
	}
	vmres_bus_free(bus);
}

/* The bucket table in front of the tree (bus_int.h): evenly spread ranges (every
 * bucket answers alone), clusters of 2 to 5 ranges in one bucket among spread
 * ones (past the bucket's window of 2, the tree answers), ranges
 * at the bottom and the top of the space, and a single range. */
static void test_bucket_table_layouts(void **state)
{
	uint64_t s[64];
	size_t n;

	(void)state;
	/* Spread evenly, as the benchmark lays them. */
	for (n = 0; n < 64; n++)
		s[n] = 0x100000000ULL + n * 0x10000;
	check_layout(s, 64, 0x1000);
	/* 32 ranges spread 16 MiB apart: 128 buckets of 4 MiB. Ranges 10 and up
	 * are replaced by a cluster of 2 to 5 in the middle of bucket 40. */
	for (size_t cluster = 2; cluster <= 5; cluster++) {
		for (n = 0; n < 32; n++)
			s[n] = 0x40000000ULL + n * 0x1000000;
		for (size_t i = 0; i < cluster; i++)
			s[10 + i] = 0x40000000ULL + 10 * 0x1000000 + 0x10000 + i * 0x100;
		check_layout(s, 32, 0x80);
	}
	/* A PC-like map: a few ranges below 4 GiB and one far above. */
	{
		uint64_t pc[] = {0xB0000000ULL, 0xD0000000ULL, 0xD0001000ULL,	0xD0002000ULL,
				 0xD0003000ULL, 0xD0004000ULL, 0xD0005000ULL,	0xFEC00000ULL,
				 0xFED00000ULL, 0xFEE00000ULL, 0x8000000000ULL, 0x8000100000ULL};

		check_layout(pc, 12, 0x1000);
	}
	/* The bottom and the top of the space: the span is the whole of it. */
	for (n = 0; n < 8; n++) {
		s[n] = n * 0x100;
		s[8 + n] = UINT64_MAX - (7 - n) * 0x100 - 0xFF;
	}
	check_layout(s, 16, 0x100);
	s[0] = 0x12345000ULL;
	check_layout(s, 1, 0x1000);
	s[0] = UINT64_MAX - 0xFFF;
	check_layout(s, 1, 0x1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_arguments),
		cmocka_unit_test(test_insert_then_dispatch_reaches_device),
		cmocka_unit_test(test_ctx_read_and_write_hand_the_caller_to_the_device),
		cmocka_unit_test(test_version_1_device_and_mixed_styles),
		cmocka_unit_test(test_miss_reads_all_ones_and_drops_write),
		cmocka_unit_test(test_miss_counts_exact_across_many_threads),
		cmocka_unit_test(test_insert_errors_change_nothing),
		cmocka_unit_test(test_adjacent_ranges_and_edges_of_space),
		cmocka_unit_test(test_whole_space_range),
		cmocka_unit_test(test_remove_unknown_base_is_enoent),
		cmocka_unit_test(test_release_after_last_range_removed),
		cmocka_unit_test(test_free_releases_each_device_once),
		cmocka_unit_test(test_null_callbacks_read_ones_and_drop),
		cmocka_unit_test(test_bad_size_is_eaccess),
		cmocka_unit_test(test_first_lookup_registers_the_thread),
		cmocka_unit_test(test_ranges_reports_count_beyond_capacity),
		cmocka_unit_test(test_callback_may_insert_and_remove),
		cmocka_unit_test(test_differential_against_list_model),
		cmocka_unit_test(test_pio_differential_against_list_model),
		cmocka_unit_test(test_pio_table_edges),
		cmocka_unit_test(test_pio_table_whole_space_and_dense_ports),
		cmocka_unit_test(test_every_size_up_to_700_ranges),
		cmocka_unit_test(test_bucket_table_layouts),
	};

	return cmocka_run_group_tests(tests, setup_thread, teardown_thread);
}
