/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the vCPU loops of every backend share: vCPU thread set-up (vmres needs
 * each dispatching thread registered), stopping the run, the clock.
 */
#include <stdio.h>
#include <time.h>

#include <vmres/devmgr.h>

#include "vmm.h"

_Thread_local unsigned int vmm_this_cpu;

int vmm_vcpu_thread_enter(struct vmm *vm, unsigned int cpu)
{
	int rc = vmres_devmgr_thread_register();

	vmm_this_cpu = cpu;
	if (rc != 0) {
		fprintf(stderr, "vmres-demo: vcpu %u: vmres_devmgr_thread_register: %s\n", cpu,
			vmres_strerror(rc));
		vm->failed = true;
		vmm_request_stop(vm);
		return -1;
	}
	return 0;
}

void vmm_vcpu_thread_leave(void)
{
	vmres_devmgr_thread_unregister();
}

void vmm_request_stop(struct vmm *vm)
{
	atomic_store_explicit(&vm->stop, true, memory_order_release);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vm->backend->kick(vm, i);
}

double vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
