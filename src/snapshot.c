/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Snapshot save and restore (format: docs/SNAPSHOT.md).
 *
 * Save walks the two objects through their public iteration and writes fixed-size
 * little-endian records into sections; the crc32 (zlib) closes the file.
 *
 * Restore runs in two passes over a private model, so that nothing is built
 * from an input that is not entirely valid:
 *   1. frame: magic, major version, total length, crc32, section table;
 *   2. parse: every record into the model, checking each field and the
 *      relations between records (windows, pools, order, overlaps, parents);
 * then builds a new sysalloc (allocation by allocation) and a new device manager
 * (vmres_devmgr_restore(): the whole table in one call) and, on any failure
 * there (VMRES_ENOMEM, or the bind callback's error), frees both.
 */
#include "common_int.h"
#include "kvmres_int.h"
#include "pci_int.h"
#include "util/bits.h"
#include "util/byteorder.h"
#include "util/search.h"

#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/pci.h>
#include <vmres/snapshot.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

/* ---- format constants (docs/SNAPSHOT.md) ---- */

/*
 * Record layouts, each declared once, as in docs/SNAPSHOT.md's tables: a
 * struct lists a record's fields in file order as byte arrays, so offsetof()
 * is a field's offset and sizeof its width, with no padding (every member has
 * alignment 1). The structs are never instantiated: the writer stores, and the
 * reader loads and reports errors, through F_GET(), F_PUT(), F_AT() and F_NAME()
 * on a record's bytes, so a field cannot be written at one offset and read at
 * another, and the record sizes below are these structs' sizes.
 */
struct rec_header {
	uint8_t magic[8], major[2], minor[2], header_size[4], total_size[8], reserved[8];
};

struct rec_section {
	uint8_t kind[4], flags[4], length[8];
};

/* The body of every section: a table of records. */
struct rec_table {
	uint8_t count[4], record_size[4];
};

struct rec_pool {
	uint8_t name[VMRES_POOL_NAME_MAX], kind[1], space[1], flags[1], reserved[5], base[8],
		last[8];
};

struct rec_owner {
	uint8_t owner[8], name[VMRES_SYSALLOC_LABEL_MAX];
};

struct rec_alloc {
	uint8_t pool[4], reserved[4], base[8], size[8], align[8], owner[8],
		label[VMRES_SYSALLOC_LABEL_MAX];
};

struct rec_devmgr {
	uint8_t next_id[4], flags[4], reserved[8];
};

struct rec_device {
	uint8_t instance[4], parent[4], owner[8], n_res[4], reserved[4],
		name[VMRES_DEVICE_NAME_MAX];
};

struct rec_resource {
	uint8_t kind[1], space[1], flags[1], reserved[1], number[4], pool[VMRES_POOL_NAME_MAX],
		base[8], size[8], align[8], msg_addr_lo[4], msg_addr_hi[4], msg_data[4],
		reserved2[4];
};

/* Followed by the state: state_len bytes, then zeros to the record's end. */
struct rec_pci_func {
	uint8_t instance[4], state_len[4], state[];
};

struct rec_irq {
	uint8_t gsi[4], kind[1], trigger[1], flags[1], reserved[1], msg_addr_lo[4],
		msg_addr_hi[4], msg_data[4], reserved2[4];
};

struct rec_kvmres {
	uint8_t instance[4], res_index[4], kind[1], flags[1], len[1], reserved[1], slot[4],
		offset[8], data[8];
};

struct rec_share {
	uint8_t pool[4], gsi[4], owner[8], label[VMRES_SYSALLOC_LABEL_MAX], reserved[8];
};

/* Offset and width of field @p f of record struct @p rec. */
#define F_AT(rec, f)	offsetof(struct rec, f)
#define F_WIDTH(rec, f) sizeof(((const struct rec *)NULL)->f)
/* The width of an integer field: 1, 2, 4 or 8 bytes, else the build fails. */
#define F_IS_INT(w)	((w) == 1 || (w) == 2 || (w) == 4 || (w) == 8)
#define F_INT_WIDTH(rec, f) \
	((unsigned int)F_WIDTH(rec, f) + 0 * sizeof(char[F_IS_INT(F_WIDTH(rec, f)) ? 1 : -1]))
/* Integer field @p f of the record at @p p, loaded and stored. */
#define F_GET(p, rec, f)    vmres__le_load((p) + F_AT(rec, f), F_INT_WIDTH(rec, f))
#define F_PUT(p, rec, f, v) vmres__le_store((p) + F_AT(rec, f), F_INT_WIDTH(rec, f), (v))
/* Name field @p f of the record at @p p, and its size (two arguments). */
#define F_NAME(p, rec, f) ((p) + F_AT(rec, f)), F_WIDTH(rec, f)

enum {
	HDR_SIZE = sizeof(struct rec_header),
	SEC_HDR_SIZE = sizeof(struct rec_section),
	TABLE_HDR_SIZE = sizeof(struct rec_table),
	CRC_SIZE = 4,
};

enum section_kind {
	SEC_POOLS = 1,
	SEC_OWNERS = 2,
	SEC_ALLOCS = 3,
	SEC_DEVMGR = 4,
	SEC_DEVICES = 5,
	SEC_RESOURCES = 6,
	N_REQUIRED = 7, /* kinds 1..6 are in every snapshot */
	SEC_PCI_FUNCS = 7,
	SEC_IRQ = 8,
	SEC_KVMRES = 9,
	SEC_SHARES = 10, /* REQUIRED, but only in a snapshot that holds a share */
	N_SECTIONS = 11, /* kinds are 1..10 */
};

#define SEC_FLAG_REQUIRED	 1u
#define POOL_FLAG_GUEST		 1u
#define DEVMGR_FLAG_ATTACHED	 1u
#define DEVMGR_FLAG_FOLLOW_GUEST 2u
#define RES_FLAG_MAPPED		 1u
#define RES_FLAG_SHARED		 2u
#define IRQ_FLAG_ENABLED	 1u
#define IRQ_FLAG_MASKED		 2u
#define IRQ_FLAG_PENDING	 4u
#define IRQ_FLAG_ASSERTED	 8u
#define KV_NOTIFY		 1u
#define KV_MEMORY		 2u
#define KV_FLAG_MATCH		 1u /* notify */
#define KV_FLAG_READONLY	 1u /* memory */

/* Record sizes of this minor version; a reader accepts larger records. */
static const uint32_t rec_size[N_SECTIONS] = {
	[SEC_POOLS] = sizeof(struct rec_pool),
	[SEC_OWNERS] = sizeof(struct rec_owner),
	[SEC_ALLOCS] = sizeof(struct rec_alloc),
	[SEC_DEVMGR] = sizeof(struct rec_devmgr),
	[SEC_DEVICES] = sizeof(struct rec_device),
	[SEC_RESOURCES] = sizeof(struct rec_resource),
	[SEC_PCI_FUNCS] = sizeof(struct rec_pci_func) + VMRES_PCI_FUNC_STATE_SIZE,
	[SEC_IRQ] = sizeof(struct rec_irq),
	[SEC_KVMRES] = sizeof(struct rec_kvmres),
	[SEC_SHARES] = sizeof(struct rec_share),
};

/* The sizes docs/SNAPSHOT.md gives: the format's, never to change in version 1. */
_Static_assert(HDR_SIZE == 32 && SEC_HDR_SIZE == 16 && TABLE_HDR_SIZE == 8,
	       "snapshot frame layout changed");
_Static_assert(sizeof(struct rec_pool) == 48 && sizeof(struct rec_owner) == 32 &&
		       sizeof(struct rec_alloc) == 64 && sizeof(struct rec_devmgr) == 16 &&
		       sizeof(struct rec_device) == 56 && sizeof(struct rec_resource) == 72 &&
		       sizeof(struct rec_pci_func) == 8 && sizeof(struct rec_irq) == 24 &&
		       sizeof(struct rec_kvmres) == 32 && sizeof(struct rec_share) == 48,
	       "snapshot record layout changed");

/* ---- output buffer ---- */

struct obuf {
	uint8_t *p;
	size_t len, cap;
	bool nomem;
};

/* Room for @p n more bytes, zeroed; NULL (and nomem set) when out of memory. */
static uint8_t *obuf_grow(struct obuf *b, size_t n)
{
	uint8_t *at;

	if (b->nomem)
		return NULL;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->nomem = true;
				return NULL;
			}
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	at = b->p + b->len;
	memset(at, 0, n);
	b->len += n;
	return at;
}

/* A name into a zeroed field of @p size bytes, NUL-terminated (truncated if longer). */
static void put_name(uint8_t *p, size_t size, const char *name)
{
	if (name)
		memcpy(p, name, strnlen(name, size - 1));
}

/* A section of records of @p size bytes, copied from @p recs; kinds 1..6
 * and SHARES are REQUIRED, the others optional. */
static void put_table(struct obuf *b, enum section_kind kind, const struct obuf *recs,
		      uint32_t size)
{
	uint8_t *h = obuf_grow(b, SEC_HDR_SIZE + TABLE_HDR_SIZE + recs->len);

	if (!h)
		return;
	F_PUT(h, rec_section, kind, kind);
	F_PUT(h, rec_section, flags,
	    kind < N_REQUIRED || kind == SEC_SHARES ? SEC_FLAG_REQUIRED : 0);
	F_PUT(h, rec_section, length, TABLE_HDR_SIZE + recs->len);
	h += SEC_HDR_SIZE;
	F_PUT(h, rec_table, count, recs->len / size);
	F_PUT(h, rec_table, record_size, size);
	if (recs->len)
		memcpy(h + TABLE_HDR_SIZE, recs->p, recs->len);
}

