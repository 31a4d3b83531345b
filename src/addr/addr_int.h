/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals shared by the files of src/addr/ (never installed): the node layout
 * of the tree, small inline helpers, and the operations of tree.c. Its nodes
 * come from node_pool.h.
 * The design is described in tree.c. */
#ifndef VMRES_ADDR_INT_H
#define VMRES_ADDR_INT_H

#include <vmres/addr.h>

#include "node_pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define LEAF_CAP 32
#define LEAF_MIN (LEAF_CAP / 4)
#define NODE_CAP 64 /* internal nodes: two 32-byte halves per byte array */
#define NODE_MIN (NODE_CAP / 4)
/* The byte arrays of a node are read 32 bytes at a time (bytes_ge_mask()). */
_Static_assert(LEAF_CAP == 32 && NODE_CAP == 64, "node byte arrays must hold 32 or 64 bytes");
/* 2^32 nodes with at least NODE_MIN children per level cannot be deeper. */
#define MAX_DEPTH      20
#define FINGER_UNKNOWN UINT8_MAX

/* ---- the tree: entries that tile the window, with summaries -------------- */

/* An allocation [start, last] of @owner, or a maximal free gap (owner 0): which
 * one the leaf's bytes tell. */
struct ent {
	uint64_t start;
	uint64_t last;
	uint64_t owner;
};

/* Entries side by side, so that an insertion or removal shifts one array; the
 * bytes that searches scan, 16 at a time, are arrays of their own. A free
 * entry's bytes are never 0 (len_bits() is not); an allocation's are 0, like
 * the bytes at and past count, so that a scan needs no mask and sees only gaps. */
struct leaf {
	struct ent e[LEAF_CAP];
	uint8_t bits[LEAF_CAP]; /* len_bits(e[i].last - e[i].start) of a gap; 0 */
	uint8_t blk[LEAF_CAP];	/* block_class(e[i].start, e[i].last) of a gap; 0 */
	uint32_t count;
	uint32_t prev; /* neighbouring leaves in address order, or NIL */
	uint32_t next;
};

struct inode {
	uint64_t key[NODE_CAP];	    /* lowest start in child i; UINT64_MAX past count */
	uint64_t max_len[NODE_CAP]; /* >= the largest gap's last - start in child i */
	uint8_t bits[NODE_CAP];	    /* len_bits(max_len[i]); 0 past count */
	uint8_t blocks[NODE_CAP];   /* the largest gap block_class() in child i; 0 past count */
	uint32_t child[NODE_CAP];
	uint32_t count;
};

/* The B+tree's shape and node pools. */
struct tree {
	unsigned int height; /* internal levels above the leaves; 0: root is a leaf */
	uint32_t root;
	uint32_t first_leaf;
	uint32_t last_leaf;
	struct node_pool leaves;
	struct node_pool inodes;
};

/* A root-to-leaf path: node[l] for l = 0..height (node[height] is the leaf) and
 * pos[l], the child of node[l] taken, for l < height. */
struct path {
	uint32_t node[MAX_DEPTH + 1];
	uint32_t pos[MAX_DEPTH];
};

struct vmres_addr {
	uint64_t wbase; /* the window [wbase, wlast] */
	uint64_t wlast;
	struct tree t;
	uint64_t count;
	uint64_t used; /* modulo 2^64 */
	uint64_t gaps;
	/* Bumped by every change of the tree's shape (a node split, joined,
	 * shared, taken or given back) and by every release. */
	uint64_t shape;
	/* The path of the last block fit, still valid while shape is finger_shape:
	 * the next one often ends in the same leaf (see block_fit()). side[0]
	 * (side[1]) is at least the largest block class of the gaps before
	 * (after) its leaf, once known; FINGER_UNKNOWN until then. */
	uint64_t finger_shape;
	struct path finger;
	uint8_t side[2];
};

/* What a fit search looks for: a range of size_m1 + 1 bytes, aligned to
 * mask + 1, inside [lo, hi]. */
struct want {
	uint64_t size_m1;
	uint64_t mask;
	uint64_t lo;
	uint64_t hi;
	uint64_t lo_end;   /* lo + size_m1: a gap must reach this far */
	uint64_t hi_start; /* hi - size_m1: a gap must start at or before this */
	uint8_t bits;	   /* len_bits(size_m1): the least len_bits of a gap that fits */
	uint8_t block;	   /* the least block_class() of a gap that fits */
	bool bounded;	   /* [lo, hi] is narrower than the window */
};

