/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ID allocator: a 64-ary tree of bit words over absolute u32 numbers.
 *
 * A node at level 0 (a leaf) holds 64 words of 64 bits: 4096 numbers, bit set =
 * allocated. A node at level k > 0 holds 64 child pointers and covers
 * 2^(12 + 6k) numbers; the root's level is the smallest that covers hi, so a
 * full u32 range has a level-4 root (of which 4 children are used). Every node
 * keeps two summary words over its 64 children (words for a leaf):
 *   full - bit i: child i is completely allocated (lowest free: follow ~full)
 *   any  - bit i: child i has an allocated number (next allocated: follow any;
 *          an aligned block of whole children: an aligned run of zeros in any)
 * A NULL child is wholly free; nodes are created on a region's first allocation
 * and freed when a release empties them, so memory follows what is in use.
 * A range spanning at most 512 leaves (about 2^21 numbers) keeps its leaves in
 * one array made up front (at most 264 KiB, about one bit per number of the
 * range), linked into the tree as above; there the interior nodes keep no
 * full bits: leaf_full[] (a bit per leaf) stands for them, so the lowest free
 * number is the word, the leaf's full word, then at most 9 leaf_full words,
 * and a leaf filling or ceasing to be full touches no node above it. Larger
 * ranges make their leaves on demand, and two more kinds of child keep memory
 * in proportion to use there:
 * a leaf with few numbers is a sparse leaf (a sorted array, struct sparse,
 * tagged pointer), and a child wholly allocated by a block operation is a
 * full marker (full_nodes[], shared and never written).
 * Numbers outside [lo, hi] are never set: every search starts at or above lo
 * and a result past hi means "none" because searches return the lowest
 * candidate.
 *
 * Speed: free_hint (all of [lo, free_hint) is in use) lets "lowest free" start
 * in the leaf that holds the hint; summaries change only when a word fills up
 * or empties, so most operations touch one word.
 */
#include <vmres/ids.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ALL	   (~(uint64_t)0)
#define NONE	   UINT64_MAX
#define MAX_LEVELS 5 /* leaf + 4 interior levels cover 2^36 >= 2^32 numbers */

struct node {
	uint64_t full;
	uint64_t any;
	union {
		uint64_t word[64];	/* level 0 */
		struct node *child[64]; /* level > 0 */
	};
};

/*
 * A sparse leaf: the allocated numbers of one 4096-number leaf as sorted 12-bit
 * offsets, for ranges without the leaf array. A level-1 node's child pointer
 * with bit 0 set points at one; it is never empty or full. It holds up to
 * SPARSE_MAX numbers (capacity 4, 8, 16, 32) and turns into a bitmap leaf when
 * one more is set.
 */
struct sparse {
	uint16_t n;
	uint16_t cap;
	uint16_t off[];
};

#define SPARSE_MIN 4
#define SPARSE_MAX 32

/*
 * Full markers: full_nodes[k] is a wholly allocated level-k node whose children
 * are full_nodes[k - 1] (words all set at level 0), so that reads need no
 * special case. A child pointer to one stands for a whole allocated subtree
 * (an aligned block, in ranges without the leaf array) and costs no memory;
 * they are never written: releasing part of one copies the path first.
 */
#define R4(x)  x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
#define R64(x) R16(x), R16(x), R16(x), R16(x)

static struct node full_nodes[MAX_LEVELS - 1] = {
	{.full = ALL, .any = ALL, .word = {R64(ALL)}},
	{.full = ALL, .any = ALL, .child = {R64(&full_nodes[0])}},
	{.full = ALL, .any = ALL, .child = {R64(&full_nodes[1])}},
	{.full = ALL, .any = ALL, .child = {R64(&full_nodes[2])}},
};

/* 2^21 numbers: at most 512 leaves, 264 KiB, about one bit per number. */
#define SMALL_LEAVES 512
/* leaf_full[] words: 512 leaves from any leaf, 64-aligned, span 9 words. */
#define SMALL_FULL_WORDS (SMALL_LEAVES / 64 + 1)

struct vmres_ids {
	uint64_t lo;
	uint64_t hi;
	uint64_t used;
	uint64_t nodes;	       /* nodes held, root included */
	uint64_t sparse_bytes; /* bytes of the sparse leaves held */
	uint64_t free_hint; /* every number in [lo, free_hint) is allocated */
	int top;	    /* level of the root */
	struct node *root;
	/* The leaf that held the last number handed out from free_hint, so that
	 * allocating the lowest free number rarely walks the tree; cleared whenever
	 * a node is freed. */
	struct node *hint_leaf;
	uint64_t hint_leaf_base;
	/* The cursor: the bit word that holds free_hint while allocation walks
	 * through it in order, so that "the next number is free" costs one word
	 * test and no address computation. It covers [cursor_base, cursor_base +
	 * cursor_span] (the word's numbers up to hi). When free_hint leaves that
	 * span, or the word is zero (its leaf may be unlinked, or the "any" bit
	 * would have to change) or about to fill (the "full" bits would change),
	 * allocation takes the ordinary path, which moves the cursor. Pointing it
	 * at no_word (always zero) disables it; node_put() does so before a leaf
	 * is freed. */
	uint64_t *cursor_word;
	uint64_t cursor_base;
	uint64_t cursor_span;
	uint64_t no_word;
	/* Small ranges (at most SMALL_LEAVES leaves, below a root that is not a
	 * leaf): all their leaves in one array, the leaf of number n at
	 * leaves[n / 4096 - leaf0], so that testing, reserving and releasing one
	 * number is one computed address instead of a walk. A leaf not linked
	 * into the tree is all zero. NULL for larger ranges (leaves on demand). */
	struct node *leaves;
	uint64_t leaf0;
	uint64_t n_leaves;
	/* With the leaf array: bit r of leaf_full (r = leaf number - leaf_fbase,
	 * leaf_fbase = leaf0 rounded down to 64 leaves) is set when that leaf is
	 * full, so word k is the "full" word of the level-1 node over those 64
	 * leaves. The lowest free number is then found without walking the tree:
	 * its word, its leaf's full word, these words. */
	uint64_t leaf_fbase;
	uint64_t leaf_full[SMALL_FULL_WORDS];
	uint64_t word_off; /* small_word(): leaf0 * sizeof(struct node) - offset of word[] */
};

static inline bool is_sparse(const struct node *p)
{
	return ((uintptr_t)p & 1) != 0;
}

static inline struct sparse *to_sparse(const struct node *p)
{
	return (struct sparse *)((uintptr_t)p & ~(uintptr_t)1);
}

static inline struct node *tag_sparse(struct sparse *s)
{
	return (struct node *)((uintptr_t)s | 1);
}

static inline bool is_full_node(const struct node *p, int level)
{
	return level < MAX_LEVELS - 1 && p == &full_nodes[level];
}

static inline size_t sparse_size(unsigned cap)
{
	return sizeof(struct sparse) + cap * sizeof(uint16_t);
}

/* Bit word @i of a sparse leaf. */
static uint64_t sparse_word(const struct sparse *s, unsigned i)
{
	uint64_t w = 0;

	for (unsigned k = 0; k < s->n && (s->off[k] >> 6) <= i; k++)
		if ((s->off[k] >> 6) == i)
			w |= (uint64_t)1 << (s->off[k] & 63);
	return w;
}