/* A section of records of rec_size[kind] bytes. */
static void put_section(struct obuf *b, enum section_kind kind, const struct obuf *recs)
{
	put_table(b, kind, recs, rec_size[kind]);
}

/* ---- save ---- */

struct save_pool {
	char name[VMRES_POOL_NAME_MAX];
	enum vmres_res_kind kind;
	enum vmres_space space;
};

struct save_ctx {
	struct obuf pools, owners, allocs, devices, resources, shares;
	struct save_pool *pool_names;
	uint32_t n_pools, cap_pools, last_pool;
	bool shared_res; /* a device holds a share of a shared line */
};

static int save_pool(void *ctx, const struct vmres_sysalloc_pool_info *p)
{
	struct save_ctx *c = ctx;
	uint8_t *r = obuf_grow(&c->pools, rec_size[SEC_POOLS]);

	if (c->n_pools == c->cap_pools) {
		uint32_t cap = c->cap_pools ? 2 * c->cap_pools : 8;
		void *names = realloc(c->pool_names, cap * sizeof(*c->pool_names));

		if (!names)
			return VMRES_ENOMEM;
		c->pool_names = names;
		c->cap_pools = cap;
	}
	if (!r)
		return VMRES_ENOMEM;
	snprintf(c->pool_names[c->n_pools].name, VMRES_POOL_NAME_MAX, "%s", p->name);
	c->pool_names[c->n_pools].kind = p->kind;
	c->pool_names[c->n_pools++].space = p->space;
	put_name(F_NAME(r, rec_pool, name), p->name);
	F_PUT(r, rec_pool, kind, p->kind);
	F_PUT(r, rec_pool, space, p->kind == VMRES_RES_ADDR ? p->space : 0);
	F_PUT(r, rec_pool, flags, p->guest ? POOL_FLAG_GUEST : 0);
	F_PUT(r, rec_pool, base, p->base);
	F_PUT(r, rec_pool, last, p->last);
	return 0;
}

static int save_owner(void *ctx, uint64_t owner, const char *name, uint64_t count)
{
	struct save_ctx *c = ctx;
	uint8_t *r;

	(void)count;
	if (!name)
		return 0;
	r = obuf_grow(&c->owners, rec_size[SEC_OWNERS]);
	if (!r)
		return VMRES_ENOMEM;
	F_PUT(r, rec_owner, owner, owner);
	put_name(F_NAME(r, rec_owner, name), name);
	return 0;
}

static int save_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct save_ctx *c = ctx;
	const struct vmres_resource *res = &a->res;
	uint8_t *r;
	uint32_t i = c->last_pool;

	/* Allocations come pool by pool, so the last pool found is nearly always it. */
	if (i >= c->n_pools || strcmp(c->pool_names[i].name, res->pool) != 0)
		for (i = 0; i < c->n_pools && strcmp(c->pool_names[i].name, res->pool) != 0; i++)
			;
	if (i == c->n_pools)
		return VMRES_ECORRUPT;
	c->last_pool = i;
	if (res->kind == VMRES_RES_IRQ && res->u.irq.shared) {
		/* A share: its own section, in the order the sysalloc visits
		 * them (by line, each line's in the order they joined). */
		r = obuf_grow(&c->shares, rec_size[SEC_SHARES]);
		if (!r)
			return VMRES_ENOMEM;
		F_PUT(r, rec_share, pool, i);
		F_PUT(r, rec_share, gsi, res->u.irq.gsi);
		F_PUT(r, rec_share, owner, a->owner);
		put_name(F_NAME(r, rec_share, label), a->label);
		return 0;
	}
	r = obuf_grow(&c->allocs, rec_size[SEC_ALLOCS]);
	if (!r)
		return VMRES_ENOMEM;
	F_PUT(r, rec_alloc, pool, i);
	F_PUT(r, rec_alloc, size, 1);
	switch (res->kind) {
	case VMRES_RES_ADDR:
		F_PUT(r, rec_alloc, base, res->u.addr.base);
		F_PUT(r, rec_alloc, size, res->u.addr.size);
		F_PUT(r, rec_alloc, align, res->u.addr.align);
		break;
	case VMRES_RES_IRQ:
		F_PUT(r, rec_alloc, base, res->u.irq.gsi);
		break;
	case VMRES_RES_MSI:
		F_PUT(r, rec_alloc, base, res->u.msi.gsi);
		break;
	default:
		F_PUT(r, rec_alloc, base, res->u.id.id);
		break;
	}
	F_PUT(r, rec_alloc, owner, a->owner);
	put_name(F_NAME(r, rec_alloc, label), a->label);
	return 0;
}

/* Restore refuses a resource that names no pool of its kind: refuse to save
 * it, saying why (VMRES_EPOOL no such pool, VMRES_EKIND another kind or space). */
static int names_a_pool(const struct save_ctx *c, const struct vmres_resource *res)
{
	if (!res->pool[0])
		return 0;
	for (uint32_t i = 0; i < c->n_pools; i++)
		if (strncmp(c->pool_names[i].name, res->pool, VMRES_POOL_NAME_MAX) == 0)
			return c->pool_names[i].kind == res->kind &&
					       (res->kind != VMRES_RES_ADDR ||
						c->pool_names[i].space == res->u.addr.space)
				       ? 0
				       : VMRES_EKIND;
	return VMRES_EPOOL;
}

static void save_resource(uint8_t *r, const struct vmres_resource *res, bool mapped)
{
	F_PUT(r, rec_resource, kind, res->kind);
	put_name(F_NAME(r, rec_resource, pool), res->pool);
	switch (res->kind) {
	case VMRES_RES_ADDR:
		F_PUT(r, rec_resource, space, res->u.addr.space);
		F_PUT(r, rec_resource, flags, mapped ? RES_FLAG_MAPPED : 0);
		F_PUT(r, rec_resource, base, res->u.addr.base);
		F_PUT(r, rec_resource, size, res->u.addr.size);
		F_PUT(r, rec_resource, align, res->u.addr.align);
		break;
	case VMRES_RES_IRQ:
		F_PUT(r, rec_resource, flags, res->u.irq.shared ? RES_FLAG_SHARED : 0);
		F_PUT(r, rec_resource, number, res->u.irq.gsi);
		break;
	case VMRES_RES_MSI:
		F_PUT(r, rec_resource, number, res->u.msi.gsi);
		F_PUT(r, rec_resource, msg_addr_lo, res->u.msi.msg.addr_lo);
		F_PUT(r, rec_resource, msg_addr_hi, res->u.msi.msg.addr_hi);
		F_PUT(r, rec_resource, msg_data, res->u.msi.msg.data);
		break;
	default:
		F_PUT(r, rec_resource, number, res->u.id.id);
		break;
	}
}

static int save_device(void *ctx, const struct vmres_devmgr_info *info,
		       const struct vmres_resource *res, const bool *mapped)
{
	struct save_ctx *c = ctx;
	uint8_t *d = obuf_grow(&c->devices, rec_size[SEC_DEVICES]);

	if (!d)
		return VMRES_ENOMEM;
	F_PUT(d, rec_device, instance, info->instance);
	F_PUT(d, rec_device, parent, info->parent);
	F_PUT(d, rec_device, owner, info->owner);
	F_PUT(d, rec_device, n_res, info->n_res);
	put_name(F_NAME(d, rec_device, name), info->name);
	for (size_t i = 0; i < info->n_res; i++) {
		uint8_t *r = obuf_grow(&c->resources, rec_size[SEC_RESOURCES]);
		int rc = names_a_pool(c, &res[i]);

		if (rc)
			return rc;
		if (!r)
			return VMRES_ENOMEM;
		save_resource(r, &res[i], mapped[i]);
		if (res[i].kind == VMRES_RES_IRQ && res[i].u.irq.shared)
			c->shared_res = true;
	}
	return 0;
}

struct attached_probe {
	struct vmres_sysalloc *sa;
};

static int probe_sysalloc(void *ctx, struct vmres_sysalloc *sa)
{
	((struct attached_probe *)ctx)->sa = sa;
	return 0;
}

static void save_ctx_free(struct save_ctx *c)
{
	free(c->pools.p);
	free(c->owners.p);
	free(c->allocs.p);
	free(c->devices.p);
	free(c->resources.p);
	free(c->shares.p);
	free(c->pool_names);
}

struct pci_key {
	uint32_t instance;
	struct vmres_pci_func *f;
	size_t len; /* of its state */
};

static int cmp_pci_key(const void *a, const void *b)
{
	uint32_t x = ((const struct pci_key *)a)->instance,
		 y = ((const struct pci_key *)b)->instance;

	return x < y ? -1 : x > y;
}

/* Check one function's state against its entry in @p m, as restore will. */
static int check_pci_entry(struct vmres_devmgr *m, uint32_t instance, const uint8_t *state,
			   size_t len)
{
	struct vmres_devmgr_info info;
	struct vmres_resource *res;
	bool *mapped;
	int rc = vmres_devmgr_get(m, instance, &info, NULL, NULL, 0);

	if (rc)
		return rc == VMRES_ENOMEM ? rc : VMRES_EINVAL;
	res = calloc(info.n_res + 1, sizeof(*res));
	mapped = calloc(info.n_res + 1, sizeof(*mapped));
	rc = res && mapped ? vmres_devmgr_get(m, instance, &info, res, mapped, info.n_res)
			   : VMRES_ENOMEM;
	if (!rc)
		rc = vmres__pci_state_check(state, len, res, mapped, info.n_res) ? VMRES_ECORRUPT
										 : 0;
	free(res);
	free(mapped);
	return rc;
}

/*
 * The PCI_FUNCS records: each function bound to @p m, by instance id. Every
 * record has room for the largest state (*@p rsize bytes): a table's records
 * are of one size.
 */
