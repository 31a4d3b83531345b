/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/kvm.h>
#include <zlib.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/pci.h>
#include <vmres/snapshot.h>
#include <vmres/sysalloc.h>

#include "helpers.h"
#include "snapshot_fixture.h"

/* ---- byte access to a snapshot (layout: docs/SNAPSHOT.md) ---- */

enum { POOLS = 1, OWNERS = 2, ALLOCS = 3, DEVMGR = 4, DEVICES = 5, RESOURCES = 6 };

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the crc32 after an edit, as a writer of a bad snapshot would. */
static void resign(uint8_t *buf, size_t len)
{
	wr32(buf + len - 4, (uint32_t)crc32(0, buf, (uInt)(len - 4)));
}

/* Offset of the section header of @p kind. */
static size_t section(const uint8_t *buf, size_t len, uint32_t kind)
{
	size_t pos = rd32(buf + 12);

	while (pos + 16 <= len - 4) {
		if (rd32(buf + pos) == kind)
			return pos;
		pos += 16 + (size_t)rd64(buf + pos + 8);
	}
	fail_msg("no section %u", kind);
	return 0;
}

/* Offset of record @p i of section @p kind. */
static size_t record(const uint8_t *buf, size_t len, uint32_t kind, size_t i)
{
	size_t s = section(buf, len, kind);

	assert_true(i < rd32(buf + s + 16));
	return s + 24 + i * rd32(buf + s + 20);
}

/* ---- states ---- */

struct bind_stats {
	int created;
	int released;
};

struct fake_dev {
	struct bind_stats *stats;
	uint32_t instance;
};

static void fake_release(void *opaque)
{
	struct fake_dev *d = opaque;

	__atomic_fetch_add(&d->stats->released, 1, __ATOMIC_RELAXED);
	free(d);
}

static uint64_t fake_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size)
{
	(void)range, (void)offset, (void)addr, (void)size;
	return ((struct fake_dev *)opaque)->instance;
}

struct bind_ctx {
	struct bind_stats stats;
	int fail_at; /* the bind call (from 1) that fails, 0: none */
	int calls;
};

static int bind_fake(void *ctx, const struct vmres_devmgr_info *entry,
		     const struct vmres_resource *res, const bool *mapped, struct vmres_device *dev)
{
	struct bind_ctx *c = ctx;
	struct fake_dev *d;

	(void)res, (void)mapped;
	assert_null(entry->opaque);
	assert_string_equal(dev->name, entry->name);
	assert_int_equal(dev->owner, entry->owner);
	if (++c->calls == c->fail_at)
		return VMRES_ENOMEM;
	d = malloc(sizeof(*d));
	assert_non_null(d);
	d->stats = &c->stats;
	d->instance = entry->instance;
	dev->opaque = d;
	dev->read = fake_read;
	dev->release = fake_release;
	dev->name = "renamed"; /* ignored: the snapshot's name wins */
	__atomic_fetch_add(&c->stats.created, 1, __ATOMIC_RELAXED);
	return 0;
}

static size_t alloc_for(struct vmres_sysalloc *sa, const struct vmres_request *q, size_t n,
			uint64_t owner, struct vmres_resource *out, size_t cap)
{
	size_t n_out = 0;

	if (vmres_sysalloc_alloc(sa, q, n, owner, out, cap, &n_out, NULL))
		return 0;
	return n_out;
}

static struct vmres_request rq_addr(const char *pool, enum vmres_space space, uint64_t size,
				    uint64_t align)
{
	return test_rq_addr(pool, space, size, align, VMRES_ADDR_FIRST_FIT, 0);
}

static struct vmres_request rq_num(enum vmres_res_kind kind, const char *pool, uint32_t count)
{
	struct vmres_request q;

	memset(&q, 0, sizeof(q));
	q.kind = kind;
	snprintf(q.pool, sizeof(q.pool), "%s", pool);
	if (kind == VMRES_RES_IRQ)
		q.u.irq.any = true;
	else if (kind == VMRES_RES_ID)
		q.u.id.any = true;
	else {
		q.u.msi.any = true;
		q.u.msi.count = count;
		q.u.msi.contiguous = (count & (count - 1)) == 0;
	}
	return q;
}

static uint32_t register_dev(struct vmres_devmgr *m, const char *name, uint64_t owner,
			     uint32_t parent, const struct vmres_resource *res, size_t n)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;
	uint32_t id = 0;

	dev.name = name;
	dev.owner = owner;
	assert_int_equal(vmres_devmgr_register(m, &dev, parent, res, n, &id), 0);
	return id;
}

/* A small PC: three devices, one unmapped BAR, one programmed MSI, an id gap. */
static void small_state(struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out)
{
	struct vmres_resource res[8];
	struct vmres_request q[5];
	struct vmres_msi_msg msg = {0xfee00000, 0, 0x4021};
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint32_t host, nic, gone;
	size_t n;

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	q[0] = rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000);
	n = alloc_for(sa, q, 1, 1, res, 8);
	assert_int_equal(n, 1);
	assert_int_equal(vmres_sysalloc_set_owner_name(sa, 1, "pci-host"), 0);
	host = register_dev(m, "pci-host", 1, VMRES_DEVMGR_NO_PARENT, res, n);
	gone = register_dev(m, "hotplugged", 9, host, NULL, 0);
	q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	q[1] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	q[2] = rq_num(VMRES_RES_MSI, "gsi-msi", 2);
	q[3] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
	q[4] = rq_num(VMRES_RES_ID, "device-id", 1);
	n = alloc_for(sa, q, 5, 3, res, 8);
	assert_int_equal(n, 6);
	assert_int_equal(vmres_sysalloc_set_label(sa, &res[0], 3, "bar0"), 0);
	nic = register_dev(m, "virtio-net0", 3, host, res, n);
	assert_int_equal(vmres_devmgr_unmap_range(m, nic, 1), 0);
	assert_int_equal(vmres_devmgr_reroute_msi(m, nic, 2, &msg), 0);
	assert_int_equal(vmres_devmgr_unregister(m, gone), 0);
	q[0] = rq_addr("pio", VMRES_SPACE_PIO, 8, 8);
	n = alloc_for(sa, q, 1, 4, res, 8);
	assert_int_equal(n, 1);
	register_dev(m, NULL, 4, VMRES_DEVMGR_NO_PARENT, res, n);
	*sa_out = sa;
	*m_out = m;
}

static uint32_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/* A random VMM: devices with random parents and resources, then guest moves,
 * programmed MSIs, unmapped BARs (some then moved under mapped ranges or other
 * ranges of their own device) and unplugged devices. */
static void random_state(bool attached, struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out)
{
	static const char *const mmio_pools[] = {"mmio32", "mmio64"};
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint32_t ids[64];
	size_t n_ids = 0, n_dev = 8 + rnd() % 40;

	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(attached ? sa : NULL, &m), 0);
	for (size_t i = 0; i < n_dev && n_ids < 64; i++) {
		struct vmres_request q[7];
		struct vmres_resource res[16];
		uint64_t owner = 0x100 + i;
		size_t nq = 0, n;
		uint32_t parent;
		char name[32];

		if (rnd() % 3)
			q[nq++] = rq_addr(mmio_pools[rnd() % 2], VMRES_SPACE_MMIO,
					  0x1000ull << (rnd() % 5), rnd() % 2 ? 0x1000 : 0);
		if (rnd() % 3 == 0)
			q[nq++] = rq_addr("pio", VMRES_SPACE_PIO, 4u << (rnd() % 3), 4);
		if (rnd() % 2)
			q[nq++] = rq_num(VMRES_RES_MSI, "gsi-msi", 1 + rnd() % 4);
		if (rnd() % 4 == 0)
			q[nq++] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
		if (rnd() % 3 == 0) {
			q[nq] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
			q[nq++].u.irq.shared = true; /* PCI INTx */
		}
		if (rnd() % 3 == 0)
			q[nq++] = rq_num(VMRES_RES_ID, "device-id", 1);
		if (rnd() % 4 == 0)
			q[nq++] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x100, 0);
		n = nq ? alloc_for(sa, q, nq, owner, res, 16) : 0;
		if (n && rnd() % 2)
			assert_int_equal(vmres_sysalloc_set_label(sa, &res[0], owner, "bar"), 0);
		snprintf(name, sizeof(name), "dev%zu", i);
		if (rnd() % 2) {
			assert_int_equal(vmres_sysalloc_set_owner_name(sa, owner, name), 0);
		}
		parent = n_ids && rnd() % 2 ? ids[rnd() % n_ids] : 0;
		ids[n_ids] = register_dev(m, rnd() % 5 ? name : NULL, owner, parent, res, n);
		n_ids++;
	}
	/* Resources that no device holds. */
	for (int i = 0; i < 5; i++) {
		struct vmres_request q = rq_addr(mmio_pools[i % 2], VMRES_SPACE_MMIO, 0x2000, 0);
		struct vmres_resource r;

		alloc_for(sa, &q, 1, 0x9000 + (uint64_t)i, &r, 1);
	}
	for (size_t k = 0; k < n_ids; k++) {
		struct vmres_devmgr_info info;
		struct vmres_resource res[16];
		bool mapped[16];

		assert_int_equal(vmres_devmgr_get(m, ids[k], &info, res, mapped, 16), 0);
		for (unsigned int j = 0; j < info.n_res; j++) {
			struct vmres_msi_msg msg = {0xfee00000 | (rnd() % 16) << 12, 0,
						    rnd() % 256};

			if (res[j].kind == VMRES_RES_ADDR && rnd() % 4 == 0)
				vmres_devmgr_move_range(
					m, ids[k], j,
					res[j].u.addr.base + res[j].u.addr.size * (1 + rnd() % 8));
			if (res[j].kind == VMRES_RES_MSI && rnd() % 2)
				assert_int_equal(vmres_devmgr_reroute_msi(m, ids[k], j, &msg), 0);
		}
	}
	for (size_t k = 0; k < n_ids; k++) {
		struct vmres_devmgr_info info;
		struct vmres_resource res[16];

		assert_int_equal(vmres_devmgr_get(m, ids[k], &info, res, NULL, 16), 0);
		for (unsigned int j = 0; j < info.n_res; j++)
			if (res[j].kind == VMRES_RES_ADDR && rnd() % 4 == 0) {
				uint64_t down = res[j].u.addr.size * (1 + rnd() % 8);
				uint64_t to = res[j].u.addr.base - down;

				int rc = 0;

				assert_int_equal(vmres_devmgr_unmap_range(m, ids[k], j), 0);
				/* Unmapped, it keeps its reservation, which moves along. */
				if (rnd() % 2 && res[j].u.addr.base >= down)
					rc = vmres_devmgr_move_range(m, ids[k], j, to);
				assert_true(rc == 0 || (attached && (rc == VMRES_EOVERLAP ||
								     rc == VMRES_ERANGE)));
			}
	}
	/* Unplug some devices (leaves first: a parent with children refuses). */
	for (size_t k = n_ids; k-- > 0;) {
		struct vmres_devmgr_info info;

		assert_int_equal(vmres_devmgr_get(m, ids[k], &info, NULL, NULL, 0), 0);
		if (rnd() % 5 == 0 && vmres_devmgr_unregister(m, ids[k]) == 0)
			assert_int_equal(vmres_sysalloc_release_owner(sa, info.owner), 0);
	}
	*sa_out = sa;
	*m_out = m;
}

/* ---- comparisons ---- */

struct dumps {
	char *sa_text, *sa_json, *m_text, *m_json;
};

static struct dumps dumps_of(const struct vmres_sysalloc *sa, struct vmres_devmgr *m)
{
	struct dumps d;

	assert_int_equal(vmres_sysalloc_dump_str(sa, &d.sa_text), 0);
	assert_int_equal(vmres_sysalloc_dump_json(sa, &d.sa_json), 0);
	assert_int_equal(vmres_devmgr_dump_str(m, &d.m_text), 0);
	assert_int_equal(vmres_devmgr_dump_json(m, &d.m_json), 0);
	return d;
}

static void dumps_free(struct dumps *d)
{
	free(d->sa_text);
	free(d->sa_json);
	free(d->m_text);
	free(d->m_json);
}

static void assert_same_state(const struct vmres_sysalloc *sa1, struct vmres_devmgr *m1,
			      const struct vmres_sysalloc *sa2, struct vmres_devmgr *m2)
{
	struct dumps a = dumps_of(sa1, m1), b = dumps_of(sa2, m2);

	assert_string_equal(a.sa_text, b.sa_text);
	assert_string_equal(a.sa_json, b.sa_json);
	assert_string_equal(a.m_text, b.m_text);
	assert_string_equal(a.m_json, b.m_json);
	dumps_free(&a);
	dumps_free(&b);
}

static void save(const struct vmres_sysalloc *sa, struct vmres_devmgr *m, uint8_t **buf,
		 size_t *len)
{
	void *p = NULL;

	assert_int_equal(vmres_snapshot_save(sa, m, &p, len), 0);
	*buf = p;
}

/* Restore must fail with @p code at @p offset, return nothing and leave nothing
 * behind (every bound device released). */
static void restore_fails(const uint8_t *buf, size_t len, int code, size_t offset)
{
	struct vmres_sysalloc *sa = (struct vmres_sysalloc *)&rnd_state;
	struct vmres_devmgr *m = (struct vmres_devmgr *)&rnd_state;
	struct vmres_snapshot_error e = {1, 1};
	struct bind_ctx c = {{0, 0}, 0, 0};
	int rc = vmres_snapshot_restore(buf, len, bind_fake, &c, &sa, &m, &e);

	if (rc != code || e.offset != offset)
		fail_msg("len %zu: got %s at %zu, want %s at %zu", len, vmres_errname(rc), e.offset,
			 vmres_errname(code), offset);
	assert_int_equal(e.code, code);
	assert_ptr_equal(sa, &rnd_state);
	assert_ptr_equal(m, &rnd_state);
	assert_int_equal(c.stats.created, c.stats.released);
}

/* Restore must succeed, and give back exactly the state of @p sa0 and @p m0. */
static void restore_matches(const uint8_t *buf, size_t len, const struct vmres_sysalloc *sa0,
			    struct vmres_devmgr *m0)
{
	struct vmres_snapshot_error e = {1, 1};
	struct bind_ctx c = {{0, 0}, 0, 0};
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;
	int rc = vmres_snapshot_restore(buf, len, bind_fake, &c, &sa, &m, &e);

