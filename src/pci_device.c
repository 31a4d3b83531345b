/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A PCI device into the VM and out of it, one call each (pci.h): the device
 * manager's registration (with its allocation), the function's binding and
 * its place on the host, done all or nothing under the host's mutex so that
 * no configuration access of the guest sees a step half done. The lock order
 * is pci.h's: host, then function, then the manager's writer lock.
 */
#include <vmres/pci.h>

#include <vmres/devmgr.h>

#include "devmgr_int.h"
#include "pci_int.h"

int vmres_pci_device_add(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			 struct vmres_pci_func *f, struct vmres_devmgr *m,
			 const struct vmres_device *dev,
			 const struct vmres_devmgr_register_opts *opts, uint32_t *instance)
{
	struct vmres_pci_func **place;
	uint32_t id;
	int rc;

	if (!h || !f || !m || !dev || !instance)
		return VMRES_EINVAL;
	if (slot >= VMRES_PCI_HOST_SLOTS || fn >= 8)
		return VMRES_ERANGE;
	vmres__pci_host_lock(h);
	place = vmres__pci_host_place(h, slot, fn);
	rc = VMRES_EEXIST;
	if (*place)
		goto out;
	rc = VMRES_ESTATE;
	if (vmres__pci_host_holds(h, f) || vmres__pci_func_has_mapper(f))
		goto out;
	rc = vmres__pci_func_register_bound(f, m, dev, opts, &id);
	if (rc)
		goto out;
	*place = f;
	*instance = id;
out:
	vmres__pci_host_unlock(h);
	return rc;
}

int vmres_pci_device_remove(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			    struct vmres_devmgr *m)
{
	struct vmres_pci_func **place, *f;
	uint32_t id;
	int rc;

	if (!h || !m)
		return VMRES_EINVAL;
	if (slot >= VMRES_PCI_HOST_SLOTS || fn >= 8)
		return VMRES_ERANGE;
	vmres__pci_host_lock(h);
	place = vmres__pci_host_place(h, slot, fn);
	f = *place;
	rc = VMRES_ENOENT;
	if (!f)
		goto out;
	rc = VMRES_ESTATE;
	if (!vmres__pci_func_bound(f, m, &id))
		goto out;
	/* The one step that can fail comes first; under the host's mutex the
	 * guest cannot reach the function's configuration space in between. */
	if (vmres__devmgr_sysalloc(m))
		rc = vmres_devmgr_unregister_release(m, id);
	else
		rc = vmres_devmgr_unregister(m, id);
	if (rc)
		goto out;
	*place = NULL;
	vmres__pci_func_unplug(f);
out:
	vmres__pci_host_unlock(h);
	return rc;
}
