/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the system allocator (sysalloc.h): the input picks the
 * x86_64 preset or a small custom set of pools, then a sequence of batches of
 * one to four requests of every kind (valid or not: unknown pool or kind,
 * wrong space, sizes, alignments, sub-windows, MSI blocks, specific numbers,
 * shares of shared legacy lines: joins, new lines, the least-shared pick),
 * releases of live and arbitrary resources (right or wrong owner) and
 * release_owner. Each runs on vmres_sysalloc and on the model in
 * tests/model/sysalloc_model.h; return code, error index, the resources handed
 * out and the whole state must agree, a failed call must leave the dump
 * unchanged, and vmres_sysalloc_validate() must pass after every step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/sysalloc.h>

#include "../tests/model/sysalloc_model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQS 4
#define OUT_CAP	 24 /* so that large MSI counts meet VMRES_EFULL */

struct collect {
	struct vmres_sysalloc_alloc_info *a;
	size_t n, cap;
};

static int collect_one(void *ctx, const struct vmres_sysalloc_alloc_info *info)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 32;
		c->a = realloc(c->a, c->cap * sizeof(*c->a));
		FUZZ_CHECK(c->a != NULL);
	}
	c->a[c->n++] = *info;
	return 0;
}

static void check_state(const struct vmres_sysalloc *sa, const struct sa_model *m)
{
	struct collect c = {0};
	struct vmres_sysalloc_alloc_info want;

	FUZZ_CHECK(vmres_sysalloc_validate(sa) == 0);
	FUZZ_CHECK(vmres_sysalloc_foreach_alloc(sa, collect_one, &c) == 0);
	for (size_t k = 0; k < c.n; k++) {
		FUZZ_CHECK(sa_model_nth(m, k, &want));
		FUZZ_CHECK(vmres_resource_equal(&c.a[k].res, &want.res));
		FUZZ_CHECK(c.a[k].owner == want.owner);
	}
	FUZZ_CHECK(!sa_model_nth(m, c.n, &want));
	free(c.a);
}

static int load_pool(void *ctx, const struct vmres_sysalloc_pool_info *pool)
{
	sa_model_add_pool(ctx, pool->name, pool->kind, pool->space, pool->base, pool->last);
	return 0;
}

/* The platform's pre-reservations, put into the model as they are. */
static int load_alloc(void *ctx, const struct vmres_sysalloc_alloc_info *info)
{
	struct sa_model_pool *p = sa_model_pool(ctx, info->res.pool);
	const struct vmres_resource *r = &info->res;

	FUZZ_CHECK(p != NULL);
	if (r->kind == VMRES_RES_ADDR) {
		FUZZ_CHECK(addr_model_insert(&p->addr, r->u.addr.base,
					     r->u.addr.base + r->u.addr.size - 1,
					     info->owner) == 0);
		sa_model_grow(p);
		p->align[p->n_num++] = (struct sa_model_align){r->u.addr.base, r->u.addr.align};
	} else {
		sa_model_num_put(p, sa_model_key(r), info->owner,
				 r->kind == VMRES_RES_IRQ && r->u.irq.shared);
	}
	return 0;
}

static const char *const custom_names[] = {"pio", "mmio", "top", "irq", "msi", "id"};

static void add_custom(struct vmres_sysalloc *sa, struct sa_model *m)
{
	static const struct {
		enum vmres_res_kind kind;
		enum vmres_space space;
		uint64_t base, last;
	} p[] = {
		{VMRES_RES_ADDR, VMRES_SPACE_PIO, 0x0, 0xfff},
		{VMRES_RES_ADDR, VMRES_SPACE_MMIO, 0x10000, 0x1ffff},
		{VMRES_RES_ADDR, VMRES_SPACE_MMIO, UINT64_MAX - 0xffff, UINT64_MAX},
		{VMRES_RES_IRQ, 0, 0, 31},
		{VMRES_RES_MSI, 0, 33, 95},
		{VMRES_RES_ID, 0, 7, 70},
	};

	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (p[i].kind == VMRES_RES_ADDR)
			FUZZ_CHECK(vmres_sysalloc_add_addr_pool(sa, custom_names[i], p[i].space,
								p[i].base, p[i].last) == 0);
		else
			FUZZ_CHECK(vmres_sysalloc_add_id_pool(sa, custom_names[i], p[i].kind,
							      (uint32_t)p[i].base,
							      (uint32_t)p[i].last) == 0);
		sa_model_add_pool(m, custom_names[i], p[i].kind, p[i].space, p[i].base, p[i].last);
	}
}

