/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ID workloads of bench/WORKLOADS.md: id-fill and id-churn over [0, 2^20 - 1]. */
#include <stdio.h>

#include <vmres/ids.h>

#include "bench.h"

#define ID_SPACE ((uint32_t)1 << 20)

/* Allocate n IDs from a fresh allocator; sum the IDs into *sum. */
static int fill(struct vmres_ids *ids, uint64_t n, uint64_t *sum)
{
	for (uint64_t k = 0; k < n; k++) {
		uint32_t id;
		int rc = vmres_ids_alloc(ids, &id);

		if (rc) {
			fprintf(stderr, "id: alloc %llu failed: %s\n", (unsigned long long)k,
				vmres_strerror(rc));
			return -1;
		}
		*sum += id;
	}
	return 0;
}

int bench_id_fill(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t sum = 0;
	double t0, t1;
	int rc;

	(void)d;
	rc = vmres_ids_new(0, ID_SPACE - 1, &ids);
	if (rc) {
		fprintf(stderr, "id-fill: %s\n", vmres_strerror(rc));
		return -1;
	}
	t0 = bench_now_ns();
	rc = fill(ids, n, &sum);
	t1 = bench_now_ns();
	vmres_ids_free(ids);
	if (rc)
		return -1;
	bench_report("id-fill", n, 0, NULL, (t1 - t0) / (double)n, sum);
	return 0;
}

int bench_id_churn(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t seed = BENCH_SEED, sum = 0, fill_sum = 0;
	double t0, t1;
	int rc;

	(void)d;
	rc = vmres_ids_new(0, ID_SPACE - 1, &ids);
	if (rc) {
		fprintf(stderr, "id-churn: %s\n", vmres_strerror(rc));
		return -1;
	}
	/* Setup (untimed): the full state id-fill leaves, then free about half. */
	if (fill(ids, ID_SPACE, &fill_sum))
		goto fail;
	for (uint64_t k = 0; k < n / 2; k++) {
		uint32_t id = (uint32_t)(bench_next(&seed) % ID_SPACE);

		if (vmres_ids_test(ids, id) == 1 && vmres_ids_release(ids, id))
			goto fail;
	}
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint32_t id = (uint32_t)(bench_next(&seed) % ID_SPACE);

		rc = vmres_ids_test(ids, id);
		if (rc == 1) {
			rc = vmres_ids_release(ids, id);
		} else if (rc == 0) {
			rc = vmres_ids_alloc(ids, &id);
			sum += id;
		}
		if (rc)
			goto fail;
	}
	t1 = bench_now_ns();
	vmres_ids_free(ids);
	bench_report("id-churn", n, 0, NULL, (t1 - t0) / (double)n, sum);
	return 0;
fail:
	fprintf(stderr, "id-churn: an allocator call failed unexpectedly\n");
	vmres_ids_free(ids);
	return -1;
}