	if (rc)
		fail_msg("restore: %s at %zu", vmres_errname(rc), e.offset);
	assert_int_equal(e.code, 0);
	assert_int_equal(e.offset, len);
	assert_same_state(sa0, m0, sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	assert_int_equal(c.stats.created, c.stats.released);
}

/* ---- round trips ---- */

struct check_bound {
	struct vmres_devmgr *m;
	int n;
};

static int check_bound_dev(void *ctx, const struct vmres_devmgr_info *info,
			   const struct vmres_resource *res, const bool *mapped)
{
	struct check_bound *c = ctx;
	const struct fake_dev *d = info->opaque;

	(void)mapped;
	assert_non_null(d);
	assert_int_equal(d->instance, info->instance);
	/* The rebuilt bus reaches the bound device at its mapped ranges. */
	for (size_t i = 0; i < info->n_res; i++) {
		uint32_t at;

		if (res[i].kind != VMRES_RES_ADDR || !mapped[i])
			continue;
		assert_int_equal(vmres_devmgr_find(c->m, res[i].u.addr.space, res[i].u.addr.base,
						   &at, NULL, NULL),
				 0);
		assert_int_equal(at, info->instance);
	}
	c->n++;
	return 0;
}

static void round_trip(const struct vmres_sysalloc *sa0, struct vmres_devmgr *m0)
{
	struct bind_ctx c = {{0, 0}, 0, 0};
	struct vmres_snapshot_error e;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;
	struct vmres_devmgr_stats st;
	struct check_bound cb;
	uint8_t *buf, *again;
	size_t len, len2;
	int rc;

	save(sa0, m0, &buf, &len);
	rc = vmres_snapshot_restore(buf, len, bind_fake, &c, &sa, &m, &e);
	if (rc)
		fail_msg("restore: %s at %zu", vmres_errname(rc), e.offset);
	assert_same_state(sa0, m0, sa, m);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	save(sa, m, &again, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	cb.m = m;
	cb.n = 0;
	assert_int_equal(vmres_devmgr_foreach(m, check_bound_dev, &cb), 0);
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(cb.n, (int)st.devices);
	assert_int_equal(c.stats.created, cb.n);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	assert_int_equal(c.stats.released, c.stats.created);
	free(buf);
	free(again);
}

static void test_random_states_round_trip_to_identical_dumps_and_bytes(void **state)
{
	uint32_t seed = 20261125;

	(void)state;
	printf("seed %u\n", seed);
	rnd_state = seed;
	for (int i = 0; i < 40; i++) {
		struct vmres_sysalloc *sa;
		struct vmres_devmgr *m;

		random_state(i % 4 != 3, &sa, &m);
		round_trip(sa, m);
		vmres_devmgr_free(m);
		vmres_sysalloc_free(sa);
	}
}

static void test_empty_objects_round_trip(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	round_trip(sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_restored_manager_keeps_ids_and_attachment(void **state)
{
	struct vmres_sysalloc *sa0, *sa;
	struct vmres_devmgr *m0, *m;
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len;
	uint32_t id0, id;

	(void)state;
	small_state(&sa0, &m0);
	save(sa0, m0, &buf, &len);
	assert_int_equal(vmres_snapshot_restore(buf, len, NULL, NULL, &sa, &m, &e), 0);
	/* The unplugged device's id 2 stays unused; both hand out the same next id. */
	assert_int_equal(vmres_devmgr_get(m, 2, NULL, NULL, NULL, 0), VMRES_EDEVICE);
	id0 = register_dev(m0, "new", 7, 0, NULL, 0);
	id = register_dev(m, "new", 7, 0, NULL, 0);
	assert_int_equal(id, id0);
	/* Attached: a guest move of the restored nic's BAR reserves in the new sysalloc. */
	assert_int_equal(vmres_devmgr_map_range(m, 3, 1), 0);
	assert_int_equal(vmres_devmgr_map_range(m0, 3, 1), 0);
	assert_same_state(sa0, m0, sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	vmres_devmgr_free(m0);
	vmres_sysalloc_free(sa0);
	free(buf);
}

static void test_next_id_above_the_highest_device_is_honoured(void **state)
{
	static const uint32_t next_ids[] = {9, 0x7fffffff, UINT32_MAX, 0};
	struct vmres_sysalloc *sa0, *sa;
	struct vmres_devmgr *m0, *m;
	struct vmres_snapshot_error e;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	uint8_t *buf;
	size_t len;
	uint32_t id0, id;

	(void)state;
	small_state(&sa0, &m0);
	/* The newest devices unplugged: the saved next id is the manager's own. */
	id0 = register_dev(m0, "newest", 7, 0, NULL, 0);
	assert_int_equal(vmres_devmgr_unregister(m0, id0), 0);
	save(sa0, m0, &buf, &len);
	assert_int_equal(rd32(buf + record(buf, len, DEVMGR, 0)), id0 + 1);
	assert_int_equal(vmres_snapshot_restore(buf, len, NULL, NULL, &sa, &m, &e), 0);
	assert_int_equal(register_dev(m, "new", 7, 0, NULL, 0), id0 + 1);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	/* Any next id above the devices, also far above (no placeholders are made)
	 * and 0 (exhausted). */
	for (size_t i = 0; i < sizeof(next_ids) / sizeof(next_ids[0]); i++) {
		wr32(buf + record(buf, len, DEVMGR, 0), next_ids[i]);
		resign(buf, len);
		assert_int_equal(vmres_snapshot_restore(buf, len, NULL, NULL, &sa, &m, &e), 0);
		assert_same_state(sa0, m0, sa, m);
		id = 0;
		assert_int_equal(vmres_devmgr_register(m, &dev, 0, NULL, 0, &id),
				 next_ids[i] ? 0 : VMRES_EFULL);
		assert_int_equal(id, next_ids[i]);
		vmres_devmgr_free(m);
		vmres_sysalloc_free(sa);
	}
	vmres_devmgr_free(m0);
	vmres_sysalloc_free(sa0);
	free(buf);
}

static void test_fd_round_trip(void **state)
{
	struct vmres_sysalloc *sa0, *sa = NULL;
	struct vmres_devmgr *m0, *m = NULL;
	struct vmres_snapshot_error e;
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	small_state(&sa0, &m0);
	assert_int_equal(vmres_snapshot_save_fd(sa0, m0, fileno(f)), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	assert_int_equal(vmres_snapshot_restore_fd(fileno(f), NULL, NULL, &sa, &m, &e), 0);
	assert_same_state(sa0, m0, sa, m);
	assert_int_equal(vmres_snapshot_save_fd(sa0, m0, -1), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_restore_fd(-1, NULL, NULL, &sa, &m, &e), VMRES_EINVAL);
	/* I/O errors: reading a directory, writing a read-only descriptor. */
	{
		int dir = open("/", O_RDONLY | O_DIRECTORY), ro = open("/dev/null", O_RDONLY);
		struct vmres_sysalloc *untouched = sa;

		assert_true(dir >= 0 && ro >= 0);
		assert_int_equal(vmres_snapshot_restore_fd(dir, NULL, NULL, &sa, &m, &e),
				 VMRES_ESYS);
		assert_int_equal(errno, EISDIR);
		assert_int_equal(e.code, VMRES_ESYS);
		assert_ptr_equal(sa, untouched);
		assert_int_equal(vmres_snapshot_save_fd(sa0, m0, ro), VMRES_ESYS);
		assert_int_equal(errno, EBADF);
		close(dir);
		close(ro);
	}
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	/* An empty file is a truncated snapshot. */
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	sa = NULL;
	assert_int_equal(vmres_snapshot_restore_fd(fileno(f), NULL, NULL, &sa, &m, &e),
			 VMRES_ETRUNC);
	assert_null(sa);
	fclose(f);
	vmres_devmgr_free(m0);
	vmres_sysalloc_free(sa0);
}

static void test_save_refuses_a_manager_attached_elsewhere(void **state)
{
	struct vmres_sysalloc *sa, *other;
	struct vmres_devmgr *m;
	void *buf = &rnd_state;
	size_t len = 77;

	(void)state;
	small_state(&sa, &m);
	assert_int_equal(vmres_sysalloc_new(&other), 0);
	assert_int_equal(vmres_snapshot_save(other, m, &buf, &len), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_save(sa, NULL, &buf, &len), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_save(NULL, m, &buf, &len), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_save(sa, m, NULL, &len), VMRES_EINVAL);
	assert_ptr_equal(buf, &rnd_state);
	assert_int_equal(len, 77);
	vmres_sysalloc_free(other);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

enum { SHARES = 10 };

/* Shares of shared lines are saved in their own REQUIRED section (a 1.2
 * reader refuses it rather than misread a line as exclusive), which a
 * snapshot without a share does not have. */
static void test_shared_lines_round_trip_in_their_own_required_section(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource res[2];
	struct vmres_request q = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
	uint8_t *buf;
	size_t len, sec;

	(void)state;
	small_state(&sa, &m);
	q.u.irq.shared = true;
	assert_int_equal(alloc_for(sa, &q, 1, 20, res, 2), 1);
	q.u.irq.any = false;
	q.u.irq.gsi = res[0].u.irq.gsi;
	assert_int_equal(alloc_for(sa, &q, 1, 21, res + 1, 1), 1);
	assert_true(res[0].u.irq.shared);
	assert_int_equal(vmres_sysalloc_set_label(sa, &res[1], 21, "intb"), 0);
	register_dev(m, "intx-a", 20, VMRES_DEVMGR_NO_PARENT, res, 1);
	save(sa, m, &buf, &len);
	assert_int_equal(rd32(buf + 8) >> 16, 3); /* format 1.3 */
	sec = section(buf, len, SHARES);
	assert_int_equal(rd32(buf + sec + 4), 1); /* REQUIRED */
	assert_int_equal(rd32(buf + sec + 16), 2);
	assert_int_equal(rd64(buf + record(buf, len, SHARES, 1) + 8), 21);
	assert_int_equal(buf[record(buf, len, RESOURCES, 8) + 2], 2); /* SHARED */
	free(buf);
	round_trip(sa, m);
	/* Without a share, no such section: what 1.2 wrote but the minor. */
	assert_int_equal(vmres_devmgr_unregister(m, 5), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 20), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sa, 21), 0);
	save(sa, m, &buf, &len);
	for (size_t pos = rd32(buf + 12); pos < len - 4; pos += 16 + (size_t)rd64(buf + pos + 8))
		assert_int_not_equal(rd32(buf + pos), SHARES);
	free(buf);
	round_trip(sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_save_refuses_a_resource_naming_no_pool(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource r;
	void *buf = &rnd_state;
	size_t len = 77;
	char *before, *after;

	(void)state;
	small_state(&sa, &m);
	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_IRQ;
	snprintf(r.pool, sizeof(r.pool), "gsi-msi"); /* an MSI pool */
	r.u.irq.gsi = 30;
	register_dev(m, "odd", 0, 0, &r, 1);
	assert_int_equal(vmres_devmgr_dump_str(m, &before), 0);
	assert_int_equal(vmres_snapshot_save(sa, m, &buf, &len), VMRES_EKIND);
	snprintf(r.pool, sizeof(r.pool), "nowhere");
	assert_int_equal(vmres_devmgr_update(m, 5, &r, 1), 0);
	assert_int_equal(vmres_snapshot_save(sa, m, &buf, &len), VMRES_EPOOL);
	assert_ptr_equal(buf, &rnd_state);
	assert_int_equal(len, 77);
	/* A failed save changed nothing. */
	snprintf(r.pool, sizeof(r.pool), "gsi-msi");
	assert_int_equal(vmres_devmgr_update(m, 5, &r, 1), 0);
	assert_int_equal(vmres_devmgr_dump_str(m, &after), 0);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* Without a pool name it is fine. */
	r.pool[0] = 0;
	assert_int_equal(vmres_devmgr_update(m, 5, &r, 1), 0);
	round_trip(sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- corruption classes ---- */

static void test_every_truncation_is_reported_where_the_input_ends(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	for (size_t l = 0; l < len; l++)
		restore_fails(buf, l, VMRES_ETRUNC, l);
	restore_matches(buf, len, sa, m);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_every_flipped_bit_is_caught(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			uint64_t total;

			buf[i] ^= (uint8_t)(1u << bit);
			total = rd64(buf + 16);
			if (i < 8)
				restore_fails(buf, len, VMRES_EMAGIC, 0);
			else if (i < 10)
				restore_fails(buf, len, VMRES_EVERSION, 8);
			else if (i >= 16 && i < 24 && total > len)
				restore_fails(buf, len, VMRES_ETRUNC, len);
			else if (i >= 16 && i < 24)
				restore_fails(buf, len, VMRES_ECORRUPT, 16);
			else
				restore_fails(buf, len, VMRES_ECHECKSUM, len - 4);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* Edit a saved small state with @p edit, re-sign it, and expect @p code at the
 * offset @p edit returns. */
static void corrupt(size_t (*edit)(uint8_t *buf, size_t len), int code)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint8_t *buf;
	size_t len, at;

	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	at = edit(buf, len);
	resign(buf, len);
	restore_fails(buf, len, code, at);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* Allocation records 1 and 2 lie in pool "pio" (dma1 0x00-0x1f, pic1 0x20-0x21). */
static size_t edit_overlapping_allocations(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, ALLOCS, 1);

	assert_int_equal(rd32(buf + r), 0);
	wr64(buf + r + 8, 0x10);
	return r + 8;
}

static size_t edit_allocation_past_its_pool(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, ALLOCS, 0);

	wr64(buf + r + 16, 0x10001); /* dma1 at 0: ends past port 0xffff */
	return r + 16;
}

/* Find the first allocation of the pool at index @p pool. */
static size_t alloc_in_pool(uint8_t *buf, size_t len, uint32_t pool)
{
	size_t s = section(buf, len, ALLOCS);

	for (size_t i = 0; i < rd32(buf + s + 16); i++) {
		size_t r = record(buf, len, ALLOCS, i);

		if (rd32(buf + r) == pool)
			return r;
	}
	fail_msg("no allocation in pool %u", pool);
	return 0;
}

static size_t edit_gsi_out_of_its_pool(uint8_t *buf, size_t len)
{
	size_t r = alloc_in_pool(buf, len, 3); /* gsi-legacy [0, 23] */

	wr64(buf + r + 8, 24);
	return r + 8;
}

static size_t edit_id_out_of_its_pool(uint8_t *buf, size_t len)
{
	size_t r = alloc_in_pool(buf, len, 5); /* device-id [0, 0xffffffff] */

	wr64(buf + r + 8, 0x100000000ull);
	return r + 8;
}

static size_t edit_unknown_allocation_pool(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, ALLOCS, 3);

	wr32(buf + r, 6);
	return r;
}

static size_t edit_unknown_parent(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 1); /* virtio-net0, child of 1 */

	wr32(buf + r + 4, 2); /* the unplugged device */
	return r + 4;
}

static size_t edit_parent_cycle(uint8_t *buf, size_t len)
{
	size_t host = record(buf, len, DEVICES, 0), nic = record(buf, len, DEVICES, 1);

	/* host's parent is nic, nic's parent host: the first names a younger device. */
	assert_int_equal(rd32(buf + nic + 4), rd32(buf + host));
	wr32(buf + host + 4, rd32(buf + nic));
	return host + 4;
}

static size_t edit_self_parent(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 2);

	wr32(buf + r + 4, rd32(buf + r));
	return r + 4;
}

static size_t edit_devices_out_of_order(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 2);

	wr32(buf + r, 1);
	return r;
}

static size_t edit_overlapping_mapped_ranges(uint8_t *buf, size_t len)
{
	size_t host = record(buf, len, RESOURCES, 0), nic = record(buf, len, RESOURCES, 1);

	/* The nic's BAR 0 (mapped) moves onto the host's window (mapped). */
	assert_int_equal(buf[host + 2], 1);
	assert_int_equal(buf[nic + 2], 1);
	memcpy(buf + nic + 8, buf + host + 8, 24); /* same pool: mmio64 */
	wr64(buf + nic + 32, rd64(buf + host + 32) + 0x1000);
	return nic + 32;
}

static size_t edit_resource_naming_no_pool(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, RESOURCES, 3); /* an msi of the nic */

	assert_int_equal(buf[r], VMRES_RES_MSI);
	memcpy(buf + r + 8, "gsi-legacy", 11); /* a pool of another kind */
	return r + 8;
}

static size_t edit_mapped_msi(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, RESOURCES, 3);

	buf[r + 2] = 1;
	return r + 2;
}

static size_t edit_resource_count(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 2);

	wr32(buf + r + 16, rd32(buf + r + 16) + 1);
	return section(buf, len, RESOURCES) + 16;
}

static size_t edit_overlapping_pool_windows(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, POOLS, 2); /* mmio64 */

	wr64(buf + r + 32, 0xf0000000); /* into mmio32 [0xc0000000, 0xffffffff] */
	return r + 32;
}

static size_t edit_duplicate_pool_name(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, POOLS, 4);

