/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Machine set-up steps shared by the demo's two machines (machine.c, and the
 * SeaBIOS one in firmware.c): error reporting, address requests, taking over a
 * platform reservation, registering a device, the PCI host bridge at slot 0, and
 * the vCPU backend and guest RAM at teardown.
 * Header-only (static inline); each returns 0 or -1 with a message on stderr.
 */
#ifndef VMM_SETUP_H
#define VMM_SETUP_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <vmres/devmgr.h>
#include <vmres/pci.h>
#include <vmres/sysalloc.h>

#include "devices.h"
#include "vmm.h"

/* Report a failed vmres call; -1. */
static inline int vmm_fail(const char *what, int err)
{
	fprintf(stderr, "vmres-demo: %s: %s (%s)\n", what, vmres_strerror(err), vmres_errname(err));
	return -1;
}

/* A first-fit request for @size bytes aligned to @align within [min, max] of @pool. */
static inline struct vmres_request vmm_addr_request(const char *pool, enum vmres_space space,
						    uint64_t size, uint64_t align, uint64_t min,
						    uint64_t max)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_ADDR;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	q.u.addr.space = space;
	q.u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
	q.u.addr.req.size = size;
	q.u.addr.req.align = align;
	q.u.addr.req.min = min;
	q.u.addr.req.max = max;
	return q;
}

/* The request for exactly [base, base + size) of pool @pool. A platform
 * reservation of exactly that range (the x86_64 preset's com1, conf1, rtc, pci
 * ecam, ...) is released first, so that the device that implements it takes it
 * over. */
static inline int vmm_exact_request(struct vmres_sysalloc *sa, const char *pool,
				    enum vmres_space space, uint64_t base, uint64_t size,
				    struct vmres_request *q)
{
	struct vmres_sysalloc_alloc_info info;
	int rc;

	*q = vmm_addr_request(pool, space, size, 0, 0, UINT64_MAX);
	rc = vmres_sysalloc_find(sa, pool, base, &info);
	if (rc == 0 && info.owner == VMRES_SYSALLOC_OWNER_PLATFORM &&
	    info.res.u.addr.base == base && info.res.u.addr.size == size) {
		rc = vmres_sysalloc_release(sa, &info.res, VMRES_SYSALLOC_OWNER_PLATFORM);
		if (rc != 0)
			return vmm_fail("releasing a platform range", rc);
	}
	q->u.addr.req.policy = VMRES_ADDR_EXACT;
	q->u.addr.req.addr = base;
	return 0;
}

/* The same for a port range. */
static inline int vmm_exact_pio_request(struct vmres_sysalloc *sa, const char *pool, uint64_t base,
					uint64_t size, struct vmres_request *q)
{
	return vmm_exact_request(sa, pool, VMRES_SPACE_PIO, base, size, q);
}

/* Satisfy @n requests for @owner, name the owner, and label each result i
 * with @labels[i] if @labels and it are not NULL. */
static inline int vmm_alloc(struct vmres_sysalloc *sa, const struct vmres_request *q, size_t n,
			    uint64_t owner, const char *owner_name, const char *const *labels,
			    struct vmres_resource *out)
{
	struct vmres_sysalloc_error err = {0};
	size_t got = 0;
	int rc = vmres_sysalloc_alloc(sa, q, n, owner, out, n, &got, &err);

	if (rc != 0) {
		fprintf(stderr, "vmres-demo: allocating for %s: request %zu: %s\n", owner_name,
			err.index, vmres_strerror(err.code));
		return -1;
	}
	rc = vmres_sysalloc_set_owner_name(sa, owner, owner_name);
	for (size_t i = 0; labels && i < got && rc == 0; i++)
		if (labels[i])
			rc = vmres_sysalloc_set_label(sa, &out[i], owner, labels[i]);
	return rc ? vmm_fail("naming an allocation", rc) : 0;
}

static inline int vmm_register_device(struct vmres_devmgr *dm, const struct vmres_device *dev,
				      uint32_t parent, const struct vmres_resource *res, size_t n,
				      uint32_t *instance)
{
	int rc = vmres_devmgr_register(dm, dev, parent, res, n, instance);

	return rc ? vmm_fail(dev->name, rc) : 0;
}

/* The host bridge ("i440fx") at slot 0 of @pci, registered under the conf1
 * device @host_id; *@bridge is for the caller to free. */
static inline int vmm_add_host_bridge(struct vmres_devmgr *dm, struct vmres_pci_host *pci,
				      uint32_t host_id, struct vmres_pci_func **bridge)
{
	struct vmres_device dev;
	uint32_t id;
	int rc = vmres_pci_host_bridge_new(NULL, NULL, bridge);

	if (rc == 0)
		rc = vmres_pci_host_attach(pci, 0, 0, *bridge);
	if (rc != 0)
		return vmm_fail("host bridge", rc);
	dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev.name = "i440fx";
	return vmm_register_device(dm, &dev, host_id, NULL, 0, &id);
}

/* The PCI host (*@pci) behind the conf1 ports (@conf1, the preset's "pci conf1"
 * range taken over by @owner) and its host bridge at slot 0 (*@bridge); the
 * conf1 device's instance in *@host_id. The caller frees *@pci and *@bridge. */
static inline int vmm_add_pci_host(struct vmres_devmgr *dm, struct vmres_sysalloc *sa,
				   uint64_t owner, struct vmm_conf1 *conf1,
				   struct vmres_pci_host **pci, struct vmres_pci_func **bridge,
				   uint32_t *host_id)
{
	static const char *const labels[1] = {"pci conf1"};
	struct vmres_request q;
	struct vmres_resource res;
	struct vmres_device dev;
	int rc = vmres_pci_host_new(pci);

	if (rc != 0)
		return vmm_fail("PCI host", rc);
	conf1->host = *pci;
	conf1->stat.name = "pci-host";
	if (vmm_exact_pio_request(sa, "pio", VMRES_PCI_CONF1_PORT, VMRES_PCI_CONF1_SIZE, &q) < 0 ||
	    vmm_alloc(sa, &q, 1, owner, "pci-host", labels, &res) < 0)
		return -1;
	vmm_conf1_device(conf1, &dev);
	dev.owner = owner;
	if (vmm_register_device(dm, &dev, VMRES_DEVMGR_NO_PARENT, &res, 1, host_id) < 0)
		return -1;
	return vmm_add_host_bridge(dm, *pci, *host_id, bridge);
}

/* Teardown: the vCPU backend (if it was set up), then the guest RAM (if mapped). */
static inline void vmm_release_vm(struct vmm *vm)
{
	if (vm->backend)
		vm->backend->fini(vm);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
}

#endif
