/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals shared by the files of src/addr/ (never installed): the node layout,
 * small inline helpers and the tree operations of tree.c. See tree.c for the
 * design. */
#ifndef VMRES_ADDR_INT_H
#define VMRES_ADDR_INT_H

#include <vmres/addr.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define LEAF_CAP 32
#define LEAF_MIN (LEAF_CAP / 4)
#define NODE_CAP 32
#define NODE_MIN (NODE_CAP / 4)
/* The byte arrays of a node are read 32 bytes at a time (bytes_ge_mask()). */
_Static_assert(LEAF_CAP == 32 && NODE_CAP == 32, "node byte arrays must hold 32 bytes");
/* 2^32 nodes with at least NODE_MIN children per level cannot be deeper. */
#define MAX_DEPTH   20
#define NIL	    UINT32_MAX
#define CHUNK_SHIFT 6 /* nodes per pool chunk: 64 */
#define CHUNK_NODES (1u << CHUNK_SHIFT)
/* The first SLAB_AFTER chunks of a pool are malloc()ed one by one; later ones are
 * carved from 2 MiB slabs that the kernel may back with one huge page. */
#define SLAB_AFTER 8
#define SLAB_BYTES (2u << 20)

/* One allocation, and the free gap right before it. */
struct entry {
	uint64_t base;
	uint64_t last;
	uint64_t gap; /* free bytes right before base; 0 if none */
	uint64_t owner;
};

/* Entries side by side, so that an insertion or removal shifts one array; the
 * bytes that searches scan, 16 at a time, are arrays of their own. */
struct leaf {
	struct entry e[LEAF_CAP];
	uint8_t bits[LEAF_CAP]; /* bit_length(e[i].gap) */
	uint8_t blk[LEAF_CAP];	/* block_class() of the gap before e[i]; 0 if none */
	uint32_t count;
	uint32_t prev; /* neighbouring leaves in address order, or NIL */
	uint32_t next;
};

struct inode {
	uint64_t key[NODE_CAP];	    /* lowest base in child i */
	uint64_t max_gap[NODE_CAP]; /* the largest gap in child i's subtree (exact) */
	uint8_t bits[NODE_CAP];	    /* bit length of max_gap[i], scanned 16 at a time */
	uint8_t blocks[NODE_CAP];   /* the largest block_class() of the gaps in child i */
	uint32_t child[NODE_CAP];
	uint32_t count;
};

/* Nodes of one size in chunks of CHUNK_NODES; node i is chunk[i >> CHUNK_SHIFT]'s
 * (i % CHUNK_NODES)-th. A free node holds the index of the next free one in its
 * first four bytes. Chunks from SLAB_AFTER on live in slabs (freed as a whole). */
struct pool {
	void **chunk;
	uint32_t chunks;
	uint32_t chunks_cap;
	void **slab;
	uint32_t slabs;
	uint32_t slabs_cap;
	uint32_t slab_left; /* chunks still free in slab[slabs - 1] */
	uint32_t used;	    /* nodes ever handed out */
	uint32_t free;
	uint32_t live;
	uint32_t node_size;
};

struct vmres_addr {
	uint64_t wbase; /* the window [wbase, wlast] */
	uint64_t wlast;
	uint64_t tail_base; /* the tail gap [tail_base, wlast], if tail_free */
	bool tail_free;
	unsigned int height; /* internal levels above the leaves; 0: root is a leaf */
	uint32_t root;
	uint32_t first_leaf;
	uint32_t last_leaf;

	struct pool leaves;
	struct pool inodes;

	uint64_t count;
	uint64_t used; /* modulo 2^64 */
	uint64_t gaps;
};

/* A root-to-leaf path: node[l] for l = 0..height (node[height] is the leaf) and
 * pos[l], the child of node[l] taken, for l < height. */
struct path {
	uint32_t node[MAX_DEPTH + 1];
	uint32_t pos[MAX_DEPTH];
};

/* What a fit search looks for: a range of `size` bytes (size_m1 = size - 1),
 * aligned to mask + 1, inside [lo, hi]. */
struct want {
	uint64_t size;
	uint64_t size_m1;
	uint64_t mask;
	uint64_t lo;
	uint64_t hi;
	uint64_t lo_end;   /* lo + size - 1: a gap must reach this far */
	uint64_t hi_start; /* hi - size + 1: a gap must start at or before this */
	uint8_t size_bits; /* bit_length(size): the least bit length of a gap that fits */
	uint8_t block;	   /* the least block_class() of a gap that fits */
	bool bounded;	   /* [lo, hi] is narrower than the window */
};

