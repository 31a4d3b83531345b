/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A software local APIC for the software CPU: just what a guest needs to take
 * MSIs. It accepts the guest's SVR, TPR and EOI writes (as a device on the MMIO
 * bus at 0xFEE00000, registered through vmres like every other device), keeps
 * the IRR and ISR, and accepts fixed-delivery MSI messages from any thread. The
 * vCPU loop asks it which vector to deliver and delivers it through the guest's
 * IDT (vcpu_unicorn.c). Under KVM the in-kernel APIC does all of this.
 *
 *     0x020 ID      0x030 version  0x080 TPR   0x0b0 EOI (write)
 *     0x0f0 SVR     0x100-0x170 ISR            0x200-0x270 IRR
 *
 * Threads: accept() may run on any thread (IRR bits are atomic); everything else
 * runs on the owning vCPU's thread.
 */
#ifndef VMM_LAPIC_H
#define VMM_LAPIC_H

#include <stdint.h>

#include "vmm.h"

#define VMM_LAPIC_BASE 0xfee00000u
#define VMM_LAPIC_SIZE 0x1000u

struct vmm_lapic;

/* A local APIC with id @cpu for vCPU @cpu of @vm; 0 or -1. */
int vmm_lapic_new(struct vmm *vm, unsigned int cpu, struct vmm_lapic **out);
void vmm_lapic_free(struct vmm_lapic *lapic);

/* Guest register accesses (device handlers of the LAPIC window). */
uint64_t vmm_lapic_read(struct vmm_lapic *lapic, uint64_t offset, unsigned int size);
void vmm_lapic_write(struct vmm_lapic *lapic, uint64_t offset, unsigned int size, uint64_t value);

/* An MSI message: deliver it to the APIC it names and kick that vCPU. Fixed
 * delivery only; returns 0, or -1 for a message no APIC takes (dropped, as on
 * hardware). Any thread. */
int vmm_lapic_msi(struct vmm *vm, uint64_t addr, uint32_t data);

/* vCPU thread: the vector to deliver now (-1 if none: nothing requested, APIC
 * software-disabled, or masked by TPR / a vector in service). */
int vmm_lapic_pending(struct vmm_lapic *lapic);

/* vCPU thread: @vector is being delivered: move it from IRR to ISR. */
void vmm_lapic_ack(struct vmm_lapic *lapic, int vector);

#endif