	memcpy(buf + r, "pio\0\0\0\0\0\0\0\0", 10);
	return r;
}

static size_t edit_unterminated_name(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 0);

	memset(buf + r + 24, 'x', 32);
	return r + 24;
}

static size_t edit_bad_kind(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, RESOURCES, 4);

	buf[r] = 9;
	return r;
}

static size_t edit_short_record_size(uint8_t *buf, size_t len)
{
	size_t s = section(buf, len, OWNERS);

	wr32(buf + s + 20, 8);
	return s + 20;
}

static size_t edit_section_repeated(uint8_t *buf, size_t len)
{
	size_t s = section(buf, len, OWNERS);

	wr32(buf + s, POOLS);
	return s;
}

static size_t edit_section_too_long(uint8_t *buf, size_t len)
{
	size_t s = section(buf, len, RESOURCES);

	wr64(buf + s + 8, rd64(buf + s + 8) + 1);
	return s;
}

static size_t edit_next_id_below_a_device(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVMGR, 0);

	wr32(buf + r, 3);
	return r;
}

static size_t edit_bad_version(uint8_t *buf, size_t len)
{
	(void)len;
	buf[8] = 2;
	return 8;
}

static size_t edit_bad_magic(uint8_t *buf, size_t len)
{
	(void)len;
	buf[3] = 'X';
	return 0;
}

static size_t edit_trailing_bytes_claimed(uint8_t *buf, size_t len)
{
	wr64(buf + 16, len - 1);
	return 16;
}

static void test_semantic_corruptions_are_reported_at_their_field(void **state)
{
	(void)state;
	corrupt(edit_overlapping_allocations, VMRES_ECORRUPT);
	corrupt(edit_allocation_past_its_pool, VMRES_ECORRUPT);
	corrupt(edit_gsi_out_of_its_pool, VMRES_ECORRUPT);
	corrupt(edit_id_out_of_its_pool, VMRES_ECORRUPT);
	corrupt(edit_unknown_allocation_pool, VMRES_ECORRUPT);
	corrupt(edit_unknown_parent, VMRES_ECORRUPT);
	corrupt(edit_parent_cycle, VMRES_ECORRUPT);
	corrupt(edit_self_parent, VMRES_ECORRUPT);
	corrupt(edit_devices_out_of_order, VMRES_ECORRUPT);
	corrupt(edit_overlapping_mapped_ranges, VMRES_ECORRUPT);
	corrupt(edit_resource_naming_no_pool, VMRES_ECORRUPT);
	corrupt(edit_mapped_msi, VMRES_ECORRUPT);
	corrupt(edit_resource_count, VMRES_ECORRUPT);
	corrupt(edit_overlapping_pool_windows, VMRES_ECORRUPT);
	corrupt(edit_duplicate_pool_name, VMRES_ECORRUPT);
	corrupt(edit_unterminated_name, VMRES_ECORRUPT);
	corrupt(edit_bad_kind, VMRES_ECORRUPT);
	corrupt(edit_short_record_size, VMRES_ECORRUPT);
	corrupt(edit_section_repeated, VMRES_ECORRUPT);
	corrupt(edit_section_too_long, VMRES_ETRUNC);
	corrupt(edit_next_id_below_a_device, VMRES_ECORRUPT);
	corrupt(edit_bad_version, VMRES_EVERSION);
	corrupt(edit_bad_magic, VMRES_EMAGIC);
	corrupt(edit_trailing_bytes_claimed, VMRES_ECORRUPT);
}

/* Names the API refuses (not UTF-8, control characters) are refused on restore
 * too, at the name's field: a pool, an owner, a label, a device, a resource's pool. */
static size_t edit_pool_name_not_utf8(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, POOLS, 0); /* "pio" */

	buf[r + 1] = 0xff;
	return r;
}

static size_t edit_owner_name_control_char(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, OWNERS, 0); /* owner 1, "pci-host" */

	buf[r + 8 + 3] = '\n';
	return r + 8;
}

static size_t edit_label_control_char(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, ALLOCS, 0); /* platform's dma1 */

	assert_int_not_equal(buf[r + 40], 0);
	buf[r + 40] = 0x7f;
	return r + 40;
}

static size_t edit_device_name_overlong(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, DEVICES, 0); /* "pci-host" */

	memcpy(buf + r + 24, "\xc0\xaf", 2);
	return r + 24;
}

static size_t edit_resource_pool_surrogate(uint8_t *buf, size_t len)
{
	size_t r = record(buf, len, RESOURCES, 0); /* in "mmio64" */

	memcpy(buf + r + 8 + 4, "\xed\xa0\x80", 3);
	return r + 8;
}

static void test_names_that_are_not_text_are_refused_at_their_field(void **state)
{
	(void)state;
	corrupt(edit_pool_name_not_utf8, VMRES_ECORRUPT);
	corrupt(edit_owner_name_control_char, VMRES_ECORRUPT);
	corrupt(edit_label_control_char, VMRES_ECORRUPT);
	corrupt(edit_device_name_overlong, VMRES_ECORRUPT);
	corrupt(edit_resource_pool_surrogate, VMRES_ECORRUPT);
}

/* ---- compatibility rule ---- */

/* @p buf with a section of @p kind / @p flags / @p body inserted before the crc. */
static uint8_t *with_section(const uint8_t *buf, size_t len, uint32_t kind, uint32_t flags,
			     size_t body, size_t *new_len)
{
	uint8_t *out = calloc(1, len + 16 + body);

	assert_non_null(out);
	memcpy(out, buf, len - 4);
	wr32(out + len - 4, kind);
	wr32(out + len, flags);
	wr64(out + len + 4, body);
	*new_len = len + 16 + body;
	wr64(out + 16, *new_len);
	resign(out, *new_len);
	return out;
}

