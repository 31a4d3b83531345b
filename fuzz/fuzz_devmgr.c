/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the device manager and its buses (devmgr.h, bus.h),
 * single-threaded: the input is a sequence of register (with a parent, a name
 * and up to four resources, valid or not), update, unregister, move, map,
 * unmap, MSI reroute and dispatch (MMIO of 1 to 8 bytes, PIO with rep counts)
 * operations on small devices that log every access; a write of a magic value
 * makes a device unregister, move, unmap or empty itself from inside the
 * access, as devices may. A model of the table
 * (tests/model/devmgr_model.h) says what each call returns and which device,
 * range and offset each access reaches; after every step the table (get),
 * the buses (find) and the miss counters must agree with it. At the end,
 * after vmres_devmgr_free(), every device registered must have been released
 * exactly once, and no other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>

#include "../tests/model/devmgr_model.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEVS 48
#define MAX_LOG	 16

/* What a device saw: one access. */
struct access {
	unsigned int dev, range, size;
	uint64_t offset, addr, value;
	bool is_write;
	int action_rc; /* what the device's call into the manager returned */
};

struct fdev {
	unsigned int index;
	uint32_t instance;
	int released; /* written by the call_rcu thread */
};

/*
 * A write of at least two bytes whose low byte is 0xe0 to 0xe3 makes the
 * device call the manager on itself from inside the access, as devices may:
 * unregister itself, move the range written to (to the second byte << 4),
 * unmap it, or drop all its resources.
 */
enum { ACT_UNREGISTER, ACT_MOVE, ACT_UNMAP, ACT_DROP_ALL };

static bool is_action(uint64_t value, unsigned int size)
{
	return size >= 2 && (value & 0xfc) == 0xe0;
}

static uint64_t action_base(uint64_t value)
{
	return (value >> 8 & 0x3f) << 4;
}

static struct vmres_devmgr *cur_dm;

static struct fdev devs[MAX_DEVS];
static struct access log_[MAX_LOG];
static size_t n_log;

static uint64_t read_value(unsigned int dev, unsigned int range, uint64_t offset)
{
	return 0xa500000000000000ull ^ (uint64_t)dev << 40 ^ (uint64_t)range << 32 ^ offset;
}

static void record(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		   unsigned int size, uint64_t value, bool is_write)
{
	const struct fdev *d = opaque;

	int rc = 0;

	FUZZ_CHECK(n_log < MAX_LOG);
	if (is_write && is_action(value, size)) {
		switch (value & 3) {
		case ACT_UNREGISTER:
			rc = vmres_devmgr_unregister(cur_dm, d->instance);
			break;
		case ACT_MOVE:
			rc = vmres_devmgr_move_range(cur_dm, d->instance, range,
						     action_base(value));
			break;
		case ACT_UNMAP:
			rc = vmres_devmgr_unmap_range(cur_dm, d->instance, range);
			break;
		default:
			rc = vmres_devmgr_update(cur_dm, d->instance, NULL, 0);
			break;
		}
	}
	log_[n_log++] = (struct access){d->index, range, size, offset, addr, value, is_write, rc};
}

static uint64_t dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	const struct fdev *d = opaque;

	record(opaque, range, offset, addr, size, 0, false);
	return read_value(d->index, range, offset);
}

static void dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	record(opaque, range, offset, addr, size, value, true);
}

static void dev_release(void *opaque)
{
	struct fdev *d = opaque;

	__atomic_fetch_add(&d->released, 1, __ATOMIC_RELAXED);
}

/* ---- choosing arguments ---- */

static uint64_t pick_base(struct fuzz_in *in, enum vmres_space space)
{
	uint8_t sel = fuzz_u8(in);

	if (space == VMRES_SPACE_PIO)
		return sel & 0x80 ? fuzz_near(in, 0xfff8) & 0x1ffff : (uint64_t)(sel & 0x3f) << 4;
	switch (sel >> 6) {
	case 0:
		return (uint64_t)(sel & 0x3f) << 4;
	case 1:
		return fuzz_near(in, UINT64_MAX - 0x40);
	case 2:
		return 0x100000 + ((uint64_t)(sel & 0x3f) << 8) + (fuzz_u8(in) & 0x1f);
	default:
		return fuzz_u64(in);
	}
}

static uint64_t pick_res_size(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);

	return sel < 0xf0 ? sel & 0x3f : fuzz_size(in);
}