/* Typed, so that the node size is a constant. */
#define NODE_AT(type, pl, i) ((type *)(void *)(pl).base + (i))

static inline struct leaf *leaf_at(const struct vmres_addr *a, uint32_t i)
{
	return NODE_AT(struct leaf, a->t.leaves, i);
}

static inline struct inode *inode_at(const struct vmres_addr *a, uint32_t i)
{
	return NODE_AT(struct inode, a->t.inodes, i);
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
	/* Without a branch: which way it goes is as good as random. */
	return (uint8_t)(j + ((start >= gs) & (start <= ge) & (ge - start >= mask)));
}

/*
 * Per-node byte arrays (bit lengths and block classes, all <= 65) are compared
 * 16 at a time with SSE2, which every x86-64 has; other targets use the plain
 * loops. Bytes past a node's count are kept 0, so that no mask needs cutting to
 * the count.
 */
/* Bit i set where bytes[i] >= t, for i < 32 and 1 <= t. Every byte is at most
 * 65, so a signed compare with t - 1 does it. */
static inline uint32_t bytes_ge_mask(const uint8_t *bytes, uint8_t t)
{
#ifdef __SSE2__
	__m128i vt = _mm_set1_epi8((char)(t - 1));
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	uint32_t mlo = (uint32_t)_mm_movemask_epi8(_mm_cmpgt_epi8(lo, vt));
	uint32_t mhi = (uint32_t)_mm_movemask_epi8(_mm_cmpgt_epi8(hi, vt));

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

/* bytes_ge_mask() of a 64-byte array. */
static inline uint64_t bytes_ge_mask64(const uint8_t *bytes, uint8_t t)
{
	return (uint64_t)bytes_ge_mask(bytes, t) | (uint64_t)bytes_ge_mask(bytes + 32, t) << 32;
}

#ifdef __SSE2__
/* Masks of the bytes of a 32-byte array whose index is below @n (n <= 32),
 * its first 16 bytes in @lo, the others in @hi. */
static inline void bytes_below(uint32_t n, __m128i *lo, __m128i *hi)
{
	const __m128i idx_lo = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m128i idx_hi = _mm_add_epi8(idx_lo, _mm_set1_epi8(16));
	__m128i vn = _mm_set1_epi8((char)n);

	*lo = _mm_cmpgt_epi8(vn, idx_lo);
	*hi = _mm_cmpgt_epi8(vn, idx_hi);
}
#endif

/* Remove byte @pos of the 32-byte array @bytes, moving bytes pos + 1..31 down by
 * one; byte 31 becomes 0. */
static inline void bytes_remove(uint8_t *bytes, uint32_t pos)
{
#ifdef __SSE2__
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	__m128i down_lo = _mm_or_si128(_mm_srli_si128(lo, 1), _mm_slli_si128(hi, 15));
	__m128i down_hi = _mm_srli_si128(hi, 1);
	__m128i keep_lo, keep_hi;

	bytes_below(pos, &keep_lo, &keep_hi);

	lo = _mm_or_si128(_mm_and_si128(keep_lo, lo), _mm_andnot_si128(keep_lo, down_lo));
	hi = _mm_or_si128(_mm_and_si128(keep_hi, hi), _mm_andnot_si128(keep_hi, down_hi));
	_mm_storeu_si128((__m128i *)bytes, lo);
	_mm_storeu_si128((__m128i *)(bytes + 16), hi);
#else
	memmove(bytes + pos, bytes + pos + 1, 31 - pos);
	bytes[31] = 0;
#endif
}

#ifdef __SSE2__
/* The largest of the 16 bytes of @m. */
static inline uint8_t hmax_u8(__m128i m)
{
	m = _mm_max_epu8(m, _mm_srli_si128(m, 8));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 4));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 2));
	m = _mm_max_epu8(m, _mm_srli_si128(m, 1));
	return (uint8_t)_mm_cvtsi128_si32(m);
}
#endif

