/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus workloads of bench/WORKLOADS.md: bus-lookup (vmres_bus_resolve on a standalone
 * MMIO bus), bus-dispatch and bus-dispatch-mt (vmres_devmgr_mmio, the entry point
 * a KVM_EXIT_MMIO handler calls). */
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmres/bus.h>
#include <vmres/devmgr.h>

#include "bench.h"

#define BUS_BASE     0x100000000ULL
#define BUS_STRIDE   0x10000ULL
#define BUS_DEV_SIZE 0x1000ULL

/* The lookup addresses, drawn before timing: dev = r() % d; off = r() % 0x2000. */
static uint64_t *draw_addresses(uint64_t n, uint64_t d)
{
	uint64_t *a = malloc(n * sizeof(*a));
	uint64_t s = BENCH_SEED;

	if (!a) {
		fprintf(stderr, "bench: out of memory\n");
		return NULL;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t dev = bench_next(&s) % d;
		uint64_t off = bench_next(&s) % 0x2000;

		a[i] = BUS_BASE + dev * BUS_STRIDE + off;
	}
	return a;
}

/* n resolves; the checksum. A function of its own, as dispatch_run(), so that
 * the loop's few values stay in registers across the calls. */
static __attribute__((noinline)) uint64_t
lookup_run(struct vmres_bus *bus, const struct vmres_device *devs, const uint64_t *addr, uint64_t n)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct vmres_bus_hit hit;
		uint64_t mask;

		vmres_bus_resolve(bus, addr[i], &hit);
		/* Masked, not branched on: half the addresses miss, at random. */
		mask = -(uint64_t)(hit.dev != NULL);
		sum += ((uint64_t)(hit.dev - devs) + hit.offset) & mask;
	}
	return sum;
}

int bench_bus_lookup(uint64_t n, uint64_t d)
{
	struct vmres_device *devs = calloc(d ? d : 1, sizeof(*devs));
	struct vmres_bus *bus = NULL;
	uint64_t *addr = NULL, sum = 0;
	double t0, t1;
	int rc = 1;

	if (!devs || d == 0 || vmres_bus_new(VMRES_SPACE_MMIO, &bus))
		goto out;
	for (uint64_t i = 0; i < d; i++) {
		devs[i] = (struct vmres_device)VMRES_DEVICE_INIT;
		if (vmres_bus_insert(bus, BUS_BASE + i * BUS_STRIDE, BUS_DEV_SIZE, &devs[i], 0))
			goto out;
	}
	addr = draw_addresses(n, d);
	if (!addr || vmres_bus_thread_register())
		goto out;
	t0 = bench_now_ns();
	sum = lookup_run(bus, devs, addr, n);
	t1 = bench_now_ns();
	vmres_bus_thread_unregister();
	bench_report("bus-lookup", n, d, NULL, (t1 - t0) / (double)n, sum);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench: bus-lookup setup failed\n");
	vmres_bus_free(bus);
	free(devs);
	free(addr);
	return rc;
}

/* The device of bus-dispatch: its read fills the 4 bytes with its index. */
static uint64_t index_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			   unsigned int size)
{
	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	return (uint64_t)(uintptr_t)opaque;
}

/* The same with the caller's context (bus-dispatch-ctx): the caller is unused. */
static uint64_t index_read_ctx(void *opaque, void *caller, unsigned int range, uint64_t offset,
			       uint64_t addr, unsigned int size)
{
	(void)caller;
	return index_read(opaque, range, offset, addr, size);
}

static struct vmres_devmgr *dispatch_setup_style(uint64_t d, bool with_caller)
{
	struct vmres_devmgr *m;

	if (vmres_devmgr_new(NULL, &m))
		return NULL;
	for (uint64_t i = 0; i < d; i++) {
		struct vmres_device dev = VMRES_DEVICE_INIT;
		struct vmres_resource r;
		uint32_t id;

		memset(&r, 0, sizeof(r));
		r.kind = VMRES_RES_ADDR;
		r.u.addr.space = VMRES_SPACE_MMIO;
		r.u.addr.base = BUS_BASE + i * BUS_STRIDE;
		r.u.addr.size = BUS_DEV_SIZE;
		dev.name = "bench";
		dev.opaque = (void *)(uintptr_t)i;
		if (with_caller)
			dev.read_ctx = index_read_ctx;
		else
			dev.read = index_read;
		if (vmres_devmgr_register(m, &dev, VMRES_DEVMGR_NO_PARENT, &r, 1, &id)) {
			vmres_devmgr_free(m);
			return NULL;
		}
	}
	return m;
}

static struct vmres_devmgr *dispatch_setup(uint64_t d)
{
	return dispatch_setup_style(d, false);
}

/* n 4-byte reads through the KVM_EXIT_MMIO entry point; the checksum. */
static uint64_t dispatch_run(struct vmres_devmgr *m, const uint64_t *addr, uint64_t n)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint8_t data[8];
		uint32_t v;

		vmres_devmgr_mmio(m, addr[i], 4, false, data);
		memcpy(&v, data, 4);
		sum += v;
	}
	return sum;
}

