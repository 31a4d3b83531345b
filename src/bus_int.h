/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What bus.c shares with devmgr.c: the immutable bus map and its inlined
 * lookup. The RCU glue that publishes it is rcu_int.h, the miss counters
 * miss_int.h, guest byte order util/byteorder.h.
 *
 * A bus map is the sorted array of ranges plus a static B+ tree over their
 * starts (an "S+ tree"): the leaf level is the sorted starts themselves, padded
 * to whole nodes of 8 keys (one 64-byte cache line); each level above holds, per
 * node, the first start of its children 1..8 (a node has 9 children; child c of
 * node k is node k * 9 + c of the level below). A tree search reads one cache
 * line per level (4 for 4096 ranges) and decides each level without a branch: the
 * number of keys <= the address is the child to descend to, and at the leaf it is
 * the position of the predecessor in the sorted array. Missing keys are
 * UINT64_MAX, so they never count, except for the address UINT64_MAX, whose
 * predecessor is always the last range (one predictable branch).
 *
 * In front of the tree sits a bucket table, a one-level radix index: the span
 * from the first start to the last is cut into a power of two of equal buckets
 * (at least four times as many as ranges, up to 2^20), and each bucket records the
 * predecessor of its first address. When at most 2 ranges start inside a bucket
 * (the usual case when devices are spread out, as a VMM lays them), the
 * predecessor of any address in it is that recorded one plus the count of the
 * next 2 leaf keys <= the address: a shift, a table load and 2 compares, whatever
 * the number of ranges. A bucket where more start (a cluster of small ranges) is
 * marked and sends its addresses to the tree. So a lookup costs the tree's
 * search plus a table load and a branch at worst (mispredicted only where
 * accesses alternate between spread and clustered ranges).
 */
#ifndef VMRES_BUS_INT_H
#define VMRES_BUS_INT_H

#include "rcu_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vmres/device.h>

#include "util/byteorder.h"

/* A device's callbacks as an entry holds them: the plain pair, or the pair that
 * also takes the caller's context (struct vmres_device version 2). */
union vmres__read_cb {
	vmres_device_read_fn plain;
	vmres_device_read_ctx_fn ctx;
};

union vmres__write_cb {
	vmres_device_write_fn plain;
	vmres_device_write_ctx_fn ctx;
};

struct vmres__notify_slot;

/* One mapped range. 64 bytes, so that a hit reads exactly one cache line and the
 * callbacks are reached without going through the device record. with_caller
 * sits in what was padding, in the same line as the callbacks: choosing the
 * style costs one load already paid for and a branch that a device's accesses
 * always take the same way. notify (the device manager's ranges only, kvmres.h)
 * took the rest of the padding: a write checks it, in the same line, and only
 * a range with notify regions leaves the common path. */
struct vmres__bus_entry {
	uint64_t start;
	uint64_t span; /* last - start */
	void *opaque;
	union vmres__read_cb read;
	union vmres__write_cb write;
	const struct vmres_device *dev; /* identity: release, resolve, owner lookups */
	uint32_t range;
	uint32_t with_caller; /* 1: read.ctx and write.ctx; 0: read.plain and write.plain */
	const struct vmres__notify_slot *notify; /* NULL, or the range's notify regions */
};

_Static_assert(sizeof(struct vmres__bus_entry) == 64, "a bus entry is one cache line");

/* Is @p dev a device vmres takes: version 1 or 2, callbacks of one style only?
 * 0 or VMRES_EINVAL. */
int vmres__device_check(const struct vmres_device *dev);

/* Copy the checked device @p src into @p dst, a struct of this build's version:
 * the members a version 1 struct lacks are read from nowhere and left zero. */
void vmres__device_copy(struct vmres_device *dst, const struct vmres_device *src);

/* Set @p e's opaque, callbacks and style from @p dev (of this build's version,
 * e.g. made by vmres__device_copy()), NULL callbacks replaced by ones that read
 * all ones and drop writes. */
void vmres__device_entry(struct vmres__bus_entry *e, const struct vmres_device *dev);

/* The device's read and write through entry @p e, with @p caller for a device
 * that takes it. */
