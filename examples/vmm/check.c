/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "devices.h"

void vmm_disagree(struct vmm_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("  DISAGREE: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	c->disagreements++;
}

struct lookup_ctx {
	enum vmres_space space;
	uint64_t addr;
	struct vmm_pool_lookup *l;
};

static int lookup_locked(void *ctx, struct vmres_sysalloc *sa)
{
	struct lookup_ctx *x = ctx;
	struct vmm_pool_lookup *l = x->l;
	int rc = vmres_sysalloc_find_pool(sa, x->space, x->addr, l->pool);

	if (rc != 0) {
		l->find_rc = rc;
		return 0;
	}
	l->find_rc = vmres_sysalloc_find(sa, l->pool, x->addr, &l->info);
	if (l->find_rc == 0 && l->info.owner_name)
		snprintf(l->owner_name, sizeof(l->owner_name), "%s", l->info.owner_name);
	if (l->find_rc == 0 && l->info.label)
		snprintf(l->label, sizeof(l->label), "%s", l->info.label);
	l->info.owner_name = l->info.label = NULL; /* valid under the lock only */
	return 0;
}

void vmm_lookup_pool(struct vmres_devmgr *dm, enum vmres_space space, uint64_t addr,
		     struct vmm_pool_lookup *out)
{
	struct lookup_ctx x = {.space = space, .addr = addr, .l = out};

	memset(out, 0, sizeof(*out));
	vmres_devmgr_with_sysalloc(dm, lookup_locked, &x);
}

bool vmm_check_bar(struct vmm_check *c, struct vmres_devmgr *dm, const struct vmm_bar_ref *b,
		   uint64_t addr, uint64_t size, char pool[VMRES_POOL_NAME_MAX])
{
	struct vmres_pci_bar_state st;
	struct vmres_resource res[VMRES_PCI_NUM_BARS + 8];
	bool mapped[VMRES_PCI_NUM_BARS + 8];
	struct vmres_devmgr_info info;
	struct vmm_pool_lookup l;
	unsigned int before = c->disagreements, at = 0;
	const size_t cap = sizeof(res) / sizeof(res[0]);
	uint32_t inst = 0, ridx = b->res_index;
	uint64_t off = 0;
	int rc;

	/* the BAR register and the helper's view */
	rc = vmres_pci_func_bar_get(b->func, b->bar, &st);
	if (rc != 0)
		vmm_disagree(c, "%s bar %u: vmres_pci_func_bar_get: %s", b->name, b->bar,
			     vmres_strerror(rc));
	else if (st.reg_addr != addr || !st.mapped || st.mapped_base != addr)
		vmm_disagree(c,
			     "%s bar %u: the guest mapped it at 0x%" PRIx64
			     "; the register holds 0x%" PRIx64 ", the range is %s at 0x%" PRIx64
			     " (last error %s, %" PRIu64 " refused)",
			     b->name, b->bar, addr, st.reg_addr, st.mapped ? "mapped" : "unmapped",
			     st.mapped_base, st.last_error ? vmres_errname(st.last_error) : "none",
			     st.refused);
	/* the bus: first and last byte are this device's range */
	for (int k = 0; k < 2; k++) {
		uint64_t a = k ? addr + size - 1 : addr;

		rc = vmres_devmgr_find(dm, b->space, a, &inst, &at, &off);
		if (rc != 0 || inst != b->instance || at != ridx || off != a - addr) {
			vmm_disagree(c, "%s bar %u: the %s bus at 0x%" PRIx64 " has %s", b->name,
				     b->bar, b->space == VMRES_SPACE_PIO ? "pio" : "mmio", a,
				     rc ? "nothing" : "another range");
			break;
		}
	}
	/* the device table */
	rc = vmres_devmgr_get(dm, b->instance, &info, res, mapped, cap);
	if (rc != 0 || ridx >= info.n_res || ridx >= cap || !mapped[ridx] ||
	    res[ridx].u.addr.base != addr || res[ridx].u.addr.size != size)
		vmm_disagree(c, "%s bar %u: the device table does not have it mapped at 0x%" PRIx64,
			     b->name, b->bar, addr);
	/* the pool */
	vmm_lookup_pool(dm, b->space, addr, &l);
	if (l.find_rc != 0)
		vmm_disagree(c, "%s bar %u: no reservation at 0x%" PRIx64 " (%s)", b->name, b->bar,
			     addr, vmres_errname(l.find_rc));
	else if (l.info.owner != b->owner || l.info.res.u.addr.base != addr ||
		 l.info.res.u.addr.size != size || strcmp(l.info.res.pool, l.pool) ||
		 (rc == 0 && ridx < info.n_res && ridx < cap && strcmp(res[ridx].pool, l.pool)))
		vmm_disagree(c,
			     "%s bar %u: pool %s holds [0x%" PRIx64 ", +0x%" PRIx64
			     ") for %s at 0x%" PRIx64 " (resource pool \"%s\")",
			     b->name, b->bar, l.pool, l.info.res.u.addr.base,
			     l.info.res.u.addr.size, l.owner_name[0] ? l.owner_name : "another owner",
			     addr, rc == 0 && ridx < info.n_res && ridx < cap ? res[ridx].pool : "?");
	snprintf(pool, VMRES_POOL_NAME_MAX, "%s", l.pool);
	return c->disagreements == before;
}

void vmm_print_exits(struct vmm *vm, struct vmm_devstat *const *devs, size_t n_devs, FILE *f)
{
	static const char *const kind_name[VMM_EXIT_KINDS] = {
		"pio read", "pio write", "mmio read", "mmio write", "irq injected", "other",
	};
	struct vmres_devmgr_stats st = {0};
	uint64_t all[VMM_MAX_VCPUS + 1] = {0};
	unsigned int n = vm->nr_vcpus;

	fprintf(f, "=== exits (%s) ===\n  %-14s", vm->backend->name, "kind");
	for (unsigned int c = 0; c < n; c++)
		fprintf(f, "   vcpu %-3u", c);
	fprintf(f, " %10s\n", "total");
	for (unsigned int k = 0; k < VMM_EXIT_KINDS; k++) {
		uint64_t sum = 0;

		for (unsigned int c = 0; c < n; c++)
			sum += vm->stats[c].exits[k];
		if (!sum)
			continue;
		fprintf(f, "  %-14s", kind_name[k]);
		for (unsigned int c = 0; c < n; c++) {
			fprintf(f, " %10" PRIu64, vm->stats[c].exits[k]);
			all[c] += vm->stats[c].exits[k];
		}
		fprintf(f, " %10" PRIu64 "\n", sum);
		all[n] += sum;
	}
	fprintf(f, "  %-14s", "total");
	for (unsigned int c = 0; c <= n; c++)
		fprintf(f, " %10" PRIu64, all[c]);
	fprintf(f, "\n  %-14s %10s %10s\n", "device", "reads", "writes");
	for (size_t i = 0; i < n_devs; i++)
		if (devs[i]->name && (devs[i]->reads || devs[i]->writes))
			fprintf(f, "  %-14s %10" PRIu64 " %10" PRIu64 "\n", devs[i]->name,
				devs[i]->reads, devs[i]->writes);
	vmres_devmgr_stats(vm->devmgr, &st);
	fprintf(f, "  %-14s %10" PRIu64 " %10" PRIu64 "\n", "(no device)",
		st.pio_miss_reads + st.mmio_miss_reads, st.pio_miss_writes + st.mmio_miss_writes);
	fflush(f);
}