int bench_bus_dispatch(uint64_t n, uint64_t d)
{
	struct vmres_devmgr *m = NULL;
	uint64_t *addr = NULL, sum;
	double t0, t1;
	int rc = 1;

	if (d == 0 || !(m = dispatch_setup(d)))
		goto out;
	addr = draw_addresses(n, d);
	if (!addr || vmres_devmgr_thread_register())
		goto out;
	t0 = bench_now_ns();
	sum = dispatch_run(m, addr, n);
	t1 = bench_now_ns();
	vmres_devmgr_thread_unregister();
	bench_report("bus-dispatch", n, d, NULL, (t1 - t0) / (double)n, sum);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench: bus-dispatch setup failed\n");
	vmres_devmgr_free(m);
	free(addr);
	return rc;
}

/* bus-dispatch with devices that take the caller's context, through the entry
 * point that passes one (vmres_devmgr_mmio_ctx): what a VMM that hands its vCPU
 * to its devices pays; the checksum is bus-dispatch's. */
static uint64_t dispatch_run_ctx(struct vmres_devmgr *m, const uint64_t *addr, uint64_t n,
				 void *caller)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint8_t data[8];
		uint32_t v;

		vmres_devmgr_mmio_ctx(m, addr[i], 4, false, data, caller);
		memcpy(&v, data, 4);
		sum += v;
	}
	return sum;
}

int bench_bus_dispatch_ctx(uint64_t n, uint64_t d)
{
	struct vmres_devmgr *m = NULL;
	uint64_t *addr = NULL, sum;
	double t0, t1;
	int rc = 1;

	if (d == 0 || !(m = dispatch_setup_style(d, true)))
		goto out;
	addr = draw_addresses(n, d);
	if (!addr || vmres_devmgr_thread_register())
		goto out;
	t0 = bench_now_ns();
	sum = dispatch_run_ctx(m, addr, n, &sum);
	t1 = bench_now_ns();
	vmres_devmgr_thread_unregister();
	bench_report("bus-dispatch-ctx", n, d, NULL, (t1 - t0) / (double)n, sum);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench: bus-dispatch-ctx setup failed\n");
	vmres_devmgr_free(m);
	free(addr);
	return rc;
}

#define MT_READERS 2

struct mt_reader {
	pthread_t thread;
	struct vmres_devmgr *m;
	pthread_barrier_t *start;
	uint64_t *addr;
	uint64_t n;
	uint64_t sum;
	double ns;
	int rc;
};

static void *mt_read(void *arg)
{
	struct mt_reader *r = arg;
	double t0;

	r->rc = vmres_devmgr_thread_register();
	pthread_barrier_wait(r->start);
	t0 = bench_now_ns();
	r->sum = dispatch_run(r->m, r->addr, r->n);
	r->ns = bench_now_ns() - t0;
	vmres_devmgr_thread_unregister();
	return NULL;
}

struct mt_mover {
	pthread_t thread;
	struct vmres_devmgr *m;
	pthread_barrier_t *start;
	uint64_t d;
	bool idle; /* wake up as often, move nothing */
	int done;  /* atomic */
	uint64_t moves;
	int rc;
};

/* Device 0 (instance 1) between its own range and the free one after device d-1. */
static void *mt_move(void *arg)
{
	struct mt_mover *mv = arg;
	const struct timespec period = {.tv_sec = 0, .tv_nsec = 100000};
	uint64_t where[2] = {BUS_BASE, BUS_BASE + mv->d * BUS_STRIDE};

	/* A thread that writes often registers once, rather than per call. */
	vmres_devmgr_thread_register();
	pthread_barrier_wait(mv->start);
	while (!__atomic_load_n(&mv->done, __ATOMIC_ACQUIRE)) {
		int rc = mv->idle
				 ? 0
				 : vmres_devmgr_move_range(mv->m, 1, 0, where[(mv->moves + 1) % 2]);

		if (rc) {
			mv->rc = rc;
			break;
		}
		mv->moves++;
		nanosleep(&period, NULL);
	}
	vmres_devmgr_thread_unregister();
	return NULL;
}

