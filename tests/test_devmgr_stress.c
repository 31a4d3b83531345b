/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Concurrency stress test of the device manager: reader threads dispatch MMIO
 * reads and writes while a writer thread registers, moves, updates and
 * unregisters devices, and a device moves itself from inside its own handler.
 * Runs for about a second (also under ThreadSanitizer and AddressSanitizer).
 *
 * What it checks, for every dispatch:
 *  - a hit lands on a device whose range held the address at some moment during
 *    the call: the writer brackets every change with an "epoch" counter (odd
 *    while a change is being published) and logs each device's base with the
 *    epoch it took effect in; the reader reads the epoch before (t0) and after
 *    (t1) the call, and the base the device saw (addr - offset) must be one the
 *    device had at some epoch in [t0, t1];
 *  - the value read is the one that device returns;
 *  - a released device is never entered (a flag checked on entry and on exit,
 *    and the device's memory is freed by its release callback, so a late entry
 *    is also a use-after-free under ASan);
 *  - ranges that stay mapped across changes never miss: two static devices, and
 *    the fixed range of a device whose other range the writer keeps moving with
 *    vmres_devmgr_update() (no gap while the map changes).
 * At the end every device registered was released exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <cmocka.h>

#include <vmres/bus.h>
#include <vmres/devmgr.h>

#include "helpers.h"

#define READERS	    3
#define SLOTS	    24
#define SLOT_BASE   0x10000000ULL
#define SLOT_STRIDE 0x1000ULL
#define SLOT_SIZE   0x100ULL
#define STATIC_BASE 0x20000000ULL /* two static devices, 0x100 each */
#define FIXED_BASE  0x30000000ULL /* the updated device's range that never moves */
#define MOVING_BASE 0x30010000ULL /* ... and its range that moves, among 4 places */
#define SELF_X	    0x40000000ULL /* the self-moving device's two places */
#define SELF_Y	    0x40001000ULL
#define MAX_HIST    16000
#define MAX_LOG	    64
#define MAX_UPDATES 100000
#define RUN_NS	    1000000000LL

/* What the test remembers about each device ever registered (never freed). */
struct hist {
	uint32_t serial;
	int releases; /* atomic */
	int n_log;    /* atomic: entries published */
	int cap_log;
	struct {
		uint64_t epoch;
		uint64_t base;
	} * log;
};

/* The device itself: freed by its release callback. */
struct sdev {
	struct hist *h;
	uint32_t instance;
};

static struct hist hists[MAX_HIST];
static int n_hists;
static uint64_t epoch; /* atomic */
static int stop;       /* atomic */
static int violations; /* atomic */
static char first_violation[256];
static struct vmres_devmgr *mgr;

static void violation(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&violations, 1, __ATOMIC_SEQ_CST) == 0) {
		va_start(ap, fmt);
		vsnprintf(first_violation, sizeof(first_violation), fmt, ap);
		va_end(ap);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	return test_splitmix64(s);
}

/* ---- the devices ---- */

/* What the reader's thread saw inside the callback of its current access. */
static _Thread_local struct {
	struct hist *h;
	uint64_t addr, offset;
	unsigned int range;
} seen;

static uint64_t sdev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size)
{
	struct sdev *d = opaque;
	struct hist *h = d->h;

	(void)size;
	if (__atomic_load_n(&h->releases, __ATOMIC_ACQUIRE))
		violation("device %u entered after its release", h->serial);
	seen.h = h;
	seen.addr = addr;
	seen.offset = offset;
	seen.range = range;
	if (__atomic_load_n(&h->releases, __ATOMIC_ACQUIRE))
		violation("device %u released while inside a callback", h->serial);
	return h->serial;
}

static void sdev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		       unsigned int size, uint64_t value)
{
	(void)value;
	sdev_read(opaque, range, offset, addr, size);
}

static void sdev_release(void *opaque)
{
	struct sdev *d = opaque;

	__atomic_fetch_add(&d->h->releases, 1, __ATOMIC_ACQ_REL);
	free(d);
}

static struct hist *new_hist(int cap)
{
	struct hist *h = &hists[n_hists];

	h->serial = (uint32_t)n_hists++;
	h->cap_log = cap;
	h->log = calloc((size_t)cap, sizeof(*h->log));
	if (!h->log)
		abort();
	return h;
}

