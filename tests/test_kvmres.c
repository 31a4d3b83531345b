/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvmres.h through the system-call seam: a fake KVM that keeps the
 * ioeventfds and memory slots a VM would have (with KVM's collision rules:
 * EEXIST for a colliding ioeventfd or overlapping slots, ENOENT for a
 * deassign that matches nothing) and fails its k-th ioctl on request. Every
 * guest-driven change and every call is run with each of its ioctls failing
 * in turn: a refused change must leave the fake VM, kvmres's record and the
 * device manager as they were. The bus-served regions (no KVM) use real
 * eventfds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/sysalloc.h>

#include "helpers.h"

#define VM_FD	  42
#define FAKE_MAX  32
#define BAR0	  0xfe000000ull
#define BAR0_SIZE 0x4000ull
#define BAR0_NEW  0xfe100000ull

/* ---- the fake VM ------------------------------------------------------- */

struct fake {
	struct kvm_ioeventfd ev[FAKE_MAX];
	bool ev_used[FAKE_MAX];
	struct kvm_userspace_memory_region slot[FAKE_MAX];
	bool slot_used[FAKE_MAX];
	unsigned int calls;   /* ioctls so far */
	unsigned int fail_at; /* fail the call with this number (1-based); 0: none */
};

static bool ev_collide(const struct kvm_ioeventfd *a, const struct kvm_ioeventfd *b)
{
	if ((a->flags & KVM_IOEVENTFD_FLAG_PIO) != (b->flags & KVM_IOEVENTFD_FLAG_PIO) ||
	    a->addr != b->addr)
		return false;
	if (!a->len || !b->len)
		return true;
	return a->len == b->len &&
	       (!(a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) ||
		!(b->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) || a->datamatch == b->datamatch);
}

static bool ev_same(const struct kvm_ioeventfd *a, const struct kvm_ioeventfd *b)
{
	unsigned int mask = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH;

	return a->addr == b->addr && a->len == b->len && a->fd == b->fd &&
	       (a->flags & mask) == (b->flags & mask) &&
	       (!(a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) || a->datamatch == b->datamatch);
}

static int fake_ioeventfd(struct fake *f, const struct kvm_ioeventfd *a)
{
	int i, free_i = -1;

	for (i = 0; i < FAKE_MAX; i++) {
		if (!f->ev_used[i]) {
			free_i = free_i < 0 ? i : free_i;
			continue;
		}
		if (a->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
			if (ev_same(&f->ev[i], a)) {
				f->ev_used[i] = false;
				return 0;
			}
		} else if (ev_collide(&f->ev[i], a)) {
			errno = EEXIST;
			return -1;
		}
	}
	if (a->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
		errno = ENOENT;
		return -1;
	}
	assert_true(free_i >= 0);
	f->ev[free_i] = *a;
	f->ev_used[free_i] = true;
	return 0;
}

static int fake_region(struct fake *f, const struct kvm_userspace_memory_region *r)
{
	assert_true(r->slot < FAKE_MAX);
	if (r->memory_size == 0) {
		f->slot_used[r->slot] = false;
		return 0;
	}
	if (f->slot_used[r->slot]) { /* a move or resize of a live slot: not what we do */
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < FAKE_MAX; i++) {
		const struct kvm_userspace_memory_region *o = &f->slot[i];

		if (f->slot_used[i] && r->guest_phys_addr < o->guest_phys_addr + o->memory_size &&
		    o->guest_phys_addr < r->guest_phys_addr + r->memory_size) {
			errno = EEXIST;
			return -1;
		}
	}
	f->slot[r->slot] = *r;
	f->slot_used[r->slot] = true;
	return 0;
}

static int fake_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	struct fake *f = ctx;

	assert_int_equal(fd, VM_FD);
	if (++f->calls == f->fail_at) {
		errno = ENOMEM;
		return -1;
	}
	if (request == KVM_IOEVENTFD)
		return fake_ioeventfd(f, arg);
	if (request == KVM_SET_USER_MEMORY_REGION)
		return fake_region(f, arg);
	fail_msg("unexpected ioctl %lx", request);
	return -1;
}

static int unused_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx;
	(void)initval;
	(void)flags;
	fail();
	return -1;
}