static void test_unknown_sections_are_skipped_unless_required(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint8_t *buf, *ext;
	size_t len, ext_len;

	(void)state;
	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	ext = with_section(buf, len, 99, 0, 40, &ext_len);
	restore_matches(ext, ext_len, sa, m);
	free(ext);
	ext = with_section(buf, len, 99, 1, 40, &ext_len);
	restore_fails(ext, ext_len, VMRES_EVERSION, len - 4);
	free(ext);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* A newer minor version: a larger header, and longer records (new fields at the
 * end) in every section. Rebuilt here record by record. */
static uint8_t *as_newer_minor(const uint8_t *buf, size_t len, size_t *new_len)
{
	size_t cap = 2 * len + 64, o = 0, pos = rd32(buf + 12);
	uint8_t *out = calloc(1, cap);

	assert_non_null(out);
	memcpy(out, buf, 32);
	out[10] = 9; /* minor 9 */
	wr32(out + 12, 40);
	o = 40;
	while (pos < len - 4) {
		uint64_t slen = rd64(buf + pos + 8);
		uint32_t n = rd32(buf + pos + 16), size = rd32(buf + pos + 20);

		memcpy(out + o, buf + pos, 24);
		wr32(out + o + 20, size + 8);
		wr64(out + o + 8, 8 + (uint64_t)n * (size + 8));
		for (uint32_t i = 0; i < n; i++) {
			memcpy(out + o + 24 + (size_t)i * (size + 8),
			       buf + pos + 24 + (size_t)i * size, size);
			memset(out + o + 24 + (size_t)i * (size + 8) + size, 0xa5, 8);
		}
		o += 24 + (size_t)n * (size + 8);
		pos += 16 + (size_t)slen;
	}
	*new_len = o + 4;
	assert_true(*new_len <= cap);
	wr64(out + 16, *new_len);
	resign(out, *new_len);
	return out;
}

static void test_newer_minor_with_longer_records_restores(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint8_t *buf, *newer;
	size_t len, new_len;

	(void)state;
	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	newer = as_newer_minor(buf, len, &new_len);
	restore_matches(newer, new_len, sa, m);
	/* ... but not a newer major version. */
	newer[8] = 2;
	restore_fails(newer, new_len, VMRES_EVERSION, 8);
	free(newer);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- unmapped ranges anywhere, bind failures, arguments ---- */

static void test_unmapped_range_under_an_older_mapped_one_restores(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource r[2];
	uint32_t a, b;

	(void)state;
	assert_int_equal(vmres_sysalloc_new(&sa), 0);
	assert_int_equal(vmres_devmgr_new(NULL, &m), 0);
	memset(r, 0, sizeof(r));
	r[0].kind = r[1].kind = VMRES_RES_ADDR;
	r[0].u.addr.space = r[1].u.addr.space = VMRES_SPACE_MMIO;
	r[0].u.addr.base = 0x1000;
	r[1].u.addr.base = 0x8000;
	r[0].u.addr.size = r[1].u.addr.size = 0x1000;
	a = register_dev(m, "a", 0, 0, &r[0], 1);
	b = register_dev(m, "b", 0, 0, &r[1], 1);
	assert_int_equal(vmres_devmgr_unmap_range(m, b, 0), 0);
	/* b's disabled BAR now points at a's range, a being older (vmres 0.1 refused
	 * this with VMRES_ENOTSUP). */
	assert_int_equal(vmres_devmgr_move_range(m, b, 0, 0x1000), 0);
	round_trip(sa, m);
	/* The other way round (the older device's BAR disabled) restores. */
	assert_int_equal(vmres_devmgr_move_range(m, b, 0, 0x8000), 0);
	assert_int_equal(vmres_devmgr_map_range(m, b, 0), 0);
	assert_int_equal(vmres_devmgr_unmap_range(m, a, 0), 0);
	assert_int_equal(vmres_devmgr_move_range(m, a, 0, 0x8000), 0);
	round_trip(sa, m);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* An unmapped range over another range of its own device (a resource without
 * a pool: only its bus knows it), and one whose reservation the VMM gave back
 * while it was unmapped and another owner then took. */
static void test_unmapped_range_over_its_device_or_taken_in_its_pool_restores(void **state)
{
	struct vmres_sysalloc *sa, *sa2;
	struct vmres_devmgr *m, *m2;
	struct vmres_snapshot_error e;
	struct vmres_resource res[3], taker;
	struct vmres_request q[3];
	uint32_t dev;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	for (int i = 0; i < 3; i++)
		q[i] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	assert_int_equal(alloc_for(sa, q, 3, 5, res, 3), 3);
	res[1].pool[0] = '\0';
	dev = register_dev(m, "three-bars", 5, 0, res, 3);
	assert_int_equal(vmres_devmgr_unmap_range(m, dev, 1), 0);
	assert_int_equal(vmres_devmgr_move_range(m, dev, 1, res[0].u.addr.base), 0);
	round_trip(sa, m);
	/* The VMM gives BAR 2's reservation back while it is off; another owner
	 * takes that range. */
	assert_int_equal(vmres_devmgr_unmap_range(m, dev, 2), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &res[2], 5), 0);
	q[0].u.addr.req.policy = VMRES_ADDR_EXACT;
	q[0].u.addr.req.addr = res[2].u.addr.base;
	assert_int_equal(alloc_for(sa, q, 1, 6, &taker, 1), 1);
	round_trip(sa, m);
	/* Restored, the range cannot be mapped until the other owner lets go. */
	save(sa, m, &buf, &len);
	assert_int_equal(vmres_snapshot_restore(buf, len, NULL, NULL, &sa2, &m2, &e), 0);
	assert_int_equal(vmres_devmgr_map_range(m2, dev, 2), VMRES_EOVERLAP);
	assert_int_equal(vmres_sysalloc_release(sa2, &taker, 6), 0);
	assert_int_equal(vmres_devmgr_map_range(m2, dev, 2), 0);
	assert_int_equal(vmres_sysalloc_validate(sa2), 0);
	vmres_devmgr_free(m2);
	vmres_sysalloc_free(sa2);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_failing_bind_releases_every_bound_device(void **state)
{
	struct vmres_sysalloc *sa, *sa2 = NULL;
	struct vmres_devmgr *m, *m2 = NULL;
	struct bind_ctx c = {{0, 0}, 3, 0};
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len;

	(void)state;
	small_state(&sa, &m);
	save(sa, m, &buf, &len);
	assert_int_equal(vmres_snapshot_restore(buf, len, bind_fake, &c, &sa2, &m2, &e),
			 VMRES_ENOMEM);
	assert_int_equal(e.code, VMRES_ENOMEM);
	assert_int_equal(e.offset, record(buf, len, DEVICES, 2));
	assert_null(sa2);
	assert_null(m2);
	assert_int_equal(c.stats.created, 2);
	assert_int_equal(c.stats.released, 2);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

static void test_restore_checks_its_arguments(void **state)
{
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;

	(void)state;
	assert_int_equal(vmres_snapshot_restore(NULL, 4, NULL, NULL, &sa, &m, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_restore("x", 1, NULL, NULL, NULL, &m, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_restore("x", 1, NULL, NULL, &sa, NULL, NULL), VMRES_EINVAL);
	restore_fails(NULL, 0, VMRES_ETRUNC, 0);
	restore_fails((const uint8_t *)"VMRESNAQ", 8, VMRES_EMAGIC, 0);
	restore_fails((const uint8_t *)"VMR", 3, VMRES_ETRUNC, 3);
	assert_null(sa);
	assert_null(m);
}

static void test_find_device_by_name_walks_duplicates(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint32_t id = 0, dup;

	(void)state;
	small_state(&sa, &m);
	dup = register_dev(m, "virtio-net0", 0, 0, NULL, 0);
	assert_int_equal(vmres_snapshot_find_device(m, "virtio-net0", 0, &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(vmres_snapshot_find_device(m, "virtio-net0", id, &id), 0);
	assert_int_equal(id, dup);
	assert_int_equal(vmres_snapshot_find_device(m, "virtio-net0", id, &id), VMRES_EDEVICE);
	assert_int_equal(id, dup);
	assert_int_equal(vmres_snapshot_find_device(m, "", 0, &id), 0);
	assert_int_equal(id, 4);
	assert_int_equal(vmres_snapshot_find_device(m, "nope", 0, &id), VMRES_EDEVICE);
	assert_int_equal(vmres_snapshot_find_device(NULL, "x", 0, &id), VMRES_EINVAL);
	assert_int_equal(vmres_snapshot_find_device(m, NULL, 0, &id), VMRES_EINVAL);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* ---- the committed snapshots of older formats (tests/data/) ---- */

/* A file of tests/data/ (meson passes the folder as VMRES_TEST_DATA), whole. */
static uint8_t *read_test_data(const char *name, size_t *len)
{
	const char *dir = getenv("VMRES_TEST_DATA");
	char path[4096];
	uint8_t *buf;
	FILE *f;
	long size;

	if (!dir)
		fail_msg("VMRES_TEST_DATA is not set: run through 'meson test', or set it to the "
			 "source tree's tests/data");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = 0;
	fclose(f);
	*len = (size_t)size;
	return buf;
}

/* Fail at the first line where @got differs from @want (less noise than the
 * whole 10 KiB texts). */
static void assert_same_text(const char *got, const char *want, const char *what)
{
	int line = 1;

	for (size_t i = 0; got[i] || want[i]; i++) {
		if (got[i] != want[i]) {
			const char *g = got + i, *w = want + i;

			while (g > got && g[-1] != '\n')
				g--, w--;
			fail_msg("%s differs at line %d:\n  got:  %.*s\n  want: %.*s", what, line,
				 (int)strcspn(g, "\n"), g, (int)strcspn(w, "\n"), w);
		}
		if (got[i] == '\n')
			line++;
	}
}

/* Records the bind calls: one per device, in id order, parents first. */
struct bind_order {
	struct bind_ctx fake;
	uint32_t last;
	int calls;
};

static int bind_in_order(void *ctx, const struct vmres_devmgr_info *entry,
			 const struct vmres_resource *res, const bool *mapped,
			 struct vmres_device *dev)
{
	struct bind_order *o = ctx;

	assert_true(entry->instance > o->last);
	assert_true(entry->parent < entry->instance);
	o->last = entry->instance;
	o->calls++;
	return bind_fake(&o->fake, entry, res, mapped, dev);
}

/* Restore tests/data/@name (written by an older vmres; see
 * tests/tools/gen_snapshot_fixture.c) and check it against @name's .dump. */
static void restore_committed(const char *name, const char *dump_name, struct bind_order *o,
			      struct vmres_sysalloc **sa, struct vmres_devmgr **m)
{
	struct vmres_snapshot_error e = {1, 1};
	uint8_t *buf;
	char *want, *got;
	size_t len, dump_len;
	int rc;

	buf = read_test_data(name, &len);
	want = (char *)read_test_data(dump_name, &dump_len);
	rc = vmres_snapshot_restore(buf, len, bind_in_order, o, sa, m, &e);
	if (rc)
		fail_msg("%s: %s at byte %zu", name, vmres_errname(rc), e.offset);
	assert_int_equal(e.offset, len);
	assert_int_equal(vmres_sysalloc_validate(*sa), 0);
	got = fixture_describe_str(*sa, *m);
	assert_non_null(got);
	assert_same_text(got, want, dump_name);
	free(got);
	free(want);
	free(buf);
}

static void test_committed_v1_snapshot_restores_to_its_recorded_state(void **state)
{
	struct bind_order o = {{{0, 0}, 0, 0}, 0, 0};
	struct vmres_sysalloc *sa = NULL, *sa2 = NULL;
	struct vmres_devmgr *m = NULL, *m2 = NULL;
	struct vmres_devmgr_stats st;
	struct vmres_snapshot_error e;
	uint8_t *buf, *saved;
	size_t len, saved_len;
	char *a, *b;

	(void)state;
	/* It is what it claims: format 1.0, whole. */
	buf = read_test_data("snapshot-v1.bin", &len);
	assert_true(len < 8192);
	assert_memory_equal(buf, VMRES_SNAPSHOT_MAGIC, 8);
	assert_int_equal(buf[8] | buf[9] << 8, 1);
	assert_int_equal(buf[10] | buf[11] << 8, 0);
	assert_int_equal(rd64(buf + 16), len);
	free(buf);

	restore_committed("snapshot-v1.bin", "snapshot-v1.dump", &o, &sa, &m);
	assert_int_equal(vmres_devmgr_stats(m, &st), 0);
	assert_int_equal(st.devices, 8);
	assert_int_equal(o.calls, 8);
	assert_int_equal(o.fake.stats.created, 8);

	/* Saved again by this vmres (in its own format), it restores the same. */
	save(sa, m, &saved, &saved_len);
	assert_int_equal(vmres_snapshot_restore(saved, saved_len, NULL, NULL, &sa2, &m2, &e), 0);
	a = fixture_describe_str(sa, m);
	b = fixture_describe_str(sa2, m2);
	assert_non_null(a);
	assert_non_null(b);
	assert_same_text(b, a, "the state saved again and restored");
	free(a);
	free(b);
	free(saved);
	vmres_devmgr_free(m2);
	vmres_sysalloc_free(sa2);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	assert_int_equal(o.fake.stats.released, 8);
}

/* The restored v1 manager goes on as the saved one would have: ids after the
 * saved next id, reservations of mapped ranges held for their owners, unmapped
 * ranges reserved again when mapped. Indices are those of snapshot-v1.dump. */
static void test_committed_v1_snapshot_restores_a_working_manager(void **state)
{
	struct bind_order o = {{{0, 0}, 0, 0}, 0, 0};
	struct vmres_sysalloc_alloc_info ai;
	struct vmres_sysalloc *sa = NULL;
	struct vmres_devmgr *m = NULL;
	uint32_t id, at;

	(void)state;
	restore_committed("snapshot-v1.bin", "snapshot-v1.dump", &o, &sa, &m);
	id = register_dev(m, "new", 0x40, VMRES_DEVMGR_NO_PARENT, NULL, 0);
	assert_int_equal(id, 11);
	/* virtio-net0's BAR 0, moved by the guest to 0xd0000000: held for its owner,
	 * and kept when unmapped (one owner per address). */
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &ai), 0);
	assert_int_equal(ai.owner, 0x10);
	assert_string_equal(ai.label, "bar1");
	assert_int_equal(vmres_devmgr_unmap_range(m, 2, 0), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd0000000, &ai), 0);
	assert_int_equal(ai.owner, 0x10);
	/* nvme0-vf0's BAR, unmapped and moved there in the 1.0 snapshot (which left
	 * unmapped ranges unreserved): refused while virtio-net0 holds the range,
	 * reserved when mapped once the VMM gave that back. */
	assert_int_equal(vmres_devmgr_map_range(m, 5, 0), VMRES_EOVERLAP);
	struct vmres_resource net_bar;
	struct vmres_devmgr_info info;

	assert_int_equal(vmres_devmgr_get(m, 2, &info, &net_bar, NULL, 1), 0);
	assert_int_equal(vmres_sysalloc_release(sa, &net_bar, 0x10), 0);
	assert_int_equal(vmres_devmgr_map_range(m, 5, 0), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xd000ffff, &ai), 0);
	assert_int_equal(ai.owner, 0x13);
	assert_int_equal(vmres_devmgr_find(m, VMRES_SPACE_MMIO, 0xd0000000, &at, NULL, NULL), 0);
	assert_int_equal(at, 5);
	/* virtio-blk0's unmapped BAR comes back where it was. */
	assert_int_equal(vmres_devmgr_map_range(m, 3, 1), 0);
	assert_int_equal(vmres_sysalloc_find(sa, "mmio32", 0xffdfff00, &ai), 0);
	assert_int_equal(ai.owner, 0x11);
	/* The unplugged devices' ids stay used; a parent with children stays. */
	assert_int_equal(vmres_devmgr_get(m, 6, NULL, NULL, NULL, 0), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_get(m, 10, NULL, NULL, NULL, 0), VMRES_EDEVICE);
	assert_int_equal(vmres_devmgr_unregister(m, 4), VMRES_EPARENT);
	assert_int_equal(vmres_sysalloc_validate(sa), 0);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	assert_int_equal(o.fake.stats.released, o.fake.stats.created);
}

/* ---- a machine: PCI functions and an interrupt manager (format 1.1) ---- */

enum { PCI_FUNCS = 7, IRQ = 8, N_FN = 3 };

struct deliveries {
	int n;
	uint32_t gsi[16];
	struct vmres_msi_msg msg[16];
	enum vmres_irq_signal sig[16];
};

static void record_delivery(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			    const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct deliveries *d = ctx;

	if (d->n == 16)
		return;
	d->gsi[d->n] = gsi;
	d->msg[d->n] = kind == VMRES_IRQ_MSI ? *msg : (struct vmres_msi_msg){0, 0, 0};
	d->sig[d->n++] = signal;
}

struct machine {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_irq_mgr *irq;
	struct deliveries dl;
	struct vmres_pci_func *fn[N_FN];
	struct vmres_irq_group *grp[N_FN];
	uint32_t id[N_FN];
	bool use_sources;  /* restore: hand the MSI sources to the functions in bind */
	bool incompatible; /* restore: function 1 made with one BAR less */
};

static const char *const fn_names[N_FN] = {"nic", "gpu", "serial"};

/* Function @p i's config; @p res_out its resources' requests (n returned). */
static struct vmres_pci_func_config fn_config(int i, struct vmres_request *q, size_t *nq)
{
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;

	c.vendor_id = 0x1af4;
	c.device_id = (uint16_t)(0x1000 + i);
	c.class_code = 0x020000;
	c.interrupt_pin = 1;
	switch (i) {
	case 0: /* MEM32, MEM64, IO, MSI x4 maskable */
		c.bars[0] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM32, false, 0x1000, 0, 0};
		c.bars[2] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM64, true, 0x100000, 0, 1};
		c.bars[4] = (struct vmres_pci_bar){VMRES_PCI_BAR_IO, false, 0x20, 0, 2};
		c.msi = (struct vmres_pci_msi){4, true, true, 0, 3};
		q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
		q[1] = rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000);
		q[2] = rq_addr("pio", VMRES_SPACE_PIO, 0x20, 0x20);
		q[3] = rq_num(VMRES_RES_MSI, "gsi-msi", 4);
		*nq = 4;
		break;
	case 1: /* MEM32, MEM64 (probed), MSI x1 */
		c.bars[0] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM32, false, 0x1000, 0, 0};
		c.bars[1] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM64, false, 0x4000, 0, 1};
		c.msi = (struct vmres_pci_msi){1, false, false, 0x50, 2};
		q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
		q[1] = rq_addr("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000);
		q[2] = rq_num(VMRES_RES_MSI, "gsi-msi", 1);
		*nq = 3;
		break;
	default: /* MEM32, a legacy line, a device byte */
		c.bars[0] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM32, false, 0x100, 0, 0};
		q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x100, 0x100);
		q[1] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
		*nq = 2;
		break;
	}
	return c;
}

/* The function, its device bytes, and its interrupt sources. */
static void make_function(struct machine *mc, int i, const struct vmres_resource *res, size_t n)
{
	struct vmres_request q[4];
	struct vmres_pci_func_config c;
	size_t nq, first_irq;
	struct vmres_irq_src *srcs[4];

	c = fn_config(i, q, &nq);
	if (i == 1 && mc->incompatible)
		c.bars[1].kind = VMRES_PCI_BAR_NONE;
	assert_int_equal(vmres_pci_func_new(&c, &mc->fn[i]), 0);
	if (i == 2)
		assert_int_equal(vmres_pci_func_define(mc->fn[i], 0x60, 1, 0x30, 0x0f), 0);
	first_irq = i == 0 ? 3 : i == 1 ? 2 : 1;
	assert_int_equal(vmres_irq_group_new(mc->irq, res + first_irq, n - first_irq, &mc->grp[i]),
			 0);
	if (i < 2 && mc->use_sources) {
		for (unsigned int v = 0; v < n - first_irq; v++)
			assert_int_equal(vmres_irq_group_src(mc->grp[i], v, &srcs[v]), 0);
		assert_int_equal(vmres_pci_func_set_msi_sources(mc->fn[i], srcs,
								(unsigned int)(n - first_irq)),
				 0);
	}
}

static void machine_new(struct machine *mc)
{
	struct vmres_irq_backend *be;

	memset(mc, 0, sizeof(*mc));
	mc->use_sources = true;
	assert_int_equal(vmres_sysalloc_new_x86_64(&mc->sa), 0);
	assert_int_equal(vmres_devmgr_new(mc->sa, &mc->m), 0);
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &mc->dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &mc->irq), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(mc->m, vmres_irq_mgr_msi_notify, mc->irq),
			 0);
	for (int i = 0; i < N_FN; i++) {
		struct vmres_resource res[8];
		struct vmres_request q[4];
		size_t nq, n;

		(void)fn_config(i, q, &nq);
		n = alloc_for(mc->sa, q, nq, 100 + (uint64_t)i, res, 8);
		assert_int_equal(n, i == 0 ? 7 : i == 1 ? 3 : 2);
		mc->id[i] = register_dev(mc->m, fn_names[i], 100 + (uint64_t)i,
					 VMRES_DEVMGR_NO_PARENT, res, n);
		make_function(mc, i, res, n);
		assert_int_equal(vmres_pci_func_bind(mc->fn[i], mc->m, mc->id[i]), 0);
	}
}

static void machine_free(struct machine *mc)
{
	for (int i = 0; i < N_FN; i++) {
		vmres_pci_func_free(mc->fn[i]);
		vmres_irq_group_free(mc->grp[i]);
	}
	vmres_irq_mgr_free(mc->irq);
	vmres_devmgr_free(mc->m);
	vmres_sysalloc_free(mc->sa);
}

static void cfg_write(struct vmres_pci_func *f, unsigned int off, unsigned int size, uint32_t v)
{
	assert_int_equal(vmres_pci_func_config_write(f, off, size, v), 0);
}

static uint32_t cfg_read(struct vmres_pci_func *f, unsigned int off)
{
	uint32_t v = 0;

	assert_int_equal(vmres_pci_func_config_read(f, off, 4, &v), 0);
	return v;
}

/* What a guest leaves behind mid-flight. */
static void program_guest(struct machine *mc)
{
	struct vmres_pci_func *nic = mc->fn[0], *gpu = mc->fn[1], *ser = mc->fn[2];
	struct vmres_pci_bar_state b;
	struct vmres_irq_src *src;

	/* nic: decode on, BAR0 moved, a refused high half pending on BAR2,
	 * MSI with 4 vectors, 1 and 3 masked, 1 pending. */
	cfg_write(nic, VMRES_PCI_COMMAND, 2, 0x7);
	cfg_write(nic, VMRES_PCI_BAR_OFFSET(0), 4, 0xd0000000);
	cfg_write(nic, VMRES_PCI_BAR_OFFSET(3), 4, 0x20);
	assert_int_equal(vmres_pci_func_bar_get(nic, 2, &b), 0);
	assert_true(b.half_pending);
	cfg_write(nic, 0x40 + 4, 4, 0xfee01000);
	cfg_write(nic, 0x40 + 8, 4, 0);
	cfg_write(nic, 0x40 + 0xc, 2, 0x4040);
	cfg_write(nic, 0x40 + 0x10, 4, 0xa);
	cfg_write(nic, 0x40 + 2, 2, VMRES_PCI_MSI_CTRL_ENABLE | 2u << VMRES_PCI_MSI_CTRL_MME_SHIFT);
	assert_int_equal(vmres_irq_group_src(mc->grp[0], 1, &src), 0);
	assert_int_equal(vmres_irq_src_trigger(src), 0);
	/* gpu: BAR0 moved while decode is off, BAR1 being sized, MSI on. */
	cfg_write(gpu, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY);
	cfg_write(gpu, VMRES_PCI_COMMAND, 2, 0);
	cfg_write(gpu, VMRES_PCI_BAR_OFFSET(0), 4, 0xd0100000);
	cfg_write(gpu, VMRES_PCI_BAR_OFFSET(1), 4, 0xffffffff);
	cfg_write(gpu, 0x50 + 4, 4, 0xfee02000);
	cfg_write(gpu, 0x50 + 8, 2, 0x4051);
	cfg_write(gpu, 0x50 + 2, 2, VMRES_PCI_MSI_CTRL_ENABLE);
	/* serial: decode on, firmware's line and cache line size, a device byte,
	 * its level line raised. */
	cfg_write(ser, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY);
	cfg_write(ser, VMRES_PCI_INT_LINE, 1, 0x0b);
	cfg_write(ser, 0x0c, 1, 0x10);
	cfg_write(ser, 0x60, 1, 0xff);
	assert_int_equal(vmres_irq_group_src(mc->grp[2], 0, &src), 0);
	assert_int_equal(vmres_irq_src_configure(
				 src, &(struct vmres_irq_config){.kind = VMRES_IRQ_LEGACY,
								 .trigger = VMRES_IRQ_LEVEL}),
			 0);
	assert_int_equal(vmres_irq_src_enable(src), 0);
	assert_int_equal(vmres_irq_src_trigger(src), 0);
	mc->dl.n = 0;
}

