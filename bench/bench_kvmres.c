/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kvmres-bar-move: a guest BAR move with 2 notify regions and a memory slot
 * attached (kvmres.h), through the KVM backend's system-call seam with a fake
 * ioctl that only counts (no /dev/kvm): the cost vmres adds to a move, i.e.
 * the device manager's transaction (checks, copy-on-write table, publish)
 * plus kvmres's listener (3 ioctls in prepare, 3 in commit, a slot number
 * taken and given back). d devices are registered so the table has the size
 * of a machine; the BAR alternates between two addresses. */
#include <stdio.h>
#include <stdlib.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>

#include "bench.h"

#define BAR_A	 0xe0000000ULL
#define BAR_B	 0xe0100000ULL
#define BAR_SIZE 0x4000ULL

static int count_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	uint64_t *calls = ctx;

	(void)fd;
	(void)arg;
	*calls += request & 0xff;
	return 0;
}

int bench_kvmres_bar_move(uint64_t n, uint64_t d)
{
	static uint8_t host[BAR_SIZE] __attribute__((aligned(4096)));
	uint64_t calls = 0, sum = 0;
	struct vmres_irq_kvm_sys sys = {
		.version = VMRES_IRQ_KVM_SYS_VERSION, .ctx = &calls, .ioctl = count_ioctl};
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres_backend *be;
	struct vmres_devmgr *m;
	struct vmres_kvmres *k;
	uint32_t bar_dev = 0;
	double t0, t1;

	if (vmres_devmgr_new(NULL, &m))
		return 1;
	for (uint64_t i = 0; i < d; i++) {
		struct vmres_device dev = VMRES_DEVICE_INIT;
		struct vmres_resource r = {.kind = VMRES_RES_ADDR};
		uint32_t id;

		r.u.addr.space = VMRES_SPACE_MMIO;
		r.u.addr.base = i == 0 ? BAR_A : 0x100000000ULL + i * 0x10000;
		r.u.addr.size = i == 0 ? BAR_SIZE : 0x1000;
		if (vmres_devmgr_register(m, &dev, 0, &r, 1, &id))
			return 1;
		if (i == 0)
			bar_dev = id;
	}
	o.slot_first = 1;
	o.slot_count = 8;
	if (vmres_kvmres_backend_kvm_new(3, &sys, &be) || vmres_kvmres_new(m, be, &o, &k))
		return 1;
	for (int i = 0; i < 2; i++) {
		struct vmres_kvmres_notify nt = {bar_dev, 0,	 0x3000 + 4 * (uint64_t)i, 2, false,
						 0,	  10 + i};

		if (vmres_kvmres_notify_add(k, &nt))
			return 1;
	}
	if (vmres_kvmres_mem_attach(k, bar_dev, 0, host, false, NULL))
		return 1;
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (vmres_devmgr_move_range(m, bar_dev, 0, i & 1 ? BAR_A : BAR_B)) {
			fprintf(stderr, "bench: move %llu refused\n", (unsigned long long)i);
			return 1;
		}
		sum = sum * 31 + calls;
	}
	t1 = bench_now_ns();
	vmres_kvmres_free(k);
	vmres_devmgr_free(m);
	bench_report("kvmres-bar-move", n, d, "backend=fake-kvm", (t1 - t0) / (double)n, sum);
	return 0;
}
