/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The real system calls behind struct vmres_irq_kvm_sys (irq.h): what the KVM
 * backends of irq.h and kvmres.h use when the VMM passes no seam of its own.
 * Not installed.
 */
#ifndef VMRES_UTIL_KVM_SYS_H
#define VMRES_UTIL_KVM_SYS_H

#include <vmres/irq.h>

/* ioctl(), eventfd(), read(), write() and close() themselves (ctx NULL). */
extern const struct vmres_irq_kvm_sys vmres__kvm_real_sys;

#endif /* VMRES_UTIL_KVM_SYS_H */