static void save_machine(struct machine *mc, uint8_t **buf, size_t *len)
{
	struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
	void *p = NULL;

	o.pci_funcs = mc->fn;
	o.n_pci_funcs = N_FN;
	o.irq = mc->irq;
	assert_int_equal(vmres_snapshot_save_ex(mc->sa, mc->m, &o, &p, len), 0);
	*buf = p;
}

/* The restoring VMM: its bind callback re-creates each function and its
 * interrupt sources from the saved resources. */
static int bind_machine(void *ctx, const struct vmres_devmgr_info *entry,
			const struct vmres_resource *res, const bool *mapped,
			struct vmres_device *dev)
{
	struct machine *mc = ctx;

	(void)mapped, (void)dev;
	for (int i = 0; i < N_FN; i++) {
		if (strcmp(entry->name, fn_names[i]) == 0) {
			mc->id[i] = entry->instance;
			make_function(mc, i, res, entry->n_res);
		}
	}
	return 0;
}

static struct vmres_pci_func *machine_func(void *ctx, uint32_t instance)
{
	struct machine *mc = ctx;

	for (int i = 0; i < N_FN; i++)
		if (mc->id[i] == instance)
			return mc->fn[i];
	return NULL;
}

static int machine_restore(struct machine *mc, const uint8_t *buf, size_t len,
			   struct vmres_snapshot_error *e)
{
	struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
	struct vmres_irq_backend *be;
	bool use_sources = mc->use_sources, incompatible = mc->incompatible;

	memset(mc, 0, sizeof(*mc));
	mc->use_sources = use_sources;
	mc->incompatible = incompatible;
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &mc->dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &mc->irq), 0);
	o.pci_func = machine_func;
	o.pci_ctx = mc;
	o.irq = mc->irq;
	return vmres_snapshot_restore_ex(buf, len, bind_machine, mc, &o, &mc->sa, &mc->m, e);
}

/* Every guest-visible byte, BAR and MSI state, the irq sources, the dumps. */
static void assert_same_machine(struct machine *a, struct machine *b)
{
	for (int i = 0; i < N_FN; i++) {
		struct vmres_pci_msi_state ma, mb;
		int ra, rb;

		for (unsigned int off = 0; off < VMRES_PCI_CONFIG_SIZE; off += 4)
			if (cfg_read(a->fn[i], off) != cfg_read(b->fn[i], off))
				fail_msg("function %d: dword 0x%x differs", i, off);
		for (unsigned int k = 0; k < VMRES_PCI_NUM_BARS; k++) {
			struct vmres_pci_bar_state x, y;

			assert_int_equal(vmres_pci_func_bar_get(a->fn[i], k, &x), 0);
			assert_int_equal(vmres_pci_func_bar_get(b->fn[i], k, &y), 0);
			assert_memory_equal(&x, &y, sizeof(x));
		}
		memset(&ma, 0, sizeof(ma));
		memset(&mb, 0, sizeof(mb));
		ra = vmres_pci_func_msi_get(a->fn[i], &ma);
		rb = vmres_pci_func_msi_get(b->fn[i], &mb);
		assert_int_equal(ra, rb);
		assert_memory_equal(&ma, &mb, sizeof(ma));
	}
	{
		struct vmres_irq_src_state sa[16], sb[16];
		size_t na, nb;

		memset(sa, 0, sizeof(sa));
		memset(sb, 0, sizeof(sb));
		assert_int_equal(vmres_irq_mgr_save_state(a->irq, sa, 16, &na), 0);
		assert_int_equal(vmres_irq_mgr_save_state(b->irq, sb, 16, &nb), 0);
		assert_int_equal(na, nb);
		assert_memory_equal(sa, sb, na * sizeof(sa[0]));
	}
	assert_same_state(a->sa, a->m, b->sa, b->m);
}

static void test_machine_restores_every_guest_programmed_state(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	struct vmres_irq_src *src;
	struct vmres_pci_bar_state bar;
	uint8_t *buf, *buf2;
	size_t len, len2;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	b.use_sources = true;
	b.incompatible = false;
	assert_int_equal(machine_restore(&b, buf, len, &e), 0);
	assert_same_machine(&a, &b);
	save_machine(&b, &buf2, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);

	/* Delivery with the restored messages, nothing replayed: vector 0 now,
	 * vector 1 (masked, pending) when the guest unmasks it. */
	assert_int_equal(vmres_irq_group_src(b.grp[0], 0, &src), 0);
	assert_int_equal(vmres_irq_src_trigger(src), 0);
	cfg_write(b.fn[0], 0x40 + 0x10, 4, 0x8);
	assert_int_equal(vmres_irq_group_src(b.grp[1], 0, &src), 0);
	assert_int_equal(vmres_irq_src_trigger(src), 0);
	assert_int_equal(b.dl.n, 3);
	assert_int_equal(b.dl.msg[0].addr_lo, 0xfee01000);
	assert_int_equal(b.dl.msg[0].data, 0x4040);
	assert_int_equal(b.dl.msg[1].data, 0x4041);
	assert_int_equal(b.dl.msg[2].addr_lo, 0xfee02000);
	assert_int_equal(b.dl.msg[2].data, 0x4051);

	/* The functions are bound: the guest's next moves reach the manager. */
	cfg_write(b.fn[0], VMRES_PCI_BAR_OFFSET(3), 4, 0x10);
	assert_int_equal(vmres_pci_func_bar_get(b.fn[0], 2, &bar), 0);
	assert_false(bar.half_pending);
	assert_int_equal(bar.mapped_base >> 32, 0x10);
	cfg_write(b.fn[1], VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY);
	assert_int_equal(vmres_pci_func_bar_get(b.fn[1], 0, &bar), 0);
	assert_true(bar.mapped);
	assert_int_equal(bar.mapped_base, 0xd0100000);
	free(buf);
	free(buf2);
	machine_free(&a);
	machine_free(&b);
}

/* The public path: restore, then load_state and bind by hand. */
static void test_load_state_then_bind_keeps_the_loaded_state(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf, st[VMRES_PCI_FUNC_STATE_SIZE];
	size_t len;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	memset(&b, 0, sizeof(b));
	b.use_sources = true;
	assert_int_equal(machine_restore(&b, buf, len, &e), 0);
	for (int i = 0; i < N_FN; i++) {
		struct vmres_request q[4];
		struct vmres_pci_func_config c;
		struct vmres_pci_func *f;
		size_t nq;

		c = fn_config(i, q, &nq);
		assert_int_equal(vmres_pci_func_new(&c, &f), 0);
		if (i == 2)
			assert_int_equal(vmres_pci_func_define(f, 0x60, 1, 0x30, 0x0f), 0);
		assert_int_equal(vmres_pci_func_save_state(a.fn[i], st, sizeof(st)), 0);
		assert_int_equal(vmres_pci_func_load_state(f, st, sizeof(st)), 0);
		/* Loaded over a bound function: refused. */
		assert_int_equal(vmres_pci_func_load_state(b.fn[i], st, sizeof(st)), VMRES_ESTATE);
		assert_int_equal(vmres_pci_func_bind(f, b.m, b.id[i]), 0);
		/* The device bytes' read-only bits are the device's. */
		if (i == 2)
			assert_int_equal(cfg_read(f, 0x60) & 0xff, 0x3f);
		vmres_pci_func_free(b.fn[i]);
		b.fn[i] = f;
	}
	assert_same_machine(&a, &b);
	free(buf);
	machine_free(&a);
	machine_free(&b);
}

static void test_bind_after_load_refuses_a_manager_that_disagrees(void **state)
{
	struct machine a;
	struct vmres_request q[4];
	struct vmres_pci_func_config c;
	struct vmres_pci_func *f;
	uint8_t st[VMRES_PCI_FUNC_STATE_SIZE], st2[VMRES_PCI_FUNC_STATE_SIZE];
	size_t nq;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	c = fn_config(1, q, &nq);
	assert_int_equal(vmres_pci_func_new(&c, &f), 0);
	assert_int_equal(vmres_pci_func_save_state(a.fn[1], st, sizeof(st)), 0);
	assert_int_equal(vmres_pci_func_load_state(f, st, sizeof(st)), 0);
	/* The function 0's device has other ranges where this state has its own. */
	assert_int_equal(vmres_pci_func_bind(f, a.m, a.id[0]), VMRES_ESIZE);
	/* The range moved behind the state's back. */
	assert_int_equal(vmres_devmgr_move_range(a.m, a.id[1], 0, 0xd0200000), 0);
	assert_int_equal(vmres_pci_func_bind(f, a.m, a.id[1]), VMRES_ESTATE);
	assert_int_equal(vmres_pci_func_save_state(f, st2, sizeof(st2)), 0);
	assert_memory_equal(st, st2, sizeof(st));
	vmres_pci_func_free(f);
	machine_free(&a);
}

static void test_incompatible_function_is_refused_and_nothing_changes(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	memset(&b, 0, sizeof(b));
	b.use_sources = false;
	b.incompatible = true;
	assert_int_equal(machine_restore(&b, buf, len, &e), VMRES_EKIND);
	assert_int_equal(e.offset, record(buf, len, PCI_FUNCS, 1) + 8);
	assert_null(b.m);
	/* Neither the interrupt manager nor the functions changed. */
	for (int i = 0; i < N_FN; i++) {
		struct vmres_pci_bar_state x;

		assert_int_equal(cfg_read(b.fn[i], VMRES_PCI_COMMAND) & 0xffff, 0);
		assert_int_equal(vmres_pci_func_bar_get(b.fn[i], 0, &x), 0);
		assert_false(x.mapped);
	}
	{
		struct vmres_irq_src_state s[16];
		size_t n;

		assert_int_equal(vmres_irq_mgr_save_state(b.irq, s, 16, &n), 0);
		for (size_t i = 0; i < n; i++)
			assert_false(s[i].enabled || s[i].masked || s[i].pending);
	}
	for (int i = 0; i < N_FN; i++) {
		vmres_pci_func_free(b.fn[i]);
		vmres_irq_group_free(b.grp[i]);
	}
	vmres_irq_mgr_free(b.irq);
	free(buf);
	machine_free(&a);
}

static void test_corrupted_pci_and_irq_records_are_refused_at_their_field(void **state)
{
	struct machine a;
	uint8_t *buf;
	size_t len, r;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	/* A state that disagrees with its device's entry (mapped_base of BAR0). */
	r = record(buf, len, PCI_FUNCS, 0);
	buf[r + 8 + 264 + 16] ^= 0x10;
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 8);
	buf[r + 8 + 264 + 16] ^= 0x10;
	/* An unknown state layout. */
	buf[r + 8] = 9;
	resign(buf, len);
	restore_fails(buf, len, VMRES_EVERSION, r + 8);
	buf[r + 8] = 1;
	/* A function of a device that does not exist. */
	wr32(buf + r, 77);
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r);
	wr32(buf + r, a.id[0]);
	/* A level MSI (the last source: the highest GSI, an MSI). */
	r = record(buf, len, IRQ, 5);
	buf[r + 5] = VMRES_IRQ_LEVEL;
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 5);
	buf[r + 5] = VMRES_IRQ_EDGE;
	resign(buf, len);
	restore_matches(buf, len, a.sa, a.m);
	free(buf);
	machine_free(&a);
}

/* ---- a virtio-like machine (format 1.2): MSI-X, PCI Express, ECAM, kvmres ---- */

#define VM_FD	    42
#define VM_VECTORS  4u
#define VM_TABLE    0x2000u
#define VM_PBA	    0x3000u
#define VM_NOTIFY   0x1000u
#define VM_MEM_SIZE 0x10000u
#define VM_EXP	    (0x40u + VMRES_PCI_MSIX_CAP_SIZE)
enum { KVMRES = 9, VM_RES_BAR0 = 0, VM_RES_MEM = 1, VM_RES_MSIX = 2, VM_N_RES = 6 };

/* What the fake VM holds: ioeventfds (address, fd) and memory slots. */
struct fake_kvm {
	uint64_t ev_addr[8];
	int ev_fd[8];
	bool ev_used[8];
	uint64_t slot_gpa[32], slot_host[32];
	bool slot_used[32];
};

static int fake_kvm_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	struct fake_kvm *k = ctx;

	assert_int_equal(fd, VM_FD);
	if (request == KVM_IOEVENTFD) {
		const struct kvm_ioeventfd *a = arg;

		for (int i = 0; i < 8; i++) {
			if (a->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
				if (k->ev_used[i] && k->ev_addr[i] == a->addr) {
					k->ev_used[i] = false;
					return 0;
				}
			} else if (!k->ev_used[i]) {
				k->ev_used[i] = true;
				k->ev_addr[i] = a->addr;
				k->ev_fd[i] = a->fd;
				return 0;
			}
		}
		errno = ENOENT;
		return -1;
	}
	if (request == KVM_SET_USER_MEMORY_REGION) {
		const struct kvm_userspace_memory_region *r = arg;

		assert_true(r->slot < 32);
		k->slot_used[r->slot] = r->memory_size != 0;
		k->slot_gpa[r->slot] = r->guest_phys_addr;
		k->slot_host[r->slot] = r->userspace_addr;
		return 0;
	}
	fail_msg("unexpected ioctl %lx", request);
	return -1;
}

struct vm {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_irq_mgr *irq;
	struct deliveries dl;
	struct vmres_pci_host *host;
	struct vmres_pci_ecam *ecam;
	struct vmres_pci_func *fn;
	struct vmres_irq_group *grp;
	struct vmres_kvmres *kvmres;
	struct fake_kvm kvm;
	uint32_t id, ecam_id;
	int efd;
	uint8_t *mem;	/* page aligned */
	bool no_kvmres; /* restore: leave the descriptions alone */
};

