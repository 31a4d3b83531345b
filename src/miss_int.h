/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-thread striped miss counters of the buses and the device manager
 * (miss.c). Not installed.
 */
#ifndef VMRES_MISS_INT_H
#define VMRES_MISS_INT_H

#include <stdbool.h>
#include <stdint.h>

/* Miss counters, striped so that vCPU threads do not share a cache line. */
#define VMRES__STAT_STRIPES 16
struct vmres__miss_stripe {
	uint64_t reads;
	uint64_t writes;
	uint64_t last_addr;
} __attribute__((aligned(64)));

struct vmres__miss_stats {
	struct vmres__miss_stripe stripe[VMRES__STAT_STRIPES];
};

/* Each thread that counts a miss takes a stripe number the first time: numbers
 * 1 to 15 belong to one thread each (so its counters have one writer and need no
 * locked instruction), the threads after those share stripe 0 (atomic adds). */
extern _Thread_local uint32_t vmres__stripe_id; /* 0: none taken yet */
uint32_t vmres__stripe_take(void);

static inline void vmres__count_miss(struct vmres__miss_stats *st, uint64_t addr, bool is_write)
{
	uint32_t id = vmres__stripe_id;
	struct vmres__miss_stripe *s;
	uint64_t *c;

	if (__builtin_expect(id == 0, 0))
		id = vmres__stripe_take();
	s = &st->stripe[id < VMRES__STAT_STRIPES ? id : 0];
	c = is_write ? &s->writes : &s->reads;
	if (__builtin_expect(id < VMRES__STAT_STRIPES, 1))
		__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_addr, addr, __ATOMIC_RELAXED);
}

void vmres__miss_sum(struct vmres__miss_stats *st, uint64_t *reads, uint64_t *writes);

#endif /* VMRES_MISS_INT_H */
