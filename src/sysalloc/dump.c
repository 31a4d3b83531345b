/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dumps of the whole state: text in the style of /proc/iomem, /proc/ioports and
 * /proc/interrupts, and the same as JSON built with jansson.
 */
#include "sysalloc_int.h"
#include "../common_int.h"
#include "../util/json.h"
#include "../util/bits.h"

#include <inttypes.h>
#include <stdlib.h>

#include <jansson.h>

/* ---- text ---- */

struct text_ctx {
	FILE *f;
	int width; /* hex digits of an address, or decimal digits of a number */
};

static int digits(uint64_t v, unsigned int base)
{
	int n = 1;

	while (v >= base) {
		v /= base;
		n++;
	}
	return n;
}

static void put_owner(FILE *f, const struct vmres_sysalloc_alloc_info *a)
{
	if (a->owner_name)
		fprintf(f, "%s", a->owner_name);
	else
		fprintf(f, "owner 0x%" PRIx64, a->owner);
	if (a->label)
		fprintf(f, " %s", a->label);
	/* One row per sharer of a shared line, each marked (unshared rows as ever). */
	if (a->res.kind == VMRES_RES_IRQ && a->res.u.irq.shared)
		fputs(" [shared]", f);
	fputc('\n', f);
}

static int text_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct text_ctx *c = ctx;
	const struct vmres_resource *r = &a->res;

	switch (r->kind) {
	case VMRES_RES_ADDR:
		fprintf(c->f, "  %0*" PRIx64 "-%0*" PRIx64 " : ", c->width, r->u.addr.base,
			c->width, vmres__range_last(r->u.addr.base, r->u.addr.size));
		break;
	case VMRES_RES_IRQ:
		fprintf(c->f, "  %*" PRIu32 " : ", c->width, r->u.irq.gsi);
		break;
	case VMRES_RES_MSI:
		fprintf(c->f, "  %*" PRIu32 " : ", c->width, r->u.msi.gsi);
		break;
	case VMRES_RES_ID:
		fprintf(c->f, "  %*" PRIu32 " : ", c->width, r->u.id.id);
		break;
	}
	put_owner(c->f, a);
	return 0;
}

int vmres_sysalloc_dump(const struct vmres_sysalloc *sa, FILE *f)
{
	if (!sa || !f)
		return VMRES_EINVAL;
	for (uint32_t i = 0; i < sa->n_pools; i++) {
		const struct vmres__pool *p = sa->pools[i];
		struct text_ctx c = {f, 0};
		int ret;

		if (p->kind == VMRES_RES_ADDR) {
			c.width = digits(p->last, 16) < 4 ? 4 : digits(p->last, 16);
			fprintf(f, "pool %s: %s [%0*" PRIx64 "-%0*" PRIx64 "]\n", p->name,
				vmres_space_name(p->space), c.width, p->base, c.width, p->last);
		} else {
			c.width = digits(p->last, 10) < 4 ? 4 : digits(p->last, 10);
			fprintf(f, "pool %s: %s [%" PRIu64 "-%" PRIu64 "]\n", p->name,
				vmres_res_kind_name(p->kind), p->base, p->last);
		}
		ret = vmres__sysalloc_foreach_in_pool(sa, p, text_alloc, &c);
		if (ret)
			return ret;
	}
	return ferror(f) ? VMRES_ESYS : 0;
}

int vmres_sysalloc_dump_str(const struct vmres_sysalloc *sa, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (!sa || !out)
		return VMRES_EINVAL;
	f = open_memstream(&buf, &len);
	if (!f)
		return VMRES_ENOMEM;
	ret = vmres_sysalloc_dump(sa, f);
	if (fclose(f) && !ret)
		ret = VMRES_ENOMEM;
	if (ret == VMRES_ESYS)
		ret = VMRES_ENOMEM; /* a memory stream fails only for want of memory */
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

/* ---- JSON ---- */

struct json_ctx {
	json_t *list;
};

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int json_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct json_ctx *c = ctx;
	const struct vmres_resource *r = &a->res;
	json_t *o = json_object();
	bool ok = o != NULL;

	if (ok && r->kind == VMRES_RES_ADDR) {
		ok = vmres__json_set(o, "base", vmres__json_hex(r->u.addr.base)) &&
		     vmres__json_set(o, "last",
				     vmres__json_hex(vmres__range_last(r->u.addr.base, r->u.addr.size))) &&
		     vmres__json_set(o, "size", vmres__json_hex(r->u.addr.size)) &&
		     vmres__json_set(o, "align", vmres__json_hex(r->u.addr.align));
	} else if (ok) {
		uint32_t n = r->kind == VMRES_RES_IRQ	? r->u.irq.gsi
			     : r->kind == VMRES_RES_MSI ? r->u.msi.gsi
							: r->u.id.id;

		ok = vmres__json_set(o, "number", json_integer(n));
	}
	ok = ok && vmres__json_set(o, "owner", vmres__json_hex(a->owner)) &&
	     vmres__json_set(o, "owner_name", string_or_null(a->owner_name)) &&
	     vmres__json_set(o, "label", string_or_null(a->label));
	/* Only a sharer's object has the key: unshared ones keep their format. */
	if (ok && r->kind == VMRES_RES_IRQ && r->u.irq.shared)
		ok = vmres__json_set(o, "shared", json_true());
	if (!ok) {
		json_decref(o);
		return VMRES_ENOMEM;
	}
	/* json_array_append_new consumes o whether or not it succeeds. */
	return json_array_append_new(c->list, o) == 0 ? 0 : VMRES_ENOMEM;
}

static json_t *json_pool(const struct vmres_sysalloc *sa, const struct vmres__pool *p)
{
	json_t *o = json_object();
	struct json_ctx c = {json_array()};
	bool ok = o && c.list;

	if (ok && p->kind == VMRES_RES_ADDR)
		ok = vmres__json_set(o, "name", json_string(p->name)) &&
		     vmres__json_set(o, "kind", json_string("addr")) &&
		     vmres__json_set(o, "space", json_string(vmres_space_name(p->space))) &&
		     vmres__json_set(o, "base", vmres__json_hex(p->base)) &&
		     vmres__json_set(o, "last", vmres__json_hex(p->last));
	else if (ok)
		ok = vmres__json_set(o, "name", json_string(p->name)) &&
		     vmres__json_set(o, "kind", json_string(vmres_res_kind_name(p->kind))) &&
		     vmres__json_set(o, "base", json_integer((json_int_t)p->base)) &&
		     vmres__json_set(o, "last", json_integer((json_int_t)p->last));
	if (ok)
		ok = vmres__sysalloc_foreach_in_pool(sa, p, json_alloc, &c) == 0;
	if (ok) {
		ok = json_object_set_new(o, "allocations", c.list) == 0;
		c.list = NULL;
	}
	json_decref(c.list);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int vmres_sysalloc_dump_json(const struct vmres_sysalloc *sa, char **out)
{
	json_t *root, *pools;
	char *text = NULL;
	bool ok;

	if (!sa || !out)
		return VMRES_EINVAL;
	root = json_object();
	pools = json_array();
	ok = root && pools;
	for (uint32_t i = 0; ok && i < sa->n_pools; i++) {
		json_t *p = json_pool(sa, sa->pools[i]);

		ok = p && json_array_append_new(pools, p) == 0;
	}
	if (ok) {
		ok = json_object_set_new(root, "pools", pools) == 0;
		pools = NULL;
	}
	if (ok)
		text = vmres__json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(pools);
	json_decref(root);
	if (!text)
		return VMRES_ENOMEM;
	*out = text;
	return 0;
}
