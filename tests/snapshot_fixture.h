/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The description of a restored (or saved) state that the committed snapshot
 * fixtures are checked against: tests/tools/gen_snapshot_fixture.c writes it next
 * to the snapshot it makes (tests/data/snapshot-v<major>.dump), and test_snapshot.c
 * compares the description of what it restores from that file with it.
 *
 * It lists every field through the public query functions, one per line (pools,
 * owners and their names, allocations with align and label, the manager's next
 * id and attachment, devices with parent, owner and every resource with its pool,
 * mapped flag and MSI message, and which device the buses route each address
 * range's first and last byte to), then the library's own text dumps. Only what a
 * snapshot of format 1.0 holds is described, so a later format's extra state
 * does not change the description of an old snapshot.
 */
#ifndef VMRES_TESTS_SNAPSHOT_FIXTURE_H
#define VMRES_TESTS_SNAPSHOT_FIXTURE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmres/devmgr.h>
#include <vmres/resource.h>
#include <vmres/sysalloc.h>

static const char *fixture_kind_name(enum vmres_res_kind kind)
{
	switch (kind) {
	case VMRES_RES_ADDR:
		return "addr";
	case VMRES_RES_IRQ:
		return "irq";
	case VMRES_RES_MSI:
		return "msi";
	case VMRES_RES_ID:
		return "id";
	}
	return "?";
}

static const char *fixture_space_name(enum vmres_space space)
{
	return space == VMRES_SPACE_PIO ? "pio" : space == VMRES_SPACE_MMIO ? "mmio" : "-";
}

static int fixture_pool(void *ctx, const struct vmres_sysalloc_pool_info *p)
{
	fprintf(ctx, "  pool %s %s %s [0x%" PRIx64 "-0x%" PRIx64 "] count %" PRIu64 "\n", p->name,
		fixture_kind_name(p->kind), fixture_space_name(p->space), p->base, p->last,
		p->count);
	return 0;
}

static int fixture_owner(void *ctx, uint64_t owner, const char *name, uint64_t count)
{
	fprintf(ctx, "  owner 0x%" PRIx64 " \"%s\" holds %" PRIu64 "\n", owner, name ? name : "",
		count);
	return 0;
}

/* A resource's value, the same for an allocation and a device's resource. */
static void fixture_res(FILE *f, const struct vmres_resource *r)
{
	fprintf(f, "%s pool \"%s\"", fixture_kind_name(r->kind), r->pool);
	switch (r->kind) {
	case VMRES_RES_ADDR:
		fprintf(f, " %s [0x%" PRIx64 "+0x%" PRIx64 "] align 0x%" PRIx64,
			fixture_space_name(r->u.addr.space), r->u.addr.base, r->u.addr.size,
			r->u.addr.align);
		break;
	case VMRES_RES_IRQ:
		fprintf(f, " gsi %" PRIu32, r->u.irq.gsi);
		break;
	case VMRES_RES_MSI:
		fprintf(f, " gsi %" PRIu32 " msg %08" PRIx32 ":%08" PRIx32 "/%08" PRIx32,
			r->u.msi.gsi, r->u.msi.msg.addr_hi, r->u.msi.msg.addr_lo,
			r->u.msi.msg.data);
		break;
	case VMRES_RES_ID:
		fprintf(f, " id %" PRIu32, r->u.id.id);
		break;
	}
}

static int fixture_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	fputs("  ", ctx);
	fixture_res(ctx, &a->res);
	fprintf(ctx, " owner 0x%" PRIx64 " \"%s\" label \"%s\"\n", a->owner,
		a->owner_name ? a->owner_name : "", a->label ? a->label : "");
	return 0;
}

struct fixture_walk {
	FILE *f;
	struct vmres_devmgr *m;
};

/* Which device and resource the buses route @addr to. */
static void fixture_route(struct fixture_walk *w, enum vmres_space space, uint64_t addr)
{
	unsigned int res_index = 0;
	uint64_t offset = 0;
	uint32_t instance = 0;
	int rc = vmres_devmgr_find(w->m, space, addr, &instance, &res_index, &offset);

	if (rc)
		fprintf(w->f, " %s", vmres_errname(rc));
	else
		fprintf(w->f, " [%" PRIu32 "].%u+0x%" PRIx64, instance, res_index, offset);
}

static int fixture_device(void *ctx, const struct vmres_devmgr_info *info,
			  const struct vmres_resource *res, const bool *mapped)
{
	struct fixture_walk *w = ctx;

	fprintf(w->f,
		"  [%" PRIu32 "] parent %" PRIu32 " name \"%s\" owner 0x%" PRIx64
		" resources %zu\n",
		info->instance, info->parent, info->name, info->owner, info->n_res);
	for (size_t i = 0; i < info->n_res; i++) {
		const struct vmres_resource *r = &res[i];

		fprintf(w->f, "    %zu ", i);
		fixture_res(w->f, r);
		if (r->kind == VMRES_RES_ADDR) {
			fputs(mapped[i] ? " mapped, routes" : " unmapped, routes", w->f);
			fixture_route(w, r->u.addr.space, r->u.addr.base);
			fixture_route(w, r->u.addr.space, r->u.addr.base + r->u.addr.size - 1);
		}
		fputc('\n', w->f);
	}
	return 0;
}

static int fixture_attached_to(void *ctx, struct vmres_sysalloc *sa)
{
	return sa == ctx ? 1 : 2;
}

/*
 * Write the description of @sa and @m to @f. Returns 0, or the first error of a
 * query (the description is then incomplete).
 */
static int fixture_describe(struct vmres_sysalloc *sa, struct vmres_devmgr *m, FILE *f)
{
	struct fixture_walk w = {f, m};
	struct vmres_devmgr_stats st;
	const char *attached_to = "another";
	uint32_t next_id;
	int rc, attached;

	fprintf(f, "sysalloc: validate %s\npools:\n", vmres_errname(vmres_sysalloc_validate(sa)));
	rc = vmres_sysalloc_foreach_pool(sa, fixture_pool, f);
	if (!rc) {
		fputs("owners:\n", f);
		rc = vmres_sysalloc_foreach_owner(sa, fixture_owner, f);
	}
	if (!rc) {
		fputs("allocations:\n", f);
		rc = vmres_sysalloc_foreach_alloc(sa, fixture_alloc, f);
	}
	if (!rc)
		rc = vmres_devmgr_next_id(m, &next_id);
	if (!rc)
		rc = vmres_devmgr_stats(m, &st);
	if (rc)
		return rc;
	attached = vmres_devmgr_with_sysalloc(m, fixture_attached_to, sa);
	if (attached == 1)
		attached_to = "this one";
	else if (attached == VMRES_ESTATE)
		attached_to = "none";
	fprintf(f, "devmgr: next id %" PRIu32 " devices %" PRIu64 " sysalloc %s\n", next_id,
		st.devices, attached_to);
	rc = vmres_devmgr_foreach(m, fixture_device, &w);
	if (!rc) {
		fputs("---- vmres_sysalloc_dump ----\n", f);
		rc = vmres_sysalloc_dump(sa, f);
	}
	if (!rc) {
		fputs("---- vmres_devmgr_dump ----\n", f);
		rc = vmres_devmgr_dump(m, f);
	}
	return rc;
}

/* fixture_describe() into a malloc'd string (NULL on error). */
static char *fixture_describe_str(struct vmres_sysalloc *sa, struct vmres_devmgr *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (!f)
		return NULL;
	rc = fixture_describe(sa, m, f);
	if (fclose(f) || rc) {
		free(buf);
		return NULL;
	}
	return buf;
}

#endif