static int save_pci(struct vmres_devmgr *m, const struct vmres_snapshot_options *o,
		    struct obuf *recs, uint32_t *rsize)
{
	struct pci_key *keys = calloc(o->n_pci_funcs + 1, sizeof(*keys));
	size_t max = VMRES_PCI_FUNC_STATE_SIZE;
	int rc = keys ? 0 : VMRES_ENOMEM;

	for (size_t i = 0; !rc && i < o->n_pci_funcs; i++) {
		keys[i].f = o->pci_funcs[i];
		if (!keys[i].f || !vmres__pci_func_bound(keys[i].f, m, &keys[i].instance))
			rc = VMRES_EINVAL;
		else
			rc = vmres_pci_func_state_size(keys[i].f, &keys[i].len);
		if (!rc && keys[i].len > max)
			max = keys[i].len;
	}
	*rsize = (uint32_t)(sizeof(struct rec_pci_func) + max);
	if (!rc)
		qsort(keys, o->n_pci_funcs, sizeof(*keys), cmp_pci_key);
	for (size_t i = 0; !rc && i < o->n_pci_funcs; i++) {
		uint8_t *r = obuf_grow(recs, *rsize), *state;

		if (i && keys[i].instance == keys[i - 1].instance)
			rc = VMRES_EINVAL;
		else if (!r)
			rc = VMRES_ENOMEM;
		if (rc)
			break;
		F_PUT(r, rec_pci_func, instance, keys[i].instance);
		F_PUT(r, rec_pci_func, state_len, keys[i].len);
		state = r + F_AT(rec_pci_func, state);
		rc = vmres_pci_func_save_state(keys[i].f, state, keys[i].len);
		if (!rc)
			rc = check_pci_entry(m, keys[i].instance, state, keys[i].len);
	}
	free(keys);
	return rc;
}

static int save_irq(struct vmres_irq_mgr *irq, struct obuf *recs)
{
	struct vmres_irq_src_state *st = NULL;
	size_t n = 0, cap = 0;
	int rc;

	/* Sources come and go only with the VMM's groups: one retry is plenty. */
	for (;;) {
		rc = vmres_irq_mgr_save_state(irq, st, cap, &n);
		if (rc || n <= cap)
			break;
		free(st);
		cap = n;
		st = calloc(cap, sizeof(*st));
		if (!st)
			return VMRES_ENOMEM;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		uint8_t *r = obuf_grow(recs, rec_size[SEC_IRQ]);

		if (!r) {
			rc = VMRES_ENOMEM;
			break;
		}
		F_PUT(r, rec_irq, gsi, st[i].gsi);
		F_PUT(r, rec_irq, kind, st[i].config.kind);
		F_PUT(r, rec_irq, trigger, st[i].config.trigger);
		F_PUT(r, rec_irq, flags,
		    (st[i].enabled ? IRQ_FLAG_ENABLED : 0) | (st[i].masked ? IRQ_FLAG_MASKED : 0) |
			    (st[i].pending ? IRQ_FLAG_PENDING : 0) |
			    (st[i].asserted ? IRQ_FLAG_ASSERTED : 0));
		F_PUT(r, rec_irq, msg_addr_lo, st[i].config.msg.addr_lo);
		F_PUT(r, rec_irq, msg_addr_hi, st[i].config.msg.addr_hi);
		F_PUT(r, rec_irq, msg_data, st[i].config.msg.data);
	}
	free(st);
	return rc;
}

static int save_notify(void *ctx, const struct vmres_kvmres_notify *n)
{
	uint8_t *r = obuf_grow(ctx, rec_size[SEC_KVMRES]);

	if (!r)
		return VMRES_ENOMEM;
	F_PUT(r, rec_kvmres, instance, n->instance);
	F_PUT(r, rec_kvmres, res_index, n->res_index);
	F_PUT(r, rec_kvmres, kind, KV_NOTIFY);
	F_PUT(r, rec_kvmres, flags, n->match ? KV_FLAG_MATCH : 0);
	F_PUT(r, rec_kvmres, len, n->len);
	F_PUT(r, rec_kvmres, offset, n->offset);
	F_PUT(r, rec_kvmres, data, n->match ? n->data : 0);
	return 0;
}

static int save_mem(void *ctx, const struct vmres__kvmres_mem *mem)
{
	uint8_t *r = obuf_grow(ctx, rec_size[SEC_KVMRES]);

	if (!r)
		return VMRES_ENOMEM;
	F_PUT(r, rec_kvmres, instance, mem->instance);
	F_PUT(r, rec_kvmres, res_index, mem->res_index);
	F_PUT(r, rec_kvmres, kind, KV_MEMORY);
	F_PUT(r, rec_kvmres, flags, mem->readonly ? KV_FLAG_READONLY : 0);
	F_PUT(r, rec_kvmres, slot, mem->slot);
	return 0;
}

/* The KVMRES records: @p k's regions and memory by description. */
static int save_kvmres(struct vmres_kvmres *k, struct vmres_devmgr *m, struct obuf *recs)
{
	struct vmres__kvmres_walk w = {save_notify, save_mem, recs};

	return vmres__kvmres_describe(k, m, &w);
}

/* Options of either version as a version-2 struct in @p copy; NULL if none. */
static int norm_opts(const struct vmres_snapshot_options *opts, struct vmres_snapshot_options *copy,
		     const struct vmres_snapshot_options **out)
{
	*out = NULL;
	if (!opts)
		return 0;
	if (opts->version != 1 && opts->version != VMRES_SNAPSHOT_OPTIONS_VERSION)
		return VMRES_EINVAL;
	memset(copy, 0, sizeof(*copy));
	/* A version-1 struct ends after irq: read no further. */
	memcpy(copy, opts,
	       opts->version == 1 ? offsetof(struct vmres_snapshot_options, kvmres)
				  : sizeof(*copy));
	*out = copy;
	return 0;
}

int vmres_snapshot_save(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, void **buf,
			size_t *len)
{
	return vmres_snapshot_save_ex(sa, m, NULL, buf, len);
}

int vmres_snapshot_save_ex(const struct vmres_sysalloc *sa, struct vmres_devmgr *m,
			   const struct vmres_snapshot_options *opts, void **buf, size_t *len)
{
	struct attached_probe probe = {NULL};
	struct save_ctx c;
	struct obuf out = {0};
	struct obuf dm = {0}, pci = {0}, irq = {0}, kv = {0};
	struct vmres_snapshot_options opts_copy;
	enum vmres_devmgr_policy policy = VMRES_DEVMGR_STRICT;
	uint32_t next_id, pci_rsize = rec_size[SEC_PCI_FUNCS];
	uint8_t *h, *r;
	int rc;

	if (!sa || !m || !buf || !len || norm_opts(opts, &opts_copy, &opts))
		return VMRES_EINVAL;
	if (opts && opts->n_pci_funcs && !opts->pci_funcs)
		return VMRES_EINVAL;
	rc = vmres_devmgr_with_sysalloc(m, probe_sysalloc, &probe);
	if (rc && rc != VMRES_ESTATE)
		return rc;
	if (probe.sa && probe.sa != sa)
		return VMRES_EINVAL;

	memset(&c, 0, sizeof(c));
	/* Every callback returns a VMRES_E* code, passed on as it is. */
	rc = vmres_sysalloc_foreach_pool(sa, save_pool, &c);
	if (!rc)
		rc = vmres_sysalloc_foreach_owner(sa, save_owner, &c);
	if (!rc)
		rc = vmres_sysalloc_foreach_alloc(sa, save_alloc, &c);
	if (!rc)
		rc = vmres_devmgr_foreach(m, save_device, &c);
	if (!rc)
		rc = vmres_devmgr_next_id(m, &next_id);
	if (!rc)
		rc = vmres_devmgr_get_policy(m, &policy);
	if (!rc && opts && opts->n_pci_funcs)
		rc = save_pci(m, opts, &pci, &pci_rsize);
	if (!rc && opts && opts->irq)
		rc = save_irq(opts->irq, &irq);
	if (!rc && opts && opts->kvmres)
		rc = save_kvmres(opts->kvmres, m, &kv);
	if (!rc && kv.nomem)
		rc = VMRES_ENOMEM;
	if (rc)
		goto out;

	r = obuf_grow(&dm, rec_size[SEC_DEVMGR]);
	if (r) {
		F_PUT(r, rec_devmgr, next_id, next_id);
		F_PUT(r, rec_devmgr, flags,
		    (probe.sa ? DEVMGR_FLAG_ATTACHED : 0) |
			    (policy == VMRES_DEVMGR_FOLLOW_GUEST ? DEVMGR_FLAG_FOLLOW_GUEST : 0));
	}
	h = obuf_grow(&out, HDR_SIZE);
	if (h) {
		memcpy(h + F_AT(rec_header, magic), VMRES_SNAPSHOT_MAGIC, F_WIDTH(rec_header, magic));
		F_PUT(h, rec_header, major, VMRES_SNAPSHOT_VERSION_MAJOR);
		F_PUT(h, rec_header, minor, VMRES_SNAPSHOT_VERSION_MINOR);
		F_PUT(h, rec_header, header_size, HDR_SIZE);
	}
	put_section(&out, SEC_POOLS, &c.pools);
	put_section(&out, SEC_OWNERS, &c.owners);
	put_section(&out, SEC_ALLOCS, &c.allocs);
	put_section(&out, SEC_DEVMGR, &dm);
	put_section(&out, SEC_DEVICES, &c.devices);
	put_section(&out, SEC_RESOURCES, &c.resources);
	/* Only with a share: a snapshot without one stays readable by 1.2. */
	if (c.shares.len || c.shared_res)
		put_section(&out, SEC_SHARES, &c.shares);
	if (opts && opts->n_pci_funcs)
		put_table(&out, SEC_PCI_FUNCS, &pci, pci_rsize);
	if (opts && opts->irq)
		put_section(&out, SEC_IRQ, &irq);
	if (opts && opts->kvmres)
		put_section(&out, SEC_KVMRES, &kv);
	r = obuf_grow(&out, CRC_SIZE);
	rc = VMRES_ENOMEM;
	if (!r || dm.nomem)
		goto out;
	F_PUT(out.p, rec_header, total_size, out.len);
	vmres__le_store32(r, (uint32_t)crc32_z(0, out.p, out.len - CRC_SIZE));
	*buf = out.p;
	*len = out.len;
	out.p = NULL;
	rc = 0;
out:
	free(out.p);
	free(dm.p);
	free(pci.p);
	free(irq.p);
	free(kv.p);
	save_ctx_free(&c);
	return rc;
}

