/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI type-0 configuration space, BARs and MSI wired to a mapper (the device
 * manager once bound), and a configuration-mechanism-#1 host for bus 0.
 *
 * The space is 256 stored bytes plus a byte mask of guest-writable bits, as
 * hardware latches would be: a guest write stores (old & ~wmask) | (new & wmask)
 * byte by byte, so BAR sizing, read-only fields and the size masking of BAR
 * addresses all fall out of the masks. After the bytes are stored, the registers
 * that have side effects (command, BARs, MSI) are compared with what the mapper
 * holds and the mapper is asked to catch up; a refusal rewrites the register.
 *
 * Each BAR keeps, besides its register, the mapper's view of its range: where
 * the range is (mapped_base: where its reservation is, on the bus or not) and
 * whether it is on the bus. Every address the guest writes moves the range at
 * once, decode on or off, so the register differs from mapped_base only while
 * it holds a non-address (0, or a dword written as the sizing probe) and while
 * one half of a 64-bit BAR waits for the other (pending_half).
 */
#include <vmres/pci.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>

#include "devmgr_int.h"
#include "pci_int.h"
#include "util/bits.h"
#include "util/byteorder.h"
#include "util/msi.h"

#define HEADER_END     0x40u
#define MAX_ADDED_CAPS 16

/* Writable bits of the command register: IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE. */
#define COMMAND_WMASK                                                                              \
	(VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY | VMRES_PCI_COMMAND_MASTER |              \
	 VMRES_PCI_COMMAND_PARITY | VMRES_PCI_COMMAND_SERR | VMRES_PCI_COMMAND_INTX_DISABLE)

enum half { HALF_NONE = -1, HALF_LOW = 0, HALF_HIGH = 1 };

struct bar {
	enum vmres_pci_bar_kind kind;
	bool prefetchable;
	uint64_t size;
	unsigned int res_index;
	uint64_t mapped_base; /* where the mapper has the range, mapped or not */
	bool mapped;
	/* The guest's last write of each dword (low, high) before the masks: a
	 * dword written as all ones, type bits aside, is a sizing probe. */
	uint32_t written[2];
	enum half pending_half; /* MEM64: the half whose refused value the register keeps */
	int last_error;
	uint64_t refused;
};

struct msi {
	unsigned int off; /* 0: no capability */
	unsigned int len;
	unsigned int vectors; /* multiple message capable */
	bool addr64;
	bool maskable;
	unsigned int res_index;
	bool routed[VMRES_PCI_MSI_MAX_VECTORS];
	struct vmres_msi_msg routed_msg[VMRES_PCI_MSI_MAX_VECTORS];
	int last_error;
	struct vmres_irq_src *srcs[VMRES_PCI_MSI_MAX_VECTORS]; /* driven if set */
	bool have_srcs;
	/* what msi_changed last reported */
	bool seen_enabled;
	unsigned int seen_vectors;
	uint32_t seen_mask;
};

/* One MSI-X vector: its table entry and what the helper did with it. */
struct msix_vec {
	uint32_t entry[4];		 /* address low, address high, data, vector control */
	struct vmres_msi_msg routed_msg; /* what the mapper holds, if routed */
	bool routed;
	bool pending; /* the device's bit, without sources */
	struct vmres_irq_src *src;
};

struct msix {
	unsigned int off; /* 0: no capability */
	unsigned int vectors;
	unsigned int res_index;
	/* where the table and PBA are: resource index of the BAR, offset, length */
	unsigned int table_res, pba_res;
	uint64_t table_off, table_len, pba_off, pba_len;
	struct msix_vec *vec;
	bool have_srcs;
	int last_error;
	/* what msi_changed last reported */
	uint16_t seen_ctrl;
};

struct devmgr_binding {
	struct vmres_devmgr *m;
	uint32_t instance;
};

/* The configuration-space ranges of the capabilities a device added. */
struct cap_spans {
	unsigned int n;
	struct {
		unsigned int off, len;
	} at[MAX_ADDED_CAPS];
};

struct vmres_pci_func {
	pthread_mutex_t lock; /* recursive: callbacks may call back in */
	uint8_t cfg[VMRES_PCIE_CONFIG_SIZE];
	uint8_t wmask[VMRES_PCIE_CONFIG_SIZE];
	bool library_owned[VMRES_PCIE_CONFIG_SIZE];
	unsigned int space; /* bytes of configuration space: 256, or 4096 for PCI Express */
	struct bar bars[VMRES_PCI_NUM_BARS];
	struct msi msi;
	struct msix msix;
	unsigned int express_off; /* 0: conventional */
	unsigned int last_ext;
	struct cap_spans ext;  /* extended capabilities the device added */
	unsigned int last_cap; /* offset of the last capability in the list, 0 if none */
	struct cap_spans added; /* capabilities the device added */
	const struct vmres_pci_func_ops *ops;
	void *opaque;
	const struct vmres_pci_mapper *mapper;
	void *mapper_ctx;
	struct devmgr_binding binding;
	bool loaded; /* state loaded, not yet bound: bind must keep it */
};

static uint32_t all_ones(unsigned int size)
{
	return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static uint32_t cfg32(const struct vmres_pci_func *f, unsigned int off)
{
	return (uint32_t)vmres__le_load(f->cfg + off, 4);
}

static uint16_t cfg16(const struct vmres_pci_func *f, unsigned int off)
{
	return (uint16_t)(uint32_t)vmres__le_load(f->cfg + off, 2);
}

static void set_reg(struct vmres_pci_func *f, unsigned int off, unsigned int size, uint32_t val,
		    uint32_t wmask)
{
	vmres__le_store(f->cfg + off, size, val);
	vmres__le_store(f->wmask + off, size, wmask);
}

/* An access within one dword of the (largest) space. */
static int check_access(unsigned int off, unsigned int size)
{
	if (off >= VMRES_PCIE_CONFIG_SIZE)
		return VMRES_ERANGE;
	if ((size != 1 && size != 2 && size != 4) || (off & 3u) + size > 4)
		return VMRES_EACCESS;
	return 0;
}

/* ---- the mapper (no mapper: everything succeeds) ---- */

static int mapper_move(struct vmres_pci_func *f, unsigned int res, uint64_t base)
{
	return f->mapper ? f->mapper->move(f->mapper_ctx, res, base) : 0;
}

static int mapper_map(struct vmres_pci_func *f, unsigned int res)
{
	return f->mapper ? f->mapper->map(f->mapper_ctx, res) : 0;
}

static int mapper_unmap(struct vmres_pci_func *f, unsigned int res)
{
	return f->mapper ? f->mapper->unmap(f->mapper_ctx, res) : 0;
}

static int mapper_reroute(struct vmres_pci_func *f, unsigned int res,
			  const struct vmres_msi_msg *msg)
{
	return f->mapper ? f->mapper->reroute_msi(f->mapper_ctx, res, msg) : 0;
}

/* ---- BAR registers ---- */

static uint32_t bar_type_bits(const struct bar *b)
{
	switch (b->kind) {
	case VMRES_PCI_BAR_IO:
		return 0x1;
	case VMRES_PCI_BAR_MEM32:
		return b->prefetchable ? 0x8 : 0x0;
	case VMRES_PCI_BAR_MEM64:
		return 0x4 | (b->prefetchable ? 0x8 : 0x0);
	default:
		return 0;
	}
}

/* The address bits of the register: the guest writes ~(size - 1) of 64 bits. */
static uint64_t bar_addr_mask(const struct bar *b)
{
	uint64_t mask = ~(b->size - 1);

	return b->kind == VMRES_PCI_BAR_MEM64 ? mask : mask & 0xffffffffu;
}

static uint64_t bar_reg_addr(const struct vmres_pci_func *f, unsigned int i)
{
	const struct bar *b = &f->bars[i];
	uint64_t v = cfg32(f, VMRES_PCI_BAR_OFFSET(i));

	if (b->kind == VMRES_PCI_BAR_MEM64)
		v |= (uint64_t)cfg32(f, VMRES_PCI_BAR_OFFSET(i + 1)) << 32;
	return v & bar_addr_mask(b);
}

static void bar_set_reg_addr(struct vmres_pci_func *f, unsigned int i, uint64_t addr)
{
	struct bar *b = &f->bars[i];
	uint64_t v = (addr & bar_addr_mask(b)) | bar_type_bits(b);

	vmres__le_store(f->cfg + VMRES_PCI_BAR_OFFSET(i), 4, (uint32_t)v);
	if (b->kind == VMRES_PCI_BAR_MEM64)
		vmres__le_store(f->cfg + VMRES_PCI_BAR_OFFSET(i + 1), 4, (uint32_t)(v >> 32));
	b->written[0] = (uint32_t)v;
	b->written[1] = (uint32_t)(v >> 32);
}

/* Is a dword of the BAR a sizing probe? Its last write was all ones, type bits aside. */
static bool bar_probing(const struct bar *b)
{
	uint32_t type_mask = b->kind == VMRES_PCI_BAR_IO ? 0x3 : 0xf;

	return (b->written[0] | type_mask) == 0xffffffffu ||
	       (b->kind == VMRES_PCI_BAR_MEM64 && b->written[1] == 0xffffffffu);
}

/* Is the register's address one to map? Not 0 (unassigned), and neither dword
 * a sizing probe; any other value is an address, whatever its bits. */
static bool bar_reg_is_address(const struct vmres_pci_func *f, unsigned int i)
{
	return !bar_probing(&f->bars[i]) && bar_reg_addr(f, i) != 0;
}

/* Keep the guest's write of @p size bytes at byte @p at of the BAR's dword @p half. */
static void bar_latch(struct bar *b, enum half half, unsigned int at, unsigned int size,
		      uint32_t val)
{
	uint32_t *w = &b->written[half == HALF_HIGH];

	for (unsigned int k = 0; k < size; k++) {
		unsigned int sh = 8 * (at + k);

		*w = (*w & ~(0xffu << sh)) | (((val >> (8 * k)) & 0xffu) << sh);
	}
}

static uint16_t decode_bit(const struct bar *b)
{
	return b->kind == VMRES_PCI_BAR_IO ? VMRES_PCI_COMMAND_IO : VMRES_PCI_COMMAND_MEMORY;
}

static bool bar_decoding(const struct vmres_pci_func *f, const struct bar *b)
{
	return cfg16(f, VMRES_PCI_COMMAND) & decode_bit(b);
}

static void bar_refused(struct bar *b, int rc)
{
	b->last_error = rc;
	b->refused++;
}

/* Put the range on the bus where it is reserved; a refusal leaves it off. */
static void bar_map(struct vmres_pci_func *f, struct bar *b)
{
	int rc = mapper_map(f, b->res_index);

	if (rc) {
		bar_refused(b, rc);
		return;
	}
	b->mapped = true;
	b->last_error = 0;
}

/*
 * The guest wrote BAR @i's register (half @half of a MEM64). An address moves
 * the range (its reservation, and the range on the bus if it is mapped) at
 * once, decode on or off; a refused move shows where the range is again.
 */
static void bar_written(struct vmres_pci_func *f, unsigned int i, enum half half)
{
	struct bar *b = &f->bars[i];
	uint64_t addr = bar_reg_addr(f, i);
	int rc;

	if (!bar_reg_is_address(f, i))
		return; /* sizing, or 0: the range stays where it is */
	rc = addr == b->mapped_base ? 0 : mapper_move(f, b->res_index, addr);
	if (!rc) {
		if (addr != b->mapped_base)
			b->last_error = 0;
		b->mapped_base = addr;
		b->pending_half = HALF_NONE;
		/* With decode on, an address after a non-address puts it on the bus. */
		if (bar_decoding(f, b) && !b->mapped)
			bar_map(f, b);
		return;
	}
	bar_refused(b, rc);
	/*
	 * A half of a 64-bit address may be refused only because the other half
	 * is still the old one: keep it for the other half to complete. Refused
	 * again after that, the whole BAR goes back to where the range is.
	 */
	if (b->kind == VMRES_PCI_BAR_MEM64 && half != HALF_NONE &&
	    b->pending_half != (half == HALF_LOW ? HALF_HIGH : HALF_LOW)) {
		b->pending_half = half;
		return;
	}
	b->pending_half = HALF_NONE;
	bar_set_reg_addr(f, i, b->mapped_base);
}

static void bar_decode_on(struct vmres_pci_func *f, struct bar *b, unsigned int i)
{
	if (b->pending_half != HALF_NONE) {
		/* A half refused alone, never completed: show where the range is. */
		b->pending_half = HALF_NONE;
		bar_set_reg_addr(f, i, b->mapped_base);
	}
	/* Not an address: off the bus until the guest writes one. Else the
	 * register is where the range is reserved (moves are made as written). */
	if (!b->mapped && bar_reg_is_address(f, i))
		bar_map(f, b);
}

static void bar_decode_off(struct vmres_pci_func *f, struct bar *b)
{
	int rc;

	if (!b->mapped)
		return;
	rc = mapper_unmap(f, b->res_index);
	if (rc) {
		bar_refused(b, rc);
		return;
	}
	b->mapped = false;
	b->last_error = 0;
}

static void command_written(struct vmres_pci_func *f, uint16_t old_cmd)
{
	uint16_t cmd = cfg16(f, VMRES_PCI_COMMAND);
	uint16_t changed = cmd ^ old_cmd;

	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		struct bar *b = &f->bars[i];

		if (b->kind == VMRES_PCI_BAR_NONE || !(changed & decode_bit(b)))
			continue;
		if (cmd & decode_bit(b))
			bar_decode_on(f, b, i);
		else
			bar_decode_off(f, b);
	}
}

