/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the device manager with a system allocator attached (the
 * x86_64 preset): devices get their ranges from the pools (or, some of them,
 * from no pool), then the input moves them anywhere (onto themselves, other
 * devices, platform reservations, other windows, outside every pool), unmaps
 * and maps them, unregisters devices (the VMM then releases their owner) and
 * lets a squatter take and give back exact ranges. After every step: every
 * range of a pool, mapped or not, is reserved exactly by its device's owner in
 * the pool its resource names, each owner holds nothing else, every mapped
 * range is on its bus, a failed call changed neither dump, and the allocator
 * validates.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/sysalloc.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEVS 16
#define MAX_RES	 3
#define SQUATTER 0x999u
#define OWNER(i) (0x100u + (i))

struct dev {
	uint32_t id;
	bool live;
	int released;
};

struct rig {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct dev dev[MAX_DEVS];
	unsigned int n;
};

static void dev_release(void *opaque)
{
	struct dev *d = opaque;

	__atomic_fetch_add(&d->released, 1, __ATOMIC_RELAXED);
}

static int release_owner(void *ctx, struct vmres_sysalloc *sa)
{
	return vmres_sysalloc_release_owner(sa, *(uint64_t *)ctx);
}

struct owned {
	unsigned int n;
	struct vmres_resource r[MAX_RES + 1];
};

static int collect(void *ctx, const struct vmres_sysalloc_alloc_info *info)
{
	struct owned *o = ctx;

	FUZZ_CHECK(o->n <= MAX_RES);
	o->r[o->n++] = info->res;
	return 0;
}

static void check_dev(struct rig *r, unsigned int i)
{
	struct vmres_resource res[MAX_RES];
	bool mapped[MAX_RES];
	struct vmres_devmgr_info info;
	struct owned o = {0};
	unsigned int n_pooled = 0;

	FUZZ_CHECK(vmres_sysalloc_foreach_owner_alloc(r->sa, OWNER(i), collect, &o) == 0);
	if (!r->dev[i].live) {
		FUZZ_CHECK(o.n == 0);
		return;
	}
	FUZZ_CHECK(vmres_devmgr_get(r->m, r->dev[i].id, &info, res, mapped, MAX_RES) == 0);
	for (size_t k = 0; k < info.n_res; k++) {
		const struct vmres_resource *x = &res[k];
		uint64_t last = x->u.addr.base + x->u.addr.size - 1;
		struct vmres_sysalloc_alloc_info a;
		unsigned int idx = 99;
		uint32_t inst = 0;

		/* One owner per address: reserved whether mapped or not. */
		if (x->pool[0]) {
			n_pooled++;
			FUZZ_CHECK(vmres_sysalloc_find(r->sa, x->pool, x->u.addr.base, &a) == 0);
			FUZZ_CHECK(a.owner == OWNER(i) && a.res.u.addr.space == x->u.addr.space);
			FUZZ_CHECK(a.res.u.addr.base == x->u.addr.base &&
				   a.res.u.addr.size == x->u.addr.size);
		}
		if (!mapped[k])
			continue;
		FUZZ_CHECK(vmres_devmgr_find(r->m, x->u.addr.space, x->u.addr.base, &inst, &idx,
					     NULL) == 0);
		FUZZ_CHECK(inst == r->dev[i].id && idx == k);
		FUZZ_CHECK(vmres_devmgr_find(r->m, x->u.addr.space, last, &inst, &idx, NULL) == 0);
		FUZZ_CHECK(inst == r->dev[i].id && idx == k);
	}
	FUZZ_CHECK(o.n == n_pooled);
}

static void check_rig(struct rig *r)
{
	FUZZ_CHECK(vmres_sysalloc_validate(r->sa) == 0);
	for (unsigned int i = 0; i < r->n; i++)
		check_dev(r, i);
}