/* The device's BAR handlers: the helper first (the MSI-X table and PBA). */
static uint64_t vm_dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			    unsigned int size)
{
	struct vm *v = opaque;
	uint64_t val = 0;

	(void)addr;
	return vmres_pci_func_bar_read(v->fn, range, offset, size, &val) ? 0 : val;
}

static void vm_dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size, uint64_t value)
{
	struct vm *v = opaque;

	(void)addr;
	(void)vmres_pci_func_bar_write(v->fn, range, offset, size, value);
}

static struct vmres_pci_func_config vm_fn_config(void)
{
	struct vmres_pci_func_config c = VMRES_PCI_FUNC_CONFIG_INIT;

	c.vendor_id = 0x1af4;
	c.device_id = 0x1041;
	c.class_code = 0x020000;
	c.bars[0] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM32, false, 0x4000, 0, VM_RES_BAR0};
	c.bars[2] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM64, true, VM_MEM_SIZE, 0, VM_RES_MEM};
	c.msix = (struct vmres_pci_msix){.vectors = VM_VECTORS,
					 .table_offset = VM_TABLE,
					 .pba_offset = VM_PBA,
					 .res_index = VM_RES_MSIX};
	c.express = (struct vmres_pci_express){.enabled = true};
	return c;
}

/* The function (with its extended capability and sources), attached at 00:01.0. */
static void vm_make_function(struct vm *v, const struct vmres_resource *res)
{
	struct vmres_pci_func_config c = vm_fn_config();
	struct vmres_irq_src *srcs[VM_VECTORS];

	assert_int_equal(vmres_pci_func_new(&c, &v->fn), 0);
	assert_int_equal(vmres_pci_func_add_ext_capability(v->fn, 0x100, 0x1, 2, 0x48), 0);
	assert_int_equal(vmres_pci_func_define(v->fn, 0x104, 4, 0x11110000, 0x0000ffff), 0);
	assert_int_equal(vmres_irq_group_new(v->irq, res + VM_RES_MSIX, VM_VECTORS, &v->grp), 0);
	for (unsigned int i = 0; i < VM_VECTORS; i++)
		assert_int_equal(vmres_irq_group_src(v->grp, i, &srcs[i]), 0);
	assert_int_equal(vmres_pci_func_set_msix_sources(v->fn, srcs, VM_VECTORS), 0);
	assert_int_equal(vmres_pci_host_attach(v->host, 1, 0, v->fn), 0);
}

/* The ECAM window of @p size bytes (1 MiB per bus): the VMM's object, made
 * from the device manager's resource. */
static void vm_make_ecam(struct vm *v, uint64_t size, struct vmres_device *dev)
{
	assert_int_equal(vmres_pci_ecam_new(v->host, (unsigned int)(size / VMRES_PCI_ECAM_BUS_SIZE),
					    &v->ecam),
			 0);
	assert_int_equal(vmres_pci_ecam_device(v->ecam, dev), 0);
}

static int vm_kvmres_new(void *ctx, struct vmres_devmgr *m, struct vmres_kvmres **out)
{
	struct vm *v = ctx;
	struct vmres_irq_kvm_sys sys = {
		VMRES_IRQ_KVM_SYS_VERSION, &v->kvm, fake_kvm_ioctl, NULL, NULL, NULL, NULL};
	struct vmres_kvmres_opts o = VMRES_KVMRES_OPTS_INIT;
	struct vmres_kvmres_backend *be;
	int rc;

	o.slot_first = 10;
	o.slot_count = 8;
	rc = vmres_kvmres_backend_kvm_new(VM_FD, &sys, &be);
	if (!rc)
		rc = vmres_kvmres_new(m, be, &o, out);
	return rc;
}

static void vm_new(struct vm *v)
{
	struct vmres_irq_backend *be;
	struct vmres_resource res[8], eres;
	struct vmres_request q[3];
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_kvmres_notify n = {0, VM_RES_BAR0, VM_NOTIFY, 2, false, 0, -1};
	uint32_t slot;

	memset(v, 0, sizeof(*v));
	assert_int_equal(vmres_sysalloc_new_x86_64(&v->sa), 0);
	assert_int_equal(vmres_devmgr_new(v->sa, &v->m), 0);
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &v->dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &v->irq), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(v->m, vmres_irq_mgr_msi_notify, v->irq), 0);
	assert_int_equal(vmres_pci_host_new(&v->host), 0);
	/* The ECAM window: one bus, a device-manager resource like any other. */
	q[0] = rq_addr("mmio64", VMRES_SPACE_MMIO, VMRES_PCI_ECAM_BUS_SIZE,
		       VMRES_PCI_ECAM_BUS_SIZE);
	assert_int_equal(alloc_for(v->sa, q, 1, 7, &eres, 1), 1);
	vm_make_ecam(v, eres.u.addr.size, &dev);
	dev.owner = 7;
	assert_int_equal(
		vmres_devmgr_register(v->m, &dev, VMRES_DEVMGR_NO_PARENT, &eres, 1, &v->ecam_id),
		0);
	q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x4000, 0x4000);
	q[1] = rq_addr("mmio64", VMRES_SPACE_MMIO, VM_MEM_SIZE, VM_MEM_SIZE);
	q[2] = rq_num(VMRES_RES_MSI, "gsi-msi", VM_VECTORS);
	assert_int_equal(alloc_for(v->sa, q, 3, 8, res, 8), VM_N_RES);
	dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev.name = "virtio";
	dev.owner = 8;
	dev.opaque = v;
	dev.read = vm_dev_read;
	dev.write = vm_dev_write;
	assert_int_equal(
		vmres_devmgr_register(v->m, &dev, VMRES_DEVMGR_NO_PARENT, res, VM_N_RES, &v->id),
		0);
	vm_make_function(v, res);
	assert_int_equal(vmres_pci_func_bind(v->fn, v->m, v->id), 0);
	assert_int_equal(vm_kvmres_new(v, v->m, &v->kvmres), 0);
	v->efd = eventfd(0, EFD_NONBLOCK);
	assert_true(v->efd >= 0);
	n.instance = v->id;
	n.fd = v->efd;
	assert_int_equal(vmres_kvmres_notify_add(v->kvmres, &n), 0);
	v->mem = aligned_alloc(4096, VM_MEM_SIZE);
	assert_non_null(v->mem);
	memset(v->mem, 0x5a, VM_MEM_SIZE);
	assert_int_equal(
		vmres_kvmres_mem_attach(v->kvmres, v->id, VM_RES_MEM, v->mem, false, &slot), 0);
	assert_int_equal(slot, 10);
}

static void vm_free(struct vm *v)
{
	vmres_kvmres_free(v->kvmres);
	vmres_pci_ecam_free(v->ecam);
	vmres_pci_host_free(v->host);
	vmres_pci_func_free(v->fn);
	vmres_irq_group_free(v->grp);
	vmres_irq_mgr_free(v->irq);
	vmres_devmgr_free(v->m);
	vmres_sysalloc_free(v->sa);
	if (v->efd > 0)
		close(v->efd);
	free(v->mem);
}

static uint64_t ecam_base(struct vm *v)
{
	struct vmres_resource r;
	struct vmres_devmgr_info info;

	assert_int_equal(vmres_devmgr_get(v->m, v->ecam_id, &info, &r, NULL, 1), 0);
	return r.u.addr.base;
}

/* Guest accesses: configuration space of 00:01.0 through the ECAM window. */
static void vm_cfg_write(struct vm *v, unsigned int off, unsigned int size, uint32_t val)
{
	uint8_t buf[4];

	memcpy(buf, &val, 4);
	assert_int_equal(vmres_devmgr_mmio(v->m, ecam_base(v) + (1u << 15) + off, size, true, buf),
			 0);
}

static uint32_t vm_cfg_read(struct vm *v, unsigned int off)
{
	uint32_t val = 0;

	assert_int_equal(
		vmres_devmgr_mmio(v->m, ecam_base(v) + (1u << 15) + off, 4, false, (uint8_t *)&val),
		0);
	return val;
}

static uint64_t vm_bar0(struct vm *v)
{
	struct vmres_pci_bar_state b;

	assert_int_equal(vmres_pci_func_bar_get(v->fn, 0, &b), 0);
	return b.mapped_base;
}

static void vm_table_write(struct vm *v, unsigned int vec, unsigned int word, uint32_t val)
{
	assert_int_equal(vmres_devmgr_mmio(v->m, vm_bar0(v) + VM_TABLE + 16 * vec + 4 * word, 4,
					   true, (uint8_t *)&val),
			 0);
}

/* The guest: moves BAR0 through ECAM, sets Express and extended registers,
 * programs MSI-X the Linux way, leaves vector 2 masked and pending and the
 * function masked. */
static void vm_program_guest(struct vm *v)
{
	struct vmres_irq_src *src;

	vm_cfg_write(v, VMRES_PCI_BAR_OFFSET(0), 4, 0xd0004000);
	vm_cfg_write(v, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_MASTER);
	vm_cfg_write(v, VM_EXP + 8, 2, 0x0010);
	vm_cfg_write(v, 0x104, 4, 0xabcd1234);
	vm_cfg_write(v, 0x42, 2, VMRES_PCI_MSIX_CTRL_MASKALL);
	for (unsigned int i = 0; i < VM_VECTORS; i++) {
		vm_table_write(v, i, 0, 0xfee00000u | i << 12);
		vm_table_write(v, i, 2, 0x60 + i);
	}
	vm_cfg_write(v, 0x42, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	vm_table_write(v, 0, 3, 0);
	vm_table_write(v, 1, 3, 0);
	assert_int_equal(vmres_irq_group_src(v->grp, 2, &src), 0);
	assert_int_equal(vmres_irq_src_trigger(src), 0); /* masked: pending */
	vm_cfg_write(v, 0x42, 2, VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	assert_int_equal(vm_bar0(v), 0xd0004000);
	v->dl.n = 0;
}

static void vm_save(struct vm *v, uint8_t **buf, size_t *len)
{
	struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
	void *p = NULL;

	o.pci_funcs = &v->fn;
	o.n_pci_funcs = 1;
	o.irq = v->irq;
	o.kvmres = v->kvmres;
	assert_int_equal(vmres_snapshot_save_ex(v->sa, v->m, &o, &p, len), 0);
	*buf = p;
}

/* The restoring VMM re-creates its host, ECAM window (from the window's
 * resource) and function in the bind callback. */
static int vm_bind(void *ctx, const struct vmres_devmgr_info *entry,
		   const struct vmres_resource *res, const bool *mapped, struct vmres_device *dev)
{
	struct vm *v = ctx;

	(void)mapped;
	if (strcmp(entry->name, "pci-ecam") == 0) {
		v->ecam_id = entry->instance;
		vm_make_ecam(v, res[0].u.addr.size, dev);
	} else if (strcmp(entry->name, "virtio") == 0) {
		v->id = entry->instance;
		vm_make_function(v, res);
		dev->opaque = v;
		dev->read = vm_dev_read;
		dev->write = vm_dev_write;
	}
	return 0;
}

static struct vmres_pci_func *vm_func(void *ctx, uint32_t instance)
{
	struct vm *v = ctx;

	return instance == v->id ? v->fn : NULL;
}

static int vm_notify_fd(void *ctx, const struct vmres_kvmres_notify *n)
{
	struct vm *v = ctx;

	assert_int_equal(n->fd, -1);
	assert_int_equal(n->offset, VM_NOTIFY);
	if (v->efd <= 0)
		v->efd = eventfd(0, EFD_NONBLOCK);
	return v->efd;
}

static int vm_mem_host(void *ctx, const struct vmres_snapshot_mem *mem, void **host)
{
	struct vm *v = ctx;

	assert_int_equal(mem->size, VM_MEM_SIZE);
	if (!v->mem)
		v->mem = aligned_alloc(4096, VM_MEM_SIZE);
	*host = v->mem;
	return 0;
}

static int vm_restore(struct vm *v, const uint8_t *buf, size_t len, struct vmres_snapshot_error *e)
{
	struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
	struct vmres_irq_backend *be;
	bool no_kvmres = v->no_kvmres;
	int rc;

	memset(v, 0, sizeof(*v));
	v->no_kvmres = no_kvmres;
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &v->dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &v->irq), 0);
	assert_int_equal(vmres_pci_host_new(&v->host), 0);
	o.pci_func = vm_func;
	o.pci_ctx = v;
	o.irq = v->irq;
	if (!no_kvmres) {
		o.kvmres_new = vm_kvmres_new;
		o.notify_fd = vm_notify_fd;
		o.mem_host = vm_mem_host;
		o.kvmres_ctx = v;
		o.kvmres_out = &v->kvmres;
	}
	rc = vmres_snapshot_restore_ex(buf, len, vm_bind, v, &o, &v->sa, &v->m, e);
	/* The VMM's own wiring, as after creating a manager. */
	if (!rc)
		assert_int_equal(
			vmres_devmgr_set_msi_notifier(v->m, vmres_irq_mgr_msi_notify, v->irq), 0);
	return rc;
}