static inline void *pool_at(const struct pool *pl, uint32_t i)
{
	return (char *)pl->chunk[i >> CHUNK_SHIFT] +
	       (size_t)(i & (CHUNK_NODES - 1)) * pl->node_size;
}

/* Typed, so that the node size is a constant. */
static inline struct leaf *leaf_at(const struct vmres_addr *a, uint32_t i)
{
	return (struct leaf *)a->leaves.chunk[i >> CHUNK_SHIFT] + (i & (CHUNK_NODES - 1));
}

static inline struct inode *inode_at(const struct vmres_addr *a, uint32_t i)
{
	return (struct inode *)a->inodes.chunk[i >> CHUNK_SHIFT] + (i & (CHUNK_NODES - 1));
}

static inline uint64_t max_u64(uint64_t x, uint64_t y)
{
	return x > y ? x : y;
}

static inline uint64_t min_u64(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

static inline uint8_t bit_length(uint64_t x)
{
	return x ? (uint8_t)(64 - __builtin_clzll(x)) : 0;
}

/*
 * 1 + log2 of the largest naturally aligned power-of-two block inside the free
 * range [gs, ge]; 0 for no range. A range of length L holds an aligned block of
 * 2^(floor(log2 L) - 1) bytes, and maybe one twice as large.
 */
static inline uint8_t block_class(uint64_t gs, uint64_t ge)
{
	uint64_t len_m1 = ge - gs, mask, start;
	unsigned int j;

	if (len_m1 == UINT64_MAX)
		return 64;
	j = 63 - (unsigned int)__builtin_clzll(len_m1 + 1);
	mask = (1ULL << j) - 1;
	start = (gs + mask) & ~mask;
	if (start >= gs && start <= ge && ge - start >= mask)
		return (uint8_t)(j + 1);
	return (uint8_t)j;
}

/*
 * Per-node byte arrays (bit lengths and block classes of 32 gaps, all <= 64) are
 * compared 16 at a time with SSE2, which every x86-64 has; other targets use the
 * plain loops. Bytes past a node's count are never trusted: every mask is cut
 * to the count.
 */
/* Bit i set where bytes[i] >= t, for i < 32. */
static inline uint32_t bytes_ge_mask(const uint8_t *bytes, uint8_t t)
{
#ifdef __SSE2__
	__m128i vt = _mm_set1_epi8((char)t);
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	uint32_t mlo = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(lo, vt), lo));
	uint32_t mhi = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(hi, vt), hi));

	return mlo | mhi << 16;
#else
	uint32_t m = 0;

	for (uint32_t i = 0; i < 32; i++)
		m |= (uint32_t)(bytes[i] >= t) << i;
	return m;
#endif
}

/* Insert @v at @pos of the 32-byte array @bytes, moving bytes pos..30 up by one
 * (byte 31 is lost: the caller's count is below 32). */
static inline void bytes_insert(uint8_t *bytes, uint32_t pos, uint8_t v)
{
#ifdef __SSE2__
	const __m128i idx_lo = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m128i idx_hi = _mm_add_epi8(idx_lo, _mm_set1_epi8(16));
	__m128i vp = _mm_set1_epi8((char)pos), vv = _mm_set1_epi8((char)v);
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	__m128i up_lo = _mm_slli_si128(lo, 1);
	__m128i up_hi = _mm_or_si128(_mm_slli_si128(hi, 1), _mm_srli_si128(lo, 15));
	__m128i keep_lo = _mm_cmpgt_epi8(vp, idx_lo), keep_hi = _mm_cmpgt_epi8(vp, idx_hi);
	__m128i at_lo = _mm_cmpeq_epi8(vp, idx_lo), at_hi = _mm_cmpeq_epi8(vp, idx_hi);

	lo = _mm_or_si128(_mm_and_si128(keep_lo, lo),
			  _mm_or_si128(_mm_and_si128(at_lo, vv),
				       _mm_andnot_si128(_mm_or_si128(keep_lo, at_lo), up_lo)));
	hi = _mm_or_si128(_mm_and_si128(keep_hi, hi),
			  _mm_or_si128(_mm_and_si128(at_hi, vv),
				       _mm_andnot_si128(_mm_or_si128(keep_hi, at_hi), up_hi)));
	_mm_storeu_si128((__m128i *)bytes, lo);
	_mm_storeu_si128((__m128i *)(bytes + 16), hi);
#else
	memmove(bytes + pos + 1, bytes + pos, 31 - pos);
	bytes[pos] = v;
#endif
}

