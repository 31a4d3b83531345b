/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control device: how the guest ends the run (and says whether it passed),
 * marks the start of a benchmark's timed part, and the port the guest-pio
 * benchmark writes (bootinfo.h VMM_CTL_*). 4-byte writes only; reads return 0.
 */
#include <stdlib.h>

#include "../guest/bootinfo.h"
#include "devices.h"

struct vmm_ctl {
	struct vmm *vm;
	uint64_t sink_sum; /* written by the vCPU that runs the benchmark */
	struct vmm_devstat stat;
};

int vmm_ctl_new(struct vmm *vm, struct vmm_ctl **out)
{
	struct vmm_ctl *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	c->vm = vm;
	c->stat.name = "ctl";
	*out = c;
	return 0;
}

void vmm_ctl_free(struct vmm_ctl *c)
{
	free(c);
}

uint64_t vmm_ctl_sink_sum(struct vmm_ctl *c)
{
	return c->sink_sum;
}

struct vmm_devstat *vmm_ctl_stat(struct vmm_ctl *c)
{
	return &c->stat;
}

static uint64_t ctl_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	struct vmm_ctl *c = opaque;

	(void)range;
	(void)offset;
	(void)addr;
	(void)size;
	vmm_devstat_count(&c->stat, false);
	return 0;
}

static void ctl_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct vmm_ctl *c = opaque;

	(void)range;
	(void)addr;
	vmm_devstat_count(&c->stat, true);
	if (size != 4)
		return;
	switch (offset) {
	case VMM_CTL_SINK:
		c->sink_sum += (uint32_t)value;
		break;
	case VMM_CTL_MARK:
		c->vm->mark_ns = vmm_now_ns();
		break;
	case VMM_CTL_EXIT:
		c->vm->end_ns = vmm_now_ns();
		c->vm->guest_status = (uint32_t)value;
		c->vm->guest_exited = true;
		vmm_request_stop(c->vm);
		break;
	default:
		break;
	}
}

void vmm_ctl_device(struct vmm_ctl *c, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = c->stat.name;
	dev->opaque = c;
	dev->read = ctl_read;
	dev->write = ctl_write;
}