static inline __attribute__((always_inline)) uint64_t
vmres__entry_read(const struct vmres__bus_entry *e, void *caller, uint64_t off, uint64_t addr,
		  unsigned int size)
{
	if (e->with_caller)
		return e->read.ctx(e->opaque, caller, e->range, off, addr, size);
	return e->read.plain(e->opaque, e->range, off, addr, size);
}

static inline __attribute__((always_inline)) void
vmres__entry_write(const struct vmres__bus_entry *e, void *caller, uint64_t off, uint64_t addr,
		   unsigned int size, uint64_t value)
{
	if (e->with_caller)
		e->write.ctx(e->opaque, caller, e->range, off, addr, size, value);
	else
		e->write.plain(e->opaque, e->range, off, addr, size, value);
}

#define VMRES__BUS_KEYS	      8	 /* keys per index node: one cache line */
#define VMRES__BUS_MAX_LEVELS 12 /* 9^11 * 8 ranges: more than 32-bit counts */

/* The direct table of the PIO space: port p is held by entries[i], i =
 * pio_pages[pio_top[p >> 8] * 256 + (p & 255)] (0: no range holds p). Page 0 is
 * all zeroes; a page that lies inside one range is shared with the pages after it
 * in the same range; only a page that holds a range boundary has its own. So a
 * PC's port map takes a few pages of 512 bytes, and the whole 16-bit space at
 * most 257 (128.5 KiB). Built when every range ends at or below port 0xFFFF and
 * there are fewer than 65536 ranges (else pio_pages is NULL). */
#define VMRES__PIO_PAGE	     256
#define VMRES__PIO_TOP	     256
#define VMRES__PIO_MAX_PAGES (VMRES__PIO_TOP + 1)
#define VMRES__PIO_LAST	     0xFFFFu /* = VMRES_BUS_PIO_LAST */

/* The bucket table's word for a bucket in which more than VMRES__BUS_WINDOW ranges
 * start: search the tree. Otherwise the word is the predecessor's entry index. */
#define VMRES__BUS_DENSE  0x80000000u
#define VMRES__BUS_WINDOW 2

/* Immutable once published: one block of [this header][keys][entries], 64-byte
 * aligned, so the root node is at a fixed offset from the header (the lookup
 * loads the map pointer and then the root, not a keys pointer first).
 * entries[0] is a sentinel (dev == NULL) that stands for "no range starts at or
 * below the address"; ranges are entries[1..n]. */
struct vmres__bus_map {
	/* The first cache line: everything a lookup reads besides the tables. */
	_Alignas(64) uint64_t rx_origin; /* the first start (0 with no range) */
	const uint32_t *rx;		 /* rx_count buckets, then the one past the end */
	const uint64_t *leaves;		 /* the sorted starts, padded with UINT64_MAX */
	struct vmres__bus_entry *entries;
	const uint16_t *pio_pages; /* the PIO table's pages, or NULL (no table) */
	uint32_t rx_shift;	   /* bucket b holds [origin + b << shift, ...) */
	uint32_t rx_count;
	uint32_t levels; /* inner levels above the leaves */
	uint32_t n;	 /* number of ranges */
	/* Offset (in keys) of each inner level, root first (0), then of the leaves. */
	uint32_t level_off[VMRES__BUS_MAX_LEVELS + 1];
	_Alignas(64) uint16_t pio_top[VMRES__PIO_TOP];
	/* Writers only: */
	const uint64_t *keys; /* all levels, root first: the header's end */
	/* Nodes per level, and leaf nodes under one child per level. */
	uint32_t level_count[VMRES__BUS_MAX_LEVELS + 1];
	uint32_t level_span[VMRES__BUS_MAX_LEVELS + 1];
	size_t mem_size; /* bytes of the block (the header's address) */
	struct rcu_head rcu;
};

/* The root node: right after the header (sizeof is a multiple of 64). */
static inline const uint64_t *vmres__bus_keys(const struct vmres__bus_map *s)
{
	return (const uint64_t *)(const void *)(s + 1);
}

