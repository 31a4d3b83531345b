/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Resources and requests: equality and printing. Both are plain tagged values;
 * equality compares the fields a kind gives meaning to (never padding, never the
 * bytes of another union member), so that values built field by field compare
 * equal to values copied with memcpy.
 */
#include <vmres/resource.h>

#include "util/restext.h"

#include <inttypes.h>
#include <string.h>

static bool pool_equal(const char *a, const char *b)
{
	return strncmp(a, b, VMRES_POOL_NAME_MAX) == 0;
}

/* Pool names may fill the array without a NUL; print at most the array. */
static int pool_len(const char *pool)
{
	return (int)strnlen(pool, VMRES_POOL_NAME_MAX);
}

bool vmres_resource_equal(const struct vmres_resource *a, const struct vmres_resource *b)
{
	if (!a || !b || a->kind != b->kind || !pool_equal(a->pool, b->pool))
		return false;
	switch (a->kind) {
	case VMRES_RES_ADDR:
		return a->u.addr.space == b->u.addr.space && a->u.addr.base == b->u.addr.base &&
		       a->u.addr.size == b->u.addr.size && a->u.addr.align == b->u.addr.align;
	case VMRES_RES_IRQ:
		return a->u.irq.gsi == b->u.irq.gsi && !a->u.irq.shared == !b->u.irq.shared;
	case VMRES_RES_MSI:
		return a->u.msi.gsi == b->u.msi.gsi &&
		       a->u.msi.msg.addr_lo == b->u.msi.msg.addr_lo &&
		       a->u.msi.msg.addr_hi == b->u.msi.msg.addr_hi &&
		       a->u.msi.msg.data == b->u.msi.msg.data;
	case VMRES_RES_ID:
		return a->u.id.id == b->u.id.id;
	}
	return false;
}

static bool addr_req_equal(const struct vmres_addr_req *a, const struct vmres_addr_req *b)
{
	/* The exact address only means something for an exact request. */
	if (a->policy == VMRES_ADDR_EXACT && a->addr != b->addr)
		return false;
	return a->version == b->version && a->policy == b->policy && a->size == b->size &&
	       a->align == b->align && a->min == b->min && a->max == b->max && a->owner == b->owner;
}

bool vmres_request_equal(const struct vmres_request *a, const struct vmres_request *b)
{
	if (!a || !b || a->kind != b->kind || !pool_equal(a->pool, b->pool))
		return false;
	switch (a->kind) {
	case VMRES_RES_ADDR:
		return a->u.addr.space == b->u.addr.space &&
		       addr_req_equal(&a->u.addr.req, &b->u.addr.req);
	case VMRES_RES_IRQ:
		return !a->u.irq.any == !b->u.irq.any && !a->u.irq.shared == !b->u.irq.shared &&
		       (a->u.irq.any || a->u.irq.gsi == b->u.irq.gsi);
	case VMRES_RES_MSI:
		return a->u.msi.count == b->u.msi.count &&
		       !a->u.msi.contiguous == !b->u.msi.contiguous &&
		       !a->u.msi.any == !b->u.msi.any &&
		       (a->u.msi.any || a->u.msi.gsi == b->u.msi.gsi);
	case VMRES_RES_ID:
		return !a->u.id.any == !b->u.id.any && (a->u.id.any || a->u.id.id == b->u.id.id);
	}
	return false;
}

static int finish(struct vmres__text *o)
{
	if (o->pos > INT32_MAX)
		return VMRES_EINVAL;
	return (int)o->pos;
}

int vmres_resource_format(const struct vmres_resource *r, char *buf, size_t len)
{
	struct vmres__text o = {buf, len, 0};

	if (!r || (!buf && len))
		return VMRES_EINVAL;
	if (buf && len)
		buf[0] = '\0';
	if (vmres__resource_text(&o, r, r->pool, pool_len(r->pool)))
		return VMRES_EINVAL;
	return finish(&o);
}

static const char *policy_name(enum vmres_addr_policy p)
{
	switch (p) {
	case VMRES_ADDR_FIRST_FIT:
		return "first";
	case VMRES_ADDR_LAST_FIT:
		return "last";
	case VMRES_ADDR_EXACT:
		return "exact";
	}
	return "?";
}

static void put_addr_req(struct vmres__text *o, const struct vmres_addr_req *q)
{
	vmres__text_put(o, " size 0x%" PRIx64, q->size);
	if (q->align > 1)
		vmres__text_put(o, " align 0x%" PRIx64, q->align);
	if (q->policy == VMRES_ADDR_EXACT)
		vmres__text_put(o, " at 0x%" PRIx64, q->addr);
	else
		vmres__text_put(o, " %s", policy_name(q->policy));
	if (q->min != 0 || q->max != UINT64_MAX)
		vmres__text_put(o, " in [0x%" PRIx64 "-0x%" PRIx64 "]", q->min, q->max);
}

int vmres_request_format(const struct vmres_request *q, char *buf, size_t len)
{
	struct vmres__text o = {buf, len, 0};
	int plen;

	if (!q || (!buf && len))
		return VMRES_EINVAL;
	if (buf && len)
		buf[0] = '\0';
	plen = pool_len(q->pool);
	switch (q->kind) {
	case VMRES_RES_ADDR:
		vmres__text_put(&o, "%s %.*s", vmres_space_name(q->u.addr.space), plen, q->pool);
		put_addr_req(&o, &q->u.addr.req);
		break;
	case VMRES_RES_IRQ:
		if (q->u.irq.any)
			vmres__text_put(&o, "irq %.*s any%s", plen, q->pool,
					q->u.irq.shared ? " shared" : "");
		else
			vmres__text_put(&o, "irq %.*s %" PRIu32 "%s", plen, q->pool, q->u.irq.gsi,
					q->u.irq.shared ? " shared" : "");
		break;
	case VMRES_RES_MSI:
		vmres__text_put(&o, "msi %.*s count %" PRIu32 "%s", plen, q->pool, q->u.msi.count,
				q->u.msi.contiguous ? " contiguous" : "");
		if (q->u.msi.any)
			vmres__text_put(&o, " any");
		else
			vmres__text_put(&o, " from %" PRIu32, q->u.msi.gsi);
		break;
	case VMRES_RES_ID:
		if (q->u.id.any)
			vmres__text_put(&o, "id %.*s any", plen, q->pool);
		else
			vmres__text_put(&o, "id %.*s %" PRIu32, plen, q->pool, q->u.id.id);
		break;
	default:
		return VMRES_EINVAL;
	}
	return finish(&o);
}

const char *vmres_res_kind_name(enum vmres_res_kind kind)
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

const char *vmres_space_name(enum vmres_space space)
{
	switch (space) {
	case VMRES_SPACE_PIO:
		return "pio";
	case VMRES_SPACE_MMIO:
		return "mmio";
	}
	return "?";
}