static void test_msix_express_ecam_and_kvmres_machine_round_trips(void **state)
{
	struct vm a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf, *buf2;
	size_t len, len2;
	uint64_t count = 0;
	uint8_t kick[2] = {1, 0};
	int slot_a = -1, slot_b = -1;

	(void)state;
	vm_new(&a);
	vm_program_guest(&a);
	vm_save(&a, &buf, &len);
	assert_int_equal(rd32(buf + 8) >> 16, 3); /* format 1.3 */
	memset(&b, 0, sizeof(b));
	assert_int_equal(vm_restore(&b, buf, len, &e), 0);
	assert_non_null(b.kvmres);

	/* What the guest sees: every dword of the 4 KiB space, through ECAM at the
	 * window's restored place, and every MSI-X vector. */
	assert_int_equal(ecam_base(&a), ecam_base(&b));
	for (unsigned int off = 0; off < VMRES_PCIE_CONFIG_SIZE; off += 4)
		if (vm_cfg_read(&a, off) != vm_cfg_read(&b, off))
			fail_msg("dword 0x%x differs", off);
	assert_int_equal(vm_cfg_read(&b, 0x104), 0x11111234u);
	for (unsigned int i = 0; i < VM_VECTORS; i++) {
		struct vmres_pci_msix_vector x, y;

		memset(&x, 0, sizeof(x));
		memset(&y, 0, sizeof(y));
		assert_int_equal(vmres_pci_func_msix_vector_get(a.fn, i, &x), 0);
		assert_int_equal(vmres_pci_func_msix_vector_get(b.fn, i, &y), 0);
		assert_memory_equal(&x, &y, sizeof(x));
	}
	assert_same_state(a.sa, a.m, b.sa, b.m);
	/* The same bytes when saved again (the restored descriptors differ, the
	 * descriptions do not). */
	vm_save(&b, &buf2, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);

	/* The notify region: in KVM and on the bus at the restored BAR0. */
	for (int i = 0; i < 8; i++)
		if (b.kvm.ev_used[i]) {
			assert_int_equal(b.kvm.ev_addr[i], 0xd0004000 + VM_NOTIFY);
			assert_int_equal(b.kvm.ev_fd[i], b.efd);
		}
	assert_int_equal(vmres_devmgr_mmio(b.m, 0xd0004000 + VM_NOTIFY, 2, true, kick), 0);
	assert_int_equal(read(b.efd, &count, sizeof(count)), (ssize_t)sizeof(count));
	assert_int_equal(count, 1);
	/* The memory slot: the same number, at BAR2's restored base, the VMM's memory. */
	for (int i = 0; i < 32; i++) {
		slot_a = a.kvm.slot_used[i] ? i : slot_a;
		slot_b = b.kvm.slot_used[i] ? i : slot_b;
	}
	assert_int_equal(slot_a, 10);
	assert_int_equal(slot_b, 10);
	assert_int_equal(b.kvm.slot_gpa[10], a.kvm.slot_gpa[10]);
	assert_int_equal(b.kvm.slot_host[10], (uint64_t)(uintptr_t)b.mem);

	/* MSI-X delivery resumes with the restored messages: the guest clears the
	 * function mask (vector 0 now delivers), unmasks vector 2 (its pending
	 * interrupt arrives once). */
	vm_cfg_write(&b, 0x42, 2, VMRES_PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(vmres_pci_func_fire(b.fn, 0), 0);
	vm_table_write(&b, 2, 3, 0);
	assert_int_equal(b.dl.n, 2);
	assert_int_equal(b.dl.msg[0].addr_lo, 0xfee00000u);
	assert_int_equal(b.dl.msg[0].data, 0x60);
	assert_int_equal(b.dl.msg[1].addr_lo, 0xfee02000u);
	assert_int_equal(b.dl.msg[1].data, 0x62);
	/* The guest moves BAR0 again: the notify region follows. */
	vm_cfg_write(&b, VMRES_PCI_BAR_OFFSET(0), 4, 0xd0008000);
	assert_int_equal(vmres_devmgr_mmio(b.m, 0xd0008000 + VM_NOTIFY, 2, true, kick), 0);
	assert_int_equal(read(b.efd, &count, sizeof(count)), (ssize_t)sizeof(count));
	free(buf);
	free(buf2);
	vm_free(&a);
	vm_free(&b);
}

/* Corrupted records are refused at their field; a VMM callback's refusal
 * leaves nothing installed. */
static void test_corrupted_msix_state_and_kvmres_records_are_refused_at_their_field(void **state)
{
	struct vm a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len, r, st;

	(void)state;
	vm_new(&a);
	vm_program_guest(&a);
	vm_save(&a, &buf, &len);
	r = record(buf, len, PCI_FUNCS, 0);
	st = r + 8;
	assert_int_equal(rd32(buf + r + 4), 992 + 3840 + 32 * VM_VECTORS);
	/* Vector 1's control word with a bit no guest can set. */
	buf[st + 992 + 3840 + 32 + 12] |= 2;
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, st);
	buf[st + 992 + 3840 + 32 + 12] &= (uint8_t)~2;
	/* A routed message that the device's entry does not hold. */
	buf[st + 992 + 3840 + 16 + 8] ^= 1;
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, st);
	buf[st + 992 + 3840 + 16 + 8] ^= 1;
	/* A state length beyond the record. */
	wr32(buf + r + 4, 992 + 3840 + 32 * VM_VECTORS + 1);
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 4);
	wr32(buf + r + 4, 992 + 3840 + 32 * VM_VECTORS);

	/* KVMRES: the notify region first, then the memory. */
	r = record(buf, len, KVMRES, 0);
	buf[r + 8] = 3; /* an unknown kind */
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 8);
	buf[r + 8] = 1;
	wr32(buf + r + 16, 0x4000); /* outside BAR0 */
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 16);
	wr32(buf + r + 16, VM_NOTIFY);
	buf[r + 10] = 3; /* a length KVM does not have */
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 10);
	buf[r + 10] = 2;
	wr32(buf + r + 4, VM_RES_MSIX); /* not an address resource */
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 4);
	wr32(buf + r + 4, VM_RES_BAR0);
	r = record(buf, len, KVMRES, 1);
	buf[r + 9] = 2; /* a flag that does not exist */
	resign(buf, len);
	restore_fails(buf, len, VMRES_ECORRUPT, r + 9);
	buf[r + 9] = 0;
	resign(buf, len);

	/* The VMM refuses the memory: nothing is left in its VM. */
	memset(&b, 0, sizeof(b));
	b.mem = NULL;
	{
		struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
		struct vmres_irq_backend *be;
		struct vmres_kvmres *k = (struct vmres_kvmres *)&b;

		assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &b.dl, &be), 0);
		assert_int_equal(vmres_irq_mgr_new(be, &b.irq), 0);
		assert_int_equal(vmres_pci_host_new(&b.host), 0);
		o.pci_func = vm_func;
		o.pci_ctx = &b;
		o.irq = b.irq;
		o.kvmres_new = vm_kvmres_new;
		o.notify_fd = vm_notify_fd;
		o.mem_host = NULL; /* no memory to give */
		o.kvmres_ctx = &b;
		o.kvmres_out = &k;
		assert_int_equal(
			vmres_snapshot_restore_ex(buf, len, vm_bind, &b, &o, &b.sa, &b.m, &e),
			VMRES_EINVAL);
		assert_int_equal(e.offset, r);
		assert_ptr_equal(k, (struct vmres_kvmres *)&b);
		assert_null(b.m);
		for (int i = 0; i < 8; i++)
			assert_false(b.kvm.ev_used[i]);
		for (int i = 0; i < 32; i++)
			assert_false(b.kvm.slot_used[i]);
		/* The function took no state. */
		assert_int_equal(cfg_read(b.fn, VMRES_PCI_COMMAND) & 0xffff, 0);
		b.kvmres = NULL;
		b.m = NULL;
		b.sa = NULL;
		vm_free(&b);
	}
	/* Without the kvmres callbacks the descriptions are checked and left. */
	memset(&b, 0, sizeof(b));
	b.no_kvmres = true;
	assert_int_equal(vm_restore(&b, buf, len, &e), 0);
	assert_null(b.kvmres);
	vm_free(&b);
	free(buf);
	vm_free(&a);
}

/* ---- shared legacy lines (format 1.3) ---- */

/*
 * A PC whose PCI devices share INTx lines: three devices on exclusive lines,
 * 24 with a BAR and a share of the least-shared line (13 new lines, then 11
 * joins), and one with two functions on line 9 (two shares of one owner).
 * Each device's legacy lines are one interrupt group, made in id order, as a
 * VMM makes them in its bind callback.
 */
enum { SM_EXCL = 3, SM_PCI = 24, SM_DEVS = SM_EXCL + SM_PCI + 1, SM_MULTI = SM_DEVS - 1 };

struct shared_machine {
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_irq_mgr *irq;
	struct deliveries dl;
	struct vmres_irq_group *grp[SM_DEVS];
	uint32_t id[SM_DEVS];
};

static void sm_name(int i, char name[32])
{
	if (i < SM_EXCL)
		snprintf(name, 32, "legacy%d", i);
	else if (i < SM_MULTI)
		snprintf(name, 32, "pci%02d", i - SM_EXCL);
	else
		snprintf(name, 32, "multi");
}

/* The group of device @p i's legacy lines (its resources after the first). */
static void sm_group(struct shared_machine *sm, int i, const struct vmres_resource *res, size_t n)
{
	size_t first = i < SM_EXCL || i == SM_MULTI ? 0 : 1;

	assert_int_equal(vmres_irq_group_new(sm->irq, res + first, n - first, &sm->grp[i]), 0);
	for (unsigned int k = 0; k < n - first; k++) {
		struct vmres_irq_src *s;

		assert_int_equal(vmres_irq_group_src(sm->grp[i], k, &s), 0);
		assert_int_equal(vmres_irq_src_enable(s), 0);
	}
}

static struct vmres_irq_src *sm_src(struct shared_machine *sm, int i, unsigned int k)
{
	struct vmres_irq_src *s;

	assert_int_equal(vmres_irq_group_src(sm->grp[i], k, &s), 0);
	return s;
}

static void shared_machine_new(struct shared_machine *sm)
{
	struct vmres_irq_backend *be;

	memset(sm, 0, sizeof(*sm));
	assert_int_equal(vmres_sysalloc_new_x86_64(&sm->sa), 0);
	assert_int_equal(vmres_devmgr_new(sm->sa, &sm->m), 0);
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &sm->dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &sm->irq), 0);
	for (int i = 0; i < SM_DEVS; i++) {
		struct vmres_request q[2];
		struct vmres_resource res[2];
		uint64_t owner = 0x500 + (uint64_t)i;
		size_t nq = 2, n;
		char name[32];

		sm_name(i, name);
		q[1] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
		if (i < SM_EXCL) {
			nq = 1;
			q[0] = q[1];
		} else if (i < SM_MULTI) {
			q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
			q[1].u.irq.shared = true;
		} else {
			for (int k = 0; k < 2; k++) {
				q[k] = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
				q[k].u.irq.shared = true;
				q[k].u.irq.any = false;
				q[k].u.irq.gsi = 9;
			}
		}
		n = alloc_for(sm->sa, q, nq, owner, res, 2);
		assert_int_equal(n, nq);
		if (i % 4 == 1)
			assert_int_equal(vmres_sysalloc_set_owner_name(sm->sa, owner, name), 0);
		if (i % 5 == 2)
			assert_int_equal(
				vmres_sysalloc_set_label(sm->sa, &res[n - 1], owner, "intx"), 0);
		sm->id[i] = register_dev(sm->m, name, owner, VMRES_DEVMGR_NO_PARENT, res, n);
		sm_group(sm, i, res, n);
	}
	/* What the guest left: lines raised by shares, a pending masked share,
	 * an exclusive line asserted. */
	assert_int_equal(vmres_irq_src_trigger(sm_src(sm, SM_EXCL + 0, 0)), 0);	 /* line 9 */
	assert_int_equal(vmres_irq_src_trigger(sm_src(sm, SM_EXCL + 13, 0)), 0); /* line 9 */
	assert_int_equal(vmres_irq_src_trigger(sm_src(sm, SM_EXCL + 20, 0)), 0); /* line 18 */
	assert_int_equal(vmres_irq_src_mask(sm_src(sm, SM_MULTI, 1)), 0);
	assert_int_equal(vmres_irq_src_trigger(sm_src(sm, SM_MULTI, 1)), 0);
	assert_int_equal(
		vmres_irq_src_configure(sm_src(sm, 1, 0),
					&(struct vmres_irq_config){.kind = VMRES_IRQ_LEGACY,
								   .trigger = VMRES_IRQ_LEVEL}),
		0);
	assert_int_equal(vmres_irq_src_trigger(sm_src(sm, 1, 0)), 0);
	sm->dl.n = 0;
}

static void shared_machine_free(struct shared_machine *sm)
{
	for (int i = 0; i < SM_DEVS; i++)
		vmres_irq_group_free(sm->grp[i]);
	vmres_irq_mgr_free(sm->irq);
	vmres_devmgr_free(sm->m);
	vmres_sysalloc_free(sm->sa);
}

static int bind_shared_machine(void *ctx, const struct vmres_devmgr_info *entry,
			       const struct vmres_resource *res, const bool *mapped,
			       struct vmres_device *dev)
{
	struct shared_machine *sm = ctx;
	char name[32];

	(void)mapped, (void)dev;
	for (int i = 0; i < SM_DEVS; i++) {
		sm_name(i, name);
		if (strcmp(entry->name, name) == 0) {
			sm->id[i] = entry->instance;
			sm_group(sm, i, res, entry->n_res);
		}
	}
	return 0;
}

static void assert_same_irq_state(struct vmres_irq_mgr *a, struct vmres_irq_mgr *b)
{
	struct vmres_irq_src_state sa[64], sb[64];
	size_t na, nb;

	memset(sa, 0, sizeof(sa));
	memset(sb, 0, sizeof(sb));
	assert_int_equal(vmres_irq_mgr_save_state(a, sa, 64, &na), 0);
	assert_int_equal(vmres_irq_mgr_save_state(b, sb, 64, &nb), 0);
	assert_int_equal(na, nb);
	assert_memory_equal(sa, sb, na * sizeof(sa[0]));
}

struct sharer_list {
	uint64_t owner[8];
	char label[8][VMRES_SYSALLOC_LABEL_MAX];
	size_t n;
};

static int list_sharer(void *ctx, const struct vmres_sysalloc_alloc_info *a)
{
	struct sharer_list *l = ctx;

	assert_true(a->res.u.irq.shared);
	assert_true(l->n < 8);
	l->owner[l->n] = a->owner;
	snprintf(l->label[l->n++], VMRES_SYSALLOC_LABEL_MAX, "%s", a->label ? a->label : "");
	return 0;
}

static struct sharer_list sharers_of(const struct vmres_sysalloc *sa, uint32_t gsi)
{
	struct sharer_list l;

	memset(&l, 0, sizeof(l));
	assert_int_equal(vmres_sysalloc_foreach_sharer(sa, "gsi-legacy", gsi, list_sharer, &l), 0);
	return l;
}

/* The same releases on both machines leave the same state behind. */
static void release_sharers(struct shared_machine *sm)
{
	struct vmres_resource r;

	memset(&r, 0, sizeof(r));
	r.kind = VMRES_RES_IRQ;
	strcpy(r.pool, "gsi-legacy");
	r.u.irq.gsi = 9;
	/* One share of line 9, then one of the two of "multi", then the rest. */
	assert_int_equal(vmres_sysalloc_release(sm->sa, &r, 0x500 + SM_EXCL + 13), 0);
	assert_int_equal(vmres_sysalloc_release(sm->sa, &r, 0x500 + SM_EXCL + 13), VMRES_EOWNER);
	assert_int_equal(vmres_sysalloc_release(sm->sa, &r, 0x500 + SM_MULTI), 0);
	assert_int_equal(vmres_sysalloc_validate(sm->sa), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sm->sa, 0x500 + SM_MULTI), 0);
	assert_int_equal(vmres_sysalloc_release_owner(sm->sa, 0x500 + SM_EXCL), 0);
	assert_int_equal(vmres_sysalloc_validate(sm->sa), 0);
	/* The line's number went back with its last share: exclusive again. */
	assert_int_equal(vmres_sysalloc_reserve(sm->sa, "gsi-legacy", 9, 1, 0, 77, "pit", NULL), 0);
	/* Both shares of the driving devices stop: the line is lowered once. */
	assert_int_equal(vmres_irq_src_ack(sm_src(sm, SM_EXCL + 0, 0)), 0);
	assert_int_equal(vmres_irq_src_ack(sm_src(sm, SM_EXCL + 13, 0)), 0);
	assert_int_equal(vmres_irq_src_ack(sm_src(sm, SM_EXCL + 20, 0)), 0);
}