static uint64_t pick_owner(struct fuzz_in *in)
{
	uint8_t o = fuzz_u8(in) & 7;

	return o == 7 ? VMRES_SYSALLOC_OWNER_PLATFORM : o;
}

/* A pool: usually one of the model's, sometimes unknown or of 24 characters. */
static const struct sa_model_pool *pick_pool(struct fuzz_in *in, const struct sa_model *m,
					     char name[VMRES_POOL_NAME_MAX])
{
	uint8_t sel = fuzz_u8(in);

	memset(name, 0, VMRES_POOL_NAME_MAX);
	if (sel == 0xff) {
		memset(name, 'x', VMRES_POOL_NAME_MAX); /* no terminating NUL */
		return NULL;
	}
	if (sel == 0xfe) {
		strcpy(name, "nope");
		return NULL;
	}
	memcpy(name, m->pool[sel % m->n_pools].name, VMRES_POOL_NAME_MAX);
	return &m->pool[sel % m->n_pools];
}

/* A number or address near the pool's ends or its allocations, or anything. */
static uint64_t pick_value(struct fuzz_in *in, const struct sa_model_pool *p)
{
	uint8_t sel = fuzz_u8(in);
	uint64_t c;

	if (!p)
		return fuzz_u64(in);
	switch (sel & 7) {
	case 0:
		c = p->base;
		break;
	case 1:
		c = p->last;
		break;
	case 2:
		if (p->kind == VMRES_RES_ADDR)
			c = p->addr.n ? p->addr.e[fuzz_u8(in) % p->addr.n].base : p->base;
		else
			c = p->n_num ? p->num[fuzz_u8(in) % p->n_num].n : p->base;
		break;
	case 3:
		return fuzz_u64(in);
	case 4:
		return p->base + fuzz_u16(in);
	default:
		c = p->base + (p->last - p->base) / 2;
		break;
	}
	return fuzz_near(in, c);
}

static void pick_request(struct fuzz_in *in, const struct sa_model *m, struct vmres_request *q)
{
	uint8_t sel = fuzz_u8(in);
	const struct sa_model_pool *p;

	memset(q, 0, sizeof(*q));
	p = pick_pool(in, m, q->pool);
	q->kind = p && !(sel & 0x80) ? p->kind : (enum vmres_res_kind)(sel & 7);
	switch (q->kind) {
	case VMRES_RES_ADDR: {
		struct vmres_addr_req *r = &q->u.addr.req;
		uint8_t flags = fuzz_u8(in);

		q->u.addr.space = p && p->kind == VMRES_RES_ADDR && !(flags & 0x80)
					  ? p->space
					  : (enum vmres_space)(flags >> 5 & 3);
		*r = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
		r->policy = (enum vmres_addr_policy)(flags % 3);
		r->size = fuzz_size(in);
		r->align = flags & 8 ? (uint64_t)1 << (fuzz_u8(in) & 63) : flags & 4 ? 3 : 0;
		if (r->policy == VMRES_ADDR_EXACT)
			r->addr = pick_value(in, p);
		if (flags & 16) {
			r->min = pick_value(in, p);
			r->max = pick_value(in, p);
		}
		break;
	}
	case VMRES_RES_IRQ:
		q->u.irq.any = sel & 1;
		q->u.irq.shared = sel & 2; /* a share of a shared line */
		q->u.irq.gsi = (uint32_t)pick_value(in, p);
		break;
	case VMRES_RES_MSI:
		q->u.msi.any = sel & 1;
		q->u.msi.contiguous = sel & 2;
		q->u.msi.count = sel & 4 ? fuzz_u32(in) : fuzz_u8(in) & 15;
		q->u.msi.gsi = (uint32_t)pick_value(in, p);
		break;
	case VMRES_RES_ID:
		q->u.id.any = sel & 1;
		q->u.id.id = (uint32_t)pick_value(in, p);
		break;
	default:
		break;
	}
}