static ssize_t unused_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	(void)fd;
	(void)buf;
	(void)len;
	fail();
	return -1;
}

static ssize_t unused_write(void *ctx, int fd, const void *buf, size_t len)
{
	return unused_read(ctx, fd, (void *)buf, len);
}

static int unused_close(void *ctx, int fd)
{
	(void)ctx;
	(void)fd;
	fail();
	return -1;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The fake VM as text, one sorted line per ioeventfd and slot: what KVM holds. */
static char *fake_dump(const struct fake *f)
{
	char *line[2 * FAKE_MAX], *buf = NULL;
	size_t len = 0, n = 0;
	FILE *out;

	for (int i = 0; i < FAKE_MAX; i++)
		if (f->ev_used[i])
			assert_true(
				asprintf(&line[n++], "ev %s 0x%llx len %u fd %d dm %d 0x%llx\n",
					 f->ev[i].flags & KVM_IOEVENTFD_FLAG_PIO ? "pio" : "mmio",
					 (unsigned long long)f->ev[i].addr, f->ev[i].len,
					 f->ev[i].fd,
					 !!(f->ev[i].flags & KVM_IOEVENTFD_FLAG_DATAMATCH),
					 (unsigned long long)f->ev[i].datamatch) > 0);
	for (int i = 0; i < FAKE_MAX; i++)
		if (f->slot_used[i])
			assert_true(asprintf(&line[n++], "slot %d 0x%llx size 0x%llx flags %u\n", i,
					     (unsigned long long)f->slot[i].guest_phys_addr,
					     (unsigned long long)f->slot[i].memory_size,
					     f->slot[i].flags) > 0);
	qsort(line, n, sizeof(line[0]), cmp_line);
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		fputs(line[i], out);
		free(line[i]);
	}
	fclose(out);
	return buf;
}

static bool fake_has_ev(const struct fake *f, uint64_t addr)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (f->ev_used[i] && f->ev[i].addr == addr)
			return true;
	return false;
}

static int fake_slot_at(const struct fake *f, uint64_t gpa)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (f->slot_used[i] && f->slot[i].guest_phys_addr == gpa)
			return i;
	return -1;
}

/* ---- a machine: one device with two MMIO BARs and a PIO range ------------ */

struct machine {
	struct fake f;
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_kvmres *k;
	uint32_t dev;
	unsigned int writes; /* writes that reached the device */
	uint64_t last_off;
	void *host;
};

static void dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct machine *mc = opaque;

	(void)range;
	(void)addr;
	(void)size;
	(void)value;
	mc->writes++;
	mc->last_off = offset;
}

/* A fresh machine; @p kvm: the fake KVM backend, else one without ioeventfds. */
static struct machine *machine_new(bool kvm, uint64_t bar0_align)
{
	struct machine *mc = calloc(1, sizeof(*mc));
	struct vmres_irq_kvm_sys sys = {VMRES_IRQ_KVM_SYS_VERSION,
					NULL,
					fake_ioctl,
					unused_eventfd,
					unused_read,
					unused_write,
					unused_close};
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_device d = VMRES_DEVICE_INIT;
	struct vmres_resource res[3] = {
		test_addr_res(VMRES_SPACE_MMIO, BAR0, BAR0_SIZE),
		test_addr_res(VMRES_SPACE_MMIO, 0xfd000000, 0x1000),
		test_addr_res(VMRES_SPACE_PIO, 0xc000, 0x40),
	};
	struct vmres_kvmres_backend *be;

	assert_non_null(mc);
	res[0].u.addr.align = bar0_align;
	sys.ctx = &mc->f;
	assert_int_equal(vmres_devmgr_new(NULL, &mc->m), 0);
	d.opaque = mc;
	d.write = dev_write;
	assert_int_equal(vmres_devmgr_register(mc->m, &d, 0, res, 3, &mc->dev), 0);
	if (kvm) {
		assert_int_equal(vmres_kvmres_backend_kvm_new(VM_FD, &sys, &be), 0);
	} else {
		static const struct vmres_kvmres_backend_ops none = {
			.version = VMRES_KVMRES_BACKEND_OPS_VERSION};

		assert_int_equal(vmres_kvmres_backend_new(&none, NULL, &be), 0);
	}
	o.slot_first = 8;
	o.slot_count = 4;
	assert_int_equal(vmres_kvmres_new(mc->m, be, &o, &mc->k), 0);
	mc->host = aligned_alloc(4096, BAR0_SIZE);
	assert_non_null(mc->host);
	return mc;
}

