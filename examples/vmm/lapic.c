/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "devices.h"
#include "lapic.h"

#define LAPIC_ID      0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR     0x080
#define LAPIC_EOI     0x0b0
#define LAPIC_SVR     0x0f0
#define LAPIC_ISR     0x100
#define LAPIC_IRR     0x200

#define LAPIC_SVR_ENABLE    0x100u
#define LAPIC_VERSION_VALUE 0x00050014u /* integrated APIC, 6 LVT entries */

#define MSI_ADDR_MASK	   0xfff00000u
#define MSI_DEST_SHIFT	   12
#define MSI_DEST_MASK	   0xffu
#define MSI_DELIVERY(d)	   (((d) >> 8) & 7u)
#define MSI_DELIVERY_FIXED 0u

struct vmm_lapic {
	struct vmm *vm;
	unsigned int cpu;
	uint32_t svr;
	uint32_t tpr;
	_Atomic uint32_t irr[8];
	uint32_t isr[8];
};

int vmm_lapic_new(struct vmm *vm, unsigned int cpu, struct vmm_lapic **out)
{
	struct vmm_lapic *l = calloc(1, sizeof(*l));

	if (!l)
		return -1;
	l->vm = vm;
	l->cpu = cpu;
	l->svr = 0xff; /* reset value: software-disabled, spurious vector 0xff */
	*out = l;
	return 0;
}

void vmm_lapic_free(struct vmm_lapic *lapic)
{
	free(lapic);
}

static int highest(const uint32_t words[8])
{
	for (int w = 7; w >= 0; w--)
		if (words[w])
			return w * 32 + 31 - __builtin_clz(words[w]);
	return -1;
}

static int highest_irr(struct vmm_lapic *l)
{
	uint32_t snap[8];

	for (int w = 0; w < 8; w++)
		snap[w] = atomic_load_explicit(&l->irr[w], memory_order_acquire);
	return highest(snap);
}

uint64_t vmm_lapic_read(struct vmm_lapic *l, uint64_t offset, unsigned int size)
{
	uint32_t v = 0;

	if (size != 4 || (offset & 0xf))
		return 0; /* the APIC takes aligned 32-bit accesses only */
	switch (offset) {
	case LAPIC_ID:
		v = l->cpu << 24;
		break;
	case LAPIC_VERSION:
		v = LAPIC_VERSION_VALUE;
		break;
	case LAPIC_TPR:
		v = l->tpr;
		break;
	case LAPIC_SVR:
		v = l->svr;
		break;
	default:
		if (offset >= LAPIC_ISR && offset < LAPIC_ISR + 0x80)
			v = l->isr[(offset - LAPIC_ISR) / 16];
		else if (offset >= LAPIC_IRR && offset < LAPIC_IRR + 0x80)
			v = atomic_load(&l->irr[(offset - LAPIC_IRR) / 16]);
		break;
	}
	return v;
}

void vmm_lapic_write(struct vmm_lapic *l, uint64_t offset, unsigned int size, uint64_t value)
{
	int v;

	if (size != 4 || (offset & 0xf))
		return;
	switch (offset) {
	case LAPIC_TPR:
		l->tpr = (uint32_t)value & 0xff;
		break;
	case LAPIC_SVR:
		l->svr = (uint32_t)value & 0x1ff;
		break;
	case LAPIC_EOI:
		v = highest(l->isr);
		if (v >= 0)
			l->isr[v / 32] &= ~(1u << (v % 32));
		/* Another vector may now be deliverable. */
		if (highest_irr(l) >= 0)
			l->vm->backend->kick(l->vm, l->cpu);
		break;
	default:
		break; /* other registers: accepted and ignored */
	}
}

int vmm_lapic_msi(struct vmm *vm, uint64_t addr, uint32_t data)
{
	unsigned int dest = (unsigned int)(addr >> MSI_DEST_SHIFT) & MSI_DEST_MASK;
	unsigned int vector = data & 0xff;
	struct vmm_lapic *l;

	if ((addr & MSI_ADDR_MASK) != VMM_LAPIC_BASE || MSI_DELIVERY(data) != MSI_DELIVERY_FIXED ||
	    vector < 16 || dest >= vm->nr_vcpus || !vm->lapic[dest])
		return -1;
	l = vm->lapic[dest];
	atomic_fetch_or_explicit(&l->irr[vector / 32], 1u << (vector % 32), memory_order_release);
	vm->backend->kick(vm, dest);
	return 0;
}

int vmm_lapic_pending(struct vmm_lapic *l)
{
	int v = highest_irr(l), in_service = highest(l->isr);

	if (v < 0 || !(l->svr & LAPIC_SVR_ENABLE))
		return -1;
	if ((v >> 4) <= (int)(l->tpr >> 4))
		return -1;
	if (in_service >= 0 && (v >> 4) <= (in_service >> 4))
		return -1;
	return v;
}

void vmm_lapic_ack(struct vmm_lapic *l, int vector)
{
	atomic_fetch_and_explicit(&l->irr[vector / 32], ~(1u << (vector % 32)),
				  memory_order_acq_rel);
	l->isr[vector / 32] |= 1u << (vector % 32);
}

/* The LAPIC window as a vmres device: every vCPU sees its own APIC there. */
static uint64_t window_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			    unsigned int size)
{
	struct vmm_lapic_window *w = opaque;
	struct vmm_lapic *l = vmm_this_cpu < w->vm->nr_vcpus ? w->vm->lapic[vmm_this_cpu] : NULL;

	(void)range;
	(void)addr;
	vmm_devstat_count(&w->stat, false);
	return l ? vmm_lapic_read(l, offset, size) : 0;
}

static void window_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size, uint64_t value)
{
	struct vmm_lapic_window *w = opaque;
	struct vmm_lapic *l = vmm_this_cpu < w->vm->nr_vcpus ? w->vm->lapic[vmm_this_cpu] : NULL;

	(void)range;
	(void)addr;
	vmm_devstat_count(&w->stat, true);
	if (l)
		vmm_lapic_write(l, offset, size, value);
}

void vmm_lapic_window_device(struct vmm_lapic_window *w, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = w->stat.name;
	dev->opaque = w;
	dev->read = window_read;
	dev->write = window_write;
}
