/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the sysalloc source files (core, query, presets, dump) share. Not installed.
 *
 * Every allocated resource has one record. A record is found two ways:
 *  - by (pool, address or number) through the record hash table, for release,
 *    ownership checks and to attach owners and labels to what the pools' own
 *    allocators enumerate in order;
 *  - through its owner's list, for release_owner; owners are found by a second
 *    hash table.
 * Both tables chain through nodes embedded in the records and owners.
 *
 * A shared legacy line (an IRQ pool's number that several owners hold, PCI
 * INTx style) is one number taken from the pool's ids allocator and one line
 * object, found by number in the pool's line table; each sharer has its own
 * record, in the record table under (pool | SHARED, number, owner), and in the
 * line's list of sharers in the order they joined. The pool's lines also sit
 * in a binary min-heap ordered by (sharers, number), so that the least-shared
 * line is found in O(1) and kept in order in O(log l) per join or leave.
 */
#ifndef VMRES_SYSALLOC_INT_H
#define VMRES_SYSALLOC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/ids.h>
#include <vmres/sysalloc.h>

struct vmres__hnode {
	struct vmres__hnode *next;
	uint64_t key;
	uint64_t sub; /* a sharer's record: its owner; else 0 */
	uint32_t ns;  /* record table: pool index (| VMRES__NS_SHARED); else 0 */
};

/* The record namespace of a pool's sharer records: pool index | this bit. */
#define VMRES__NS_SHARED 0x80000000u

struct vmres__htab {
	struct vmres__hnode **buckets;
	size_t mask; /* bucket count - 1 (a power of two) */
	size_t count;
};

/* A shared legacy line: one number of an IRQ pool and the records sharing it. */
struct vmres__line {
	struct vmres__hnode node;	 /* in the pool's line table; key: the number */
	uint32_t sharers;		 /* records in the list (>= 1) */
	uint32_t heap_pos;		 /* index in the pool's heap */
	struct vmres__rec *first, *last; /* sharers, in the order they joined */
};

struct vmres__pool {
	char name[VMRES_POOL_NAME_MAX];
	uint32_t index;
	enum vmres_res_kind kind;
	enum vmres_space space; /* ADDR only */
	uint64_t base, last;
	uint64_t count;		 /* records in this pool */
	bool guest;		 /* ADDR: the whole space, for guest-placed ranges */
	struct vmres_addr *addr; /* ADDR */
	struct vmres_ids *ids;	 /* IRQ, MSI, ID */
	/* IRQ: the shared lines (table made at the first one), and a min-heap of
	 * them by (sharers, number); n_shared counts the sharers' records. */
	struct vmres__htab lines;
	struct vmres__line **heap;
	uint32_t n_heap, cap_heap;
	uint64_t n_shared;
};

struct vmres__owner {
	struct vmres__hnode node; /* key: owner value */
	struct vmres__rec *head;  /* most recent first */
	uint64_t count;
	char name[VMRES_SYSALLOC_LABEL_MAX]; /* "" if unnamed */
};

struct vmres__rec {
	struct vmres__hnode node; /* ns: pool index, key: base or number */
	struct vmres__pool *pool;
	uint64_t size;	/* ADDR: bytes; others: 1 */
	uint64_t align; /* ADDR: alignment requested */
	struct vmres__owner *owner;
	struct vmres__rec *o_prev, *o_next; /* owner list */
	struct vmres__rec *txn;		    /* records of the running alloc call */
	struct vmres__line *line;	    /* a sharer's line, else NULL */
	struct vmres__rec *s_prev, *s_next; /* the line's sharers */
	char label[VMRES_SYSALLOC_LABEL_MAX];
};

struct vmres_sysalloc {
	struct vmres__pool **pools;
	uint32_t n_pools, cap_pools;
	struct vmres__htab recs;
	struct vmres__htab owners;
	uint64_t n_recs;
};

struct vmres__pool *vmres__sysalloc_pool(const struct vmres_sysalloc *sa, const char *name);
/* The ordinary (not guest) address pool of @p space whose window holds
 * [base, last] whole, or NULL. */
struct vmres__pool *vmres__sysalloc_pool_holding(const struct vmres_sysalloc *sa,
						 enum vmres_space space, uint64_t base,
						 uint64_t last);
/* The pool a caller named: VMRES_EINVAL for a name that is not text (see
 * vmres__name_valid()), VMRES_EPOOL for one no pool has (a name of
 * VMRES_POOL_NAME_MAX bytes or more included). */
int vmres__sysalloc_pool_arg(const struct vmres_sysalloc *sa, const char *name,
			     struct vmres__pool **out);
struct vmres__rec *vmres__sysalloc_rec(const struct vmres_sysalloc *sa, const struct vmres__pool *p,
				       uint64_t key);
/* The shared line at @p number of IRQ pool @p p, or NULL. */
struct vmres__line *vmres__sysalloc_line(const struct vmres__pool *p, uint64_t number);
struct vmres__owner *vmres__sysalloc_owner(const struct vmres_sysalloc *sa, uint64_t owner);
void vmres__sysalloc_info(const struct vmres__rec *r, struct vmres_sysalloc_alloc_info *out);

/* Visit one pool's allocations in address or number order. */
int vmres__sysalloc_foreach_in_pool(const struct vmres_sysalloc *sa, const struct vmres__pool *p,
				    vmres_sysalloc_alloc_fn fn, void *ctx);

#endif /* VMRES_SYSALLOC_INT_H */