int vmres_snapshot_save_fd(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, int fd)
{
	size_t len, done = 0;
	void *buf;
	int rc;

	if (fd < 0)
		return VMRES_EINVAL;
	rc = vmres_snapshot_save(sa, m, &buf, &len);
	if (rc)
		return rc;
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = VMRES_ESYS;
			break;
		}
		done += (size_t)n;
	}
	int saved_errno = errno; /* the caller reads it after VMRES_ESYS */

	free(buf);
	errno = saved_errno;
	return rc;
}

/* ---- restore: the model ---- */

struct m_pool {
	char name[VMRES_POOL_NAME_MAX];
	enum vmres_res_kind kind;
	enum vmres_space space;
	uint64_t base, last;
	bool guest;
	size_t off;
};

struct m_owner {
	uint64_t owner;
	char name[VMRES_SYSALLOC_LABEL_MAX];
	size_t off;
};

struct m_alloc {
	uint32_t pool;
	uint64_t base, size, align, owner;
	char label[VMRES_SYSALLOC_LABEL_MAX];
	size_t off;
};

/* A SHARES record: one share of a shared line. */
struct m_share {
	uint32_t pool;
	uint32_t gsi;
	uint64_t owner;
	char label[VMRES_SYSALLOC_LABEL_MAX];
	size_t off;
};

struct m_device {
	struct vmres_devmgr_info info;
	size_t first_res; /* index of its first resource in model.res */
	size_t off;
};

/* A mapped range, for the overlap checks. */
struct m_range {
	int space;
	uint64_t base, last;
	uint32_t instance;
	size_t off;
};

struct m_pci {
	uint32_t instance;
	const uint8_t *state;
	size_t len; /* of the state */
	size_t off;
	struct vmres_pci_func *f; /* the VMM's, at restore */
};

/* A KVMRES record. */
struct m_kv {
	struct vmres_kvmres_notify n; /* fd -1 */
	struct vmres_snapshot_mem mem;
	bool is_mem;
	size_t off;
};

struct name_key {
	const char *name;
	size_t index;
};

struct model {
	const uint8_t *in;
	size_t len;
	size_t sec_off[N_SECTIONS];   /* body offset of each known section */
	uint64_t sec_len[N_SECTIONS]; /* body length; sec_off 0: absent */
	size_t sec_hdr[N_SECTIONS];   /* offset of its section header */

	struct m_pool *pools;
	size_t n_pools;
	struct name_key *pools_by_name; /* sorted by name */
	struct m_owner *owners;
	size_t n_owners;
	struct m_alloc *allocs;
	size_t n_allocs;
	struct m_share *shares; /* SHARES records, in order */
	size_t n_shares;
	uint32_t next_id;
	bool attached;
	size_t devmgr_off;
	struct m_device *devs;
	size_t n_devs;
	struct vmres_resource *res;
	bool *mapped;
	size_t *res_off;
	size_t n_res;
	struct m_range *ranges; /* mapped ranges sorted by (space, base) */
	size_t n_ranges;
	bool follow_guest;
	struct m_pci *pci; /* PCI_FUNCS records, ascending instance */
	size_t n_pci;
	struct vmres_irq_src_state *irq; /* IRQ records, in order */
	size_t n_irq;
	bool has_irq;
	struct m_kv *kv; /* KVMRES records, in order */
	size_t n_kv;
};

static void model_free(struct model *md)
{
	free(md->pools);
	free(md->pools_by_name);
	free(md->owners);
	free(md->allocs);
	free(md->shares);
	free(md->devs);
	free(md->res);
	free(md->mapped);
	free(md->res_off);
	free(md->ranges);
	free(md->pci);
	free(md->irq);
	free(md->kv);
}

static int fail(struct vmres_snapshot_error *e, int code, size_t off)
{
	e->code = code;
	e->offset = off;
	return code;
}

/* A NUL-terminated name in a field of @p size bytes, valid as the API takes it
 * (vmres__name_valid()); @p nonempty: at least one char. */
static bool name_ok(const uint8_t *p, size_t size, bool nonempty)
{
	return vmres__name_valid((const char *)p, size) && (!nonempty || p[0]);
}

/* ---- restore pass 1: the frame ---- */

static int check_frame(struct model *md, struct vmres_snapshot_error *e)
{
	const uint8_t *in = md->in;
	size_t len = md->len, pos, end;
	uint64_t total;
	uint32_t hdr_size;

	size_t magic = F_WIDTH(rec_header, magic);

	if (memcmp(in, VMRES_SNAPSHOT_MAGIC, len < magic ? len : magic) != 0)
		return fail(e, VMRES_EMAGIC, F_AT(rec_header, magic));
	if (len < F_AT(rec_header, major) + F_WIDTH(rec_header, major))
		return fail(e, VMRES_ETRUNC, len);
	if (F_GET(in, rec_header, major) != VMRES_SNAPSHOT_VERSION_MAJOR)
		return fail(e, VMRES_EVERSION, F_AT(rec_header, major));
	if (len < HDR_SIZE)
		return fail(e, VMRES_ETRUNC, len);
	total = F_GET(in, rec_header, total_size);
	if (total > len)
		return fail(e, VMRES_ETRUNC, len);
	if (total < len || total < HDR_SIZE + CRC_SIZE)
		return fail(e, VMRES_ECORRUPT, F_AT(rec_header, total_size));
	end = len - CRC_SIZE;
	if (vmres__le_load32(in + end) != (uint32_t)crc32_z(0, in, end))
		return fail(e, VMRES_ECHECKSUM, end);
	hdr_size = F_GET(in, rec_header, header_size);
	if (hdr_size < HDR_SIZE || hdr_size > end)
		return fail(e, VMRES_ECORRUPT, F_AT(rec_header, header_size));

	for (pos = hdr_size; pos < end;) {
		uint32_t kind, flags;
		uint64_t slen;

		if (end - pos < SEC_HDR_SIZE)
			return fail(e, VMRES_ETRUNC, pos);
		kind = F_GET(in + pos, rec_section, kind);
		flags = F_GET(in + pos, rec_section, flags);
		slen = F_GET(in + pos, rec_section, length);
		if (slen > end - pos - SEC_HDR_SIZE)
			return fail(e, VMRES_ETRUNC, pos);
		if (kind > 0 && kind < N_SECTIONS) {
			if (md->sec_off[kind])
				return fail(e, VMRES_ECORRUPT, pos);
			md->sec_hdr[kind] = pos;
			md->sec_off[kind] = pos + SEC_HDR_SIZE;
			md->sec_len[kind] = slen;
		} else if (flags & SEC_FLAG_REQUIRED) {
			return fail(e, VMRES_EVERSION, pos);
		}
		pos += SEC_HDR_SIZE + (size_t)slen;
	}
	for (int k = 1; k < N_REQUIRED; k++)
		if (!md->sec_off[k])
			return fail(e, VMRES_ECORRUPT, end);
	return 0;
}

/* The table of section @p kind: its record count, record size and first record. */
static int table(const struct model *md, enum section_kind kind, size_t *count, size_t *size,
		 size_t *first, struct vmres_snapshot_error *e)
{
	size_t off = md->sec_off[kind];
	uint64_t len = md->sec_len[kind], room;
	uint32_t n, rsize;

	if (len < TABLE_HDR_SIZE)
		return fail(e, VMRES_ETRUNC, off);
	n = F_GET(md->in + off, rec_table, count);
	rsize = F_GET(md->in + off, rec_table, record_size);
	if (rsize < rec_size[kind])
		return fail(e, VMRES_ECORRUPT, off + F_AT(rec_table, record_size));
	room = (len - TABLE_HDR_SIZE) / rsize;
	if (n > room)
		return fail(e, VMRES_ETRUNC, off + TABLE_HDR_SIZE + (size_t)room * rsize);
	if (TABLE_HDR_SIZE + (uint64_t)n * rsize != len)
		return fail(e, VMRES_ECORRUPT, off + TABLE_HDR_SIZE + (size_t)n * rsize);
	*count = n;
	*size = rsize;
	*first = off + TABLE_HDR_SIZE;
	return 0;
}

/* ---- restore pass 2: records ---- */

/* Sort keys (qsort has no context argument, so each key carries what it needs). */
struct window_key {
	int class;
	uint64_t base, last;
	size_t off;
};

static int cmp_name_key(const void *a, const void *b)
{
	return strcmp(((const struct name_key *)a)->name, ((const struct name_key *)b)->name);
}

static int cmp_window_key(const void *a, const void *b)
{
	const struct window_key *x = a, *y = b;

	if (x->class != y->class)
		return x->class < y->class ? -1 : 1;
	return x->base < y->base ? -1 : x->base > y->base;
}

/* The class of numbers or addresses a pool's window lives in; pools of one class
 * must not overlap (-1: ID pools, which may). */
