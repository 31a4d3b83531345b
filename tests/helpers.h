/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers shared by the test programs (header-only, static inline, so each
 * test stays one translation unit): resource and request builders, a device that
 * records its accesses (struct tdev), and the SplitMix64 step the randomized
 * differential tests draw their numbers from. fuzz/fuzz_guest.c uses it too.
 */
#ifndef VMRES_TESTS_HELPERS_H
#define VMRES_TESTS_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmres/bus.h>
#include <vmres/resource.h>
#include <vmres/sysalloc.h>

struct vmres_devmgr;

/* A request for @p count numbers (MSI; IRQ and ID take one) of pool @p pool,
 * the lowest free ones; @p contiguous for an aligned MSI block. */
static inline struct vmres_request test_rq_num(enum vmres_res_kind kind, const char *pool,
					       uint32_t count, bool contiguous)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = kind;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	if (kind == VMRES_RES_IRQ) {
		q.u.irq.any = true;
	} else if (kind == VMRES_RES_ID) {
		q.u.id.any = true;
	} else {
		q.u.msi.any = true;
		q.u.msi.count = count;
		q.u.msi.contiguous = contiguous;
	}
	return q;
}

/* An address resource [base, base + size) in @space, no pool name. */
static inline struct vmres_resource test_addr_res(enum vmres_space space, uint64_t base,
						  uint64_t size)
{
	struct vmres_resource r;

	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_ADDR;
	r.u.addr.space = space;
	r.u.addr.base = base;
	r.u.addr.size = size;
	return r;
}

/* A system-allocator request for @size bytes aligned to @align from @pool, placed
 * by @policy (at @at for VMRES_ADDR_EXACT). */
static inline struct vmres_request test_rq_addr(const char *pool, enum vmres_space space,
						uint64_t size, uint64_t align,
						enum vmres_addr_policy policy, uint64_t at)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = VMRES_RES_ADDR;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	q.u.addr.space = space;
	q.u.addr.req = (struct vmres_addr_req)VMRES_ADDR_REQ_INIT;
	q.u.addr.req.size = size;
	q.u.addr.req.align = align;
	q.u.addr.req.policy = policy;
	q.u.addr.req.addr = at;
	return q;
}

/* A legacy interrupt line resource on @gsi, no pool name. */
static inline struct vmres_resource test_irq_res(uint32_t gsi)
{
	struct vmres_resource r;

	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_IRQ;
	r.u.irq.gsi = gsi;
	return r;
}

/* A device that records its last access and counts releases. @action and @m
 * serve tests that act on the device manager from inside a callback. */
struct tdev {
	struct vmres_device dev;
	uint32_t instance;
	int reads, writes;
	int releases; /* atomic: written on the call_rcu thread */
	unsigned int range, size;
	uint64_t offset, addr, value;
	uint64_t reply;
	void *caller; /* the caller of the last access (tdev_use_caller()) */
	/* Optional action from inside a callback. */
	void (*action)(struct tdev *d, uint64_t value);
	struct vmres_devmgr *m;
	int action_rc;
};

static inline uint64_t tdev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
				 unsigned int size)
{
	struct tdev *d = opaque;

	d->reads++;
	d->range = range;
	d->offset = offset;
	d->addr = addr;
	d->size = size;
	return d->reply;
}

static inline void tdev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			      unsigned int size, uint64_t value)
{
	struct tdev *d = opaque;

	d->writes++;
	d->range = range;
	d->offset = offset;
	d->addr = addr;
	d->size = size;
	d->value = value;
	if (d->action)
		d->action(d, value);
}

static inline void tdev_release(void *opaque)
{
	struct tdev *d = opaque;

	__atomic_fetch_add(&d->releases, 1, __ATOMIC_RELEASE);
}

static inline void tdev_init(struct tdev *d, const char *name, struct vmres_devmgr *m)
{
	memset(d, 0, sizeof(*d));
	d->dev = (struct vmres_device)VMRES_DEVICE_INIT;
	d->dev.name = name;
	d->dev.opaque = d;
	d->dev.read = tdev_read;
	d->dev.write = tdev_write;
	d->dev.release = tdev_release;
	d->reply = 0x8877665544332211ULL;
	d->m = m;
}

static inline uint64_t tdev_read_ctx(void *opaque, void *caller, unsigned int range,
				     uint64_t offset, uint64_t addr, unsigned int size)
{
	((struct tdev *)opaque)->caller = caller;
	return tdev_read(opaque, range, offset, addr, size);
}

static inline void tdev_write_ctx(void *opaque, void *caller, unsigned int range, uint64_t offset,
				  uint64_t addr, unsigned int size, uint64_t value)
{
	((struct tdev *)opaque)->caller = caller;
	tdev_write(opaque, range, offset, addr, size, value);
}

/* Make @p d a device whose callbacks take the caller's context (version 2). */
static inline void tdev_use_caller(struct tdev *d)
{
	d->dev.read = NULL;
	d->dev.write = NULL;
	d->dev.read_ctx = tdev_read_ctx;
	d->dev.write_ctx = tdev_write_ctx;
	d->caller = (void *)&d->caller; /* neither NULL nor what a test passes */
}

/* One SplitMix64 step: advances *@state and returns the next number. */
static inline uint64_t test_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The @p i-th of a list of short strings that are not text the library accepts
 * as a name or label (not UTF-8, or a control character); NULL past the end. */
static inline const char *test_bad_name(size_t i)
{
	static const char *const bad[] = {
		"bad\xff",		/* a byte that is never UTF-8 */
		"\x80lone",		/* a continuation byte without a lead */
		"cut\xe2\x82",		/* a sequence cut short by the NUL */
		"\xc0\xaf",		/* overlong "/" */
		"\xe0\x80\xaf",		/* overlong "/", 3 bytes */
		"\xed\xa0\x80",		/* a UTF-16 surrogate */
		"\xf4\x90\x80\x80",	/* above U+10FFFF */
		"\xf8\x88\x80\x80\x80", /* a 5-byte form */
		"tab\there",		/* control characters */
		"line\n",
		"esc\x1b[2J",
		"del\x7f",
	};

	return i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : NULL;
}

/* A name that is text: UTF-8 of 2, 3 and 4 bytes (u with diaeresis, euro sign,
 * a musical symbol), 13 bytes in all. */
#define TEST_UTF8_NAME "net-\xc3\xbc\xe2\x82\xac\xf0\x9d\x84\x9e"

#endif