/* Summary of the non-zero words of a sparse leaf. */
static uint64_t sparse_any(const struct sparse *s)
{
	uint64_t any = 0;

	for (unsigned k = 0; k < s->n; k++)
		any |= (uint64_t)1 << (s->off[k] >> 6);
	return any;
}

/* Word @i, and the summaries, of a node that may be a sparse leaf. */
static inline uint64_t node_word(const struct node *n, unsigned i)
{
	return is_sparse(n) ? sparse_word(to_sparse(n), i) : n->word[i];
}

static inline uint64_t node_full(const struct node *n)
{
	return is_sparse(n) ? 0 : n->full;
}

static inline uint64_t node_any(const struct node *n)
{
	return is_sparse(n) ? sparse_any(to_sparse(n)) : n->any;
}

/* Children of a level-k node cover 2^(6 + 6k) numbers each. */
static inline unsigned child_shift(int level)
{
	return 6 + 6 * (unsigned)level;
}

static inline unsigned child_index(uint64_t pos, int level)
{
	return (unsigned)(pos >> child_shift(level)) & 63;
}

static inline uint64_t bit(unsigned i)
{
	return (uint64_t)1 << i;
}

/* Bits strictly above i (i <= 63). */
static inline uint64_t above(unsigned i)
{
	return (ALL << i) << 1;
}

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/*
 * The lowest number >= pos inside node n (covering from base) that is free
 * (want_free) or allocated; NONE if there is none. A NULL node is all free.
 */
static uint64_t find_first(const struct node *n, int level, uint64_t base, uint64_t pos,
			   bool want_free)
{
	unsigned sh, i, j;
	uint64_t summary, later, cbase, r;

	if (!n)
		return want_free ? pos : NONE;
	sh = child_shift(level);
	i = (unsigned)((pos - base) >> sh);
	if (level == 0) {
		uint64_t w = want_free ? ~node_word(n, i) : node_word(n, i);

		w &= ALL << (pos & 63);
		if (w)
			return base + ((uint64_t)i << 6) + (unsigned)__builtin_ctzll(w);
		summary = want_free ? ~node_full(n) : node_any(n);
		later = summary & above(i);
		if (!later)
			return NONE;
		j = (unsigned)__builtin_ctzll(later);
		w = want_free ? ~node_word(n, j) : node_word(n, j);
		return base + ((uint64_t)j << 6) + (unsigned)__builtin_ctzll(w);
	}
	summary = want_free ? ~n->full : n->any;
	if (summary & bit(i)) {
		r = find_first(n->child[i], level - 1, base + ((uint64_t)i << sh), pos, want_free);
		if (r != NONE)
			return r;
	}
	later = summary & above(i);
	if (!later)
		return NONE;
	j = (unsigned)__builtin_ctzll(later);
	cbase = base + ((uint64_t)j << sh);
	return find_first(n->child[j], level - 1, cbase, cbase, want_free);
}

static uint64_t lowest(const struct vmres_ids *ids, uint64_t pos, bool want_free)
{
	return find_first(ids->root, ids->top, 0, pos, want_free);
}

/* The leaf-array leaf that holds @pos. */
static inline struct node *small_leaf(const struct vmres_ids *ids, uint64_t pos)
{
	return &ids->leaves[(pos >> 12) - ids->leaf0];
}

/* The leaf-array bit word that holds @pos: &small_leaf(pos)->word[pos / 64 % 64]
 * in fewer instructions, as leaf (pos >> 12) starts (pos >> 12) * sizeof(struct
 * node) bytes in and its words are (pos >> 6) * 8 - (pos >> 12) * 512 bytes
 * further; word_off folds in leaf0 and the words' offset in a node. */
static inline uint64_t *small_word(const struct vmres_ids *ids, uint64_t pos)
{
	return (uint64_t *)((char *)ids->leaves + ((pos >> 6) * sizeof(uint64_t) +
						   (pos >> 12) * (sizeof(struct node) - 512) -
						   ids->word_off));
}

/*
 * With the leaf array: the lowest free number >= @pos (lo <= pos <= hi), or a
 * number past hi if there is none. The word of pos, then its leaf's full word,
 * then leaf_full[]: no tree walk. A leaf not in the tree is all zero, so its
 * first number is free; leaves past the array hold only numbers past hi.
 */
static inline uint64_t small_lowest_free(const struct vmres_ids *ids, uint64_t pos)
{
	const struct node *leaf = small_leaf(ids, pos);
	unsigned i = child_index(pos, 0), k;
	uint64_t w = ~leaf->word[i] & (ALL << (pos & 63)), r, m;

	if (w)
		return (pos & ~(uint64_t)63) + (unsigned)__builtin_ctzll(w);
	w = ~leaf->full & above(i);
	if (w) {
		i = (unsigned)__builtin_ctzll(w);
		return (pos & ~(uint64_t)4095) + ((uint64_t)i << 6) +
		       (unsigned)__builtin_ctzll(~leaf->word[i]);
	}
	r = (pos >> 12) - ids->leaf_fbase; /* this leaf's bit in leaf_full[] */
	k = (unsigned)(r >> 6);
	m = ~ids->leaf_full[k] & above((unsigned)(r & 63));
	while (!m) {
		if (++k == SMALL_FULL_WORDS)
			return NONE;
		m = ~ids->leaf_full[k];
	}
	r = ((uint64_t)k << 6) + (unsigned)__builtin_ctzll(m) + ids->leaf_fbase; /* leaf number */
	if (r - ids->leaf0 >= ids->n_leaves)
		return NONE;
	leaf = &ids->leaves[r - ids->leaf0];
	i = (unsigned)__builtin_ctzll(~leaf->full);
	return (r << 12) + ((uint64_t)i << 6) + (unsigned)__builtin_ctzll(~leaf->word[i]);
}

/*
 * The lowest free number >= pos (pos <= hi), or NONE: find_first() for free
 * numbers without recursion, as allocation needs it most. Go down along pos
 * while the child is not full; then up until a later child is not full; then
 * down to that child's lowest free number.
 */
static uint64_t lowest_free(const struct vmres_ids *ids, uint64_t pos)
{
	const struct node *path[MAX_LEVELS];
	const struct node *n = ids->root;
	int l = ids->top;
	unsigned j;
	uint64_t later, base;

	if (ids->leaves)
		return small_lowest_free(ids, pos);
	for (;;) {
		unsigned i = child_index(pos, l);

		if (l == 0) {
			uint64_t w = ~node_word(n, i) & (ALL << (pos & 63));

			if (w)
				return (pos & ~(uint64_t)63) + (unsigned)__builtin_ctzll(w);
			break;
		}
		if (n->full & bit(i))
			break;
		if (!n->child[i])
			return pos;
		path[l] = n;
		n = n->child[i];
		l--;
	}
	for (;;) {
		later = ~node_full(n) & above(child_index(pos, l));
		if (later)
			break;
		if (l == ids->top)
			return NONE;
		n = path[++l];
	}
	j = (unsigned)__builtin_ctzll(later);
	base = (pos & ~(((uint64_t)1 << (child_shift(l) + 6)) - 1)) +
	       ((uint64_t)j << child_shift(l));
	while (l > 0) {
		if (!n->child[j])
			return base;
		n = n->child[j];
		l--;
		j = (unsigned)__builtin_ctzll(~node_full(n));
		base += (uint64_t)j << child_shift(l);
	}
	return base + (unsigned)__builtin_ctzll(~node_word(n, j));
}