static int pool_class(const struct m_pool *p)
{
	if (p->guest)
		return -1; /* its window is the whole space; its ranges are checked with ALLOCS */
	if (p->kind == VMRES_RES_ADDR)
		return (int)p->space;
	return p->kind == VMRES_RES_ID ? -1 : 0;
}

static size_t later(size_t a, size_t b)
{
	return a > b ? a : b;
}

static uint64_t space_last(enum vmres_space space)
{
	return space == VMRES_SPACE_PIO ? 0xFFFF : UINT64_MAX;
}

/* The first guest pool of @p space among those parsed so far (at most one may be). */
static const struct m_pool *guest_pool_of(const struct model *md, enum vmres_space space)
{
	for (size_t i = 0; i <= md->n_pools; i++)
		if (md->pools[i].guest && md->pools[i].space == space)
			return &md->pools[i];
	return NULL;
}

static int parse_pools(struct model *md, struct vmres_snapshot_error *e)
{
	struct window_key *windows;
	size_t n, size, o;
	int rc = table(md, SEC_POOLS, &n, &size, &o, e);

	if (rc)
		return rc;
	md->pools = calloc(n + 1, sizeof(*md->pools));
	md->pools_by_name = calloc(n + 1, sizeof(*md->pools_by_name));
	windows = calloc(n + 1, sizeof(*windows));
	if (!md->pools || !md->pools_by_name || !windows) {
		free(windows);
		return fail(e, VMRES_ENOMEM, o);
	}
	for (size_t i = 0; i < n && !rc; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct m_pool *p = &md->pools[i];
		uint64_t kind = F_GET(r, rec_pool, kind), space = F_GET(r, rec_pool, space),
			 flags = F_GET(r, rec_pool, flags);

		if (!name_ok(F_NAME(r, rec_pool, name), true))
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, name));
		else if (kind < VMRES_RES_ADDR || kind > VMRES_RES_ID)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, kind));
		else if (kind == VMRES_RES_ADDR
				 ? space != VMRES_SPACE_PIO && space != VMRES_SPACE_MMIO
				 : space != 0)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, space));
		if (rc)
			break;
		memcpy(p->name, F_NAME(r, rec_pool, name));
		p->kind = kind;
		p->space = space;
		p->base = F_GET(r, rec_pool, base);
		p->last = F_GET(r, rec_pool, last);
		p->guest = flags & POOL_FLAG_GUEST;
		p->off = o;
		if ((flags & ~POOL_FLAG_GUEST) || (p->guest && p->kind != VMRES_RES_ADDR))
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, flags));
		else if (p->guest && (p->base != 0 || p->last != space_last(p->space)))
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, base));
		else if (p->guest && guest_pool_of(md, p->space) != p)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, flags));
		else if (p->base > p->last)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, base));
		else if (p->kind == VMRES_RES_ADDR && p->space == VMRES_SPACE_PIO &&
			 p->last > 0xFFFF)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, last));
		else if (p->kind != VMRES_RES_ADDR && p->last > UINT32_MAX)
			rc = fail(e, VMRES_ECORRUPT, o + F_AT(rec_pool, last));
		md->pools_by_name[i] = (struct name_key){p->name, i};
		windows[i] = (struct window_key){pool_class(p), p->base, p->last, o};
		md->n_pools++;
	}
	if (!rc) {
		qsort(md->pools_by_name, n, sizeof(*md->pools_by_name), cmp_name_key);
		for (size_t i = 1; i < n && !rc; i++) {
			const struct m_pool *a = &md->pools[md->pools_by_name[i - 1].index];
			const struct m_pool *b = &md->pools[md->pools_by_name[i].index];

			if (strcmp(a->name, b->name) == 0)
				rc = fail(e, VMRES_ECORRUPT, later(a->off, b->off));
		}
	}
	if (!rc) {
		qsort(windows, n, sizeof(*windows), cmp_window_key);
		for (size_t i = 1; i < n && !rc; i++) {
			const struct window_key *a = &windows[i - 1], *b = &windows[i];

			if (a->class >= 0 && a->class == b->class && a->last >= b->base)
				rc = fail(e, VMRES_ECORRUPT,
					  later(a->off, b->off) + F_AT(rec_pool, base));
		}
	}
	free(windows);
	return rc;
}

static bool name_before(const void *keys, size_t i, const void *name)
{
	return strcmp(((const struct name_key *)keys)[i].name, name) < 0;
}

static const struct m_pool *pool_by_name(const struct model *md, const char *name)
{
	size_t i = vmres__lower_bound(md->pools_by_name, 0, md->n_pools, name, name_before);

	if (i < md->n_pools && strcmp(md->pools_by_name[i].name, name) == 0)
		return &md->pools[md->pools_by_name[i].index];
	return NULL;
}

static int parse_owners(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc = table(md, SEC_OWNERS, &n, &size, &o, e);

	if (rc)
		return rc;
	md->owners = calloc(n + 1, sizeof(*md->owners));
	if (!md->owners)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct m_owner *w = &md->owners[i];

		w->owner = F_GET(r, rec_owner, owner);
		w->off = o;
		if (i > 0 && w->owner <= md->owners[i - 1].owner)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_owner, owner));
		if (!name_ok(F_NAME(r, rec_owner, name), true))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_owner, name));
		memcpy(w->name, F_NAME(r, rec_owner, name));
		md->n_owners++;
	}
	return 0;
}

static bool align_ok(uint64_t base, uint64_t align)
{
	return (align & (align - 1)) == 0 && (align <= 1 || base % align == 0);
}

/* Does [base, last] meet the window of an ordinary address pool of @p space? */
static bool meets_a_window(const struct model *md, enum vmres_space space, uint64_t base,
			   uint64_t last)
{
	for (size_t i = 0; i < md->n_pools; i++) {
		const struct m_pool *p = &md->pools[i];

		if (p->kind == VMRES_RES_ADDR && !p->guest && p->space == space &&
		    vmres__ranges_overlap(base, last, p->base, p->last))
			return true;
	}
	return false;
}

static int check_alloc(const struct model *md, const struct m_alloc *a, const struct m_alloc *prev,
		       struct vmres_snapshot_error *e)
{
	const struct m_pool *p;
	size_t o = a->off;

	if (a->pool >= md->n_pools)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, pool));
	if (prev && a->pool < prev->pool)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, pool));
	p = &md->pools[a->pool];
	if (p->kind == VMRES_RES_ADDR) {
		if (a->size == 0 || vmres__range_wraps(a->base, a->size))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, size));
		if (a->base < p->base)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, base));
		if (vmres__range_last(a->base, a->size) > p->last)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, size));
		if (!align_ok(a->base, a->align))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, align));
		if (p->guest && meets_a_window(md, p->space, a->base, vmres__range_last(a->base, a->size)))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, base));
	} else {
		if (a->base < p->base || a->base > p->last)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, base));
		if (a->size != 1)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, size));
		if (a->align != 0)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, align));
	}
	/* In (pool, base) order, so an overlap is always with the previous record. */
	if (prev && prev->pool == a->pool &&
	    vmres__range_last(prev->base, prev->size) >= a->base)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, base));
	if (!name_ok(F_NAME(md->in + o, rec_alloc, label), false))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_alloc, label));
	return 0;
}

static int parse_allocs(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc = table(md, SEC_ALLOCS, &n, &size, &o, e);

	if (rc)
		return rc;
	md->allocs = calloc(n + 1, sizeof(*md->allocs));
	if (!md->allocs)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct m_alloc *a = &md->allocs[i];

		a->pool = F_GET(r, rec_alloc, pool);
		a->base = F_GET(r, rec_alloc, base);
		a->size = F_GET(r, rec_alloc, size);
		a->align = F_GET(r, rec_alloc, align);
		a->owner = F_GET(r, rec_alloc, owner);
		a->off = o;
		rc = check_alloc(md, a, i ? &md->allocs[i - 1] : NULL, e);
		if (rc)
			return rc;
		memcpy(a->label, F_NAME(r, rec_alloc, label));
		md->n_allocs++;
	}
	return 0;
}

/* Is number @p n of pool @p pool in ALLOCS (exclusively held)? They are in
 * (pool, base) order, one number each in a number pool. */
static bool alloc_before(const void *allocs, size_t i, const void *key)
{
	const struct m_alloc *a = &((const struct m_alloc *)allocs)[i];
	const struct m_alloc *k = key;

	return a->pool < k->pool || (a->pool == k->pool && a->base < k->base);
}

static bool alloc_holds(const struct model *md, uint32_t pool, uint64_t n)
{
	const struct m_alloc key = {.pool = pool, .base = n};
	size_t i = vmres__lower_bound(md->allocs, 0, md->n_allocs, &key, alloc_before);

	return i < md->n_allocs && md->allocs[i].pool == pool && md->allocs[i].base == n;
}

/*
 * SHARES: each share of a shared line, lines in (pool, number) order, a line's
 * shares in the order they joined. An owner may hold several shares of one
 * line (two functions of one device), so two equal records are two shares;
 * what cannot be is a share in a pool other than a legacy IRQ pool, outside
 * its window, at a number ALLOCS holds exclusively, or a line whose shares are
 * not together (a number before the previous record's).
 */