static uint64_t pick_base(struct fuzz_in *in, struct rig *r, enum vmres_space space)
{
	static const uint64_t mmio[] = {0xc0000000u,	 0xfebff000u,	  0xfec00000u,
					0xfee00000u,	 0xfffff000u,	  0x1000000000ull,
					0x17fffff000ull, 0x1800000000ull, 0};
	static const uint64_t pio[] = {0, 0x3f8, 0xcf8, 0x1000, 0xfff0, 0xffff, 0x10000};
	uint8_t sel = fuzz_u8(in);

	if (sel & 0x80 && r->n) { /* near one of the ranges */
		struct vmres_resource res[MAX_RES];
		struct vmres_devmgr_info info;
		struct dev *d = &r->dev[fuzz_u8(in) % r->n];

		if (d->live && vmres_devmgr_get(r->m, d->id, &info, res, NULL, MAX_RES) == 0 &&
		    info.n_res)
			return res[fuzz_u8(in) % info.n_res].u.addr.base +
			       (uint64_t)(int64_t)(int8_t)(fuzz_u8(in) & 0xf0);
	}
	if (space == VMRES_SPACE_PIO)
		return pio[sel % 7] + ((sel >> 3 & 7) << 4);
	return mmio[sel % 9] + ((uint64_t)(sel >> 4 & 7) << 12);
}

static void add_dev(struct fuzz_in *in, struct rig *r)
{
	static const char *const pools[] = {"pio", "mmio32", "mmio64", ""};
	struct vmres_request q[MAX_RES];
	struct vmres_resource res[MAX_RES];
	struct vmres_device dev = VMRES_DEVICE_INIT;
	size_t n = 1 + fuzz_u8(in) % MAX_RES, n_out = 0, nq = 0;
	unsigned int i = r->n;
	uint64_t owner = OWNER(i);
	int rc;

	if (r->n == MAX_DEVS)
		return;
	for (size_t k = 0; k < n; k++) {
		uint8_t sel = fuzz_u8(in);
		const char *pool = pools[sel & 3];
		enum vmres_space space = (sel & 3) == 0 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;
		uint64_t size = (uint64_t)1
				<< ((sel >> 2 & 7) + (space == VMRES_SPACE_PIO ? 0 : 4));

		if (!pool[0]) { /* not from a pool: anywhere */
			memset(&res[k], 0, sizeof(res[k]));
			res[k].kind = VMRES_RES_ADDR;
			res[k].u.addr.space = sel & 0x40 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;
			res[k].u.addr.base = pick_base(in, r, res[k].u.addr.space);
			res[k].u.addr.size = size;
			continue;
		}
		memset(&q[nq], 0, sizeof(q[nq]));
		q[nq].kind = VMRES_RES_ADDR;
		strcpy(q[nq].pool, pool);
		q[nq].u.addr.space = space;
		q[nq].u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
		q[nq].u.addr.req.size = size;
		q[nq].u.addr.req.align = sel & 0x20 ? size : 0;
		q[nq].u.addr.req.policy = sel & 0x80 ? VMRES_ADDR_LAST_FIT : VMRES_ADDR_FIRST_FIT;
		nq++;
		res[k].kind = 0; /* filled below */
	}
	if (nq) {
		struct vmres_resource got[MAX_RES];

		if (vmres_sysalloc_alloc(r->sa, q, nq, owner, got, MAX_RES, &n_out, NULL))
			return;
		for (size_t k = 0, j = 0; k < n; k++)
			if (res[k].kind == 0)
				res[k] = got[j++];
	}
	dev.name = "dev";
	dev.opaque = &r->dev[i];
	dev.release = dev_release;
	dev.owner = owner;
	rc = vmres_devmgr_register(r->m, &dev, VMRES_DEVMGR_NO_PARENT, res, n, &r->dev[i].id);
	if (rc) {
		/* only a range from no pool can clash, leave the PIO space or wrap */
		if (rc != VMRES_EOVERLAP && rc != VMRES_ERANGE && rc != VMRES_EOVERFLOW)
			fprintf(stderr, "register: %s\n", vmres_strerror(rc));
		FUZZ_CHECK(rc == VMRES_EOVERLAP || rc == VMRES_ERANGE || rc == VMRES_EOVERFLOW);
		FUZZ_CHECK(vmres_sysalloc_release_owner(r->sa, owner) == 0);
		return;
	}
	r->dev[i].live = true;
	r->n++;
}

