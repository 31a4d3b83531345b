/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The out-of-line half of miss_int.h. */
#include "miss_int.h"

#include <stddef.h>

_Thread_local uint32_t vmres__stripe_id;

uint32_t vmres__stripe_take(void)
{
	static uint64_t next = 1;
	uint64_t id = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);

	/* Never 0 (the "none yet" mark); past the own stripes, the shared one. */
	vmres__stripe_id = id < VMRES__STAT_STRIPES ? (uint32_t)id : VMRES__STAT_STRIPES;
	return vmres__stripe_id;
}

void vmres__miss_sum(struct vmres__miss_stats *st, uint64_t *reads, uint64_t *writes)
{
	uint64_t r = 0, w = 0;

	for (size_t i = 0; i < VMRES__STAT_STRIPES; i++) {
		r += __atomic_load_n(&st->stripe[i].reads, __ATOMIC_RELAXED);
		w += __atomic_load_n(&st->stripe[i].writes, __ATOMIC_RELAXED);
	}
	*reads = r;
	*writes = w;
}