static void log_base(struct hist *h, uint64_t e, uint64_t base)
{
	int n = __atomic_load_n(&h->n_log, __ATOMIC_RELAXED);

	if (n == h->cap_log) {
		violation("log of device %u is full", h->serial);
		return;
	}
	h->log[n].epoch = e;
	h->log[n].base = base;
	__atomic_store_n(&h->n_log, n + 1, __ATOMIC_RELEASE);
}

/* Did @p h have base @p base at some epoch in [t0, t1]? */
static bool had_base(struct hist *h, uint64_t base, uint64_t t0, uint64_t t1)
{
	int n = __atomic_load_n(&h->n_log, __ATOMIC_ACQUIRE);

	for (int i = 0; i < n; i++) {
		uint64_t from = h->log[i].epoch;
		uint64_t until = i + 1 < n ? h->log[i + 1].epoch : UINT64_MAX;

		if (h->log[i].base == base && from <= t1 && until >= t0)
			return true;
	}
	return false;
}

static struct vmres_device make_device(struct sdev *d)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;

	dev.name = "stress";
	dev.opaque = d;
	dev.read = sdev_read;
	dev.write = sdev_write;
	dev.release = sdev_release;
	return dev;
}

static struct vmres_resource mmio(uint64_t base, uint64_t size)
{
	return test_addr_res(VMRES_SPACE_MMIO, base, size);
}

/* The self-moving device: a write of 1 moves it to the other of its places. */
static struct hist *self_hist;
static uint32_t self_instance;
static int self_moves; /* atomic */

static void self_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		       unsigned int size, uint64_t value)
{
	sdev_read(opaque, range, offset, addr, size);
	if (value == 1) {
		uint64_t to = addr - offset == SELF_X ? SELF_Y : SELF_X;
		int rc = vmres_devmgr_move_range(mgr, self_instance, 0, to);

		/* Another reader may have moved it first: then it is already there. */
		if (rc != 0)
			violation("self move: %s", vmres_errname(rc));
		else
			__atomic_fetch_add(&self_moves, 1, __ATOMIC_RELAXED);
	}
}

/* ---- the writer ---- */

/* The updated device: range 0 fixed, range 1 moves among 4 places. */
static struct hist *upd_hist;
static uint32_t upd_instance;

struct slot {
	struct sdev *d; /* NULL: free */
};

static void begin_change(void)
{
	__atomic_fetch_add(&epoch, 1, __ATOMIC_SEQ_CST); /* odd */
}

static void end_change(void)
{
	__atomic_fetch_add(&epoch, 1, __ATOMIC_SEQ_CST); /* even */
}

static uint64_t current_epoch(void)
{
	return __atomic_load_n(&epoch, __ATOMIC_SEQ_CST);
}

struct writer_stats {
	int registers, moves, unregisters, updates, refused;
};

