/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the address-space allocator (addr.h): the input picks a
 * window (near 0, ending at UINT64_MAX, tiny, the whole space or anywhere) and a
 * sequence of operations (first/last/exact allocations with alignment and
 * sub-window, BAR-shaped ones among them, reserve, release of live and
 * arbitrary ranges, find, next). Each runs on vmres_addr and on the model in
 * tests/model/addr_model.h; any difference in return code, result,
 * out-parameters or whole state (allocations, gaps, stats) aborts, as does a
 * failed vmres_addr_validate().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/addr.h>

#include "../tests/model/addr_model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aull

struct collect {
	struct vmres_addr_entry *e;
	size_t n, cap;
};

static int collect_one(void *ctx, const struct vmres_addr_entry *entry)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct vmres_addr_entry *e = realloc(c->e, cap * sizeof(*e));

		FUZZ_CHECK(e != NULL);
		c->e = e;
		c->cap = cap;
	}
	c->e[c->n++] = *entry;
	return 0;
}

static void check_state(const struct vmres_addr *a, const struct addr_model *m)
{
	struct collect c = {0};
	struct vmres_addr_stats st, want;
	uint64_t *gs, *ge;

	FUZZ_CHECK(vmres_addr_validate(a) == 0);
	FUZZ_CHECK(vmres_addr_foreach(a, collect_one, &c) == 0);
	FUZZ_CHECK(c.n == m->n);
	for (size_t i = 0; i < m->n; i++)
		FUZZ_CHECK(c.e[i].base == m->e[i].base && c.e[i].last == m->e[i].last &&
			   c.e[i].owner == m->e[i].owner);
	c.n = 0;
	FUZZ_CHECK(vmres_addr_foreach_gap(a, collect_one, &c) == 0);
	gs = malloc((m->n + 1) * sizeof(*gs));
	ge = malloc((m->n + 1) * sizeof(*ge));
	FUZZ_CHECK(gs && ge);
	FUZZ_CHECK(c.n == addr_model_gaps(m, gs, ge));
	for (size_t k = 0; k < c.n; k++)
		FUZZ_CHECK(c.e[k].base == gs[k] && c.e[k].last == ge[k] && c.e[k].owner == 0);
	free(gs);
	free(ge);
	free(c.e);
	FUZZ_CHECK(vmres_addr_stats(a, &st) == 0);
	addr_model_stats(m, &want);
	FUZZ_CHECK(memcmp(&st, &want, sizeof(st)) == 0);
}

/* An address near one of the interesting places. */
static uint64_t pick_addr(struct fuzz_in *in, const struct addr_model *m)
{
	uint8_t sel = fuzz_u8(in);
	const struct vmres_addr_entry *e = m->n ? &m->e[fuzz_u8(in) % m->n] : NULL;

	switch (sel & 7) {
	case 0:
		return fuzz_near(in, m->base);
	case 1:
		return fuzz_near(in, m->last);
	case 2:
		return e ? fuzz_near(in, e->base) : fuzz_near(in, m->base);
	case 3:
		return e ? fuzz_near(in, e->last + 1) : fuzz_near(in, m->last);
	case 4:
		return fuzz_u64(in);
	case 5:
		return m->base + fuzz_u16(in);
	case 6:
		return fuzz_near(in, sel & 8 ? 0 : UINT64_MAX);
	default:
		return fuzz_near(in, m->base + (m->last - m->base) / 2);
	}
}

static uint64_t pick_align(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);

	if (sel < 0x80)
		return sel & 1; /* none */
	if (sel < 0xf8)
		return (uint64_t)1 << (sel & 63);
	return fuzz_u64(in); /* mostly not a power of two */
}

static struct vmres_addr_req pick_req(struct fuzz_in *in, const struct addr_model *m)
{
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	uint8_t flags = fuzz_u8(in);

	req.policy = (enum vmres_addr_policy)(flags & 1);
	req.size = fuzz_size(in);
	req.align = pick_align(in);
	/* A BAR, aligned to its power-of-two size (not with the flags below). */
	if ((flags & 0x18) == 0x08 && (flags & 0xe0) != 0xe0)
		req.align = req.size = (uint64_t)1 << (fuzz_u8(in) & 63);
	req.owner = fuzz_u8(in);
	if (flags & 2)
		req.min = pick_addr(in, m);
	if (flags & 4)
		req.max = pick_addr(in, m);
	if ((flags & 0xf0) == 0xf0)
		req.policy = (enum vmres_addr_policy)(3 + (flags & 8)); /* unknown */
	if ((flags & 0xf8) == 0xe8)
		req.version = 0;
	return req;
}