/* The level-@level node that holds @pos, or NULL where none exists (all free). */
static const struct node *node_at(const struct vmres_ids *ids, uint64_t pos, int level)
{
	const struct node *n = ids->root;

	for (int l = ids->top; l > level && n; l--)
		n = n->child[child_index(pos, l)];
	return n;
}

/* A zeroed node of @level for the region holding @pos; NULL if out of memory. */
static struct node *node_get(struct vmres_ids *ids, int level, uint64_t pos)
{
	struct node *n;

	if (level == 0 && ids->leaves)
		return &ids->leaves[(pos >> 12) - ids->leaf0];
	n = calloc(1, sizeof(*n));
	if (n)
		ids->nodes++;
	return n;
}

/* Give back an empty node (all zero) of @level. */
static void node_put(struct vmres_ids *ids, struct node *n, int level)
{
	ids->hint_leaf = NULL;
	ids->cursor_word = &ids->no_word;
	if (level == 0 && ids->leaves)
		return;
	free(n);
	ids->nodes--;
}

static bool is_set(const struct vmres_ids *ids, uint64_t pos)
{
	const struct node *leaf;

	if (ids->leaves)
		return ids->leaves[(pos >> 12) - ids->leaf0].word[child_index(pos, 0)] &
		       bit(pos & 63);
	leaf = node_at(ids, pos, 0);
	return leaf && (node_word(leaf, child_index(pos, 0)) & bit(pos & 63));
}

/*
 * A leaf filled up (full) or stopped being full (!full): update the full bits
 * of the interior nodes above @pos as far as they change.
 */
static __attribute__((noinline)) void mark_full_above(struct vmres_ids *ids, uint64_t pos,
						      bool full)
{
	struct node *path[MAX_LEVELS];
	struct node *n = ids->root;

	for (int l = ids->top; l > 0; l--) {
		path[l] = n;
		n = n->child[child_index(pos, l)];
	}
	for (int l = 1; l <= ids->top; l++) {
		uint64_t b = bit(child_index(pos, l));
		bool was_full = path[l]->full == ALL;

		if (full) {
			path[l]->full |= b;
			if (path[l]->full != ALL)
				break;
		} else {
			path[l]->full &= ~b;
			if (!was_full)
				break;
		}
	}
}

/*
 * With the leaf array, the leaf holding @pos filled up (@full) or stopped
 * being full: its bit in leaf_full[]. Interior nodes keep no full bits there.
 */
static inline void small_full(struct vmres_ids *ids, uint64_t pos, bool full)
{
	uint64_t r = (pos >> 12) - ids->leaf_fbase, b = bit(r & 63);

	if (full)
		ids->leaf_full[r >> 6] |= b;
	else
		ids->leaf_full[r >> 6] &= ~b;
}

/* With the leaf array, set leaf_full[]'s bit for the leaf holding @pos from
 * that leaf (after a change made by the general paths). */
static inline void small_sync(struct vmres_ids *ids, uint64_t pos)
{
	uint64_t r, b;

	if (!ids->leaves)
		return;
	r = (pos >> 12) - ids->leaf_fbase;
	b = bit(r & 63);
	if (small_leaf(ids, pos)->full == ALL)
		ids->leaf_full[r >> 6] |= b;
	else
		ids->leaf_full[r >> 6] &= ~b;
}

/*
 * Set free number @pos in @leaf, a leaf in the tree that is not empty: a
 * leaf-array leaf (@small) or one of a larger range.
 */
static inline __attribute__((always_inline)) void leaf_set_in(struct vmres_ids *ids,
							      struct node *leaf, uint64_t pos,
							      bool small)
{
	unsigned i = child_index(pos, 0);
	uint64_t old = leaf->word[i], new = old | bit(pos & 63);

	leaf->word[i] = new;
	ids->used++;
	if (old == 0)
		leaf->any |= bit(i);
	if (new == ALL) {
		leaf->full |= bit(i);
		if (leaf->full == ALL) {
			if (small)
				small_full(ids, pos, true);
			else
				mark_full_above(ids, pos, true);
		}
	}
}

static inline void leaf_set(struct vmres_ids *ids, struct node *leaf, uint64_t pos)
{
	leaf_set_in(ids, leaf, pos, ids->leaves != NULL);
}

/*
 * Clear allocated number @pos in @leaf, a leaf in the tree, unless that would
 * empty the leaf (then the caller frees it): returns whether it did.
 */
static inline bool leaf_clear(struct vmres_ids *ids, struct node *leaf, uint64_t pos)
{
	unsigned i = child_index(pos, 0);
	uint64_t old = leaf->word[i], new = old & ~bit(pos & 63);

	if (new == 0 && leaf->any == bit(i))
		return false;
	leaf->word[i] = new;
	ids->used--;
	if (new == 0)
		leaf->any &= ~bit(i);
	if (old == ALL) {
		bool was_full = leaf->full == ALL;

		leaf->full &= ~bit(i);
		if (was_full)
			small_full(ids, pos, false); /* only leaf-array leaves come here */
	}
	return true;
}

/* A sparse leaf of capacity @cap holding nothing; NULL if out of memory. */
static struct sparse *sparse_new(struct vmres_ids *ids, unsigned cap)
{
	struct sparse *s = malloc(sparse_size(cap));

	if (!s)
		return NULL;
	s->n = 0;
	s->cap = (uint16_t)cap;
	ids->sparse_bytes += sparse_size(cap);
	return s;
}

static void sparse_put(struct vmres_ids *ids, struct sparse *s)
{
	ids->sparse_bytes -= sparse_size(s->cap);
	free(s);
}

/* Index of the first offset >= @off in @s. */
static unsigned sparse_find(const struct sparse *s, unsigned off)
{
	unsigned k = 0;

	while (k < s->n && s->off[k] < off)
		k++;
	return k;
}

/* A bitmap leaf with the numbers of @s (or NULL if out of memory). */
static struct node *sparse_to_bitmap(struct vmres_ids *ids, const struct sparse *s)
{
	struct node *leaf = calloc(1, sizeof(*leaf));

	if (!leaf)
		return NULL;
	ids->nodes++;
	for (unsigned k = 0; k < s->n; k++)
		leaf->word[s->off[k] >> 6] |= bit(s->off[k] & 63);
	leaf->any = sparse_any(s); /* at most SPARSE_MAX numbers: no word is full */
	return leaf;
}

/*
 * Set free number @pos in the sparse leaf that is child @slot of @parent: in
 * place, in a larger copy, or past SPARSE_MAX in a bitmap leaf. The leaf stays
 * neither empty nor full, so no summary changes.
 */
static int sparse_set(struct vmres_ids *ids, struct node *parent, unsigned slot, uint64_t pos)
{
	struct sparse *s = to_sparse(parent->child[slot]), *t;
	unsigned off = (unsigned)(pos & 4095), k = sparse_find(s, off);

	if (s->n < s->cap) {
		memmove(&s->off[k + 1], &s->off[k], (s->n - k) * sizeof(s->off[0]));
		s->off[k] = (uint16_t)off;
		s->n++;
	} else if (s->cap < SPARSE_MAX) {
		t = sparse_new(ids, s->cap * 2u);
		if (!t)
			return VMRES_ENOMEM;
		memcpy(t->off, s->off, k * sizeof(s->off[0]));
		t->off[k] = (uint16_t)off;
		memcpy(&t->off[k + 1], &s->off[k], (s->n - k) * sizeof(s->off[0]));
		t->n = (uint16_t)(s->n + 1);
		parent->child[slot] = tag_sparse(t);
		sparse_put(ids, s);
	} else {
		struct node *leaf = sparse_to_bitmap(ids, s);
		unsigned i = child_index(pos, 0);

		if (!leaf)
			return VMRES_ENOMEM;
		leaf->word[i] |= bit(pos & 63);
		leaf->any |= bit(i);
		parent->child[slot] = leaf;
		sparse_put(ids, s);
	}
	ids->used++;
	return 0;
}