/* The largest of bytes[0 .. count - 1] (count <= 32), 0 if count is 0. */
static inline uint8_t max_byte(const uint8_t *bytes, uint32_t count)
{
#ifdef __SSE2__
	__m128i lo = _mm_loadu_si128((const __m128i *)bytes);
	__m128i hi = _mm_loadu_si128((const __m128i *)(bytes + 16));
	__m128i keep_lo, keep_hi;

	/* Keep the bytes whose index is below count (all values are < 128). */
	bytes_below(count, &keep_lo, &keep_hi);
	return hmax_u8(_mm_max_epu8(_mm_and_si128(lo, keep_lo), _mm_and_si128(hi, keep_hi)));
#else
	uint8_t m = 0;

	for (uint32_t i = 0; i < count; i++)
		m = bytes[i] > m ? bytes[i] : m;
	return m;
#endif
}

/* The largest of bytes[from .. to - 1] of a 64-byte array (to <= 64), 0 if
 * none. */
static inline uint8_t max_byte_span64(const uint8_t *bytes, uint32_t from, uint32_t to)
{
#ifdef __SSE2__
	const __m128i idx0 = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m128i vf = _mm_set1_epi8((char)from), vt = _mm_set1_epi8((char)to);
	__m128i m = _mm_setzero_si128();

	for (int k = 0; k < 4; k++) {
		__m128i idx = _mm_add_epi8(idx0, _mm_set1_epi8((char)(16 * k)));
		__m128i in = _mm_andnot_si128(_mm_cmpgt_epi8(vf, idx), _mm_cmpgt_epi8(vt, idx));
		__m128i v = _mm_loadu_si128((const __m128i *)(bytes + 16 * k));

		m = _mm_max_epu8(m, _mm_and_si128(v, in));
	}
	return hmax_u8(m);
#else
	uint8_t m = 0;

	for (uint32_t i = from; i < to; i++)
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
 * The largest of v[0 .. 63], where bits[i] = len_bits(v[i]) (0 for unused
 * entries) and the largest of the bits is @top: only the values with that byte
 * are compared.
 */
static inline uint64_t max_of_top64(const uint64_t *v, const uint8_t *bits, uint8_t top)
{
	uint64_t m = 0;

	if (top == 0)
		return 0;
	for (uint64_t f = bytes_ge_mask64(bits, top); f; f &= f - 1)
		m = max_u64(m, v[__builtin_ctzll(f)]);
	return m;
}

/* 1 + bit_length(len): the byte that summarizes a gap of len + 1 bytes; never 0,
 * so that the zero bytes past a node's count match no search. */
static inline uint8_t len_bits(uint64_t len)
{
	return (uint8_t)(65 - __builtin_clzll(len | 1) - (len == 0));
}

/* What a subtree holds: its largest last - start (or more: an upper bound) and
 * its largest block_class() (exact). */
struct bound {
	uint64_t len;
	uint8_t block;
};

static inline struct bound bound_max(struct bound x, struct bound y)
{
	return (struct bound){max_u64(x.len, y.len), x.block > y.block ? x.block : y.block};
}

static inline bool bound_equal(const struct inode *n, uint32_t i, struct bound b)
{
	return n->max_len[i] == b.len && n->blocks[i] == b.block;
}

static inline struct bound bound_of(const struct inode *n, uint32_t i)
{
	return (struct bound){n->max_len[i], n->blocks[i]};
}

static inline void set_bound(struct inode *n, uint32_t i, struct bound b)
{
	n->max_len[i] = b.len;
	n->bits[i] = len_bits(b.len);
	n->blocks[i] = b.block;
}

/* Entry @i of @l becomes the gap [start, last], with its summary bytes. */
static inline void leaf_set_gap(struct leaf *l, uint32_t i, uint64_t start, uint64_t last)
{
	l->e[i] = (struct ent){start, last, 0};
	l->bits[i] = len_bits(last - start);
	l->blk[i] = block_class(start, last);
}

/* Entry @i of @l becomes the allocation [start, last] of @owner. */
static inline void leaf_set_alloc(struct leaf *l, uint32_t i, uint64_t start, uint64_t last,
				  uint64_t owner)
{
	l->e[i] = (struct ent){start, last, owner};
	l->bits[i] = 0;
	l->blk[i] = 0;
}

static inline bool ent_is_gap(const struct leaf *l, uint32_t i)
{
	return l->bits[i] != 0;
}

/* The bound of entry @i of @l: 0 for an allocation. */
static inline struct bound ent_bound(const struct leaf *l, uint32_t i)
{
	return (struct bound){ent_is_gap(l, i) ? l->e[i].last - l->e[i].start : 0, l->blk[i]};
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

/* Internal nodes keep UINT64_MAX in their keys past count, so
 * that route() can read a whole node without looking at count. */
static inline void keys_pad(uint64_t *key, uint32_t count, uint32_t cap)
{
	memset(key + count, 0xff, (cap - count) * sizeof(key[0]));
}

/*
 * The last i < count with key[i] <= x, or 0 (key[0] counts as <= any x), in a
 * node of @cap keys (a multiple of 8) padded by keys_pad(). Two rounds of
 * independent compares instead of a binary search's chain of log2(cap)
 * dependent ones: first the last key of every cache line (8 keys), then the
 * keys of the line where x falls.
 */
static inline uint32_t route(const uint64_t *key, uint32_t cap, uint32_t count, uint64_t x)
{
	uint32_t line = 0, i;

	for (uint32_t j = 7; j < cap - 1; j += 8)
		line += key[j] <= x;
	i = line * 8;
	for (uint32_t k = 0; k < 8; k++)
		i += key[line * 8 + k] <= x;
	/* i keys are <= x. None: x is below key[0], which counts as <= x. Past
	 * count: only x = UINT64_MAX reaches the padding. */
	if (i == 0)
		return 0;
	return i <= count ? i - 1 : count - 1;
}

/*
 * Number of the @n (<= LEAF_CAP) entries of 24 bytes at @e whose first u64, the
 * key, is <= x; the keys ascend. Like route(), two rounds of independent
 * compares: the entries 7, 15 and 23 pick a group of 8, whose entries are then
 * compared. Entries at and past n are never read (their index is clamped to the
 * last one, whose compare then does not count).
 */
static inline uint32_t rank24(const uint64_t *e, uint32_t n, uint64_t x)
{
	uint32_t g = 0, c = 0;

	if (n == 0)
		return 0;
	for (uint32_t j = 7; j < LEAF_CAP - 1; j += 8)
		g += (j < n) & (e[3 * min_u64(j, n - 1)] <= x);
	for (uint32_t k = g * 8; k < g * 8 + 8; k++)
		c += (k < n) & (e[3 * min_u64(k, n - 1)] <= x);
	return g * 8 + c;
}

_Static_assert(sizeof(struct ent) == 24 && offsetof(struct ent, start) == 0,
	       "rank24() reads entries as 24 bytes keyed by their first u64");

/* Number of entries of @l with start <= x. */
static inline uint32_t leaf_rank(const struct leaf *l, uint64_t x)
{
	return rank24((const uint64_t *)(const void *)l->e, l->count, x);
}

/* Make sure that a leaf split can take every node it may need (a leaf, and an
 * internal node per level plus a new root), so that an allocation never stops
 * half-way. */
static inline int vmres__tree_reserve(struct vmres_addr *a)
{
	struct tree *t = &a->t;

	if (vmres__node_pool_reserve(&t->leaves, 1) ||
	    vmres__node_pool_reserve(&t->inodes, t->height + 1))
		return VMRES_ENOMEM;
	return 0;
}

/* tree.c */
int vmres__tree_init(struct vmres_addr *a);
struct bound vmres__leaf_bound(const struct leaf *l);
void vmres__tree_descend(const struct vmres_addr *a, uint64_t x, struct path *p);
uint32_t vmres__tree_find(const struct vmres_addr *a, uint64_t x, struct path *p);
uint32_t vmres__tree_carve(struct vmres_addr *a, struct path *p, uint32_t pos, uint64_t base,
			   uint64_t last, uint64_t owner);
void vmres__tree_remove(struct vmres_addr *a, struct path *p, uint32_t pos);
void vmres__tree_collapse(struct vmres_addr *a, struct path *p, uint32_t pos, uint32_t n,
			  uint64_t start, uint64_t last);
void vmres__tree_tighten(struct vmres_addr *a, struct inode *n, unsigned int level, uint32_t i);

#endif /* VMRES_ADDR_INT_H */
