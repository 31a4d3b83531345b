/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checking vmres against what a guest says it mapped (the SeaBIOS and Linux
 * demos): disagreements are printed as they are found and counted. Also the
 * run's exit table (vmm_print_exits(), devices.h).
 */
#ifndef VMM_CHECK_H
#define VMM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <vmres/devmgr.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

struct vmm_check {
	unsigned int agreed;
	unsigned int disagreements;
};

/* Print "  DISAGREE: ..." and count it. */
void vmm_disagree(struct vmm_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The ordinary pool whose window holds @addr and the allocation there, looked
 * up under the device manager's writer lock. */
struct vmm_pool_lookup {
	char pool[VMRES_POOL_NAME_MAX];
	struct vmres_sysalloc_alloc_info info;
	char owner_name[VMRES_SYSALLOC_LABEL_MAX];
	char label[VMRES_SYSALLOC_LABEL_MAX];
	int find_rc; /* 0, or why there is no pool or allocation there */
};
void vmm_lookup_pool(struct vmres_devmgr *dm, enum vmres_space space, uint64_t addr,
		     struct vmm_pool_lookup *out);

/* One BAR of a bound PCI function, as vmres knows it. */
struct vmm_bar_ref {
	const char *name; /* the device, for messages */
	struct vmres_pci_func *func;
	unsigned int bar;
	uint32_t instance;	/* its device-manager instance */
	unsigned int res_index; /* the BAR's resource */
	uint64_t owner;		/* its owner in the system allocator */
	enum vmres_space space;
};

/*
 * The guest says BAR @b is mapped at [addr, addr + size): do the BAR register
 * and the PCI helper, the bus (its first and last byte), the device table and
 * the system allocator's reservation all say so? Each difference is a
 * disagreement; true if there was none. @pool receives the pool that holds it.
 */
bool vmm_check_bar(struct vmm_check *c, struct vmres_devmgr *dm, const struct vmm_bar_ref *b,
		   uint64_t addr, uint64_t size, char pool[VMRES_POOL_NAME_MAX]);

#endif