/* Bits 0 .. count - 1 (count <= 32). */
static inline uint32_t count_mask(uint32_t count)
{
	return (uint32_t)((1ULL << count) - 1);
}

/* The largest of bytes[0 .. count - 1] (count <= 32), 0 if count is 0. */
static inline uint8_t max_byte(const uint8_t *bytes, uint32_t count)
{
#ifdef __SSE2__
	const __m128i idx_lo = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m128i idx_hi = _mm_add_epi8(idx_lo, _mm_set1_epi8(16));
	__m128i vc = _mm_set1_epi8((char)count);
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	__m128i m;

	/* Keep the bytes whose index is below count (all values are < 128). */
	lo = _mm_and_si128(lo, _mm_cmpgt_epi8(vc, idx_lo));
	hi = _mm_and_si128(hi, _mm_cmpgt_epi8(vc, idx_hi));
	m = _mm_max_epu8(lo, hi);
	m = _mm_max_epu8(m, _mm_srli_si128(m, 8));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 4));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 2));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 1));
	return (uint8_t)_mm_cvtsi128_si32(m);
#else
	uint8_t m = 0;

	for (uint32_t i = 0; i < count; i++)
		m = bytes[i] > m ? bytes[i] : m;
	return m;
#endif
}

/* The largest of x[0 .. count - 1] and of y[0 .. count - 1] (count <= 32), in
 * one pass: the two reductions share their steps. */
static inline void max_bytes2(const uint8_t *x, const uint8_t *y, uint32_t count, uint8_t *mx,
			      uint8_t *my)
{
#ifdef __SSE2__
	const __m128i idx_lo = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m128i idx_hi = _mm_add_epi8(idx_lo, _mm_set1_epi8(16));
	__m128i vc = _mm_set1_epi8((char)count);
	__m128i klo = _mm_cmpgt_epi8(vc, idx_lo), khi = _mm_cmpgt_epi8(vc, idx_hi);
	__m128i a = _mm_max_epu8(_mm_and_si128(_mm_loadu_si128((const __m128i *)x), klo),
				 _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + 16)), khi));
	__m128i b = _mm_max_epu8(_mm_and_si128(_mm_loadu_si128((const __m128i *)y), klo),
				 _mm_and_si128(_mm_loadu_si128((const __m128i *)(y + 16)), khi));
	__m128i v;

	a = _mm_max_epu8(a, _mm_srli_si128(a, 8));
	b = _mm_max_epu8(b, _mm_srli_si128(b, 8));
	v = _mm_unpacklo_epi64(a, b); /* x's 8 candidates low, y's high */
	v = _mm_max_epu8(v, _mm_srli_epi64(v, 32));
	v = _mm_max_epu8(v, _mm_srli_epi64(v, 16));
	v = _mm_max_epu8(v, _mm_srli_epi64(v, 8));
	*mx = (uint8_t)_mm_cvtsi128_si32(v);
	*my = (uint8_t)_mm_extract_epi16(v, 4);
#else
	*mx = max_byte(x, count);
	*my = max_byte(y, count);
#endif
}

/*
 * The largest of v[0 .. count - 1], where bits[i] = bit_length(v[i]) and the
 * largest bit length is @top: only the values of that bit length are compared.
 */
static inline uint64_t max_of_top(const uint64_t *v, const uint8_t *bits, uint32_t count,
				  uint8_t top)
{
	uint64_t m = 0;
	uint32_t f;

	if (top == 0)
		return 0;
	for (f = bytes_ge_mask(bits, top) & count_mask(count); f; f &= f - 1)
		m = max_u64(m, v[__builtin_ctz(f)]);
	return m;
}

/* What a subtree holds: its largest gap and largest block_class(), both exact. */
struct bound {
	uint64_t gap;
	uint8_t block;
};

static inline struct bound bound_max(struct bound x, struct bound y)
{
	return (struct bound){max_u64(x.gap, y.gap), x.block > y.block ? x.block : y.block};
}

static inline bool bound_equal(const struct inode *n, uint32_t i, struct bound b)
{
	return n->max_gap[i] == b.gap && n->blocks[i] == b.block;
}