/* Retired map blocks kept for reuse, so that a writer neither faults in
 * fresh pages nor makes the allocator unmap them (which would interrupt every
 * vCPU with a TLB shootdown) each time a big bus changes. Two: a writer's
 * publish needs one while the previous copy waits for its grace period; each
 * slot costs a bus copy (about 73 bytes per range, devmgr.h), and 4 slots
 * measured no faster moves than 2 (bench devmgr-mem, kvmres-bar-move). */
#define VMRES__CACHE_SLOTS 2
struct vmres__bus_map_cache {
	pthread_mutex_t lock;
	void *mem[VMRES__CACHE_SLOTS];
	size_t size[VMRES__CACHE_SLOTS];
};

void vmres__bus_map_cache_init(struct vmres__bus_map_cache *c);
void vmres__bus_map_cache_destroy(struct vmres__bus_map_cache *c);

/* A map of @p n ranges to be filled in: the caller writes entries[1..n]
 * sorted by start, then calls vmres__bus_map_index() (or frees it). @p cache
 * may be NULL (plain malloc). */
int vmres__bus_map_alloc(struct vmres__bus_map_cache *cache, size_t n, struct vmres__bus_map **out);
/* Check the ranges are sorted and disjoint (VMRES_EINVAL, VMRES_EOVERLAP) and
 * build the index. */
int vmres__bus_map_index(struct vmres__bus_map *s);
/*
 * The map that follows @p cur with the ranges at positions @p drop[0..nd) of
 * cur->entries (ascending, 1-based) removed and the @p na ranges @p add (sorted
 * by start) inserted: VMRES_EOVERLAP or VMRES_EINVAL if an added range meets
 * or precedes a neighbour, VMRES_ECORRUPT for bad positions, VMRES_ENOMEM. What
 * a writer that changes a few ranges calls: the unchanged runs of entries and
 * leaves are copied with memcpy, the bucket table is derived from cur's (one
 * add per bucket) where the geometry allows, and only the small inner levels of
 * the tree are recomputed; O(n) copying, no per-range work beyond that.
 */
int vmres__bus_map_edit(struct vmres__bus_map_cache *cache, const struct vmres__bus_map *cur,
			const uint32_t *drop, size_t nd, const struct vmres__bus_entry *add,
			size_t na, struct vmres__bus_map **out);
/* Both in one: @p n ranges copied from @p sorted. */
int vmres__bus_map_build(struct vmres__bus_map_cache *cache, const struct vmres__bus_entry *sorted,
			  size_t n, struct vmres__bus_map **out);
/* Free, or keep in @p cache (may be NULL) for reuse. */
void vmres__bus_map_free(struct vmres__bus_map_cache *cache, struct vmres__bus_map *s);

/* The number of keys <= @p addr in a node, as two chains of 4 compares (the
 * compiler makes each a cmp/sbb chain). */
static inline size_t vmres__bus_node_count(const uint64_t *node, uint64_t addr)
{
	size_t lo = (size_t)(node[0] <= addr) + (node[1] <= addr) + (node[2] <= addr) +
		    (node[3] <= addr);
	size_t hi = (size_t)(node[4] <= addr) + (node[5] <= addr) + (node[6] <= addr) +
		    (node[7] <= addr);

	return lo + hi;
}

/* The descent for a known number of inner levels (a constant where inlined). */
static inline __attribute__((always_inline)) size_t
vmres__bus_descend(const struct vmres__bus_map *s, uint64_t addr, uint32_t levels)
{
	const uint64_t *keys = vmres__bus_keys(s);
	size_t k = vmres__bus_node_count(keys, addr);

	if (levels == 0)
		return k;
	for (uint32_t l = 1; l < levels; l++)
		k = k * (VMRES__BUS_KEYS + 1) +
		    vmres__bus_node_count(keys + s->level_off[l] + k * VMRES__BUS_KEYS, addr);
	return k * VMRES__BUS_KEYS +
	       vmres__bus_node_count(keys + s->level_off[levels] + k * VMRES__BUS_KEYS, addr);
}

/* The tree search: index in s->entries of the last range whose start is <= @p
 * addr (0: none), for an address below UINT64_MAX. One predictable branch on the
 * tree's height: each case is unrolled. */