static void pick_resource(struct fuzz_in *in, struct vmres_resource *r)
{
	uint8_t sel = fuzz_u8(in);

	memset(r, 0, sizeof(*r));
	if (sel == 0xff)
		memset(r->pool, 'p', sizeof(r->pool)); /* no terminating NUL */
	else if (sel & 0x40)
		strcpy(r->pool, "pool");
	switch (sel & 7) {
	default:
		r->kind = VMRES_RES_ADDR;
		r->u.addr.space = sel & 8 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;
		if ((sel & 0x30) == 0x30)
			r->u.addr.space = (enum vmres_space)(fuzz_u8(in) & 3); /* maybe invalid */
		r->u.addr.base = pick_base(in, r->u.addr.space);
		r->u.addr.size = pick_res_size(in);
		r->u.addr.align = sel & 0x80 ? (uint64_t)1 << (fuzz_u8(in) & 7) : 0;
		break;
	case 4:
		r->kind = VMRES_RES_IRQ;
		r->u.irq.gsi = fuzz_u8(in);
		break;
	case 5:
		r->kind = VMRES_RES_MSI;
		r->u.msi.gsi = fuzz_u8(in);
		break;
	case 6:
		r->kind = sel & 8 ? VMRES_RES_ID : (enum vmres_res_kind)(5 + (sel >> 4 & 3));
		r->u.id.id = fuzz_u8(in);
		break;
	}
}

static size_t pick_resources(struct fuzz_in *in, struct vmres_resource *res)
{
	size_t n = fuzz_u8(in) % (DM_MODEL_MAX_RES + 1);

	for (size_t i = 0; i < n; i++)
		pick_resource(in, &res[i]);
	return n;
}

/* An instance: a live one, a dead one, or anything. */
static uint32_t pick_instance(struct fuzz_in *in, const struct dm_model *m)
{
	uint8_t sel = fuzz_u8(in);

	if (sel < 0xf0 && m->n)
		return m->dev[sel % m->n].instance;
	return sel & 1 ? 0 : sel;
}

/* ---- checks ---- */

static void check_state(struct vmres_devmgr *dm, const struct dm_model *m)
{
	struct vmres_devmgr_stats st;
	uint64_t live = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct dm_model_dev *d = &m->dev[i];
		struct vmres_resource res[DM_MODEL_MAX_RES];
		bool mapped[DM_MODEL_MAX_RES];
		struct vmres_devmgr_info info;
		int rc = vmres_devmgr_get(dm, d->instance, &info, res, mapped, DM_MODEL_MAX_RES);

		if (!d->live) {
			FUZZ_CHECK(rc == VMRES_EDEVICE);
			continue;
		}
		live++;
		FUZZ_CHECK(rc == 0);
		FUZZ_CHECK(info.instance == d->instance && info.parent == d->parent);
		FUZZ_CHECK(info.n_res == d->n_res && info.opaque == &devs[d->tag]);
		FUZZ_CHECK(strcmp(info.name, d->name) == 0 && info.owner == d->owner);
		for (size_t k = 0; k < d->n_res; k++) {
			FUZZ_CHECK(vmres_resource_equal(&res[k], &d->res[k]));
			FUZZ_CHECK(mapped[k] == d->mapped[k]);
			if (!mapped[k])
				continue;
			/* the bus holds the range, at both ends */
			const struct vmres_resource *r = &d->res[k];
			uint64_t ends[2] = {r->u.addr.base, r->u.addr.base + r->u.addr.size - 1};

			for (int e = 0; e < 2; e++) {
				uint32_t inst = 0;
				unsigned int idx = 99;
				uint64_t off = 1;

				FUZZ_CHECK(vmres_devmgr_find(dm, r->u.addr.space, ends[e], &inst,
							     &idx, &off) == 0);
				FUZZ_CHECK(inst == d->instance && idx == k);
				FUZZ_CHECK(off == ends[e] - r->u.addr.base);
			}
		}
	}
	FUZZ_CHECK(vmres_devmgr_stats(dm, &st) == 0);
	FUZZ_CHECK(st.devices == live);
	FUZZ_CHECK(st.pio_miss_reads == m->miss[0][0] && st.pio_miss_writes == m->miss[0][1]);
	FUZZ_CHECK(st.mmio_miss_reads == m->miss[1][0] && st.mmio_miss_writes == m->miss[1][1]);
}