/* A live resource of the model (maybe altered), or an arbitrary one. */
static void pick_resource(struct fuzz_in *in, const struct sa_model *m, struct vmres_resource *r)
{
	struct vmres_sysalloc_alloc_info info;
	uint8_t sel = fuzz_u8(in);
	size_t total = 0;

	while (sa_model_nth(m, total, &info))
		total++;
	if (total && !(sel & 0x80)) {
		sa_model_nth(m, fuzz_u16(in) % total, &info);
		*r = info.res;
		if (sel & 1 && r->kind == VMRES_RES_ADDR)
			r->u.addr.size += (uint64_t)(int64_t)(int8_t)fuzz_u8(in);
		if (sel & 2 && r->kind == VMRES_RES_ADDR)
			r->u.addr.space ^= 3;
		if (sel & 4)
			r->kind = (enum vmres_res_kind)(1 + fuzz_u8(in) % 4);
		return;
	}
	memset(r, 0, sizeof(*r));
	pick_pool(in, m, r->pool);
	r->kind = (enum vmres_res_kind)(1 + (sel & 3));
	if (r->kind == VMRES_RES_ADDR) {
		r->u.addr.space = (enum vmres_space)(1 + (sel >> 2 & 1));
		r->u.addr.base = fuzz_u64(in);
		r->u.addr.size = fuzz_size(in);
	} else {
		r->u.id.id = fuzz_u32(in); /* same place in every number kind */
	}
}

static void step(struct fuzz_in *in, struct vmres_sysalloc *sa, struct sa_model *m)
{
	struct vmres_resource out[OUT_CAP], mout[OUT_CAP];
	struct vmres_sysalloc_error err = {1, 999}, merr = {0, 0};
	struct vmres_request q[MAX_REQS];
	struct vmres_resource r;
	size_t n = 999, mn = 0, nq;
	char *before = NULL, *after = NULL;
	uint64_t owner;
	int rc, mrc;

	FUZZ_CHECK(vmres_sysalloc_dump_str(sa, &before) == 0);
	switch (fuzz_u8(in) % 8) {
	default: /* a batch */
		nq = 1 + fuzz_u8(in) % MAX_REQS;
		for (size_t i = 0; i < nq; i++)
			pick_request(in, m, &q[i]);
		owner = pick_owner(in);
		rc = vmres_sysalloc_alloc(sa, q, nq, owner, out, OUT_CAP, &n, &err);
		mrc = sa_model_alloc(m, q, nq, owner, mout, OUT_CAP, &mn, &merr);
		if (rc != mrc || (rc && err.index != merr.index))
			fprintf(stderr, "vmres %s at %zu, model %s at %zu\n", vmres_strerror(rc),
				err.index, vmres_strerror(mrc), merr.index);
		FUZZ_CHECK(rc == mrc);
		if (rc) {
			FUZZ_CHECK(err.code == merr.code && err.index == merr.index);
			FUZZ_CHECK(n == 999);
			break;
		}
		FUZZ_CHECK(n == mn);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(vmres_resource_equal(&out[i], &mout[i]));
		break;
	case 5:
	case 6:
		pick_resource(in, m, &r);
		owner = pick_owner(in);
		rc = vmres_sysalloc_release(sa, &r, owner);
		mrc = sa_model_release(m, &r, owner);
		if (rc != mrc)
			fprintf(stderr, "release: vmres %s, model %s\n", vmres_strerror(rc),
				vmres_strerror(mrc));
		FUZZ_CHECK(rc == mrc);
		break;
	case 7:
		owner = pick_owner(in);
		rc = vmres_sysalloc_release_owner(sa, owner);
		FUZZ_CHECK(rc == 0);
		sa_model_release_owner(m, owner);
		break;
	}
	if (rc) {
		FUZZ_CHECK(vmres_sysalloc_dump_str(sa, &after) == 0);
		FUZZ_CHECK(strcmp(before, after) == 0);
		free(after);
	}
	free(before);
	check_state(sa, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct vmres_sysalloc *sa = NULL;
	struct sa_model m = {0};

	if (fuzz_u8(&in) & 1) {
		FUZZ_CHECK(vmres_sysalloc_new_x86_64(&sa) == 0);
		FUZZ_CHECK(vmres_sysalloc_foreach_pool(sa, load_pool, &m) == 0);
		FUZZ_CHECK(vmres_sysalloc_foreach_alloc(sa, load_alloc, &m) == 0);
	} else {
		FUZZ_CHECK(vmres_sysalloc_new(&sa) == 0);
		add_custom(sa, &m);
	}
	check_state(sa, &m);
	while (!fuzz_done(&in))
		step(&in, sa, &m);
	vmres_sysalloc_free(sa);
	sa_model_fini(&m);
	return 0;
}