/* Which BAR (and half) does config dword @off belong to? -1 if none. */
static int bar_of_offset(const struct vmres_pci_func *f, unsigned int off, enum half *half)
{
	if (off < VMRES_PCI_BAR_OFFSET(0) || off >= VMRES_PCI_BAR_OFFSET(VMRES_PCI_NUM_BARS))
		return -1;
	unsigned int slot = (off - VMRES_PCI_BAR_OFFSET(0)) / 4;

	if (f->bars[slot].kind != VMRES_PCI_BAR_NONE) {
		*half = f->bars[slot].kind == VMRES_PCI_BAR_MEM64 ? HALF_LOW : HALF_NONE;
		return (int)slot;
	}
	if (slot > 0 && f->bars[slot - 1].kind == VMRES_PCI_BAR_MEM64) {
		*half = HALF_HIGH;
		return (int)slot - 1;
	}
	return -1;
}

/* ---- MSI ---- */

static uint16_t msix_ctrl(const struct vmres_pci_func *f)
{
	return f->msix.off ? cfg16(f, f->msix.off + 2) : 0;
}

static bool msix_enabled(const struct vmres_pci_func *f)
{
	return msix_ctrl(f) & VMRES_PCI_MSIX_CTRL_ENABLE;
}

static unsigned int msi_data_off(const struct msi *m)
{
	return m->off + (m->addr64 ? 0xc : 0x8);
}

static unsigned int msi_mask_off(const struct msi *m)
{
	return m->off + (m->addr64 ? 0x10 : 0xc);
}

static unsigned int log2u(unsigned int x)
{
	unsigned int l = 0;

	while (x > 1) {
		x >>= 1;
		l++;
	}
	return l;
}

static void msi_read_state(const struct vmres_pci_func *f, struct vmres_pci_msi_state *s)
{
	const struct msi *m = &f->msi;
	uint16_t ctrl = cfg16(f, m->off + 2);
	unsigned int mme = (ctrl >> VMRES_PCI_MSI_CTRL_MME_SHIFT) & 7u;
	unsigned int mmc = log2u(m->vectors);

	memset(s, 0, sizeof(*s));
	s->enabled = ctrl & VMRES_PCI_MSI_CTRL_ENABLE;
	s->vectors = 1u << (mme < mmc ? mme : mmc);
	s->msg.addr_lo = cfg32(f, m->off + 4);
	s->msg.addr_hi = m->addr64 ? cfg32(f, m->off + 8) : 0;
	s->msg.data = cfg16(f, msi_data_off(m));
	if (m->maskable) {
		s->mask = cfg32(f, msi_mask_off(m));
		s->pending = cfg32(f, msi_mask_off(m) + 4);
	}
	s->last_error = m->last_error;
}

/* Vector @v's message: the function sets the low log2(vectors) bits of the data. */
static struct vmres_msi_msg msi_vector_msg(const struct vmres_pci_msi_state *s, unsigned int v)
{
	struct vmres_msi_msg msg = s->msg;

	msg.data = (msg.data & ~(s->vectors - 1)) | v;
	return msg;
}

/*
 * Enable the sources of the enabled vectors, disable the others, follow the
 * mask bits. A vector being masked is masked before it is enabled, and one
 * being unmasked is unmasked after, so that nothing slips through in between.
 */
static void msi_sync_sources(struct vmres_pci_func *f, const struct vmres_pci_msi_state *s)
{
	struct msi *m = &f->msi;
	/* MSI and MSI-X both enabled is undefined: MSI-X wins. */
	bool on = s->enabled && !msix_enabled(f);

	for (unsigned int v = 0; m->have_srcs && v < m->vectors; v++) {
		struct vmres_irq_src *src = m->srcs[v];
		bool masked = s->mask & (1u << v);
		int rc;

		if (masked)
			(void)vmres_irq_src_mask(src);
		if (on && v < s->vectors)
			(void)vmres_irq_src_enable(src);
		else
			(void)vmres_irq_src_disable(src);
		if (!masked) {
			rc = vmres_irq_src_unmask(src);
			if (rc)
				m->last_error = rc;
		}
	}
}

/* With sources, the pending bits are theirs. */
static void msi_refresh_pending(struct vmres_pci_func *f)
{
	struct msi *m = &f->msi;
	uint32_t bits = 0;

	if (!m->have_srcs || !m->maskable)
		return;
	for (unsigned int v = 0; v < m->vectors; v++) {
		struct vmres_irq_src_state st;

		if (!vmres_irq_src_get_state(m->srcs[v], &st) && st.pending)
			bits |= 1u << v;
	}
	vmres__le_store(f->cfg + msi_mask_off(m) + 4, 4, bits);
}

static void msi_written(struct vmres_pci_func *f)
{
	struct msi *m = &f->msi;
	struct vmres_pci_msi_state s;

	msi_read_state(f, &s);
	if (s.enabled) {
		bool tried = false;
		int err = 0;

		for (unsigned int v = 0; v < s.vectors; v++) {
			struct vmres_msi_msg msg = msi_vector_msg(&s, v);
			int rc;

			if (m->routed[v] && vmres__msi_msg_equal(&m->routed_msg[v], &msg))
				continue;
			rc = mapper_reroute(f, m->res_index + v, &msg);
			tried = true;
			if (rc) {
				/* A refused vector stays unrouted (tried again at the
				 * next write) and is reported even if later ones pass. */
				m->routed[v] = false;
				err = err ? err : rc;
			} else {
				m->routed[v] = true;
				m->routed_msg[v] = msg;
			}
		}
		if (tried)
			m->last_error = err;
	}
	msi_sync_sources(f, &s);
	if (s.enabled == m->seen_enabled && s.vectors == m->seen_vectors && s.mask == m->seen_mask)
		return;
	m->seen_enabled = s.enabled;
	m->seen_vectors = s.vectors;
	m->seen_mask = s.mask;
	if (f->ops && f->ops->msi_changed)
		f->ops->msi_changed(f->opaque, f);
}

/* ---- MSI-X ---- */

/* Bytes of the pending-bit array: one bit per vector, in whole qwords. */
static uint64_t msix_pba_len(unsigned int vectors)
{
	return 8 * (((uint64_t)vectors + 63) / 64);
}

static struct vmres_msi_msg msix_msg(const struct msix_vec *e)
{
	return (struct vmres_msi_msg){e->entry[0], e->entry[1], e->entry[2]};
}

/* Delivered now if it fired: enabled, function and vector unmasked. */
static bool msix_vec_active(const struct vmres_pci_func *f, const struct msix_vec *e)
{
	uint16_t ctrl = msix_ctrl(f);

	return (ctrl & VMRES_PCI_MSIX_CTRL_ENABLE) && !(ctrl & VMRES_PCI_MSIX_CTRL_MASKALL) &&
	       !(e->entry[3] & VMRES_PCI_MSIX_VECTOR_MASKED);
}

/* Does the mapper hold the entry's message? */
static bool msix_vec_routed(const struct msix_vec *e)
{
	struct vmres_msi_msg msg = msix_msg(e);

	return e->routed && vmres__msi_msg_equal(&e->routed_msg, &msg);
}

/*
 * Bring vector @v's route and source in line with the registers: an active
 * vector's message is routed first, then its source unmasked (which delivers
 * an interrupt held pending, with that message). A masked source is masked
 * before it is enabled, so that nothing slips through in between.
 */
static void msix_sync_vector(struct vmres_pci_func *f, unsigned int v)
{
	struct msix *x = &f->msix;
	struct msix_vec *e = &x->vec[v];
	bool active = msix_vec_active(f, e);
	bool deliver;
	int rc;

	if (active && !msix_vec_routed(e)) {
		struct vmres_msi_msg msg = msix_msg(e);

		rc = mapper_reroute(f, x->res_index + v, &msg);
		x->last_error = rc;
		if (!rc) {
			e->routed = true;
			e->routed_msg = msg;
		}
	}
	if (!x->have_srcs)
		return;
	deliver = active && msix_vec_routed(e);
	if (!deliver)
		(void)vmres_irq_src_mask(e->src);
	if (msix_enabled(f))
		(void)vmres_irq_src_enable(e->src);
	else
		(void)vmres_irq_src_disable(e->src);
	if (deliver) {
		rc = vmres_irq_src_unmask(e->src);
		if (rc)
			x->last_error = rc;
	}
}

static bool msix_pending(const struct msix *x, unsigned int v)
{
	struct vmres_irq_src_state st;

	if (!x->have_srcs)
		return x->vec[v].pending;
	return !vmres_irq_src_get_state(x->vec[v].src, &st) && st.pending;
}

static void msix_report(struct vmres_pci_func *f, bool mask_changed)
{
	uint16_t ctrl = msix_ctrl(f) & (VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);

	if (ctrl == f->msix.seen_ctrl && !mask_changed)
		return;
	f->msix.seen_ctrl = ctrl;
	if (f->ops && f->ops->msi_changed)
		f->ops->msi_changed(f->opaque, f);
}

/* The guest wrote the capability: enable or function mask may have changed. */
static void msix_cap_written(struct vmres_pci_func *f, uint16_t old_ctrl)
{
	uint16_t ctrl = msix_ctrl(f);
	struct vmres_pci_msi_state s;

	if (ctrl == old_ctrl)
		return;
	for (unsigned int v = 0; v < f->msix.vectors; v++)
		msix_sync_vector(f, v);
	if (((ctrl ^ old_ctrl) & VMRES_PCI_MSIX_CTRL_ENABLE) && f->msi.off) {
		msi_read_state(f, &s);
		msi_sync_sources(f, &s); /* MSI-X wins over MSI */
	}
	msix_report(f, false);
}

/* Which part of the MSI-X structures does a BAR access touch? */
enum msix_part { MSIX_NONE, MSIX_TABLE, MSIX_PBA, MSIX_PARTIAL };

static enum msix_part msix_part_of(const struct msix *x, unsigned int res, uint64_t off,
				   unsigned int size, uint64_t *rel)
{
	uint64_t end = off + size;

	if (res == x->table_res && off < x->table_off + x->table_len && x->table_off < end) {
		*rel = off - x->table_off;
		return off >= x->table_off && end <= x->table_off + x->table_len ? MSIX_TABLE
										 : MSIX_PARTIAL;
	}
	if (res == x->pba_res && off < x->pba_off + x->pba_len && x->pba_off < end) {
		*rel = off - x->pba_off;
		return off >= x->pba_off && end <= x->pba_off + x->pba_len ? MSIX_PBA
									   : MSIX_PARTIAL;
	}
	return MSIX_NONE;
}

/* Byte @rel of the table or PBA. Function lock held. */
static uint8_t msix_byte(const struct msix *x, enum msix_part part, uint64_t rel)
{
	uint8_t b = 0;

	if (part == MSIX_TABLE)
		return (uint8_t)(x->vec[rel / 16].entry[(rel % 16) / 4] >> (8 * (rel % 4)));
	for (unsigned int k = 0; k < 8; k++) {
		unsigned int v = (unsigned int)(rel * 8 + k);

		if (v < x->vectors && msix_pending(x, v))
			b |= (uint8_t)(1u << k);
	}
	return b;
}

/* The guest wrote dword @w of vector @v's entry: the bits it may write. */
static void msix_store(struct msix_vec *e, unsigned int w, uint32_t val)
{
	static const uint32_t wmask[4] = {0xfffffffcu, 0xffffffffu, 0xffffffffu,
					  VMRES_PCI_MSIX_VECTOR_MASKED};

	e->entry[w] = val & wmask[w];
}

static void msix_table_write(struct vmres_pci_func *f, uint64_t rel, unsigned int size,
			     uint64_t val)
{
	struct msix_vec *e = &f->msix.vec[rel / 16];
	uint32_t old_mask = e->entry[3];

	/* Aligned dwords and aligned qwords only (PCI Express Base 6.0,
	 * 6.1.4.2 "MSI-X": other accesses are undefined); others are ignored. */
	if ((size != 4 && size != 8) || (rel & (size - 1)))
		return;
	for (unsigned int k = 0; k < size / 4; k++)
		msix_store(e, (unsigned int)((rel % 16) / 4) + k, (uint32_t)(val >> (32 * k)));
	msix_sync_vector(f, (unsigned int)(rel / 16));
	if (old_mask != e->entry[3])
		msix_report(f, true);
}

/* The MSI-X part (> 0) an access to BAR resource @p res_index goes to, its
 * offset in the part in *@p rel; or a VMRES_E* code. */
static int bar_access_part(struct vmres_pci_func *f, unsigned int res_index, uint64_t offset,
			   unsigned int size, uint64_t *rel)
{
	enum msix_part part;

	if (!f)
		return VMRES_EINVAL;
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return VMRES_EACCESS;
	if (!f->msix.off)
		return VMRES_ENOENT;
	part = msix_part_of(&f->msix, res_index, offset, size, rel);
	return part == MSIX_NONE ? VMRES_ENOENT : (int)part;
}