static int parse_shares(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc;

	if (!md->sec_off[SEC_SHARES])
		return 0; /* no share (and 1.0 to 1.2 have none) */
	rc = table(md, SEC_SHARES, &n, &size, &o, e);
	if (rc)
		return rc;
	md->shares = calloc(n + 1, sizeof(*md->shares));
	if (!md->shares)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		const struct m_share *prev = i ? &md->shares[i - 1] : NULL;
		struct m_share *sh = &md->shares[i];
		const struct m_pool *p;

		sh->pool = F_GET(r, rec_share, pool);
		sh->gsi = F_GET(r, rec_share, gsi);
		sh->owner = F_GET(r, rec_share, owner);
		sh->off = o;
		if (sh->pool >= md->n_pools || md->pools[sh->pool].kind != VMRES_RES_IRQ ||
		    (prev && sh->pool < prev->pool))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_share, pool));
		p = &md->pools[sh->pool];
		if (sh->gsi < p->base || sh->gsi > p->last ||
		    (prev && prev->pool == sh->pool && sh->gsi < prev->gsi) ||
		    alloc_holds(md, sh->pool, sh->gsi))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_share, gsi));
		if (!name_ok(F_NAME(r, rec_share, label), false))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_share, label));
		memcpy(sh->label, F_NAME(r, rec_share, label));
		md->n_shares++;
	}
	return 0;
}

static int parse_devmgr(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc = table(md, SEC_DEVMGR, &n, &size, &o, e);

	if (rc)
		return rc;
	if (n != 1)
		return fail(e, VMRES_ECORRUPT, md->sec_off[SEC_DEVMGR]);
	md->next_id = F_GET(md->in + o, rec_devmgr, next_id);
	md->attached = F_GET(md->in + o, rec_devmgr, flags) & DEVMGR_FLAG_ATTACHED;
	md->follow_guest = F_GET(md->in + o, rec_devmgr, flags) & DEVMGR_FLAG_FOLLOW_GUEST;
	md->devmgr_off = o;
	return 0;
}

static bool device_before(const void *devs, size_t i, const void *instance)
{
	return ((const struct m_device *)devs)[i].info.instance < *(const uint32_t *)instance;
}

static const struct m_device *device_by_id(const struct model *md, uint32_t instance)
{
	size_t i = vmres__lower_bound(md->devs, 0, md->n_devs, &instance, device_before);

	return i < md->n_devs && md->devs[i].info.instance == instance ? &md->devs[i] : NULL;
}

static int parse_devices(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	uint64_t total_res = 0;
	int rc = table(md, SEC_DEVICES, &n, &size, &o, e);

	if (rc)
		return rc;
	md->devs = calloc(n + 1, sizeof(*md->devs));
	if (!md->devs)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct m_device *d = &md->devs[i];
		uint32_t n_res = F_GET(r, rec_device, n_res);

		d->info.instance = F_GET(r, rec_device, instance);
		d->info.parent = F_GET(r, rec_device, parent);
		d->info.owner = F_GET(r, rec_device, owner);
		d->off = o;
		/* Ids only grow and a parent exists when its child registers, so the
		 * table is in id order and every parent is an earlier record: this also
		 * rules out cycles. */
		if (d->info.instance == 0 ||
		    (i && d->info.instance <= md->devs[i - 1].info.instance))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_device, instance));
		if (md->next_id != 0 && d->info.instance >= md->next_id)
			return fail(e, VMRES_ECORRUPT, md->devmgr_off);
		if (d->info.parent != VMRES_DEVMGR_NO_PARENT && !device_by_id(md, d->info.parent))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_device, parent));
		if (n_res > VMRES_DEVMGR_MAX_RES)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_device, n_res));
		if (!name_ok(F_NAME(r, rec_device, name), false))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_device, name));
		memcpy(d->info.name, F_NAME(r, rec_device, name));
		d->info.n_res = n_res;
		d->first_res = (size_t)total_res;
		total_res += n_res;
		md->n_devs++;
	}
	md->n_res = (size_t)total_res;
	return 0;
}

static int parse_resource(const struct model *md, size_t o, struct vmres_resource *res,
			  bool *mapped, struct vmres_snapshot_error *e)
{
	const uint8_t *r = md->in + o;
	const struct m_pool *p = NULL;
	uint64_t kind = F_GET(r, rec_resource, kind), space = F_GET(r, rec_resource, space),
		 flags = F_GET(r, rec_resource, flags);

	memset(res, 0, sizeof(*res));
	*mapped = false;
	if (kind < VMRES_RES_ADDR || kind > VMRES_RES_ID)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, kind));
	res->kind = kind;
	if (!name_ok(F_NAME(r, rec_resource, pool), false))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, pool));
	memcpy(res->pool, F_NAME(r, rec_resource, pool));
	if (res->pool[0]) {
		p = pool_by_name(md, res->pool);
		if (!p || p->kind != res->kind || (p->kind == VMRES_RES_ADDR && p->space != space))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, pool));
	}
	if ((flags & RES_FLAG_SHARED) && res->kind != VMRES_RES_IRQ)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, flags));
	if (res->kind != VMRES_RES_ADDR) {
		if (flags & RES_FLAG_MAPPED)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, flags));
		if (res->kind == VMRES_RES_IRQ) {
			res->u.irq.gsi = F_GET(r, rec_resource, number);
			res->u.irq.shared = flags & RES_FLAG_SHARED;
		} else if (res->kind == VMRES_RES_ID) {
			res->u.id.id = F_GET(r, rec_resource, number);
		} else {
			res->u.msi.gsi = F_GET(r, rec_resource, number);
			res->u.msi.msg.addr_lo = F_GET(r, rec_resource, msg_addr_lo);
			res->u.msi.msg.addr_hi = F_GET(r, rec_resource, msg_addr_hi);
			res->u.msi.msg.data = F_GET(r, rec_resource, msg_data);
		}
		return 0;
	}
	if (space != VMRES_SPACE_PIO && space != VMRES_SPACE_MMIO)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, space));
	res->u.addr.space = space;
	res->u.addr.base = F_GET(r, rec_resource, base);
	res->u.addr.size = F_GET(r, rec_resource, size);
	res->u.addr.align = F_GET(r, rec_resource, align);
	*mapped = flags & RES_FLAG_MAPPED;
	if (res->u.addr.size == 0 || vmres__range_wraps(res->u.addr.base, res->u.addr.size))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, size));
	if (res->u.addr.space == VMRES_SPACE_PIO &&
	    vmres__range_last(res->u.addr.base, res->u.addr.size) > 0xFFFF)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_resource, size));
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct m_range *x = a, *y = b;

	if (x->space != y->space)
		return x->space < y->space ? -1 : 1;
	return x->base < y->base ? -1 : x->base > y->base;
}

static int parse_resources(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc = table(md, SEC_RESOURCES, &n, &size, &o, e);

	if (rc)
		return rc;
	if (n != md->n_res)
		return fail(e, VMRES_ECORRUPT, md->sec_off[SEC_RESOURCES]);
	md->res = calloc(n + 1, sizeof(*md->res));
	md->mapped = calloc(n + 1, sizeof(*md->mapped));
	md->res_off = calloc(n + 1, sizeof(*md->res_off));
	md->ranges = calloc(n + 1, sizeof(*md->ranges));
	if (!md->res || !md->mapped || !md->res_off || !md->ranges)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t d = 0, i = 0; d < md->n_devs; d++) {
		for (size_t k = 0; k < md->devs[d].info.n_res; k++, i++, o += size) {
			const struct vmres_resource *r = &md->res[i];

			rc = parse_resource(md, o, &md->res[i], &md->mapped[i], e);
			if (rc)
				return rc;
			md->res_off[i] = o;
			if (md->mapped[i])
				md->ranges[md->n_ranges++] =
					(struct m_range){r->u.addr.space, r->u.addr.base,
							 vmres__range_last(r->u.addr.base, r->u.addr.size),
							 md->devs[d].info.instance, o};
		}
	}
	/* The buses: no two mapped ranges of a space share an address. */
	qsort(md->ranges, md->n_ranges, sizeof(*md->ranges), cmp_range);
	for (size_t i = 1; i < md->n_ranges; i++) {
		const struct m_range *a = &md->ranges[i - 1], *b = &md->ranges[i];

		if (a->space == b->space && a->last >= b->base)
			return fail(e, VMRES_ECORRUPT,
				    later(a->off, b->off) + F_AT(rec_resource, base));
	}
	return 0;
}

static int parse_pci(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc;

	if (!md->sec_off[SEC_PCI_FUNCS])
		return 0;
	rc = table(md, SEC_PCI_FUNCS, &n, &size, &o, e);
	if (rc)
		return rc;
	md->pci = calloc(n + 1, sizeof(*md->pci));
	if (!md->pci)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct m_pci *p = &md->pci[i];
		const struct m_device *d;

		p->instance = F_GET(r, rec_pci_func, instance);
		p->state = r + F_AT(rec_pci_func, state);
		/* 1.1 wrote 0 there: its states are all of version 1. */
		p->len = F_GET(r, rec_pci_func, state_len);
		if (!p->len)
			p->len = VMRES_PCI_FUNC_STATE_SIZE;
		p->off = o;
		d = device_by_id(md, p->instance);
		if (!d || (i && p->instance <= md->pci[i - 1].instance))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_pci_func, instance));
		if (p->len > size - F_AT(rec_pci_func, state))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_pci_func, state_len));
		/* The state must agree with its device's entry: where each range is,
		 * whether it is mapped, each routed message. */
		rc = vmres__pci_state_check(p->state, p->len, md->res + d->first_res,
					    md->mapped + d->first_res, d->info.n_res);
		if (rc)
			return fail(e, rc, o + F_AT(rec_pci_func, state));
		md->n_pci++;
	}
	return 0;
}