static void step(struct fuzz_in *in, struct rig *r)
{
	uint8_t op = fuzz_u8(in) % 8;
	struct dev *d = r->n ? &r->dev[fuzz_u8(in) % r->n] : NULL;
	unsigned int idx = fuzz_u8(in) % (MAX_RES + 1);
	char *sa_before = NULL, *dm_before = NULL, *after = NULL;
	int rc = 0;

	if (op == 0 || !d) {
		add_dev(in, r);
		return;
	}
	FUZZ_CHECK(vmres_sysalloc_dump_str(r->sa, &sa_before) == 0);
	FUZZ_CHECK(vmres_devmgr_dump_str(r->m, &dm_before) == 0);
	switch (op) {
	case 1:
		rc = vmres_devmgr_unregister(r->m, d->id);
		FUZZ_CHECK(rc == (d->live ? 0 : VMRES_EDEVICE));
		if (rc == 0) {
			uint64_t owner = OWNER(d - r->dev);

			d->live = false;
			FUZZ_CHECK(vmres_devmgr_with_sysalloc(r->m, release_owner, &owner) == 0);
		}
		break;
	case 2:
	case 3: {
		struct vmres_resource res[MAX_RES];
		enum vmres_space space = VMRES_SPACE_MMIO;
		struct vmres_devmgr_info info;

		if (d->live && vmres_devmgr_get(r->m, d->id, &info, res, NULL, MAX_RES) == 0 &&
		    idx < info.n_res)
			space = res[idx].u.addr.space;
		rc = vmres_devmgr_move_range(r->m, d->id, idx, pick_base(in, r, space));
		break;
	}
	case 4:
		rc = vmres_devmgr_unmap_range(r->m, d->id, idx);
		break;
	case 5:
		rc = vmres_devmgr_map_range(r->m, d->id, idx);
		break;
	default: { /* the squatter takes an exact range, or gives all back */
		struct vmres_request q;
		struct vmres_resource got;
		size_t n;
		uint8_t sel = fuzz_u8(in);

		if (sel & 1) {
			FUZZ_CHECK(vmres_sysalloc_release_owner(r->sa, SQUATTER) == 0);
			break;
		}
		memset(&q, 0, sizeof(q));
		q.kind = VMRES_RES_ADDR;
		strcpy(q.pool, sel & 2 ? "pio" : sel & 4 ? "mmio64" : "mmio32");
		q.u.addr.space = sel & 2 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;
		q.u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
		q.u.addr.req.policy = VMRES_ADDR_EXACT;
		q.u.addr.req.addr = pick_base(in, r, q.u.addr.space);
		q.u.addr.req.size = 1u << (sel >> 4);
		rc = vmres_sysalloc_alloc(r->sa, &q, 1, SQUATTER, &got, 1, &n, NULL);
		break;
	}
	}
	if (rc) { /* nothing changed */
		FUZZ_CHECK(vmres_sysalloc_dump_str(r->sa, &after) == 0);
		FUZZ_CHECK(strcmp(after, sa_before) == 0);
		free(after);
		FUZZ_CHECK(vmres_devmgr_dump_str(r->m, &after) == 0);
		FUZZ_CHECK(strcmp(after, dm_before) == 0);
		free(after);
	}
	free(sa_before);
	free(dm_before);
	check_rig(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct rig r;

	memset(&r, 0, sizeof(r));
	FUZZ_CHECK(vmres_sysalloc_new_x86_64(&r.sa) == 0);
	FUZZ_CHECK(vmres_devmgr_new(r.sa, &r.m) == 0);
	while (!fuzz_done(&in)) {
		step(&in, &r);
		check_rig(&r);
	}
	vmres_devmgr_free(r.m);
	for (unsigned int i = 0; i < r.n; i++)
		FUZZ_CHECK(r.dev[i].released == 1);
	vmres_sysalloc_free(r.sa);
	return 0;
}