static void test_machine_with_shared_lines_restores_sharers_and_their_irq_state(void **state)
{
	struct vmres_snapshot_options o = VMRES_SNAPSHOT_OPTIONS_INIT;
	struct shared_machine a, b;
	struct vmres_snapshot_error e;
	struct vmres_irq_backend *be;
	struct sharer_list la, lb;
	void *p = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	shared_machine_new(&a);
	/* Line 9: pci00, pci13, then multi twice; 20: pci09 (labelled), pci22. */
	la = sharers_of(a.sa, 9);
	assert_int_equal(la.n, 4);
	assert_int_equal(la.owner[0], 0x500 + SM_EXCL);
	assert_int_equal(la.owner[1], 0x500 + SM_EXCL + 13);
	assert_int_equal(la.owner[2], 0x500 + SM_MULTI);
	assert_int_equal(la.owner[3], 0x500 + SM_MULTI);
	o.irq = a.irq;
	assert_int_equal(vmres_snapshot_save_ex(a.sa, a.m, &o, &p, &len), 0);
	buf = p;
	assert_int_equal(rd32(buf + section(buf, len, SHARES) + 16), SM_PCI + 2);

	memset(&b, 0, sizeof(b));
	assert_int_equal(vmres_irq_backend_callback_new(record_delivery, &b.dl, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &b.irq), 0);
	o.irq = b.irq;
	if (vmres_snapshot_restore_ex(buf, len, bind_shared_machine, &b, &o, &b.sa, &b.m, &e))
		fail_msg("restore: %s at %zu", vmres_errname(e.code), e.offset);
	assert_int_equal(vmres_sysalloc_validate(b.sa), 0);
	assert_same_state(a.sa, a.m, b.sa, b.m);
	assert_same_irq_state(a.irq, b.irq);
	for (uint32_t gsi = 9; gsi <= 23; gsi++) {
		if (gsi == 12 || gsi == 13)
			continue; /* the platform's */
		la = sharers_of(a.sa, gsi);
		lb = sharers_of(b.sa, gsi);
		assert_int_equal(la.n, lb.n);
		assert_memory_equal(&la, &lb, sizeof(la));
	}
	assert_int_equal(sharers_of(b.sa, 20).n, 2);
	assert_string_equal(sharers_of(b.sa, 20).label[0], "intx"); /* pci09's */
	/* Loading delivered nothing; releasing and acking act alike on both. */
	assert_int_equal(b.dl.n, 0);
	release_sharers(&a);
	release_sharers(&b);
	assert_same_state(a.sa, a.m, b.sa, b.m);
	assert_same_irq_state(a.irq, b.irq);
	assert_int_equal(a.dl.n, b.dl.n);
	assert_int_equal(a.dl.n, 2); /* lines 9 and 18 lowered, once each */
	assert_memory_equal(a.dl.gsi, b.dl.gsi, 2 * sizeof(a.dl.gsi[0]));
	assert_memory_equal(a.dl.sig, b.dl.sig, 2 * sizeof(a.dl.sig[0]));
	free(buf);
	shared_machine_free(&a);
	shared_machine_free(&b);
}

/* Shares restore exactly as saved, or not at all: each impossible record is
 * refused at its field, before anything is built. */
static void test_corrupted_shared_records_are_refused_at_their_field(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_resource res[2];
	struct vmres_request q = rq_num(VMRES_RES_IRQ, "gsi-legacy", 1);
	uint8_t *buf, *bad;
	size_t len, r0, r1, r2, sec, excl;
	uint32_t msi_pool = 4, legacy_pool = 3; /* the x86-64 preset's order */

	(void)state;
	small_state(&sa, &m);
	q.u.irq.shared = true;
	for (uint64_t owner = 20; owner < 23; owner++)
		assert_int_equal(alloc_for(sa, &q, 1, owner, res, 2), 1); /* lines 6, 7, 9 */
	q.u.irq.any = false;
	q.u.irq.gsi = res[0].u.irq.gsi;
	assert_int_equal(alloc_for(sa, &q, 1, 20, res + 1, 1), 1); /* line 9 again */
	save(sa, m, &buf, &len);
	sec = section(buf, len, SHARES);
	r0 = record(buf, len, SHARES, 0);
	r1 = record(buf, len, SHARES, 1);
	r2 = record(buf, len, SHARES, 2);
	assert_int_equal(rd32(buf + r0), legacy_pool);
	assert_int_equal(rd32(buf + r2 + 4), 9);
	/* The number small_state's device holds exclusively (the lowest free: 5). */
	excl = 5;
	bad = malloc(len);
	assert_non_null(bad);
#define CORRUPT(edit, code, at)                                                                    \
	do {                                                                                       \
		memcpy(bad, buf, len);                                                             \
		edit;                                                                              \
		resign(bad, len);                                                                  \
		restore_fails(bad, len, code, at);                                                 \
	} while (0)
	/* a share in an MSI pool, or in no pool */
	CORRUPT(wr32(bad + r1, msi_pool), VMRES_ECORRUPT, r1);
	CORRUPT(wr32(bad + r1, 99), VMRES_ECORRUPT, r1);
	/* pools out of order */
	CORRUPT(wr32(bad + r0, legacy_pool + 1), VMRES_ECORRUPT, r0);
	/* outside its pool's window */
	CORRUPT(wr32(bad + r2 + 4, 24), VMRES_ECORRUPT, r2 + 4);
	/* a number held both shared and exclusively */
	CORRUPT(wr32(bad + r0 + 4, (uint32_t)excl), VMRES_ECORRUPT, r0 + 4);
	/* a line's shares apart (line 6 again after line 7) */
	CORRUPT(wr32(bad + r2 + 4, 6), VMRES_ECORRUPT, r2 + 4);
	/* a label that is not text */
	CORRUPT(memset(bad + r1 + 16, 'x', 24), VMRES_ECORRUPT, r1 + 16);
	CORRUPT(bad[r1 + 16] = 0x01, VMRES_ECORRUPT, r1 + 16);
	/* records too short */
	CORRUPT(wr32(bad + sec + 20, 40), VMRES_ECORRUPT, sec + 20);
	/* a device's ADDR resource marked SHARED */
	CORRUPT(bad[record(buf, len, RESOURCES, 0) + 2] |= 2, VMRES_ECORRUPT,
		record(buf, len, RESOURCES, 0) + 2);
	/* An unknown section kind in its place is one a reader must know. */
	CORRUPT(wr32(bad + sec, 42), VMRES_EVERSION, sec);
#undef CORRUPT
	/* Two equal records are two shares of one owner (two functions of a
	 * device): restored as such, not refused. */
	memcpy(bad, buf, len);
	memcpy(bad + r1, bad + r0, 48);
	resign(bad, len);
	{
		struct vmres_sysalloc *sa2 = NULL;
		struct vmres_devmgr *m2 = NULL;
		struct vmres_snapshot_error e;
		struct bind_ctx c = {{0, 0}, 0, 0};

		assert_int_equal(vmres_snapshot_restore(bad, len, bind_fake, &c, &sa2, &m2, &e), 0);
		assert_int_equal(sharers_of(sa2, rd32(buf + r0 + 4)).n, 2);
		assert_int_equal(vmres_sysalloc_validate(sa2), 0);
		vmres_devmgr_free(m2);
		vmres_sysalloc_free(sa2);
	}
	free(bad);
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

/* A 1.1 image (the current writer's, minor set to 1 and the PCI_FUNCS
 * state_len zeroed, as 1.1 wrote it) restores as it did. */
static void test_version_1_1_image_restores_unchanged(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	assert_int_equal(rd32(buf + record(buf, len, PCI_FUNCS, 0) - 4), 968); /* record size */
	for (size_t i = 0; i < N_FN; i++) {
		size_t r = record(buf, len, PCI_FUNCS, i);

		assert_int_equal(rd32(buf + r + 4), VMRES_PCI_FUNC_STATE_SIZE);
		wr32(buf + r + 4, 0);
	}
	buf[10] = 1;
	resign(buf, len);
	memset(&b, 0, sizeof(b));
	b.use_sources = true;
	assert_int_equal(machine_restore(&b, buf, len, &e), 0);
	assert_same_machine(&a, &b);
	free(buf);
	machine_free(&a);
	machine_free(&b);
}

/* A 1.2 image (a state without shares, as the current writer writes it but
 * for the minor) restores as it did. */
static void test_version_1_2_image_restores_unchanged(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf;
	size_t len;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	buf[10] = 2;
	resign(buf, len);
	memset(&b, 0, sizeof(b));
	b.use_sources = true;
	assert_int_equal(machine_restore(&b, buf, len, &e), 0);
	assert_same_machine(&a, &b);
	free(buf);
	machine_free(&a);
	machine_free(&b);
}

/* Drop sections 7 and 8 and set minor 0: what a 1.0 writer wrote. */
static size_t as_v1_0(uint8_t *buf, size_t len)
{
	size_t pos = rd32(buf + 12), end = len - 4, out = pos;

	while (pos < end) {
		uint32_t kind = rd32(buf + pos);
		size_t n = 16 + (size_t)rd64(buf + pos + 8);

		if (kind <= 6) {
			memmove(buf + out, buf + pos, n);
			out += n;
		}
		pos += n;
	}
	buf[10] = 0;
	buf[11] = 0;
	wr64(buf + 16, out + 4);
	resign(buf, out + 4);
	return out + 4;
}

static void test_version_1_0_image_restores_unchanged(void **state)
{
	struct machine a, b;
	struct vmres_snapshot_error e;
	uint8_t *buf, *plain;
	size_t len, plain_len;

	(void)state;
	machine_new(&a);
	program_guest(&a);
	save_machine(&a, &buf, &len);
	save(a.sa, a.m, &plain, &plain_len);
	len = as_v1_0(buf, len);
	assert_int_equal(rd32(plain + 8) >> 16, 3); /* the plain save is 1.3 */
	plain[10] = 0;
	resign(plain, plain_len);
	assert_int_equal(len, plain_len);
	assert_memory_equal(buf, plain, len);
	restore_matches(buf, len, a.sa, a.m);
	/* With options: the functions and sources are left for the VMM. */
	memset(&b, 0, sizeof(b));
	b.use_sources = false;
	assert_int_equal(machine_restore(&b, buf, len, &e), 0);
	assert_int_equal(cfg_read(b.fn[0], VMRES_PCI_COMMAND) & 0xffff, 0);
	free(buf);
	free(plain);
	machine_free(&a);
	machine_free(&b);
}

static void test_guest_pool_and_follow_guest_policy_round_trip(void **state)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m, *m2 = NULL;
	struct vmres_sysalloc *sa2 = NULL;
	struct vmres_snapshot_error e;
	struct vmres_resource res[1];
	struct vmres_request q[1];
	enum vmres_devmgr_policy pol;
	uint8_t *buf;
	size_t len;
	uint32_t id;

	(void)state;
	assert_int_equal(vmres_sysalloc_new_x86_64(&sa), 0);
	assert_int_equal(vmres_sysalloc_add_guest_pool(sa, "guest-mmio", VMRES_SPACE_MMIO), 0);
	assert_int_equal(vmres_sysalloc_reserve(sa, "guest-mmio", 0, 0x80000000, 0, 7, "ram", NULL),
			 0);
	assert_int_equal(vmres_devmgr_new(sa, &m), 0);
	assert_int_equal(vmres_devmgr_set_policy(m, VMRES_DEVMGR_FOLLOW_GUEST), 0);
	q[0] = rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000);
	assert_int_equal(alloc_for(sa, q, 1, 5, res, 1), 1);
	id = register_dev(m, "bar", 5, VMRES_DEVMGR_NO_PARENT, res, 1);
	/* The guest places the BAR above every pool. */
	assert_int_equal(vmres_devmgr_move_range(m, id, 0, 0x20000000000), 0);
	save(sa, m, &buf, &len);
	restore_matches(buf, len, sa, m);
	assert_int_equal(vmres_snapshot_restore(buf, len, NULL, NULL, &sa2, &m2, &e), 0);
	assert_int_equal(vmres_devmgr_get_policy(m2, &pol), 0);
	assert_int_equal(pol, VMRES_DEVMGR_FOLLOW_GUEST);
	/* The restored manager follows the guest outside the pools again. */
	assert_int_equal(vmres_devmgr_move_range(m2, id, 0, 0x30000000000), 0);
	vmres_devmgr_free(m2);
	vmres_sysalloc_free(sa2);
	/* Without its flag the guest pool's window meets the others; an
	 * unknown flag is refused. */
	{
		size_t r = record(buf, len, POOLS, 6);

		assert_int_equal(buf[r + 26], 1);
		buf[r + 26] = 0;
		resign(buf, len);
		restore_fails(buf, len, VMRES_ECORRUPT, r + 32);
		buf[r + 26] = 3;
		resign(buf, len);
		restore_fails(buf, len, VMRES_ECORRUPT, r + 26);
	}
	free(buf);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_states_round_trip_to_identical_dumps_and_bytes),
		cmocka_unit_test(test_empty_objects_round_trip),
		cmocka_unit_test(test_restored_manager_keeps_ids_and_attachment),
		cmocka_unit_test(test_next_id_above_the_highest_device_is_honoured),
		cmocka_unit_test(test_fd_round_trip),
		cmocka_unit_test(test_save_refuses_a_manager_attached_elsewhere),
		cmocka_unit_test(test_save_refuses_a_resource_naming_no_pool),
		cmocka_unit_test(test_shared_lines_round_trip_in_their_own_required_section),
		cmocka_unit_test(
			test_machine_with_shared_lines_restores_sharers_and_their_irq_state),
		cmocka_unit_test(test_corrupted_shared_records_are_refused_at_their_field),
		cmocka_unit_test(test_every_truncation_is_reported_where_the_input_ends),
		cmocka_unit_test(test_every_flipped_bit_is_caught),
		cmocka_unit_test(test_semantic_corruptions_are_reported_at_their_field),
		cmocka_unit_test(test_names_that_are_not_text_are_refused_at_their_field),
		cmocka_unit_test(test_unknown_sections_are_skipped_unless_required),
		cmocka_unit_test(test_newer_minor_with_longer_records_restores),
		cmocka_unit_test(test_unmapped_range_under_an_older_mapped_one_restores),
		cmocka_unit_test(test_unmapped_range_over_its_device_or_taken_in_its_pool_restores),
		cmocka_unit_test(test_failing_bind_releases_every_bound_device),
		cmocka_unit_test(test_restore_checks_its_arguments),
		cmocka_unit_test(test_find_device_by_name_walks_duplicates),
		cmocka_unit_test(test_committed_v1_snapshot_restores_to_its_recorded_state),
		cmocka_unit_test(test_committed_v1_snapshot_restores_a_working_manager),
		cmocka_unit_test(test_machine_restores_every_guest_programmed_state),
		cmocka_unit_test(test_load_state_then_bind_keeps_the_loaded_state),
		cmocka_unit_test(test_msix_express_ecam_and_kvmres_machine_round_trips),
		cmocka_unit_test(
			test_corrupted_msix_state_and_kvmres_records_are_refused_at_their_field),
		cmocka_unit_test(test_version_1_2_image_restores_unchanged),
		cmocka_unit_test(test_version_1_1_image_restores_unchanged),
		cmocka_unit_test(test_bind_after_load_refuses_a_manager_that_disagrees),
		cmocka_unit_test(test_incompatible_function_is_refused_and_nothing_changes),
		cmocka_unit_test(test_corrupted_pci_and_irq_records_are_refused_at_their_field),
		cmocka_unit_test(test_version_1_0_image_restores_unchanged),
		cmocka_unit_test(test_guest_pool_and_follow_guest_policy_round_trip),
	};
	int rc;

	/* The machines' guests dispatch from this thread. */
	if (vmres_devmgr_thread_register())
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	vmres_devmgr_thread_unregister();
	return rc;
}