static int parse_irq(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc;

	if (!md->sec_off[SEC_IRQ])
		return 0;
	rc = table(md, SEC_IRQ, &n, &size, &o, e);
	if (rc)
		return rc;
	md->has_irq = true;
	md->irq = calloc(n + 1, sizeof(*md->irq));
	if (!md->irq)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		const uint8_t *r = md->in + o;
		struct vmres_irq_src_state *s = &md->irq[i];
		const struct vmres_irq_src_state *prev = i ? &md->irq[i - 1] : NULL;

		uint64_t kind = F_GET(r, rec_irq, kind), trigger = F_GET(r, rec_irq, trigger),
			 flags = F_GET(r, rec_irq, flags);

		s->gsi = F_GET(r, rec_irq, gsi);
		s->config.kind = kind;
		s->config.trigger = trigger;
		s->enabled = flags & IRQ_FLAG_ENABLED;
		s->masked = flags & IRQ_FLAG_MASKED;
		s->pending = flags & IRQ_FLAG_PENDING;
		s->asserted = flags & IRQ_FLAG_ASSERTED;
		s->config.msg = (struct vmres_msi_msg){F_GET(r, rec_irq, msg_addr_lo),
						       F_GET(r, rec_irq, msg_addr_hi),
						       F_GET(r, rec_irq, msg_data)};
		/* By GSI; an MSI's GSI is its own. */
		if (prev && (s->gsi < prev->gsi ||
			     (s->gsi == prev->gsi && (s->config.kind == VMRES_IRQ_MSI ||
						      prev->config.kind == VMRES_IRQ_MSI))))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_irq, gsi));
		if (kind != VMRES_IRQ_LEGACY && kind != VMRES_IRQ_MSI)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_irq, kind));
		if (trigger > VMRES_IRQ_LEVEL || (kind == VMRES_IRQ_MSI && trigger != VMRES_IRQ_EDGE))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_irq, trigger));
		if ((flags & ~0xfu) || (s->asserted && trigger != VMRES_IRQ_LEVEL))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_irq, flags));
		if (kind == VMRES_IRQ_LEGACY &&
		    (s->config.msg.addr_lo || s->config.msg.addr_hi || s->config.msg.data))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_irq, msg_addr_lo));
		md->n_irq++;
	}
	return 0;
}

/* KVM's collision rule for two regions of one resource (kvmres.c's). */
static bool kv_collide(const struct vmres_kvmres_notify *a, const struct vmres_kvmres_notify *b)
{
	if (a->offset != b->offset)
		return false;
	if (!a->len || !b->len)
		return true;
	return a->len == b->len && (!a->match || !b->match || a->data == b->data);
}

/* One KVMRES record, against its resource and the records before it. */
static int parse_kv_record(struct model *md, size_t i, size_t o, struct vmres_snapshot_error *e)
{
	const uint8_t *r = md->in + o;
	struct m_kv *k = &md->kv[i];
	uint32_t instance = F_GET(r, rec_kvmres, instance), index = F_GET(r, rec_kvmres, res_index);
	const struct m_device *d = device_by_id(md, instance);
	const struct vmres_resource *res;
	uint64_t kind = F_GET(r, rec_kvmres, kind), flags = F_GET(r, rec_kvmres, flags);
	uint32_t len = F_GET(r, rec_kvmres, len);

	k->off = o;
	if (!d)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, instance));
	if (index >= d->info.n_res || md->res[d->first_res + index].kind != VMRES_RES_ADDR)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, res_index));
	res = &md->res[d->first_res + index];
	if (kind != KV_NOTIFY && kind != KV_MEMORY)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, kind));
	if (F_GET(r, rec_kvmres, reserved))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, reserved));
	k->is_mem = kind == KV_MEMORY;
	if (k->is_mem) {
		if (res->u.addr.space != VMRES_SPACE_MMIO)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, kind));
		if (flags & ~KV_FLAG_READONLY)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, flags));
		if (len)
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, len));
		if (F_GET(r, rec_kvmres, offset))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, offset));
		if (F_GET(r, rec_kvmres, data))
			return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, data));
		k->mem = (struct vmres_snapshot_mem){instance, index, res->u.addr.size,
						     flags & KV_FLAG_READONLY,
						     F_GET(r, rec_kvmres, slot)};
		for (size_t j = 0; j < i; j++)
			if (md->kv[j].is_mem && ((md->kv[j].mem.instance == k->mem.instance &&
						  md->kv[j].mem.res_index == k->mem.res_index) ||
						 md->kv[j].mem.slot == k->mem.slot))
				return fail(e, VMRES_ECORRUPT, o);
		return 0;
	}
	k->n = (struct vmres_kvmres_notify){instance,
					    index,
					    F_GET(r, rec_kvmres, offset),
					    len,
					    flags & KV_FLAG_MATCH,
					    F_GET(r, rec_kvmres, data),
					    -1};
	if (flags & ~KV_FLAG_MATCH)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, flags));
	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, len));
	if (F_GET(r, rec_kvmres, slot))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, slot));
	if (k->n.match && !len)
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, flags));
	if (k->n.offset >= res->u.addr.size || (len > 1 && res->u.addr.size - k->n.offset < len))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, offset));
	if ((!k->n.match && k->n.data) || (len < 8 && k->n.data >> (8 * len)))
		return fail(e, VMRES_ECORRUPT, o + F_AT(rec_kvmres, data));
	for (size_t j = 0; j < i; j++)
		if (!md->kv[j].is_mem && md->kv[j].n.instance == k->n.instance &&
		    md->kv[j].n.res_index == k->n.res_index && kv_collide(&md->kv[j].n, &k->n))
			return fail(e, VMRES_ECORRUPT, o);
	return 0;
}

static int parse_kvmres(struct model *md, struct vmres_snapshot_error *e)
{
	size_t n, size, o;
	int rc;

	if (!md->sec_off[SEC_KVMRES])
		return 0;
	rc = table(md, SEC_KVMRES, &n, &size, &o, e);
	if (rc)
		return rc;
	md->kv = calloc(n + 1, sizeof(*md->kv));
	if (!md->kv)
		return fail(e, VMRES_ENOMEM, o);
	for (size_t i = 0; i < n; i++, o += size) {
		rc = parse_kv_record(md, i, o, e);
		if (rc)
			return rc;
		md->n_kv++;
	}
	return 0;
}

/* ---- restore: build ---- */

static int build_sysalloc(const struct model *md, struct vmres_sysalloc *sa,
			  struct vmres_snapshot_error *e)
{
	int rc;

	for (size_t i = 0; i < md->n_pools; i++) {
		const struct m_pool *p = &md->pools[i];

		if (p->kind == VMRES_RES_ADDR)
			rc = p->guest ? vmres_sysalloc_add_guest_pool(sa, p->name, p->space)
				      : vmres_sysalloc_add_addr_pool(sa, p->name, p->space, p->base,
								     p->last);
		else
			rc = vmres_sysalloc_add_id_pool(sa, p->name, p->kind, (uint32_t)p->base,
							(uint32_t)p->last);
		if (rc)
			return fail(e, rc, p->off);
	}
	for (size_t i = 0; i < md->n_owners; i++) {
		rc = vmres_sysalloc_set_owner_name(sa, md->owners[i].owner, md->owners[i].name);
		if (rc)
			return fail(e, rc, md->owners[i].off);
	}
	for (size_t i = 0; i < md->n_allocs; i++) {
		const struct m_alloc *a = &md->allocs[i];
		const struct m_pool *p = &md->pools[a->pool];

		rc = vmres_sysalloc_reserve(sa, p->name, a->base, a->size, a->align, a->owner,
					    a->label, NULL);
		if (rc)
			return fail(e, rc, a->off);
	}
	/* Each share joins its line (the first one makes it), in the saved order. */
	for (size_t i = 0; i < md->n_shares; i++) {
		const struct m_share *sh = &md->shares[i];
		struct vmres_request q = {.kind = VMRES_RES_IRQ};
		struct vmres_resource res;
		size_t n;

		memcpy(q.pool, md->pools[sh->pool].name, VMRES_POOL_NAME_MAX);
		q.u.irq.gsi = sh->gsi;
		q.u.irq.shared = true;
		rc = vmres_sysalloc_alloc(sa, &q, 1, sh->owner, &res, 1, &n, NULL);
		/* The share just made is the one set_label acts on: cannot fail. */
		if (!rc && sh->label[0])
			rc = vmres_sysalloc_set_label(sa, &res, sh->owner, sh->label);
		if (rc)
			return fail(e, rc, sh->off);
	}
	return 0;
}

/*
 * Bind every device (parents first), then give the whole table to the new manager
 * in one call. On failure the manager took none of the devices: release every
 * one that was bound (a failing bind leaves nothing behind itself).
 */
/* The VMM's function for each PCI_FUNCS record, checked: it can take its state. */
static int find_pci_funcs(struct model *md, const struct vmres_snapshot_options *o,
			  struct vmres_snapshot_error *e)
{
	for (size_t i = 0; i < md->n_pci; i++) {
		struct m_pci *p = &md->pci[i];
		int rc;

		p->f = o->pci_func(o->pci_ctx, p->instance);
		if (!p->f)
			return fail(e, VMRES_ENOENT, p->off);
		for (size_t k = 0; k < i; k++)
			if (md->pci[k].f == p->f)
				return fail(e, VMRES_EINVAL, p->off);
		rc = vmres__pci_func_check_state(p->f, p->state, p->len);
		if (rc)
			return fail(e, rc, p->off + F_AT(rec_pci_func, state));
	}
	return 0;
}

static int build_devmgr(struct model *md, struct vmres_devmgr *m, vmres_snapshot_bind_fn bind,
			void *bind_ctx, const struct vmres_snapshot_options *o,
			struct vmres_snapshot_error *e)
{
	struct vmres_devmgr_entry *ents = calloc(md->n_devs + 1, sizeof(*ents));
	struct vmres_device *devs = calloc(md->n_devs + 1, sizeof(*devs));
	size_t bound = 0;
	int rc = 0;