static void machine_free(struct machine *mc)
{
	vmres_kvmres_free(mc->k);
	vmres_devmgr_free(mc->m);
	vmres_sysalloc_free(mc->sa);
	free(mc->host);
	free(mc);
}

static struct vmres_kvmres_notify region(const struct machine *mc, unsigned int res,
					 uint64_t offset, uint32_t len, int fd)
{
	struct vmres_kvmres_notify n = {mc->dev, res, offset, len, false, 0, fd};

	return n;
}

/* Two notify regions (one matching on data) and memory on BAR 0. */
static void machine_populate(struct machine *mc)
{
	struct vmres_kvmres_notify n = region(mc, 0, 0x3000, 2, 7);

	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	n = region(mc, 0, 0x3004, 4, 8);
	n.match = true;
	n.data = 1;
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL), 0);
}

/* Everything a refused call must leave as it was. */
struct picture {
	char *fake, *kvmres, *devmgr;
};

static struct picture picture(struct machine *mc)
{
	struct picture p = {fake_dump(&mc->f), NULL, NULL};

	assert_int_equal(vmres_kvmres_dump_str(mc->k, &p.kvmres), 0);
	assert_int_equal(vmres_devmgr_dump_str(mc->m, &p.devmgr), 0);
	return p;
}

static void assert_same_picture(struct machine *mc, struct picture *before)
{
	struct picture now = picture(mc);

	assert_string_equal(now.fake, before->fake);
	assert_string_equal(now.kvmres, before->kvmres);
	assert_string_equal(now.devmgr, before->devmgr);
	free(now.fake);
	free(now.kvmres);
	free(now.devmgr);
}

static void picture_free(struct picture *p)
{
	free(p->fake);
	free(p->kvmres);
	free(p->devmgr);
}

/* ---- behaviour --------------------------------------------------------- */

static void test_regions_and_memory_are_installed_at_the_bar(void **state)
{
	struct machine *mc = machine_new(true, 0);
	char *d;

	(void)state;
	machine_populate(mc);
	assert_true(fake_has_ev(&mc->f, BAR0 + 0x3000));
	assert_true(fake_has_ev(&mc->f, BAR0 + 0x3004));
	assert_int_equal(fake_slot_at(&mc->f, BAR0), 8);
	assert_int_equal(vmres_kvmres_dump_str(mc->k, &d), 0);
	assert_string_equal(d, "dev 1 res 0 mmio 0xfe000000 size 0x4000 mapped\n"
			       "  notify +0x3000 len 2 fd 7\n"
			       "  notify +0x3004 len 4 data 0x1 fd 8\n"
			       "  mem slot 8 size 0x4000 rw\n");
	free(d);
	machine_free(mc);
}

static void test_mapped_move_takes_regions_and_slot_to_the_new_base(void **state)
{
	struct machine *mc = machine_new(true, 0);
	struct vmres_kvmres_info info;

	(void)state;
	machine_populate(mc);
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0_NEW), 0);
	assert_false(fake_has_ev(&mc->f, BAR0 + 0x3000));
	assert_false(fake_has_ev(&mc->f, BAR0 + 0x3004));
	assert_true(fake_has_ev(&mc->f, BAR0_NEW + 0x3000));
	assert_true(fake_has_ev(&mc->f, BAR0_NEW + 0x3004));
	assert_int_equal(fake_slot_at(&mc->f, BAR0), -1);
	/* The new slot has another number; the old one was given back. */
	assert_int_equal(fake_slot_at(&mc->f, BAR0_NEW), 9);
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0), 0);
	assert_int_equal(fake_slot_at(&mc->f, BAR0), 8);
	assert_int_equal(vmres_kvmres_get_info(mc->k, &info), 0);
	assert_int_equal(info.resources, 1);
	assert_int_equal(info.regions, 2);
	assert_int_equal(info.memory, 1);
	assert_int_equal(info.undo_failures, 0);
	machine_free(mc);
}