/* One access of @p size bytes: the log entry or the miss the model predicts. */
static void expect_access(struct dm_model *m, enum vmres_space space, uint64_t addr,
			  unsigned int size, bool is_write, const uint8_t *data, size_t *seen)
{
	const struct dm_model_dev *d;
	unsigned int range;
	uint64_t value = 0, want;

	memcpy(&value, data, size); /* little-endian host */
	if (!dm_model_resolve(m, space, addr, size, &d, &range)) {
		m->miss[space == VMRES_SPACE_MMIO][is_write]++;
		if (!is_write)
			for (unsigned int i = 0; i < size; i++)
				FUZZ_CHECK(data[i] == 0xff);
		return;
	}
	if (d->silent) { /* the default callbacks: reads all ones, drops writes */
		if (!is_write)
			for (unsigned int i = 0; i < size; i++)
				FUZZ_CHECK(data[i] == 0xff);
		return;
	}
	FUZZ_CHECK(*seen < n_log);
	const struct access *a = &log_[(*seen)++];
	uint64_t offset = addr - d->res[range].u.addr.base;

	FUZZ_CHECK(a->dev == d->tag && a->range == range && a->offset == offset);
	FUZZ_CHECK(a->addr == addr && a->size == size && a->is_write == is_write);
	if (is_write) {
		FUZZ_CHECK(a->value == value);
		if (is_action(value, size)) {
			uint32_t self = d->instance;
			int mrc;

			switch (value & 3) {
			case ACT_UNREGISTER:
				mrc = dm_model_unregister(m, self);
				break;
			case ACT_MOVE:
				mrc = dm_model_move(m, self, range, action_base(value));
				break;
			case ACT_UNMAP:
				mrc = dm_model_set_mapped(m, self, range, false);
				break;
			default:
				mrc = dm_model_update(m, self, NULL, 0);
				break;
			}
			if (a->action_rc != mrc)
				fprintf(stderr, "action %d: vmres %s, model %s\n", (int)(value & 3),
					vmres_strerror(a->action_rc), vmres_strerror(mrc));
			FUZZ_CHECK(a->action_rc == mrc);
		}
	} else {
		want = read_value(d->tag, range, offset);
		FUZZ_CHECK(memcmp(data, &want, size) == 0);
	}
}