	if (!ents || !devs)
		rc = fail(e, VMRES_ENOMEM, md->devmgr_off);
	for (; !rc && bound < md->n_devs; bound++) {
		const struct m_device *d = &md->devs[bound];
		struct vmres_device *dev = &devs[bound];

		*dev = (struct vmres_device)VMRES_DEVICE_INIT;
		dev->name = d->info.name;
		dev->owner = d->info.owner;
		rc = bind ? bind(bind_ctx, &d->info, md->res + d->first_res,
				 md->mapped + d->first_res, dev)
			  : 0;
		if (rc) {
			fail(e, rc < 0 && rc >= VMRES_ERRNO_MIN ? rc : VMRES_EINVAL, d->off);
			rc = e->code;
			break;
		}
		dev->version = VMRES_DEVICE_VERSION;
		dev->name = d->info.name;
		dev->owner = d->info.owner;
		ents[bound] = (struct vmres_devmgr_entry){
			d->info.instance,	   d->info.parent, dev, md->res + d->first_res,
			md->mapped + d->first_res, d->info.n_res};
	}
	if (!rc && o && o->pci_func)
		rc = find_pci_funcs(md, o, e);
	/* Parse checked everything vmres_devmgr_restore() checks: only ENOMEM here. */
	if (!rc && (rc = vmres_devmgr_restore(m, ents, md->n_devs, md->next_id)) != 0)
		fail(e, rc, md->devmgr_off);
	for (size_t i = 0; rc && i < bound; i++)
		if (devs[i].release)
			devs[i].release(devs[i].opaque);
	free(ents);
	free(devs);
	return rc;
}

/* A VMM callback's code: a VMRES_E* code, else VMRES_EINVAL. */
static int vmm_rc(int rc)
{
	return rc < 0 && rc >= VMRES_ERRNO_MIN ? rc : VMRES_EINVAL;
}

/*
 * The VMM's kvmres object on the restored manager, every saved region and
 * memory re-attached with the descriptor and host memory the VMM hands back,
 * at the placement the manager now has. On failure the object is freed
 * (which removes what it installed) and *@p out is NULL.
 */
static int attach_kvmres(const struct model *md, struct vmres_devmgr *m,
			 const struct vmres_snapshot_options *o, struct vmres_kvmres **out,
			 struct vmres_snapshot_error *e)
{
	struct vmres_kvmres *k = NULL;
	int rc;

	*out = NULL;
	if (!o->kvmres_new || !md->sec_off[SEC_KVMRES])
		return 0;
	rc = o->kvmres_new(o->kvmres_ctx, m, &k);
	if (rc || !k)
		return fail(e, rc ? vmm_rc(rc) : VMRES_EINVAL, md->sec_hdr[SEC_KVMRES]);
	for (size_t i = 0; !rc && i < md->n_kv; i++) {
		const struct m_kv *kv = &md->kv[i];
		struct vmres_kvmres_notify n = kv->n;
		void *host = NULL;

		if (kv->is_mem) {
			rc = o->mem_host ? o->mem_host(o->kvmres_ctx, &kv->mem, &host)
					 : VMRES_EINVAL;
			rc = rc ? vmm_rc(rc) : !host ? VMRES_EINVAL : 0;
			if (!rc)
				rc = vmres__kvmres_mem_attach_slot(k, kv->mem.instance,
								   kv->mem.res_index, host,
								   kv->mem.readonly, kv->mem.slot);
		} else {
			n.fd = o->notify_fd ? o->notify_fd(o->kvmres_ctx, &kv->n) : VMRES_EINVAL;
			rc = n.fd < 0 ? vmm_rc(n.fd) : vmres_kvmres_notify_add(k, &n);
		}
		if (rc)
			fail(e, rc, kv->off);
	}
	if (rc) {
		vmres_kvmres_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

/*
 * The guest-programmed state, once the manager holds its table: the interrupt
 * manager (which may fail, changing nothing), then the functions (which cannot
 * fail: each was checked against its record and its entry).
 */
static int load_guest_state(const struct model *md, struct vmres_devmgr *m,
			    const struct vmres_snapshot_options *o, struct vmres_snapshot_error *e)
{
	int rc;

	if (o->irq && md->has_irq) {
		rc = vmres_irq_mgr_load_state(o->irq, md->irq, md->n_irq);
		if (rc)
			return fail(e, rc, md->sec_hdr[SEC_IRQ]);
	}
	for (size_t i = 0; o->pci_func && i < md->n_pci; i++) {
		rc = vmres__pci_func_load_bound(md->pci[i].f, md->pci[i].state, md->pci[i].len, m,
						md->pci[i].instance);
		if (rc)
			return fail(e, rc, md->pci[i].off + F_AT(rec_pci_func, state));
	}
	return 0;
}

int vmres_snapshot_restore(const void *buf, size_t len, vmres_snapshot_bind_fn bind, void *bind_ctx,
			   struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			   struct vmres_snapshot_error *err)
{
	return vmres_snapshot_restore_ex(buf, len, bind, bind_ctx, NULL, sa_out, m_out, err);
}

int vmres_snapshot_restore_ex(const void *buf, size_t len, vmres_snapshot_bind_fn bind,
			      void *bind_ctx, const struct vmres_snapshot_options *opts,
			      struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			      struct vmres_snapshot_error *err)
{
	struct vmres_snapshot_error e = {0, 0};
	struct vmres_snapshot_options opts_copy;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;
	struct vmres_kvmres *k = NULL;
	struct model md;
	int rc;

	if (!sa_out || !m_out || (!buf && len) || norm_opts(opts, &opts_copy, &opts))
		return VMRES_EINVAL;
	if (opts && opts->kvmres_new && !opts->kvmres_out)
		return VMRES_EINVAL;
	memset(&md, 0, sizeof(md));
	md.in = buf ? buf : (const uint8_t *)"";
	md.len = len;
	rc = check_frame(&md, &e);
	if (!rc)
		rc = parse_pools(&md, &e);
	if (!rc)
		rc = parse_owners(&md, &e);
	if (!rc)
		rc = parse_allocs(&md, &e);
	if (!rc)
		rc = parse_shares(&md, &e);
	if (!rc)
		rc = parse_devmgr(&md, &e);
	if (!rc)
		rc = parse_devices(&md, &e);
	if (!rc)
		rc = parse_resources(&md, &e);
	if (!rc)
		rc = parse_pci(&md, &e);
	if (!rc)
		rc = parse_irq(&md, &e);
	if (!rc)
		rc = parse_kvmres(&md, &e);
	if (!rc) {
		rc = vmres_sysalloc_new(&sa);
		if (!rc)
			rc = build_sysalloc(&md, sa, &e);
		else
			fail(&e, rc, 0);
	}
	if (!rc) {
		rc = vmres_devmgr_new(md.attached ? sa : NULL, &m);
		if (!rc && md.follow_guest)
			rc = vmres_devmgr_set_policy(m, VMRES_DEVMGR_FOLLOW_GUEST);
		if (!rc)
			rc = build_devmgr(&md, m, bind, bind_ctx, opts, &e);
		else
			fail(&e, rc, md.devmgr_off);
	}
	if (!rc && opts)
		rc = attach_kvmres(&md, m, opts, &k, &e);
	if (!rc && opts)
		rc = load_guest_state(&md, m, opts, &e);
	model_free(&md);
	if (rc) {
		vmres_kvmres_free(k);
		vmres_devmgr_free(m);
		vmres_sysalloc_free(sa);
	} else {
		*sa_out = sa;
		*m_out = m;
		if (k && opts->kvmres_out)
			*opts->kvmres_out = k;
		e.offset = len;
	}
	if (err)
		*err = e;
	return rc;
}

int vmres_snapshot_restore_fd(int fd, vmres_snapshot_bind_fn bind, void *bind_ctx,
			      struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out,
			      struct vmres_snapshot_error *err)
{
	struct obuf b = {0};
	int rc = 0;

	if (fd < 0 || !sa_out || !m_out)
		return VMRES_EINVAL;
	for (;;) {
		size_t want = b.cap - b.len < 4096 ? 65536 : b.cap - b.len;
		uint8_t *at = obuf_grow(&b, want);
		ssize_t n;

		if (!at) {
			rc = VMRES_ENOMEM;
			break;
		}
		n = read(fd, at, want);
		b.len -= want - (n > 0 ? (size_t)n : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = VMRES_ESYS;
		if (n <= 0)
			break;
	}
	if (!rc)
		rc = vmres_snapshot_restore(b.p, b.len, bind, bind_ctx, sa_out, m_out, err);
	else if (err)
		*err = (struct vmres_snapshot_error){rc, b.len};
	int saved_errno = errno;

	free(b.p);
	errno = saved_errno;
	return rc;
}

/* ---- lookup by name ---- */

struct find_ctx {
	const char *name;
	uint32_t after;
	uint32_t found;
};

static int find_by_name(void *ctx, const struct vmres_devmgr_info *info,
			const struct vmres_resource *res, const bool *mapped)
{
	struct find_ctx *c = ctx;

	(void)res;
	(void)mapped;
	if (info->instance <= c->after || strcmp(info->name, c->name) != 0)
		return 0;
	c->found = info->instance;
	return 1;
}

int vmres_snapshot_find_device(struct vmres_devmgr *m, const char *name, uint32_t after,
			       uint32_t *instance)
{
	struct find_ctx c = {name, after, 0};
	int rc;

	if (!m || !name || !instance || !vmres__name_valid(name, VMRES_DEVICE_NAME_MAX))
		return VMRES_EINVAL;
	rc = vmres_devmgr_foreach(m, find_by_name, &c);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return VMRES_EDEVICE;
	*instance = c.found;
	return 0;
}