static inline __attribute__((always_inline)) size_t
vmres__bus_tree_pred(const struct vmres__bus_map *s, uint64_t addr)
{
	switch (s->levels) {
	case 0:
		return vmres__bus_descend(s, addr, 0);
	case 1:
		return vmres__bus_descend(s, addr, 1);
	case 2:
		return vmres__bus_descend(s, addr, 2);
	case 3:
		return vmres__bus_descend(s, addr, 3);
	default:
		return vmres__bus_descend(s, addr, s->levels);
	}
}

/* Through the bucket table: false for an address in a dense bucket (search the
 * tree); else true and *@p idx is the index in s->entries of the only range that
 * can hold @p addr: the last one whose start is <= @p addr. Below every start, the
 * index of some entry that does not hold @p addr (the sentinel, or a range above
 * it): an address below the origin wraps to a huge bucket number, and no compare
 * is spent on it. */
static inline __attribute__((always_inline)) bool
vmres__bus_bucket_pred(const struct vmres__bus_map *s, uint64_t addr, size_t *idx)
{
	uint64_t b = (addr - s->rx_origin) >> s->rx_shift;
	const uint64_t *k;
	uint32_t w;

	if (__builtin_expect(addr == UINT64_MAX, 0)) {
		*idx = s->n;
		return true;
	}
	/* Past the last bucket (or wrapped from below the origin): the end word. */
	b = b < s->rx_count ? b : s->rx_count;
	w = s->rx[b];
	k = s->leaves + (w & ~VMRES__BUS_DENSE);
	*idx = w;
	for (size_t i = 0; i < VMRES__BUS_WINDOW; i++)
		*idx += k[i] <= addr;
	return !(w & VMRES__BUS_DENSE);
}

/* The index of the only range that can hold @p addr, as above, by the bucket
 * table or the tree. */
static inline __attribute__((always_inline)) size_t
vmres__bus_pred_index(const struct vmres__bus_map *s, uint64_t addr)
{
	size_t idx;

	if (__builtin_expect(vmres__bus_bucket_pred(s, addr, &idx), 1))
		return idx;
	return vmres__bus_tree_pred(s, addr);
}

/* The only range that can hold @p addr (see vmres__bus_pred_index()). */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_pred(const struct vmres__bus_map *s, uint64_t addr)
{
	return &s->entries[vmres__bus_pred_index(s, addr)];
}

/* Is every byte of [addr, addr + size - 1] inside @p e (not the sentinel)? *offset
 * is set in any case. size is at least 1. */
static inline __attribute__((always_inline)) bool
vmres__bus_inside(const struct vmres__bus_entry *e, uint64_t addr, unsigned int size,
		  uint64_t *offset)
{
	uint64_t off = addr - e->start;

	*offset = off;
	return (off <= e->span) & (e->span - off >= (uint64_t)size - 1) & (e->dev != NULL);
}

/* The entry holding @p port (the sentinel when none) through the PIO table, which
 * must exist (s->pio_pages != NULL). Three dependent loads, no compare. */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_pio_entry(const struct vmres__bus_map *s, uint16_t port)
{
	size_t page = s->pio_top[port >> 8];

	return &s->entries[s->pio_pages[page * VMRES__PIO_PAGE + (port & (VMRES__PIO_PAGE - 1))]];
}

/* The entry for @p addr on any bus: the one holding it through the PIO table
 * when @p addr is a port and the map has the table, else the last range
 * starting at or below it (the sentinel when none). */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_lookup(const struct vmres__bus_map *s, uint64_t addr)
{
	if (addr <= VMRES__PIO_LAST && s->pio_pages != NULL)
		return vmres__bus_pio_entry(s, (uint16_t)addr);
	return vmres__bus_pred(s, addr);
}

