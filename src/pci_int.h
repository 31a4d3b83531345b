/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What pci.c shares with the snapshot module: the checks of a saved function
 * state (vmres_pci_func_save_state()) split from its application, so that a
 * restore checks every function before it changes any, and a load that binds
 * the function to the restored manager in the same step.
 */
#ifndef VMRES_PCI_INT_H
#define VMRES_PCI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/pci.h>

/* The checks that need no function on a state of @p len bytes: 0,
 * VMRES_EVERSION or VMRES_ECORRUPT (also for a @p len that disagrees with the
 * state, and when @p res is not NULL and the device's entry, @p res and
 * @p mapped of @p n_res, does not hold the ranges and routes where the state
 * has them). */
int vmres__pci_state_check(const void *state, size_t len, const struct vmres_resource *res,
			   const bool *mapped, size_t n_res);

/* Could vmres_pci_func_load_state() load @p state (@p len bytes) into @p f?
 * 0, or its codes (VMRES_ESIZE, VMRES_EVERSION, VMRES_ECORRUPT, VMRES_ESTATE,
 * VMRES_EKIND). */
int vmres__pci_func_check_state(struct vmres_pci_func *f, const void *state, size_t len);

/* Load @p state and bind @p f to instance @p instance of @p m, which must agree
 * (checked by vmres__pci_state_check() against that entry): nothing is asked of
 * the manager. Returns what vmres__pci_func_check_state() would; cannot fail
 * after it succeeded with no call on @p f in between. */
int vmres__pci_func_load_bound(struct vmres_pci_func *f, const void *state, size_t len,
			       struct vmres_devmgr *m, uint32_t instance);

/* Is @p f bound to @p m (vmres_pci_func_bind())? Then *@p instance is its id. */
bool vmres__pci_func_bound(struct vmres_pci_func *f, struct vmres_devmgr *m, uint32_t *instance);

/*
 * For pci_device.c, which puts a function into a VM and takes it out in one
 * call each. The host's mutex is taken before a function's and the device
 * manager's (pci.h, lock order); with it held no configuration access of the
 * host reaches any of its functions.
 */
void vmres__pci_host_lock(struct vmres_pci_host *h);
void vmres__pci_host_unlock(struct vmres_pci_host *h);

/* With the host's mutex held: the place (slot, fn), which holds its function
 * or NULL; @p slot and @p fn must be in range. */
struct vmres_pci_func **vmres__pci_host_place(struct vmres_pci_host *h, unsigned int slot,
					      unsigned int fn);

/* With the host's mutex held: is @p f at any place of the host? */
bool vmres__pci_host_holds(struct vmres_pci_host *h, const struct vmres_pci_func *f);

/* Has @p f a mapper (bound, or vmres_pci_func_set_mapper())? */
bool vmres__pci_func_has_mapper(struct vmres_pci_func *f);

/*
 * For vmres_pci_device_add(): register @p dev with @p m
 * (vmres_devmgr_register_ex() with @p opts) and bind @p f to it
 * (vmres_pci_func_bind()) as one step: the bind's checks run under the
 * manager's writer lock before the device is published, with its ranges put
 * on the bus as the bind would, so nothing is left to undo. The codes of
 * both; on failure nothing changed.
 */
int vmres__pci_func_register_bound(struct vmres_pci_func *f, struct vmres_devmgr *m,
				   const struct vmres_device *dev,
				   const struct vmres_devmgr_register_opts *opts, uint32_t *instance);

/* Take @p f out of its VM: drop its mapper and binding, and stop driving its
 * MSI and MSI-X sources (as vmres_pci_func_set_msi_sources() and
 * _set_msix_sources() with none). Registers are kept. Cannot fail. */
void vmres__pci_func_unplug(struct vmres_pci_func *f);

#endif /* VMRES_PCI_INT_H */