/* Mark one free number allocated, creating the nodes on its path. */
static __attribute__((noinline)) int set_one(struct vmres_ids *ids, uint64_t pos)
{
	struct node *path[MAX_LEVELS];
	struct node *n = ids->root;
	int level = ids->top, l0 = 0;
	uint64_t old, new;
	bool became_any, became_full;

	if (ids->leaves && ids->leaves[(pos >> 12) - ids->leaf0].any) {
		leaf_set(ids, &ids->leaves[(pos >> 12) - ids->leaf0], pos);
		return 0;
	}
	while (level > 0 && n->child[child_index(pos, level)]) {
		path[level] = n;
		n = n->child[child_index(pos, level)];
		level--;
	}
	if (level == 0 && is_sparse(n))
		return sparse_set(ids, path[1], child_index(pos, 1), pos);
	path[level] = n;
	if (level > 0) {
		/* Allocate the whole missing chain before linking any of it. Without
		 * the leaf array, a new leaf starts sparse. */
		struct node *fresh[MAX_LEVELS];

		for (int l = level - 1; l >= 0; l--) {
			if (l == 0 && !ids->leaves) {
				struct sparse *sp = sparse_new(ids, SPARSE_MIN);

				fresh[0] = sp ? tag_sparse(sp) : NULL;
			} else {
				fresh[l] = node_get(ids, l, pos);
			}
			if (!fresh[l]) {
				for (int k = level - 1; k > l; k--)
					node_put(ids, fresh[k], k);
				return VMRES_ENOMEM;
			}
		}
		for (int l = level; l > 0; l--) {
			path[l]->child[child_index(pos, l)] = fresh[l - 1];
			path[l - 1] = fresh[l - 1];
		}
	}

	n = path[0];
	if (is_sparse(n)) {
		struct sparse *sp = to_sparse(n);

		sp->off[0] = (uint16_t)(pos & 4095);
		sp->n = 1;
		became_any = true;
		became_full = false;
		l0 = 1;
	} else {
		old = n->word[child_index(pos, 0)];
		new = old | bit(pos & 63);
		n->word[child_index(pos, 0)] = new;
		became_any = old == 0;
		became_full = new == ALL;
	}
	for (int l = l0; l <= ids->top && (became_any || became_full); l++) {
		uint64_t b = bit(child_index(pos, l));

		n = path[l];
		if (became_any) {
			became_any = n->any == 0;
			n->any |= b;
		}
		if (became_full && l > 0 && ids->leaves) {
			became_full = false; /* leaf_full[] (small_sync() below) */
		} else if (became_full) {
			n->full |= b;
			became_full = n->full == ALL;
		}
	}
	small_sync(ids, pos);
	ids->used++;
	return 0;
}

/* A copy of full_nodes[@level] (a real node, wholly allocated); NULL if out of
 * memory. */
static struct node *full_copy(struct vmres_ids *ids, int level)
{
	struct node *n = malloc(sizeof(*n));

	if (!n)
		return NULL;
	memcpy(n, &full_nodes[level], sizeof(*n));
	ids->nodes++;
	return n;
}

/*
 * Child @slot of @parent (level @level + 1) is a full marker: replace the
 * markers on the way to @pos, from @level down to the leaf, with real full
 * nodes, so that @pos can be cleared. Nothing changes if memory runs out.
 */
static int expand_full(struct vmres_ids *ids, struct node *parent, unsigned slot, int level,
		       uint64_t pos)
{
	struct node *fresh[MAX_LEVELS];

	for (int l = level; l >= 0; l--) {
		fresh[l] = full_copy(ids, l);
		if (!fresh[l]) {
			for (int k = level; k > l; k--)
				node_put(ids, fresh[k], k);
			return VMRES_ENOMEM;
		}
	}
	for (int l = level; l > 0; l--)
		fresh[l]->child[child_index(pos, l)] = fresh[l - 1];
	parent->child[slot] = fresh[level];
	return 0;
}

/*
 * Mark one number free (clear_one() below): VMRES_ENOENT if it is not allocated; VMRES_ENOMEM if it
 * lies in a full marker that cannot be copied. A node left empty is freed
 * (never the root).
 */
static __attribute__((noinline)) int clear_walk(struct vmres_ids *ids, uint64_t pos)
{
	struct node *path[MAX_LEVELS];
	struct node *n = ids->root;
	uint64_t old, new;
	bool became_notfull, became_empty;
	int l0 = 0;

	for (int l = ids->top; l > 0; l--) {
		unsigned i = child_index(pos, l);

		path[l] = n;
		n = n->child[i];
		if (!n)
			return VMRES_ENOENT;
		if (is_full_node(n, l - 1)) {
			int rc = expand_full(ids, path[l], i, l - 1, pos);

			if (rc)
				return rc;
			n = path[l]->child[i];
		}
	}
	path[0] = n;
	if (is_sparse(n)) {
		struct sparse *sp = to_sparse(n);
		unsigned off = (unsigned)(pos & 4095), k = sparse_find(sp, off);

		if (k == sp->n || sp->off[k] != off)
			return VMRES_ENOENT;
		memmove(&sp->off[k], &sp->off[k + 1], (sp->n - k - 1) * sizeof(sp->off[0]));
		sp->n--;
		became_notfull = false;
		became_empty = sp->n == 0;
		if (became_empty) {
			path[1]->child[child_index(pos, 1)] = NULL;
			sparse_put(ids, sp);
		}
		l0 = 1;
	} else {
		old = n->word[child_index(pos, 0)];
		if (!(old & bit(pos & 63)))
			return VMRES_ENOENT;
		new = old & ~bit(pos & 63);
		n->word[child_index(pos, 0)] = new;
		became_notfull = old == ALL;
		became_empty = new == 0;
	}
	for (int l = l0; l <= ids->top && (became_notfull || became_empty); l++) {
		uint64_t b = bit(child_index(pos, l));

		n = path[l];
		if (became_notfull) {
			became_notfull = n->full == ALL;
			n->full &= ~b;
		}
		if (became_empty) {
			n->any &= ~b;
			became_empty = n->any == 0;
			if (became_empty && l < ids->top) {
				path[l + 1]->child[child_index(pos, l + 1)] = NULL;
				node_put(ids, n, l);
			}
		}
	}
	small_sync(ids, pos);
	ids->used--;
	return 0;
}

/* clear_one(): in the leaf array at once where no summary above changes. */
static inline int clear_one(struct vmres_ids *ids, uint64_t pos)
{
	if (ids->leaves) {
		struct node *leaf = &ids->leaves[(pos >> 12) - ids->leaf0];

		if (!(leaf->word[child_index(pos, 0)] & bit(pos & 63)))
			return VMRES_ENOENT;
		if (leaf_clear(ids, leaf, pos))
			return 0;
	}
	return clear_walk(ids, pos);
}

/* The children [*i0, *i1] (each spanning 1 << @p sh ids) of the node at @p base that
 * [first, last] touches; first may lie before base. */
