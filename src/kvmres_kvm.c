/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVM backend of kvmres.h: KVM_IOEVENTFD and KVM_SET_USER_MEMORY_REGION on
 * one VM, through the system-call seam of irq.h (its ioctl only), so that
 * tests can see what is sent and fail any call.
 *
 * KVM refuses an ioeventfd that collides with one registered (same bus,
 * address and length or data that cannot be told apart) with EEXIST, and a
 * deassign that matches nothing with ENOENT; it takes memory slots only on
 * whole 4 KiB pages. Those come back as VMRES_EEXIST and VMRES_EMISALIGNED;
 * every other failure as VMRES_ESYS with the ioctl's errno.
 */
#include <vmres/irq.h>
#include <vmres/kvmres.h>

#include "util/kvm_sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kvm.h>

#define PAGE 4096u

struct kvm_ctx {
	int vm_fd;
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg);
	void *sys_ctx;
};

static int kvm_ioeventfd(void *ctx, const struct vmres_kvmres_ioevent *ev, bool assign)
{
	struct kvm_ctx *kc = ctx;
	struct kvm_ioeventfd a;

	memset(&a, 0, sizeof(a));
	a.addr = ev->addr;
	a.len = ev->len;
	a.fd = ev->fd;
	a.datamatch = ev->data;
	if (ev->match)
		a.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (ev->space == VMRES_SPACE_PIO)
		a.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (!assign)
		a.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (kc->ioctl(kc->sys_ctx, kc->vm_fd, KVM_IOEVENTFD, &a) == 0)
		return 0;
	return assign && errno == EEXIST ? VMRES_EEXIST : VMRES_ESYS;
}

static int kvm_notify_assign(void *ctx, const struct vmres_kvmres_ioevent *ev)
{
	return kvm_ioeventfd(ctx, ev, true);
}

static int kvm_notify_deassign(void *ctx, const struct vmres_kvmres_ioevent *ev)
{
	return kvm_ioeventfd(ctx, ev, false);
}

static int kvm_region(void *ctx, const struct vmres_kvmres_mem_map *mm, bool map)
{
	struct kvm_ctx *kc = ctx;
	struct kvm_userspace_memory_region r;

	if ((mm->gpa | mm->size | (uintptr_t)mm->host) % PAGE)
		return VMRES_EMISALIGNED;
	memset(&r, 0, sizeof(r));
	r.slot = mm->slot;
	r.guest_phys_addr = mm->gpa;
	r.memory_size = map ? mm->size : 0; /* 0 deletes the slot */
	r.userspace_addr = (uintptr_t)mm->host;
	if (mm->readonly)
		r.flags = KVM_MEM_READONLY;
	return kc->ioctl(kc->sys_ctx, kc->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? VMRES_ESYS : 0;
}

static int kvm_mem_map(void *ctx, const struct vmres_kvmres_mem_map *mm)
{
	return kvm_region(ctx, mm, true);
}

static int kvm_mem_unmap(void *ctx, const struct vmres_kvmres_mem_map *mm)
{
	return kvm_region(ctx, mm, false);
}

static const struct vmres_kvmres_backend_ops kvm_ops = {
	.version = VMRES_KVMRES_BACKEND_OPS_VERSION,
	.notify_assign = kvm_notify_assign,
	.notify_deassign = kvm_notify_deassign,
	.mem_map = kvm_mem_map,
	.mem_unmap = kvm_mem_unmap,
	.destroy = free, /* the context is one malloc'd block */
};

int vmres_kvmres_backend_kvm_new(int vm_fd, const struct vmres_irq_kvm_sys *sys,
				 struct vmres_kvmres_backend **out)
{
	struct kvm_ctx *kc;
	int rc;

	if (vm_fd < 0 || !out)
		return VMRES_EINVAL;
	if (sys && sys->version != VMRES_IRQ_KVM_SYS_VERSION)
		return VMRES_EVERSION;
	if (sys && !sys->ioctl)
		return VMRES_EINVAL;
	kc = malloc(sizeof(*kc));
	if (!kc)
		return VMRES_ENOMEM;
	kc->vm_fd = vm_fd;
	kc->ioctl = sys ? sys->ioctl : vmres__kvm_real_sys.ioctl;
	kc->sys_ctx = sys ? sys->ctx : NULL;
	rc = vmres_kvmres_backend_new(&kvm_ops, kc, out);
	if (rc)
		free(kc);
	return rc;
}
