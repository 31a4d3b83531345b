/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one part of the device manager that needs <linux/kvm.h>: read the exit
 * out of struct kvm_run and hand it to the dispatch entry points. */
#include <linux/kvm.h>

#include <vmres/devmgr.h>

int vmres_devmgr_kvm_exit_ctx(struct vmres_devmgr *m, struct kvm_run *run, void *caller)
{
	if (!m || !run)
		return VMRES_EINVAL;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return vmres_devmgr_pio_ctx(m, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
					    run->io.size, run->io.count,
					    (uint8_t *)run + run->io.data_offset, caller);
	case KVM_EXIT_MMIO:
		return vmres_devmgr_mmio_ctx(m, run->mmio.phys_addr, run->mmio.len,
					     run->mmio.is_write, run->mmio.data, caller);
	default:
		return VMRES_ENOTSUP;
	}
}

int vmres_devmgr_kvm_exit(struct vmres_devmgr *m, struct kvm_run *run)
{
	return vmres_devmgr_kvm_exit_ctx(m, run, NULL);
}