static void child_span(unsigned sh, uint64_t base, uint64_t first, uint64_t last, unsigned *i0,
		       unsigned *i1)
{
	*i0 = first > base ? (unsigned)((first - base) >> sh) : 0;
	*i1 = (unsigned)((last - base) >> sh) > 63 ? 63 : (unsigned)((last - base) >> sh);
}

/* Free the subtree @n of @level (a full marker costs nothing). */
static void drop_subtree(struct vmres_ids *ids, struct node *n, int level)
{
	if (is_full_node(n, level))
		return;
	if (is_sparse(n)) {
		sparse_put(ids, to_sparse(n));
		return;
	}
	if (level > 0)
		for (unsigned i = 0; i < 64; i++)
			if (n->child[i])
				drop_subtree(ids, n->child[i], level - 1);
	node_put(ids, n, level);
}

/* Whether child @cb (covering 1 << @sh numbers) lies wholly inside [first, last]. */
static inline bool covers(uint64_t cb, unsigned sh, uint64_t first, uint64_t last)
{
	return first <= cb && cb + ((uint64_t)1 << sh) - 1 <= last;
}

/*
 * Make the nodes under n that update_range() will write for [first, last]
 * real bitmap nodes: create missing ones (@set; without the leaf array only
 * where a child is partly covered, as a wholly covered one becomes a full
 * marker), copy full markers that a clear covers partly, turn sparse leaves
 * into bitmap leaves. What it does changes no number's state.
 */
static int ensure(struct vmres_ids *ids, struct node *n, int level, uint64_t base, uint64_t first,
		  uint64_t last, bool set)
{
	unsigned sh = child_shift(level);
	unsigned i0, i1;

	if (level == 0)
		return 0;
	child_span(sh, base, first, last, &i0, &i1);
	for (unsigned i = i0; i <= i1; i++) {
		uint64_t cb = base + ((uint64_t)i << sh);
		struct node *c = n->child[i];
		int rc;

		if (!ids->leaves && covers(cb, sh, first, last))
			continue;
		if (!c) {
			c = node_get(ids, level - 1, cb);
			if (!c)
				return VMRES_ENOMEM;
			n->child[i] = c;
		} else if (is_full_node(c, level - 1)) {
			c = full_copy(ids, level - 1);
			if (!c)
				return VMRES_ENOMEM;
			n->child[i] = c;
		} else if (is_sparse(c)) {
			struct sparse *sp = to_sparse(c);

			if (!set)
				continue; /* update_range() clears it in place */

			c = sparse_to_bitmap(ids, sp);
			if (!c)
				return VMRES_ENOMEM;
			n->child[i] = c;
			sparse_put(ids, sp);
		}
		rc = ensure(ids, c, level - 1, cb, first > cb ? first : cb, last, set);
		if (rc)
			return rc;
	}
	return 0;
}

/* Free every empty node under n that touches [first, last]. */
static void prune(struct vmres_ids *ids, struct node *n, int level, uint64_t base, uint64_t first,
		  uint64_t last)
{
	unsigned sh = child_shift(level);
	unsigned i0, i1;

	if (level == 0)
		return;
	child_span(sh, base, first, last, &i0, &i1);
	for (unsigned i = i0; i <= i1; i++) {
		uint64_t cb = base + ((uint64_t)i << sh);
		struct node *c = n->child[i];

		if (!c || is_sparse(c) || is_full_node(c, level - 1))
			continue; /* neither is ever empty */
		prune(ids, c, level - 1, cb, first > cb ? first : cb, last);
		if (!c->any) {
			n->child[i] = NULL;
			node_put(ids, c, level - 1);
		}
	}
}

/*
 * Set (or clear) every number of [first, last] under n, prepared by ensure(),
 * and refresh the summaries on the way back up. Clearing frees emptied nodes.
 * Without the leaf array, a wholly covered child becomes a full marker (set) or
 * is dropped (clear).
 */
static void update_range(struct vmres_ids *ids, struct node *n, int level, uint64_t base,
			 uint64_t first, uint64_t last, bool set)
{
	unsigned sh = child_shift(level);
	uint64_t csize = (uint64_t)1 << sh;
	unsigned i0, i1;

	i0 = first > base ? (unsigned)((first - base) >> sh) : 0;
	i1 = (unsigned)((last - base) >> sh) > 63 ? 63 : (unsigned)((last - base) >> sh);
	for (unsigned i = i0; i <= i1; i++) {
		uint64_t cb = base + ((uint64_t)i << sh);
		uint64_t cf = first > cb ? first : cb;
		uint64_t cl = last < cb + csize - 1 ? last : cb + csize - 1;
		bool is_full, has_any;

		if (level == 0) {
			unsigned b0 = (unsigned)(cf & 63), b1 = (unsigned)(cl & 63);
			uint64_t mask = (ALL << b0) & (ALL >> (63 - b1));

			n->word[i] = set ? n->word[i] | mask : n->word[i] & ~mask;
			is_full = n->word[i] == ALL;
			has_any = n->word[i] != 0;
		} else if (!ids->leaves && covers(cb, sh, first, last)) {
			if (set) {
				n->child[i] = &full_nodes[level - 1];
			} else {
				drop_subtree(ids, n->child[i], level - 1);
				n->child[i] = NULL;
			}
			is_full = set;
			has_any = set;
		} else if (is_sparse(n->child[i])) {
			/* Clearing part of a sparse leaf (ensure() made a set's bitmap). */
			struct sparse *sp = to_sparse(n->child[i]);
			unsigned k0 = sparse_find(sp, (unsigned)(cf & 4095));
			unsigned k1 = sparse_find(sp, (unsigned)(cl & 4095) + 1);

			memmove(&sp->off[k0], &sp->off[k1], (sp->n - k1) * sizeof(sp->off[0]));
			sp->n = (uint16_t)(sp->n - (k1 - k0));
			is_full = false;
			has_any = sp->n != 0;
			if (!has_any) {
				n->child[i] = NULL;
				sparse_put(ids, sp);
			}
		} else {
			struct node *c = n->child[i];

			update_range(ids, c, level - 1, cb, cf, cl, set);
			is_full = c->full == ALL;
			has_any = c->any != 0;
			if (!has_any) {
				n->child[i] = NULL;
				node_put(ids, c, level - 1);
			}
		}
		if (level > 0 && ids->leaves)
			is_full = false; /* leaf_full[] instead (small_sync()) */
		n->full = is_full ? n->full | bit(i) : n->full & ~bit(i);
		n->any = has_any ? n->any | bit(i) : n->any & ~bit(i);
		if (level == 1)
			small_sync(ids, cb);
	}
}

int vmres_ids_new(uint32_t lo, uint32_t hi, struct vmres_ids **out)
{
	struct vmres_ids *ids;
	int top = 0;

	if (!out || lo > hi)
		return VMRES_EINVAL;
	while (((uint64_t)hi >> (12 + 6 * top)) != 0)
		top++;
	ids = calloc(1, sizeof(*ids));
	if (!ids)
		return VMRES_ENOMEM;
	ids->root = calloc(1, sizeof(struct node));
	ids->leaf0 = lo >> 12;
	ids->n_leaves = (hi >> 12) - ids->leaf0 + 1;
	if (top > 0 && ids->n_leaves <= SMALL_LEAVES)
		ids->leaves = calloc(ids->n_leaves, sizeof(struct node));
	if (!ids->root || (top > 0 && ids->n_leaves <= SMALL_LEAVES && !ids->leaves)) {
		free(ids->leaves); /* made even when the root failed: do not leak it */
		free(ids->root);
		free(ids);
		return VMRES_ENOMEM;
	}
	ids->lo = lo;
	ids->hi = hi;
	ids->top = top;
	ids->nodes = 1;
	ids->free_hint = lo;
	ids->cursor_word = &ids->no_word;
	ids->leaf_fbase = ids->leaf0 & ~(uint64_t)63;
	ids->word_off = ids->leaf0 * sizeof(struct node) - offsetof(struct node, word);
	*out = ids;
	return 0;
}