/*
 * A bus as the device manager publishes it: an immutable base map and a delta,
 * the few changes made since the base was built. A change of a few ranges (a
 * BAR move, a decode toggle) publishes a new delta and shares the base, so the
 * writer copies a few hundred bytes instead of the map, and the readers keep
 * the base in their caches: only the delta's lines are new to them. Once a
 * change would take the delta past VMRES__BUS_DELTA_MAX added or dropped
 * ranges, the writer merges it into a new base (vmres__bus_map_edit()) and
 * starts an empty delta. A range that goes back to where it was in the base
 * (the same entry, byte for byte) cancels out of the delta.
 *
 * Readers: an address in an added range is that range's; otherwise the base's
 * answer, unless that is a dropped range (then the address is in no range:
 * ranges are disjoint, so no other base range can hold it). An empty delta
 * costs one load and a branch.
 */
#define VMRES__BUS_DELTA_MAX 4

struct vmres__bus_delta {
	uint32_t n_add;
	uint32_t n_drop;
	uint32_t drop[VMRES__BUS_DELTA_MAX];		   /* ascending indices in the base */
	struct vmres__bus_entry add[VMRES__BUS_DELTA_MAX]; /* sorted by start, disjoint */
};

/* @p e, the base's entry for @p addr, as the delta @p d corrects it. */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_delta_apply(const struct vmres__bus_map *s, const struct vmres__bus_delta *d,
		       const struct vmres__bus_entry *e, uint64_t addr)
{
	for (uint32_t i = 0; i < d->n_add; i++)
		if (addr - d->add[i].start <= d->add[i].span)
			return &d->add[i];
	for (uint32_t i = 0; i < d->n_drop; i++)
		if (e == &s->entries[d->drop[i]])
			return &s->entries[0];
	return e;
}

/* The range of the bus (@p s, @p d) holding every byte of [addr, addr + size -
 * 1], or NULL; *offset is set on a hit. size is at least 1. */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_find(const struct vmres__bus_map *s, const struct vmres__bus_delta *d, uint64_t addr,
		unsigned int size, uint64_t *offset)
{
	const struct vmres__bus_entry *e = vmres__bus_pred(s, addr);

	if (__builtin_expect(d->n_add | d->n_drop, 0))
		e = vmres__bus_delta_apply(s, d, e, addr);
	return vmres__bus_inside(e, addr, size, offset) ? e : NULL;
}

/* The same for a port: through the PIO table when the base has one. */
static inline __attribute__((always_inline)) const struct vmres__bus_entry *
vmres__bus_find_pio(const struct vmres__bus_map *s, const struct vmres__bus_delta *d, uint16_t port,
		    unsigned int size, uint64_t *offset)
{
	const struct vmres__bus_entry *e;

	if (__builtin_expect(s->pio_pages != NULL, 1))
		e = vmres__bus_pio_entry(s, port);
	else
		e = vmres__bus_pred(s, port);
	if (__builtin_expect(d->n_add | d->n_drop, 0))
		e = vmres__bus_delta_apply(s, d, e, port);
	return vmres__bus_inside(e, port, size, offset) ? e : NULL;
}

/*
 * Does [@p first, @p last] meet a range of the bus (@p s, @p d) other than
 * range @p range of @p dev? O(log n + VMRES__BUS_DELTA_MAX).
 */
bool vmres__bus_taken(const struct vmres__bus_map *s, const struct vmres__bus_delta *d,
		      uint64_t first, uint64_t last, const struct vmres_device *dev,
		      uint32_t range);

/*
 * The bus that follows (@p s, @p d) when the ranges @p drop[0..nd) leave it
 * (found by start, device and range: VMRES_ECORRUPT if one is not on the bus)
 * and the @p na ranges @p add (any order) join it: VMRES_EOVERLAP if an added
 * range meets another range, VMRES_ENOMEM. Either *@p out_s = @p s and
 * *@p out_d a new delta, or, when the delta would grow past
 * VMRES__BUS_DELTA_MAX, *@p out_s a new base (from @p cache) with an empty
 * *@p out_d. Nothing changes on failure.
 */
int vmres__bus_change(struct vmres__bus_map_cache *cache, const struct vmres__bus_map *s,
		      const struct vmres__bus_delta *d, const struct vmres__bus_entry *drop,
		      size_t nd, const struct vmres__bus_entry *add, size_t na,
		      struct vmres__bus_map **out_s, struct vmres__bus_delta *out_d);

#endif /* VMRES_BUS_INT_H */