static void test_overlapping_move_replaces_the_slot_in_place(void **state)
{
	struct machine *mc = machine_new(true, 0x1000);

	(void)state;
	machine_populate(mc);
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0 + 0x1000), 0);
	assert_int_equal(fake_slot_at(&mc->f, BAR0 + 0x1000), 8);
	assert_true(fake_has_ev(&mc->f, BAR0 + 0x4000));
	assert_true(fake_has_ev(&mc->f, BAR0 + 0x4004));
	assert_false(fake_has_ev(&mc->f, BAR0 + 0x3000));
	machine_free(mc);
}

static void test_unmap_removes_and_map_reinstalls(void **state)
{
	struct machine *mc = machine_new(true, 0);
	char *empty;

	(void)state;
	machine_populate(mc);
	assert_int_equal(vmres_devmgr_unmap_range(mc->m, mc->dev, 0), 0);
	empty = fake_dump(&mc->f);
	assert_string_equal(empty, "");
	free(empty);
	/* An unmapped move only records the base. */
	mc->f.calls = 0;
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0_NEW), 0);
	assert_int_equal(mc->f.calls, 0);
	assert_int_equal(vmres_devmgr_map_range(mc->m, mc->dev, 0), 0);
	assert_true(fake_has_ev(&mc->f, BAR0_NEW + 0x3000));
	assert_int_equal(fake_slot_at(&mc->f, BAR0_NEW), 8);
	machine_free(mc);
}

/* Run @p op on fresh machines with its k-th ioctl failing, k = 1, 2, ... until
 * it succeeds; each failure must change nothing. Returns the ioctls it needs. */
static unsigned int each_failure(bool populate, uint64_t align,
				 int (*op)(struct machine *mc, void *arg), void *arg)
{
	for (unsigned int k = 1;; k++) {
		struct machine *mc = machine_new(true, align);
		struct picture before;
		int rc;

		if (populate)
			machine_populate(mc);
		before = picture(mc);
		mc->f.calls = 0;
		mc->f.fail_at = k;
		rc = op(mc, arg);
		if (rc == 0) {
			picture_free(&before);
			machine_free(mc);
			return k - 1;
		}
		assert_int_equal(rc, VMRES_ESYS);
		assert_same_picture(mc, &before);
		picture_free(&before);
		mc->f.fail_at = 0;
		/* The record still works: the same call now passes. */
		assert_int_equal(op(mc, arg), 0);
		machine_free(mc);
	}
}

static int op_move(struct machine *mc, void *arg)
{
	return vmres_devmgr_move_range(mc->m, mc->dev, 0, *(uint64_t *)arg);
}

static int op_unmap(struct machine *mc, void *arg)
{
	(void)arg;
	return vmres_devmgr_unmap_range(mc->m, mc->dev, 0);
}

static void test_every_failing_ioctl_of_a_move_changes_nothing(void **state)
{
	uint64_t to = BAR0_NEW, near = BAR0 + 0x1000;

	(void)state;
	/* Prepare: 2 assigns and a slot at the new base (commit's removals
	 * cannot refuse: a failure there is counted, see below). */
	assert_int_equal(each_failure(true, 0, op_move, &to), 3);
	/* Overlapping: 3 removals, then 3 installs. */
	assert_int_equal(each_failure(true, 0x1000, op_move, &near), 6);
}

static void test_every_failing_ioctl_of_an_unmap_changes_nothing(void **state)
{
	(void)state;
	assert_int_equal(each_failure(true, 0, op_unmap, NULL), 3);
}

static void test_failing_ioctl_of_a_map_changes_nothing(void **state)
{
	struct machine *mc = machine_new(true, 0);

	(void)state;
	machine_populate(mc);
	assert_int_equal(vmres_devmgr_unmap_range(mc->m, mc->dev, 0), 0);
	for (unsigned int k = 1; k <= 3; k++) {
		struct picture before = picture(mc);

		mc->f.calls = 0;
		mc->f.fail_at = k;
		assert_int_equal(vmres_devmgr_map_range(mc->m, mc->dev, 0), VMRES_ESYS);
		assert_same_picture(mc, &before);
		picture_free(&before);
	}
	mc->f.fail_at = 0;
	mc->f.calls = 0;
	assert_int_equal(vmres_devmgr_map_range(mc->m, mc->dev, 0), 0);
	assert_int_equal(mc->f.calls, 3);
	machine_free(mc);
}