static void free_node(struct vmres_ids *ids, struct node *n, int level)
{
	if ((level == 0 && ids->leaves) || is_full_node(n, level))
		return;
	if (is_sparse(n)) {
		free(to_sparse(n));
		return;
	}
	if (level > 0)
		for (unsigned i = 0; i < 64; i++)
			if (n->child[i])
				free_node(ids, n->child[i], level - 1);
	free(n);
}

void vmres_ids_free(struct vmres_ids *ids)
{
	if (!ids)
		return;
	free_node(ids, ids->root, ids->top);
	free(ids->leaves);
	free(ids);
}

/* Point the cursor at the word of @leaf (in the tree) that holds @pos. */
static inline void cursor_set(struct vmres_ids *ids, struct node *leaf, uint64_t pos)
{
	uint64_t base = pos & ~(uint64_t)63;

	ids->cursor_word = &leaf->word[child_index(pos, 0)];
	ids->cursor_base = base;
	ids->cursor_span = ids->hi - base < 63 ? ids->hi - base : 63;
}

/*
 * With the leaf array: allocate @pos, the lowest free number >= the start of
 * a search (none if past hi). Taking it changes the leaf's summaries only when
 * its word empties or fills, leaf_full[] only when the leaf fills, and the
 * tree only when the leaf was empty (set_one() links it).
 */
static __attribute__((noinline)) int small_take_link(struct vmres_ids *ids, uint64_t pos,
						     bool from_hint, uint32_t *out)
{
	int rc = set_one(ids, pos);

	if (rc)
		return rc;
	if (from_hint) {
		ids->free_hint = pos + 1;
		cursor_set(ids, small_leaf(ids, pos), pos);
	}
	*out = (uint32_t)pos;
	return 0;
}

static __attribute__((noinline)) int small_take(struct vmres_ids *ids, uint64_t pos,
						bool from_hint, uint32_t *out)
{
	struct node *leaf;

	if (pos > ids->hi)
		return VMRES_ENOSPC;
	leaf = small_leaf(ids, pos);
	if (!leaf->any)
		return small_take_link(ids, pos, from_hint, out); /* not in the tree */
	leaf_set_in(ids, leaf, pos, true);
	if (from_hint) {
		ids->free_hint = pos + 1;
		cursor_set(ids, leaf, pos);
	}
	*out = (uint32_t)pos;
	return 0;
}

/* With the leaf array: allocate the lowest free number >= @start (<= hi). */
static inline int small_alloc(struct vmres_ids *ids, uint64_t start, bool from_hint,
			      uint32_t *out)
{
	return small_take(ids, small_lowest_free(ids, start), from_hint, out);
}

/*
 * With the leaf array: allocate the lowest free number, free_hint or above,
 * when the cursor could not (alloc_next()). free_hint's word first: a hole
 * just released is usually there; else small_take() from that word, or a
 * search from the next word. Moves the cursor.
 */
static __attribute__((noinline)) int small_alloc_next(struct vmres_ids *ids, uint32_t *out)
{
	uint64_t pos = ids->free_hint, *wp, old, free;

	if (pos > ids->hi)
		return VMRES_ENOSPC;
	wp = small_word(ids, pos);
	old = *wp;
	free = ~old & (ALL << (pos & 63));
	if (!free)
		return (pos | 63) < ids->hi ? small_alloc(ids, (pos | 63) + 1, true, out)
					    : VMRES_ENOSPC;
	pos = (pos & ~(uint64_t)63) + (unsigned)__builtin_ctzll(free);
	if (old != 0 && (old | bit(pos & 63)) != ALL && pos <= ids->hi) {
		*wp = old | bit(pos & 63);
		ids->used++;
		ids->free_hint = pos + 1;
		cursor_set(ids, small_leaf(ids, pos), pos);
		*out = (uint32_t)pos;
		return 0;
	}
	return small_take(ids, pos, true, out);
}

/*
 * Fast path of allocating the lowest free number from free_hint: look in the
 * leaf that holds it (the cached hint leaf; ranges without the leaf array).
 * Returns the number, or NONE when the leaf has no free number at or after
 * start (the caller then walks the tree).
 */
static inline __attribute__((always_inline)) uint64_t alloc_in_hint_leaf(struct vmres_ids *ids,
									 uint64_t start)
{
	struct node *leaf = NULL;
	unsigned i = child_index(start, 0);
	uint64_t w, later, pos;

	if (ids->hint_leaf && (start & ~(uint64_t)4095) == ids->hint_leaf_base)
		leaf = ids->hint_leaf;
	if (!leaf)
		return NONE;
	w = ~leaf->word[i] & (ALL << (start & 63));
	if (!w) {
		later = ~leaf->full & above(i);
		if (!later)
			return NONE;
		i = (unsigned)__builtin_ctzll(later);
		w = ~leaf->word[i];
	}
	pos = (start & ~(uint64_t)4095) + ((uint64_t)i << 6) + (unsigned)__builtin_ctzll(w);
	if (pos > ids->hi)
		return pos; /* the lowest free is past hi: the caller says ENOSPC */
	if (leaf->word[i] != 0 && (leaf->word[i] | bit(pos & 63)) != ALL) {
		/* The common case: no summary changes. */
		leaf->word[i] |= bit(pos & 63);
		ids->used++;
	} else if (leaf->any) {
		leaf_set(ids, leaf, pos); /* in the tree already */
	} else if (set_one(ids, pos)) {
		return NONE; /* out of memory: the caller's walk reports it */
	}
	cursor_set(ids, leaf, pos);
	return pos;
}

/* Allocate the lowest free number >= start by walking the tree. */
static __attribute__((noinline)) int alloc_walk(struct vmres_ids *ids, uint64_t start,
						bool from_hint, uint32_t *out)
{
	uint64_t pos = lowest_free(ids, start);
	int rc;

	if (pos > ids->hi)
		return VMRES_ENOSPC;
	rc = set_one(ids, pos);
	if (rc)
		return rc;
	if (from_hint) {
		ids->free_hint = pos + 1;
		ids->hint_leaf = (struct node *)node_at(ids, pos, 0);
		ids->hint_leaf_base = pos & ~(uint64_t)4095;
		if (is_sparse(ids->hint_leaf)) {
			ids->hint_leaf = NULL; /* the fast paths read bitmap leaves only */
			ids->cursor_word = &ids->no_word;
		} else {
			cursor_set(ids, ids->hint_leaf, pos);
		}
	}
	*out = (uint32_t)pos;
	return 0;
}

/* Allocate the lowest free number >= start; from_hint: start is free_hint. */
static __attribute__((noinline)) int alloc_lowest(struct vmres_ids *ids, uint64_t start, bool from_hint, uint32_t *out)
{
	uint64_t pos;

	if (start > ids->hi)
		return VMRES_ENOSPC;
	if (ids->leaves)
		return small_alloc(ids, start, from_hint, out);
	if (from_hint) {
		pos = alloc_in_hint_leaf(ids, start);
		if (pos != NONE) {
			if (pos > ids->hi)
				return VMRES_ENOSPC;
			ids->free_hint = pos + 1;
			*out = (uint32_t)pos;
			return 0;
		}
	}
	return alloc_walk(ids, start, from_hint, out);
}