static void *writer(void *arg)
{
	struct writer_stats *ws = arg;
	struct slot slots[SLOTS] = {{0}};
	uint64_t s = 0x57e55ULL, deadline = now_ns() + RUN_NS;
	int upd_place = 0;
	struct vmres_resource ur[2] = {mmio(FIXED_BASE, 0x100), mmio(MOVING_BASE, 0x100)};

	while (now_ns() < deadline) {
		uint64_t op = rnd(&s) % 8;
		size_t i = rnd(&s) % SLOTS, j = rnd(&s) % SLOTS;
		int rc;

		if (op < 3 && !slots[i].d) { /* register at a free slot */
			struct sdev *d = calloc(1, sizeof(*d));
			struct vmres_resource r = mmio(SLOT_BASE + i * SLOT_STRIDE, SLOT_SIZE);
			struct vmres_device dev = make_device(d);

			d->h = new_hist(MAX_LOG);
			begin_change();
			log_base(d->h, current_epoch(), r.u.addr.base);
			rc = vmres_devmgr_register(mgr, &dev, 0, &r, 1, &d->instance);
			end_change();
			if (rc)
				violation("register: %s", vmres_errname(rc));
			slots[i].d = d;
			ws->registers++;
			if (n_hists == MAX_HIST - 1)
				break;
		} else if (op < 5 && slots[i].d && i != j) { /* move to another slot */
			struct sdev *d = slots[i].d;
			uint64_t to = SLOT_BASE + j * SLOT_STRIDE;

			if (d->h->n_log == MAX_LOG)
				continue;
			if (slots[j].d) { /* occupied: refused, nothing changes */
				rc = vmres_devmgr_move_range(mgr, d->instance, 0, to);
				if (rc != VMRES_EOVERLAP)
					violation("move onto a device: %s", vmres_errname(rc));
				ws->refused++;
				continue;
			}
			begin_change();
			log_base(d->h, current_epoch(), to);
			rc = vmres_devmgr_move_range(mgr, d->instance, 0, to);
			end_change();
			if (rc)
				violation("move: %s", vmres_errname(rc));
			slots[j].d = d;
			slots[i].d = NULL;
			ws->moves++;
		} else if (op == 5 && slots[i].d) { /* unregister */
			begin_change();
			rc = vmres_devmgr_unregister(mgr, slots[i].d->instance);
			end_change();
			if (rc)
				violation("unregister: %s", vmres_errname(rc));
			slots[i].d = NULL; /* freed by its release callback */
			ws->unregisters++;
		} else if (op == 6 && ws->updates < MAX_UPDATES) { /* move its range 1 */
			upd_place = (upd_place + 1) % 4;
			ur[1] = mmio(MOVING_BASE + (uint64_t)upd_place * 0x1000, 0x100);
			begin_change();
			log_base(upd_hist, current_epoch(), ur[1].u.addr.base);
			rc = vmres_devmgr_update(mgr, upd_instance, ur, 2);
			end_change();
			if (rc)
				violation("update: %s", vmres_errname(rc));
			ws->updates++;
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- the readers ---- */

struct reader_stats {
	uint64_t seed;
	uint64_t hits, misses, self_writes;
};

static void check_access(uint64_t addr, uint64_t t0, uint64_t t1, uint32_t value, bool hit)
{
	if (!hit)
		return;
	if (value != seen.h->serial)
		violation("read %#x from device %u", value, seen.h->serial);
	if (seen.addr != addr)
		violation("device saw %#llx for %#llx", (unsigned long long)seen.addr,
			  (unsigned long long)addr);
	if (seen.h == self_hist) {
		uint64_t base = addr - seen.offset;

		if (base != SELF_X && base != SELF_Y)
			violation("self-moving device at %#llx", (unsigned long long)base);
		return;
	}
	if (seen.range == 1 || addr >= SLOT_BASE + SLOTS * SLOT_STRIDE || addr < SLOT_BASE) {
		if (seen.range == 1 && !had_base(seen.h, addr - seen.offset, t0, t1))
			violation("updated range at %#llx outside epochs [%llu, %llu]",
				  (unsigned long long)(addr - seen.offset), (unsigned long long)t0,
				  (unsigned long long)t1);
		return;
	}
	if (!had_base(seen.h, addr - seen.offset, t0, t1))
		violation("device %u hit at base %#llx it did not have in epochs [%llu, %llu]",
			  seen.h->serial, (unsigned long long)(addr - seen.offset),
			  (unsigned long long)t0, (unsigned long long)t1);
}

static void *reader(void *arg)
{
	struct reader_stats *rs = arg;
	uint64_t s = rs->seed;

	if (vmres_devmgr_thread_register())
		violation("thread register");
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint64_t k = rnd(&s) % 16, addr;
		bool must_hit = false, write = false;
		uint8_t data[4] = {0};

		if (k < 10) { /* a slot, sometimes just past its range */
			addr = SLOT_BASE + (rnd(&s) % SLOTS) * SLOT_STRIDE + rnd(&s) % 0x140;
		} else if (k < 12) {
			addr = STATIC_BASE + (rnd(&s) % 2) * 0x100 + rnd(&s) % 0xfd;
			must_hit = true;
		} else if (k < 13) {
			addr = FIXED_BASE + rnd(&s) % 0xfd;
			must_hit = true;
		} else if (k < 15) {
			addr = MOVING_BASE + (rnd(&s) % 4) * 0x1000 + rnd(&s) % 0xfd;
		} else {
			addr = ((rnd(&s) & 1) ? SELF_X : SELF_Y) + rnd(&s) % 0xfd;
			write = rnd(&s) % 4 == 0;
			data[0] = 1;
			rs->self_writes += write;
		}
		seen.h = NULL;
		uint64_t t0 = current_epoch();
		int rc = vmres_devmgr_mmio(mgr, addr, 4, write, data);
		uint64_t t1 = current_epoch();
		uint32_t value;

		memcpy(&value, data, 4);
		if (rc)
			violation("dispatch: %s", vmres_errname(rc));
		if (!seen.h) {
			rs->misses++;
			if (must_hit)
				violation("miss at %#llx, which is always mapped",
					  (unsigned long long)addr);
			if (!write && value != 0xffffffff)
				violation("a miss read %#x", value);
			continue;
		}
		rs->hits++;
		if (write)
			continue;
		check_access(addr, t0, t1, value, true);
	}
	vmres_devmgr_thread_unregister();
	return NULL;
}

static void test_dispatch_during_register_move_unregister(void **state)
{
	pthread_t readers[READERS], wt;
	struct reader_stats rs[READERS];
	struct writer_stats ws = {0};
	struct sdev *st[2], *self;
	struct vmres_resource r;
	struct vmres_device dev;
	uint32_t id;

	(void)state;
	printf("devmgr_stress: %d readers, %d slots, %.1f s\n", READERS, SLOTS, RUN_NS / 1e9);
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(vmres_devmgr_new(NULL, &mgr), 0);
	for (int i = 0; i < 2; i++) {
		st[i] = calloc(1, sizeof(*st[i]));
		st[i]->h = new_hist(1);
		log_base(st[i]->h, 0, STATIC_BASE + (uint64_t)i * 0x100);
		r = mmio(STATIC_BASE + (uint64_t)i * 0x100, 0x100);
		dev = make_device(st[i]);
		assert_int_equal(vmres_devmgr_register(mgr, &dev, 0, &r, 1, &id), 0);
	}
	struct sdev *ud = calloc(1, sizeof(*ud));
	struct vmres_resource ur[2] = {mmio(FIXED_BASE, 0x100), mmio(MOVING_BASE, 0x100)};

	ud->h = upd_hist = new_hist(MAX_UPDATES + 1);
	log_base(upd_hist, 0, MOVING_BASE);
	dev = make_device(ud);
	assert_int_equal(vmres_devmgr_register(mgr, &dev, 0, ur, 2, &upd_instance), 0);
	self = calloc(1, sizeof(*self));
	self->h = self_hist = new_hist(1);
	r = mmio(SELF_X, 0x100);
	dev = make_device(self);
	dev.write = self_write;
	assert_int_equal(vmres_devmgr_register(mgr, &dev, 0, &r, 1, &self_instance), 0);

	for (int t = 0; t < READERS; t++) {
		rs[t] = (struct reader_stats){.seed = 0x1234ULL + (uint64_t)t};
		assert_int_equal(pthread_create(&readers[t], NULL, reader, &rs[t]), 0);
	}
	assert_int_equal(pthread_create(&wt, NULL, writer, &ws), 0);
	pthread_join(wt, NULL);
	uint64_t hits = 0, misses = 0, self_writes = 0;
	for (int t = 0; t < READERS; t++) {
		pthread_join(readers[t], NULL);
		hits += rs[t].hits;
		misses += rs[t].misses;
		self_writes += rs[t].self_writes;
	}
	printf("devmgr_stress: %llu hits, %llu misses, %llu self-writes; %d registers, %d moves, "
	       "%d refused, %d updates, %d unregisters, %d self-moves\n",
	       (unsigned long long)hits, (unsigned long long)misses,
	       (unsigned long long)self_writes, ws.registers, ws.moves, ws.refused, ws.updates,
	       ws.unregisters, self_moves);
	vmres_devmgr_free(mgr);
	for (int i = 0; i < n_hists; i++)
		free(hists[i].log);

	if (violations)
		fail_msg("%d violations; first: %s", violations, first_violation);
	for (int i = 0; i < n_hists; i++)
		if (hists[i].releases != 1)
			fail_msg("device %d released %d times", i, hists[i].releases);
	/* The run must have exercised what it claims to. */
	assert_true(hits > 1000 && misses > 100);
	assert_true(ws.registers > 10 && ws.moves > 10 && ws.unregisters > 10 && ws.updates > 10);
	assert_true(self_moves > 0);
}

/* ---- the same on a standalone bus (bus.h): insert and remove ---- */

#define BUS_DEVICES 3000

struct bdev {
	struct sdev s; /* first: the opaque pointer, freed by sdev_release() */
	struct vmres_device dev;
};

static struct vmres_bus *sbus;

static void *bus_writer(void *arg)
{
	struct bdev *slots[SLOTS] = {0};
	int *ops = arg;
	uint64_t s = 0xb05ULL, deadline = now_ns() + RUN_NS / 2;

	while (now_ns() < deadline && n_hists < BUS_DEVICES) {
		size_t i = rnd(&s) % SLOTS;
		uint64_t base = SLOT_BASE + i * SLOT_STRIDE;
		int rc;

		if (!slots[i]) {
			struct bdev *d = calloc(1, sizeof(*d));

			d->s.h = new_hist(1);
			d->dev = make_device(&d->s);
			begin_change();
			log_base(d->s.h, current_epoch(), base);
			rc = vmres_bus_insert(sbus, base, SLOT_SIZE, &d->dev, 0);
			end_change();
			slots[i] = d;
		} else {
			begin_change();
			rc = vmres_bus_remove(sbus, base);
			end_change();
			slots[i] = NULL; /* released (and freed) after the grace period */
		}
		if (rc)
			violation("bus writer: %s", vmres_errname(rc));
		(*ops)++;
		/* A change costs a few microseconds: without a pause, a writer that
		 * gets the CPU first on a busy host can make all of them before the
		 * readers run, and the test would check nothing. */
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 20000}, NULL);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *bus_reader(void *arg)
{
	struct reader_stats *rs = arg;
	uint64_t s = rs->seed;

	if (vmres_bus_thread_register())
		violation("thread register");
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint64_t addr = SLOT_BASE + (rnd(&s) % SLOTS) * SLOT_STRIDE + rnd(&s) % 0x140, v;

		seen.h = NULL;
		uint64_t t0 = current_epoch();
		int rc = vmres_bus_read(sbus, addr, 4, &v);
		uint64_t t1 = current_epoch();

		if (rc)
			violation("bus read: %s", vmres_errname(rc));
		if (!seen.h) {
			rs->misses++;
			if (v != 0xffffffff)
				violation("a bus miss read %#llx", (unsigned long long)v);
			continue;
		}
		rs->hits++;
		if (v != seen.h->serial)
			violation("bus read %#llx from device %u", (unsigned long long)v,
				  seen.h->serial);
		if (!had_base(seen.h, addr - seen.offset, t0, t1))
			violation("bus device %u hit at %#llx outside epochs [%llu, %llu]",
				  seen.h->serial, (unsigned long long)(addr - seen.offset),
				  (unsigned long long)t0, (unsigned long long)t1);
	}
	vmres_bus_thread_unregister();
	return NULL;
}

static void test_bus_dispatch_during_insert_remove(void **state)
{
	pthread_t readers[READERS], wt;
	struct reader_stats rs[READERS];
	uint64_t hits = 0, misses = 0;
	int ops = 0, first = n_hists;

	(void)state;
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(vmres_bus_new(VMRES_SPACE_MMIO, &sbus), 0);
	for (int t = 0; t < READERS; t++) {
		rs[t] = (struct reader_stats){.seed = 0x4321ULL + (uint64_t)t};
		assert_int_equal(pthread_create(&readers[t], NULL, bus_reader, &rs[t]), 0);
	}
	assert_int_equal(pthread_create(&wt, NULL, bus_writer, &ops), 0);
	pthread_join(wt, NULL);
	for (int t = 0; t < READERS; t++) {
		pthread_join(readers[t], NULL);
		hits += rs[t].hits;
		misses += rs[t].misses;
	}
	printf("devmgr_stress: bus: %llu hits, %llu misses, %d inserts and removes\n",
	       (unsigned long long)hits, (unsigned long long)misses, ops);
	vmres_bus_free(sbus);
	if (violations)
		fail_msg("%d violations; first: %s", violations, first_violation);
	for (int i = first; i < n_hists; i++)
		if (hists[i].releases != 1)
			fail_msg("bus device %d released %d times", i, hists[i].releases);
	assert_true(hits > 1000 && misses > 100 && ops > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_dispatch_during_insert_remove),
		cmocka_unit_test(test_dispatch_during_register_move_unregister),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