static void test_failing_ioctl_of_add_attach_remove_detach_changes_nothing(void **state)
{
	(void)state;
	for (unsigned int k = 1; k <= 4; k++) {
		struct machine *mc = machine_new(true, 0);
		struct vmres_kvmres_notify n = region(mc, 0, 0x3000, 2, 7);
		struct picture before = picture(mc);

		mc->f.fail_at = 1;
		switch (k) {
		case 1:
			assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_ESYS);
			break;
		case 2:
			assert_int_equal(
				vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL),
				VMRES_ESYS);
			break;
		case 3:
			mc->f.fail_at = 0;
			picture_free(&before);
			assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
			before = picture(mc);
			mc->f.fail_at = mc->f.calls + 1;
			assert_int_equal(vmres_kvmres_notify_remove(mc->k, &n), VMRES_ESYS);
			break;
		default:
			mc->f.fail_at = 0;
			picture_free(&before);
			assert_int_equal(
				vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL),
				0);
			before = picture(mc);
			mc->f.fail_at = mc->f.calls + 1;
			assert_int_equal(vmres_kvmres_mem_detach(mc->k, mc->dev, 0), VMRES_ESYS);
			break;
		}
		assert_same_picture(mc, &before);
		picture_free(&before);
		machine_free(mc);
	}
}

/* A set_mapped call whose second range is refused aborts the first one's change. */
static void test_refused_set_mapped_aborts_the_accepted_range(void **state)
{
	struct machine *mc = machine_new(true, 0);
	struct vmres_kvmres_notify n;
	bool off[3] = {false, false, true};
	struct picture before;

	(void)state;
	machine_populate(mc);
	n = region(mc, 1, 0x10, 4, 9);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	before = picture(mc);
	mc->f.calls = 0;
	mc->f.fail_at = 4; /* BAR 0 takes 3 removals; BAR 1's removal fails */
	assert_int_equal(vmres_devmgr_set_mapped(mc->m, mc->dev, off, 3), VMRES_ESYS);
	assert_same_picture(mc, &before);
	picture_free(&before);
	mc->f.fail_at = 0;
	assert_int_equal(vmres_devmgr_set_mapped(mc->m, mc->dev, off, 3), 0);
	assert_false(fake_has_ev(&mc->f, 0xfd000010));
	assert_int_equal(fake_slot_at(&mc->f, BAR0), -1);
	machine_free(mc);
}

static void test_refusals_change_nothing(void **state)
{
	struct machine *mc = machine_new(true, 0);
	struct vmres_kvmres_notify n = region(mc, 0, 0x3000, 0, 7), m;
	static const struct vmres_devmgr_listener other = {VMRES_DEVMGR_LISTENER_VERSION, NULL,
							   NULL, NULL};
	struct picture before;

	(void)state;
	machine_populate(mc);
	before = picture(mc);
	/* Any length at an offset that has a region: KVM could not tell them apart. */
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_EEXIST);
	n.len = 3;
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_EINVAL);
	n.len = 2, n.match = true, n.data = 0x10000;
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_EINVAL);
	n = region(mc, 0, BAR0_SIZE - 2, 4, 7);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_ERANGE);
	n = region(mc, 5, 0, 4, 7);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_ENOENT);
	n.instance = 99;
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_EDEVICE);
	m = region(mc, 0, 0x3000, 2, 6);
	assert_int_equal(vmres_kvmres_notify_remove(mc->k, &m), VMRES_ENOENT);
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL),
			 VMRES_EEXIST);
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 2, mc->host, false, NULL),
			 VMRES_EKIND);
	assert_int_equal(vmres_kvmres_mem_detach(mc->k, mc->dev, 1), VMRES_ENOENT);
	/* Another listener on BAR 1: that resource is not ours to follow. */
	assert_int_equal(vmres_devmgr_set_listener(mc->m, mc->dev, 1, &other, NULL), 0);
	n = region(mc, 1, 0, 4, 7);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), VMRES_ESTATE);
	assert_same_picture(mc, &before);
	picture_free(&before);
	machine_free(mc);
}