static inline struct bound bound_of(const struct inode *n, uint32_t i)
{
	return (struct bound){n->max_gap[i], n->blocks[i]};
}

static inline void set_bound(struct inode *n, uint32_t i, struct bound b)
{
	n->max_gap[i] = b.gap;
	n->bits[i] = bit_length(b.gap);
	n->blocks[i] = b.block;
}

/* The bound of the single gap of @gap bytes that ends right before @base. */
static inline struct bound gap_bound(uint64_t base, uint64_t gap)
{
	return (struct bound){gap, gap ? block_class(base - gap, base - 1) : 0};
}

/* Set the gap before entry @i of @l (which has its base) and its block class. */
static inline void leaf_set_gap(struct leaf *l, uint32_t i, uint64_t gap)
{
	l->e[i].gap = gap;
	l->bits[i] = bit_length(gap);
	l->blk[i] = gap ? block_class(l->e[i].base - gap, l->e[i].base - 1) : 0;
}

/* The bound of the gap before entry @i of @l. */
static inline struct bound entry_bound(const struct leaf *l, uint32_t i)
{
	return (struct bound){l->e[i].gap, l->blk[i]};
}

/* The bound stored for the node at @level of @p (its parent's entry). */
static inline struct bound stored_bound(const struct vmres_addr *a, const struct path *p,
					unsigned int level)
{
	return bound_of(inode_at(a, p->node[level - 1]), p->pos[level - 1]);
}

/* Ask for every cache line of a node at once, before a binary search would
 * fetch them one after the other: at 100k allocations most nodes are not in
 * cache, and misses that overlap cost little more than one. */
static inline void prefetch_node(const void *node, size_t size)
{
	for (size_t off = 0; off < size; off += 64)
		__builtin_prefetch((const char *)node + off);
}

/* The last child whose key is <= x, or 0. */
static inline uint32_t route(const struct inode *n, uint64_t x)
{
	uint32_t lo = 0, cnt = n->count;

	while (cnt > 1) {
		uint32_t half = cnt / 2;

		if (n->key[lo + half] <= x)
			lo += half;
		cnt -= half;
	}
	return lo;
}

/* Number of entries of @l with base <= x. */
static inline uint32_t leaf_rank(const struct leaf *l, uint64_t x)
{
	uint32_t lo = 0, cnt = l->count;

	while (cnt > 0) {
		uint32_t half = cnt / 2;

		if (l->e[lo + half].base <= x) {
			lo += half + 1;
			cnt -= half + 1;
		} else {
			cnt = half;
		}
	}
	return lo;
}

/* tree.c */
void vmres__addr_pool_init(struct pool *pl, uint32_t node_size);
void vmres__addr_pool_destroy(struct pool *pl);
int vmres__addr_reserve_nodes(struct vmres_addr *a, uint32_t leaves, uint32_t inodes);
uint32_t vmres__addr_leaf_take(struct vmres_addr *a);
int vmres__addr_reserve_slow(struct vmres_addr *a);
struct bound vmres__addr_leaf_bound(const struct leaf *l);
void vmres__addr_summary(const struct vmres_addr *a, unsigned int level, uint32_t node,
			 uint64_t *key, struct bound *b);
void vmres__addr_propagate(struct vmres_addr *a, const struct path *p, uint64_t key,
			   struct bound b);
void vmres__addr_descend(const struct vmres_addr *a, uint64_t x, struct path *p);
bool vmres__addr_path_next_leaf(const struct vmres_addr *a, struct path *p);
void vmres__addr_descend_last(const struct vmres_addr *a, struct path *p);
void vmres__addr_commit_alloc(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			      uint64_t size, uint64_t owner);
void vmres__addr_leaf_remove_entry(struct leaf *l, uint32_t pos);
void vmres__addr_rebalance(struct vmres_addr *a, struct path *p, unsigned int level);

/* Make sure an insertion can take every node it may need (one leaf, and one
 * internal node per level plus a new root), so it never stops half-way. */
static inline int vmres__addr_reserve_for_insert(struct vmres_addr *a)
{
	if (a->leaves.chunks * CHUNK_NODES - a->leaves.used >= 1 &&
	    a->inodes.chunks * CHUNK_NODES - a->inodes.used >= a->height + 1)
		return 0;
	return vmres__addr_reserve_slow(a);
}

#endif /* VMRES_ADDR_INT_H */