/*
 * Allocate the lowest free number, which is free_hint or above. The common
 * case of filling in order, "free_hint itself is free, in the cursor's word,
 * and taking it changes no summary", is one load and three stores; anything
 * else takes alloc_lowest(), which also moves the cursor.
 */
static inline __attribute__((always_inline)) int alloc_next(struct vmres_ids *ids, uint32_t *out)
{
	uint64_t pos = ids->free_hint, off = pos - ids->cursor_base;

	if (off <= ids->cursor_span) {
		uint64_t old = *ids->cursor_word, free = ~old & (ALL << off);

		if (old != 0 && free) {
			unsigned b = (unsigned)__builtin_ctzll(free);
			uint64_t new = old | bit(b);

			if (b <= ids->cursor_span && new != ALL) {
				*ids->cursor_word = new;
				ids->used++;
				pos = ids->cursor_base + b;
				ids->free_hint = pos + 1;
				*out = (uint32_t)pos;
				return 0;
			}
		}
	}
	if (ids->leaves)
		return small_alloc_next(ids, out);
	return alloc_lowest(ids, pos, true, out);
}

int vmres_ids_alloc_from(struct vmres_ids *ids, uint32_t from, uint32_t *out)
{
	uint64_t start;

	if (!ids || !out)
		return VMRES_EINVAL;
	if (from > ids->hi)
		return VMRES_ERANGE;
	start = from > ids->lo ? from : ids->lo;
	if (start <= ids->free_hint)
		return alloc_next(ids, out);
	return alloc_lowest(ids, start, false, out);
}

int vmres_ids_alloc(struct vmres_ids *ids, uint32_t *out)
{
	if (!ids || !out)
		return VMRES_EINVAL;
	return alloc_next(ids, out);
}

int vmres_ids_reserve(struct vmres_ids *ids, uint32_t id)
{
	if (!ids)
		return VMRES_EINVAL;
	if (id < ids->lo || id > ids->hi)
		return VMRES_ERANGE;
	if (is_set(ids, id))
		return VMRES_EOVERLAP;
	return set_one(ids, id);
}

/* The lowest aligned block of count (a power of two) wholly free in [lo, hi]. */
static uint64_t find_block(const struct vmres_ids *ids, uint64_t count)
{
	unsigned k = (unsigned)__builtin_ctzll(count);
	int level = k < 6 ? -1 : (int)(k - 6) / 6; /* -1: runs of bits inside a word */
	unsigned csh = level < 0 ? 0 : child_shift(level);
	unsigned m = (unsigned)(count >> csh); /* children per block, < 64 */
	uint64_t stride = ALL / (bit(m) - 1);  /* bits at multiples of m */
	uint64_t pos = align_up(ids->lo, count);

	if (level > ids->top) {
		/* Larger than the root: only [0, count - 1], if the root is empty. */
		if (ids->lo == 0 && count - 1 <= ids->hi && !ids->root->any)
			return 0;
		return NONE;
	}
	while (pos <= ids->hi) {
		uint64_t p = lowest_free(ids, pos), q, unit_base, runs;
		unsigned from_bit;

		if (p > ids->hi)
			return NONE;
		q = align_up(p, count);
		if (q + count - 1 > ids->hi)
			return NONE;
		if (level < 0) {
			const struct node *leaf = node_at(ids, q, 0);

			runs = ~(leaf ? node_word(leaf, child_index(q, 0)) : 0);
			unit_base = q & ~(uint64_t)63;
			from_bit = (unsigned)(q & 63);
		} else {
			const struct node *n = node_at(ids, q, level);

			if (!n)
				return q;
			runs = ~node_any(n);
			unit_base = q & ~(((uint64_t)1 << (csh + 6)) - 1);
			from_bit = child_index(q, level);
		}
		for (unsigned s = 1; s < m; s <<= 1)
			runs &= runs >> s;
		runs &= stride & (ALL << from_bit);
		if (runs) {
			q = unit_base + ((uint64_t)__builtin_ctzll(runs) << csh);
			return q + count - 1 <= ids->hi ? q : NONE;
		}
		pos = unit_base + ((uint64_t)64 << csh);
	}
	return NONE;
}

/* Allocate [first, first + count - 1], known to be free and inside [lo, hi]. */
static int set_range(struct vmres_ids *ids, uint64_t first, uint64_t count)
{
	uint64_t last = first + count - 1;
	int rc;

	if (count == 1)
		return set_one(ids, first);
	rc = ensure(ids, ids->root, ids->top, 0, first, last, true);
	if (rc) {
		prune(ids, ids->root, ids->top, 0, first, last);
		return rc;
	}
	update_range(ids, ids->root, ids->top, 0, first, last, true);
	ids->used += count;
	return 0;
}

int vmres_ids_alloc_block(struct vmres_ids *ids, uint32_t count, uint32_t *first_out)
{
	uint64_t first;
	int rc;

	if (!ids || !first_out)
		return VMRES_EINVAL;
	if (count == 0)
		return VMRES_ESIZE;
	if (count & (count - 1))
		return VMRES_EALIGN;
	first = find_block(ids, count);
	if (first == NONE)
		return VMRES_ENOSPC;
	rc = set_range(ids, first, count);
	if (rc)
		return rc;
	*first_out = (uint32_t)first;
	return 0;
}

/* 0 if [first, first + count - 1] is not empty and lies inside [lo, hi]. */
static int check_block(const struct vmres_ids *ids, uint32_t first, uint32_t count)
{
	uint64_t last = (uint64_t)first + count - 1;

	if (count == 0)
		return VMRES_ESIZE;
	if (first < ids->lo || last > ids->hi)
		return VMRES_ERANGE;
	return 0;
}

int vmres_ids_reserve_block(struct vmres_ids *ids, uint32_t first, uint32_t count)
{
	int rc;

	if (!ids)
		return VMRES_EINVAL;
	rc = check_block(ids, first, count);
	if (rc)
		return rc;
	if (lowest(ids, first, false) <= (uint64_t)first + count - 1)
		return VMRES_EOVERLAP;
	return set_range(ids, first, count);
}

int vmres_ids_release(struct vmres_ids *ids, uint32_t id)
{
	int rc;

	if (!ids)
		return VMRES_EINVAL;
	if (id - ids->lo > ids->hi - ids->lo)
		return VMRES_ERANGE;
	if (ids->leaves) {
		/* The common case: the word neither empties nor was full. */
		uint64_t *wp = small_word(ids, id), old = *wp, new = old & ~bit(id & 63);

		if (old == new)
			return VMRES_ENOENT;
		if (new != 0 && old != ALL) {
			*wp = new;
			ids->used--;
			if (id < ids->free_hint)
				ids->free_hint = id;
			return 0;
		}
	}
	rc = clear_one(ids, id);
	if (rc)
		return rc;
	if (id < ids->free_hint)
		ids->free_hint = id;
	return 0;
}