static void test_slots_run_out_and_come_back(void **state)
{
	struct machine *mc = machine_new(true, 0);
	void *buf = aligned_alloc(4096, 0x1000);

	(void)state;
	/* 4 numbers: BAR 0 holds one, two during a move. */
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL), 0);
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 1, buf, true, NULL), 0);
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0_NEW), 0);
	assert_int_equal(vmres_kvmres_mem_detach(mc->k, mc->dev, 1), 0);
	assert_int_equal(vmres_kvmres_mem_detach(mc->k, mc->dev, 0), 0);
	assert_int_equal(fake_slot_at(&mc->f, BAR0_NEW), -1);
	assert_int_equal(fake_slot_at(&mc->f, 0xfd000000), -1);
	machine_free(mc);
	free(buf);
}

static void test_slot_numbers_come_from_the_sysalloc_id_pool(void **state)
{
	struct machine *mc = machine_new(true, 0);
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_irq_kvm_sys sys = {VMRES_IRQ_KVM_SYS_VERSION,
					&mc->f,
					fake_ioctl,
					unused_eventfd,
					unused_read,
					unused_write,
					unused_close};
	struct vmres_kvmres_backend *be;
	struct vmres_devmgr *m2;
	struct vmres_kvmres *k2;
	struct vmres_device d = VMRES_DEVICE_INIT;
	struct vmres_resource r = test_addr_res(VMRES_SPACE_MMIO, 0x80000000, 0x2000);
	struct vmres_sysalloc_alloc_info ai;
	uint32_t dev, slot;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&mc->sa), 0);
	assert_int_equal(vmres_sysalloc_add_id_pool(mc->sa, "memslot", VMRES_RES_ID, 16, 31), 0);
	assert_int_equal(vmres_devmgr_new(mc->sa, &m2), 0);
	assert_int_equal(vmres_devmgr_register(m2, &d, 0, &r, 1, &dev), 0);
	assert_int_equal(vmres_kvmres_backend_kvm_new(VM_FD, &sys, &be), 0);
	o.slot_pool = "memslot";
	o.slot_owner = 0x77;
	assert_int_equal(vmres_kvmres_new(m2, be, &o, &k2), 0);
	assert_int_equal(vmres_kvmres_mem_attach(k2, dev, 0, mc->host, false, &slot), 0);
	assert_int_equal(slot, 16);
	assert_int_equal(vmres_sysalloc_find(mc->sa, "memslot", 16, &ai), 0);
	assert_int_equal(ai.owner, 0x77);
	assert_int_equal(vmres_devmgr_move_range(m2, dev, 0, 0x90000000), 0);
	assert_int_equal(fake_slot_at(&mc->f, 0x90000000), 17);
	assert_int_equal(vmres_sysalloc_find(mc->sa, "memslot", 16, &ai), VMRES_ENOENT);
	vmres_kvmres_free(k2);
	/* Freeing gave everything back. */
	assert_int_equal(vmres_sysalloc_find(mc->sa, "memslot", 17, &ai), VMRES_ENOENT);
	assert_int_equal(fake_slot_at(&mc->f, 0x90000000), -1);
	vmres_devmgr_free(m2);
	machine_free(mc);
}

/* ---- the bus serves the regions ---------------------------------------- */

static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void mmio_write(struct machine *mc, uint64_t addr, unsigned int len, uint64_t value)
{
	uint8_t data[8];

	memcpy(data, &value, sizeof(data));
	assert_int_equal(vmres_devmgr_mmio(mc->m, addr, len, true, data), 0);
}