static void step(struct fuzz_in *in, struct vmres_addr *a, struct addr_model *m)
{
	struct vmres_addr_entry got = {UNTOUCHED, UNTOUCHED, UNTOUCHED}, want = got;
	uint64_t out = UNTOUCHED, mout = UNTOUCHED, size, addr;
	struct vmres_addr_req req;
	int rc, mrc;

	switch (fuzz_u8(in) % 8) {
	case 0: /* first or last fit */
	case 1:
		req = pick_req(in, m);
		rc = vmres_addr_alloc(a, &req, &out);
		mrc = addr_model_alloc(m, &req, &mout);
		break;
	case 2: /* exact */
		req = pick_req(in, m);
		req.policy = VMRES_ADDR_EXACT;
		req.addr = pick_addr(in, m);
		rc = vmres_addr_alloc(a, &req, &out);
		mrc = addr_model_alloc(m, &req, &mout);
		break;
	case 3: /* reserve */
		req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
		req.policy = VMRES_ADDR_EXACT;
		req.addr = pick_addr(in, m);
		req.size = fuzz_size(in);
		req.owner = fuzz_u8(in);
		rc = vmres_addr_reserve(a, req.addr, req.size, req.owner);
		mrc = addr_model_alloc(m, &req, &addr); /* reserve has no out-parameter */
		break;
	case 4: /* release a live allocation, maybe with the wrong size or base */
		if (m->n == 0)
			return;
		{
			const struct vmres_addr_entry *e = &m->e[fuzz_u8(in) % m->n];
			uint8_t how = fuzz_u8(in);

			addr = e->base + (how & 1);
			size = e->last - e->base + 1 + (uint64_t)(int64_t)(int8_t)(how & 0x86);
		}
		rc = vmres_addr_release(a, addr, size, &out);
		mrc = addr_model_release(m, addr, size, &mout);
		break;
	case 5: /* release anything */
		addr = pick_addr(in, m);
		size = fuzz_size(in);
		rc = vmres_addr_release(a, addr, size, &out);
		mrc = addr_model_release(m, addr, size, &mout);
		break;
	case 6:
		addr = pick_addr(in, m);
		rc = vmres_addr_find(a, addr, &got);
		mrc = addr_model_find(m, addr, &want);
		FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
		break;
	default:
		addr = pick_addr(in, m);
		rc = vmres_addr_next(a, addr, &got);
		mrc = addr_model_next(m, addr, &want);
		FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
		break;
	}
	if (rc != mrc || out != mout)
		fprintf(stderr, "vmres %s (%#llx), model %s (%#llx)\n", vmres_strerror(rc),
			(unsigned long long)out, vmres_strerror(mrc), (unsigned long long)mout);
	FUZZ_CHECK(rc == mrc);
	FUZZ_CHECK(out == mout);
	check_state(a, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct vmres_addr *a = NULL;
	struct addr_model m;
	uint64_t base, last;
	uint8_t mode = fuzz_u8(&in);

	switch (mode % 5) {
	case 0: /* near 0 */
		base = fuzz_u8(&in) & 0xf;
		last = base + fuzz_u16(&in);
		break;
	case 1: /* ending at UINT64_MAX */
		last = UINT64_MAX;
		base = last - fuzz_u16(&in);
		break;
	case 2: /* tiny, so that ENOSPC is common */
		base = fuzz_u64(&in);
		last = base + (fuzz_u8(&in) & 0xf);
		if (last < base)
			last = UINT64_MAX;
		break;
	case 3: /* everything */
		base = 0;
		last = UINT64_MAX;
		break;
	default: /* anywhere, maybe invalid */
		base = fuzz_u64(&in);
		last = fuzz_u64(&in);
		break;
	}
	if (base > last) {
		FUZZ_CHECK(vmres_addr_new(base, last, &a) == VMRES_EINVAL && a == NULL);
		return 0;
	}
	FUZZ_CHECK(vmres_addr_new(base, last, &a) == 0);
	addr_model_init(&m, base, last);
	check_state(a, &m);
	while (!fuzz_done(&in))
		step(&in, a, &m);
	vmres_addr_free(a);
	addr_model_fini(&m);
	return 0;
}