int vmres_ids_release_block(struct vmres_ids *ids, uint32_t first, uint32_t count)
{
	uint64_t last = (uint64_t)first + count - 1;
	int rc;

	if (!ids)
		return VMRES_EINVAL;
	rc = check_block(ids, first, count);
	if (rc)
		return rc;
	if (lowest_free(ids, first) <= last)
		return VMRES_ENOENT;
	rc = ensure(ids, ids->root, ids->top, 0, first, last, false);
	if (rc)
		return rc; /* what it prepared holds the same numbers */
	update_range(ids, ids->root, ids->top, 0, first, last, false);
	ids->used -= count;
	if (first < ids->free_hint)
		ids->free_hint = first;
	return 0;
}

int vmres_ids_test(const struct vmres_ids *ids, uint32_t id)
{
	if (!ids)
		return VMRES_EINVAL;
	if (id - ids->lo > ids->hi - ids->lo) /* id < lo wraps to a large number */
		return VMRES_ERANGE;
	if (ids->leaves)
		return (int)((*small_word(ids, id) >> (id & 63)) & 1);
	return is_set(ids, id) ? 1 : 0;
}

int vmres_ids_next(const struct vmres_ids *ids, uint32_t from, uint32_t *out)
{
	uint64_t pos;

	if (!ids || !out)
		return VMRES_EINVAL;
	if (from > ids->hi)
		return VMRES_ENOENT;
	pos = lowest(ids, from > ids->lo ? from : ids->lo, false);
	if (pos > ids->hi)
		return VMRES_ENOENT;
	*out = (uint32_t)pos;
	return 0;
}

int vmres_ids_stats(const struct vmres_ids *ids, struct vmres_ids_stats *out)
{
	if (!ids || !out)
		return VMRES_EINVAL;
	out->lo = (uint32_t)ids->lo;
	out->hi = (uint32_t)ids->hi;
	out->used = ids->used;
	out->free = ids->hi - ids->lo + 1 - ids->used;
	out->mem_bytes = sizeof(*ids) + ids->nodes * sizeof(struct node) + ids->sparse_bytes;
	if (ids->leaves)
		out->mem_bytes += ids->n_leaves * sizeof(struct node);
	return 0;
}

/* The lowest free number in the leaf array, word by word; NONE if none. */
static uint64_t small_scan_free(const struct vmres_ids *ids)
{
	for (uint64_t pos = ids->lo; pos <= ids->hi; pos = (pos | 63) + 1) {
		uint64_t w = ~small_leaf(ids, pos)->word[child_index(pos, 0)] & (ALL << (pos & 63));

		if (w && (pos & ~(uint64_t)63) + (unsigned)__builtin_ctzll(w) <= ids->hi)
			return (pos & ~(uint64_t)63) + (unsigned)__builtin_ctzll(w);
	}
	return NONE;
}

/* Check n's summaries against its children; count its bits and nodes. */
static int check_node(const struct vmres_ids *ids, const struct node *n, int level, uint64_t base,
		      uint64_t *bits, uint64_t *nodes, uint64_t *sparse_bytes)
{
	unsigned sh = child_shift(level);

	if (level > 0 || !ids->leaves)
		(*nodes)++; /* array leaves are not counted as nodes */
	for (unsigned i = 0; i < 64; i++) {
		uint64_t cb = base + ((uint64_t)i << sh);
		bool is_full, has_any;

		if (level == 0) {
			uint64_t w = n->word[i], outside = 0;

			for (unsigned b = 0; b < 64 && (cb < ids->lo || cb + 63 > ids->hi); b++)
				if (cb + b < ids->lo || cb + b > ids->hi)
					outside |= bit(b);
			if (w & outside)
				return VMRES_ECORRUPT;
			is_full = w == ALL;
			has_any = w != 0;
			*bits += (uint64_t)__builtin_popcountll(w);
		} else if (!n->child[i]) {
			is_full = false;
			has_any = false;
		} else if (is_full_node(n->child[i], level - 1)) {
			if (ids->leaves || cb < ids->lo || cb + ((uint64_t)1 << sh) - 1 > ids->hi)
				return VMRES_ECORRUPT;
			*bits += (uint64_t)1 << sh;
			is_full = true;
			has_any = true;
		} else if (is_sparse(n->child[i])) {
			const struct sparse *sp = to_sparse(n->child[i]);

			if (level != 1 || ids->leaves || sp->n == 0 || sp->n > sp->cap ||
			    sp->cap < SPARSE_MIN || sp->cap > SPARSE_MAX || (sp->cap & (sp->cap - 1)))
				return VMRES_ECORRUPT;
			for (unsigned k = 0; k < sp->n; k++)
				if ((k > 0 && sp->off[k] <= sp->off[k - 1]) || sp->off[k] > 4095 ||
				    cb + sp->off[k] < ids->lo || cb + sp->off[k] > ids->hi)
					return VMRES_ECORRUPT;
			*bits += sp->n;
			*sparse_bytes += sparse_size(sp->cap);
			is_full = false;
			has_any = true;
		} else {
			const struct node *c = n->child[i];
			int rc;

			if (!c->any)
				return VMRES_ECORRUPT; /* empty nodes are freed */
			rc = check_node(ids, c, level - 1, cb, bits, nodes, sparse_bytes);
			if (rc)
				return rc;
			is_full = c->full == ALL;
			has_any = true;
		}
		if (level > 0 && ids->leaves)
			is_full = false; /* leaf_full[] holds it */
		if (!!(n->full & bit(i)) != is_full || !!(n->any & bit(i)) != has_any)
			return VMRES_ECORRUPT;
	}
	return 0;
}

int vmres_ids_validate(const struct vmres_ids *ids)
{
	uint64_t bits = 0, nodes = 0, sparse_bytes = 0, first_free, scanned;
	int rc;

	if (!ids)
		return VMRES_EINVAL;
	if (ids->lo > ids->hi || ids->hi > UINT32_MAX || ids->top < 0 || ids->top >= MAX_LEVELS ||
	    ((ids->hi >> (12 + 6 * ids->top)) != 0))
		return VMRES_ECORRUPT;
	rc = check_node(ids, ids->root, ids->top, 0, &bits, &nodes, &sparse_bytes);
	if (rc)
		return rc;
	if (bits != ids->used || nodes != ids->nodes || sparse_bytes != ids->sparse_bytes)
		return VMRES_ECORRUPT;
	for (uint64_t r = 0; ids->leaves && r < 64 * (uint64_t)SMALL_FULL_WORDS; r++) {
		uint64_t k = r + ids->leaf_fbase - ids->leaf0; /* wraps below leaf0 */
		bool full = k < ids->n_leaves && ids->leaves[k].full == ALL;

		if (!!(ids->leaf_full[r >> 6] & bit(r & 63)) != full)
			return VMRES_ECORRUPT;
	}
	for (uint64_t k = 0; ids->leaves && k < ids->n_leaves; k++) {
		const struct node *leaf = &ids->leaves[k];
		const struct node *linked = node_at(ids, (ids->leaf0 + k) << 12, 0);

		if (linked && linked != leaf)
			return VMRES_ECORRUPT;
		for (unsigned i = 0; !linked && i < 64; i++)
			if (leaf->word[i] || leaf->full || leaf->any)
				return VMRES_ECORRUPT; /* an unlinked leaf is all zero */
	}
	first_free = lowest_free(ids, ids->lo);
	scanned = ids->leaves ? small_scan_free(ids) : lowest(ids, ids->lo, true);
	if (ids->free_hint < ids->lo || ids->free_hint > ids->hi + 1 || first_free < ids->free_hint ||
	    (first_free > ids->hi ? NONE : first_free) != (scanned > ids->hi ? NONE : scanned))
		return VMRES_ECORRUPT;
	return 0;
}