static void test_bus_signals_a_matching_write_instead_of_the_device(void **state)
{
	struct machine *mc = machine_new(false, 0);
	int kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), q = eventfd(0, EFD_NONBLOCK);
	struct vmres_kvmres_notify n = region(mc, 0, 0x3000, 2, kick);
	uint8_t data[2] = {0};

	(void)state;
	assert_int_equal(vmres_devmgr_thread_register(), 0);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	n = region(mc, 0, 0x3004, 4, q);
	n.match = true;
	n.data = 3;
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	/* Kicks signal and never reach the device. */
	mmio_write(mc, BAR0 + 0x3000, 2, 5);
	mmio_write(mc, BAR0 + 0x3000, 2, 6);
	assert_int_equal(eventfd_take(kick), 2);
	mmio_write(mc, BAR0 + 0x3004, 4, 3);
	assert_int_equal(eventfd_take(q), 1);
	assert_int_equal(mc->writes, 0);
	/* Another size, other data, another offset, reads: the device's. */
	mmio_write(mc, BAR0 + 0x3000, 4, 5);
	mmio_write(mc, BAR0 + 0x3004, 4, 4);
	mmio_write(mc, BAR0 + 0x3002, 2, 5);
	assert_int_equal(vmres_devmgr_mmio(mc->m, BAR0 + 0x3000, 2, false, data), 0);
	assert_int_equal(mc->writes, 3);
	assert_int_equal(eventfd_take(kick) + eventfd_take(q), 0);
	/* After a move: at the new base only. */
	assert_int_equal(vmres_devmgr_move_range(mc->m, mc->dev, 0, BAR0_NEW), 0);
	mmio_write(mc, BAR0_NEW + 0x3000, 2, 5);
	assert_int_equal(eventfd_take(kick), 1);
	mmio_write(mc, BAR0 + 0x3000, 2, 5);
	assert_int_equal(eventfd_take(kick), 0);
	/* Removed: the device sees the write again. */
	n = region(mc, 0, 0x3000, 2, kick);
	assert_int_equal(vmres_kvmres_notify_remove(mc->k, &n), 0);
	mmio_write(mc, BAR0_NEW + 0x3000, 2, 5);
	assert_int_equal(eventfd_take(kick), 0);
	assert_int_equal(mc->writes, 4);
	assert_int_equal(mc->last_off, 0x3000);
	machine_free(mc);
	assert_int_equal(vmres_devmgr_thread_unregister(), 0);
	close(kick);
	close(q);
}

static void test_bus_serves_port_regions_of_any_length(void **state)
{
	struct machine *mc = machine_new(false, 0);
	int kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct vmres_kvmres_notify n = region(mc, 2, 0x10, 0, kick);
	uint8_t data[4] = {1, 0, 0, 0};

	(void)state;
	assert_int_equal(vmres_devmgr_thread_register(), 0);
	assert_int_equal(vmres_kvmres_notify_add(mc->k, &n), 0);
	assert_int_equal(vmres_devmgr_pio(mc->m, 0xc010, true, 1, 1, data), 0);
	assert_int_equal(vmres_devmgr_pio(mc->m, 0xc010, true, 4, 1, data), 0);
	assert_int_equal(eventfd_take(kick), 2);
	assert_int_equal(mc->writes, 0);
	/* Memory needs a backend that maps it. */
	assert_int_equal(vmres_kvmres_mem_attach(mc->k, mc->dev, 0, mc->host, false, NULL),
			 VMRES_ENOTSUP);
	machine_free(mc);
	assert_int_equal(vmres_devmgr_thread_unregister(), 0);
	close(kick);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regions_and_memory_are_installed_at_the_bar),
		cmocka_unit_test(test_mapped_move_takes_regions_and_slot_to_the_new_base),
		cmocka_unit_test(test_overlapping_move_replaces_the_slot_in_place),
		cmocka_unit_test(test_unmap_removes_and_map_reinstalls),
		cmocka_unit_test(test_every_failing_ioctl_of_a_move_changes_nothing),
		cmocka_unit_test(test_every_failing_ioctl_of_an_unmap_changes_nothing),
		cmocka_unit_test(test_failing_ioctl_of_a_map_changes_nothing),
		cmocka_unit_test(test_failing_ioctl_of_add_attach_remove_detach_changes_nothing),
		cmocka_unit_test(test_refused_set_mapped_aborts_the_accepted_range),
		cmocka_unit_test(test_refusals_change_nothing),
		cmocka_unit_test(test_slots_run_out_and_come_back),
		cmocka_unit_test(test_slot_numbers_come_from_the_sysalloc_id_pool),
		cmocka_unit_test(test_bus_signals_a_matching_write_instead_of_the_device),
		cmocka_unit_test(test_bus_serves_port_regions_of_any_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