static void dispatch(struct fuzz_in *in, struct vmres_devmgr *dm, struct dm_model *m)
{
	uint8_t sel = fuzz_u8(in), pattern = fuzz_u8(in), data[32];
	bool is_write = sel & 1;
	size_t seen = 0;
	uint64_t addr;
	const struct dm_model_dev *d = m->n ? &m->dev[fuzz_u8(in) % m->n] : NULL;

	/* Near a range of some device (dead ones too), or anywhere. */
	if (d && d->n_res && d->res[0].kind == VMRES_RES_ADDR && !(sel & 0x80))
		addr = fuzz_near(in, d->res[fuzz_u8(in) % d->n_res].u.addr.base);
	else
		addr = pick_base(in, sel & 2 ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(0x11 * i + pattern);
	n_log = 0;
	if (sel & 2) {
		static const uint8_t sizes[4] = {1, 2, 4, 8};
		uint8_t size = sel & 0x40 ? (sel >> 2 & 7) : sizes[sel >> 2 & 3];
		uint32_t count = sel & 0x20 ? 1 + (fuzz_u8(in) & 3) : 1;
		int rc = vmres_devmgr_pio(dm, (uint16_t)addr, is_write, size, count, data);

		if (size != 1 && size != 2 && size != 4 && size != 8) {
			FUZZ_CHECK(rc == VMRES_EACCESS && n_log == 0);
			return;
		}
		FUZZ_CHECK(rc == 0);
		for (uint32_t i = 0; i < count; i++)
			expect_access(m, VMRES_SPACE_PIO, (uint16_t)addr, size, is_write,
				      data + i * size, &seen);
	} else {
		uint32_t len = sel >> 2 & 15;
		int rc = vmres_devmgr_mmio(dm, addr, len, is_write, data);
		uint32_t done = 0;

		if (len == 0 || len > 8) {
			FUZZ_CHECK(rc == VMRES_EACCESS && n_log == 0);
			return;
		}
		FUZZ_CHECK(rc == 0);
		if (len == 1 || len == 2 || len == 4 || len == 8) {
			expect_access(m, VMRES_SPACE_MMIO, addr, len, is_write, data, &seen);
		} else {
			for (uint32_t piece = 4; piece; piece >>= 1) {
				if (!(len & piece))
					continue;
				if (addr + done < addr) {
					/* past 2^64 - 1: the address space does not wrap, a miss */
					m->miss[1][is_write]++;
					for (uint32_t i = 0; !is_write && i < piece; i++)
						FUZZ_CHECK(data[done + i] == 0xff);
				} else {
					expect_access(m, VMRES_SPACE_MMIO, addr + done, piece,
						      is_write, data + done, &seen);
				}
				done += piece;
			}
		}
	}
	FUZZ_CHECK(seen == n_log);
}

static void step(struct fuzz_in *in, struct vmres_devmgr *dm, struct dm_model *m)
{
	struct vmres_resource res[DM_MODEL_MAX_RES];
	uint32_t instance, got = 0x5a5a5a5a;
	unsigned int idx;
	size_t n_res;
	int rc, mrc;

	switch (fuzz_u8(in) % 10) {
	case 0:
	case 1: {
		static const char *const names[] = {"", "dev", "a-device-name-of-31-characters.",
						    "a-device-name-of-32-characters.."};
		struct vmres_device dev = VMRES_DEVICE_INIT;
		uint8_t sel = fuzz_u8(in);
		uint32_t parent = sel & 1 ? pick_instance(in, m) : VMRES_DEVMGR_NO_PARENT;

		if (m->n == MAX_DEVS)
			return;
		n_res = pick_resources(in, res);
		dev.name = sel & 2 ? names[sel >> 2 & 3] : NULL;
		dev.opaque = &devs[m->n];
		dev.read = sel & 0x10 ? NULL : dev_read;
		dev.write = sel & 0x10 ? NULL : dev_write;
		dev.release = dev_release;
		dev.owner = sel >> 5;
		rc = vmres_devmgr_register(dm, &dev, parent, res, n_res, &got);
		mrc = dm_model_register(m, dev.name, dev.owner, parent, res, n_res, m->n);
		if (rc == 0) {
			FUZZ_CHECK(mrc == 0 && got == m->dev[m->n - 1].instance);
			devs[m->dev[m->n - 1].tag].instance = got;
			m->dev[m->n - 1].silent = sel & 0x10;
		} else {
			FUZZ_CHECK(got == 0x5a5a5a5a);
		}
		break;
	}
	case 2:
		instance = pick_instance(in, m);
		rc = vmres_devmgr_unregister(dm, instance);
		mrc = dm_model_unregister(m, instance);
		break;
	case 3:
		instance = pick_instance(in, m);
		n_res = pick_resources(in, res);
		rc = vmres_devmgr_update(dm, instance, res, n_res);
		mrc = dm_model_update(m, instance, res, n_res);
		break;
	case 4: {
		uint64_t base;

		instance = pick_instance(in, m);
		idx = fuzz_u8(in) % (DM_MODEL_MAX_RES + 1);
		base = pick_base(in, fuzz_bool(in) ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO);
		rc = vmres_devmgr_move_range(dm, instance, idx, base);
		mrc = dm_model_move(m, instance, idx, base);
		break;
	}
	case 5:
		instance = pick_instance(in, m);
		idx = fuzz_u8(in) % (DM_MODEL_MAX_RES + 1);
		if (fuzz_bool(in)) {
			rc = vmres_devmgr_map_range(dm, instance, idx);
			mrc = dm_model_set_mapped(m, instance, idx, true);
		} else {
			rc = vmres_devmgr_unmap_range(dm, instance, idx);
			mrc = dm_model_set_mapped(m, instance, idx, false);
		}
		break;
	case 6: {
		struct vmres_msi_msg msg = {fuzz_u32(in), fuzz_u8(in), fuzz_u16(in)};

		instance = pick_instance(in, m);
		idx = fuzz_u8(in) % (DM_MODEL_MAX_RES + 1);
		rc = vmres_devmgr_reroute_msi(dm, instance, idx, &msg);
		mrc = dm_model_reroute(m, instance, idx, &msg);
		break;
	}
	default:
		dispatch(in, dm, m);
		return;
	}
	if (rc != mrc)
		fprintf(stderr, "vmres %s, model %s\n", vmres_strerror(rc), vmres_strerror(mrc));
	FUZZ_CHECK(rc == mrc);
	check_state(dm, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool registered;
	struct fuzz_in in = {data, size};
	struct vmres_devmgr *dm = NULL;
	struct dm_model m;

	if (!registered) {
		FUZZ_CHECK(vmres_devmgr_thread_register() == 0);
		registered = true;
	}
	memset(devs, 0, sizeof(devs));
	for (unsigned int i = 0; i < MAX_DEVS; i++)
		devs[i].index = i;
	dm_model_init(&m);
	FUZZ_CHECK(vmres_devmgr_new(NULL, &dm) == 0);
	cur_dm = dm;
	while (!fuzz_done(&in))
		step(&in, dm, &m);
	vmres_devmgr_free(dm);
	for (size_t i = 0; i < m.n; i++)
		FUZZ_CHECK(__atomic_load_n(&devs[m.dev[i].tag].released, __ATOMIC_RELAXED) == 1);
	for (size_t i = m.n; i < MAX_DEVS; i++)
		FUZZ_CHECK(devs[i].released == 0);
	return 0;
}