static int dispatch_mt(const char *name, uint64_t n, uint64_t d, bool idle)
{
	struct mt_reader readers[MT_READERS];
	struct mt_mover mover;
	pthread_barrier_t start;
	struct vmres_devmgr *m;
	uint64_t *addr, sum = 0;
	double ns = 0;
	char extra[16];
	int rc = 0;

	if (d == 0 || !(m = dispatch_setup(d)) || !(addr = draw_addresses(n, d))) {
		fprintf(stderr, "bench: %s setup failed\n", name);
		exit(1);
	}
	pthread_barrier_init(&start, NULL, MT_READERS + 1);
	for (int t = 0; t < MT_READERS; t++) {
		readers[t] = (struct mt_reader){.m = m, .start = &start, .n = n};
		readers[t].addr = malloc(n * sizeof(*addr));
		if (!readers[t].addr) {
			fprintf(stderr, "bench: out of memory\n");
			exit(1);
		}
		memcpy(readers[t].addr, addr, n * sizeof(*addr));
	}
	mover = (struct mt_mover){.m = m, .start = &start, .d = d, .idle = idle};
	for (int t = 0; t < MT_READERS; t++)
		if (pthread_create(&readers[t].thread, NULL, mt_read, &readers[t])) {
			fprintf(stderr, "bench: pthread_create failed\n");
			exit(1);
		}
	if (pthread_create(&mover.thread, NULL, mt_move, &mover)) {
		fprintf(stderr, "bench: pthread_create failed\n");
		exit(1);
	}
	for (int t = 0; t < MT_READERS; t++) {
		pthread_join(readers[t].thread, NULL);
		sum += readers[t].sum;
		ns += readers[t].ns / (double)n / MT_READERS;
		rc |= readers[t].rc;
		free(readers[t].addr);
	}
	__atomic_store_n(&mover.done, 1, __ATOMIC_RELEASE);
	pthread_join(mover.thread, NULL);
	pthread_barrier_destroy(&start);
	rc |= mover.rc;
	snprintf(extra, sizeof(extra), "t=%d", MT_READERS);
	if (rc == 0)
		bench_report(name, n, d, extra, ns, sum);
	else
		fprintf(stderr, "bench: %s failed: %s\n", name, vmres_strerror(rc));
	fprintf(stderr, "vmres-bench: %s: the mover %s %" PRIu64 " times\n", name,
		idle ? "woke up" : "moved", mover.moves);
	vmres_devmgr_free(m);
	free(addr);
	return rc ? 1 : 0;
}

int bench_bus_dispatch_mt(uint64_t n, uint64_t d)
{
	return dispatch_mt("bus-dispatch-mt", n, d, false);
}

/* The same three threads, but the third one only wakes up: what sharing the
 * cores costs the readers, without any move. */
int bench_bus_dispatch_mt_idle(uint64_t n, uint64_t d)
{
	return dispatch_mt("bus-dispatch-mt-idle", n, d, true);
}

/*
 * A guest that writes a bad BAR in a loop: n moves of device 0's range onto the
 * range of a device drawn at random among the d - 1 others, each refused with
 * VMRES_EOVERLAP. What a refusal costs the writer lock that every other
 * device's changes share.
 */
int bench_bus_refused_move(uint64_t n, uint64_t d)
{
	struct vmres_devmgr *m;
	uint64_t seed = BENCH_SEED, sum = 0;
	double t0, t1;

	if (d < 2 || !(m = dispatch_setup(d))) {
		fprintf(stderr, "bench: bus-refused-move setup failed (d >= 2)\n");
		return 1;
	}
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t j = 1 + bench_next(&seed) % (d - 1);
		int rc = vmres_devmgr_move_range(m, 1, 0, BUS_BASE + j * BUS_STRIDE);

		if (rc != VMRES_EOVERLAP) {
			fprintf(stderr, "bench: bus-refused-move: move %" PRIu64 " gave %s\n", i,
				vmres_strerror(rc));
			vmres_devmgr_free(m);
			return 1;
		}
		sum += j;
	}
	t1 = bench_now_ns();
	bench_report("bus-refused-move", n, d, NULL, (t1 - t0) / (double)n, sum);
	vmres_devmgr_free(m);
	return 0;
}

/* Heap bytes in use (glibc's mallinfo2: arena blocks and mmap()ed ones). */
static uint64_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/*
 * devmgr-mem: what a device manager of d one-range MMIO devices holds once
 * moves have run, every cache included: heap growth from before
 * vmres_devmgr_new() to after n moves of device 0 (timed) and a pause of 100 ms
 * for the deferred frees to run.
 */
int bench_devmgr_mem(uint64_t n, uint64_t d)
{
	const struct timespec pause = {.tv_sec = 0, .tv_nsec = 100000000};
	uint64_t where[2], sum = 0, heap0 = heap_in_use(), heap;
	struct vmres_devmgr *m;
	double t0, t1;

	if (!(m = dispatch_setup(d))) {
		fprintf(stderr, "bench: devmgr-mem setup failed\n");
		return 1;
	}
	where[0] = BUS_BASE;
	where[1] = BUS_BASE + d * BUS_STRIDE;
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		int rc = vmres_devmgr_move_range(m, 1, 0, where[(i + 1) % 2]);

		if (rc) {
			fprintf(stderr, "bench: devmgr-mem: move: %s\n", vmres_strerror(rc));
			vmres_devmgr_free(m);
			return 1;
		}
		sum += where[(i + 1) % 2];
	}
	t1 = bench_now_ns();
	nanosleep(&pause, NULL);
	heap = heap_in_use() - heap0;
	bench_report_begin("devmgr-mem", n, d, NULL, (t1 - t0) / (double)n, sum);
	bench_report_field("heap_bytes", heap);
	bench_report_field("per_range_bytes", heap / d);
	bench_report_end();
	vmres_devmgr_free(m);
	return 0;
}