int vmres_pci_func_bar_read(struct vmres_pci_func *f, unsigned int res_index, uint64_t offset,
			    unsigned int size, uint64_t *val)
{
	uint64_t rel = 0, v = 0;
	int part = val ? bar_access_part(f, res_index, offset, size, &rel) : VMRES_EINVAL;

	if (part < 0)
		return part;
	if (part == MSIX_PARTIAL) {
		*val = VMRES__ONES(size);
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	for (unsigned int k = 0; k < size; k++)
		v |= (uint64_t)msix_byte(&f->msix, (enum msix_part)part, rel + k) << (8 * k);
	pthread_mutex_unlock(&f->lock);
	*val = v;
	return 0;
}

int vmres_pci_func_bar_write(struct vmres_pci_func *f, unsigned int res_index, uint64_t offset,
			     unsigned int size, uint64_t val)
{
	uint64_t rel = 0;
	int part = bar_access_part(f, res_index, offset, size, &rel);

	if (part < 0)
		return part;
	if (part != MSIX_TABLE)
		return 0; /* the PBA is read-only; a partial access is ignored */
	pthread_mutex_lock(&f->lock);
	msix_table_write(f, rel, size, val);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_msix_get(struct vmres_pci_func *f, struct vmres_pci_msix_state *out)
{
	uint16_t ctrl;

	if (!f || !out)
		return VMRES_EINVAL;
	if (!f->msix.off)
		return VMRES_ENOENT;
	pthread_mutex_lock(&f->lock);
	ctrl = msix_ctrl(f);
	memset(out, 0, sizeof(*out));
	out->enabled = ctrl & VMRES_PCI_MSIX_CTRL_ENABLE;
	out->function_mask = ctrl & VMRES_PCI_MSIX_CTRL_MASKALL;
	out->msi_overridden = out->enabled && f->msi.off &&
			      (cfg16(f, f->msi.off + 2) & VMRES_PCI_MSI_CTRL_ENABLE);
	out->vectors = f->msix.vectors;
	out->last_error = f->msix.last_error;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_msix_vector_get(struct vmres_pci_func *f, unsigned int vector,
				   struct vmres_pci_msix_vector *out)
{
	const struct msix_vec *e;

	if (!f || !out)
		return VMRES_EINVAL;
	if (!f->msix.off)
		return VMRES_ENOENT;
	if (vector >= f->msix.vectors)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	e = &f->msix.vec[vector];
	memset(out, 0, sizeof(*out));
	out->msg = msix_msg(e);
	out->masked = e->entry[3] & VMRES_PCI_MSIX_VECTOR_MASKED;
	out->pending = msix_pending(&f->msix, vector);
	out->routed = e->routed;
	if (e->routed)
		out->routed_msg = e->routed_msg;
	out->active = msix_vec_active(f, e) && msix_vec_routed(e);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_msix_set_pending(struct vmres_pci_func *f, unsigned int vector, bool pending)
{
	if (!f)
		return VMRES_EINVAL;
	if (!f->msix.off)
		return VMRES_ENOENT;
	if (vector >= f->msix.vectors)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	f->msix.vec[vector].pending = pending;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* The arguments of set_msi_sources()/set_msix_sources() for a capability at
 * @p cap_off (0: none) of @p vectors vectors: NULL (n = 0) or one source each. */
static int check_sources(unsigned int cap_off, unsigned int vectors,
			 struct vmres_irq_src *const *srcs, unsigned int n)
{
	if (n && !srcs)
		return VMRES_EINVAL;
	if (!cap_off)
		return VMRES_ENOENT;
	if (n && n != vectors)
		return VMRES_EINVAL;
	for (unsigned int v = 0; v < n; v++)
		if (!srcs[v])
			return VMRES_EINVAL;
	return 0;
}

int vmres_pci_func_set_msix_sources(struct vmres_pci_func *f, struct vmres_irq_src *const *srcs,
				    unsigned int n)
{
	int rc = f ? check_sources(f->msix.off, f->msix.vectors, srcs, n) : VMRES_EINVAL;

	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	for (unsigned int v = 0; v < f->msix.vectors; v++) {
		f->msix.vec[v].src = n ? srcs[v] : NULL;
		f->msix.vec[v].pending = false;
	}
	f->msix.have_srcs = n > 0;
	for (unsigned int v = 0; v < n; v++)
		msix_sync_vector(f, v);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_fire(struct vmres_pci_func *f, unsigned int vector)
{
	struct vmres_pci_msi_state s;
	int rc;

	if (!f)
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	if (msix_enabled(f)) {
		if (vector >= f->msix.vectors)
			rc = VMRES_ERANGE;
		else if (!f->msix.have_srcs)
			rc = VMRES_ENOTSUP;
		else
			rc = vmres_irq_src_trigger(f->msix.vec[vector].src);
	} else if (f->msi.off && (cfg16(f, f->msi.off + 2) & VMRES_PCI_MSI_CTRL_ENABLE)) {
		msi_read_state(f, &s);
		if (vector >= f->msi.vectors)
			rc = VMRES_ERANGE;
		else if (vector >= s.vectors)
			rc = VMRES_ESTATE;
		else if (!f->msi.have_srcs)
			rc = VMRES_ENOTSUP;
		else
			rc = vmres_irq_src_trigger(f->msi.srcs[vector]);
	} else {
		rc = vector >= f->msix.vectors && vector >= f->msi.vectors ? VMRES_ERANGE
									   : VMRES_ESTATE;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- capabilities ---- */

static void cap_link(struct vmres_pci_func *f, unsigned int off, uint8_t id)
{
	f->cfg[off] = id;
	f->cfg[off + 1] = 0;
	f->wmask[off] = f->wmask[off + 1] = 0;
	f->library_owned[off] = f->library_owned[off + 1] = true;
	if (f->last_cap)
		f->cfg[f->last_cap + 1] = (uint8_t)off;
	else
		f->cfg[VMRES_PCI_CAP_PTR] = (uint8_t)off;
	f->last_cap = off;
	vmres__le_store(f->cfg + VMRES_PCI_STATUS, 2,
			cfg16(f, VMRES_PCI_STATUS) | VMRES_PCI_STATUS_CAP_LIST);
}

/*
 * Bytes of the capability: 0xa, 0xe, 0x14 or 0x18 by the specification, rounded
 * up to whole dwords so that a dword access never mixes it with device bytes.
 */
static unsigned int msi_cap_len(const struct vmres_pci_msi *d)
{
	return (d->addr64 ? 0x10 : 0xc) + (d->per_vector_mask ? 0x8 : 0);
}

static void msi_init(struct vmres_pci_func *f, const struct vmres_pci_msi *d)
{
	struct msi *m = &f->msi;
	unsigned int off = d->offset ? d->offset : HEADER_END;
	uint16_t ctrl = (uint16_t)(log2u(d->vectors) << VMRES_PCI_MSI_CTRL_MMC_SHIFT);

	m->off = off;
	m->vectors = d->vectors;
	m->addr64 = d->addr64;
	m->maskable = d->per_vector_mask;
	m->res_index = d->res_index;
	m->len = msi_cap_len(d);
	m->seen_vectors = 1;
	for (unsigned int i = 0; i < m->len; i++)
		f->library_owned[off + i] = true;
	cap_link(f, off, VMRES_PCI_CAP_ID_MSI);
	if (d->addr64)
		ctrl |= VMRES_PCI_MSI_CTRL_64BIT;
	if (d->per_vector_mask)
		ctrl |= VMRES_PCI_MSI_CTRL_MASKABLE;
	set_reg(f, off + 2, 2, ctrl,
		VMRES_PCI_MSI_CTRL_ENABLE | (7u << VMRES_PCI_MSI_CTRL_MME_SHIFT));
	set_reg(f, off + 4, 4, 0, 0xfffffffcu);
	if (d->addr64)
		set_reg(f, off + 8, 4, 0, 0xffffffffu);
	set_reg(f, msi_data_off(m), 2, 0, 0xffffu);
	if (d->per_vector_mask) {
		uint32_t bits = d->vectors == 32 ? 0xffffffffu : (1u << d->vectors) - 1;

		set_reg(f, msi_mask_off(m), 4, 0, bits);
	}
}

static void own(struct vmres_pci_func *f, unsigned int off, unsigned int len)
{
	for (unsigned int i = 0; i < len; i++)
		f->library_owned[off + i] = true;
}

static void msix_init(struct vmres_pci_func *f, const struct vmres_pci_func_config *cfg,
		      unsigned int off, struct msix_vec *vec)
{
	const struct vmres_pci_msix *d = &cfg->msix;
	struct msix *x = &f->msix;

	x->off = off;
	x->vectors = d->vectors;
	x->res_index = d->res_index;
	x->table_res = cfg->bars[d->table_bar].res_index;
	x->table_off = d->table_offset;
	x->table_len = (uint64_t)d->vectors * VMRES_PCI_MSIX_ENTRY_SIZE;
	x->pba_res = cfg->bars[d->pba_bar].res_index;
	x->pba_off = d->pba_offset;
	x->pba_len = msix_pba_len(d->vectors);
	x->vec = vec;
	/* Every vector starts masked (PCI Express Base 6.0, 7.7.2.5). */
	for (unsigned int v = 0; v < d->vectors; v++)
		vec[v].entry[3] = VMRES_PCI_MSIX_VECTOR_MASKED;
	own(f, off, VMRES_PCI_MSIX_CAP_SIZE);
	cap_link(f, off, VMRES_PCI_CAP_ID_MSIX);
	set_reg(f, off + 2, 2, d->vectors - 1,
		VMRES_PCI_MSIX_CTRL_ENABLE | VMRES_PCI_MSIX_CTRL_MASKALL);
	set_reg(f, off + 4, 4, d->table_offset | d->table_bar, 0);
	set_reg(f, off + 8, 4, d->pba_offset | d->pba_bar, 0);
}

/*
 * A PCI Express capability, version 2 (PCI Express Base 6.0, 7.5.3): 128-byte
 * payloads, role-based error reporting, device control writable; an endpoint
 * has a x1 2.5 GT/s link that is always up, an integrated endpoint none.
 * Nothing else is implemented (slot and root registers read 0).
 */
static void express_init(struct vmres_pci_func *f, unsigned int off, bool integrated)
{
	f->express_off = off;
	f->space = VMRES_PCIE_CONFIG_SIZE;
	own(f, off, VMRES_PCI_EXP_CAP_SIZE);
	cap_link(f, off, VMRES_PCI_CAP_ID_EXP);
	set_reg(f, off + 0x02, 2, 0x0002 | (integrated ? 0x90 : 0x00), 0);
	set_reg(f, off + 0x04, 4, 0x00008000, 0);  /* devcap: role-based errors */
	set_reg(f, off + 0x08, 2, 0x2810, 0x7fff); /* devctl: RO, no snoop, 512 B reads */
	if (!integrated) {
		set_reg(f, off + 0x0c, 4, 0x00000011, 0); /* linkcap: 2.5 GT/s, x1 */
		set_reg(f, off + 0x10, 2, 0, 0x03cb);	  /* linkctl */
		set_reg(f, off + 0x12, 2, 0x0011, 0);	  /* linksta: 2.5 GT/s, x1 */
		set_reg(f, off + 0x2c, 4, 0x00000002, 0); /* linkcap2: 2.5 GT/s supported */
		set_reg(f, off + 0x30, 2, 0x0001, 0);	  /* linkctl2: target 2.5 GT/s */
	}
	/* No extended capability: a zero header at 0x100 until one is added. */
	own(f, VMRES_PCIE_EXT_CAP_START, 4);
}

static bool overlaps_msi(const struct vmres_pci_func *f, unsigned int off, unsigned int size)
{
	const struct msi *m = &f->msi;

	return m->off && vmres__ranges_overlap(off, off + size - 1, m->off, m->off + m->len - 1u);
}

static bool overlaps_msix(const struct vmres_pci_func *f, unsigned int off, unsigned int size)
{
	const struct msix *x = &f->msix;

	return x->off && vmres__ranges_overlap(off, off + size - 1, x->off,
					       x->off + VMRES_PCI_MSIX_CAP_SIZE - 1u);
}

/* ---- creation ---- */

static int check_bar(const struct vmres_pci_bar *d, const struct vmres_pci_bar *next,
		     unsigned int slot)
{
	uint64_t min, max;

	switch (d->kind) {
	case VMRES_PCI_BAR_NONE:
		return 0;
	case VMRES_PCI_BAR_MEM32:
		min = 16, max = 1ull << 31;
		break;
	case VMRES_PCI_BAR_MEM64:
		if (slot + 1 >= VMRES_PCI_NUM_BARS || next->kind != VMRES_PCI_BAR_NONE)
			return VMRES_EINVAL;
		min = 16, max = 1ull << 63;
		break;
	case VMRES_PCI_BAR_IO:
		min = 4, max = 0x10000;
		break;
	default:
		return VMRES_EINVAL;
	}
	if (d->size < min)
		return VMRES_ESIZE;
	if (!vmres__is_pow2(d->size))
		return VMRES_EALIGN;
	if (d->size > max)
		return VMRES_ERANGE;
	if (d->addr & (d->size - 1))
		return VMRES_EMISALIGNED;
	if (d->kind == VMRES_PCI_BAR_MEM32 && d->addr > 0xffffffffu - (d->size - 1))
		return VMRES_ERANGE;
	if (d->kind == VMRES_PCI_BAR_IO && d->addr > 0xffffu - (d->size - 1))
		return VMRES_ERANGE;
	return 0;
}

/* Is BAR slot @p slot a memory BAR (the low slot of a MEM64)? */
static bool is_mem_bar(const struct vmres_pci_func_config *cfg, unsigned int slot)
{
	if (slot >= VMRES_PCI_NUM_BARS)
		return false;
	if (slot > 0 && cfg->bars[slot - 1].kind == VMRES_PCI_BAR_MEM64)
		return false;
	return cfg->bars[slot].kind == VMRES_PCI_BAR_MEM32 ||
	       cfg->bars[slot].kind == VMRES_PCI_BAR_MEM64;
}

/* The table and PBA: aligned, inside their BARs, apart. */
static int check_msix(const struct vmres_pci_func_config *cfg)
{
	const struct vmres_pci_msix *d = &cfg->msix;
	uint64_t tlen = (uint64_t)d->vectors * VMRES_PCI_MSIX_ENTRY_SIZE;
	uint64_t plen = msix_pba_len(d->vectors);

	if (!d->vectors)
		return 0;
	if (d->vectors > VMRES_PCI_MSIX_MAX_VECTORS || !is_mem_bar(cfg, d->table_bar) ||
	    !is_mem_bar(cfg, d->pba_bar))
		return VMRES_EINVAL;
	if ((d->table_offset & 7u) || (d->pba_offset & 7u))
		return VMRES_EMISALIGNED;
	if (d->table_offset + tlen > cfg->bars[d->table_bar].size ||
	    d->pba_offset + plen > cfg->bars[d->pba_bar].size)
		return VMRES_ERANGE;
	if (d->table_bar == d->pba_bar && d->table_offset < d->pba_offset + plen &&
	    d->pba_offset < d->table_offset + tlen)
		return VMRES_EOVERLAP;
	return 0;
}

struct cap_places {
	unsigned int msix, express;
};

/* Where the MSI-X and PCI Express capabilities go: as declared, or one after
 * the other after MSI. */
static int place_caps(const struct vmres_pci_func_config *cfg, struct cap_places *out)
{
	unsigned int msi_off = cfg->msi.offset ? cfg->msi.offset : HEADER_END;
	unsigned int msi_len = cfg->msi.vectors ? msi_cap_len(&cfg->msi) : 0;
	unsigned int next = cfg->msi.vectors ? msi_off + msi_len : HEADER_END;
	struct {
		bool on;
		unsigned int off, len;
	} c[2] = {
		{cfg->msix.vectors != 0, cfg->msix.offset, VMRES_PCI_MSIX_CAP_SIZE},
		{cfg->express.enabled, cfg->express.offset, VMRES_PCI_EXP_CAP_SIZE},
	};

	for (unsigned int i = 0; i < 2; i++) {
		if (!c[i].on)
			continue;
		if (!c[i].off)
			c[i].off = next;
		if ((c[i].off & 3u) || c[i].off < HEADER_END ||
		    c[i].off + c[i].len > VMRES_PCI_CONFIG_SIZE)
			return VMRES_EINVAL;
		if (msi_len && c[i].off < msi_off + msi_len && msi_off < c[i].off + c[i].len)
			return VMRES_EOVERLAP;
		if (i == 1 && c[0].on && c[1].off < c[0].off + c[0].len &&
		    c[0].off < c[1].off + c[1].len)
			return VMRES_EOVERLAP;
		if (c[i].off + c[i].len > next)
			next = c[i].off + c[i].len;
	}
	if (out)
		*out = (struct cap_places){c[0].off, c[1].off};
	return 0;
}

static int check_config(const struct vmres_pci_func_config *cfg)
{
	const struct vmres_pci_msi *msi = &cfg->msi;
	int rc;

	if (cfg->version != VMRES_PCI_FUNC_CONFIG_VERSION || cfg->vendor_id == 0xffff ||
	    cfg->interrupt_pin > 4 || cfg->class_code > 0xffffffu)
		return VMRES_EINVAL;
	if (cfg->ops && cfg->ops->version != VMRES_PCI_FUNC_OPS_VERSION)
		return VMRES_EINVAL;
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		/* the slot after a MEM64 is its upper half */
		if (i > 0 && cfg->bars[i - 1].kind == VMRES_PCI_BAR_MEM64)
			continue;
		rc = check_bar(&cfg->bars[i], i + 1 < VMRES_PCI_NUM_BARS ? &cfg->bars[i + 1] : NULL,
			       i);
		if (rc)
			return rc;
	}
	if (msi->vectors) {
		unsigned int off = msi->offset ? msi->offset : HEADER_END;
		unsigned int len = msi_cap_len(msi);

		if (!vmres__is_pow2(msi->vectors) || msi->vectors > VMRES_PCI_MSI_MAX_VECTORS)
			return VMRES_EALIGN;
		if ((off & 3u) || off < HEADER_END || off + len > VMRES_PCI_CONFIG_SIZE)
			return VMRES_EINVAL;
	}
	rc = check_msix(cfg);
	if (rc)
		return rc;
	return place_caps(cfg, NULL);
}

static int init_lock(pthread_mutex_t *lock, bool recursive)
{
	pthread_mutexattr_t attr;
	int rc;

	if (pthread_mutexattr_init(&attr))
		return VMRES_ENOMEM;
	if (recursive)
		pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc ? VMRES_ENOMEM : 0;
}

static void init_header(struct vmres_pci_func *f, const struct vmres_pci_func_config *cfg)
{
	set_reg(f, VMRES_PCI_VENDOR_ID, 2, cfg->vendor_id, 0);
	set_reg(f, VMRES_PCI_DEVICE_ID, 2, cfg->device_id, 0);
	set_reg(f, VMRES_PCI_COMMAND, 2, cfg->command & COMMAND_WMASK, COMMAND_WMASK);
	set_reg(f, VMRES_PCI_REVISION, 1, cfg->revision, 0);
	set_reg(f, VMRES_PCI_CLASS_PROG, 1, cfg->class_code & 0xff, 0);
	set_reg(f, VMRES_PCI_CLASS_PROG + 1, 2, cfg->class_code >> 8, 0);
	set_reg(f, 0x0c, 1, 0, 0xff); /* cache line size */
	set_reg(f, VMRES_PCI_HEADER_TYPE, 1, cfg->multifunction ? 0x80 : 0x00, 0);
	set_reg(f, VMRES_PCI_SUBSYS_VENDOR, 2, cfg->subsystem_vendor_id, 0);
	set_reg(f, VMRES_PCI_SUBSYS_ID, 2, cfg->subsystem_id, 0);
	set_reg(f, VMRES_PCI_INT_LINE, 1, cfg->interrupt_line, 0xff);
	set_reg(f, VMRES_PCI_INT_PIN, 1, cfg->interrupt_pin, 0);
	for (unsigned int i = 0; i < HEADER_END; i++)
		f->library_owned[i] = true;
}

static void init_bars(struct vmres_pci_func *f, const struct vmres_pci_func_config *cfg)
{
	uint16_t cmd = cfg16(f, VMRES_PCI_COMMAND);

	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct vmres_pci_bar *d = &cfg->bars[i];
		struct bar *b = &f->bars[i];
		uint64_t mask;

		if (i > 0 && cfg->bars[i - 1].kind == VMRES_PCI_BAR_MEM64)
			continue;
		b->kind = d->kind;
		b->pending_half = HALF_NONE;
		if (d->kind == VMRES_PCI_BAR_NONE)
			continue;
		b->prefetchable = d->kind != VMRES_PCI_BAR_IO && d->prefetchable;
		b->size = d->size;
		b->res_index = d->res_index;
		b->mapped_base = d->addr;
		b->mapped = (cmd & decode_bit(b)) && d->addr != 0;
		mask = bar_addr_mask(b);
		vmres__le_store(f->wmask + VMRES_PCI_BAR_OFFSET(i), 4, (uint32_t)mask);
		if (b->kind == VMRES_PCI_BAR_MEM64)
			vmres__le_store(f->wmask + VMRES_PCI_BAR_OFFSET(i + 1), 4,
					(uint32_t)(mask >> 32));
		bar_set_reg_addr(f, i, d->addr);
	}
}

int vmres_pci_func_new(const struct vmres_pci_func_config *cfg_in, struct vmres_pci_func **out)
{
	struct vmres_pci_func_config cfg_v1, *cfg = (struct vmres_pci_func_config *)cfg_in;
	struct cap_places places = {0};
	struct vmres_pci_func *f;
	struct msix_vec *vec = NULL;
	int rc;

	if (!cfg_in || !out)
		return VMRES_EINVAL;
	if (cfg_in->version == 1) {
		/* A version-1 description ends before msix: read no further. */
		memset(&cfg_v1, 0, sizeof(cfg_v1));
		memcpy(&cfg_v1, cfg_in, offsetof(struct vmres_pci_func_config, msix));
		cfg_v1.version = VMRES_PCI_FUNC_CONFIG_VERSION;
		cfg = &cfg_v1;
	}
	rc = check_config(cfg);
	if (rc)
		return rc;
	(void)place_caps(cfg, &places);
	f = calloc(1, sizeof(*f));
	if (cfg->msix.vectors)
		vec = calloc(cfg->msix.vectors, sizeof(*vec));
	if (!f || (cfg->msix.vectors && !vec)) {
		free(vec);
		free(f);
		return VMRES_ENOMEM;
	}
	rc = init_lock(&f->lock, true);
	if (rc) {
		free(vec);
		free(f);
		return rc;
	}
	f->ops = cfg->ops;
	f->opaque = cfg->opaque;
	f->space = VMRES_PCI_CONFIG_SIZE;
	init_header(f, cfg);
	init_bars(f, cfg);
	if (cfg->msi.vectors)
		msi_init(f, &cfg->msi);
	if (cfg->msix.vectors)
		msix_init(f, cfg, places.msix, vec);
	if (cfg->express.enabled)
		express_init(f, places.express, cfg->express.integrated);
	*out = f;
	return 0;
}

void vmres_pci_func_free(struct vmres_pci_func *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->msix.vec);
	free(f);
}

int vmres_pci_func_set_mapper(struct vmres_pci_func *f, const struct vmres_pci_mapper *mapper,
			      void *ctx)
{
	if (!f)
		return VMRES_EINVAL;
	if (mapper &&
	    (mapper->version != VMRES_PCI_MAPPER_VERSION || !mapper->move || !mapper->map ||
	     !mapper->unmap || ((f->msi.off || f->msix.off) && !mapper->reroute_msi)))
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	f->mapper = mapper;
	f->mapper_ctx = ctx;
	f->loaded = false;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* ---- config accesses ---- */

static bool touches_device_bytes(const struct vmres_pci_func *f, unsigned int off,
				 unsigned int size)
{
	for (unsigned int i = 0; i < size; i++)
		if (!f->library_owned[off + i])
			return true;
	return false;
}

int vmres_pci_func_config_read(struct vmres_pci_func *f, unsigned int off, unsigned int size,
			       uint32_t *val)
{
	uint32_t v;
	int rc;

	if (!f || !val)
		return VMRES_EINVAL;
	rc = check_access(off, size);
	if (rc)
		return rc;
	if (off >= f->space) {
		/* A conventional function's extended space: the Unsupported
		 * Request a bridge completes with all ones. */
		*val = all_ones(size);
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	if (overlaps_msi(f, off, size))
		msi_refresh_pending(f);
	v = (uint32_t)vmres__le_load(f->cfg + off, size);
	if (f->ops && f->ops->config_read && touches_device_bytes(f, off, size))
		f->ops->config_read(f->opaque, f, off, size, &v);
	pthread_mutex_unlock(&f->lock);
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	*val = v;
	return 0;
}

int vmres_pci_func_config_write(struct vmres_pci_func *f, unsigned int off, unsigned int size,
				uint32_t val)
{
	unsigned int dword = off & ~3u;
	uint16_t old_cmd, old_msix;
	enum half half = HALF_NONE;
	int bar, rc;

	if (!f)
		return VMRES_EINVAL;
	rc = check_access(off, size);
	if (rc)
		return rc;
	if (off >= f->space)
		return 0; /* dropped, as an Unsupported Request */
	pthread_mutex_lock(&f->lock);
	old_cmd = cfg16(f, VMRES_PCI_COMMAND);
	old_msix = msix_ctrl(f);
	bar = bar_of_offset(f, dword, &half);
	if (bar >= 0)
		bar_latch(&f->bars[bar], half, off & 3u, size, val);
	for (unsigned int i = 0; i < size; i++) {
		uint8_t byte = (uint8_t)(val >> (8 * i)), m = f->wmask[off + i];

		f->cfg[off + i] = (uint8_t)((f->cfg[off + i] & ~m) | (byte & m));
	}
	if (dword == VMRES_PCI_COMMAND)
		command_written(f, old_cmd);
	if (bar >= 0)
		bar_written(f, (unsigned int)bar, half);
	if (overlaps_msi(f, off, size))
		msi_written(f);
	if (overlaps_msix(f, off, size))
		msix_cap_written(f, old_msix);
	if (f->ops && f->ops->config_write && touches_device_bytes(f, off, size))
		f->ops->config_write(f->opaque, f, off, size, val);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_define(struct vmres_pci_func *f, unsigned int off, unsigned int size,
			  uint32_t val, uint32_t wmask)
{
	int rc;

	if (!f)
		return VMRES_EINVAL;
	rc = check_access(off, size);
	if (rc)
		return rc;
	if (off >= f->space)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	for (unsigned int i = 0; i < size; i++) {
		if (f->library_owned[off + i]) {
			pthread_mutex_unlock(&f->lock);
			return VMRES_ERANGE;
		}
	}
	set_reg(f, off, size, val, wmask);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* Record [@p off, +@p len) among @p spans: VMRES_EOVERLAP if it meets one of
 * them or (with @p owned_too) a byte the library owns (MSI, MSI-X, PCI
 * Express, another capability's header), VMRES_EFULL if @p spans is full.
 * Under the function's lock. */
static int cap_spans_add(struct vmres_pci_func *f, struct cap_spans *spans, unsigned int off,
			 unsigned int len, bool owned_too)
{
	for (unsigned int i = 0; owned_too && i < len; i++)
		if (f->library_owned[off + i])
			return VMRES_EOVERLAP;
	for (unsigned int i = 0; i < spans->n; i++)
		if (vmres__ranges_overlap(off, off + len - 1, spans->at[i].off,
					  spans->at[i].off + spans->at[i].len - 1))
			return VMRES_EOVERLAP;
	if (spans->n == MAX_ADDED_CAPS)
		return VMRES_EFULL;
	spans->at[spans->n].off = off;
	spans->at[spans->n].len = len;
	spans->n++;
	return 0;
}
int vmres_pci_func_add_capability(struct vmres_pci_func *f, unsigned int off, uint8_t cap_id,
				  unsigned int len)
{
	int rc = 0;

	if (!f || len < 2)
		return VMRES_EINVAL;
	if (off & 3u)
		return VMRES_EMISALIGNED;
	if (off < HEADER_END || off >= VMRES_PCI_CONFIG_SIZE || len > VMRES_PCI_CONFIG_SIZE - off)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	rc = cap_spans_add(f, &f->added, off, len, true);
	if (!rc)
		cap_link(f, off, cap_id);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vmres_pci_func_add_ext_capability(struct vmres_pci_func *f, unsigned int off, uint16_t cap_id,
				      unsigned int version, unsigned int len)
{
	int rc = 0;

	if (!f || len < 4 || version > 15)
		return VMRES_EINVAL;
	if (!f->express_off)
		return VMRES_ENOTSUP;
	if (off & 3u)
		return VMRES_EMISALIGNED;
	if (off < VMRES_PCIE_EXT_CAP_START || off >= VMRES_PCIE_CONFIG_SIZE ||
	    len > VMRES_PCIE_CONFIG_SIZE - off)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	if (!f->ext.n && off != VMRES_PCIE_EXT_CAP_START)
		rc = VMRES_EINVAL; /* the list starts at 0x100 */
	/* (the first one may hold 0x100, which the library owns until then) */
	if (!rc)
		rc = cap_spans_add(f, &f->ext, off, len, f->ext.n > 0);
	if (!rc) {
		own(f, off, 4);
		set_reg(f, off, 4, cap_id | (uint32_t)version << 16, 0);
		if (f->last_ext)
			vmres__le_store(f->cfg + f->last_ext, 4,
					(cfg32(f, f->last_ext) & 0xfffffu) | (uint32_t)off << 20);
		f->last_ext = off;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vmres_pci_func_bar_get(struct vmres_pci_func *f, unsigned int bar,
			   struct vmres_pci_bar_state *out)
{
	struct bar *b;

	if (!f || !out)
		return VMRES_EINVAL;
	if (bar >= VMRES_PCI_NUM_BARS)
		return VMRES_ENOENT;
	pthread_mutex_lock(&f->lock);
	b = &f->bars[bar];
	memset(out, 0, sizeof(*out));
	out->kind = b->kind;
	if (b->kind != VMRES_PCI_BAR_NONE) {
		out->size = b->size;
		out->reg_addr = bar_reg_addr(f, bar);
		out->reg_is_address = bar_reg_is_address(f, bar);
		out->half_pending = b->pending_half != HALF_NONE;
		out->mapped = b->mapped;
		out->mapped_base = b->mapped_base;
		out->last_error = b->last_error;
		out->refused = b->refused;
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_msi_get(struct vmres_pci_func *f, struct vmres_pci_msi_state *out)
{
	if (!f || !out)
		return VMRES_EINVAL;
	if (!f->msi.off)
		return VMRES_ENOENT;
	pthread_mutex_lock(&f->lock);
	msi_refresh_pending(f);
	msi_read_state(f, out);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_set_msi_sources(struct vmres_pci_func *f, struct vmres_irq_src *const *srcs,
				   unsigned int n)
{
	struct vmres_pci_msi_state s;
	int rc = f ? check_sources(f->msi.off, f->msi.vectors, srcs, n) : VMRES_EINVAL;

	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	memset(f->msi.srcs, 0, sizeof(f->msi.srcs));
	for (unsigned int v = 0; v < n; v++)
		f->msi.srcs[v] = srcs[v];
	f->msi.have_srcs = n > 0;
	msi_read_state(f, &s);
	msi_sync_sources(f, &s);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_msi_set_pending(struct vmres_pci_func *f, unsigned int vector, bool pending)
{
	unsigned int off;
	uint32_t bits;

	if (!f)
		return VMRES_EINVAL;
	if (!f->msi.off)
		return VMRES_ENOENT;
	if (!f->msi.maskable)
		return VMRES_ENOTSUP;
	if (vector >= f->msi.vectors)
		return VMRES_ERANGE;
	pthread_mutex_lock(&f->lock);
	off = msi_mask_off(&f->msi) + 4;
	bits = cfg32(f, off);
	bits = pending ? bits | (1u << vector) : bits & ~(1u << vector);
	vmres__le_store(f->cfg + off, 4, bits);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* ---- binding to a device manager ---- */

static int devmgr_move(void *ctx, unsigned int res, uint64_t base)
{
	const struct devmgr_binding *b = ctx;

	return vmres_devmgr_move_range(b->m, b->instance, res, base);
}

static int devmgr_unmap(void *ctx, unsigned int res)
{
	const struct devmgr_binding *b = ctx;

	return vmres_devmgr_unmap_range(b->m, b->instance, res);
}

static int devmgr_map(void *ctx, unsigned int res)
{
	const struct devmgr_binding *b = ctx;

	return vmres_devmgr_map_range(b->m, b->instance, res);
}

static int devmgr_reroute(void *ctx, unsigned int res, const struct vmres_msi_msg *msg)
{
	const struct devmgr_binding *b = ctx;

	return vmres_devmgr_reroute_msi(b->m, b->instance, res, msg);
}

static const struct vmres_pci_mapper devmgr_mapper = {
	.version = VMRES_PCI_MAPPER_VERSION,
	.move = devmgr_move,
	.unmap = devmgr_unmap,
	.map = devmgr_map,
	.reroute_msi = devmgr_reroute,
};

/* Does the device's resource @r fit BAR @b? */
static int check_bar_resource(const struct bar *b, const struct vmres_resource *r)
{
	enum vmres_space space = b->kind == VMRES_PCI_BAR_IO ? VMRES_SPACE_PIO : VMRES_SPACE_MMIO;

	if (r->kind != VMRES_RES_ADDR || r->u.addr.space != space)
		return VMRES_EKIND;
	if (r->u.addr.size != b->size)
		return VMRES_ESIZE;
	if (r->u.addr.base & (b->size - 1))
		return VMRES_EMISALIGNED;
	if (r->u.addr.base & ~bar_addr_mask(b))
		return VMRES_ERANGE;
	return 0;
}

/* The highest resource index the function names, plus one. */
static size_t resources_needed(const struct vmres_pci_func *f)
{
	size_t need = 0;

	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++)
		if (f->bars[i].kind != VMRES_PCI_BAR_NONE && f->bars[i].res_index + 1 > need)
			need = (size_t)f->bars[i].res_index + 1;
	if (f->msi.off && f->msi.res_index + f->msi.vectors > need)
		need = (size_t)f->msi.res_index + f->msi.vectors;
	if (f->msix.off && f->msix.res_index + f->msix.vectors > need)
		need = (size_t)f->msix.res_index + f->msix.vectors;
	return need;
}

static int func_resources_fit(const struct vmres_pci_func *f, const struct vmres_resource *res)
{
	int rc;

	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		if (f->bars[i].kind == VMRES_PCI_BAR_NONE)
			continue;
		rc = check_bar_resource(&f->bars[i], &res[f->bars[i].res_index]);
		if (rc)
			return rc;
	}
	for (unsigned int v = 0; f->msi.off && v < f->msi.vectors; v++)
		if (res[f->msi.res_index + v].kind != VMRES_RES_MSI)
			return VMRES_EKIND;
	for (unsigned int v = 0; f->msix.off && v < f->msix.vectors; v++)
		if (res[f->msix.res_index + v].kind != VMRES_RES_MSI)
			return VMRES_EKIND;
	return 0;
}

/* ---- state: save, load (layout in docs/SNAPSHOT.md, "PCI function state") ---- */

/*
 * Version 1 (960 bytes) holds a conventional function with MSI. Version 2
 * holds MSI-X and PCI Express too: the same 960 bytes (its reserved word
 * being the state's size), then a 32-byte extension (space, capabilities),
 * the configuration bytes from 0x100 to the end of the space, and 32 bytes
 * per MSI-X vector. A function saves version 1 unless it needs version 2, so
 * that readers of version 1 keep reading what they can hold.
 */
enum {
	ST_VERSION = 1,
	ST_VERSION_2 = 2,
	ST_CFG = 8,
	ST_BARS = ST_CFG + VMRES_PCI_CONFIG_SIZE,
	ST_BAR_SIZE = 48,
	ST_MSI = ST_BARS + VMRES_PCI_NUM_BARS * ST_BAR_SIZE,
	ST_MSI_MSGS = ST_MSI + 24,
	ST_END = ST_MSI_MSGS + VMRES_PCI_MSI_MAX_VECTORS * 12,
	ST_X = ST_END, /* version 2: the extension */
	ST_X_SIZE = 32,
	ST_XCFG = ST_X + ST_X_SIZE,
	ST_VEC_SIZE = 32,
};

_Static_assert(ST_END == VMRES_PCI_FUNC_STATE_SIZE, "the state layout and its size agree");
_Static_assert(ST_XCFG + VMRES_PCIE_CONFIG_SIZE - VMRES_PCI_CONFIG_SIZE +
			       VMRES_PCI_MSIX_MAX_VECTORS * ST_VEC_SIZE ==
		       VMRES_PCI_FUNC_STATE_MAX,
	       "the largest state and its bound agree");

#define ST_BAR_PREFETCH	 0x1u
#define ST_BAR_MAPPED	 0x2u
#define ST_MSI_ADDR64	 0x1u
#define ST_MSI_MASKABLE	 0x2u
#define ST_MSI_SEEN_ON	 0x4u
#define ST_MSIX_SEEN_ON	 0x1u
#define ST_MSIX_SEEN_ALL 0x2u
#define ST_VEC_ROUTED	 0x1u
#define ST_VEC_PENDING	 0x2u

/* Bytes of the state of a function with @p space bytes of configuration
 * space, @p msix_vectors MSI-X vectors, and PCI Express or MSI-X at all. */
static size_t st_size(bool v2, unsigned int space, unsigned int msix_vectors)
{
	if (!v2)
		return VMRES_PCI_FUNC_STATE_SIZE;
	return ST_XCFG + (space - VMRES_PCI_CONFIG_SIZE) + (size_t)msix_vectors * ST_VEC_SIZE;
}

static size_t func_state_size(const struct vmres_pci_func *f)
{
	return st_size(f->msix.off || f->express_off, f->space, f->msix.vectors);
}

/* Vector @p v's record in a version-2 state @p s of a function like @p t. */
static const uint8_t *st_vec(const struct vmres_pci_func *t, const uint8_t *s, unsigned int v)
{
	return s + ST_XCFG + (t->space - VMRES_PCI_CONFIG_SIZE) + (size_t)v * ST_VEC_SIZE;
}

/* The MSI-X extension of a version-2 state. Function lock held. */
static void state_encode_x(const struct vmres_pci_func *f, uint8_t *s)
{
	const struct msix *x = &f->msix;
	uint8_t *p = s + ST_X;

	vmres__le_store(s + 4, 4, (uint32_t)func_state_size(f));
	vmres__le_store(p, 2, f->space);
	vmres__le_store(p + 2, 2, f->express_off);
	memcpy(s + ST_XCFG, f->cfg + VMRES_PCI_CONFIG_SIZE, f->space - VMRES_PCI_CONFIG_SIZE);
	if (!x->off)
		return;
	vmres__le_store(p + 4, 2, x->off);
	vmres__le_store(p + 6, 2, x->vectors);
	vmres__le_store(p + 8, 4, x->res_index);
	p[12] = (uint8_t)(cfg32(f, x->off + 4) & 7u); /* the BIRs */
	p[13] = (uint8_t)(cfg32(f, x->off + 8) & 7u);
	p[14] = (uint8_t)(((x->seen_ctrl & VMRES_PCI_MSIX_CTRL_ENABLE) ? ST_MSIX_SEEN_ON : 0) |
			  ((x->seen_ctrl & VMRES_PCI_MSIX_CTRL_MASKALL) ? ST_MSIX_SEEN_ALL : 0));
	vmres__le_store(p + 16, 4, (uint32_t)x->table_off);
	vmres__le_store(p + 20, 4, (uint32_t)x->pba_off);
	vmres__le_store(p + 24, 4, (uint32_t)x->last_error);
	for (unsigned int v = 0; v < x->vectors; v++) {
		const struct msix_vec *e = &x->vec[v];
		uint8_t *r = (uint8_t *)st_vec(f, s, v);

		for (unsigned int w = 0; w < 4; w++)
			vmres__le_store(r + 4 * w, 4, e->entry[w]);
		if (e->routed) {
			vmres__le_store(r + 16, 4, e->routed_msg.addr_lo);
			vmres__le_store(r + 20, 4, e->routed_msg.addr_hi);
			vmres__le_store(r + 24, 4, e->routed_msg.data);
		}
		r[28] = (uint8_t)((e->routed ? ST_VEC_ROUTED : 0) |
				  (msix_pending(x, v) ? ST_VEC_PENDING : 0));
	}
}

/* Function lock held; @p s has func_state_size(f) bytes. */
static void state_encode(const struct vmres_pci_func *f, uint8_t *s)
{
	const struct msi *m = &f->msi;
	uint32_t routed = 0;
	bool v2 = f->msix.off || f->express_off;

	memset(s, 0, func_state_size(f));
	vmres__le_store(s, 4, v2 ? ST_VERSION_2 : ST_VERSION);
	memcpy(s + ST_CFG, f->cfg, VMRES_PCI_CONFIG_SIZE);
	if (v2)
		state_encode_x(f, s);
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct bar *b = &f->bars[i];
		uint8_t *r = s + ST_BARS + i * ST_BAR_SIZE;

		if (b->kind == VMRES_PCI_BAR_NONE)
			continue;
		r[0] = (uint8_t)b->kind;
		r[1] = (uint8_t)((b->prefetchable ? ST_BAR_PREFETCH : 0) |
				 (b->mapped ? ST_BAR_MAPPED : 0));
		r[2] = (uint8_t)(b->pending_half + 1);
		vmres__le_store(r + 4, 4, b->res_index);
		vmres__le_store64(r + 8, b->size);
		vmres__le_store64(r + 16, b->mapped_base);
		vmres__le_store(r + 24, 4, b->written[0]);
		vmres__le_store(r + 28, 4, b->written[1]);
		vmres__le_store(r + 32, 4, (uint32_t)b->last_error);
		vmres__le_store64(r + 40, b->refused);
	}
	if (!m->off)
		return;
	vmres__le_store(s + ST_MSI, 2, m->off);
	s[ST_MSI + 2] = (uint8_t)log2u(m->vectors) + 1;
	s[ST_MSI + 3] =
		(uint8_t)((m->addr64 ? ST_MSI_ADDR64 : 0) | (m->maskable ? ST_MSI_MASKABLE : 0) |
			  (m->seen_enabled ? ST_MSI_SEEN_ON : 0));
	vmres__le_store(s + ST_MSI + 4, 4, m->res_index);
	vmres__le_store(s + ST_MSI + 8, 4, (uint32_t)m->last_error);
	vmres__le_store(s + ST_MSI + 12, 4, m->seen_vectors);
	vmres__le_store(s + ST_MSI + 16, 4, m->seen_mask);
	for (unsigned int v = 0; v < m->vectors; v++) {
		uint8_t *r = s + ST_MSI_MSGS + 12 * v;

		if (!m->routed[v])
			continue;
		routed |= 1u << v;
		vmres__le_store(r, 4, m->routed_msg[v].addr_lo);
		vmres__le_store(r + 4, 4, m->routed_msg[v].addr_hi);
		vmres__le_store(r + 8, 4, m->routed_msg[v].data);
	}
	vmres__le_store(s + ST_MSI + 20, 4, routed);
}

/* One saved BAR into @p b (of the scratch function @p t); its declaration is checked
 * as vmres_pci_func_new() would. */
static int state_decode_bar(struct vmres_pci_func *t, unsigned int i, const uint8_t *r)
{
	struct bar *b = &t->bars[i];
	struct vmres_pci_bar d = {0};
	struct vmres_pci_bar none = {0};
	uint64_t mask;

	b->pending_half = HALF_NONE;
	if (r[0] > VMRES_PCI_BAR_IO || (r[1] & ~(ST_BAR_PREFETCH | ST_BAR_MAPPED)) || r[2] > 2)
		return VMRES_ECORRUPT;
	b->kind = r[0];
	if (b->kind == VMRES_PCI_BAR_NONE)
		return r[1] || r[2] ? VMRES_ECORRUPT : 0;
	if (i > 0 && t->bars[i - 1].kind == VMRES_PCI_BAR_MEM64)
		return VMRES_ECORRUPT; /* the upper slot of a MEM64 */
	b->prefetchable = r[1] & ST_BAR_PREFETCH;
	b->mapped = r[1] & ST_BAR_MAPPED;
	b->pending_half = (enum half)(r[2] - 1);
	b->res_index = (uint32_t)vmres__le_load(r + 4, 4);
	b->size = vmres__le_load64(r + 8);
	b->mapped_base = vmres__le_load64(r + 16);
	b->written[0] = (uint32_t)vmres__le_load(r + 24, 4);
	b->written[1] = (uint32_t)vmres__le_load(r + 28, 4);
	b->last_error = (int)(uint32_t)vmres__le_load(r + 32, 4);
	b->refused = vmres__le_load64(r + 40);
	d = (struct vmres_pci_bar){b->kind, b->prefetchable, b->size, b->mapped_base, b->res_index};
	if ((b->kind == VMRES_PCI_BAR_IO && b->prefetchable) ||
	    (b->pending_half != HALF_NONE && b->kind != VMRES_PCI_BAR_MEM64) ||
	    check_bar(&d, &none, i))
		return VMRES_ECORRUPT;
	/* What the register's writable bits hold is what the guest last wrote
	 * there, and the type bits are the kind's. */
	mask = bar_addr_mask(b);
	vmres__le_store(t->wmask + VMRES_PCI_BAR_OFFSET(i), 4, (uint32_t)mask);
	if (b->kind == VMRES_PCI_BAR_MEM64)
		vmres__le_store(t->wmask + VMRES_PCI_BAR_OFFSET(i + 1), 4, (uint32_t)(mask >> 32));
	if (((cfg32(t, VMRES_PCI_BAR_OFFSET(i)) ^ b->written[0]) & (uint32_t)mask) ||
	    (cfg32(t, VMRES_PCI_BAR_OFFSET(i)) & ~(uint32_t)mask) != bar_type_bits(b))
		return VMRES_ECORRUPT;
	if (b->kind == VMRES_PCI_BAR_MEM64 &&
	    (cfg32(t, VMRES_PCI_BAR_OFFSET(i + 1)) ^ b->written[1]) & (uint32_t)(mask >> 32))
		return VMRES_ECORRUPT;
	if (b->kind != VMRES_PCI_BAR_MEM64 && b->written[1])
		return VMRES_ECORRUPT;
	/* The register, the bus and the allocator agree, but for a pending half. */
	if (b->pending_half == HALF_NONE && bar_reg_is_address(t, i) &&
	    bar_reg_addr(t, i) != b->mapped_base)
		return VMRES_ECORRUPT;
	return 0;
}

static int state_decode_msi(struct vmres_pci_func *t, const uint8_t *s)
{
	struct msi *m = &t->msi;
	const uint8_t *p = s + ST_MSI;
	struct vmres_pci_msi d = {0};
	uint32_t routed = (uint32_t)vmres__le_load(p + 20, 4);

	if (p[2] == 0) {
		for (unsigned int i = 0; i < ST_END - ST_MSI; i++)
			if (p[i])
				return VMRES_ECORRUPT;
		return 0;
	}
	if (p[2] > 6 || (p[3] & ~(ST_MSI_ADDR64 | ST_MSI_MASKABLE | ST_MSI_SEEN_ON)))
		return VMRES_ECORRUPT;
	m->off = (uint32_t)vmres__le_load(p, 2);
	m->vectors = 1u << (p[2] - 1);
	m->addr64 = p[3] & ST_MSI_ADDR64;
	m->maskable = p[3] & ST_MSI_MASKABLE;
	m->seen_enabled = p[3] & ST_MSI_SEEN_ON;
	m->res_index = (uint32_t)vmres__le_load(p + 4, 4);
	m->last_error = (int)(uint32_t)vmres__le_load(p + 8, 4);
	m->seen_vectors = (uint32_t)vmres__le_load(p + 12, 4);
	m->seen_mask = (uint32_t)vmres__le_load(p + 16, 4);
	d = (struct vmres_pci_msi){m->vectors, m->addr64, m->maskable, m->off, m->res_index};
	m->len = msi_cap_len(&d);
	if ((m->off & 3u) || m->off < HEADER_END || m->off + m->len > VMRES_PCI_CONFIG_SIZE)
		return VMRES_ECORRUPT;
	if (!vmres__is_pow2(m->seen_vectors) || m->seen_vectors > m->vectors)
		return VMRES_ECORRUPT;
	if (m->vectors < 32 && (routed >> m->vectors))
		return VMRES_ECORRUPT;
	for (unsigned int v = 0; v < VMRES_PCI_MSI_MAX_VECTORS; v++) {
		const uint8_t *r = s + ST_MSI_MSGS + 12 * v;

		m->routed[v] = routed & (1u << v);
		m->routed_msg[v] = (struct vmres_msi_msg){(uint32_t)vmres__le_load(r, 4),
							  (uint32_t)vmres__le_load(r + 4, 4),
							  (uint32_t)vmres__le_load(r + 8, 4)};
		if (!m->routed[v] &&
		    (m->routed_msg[v].addr_lo || m->routed_msg[v].addr_hi || m->routed_msg[v].data))
			return VMRES_ECORRUPT;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Is BAR slot @p slot of @p t a memory BAR (the low slot of a MEM64)? */
static bool st_is_mem_bar(const struct vmres_pci_func *t, unsigned int slot)
{
	return slot < VMRES_PCI_NUM_BARS && (t->bars[slot].kind == VMRES_PCI_BAR_MEM32 ||
					     t->bars[slot].kind == VMRES_PCI_BAR_MEM64);
}

/* One MSI-X vector's record: the bits a guest can write, routed or not. */
static int state_decode_vec(const uint8_t *r)
{
	struct vmres_msi_msg msg = {(uint32_t)vmres__le_load(r + 16, 4),
				    (uint32_t)vmres__le_load(r + 20, 4),
				    (uint32_t)vmres__le_load(r + 24, 4)};

	if (((uint32_t)vmres__le_load(r, 4) & 3u) ||
	    ((uint32_t)vmres__le_load(r + 12, 4) & ~VMRES_PCI_MSIX_VECTOR_MASKED))
		return VMRES_ECORRUPT;
	if ((r[28] & ~(ST_VEC_ROUTED | ST_VEC_PENDING)) || !all_zero(r + 29, 3))
		return VMRES_ECORRUPT;
	if (!(r[28] & ST_VEC_ROUTED) && (msg.addr_lo || msg.addr_hi || msg.data))
		return VMRES_ECORRUPT;
	return 0;
}

/* The MSI-X capability of a version-2 state, declared as vmres_pci_func_new()
 * would accept it (the BARs decoded first). */
static int state_decode_msix(struct vmres_pci_func *t, const uint8_t *p)
{
	struct msix *x = &t->msix;
	unsigned int tbar = p[12], pbar = p[13];

	x->off = (uint32_t)vmres__le_load(p + 4, 2);
	if (!x->off)
		return all_zero(p + 4, ST_X_SIZE - 4) ? 0 : VMRES_ECORRUPT;
	x->vectors = (uint32_t)vmres__le_load(p + 6, 2);
	x->res_index = (uint32_t)vmres__le_load(p + 8, 4);
	x->table_off = (uint32_t)vmres__le_load(p + 16, 4);
	x->pba_off = (uint32_t)vmres__le_load(p + 20, 4);
	x->last_error = (int)(uint32_t)vmres__le_load(p + 24, 4);
	x->table_len = (uint64_t)x->vectors * VMRES_PCI_MSIX_ENTRY_SIZE;
	x->pba_len = msix_pba_len(x->vectors);
	x->seen_ctrl = (uint16_t)(((p[14] & ST_MSIX_SEEN_ON) ? VMRES_PCI_MSIX_CTRL_ENABLE : 0) |
				  ((p[14] & ST_MSIX_SEEN_ALL) ? VMRES_PCI_MSIX_CTRL_MASKALL : 0));
	if ((x->off & 3u) || x->off < HEADER_END ||
	    x->off + VMRES_PCI_MSIX_CAP_SIZE > VMRES_PCI_CONFIG_SIZE)
		return VMRES_ECORRUPT;
	if (!x->vectors || x->vectors > VMRES_PCI_MSIX_MAX_VECTORS || !st_is_mem_bar(t, tbar) ||
	    !st_is_mem_bar(t, pbar) || (p[14] & ~(ST_MSIX_SEEN_ON | ST_MSIX_SEEN_ALL)) || p[15] ||
	    (uint32_t)vmres__le_load(p + 28, 4))
		return VMRES_ECORRUPT;
	if ((x->table_off & 7u) || (x->pba_off & 7u) ||
	    x->table_off + x->table_len > t->bars[tbar].size ||
	    x->pba_off + x->pba_len > t->bars[pbar].size ||
	    (tbar == pbar && x->table_off < x->pba_off + x->pba_len &&
	     x->pba_off < x->table_off + x->table_len))
		return VMRES_ECORRUPT;
	x->table_res = t->bars[tbar].res_index;
	x->pba_res = t->bars[pbar].res_index;
	return 0;
}

/* The extension of a version-2 state of @p len bytes. */
static int state_decode_x(struct vmres_pci_func *t, const uint8_t *s, size_t len)
{
	const uint8_t *p = s + ST_X;
	int rc;

	if (len < ST_XCFG)
		return VMRES_ECORRUPT;
	t->space = (uint32_t)vmres__le_load(p, 2);
	t->express_off = (uint32_t)vmres__le_load(p + 2, 2);
	if (t->space != VMRES_PCI_CONFIG_SIZE && t->space != VMRES_PCIE_CONFIG_SIZE)
		return VMRES_ECORRUPT;
	if (!t->express_off != (t->space == VMRES_PCI_CONFIG_SIZE) ||
	    (t->express_off && ((t->express_off & 3u) || t->express_off < HEADER_END ||
				t->express_off + VMRES_PCI_EXP_CAP_SIZE > VMRES_PCI_CONFIG_SIZE)))
		return VMRES_ECORRUPT;
	rc = state_decode_msix(t, p);
	if (rc)
		return rc;
	if (!t->msix.off && !t->express_off)
		return VMRES_ECORRUPT; /* version 1 holds it */
	if ((uint32_t)vmres__le_load(s + 4, 4) != len ||
	    len != st_size(true, t->space, t->msix.vectors))
		return VMRES_ECORRUPT;
	memcpy(t->cfg + VMRES_PCI_CONFIG_SIZE, s + ST_XCFG, t->space - VMRES_PCI_CONFIG_SIZE);
	for (unsigned int v = 0; v < t->msix.vectors; v++) {
		rc = state_decode_vec(st_vec(t, s, v));
		if (rc)
			return rc;
	}
	return 0;
}

/* A saved state of @p len bytes into the scratch function @p t (zeroed by
 * the caller): the checks that need no function. The MSI-X vectors stay in
 * @p s (read with st_vec()): the scratch function has no table. */
static int state_decode(struct vmres_pci_func *t, const uint8_t *s, size_t len)
{
	uint32_t version;
	int rc;

	if (len < 8)
		return VMRES_ESIZE;
	version = (uint32_t)vmres__le_load(s, 4);
	if (version != ST_VERSION && version != ST_VERSION_2)
		return VMRES_EVERSION;
	if (version == ST_VERSION && len != VMRES_PCI_FUNC_STATE_SIZE)
		return VMRES_ESIZE;
	if (version == ST_VERSION && (uint32_t)vmres__le_load(s + 4, 4))
		return VMRES_ECORRUPT;
	if (version == ST_VERSION_2 && (uint32_t)vmres__le_load(s + 4, 4) != len)
		return (uint32_t)vmres__le_load(s + 4, 4) < ST_XCFG ? VMRES_ECORRUPT : VMRES_ESIZE;
	t->space = VMRES_PCI_CONFIG_SIZE;
	memcpy(t->cfg, s + ST_CFG, VMRES_PCI_CONFIG_SIZE);
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		rc = state_decode_bar(t, i, s + ST_BARS + i * ST_BAR_SIZE);
		if (rc)
			return rc;
	}
	if (t->bars[VMRES_PCI_NUM_BARS - 1].kind == VMRES_PCI_BAR_MEM64)
		return VMRES_ECORRUPT;
	rc = state_decode_msi(t, s);
	if (!rc && version == ST_VERSION_2)
		rc = state_decode_x(t, s, len);
	return rc;
}

/* Was the state saved from a function of @p f's layout? Function lock held. */
static int state_compatible(const struct vmres_pci_func *f, const struct vmres_pci_func *t)
{
	const struct msi *a = &f->msi, *b = &t->msi;
	const struct msix *x = &f->msix, *y = &t->msix;
	unsigned int pend = a->off && a->maskable ? msi_mask_off(a) + 4 : 0;

	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct bar *p = &f->bars[i], *q = &t->bars[i];

		if (p->kind != q->kind)
			return VMRES_EKIND;
		if (p->kind != VMRES_PCI_BAR_NONE &&
		    (p->prefetchable != q->prefetchable || p->size != q->size ||
		     p->res_index != q->res_index))
			return VMRES_EKIND;
	}
	if (a->off != b->off ||
	    (a->off && (a->vectors != b->vectors || a->addr64 != b->addr64 ||
			a->maskable != b->maskable || a->res_index != b->res_index)))
		return VMRES_EKIND;
	if (f->space != t->space || f->express_off != t->express_off || x->off != y->off ||
	    (x->off && (x->vectors != y->vectors || x->res_index != y->res_index ||
			x->table_res != y->table_res || x->table_off != y->table_off ||
			x->pba_res != y->pba_res || x->pba_off != y->pba_off)))
		return VMRES_EKIND;
	/* The bits the guest cannot write (IDs, class, type bits, capability
	 * lists, the MSI-X table size and places) are the same; the pending bits
	 * are the device's. */
	for (unsigned int i = 0; i < f->space; i++) {
		if (!f->library_owned[i] || (pend && i >= pend && i < pend + 4))
			continue;
		if ((f->cfg[i] ^ t->cfg[i]) & ~f->wmask[i])
			return VMRES_EKIND;
	}
	return 0;
}

/* MSI-X vector @p v's routed message, from the state @p s if not NULL, else
 * from @p t's table; false if not routed. */
static bool msix_routed_msg(const struct vmres_pci_func *t, const uint8_t *s, unsigned int v,
			    struct vmres_msi_msg *msg)
{
	const uint8_t *r;

	if (!s) {
		*msg = t->msix.vec[v].routed_msg;
		return t->msix.vec[v].routed;
	}
	r = st_vec(t, s, v);
	*msg = (struct vmres_msi_msg){(uint32_t)vmres__le_load(r + 16, 4),
				      (uint32_t)vmres__le_load(r + 20, 4),
				      (uint32_t)vmres__le_load(r + 24, 4)};
	return r[28] & ST_VEC_ROUTED;
}

/* Does the device manager's entry (@p res, @p mapped) hold the ranges and MSI
 * and MSI-X routes where the state @p t (MSI-X vectors in @p s, or in @p t's
 * table if @p s is NULL) says they are? */
static bool state_agrees(const struct vmres_pci_func *t, const uint8_t *s,
			 const struct vmres_resource *res, const bool *mapped, size_t n)
{
	const struct msi *m = &t->msi;
	struct vmres_msi_msg msg;

	if (n < resources_needed(t) || func_resources_fit(t, res))
		return false;
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct bar *b = &t->bars[i];

		if (b->kind != VMRES_PCI_BAR_NONE &&
		    (res[b->res_index].u.addr.base != b->mapped_base ||
		     mapped[b->res_index] != b->mapped))
			return false;
	}
	for (unsigned int v = 0; m->off && v < m->vectors; v++)
		if (m->routed[v] &&
		    !vmres__msi_msg_equal(&res[m->res_index + v].u.msi.msg, &m->routed_msg[v]))
			return false;
	for (unsigned int v = 0; t->msix.off && v < t->msix.vectors; v++)
		if (msix_routed_msg(t, s, v, &msg) &&
		    !vmres__msi_msg_equal(&res[t->msix.res_index + v].u.msi.msg, &msg))
			return false;
	return true;
}

/* Function lock held; @p t decoded from @p s and compatible. */
static void state_apply(struct vmres_pci_func *f, const struct vmres_pci_func *t, const uint8_t *s)
{
	for (unsigned int i = 0; i < f->space; i++)
		f->cfg[i] =
			f->library_owned[i]
				? t->cfg[i]
				: (uint8_t)((f->cfg[i] & ~f->wmask[i]) | (t->cfg[i] & f->wmask[i]));
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		struct bar *b = &f->bars[i];
		const struct bar *q = &t->bars[i];

		if (b->kind == VMRES_PCI_BAR_NONE)
			continue;
		b->mapped_base = q->mapped_base;
		b->mapped = q->mapped;
		b->written[0] = q->written[0];
		b->written[1] = q->written[1];
		b->pending_half = q->pending_half;
		b->last_error = q->last_error;
		b->refused = q->refused;
	}
	for (unsigned int v = 0; v < f->msix.vectors; v++) {
		struct msix_vec *e = &f->msix.vec[v];
		const uint8_t *r = st_vec(t, s, v);

		for (unsigned int w = 0; w < 4; w++)
			e->entry[w] = (uint32_t)vmres__le_load(r + 4 * w, 4);
		e->routed = msix_routed_msg(t, s, v, &e->routed_msg);
		/* With sources, the pending bit is the source's (irq.h restores it). */
		e->pending = r[28] & ST_VEC_PENDING;
	}
	if (f->msix.off) {
		f->msix.last_error = t->msix.last_error;
		f->msix.seen_ctrl = t->msix.seen_ctrl;
	}
	if (!f->msi.off)
		return;
	memcpy(f->msi.routed, t->msi.routed, sizeof(f->msi.routed));
	memcpy(f->msi.routed_msg, t->msi.routed_msg, sizeof(f->msi.routed_msg));
	f->msi.last_error = t->msi.last_error;
	f->msi.seen_enabled = t->msi.seen_enabled;
	f->msi.seen_vectors = t->msi.seen_vectors;
	f->msi.seen_mask = t->msi.seen_mask;
}

int vmres_pci_func_state_size(struct vmres_pci_func *f, size_t *size)
{
	if (!f || !size)
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	*size = func_state_size(f);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int vmres_pci_func_save_state(struct vmres_pci_func *f, void *buf, size_t len)
{
	if (!f || !buf)
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	if (len < func_state_size(f)) {
		pthread_mutex_unlock(&f->lock);
		return VMRES_ESIZE;
	}
	if (f->msi.off)
		msi_refresh_pending(f);
	state_encode(f, buf);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* Decode @p state and check it against @p f (lock held) into @p t. */
static int state_check_func(struct vmres_pci_func *f, const void *state, size_t len,
			    struct vmres_pci_func *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = state_decode(t, state, len);
	if (!rc && f->mapper)
		rc = VMRES_ESTATE;
	if (!rc)
		rc = state_compatible(f, t);
	return rc;
}

int vmres_pci_func_load_state(struct vmres_pci_func *f, const void *buf, size_t len)
{
	struct vmres_pci_func t;
	int rc;

	if (!f || !buf)
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	rc = state_check_func(f, buf, len, &t);
	if (!rc) {
		state_apply(f, &t, buf);
		f->loaded = true;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vmres__pci_state_check(const void *state, size_t len, const struct vmres_resource *res,
			   const bool *mapped, size_t n_res)
{
	struct vmres_pci_func t;
	int rc;

	memset(&t, 0, sizeof(t));
	rc = state_decode(&t, state, len);
	if (rc == VMRES_ESIZE)
		rc = VMRES_ECORRUPT; /* the snapshot's length and the state's disagree */
	if (!rc && res && !state_agrees(&t, state, res, mapped, n_res))
		rc = VMRES_ECORRUPT;
	return rc;
}

int vmres__pci_func_check_state(struct vmres_pci_func *f, const void *state, size_t len)
{
	struct vmres_pci_func t;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = state_check_func(f, state, len, &t);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vmres__pci_func_load_bound(struct vmres_pci_func *f, const void *state, size_t len,
			       struct vmres_devmgr *m, uint32_t instance)
{
	struct vmres_pci_func t;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = state_check_func(f, state, len, &t);
	if (!rc) {
		state_apply(f, &t, state);
		f->loaded = false;
		f->binding = (struct devmgr_binding){m, instance};
		f->mapper = &devmgr_mapper;
		f->mapper_ctx = &f->binding;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

bool vmres__pci_func_bound(struct vmres_pci_func *f, struct vmres_devmgr *m, uint32_t *instance)
{
	bool bound;

	pthread_mutex_lock(&f->lock);
	bound = f->mapper == &devmgr_mapper && f->binding.m == m;
	if (bound)
		*instance = f->binding.instance;
	pthread_mutex_unlock(&f->lock);
	return bound;
}

bool vmres__pci_func_has_mapper(struct vmres_pci_func *f)
{
	bool has;

	pthread_mutex_lock(&f->lock);
	has = f->mapper != NULL;
	pthread_mutex_unlock(&f->lock);
	return has;
}

void vmres__pci_func_unplug(struct vmres_pci_func *f)
{
	if (f->msi.off)
		(void)vmres_pci_func_set_msi_sources(f, NULL, 0);
	if (f->msix.off)
		(void)vmres_pci_func_set_msix_sources(f, NULL, 0);
	pthread_mutex_lock(&f->lock);
	f->mapper = NULL;
	f->mapper_ctx = NULL;
	f->binding = (struct devmgr_binding){NULL, 0};
	pthread_mutex_unlock(&f->lock);
}

/* A bind in two steps: bind_vet() checks the device's resources and says
 * which ranges are mapped, bind_commit() cannot fail. f->lock held across. */
struct bind {
	struct vmres_pci_func *f;
	uint64_t base[VMRES_PCI_NUM_BARS];
	bool want[VMRES_PCI_NUM_BARS]; /* on the bus */
};

/* A vmres__devmgr_vet_fn: may the function take these resources? A range is
 * mapped iff its BAR decodes and its base is not 0 (a loaded state instead
 * says where the ranges are, and the entry must agree). */
static int bind_vet(void *ctx, const struct vmres_resource *res, bool *mapped, size_t n)
{
	struct bind *bd = ctx;
	struct vmres_pci_func *f = bd->f;
	int rc;

	if (n < resources_needed(f))
		return VMRES_ENOENT;
	rc = func_resources_fit(f, res);
	if (rc)
		return rc;
	if (f->loaded)
		return state_agrees(f, NULL, res, mapped, n) ? 0 : VMRES_ESTATE;
	for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
		const struct bar *b = &f->bars[i];

		if (b->kind == VMRES_PCI_BAR_NONE)
			continue;
		bd->base[i] = res[b->res_index].u.addr.base;
		bd->want[i] = bar_decoding(f, b) && bd->base[i] != 0;
		mapped[b->res_index] = bd->want[i];
	}
	return 0;
}

static void bind_commit(const struct bind *bd, struct vmres_devmgr *m, uint32_t instance)
{
	struct vmres_pci_func *f = bd->f;

	if (!f->loaded) {
		for (unsigned int i = 0; i < VMRES_PCI_NUM_BARS; i++) {
			struct bar *b = &f->bars[i];

			if (b->kind == VMRES_PCI_BAR_NONE)
				continue;
			b->mapped_base = bd->base[i];
			b->mapped = bd->want[i];
			b->pending_half = HALF_NONE;
			b->last_error = 0;
			bar_set_reg_addr(f, i, b->mapped_base);
		}
		memset(f->msi.routed, 0, sizeof(f->msi.routed));
		for (unsigned int v = 0; v < f->msix.vectors; v++)
			f->msix.vec[v].routed = false;
	}
	f->loaded = false;
	f->binding = (struct devmgr_binding){m, instance};
	f->mapper = &devmgr_mapper;
	f->mapper_ctx = &f->binding;
}

int vmres_pci_func_bind(struct vmres_pci_func *f, struct vmres_devmgr *m, uint32_t instance)
{
	struct vmres_devmgr_info info;
	struct vmres_resource *res = NULL;
	struct bind bd = {.f = f};
	bool *mapped = NULL;
	size_t n = 0;
	int rc;

	if (!f || !m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&f->lock);
	rc = vmres_devmgr_get(m, instance, &info, NULL, NULL, 0);
	if (!rc) {
		n = info.n_res;
		res = calloc(n + 1, sizeof(*res));
		mapped = calloc(n + 1, sizeof(*mapped));
		rc = res && mapped ? 0 : VMRES_ENOMEM;
	}
	if (!rc)
		rc = vmres_devmgr_get(m, instance, &info, res, mapped, n);
	if (!rc && info.n_res != n)
		rc = VMRES_ENOENT;
	if (!rc)
		rc = bind_vet(&bd, res, mapped, n);
	/* All the ranges in one change of the device manager, or nothing. */
	if (!rc && !f->loaded)
		rc = vmres_devmgr_set_mapped(m, instance, mapped, n);
	if (!rc)
		bind_commit(&bd, m, instance);
	pthread_mutex_unlock(&f->lock);
	free(res);
	free(mapped);
	return rc;
}

int vmres__pci_func_register_bound(struct vmres_pci_func *f, struct vmres_devmgr *m,
				   const struct vmres_device *dev,
				   const struct vmres_devmgr_register_opts *opts, uint32_t *instance)
{
	struct bind bd = {.f = f};
	uint32_t id;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = vmres__devmgr_register_vetted(m, dev, opts, &id, bind_vet, &bd);
	if (!rc) {
		bind_commit(&bd, m, id);
		*instance = id;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- the i440FX host bridge ---- */

int vmres_pci_host_bridge_new(const struct vmres_pci_func_ops *ops, void *opaque,
			      struct vmres_pci_func **out)
{
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_pci_func *f;
	int rc;

	if (!out)
		return VMRES_EINVAL;
	cfg.vendor_id = 0x8086;
	cfg.device_id = 0x1237;
	cfg.class_code = 0x060000;
	cfg.revision = 0x02;
	cfg.subsystem_vendor_id = 0x1af4;
	cfg.subsystem_id = 0x1100;
	cfg.ops = ops;
	cfg.opaque = opaque;
	rc = vmres_pci_func_new(&cfg, &f);
	if (rc)
		return rc;
	/* PAM0-PAM6 (shadow RAM control) and SMRAM: plain guest-writable bytes. */
	for (unsigned int off = 0x59; off <= 0x5f; off++)
		(void)vmres_pci_func_define(f, off, 1, 0, 0xff);
	(void)vmres_pci_func_define(f, 0x72, 1, 0x02, 0x78);
	*out = f;
	return 0;
}

/* ---- configuration mechanism #1 ---- */

#define CONF1_ENABLE	0x80000000u
#define CONF1_ADDR_MASK 0x80fffffcu /* enable, bus, device, function, dword register */
#define CONF1_DATA	4u

/*
 * A host-side configuration window (the conf1 ports, an ECAM range), first
 * member of its object: the device callbacks of either take the object as
 * their opaque and go through @p access (a read into, or a write of, *val).
 */
struct window {
	int (*access)(void *obj, uint64_t offset, unsigned int size, uint64_t *val,
		      bool is_write);
};

static int conf1_access(void *obj, uint64_t offset, unsigned int size, uint64_t *val,
			bool is_write);
static int ecam_access(void *obj, uint64_t offset, unsigned int size, uint64_t *val,
		       bool is_write);

struct vmres_pci_host {
	struct window win; /* first: the conf1 device's opaque */
	pthread_mutex_t lock; /* the address latch, and attach/detach against accesses */
	uint32_t address;
	struct vmres_pci_func *funcs[VMRES_PCI_HOST_SLOTS][8];
};

int vmres_pci_host_new(struct vmres_pci_host **out)
{
	struct vmres_pci_host *h;

	if (!out)
		return VMRES_EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return VMRES_ENOMEM;
	h->win.access = conf1_access;
	if (init_lock(&h->lock, false)) {
		free(h);
		return VMRES_ENOMEM;
	}
	*out = h;
	return 0;
}

void vmres_pci_host_free(struct vmres_pci_host *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int vmres_pci_host_attach(struct vmres_pci_host *h, unsigned int slot, unsigned int fn,
			  struct vmres_pci_func *f)
{
	int rc = 0;

	if (!h || !f)
		return VMRES_EINVAL;
	if (slot >= VMRES_PCI_HOST_SLOTS || fn >= 8)
		return VMRES_ERANGE;
	pthread_mutex_lock(&h->lock);
	if (h->funcs[slot][fn])
		rc = VMRES_EEXIST;
	else
		h->funcs[slot][fn] = f;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void vmres__pci_host_lock(struct vmres_pci_host *h)
{
	pthread_mutex_lock(&h->lock);
}

void vmres__pci_host_unlock(struct vmres_pci_host *h)
{
	pthread_mutex_unlock(&h->lock);
}

struct vmres_pci_func **vmres__pci_host_place(struct vmres_pci_host *h, unsigned int slot,
					      unsigned int fn)
{
	return &h->funcs[slot][fn];
}

bool vmres__pci_host_holds(struct vmres_pci_host *h, const struct vmres_pci_func *f)
{
	for (unsigned int s = 0; s < VMRES_PCI_HOST_SLOTS; s++)
		for (unsigned int i = 0; i < 8; i++)
			if (h->funcs[s][i] == f)
				return true;
	return false;
}

int vmres_pci_host_detach(struct vmres_pci_host *h, unsigned int slot, unsigned int fn)
{
	int rc = 0;

	if (!h)
		return VMRES_EINVAL;
	if (slot >= VMRES_PCI_HOST_SLOTS || fn >= 8)
		return VMRES_ERANGE;
	pthread_mutex_lock(&h->lock);
	if (!h->funcs[slot][fn])
		rc = VMRES_ENOENT;
	else
		h->funcs[slot][fn] = NULL;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int check_port_access(uint64_t port_off, unsigned int size)
{
	if (port_off >= VMRES_PCI_CONF1_SIZE)
		return VMRES_ERANGE;
	if ((size != 1 && size != 2 && size != 4) || (port_off & 3u) + size > 4)
		return VMRES_EACCESS;
	return 0;
}

/* The function and register a data-port access goes to, or NULL. Host lock held. */
static struct vmres_pci_func *conf1_target(const struct vmres_pci_host *h, unsigned int port_off,
					   unsigned int *reg)
{
	uint32_t a = h->address;

	if (!(a & CONF1_ENABLE) || ((a >> 16) & 0xff) != 0)
		return NULL;
	*reg = (a & 0xfc) + (port_off - CONF1_DATA);
	return h->funcs[(a >> 11) & 0x1f][(a >> 8) & 0x7];
}

/* A conf1 port access at @p offset: a read into *@p val, or a write of it. */
static int conf1_access(void *obj, uint64_t offset, unsigned int size, uint64_t *val,
			bool is_write)
{
	struct vmres_pci_host *h = obj;
	unsigned int port_off = (unsigned int)offset, reg;
	struct vmres_pci_func *f;
	uint32_t v;
	int rc;

	if (!h)
		return VMRES_EINVAL;
	rc = check_port_access(offset, size);
	if (rc)
		return rc;
	v = all_ones(size);
	pthread_mutex_lock(&h->lock);
	if (port_off == 0 && size == 4) {
		if (is_write)
			h->address = (uint32_t)*val & CONF1_ADDR_MASK;
		else
			v = h->address;
	} else if (port_off >= CONF1_DATA) {
		f = conf1_target(h, port_off, &reg);
		if (f && is_write)
			(void)vmres_pci_func_config_write(f, reg, size, (uint32_t)*val);
		else if (f && vmres_pci_func_config_read(f, reg, size, &v))
			v = all_ones(size);
	}
	pthread_mutex_unlock(&h->lock);
	if (!is_write)
		*val = v;
	return 0;
}

int vmres_pci_host_conf1_read(struct vmres_pci_host *h, unsigned int port_off, unsigned int size,
			      uint32_t *val)
{
	uint64_t v;
	int rc = val ? conf1_access(h, port_off, size, &v, false) : VMRES_EINVAL;

	if (!rc)
		*val = (uint32_t)v;
	return rc;
}

int vmres_pci_host_conf1_write(struct vmres_pci_host *h, unsigned int port_off, unsigned int size,
			       uint32_t val)
{
	uint64_t v = val;

	return conf1_access(h, port_off, size, &v, true);
}

static uint64_t window_dev_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
				unsigned int size)
{
	const struct window *w = opaque;
	uint64_t v = 0;

	(void)range;
	(void)addr;
	return w->access(opaque, offset, size, &v, false) ? UINT64_MAX : v;
}

static void window_dev_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			     unsigned int size, uint64_t value)
{
	const struct window *w = opaque;

	(void)range;
	(void)addr;
	(void)w->access(opaque, offset, size, &value, true);
}

/* A host-side window (@p obj starts with its struct window) as a vmres
 * device, without a release callback. */
static int window_device(void *obj, const char *name, struct vmres_device *out)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;

	if (!obj || !out)
		return VMRES_EINVAL;
	dev.name = name;
	dev.opaque = obj;
	dev.read = window_dev_read;
	dev.write = window_dev_write;
	*out = dev;
	return 0;
}

int vmres_pci_host_device(struct vmres_pci_host *h, struct vmres_device *out)
{
	return window_device(h, "pci-conf1", out);
}

/* ---- ECAM ---- */

struct vmres_pci_ecam {
	struct window win; /* first: the ECAM device's opaque */
	struct vmres_pci_host *host;
	uint64_t size;
};

int vmres_pci_ecam_new(struct vmres_pci_host *h, unsigned int n_buses, struct vmres_pci_ecam **out)
{
	struct vmres_pci_ecam *e;

	if (!h || !out)
		return VMRES_EINVAL;
	if (n_buses < 1 || n_buses > 256)
		return VMRES_ERANGE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return VMRES_ENOMEM;
	e->win.access = ecam_access;
	e->host = h;
	e->size = (uint64_t)n_buses * VMRES_PCI_ECAM_BUS_SIZE;
	*out = e;
	return 0;
}

void vmres_pci_ecam_free(struct vmres_pci_ecam *e)
{
	free(e);
}

static int ecam_check(const struct vmres_pci_ecam *e, uint64_t offset, unsigned int size)
{
	if (offset >= e->size)
		return VMRES_ERANGE;
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return VMRES_EACCESS;
	return 0;
}

/* The function a window offset addresses (bus 0 only), or NULL. Host lock held. */
static struct vmres_pci_func *ecam_target(const struct vmres_pci_ecam *e, uint64_t offset)
{
	if (offset >> 20)
		return NULL;
	return e->host->funcs[(offset >> 15) & 0x1f][(offset >> 12) & 0x7];
}

/* A dword or smaller access within one dword, a read into *@p val or a
 * write of it. Host lock held. */
static void ecam_access1(const struct vmres_pci_ecam *e, uint64_t offset, unsigned int size,
			 uint32_t *val, bool is_write)
{
	struct vmres_pci_func *f = ecam_target(e, offset);
	unsigned int reg = (unsigned int)(offset & 0xfff);

	if (f && is_write)
		(void)vmres_pci_func_config_write(f, reg, size, *val);
	else if (!is_write && (!f || vmres_pci_func_config_read(f, reg, size, val)))
		*val = all_ones(size);
}

/* An ECAM access at @p offset: a read into *@p val, or a write of it. */
static int ecam_access(void *obj, uint64_t offset, unsigned int size, uint64_t *val,
		       bool is_write)
{
	struct vmres_pci_ecam *e = obj;
	uint32_t lo, hi;
	int rc;

	if (!e || !val)
		return VMRES_EINVAL;
	rc = ecam_check(e, offset, size);
	if (rc)
		return rc;
	lo = (uint32_t)*val;
	hi = (uint32_t)(*val >> 32);
	pthread_mutex_lock(&e->host->lock);
	if (size == 8 && !(offset & 7)) {
		ecam_access1(e, offset, 4, &lo, is_write);
		ecam_access1(e, offset + 4, 4, &hi, is_write);
	} else if (size < 8 && (offset & 3) + size <= 4) {
		ecam_access1(e, offset, size, &lo, is_write);
		hi = 0;
	} else {
		/* Across a dword: reads as all ones, a write is dropped. */
		lo = UINT32_MAX;
		hi = UINT32_MAX;
	}
	pthread_mutex_unlock(&e->host->lock);
	if (!is_write)
		*val = ((uint64_t)hi << 32 | lo) & VMRES__ONES(size);
	return 0;
}

int vmres_pci_ecam_read(struct vmres_pci_ecam *e, uint64_t offset, unsigned int size, uint64_t *val)
{
	return ecam_access(e, offset, size, val, false);
}

int vmres_pci_ecam_write(struct vmres_pci_ecam *e, uint64_t offset, unsigned int size, uint64_t val)
{
	return ecam_access(e, offset, size, &val, true);
}

int vmres_pci_ecam_device(struct vmres_pci_ecam *e, struct vmres_device *out)
{
	return window_device(e, "pci-ecam", out);
}
